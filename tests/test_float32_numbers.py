"""Float32 numbers: the exact complement of every decay rate, the one bias correction, and float32 runs that track
float64 at least as closely as Optax's and agree with Optax's where Optax's arithmetic is exact.

``gradtx.tree.complement`` forms ``1 - b`` before rounding (``0.001``, not ``1 - float32(0.999)``);
``gradtx.tree.debias`` is ``1 - b^k = -expm1(k log1p(-(1 - b)))`` from that complement; ``gradtx.tree.ema`` applies
the decay ``1 - c`` (``float32(b) + r``) so that the weights sum to the bias correction. The float32 runs of both
libraries use JAX's default configuration (``jax_enable_x64`` off), as users run float32; see
``benchmarks/float32_accuracy.py`` for the full table.
"""

from __future__ import annotations

import decimal
import fractions
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx import tree

F32_ULP = float(np.finfo(np.float32).eps)


# --- (a) the complement ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("x64", [False, True])
def test_one_adam_step_second_moment_is_exactly_one_thousandth_of_g_squared(x64: bool):
    g = np.array([3.0, -0.5, 1e-3, 7.25, 1e4], np.float32)
    with jax.enable_x64(x64):
        _, state = gradtx.scale_by_adam(b1=0.9, b2=0.999).update(jnp.asarray(g), gradtx.scale_by_adam().init(g))
        o_state: Any = optax.scale_by_adam(b1=0.9, b2=0.999).update(jnp.asarray(g), optax.scale_by_adam().init(g))[1]
    nu, mu = np.asarray(state.nu), np.asarray(state.mu)
    assert nu.dtype == np.float32
    want_nu = 0.001 * g.astype(np.float64) ** 2  # 1 - 0.999 with no rounding of 0.999 first
    np.testing.assert_array_max_ulp(nu, want_nu.astype(np.float32), maxulp=1)
    np.testing.assert_array_max_ulp(mu, (0.1 * g.astype(np.float64)).astype(np.float32), maxulp=1)
    # The old, rounded complement would be 1.3e-5 off: far outside one ulp.
    rounded = (1 - np.float32(0.999)) * g**2
    assert np.all(np.abs(rounded / want_nu - 1) > 1e-5)
    np.testing.assert_array_max_ulp(nu, np.asarray(o_state.nu), maxulp=1)
    np.testing.assert_array_max_ulp(mu, np.asarray(o_state.mu), maxulp=1)


def test_complement_of_numbers_and_arrays():
    assert float(tree.complement(0.999, jnp.float32)) == float(np.float32(1 - 0.999))
    assert float(tree.complement(0.9999, jnp.float32)) == float(np.float32(1 - 0.9999))
    assert tree.complement(0.9, jnp.float16).dtype == jnp.float32  # hyperparameters never round below float32
    assert float(tree.complement(0.999, jnp.float64)) == 1 - 0.999
    # An array decay (an injected or traced hyperparameter) is subtracted in its own precision, then cast.
    assert float(tree.complement(jnp.float32(0.999), jnp.float32)) == float(1 - np.float32(0.999))
    assert float(tree.complement(np.float64(0.999), jnp.float32)) == float(np.float32(1 - 0.999))
    traced = jax.jit(lambda b: tree.complement(b, jnp.float32))(jnp.float64(0.999))
    assert float(traced) == float(np.float32(1 - 0.999))


@pytest.mark.parametrize("decay", [0.0, 0.3, 0.5, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1 - 1e-7])
def test_decay_parts_split_the_decay_exactly(decay: float):
    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        c, d, r = tree.decay_parts(decay, dtype)
        exact = 1 - fractions.Fraction(float(c))
        total = fractions.Fraction(float(d)) + (fractions.Fraction(float(r)) if r is not None else 0)
        eps = float(np.finfo(dtype).eps)
        # d + r is 1 - c exactly when r is kept, and to within 4 ulps of c when it is dropped (Optax's numbers).
        assert abs(float(total - exact)) <= (0.0 if r is not None else 4 * eps * float(c))
        assert float(d) == float(dtype.type(1) - dtype.type(float(c)))
        # The traced path (an array decay, e.g. injected): the decay itself, whose complement is exact (Sterbenz).
        ct, dt_, rt = jax.jit(lambda b, dtype=dtype: tree.decay_parts(b, dtype))(jnp.asarray(decay, dtype))
        assert rt is None
        assert float(dt_) == float(dtype.type(decay))
        assert float(ct) == float(dtype.type(1) - dtype.type(decay))
        if decay >= 0.5:  # the complement of a decay in [1/2, 1] is exact
            assert fractions.Fraction(float(dt_)) + fractions.Fraction(float(ct)) == 1
    # Where Optax's float32 EMA is already exact to float32 rounding, r is dropped and the numbers are Optax's.
    assert tree.decay_parts(0.9, jnp.float32)[2] is None and tree.decay_parts(0.5, jnp.float32)[2] is None
    assert tree.decay_parts(0.999, jnp.float32)[2] is not None


