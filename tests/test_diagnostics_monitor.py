"""gradtx.diagnostics.monitor: metrics in the state, step_count, current_hyperparams (closed forms)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx.diagnostics.monitor import MonitoredState, current_hyperparams, metrics, monitored, step_count


def _params(dtype=jnp.float32):
    return {
        "dense": {"w": jnp.asarray(np.linspace(-1.0, 2.0, 12).reshape(3, 4), dtype), "b": jnp.full([4], 0.5, dtype)},
        "head": [jnp.asarray([1.0, -2.0, 3.0], dtype)],
    }


def _grads(seed, dtype=jnp.float32, scale=1.0):
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda p: jnp.asarray(scale * rng.standard_normal(p.shape), dtype), _params(dtype))


def _np(tree):
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def _run(tx, grads_list, params, jit=False):
    """Feed the gradients through ``tx`` (params held fixed); return the list of updates and the final state.

    Eager by default: the primitives compile once for the whole file (each jitted variant would compile anew).
    """
    update = jax.jit(tx.update) if jit else tx.update
    state = tx.init(params)
    outs = []
    for g in grads_list:
        u, state = update(g, state, params)
        outs.append(u)
    return outs, state


def _assert_same(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# --------------------------------------------------------------------------------------------------
# Construction errors.
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "10", None])
def test_history_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match=r"^monitored\(history=.*\): history must be a whole number >= 1"):
        monitored(gradtx.sgd(0.1), history=bad)


def test_flags_must_be_bools():
    with pytest.raises(ValueError, match=r"monitored\(effective_lr='yes'\): effective_lr must be True or False"):
        monitored(gradtx.sgd(0.1), effective_lr="yes")
    with pytest.raises(ValueError, match=r"monitored\(per_group=1\): per_group must be True or False"):
        monitored(gradtx.sgd(0.1), per_group=1)


def test_metrics_and_step_count_need_a_state_that_has_them():
    with pytest.raises(ValueError, match="metrics: the state holds no MonitoredState"):
        metrics(gradtx.adam(1e-3).init(_params()))
    with pytest.raises(ValueError, match="step_count: no MonitoredState and no integer scalar field named 'count'"):
        step_count(gradtx.sgd(0.1).init(_params()))


# --------------------------------------------------------------------------------------------------
# Closed forms.
# --------------------------------------------------------------------------------------------------


def test_sgd_closed_forms():
    """SGD with lr = 2^-2: u = -lr g exactly, so ||u|| = lr ||g|| and |u_i| / |g_i| = lr bit for bit; the norms
    and the per-group ratios equal NumPy's."""
    lr = 0.25
    params = _params()
    grads = [_grads(s) for s in range(3)]
    grads[2] = jax.tree.map(lambda g: g.at[0].set(0.0), grads[2])  # zero gradients are left out of |u|/|g|
    _, state = _run(monitored(gradtx.sgd(lr), history=5), grads, params)
    m = metrics(state)
    g = grads[-1]
    assert m["step"] == 3 and m["step"].dtype == jnp.int32
    assert m["update_norm"] == np.float32(lr) * m["grad_norm"]
    np.testing.assert_allclose(m["grad_norm"], np.linalg.norm(_np(g)), rtol=1e-6)
    np.testing.assert_allclose(m["param_norm"], np.linalg.norm(_np(params)), rtol=1e-6)
    for key in ("effective_lr_min", "effective_lr_median", "effective_lr_max"):
        assert m[key] == np.float32(lr), key
    np.testing.assert_allclose(
        m["update_param_ratio"], lr * np.linalg.norm(_np(g)) / np.linalg.norm(_np(params)), rtol=1e-6
    )
    for group in ("dense", "head"):
        want = lr * np.linalg.norm(_np(g[group])) / np.linalg.norm(_np(params[group]))
        np.testing.assert_allclose(m[f"update_param_ratio/{group}"], want, rtol=1e-6)
    np.testing.assert_allclose(
        m["history/update_param_ratio/head"][-3:],
        [lr * np.linalg.norm(_np(gi["head"])) / np.linalg.norm(_np(params["head"])) for gi in grads],
        rtol=1e-6,
    )
    assert "clipped" not in m and "clip_fraction" not in m and state.clipped_steps is None  # no clipping block


