"""gradtx.diagnostics.plateau: "still descending", "at a critical point (converged / stalled)" or "oscillating",
from histories.

The lecture's narrow valley (gradtx.demo's runs, float32 jitted scans) and synthetic histories with closed-form
statistics.
"""

from __future__ import annotations

import math
import re

import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import demo
from gradtx.diagnostics.plateau import (
    CONVERGED,
    CRITICAL_POINT_VERDICTS,
    DIVERGING,
    OSCILLATING,
    PLATEAU_VERDICTS,
    STILL_DESCENDING,
    STUCK_AT_CRITICAL_POINT,
    PlateauDiagnosis,
    diagnose_plateau,
)
from gradtx.testing.problems import narrow_valley


@pytest.fixture(scope="module")
def valley():
    return narrow_valley()


@pytest.fixture(scope="module")
def runs():
    return {r.name: r for r in demo.lecture_runs(demo.DEFAULT_STEPS)}


def _run(valley, optimizer, steps):
    return demo.run_optimizer(optimizer, valley.loss, valley.start, steps)


# --- the lecture's narrow valley ----------------------------------------------------------------------


def test_large_lr_gradient_descent_on_the_demo_run_is_oscillating(valley, runs):
    # lr steep = 2: the across-valley error flips sign every step, the wall's loss (100 of the 110) and the
    # gradient norm (200) stay; only the floor creeps (about 2% of the loss in the demo's 6,000 steps).
    h = _run(valley, runs["gd_large"].optimizer, demo.DEFAULT_STEPS)
    d = diagnose_plateau(h.loss, h.grad_norm, window=100)
    assert isinstance(d, PlateauDiagnosis)
    assert d.verdict == OSCILLATING
    assert d.window == 100
    assert 0.0 < d.relative_loss_decrease < 3e-4  # flat: the floor's creep over 50 steps
    assert d.grad_norm_ratio > 0.99  # the gradient is as large as it ever was
    # the same from the start of the run: the bouncing begins at once
    early = diagnose_plateau(h.loss[:301], h.grad_norm[:301], window=100)
    assert early.verdict == OSCILLATING


def test_tiny_lr_gradient_descent_early_is_still_descending_as_in_closed_form(valley, runs):
    steps = 2000
    h = _run(valley, runs["gd_tiny"].optimizer, steps)
    d = diagnose_plateau(h.loss, h.grad_norm, window=100)
    assert d.verdict == STILL_DESCENDING
    assert d.grad_norm_ratio > 0.95  # the gradient is still large: slow, not stuck
    # closed form: gradient descent on a quadratic, w_t = x* + Q diag((1 - lr lam)^t) Q^T (w_0 - x*)
    ws = valley.gd_trajectory(valley.start, 1e-7, steps)
    losses = valley.loss_np(ws)
    expected = (losses[-100:-50].mean() - losses[-50:].mean()) / losses.max()
    assert d.relative_loss_decrease == pytest.approx(expected, rel=0.02)
    assert d.relative_loss_decrease > 1e-3


def test_adaptive_runs_to_convergence_are_at_a_critical_point_converged(valley, runs):
    # Adam and the lecture's RMS with 1/sqrt(t) decay reach the minimum: the loss is flat, the gradient
    # vanished, and the loss is at its floor 0 (Adam's 3e-28, rms_decay's 8e-6, of the start's 110).
    for name in ("adam", "rms_decay"):
        h = _run(valley, runs[name].optimizer, demo.DEFAULT_STEPS)
        d = diagnose_plateau(h.loss, h.grad_norm, window=100)
        assert d.verdict == CONVERGED == "at a critical point (converged)", (name, d)
        assert d.grad_norm_ratio < 1e-5
        assert abs(d.relative_loss_decrease) < 1e-6
        assert 0 <= d.remaining_loss < 1e-6  # (mean window loss - 0) / 110


def test_the_lecture_saddle_plateau_is_at_a_critical_point_stalled():
    # Gradient descent on L = (1 - w1 w2)^2 from (1.2, -1.2 + 1e-6) runs into the saddle at the origin and
    # sits there (loss 1, gradient ~1e-3 of its largest) before the asymmetry carries it away: a critical
    # point whose loss is far above the floor 0 -- stalled, not converged.
    h = demo.run_optimizer(gradtx.sgd(0.05), demo.lecture_saddle, (1.2, -1.2 + 1e-6), 300)
    end = int(np.argmin(h.grad_norm[:150])) + 20
    d = diagnose_plateau(h.loss[:end], h.grad_norm[:end], window=40)
    assert d.verdict == STUCK_AT_CRITICAL_POINT == "at a critical point (stalled)"
    start = (1 - 1.2 * (-1.2 + 1e-6)) ** 2  # 5.95, the largest loss
    assert d.remaining_loss == pytest.approx(1.0 / start, rel=1e-3)  # the loss sits at 1
    # the same run to its end: at the minimum w1 w2 = 1, converged
    assert diagnose_plateau(h.loss, h.grad_norm, window=40).verdict == CONVERGED


