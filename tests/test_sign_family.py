"""The sign family: closed forms, the fixed Optax defects, identities between recipes, errors, ``value``.

Oracles, contract and the Optax cross-check run from tests/registry_sign_family.py; this file checks what
those cannot: closed forms on constant or hand-picked gradients, Adadelta's descent with its default
learning rate, Rprop's non-lagging steps, Polyak's documented scaling, per-leaf NovoGrad, construction
errors and the missing loss value.
"""

from __future__ import annotations

import itertools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx.base import EmptyState
from gradtx.optimizers.sign_family import (
    adadelta,
    lion,
    novograd,
    optimistic_adam,
    optimistic_adam_v2,
    optimistic_gradient_descent,
    polyak_sgd,
    rprop,
    sign_sgd,
    signum,
)
from gradtx.testing.contract import default_params, random_like
from gradtx.testing.problems import Quadratic
from gradtx.testing.reference import sign_family as ref
from gradtx.transforms.sign_family import (
    ScaleByAdaDeltaState,
    ScaleByLionState,
    ScaleByNovogradState,
    ScaleByOptimisticGradientState,
    ScaleByRpropState,
    scale_by_adadelta,
    scale_by_lion,
    scale_by_novograd,
    scale_by_optimistic_gradient,
    scale_by_polyak,
    scale_by_rprop,
)

F64 = jnp.float64


def _steps(tx, grads, params=None, **extra):
    """Run ``tx`` (jitted) over a list of gradients; return the list of updates as float64 NumPy trees."""
    params = grads[0] if params is None else params
    state = tx.init(params)
    update = jax.jit(lambda g, s, p: tx.update(g, s, p, **extra))
    outs = []
    for g in grads:
        u, state = update(g, state, params)
        outs.append(jax.tree.map(lambda x: np.asarray(x, np.float64), u))
    return outs, state


def _same(a, b, rtol=1e-12):
    for x, y in zip(a, b):
        assert jax.tree.structure(x) == jax.tree.structure(y)
        for u, v in zip(jax.tree.leaves(x), jax.tree.leaves(y)):
            np.testing.assert_allclose(u, v, rtol=rtol, atol=1e-14)


def _random_grads(n=40, seed=0, params=None):
    params = default_params(F64) if params is None else params
    return [random_like(params, seed + k) for k in range(n)], params


# --- Lion -------------------------------------------------------------------------------------------------


def test_lion_moves_every_coordinate_by_exactly_the_learning_rate():
    grads, params = _random_grads()
    outs, _ = _steps(lion(0.003, weight_decay=0.0), grads, params)
    for u in outs:
        for leaf in jax.tree.leaves(u):
            np.testing.assert_array_equal(np.abs(leaf), 0.003)


def test_lion_first_step_is_minus_lr_sign_plus_decay_and_uses_the_interpolation():
    g1, g2 = jnp.array([2.0, -3.0, 0.5], F64), jnp.array([-1.0, 1.0, 1.0], F64)
    p = jnp.array([1.0, -2.0, 4.0], F64)
    (u1, u2), state = _steps(lion(0.1, b1=0.9, b2=0.5, weight_decay=0.2), [g1, g2], p)
    np.testing.assert_allclose(u1, -0.1 * (np.sign(g1) + 0.2 * p))
    m1 = 0.5 * np.asarray(g1)  # m_1 = b2 * 0 + (1 - b2) g1
    c2 = 0.9 * m1 + 0.1 * np.asarray(g2)  # c_2 = b1 m_1 + (1 - b1) g2: [0.8, -1.25, 0.325]
    np.testing.assert_allclose(u2, -0.1 * (np.sign(c2) + 0.2 * p))
    assert np.sign(c2[0]) == 1.0 != np.sign(g2[0])  # the momentum, not the gradient, set the sign
    assert isinstance(state[0], ScaleByLionState)
    np.testing.assert_allclose(state[0].mu, 0.5 * m1 + 0.5 * np.asarray(g2))
    assert int(state[0].count) == 2


