"""Structural checks at the boundary of every transformation: no silent reshaping, no foreign state.

Every gradtx transformation's ``init`` and ``update`` go through these checks (``GradientTransformation``
installs them on each subclass). They run at trace time, on shapes and dtypes only, and cost nothing in a
compiled step.

``update(updates, state, params)`` (the outermost gradtx call only; the blocks inside it are covered by the
same check):

- the state must be the one ``init`` makes for these parameters (``jax.eval_shape`` of ``init`` on
  ``params``, or on ``updates`` when no params are given): the same containers and state types (an
  SGD-momentum ``TraceState`` given to Adam is refused, naming both types), the same leaf shapes, and no
  complex leaf where init makes a real one (or the reverse). A stateless transformation accepts any state, as
  Optax's do;
- with ``params``, every update leaf has its parameter's shape (``(2, 3)`` against ``(3,)`` is refused, not
  broadcast), unless the class says its params are another tree (``params_like_updates = False``: lookahead);
- the new state keeps the received state's shapes and dtypes (a transformation never reshapes or promotes its
  state).

``init(params)`` of a block that computes on the parameters (a transformation with no inner transformation,
other than those documented to pass integers through: ``identity``, ``set_to_zero``, ``stateless``) refuses
integer and boolean parameter arrays, naming the path: their update would be cast back to an integer and the
parameter would never move. (Python ``int`` leaves are weakly typed and pass, as in Optax.)

Every error names the call (``scale_by_adam.update``), the tree path, the expected and the received
shape, dtype or type.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, cast

import jax
import numpy as np

__all__ = ["StructureError", "check_apply_updates", "checked_init", "checked_update"]


class StructureError(TypeError, ValueError):
    """A tree given to a transformation does not match what it expects (shape, dtype kind, container, state type).

    It is both a ``TypeError`` (what JAX raises for mismatched trees) and a ``ValueError`` (what it raises for
    incompatible shapes), so existing ``except`` clauses keep working.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.adam(0.1)
      >>> state = tx.init({"w": jnp.ones(3)})
      >>> try:
      ...     tx.update({"w": jnp.ones((2, 3))}, state, {"w": jnp.ones(3)})
      ... except gradtx.StructureError as e:
      ...     print(e)
      chain.update: updates['w'] has shape (2, 3), but params['w'] has shape (3,)
    """


_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("gradtx_update_checked", default=False)
_CACHE: OrderedDict[Any, Any] = OrderedDict()
_CACHE_SIZE = 512
_NEEDS_CONCRETE = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)


def _is_none(x: Any) -> bool:
    return x is None


def _path(prefix: str, path: tuple[Any, ...]) -> str:
    return prefix + jax.tree_util.keystr(path)


def _shape(x: Any) -> tuple[int, ...] | None:
    shape = getattr(x, "shape", None)
    if shape is not None:
        return tuple(shape)
    if isinstance(x, (bool, int, float, complex, np.generic)):
        return ()
    return None


def _dtype(x: Any) -> np.dtype | None:
    """The dtype of an array leaf; ``None`` for Python numbers (weakly typed) and other objects."""
    dtype = getattr(x, "dtype", None)
    if dtype is None or isinstance(x, (bool, int, float, complex)):
        return None
    try:
        return cast(np.dtype, np.dtype(dtype))
    except TypeError:
        return None  # a typed PRNG key and other extended dtypes: compared by shape only


def _kind(dtype: np.dtype | None) -> str | None:
    if dtype is None:
        return None
    if np.issubdtype(dtype, np.complexfloating):
        return "complex"
    if np.issubdtype(dtype, np.floating) or dtype.name == "bfloat16" or "float8" in dtype.name:
        return "real floating"
    if dtype == np.bool_:
        return "boolean"
    if np.issubdtype(dtype, np.integer):
        return "integer"
    return cast(str, dtype.name)


def _leaf_key(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, (bool, int, float, complex)):
        return (type(x), x)
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError("uncacheable leaf")
    return (tuple(shape), str(dtype), bool(getattr(x, "weak_type", False)))


def _signature(tree: Any) -> Any:
    leaves, treedef = jax.tree_util.tree_flatten(tree, is_leaf=_is_none)
    return treedef, tuple(_leaf_key(x) for x in leaves)


def _skeleton(x: Any, depth: int = 0) -> str:
    """The container types of a state, e.g. ``(ScaleByAdamState, EmptyState)``."""
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x).__name__
    if isinstance(x, (tuple, list)) and depth < 3:
        inner = ", ".join(_skeleton(c, depth + 1) for c in x)
        return f"({inner})" if isinstance(x, tuple) else f"[{inner}]"
    if isinstance(x, dict):
        return "dict"
    if x is None:
        return "None"
    if _shape(x) is not None:
        return "array"
    return type(x).__name__


def _expected_state(tx: Any, init: Callable[..., Any], tree: Any) -> Any:
    """``jax.eval_shape(init, tree)``, cached on the transformation's and the tree's signature."""
    try:
        key = (type(tx), _signature(tx), _signature(tree))
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    token = _ACTIVE.set(True)  # the inits inside are not checked again
    try:
        expected = jax.eval_shape(functools.partial(init, tx), tree)
    finally:
        _ACTIVE.reset(token)
    if key is not None:
        _CACHE[key] = expected
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return expected


def _first_structure_difference(expected: Any, got: Any) -> tuple[str, tuple[Any, ...]]:
    """A sentence naming the first leaf where ``got`` departs from ``expected``, and that leaf's key path."""
    fe = [p for p, _ in jax.tree_util.tree_flatten_with_path(expected, is_leaf=_is_none)[0]]
    fg = [p for p, _ in jax.tree_util.tree_flatten_with_path(got, is_leaf=_is_none)[0]]
    for a, b in zip(fe, fg):
        if a != b:
            ka, kb = jax.tree_util.keystr(a), jax.tree_util.keystr(b)
            return f"first differing path: state{kb} where init makes state{ka}", a
    if len(fe) > len(fg):
        return f"the state lacks state{jax.tree_util.keystr(fe[len(fg)])}", fe[len(fg)]
    if len(fg) > len(fe):
        return f"the state has an extra leaf state{jax.tree_util.keystr(fg[len(fe)])}", fg[len(fe)]
    return "the container types differ", ()


