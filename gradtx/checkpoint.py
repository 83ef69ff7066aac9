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

Files: ``save_state(path, state, tx=None)`` writes NumPy's ``.npz`` (the path is used as given, ``".npz"`` is
not appended; the file is written to a temporary name and renamed, so an interrupted save never leaves a truncated
checkpoint; an existing path is an error unless ``overwrite=True``). Every ``state_dict`` key is an entry of the
archive, so ``numpy.load(path)["0/mu/w"]`` reads one array; dtypes NumPy cannot store natively (bfloat16 and the
other ``ml_dtypes`` types) are stored as unsigned integers of the same width. ``format="orbax"`` writes an Orbax
checkpoint directory (the extra ``gradtx[checkpoint]``) holding the same flat mapping; Orbax keeps dtypes and is
the format to use when arrays span several processes (``.npz`` needs every array addressable from this process).
Both hold a reserved entry ``"__gradtx__"``: JSON (a 0-d string array in ``.npz``, its UTF-8 bytes as a uint8
array in Orbax; files before provenance held the int32 format version there) with the format and its version,
the provenance (``gradtx_version``, ``jax_version``, ``optimizer``: ``repr(tx)`` without memory addresses, or
null) and, in ``.npz``, the stored dtype names. ``checkpoint_info(path)`` returns it with every key's shape and
dtype, without loading arrays.

``load_state(path, template_state, strict=True, tx=None)`` reads either (a directory is Orbax, a file ``.npz``;
a plain ``numpy.savez(path, **state_dict(state))`` file too; nothing is unpickled) as ``load_state_dict`` does;
Orbax restores each matching array with the template leaf's sharding. With ``tx`` and ``strict=True`` a checkpoint
recorded for another optimizer is refused. Every load error is a ``CheckpointError`` (a ``ValueError``; a missing
path: ``FileNotFoundError``) naming the call, the path, the format and the problem, chained from its cause.

This module imports no other gradtx module: it works on any pytree (gradtx's states, Optax's, parameters).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np

# This module imports no other gradtx module (tests/test_layers.py): the aliases it annotates with are its own.
PyTree = Any  # a pytree of arrays (gradtx.base.PyTree)
TransformationLike = Any  # anything with init and update (gradtx.base.TransformationLike); only its repr is used

__all__ = [
    "CheckpointError",
    "LoadedState",
    "checkpoint_info",
    "load_state",
    "load_state_dict",
    "save_state",
    "state_dict",
]

_META = "__gradtx__"  # the metadata entry of a checkpoint: JSON (in Orbax as uint8 bytes; before provenance, int32 1)
_VERSION = 1
_FORMATS = ("npz", "orbax")


class LoadedState(NamedTuple):
    """What ``load_state_dict`` and ``load_state`` return.

    Like the ``(missing_keys, unexpected_keys)`` pair of PyTorch's ``Module.load_state_dict``, with the
    restored state first (JAX arrays are immutable, so the state is returned rather than loaded in place).
    Both lists are empty after a successful ``strict=True`` load.

    Attributes:
      state: the restored tree, with the template's structure.
      missing_keys: template keys absent from the mapping (kept at the template's values).
      unexpected_keys: mapping keys the template lacks (ignored).

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.checkpoint import load_state_dict
      >>> loaded = load_state_dict({"w": jnp.zeros(2), "b": jnp.zeros(1)}, {"w": jnp.ones(2)}, strict=False)
      >>> print(loaded.state["w"], loaded.missing_keys, loaded.unexpected_keys)
      [1. 1.] ['b'] []
    """

    state: PyTree
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


def _restore(
    template_state: Any,
    mapping: Mapping[str, Any],
    strict: bool,
    copy: bool,
    call: str,
    where: tuple[str, str] | None = None,
) -> LoadedState:
    """``mapping`` into ``template_state``; ``where`` (path, format): a file's, named in a ``CheckpointError``."""
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
    if problems and where is not None:
        raise CheckpointError(f"{call}: " + "; ".join(problems) + f" (the {where[1]} checkpoint {where[0]!r})", *where)
    if problems:
        raise ValueError(f"{call}: " + "; ".join(problems))
    return LoadedState(jax.tree_util.tree_unflatten(treedef, new_leaves), missing, unexpected)


