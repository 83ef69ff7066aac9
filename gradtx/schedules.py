"""Schedules: the step count mapped to a hyperparameter value (a learning rate, a momentum, a weight decay).

A schedule is called with the 0-based step count (the first update uses ``schedule(0)``) and returns a
floating-point ``jax.Array`` (float32, or wider if its hyperparameters are). The count may be a Python
int, a NumPy integer or a traced integer array, and the schedule is elementwise in it, so
``jax.vmap(s)(jnp.arange(n))`` and ``s(jnp.arange(n))`` both give the whole curve. Schedules are pytrees:
each is a frozen dataclass whose numeric hyperparameters (values, step counts, rates, scales) are leaves
and whose structural options (``staircase``, ``interpolate_type``, ``decay_type``, the boundaries of a
piecewise schedule) are static. A jitted step that takes the schedule as an argument therefore does not
recompile when only a value changes, ``jax.grad`` can differentiate a value with respect to a
hyperparameter, and the repr reads like the call that made the schedule. Arguments are validated in the
constructor (``ValueError`` naming the call, the value and the valid range), not silently corrected.

    constant_schedule                  value
    polynomial_schedule                polynomial from init_value to end_value over transition_steps
    linear_schedule                    polynomial_schedule with power 1
    exponential_decay                  init_value * decay_rate ** (count / transition_steps)
    cosine_decay_schedule              half-cosine decay (SGDR, Loshchilov & Hutter 2017)
    piecewise_constant_schedule        init_value times the scales of the boundaries passed
    piecewise_interpolate_schedule     linear or cosine interpolation between scaled knots
    warmup_constant_schedule           linear warm-up, then constant (Goyal et al. 2017)
    warmup_cosine_decay_schedule       linear warm-up, then cosine decay
    warmup_exponential_decay_schedule  linear warm-up, then exponential decay
    join_schedules                     one schedule after another, each restarted at its boundary
    transformer_warmup_schedule        inverse-square-root schedule of Vaswani et al. 2017
    warmup_stable_decay_schedule       warm-up, plateau, cool-down (WSD; Hu et al. 2024, Hägele et al. 2024)
    linear_onecycle_schedule           one-cycle policy, three linear phases (Smith & Topin 2017)
    cosine_onecycle_schedule           one-cycle policy, two cosine phases (Smith & Topin 2017)
    sgdr_schedule                      warm restarts: warmup_cosine_decay cycles joined (Loshchilov & Hutter 2017)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from gradtx.base import (
    ValidationMixin,
    as_pytree_callable,
    concrete_number,
    format_value,
    is_placeholder,
    lazy_spellings,
    pytree_class,
    static_field,
)

__all__ = [
    "Schedule",
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "exponential_decay",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "sgdr_schedule",
    "transformer_warmup_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "warmup_stable_decay_schedule",
]

Scalar = Any  # a Python number, a 0-d array, or a tracer


# --------------------------------------------------------------------------------------------------
# Helpers: dtypes and the formulas shared by several schedules (all elementwise, no Python branching on
# leaf values, so that they trace with the hyperparameters as well as with the count).
# --------------------------------------------------------------------------------------------------


def _compute_dtype(tree: Any) -> np.dtype:
    """JAX's default float (float32; float64 under x64), or the widest strongly typed float leaf of ``tree``."""
    dt = np.dtype(jax.dtypes.canonicalize_dtype(np.float64))
    for leaf in jax.tree.leaves(tree):
        python_scalar = isinstance(leaf, (bool, int, float)) and not isinstance(leaf, np.generic)
        if python_scalar or getattr(leaf, "weak_type", False):
            continue
        d = getattr(leaf, "dtype", None)
        if d is None:
            continue
        d = np.dtype(jax.dtypes.canonicalize_dtype(d))
        if jnp.issubdtype(d, jnp.floating) and d.itemsize > dt.itemsize:
            dt = d
    return dt


def _f(x: Any, dt: np.dtype) -> jax.Array:
    """``x`` as an array of the compute dtype (an explicit cast, safe under strict dtype promotion)."""
    return jnp.asarray(x, dtype=dt)


def _safe_div(num: jax.Array, den: jax.Array) -> jax.Array:
    """``num / den`` where ``den > 0``; 0 elsewhere (no inf or NaN in unselected branches or gradients)."""
    return num / jnp.where(den > 0, den, 1)


def _safe_pow(base: jax.Array, power: jax.Array) -> jax.Array:
    """``base ** power`` for ``base >= 0`` whose gradient is finite at ``base = 0`` (taken as 0 there)."""
    positive = base > 0
    at_zero = jax.lax.stop_gradient(jnp.zeros_like(base) ** power)
    return jnp.where(positive, jnp.where(positive, base, 1) ** power, at_zero)