def _contains(path: tuple[Any, ...], sub: tuple[Any, ...]) -> bool:
    k, n = len(sub), len(path)
    return 0 < k <= n and any(tuple(path[i:i + k]) == tuple(sub) for i in range(n - k + 1))


def _culprit(source_tree: Any, expected: Any, state: Any) -> tuple[str, Any, str]:
    """The first ``source_tree`` leaf whose part of the state (the leaves whose key path contains its path)
    differs between ``expected`` and ``state``: its path, the leaf, and a description of the difference;
    ``("", None, "")`` when no leaf explains it."""
    fe = jax.tree_util.tree_flatten_with_path(expected, is_leaf=_is_none)[0]
    fs = jax.tree_util.tree_flatten_with_path(state, is_leaf=_is_none)[0]
    for path, leaf in jax.tree_util.tree_flatten_with_path(source_tree, is_leaf=_is_none)[0]:
        part_e = [(q, _shape(x)) for q, x in fe if _contains(q, path)]
        part_s = [(q, _shape(x)) for q, x in fs if _contains(q, path)]
        if part_e == part_s or not part_e or not part_s:
            continue  # the same, or a leaf one tree lacks: a tree mismatch, not a shape
        for (qe, se), (qs, ss) in zip(part_e, part_s):
            if qe != qs:
                made, has = jax.tree_util.keystr(qe), jax.tree_util.keystr(qs)
                return jax.tree_util.keystr(path), leaf, f"init makes state{made} where the state has state{has}"
            if se != ss:
                return (jax.tree_util.keystr(path), leaf,
                        f"state{jax.tree_util.keystr(qs)} has shape {ss}, but for it init makes shape {se}")
        return jax.tree_util.keystr(path), leaf, "init makes a different number of state leaves for it"
    return "", None, ""