def test_lion_modes_are_sign_tanh_and_clip():
    g = jnp.array([-3.0, -0.4, 0.0, 0.2, 5.0], F64)
    c = 0.1 * np.asarray(g)  # first step: c = (1 - b1) g with b1 = 0.9
    (hard,), _ = _steps(scale_by_lion(), [g])
    (smooth,), _ = _steps(scale_by_lion(mode="smooth", smooth_beta=3.0), [g])
    (refined,), _ = _steps(scale_by_lion(b1=0.0, mode="refined"), [g])
    np.testing.assert_array_equal(hard, np.sign(c))
    np.testing.assert_allclose(smooth, np.tanh(3.0 * c), rtol=1e-14)
    np.testing.assert_array_equal(refined, np.clip(np.asarray(g), -1.0, 1.0))


def test_lion_bfloat16_momentum_is_stored_rounded_and_used_in_float32():
    grads, params = _random_grads(15, params=default_params(jnp.float32))
    tx = scale_by_lion(0.9, 0.99, mu_dtype=jnp.bfloat16)
    state = tx.init(params)
    assert all(m.dtype == jnp.bfloat16 for m in jax.tree.leaves(state.mu))
    for g in grads:
        u, new = tx.update(g, state, params)
        for gl, ml, ul, nl in zip(*(jax.tree.leaves(t) for t in (g, state.mu, u, new.mu))):
            m32 = np.asarray(ml, np.float32)
            c = np.float32(0.9) * m32 + (np.float32(1) - np.float32(0.9)) * np.asarray(gl)
            np.testing.assert_array_equal(np.asarray(ul), np.sign(c))
            m_new = np.float32(0.99) * m32 + (np.float32(1) - np.float32(0.99)) * np.asarray(gl)
            np.testing.assert_array_equal(np.asarray(nl, np.float32), np.asarray(jnp.asarray(m_new, jnp.bfloat16),
                                                                                 np.float32))
        state = new


# --- Adadelta: the fixed sign -------------------------------------------------------------------------------


def test_adadelta_default_learning_rate_descends():
    g = jnp.ones(3, jnp.float32)
    tx = adadelta()
    u, _ = tx.update(g, tx.init(g), g)
    want = -math.sqrt(1e-6) / math.sqrt(0.1 + 1e-6)  # Zeiler eq. 14: dx = -RMS[dx]_0 / RMS[g]_1 * g
    np.testing.assert_allclose(np.asarray(u), want, rtol=1e-6)
    assert np.all(np.asarray(u) < 0)


def test_optax_adadelta_default_moves_uphill_and_agrees_with_an_explicit_learning_rate():
    """The defect gradtx fixes, pinned for Optax 0.2.8: its default update has the sign of the gradient."""
    g = jnp.ones(3, jnp.float32)
    theirs = optax.adadelta()
    u, _ = theirs.update(g, theirs.init(g), g)
    np.testing.assert_allclose(np.asarray(u), 0.0031623, rtol=1e-4)
    ours = adadelta()
    u_ours, _ = ours.update(g, ours.init(g), g)
    np.testing.assert_allclose(np.asarray(u_ours), -np.asarray(u), rtol=1e-6)
    # With learning_rate=1 spelled out, Optax flips the sign too and the two agree.
    one = optax.adadelta(1.0)
    np.testing.assert_allclose(np.asarray(one.update(g, one.init(g), g)[0]), np.asarray(u_ours), rtol=1e-6)


def test_adadelta_default_decreases_a_quadratic():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(4, 4))
    q = Quadratic(m @ m.T + 0.5 * np.eye(4))
    x = jnp.asarray(rng.normal(size=4), F64)
    tx = adadelta()
    state = tx.init(x)
    losses = [float(q.loss(x))]
    for _ in range(300):
        u, state = tx.update(q.grad(x), state, x)
        x = gradtx.apply_updates(x, u)
        losses.append(float(q.loss(x)))
    assert losses[-1] < 0.5 * losses[0]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(losses[:51]))  # no uphill step early on


