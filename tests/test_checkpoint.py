"""Named state and checkpoints: readable keys, strict and non-strict loading, exact dtypes (bfloat16, PRNG keys),
and interrupted-then-resumed training equal to the uninterrupted run bit for bit (.npz and Orbax)."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.checkpoint import LoadedState, load_state, load_state_dict, save_state, state_dict
from gradtx.diagnostics.spike import spike_guard

TARGET = {"w": np.array([1.0, -2.0, 0.5, 3.0]), "b": np.array([0.25, -1.0])}
LABELS = {"w": "a", "b": "s"}


def _params():
    return {"w": jnp.zeros(4, jnp.float32), "b": jnp.zeros(2, jnp.bfloat16)}


def _small():
    return {"w": jnp.arange(3.0, dtype=jnp.float32), "b": jnp.ones(2, jnp.float32)}


def _grads(params, t):
    """A noisy quadratic's gradient at ``params`` (step ``t``), the loss as ``value``; step 7 is a spike."""
    rng = np.random.default_rng(t)
    g = {
        k: (v.astype(jnp.float32) - TARGET[k] + rng.normal(0, 0.3, v.shape)).astype(v.dtype) for k, v in params.items()
    }
    value = jnp.float32(1.0 + rng.normal(0, 0.05))
    if t == 7:
        g, value = jax.tree.map(lambda x: x * 1000, g), value * 1000
    return g, value


@jax.jit
def _step(opt, params, state, grads, value):
    updates, state = opt.update(grads, state, params, value=value)
    return gradtx.apply_updates(params, updates), state


def _run(opt, params, state, start, stop):
    for t in range(start, stop):
        g, value = _grads(params, t)
        params, state = _step(opt, params, state, g, value)
    return params, state


def _assert_same(a, b):
    da, db = state_dict(a), state_dict(b)
    assert list(da) == list(db)
    for k in da:
        assert da[k].dtype == db[k].dtype, k
        np.testing.assert_array_equal(np.asarray(da[k]), np.asarray(db[k]), err_msg=k)


