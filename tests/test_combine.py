"""Combinators that select parameters or steps: masked, partition (multi_transform), freeze,
selective_transform, conditionally_transform, conditionally_mask.

The registry (tests/registry_combine.py) runs each of them against its float64 reference and against Optax
for 200 steps; here: identities, nesting, error messages, extra arguments, state structure and step logic.
"""

from __future__ import annotations

import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx.base import EmptyState, GradientTransformation
from gradtx.combine import (
    ConditionallyMaskState,
    ConditionallyTransformState,
    MaskedNode,
    MaskedState,
    MultiTransformState,
    PartitionState,
    chain,
    conditionally_mask,
    conditionally_transform,
    freeze,
    masked,
    multi_transform,
    partition,
    selective_transform,
)
from gradtx.testing.contract import default_params, random_like

WD = {"w": True, "b": False, "nested": {"s": False, "none": None}, "t": (True,)}
LABELS = {"w": "adam", "b": "sgd", "nested": {"s": "sgd", "none": None}, "t": ("adam",)}


def _paths(tree):
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _run(tx, params=None, steps=12, seed=0, **extra):
    """Updates of ``steps`` jitted steps on pseudo-random gradients, and the final state."""
    params = default_params(jnp.float32) if params is None else params
    state = tx.init(params)
    update = jax.jit(lambda g, s, p: tx.update(g, s, p, **extra))
    outs = []
    for k in range(steps):
        u, state = update(random_like(params, seed + k), state, params)
        outs.append(u)
    return outs, state


def _same(a, b, rtol=1e-6, atol=1e-7):
    assert jax.tree.structure(a) == jax.tree.structure(b), f"{jax.tree.structure(a)} != {jax.tree.structure(b)}"
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol)


def _same_runs(a, b, **kw):
    for x, y in zip(a, b):
        _same(x, y, **kw)


# --- surface ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["masked", "partition", "freeze", "selective_transform",
                                  "conditionally_transform", "conditionally_mask"])
def test_same_parameters_and_defaults_as_optax(name):
    ours = inspect.signature(globals()[name]).parameters.values()
    theirs = inspect.signature(getattr(optax, name)).parameters.values()
    assert [(p.name, p.kind, p.default) for p in ours] == [(p.name, p.kind, p.default) for p in theirs]


def test_state_classes_have_optax_names_and_fields():
    for ours, theirs in [(MaskedState, optax.MaskedState), (PartitionState, optax.PartitionState),
                         (ConditionallyMaskState, optax.ConditionallyMaskState),
                         (ConditionallyTransformState, optax.ConditionallyTransformState)]:
        assert ours.__name__ == theirs.__name__ and ours._fields == theirs._fields
    assert MaskedNode.__name__ == "MaskedNode" and MaskedNode._fields == ()
    assert multi_transform is partition and MultiTransformState is PartitionState


# --- masked ------------------------------------------------------------------------------------------------

ALL_TRUE = [True, jax.tree.map(lambda _: True, default_params()), {"w": True, "b": True, "nested": True, "t": True},
            lambda p: jax.tree.map(lambda _: True, p)]
ALL_FALSE = [False, jax.tree.map(lambda _: False, default_params()), {"w": False, "b": False, "nested": False,
                                                                      "t": False}, lambda p: False]


@pytest.mark.parametrize("mask", ALL_TRUE, ids=["bool", "tree", "prefix", "callable"])
def test_masked_with_everything_selected_is_the_inner_transformation(mask):
    inner = chain(gradtx.clip_by_global_norm(1.0), gradtx.scale_by_adam())  # the norm spans every leaf
    ours, s_ours = _run(masked(inner, mask))
    plain, s_plain = _run(inner)
    _same_runs(ours, plain, rtol=0, atol=0)
    assert isinstance(s_ours, MaskedState)
    _same(s_ours.inner_state, s_plain, rtol=0, atol=0)