def _polynomial(c: jax.Array, init: jax.Array, end: jax.Array, power: jax.Array, steps: jax.Array,
                begin: jax.Array) -> jax.Array:
    t = jnp.clip(c - begin, 0, steps)
    return (init - end) * _safe_pow(1 - t / steps, power) + end


def _exponential(c: jax.Array, init: jax.Array, steps: jax.Array, rate: jax.Array, begin: jax.Array,
                 staircase: bool, end: jax.Array | None) -> jax.Array:
    shifted = c - begin
    p = jnp.maximum(shifted, 0) / steps
    if staircase:
        p = jnp.floor(p)
    v = jnp.where(shifted <= 0, init, init * rate**p)
    if end is not None:
        v = jnp.where(rate < 1, jnp.maximum(v, end), jnp.minimum(v, end))
    return v


def _half_cosine(frac: jax.Array) -> jax.Array:
    """``0.5 * (1 + cos(pi * frac))``: 1 at ``frac = 0``, 0 at ``frac = 1`` (never below 0)."""
    return jnp.maximum(0.5 * (1 + jnp.cos(jnp.pi * frac)), 0)


def _linear_warmup(c: jax.Array, init: jax.Array, peak: jax.Array, steps: jax.Array,
                   after: jax.Array) -> jax.Array:
    """``init + (peak - init) * c / steps`` while ``c < steps``, else ``after``."""
    return jnp.where(c < steps, init + (peak - init) * _safe_div(c, steps), after)


def _format(x: Any) -> str:
    """A field value as it reads in a repr; tuples and dicts element by element."""
    if isinstance(x, tuple):
        inner = ", ".join(_format(v) for v in x)
        return f"({inner},)" if len(x) == 1 else f"({inner})"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k!r}: {_format(v)}" for k, v in x.items()) + "}"
    if isinstance(x, Schedule):
        return repr(x)
    v = concrete_number(x)
    is_array = isinstance(x, (np.ndarray, np.generic, jax.Array))
    if v is not None and is_array and jnp.issubdtype(x.dtype, jnp.integer):
        return repr(int(v))  # an integer step count held as an array reads as an int
    return format_value(x)


# --------------------------------------------------------------------------------------------------
# The base class.
# --------------------------------------------------------------------------------------------------


class Schedule(ValidationMixin):
    """Base class of every gradtx schedule: a pytree callable ``count -> value`` (``count`` 0-based)."""

    def __call__(self, count: Any) -> jax.Array:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = dataclasses.fields(cast(Any, self))
        parts = [f"{f.name}={_format(getattr(self, f.name))}" for f in fields if f.repr]
        return f"{type(self).__name__}({', '.join(parts)})"

    # Validation helpers beyond ValidationMixin's.

    def _check_nonzero_finite(self, name: str) -> None:
        value = getattr(self, name)
        v = concrete_number(value)
        if isinstance(value, str) or (v is not None and (v == 0 or not math.isfinite(v))):
            self._fail(name, value, "must be nonzero and finite")

    def _check_optional_finite(self, name: str) -> None:
        if getattr(self, name) is not None:
            self._check_finite(name)

    def _check_callable(self, name: str, fn: Any) -> None:
        if not callable(fn) and not is_placeholder(fn):
            self._fail(name, getattr(self, name), f"must hold callables count -> value, got {fn!r}")

    def _normalise_boundaries(self, name: str, scales_lo: float | None) -> None:
        """Turn a ``{boundary: scale}`` dict (or None) into a dict sorted by int boundary, validated."""
        raw = getattr(self, name)
        if raw is None:
            object.__setattr__(self, name, {})
            return
        if not isinstance(raw, dict):
            self._fail(name, raw, "must be a dict {boundary step: scale} or None")
        out: dict[int, Any] = {}
        for key, scale in raw.items():
            k = concrete_number(key)
            if isinstance(key, (str, bool)) or k is None or not math.isfinite(k) or not k.is_integer():
                self._fail(name, raw, f"keys must be integer step counts, got {key!r}")
            elif k < 0:
                self._fail(name, raw, f"keys (boundaries) must be >= 0, got {key!r}")
            s = concrete_number(scale)
            if isinstance(scale, str):
                self._fail(name, raw, f"values (scales) must be numbers, got {scale!r}")
            if s is not None:
                if not math.isfinite(s):
                    self._fail(name, raw, f"values (scales) must be finite, got {scale!r}")
                if scales_lo is not None and s < scales_lo:
                    self._fail(name, raw, f"values (scales) must be >= {scales_lo:g}, got {scale!r}")
            out[int(k)] = scale  # type: ignore[arg-type]
        object.__setattr__(self, name, dict(sorted(out.items())))


# --------------------------------------------------------------------------------------------------
# Elementary schedules.
# --------------------------------------------------------------------------------------------------


