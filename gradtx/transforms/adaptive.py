"""Per-parameter learning rates: divide each coordinate by a running estimate sigma of its gradient size.

The lecture's family (``theta <- theta - eta / sigma * g``), each a block:

    scale_by_rss:     sigma_k = sqrt(s_0 + sum_{j<=k} g_j^2)                 (Adagrad; Duchi et al. 2011)
    scale_by_rms:     sigma_k^2 = a sigma_{k-1}^2 + (1 - a) g_k^2               (RMSProp; Tieleman & Hinton 2012)
                      decay=None: sigma_k^2 = (1/k) sum_{j<=k} g_j^2             (the lecture's root mean square)
                      init_from_first: sigma_1 = |g_1|                           (the lecture's RMSProp)
    scale_by_stddev:  sigma_k^2 = EMA(g^2) - EMA(g)^2                           (centred RMSProp; Graves 2013)
    scale_by_adam:    m_hat / (sqrt(v_hat + eps_root) + eps)                    (Kingma & Ba 2015, Algorithm 1)

``k`` is the 1-based step. Arithmetic runs in float32 or wider (see ``gradtx.tree``); the moments are stored
in the parameter dtype (``mu_dtype`` and ``nu_dtype`` override the first and second moment's), the output in
the update's dtype.

State dtypes (``mu_dtype``, ``nu_dtype``; every Adam-family block has both): each step computes the new moments
in the compute dtype, uses those unrounded values for its output, and rounds them only to store them (Optax's
order for ``mu_dtype``). ``nu_dtype=bfloat16`` halves the second moment's memory; its cost is that an EMA
increment ``(1 - b2) (g^2 - nu)`` below half an ulp of ``nu`` (``2^-9 nu`` to ``2^-8 nu``) is rounded away: a
bfloat16 ``nu`` ignores changes of ``g^2`` up to ``2^-9 / (1 - b2)`` to ``2^-8 / (1 - b2)`` times ``nu``, i.e.
2 to 4 times ``nu`` for ``b2 = 0.999`` (a constant ``|g| = 1`` leaves ``nu`` frozen at exactly 1/4, not 1;
tests/test_precision.py), 0.2 to 0.4 times for ``b2 = 0.99``. Keep ``nu`` in float32 for ``b2`` near 1.
The options Optax lacks (``nu_dtype``; ``mu_dtype`` on the blocks where Optax has none) are keyword-only,
after Optax's parameters, and appear in the ``repr`` only when set, so the ``repr`` of an Optax-compatible call
reads like that call.
"""

from __future__ import annotations

import dataclasses
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
    concrete_number,
    fields_repr,
    format_value,
    pytree_class,
    safe_int32_increment,
    static_field,
    zero_count,
)


class ScaleByRmsState(NamedTuple):
    """The running mean of squared gradients ``nu``."""

    nu: Updates


class ScaleByRmsWithCountState(NamedTuple):
    """``nu`` and the step count (bias correction, equal-weight mean, or first-gradient initialisation)."""

    count: jax.Array
    nu: Updates


class ScaleByRssState(NamedTuple):
    """The running sum of squared gradients."""

    sum_of_squares: Updates


class ScaleByRStdDevState(NamedTuple):
    """Running means of the gradient ``mu`` and of its square ``nu``."""

    mu: Updates
    nu: Updates


class ScaleByRStdDevWithCountState(NamedTuple):
    """``mu``, ``nu`` and the step count used for bias correction."""

    count: jax.Array
    mu: Updates
    nu: Updates


class ScaleByAdamState(NamedTuple):
    """Adam's step count, first moment ``mu`` and second moment ``nu``."""

    count: jax.Array
    mu: Updates
    nu: Updates


def state_dtype_field() -> Any:
    """A keyword-only, static state-dtype option gradtx adds after Optax's parameters (``nu_dtype``; ``mu_dtype``
    where Optax has none): default ``None`` (the parameter dtype), shown in the ``repr`` only when set."""
    return static_field(default=None, kw_only=True, repr=False)


def checked_state_dtype(obj: Any, name: str, real: bool = False) -> None:
    """Normalise the dtype option ``name`` of ``obj`` to a ``np.dtype`` (``None`` kept); ``ValueError`` unless it
    is a floating dtype (real when ``real``: a second moment is real-valued, also for complex parameters)."""
    value = getattr(obj, name)
    if value is None:
        return
    try:
        dt = np.dtype(value)
    except TypeError:
        dt = None
    kinds = (jnp.floating,) if real else (jnp.floating, jnp.complexfloating)
    if dt is None or not any(jnp.issubdtype(dt, k) for k in kinds):
        obj._fail(name, value, f"must be None or a {'real ' if real else ''}floating dtype (e.g. jnp.bfloat16)")
    object.__setattr__(obj, name, dt)