OPTIMIZERS = {
    "adam": lambda: gradtx.adam(0.1),
    "partition": lambda: gradtx.partition({"a": gradtx.adam(0.1), "s": gradtx.sgd(0.05, momentum=0.9)}, LABELS),
    "multisteps": lambda: gradtx.MultiSteps(gradtx.adam(0.1), 3),
    "spike_guard": lambda: spike_guard(gradtx.adam(0.1), warmup_steps=3),
    "noisy_sgd": lambda: gradtx.noisy_sgd(0.1, key=0),
}
FORMATS = ["npz", "orbax"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_interrupted_run_resumes_bit_for_bit(name, fmt, tmp_path):
    if fmt == "orbax":
        pytest.importorskip("orbax.checkpoint")
    make, k, n = OPTIMIZERS[name], 4, 10
    opt = make()
    params_end, state_end = _run(opt, _params(), opt.init(_params()), 0, n)

    params_k, state_k = _run(opt, _params(), opt.init(_params()), 0, k)
    if name == "multisteps":
        assert int(state_k.mini_step) == 1  # interrupted in the middle of an accumulation
    path = tmp_path / ("ckpt.npz" if fmt == "npz" else "ckpt")
    save_state(path, {"params": params_k, "opt_state": state_k}, format=fmt)
    del params_k, state_k

    fresh = make()  # a freshly built optimizer: its init gives the template
    template = {"params": _params(), "opt_state": fresh.init(_params())}
    loaded = load_state(path, template)
    assert isinstance(loaded, LoadedState) and loaded.missing_keys == [] and loaded.unexpected_keys == []
    params, state = _run(fresh, loaded.state["params"], loaded.state["opt_state"], k, n)
    _assert_same({"params": params, "opt_state": state}, {"params": params_end, "opt_state": state_end})
    if name == "spike_guard":
        assert int(state.total_spikes) == 1  # the spike after the restart was caught with the restored statistics


# --------------------------------------------------------------------------------------------------
# Keys.
# --------------------------------------------------------------------------------------------------


def test_state_dict_keys_are_readable():
    params = _small()
    assert list(state_dict(gradtx.adam(1e-3).init(params))) == ["0/count", "0/mu/b", "0/mu/w", "0/nu/b", "0/nu/w"]
    named = gradtx.named_chain(("clip", gradtx.clip_by_global_norm(1.0)), ("adam", gradtx.scale_by_adam()))
    assert list(state_dict(named.init(params))) == ["adam/count", "adam/mu/b", "adam/mu/w", "adam/nu/b", "adam/nu/w"]
    part = gradtx.partition({"a": gradtx.adam(1e-3), "s": gradtx.sgd(0.1)}, LABELS)
    assert list(state_dict(part.init(params))) == [
        "inner_states/a/inner_state/0/count",
        "inner_states/a/inner_state/0/mu/w",
        "inner_states/a/inner_state/0/nu/w",
    ]
    multi = gradtx.MultiSteps(gradtx.sgd(0.1, momentum=0.9), 2)
    assert list(state_dict(multi.init(params))) == [
        "mini_step",
        "gradient_step",
        "inner_opt_state/0/trace/b",
        "inner_opt_state/0/trace/w",
        "acc_grads/b",
        "acc_grads/w",
    ]
    assert list(state_dict({"a/b": {"%": 1.0, "c": [2, (3,)]}})) == ["a%2Fb/%25", "a%2Fb/c/0", "a%2Fb/c/1/0"]
    assert list(state_dict(jnp.ones(2))) == [""]
    assert state_dict(()) == {} and state_dict(gradtx.sgd(0.1).init(params)) == {}


def test_state_dict_is_the_same_under_jit():
    opt = gradtx.chain(gradtx.add_noise(0.1, 0.55, key=1), gradtx.adam(1e-3))
    state = opt.init(_small())
    eager, traced = state_dict(state), jax.jit(state_dict)(state)
    assert list(eager) == list(traced) == [
        "0/count", "0/rng_key", "1/0/count", "1/0/mu/b", "1/0/mu/w", "1/0/nu/b", "1/0/nu/w"
    ]  # fmt: skip
    for k in eager:
        np.testing.assert_array_equal(eager[k], traced[k])
    assert eager["0/rng_key"].dtype == np.uint32 and eager["0/rng_key"].shape == (2,)


# --------------------------------------------------------------------------------------------------
# load_state_dict.
# --------------------------------------------------------------------------------------------------


@jax.jit
def _update(opt, grads, state, params):
    return opt.update(grads, state, params)


def _trained_adam():
    opt = gradtx.adam(0.1)
    params = _small()
    state = opt.init(params)
    for _ in range(3):
        _, state = _update(opt, params, state, params)
    return opt, params, state


def test_strict_load_names_every_missing_and_unexpected_key():
    opt, params, state = _trained_adam()
    mapping = state_dict(state)
    del mapping["0/mu/b"], mapping["0/nu/w"]
    mapping["extra/x"] = np.zeros(2)
    mapping["0/mu/c"] = np.zeros(2)
    with pytest.raises(ValueError) as info:
        load_state_dict(opt.init(params), mapping)
    assert str(info.value) == (
        "load_state_dict: missing keys ['0/mu/b', '0/nu/w']; unexpected keys ['extra/x', '0/mu/c']"
    )


def test_non_strict_load_restores_what_matches_and_reports_the_rest():
    opt, params, state = _trained_adam()
    mapping = state_dict(state)
    del mapping["0/mu/b"]
    mapping["extra/x"] = np.zeros(2)
    template = opt.init(params)
    loaded = load_state_dict(template, mapping, strict=False)
    assert loaded.missing_keys == ["0/mu/b"] and loaded.unexpected_keys == ["extra/x"]
    np.testing.assert_array_equal(loaded.state[0].mu["b"], template[0].mu["b"])  # kept from the template
    np.testing.assert_array_equal(loaded.state[0].mu["w"], state[0].mu["w"])
    np.testing.assert_array_equal(loaded.state[0].nu["b"], state[0].nu["b"])
    assert int(loaded.state[0].count) == 3

    full = load_state_dict(template, state_dict(state))
    assert full.missing_keys == [] and full.unexpected_keys == []
    _assert_same(full.state, state)


def test_shape_and_dtype_mismatches_name_the_key_and_both_layouts():
    opt, params, state = _trained_adam()
    mapping = state_dict(state)
    mapping["0/mu/w"] = np.zeros(4, np.float32)
    mapping["0/nu/b"] = np.zeros(2, np.float16)
    expected = (
        "load_state_dict: shape or dtype mismatch for '0/mu/w': saved shape (4,) dtype float32, expected shape "
        "(3,) dtype float32, '0/nu/b': saved shape (2,) dtype float16, expected shape (2,) dtype float32"
    )
    for strict in (True, False):  # never cast or reshaped silently
        with pytest.raises(ValueError) as info:
            load_state_dict(opt.init(params), mapping, strict=strict)
        assert str(info.value) == expected


def test_bfloat16_and_narrow_dtypes_round_trip_exactly(tmp_path):
    tree = {
        "bf16": jnp.array([1 / 3, -2.5, 1e-3, 65504.0, -0.0], jnp.bfloat16),
        "f16": jnp.array([1 / 3, -2.5], jnp.float16),
        "f8": jnp.array([0.5, -3.0], jnp.float8_e4m3fn),
        "i8": jnp.array([-7, 100], jnp.int8),
        "f64": np.array([np.pi]),
        "flag": jnp.array(True),
    }
    template = {k: np.zeros_like(v) if isinstance(v, np.ndarray) else jnp.zeros_like(v) for k, v in tree.items()}
    save_state(tmp_path / "s.npz", tree)
    with np.load(tmp_path / "s.npz") as raw:  # readable with NumPy alone; bfloat16 stored as uint16
        assert raw["bf16"].dtype == np.uint16 and raw["f16"].dtype == np.float16
        assert '"bf16": "bfloat16"' in str(raw["__gradtx__"])
    for restored in (load_state(tmp_path / "s.npz", template).state, load_state_dict(template, state_dict(tree)).state):
        for k in tree:
            assert restored[k].dtype == tree[k].dtype, k
            np.testing.assert_array_equal(
                np.asarray(restored[k]).view(np.uint8), np.asarray(tree[k]).view(np.uint8), err_msg=k
            )  # the same bits (-0.0 included)
        assert isinstance(restored["f64"], np.ndarray)  # a NumPy template leaf gives a NumPy leaf


def test_prng_keys_round_trip_with_the_template_implementation(tmp_path):
    opt = gradtx.noisy_sgd(0.1, key=0)
    params = _small()
    state = opt.init(params)
    for _ in range(2):
        _, state = _update(opt, params, state, params)
    key = state[0].rng_key
    restored = load_state_dict(opt.init(params), state_dict(state)).state[0].rng_key
    assert jax.random.key_impl(restored) == jax.random.key_impl(key)
    np.testing.assert_array_equal(jax.random.key_data(restored), jax.random.key_data(key))

    rbg = gradtx.add_noise(0.1, 0.55, key=jax.random.key(3, impl="rbg"))
    rbg_state = rbg.init(params)
    save_state(tmp_path / "k.npz", rbg_state)
    back = load_state(tmp_path / "k.npz", rbg.init(params)).state.rng_key
    assert str(jax.random.key_impl(back)) == "rbg"
    np.testing.assert_array_equal(jax.random.key_data(back), jax.random.key_data(rbg_state.rng_key))
    with pytest.raises(ValueError, match=r"'rng_key': saved shape \(4,\) dtype uint32, expected key data shape \(2,\)"):
        load_state(tmp_path / "k.npz", gradtx.add_noise(0.1, 0.55, key=3).init(params))


def test_abstract_template_from_eval_shape():
    params = _small()
    for opt in (gradtx.noisy_sgd(0.1, key=0), gradtx.adam(0.1)):
        state = _update(opt, params, opt.init(params), params)[1]
        template = jax.eval_shape(opt.init, params)  # ShapeDtypeStructs: nothing allocated before loading
        restored = load_state_dict(template, state_dict(state)).state
        _assert_same(restored, state)
        assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(restored))


