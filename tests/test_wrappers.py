"""The wrappers (gradtx.wrappers): the behaviours Optax documents and tests, the Optax issues they fix, and
the differences from Optax written down in the module docstring.

The registry tiers (oracles, contract, Optax cross-check) run on tests/registry_wrappers.py; this file adds
exactness (inject_hyperparams is bitwise adam), accumulation and skipping sequences, lookahead against its
float64 reference and a closed form, extra-argument pass-through, monitoring and microbatching.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import gradtx
from gradtx import schedules, tree
from gradtx.base import EmptyState, GradientTransformation, foreign
from gradtx.combine import chain
from gradtx.fields import pytree_class
from gradtx.testing import reference as ref
from gradtx.testing.contract import check_transformation, default_params, random_like
from gradtx.testing.reference import wrappers as rw
from gradtx.transforms import clip_by_global_norm, scale_by_learning_rate
from gradtx.wrappers import (
    AccumulationType,
    Accumulator,
    ApplyIfFiniteState,
    GradientTransformationExtraArgs,
    InjectStatefulHyperparamsState,
    LookaheadParams,
    LookaheadState,
    MonitorState,
    MultiSteps,
    MultiStepsState,
    SnapshotState,
    WrappedSchedule,
    WrappedScheduleState,
    apply_if_finite,
    flatten,
    inject_hyperparams,
    inject_stateful_hyperparams,
    lookahead,
    measure_with_ema,
    microbatch,
    monitor,
    reshape_batch_axis,
    skip_large_updates,
    skip_not_finite,
    snapshot,
    with_extra_args_support,
)


def _grads(params: Any, n: int, seed: int = 0) -> list[Any]:
    rng = np.random.default_rng(seed)
    scales = rng.choice([0.01, 1.0, 30.0], size=n)
    return [jax.tree.map(lambda x, s=s: jnp.asarray(s * rng.normal(size=jnp.shape(x)), jnp.result_type(x)),
                         params) for s in scales]


def _flat(t: Any) -> np.ndarray:
    return np.asarray(ravel_pytree(t)[0], np.float64) if jax.tree.leaves(t) else np.zeros(0)


def _trajectory(tx: Any, params: Any, grads: list[Any], jit_tx_arg: bool = True, **extra: Any):
    """Updates and params after every step (the transformation passed into jit as an argument)."""
    step = jax.jit(lambda t, g, s, p: t.update(g, s, p, **extra)) if jit_tx_arg else jax.jit(
        lambda g, s, p: tx.update(g, s, p, **extra))
    state, p, ups, ps = tx.init(params), params, [], []
    for g in grads:
        u, state = step(tx, g, state, p) if jit_tx_arg else step(g, state, p)
        p = gradtx.apply_updates(p, u)
        ups.append(u)
        ps.append(p)
    return ups, ps, state


def _bitwise_equal(a: Any, b: Any) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        x.dtype == y.dtype and np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True) for x, y in zip(la, lb)
    )


def _sched():
    return schedules.warmup_cosine_decay_schedule(0.0, 0.1, 10, 100, 0.001)


# ==================================================================================================
# inject_hyperparams
# ==================================================================================================


@pytest.mark.parametrize("jit_tx_arg", [True, False], ids=["tx-argument", "tx-closed-over"])
@pytest.mark.parametrize("lr", ["constant", "schedule"])
def test_inject_hyperparams_adam_is_bitwise_adam(lr, jit_tx_arg):
    """Optax #583 / #1532: inject_hyperparams(adam) drifts from adam. Here: bitwise equal, float32, 100 steps, to
    adam given the hyperparameters as the injected state holds them (float32 arrays). With Python-float decays
    adam uses their exact complement (0.001 for b2 = 0.999), which a float32 array cannot carry: that run is
    within 2e-5 relative (the decay-complement difference, README "Coming from Optax")."""
    learning_rate = 1e-3 if lr == "constant" else _sched()
    params = default_params(jnp.float32)
    grads = _grads(params, 100, seed=3)
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    plain = gradtx.adam(learning_rate, b1=f32(0.9), b2=f32(0.999), eps=f32(1e-8), eps_root=f32(0.0))
    python_floats = _trajectory(gradtx.adam(learning_rate), params, grads[:20], jit_tx_arg)[1]
    injected = inject_hyperparams(gradtx.adam)(learning_rate=learning_rate)
    u1, p1, s1 = _trajectory(plain, params, grads, jit_tx_arg)
    u2, p2, s2 = _trajectory(injected, params, grads, jit_tx_arg)
    for k in range(100):
        assert _bitwise_equal(u1[k], u2[k]), f"updates differ at step {k + 1}"
        assert _bitwise_equal(p1[k], p2[k]), f"params differ at step {k + 1}"
    assert _bitwise_equal(s1[0], s2.inner_state[0])  # adam's moments too
    for a, b in zip(python_floats, p2[:20]):
        np.testing.assert_allclose(_flat(a), _flat(b), rtol=2e-5, atol=1e-7)


def test_inject_hyperparams_adam_eager_is_bitwise_adam():
    params = default_params(jnp.float32)
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    plain = gradtx.adam(3e-3, b1=f32(0.8), b2=f32(0.999), eps=f32(1e-8), eps_root=f32(0.0))
    injected = inject_hyperparams(gradtx.adam)(3e-3, b1=0.8)
    s1, s2 = plain.init(params), injected.init(params)
    for g in _grads(params, 10, seed=4):
        u1, s1 = plain.update(g, s1, params)
        u2, s2 = injected.update(g, s2, params)
        assert _bitwise_equal(u1, u2)


def test_inject_hyperparams_state_holds_the_hyperparameters_and_they_can_change():
    opt = inject_hyperparams(gradtx.sgd)(learning_rate=0.1)
    params = {"x": jnp.array([1.0, -2.0], jnp.float32)}
    g = {"x": jnp.array([0.5, 4.0], jnp.float32)}
    state = opt.init(params)
    assert isinstance(state, InjectStatefulHyperparamsState)
    assert set(state.hyperparams) == {"learning_rate"}  # momentum=None, nesterov, accumulator_dtype: static
    np.testing.assert_allclose(state.hyperparams["learning_rate"], 0.1, rtol=1e-7)
    step = jax.jit(opt.update)
    u, state = step(g, state, params)
    np.testing.assert_allclose(u["x"], -0.1 * g["x"], rtol=1e-6)
    # Change it between steps: in place (Optax's documented way) or with _replace; jitted or not.
    state.hyperparams["learning_rate"] = 0.5
    u, state = opt.update(g, state, params)
    np.testing.assert_allclose(u["x"], -0.5 * g["x"], rtol=1e-6)
    state = state._replace(hyperparams={"learning_rate": jnp.float32(0.0)})
    u, state = step(g, state, params)
    np.testing.assert_array_equal(u["x"], np.zeros(2))
    assert int(state.count) == 3


def test_inject_hyperparams_schedules_are_recorded_and_cannot_be_overridden():
    sched = _sched()
    opt = inject_hyperparams(gradtx.adam)(learning_rate=sched, b2=0.99)
    params = default_params(jnp.float32)
    state = opt.init(params)
    np.testing.assert_allclose(state.hyperparams["learning_rate"], sched(0))
    assert isinstance(state.hyperparams_states["learning_rate"], WrappedScheduleState)
    step = jax.jit(opt.update)
    for k, g in enumerate(_grads(params, 15)):
        state.hyperparams["learning_rate"] = 123.0  # no effect: the schedule decides
        _, state = step(g, state, params)
        np.testing.assert_allclose(state.hyperparams["learning_rate"], sched(k), rtol=1e-6)  # the value used
        assert int(state.hyperparams_states["learning_rate"].count) == k + 1
    np.testing.assert_allclose(state.hyperparams["b2"], 0.99, rtol=1e-7)


def test_inject_hyperparams_stay_float32_with_bfloat16_params():
    """Optax #1414: with bfloat16 params Optax stores b2=0.999 in bfloat16, i.e. 1.0, and Adam's first step
    divides by 1 - b2 = 0. gradtx keeps hyperparameters in float32 (or wider)."""
    params = {"w": jnp.array([0.5, -1.0, 2.0, 0.25], jnp.bfloat16)}
    g = {"w": jnp.array([0.3, -0.2, 1.0, -4.0], jnp.bfloat16)}
    opt = inject_hyperparams(gradtx.adam)(learning_rate=0.1, b2=0.999)
    state = opt.init(params)
    assert all(v.dtype == jnp.float32 for v in state.hyperparams.values())
    np.testing.assert_allclose(state.hyperparams["b2"], np.float32(0.999))
    u, state = jax.jit(opt.update)(g, state, params)
    assert u["w"].dtype == jnp.bfloat16 and all(v.dtype == jnp.float32 for v in state.hyperparams.values())
    # Adam's first step is -lr * sign(g) (m_hat / sqrt(v_hat) = g / |g|).
    np.testing.assert_allclose(np.asarray(u["w"], np.float32), -0.1 * np.sign(np.asarray(g["w"], np.float32)),
                               rtol=1e-2)
    theirs = optax.inject_hyperparams(optax.adam)(learning_rate=0.1, b2=0.999).init(params)
    assert theirs.hyperparams["b2"].dtype == jnp.bfloat16 and float(theirs.hyperparams["b2"]) == 1.0
    # An explicit hyperparam_dtype is the user's choice and is honoured; with bfloat16, b2=0.999 becomes 1.0,
    # which scale_by_adam rejects when init builds it (an error, not Optax's silent division by zero).
    low = inject_hyperparams(gradtx.sgd, hyperparam_dtype=jnp.bfloat16)(learning_rate=0.1).init(params)
    assert low.hyperparams["learning_rate"].dtype == jnp.bfloat16
    with pytest.raises(ValueError, match=r"adam\(b2=.*\): b2 must be in \[0, 1\)"):
        inject_hyperparams(gradtx.adam, hyperparam_dtype=jnp.bfloat16)(learning_rate=0.1).init(params)


def test_inject_hyperparams_use_float64_with_float64_params():
    params = {"w": jnp.ones(3, jnp.float64)}
    state = inject_hyperparams(gradtx.adam)(_sched()).init(params)
    assert all(v.dtype == jnp.float64 for v in state.hyperparams.values())


def test_inject_hyperparams_errors():
    with pytest.raises(ValueError, match=r"inject_hyperparams\(static_args=.*unknown: \['nope'\]"):
        inject_hyperparams(gradtx.adam, static_args="nope")
    with pytest.raises(ValueError, match=r"adam\(b1=1\.2\): b1 must be in \[0, 1\)"):
        inject_hyperparams(gradtx.adam)(1e-3, b1=1.2)
    with pytest.raises(TypeError):
        inject_hyperparams(gradtx.adam)(1e-3, beta1=0.9)


def test_inject_hyperparams_static_args_keep_a_callable_out_of_the_schedules():
    def scaled_sgd(learning_rate, transform):
        return chain(gradtx.stateless(lambda u, p: jax.tree.map(transform, u)), scale_by_learning_rate(learning_rate))

    params = {"x": jnp.array([1.0, -3.0], jnp.float32)}
    opt = inject_hyperparams(scaled_sgd, static_args="transform")(0.1, jnp.tanh)
    state = opt.init(params)
    assert set(state.hyperparams) == {"learning_rate"}
    u, _ = opt.update(params, state, params)
    np.testing.assert_allclose(u["x"], -0.1 * np.tanh([1.0, -3.0]), rtol=1e-6)


class _ValueSchedule:
    """A stateful schedule (not a pytree) reading the extra argument ``value``: lr = 0.01 * value."""

    def init(self):
        return {"calls": jnp.zeros([], jnp.int32)}

    def update(self, state, **extra):
        return {"calls": state["calls"] + 1}

    def __call__(self, state, value=1.0, **extra):
        return 0.01 * value


def test_inject_stateful_schedule_receives_extra_args_like_optax():
    assert inject_stateful_hyperparams is inject_hyperparams
    params = default_params(jnp.float32)
    ours = inject_hyperparams(gradtx.sgd)(learning_rate=_ValueSchedule())
    theirs = optax.inject_hyperparams(optax.sgd)(learning_rate=_ValueSchedule())
    s1, s2 = ours.init(params), theirs.init(params)
    for k, g in enumerate(_grads(params, 5)):
        value = jnp.float32(k + 1)
        u1, s1 = ours.update(g, s1, params, value=value)
        u2, s2 = theirs.update(g, s2, params, value=value)
        np.testing.assert_allclose(_flat(u1), _flat(u2), rtol=1e-6)
        np.testing.assert_allclose(_flat(u1), -0.01 * (k + 1) * _flat(g), rtol=1e-6)
    assert int(s1.hyperparams_states["learning_rate"]["calls"]) == 5


def test_wrapped_schedule():
    w = WrappedSchedule(lambda c: 2.0 * c)
    s = w.init()
    assert isinstance(s, WrappedScheduleState) and int(s.count) == 0
    s = w.update(w.update(s, value=1.0))
    assert float(w(s)) == 4.0
    w2 = WrappedSchedule(_sched())
    assert jax.tree.leaves(w2)  # a gradtx schedule stays a pytree (its values are leaves)


def test_inject_hyperparams_repr_reads_like_the_call():
    opt = inject_hyperparams(gradtx.adam)(learning_rate=1e-3, b1=0.8)
    assert repr(opt) == (
        "inject_hyperparams(adam)(learning_rate=0.001, b1=0.8, b2=0.999, eps=1e-08, eps_root=0.0, "
        "mu_dtype=None, nesterov=False, nu_dtype=None)"
    )


# ==================================================================================================
# Pytree wrappers: no retrace when a hyperparameter changes.
# ==================================================================================================

WRAPPED = {
    "MultiSteps": lambda lr: MultiSteps(gradtx.adam(lr), 3),
    "MultiSteps(k=1)": lambda lr: MultiSteps(gradtx.adam(lr), 1),
    "apply_if_finite": lambda lr: apply_if_finite(gradtx.adam(lr), 2),
    "flatten": lambda lr: flatten(gradtx.adam(lr)),
    "inject_hyperparams": lambda lr: inject_hyperparams(gradtx.adam)(lr),
    "inject_hyperparams(schedule)": lambda lr: inject_hyperparams(gradtx.sgd)(
        schedules.warmup_constant_schedule(0.0, lr, 5), 0.9),
    "monitor": lambda lr: chain(monitor({"n": tree.norm, "e": measure_with_ema(tree.norm, 0.9)}), gradtx.adam(lr)),
    "snapshot": lambda lr: chain(gradtx.adam(lr), snapshot("n", tree.norm)),
}


@pytest.mark.parametrize("name", list(WRAPPED))
def test_wrapped_optimizer_passes_into_jit_without_retracing(name):
    make = WRAPPED[name]
    params = default_params(jnp.float32)
    jitted = jax.jit(chex.assert_max_traces(lambda t, g, s, p: t.update(g, s, p), n=1))
    g = random_like(params, 5)
    outs = []
    for lr in (1e-2, 2e-2, 3e-2):
        tx = make(lr)
        u, state = jitted(tx, g, tx.init(params), params)
        u, state = jitted(tx, g, state, params)
        outs.append(_flat(u))
    if name != "MultiSteps":  # MultiSteps emits zeros on its first mini-steps
        assert not np.allclose(outs[0], outs[1])


@pytest.mark.parametrize("name", list(WRAPPED))
def test_wrapped_state_can_be_laid_out_before_it_is_allocated(name):
    tx, params = WRAPPED[name](1e-2), default_params(jnp.float32)
    shapes = jax.eval_shape(tx.init, params)
    state = tx.init(params)
    assert jax.tree.structure(shapes) == jax.tree.structure(state)
    assert [(s.shape, s.dtype) for s in jax.tree.leaves(shapes)] == [
        (x.shape, x.dtype) for x in jax.tree.leaves(state)
    ]


def test_inject_hyperparams_of_an_optax_factory():
    params = default_params(jnp.float32)
    ours = inject_hyperparams(optax.adam)(learning_rate=1e-2)
    theirs = optax.inject_hyperparams(optax.adam)(learning_rate=1e-2)
    u1, _, s1 = _trajectory(ours, params, _grads(params, 5))
    u2, _, _ = _trajectory(gradtx.adam(1e-2), params, _grads(params, 5))
    for a, b in zip(u1, u2):
        np.testing.assert_allclose(_flat(a), _flat(b), rtol=1e-5, atol=1e-9)
    paths = [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(s1)[0]]
    assert paths == [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(theirs.init(params))[0]]


# ==================================================================================================
# MultiSteps
# ==================================================================================================


def test_multisteps_k1_equals_the_optimizer_and_keeps_no_accumulator():
    """Optax #472: MultiSteps(opt, 1) allocates a full-size accumulator it never needs."""
    params = default_params(jnp.float32)
    grads = _grads(params, 50, seed=1)
    plain, wrapped = gradtx.adam(1e-2), MultiSteps(gradtx.adam(1e-2), every_k_schedule=1)
    u1, _, s1 = _trajectory(plain, params, grads)
    u2, _, s2 = _trajectory(wrapped, params, grads)
    for a, b in zip(u1, u2):
        assert _bitwise_equal(a, b)
    assert _bitwise_equal(s1, s2.inner_opt_state)
    acc_sizes = [np.size(x) for x in jax.tree.leaves(s2.acc_grads)]
    assert acc_sizes == [1] * len(jax.tree.leaves(params))  # one 0-d zero per leaf, not a copy of params
    extra = sum(np.size(x) for x in jax.tree.leaves(s2)) - sum(np.size(x) for x in jax.tree.leaves(s1))
    assert extra == len(jax.tree.leaves(params)) + 2  # + mini_step, gradient_step
    theirs = optax.MultiSteps(optax.adam(1e-2), 1).init(params)
    assert sum(np.size(x) for x in jax.tree.leaves(theirs.acc_grads)) == _flat(params).size
    assert int(s2.gradient_step) == 50 and int(s2.mini_step) == 0


