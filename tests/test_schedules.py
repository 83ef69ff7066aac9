"""Tests of gradtx.schedules: closed forms, the Optax cross-check, pytree behaviour and validation."""

from __future__ import annotations

import dataclasses
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradtx import schedules as sch
from gradtx.schedules import (
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    join_schedules,
    linear_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
    polynomial_schedule,
    transformer_warmup_schedule,
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
    warmup_stable_decay_schedule,
)

N = 300
COUNTS = np.arange(N + 1)


# --------------------------------------------------------------------------------------------------
# Independent closed forms (plain Python floats, float64).
# --------------------------------------------------------------------------------------------------


def ref_polynomial(c, init, end, power, steps, begin=0):
    t = min(max(c - begin, 0), steps)
    return (init - end) * (1 - t / steps) ** power + end


def ref_exponential(c, init, steps, rate, begin=0, staircase=False, end=None):
    d = c - begin
    if d <= 0:
        v = init
    else:
        p = d / steps
        if staircase:
            p = math.floor(p)
        v = init * rate**p
    if end is not None:
        v = max(v, end) if rate < 1 else min(v, end)
    return v


def ref_cosine(c, init, decay_steps, alpha=0.0, exponent=1.0):
    c = min(c, decay_steps)
    return init * ((1 - alpha) * (0.5 * (1 + math.cos(math.pi * c / decay_steps))) ** exponent + alpha)


def ref_piecewise_constant(c, init, bs):
    v = init
    for b, s in bs.items():
        if c >= b:
            v *= s
    return v


def ref_piecewise_interpolate(c, kind, init, bs):
    knots = [0, *sorted(bs)]
    values = [init]
    for b in sorted(bs):
        values.append(values[-1] * bs[b])
    for j in range(1, len(knots)):
        if knots[j - 1] <= c < knots[j]:
            pct = (c - knots[j - 1]) / max(knots[j] - knots[j - 1], 1)
            w = pct if kind == "linear" else (1 - math.cos(math.pi * pct)) / 2
            return values[j - 1] + (values[j] - values[j - 1]) * w
    return values[-1]


def ref_warmup(c, init, peak, warmup):
    return init + (peak - init) * c / warmup


def ref_warmup_constant(c, init, peak, warmup):
    return ref_warmup(c, init, peak, warmup) if c < warmup else peak


def ref_warmup_cosine(c, init, peak, warmup, decay_steps, end=0.0, exponent=1.0):
    if c < warmup:
        return ref_warmup(c, init, peak, warmup)
    span = decay_steps - warmup
    t = min(c - warmup, span)
    return end + (peak - end) * (0.5 * (1 + math.cos(math.pi * t / span))) ** exponent


def ref_warmup_exponential(c, init, peak, warmup, steps, rate, begin=0, staircase=False, end=None):
    if c < warmup:
        return ref_warmup(c, init, peak, warmup)
    return ref_exponential(c - warmup, peak, steps, rate, begin, staircase, end)


def ref_transformer(c, d_model, warmup):
    s = c + 1
    return d_model**-0.5 * min(s**-0.5, s * warmup**-1.5)


def ref_wsd(c, peak, warmup, stable, decay, init=0.0, end=0.0, decay_type="linear"):
    if c < warmup:
        return ref_warmup(c, init, peak, warmup)
    if c < warmup + stable:
        return peak
    f = min((c - warmup - stable) / decay, 1.0)
    if decay_type == "linear":
        return peak + (end - peak) * f
    if decay_type == "cosine":
        return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * f))
    return end + (peak - end) * (1 - math.sqrt(f))