@pytest.mark.parametrize("mask", ALL_FALSE, ids=["bool", "tree", "prefix", "callable"])
def test_masked_with_nothing_selected_leaves_updates_unchanged(mask):
    params = default_params()
    tx = masked(gradtx.scale_by_adam(), mask)
    state = tx.init(params)
    assert jax.tree.leaves(state.inner_state.mu) == []  # the inner state holds no selected leaf
    g = random_like(params, 3)
    u, _ = jax.jit(tx.update)(g, state, params)
    _same(u, g, rtol=0, atol=0)


def _expected_on_w_and_t(inner, steps=12):
    """The inner transformation run on {w, t} alone; b and nested pass through."""
    params = default_params()
    sub = {"w": params["w"], "t": params["t"]}
    state = inner.init(sub)
    outs = []
    for k in range(steps):
        g = random_like(params, k)
        u, state = inner.update({"w": g["w"], "t": g["t"]}, state, sub)
        outs.append({**g, **u})
    return outs


@pytest.mark.parametrize("mask", [WD, {"w": True, "b": False, "nested": False, "t": True},
                                  lambda p: {k: k in ("w", "t") for k in p},
                                  lambda p: jax.tree.map(lambda x: x.ndim == 2 or x.shape == (2,), p)],
                         ids=["tree", "prefix", "callable prefix", "callable tree"])
def test_masked_transforms_exactly_the_selected_leaves(mask):
    inner = chain(gradtx.clip_by_global_norm(1.0), gradtx.trace(0.9))
    ours, _ = _run(masked(inner, mask))
    _same_runs(ours, _expected_on_w_and_t(inner), rtol=1e-6)


def test_masked_state_has_optax_structure():
    # Optax's own check for issue #271: the trace holds MaskedNode where the mask is False.
    params = {"a": [jnp.ones(1), (jnp.ones(2), jnp.ones(3))], "b": {"c": jnp.ones(4), "d": jnp.ones(5)}}
    mask = {"a": [True, (True, False)], "b": False}
    trace = masked(gradtx.trace(0.9), mask).init(params).inner_state.trace
    expected = {"a": [jnp.zeros(1), (jnp.zeros(2), MaskedNode())], "b": MaskedNode()}
    assert jax.tree.structure(trace) == jax.tree.structure(expected)
    theirs = optax.masked(optax.trace(0.9), mask).init(params)
    assert _paths(masked(gradtx.trace(0.9), mask).init(params)) == _paths(theirs)


# --- masked inside masked (Optax issue #271) -----------------------------------------------------------------


def test_nested_masked_as_in_optax_issue_271():
    params = {f"linear_{i}": {"w": jnp.zeros((1, i)), "b": jnp.zeros(i)} for i in (1, 2, 3)}
    params["linear_3"]["w"] = jnp.zeros((2, 3))
    outer = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)  # noqa: E731
    inner_mask = jax.tree.map(lambda _: True, params)
    inner_mask["linear_2"] = False
    tx = masked(masked(gradtx.scale(-1.0), inner_mask), outer)
    g = jax.tree.map(jnp.ones_like, params)
    u, _ = jax.jit(tx.update)(g, jax.jit(tx.init)(params), params)
    want = jax.tree.map(jnp.ones_like, params)
    want["linear_1"]["w"] = -want["linear_1"]["w"]
    want["linear_3"]["w"] = -want["linear_3"]["w"]
    _same(u, want, rtol=0, atol=0)
    theirs = optax.masked(optax.masked(optax.scale(-1.0), inner_mask), outer)
    _same(u, theirs.update(g, theirs.init(params), params)[0], rtol=0, atol=0)


def test_nested_masked_applies_the_inner_mask_to_what_the_outer_passes():
    inner = {"w": True, "b": True, "nested": {"s": True, "none": None}, "t": (False,)}
    both = {"w": True, "b": False, "nested": {"s": False, "none": None}, "t": (False,)}  # inner AND outer
    nested, s_nested = _run(masked(masked(gradtx.scale_by_adam(), inner), WD), steps=20)
    direct, s_direct = _run(masked(gradtx.scale_by_adam(), both), steps=20)
    _same_runs(nested, direct, rtol=0, atol=0)
    _same(s_nested.inner_state.inner_state, s_direct.inner_state, rtol=0, atol=0)


