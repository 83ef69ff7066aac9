"""The schedule base class, its validation helpers, and the formulas several schedules share.

The formulas are elementwise, with no Python branching on leaf values, so that they trace with the
hyperparameters as well as with the count. Every schedule sees a count >= 0: the base class clamps a
negative count (a user's ``schedule(step - delay)``) to 0 before any subclass formula runs (see
:class:`Schedule`), so the formulas need not handle counts below 0.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from gradtx.base import Scalar as Scalar  # the fields of the schedules in _basic and _composite
from gradtx.fields import (
    Check,
    HyperparameterError,
    InvalidType,
    ValidationMixin,
    concrete_number,
    format_value,
)

# A finite real number >= 0 (a boundary step, a scale of piecewise_interpolate_schedule): what
# ``hyper(lo=0.0, hi=math.inf, hi_open=True)`` declares for one field, applied to each entry of a container.
FINITE_NON_NEGATIVE = Check("number", lo=0.0, hi=math.inf, hi_open=True)
FINITE = Check("number")


# --------------------------------------------------------------------------------------------------
# Dtypes and the formulas shared by several schedules.
# --------------------------------------------------------------------------------------------------


def schedule_dtype(tree: Any) -> np.dtype:
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


def _refusal(check: Check, value: Any) -> type | None:
    """The error class ``check`` raises for ``value`` (``None`` if it accepts it): one entry of a container."""
    try:
        check("", "", value)
    except HyperparameterError as e:
        return type(e)
    return None


# --------------------------------------------------------------------------------------------------
# The base class.
# --------------------------------------------------------------------------------------------------


def clamp_count(count: Any) -> Any:
    """``count`` with every entry below 0 replaced by 0, in the type and dtype it came in.

    A Python or NumPy scalar stays a scalar of its type, a NumPy array a NumPy array, anything else (a JAX
    array, a tracer) becomes the JAX array ``jnp.asarray`` makes of it. NaN is kept (it is not below 0); a count >= 0 is
    returned unchanged, bit for bit, so the values of a schedule at counts >= 0 do not move.

    Args:
        count: the step count handed to a schedule: a Python or NumPy number, an array or a tracer.

    Returns:
        ``max(count, 0)`` elementwise, NaN kept.

    Example:
        >>> from gradtx.schedules._base import clamp_count
        >>> clamp_count(-3), clamp_count(7), clamp_count(-0.5)
        (0, 7, 0.0)
    """
    if isinstance(count, (int, float, np.generic)):
        return type(count)(0) if cast(Any, count) < 0 else count
    if isinstance(count, np.ndarray):
        return np.where(count < 0, np.zeros_like(count), count)
    c = jnp.asarray(count)
    return jnp.where(c < 0, jnp.zeros_like(c), c)


def _counting_from_zero(call: Any) -> Any:
    """``call`` (a schedule's ``__call__``) made to see ``clamp_count(count)``."""

    @functools.wraps(call)
    def __call__(self: Any, count: Any) -> jax.Array:
        return cast(jax.Array, call(self, clamp_count(count)))

    __call__._clamps_count = True  # type: ignore[attr-defined]
    return __call__


class Schedule(ValidationMixin):
    """Base class of every gradtx schedule: a pytree callable ``count -> value`` (``count`` 0-based).

    ``schedule(count)`` takes the 0-based step count (a Python or NumPy integer, or an integer array, traced
    or not; the schedule is elementwise in it) and returns a floating ``jax.Array`` (float32, or wider if
    the hyperparameters are). A schedule is accepted wherever gradtx takes a ``ScalarOrSchedule`` (a
    ``learning_rate``, a ``weight_decay``, ...), and so is any plain function ``count -> value``; Optax's
    schedules are plain functions too.

    A subclass is a :func:`gradtx.fields.pytree_class` that declares each argument with a field of
    :mod:`gradtx.fields` (``real()`` for a value, ``positive()`` for a step count that divides, ...), so that
    it is validated in the constructor and is a pytree (numbers are leaves); the rules that involve several
    arguments or the entries of a container are in its ``__check_init__``, with the helpers below.

    Counts below 0: every subclass's ``__call__`` is wrapped, when the subclass is defined, so that it sees
    :func:`clamp_count` of the count it is given: ``schedule(-k) == schedule(0)`` for every schedule, including
    subclasses defined outside this package (a user's ``schedule(step - delay)`` never yields a negative or
    extrapolated learning rate). Counts >= 0 are passed through unchanged.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.fields import pytree_class, real
      >>> @pytree_class
      ... class halving(gradtx.schedules.Schedule):
      ...     init_value: float = real()
      ...     def __call__(self, count):
      ...         return self.init_value * 0.5 ** jnp.asarray(count, jnp.float32)
      >>> s = halving(1.0)
      >>> print([float(s(t)) for t in (-2, 0, 1, 2)])  # a count below 0 gives the value at 0
      [1.0, 1.0, 0.5, 0.25]
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        call = cls.__dict__.get("__call__")
        if call is not None and not getattr(call, "_clamps_count", False):
            cls.__call__ = _counting_from_zero(call)  # type: ignore[method-assign]

    def __call__(self, count: ArrayLike) -> jax.Array:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = dataclasses.fields(cast(Any, self))
        parts = [f"{f.name}={_format(getattr(self, f.name))}" for f in fields if f.repr]
        return f"{type(self).__name__}({', '.join(parts)})"

    # Checks for __check_init__ (the fields' own kind and range are checked before it runs).

    def _check_nonzero(self, name: str) -> None:
        """A decay rate declared ``real()`` (finite) must also be nonzero (checked when concrete)."""
        value = getattr(self, name)
        if concrete_number(value) == 0:
            self._fail(name, value, "must be nonzero and finite")

    def _concrete(self, name: str, convert: Any, what: str) -> None:
        """Store the static number ``name`` as ``convert(value)``; a traced value is refused (it sets structure)."""
        value = getattr(self, name)
        v = concrete_number(value)
        if v is None:
            self._fail(name, value, f"must be {what}", InvalidType)
        object.__setattr__(self, name, convert(v))

    def _normalise_boundaries(self, name: str, scales: Check) -> None:
        """Turn a ``{boundary: scale}`` dict (or None) into a dict sorted by int boundary; each scale must pass
        ``scales`` (:data:`FINITE` or :data:`FINITE_NON_NEGATIVE`), each boundary be a step count >= 0."""
        raw = getattr(self, name)
        if raw is None:
            object.__setattr__(self, name, {})
            return
        if not isinstance(raw, dict):
            self._fail(name, raw, "must be a dict {boundary step: scale} or None", InvalidType)
        out: dict[int, Any] = {}
        for key, scale in raw.items():
            k = concrete_number(key)
            if isinstance(key, (str, bool)) or k is None or not math.isfinite(k) or not k.is_integer():
                self._fail(name, raw, f"keys must be integer step counts, got {key!r}")
            elif k < 0:
                self._fail(name, raw, f"keys (boundaries) must be >= 0, got {key!r}")
            kind = _refusal(scales, scale)
            if kind is not None:
                self._fail(name, raw, f"values (scales) must be {scales.describe()}, got {scale!r}", kind)
            out[int(cast(float, k))] = scale
        object.__setattr__(self, name, dict(sorted(out.items())))
