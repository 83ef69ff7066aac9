"""Precision: the compute dtype of a leaf, hyperparameters in it, decay rates, averages and bias corrections.

Every function that mixes a hyperparameter with an array computes in ``compute_dtype(array.dtype)``: the
array's dtype promoted to at least float32 (complex stays complex), so hyperparameters are never rounded to
bfloat16 (``0.999`` would become ``1.0``). :class:`Leaf` is the vocabulary every block writes its update in.

Decay rates: :func:`complement` forms ``1 - decay`` before the cast (``0.001`` for ``decay = 0.999``, not
``1 - float32(0.999) = 0.00099998713``), :func:`ema` applies the decay ``1 - c`` from that complement, and
:func:`debias` is the one bias correction, ``1 - decay^k = -expm1(k log1p(-c))`` from the same complement: the
weights of an average sum to exactly its correction.

Safe roots and ratios (issue 15): :func:`safe_sqrt` is ``jnp.sqrt`` with a finite derivative at 0 (hypergradients
through a second moment that is 0); :func:`scale_ratio` and :func:`times_inverse` divide by an adaptive scale,
giving 0 where the scale is 0 (``eps = 0`` and all-zero gradients: not ``0/0``) and NaN where it is infinite (an
overflowed second moment: not a silent 0), and the plain quotient bit for bit elsewhere.
"""

from __future__ import annotations

import builtins
import fractions
from collections.abc import Callable
from typing import Any, TypeGuard, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from gradtx.base import PyTree, Scalar

__all__ = [
    "Leaf",
    "abs_sq",
    "bias_correction",
    "complement",
    "compute_dtype",
    "debias",
    "decay_parts",
    "ema",
    "hyper",
    "like",
    "map_split",
    "safe_sqrt",
    "scale_ratio",
    "times_inverse",
    "up",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    "wider",
    "widest_real_dtype",
]

_T = TypeVar("_T")


def compute_dtype(dtype: DTypeLike) -> np.dtype:
    """The dtype arithmetic runs in: ``dtype`` promoted to at least float32 (complex kept).

    bfloat16 and float16 give float32, complex64 and wider floats stay, integers and bools give float32.

    Args:
      dtype: a dtype (or anything ``np.dtype`` accepts).

    Returns:
      A NumPy dtype: float32, float64, complex64 or complex128.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.compute_dtype(jnp.bfloat16), tree.compute_dtype(jnp.int32), tree.compute_dtype(jnp.float64))
      float32 float32 float64
    """
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return dtype if dtype.itemsize >= 8 else np.dtype(np.complex64)
    if jnp.issubdtype(dtype, jnp.floating):
        return dtype if dtype.itemsize >= 4 else np.dtype(np.float32)
    return np.dtype(np.float32)


def _real(dtype: np.dtype) -> np.dtype:
    return np.dtype(jnp.finfo(dtype).dtype)  # type: ignore[no-untyped-call]  # jnp.finfo is unannotated


def widest_real_dtype(tree: PyTree) -> np.dtype:
    """The widest real floating dtype among the leaves of ``tree`` (complex: its real part), at least float32
    (the dtype of scalar statistics and hyperparameters kept beside parameters of mixed dtypes).

    Args:
      tree: a pytree of arrays; leaves without a ``dtype`` (Python numbers) are skipped.

    Returns:
      A real NumPy dtype, float32 or wider.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.widest_real_dtype({"a": jnp.ones(1, jnp.bfloat16), "b": jnp.ones(1, jnp.complex64)}))
      float32
    """
    dt = np.dtype(np.float32)
    for leaf in jax.tree.leaves(tree):
        d = getattr(leaf, "dtype", None)
        if d is None:
            continue
        d = np.dtype(d)
        if jnp.issubdtype(d, jnp.complexfloating):
            d = np.dtype(jnp.finfo(d).dtype)  # type: ignore[no-untyped-call]  # jnp.finfo is unannotated
        if jnp.issubdtype(d, jnp.floating) and d.itemsize > dt.itemsize:
            dt = d
    return dt