# --------------------------------------------------------------------------------------------------
# The public functions.
# --------------------------------------------------------------------------------------------------


def state_dict(state: PyTree) -> dict[str, Any]:
    """A flat ``{key: array}`` dict of the leaves of ``state`` (any pytree), keys as the module docstring says.

    A key is the path to the leaf, one name per level joined with ``"/"``: a position (``"0"``) for tuple and
    list entries and nodes without key names, ``str(key)`` for dict entries, the field name for NamedTuple and
    dataclass fields (``"/"`` and ``"%"`` in names escaped as ``"%2F"``, ``"%25"``). Works inside ``jit`` too
    (the keys depend only on the structure). Arrays are the leaves themselves (not copied); typed PRNG keys
    become their key data; Python and NumPy scalars become 0-d NumPy arrays.

    Args:
      state: any pytree: an optimizer state, the parameters, or a dict of both.

    Returns:
      ``{key: array}`` in the order JAX flattens ``state``.

    Raises:
      ValueError: two leaves get the same key (dict keys whose ``str()`` coincide, such as ``1`` and
        ``"1"``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.checkpoint import state_dict
      >>> state = gradtx.adam(0.1).init({"w": jnp.zeros(2), "b": jnp.zeros(1)})
      >>> list(state_dict(state))
      ['0/count', '0/mu/b', '0/mu/w', '0/nu/b', '0/nu/w']
    """
    keys, leaves, _ = _flatten(state, "state_dict")
    return {k: _stored(leaf) for k, leaf in zip(keys, leaves)}


def load_state_dict(template_state: PyTree, mapping: Mapping[str, Any], strict: bool = True) -> LoadedState:
    """Restore ``mapping`` (from :func:`state_dict`) into the structure of ``template_state``.

    ``strict=True`` raises one ``ValueError`` naming every missing and unexpected key; ``strict=False`` keeps
    the template's values for missing keys and reports both lists. A shape or dtype mismatch is a
    ``ValueError`` in both modes: nothing is cast or reshaped. Restored arrays are copies placed with the
    template leaf's sharding (NumPy template leaves give NumPy arrays, Python scalars Python scalars); typed
    PRNG keys are rewrapped with the template's implementation. Nothing passed in is modified.

    Args:
      template_state: a tree with the structure to restore: a fresh ``tx.init(params)``, or
        ``jax.eval_shape(tx.init, params)`` (``ShapeDtypeStruct`` leaves).
      mapping: ``{key: array}``, as :func:`state_dict` returns.
      strict: refuse missing and unexpected keys. Default True.

    Returns:
      ``LoadedState(state, missing_keys, unexpected_keys)``.

    Raises:
      ValueError: with ``strict``, missing or unexpected keys (``load_state_dict: missing keys ['b'];
        unexpected keys []``); in both modes, a shape or dtype mismatch (``load_state_dict: shape or dtype
        mismatch for 'w': saved shape (2,) dtype float32, expected shape (3,) dtype float32``).
      TypeError: ``mapping`` is not a mapping or ``strict`` is not a bool.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.checkpoint import load_state_dict, state_dict
      >>> tx, params = gradtx.sgd(0.1, momentum=0.9), {"w": jnp.zeros(2)}
      >>> state = tx.init(params)
      >>> _, state = tx.update({"w": jnp.array([1.0, -1.0])}, state, params)
      >>> saved = state_dict(state)
      >>> restored = load_state_dict(tx.init(params), saved).state  # into a fresh state's structure
      >>> print(restored[0].trace["w"])
      [ 1. -1.]
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


# --------------------------------------------------------------------------------------------------
# Provenance and load errors.
# --------------------------------------------------------------------------------------------------

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # "<function f at 0x7f...>": differs between processes


def _describe(tx: Any) -> str:
    """``repr(tx)`` without memory addresses, so that the same optimizer reads the same in every process."""
    return _ADDRESS.sub("", repr(tx))


def _gradtx_version() -> str | None:
    version = getattr(sys.modules.get("gradtx"), "__version__", None)  # no import: this module imports no gradtx
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        version = version or importlib.metadata.version("gradtx")
    return None if version is None else str(version)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that does not fit the template or the optimizer.

    Raised by :func:`load_state` and :func:`checkpoint_info` (a subclass of ``ValueError``; a path that does
    not exist raises ``FileNotFoundError`` instead). The message names the call, the path, the format and what
    was wrong; the exception that revealed it (``BadZipFile``, ``EOFError``, an Orbax error) is chained as
    ``__cause__``. Attributes: ``path`` (the checkpoint), ``format`` (``"npz"``, ``"orbax"``); see :func:`load_state`.

    Args:
      message: the error message.
      path: the checkpoint's path, or None.
      format: ``"npz"``, ``"orbax"`` or None.

    Examples:
      >>> import os, tempfile
      >>> import jax.numpy as jnp
      >>> from gradtx.checkpoint import CheckpointError, load_state
      >>> with tempfile.TemporaryDirectory() as d:
      ...     path = os.path.join(d, "opt.npz")
      ...     with open(path, "w") as f:
      ...         _ = f.write("not a checkpoint")
      ...     try:
      ...         load_state(path, {"w": jnp.zeros(2)})
      ...     except CheckpointError as e:
      ...         print(e.format, str(e).replace(path, "PATH"))
      npz load_state: cannot read the npz checkpoint 'PATH': it is not an .npz (zip) archive: it starts with b'not '
    """

    def __init__(self, message: str, path: str | None = None, format: str | None = None) -> None:  # noqa: A002
        super().__init__(message)
        self.path, self.format = path, format