def test_multisteps_averages_k_gradients_and_matches_optax_over_240_steps():
    params = default_params(jnp.float32)
    grads = _grads(params, 240, seed=2)
    ours = MultiSteps(gradtx.adam(1e-2), every_k_schedule=3)
    theirs = optax.MultiSteps(optax.adam(1e-2), every_k_schedule=3)
    s1, s2, p = ours.init(params), theirs.init(params), params
    step1, step2 = jax.jit(ours.update), jax.jit(theirs.update)
    emitted = []
    for k, g in enumerate(grads):
        u1, s1 = step1(g, s1, p)
        u2, s2 = step2(g, s2, p)
        np.testing.assert_allclose(_flat(u1), _flat(u2), rtol=1e-5, atol=1e-7, err_msg=f"step {k + 1}")
        assert bool(ours.has_updated(s1)) == bool(theirs.has_updated(s2)) == ((k + 1) % 3 == 0)
        emitted.append(bool(np.any(_flat(u1) != 0)))
        p = gradtx.apply_updates(p, u1)
    assert emitted == [(k + 1) % 3 == 0 for k in range(240)]
    assert int(s1.gradient_step) == 80 and int(s1.mini_step) == 0
    # The emitted update is adam's update of the mean of the group's gradients.
    ref_opt = ref.adam(1e-2)
    mean = np.mean([_flat(g) for g in grads[:3]], axis=0)
    u, _ = MultiSteps(gradtx.adam(1e-2), 3).update(grads[2], _k_minus_1_state(grads[:2], params), params)
    np.testing.assert_allclose(_flat(u), ref_opt.step(mean), rtol=1e-5)


