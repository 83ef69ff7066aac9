"""The lecture's narrow-valley claims, checked on the runs of ``gradtx.demo`` and on its command line."""

import os
import subprocess
import sys

import numpy as np
import pytest

import gradtx
from gradtx import demo
from gradtx.diagnostics.plateau import CONVERGED, OSCILLATING, STILL_DESCENDING
from gradtx.testing.problems import narrow_valley

STEPS = 5000  # fewer than the demo's 6,000; every behaviour below shows by step ~4,100
TOL = demo.TOLERANCE


@pytest.fixture(scope="module")
def problem():
    return narrow_valley()


@pytest.fixture(scope="module")
def histories(problem):
    return demo.run_demo(steps=STEPS, problem=problem)


@pytest.fixture(scope="module")
def rows(histories, problem):
    return {r.name: r for r in demo.summarize(histories, problem)}


def _steps_to(h, tol=TOL):
    hits = np.nonzero(h.loss <= tol)[0]
    return int(hits[0]) if len(hits) else None


def test_histories_shape_and_dtype(histories):
    assert list(histories) == [
        "gd_large",
        "gd_tiny",
        "rms",
        "rms_decay",
        "rmsprop",
        "adam",
        "adam_warmup_cosine",
    ]
    for name, h in histories.items():
        n = demo.TINY_LR_STEPS if name == "gd_tiny" else STEPS
        assert h.params.shape == (n + 1, 2) and h.loss.shape == h.grad_norm.shape == (n + 1,)
        assert h.params.dtype == h.loss.dtype == np.float32  # float32 even with x64 enabled (conftest)
        assert np.isfinite(h.loss).all()


def test_large_lr_gd_oscillates_with_large_gradient(histories, problem):
    h = histories["gd_large"]
    tail = h.loss[int(0.8 * STEPS) :]
    assert (tail.max() - tail.min()) / tail.max() < 0.01  # the loss stopped falling ...
    assert h.grad_norm[int(0.8 * STEPS) :].min() > 1000 * TOL  # ... while the gradient stayed large (~200)
    across = problem.valley_coordinates(h.params)[:, 1]
    assert np.all(np.sign(across[1:]) == -np.sign(across[:-1]))  # wall to wall, every step
    assert np.abs(across).min() > 0.9
    # float32 iteration follows the closed form of the quadratic.
    np.testing.assert_allclose(h.params, problem.gd_trajectory(problem.start, 1e-2, STEPS), atol=2e-3)


def test_tiny_lr_gd_crawls_without_oscillating(histories, problem):
    h = histories["gd_tiny"]
    assert h.steps == 100_000
    start_distance = np.linalg.norm(problem.start - problem.minimum)
    assert np.linalg.norm(h.params[-1] - problem.minimum) > 0.9 * start_distance
    assert h.loss[-1] > 10.0
    across = problem.valley_coordinates(h.params)[:, 1]
    assert np.all(across > 0)  # never crossed the floor
    assert np.all(np.diff(h.loss) <= 0)
    exact = problem.valley_coordinates(problem.gd_trajectory(problem.start, 1e-7, 100_000))[:, 1]
    np.testing.assert_allclose(across, exact, rtol=1e-3)  # exp(-2): 13.5% of the wall left


def test_rms_reaches_the_floor_with_bursts(histories, rows):
    h = histories["rms"]
    assert _steps_to(h) is not None and _steps_to(h) < STEPS
    bursts, flagged = demo.count_bursts(h.params)
    assert bursts >= 1 and flagged[0] > 1000  # late in training, not in the first slide down the wall
    late = demo.step_lengths(h.params)[1000:]
    assert late.max() > 10 * np.median(late)
    assert "bursts" in rows["rms"].verdict or "bursting" in rows["rms"].verdict


def test_decay_tames_the_bursts(histories, rows):
    rms, decayed = histories["rms"], histories["rms_decay"]
    assert _steps_to(decayed) is not None
    assert demo.count_bursts(decayed.params)[0] < demo.count_bursts(rms.params)[0]
    assert demo.count_bursts(decayed.params)[0] == 0
    late_rms = demo.step_lengths(rms.params)[1000:]
    late_decayed = demo.step_lengths(decayed.params)[1000:]
    assert late_decayed.max() < late_rms.max() / 5
    assert rows["rms_decay"].verdict == "converged"


def test_adam_and_rmsprop_reach_the_minimum(histories, rows, problem):
    start_distance = np.linalg.norm(problem.start - problem.minimum)
    for name in ("adam", "adam_warmup_cosine"):
        assert _steps_to(histories[name]) is not None
        assert histories[name].loss[-1] <= TOL
        assert rows[name].verdict == "converged"
    # RMSProp (alpha 0.9) forgets fast: no bursts, it reaches the valley's end but chatters across the floor
    # with steps of about lr (the loss stays ~0.5 * steep * (lr / 2)^2).
    h = histories["rmsprop"]
    assert np.linalg.norm(h.params[-1] - problem.minimum) < 0.01 * start_distance
    assert demo.count_bursts(h.params)[0] == 0
    assert rows["rmsprop"].verdict == "at the floor, chattering"


