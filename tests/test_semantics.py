"""Semantics where gradtx must give Optax's result: code Optax accepts and that means something runs in gradtx
and returns the same values (or raises the same exception class, with gradtx's message).

Each test runs the same code through ``optax`` and ``gradtx`` and compares, and checks a closed form where
there is one: ``add_noise`` without a key, extra arguments through ``partition``, clipping with a zero bound,
hyperparameter schedules reaching 0 inside ``inject_hyperparams`` (eagerly and jitted alike), tree mismatches
in ``masked`` / ``freeze`` / ``selective_transform`` / ``partition``, invalid ``scale_by_lion`` modes.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

PARAMS = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([0.25])}
GRADS = {"w": jnp.array([0.5, 0.25, -1.5]), "b": jnp.array([2.0])}


def _run(tx, steps=3, jit=False, params=PARAMS, grads=GRADS, **extra):
    """The updates of ``steps`` calls of ``tx.update(grads, state, params, **extra)`` (params positional)."""
    state = tx.init(params)
    update = jax.jit(tx.update) if jit else tx.update
    out = []
    for _ in range(steps):
        u, state = update(grads, state, params, **extra)
        out.append(u)
    return out


def _assert_same(ours, theirs, rtol=1e-6, atol=1e-7):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert jax.tree.structure(a) == jax.tree.structure(b)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------------------
# add_noise / noisy_sgd without a key: Optax warns and draws from key 0; gradtx does the same.
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make", [lambda m: m.add_noise(0.3, 0.55), lambda m: m.noisy_sgd(0.1)], ids=["add_noise", "noisy_sgd"]
)
def test_noise_without_key_warns_and_uses_key_0_like_optax(make):
    with pytest.warns(UserWarning, match="key"):
        theirs = _run(make(optax))
    with pytest.warns(UserWarning, match="no key given"):
        ours = _run(make(gradtx))
    _assert_same(ours, theirs, rtol=0, atol=0)  # the same random numbers, bit for bit


def test_noise_without_key_equals_key_0_and_seed_is_key():
    with pytest.warns(UserWarning):
        default = _run(gradtx.add_noise(0.3, 0.55))
    _assert_same(default, _run(gradtx.add_noise(0.3, 0.55, key=0)), rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Optax deprecates seed=
        theirs = _run(optax.add_noise(0.3, 0.55, seed=5))
    _assert_same(_run(gradtx.add_noise(0.3, 0.55, seed=5)), theirs, rtol=0, atol=0)
    # sigma_1 = sqrt(eta): the noise added at the first step of a zero gradient has that spread.
    z = {"x": jnp.zeros(4000)}
    with pytest.warns(UserWarning):
        (u,) = _run(gradtx.add_noise(0.25, 0.55), steps=1, params=z, grads=z)
    assert abs(float(jnp.std(u["x"])) - 0.5) < 0.03


# --------------------------------------------------------------------------------------------------
# Extra keyword arguments reach partitioned transformations; params passed positionally reach them too.
# --------------------------------------------------------------------------------------------------


class ArgNotOne(ValueError):
    pass


def _extra_args_partition(m, seen, combinator="partition"):
    def init(params):
        return {"mu": params}

    def update_with_arg(updates, state, params=None, *, arg, **extra):
        del extra
        seen.append(("with_arg", params is not None))
        if arg != 1:
            raise ArgNotOne()
        return jax.tree.map(lambda u: 2.0 * u, updates), state

    def update_without_arg(updates, state, params=None):
        seen.append(("without_arg", params is not None))
        return updates, state

    txs = {
        "a": m.GradientTransformation(init, update_without_arg),
        "b": m.GradientTransformationExtraArgs(init, update_with_arg),
    }
    return getattr(m, combinator)(txs, {"w": "a", "b": "b"})


@pytest.mark.parametrize("name", ["partition", "multi_transform", "chain"])
def test_extra_args_and_positional_params_reach_inner_transformations(name):
    results = {}
    for m in (optax, gradtx):
        seen: list = []
        tx = _extra_args_partition(m, seen, "multi_transform" if name == "multi_transform" else "partition")
        if name == "chain":
            tx = m.chain(m.identity(), tx)
        state = tx.init(PARAMS)
        with pytest.raises(TypeError):  # `arg` is required by one inner update
            tx.update(GRADS, state, PARAMS)
        with pytest.raises(ArgNotOne):
            tx.update(GRADS, state, PARAMS, arg=2, ignored="hi")
        seen.clear()
        u, _ = tx.update(GRADS, state, PARAMS, arg=1, ignored="hi")  # params positional
        results[m.__name__] = (u, sorted(seen))
    _assert_same([results["gradtx"][0]], [results["optax"][0]], rtol=0, atol=0)
    np.testing.assert_array_equal(results["gradtx"][0]["b"], 2.0 * GRADS["b"])
    assert results["gradtx"][1] == results["optax"][1] == [("with_arg", True), ("without_arg", True)]


def test_value_reaches_a_partitioned_polyak_step():
    """A real block that needs ``value``: Polyak's step inside a partition, params positional."""
    value = jnp.asarray(3.0)
    outs = []
    for m in (optax, gradtx):
        tx = m.multi_transform({"p": m.scale_by_polyak(max_learning_rate=10.0), "s": m.sgd(0.1)}, {"w": "p", "b": "s"})
        outs.append(_run(tx, steps=2, value=value))
    _assert_same(outs[1], outs[0])
    # closed form, step 1: u_w = min(max_lr, (value - f_min) / ||g_w||^2) g_w with f_min = 0, eps = 0
    g = np.asarray(GRADS["w"], np.float64)
    np.testing.assert_allclose(outs[1][0]["w"], 3.0 / (g @ g) * g, rtol=1e-6)


