"""Pytree arithmetic, construction, casts, reductions, access and random trees (Optax's ``optax.tree``).

Every function works leaf by leaf on pytrees (nested dicts, lists, tuples, NamedTuples, dataclasses of arrays)
and is also answered by :mod:`gradtx.tree` (``gradtx.tree.add is gradtx.tree.ops.add``) and, under Optax's
``tree_*`` names, by :mod:`gradtx.tree_utils`. Functions that mix a scalar with a leaf compute in the leaf's
compute dtype (float32 or wider, see :mod:`gradtx.tree.precision`); the l2 norms neither overflow nor
underflow. ``None`` leaves are empty subtrees.

Example:
  >>> import jax.numpy as jnp
  >>> from gradtx import tree
  >>> print(tree.add_scale({"w": jnp.array([1.0, 2.0])}, 0.5, {"w": jnp.array([2.0, 2.0])})["w"])
  [2. 3.]
"""

from __future__ import annotations

import builtins
import dataclasses
import typing
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from gradtx.base import PyTree, Scalar, TransformationLike
from gradtx.tree.precision import abs_sq, hyper, safe_sqrt, up

__all__ = [
    "KeyPath",
    "NamedTupleKey",
    "ParamsMarker",
    "add",
    "add_scale",
    "allclose",
    "batch_shape",
    "cast",
    "cast_like",
    "clip",
    "conj",
    "div",
    "dtype",
    "full_like",
    "get",
    "get_all_with_path",
    "global_norm",
    "l2_norm",
    "leaves_norm",
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
    "vdot",
    "where",
    "zeros_like",
]


def _map(fn: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree:
    return jax.tree.map(fn, tree, *rest)


# --- elementwise arithmetic -----------------------------------------------------------------------


def add(*trees: PyTree) -> PyTree:
    """Leafwise sum of any number of trees of the same structure: ``trees[0] + trees[1] + ...``.

    Args:
      *trees: one or more pytrees of arrays (or numbers) with one structure; leaves broadcast and promote as
        with ``+``.

    Returns:
      A pytree of that structure holding the sums.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.add({"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([3.0, 4.0])}, {"w": jnp.ones(2)})["w"])
      [5. 7.]
    """
    return _map(lambda *xs: builtins.sum(xs[1:], xs[0]), *trees)


def sub(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``a - b``.

    Args:
      a: a pytree of arrays.
      b: a pytree with the structure of ``a``.

    Returns:
      A pytree of the differences.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.sub([jnp.array([3.0, 5.0])], [jnp.array([1.0, 1.0])])[0])
      [2. 4.]
    """
    return _map(lambda x, y: x - y, a, b)


def mul(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise (elementwise) product ``a * b``.

    Args:
      a: a pytree of arrays.
      b: a pytree with the structure of ``a``.

    Returns:
      A pytree of the products.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.mul([jnp.array([2.0, 3.0])], [jnp.array([4.0, -1.0])])[0])
      [ 8. -3.]
    """
    return _map(lambda x, y: x * y, a, b)


def div(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise (elementwise) quotient ``a / b`` (``jnp`` semantics: ``x / 0`` is ``inf`` or NaN).

    Args:
      a: a pytree of arrays.
      b: a pytree with the structure of ``a``.

    Returns:
      A pytree of the quotients.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.div([jnp.array([1.0, 3.0])], [jnp.array([2.0, 4.0])])[0])
      [0.5  0.75]
    """
    return _map(lambda x, y: x / y, a, b)


def scale(s: Scalar, tree: PyTree) -> PyTree:
    """``s * tree`` computed in each leaf's compute dtype and cast back to the leaf's dtype.

    The scalar is not rounded to a low-precision leaf's dtype first: a bfloat16 leaf is multiplied in float32
    (``hyper(s, x) * up(x)``) and the product rounded once.

    Args:
      s: a real scalar (a number or a 0-d array, may be traced).
      tree: a pytree of arrays.

    Returns:
      A pytree of the structure and leaf dtypes of ``tree``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.scale(0.5, {"w": jnp.array([2.0, -4.0])})["w"])
      [ 1. -2.]
    """
    return _map(lambda x: (hyper(s, x) * up(x)).astype(jnp.asarray(x).dtype), tree)


def add_scale(a: PyTree, s: Scalar, b: PyTree) -> PyTree:
    """``a + s * b`` leafwise, in compute dtype, cast back to the dtype of ``a``.

    An integer leaf of ``a`` (or a Python number) gives a float result: ``add_scale(3, 0.1, 2) == 3.2``, as in
    Optax. A ``None`` leaf of ``a`` stays ``None``.

    Args:
      a: a pytree of arrays (or numbers).
      s: a real scalar (a number or a 0-d array, may be traced).
      b: a pytree with the structure of ``a``.

    Returns:
      A pytree of the structure of ``a``, each leaf in the dtype of ``a``'s leaf (a float dtype for integers).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.add_scale({"w": jnp.array([1.0, 2.0])}, 0.5, {"w": jnp.array([2.0, 2.0])})["w"])
      [2. 3.]
    """

    def one(x: Any, y: Any) -> Any:
        if x is None:
            return None
        x, y = jnp.asarray(x), jnp.asarray(y)
        out = x.dtype if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.promote_types(x.dtype, jnp.float32)
        x = x.astype(out)
        return (up(x) + hyper(s, x) * up(y.astype(jnp.promote_types(y.dtype, out)))).astype(out)

    return jax.tree.map(one, a, b, is_leaf=lambda x: x is None)


def unzip2(outer: PyTree, pairs: PyTree) -> tuple[PyTree, PyTree]:
    """Split a tree of pairs (made by mapping a two-output function over ``outer``) into two trees.

    Args:
      outer: the tree whose structure the pairs follow (the leaves are not read).
      pairs: ``outer``'s structure with a pair ``(first, second)`` at each leaf.

    Returns:
      ``(firsts, seconds)``: two trees of ``outer``'s structure.

    Example:
      >>> from gradtx import tree
      >>> print(tree.unzip2({"a": 0, "b": 0}, {"a": (1, 2), "b": (3, 4)}))
      ({'a': 1, 'b': 3}, {'a': 2, 'b': 4})
    """
    first = jax.tree.map(lambda _, p: p[0], outer, pairs)
    second = jax.tree.map(lambda _, p: p[1], outer, pairs)
    return first, second


def where(cond: ArrayLike, a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``jnp.where(cond, a, b)`` with a scalar condition: ``a`` where ``cond`` holds, else ``b``.

    Args:
      cond: a boolean scalar (may be traced: both trees are computed, one is selected).
      a: a pytree of arrays.
      b: a pytree with the structure of ``a``.

    Returns:
      A pytree of the selected leaves.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.where(jnp.array(False), [jnp.array([1.0])], [jnp.array([2.0])])[0])
      [2.]
    """
    return _map(lambda x, y: jnp.where(cond, x, y), a, b)