def _bad(call: str, path: str, fmt: str, what: str, cause: BaseException | None = None) -> CheckpointError:
    cause_text = "" if cause is None else f" ({type(cause).__name__}: {cause})"
    return CheckpointError(f"{call}: cannot read the {fmt} checkpoint {path!r}: {what}{cause_text}", path, fmt)


@contextlib.contextmanager
def _reading(call: str, path: str, fmt: str, what: str) -> Iterator[None]:
    """Turn what goes wrong inside into a ``CheckpointError`` saying ``what`` (machine errors pass unchanged)."""
    try:
        yield
    except (CheckpointError, PermissionError, MemoryError):
        raise
    except Exception as e:
        raise _bad(call, path, fmt, what, e) from e


def _parse_meta(text: str, call: str, path: str, fmt: str) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, checked: a dict whose optional fields have the right types."""
    with _reading(call, path, fmt, f"its {_META!r} entry is not JSON metadata"):
        meta = json.loads(text)
    ok = isinstance(meta, dict) and isinstance(meta.get("dtypes", {}), dict)
    ok = ok and all(isinstance(v, str) for v in meta.get("dtypes", {}).values())
    ok = ok and all(isinstance(meta.get(f), (str, type(None))) for f in ("optimizer", "gradtx_version", "jax_version"))
    if not ok:
        raise _bad(call, path, fmt, f"its {_META!r} entry is not gradtx's metadata: {text[:200]!r}")
    return cast(dict[str, Any], meta)


def _check_optimizer(meta: dict[str, Any] | None, tx: Any, strict: bool, path: str, fmt: str) -> None:
    meta = meta or {}
    saved = meta.get("optimizer")
    if tx is None or not strict or saved is None or _describe(tx) == saved:
        return
    given, nl = _describe(tx), "\n      "
    raise CheckpointError(
        f"load_state: the {fmt} checkpoint {path!r} was written for another optimizer than tx (pass strict=False to "
        f"load it anyway):\n  saved, gradtx {meta.get('gradtx_version')}:{nl}{nl.join(saved.splitlines())}\n"
        f"  tx, gradtx {_gradtx_version()}:{nl}{nl.join(given.splitlines())}",
        path,
        fmt,
    )


# --------------------------------------------------------------------------------------------------
# .npz, read with zipfile and NumPy's .npy reader, never unpickling; Orbax.
# --------------------------------------------------------------------------------------------------


def _npz_open(path: str, call: str) -> zipfile.ZipFile:
    if os.path.isdir(path):
        raise _bad(call, path, "npz", "it is a directory; an npz checkpoint is a file (format='orbax' reads Orbax)")
    size = os.path.getsize(path)
    if size == 0:
        raise _bad(call, path, "npz", "the file is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith(b"\x93NUMPY"):
        raise _bad(call, path, "npz", "it is one .npy array, not an .npz archive of named arrays (numpy.savez)")
    if not head.startswith(b"PK"):
        hint = "; it looks like a pickle, and gradtx never unpickles" if head[:1] == b"\x80" else ""
        raise _bad(call, path, "npz", f"it is not an .npz (zip) archive: it starts with {head[:4]!r}{hint}")
    with _reading(call, path, "npz", f"the zip archive is truncated or damaged ({size} bytes; no table of contents)"):
        return zipfile.ZipFile(path)


def _npz_read(zf: zipfile.ZipFile, name: str, header_only: bool = False) -> Any:
    """A ``.npy`` member: the array, or ``(shape, dtype)`` from its header alone (never unpickling)."""
    with zf.open(name) as f:
        version = np.lib.format.read_magic(f) if header_only else None
        if version in ((1, 0), (2, 0)):
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
            return tuple(shape), dtype
    with zf.open(name) as f:
        a = np.lib.format.read_array(f, allow_pickle=False)
    return (a.shape, a.dtype) if header_only else a


def _npz_meta(zf: zipfile.ZipFile, path: str, call: str) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The metadata (None for a plain ``numpy.savez`` file) and ``{key: member name}`` in the archive's order."""
    members = {}
    for name in zf.namelist():
        if not name.endswith(".npy"):
            raise _bad(call, path, "npz", f"its entry {name!r} is not a .npy array")
        members[name[: -len(".npy")]] = name
    if _META not in members:
        return None, members
    with _reading(call, path, "npz", f"its {_META!r} entry cannot be read"):
        raw = _npz_read(zf, members.pop(_META))
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise _bad(call, path, "npz", f"its {_META!r} entry is not a JSON string (dtype {raw.dtype})")
    return _parse_meta(str(raw[()]), call, path, "npz"), members


