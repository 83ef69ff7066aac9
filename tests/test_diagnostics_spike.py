"""spike_guard: injected spikes are skipped exactly and everything else equals the unguarded run bit for bit;
the statistics equal a float64 NumPy recomputation; mode "scale" in closed form; give-up, non-finite values,
jit, composition, extra arguments and construction errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.diagnostics.spike import SpikeGuardState, spike_guard
from gradtx.testing.contract import default_params, random_like

TARGET = {"w": np.array([1.0, -2.0, 0.5, 3.0]), "b": np.array([0.25, -1.0])}


def _params(dtype):
    return {"w": jnp.zeros(4, dtype), "b": jnp.zeros(2, dtype)}


def _noise(steps, seed=0):
    rng = np.random.default_rng(seed)
    return [({"w": rng.normal(0, 0.3, 4), "b": rng.normal(0, 0.3, 2)}, rng.normal(0, 0.05)) for _ in range(steps)]


def _grad_and_loss(params, noise, t, spike=""):
    """A noisy quadratic: the gradient and loss at ``params``; ``spike`` multiplies the gradient ("g"), the loss
    ("l") or both by 1000."""
    gn, ln = noise[t]
    dtype = params["w"].dtype
    g = {k: (params[k] - TARGET[k].astype(dtype) + gn[k].astype(dtype)).astype(dtype) for k in params}
    loss = sum(0.5 * float(np.sum((np.asarray(params[k], np.float64) - TARGET[k]) ** 2)) for k in params) + 1.0 + ln
    if "g" in spike:
        g = {k: (v * 1000).astype(dtype) for k, v in g.items()}
    if "l" in spike:
        loss = loss * 1000
    return g, jnp.asarray(loss, dtype)


def _numpy_guard(signals, threshold, decay, warmup, max_consecutive, eps):
    """Float64 recomputation: per step (spike, given_up, stats after) for signals [(loss, norm), ...]."""
    n, mean, var, consecutive, out = 0, [0.0, 0.0], [0.0, 0.0], 0, []
    for xs in signals:
        finite = all(math.isfinite(x) for x in xs)
        zs = []
        for x, m, v in zip(xs, mean, var):
            zs.append(math.inf if not math.isfinite(x) else (x - m) / (math.sqrt(v) + eps) if n >= warmup else 0.0)
        spike = any(not z <= threshold for z in zs)
        consecutive = consecutive + 1 if spike else 0
        given_up = spike and max_consecutive is not None and consecutive > max_consecutive
        if (not spike or given_up) and finite:
            alpha = max(1 - decay, 1 / (n + 1))
            for i, x in enumerate(xs):
                delta = x - mean[i]
                mean[i] += alpha * delta
                var[i] = (1 - alpha) * (var[i] + alpha * delta * delta)
            n += 1
        out.append((spike, given_up, zs, n, list(mean), list(var)))
    return out


def _assert_tree_equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


# --------------------------------------------------------------------------------------------------
# The test: injected spikes are skipped exactly, the rest is the unguarded run bit for bit.
# --------------------------------------------------------------------------------------------------

SPIKES = {12: "g", 17: "l", 18: "gl", 26: "g"}
LABELS = {"w": "a", "b": "s"}


def _adam():
    return gradtx.adam(1e-1)


def _partition():
    return gradtx.partition({"a": gradtx.adam(1e-1), "s": gradtx.sgd(5e-2, momentum=0.9)}, LABELS)


CASES = {
    # name: (guarded, unguarded, inner state of the guarded state)
    "adam": (lambda: spike_guard(_adam(), warmup_steps=8), _adam, lambda s: s.inner_state),
    "around_partition": (lambda: spike_guard(_partition(), warmup_steps=8), _partition, lambda s: s.inner_state),
    "inside_chain": (
        lambda: gradtx.chain(spike_guard(gradtx.scale_by_adam(), warmup_steps=8), gradtx.scale_by_learning_rate(0.1)),
        lambda: gradtx.chain(gradtx.scale_by_adam(), gradtx.scale_by_learning_rate(0.1)),
        lambda s: (s[0].inner_state, s[1]),
    ),
}


@pytest.mark.parametrize(
    ("case", "dtype"),
    [("adam", np.float32), ("adam", np.float64), ("around_partition", np.float32), ("inside_chain", np.float32)],
)
def test_injected_spikes_skipped_and_rest_bit_for_bit(case, dtype):
    make_guarded, make_plain, inner_of = CASES[case]
    guarded, plain = make_guarded(), make_plain()
    steps = 32
    noise = _noise(steps)
    guarded_update, plain_update = jax.jit(guarded.update), jax.jit(plain.update)
    pg = pu = _params(dtype)
    sg, su = guarded.init(pg), plain.init(pu)
    signals, flags = [], []
    for t in range(steps):
        g, loss = _grad_and_loss(pg, noise, t, SPIKES.get(t, ""))
        signals.append((float(loss), float(np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in g.values())))))
        before = inner_of(sg)
        ug, sg = guarded_update(g, sg, pg, value=loss)
        guard_state = sg if isinstance(sg, SpikeGuardState) else sg[0]
        flags.append(bool(guard_state.consecutive_spikes > 0))
        if t in SPIKES:
            _assert_tree_equal(ug, jax.tree.map(jnp.zeros_like, ug))
            _assert_tree_equal(inner_of(sg), before)
            assert float(guard_state.last_scale) == 0.0
        else:  # the unguarded run never sees the spike steps
            g_plain, loss_plain = _grad_and_loss(pu, noise, t)
            uu, su = plain_update(g_plain, su, pu, value=loss_plain)
            _assert_tree_equal(ug, uu)
            _assert_tree_equal(inner_of(sg), su)
            pu = gradtx.apply_updates(pu, uu)
        pg = gradtx.apply_updates(pg, ug)
        _assert_tree_equal(pg, pu)
    assert [t for t, f in enumerate(flags) if f] == sorted(SPIKES)
    assert int(guard_state.total_spikes) == len(SPIKES)

    # The statistics equal a float64 NumPy recomputation from the observed losses and gradient norms.
    ref = _numpy_guard(signals, 6.0, 0.99, 8, 10, 1e-8)
    assert [t for t, r in enumerate(ref) if r[0]] == sorted(SPIKES)
    _, _, zs, n, mean, var = ref[-1]
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert int(guard_state.num_observed) == n == steps - len(SPIKES)
    np.testing.assert_allclose(
        [guard_state.loss_mean, guard_state.grad_norm_mean, guard_state.loss_var, guard_state.grad_norm_var],
        [mean[0], mean[1], var[0], var[1]],
        rtol=rtol,
    )
    np.testing.assert_allclose([guard_state.last_loss_z, guard_state.last_grad_norm_z], zs, rtol=rtol * 10)
    assert guard_state.loss_mean.dtype == dtype


def test_scale_mode_closed_form():
    """Absorbed norms 1, 3 (mean 2, variance 1) and losses 1, 3; then a norm of 100: the gradient is scaled to
    the threshold's norm 2 + 3 (1 + eps); then a loss of 100 with a normal norm: scaled by 3 / z_loss."""
    eps = 1e-8
    inner = gradtx.chain(gradtx.trace(decay=0.5), gradtx.scale_by_learning_rate(1.0))
    guard = spike_guard(inner, threshold=3.0, mode="scale", warmup_steps=2, eps=eps)
    params = {"w": jnp.zeros(2, jnp.float64)}
    state = guard.init(params)
    update = jax.jit(guard.update)
    for c in (1.0, 3.0):
        _, state = update({"w": jnp.array([c, 0.0])}, state, params, value=jnp.float64(c))
    trace_before = np.asarray(state.inner_state[0].trace["w"])
    stats = (state.num_observed, state.grad_norm_mean, state.grad_norm_var, state.loss_mean, state.loss_var)
    assert [float(x) for x in stats] == [2, 2.0, 1.0, 2.0, 1.0]

    s = (2.0 + 3.0 * (1.0 + eps)) / 100.0
    u, state = update({"w": jnp.array([100.0, 0.0])}, state, params, value=jnp.float64(2.0))
    expected_trace = 0.5 * trace_before + np.array([100.0 * s, 0.0])
    np.testing.assert_allclose(state.inner_state[0].trace["w"], expected_trace, rtol=1e-14)
    np.testing.assert_allclose(u["w"], -expected_trace, rtol=1e-14)
    assert float(state.last_scale) == pytest.approx(s, rel=1e-14)
    np.testing.assert_allclose(state.last_grad_norm_z, 98.0 / (1.0 + eps), rtol=1e-14)
    assert [float(x) for x in stats] == [
        float(x)
        for x in (state.num_observed, state.grad_norm_mean, state.grad_norm_var, state.loss_mean, state.loss_var)
    ]  # a scaled spike is not absorbed

    z_loss = 98.0 / (1.0 + eps)
    trace_before = np.asarray(state.inner_state[0].trace["w"])
    u, state = update({"w": jnp.array([2.0, 0.0])}, state, params, value=jnp.float64(100.0))
    np.testing.assert_allclose(state.last_scale, 3.0 / z_loss, rtol=1e-14)
    np.testing.assert_allclose(
        state.inner_state[0].trace["w"], 0.5 * trace_before + np.array([2.0 * 3.0 / z_loss, 0.0]), rtol=1e-14
    )
    assert (int(state.total_spikes), int(state.consecutive_spikes)) == (2, 2)


