"""Pytree arithmetic, construction, casts, reductions, access and random trees (Optax's ``optax.tree``)."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx.base import PyTree
from gradtx.tree.precision import abs_sq, hyper, up


def _map(fn: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree:
    return jax.tree.map(fn, tree, *rest)


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
    return jax.tree.map(lambda k, x: sampler(k, jnp.shape(x), dtype or jnp.result_type(x)), keys, target_tree)


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
