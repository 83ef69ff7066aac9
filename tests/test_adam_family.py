"""The Adam family: closed forms, identities, construction errors, complex parameters and precision.

The registry entries (tests/registry_adam_family.py) run through the oracle, contract and Optax tiers; this
file checks what those cannot: first steps and constant-gradient runs by hand, the RAdam branch schedule,
AMSGrad's monotone maximum, compositions that must agree, and the complex-parameter convention.
"""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradtx.base import apply_updates
from gradtx.combine import chain
from gradtx.optimizers import adam_family as opt
from gradtx.testing.contract import default_params, random_like
from gradtx.testing.reference import adam_family as ref
from gradtx.transforms import adam_family as tx
from gradtx.transforms.adam_family import ScaleByAdamState, scale_by_adam
from gradtx.transforms.momentum import ema, trace
from gradtx.transforms.scaling import scale_by_learning_rate


def _run(t, grads, params=None):
    """Updates and states of ``t`` fed the list ``grads`` (jitted), params fixed."""
    params = grads[0] if params is None else params
    state = t.init(params)
    step = jax.jit(lambda g, s, p: t.update(g, s, p))
    outs, states = [], []
    for g in grads:
        u, state = step(g, state, params)
        outs.append(u)
        states.append(state)
    return outs, states


def _grads(n=40, seed=0, dtype=jnp.float64):
    params = default_params(dtype)
    rng = np.random.default_rng(seed)
    return [jax.tree.map(lambda x, s=s: (x * s).astype(dtype), random_like(params, seed + k))
            for k, s in enumerate(rng.choice([0.01, 1.0, 30.0], size=n))]


def _same(a, b, rtol=1e-12, atol=1e-14):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert jax.tree.structure(x) == jax.tree.structure(y)
        for u, v in zip(jax.tree.leaves(x), jax.tree.leaves(y)):
            np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


G = jnp.array([0.5, -2.0, 3e-3, 0.0, -7.0], jnp.float64)


# ------------------------------------------------------------------------------------------------
# Closed forms
# ------------------------------------------------------------------------------------------------