@pytree_class
class constant_schedule(Schedule):
    """``value`` at every count."""

    value: Scalar

    def __post_init__(self) -> None:
        self._check_finite("value")

    def __call__(self, count: Any) -> jax.Array:
        dt = _compute_dtype(self)
        return jnp.broadcast_to(_f(self.value, dt), jnp.shape(count))


@pytree_class
class polynomial_schedule(Schedule):
    """Polynomial decay from ``init_value`` to ``end_value``, held before and after the transition::

        c = clip(count - transition_begin, 0, transition_steps)
        value = (init_value - end_value) * (1 - c / transition_steps) ** power + end_value

    ``transition_steps > 0``, ``transition_begin >= 0``.
    """

    init_value: Scalar
    end_value: Scalar
    power: Scalar
    transition_steps: Scalar
    transition_begin: Scalar = 0

    def __post_init__(self) -> None:
        self._check_finite("init_value")
        self._check_finite("end_value")
        self._check_finite("power")
        self._check_range("transition_steps", 0, lo_open=True)
        self._check_range("transition_begin", 0)

    def __call__(self, count: Any) -> jax.Array:
        dt = _compute_dtype(self)
        return _polynomial(_f(count, dt), _f(self.init_value, dt), _f(self.end_value, dt), _f(self.power, dt),
                           _f(self.transition_steps, dt), _f(self.transition_begin, dt))


@pytree_class
class linear_schedule(Schedule):
    """Linear interpolation from ``init_value`` to ``end_value`` (a polynomial schedule of power 1)::

        c = clip(count - transition_begin, 0, transition_steps)
        value = init_value + (end_value - init_value) * c / transition_steps

    This is the linear warm-up of Goyal et al. 2017 ("Accurate, Large Minibatch SGD: Training ImageNet in
    1 Hour", arXiv 1706.02677) when ``end_value > init_value``. ``transition_steps > 0``,
    ``transition_begin >= 0``.
    """

    init_value: Scalar
    end_value: Scalar
    transition_steps: Scalar
    transition_begin: Scalar = 0

    def __post_init__(self) -> None:
        self._check_finite("init_value")
        self._check_finite("end_value")
        self._check_range("transition_steps", 0, lo_open=True)
        self._check_range("transition_begin", 0)

    def __call__(self, count: Any) -> jax.Array:
        dt = _compute_dtype(self)
        return _polynomial(_f(count, dt), _f(self.init_value, dt), _f(self.end_value, dt), _f(1, dt),
                           _f(self.transition_steps, dt), _f(self.transition_begin, dt))


@pytree_class
class exponential_decay(Schedule):
    """Exponential decay, optionally in steps and bounded by ``end_value``::

        c = count - transition_begin
        p = c / transition_steps            (floor(p) if staircase)
        value = init_value if c <= 0 else init_value * decay_rate ** p

    With ``end_value``: ``max(value, end_value)`` if ``decay_rate < 1`` (a floor), else
    ``min(value, end_value)`` (a ceiling). ``transition_steps > 0``, ``decay_rate`` nonzero and finite,
    ``transition_begin >= 0``.
    """

    init_value: Scalar
    transition_steps: Scalar
    decay_rate: Scalar
    transition_begin: Scalar = 0
    staircase: bool = static_field(default=False)
    end_value: Scalar | None = None

    def __post_init__(self) -> None:
        self._check_finite("init_value")
        self._check_range("transition_steps", 0, lo_open=True)
        self._check_nonzero_finite("decay_rate")
        self._check_range("transition_begin", 0)
        self._check_optional_finite("end_value")

    def __call__(self, count: Any) -> jax.Array:
        dt = _compute_dtype(self)
        end = None if self.end_value is None else _f(self.end_value, dt)
        return _exponential(_f(count, dt), _f(self.init_value, dt), _f(self.transition_steps, dt),
                            _f(self.decay_rate, dt), _f(self.transition_begin, dt), self.staircase, end)


@pytree_class
class cosine_decay_schedule(Schedule):
    """Half-cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``, then held::

        c = min(count, decay_steps)
        value = init_value * ((1 - alpha) * (0.5 * (1 + cos(pi * c / decay_steps))) ** exponent + alpha)

    Loshchilov & Hutter 2017, "SGDR: Stochastic Gradient Descent with Warm Restarts" (arXiv 1608.03983),
    one cycle without restart. ``decay_steps > 0``.
    """

    init_value: Scalar
    decay_steps: Scalar
    alpha: Scalar = 0.0
    exponent: Scalar = 1.0

    def __post_init__(self) -> None:
        self._check_finite("init_value")
        self._check_range("decay_steps", 0, lo_open=True)
        self._check_finite("alpha")
        self._check_finite("exponent")

    def __call__(self, count: Any) -> jax.Array:
        dt = _compute_dtype(self)
        steps = _f(self.decay_steps, dt)
        alpha = _f(self.alpha, dt)
        c = jnp.minimum(_f(count, dt), steps)
        decay = (1 - alpha) * _safe_pow(_half_cosine(c / steps), _f(self.exponent, dt)) + alpha
        return _f(self.init_value, dt) * decay