def test_without_value_only_the_gradient_norm_is_watched():
    guard = spike_guard(gradtx.sgd(1.0), warmup_steps=2)
    params = {"w": jnp.zeros(2)}
    state = guard.init(params)
    update = jax.jit(guard.update)
    for c in (1.0, 3.0, 2.0):
        u, state = update({"w": jnp.array([c, 0.0])}, state, params)
    assert (float(state.loss_mean), float(state.loss_var), float(state.last_loss_z)) == (0.0, 0.0, 0.0)
    assert (int(state.num_observed), float(state.grad_norm_mean)) == (3, 2.0)
    np.testing.assert_allclose(state.grad_norm_var, 2.0 / 3.0, rtol=1e-6)  # population variance of 1, 3, 2
    u, state = update({"w": jnp.array([100.0, 0.0])}, state, params)
    assert float(state.last_scale) == 0.0 and float(u["w"][0]) == 0.0


def test_gives_up_after_max_consecutive_spikes_and_adapts():
    """A permanent jump of the gradient norm (a regime change): 3 steps skipped, then applied and absorbed
    until the statistics have adapted and the count resets."""
    guard = spike_guard(gradtx.sgd(1.0), warmup_steps=5, max_consecutive_spikes=3)
    params = {"w": jnp.zeros(2)}
    state = guard.init(params)
    update = jax.jit(guard.update)
    rng = np.random.default_rng(1)
    norms = [1.0 + 0.1 * rng.normal() for _ in range(10)] + [100.0 + 10 * rng.normal() for _ in range(30)]
    applied, consecutive = [], []
    for c in norms:
        u, state = update({"w": jnp.array([c, 0.0], jnp.float32)}, state, params)
        applied.append(float(u["w"][0]) != 0.0)
        consecutive.append(int(state.consecutive_spikes))
    assert applied[:10] == [True] * 10
    assert applied[10:13] == [False] * 3 and all(applied[13:])
    assert consecutive[10:14] == [1, 2, 3, 4] and consecutive[-1] == 0
    ref = _numpy_guard([(0.0, float(np.float32(c))) for c in norms], 6.0, 0.99, 5, 3, 1e-8)
    assert [r[0] for r in ref] == [c > 0 for c in consecutive]
    assert int(state.total_spikes) == sum(c > 0 for c in consecutive)
    np.testing.assert_allclose([state.grad_norm_mean, state.grad_norm_var], [ref[-1][4][1], ref[-1][5][1]], rtol=1e-5)


