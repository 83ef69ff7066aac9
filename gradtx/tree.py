"""Pytree arithmetic shared by the blocks: sums, norms, moments, bias correction, casts.

Precision policy: every function that mixes a hyperparameter with an array computes in
``compute_dtype(array.dtype)``, which is the array's dtype promoted to at least float32 (complex stays
complex). Hyperparameters are therefore never rounded to bfloat16 (``0.999`` would become ``1.0``).
Functions that produce *state* (``update_moment`` and friends) cast the result back to the dtype the state
is stored in; functions that produce intermediates (``bias_correction``) return the compute dtype, and the
block casts its final output to the dtype of the updates it received.

Decay rates: :func:`complement` forms ``1 - decay`` before the cast (``0.001`` for ``decay = 0.999``, not
``1 - float32(0.999) = 0.00099998713``), :func:`ema` applies the decay ``1 - c`` from that complement, and
:func:`debias` is the one bias correction, ``1 - decay^k = -expm1(k log1p(-c))`` from the same complement: the
weights of an average sum to exactly its correction. Every block of core and contrib uses these three.

``None`` leaves are empty subtrees and are skipped everywhere.
"""

from __future__ import annotations

import builtins
import dataclasses
import fractions
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx.base import PyTree

__all__ = [
    "NamedTupleKey",
    "ParamsMarker",
    "abs_sq",
    "add",
    "add_scale",
    "allclose",
    "batch_shape",
    "bias_correction",
    "cast",
    "cast_like",
    "clip",
    "compute_dtype",
    "conj",
    "div",
    "dtype",
    "full_like",
    "get",
    "get_all_with_path",
    "global_norm",
    "hyper",
    "map_params",
    "max",
    "min",
    "mul",
    "norm",
    "ones_like",
    "random_like",
    "real",
    "scale",
    "set",
    "size",
    "split_key_like",
    "sub",
    "sum",
    "unwrap_random_key_data",
    "unzip2",
    "up",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    "vdot",
    "where",
    "zeros_like",
]