# (id, gradtx schedule, closed form count -> value)
CLOSED_FORM = [
    ("constant", constant_schedule(0.3), lambda c: 0.3),
    ("polynomial", polynomial_schedule(1.0, 0.1, 2.0, 100), lambda c: ref_polynomial(c, 1.0, 0.1, 2.0, 100)),
    ("polynomial_begin", polynomial_schedule(0.5, 2.0, 0.5, 40, 25),
     lambda c: ref_polynomial(c, 0.5, 2.0, 0.5, 40, 25)),
    ("linear", linear_schedule(1.0, 0.0, 10), lambda c: ref_polynomial(c, 1.0, 0.0, 1, 10)),
    ("linear_begin", linear_schedule(0.0, 3.0, 50, 7), lambda c: ref_polynomial(c, 0.0, 3.0, 1, 50, 7)),
    ("exponential", exponential_decay(2.0, 25, 0.5), lambda c: ref_exponential(c, 2.0, 25, 0.5)),
    ("exponential_stair_end", exponential_decay(1.0, 20, 0.7, 10, True, 0.05),
     lambda c: ref_exponential(c, 1.0, 20, 0.7, 10, True, 0.05)),
    ("exponential_growth_end", exponential_decay(0.1, 30, 1.5, end_value=1.0),
     lambda c: ref_exponential(c, 0.1, 30, 1.5, end=1.0)),
    ("cosine", cosine_decay_schedule(1.0, 200), lambda c: ref_cosine(c, 1.0, 200)),
    ("cosine_alpha_exp", cosine_decay_schedule(0.4, 150, 0.1, 2.0),
     lambda c: ref_cosine(c, 0.4, 150, 0.1, 2.0)),
    ("piecewise_constant", piecewise_constant_schedule(0.1, {50: 0.1, 100: 0.5, 200: 0.1}),
     lambda c: ref_piecewise_constant(c, 0.1, {50: 0.1, 100: 0.5, 200: 0.1})),
    ("piecewise_constant_resnet", piecewise_constant_schedule(0.01, {0: 1.0, 40: 10.0}),
     lambda c: ref_piecewise_constant(c, 0.01, {0: 1.0, 40: 10.0})),
    ("piecewise_constant_empty", piecewise_constant_schedule(0.7), lambda c: 0.7),
    ("piecewise_linear", piecewise_interpolate_schedule("linear", 1.0, {40: 0.1, 100: 3.0, 101: 0.5}),
     lambda c: ref_piecewise_interpolate(c, "linear", 1.0, {40: 0.1, 100: 3.0, 101: 0.5})),
    ("piecewise_cosine", piecewise_interpolate_schedule("cosine", 2.0, {0: 0.5, 60: 0.0, 250: 1.0}),
     lambda c: ref_piecewise_interpolate(c, "cosine", 2.0, {0: 0.5, 60: 0.0, 250: 1.0})),
    ("piecewise_interpolate_empty", piecewise_interpolate_schedule("cosine", 0.25), lambda c: 0.25),
    ("warmup_constant", warmup_constant_schedule(0.01, 1.0, 30),
     lambda c: ref_warmup_constant(c, 0.01, 1.0, 30)),
    ("warmup_constant_no_warmup", warmup_constant_schedule(0.01, 1.0, 0), lambda c: 1.0),
    ("warmup_cosine", warmup_cosine_decay_schedule(0.0, 1.0, 20, 200),
     lambda c: ref_warmup_cosine(c, 0.0, 1.0, 20, 200)),
    ("warmup_cosine_end_exp", warmup_cosine_decay_schedule(0.1, 2.0, 50, 120, 0.2, 1.5),
     lambda c: ref_warmup_cosine(c, 0.1, 2.0, 50, 120, 0.2, 1.5)),
    ("warmup_cosine_no_warmup", warmup_cosine_decay_schedule(0.5, 1.0, 0, 100, 0.1),
     lambda c: ref_warmup_cosine(c, 0.5, 1.0, 0, 100, 0.1)),
    ("warmup_exponential", warmup_exponential_decay_schedule(0.0, 1.0, 15, 20, 0.8),
     lambda c: ref_warmup_exponential(c, 0.0, 1.0, 15, 20, 0.8)),
    ("warmup_exponential_all", warmup_exponential_decay_schedule(0.1, 1.0, 10, 25, 0.5, 5, True, 0.02),
     lambda c: ref_warmup_exponential(c, 0.1, 1.0, 10, 25, 0.5, 5, True, 0.02)),
    ("join", join_schedules([linear_schedule(0.0, 1.0, 10), constant_schedule(1.0),
                             cosine_decay_schedule(1.0, 100)], [10, 60]),
     lambda c: (ref_polynomial(c, 0.0, 1.0, 1, 10) if c < 10
                else 1.0 if c < 60 else ref_cosine(c - 60, 1.0, 100))),
    ("join_lambda",
     join_schedules([constant_schedule(2.0), lambda c: 0.5 * jnp.asarray(c, jnp.float32)], [100]),
     lambda c: 2.0 if c < 100 else 0.5 * (c - 100)),
    ("transformer", transformer_warmup_schedule(512, 40), lambda c: ref_transformer(c, 512, 40)),
    ("transformer_4000", transformer_warmup_schedule(64, 4000), lambda c: ref_transformer(c, 64, 4000)),
    ("wsd_linear", warmup_stable_decay_schedule(1.0, 20, 100, 80), lambda c: ref_wsd(c, 1.0, 20, 100, 80)),
    ("wsd_cosine", warmup_stable_decay_schedule(2.0, 30, 50, 100, 0.1, 0.2, "cosine"),
     lambda c: ref_wsd(c, 2.0, 30, 50, 100, 0.1, 0.2, "cosine")),
    ("wsd_1_sqrt", warmup_stable_decay_schedule(1.0, 0, 0, 150, end_value=0.01, decay_type="1-sqrt"),
     lambda c: ref_wsd(c, 1.0, 0, 0, 150, end=0.01, decay_type="1-sqrt")),
]
CASE_IDS = [name for name, _, _ in CLOSED_FORM]
SCHEDULES = {name: s for name, s, _ in CLOSED_FORM}


