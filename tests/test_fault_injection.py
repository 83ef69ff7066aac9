"""Fault injection: bad trees, foreign states, integer parameters, extreme values, negative steps, broken
checkpoints and invalid options, each with its outcome asserted (README, "Reliability").

The tree groups run over the whole registry: every transformation, told one thing wrong, must say which call,
which path and what it expected, instead of broadcasting, reshaping its state or answering with a wrong number.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from registry import ENTRIES

import gradtx
from gradtx import StructureError
from gradtx.testing.contract import default_params, random_like


def _params():
    return default_params()


def _grads(params, seed=1):
    return random_like(params, seed)


def _call_name(tx) -> str:
    return type(tx).__name__


# --------------------------------------------------------------------------------------------------
# Trees: every mismatch named, nothing silently reshaped (every registry entry)
# --------------------------------------------------------------------------------------------------


def _with_leaf(tree, key, value):
    out = dict(tree)
    out[key] = value
    return out


def _has_state(tx, params) -> bool:
    return bool(jax.tree.leaves(tx.init(params)))


STATEFUL = [e for e in ENTRIES if _has_state(e.make(), default_params())]
SHAPES = pytest.mark.parametrize("bad_shape", [(5,), (2, 4)], ids=["incompatible", "broadcastable"])


def _refused(entry, bad_shape, with_params):
    params = _params()
    tx = entry.make()
    state = tx.init(params)
    grads = _with_leaf(_grads(params), "b", jnp.ones(bad_shape, jnp.float32))
    with pytest.raises(StructureError) as err:
        tx.update(grads, state, params if with_params else None, **dict(entry.extra_args or {}))
    msg = str(err.value)
    assert msg.startswith(f"{_call_name(tx)}.update:"), msg
    assert "['b']" in msg and str(bad_shape) in msg, msg
    return msg


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_update_leaf_unlike_its_parameter_is_refused(entry):
    """``b`` has shape (4,). An update of shape (2, 4) broadcasts against it and used to be accepted silently
    (the state leaf changed shape): it raises, naming the call, the path and both shapes. (A shape that cannot
    broadcast takes the same path; the state test below tries both.)"""
    bad_shape = (2, 4)
    msg = _refused(entry, bad_shape, with_params=True)
    assert f"updates['b'] has shape {bad_shape}, but params['b'] has shape (4,)" in msg, msg
    assert msg.startswith(f"{_call_name(entry.make())}.update:"), msg


def _state_tracks_b(entry) -> bool:
    """Whether some state leaf belongs to parameter ``b`` (a moment, an accumulator, a preconditioner)."""
    paths = jax.tree_util.tree_flatten_with_path(entry.make().init(default_params()))[0]
    return any(jax.tree_util.DictKey("b") in path and jnp.ndim(x) > 0 for path, x in paths)


TRACKS_B = [e for e in STATEFUL if not e.needs_params and _state_tracks_b(e)]


@pytest.mark.parametrize("entry", TRACKS_B, ids=lambda e: e.name)
@SHAPES
def test_update_leaf_unlike_the_state_is_refused(entry, bad_shape):
    """Without params, the state made by init tells the expected shape (for every transformation whose state
    holds something for ``b``; a state of counters and keys, or one where ``b`` is masked out, cannot)."""
    msg = _refused(entry, bad_shape, with_params=False)
    assert "updates['b']" in msg and "does not have the shape of the parameter the state was made for" in msg, msg


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.needs_params], ids=lambda e: e.name)
def test_params_of_another_shape_are_refused(entry):
    """Updates shaped like the state, params of another shape (adamw's weight decay reads them)."""
    params = _params()
    tx = entry.make()
    state = tx.init(params)
    bad_params = _with_leaf(params, "b", jnp.ones((2, 4), jnp.float32))
    with pytest.raises(StructureError, match=r"\['b'\] has shape \(4,\), but params\['b'\] has shape \(2, 4\)"):
        tx.update(_grads(params), state, bad_params, **dict(entry.extra_args or {}))


@pytest.mark.parametrize("entry", STATEFUL, ids=lambda e: e.name)
def test_state_of_another_optimizer_is_refused_naming_both_types(entry):
    """An SGD-momentum state given to any stateful transformation: both state types are named."""
    params = _params()
    tx = entry.make()
    foreign_state = gradtx.sgd(0.1, momentum=0.9).init(params)
    if jax.tree.structure(foreign_state) == jax.tree.structure(tx.init(params)):
        pytest.skip("this transformation's state has the same type as SGD-momentum's")
    with pytest.raises(StructureError) as err:
        tx.update(_grads(params), foreign_state, params if entry.needs_params else None,
                  **dict(entry.extra_args or {}))
    msg = str(err.value)
    assert msg.startswith(f"{_call_name(tx)}.update: the state is not one this transformation's init makes"), msg
    assert "got (TraceState, EmptyState)" in msg, msg


# Blocks documented to pass integer parameters through, and entries whose blocks never see the parameters.
PASS_INTEGERS = {"identity", "set_to_zero"}


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.name not in PASS_INTEGERS], ids=lambda e: e.name)
def test_integer_parameters_are_refused_at_init(entry):
    """An int32 parameter would get an integer update and never move: init says so, naming the path, unless
    the parameter is kept out of every block (a mask that excludes ``b``): then its update passes untouched."""
    params = _with_leaf(_params(), "b", jnp.arange(4, dtype=jnp.int32))
    tx = entry.make()
    try:
        state = tx.init(params)
    except StructureError as err:
        assert re.search(r"params(\.buffers)?\[.*has integer dtype int32", str(err)), str(err)
        assert "['b']" in str(err) or "flat" in entry.name, str(err)
        return
    assert entry.uses_mask or "mask" in entry.name, f"{entry.name}: init accepted an integer parameter"
    grads = _with_leaf(_grads(_params()), "b", jnp.array([3, -1, 2, 5], jnp.int32))
    updates, _ = tx.update(grads, state, params, **dict(entry.extra_args or {}))
    np.testing.assert_array_equal(updates["b"], grads["b"])


