"""Counts below 0: every schedule gives its value at count 0 (issue 15).

A user's ``schedule(step - delay)`` hands a schedule negative counts for the first ``delay`` steps. Optax's
warm-up schedules clamp such a count to 0 (a linear warm-up never extrapolates below its ``init_value``);
gradtx's base class :class:`gradtx.schedules.Schedule` clamps it for every schedule, once, before the
schedule's formula runs. Before the fix, ``warmup_cosine_decay_schedule(0, 1, 20, 200)(-1000)`` was -50 (a
negative learning rate: gradient *ascent*), and the one-cycle and SGDR schedules did the same.

The schedules are enumerated from the package (every public name of ``gradtx`` and of its submodules whose
value is a :class:`Schedule` subclass, and every such subclass defined anywhere): a schedule added without a
case in :data:`CASES` fails :func:`test_every_schedule_has_a_case`.
"""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx import schedules as sch
from gradtx.schedules import Schedule
from gradtx.schedules._base import clamp_count

NEGATIVE = (-1, -5, -1000)

_SGDR = [
    dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100, end_value=0.1),
    dict(init_value=0.1, peak_value=0.5, warmup_steps=5, decay_steps=80, exponent=2.0),
]
_JOIN = ([(sch.warmup_constant_schedule, (0.0, 1.0, 20)), (sch.cosine_decay_schedule, (1.0, 100, 0.1)),
          (sch.exponential_decay, (0.1, 10, 0.5))], [20, 150])


def _join(module):
    parts, boundaries = _JOIN
    return module.join_schedules([getattr(module, f.__name__)(*args) for f, args in parts], boundaries)


