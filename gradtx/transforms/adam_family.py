"""The Adam family: Adam's two moments with another denominator, another first moment, or a rectifier.

With ``k`` the 1-based step, ``m_k = b1 m_{k-1} + (1 - b1) g_k`` and ``hat`` the bias correction
``x_hat = x_k / (1 - b^k)`` (Kingma & Ba 2015, Algorithm 1), each block returns ``u`` (no learning rate):

    scale_by_adamax:   v_k = max(b2 v_{k-1}, |g_k| + eps);             u = m_hat / v_k
    scale_by_amsgrad:  vmax_k = max(vmax_{k-1}, v_hat);                 u = m_hat / (sqrt(vmax_k + eps_root) + eps)
    scale_by_belief:   s_k = b2 s_{k-1} + (1 - b2)(g_k - m_k)^2 + eps_root;  u = m_hat / (sqrt(s_hat) + eps)
    scale_by_yogi:     v_k = v_{k-1} - (1 - b2) sign(v_{k-1} - g_k^2) g_k^2; u = m_hat / (sqrt(v_hat + eps_root) + eps)
    scale_by_radam:    u = r_k * Adam's u  if rho_k >= threshold,  else m_hat   (the rectified variance)
    scale_by_adan:     moments of g, of g_k - g_{k-1} and of the Nesterov-corrected g (three decays)

Decay rates: ``1 - b`` is formed before rounding (``0.001`` for ``b = 0.999``, not ``1 - float32(0.999)``), every
average applies the decay ``1 - (1 - b)`` and every bias correction ``1 - b^k`` is ``-expm1(k log1p(-(1 - b)))``
from that same complement (``gradtx.tree.complement``, ``ema``, ``debias``): the moments and their corrections are
consistent, and float32 runs track float64 4 to 100 times more closely than Optax's (``benchmarks/
float32_accuracy.py``).

Precision: every leaf is computed in its compute dtype (float32 or wider, ``gradtx.tree``); state is stored
in its own dtype (the parameter's unless ``mu_dtype`` / ``nu_dtype`` say otherwise: every block has both, for
its first-moment and second-moment state) and the output in the update's dtype. Each step's output uses the
unrounded new moments; they are rounded only to be stored (see ``gradtx.transforms.adaptive`` on bfloat16
second moments). ``nu_dtype``, and ``mu_dtype`` where Optax has none, are keyword-only, after Optax's
parameters, and shown in the ``repr`` only when set.

Complex parameters (all blocks but ``scale_by_adan``, as in Optax): ``g`` is the *conjugated* gradient, the
update to add to the parameters (Optax's convention,
https://gist.github.com/wdphy16/118aef6fb5f82c49790d7678cf87da29). First moments average ``g`` itself;
second moments, maxima and Yogi's sign use the real ``|g|^2 = g conj(g)`` (``|g|`` for Adamax), so each
output keeps the phase of its first moment. Second-moment state is stored in the parameter dtype (complex,
with zero imaginary part), as Optax stores it.
"""

from __future__ import annotations

import math
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
    check_tree_match,
    pytree_class,
    safe_int32_increment,
    static_field,
    zero_count,
)
from gradtx.transforms.adaptive import (
    ScaleByAdamState,
    checked_state_dtype,
    repr_with_state_dtypes,
    state_dtype_field,
)

__all__ = [
    "ScaleByAdamState",
    "ScaleByAdanState",
    "ScaleByAmsgradState",
    "ScaleByBeliefState",
    "radam_rho",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_amsgrad",
    "scale_by_belief",
    "scale_by_radam",
    "scale_by_yogi",
]


class ScaleByAmsgradState(NamedTuple):
    """AMSGrad's step count, first moment ``mu``, second moment ``nu`` and its running maximum ``nu_max``."""

    count: jax.Array
    mu: Updates
    nu: Updates
    nu_max: Updates


class ScaleByBeliefState(NamedTuple):
    """AdaBelief's step count, first moment ``mu`` and second moment of the prediction error ``nu``."""

    count: jax.Array
    mu: Updates
    nu: Updates


class ScaleByAdanState(NamedTuple):
    """Adan's moments of the gradient ``m``, of its difference ``v``, of the corrected square ``n``, the
    previous gradient ``g`` and the step count ``t`` (Optax's names and order)."""

    m: Updates
    v: Updates
    n: Updates
    g: Updates
    t: jax.Array