@pytest.mark.parametrize("name", sorted(PASS_INTEGERS))
def test_pass_through_blocks_accept_integers(name):
    params = {"n": jnp.arange(3, dtype=jnp.int32)}
    tx = getattr(gradtx, name)()
    updates, _ = tx.update(params, tx.init(params))
    np.testing.assert_array_equal(updates["n"], params["n"] if name == "identity" else 0)


def test_boolean_parameters_are_refused():
    with pytest.raises(StructureError, match=re.escape("params['flag'] has boolean dtype bool")):
        gradtx.adam(1e-3).init({"w": jnp.ones(2), "flag": jnp.array([True, False])})


def test_integer_leaf_kept_out_with_partition_is_fine():
    params = {"w": jnp.ones(2), "step": jnp.zeros((), jnp.int32)}
    tx = gradtx.partition({"f": gradtx.adam(0.1), "i": gradtx.set_to_zero()}, {"w": "f", "step": "i"})
    state = tx.init(params)
    updates, _ = tx.update({"w": jnp.ones(2), "step": jnp.zeros((), jnp.int32)}, state, params)
    np.testing.assert_allclose(updates["w"], -0.1 * np.ones(2), rtol=1e-6)


def test_tree_of_another_structure_names_the_path():
    params = {"w": jnp.ones(2), "b": jnp.ones(3)}
    tx = gradtx.adamw(0.1)
    state = tx.init(params)
    with pytest.raises(StructureError, match=re.escape("updates['c'] against params['b']")):
        tx.update({"w": jnp.ones(2), "c": jnp.ones(3)}, state, params)


def test_multisteps_names_the_path():
    params = {"w": jnp.ones(3)}
    tx = gradtx.MultiSteps(gradtx.sgd(0.1, momentum=0.9), 2)
    state = tx.init(params)
    message = "MultiSteps.update: updates['w'] (shape (2, 3)) does not have the shape"
    with pytest.raises(StructureError, match=re.escape(message)):
        tx.update({"w": jnp.ones((2, 3))}, state)