@pytree_class
class piecewise_constant_schedule(Schedule):
    """``init_value`` times the scale of every boundary reached::

        value = init_value * prod(s for b, s in boundaries_and_scales.items() if count >= b)

    The boundaries (dict keys, integer steps >= 0) are static structure; the scales (finite) are leaves.
    ResNet's warm-up for its 110-layer CIFAR net (He et al. 2016, "Deep Residual Learning for Image
    Recognition", arXiv 1512.03385: 0.01 until training starts going, then 0.1) is
    ``piecewise_constant_schedule(0.01, {400: 10.0})``; step decay is ``{30_000: 0.1, 60_000: 0.1}``.
    """

    init_value: Scalar
    boundaries_and_scales: dict[int, Scalar] | None = None

    def __post_init__(self) -> None:
        self._check_finite("init_value")
        self._normalise_boundaries("boundaries_and_scales", scales_lo=None)

    def __call__(self, count: Any) -> jax.Array:
        dt = _compute_dtype(self)
        c = _f(count, dt)
        v = jnp.broadcast_to(_f(self.init_value, dt), jnp.shape(c))
        for boundary, scale in (self.boundaries_and_scales or {}).items():
            v = jnp.where(c >= boundary, v * _f(scale, dt), v)
        return v


@pytree_class
class piecewise_interpolate_schedule(Schedule):
    """Linear or cosine interpolation between knots whose values accumulate the scales.

    The knots are ``b_0 = 0 <= b_1 <= ... <= b_n`` (the sorted boundaries) with values ``v_0 = init_value``
    and ``v_j = init_value * s_1 * ... * s_j``. For ``b_{j-1} <= count < b_j``::

        pct = (count - b_{j-1}) / max(b_j - b_{j-1}, 1)
        value = v_{j-1} + (v_j - v_{j-1}) * pct                       ('linear')
        value = v_{j-1} + (v_j - v_{j-1}) * (1 - cos(pi * pct)) / 2    ('cosine')

    and ``value = v_n`` for ``count >= b_n``. Boundaries are integer steps >= 0 (static), scales >= 0.
    """

    interpolate_type: str = static_field()
    init_value: Scalar
    boundaries_and_scales: dict[int, Scalar] | None = None

    def __post_init__(self) -> None:
        self._check_choice("interpolate_type", ("linear", "cosine"))
        self._check_finite("init_value")
        self._normalise_boundaries("boundaries_and_scales", scales_lo=0.0)

    def __call__(self, count: Any) -> jax.Array:
        dt = _compute_dtype(self)
        c = _f(count, dt)
        items = list((self.boundaries_and_scales or {}).items())
        knots = [0] + [b for b, _ in items]
        values = [_f(self.init_value, dt)]
        for _, scale in items:
            values.append(values[-1] * _f(scale, dt))
        v = jnp.broadcast_to(values[-1], jnp.shape(c))
        for j in range(len(knots) - 1, 0, -1):  # the first knot with count < b_j wins
            pct = (c - knots[j - 1]) / max(knots[j] - knots[j - 1], 1)
            if self.interpolate_type == "cosine":
                pct = (1 - jnp.cos(jnp.pi * pct)) / 2
            v = jnp.where(c < knots[j], values[j - 1] + (values[j] - values[j - 1]) * pct, v)
        return v


# --------------------------------------------------------------------------------------------------
# Warm-up schedules.
# --------------------------------------------------------------------------------------------------