def test_groups_of_a_sequence_and_no_params():
    params = [jnp.full([3, 4], 2.0), jnp.ones(4), jnp.ones(3)]
    grads = [jnp.ones([3, 4]), jnp.ones(4), jnp.zeros(3)]
    tx = monitored(gradtx.sgd(0.5), history=2)
    state = tx.init(params)
    _, state = tx.update(grads, state, params)
    m = metrics(state)
    np.testing.assert_allclose(m["update_param_ratio/0"], 0.5 * np.sqrt(12) / np.sqrt(48), rtol=1e-6)
    np.testing.assert_allclose(m["update_param_ratio/1"], 0.5 * np.sqrt(4) / np.sqrt(4), rtol=1e-6)
    assert m["update_param_ratio/2"] == 0.0
    _, state = tx.update(grads, state)  # params=None: the param metrics are NaN
    m = metrics(state)
    assert np.isnan(m["param_norm"]) and np.isnan(m["update_param_ratio"]) and np.isnan(m["update_param_ratio/1"])
    np.testing.assert_allclose(m["update_norm"], 0.5 * np.sqrt(16), rtol=1e-6)


def test_adam_effective_lr_is_lr_over_sigma():
    """Adam with b1 = 0: m_hat = g, so |u_i| / |g_i| = lr / (sqrt(v_hat_i) + eps) at every step; with the default
    b1 the first step has m_hat = g too and v_hat = g^2: lr / (|g_i| + eps). Checked against NumPy."""
    lr, b2, eps = 1e-2, 0.99, 1e-3
    params = _params()
    grads = [_grads(s) for s in range(4)]
    tx = monitored(gradtx.adam(lr, b1=0.0, b2=b2, eps=eps))
    _, state = _run(tx, grads, params)
    nu = np.zeros_like(_np(params))
    for k, g in enumerate(grads, start=1):
        gv = _np(g)
        nu = b2 * nu + (1 - b2) * gv**2
        sigma = np.sqrt(nu / (1 - b2**k)) + eps
        want = lr / sigma
        hist = metrics(state)
        np.testing.assert_allclose(hist["history/effective_lr_min"][k - 1 - len(grads)], want.min(), rtol=2e-5)
        np.testing.assert_allclose(hist["history/effective_lr_median"][k - 1 - len(grads)], np.median(want), rtol=2e-5)
        np.testing.assert_allclose(hist["history/effective_lr_max"][k - 1 - len(grads)], want.max(), rtol=2e-5)

    g = grads[0]
    _, state = _run(monitored(gradtx.adam(lr, eps=eps)), [g], params)
    want = lr / (np.abs(_np(g)) + eps)  # first step: lr / (|g| + eps) * |g| / |g|
    m = metrics(state)
    np.testing.assert_allclose(
        [m["effective_lr_min"], m["effective_lr_median"], m["effective_lr_max"]],
        [want.min(), np.median(want), want.max()],
        rtol=2e-5,
    )


def _times_params(u, p):
    return jax.tree.map(lambda x, c: x * c, u, p)


_SCALE_BY_PARAMS = monitored(gradtx.stateless(_times_params), per_group=False)  # |u_i| / |g_i| = |p_i|
_SCALE_BY_PARAMS_JIT = jax.jit(_SCALE_BY_PARAMS.update)