def test_adadelta_block_state_and_second_step():
    g1, g2 = jnp.array([2.0], F64), jnp.array([-1.0], F64)
    (u1, u2), state = _steps(scale_by_adadelta(rho=0.5, eps=0.01), [g1, g2])
    eg1 = 0.5 * 4.0
    d1 = math.sqrt(0.01) / math.sqrt(eg1 + 0.01) * 2.0
    ex1 = 0.5 * d1**2
    eg2 = 0.5 * eg1 + 0.5 * 1.0
    d2 = math.sqrt(ex1 + 0.01) / math.sqrt(eg2 + 0.01) * -1.0
    np.testing.assert_allclose([u1[0], u2[0]], [d1, d2], rtol=1e-14)
    assert isinstance(state, ScaleByAdaDeltaState)
    np.testing.assert_allclose([state.e_g[0], state.e_x[0]], [eg2, 0.5 * ex1 + 0.5 * d2**2], rtol=1e-14)


# --- Rprop -------------------------------------------------------------------------------------------------


def test_rprop_step_sizes_grow_and_shrink_by_the_factors():
    grads = [jnp.array([g], F64) for g in (1.0, 1.0, 1.0, -1.0, 1.0, 1.0)]
    outs, state = _steps(scale_by_rprop(0.1, eta_minus=0.5, eta_plus=1.2), grads)
    got = [float(u[0]) for u in outs]
    # grow x1.2 while the sign holds; a flip shrinks x0.5 and does not move; then the step is used unchanged.
    np.testing.assert_allclose(got, [0.1, 0.12, 0.144, 0.0, 0.072, 0.0864], rtol=1e-14)
    assert isinstance(state, ScaleByRpropState)
    np.testing.assert_allclose(state.step_sizes, [0.0864], rtol=1e-14)
    np.testing.assert_allclose(state.prev_updates, [0.0864], rtol=1e-14)


def test_rprop_step_sizes_are_clipped_and_the_recipe_descends():
    grads = [jnp.array([3.0, -2.0], F64)] * 12
    outs, _ = _steps(rprop(0.1, eta_plus=2.0, max_step_size=1.0), grads)
    np.testing.assert_allclose(outs[-1], [-1.0, 1.0])  # capped at max_step_size, against the gradient
    flips = [jnp.array([(-1.0) ** k], F64) for k in range(30)]
    outs, state = _steps(scale_by_rprop(1.0, eta_minus=0.1, min_step_size=1e-3), flips)
    assert float(state[0][0]) == pytest.approx(1e-3)  # shrunk to the floor, never below
    assert all(float(u[0]) == 0.0 or abs(float(u[0])) >= 1e-3 - 1e-15 for u in outs)


def test_rprop_does_not_lag_a_step_like_optax():
    """Optax 0.2.8 returns the previous step (its PR #1725): its first update is 0 and later ones lag."""
    grads = [jnp.array([g], jnp.float32) for g in (1.0, 1.0, 1.0, -1.0, 1.0)]
    theirs = optax.scale_by_rprop(0.1)
    state = theirs.init(grads[0])
    lagged = []
    for g in grads:
        u, state = theirs.update(g, state)
        lagged.append(float(u[0]))
    np.testing.assert_allclose(lagged, [0.0, 0.1, 0.12, 0.0, 0.0], rtol=1e-6)
    ours, _ = _steps(scale_by_rprop(0.1), grads)
    np.testing.assert_allclose([float(u[0]) for u in ours], [0.1, 0.12, 0.144, 0.0, 0.072], rtol=1e-6)


# --- optimistic gradient --------------------------------------------------------------------------------------


def test_optimistic_gradient_first_step_uses_the_current_gradient():
    g1, g2, g3 = (jnp.array([v], F64) for v in (1.0, 3.0, -2.0))
    outs, state = _steps(scale_by_optimistic_gradient(alpha=0.5, beta=2.0), [g1, g2, g3])
    np.testing.assert_allclose([u[0] for u in outs], [0.5 * 1.0, 2.5 * 3.0 - 2.0 * 1.0, 2.5 * -2.0 - 2.0 * 3.0])
    assert isinstance(state, ScaleByOptimisticGradientState)
    assert state.is_initial_step.dtype == jnp.bool_ and not bool(state.is_initial_step)
    np.testing.assert_array_equal(state.previous_gradient, [-2.0])