@pytest.mark.parametrize("mode", ["skip", "scale"])
def test_non_finite_is_skipped_even_during_warmup_and_never_absorbed(mode):
    guard = spike_guard(gradtx.sgd(1.0), mode=mode, warmup_steps=5, max_consecutive_spikes=None)
    params = {"w": jnp.zeros(2)}
    state = guard.init(params)
    update = jax.jit(guard.update)
    _, state = update({"w": jnp.array([1.0, 0.0])}, state, params, value=1.0)
    for g, loss in [([np.nan, 0.0], 1.0), ([np.inf, 0.0], 1.0), ([1.0, 0.0], np.nan), ([1.0, 0.0], -np.inf)]:
        u, new = update({"w": jnp.array(g)}, state, params, value=loss)
        np.testing.assert_array_equal(u["w"], [0.0, 0.0])
        assert float(new.last_scale) == 0.0 and int(new.num_observed) == 1
        assert math.inf in (float(new.last_grad_norm_z), float(new.last_loss_z))
        _assert_tree_equal((new.inner_state, new.grad_norm_mean, new.loss_mean), (state.inner_state, 1.0, 1.0))
        state = new
    assert (int(state.total_spikes), int(state.consecutive_spikes)) == (4, 4)  # never given up (None)


def test_jit_and_scan_equal_eager_and_no_host_sync():
    guard = spike_guard(gradtx.sgd(1e-1, momentum=0.9), warmup_steps=3, mode="scale")
    params = _params(np.float32)
    noise = _noise(8)
    grads, losses = zip(*[_grad_and_loss(params, noise, t, "g" if t == 6 else "") for t in range(8)])

    def body(state, x):
        g, loss = x
        u, state = guard.update(g, state, params, value=loss)
        return state, (u, state)

    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *grads)
    _, (scanned_u, scanned_s) = jax.jit(lambda s: jax.lax.scan(body, s, (stacked, jnp.stack(losses))))(
        guard.init(params)
    )
    se, plain_state = guard.init(params), guard.tx.init(params)
    for t, (g, loss) in enumerate(zip(grads, losses)):
        ue, se = guard.update(g, se, params, value=loss)
        uj, sj = jax.tree.map(lambda x, t=t: x[t], (scanned_u, scanned_s))
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), (ue, se), (uj, sj))
        assert (0.0 < float(se.last_scale) < 1.0) == (t == 6)
        if t < 6:  # eagerly too, a normal step is the unguarded step bit for bit
            up, plain_state = guard.tx.update(g, plain_state, params)
            _assert_tree_equal((ue, se.inner_state), (up, plain_state))
    assert int(se.total_spikes) == 1

    jaxpr = str(jax.make_jaxpr(lambda g, s, v: guard.update(g, s, params, value=v))(grads[0], se, losses[0]))
    assert "callback" not in jaxpr