@pytest.mark.parametrize("zeros", [1, 2])
@pytest.mark.parametrize(("dtype", "size"), [(jnp.float32, 12), (jnp.float32, 6002), (jnp.float64, 6002)])
def test_effective_lr_median_is_exact(dtype, size, zeros):
    """|u_i| / |g_i| equal to chosen factors (ties; odd and even counts; zero gradients left out): min, median
    and max equal NumPy's exactly, in float32 and float64. Small trees take the sort, large ones (> 4096
    elements, under jit) the radix select (31-bit keys for float32, 63-bit for float64)."""
    rng = np.random.default_rng(size + zeros)
    factors = np.asarray(np.round(rng.uniform(0.1, 4.0, size), 1), np.dtype(dtype))  # rounded: ties
    factors[:zeros] = 1e30  # their gradients are 0: left out
    grad = rng.choice([-1.0, 1.0], size) * 2.0 ** rng.integers(-3, 4, size)  # powers of 2: exact ratios
    grad[:zeros] = 0.0
    g = {"a": jnp.asarray(grad[:3], dtype), "b": jnp.asarray(grad[3:], dtype)}
    params = {"a": jnp.asarray(factors[:3]), "b": jnp.asarray(factors[3:])}
    update = _SCALE_BY_PARAMS_JIT if size > 4096 else _SCALE_BY_PARAMS.update
    _, state = update(g, _SCALE_BY_PARAMS.init(params), params)
    m = metrics(state)
    kept = factors[zeros:]
    assert m["effective_lr_min"].dtype == np.dtype(dtype)
    assert m["effective_lr_min"] == kept.min()
    assert m["effective_lr_max"] == kept.max()
    assert m["effective_lr_median"] == np.median(kept)


def test_effective_lr_without_nonzero_gradient_is_nan():
    params = _params()
    zeros = jax.tree.map(jnp.zeros_like, params)
    _, state = _run(monitored(gradtx.adam(1e-3)), [zeros], params)
    m = metrics(state)
    assert all(np.isnan(m[k]) for k in ("effective_lr_min", "effective_lr_median", "effective_lr_max"))
    assert m["grad_norm"] == 0.0 and m["update_norm"] == 0.0


def test_ring_buffer_holds_the_last_values_in_order():
    history = 4
    params = _params()
    scales = [float(k) for k in range(1, history + 4)]  # history + 3 steps
    grads = [_grads(0, scale=s) for s in scales]
    tx = monitored(gradtx.sgd(0.5), history=history)
    state = tx.init(params)
    m = metrics(state)
    assert m["step"] == 0 and np.isnan(m["grad_norm"]) and np.all(np.isnan(m["history/grad_norm"]))
    norms = [float(np.linalg.norm(_np(g).astype(np.float32))) for g in grads]
    update = tx.update
    for k, g in enumerate(grads, start=1):
        _, state = update(g, state, params)
        m = metrics(state)
        if k == 2:  # not filled yet: NaN first, then oldest to latest
            np.testing.assert_allclose(m["history/grad_norm"][2:], norms[:2], rtol=1e-6)
            assert np.all(np.isnan(m["history/grad_norm"][:2]))
            np.testing.assert_array_equal(m["history/step"], [np.nan, np.nan, 1.0, 2.0])
    np.testing.assert_allclose(m["history/grad_norm"], norms[-history:], rtol=1e-6)
    np.testing.assert_allclose(m["history/update_norm"], 0.5 * np.asarray(norms[-history:]), rtol=1e-6)
    np.testing.assert_array_equal(m["history/step"], np.arange(len(grads) - history + 1, len(grads) + 1))
    assert m["grad_norm"] == m["history/grad_norm"][-1]


def test_metric_dtype_follows_the_params():
    for dtype, want in ((jnp.bfloat16, np.float32), (jnp.float32, np.float32), (jnp.float64, np.float64)):
        state = monitored(gradtx.sgd(0.1)).init(_params(dtype))
        assert all(v.dtype == want for v in metrics(state).values() if v.dtype != jnp.int32)


def test_strict_dtype_promotion_and_low_precision_params():
    """bfloat16 params under strict promotion (jit): updates keep bf16, metrics are float32, and the update is
    tx's bit for bit."""
    params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), _params())
    grads = jax.tree.map(lambda g: g.astype(jnp.bfloat16), _grads(0, scale=3.0))
    tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(1e-2))
    mtx = monitored(tx, history=2)
    with jax.numpy_dtype_promotion("strict"):
        u, state = jax.jit(mtx.update)(grads, mtx.init(params), params)
        want, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    _assert_same(u, want)
    m = metrics(state)
    assert {v.dtype for k, v in m.items() if k != "step"} == {np.dtype(np.float32)}
    assert m["clipped"] == 1.0 and np.isfinite(m["effective_lr_median"])


