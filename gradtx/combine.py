"""Combinators (N transformations -> 1): chain, named_chain, masked, partition, freeze, conditionals.

``chain(a, b, c)`` feeds the updates through ``a``, then ``b``, then ``c``; its state is the tuple of their
states. The empty chain is the identity and chaining is associative. Any object with ``init`` and
``update`` can be chained: an Optax transformation is held as a static ``foreign`` block (its closures are
not pytree leaves), and receives extra keyword arguments only if its ``update`` accepts them.

Selecting parameters (Optax's names, state classes and semantics):

    masked(tx, mask)                 tx on the leaves where mask is True, the others pass through unchanged
    partition({label: tx}, labels)   each label's tx on the leaves with that label (alias multi_transform)
    freeze(mask)                     zero updates where mask is True      = masked(set_to_zero(), mask)
    selective_transform(tx, freeze_mask=m)   tx on the unfrozen leaves, zeros on the frozen ones
    conditionally_transform(tx, fn)  tx at steps where fn(step) holds, else updates and inner state pass through
    conditionally_mask(tx, fn)       tx at steps where fn(step) holds, else zero updates, inner state kept

A mask is a tree of booleans with the structure of the params or a prefix of it (a boolean at a node selects
that whole subtree), or a callable returning one; labels likewise, with hashable labels at the leaves.
Callables are applied to the params in ``init`` and to the updates in ``update``, as in Optax. Masks and
labels are static: their values must be known when tracing. The inner transformation sees only the selected
subtree: the left-out parts are replaced by :class:`MaskedNode` (a node without leaves, skipped by every
tree map), so its state has Optax's structure and ``masked`` nests inside ``masked`` (Optax issue #271).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import core as jax_core
from jax.typing import ArrayLike

from gradtx import tree
from gradtx._docs import fill_doc
from gradtx.base import (
    GradientTransformation,
    MaskOrFn,
    OptState,
    Params,
    PyTree,
    TransformationLike,
    Updates,
    as_transformation,
    safe_int32_increment,
    set_to_zero,
    zero_count,
)
from gradtx.fields import FrozenTree, flag, format_value, function, hashable_tree, option, pytree_class

_TRANSFORMATION = "a transformation (anything with init and update)"
_MASK = "a boolean, a tree of booleans (a prefix of the params) or a callable params -> such a tree"

__all__ = [
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "MaskedNode",
    "MaskedState",
    "MultiTransformState",
    "PartitionState",
    "chain",
    "conditionally_mask",
    "conditionally_transform",
    "freeze",
    "masked",
    "multi_transform",
    "named_chain",
    "partition",
    "selective_transform",
]


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


@pytree_class
class chain(GradientTransformation):
    """Apply transformations in sequence: ``chain(scale_by_adam(), scale_by_learning_rate(1e-3))``.

    ``chain(a, b, c).update`` feeds the updates through ``a``, then ``b``, then ``c``, each with its own state
    and the same ``params`` and extra keyword arguments; the state is the tuple ``(state_a, state_b,
    state_c)``, as Optax's ``chain``. The empty ``chain()`` is the identity and chaining is associative (up to
    the nesting of the state). Any object with ``init`` and ``update`` can be chained: an Optax transformation
    is held as a static block (its closures are not pytree leaves) and receives extra keyword arguments only
    if its ``update`` accepts ``**kwargs``. Every gradtx optimizer (``adam``, ``sgd``, ...) is a ``chain``.

    Args:
      *transforms: the transformations, in the order they apply (each a :class:`TransformationLike`).

    Returns:
      A ``GradientTransformation`` whose state is the tuple of the transformations' states.

    Raises:
      TypeError: an argument has no ``init`` and ``update``: ``chain: expected a transformation with init and
        update, got 3``; or, in ``update``, a state with another number of entries than there are
        transformations.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.chain(gradtx.clip(1.0), gradtx.scale(-0.1))  # clip each coordinate, then scale
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([3.0, -0.5]), state)
      >>> print(updates, state)
      [-0.1   0.05] (EmptyState(), EmptyState())
    """

    transforms: tuple[GradientTransformation, ...] = option(accepts="transformations, given positionally")

    def __init__(self, *transforms: TransformationLike, **fields: Any):
        if fields:  # rebuilt by pytree utilities as chain(transforms=...)
            if transforms or set(fields) != {"transforms"}:
                raise TypeError(f"chain: unexpected arguments {sorted(fields)}; pass transformations positionally")
            transforms = tuple(fields["transforms"])
        object.__setattr__(self, "transforms", tuple(as_transformation(t, "chain") for t in transforms))

    def init(self, params: Params) -> tuple[OptState, ...]:
        """The tuple of every transformation's ``init(params)``, in order."""
        return tuple(t.init(params) for t in self.transforms)

    def update(
        self, updates: Updates, state: tuple[OptState, ...], params: Params | None = None, **extra: Any
    ) -> tuple[Updates, tuple[OptState, ...]]:
        if len(state) != len(self.transforms):
            raise TypeError(f"chain.update: state has {len(state)} entries for {len(self.transforms)} transformations")
        new_state = []
        for t, s in zip(self.transforms, state):
            updates, s = t.update(updates, s, params, **extra)
            new_state.append(s)
        return updates, tuple(new_state)

    def __repr__(self) -> str:
        if not self.transforms:
            return "chain()"
        return "chain(\n" + ",\n".join(_indent(repr(t)) for t in self.transforms) + ",\n)"