def test_plain_transformation_without_kwargs_drops_extra_args_in_chain_and_masked():
    def update(updates, state, params=None):
        assert params is not None
        return updates, state

    for m in (optax, gradtx):
        plain = m.GradientTransformation(lambda p: (), update)
        for tx in (m.chain(plain), m.masked(plain, {"w": True, "b": False})):
            u, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS, ignored_kwarg="hi")
            _assert_same([u], [GRADS], rtol=0, atol=0)
    # gradtx transformations index like Optax's NamedTuple: tx[0] is init, tx[1] is update.
    tx = gradtx.masked(gradtx.sgd(1.0), {"w": True, "b": False})
    assert tx[0] == tx.init and tx[1] == tx.update


# --------------------------------------------------------------------------------------------------
# Clipping with a zero bound: zero updates, not NaN and not an error.
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["clip_by_global_norm", "clip"])
def test_zero_clip_bound_gives_zero_updates(name):
    ours = _run(getattr(gradtx, name)(0.0), steps=1)
    theirs = _run(getattr(optax, name)(0.0), steps=1)
    _assert_same(ours, theirs, rtol=0, atol=0)
    for leaf in jax.tree.leaves(ours[0]):
        np.testing.assert_array_equal(leaf, 0.0)
    # A zero gradient stays zero (Optax's clip_by_global_norm divides 0 by 0 there and returns NaN).
    zeros = jax.tree.map(jnp.zeros_like, GRADS)
    (u,) = _run(getattr(gradtx, name)(0.0), steps=1, grads=zeros)
    for leaf in jax.tree.leaves(u):
        np.testing.assert_array_equal(leaf, 0.0)


@pytest.mark.parametrize("max_norm", [0.0, 1.0, 10.0])
def test_clip_by_global_norm_values_and_gradients_match_optax_and_closed_form(max_norm):
    def loss(m, g):
        u, _ = m.clip_by_global_norm(max_norm).update(g, m.EmptyState())
        return sum(jnp.sum(jnp.sin(x) * x) for x in jax.tree.leaves(u)), u

    (_, uo), go = jax.value_and_grad(lambda g: loss(gradtx, g), has_aux=True)(GRADS)
    (_, ut), gt = jax.value_and_grad(lambda g: loss(optax, g), has_aux=True)(GRADS)
    _assert_same([uo, go], [ut, gt], rtol=1e-12, atol=1e-15)
    norm = np.sqrt(sum(float(np.sum(np.asarray(x, np.float64) ** 2)) for x in jax.tree.leaves(GRADS)))
    factor = 1.0 if norm <= max_norm else max_norm / norm
    for k in GRADS:
        np.testing.assert_allclose(uo[k], factor * np.asarray(GRADS[k], np.float64), rtol=1e-12, atol=0)


# --------------------------------------------------------------------------------------------------
# inject_hyperparams: schedules reaching 0 give Optax's result, eagerly and jitted alike.
# --------------------------------------------------------------------------------------------------