def _close(got, want, scale=1.0):
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=2e-5,
                               atol=2e-6 * scale)


DEFAULT_FLOAT = jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


@pytest.mark.parametrize("name,schedule,ref", CLOSED_FORM, ids=CASE_IDS)
def test_closed_form(name, schedule, ref):
    want = np.array([ref(int(c)) for c in COUNTS])
    got = jax.vmap(schedule)(jnp.asarray(COUNTS))
    assert got.dtype == DEFAULT_FLOAT  # float32, or float64 when x64 is enabled (as in this suite)
    _close(got, want, scale=np.max(np.abs(want)))
    # Python ints, NumPy ints and a whole array of counts at once give the same values.
    for c in (0, 10, 11, 100, 1000):
        _close(schedule(c), ref(c), scale=np.max(np.abs(want)))
        _close(schedule(np.int64(c)), ref(c), scale=np.max(np.abs(want)))
    _close(schedule(jnp.asarray(COUNTS, jnp.int32)), want, scale=np.max(np.abs(want)))


@pytest.mark.parametrize("name,schedule,ref", CLOSED_FORM, ids=CASE_IDS)
def test_jit_with_schedule_as_argument(name, schedule, ref):
    del name, ref
    counts = jnp.arange(N + 1)
    eager = jax.vmap(schedule)(counts)
    jitted = jax.jit(lambda s, c: jax.vmap(s)(c))(schedule, counts)
    np.testing.assert_allclose(jitted, eager, rtol=1e-6, atol=1e-7)
    # A traced int32 scalar count inside jit.
    np.testing.assert_allclose(jax.jit(lambda s, c: s(c))(schedule, jnp.int32(37)), schedule(37), rtol=1e-6)


@pytest.mark.parametrize("name,schedule,ref", CLOSED_FORM, ids=CASE_IDS)
def test_gradients_wrt_hyperparameters_are_finite(name, schedule, ref):
    del name, ref
    # Differentiate with respect to the list of leaves (a gradient tree of the schedule's own class would
    # be rebuilt through its validating constructor, with values such as 0 for transition_steps).
    leaves, treedef = jax.tree.flatten(schedule)
    leaves = [float(x) for x in leaves]
    grads = jax.vmap(jax.grad(lambda ls, c: jax.tree.unflatten(treedef, ls)(c)), in_axes=(None, 0))(
        leaves, jnp.arange(N + 1)
    )
    for g in grads:
        assert np.all(np.isfinite(g))


@pytest.mark.parametrize("name,schedule,ref", CLOSED_FORM, ids=CASE_IDS)
def test_strict_dtype_promotion(name, schedule, ref):
    del name
    with jax.numpy_dtype_promotion("strict"):
        got = jax.jit(lambda s, c: jax.vmap(s)(c))(schedule, jnp.arange(60))
    _close(got, [ref(c) for c in range(60)], scale=max(abs(ref(c)) for c in range(60)) or 1.0)