@pytree_class
class named_chain(GradientTransformation):
    """``chain`` with a name per transformation; the state is a dict ``{name: state}``.

    ``named_chain(("adam", scale_by_adam()), ("lr", scale_by_learning_rate(1e-3)))`` applies the
    transformations in the order given, as :class:`chain` does, and keys each one's state by its name (so
    ``state["adam"]`` and the checkpoint key ``"adam/mu/w"`` read by name rather than by position). Optax's
    ``named_chain``.

    Args:
      *pairs: ``(name, transformation)`` pairs, in the order they apply; names are unique strings.

    Returns:
      A ``GradientTransformation`` whose state is ``{name: state}``.

    Raises:
      TypeError: an argument is not a ``(str, transformation)`` pair (``named_chain: each argument must be a
        (name, transformation) pair, got ...``) or a transformation has no ``init`` and ``update``.
      ValueError: a name is repeated: ``named_chain(names=['a', 'a']): names must be unique, repeated: ['a']``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.named_chain(("momentum", gradtx.trace(decay=0.9)), ("lr", gradtx.scale(-0.1)))
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(updates, state["momentum"].trace)
      [-0.1  0.2] [ 1. -2.]
    """

    transforms: tuple[GradientTransformation, ...] = option(accepts="transformations, given in (name, tx) pairs")
    names: tuple[str, ...] = option(accepts="unique names, given in (name, tx) pairs", static=True)

    def __init__(self, *pairs: tuple[str, TransformationLike], **fields: Any):
        if fields:
            if pairs or set(fields) != {"transforms", "names"}:
                raise TypeError(f"named_chain: unexpected arguments {sorted(fields)}; pass (name, tx) pairs")
            names, transforms = tuple(fields["names"]), tuple(fields["transforms"])
        else:
            for p in pairs:
                if not (isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)):
                    raise TypeError(f"named_chain: each argument must be a (name, transformation) pair, got {p!r}")
            names = tuple(name for name, _ in pairs)
            transforms = tuple(t for _, t in pairs)
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"named_chain(names={list(names)}): names must be unique, repeated: {dup}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "transforms", tuple(as_transformation(t, "named_chain") for t in transforms))

    def init(self, params: Params) -> dict[str, OptState]:
        """``{name: init(params)}`` for every named transformation."""
        return {n: t.init(params) for n, t in zip(self.names, self.transforms)}

    def update(
        self, updates: Updates, state: dict[str, OptState], params: Params | None = None, **extra: Any
    ) -> tuple[Updates, dict[str, OptState]]:
        new_state = {}
        for n, t in zip(self.names, self.transforms):
            updates, new_state[n] = t.update(updates, state[n], params, **extra)
        return updates, new_state

    def __repr__(self) -> str:
        body = ",\n".join(_indent(f"({n!r}, {t!r})") for n, t in zip(self.names, self.transforms))
        return "named_chain(\n" + body + ",\n)" if body else "named_chain()"


# --------------------------------------------------------------------------------------------------
# States.
# --------------------------------------------------------------------------------------------------


class MaskedNode(NamedTuple):
    """Stands in for a subtree a mask leaves out: a node without leaves, so every tree map skips it.

    ``masked`` (and ``partition``, ``freeze``) give the inner transformation the updates and params with
    ``MaskedNode()`` in place of every left-out subtree, so the inner state has the structure of the params
    with those parts empty (Optax's ``MaskedNode``, the same structure as Optax's states).

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.masked(gradtx.trace(decay=0.9), {"w": True, "b": False})
      >>> state = tx.init({"w": jnp.zeros(2), "b": jnp.zeros(1)})
      >>> state.inner_state.trace["b"]
      MaskedNode()
      >>> jax.tree.leaves(gradtx.MaskedNode())
      []
    """


class MaskedState(NamedTuple):
    """The state of ``masked`` and ``freeze``: the inner transformation's state, for the selected parameters.

    Attributes:
      inner_state: the inner transformation's state, made from the selected parameters only (the others are
        ``MaskedNode()`` in it).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.masked(gradtx.trace(decay=0.9), {"w": True, "b": False})
      >>> tx.init({"w": jnp.zeros(2), "b": jnp.zeros(1)})
      MaskedState(inner_state=TraceState(trace={'b': MaskedNode(), 'w': Array([0., 0.], dtype=float32)}))
    """

    inner_state: OptState


class PartitionState(NamedTuple):
    """The state of ``partition`` (``multi_transform``) and ``selective_transform``: one entry per label.

    Attributes:
      inner_states: ``{label: MaskedState}``, the state of each label's transformation, made from the
        parameters with that label only.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.partition({"a": gradtx.scale(-1.0), "b": gradtx.trace(decay=0.5)}, {"w": "a", "v": "b"})
      >>> state = tx.init({"w": jnp.zeros(2), "v": jnp.zeros(1)})
      >>> sorted(state.inner_states), state.inner_states["a"]
      (['a', 'b'], MaskedState(inner_state=EmptyState()))
    """

    inner_states: Mapping[Hashable, MaskedState]