# --------------------------------------------------------------------------------------------------
# Clipping.
# --------------------------------------------------------------------------------------------------


def _with_norm(norm, seed=0):
    g = _grads(seed)
    return jax.tree.map(lambda x: x * (norm / np.linalg.norm(_np(g))), g)


def test_clip_flag_and_fraction():
    """chain(clip_by_global_norm(1), adam): gradient norms 0.5, 3, 0.5, 3 are clipped 0, 1, 0, 1."""
    tx = monitored(gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(1e-3)), history=4)
    _, state = _run(tx, [_with_norm(n, s) for s, n in enumerate([0.5, 3.0, 0.5, 3.0])], _params())
    m = metrics(state)
    np.testing.assert_array_equal(m["history/clipped"], [0.0, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(m["history/clip_fraction"], [0.0, 0.5, 1 / 3, 0.5])
    assert m["clip_fraction"] == 0.5 and m["clipped"] == 1.0 and state.clipped_steps == 2
    np.testing.assert_allclose(m["grad_norm"], 3.0, rtol=1e-6)  # before the clipping inside tx


@pytest.mark.parametrize("nest", ["flat", "nested", "named"])
def test_clip_is_checked_on_its_own_input(nest):
    """clip(0.5) after scale_by_adam sees Adam's first output g / (|g| + eps) ~ +-1: clipped although every
    gradient is < 0.01; clip(2) after Adam with gradients ~ 10 is not clipped although the input would be."""

    def build(delta):
        adam, clip, lr = gradtx.scale_by_adam(), gradtx.clip(delta), gradtx.scale_by_learning_rate(1e-3)
        if nest == "flat":
            return gradtx.chain(adam, clip, lr)
        if nest == "nested":
            return gradtx.chain(gradtx.chain(adam, gradtx.chain(clip)), lr)
        return gradtx.named_chain(("adam", adam), ("clip", clip), ("lr", lr))

    params = _params()
    small, large = _grads(1, scale=1e-3), _grads(1, scale=10.0)
    _, state = _run(monitored(build(0.5)), [small], params)
    assert metrics(state)["clipped"] == 1.0
    _, state = _run(monitored(build(2.0)), [large], params)
    assert metrics(state)["clipped"] == 0.0


def test_clip_blocks_inside_other_combinators_see_the_combinator_input():
    """Inside MultiSteps / partition the block is evaluated on the combinator's input (documented)."""
    params = _params()
    inner = gradtx.chain(gradtx.clip_by_block_rms(1.0), gradtx.sgd(0.1))
    for tx in (
        gradtx.MultiSteps(inner, 2),
        gradtx.partition({"a": inner, "b": gradtx.sgd(0.1)}, {"dense": "a", "head": "b"}),
    ):
        _, state = _run(monitored(tx), [_grads(0, scale=0.1), _grads(1, scale=10.0)], params)
        np.testing.assert_array_equal(metrics(state)["history/clipped"][-2:], [0.0, 1.0])


def test_clips_methods_match_what_update_does():
    g = {"a": jnp.asarray([0.5, -3.0, 0.0, 0.1]), "b": jnp.asarray(np.linspace(-0.2, 0.3, 12).reshape(3, 4))}
    p = {"a": jnp.ones(4), "b": jnp.ones((3, 4))}
    blocks = [
        gradtx.clip(1.0),
        gradtx.clip(5.0),
        gradtx.clip_by_global_norm(1.0),
        gradtx.clip_by_global_norm(10.0),
        gradtx.clip_by_block_rms(1.0),
        gradtx.clip_by_block_rms(5.0),
        gradtx.adaptive_grad_clip(0.5),
        gradtx.adaptive_grad_clip(10.0),
    ]
    for b in blocks:
        out, _ = b.update(g, b.init(p), p)
        changed = any(bool(jnp.any(x != y)) for x, y in zip(jax.tree.leaves(out), jax.tree.leaves(g)))
        assert bool(b.clips(g, p)) == changed, b


# --------------------------------------------------------------------------------------------------
# Transparency: monitored(tx) is tx, around and inside every combinator.
# --------------------------------------------------------------------------------------------------


def _cases():
    labels = {"dense": "adam", "head": "sgd"}
    return {
        "chain_clip_adam": gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(1e-2)),
        "named_chain": gradtx.named_chain(("clip", gradtx.clip(0.3)), ("adamw", gradtx.adamw(1e-2))),
        "partition": gradtx.partition({"adam": gradtx.adam(1e-2), "sgd": gradtx.sgd(0.1, momentum=0.9)}, labels),
        "masked": gradtx.masked(gradtx.adam(1e-2), {"dense": True, "head": False}),
        "multisteps": gradtx.MultiSteps(gradtx.chain(gradtx.clip(0.5), gradtx.adam(1e-2)), 2),
        "optax_adam": optax.adam(1e-2),
        "optax_chain": optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2)),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_updates_and_inner_state_are_bit_identical(name):
    """monitored(tx) returns tx's updates and keeps tx's state bit for bit (eager; and under jit for the chain,
    which monitored runs block by block; there jit == eager holds for the metrics too)."""
    tx = _cases()[name]
    mtx = monitored(tx, history=3)
    params = _params()
    grads = [_grads(s, scale=s + 0.5) for s in range(4)]
    assert jax.tree.structure(mtx.init(params).inner_state) == jax.tree.structure(tx.init(params))
    want_u, want_s = _run(tx, grads, params)
    got_u, got_s = _run(mtx, grads, params)
    _assert_same(got_u, want_u)
    _assert_same(got_s.inner_state, want_s)
    assert metrics(got_s)["step"] == 4
    if name == "chain_clip_adam":
        jit_u, jit_s = _run(mtx, grads, params, jit=True)
        ref_u, ref_s = _run(tx, grads, params, jit=True)
        _assert_same(jit_u, ref_u)
        _assert_same(jit_s.inner_state, ref_s)
        a, b = metrics(jit_s), metrics(got_s)
        assert set(a) == set(b)
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-6, err_msg=k)