def test_table_rows_and_verdicts(rows):
    assert rows["gd_large"].verdict == "oscillating"
    assert rows["gd_tiny"].verdict == "crawling"
    assert rows["gd_large"].steps_to_tolerance is None and rows["gd_tiny"].steps_to_tolerance is None
    text = demo.format_table(list(rows.values()))
    lines = text.splitlines()
    assert len(lines) == 2 + len(rows)
    assert "verdict" in lines[0] and "never" in text and "oscillating" in text
    assert all(len(line) <= len(lines[1]) for line in lines)


def test_diagnostics_read_the_runs(rows):
    """gradtx.diagnostics on the lecture's runs: the large-lr run is oscillating and not at a critical point;
    the tiny-lr run is still descending (its steps keep their direction); Adam converged to a local minimum."""
    assert (rows["gd_large"].plateau, rows["gd_large"].second_order) == ("oscillating", "not critical")
    assert (rows["gd_tiny"].plateau, rows["gd_tiny"].second_order) == ("still descending", "not critical")
    assert (rows["adam"].verdict, rows["adam"].plateau, rows["adam"].second_order) == (
        "converged",
        "at a critical point (converged)",
        "local minimum",
    )
    text = demo.format_table(list(rows.values()))
    assert "2nd-order test" in text and "stuck" not in text


def test_the_three_readings_of_a_row_never_contradict(rows):
    """A row never reads "converged" beside "oscillating": the demo says "converged" only where the last steps
    are at a critical point with the loss at its floor, and then the second-order test finds the minimum."""
    for r in rows.values():
        if r.verdict.startswith("converged"):
            assert (r.plateau, r.second_order) == (CONVERGED, "local minimum"), r
        if r.plateau == OSCILLATING:
            assert "converged" not in r.verdict and r.second_order == "not critical", r
        if r.verdict == "oscillating":
            assert r.plateau == OSCILLATING, r
        if r.plateau == CONVERGED:
            assert r.second_order == "local minimum", r


def _valley_history(problem, params):
    w = np.asarray(params, dtype=np.float64)
    g = (w - problem.minimum) @ problem.A.T
    return demo.History(
        w.astype(np.float32),
        problem.loss_np(w).astype(np.float32),
        np.linalg.norm(g, axis=1).astype(np.float32),
    )


@pytest.mark.parametrize(
    ("amplitude", "verdict", "plateau", "second_order"),
    [
        # ringing across the floor inside the tolerance (loss 4e-4) with a gradient of 0.4 (2e-3 of the largest)
        (2e-3, "below tolerance, still settling", OSCILLATING, "not critical"),
        # the same ringing 10^4 times smaller: the gradient vanished, the loss is at its floor
        (2e-7, "converged", CONVERGED, "local minimum"),
    ],
)
def test_a_run_inside_the_tolerance_is_converged_only_once_it_stops_moving(
    problem, amplitude, verdict, plateau, second_order
):
    # a made-up run: 800 steps straight down the valley to its end, then 200 steps bouncing across the floor
    across = problem.eigenvectors[:, np.argmax(problem.eigenvalues)]  # the steep direction, across the floor
    path = np.linspace(problem.start, problem.minimum + 1e-3 * across, 800)
    bounce = problem.minimum + amplitude * np.where(np.arange(200) % 2 == 0, 1.0, -1.0)[:, None] * across
    h = _valley_history(problem, np.concatenate([path, bounce]))
    (row,) = demo.summarize({"made_up": h}, problem)
    assert row.final_loss <= TOL and row.steps_to_tolerance is not None
    assert (row.verdict, row.plateau, row.second_order) == (verdict, plateau, second_order)


def test_a_crawl_is_not_called_oscillating(problem):
    # gradient descent with lr 1e-7 over 300 steps: the loss barely moves and the gradient is large, but the
    # steps keep their direction: "crawling" / "still descending", not "oscillating"
    (row,) = demo.summarize(demo.run_demo(runs=[demo.Run("gd_tiny", "GD", gradtx.sgd(1e-7), 300)]), problem)
    assert (row.verdict, row.plateau) == ("crawling", STILL_DESCENDING)


def test_optimizer_is_a_jit_argument(problem):
    # Same structure, different learning rate: traced once.
    traces = []

    def loss(w):
        traces.append(None)
        return problem.loss(w)

    demo.run_optimizer(gradtx.sgd(1e-3), loss, problem.start, 7)
    traced = len(traces)
    assert traced > 0
    h = demo.run_optimizer(gradtx.sgd(2e-3), loss, problem.start, 7)
    assert len(traces) == traced
    np.testing.assert_allclose(h.params, problem.gd_trajectory(problem.start, 2e-3, 7), rtol=1e-5)


def test_cli_demo_writes_table_and_png(tmp_path):
    out = tmp_path / "figs"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gradtx",
            "demo",
            "--steps",
            "2500",
            "--tiny-steps",
            "20000",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "verdict" in proc.stdout and "oscillating" in proc.stdout and "crawling" in proc.stdout
    assert "20,000" in proc.stdout and "2,500" in proc.stdout
    for name in ("narrow_valley.png", "diagnostics.png"):
        png = out / name
        assert png.is_file()
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Hessian eigenvalues -2 and 2: saddle point" in proc.stdout


def test_cli_help_and_errors(capsys):
    from gradtx.__main__ import main

    for argv in (["--help"], ["demo", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
        assert "demo" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--steps", "0"])
    assert exc.value.code == 2 and "positive" in capsys.readouterr().err
    assert main([]) == 2  # no command: the help, and a usage error status
    assert "COMMAND" in capsys.readouterr().out
