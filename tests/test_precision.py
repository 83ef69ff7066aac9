"""Precision policies: Adam-family state dtypes (mu_dtype / nu_dtype), stochastic rounding, Kahan summation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import gradtx
from gradtx.precision import (
    KahanSummationState,
    StochasticRoundingState,
    kahan_summation,
    stochastic_round,
    stochastic_rounding,
)
from gradtx.testing import reference as ref
from gradtx.testing.reference import precision as rp
from gradtx.transforms import adam_family as af

BF16 = jnp.bfloat16

# ==================================================================================================
# (1) State dtypes of every Adam-family block.
# ==================================================================================================

# block, its reference, {state field: "mu" | "nu"}, {reference attribute: "mu" | "nu"}, reference start values
BLOCKS = [
    ("scale_by_adam", gradtx.scale_by_adam, ref.scale_by_adam, {"mu": "mu", "nu": "nu"}, {"m": "mu", "v": "nu"}, {}),
    ("scale_by_adamax", af.scale_by_adamax, ref.scale_by_adamax, {"mu": "mu", "nu": "nu"}, {"m": "mu", "u": "nu"},
     {}),
    ("scale_by_amsgrad", af.scale_by_amsgrad, ref.scale_by_amsgrad, {"mu": "mu", "nu": "nu", "nu_max": "nu"},
     {"m": "mu", "v": "nu", "vmax": "nu"}, {}),
    ("scale_by_belief", af.scale_by_belief, ref.scale_by_belief, {"mu": "mu", "nu": "nu"}, {"m": "mu", "s": "nu"},
     {}),
    ("scale_by_yogi", af.scale_by_yogi, ref.scale_by_yogi, {"mu": "mu", "nu": "nu"}, {"m": "mu", "v": "nu"},
     {"m": 1e-6, "v": 1e-6}),
    ("scale_by_radam", af.scale_by_radam, ref.scale_by_radam, {"mu": "mu", "nu": "nu"}, {"m": "mu", "v": "nu"}, {}),
    ("scale_by_adan", af.scale_by_adan, ref.scale_by_adan, {"m": "mu", "v": "mu", "n": "nu", "g": None},
     {"m": "mu", "v": "mu", "n": "nu"}, {}),
]
IDS = [b[0] for b in BLOCKS]
N, STEPS = 16, 30


def _grads(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(STEPS, N)) * rng.choice([0.1, 1.0, 5.0], size=(STEPS, 1))


def _run(tx, grads, dtype):
    params = jnp.zeros(N, dtype)
    state = tx.init(params)
    step = jax.jit(tx.update)
    outs = []
    for g in grads:
        u, state = step(jnp.asarray(g, dtype), state, params)
        outs.append(np.asarray(u, np.float64))
    return np.stack(outs), state


@pytest.mark.parametrize("name,make,_r,fields,_a,_s", BLOCKS, ids=IDS)
def test_state_dtypes_are_as_asked_and_memory_halves(name, make, _r, fields, _a, _s):
    params = {"w": jnp.zeros((8, 4), jnp.float32), "b": jnp.zeros(4, jnp.float32)}
    full, half = make().init(params), make(mu_dtype=BF16, nu_dtype=BF16).init(params)
    for field, kind in fields.items():
        want = jnp.float32 if kind is None else BF16
        assert all(x.dtype == want for x in jax.tree.leaves(getattr(half, field))), (name, field)
        assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(getattr(full, field))), (name, field)
    moments = [f for f, k in fields.items() if k is not None]
    nbytes = lambda s: sum(x.nbytes for f in moments for x in jax.tree.leaves(getattr(s, f)))  # noqa: E731
    assert nbytes(half) * 2 == nbytes(full) == 4 * 36 * len(moments)
    total = lambda s: sum(x.nbytes for x in jax.tree.leaves(s))  # noqa: E731
    assert total(full) - total(half) == nbytes(half)  # nothing else changed size
    mixed = make(mu_dtype=jnp.float32, nu_dtype=BF16).init({"w": jnp.zeros(3, jnp.float64)})
    for field, kind in fields.items():
        want = {None: jnp.float64, "mu": jnp.float32, "nu": BF16}[kind]
        assert jax.tree.leaves(getattr(mixed, field))[0].dtype == want, (name, field)


@pytest.mark.parametrize("name,make,reference,_f,attrs,start", BLOCKS, ids=IDS)
def test_bfloat16_state_equals_the_rounding_reference(name, make, reference, _f, attrs, start):
    """Float64 parameters, state stored in bfloat16: equal to the float64 reference whose state is rounded to
    bfloat16 after every step (the rounding written in NumPy), and to the float32-state run within what
    bfloat16 state costs (a relative 2^-9 per stored value, accumulated over the EMA memory)."""
    grads = _grads()
    got, _ = _run(make(mu_dtype=BF16, nu_dtype=BF16), grads, jnp.float64)
    oracle = rp.state_dtypes(reference(), {a: "bfloat16" for a in attrs}, start=start)
    want = np.stack([oracle.step(g) for g in grads])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
    exact, _ = _run(make(mu_dtype=jnp.float32, nu_dtype=jnp.float32), grads, jnp.float64)
    err = np.linalg.norm(got - exact, axis=1) / np.linalg.norm(exact, axis=1)
    assert err.max() < 0.05, err.max()
    assert err.max() > 2.0**-16  # the bfloat16 state really changed something


def test_xla_converts_float64_to_16_bit_floats_through_float32():
    """reference.precision.round_to rounds float64 as XLA does: to bfloat16 through float32 (twice rounded), to
    float16 directly (jax >= 0.10; earlier versions went through float32 too)."""
    x = np.array([1 + 2**-8 + 2**-30, 1 + 2**-11 + 2**-40, 3.3, -1e-3])
    for dt, name in ((BF16, "bfloat16"), (jnp.float16, "float16")):
        got = np.asarray(jnp.asarray(x, jnp.float64).astype(dt), np.float64)
        np.testing.assert_array_equal(got, rp.round_to(x, name))
    assert rp.round_to(x[:1], "bfloat16")[0] == 1.0  # not 1 + 2^-7, which direct rounding would give
    assert rp.round_to(x[1:2], "float16")[0] == 1 + 2**-10  # not 1.0, which rounding through float32 would give


def test_recipes_pass_state_dtypes_through():
    p = {"w": jnp.zeros(3)}
    for opt in (gradtx.adam(1e-3, nu_dtype=BF16), gradtx.adamw(1e-3, nu_dtype=BF16), gradtx.nadam(1e-3, nu_dtype=BF16),
                gradtx.nadamw(1e-3, nu_dtype=BF16), gradtx.amsgrad(1e-3, nu_dtype=BF16),
                gradtx.lamb(1e-3, nu_dtype=BF16), gradtx.adabelief(1e-3, nu_dtype=BF16),
                gradtx.adamax(1e-3, nu_dtype=BF16), gradtx.yogi(1e-3, nu_dtype=BF16),
                gradtx.radam(1e-3, nu_dtype=BF16), gradtx.adan(1e-3, nu_dtype=BF16),
                gradtx.optimistic_adam_v2(1e-3, nu_dtype=BF16)):
        nus = [x for path, x in jax.tree_util.tree_flatten_with_path(opt.init(p))[0]
               if jax.tree_util.keystr(path).endswith((".nu['w']", ".n['w']"))]
        assert nus and all(x.dtype == BF16 for x in nus), opt
    assert "nu_dtype=bfloat16" in repr(gradtx.adam(1e-3, nu_dtype=BF16))
    assert "nu_dtype" not in repr(gradtx.adam(1e-3))  # Optax-compatible calls read like Optax's


@pytest.mark.parametrize("bad", [jnp.int32, "not a dtype", jnp.complex64])
def test_nu_dtype_must_be_a_real_float(bad):
    with pytest.raises(ValueError, match=r"scale_by_adam\(nu_dtype=.*\): nu_dtype must be None or a real floating"):
        gradtx.scale_by_adam(nu_dtype=bad)


def test_bfloat16_nu_with_b2_near_one_has_a_dead_band():
    """The documented cost of nu_dtype=bfloat16: nu stops moving once (1 - b2)|g^2 - nu| < ulp(nu)/2. Constant
    |g| = 1, b2 = 0.999 (float32 nu: 1 - 0.999^3000 = 0.95). On [1/8, 1/4) (ulp 2^-10) each increment
    1e-3 (1 - nu) in (7.5e-4, 8.8e-4] is between half an ulp and an ulp, so nu goes up one ulp per step; at 1/4
    the ulp doubles and 7.5e-4 < 2^-10 = ulp/2: nu freezes at exactly 1/4, a quarter of its value."""
    tx = gradtx.scale_by_adam(b2=0.999, nu_dtype=BF16)
    state = tx.init(jnp.zeros(1))
    step = jax.jit(tx.update)
    for _ in range(3000):
        _, state = step(jnp.ones(1), state)
    assert float(state.nu[0]) == 0.25
    _, state32 = step(jnp.ones(1), gradtx.scale_by_adam(b2=0.999).init(jnp.zeros(1)))
    assert float(state32.nu[0]) == pytest.approx(1e-3)  # the float32 run starts the same way


# ==================================================================================================
# (2) stochastic_round: unbiased, reproducible, exact landing.
# ==================================================================================================


def _neighbours(x, dtype):
    """The two representable values of ``dtype`` around float64 ``x`` (NumPy and ml_dtypes only)."""
    np_dt = {BF16: ml_dtypes.bfloat16, jnp.float16: np.float16}[dtype]
    r = np.asarray(x, np.float32).astype(np_dt)
    up = np.where(r.astype(np.float64) < x, np.nextafter(r, np.asarray(np.inf, np_dt)), r)
    down = np.where(r.astype(np.float64) > x, np.nextafter(r, np.asarray(-np.inf, np_dt)), r)
    return down.astype(np.float64), up.astype(np.float64)


@pytest.mark.parametrize("dtype", [BF16, jnp.float16], ids=["bfloat16", "float16"])
def test_stochastic_round_is_unbiased(dtype):
    """Each of 24 values x (float32, between neighbours lo < hi) is rounded M = 2^14 times; the rounding is
    Bernoulli(f) on {lo, hi} with f = (x - lo) / (hi - lo), so the mean has standard deviation
    (hi - lo) sqrt(f (1 - f) / M): it must be within 5 of them of x, and every output in {lo, hi}."""
    rng = np.random.default_rng(1)
    scales = np.array([1.0, 3e-3, 700.0, -2.0, 1e-5] * 5)[:24]
    x = np.asarray(rng.uniform(1, 2, 24) * scales, np.float32).astype(np.float64)
    x[0] = 1.0  # representable: returned unchanged
    m = 2**14
    out = np.asarray(stochastic_round(jnp.tile(jnp.asarray(x, jnp.float32), (m, 1)), dtype, jax.random.key(3)),
                     np.float64)
    lo, hi = _neighbours(x, dtype)
    assert np.all((out == lo) | (out == hi))
    gap = np.where(hi > lo, hi - lo, 1.0)
    f = (x - lo) / gap
    sd = gap * np.sqrt(f * (1 - f) / m)
    np.testing.assert_array_less(np.abs(out.mean(0) - x), 5 * sd + 1e-300)
    assert np.all(out[:, 0] == 1.0)
    assert np.mean(out[:, 1:] == hi[1:]) > 0.1 and np.mean(out[:, 1:] == lo[1:]) > 0.1  # both happen


def test_stochastic_round_is_reproducible_and_keyed():
    x = jnp.linspace(1.0, 2.0, 1000, dtype=jnp.float32) + 1e-4
    a, b = stochastic_round(x, BF16, jax.random.key(7)), stochastic_round(x, BF16, jax.random.key(7))
    c = stochastic_round(x, BF16, jax.random.key(8))
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    specials = jnp.asarray([jnp.inf, -jnp.inf, jnp.nan, -0.0, 3.0e38, -3.0e38], jnp.float32)
    got = np.asarray(stochastic_round(specials, BF16, jax.random.key(0)), np.float32)
    assert got[0] == np.inf and got[1] == -np.inf and np.isnan(got[2]) and got[3] == 0.0
    lo, hi = _neighbours(np.asarray(specials[4:], np.float64), BF16)  # near the largest finite bfloat16
    assert np.all((got[4:] == lo) | (got[4:] == hi)) and np.all(np.isfinite(got[4:]))
    with pytest.raises(TypeError, match="float8_e4m3fn is not supported"):
        stochastic_round(x, jnp.float8_e4m3fn, jax.random.key(0))


def _sr_step(tx, p, u_inner):
    """One step of ``tx`` whose inner transformation returns ``u_inner`` (through a fixed ``scale``)."""
    state = tx.init(p)
    return tx.update(u_inner, state, p)


def test_apply_updates_lands_on_the_rounded_target_bit_for_bit():
    """For steps smaller than the parameter (target within a factor 2 of p, Sterbenz) p + update is exactly a
    neighbour of p + u; the landing is exact for both wrappers; Kahan's c is exactly what was not applied."""
    rng = np.random.default_rng(2)
    p = jnp.asarray(rng.uniform(0.5, 4, 4096) * rng.choice([-1, 1], 4096), BF16)
    u = jnp.asarray(np.asarray(p, np.float64) * rng.uniform(-0.4, 0.4, 4096) * 10.0 ** rng.integers(-6, 0, 4096),
                    BF16)
    target = np.asarray(p, np.float64) + np.asarray(u, np.float64)
    lo, hi = _neighbours(target, BF16)
    for tx in (stochastic_rounding(gradtx.identity(), 5), kahan_summation(gradtx.identity())):
        d, state = _sr_step(tx, p, u)
        assert d.dtype == BF16
        landed = np.asarray(gradtx.apply_updates(p, d), np.float64)
        np.testing.assert_array_equal(landed, np.asarray(p, np.float64) + np.asarray(d, np.float64))
        assert np.all((landed == lo) | (landed == hi))
        if isinstance(state, KahanSummationState):
            np.testing.assert_array_equal(landed, np.asarray(np.asarray(target, np.float32).astype(
                ml_dtypes.bfloat16), np.float64))  # round to nearest
            c = np.asarray(state.compensation, np.float64)
            np.testing.assert_allclose(landed + c, target, rtol=0, atol=2.0**-8 * np.abs(c).max() + 1e-30)
        else:
            assert np.mean(landed == hi) > 0.05 and np.mean(landed == lo) > 0.05


