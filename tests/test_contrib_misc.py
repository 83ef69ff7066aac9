"""gradtx.contrib: normalize, split_real_and_imaginary, sam, schedule_free, differentially_private_aggregate / dpsgd
and sophia: closed forms, special cases, the fixes of Optax's behaviour, cross-checks the registry tiers cannot
express (per-example gradients; Schedule-Free in float64) and convergence on the problem zoo.

The registry entries (tests/registry_contrib_misc.py) run the oracle, Optax, contract, fuzz, flat and eval_shape
tiers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx.contrib._complex_valued import SplitRealAndImaginaryArrays, split_real_and_imaginary
from gradtx.contrib._privacy import DifferentiallyPrivateAggregateState, differentially_private_aggregate, dpsgd
from gradtx.contrib._sam import normalize, sam
from gradtx.contrib._schedule_free import (
    ScheduleFreeState,
    schedule_free,
    schedule_free_adamw,
    schedule_free_eval_params,
    schedule_free_sgd,
)
from gradtx.contrib._sophia import hutchinson_estimator_diag_hessian, scale_by_sophia, sophia
from gradtx.testing import problems
from gradtx.testing import reference as ref_base
from gradtx.testing.contract import check_transformation, default_params
from gradtx.testing.reference import contrib_misc as ref


def _run(opt, loss, w0, steps, extra_fn=None, eval_fn=None):
    """``steps`` steps of ``opt`` on ``loss`` from ``w0`` in one lax.scan; returns the final (evaluation) point."""
    grad = jax.grad(loss)

    def body(carry, _):
        w, s = carry
        extra = extra_fn(w) if extra_fn is not None else {}
        u, s = opt.update(grad(w), s, w, **extra)
        return (gradtx.apply_updates(w, u), s), None

    w0 = jnp.asarray(w0)
    (w, s), _ = jax.jit(lambda w: jax.lax.scan(body, (w, opt.init(w)), None, length=steps))(w0)
    return np.asarray(eval_fn(s, w) if eval_fn is not None else w, np.float64)


# --------------------------------------------------------------------------------------------------
# normalize
# --------------------------------------------------------------------------------------------------


def test_normalize_unit_norm_and_finite_zero_gradient():
    g = {"a": jnp.asarray([3.0, 0.0], jnp.float32), "b": jnp.asarray(4.0, jnp.float32), "none": None}
    u, _ = normalize().update(g, normalize().init(g))
    np.testing.assert_allclose(u["a"], [0.6, 0.0], rtol=1e-7)
    np.testing.assert_allclose(u["b"], 0.8, rtol=1e-7)
    zero = {"a": jnp.zeros(2, jnp.float32), "b": jnp.zeros((), jnp.bfloat16)}
    u0, _ = jax.jit(normalize().update)(zero, normalize().init(zero))
    assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(u0)) and u0["b"].dtype == jnp.bfloat16
    # Optax's normalize divides 0 by 0 here (the bug the issue asks gradtx to fix).
    theirs, _ = optax.contrib.normalize().update(zero, optax.contrib.normalize().init(zero))
    assert bool(jnp.isnan(theirs["a"]).all())
    # A NaN still propagates.
    nan, _ = normalize().update({"a": jnp.asarray([jnp.nan, 1.0])}, normalize().init(None))
    assert bool(jnp.isnan(nan["a"]).all())


def test_normalize_complex_norm_is_the_modulus():
    g = jnp.asarray([3 + 4j, 0j], jnp.complex64)
    u, _ = normalize().update(g, normalize().init(g))
    np.testing.assert_allclose(np.asarray(u), [0.6 + 0.8j, 0], rtol=1e-6)


# --------------------------------------------------------------------------------------------------
# split_real_and_imaginary
# --------------------------------------------------------------------------------------------------


def test_split_real_and_imaginary_equals_the_real_pair_reference():
    """Complex128 params: 60 Adam steps equal the float64 reference run on the stacked [re, im] vector; real
    leaves beside them are plain Adam."""
    rng = np.random.default_rng(0)
    params = {"z": jnp.asarray(rng.normal(size=5) + 1j * rng.normal(size=5), jnp.complex128),
              "r": jnp.asarray(rng.normal(size=3), jnp.float64)}
    tx = split_real_and_imaginary(gradtx.adam(0.05))
    state = tx.init(params)
    assert isinstance(state.inner_state[0].mu["z"], SplitRealAndImaginaryArrays)
    oz = ref.split_real_and_imaginary(ref_base.adam(0.05))
    orr = ref_base.adam(0.05)
    step = jax.jit(tx.update)
    for _ in range(60):
        g = {"z": jnp.asarray(rng.normal(size=5) + 1j * rng.normal(size=5) * 30, jnp.complex128),
             "r": jnp.asarray(rng.normal(size=3), jnp.float64)}
        u, state = step(g, state, params)
        assert u["z"].dtype == jnp.complex128
        np.testing.assert_allclose(np.asarray(u["z"]), oz.step(np.asarray(g["z"])), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(np.asarray(u["r"]), orr.step(np.asarray(g["r"])), rtol=1e-10, atol=1e-14)


def test_split_real_and_imaginary_differs_from_complex_adam():
    """The point of the wrapper: Adam's second moment per real coordinate, not |z|^2 (update along x of a
    gradient (1 + 0.01i) is ~lr for both parts, where complex Adam scales both by |g|)."""
    g = jnp.asarray([1.0 + 0.01j], jnp.complex64)
    split = split_real_and_imaginary(gradtx.adam(1.0))
    u, _ = split.update(g, split.init(g))
    np.testing.assert_allclose(np.asarray(u), [-1 - 1j], rtol=1e-5)
    plain, _ = gradtx.adam(1.0).update(g, gradtx.adam(1.0).init(g))
    assert abs(complex(np.asarray(plain)[0]).imag) < 0.02


def test_split_real_and_imaginary_converges_on_a_complex_least_squares_problem():
    """min_z |A z - b|^2 over complex z (A well conditioned, 4 x 3): split Adam reaches the closed-form solution
    z* = lstsq(A, b). jax.grad of a real loss of complex z is the conjugate of the steepest-ascent direction
    dL/dx + i dL/dy, so the optimizer is given its conjugate."""
    rng = np.random.default_rng(5)
    A = rng.normal(size=(4, 3)) + 1j * rng.normal(size=(4, 3))
    b = rng.normal(size=4) + 1j * rng.normal(size=4)
    z_star = np.linalg.lstsq(A, b, rcond=None)[0]
    Aj, bj = jnp.asarray(A, jnp.complex128), jnp.asarray(b, jnp.complex128)
    loss = lambda z: jnp.sum(jnp.abs(Aj @ z - bj) ** 2)  # noqa: E731
    tx = split_real_and_imaginary(gradtx.adam(0.02))

    def body(carry, _):
        z, s = carry
        u, s = tx.update(jnp.conj(jax.grad(loss)(z)), s, z)
        return (gradtx.apply_updates(z, u), s), None

    z0 = jnp.zeros(3, jnp.complex128)
    (z, _), _ = jax.jit(lambda: jax.lax.scan(body, (z0, tx.init(z0)), None, length=1500))()
    excess = float(loss(z)) - float(loss(jnp.asarray(z_star)))
    assert excess < 1e-6 * (float(loss(z0)) - float(loss(jnp.asarray(z_star))))
    np.testing.assert_allclose(np.asarray(z), z_star, atol=1e-3)


# --------------------------------------------------------------------------------------------------
# schedule_free
# --------------------------------------------------------------------------------------------------

SF_CONFIGS = [
    ("schedule_free(adam b1=0)", lambda m: m.schedule_free(m.adam(1e-2, b1=0.0), 1e-2, b1=0.95)),
    ("schedule_free_sgd(warmup, wd)", lambda m: m.schedule_free_sgd(0.1, warmup_steps=10, weight_decay=0.01)),
    ("schedule_free_sgd", lambda m: m.schedule_free_sgd(0.1, b1=0.8)),
    ("schedule_free_adamw(warmup, wd)", lambda m: m.schedule_free_adamw(1e-2, warmup_steps=5, weight_decay=0.1,
                                                            weight_lr_power=1.0)),
]


class _GradtxNames:
    adam, schedule_free, schedule_free_sgd, schedule_free_adamw = (
        gradtx.adam, schedule_free, schedule_free_sgd, schedule_free_adamw)


class _OptaxNames:
    adam = optax.adam
    schedule_free, schedule_free_sgd = optax.contrib.schedule_free, optax.contrib.schedule_free_sgd
    schedule_free_adamw = optax.contrib.schedule_free_adamw


def _paths(t):
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(t)[0]]


@pytest.mark.parametrize("name,make", SF_CONFIGS, ids=[n for n, _ in SF_CONFIGS])
def test_schedule_free_matches_optax_in_float64(name, make):
    """Same gradient stream (200 steps, float64, params updated with gradtx's updates) through gradtx and
    optax.contrib: same state paths, updates and states (float64 avoids the float32 cancellation in Optax's
    ``y_new - y``, see tests/registry_contrib_misc.py). Tolerance 2e-5: Optax evaluates its warm-up schedules in
    float32 (the configurations without warm-up agree to 1e-12)."""
    params = default_params(jnp.float64)
    ours, theirs = make(_GradtxNames), make(_OptaxNames)
    s1, s2 = ours.init(params), theirs.init(params)
    assert _paths(s1) == _paths(s2)

    def run(params, grads):
        def body(c, g):
            p, s1, s2 = c
            u1, s1 = ours.update(g, s1, p)
            u2, s2 = theirs.update(g, s2, p)
            return (gradtx.apply_updates(p, u1), s1, s2), (u1, u2)

        return jax.lax.scan(body, (params, s1, s2), grads)

    rng = np.random.default_rng(3)
    grads = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=(200, *x.shape)), jnp.float64), params)
    (p, s1, s2), (u1, u2) = jax.jit(run)(params, grads)
    rtol = 2e-5 if "warmup" in name else 1e-12
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=rtol * 1e-3)
    # The evaluation point x = (y - (1 - b1) z) / b1 of both states: schedule_free_eval_params agrees with Optax's.
    x1, x2 = schedule_free_eval_params(s1, p), optax.contrib.schedule_free_eval_params(s2, p)
    for a, b in zip(jax.tree.leaves(x1), jax.tree.leaves(x2)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=rtol * 1e-3)
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
        assert jnp.result_type(a) == jnp.result_type(b)
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=rtol * 1e-3)


def test_schedule_free_trajectory_and_eval_params_closed_form():
    """On f(w) = 0.5 w^T diag(lam) w with constant lr: the three sequences of the paper computed in NumPy (x, z
    and y = (1 - b1) z + b1 x, gradients at y); c_t = 1/t, so x_T is the plain average of z_2 .. z_{T+1} (Polyak
    averaging of the SGD iterates). gradtx's params are y and its eval params are x."""
    lam = np.array([1.0, 10.0, 0.1])
    w0 = np.array([3.0, -2.0, 1.0])
    lr, b1, T = 0.05, 0.9, 40
    z, x, zs = w0.copy(), w0.copy(), []
    for t in range(1, T + 1):
        y = (1 - b1) * z + b1 * x
        z = z - lr * lam * y
        zs.append(z)
        x = (1 - 1 / t) * x + z / t
    np.testing.assert_allclose(x, np.mean(zs, axis=0), rtol=1e-12)
    y = (1 - b1) * z + b1 * x
    opt = schedule_free_sgd(lr, b1=b1)
    w = jnp.asarray(w0, jnp.float64)
    state = opt.init(w)
    for _ in range(T):
        u, state = opt.update(jnp.asarray(lam) * w, state, w)
        w = gradtx.apply_updates(w, u)
    np.testing.assert_allclose(np.asarray(w), y, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(schedule_free_eval_params(state, w)), x, rtol=1e-12)
    # Found inside a chain as well.
    np.testing.assert_allclose(np.asarray(schedule_free_eval_params((gradtx.EmptyState(), state), w)), x, rtol=1e-12)
    with pytest.raises(ValueError, match="ScheduleFreeState"):
        schedule_free_eval_params(gradtx.EmptyState(), w)


def test_schedule_free_keeps_b1_in_float32_for_bfloat16_params():
    params = {"w": jnp.ones(3, jnp.bfloat16)}
    state = schedule_free_sgd(0.1, b1=0.999).init(params)
    assert isinstance(state, ScheduleFreeState)
    assert state.b1.dtype == jnp.float32 and float(state.b1) == np.float32(0.999)
    assert state.z["w"].dtype == jnp.bfloat16
    assert schedule_free_sgd(0.1, state_dtype=jnp.float32).init(params).z["w"].dtype == jnp.float32


def test_schedule_free_converges_on_the_narrow_valley():
    valley = problems.narrow_valley()
    w0 = jnp.asarray([3.0, 1.0], jnp.float64)
    f0 = float(valley.loss(w0))
    for opt in (schedule_free_adamw(0.05, warmup_steps=10), schedule_free_sgd(0.004, warmup_steps=10)):
        w = _run(opt, valley.loss, w0, 1500, eval_fn=schedule_free_eval_params)
        assert float(valley.loss(jnp.asarray(w))) < 1e-3 * f0, type(opt).__name__


# --------------------------------------------------------------------------------------------------
# sam
# --------------------------------------------------------------------------------------------------


def test_sam_one_period_is_foret_algorithm_1():
    """Two calls = one SAM step on f = 0.5 w^T A w: w_new = w - lr A (w + rho A w / ||A w||)."""
    A = np.array([[2.0, 0.5], [0.5, 1.0]])
    w = np.array([1.0, -2.0])
    lr, rho = 0.1, 0.05
    g = A @ w
    want = w - lr * A @ (w + rho * g / np.linalg.norm(g))
    opt = sam(gradtx.sgd(lr), gradtx.chain(normalize(), gradtx.sgd(rho)))
    p = jnp.asarray(w)
    state = opt.init(p)
    for _ in range(2):
        u, state = opt.update(jnp.asarray(A) @ p, state, p)
        p = gradtx.apply_updates(p, u)
    np.testing.assert_allclose(np.asarray(p), want, rtol=1e-12)
    # Opaque mode: the same step in one call.
    opaque = sam(gradtx.sgd(lr), gradtx.chain(normalize(), gradtx.sgd(rho)), opaque_mode=True)
    u, _ = opaque.update(jnp.asarray(g), opaque.init(jnp.asarray(w)), jnp.asarray(w),
                         grad_fn=lambda q, i: jnp.asarray(A) @ q)
    np.testing.assert_allclose(np.asarray(w + u), want, rtol=1e-12)
    with pytest.raises(ValueError, match="grad_fn"):
        opaque.update(jnp.asarray(g), opaque.init(jnp.asarray(w)), jnp.asarray(w))


def test_sam_sync_period_one_is_the_outer_optimizer():
    """sync_period=1: every call is an outer step from the current params (Optax reuses the previous call's
    params there, so its iterates jump back; gradtx's equal plain Adam)."""
    rng = np.random.default_rng(1)
    p = jnp.asarray(rng.normal(size=4))
    ours, plain = sam(gradtx.adam(0.1), gradtx.sgd(0.1), sync_period=1), gradtx.adam(0.1)
    s1, s2, q = ours.init(p), plain.init(p), p
    for _ in range(5):
        g = jnp.asarray(rng.normal(size=4))
        u1, s1 = ours.update(g, s1, p)
        u2, s2 = plain.update(g, s2, q)
        p, q = gradtx.apply_updates(p, u1), gradtx.apply_updates(q, u2)
        np.testing.assert_allclose(np.asarray(p), np.asarray(q), rtol=1e-12)


def test_sam_converges_on_a_quadratic_and_validates():
    quad = problems.Quadratic(np.diag([1.0, 4.0]))
    w = _run(sam(gradtx.sgd(0.1), gradtx.chain(normalize(), gradtx.sgd(0.01))), quad.loss,
             jnp.asarray([3.0, -2.0], jnp.float64), 400)
    # Near the minimum the ascent step has length rho whatever the gradient: the iterates settle within O(rho).
    assert np.linalg.norm(w) < 0.05
    with pytest.raises(ValueError, match=r"sam\(sync_period=0\): sync_period must be a whole number >= 1"):
        sam(gradtx.sgd(0.1), gradtx.sgd(0.1), sync_period=0)


# --------------------------------------------------------------------------------------------------
# differentially_private_aggregate, dpsgd
# --------------------------------------------------------------------------------------------------


def _per_example(batch, seed=0, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    scales = rng.choice([0.1, 1.0, 10.0], size=(batch, 1))
    return {"w": jnp.asarray(rng.normal(size=(batch, 3, 2)) * scales[:, :, None], dtype),
            "b": jnp.asarray(rng.normal(size=(batch, 2)) * scales, dtype)}


def test_dp_aggregate_without_noise_is_the_mean_of_clipped_examples():
    grads = _per_example(6, dtype=jnp.float64)
    tx = differentially_private_aggregate(1.5, 0.0, key=0)
    u, state = jax.jit(tx.update)(grads, tx.init(None))
    flat = np.concatenate([np.asarray(grads["b"]).reshape(6, -1), np.asarray(grads["w"]).reshape(6, -1)], axis=1)
    norms = np.linalg.norm(flat, axis=1)
    clipped = flat * np.minimum(1.0, 1.5 / norms)[:, None]
    want = clipped.mean(axis=0)
    np.testing.assert_allclose(np.asarray(u["b"]), want[:2], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(u["w"]).ravel(), want[2:], rtol=1e-12)
    assert isinstance(state, DifferentiallyPrivateAggregateState)


def test_dp_aggregate_matches_optax_noise_and_noise_statistics():
    """With the same typed key, the noisy aggregate is Optax's over 5 steps (same key splitting); the noise has
    standard deviation l2_norm_clip * noise_multiplier / batch (closed form; 4000 samples, 5 sigma bounds)."""
    grads = _per_example(4)
    key = jax.random.key(42)
    ours, theirs = differentially_private_aggregate(1.0, 1.3, key), optax.contrib.differentially_private_aggregate(
        1.0, 1.3, key)
    s1, s2 = ours.init(grads), theirs.init(grads)
    for _ in range(5):
        u1, s1 = jax.jit(ours.update)(grads, s1)
        u2, s2 = theirs.update(grads, s2)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    big = {"x": jnp.zeros((8, 4000), jnp.float32)}
    tx = differentially_private_aggregate(2.0, 1.5, key=7)
    u, _ = tx.update(big, tx.init(big))
    sigma = 2.0 * 1.5 / 8
    x = np.asarray(u["x"], np.float64)
    n = x.size
    assert abs(x.mean()) < 5 * sigma / np.sqrt(n)
    assert abs(x.std() / sigma - 1) < 5 / np.sqrt(2 * n)


def test_dpsgd_contract_dtypes_and_recipe():
    """Per-example gradients of every dtype give updates of the parameter shape and dtype; jit equals eager and a
    lax.scan the Python loop; eval_shape describes the state; dpsgd equals its chain written by hand."""
    params = {"w": jnp.zeros((3, 2), jnp.float32), "b": jnp.zeros(2, jnp.float32)}
    opt = dpsgd(0.1, 1.0, 0.5, seed=3, momentum=0.9, nesterov=True)
    by_hand = gradtx.chain(differentially_private_aggregate(1.0, 0.5, 3), gradtx.trace(0.9, True),
                           gradtx.scale_by_learning_rate(0.1))
    shapes = jax.eval_shape(opt.init, params)
    state = opt.init(params)
    assert jax.tree.structure(shapes) == jax.tree.structure(state)
    steps = [_per_example(5, seed=k) for k in range(3)]
    s1, s2, outs = state, by_hand.init(params), []
    for g in steps:
        u1, s1 = jax.jit(opt.update)(g, s1)
        u2, s2 = by_hand.update(g, s2)
        assert jax.tree.map(lambda x: (x.shape, x.dtype), u1) == jax.tree.map(lambda x: (x.shape, x.dtype), params)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
        outs.append(u1)
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *steps)
    _, scanned = jax.lax.scan(lambda s, g: opt.update(g, s)[::-1], state, stacked)
    for k, u in enumerate(outs):
        for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(jax.tree.map(lambda x, k=k: x[k], scanned))):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    for dtype in (jnp.bfloat16, jnp.float64):
        g = _per_example(2, dtype=dtype)
        u, _ = jax.jit(opt.update)(g, opt.init(params))
        assert all(x.dtype == dtype for x in jax.tree.leaves(u))
    with pytest.warns(UserWarning, match="key"):  # as in Optax: no key means key 0, with a warning
        differentially_private_aggregate(1.0, 1.0)
    with pytest.raises(ValueError, match=r"l2_norm_clip=0.0\): l2_norm_clip must be > 0"):
        differentially_private_aggregate(0.0, 1.0, key=0)


