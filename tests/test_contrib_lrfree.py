"""Learning-rate-free optimizers of gradtx.contrib: closed forms, the Optax bugs fixed, convergence on the zoo.

The registry tiers (tests/registry_contrib_lrfree.py) compare every entry with its float64 reference and with
Optax; this file checks what a fixed gradient stream cannot: first steps against their closed forms,
``reduce_on_plateau`` on negative values (Optax PR #1767), abstract ``init`` on parameters Optax rejects (mixed
float16/bfloat16: no "lowest" dtype; Optax PR #1714), zero gradients and warm-up from 0 (Optax: NaN), and that
each optimizer solves an ill-conditioned quadratic of the problem zoo.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from gradtx.base import apply_updates
from gradtx.combine import chain
from gradtx.contrib import _lrfree as lf
from gradtx.optimizers import adam, sgd
from gradtx.schedules import linear_schedule
from gradtx.testing.problems import Quadratic
from gradtx.testing.reference import contrib_lrfree as ref

# --------------------------------------------------------------------------------------------------
# reduce_on_plateau
# --------------------------------------------------------------------------------------------------


def _scales(tx, values):
    """The scale applied to a unit gradient after each value (one jitted step reused)."""
    step = jax.jit(lambda s, v: tx.update(jnp.ones([]), s, None, value=v))
    state, out = tx.init(jnp.zeros([])), []
    for v in values:
        u, state = step(state, jnp.float32(v))
        out.append(float(u))
    return out, state


@pytest.mark.parametrize("level", [1.0, -1.0, -1e6])
def test_reduce_on_plateau_reduces_on_a_plateau_of_any_sign(level):
    """A constant value with patience 2: scale 1, 1, 0.1, 0.1, 0.01, ... whatever its sign (Optax 0.2.8 never
    reduces for a negative value: ``(1 - rtol) * best`` lies above a negative ``best``)."""
    got, state = _scales(lf.reduce_on_plateau(patience=2), [level] * 8)
    want = [0.1 ** (k // 2) for k in range(8)]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert float(state.best_value) == level
    oracle = ref.reduce_on_plateau(patience=2)
    np.testing.assert_allclose(got, [float(oracle.step(np.ones(1), value=level)[0]) for _ in range(8)], rtol=1e-6)


def test_reduce_on_plateau_negative_values_use_the_margin_rtol_abs_best():
    """best = -1, rtol = 1e-2: -1.005 is not an improvement (margin 0.01), -1.02 is; a worse -0.5 never is."""
    tx = lf.reduce_on_plateau(patience=10, rtol=1e-2)
    _, state = _scales(tx, [-1.0, -1.005, -0.5])
    assert float(state.best_value) == -1.0 and int(state.plateau_count) == 2
    _, state = _scales(tx, [-1.0, -1.02])
    assert float(state.best_value) == pytest.approx(-1.02) and int(state.plateau_count) == 0


def test_reduce_on_plateau_accumulates_cools_down_and_floors():
    """accumulation_size=3: the mean of 3 values is evaluated; cooldown=1 skips one evaluation; min_scale floors."""
    tx = lf.reduce_on_plateau(0.5, patience=1, cooldown=1, accumulation_size=3, min_scale=0.2)
    values = [3.0, 1.0, 2.0] * 6  # means 2, 2, 2, ...: improvement, then a plateau at every evaluation
    got, state = _scales(tx, values)
    oracle = ref.reduce_on_plateau(0.5, patience=1, cooldown=1, accumulation_size=3, min_scale=0.2)
    want = [float(oracle.step(np.ones(1), value=v)[0]) for v in values]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # evaluations at calls 3, 6, 9, 12, 15, 18: best=2; reduce (0.5); cooldown; reduce (0.25); cooldown; 0.2 floor
    np.testing.assert_allclose(got[2::3], [1.0, 0.5, 0.5, 0.25, 0.25, 0.2], rtol=1e-6)
    assert float(state.best_value) == 2.0


def test_reduce_on_plateau_needs_a_value_and_checks_its_arguments():
    tx = lf.reduce_on_plateau()
    with pytest.raises(ValueError, match=r"reduce_on_plateau.update: value is required"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))
    with pytest.raises(ValueError, match=r"reduce_on_plateau\(factor=1.5\): factor must be in \(0, 1\)"):
        lf.reduce_on_plateau(factor=1.5)
    with pytest.raises(ValueError, match=r"reduce_on_plateau\(atol=0.0\): atol must be > 0 when rtol is 0"):
        lf.reduce_on_plateau(rtol=0.0)


# --------------------------------------------------------------------------------------------------
# DoG and DoWG: first steps in closed form
# --------------------------------------------------------------------------------------------------

X0 = jnp.asarray([3.0, -4.0], jnp.float64)  # ||x_0|| = 5
G = jnp.asarray([0.6, 0.8], jnp.float64)  # ||g|| = 1


@pytest.mark.parametrize(
    "init_step,eta",
    [(("distance", 0.1), 0.1), (("heuristic", 1e-3), 1e-3 * 6.0), (("learning_rate", 0.05), 0.05)],
)
def test_dog_first_step(init_step, eta):
    """Step 1 (x_1 = x_0, G_1 = ||g||^2 = 1): eta_1 = r_eps / sqrt(1 + eps), or the given learning rate."""
    tx = lf.dog(2.0, init_step, eps=0.0)
    u, state = tx.update(G, tx.init(X0), X0)
    np.testing.assert_allclose(np.asarray(u), -2.0 * eta * np.asarray(G), rtol=1e-12)
    # step 2 from x_1 = x_0 + u: rbar = max(r_eps, ||u||), G = 2
    x1 = X0 + u
    u2, _ = tx.update(G, state, x1)
    rbar = max(0.0 if init_step[0] == "learning_rate" else eta, float(jnp.linalg.norm(u)))
    np.testing.assert_allclose(np.asarray(u2), -2.0 * rbar / np.sqrt(2.0) * np.asarray(G), rtol=1e-12)


def test_dowg_first_steps():
    """rbar_0^2 = eps; v_1 = eps ||g||^2; eta_1 = eps / (sqrt(eps) + eps); then rbar_2^2 = ||x_1 - x_0||^2."""
    eps = 1e-2
    tx = lf.dowg(1.0, eps=eps)
    u, state = tx.update(G, tx.init(X0), X0)
    eta1 = eps / (np.sqrt(eps) + eps)
    np.testing.assert_allclose(np.asarray(u), -eta1 * np.asarray(G), rtol=1e-12)
    u2, _ = tx.update(G, state, X0 + u)
    r2 = max(eps, eta1**2)
    eta2 = r2 / (np.sqrt(eps + r2) + eps)
    np.testing.assert_allclose(np.asarray(u2), -eta2 * np.asarray(G), rtol=1e-12)


def test_dog_init_step_is_a_tuple_like_pair_with_a_leaf_value():
    """The value is a hyperparameter leaf (a new value does not retrace); the kind is structure."""
    a, b = lf.scale_by_dog(("distance", 0.1)), lf.scale_by_dog(("distance", 0.2))
    assert jax.tree.structure(a) == jax.tree.structure(b)
    assert jax.tree.leaves(a) == [0.1, 1e-8]
    assert tuple(a.init_step) == ("distance", 0.1) and a.init_step == ("distance", 0.1)
    assert repr(a) == "scale_by_dog(init_step=('distance', 0.1), eps=1e-08)"
    assert jax.tree.structure(lf.scale_by_dog(("heuristic", 0.1))) != jax.tree.structure(a)
    with pytest.raises(ValueError, match=r"scale_by_dog\(init_step=\('guess', 1.0\)\): init_step must be a pair"):
        lf.scale_by_dog(("guess", 1.0))
    with pytest.raises(ValueError, match=r"init_step must have a value > 0"):
        lf.scale_by_dog(("distance", -1.0))


# --------------------------------------------------------------------------------------------------
# Prodigy and D-Adaptation: first steps, degenerate cases
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lf.prodigy, lf.dadapt_adamw], ids=["prodigy", "dadapt_adamw"])
def test_first_step_is_d0_times_adams_first_step(make):
    """At step 1 both estimates are still d_1 = estim_lr0 (r_1 = 0), and the update is Adam's first step scaled by
    d_1: u = -d_1 sqrt(1 - b2) g / (sqrt(1 - b2) |g| + eps) (Prodigy's moments hold d g and its eps is d eps, so
    d cancels the same way)."""
    d0, eps, b2 = 1e-3, 1e-4, 0.99
    tx = make(1.0, (0.9, b2), eps=eps, estim_lr0=d0)
    g = np.array([0.5, -2.0, 1e-3])
    u, state = tx.update(jnp.asarray(g), tx.init(jnp.ones(3, jnp.float64)), jnp.ones(3, jnp.float64))
    c = np.sqrt(1 - b2)
    want = -d0 * c * g / (c * np.abs(g) + eps)
    np.testing.assert_allclose(np.asarray(u), want, rtol=1e-12)
    assert float(state.estim_lr) == d0


@pytest.mark.parametrize("name", ["prodigy", "dadapt_adamw"])
def test_warmup_from_zero_and_zero_gradients_stay_finite(name):
    """A warm-up schedule starting at 0 (the recommended use) makes s_1 = 0, and a zero gradient does too: the
    estimate keeps d_k (Optax 0.2.8 divides 0 by 0 and every later update is NaN); the float64 reference agrees."""
    params = {"w": jnp.ones((2, 3), jnp.float64), "b": jnp.zeros(3, jnp.float64)}
    tx = getattr(lf, name)(linear_schedule(0.0, 1.0, 10))
    oracle = getattr(ref, name)(lambda k: min(k / 10, 1.0))
    if name == "prodigy":
        oracle.init(np.asarray(ravel_pytree(params)[0]))
    step = jax.jit(tx.update)
    state = tx.init(params)
    rng = np.random.default_rng(0)
    for k in range(12):
        g = jax.tree.map(lambda x, on=k != 3: jnp.asarray(rng.normal(size=x.shape) * on, x.dtype), params)
        u, state = step(g, state, params)
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves((u, state))), k
        want = oracle.step(np.asarray(ravel_pytree(g)[0]), np.asarray(ravel_pytree(params)[0]))
        np.testing.assert_allclose(np.asarray(ravel_pytree(u)[0]), want, rtol=1e-9, atol=1e-15)
        params = apply_updates(params, u)


# --------------------------------------------------------------------------------------------------
# Prodigy's use_bias_correction against the authors' code (konstmish/prodigy, commit 3efb213)
# --------------------------------------------------------------------------------------------------

# (gradtx keyword arguments, the authors' keyword arguments) of the same configuration.
AUTHORS_CONFIGS = {
    "defaults": ({}, {}),
    "safeguard, decay, beta3, coef, schedule": (
        {"learning_rate": lambda c: jnp.minimum((c.astype(jnp.float64) + 1) / 5, 1.0),  # float64: (c + 1) / 5
         "betas": (0.8, 0.99), "beta3": 0.9, "eps": 1e-6, "estim_lr0": 1e-5, "estim_lr_coef": 2.0,
         "weight_decay": 0.1, "safeguard_warmup": True},
        {"lr": lambda k: min((k + 1) / 5, 1.0), "betas": (0.8, 0.99), "beta3": 0.9, "eps": 1e-6, "d0": 1e-5,
         "d_coef": 2.0, "weight_decay": 0.1, "safeguard_warmup": True},
    ),
}


def _authors_run(bias, ours, theirs, steps=30):
    """gradtx's prodigy (float64, jitted, a nested tree) and the authors' transcription on the same gradient
    stream of a noisy quadratic, params updated each step; yields (k, gradtx update, state, authors' update,
    authors' reference)."""
    params = {"w": jnp.full((3, 4), 0.5, jnp.float64), "b": jnp.zeros(5, jnp.float64)}
    tx = lf.prodigy(**ours, use_bias_correction=bias)
    oracle = ref.prodigy_authors(**theirs, use_bias_correction=bias).init(np.asarray(ravel_pytree(params)[0]))
    step = jax.jit(tx.update)
    state = tx.init(params)
    rng = np.random.default_rng(7)
    for k in range(steps):
        x = np.asarray(ravel_pytree(params)[0])
        g_flat = 3.0 * (x - 2.0) + 0.1 * rng.normal(size=x.shape)  # the gradient of a quadratic, with noise
        g = ravel_pytree(params)[1](jnp.asarray(g_flat))
        u, state = step(g, state, params)
        yield k, np.asarray(ravel_pytree(u)[0]), state, oracle.step(g_flat, x), oracle
        params = apply_updates(params, u)


@pytest.mark.parametrize("bias", [False, True], ids=["authors_default", "use_bias_correction"])
@pytest.mark.parametrize("config", sorted(AUTHORS_CONFIGS))
def test_prodigy_is_the_authors_update_step_by_step(config, bias):
    """For 30 steps the update, the estimate d (ProdigyState.estim_lr) and the numerator r (numerator_weighted)
    equal the float64 transcription of the authors' PyTorch step, with their use_bias_correction either way;
    the estimate grows (the check is not vacuous)."""
    ours, theirs = AUTHORS_CONFIGS[config]
    for k, u, state, want, oracle in _authors_run(bias, ours, theirs):
        np.testing.assert_allclose(u, want, rtol=1e-10, atol=1e-300, err_msg=f"update at step {k + 1}")
        np.testing.assert_allclose(float(state.estim_lr), oracle.d, rtol=1e-10, err_msg=f"d at step {k + 1}")
        np.testing.assert_allclose(float(state.numerator_weighted), oracle.d_numerator, rtol=1e-10, atol=1e-300,
                                   err_msg=f"r at step {k + 1}")
        assert int(state.count) == oracle.k == k + 1
    assert oracle.d > 100 * oracle.d0


@pytest.mark.parametrize("bias", [False, True])
def test_prodigy_with_b1_zero_differs_from_the_authors_by_the_new_estimate(bias):
    """With b1 = 0 the authors' code has no first moment and steps by -dlr_k d g / denom with d already replaced
    by d_{k+1} (dlr_k keeps d_k), while gradtx and Optax step by -dlr_k m_k / denom with m_k = d_k g: the updates
    differ by the factor d_{k+1} / d_k (a difference written down, not reproduced); d and r agree."""
    ours, theirs = {"betas": (0.0, 0.999)}, {"betas": (0.0, 0.999)}
    d_prev = 1e-6
    for k, u, state, want, oracle in _authors_run(bias, ours, theirs):
        np.testing.assert_allclose(u, want * d_prev / oracle.d, rtol=1e-10, err_msg=f"update at step {k + 1}")
        np.testing.assert_allclose(float(state.estim_lr), oracle.d, rtol=1e-10, err_msg=f"d at step {k + 1}")
        d_prev = oracle.d
    assert oracle.d > 100 * oracle.d0


def test_prodigy_without_bias_correction_is_not_the_default():
    """The two settings differ from the first step on (by (1 - b1) / sqrt(1 - b2) at step 1) and the estimates
    part ways: the option is not a no-op."""
    runs = {b: list(_authors_run(b, {}, {}, steps=20)) for b in (False, True)}
    u_off, u_on = runs[False][0][1], runs[True][0][1]
    np.testing.assert_allclose(u_off / u_on, 0.1 / np.sqrt(0.001), rtol=1e-9)
    assert float(runs[False][-1][2].estim_lr) != pytest.approx(float(runs[True][-1][2].estim_lr), rel=1e-3)


def test_prodigy_default_is_unchanged_optax_bias_correction():
    """The default is use_bias_correction=True (keyword-only, after Optax's parameters): equal to the explicit
    option as an object and bit for bit over 25 steps, and Optax's update (which always corrects) in float64."""
    default, explicit = lf.prodigy(), lf.prodigy(use_bias_correction=True)
    assert default.use_bias_correction is True and repr(default) == repr(explicit)
    assert jax.tree.structure(default) != jax.tree.structure(lf.prodigy(use_bias_correction=False))  # static
    parameter = inspect.signature(lf.prodigy).parameters["use_bias_correction"]
    assert (parameter.kind, parameter.default) == (inspect.Parameter.KEYWORD_ONLY, True)
    params = {"w": jnp.full((3, 4), 0.5, jnp.float64), "b": jnp.zeros(5, jnp.float64)}
    states = [tx.init(params) for tx in (default, explicit, optax.contrib.prodigy())]
    rng = np.random.default_rng(3)
    for k in range(25):
        g = jax.tree.map(lambda x: jnp.asarray(3.0 * (x - 2.0) + 0.1 * rng.normal(size=x.shape)), params)
        outs = [tx.update(g, s, params) for tx, s in zip((default, explicit, optax.contrib.prodigy()), states)]
        states = [o[1] for o in outs]
        a, b, c = (np.asarray(ravel_pytree(o[0])[0]) for o in outs)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-10, err_msg=f"Optax at step {k + 1}")
        params = apply_updates(params, outs[0][0])