@pytest.mark.parametrize("name,schedule,ref", CLOSED_FORM, ids=CASE_IDS)
def test_repr_reads_like_the_call(name, schedule, ref):
    del name, ref
    text = repr(schedule)
    assert text.startswith(type(schedule).__name__ + "(")
    for f in dataclasses.fields(schedule):
        assert f"{f.name}=" in text
    if "lambda" not in text:  # the repr is the call: evaluating it rebuilds an equal schedule
        rebuilt = eval(text, vars(sch))  # our own repr
        assert type(rebuilt) is type(schedule)
        np.testing.assert_allclose(jax.vmap(rebuilt)(jnp.arange(N)), jax.vmap(schedule)(jnp.arange(N)))


@pytest.mark.parametrize("name,schedule,ref", CLOSED_FORM, ids=CASE_IDS)
def test_flatten_unflatten_round_trip(name, schedule, ref):
    del name, ref
    leaves, treedef = jax.tree.flatten(schedule)
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert type(rebuilt) is type(schedule)
    assert repr(rebuilt) == repr(schedule)
    assert not any(callable(x) for x in leaves)
    np.testing.assert_array_equal(jax.vmap(rebuilt)(jnp.arange(N)), jax.vmap(schedule)(jnp.arange(N)))


# --------------------------------------------------------------------------------------------------
# The Optax cross-check: same arguments, same values at counts 0..300.
# --------------------------------------------------------------------------------------------------

OPTAX_CASES = [
    ("constant_schedule", dict(value=0.3)),
    ("constant_schedule", dict(value=-2.0)),
    ("polynomial_schedule", dict(init_value=1.0, end_value=0.01, power=1.0, transition_steps=100)),
    ("polynomial_schedule", dict(init_value=1.0, end_value=0.1, power=2.0, transition_steps=150,
                                 transition_begin=30)),
    ("polynomial_schedule", dict(init_value=0.2, end_value=1.0, power=0.5, transition_steps=7,
                                 transition_begin=3)),
    ("linear_schedule", dict(init_value=1.0, end_value=0.0, transition_steps=10)),
    ("linear_schedule", dict(init_value=0.0, end_value=2.0, transition_steps=120, transition_begin=45)),
    ("exponential_decay", dict(init_value=1.0, transition_steps=20, decay_rate=0.9)),
    ("exponential_decay", dict(init_value=1.0, transition_steps=20, decay_rate=0.9, staircase=True)),
    ("exponential_decay", dict(init_value=2.0, transition_steps=13, decay_rate=0.5, transition_begin=40,
                               staircase=True, end_value=0.1)),
    ("exponential_decay", dict(init_value=2.0, transition_steps=13, decay_rate=0.5, transition_begin=40,
                               end_value=0.1)),
    ("exponential_decay", dict(init_value=0.01, transition_steps=25, decay_rate=2.0, end_value=1.0)),
    ("cosine_decay_schedule", dict(init_value=1.0, decay_steps=200)),
    ("cosine_decay_schedule", dict(init_value=0.5, decay_steps=100, alpha=0.1)),
    ("cosine_decay_schedule", dict(init_value=0.5, decay_steps=250, alpha=0.05, exponent=2.0)),
    ("piecewise_constant_schedule", dict(init_value=0.1)),
    ("piecewise_constant_schedule", dict(init_value=0.1, boundaries_and_scales={100: 0.1, 200: 0.1})),
    ("piecewise_constant_schedule", dict(init_value=0.01,
                                         boundaries_and_scales={0: 2.0, 30: 10.0, 250: 0.5})),
    ("piecewise_interpolate_schedule", dict(interpolate_type="linear", init_value=1.0,
                                            boundaries_and_scales={40: 0.1, 80: 0.01})),
    ("piecewise_interpolate_schedule", dict(interpolate_type="cosine", init_value=1.0,
                                            boundaries_and_scales={40: 0.1, 80: 10.0, 81: 0.5, 200: 0.0})),
    ("piecewise_interpolate_schedule", dict(interpolate_type="linear", init_value=0.3)),
    ("warmup_constant_schedule", dict(init_value=0.0, peak_value=1.0, warmup_steps=50)),
    ("warmup_constant_schedule", dict(init_value=0.5, peak_value=0.1, warmup_steps=1)),
    ("warmup_cosine_decay_schedule", dict(init_value=0.0, peak_value=1.0, warmup_steps=20, decay_steps=200)),
    ("warmup_cosine_decay_schedule", dict(init_value=0.1, peak_value=1.0, warmup_steps=50, decay_steps=250,
                                          end_value=0.05)),
    ("warmup_cosine_decay_schedule", dict(init_value=0.1, peak_value=2.0, warmup_steps=10, decay_steps=100,
                                          end_value=0.2, exponent=3.0)),
    ("warmup_exponential_decay_schedule", dict(init_value=0.0, peak_value=1.0, warmup_steps=30,
                                               transition_steps=20, decay_rate=0.8)),
    ("warmup_exponential_decay_schedule", dict(init_value=0.1, peak_value=1.0, warmup_steps=30,
                                               transition_steps=20, decay_rate=0.8, transition_begin=15,
                                               staircase=True, end_value=0.2)),
    ("warmup_exponential_decay_schedule", dict(init_value=0.1, peak_value=0.2, warmup_steps=5,
                                               transition_steps=40, decay_rate=3.0, end_value=1.0)),
]