def test_adamax_first_step_and_constant_gradient():
    # m_1 / (1 - b1) = g and v_1 = |g| + eps, so u_1 = g / (|g| + eps); under a constant gradient
    # b2 v < |g| + eps keeps v_k = |g| + eps and m_hat = g: the same step forever.
    eps = 1e-3
    outs, states = _run(tx.scale_by_adamax(0.9, 0.99, eps), [G] * 30)
    want = G / (jnp.abs(G) + eps)
    for u in outs:
        np.testing.assert_allclose(u, want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(states[-1].nu, jnp.abs(G) + eps, rtol=1e-15)
    assert isinstance(states[-1], ScaleByAdamState)


def test_adamax_infinity_norm_decays_after_a_spike():
    # After one large gradient, v decays geometrically by b2 until |g| + eps catches up.
    big, small = jnp.full(3, 10.0), jnp.full(3, 1.0)
    _, states = _run(tx.scale_by_adamax(0.9, 0.5, 0.0), [big, small, small, small, small])
    nus = [float(s.nu[0]) for s in states]
    assert nus == [10.0, 5.0, 2.5, 1.25, 1.0]


def test_amsgrad_nu_max_is_monotone_and_bounds_nu_hat():
    b2 = 0.99
    _, states = _run(tx.scale_by_amsgrad(0.9, b2), _grads(60))
    prev = None
    for k, s in enumerate(states, start=1):
        nu_hat = jax.tree.map(lambda n, k=k: n / (1 - b2**k), s.nu)
        for m, h in zip(jax.tree.leaves(s.nu_max), jax.tree.leaves(nu_hat)):
            assert np.all(np.asarray(m) >= np.asarray(h) * (1 - 1e-15))
        if prev is not None:
            for a, b in zip(jax.tree.leaves(prev), jax.tree.leaves(s.nu_max)):
                assert np.all(np.asarray(b) >= np.asarray(a))
        prev = s.nu_max


def test_amsgrad_keeps_the_step_small_when_gradients_shrink_and_equals_adam_when_they_grow():
    growing = [G * (1.5**k) for k in range(12)]
    _same(_run(tx.scale_by_amsgrad(0.9, 0.99), growing)[0], _run(scale_by_adam(0.9, 0.99), growing)[0])
    shrinking = [G * (0.5**k) for k in range(12)]
    ams, adam = _run(tx.scale_by_amsgrad(0.9, 0.99), shrinking)[0], _run(scale_by_adam(0.9, 0.99), shrinking)[0]
    assert float(jnp.max(jnp.abs(ams[-1]))) < 0.5 * float(jnp.max(jnp.abs(adam[-1])))


def test_amsgrad_paper_form_is_m_over_root_of_max_v():
    b1, b2, eps = 0.9, 0.99, 1e-8
    grads = [G * s for s in (1.0, 3.0, 0.1, 0.2, 2.0, 0.01)]
    outs, _ = _run(tx.scale_by_amsgrad(b1, b2, eps, bias_correction_mu=False, bias_correction_nu=False), grads)
    m, v, vmax = 0.0, 0.0, 0.0
    for g, u in zip(grads, outs):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        vmax = jnp.maximum(vmax, v)
        np.testing.assert_allclose(u, m / (jnp.sqrt(vmax) + eps), rtol=1e-12)


def test_adabelief_first_step():
    # m_1 = (1 - b1) g, g - m_1 = b1 g: s_hat_1 = b1^2 g^2 + eps_root / (1 - b2), m_hat_1 = g.
    b1, b2, eps, eps_root = 0.9, 0.999, 1e-8, 1e-10
    (u,), _ = _run(tx.scale_by_belief(b1, b2, eps, eps_root), [G])
    want = G / (jnp.sqrt(b1**2 * G**2 + eps_root / (1 - b2)) + eps)
    np.testing.assert_allclose(u, want, rtol=1e-12)


def test_adabelief_constant_gradient_closed_form_grows_beyond_adam():
    # A constant gradient is perfectly predicted: g - m_k = b1^k g, so
    # s_k = (1 - b2) g^2 sum_{j<=k} b2^(k-j) b1^(2j) shrinks and the step grows past Adam's |u| ~ 1.
    b1, b2, eps, steps = 0.9, 0.999, 1e-8, 50
    outs, _ = _run(tx.scale_by_belief(b1, b2, eps, 0.0), [G] * steps)
    adam, _ = _run(scale_by_adam(b1, b2, eps), [G] * steps)
    for k in (1, 2, 10, steps):
        s = (1 - b2) * G**2 * sum(b2 ** (k - j) * b1 ** (2 * j) for j in range(1, k + 1))
        np.testing.assert_allclose(outs[k - 1], G / (jnp.sqrt(s / (1 - b2**k)) + eps), rtol=1e-10)
    assert float(jnp.abs(outs[-1][0])) > 3 * float(jnp.abs(adam[-1][0]))


def test_yogi_first_step_and_additive_second_moment():
    b1, b2, eps, v0 = 0.9, 0.999, 1e-3, 1e-6
    grads = _grads(30)
    outs, states = _run(tx.scale_by_yogi(b1, b2, eps, 0.0, v0), grads)
    g = grads[0]["w"]
    m1 = b1 * v0 + (1 - b1) * g
    v1 = v0 - (1 - b2) * jnp.sign(v0 - g**2) * g**2
    np.testing.assert_allclose(outs[0]["w"], m1 / (1 - b1) / (jnp.sqrt(v1 / (1 - b2)) + eps), rtol=1e-12)
    # |v_k - v_{k-1}| = (1 - b2) g_k^2 exactly: the step size changes additively, never multiplicatively.
    for k in range(1, len(states)):
        dv = np.abs(np.asarray(states[k].nu["w"] - states[k - 1].nu["w"]))
        scale = float(np.max(np.asarray(states[k].nu["w"])))
        np.testing.assert_allclose(dv, (1 - b2) * np.asarray(grads[k]["w"]) ** 2, rtol=1e-9, atol=1e-15 * scale)


def test_radam_first_steps_are_sgd_with_momentum_then_rectified_adam():
    b1, b2 = 0.9, 0.999  # rho_k = 1.0, 2.0, 3.0, 4.0, 4.996 (k <= 5) < 5 <= rho_6 = 5.994
    grads = _grads(12)
    outs, _ = _run(tx.scale_by_radam(b1, b2), grads)
    momentum, _ = _run(ema(b1), grads)  # m_hat_k = m_k / (1 - b1^k)
    adam, _ = _run(scale_by_adam(b1, b2), grads)
    for k in range(1, 13):
        rho, rho_inf = ref.radam_rho(b2, k)
        if k <= 5:
            assert rho < 5.0
            _same([outs[k - 1]], [momentum[k - 1]])
        else:
            assert rho >= 5.0
            r = ref.radam_r(rho, rho_inf)
            _same([outs[k - 1]], [jax.tree.map(lambda a, r=r: r * a, adam[k - 1])], rtol=1e-10)


def test_radam_is_momentum_sgd_when_the_variance_is_never_tractable():
    # b2 = 0.6: rho_inf = 4 < threshold, so every step takes the SGD-with-momentum branch.
    grads = _grads(30)
    _same(_run(opt.radam(0.1, 0.9, 0.6), grads)[0], _run(chain(ema(0.9), scale_by_learning_rate(0.1)), grads)[0])
    _same(_run(opt.radam(0.1, 0.9, 0.999, threshold=1e9), grads)[0],
          _run(chain(ema(0.9), scale_by_learning_rate(0.1)), grads)[0])


def test_radam_rho_has_no_cancellation_in_float32():
    getcontext().prec = 60

    def exact(b2, k):
        b = Decimal(b2)
        bk = b**k
        return float(2 / (1 - b) - 1 - 2 * k * bk / (1 - bk))

    ks = [1, 2, 3, 5, 6, 7, 24, 25, 26, 100, 249, 251, 1000, 2600, 10**5, 2**31 - 1]
    rho_fn = jax.jit(tx.radam_rho, static_argnums=2)
    for b2 in (0.0, 0.5, 0.9, 0.99, 0.999, 0.9999):
        for dtype, tol in ((jnp.float32, 2e-6), (jnp.float64, 1e-13)):
            b2_here = 1 - Decimal(float(np.asarray(1 - b2, dtype)))  # 1 - b2 rounded once: what the block sees
            for k in ks:
                rho, _ = rho_fn(b2, jnp.int32(k), dtype)
                assert rho.dtype == dtype
                want = exact(b2_here, k)
                assert abs(float(rho) - want) <= tol * max(1.0, abs(want)), (b2, k, float(rho), want)
    assert float(rho_fn(0.999, jnp.int32(1), jnp.float32)[0]) == pytest.approx(1.0, abs=1e-6)


def test_radam_saturated_counter_and_long_runs_approach_adam():
    state = tx.scale_by_radam().init(G)
    state = state._replace(count=jnp.int32(2**31 - 2), mu=G * 0.5, nu=G**2)
    u, s = tx.scale_by_radam().update(G, state)
    u_adam, _ = scale_by_adam().update(G, state)
    assert int(s.count) == 2**31 - 1
    np.testing.assert_allclose(u, u_adam, rtol=1e-9)
    u, s2 = tx.scale_by_radam().update(G, s)
    assert int(s2.count) == 2**31 - 1 and bool(jnp.all(jnp.isfinite(u)))


def test_adan_first_step_and_constant_gradient():
    # d_1 = 0: m_hat = g, v_hat = 0, n_hat = g^2, so u_1 = g / (sqrt(g^2 + eps_root) + eps); a constant gradient
    # keeps d = 0 and the same step.
    eps, eps_root = 1e-6, 1e-8
    outs, states = _run(tx.scale_by_adan(0.98, 0.92, 0.99, eps, eps_root), [G] * 20)
    want = G / (jnp.sqrt(G**2 + eps_root) + eps)
    for u in outs:
        np.testing.assert_allclose(u, want, rtol=1e-12)
    np.testing.assert_array_equal(states[-1].v, jnp.zeros_like(G))
    np.testing.assert_array_equal(states[-1].g, G)
    assert int(states[-1].t) == 20


def test_adan_second_step_by_hand():
    b1, b2, b3, eps = 0.98, 0.92, 0.99, 1e-8
    g1, g2 = G, G * -0.5 + 1.0
    outs, _ = _run(tx.scale_by_adan(b1, b2, b3, eps), [g1, g2])
    d = g2 - g1
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = (1 - b2) * d
    n = b3 * (1 - b3) * g1**2 + (1 - b3) * (g2 + (1 - b2) * d) ** 2
    want = (m / (1 - b1**2) + (1 - b2) * v / (1 - b2**2)) / (jnp.sqrt(n / (1 - b3**2)) + eps)
    np.testing.assert_allclose(outs[1], want, rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# Identities between compositions
# ------------------------------------------------------------------------------------------------


def test_decoupled_weight_decay_zero_is_the_plain_optimizer():
    grads = _grads(40)
    params = default_params(jnp.float64)
    _same(_run(opt.adamaxw(0.01, weight_decay=0.0), grads, params)[0], _run(opt.adamax(0.01), grads, params)[0])
    _same(_run(opt.adan(0.01), grads, params)[0],
          _run(chain(tx.scale_by_adan(eps_root=1e-8), scale_by_learning_rate(0.01)), grads, params)[0])


def test_adamaxw_adds_lr_times_decay_to_adamax():
    grads, params = _grads(20), default_params(jnp.float64)
    with_decay = _run(opt.adamaxw(0.01, weight_decay=0.3), grads, params)[0]
    without = _run(opt.adamax(0.01), grads, params)[0]
    for a, b in zip(with_decay, without):
        _same([a], [jax.tree.map(lambda u, p: u - 0.01 * 0.3 * p, b, params)])


def test_recipes_are_chains_of_their_blocks():
    grads, params = _grads(30), default_params(jnp.float64)
    pairs = [
        (opt.amsgrad(0.01, eps_root=1e-9), tx.scale_by_amsgrad(eps_root=1e-9)),
        (opt.adabelief(0.01, nesterov=True), tx.scale_by_belief(nesterov=True)),
        (opt.yogi(0.01, 0.8), tx.scale_by_yogi(0.8)),
        (opt.radam(0.01, nesterov=True), tx.scale_by_radam(nesterov=True)),
    ]
    for recipe, block in pairs:
        _same(_run(recipe, grads, params)[0], _run(chain(block, scale_by_learning_rate(0.01)), grads, params)[0])


def test_nesterov_first_moment_matches_nadam_in_belief_and_radam():
    # With b2 tiny, AdaBelief's s and Adam's v differ, but the Nesterov first moments agree: compare the
    # SGD branch of RAdam (threshold never reached) with trace-free NAdam momentum computed by hand.
    b1, grads = 0.8, [G * s for s in (1.0, -2.0, 0.5, 3.0)]
    outs, _ = _run(tx.scale_by_radam(b1, 0.6, nesterov=True), grads)
    m = 0.0
    for k, (g, u) in enumerate(zip(grads, outs), start=1):
        m = b1 * m + (1 - b1) * g
        want = b1 * m / (1 - b1 ** (k + 1)) + (1 - b1) * g / (1 - b1**k)
        np.testing.assert_allclose(u, want, rtol=1e-12)


def test_sgd_momentum_trace_and_radam_sgd_branch_have_the_same_direction():
    # trace sums, ema averages: before the threshold RAdam's step is (1 - b1) / (1 - b1^k) times the trace.
    b1, grads = 0.9, _grads(5)
    outs, _ = _run(tx.scale_by_radam(b1, 0.999), grads)
    traces, _ = _run(trace(b1), grads)
    for k, (u, t) in enumerate(zip(outs, traces), start=1):
        _same([u], [jax.tree.map(lambda x, k=k: x * (1 - b1) / (1 - b1**k), t)])


# ------------------------------------------------------------------------------------------------
# Construction errors
# ------------------------------------------------------------------------------------------------

ERRORS = [
    (lambda: tx.scale_by_adamax(b1=1.0), "scale_by_adamax(b1=1.0): b1 must be in [0, 1)"),
    (lambda: tx.scale_by_adamax(b2=1.5), "scale_by_adamax(b2=1.5): b2 must be in [0, 1]"),
    (lambda: tx.scale_by_adamax(eps=-1.0), "scale_by_adamax(eps=-1.0): eps must be >= 0"),
    (lambda: tx.scale_by_amsgrad(b2=1.0), "scale_by_amsgrad(b2=1.0): b2 must be in [0, 1)"),
    (lambda: tx.scale_by_amsgrad(b1=-0.1), "scale_by_amsgrad(b1=-0.1): b1 must be in [0, 1)"),
    (lambda: tx.scale_by_amsgrad(b1=1.1, bias_correction_mu=False),
     "scale_by_amsgrad(b1=1.1): b1 must be in [0, 1]"),
    (lambda: tx.scale_by_amsgrad(eps_root=-1e-9), "scale_by_amsgrad(eps_root=-1e-09): eps_root must be >= 0"),
    (lambda: tx.scale_by_belief(b1=1.0), "scale_by_belief(b1=1.0): b1 must be in [0, 1)"),
    (lambda: tx.scale_by_belief(eps_root=math.nan), "scale_by_belief(eps_root=nan): eps_root must be >= 0"),
    (lambda: tx.scale_by_yogi(b2=2.0), "scale_by_yogi(b2=2.0): b2 must be in [0, 1)"),
    (lambda: tx.scale_by_yogi(initial_accumulator_value=-1e-6),
     "scale_by_yogi(initial_accumulator_value=-1e-06): initial_accumulator_value must be >= 0"),
    (lambda: tx.scale_by_radam(threshold=3.0), "scale_by_radam(threshold=3.0): threshold must be >= 4"),
    (lambda: tx.scale_by_radam(b2=1.0), "scale_by_radam(b2=1.0): b2 must be in [0, 1)"),
    (lambda: tx.scale_by_adan(b3=1.0), "scale_by_adan(b3=1.0): b3 must be in [0, 1)"),
    (lambda: tx.scale_by_adan(eps="1e-8"), "scale_by_adan(eps='1e-8'): eps must be a real number >= 0, not str"),
    (lambda: opt.adamax(0.1, b1=1.2), "adamax(b1=1.2): b1 must be in [0, 1)"),
    (lambda: opt.adamaxw(0.1, weight_decay=math.inf),
     "adamaxw(weight_decay=inf): weight_decay must be finite"),
    (lambda: opt.amsgrad(math.nan), "amsgrad(learning_rate=nan): learning_rate must be finite"),
    (lambda: opt.adabelief(0.1, b2=-0.5), "adabelief(b2=-0.5): b2 must be in [0, 1)"),
    (lambda: opt.yogi(0.1, eps=-1.0), "yogi(eps=-1.0): eps must be >= 0"),
    (lambda: opt.radam(0.1, threshold=2.0), "radam(threshold=2.0): threshold must be >= 4"),
    (lambda: opt.adan(0.1, b2=1.0), "adan(b2=1.0): b2 must be in [0, 1)"),
]


@pytest.mark.parametrize("make,message", ERRORS, ids=[m.split(":")[0] for _, m in ERRORS])
def test_bad_hyperparameters_raise_at_construction(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value).startswith(message), str(info.value)


def test_mismatched_trees_and_missing_params_name_the_call():
    params = {"a": jnp.ones(3), "b": jnp.ones(2)}
    for block in (tx.scale_by_adamax(), tx.scale_by_amsgrad(), tx.scale_by_belief(), tx.scale_by_yogi(),
                  tx.scale_by_radam(), tx.scale_by_adan()):
        state = block.init(params)
        with pytest.raises(TypeError, match=f"{type(block).__name__}.update"):
            block.update({"a": jnp.ones(3)}, state)
    for recipe in (opt.adan(0.1), opt.adamaxw(0.1)):
        with pytest.raises(ValueError, match=r"add_decayed_weights\.update: params are required"):
            recipe.update(params, recipe.init(params))


# ------------------------------------------------------------------------------------------------
# Signatures, state names, pytrees
# ------------------------------------------------------------------------------------------------

SIGNATURES = [
    (tx.scale_by_adamax, optax.scale_by_adamax), (tx.scale_by_amsgrad, optax.scale_by_amsgrad),
    (tx.scale_by_belief, optax.scale_by_belief), (tx.scale_by_yogi, optax.scale_by_yogi),
    (tx.scale_by_radam, optax.scale_by_radam), (tx.scale_by_adan, optax.scale_by_adan),
    (opt.adamax, optax.adamax), (opt.adamaxw, optax.adamaxw), (opt.amsgrad, optax.amsgrad),
    (opt.adabelief, optax.adabelief), (opt.yogi, optax.yogi), (opt.radam, optax.radam), (opt.adan, optax.adan),
]


@pytest.mark.parametrize("ours,theirs", SIGNATURES, ids=[o.__name__ for o, _ in SIGNATURES])
def test_signature_is_optax(ours, theirs):
    import inspect

    def shape(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    o, t = shape(ours), shape(theirs)
    assert o[: len(t)] == t  # Optax's parameters, in Optax's order, with Optax's defaults
    # then only gradtx's own options (nu_dtype, ...): keyword-only, with defaults
    assert all(k is inspect.Parameter.KEYWORD_ONLY and d is not inspect.Parameter.empty for _, k, d in o[len(t) :])


def test_state_classes_have_optax_names_and_fields():
    for ours, theirs in ((tx.ScaleByAmsgradState, optax.ScaleByAmsgradState),
                         (tx.ScaleByBeliefState, optax.ScaleByBeliefState),
                         (tx.ScaleByAdanState, optax.ScaleByAdanState)):
        assert ours.__name__ == theirs.__name__ and ours._fields == theirs._fields
    assert tx.ScaleByAdamState is ScaleByAdamState
    params = {"a": jnp.ones(2)}
    for block in (tx.scale_by_adamax(), tx.scale_by_yogi(), tx.scale_by_radam()):
        assert type(block.init(params)) is ScaleByAdamState


def test_hyperparameters_are_leaves_and_reprs_read_like_the_recipe():
    o = opt.radam(1e-3, threshold=6.0, nesterov=True)
    assert "scale_by_radam(b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0, threshold=6.0, nesterov=True)" in repr(o)
    assert 1e-3 in jax.tree.leaves(o) and 6.0 in jax.tree.leaves(o)
    # Changing a hyperparameter does not retrace; jax.grad flows through b2 and the learning rate.
    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(t, g, s):
        return t.update(g, s)

    s = opt.radam(1e-3).init(G)
    run(opt.radam(1e-3), G, s)
    run(opt.radam(2e-3, b2=0.99), G, s)

    def loss(lr, b2):  # eps_root > 0: d sqrt(v)/dv is infinite at v = 0 (a zero gradient), as in Adam
        p = G
        t = opt.radam(lr, 0.9, b2, eps_root=1e-12)
        s = t.init(p)
        for k in range(8):
            u, s = t.update(p * (1 + 0.1 * k), s)
            p = apply_updates(p, u)
        return jnp.sum(p**2)

    grads = jax.grad(loss, argnums=(0, 1))(0.01, 0.999)
    assert all(bool(jnp.isfinite(x)) for x in grads)
    assert float(grads[1]) != 0.0  # steps 6 to 8 are rectified, and r depends on b2
    h = 1e-6
    fd = (loss(0.01, 0.999 + h) - loss(0.01, 0.999 - h)) / (2 * h)
    np.testing.assert_allclose(grads[1], fd, rtol=1e-4)
    # The branch not taken and b2 at the edge of its range do not poison gradients with NaN.
    for b2 in (0.0, 0.3, 0.6):
        assert all(bool(jnp.isfinite(x)) for x in jax.grad(loss, argnums=(0, 1))(0.01, b2))


def test_eval_shape_and_mu_dtype():
    params = default_params(jnp.float32)
    for o in (opt.adamax(0.1), opt.amsgrad(0.1), opt.adabelief(0.1), opt.yogi(0.1), opt.radam(0.1),
              opt.adan(0.1), opt.adamaxw(0.1)):
        shapes = jax.eval_shape(o.init, params)
        assert jax.tree.structure(shapes) == jax.tree.structure(o.init(params))
    state = tx.scale_by_amsgrad(mu_dtype=jnp.bfloat16).init(params)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(state.mu))
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.nu_max))
    assert tx.scale_by_amsgrad(mu_dtype="bfloat16").mu_dtype == np.dtype(jnp.bfloat16)


