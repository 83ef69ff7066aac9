"""Sign-based and step-size-adaptive blocks: the direction is a sign, or the step is set by the data.

``k`` is the 1-based step, ``g_k`` the incoming update (the gradient); every block returns a *positive*
direction, the descent sign is added by ``scale_by_learning_rate`` in the recipes
(``gradtx.optimizers.sign_family``).

    scale_by_lion:                 c_k = b1 m_{k-1} + (1 - b1) g_k;  u = sign(c_k);  m_k = b2 m_{k-1} + (1 - b2) g_k
                                   (Chen et al. 2023, arXiv 2302.06675)
    scale_by_adadelta:             E[g^2]_k = rho E[g^2]_{k-1} + (1 - rho) g_k^2
                                   u = sqrt(E[dx^2]_{k-1} + eps) / sqrt(E[g^2]_k + eps) * g_k
                                   E[dx^2]_k = rho E[dx^2]_{k-1} + (1 - rho) u^2      (Zeiler 2012, arXiv 1212.5701)
    scale_by_rprop:                per coordinate step sizes, times eta_plus while the gradient keeps its sign,
                                   times eta_minus (and no move) when it flips; u = step * sign(g)
                                   (Riedmiller & Braun 1993; the iRprop- variant of Igel & Huesken 2000)
    scale_by_optimistic_gradient:  u = (alpha + beta) g_k - beta g_{k-1},  g_0 := g_1
                                   (Daskalakis et al. 2018, arXiv 1711.00141; Mokhtari et al. 2019, 1901.08511)
    scale_by_novograd:             per layer: v_k = b2 v_{k-1} + (1 - b2) ||g_k||^2 (v_1 = ||g_1||^2),
                                   m_k = b1 m_{k-1} + g_k / (sqrt(v_k + eps_root) + eps) + wd * p;  u = m_k
                                   (Ginsburg et al. 2019, arXiv 1905.11286)
    scale_by_polyak:               u = min((f - f*) / (||g||^2 + eps), max_learning_rate) * g
                                   (Loizou et al. 2021, arXiv 2002.10542); needs ``value=f`` in ``update``

Arithmetic runs in float32 or wider (``gradtx.tree.Leaf``); state is stored in the parameter dtype (``mu_dtype``
overrides Lion's and NovoGrad's first moment), outputs in the dtype of the incoming updates. Lion, Adadelta,
Rprop and NovoGrad keep per-leaf moments: their skeleton is :class:`gradtx.transforms.adam_base.AdamLike`.

Second moments that overflow (issue 15): Adadelta's ``E[g^2]`` and NovoGrad's ``v`` become ``inf`` for a float32
gradient above ~1.8e19; the output is then NaN, not a silent 0 (``gradtx.tree.precision.scale_ratio``), and
NovoGrad with ``eps = eps_root = 0`` maps a layer whose gradients were all 0 to 0, not NaN. Polyak's step uses
the squared global norm itself, which overflows for such gradients (the step then rounds to 0).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    OptState,
    Params,
    StatelessTransformation,
    Updates,
    check_tree_match,
)
from gradtx.fields import (
    choice,
    concrete_number,
    dtype_option,
    hyper,
    non_negative,
    positive,
    probability,
    pytree_class,
    real,
)
from gradtx.transforms.adam_base import AdamLike, Moment, Step
from gradtx.tree.precision import safe_sqrt, scale_ratio

__all__ = [
    "ScaleByAdaDeltaState",
    "ScaleByLionState",
    "ScaleByNovogradState",
    "ScaleByOptimisticGradientState",
    "ScaleByRpropState",
    "scale_by_adadelta",
    "scale_by_lion",
    "scale_by_novograd",
    "scale_by_optimistic_gradient",
    "scale_by_polyak",
    "scale_by_rprop",
]

# A squared gradient norm (plus eps) at or below this gives a zero Polyak step instead of a division by ~0.
# It is the float64 machine epsilon, Optax's threshold (``jnp.finfo(float).eps``) whatever the dtype.
_POLYAK_TINY = float(np.finfo(np.float64).eps)


class ScaleByLionState(NamedTuple):
    """Lion's step count and its momentum ``mu`` (the ``b2`` average of past gradients)."""

    count: jax.Array
    mu: Updates


class ScaleByAdaDeltaState(NamedTuple):
    """Adadelta's running averages of squared gradients ``e_g`` and of squared (unscaled) updates ``e_x``."""

    e_g: Updates
    e_x: Updates


class ScaleByRpropState(NamedTuple):
    """Rprop's per-coordinate ``step_sizes`` and the previous signed steps (0 after a sign flip)."""

    step_sizes: Updates
    prev_updates: Updates