@pytest.mark.parametrize("bad", [2, 0, None, "no", 1.0, jnp.array(True)])
def test_prodigy_use_bias_correction_is_validated(bad):
    """Only True or False: the message names the call, the value and the type (TypeError, also a ValueError)."""
    name = type(bad).__name__ if bad is not None else "None"
    with pytest.raises(TypeError, match=rf"prodigy\(use_bias_correction=.*\): use_bias_correction must be True or "
                       rf"False, not {name}") as e:
        lf.prodigy(use_bias_correction=bad)
    assert isinstance(e.value, ValueError)
    with pytest.raises(TypeError, match="positional"):
        lf.prodigy(1.0, (0.9, 0.999), None, 1e-8, 1e-6, 1.0, 0.0, False, False)  # type: ignore[misc]


@pytest.mark.parametrize("bias", [False, True])
def test_prodigy_reference_from_the_paper_is_the_authors_transcription(bias):
    """The two float64 references (ref.prodigy from the paper, ref.prodigy_authors from the code) agree for 200
    steps in pure NumPy, with and without bias correction."""
    x = np.full(8, 0.5)
    paper = ref.prodigy(use_bias_correction=bias).init(x)
    code = ref.prodigy_authors(use_bias_correction=bias).init(x)
    rng = np.random.default_rng(11)
    for k in range(200):
        g = 3.0 * (x - 2.0) + 0.1 * rng.normal(size=x.shape)
        u = paper.step(g, x)
        np.testing.assert_allclose(u, code.step(g, x), rtol=1e-12, err_msg=f"step {k + 1}")
        assert paper.d == pytest.approx(code.d, rel=1e-13)
        x = x + u