def _check_state(call: str, expected: Any, state: Any, source: str, source_tree: Any = None) -> None:
    if not jax.tree.leaves(expected):
        return  # a stateless transformation ignores its state (Optax's accept None or {} as well)
    te = jax.tree_util.tree_structure(expected, is_leaf=_is_none)
    ts = jax.tree_util.tree_structure(state, is_leaf=_is_none)
    if te != ts:  # type: ignore[operator]  # jaxlib ships no stubs: PyTreeDef is unresolved
        where, _ = _first_structure_difference(expected, state)
        ke, ks = _skeleton(expected), _skeleton(state)
        le, ls = jax.tree.leaves(expected, is_leaf=_is_none), jax.tree.leaves(state, is_leaf=_is_none)
        if ke == ks and len(le) == len(ls) and all(_shape(a) == _shape(b) for a, b in zip(le, ls)):
            return  # the same leaves in containers of other types (a list for a tuple: Flax NNX's state)
        leaf_path, leaf, why = _culprit(source_tree, expected, state) if ke == ks else ("", None, "")
        if leaf_path:  # the same state types, laid out for a leaf of another shape
            raise StructureError(
                f"{call}: {source}{leaf_path} (shape {_shape(leaf)}) does not have the shape of the parameter the "
                f"state was made for: {why}"
            )
        if ke == ks:  # the same state types, made for another tree
            raise StructureError(
                f"{call}: the {source} tree does not match the tree the state was made for ({where})"
            )
        raise StructureError(
            f"{call}: the state is not one this transformation's init makes: expected a state of type {ke}, got "
            f"{ks} ({where}). Pass the state returned by this transformation's init (or by its previous update)."
        )
    flat_e = jax.tree_util.tree_flatten_with_path(expected, is_leaf=_is_none)[0]
    flat_s = jax.tree.leaves(state, is_leaf=_is_none)
    for (path, e), s in zip(flat_e, flat_s):
        if e is None or s is None:
            continue
        es, ss = _shape(e), _shape(s)
        if ss is not None and es is not None and es != ss:
            leaf_path, leaf, why = _culprit(source_tree, expected, state)
            if leaf_path:
                raise StructureError(
                    f"{call}: {source}{leaf_path} (shape {_shape(leaf)}) does not have the shape of the parameter "
                    f"the state was made for: {why}"
                )
            raise StructureError(
                f"{call}: state{jax.tree_util.keystr(path)} has shape {ss}, but for the {source} given, init "
                f"makes shape {es}"
            )
        ek, sk = _kind(_dtype(e)), _kind(_dtype(s))
        if ek is not None and sk is not None and ek != sk and "complex" in (ek, sk):
            raise StructureError(
                f"{call}: state{jax.tree_util.keystr(path)} has dtype {_dtype(s)}, but for the {source} given, init "
                f"makes {_dtype(e)} ({ek}, not {sk})"
            )


def _check_updates_params(call: str, updates: Any, params: Any) -> None:
    tu = jax.tree_util.tree_structure(updates, is_leaf=_is_none)
    tp = jax.tree_util.tree_structure(params, is_leaf=_is_none)
    if tu != tp:  # type: ignore[operator]  # jaxlib ships no stubs: PyTreeDef is unresolved
        pu = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(updates, is_leaf=_is_none)[0]]
        pp = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(params, is_leaf=_is_none)[0]]
        where = next((f"updates{a} against params{b}" for a, b in zip(pu, pp) if a != b), None)
        if where is None:
            where = (f"params{pp[len(pu)]} has no update" if len(pp) > len(pu)
                     else f"updates{pu[len(pp)]} has no parameter" if len(pu) > len(pp) else "container types differ")
        raise StructureError(f"{call}: the updates and params trees differ: {where}")
    for path, us, ps in _shape_mismatches(updates, params):
        raise StructureError(f"{call}: updates{path} has shape {us}, but params{path} has shape {ps}")


def _shape_mismatches(first: Any, second: Any) -> Any:
    """``(path, shape in first, shape in second)`` for each pair of leaves (same trees) whose shapes differ."""
    flat = jax.tree_util.tree_flatten_with_path(first, is_leaf=_is_none)[0]
    for (path, x), y in zip(flat, jax.tree.leaves(second, is_leaf=_is_none)):
        sx, sy = _shape(x), _shape(y)
        if sx is not None and sy is not None and sx != sy:
            yield jax.tree_util.keystr(path), sx, sy


def _check_new_state(call: str, old: Any, new: Any) -> None:
    t_old = jax.tree_util.tree_structure(old, is_leaf=_is_none)
    t_new = jax.tree_util.tree_structure(new, is_leaf=_is_none)
    if t_old != t_new:  # type: ignore[operator]  # jaxlib ships no stubs: PyTreeDef is unresolved
        return  # a foreign transformation's state may change containers (None placeholders filled in)
    for path, old_shape, new_shape in _shape_mismatches(old, new):
        raise StructureError(
            f"{call}: the update would change state{path} from shape {old_shape} to {new_shape}: "
            "the updates do not have the shapes of the parameters the state was made for"
        )


def _takes_params(fn: Callable[..., Any], nargs: int) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= nargs