def test_bfloat16_keeps_b2_and_dtypes():
    # b2 = 0.999 rounds to 1.0 in bfloat16; arithmetic in float32 keeps the bias correction finite.
    p = jnp.ones(4, jnp.bfloat16)
    for block in (tx.scale_by_adamax(), tx.scale_by_amsgrad(), tx.scale_by_belief(), tx.scale_by_yogi(),
                  tx.scale_by_radam(), tx.scale_by_adan()):
        with jax.numpy_dtype_promotion("strict"):
            outs, states = _run(block, [p * 0.5] * 8, p)
        assert all(u.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(u))) for u in outs)
        assert all(x.dtype in (jnp.bfloat16, jnp.int32) for x in jax.tree.leaves(states[-1]))


# ------------------------------------------------------------------------------------------------
# Complex parameters: Optax's convention (updates are conjugated gradients; second moments use |g|^2)
# ------------------------------------------------------------------------------------------------

COMPLEX = [
    (lambda: tx.scale_by_adamax(), optax.scale_by_adamax),
    (lambda: tx.scale_by_amsgrad(eps_root=1e-8), lambda: optax.scale_by_amsgrad(eps_root=1e-8)),
    (lambda: tx.scale_by_belief(nesterov=True), lambda: optax.scale_by_belief(nesterov=True)),
    (lambda: tx.scale_by_yogi(), optax.scale_by_yogi),
    (lambda: tx.scale_by_radam(nesterov=True), lambda: optax.scale_by_radam(nesterov=True)),
    (lambda: opt.adamaxw(0.01, weight_decay=0.1), lambda: optax.adamaxw(0.01, weight_decay=0.1)),
    (lambda: opt.amsgrad(0.01), lambda: optax.amsgrad(0.01)),
    (lambda: opt.adabelief(0.01), lambda: optax.adabelief(0.01)),
    (lambda: opt.yogi(0.01), lambda: optax.yogi(0.01)),
    (lambda: opt.radam(0.01), lambda: optax.radam(0.01)),
]


