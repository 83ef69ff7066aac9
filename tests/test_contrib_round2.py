"""LaProp, StableAdamW and Adam-atan2 (gradtx.contrib): closed forms, special cases and convergence on the zoo.

The registry tiers (tests/registry_contrib_round2.py) compare each with its float64 reference
(gradtx.testing.reference.contrib_round2) for 200 steps and run the contract, flat, fuzz and hyperparameter tiers;
here: what a formula says exactly. Training the digits MLP: tests/test_contrib_digits.py.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.contrib import _adam_like as c
from gradtx.testing import problems
from gradtx.testing.reference import contrib_round2 as ref


def _steps(tx, grads, params=None):
    """Updates of ``tx`` for a list of gradients (params fixed), as float64 arrays, and the last state."""
    p = jax.tree.map(lambda g: g * 0, grads[0]) if params is None else params
    state, out = tx.init(p), []
    for g in grads:
        u, state = tx.update(g, state, p)
        out.append(jax.tree.map(lambda x: np.asarray(x, np.float64), u))
    return out, state


G = jnp.asarray([0.5, -2.0, 3.0, -0.01], jnp.float64)


def _random(n, size, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(scale * rng.normal(size=size)) for _ in range(n)]


# --- Adam-atan2 ---------------------------------------------------------------------------------------------


def test_adam_atan2_constant_gradient_is_a_pi_over_4_per_coordinate():
    """m_hat = g, sqrt(v_hat) = |g| at every step of a constant gradient: u = a atan2(g, b |g|); b = 1 gives
    +-a pi / 4 whatever |g|, and a zero coordinate (v = 0, no eps) gives atan2(0, 0) = 0, not NaN."""
    g = jnp.asarray([0.5, -2.0, 3e-20, 0.0, -7e10], jnp.float64)
    for a in (1.0, 1.27):
        outs, _ = _steps(c.scale_by_adam_atan2(0.8, 0.99, a=a), [g] * 5)
        for u in outs:
            np.testing.assert_allclose(u, a * np.sign(np.asarray(g)) * math.pi / 4, rtol=1e-12, atol=0)
    outs, _ = _steps(c.scale_by_adam_atan2(a=2.0, b=3.0), [g] * 2)
    np.testing.assert_allclose(outs[-1], 2.0 * np.arctan2(np.asarray(g), 3.0 * np.abs(np.asarray(g))), rtol=1e-12)


def test_adam_atan2_is_scale_invariant_and_bounded():
    """Multiplying every gradient by s > 0 leaves the updates unchanged (no eps), and |u| <= a pi / 2."""
    grads = _random(30, 6, seed=1)
    base, _ = _steps(c.scale_by_adam_atan2(), grads)
    for s in (1e-30, 1e-3, 1e25):
        scaled, _ = _steps(c.scale_by_adam_atan2(), [s * g for g in grads])
        np.testing.assert_allclose(np.stack(scaled), np.stack(base), rtol=1e-10, atol=1e-14)
    assert np.max(np.abs(np.stack(base))) <= 1.27 * math.pi / 2


def test_adam_atan2_small_ratio_is_adam_without_eps():
    """atan2(y, x) = y / x (1 + O((y/x)^2)): with a = b = 1e6 the update is Adam's m_hat / sqrt(v_hat) (eps = 0)."""
    grads = _random(10, 5, seed=2)
    atan, _ = _steps(c.scale_by_adam_atan2(0.9, 0.999, a=1e6, b=1e6), grads)
    adam, _ = _steps(gradtx.scale_by_adam(0.9, 0.999, eps=0.0), grads)
    np.testing.assert_allclose(np.stack(atan), np.stack(adam), rtol=1e-10)


# --- LaProp -------------------------------------------------------------------------------------------------


def test_laprop_constant_gradient_is_sign():
    """Constant g: v_hat = g^2, so each normalised gradient is g / (|g| + eps) and its debiased average is that:
    u = sign(g) for eps = 0 at every step."""
    outs, state = _steps(c.scale_by_laprop(0.8, 0.99, eps=0.0), [G] * 6)
    for u in outs:
        np.testing.assert_allclose(u, np.sign(np.asarray(G)), rtol=1e-12)
    assert isinstance(state, gradtx.ScaleByAdamState)


def test_laprop_with_b1_zero_is_rmsprop_with_bias_correction():
    """b1 = 0: u = g / (sqrt(v_k / (1 - b2^k)) + eps), RMSProp with the corrected second moment, eps outside."""
    grads = _random(20, 5, seed=3)
    lap, _ = _steps(c.scale_by_laprop(0.0, 0.95, 1e-6), grads)
    rms, _ = _steps(gradtx.scale_by_rms(0.95, 1e-6, eps_in_sqrt=False, bias_correction=True), grads)
    np.testing.assert_allclose(np.stack(lap), np.stack(rms), rtol=1e-12)