# --- construction and casts -------------------------------------------------------------------------


def zeros_like(tree: PyTree, dtype: DTypeLike | None = None) -> PyTree:
    """Zeros shaped like each leaf (``dtype`` overrides the leaf dtype when given).

    Each leaf is built *from* the leaf (``jnp.zeros_like``), not from its shape, so it inherits the leaf's
    sharding: eagerly, and under ``jit`` for meshes with explicit axes (DESIGN.md section 7). This also holds
    for :func:`ones_like` and :func:`full_like`. Abstract leaves (``jax.eval_shape``) work too.

    Args:
      tree: a pytree of arrays (or ``jax.ShapeDtypeStruct`` leaves).
      dtype: the dtype of every new leaf, or ``None`` (default) for each leaf's own dtype.

    Returns:
      A pytree of the structure of ``tree`` with zero arrays.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.zeros_like({"w": jnp.ones(2)}, jnp.int32)["w"])
      [0 0]
    """
    return _map(lambda x: jnp.zeros_like(x, dtype=dtype or jnp.result_type(x)), tree)


def ones_like(tree: PyTree, dtype: DTypeLike | None = None) -> PyTree:
    """Ones shaped like each leaf (with the leaf's sharding, see :func:`zeros_like`).

    Args:
      tree: a pytree of arrays (or ``jax.ShapeDtypeStruct`` leaves).
      dtype: the dtype of every new leaf, or ``None`` (default) for each leaf's own dtype.

    Returns:
      A pytree of the structure of ``tree`` with arrays of ones.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.ones_like({"w": jnp.zeros(3)})["w"])
      [1. 1. 1.]
    """
    return _map(lambda x: jnp.ones_like(x, dtype=dtype or jnp.result_type(x)), tree)


def full_like(tree: PyTree, fill_value: Scalar, dtype: DTypeLike | None = None) -> PyTree:
    """``fill_value`` shaped like each leaf (with the leaf's sharding, see :func:`zeros_like`).

    Args:
      tree: a pytree of arrays (or ``jax.ShapeDtypeStruct`` leaves).
      fill_value: the value of every element (a scalar, or an array broadcastable to each leaf).
      dtype: the dtype of every new leaf, or ``None`` (default) for each leaf's own dtype.

    Returns:
      A pytree of the structure of ``tree`` with filled arrays.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.full_like([jnp.zeros(2)], 0.5)[0])
      [0.5 0.5]
    """
    return _map(lambda x: jnp.full_like(x, fill_value, dtype=dtype or jnp.result_type(x)), tree)


def cast(tree: PyTree, dtype: DTypeLike | None) -> PyTree:
    """Cast every leaf to ``dtype``; ``dtype=None`` leaves the tree unchanged.

    Args:
      tree: a pytree of arrays (or numbers).
      dtype: the target dtype, or ``None`` to return ``tree`` itself.

    Returns:
      A pytree of the structure of ``tree`` with every leaf an array of ``dtype``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.cast({"w": jnp.array([1.5, 2.0])}, jnp.bfloat16)["w"].dtype)
      bfloat16
    """
    if dtype is None:
        return tree
    return _map(lambda x: jnp.asarray(x).astype(dtype), tree)


def cast_like(tree: PyTree, other: PyTree) -> PyTree:
    """Cast each leaf of ``tree`` to the dtype of the matching leaf of ``other``.

    Args:
      tree: a pytree of arrays.
      other: a pytree of ``tree``'s structure whose leaves give the dtypes.

    Returns:
      A pytree of the structure of ``tree``, leaves in ``other``'s dtypes.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.cast_like([jnp.array([1.5])], [jnp.zeros(1, jnp.bfloat16)])[0].dtype)
      bfloat16
    """
    return _map(lambda x, o: jnp.asarray(x).astype(jnp.result_type(o)), tree, other)


