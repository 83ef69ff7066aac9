"""One-cycle and SGDR schedules: closed forms, the float64 reference, Optax, pytree behaviour and errors."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradtx.schedules import cosine_onecycle_schedule, linear_onecycle_schedule, sgdr_schedule
from gradtx.testing.reference import schedules_extra as ref

COUNTS = np.arange(0, 301)

SGDR_CYCLES = [
    {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 10, "decay_steps": 100, "end_value": 0.1},
    {"init_value": 0.1, "peak_value": 0.5, "warmup_steps": 5, "decay_steps": 80, "exponent": 2.0},
    {"init_value": 0.05, "peak_value": 0.25, "warmup_steps": 0, "decay_steps": 40},
]

CASES = [
    ("linear default", "linear_onecycle_schedule", (100, 0.1), {}),
    ("linear custom", "linear_onecycle_schedule", (250, 2.0),
     {"pct_start": 0.1, "pct_final": 0.5, "div_factor": 10.0, "final_div_factor": 100.0}),
    ("linear pct_start=0", "linear_onecycle_schedule", (60, 1.0), {"pct_start": 0.0}),
    ("linear pct_final=1 (knots coincide)", "linear_onecycle_schedule", (80, 1.0), {"pct_final": 1.0}),
    ("linear pct_start=pct_final", "linear_onecycle_schedule", (50, 1.0), {"pct_start": 0.4, "pct_final": 0.4}),
    ("linear one step", "linear_onecycle_schedule", (1, 3.0), {}),
    ("cosine default", "cosine_onecycle_schedule", (100, 0.1), {}),
    ("cosine short", "cosine_onecycle_schedule", (7, 1.0), {"pct_start": 0.5}),
    ("cosine pct_start=1", "cosine_onecycle_schedule", (40, 1.0), {"pct_start": 1.0, "div_factor": 4.0}),
    ("cosine custom", "cosine_onecycle_schedule", (290, 0.5), {"pct_start": 0.25, "div_factor": 5.0,
                                                                "final_div_factor": 50.0}),
    ("sgdr three cycles", "sgdr_schedule", (SGDR_CYCLES,), {}),
    ("sgdr one cycle", "sgdr_schedule", ([{"init_value": 1.0, "peak_value": 1.0, "warmup_steps": 0,
                                           "decay_steps": 120, "end_value": 0.0}],), {}),
]


def _module(name):
    import gradtx.schedules as ours

    return {"ours": ours, "ref": ref, "optax": optax}[name]


def _curve(schedule):
    return np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(COUNTS)), np.float64)


# --- the float64 reference and Optax ------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_reference_in_float64(case):
    _, fn, args, kwargs = case
    got = _curve(getattr(_module("ours"), fn)(*args, **kwargs))
    oracle = getattr(ref, fn)(*args, **kwargs)
    want = np.array([oracle(int(c)) for c in COUNTS])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_optax(case):
    _, fn, args, kwargs = case
    got = _curve(getattr(_module("ours"), fn)(*args, **kwargs))
    theirs = getattr(optax, fn)(*args, **kwargs)
    want = np.array([float(theirs(int(c))) for c in COUNTS])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def test_scalar_python_int_and_traced_counts_agree():
    s = linear_onecycle_schedule(100, 0.1)
    curve = _curve(s)
    for c in (0, 17, 30, 84, 85, 99, 100, 250):
        assert float(s(c)) == pytest.approx(curve[c], rel=1e-12)
        assert float(s(np.int32(c))) == pytest.approx(curve[c], rel=1e-12)


# --- closed forms ---------------------------------------------------------------------------------------


def test_linear_onecycle_closed_form():
    s = linear_onecycle_schedule(100, 1.0)  # knots 30, 85, 100; v0 = 1/25
    v0 = 1.0 / 25.0
    assert float(s(0)) == pytest.approx(v0)
    assert float(s(15)) == pytest.approx(v0 + (1.0 - v0) * 0.5)
    assert float(s(30)) == pytest.approx(1.0)
    assert float(s(57)) == pytest.approx(1.0 + (v0 - 1.0) * 27 / 55)
    assert float(s(85)) == pytest.approx(v0)
    assert float(s(90)) == pytest.approx(v0 + (v0 / 1e4 - v0) * 5 / 15)
    assert float(s(100)) == pytest.approx(v0 / 1e4)
    assert float(s(10_000)) == pytest.approx(v0 / 1e4)


def test_linear_onecycle_peak_and_knot_truncation():
    s = linear_onecycle_schedule(33, 2.0, pct_start=0.5, pct_final=0.9)  # knots int(16.5) = 16, int(29.7) = 29
    assert float(s(16)) == pytest.approx(2.0)
    assert float(s(29)) == pytest.approx(2.0 / 25.0)
    assert float(jnp.max(_curve(s))) == pytest.approx(2.0)


def test_cosine_onecycle_closed_form():
    s = cosine_onecycle_schedule(100, 1.0)  # knots 30, 100; v0 = 1/25, final = v0 / 1e4
    v0, final = 1.0 / 25.0, 1.0 / 25.0 / 1e4
    assert float(s(0)) == pytest.approx(v0)
    assert float(s(15)) == pytest.approx(v0 + (1.0 - v0) * 0.5)  # half-way through a half cosine
    assert float(s(30)) == pytest.approx(1.0)
    assert float(s(65)) == pytest.approx(1.0 + (final - 1.0) * 0.5)
    assert float(s(40)) == pytest.approx(1.0 + (final - 1.0) * (1 - math.cos(math.pi * 10 / 70)) / 2)
    assert float(s(100)) == pytest.approx(final)
    assert float(s(500)) == pytest.approx(final)


def test_sgdr_restarts_at_each_cycle():
    s = sgdr_schedule(SGDR_CYCLES)
    assert float(s(0)) == pytest.approx(0.0)  # cycle 1: warm-up from 0
    assert float(s(10)) == pytest.approx(1.0)  # its peak
    assert float(s(55)) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through its cosine
    assert float(s(99)) > 0.1
    assert float(s(100)) == pytest.approx(0.1)  # cycle 2 starts (restart) at its init_value
    assert float(s(105)) == pytest.approx(0.5)  # and warms up to its peak in 5 steps
    assert float(s(142.5)) == pytest.approx(0.5 * 0.5**2)  # exponent 2, half-way: 0.5 * (1/2)^2
    assert float(s(180)) == pytest.approx(0.25)  # cycle 3: no warm-up, starts at its peak
    assert float(s(200)) == pytest.approx(0.25 * 0.5)
    assert float(s(220)) == pytest.approx(0.0)  # end of the last cycle, then held
    assert float(s(1000)) == pytest.approx(0.0)


def test_sgdr_accepts_any_iterable_of_dicts():
    a = sgdr_schedule(SGDR_CYCLES)
    b = sgdr_schedule(dict(kw) for kw in SGDR_CYCLES)
    np.testing.assert_array_equal(_curve(a), _curve(b))
    assert isinstance(b.cosine_kwargs, tuple)


# --- pytree behaviour -----------------------------------------------------------------------------------


MAKERS = [
    ("linear", lambda v: linear_onecycle_schedule(100, v, div_factor=4.0 * v)),
    ("cosine", lambda v: cosine_onecycle_schedule(100, v, final_div_factor=100.0 * v)),
    ("sgdr", lambda v: sgdr_schedule([{"init_value": 0.0, "peak_value": v, "warmup_steps": 5, "decay_steps": 50},
                                      {"init_value": v / 2, "peak_value": v, "warmup_steps": 3, "decay_steps": 60}])),
]


@pytest.mark.parametrize("name,make", MAKERS, ids=[m[0] for m in MAKERS])
def test_jit_with_the_schedule_as_an_argument_does_not_retrace(name, make):
    fn = jax.jit(chex.assert_max_traces(lambda s, c: s(c), n=1))
    for v in (1.0, 2.0, 0.5):
        s = make(v)
        np.testing.assert_allclose(float(fn(s, jnp.int32(37))), float(s(37)), rtol=1e-12)


@pytest.mark.parametrize("name,make", MAKERS, ids=[m[0] for m in MAKERS])
def test_round_trip_keeps_type_repr_and_values(name, make):
    s = make(1.5)
    leaves, treedef = jax.tree.flatten(s)
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert type(rebuilt) is type(s) and repr(rebuilt) == repr(s)
    np.testing.assert_array_equal(_curve(rebuilt), _curve(s))


def test_gradient_with_respect_to_the_peak():
    g = jax.grad(lambda s: s(0))(linear_onecycle_schedule(100, 2.0, div_factor=8.0))
    assert float(g.peak_value) == pytest.approx(1 / 8.0)  # s(0) = peak / div
    assert float(g.div_factor) == pytest.approx(-2.0 / 64.0)
    cycle = {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 20, "decay_steps": 50}
    g = jax.grad(lambda s: s(10), allow_int=True)(sgdr_schedule([cycle]))
    assert float(g.cosine_kwargs[0]["peak_value"]) == pytest.approx(0.5)
    assert float(g.cosine_kwargs[0]["init_value"]) == pytest.approx(0.5)


def test_structure_is_static_values_are_leaves():
    s = linear_onecycle_schedule(100, 0.1)
    assert [float(x) for x in jax.tree.leaves(s)] == [0.1, 25.0, 1e4]  # transition_steps and the pcts are static
    c = cosine_onecycle_schedule(100, 0.1)
    assert len(jax.tree.leaves(c)) == 3
    r = sgdr_schedule(SGDR_CYCLES)
    assert len(jax.tree.leaves(r)) == sum(len(kw) for kw in SGDR_CYCLES)


def test_repr_reads_like_the_call():
    assert repr(linear_onecycle_schedule(100, 0.1)) == (
        "linear_onecycle_schedule(transition_steps=100, peak_value=0.1, pct_start=0.3, pct_final=0.85, "
        "div_factor=25.0, final_div_factor=10000.0)")
    assert repr(cosine_onecycle_schedule(50, 1.0, 0.25, 10.0, 100.0)) == (
        "cosine_onecycle_schedule(transition_steps=50, peak_value=1.0, pct_start=0.25, div_factor=10.0, "
        "final_div_factor=100.0)")
    s = sgdr_schedule([{"decay_steps": 10, "init_value": 0.0, "peak_value": 1.0, "warmup_steps": 2}])
    assert repr(s) == ("sgdr_schedule(cosine_kwargs=({'init_value': 0.0, 'peak_value': 1.0, 'warmup_steps': 2, "
                       "'decay_steps': 10},))")


def test_vectorised_call_on_counts():
    s = cosine_onecycle_schedule(100, 0.1)
    np.testing.assert_allclose(np.asarray(s(jnp.arange(301))), _curve(s), rtol=1e-12)


# --- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: linear_onecycle_schedule(0, 0.1),
         "linear_onecycle_schedule(transition_steps=0): transition_steps must be a whole number > 0"),
        (lambda: cosine_onecycle_schedule(-5, 0.1),
         "cosine_onecycle_schedule(transition_steps=-5): transition_steps must be a whole number > 0"),
        (lambda: linear_onecycle_schedule(10.5, 0.1),
         "linear_onecycle_schedule(transition_steps=10.5): transition_steps must be a whole number > 0"),
        (lambda: linear_onecycle_schedule(100, float("nan")),
         "linear_onecycle_schedule(peak_value=nan): peak_value must be finite"),
        (lambda: linear_onecycle_schedule(100, 0.1, pct_start=1.5),
         "linear_onecycle_schedule(pct_start=1.5): pct_start must be in [0, 1]"),
        (lambda: cosine_onecycle_schedule(100, 0.1, pct_start=-0.1),
         "cosine_onecycle_schedule(pct_start=-0.1): pct_start must be in [0, 1]"),
        (lambda: linear_onecycle_schedule(100, 0.1, pct_start=0.5, pct_final=0.4),
         "linear_onecycle_schedule(pct_final=0.4): pct_final must be in [0.5, 1]"),
        (lambda: linear_onecycle_schedule(100, 0.1, div_factor=0.0),
         "linear_onecycle_schedule(div_factor=0.0): div_factor must be in (0, inf)"),
        (lambda: cosine_onecycle_schedule(100, 0.1, final_div_factor=-2.0),
         "cosine_onecycle_schedule(final_div_factor=-2.0): final_div_factor must be in (0, inf)"),
        (lambda: cosine_onecycle_schedule(100, 0.1, div_factor=float("inf")),
         "cosine_onecycle_schedule(div_factor=inf): div_factor must be in (0, inf)"),
        (lambda: sgdr_schedule([]), "sgdr_schedule(cosine_kwargs=[]): cosine_kwargs must hold at least one dict"),
        (lambda: sgdr_schedule({"decay_steps": 10}), "cosine_kwargs must be a sequence of dicts"),
        (lambda: sgdr_schedule([3]), "entries must be dicts; cosine_kwargs[0] is 3"),
        (lambda: sgdr_schedule([{"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 1}]),
         "cosine_kwargs[0] lacks 'decay_steps'"),
        (lambda: sgdr_schedule([SGDR_CYCLES[0], {"peak_value": 1.0, "warmup_steps": 1, "decay_steps": 5}]),
         "cosine_kwargs[1] is not a full set of arguments"),
        (lambda: sgdr_schedule([{**SGDR_CYCLES[0], "alpha": 0.1}]), "cosine_kwargs[0] has keys ['alpha']"),
        (lambda: sgdr_schedule([SGDR_CYCLES[0], {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 10,
                                                 "decay_steps": 10}]),
         "cosine_kwargs[1] is invalid: warmup_cosine_decay_schedule(decay_steps=10): decay_steps must be > "
         "warmup_steps (10)"),
    ],
)
def test_bad_inputs_raise_value_error_naming_call_value_and_range(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)