def hyper(value: Scalar, like: ArrayLike | DTypeLike) -> jax.Array:
    """A scalar hyperparameter as a real array of the compute dtype of ``like`` (an array or dtype).

    So ``0.999`` beside a bfloat16 leaf is float32's ``0.999``, not bfloat16's ``1.0``.

    Args:
      value: the hyperparameter (a number or a real array, may be traced).
      like: an array (its dtype is used) or a dtype.

    Returns:
      ``value`` as an array of the real part of ``compute_dtype(like)`` (float32 or float64).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> b2 = tree.hyper(0.999, jnp.ones(2, jnp.bfloat16))
      >>> print(b2, b2.dtype)
      0.999 float32
    """
    dt = cast(DTypeLike, getattr(like, "dtype", like))
    return jnp.asarray(value, dtype=_real(compute_dtype(dt)))


def like(a: ArrayLike, x: ArrayLike) -> jax.Array:
    """A real array ``a`` in the dtype of ``x`` (complex when ``x`` is): strict promotion multiplies only equal
    dtypes, and a real factor times a complex leaf is the one mixed product the blocks need.

    Args:
      a: a real array or number (a factor, a correction).
      x: the array whose dtype ``a`` takes.

    Returns:
      ``a`` cast to ``x``'s dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.like(jnp.float32(2.0), jnp.array([1j])).dtype)
      complex64
    """
    return jnp.asarray(a).astype(jnp.asarray(x).dtype)


def up(x: ArrayLike) -> jax.Array:
    """``x`` in its compute dtype (a no-op for float32 and wider; see :func:`compute_dtype`).

    Args:
      x: an array (or number).

    Returns:
      ``x`` as an array of ``compute_dtype(x.dtype)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.up(jnp.ones(2, jnp.bfloat16)).dtype)
      float32
    """
    x = jnp.asarray(x)
    return x.astype(compute_dtype(x.dtype))


def abs_sq(x: ArrayLike) -> jax.Array:
    """``|x|**2`` as a real array (``real(x * conj(x))`` for complex ``x``, ``x * x`` otherwise).

    Args:
      x: a real or complex array; it is not promoted (call :func:`up` first for bfloat16).

    Returns:
      A real array of ``x``'s shape (the real dtype of ``x``'s).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.abs_sq(jnp.array([3 + 4j, -2])))
      [25.  4.]
    """
    x = jnp.asarray(x)
    if jnp.iscomplexobj(x):
        return jnp.real(x * jnp.conj(x))
    return x * x


# --- safe roots and ratios: finite derivatives at 0, visible failures at inf ------------------------------


def safe_sqrt(x: ArrayLike) -> jax.Array:
    """``sqrt(x)`` whose derivative at ``x = 0`` is 0 instead of ``inf`` (which times a zero cotangent is NaN).

    The double ``where``: the root is taken of ``where(x == 0, 1, x)`` and replaced by 0 where ``x == 0``, so the
    value is ``jnp.sqrt(x)`` bit for bit (NaN stays NaN) and no infinite derivative enters the chain rule. Used
    for every square root of a second moment or a sum of squares, so that hypergradients (``jax.grad`` of a
    loss after some steps with respect to ``learning_rate``, ``b2``, ...) stay finite when a gradient
    coordinate is exactly 0.

    Args:
      x: an array (``>= 0`` where it matters).

    Returns:
      ``sqrt(x)``, same dtype.

    Example:
      >>> import jax
      >>> from gradtx.tree.precision import safe_sqrt
      >>> float(jax.grad(safe_sqrt)(0.0)), float(jax.grad(safe_sqrt)(4.0))
      (0.0, 0.25)
    """
    x = jnp.asarray(x)
    zero = x == 0
    return jnp.where(zero, jnp.zeros_like(x), jnp.sqrt(jnp.where(zero, jnp.ones_like(x), x)))


