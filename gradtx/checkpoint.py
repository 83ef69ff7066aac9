"""Named optimizer state and checkpoints: ``state_dict``, ``load_state_dict``, ``save_state``, ``load_state``.

``state_dict(state)`` flattens any pytree (an optimizer state, the parameters, both in a dict) into a flat
``{key: array}`` dict, in the order JAX flattens the tree. A key is the path to the leaf, one name per
level, joined with ``"/"``::

    tuple or list entry (a chain's blocks)        its position: "0", "1", ...
    dict entry (named_chain, partition labels,    the key, str(key): "adam", "w"
      parameter dicts)
    NamedTuple field, gradtx dataclass field      the field name: "mu", "inner_state"
    other pytree node without key names           the position among its children: "0", "1", ...

A ``"/"`` or ``"%"`` inside a name is written ``"%2F"`` or ``"%25"``, so ``"/"`` only separates levels; the
leaf of a tree that is a single array has the key ``""``. Examples: ``adam(1e-3).init({"w": w, "b": b})`` gives
``"0/count"``, ``"0/mu/b"``, ``"0/mu/w"``, ``"0/nu/b"``, ``"0/nu/w"``; a ``named_chain(("adam", ...), ...)``
gives ``"adam/nu/b"``; ``partition({"a": adam(1e-3), "s": sgd(0.1)}, labels)`` gives
``"inner_states/a/inner_state/0/mu/w"``. Keys depend only on the tree's structure (never on object ids or the
process), so they are the same under ``jit``, across processes and for a freshly built optimizer. Empty nodes
(``EmptyState()``, ``None``, masked-out parameters) have no leaves and no keys.

Values are the leaves themselves (``jax.Array``s stay on their devices; nothing is copied to the host), except
typed PRNG keys (``jax.random.key``), which are stored as their key data (``jax.random.key_data``, uint32) and
rewrapped with the template's implementation on load, and Python or NumPy scalars, stored as 0-d NumPy arrays.

``load_state_dict(template_state, mapping, strict=True)`` puts the values back into the structure of
``template_state`` (what a freshly built optimizer's ``init`` returns; a tree of ``jax.ShapeDtypeStruct`` from
``jax.eval_shape`` works too) and returns ``LoadedState(state, missing_keys, unexpected_keys)``, a NamedTuple
in both modes, like the ``(missing_keys, unexpected_keys)`` pair PyTorch's ``Module.load_state_dict`` returns
(here the state is returned rather than loaded in place, as JAX arrays are immutable). Rules:

- ``strict=True``: every key of the template must be in ``mapping`` and every key of ``mapping`` in the
  template; otherwise one ``ValueError`` names them all: ``load_state_dict: missing keys [...]; unexpected
  keys [...]``. The two lists of the returned ``LoadedState`` are then empty.
- ``strict=False``: the leaves found in ``mapping`` are restored, the others keep the template's values, and
  the keys on either side without a partner are listed in ``missing_keys`` and ``unexpected_keys``.
- In both modes a value whose shape or dtype differs from the template's leaf is an error naming the key, the
  saved and the expected shape and dtype (as PyTorch does for shapes): nothing is cast or reshaped silently.
  Dtypes are kept exactly (bfloat16 included).
- Placement: a restored leaf takes the sharding of the template's leaf (``jax.device_put(value,
  template.sharding)``); NumPy template leaves give NumPy arrays, Python scalars give Python scalars.
  ``load_state_dict`` copies, so the restored state shares no buffer with ``mapping`` (donating it is safe).
  Nothing passed in is modified.

Files: ``save_state(path, state)`` writes NumPy's ``.npz`` (the path is used as given, ``".npz"`` is not
appended; the file is written to a temporary name and renamed, so an interrupted save never leaves a truncated
checkpoint; an existing path is an error unless ``overwrite=True``). Every ``state_dict`` key is an entry of the
archive, so ``numpy.load(path)["0/mu/w"]`` reads one array; dtypes NumPy cannot store natively (bfloat16 and the
other ``ml_dtypes`` types) are stored as unsigned integers of the same width, and an entry ``"__gradtx__"`` (a
JSON string) records their dtype names. ``save_state(path, state, format="orbax")`` writes an Orbax checkpoint
directory (the optional extra: ``pip install 'gradtx[checkpoint]'``) holding the same flat mapping plus an entry
``"__gradtx__"`` (the format version); Orbax keeps dtypes natively and is the format to use when arrays span
several processes (``.npz`` needs every array addressable from this process). ``load_state(path,
template_state, strict=True)`` reads either (a directory is Orbax, a file ``.npz``; a plain ``numpy.savez(path,
**state_dict(state))`` file too) and returns a ``LoadedState`` as ``load_state_dict`` does; Orbax restores each
matching array directly with the template leaf's sharding.

This module imports no other gradtx module: it works on any pytree (gradtx's states, Optax's, parameters).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["LoadedState", "load_state", "load_state_dict", "save_state", "state_dict"]

_META = "__gradtx__"  # the metadata entry of a checkpoint (JSON in .npz, the format version in Orbax)
_VERSION = 1
_FORMATS = ("npz", "orbax")


class LoadedState(NamedTuple):
    """What ``load_state_dict`` and ``load_state`` return.

    ``state``: the restored tree, with the template's structure; ``missing_keys``: template keys absent from
    the mapping (kept at the template's values); ``unexpected_keys``: mapping keys the template lacks (ignored).
    Both lists are empty after a successful ``strict=True`` load.
    """

    state: Any
    missing_keys: list[str]
    unexpected_keys: list[str]


# --------------------------------------------------------------------------------------------------
# Keys.
# --------------------------------------------------------------------------------------------------


def _escape(name: str) -> str:
    return name.replace("%", "%25").replace("/", "%2F")


def _entry_name(entry: Any) -> str:
    if isinstance(entry, jax.tree_util.SequenceKey):
        return str(entry.idx)
    if isinstance(entry, jax.tree_util.DictKey):
        return _escape(str(entry.key))
    if isinstance(entry, jax.tree_util.GetAttrKey):
        return _escape(entry.name)
    if isinstance(entry, jax.tree_util.FlattenedIndexKey):
        return str(entry.key)
    return _escape(str(entry))


def _key(path: tuple[Any, ...]) -> str:
    return "/".join(_entry_name(e) for e in path)


def _flatten(tree_: Any, call: str) -> tuple[list[str], list[Any], Any]:
    """The keys and leaves of ``tree_`` in flattening order, and its treedef; duplicate keys are an error."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree_)
    keys = [_key(p) for p, _ in flat]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(
            f"{call}: several leaves have the same key {dup}: the tree has dict keys whose str() coincide "
            "(for example 1 and '1')"
        )
    return keys, [leaf for _, leaf in flat], treedef


# --------------------------------------------------------------------------------------------------
# Values.
# --------------------------------------------------------------------------------------------------


def is_typed_key(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def _is_array_like(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct))


def _stored(leaf: Any) -> Any:
    """A leaf as ``state_dict`` stores it: arrays as they are, typed keys as key data, scalars as NumPy 0-d."""
    if is_typed_key(leaf):
        return jax.random.key_data(leaf)
    if isinstance(leaf, (jax.Array, np.ndarray)):
        return leaf
    return np.asarray(leaf)


def _shape_dtype(x: Any) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype ``x`` is stored with (a typed key's key data; a template ``ShapeDtypeStruct``)."""
    if is_typed_key(x):
        sds = jax.eval_shape(jax.random.key_data, x)
        return tuple(sds.shape), np.dtype(sds.dtype)
    if isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct, np.generic)):
        return tuple(x.shape), np.dtype(x.dtype)
    a = np.asarray(x)
    return tuple(a.shape), a.dtype