def test_nothing_passed_in_is_mutated_and_restored_buffers_are_fresh(tmp_path):
    opt, params, state = _trained_adam()
    mapping = state_dict(state)
    snapshot = dict(mapping)
    template = opt.init(params)
    template_before = jax.tree.map(np.array, template)
    state_before = jax.tree.map(np.array, state)
    restored = load_state_dict(template, mapping).state
    save_state(tmp_path / "s.npz", state)
    assert mapping == snapshot and all(mapping[k] is snapshot[k] for k in mapping)
    jax.tree.map(np.testing.assert_array_equal, template, template_before)
    jax.tree.map(np.testing.assert_array_equal, state, state_before)
    for k, leaf in state_dict(restored).items():  # copies: donating the restored state cannot delete mapping's
        assert leaf.unsafe_buffer_pointer() != mapping[k].unsafe_buffer_pointer(), k
        assert leaf.sharding == state_dict(template)[k].sharding


@pytest.mark.parametrize("fmt", [None, "npz", "orbax"])
def test_restored_arrays_take_the_template_sharding(fmt, tmp_path):
    """Template leaves placed in host memory (a sharding other than the default) give restored leaves placed
    there too. (Checked by hand with a mesh of two forced host devices and NamedSharding as well.)"""
    if fmt == "orbax":
        pytest.importorskip("orbax.checkpoint")
    opt, params, state = _trained_adam()
    host = jax.sharding.SingleDeviceSharding(jax.devices()[0], memory_kind="pinned_host")
    template = opt.init(params)
    template = (template[0]._replace(mu=jax.device_put(template[0].mu, host)), template[1])
    if fmt is None:
        restored = load_state_dict(template, {k: np.asarray(v) for k, v in state_dict(state).items()}).state
    else:
        save_state(tmp_path / "s", state, format=fmt)
        restored = load_state(tmp_path / "s", template).state
    assert restored[0].mu["w"].sharding == host and restored[0].mu["b"].sharding == host
    assert restored[0].nu["w"].sharding == state[0].nu["w"].sharding != host
    _assert_same(restored, state)