def _map(fn: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree:
    return jax.tree.map(fn, tree, *rest)


def compute_dtype(dtype: Any) -> np.dtype:
    """The dtype arithmetic runs in: ``dtype`` promoted to at least float32 (complex kept)."""
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return dtype if dtype.itemsize >= 8 else np.dtype(np.complex64)
    if jnp.issubdtype(dtype, jnp.floating):
        return dtype if dtype.itemsize >= 4 else np.dtype(np.float32)
    return np.dtype(np.float32)


def _real(dtype: np.dtype) -> np.dtype:
    return np.dtype(jnp.finfo(dtype).dtype)


def widest_real_dtype(tree: PyTree) -> np.dtype:
    """The widest real floating dtype among the leaves of ``tree`` (complex: its real part), at least float32
    (the dtype of scalar statistics and hyperparameters kept beside parameters of mixed dtypes)."""
    dt = np.dtype(np.float32)
    for leaf in jax.tree.leaves(tree):
        d = getattr(leaf, "dtype", None)
        if d is None:
            continue
        d = np.dtype(d)
        if jnp.issubdtype(d, jnp.complexfloating):
            d = np.dtype(jnp.finfo(d).dtype)
        if jnp.issubdtype(d, jnp.floating) and d.itemsize > dt.itemsize:
            dt = d
    return dt


def hyper(value: Any, like: Any) -> jax.Array:
    """A scalar hyperparameter as a real array of the compute dtype of ``like`` (an array or dtype)."""
    dt = like.dtype if hasattr(like, "dtype") else like
    return jnp.asarray(value, dtype=_real(compute_dtype(dt)))


def like(a: Any, x: jax.Array) -> jax.Array:
    """A real array ``a`` in the dtype of ``x`` (complex when ``x`` is): strict promotion multiplies only equal
    dtypes, and a real factor times a complex leaf is the one mixed product the blocks need."""
    return jnp.asarray(a).astype(jnp.asarray(x).dtype)


def up(x: jax.Array) -> jax.Array:
    """``x`` in its compute dtype (a no-op for float32 and wider)."""
    x = jnp.asarray(x)
    return x.astype(compute_dtype(x.dtype))


def abs_sq(x: jax.Array) -> jax.Array:
    """``|x|**2`` as a real array (``x * conj(x)`` for complex ``x``)."""
    x = jnp.asarray(x)
    if jnp.iscomplexobj(x):
        return jnp.real(x * jnp.conj(x))
    return x * x


# --- elementwise arithmetic -----------------------------------------------------------------------


def add(*trees: PyTree) -> PyTree:
    """Leafwise sum of any number of trees of the same structure."""
    return _map(lambda *xs: builtins.sum(xs[1:], xs[0]), *trees)


def sub(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``a - b``."""
    return _map(lambda x, y: x - y, a, b)


def mul(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``a * b``."""
    return _map(lambda x, y: x * y, a, b)


def div(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``a / b``."""
    return _map(lambda x, y: x / y, a, b)


def scale(s: Any, tree: PyTree) -> PyTree:
    """``s * tree`` computed in each leaf's compute dtype and cast back to the leaf's dtype."""
    return _map(lambda x: (hyper(s, x) * up(x)).astype(jnp.asarray(x).dtype), tree)


def add_scale(a: PyTree, s: Any, b: PyTree) -> PyTree:
    """``a + s * b`` leafwise, in compute dtype, cast back to the dtype of ``a`` (to a float dtype when ``a`` is
    an integer or a Python number: ``add_scale(3, 0.1, 2) == 3.2``, as in Optax). A ``None`` leaf of ``a`` stays
    ``None``."""

    def one(x: Any, y: Any) -> Any:
        if x is None:
            return None
        x, y = jnp.asarray(x), jnp.asarray(y)
        out = x.dtype if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.promote_types(x.dtype, jnp.float32)
        x = x.astype(out)
        return (up(x) + hyper(s, x) * up(y.astype(jnp.promote_types(y.dtype, out)))).astype(out)

    return jax.tree.map(one, a, b, is_leaf=lambda x: x is None)


def unzip2(outer: PyTree, pairs: PyTree) -> tuple[PyTree, PyTree]:
    """Split a tree of pairs (made by mapping a two-output function over ``outer``) into two trees."""
    first = jax.tree.map(lambda _, p: p[0], outer, pairs)
    second = jax.tree.map(lambda _, p: p[1], outer, pairs)
    return first, second


def where(cond: Any, a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``jnp.where(cond, a, b)`` with a scalar condition."""
    return _map(lambda x, y: jnp.where(cond, x, y), a, b)


# --- construction and casts -------------------------------------------------------------------------


def zeros_like(tree: PyTree, dtype: Any = None) -> PyTree:
    """Zeros shaped like each leaf (``dtype`` overrides the leaf dtype when given).

    Each leaf is built *from* the leaf (``jnp.zeros_like``), not from its shape, so it inherits the leaf's
    sharding: eagerly, and under ``jit`` for meshes with explicit axes (DESIGN.md section 7). This also holds
    for :func:`ones_like` and :func:`full_like`. Abstract leaves (``jax.eval_shape``) work too.
    """
    return _map(lambda x: jnp.zeros_like(x, dtype=dtype or jnp.result_type(x)), tree)


def ones_like(tree: PyTree, dtype: Any = None) -> PyTree:
    """Ones shaped like each leaf (with the leaf's sharding, see :func:`zeros_like`)."""
    return _map(lambda x: jnp.ones_like(x, dtype=dtype or jnp.result_type(x)), tree)


def full_like(tree: PyTree, fill_value: Any, dtype: Any = None) -> PyTree:
    """``fill_value`` shaped like each leaf (with the leaf's sharding, see :func:`zeros_like`)."""
    return _map(lambda x: jnp.full_like(x, fill_value, dtype=dtype or jnp.result_type(x)), tree)


def cast(tree: PyTree, dtype: Any) -> PyTree:
    """Cast every leaf to ``dtype``; ``dtype=None`` leaves the tree unchanged."""
    if dtype is None:
        return tree
    return _map(lambda x: jnp.asarray(x).astype(dtype), tree)


def cast_like(tree: PyTree, other: PyTree) -> PyTree:
    """Cast each leaf of ``tree`` to the dtype of the matching leaf of ``other``."""
    return _map(lambda x, o: jnp.asarray(x).astype(jnp.result_type(o)), tree, other)


def dtype(tree: PyTree, mixed_dtype_handler: str | None = None) -> Any:
    """The dtype of the leaves: their common dtype (``ValueError`` if mixed, unless ``mixed_dtype_handler``
    is ``'promote'``, ``'highest'`` or ``'lowest'``); JAX's default float for an empty tree."""
    dtypes = list(dict.fromkeys(np.dtype(jnp.result_type(x)) for x in jax.tree.leaves(tree)))
    if not dtypes:
        return np.dtype(jnp.result_type(float))
    if len(dtypes) == 1:
        return dtypes[0]
    if mixed_dtype_handler is None:
        raise ValueError(f"tree.dtype(mixed_dtype_handler=None): the leaves have several dtypes {dtypes}")
    if mixed_dtype_handler == "promote":
        return np.dtype(jnp.result_type(*dtypes))
    if mixed_dtype_handler in ("highest", "lowest"):
        best = dtypes[0]
        for d in dtypes[1:]:
            promoted = np.dtype(jnp.promote_types(best, d))
            if promoted not in (best, d):
                raise ValueError(f"tree.dtype(mixed_dtype_handler={mixed_dtype_handler!r}): {best} and {d} "
                                 "are not ordered by promotion")
            if mixed_dtype_handler == "highest":
                best = promoted
            elif promoted == best:  # d promotes to best: d is the lower one
                best = d
        return best
    raise ValueError(f"tree.dtype(mixed_dtype_handler={mixed_dtype_handler!r}): mixed_dtype_handler must be one "
                     "of None, 'promote', 'highest', 'lowest'")


# --- reductions -------------------------------------------------------------------------------------


def vdot(a: PyTree, b: PyTree) -> jax.Array:
    """Inner product of two trees, ``sum_i conj(a_i) . b_i``."""
    parts = jax.tree.leaves(_map(lambda x, y: jnp.vdot(x, y), a, b))
    total: jax.Array = parts[0] if parts else jnp.zeros([], jnp.float32)
    for p in parts[1:]:
        total = total + p
    return total


def sum(tree: PyTree, associative_reduction: bool = False) -> jax.Array:  # noqa: A001 - Optax's tree.sum
    """Sum of every element of every leaf (``associative_reduction`` is accepted for Optax parity)."""
    del associative_reduction
    parts = [jnp.sum(x) for x in jax.tree.leaves(tree)]
    total: jax.Array = parts[0] if parts else jnp.zeros([], jnp.float32)
    for p in parts[1:]:
        total = total + p
    return total


def norm(tree: PyTree, ord: Any = None, squared: bool = False) -> jax.Array:  # noqa: A002
    """The norm of a tree seen as one flat vector: ``ord`` in {1, 2, inf}; sums accumulate in float32+."""
    leaves = [up(x) for x in jax.tree.leaves(tree)]
    if not leaves:
        return jnp.zeros([], jnp.float32)
    if ord in (2, "fro", None):
        sq = [jnp.sum(abs_sq(x)) for x in leaves]
        total = sq[0]
        for s in sq[1:]:
            total = total + s
        return total if squared else jnp.sqrt(total)
    if ord == 1:
        out = [jnp.sum(jnp.abs(x)) for x in leaves]
        total = out[0]
        for s in out[1:]:
            total = total + s
        return total**2 if squared else total
    if ord in (np.inf, "inf"):
        total = jnp.max(jnp.stack([jnp.max(jnp.abs(x), initial=0.0) for x in leaves]))
        return total**2 if squared else total
    raise ValueError(f"tree.norm(ord={ord!r}): ord must be one of 1, 2, inf")


def global_norm(updates: PyTree) -> jax.Array:
    """The l2 norm of all leaves together (the norm used by ``clip_by_global_norm``)."""
    return norm(updates)


# --- moments ------------------------------------------------------------------------------------------


def _pair(g: Any, m: Any) -> tuple[jax.Array, jax.Array, np.dtype]:
    """``g`` and ``m`` in one compute dtype (the wider of theirs), without implicit promotion."""
    g, m = jnp.asarray(g), jnp.asarray(m)
    dg, dm = compute_dtype(g.dtype), compute_dtype(m.dtype)
    cdt = dg if (dg.itemsize, dg.kind == "c") > (dm.itemsize, dm.kind == "c") else dm
    if dg.kind == "c" and cdt.kind != "c":
        cdt = np.dtype(np.complex128 if cdt.itemsize >= 8 else np.complex64)
    return g.astype(cdt), m.astype(cdt), cdt


def complement(decay: Any, like: Any) -> jax.Array:
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


def debias(decay: Any, count: Any, like: Any) -> jax.Array:
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


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def decay_parts(decay: Any, like: Any) -> tuple[jax.Array, jax.Array, jax.Array | None]:
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


def ema(decay: Any, old: jax.Array, new: jax.Array) -> jax.Array:
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


def update_moment(updates: PyTree, moments: PyTree, decay: Any, order: int) -> PyTree:
    """``decay * m + (1 - decay) * g**order``, in compute dtype, stored in each moment's dtype.

    Computed as :func:`ema` from the exact complement ``1 - decay`` (see :func:`complement`), so that
    :func:`bias_correction` divides by exactly the sum of the weights.
    """

    complements = _Complements(decay)

    def one(g: Any, m: Any) -> Any:
        if g is None:
            return None
        g32, m32, cdt = _pair(g, m)
        return _ema_parts(complements(cdt), m32, g32**order).astype(jnp.asarray(m).dtype)

    return _map_moments(one, updates, moments)


def update_moment_per_elem_norm(updates: PyTree, moments: PyTree, decay: Any, order: int) -> PyTree:
    """``decay * m + (1 - decay) * |g|**order`` (real for complex ``g``), stored in each moment's dtype; computed
    as :func:`update_moment` is."""

    complements = _Complements(decay)

    def one(g: Any, m: Any) -> Any:
        if g is None:
            return None
        g32 = up(g)
        mag = abs_sq(g32) if order == 2 else jnp.abs(g32) ** order  # real, also for complex g
        mag, m32, cdt = _pair(mag, m)
        return _ema_parts(complements(cdt), m32, mag).astype(jnp.asarray(m).dtype)

    return _map_moments(one, updates, moments)


def update_infinity_moment(updates: PyTree, moments: PyTree, decay: Any, eps: Any) -> PyTree:
    """``max(decay * m, |g| + eps)`` (Adamax's infinity norm), stored in each moment's dtype; ``decay * m`` is
    ``(1 - c) m`` with the exact complement ``c`` (see :func:`ema`)."""

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


def bias_correction(moment: PyTree, decay: Any, count: Any) -> PyTree:
    """``m / (1 - decay**count)`` in compute dtype (Kingma & Ba 2015, Algorithm 1), the factor from :func:`debias`."""

    # The scalar factor is computed once per compute dtype, not once per leaf: the same numbers, and a tree of
    # many leaves traces (and gives XLA) one factor instead of one per leaf.
    corrections: dict[Any, jax.Array] = {}

    def one(m: Any) -> Any:
        m = up(m)
        rt = _real(m.dtype)
        if rt not in corrections:
            corrections[rt] = debias(decay, count, rt)
        return m / like(corrections[rt], m)

    return _map(one, moment)


# --- access and comparison ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """A path entry naming a NamedTuple field and the NamedTuple's class (``ScaleByAdamState.nu``)."""

    tuple_name: str
    name: str

    def __str__(self) -> str:
        return f"{self.tuple_name}.{self.name}"


KeyPath = tuple[Any, ...]


def _children(node: Any) -> list[tuple[Any, str | None, Any]] | None:
    """``[(path entry, matchable name, child)]`` for a container node, ``None`` for a leaf."""
    fields = getattr(node, "_fields", None)
    if fields is not None and isinstance(node, tuple):
        return [(NamedTupleKey(type(node).__name__, f), f, v) for f, v in zip(fields, node)]
    if isinstance(node, dict):
        return [(jax.tree_util.DictKey(k), k, v) for k, v in node.items()]
    if isinstance(node, (list, tuple)):
        return [(jax.tree_util.SequenceKey(i), None, v) for i, v in enumerate(node)]
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return [(jax.tree_util.GetAttrKey(f.name), f.name, getattr(node, f.name)) for f in dataclasses.fields(node)]
    return None


def get_all_with_path(
    tree: PyTree, key: Any, filtering: Callable[[KeyPath, Any], bool] | None = None
) -> list[tuple[KeyPath, Any]]:
    """Every ``(path, value)`` whose dict key, NamedTuple field or NamedTuple class name is ``key``.

    Paths are tuples of ``DictKey``, ``SequenceKey``, ``GetAttrKey`` and :class:`NamedTupleKey` entries;
    ``filtering(path, value)`` keeps a subset.
    """
    found: list[tuple[KeyPath, Any]] = []

    def keep(path: KeyPath, value: Any) -> bool:
        return filtering is None or filtering(path, value)

    def is_named(node: Any) -> bool:
        return type(node).__name__ == key and getattr(node, "_fields", None) is not None

    # Breadth first, as Optax: shallower matches come first.
    if is_named(tree) and keep((), tree):
        found.append(((), tree))
    queue: list[tuple[Any, KeyPath]] = [(tree, ())]
    while queue:
        node, path = queue.pop(0)
        for entry, name, child in _children(node) or []:
            child_path = (*path, entry)
            if name == key and keep(child_path, child):
                found.append((child_path, child))
            if is_named(child) and keep(child_path, child):
                found.append((child_path, child))
            queue.append((child, child_path))
    return found


def get(tree: PyTree, key: Any, default: Any = None, filtering: Callable[[KeyPath, Any], bool] | None = None) -> Any:
    """The value whose key, field or NamedTuple name is ``key`` (``default`` if none; ``KeyError`` if several).

    ``tree.get(adam_state, "nu")`` finds Adam's second moment inside any chain or wrapper.
    """
    found = get_all_with_path(tree, key, filtering)
    if not found:
        return default
    if len(found) > 1:
        paths = ", ".join(jax.tree_util.keystr(tuple(_as_jax_key(e) for e in p)) for p, _ in found)
        raise KeyError(f"tree.get: {len(found)} values named {key!r} ({paths}); pass filtering= to pick one")
    return found[0][1]


def _as_jax_key(entry: Any) -> Any:
    return jax.tree_util.GetAttrKey(entry.name) if isinstance(entry, NamedTupleKey) else entry


def set(tree: PyTree, filtering: Callable[[KeyPath, Any], bool] | None = None, /, **kwargs: Any) -> PyTree:  # noqa: A001
    """A copy of ``tree`` with the values of the named keys/fields replaced (``KeyError`` if one is absent).

    A name may also be a NamedTuple's class name, which replaces that whole state
    (``tree.set(state, AddNoiseState=new)``). A value given as a callable is applied to the old value
    (``tree.set(state, count=lambda c: c + 1)``).
    """
    missing = [k for k in kwargs if not get_all_with_path(tree, k, filtering)]
    if missing:
        raise KeyError(f"tree.set: no value named {', '.join(repr(m) for m in missing)} in the tree")

    def new_value(name: Any, path: KeyPath, old: Any) -> Any:
        if name in kwargs and (filtering is None or filtering(path, old)):
            v = kwargs[name]
            return v(old) if callable(v) else v
        return old

    def rebuild(node: Any, path: KeyPath) -> Any:
        named = type(node).__name__
        is_state = getattr(node, "_fields", None) is not None and isinstance(node, tuple)
        if is_state and named in kwargs and (filtering is None or filtering(path, node)):
            v = kwargs[named]  # a whole state replaced by its NamedTuple's name
            return v(node) if callable(v) else v
        kids = _children(node)
        if kids is None:
            return node
        values = [new_value(name, (*path, e), rebuild(child, (*path, e))) for e, name, child in kids]
        fields = getattr(node, "_fields", None)
        if fields is not None and isinstance(node, tuple):
            return type(node)(*values)
        if isinstance(node, dict):
            return type(node)(zip(node.keys(), values))
        if isinstance(node, (list, tuple)):
            return type(node)(values)
        return dataclasses.replace(node, **{e.name: v for (e, _, _), v in zip(kids, values)})

    return rebuild(tree, ())


def allclose(a: PyTree, b: PyTree, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
    """Whether two trees have the same structure and all leaves are close."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    return all(
        bool(np.allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, equal_nan=equal_nan))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


# --- more elementwise maps and reductions ----------------------------------------------------------------


def clip(tree: PyTree, min_value: Any = None, max_value: Any = None) -> PyTree:
    """Every leaf clipped to ``[min_value, max_value]`` (``None``: unbounded on that side)."""
    return _map(lambda x: jnp.clip(x, min_value, max_value), tree)


def conj(tree: PyTree) -> PyTree:
    """The complex conjugate of every leaf."""
    return _map(jnp.conj, tree)


def real(tree: PyTree) -> PyTree:
    """The real part of every leaf."""
    return _map(jnp.real, tree)


def max(tree: PyTree) -> jax.Array:  # noqa: A001
    """The largest element of all leaves (``-inf`` for an empty tree)."""
    leaves = [jnp.max(x) for x in jax.tree.leaves(tree) if jnp.size(x)]
    return jnp.max(jnp.stack(leaves)) if leaves else jnp.asarray(-jnp.inf)


def min(tree: PyTree) -> jax.Array:  # noqa: A001
    """The smallest element of all leaves (``inf`` for an empty tree)."""
    leaves = [jnp.min(x) for x in jax.tree.leaves(tree) if jnp.size(x)]
    return jnp.min(jnp.stack(leaves)) if leaves else jnp.asarray(jnp.inf)


def size(tree: PyTree) -> int:
    """The total number of elements of all leaves."""
    return int(builtins.sum(int(np.prod(jnp.shape(x))) for x in jax.tree.leaves(tree)))


def batch_shape(tree: PyTree, shape: tuple[int, ...] = ()) -> PyTree:
    """Abstract leaves (``ShapeDtypeStruct``) with leading batch dimensions ``shape`` added."""
    return _map(lambda x: jax.ShapeDtypeStruct(tuple(shape) + tuple(jnp.shape(x)), jnp.result_type(x)), tree)


def split_key_like(rng_key: jax.Array, target_tree: PyTree) -> PyTree:
    """One independent PRNG key per leaf of ``target_tree``, in the tree's structure."""
    treedef = jax.tree.structure(target_tree)
    keys = jax.random.split(rng_key, treedef.num_leaves)
    return jax.tree.unflatten(treedef, list(keys))


def random_like(
    rng_key: jax.Array, target_tree: PyTree, sampler: Callable[..., jax.Array] = jax.random.normal, dtype: Any = None
) -> PyTree:
    """Random leaves shaped like ``target_tree`` from ``sampler(key, shape, dtype)`` (a key per leaf)."""
    keys = split_key_like(rng_key, target_tree)
    return jax.tree.map(
        lambda k, x: sampler(k, jnp.shape(x), dtype or jnp.result_type(x)), keys, target_tree
    )


def unwrap_random_key_data(input_tree: PyTree) -> PyTree:
    """Typed PRNG keys replaced by their raw data (so trees with keys can be compared numerically)."""

    def unwrap(x: Any) -> Any:
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.key_data(x)
        return x

    return _map(unwrap, input_tree)


class ParamsMarker:
    """Stands for "the parameter tree" when ``init`` is called by :func:`map_params` (combinators that
    restructure the params, like ``masked``, pass it through unchanged)."""


jax.tree_util.register_pytree_node(ParamsMarker, lambda _: ((), None), lambda _, __: ParamsMarker())


def map_params(
    initable: Any,
    f: Callable[..., Any],
    state: PyTree,
    /,
    *rest: Any,
    transform_non_params: Callable[..., Any] | None = None,
    is_leaf: Callable[[Any], bool] | None = None,
) -> PyTree:
    """Apply ``f`` to every parameter-shaped tree in an optimizer ``state`` (moments, traces), leaf by leaf.

    ``initable`` is the transformation (or its ``init``) that made the state: calling it on a marker tells
    which parts of the state mirror the parameters. Other leaves pass through ``transform_non_params``
    if given (e.g. to shard counters differently).
    """
    init = initable.init if hasattr(initable, "init") else initable
    marked = init(ParamsMarker())

    def one(marker: Any, value: Any) -> Any:
        if isinstance(marker, ParamsMarker):
            return jax.tree.map(f, value, *rest, is_leaf=is_leaf)
        return transform_non_params(value) if transform_non_params is not None else value

    return jax.tree.map(one, marked, state, is_leaf=lambda v: isinstance(v, ParamsMarker))