def test_ema_edge_decays_and_a_constant_stream():
    old = jnp.asarray([1e8, -3.0, 0.25], jnp.float32)
    new = jnp.asarray([1.0, 5.0, -0.75], jnp.float32)
    np.testing.assert_array_equal(tree.ema(0.0, old, new), new)  # no cancellation: decay 0 returns new
    np.testing.assert_array_equal(tree.ema(0.5, old, new), (old + new) / 2)
    np.testing.assert_array_equal(tree.ema(1.0, old, new), old)
    # A constant stream from zero: m_k / debias(k) stays the constant (the weights sum to the bias correction),
    # in float32 and for b near 1, where float32(b) would leave it 1.3e-5 (0.999) or 1.7e-4 (0.9999) off.
    for b in (0.9, 0.999, 0.9999):
        m = jnp.zeros([], jnp.float32)
        g = jnp.float32(1.0)

        def body(k: Any, m: Any, b: float = b, g: Any = g) -> Any:
            return tree.ema(b, m, g)

        m = jax.lax.fori_loop(0, 3000, body, m)
        hat = float(m) / float(tree.debias(b, 3000, jnp.float32))
        assert abs(hat - 1) <= 2e-6, (b, hat)


# --- (b) the one bias correction -----------------------------------------------------------------------------------


@pytest.mark.parametrize("b", [0.9, 0.999, 0.9999])
def test_bias_correction_is_expm1_of_the_complement(b: float):
    ts = np.array([1, 2, 3, 10, 100, 1000, 10**4, 10**5, 10**6, 2**31 - 1], np.int64)
    for dtype, ulps in ((np.dtype(np.float32), 4), (np.dtype(np.float64), 8)):
        debias = jax.vmap(lambda t, dtype=dtype: tree.debias(b, t, dtype))
        got = np.asarray(debias(jnp.asarray(ts, jnp.int32)), np.float64)
        c = float(dtype.type(1 - b))  # the complement the block uses
        want = -np.expm1(ts.astype(np.float64) * np.log1p(-c))
        np.testing.assert_array_max_ulp(got.astype(dtype), want.astype(dtype), maxulp=ulps)
        # Small t: the textbook 1 - b^t, exactly (50 digits), to the rounding of the complement.
        small = ts <= 1000
        with decimal.localcontext() as ctx:
            ctx.prec = 50
            textbook = [float(1 - decimal.Decimal(b) ** int(t)) for t in ts[small]]
        np.testing.assert_allclose(got[small], textbook, rtol=4 * float(np.finfo(dtype).eps), atol=0)
    # gradtx.tree.bias_correction divides by exactly this factor.
    m = jnp.asarray([1.0, -2.0], jnp.float32)
    out = tree.bias_correction({"m": m}, b, jnp.int32(7))["m"]
    np.testing.assert_array_equal(out, m / tree.debias(b, 7, jnp.float32))


def test_bias_correction_edges_and_gradients():
    assert float(tree.debias(0.0, 1, jnp.float32)) == 1.0
    assert float(tree.debias(0.0, 0, jnp.float32)) == 0.0  # 1 - 0^0, as Optax; no NaN
    assert float(tree.debias(1.0, 5, jnp.float32)) == 0.0
    # d/db (1 - b^t) = -t b^(t-1), through a traced decay; finite at b = 0.
    for b, t in ((0.9, 3), (0.999, 50), (0.5, 1)):
        grad = jax.grad(lambda b, t=t: tree.debias(b, t, jnp.float64))(jnp.float64(b))
        np.testing.assert_allclose(float(grad), -t * b ** (t - 1), rtol=1e-12)
    assert np.isfinite(float(jax.grad(lambda b: tree.debias(b, 3, jnp.float64))(jnp.float64(0.0))))


def test_hyperparameters_stay_differentiable():
    # jax.grad of the loss after a few Adam steps w.r.t. the learning rate and b1 (traced decays), in float64,
    # against central differences.
    lam = jnp.asarray(np.logspace(0, 2, 6))

    @jax.jit
    def loss(lr: Any, b1: Any) -> Any:
        tx = gradtx.adam(lr, b1=b1, b2=0.999)
        x = jnp.ones(6, jnp.float64)
        state = tx.init(x)
        for _ in range(4):
            u, state = tx.update(lam * x, state, x)
            x = x + u
        return 0.5 * jnp.sum(lam * x * x)

    grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(0.05, 0.9)
    h = 1e-6
    np.testing.assert_allclose(grads[0], (loss(0.05 + h, 0.9) - loss(0.05 - h, 0.9)) / (2 * h), rtol=1e-6)
    np.testing.assert_allclose(grads[1], (loss(0.05, 0.9 + h) - loss(0.05, 0.9 - h)) / (2 * h), rtol=1e-6)