# name -> [(label, gradtx schedule, Optax twin or None)]. The labels name the traps: warm-ups whose line
# extrapolates below init_value, piecewise knots whose first segment extrapolates, symmetric cosines.
CASES = {
    "constant_schedule": [("plain", sch.constant_schedule(0.3), optax.constant_schedule(0.3))],
    "polynomial_schedule": [
        ("decay", sch.polynomial_schedule(1.0, 0.1, 2.0, 150), optax.polynomial_schedule(1.0, 0.1, 2.0, 150)),
        ("begin", sch.polynomial_schedule(0.2, 1.0, 0.5, 7, 3), optax.polynomial_schedule(0.2, 1.0, 0.5, 7, 3)),
    ],
    "linear_schedule": [
        ("warm-up", sch.linear_schedule(0.0, 1.0, 10), optax.linear_schedule(0.0, 1.0, 10)),
        ("decay", sch.linear_schedule(1.0, 0.0, 10), optax.linear_schedule(1.0, 0.0, 10)),
    ],
    "exponential_decay": [
        ("decay", sch.exponential_decay(2.0, 13, 0.5), optax.exponential_decay(2.0, 13, 0.5)),
        ("growth, staircase, end", sch.exponential_decay(0.01, 25, 2.0, 0, True, 1.0),
         optax.exponential_decay(0.01, 25, 2.0, 0, True, 1.0)),
    ],
    "cosine_decay_schedule": [
        ("symmetric cosine", sch.cosine_decay_schedule(0.5, 100, 0.1), optax.cosine_decay_schedule(0.5, 100, 0.1)),
    ],
    "piecewise_constant_schedule": [
        ("boundary at 0", sch.piecewise_constant_schedule(0.01, {0: 2.0, 30: 10.0}),
         optax.piecewise_constant_schedule(0.01, {0: 2.0, 30: 10.0})),
        ("step decay", sch.piecewise_constant_schedule(0.1, {10: 0.1}),
         optax.piecewise_constant_schedule(0.1, {10: 0.1})),
    ],
    "piecewise_interpolate_schedule": [
        ("linear", sch.piecewise_interpolate_schedule("linear", 1.0, {40: 0.1, 80: 0.01}),
         optax.piecewise_interpolate_schedule("linear", 1.0, {40: 0.1, 80: 0.01})),
        ("cosine", sch.piecewise_interpolate_schedule("cosine", 1.0, {40: 3.0}),
         optax.piecewise_interpolate_schedule("cosine", 1.0, {40: 3.0})),
    ],
    "warmup_constant_schedule": [
        ("warm-up", sch.warmup_constant_schedule(0.0, 1.0, 50), optax.warmup_constant_schedule(0.0, 1.0, 50)),
        ("no warm-up", sch.warmup_constant_schedule(0.1, 1.0, 0), None),  # Optax: constant init_value (documented)
    ],
    "warmup_cosine_decay_schedule": [
        ("warm-up", sch.warmup_cosine_decay_schedule(0.0, 1.0, 20, 200),
         optax.warmup_cosine_decay_schedule(0.0, 1.0, 20, 200)),
        ("no warm-up", sch.warmup_cosine_decay_schedule(0.5, 1.0, 0, 100, 0.1),
         optax.warmup_cosine_decay_schedule(0.5, 1.0, 0, 100, 0.1)),
    ],
    "warmup_exponential_decay_schedule": [
        ("warm-up", sch.warmup_exponential_decay_schedule(0.0, 1.0, 30, 20, 0.8),
         optax.warmup_exponential_decay_schedule(0.0, 1.0, 30, 20, 0.8)),
    ],
    "join_schedules": [
        ("three parts", _join(sch), _join(optax)),
        ("plain function first", sch.join_schedules([lambda c: 0.1 * jnp.asarray(c, jnp.float32),
                                                     sch.constant_schedule(1.0)], [10]), None),
    ],
    "transformer_warmup_schedule": [("plain", sch.transformer_warmup_schedule(512, 40), None)],
    "warmup_stable_decay_schedule": [
        ("linear", sch.warmup_stable_decay_schedule(1.0, 20, 10, 30), None),
        ("1-sqrt", sch.warmup_stable_decay_schedule(1.0, 0, 0, 30, decay_type="1-sqrt"), None),
    ],
    "linear_onecycle_schedule": [
        ("default", sch.linear_onecycle_schedule(100, 1.0), optax.linear_onecycle_schedule(100, 1.0)),
    ],
    "cosine_onecycle_schedule": [
        ("default", sch.cosine_onecycle_schedule(100, 1.0), optax.cosine_onecycle_schedule(100, 1.0)),
    ],
    "sgdr_schedule": [("two cycles", sch.sgdr_schedule(_SGDR), optax.sgdr_schedule(_SGDR))],
    "ademamix_b3_schedule": [("warm-up", gradtx.contrib.ademamix_b3_schedule(0.999, 100), None)],
}

# (name, label) of the cases where Optax 0.2.8 does not give its count-0 value below 0: cosine_decay_schedule
# evaluates its cosine at the negative count (a value below init_value), piecewise_constant_schedule drops the
# scale of a boundary at 0, piecewise_interpolate_schedule and the one-cycle schedules return 0, and
# warmup_cosine_decay_schedule with warmup_steps=0 returns init_value (its empty warm-up still applies below 0,
# while at 0 it is at peak_value). gradtx gives the value at 0 for all of them.
OPTAX_DIFFERS_BELOW_ZERO = {
    ("cosine_decay_schedule", "symmetric cosine"),
    ("piecewise_constant_schedule", "boundary at 0"),
    ("piecewise_interpolate_schedule", "linear"),
    ("piecewise_interpolate_schedule", "cosine"),
    ("warmup_cosine_decay_schedule", "no warm-up"),
    ("linear_onecycle_schedule", "default"),
    ("cosine_onecycle_schedule", "default"),
}

PARAMS = [(name, label, s, twin) for name, rows in CASES.items() for label, s, twin in rows]
IDS = [f"{name}-{label}" for name, label, _, _ in PARAMS]