def _key_impl(template: Any) -> Any:
    if isinstance(template, jax.Array):
        return jax.random.key_impl(template)
    impl = getattr(template.dtype, "_impl", None)  # a ShapeDtypeStruct of keys: JAX has no public accessor
    if impl is None:  # pragma: no cover - depends on JAX internals
        raise TypeError(f"cannot read the PRNG implementation of the template leaf {template!r}")
    return impl


def _sharding(template: Any) -> Any:
    if isinstance(template, (jax.Array, jax.ShapeDtypeStruct)):
        return getattr(template, "sharding", None)
    return None


def _place(value: Any, template: Any, copy: bool) -> Any:
    """``value`` (already checked for shape and dtype) as a leaf like ``template``."""
    if is_typed_key(value):
        value = jax.random.key_data(value)
    if is_typed_key(template):
        data = jnp.array(value, copy=True) if copy else jnp.asarray(value)
        keys = jax.random.wrap_key_data(data, impl=_key_impl(template))
        sharding = _sharding(template)
        return keys if sharding is None else jax.device_put(keys, sharding)
    if isinstance(template, (jax.Array, jax.ShapeDtypeStruct)):
        sharding = _sharding(template)
        if sharding is None:
            return jnp.array(value, copy=True) if copy else jnp.asarray(value)
        return jax.device_put(value, sharding, may_alias=False if copy else None)
    if isinstance(template, np.ndarray):
        return np.array(value, copy=True)
    if isinstance(template, np.generic):
        return np.asarray(value)[()]
    if isinstance(template, (bool, int, float, complex)):
        return type(template)(np.asarray(value).item())
    return np.array(value, copy=True)