def test_optimistic_gradient_descent_is_omd_and_reduces_to_sgd():
    grads, params = _random_grads()
    outs, _ = _steps(optimistic_gradient_descent(0.1), grads, params)
    for k in range(1, len(grads)):  # Daskalakis et al.: x <- x - 2 lr g_k + lr g_{k-1}
        want = jax.tree.map(lambda a, b: -0.2 * np.asarray(a) + 0.1 * np.asarray(b), grads[k], grads[k - 1])
        _same([outs[k]], [want])
    _same(_steps(optimistic_gradient_descent(0.1, alpha=1.0, beta=0.0), grads, params)[0],
          _steps(gradtx.sgd(0.1), grads, params)[0])


def _optimistic_adam(*args, **kwargs):
    with pytest.warns(DeprecationWarning, match="use `optimistic_adam_v2` instead"):
        return optimistic_adam(*args, **kwargs)


def test_optimistic_adam_is_v2_with_unit_learning_rate():
    grads, params = _random_grads()
    _same(_steps(_optimistic_adam(0.01, 0.3), grads, params)[0],
          _steps(optimistic_adam_v2(1.0, alpha=0.01, beta=0.3), grads, params)[0])
    _same(_steps(_optimistic_adam(0.01), grads, params)[0],
          _steps(optimistic_adam_v2(1.0, alpha=0.01, beta=0.01), grads, params)[0])


def test_optimistic_adam_warns_that_it_is_deprecated_as_optax_does():
    with pytest.warns(DeprecationWarning, match="use `optimistic_adam_v2` instead"):
        optimistic_adam(0.01)
    with pytest.warns(DeprecationWarning, match="use `optimistic_adam_v2` instead"):
        optax.optimistic_adam(0.01)


# --- NovoGrad (per layer) ---------------------------------------------------------------------------------------


def test_novograd_first_step_normalises_each_layer():
    params = {"a": jnp.array([1.0, 2.0], F64), "b": jnp.array([[0.5, -1.0], [2.0, 0.0]], F64)}
    g = {"a": jnp.array([3.0, 4.0], F64), "b": jnp.array([[0.0, 1.0], [0.0, 0.0]], F64)}
    tx = scale_by_novograd(eps=0.0, weight_decay=0.1)
    u, state = tx.update(g, tx.init(params), params)
    np.testing.assert_allclose(u["a"], np.array([0.6, 0.8]) + 0.1 * np.asarray(params["a"]), rtol=1e-14)
    np.testing.assert_allclose(u["b"], np.asarray(g["b"]) + 0.1 * np.asarray(params["b"]), rtol=1e-14)
    assert isinstance(state, ScaleByNovogradState)
    assert state.nu["a"].shape == () and state.nu["b"].shape == ()  # one second moment per layer
    np.testing.assert_allclose([state.nu["a"], state.nu["b"]], [25.0, 1.0])


def test_novograd_matches_the_per_layer_reference_and_scales_layers_independently():
    grads, params = _random_grads(30)
    grads = [dict(g, w=jax.tree.map(lambda x: 1e3 * x, g["w"])) for g in grads]  # one layer 1000x larger
    outs, _ = _steps(novograd(0.01, weight_decay=0.05), grads, params)
    oracle = ref.novograd(0.01, weight_decay=0.05)

    def by_path(tree):
        flat, _ = jax.tree_util.tree_flatten_with_path(tree)
        return {jax.tree_util.keystr(k): np.asarray(v, np.float64) for k, v in flat}

    for g, u in zip(grads, outs):
        want = oracle.step(by_path(g), by_path(params))
        got = by_path(u)
        assert set(got) == set(want)
        for k in got:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-14)
    # The per-layer normalisation makes the large layer's step the size of the others'.
    assert np.max(np.abs(outs[-1]["w"])) < 10 * np.max(np.abs(outs[-1]["b"]))