# --------------------------------------------------------------------------------------------------
# Abstract init on parameters Optax rejects (Optax PR #1714)
# --------------------------------------------------------------------------------------------------

MIXED = {"h": jax.ShapeDtypeStruct((2, 3), jnp.float16), "b": jax.ShapeDtypeStruct((3,), jnp.bfloat16)}
ALL = {
    "dog": lf.dog, "dowg": lf.dowg, "prodigy": lf.prodigy, "dadapt_adamw": lf.dadapt_adamw,
    "reduce_on_plateau": lf.reduce_on_plateau, "cocob": lf.cocob, "momo": lf.momo, "momo_adam": lf.momo_adam,
    "mechanize": lambda: lf.mechanize(adam(1.0)),
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_eval_shape_init_on_mixed_half_precision_params(name):
    """float16 and bfloat16 leaves have no lowest common dtype (Optax's init raises): the scalar statistics are
    float32, per-parameter state keeps each parameter's dtype, and the abstract state equals the real one."""
    tx = ALL[name]()
    shapes = jax.eval_shape(tx.init, MIXED)
    real = tx.init(jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), MIXED))
    assert jax.tree.structure(shapes) == jax.tree.structure(real)
    for s, x in zip(jax.tree.leaves(shapes), jax.tree.leaves(real)):
        assert (s.shape, s.dtype) == (x.shape, x.dtype)
    scalars = {x.dtype for x in jax.tree.leaves(real) if x.ndim == 0 and jnp.issubdtype(x.dtype, jnp.floating)}
    assert scalars <= {jnp.dtype(jnp.float32)}
    per_param = {x.dtype for x in jax.tree.leaves(real) if x.shape in ((2, 3), (3,))}
    assert per_param <= {jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16)}
    assert len(scalars) + len(per_param) > 0