def dtype(tree: PyTree, mixed_dtype_handler: str | None = None) -> np.dtype:
    """The dtype of the leaves: their common dtype, or one chosen by ``mixed_dtype_handler`` when they differ.

    Args:
      tree: a pytree of arrays (or numbers).
      mixed_dtype_handler: what leaves of several dtypes give: ``None`` (default) raises; ``'promote'``: JAX's
        promotion of all of them (``jnp.result_type``); ``'highest'`` / ``'lowest'``: the highest / lowest of
        them in the promotion order (they must be ordered: bfloat16 and float16 are not).

    Returns:
      A NumPy dtype; JAX's default float (float32, float64 under x64) for a tree without leaves.

    Raises:
      ValueError: for leaves of several dtypes without a handler (``tree.dtype(mixed_dtype_handler=None): the
        leaves have several dtypes [...]``), for dtypes ``'highest'``/``'lowest'`` cannot order (``... bfloat16
        and float16 are not ordered by promotion``), or for another handler.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> mixed = {"a": jnp.ones(1, jnp.bfloat16), "b": jnp.ones(1, jnp.float32)}
      >>> print(tree.dtype(mixed, "highest"), tree.dtype(mixed, "lowest"))
      float32 bfloat16
    """
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
                raise ValueError(
                    f"tree.dtype(mixed_dtype_handler={mixed_dtype_handler!r}): {best} and {d} "
                    "are not ordered by promotion"
                )
            if mixed_dtype_handler == "highest":
                best = promoted
            elif promoted == best:  # d promotes to best: d is the lower one
                best = d
        return best
    raise ValueError(
        f"tree.dtype(mixed_dtype_handler={mixed_dtype_handler!r}): mixed_dtype_handler must be one "
        "of None, 'promote', 'highest', 'lowest'"
    )


# --- reductions -------------------------------------------------------------------------------------


def vdot(a: PyTree, b: PyTree) -> jax.Array:
    """Inner product of two trees seen as flat vectors, ``sum_i conj(a_i) . b_i`` (``jnp.vdot`` per leaf).

    Args:
      a: a pytree of arrays (conjugated when complex).
      b: a pytree with the structure of ``a``.

    Returns:
      A scalar array (float32 zero for trees without leaves).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> a = {"w": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)}
      >>> b = {"w": jnp.array([3.0, 4.0]), "b": jnp.array(1.0)}
      >>> print(tree.vdot(a, b))
      14.0
    """
    parts = jax.tree.leaves(_map(lambda x, y: jnp.vdot(x, y), a, b))
    total: jax.Array = parts[0] if parts else jnp.zeros([], jnp.float32)
    for p in parts[1:]:
        total = total + p
    return total


def sum(tree: PyTree, associative_reduction: bool = False) -> jax.Array:  # noqa: A001 - Optax's tree.sum
    """Sum of every element of every leaf: the leaves' sums added in leaf order.

    Args:
      tree: a pytree of arrays.
      associative_reduction: accepted for Optax parity and ignored (the sums are always added in leaf order).

    Returns:
      A scalar array (float32 zero for trees without leaves).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.sum({"w": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)}))
      6.0
    """
    del associative_reduction
    parts = [jnp.sum(x) for x in jax.tree.leaves(tree)]
    total: jax.Array = parts[0] if parts else jnp.zeros([], jnp.float32)
    for p in parts[1:]:
        total = total + p
    return total


def norm(tree: PyTree, ord: int | float | str | None = None, squared: bool = False) -> jax.Array:  # noqa: A002
    """The norm of a tree seen as one flat vector: ``ord`` in {1, 2, inf}; sums accumulate in float32+.

    The l2 norm (``ord`` 2, ``'fro'`` or ``None``) neither overflows nor underflows: a float32 gradient of
    ``1e20`` (whose square is ``inf``) has norm ``1e20`` and one of ``1e-25`` (whose square is 0) has norm
    ``1e-25`` (see :func:`l2_norm`). For ordinary magnitudes it is ``sqrt(sum |x|^2)`` bit for bit, and its
    derivative at a zero tree is 0 (not NaN).

    Args:
      tree: a pytree of arrays.
      ord: ``1``, ``2`` (also ``'fro'`` or ``None``, the default) or ``inf`` (also ``'inf'``).
      squared: return the square of the norm. Default False.

    Returns:
      A real scalar in the widest real compute dtype of the leaves (float32 for an empty tree).

    Raises:
      ValueError: for another ``ord`` (``tree.norm(ord=3): ord must be one of 1, 2, inf``).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> n = tree.norm({"a": jnp.array([3e20], jnp.float32), "b": jnp.array([4e20], jnp.float32)})
      >>> n.dtype, round(float(n) / 1e20, 6)
      (dtype('float32'), 5.0)
    """
    leaves = [up(x) for x in jax.tree.leaves(tree)]
    if not leaves:
        return jnp.zeros([], jnp.float32)
    if ord in (2, "fro", None):
        plains = [_plain_sum(x) for x in leaves]
        total = plains[0]
        for p in plains[1:]:
            dt = jnp.promote_types(total.dtype, p.dtype)
            total = total.astype(dt) + p.astype(dt)

        def rescaled(total: jax.Array) -> jax.Array:
            sums = [_square_sums(x) for x in leaves]
            bad, fallback = _combine(sums, total)
            if squared:  # the unused fallback may be inf (its sum scaled up): keep inf * 0 out of gradients
                fallback = jnp.where(bad, fallback, jnp.zeros_like(fallback))
                return jnp.where(bad, fallback * fallback, total)
            return jnp.where(bad, fallback, safe_sqrt(total))

        ordinary = (lambda total: total) if squared else safe_sqrt
        return _cond(_needs_rescale(total, *plains), rescaled, ordinary, total)
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
    """The l2 norm of all leaves together (the norm used by ``clip_by_global_norm``), without overflow or
    underflow (:func:`norm`).

    Args:
      updates: a pytree of arrays.

    Returns:
      A real scalar in the widest real compute dtype of the leaves.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> float(tree.global_norm([jnp.array([3.0]), jnp.array([4.0])]))
      5.0
    """
    return norm(updates)


