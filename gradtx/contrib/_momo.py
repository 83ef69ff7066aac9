"""MoMo and MoMo-Adam: momentum with a Polyak-type model step (``optax.contrib.momo`` and ``momo_adam``: same
names, signatures, defaults and state fields).

Schaipp, Ohana, Eickenberg, Defazio & Gower 2023, "MoMo: Momentum Models for Adaptive Learning Rates", arXiv
2305.07583, Algorithms 1 and 2 with decoupled weight decay. ``update`` needs ``params`` and the loss as the
extra argument ``value`` (``jax.value_and_grad``). The scalars (the averaged loss, ``<g, x>``, the lower bound)
are kept in ``tree.widest_real_dtype(params)`` (float32 or wider).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    Params,
    Scalar,
    ScalarOrSchedule,
    Updates,
    check_tree_match,
    require_params,
    safe_int32_increment,
    zero_count,
)
from gradtx.contrib._common import dot, require_value, safe_sqrt, schedule_value, sq_norm
from gradtx.fields import flag, non_negative, positive, probability, pytree_class, real, scalar_or_schedule
from gradtx.tree.precision import debias, ema, widest_real_dtype

__all__ = ["MomoAdamState", "MomoState", "momo", "momo_adam"]

_TINY = float(np.finfo(np.float64).eps)  # below this squared norm the model step is 0 (as in Optax)


class MomoState(NamedTuple):
    """The state of :class:`momo` (Optax's field names).

    Attributes:
      exp_avg: the momentum ``d``, like the parameters.
      barf: ``fbar``, the averaged loss, a scalar.
      gamma: the averaged ``<g, x>``, a scalar.
      lb: the lower bound of the loss in use, a scalar.
      count: the number of steps taken, an int32 scalar.

    The scalars are kept in ``gradtx.tree.widest_real_dtype(params)`` (float32 or wider).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.momo(lower_bound=-1.0).init(jnp.zeros(2))
      >>> print(state.lb, state.exp_avg)
      -1.0 [0. 0.]
    """

    exp_avg: Updates
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array
    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count


class MomoAdamState(NamedTuple):
    """The state of :class:`momo_adam` (Optax's field names).

    Attributes:
      exp_avg: Adam's first moment ``m``, like the parameters.
      exp_avg_sq: Adam's second moment ``v``, like the parameters.
      barf: ``fbar``, the averaged loss, a scalar.
      gamma: the averaged ``<g, x>``, a scalar.
      lb: the lower bound of the loss in use, a scalar.
      count: the number of steps taken, an int32 scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.momo_adam().init(jnp.zeros(2))
      >>> print(state._fields)
      ('exp_avg', 'exp_avg_sq', 'barf', 'gamma', 'lb', 'count')
    """

    exp_avg: Updates
    exp_avg_sq: Updates
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array
    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count


def _start(name: str, updates: Updates, state: Any, params: Params | None, extra: dict[str, Any]) -> Any:
    """Check the call; the loss ``value``."""
    value = require_value(name, extra)
    require_params(f"{name}.update", params)
    check_tree_match(f"{name}.update", state.exp_avg, updates)
    check_tree_match(f"{name}.update", state.exp_avg, params, what="params")
    return value


def _model_step(updates: Updates, m: Updates, params: Params, shrink: jax.Array, tau: jax.Array,
                precond: Updates | None = None) -> Updates:
    """``-shrink x - tau m`` (``-shrink x - tau m / D`` with a metric ``precond``) leafwise, ``m`` and ``D`` in the
    compute dtype of the updates, returned in each update's dtype."""

    def one(g: Any, m: Any, p: Any, *pc: Any) -> Any:
        x = tree.Leaf(g)
        step = x.cast(tau) * m
        return x.out(-x.cast(shrink) * x.cast(p) - (step / pc[0] if pc else step))

    return jax.tree.map(one, updates, m, params, *(() if precond is None else (precond,)))


@pytree_class
class momo(GradientTransformation):
    """MoMo: momentum with a Polyak-type model step (an adaptive learning rate capped by ``learning_rate``).

    Schaipp, Ohana, Eickenberg, Defazio & Gower 2023, "MoMo: Momentum Models for Adaptive Learning Rates", arXiv
    2305.07583, Algorithm 1 with decoupled weight decay. With ``rho = 0`` at step 1, ``beta`` after, ``k`` the
    1-based step and ``x_k`` the parameters::

        d_k    = rho d_{k-1} + (1 - rho) g_k                  (exp_avg)
        fbar_k = rho fbar_{k-1} + (1 - rho) f(x_k)            (barf; f = the ``value`` passed to update)
        gam_k  = rho gam_{k-1} + (1 - rho) <g_k, x_k>         (gamma)
        c      = 1 + alpha_k wd
        tau_k  = min(alpha_k, max(c (fbar_k - lb - gam_k) + <d_k, x_k>, 0) / ||d_k||^2)   (0 if ||d_k||^2 <= eps64)
        u_k    = -(alpha_k wd / c) x_k - tau_k d_k

    ``alpha_k = learning_rate(k - 1)``; ``lb`` is ``lower_bound`` (a lower bound of the loss, 0 for most
    losses). ``adapt_lower_bound`` estimates it on the fly as in Optax (the paper's Section 4 rule):
    before the step ``lb`` becomes ``max(cap / (2c), lower_bound)`` where ``cap = c (fbar - gam) + <d, x> < c lb``,
    and after it ``lb = max(fbar + <d, x> - gam - tau ||d||^2 / 2, lower_bound)``. ``update`` needs ``params``
    and the loss as the extra argument ``value`` (``jax.value_and_grad``). State: :class:`MomoState`.

    Args:
      learning_rate: the cap ``alpha_k`` of the step, ``>= 0``, a number or a schedule of the 0-based step count.
        Default 1.
      beta: the momentum ``rho`` in ``[0, 1)``. Default 0.9.
      lower_bound: a lower bound of the loss (finite). Default 0.
      weight_decay: the decoupled weight decay, ``>= 0``. Default 0.
      adapt_lower_bound: estimate the lower bound on the fly. Default False.

    Raises:
      ValueError: an option out of range, e.g. ``momo(beta=1.0): beta must be in [0, 1)``; at ``update``, no
        ``params`` or no ``value`` (``momo.update: value is required (update(updates, state, params,
        value=loss); use jax.value_and_grad)``).
      TypeError: an option of the wrong type; at ``update``, updates or params whose tree does not match the
        state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.momo()
      >>> params = jnp.array([1.0, 2.0])
      >>> updates, state = opt.update(params, opt.init(params), params, value=2.5)  # f = |x|^2 / 2
      >>> print(updates)  # tau = min(1, (2.5 - 5 + 5) / 5) = 0.5
      [-0.5 -1. ]
    """

    learning_rate: ScalarOrSchedule = scalar_or_schedule(default=1.0, lo=0.0)
    beta: Scalar = probability(default=0.9)
    lower_bound: Scalar = real(default=0.0)
    weight_decay: Scalar = non_negative(default=0.0)
    adapt_lower_bound: bool = flag(default=False)

    def init(self, params: Params) -> MomoState:
        dt = widest_real_dtype(params)
        return MomoState(exp_avg=tree.zeros_like(params), barf=jnp.zeros([], dt), gamma=jnp.zeros([], dt),
                         lb=tree.hyper(self.lower_bound, dt), count=zero_count())

    def update(
        self, updates: Updates, state: MomoState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, MomoState]:
        value = _start("momo", updates, state, params, extra)
        dt = state.barf.dtype
        first = state.count == 0  # the averages start from their first values (rho = 0 at the first step)

        def average(old: Any, new: Any) -> Any:  # rho old + (1 - rho) new, the exact complement (gradtx.tree.ema)
            return jnp.where(first, new, ema(self.beta, old, new))

        def momentum(g: Any, m: Any) -> Any:
            x = tree.Leaf(g)
            return average(x.cast(m), x.cast(g))

        barf = average(state.barf, jnp.asarray(value).astype(dt))
        d = jax.tree.map(momentum, updates, state.exp_avg)
        gamma = average(state.gamma, dot(updates, params, dt))
        d_sq = sq_norm(d, dt)
        iprod = dot(d, params, dt)
        alpha = jnp.asarray(schedule_value(self.learning_rate, state.count)).astype(dt)
        wd, floor = tree.hyper(self.weight_decay, dt), tree.hyper(self.lower_bound, dt)
        c = 1 + alpha * wd
        lb = state.lb
        if self.adapt_lower_bound:
            cap = c * (barf - gamma) + iprod
            lb = jnp.where(cap < c * lb, jnp.maximum(cap / (2 * c), floor), lb)
        safe = d_sq > _TINY
        t1 = jnp.where(safe, jnp.maximum(c * (barf - lb - gamma) + iprod, 0) / jnp.where(safe, d_sq, 1), 0)
        tau = jnp.minimum(alpha, t1)
        new_updates = _model_step(updates, d, params, alpha * wd / c, tau)
        if self.adapt_lower_bound:
            lb = jnp.maximum(barf + iprod - gamma - tau * d_sq / 2, floor)
        new_state = MomoState(exp_avg=tree.cast_like(d, state.exp_avg), barf=barf, gamma=gamma, lb=lb,
                              count=safe_int32_increment(state.count))
        return new_updates, new_state


@pytree_class
class momo_adam(GradientTransformation):
    """MoMo-Adam: the MoMo model step in Adam's metric (an adaptive learning rate for Adam).

    Schaipp, Ohana, Eickenberg, Defazio & Gower 2023, "MoMo: Momentum Models for Adaptive Learning Rates", arXiv
    2305.07583, Algorithm 2 with decoupled weight decay. The model step in Adam's metric
    ``D_k = eps + sqrt(v_k / (1 - b2^k))``::

        m_k = b1 m_{k-1} + (1 - b1) g_k;  v_k = b2 v_{k-1} + (1 - b2) g_k^2
        fbar_k = b1 fbar_{k-1} + (1 - b1) f(x_k);  gam_k = b1 gam_{k-1} + (1 - b1) <g_k, x_k>
        c = 1 + alpha_k wd;  q_k = 1 - b1^k;  ||m||_D^2 = <m_k, m_k / D_k>
        tau_k = min(alpha_k / q_k, max(c (fbar_k - q_k lb - gam_k) + <m_k, x_k>, 0) / ||m||_D^2)
        u_k = -(alpha_k wd / c) x_k - tau_k m_k / D_k

    ``adapt_lower_bound`` as in :class:`momo`, with the bias corrections ``q_k`` (as in Optax). ``update`` needs
    ``params`` and the loss as the extra argument ``value``. State: :class:`MomoAdamState`.

    Args:
      learning_rate: the cap ``alpha_k`` of the step, ``>= 0``, a number or a schedule of the 0-based step count.
        Default 1e-2.
      b1: the decay of the first moment (and of the averaged loss), in ``[0, 1)``. Default 0.9.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.999.
      eps: added to the root of the second moment, ``> 0``. Default 1e-8.
      lower_bound: a lower bound of the loss (finite). Default 0.
      weight_decay: the decoupled weight decay, ``>= 0``. Default 0.
      adapt_lower_bound: estimate the lower bound on the fly. Default False.

    Raises:
      ValueError: an option out of range, e.g. ``momo_adam(eps=0.0): eps must be > 0``; at ``update``, no
        ``params`` or no ``value``.
      TypeError: an option of the wrong type; at ``update``, updates or params whose tree does not match the
        state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.momo_adam(learning_rate=1.0)
      >>> params = jnp.array([1.0, 2.0])
      >>> updates, state = opt.update(params, opt.init(params), params, value=2.5)  # f = |x|^2 / 2
      >>> print(updates)  # the model step, below the cap lr / (1 - b1)
      [-0.8333 -0.8333]
    """

    learning_rate: ScalarOrSchedule = scalar_or_schedule(default=1e-2, lo=0.0)
    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.999)
    eps: Scalar = positive(default=1e-8)
    lower_bound: Scalar = real(default=0.0)
    weight_decay: Scalar = non_negative(default=0.0)
    adapt_lower_bound: bool = flag(default=False)

    def init(self, params: Params) -> MomoAdamState:
        dt = widest_real_dtype(params)
        return MomoAdamState(exp_avg=tree.zeros_like(params), exp_avg_sq=tree.zeros_like(params),
                             barf=jnp.zeros([], dt), gamma=jnp.zeros([], dt), lb=tree.hyper(self.lower_bound, dt),
                             count=zero_count())

    def update(
        self, updates: Updates, state: MomoAdamState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, MomoAdamState]:
        value = _start("momo_adam", updates, state, params, extra)
        dt = state.barf.dtype
        count = safe_int32_increment(state.count)
        t = count.astype(dt)
        eps = tree.hyper(self.eps, dt)
        barf = ema(self.b1, state.barf, jnp.asarray(value).astype(dt))  # exact complements (gradtx.tree.ema)
        bc2 = debias(self.b2, t, dt)  # gradtx.tree's one bias correction

        def moments(g: Any, m: Any, v: Any) -> tuple[Any, Any, Any]:
            x = tree.Leaf(g)
            g = x.cast(g)
            m, v = x.ema(self.b1, m, g), x.ema(self.b2, v, g * g)
            return m, v, x.cast(eps) + safe_sqrt(v / x.cast(bc2))  # the metric D = eps + sqrt(v / (1 - b2^k))

        m_new, v_new, precond = tree.map_split(moments, 3, updates, state.exp_avg, state.exp_avg_sq)
        m_sq = dot(m_new, jax.tree.map(lambda m, pc: m / pc, m_new, precond), dt)
        gamma = ema(self.b1, state.gamma, dot(updates, params, dt))
        iprod = dot(m_new, params, dt)
        alpha = jnp.asarray(schedule_value(self.learning_rate, state.count)).astype(dt)
        wd, floor = tree.hyper(self.weight_decay, dt), tree.hyper(self.lower_bound, dt)
        c = 1 + alpha * wd
        bc1 = debias(self.b1, t, dt)
        lb = state.lb
        if self.adapt_lower_bound:
            cap = c * (barf - gamma) + iprod
            lb = jnp.where(cap < c * bc1 * lb, jnp.maximum(cap / (2 * bc1 * c), floor), lb)
        safe = m_sq > _TINY
        t1 = jnp.where(safe, jnp.maximum(c * (barf - bc1 * lb - gamma) + iprod, 0) / jnp.where(safe, m_sq, 1), 0)
        tau = jnp.minimum(alpha / bc1, t1)
        new_updates = _model_step(updates, m_new, params, alpha * wd / c, tau, precond)
        if self.adapt_lower_bound:
            lb = jnp.maximum((barf + iprod - gamma - tau * m_sq / 2) / bc1, floor)
        new_state = MomoAdamState(exp_avg=tree.cast_like(m_new, state.exp_avg),
                                  exp_avg_sq=tree.cast_like(v_new, state.exp_avg_sq), barf=barf, gamma=gamma, lb=lb,
                                  count=count)
        return new_updates, new_state
