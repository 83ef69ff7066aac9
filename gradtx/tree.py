"""Pytree arithmetic shared by the blocks: sums, norms, moments, bias correction, casts.

Precision policy: every function that mixes a hyperparameter with an array computes in
``compute_dtype(array.dtype)``, which is the array's dtype promoted to at least float32 (complex stays
complex). Hyperparameters are therefore never rounded to bfloat16 (``0.999`` would become ``1.0``).
Functions that produce *state* (``update_moment`` and friends) cast the result back to the dtype the state
is stored in; functions that produce intermediates (``bias_correction``) return the compute dtype, and the
block casts its final output to the dtype of the updates it received.

``None`` leaves are empty subtrees and are skipped everywhere.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx.base import PyTree

__all__ = [
    "abs_sq",
    "add",
    "add_scale",
    "allclose",
    "bias_correction",
    "cast",
    "cast_like",
    "compute_dtype",
    "div",
    "dtype",
    "full_like",
    "get",
    "global_norm",
    "hyper",
    "mul",
    "norm",
    "ones_like",
    "scale",
    "sub",
    "sum",
    "update_infinity_moment",
    "update_moment",
    "unzip2",
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


def hyper(value: Any, like: Any) -> jax.Array:
    """A scalar hyperparameter as a real array of the compute dtype of ``like`` (an array or dtype)."""
    dt = like.dtype if hasattr(like, "dtype") else like
    return jnp.asarray(value, dtype=_real(compute_dtype(dt)))


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
    """``a + s * b`` leafwise, in compute dtype, cast back to the dtype of ``a``."""
    return _map(lambda x, y: (up(x) + hyper(s, x) * up(y)).astype(jnp.asarray(x).dtype), a, b)


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
    """Zeros shaped like each leaf (``dtype`` overrides the leaf dtype when given)."""
    return _map(lambda x: jnp.zeros(jnp.shape(x), dtype or jnp.result_type(x)), tree)


def ones_like(tree: PyTree, dtype: Any = None) -> PyTree:
    """Ones shaped like each leaf."""
    return _map(lambda x: jnp.ones(jnp.shape(x), dtype or jnp.result_type(x)), tree)


def full_like(tree: PyTree, fill_value: Any, dtype: Any = None) -> PyTree:
    """``fill_value`` shaped like each leaf."""
    return _map(lambda x: jnp.full(jnp.shape(x), fill_value, dtype or jnp.result_type(x)), tree)


def cast(tree: PyTree, dtype: Any) -> PyTree:
    """Cast every leaf to ``dtype``; ``dtype=None`` leaves the tree unchanged."""
    if dtype is None:
        return tree
    return _map(lambda x: jnp.asarray(x).astype(dtype), tree)


def cast_like(tree: PyTree, other: PyTree) -> PyTree:
    """Cast each leaf of ``tree`` to the dtype of the matching leaf of ``other``."""
    return _map(lambda x, o: jnp.asarray(x).astype(jnp.result_type(o)), tree, other)


def dtype(tree: PyTree) -> Any:
    """The common dtype of the leaves (``None`` for an empty tree)."""
    leaves = jax.tree.leaves(tree)
    return jnp.result_type(*leaves) if leaves else None


# --- reductions -------------------------------------------------------------------------------------


def vdot(a: PyTree, b: PyTree) -> jax.Array:
    """Inner product of two trees, ``sum_i conj(a_i) . b_i``."""
    parts = jax.tree.leaves(_map(lambda x, y: jnp.vdot(x, y), a, b))
    total: jax.Array = parts[0] if parts else jnp.zeros([], jnp.float32)
    for p in parts[1:]:
        total = total + p
    return total


def sum(tree: PyTree) -> jax.Array:  # noqa: A001 - mirrors Optax's tree.sum
    """Sum of every element of every leaf."""
    parts = [jnp.sum(x) for x in jax.tree.leaves(tree)]
    total: jax.Array = parts[0] if parts else jnp.zeros([], jnp.float32)
    for p in parts[1:]:
        total = total + p
    return total


def norm(tree: PyTree, ord: Any = 2, squared: bool = False) -> jax.Array:  # noqa: A002
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


def update_moment(updates: PyTree, moments: PyTree, decay: Any, order: int) -> PyTree:
    """``decay * m + (1 - decay) * g**order``, in compute dtype, stored in each moment's dtype."""

    def one(g: Any, m: Any) -> Any:
        d = hyper(decay, m)
        return (d * up(m) + (1 - d) * up(g) ** order).astype(jnp.asarray(m).dtype)

    return _map(one, updates, moments)


def update_moment_per_elem_norm(updates: PyTree, moments: PyTree, decay: Any, order: int) -> PyTree:
    """``decay * m + (1 - decay) * |g|**order`` (real for complex ``g``), stored in each moment's dtype."""

    def one(g: Any, m: Any) -> Any:
        d = hyper(decay, m)
        g = up(g)
        mag = abs_sq(g) if order == 2 else jnp.abs(g) ** order
        return (d * up(m) + (1 - d) * mag).astype(jnp.asarray(m).dtype)

    return _map(one, updates, moments)


def update_infinity_moment(updates: PyTree, moments: PyTree, decay: Any, eps: Any) -> PyTree:
    """``max(decay * m, |g| + eps)`` (Adamax's infinity norm), stored in each moment's dtype."""

    def one(g: Any, m: Any) -> Any:
        d = hyper(decay, m)
        return jnp.maximum(d * up(m), jnp.abs(up(g)) + hyper(eps, m)).astype(jnp.asarray(m).dtype)

    return _map(one, updates, moments)


def bias_correction(moment: PyTree, decay: Any, count: Any) -> PyTree:
    """``m / (1 - decay**count)`` in compute dtype (Kingma & Ba 2015, Algorithm 1)."""

    def one(m: Any) -> Any:
        d = hyper(decay, m)
        t = jnp.asarray(count).astype(d.dtype)
        return up(m) / (1 - d**t)

    return _map(one, moment)


# --- access and comparison ----------------------------------------------------------------------------


def get(tree: PyTree, key: str, default: Any = ...) -> Any:
    """The value of the unique field named ``key`` in a nested state (NamedTuples, dicts, dataclasses).

    Raises ``KeyError`` if no field or several fields have that name (unless ``default`` is given for the
    not-found case).
    """
    found: list[Any] = []

    def visit(node: Any) -> None:
        fields = getattr(node, "_fields", None)
        if fields is not None and isinstance(node, tuple):
            for name, value in zip(fields, node):
                if name == key:
                    found.append(value)
                visit(value)
        elif isinstance(node, dict):
            for name, value in node.items():
                if name == key:
                    found.append(value)
                visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)

    visit(tree)
    if len(found) == 1:
        return found[0]
    if not found:
        if default is not ...:
            return default
        raise KeyError(f"tree.get: no field named {key!r} in the state")
    raise KeyError(f"tree.get: {len(found)} fields named {key!r} in the state; ask a sub-state")


def allclose(a: PyTree, b: PyTree, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """Whether two trees have the same structure and all leaves are close."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    return all(
        bool(np.allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )
