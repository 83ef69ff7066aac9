"""Checkpoint files that cannot be read or do not fit, and what a checkpoint records about what wrote it.

Every load error is a ``CheckpointError`` (a ``ValueError``) naming ``load_state``, the path, the format and the
problem, chained from the exception that revealed it; nothing is ever unpickled. ``save_state(..., tx=)``
records ``repr(tx)`` and the versions; ``load_state(..., tx=)`` refuses another optimizer unless
``strict=False``; files from before provenance (and plain ``numpy.savez`` files) still load."""

from __future__ import annotations

import doctest
import json
import os
import pickle
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import gradtx.checkpoint as ckpt
from gradtx.checkpoint import CheckpointError, checkpoint_info, load_state, save_state, state_dict

UNPICKLED: list[str] = []  # what _Sentinel's unpickling appends to: must stay empty


def _record(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class _Sentinel:
    """An object whose unpickling leaves a trace in ``UNPICKLED`` (as a malicious pickle could run code)."""

    def __reduce__(self):
        return (_record, ("unpickled",))


def _state():
    return {"w": jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3), "b": jnp.array([1.5, -2.0], jnp.bfloat16)}


def _same(a, b):
    da, db = state_dict(a), state_dict(b)
    assert list(da) == list(db)
    for k in da:
        assert da[k].dtype == db[k].dtype, k
        bits = [np.atleast_1d(np.asarray(x)).view(np.uint8) for x in (da[k], db[k])]
        np.testing.assert_array_equal(*bits, err_msg=k)


def _load_error(path, template=None, **kwargs):
    """The ``CheckpointError`` of ``load_state(path, ...)``, checked to name the call and the path."""
    with pytest.raises(CheckpointError) as info:
        load_state(path, _state() if template is None else template, **kwargs)
    message = str(info.value)
    assert message.startswith("load_state: ") and str(path) in message, message
    assert isinstance(info.value, ValueError) and info.value.path is not None
    return info.value


# --------------------------------------------------------------------------------------------------
# .npz files that are not checkpoints.
# --------------------------------------------------------------------------------------------------


def _truncated(path):
    save_state(path, _state())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path):
    path.write_bytes(b"")


def _random(path):
    path.write_bytes(b"R" + np.random.default_rng(0).integers(0, 256, 999, dtype=np.uint8).tobytes())


def _pickle(path):
    path.write_bytes(pickle.dumps({"w": _Sentinel()}))


def _object_array(path):
    np.savez(path, w=np.array([_Sentinel(), None], dtype=object), b=np.ones(2))


def _npy(path):
    with open(path, "wb") as f:
        np.save(f, np.ones(3))


def _flipped(path):
    save_state(path, {"w": jnp.arange(100.0)})
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF  # inside the array's bytes: the zip's CRC-32 no longer matches
    path.write_bytes(bytes(data))


def _not_npy(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("w.npy", b"")
        z.writestr("README.txt", "hello")


NPZ_FAULTS = {  # name -> (make the file, a piece of the description, the chained cause or None)
    "truncated": (_truncated, "the zip archive is truncated or damaged", zipfile.BadZipFile),
    "empty": (_empty, "the file is empty (0 bytes)", None),
    "random bytes": (_random, "it is not an .npz (zip) archive: it starts with b'R", None),
    "pickle": (_pickle, "it looks like a pickle, and gradtx never unpickles", None),
    "object array": (_object_array, "its entry 'w' is a pickled object array; load_state never unpickles", None),
    "npy": (_npy, "it is one .npy array, not an .npz archive of named arrays", None),
    "bad crc": (_flipped, "its entry 'w' cannot be read: the archive is damaged", zipfile.BadZipFile),
    "not npy entry": (_not_npy, "its entry 'README.txt' is not a .npy array", None),
}


@pytest.mark.parametrize("fault", list(NPZ_FAULTS))
def test_unreadable_npz_files_name_the_file_the_loader_and_the_problem(fault, tmp_path):
    make, description, cause = NPZ_FAULTS[fault]
    path = tmp_path / "ckpt.npz"
    make(path)
    error = _load_error(path)
    assert str(error).startswith(f"load_state: cannot read the npz checkpoint {str(path)!r}: ")
    assert description in str(error)
    assert error.format == "npz" and error.path == str(path)
    assert (cause is None and error.__cause__ is None) or isinstance(error.__cause__, cause)
    if fault == "object array":  # checkpoint_info reads headers only: it describes this one
        assert checkpoint_info(path)["arrays"]["w"] == {"shape": (2,), "dtype": "object"}
    else:
        with pytest.raises(CheckpointError, match=f"^checkpoint_info: cannot read the npz checkpoint {str(path)!r}"):
            checkpoint_info(path)
    assert UNPICKLED == []  # nothing was unpickled


def test_a_directory_read_as_npz_and_a_missing_path(tmp_path):
    error = _load_error(tmp_path, format="npz")
    assert "it is a directory; an npz checkpoint is a file" in str(error)
    for call in (lambda p: load_state(p, _state()), checkpoint_info):
        with pytest.raises(FileNotFoundError, match=r"(load_state|checkpoint_info): no checkpoint at '.*missing\.npz'"):
            call(tmp_path / "missing.npz")


def test_any_truncation_or_corrupted_byte_loads_exactly_or_raises_checkpoint_error(tmp_path):
    """A small checkpoint cut at every 3rd length and with a byte flipped at every 3rd position: each either
    loads bit for bit (a flip in a field nothing reads, such as a timestamp) or raises ``CheckpointError``."""
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    save_state(good, _state(), tx=gradtx.sgd(0.1))
    data = good.read_bytes()
    variants = [data[:n] for n in range(0, len(data), 3)]
    for i in range(0, len(data), 3):
        flipped = bytearray(data)
        flipped[i] ^= 0x41
        variants.append(bytes(flipped))
    loaded = refused = 0
    for variant in variants:
        bad.write_bytes(variant)
        try:
            restored = load_state(bad, _state()).state
        except CheckpointError as e:
            assert str(bad) in str(e)
            refused += 1
        else:
            _same(restored, _state())
            loaded += 1
    assert refused > len(data) // 3 and loaded > 0  # every truncation is refused; some flips are harmless


def test_metadata_entry_that_is_not_gradtx_json(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, w=np.zeros(2), __gradtx__=np.asarray("{not json"))
    assert "its '__gradtx__' entry is not JSON metadata (JSONDecodeError" in str(_load_error(path))
    np.savez(path, w=np.zeros(2), __gradtx__=np.asarray('{"dtypes": [1]}'))
    assert "its '__gradtx__' entry is not gradtx's metadata" in str(_load_error(path))
    np.savez(path, w=np.zeros(2), __gradtx__=np.zeros(3))
    assert "its '__gradtx__' entry is not a JSON string (dtype float64)" in str(_load_error(path))


# --------------------------------------------------------------------------------------------------
# Checkpoints that do not fit the template.
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["npz", "orbax"])
def test_keys_shapes_and_dtypes_that_do_not_fit_name_the_file(fmt, tmp_path):
    if fmt == "orbax":
        pytest.importorskip("orbax.checkpoint")
    path = tmp_path / "ckpt"
    save_state(path, _state(), format=fmt)
    where = f"(the {fmt} checkpoint {str(path.absolute() if fmt == 'orbax' else path)!r})"
    wrong = {"w": jnp.zeros((3, 2), jnp.float32), "b": jnp.zeros(2, jnp.float32)}
    error = _load_error(path, wrong)
    assert str(error) == (
        "load_state: shape or dtype mismatch for 'b': saved shape (2,) dtype bfloat16, expected shape (2,) dtype "
        f"float32, 'w': saved shape (2, 3) dtype float32, expected shape (3, 2) dtype float32 {where}"
    )
    error = _load_error(path, {"w": _state()["w"], "c": jnp.zeros(2)})
    assert str(error) == f"load_state: missing keys ['c']; unexpected keys ['b'] {where}"
    loaded = load_state(path, {"w": _state()["w"], "c": jnp.zeros(2)}, strict=False)
    assert loaded.missing_keys == ["c"] and loaded.unexpected_keys == ["b"]


# --------------------------------------------------------------------------------------------------
# Orbax directories that are not checkpoints.
# --------------------------------------------------------------------------------------------------


def _orbax_fault(fault, path):
    ocp = pytest.importorskip("orbax.checkpoint")
    if fault == "empty directory":
        path.mkdir()
    elif fault == "stray file":
        path.mkdir()
        (path / "notes.txt").write_text("not a checkpoint")
    elif fault == "a file":
        save_state(path, _state())
    elif fault == "nested tree":
        ocp.PyTreeCheckpointer().save(str(path), args=ocp.args.PyTreeSave({"a": {"w": np.ones(2)}}))
    elif fault == "no metadata":
        save_state(path, _state(), format="orbax")
        os.remove(path / "_METADATA")
    else:  # damaged data: the largest data file cut in half
        save_state(path, {"w": jnp.arange(10_000, dtype=jnp.float32)}, format="orbax")
        files = [os.path.join(r, f) for r, _, fs in os.walk(path / "ocdbt.process_0") for f in fs]
        biggest = max(files, key=os.path.getsize)
        with open(biggest, "r+b") as f:
            f.truncate(os.path.getsize(biggest) // 2)


ORBAX_FAULTS = {
    "empty directory": ("the directory is empty, not an Orbax checkpoint", {}),
    "stray file": ("not an Orbax checkpoint; the directory holds ['notes.txt']", {}),
    "a file": ("it is a file; an Orbax checkpoint is a directory", {"format": "orbax"}),
    "nested tree": ("not written by save_state: its tree is not a flat {key: array} dict", {}),
    "no metadata": ("an Orbax checkpoint whose tree metadata cannot be read (damaged or incomplete?)", {}),
    "damaged data": ("its arrays cannot be restored (the checkpoint is damaged or incomplete)", {}),
}


@pytest.mark.parametrize("fault", list(ORBAX_FAULTS))
def test_directories_that_are_not_orbax_checkpoints(fault, tmp_path):
    path = tmp_path / "ckpt"
    _orbax_fault(fault, path)
    description, kwargs = ORBAX_FAULTS[fault]
    template = {"w": jnp.zeros(10_000, jnp.float32)} if fault == "damaged data" else None
    error = _load_error(path, template, **kwargs)
    assert f"load_state: cannot read the orbax checkpoint {str(path)!r}: {description}" in str(error)
    assert error.format == "orbax"
    if fault == "damaged data":
        assert error.__cause__ is not None
        assert checkpoint_info(path)["arrays"] == {"w": {"shape": (10_000,), "dtype": "float32"}}  # not read
    else:
        with pytest.raises(CheckpointError, match=f"^checkpoint_info: cannot read the orbax checkpoint {str(path)!r}"):
            checkpoint_info(path, **kwargs)


# --------------------------------------------------------------------------------------------------
# Provenance.
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["npz", "orbax"])
def test_checkpoint_records_what_wrote_it(fmt, tmp_path):
    if fmt == "orbax":
        pytest.importorskip("orbax.checkpoint")
    tx = gradtx.adamw(1e-3, weight_decay=0.01)
    params = _state()
    state = tx.update(params, tx.init(params), params)[1]  # one step: moments not zero
    path = tmp_path / "ckpt"
    save_state(path, {"params": params, "opt_state": state}, tx=tx, format=fmt)
    info = checkpoint_info(path)
    assert info["format"] == fmt and info["version"] == 1 and info["optimizer"] == repr(tx)
    assert info["gradtx_version"] == gradtx.__version__ and info["jax_version"] == jax.__version__
    expected = {k: {"shape": tuple(v.shape), "dtype": v.dtype.name} for k, v in state_dict(
        {"params": params, "opt_state": state}).items()}  # fmt: skip
    assert info["arrays"] == expected and info["arrays"]["params/b"]["dtype"] == "bfloat16"
    if fmt == "npz":
        assert list(info["arrays"]) == list(expected)  # the file's order is state_dict's
        with np.load(path) as raw:  # readable by NumPy alone, without pickle
            assert json.loads(str(raw["__gradtx__"]))["optimizer"] == repr(tx)

    template = {"params": params, "opt_state": gradtx.adamw(1e-3, weight_decay=0.01).init(params)}
    fresh = gradtx.adamw(1e-3, weight_decay=0.01)  # equal repr: loads
    _same(load_state(path, template, tx=fresh).state, {"params": params, "opt_state": state})

    other = gradtx.adamw(2e-3, weight_decay=0.01)
    error = _load_error(path, template, tx=other)
    message = str(error)
    assert "was written for another optimizer than tx (pass strict=False to load it anyway)" in message
    assert "learning_rate=0.001" in message and "learning_rate=0.002" in message  # both reprs, both versions
    assert message.count(f"gradtx {gradtx.__version__}:") == 2
    loaded = load_state(path, template, strict=False, tx=other)  # allowed; keys reported as usual
    assert loaded.missing_keys == [] and loaded.unexpected_keys == []
    _same(loaded.state, {"params": params, "opt_state": state})
    load_state(path, template)  # no tx: nothing to compare