# --------------------------------------------------------------------------------------------------
# COCOB, MoMo, Mechanic
# --------------------------------------------------------------------------------------------------


def test_cocob_first_step_bets_one_over_alpha():
    """Step 1 (L = G = |g|, R = 0, theta = -g, alpha > 2): w_2 - w_1 = -g / (|g| alpha |g|) |g| = -sign(g) / alpha."""
    tx = lf.cocob(alpha=50.0)
    g = jnp.asarray([0.3, -2.0, 1e-3], jnp.float64)
    u, _ = tx.update(g, tx.init(X0[:1].repeat(3)), X0[:1].repeat(3))
    np.testing.assert_allclose(np.asarray(u), -np.sign(np.asarray(g)) / 50.0, rtol=1e-12)


@pytest.mark.parametrize("lr", [10.0, 0.01])
def test_momo_first_step_is_a_capped_polyak_step(lr):
    """Step 1 (rho = 0: d = g, fbar = f, gam = <g, x>): tau = min(lr, (f - lb) / ||g||^2), u = -tau g."""
    tx = lf.momo(lr, lower_bound=0.5)
    u, _ = tx.update(G, tx.init(X0), X0, value=2.5)
    np.testing.assert_allclose(np.asarray(u), -min(lr, 2.0 / 1.0) * np.asarray(G), rtol=1e-12)