def test_nested_inner_mask_finer_than_the_outer_prefix():
    # The outer mask leaves out the whole "nested" subtree at a prefix node; the inner mask has leaves below
    # it. Only what the outer mask passes is selected (Optax 0.2.8 raises a tree-structure error here).
    outer = {"w": True, "b": True, "nested": False, "t": True}
    inner = {"w": False, "b": False, "nested": {"s": True, "none": None}, "t": (True,)}
    both = {"w": False, "b": False, "nested": False, "t": True}
    nested, _ = _run(masked(masked(gradtx.trace(0.5), inner), outer))
    direct, _ = _run(masked(gradtx.trace(0.5), both))
    _same_runs(nested, direct, rtol=0, atol=0)


def test_partition_inside_masked():
    labels = {"w": "a", "b": "b", "nested": {"s": "b", "none": None}, "t": ("a",)}
    tx = masked(partition({"a": gradtx.scale(2.0), "b": gradtx.scale(3.0)}, labels), WD)
    params = default_params()
    g = random_like(params, 1)
    u, _ = tx.update(g, tx.init(params), params)
    _same(u, {**g, "w": 2 * g["w"], "t": (2 * g["t"][0],)}, rtol=1e-7)


# --- errors --------------------------------------------------------------------------------------------------


def test_partition_error_names_every_unlabelled_parameter_and_every_unknown_label():
    params = default_params()
    labels = {"w": "adam", "b": "bias", "nested": {"s": None, "none": None}, "t": ("emb",)}
    tx = partition({"adam": gradtx.scale_by_adam(), "sgd": gradtx.trace(0.9)}, labels)  # construction is fine
    with pytest.raises(ValueError) as info:
        tx.init(params)
    text = str(info.value)
    assert text.startswith("partition.init: every parameter needs a label and every label a transformation")
    assert "parameters without a label: ['nested']['s']" in text
    assert "labels without a transformation: 'bias' (at ['b']), 'emb' (at ['t'][0])" in text
    assert "transformations are given for: 'adam', 'sgd'" in text


def test_partition_error_with_callable_labels_and_missing_keys():
    params = default_params()
    tx = partition({"a": gradtx.identity()}, lambda p: {"w": "a", "t": "z", "extra": "a"})
    with pytest.raises(ValueError) as info:
        tx.init(params)
    text = str(info.value)
    assert "parameters without a label: ['b'], ['nested']['s']" in text
    assert "labels without a transformation: 'z' (at ['t'])" in text
    assert "labels at no parameter: ['extra']" in text


def test_partition_error_with_labels_of_several_paths():
    params = default_params()
    tx = multi_transform({"adam": gradtx.scale_by_adam()}, {"w": "x", "b": "x", "nested": "y", "t": "adam"})
    with pytest.raises(ValueError, match=r"labels without a transformation: 'x' \(at \['b'\], \['w'\]\), "
                                         r"'y' \(at \['nested'\]\)"):
        tx.init(params)


def test_masked_mismatch_names_the_paths():
    with pytest.raises(ValueError, match=r"masked.init: the mask must have the structure of the params or a prefix"
                                         r" of it;\n  parameters without a mask value: \['nested'\]\['s'\], "
                                         r"\['t'\]\[0\];\n  mask entries at no parameter: \['x'\]"):
        masked(gradtx.identity(), {"w": True, "b": False, "x": True}).init(default_params())