def test_large_steps_land_within_one_ulp():
    """Past Sterbenz (|target| > 2 |p|) the update p_new - p is rounded once more: apply_updates lands on
    fl(p + fl(p_new - p)), within one ulp of the rounded target; Kahan's c holds the difference exactly."""
    p = jnp.asarray([1.0078125, -1.0078125, 3.0], BF16)
    u = jnp.asarray([299.0, 300.5, -9.5], BF16)
    target = np.asarray(p, np.float64) + np.asarray(u, np.float64)
    ulp = 2.0 ** (np.floor(np.log2(np.abs(target))) - 7)
    for tx in (stochastic_rounding(gradtx.identity(), 1), kahan_summation(gradtx.identity())):
        d, state = _sr_step(tx, p, u)
        landed = np.asarray(gradtx.apply_updates(p, d), np.float64)
        assert np.all(np.abs(landed - target) <= ulp), (landed, target)
        if isinstance(state, KahanSummationState):
            c = np.asarray(state.compensation, np.float64)
            assert np.all(np.abs(landed + c - target) <= 2.0**-9 * np.abs(c))  # c in bfloat16: 8 bits of it


def test_float32_and_integer_params_pass_through():
    p = {"f": jnp.ones(3, jnp.float32), "i": jnp.ones(2, jnp.int32), "none": None}
    u = {"f": jnp.full(3, 1e-9, jnp.float32), "i": jnp.ones(2, jnp.int32), "none": None}
    d, _ = _sr_step(stochastic_rounding(gradtx.identity()), p, u)
    assert np.array_equal(np.asarray(d["f"]), np.asarray(u["f"])) and np.array_equal(d["i"], u["i"])
    d, s = _sr_step(kahan_summation(gradtx.identity()), p, u)
    assert np.all(np.asarray(d["f"]) == 0) and np.allclose(np.asarray(s.compensation["f"]), 1e-9)  # kept in c
    assert np.array_equal(d["i"], u["i"]) and d["none"] is None


