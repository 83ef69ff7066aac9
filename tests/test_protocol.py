"""The protocol: pytree transformations, jit without retrace, grad through hyperparameters, repr, dtypes,
counters, structure errors, the base utilities and mixing with Optax."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx


def _quadratic_params():
    return {"x": jnp.array([1.0, -2.0], jnp.float32)}


# 1. A jitted step taking the optimizer as an argument traces once for adam(1e-3), adam(2e-3), adam(3e-3).
def test_jitted_step_traces_once_across_learning_rates():
    def step(opt, params, state):
        grads = jax.tree.map(lambda p: 2 * p, params)
        updates, state = opt.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    jitted = jax.jit(chex.assert_max_traces(step, n=1))
    results = []
    for lr in (1e-3, 2e-3, 3e-3):
        opt = gradtx.adam(lr)
        params = _quadratic_params()
        params, _ = jitted(opt, params, opt.init(params))
        results.append(params["x"])
    # The learning rate really changed: Adam's first step is -lr * sign(g).
    for lr, x in zip((1e-3, 2e-3, 3e-3), results):
        np.testing.assert_allclose(x, np.array([1.0, -2.0]) - lr * np.array([1.0, -1.0]), rtol=1e-6)


def test_schedule_hyperparameters_do_not_retrace():
    jitted = jax.jit(chex.assert_max_traces(lambda opt, p, s: opt.update(p, s, p), n=1))
    for peak in (0.1, 0.2):
        opt = gradtx.sgd(gradtx.warmup_cosine_decay_schedule(0.0, peak, 5, 50), momentum=0.9)
        p = _quadratic_params()
        jitted(opt, p, opt.init(p))


# 2. jax.grad of the loss after k steps with respect to the learning rate equals the closed form.
def test_grad_of_loss_after_k_steps_wrt_learning_rate():
    a, x0, k, lr0 = 3.0, 1.5, 7, 0.05

    def loss_after_k(lr):
        opt = gradtx.sgd(lr)
        x = jnp.asarray(x0)
        state = opt.init(x)
        for _ in range(k):
            updates, state = opt.update(a * x, state, x)  # gradient of 0.5 a x^2
            x = gradtx.apply_updates(x, updates)
        return 0.5 * a * x**2

    # x_k = (1 - lr a)^k x0, L_k = 0.5 a x0^2 (1 - lr a)^(2k), dL/dlr = -a^2 k x0^2 (1 - lr a)^(2k - 1)
    want = -(a**2) * k * x0**2 * (1 - lr0 * a) ** (2 * k - 1)
    got = jax.grad(loss_after_k)(jnp.float64(lr0))
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_grad_with_respect_to_the_optimizer_pytree():
    a, x0, k = 2.0, 1.0, 5
    opt = gradtx.sgd(0.1)

    def loss(opt):
        x = jnp.asarray(x0)
        state = opt.init(x)
        for _ in range(k):
            u, state = opt.update(a * x, state, x)
            x = gradtx.apply_updates(x, u)
        return 0.5 * a * x**2

    g = jax.grad(loss)(opt)
    assert isinstance(g, gradtx.chain)  # the gradient is an optimizer-shaped tree, rebuilt without validation
    lr = g.transforms[1].learning_rate
    np.testing.assert_allclose(lr, -(a**2) * k * x0**2 * (1 - 0.1 * a) ** (2 * k - 1), rtol=1e-6)


# 3. repr shows the chain and every hyperparameter value.
def test_repr_shows_chain_and_every_hyperparameter():
    text = repr(gradtx.adamw(1e-3, weight_decay=0.05))
    assert text.startswith("chain(")
    for piece in (
        "scale_by_adam(b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0, mu_dtype=None, nesterov=False)",
        "add_decayed_weights(weight_decay=0.05, mask=None)",
        "scale_by_learning_rate(learning_rate=0.001, flip_sign=True)",
    ):
        assert piece in text
    sched = repr(gradtx.sgd(gradtx.linear_schedule(1.0, 0.0, 10), momentum=0.9))
    assert "linear_schedule(init_value=1.0, end_value=0.0, transition_steps=10, transition_begin=0)" in sched
    assert "trace(decay=0.9, nesterov=False, accumulator_dtype=None)" in sched


# 4. Hyperparameters keep float32 or wider: Adam on bfloat16 with b2=0.999 makes a normal first step.
def test_bfloat16_adam_first_step_is_minus_lr_sign():
    params = {"w": jnp.array([0.5, -1.0, 2.0, -3.0], jnp.bfloat16)}
    grads = {"w": jnp.array([0.25, -4.0, 1e-3, -0.5], jnp.bfloat16)}
    opt = gradtx.adam(1e-2, b2=0.999)
    updates, state = opt.update(grads, opt.init(params), params)
    assert updates["w"].dtype == jnp.bfloat16
    assert state[0].nu["w"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(updates["w"], np.float32), -1e-2 * np.sign([0.25, -4.0, 1e-3, -0.5]),
                               rtol=2e-2)
    # The same step jitted with the optimizer as an argument (hyperparameters traced) agrees.
    u2, _ = jax.jit(lambda o, g, s, p: o.update(g, s, p))(opt, grads, opt.init(params), params)
    np.testing.assert_array_equal(np.asarray(u2["w"], np.float32), np.asarray(updates["w"], np.float32))


# Counters are int32 and saturate.
def test_counters_are_int32_and_saturate():
    big = jnp.asarray(np.iinfo(np.int32).max, jnp.int32)
    assert gradtx.safe_int32_increment(big) == big
    assert gradtx.safe_int32_increment(jnp.int32(4)) == 5
    opt = gradtx.scale_by_adam()
    params = {"w": jnp.ones(3, jnp.float32)}
    state = opt.init(params)
    assert state.count.dtype == jnp.int32
    state = state._replace(count=big)
    updates, state = opt.update(params, state, params)
    assert state.count == big
    assert np.all(np.isfinite(np.asarray(updates["w"])))


def test_mismatched_tree_names_the_first_differing_path():
    opt = gradtx.adam(1e-3)
    params = {"layer": {"w": jnp.ones(2), "b": jnp.ones(2)}}
    state = opt.init(params)
    with pytest.raises(TypeError, match=r"chain\.update: .*updates\['layer'\]\['c'\]"):
        opt.update({"layer": {"w": jnp.ones(2), "c": jnp.ones(2)}}, state, params)
    with pytest.raises(TypeError, match=r"params\['layer'\]\['w'\] has no update"):
        opt.update({"layer": {"b": jnp.ones(2)}}, state, params)


def test_block_needing_params_names_itself():
    with pytest.raises(ValueError, match=r"add_decayed_weights\.update: params are required"):
        gradtx.adamw(1e-3).update({"w": jnp.ones(2)}, gradtx.adamw(1e-3).init({"w": jnp.ones(2)}))


def test_inputs_are_not_mutated():
    params = {"w": np.array([1.0, 2.0], np.float32)}
    grads = {"w": np.array([0.5, -0.5], np.float32)}
    before = (params["w"].copy(), grads["w"].copy())
    opt = gradtx.adamw(0.1, weight_decay=0.1)
    u, _ = opt.update(grads, opt.init(params), params)
    gradtx.apply_updates(params, u)
    np.testing.assert_array_equal(params["w"], before[0])
    np.testing.assert_array_equal(grads["w"], before[1])


# --- base utilities ---------------------------------------------------------------------------------


def test_gradient_transformation_from_two_functions_composes():
    double = gradtx.GradientTransformation(lambda p: gradtx.EmptyState(), lambda u, s, p=None: (
        jax.tree.map(lambda x: 2 * x, u), s))
    assert isinstance(double, gradtx.GradientTransformation)
    assert "GradientTransformation(init=" in repr(double)
    opt = gradtx.chain(double, gradtx.scale(3.0))
    p = {"w": jnp.array([1.0, -1.0])}
    u, _ = jax.jit(opt.update)(p, opt.init(p), p)
    np.testing.assert_allclose(u["w"], [6.0, -6.0])


def test_identity_set_to_zero_stateless():
    p = {"w": jnp.array([1.0, -2.0]), "none": None}
    u, s = gradtx.identity().update(p, gradtx.identity().init(p))
    assert s == gradtx.EmptyState() and u is p
    z, _ = gradtx.set_to_zero().update(p, gradtx.EmptyState())
    np.testing.assert_array_equal(z["w"], [0.0, 0.0])
    assert z["none"] is None
    half = gradtx.stateless(lambda u, params: jax.tree.map(lambda g, q: g - q, u, params))
    np.testing.assert_allclose(half.update(p, half.init(p), {"w": jnp.ones(2), "none": None})[0]["w"], [0.0, -3.0])
    sq = gradtx.stateless_with_tree_map(lambda g, q: g**2 if q is None else g * q)
    np.testing.assert_allclose(sq.update(p, sq.init(p))[0]["w"], [1.0, 4.0])
    np.testing.assert_allclose(sq.update(p, sq.init(p), p)[0]["w"], [1.0, 4.0])


def test_apply_updates_casts_back_and_skips_none():
    params = {"a": jnp.array([1.0], jnp.bfloat16), "b": None, "c": jnp.array([2.0], jnp.float32)}
    updates = {"a": jnp.array([0.5], jnp.float32), "b": None, "c": None}
    new = gradtx.apply_updates(params, updates)
    assert new["a"].dtype == jnp.bfloat16 and float(new["a"][0]) == 1.5
    assert new["b"] is None
    np.testing.assert_array_equal(new["c"], [2.0])


def test_incremental_and_periodic_update():
    new, old = {"w": jnp.array([2.0, 4.0])}, {"w": jnp.array([0.0, 0.0])}
    np.testing.assert_allclose(gradtx.incremental_update(new, old, 0.25)["w"], [0.5, 1.0])
    np.testing.assert_allclose(gradtx.periodic_update(new, old, jnp.int32(6), 3)["w"], [2.0, 4.0])
    np.testing.assert_allclose(gradtx.periodic_update(new, old, jnp.int32(7), 3)["w"], [0.0, 0.0])


def test_named_chain_state_is_a_dict_and_names_are_unique():
    opt = gradtx.named_chain(("adam", gradtx.scale_by_adam()), ("lr", gradtx.scale_by_learning_rate(0.1)))
    p = {"w": jnp.array([1.0, -1.0])}
    state = opt.init(p)
    assert set(state) == {"adam", "lr"}
    u, _ = opt.update(p, state, p)
    np.testing.assert_allclose(u["w"], [-0.1, 0.1], rtol=1e-6)
    assert gradtx.tree.get(state, "nu")["w"].shape == (2,)
    with pytest.raises(ValueError, match=r"named_chain\(names=\['a', 'a'\]\): names must be unique"):
        gradtx.named_chain(("a", gradtx.identity()), ("a", gradtx.identity()))


# --- mixing with Optax ------------------------------------------------------------------------------


def test_optax_transformation_inside_a_gradtx_chain_under_jit():
    mixed = gradtx.chain(optax.scale_by_adam(), gradtx.scale_by_learning_rate(1e-2))
    assert "foreign(" in repr(mixed)
    assert not any(callable(leaf) for leaf in jax.tree.leaves(mixed))
    p = {"w": jnp.array([1.0, -3.0])}
    jitted = jax.jit(chex.assert_max_traces(lambda o, g, s: o.update(g, s, value=jnp.float32(1.0)), n=1))
    u, _ = jitted(mixed, p, mixed.init(p))
    ref_u, _ = gradtx.adam(1e-2).update(p, gradtx.adam(1e-2).init(p))
    np.testing.assert_allclose(u["w"], ref_u["w"], rtol=1e-6)


def test_gradtx_block_inside_an_optax_chain():
    opt = optax.chain(gradtx.scale_by_adam(), optax.scale(-1e-2))
    p = {"w": jnp.array([1.0, -3.0])}
    u, _ = opt.update(p, opt.init(p))
    ref_u, _ = optax.adam(1e-2).update(p, optax.adam(1e-2).init(p))
    np.testing.assert_allclose(u["w"], ref_u["w"], rtol=1e-6)


def test_tree_get_finds_adam_moments():
    p = {"w": jnp.ones(3)}
    state = gradtx.adam(1e-3).init(p)
    assert gradtx.tree.get(state, "count").dtype == jnp.int32
    assert gradtx.tree.get(state, "zzz") is None  # Optax's convention: the default when absent
    with pytest.raises(KeyError, match="2 values named 'count'"):
        gradtx.tree.get(gradtx.chain(gradtx.adam(1e-3), gradtx.ema(0.9)).init(p), "count")


def test_eval_shape_of_init_allocates_nothing():
    params = {"w": jax.ShapeDtypeStruct((1000, 1000), jnp.float32)}
    for opt in (gradtx.adam(1e-3), gradtx.adamw(1e-3), gradtx.rmsprop(1e-3, decay=None), gradtx.sgd(0.1, 0.9)):
        shapes = jax.eval_shape(opt.init, params)
        assert all(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(shapes))