def test_construction_errors():
    with pytest.raises(ValueError, match=r"masked\(mask=\{'w': 1.0\}\): mask must be a boolean, a tree of booleans"):
        masked(gradtx.identity(), {"w": 1.0})
    with pytest.raises(TypeError, match=r"masked: expected a transformation with init and update, got 3"):
        masked(3, True)
    with pytest.raises(ValueError, match=r"partition\(transforms=.*\): transforms must be a mapping"):
        partition([gradtx.identity()], "a")
    with pytest.raises(ValueError, match=r"freeze\(mask='w'\): mask must be a boolean"):
        freeze("w")
    with pytest.raises(ValueError, match=r"selective_transform\(freeze_mask=.*\): freeze_mask must be a boolean or "
                                         r"a tree of booleans, not a callable"):
        selective_transform(gradtx.identity(), freeze_mask=lambda p: True)
    with pytest.raises(ValueError, match=r"conditionally_mask\(should_transform_fn=3\): should_transform_fn must "
                                         r"be a callable"):
        conditionally_mask(gradtx.identity(), 3)


def test_mask_values_must_be_static_booleans():
    tx = masked(gradtx.identity(), lambda p: jax.tree.map(lambda x: jnp.sum(x) > 0, p))
    with pytest.raises(TypeError, match=r"masked\.(init|update): mask values must be booleans known before tracing"):
        jax.jit(tx.update)(default_params(), MaskedState(EmptyState()))


def test_condition_must_be_a_scalar():
    tx = conditionally_transform(gradtx.identity(), lambda step: jnp.ones(2, bool))
    with pytest.raises(TypeError, match=r"should_transform_fn must return a scalar boolean, got shape \(2,\)"):
        tx.update(default_params(), tx.init(default_params()))


# --- extra arguments and inner state ---------------------------------------------------------------------------


def _times_value(cls=GradientTransformation):
    """A transformation that needs ``value``: u * value, counting its calls (``cls`` builds it; Optax's
    combinators pass extra arguments only to ``optax.GradientTransformationExtraArgs``)."""

    def init(params):
        del params
        return {"calls": jnp.zeros([], jnp.int32)}

    def update(updates, state, params=None, *, value, **extra):
        del params, extra
        return jax.tree.map(lambda u: u * value, updates), {"calls": state["calls"] + 1}

    return cls(init, update)


def test_masked_and_partition_pass_extra_arguments_through():
    params = default_params()
    g = random_like(params, 2)
    tx = masked(_times_value(), WD)
    u, s = jax.jit(lambda g, s: tx.update(g, s, value=jnp.float32(3.0)))(g, tx.init(params))
    _same(u, {**g, "w": 3 * g["w"], "t": (3 * g["t"][0],)}, rtol=1e-7)
    assert int(s.inner_state["calls"]) == 1
    pt = partition({"adam": _times_value(), "sgd": gradtx.scale(-1.0)}, LABELS)
    u, _ = pt.update(g, pt.init(params), params, value=jnp.float32(2.0))
    _same(u, {"w": 2 * g["w"], "b": -g["b"], "nested": {"s": -g["nested"]["s"], "none": None},
              "t": (2 * g["t"][0],)}, rtol=1e-7)
    with pytest.raises(TypeError, match="value"):
        pt.update(g, pt.init(params), params)


def test_optax_block_needing_value_inside_masked_and_partition():
    value = jnp.float32(3.0)
    for ours, theirs in [
        (masked(optax.scale_by_polyak(), WD), optax.masked(optax.scale_by_polyak(), WD)),
        (partition({"adam": optax.scale_by_polyak(), "sgd": gradtx.trace(0.9)}, LABELS),
         optax.partition({"adam": optax.scale_by_polyak(), "sgd": optax.trace(0.9)}, LABELS)),
    ]:
        a, s_a = _run(ours, value=value)
        b, s_b = _run(theirs, value=value)
        _same_runs(a, b, rtol=1e-6)
        assert _paths(s_a) == _paths(s_b)