# --- (c) float32 tracks float64 at least as closely as Optax's float32 ------------------------------------------------

DIM = 50
LAM = np.logspace(0.0, 3.0, DIM)  # condition number 1e3
NOISE = 0.1 * np.random.default_rng(0).standard_normal((4, 300, DIM))  # four noise streams, fixed seed


def _trajectories(tx: Any, dtype: Any, steps: int) -> np.ndarray:
    """Iterates ``(streams, steps, DIM)`` of ``tx`` on the noisy quadratic, in ``dtype``."""
    lam = jnp.asarray(LAM, dtype)
    x0 = jnp.ones(DIM, dtype)

    def step(carry: Any, xi: Any) -> tuple[Any, Any]:
        x, state = carry
        u, state = tx.update(lam * x + xi, state, x)
        x = optax.apply_updates(x, u)
        return (x, state), x

    run = jax.jit(jax.vmap(lambda xi: jax.lax.scan(step, (x0, tx.init(x0)), xi)[1]))
    return np.asarray(run(jnp.asarray(NOISE[:, :steps], dtype)), np.float64)


def _dev(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``max_k ||a_k - b_k||_inf / ||b_k||_inf`` per stream."""
    return np.max(np.max(np.abs(a - b), axis=-1) / np.max(np.abs(b), axis=-1), axis=-1)


def _float32_error(make: Any, lib: Any, steps: int) -> float:
    with jax.enable_x64(False):
        f32 = _trajectories(make(lib), jnp.float32, steps)
    f64 = _trajectories(make(lib), jnp.float64, steps)
    return float(np.median(_dev(f32, f64)))


TRACKING = {
    "adam": lambda m: m.adam(1e-2),
    "rmsprop_centered": lambda m: m.rmsprop(1e-3, centered=True),
    "adan": lambda m: m.adan(1e-2),
    "novograd": lambda m: m.novograd(3e-3),
    "nadam": lambda m: m.nadam(1e-2),
    "yogi": lambda m: m.yogi(1e-2),
}


@pytest.mark.parametrize("name", sorted(TRACKING))
def test_float32_tracks_float64_at_least_as_closely_as_optax(name: str):
    mine = _float32_error(TRACKING[name], gradtx, 250)
    theirs = _float32_error(TRACKING[name], optax, 250)
    assert 0 < mine <= 1.1 * theirs, (name, mine, theirs)
    assert mine < 1e-4  # and it is a float32 rounding error, not a different method


# --- (d) agreement with Optax's float32 trajectory -----------------------------------------------------------------

EXACT = {  # Optax's arithmetic is exact to float32 rounding here: decays with float32(b) + (1 - b) = 1 to 4 ulps
    "sgd_momentum": lambda m: m.sgd(1e-3, momentum=0.9),
    "sgd_nesterov": lambda m: m.sgd(1e-3, momentum=0.9, nesterov=True),
    "rmsprop": lambda m: m.rmsprop(1e-3),
    "rmsprop_centered": lambda m: m.rmsprop(1e-3, centered=True),
    "rmsprop_momentum": lambda m: m.rmsprop(3e-4, momentum=0.9),
    "adadelta": lambda m: m.adadelta(1.0),
}


def _agreement(make: Any) -> float:
    with jax.enable_x64(False):
        mine = _trajectories(make(gradtx), jnp.float32, 100)
        theirs = _trajectories(make(optax), jnp.float32, 100)
    return float(np.max(_dev(mine, theirs)))


@pytest.mark.parametrize("name", sorted(EXACT))
def test_float32_trajectory_agrees_with_optax_where_optax_is_exact(name: str):
    assert _agreement(EXACT[name]) <= 1e-6


def test_adam_differs_from_optax_only_by_optax_rounded_b2():
    # Optax's Adam in float32 decays nu by float32(0.999) = 0.999 + 1.3e-8 but adds 0.001 g^2 and divides by
    # 1 - float32(0.999)^k: its nu_hat is 1.3e-5 too large for a constant gradient, its update 6.5e-6 too small.
    # gradtx's is exact; the trajectories differ by that much (and gradtx's is the one closer to float64, above).
    g = jnp.full([3], 0.5, jnp.float32)

    def final_update(lib: Any) -> float:
        tx = lib.scale_by_adam()
        state = tx.init(g)
        u = g
        for _ in range(20):
            u, state = tx.update(g, state)
        return float(u[0])

    with jax.enable_x64(False):
        mine, theirs = final_update(gradtx), final_update(optax)
    assert abs(mine - 1 / (1 + 1e-8 / 0.5)) <= 4 * F32_ULP  # m_hat / (sqrt(nu_hat) + eps), exact nu_hat = g^2
    assert 5e-6 < 1 - theirs / mine < 8e-6
    assert 5e-6 < _agreement(lambda m: m.adam(1e-2)) < 5e-5