def _complex_params(dtype):
    rng = np.random.default_rng(3)
    return {"w": jnp.asarray(rng.normal(size=(3, 2)) + 1j * rng.normal(size=(3, 2)), dtype),
            "s": jnp.asarray(0.5 - 2j, dtype)}


@pytest.mark.parametrize("dtype", [jnp.complex64, jnp.complex128])
@pytest.mark.parametrize("make,make_optax", COMPLEX, ids=range(len(COMPLEX)))
def test_complex_parameters_match_optax(make, make_optax, dtype):
    params = _complex_params(dtype)
    ours, theirs = make(), make_optax()
    s1, s2 = ours.init(params), theirs.init(params)
    rng = np.random.default_rng(11)
    p = params
    for _ in range(30):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape) + 1j * rng.normal(size=x.shape), dtype), p)
        u1, s1 = ours.update(g, s1, p)
        u2, s2 = theirs.update(g, s2, p)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
            assert a.dtype == b.dtype == dtype
            np.testing.assert_allclose(a, b, rtol=2e-4 if dtype == jnp.complex64 else 1e-10, atol=1e-7)
        p = apply_updates(p, u1)
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
        assert jnp.result_type(a) == jnp.result_type(b)


@pytest.mark.parametrize("make", [m for m, _ in COMPLEX[:5]], ids=range(5))
def test_complex_blocks_under_strict_promotion(make):
    params = _complex_params(jnp.complex64)
    block = make()
    with jax.numpy_dtype_promotion("strict"):
        outs, states = _run(block, [params] * 3, params)
    assert all(x.dtype == jnp.complex64 for x in jax.tree.leaves(outs[-1]))
    # Second moments are real-valued: stored complex (Optax's dtype) with a zero imaginary part.
    for name in ("nu", "nu_max"):
        for x in jax.tree.leaves(getattr(states[-1], name, ())):
            np.testing.assert_array_equal(np.imag(np.asarray(x)), 0.0)