def _restore(template_state: Any, mapping: Mapping[str, Any], strict: bool, copy: bool, call: str) -> LoadedState:
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{call}: expected a mapping {{key: array}} (as state_dict returns), got {type(mapping)}")
    if not isinstance(strict, bool):
        raise TypeError(f"{call}: strict must be a bool, got {strict!r}")
    keys, leaves, treedef = _flatten(template_state, call)
    known = set(keys)
    missing = [k for k in keys if k not in mapping]
    unexpected = [k for k in mapping if k not in known]
    mismatched = []
    new_leaves = []
    for k, template in zip(keys, leaves):
        if k not in mapping:
            new_leaves.append(template)
            continue
        value = mapping[k]
        saved, expected = _shape_dtype(value), _shape_dtype(template)
        if saved != expected:
            what = "key data " if is_typed_key(template) else ""
            mismatched.append(
                f"{k!r}: saved shape {saved[0]} dtype {saved[1].name}, expected {what}shape {expected[0]} "
                f"dtype {expected[1].name}"
            )
            continue
        new_leaves.append(_place(value, template, copy))
    problems = []
    if strict and (missing or unexpected):
        problems.append(f"missing keys {missing}; unexpected keys {unexpected}")
    if mismatched:
        problems.append("shape or dtype mismatch for " + ", ".join(mismatched))
    if problems:
        raise ValueError(f"{call}: " + "; ".join(problems))
    return LoadedState(jax.tree_util.tree_unflatten(treedef, new_leaves), missing, unexpected)


# --------------------------------------------------------------------------------------------------
# The public functions.
# --------------------------------------------------------------------------------------------------


def state_dict(state: Any) -> dict[str, Any]:
    """A flat ``{key: array}`` dict of the leaves of ``state`` (any pytree), keys as the module docstring says.

    Works inside ``jit`` too (the keys depend only on the structure). Typed PRNG keys become their key data.
    """
    keys, leaves, _ = _flatten(state, "state_dict")
    return {k: _stored(leaf) for k, leaf in zip(keys, leaves)}


def load_state_dict(template_state: Any, mapping: Mapping[str, Any], strict: bool = True) -> LoadedState:
    """Restore ``mapping`` (from :func:`state_dict`) into the structure of ``template_state``.

    Returns ``LoadedState(state, missing_keys, unexpected_keys)``. ``strict=True`` raises one ``ValueError``
    naming every missing and unexpected key; ``strict=False`` keeps the template's values for missing keys and
    reports both lists. A shape or dtype mismatch is a ``ValueError`` in both modes. Restored arrays are copies
    placed with the template leaf's sharding; typed PRNG keys are rewrapped with the template's implementation.
    """
    return _restore(template_state, mapping, strict, copy=True, call="load_state_dict")


def _native(dtype: np.dtype) -> bool:
    """Whether ``.npz`` stores ``dtype`` as itself (NumPy's own types, not ``ml_dtypes`` extensions)."""
    return dtype.isbuiltin == 1 and dtype.kind in "biufc"


def _check_format(call: str, fmt: Any) -> None:
    if fmt not in _FORMATS:
        raise ValueError(f"{call}(format={fmt!r}): format must be one of {', '.join(repr(f) for f in _FORMATS)}")


def _orbax(call: str) -> Any:
    try:
        import orbax.checkpoint as ocp
    except ImportError as e:
        raise ImportError(f"{call}(format='orbax') needs orbax-checkpoint: pip install 'gradtx[checkpoint]'") from e
    return ocp