def scale_ratio(num: ArrayLike, den: ArrayLike) -> jax.Array:
    """``num / den`` for an adaptive scale ``den >= 0`` (``sqrt(v) + eps`` and the like), failing visibly.

    - ``den == 0`` (``eps = 0`` and a second moment that is 0: a coordinate whose gradients were all 0):
      0, not ``0 / 0 = NaN``; its derivative is 0 too.
    - ``den == inf`` (a second moment that overflowed, e.g. ``g^2`` of a float32 ``g = 1e20``): NaN, not the
      ``num / inf = 0`` that would freeze the coordinate forever without any sign of trouble.
    - elsewhere ``num / den``, bit for bit.

    One elementwise expression, fused into the block's own pass.

    Args:
      num: the numerator (real or complex).
      den: the scale, of ``num``'s dtype (a complex dtype holding a real value for complex ``num``).

    Returns:
      The ratio, of the dtype of ``num / den``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.tree.precision import scale_ratio
      >>> scale_ratio(jnp.array([0.0, 1.0, 1.0]), jnp.array([0.0, jnp.inf, 2.0])).tolist()
      [0.0, nan, 0.5]
    """
    num, den = jnp.asarray(num), jnp.asarray(den)
    zero = den == 0
    q = num / jnp.where(zero, jnp.ones_like(den), den)
    return jnp.where(zero, jnp.zeros_like(q), jnp.where(jnp.isinf(den), jnp.full_like(q, jnp.nan), q))


def times_inverse(g: ArrayLike, d: ArrayLike, inverse: Callable[[jax.Array], jax.Array] = jax.lax.rsqrt,
                  cast: Callable[[jax.Array], jax.Array] | None = None) -> jax.Array:
    """``cast(inverse(d)) * g`` (RMSProp's ``g * rsqrt(nu + eps)``, Adagrad's), failing visibly.

    As :func:`scale_ratio`: 0 where ``d == 0`` (not ``0 * inf``; a zero derivative too), NaN where ``d`` is
    ``inf`` (an overflowed second moment: not ``g * 0``), ``cast(inverse(d)) * g`` bit for bit elsewhere.

    Args:
      g: the update (real or complex, in its compute dtype).
      d: the real denominator, broadcastable to ``g``: ``nu + eps`` under ``rsqrt``, or ``sqrt(nu) + eps`` with
        ``inverse=lambda d: 1 / d``.
      inverse: the elementwise inverse applied to ``d`` (default ``jax.lax.rsqrt``).
      cast: how the real factor is brought to ``g``'s dtype (default ``astype(g.dtype)``).

    Returns:
      The scaled update, of ``g``'s dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.tree.precision import times_inverse
      >>> times_inverse(jnp.array([0.0, 1.0, 2.0]), jnp.array([0.0, jnp.inf, 4.0])).tolist()
      [0.0, nan, 1.0]
    """
    g, d = jnp.asarray(g), jnp.asarray(d)
    zero = d == 0
    r = inverse(jnp.where(zero, jnp.ones_like(d), d))
    out = (r.astype(g.dtype) if cast is None else cast(r)) * g
    return jnp.where(zero, jnp.zeros_like(out), jnp.where(jnp.isinf(d), jnp.full_like(out, jnp.nan), out))


# --- moments ------------------------------------------------------------------------------------------


def _pair(g: Any, m: Any) -> tuple[jax.Array, jax.Array, np.dtype]:
    """``g`` and ``m`` in one compute dtype (the wider of theirs), without implicit promotion."""
    g, m = jnp.asarray(g), jnp.asarray(m)
    dg, dm = compute_dtype(g.dtype), compute_dtype(m.dtype)
    cdt = dg if (dg.itemsize, dg.kind == "c") > (dm.itemsize, dm.kind == "c") else dm
    if dg.kind == "c" and cdt.kind != "c":
        cdt = np.dtype(np.complex128 if cdt.itemsize >= 8 else np.complex64)
    return g.astype(cdt), m.astype(cdt), cdt


def complement(decay: Scalar, like: ArrayLike | DTypeLike) -> jax.Array:
    """The complement ``1 - decay`` of a decay rate, formed *before* rounding to the compute dtype.

    A Python number is subtracted in float64 and rounded once: ``decay = 0.999`` gives float32's ``0.001``, not
    ``1 - float32(0.999) = 0.00099998713`` (1.3e-5 relative off; ``0.9999``: 1.7e-4 off). An array (a traced or
    injected hyperparameter) is subtracted in the wider of its own dtype and float32, then cast.

    Args:
      decay: the decay rate, a Python number or a real scalar array, usually in ``[0, 1]`` (not checked here).
      like: an array or a dtype; the result has the real compute dtype of it (``gradtx.tree.compute_dtype``:
        float32 or wider).

    Returns:
      A real scalar array ``1 - decay``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.complement(0.999, jnp.float32))
      0.001
    """
    if _is_number(decay):
        return hyper(1 - float(decay), like)
    d = jnp.asarray(decay)
    if jnp.issubdtype(d.dtype, jnp.floating) and d.dtype.itemsize >= 4:
        return hyper(1 - d, like)
    return hyper(1 - d.astype(np.float32), like)