# --------------------------------------------------------------------------------------------------
# Leafwise helpers: explicit casts only (strict dtype promotion), complex leaves kept complex.
# --------------------------------------------------------------------------------------------------


class _Leaf:
    """The dtypes one leaf computes in: ``ct`` (its compute dtype, complex for complex leaves), ``rt`` (real)."""

    def __init__(self, g: Any):
        self.dtype = jnp.result_type(g)
        self.ct = tree.compute_dtype(self.dtype)
        self.rt = np.dtype(jnp.finfo(self.ct).dtype)

    def h(self, value: Any) -> jax.Array:
        """A real scalar hyperparameter in the real compute dtype."""
        return tree.hyper(value, self.rt)

    def c(self, x: Any) -> jax.Array:
        """``x`` (an array or a real scalar) in the compute dtype, complex for complex leaves."""
        return jnp.asarray(x).astype(self.ct)

    def r(self, x: Any) -> jax.Array:
        """The real part of ``x`` in the real compute dtype (second-moment state is real-valued)."""
        x = jnp.asarray(x)
        return (jnp.real(x) if jnp.iscomplexobj(x) else x).astype(self.rt)

    def sq(self, x: Any) -> jax.Array:
        """``|x|^2`` in the real compute dtype."""
        return self.r(tree.abs_sq(self.c(x)))

    def ema(self, decay: Any, old: Any, new: Any) -> jax.Array:
        """``decay * old + (1 - decay) * new`` in the compute dtype (complex kept), as :func:`gradtx.tree.ema`
        from the exact complement."""
        return tree.ema(decay, self.c(old), self.c(new))

    def rema(self, decay: Any, old: Any, new: Any) -> jax.Array:
        """:meth:`ema` of real-valued (second-moment) quantities in the real compute dtype."""
        return tree.ema(decay, self.r(old), self.r(new))

    def nesterov_hat(self, b1: Any, m: Any, g: Any, count: Any) -> jax.Array:
        """NAdam's first moment (Dozat 2016): ``b1 m / (1 - b1^(k+1)) + (1 - b1) g / (1 - b1^k)``; an :meth:`ema` of the
        two corrected terms (the exact complement)."""
        ahead = self.c(m) / self.c(tree.debias(b1, safe_int32_increment(count), self.rt))
        return tree.ema(b1, ahead, self.c(g) / self.c(tree.debias(b1, count, self.rt)))


def _split(updates: Updates, out: Any, n: int) -> tuple[Any, ...]:
    """Split a tree of ``n``-tuples (one per leaf of ``updates``) into ``n`` trees."""
    return tuple(jax.tree.map(lambda _, o, i=i: o[i], updates, out) for i in range(n))


def _map(fn: Callable[..., tuple[Any, ...]], n: int, updates: Updates, *trees: Any) -> tuple[Any, ...]:
    """``fn`` leaf by leaf over ``updates`` and the state trees; ``n`` outputs per leaf, as ``n`` trees."""
    return _split(updates, jax.tree.map(fn, updates, *trees), n)


# --------------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_adamax(GradientTransformation):
    """Adamax (Kingma & Ba 2015, arXiv 1412.6980, §7.1, Algorithm 2): Adam with the infinity norm.

    ``m_k = b1 m_{k-1} + (1 - b1) g_k``, ``v_k = max(b2 v_{k-1}, |g_k| + eps)``,
    ``u = m_k / ((1 - b1^k) v_k)``; ``v`` needs no bias correction. As in Optax, ``eps`` sits inside the
    maximum (the paper has ``u_k = max(b2 u_{k-1}, |g_k|)`` and no ``eps``), so ``v_k >= eps``. The state
    is ``ScaleByAdamState(count, mu=m, nu=v)``; ``mu_dtype`` and ``nu_dtype`` store ``m`` and ``v``.
    """

    b1: Any = 0.9
    b2: Any = 0.999
    eps: Any = 1e-8
    mu_dtype: Any = state_dtype_field()
    nu_dtype: Any = state_dtype_field()

    def __post_init__(self) -> None:
        self._check_range("b1", 0.0, 1.0, hi_open=True)
        self._check_range("b2", 0.0, 1.0)
        self._check_range("eps", 0.0)
        checked_state_dtype(self, "mu_dtype")
        checked_state_dtype(self, "nu_dtype", real=True)

    def __repr__(self) -> str:
        return repr_with_state_dtypes(self)

    def init(self, params: Params) -> ScaleByAdamState:
        return ScaleByAdamState(
            count=zero_count(), mu=tree.zeros_like(params, self.mu_dtype), nu=tree.zeros_like(params, self.nu_dtype)
        )

    def update(self, updates: Updates, state: ScaleByAdamState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_adamax.update", state.mu, updates)
        count = safe_int32_increment(state.count)

        def one(g: Any, mu: Any, nu: Any) -> tuple[Any, Any, Any]:
            x = _Leaf(g)
            m = x.ema(self.b1, mu, g)
            v_old = x.r(nu)
            v = jnp.maximum(x.rema(self.b2, v_old, jnp.zeros_like(v_old)), x.r(jnp.abs(x.c(g))) + x.h(self.eps))
            u = m / x.c(tree.debias(self.b1, count, x.rt) * v)
            return u.astype(x.dtype), m.astype(mu.dtype), v.astype(nu.dtype)

        out, mu, nu = _map(one, 3, updates, state.mu, state.nu)
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)