def save_state(path: str | os.PathLike[str], state: Any, *, format: str = "npz", overwrite: bool = False) -> None:  # noqa: A002
    """Write ``state_dict(state)`` to ``path``: a ``.npz`` file (``format="npz"``) or an Orbax directory.

    ``state`` is any pytree (an optimizer state, or ``{"params": params, "opt_state": opt_state}``). An
    existing ``path`` is an error unless ``overwrite=True`` (then it is replaced; for ``.npz`` atomically).
    ``format="orbax"`` needs the optional extra ``gradtx[checkpoint]``.
    """
    _check_format("save_state", format)
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"save_state: {path!r} exists; pass overwrite=True to replace it")
    mapping = state_dict(state)
    if _META in mapping:
        raise ValueError(f"save_state: the key {_META!r} is reserved for the file's metadata")
    if format == "orbax":
        ocp = _orbax("save_state")
        tree_ = {**mapping, _META: np.asarray(_VERSION, np.int32)}  # also keeps an empty state a non-empty tree
        ocp.PyTreeCheckpointer().save(os.path.abspath(path), args=ocp.args.PyTreeSave(tree_), force=overwrite)
        return
    arrays: dict[str, Any] = {}
    dtypes: dict[str, str] = {}
    for k, v in mapping.items():
        a = np.asarray(jax.device_get(v))
        if not _native(a.dtype):
            dtypes[k] = a.dtype.name
            a = a.view(np.dtype(f"u{a.dtype.itemsize}"))
        arrays[k] = a
    meta = {"format": "gradtx.state_dict", "version": _VERSION, "dtypes": dtypes}
    arrays[_META] = np.asarray(json.dumps(meta))
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".gradtx-", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _read_npz(path: str) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as archive:
        names = list(archive.keys())
        meta = json.loads(str(archive[_META])) if _META in names else {"dtypes": {}}
        mapping = {}
        for k in names:
            if k == _META:
                continue
            a = archive[k]
            if k in meta["dtypes"]:
                a = a.view(jnp.dtype(meta["dtypes"][k]))
            mapping[k] = a
    return mapping


def _read_orbax(path: str, template_state: Any) -> dict[str, Any]:
    ocp = _orbax("load_state")
    checkpointer = ocp.PyTreeCheckpointer()
    path = os.path.abspath(path)
    metadata = checkpointer.metadata(path)
    saved = getattr(metadata, "item_metadata", metadata)
    saved = getattr(saved, "tree", saved)
    keys, leaves, _ = _flatten(template_state, "load_state")
    templates = dict(zip(keys, leaves))
    restore_args = {}
    for k, meta in saved.items():
        t = templates.get(k)
        here = (tuple(meta.shape), np.dtype(meta.dtype))
        if t is not None and not is_typed_key(t) and _sharding(t) is not None and _shape_dtype(t) == here:
            restore_args[k] = ocp.ArrayRestoreArgs(sharding=_sharding(t), global_shape=here[0], dtype=here[1])
        else:  # an unexpected or mismatched key, a key array or a host leaf: to NumPy, checked by _restore
            restore_args[k] = ocp.RestoreArgs(restore_type=np.ndarray)
    restored = checkpointer.restore(path, args=ocp.args.PyTreeRestore(restore_args=restore_args))
    return {k: v for k, v in restored.items() if k != _META}


def load_state(
    path: str | os.PathLike[str],
    template_state: Any,
    strict: bool = True,
    *,
    format: str | None = None,  # noqa: A002
) -> LoadedState:
    """Read a checkpoint written by :func:`save_state` into the structure of ``template_state``.

    ``format``: ``"npz"``, ``"orbax"`` or ``None`` (a directory is Orbax, a file ``.npz``). A plain
    ``numpy.savez(path, **state_dict(state))`` file reads too. Returns ``LoadedState(state, missing_keys,
    unexpected_keys)`` with the rules of :func:`load_state_dict` (errors name ``load_state``).
    """
    path = os.fspath(path)
    if format is None:
        format = "orbax" if os.path.isdir(path) else "npz"  # noqa: A001
    _check_format("load_state", format)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_state: no checkpoint at {path!r}")
    mapping = _read_orbax(path, template_state) if format == "orbax" else _read_npz(path)
    return _restore(template_state, mapping, strict, copy=False, call="load_state")