def test_mask_compatible_extra_args_masks_update_shaped_arguments():
    def add_tags(cls=GradientTransformation):
        def update(updates, state, params=None, *, tags, **extra):
            return jax.tree.map(lambda u, t: u + t, updates, tags), state

        return cls(lambda p: EmptyState(), update)

    params = default_params()
    g, tags = random_like(params, 1), random_like(params, 2)
    tx = masked(add_tags(), WD, mask_compatible_extra_args=True)
    u, _ = tx.update(g, tx.init(params), tags=tags)
    _same(u, {**g, "w": g["w"] + tags["w"], "t": (g["t"][0] + tags["t"][0],)}, rtol=1e-7)
    theirs = optax.masked(add_tags(optax.GradientTransformationExtraArgs), WD, mask_compatible_extra_args=True)
    _same(u, theirs.update(g, theirs.init(params), tags=tags)[0], rtol=0, atol=0)
    with pytest.raises(ValueError):  # unmasked tags do not match the masked updates the inner block sees
        masked(add_tags(), WD).update(g, tx.init(params), tags=tags)


def test_inner_states_keep_optax_structure():
    ours = partition({"adam": gradtx.scale_by_adam(), "sgd": gradtx.trace(0.9)}, LABELS)
    theirs = optax.partition({"adam": optax.scale_by_adam(), "sgd": optax.trace(0.9)}, LABELS)
    _, s_ours = _run(ours)
    _, s_theirs = _run(theirs)
    assert _paths(s_ours) == _paths(s_theirs)
    assert isinstance(s_ours, PartitionState) and isinstance(s_ours.inner_states["adam"], MaskedState)
    nu = gradtx.tree.get(s_ours, "nu")
    assert isinstance(nu["b"], MaskedNode) and nu["w"].shape == (3, 4)
    _same(optax.tree_utils.tree_get(s_ours, "nu"), nu, rtol=0, atol=0)
    np.testing.assert_allclose(nu["w"], optax.tree_utils.tree_get(s_theirs, "nu")["w"], rtol=1e-4)
    assert int(gradtx.tree.get(s_ours, "count")) == 12


def test_partition_is_masked_per_label():
    ta, tb = gradtx.scale_by_adam(), gradtx.trace(0.9)
    mask_a = jax.tree.map(lambda x: x == "adam", LABELS)
    mask_b = jax.tree.map(lambda x: x == "sgd", LABELS)
    a, _ = _run(partition({"adam": ta, "sgd": tb}, LABELS))
    b, _ = _run(chain(masked(ta, mask_a), masked(tb, mask_b)))
    _same_runs(a, b, rtol=0, atol=0)


def test_map_params_sees_through_masks():
    params = default_params()
    for tx in [masked(gradtx.scale_by_adam(), WD), partition({"adam": gradtx.scale_by_adam(),
                                                              "sgd": gradtx.trace(0.9)}, LABELS)]:
        state = tx.init(params)
        mapped = gradtx.tree.map_params(tx, lambda x: x + 1.0, state)
        assert jax.tree.structure(mapped) == jax.tree.structure(state)
        assert int(gradtx.tree.get(mapped, "count")) == 0  # a counter is not parameter-shaped
        assert float(jnp.min(gradtx.tree.get(mapped, "mu")["w"])) == 1.0


# --- freeze and selective_transform ------------------------------------------------------------------------


def test_freeze_zeroes_the_masked_updates():
    params = default_params()
    g = random_like(params, 5)
    tx = freeze(WD)
    state = tx.init(params)
    assert state == MaskedState(inner_state=EmptyState())
    u, _ = jax.jit(tx.update)(g, state)
    _same(u, {**g, "w": jnp.zeros((3, 4)), "t": (jnp.zeros(2),)}, rtol=0, atol=0)
    _same(freeze(True).update(g, freeze(True).init(params))[0], jax.tree.map(jnp.zeros_like, g), rtol=0, atol=0)
    _same(freeze(False).update(g, freeze(False).init(params))[0], g, rtol=0, atol=0)
    theirs = optax.freeze(WD)
    _same(u, theirs.update(g, theirs.init(params))[0], rtol=0, atol=0)