class ScaleByOptimisticGradientState(NamedTuple):
    """Whether no update has happened yet (a boolean scalar) and the previous raw gradient."""

    is_initial_step: jax.Array
    previous_gradient: Updates


class ScaleByNovogradState(NamedTuple):
    """NovoGrad's step count, first moment ``mu`` (per parameter) and second moment ``nu`` (one scalar per leaf)."""

    count: jax.Array
    mu: Updates
    nu: Updates


# --------------------------------------------------------------------------------------------------
# Lion
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_lion(AdamLike):
    """Lion's direction (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", arXiv 2302.06675).

    ``c_k = b1 m_{k-1} + (1 - b1) g_k``, ``u = sign(c_k)``, then ``m_k = b2 m_{k-1} + (1 - b2) g_k`` from
    ``m_0 = 0``: the interpolation ``b1`` shapes the step, the slower ``b2`` keeps the momentum. ``mode``
    picks the sign function: ``'hard'`` (the paper's ``sign``), ``'smooth'`` (``tanh(smooth_beta * c)``) or
    ``'refined'`` (``c`` where ``|c| < 1``, else ``sign(c)``, i.e. ``clip(c, -1, 1)``). ``mu_dtype`` stores
    ``m`` in another dtype. With ``mode='hard'`` every coordinate of the output is -1, 0 or +1.
    """

    b1: Any = probability(default=0.9, closed=True)
    b2: Any = probability(default=0.99, closed=True)
    mu_dtype: Any = dtype_option(default=None)
    mode: str = choice(default="hard", choices=("hard", "smooth", "refined"), kw_only=True)
    smooth_beta: Any = positive(default=1.0, kw_only=True)

    State = ScaleByLionState
    moments = (Moment("mu", "mu_dtype"),)

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any) -> tuple[Any, Any]:
        c = x.ema(self.b1, mu, g)  # exact complements (gradtx.tree.ema)
        if self.mode == "hard":
            out = jnp.sign(c)
        elif self.mode == "smooth":
            out = jnp.tanh(x.hyper(self.smooth_beta) * c)
        else:  # refined: linear near 0, the sign beyond 1
            out = jnp.where(jnp.abs(c) < 1, c, jnp.sign(c))
        return out, x.ema(self.b2, mu, g)


# --------------------------------------------------------------------------------------------------
# Adadelta
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_adadelta(AdamLike):
    """Adadelta's rescaling (Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method", arXiv 1212.5701).

    Algorithm 1 of the paper, with ``RMS[y]_k = sqrt(E[y^2]_k + eps)``::

        E[g^2]_k  = rho E[g^2]_{k-1} + (1 - rho) g_k^2
        u_k       = RMS[dx]_{k-1} / RMS[g]_k * g_k
        E[dx^2]_k = rho E[dx^2]_{k-1} + (1 - rho) u_k^2

    from ``E[g^2]_0 = E[dx^2]_0 = 0``. Sign convention: the paper's step is ``dx_k = -u_k`` (eq. 14); this
    block returns ``+u_k`` like every gradtx block, and the descent sign comes from
    ``scale_by_learning_rate`` after it (``adadelta(learning_rate=None)`` uses a learning rate of 1 and so
    is exactly the paper's method). The accumulator ``E[dx^2]`` sees the unscaled ``u_k``, as in Optax:
    a learning rate other than 1 scales the step, not the statistics. ``eps`` must be positive: with
    ``eps = 0`` the first step is 0 and the method never moves.
    """

    rho: Any = probability(default=0.9, closed=True)
    eps: Any = positive(default=1e-6)

    State = ScaleByAdaDeltaState
    moments = (Moment("e_g"), Moment("e_x"))
    counts = ()

    def direction(self, x: tree.Leaf, step: Step, g: Any, e_g: Any, e_x: Any) -> tuple[Any, Any, Any]:
        eps = x.hyper(self.eps)
        new_e_g = x.ema(self.rho, e_g, x.abs_sq(g))  # exact complement
        u = scale_ratio(jnp.sqrt(x.cast(e_x) + eps), jnp.sqrt(new_e_g + eps)) * x.cast(g)  # NaN if E[g^2] = inf
        return u, new_e_g, x.ema(self.rho, e_x, x.abs_sq(u))