MultiTransformState = PartitionState  # Optax's older name, the same class


class ConditionallyTransformState(NamedTuple):
    """The state of ``conditionally_transform``: the inner state and the step count the condition sees.

    Attributes:
      inner_state: the inner transformation's state (unchanged at the steps where it does not run).
      step: the number of previous ``update`` calls, int32 (saturating), whether or not ``inner`` ran.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.conditionally_transform(gradtx.scale(2.0), lambda step: step < 1)
      >>> tx.init(jnp.zeros(2))
      ConditionallyTransformState(inner_state=EmptyState(), step=Array(0, dtype=int32))
    """

    inner_state: OptState
    step: jax.Array


class ConditionallyMaskState(NamedTuple):
    """The state of ``conditionally_mask``: the step count the condition sees and the inner state.

    Attributes:
      step: the number of previous ``update`` calls, int32 (saturating), whether or not ``inner`` ran.
      inner_state: the inner transformation's state (unchanged at the steps where it does not run).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.conditionally_mask(gradtx.scale(2.0), lambda step: step < 1)
      >>> tx.init(jnp.zeros(2))
      ConditionallyMaskState(step=Array(0, dtype=int32), inner_state=EmptyState())
    """

    step: jax.Array
    inner_state: OptState


# --------------------------------------------------------------------------------------------------
# Masks and labels: static prefix trees of the params.
# --------------------------------------------------------------------------------------------------


class _NoLabel:
    """The label of a position an outer mask already left out (equal to no transformation's label)."""

    def __repr__(self) -> str:
        return "<no label>"


_NO_LABEL = _NoLabel()


def _is_leaf(x: Any) -> bool:
    return jax.tree_util.all_leaves([x])


def _is_childless(x: Any) -> bool:
    """``None``, ``MaskedNode()``, ``EmptyState()``, ``{}``: a pytree node without children."""
    # for mypy: jaxlib ships no stubs, so PyTreeDef is unresolved (the ignore below)
    return not _is_leaf(x) and jax.tree.structure(x).num_nodes == 1  # type: ignore[attr-defined]


def _is_mask_fn(mask: Any) -> bool:
    """Optax's rule: a callable whose leaves are all callable (a callable pytree of booleans is a tree)."""
    if isinstance(mask, FrozenTree) or not callable(mask):
        return False
    flags = jax.tree.leaves(jax.tree.map(callable, mask))
    return bool(flags) and all(flags)


_mask_callable = _is_mask_fn  # Optax's private name for the same rule (its tests call it)


def _unfreeze(x: Any) -> Any:
    return x.tree if isinstance(x, FrozenTree) else x


def _is_bool(x: Any) -> bool:
    """A boolean known before tracing: a Python or NumPy bool, or a concrete 0-d boolean array."""
    if isinstance(x, (bool, np.bool_)):
        return True
    if isinstance(x, jax_core.Tracer) or not isinstance(x, (np.ndarray, jax.Array)):
        return False
    return x.shape == () and x.dtype == np.bool_


def _truth(m: Any, call: str) -> bool:
    if not _is_bool(m):
        raise TypeError(
            f"{call}: mask values must be booleans known before tracing (Python, NumPy or concrete 0-d arrays); "
            f"got {m!r}"
        )
    return bool(m)


def _check_mask(obj: GradientTransformation, name: str, allow_fn: bool = True) -> None:
    """Validate a mask field at construction and store it hashable (callables are kept as they are)."""
    value = getattr(obj, name)
    if _is_mask_fn(value):
        if not allow_fn:
            obj._fail(name, value, "must be a boolean or a tree of booleans, not a callable")
        return
    if not all(_is_bool(x) for x in jax.tree.leaves(_unfreeze(value))):
        obj._fail(name, value, "must be a boolean, a tree of booleans (a prefix of the params) or a callable")
    object.__setattr__(obj, name, hashable_tree(value))