def test_extra_args_reach_the_inner_transformation():
    def update(updates, state, params=None, *, value, **extra):
        del state, params, extra
        return updates, jnp.asarray(value, jnp.float32)

    recorder = gradtx.GradientTransformation(lambda p: jnp.zeros([], jnp.float32), update)
    guard = spike_guard(recorder, warmup_steps=2)
    params = {"w": jnp.zeros(2)}
    state = guard.init(params)
    update = jax.jit(guard.update)
    for c in (1.0, 3.0, 2.0):
        _, state = update({"w": jnp.array([c, 0.0])}, state, params, value=jnp.float32(c))
        assert float(state.inner_state) == c
    _, state = update({"w": jnp.array([2.0, 0.0])}, state, params, value=jnp.float32(500.0))
    assert float(state.inner_state) == 2.0  # a skipped step leaves the inner state as it was

    def plain_update(updates, state, params=None):  # takes no extra arguments: they are dropped for it
        return updates, state

    plain = spike_guard(gradtx.GradientTransformation(lambda p: (), plain_update))
    u, _ = plain.update({"w": jnp.ones(2)}, plain.init(params), params, value=1.0)
    np.testing.assert_array_equal(u["w"], [1.0, 1.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": -1.0}, "spike_guard(threshold=-1.0): threshold must be in (0, inf)"),
        ({"threshold": math.inf}, "spike_guard(threshold=inf): threshold must be in (0, inf)"),
        ({"mode": "clip"}, "spike_guard(mode='clip'): mode must be one of 'skip', 'scale'"),
        ({"decay": 1.0}, "spike_guard(decay=1.0): decay must be in [0, 1)"),
        ({"warmup_steps": 1}, "spike_guard(warmup_steps=1): warmup_steps must be a whole number >= 2"),
        ({"warmup_steps": 2.5}, "spike_guard(warmup_steps=2.5): warmup_steps must be a whole number >= 2"),
        ({"max_consecutive_spikes": -1}, "spike_guard(max_consecutive_spikes=-1): max_consecutive_spikes must be"),
        ({"eps": 0.0}, "spike_guard(eps=0.0): eps must be in (0, inf)"),
    ],
)
def test_construction_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        spike_guard(gradtx.sgd(1.0), **kwargs)
    assert str(info.value).startswith(message)


def test_update_errors():
    guard = spike_guard(gradtx.sgd(1.0))
    params = {"w": jnp.zeros(2)}
    with pytest.raises(
        ValueError, match=r"spike_guard.update: value must be the loss, a real scalar; got shape \(2,\)"
    ):
        guard.update({"w": jnp.ones(2)}, guard.init(params), params, value=jnp.ones(2))
    with pytest.raises(TypeError, match="spike_guard: expected a transformation"):
        spike_guard(42)


def test_dtypes_trees_and_strict_promotion():
    """bfloat16 and complex parameters, nested trees with None and scalar leaves, the empty tree: updates keep
    the gradients' structure and dtypes, the state keeps its own, spikes are caught; under strict promotion."""
    guard = spike_guard(gradtx.sgd(0.1, momentum=0.9), mode="scale", warmup_steps=2)
    update = jax.jit(guard.update)
    params = {**default_params(jnp.bfloat16), "z": jnp.array([1 + 2j, -1j], jnp.complex64)}
    with jax.numpy_dtype_promotion("strict"):
        state = guard.init(params)
        signature = jax.tree.map(lambda x: (x.shape, x.dtype), state)
        for k, c in enumerate((1.0, 2.0, 1.5, 1e4)):
            g = jax.tree.map(lambda x, c=c: (x * c).astype(x.dtype), random_like(params, seed=k))
            u, state = update(g, state, params, value=jnp.float32(c))
            assert jax.tree.map(lambda x: (x.shape, x.dtype), u) == jax.tree.map(lambda x: (x.shape, x.dtype), g)
            assert jax.tree.map(lambda x: (x.shape, x.dtype), state) == signature
        assert state.grad_norm_mean.dtype == jnp.float32
        assert int(state.total_spikes) == 1 and 0.0 < float(state.last_scale) < 1.0
        u, _ = update({}, guard.init({}), {}, value=jnp.float32(1.0))
        assert u == {}