def _npz_entries(
    zf: zipfile.ZipFile, members: dict[str, str], dtypes: dict[str, str], path: str, call: str, load: bool
) -> dict[str, Any]:
    """``{key: array}`` (``load``) or ``{key: {"shape", "dtype"}}``; object (pickled) arrays are refused."""
    out: dict[str, Any] = {}
    for k, name in members.items():
        with _reading(call, path, "npz", f"its entry {k!r} cannot be read: the archive is damaged"):
            shape, dtype = _npz_read(zf, name, header_only=True)
            if load and dtype.hasobject:
                what = f"its entry {k!r} is a pickled object array; {call} never unpickles (allow_pickle=False)"
                raise _bad(call, path, "npz", what)
            if load:
                a = _npz_read(zf, name)
                out[k] = a.view(jnp.dtype(dtypes[k])) if k in dtypes else a
            else:
                out[k] = {"shape": shape, "dtype": dtypes.get(k, dtype.name)}
    return out


def _orbax_tree(path: str, call: str, ocp: Any) -> dict[str, Any]:
    """The checkpoint's ``{key: array metadata}``, checked to be what ``save_state`` writes."""
    if not os.path.isdir(path):
        raise _bad(call, path, "orbax", "it is a file; an Orbax checkpoint is a directory (format='npz' reads .npz)")
    names = sorted(os.listdir(path))
    if not names:
        raise _bad(call, path, "orbax", "the directory is empty, not an Orbax checkpoint")
    with _reading(call, path, "orbax", "its Orbax metadata cannot be read"):
        metadata = ocp.PyTreeCheckpointer().metadata(path)
    saved = getattr(metadata, "item_metadata", metadata)
    saved = getattr(saved, "tree", saved)
    if saved is None:
        shown = names if len(names) <= 5 else [*names[:5], f"... ({len(names)} in all)"]
        damaged = {"_METADATA", "_CHECKPOINT_METADATA"} & set(names)  # orbax logs its error and returns None
        what = "an Orbax checkpoint whose tree metadata cannot be read (damaged or incomplete?)" if damaged else ""
        raise _bad(call, path, "orbax", f"{what or 'not an Orbax checkpoint'}; the directory holds {shown}")
    if not isinstance(saved, Mapping) or not all(hasattr(m, "shape") and hasattr(m, "dtype") for m in saved.values()):
        raise _bad(call, path, "orbax", "not written by save_state: its tree is not a flat {key: array} dict")
    return dict(saved)


