"""Adam-like research optimizers: ADOPT, AdEMAMix (and its simplified form), MADGRAD, ACProp, Cautious, AdaBound
and AMSBound, MARS (AdamW form) and Adam-mini; each a block (``scale_by_*``) and a recipe (one ``chain``).

``k`` is the 1-based step, ``g`` the incoming gradient, ``lr`` the learning rate (a number or a schedule of the
0-based count). Arithmetic runs in float32 or wider (``gradtx.tree``); states are stored in the parameter dtype
(``mu_dtype`` and the keyword-only ``nu_dtype`` override the first and second moment's where the block has them:
ADOPT, AdEMAMix, Adam-mini); each step uses the unrounded new moments and rounds them only to store them;
outputs keep the gradient's dtype.

=======================  =================================================================================
adopt                    scale_by_adopt -> scale_by_learning_rate                     (Taniguchi et al. 2024)
ademamix                 scale_by_ademamix -> add_decayed_weights -> lr              (Pagliardini et al. 2024)
simplified_ademamix      scale_by_simplified_ademamix -> add_decayed_weights -> lr      (Morwani et al. 2025)
madgrad                  add_decayed_weights -> scale_by_madgrad (lr inside)       (Defazio & Jelassi 2021)
acprop                   scale_by_acprop -> add_decayed_weights -> lr                    (Zhuang et al. 2021)
cautious(tx)             tx, then the update masked where it disagrees with g in sign    (Liang et al. 2024)
adabound / amsbound      add_decayed_weights (L2) -> scale_by_adabound (lr inside)          (Luo et al. 2019)
mars_adamw               scale_by_mars -> scale_by_adam -> add_decayed_weights -> lr      (Yuan et al. 2024)
adam_mini                scale_by_adam_mini -> add_decayed_weights -> lr                  (Zhang et al. 2024)
=======================  =================================================================================

The Optax ones (adopt, ademamix, simplified_ademamix, madgrad, acprop) keep ``optax.contrib``'s names, signatures,
defaults and state fields; their conventions (which the float64 references in
``gradtx.testing.reference_contrib_adam`` follow) and the differences from the papers are written in each
docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    Params,
    Updates,
    as_pytree_callable,
    check_tree_match,
    pytree_class,
    require_params,
    safe_int32_increment,
    static_field,
    zero_count,
)
from gradtx.combine import chain
from gradtx.schedules import Schedule
from gradtx.schedules import _compute_dtype as _schedule_dtype
from gradtx.transforms import add_decayed_weights, scale_by_adam, scale_by_learning_rate
from gradtx.transforms.adam_family import ScaleByBeliefState, _Leaf, _map
from gradtx.transforms.adaptive import (
    ScaleByAdamState,
    checked_state_dtype,
    repr_with_state_dtypes,
    state_dtype_field,
)
from gradtx.wrappers import with_extra_args_support

__all__ = [
    "MadgradState",
    "ScaleByAdaBoundState",
    "ScaleByAdamMiniState",
    "ScaleByAdemamixState",
    "ScaleByAmsBoundState",
    "ScaleByMarsState",
    "ScaleBySimplifiedAdEMAMixState",
    "acprop",
    "adabound",
    "adam_mini",
    "ademamix",
    "ademamix_b3_schedule",
    "adopt",
    "amsbound",
    "cautious",
    "cautious_adamw",
    "madgrad",
    "mars_adamw",
    "scale_by_acprop",
    "scale_by_adabound",
    "scale_by_adam_mini",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_madgrad",
    "scale_by_mars",
    "scale_by_simplified_ademamix",
    "simplified_ademamix",
]


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _wide(x: Any, like: Any) -> jax.Array:
    """``x`` (a state leaf) in the wider of its own and ``like``'s real compute dtype (no implicit promotion)."""
    a, b = tree.compute_dtype(jnp.result_type(x)), tree.compute_dtype(jnp.result_type(like))
    return jnp.asarray(x).astype(a if a.itemsize >= b.itemsize else b)


def _scheduled(value: Any, count: jax.Array) -> Any:
    """A hyperparameter that may be a schedule of the 0-based count."""
    return value(count) if callable(value) else value


def _check_unit(obj: Any, name: str) -> None:
    """``name`` in [0, 1) unless it is a schedule."""
    if not callable(getattr(obj, name)):
        obj._check_range(name, 0.0, 1.0, hi_open=True)


def quarter_power(count: Any) -> jax.Array:
    """``count ** 0.25``: ADOPT's default clipping bound ``c_k`` (Taniguchi et al. 2024, §4)."""
    return jnp.asarray(count) ** 0.25