@pytest.mark.parametrize("name,kwargs", OPTAX_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTAX_CASES)])
def test_matches_optax(name, kwargs):
    ours = getattr(sch, name)(**kwargs)
    theirs = getattr(optax, name)(**kwargs)
    counts = jnp.arange(N + 1)
    np.testing.assert_allclose(jax.vmap(ours)(counts), jax.vmap(theirs)(counts), rtol=1e-5, atol=1e-7)
    for c in (0, 1, 10, 100, N):
        np.testing.assert_allclose(ours(c), theirs(c), rtol=1e-5, atol=1e-7)


def test_join_schedules_matches_optax():
    ours = join_schedules(
        [linear_schedule(0.0, 1.0, 20), cosine_decay_schedule(1.0, 100, 0.1),
         exponential_decay(0.1, 10, 0.5)],
        [20, 150],
    )
    theirs = optax.join_schedules(
        [optax.linear_schedule(0.0, 1.0, 20), optax.cosine_decay_schedule(1.0, 100, 0.1),
         optax.exponential_decay(0.1, 10, 0.5)],
        [20, 150],
    )
    counts = jnp.arange(N + 1)
    np.testing.assert_allclose(jax.vmap(ours)(counts), jax.vmap(theirs)(counts), rtol=1e-5, atol=1e-7)


def test_documented_differences_from_optax():
    # warmup_steps=0 means "no warm-up" (peak from the start); Optax's linear schedule would fall back to
    # a constant init_value.
    np.testing.assert_allclose(warmup_constant_schedule(0.0, 1.0, 0)(5), 1.0)
    # Optax logs and falls back on bad input; gradtx raises.
    with pytest.raises(ValueError):
        linear_schedule(1.0, 0.0, 0)


# --------------------------------------------------------------------------------------------------
# Pytree behaviour.
# --------------------------------------------------------------------------------------------------


def test_schedule_as_jit_argument_traces_once():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(schedule, count):
        return schedule(count)

    np.testing.assert_allclose(f(linear_schedule(1.0, 0.0, 10), 3), 0.7, rtol=1e-6)
    np.testing.assert_allclose(f(linear_schedule(2.0, 0.5, 10), 3), 2.0 - 1.5 * 0.3, rtol=1e-6)
    np.testing.assert_allclose(f(linear_schedule(2.0, 0.5, 20, 4), 3), 2.0, rtol=1e-6)


def test_piecewise_scales_are_leaves_and_boundaries_are_structure():
    a = piecewise_constant_schedule(1.0, {10: 0.1, 20: 0.5})
    b = piecewise_constant_schedule(2.0, {20.0: 0.3, 10: 0.2})  # float keys normalised, order irrelevant
    c = piecewise_constant_schedule(1.0, {10: 0.1, 30: 0.5})
    assert jax.tree.structure(a) == jax.tree.structure(b)
    assert jax.tree.structure(a) != jax.tree.structure(c)
    assert jax.tree.leaves(b) == [2.0, 0.2, 0.3]
    assert list(b.boundaries_and_scales) == [10, 20]
    assert all(type(k) is int for k in b.boundaries_and_scales)
    assert piecewise_constant_schedule(1.0, None).boundaries_and_scales == {}