def _orbax_meta(path: str, saved: dict[str, Any], call: str, ocp: Any) -> dict[str, Any] | None:
    """The metadata entry alone (uint8 JSON bytes; before provenance was recorded, the int32 format version)."""
    if _META not in saved:
        return None
    read = {_META: ocp.RestoreArgs(restore_type=np.ndarray)}
    try:
        args = ocp.args.PyTreeRestore(item={_META: 0}, restore_args=read, partial_restore=True)
    except TypeError:  # pragma: no cover - orbax before partial restores: restore everything to NumPy
        args = ocp.args.PyTreeRestore(restore_args={k: ocp.RestoreArgs(restore_type=np.ndarray) for k in saved})
    with _reading(call, path, "orbax", f"its {_META!r} entry cannot be restored"):
        raw = np.asarray(ocp.PyTreeCheckpointer().restore(path, args=args)[_META])
    if raw.ndim == 0 and raw.dtype.kind in "iu":
        return {"format": "gradtx.state_dict", "version": int(raw)}
    if raw.ndim != 1 or raw.dtype != np.uint8:
        raise _bad(call, path, "orbax", f"its {_META!r} entry is not JSON bytes (dtype {raw.dtype}, shape {raw.shape})")
    with _reading(call, path, "orbax", f"its {_META!r} entry is not JSON metadata"):
        text = raw.tobytes().decode()
    return _parse_meta(text, call, path, "orbax")


def _orbax_arrays(path: str, saved: dict[str, Any], template_state: Any, call: str, ocp: Any) -> dict[str, Any]:
    keys, leaves, _ = _flatten(template_state, call)
    templates = dict(zip(keys, leaves))
    restore_args = {}
    for k, meta in saved.items():
        t = templates.get(k)
        here = (tuple(meta.shape), np.dtype(meta.dtype))
        if t is not None and not is_typed_key(t) and _sharding(t) is not None and _shape_dtype(t) == here:
            restore_args[k] = ocp.ArrayRestoreArgs(sharding=_sharding(t), global_shape=here[0], dtype=here[1])
        else:  # an unexpected or mismatched key, a key array or a host leaf: to NumPy, checked by _restore
            restore_args[k] = ocp.RestoreArgs(restore_type=np.ndarray)
    with _reading(call, path, "orbax", "its arrays cannot be restored (the checkpoint is damaged or incomplete)"):
        restored = ocp.PyTreeCheckpointer().restore(path, args=ocp.args.PyTreeRestore(restore_args=restore_args))
    return {k: v for k, v in restored.items() if k != _META}


def _resolve(path: str | os.PathLike[str], fmt: str | None, call: str) -> tuple[str, str]:
    path = os.fspath(path)
    if fmt is None:
        fmt = "orbax" if os.path.isdir(path) else "npz"
    _check_format(call, fmt)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{call}: no checkpoint at {path!r} (no such file or directory)")
    return (os.path.abspath(path) if fmt == "orbax" else path), fmt


# --------------------------------------------------------------------------------------------------
# The file functions.
# --------------------------------------------------------------------------------------------------