@pytree_class
class scale_by_amsgrad(GradientTransformation):
    """AMSGrad (Reddi, Kale & Kumar 2018, "On the Convergence of Adam and Beyond", Algorithm 2).

    ``m_k``, ``v_k`` as in Adam; ``vmax_k = max(vmax_{k-1}, v_eff)`` from ``vmax_0 = 0``;
    ``u = m_eff / (sqrt(vmax_k + eps_root) + eps)``. Optax's variant, the default here: ``m_eff = m_hat`` and
    ``v_eff = v_hat`` are bias corrected *before* the maximum. ``bias_correction_mu=False`` and
    ``bias_correction_nu=False`` give the paper's ``m_k / (sqrt(max_j v_j) + eps)``. ``mu_dtype`` stores ``m``
    in another dtype, ``nu_dtype`` both ``v`` and its running maximum.
    """

    b1: Any = 0.9
    b2: Any = 0.999
    eps: Any = 1e-8
    eps_root: Any = 0.0
    mu_dtype: Any = static_field(default=None)
    bias_correction_mu: bool = static_field(default=True)
    bias_correction_nu: bool = static_field(default=True)
    nu_dtype: Any = state_dtype_field()

    def __post_init__(self) -> None:
        self._check_range("b1", 0.0, 1.0, hi_open=self.bias_correction_mu)
        self._check_range("b2", 0.0, 1.0, hi_open=self.bias_correction_nu)
        self._check_range("eps", 0.0)
        self._check_range("eps_root", 0.0)
        checked_state_dtype(self, "mu_dtype")
        checked_state_dtype(self, "nu_dtype", real=True)

    def __repr__(self) -> str:
        return repr_with_state_dtypes(self)

    def init(self, params: Params) -> ScaleByAmsgradState:
        return ScaleByAmsgradState(
            count=zero_count(),
            mu=tree.zeros_like(params, self.mu_dtype),
            nu=tree.zeros_like(params, self.nu_dtype),
            nu_max=tree.zeros_like(params, self.nu_dtype),
        )

    def update(self, updates: Updates, state: ScaleByAmsgradState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_amsgrad.update", state.nu, updates)
        count = safe_int32_increment(state.count)

        def one(g: Any, mu: Any, nu: Any, nu_max: Any) -> tuple[Any, Any, Any, Any]:
            x = _Leaf(g)
            m = x.ema(self.b1, mu, g)
            v = x.rema(self.b2, nu, x.sq(g))
            m_eff = m / x.c(tree.debias(self.b1, count, x.rt)) if self.bias_correction_mu else m
            v_eff = v / tree.debias(self.b2, count, x.rt) if self.bias_correction_nu else v
            v_max = jnp.maximum(x.r(nu_max), v_eff)
            u = m_eff / x.c(jnp.sqrt(v_max + x.h(self.eps_root)) + x.h(self.eps))
            return u.astype(x.dtype), m.astype(mu.dtype), v.astype(nu.dtype), v_max.astype(nu_max.dtype)

        out, mu, nu, nu_max = _map(one, 4, updates, state.mu, state.nu, state.nu_max)
        return out, ScaleByAmsgradState(count=count, mu=mu, nu=nu, nu_max=nu_max)


@pytree_class
class scale_by_belief(GradientTransformation):
    """AdaBelief (Zhuang et al. 2020, arXiv 2010.07468, Algorithm 2): scale by the belief in the gradient.

    ``m_k = b1 m_{k-1} + (1 - b1) g_k``, ``s_k = b2 s_{k-1} + (1 - b2) (g_k - m_k)^2 + eps_root``,
    ``u = m_hat / (sqrt(s_hat) + eps)`` with ``s_hat = s_k / (1 - b2^k)``: the second moment is that of the
    prediction error ``g_k - m_k``, small when the gradient is where the momentum expected it. The paper's one
    ``eps`` is split in two (``eps_root`` added to ``s``, stored, and ``eps`` in the denominator); Optax's
    defaults are ``1e-16`` for both (the paper's: ``eps=1e-8``, ``eps_root=0``). With ``nesterov``, NAdam's
    ``m_hat = b1 m_k / (1 - b1^(k+1)) + (1 - b1) g_k / (1 - b1^k)``. ``mu_dtype`` and ``nu_dtype`` store ``m``
    and ``s``.
    """

    b1: Any = 0.9
    b2: Any = 0.999
    eps: Any = 1e-16
    eps_root: Any = 1e-16
    nesterov: bool = static_field(default=False, kw_only=True)
    mu_dtype: Any = state_dtype_field()
    nu_dtype: Any = state_dtype_field()

    def __post_init__(self) -> None:
        self._check_range("b1", 0.0, 1.0, hi_open=True)
        self._check_range("b2", 0.0, 1.0, hi_open=True)
        self._check_range("eps", 0.0)
        self._check_range("eps_root", 0.0)
        checked_state_dtype(self, "mu_dtype")
        checked_state_dtype(self, "nu_dtype", real=True)

    def __repr__(self) -> str:
        return repr_with_state_dtypes(self)

    def init(self, params: Params) -> ScaleByBeliefState:
        return ScaleByBeliefState(
            count=zero_count(), mu=tree.zeros_like(params, self.mu_dtype), nu=tree.zeros_like(params, self.nu_dtype)
        )

    def update(self, updates: Updates, state: ScaleByBeliefState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_belief.update", state.nu, updates)
        count = safe_int32_increment(state.count)

        def one(g: Any, mu: Any, nu: Any) -> tuple[Any, Any, Any]:
            x = _Leaf(g)
            m = x.ema(self.b1, mu, g)
            s = x.rema(self.b2, nu, x.sq(x.c(g) - m)) + x.h(self.eps_root)
            if self.nesterov:
                m_hat = x.nesterov_hat(self.b1, m, g, count)
            else:
                m_hat = m / x.c(tree.debias(self.b1, count, x.rt))
            s_hat = s / tree.debias(self.b2, count, x.rt)
            u = m_hat / x.c(jnp.sqrt(s_hat) + x.h(self.eps))
            return u.astype(x.dtype), m.astype(mu.dtype), s.astype(nu.dtype)

        out, mu, nu = _map(one, 3, updates, state.mu, state.nu)
        return out, ScaleByBeliefState(count=count, mu=mu, nu=nu)


@pytree_class
class scale_by_yogi(GradientTransformation):
    """Yogi (Zaheer, Reddi, Sachan, Kale & Kumar 2018, NeurIPS, "Adaptive Methods for Nonconvex
    Optimization", Algorithm 2): an additive second moment that cannot grow the step size abruptly.

    ``m_k = b1 m_{k-1} + (1 - b1) g_k``, ``v_k = v_{k-1} - (1 - b2) sign(v_{k-1} - g_k^2) g_k^2``,
    ``u = m_hat / (sqrt(v_hat + eps_root) + eps)``. Optax's conventions, kept here: *both* moments start at
    ``initial_accumulator_value`` (the paper initialises ``v_0`` to a small constant, ``m_0 = 0``) and both
    are bias corrected by ``1 - b^k`` (the paper has no bias correction). The state is
    ``ScaleByAdamState(count, mu=m, nu=v)``; ``mu_dtype`` and ``nu_dtype`` store ``m`` and ``v``.
    """

    b1: Any = 0.9
    b2: Any = 0.999
    eps: Any = 1e-3
    eps_root: Any = 0.0
    initial_accumulator_value: Any = 1e-6
    mu_dtype: Any = state_dtype_field()
    nu_dtype: Any = state_dtype_field()

    def __post_init__(self) -> None:
        self._check_range("b1", 0.0, 1.0, hi_open=True)
        self._check_range("b2", 0.0, 1.0, hi_open=True)
        self._check_range("eps", 0.0)
        self._check_range("eps_root", 0.0)
        self._check_range("initial_accumulator_value", 0.0)
        checked_state_dtype(self, "mu_dtype")
        checked_state_dtype(self, "nu_dtype", real=True)

    def __repr__(self) -> str:
        return repr_with_state_dtypes(self)

    def init(self, params: Params) -> ScaleByAdamState:
        start = self.initial_accumulator_value
        return ScaleByAdamState(
            count=zero_count(),
            mu=tree.full_like(params, start, self.mu_dtype),
            nu=tree.full_like(params, start, self.nu_dtype),
        )

    def update(self, updates: Updates, state: ScaleByAdamState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_yogi.update", state.nu, updates)
        count = safe_int32_increment(state.count)

        def one(g: Any, mu: Any, nu: Any) -> tuple[Any, Any, Any]:
            x = _Leaf(g)
            m = x.ema(self.b1, mu, g)
            v_prev, g2 = x.r(nu), x.sq(g)
            v = v_prev - tree.complement(self.b2, x.rt) * jnp.sign(v_prev - g2) * g2
            m_hat = m / x.c(tree.debias(self.b1, count, x.rt))
            v_hat = v / tree.debias(self.b2, count, x.rt)
            u = m_hat / x.c(jnp.sqrt(v_hat + x.h(self.eps_root)) + x.h(self.eps))
            return u.astype(x.dtype), m.astype(mu.dtype), v.astype(nu.dtype)

        out, mu, nu = _map(one, 3, updates, state.mu, state.nu)
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)


# Bernoulli coefficients of phi(y) = 1/expm1(y) - 1/y + 1/2 = sum_n B_2n y^(2n-1) / (2n)!, for |y| < 2 pi.
_PHI = (1 / 12, -1 / 720, 1 / 30240, -1 / 1209600, 1 / 47900160, -691 / 1307674368000)
_Y_SERIES = 0.25  # below: the series (truncation < 1e-14 relative); above: the direct formula, no cancellation
_E_SERIES = 0.05  # 1 - b2 below this: -log1p(-e) - e by its series e^2/2 + e^3/3 + ...


def radam_rho(b2: Any, count: Any, dtype: Any = jnp.float32) -> tuple[jax.Array, jax.Array]:
    """RAdam's ``(rho_k, rho_inf)`` (Liu et al. 2020, arXiv 1908.03265, eq. 6 and Algorithm 2), in ``dtype``.

    ``rho_inf = 2 / (1 - b2) - 1`` and ``rho_k = rho_inf - 2 k b2^k / (1 - b2^k)``, the degrees of freedom of
    the approximated simple moving average. Written naively, ``rho_k`` is a difference of two numbers near
    ``2 / (1 - b2)`` (2000 for ``b2 = 0.999``) whose result is ``~k``: float32 loses ~1e-2 of it, enough to
    move the rectifier by 1% at the first rectified steps. Here, with ``L = -log b2`` and ``y = k L``,
    ``rho_k = (2/(1-b2) - 2/L) - 1 + k - 2 k phi(y)`` where ``phi(y) = 1/expm1(y) - 1/y + 1/2``, every term
    computed without cancellation while ``y < 1/4`` (series), and ``rho_inf - 2k / expm1(y)`` above (where
    ``rho_k >~ rho_inf / 8`` and nothing cancels badly).
    """
    rt = np.dtype(jnp.finfo(tree.compute_dtype(dtype)).dtype)
    k = jnp.asarray(count).astype(rt)
    e = tree.complement(b2, rt)
    rho_inf = 2 / e - 1
    degenerate = e >= 1  # b2 = 0: b2^k = 0, rho_k = rho_inf = 1 (handled apart to keep gradients finite)
    e = jnp.where(degenerate, 0.5, e)
    log_b = -jnp.log1p(-e)  # L = -log b2 > 0
    y = k * log_b
    small = y < _Y_SERIES
    # Direct, for y >= 1/4. Past y = 80, 2 k b2^k / (1 - b2^k) < 1e-25 is below rounding: expm1 stays finite.
    direct = rho_inf - 2 * k / jnp.expm1(jnp.where(small, _Y_SERIES, jnp.where(y > 80, 80.0, y)))
    # Series, for y < 1/4, hence L < 1/4 and e < 1 - exp(-1/4) < 0.23. Each branch sees safe inputs.
    ys = jnp.where(small, y, 0.0)
    phi = jnp.zeros_like(ys)
    for coef in reversed(_PHI):
        phi = phi * (ys * ys) + coef
    phi = phi * ys
    es = jnp.where(small, e, _E_SERIES)
    ls = jnp.where(small, log_b, -math.log1p(-_E_SERIES))
    tail = jnp.zeros_like(es)  # (L - e) / e^2 = sum_{j >= 0} e^j / (j + 2)
    for j in reversed(range(16)):
        tail = tail * es + 1.0 / (j + 2)
    l_minus_e = jnp.where(es < _E_SERIES, tail * es * es, ls - es)
    series = 2 * l_minus_e / (es * ls) - 1 + k - 2 * k * phi
    rho = jnp.where(small, series, direct)
    return jnp.where(degenerate, rho_inf, rho), rho_inf


@pytree_class
class scale_by_radam(GradientTransformation):
    """Rectified Adam (Liu et al. 2020, arXiv 1908.03265, Algorithm 2): Adam times a variance rectifier.

    ``m_k``, ``v_k``, ``m_hat``, ``v_hat`` as in Adam; ``rho_inf = 2 / (1 - b2) - 1``,
    ``rho_k = rho_inf - 2 k b2^k / (1 - b2^k)``. While ``rho_k < threshold`` the variance of the adaptive
    step is intractable and ``u = m_hat`` (SGD with momentum); from then on
    ``u = r_k m_hat / (sqrt(v_hat + eps_root) + eps)`` with
    ``r_k = sqrt((rho_k - 4)(rho_k - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_k))``.
    Optax's conventions: the test is ``rho_k >= threshold`` with ``threshold = 5`` (the paper's Algorithm 2
    has ``rho_k > 4``, its code ``>= 5``); ``eps`` outside the root (the paper's ``l_k = sqrt((1 - b2^k)/v_k)``
    has none). ``nesterov`` uses NAdam's ``m_hat``. ``rho_k`` is computed without cancellation (see
    :func:`radam_rho`), so float32 gives the float64 rectifier. ``threshold`` must be >= 4 (the
    rectifier is not real for ``2 < rho < 4``). The state is ``ScaleByAdamState``; ``mu_dtype`` and
    ``nu_dtype`` store ``m`` and ``v``.
    """

    b1: Any = 0.9
    b2: Any = 0.999
    eps: Any = 1e-8
    eps_root: Any = 0.0
    threshold: Any = 5.0
    nesterov: bool = static_field(default=False, kw_only=True)
    mu_dtype: Any = state_dtype_field()
    nu_dtype: Any = state_dtype_field()

    def __post_init__(self) -> None:
        self._check_range("b1", 0.0, 1.0, hi_open=True)
        self._check_range("b2", 0.0, 1.0, hi_open=True)
        self._check_range("eps", 0.0)
        self._check_range("eps_root", 0.0)
        self._check_range("threshold", 4.0)
        checked_state_dtype(self, "mu_dtype")
        checked_state_dtype(self, "nu_dtype", real=True)

    def __repr__(self) -> str:
        return repr_with_state_dtypes(self)

    def init(self, params: Params) -> ScaleByAdamState:
        return ScaleByAdamState(
            count=zero_count(), mu=tree.zeros_like(params, self.mu_dtype), nu=tree.zeros_like(params, self.nu_dtype)
        )

    def update(self, updates: Updates, state: ScaleByAdamState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_radam.update", state.nu, updates)
        count = safe_int32_increment(state.count)

        def one(g: Any, mu: Any, nu: Any) -> tuple[Any, Any, Any]:
            x = _Leaf(g)
            m = x.ema(self.b1, mu, g)
            v = x.rema(self.b2, nu, x.sq(g))
            if self.nesterov:
                m_hat = x.nesterov_hat(self.b1, m, g, count)
            else:
                m_hat = m / x.c(tree.debias(self.b1, count, x.rt))
            v_hat = v / tree.debias(self.b2, count, x.rt)
            rho, rho_inf = radam_rho(self.b2, count, x.rt)
            rectify = rho >= x.h(self.threshold)
            rho, rho_inf = jnp.where(rectify, rho, 6.0), jnp.where(rectify, rho_inf, 6.0)  # r = 1 where not taken
            r = jnp.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            adam = x.c(r) * m_hat / x.c(jnp.sqrt(v_hat + x.h(self.eps_root)) + x.h(self.eps))
            u = jnp.where(rectify, adam, m_hat)
            return u.astype(x.dtype), m.astype(mu.dtype), v.astype(nu.dtype)

        out, mu, nu = _map(one, 3, updates, state.mu, state.nu)
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)


@pytree_class
class scale_by_adan(GradientTransformation):
    """Adan, adaptive Nesterov momentum (Xie, Zhou, Li, Lin & Yan 2022, arXiv 2208.06677, Algorithm 1),
    in Optax's convention.

    With ``d_k = g_k - g_{k-1}`` (``d_1 = 0``) and zero-initialised, bias-corrected moments:
    ``m_k = b1 m_{k-1} + (1 - b1) g_k``, ``v_k = b2 v_{k-1} + (1 - b2) d_k``,
    ``n_k = b3 n_{k-1} + (1 - b3) (g_k + (1 - b2) d_k)^2``,
    ``u = (m_hat + (1 - b2) v_hat) / (sqrt(n_hat + eps_root) + eps)``.

    Conventions (Optax's, kept): ``b`` are decays, the paper's ``beta = 1 - b`` (defaults 0.02, 0.08, 0.01);
    moments start at zero with bias correction instead of ``m_0 = g_0``, ``n_0 = g_0^2``. Note that Optax
    weights the gradient difference by ``1 - b2`` (0.08) in ``n`` and in ``u``, where the paper writes
    ``(1 - beta_2) = b2`` (0.92), as does the authors' code. Real parameters only, as in Optax.
    ``mu_dtype`` stores the two first-order moments ``m`` and ``v``, ``nu_dtype`` the second moment ``n``; the
    previous gradient ``g`` keeps the parameter dtype.
    """

    b1: Any = 0.98
    b2: Any = 0.92
    b3: Any = 0.99
    eps: Any = 1e-8
    eps_root: Any = 0.0
    mu_dtype: Any = state_dtype_field()
    nu_dtype: Any = state_dtype_field()

    def __post_init__(self) -> None:
        self._check_range("b1", 0.0, 1.0, hi_open=True)
        self._check_range("b2", 0.0, 1.0, hi_open=True)
        self._check_range("b3", 0.0, 1.0, hi_open=True)
        self._check_range("eps", 0.0)
        self._check_range("eps_root", 0.0)
        checked_state_dtype(self, "mu_dtype")
        checked_state_dtype(self, "nu_dtype", real=True)

    def __repr__(self) -> str:
        return repr_with_state_dtypes(self)

    def init(self, params: Params) -> ScaleByAdanState:
        z = tree.zeros_like
        mu, nu = self.mu_dtype, self.nu_dtype
        return ScaleByAdanState(m=z(params, mu), v=z(params, mu), n=z(params, nu), g=z(params), t=zero_count())

    def update(self, updates: Updates, state: ScaleByAdanState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_adan.update", state.m, updates)
        t = safe_int32_increment(state.t)
        first = state.t == 0

        def one(g: Any, m0: Any, v0: Any, n0: Any, g0: Any) -> tuple[Any, Any, Any, Any, Any]:
            x = _Leaf(g)
            d = jnp.where(first, jnp.zeros((), x.ct), x.c(g) - x.c(g0))
            w = x.c(tree.complement(self.b2, x.rt))
            m = x.ema(self.b1, m0, g)
            v = x.ema(self.b2, v0, d)
            n = x.rema(self.b3, n0, x.sq(x.c(g) + w * d))
            direction = m / x.c(tree.debias(self.b1, t, x.rt)) + w * v / x.c(tree.debias(self.b2, t, x.rt))
            n_hat = n / tree.debias(self.b3, t, x.rt)
            u = direction / x.c(jnp.sqrt(n_hat + x.h(self.eps_root)) + x.h(self.eps))
            return u.astype(x.dtype), m.astype(m0.dtype), v.astype(v0.dtype), n.astype(n0.dtype), g.astype(g0.dtype)

        out, m, v, n, g_prev = _map(one, 5, updates, state.m, state.v, state.n, state.g)
        return out, ScaleByAdanState(m=m, v=v, n=n, g=g_prev, t=t)