def test_static_options_are_structure():
    a = exponential_decay(1.0, 10, 0.5)
    b = exponential_decay(1.0, 10, 0.5, staircase=True)
    assert jax.tree.structure(a) != jax.tree.structure(b)
    assert len(jax.tree.leaves(a)) == 4  # init_value, transition_steps, decay_rate, transition_begin
    assert len(jax.tree.leaves(exponential_decay(1.0, 10, 0.5, end_value=0.1))) == 5
    w = warmup_stable_decay_schedule(1.0, 1, 2, 3, decay_type="cosine")
    assert "cosine" not in [str(x) for x in jax.tree.leaves(w)]


def test_vmap_over_counts_plots_the_schedule():
    s = warmup_cosine_decay_schedule(0.0, 1.0, 10, 100)
    curve = jax.vmap(s)(jnp.arange(120))
    assert curve.shape == (120,)
    assert float(curve[0]) == 0.0
    np.testing.assert_allclose(curve[10], 1.0)
    np.testing.assert_allclose(curve[100:], 0.0, atol=1e-7)


def test_vmap_over_schedules():
    a, b = linear_schedule(1.0, 0.0, 10), linear_schedule(2.0, 1.0, 10)
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), a, b)
    np.testing.assert_allclose(jax.vmap(lambda s: s(5))(stacked), [0.5, 1.5], rtol=1e-6)


def test_grad_wrt_init_value():
    assert jax.grad(lambda v: linear_schedule(v, 0.0, 10)(3))(1.0) == pytest.approx(0.7)


def test_grad_wrt_hyperparameters_matches_finite_differences():
    def value(rate, peak):
        return warmup_exponential_decay_schedule(0.0, peak, 10, 20.0, rate, end_value=0.01)(45)

    g_rate, g_peak = jax.grad(value, argnums=(0, 1))(0.8, 1.0)
    # value = peak * rate ** (35 / 20) after the warm-up
    assert float(g_rate) == pytest.approx(1.0 * 1.75 * 0.8**0.75, rel=1e-5)
    assert float(g_peak) == pytest.approx(0.8**1.75, rel=1e-5)


def test_repr_shows_every_field():
    assert repr(linear_schedule(1.0, 0.0, 10)) == (
        "linear_schedule(init_value=1.0, end_value=0.0, transition_steps=10, transition_begin=0)"
    )
    assert repr(exponential_decay(1.0, 10, 0.5)) == (
        "exponential_decay(init_value=1.0, transition_steps=10, decay_rate=0.5, transition_begin=0, "
        "staircase=False, end_value=None)"
    )
    assert repr(piecewise_constant_schedule(0.01, {400: 10.0})) == (
        "piecewise_constant_schedule(init_value=0.01, boundaries_and_scales={400: 10.0})"
    )
    assert repr(warmup_stable_decay_schedule(1.0, 10, 20, 30)) == (
        "warmup_stable_decay_schedule(peak_value=1.0, warmup_steps=10, stable_steps=20, decay_steps=30, "
        "init_value=0.0, end_value=0.0, decay_type='linear')"
    )
    # Concrete arrays read as the numbers they hold (integer arrays as ints), tracers as <traced>.
    lin = linear_schedule(1.0, 0.0, 10)
    assert repr(jax.tree.map(jnp.asarray, lin)) == repr(lin)
    seen = []
    jax.jit(lambda s: seen.append(repr(s)))(linear_schedule(1.0, 0.0, 10))
    assert seen == ["linear_schedule(init_value=<traced>, end_value=<traced>, transition_steps=<traced>, "
                    "transition_begin=<traced>)"]
    join = join_schedules([constant_schedule(1.0), linear_schedule(1.0, 0.0, 5)], [3])
    assert repr(join) == (
        "join_schedules(schedules=(constant_schedule(value=1.0), linear_schedule(init_value=1.0, "
        "end_value=0.0, transition_steps=5, transition_begin=0)), boundaries=(3,))"
    )