def _k_minus_1_state(grads, params):
    tx = MultiSteps(gradtx.adam(1e-2), 3)
    state = tx.init(params)
    for g in grads:
        _, state = tx.update(g, state, params)
    return state


@pytest.mark.parametrize("use_grad_mean", [True, False])
def test_multisteps_against_float64_reference_with_a_k_schedule(use_grad_mean):
    params = default_params(jnp.float64)
    grads = _grads(params, 60, seed=5)
    ours = MultiSteps(gradtx.sgd(0.01, 0.9), lambda n: jnp.where(n < 4, 2, 5), use_grad_mean=use_grad_mean,
                      accumulator_dtype=None)
    oracle = rw.MultiSteps(ref.sgd(0.01, 0.9), lambda n: 2 if n < 4 else 5, use_grad_mean=use_grad_mean)
    ups, _, state = _trajectory(ours, params, grads)
    for k, (u, g) in enumerate(zip(ups, grads)):
        np.testing.assert_allclose(_flat(u), oracle.step(_flat(g)), rtol=1e-12, atol=1e-14, err_msg=f"step {k}")
    assert state.acc_grads["w"].dtype == jnp.float64


@pytest.mark.parametrize("acc_dtype", [jnp.float32, jnp.bfloat16, None])
def test_multisteps_with_bfloat16_params(acc_dtype):
    """Optax #1038 (#377): MultiSteps failed with bfloat16 params. Accumulation runs in float32; the
    accumulator is stored in accumulator_dtype (None: the params' bfloat16)."""
    params = jax.tree.map(lambda x: x.astype(jnp.bfloat16), default_params())
    grads = _grads(params, 12, seed=6)
    tx = MultiSteps(gradtx.adam(1e-2), 4, accumulator_dtype=acc_dtype)
    ups, _, state = _trajectory(tx, params, grads)
    want_acc = jnp.bfloat16 if acc_dtype is None else acc_dtype
    assert state.acc_grads["w"].dtype == want_acc
    assert all(u["w"].dtype == jnp.bfloat16 for u in ups)
    oracle = rw.MultiSteps(ref.adam(1e-2), 4)
    for u, g in zip(ups, grads):
        want = oracle.step(_flat(g))
        np.testing.assert_allclose(_flat(u), want, rtol=3e-2, atol=3e-2 * max(np.max(np.abs(want)), 1e-30))
    with jax.numpy_dtype_promotion("strict"):
        check_transformation(tx, dtypes=(jnp.bfloat16,))


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "3", None])
def test_multisteps_rejects_a_bad_k_at_construction(bad):
    with pytest.raises(ValueError, match=r"MultiSteps\(every_k_schedule=.*\): every_k_schedule must be"):
        MultiSteps(gradtx.sgd(0.1), bad)