def test_rmsprop_chattering_across_the_floor_is_oscillating(valley, runs):
    # RMSProp (alpha 0.9) reaches the floor and keeps jumping across it with steps of about lr: loss flat at
    # ~0.26, gradient norm ~10 (5% of its initial 200).
    h = _run(valley, runs["rmsprop"].optimizer, 3000)
    d = diagnose_plateau(h.loss, h.grad_norm, window=100)
    assert d.verdict == OSCILLATING
    assert 0.01 < d.grad_norm_ratio < 0.2


# --- synthetic histories -----------------------------------------------------------------------------------


def test_linear_descent_has_the_closed_form_decrease():
    t = np.arange(200.0)
    losses = 100.0 - 0.1 * t  # the two halves of the last 100 entries are 50 steps apart: 5 / 100
    d = diagnose_plateau(losses, np.full(200, 3.0), window=100)
    # remaining: the window's mean loss 100 - 0.1 * 149.5 over the largest loss 100
    assert d == PlateauDiagnosis(
        STILL_DESCENDING, pytest.approx(0.05, rel=1e-12), 1.0, 100, math.nan, pytest.approx(0.8505, rel=1e-12)
    )


def test_period_two_bouncing_is_flat_and_oscillating():
    losses = 5.0 + np.where(np.arange(300) % 2 == 0, 1.0, -1.0)  # each half holds as many highs as lows
    d = diagnose_plateau(losses, np.full(300, 4.0), window=100)
    assert (d.verdict, d.relative_loss_decrease, d.grad_norm_ratio) == (OSCILLATING, 0.0, 1.0)


def test_flat_loss_with_vanished_gradient_is_stuck_relative_to_the_largest_norm():
    g = np.concatenate([[1e-3], np.full(99, 2.0), np.full(100, 1e-4)])  # starts near a saddle (tiny gradient)
    losses = np.concatenate([np.linspace(10.0, 1.0, 100), np.full(100, 1.0)])
    d = diagnose_plateau(losses, g, window=100)
    assert d.verdict == STUCK_AT_CRITICAL_POINT  # flat at 1, a tenth of the start: above the floor 0
    assert d.grad_norm_ratio == pytest.approx(5e-5, rel=1e-12)  # 1e-4 / max 2 (not / the first 1e-3)
    assert d.relative_loss_decrease == 0.0
    assert d.remaining_loss == pytest.approx(0.1, rel=1e-12)  # (1 - 0) / (10 - 0)
    # with the loss's floor at 1 the same histories reached it: converged
    d = diagnose_plateau(losses, g, window=100, loss_floor=1.0)
    assert (d.verdict, d.remaining_loss) == (CONVERGED, 0.0)
    assert diagnose_plateau(losses, g, window=100, loss_floor=0.99).verdict == STUCK_AT_CRITICAL_POINT
    # the floor threshold is loss_rtol, inclusive: (1 - 0.9) / (10 - 0.9) = 0.011
    assert diagnose_plateau(losses, g, loss_floor=0.9, loss_rtol=0.011).verdict == CONVERGED
    assert diagnose_plateau(losses, g, loss_floor=0.9, loss_rtol=0.0109).verdict == STUCK_AT_CRITICAL_POINT


def test_verdict_words():
    # what a student reads: a vanished gradient is "at a critical point", converged or stalled; a flat loss with
    # a large gradient is "oscillating", never a critical point
    assert (STILL_DESCENDING, CONVERGED, STUCK_AT_CRITICAL_POINT, OSCILLATING, DIVERGING) == (
        "still descending",
        "at a critical point (converged)",
        "at a critical point (stalled)",
        "oscillating",
        "diverging",
    )
    assert PLATEAU_VERDICTS == (STILL_DESCENDING, CONVERGED, STUCK_AT_CRITICAL_POINT, OSCILLATING, DIVERGING)
    assert CRITICAL_POINT_VERDICTS == (CONVERGED, STUCK_AT_CRITICAL_POINT)
    assert all(v.startswith("at a critical point") for v in CRITICAL_POINT_VERDICTS)
    assert not any("critical" in v or "converged" in v for v in (STILL_DESCENDING, OSCILLATING, DIVERGING))
    from gradtx import diagnostics

    assert diagnostics.STUCK_AT_CRITICAL_POINT is STUCK_AT_CRITICAL_POINT  # the package's name, same string