def test_join_keeps_plain_functions_static():
    def halve(c):
        return 0.5 * c

    join = join_schedules([linear_schedule(1.0, 0.0, 10), lambda c: 0.1, halve], [10, 20])
    leaves = jax.tree.leaves(join)
    assert not any(callable(x) for x in leaves)
    assert leaves == [1.0, 0.0, 10, 0, 10, 20]
    assert "<lambda>" in repr(join) and "halve" in repr(join)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(s, c):
        return s(c)

    np.testing.assert_allclose(f(join, 25), 2.5)
    np.testing.assert_allclose(f(jax.tree.map(lambda x: x * 2, join), 5), 1.0 * 2 - 2.0 * 5 / 20)


def test_join_passes_the_shifted_count():
    seen = []
    join = join_schedules([constant_schedule(0.0), lambda c: (seen.append(c), c * 1.0)[1]], [7])
    np.testing.assert_allclose(join(10), 3.0)
    assert int(seen[-1]) == 3


def test_float64_hyperparameters_compute_in_float64():
    with jax.enable_x64(True):
        s = cosine_decay_schedule(np.float64(1.0), 10)
        assert s(3).dtype == jnp.float64
        assert jax.jit(lambda s, c: s(c))(s, 3).dtype == jnp.float64
        # Python floats are weak: JAX's default float (float64 under x64).
        assert linear_schedule(1.0, 0.0, 10)(jnp.arange(3)).dtype == jnp.float64
    # Low-precision hyperparameters are computed in float32 or wider (the default float).
    assert linear_schedule(jnp.bfloat16(1.0), 0.0, 10)(3).dtype == DEFAULT_FLOAT


def test_transformer_schedule_peaks_at_warmup():
    s = transformer_warmup_schedule(512, 4000)
    curve = np.asarray(jax.vmap(s)(jnp.arange(10_000)))
    assert int(np.argmax(curve)) in (3998, 3999)  # s = count + 1 = warmup_steps
    np.testing.assert_allclose(curve.max(), (512 * 4000) ** -0.5, rtol=1e-5)


# --------------------------------------------------------------------------------------------------
# Validation: ValueError naming the call, the argument and the bad value.
# --------------------------------------------------------------------------------------------------

_lin = linear_schedule(1.0, 0.0, 10)
nan, inf = float("nan"), float("inf")