def test_selective_transform_trains_only_the_unfrozen_parameters():
    opt = gradtx.adam(1e-2)
    ours, s_ours = _run(selective_transform(opt, freeze_mask=WD))
    theirs, s_theirs = _run(optax.selective_transform(optax.adam(1e-2), freeze_mask=WD))
    _same_runs(ours, theirs, rtol=1e-6)
    assert _paths(s_ours) == _paths(s_theirs)
    assert set(s_ours.inner_states) == {"freeze", "train"}
    for u in ours:
        assert not np.any(u["w"]) and not np.any(u["t"][0])
    everything, _ = _run(selective_transform(opt, freeze_mask=False))
    _same_runs(everything, _run(opt)[0], rtol=0, atol=0)


# --- conditionally_transform and conditionally_mask --------------------------------------------------------------


def test_conditionally_transform_runs_inner_only_when_the_condition_holds():
    params = {"x": jnp.zeros(3)}
    tx = conditionally_transform(gradtx.trace(0.5), lambda step: step % 2 == 0)
    state = tx.init(params)
    assert isinstance(state, ConditionallyTransformState)
    update = jax.jit(tx.update)
    trace = np.zeros(3)
    for k in range(8):
        g = {"x": jnp.full(3, float(k + 1))}
        u, state = update(g, state)
        if k % 2 == 0:  # steps 0, 2, 4, ...: the inner trace runs
            trace = (k + 1) + 0.5 * trace
            np.testing.assert_allclose(u["x"], trace)
        else:  # updates and inner state pass through
            np.testing.assert_allclose(u["x"], float(k + 1))
        np.testing.assert_allclose(state.inner_state.trace["x"], trace)
        assert int(state.step) == k + 1


def test_conditionally_mask_zeroes_skipped_steps_and_keeps_inner_state():
    params = {"x": jnp.zeros(3)}
    tx = conditionally_mask(gradtx.ema(0.5), lambda step: step >= 2)
    state = tx.init(params)
    assert isinstance(state, ConditionallyMaskState) and state._fields == ("step", "inner_state")
    for k in range(5):
        u, state = jax.jit(tx.update)({"x": jnp.ones(3)}, state)
        if k < 2:
            np.testing.assert_array_equal(u["x"], 0.0)
            assert int(state.inner_state.count) == 0
        else:
            np.testing.assert_allclose(u["x"], 1.0)  # a debiased EMA of ones
            assert int(state.inner_state.count) == k - 1
    assert int(state.step) == 5


@pytest.mark.parametrize("ours_cls,theirs_cls", [(conditionally_transform, optax.conditionally_transform),
                                                 (conditionally_mask, optax.conditionally_mask)])
def test_conditionals_forward_extra_args_and_match_optax(ours_cls, theirs_cls):
    def fn(step, value):
        return (value > 0) & (step % 2 == 1)

    ours = ours_cls(_times_value(), fn, forward_extra_args=True)
    theirs = theirs_cls(_times_value(optax.GradientTransformationExtraArgs), fn, forward_extra_args=True)
    params = default_params()
    s1, s2 = ours.init(params), theirs.init(params)
    for k in range(6):
        g, value = random_like(params, k), jnp.float32(1.0 if k < 4 else -1.0)
        u1, s1 = jax.jit(lambda g, s, v: ours.update(g, s, value=v))(g, s1, value)
        u2, s2 = theirs.update(g, s2, value=value)
        _same(u1, u2, rtol=0, atol=0)
    assert _paths(s1) == _paths(s2)
    _same(jax.tree.leaves(s1), jax.tree.leaves(s2), rtol=0, atol=0)
    assert int(s1.inner_state["calls"]) == 2  # steps 1 and 3
    without = ours_cls(_times_value(), fn)  # the condition receives the step only
    with pytest.raises(TypeError):
        without.update(default_params(), without.init(params), value=jnp.float32(1.0))