def test_laprop_averages_after_normalising_unlike_adam():
    """Two steps by hand (b1 = 0.5, b2 = 0.5, eps = 0): LaProp averages g_k / sqrt(v_hat_k); Adam divides the
    averaged g by sqrt(v_hat_2): the two differ on a gradient that changes scale."""
    g1, g2 = jnp.asarray([1.0]), jnp.asarray([3.0])
    outs, _ = _steps(c.scale_by_laprop(0.5, 0.5, 0.0), [g1, g2])
    v2_hat = (0.25 * 1.0 + 0.5 * 9.0) / 0.75
    want = (0.25 * 1.0 + 0.5 * 3.0 / math.sqrt(v2_hat)) / 0.75
    np.testing.assert_allclose(outs[1], [want], rtol=1e-12)
    adam, _ = _steps(gradtx.scale_by_adam(0.5, 0.5, eps=0.0), [g1, g2])
    assert abs(float(adam[1][0]) - want) > 1e-2


def test_laprop_equals_the_authors_loop_for_a_constant_learning_rate():
    """The authors' laprop.py keeps lr inside the momentum (m += (1 - b1) lr g / denom) and corrects by the
    average of the past rates over lr; with a constant lr that is gradtx's chain (lr outside), decay aside."""
    lr, b1, b2, eps = 0.03, 0.9, 0.99, 1e-15
    grads = _random(25, 4, seed=4)
    ours, _ = _steps(c.laprop(lr, b1, b2, eps), grads)
    m, v, lr_avg, lr2_avg = np.zeros(4), np.zeros(4), 0.0, 0.0
    for g, u in zip(grads, ours):
        g = np.asarray(g)
        v = b2 * v + (1 - b2) * g * g
        lr_avg, lr2_avg = lr_avg * b1 + (1 - b1) * lr, lr2_avg * b2 + (1 - b2)
        m = b1 * m + (1 - b1) * lr * g / (np.sqrt(v / lr2_avg) + eps)
        np.testing.assert_allclose(u, -m / (lr_avg / lr), rtol=1e-10)


# --- StableAdamW --------------------------------------------------------------------------------------------


def test_stable_adamw_without_clipping_is_adamw():
    """With a threshold no RMS reaches (and on a constant gradient, whose RMS is exactly 1), StableAdamW is AdamW
    (Optax's and gradtx's eps outside the root)."""
    grads = _random(30, 5, seed=5)
    p = jnp.asarray(np.random.default_rng(6).normal(size=5))
    stable, _ = _steps(c.stable_adamw(1e-2, 0.9, 0.99, 1e-6, weight_decay=0.1, clip_threshold=1e6), grads, p)
    adamw, _ = _steps(gradtx.adamw(1e-2, 0.9, 0.99, 1e-6, weight_decay=0.1), grads, p)
    np.testing.assert_allclose(np.stack(stable), np.stack(adamw), rtol=1e-12)
    const, _ = _steps(c.stable_adamw(1e-2, weight_decay=0.0), [G] * 6, G * 0)
    adam, _ = _steps(gradtx.adamw(1e-2, 0.9, 0.99, 1e-6, weight_decay=0.0), [G] * 6, G * 0)
    np.testing.assert_allclose(np.stack(const), np.stack(adam), rtol=1e-12)


def test_stable_adamw_clips_a_spike_by_the_rms():
    """Ten steps of g, then 100 g: v_hat lags, g^2 / v_hat >> 1 on every coordinate and Adam's step is divided by
    RMS = sqrt(mean(g^2 / v_hat)), computed here by hand from the moments."""
    b1, b2, eps = 0.9, 0.99, 1e-6
    g = jnp.asarray([0.1, -0.2, 0.3], jnp.float64)
    grads = [g] * 10 + [100.0 * g]
    outs, state = _steps(c.scale_by_stable_adamw(b1, b2, eps), grads)
    adam, _ = _steps(gradtx.scale_by_adam(b1, b2, eps), grads)
    k = len(grads)
    v_hat = np.asarray(state.nu) / (1 - b2**k)
    rms = math.sqrt(float(np.mean(np.asarray(grads[-1]) ** 2 / np.maximum(v_hat, eps**2))))
    assert rms > 3
    np.testing.assert_allclose(outs[-1], adam[-1] / rms, rtol=1e-12)
    np.testing.assert_allclose(np.stack(outs[:-1]), np.stack(adam[:-1]), rtol=1e-12)  # RMS = 1 before
    loose, _ = _steps(c.scale_by_stable_adamw(b1, b2, eps, clip_threshold=2.0), grads)
    np.testing.assert_allclose(loose[-1], adam[-1] / (rms / 2.0), rtol=1e-12)


def test_stable_adamw_clips_each_leaf_by_its_own_rms():
    """The factor is per tensor: a spike in one leaf scales that leaf only; the reference agrees."""
    calm = {"a": jnp.asarray([0.1, -0.2]), "b": jnp.asarray([[0.3, 0.1], [0.2, -0.4]])}
    spike = {"a": calm["a"] * 50.0, "b": calm["b"]}
    grads = [calm] * 5 + [spike]
    outs, _ = _steps(c.scale_by_stable_adamw(), grads)
    adam, _ = _steps(gradtx.scale_by_adam(0.9, 0.99, 1e-6), grads)
    np.testing.assert_allclose(outs[-1]["b"], adam[-1]["b"], rtol=1e-12)
    assert np.all(np.abs(outs[-1]["a"]) < 0.5 * np.abs(adam[-1]["a"]))
    r = ref.scale_by_stable_adamw()
    for g, u in zip(grads, outs):
        want = r.step({k: np.asarray(v) for k, v in g.items()})
        for key in u:
            np.testing.assert_allclose(u[key], want[key], rtol=1e-12)