# ==================================================================================================
# (3) The issue's test: bfloat16 SGD on a quadratic stalls with round-to-nearest, converges with either policy.
# ==================================================================================================

NQ, LR, QSTEPS = 64, 0.02, 2000
_rng = np.random.default_rng(0)
A = _rng.uniform(0.5, 1.0, NQ)  # lr a in [0.01, 0.02]
XSTAR = _rng.uniform(1.45, 1.55, NQ)  # in [1, 2): bfloat16 ulp 2^-7 all the way from x0 to x*
X0 = XSTAR - 0.45
ULP = 2.0**-7


def _train(tx):
    """f(x) = sum a_i (x_i - x*_i)^2 / 2 on bfloat16 params; the gradient a (x - x*) computed in float32 and
    rounded to bfloat16 (as jax.grad of a bfloat16 loss returns it); updates applied by apply_updates."""
    a, xs = jnp.asarray(A, jnp.float32), jnp.asarray(XSTAR, jnp.float32)

    def body(carry, _):
        p, s = carry
        g = (a * (p.astype(jnp.float32) - xs)).astype(BF16)
        u, s = tx.update(g, s, p)
        return (gradtx.apply_updates(p, u), s), None

    p0 = jnp.asarray(X0, BF16)
    (p, _), _ = jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), None, length=QSTEPS))(p0)
    return (np.asarray(p, np.float64) - XSTAR) / ULP  # signed distance in ulps