def debias(decay: Scalar, count: ArrayLike, like: ArrayLike | DTypeLike) -> jax.Array:
    """The bias-correction factor ``1 - decay^count`` of a zero-initialised average (Kingma & Ba 2015,
    arXiv 1412.6980, Algorithm 1), computed as ``-expm1(count * log1p(-c))`` from ``c = complement(decay)``.

    The one bias correction of gradtx: every block that divides by ``1 - b^k`` uses it. It is accurate to a few
    ulps for ``b`` near 1 and any ``count`` (no ``1 - b^k`` cancellation, no rounded ``b``), and it is consistent
    with :func:`ema`, whose weights ``c (1 - c)^(k - j)``, ``j = 1..k``, sum to exactly this number.

    Args:
      decay: the decay rate in ``[0, 1]``, a Python number or a real scalar array (may be traced).
      count: the number of averaged terms ``k >= 0``, an integer or integer array.
      like: an array or a dtype; the result has its real compute dtype (float32 or wider).

    Returns:
      A real scalar array: ``1`` for ``decay = 0`` and ``count >= 1`` (``0``, not NaN, at ``count = 0``);
      ``0`` for ``decay = 1``. Gradients with respect to ``decay`` are finite everywhere.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.debias(0.999, 1, jnp.float32), tree.debias(0.9, 2, jnp.float32))
      0.0009999999 0.19
    """
    c = complement(decay, like)
    k = jnp.asarray(count).astype(c.dtype)
    zero = c >= 1  # decay 0: log1p(-1) = -inf, kept out of both the value and the gradient (no 0 * inf)
    factor = -jnp.expm1(k * jnp.log1p(-jnp.where(zero, 0.5, c)))
    return jnp.where(zero, jnp.where(k == 0, 0.0, 1.0).astype(c.dtype), factor)


# Optax's EMA ``(1 - b) g + float32(b) m`` is exact to float32 rounding when float32(b) + (1 - b) = 1 to within
# this many ulps of the complement (b = 0.9, 0.95: 2 ulps); there gradtx computes the same numbers as Optax.
_EXACT_ULPS = 4


def _is_number(x: Any) -> TypeGuard[int | float | np.integer | np.floating]:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def decay_parts(decay: Scalar, like: ArrayLike | DTypeLike) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """A decay rate split for exact averaging: the complement ``c = 1 - decay`` and the decay ``1 - c`` as the
    float sum ``d + r``.

    ``d = 1 - c`` rounded (float32's ``decay``, the factor Optax multiplies by) and ``r = (1 - c) - d`` its
    rounding error, below half an ulp of 1, so ``d x + r x`` is ``(1 - c) x`` to one rounding. For a Python number
    ``r`` is computed exactly on the host and dropped (``None``) where ``|r| <= 4 ulp(c)`` (``0.9``, ``0.95``, every
    decay <= 1/2): there Optax's ``float32(decay)`` and exact complement are already consistent to float32
    rounding, and :func:`ema` computes Optax's numbers. For an array decay ``d`` is the decay itself and ``r`` is
    ``None``: ``c = 1 - d`` is then exact for ``d`` in ``[1/2, 1]`` (Sterbenz), the range of decay rates.

    Args:
      decay: the decay rate in ``[0, 1]``, a Python number or a real scalar array (may be traced).
      like: an array or a dtype; the parts have its real compute dtype (float32 or wider).

    Returns:
      ``(c, d, r)``: real scalar arrays, ``r`` possibly ``None``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> c, d, r = tree.decay_parts(0.999, jnp.float32)
      >>> print(c, d, r)
      0.001 0.999 -1.2922101e-08
      >>> tree.decay_parts(0.9, jnp.float32)[2] is None
      True
    """
    c = complement(decay, like)
    rt = np.dtype(c.dtype)
    if _is_number(decay):
        c_np = np.asarray(1 - float(decay)).astype(rt)
        d_np = (rt.type(1) - c_np).astype(rt)
        r_exact = fractions.Fraction(1) - fractions.Fraction(float(c_np)) - fractions.Fraction(float(d_np))
        r_np = float(r_exact)
        d = jnp.asarray(d_np, rt)
        if abs(r_np) <= _EXACT_ULPS * float(np.finfo(rt).eps) * abs(float(c_np)):
            return c, d, None
        return c, d, jnp.asarray(r_np, rt)
    # An array decay (injected, traced): c = 1 - decay is exact for decay in [1/2, 1] (Sterbenz), so decay itself is
    # 1 - c and there is no rounding error to carry: Optax's arithmetic, operation for operation.
    return c, jnp.asarray(decay).astype(c.dtype), None