def test_multisteps_error_messages():
    with pytest.raises(ValueError, match=r"MultiSteps\(every_k_schedule=0\): every_k_schedule must be >= 1"):
        MultiSteps(gradtx.sgd(0.1), 0)
    with pytest.raises(ValueError, match="should_skip_update_fn must be a callable"):
        MultiSteps(gradtx.sgd(0.1), 2, should_skip_update_fn=3)
    tx = MultiSteps(gradtx.sgd(0.1), 2, should_skip_update_fn=lambda u, s, p: (jnp.zeros(2, bool), ()))
    p = {"x": jnp.ones(2)}
    with pytest.raises(ValueError, match="must return a boolean scalar"):
        tx.update(p, tx.init(p), p)


def test_multisteps_accessors():
    inner = gradtx.sgd(0.1)
    tx = MultiSteps(inner, 2)
    assert tx.gradient_transformation() is tx and tx.inner_opt is inner
    assert isinstance(tx.init({"x": jnp.ones(2)}), MultiStepsState)


def test_multisteps_skip_not_finite_drops_the_mini_step():
    params = {"x": jnp.zeros(3, jnp.float32)}
    g1, g3 = {"x": jnp.array([1.0, 2.0, 3.0], jnp.float32)}, {"x": jnp.array([3.0, 0.0, -1.0], jnp.float32)}
    bad = {"x": jnp.array([jnp.nan, 1.0, jnp.inf], jnp.float32)}
    tx = MultiSteps(gradtx.sgd(1.0), 2, should_skip_update_fn=skip_not_finite)
    state = tx.init(params)
    assert state.skip_state == {"should_skip": False, "num_not_finite": 0}
    step = jax.jit(tx.update)
    u, state = step(g1, state, params)
    np.testing.assert_array_equal(u["x"], 0.0)
    before = state
    u, state = step(bad, state, params)  # skipped: zeros, nothing accumulated, counters unchanged
    np.testing.assert_array_equal(u["x"], 0.0)
    assert bool(state.skip_state["should_skip"]) and int(state.skip_state["num_not_finite"]) == 2
    assert _bitwise_equal(before[:4], state[:4])
    u, state = step(g3, state, params)  # the second accepted mini-step completes the group
    np.testing.assert_allclose(u["x"], -(g1["x"] + g3["x"]) / 2)
    assert int(state.skip_state["num_not_finite"]) == 0 and int(state.gradient_step) == 1
    # Optax agrees.
    theirs = optax.MultiSteps(optax.sgd(1.0), 2, should_skip_update_fn=optax.skip_not_finite)
    s = theirs.init(params)
    for g in (g1, bad, g3):
        v, s = theirs.update(g, s, params)
    np.testing.assert_allclose(v["x"], u["x"])


def test_multisteps_skip_large_updates():
    params = {"x": jnp.zeros(2, jnp.float32)}
    skip = functools.partial(skip_large_updates, max_squared_norm=10.0)
    tx = MultiSteps(gradtx.sgd(1.0), 1, should_skip_update_fn=skip)
    state = tx.init(params)
    u, state = tx.update({"x": jnp.array([3.0, 4.0])}, state, params)  # norm^2 = 25 >= 10: skipped
    np.testing.assert_array_equal(u["x"], 0.0)
    assert bool(state.skip_state["should_skip"]) and float(state.skip_state["norm_squared"]) == 25.0
    assert int(state.gradient_step) == 0
    u, state = tx.update({"x": jnp.array([1.0, 2.0])}, state, params)
    np.testing.assert_allclose(u["x"], [-1.0, -2.0])
    assert not bool(state.skip_state["should_skip"]) and int(state.gradient_step) == 1
    should, info = skip_large_updates({"x": jnp.array([jnp.nan])}, 0, None, 1.0)
    assert bool(should) and bool(info["should_skip"])  # NaN norms are skipped


# ==================================================================================================
# apply_if_finite
# ==================================================================================================