@pytest.mark.parametrize("make", [lf.momo, lf.momo_adam, lf.reduce_on_plateau], ids=lambda f: f.__name__)
def test_value_is_required(make):
    tx = make()
    with pytest.raises(ValueError, match=r"\.update: value is required"):
        tx.update(G, tx.init(X0), X0)


def test_mechanize_matches_optax_in_float64():
    """Optax forms the update as x_{t+1} - x_t, which loses it to float32 cancellation; in float64 both agree
    for 200 steps (same gradient stream, a chained Adam base)."""
    ours = lf.mechanize(chain(adam(0.5), sgd(1.0)), 0.05, 1e-8, 1e-5, 4)
    theirs = optax.contrib.mechanize(optax.chain(optax.adam(0.5), optax.sgd(1.0)), 0.05, 1e-8, 1e-5, 4)
    x = jnp.asarray(np.random.default_rng(1).normal(size=7), jnp.float64)
    s1, s2 = ours.init(x), theirs.init(x)
    step1, step2 = jax.jit(ours.update), jax.jit(theirs.update)
    rng = np.random.default_rng(2)
    for k in range(200):
        g = jnp.asarray(rng.normal(size=7), jnp.float64)
        u1, s1 = step1(g, s1, x)
        u2, s2 = step2(g, s2, x)
        # atol: Optax's cancellation costs ~ulps of |x| ~ 1 in float64
        np.testing.assert_allclose(np.asarray(u1), np.asarray(u2), rtol=1e-9, atol=1e-14, err_msg=f"step {k + 1}")
        x = apply_updates(x, u1)
    np.testing.assert_allclose(np.asarray(s1.s), np.asarray(s2.s), rtol=1e-9)