def ema(decay: Scalar, old: jax.Array, new: jax.Array) -> jax.Array:
    """One step of an exponential moving average, ``decay * old + (1 - decay) * new``, with the exact complement.

    Computed from :func:`decay_parts` as ``c new + d old`` (Optax's numbers, where those are exact to float32
    rounding) or ``d old + (r old + c new)``: the decay applied is ``1 - c`` to float rounding, where
    ``float32(decay)`` differs from it by up to half an ulp of 1 (1.3e-5 relative of ``c`` for ``decay = 0.999``,
    1.7e-4 for ``0.9999``), so the weights ``c (1 - c)^j`` sum to :func:`debias`'s factor and a debiased average
    of a constant is that constant. No cancellation for any decay.

    Args:
      decay: the decay rate in ``[0, 1]``, a Python number or a real scalar array (may be traced).
      old: the previous average, an array of a float or complex compute dtype (float32 or wider).
      new: the new term, an array of the same dtype as ``old``.

    Returns:
      The new average, an array of the dtype of ``old``; ``decay = 0`` returns ``new`` exactly.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.ema(0.999, jnp.zeros(2, jnp.float32), jnp.asarray([1.0, 3.0], jnp.float32)))
      [0.001 0.003]
    """
    return _ema_parts(decay_parts(decay, old), old, new)


def _scaled_decay(parts: tuple[jax.Array, jax.Array, jax.Array | None], old: jax.Array) -> jax.Array | None:
    """``r old`` (``None`` when ``r`` is)."""
    r = parts[2]
    return None if r is None else like(r, old) * old


def _ema_parts(parts: tuple[jax.Array, jax.Array, jax.Array | None], old: jax.Array, new: jax.Array) -> jax.Array:
    c, d = like(parts[0], old), like(parts[1], old)
    r_old = _scaled_decay(parts, old)
    if r_old is None:
        return c * new + d * old
    return d * old + (r_old + c * new)


class _Complements:
    """:func:`decay_parts` of ``decay`` in a compute dtype, built once per dtype for a whole tree.

    Inside ``jit`` every ``jnp`` operation is traced, constants included: computing ``1 - decay`` per leaf
    gives a tree of N leaves N copies of the same scalar ops to trace and to compile. The numbers are the same.
    """

    def __init__(self, decay: Any) -> None:
        self.decay = decay
        self.cache: dict[Any, tuple[jax.Array, jax.Array, jax.Array | None]] = {}

    def __call__(self, cdt: Any) -> tuple[jax.Array, jax.Array, jax.Array | None]:
        cdt = np.dtype(cdt)
        if cdt not in self.cache:
            self.cache[cdt] = decay_parts(self.decay, cdt)
        return self.cache[cdt]


def _map_moments(fn: Callable[..., Any], updates: PyTree, moments: PyTree) -> PyTree:
    """``fn(g, m)`` over the leaves of ``updates``, ``None`` included (Optax's ``is_leaf``): a ``None`` update
    gives a ``None`` moment, whatever the moment tree holds there."""
    return jax.tree.map(fn, updates, moments, is_leaf=lambda x: x is None)