def test_apply_if_finite_skips_counts_and_gives_up_like_optax():
    params = {"x": jnp.array([1.0, -1.0], jnp.float32)}
    fin = {"x": jnp.array([0.5, 2.0], jnp.float32)}
    nan = {"x": jnp.array([jnp.nan, 2.0], jnp.float32)}
    seq = [fin, nan, nan, fin, nan, nan, nan, nan, fin]
    ours, theirs = apply_if_finite(gradtx.adam(0.1), 2), optax.apply_if_finite(optax.adam(0.1), 2)
    oracle = rw.apply_if_finite(ref.adam(0.1), 2)
    s1, s2 = ours.init(params), theirs.init(params)
    assert isinstance(s1, ApplyIfFiniteState)
    step = jax.jit(ours.update)
    consecutive, total = [], []
    for k, g in enumerate(seq):
        u1, s1 = step(g, s1, params)
        u2, s2 = theirs.update(g, s2, params)
        # 1e-5: Optax under x64 computes adam's bias correction 1 - b2^k in float64, gradtx in float32.
        np.testing.assert_allclose(_flat(u1), _flat(u2), rtol=1e-5, err_msg=f"step {k + 1}")
        np.testing.assert_allclose(_flat(u1), oracle.step(_flat(g)), rtol=1e-5, err_msg=f"step {k + 1}")
        for a, b in zip(jax.tree.leaves(s1[:3]), jax.tree.leaves(s2[:3])):
            assert a == b
        consecutive.append(int(s1.notfinite_count))
        total.append(int(s1.total_notfinite))
        if k in (1, 2, 4, 5):  # rejected: zeros, inner state kept
            np.testing.assert_array_equal(_flat(u1), 0.0)
    assert consecutive == [0, 1, 2, 0, 1, 2, 3, 4, 0]
    assert total == [0, 1, 2, 2, 3, 4, 5, 6, 6]
    assert not np.isfinite(_flat(s1.inner_state[0].mu)).all()  # gave up after 2: the NaN went in, as in Optax


def test_apply_if_finite_errors():
    with pytest.raises(ValueError, match=r"apply_if_finite\(max_consecutive_errors=-1\): .* must be >= 0"):
        apply_if_finite(gradtx.sgd(0.1), -1)


# ==================================================================================================
# flatten
# ==================================================================================================


def test_flatten_equals_the_unflattened_transformation():
    params = default_params(jnp.float32)
    grads = _grads(params, 30, seed=8)
    u1, _, s1 = _trajectory(gradtx.adam(1e-2), params, grads)
    u2, _, s2 = _trajectory(flatten(gradtx.adam(1e-2)), params, grads)
    for a, b in zip(u1, u2):
        np.testing.assert_allclose(_flat(a), _flat(b), rtol=1e-6, atol=1e-9)
    n = _flat(params).size
    assert s2[0].mu.shape == (n,) and s2[0].nu.shape == (n,)  # one vector, not a tree
    np.testing.assert_allclose(np.asarray(s2[0].mu), _flat(s1[0].mu), rtol=1e-6, atol=1e-9)


def test_flatten_mixed_dtypes_and_empty_tree():
    params = {"a": jnp.ones((2, 2), jnp.float32), "b": jnp.ones(3, jnp.bfloat16), "c": None}
    tx = flatten(gradtx.sgd(0.5))
    g = {"a": jnp.full((2, 2), 2.0, jnp.float32), "b": jnp.full(3, 4.0, jnp.bfloat16), "c": None}
    u, _ = tx.update(g, tx.init(params), params)
    assert u["a"].dtype == jnp.float32 and u["b"].dtype == jnp.bfloat16 and u["c"] is None
    np.testing.assert_allclose(u["a"], -1.0)
    np.testing.assert_allclose(np.asarray(u["b"], np.float32), -2.0)
    u, _ = tx.update({}, tx.init({}), {})
    assert u == {}


# ==================================================================================================
# lookahead
# ==================================================================================================


def _run_lookahead(tx, x0, grad_fn, steps, jit=True):
    params = LookaheadParams.init_synced(x0)
    state = tx.init(params)
    step = jax.jit(lambda t, g, s, p: t.update(g, s, p)) if jit else (lambda t, g, s, p: t.update(g, s, p))
    out = []
    for _ in range(steps):
        u, state = step(tx, grad_fn(params.fast), state, params)
        params = gradtx.apply_updates(params, u)
        out.append(params)
    return out, state


def test_lookahead_closed_form_with_constant_gradient():
    """sgd(lr) with gradient g: after k fast steps fast = slow - k lr g; then slow <- slow - alpha k lr g."""
    lr, k, alpha = 0.1, 5, 0.5
    x0, g = jnp.array([1.0, -2.0], jnp.float64), jnp.array([0.3, -0.7], jnp.float64)
    traj, state = _run_lookahead(lookahead(gradtx.sgd(lr), k, alpha), x0, lambda p: g, 3 * k)
    for j in range(1, 4):
        p = traj[j * k - 1]
        want = np.asarray(x0) - j * alpha * k * lr * np.asarray(g)
        np.testing.assert_allclose(p.slow, want, rtol=1e-12)
        np.testing.assert_allclose(p.fast, p.slow, rtol=1e-12)
    np.testing.assert_allclose(traj[k].fast, traj[k - 1].slow - lr * np.asarray(g), rtol=1e-12)
    assert isinstance(state, LookaheadState) and int(state.steps_since_sync) == 0


@pytest.mark.parametrize("reset_state", [False, True])
def test_lookahead_against_float64_reference(reset_state):
    a = jnp.array([1.0, 10.0, 0.1], jnp.float64)  # a narrow quadratic 0.5 sum(a x^2)
    x0 = jnp.array([1.0, 1.0, -3.0], jnp.float64)
    tx = lookahead(gradtx.adam(0.05), 4, 0.6, reset_state=reset_state)
    traj, _ = _run_lookahead(tx, x0, lambda x: a * x, 40)
    oracle = rw.lookahead(ref.adam(0.05), 4, 0.6, reset_state=reset_state)
    fast, slow = np.asarray(x0), np.asarray(x0)
    for k, p in enumerate(traj):
        du_fast, du_slow = oracle.step(np.asarray(a) * fast, (fast, slow))
        fast, slow = fast + du_fast, slow + du_slow
        np.testing.assert_allclose(p.fast, fast, rtol=1e-10, atol=1e-12, err_msg=f"fast, step {k + 1}")
        np.testing.assert_allclose(p.slow, slow, rtol=1e-10, atol=1e-12, err_msg=f"slow, step {k + 1}")


@pytest.mark.parametrize("reset_state", [False, True])
def test_lookahead_matches_optax(reset_state):
    params = LookaheadParams.init_synced(default_params(jnp.float32))
    grads = _grads(params.fast, 60, seed=9)
    ours = lookahead(gradtx.adam(1e-2), 5, 0.5, reset_state)
    theirs = optax.lookahead(optax.adam(1e-2), 5, 0.5, reset_state)
    s1, s2, p = ours.init(params), theirs.init(params), params
    step1, step2 = jax.jit(ours.update), jax.jit(theirs.update)
    for k, g in enumerate(grads):
        u1, s1 = step1(g, s1, p)
        u2, s2 = step2(g, s2, p)
        np.testing.assert_allclose(_flat(u1), _flat(u2), rtol=1e-5, atol=1e-6, err_msg=f"step {k + 1}")
        p = gradtx.apply_updates(p, u1)
    assert [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(s1)[0]] == [
        jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(s2)[0]
    ]