def test_inside_a_chain_metrics_in_jit_and_scan():
    """monitored inside a chain: metrics() finds it and it records what it receives (the clipped gradient);
    lax.scan over the steps, with metrics() read inside the same jit, equals the Python loop."""
    tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), monitored(gradtx.sgd(0.5), history=3))
    params = _params()
    grads = [_with_norm(n, s) for s, n in enumerate([0.5, 4.0, 2.0])]
    _, state = _run(tx, grads, params)
    m = metrics(state)
    np.testing.assert_allclose(m["history/grad_norm"], [0.5, 1.0, 1.0], rtol=1e-6)

    @jax.jit
    def scanned(stacked):
        def body(s, g):
            return tx.update(g, s, params)[1], None

        final, _ = jax.lax.scan(body, tx.init(params), stacked)
        return metrics(final)

    jm = scanned(jax.tree.map(lambda *xs: jnp.stack(xs), *grads))
    assert set(jm) == set(m)
    for k, v in jm.items():
        np.testing.assert_allclose(v, m[k], rtol=1e-6, err_msg=k)


def test_extra_arguments_reach_tx():
    def update(u, s, p=None, **extra):
        return jax.tree.map(lambda x: x * extra["value"], u), s

    tx = monitored(gradtx.GradientTransformation(lambda p: (), update))
    params = _params()
    _, state = tx.update(_grads(0), tx.init(params), params, value=jnp.float32(0.25))
    m = metrics(state)
    assert m["effective_lr_median"] == 0.25 and m["update_norm"] == np.float32(0.25) * m["grad_norm"]


def test_eval_shape_and_map_params():
    tx = monitored(gradtx.adam(1e-3))
    params = _params()
    shapes = jax.eval_shape(tx.init, params)
    assert jax.tree.structure(shapes) == jax.tree.structure(tx.init(params))
    state = tx.init(params)
    shifted = gradtx.tree.map_params(tx, lambda x: x + 1, state)
    _assert_same(shifted.inner_state[0].mu, jax.tree.map(lambda x: x + 1, state.inner_state[0].mu))
    assert isinstance(shifted, MonitoredState) and shifted.last is state.last  # metrics do not mirror the params