# --------------------------------------------------------------------------------------------------
# ADOPT
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_adopt(GradientTransformation):
    """ADOPT (Taniguchi et al. 2024, "ADOPT: Modified Adam Can Converge with Any beta2 with the Optimal Rate",
    arXiv 2411.02853, Algorithm 2 with clipping): normalise by the *previous* second moment, then average.

    With ``t = k - 1`` the 0-based count::

        t = 0:  v_0 = g^2,  m_0 = 0,  u = 0
        t > 0:  d = g / max(sqrt(v_{t-1}), eps),  clipped to [-c(t), c(t)] if use_clipping
                m_t = b1 m_{t-1} + (1 - b1) d,      v_t = b2 v_{t-1} + (1 - b2) g^2
                u = m_t   (nesterov: b1 m_t + (1 - b1) d)

    ``c(t) = clip_value_fn(t)``, default ``t ** 0.25``; gradtx passes ``t`` as a float of the widest real dtype of
    the updates (Optax passes the int32 count; the default gives the same numbers, and float64 runs keep float64).
    The first step only initialises ``v`` (the paper's ``v_0 = g_0^2``) and returns a zero update. State:
    ``ScaleByAdamState(count, mu, nu)`` as in Optax; ``mu_dtype`` stores ``m``.
    """

    b1: Any = 0.9
    b2: Any = 0.9999
    eps: Any = 1e-6
    mu_dtype: Any = static_field(default=None)
    nesterov: bool = static_field(default=False, kw_only=True)
    use_clipping: bool = static_field(default=True, kw_only=True)
    clip_value_fn: Callable[[Any], Any] = static_field(default=quarter_power, kw_only=True)
    nu_dtype: Any = state_dtype_field()

    def __post_init__(self) -> None:
        self._check_range("b1", 0.0, 1.0, hi_open=True)
        self._check_range("b2", 0.0, 1.0, hi_open=True)
        self._check_range("eps", 0.0)
        checked_state_dtype(self, "mu_dtype", real=True)
        checked_state_dtype(self, "nu_dtype", real=True)
        if not callable(self.clip_value_fn):
            self._fail("clip_value_fn", self.clip_value_fn, "must be a callable count -> clipping value")

    def __repr__(self) -> str:
        return repr_with_state_dtypes(self)

    def init(self, params: Params) -> ScaleByAdamState:
        return ScaleByAdamState(count=zero_count(), mu=tree.zeros_like(params, self.mu_dtype),
                                nu=tree.zeros_like(params, self.nu_dtype))

    def update(self, updates: Updates, state: ScaleByAdamState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_adopt.update", state.nu, updates)
        first = state.count == 0
        wide = tree.widest_real_dtype(updates)
        bound = self.clip_value_fn(state.count.astype(wide)) if self.use_clipping else None

        def one(g: Any, mu: Any, nu: Any) -> tuple[Any, Any, Any]:
            x = tree.up(g)
            v_old, m_old = _wide(nu, g), _wide(mu, g)
            x, v_old, m_old = (a.astype(np.result_type(x.dtype, v_old.dtype, m_old.dtype)) for a in (x, v_old, m_old))
            sq = x * x
            v = jnp.where(first, sq, tree.ema(self.b2, v_old, sq))
            d = x / jnp.maximum(jnp.sqrt(v_old), tree.hyper(self.eps, x))
            if bound is not None:
                c = jnp.asarray(bound).astype(x.dtype)
                d = jnp.clip(d, -c, c)
            m = jnp.where(first, m_old, tree.ema(self.b1, m_old, d))
            u = jnp.where(first, m, tree.ema(self.b1, m, d)) if self.nesterov else m
            return u.astype(jnp.result_type(g)), m.astype(mu.dtype), v.astype(nu.dtype)

        out, mu, nu = _map(one, 3, updates, state.mu, state.nu)
        return out, ScaleByAdamState(count=safe_int32_increment(state.count), mu=mu, nu=nu)


def adopt(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.9999,
    eps: Any = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[Any], Any] = quarter_power,
    nu_dtype: Any = None,
) -> chain:
    """ADOPT (Taniguchi et al. 2024, arXiv 2411.02853): Adam that normalises by the previous second moment
    before averaging, converging for any ``b2`` (see :class:`scale_by_adopt`)."""
    return chain(
        scale_by_adopt(b1, b2, eps, mu_dtype, nesterov=nesterov, use_clipping=use_clipping,
                       clip_value_fn=clip_value_fn, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


# --------------------------------------------------------------------------------------------------
# AdEMAMix
# --------------------------------------------------------------------------------------------------


class ScaleByAdemamixState(NamedTuple):
    """The counts of the fast EMA and second moment (``count``) and of the slow EMA and ``alpha`` (``count_m2``),
    the fast and slow EMAs ``m1``, ``m2`` and the second moment ``nu``."""

    count: jax.Array
    count_m2: jax.Array
    m1: Updates
    m2: Updates
    nu: Updates


@pytree_class
class scale_by_ademamix(GradientTransformation):
    """AdEMAMix (Pagliardini, Ablin & Grangier 2024, "The AdEMAMix Optimizer: Better, Faster, Older", arXiv
    2409.03137, Algorithm 1): Adam's direction plus ``alpha`` times a slow EMA of the gradients.

    ``m1_k = b1 m1 + (1 - b1) g``, ``m2_k = b3 m2 + (1 - b3) g``, ``nu_k = b2 nu + (1 - b2) |g|^2``,
    ``u = (m1_k / (1 - b1^k) + alpha m2_k) / (sqrt(nu_k / (1 - b2^k) + eps_root) + eps)``; the slow EMA is not
    bias-corrected (it fills slowly on purpose). ``b3`` and ``alpha`` may be schedules of the 0-based
    ``count_m2`` (the paper's warm-ups of both). Deviation from Optax: ``nu`` is stored in the parameter dtype
    (Optax stores it in ``mu_dtype``, which it documents as the first-moment dtype); ``mu_dtype`` stores
    ``m1`` and ``m2``. Complex parameters follow Optax (``|g|^2 = g conj(g)``).
    """

    b1: Any = 0.9
    b2: Any = 0.999
    b3: Any = 0.9999
    alpha: Any = 6.0
    eps: Any = 1e-8
    eps_root: Any = 0.0
    mu_dtype: Any = static_field(default=None)
    nu_dtype: Any = state_dtype_field()

    def __post_init__(self) -> None:
        object.__setattr__(self, "b3", as_pytree_callable(self.b3))
        object.__setattr__(self, "alpha", as_pytree_callable(self.alpha))
        self._check_range("b1", 0.0, 1.0, hi_open=True)
        self._check_range("b2", 0.0, 1.0, hi_open=True)
        _check_unit(self, "b3")
        if not callable(self.alpha):
            self._check_finite("alpha")
        self._check_range("eps", 0.0)
        self._check_range("eps_root", 0.0)
        checked_state_dtype(self, "mu_dtype")
        checked_state_dtype(self, "nu_dtype", real=True)

    def __repr__(self) -> str:
        return repr_with_state_dtypes(self)

    def init(self, params: Params) -> ScaleByAdemamixState:
        return ScaleByAdemamixState(
            count=zero_count(), count_m2=zero_count(), m1=tree.zeros_like(params, self.mu_dtype),
            m2=tree.zeros_like(params, self.mu_dtype), nu=tree.zeros_like(params, self.nu_dtype),
        )

    def update(self, updates: Updates, state: ScaleByAdemamixState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_ademamix.update", state.nu, updates)
        b3, alpha = _scheduled(self.b3, state.count_m2), _scheduled(self.alpha, state.count_m2)
        count = safe_int32_increment(state.count)

        def one(g: Any, m1: Any, m2: Any, nu: Any) -> tuple[Any, ...]:
            x = _Leaf(g)
            a1, a2 = x.ema(self.b1, m1, g), x.ema(b3, m2, g)
            v = x.rema(self.b2, nu, x.sq(g))
            num = a1 / x.c(tree.debias(self.b1, count, x.rt)) + x.c(x.h(alpha)) * a2
            den = jnp.sqrt(v / tree.debias(self.b2, count, x.rt) + x.h(self.eps_root)) + x.h(self.eps)
            return (num / x.c(den)).astype(x.dtype), a1.astype(m1.dtype), a2.astype(m2.dtype), v.astype(nu.dtype)

        out, m1, m2, nu = _map(one, 4, updates, state.m1, state.m2, state.nu)
        return out, ScaleByAdemamixState(count=count, count_m2=safe_int32_increment(state.count_m2), m1=m1, m2=m2,
                                         nu=nu)


@pytree_class
class ademamix_b3_schedule(Schedule):
    """AdEMAMix's warm-up of the slow EMA rate ``b3`` (Pagliardini et al. 2024, arXiv 2409.03137, Section 3 and
    Appendix; ``linear_hl_warmup_scheduler`` in the authors' ``apple/ml-ademamix``): the *half-life* of the
    EMA grows linearly from that of ``b3_start`` to that of ``b3`` over ``warmup`` steps, then ``b3`` stays::

        hl(b) = log(0.5) / log(b + 1e-8) - 1,      hl^-1(t) = 0.5 ** (1 / (t + 1))
        a = count / warmup;   b3(count) = hl^-1((1 - a) hl(b3_start) + a hl(b3))   for count < warmup

    (``count`` 0-based; a linear ramp of ``b3`` itself would leave the half-life short for most of the warm-up).
    The paper warms ``b3`` up from ``b3_start = b1`` and ``alpha`` linearly from 0 over the same number of
    steps, both usually the whole run: ``alpha = gradtx.schedules.linear_schedule(0.0, alpha, warmup)``.
    """

    b3: Any
    warmup: Any
    b3_start: Any = 0.9

    def __post_init__(self) -> None:
        self._check_range("b3", 0.0, 1.0, hi_open=True)
        self._check_range("b3_start", 0.0, 1.0, hi_open=True)
        self._check_range("warmup", 0.0, lo_open=True)

    def __call__(self, count: Any) -> jax.Array:
        dt = _schedule_dtype(self)
        half = jnp.log(jnp.asarray(0.5, dt))

        def hl(b: Any) -> jax.Array:
            return half / jnp.log(jnp.asarray(b, dt) + jnp.asarray(1e-8, dt)) - 1

        a = jnp.asarray(count, dt) / jnp.asarray(self.warmup, dt)
        mixed = (1 - a) * hl(self.b3_start) + a * hl(self.b3)
        return jnp.where(a < 1, jnp.asarray(0.5, dt) ** (1 / (jnp.where(a < 1, mixed, 0) + 1)),
                         jnp.asarray(self.b3, dt))


def ademamix(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    b3: Any = 0.9999,
    alpha: Any = 5.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    weight_decay: Any = 0.0,
    mask: Any = None,
    *,
    nu_dtype: Any = None,
) -> chain:
    """AdEMAMix (Pagliardini et al. 2024, arXiv 2409.03137): AdamW with a mixture of a fast and a slow EMA of the
    gradients (see :class:`scale_by_ademamix`); weight decay decoupled and multiplied by the learning rate."""
    return chain(
        scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """The step count ``t``, the (undamped) momentum ``m`` and the second moment ``n``."""

    t: jax.Array
    m: Updates
    n: Updates


@pytree_class
class scale_by_simplified_ademamix(GradientTransformation):
    """Simplified AdEMAMix (Morwani, Vyas, Kakade et al. 2025, "Connections between Schedule-Free Optimizers,
    AdEMAMix, and Accelerated SGD Variants", arXiv 2502.02431, Algorithm 2): one undamped momentum buffer.

    ``m_k = b1 m_{k-1} + g`` (no ``1 - b1``), ``n_k = b2 n_{k-1} + (1 - b2) g^2``,
    ``u = (m_k + alpha g) / (sqrt(n_k / (1 - b2^k) + eps_root) + eps)``; ``alpha`` may be a schedule of the
    0-based count. ``alpha = 0`` is Adam with ``lr / (1 - b1)`` and no first-moment bias correction.
    Real parameters only (Optax squares ``g`` without conjugating).
    """

    b1: Any = 0.99
    b2: Any = 0.95
    alpha: Any = 0.0
    eps: Any = 1e-8
    eps_root: Any = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", as_pytree_callable(self.alpha))
        self._check_range("b1", 0.0, 1.0, hi_open=True)
        self._check_range("b2", 0.0, 1.0, hi_open=True)
        if not callable(self.alpha):
            self._check_finite("alpha")
        self._check_range("eps", 0.0)
        self._check_range("eps_root", 0.0)

    def init(self, params: Params) -> ScaleBySimplifiedAdEMAMixState:
        return ScaleBySimplifiedAdEMAMixState(t=zero_count(), m=tree.zeros_like(params), n=tree.zeros_like(params))

    def update(
        self, updates: Updates, state: ScaleBySimplifiedAdEMAMixState, params: Params | None = None, **extra: Any
    ):
        del params, extra
        check_tree_match("scale_by_simplified_ademamix.update", state.n, updates)
        alpha = _scheduled(self.alpha, state.t)
        t = safe_int32_increment(state.t)

        def one(g: Any, m: Any, n: Any) -> tuple[Any, ...]:
            x = tree.up(g)
            mw, nw = _wide(m, g).astype(x.dtype), _wide(n, g).astype(x.dtype)
            m_new = tree.hyper(self.b1, x) * mw + x
            n_new = tree.ema(self.b2, nw, x * x)
            n_hat = n_new / tree.debias(self.b2, t, x)
            u = (m_new + tree.hyper(alpha, x) * x) / (jnp.sqrt(n_hat + tree.hyper(self.eps_root, x))
                                                      + tree.hyper(self.eps, x))
            return u.astype(jnp.result_type(g)), m_new.astype(m.dtype), n_new.astype(n.dtype)

        out, m, n = _map(one, 3, updates, state.m, state.n)
        return out, ScaleBySimplifiedAdEMAMixState(t=t, m=m, n=n)


def simplified_ademamix(
    learning_rate: Any,
    b1: Any = 0.99,
    b2: Any = 0.95,
    alpha: Any = 0.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> chain:
    """Simplified AdEMAMix (Morwani et al. 2025, arXiv 2502.02431; see :class:`scale_by_simplified_ademamix`)."""
    return chain(
        scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


# --------------------------------------------------------------------------------------------------
# MADGRAD
# --------------------------------------------------------------------------------------------------


class MadgradState(NamedTuple):
    """The step count, the weighted sums of squared gradients ``grad_sum_sq`` and of gradients ``s``, and the
    initial parameters ``x0``."""

    count: jax.Array
    grad_sum_sq: Updates
    s: Updates
    x0: Params


@pytree_class
class scale_by_madgrad(GradientTransformation):
    """MADGRAD (Defazio & Jelassi 2021, "Adaptivity without Compromise: A Momentumized, Adaptive, Dual Averaged
    Gradient Method for Stochastic Optimization", arXiv 2101.11075, Algorithm 1): dual averaging with a cube-root
    scale and momentum by averaging iterates. Returns the whole update (the learning rate is inside).

    With ``t = k - 1`` the 0-based count and ``lambda = (lr(t) + eps) sqrt(t + 1)`` (the ``+ eps`` of the
    authors' PyTorch code, kept by Optax)::

        s_k = s_{k-1} + lambda g,   G_k = G_{k-1} + lambda g^2,   z = x0 - s_k / (cbrt(G_k) + eps)
        x_new = momentum x + (1 - momentum) z,    u = x_new - x = (1 - momentum) ((x0 - x) - s_k / (cbrt(G_k) + eps))

    (the paper's averaging weight ``c_{k+1}`` is ``1 - momentum``). Needs ``params``; ``x0`` is a copy of the
    parameters given to ``init``.
    """

    learning_rate: Any
    momentum: Any = 0.9
    eps: Any = 1e-6

    def __post_init__(self) -> None:
        object.__setattr__(self, "learning_rate", as_pytree_callable(self.learning_rate))
        if not callable(self.learning_rate):
            self._check_finite("learning_rate")
        self._check_range("momentum", 0.0, 1.0, hi_open=True)
        self._check_range("eps", 0.0)

    def init(self, params: Params) -> MadgradState:
        return MadgradState(count=zero_count(), grad_sum_sq=tree.zeros_like(params), s=tree.zeros_like(params),
                            x0=jax.tree.map(jnp.copy, params))

    def update(self, updates: Updates, state: MadgradState, params: Params | None = None, **extra: Any):
        del extra
        require_params("scale_by_madgrad.update", params)
        check_tree_match("scale_by_madgrad.update", state.s, updates)
        lr = _scheduled(self.learning_rate, state.count)

        def one(g: Any, gss: Any, s: Any, x0: Any, p: Any) -> tuple[Any, ...]:
            x = tree.up(g)
            gw, sw, x0w, pw = (_wide(a, g).astype(x.dtype) for a in (gss, s, x0, p))
            eps = tree.hyper(self.eps, x)
            lam = (tree.hyper(lr, x) + eps) * jnp.sqrt((state.count + 1).astype(x.dtype))
            gss_new, s_new = gw + lam * x * x, sw + lam * x
            u = tree.complement(self.momentum, x) * ((x0w - pw) - s_new / (jnp.cbrt(gss_new) + eps))
            return u.astype(jnp.result_type(g)), gss_new.astype(gss.dtype), s_new.astype(s.dtype)

        out, gss, s = _map(one, 3, updates, state.grad_sum_sq, state.s, state.x0, params)
        return out, MadgradState(count=safe_int32_increment(state.count), grad_sum_sq=gss, s=s, x0=state.x0)


def madgrad(learning_rate: Any, momentum: Any = 0.9, weight_decay: Any = 0.0, eps: Any = 1e-6) -> chain:
    """MADGRAD (Defazio & Jelassi 2021, arXiv 2101.11075; see :class:`scale_by_madgrad`), with L2 weight decay
    added to the gradient as in the paper's code and Optax."""
    return chain(add_decayed_weights(weight_decay), scale_by_madgrad(learning_rate, momentum, eps))


# --------------------------------------------------------------------------------------------------
# ACProp
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_acprop(GradientTransformation):
    """ACProp (Zhuang, Ding, Tang et al. 2021, "Momentum Centering and Asynchronous Update for Adaptive Gradient
    Methods", arXiv 2110.05454, Algorithm 2): AdaBelief's centred second moment, used *asynchronously*.

    The denominator uses the statistics of the previous steps only::

        u = g / (sqrt(s_{k-1} / (1 - b2^(k-1))) + eps)      (k = 1: u = g / (1 + eps))
        m_k = b1 m_{k-1} + (1 - b1) g,   s_k = b2 s_{k-1} + (1 - b2) |g - m_{k-1}|^2 + eps_root

    Conventions of ``optax.contrib.acprop`` (and of the authors' code): the prediction error uses the momentum
    *before* this step (``m_{k-1}``; Optax's docstring writes ``m_k``, its code uses ``m_{k-1}``), the numerator
    is the raw gradient, and the first step divides by ``1 + eps``. State: ``ScaleByBeliefState(count, mu, nu)``.
    """

    b1: Any = 0.9
    b2: Any = 0.999
    eps: Any = 1e-16
    eps_root: Any = 1e-16

    def __post_init__(self) -> None:
        self._check_range("b1", 0.0, 1.0, hi_open=True)
        self._check_range("b2", 0.0, 1.0, hi_open=True)
        self._check_range("eps", 0.0)
        self._check_range("eps_root", 0.0)

    def init(self, params: Params) -> ScaleByBeliefState:
        return ScaleByBeliefState(count=zero_count(), mu=tree.zeros_like(params), nu=tree.zeros_like(params))

    def update(self, updates: Updates, state: ScaleByBeliefState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_acprop.update", state.nu, updates)
        first = state.count == 0
        prev = jnp.maximum(state.count, 1)

        def one(g: Any, mu: Any, nu: Any) -> tuple[Any, ...]:
            x = _Leaf(g)
            m = x.ema(self.b1, mu, g)
            s_old = x.r(nu)
            s = x.rema(self.b2, s_old, x.sq(x.c(g) - x.c(mu))) + x.h(self.eps_root)
            s_hat = jnp.where(first, jnp.ones_like(s_old), s_old / tree.debias(self.b2, prev, x.rt))
            u = x.c(g) / x.c(jnp.sqrt(s_hat) + x.h(self.eps))
            return u.astype(x.dtype), m.astype(mu.dtype), s.astype(nu.dtype)

        out, mu, nu = _map(one, 3, updates, state.mu, state.nu)
        return out, ScaleByBeliefState(count=safe_int32_increment(state.count), mu=mu, nu=nu)


def acprop(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    eps_root: Any = 1e-16,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> chain:
    """ACProp (Zhuang et al. 2021, arXiv 2110.05454; see :class:`scale_by_acprop`), decoupled weight decay."""
    return chain(
        scale_by_acprop(b1, b2, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


# --------------------------------------------------------------------------------------------------
# Cautious
# --------------------------------------------------------------------------------------------------


@pytree_class
class cautious(GradientTransformation):
    """Cautious optimizers (Liang, Chen, Liu & Liu 2024, "Cautious Optimizers: Improving Training with One Line
    of Code", arXiv 2411.16085, Algorithm 1): keep only the coordinates of the update that move against the
    gradient, and rescale so the update keeps its size on average.

    ``u = tx(g)`` is an update to *add* to the parameters (a full optimizer such as ``adamw(...)``); per leaf::

        phi = 1[u * g < 0]           (the paper's u_t o g_t > 0 with its u_t = -our u: a descent coordinate)
        u'  = u * phi * n / (sum(phi) + 1)       (normalize=True; n = the leaf's size)

    The rescaling is that of the authors' code (``kyleliang919/C-Optim``: ``numel / (sum + 1)`` per tensor); the
    paper's Algorithm 1 writes ``1 / (mean(phi) + eps)``, the same with ``eps = 1 / n``. ``normalize=False``
    keeps the mask alone. The state is ``tx``'s state, unchanged. Real parameters only.

    ``descent=False`` wraps a block whose output a later ``scale_by_learning_rate`` negates (``scale_by_adam()``
    and the other ``scale_by_*`` directions): the mask is then ``1[u * g > 0]``. With the default
    ``descent=True`` such a block points uphill everywhere and every coordinate would be masked.

    Weight decay: everything ``tx`` outputs is masked, so ``cautious(adamw(lr, weight_decay=wd))`` masks and
    rescales the decay term too. The authors' C-AdamW decays every coordinate and masks only the Adam step:
    that is :func:`cautious_adamw`.
    """

    inner: Any
    normalize: bool = static_field(default=True, kw_only=True)
    descent: bool = static_field(default=True, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inner", with_extra_args_support(self.inner))

    def init(self, params: Params) -> Any:
        return self.inner.init(params)

    def update(self, updates: Updates, state: Any, params: Params | None = None, **extra: Any):
        out, state = self.inner.update(updates, state, params, **extra)

        def one(u: Any, g: Any) -> jax.Array:
            x = tree.up(u)
            agree = x * tree.up(g).astype(x.dtype)
            keep = ((agree < 0) if self.descent else (agree > 0)).astype(x.dtype)
            if self.normalize:
                keep = keep * (jnp.asarray(jnp.size(keep), x.dtype) / (jnp.sum(keep) + 1))
            return (x * keep).astype(jnp.result_type(u))

        return jax.tree.map(one, out, updates), state


def cautious_adamw(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-4,
    mask: Any = None,
    normalize: bool = True,
) -> chain:
    """C-AdamW (Liang et al. 2024, arXiv 2411.16085, Algorithm 2; ``kyleliang919/C-Optim``): AdamW whose Adam step
    is masked to the coordinates where it agrees in sign with the gradient (:class:`cautious`), while the decoupled
    weight decay ``-lr wd theta`` reaches every coordinate::

        u = -lr (cautious(m_hat / (sqrt(v_hat) + eps)) + wd theta)

    Defaults as :func:`gradtx.adamw`'s."""
    return chain(
        cautious(scale_by_adam(b1, b2, eps), normalize=normalize, descent=False),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


# --------------------------------------------------------------------------------------------------
# AdaBound and AMSBound
# --------------------------------------------------------------------------------------------------


class ScaleByAdaBoundState(NamedTuple):
    """AdaBound's step count and Adam's moments ``mu``, ``nu``."""

    count: jax.Array
    mu: Updates
    nu: Updates


class ScaleByAmsBoundState(NamedTuple):
    """AMSBound's step count, ``mu``, ``nu`` and the running maximum ``nu_max`` of ``nu``."""

    count: jax.Array
    mu: Updates
    nu: Updates
    nu_max: Updates


@pytree_class
class scale_by_adabound(GradientTransformation):
    """AdaBound / AMSBound (Luo, Xiong, Liu & Sun 2019, "Adaptive Gradient Methods with Dynamic Bound of Learning
    Rate", ICLR, arXiv 1902.09843, Algorithms 2 and 3): Adam whose per-coordinate step size is clipped to bounds
    that close in on ``final_lr``, so it turns into SGD. Returns the whole update (the learning rate is inside).

    As in the authors' code (``Luolc/AdaBound``; the paper's Algorithm 2 divides by ``sqrt(k)`` instead of
    correcting bias)::

        m_k = b1 m + (1 - b1) g,   v_k = b2 v + (1 - b2) g^2    (amsbound: vmax_k = max(vmax_{k-1}, v_k))
        eta = clip(lr (sqrt(1 - b2^k) / (1 - b1^k)) / (sqrt(v_k) + eps), lower_k, upper_k)   (amsbound: vmax_k)
        lower_k = final_lr (1 - 1 / (gamma k + 1)),   upper_k = final_lr (1 + 1 / (gamma k))
        u = -eta m_k

    ``learning_rate`` and ``final_lr`` may be schedules of the 0-based count (the authors' code scales
    ``final_lr`` with the decayed learning rate: pass both as schedules for that).
    """

    learning_rate: Any = 1e-3
    b1: Any = 0.9
    b2: Any = 0.999
    final_lr: Any = 0.1
    gamma: Any = 1e-3
    eps: Any = 1e-8
    amsbound: bool = static_field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "learning_rate", as_pytree_callable(self.learning_rate))
        object.__setattr__(self, "final_lr", as_pytree_callable(self.final_lr))
        if not callable(self.learning_rate):
            self._check_range("learning_rate", 0.0)
        if not callable(self.final_lr):
            self._check_range("final_lr", 0.0)
        self._check_range("b1", 0.0, 1.0, hi_open=True)
        self._check_range("b2", 0.0, 1.0, hi_open=True)
        self._check_range("gamma", 0.0, lo_open=True)
        self._check_range("eps", 0.0)

    def init(self, params: Params) -> ScaleByAdaBoundState | ScaleByAmsBoundState:
        mu, nu = tree.zeros_like(params), tree.zeros_like(params)
        if self.amsbound:
            return ScaleByAmsBoundState(count=zero_count(), mu=mu, nu=nu, nu_max=tree.zeros_like(params))
        return ScaleByAdaBoundState(count=zero_count(), mu=mu, nu=nu)

    def update(self, updates: Updates, state: Any, params: Params | None = None, **extra: Any):
        del params, extra
        name = "scale_by_adabound.update"
        check_tree_match(name, state.nu, updates)
        lr, final = _scheduled(self.learning_rate, state.count), _scheduled(self.final_lr, state.count)
        count = safe_int32_increment(state.count)
        nu_max_in = state.nu_max if self.amsbound else state.nu

        def one(g: Any, mu: Any, nu: Any, vmax: Any) -> tuple[Any, ...]:
            x = tree.up(g)
            mw, vw, vmw = (_wide(a, g).astype(x.dtype) for a in (mu, nu, vmax))
            k = count.astype(x.dtype)
            m = tree.ema(self.b1, mw, x)
            v = tree.ema(self.b2, vw, x * x)
            vm = jnp.maximum(vmw, v) if self.amsbound else v
            step = tree.hyper(lr, x) * jnp.sqrt(tree.debias(self.b2, k, x)) / tree.debias(self.b1, k, x)
            f, gamma = tree.hyper(final, x), tree.hyper(self.gamma, x)
            lower, upper = f * (1 - 1 / (gamma * k + 1)), f * (1 + 1 / (gamma * k))
            eta = jnp.clip(step / (jnp.sqrt(vm) + tree.hyper(self.eps, x)), lower, upper)
            return (-eta * m).astype(jnp.result_type(g)), m.astype(mu.dtype), v.astype(nu.dtype), vm.astype(vmax.dtype)

        out, mu, nu, vmax = _map(one, 4, updates, state.mu, state.nu, nu_max_in)
        if self.amsbound:
            return out, ScaleByAmsBoundState(count=count, mu=mu, nu=nu, nu_max=vmax)
        return out, ScaleByAdaBoundState(count=count, mu=mu, nu=nu)


def adabound(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    final_lr: Any = 0.1,
    gamma: Any = 1e-3,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> chain:
    """AdaBound (Luo et al. 2019, arXiv 1902.09843; see :class:`scale_by_adabound`), with L2 weight decay added to
    the gradient as in the authors' code (defaults theirs: ``final_lr=0.1``, ``gamma=1e-3``)."""
    return chain(add_decayed_weights(weight_decay, mask),
                 scale_by_adabound(learning_rate, b1, b2, final_lr, gamma, eps))


def amsbound(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    final_lr: Any = 0.1,
    gamma: Any = 1e-3,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> chain:
    """AMSBound (Luo et al. 2019, arXiv 1902.09843, Algorithm 3): AdaBound with AMSGrad's running maximum of the
    second moment (see :class:`scale_by_adabound`)."""
    return chain(add_decayed_weights(weight_decay, mask),
                 scale_by_adabound(learning_rate, b1, b2, final_lr, gamma, eps, amsbound=True))


# --------------------------------------------------------------------------------------------------
# MARS
# --------------------------------------------------------------------------------------------------


class ScaleByMarsState(NamedTuple):
    """The previous gradient ``last_grad`` (zeros before the first step)."""

    last_grad: Updates


@pytree_class
class scale_by_mars(GradientTransformation):
    """MARS's variance-reduced gradient (Yuan, Liu, Wu et al. 2024, "MARS: Unleashing the Power of Variance
    Reduction for Training Large Models", arXiv 2411.10438, Algorithm 2, the approximate form MARS-approx that
    needs no second gradient evaluation)::

        c_k = g_k + gamma (b1 / (1 - b1)) (g_k - g_{k-1}),       g_0 = 0 (the authors' code)
        c_k <- c_k * max_norm / ||c_k||   where ||c_k|| > max_norm   (per leaf; max_norm=None: no clipping)

    Feed it to an Adam-type block (:func:`mars_adamw`). ``b1`` is the momentum of that block.
    """

    b1: Any = 0.95
    gamma: Any = 0.025
    max_norm: Any = 1.0

    def __post_init__(self) -> None:
        self._check_range("b1", 0.0, 1.0, hi_open=True)
        self._check_range("gamma", 0.0)
        if self.max_norm is not None:
            self._check_range("max_norm", 0.0, lo_open=True)

    def init(self, params: Params) -> ScaleByMarsState:
        return ScaleByMarsState(last_grad=tree.zeros_like(params))

    def update(self, updates: Updates, state: ScaleByMarsState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_mars.update", state.last_grad, updates)

        def one(g: Any, last: Any) -> jax.Array:
            x = tree.up(g)
            ratio = tree.hyper(self.b1, x) / tree.complement(self.b1, x)
            c = x + tree.hyper(self.gamma, x) * ratio * (x - _wide(last, g).astype(x.dtype))
            if self.max_norm is not None:
                norm = jnp.sqrt(jnp.sum(tree.abs_sq(c)))  # |c|^2: the modulus for complex leaves
                cap = tree.hyper(self.max_norm, x)
                c = c * jnp.where(norm > cap, cap / jnp.where(norm > cap, norm, 1), 1).astype(x.dtype)
            return c.astype(jnp.result_type(g))

        # The previous gradient is kept in the state's dtype (the parameters'), whatever the gradient's dtype.
        last = jax.tree.map(lambda g, old: jnp.asarray(g).astype(jnp.result_type(old)), updates, state.last_grad)
        return jax.tree.map(one, updates, state.last_grad), ScaleByMarsState(last_grad=last)


def mars_adamw(
    learning_rate: Any,
    b1: Any = 0.95,
    b2: Any = 0.99,
    eps: Any = 1e-8,
    gamma: Any = 0.025,
    weight_decay: Any = 0.0,
    mask: Any = None,
    max_norm: Any = 1.0,
) -> chain:
    """MARS-AdamW (Yuan et al. 2024, arXiv 2411.10438, Algorithm 2, approximate form): AdamW on the clipped
    variance-reduced gradient of :class:`scale_by_mars` (defaults: the authors', ``b1=0.95``, ``b2=0.99``,
    ``gamma=0.025``). Named ``mars_adamw`` because MARS is a family (AdamW, Lion and Shampoo instances); this is
    its AdamW instance. Unlike the authors' default (``optimize_1d=False``), every leaf gets the MARS correction."""
    return chain(
        scale_by_mars(b1, gamma, max_norm),
        scale_by_adam(b1, b2, eps),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


# --------------------------------------------------------------------------------------------------
# Adam-mini
# --------------------------------------------------------------------------------------------------


class ScaleByAdamMiniState(NamedTuple):
    """The step count, the first moment ``mu`` (like the parameters) and one second moment per block ``nu``
    (each leaf's shape with the averaged axes kept as size 1)."""

    count: jax.Array
    mu: Updates
    nu: Updates


def _block_axes(blocks: Any, p: Any) -> tuple[int, ...]:
    ndim = len(jnp.shape(p))
    if callable(blocks):
        chosen: Any = blocks(p)
        axes = tuple(int(a) % max(ndim, 1) for a in chosen)
    elif blocks == "leaf" or ndim < 2:
        axes = tuple(range(ndim))
    else:  # "row": one value per index of the first axis
        axes = tuple(range(1, ndim))
    return axes


@pytree_class
class scale_by_adam_mini(GradientTransformation):
    """Adam-mini (Zhang, Chen, Li et al. 2024, "Adam-mini: Use Fewer Learning Rates To Gain More", arXiv
    2406.16793, Algorithm 1): Adam with one second-moment value per parameter block.

    For a block ``B`` of a leaf: ``v_B = b2 v_B + (1 - b2) mean_{i in B} g_i^2``; ``m`` is Adam's; ``u = (m_k /
    (1 - b1^k)) / (sqrt(v_B / (1 - b2^k)) + eps)``. Blocks (``blocks``, static):

    - ``"row"`` (default): a matrix (rank >= 2) has one block per index of its first axis (a row of a
      ``(out, in)`` weight, an output neuron; the paper's partition for most layers), other leaves one block;
    - ``"leaf"``: one block per leaf;
    - a callable ``leaf -> axes``: the axes averaged over (the block is everything sharing the other indices,
      e.g. ``lambda p: (0, 2)`` for one block per head of a ``(d, heads, head_dim)`` query/key weight, the
      paper's partition for attention).

    Layouts: "row" is one block per output neuron for PyTorch's ``(out, in)`` weights. Flax and Haiku kernels
    are ``(in, out)``: there ``lambda p: tuple(range(p.ndim - 1))`` (everything but the last axis) gives one block
    per output neuron, while "row" gives one per input neuron. The authors' code gives biases plain Adam; here a
    vector is one block unless ``blocks`` says otherwise.
    """

    b1: Any = 0.9
    b2: Any = 0.999
    eps: Any = 1e-8
    blocks: Any = static_field(default="row")
    mu_dtype: Any = state_dtype_field()
    nu_dtype: Any = state_dtype_field()

    def __post_init__(self) -> None:
        self._check_range("b1", 0.0, 1.0, hi_open=True)
        self._check_range("b2", 0.0, 1.0, hi_open=True)
        self._check_range("eps", 0.0)
        if not callable(self.blocks):
            self._check_choice("blocks", ("row", "leaf"))
        checked_state_dtype(self, "mu_dtype", real=True)
        checked_state_dtype(self, "nu_dtype", real=True)

    def __repr__(self) -> str:
        return repr_with_state_dtypes(self)

    def init(self, params: Params) -> ScaleByAdamMiniState:
        def block_zeros(p: Any) -> jax.Array:
            shape = list(jnp.shape(p))
            for a in _block_axes(self.blocks, p):
                shape[a] = 1
            return jnp.zeros(tuple(shape), self.nu_dtype or jnp.result_type(p))

        return ScaleByAdamMiniState(count=zero_count(), mu=tree.zeros_like(params, self.mu_dtype),
                                    nu=jax.tree.map(block_zeros, params))

    def update(self, updates: Updates, state: ScaleByAdamMiniState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_adam_mini.update", state.mu, updates)
        count = safe_int32_increment(state.count)

        def one(g: Any, mu: Any, nu: Any) -> tuple[Any, ...]:
            x = tree.up(g)
            mw, vw = _wide(mu, g).astype(x.dtype), _wide(nu, g).astype(x.dtype)
            k = count.astype(x.dtype)
            m = tree.ema(self.b1, mw, x)
            axes = _block_axes(self.blocks, g)
            mean_sq = jnp.mean(x * x, axis=axes, keepdims=True) if x.size else jnp.zeros(vw.shape, x.dtype)
            v = tree.ema(self.b2, vw, mean_sq)
            u = (m / tree.debias(self.b1, k, x)) / (jnp.sqrt(v / tree.debias(self.b2, k, x)) + tree.hyper(self.eps, x))
            return u.astype(jnp.result_type(g)), m.astype(mu.dtype), v.astype(nu.dtype)

        out, mu, nu = _map(one, 3, updates, state.mu, state.nu)
        return out, ScaleByAdamMiniState(count=count, mu=mu, nu=nu)


def adam_mini(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    mask: Any = None,
    *,
    blocks: Any = "row",
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> chain:
    """Adam-mini (Zhang et al. 2024, arXiv 2406.16793; see :class:`scale_by_adam_mini`), decoupled weight decay
    as AdamW."""
    return chain(
        scale_by_adam_mini(b1, b2, eps, blocks, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