def test_bfloat16_sgd_on_a_quadratic_stalls_with_round_to_nearest_and_converges_with_either_policy():
    """Closed forms, distances in ulps of [1, 2) (2^-7):

    - round to nearest: p stops when |lr a (p - x*)| < ulp/2, i.e. at S = 1 / (2 lr a) ulps (25 to 50 here);
      the last move started at >= S and covered at most lr a D + ulp/2, so the stall lies in [S - 1, S],
      widened by (1 +- 2^-7) for the bfloat16 rounding of the gradient and the update.
    - stochastic rounding: E[D'] = (1 - lr a) D and Var[D'] = ulp^2 f (1 - f) <= ulp |lr a D| once the step is
      below an ulp, so at stationarity 2 lr a E[D^2] <= lr a sqrt(E[D^2]): rms D <= 1/2 ulp (asserted: <= 1,
      over 64 coordinates) and the mean of D over coordinates is 0 (asserted: |mean| <= 1/4, ~5 sd).
    - Kahan: z = p + c follows exact gradient descent evaluated at p = z - c with |c| <= ulp/2, so |z - x*|
      tends to <= ulp/2 and |p - x*| <= 1 ulp (+ 2^-10 / (lr a) ulp for c rounded to bfloat16 each step).
    """
    stall = 1 / (2 * LR * A)
    rn = _train(gradtx.sgd(LR))
    assert np.all(np.abs(rn) >= stall * (1 - 2**-7) - 1) and np.all(np.abs(rn) <= stall * (1 + 2**-7)), rn
    assert np.all(rn < 0)  # approached from below, stopped short
    sr = _train(stochastic_rounding(gradtx.sgd(LR), 0))
    assert np.sqrt(np.mean(sr**2)) <= 1.0 and abs(np.mean(sr)) <= 0.25, (np.sqrt(np.mean(sr**2)), np.mean(sr))
    kahan = _train(kahan_summation(gradtx.sgd(LR)))
    assert np.max(np.abs(kahan)) <= 1 + 2**-10 / (LR * A.min()), np.max(np.abs(kahan))
    kahan32 = _train(kahan_summation(gradtx.sgd(LR), compensation_dtype=jnp.float32))
    assert np.max(np.abs(kahan32)) <= 1.0 + 2**-8, np.max(np.abs(kahan32))
    assert np.min(np.abs(rn)) > 20 * max(np.max(np.abs(kahan)), np.sqrt(np.mean(sr**2)))