def test_repr_without_memory_addresses_and_files_without_an_optimizer(tmp_path):
    optax = pytest.importorskip("optax")
    params = {"w": jnp.zeros(3)}
    save_state(tmp_path / "o.npz", optax.adam(0.1).init(params), tx=optax.adam(0.1))
    saved = checkpoint_info(tmp_path / "o.npz")["optimizer"]
    assert " at 0x" in repr(optax.adam(0.1)) and " at 0x" not in saved  # closures print their address
    load_state(tmp_path / "o.npz", optax.adam(0.1).init(params), tx=optax.adam(0.1))  # new closures, same text

    save_state(tmp_path / "n.npz", gradtx.sgd(0.1).init(params))  # no tx recorded: any tx loads
    assert checkpoint_info(tmp_path / "n.npz")["optimizer"] is None
    load_state(tmp_path / "n.npz", gradtx.sgd(0.1).init(params), tx=gradtx.adam(0.1))


def test_files_from_before_provenance_still_load(tmp_path):
    """An .npz as gradtx wrote it before (metadata without provenance), a plain numpy.savez file, and Orbax
    checkpoints holding the int32 format version or no metadata at all."""
    state = _state()
    mapping = state_dict(state)
    old = {"w": np.asarray(mapping["w"]), "b": np.asarray(mapping["b"]).view(np.uint16)}
    meta = {"format": "gradtx.state_dict", "version": 1, "dtypes": {"b": "bfloat16"}}
    np.savez(tmp_path / "old.npz", **old, __gradtx__=np.asarray(json.dumps(meta)))
    np.savez(tmp_path / "plain.npz", w=np.asarray(mapping["w"]))
    _same(load_state(tmp_path / "old.npz", _state(), tx=gradtx.adam(0.1)).state, state)
    _same(load_state(tmp_path / "plain.npz", {"w": state["w"]}, tx=gradtx.adam(0.1)).state, {"w": state["w"]})
    info = checkpoint_info(tmp_path / "old.npz")
    assert (info["version"], info["gradtx_version"], info["optimizer"]) == (1, None, None)
    assert info["arrays"]["b"] == {"shape": (2,), "dtype": "bfloat16"}
    assert checkpoint_info(tmp_path / "plain.npz")["version"] is None

    ocp = pytest.importorskip("orbax.checkpoint")
    for name, extra in (("old", {"__gradtx__": np.asarray(1, np.int32)}), ("bare", {})):
        path = str(tmp_path / name)
        ocp.PyTreeCheckpointer().save(path, args=ocp.args.PyTreeSave({**mapping, **extra}))
        _same(load_state(path, _state(), tx=gradtx.adam(0.1)).state, state)
        info = checkpoint_info(path)
        assert info["version"] == (1 if extra else None) and info["optimizer"] is None
        assert info["arrays"]["b"] == {"shape": (2,), "dtype": "bfloat16"}


def test_docstring_examples_run():
    result = doctest.testmod(ckpt, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted >= 12


@pytest.fixture(autouse=True)
def _no_unpickling():
    yield
    assert UNPICKLED == []


def test_the_sentinel_does_record_unpickling():
    """The guard above can fail: unpickling a _Sentinel is seen."""
    pickle.loads(pickle.dumps(_Sentinel()))
    assert UNPICKLED == ["unpickled"]
    UNPICKLED.clear()
