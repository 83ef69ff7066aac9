"""gradtx.quantized: 8-bit optimizer state (Dettmers et al. 2022, block-wise dynamic quantization).

Checked against an independent float64 NumPy reference written from the paper's description (the map built
value by value, the nearest code found by brute force over all 256 values), then Adam with 8-bit state step
by step against the same reference, the memory figure, the quality claims (Rosenbrock, the narrow valley, the
digits MLP) and a checkpoint round trip.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.quantized import (
    QuantizedArray,
    dequantize_blockwise,
    dynamic_map,
    quantize_blockwise,
)
from gradtx.testing.problems import narrow_valley, rosenbrock

# --------------------------------------------------------------------------------------------------
# The float64 reference
# --------------------------------------------------------------------------------------------------


def ref_map(signed: bool) -> np.ndarray:
    """The dynamic map from the paper's description: sign, decimal exponent e (7 decades below 1), linear
    fraction; the largest decade gets the most fractions (2^(6-e), doubled without a sign bit); 0 and 1 exact."""
    vals = {0.0, 1.0}
    for e in range(7):  # magnitude 10^-e * f, f the centre of one of n equal cells of [0.1, 1]
        n = 2 ** (6 - e) * (1 if signed else 2)
        for k in range(n):
            f = 0.1 + (k + 0.5) * 0.9 / n
            vals.add(10.0 ** -e * f)
            if signed:
                vals.add(-(10.0 ** -e) * f)
    return np.array(sorted(vals))


def ref_quantize(x: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """codes, scales (negative: signed map), and the margin of each choice (gap between the two nearest)."""
    x = np.asarray(x, np.float64).ravel()
    n = x.size
    nb = -(-n // block)
    xb = np.zeros(nb * block)
    xb[:n] = x
    xb = xb.reshape(nb, block)
    codes = np.zeros((nb, block), np.int64)
    margin = np.zeros((nb, block))
    scales = np.zeros(nb)
    for b in range(nb):
        s = np.max(np.abs(xb[b]))
        signed = bool(np.any(xb[b] < 0))
        q = ref_map(signed)
        normed = xb[b] / s if s > 0 else xb[b]
        d = np.abs(normed[:, None] - q[None, :])
        codes[b] = np.argmin(d, axis=1)
        two = np.sort(d, axis=1)[:, :2]
        margin[b] = two[:, 1] - two[:, 0]
        scales[b] = -s if signed else s
    return codes.ravel()[:n], scales, margin.ravel()[:n]


def ref_dequantize(codes: np.ndarray, scales: np.ndarray, block: int) -> np.ndarray:
    out = np.empty(codes.size)
    for i, c in enumerate(codes):
        s = scales[i // block]
        out[i] = ref_map(s < 0)[c] * abs(s)
    return out


# --------------------------------------------------------------------------------------------------
# The map and the round trip
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [True, False])
def test_dynamic_map_equals_the_reference(signed):
    q = np.asarray(dynamic_map(signed))
    ref = ref_map(signed)
    assert ref.size == 256 and q.dtype == np.float32
    np.testing.assert_array_equal(q, ref.astype(np.float32))
    assert np.all(np.diff(q) > 0) and q[-1] == 1.0 and 0.0 in q
    if signed:  # 127 negatives mirroring the positives below 1, then 0 at code 127
        np.testing.assert_array_equal(q[:127], -q[128:255][::-1])
        assert q[127] == 0.0
    else:
        assert q[0] == 0.0 and q[1] > 0.0


@pytest.mark.parametrize("block", [1, 7, 256])
def test_quantize_round_trip_equals_the_reference(block):
    rng = np.random.default_rng(block)
    x = np.concatenate([
        rng.normal(size=300) * np.exp(rng.uniform(-12, 2, size=300)),  # signed, over many decades
        np.abs(rng.normal(size=200)) ** 2,  # non-negative blocks (unsigned map where a block is all >= 0)
        np.zeros(block),  # an all-zero block
        [1e30, -3.0, 0.0],  # an outlier coarsens only its own block
    ]).astype(np.float32)
    codes, scales = quantize_blockwise(jnp.asarray(x), block)
    rc, rs, margin = ref_quantize(x, block)
    assert codes.dtype == jnp.uint8 and codes.shape == (x.size,) and scales.shape == (-(-x.size // block),)
    np.testing.assert_array_equal(np.asarray(scales), rs.astype(np.float32))
    codes = np.asarray(codes).astype(np.int64)
    # float32 division may pick the other neighbour only where the two are within rounding of a tie
    differ = codes != rc
    assert np.all(margin[differ] < 1e-6), (np.flatnonzero(differ), margin[differ])
    deq = np.asarray(dequantize_blockwise(jnp.asarray(codes, jnp.uint8), scales, x.shape, jnp.float32, block))
    expect = ref_dequantize(codes, rs, block)
    np.testing.assert_allclose(deq, expect, rtol=1e-6, atol=0)
    # Nearest rounding: each value lands within half the gap between the two map values around it, and in the
    # top decade of its block (|x| >= s / 10) within 0.45 / 64 / 0.1 = 7 % (signed) of itself.
    s = np.repeat(np.abs(rs), block)[: x.size]
    for signed in (True, False):
        q = ref_map(signed)
        sel = (s > 0) & (np.repeat(rs < 0, block)[: x.size] == signed)
        normed = x[sel] / s[sel]
        hi = np.clip(np.searchsorted(q, normed), 1, 255)
        half_gap = (q[hi] - q[hi - 1]) / 2
        assert np.all(np.abs(deq[sel] / s[sel] - normed) <= half_gap * (1 + 1e-5) + 1e-12)
    top = (s > 0) & (np.abs(x) >= s / 10)
    assert np.max(np.abs(deq - x)[top] / np.abs(x)[top]) <= 0.0704


def test_quantized_array_pytree_and_repr():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 100)), jnp.bfloat16)
    qa = QuantizedArray.quantize(x, block_size=64)
    assert [a.dtype for a in jax.tree.leaves(qa)] == [jnp.uint8, jnp.float32]
    back = qa.dequantize()
    assert back.shape == (3, 100) and back.dtype == jnp.bfloat16
    assert qa.nbytes == 300 + 4 * 5 and repr(qa) == "QuantizedArray(bfloat16[3, 100], 8-bit)"
    twin = jax.tree.map(lambda a: a, qa)  # rebuilt by JAX: same static shape, dtype, block size
    np.testing.assert_array_equal(np.asarray(twin.dequantize(), np.float32), np.asarray(back, np.float32))


# --------------------------------------------------------------------------------------------------
# quantized_state
# --------------------------------------------------------------------------------------------------


def ref_adam8(grads: list[np.ndarray], lr, b1, b2, eps, block):
    """Adam (Kingma & Ba 2015) whose moments are quantized and dequantized after every step (float64)."""
    n = grads[0].size
    m, v = np.zeros(n), np.zeros(n)
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        out.append(-lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
        mc, ms, _ = ref_quantize(m, block)
        vc, vs, _ = ref_quantize(v, block)
        m, v = ref_dequantize(mc, ms, block), ref_dequantize(vc, vs, block)
    return out


def test_adam_with_8bit_state_follows_the_reference_step_by_step():
    rng = np.random.default_rng(1)
    block, n = 32, 200
    grads = [rng.normal(size=n) * np.exp(rng.uniform(-4, 1, size=n)) for _ in range(6)]
    opt = gradtx.quantized_state(gradtx.adam(1e-2), block_size=block, min_size=100)
    params = {"w": jnp.zeros(n, jnp.float32), "small": jnp.zeros(3, jnp.float32)}
    state = opt.init(params)
    assert isinstance(state.inner_state[0].mu["w"], QuantizedArray)
    assert state.inner_state[0].mu["small"].dtype == jnp.float32  # below min_size: float32
    update = jax.jit(opt.update)
    ref = ref_adam8(grads, 1e-2, 0.9, 0.999, 1e-8, block)
    for t, g in enumerate(grads):
        u, state = update({"w": jnp.asarray(g, jnp.float32), "small": jnp.ones(3, jnp.float32)}, state, params)
        got = np.asarray(u["w"], np.float64)
        close = np.isclose(got, ref[t], rtol=2e-5, atol=1e-9)
        # a float32 near-tie may round a moment to the neighbouring code: rare, and then within a few per cent
        assert close.mean() >= 0.99, (t, np.flatnonzero(~close))
        np.testing.assert_allclose(got, ref[t], rtol=0.1, atol=1e-9)
    assert int(state.inner_state[0].count) == len(grads)


def test_first_step_is_adams_closed_form():
    g = jnp.asarray(np.random.default_rng(2).normal(size=5000), jnp.float32)
    opt = gradtx.quantized_state(gradtx.adam(0.1))  # min_size 4096: quantized
    u, _ = opt.update(g, opt.init(jnp.zeros(5000, jnp.float32)), jnp.zeros(5000, jnp.float32))
    # the first step uses the exact m_1 and v_1 (quantized only afterwards): -lr g / (|g| + eps)
    np.testing.assert_allclose(np.asarray(u), -0.1 * np.asarray(g) / (np.abs(np.asarray(g)) + 1e-8), rtol=1e-6)


def test_state_memory_is_about_two_bytes_per_parameter():
    params = {k: jnp.zeros(s, jnp.float32) for k, s in {"w1": (512, 256), "w2": (256, 64), "b": (64,)}.items()}
    n = sum(x.size for x in jax.tree.leaves(params))
    full = jax.eval_shape(gradtx.adamw(1e-3).init, params)
    q8 = jax.eval_shape(gradtx.quantized_state(gradtx.adamw(1e-3)).init, params)

    def nbytes(tree):
        return sum(np.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))

    assert nbytes(full) / n == pytest.approx(8.0, abs=1e-3)
    assert nbytes(q8) / n <= 2.1, nbytes(q8) / n
    assert nbytes(jax.eval_shape(gradtx.quantized_state(gradtx.adamw(1e-3), block_size=2048).init, params)) / n < 2.03


def _first_hit(opt, problem, steps, tol):
    x0 = jnp.asarray(problem.start, jnp.float32)

    def body(c, _):
        x, s = c
        u, s = opt.update(jax.grad(problem.loss)(x), s, x)
        x = gradtx.apply_updates(x, u)
        return (x, s), problem.loss(x)

    _, losses = jax.jit(lambda x: jax.lax.scan(body, (x, opt.init(x)), None, length=steps))(x0)
    hit = np.flatnonzero(np.asarray(losses) < tol)
    return int(hit[0]) if hit.size else None


@pytest.mark.parametrize(("problem", "lr", "steps"), [(rosenbrock(), 0.02, 3000), (narrow_valley(), 0.1, 3600)],
                         ids=["rosenbrock", "narrow_valley"])
def test_8bit_adam_reaches_the_tolerance_float32_adam_reaches(problem, lr, steps):
    """Every leaf quantized (``min_size=0``; a 2-element block): Adam's loss reaches 1e-5 within 10 % of the
    steps float32 Adam takes (measured: Rosenbrock 2596 against 2615, the valley 2520 against 3437)."""
    f32 = _first_hit(gradtx.adam(lr), problem, steps, 1e-5)
    q8 = _first_hit(gradtx.quantized_state(gradtx.adam(lr), min_size=0), problem, steps, 1e-5)
    assert f32 is not None and q8 is not None and q8 <= 1.1 * f32, (f32, q8)


def test_8bit_adamw_trains_the_digits_mlp_as_well_as_float32():
    pytest.importorskip("sklearn")
    from digits_bench import bench

    data = bench.digits()
    h32, acc32 = bench.train(gradtx.adamw(1e-2), None, data)
    h8, acc8 = bench.train(gradtx.quantized_state(gradtx.adamw(1e-2), min_size=0), None, data)
    assert acc32 > 0.95 and abs(acc8 - acc32) <= 0.005, (acc32, acc8)  # measured: 0.980 both
    assert h8[-1] <= 1.5 * h32[-1] and h8[-1] < h8[0] / 100, (h32[-1], h8[-1])


def test_checkpoint_round_trip_is_bit_identical(tmp_path):
    opt = gradtx.quantized_state(gradtx.adam(1e-2), min_size=0, block_size=64)
    params = {"w": jnp.zeros((10, 30), jnp.float32), "b": jnp.zeros(7, jnp.float32)}
    state = opt.init(params)
    rng = np.random.default_rng(3)
    for _ in range(3):
        g = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
        _, state = opt.update(g, state, params)
    path = tmp_path / "q8.npz"
    gradtx.checkpoint.save_state(path, state, tx=opt)
    loaded = gradtx.checkpoint.load_state(path, opt.init(params), tx=opt).state
    assert jax.tree.structure(loaded) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(loaded)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    keys = sorted(gradtx.checkpoint.state_dict(state))
    assert "inner_state/0/mu/w/codes" in keys and "inner_state/0/mu/w/scales" in keys, keys


def test_bad_options_raise_at_construction():
    with pytest.raises(ValueError, match=r"quantized_state\(block_size=0\): block_size must be"):
        gradtx.quantized_state(gradtx.adam(1e-3), block_size=0)
    with pytest.raises(ValueError, match=r"quantized_state\(min_size=-1\): min_size must be"):
        gradtx.quantized_state(gradtx.adam(1e-3), min_size=-1)
    with pytest.raises(TypeError, match="quantized_state"):
        gradtx.quantized_state(3)
    with pytest.raises(ValueError, match=r"quantize_blockwise\(block_size=0\)"):
        quantize_blockwise(jnp.ones(3), 0)
    with pytest.raises(ValueError, match="dequantize_blockwise"):
        dequantize_blockwise(jnp.zeros(5, jnp.uint8), jnp.ones(3), (5,), block_size=4)


def test_large_and_subnormal_blocks_round_trip():
    """A block near 2^126 (the documented limit) keeps its values; a block of subnormal numbers comes back as 0
    where the backend flushes them (XLA on CPU) or close to them."""
    x = np.array([1e-40, -2e-40, 0.0, 3e-39, 8e37, -1e37, 1e33, 0.0], np.float32)
    codes, scales = quantize_blockwise(jnp.asarray(x), 4)
    back = np.asarray(dequantize_blockwise(codes, scales, x.shape, jnp.float32, 4))
    assert np.all(np.isfinite(back)) and back[2] == 0 and back[7] == 0
    np.testing.assert_allclose(back[4:6], x[4:6], rtol=0.06)  # within half a step of the map near each value
    assert 0.5 * x[6] < back[6] < 1.5 * x[6]  # 1e33 is 1.25e-5 of the block: a coarse decade of 4 cells
    tiny = back[:4]
    assert np.all(tiny == 0) or np.all(np.abs(tiny - x[:4]) <= 0.15 * np.abs(x[:4])), tiny


def test_float32_state_for_the_embedding_with_partition():
    """The optimizer side of the paper's stable embedding (Dettmers et al. 2022; bitsandbytes' ``StableEmbedding``
    keeps the embedding's optimizer state in 32 bits): ``partition`` sends the embedding to plain AdamW and the
    rest to 8-bit AdamW.
    The embedding's state stays float32 and its steps equal plain AdamW's exactly; the rest is quantized."""
    rng = np.random.default_rng(3)
    params = {"embed": jnp.asarray(rng.normal(size=(512, 16)), jnp.float32),
              "w": jnp.asarray(rng.normal(size=(128, 64)), jnp.float32)}
    labels = {"embed": "float32", "w": "8bit"}
    opt = gradtx.partition({"float32": gradtx.adamw(1e-2), "8bit": gradtx.quantized_state(gradtx.adamw(1e-2))},
                           labels)
    plain = gradtx.adamw(1e-2)
    state, plain_state = opt.init(params), plain.init(params)
    p, q = params, params
    for _ in range(3):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params)
        u, state = opt.update(g, state, p)
        p = gradtx.apply_updates(p, u)
        v, plain_state = plain.update(g, plain_state, q)
        q = gradtx.apply_updates(q, v)
    np.testing.assert_array_equal(np.asarray(p["embed"]), np.asarray(q["embed"]))
    leaves = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, QuantizedArray))
    quantized = [x for x in leaves if isinstance(x, QuantizedArray)]
    assert len(quantized) == 2 and all(x.shape == (128, 64) for x in quantized)  # mu and nu of "w"
    float_moments = [x for x in leaves if getattr(x, "shape", None) == (512, 16)]
    assert len(float_moments) == 2 and all(x.dtype == jnp.float32 for x in float_moments)
    np.testing.assert_allclose(np.asarray(p["w"]), np.asarray(q["w"]), atol=5e-3)