def test_novograd_needs_params():
    tx = scale_by_novograd()
    g = {"a": jnp.ones(2)}
    with pytest.raises(ValueError, match=r"scale_by_novograd.update: params are required"):
        tx.update(g, tx.init(g))


# --- Polyak -----------------------------------------------------------------------------------------------------


def test_polyak_step_is_the_gap_over_the_squared_norm_capped():
    g = {"a": jnp.array([1.0, 2.0], F64), "b": jnp.array(2.0, F64)}  # ||g||^2 = 9
    tx = scale_by_polyak(f_min=0.5, max_learning_rate=1.0)
    for value, gamma in ((5.0, 0.5), (9.5, 1.0), (50.0, 1.0), (0.5, 0.0)):
        u, _ = tx.update(g, tx.init(g), value=jnp.asarray(value))
        _same([u], [jax.tree.map(lambda x, c=gamma: c * np.asarray(x), g)])
    # below the cap: (f - f*) / ||g||^2
    u, _ = scale_by_polyak(max_learning_rate=10.0).update(g, EmptyState(), value=4.5)
    _same([u], [jax.tree.map(lambda x: 0.5 * np.asarray(x), g)])


def test_polyak_variants_zero_gradient_and_eps():
    g = jnp.array([3.0, 4.0], F64)  # ||g||^2 = 25
    sps, plus = scale_by_polyak(f_min=1.0, max_learning_rate=5.0), scale_by_polyak(1.0, 5.0, variant="sps+")
    np.testing.assert_allclose(sps.update(g, EmptyState(), value=0.0)[0], -g / 25.0)  # 'sps' steps uphill
    np.testing.assert_array_equal(plus.update(g, EmptyState(), value=0.0)[0], [0.0, 0.0])
    zero = sps.update(jnp.zeros(2, F64), EmptyState(), value=3.0)[0]
    np.testing.assert_array_equal(zero, [0.0, 0.0])  # no division by zero
    np.testing.assert_allclose(scale_by_polyak(0.0, 5.0, eps=25.0).update(g, EmptyState(), value=10.0)[0], g / 5.0)


def test_polyak_sgd_descends_a_quadratic_to_the_minimum_in_one_step_on_isotropic_curvature():
    # f(x) = ||x||^2 / 2: g = x, f - 0 = ||g||^2 / 2, so gamma = 1/2 and x halves (Optax's docstring example).
    x = jnp.array([1.0, 2.0, 3.0], F64)
    tx = polyak_sgd()
    state = tx.init(x)
    for k in range(4):
        value, grad = jax.value_and_grad(lambda y: jnp.sum(y**2))(x)
        u, state = tx.update(grad, state, x, value=value)
        x = gradtx.apply_updates(x, u)
        np.testing.assert_allclose(float(jnp.sum(x**2)), 14.0 / 4 ** (k + 1), rtol=1e-12)


def test_polyak_sgd_scaling_multiplies_the_whole_step_unlike_optax():
    g = jnp.array([1.0, 0.0], jnp.float32)  # ||g||^2 = 1, f = 0.25: gamma = 0.25 below the cap
    for s in (0.5, 2.0):
        ours = polyak_sgd(scaling=s)
        u, _ = ours.update(g, ours.init(g), value=0.25)
        np.testing.assert_allclose(np.asarray(u), [-s * 0.25, 0.0], rtol=1e-6)  # Optax's documented formula
        theirs = optax.polyak_sgd(scaling=s)
        v, _ = theirs.update(g, theirs.init(g), value=0.25)
        np.testing.assert_allclose(np.asarray(v), [-0.25 / s, 0.0], rtol=1e-6)  # Optax's code: divided by s


def test_missing_value_raises_a_clear_error():
    g = {"a": jnp.ones(2)}
    for tx in (scale_by_polyak(), polyak_sgd(), gradtx.chain(gradtx.scale(1.0), scale_by_polyak())):
        with pytest.raises(TypeError, match=r"scale_by_polyak\.update: the loss value is required.*value=loss"):
            tx.update(g, tx.init(g), g)