def test_complex_update_has_the_phase_of_the_first_moment():
    z = jnp.array([3 + 4j, -1j], jnp.complex128)
    (u,), _ = _run(tx.scale_by_adamax(eps=0.0), [z])
    np.testing.assert_allclose(u, z / jnp.abs(z), rtol=1e-14)  # first step: g / |g|, unit modulus


# ------------------------------------------------------------------------------------------------
# The references themselves
# ------------------------------------------------------------------------------------------------


def _refs():
    mask = np.array([True, False] * 3 + [True])
    return [
        ref.scale_by_adamax(), ref.scale_by_amsgrad(), ref.scale_by_amsgrad(bias_correction_mu=False),
        ref.scale_by_belief(nesterov=True), ref.scale_by_yogi(), ref.scale_by_radam(nesterov=True),
        ref.scale_by_adan(), ref.adamax(0.1), ref.adamaxw(0.1, mask=mask), ref.amsgrad(0.1),
        ref.adabelief(0.1), ref.yogi(0.1), ref.radam(0.1), ref.adan(0.1, weight_decay=0.1, mask=mask),
    ]


@pytest.mark.parametrize("index", range(len(_refs())))
def test_references_do_not_mutate_or_alias(index):
    r = _refs()[index]
    rng = np.random.default_rng(index)
    outs = []
    for _ in range(8):
        g, p = rng.normal(size=7), rng.normal(size=7)
        g0, p0 = g.copy(), p.copy()
        u = r.step(g, p)
        assert u.dtype == np.float64 and u is not g
        np.testing.assert_array_equal(g, g0)
        np.testing.assert_array_equal(p, p0)
        outs.append(u)
    g[:] = 1e9  # changing the caller's array later must not change anything kept
    assert all(np.all(np.abs(u) < 1e8) for u in outs)


def test_reference_radam_branch_schedule():
    r = ref.radam(1.0, 0.9, 0.999)
    g = np.array([1.0, -2.0])
    m = np.zeros(2)
    for k in range(1, 8):
        m = 0.9 * m + 0.1 * g
        u = r.step(g)
        if k <= 5:
            np.testing.assert_allclose(u, -m / (1 - 0.9**k), rtol=1e-15)
        else:
            assert not np.allclose(u, -m / (1 - 0.9**k))