INJECTED = {
    "adam_lr_to_0": lambda m: m.inject_hyperparams(m.adam)(learning_rate=m.linear_schedule(1e-3, 0.0, 2)),
    "adam_b1_to_0": lambda m: m.inject_hyperparams(m.adam)(learning_rate=0.1, b1=m.linear_schedule(0.9, 0.0, 2)),
    "clip_norm_to_0": lambda m: m.inject_hyperparams(m.clip_by_global_norm)(max_norm=m.linear_schedule(1.0, 0.0, 2)),
    "clip_norm_from_0": lambda m: m.inject_hyperparams(m.clip_by_global_norm)(max_norm=m.linear_schedule(0.0, 1.0, 2)),
    "sgd_lr_through_0": lambda m: m.inject_hyperparams(m.sgd)(learning_rate=m.linear_schedule(0.1, -0.1, 2)),
}


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", sorted(INJECTED))
def test_injected_schedule_reaching_zero_matches_optax(name, jit):
    ours = _run(INJECTED[name](gradtx), steps=4, jit=jit)
    theirs = _run(INJECTED[name](optax), steps=4, jit=jit)
    _assert_same(ours, theirs, rtol=1e-6, atol=1e-8)
    if name in ("adam_lr_to_0", "clip_norm_to_0"):  # the schedule is 0 from step 2 on: zero updates
        for leaf in jax.tree.leaves(ours[2:]):
            np.testing.assert_array_equal(leaf, 0.0)
    if name == "clip_norm_from_0":
        for leaf in jax.tree.leaves(ours[0]):
            np.testing.assert_array_equal(leaf, 0.0)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_injected_values_set_in_the_state_are_not_validated_eagerly(jit):
    """A value written into ``state.hyperparams`` is a run-time value: no Python exception eagerly when the
    same step passes silently under jit; the result is Optax's (max_norm = 0: zero updates)."""
    outs = []
    for m in (optax, gradtx):
        tx = m.inject_hyperparams(m.clip_by_global_norm)(max_norm=1.0)
        state = tx.init(PARAMS)
        state.hyperparams["max_norm"] = jnp.asarray(0.0)
        update = jax.jit(tx.update) if jit else tx.update
        outs.append([update(GRADS, state, PARAMS)[0]])
    _assert_same(outs[1], outs[0], rtol=0, atol=0)
    for leaf in jax.tree.leaves(outs[1]):
        np.testing.assert_array_equal(leaf, 0.0)


def test_constants_are_still_validated_at_construction_but_ascent_is_accepted():
    with pytest.raises(ValueError, match=r"clip_by_global_norm\(max_norm=-1.0\): max_norm must be >= 0"):
        gradtx.inject_hyperparams(gradtx.clip_by_global_norm)(max_norm=-1.0)
    with pytest.raises(ValueError, match=r"max_norm must be >= 0"):
        gradtx.clip_by_global_norm(-1.0)
    # A negative learning rate is gradient ascent in Optax: accepted, the same updates.
    _assert_same(_run(gradtx.adam(-0.1)), _run(optax.adam(-0.1)))
    _assert_same(_run(gradtx.sgd(-0.1)), _run(optax.sgd(-0.1)), rtol=0, atol=0)


# --------------------------------------------------------------------------------------------------
# Errors: the same exception class as Optax, gradtx's message naming the path.
# --------------------------------------------------------------------------------------------------

NESTED = {"layer1": [{"w": jnp.ones(2)}, {"bias": jnp.ones(2)}], "layer2": {"w": jnp.ones(1)}, "misc": [jnp.ones(1)]}
MISMATCHES = {
    "masked_missing_keys": (lambda m: m.masked(m.sgd(1.0), {"layer1": [True]}), r"Dict key mismatch at <root>"),
    "freeze_missing_keys": (lambda m: m.freeze({"layer1": [True]}), r"Dict key mismatch at <root>"),
    "selective_missing_keys": (
        lambda m: m.selective_transform(m.sgd(1.0), freeze_mask={"layer1": True}),
        r"Dict key mismatch at <root>",
    ),
    "masked_tuple_for_list": (
        lambda m: m.masked(m.sgd(1.0), {"layer1": True, "layer2": True, "misc": (True,)}),
        r"Custom node type mismatch at \['misc'\]",
    ),
    "masked_subtree_for_leaf": (
        lambda m: m.masked(m.sgd(1.0), {"layer1": True, "layer2": {"w": {"x": True}}, "misc": True}),
        r"Node mismatch at \['layer2'\]\['w'\]",
    ),
    "partition_extra_label": (
        lambda m: m.partition({"a": m.sgd(1.0)}, {"layer1": "a", "layer2": "a", "misc": ["a", "a"]}),
        r"Arity mismatch at \['misc'\]",
    ),
}


@pytest.mark.parametrize("name", sorted(MISMATCHES))
def test_tree_mismatch_raises_optax_exception_class_with_a_path(name):
    make, message = MISMATCHES[name]
    with pytest.raises(ValueError):
        tx = make(optax)
        tx.update(NESTED, tx.init(NESTED), NESTED)
    with pytest.raises(ValueError, match=message):
        tx = make(gradtx)
        tx.update(NESTED, tx.init(NESTED), NESTED)


def test_invalid_lion_mode_raises_valueerror_like_optax():
    g = jnp.array([0.1, -0.2])
    for m in (optax, gradtx):
        with pytest.raises(ValueError):  # Optax at the first update, gradtx already at construction
            tx = m.scale_by_lion(mode="hardd")
            tx.update(g, tx.init(g))
    with pytest.raises(ValueError, match=r"scale_by_lion\(mode='hardd'\): mode must be one of"):
        gradtx.scale_by_lion(mode="hardd")


def test_add_decayed_weights_passes_none_updates_through_as_optax():
    weights = (jnp.ones((2,), jnp.float32), {"a": jnp.ones((2,), jnp.float32)})
    for lib in (optax, gradtx):
        tf = lib.add_decayed_weights(0.1)
        out, _ = tf.update(None, tf.init(weights), weights)
        assert out is None