# --------------------------------------------------------------------------------------------------
# Rprop
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_rprop(AdamLike):
    """Resilient backpropagation (Riedmiller & Braun 1993), in the iRprop- form Optax implements.

    Each coordinate ``i`` keeps a step size ``d_i`` (initially ``learning_rate``) and its previous step
    ``s_i`` (``sign(g_i) d_i``, or 0 after a sign flip). With ``q_i = sign(g_i) sign(s_i)``::

        q_i > 0:  d_i <- clip(d_i * eta_plus,  min_step_size, max_step_size);  u_i = d_i sign(g_i)
        q_i < 0:  d_i <- clip(d_i * eta_minus, min_step_size, max_step_size);  u_i = 0   (and s_i <- 0)
        q_i = 0:  d_i unchanged;                                               u_i = d_i sign(g_i)

    Only the sign of the gradient is used (Igel & Huesken 2000, "Improving the Rprop learning algorithm":
    iRprop- forgets the gradient after a sign change, so the next step neither grows nor shrinks). The
    output is the positive step; ``rprop`` flips the sign. The paper bounds growth by ``max_step_size`` and
    shrinkage by ``min_step_size``; clipping into both bounds is the same while ``learning_rate`` lies in
    ``[min_step_size, max_step_size]``.

    Difference from Optax 0.2.8: Optax's ``scale_by_rprop`` returns the *previous* step (the stale
    ``state.prev_updates``), so its first update is 0 and every later one lags a step (a known defect, its
    pull request #1725). This block returns the step it has just computed, as the paper and
    ``torch.optim.Rprop`` do; the state (step sizes and ``prev_updates``) is the same as Optax's.
    """

    learning_rate: Any = positive()
    eta_minus: Any = hyper(default=0.5, lo=0.0, hi=1.0, lo_open=True)
    eta_plus: Any = hyper(default=1.2, lo=1.0)
    min_step_size: Any = non_negative(default=1e-6)
    max_step_size: Any = positive(default=50.0)

    State = ScaleByRpropState
    moments = (Moment("step_sizes", start="learning_rate"), Moment("prev_updates"))
    counts = ()

    def __check_init__(self) -> None:
        lo, hi = concrete_number(self.min_step_size), concrete_number(self.max_step_size)
        if lo is not None and hi is not None and lo > hi:
            self._fail("max_step_size", self.max_step_size, f"must be >= min_step_size={self.min_step_size!r}")

    def direction(self, x: tree.Leaf, step: Step, g: Any, d: Any, s: Any) -> tuple[Any, Any, Any]:
        g, d = x.cast(g), x.cast(d)
        sign_g = jnp.sign(g)
        q = sign_g * jnp.sign(x.cast(s))  # the sign of g * s without its underflow
        factor = jnp.where(q > 0, x.hyper(self.eta_plus), x.hyper(self.eta_minus))
        new_d = jnp.where(q == 0, d, jnp.clip(d * factor, x.hyper(self.min_step_size), x.hyper(self.max_step_size)))
        u = jnp.where(q < 0, jnp.zeros_like(g), new_d * sign_g)
        return u, new_d, u


# --------------------------------------------------------------------------------------------------
# Optimistic gradient
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_optimistic_gradient(GradientTransformation):
    """Generalised optimistic gradient: ``u_k = (alpha + beta) g_k - beta g_{k-1}``.

    Optimistic mirror descent (Daskalakis, Ilyas, Syrgkanis & Zeng 2018, "Training GANs with Optimism",
    arXiv 1711.00141) is ``alpha = beta = 1``: ``x <- x - lr (2 g_k - g_{k-1})``, a one-call approximation of
    extra-gradient that converges in last iterate on bilinear games; ``alpha``/``beta`` as in Mokhtari,
    Ozdaglar & Pattathil (2019, arXiv 1901.08511). There is no ``g_0``: the first step uses ``g_0 := g_1``
    (so ``u_1 = alpha g_1``), Optax's convention (its issue #1082). The state keeps the raw gradient.
    """

    alpha: Any = real(default=1.0)
    beta: Any = real(default=1.0)

    def init(self, params: Params) -> ScaleByOptimisticGradientState:
        return ScaleByOptimisticGradientState(
            is_initial_step=jnp.ones([], bool), previous_gradient=tree.zeros_like(params)
        )

    def update(
        self, updates: Updates, state: ScaleByOptimisticGradientState, params: Params | None = None, **extra: Any
    ):
        del params, extra
        check_tree_match("scale_by_optimistic_gradient.update", state.previous_gradient, updates)

        def one(g: Any, prev: Any) -> Any:
            x = tree.Leaf(g)
            alpha, beta = x.hyper(self.alpha), x.hyper(self.beta)
            g = x.cast(g)
            prev = jnp.where(state.is_initial_step, g, x.cast(prev))
            return x.out((alpha + beta) * g - beta * prev)

        out = jax.tree.map(one, updates, state.previous_gradient)
        previous = tree.cast_like(updates, state.previous_gradient)
        return out, ScaleByOptimisticGradientState(is_initial_step=jnp.zeros([], bool), previous_gradient=previous)