def checked_update(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a transformation's ``update`` method with the structural checks of this module."""
    if getattr(fn, "_gradtx_checked", False) or not _takes_params(fn, 3):
        return fn

    @functools.wraps(fn)
    def update(self: Any, updates: Any, state: Any, params: Any = None, **extra: Any) -> Any:
        if _ACTIVE.get():
            return fn(self, updates, state, params, **extra)
        call = f"{type(self).__name__}.update"
        like = _params_like_updates(self)
        if not like and params is None:  # nothing tells the parameters' shapes here: the blocks inside check
            return fn(self, updates, state, params, **extra)
        token = _ACTIVE.set(True)
        try:
            if params is not None and updates is not None and like:
                _check_updates_params(call, updates, params)
            init = type(self).init
            source = "params" if params is not None else "updates"
            try:
                expected = _expected_state(self, init, params if params is not None else updates)
            except _NEEDS_CONCRETE:  # a user's init that reads parameter values: nothing to compare against
                expected = None
            if expected is not None:
                _check_state(call, expected, state, source, params if params is not None else updates)
            out = fn(self, updates, state, params, **extra)
        finally:
            _ACTIVE.reset(token)
        if isinstance(out, tuple) and len(out) == 2:
            _check_new_state(call, state, out[1])
        return out

    update._gradtx_checked = True  # type: ignore[attr-defined]
    return update


def _inner_transformations(tx: Any) -> list[Any]:
    import dataclasses

    if not dataclasses.is_dataclass(tx):
        return []
    out: list[Any] = []
    for f in dataclasses.fields(tx):
        value = getattr(tx, f.name, None)
        values = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else (value,)
        out.extend(v for v in values if hasattr(v, "init") and hasattr(v, "update"))
    return out


def _params_like_updates(tx: Any) -> bool:
    """Whether the updates ``tx`` receives have the parameters' tree and shapes: not when it, or a
    transformation inside it, says otherwise (``params_like_updates = False``: per-example gradients,
    lookahead's pair of parameter trees)."""
    if not getattr(tx, "params_like_updates", True):
        return False
    return all(_params_like_updates(t) for t in _inner_transformations(tx))


def _has_inner_transformation(tx: Any) -> bool:
    import dataclasses

    if not dataclasses.is_dataclass(tx):
        return True  # not a declared block: let it decide
    for f in dataclasses.fields(tx):
        value = getattr(tx, f.name, None)
        values = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else (value,)
        if any(hasattr(v, "init") and hasattr(v, "update") for v in values):
            return True
    return False


def check_numeric_params(call: str, params: Any) -> None:
    """Refuse integer and boolean parameter leaves, naming the first one's path."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(params, is_leaf=_is_none)[0]:
        kind = _kind(_dtype(leaf))
        if kind in ("integer", "boolean"):
            raise StructureError(
                f"{call}: params{jax.tree_util.keystr(path)} has {kind} dtype {_dtype(leaf)}: gradient "
                "transformations update floating-point (or complex) parameters; an integer update would be "
                "cast back and the parameter would never move. Cast it to a float dtype, or keep it out of the "
                "optimizer (gradtx.masked or gradtx.partition with set_to_zero)."
            )


def _is_flat_tree(x: Any) -> bool:
    return type(x).__name__ == "FlatTree" and type(x).__module__ == "gradtx.flat"  # no import: flat is a leaf module


def _holds_flat_tree(tree: Any) -> bool:
    """Whether ``tree`` is, or contains, a ``gradtx.flat.FlatTree``."""
    if _is_flat_tree(tree):
        return True
    return any(_is_flat_tree(x) for x in jax.tree.leaves(tree, is_leaf=_is_flat_tree))


def checked_init(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a block's ``init`` method: integer and boolean parameters are refused (see the module docstring)."""
    if getattr(fn, "_gradtx_checked", False) or not _takes_params(fn, 2):
        return fn

    @functools.wraps(fn)
    def init(self: Any, params: Any, *args: Any, **kwargs: Any) -> Any:
        passes = getattr(self, "passes_integers", None)
        if passes is None:  # decided by kind: a block computes on the leaves, a wrapper hands them on
            passes = _has_inner_transformation(self)
        if not (_ACTIVE.get() or passes):
            check_numeric_params(f"{type(self).__name__}.init", params)
        refusal = getattr(self, "_flat_refusal", None)
        reason = refusal() if refusal is not None else None
        if reason and _holds_flat_tree(params):
            raise StructureError(
                f"{type(self).__name__}.init: the params are a gradtx.flat.FlatTree, but {reason}: on flat buffers "
                "it would not compute its per-leaf result. Pass the parameter tree (gradtx.flat.unpack(params))."
            )
        return fn(self, params, *args, **kwargs)

    init._gradtx_checked = True  # type: ignore[attr-defined]
    return init


def check_apply_updates(params: Any, updates: Any) -> None:
    """The checks of ``apply_updates``: same tree, same shapes, no complex update into a real parameter."""
    _check_updates_params("apply_updates", updates, params)
    flat_p = jax.tree_util.tree_flatten_with_path(params, is_leaf=_is_none)[0]
    for (path, p), u in zip(flat_p, jax.tree.leaves(updates, is_leaf=_is_none)):
        if p is None or u is None:
            continue
        pk, uk = _kind(_dtype(p)), _kind(_dtype(u))
        if uk == "complex" and pk not in (None, "complex"):
            raise StructureError(
                f"apply_updates: updates{jax.tree_util.keystr(path)} is complex ({_dtype(u)}) but "
                f"params{jax.tree_util.keystr(path)} is {pk} ({_dtype(p)}): the imaginary part would be dropped"
            )