def test_mechanize_update_is_accurate_in_float32():
    """The first update is s_1-sum times the base update (x_1 = x_0): exact to float32 rounding of that product,
    not to the ulps of |x| (Optax: about 1e-2 relative here)."""
    x = jnp.full(4, 300.0, jnp.float32)
    g = jnp.asarray([0.1, -0.2, 0.3, -0.4], jnp.float32)
    tx = lf.mechanize(sgd(1.0))
    u, state = tx.update(g, tx.init(x), x)
    want = -float(jnp.sum(state.s)) * np.asarray(g, np.float64)
    np.testing.assert_allclose(np.asarray(u, np.float64), want, rtol=1e-5)


# --------------------------------------------------------------------------------------------------
# Convergence on the problem zoo
# --------------------------------------------------------------------------------------------------

QUAD = Quadratic(np.diag([0.5, 2.0, 10.0]), np.array([1.0, -2.0, 0.5]))  # condition number 20


def _run(tx, steps, shift=0.0):
    """Minimise QUAD from 0 in float64; ``value`` is the loss plus ``shift``. Returns the final loss ratio."""
    w0 = jnp.zeros(3, jnp.float64)

    def body(carry, _):
        w, s = carry
        v, g = jax.value_and_grad(QUAD.loss)(w)
        u, s = tx.update(g, s, w, value=v + shift)
        return (apply_updates(w, u), s), None

    (w, _), _ = jax.jit(lambda: jax.lax.scan(body, (w0, tx.init(w0)), None, length=steps))()
    return float(QUAD.loss(w)) / float(QUAD.loss(w0))