# --- overflow- and underflow-safe l2 norms ------------------------------------------------------------------
#
# ``sum |x|^2`` overflows in float32 once |x| passes ~1.8e19 and loses everything below ~1e-19 (squares under
# the smallest normal number 1.2e-38 round to subnormals or 0). Every l2 norm of gradtx (global norms, per-leaf
# and unit-wise norms, rms, trust ratios, the monitors') computes the ordinary sum and, only when it is inf or
# below tiny / eps, two rescaled sums: of (x 2^-a)^2 and of (x 2^b)^2 with fixed powers of two (exact scalings),
# giving the norm 2^a sqrt(the first) or 2^-b sqrt(the second); otherwise it is the ordinary sqrt(sum), bit for
# bit. Fixed powers of two instead of the maximum |x| keep the rescaled computation one pass (the maximum would
# have to be known before the rescaled sum starts) with no rounding in the scaling. For
# float32 a = 96 and b = 94: (x 2^-96)^2 cannot overflow for finite x, and when the ordinary sum underflows
# every |x| < 2^-51, so (x 2^94)^2 < 2^86 and the smallest subnormal becomes a normal number. The rescaled sums
# are computed only when needed: a lax.cond on "some ordinary sum is inf or below tiny / eps" runs them (an
# ordinary step pays one scalar test; on a GPU the predicate is read back to choose the branch; under vmap both
# branches run and a select picks). The selection inside is a jnp.where whose unused branches have finite
# derivatives (safe_sqrt, x clipped before it is scaled up), so the norm's gradient is finite everywhere, 0 at 0.


class _Sums(NamedTuple):
    """``sum |x|^2`` over some axes three ways: as is, with ``x`` scaled by ``2^-a`` and by ``2^b``."""

    plain: jax.Array
    big: jax.Array
    small: jax.Array


def _exponents(dt: Any) -> tuple[int, int, float]:
    """``(a, b, threshold)`` of a real float dtype: the scalings ``2^-a``, ``2^b`` and the ordinary sum below
    which the rescaled one is used (``tiny / eps``: terms below it may have been rounded as subnormals)."""
    fi = jnp.finfo(dt)  # type: ignore[no-untyped-call]  # jnp.finfo is unannotated
    return 3 * int(fi.maxexp) // 4, 3 * -int(fi.minexp) // 4, float(fi.tiny) / float(fi.eps)


def _plain_sum(x: Any, axis: Any = None, keepdims: bool = False, mean: bool = False) -> jax.Array:
    """``sum(abs_sq(up(x)))`` (with ``mean``, the mean): the ordinary sum of squares, the fast path."""
    return (jnp.mean if mean else jnp.sum)(abs_sq(up(x)), axis=axis, keepdims=keepdims)


def _needs_rescale(*plains: jax.Array) -> jax.Array:
    """Whether any ordinary sum of squares overflowed or fell below ``tiny / eps`` (a boolean scalar: the
    predicate of the ``lax.cond`` that runs the rescaled computation only then)."""
    out = jnp.zeros([], jnp.bool_)
    for p in plains:
        _, _, threshold = _exponents(p.dtype)
        out = out | jnp.any(jnp.isinf(p) | (p < jnp.asarray(threshold, p.dtype)))
    return out


def _cond(pred: jax.Array, rescaled: Callable[[Any], jax.Array], ordinary: Callable[[Any], jax.Array],
          operand: Any) -> jax.Array:
    """``lax.cond(pred, rescaled, ordinary, operand)`` when traced; a Python branch on a concrete ``pred``
    (outside ``jit`` a ``lax.cond`` would trace and compile both branches at every call)."""
    if isinstance(pred, jax.core.Tracer):
        return typing.cast(jax.Array, jax.lax.cond(pred, rescaled, ordinary, operand))
    return rescaled(operand) if bool(pred) else ordinary(operand)


def _square_sums(x: Any, axis: Any = None, keepdims: bool = False, mean: bool = False) -> _Sums:
    """The :class:`_Sums` of one array in its real compute dtype (``plain`` is exactly ``sum(abs_sq(up(x)))``, or
    with ``mean`` ``mean(abs_sq(up(x)))``; the rescaled sums are sums either way)."""
    x = up(x)
    plain = _plain_sum(x, axis, keepdims, mean)
    rdt = plain.dtype
    a, b, _ = _exponents(rdt)
    # Behind a barrier: XLA's simplifier rewrites (x c)(x c) as (x x)(c c) for scalar x and constant c, which
    # is exactly the over/underflow this avoids (c c = 2^188 is inf in float32).
    down, scale_up = jax.lax.optimization_barrier(  # type: ignore[no-untyped-call]  # unannotated in JAX
        (jnp.asarray(2.0**-a, rdt), jnp.asarray(2.0**b, rdt)))
    maxexp = int(jnp.finfo(rdt).maxexp)  # type: ignore[no-untyped-call]  # jnp.finfo is unannotated
    limit = jnp.asarray(2.0 ** (maxexp - b - 1), rdt)  # keeps x 2^b finite (for gradients)
    parts = (jnp.real(x), jnp.imag(x)) if jnp.iscomplexobj(x) else (x,)
    bigs, smalls = [], []
    for p in parts:
        pb = p * down
        ps = jnp.clip(p, -limit, limit) * scale_up
        bigs.append(jnp.sum(pb * pb, axis=axis, keepdims=keepdims))
        smalls.append(jnp.sum(ps * ps, axis=axis, keepdims=keepdims))
    big, small = bigs[0], smalls[0]
    for sb, ss in zip(bigs[1:], smalls[1:]):
        big, small = big + sb, small + ss
    return _Sums(plain, big, small)