# (call, positional args, keyword args, the argument named in the message, the bad value as it reads)
BAD = [
    ("constant_schedule", (inf,), {}, "value", "inf"),
    ("constant_schedule", ("0.1",), {}, "value", "'0.1'"),
    ("polynomial_schedule", (1.0, 0.0, nan, 10), {}, "power", "nan"),
    ("polynomial_schedule", (1.0, 0.0, 1.0, -5), {}, "transition_steps", "-5"),
    ("polynomial_schedule", (1.0, 0.0, 1.0, 5, -1), {}, "transition_begin", "-1"),
    ("linear_schedule", (1.0, 0.0, 0), {}, "transition_steps", "0"),
    ("linear_schedule", (nan, 0.0, 10), {}, "init_value", "nan"),
    ("linear_schedule", (1.0, inf, 10), {}, "end_value", "inf"),
    ("linear_schedule", (1.0, 0.0, 10, -3), {}, "transition_begin", "-3"),
    ("exponential_decay", (1.0, 0, 0.5), {}, "transition_steps", "0"),
    ("exponential_decay", (1.0, 10, 0.0), {}, "decay_rate", "0.0"),
    ("exponential_decay", (1.0, 10, inf), {}, "decay_rate", "inf"),
    ("exponential_decay", (1.0, 10, 0.5, -2), {}, "transition_begin", "-2"),
    ("exponential_decay", (1.0, 10, 0.5), {"end_value": nan}, "end_value", "nan"),
    ("cosine_decay_schedule", (1.0, 0), {}, "decay_steps", "0"),
    ("cosine_decay_schedule", (1.0, 10), {"alpha": nan}, "alpha", "nan"),
    ("cosine_decay_schedule", (1.0, 10), {"exponent": inf}, "exponent", "inf"),
    ("piecewise_constant_schedule", (1.0, {-5: 0.1}), {}, "boundaries_and_scales", "-5"),
    ("piecewise_constant_schedule", (1.0, {5: inf}), {}, "boundaries_and_scales", "inf"),
    ("piecewise_constant_schedule", (1.0, {2.5: 0.1}), {}, "boundaries_and_scales", "2.5"),
    ("piecewise_constant_schedule", (1.0, [(5, 0.1)]), {}, "boundaries_and_scales", "[(5, 0.1)]"),
    ("piecewise_interpolate_schedule", ("cubic", 1.0), {}, "interpolate_type", "'cubic'"),
    ("piecewise_interpolate_schedule", ("linear", 1.0, {5: -0.1}), {}, "boundaries_and_scales", "-0.1"),
    ("piecewise_interpolate_schedule", ("linear", nan), {}, "init_value", "nan"),
    ("warmup_constant_schedule", (0.0, 1.0, -1), {}, "warmup_steps", "-1"),
    ("warmup_constant_schedule", (0.0, nan, 10), {}, "peak_value", "nan"),
    ("warmup_cosine_decay_schedule", (0.0, 1.0, 10, 10), {}, "decay_steps", "10"),
    ("warmup_cosine_decay_schedule", (0.0, 1.0, 20, 10), {}, "decay_steps", "10"),
    ("warmup_cosine_decay_schedule", (0.0, 1.0, -1, 10), {}, "warmup_steps", "-1"),
    ("warmup_cosine_decay_schedule", (0.0, 1.0, 0, 10), {"end_value": inf}, "end_value", "inf"),
    ("warmup_exponential_decay_schedule", (0.0, 1.0, 5, 0, 0.5), {}, "transition_steps", "0"),
    ("warmup_exponential_decay_schedule", (0.0, 1.0, 5, 10, 0), {}, "decay_rate", "0"),
    ("warmup_exponential_decay_schedule", (0.0, 1.0, -5, 10, 0.5), {}, "warmup_steps", "-5"),
    ("join_schedules", ([_lin, _lin], [10, 20]), {}, "boundaries", "(10, 20)"),
    ("join_schedules", ([_lin, _lin], [-1]), {}, "boundaries", "-1"),
    ("join_schedules", ([_lin, 3.0], [10]), {}, "schedules", "3.0"),
    ("join_schedules", ([], []), {}, "schedules", "()"),
    ("transformer_warmup_schedule", (0, 4000), {}, "d_model", "0"),
    ("transformer_warmup_schedule", (512, 0), {}, "warmup_steps", "0"),
    ("warmup_stable_decay_schedule", (1.0, 10, 10, 0), {}, "decay_steps", "0"),
    ("warmup_stable_decay_schedule", (1.0, 10, -1, 10), {}, "stable_steps", "-1"),
    ("warmup_stable_decay_schedule", (1.0, -2, 1, 10), {}, "warmup_steps", "-2"),
    ("warmup_stable_decay_schedule", (1.0, 1, 1, 10), {"decay_type": "sqrt"}, "decay_type", "'sqrt'"),
    ("warmup_stable_decay_schedule", (nan, 1, 1, 10), {}, "peak_value", "nan"),
]


@pytest.mark.parametrize("call,args,kwargs,arg,bad", BAD, ids=[f"{c}-{a}-{b}" for c, _, _, a, b in BAD])
def test_bad_input_raises(call, args, kwargs, arg, bad):
    with pytest.raises(ValueError) as info:
        getattr(sch, call)(*args, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{call}({arg}=")
    assert arg in message
    assert bad in message


def test_valid_edge_values_are_accepted():
    warmup_constant_schedule(0.0, 1.0, 0)
    warmup_cosine_decay_schedule(0.0, 1.0, 0, 1)
    warmup_stable_decay_schedule(1.0, 0, 0, 1)
    exponential_decay(1.0, 1, -0.5)
    piecewise_constant_schedule(1.0, {0: -1.0})
    piecewise_interpolate_schedule("linear", 1.0, {0: 0.0})
    join_schedules([_lin], [])


def test_tracers_are_not_validated():
    # Constructing a schedule inside a traced function with traced hyperparameters does not raise.
    out = jax.jit(lambda steps: linear_schedule(1.0, 0.0, steps)(3))(10)
    np.testing.assert_allclose(out, 0.7, rtol=1e-6)