def save_state(
    path: str | os.PathLike[str],
    state: PyTree,
    *,
    tx: TransformationLike | None = None,
    format: str = "npz",  # noqa: A002
    overwrite: bool = False,
) -> None:
    """Write ``state_dict(state)`` and what wrote it to ``path``: a ``.npz`` file or an Orbax directory.

    The checkpoint records gradtx's and JAX's versions and, when ``tx`` is given, ``repr(tx)`` (memory
    addresses removed): ``load_state(..., tx=)`` then refuses a checkpoint written for another optimizer.

    Args:
      path: the ``.npz`` file (used as given, no suffix appended) or the Orbax directory to write.
      state: any pytree: an optimizer state, or ``{"params": params, "opt_state": opt_state}``.
      tx: the optimizer whose state this is (optional; only its ``repr`` is stored).
      format: ``"npz"`` (NumPy only; written to a temporary file and renamed, so an interrupted save never
        leaves a truncated checkpoint) or ``"orbax"`` (needs the optional extra ``gradtx[checkpoint]``).
      overwrite: replace an existing ``path`` (for ``.npz`` atomically).

    Raises:
      FileExistsError: ``path`` exists and ``overwrite`` is False.
      ValueError: an unknown ``format``, or a key of ``state`` is the reserved ``"__gradtx__"``.
      ImportError: ``format="orbax"`` without orbax-checkpoint installed.

    Example:
      >>> import os, tempfile, gradtx
      >>> import jax.numpy as jnp
      >>> from gradtx.checkpoint import checkpoint_info, save_state
      >>> tx = gradtx.sgd(0.1, momentum=0.9)
      >>> with tempfile.TemporaryDirectory() as d:
      ...     path = os.path.join(d, "opt.npz")
      ...     save_state(path, tx.init({"w": jnp.zeros(3, jnp.float32)}), tx=tx)
      ...     checkpoint_info(path)["arrays"]
      {'0/trace/w': {'shape': (3,), 'dtype': 'float32'}}
    """
    _check_format("save_state", format)
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"save_state: {path!r} exists; pass overwrite=True to replace it")
    mapping = state_dict(state)
    if _META in mapping:
        raise ValueError(f"save_state: the key {_META!r} is reserved for the file's metadata")
    meta = {"format": "gradtx.state_dict", "version": _VERSION, "gradtx_version": _gradtx_version()}
    meta.update(jax_version=jax.__version__, optimizer=None if tx is None else _describe(tx))
    if format == "orbax":
        ocp = _orbax("save_state")
        tree_ = {**mapping, _META: np.frombuffer(json.dumps(meta).encode(), np.uint8).copy()}  # never empty
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
    arrays[_META] = np.asarray(json.dumps({**meta, "dtypes": dtypes}))
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


def load_state(
    path: str | os.PathLike[str],
    template_state: PyTree,
    strict: bool = True,
    *,
    tx: TransformationLike | None = None,
    format: str | None = None,  # noqa: A002
) -> LoadedState:
    """Read a checkpoint written by :func:`save_state` into the structure of ``template_state``.

    The rules are :func:`load_state_dict`'s. Plain ``numpy.savez(path, **state_dict(state))`` files and
    checkpoints written before gradtx recorded provenance load too. Nothing is ever unpickled.

    Args:
      path: an ``.npz`` file or an Orbax checkpoint directory.
      template_state: a tree with the structure to restore (a fresh ``tx.init(params)``, or
        ``jax.eval_shape(tx.init, params)``); restored leaves take its leaves' shardings.
      strict: refuse missing and unexpected keys, and a checkpoint recorded for another optimizer than ``tx``;
        ``strict=False`` loads what matches and lists the keys without a partner in the result.
      tx: the optimizer that continues (optional). If the checkpoint recorded one, their ``repr`` must agree
        (hyperparameters included; Optax's closures show none) unless ``strict=False``.
      format: ``"npz"``, ``"orbax"`` or ``None`` (a directory is Orbax, a file ``.npz``).

    Returns:
      ``LoadedState(state, missing_keys, unexpected_keys)``.

    Raises:
      FileNotFoundError: nothing at ``path``.
      CheckpointError: (a ``ValueError``) ``path`` is not a readable checkpoint of that format (empty,
        truncated, damaged, not an archive, a pickled entry, not an Orbax checkpoint), or it does not fit: keys
        (``strict=True``), shapes or dtypes, or ``tx``. The message names ``load_state``, the path and the format.
      ImportError: an Orbax checkpoint without orbax-checkpoint installed.

    Example:
      >>> import os, tempfile, gradtx
      >>> import jax.numpy as jnp
      >>> from gradtx.checkpoint import CheckpointError, load_state, save_state
      >>> params, tx = {"w": jnp.zeros(3)}, gradtx.adam(0.1)
      >>> tmp = tempfile.TemporaryDirectory()
      >>> path = os.path.join(tmp.name, "opt.npz")
      >>> save_state(path, tx.init(params), tx=tx)
      >>> int(load_state(path, tx.init(params), tx=tx).state[0].count)
      0
      >>> try:
      ...     load_state(path, tx.init(params), tx=gradtx.adam(0.2))
      ... except CheckpointError as e:
      ...     print(str(e).splitlines()[0].replace(path, "PATH"))
      load_state: the npz checkpoint 'PATH' was written for another optimizer than tx ...
      >>> load_state(path, tx.init(params), strict=False, tx=gradtx.adam(0.2)).missing_keys
      []
      >>> tmp.cleanup()
    """
    if not isinstance(strict, bool):
        raise TypeError(f"load_state: strict must be a bool, got {strict!r}")
    path, fmt = _resolve(path, format, "load_state")
    if fmt == "npz":
        with _npz_open(path, "load_state") as zf:
            meta, members = _npz_meta(zf, path, "load_state")
            _check_optimizer(meta, tx, strict, path, fmt)
            mapping = _npz_entries(zf, members, (meta or {}).get("dtypes", {}), path, "load_state", load=True)
    else:
        ocp = _orbax("load_state")
        saved = _orbax_tree(path, "load_state", ocp)
        _check_optimizer(_orbax_meta(path, saved, "load_state", ocp), tx, strict, path, fmt)
        mapping = _orbax_arrays(path, saved, template_state, "load_state", ocp)
    return _restore(template_state, mapping, strict, copy=False, call="load_state", where=(path, fmt))