# --------------------------------------------------------------------------------------------------
# NovoGrad
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_novograd(AdamLike):
    """NovoGrad's layer-wise direction (Ginsburg et al. 2019, arXiv 1905.11286, Algorithm 1).

    Per leaf ``l`` (a layer), with one scalar second moment ``v^l``::

        v^l_1 = ||g^l_1||^2,            v^l_k = b2 v^l_{k-1} + (1 - b2) ||g^l_k||^2
        m^l_k = b1 m^l_{k-1} + g^l_k / (sqrt(v^l_k + eps_root) + eps) + weight_decay * p^l,   m^l_0 = 0
        u = m_k

    The first moment has no ``(1 - b1)`` factor, as in the paper. The update needs ``params`` (the weight
    decay term), like Optax's. ``mu_dtype`` stores ``m`` in another dtype; the output is always in the
    dtype of the incoming updates.
    """

    b1: Any = probability(default=0.9, closed=True)
    b2: Any = probability(default=0.25, closed=True)
    eps: Any = non_negative(default=1e-8)
    eps_root: Any = non_negative(default=0.0)
    weight_decay: Any = real(default=0.0)
    mu_dtype: Any = dtype_option(default=None)

    State = ScaleByNovogradState
    moments = (Moment("mu", "mu_dtype"), Moment("nu", start=lambda block, p, dtype: jnp.zeros([], jnp.result_type(p))))
    needs_params = True

    def update(self, updates: Updates, state: ScaleByNovogradState, params: Params | None = None, **extra: Any):
        if params is not None:
            check_tree_match("scale_by_novograd.update", state.mu, params, what="params")
        return super().update(updates, state, params, **extra)

    def direction(self, x: tree.Leaf, step: Step, g: Any, m: Any, n: Any, p: Any) -> tuple[Any, Any, Any]:
        g = x.cast(g)
        sq = jnp.sum(tree.abs_sq(g))  # the layer's squared norm
        new_n = jnp.where(step.count == 0, sq, x.ema(self.b2, n, sq))
        denom = safe_sqrt(new_n + x.hyper(self.eps_root)) + x.hyper(self.eps)
        new_m = x.hyper(self.b1) * x.cast(m) + scale_ratio(g, denom) + x.hyper(self.weight_decay) * x.cast(p)
        return new_m, new_m, new_n


# --------------------------------------------------------------------------------------------------
# Polyak step size
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_polyak(StatelessTransformation):
    """Scale by Polyak's step size: ``u = gamma * g`` with ``gamma = min((f - f_min) / (||g||^2 + eps), max_lr)``.

    The stochastic Polyak step SPS_max of Loizou, Vaswani, Laradji & Lacoste-Julien (2021, "Stochastic
    Polyak Step-size for SGD", arXiv 2002.10542) with ``c = 1``: ``f`` is the loss at the current
    parameters, ``f_min`` a lower bound on it (0 for models that interpolate the data), ``max_learning_rate``
    the cap ``gamma_b``. ``||g||`` is the norm of the whole update tree. ``variant='sps+'`` uses the
    positive part ``max(f - f_min, 0)`` (Garrigos et al. 2023, arXiv 2307.14528); with ``'sps'`` a loss
    below ``f_min`` gives a negative step. When ``||g||^2 + eps`` is at most the float64 machine epsilon
    the step is 0 (no division by zero).

    ``update`` needs the loss as the extra keyword argument ``value``:
    ``tx.update(grads, state, params, value=loss)``; chains pass it through. Without it ``update`` raises
    ``ValueError`` naming this block. The output is the positive step; ``polyak_sgd`` flips the sign.
    """

    f_min: Any = real(default=0.0)
    max_learning_rate: Any = positive(default=1.0)
    eps: Any = non_negative(default=0.0)
    variant: str = choice(default="sps", choices=("sps", "sps+"))

    def update(self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any):
        del params
        value = extra.get("value")
        if value is None:  # a missing argument: TypeError, as in Optax (whose update has value as a parameter)
            raise TypeError(
                "scale_by_polyak.update: the loss value is required as a keyword argument: "
                "call update(updates, state, params, value=loss) (chains such as polyak_sgd pass it on)"
            )
        sq = tree.norm(updates, squared=True)  # float32 or wider
        dt = sq.dtype
        gap = tree.hyper(value, dt) - tree.hyper(self.f_min, dt)
        if self.variant == "sps+":
            gap = jnp.maximum(gap, 0)
        denom = sq + tree.hyper(self.eps, dt)
        tiny = denom <= _POLYAK_TINY
        step = jnp.where(
            tiny, jnp.zeros_like(denom),
            jnp.minimum(gap / jnp.where(tiny, jnp.ones_like(denom), denom), tree.hyper(self.max_learning_rate, dt)),
        )

        def scaled(g: Any) -> Any:
            x = tree.Leaf(g)
            return x.out(x.cast(step) * x.cast(g))

        return jax.tree.map(scaled, updates), state