def update_moment(updates: PyTree, moments: PyTree, decay: Scalar, order: int) -> PyTree:
    """``decay * m + (1 - decay) * g**order``, in compute dtype, stored in each moment's dtype.

    Computed as :func:`ema` from the exact complement ``1 - decay`` (see :func:`complement`), so that
    :func:`bias_correction` divides by exactly the sum of the weights. Optax's ``tree_update_moment``.

    Args:
      updates: the gradients ``g``, a pytree of arrays; a ``None`` leaf gives a ``None`` moment.
      moments: the moments ``m``, a pytree of ``updates``' structure (any float dtype: it is kept).
      decay: the decay rate, in ``[0, 1]`` (a number or a real scalar array, may be traced).
      order: the power of ``g`` (1: the first moment; 2: the second, ``g * g``, complex for complex ``g``).

    Returns:
      The new moments, a pytree of ``moments``' structure and leaf dtypes.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.update_moment({"w": jnp.array([1.0, 2.0])}, {"w": jnp.zeros(2)}, 0.5, 2)["w"])
      [0.5 2. ]
    """

    complements = _Complements(decay)

    def one(g: Any, m: Any) -> Any:
        if g is None:
            return None
        g32, m32, cdt = _pair(g, m)
        return _ema_parts(complements(cdt), m32, g32**order).astype(jnp.asarray(m).dtype)

    return _map_moments(one, updates, moments)


def update_moment_per_elem_norm(updates: PyTree, moments: PyTree, decay: Scalar, order: int) -> PyTree:
    """``decay * m + (1 - decay) * |g|**order`` (real for complex ``g``), stored in each moment's dtype; computed
    as :func:`update_moment` is.

    Args:
      updates: the gradients ``g``, a pytree of arrays; a ``None`` leaf gives a ``None`` moment.
      moments: the moments ``m``, a pytree of ``updates``' structure (real; any float dtype: it is kept).
      decay: the decay rate, in ``[0, 1]`` (a number or a real scalar array, may be traced).
      order: the power of ``|g|`` (2: ``|g|^2`` computed as ``real(g conj(g))``).

    Returns:
      The new moments, a pytree of ``moments``' structure and leaf dtypes.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> m = tree.update_moment_per_elem_norm({"w": jnp.array([1.0, -2.0])}, {"w": jnp.zeros(2)}, 0.5, 1)
      >>> print(m["w"])
      [0.5 1. ]
    """

    complements = _Complements(decay)

    def one(g: Any, m: Any) -> Any:
        if g is None:
            return None
        g32 = up(g)
        mag = abs_sq(g32) if order == 2 else jnp.abs(g32) ** order  # real, also for complex g
        mag, m32, cdt = _pair(mag, m)
        return _ema_parts(complements(cdt), m32, mag).astype(jnp.asarray(m).dtype)

    return _map_moments(one, updates, moments)


def update_infinity_moment(updates: PyTree, moments: PyTree, decay: Scalar, eps: Scalar) -> PyTree:
    """``max(decay * m, |g| + eps)`` (Adamax's infinity norm), stored in each moment's dtype; ``decay * m`` is
    ``(1 - c) m`` with the exact complement ``c`` (see :func:`ema`).

    Args:
      updates: the gradients ``g``, a pytree of arrays; a ``None`` leaf gives a ``None`` moment.
      moments: the moments ``m``, a pytree of ``updates``' structure (any float dtype: it is kept).
      decay: the decay rate, in ``[0, 1]`` (a number or a real scalar array, may be traced).
      eps: added to ``|g|``, ``>= 0``.

    Returns:
      The new moments, a pytree of ``moments``' structure and leaf dtypes.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> m = tree.update_infinity_moment({"w": jnp.array([1.0, -2.0])}, {"w": jnp.array([4.0, 0.0])}, 0.5, 0.0)
      >>> print(m["w"])  # max(0.5 m, |g|)
      [2. 2.]
    """

    complements = _Complements(decay)

    def one(g: Any, m: Any) -> Any:
        if g is None:
            return None
        g32, m32, cdt = _pair(g, m)
        parts = complements(cdt)
        decayed = like(parts[1], m32) * m32
        r_m = _scaled_decay(parts, m32)
        decayed = decayed if r_m is None else decayed + r_m
        return jnp.maximum(decayed, jnp.abs(g32) + hyper(eps, cdt)).astype(jnp.asarray(m).dtype)

    return _map_moments(one, updates, moments)