def test_stable_adamw_is_leaf_structured():
    assert c.scale_by_stable_adamw.leaf_structured
    assert c.scale_by_laprop.leaf_structured is None and c.scale_by_adam_atan2.leaf_structured is None


# --- all three ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,opt",
    [
        ("laprop", lambda: c.laprop(0.02)),
        ("laprop(b1 > b2)", lambda: c.laprop(0.02, 0.95, 0.9)),
        ("stable_adamw", lambda: c.stable_adamw(0.02, weight_decay=0.0)),
        ("adam_atan2", lambda: c.adam_atan2(0.02)),
    ],
)
def test_converges_on_the_narrow_valley(name, opt):
    """1,500 steps from (3, 1) reduce the narrow valley's loss (condition number 1e5) a thousandfold."""
    valley = problems.narrow_valley()
    tx = opt()
    w0 = jnp.asarray([3.0, 1.0], jnp.float64)

    def body(carry, _):
        w, s = carry
        u, s = tx.update(jax.grad(valley.loss)(w), s, w)
        return (gradtx.apply_updates(w, u), s), None

    (w, _), _ = jax.jit(lambda w: jax.lax.scan(body, (w, tx.init(w)), None, length=1500))(w0)
    assert float(valley.loss(w)) < 1e-3 * float(valley.loss(w0)), name


@pytest.mark.parametrize(
    "name,opt,steps",
    [
        ("laprop", lambda: c.laprop(0.01), 3000),
        ("stable_adamw", lambda: c.stable_adamw(0.01, weight_decay=0.0), 3000),
        ("adam_atan2", lambda: c.adam_atan2(0.01), 3000),
    ],
)
def test_converges_on_rosenbrock(name, opt, steps):
    """From (-1.2, 1) the Rosenbrock loss (24.2) falls below 1e-2 (the banana's curved valley)."""
    rosen = problems.rosenbrock()
    tx = opt()
    w0 = jnp.asarray([-1.2, 1.0], jnp.float64)

    def body(carry, _):
        w, s = carry
        u, s = tx.update(jax.grad(rosen.loss)(w), s, w)
        return (gradtx.apply_updates(w, u), s), None

    (w, _), _ = jax.jit(lambda w: jax.lax.scan(body, (w, tx.init(w)), None, length=steps))(w0)
    assert float(rosen.loss(w)) < 1e-2, (name, float(rosen.loss(w)))


@pytest.mark.parametrize(
    "make,error,message",
    [
        (lambda: c.scale_by_laprop(b1=1.0), ValueError, r"scale_by_laprop\(b1=1.0\): b1 must be in \[0, 1\)"),
        (lambda: c.laprop(0.1, eps=-1.0), ValueError, r"laprop\(eps=-1.0\): eps must be >= 0"),
        (lambda: c.scale_by_stable_adamw(clip_threshold=0.0), ValueError,
         r"scale_by_stable_adamw\(clip_threshold=0.0\): clip_threshold must be > 0"),
        (lambda: c.stable_adamw(0.1, b2=1.5), ValueError, r"stable_adamw\(b2=1.5\): b2 must be in \[0, 1\)"),
        (lambda: c.scale_by_adam_atan2(a=0.0), ValueError, r"scale_by_adam_atan2\(a=0.0\): a must be > 0"),
        (lambda: c.adam_atan2(0.1, b=-2.0), ValueError, r"adam_atan2\(b=-2.0\): b must be > 0"),
        (lambda: c.adam_atan2("a"), TypeError, r"adam_atan2\(learning_rate='a'\): learning_rate must be"),
        (lambda: c.scale_by_laprop(mu_dtype="int32"), ValueError, r"scale_by_laprop\(mu_dtype='int32'\)"),
    ],
)
def test_validation_messages(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("block", [c.scale_by_laprop, c.scale_by_stable_adamw, c.scale_by_adam_atan2])
def test_state_dtypes_and_bfloat16(block):
    """mu_dtype / nu_dtype set the stored moments' dtypes; bfloat16 gradients give bfloat16 updates computed in
    float32 (the first update equals the float32 one rounded)."""
    tx = block(mu_dtype=jnp.float32, nu_dtype=jnp.float32)
    g = jnp.asarray([0.5, -1.5, 2.0], jnp.bfloat16)
    u, state = tx.update(g, tx.init(g))
    assert state.mu.dtype == jnp.float32 and state.nu.dtype == jnp.float32 and u.dtype == jnp.bfloat16
    u32, _ = block().update(g.astype(jnp.float32), block().init(g.astype(jnp.float32)))
    np.testing.assert_array_equal(np.asarray(u, np.float32), np.asarray(u32.astype(jnp.bfloat16), np.float32))