@pytest.mark.parametrize(
    "name,make,steps,ratio",
    [("dog", lf.dog, 400, 1e-6), ("dowg", lf.dowg, 200, 1e-12), ("prodigy", lf.prodigy, 300, 1e-10),
     ("dadapt_adamw", lf.dadapt_adamw, 300, 1e-10), ("cocob", lf.cocob, 100, 1e-15), ("momo", lf.momo, 300, 1e-8),
     ("momo_adam(1.0)", lambda: lf.momo_adam(1.0), 300, 1e-8),
     ("mechanize(adam(1.0))", lambda: lf.mechanize(adam(1.0)), 300, 1e-9)],
)
def test_learning_rate_free_optimizers_solve_an_ill_conditioned_quadratic(name, make, steps, ratio):
    """With their default settings (no learning rate to tune: DoG, DoWG, Prodigy, D-Adapt and Mechanic start from
    a step size of ~1e-6; MoMo's Polyak step uses the known minimum 0 as lower bound)."""
    assert _run(make(), steps) < ratio, name


@pytest.mark.parametrize("shift,bound", [(0.0, 1e-12), (-100.0, 1e-3)])
def test_reduce_on_plateau_rescues_an_oscillating_sgd(shift, bound):
    """SGD with lr = 0.2 on a curvature-10 direction multiplies its error by 1 - 2 = -1 every step: the loss
    plateaus at that direction's initial share (closed form). Halving the scale on the plateau gives the factor 0
    and convergence, also when the monitored value is negative (loss - 100: Optax 0.2.8 never reduces and stays
    at the plateau). Near -100 the default rtol = 1e-4 is a margin of 0.01, so later small improvements count as
    plateaus and the scale keeps shrinking: the run stops earlier, hence the looser bound."""
    plain = _run(sgd(0.2), 300)
    stuck = 0.5 * 10.0 * 0.5**2 / float(QUAD.loss(jnp.zeros(3)))  # the oscillating direction's share
    assert plain == pytest.approx(stuck, rel=1e-6)
    assert _run(chain(lf.reduce_on_plateau(0.5, patience=5), sgd(0.2)), 300, shift) < bound