def test_polyak_value_may_be_traced_and_bfloat16_updates_keep_their_dtype():
    g = jnp.array([1.0, -2.0], jnp.bfloat16)
    tx = scale_by_polyak()
    u = jax.jit(lambda v: tx.update(g, EmptyState(), value=v)[0])(jnp.float32(2.5))
    assert u.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(u, np.float32), [0.5, -1.0])


# --- signSGD / Signum -------------------------------------------------------------------------------------------


def test_sign_sgd_and_signum_closed_forms():
    grads, params = _random_grads(20)
    for u, g in zip(_steps(sign_sgd(0.01), grads, params)[0], grads):
        _same([u], [jax.tree.map(lambda x: -0.01 * np.sign(np.asarray(x)), g)])
    _same(_steps(signum(0.01, beta=0.0), grads, params)[0], _steps(sign_sgd(0.01), grads, params)[0])
    g1, g2 = jnp.array([1.0, -1.0], F64), jnp.array([-3.0, -3.0], F64)
    (_, u2), _ = _steps(signum(0.1, beta=0.9), [g1, g2])
    np.testing.assert_array_equal(u2, -0.1 * np.sign(0.9 * 0.1 * np.asarray(g1) + 0.1 * np.asarray(g2)))
    assert u2[0] == -0.1 * np.sign(-0.21)  # m = 0.09 - 0.3 = -0.21: the sign of the average, not of g1


# --- identities, pytrees, reprs ---------------------------------------------------------------------------------


def test_recipes_are_chains_of_the_blocks():
    grads, params = _random_grads()
    _same(_steps(lion(0.01, 0.8, 0.95, weight_decay=0.0), grads, params)[0],
          _steps(gradtx.chain(scale_by_lion(0.8, 0.95), gradtx.scale(-0.01)), grads, params)[0])
    _same(_steps(rprop(0.1), grads, params)[0], _steps(gradtx.chain(scale_by_rprop(0.1), gradtx.scale(-1.0)),
                                                        grads, params)[0])
    _same(_steps(adadelta(0.5), grads, params)[0],
          _steps(gradtx.chain(scale_by_adadelta(), gradtx.scale(-0.5)), grads, params)[0])


def test_hyperparameters_are_leaves_and_reprs_show_them():
    tx = lion(0.003, weight_decay=0.01)
    leaves = jax.tree.leaves(tx)
    assert 0.003 in leaves and 0.01 in leaves and 0.9 in leaves
    assert "scale_by_lion(b1=0.9, b2=0.99, mu_dtype=None, mode='hard', smooth_beta=1.0)" in repr(tx)
    assert repr(scale_by_polyak()) == "scale_by_polyak(f_min=0.0, max_learning_rate=1.0, eps=0.0, variant='sps')"
    # A new learning rate is a new leaf value, not a new trace.
    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(t, g, s, p):
        return t.update(g, s, p)

    x = jnp.ones(3)
    for lr in (0.1, 0.2, 0.3):
        t = rprop(lr)
        step(t, x, t.init(x), x)


def test_lion_learning_rate_gradient_flows_through_the_recipe():
    x = jnp.array([1.0, -2.0], F64)

    def loss_after_two_steps(lr):
        t = lion(lr, weight_decay=0.0)
        s, p = t.init(x), x
        for _ in range(2):
            u, s = t.update(p, s, p)  # gradient of ||p||^2 / 2 is p
            p = gradtx.apply_updates(p, u)
        return jnp.sum(p**2) / 2

    # p_2 = x - 2 lr sign(x): d/dlr = sum((x - 2 lr sign x) * -2 sign x)
    want = float(jnp.sum((x - 0.2 * jnp.sign(x)) * -2 * jnp.sign(x)))
    assert float(jax.grad(loss_after_two_steps)(0.1)) == pytest.approx(want)


# --- construction errors ----------------------------------------------------------------------------------------


def _schedule(count):
    return 0.1