def _fallback(sums: _Sums, count: Any = None) -> tuple[jax.Array, jax.Array]:
    """``(rescale, norm)``: whether the ordinary ``plain`` sum over- or underflowed, and the norm from the
    rescaled sums (divided by ``count`` first, for a root mean square whose ``plain`` is already a mean)."""
    plain, big, small = sums
    dt = plain.dtype
    a, b, threshold = _exponents(dt)
    if count is not None:
        n = jnp.asarray(count, dt)
        big, small = big / n, small / n
    over = jnp.isinf(plain)
    rescale = over | (plain < jnp.asarray(threshold, dt))
    from_big = jnp.asarray(2.0**a, dt) * safe_sqrt(big)
    from_small = jnp.asarray(2.0**-b, dt) * safe_sqrt(small)
    return rescale, jnp.where(over, from_big, from_small)


def _combine(sums: list[_Sums], total: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(rescale, norm)`` for several arrays' :class:`_Sums` (same shapes) whose ordinary sum is ``total``.

    Arrays of one real dtype add their sums; arrays of several (float32 beside float64) give one norm per dtype,
    combined as the safe l2 norm of those norms in the widest dtype.
    """
    groups: dict[Any, _Sums] = {}
    for s in sums:
        key = np.dtype(s.plain.dtype)
        g = groups.get(key)
        groups[key] = s if g is None else _Sums(g.plain + s.plain, g.big + s.big, g.small + s.small)
    if len(groups) == 1:
        (only,) = groups.values()
        return _fallback(_Sums(total, only.big, only.small))
    dt = total.dtype
    norms, rescale = [], jnp.zeros(jnp.shape(total), jnp.bool_)
    for g in groups.values():
        r, fb = _fallback(g)
        rescale = rescale | r
        norms.append(jnp.where(r, fb, safe_sqrt(g.plain)).astype(dt))
    r_total, _ = _fallback(_Sums(total, total, total))
    stacked = _square_sums(jnp.stack(norms), axis=0)
    r_stack, fb_stack = _fallback(stacked)
    combined = jnp.where(r_stack, fb_stack, safe_sqrt(stacked.plain))
    return rescale | r_total, combined


def l2_norm(
    x: ArrayLike, axis: int | Sequence[int] | None = None, keepdims: bool = False, *, mean: bool = False
) -> jax.Array:
    """``sqrt(sum |x|^2)`` over ``axis`` (``mean=True``: ``sqrt(mean |x|^2)``, the root mean square), safe from
    overflow and underflow, with a finite derivative at 0.

    The one l2 norm of gradtx's blocks (per-leaf, unit-wise and global norms, trust ratios, clipping, the
    monitors). For ordinary magnitudes it is ``sqrt(sum(abs_sq(x)))`` (``sqrt(mean(...))``) in the real compute
    dtype, bit for bit; where that sum overflows (float32 ``|x|`` above ~1.8e19) or falls below ``tiny / eps``
    (its terms rounded as subnormals or flushed to 0), the norm comes from ``x`` rescaled by a power of two,
    computed only then (a ``lax.cond``). Complex ``x``: the norm of ``|x|``. The derivative at ``x = 0`` is 0 (a
    subgradient) instead of NaN.

    Args:
      x: an array (bfloat16 and float16 are computed in float32).
      axis: the axes to reduce (``None``: all), as in ``jnp.sum``.
      keepdims: keep the reduced axes with size 1.
      mean: divide the sum of squares by the number of reduced elements (a root mean square).

    Returns:
      The norms, a real array of the compute dtype of ``x``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.tree.ops import l2_norm
      >>> big, tiny = jnp.array([3e20, 4e20], jnp.float32), jnp.array([3e-25, 4e-25], jnp.float32)
      >>> round(float(l2_norm(big)) / 1e20, 6), round(float(l2_norm(tiny)) / 1e-25, 6)
      (5.0, 5.0)
    """
    x = jnp.asarray(x)
    count = None
    if mean:
        count = builtins.max(1, int(np.prod([jnp.shape(x)[a] for a in _axes(jnp.ndim(x), axis)], dtype=np.int64)))

    def rescaled(x: jax.Array) -> jax.Array:
        sums = _square_sums(x, axis, keepdims, mean)
        rescale, fallback = _fallback(sums, count)
        return jnp.where(rescale, fallback, safe_sqrt(sums.plain))

    plain = _plain_sum(x, axis, keepdims, mean)
    return _cond(_needs_rescale(plain), rescaled, lambda _: safe_sqrt(plain), x)


def leaves_norm(leaves: Sequence[ArrayLike], dtype: DTypeLike, batched: bool = False) -> jax.Array:
    """The l2 norm of several arrays together, accumulated in ``dtype``, without overflow or underflow.

    The ordinary result is ``sqrt(0 + s_1 + s_2 + ...)`` with ``s_i = sum |x_i|^2`` in each array's compute
    dtype cast to ``dtype`` (bit for bit); the fallback is that of :func:`l2_norm`.

    Args:
      leaves: arrays; with ``batched`` they share a leading batch axis.
      dtype: the real dtype of the sum (float32 or wider).
      batched: one norm per index of the leading axis (per-example norms, as in DP-SGD's clipping).

    Returns:
      A real scalar, or a vector of the batch size, in ``dtype``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.tree.ops import leaves_norm
      >>> leaves_norm([jnp.array([[3.0], [0.0]]), jnp.array([[4.0, 0.0], [1.0, 0.0]])], jnp.float32, True).tolist()
      [5.0, 1.0]
    """
    leaves = [up(x) for x in leaves]
    batch = jnp.shape(leaves[0])[0] if batched and leaves else None
    if batched:
        leaves = [jnp.reshape(x, (batch, -1)) for x in leaves]
    axis = 1 if batched else None
    total = jnp.zeros([batch] if batched else [], dtype)
    if not leaves:
        return total
    plains = [_plain_sum(x, axis) for x in leaves]
    for p in plains:
        total = total + p.astype(dtype)

    def rescaled(total: jax.Array) -> jax.Array:
        rescale, fallback = _combine([_square_sums(x, axis) for x in leaves], total)
        return jnp.where(rescale, fallback.astype(dtype), safe_sqrt(total))

    return _cond(_needs_rescale(total, *plains), rescaled, safe_sqrt, total)


def _axes(ndim: int, axis: Any) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(int(a) % builtins.max(ndim, 1) for a in axes)


# --- access and comparison ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """A path entry naming a NamedTuple field and the NamedTuple's class (``ScaleByAdamState.nu``).

    The paths of :func:`get_all_with_path` use it for NamedTuple fields (where ``jax.tree_util`` would use a
    ``GetAttrKey``), so that a path tells which state a field belongs to; ``str(key)`` is ``"Class.field"``.

    Args:
      tuple_name: the NamedTuple's class name (``"ScaleByAdamState"``).
      name: the field name (``"nu"``).

    Example:
      >>> from gradtx import tree
      >>> print(tree.NamedTupleKey("ScaleByAdamState", "nu"))
      ScaleByAdamState.nu
    """

    tuple_name: str
    name: str

    def __str__(self) -> str:
        return f"{self.tuple_name}.{self.name}"


KeyPath = tuple[Any, ...]
"""A path into a tree: a tuple of ``DictKey``, ``SequenceKey``, ``GetAttrKey`` and :class:`NamedTupleKey`."""


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
    tree: PyTree, key: Hashable, filtering: Callable[[KeyPath, Any], bool] | None = None
) -> list[tuple[KeyPath, Any]]:
    """Every ``(path, value)`` whose dict key, NamedTuple field or NamedTuple class name is ``key``.

    Paths are tuples of ``DictKey``, ``SequenceKey``, ``GetAttrKey`` and :class:`NamedTupleKey` entries. The
    search is breadth first, as Optax's: shallower matches come first; a match's subtree is searched too.

    Args:
      tree: a pytree (an optimizer state, a parameter tree, ...).
      key: a dict key, a NamedTuple or dataclass field name, or a NamedTuple class name (``"ScaleByAdamState"``).
      filtering: ``filtering(path, value) -> bool`` keeps a subset of the matches; ``None`` (default) keeps all.

    Returns:
      A list of ``(path, value)`` pairs, empty when nothing matches.

    Example:
      >>> from gradtx import tree
      >>> print(tree.get_all_with_path({"w": {"nu": 1}, "b": [2]}, "nu"))
      [((DictKey(key='w'), DictKey(key='nu')), 1)]
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


def get(
    tree: PyTree, key: Hashable, default: Any = None, filtering: Callable[[KeyPath, Any], bool] | None = None
) -> Any:
    """The value whose key, field or NamedTuple name is ``key`` (``default`` if none; ``KeyError`` if several).

    ``tree.get(adam_state, "nu")`` finds Adam's second moment inside any chain or wrapper (the matches are those
    of :func:`get_all_with_path`).

    Args:
      tree: a pytree (an optimizer state, a parameter tree, ...).
      key: a dict key, a NamedTuple or dataclass field name, or a NamedTuple class name.
      default: what to return when nothing matches. Default None.
      filtering: ``filtering(path, value) -> bool`` keeps a subset of the matches (to pick one of several);
        ``None`` (default) keeps all.

    Returns:
      The one matching value, or ``default``.

    Raises:
      KeyError: when several values match (``tree.get: 2 values named 'count' (...); pass filtering= to pick
        one``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx import tree
      >>> state = gradtx.adam(0.1).init({"w": jnp.zeros(2)})
      >>> print(tree.get(state, "nu")["w"], tree.get(state, "missing", default=-1))
      [0. 0.] -1
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
    (``tree.set(state, count=lambda c: c + 1)``). Every match is replaced (all the ``count`` fields of a chain).

    Args:
      tree: a pytree (an optimizer state, a parameter tree, ...); it is not modified.
      filtering: ``filtering(path, value) -> bool`` restricts which matches are replaced (positional only);
        ``None`` (default) replaces all.
      **kwargs: ``name=value`` pairs: a dict key, field name or NamedTuple class name, and the new value (or a
        function of the old value).

    Returns:
      The new tree.

    Raises:
      KeyError: when a name matches nothing (``tree.set: no value named 'missing' in the tree``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx import tree
      >>> state = gradtx.adam(0.1).init({"w": jnp.zeros(2)})
      >>> print(tree.get(tree.set(state, count=lambda c: c + 5), "count"))
      5
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
    """Whether two trees have the same structure and all leaves are close (``np.allclose`` leaf by leaf).

    Args:
      a: a pytree of arrays.
      b: another pytree.
      rtol: the relative tolerance, ``>= 0``. Default 1e-5.
      atol: the absolute tolerance, ``>= 0``. Default 1e-8.
      equal_nan: whether NaNs in the same places compare equal. Default False.

    Returns:
      A Python bool (False for different structures).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> tree.allclose({"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([1.0, 2.0 + 1e-7])})
      True
    """
    if jax.tree.structure(a) != jax.tree.structure(b):  # type: ignore[operator]  # jaxlib has no PyTreeDef stubs
        return False
    return all(
        bool(np.allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, equal_nan=equal_nan))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


# --- more elementwise maps and reductions ----------------------------------------------------------------


def clip(tree: PyTree, min_value: Scalar | None = None, max_value: Scalar | None = None) -> PyTree:
    """Every leaf clipped to ``[min_value, max_value]`` (``jnp.clip``; ``None``: unbounded on that side).

    Args:
      tree: a pytree of real arrays.
      min_value: the lower bound, or ``None`` (default) for none.
      max_value: the upper bound, or ``None`` (default) for none.

    Returns:
      A pytree of the clipped leaves.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.clip([jnp.array([-2.0, 0.5, 3.0])], -1.0, 1.0)[0])
      [-1.   0.5  1. ]
    """
    return _map(lambda x: jnp.clip(x, min_value, max_value), tree)


def conj(tree: PyTree) -> PyTree:
    """The complex conjugate of every leaf (real leaves unchanged).

    Args:
      tree: a pytree of arrays.

    Returns:
      A pytree of the conjugates.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.conj([jnp.array([1 + 2j])])[0])
      [1.-2.j]
    """
    return _map(jnp.conj, tree)


def real(tree: PyTree) -> PyTree:
    """The real part of every leaf (real leaves unchanged).

    Args:
      tree: a pytree of arrays.

    Returns:
      A pytree of real arrays.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.real([jnp.array([1 + 2j])])[0])
      [1.]
    """
    return _map(jnp.real, tree)


def max(tree: PyTree) -> jax.Array:  # noqa: A001
    """The largest element of all leaves (``-inf`` for an empty tree; empty leaves are skipped).

    Args:
      tree: a pytree of real arrays.

    Returns:
      A scalar array.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.max({"w": jnp.array([1.0, 5.0]), "b": jnp.array(-3.0)}))
      5.0
    """
    leaves = [jnp.max(x) for x in jax.tree.leaves(tree) if jnp.size(x)]
    return jnp.max(jnp.stack(leaves)) if leaves else jnp.asarray(-jnp.inf)


def min(tree: PyTree) -> jax.Array:  # noqa: A001
    """The smallest element of all leaves (``inf`` for an empty tree; empty leaves are skipped).

    Args:
      tree: a pytree of real arrays.

    Returns:
      A scalar array.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.min({"w": jnp.array([1.0, 5.0]), "b": jnp.array(-3.0)}))
      -3.0
    """
    leaves = [jnp.min(x) for x in jax.tree.leaves(tree) if jnp.size(x)]
    return jnp.min(jnp.stack(leaves)) if leaves else jnp.asarray(jnp.inf)


def size(tree: PyTree) -> int:
    """The total number of elements of all leaves (the parameter count of a parameter tree).

    Args:
      tree: a pytree of arrays (or ``jax.ShapeDtypeStruct`` leaves).

    Returns:
      A Python int.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> tree.size({"w": jnp.ones((2, 3)), "b": jnp.ones(4)})
      10
    """
    return int(builtins.sum(int(np.prod(jnp.shape(x))) for x in jax.tree.leaves(tree)))


def batch_shape(tree: PyTree, shape: tuple[int, ...] = ()) -> PyTree:
    """Abstract leaves (``ShapeDtypeStruct``) with leading batch dimensions ``shape`` added.

    Args:
      tree: a pytree of arrays (or ``jax.ShapeDtypeStruct`` leaves).
      shape: the batch dimensions put in front of every leaf's shape. Default ``()``.

    Returns:
      A pytree of ``jax.ShapeDtypeStruct`` of shape ``shape + leaf.shape`` and the leaf's dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> print(tree.batch_shape({"w": jnp.ones((2, 3))}, (5,))["w"].shape)
      (5, 2, 3)
    """
    def one(x: Any) -> jax.ShapeDtypeStruct:
        full = tuple(shape) + tuple(jnp.shape(x))
        return jax.ShapeDtypeStruct(full, jnp.result_type(x))  # type: ignore[no-untyped-call]  # unannotated in JAX

    return _map(one, tree)


def split_key_like(rng_key: jax.Array, target_tree: PyTree) -> PyTree:
    """One independent PRNG key per leaf of ``target_tree``, in the tree's structure (``jax.random.split``).

    Args:
      rng_key: a PRNG key (typed, ``jax.random.key``, or raw, ``jax.random.PRNGKey``).
      target_tree: the tree whose structure the keys take (its leaves are not read).

    Returns:
      A pytree of ``target_tree``'s structure with one key per leaf.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> keys = tree.split_key_like(jax.random.key(0), {"w": jnp.zeros(2), "b": jnp.zeros(3)})
      >>> sorted(keys)
      ['b', 'w']
    """
    treedef = jax.tree.structure(target_tree)
    keys = jax.random.split(rng_key, treedef.num_leaves)  # type: ignore[attr-defined]  # jaxlib has no PyTreeDef stubs
    return jax.tree.unflatten(treedef, list(keys))


def random_like(
    rng_key: jax.Array,
    target_tree: PyTree,
    sampler: Callable[..., jax.Array] = jax.random.normal,
    dtype: DTypeLike | None = None,
) -> PyTree:
    """Random leaves shaped like ``target_tree`` from ``sampler(key, shape, dtype)`` (a key per leaf).

    Args:
      rng_key: a PRNG key, split into one key per leaf (:func:`split_key_like`).
      target_tree: a pytree of arrays (or ``jax.ShapeDtypeStruct`` leaves) giving the shapes and dtypes.
      sampler: ``sampler(key, shape, dtype) -> array``, e.g. ``jax.random.uniform``. Default
        ``jax.random.normal``.
      dtype: the dtype of every leaf, or ``None`` (default) for each leaf's own dtype.

    Returns:
      A pytree of ``target_tree``'s structure with random arrays.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> noise = tree.random_like(jax.random.key(0), {"w": jnp.zeros((2, 3))})
      >>> print(noise["w"].shape, noise["w"].dtype)
      (2, 3) float32
    """
    keys = split_key_like(rng_key, target_tree)
    return jax.tree.map(lambda k, x: sampler(k, jnp.shape(x), dtype or jnp.result_type(x)), keys, target_tree)


def unwrap_random_key_data(input_tree: PyTree) -> PyTree:
    """Typed PRNG keys replaced by their raw data (so trees with keys can be compared numerically).

    Args:
      input_tree: a pytree whose leaves may include typed keys (``jax.random.key``); other leaves pass through.

    Returns:
      The tree with every typed key replaced by ``jax.random.key_data(key)`` (a uint32 array).

    Example:
      >>> import jax
      >>> from gradtx import tree
      >>> print(tree.unwrap_random_key_data({"key": jax.random.key(0)})["key"])
      [0 0]
    """

    def unwrap(x: Any) -> Any:
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.key_data(x)
        return x

    return _map(unwrap, input_tree)


class ParamsMarker:
    """Stands for "the parameter tree" when ``init`` is called by :func:`map_params`.

    ``init(ParamsMarker())`` puts the marker (an empty pytree) wherever the state holds a tree shaped like the
    parameters (moments, traces); combinators that restructure the params, like ``masked``, pass it through
    unchanged. It takes no arguments.

    Example:
      >>> import gradtx
      >>> from gradtx import tree
      >>> state = gradtx.sgd(0.1, momentum=0.9).init(tree.ParamsMarker())
      >>> isinstance(state[0].trace, tree.ParamsMarker)
      True
    """


jax.tree_util.register_pytree_node(ParamsMarker, lambda _: ((), None), lambda _, __: ParamsMarker())


def map_params(
    initable: TransformationLike | Callable[[Any], Any],
    f: Callable[..., Any],
    state: PyTree,
    /,
    *rest: PyTree,
    transform_non_params: Callable[[Any], Any] | None = None,
    is_leaf: Callable[[Any], bool] | None = None,
) -> PyTree:
    """Apply ``f`` to every parameter-shaped tree in an optimizer ``state`` (moments, traces), leaf by leaf.

    ``initable`` is the transformation (or its ``init``) that made the state: calling it on a
    :class:`ParamsMarker` tells which parts of the state mirror the parameters. Other leaves pass through
    ``transform_non_params`` if given (e.g. to shard counters differently). Optax's ``tree_map_params``.

    Args:
      initable: the transformation that made ``state``, or its ``init`` function (positional only).
      f: ``f(leaf, *rest_leaves) -> new leaf``, applied to the leaves of each parameter-shaped part (positional
        only).
      state: the optimizer state (positional only).
      *rest: trees of the parameters' structure whose leaves are passed to ``f`` after the state's.
      transform_non_params: applied to every other leaf of the state (counts, scalars); ``None`` (default)
        leaves them unchanged.
      is_leaf: passed to ``jax.tree.map`` over the parameter-shaped parts. Default None.

    Returns:
      The new state, of the structure of ``state``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx import tree
      >>> tx = gradtx.adam(0.1)
      >>> state = tree.map_params(tx, lambda m: m + 1, tx.init({"w": jnp.zeros(2)}))
      >>> print(tree.get(state, "mu")["w"], tree.get(state, "count"))
      [1. 1.] 0
    """
    init = typing.cast(Callable[[Any], Any], getattr(initable, "init", initable))
    marked = init(ParamsMarker())

    def one(marker: Any, value: Any) -> Any:
        if isinstance(marker, ParamsMarker):
            return jax.tree.map(f, value, *rest, is_leaf=is_leaf)
        return transform_non_params(value) if transform_non_params is not None else value

    return jax.tree.map(one, marked, state, is_leaf=lambda v: isinstance(v, ParamsMarker))