def _children(node: Any) -> tuple[list[Any], list[Any], Any]:
    """The path entries and children of one pytree node, and the treedef that rebuilds it from them."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    return [p[0] for p, _ in flat], [c for _, c in flat], treedef


def _prune(prefix: Any, target: Any, fill: Any) -> Any:
    """``prefix`` with ``fill`` in place of each subtree lying where ``target`` has a childless node.

    An outer ``masked`` replaces what it leaves out by ``MaskedNode()``; an inner mask (or partition labels)
    finer than the outer one then meets that node, and only the part the outer mask passed is selected.
    Mismatches are left as they are for :func:`_coverage` to report.
    """
    if _is_leaf(prefix):
        return prefix
    if _is_childless(target):
        # for mypy: jaxlib ships no stubs, so PyTreeDef is unresolved (the ignore below)
        same = jax.tree.structure(prefix) == jax.tree.structure(target)  # type: ignore[operator]
        return prefix if same else fill
    if _is_childless(prefix) or _is_leaf(target):
        return prefix
    keys, kids, treedef = _children(prefix)
    target_keys, target_kids, _ = _children(target)
    if keys != target_keys:
        return prefix
    return jax.tree_util.tree_unflatten(treedef, [_prune(a, b, fill) for a, b in zip(kids, target_kids)])


def _coverage(prefix: Any, target: Any) -> tuple[list[Any], list[Any]]:
    """Paths of ``target``'s leaves no leaf of ``prefix`` covers; paths of ``prefix``'s leaves not in ``target``."""
    positions, _ = jax.tree_util.tree_flatten_with_path(target, is_leaf=_is_childless)
    marks, _ = jax.tree_util.tree_flatten_with_path(prefix)
    marked = {tuple(p) for p, _ in marks}
    uncovered = [
        p for p, x in positions if _is_leaf(x) and not any(tuple(p[:i]) in marked for i in range(len(p) + 1))
    ]
    exists = {tuple(p[:i]) for p, _ in positions for i in range(len(p) + 1)}
    stray = [p for p, _ in marks if tuple(p) not in exists]
    return uncovered, stray


def _path(p: Any) -> str:
    return jax.tree_util.keystr(tuple(p)) or "<root>"


def _first_mismatch(prefix: Any, target: Any, name: str, path: tuple[Any, ...] = ()) -> str | None:
    """Where ``prefix`` (a mask or labels, called ``name``) first stops being a prefix of ``target`` (the params),
    in JAX's words (``Dict key mismatch``, ...) with the path and both sides; ``None`` if it is a prefix."""
    if _is_leaf(prefix):
        return None
    where = _path(path)
    if _is_leaf(target):
        return f"Node mismatch at {where}: {name} has a {type(prefix).__name__}, params have a leaf"
    if type(prefix) is not type(target):
        return (
            f"Custom node type mismatch at {where}: {name} has a {type(prefix).__name__}, "
            f"params have a {type(target).__name__}"
        )
    keys, kids, _ = _children(prefix)
    target_keys, target_kids, _ = _children(target)
    if keys != target_keys:
        if isinstance(prefix, Mapping):
            mine = [getattr(k, "key", k) for k in keys]
            theirs = [getattr(k, "key", k) for k in target_keys]
            return f"Dict key mismatch at {where}: {name} has keys {mine}, params have keys {theirs}"
        return f"Arity mismatch at {where}: {name} has {len(keys)} children, params have {len(target_keys)}"
    for k, x, y in zip(keys, kids, target_kids):
        found = _first_mismatch(x, y, name, (*path, k))
        if found is not None:
            return found
    return None


def _paths(ps: list[Any]) -> str:
    return ", ".join(_path(p) for p in ps)


def _split(mask: Any, target: Any, call: str) -> Any:
    """``target`` with ``MaskedNode()`` wherever ``mask`` is False."""
    return jax.tree.map(lambda m, x: x if _truth(m, call) else MaskedNode(), mask, target)


def _merge(mask: Any, new: Any, old: Any, call: str) -> Any:
    """``new`` where ``mask`` is True, ``old`` elsewhere."""
    return jax.tree.map(lambda m, n, o: n if _truth(m, call) else o, mask, new, old)


def _is_params_marker(params: Any) -> bool:
    """Whether ``init`` is called by ``tree.map_params`` (which passes a marker for the whole params)."""
    return isinstance(params, tree.ParamsMarker)


# --------------------------------------------------------------------------------------------------
# The combinators.
# --------------------------------------------------------------------------------------------------


def _field_text(value: Any) -> str:
    if isinstance(value, GradientTransformation):
        return repr(value)
    if isinstance(value, dict) and value and all(isinstance(v, GradientTransformation) for v in value.values()):
        return "{\n" + ",\n".join(_indent(f"{k!r}: {v!r}") for k, v in value.items()) + ",\n}"
    return format_value(value)