@pytree_class
class warmup_constant_schedule(Schedule):
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then ``peak_value``::

        value = init_value + (peak_value - init_value) * count / warmup_steps   if count < warmup_steps
        value = peak_value                                                      otherwise

    The gradual warm-up of Goyal et al. 2017 (arXiv 1706.02677). ``warmup_steps >= 0`` (0: no warm-up).
    """

    init_value: Scalar
    peak_value: Scalar
    warmup_steps: Scalar

    def __post_init__(self) -> None:
        self._check_finite("init_value")
        self._check_finite("peak_value")
        self._check_range("warmup_steps", 0)

    def __call__(self, count: Any) -> jax.Array:
        dt = _compute_dtype(self)
        c = _f(count, dt)
        peak = _f(self.peak_value, dt)
        return _linear_warmup(c, _f(self.init_value, dt), peak, _f(self.warmup_steps, dt),
                              jnp.broadcast_to(peak, jnp.shape(c)))


@pytree_class
class warmup_cosine_decay_schedule(Schedule):
    """Linear warm-up to ``peak_value``, then half-cosine decay to ``end_value`` at ``decay_steps``::

        count < warmup_steps:  init_value + (peak_value - init_value) * count / warmup_steps
        otherwise:             c = min(count - warmup_steps, decay_steps - warmup_steps)
                               end_value + (peak_value - end_value)
                                   * (0.5 * (1 + cos(pi * c / (decay_steps - warmup_steps)))) ** exponent

    ``decay_steps`` includes the warm-up. Warm-up: Goyal et al. 2017; cosine: Loshchilov & Hutter 2017
    (SGDR, arXiv 1608.03983). ``decay_steps > warmup_steps >= 0``.
    """

    init_value: Scalar
    peak_value: Scalar
    warmup_steps: Scalar
    decay_steps: Scalar
    end_value: Scalar = 0.0
    exponent: Scalar = 1.0

    def __post_init__(self) -> None:
        self._check_finite("init_value")
        self._check_finite("peak_value")
        self._check_range("warmup_steps", 0)
        self._check_range("decay_steps", 0, lo_open=True)
        self._check_finite("end_value")
        self._check_finite("exponent")
        w, d = concrete_number(self.warmup_steps), concrete_number(self.decay_steps)
        if w is not None and d is not None and not d > w:
            warmup = format_value(self.warmup_steps)
            self._fail("decay_steps", self.decay_steps, f"must be > warmup_steps ({warmup})")

    def __call__(self, count: Any) -> jax.Array:
        dt = _compute_dtype(self)
        c = _f(count, dt)
        peak, end = _f(self.peak_value, dt), _f(self.end_value, dt)
        warmup = _f(self.warmup_steps, dt)
        span = _f(self.decay_steps, dt) - warmup
        t = jnp.clip(c - warmup, 0, span)
        decayed = end + (peak - end) * _safe_pow(_half_cosine(_safe_div(t, span)), _f(self.exponent, dt))
        return _linear_warmup(c, _f(self.init_value, dt), peak, warmup, decayed)


@pytree_class
class warmup_exponential_decay_schedule(Schedule):
    """Linear warm-up to ``peak_value``, then ``exponential_decay`` started from ``peak_value``::

        count < warmup_steps:  init_value + (peak_value - init_value) * count / warmup_steps
        otherwise:             exponential_decay(peak_value, transition_steps, decay_rate,
                                                 transition_begin, staircase, end_value)(count - warmup_steps)

    ``warmup_steps >= 0``, ``transition_steps > 0``, ``decay_rate`` nonzero and finite,
    ``transition_begin >= 0``.
    """

    init_value: Scalar
    peak_value: Scalar
    warmup_steps: Scalar
    transition_steps: Scalar
    decay_rate: Scalar
    transition_begin: Scalar = 0
    staircase: bool = static_field(default=False)
    end_value: Scalar | None = None

    def __post_init__(self) -> None:
        self._check_finite("init_value")
        self._check_finite("peak_value")
        self._check_range("warmup_steps", 0)
        self._check_range("transition_steps", 0, lo_open=True)
        self._check_nonzero_finite("decay_rate")
        self._check_range("transition_begin", 0)
        self._check_optional_finite("end_value")

    def __call__(self, count: Any) -> jax.Array:
        dt = _compute_dtype(self)
        c = _f(count, dt)
        peak = _f(self.peak_value, dt)
        warmup = _f(self.warmup_steps, dt)
        end = None if self.end_value is None else _f(self.end_value, dt)
        decayed = _exponential(c - warmup, peak, _f(self.transition_steps, dt), _f(self.decay_rate, dt),
                               _f(self.transition_begin, dt), self.staircase, end)
        return _linear_warmup(c, _f(self.init_value, dt), peak, warmup, decayed)


# --------------------------------------------------------------------------------------------------
# Composition and the schedules of particular papers.
# --------------------------------------------------------------------------------------------------


@pytree_class
class join_schedules(Schedule):
    """One schedule after another; each later schedule restarts its count at its boundary::

        value = schedules[0](count)
        for b, s in zip(boundaries, schedules[1:]):
            if count >= b: value = s(count - b)

    ``len(boundaries) == len(schedules) - 1``; boundaries are step counts >= 0 (leaves). gradtx schedules
    stay pytrees inside the join; plain Python functions are held as static.
    """

    schedules: Sequence[Callable[[Any], Any]]
    boundaries: Sequence[Scalar]

    def __post_init__(self) -> None:
        if isinstance(self.schedules, (str, dict)) or not isinstance(self.schedules, Sequence):
            self._fail("schedules", self.schedules, "must be a sequence of callables count -> value")
        if isinstance(self.boundaries, (str, dict)) or not isinstance(self.boundaries, Sequence):
            self._fail("boundaries", self.boundaries, "must be a sequence of step counts")
        schedules = tuple(as_pytree_callable(s) for s in self.schedules)
        boundaries = tuple(self.boundaries)
        object.__setattr__(self, "schedules", schedules)
        object.__setattr__(self, "boundaries", boundaries)
        if not schedules:
            self._fail("schedules", schedules, "must hold at least one schedule")
        for s in schedules:
            self._check_callable("schedules", s)
        if len(boundaries) != len(schedules) - 1:
            self._fail("boundaries", boundaries,
                       f"must have len(schedules) - 1 = {len(schedules) - 1} entries, got {len(boundaries)}")
        for b in boundaries:
            v = concrete_number(b)
            if isinstance(b, str) or (v is not None and not (math.isfinite(v) and v >= 0)):
                self._fail("boundaries", boundaries, f"entries must be finite and >= 0, got {b!r}")

    def __call__(self, count: Any) -> jax.Array:
        c = jnp.asarray(count)
        outputs, selectors = [jnp.asarray(self.schedules[0](count))], []
        for b, s in zip(self.boundaries, self.schedules[1:]):
            bb = jnp.asarray(b)
            if jnp.issubdtype(c.dtype, jnp.integer) and jnp.issubdtype(bb.dtype, jnp.integer):
                cc, bb = c, bb.astype(c.dtype)
            else:
                fdt = _compute_dtype((c, bb))
                cc, bb = c.astype(fdt), bb.astype(fdt)
            outputs.append(jnp.asarray(s(cc - bb)))
            selectors.append(cc >= bb)
        dt = _compute_dtype(outputs)
        v = _f(outputs[0], dt)
        for take, out in zip(selectors, outputs[1:]):
            v = jnp.where(take, _f(out, dt), v)
        return v

    def __repr__(self) -> str:
        return f"join_schedules(schedules={_format(self.schedules)}, boundaries={_format(self.boundaries)})"


@pytree_class
class transformer_warmup_schedule(Schedule):
    """The inverse-square-root schedule of Vaswani et al. 2017 ("Attention Is All You Need", eq. 3)::

        s = count + 1
        value = d_model ** -0.5 * min(s ** -0.5, s * warmup_steps ** -1.5)

    Linear warm-up for ``warmup_steps`` steps (peak ``(d_model * warmup_steps) ** -0.5``), then decay as
    ``1 / sqrt(step)``. Multiply by a constant factor to tune it. ``d_model > 0``, ``warmup_steps > 0``.
    """

    d_model: Scalar
    warmup_steps: Scalar

    def __post_init__(self) -> None:
        self._check_range("d_model", 0, lo_open=True)
        self._check_range("warmup_steps", 0, lo_open=True)

    def __call__(self, count: Any) -> jax.Array:
        dt = _compute_dtype(self)
        s = _f(count, dt) + 1
        return jax.lax.rsqrt(_f(self.d_model, dt)) * jnp.minimum(
            jax.lax.rsqrt(s), s * _f(self.warmup_steps, dt) ** -1.5
        )


_WSD_DECAY_TYPES = ("linear", "cosine", "1-sqrt")


@pytree_class
class warmup_stable_decay_schedule(Schedule):
    """Warm-up, stable plateau, cool-down (WSD)::

        count < W:            init_value + (peak_value - init_value) * count / W
        W <= count < W + S:   peak_value
        otherwise:            f = min((count - W - S) / decay_steps, 1)
            'linear':  peak_value + (end_value - peak_value) * f
            'cosine':  end_value + (peak_value - end_value) * 0.5 * (1 + cos(pi * f))
            '1-sqrt':  end_value + (peak_value - end_value) * (1 - sqrt(f))

    with ``W = warmup_steps`` and ``S = stable_steps``. Hu et al. 2024, "MiniCPM" (arXiv 2404.06395);
    the '1-sqrt' cool-down from Hägele et al. 2024, "Scaling Laws and Compute-Optimal Training Beyond
    Fixed Training Durations" (arXiv 2405.18392). The plateau can be extended and a cool-down branched
    off at any point without restarting. ``warmup_steps >= 0``, ``stable_steps >= 0``, ``decay_steps > 0``.
    """

    peak_value: Scalar
    warmup_steps: Scalar
    stable_steps: Scalar
    decay_steps: Scalar
    init_value: Scalar = 0.0
    end_value: Scalar = 0.0
    decay_type: str = static_field(default="linear")

    def __post_init__(self) -> None:
        self._check_finite("peak_value")
        self._check_range("warmup_steps", 0)
        self._check_range("stable_steps", 0)
        self._check_range("decay_steps", 0, lo_open=True)
        self._check_finite("init_value")
        self._check_finite("end_value")
        self._check_choice("decay_type", _WSD_DECAY_TYPES)

    def __call__(self, count: Any) -> jax.Array:
        dt = _compute_dtype(self)
        c = _f(count, dt)
        peak, end = _f(self.peak_value, dt), _f(self.end_value, dt)
        warmup = _f(self.warmup_steps, dt)
        f = jnp.clip((c - warmup - _f(self.stable_steps, dt)) / _f(self.decay_steps, dt), 0, 1)
        if self.decay_type == "linear":
            after = peak + (end - peak) * f
        elif self.decay_type == "cosine":
            after = end + (peak - end) * _half_cosine(f)
        else:
            root = jnp.where(f > 0, jnp.sqrt(jnp.where(f > 0, f, 1)), 0)  # no inf gradient at f = 0
            after = end + (peak - end) * (1 - root)
        return _linear_warmup(c, _f(self.init_value, dt), peak, warmup, after)


# --------------------------------------------------------------------------------------------------
# One-cycle and warm-restart schedules.
# --------------------------------------------------------------------------------------------------


class _OneCycle(Schedule):
    """Shared validation of the one-cycle schedules: a piecewise interpolation whose knots are static."""

    transition_steps: int
    pct_start: float
    peak_value: Scalar
    div_factor: Scalar
    final_div_factor: Scalar

    def _check_onecycle(self) -> None:
        steps = self.transition_steps
        v = concrete_number(steps)
        if isinstance(steps, (bool, str)) or v is None or not v.is_integer() or v <= 0:
            self._fail("transition_steps", steps, "must be an integer > 0 (a concrete step count)")
        object.__setattr__(self, "transition_steps", int(cast(float, v)))
        self._check_finite("peak_value")
        self._check_pct("pct_start", 0.0)
        self._check_range("div_factor", 0, lo_open=True)
        self._check_finite("div_factor")
        self._check_range("final_div_factor", 0, lo_open=True)
        self._check_finite("final_div_factor")

    def _check_pct(self, name: str, lo: float) -> None:
        value = getattr(self, name)
        v = concrete_number(value)
        if isinstance(value, (bool, str)) or v is None:
            self._fail(name, value, "must be a concrete number in [0, 1] (it places a knot)")
        self._check_range(name, lo, 1.0)
        object.__setattr__(self, name, float(cast(float, v)))

    def _knot(self, pct: float) -> int:
        return int(pct * self.transition_steps)  # truncation, as Optax does


@pytree_class
class linear_onecycle_schedule(_OneCycle):
    """The one-cycle policy with three linear phases (Smith & Topin 2017, "Super-Convergence", arXiv 1708.07120)::

        T = transition_steps, v0 = peak_value / div_factor
        0 -> int(pct_start T):              v0 -> peak_value                 (linear)
        int(pct_start T) -> int(pct_final T):  peak_value -> v0
        int(pct_final T) -> T:              v0 -> v0 / final_div_factor
        after T:                            v0 / final_div_factor

    It is ``piecewise_interpolate_schedule('linear', v0, {int(pct_start T): div_factor,
    int(pct_final T): 1 / div_factor, T: 1 / final_div_factor})``; as in Optax, knots that coincide keep the
    later scale. The knots are static (``transition_steps`` a positive integer, ``0 <= pct_start <=
    pct_final <= 1``); ``peak_value``, ``div_factor > 0`` and ``final_div_factor > 0`` are leaves.
    """

    transition_steps: int = static_field()
    peak_value: Scalar
    pct_start: float = static_field(default=0.3)
    pct_final: float = static_field(default=0.85)
    div_factor: Scalar = 25.0
    final_div_factor: Scalar = 1e4

    def __post_init__(self) -> None:
        self._check_onecycle()
        self._check_pct("pct_final", self.pct_start)

    def __call__(self, count: Any) -> jax.Array:
        dt = _compute_dtype(self)
        peak, div = _f(self.peak_value, dt), _f(self.div_factor, dt)
        knots = {
            self._knot(self.pct_start): div,
            self._knot(self.pct_final): 1 / div,
            self.transition_steps: 1 / _f(self.final_div_factor, dt),
        }
        return piecewise_interpolate_schedule("linear", peak / div, knots)(count)


@pytree_class
class cosine_onecycle_schedule(_OneCycle):
    """The one-cycle policy with cosine phases (Smith & Topin 2017, "Super-Convergence", arXiv 1708.07120)::

        T = transition_steps, v0 = peak_value / div_factor
        0 -> int(pct_start T):  v0 -> peak_value                                  (half cosine)
        int(pct_start T) -> T:  peak_value -> v0 / final_div_factor               (half cosine)
        after T:                v0 / final_div_factor

    It is ``piecewise_interpolate_schedule('cosine', v0, {int(pct_start T): div_factor,
    T: 1 / (div_factor * final_div_factor)})``. The knots are static (``transition_steps`` a positive
    integer, ``0 <= pct_start <= 1``); ``peak_value``, ``div_factor > 0`` and ``final_div_factor > 0`` are
    leaves.
    """

    transition_steps: int = static_field()
    peak_value: Scalar
    pct_start: float = static_field(default=0.3)
    div_factor: Scalar = 25.0
    final_div_factor: Scalar = 1e4

    def __post_init__(self) -> None:
        self._check_onecycle()

    def __call__(self, count: Any) -> jax.Array:
        dt = _compute_dtype(self)
        peak, div = _f(self.peak_value, dt), _f(self.div_factor, dt)
        knots = {
            self._knot(self.pct_start): div,
            self.transition_steps: 1 / (div * _f(self.final_div_factor, dt)),
        }
        return piecewise_interpolate_schedule("cosine", peak / div, knots)(count)


_WARMUP_COSINE_ARGS = ("init_value", "peak_value", "warmup_steps", "decay_steps", "end_value", "exponent")


@pytree_class
class sgdr_schedule(Schedule):
    """SGD with warm restarts (Loshchilov & Hutter 2017, "SGDR", arXiv 1608.03983): cosine cycles joined.

    ``cosine_kwargs`` is a sequence of dicts of ``warmup_cosine_decay_schedule`` arguments, one per cycle.
    Cycle ``i`` starts at ``B_i = sum_{j<i} decay_steps_j`` and runs its own warm-up and cosine decay on
    ``count - B_i``; the last cycle goes on after its end (at its ``end_value``)::

        value = warmup_cosine_decay_schedule(**cosine_kwargs[i])(count - B_i)   for B_i <= count < B_{i+1}

    The dict values are leaves (a jitted step taking the schedule does not recompile when they change).
    """

    cosine_kwargs: Sequence[dict[str, Scalar]]

    def __post_init__(self) -> None:
        raw = self.cosine_kwargs
        if isinstance(raw, (str, bytes, dict)) or not hasattr(raw, "__iter__"):
            self._fail("cosine_kwargs", raw, "must be a sequence of dicts of warmup_cosine_decay_schedule arguments")
        cycles = tuple(raw)
        if not cycles:
            self._fail("cosine_kwargs", raw, "must hold at least one dict (one cosine cycle)")
        for i, kwargs in enumerate(cycles):
            if not isinstance(kwargs, dict):
                self._fail("cosine_kwargs", raw, f"entries must be dicts; cosine_kwargs[{i}] is {kwargs!r}")
            if "decay_steps" not in kwargs:
                self._fail("cosine_kwargs", raw, f"cosine_kwargs[{i}] lacks 'decay_steps' (the cycle's length)")
            unknown = sorted(set(kwargs) - set(_WARMUP_COSINE_ARGS))
            if unknown:
                self._fail("cosine_kwargs", raw, f"cosine_kwargs[{i}] has keys {unknown} that "
                           f"warmup_cosine_decay_schedule does not take (it takes {list(_WARMUP_COSINE_ARGS)})")
            try:
                warmup_cosine_decay_schedule(**kwargs)
            except TypeError as e:
                self._fail("cosine_kwargs", raw, f"cosine_kwargs[{i}] is not a full set of arguments: {e}")
            except ValueError as e:
                self._fail("cosine_kwargs", raw, f"cosine_kwargs[{i}] is invalid: {e}")
        object.__setattr__(self, "cosine_kwargs", tuple(dict(kwargs) for kwargs in cycles))

    def __call__(self, count: Any) -> jax.Array:
        schedules, starts, start = [], [], 0
        for kwargs in self.cosine_kwargs:
            schedules.append(warmup_cosine_decay_schedule(**kwargs))
            start = start + kwargs["decay_steps"]
            starts.append(start)
        return join_schedules(schedules, starts[:-1])(count)

    def __repr__(self) -> str:
        # Each dict in warmup_cosine_decay_schedule's argument order (a pytree round trip sorts dict keys).
        cycles = [{k: kwargs[k] for k in _WARMUP_COSINE_ARGS if k in kwargs} for kwargs in self.cosine_kwargs]
        return f"sgdr_schedule(cosine_kwargs={_format(tuple(cycles))})"


# Optax also spells the hyperparameter injection wrappers under ``optax.schedules``. They live in gradtx.wrappers
# (a layer above this module), so they are served lazily by name (PEP 562): the one canonical object, no second
# definition. ``tests/test_layers.py`` checks that this table points only at gradtx.wrappers and gradtx.base.
_OPTAX_SPELLINGS = {
    **dict.fromkeys(
        [
            "InjectHyperparamsState",
            "InjectStatefulHyperparamsState",
            "WrappedSchedule",
            "inject_hyperparams",
            "inject_stateful_hyperparams",
        ],
        "gradtx.wrappers",
    ),
    "StatefulSchedule": "gradtx.base",
}


__getattr__, __dir__ = lazy_spellings(globals(), _OPTAX_SPELLINGS)