def test_a_loss_converged_to_zero_jittering_at_rounding_level_is_flat():
    losses = np.concatenate([np.geomspace(100.0, 1e-20, 100), 1e-30 * (1.0 + (np.arange(100) % 3))])
    g = np.concatenate([np.geomspace(10.0, 1e-11, 100), np.full(100, 1e-15)])
    assert diagnose_plateau(losses, g).verdict == CONVERGED


def test_a_rising_loss_is_not_descending_and_non_finite_values_are_diverging():
    rising = np.linspace(1.0, 2.0, 50)
    d = diagnose_plateau(rising, np.full(50, 1.0), window=10)
    assert d.verdict == OSCILLATING and d.relative_loss_decrease < 0
    assert diagnose_plateau(rising, np.full(50, 1e-9) * np.arange(1, 51) ** -4.0, window=10).verdict == (
        STUCK_AT_CRITICAL_POINT  # the gradient vanished, the loss is nowhere near 0
    )
    for losses, g in (
        (np.append(rising, np.nan), np.ones(51)),
        (np.append(rising, np.inf), np.ones(51)),
        (np.append(rising, 3.0), np.append(np.ones(50), np.inf)),
    ):
        d = diagnose_plateau(losses, g, window=10)
        assert d.verdict == DIVERGING
        if np.isfinite(losses[-1]):
            assert math.isnan(d.grad_norm_ratio) and d.remaining_loss == pytest.approx(np.mean(losses[-10:]) / 3.0)
        else:
            assert math.isnan(d.relative_loss_decrease) and math.isnan(d.remaining_loss)
    # a non-finite entry before the window does not matter (scales use the finite entries)
    losses = np.concatenate([[np.inf], np.full(20, 1.0)])
    assert diagnose_plateau(losses, np.concatenate([[np.nan], np.full(20, 1.0)]), window=10).verdict == OSCILLATING


def test_odd_windows_skip_the_middle_entry_and_thresholds_are_inclusive():
    d = diagnose_plateau([10.0, 4.0, 99.0, 2.0], [1.0, 1.0, 1.0, 1.0], window=3)  # halves [4] and [2]
    assert d.relative_loss_decrease == pytest.approx(2.0 / 99.0, rel=1e-15)
    d = diagnose_plateau([1.0, 0.5], [1.0, 0.0], window=2, loss_rtol=0.5, grad_rtol=0.5)
    # 0.5 <= 0.5 twice: flat and vanished; the window's mean loss 0.75 of the largest 1 is above the floor
    assert d == PlateauDiagnosis(STUCK_AT_CRITICAL_POINT, 0.5, 0.5, 2, math.nan, 0.75)
    d = diagnose_plateau([1.0, 0.5], [1.0, 0.0], window=2, loss_rtol=0.4999, grad_rtol=0.5)
    assert d.verdict == STILL_DESCENDING


def test_default_window_and_every_input_kind_give_the_same_diagnosis():
    t = np.arange(500.0)
    losses, g = 50.0 * np.exp(-t / 100.0), 5.0 * np.exp(-t / 100.0)
    d = diagnose_plateau(losses, g)
    assert d.window == 100
    assert diagnose_plateau(losses[:30], g[:30]).window == 30
    expected = (losses[-100:-50].mean() - losses[-50:].mean()) / 50.0
    assert d.relative_loss_decrease == pytest.approx(expected, rel=1e-12)
    assert d.verdict == STILL_DESCENDING
    same = [
        diagnose_plateau(list(losses), list(g)),
        diagnose_plateau(jnp.asarray(losses, jnp.float32), jnp.asarray(g, jnp.float32)),
        diagnose_plateau(tuple(losses.astype(np.float32)), g.astype(np.float32)),
    ]
    for other in same:
        assert other.verdict == d.verdict
        assert other.relative_loss_decrease == pytest.approx(d.relative_loss_decrease, rel=1e-5)
    assert diagnose_plateau(np.zeros(5), np.zeros(5)) == PlateauDiagnosis(CONVERGED, 0.0, 0.0, 5, math.nan, 0.0)
    assert set(PLATEAU_VERDICTS) == {STILL_DESCENDING, CONVERGED, STUCK_AT_CRITICAL_POINT, OSCILLATING, DIVERGING}