# --------------------------------------------------------------------------------------------------
# Files.
# --------------------------------------------------------------------------------------------------


def test_plain_numpy_savez_of_a_state_dict_loads(tmp_path):
    opt, params, state = _trained_adam()
    np.savez(tmp_path / "plain.npz", **{k: np.asarray(v) for k, v in state_dict(state).items()})
    _assert_same(load_state(tmp_path / "plain.npz", opt.init(params)).state, state)


def test_file_errors(tmp_path, monkeypatch):
    opt, params, state = _trained_adam()
    path = tmp_path / "s.npz"
    save_state(path, state)
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        save_state(path, state)
    save_state(path, opt.init(params), overwrite=True)
    assert int(load_state(path, opt.init(params)).state[0].count) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["s.npz"]  # no temporary file left behind
    with pytest.raises(ValueError, match=r"save_state\(format='zip'\): format must be one of 'npz', 'orbax'"):
        save_state(tmp_path / "t", state, format="zip")
    with pytest.raises(FileNotFoundError, match="load_state: no checkpoint at"):
        load_state(tmp_path / "missing.npz", state)
    with pytest.raises(ValueError, match=r"load_state: missing keys \['other'\]; unexpected keys \['0/count'"):
        load_state(path, {"other": jnp.zeros(2)})

    monkeypatch.setitem(sys.modules, "orbax", None)
    monkeypatch.setitem(sys.modules, "orbax.checkpoint", None)
    with pytest.raises(ImportError, match=r"needs orbax-checkpoint: pip install 'gradtx\[checkpoint\]'"):
        save_state(tmp_path / "o", state, format="orbax")


def test_orbax_strict_errors_and_overwrite(tmp_path):
    pytest.importorskip("orbax.checkpoint")
    opt, params, state = _trained_adam()
    path = tmp_path / "ckpt"
    save_state(path, state, format="orbax")
    with pytest.raises(FileExistsError):
        save_state(path, state, format="orbax")
    save_state(path, {"x": jnp.ones(2, jnp.bfloat16), **{"0": state[0]}}, format="orbax", overwrite=True)
    with pytest.raises(ValueError, match=r"load_state: missing keys \[\]; unexpected keys \['x'\]"):
        load_state(path, opt.init(params))
    loaded = load_state(path, opt.init(params), strict=False)
    assert loaded.unexpected_keys == ["x"] and loaded.missing_keys == []
    _assert_same(loaded.state, state)