def test_lookahead_contract_dtypes_jit_and_scan():
    # Three dtypes, each traced for its first step only.
    jitted = jax.jit(chex.assert_max_traces(lambda t, g, s, p: t.update(g, s, p), n=3))
    for dtype in (jnp.bfloat16, jnp.float32, jnp.float64):
        fast = jax.tree.map(lambda x, dt=dtype: x.astype(dt), default_params())
        params = LookaheadParams.init_synced(fast)
        tx = lookahead(gradtx.sgd(0.1, 0.9), 3, 0.5)
        grads = _grads(fast, 7, seed=10)
        state, p, outs = tx.init(params), params, []
        sig = jax.tree.map(lambda x: (x.shape, x.dtype), state)
        for g in grads:
            u, state = jitted(tx, g, state, p)
            assert jax.tree.map(lambda x: (x.shape, x.dtype), state) == sig
            assert all(x.dtype == dtype for x in jax.tree.leaves(u))
            p = gradtx.apply_updates(p, u)
            outs.append(u)

        def body(carry, g, tx=tx):
            s, p = carry
            u, s = tx.update(g, s, p)
            return (s, gradtx.apply_updates(p, u)), u

        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *grads)
        _, scanned = jax.lax.scan(body, (tx.init(params), params), stacked)
        for k, u in enumerate(outs):
            np.testing.assert_allclose(_flat(jax.tree.map(lambda x, k=k: x[k], scanned)), _flat(u),
                                       rtol={jnp.bfloat16: 2e-2, jnp.float32: 1e-5}.get(dtype, 1e-12))


def test_lookahead_errors_and_plain_params_init():
    with pytest.raises(ValueError, match=r"lookahead\(sync_period=0\): sync_period must be a whole number >= 1"):
        lookahead(gradtx.sgd(0.1), 0, 0.5)
    with pytest.raises(ValueError, match=r"lookahead\(sync_period=2\.5\): sync_period must be a whole number"):
        lookahead(gradtx.sgd(0.1), 2.5, 0.5)
    tx = lookahead(gradtx.sgd(0.1, 0.9), 2, 0.5)
    fast = {"x": jnp.ones(2)}
    state = tx.init(fast)  # the fast parameters alone are enough to build the state
    assert _bitwise_equal(state, tx.init(LookaheadParams.init_synced(fast)))
    with pytest.raises(ValueError, match=r"lookahead\.update: params are required"):
        tx.update(fast, state)
    with pytest.raises(ValueError, match=r"lookahead\.update: params are required"):
        tx.update(fast, state, fast)


# ==================================================================================================
# Extra keyword arguments reach the inner transformation through every wrapper.
# ==================================================================================================


@pytree_class
class scale_by_value(GradientTransformation):
    """``u = value * g``: needs the extra argument ``value``."""

    def init(self, params):
        del params
        return EmptyState()

    def update(self, updates, state, params=None, *, value=None, **extra):
        if value is None:
            raise ValueError("scale_by_value.update: the extra argument value= is required")
        return jax.tree.map(lambda g: (g * value).astype(g.dtype), updates), state


@pytree_class
class record_value(GradientTransformation):
    """A measure for ``monitor``: ``value * g``, or ``g`` without ``value`` (so that ``init`` can shape it)."""

    def init(self, params):
        del params
        return EmptyState()

    def update(self, updates, state, params=None, *, value=1.0, **extra):
        return jax.tree.map(lambda g: (g * value).astype(g.dtype), updates), state


def _value_sgd(learning_rate):
    return chain(scale_by_value(), scale_by_learning_rate(learning_rate))


EXTRA_WRAPPERS = {
    "MultiSteps(k=1)": (lambda: MultiSteps(scale_by_value(), 1), lambda u: u),
    "MultiSteps(k=2)": (lambda: MultiSteps(scale_by_value(), 2, use_grad_mean=False), lambda u: u),
    "apply_if_finite": (lambda: apply_if_finite(scale_by_value(), 1), lambda u: u),
    "flatten": (lambda: flatten(scale_by_value()), lambda u: u),
    "inject_hyperparams": (lambda: inject_hyperparams(_value_sgd)(1.0), lambda u: u),
    "lookahead": (lambda: lookahead(scale_by_value(), 1, 1.0), lambda u: u.fast),
    "monitor": (lambda: monitor({"v": record_value()}), lambda u: u),
}


@pytest.mark.parametrize("name", list(EXTRA_WRAPPERS))
def test_extra_args_pass_through(name):
    make, pick = EXTRA_WRAPPERS[name]
    tx = make()
    g = {"x": jnp.array([1.0, -2.0], jnp.float32)}
    params = LookaheadParams.init_synced({"x": jnp.zeros(2, jnp.float32)}) if name == "lookahead" else g
    if name != "monitor":  # a measure must run without extra arguments once, in init, to shape its record
        with pytest.raises(ValueError, match="value= is required"):
            tx.update(g, tx.init(params), params)
    outs = []
    for value in (1.0, 3.0):
        state = tx.init(params)
        u = None
        for _ in range(2):  # MultiSteps(k=2) emits on the second mini-step
            u, state = jax.jit(lambda g, s, p, v: tx.update(g, s, p, value=v))(g, state, params, value)
        outs.append(_flat(pick(u)) if name != "monitor" else _flat(state.measurements["v"]))
    np.testing.assert_allclose(outs[1], 3.0 * outs[0], rtol=1e-6)
    assert np.any(outs[0] != 0)


def test_with_extra_args_support_and_gradient_transformation_extra_args():
    adam = gradtx.adam(1e-3)
    assert with_extra_args_support(adam) is adam
    assert isinstance(adam, GradientTransformationExtraArgs)

    def update(u, s, p=None):
        return jax.tree.map(lambda x: 2 * x, u), s

    plain = GradientTransformation(lambda p: EmptyState(), update)
    assert isinstance(plain, GradientTransformation) and not isinstance(plain, GradientTransformationExtraArgs)
    wrapped = with_extra_args_support(plain)
    assert isinstance(wrapped, GradientTransformationExtraArgs)
    g = {"x": jnp.ones(2)}
    u, _ = wrapped.update(g, wrapped.init(g), None, value=1.0)
    np.testing.assert_allclose(u["x"], 2.0)
    built = GradientTransformationExtraArgs(lambda p: EmptyState(), lambda u, s, p=None, **kw: (u, s))
    assert isinstance(built, GradientTransformation)
    wrapped_optax = with_extra_args_support(optax.scale(2.0))
    assert isinstance(wrapped_optax, foreign)
    u, _ = wrapped_optax.update(g, wrapped_optax.init(g), None, value=1.0)
    np.testing.assert_allclose(u["x"], 2.0)
    with pytest.raises(TypeError, match="expected a transformation with init and update"):
        with_extra_args_support(3)