def test_dpsgd_matches_optax_for_200_steps_and_converges():
    """DP-SGD (Abadi et al. 2016) on least squares with 64 examples: every step clips each example's gradient to
    norm 1, averages and adds Gaussian noise of std 1 * 0.3 / 64. With the same seed the 200 updates equal
    optax.contrib.dpsgd's (same noise), and the run ends near the least-squares solution (closed form): the
    excess loss falls below 1e-3 of its start although the first steps are all clipped."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    w_true = np.asarray([2.0, -3.0, 1.0])
    y = X @ w_true + 0.1 * rng.normal(size=64)
    Xj, yj = jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)
    per_example = jax.jit(jax.vmap(jax.grad(lambda w, x, t: 0.5 * (x @ w - t) ** 2), in_axes=(None, 0, 0)))
    w_ls = np.linalg.lstsq(X, y, rcond=None)[0]
    excess = lambda w: 0.5 * np.mean((X @ np.asarray(w, np.float64) - y) ** 2) - 0.5 * np.mean((X @ w_ls - y) ** 2)  # noqa: E731
    ours = dpsgd(0.05, 1.0, 0.3, seed=4, momentum=0.9)
    with pytest.warns(DeprecationWarning, match="seed"):  # Optax 0.2.8's own dpsgd passes its deprecated seed=
        theirs = optax.contrib.dpsgd(0.05, 1.0, 0.3, seed=4, momentum=0.9)
    w = jnp.zeros(3, jnp.float32)
    s1, s2 = ours.init(w), theirs.init(w)
    step1, step2 = jax.jit(ours.update), jax.jit(theirs.update)
    start = excess(w)
    for k in range(200):
        g = per_example(w, Xj, yj)
        u1, s1 = step1(g, s1)
        u2, s2 = step2(g, s2)
        np.testing.assert_allclose(np.asarray(u1), np.asarray(u2), rtol=1e-5, atol=1e-7, err_msg=f"step {k + 1}")
        w = gradtx.apply_updates(w, u1)
    assert excess(w) < 1e-3 * start


# --------------------------------------------------------------------------------------------------
# sophia
# --------------------------------------------------------------------------------------------------


def test_hutchinson_is_unbiased_for_a_dense_hessian():
    """E[r * (H r)] = diag(H): the mean over 4000 Rademacher draws of a dense quadratic's estimate is within
    5 standard errors of diag(A) (the variance of r_i (H r)_i is sum_{j != i} A_ij^2, closed form)."""
    rng = np.random.default_rng(0)
    M = rng.normal(size=(4, 4))
    A = M @ M.T
    est = hutchinson_estimator_diag_hessian(jax.random.PRNGKey(5))
    obj = lambda w: 0.5 * w @ jnp.asarray(A) @ w  # noqa: E731
    w = jnp.zeros(4, jnp.float64)

    def one(key):
        return est.update(None, est.init(w)._replace(key=key), w, obj_fn=obj)[0]

    samples = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(1), 4000)))
    se = np.sqrt((np.sum(A**2, axis=1) - np.diag(A) ** 2) / 4000)
    np.testing.assert_array_less(np.abs(samples.mean(axis=0) - np.diag(A)), 5 * se)
    with pytest.raises(ValueError, match="obj_fn"):
        est.update(None, est.init(w), w)


def test_hutchinson_draws_the_same_signs_as_optax():
    """Same seed, same non-separable objective: the estimates and keys of 5 successive calls equal Optax's
    (the same Rademacher draws from the same key splitting), on a two-leaf tree."""
    obj = lambda p: jnp.sum(jnp.sin(p["a"]).sum() * p["b"] ** 2) + jnp.sum(p["a"] ** 3)  # noqa: E731
    p = {"a": jnp.asarray([0.3, -1.2, 2.0], jnp.float32), "b": jnp.asarray([[0.5, 1.5]], jnp.float32)}
    ours, theirs = hutchinson_estimator_diag_hessian(jax.random.PRNGKey(3)), \
        optax.contrib.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(3))
    s1, s2 = ours.init(p), theirs.init(p)
    for _ in range(5):
        h1, s1 = ours.update(None, s1, p, obj_fn=obj)
        h2, s2 = theirs.update(None, s2, p, obj_fn=obj)
        for a, b in zip(jax.tree.leaves(h1), jax.tree.leaves(h2)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
        np.testing.assert_array_equal(jax.random.key_data(s1.key), jax.random.key_data(s2.key))


def test_sophia_first_steps_closed_form():
    """Step 1 divides by eps (no Hessian estimate yet), so the update is clip_threshold * sign(g); from step 2
    it is clip(m_hat / max(gamma h, eps)) with h = (1 - b2) diag(H) after one refresh."""
    w = jnp.asarray([0.5, -2.0, 3.0], jnp.float64)
    g = jnp.asarray([1e-3, -0.2, 4.0], jnp.float64)
    obj = lambda p: jnp.sum(p**4) / 12  # noqa: E731  (Hessian diag(p^2))
    tx = scale_by_sophia(b1=0.9, b2=0.8, gamma=2.0, clip_threshold=0.7, update_interval=5)
    s = tx.init(w)
    u, s = tx.update(g, s, w, obj_fn=obj)
    np.testing.assert_allclose(np.asarray(u), 0.7 * np.sign(np.asarray(g)))
    h = 0.2 * np.asarray(w) ** 2
    np.testing.assert_allclose(np.asarray(s.nu), h, rtol=1e-12)
    u, s = tx.update(g, s, w + 1.0, obj_fn=obj)  # no refresh on step 2 (update_interval=5)
    m_hat = np.asarray(g)  # constant gradient: the bias-corrected EMA is g
    np.testing.assert_allclose(np.asarray(u), np.clip(m_hat / np.maximum(2.0 * h, 1e-8), -0.7, 0.7), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(s.nu), h, rtol=1e-12)


def test_sophia_converges_on_the_narrow_valley():
    valley = problems.narrow_valley()
    w0 = jnp.asarray([3.0, 1.0], jnp.float64)
    opt = sophia(0.05, weight_decay=0.0, gamma=0.05, update_interval=2)
    w = _run(opt, valley.loss, w0, 600, extra_fn=lambda w: {"obj_fn": valley.loss})
    assert float(valley.loss(jnp.asarray(w))) < 1e-3 * float(valley.loss(w0))


def test_sophia_contract_with_a_dense_objective_and_validation():
    """The contract (jit/eager, dtypes, scan, no retrace) with a non-separable loss, where the random signs matter."""
    obj = lambda p: sum(jnp.sum(jnp.sin(gradtx.tree.up(x)).sum() ** 2) for x in jax.tree.leaves(p))  # noqa: E731
    with jax.numpy_dtype_promotion("strict"):
        check_transformation(sophia(0.01, update_interval=2), extra_args={"obj_fn": obj}, check_empty=False,
                             dtypes=(jnp.float32,), steps=2)
    with pytest.raises(ValueError, match=r"scale_by_sophia\(update_interval=2.5\)"):
        scale_by_sophia(update_interval=2.5)
    with pytest.raises(ValueError, match="params are required"):
        sophia(0.1).update({"w": jnp.ones(2)}, sophia(0.1).init({"w": jnp.ones(2)}))


def test_schedule_free_step_that_moves_nothing_is_exactly_zero_under_jit():
    """Warm-up from 0: the first base step is 0 and y = z, so y does not move; the update is exactly 0 (a formula
    with a division by b1 left 1.9e-8 under jit, where Optax gives 0)."""
    opt = gradtx.contrib.schedule_free_sgd(learning_rate=0.01, warmup_steps=5000)
    params = [-jnp.ones((2, 3)), jnp.ones((2, 5, 2))]
    grads = [jnp.ones((2, 3)), -jnp.ones((2, 5, 2))]
    updates, _ = jax.jit(opt.update)(grads, jax.jit(opt.init)(params), params)
    assert all(float(jnp.max(jnp.abs(u))) == 0.0 for u in updates)