def bias_correction(moment: PyTree, decay: Scalar, count: ArrayLike) -> PyTree:
    """``m / (1 - decay**count)`` in compute dtype (Kingma & Ba 2015, Algorithm 1), the factor from :func:`debias`.

    Args:
      moment: a zero-initialised moving average, a pytree of arrays.
      decay: its decay rate, in ``[0, 1]`` (a number or a real scalar array, may be traced).
      count: the number of averaged terms ``k >= 1`` (an integer or integer array; ``k = 0`` divides by 0).

    Returns:
      A pytree of ``moment``'s structure in the compute dtypes (float32 or wider; the block casts it back).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.bias_correction({"w": jnp.array([0.75, 1.5])}, 0.5, 2)["w"])  # divided by 1 - 0.5^2
      [1. 2.]
    """

    # The scalar factor is computed once per compute dtype, not once per leaf: the same numbers, and a tree of
    # many leaves traces (and gives XLA) one factor instead of one per leaf.
    corrections: dict[Any, jax.Array] = {}

    def one(m: Any) -> Any:
        m = up(m)
        rt = _real(m.dtype)
        if rt not in corrections:
            corrections[rt] = debias(decay, count, rt)
        return m / like(corrections[rt], m)

    return jax.tree.map(one, moment)


# --- one leaf's precision: the vocabulary every block computes with ------------------------------------


class Leaf:
    """The precision of one update leaf ``g``: the dtypes a block computes in and how values get there.

    Every block of core and contrib computes a leaf in its *compute dtype* (the leaf's dtype promoted to at least
    float32; complex stays complex), takes hyperparameters in the *real* compute dtype, and returns the output in
    the leaf's own dtype; state leaves are stored back in their own dtype. ``Leaf`` names those steps so that a
    block's update reads as its formula::

        x = tree.Leaf(g)
        m = x.ema(b1, mu, g)                       # b1 mu + (1 - b1) g, in the compute dtype
        v = x.ema_real(b2, nu, x.abs_sq(g))        # the second moment, real also for complex g
        u = x.cast(m / x.debias(b1, count)) / x.cast(jnp.sqrt(v / x.debias(b2, count)) + x.hyper(eps))
        return x.out(u), x.store(m, mu), x.store(v, nu)

    Args:
      g: the update leaf (an array, or anything ``jnp.result_type`` accepts: a dtype, a number).
      shared: ``None`` (default), or a dict shared by all the leaves of one update (see ``shared`` below).

    Attributes:
      dtype: the leaf's dtype (the output's).
      compute_dtype: ``compute_dtype(dtype)`` (complex for complex leaves).
      real_dtype: the real dtype of ``compute_dtype`` (hyperparameters, second moments, norms).
      shared: ``None``, or a dict that one update shares among all its leaves: per-step scalars (bias corrections,
        decay complements) are then computed once per update instead of once per leaf.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> x = tree.Leaf(jnp.ones(2, jnp.bfloat16))
      >>> print(x.compute_dtype, x.real_dtype, x.hyper(0.999).dtype)
      float32 float32 float32
    """

    __slots__ = ("compute_dtype", "dtype", "real_dtype", "shared")

    def __init__(self, g: ArrayLike | DTypeLike, shared: dict[Any, Any] | None = None):
        self.dtype = np.dtype(jnp.result_type(g))
        self.compute_dtype = compute_dtype(self.dtype)
        self.real_dtype = _real(self.compute_dtype)
        self.shared = shared

    def like(self, a: Any) -> Leaf:
        """The ``Leaf`` of another array (or dtype) ``a``, sharing this one's per-update values."""
        return Leaf(a, self.shared)

    def _memo(self, key: tuple[Any, ...], make: Callable[[], _T]) -> _T:
        """``make()``, computed once per update for all the leaves sharing ``shared`` (a block's per-step scalars:
        bias corrections, complements). One traced value serves every leaf, as one written by hand would: XLA
        then compiles the same program (and rounds the same way) as a block that computes it once."""
        if self.shared is None:
            return make()
        if key not in self.shared:
            self.shared[key] = make()
        return cast(_T, self.shared[key])

    def hyper(self, value: Any) -> jax.Array:
        """A real scalar hyperparameter in the real compute dtype."""
        return hyper(value, self.real_dtype)

    def cast(self, x: Any) -> jax.Array:
        """``x`` (an array or a real scalar) in the compute dtype, complex for complex leaves."""
        return jnp.asarray(x).astype(self.compute_dtype)

    def as_real(self, x: Any) -> jax.Array:
        """The real part of ``x`` in the real compute dtype (second-moment state is real-valued)."""
        x = jnp.asarray(x)
        return (jnp.real(x) if jnp.iscomplexobj(x) else x).astype(self.real_dtype)

    def abs_sq(self, x: Any) -> jax.Array:
        """``|x|^2`` in the real compute dtype."""
        return self.as_real(abs_sq(self.cast(x)))

    def ema(self, decay: Any, old: Any, new: Any) -> jax.Array:
        """``decay old + (1 - decay) new`` in the compute dtype (complex kept), by :func:`ema`."""
        old = self.cast(old)
        parts = self._memo(("decay", _value_key(decay), old.dtype), lambda: decay_parts(decay, old))
        return _ema_parts(parts, old, self.cast(new))

    def ema_real(self, decay: Any, old: Any, new: Any) -> jax.Array:
        """:meth:`ema` of real-valued (second-moment) quantities, in the real compute dtype."""
        old = self.as_real(old)
        parts = self._memo(("decay", _value_key(decay), old.dtype), lambda: decay_parts(decay, old))
        return _ema_parts(parts, old, self.as_real(new))

    def debias(self, decay: Any, count: Any) -> jax.Array:
        """The bias correction ``1 - decay^count`` (:func:`debias`) in the real compute dtype."""
        key = ("debias", _value_key(decay), _value_key(count), self.real_dtype)
        return self._memo(key, lambda: debias(decay, count, self.real_dtype))

    def complement(self, decay: Any) -> jax.Array:
        """``1 - decay`` formed before rounding (:func:`complement`), in the real compute dtype."""
        key = ("complement", _value_key(decay), self.real_dtype)
        return self._memo(key, lambda: complement(decay, self.real_dtype))

    def out(self, x: Any) -> jax.Array:
        """``x`` in the leaf's own dtype (a block's output)."""
        return jnp.asarray(x).astype(self.dtype)

    @staticmethod
    def store(x: Any, state: Any) -> jax.Array:
        """``x`` in the dtype of the state leaf ``state`` it replaces."""
        return jnp.asarray(x).astype(jnp.result_type(state))