ERRORS = [
    (lambda: scale_by_lion(b1=1.5), "scale_by_lion(b1=1.5): b1 must be in [0, 1]"),
    (lambda: scale_by_lion(mode="hardd"),
     "scale_by_lion(mode='hardd'): mode must be one of 'hard', 'smooth', 'refined'"),
    (lambda: scale_by_lion(mode="smooth", smooth_beta=0.0), "scale_by_lion(smooth_beta=0.0): smooth_beta must be > 0"),
    (lambda: lion(1e-3, b2=-0.1), "lion(b2=-0.1): b2 must be in [0, 1]"),
    (lambda: lion(1e-3, weight_decay=math.inf), "lion(weight_decay=inf): weight_decay must be finite"),
    (lambda: scale_by_adadelta(rho=1.5), "scale_by_adadelta(rho=1.5): rho must be in [0, 1]"),
    (lambda: adadelta(eps=0.0), "adadelta(eps=0.0): eps must be > 0"),
    (lambda: adadelta(math.nan), "adadelta(learning_rate=nan): learning_rate must be finite"),
    (lambda: scale_by_rprop(-0.1), "scale_by_rprop(learning_rate=-0.1): learning_rate must be > 0"),
    (lambda: rprop(_schedule), "rprop(learning_rate=<function _schedule"),
    (lambda: rprop(0.1, eta_minus=1.5), "rprop(eta_minus=1.5): eta_minus must be in (0, 1]"),
    (lambda: rprop(0.1, eta_plus=0.5), "rprop(eta_plus=0.5): eta_plus must be >= 1"),
    (lambda: rprop(0.1, min_step_size=1.0, max_step_size=0.5),
     "rprop(max_step_size=0.5): max_step_size must be >= min_step_size=1.0"),
    (lambda: scale_by_optimistic_gradient(alpha=math.inf),
     "scale_by_optimistic_gradient(alpha=inf): alpha must be finite"),
    (lambda: optimistic_gradient_descent(0.1, beta=_schedule), "optimistic_gradient_descent(beta=<function _schedule"),
    (lambda: _optimistic_adam(_schedule), "optimistic_adam(learning_rate=<function _schedule"),
    (lambda: optimistic_adam_v2(0.1, b1=1.0), "optimistic_adam_v2(b1=1.0): b1 must be in [0, 1)"),
    (lambda: scale_by_novograd(b2=2.0), "scale_by_novograd(b2=2.0): b2 must be in [0, 1]"),
    (lambda: novograd(0.1, eps=-1.0), "novograd(eps=-1.0): eps must be >= 0"),
    (lambda: novograd(0.1, weight_decay=_schedule), "novograd(weight_decay=<function _schedule"),
    (lambda: scale_by_polyak(variant="sps++"),
     "scale_by_polyak(variant='sps++'): variant must be one of 'sps', 'sps+'"),
    (lambda: polyak_sgd(max_learning_rate=0.0),
     "polyak_sgd(max_learning_rate=0.0): max_learning_rate must be > 0"),
    (lambda: polyak_sgd(eps=-1.0), "polyak_sgd(eps=-1.0): eps must be >= 0"),
    (lambda: polyak_sgd(f_min=math.nan), "polyak_sgd(f_min=nan): f_min must be finite"),
    (lambda: sign_sgd(math.inf), "sign_sgd(learning_rate=inf): learning_rate must be finite"),
    (lambda: signum(0.1, beta=1.5), "signum(beta=1.5): beta was given to ema as decay: decay must be in [0, 1]"),
]


@pytest.mark.parametrize("make,message", ERRORS, ids=[m.split(":")[0] for _, m in ERRORS])
def test_bad_hyperparameter_raises_at_construction(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value).startswith(message), str(info.value)


def test_schedule_rejections_say_why():
    with pytest.raises(ValueError, match=r"learning_rate must be a real number > 0 \(a schedule is not supported"):
        rprop(_schedule)
    with pytest.raises(ValueError, match=r"learning_rate must be a number \(for a schedule use optimistic_adam_v2\)"):
        _optimistic_adam(_schedule)


def test_update_with_a_mismatched_tree_names_the_block():
    tx = scale_by_lion()
    state = tx.init({"a": jnp.ones(2)})
    with pytest.raises(TypeError, match=r"scale_by_lion\.update: .*first differing path"):
        tx.update({"b": jnp.ones(2)}, state)