def test_histories_recorded_as_jax_scalars_from_a_gradtx_run():
    # gradient descent (gradtx.sgd, lr 0.5) on L = w^2 / 2 halves w every step: L_t = 8 * 4^-t, |g_t| = 4 * 2^-t
    opt = gradtx.sgd(0.5)
    w = jnp.asarray(4.0)
    state = opt.init(w)
    losses, norms = [], []
    for _ in range(20):
        losses.append(0.5 * w * w)
        norms.append(jnp.abs(w))
        u, state = opt.update(w, state)
        w = gradtx.apply_updates(w, u)
    d = diagnose_plateau(losses, norms, window=4)
    assert d.verdict == CONVERGED  # L_19 = 8 * 4^-19: the floor 0 reached
    assert d.relative_loss_decrease == pytest.approx((4.0**-16 + 4.0**-17 - 4.0**-18 - 4.0**-19) / 2, rel=1e-6)
    assert d.grad_norm_ratio == pytest.approx(sum(2.0**-t for t in range(16, 20)) / 4, rel=1e-6)


# --- errors ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "err", "text"),
    [
        (
            {"losses": [1.0, 2.0, 3.0], "grad_norms": [1.0, 2.0]},
            ValueError,
            "diagnose_plateau(losses of length 3, grad_norms of length 2): losses and grad_norms must have the same "
            "length",
        ),
        ({"window": 1}, ValueError, "diagnose_plateau(window=1): window must be an integer >= 2"),
        ({"window": 2.0}, ValueError, "diagnose_plateau(window=2.0): window must be an integer >= 2"),
        ({"window": True}, ValueError, "diagnose_plateau(window=True): window must be an integer >= 2"),
        ({"window": 5}, ValueError, "diagnose_plateau(window=5): window must be at most the histories' length, 4"),
        ({"loss_rtol": 0.0}, ValueError, "diagnose_plateau(loss_rtol=0.0): loss_rtol must be in (0, inf)"),
        ({"grad_rtol": float("inf")}, ValueError, "diagnose_plateau(grad_rtol=inf): grad_rtol must be in (0, inf)"),
        ({"grad_rtol": "1e-3"}, ValueError, "diagnose_plateau(grad_rtol='1e-3'): grad_rtol must be in (0, inf)"),
        (
            {"loss_floor": float("-inf")},
            ValueError,
            "diagnose_plateau(loss_floor=-inf): loss_floor must be a finite real number",
        ),
        (
            {"loss_floor": None},
            ValueError,
            "diagnose_plateau(loss_floor=None): loss_floor must be a finite real number",
        ),
        (
            {"grad_norms": [1.0, -2.0, 1.0, 1.0]},
            ValueError,
            "diagnose_plateau(grad_norms[1]=-2.0): grad_norms must be >= 0",
        ),
        (
            {"losses": np.ones((2, 2)), "grad_norms": np.ones((2, 2))},
            ValueError,
            "diagnose_plateau(losses of shape (2, 2)): losses must be one-dimensional (one value a step)",
        ),
        (
            {"losses": [1.0], "grad_norms": [1.0]},
            ValueError,
            "diagnose_plateau(losses of length 1): the histories must have at least 2 entries",
        ),
        ({"losses": [1.0, "one", 2.0, 3.0]}, TypeError, "diagnose_plateau: losses must be a sequence of real numbers"),
    ],
)
def test_argument_errors_name_the_call_and_the_value(kwargs, err, text):
    args = {"losses": [4.0, 3.0, 2.0, 1.0], "grad_norms": [1.0, 1.0, 1.0, 1.0], **kwargs}
    with pytest.raises(err, match=re.escape(text)):
        diagnose_plateau(**args)


def test_params_tell_crawling_from_oscillating():
    """Flat loss and large gradient over a short window: bouncing (steps reverse) stays "oscillating",
    crawling (steps keep their direction) is "still descending"."""
    t = np.arange(200)
    losses = np.full(200, 50.0) - 1e-6 * t  # flat at this window
    grads = np.full(200, 30.0)
    bounce = np.stack([np.linspace(10, 9, 200), (-1.0) ** t], axis=1)  # across the valley every step
    crawl = np.stack([np.linspace(10, 9.99, 200), np.linspace(1, 0.99, 200)], axis=1)
    assert diagnose_plateau(losses, grads).verdict == "oscillating"
    d = diagnose_plateau(losses, grads, params=bounce)
    assert d.verdict == "oscillating" and d.step_alignment < -0.99
    d = diagnose_plateau(losses, grads, params=crawl)
    assert d.verdict == "still descending" and abs(d.step_alignment - 1.0) < 1e-9
    with pytest.raises(ValueError, match="params must hold one iterate per loss entry"):
        diagnose_plateau(losses, grads, params=np.zeros(7))