class _Combinator(GradientTransformation):
    """Reprs on one line when short, else one field per line with the inner transformations indented."""

    def __repr__(self) -> str:
        name = type(self).__name__
        parts = [f"{f.name}={_field_text(getattr(self, f.name))}" for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        line = f"{name}({', '.join(parts)})"
        if "\n" not in line and len(line) <= 100:
            return line
        return f"{name}(\n" + ",\n".join(_indent(p) for p in parts) + ",\n)"


@pytree_class
class masked(_Combinator):
    """Apply ``inner`` to the leaves where ``mask`` is True; the other updates pass through unchanged.

    ``u = inner(g)`` where the mask is True, ``u = g`` elsewhere. ``inner`` sees the updates, the params, its
    state and every extra keyword argument restricted to the selected leaves: the others are ``MaskedNode()``,
    so its state holds only selected leaves (Optax's structure) and ``masked`` nests (an inner mask applies to
    what the outer one passes; Optax issue #271). With ``mask_compatible_extra_args`` an extra argument
    shaped like the updates is masked too. ``masked(tx, True)`` is ``tx``; ``masked(tx, False)`` the identity.
    The mask is static: its values must be known when tracing. Optax's ``masked``, the same state.

    Args:
      inner: the transformation to apply to the selected leaves (anything with ``init`` and ``update``).
      mask: a boolean, a tree of booleans with the structure of the params or a prefix of it (a boolean at a
        node selects that whole subtree), or a callable returning one (applied to the params in ``init`` and
        to the updates in ``update``). Booleans are Python, NumPy or concrete 0-d JAX booleans.
      mask_compatible_extra_args: also mask the extra keyword arguments of ``update`` whose tree structure is
        the updates' (keyword-only). Default False.

    Returns:
      A ``GradientTransformation`` whose state is ``MaskedState(inner_state)``.

    Raises:
      TypeError: ``inner`` has no ``init`` and ``update`` (``masked: expected a transformation with init and
        update, got 3``).
      InvalidValue: (a ``ValueError``) ``mask`` holds something other than booleans: ``masked(mask='yes'):
        mask must be a boolean, a tree of booleans (a prefix of the params) or a callable``.
      ValueError: in ``init`` or ``update``, the mask is not a prefix of the params' tree (``masked.init: the
        mask must have the structure of the params or a prefix of it; parameters without a mask value:
        ['b']; ...``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.masked(gradtx.scale(-0.1), {"w": True, "b": False})
      >>> params = {"w": jnp.zeros(2), "b": jnp.zeros(1)}
      >>> updates, state = tx.update({"w": jnp.array([1.0, 2.0]), "b": jnp.array([3.0])}, tx.init(params))
      >>> print(updates["w"], updates["b"])
      [-0.1 -0.2] [3.]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "its mask is written for the parameter tree"

    inner: TransformationLike = option(accepts=_TRANSFORMATION)
    mask: MaskOrFn = option(accepts=_MASK, static=True)
    mask_compatible_extra_args: bool = flag(default=False, kw_only=True)

    def __check_init__(self) -> None:
        object.__setattr__(self, "inner", as_transformation(self.inner, "masked"))
        _check_mask(self, "mask")

    def _mask_for(self, target: Any, call: str) -> Any:
        mask = self.mask(target) if _is_mask_fn(self.mask) else _unfreeze(self.mask)
        mask = _prune(mask, target, False)
        uncovered, stray = _coverage(mask, target)
        first = _first_mismatch(mask, target, "the mask")
        if uncovered or stray or first:
            lines = [f"{call}: the mask must have the structure of the params or a prefix of it"]
            if uncovered:
                lines.append(f"parameters without a mask value: {_paths(uncovered)}")
            if stray:
                lines.append(f"mask entries at no parameter: {_paths(stray)}")
            if first:
                lines.append(f"first difference: {first}")
            raise ValueError(";\n  ".join(lines))
        return mask

    def init(self, params: Params) -> MaskedState:
        if _is_params_marker(params):
            return MaskedState(inner_state=self.inner.init(params))
        mask = self._mask_for(params, "masked.init")
        return MaskedState(inner_state=self.inner.init(_split(mask, params, "masked.init")))

    def update(
        self, updates: Updates, state: MaskedState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, MaskedState]:
        call = "masked.update"
        mask = self._mask_for(updates, call)
        if self.mask_compatible_extra_args:
            structure = jax.tree.structure(updates)
            # for mypy: jaxlib ships no stubs, so PyTreeDef is unresolved (the ignore below)
            extra = {k: _split(mask, v, call) if jax.tree.structure(v) == structure else v for k, v in extra.items()}  # type: ignore[operator]
        inner_params = None if params is None else _split(mask, params, call)
        new, inner_state = self.inner.update(_split(mask, updates, call), state.inner_state, inner_params, **extra)
        return _merge(mask, new, updates, call), MaskedState(inner_state=inner_state)


@pytree_class
class partition(_Combinator):
    """Apply ``transforms[label]`` to the leaves labelled ``label``: ``partition({"adam": adam(1e-3), "sgd":
    sgd(1e-2)}, labels)``.

    Each label's transformation runs as ``masked(tx, labels == label)``, so it sees only its leaves and extra
    keyword arguments are passed through (masked too with ``mask_compatible_extra_args``). The state is
    ``PartitionState(inner_states={label: MaskedState(...)})``, as Optax's ``partition``. A parameter without
    a label or a label without a transformation is a ``ValueError`` listing every such path and label. Labels
    are static: their values must be known when tracing. Also named ``multi_transform``.

    Args:
      transforms: a mapping ``{label: transformation}`` (each anything with ``init`` and ``update``).
      param_labels: a tree of hashable labels with the structure of the params or a prefix of it (a label at
        a node labels that whole subtree), or a callable returning one (applied to the params in ``init`` and
        to the updates in ``update``).
      mask_compatible_extra_args: also mask the extra keyword arguments of ``update`` whose tree structure is
        the updates' (keyword-only). Default False.

    Returns:
      A ``GradientTransformation`` whose state is ``PartitionState``.

    Raises:
      InvalidValue: (a ``ValueError``) ``transforms`` is not a mapping: ``partition(transforms=[1]): transforms
        must be a mapping {label: transformation}``.
      TypeError: a value of ``transforms`` has no ``init`` and ``update``; or, in ``update``, a state whose
        labels are not those of ``transforms``.
      ValueError: in ``init`` or ``update``, a parameter without a label or a label without a transformation
        (``partition.init: every parameter needs a label and every label a transformation; labels without a
        transformation: 'c' (at ['b']); ...``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.partition({"neg": gradtx.scale(-1.0), "half": gradtx.scale(0.5)}, {"w": "neg", "b": "half"})
      >>> params = {"w": jnp.zeros(2), "b": jnp.zeros(1)}
      >>> updates, state = tx.update({"w": jnp.array([1.0, 2.0]), "b": jnp.array([3.0])}, tx.init(params))
      >>> print(updates["w"], updates["b"])
      [-1. -2.] [1.5]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "its labels are written for the parameter tree"

    transforms: Mapping[Hashable, TransformationLike] = option(accepts="a mapping {label: transformation}")
    param_labels: PyTree | Callable[[Params], PyTree] = option(
        accepts="a tree of hashable labels (a prefix of the params) or a callable params -> such a tree", static=True
    )
    mask_compatible_extra_args: bool = flag(default=False, kw_only=True)

    def __check_init__(self) -> None:
        if not isinstance(self.transforms, Mapping):
            self._fail("transforms", self.transforms, "must be a mapping {label: transformation}")
        items: list[tuple[Any, GradientTransformation]] = [
            (k, as_transformation(v, "partition")) for k, v in self.transforms.items()
        ]
        with contextlib.suppress(TypeError):  # the order pytrees flatten dicts in: a rebuilt partition reads the same
            items.sort(key=lambda kv: kv[0])
        object.__setattr__(self, "transforms", dict(items))
        if not callable(self.param_labels):
            object.__setattr__(self, "param_labels", hashable_tree(self.param_labels))

    def _labels_for(self, target: Any, call: str) -> Any:
        labels = self.param_labels(target) if callable(self.param_labels) else _unfreeze(self.param_labels)
        labels = _prune(labels, target, _NO_LABEL)
        uncovered, stray = _coverage(labels, target)
        unknown: dict[str, list[Any]] = {}  # repr(label) -> its paths
        for p, label in jax.tree_util.tree_flatten_with_path(labels)[0]:
            try:
                known = label is _NO_LABEL or label in self.transforms
            except TypeError:  # an unhashable label
                known = False
            if not known:
                unknown.setdefault(repr(label), []).append(p)
        first = _first_mismatch(labels, target, "the labels tree")
        if uncovered or stray or unknown or first:
            lines = [f"{call}: every parameter needs a label and every label a transformation"]
            if uncovered:
                lines.append(f"parameters without a label: {_paths(uncovered)}")
            if unknown:
                text = ", ".join(f"{label} (at {_paths(where)})" for label, where in unknown.items())
                lines.append(f"labels without a transformation: {text}")
            if stray:
                lines.append(f"labels at no parameter: {_paths(stray)}")
            lines.append(f"transformations are given for: {', '.join(repr(k) for k in self.transforms) or 'none'}")
            if first:
                lines.append(f"first difference: {first}")
            raise ValueError(";\n  ".join(lines))
        return labels

    def _group(self, label: Any, tx: TransformationLike, labels: Any) -> masked:
        mask = jax.tree.map(lambda x: x is not _NO_LABEL and bool(x == label), labels)
        return masked(tx, mask, mask_compatible_extra_args=self.mask_compatible_extra_args)

    def init(self, params: Params) -> PartitionState:
        if _is_params_marker(params):
            return PartitionState(inner_states={k: MaskedState(tx.init(params)) for k, tx in self.transforms.items()})
        labels = self._labels_for(params, "partition.init")
        return PartitionState(
            inner_states={k: self._group(k, tx, labels).init(params) for k, tx in self.transforms.items()}
        )

    def update(
        self, updates: Updates, state: PartitionState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, PartitionState]:
        have, want = list(state.inner_states), list(self.transforms)
        if sorted(map(repr, have)) != sorted(map(repr, want)):
            raise TypeError(f"partition.update: the state has labels {have} but the transformations are for {want}")
        labels = self._labels_for(updates, "partition.update")
        inner_states = {}
        for k, tx in self.transforms.items():
            updates, inner_states[k] = self._group(k, tx, labels).update(
                updates, state.inner_states[k], params, **extra
            )
        return updates, PartitionState(inner_states=inner_states)


multi_transform = partition  # Optax's older name, the same class


@pytree_class
class freeze(_Combinator):
    """Zero the updates where ``mask`` is True (those parameters stay constant): ``masked(set_to_zero(), mask)``.

    ``u = 0`` where the mask is True, ``u = g`` elsewhere. Place it after the optimizer (``chain(adam(1e-3),
    freeze(mask))``) to keep parameters fixed; the optimizer still keeps state for them (use
    :class:`selective_transform` to spare that memory). Optax's ``freeze``.

    Args:
      mask: a boolean (freeze everything or nothing), a tree of booleans (a prefix of the params), or a
        callable params -> such a tree. True freezes.

    Returns:
      A ``GradientTransformation`` whose state is ``MaskedState(inner_state=EmptyState())``, as Optax's.

    Raises:
      InvalidValue: (a ``ValueError``) ``mask`` holds something other than booleans (``freeze(mask=...): mask
        must be a boolean, a tree of booleans (a prefix of the params) or a callable``).
      ValueError: in ``init`` or ``update``, the mask is not a prefix of the params' tree.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.freeze({"w": False, "b": True})
      >>> params = {"w": jnp.zeros(2), "b": jnp.zeros(1)}
      >>> updates, state = tx.update({"w": jnp.array([1.0, 2.0]), "b": jnp.array([3.0])}, tx.init(params))
      >>> print(updates["w"], updates["b"])
      [1. 2.] [0.]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "its mask is written for the parameter tree"

    mask: MaskOrFn = option(accepts=_MASK, static=True)

    def __check_init__(self) -> None:
        _check_mask(self, "mask")

    def _masked(self) -> masked:
        return masked(set_to_zero(), self.mask)

    def init(self, params: Params) -> MaskedState:
        return self._masked().init(params)

    def update(
        self, updates: Updates, state: MaskedState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, MaskedState]:
        return self._masked().update(updates, state, params, **extra)


@pytree_class
class selective_transform(_Combinator):
    """Run ``optimizer`` on the parameters ``freeze_mask`` leaves trainable (False) and zero the frozen ones.

    ``partition({"train": optimizer, "freeze": set_to_zero()}, labels)`` with ``labels`` "freeze" where
    ``freeze_mask`` is True and "train" elsewhere; the state is that partition's, so the optimizer keeps no
    state for frozen parameters (unlike ``chain(optimizer, freeze(mask))``). Optax's ``selective_transform``.

    Args:
      optimizer: the transformation for the trainable parameters (anything with ``init`` and ``update``).
      freeze_mask: a boolean or a tree of booleans (a prefix of the params); True freezes (keyword-only, no
        callable).

    Returns:
      A ``GradientTransformation`` whose state is ``PartitionState`` with labels ``"freeze"`` and ``"train"``.

    Raises:
      TypeError: ``optimizer`` has no ``init`` and ``update``.
      InvalidValue: (a ``ValueError``) ``freeze_mask`` is a callable or holds something other than booleans
        (``selective_transform(freeze_mask=...): freeze_mask must be a boolean or a tree of booleans, not a
        callable``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.selective_transform(gradtx.sgd(0.1), freeze_mask={"w": False, "b": True})
      >>> params = {"w": jnp.zeros(2), "b": jnp.zeros(1)}
      >>> updates, state = tx.update({"w": jnp.array([1.0, 2.0]), "b": jnp.array([3.0])}, tx.init(params))
      >>> print(updates["w"], updates["b"])
      [-0.1 -0.2] [0.]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "its selection is written for the parameter tree"

    optimizer: TransformationLike = option(accepts=_TRANSFORMATION)
    freeze_mask: PyTree = option(accepts="a boolean or a tree of booleans (a prefix of the params)", static=True,
                              kw_only=True)

    def __check_init__(self) -> None:
        object.__setattr__(self, "optimizer", as_transformation(self.optimizer, "selective_transform"))
        _check_mask(self, "freeze_mask", allow_fn=False)

    def _partition(self) -> partition:
        call = "selective_transform"
        labels = jax.tree.map(lambda m: "freeze" if _truth(m, call) else "train", _unfreeze(self.freeze_mask))
        return partition({"train": self.optimizer, "freeze": set_to_zero()}, labels)

    def init(self, params: Params) -> PartitionState:
        return self._partition().init(params)

    def update(
        self, updates: Updates, state: PartitionState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, PartitionState]:
        return self._partition().update(updates, state, params, **extra)


def _condition(fn: Callable[..., Any], step: jax.Array, kwargs: dict[str, Any], call: str) -> jax.Array:
    pred = jnp.asarray(fn(step, **kwargs))
    if pred.shape != ():
        raise TypeError(f"{call}: should_transform_fn must return a scalar boolean, got shape {pred.shape}")
    return pred.astype(bool)


@pytree_class
class _conditional(_Combinator):
    """What :class:`conditionally_transform` and :class:`conditionally_mask` share: their fields, and an ``update``
    that applies ``inner`` when ``should_transform_fn(step)`` is True and ``_skipped(updates)`` otherwise (the
    choice a ``lax.cond``), with the state class ``_state`` (fields ``step`` and ``inner_state``)."""

    inner: TransformationLike = option(accepts=_TRANSFORMATION)
    should_transform_fn: Callable[..., ArrayLike] = function()
    forward_extra_args: bool = flag(default=False)

    # Class attributes, not fields: the state class, and the updates when inner does not run.
    _state: ClassVar[Callable[..., ConditionallyTransformState | ConditionallyMaskState]]

    if TYPE_CHECKING:  # a staticmethod in each subclass (mypy would bind a ClassVar callable to the instance)

        @staticmethod
        def _skipped(updates: Updates, /) -> Updates: ...

    def __check_init__(self) -> None:
        object.__setattr__(self, "inner", as_transformation(self.inner, type(self).__name__))

    def init(self, params: Params) -> ConditionallyTransformState | ConditionallyMaskState:
        return self._state(step=zero_count(), inner_state=self.inner.init(params))

    def update(
        self, updates: Updates, state: Any, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ConditionallyTransformState | ConditionallyMaskState]:
        kwargs = extra if self.forward_extra_args else {}
        pred = _condition(self.should_transform_fn, state.step, kwargs, f"{type(self).__name__}.update")
        new, inner_state = jax.lax.cond(
            pred,
            lambda: self.inner.update(updates, state.inner_state, params, **extra),
            lambda: (self._skipped(updates), state.inner_state),
        )
        return new, self._state(step=safe_int32_increment(state.step), inner_state=inner_state)


# The docstring passage of the two conditional combinators (filled in by fill_doc).
_CONDITIONAL_DOC = """
``step`` counts the previous ``update`` calls (int32, from 0, saturating), whether or not ``inner`` ran.
The choice is a ``lax.cond``, so it is jit-safe. With ``forward_extra_args`` the extra keyword arguments
are passed to ``should_transform_fn`` too; ``inner`` always receives them. ``inner`` must keep the dtypes
of the updates and of its state (both branches of the ``cond`` must agree).

Args:
  inner: the transformation to apply at the selected steps (anything with ``init`` and ``update``).
  should_transform_fn: ``fn(step) -> bool`` (``fn(step, **extra_args)`` with ``forward_extra_args``; see
    :class:`~gradtx.base.ConditionFn`): a scalar boolean, possibly traced. Static (compared by identity).
  forward_extra_args: pass the extra keyword arguments of ``update`` to ``should_transform_fn``.
    Default False.
"""

_CONDITIONAL_RAISES = """
Raises:
  TypeError: ``inner`` has no ``init`` and ``update``; or, in ``update``, ``should_transform_fn`` returns a
    non-scalar (``conditionally_transform.update: should_transform_fn must return a scalar boolean, got
    shape (2,)``).
  InvalidType: (a ``TypeError``) ``should_transform_fn`` or ``forward_extra_args`` has the wrong type
    (``conditionally_transform(should_transform_fn=3): should_transform_fn must be a callable, not int``).
"""


@pytree_class
@fill_doc(conditional=_CONDITIONAL_DOC, raises=_CONDITIONAL_RAISES)
class conditionally_transform(_conditional):
    """Apply ``inner`` when ``should_transform_fn(step)`` is True; otherwise updates and inner state pass through.

    ``u = inner(g)`` at the steps where the condition holds, ``u = g`` (and the inner state unchanged) at the
    others. Optax's ``conditionally_transform``, the same state.

    {conditional}

    Returns:
      A ``GradientTransformation`` whose state is ``ConditionallyTransformState(inner_state, step)``.

    {raises}

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.conditionally_transform(gradtx.scale(10.0), lambda step: step % 2 == 0)
      >>> state = tx.init(jnp.zeros(2))
      >>> first, state = tx.update(jnp.ones(2), state)
      >>> second, state = tx.update(jnp.ones(2), state)
      >>> print(first, second, state.step)
      [10. 10.] [1. 1.] 2
    """

    _state = ConditionallyTransformState
    _skipped = staticmethod(lambda updates: updates)

    if TYPE_CHECKING:

        def init(self, params: Params) -> ConditionallyTransformState: ...

        def update(
            self, updates: Updates, state: ConditionallyTransformState, params: Params | None = None, **extra: Any
        ) -> tuple[Updates, ConditionallyTransformState]: ...


@pytree_class
@fill_doc(conditional=_CONDITIONAL_DOC, raises=_CONDITIONAL_RAISES)
class conditionally_mask(_conditional):
    """Apply ``inner`` when ``should_transform_fn(step)`` is True; otherwise zero updates, inner state kept.

    ``u = inner(g)`` at the steps where the condition holds, ``u = 0`` (and the inner state unchanged) at the
    others: the parameters do not move on those steps. Optax's ``conditionally_mask``, the same state.

    {conditional}

    Returns:
      A ``GradientTransformation`` whose state is ``ConditionallyMaskState(step, inner_state)``.

    {raises}

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.conditionally_mask(gradtx.scale(-1.0), lambda step: step % 2 == 0)
      >>> state = tx.init(jnp.zeros(2))
      >>> first, state = tx.update(jnp.ones(2), state)
      >>> second, state = tx.update(jnp.ones(2), state)
      >>> print(first, second, state.step)
      [-1. -1.] [0. 0.] 2
    """

    _state = ConditionallyMaskState
    _skipped = staticmethod(tree.zeros_like)

    if TYPE_CHECKING:

        def init(self, params: Params) -> ConditionallyMaskState: ...

        def update(
            self, updates: Updates, state: ConditionallyMaskState, params: Params | None = None, **extra: Any
        ) -> tuple[Updates, ConditionallyMaskState]: ...
