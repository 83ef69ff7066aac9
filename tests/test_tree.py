"""gradtx.tree: each utility against NumPy or against optax.tree on the same inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx import tree


def _state():
    p = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    opt = gradtx.chain(gradtx.scale_by_adam(), gradtx.trace(0.9), gradtx.scale_by_learning_rate(0.1))
    return p, opt, opt.init(p)


def test_get_all_with_path_matches_optax():
    p, _, state = _state()
    theirs = optax.chain(optax.scale_by_adam(), optax.trace(0.9), optax.scale_by_learning_rate(0.1)).init(p)
    for key in ("mu", "nu", "count", "trace", "ScaleByAdamState"):
        ours = tree.get_all_with_path(state, key)
        ref = optax.tree.get_all_with_path(theirs, key)
        assert [jax.tree_util.keystr(tuple(jax.tree_util.GetAttrKey(e.name) if hasattr(e, "tuple_name") else e
                                           for e in path)) for path, _ in ours] == \
               [jax.tree_util.keystr(tuple(jax.tree_util.GetAttrKey(e.name) if hasattr(e, "tuple_name") else e
                                           for e in path)) for path, _ in ref]
        assert [str(e) for e in ours[0][0]] == [str(e) for e in ref[0][0]]
        assert [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(ours[0][1])[0]] == \
               [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(ref[0][1])[0]]


def test_get_set_and_filtering():
    _, _, state = _state()
    assert tree.get(state, "nu")["w"].shape == (2,)
    assert tree.get(state, "absent", default=7) == 7
    new = tree.set(state, count=jnp.int32(5))
    assert int(tree.get(new, "count")) == 5 and int(tree.get(state, "count")) == 0  # input not mutated
    bumped = tree.set(new, count=lambda c: c + 1)
    assert int(tree.get(bumped, "count")) == 6
    with pytest.raises(KeyError, match="no value named 'nope'"):
        tree.set(state, nope=1)
    only_trace = tree.get(state, "trace", filtering=lambda path, v: isinstance(v, dict))
    assert set(only_trace) == {"w", "b"}


def test_map_params_applies_to_param_shaped_parts_only():
    p, opt, state = _state()
    doubled = tree.map_params(opt, lambda x: x + 1.0, state)
    np.testing.assert_array_equal(tree.get(doubled, "mu")["w"], [1.0, 1.0])
    assert int(tree.get(doubled, "count")) == 0
    counted = tree.map_params(opt, lambda x: x, state, transform_non_params=lambda v: v + 3)
    assert int(tree.get(counted, "count")) == 3
    theirs_opt = optax.chain(optax.scale_by_adam(), optax.trace(0.9), optax.scale_by_learning_rate(0.1))
    theirs = optax.tree_utils.tree_map_params(theirs_opt, lambda x: x + 1.0, theirs_opt.init(p))
    same_paths = [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(theirs)[0]]
    assert same_paths == [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(doubled)[0]]
    for x, y in zip(jax.tree.leaves(theirs), jax.tree.leaves(doubled)):
        np.testing.assert_array_equal(x, y)
    assert gradtx.tree_map_params is tree.map_params


def test_elementwise_and_reductions():
    t = {"a": jnp.array([1.0 + 2j, -3.0]), "b": jnp.array([[4.0]])}
    np.testing.assert_array_equal(tree.conj(t)["a"], [1.0 - 2j, -3.0])
    np.testing.assert_array_equal(tree.real(t)["a"], [1.0, -3.0])
    r = {"a": jnp.array([1.0, -3.0]), "b": jnp.array([[4.0]]), "e": jnp.zeros((0,))}
    assert float(tree.max(r)) == 4.0 and float(tree.min(r)) == -3.0 and tree.size(r) == 3
    np.testing.assert_array_equal(tree.clip(r, -1.0, 2.0)["a"], [1.0, -1.0])
    np.testing.assert_array_equal(tree.clip(r, None, 0.0)["b"], [[0.0]])
    np.testing.assert_allclose(tree.norm(r), np.sqrt(26.0))
    np.testing.assert_allclose(tree.norm(r, 1), 8.0)
    np.testing.assert_allclose(tree.norm(r, jnp.inf), 4.0)
    np.testing.assert_allclose(tree.sum(r), 2.0)
    np.testing.assert_allclose(tree.vdot(r, r), 26.0)
    np.testing.assert_allclose(tree.add_scale(r, 2.0, r)["a"], [3.0, -9.0])
    assert tree.batch_shape(r, (5,))["b"].shape == (5, 1, 1)
    assert tree.allclose(r, jax.tree.map(lambda x: x + 1e-9, r))
    assert not tree.allclose(r, jax.tree.map(lambda x: x + 1.0, r))


def test_dtype_handlers():
    t = {"a": jnp.zeros(2, jnp.float16), "b": jnp.zeros(2, jnp.float32)}
    with pytest.raises(ValueError, match="several dtypes"):
        tree.dtype(t)
    assert tree.dtype(t, "promote") == jnp.float32
    assert tree.dtype(t, "highest") == jnp.float32
    assert tree.dtype(t, "lowest") == jnp.float16
    with pytest.raises(ValueError, match=r"float16 are not ordered"):
        tree.dtype({"a": jnp.zeros(1, jnp.bfloat16), "b": jnp.zeros(1, jnp.float16)}, "highest")
    assert tree.dtype({"a": jnp.zeros(1, jnp.bfloat16)}) == jnp.bfloat16


def test_random_like_split_key_like_and_unwrap():
    t = {"a": jnp.zeros((3, 2)), "b": jnp.zeros(4, jnp.float16)}
    r1 = tree.random_like(jax.random.key(0), t)
    r2 = tree.random_like(jax.random.key(0), t)
    assert tree.allclose(r1, r2) and r1["b"].dtype == jnp.float16
    assert not np.allclose(np.ravel(r1["a"])[:4], np.asarray(r1["b"], np.float64))  # independent keys per leaf
    keys = tree.split_key_like(jax.random.key(1), t)
    raw = tree.unwrap_random_key_data(keys)
    assert raw["a"].dtype == jnp.uint32
    assert not np.array_equal(raw["a"], raw["b"])


def test_init_empty_state_and_moment_helpers_match_optax():
    assert gradtx.init_empty_state({"w": 1}) == gradtx.EmptyState()
    g, m = {"w": jnp.array([1.0, -2.0])}, {"w": jnp.array([0.5, 0.5])}
    for ours, theirs in [
        (tree.update_moment(g, m, 0.9, 2), optax.tree.update_moment(g, m, 0.9, 2)),
        (tree.update_moment_per_elem_norm(g, m, 0.9, 2), optax.tree.update_moment_per_elem_norm(g, m, 0.9, 2)),
        (tree.update_infinity_moment(g, m, 0.9, 1e-3), optax.tree.update_infinity_moment(g, m, 0.9, 1e-3)),
        (tree.bias_correction(m, 0.9, 3), optax.tree.bias_correction(m, 0.9, 3)),
    ]:
        np.testing.assert_allclose(ours["w"], theirs["w"], rtol=1e-6)


def test_add_scale_get_all_and_set_follow_optax():
    """``add_scale`` of Python numbers is float (3 + 0.1 * 2); ``None`` leaves stay ``None``;
    ``get_all_with_path`` lists shallower matches first; ``set`` replaces a whole state by its class name."""
    import optax

    from gradtx import tree as gt

    assert abs(float(gt.add_scale(3, 0.1, 2)) - 3.2) < 1e-6
    assert gt.add_scale(None, 1.0, jnp.ones(2)) is None
    state = {"hparams": {"learning_rate": 1.0}, "learning_rate": "foo"}
    ours = gt.get_all_with_path(gt.set(state, lambda _, v: isinstance(v, float), learning_rate=0.5), "learning_rate")
    assert ours == optax.tree.get_all_with_path(
        optax.tree.set(state, lambda _, v: isinstance(v, float), learning_rate=0.5), "learning_rate")
    assert [p for p, _ in ours] == [(jax.tree_util.DictKey("learning_rate"),),
                                    (jax.tree_util.DictKey("hparams"), jax.tree_util.DictKey("learning_rate"))]
    opt = gradtx.chain(gradtx.add_noise(1.0, 0.9, key=0), gradtx.scale_by_adam())
    s = opt.init(jnp.zeros(3))
    new = gradtx.AddNoiseState(count=jnp.array(42, jnp.int32), rng_key=s[0].rng_key)
    replaced = gt.set(s, AddNoiseState=new)
    assert int(replaced[0].count) == 42 and int(replaced[1].count) == 0