# ==================================================================================================
# (4) jit, lax.scan, chains, Adam; reproducibility; errors.
# ==================================================================================================


def _keys_as_data(tree):
    return jax.tree.map(lambda x: jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x, tree)


@pytest.mark.parametrize("wrap", ["stochastic_rounding", "kahan_summation"])
def test_jit_loop_equals_scan_with_adam_in_a_chain(wrap):
    """A jitted Python loop and lax.scan give the same params and state bit for bit (bfloat16 and float32
    params, Adam with a bfloat16 nu inside a chain); stochastic rounding with another key gives other bits."""
    def make(key):
        inner = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(1e-3, nu_dtype=BF16))
        return stochastic_rounding(inner, key) if wrap == "stochastic_rounding" else kahan_summation(inner)

    params = {"w": jnp.asarray(np.linspace(-1, 1, 12).reshape(3, 4), BF16), "b": jnp.ones(4, jnp.float32)}
    grads = [jax.tree.map(lambda x, k=k: jnp.sin(x.astype(jnp.float32) * (k + 1)).astype(x.dtype), params)
             for k in range(5)]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *grads)

    def run_loop(tx):
        def body(carry, g):
            p, s = carry
            u, s = tx.update(g, s, p)
            return (gradtx.apply_updates(p, u), s), u

        step = jax.jit(body)
        carry = (params, tx.init(params))
        for g in grads:
            carry, _ = step(carry, g)
        scanned, _ = jax.jit(lambda c: jax.lax.scan(body, c, stacked))((params, tx.init(params)))
        return carry, scanned

    (loop, scanned) = run_loop(make(3))
    for a, b in zip(jax.tree.leaves(_keys_as_data(loop)), jax.tree.leaves(_keys_as_data(scanned))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(loop[0]["w"]), np.asarray(params["w"]))  # it moved
    if wrap == "stochastic_rounding":
        assert isinstance(loop[1], StochasticRoundingState)
        other, _ = run_loop(make(4))
        assert not np.array_equal(np.asarray(other[0]["w"]), np.asarray(loop[0]["w"]))