def test_wrappers_hold_optax_transformations():
    params = default_params(jnp.float32)
    grads = _grads(params, 6, seed=11)
    u1, _, _ = _trajectory(MultiSteps(optax.adam(1e-2), 2), params, grads, value=jnp.float32(1.0))
    u2, _, _ = _trajectory(MultiSteps(gradtx.adam(1e-2), 2), params, grads)
    for a, b in zip(u1, u2):
        np.testing.assert_allclose(_flat(a), _flat(b), rtol=1e-5, atol=1e-8)


# ==================================================================================================
# Monitoring: snapshot, monitor, measure_with_ema (Optax's tests and docstring examples).
# ==================================================================================================


def _f(x):
    return jnp.sum(x**2)


def test_snapshot_stores_the_norm_before_clipping():
    before = chain(gradtx.sgd(learning_rate=0.1, momentum=0.9), snapshot("norm_before_clip", tree.norm))
    opt = chain(before, clip_by_global_norm(0.05))
    params = jnp.array([1.0, 2.0, 3.0])
    s_aux, state = before.init(params), opt.init(params)
    assert isinstance(tree.get(state, "norm_before_clip"), jax.Array)
    np.testing.assert_allclose(tree.get(state, "norm_before_clip"), tree.norm(params))  # init: measure(params)
    for _ in range(2):
        grads = jax.grad(_f)(params)
        u_before, s_aux = before.update(grads, s_aux)
        updates, state = opt.update(grads, state)
        params = gradtx.apply_updates(params, updates)
        np.testing.assert_allclose(tree.get(state, "norm_before_clip"), tree.norm(u_before), rtol=1e-6)
    assert isinstance(state[0][1], SnapshotState)


def test_monitor_stores_norms_and_their_ema():
    decay = 0.9
    before = chain(gradtx.sgd(learning_rate=0.1, momentum=0.9),
                   monitor({"norm_before_clip": tree.norm,
                            "norm_before_clip_ema": measure_with_ema(tree.norm, decay, True)}))
    opt = chain(before, clip_by_global_norm(0.05))
    params = jnp.array([1.0, 2.0, 3.0])
    s_aux, state = before.init(params), opt.init(params)
    assert isinstance(state[0][1], MonitorState)
    np.testing.assert_array_equal(tree.get(state, "norm_before_clip"), 0.0)  # zeros before the first update
    ema = 0.0
    for step in range(1, 4):
        grads = jax.grad(_f)(params)
        u_before, s_aux = before.update(grads, s_aux)
        updates, state = jax.jit(opt.update)(grads, state)
        params = gradtx.apply_updates(params, updates)
        n = tree.norm(u_before)
        np.testing.assert_allclose(tree.get(state, "norm_before_clip"), n, rtol=1e-6)
        ema = decay * ema + (1 - decay) * n
        np.testing.assert_allclose(tree.get(state, "norm_before_clip_ema"), ema / (1 - decay**step), rtol=1e-5)


def test_monitor_docstring_example_matches_optax():
    """Optax's monitor docstring: norm 7.48e-01, 1.27e+00 and is_clipped_ema 0.00e+00, 5.26e-01."""

    def make(lib, tr):
        return lib.chain(
            lib.sgd(learning_rate=0.1, momentum=0.9),
            lib.monitor({"norm_before_clip": tr.norm,
                         "is_clipped_ema": lib.measure_with_ema(lambda x: tr.norm(x) > 1.0, decay=0.9)}),
            lib.clip_by_global_norm(1.0),
        )

    lib = types.SimpleNamespace(chain=chain, sgd=gradtx.sgd, clip_by_global_norm=clip_by_global_norm,
                                monitor=monitor, measure_with_ema=measure_with_ema)
    ours, theirs = make(lib, tree), make(optax, optax.tree)
    p1 = p2 = jnp.array([1.0, 2.0, 3.0])
    s1, s2 = ours.init(p1), theirs.init(p2)
    got = []
    for _ in range(2):
        u1, s1 = ours.update(jax.grad(_f)(p1), s1)
        u2, s2 = theirs.update(jax.grad(_f)(p2), s2)
        p1, p2 = gradtx.apply_updates(p1, u1), optax.apply_updates(p2, u2)
        for name in ("norm_before_clip", "is_clipped_ema"):
            np.testing.assert_allclose(tree.get(s1, name), optax.tree.get(s2, name), rtol=1e-6)
        got.append((float(tree.get(s1, "norm_before_clip")), float(tree.get(s1, "is_clipped_ema"))))
    assert [f"{a:.2e}, {b:.2e}" for a, b in got] == ["7.48e-01, 0.00e+00", "1.27e+00, 5.26e-01"]
    assert tree.get(s1, "is_clipped_ema").dtype == jnp.float32  # a bool measure averages in float32


def test_measure_with_ema_state_matches_optax():
    params = default_params(jnp.float32)
    ours, theirs = measure_with_ema(tree.norm, 0.8), optax.measure_with_ema(optax.tree.norm, 0.8)
    s1, s2 = ours.init(params), theirs.init(params)
    paths = [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(s1)[0]]
    assert paths == [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(s2)[0]]
    for g in _grads(params, 5):
        m1, s1 = ours.update(g, s1)
        m2, s2 = theirs.update(g, s2)
        np.testing.assert_allclose(m1, m2, rtol=1e-6)
    with pytest.raises(ValueError, match=r"measure_with_ema\(decay=1\.5\): decay must be in \[0, 1\]"):
        measure_with_ema(tree.norm, 1.5)


def test_monitor_measures_keep_their_order_through_pytree_round_trips():
    tx = monitor({"z": tree.norm, "a": measure_with_ema(tree.norm, 0.5)})
    params = {"x": jnp.ones(2)}
    rebuilt = jax.tree.unflatten(*reversed(jax.tree.flatten(tx)))
    _, s = rebuilt.update(params, tx.init(params), params)
    assert isinstance(s.measure_states[0], EmptyState)  # 'z' first, as given
    with pytest.raises(ValueError, match=r"monitor\(measures=.*\): measures values must be callables"):
        monitor({"a": 3})


# ==================================================================================================
# microbatch (Optax's microbatching tests, and float32 accumulation)
# ==================================================================================================

BATCH = (10, 3)


def _per_example(nonbatch, a, b):
    return a * b, a / b * nonbatch


def _sum_fn(nonbatch, a, b):
    return jnp.sum(nonbatch + a + 2 * b, axis=0)


