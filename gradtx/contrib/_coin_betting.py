"""Coin betting: COCOB-Backprop and Mechanic (``optax.contrib``'s ``cocob``, ``scale_by_cocob`` and ``mechanize``:
same names, signatures, defaults and state fields).

Both treat the gradient as the outcome of a bet and grow a "wealth" when the bets pay: COCOB bets per
coordinate on the parameters themselves (no step size at all), Mechanic bets on the scale of a base optimizer's
updates (a learned learning rate). The scalars of Mechanic are kept in ``tree.widest_real_dtype(params)``
(float32 or wider); COCOB's per-coordinate state is stored in each parameter's dtype and computed in its compute
dtype (float32 or wider).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    MaskOrFn,
    OptState,
    Params,
    Scalar,
    ScalarOrSchedule,
    TransformationLike,
    Updates,
    as_transformation,
    check_tree_match,
    require_params,
    safe_int32_increment,
    zero_count,
)
from gradtx.combine import chain
from gradtx.contrib._common import dot, safe_sqrt, sq_norm, whole_numbers
from gradtx.fields import integer, non_negative, option, positive, pytree_class, recipe
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.tree.precision import widest_real_dtype

__all__ = ["COCOBState", "MechanicState", "cocob", "mechanize", "scale_by_cocob"]


def _check_params(call: str, expected: Any, updates: Updates, params: Params | None) -> None:
    require_params(f"{call}.update", params)
    check_tree_match(f"{call}.update", expected, updates)
    check_tree_match(f"{call}.update", expected, params, what="params")


# --------------------------------------------------------------------------------------------------
# COCOB
# --------------------------------------------------------------------------------------------------


class COCOBState(NamedTuple):
    """The state of :class:`scale_by_cocob` (Optax's field names), every field like the parameters.

    Attributes:
      init_particles: the initial parameters ``w_1``.
      cumulative_gradients: ``theta``, minus the sum of the gradients.
      scale: ``L``, the largest ``|g|`` seen (``eps`` before the first step).
      subgradients: ``G``, the sum of ``|g|``.
      reward: ``R``, the reward (wealth won) so far.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.scale_by_cocob().init(jnp.array([1.0, 2.0]))
      >>> print(state.init_particles, state.scale)
      [1. 2.] [1.e-08 1.e-08]
    """

    init_particles: Updates
    cumulative_gradients: Updates
    scale: Updates
    subgradients: Updates
    reward: Updates


@pytree_class
class scale_by_cocob(GradientTransformation):
    """COCOB-Backprop's whole update: coordinate-wise coin betting, no step size.

    Orabona & Tommasi 2017, "Training Deep Networks without Learning Rates Through Coin Betting", NeurIPS, arXiv
    1705.07795, Algorithm 2. Per coordinate, with ``t`` the 1-based step::

        L_t = max(L_{t-1}, |g_t|),  L_0 = eps
        G_t = G_{t-1} + |g_t|
        R_t = max(R_{t-1} - g_t (w_t - w_1), 0)
        theta_t = theta_{t-1} - g_t
        w_{t+1} = w_1 + theta_t / (L_t max(G_t + L_t, alpha L_t)) (L_t + R_t)

    The output is the step ``u_t = w_{t+1} - w_t`` (it already points downhill: no learning rate follows).
    ``update`` needs ``params``. State: :class:`COCOBState`, stored in each parameter's dtype and computed in its
    compute dtype (float32 or wider).

    Args:
      alpha: the bound on the fraction of wealth bet early on, ``> 0``. Default 100.
      eps: the initial ``L``, ``> 0``. Default 1e-8.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_cocob(alpha=0.0): alpha must be > 0``; at
        ``update``, no ``params``.
      TypeError: an option of the wrong type, e.g. a string ``alpha``; at ``update``, updates or params whose
        tree does not match the state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_cocob()
      >>> params = jnp.zeros(2)
      >>> updates, state = tx.update(jnp.array([1.0, -1.0]), tx.init(params), params)
      >>> print(updates)  # theta / (L alpha L) (L + R) = -g / 100
      [-0.01  0.01]
    """

    alpha: Scalar = positive(default=100.0)
    eps: Scalar = positive(default=1e-8)

    def init(self, params: Params) -> COCOBState:
        return COCOBState(
            init_particles=jax.tree.map(jnp.asarray, params),
            cumulative_gradients=tree.zeros_like(params),
            scale=tree.full_like(params, self.eps),
            subgradients=tree.zeros_like(params),
            reward=tree.zeros_like(params),
        )

    def update(
        self, updates: Updates, state: COCOBState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, COCOBState]:
        del extra
        _check_params("scale_by_cocob", state.scale, updates, params)

        def one(g: Any, w: Any, w1: Any, theta: Any, big_l: Any, big_g: Any, r: Any) -> tuple[Any, ...]:
            x = tree.Leaf(g)
            g_, w_, w1_ = x.cast(g), x.cast(w), x.cast(w1)
            new_l = jnp.maximum(x.cast(big_l), jnp.abs(g_))
            new_g = x.cast(big_g) + jnp.abs(g_)
            new_r = jnp.maximum(x.cast(r) - g_ * (w_ - w1_), 0)
            new_theta = x.cast(theta) - g_
            bet = new_theta / (new_l * jnp.maximum(new_g + new_l, x.cast(x.hyper(self.alpha)) * new_l))
            w_next = w1_ + bet * (new_l + new_r)
            return (x.out(w_next - w_), x.store(new_theta, theta), x.store(new_l, big_l), x.store(new_g, big_g),
                    x.store(new_r, r))

        out, theta, big_l, big_g, r = tree.map_split(one, 5, updates, params, state.init_particles,
                                                     state.cumulative_gradients, state.scale, state.subgradients,
                                                     state.reward)
        return out, COCOBState(init_particles=state.init_particles, cumulative_gradients=theta, scale=big_l,
                               subgradients=big_g, reward=r)


@recipe
def cocob(
    learning_rate: ScalarOrSchedule = 1.0,
    alpha: Scalar = 100.0,
    eps: Scalar = 1e-8,
    weight_decay: Scalar = 0.0,
    mask: MaskOrFn = None,
) -> chain:
    """COCOB-Backprop (Orabona & Tommasi 2017): coin betting on the parameters, no step size to tune.

    ``add_decayed_weights -> scale_by_learning_rate(lr, flip_sign=False) -> scale_by_cocob``: the (decayed,
    scaled) gradient ``lr (g + weight_decay w)`` is the coin outcome of :class:`scale_by_cocob`, whose output is
    the whole step. Orabona & Tommasi 2017, "Training Deep Networks without Learning Rates Through Coin Betting",
    NeurIPS, arXiv 1705.07795. Signature and defaults of ``optax.contrib.cocob``. ``update`` needs ``params``.

    Args:
      learning_rate: a multiplier of the gradient, a number or a schedule of the 0-based step count. Default 1.
      alpha: the bound on the fraction of wealth bet early on, ``> 0``. Default 100.
      eps: the initial ``L``, ``> 0``. Default 1e-8.
      weight_decay: the weight decay ``>= 0`` added to the gradient. Default 0.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.

    Returns:
      A ``chain`` of the three blocks; its state is ``(EmptyState, EmptyState, COCOBState)``.

    Raises:
      ValueError: an option out of range, e.g. ``cocob(alpha=0.0): alpha must be > 0``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.cocob()
      >>> params = jnp.zeros(2)
      >>> updates, state = opt.update(jnp.array([1.0, -1.0]), opt.init(params), params)
      >>> print(updates)
      [-0.01  0.01]
    """
    return chain(
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate, flip_sign=False),
        scale_by_cocob(alpha, eps),
    )


# --------------------------------------------------------------------------------------------------
# Mechanic
# --------------------------------------------------------------------------------------------------


class MechanicState(NamedTuple):
    """The state of :class:`mechanize`.

    Attributes:
      base_optimizer_state: the base optimizer's state.
      count: the number of steps taken, an int32 scalar.
      r: the reward of each of the ``num_betas`` bettors, shape ``(num_betas,)``.
      m: the running maximum of ``|h|`` per bettor.
      v: the discounted sum of ``h^2`` per bettor.
      s: the scale of each bettor; the learned learning rate is their sum ``S``.
      x0: the reference point ``x_0`` (the first parameters seen by ``update``), like the parameters.

    The scalars are kept in ``gradtx.tree.widest_real_dtype(params)`` (float32 or wider).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.mechanize(gradtx.sgd(1.0), num_betas=3).init(jnp.zeros(2))
      >>> print(state.s)  # s_init each
      [1.e-06 1.e-06 1.e-06]
    """

    base_optimizer_state: OptState
    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    r: jax.Array
    m: jax.Array
    v: jax.Array
    s: jax.Array
    x0: Updates


@pytree_class
class mechanize(GradientTransformation):
    """Mechanic: learn the scale of a base optimizer's updates by coin betting (a learned learning rate).

    Cutkosky, Defazio & Mehta 2023, "Mechanic: A Learning Rate Tuner", NeurIPS, arXiv 2306.00144, Algorithm 1.
    With ``x_t = x_0 + S_{t-1} Delta_{t-1}`` (``S = sum_i s_i``), the base update ``b_t`` of ``g_t`` and
    ``beta_i = 1 - 10^-i`` (``i = 1..num_betas``)::

        g'_t   = g_t + wd S_{t-1} ||g_t|| / (||x_t|| + eps) x_t
        h_t    = <g'_t, (x_0 - x_t) / (S_{t-1} + eps)>          (-<g', Delta>)
        m_t    = max(beta m_{t-1}, |h_t| + eps);  v_t = beta^2 v_{t-1} + h_t^2
        r_t    = beta r_{t-1} + clip(h_t, -m_{t-1}, m_{t-1}) s_{t-1}
        s_t    = ((s_init / num_betas) m_t + max(r_t, 0)) / (sqrt(v_t) + eps)
        x_{t+1} = x_0 + S_t ((x_t - x_0) / (S_{t-1} + eps) + b_t)

    and the update is ``x_{t+1} - x_t``, computed as ``(x_0 - x_t)(1 - S_t / (S_{t-1} + eps)) + S_t b_t`` (Optax
    subtracts ``x_t`` from ``x_{t+1}``, which in float32 loses the small update to cancellation: 1% at step 1).
    ``x_0`` is the first ``params`` seen by update (as in Optax); ``update`` needs ``params``. Names, signature,
    defaults and state fields of ``optax.contrib.mechanize``. State: :class:`MechanicState`.

    Args:
      base_optimizer: the transformation whose updates are scaled (a gradtx or Optax transformation; a learning
        rate of 1 at its peak is the intended use).
      weight_decay: Mechanic's weight decay ``wd``, ``>= 0``. Default 1e-2.
      eps: the guard of the divisions, ``> 0``. Default 1e-8.
      s_init: the initial wealth, ``> 0``. Default 1e-6.
      num_betas: the number of decay rates ``beta_i`` bet in parallel, a whole number ``>= 1`` (static).
        Default 6.

    Raises:
      ValueError: an option out of range, e.g. ``mechanize(num_betas=0): num_betas must be a whole number
        >= 1``; at ``update``, no ``params``.
      TypeError: ``base_optimizer`` is not a transformation (``mechanize: expected a transformation with init
        and update, got 3``), or an option of the wrong type.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.mechanize(gradtx.sgd(1.0))
      >>> params = jnp.ones(2)
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), opt.init(params), params)
      >>> print(updates)  # the first step is S = s_init times the base step -g
      [-1.e-06  2.e-06]
    """

    base_optimizer: TransformationLike = option(accepts="a transformation")
    weight_decay: Scalar = non_negative(default=1e-2)
    eps: Scalar = positive(default=1e-8)
    s_init: Scalar = positive(default=1e-6)
    num_betas: int = integer(default=6, lo=1, static=True)

    def __check_init__(self) -> None:
        object.__setattr__(self, "base_optimizer", as_transformation(self.base_optimizer, "mechanize"))
        whole_numbers(self, "num_betas")

    def init(self, params: Params) -> MechanicState:
        dt = widest_real_dtype(params)
        zeros = jnp.zeros([self.num_betas], dt)
        return MechanicState(base_optimizer_state=self.base_optimizer.init(params), count=zero_count(), r=zeros,
                             m=zeros, v=zeros, s=jnp.full([self.num_betas], self.s_init, dt),
                             x0=jax.tree.map(jnp.asarray, params))

    def update(
        self, updates: Updates, state: MechanicState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, MechanicState]:
        _check_params("mechanize", state.x0, updates, params)
        base_updates, base_state = self.base_optimizer.update(updates, state.base_optimizer_state, params, **extra)
        dt = state.s.dtype
        first = state.count == 0
        x0 = jax.tree.map(lambda p, x: jnp.where(first, jnp.asarray(p).astype(jnp.asarray(x).dtype), x), params,
                          state.x0)
        eps, wd = tree.hyper(self.eps, dt), tree.hyper(self.weight_decay, dt)
        s_sum = jnp.sum(state.s)
        decay = wd * s_sum * safe_sqrt(sq_norm(updates, dt)) / (safe_sqrt(sq_norm(params, dt)) + eps)

        def decayed(g: Any, p: Any) -> Any:  # g' = g + decay x
            x = tree.Leaf(g)
            return x.cast(g) + x.cast(decay) * x.cast(p)

        def delta(a: Any, p: Any) -> Any:  # Delta_{t-1} = (x_t - x_0) / (S_{t-1} + eps), negated
            x = tree.Leaf(a)
            return (x.cast(a) - x.cast(p)) / x.cast(s_sum + eps)

        h = dot(jax.tree.map(decayed, updates, params), jax.tree.map(delta, x0, params), dt)
        betas = 1 - jnp.asarray([0.1 ** (i + 1) for i in range(self.num_betas)], dt)
        clipped = jnp.clip(h, -state.m, state.m)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)
        v = betas**2 * state.v + h**2
        r = betas * state.r + clipped * state.s
        wealth = tree.hyper(self.s_init, dt) / self.num_betas * m + jnp.maximum(r, 0)
        s = wealth / (safe_sqrt(v) + eps)
        s_new = jnp.sum(s)

        # x_{t+1} - x_t = (x_0 - x_t)(1 - S_t / (S_{t-1} + eps)) + S_t b_t, the same number as Optax's
        # (x_0 - S_t (delta - b_t)) - x_t without its cancellation: x_t and x_{t+1} agree to ~S_t |b_t|, so
        # subtracting them leaves float32 ulps of |x| (a 1% error at step 1 with S ~ 1e-6).
        keep = 1 - s_new / (s_sum + eps)

        def step(g: Any, a: Any, p: Any, b: Any) -> Any:
            x = tree.Leaf(a)
            return tree.Leaf(g).out((x.cast(a) - x.cast(p)) * x.cast(keep) + x.cast(s_new) * x.cast(b))

        new_updates = jax.tree.map(step, updates, x0, params, base_updates)
        new_state = MechanicState(base_optimizer_state=base_state, count=safe_int32_increment(state.count), r=r, m=m,
                                  v=v, s=s, x0=x0)
        return new_updates, new_state