def checkpoint_info(path: str | os.PathLike[str], *, format: str | None = None) -> dict[str, Any]:  # noqa: A002
    """What a checkpoint holds and what wrote it, read without loading its arrays.

    Args:
      path: an ``.npz`` file or an Orbax checkpoint directory.
      format: ``"npz"``, ``"orbax"`` or ``None`` (a directory is Orbax, a file ``.npz``).

    Returns:
      A dict: ``"path"``, ``"format"``; ``"version"`` (gradtx's checkpoint format version, None for a plain
      ``numpy.savez`` file); ``"gradtx_version"``, ``"jax_version"`` (of the process that wrote it) and
      ``"optimizer"`` (``repr(tx)`` given to :func:`save_state`), each None where not recorded (no ``tx``, or
      a file from before gradtx recorded provenance); ``"arrays"``: ``{key: {"shape": tuple, "dtype": str}}``
      in the file's order, dtypes as restored (``"bfloat16"``, not the type it is stored as).

    Raises:
      FileNotFoundError: nothing at ``path``.
      CheckpointError: ``path`` is not a readable checkpoint of that format.
      ImportError: an Orbax checkpoint without orbax-checkpoint installed.

    Example:
      >>> import os, tempfile, gradtx
      >>> import jax.numpy as jnp
      >>> from gradtx.checkpoint import checkpoint_info, save_state
      >>> tx = gradtx.sgd(0.5)
      >>> with tempfile.TemporaryDirectory() as d:
      ...     path = os.path.join(d, "s.npz")
      ...     save_state(path, {"w": jnp.ones(2, jnp.bfloat16)}, tx=tx)
      ...     info = checkpoint_info(path)
      >>> info["optimizer"] == repr(tx), info["version"], info["arrays"]
      (True, 1, {'w': {'shape': (2,), 'dtype': 'bfloat16'}})
    """
    call = "checkpoint_info"
    path, fmt = _resolve(path, format, call)
    if fmt == "npz":
        with _npz_open(path, call) as zf:
            meta, members = _npz_meta(zf, path, call)
            arrays = _npz_entries(zf, members, (meta or {}).get("dtypes", {}), path, call, load=False)
    else:
        ocp = _orbax(call)
        saved = _orbax_tree(path, call, ocp)
        meta = _orbax_meta(path, saved, call, ocp)
        arrays = {k: {"shape": tuple(m.shape), "dtype": np.dtype(m.dtype).name} for k, m in saved.items() if k != _META}
    fields = ("version", "gradtx_version", "jax_version", "optimizer")
    return {"path": path, "format": fmt, **{f: (meta or {}).get(f) for f in fields}, "arrays": arrays}