# --------------------------------------------------------------------------------------------------
# step_count and current_hyperparams.
# --------------------------------------------------------------------------------------------------


def test_step_count():
    params = _params()
    grads = [_grads(s) for s in range(6)]
    _, s = _run(gradtx.adam(1e-3), grads[:3], params)
    assert step_count(s) == 3
    _, s = _run(gradtx.MultiSteps(gradtx.adam(1e-3), 2), grads, params)
    assert step_count(s) == 3  # emitted updates, not mini-steps
    _, s = _run(gradtx.chain(gradtx.clip(1.0), monitored(gradtx.MultiSteps(gradtx.adam(1e-3), 2))), grads, params)
    assert step_count(s) == 6  # monitored counts its update calls
    _, s = _run(optax.adam(1e-3), grads[:2], params)
    assert step_count(s) == 2
    assert jax.jit(step_count)(s) == 2


def _sched():
    return gradtx.warmup_cosine_decay_schedule(0.0, 1e-2, warmup_steps=3, decay_steps=10, end_value=1e-4)


def test_current_hyperparams_evaluates_schedules_where_last_used():
    sched = _sched()
    tx = gradtx.adam(sched, b1=0.8)
    params = _params()
    state = tx.init(params)
    h = current_hyperparams(tx, state)
    assert h["learning_rate"] == sched(jnp.int32(0)) and h["1.learning_rate"] == h["learning_rate"]
    assert h["b1"] == np.float32(0.8) and h["0.b1"] == h["b1"]
    for k in range(1, 6):
        _, state = tx.update(_grads(k), state, params)
        h = current_hyperparams(tx, state)
        assert h["learning_rate"] == sched(jnp.int32(k - 1)), k
    h = jax.jit(current_hyperparams)(tx, state)  # inside jit: same values up to the compiled arithmetic
    np.testing.assert_allclose(h["learning_rate"], sched(jnp.int32(4)), rtol=1e-12)


def test_current_hyperparams_paths():
    sched = _sched()
    params = _params()
    grads = [_grads(s) for s in range(3)]

    tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(sched, weight_decay=1e-3))
    _, s = _run(tx, grads, params)
    h = current_hyperparams(tx, s)
    assert h["0.max_norm"] == 1.0 and h["max_norm"] == 1.0
    assert h["1.2.learning_rate"] == sched(jnp.int32(2)) and h["learning_rate"] == h["1.2.learning_rate"]
    assert h["1.1.weight_decay"] == np.float32(1e-3) and h["1.0.b2"] == np.float32(0.999)

    tx = gradtx.named_chain(("adam", gradtx.scale_by_adam(b1=0.7)), ("lr", gradtx.scale_by_learning_rate(sched)))
    _, s = _run(tx, grads, params)
    h = current_hyperparams(tx, s)
    assert h["adam.b1"] == np.float32(0.7) and h["lr.learning_rate"] == sched(jnp.int32(2))

    tx = gradtx.partition({"a": gradtx.adam(sched), "s": gradtx.sgd(0.5)}, {"dense": "a", "head": "s"})
    _, s = _run(tx, grads, params)
    h = current_hyperparams(tx, s)
    assert h["a.1.learning_rate"] == sched(jnp.int32(2)) and h["s.1.learning_rate"] == 0.5
    assert "learning_rate" not in h  # not unique

    tx = gradtx.inject_hyperparams(gradtx.adam)(learning_rate=sched, b1=0.85)
    _, s = _run(tx, grads, params)
    h = current_hyperparams(tx, s)
    np.testing.assert_allclose(h["learning_rate"], sched(jnp.int32(2)), rtol=1e-7)
    np.testing.assert_allclose(h["b1"], 0.85, rtol=1e-7)

    tx = monitored(gradtx.MultiSteps(gradtx.apply_if_finite(gradtx.adam(sched), 3), 2))
    _, s = _run(tx, [*grads, _grads(7)], params)  # 4 mini-steps: 2 updates of adam
    h = current_hyperparams(tx, s)
    assert h["learning_rate"] == sched(jnp.int32(1)) and h["max_consecutive_errors"] == 3