def repr_with_state_dtypes(obj: Any) -> str:
    """``Name(field=value, ...)`` with the hidden state-dtype options (:func:`state_dtype_field`) that are set."""
    body = fields_repr(obj)
    hidden = [
        f"{f.name}={format_value(getattr(obj, f.name))}"
        for f in dataclasses.fields(obj)
        if not f.repr and getattr(obj, f.name) is not None
    ]
    return f"{type(obj).__name__}({', '.join([body, *hidden] if body else hidden)})"


def _upcast(state: Any, g: Any) -> jax.Array:
    """A state leaf in the compute dtype of itself and its gradient ``g`` (kept real if it is real): the
    moment updates then store their result unrounded (a bfloat16 or float32 state beside float64 gradients
    is updated in float64)."""
    state = jnp.asarray(state)
    ds, dg = tree.compute_dtype(state.dtype), tree.compute_dtype(jnp.result_type(g))
    width = max(ds.itemsize // (2 if ds.kind == "c" else 1), dg.itemsize // (2 if dg.kind == "c" else 1))
    if ds.kind == "c":
        return state.astype(np.complex128 if width >= 8 else np.complex64)
    return state.astype(np.float64 if width >= 8 else np.float32)


def _scale_by_inverse_root(updates: Updates, nu_hat: Updates, eps: Any, eps_in_sqrt: bool) -> Updates:
    """``g * rsqrt(nu_hat + eps)`` (or ``g * (1 / (sqrt(nu_hat) + eps))``) leafwise in compute dtype, returned in
    the dtype of ``g``: Optax's arithmetic, operation for operation, so RMSProp's numbers are Optax's bit for bit
    (``g / sqrt(.)`` rounds differently in the last bit, and chaotic runs amplify that)."""

    def one(g: Any, n: Any) -> Any:
        n = jnp.real(n)
        if eps_in_sqrt:
            scaling = jax.lax.rsqrt(n + tree.hyper(eps, n))
        else:
            scaling = 1 / (jnp.sqrt(n) + tree.hyper(eps, n))
        return (tree.like(scaling, tree.up(g)) * tree.up(g)).astype(jnp.asarray(g).dtype)

    return jax.tree.map(one, updates, nu_hat)


@pytree_class
class scale_by_rms(GradientTransformation):
    """Divide by the root mean square of past gradients: ``u = g / sqrt(nu_hat + eps)``.

    ``nu_k = decay nu_{k-1} + (1 - decay) g_k^2`` from ``nu_0 = initial_scale`` (RMSProp, Tieleman &
    Hinton 2012, lecture 6.5); ``bias_correction`` divides by ``1 - decay^k``; ``eps_in_sqrt=False`` gives
    ``g / (sqrt(nu_hat) + eps)``. gradtx's additions, the lecture's own forms:

    - ``decay=None``: ``nu_k = (1/k) sum_{j<=k} g_j^2``, the root mean square of *all* past gradients with
      equal weights (the lecture's Adagrad-style sigma; its late "explosions" are what schedules tame).
    - ``init_from_first=True``: ``nu_1 = g_1^2``, i.e. ``sigma_0 = |g_0|`` in the lecture's 0-based notation,
      then the exponential average.
    """

    decay: Any = 0.9
    eps: Any = 1e-8
    initial_scale: Any = 0.0
    eps_in_sqrt: bool = static_field(default=True)
    bias_correction: bool = static_field(default=False)
    init_from_first: bool = static_field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        if self.decay is not None:
            self._check_range("decay", 0.0, 1.0)
        self._check_range("eps", 0.0)
        self._check_range("initial_scale", 0.0)
        if self.bias_correction and (self.decay is None or self.init_from_first):
            other = "decay=None" if self.decay is None else "init_from_first=True"
            self._fail("bias_correction", True, f"must be False with {other} (nothing to correct)")
        if self.decay is None and (v := concrete_number(self.initial_scale)) is not None and v != 0.0:
            self._fail("initial_scale", self.initial_scale, "must be 0 with decay=None (an equal-weight mean)")

    @property
    def _counts(self) -> bool:
        return self.bias_correction or self.decay is None or self.init_from_first

    def init(self, params: Params) -> ScaleByRmsState | ScaleByRmsWithCountState:
        nu = tree.full_like(params, self.initial_scale)
        if self._counts:
            return ScaleByRmsWithCountState(count=zero_count(), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update(self, updates: Updates, state: Any, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_rms.update", state.nu, updates)
        count = safe_int32_increment(state.count) if self._counts else None
        if self.decay is None:
            # Running mean: nu_k = nu_{k-1} + (g_k^2 - nu_{k-1}) / k.
            def mean(g: Any, n: Any) -> Any:
                n32 = jnp.real(tree.up(n))  # a complex parameter's nu is stored complex (as in Optax), real-valued
                k = jnp.asarray(count).astype(n32.dtype)
                return (n32 + (tree.abs_sq(tree.up(g)) - n32) / k).astype(n.dtype)

            nu = jax.tree.map(mean, updates, state.nu)
        else:
            nu = tree.update_moment_per_elem_norm(updates, state.nu, self.decay, 2)
            if self.init_from_first:
                first = jax.tree.map(lambda g, n: tree.abs_sq(tree.up(g)).astype(n.dtype), updates, state.nu)
                nu = tree.where(state.count == 0, first, nu)
        if self.bias_correction:
            nu_hat = tree.bias_correction(nu, self.decay, count)
        else:
            nu_hat = jax.tree.map(tree.up, nu)
        out = _scale_by_inverse_root(updates, nu_hat, self.eps, self.eps_in_sqrt)
        new_state = ScaleByRmsWithCountState(count=count, nu=nu) if count is not None else ScaleByRmsState(nu=nu)
        return out, new_state


@pytree_class
class scale_by_rss(GradientTransformation):
    """Adagrad's scaling (Duchi, Hazan & Singer 2011): divide by the root of the sum of past squares.

    ``s_k = s_{k-1} + g_k^2`` from ``s_0 = initial_accumulator_value``; ``u = g / sqrt(s_k + eps)`` where
    ``s_k > 0`` and 0 elsewhere.
    """

    initial_accumulator_value: Any = 0.1
    eps: Any = 1e-7

    def __post_init__(self) -> None:
        self._check_range("initial_accumulator_value", 0.0)
        self._check_range("eps", 0.0)

    def init(self, params: Params) -> ScaleByRssState:
        return ScaleByRssState(sum_of_squares=tree.full_like(params, self.initial_accumulator_value))

    def update(self, updates: Updates, state: ScaleByRssState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_rss.update", state.sum_of_squares, updates)
        sos = jax.tree.map(
            lambda g, s: (jnp.real(tree.up(s)) + tree.abs_sq(tree.up(g))).astype(s.dtype), updates, state.sum_of_squares
        )

        def one(g: Any, s: Any) -> Any:
            s = jnp.real(tree.up(s))
            inv = jnp.where(s > 0, jax.lax.rsqrt(s + tree.hyper(self.eps, s)), jnp.zeros_like(s))
            return (tree.like(inv, tree.up(g)) * tree.up(g)).astype(jnp.asarray(g).dtype)

        return jax.tree.map(one, updates, sos), ScaleByRssState(sum_of_squares=sos)


@pytree_class
class scale_by_stddev(GradientTransformation):
    """Divide by the running standard deviation: ``u = g / sqrt(max(nu_hat - mu_hat^2, 0) + eps)``.

    Centred RMSProp (Graves 2013, arXiv 1308.0850, eq. 38-41): ``mu`` and ``nu`` are exponential averages
    of ``g`` and ``g^2`` with the same ``decay``; ``bias_correction`` and ``eps_in_sqrt`` as in
    ``scale_by_rms``. The variance is clamped at 0: exact averages never go below it, rounded ones can
    (bfloat16 state, ``decay=0``), and Optax then returns NaN.
    """

    decay: Any = 0.9
    eps: Any = 1e-8
    initial_scale: Any = 0.0
    eps_in_sqrt: bool = static_field(default=True)
    bias_correction: bool = static_field(default=False)

    def __post_init__(self) -> None:
        self._check_range("decay", 0.0, 1.0)
        self._check_range("eps", 0.0)
        self._check_range("initial_scale", 0.0)

    def init(self, params: Params) -> ScaleByRStdDevState | ScaleByRStdDevWithCountState:
        mu = tree.zeros_like(params)
        nu = tree.full_like(params, self.initial_scale)
        if self.bias_correction:
            return ScaleByRStdDevWithCountState(count=zero_count(), mu=mu, nu=nu)
        return ScaleByRStdDevState(mu=mu, nu=nu)

    def update(self, updates: Updates, state: Any, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_stddev.update", state.nu, updates)
        mu = tree.update_moment(updates, state.mu, self.decay, 1)
        nu = tree.update_moment_per_elem_norm(updates, state.nu, self.decay, 2)
        if self.bias_correction:
            count = safe_int32_increment(state.count)
            mu_hat = tree.bias_correction(mu, self.decay, count)
            nu_hat = tree.bias_correction(nu, self.decay, count)
        else:
            mu_hat, nu_hat = jax.tree.map(tree.up, mu), jax.tree.map(tree.up, nu)
        # E[g^2] - E[g]^2 >= 0 for the exact averages; rounding (low-precision state, decay 0) can push it
        # below 0, where the square root would give NaN: clamp at 0 (no effect on a non-negative value).
        variance = jax.tree.map(lambda m, n: jnp.maximum(jnp.real(n) - tree.abs_sq(m), 0), mu_hat, nu_hat)
        out = _scale_by_inverse_root(updates, variance, self.eps, self.eps_in_sqrt)
        if self.bias_correction:
            return out, ScaleByRStdDevWithCountState(count=count, mu=mu, nu=nu)
        return out, ScaleByRStdDevState(mu=mu, nu=nu)


@pytree_class
class scale_by_adam(GradientTransformation):
    """Adam's direction (Kingma & Ba 2015, arXiv 1412.6980, Algorithm 1): RMSProp + momentum + bias correction.

    ``m_k = b1 m_{k-1} + (1 - b1) g_k``, ``v_k = b2 v_{k-1} + (1 - b2) g_k^2``,
    ``m_hat = m_k / (1 - b1^k)``, ``v_hat = v_k / (1 - b2^k)``, ``u = m_hat / (sqrt(v_hat + eps_root) + eps)``.
    With ``nesterov`` (NAdam, Dozat 2016): ``m_hat = b1 m_k / (1 - b1^(k+1)) + (1 - b1) g_k / (1 - b1^k)``.
    ``mu_dtype`` and ``nu_dtype`` store ``m`` and ``v`` in other dtypes (``u`` uses the unrounded ``m_k``,
    ``v_k``; see the module docstring for bfloat16 ``v``). With ``b1 = 0`` this equals
    ``scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True)``.
    """

    b1: Any = 0.9
    b2: Any = 0.999
    eps: Any = 1e-8
    eps_root: Any = 0.0
    mu_dtype: Any = static_field(default=None)
    nesterov: bool = static_field(default=False, kw_only=True)
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

    def init(self, params: Params) -> ScaleByAdamState:
        return ScaleByAdamState(
            count=zero_count(), mu=tree.zeros_like(params, self.mu_dtype), nu=tree.zeros_like(params, self.nu_dtype)
        )

    def update(self, updates: Updates, state: ScaleByAdamState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("scale_by_adam.update", state.nu, updates)
        # The new moments in the compute dtype (the state upcast first): the output uses them unrounded.
        mu = tree.update_moment(updates, jax.tree.map(_upcast, state.mu, updates), self.b1, 1)
        nu = tree.update_moment_per_elem_norm(updates, jax.tree.map(_upcast, state.nu, updates), self.b2, 2)
        count = safe_int32_increment(state.count)
        if self.nesterov:
            # b1 m_hat(k+1) + (1 - b1) g_hat(k): an EMA of the two corrected terms (only the exact complement enters).
            mu_hat = jax.tree.map(
                lambda m, g: tree.ema(self.b1, m, tree.up(g).astype(m.dtype)),
                tree.bias_correction(mu, self.b1, safe_int32_increment(count)),
                tree.bias_correction(updates, self.b1, count),
            )
        else:
            mu_hat = tree.bias_correction(mu, self.b1, count)
        nu_hat = tree.bias_correction(nu, self.b2, count)
        out = jax.tree.map(
            lambda g, m, v: (
                m / tree.like(jnp.sqrt(jnp.real(v) + tree.hyper(self.eps_root, v)) + tree.hyper(self.eps, v), m)
            ).astype(jnp.asarray(g).dtype),
            updates,
            mu_hat,
            nu_hat,
        )
        return out, ScaleByAdamState(count=count, mu=tree.cast_like(mu, state.mu), nu=tree.cast_like(nu, state.nu))