def test_checks_hold_under_jit():
    params = {"w": jnp.ones(3)}
    tx = gradtx.adam(0.1)
    state = tx.init(params)
    with pytest.raises(StructureError, match=re.escape("updates['w'] (shape (2, 3)) does not have the shape")):
        jax.jit(tx.update)({"w": jnp.ones((2, 3))}, state)


def test_state_reshaped_by_hand_is_refused():
    """A state whose leaf was replaced by one of another shape (a bad checkpoint edit)."""
    params = {"w": jnp.ones(3)}
    tx = gradtx.sgd(0.1, momentum=0.9)
    state = tx.init(params)
    bad = (state[0]._replace(trace={"w": jnp.ones((2, 3))}), state[1])
    with pytest.raises(StructureError, match=re.escape("state[0].trace['w'] has shape (2, 3)")):
        tx.update({"w": jnp.ones(3)}, bad)


def test_complex_state_for_real_params_is_refused():
    params = {"w": jnp.ones(3)}
    tx = gradtx.adam(0.1)
    state = tx.init({"w": jnp.ones(3, jnp.complex64)})
    with pytest.raises(StructureError, match=r"state\[0\]\.mu\['w'\] has dtype complex64"):
        tx.update({"w": jnp.ones(3)}, state, params)


# apply_updates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "updates, pattern",
    [
        ({"w": jnp.ones((2, 3))}, r"apply_updates: updates\['w'\] has shape \(2, 3\), but params\['w'\] has "
                                  r"shape \(3,\)"),
        ({"w": jnp.ones(4)}, r"apply_updates: updates\['w'\] has shape \(4,\)"),
        ({"v": jnp.ones(3)}, r"apply_updates: the updates and params trees differ: updates\['v'\] against "
                             r"params\['w'\]"),
        ({"w": jnp.ones(3, jnp.complex64)}, r"apply_updates: updates\['w'\] is complex"),
    ],
    ids=["broadcastable", "incompatible", "other-key", "complex-into-real"],
)
def test_apply_updates_refuses(updates, pattern):
    with pytest.raises(StructureError, match=pattern):
        gradtx.apply_updates({"w": jnp.ones(3)}, updates)


def test_apply_updates_keeps_none_and_dtypes():
    params = {"w": jnp.ones(3, jnp.bfloat16), "none": None}
    out = gradtx.apply_updates(params, {"w": jnp.full(3, 0.5, jnp.float32), "none": None})
    assert out["none"] is None and out["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(out["w"], np.float32), 1.5)


# --------------------------------------------------------------------------------------------------
# Construction-time checks (the consolidation issue): a representative invalid value per kind
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: gradtx.scale_by_adam(b1=1.2), "scale_by_adam(b1=1.2): b1 must be in [0, 1)"),
        (lambda: gradtx.adam(1e-3, b2=-0.1), "adam(b2=-0.1): b2 must be in [0, 1)"),
        (lambda: gradtx.adam(float("nan")), "adam(learning_rate=nan)"),
        (lambda: gradtx.sgd(0.1, momentum=1.5), "sgd(momentum=1.5)"),
        (lambda: gradtx.clip_by_global_norm(-1.0), "clip_by_global_norm(max_norm=-1.0)"),
        (lambda: gradtx.scale_by_rms(decay=None, eps="x"), "scale_by_rms("),
        (lambda: gradtx.MultiSteps(gradtx.sgd(0.1), 0), "MultiSteps(every_k_schedule=0)"),
        (lambda: gradtx.adamw(1e-3, weight_decay=[0.1]), "adamw(weight_decay=[0.1])"),
        (lambda: gradtx.trace(0.9, nesterov="yes"), "trace(nesterov='yes')"),
        (lambda: gradtx.chain(gradtx.adam(0.1), 3), "chain"),
    ],
)
def test_invalid_options_are_refused_when_built(build, message):
    with pytest.raises((ValueError, TypeError)) as err:
        build()
    assert message in str(err.value), str(err.value)