def _value_key(v: Any) -> Any:
    """A key for a hyperparameter or a count within one update: numbers by value, arrays by identity."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return ("number", float(v))
    return ("object", id(v))


def wider(state: ArrayLike, g: ArrayLike | DTypeLike) -> jax.Array:
    """A state leaf in the wider of its own and ``g``'s compute dtype (kept real if it is real, complex if it
    is complex): a bfloat16 or float32 state beside float64 gradients is updated in float64, unrounded.

    Args:
      state: a state leaf (a moment, a trace).
      g: the matching update leaf (or its dtype).

    Returns:
      ``state`` cast to float32 or float64 (complex64 or complex128 for a complex state), whichever is as wide
      as the wider of the two compute dtypes.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.wider(jnp.ones(2, jnp.bfloat16), jnp.ones(2, jnp.float32)).dtype)
      float32
    """
    state = jnp.asarray(state)
    ds, dg = compute_dtype(state.dtype), compute_dtype(jnp.result_type(g))
    width = builtins.max(ds.itemsize // (2 if ds.kind == "c" else 1), dg.itemsize // (2 if dg.kind == "c" else 1))
    if ds.kind == "c":
        return state.astype(np.complex128 if width >= 8 else np.complex64)
    return state.astype(np.float64 if width >= 8 else np.float32)


def map_split(fn: Callable[..., tuple[Any, ...]], n: int, updates: PyTree, *trees: PyTree) -> tuple[PyTree, ...]:
    """``fn`` leaf by leaf over ``updates`` and trees of the same structure, returning ``n`` values per leaf,
    as ``n`` trees shaped like ``updates`` (a block's output and its new state leaves).

    Args:
      fn: ``fn(g, *leaves) -> (v_1, ..., v_n)``, called once per leaf of ``updates``.
      n: the number of values ``fn`` returns, ``>= 1``.
      updates: the pytree whose structure leads (the update).
      *trees: further pytrees of ``updates``' structure (state parts) whose leaves follow ``g``.

    Returns:
      A tuple of ``n`` pytrees shaped like ``updates``: the first values, the second values, ...

    Example:
      >>> from gradtx import tree
      >>> double, half = tree.map_split(lambda g: (2 * g, g / 2), 2, {"a": 1.0})
      >>> print(double, half)
      {'a': 2.0} {'a': 0.5}
    """
    out = jax.tree.map(fn, updates, *trees)
    return tuple(jax.tree.map(lambda _, o, i=i: o[i], updates, out) for i in range(n))