def test_conditionals_under_scan_equal_the_loop():
    params = default_params()
    tx = conditionally_mask(chain(gradtx.clip_by_global_norm(1.0), gradtx.scale_by_adam()), lambda s: s % 3 != 1)
    grads = [random_like(params, k) for k in range(7)]
    loop, _ = _run(tx, steps=7)

    def body(s, g):
        u, s = tx.update(g, s, params)
        return s, u

    _, scanned = jax.lax.scan(body, tx.init(params), jax.tree.map(lambda *x: jnp.stack(x), *grads))
    for k in range(7):
        _same(jax.tree.map(lambda x, k=k: x[k], scanned), loop[k], rtol=1e-6)


# --- combinators are pytrees -----------------------------------------------------------------------------------


def test_hyperparameters_inside_combinators_are_leaves():
    params = {"x": jnp.ones(3), "y": jnp.ones(2)}

    def make(lr):
        return partition({"a": gradtx.sgd(lr), "b": freeze(True)}, {"x": "a", "y": "b"})

    @jax.jit
    @chex.assert_max_traces(n=1)  # a new learning rate does not retrace
    def step(tx, p):
        u, _ = tx.update(jax.tree.map(jnp.ones_like, p), tx.init(p), p)
        return gradtx.apply_updates(p, u)

    p1, p2 = step(make(0.1), params), step(make(0.2), params)
    np.testing.assert_allclose(p1["x"], 0.9)
    np.testing.assert_allclose(p2["x"], 0.8)
    np.testing.assert_allclose(p2["y"], 1.0)
    grad = jax.grad(lambda tx: jnp.sum(step(tx, params)["x"]))(make(0.1))
    np.testing.assert_allclose(grad.transforms["a"].transforms[-1].learning_rate, -3.0)


def test_repr_shows_the_inner_transformations():
    text = repr(partition({"adam": gradtx.scale_by_adam(), "sgd": gradtx.trace(0.9)}, LABELS))
    assert text.startswith("partition(\n  transforms={\n    'adam': scale_by_adam(b1=0.9")
    assert "'sgd': trace(decay=0.9" in text and "param_labels={'w': 'adam'" in text
    assert repr(freeze(True)) == "freeze(mask=True)"
    assert repr(masked(gradtx.scale(2.0), False)) == "masked(inner=scale(step_size=2.0), mask=False, " \
                                                     "mask_compatible_extra_args=False)"


def test_equal_masks_of_numpy_booleans_give_equal_tree_definitions_and_trace_once():
    # Masks are static (part of the tree definition) and compared by value: a 0-d NumPy boolean counts as the
    # Python bool, so two masked(...) built from fresh, equal NumPy masks are the same jit cache entry.
    params = {"w": jnp.ones(3), "b": jnp.ones(2), "t": (jnp.ones(2),)}

    def make(lr=0.1, w=True):
        mask = {"w": np.array(w), "b": np.array(False), "t": (np.bool_(True),)}
        return masked(gradtx.sgd(lr), mask)

    a, b = make(), make()
    assert a.mask is not b.mask
    assert jax.tree.structure(a) == jax.tree.structure(b)
    assert hash(jax.tree.structure(a)) == hash(jax.tree.structure(b))
    python_bools = masked(gradtx.sgd(0.1), {"w": True, "b": False, "t": (True,)})
    assert jax.tree.structure(a) == jax.tree.structure(python_bools)
    assert jax.tree.structure(a) != jax.tree.structure(make(w=False))

    traces = []

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(tx, p):
        traces.append(1)
        u, _ = tx.update(jax.tree.map(jnp.ones_like, p), tx.init(p), p)
        return gradtx.apply_updates(p, u)

    out_a, out_b = step(a, params), step(b, params)
    step(make(lr=0.2), params)  # a new learning rate (a leaf) with an equal mask: no retrace either
    assert len(traces) == 1
    _same(out_a, out_b, rtol=0, atol=0)
    np.testing.assert_allclose(out_a["w"], 0.9, rtol=1e-6)
    np.testing.assert_allclose(out_a["b"], 2.0)  # not selected: the update (ones) passes through unchanged
    np.testing.assert_allclose(out_a["t"][0], 0.9, rtol=1e-6)