def _mean_fn(nonbatch, a, b):
    return jnp.mean(nonbatch * a), {"key": jnp.mean(b)}


CASES = {
    "per_example": (_per_example, AccumulationType.CONCAT),
    "sum": (_sum_fn, AccumulationType.SUM),
    "mean": (_mean_fn, AccumulationType.MEAN),
    "mixed": (lambda n, a, b: {"per_example": _per_example(n, a, b), "sum": _sum_fn(n, a, b),
                               "mean": _mean_fn(n, a, b)},
              {"per_example": AccumulationType.CONCAT, "sum": AccumulationType.SUM,
               "mean": AccumulationType.MEAN}),
}


@pytest.mark.parametrize("microbatch_size", [1, 2, 5, 10])
@pytest.mark.parametrize("case", list(CASES))
def test_microbatch_equals_the_full_batch(case, microbatch_size):
    rng = np.random.default_rng(0)
    nonbatch = jnp.asarray(rng.normal())
    a, b = jnp.asarray(rng.normal(size=BATCH)), jnp.asarray(rng.normal(size=BATCH))
    fun, acc = CASES[case]
    got = microbatch(fun, argnums=(1, 2), microbatch_size=microbatch_size, accumulator=acc)(nonbatch, a, b)
    want = fun(nonbatch, a, b)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(x, y, atol=1e-6)
    theirs_acc = jax.tree.map(lambda k: getattr(optax.microbatching.AccumulationType, k.name), acc)
    theirs = optax.microbatch(fun, argnums=(1, 2), microbatch_size=microbatch_size, accumulator=theirs_acc)(
        nonbatch, a, b)
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(theirs)):
        np.testing.assert_allclose(x, y, atol=1e-12)


def test_microbatch_kwargs_argnames_and_in_axes():
    rng = np.random.default_rng(1)
    nonbatch, a, b = jnp.asarray(rng.normal()), jnp.asarray(rng.normal(size=BATCH)), jnp.asarray(rng.normal(size=BATCH))

    def kw_fn(nonbatch, a, *, b):
        return jnp.sum(nonbatch + a + 2 * b, axis=0)

    got = microbatch(kw_fn, argnums=(1,), microbatch_size=2, argnames=("b",))(nonbatch, a, b=b)
    np.testing.assert_allclose(got, kw_fn(nonbatch, a, b=b), atol=1e-6)

    x = jnp.asarray(rng.normal(size=(10, 4, 5)))
    xt = jnp.transpose(x, (1, 0, 2))
    for acc in AccumulationType:
        r0 = microbatch(functools.partial(jnp.einsum, "bij,bkj->ik"), (0, 1), 2, acc, in_axes=0)(x, x)
        r1 = microbatch(functools.partial(jnp.einsum, "ibj,kbj->ik"), (0, 1), 2, acc, in_axes=1)(xt, xt)
        np.testing.assert_allclose(r0, r1, atol=1e-6, rtol=1e-6)

    def fun(a, b):
        return jnp.einsum("bij,kbj->ik", a, b)

    m = functools.partial(microbatch, fun, microbatch_size=2, accumulator=AccumulationType.SUM)
    ans = [m(argnums=(0, 1), in_axes=(0, 1))(x, xt), m(argnums=(1, 0), in_axes=(1, 0))(x, xt),
           m(argnums=(), argnames=("a", "b"), in_axes=(0, 1))(a=x, b=xt),
           m(argnums=(), argnames=("b", "a"), in_axes=(1, 0))(b=xt, a=x),
           m(argnums=0, argnames="b", in_axes=(0, 1))(x, b=xt)]
    for r in ans[1:]:
        np.testing.assert_allclose(r, ans[0], atol=1e-10)


def test_microbatch_splits_the_batch_strided_like_optax():
    x = jnp.arange(6).astype(jnp.float32)
    got = microbatch(lambda v: v[:-1] @ v[1:], 0, 3, AccumulationType.SUM)(x)
    np.testing.assert_allclose(got, 0 * 2 + 2 * 4 + 1 * 3 + 3 * 5)  # micro-batches [0, 2, 4] and [1, 3, 5]
    r = reshape_batch_axis(jnp.arange(6), 3)
    np.testing.assert_array_equal(r, [[0, 2, 4], [1, 3, 5]])


def test_microbatch_errors_dtypes_and_early_stop():
    a = jnp.ones(BATCH)
    with pytest.raises(ValueError, match="divisible"):
        microbatch(_sum_fn, (1, 2), 3)(0.0, a, a)
    with pytest.raises(ValueError, match=r"microbatch\(microbatch_size=0\)"):
        microbatch(_sum_fn, (1, 2), 0)
    with pytest.raises(ValueError, match="MEAN accumulator needs floating-point"):
        microbatch(jnp.sum, 0, 2, AccumulationType.MEAN)(jnp.arange(4))
    for dt in (jnp.float16, jnp.bfloat16, jnp.float32):
        b = jnp.ones(BATCH, dt)
        assert microbatch(_sum_fn, (1, 2), 2)(jnp.asarray(0.5, dt), b, b).dtype == dt
    out = microbatch(lambda v: v, 0, 3, AccumulationType.CONCAT, num_real_microbatches=2)(
        jnp.arange(12).astype(jnp.float32) + 1)
    assert int(jnp.sum(out != 0)) == 6

    @jax.jit
    def dynamic(x, steps):
        return microbatch(jnp.sum, 0, 4, num_real_microbatches=steps)(x)

    assert float(dynamic(jnp.ones(128), 4)) == 16.0
    assert microbatch(_sum_fn, 0, None) is _sum_fn


def test_microbatch_running_mean_and_custom_accumulator():
    x = jnp.arange(12.0)
    got = microbatch(jnp.mean, 0, 3, AccumulationType.RUNNING_MEAN, num_real_microbatches=2)(x)
    np.testing.assert_allclose(got, np.mean(np.asarray(x).reshape(3, 4).T[:2]))  # mean over the 2 run
    maximum = Accumulator(init=lambda s: jnp.full(s.shape, -jnp.inf, s.dtype),
                          update=lambda c, v, i: jnp.maximum(c, v), finalize=lambda c: c,
                          aggregate=lambda vs: jnp.max(vs, axis=0))
    np.testing.assert_allclose(microbatch(jnp.max, 0, 2, maximum)(x), 11.0)


def test_microbatch_sums_bfloat16_in_float32():
    """Optax sums bfloat16 outputs in bfloat16, where 256 + 1 == 256; gradtx accumulates in float32."""
    x = jnp.ones(4096, jnp.bfloat16)
    ours = microbatch(jnp.sum, 0, 1)(x)
    theirs = optax.microbatch(jnp.sum, 0, 1)(x)
    assert ours.dtype == jnp.bfloat16 and float(ours) == 4096.0
    assert float(theirs) < 4096.0