def _public_schedules() -> dict[str, type]:
    """Every public Schedule subclass reachable as ``gradtx.X`` or ``gradtx.<module>.X``, and every concrete
    (public) subclass of Schedule defined anywhere, by class name."""
    found: dict[str, type] = {}
    modules = [gradtx] + [v for v in vars(gradtx).values() if isinstance(v, types.ModuleType)]
    for module in modules:
        for name in dir(module):
            value = getattr(module, name, None) if not name.startswith("_") else None
            if isinstance(value, type) and issubclass(value, Schedule) and value is not Schedule:
                found[value.__name__] = value
    stack = list(Schedule.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if not cls.__name__.startswith("_") and cls.__module__.startswith("gradtx."):
            found[cls.__name__] = cls
    return found


def test_every_schedule_has_a_case():
    found = _public_schedules()
    assert "warmup_cosine_decay_schedule" in found and "ademamix_b3_schedule" in found  # the walk works
    missing = sorted(set(found) - set(CASES))
    assert not missing, f"schedules without a negative-count case in {__name__}.CASES: {missing}"
    for name, rows in CASES.items():
        assert all(type(s) is found[name] for _, s, _ in rows), name


def _at(schedule, count):
    return np.asarray(schedule(count), np.float64)


@pytest.mark.parametrize("name,label,schedule,twin", PARAMS, ids=IDS)
def test_negative_counts_give_the_value_at_zero(name, label, schedule, twin):
    """Python ints and floats, NumPy and JAX scalars of int and float dtypes, vectors, and traced counts under
    jit (the schedule an argument of the jitted function): all give ``schedule(0)`` exactly."""
    del name, label
    at_zero = _at(schedule, 0)
    assert np.isfinite(at_zero)
    for c in NEGATIVE:
        for count in (c, float(c), np.int32(c), np.int64(c), np.float64(c), jnp.int32(c), jnp.float32(c),
                      jnp.float64(c)):
            np.testing.assert_array_equal(_at(schedule, count), at_zero, err_msg=f"count={count!r}")
    np.testing.assert_array_equal(_at(schedule, -0.5), at_zero)
    counts = np.array([-1000, -5, -1, 0])
    want = np.full(4, at_zero)
    np.testing.assert_array_equal(_at(schedule, counts), want)
    np.testing.assert_array_equal(_at(schedule, jnp.asarray(counts, jnp.int32)), want)
    np.testing.assert_array_equal(np.asarray(jax.vmap(schedule)(jnp.asarray(counts)), np.float64), want)
    jitted = jax.jit(lambda s, c: s(c))
    for dtype in (jnp.int32, jnp.int64, jnp.float32, jnp.float64):
        for c in NEGATIVE:
            got = np.asarray(jitted(schedule, jnp.asarray(c, dtype)), np.float64)
            np.testing.assert_allclose(got, at_zero, rtol=1e-6, atol=0, err_msg=f"traced {dtype.__name__} {c}")


@pytest.mark.parametrize("name,label,schedule,twin", PARAMS, ids=IDS)
def test_counts_at_and_above_zero_are_untouched(name, label, schedule, twin):
    """The clamp changes nothing at counts >= 0: the curve equals Optax's (where Optax has the schedule) and
    is increasing-count consistent between int and float counts."""
    del name, label
    counts = jnp.arange(0, 301)
    ours = np.asarray(jax.vmap(schedule)(counts), np.float64)
    np.testing.assert_array_equal(np.asarray(jax.vmap(schedule)(counts.astype(jnp.float64)), np.float64), ours)
    if twin is not None:
        np.testing.assert_allclose(ours, np.asarray(jax.vmap(twin)(counts), np.float64), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,label,schedule,twin", [p for p in PARAMS if p[3] is not None],
                         ids=[i for i, p in zip(IDS, PARAMS) if p[3] is not None])
def test_matches_optax_below_zero_where_optax_clamps(name, label, schedule, twin):
    """Where Optax gives its count-0 value at a negative count, gradtx gives the same number; where it does
    not, the schedule is one of the documented differences (:data:`OPTAX_DIFFERS_BELOW_ZERO`)."""
    theirs_at_zero = np.asarray(twin(0), np.float64)
    for c in NEGATIVE:
        theirs = np.asarray(twin(c), np.float64)
        if np.allclose(theirs, theirs_at_zero, rtol=1e-6, atol=0):
            np.testing.assert_allclose(_at(schedule, c), theirs, rtol=1e-6, atol=1e-9)
        else:
            assert (name, label) in OPTAX_DIFFERS_BELOW_ZERO, f"{name}: Optax gives {theirs} at {c}, undocumented"


@pytest.mark.parametrize("name,label,schedule,twin", PARAMS, ids=IDS)
def test_gradient_below_zero_is_the_gradient_at_zero(name, label, schedule, twin):
    """The clamp happens before the formula, so d value / d hyperparameters at a negative count is the
    gradient at 0: finite, and the same numbers."""
    del name, label, twin
    leaves, treedef = jax.tree.flatten(schedule)
    if not leaves:
        return
    leaves = [float(x) for x in leaves]
    grad = jax.grad(lambda ls, c: jnp.asarray(jax.tree.unflatten(treedef, ls)(c), jnp.float64))
    at_zero = grad(leaves, 0)
    assert all(np.isfinite(g) for g in at_zero)
    for c in (-1, -1000):
        np.testing.assert_array_equal(np.asarray(grad(leaves, c)), np.asarray(at_zero))


def test_clamp_count_keeps_type_dtype_and_nan():
    """The clamp returns what it was given, with entries below 0 set to 0: a Python or NumPy scalar of the same
    type, a NumPy array, a JAX array of the same dtype; NaN is not below 0 and stays (what a schedule then makes
    of a NaN count is its formula's business); counts >= 0 come back bit for bit."""
    assert clamp_count(-3) == 0 and type(clamp_count(-3)) is int
    assert clamp_count(-2.5) == 0.0 and type(clamp_count(-2.5)) is float
    assert clamp_count(7) == 7 and clamp_count(2.5) == 2.5
    assert type(clamp_count(np.int32(-4))) is np.int32 and clamp_count(np.int32(-4)) == 0
    assert np.isnan(clamp_count(float("nan"))) and np.isnan(clamp_count(np.float32("nan")))
    out = clamp_count(np.array([-2.0, np.nan, 3.5]))
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, [0.0, np.nan, 3.5])
    for dtype in (jnp.int32, jnp.uint32, jnp.float32, jnp.float64):
        x = jnp.asarray([0, 1, 250], dtype)
        assert clamp_count(x).dtype == x.dtype
        np.testing.assert_array_equal(clamp_count(x), x)
    got = jax.jit(clamp_count)(jnp.asarray([-1.0, jnp.nan, 0.25], jnp.float32))
    np.testing.assert_array_equal(got, np.array([0.0, np.nan, 0.25], np.float32))


def test_a_user_subclass_is_clamped_too():
    """The clamp is the base class's: a Schedule subclass written outside gradtx gets it without asking."""

    class doubled(Schedule):
        def __call__(self, count):
            return 2.0 * jnp.asarray(count, jnp.float32)

    assert float(doubled()(-7)) == 0.0
    assert float(doubled()(3)) == 6.0
    assert doubled.__call__.__name__ == "__call__"


def test_delayed_schedule_under_jit_in_a_training_loop():
    """The motivating use: ``schedule(step - delay)`` inside a jitted step stays at init_value while
    ``step < delay`` (it used to go negative: gradient ascent)."""
    schedule = sch.warmup_cosine_decay_schedule(1e-4, 1e-2, 50, 500)
    lr = jax.jit(lambda step: schedule(step - 100))
    values = np.asarray([lr(jnp.int32(k)) for k in (0, 1, 50, 99, 100, 101)], np.float64)
    np.testing.assert_allclose(values[:5], 1e-4, rtol=1e-6)
    np.testing.assert_allclose(values[5], 1e-4 + (1e-2 - 1e-4) / 50, rtol=1e-6)
