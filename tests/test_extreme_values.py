"""Numerics under huge, tiny and zero values (issue 15).

1. Norms neither overflow nor underflow: a float32 gradient of 1e20 (its square is inf) or of 1e-25 (its square
   is 0) has its true norm, in ``gradtx.tree``, every clipping and normalisation block, trust ratios, the
   monitors and ``safe_norm``; for ordinary magnitudes the norm is the plain ``sqrt(sum |x|^2)`` bit for bit.
2. An overflowed second moment does not freeze an adaptive optimizer silently: under ``apply_if_finite`` the
   step that overflows is skipped (parameters and inner state kept, training continues exactly as if it never
   happened); without a guard the update becomes NaN.
3. ``eps = 0`` with a gradient coordinate that is exactly 0 gives a 0 update (not 0/0 = NaN).
4. Hypergradients (``jax.grad`` of the loss after a few steps with respect to the hyperparameters) are finite
   when a gradient coordinate is exactly 0 with ``eps_root = 0``, and match central finite differences in
   float64; so is the derivative of a norm at 0.

References are float64 NumPy values or closed forms; runs are eager (no jit), so "exactly as if" is bitwise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import tree
from gradtx.diagnostics import metrics, monitored
from gradtx.numerics import safe_norm, safe_root_mean_squares
from gradtx.tree.ops import l2_norm, leaves_norm
from gradtx.tree.precision import safe_sqrt, scale_ratio, times_inverse
from gradtx.tree_utils import tree_l2_norm

F32 = jnp.float32
HUGE, TINY = 1e20, 1e-25  # float32: HUGE**2 overflows, TINY**2 underflows


def _np_norm(t) -> float:
    return float(np.sqrt(sum(np.sum(np.abs(np.asarray(x, np.complex128)) ** 2) for x in jax.tree.leaves(t))))


def _flat(t) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(t)])


def _finite(t) -> bool:
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(t))


def _bitwise_equal(a, b) -> bool:
    return jax.tree.structure(a) == jax.tree.structure(b) and all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def _tree(scale, dtype=F32, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "w": jnp.asarray(scale * rng.uniform(0.5, 2.0, (3, 4)) * rng.choice([-1, 1], (3, 4)), dtype),
        "b": jnp.asarray(scale * rng.uniform(0.5, 2.0, (5,)), dtype),
    }


# ==================================================================================================
# 1. Norms
# ==================================================================================================


@pytest.mark.parametrize("scale", [HUGE, TINY, 3e19, 1e-19, 1.0])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.complex64])
def test_global_norm_is_the_true_norm(scale, dtype):
    t = _tree(scale, dtype)
    if dtype == jnp.complex64:
        t = jax.tree.map(lambda x: x * jnp.asarray(0.6 + 0.8j, dtype), t)
    want = _np_norm(t)
    for got in (tree.global_norm(t), tree.norm(t), tree_l2_norm(t), jax.jit(tree.global_norm)(t)):
        assert got.dtype == jnp.float32
        np.testing.assert_allclose(float(got), want, rtol=2e-6)
    squared = float(tree.norm(t, squared=True))
    top, tiny = float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny)
    if want**2 > top:
        assert squared == np.inf
    elif want**2 < tiny:
        assert 0.0 <= squared < tiny  # rounded to a subnormal or 0
    else:
        np.testing.assert_allclose(squared, want**2, rtol=5e-6)


def test_global_norm_mixed_dtypes_and_float64():
    t = {"a": jnp.full((3,), TINY, F32), "b": jnp.full((4,), TINY, jnp.float64), "c": jnp.full((2,), 2.0 * HUGE, F32)}
    np.testing.assert_allclose(float(tree.global_norm(t)), _np_norm(t), rtol=1e-7)
    small = {"a": jnp.full((3,), TINY, F32), "b": jnp.full((4,), TINY, jnp.float64)}  # the float32 part matters
    np.testing.assert_allclose(float(tree.global_norm(small)), _np_norm(small), rtol=1e-7)
    for s in (1e200, 1e-200):  # float64's own limits
        x = jnp.asarray([3.0 * s, 4.0 * s])
        np.testing.assert_allclose(float(l2_norm(x)), 5.0 * s, rtol=1e-15)


def test_norms_keep_inf_nan_and_zero():
    assert float(tree.global_norm({"a": jnp.asarray([jnp.inf, 1.0], F32)})) == np.inf
    assert np.isnan(float(tree.global_norm({"a": jnp.asarray([jnp.nan, HUGE], F32)})))
    assert float(tree.global_norm({"a": jnp.zeros(3, F32)})) == 0.0
    assert float(l2_norm(jnp.asarray([3e38, 3e38], F32))) == np.inf  # the norm itself exceeds float32: inf
    assert float(tree.global_norm({})) == 0.0


def test_l2_norm_is_the_plain_formula_bit_for_bit_for_ordinary_magnitudes():
    rng = np.random.default_rng(1)
    for dtype in (jnp.float32, jnp.bfloat16, jnp.float64, jnp.complex64):
        for shape in [(), (7,), (3, 5), (2, 3, 4)]:
            x = rng.normal(size=shape) * 10.0 ** rng.uniform(-8, 8)
            if dtype == jnp.complex64:
                x = x + 1j * rng.normal(size=shape)
            x = jnp.asarray(x, dtype)
            sq = tree.abs_sq(tree.up(x))
            assert np.array_equal(l2_norm(x), jnp.sqrt(jnp.sum(sq)))
            assert np.array_equal(l2_norm(x, mean=True), jnp.sqrt(jnp.mean(sq)))
            if len(shape) >= 2:
                by_unit = jnp.sqrt(jnp.sum(sq, axis=0, keepdims=True))
                assert np.array_equal(l2_norm(x, axis=(0,), keepdims=True), by_unit)
    leaves = [jnp.asarray(rng.normal(size=(4, 3)), F32), jnp.asarray(rng.normal(size=(4,)), F32)]
    plain = jnp.sqrt(jnp.sum(tree.abs_sq(leaves[0])) + jnp.sum(tree.abs_sq(leaves[1])))
    assert np.array_equal(tree.global_norm(leaves), plain)


@pytest.mark.parametrize("value", [HUGE, TINY, 0.0, 3.0])
def test_norms_of_scalar_and_size_one_leaves_under_jit(value):
    # XLA rewrites (x c)(x c) as (x x)(c c) for a scalar x and a constant c; the scaling must survive that
    for shape in [(), (1,), (1, 1)]:
        x = jnp.full(shape, value, F32)
        assert float(jax.jit(l2_norm)(x)) == pytest.approx(value, rel=1e-6)
        assert float(jax.jit(lambda v: l2_norm(v, mean=True))(x)) == pytest.approx(value, rel=1e-6)
        t = {"s": x, "v": jnp.full((3,), value, F32)}
        assert float(jax.jit(tree.global_norm)(t)) == pytest.approx(2 * value, rel=1e-6)
        d = jax.jit(jax.grad(lambda v: l2_norm(v)))(x)
        assert float(jnp.sum(d)) == (1.0 if value else 0.0)


def test_l2_norm_per_unit_huge_and_tiny():
    x = jnp.asarray([[HUGE, TINY], [HUGE, 2 * TINY], [0.0, 2 * TINY]], F32)
    np.testing.assert_allclose(np.asarray(l2_norm(x, axis=0)), [np.sqrt(2) * HUGE, 3 * TINY], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(l2_norm(x, axis=0, mean=True)), [np.sqrt(2 / 3) * HUGE, np.sqrt(3) * TINY],
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(leaves_norm([x[:, :1], x[:, 1:]], F32, batched=True)),
                               [HUGE, HUGE, 2 * TINY], rtol=1e-6)  # per row: sqrt(HUGE^2 + TINY^2) = HUGE


@pytest.mark.parametrize("scale", [HUGE, TINY])
def test_clip_by_global_norm_huge_and_tiny(scale):
    g = _tree(scale)
    max_norm = 2.0 * scale / 10  # below the norm: clipping happens
    tx = gradtx.clip_by_global_norm(max_norm)
    u, _ = tx.update(g, tx.init(None))
    np.testing.assert_allclose(_np_norm(u), max_norm, rtol=1e-5)  # before issue 15, huge: all zeros
    np.testing.assert_allclose(_flat(u) / max_norm, _flat(g) / _np_norm(g), rtol=1e-5, atol=1e-7)  # same direction
    assert bool(tx.clips(g))


@pytest.mark.parametrize("scale", [HUGE, TINY])
def test_block_norms_huge_and_tiny(scale):
    g, p = _tree(scale, seed=1), _tree(1.0, seed=2)
    # clip_by_block_rms: each leaf's rms ends at the threshold
    thr = scale / 10
    u, _ = gradtx.clip_by_block_rms(thr).update(g, None)
    for leaf in jax.tree.leaves(u):
        np.testing.assert_allclose(np.sqrt(np.mean(np.asarray(leaf, np.float64) ** 2)), thr, rtol=1e-5)
    # normalize_by_update_norm: unit global norm
    u, _ = gradtx.normalize_by_update_norm(eps=0.0).update(g, None)
    np.testing.assert_allclose(_np_norm(u), 1.0, rtol=1e-5)
    # the trust ratio (LARS/LAMB): each leaf moves by the norm of its parameters
    u, _ = gradtx.scale_by_trust_ratio().update(g, None, p)
    for ul, pl in zip(jax.tree.leaves(u), jax.tree.leaves(p)):
        np.testing.assert_allclose(_np_norm(ul), _np_norm(pl), rtol=1e-5)
    u, _ = gradtx.scale_by_trust_ratio().update(p, None, g)  # huge or tiny parameters
    for ul, gl in zip(jax.tree.leaves(u), jax.tree.leaves(g)):
        np.testing.assert_allclose(_np_norm(ul), _np_norm(gl), rtol=1e-5)
    # adaptive_grad_clip: unit norms of g are clipped to 0.01 |p| per unit
    u, _ = gradtx.adaptive_grad_clip(0.01).update(g, None, p)
    assert _finite(u) and 0 < _np_norm(u) <= 0.01 * _np_norm(p) * 1.0001
    # per-example clipping (a batch of 5 examples of the 3x4 leaf)
    clipped, n = gradtx.per_example_global_norm_clip([g["w"][:, :2].T, g["w"][:, 2:].T], 1.0)
    assert int(n) == (2 if scale == HUGE else 0)
    assert _finite(clipped) and _np_norm(clipped) > 0


def test_lamb_and_lars_steps_with_a_huge_gradient_are_finite_and_sized_by_the_params():
    p = _tree(1.0, seed=3)
    g = jax.tree.map(lambda x: x * HUGE, _tree(1.0, seed=4))
    for tx in (gradtx.lars(0.1), gradtx.fromage(0.1)):
        u, _ = tx.update(g, tx.init(p), p)
        assert _finite(u) and _np_norm(u) > 0
        for ul, pl in zip(jax.tree.leaves(u), jax.tree.leaves(p)):
            assert _np_norm(ul) <= 0.11 * _np_norm(pl) * 1.0001


def test_monitor_norms_huge():
    params = _tree(1.0)
    g = _tree(HUGE, seed=5)
    tx = monitored(gradtx.sgd(1e-22), effective_lr=False)
    _, state = tx.update(g, tx.init(params), params)
    m = metrics(state)
    np.testing.assert_allclose(float(m["grad_norm"]), _np_norm(g), rtol=1e-6)  # before: inf
    np.testing.assert_allclose(float(m["update_norm"]), 1e-22 * _np_norm(g), rtol=1e-5)
    np.testing.assert_allclose(float(m["update_param_ratio"]), 1e-22 * _np_norm(g) / _np_norm(params), rtol=1e-5)


def test_spike_guard_sees_a_huge_gradient_norm():
    # the norm of a 1e20 gradient is finite: the guard skips it as a spike (before: inf, a non-finite step)
    from gradtx.diagnostics import spike_guard

    params = {"w": jnp.zeros(3, F32)}
    tx = spike_guard(gradtx.sgd(0.1), warmup_steps=3)
    state = tx.init(params)
    for k in range(6):
        _, state = tx.update({"w": jnp.asarray([1.0, -1.0, 0.5 + 0.01 * k], F32)}, state, params)
    u, state = tx.update({"w": jnp.asarray([HUGE, 0.0, 0.0], F32)}, state, params)
    np.testing.assert_array_equal(np.asarray(u["w"]), 0.0)
    assert np.isfinite(float(state.last_grad_norm_z)) and float(state.last_grad_norm_z) > 1e10


def test_safe_norm_and_rms_huge_and_tiny():
    for s in (HUGE, TINY):
        x = jnp.asarray([3 * s, 4 * s], F32)
        np.testing.assert_allclose(float(safe_norm(x, 0.0)), 5 * s, rtol=1e-6)
        np.testing.assert_allclose(float(safe_norm(x[None], 0.0, 2, 1)[0]), 5 * s, rtol=1e-6)
        np.testing.assert_allclose(float(safe_root_mean_squares(x, 0.0)), np.sqrt(12.5) * s, rtol=1e-6)


def test_norm_derivatives_at_zero_are_finite():
    z = {"a": jnp.zeros(3, F32), "b": jnp.zeros((2, 2), F32)}
    for fn in (tree.global_norm, lambda t: l2_norm(t["a"]), lambda t: l2_norm(t["b"], axis=0).sum(),
               lambda t: l2_norm(t["b"], mean=True)):
        d = jax.grad(fn)(z)
        assert _finite(d) and np.all(_flat(d) == 0)
    for s in (1e-10, 1.0, 1e10):  # d||x||^2/dx = 2 x
        x = {"a": jnp.asarray([3 * s, 4 * s], F32)}
        np.testing.assert_allclose(np.asarray(jax.grad(lambda t: tree.norm(t, squared=True))(x)["a"]), [6 * s, 8 * s],
                                   rtol=1e-6)
    for s in (HUGE, TINY, 1.0):  # d||x||/dx = x / ||x||
        x = jnp.asarray([3 * s, 4 * s], F32)
        np.testing.assert_allclose(np.asarray(jax.grad(l2_norm)(x)), [0.6, 0.8], rtol=1e-6)

    def clipped(max_norm):  # the hypergradient of clip_by_global_norm for an all-zero gradient
        return jnp.sum(gradtx.clip_by_global_norm(max_norm).update(z, None)[0]["a"])

    assert float(jax.grad(clipped)(1.0)) == 0.0


def test_safe_sqrt_scale_ratio_times_inverse():
    x = jnp.asarray([0.0, 2.0, np.inf, np.nan])
    np.testing.assert_array_equal(np.asarray(safe_sqrt(x)), np.sqrt(np.asarray(x)))
    np.testing.assert_array_equal(np.asarray(jax.vmap(jax.grad(safe_sqrt))(x[:2])), [0.0, 0.5 / np.sqrt(2)])
    r = scale_ratio(jnp.asarray([0.0, 1.0, 3.0, 1.0]), jnp.asarray([0.0, np.inf, 2.0, np.nan]))
    np.testing.assert_array_equal(np.asarray(r), [0.0, np.nan, 1.5, np.nan])
    t = times_inverse(jnp.asarray([0.0, 1.0, 3.0]), jnp.asarray([0.0, np.inf, 4.0]))
    np.testing.assert_array_equal(np.asarray(t), [0.0, np.nan, 1.5])
    d = jax.grad(lambda den: scale_ratio(0.0, den))(0.0)
    assert float(d) == 0.0


# ==================================================================================================
# 2. Overflowed second moments: skipped under a guard, visible without one
# ==================================================================================================

SQUARED = {
    "adam": lambda: gradtx.adam(0.1),
    "adamw": lambda: gradtx.adamw(0.1),
    "nadam": lambda: gradtx.nadam(0.1),
    "amsgrad": lambda: gradtx.amsgrad(0.1),
    "radam": lambda: gradtx.radam(0.1),
    "adabelief": lambda: gradtx.adabelief(0.1),
    "yogi": lambda: gradtx.yogi(0.1),
    "adan": lambda: gradtx.adan(0.1),
    "lamb": lambda: gradtx.lamb(0.1),
    "novograd": lambda: gradtx.novograd(0.1),
    "rmsprop": lambda: gradtx.rmsprop(0.1),
    "rmsprop_centered": lambda: gradtx.rmsprop(0.1, centered=True),
    "adagrad": lambda: gradtx.adagrad(0.1),
    "adafactor": lambda: gradtx.adafactor(0.1, min_dim_size_to_factor=2),  # w factored, b not
    "sm3": lambda: gradtx.sm3(0.1),
    "adadelta": lambda: gradtx.adadelta(1.0),
}

PARAMS = _tree(1.0, seed=10)
GRADS = [_tree(1.0, seed=20 + k) for k in range(4)]
BAD = jax.tree.map(lambda x: x, GRADS[0])
BAD["w"] = BAD["w"].at[1, 2].set(HUGE)
BAD["b"] = BAD["b"].at[0].set(-HUGE)


def _train(tx, grads, params=PARAMS):
    state = tx.init(params)
    history = [params]
    for g in grads:
        u, state = tx.update(g, state, params)
        params = gradtx.apply_updates(params, u)
        history.append(params)
    return history, state


@pytest.mark.parametrize("name", sorted(SQUARED))
def test_apply_if_finite_skips_the_overflowing_step_as_if_it_never_happened(name):
    guarded = gradtx.apply_if_finite(SQUARED[name](), max_consecutive_errors=3)
    history, state = _train(guarded, [GRADS[0], BAD, GRADS[1], GRADS[2], GRADS[3]])
    assert _bitwise_equal(history[2], history[1])  # the bad step left the parameters unchanged
    assert int(state.total_notfinite) == 1 and int(state.notfinite_count) == 0
    clean, clean_state = _train(SQUARED[name](), [GRADS[0], GRADS[1], GRADS[2], GRADS[3]])
    assert _finite(history[-1])
    assert _bitwise_equal(history[-1], clean[-1])  # exactly the run without the bad step
    assert _bitwise_equal(state.inner_state, clean_state)


@pytest.mark.parametrize("name", sorted(SQUARED))
def test_without_a_guard_an_overflowed_second_moment_gives_nan_updates(name):
    tx = SQUARED[name]()
    state = tx.init(PARAMS)
    _, state = tx.update(GRADS[0], state, PARAMS)
    _, state = tx.update(BAD, state, PARAMS)
    u_next, state = tx.update(GRADS[1], state, PARAMS)
    # before issue 15: the overflowed coordinates got updates of exactly 0 forever, and everything looked finite
    assert not _finite(u_next)
    assert np.isnan(np.asarray(u_next["w"])[1, 2])


def test_adamax_has_no_square_to_overflow():
    tx = gradtx.adamax(0.1)
    history, _ = _train(tx, [GRADS[0], BAD, GRADS[1]])
    assert _finite(history[-1])
    _, state = _train(gradtx.apply_if_finite(gradtx.adamax(0.1), 3), [GRADS[0], BAD, GRADS[1]])
    assert int(state.total_notfinite) == 0


def test_apply_if_finite_does_not_count_entries_that_were_already_not_finite():
    # a state leaf that holds NaN by design (monitored's metrics start at NaN) does not make every step "bad"
    tx = gradtx.apply_if_finite(monitored(gradtx.adam(0.1), effective_lr=False), 2)
    _, state = _train(tx, GRADS[:3])
    assert int(state.total_notfinite) == 0


def test_multisteps_skip_not_finite_skips_a_mini_step_whose_square_overflows():
    skip, info = gradtx.skip_not_finite({"w": jnp.asarray([1.0, HUGE, np.nan], F32), "b": jnp.ones(2, F32)}, 0, None)
    assert bool(skip) and int(info["num_not_finite"]) == 2
    skip, info = gradtx.skip_not_finite({"w": jnp.asarray([1.0, 1e18], F32)}, 0, None)
    assert not bool(skip) and int(info["num_not_finite"]) == 0

    def run(grads):
        return _train(gradtx.MultiSteps(gradtx.adam(0.1), 2, should_skip_update_fn=gradtx.skip_not_finite), grads)

    with_bad, _ = run([GRADS[0], BAD, GRADS[1], GRADS[2], GRADS[3]])
    without, _ = run([GRADS[0], GRADS[1], GRADS[2], GRADS[3]])
    assert _bitwise_equal(with_bad[-1], without[-1])


# ==================================================================================================
# 3. eps = 0 and a gradient coordinate that is exactly 0
# ==================================================================================================

EPS0 = {
    "scale_by_adam": lambda: gradtx.scale_by_adam(eps=0.0),
    "scale_by_adam_nesterov": lambda: gradtx.scale_by_adam(eps=0.0, nesterov=True),
    "scale_by_adamax": lambda: gradtx.scale_by_adamax(eps=0.0),
    "scale_by_amsgrad": lambda: gradtx.scale_by_amsgrad(eps=0.0),
    "scale_by_belief": lambda: gradtx.scale_by_belief(eps=0.0, eps_root=0.0),
    "scale_by_yogi": lambda: gradtx.scale_by_yogi(eps=0.0, initial_accumulator_value=0.0),
    "scale_by_radam": lambda: gradtx.scale_by_radam(eps=0.0, b2=0.9),  # rectified at the 6th step
    "scale_by_adan": lambda: gradtx.scale_by_adan(eps=0.0),
    "scale_by_rms": lambda: gradtx.scale_by_rms(eps=0.0),
    "scale_by_rms_outside": lambda: gradtx.scale_by_rms(eps=0.0, eps_in_sqrt=False),
    "scale_by_rms_mean": lambda: gradtx.scale_by_rms(decay=None, eps=0.0),
    "scale_by_rss": lambda: gradtx.scale_by_rss(initial_accumulator_value=0.0, eps=0.0),
    "scale_by_stddev": lambda: gradtx.scale_by_stddev(eps=0.0),
    "scale_by_factored_rms": lambda: gradtx.scale_by_factored_rms(epsilon=0.0, min_dim_size_to_factor=2),
    "scale_by_sm3": lambda: gradtx.scale_by_sm3(eps=0.0),
    "scale_by_novograd": lambda: gradtx.scale_by_novograd(eps=0.0),
    "scale_by_distance_over_gradients": lambda: gradtx.scale_by_distance_over_gradients(eps=0.0),
}


@pytest.mark.parametrize("name", sorted(EPS0))
def test_eps_zero_and_a_zero_gradient_give_a_zero_update(name):
    tx = EPS0[name]()
    params = _tree(1.0, seed=30)
    state = tx.init(params)
    for k in range(6):  # column 0 of w and all of b: gradient exactly 0 at every step
        g = {"w": GRADS[k % 4]["w"].at[:, 0].set(0.0), "b": jnp.zeros(5, F32)}
        u, state = tx.update(g, state, params)
        assert _finite(u), f"step {k + 1}: {u}"  # before issue 15: NaN (0/0) at the zero coordinates
        np.testing.assert_array_equal(np.asarray(u["w"][:, 0]), 0.0)
        np.testing.assert_array_equal(np.asarray(u["b"]), 0.0)
        assert np.all(np.asarray(u["w"][:, 1:]) != 0.0)


def test_normalize_by_update_norm_with_eps_zero_and_a_zero_gradient():
    u, _ = gradtx.normalize_by_update_norm(eps=0.0).update({"a": jnp.zeros(3, F32)}, None)
    np.testing.assert_array_equal(np.asarray(u["a"]), 0.0)


def test_nonzero_denominators_are_unchanged():
    # the guards add selects only: nonzero denominators give the plain formula, bit for bit (Adam: m_hat/(sqrt+eps))
    g = GRADS[0]["w"]
    u, _ = gradtx.scale_by_adam().update({"w": g}, gradtx.scale_by_adam().init({"w": g}))
    m, v = 0.1 * g, 0.001 * g * g
    bc1, bc2 = tree.debias(0.9, 1, F32), tree.debias(0.999, 1, F32)
    want = (m / bc1) / (jnp.sqrt(v / bc2) + jnp.float32(1e-8))
    np.testing.assert_allclose(np.asarray(u["w"]), np.asarray(want), rtol=1e-6)
    u, _ = gradtx.scale_by_rms(eps=0.0).update({"w": g}, gradtx.scale_by_rms(eps=0.0).init({"w": g}))
    assert np.array_equal(np.asarray(u["w"]), np.asarray(jax.lax.rsqrt(jnp.float32(0.1) * (g * g)) * g))


# ==================================================================================================
# 4. Hypergradients with a gradient coordinate exactly 0 (eps_root = 0), against finite differences
# ==================================================================================================

HYPER = {
    "adam": (lambda h: gradtx.adam(h["lr"], b1=h["b1"], b2=h["b2"], eps=h["eps"]), dict(lr=0.05, b1=0.9, b2=0.99,
                                                                                          eps=1e-3)),
    "adamw": (lambda h: gradtx.adamw(h["lr"], b2=h["b2"], weight_decay=h["wd"]), dict(lr=0.05, b2=0.99, wd=0.1)),
    "nadam": (lambda h: gradtx.nadam(h["lr"], b1=h["b1"], eps=h["eps"]), dict(lr=0.05, b1=0.8, eps=1e-3)),
    "amsgrad": (lambda h: gradtx.amsgrad(h["lr"], b2=h["b2"]), dict(lr=0.05, b2=0.99)),
    "adabelief": (lambda h: gradtx.adabelief(h["lr"], b1=h["b1"], eps=h["eps"], eps_root=0.0),
                  dict(lr=0.05, b1=0.9, eps=1e-3)),
    "rmsprop": (lambda h: gradtx.rmsprop(h["lr"], decay=h["decay"], eps=h["eps"]), dict(lr=0.01, decay=0.9, eps=1e-3)),
    "rmsprop_eps_outside": (lambda h: gradtx.chain(gradtx.scale_by_rms(h["decay"], h["eps"], eps_in_sqrt=False),
                                                   gradtx.scale_by_learning_rate(h["lr"])),
                            dict(lr=0.01, decay=0.9, eps=1e-3)),
    "adagrad": (lambda h: gradtx.adagrad(h["lr"], initial_accumulator_value=0.0, eps=h["eps"]), dict(lr=0.1, eps=1e-3)),
    "clip_sgd": (lambda h: gradtx.chain(gradtx.clip_by_global_norm(h["max_norm"]), gradtx.sgd(h["lr"])),
                 dict(lr=0.1, max_norm=0.5)),
    "lamb": (lambda h: gradtx.lamb(h["lr"], b2=h["b2"], eps=h["eps"]), dict(lr=0.02, b2=0.99, eps=1e-3)),
    "lars": (lambda h: gradtx.lars(h["lr"], weight_decay=h["wd"]), dict(lr=0.02, wd=1e-3)),
    "radam": (lambda h: gradtx.radam(h["lr"], b2=h["b2"], eps=h["eps"]), dict(lr=0.05, b2=0.9, eps=1e-3)),
}

_TARGET = jnp.asarray([[0.5, -1.0, 2.0], [1.0, 0.25, -0.5]])
_CURV = jnp.asarray([[0.0, 1.0, 2.0], [1.5, 0.5, 0.0]])  # two coordinates with gradient exactly 0 at every step


def _loss(p):
    d = p["w"] - _TARGET
    return jnp.sum(_CURV * (0.5 * d**2 + d**4 / 12)) + 0.5 * jnp.sum((p["b"] - 1.0) ** 2)


def _loss_after(make, h, steps=6):
    """The loss after ``steps`` steps (radam: rectified at the 6th with b2 = 0.9); b[2] sits at its optimum, so
    its gradient is exactly 0 at every step, as are those of w[0, 0] and w[1, 2]."""
    tx = make(h)
    params = {"w": jnp.zeros((2, 3)), "b": jnp.asarray([0.0, 0.5, 1.0])}
    state = tx.init(params)
    for _ in range(steps):
        u, state = tx.update(jax.grad(_loss)(params), state, params)
        params = gradtx.apply_updates(params, u)
    return _loss(params)


@pytest.mark.parametrize("name", sorted(HYPER))
def test_hypergradients_are_finite_and_match_finite_differences(name):
    make, h0 = HYPER[name]
    h0 = {k: jnp.asarray(v, jnp.float64) for k, v in h0.items()}
    grad = jax.grad(lambda h: _loss_after(make, h))(h0)
    for k, v in grad.items():
        assert np.isfinite(float(v)), f"d loss / d {k} = {v}"  # before issue 15: NaN from d sqrt(0)
    scale = max(1.0, abs(float(_loss_after(make, h0))))
    for k in h0:
        step = 1e-4 * float(h0[k])  # central differences: truncation ~1e-8 relative, rounding ~1e-12 scale / step
        up_, down = dict(h0), dict(h0)
        up_[k], down[k] = h0[k] + step, h0[k] - step
        fd = (float(_loss_after(make, up_)) - float(_loss_after(make, down))) / (2 * step)
        np.testing.assert_allclose(float(grad[k]), fd, rtol=1e-5, atol=1e-10 * scale / step, err_msg=f"d loss / d {k}")
