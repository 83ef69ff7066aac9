"""Private helpers shared by the loss families: input checks and masked, NaN-safe reductions.

Nothing here is public. The checks raise at call time, on concrete values only (tracers are skipped, so every
loss stays usable under ``jit``/``vmap``/``grad``), and name the loss, the argument, the value and the valid
range. A dtype mismatch raises :class:`LossInputError`, which is both a ``TypeError`` (what Optax raises for
the same mistake, so ``except TypeError`` keeps working) and a ``ValueError`` (the gradtx convention).
"""

from __future__ import annotations

import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gradtx.fields import concrete_number

__all__: list[str] = []


class LossInputError(TypeError, ValueError):
    """Bad input to a loss: a ``TypeError`` for Optax compatibility and a ``ValueError`` by gradtx's rule."""


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of an array or of anything NumPy can turn into one."""
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def check_floating(fn: str, name: str, x: Any) -> None:
    """Raise unless ``x`` has a floating dtype (Optax accepts no integer logits either)."""
    dtype = jax.dtypes.result_type(x)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise LossInputError(f"{fn}({name} of dtype {dtype}): {name} must have a floating dtype")


def check_integer(fn: str, name: str, x: Any) -> None:
    """Raise unless ``x`` has an integer dtype."""
    dtype = jax.dtypes.result_type(x)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise LossInputError(f"{fn}({name} of dtype {dtype}): {name} must have an integer dtype")


def check_same_shape(fn: str, a_name: str, a: Any, b_name: str, b: Any) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape."""
    sa, sb = shape_of(a), shape_of(b)
    if sa != sb:
        raise ValueError(f"{fn}({a_name} of shape {sa}, {b_name} of shape {sb}): the shapes must be equal")


def check_rank(fn: str, name: str, x: Any, rank: int) -> None:
    """Raise ``ValueError`` unless ``x`` has ``rank`` dimensions."""
    s = shape_of(x)
    if len(s) != rank:
        raise ValueError(f"{fn}({name} of shape {s}): {name} must have rank {rank}, got rank {len(s)}")


def check_scalar_range(
    fn: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ``ValueError`` if the concrete scalar ``value`` lies outside the interval; skip tracers/arrays.

    NaN is always rejected for a concrete scalar (no loss means anything with a NaN hyperparameter).
    """
    v = concrete_number(value)
    if v is None:
        return
    bad = v != v  # NaN
    if low is not None:
        bad = bad or (v <= low if low_open else v < low)
    if high is not None:
        bad = bad or (v >= high if high_open else v > high)
    if bad:
        lo = "-inf" if low is None else repr(low)
        hi = "inf" if high is None else repr(high)
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{fn}({name}={value!r}): {name} must be in {interval}")


def normalize_axis(fn: str, axis: Any, ndim: int) -> int:
    """``axis`` as a non-negative index into ``ndim`` dimensions, or ``ValueError`` naming the call."""
    a = operator.index(axis)
    if -ndim <= a < ndim:
        return a % ndim if ndim else a
    raise ValueError(f"{fn}(axis={axis}): axis is out of bounds for an array of {ndim} dimensions")


def expand_where(where: Any, axis: Any, ndim: int) -> Any:
    """A mask of the batch shape gets the reduced axes back (size 1), so it broadcasts against the logits."""
    if where is None:
        return None
    where = jnp.asarray(where)
    if where.ndim != ndim:
        where = jnp.expand_dims(where, axis)
    return where


def _shifted_and_sum(x: jax.Array, axis: Any, where: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``x - m`` (``m`` the maximum over ``axis`` within ``where``, held constant for differentiation), the sum of
    ``exp(x - m)`` over ``axis`` (kept as a size-1 axis) and ``m``. Masked entries are replaced before ``exp``, so
    neither they nor an empty sum put a NaN in the gradient."""
    m = jnp.max(x, axis=axis, where=where, initial=-jnp.inf, keepdims=True)
    m = lax.stop_gradient(jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m)))
    shifted = x - m
    if where is not None:
        shifted = jnp.where(where, shifted, jnp.zeros_like(shifted))
    e = jnp.exp(shifted)
    if where is not None:
        e = jnp.where(where, e, jnp.zeros_like(e))
    return shifted, jnp.sum(e, axis=axis, keepdims=True), m


def _safe_log(s: jax.Array) -> jax.Array:
    """``log(s)`` for ``s >= 0``, ``-inf`` for an empty sum, with no NaN in the gradient."""
    positive = s > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, s, jnp.ones_like(s))), -jnp.inf)


def masked_logsumexp(x: jax.Array, axis: Any = -1, where: Any = None, keepdims: bool = False) -> jax.Array:
    """``log(sum(exp(x)))`` over ``axis`` restricted to ``where``, stable for huge ``|x|``, with finite gradients
    (``m + log(sum(exp(x - m)))``, ``m`` the maximum)."""
    _, s, m = _shifted_and_sum(x, axis, where)
    out = _safe_log(s) + m
    if not keepdims:
        out = jnp.squeeze(out, axis=axis) if axis is not None else jnp.reshape(out, ())
    return out


def masked_log_softmax(x: jax.Array, axis: Any = -1, where: Any = None) -> jax.Array:
    """``(x - m) - log(sum(exp(x - m)))`` over ``axis`` (restricted to ``where``; ``m`` the maximum), as
    ``jax.nn.log_softmax`` computes it (without a mask it *is* ``jax.nn.log_softmax``, so results agree with
    Optax's bit for bit); with a mask, an all-masked row gives no NaN in the gradient. Entries outside ``where``
    are meaningless."""
    if where is None:  # jax.nn.log_softmax is jitted as one program: calling it gives Optax's bits exactly
        return jax.nn.log_softmax(x, axis=axis)
    shifted, s, _ = _shifted_and_sum(x, axis, where)
    return shifted - _safe_log(s)


def masked_softmax(x: jax.Array, axis: Any = -1, where: Any = None) -> jax.Array:
    """``exp(log_softmax(x))``; entries outside ``where`` are 0."""
    log_p = masked_log_softmax(x, axis=axis, where=where)
    if where is not None:  # an all-masked row has log_p = +inf: keep it out of exp and of the gradient
        log_p = jnp.where(where, log_p, -jnp.inf)
    return jnp.exp(log_p)


def safe_log(x: jax.Array) -> jax.Array:
    """``log(x)`` where ``x > 0`` and 0 elsewhere, with a finite gradient everywhere (the ``0 log 0 = 0`` rule)."""
    positive = x > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, x, jnp.ones_like(x))), jnp.zeros_like(x))