def test_errors():
    with pytest.raises(ValueError, match=r"stochastic_rounding\(key=1.5\): key must be an int seed or a jax"):
        stochastic_rounding(gradtx.sgd(0.1), 1.5)
    with pytest.raises(ValueError, match=r"kahan_summation\(compensation_dtype=.*\): compensation_dtype must be"):
        kahan_summation(gradtx.sgd(0.1), compensation_dtype=jnp.int32)
    with pytest.raises(TypeError, match="stochastic_rounding: expected a transformation"):
        stochastic_rounding(3)
    p = {"w": jnp.ones(2, BF16)}
    for tx in (stochastic_rounding(gradtx.sgd(0.1)), kahan_summation(gradtx.sgd(0.1))):
        with pytest.raises(ValueError, match=r"\.update: params are required"):
            tx.update(p, tx.init(p))
    f8 = {"w": jnp.ones(2, jnp.float8_e4m3fn)}
    with pytest.raises(TypeError, match="float8_e4m3fn is not supported"):
        stochastic_rounding(gradtx.identity()).update(f8, stochastic_rounding(gradtx.identity()).init(f8), f8)
    assert repr(stochastic_rounding(gradtx.sgd(0.1), 2)).startswith("stochastic_rounding(inner=chain(")
    assert jax.eval_shape(kahan_summation(gradtx.adam(1e-3)).init, p).compensation["w"].dtype == BF16


def test_stddev_variance_rounded_below_zero_is_clamped():
    # decay 0: mu = g and nu = g^2 exactly, so the variance is 0; bfloat16 state rounds nu = g^2 (and mu^2 is
    # formed in float32 from the rounded mu), which leaves nu - mu^2 negative for g = 1.01 -> NaN unclamped.
    g = jnp.asarray([1.01, -3.3, 0.7], jnp.bfloat16)
    g32 = np.asarray(g, np.float32)
    nu_b = np.asarray(jnp.asarray(g32 * g32, jnp.bfloat16), np.float32)
    assert (nu_b - g32 * g32).min() < 0  # the hazard is real for these values
    tx = gradtx.scale_by_stddev(decay=0.0, eps=1e-12)
    u, _ = jax.jit(tx.update)(g, tx.init(g))
    assert np.all(np.isfinite(np.asarray(u, np.float32)))
    # where the rounded variance is >= 0 the clamp changes nothing: the output is g / sqrt(var + eps)
    var = np.maximum(nu_b - g32 * g32, 0)
    expected = g32 / np.sqrt(var + 1e-12)
    expected_bf16 = np.asarray(jnp.asarray(expected, jnp.bfloat16), np.float32)
    np.testing.assert_allclose(np.asarray(u, np.float32), expected_bf16, rtol=1e-2)
