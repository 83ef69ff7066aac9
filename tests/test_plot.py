"""gradtx.plot draws exactly the numbers it is given (read back from the matplotlib artists)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import plot
from gradtx.testing.problems import narrow_valley

pytest.importorskip("matplotlib")


def test_schedule_plots_every_step_value():
    s = gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, 0.01)
    ax = plot.schedule(s, 100, label="wc")
    (line,) = ax.get_lines()
    x, y = line.get_data()
    np.testing.assert_array_equal(x, np.arange(100))
    np.testing.assert_allclose(y, [float(s(i)) for i in range(100)], rtol=1e-6)
    assert ax.get_legend() is not None


def test_schedule_accepts_python_control_flow_and_numbers():
    ax = plot.schedule(lambda t: 0.01 if int(t) < 5 else 0.1, 8)  # ResNet's 0.01-then-0.1 warm-up
    np.testing.assert_allclose(ax.get_lines()[0].get_data()[1], [0.01] * 5 + [0.1] * 3)
    ax = plot.schedule(0.3, 4, ax=ax)
    np.testing.assert_allclose(ax.get_lines()[1].get_data()[1], [0.3] * 4)
    with pytest.raises(ValueError, match=r"plot.schedule\(steps=0\): steps must be an int >= 1"):
        plot.schedule(0.3, 0)


def test_trajectory_draws_the_path_over_the_contours():
    problem = narrow_valley()
    path = np.stack([np.linspace(problem.start[0], 0.0, 30), np.linspace(problem.start[1], 0.0, 30)], axis=1)
    ax = plot.trajectory(problem.loss, path, label="straight", n=40)
    lines = ax.get_lines()
    np.testing.assert_allclose(np.stack(lines[0].get_data(), axis=1), path)
    np.testing.assert_allclose(lines[1].get_data(), ([path[0, 0]], [path[0, 1]]))  # start marker
    np.testing.assert_allclose(lines[2].get_data(), ([path[-1, 0]], [path[-1, 1]]))  # end marker
    assert ax.collections, "no contour drawn"
    lo, hi = ax.get_xlim()
    assert lo < path[:, 0].min() and hi > path[:, 0].max()
    with pytest.raises(ValueError, match=r"path must have shape \(T, 2\)"):
        plot.trajectory(problem.loss, np.zeros((3, 3)))


def test_trajectory_on_a_loss_with_jax_arrays():
    ax = plot.trajectory(lambda w: jnp.sum(w**2), jnp.asarray([[1.0, 1.0], [0.5, 0.25]]), n=20, xlim=(-2, 2))
    assert ax.get_xlim() == (-2.0, 2.0)


def test_trajectory_line_style_is_the_callers():
    path = np.asarray([[1.0, 1.0], [0.5, 0.25]])
    loss = lambda w: jnp.sum(w**2)  # noqa: E731
    assert plot.trajectory(loss, path, n=10).get_lines()[0].get_linewidth() == 0.9  # the default
    assert plot.trajectory(loss, path, n=10, lw=2.5).get_lines()[0].get_linewidth() == 2.5
    assert plot.trajectory(loss, path, n=10, linewidth=3.0, color="r").get_lines()[0].get_linewidth() == 3.0


def test_metrics_draws_each_history_at_its_steps():
    from gradtx import diagnostics

    tx = diagnostics.monitored(gradtx.sgd(0.5), history=4)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    for i in range(6):
        _, state = tx.update({"w": jnp.full(3, float(i + 1))}, state, params)
    fig = plot.metrics(state, ["grad_norm", "update_norm"])
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["grad_norm", "update_norm"]
    x, y = axes[0].get_lines()[0].get_data()
    np.testing.assert_array_equal(x, [3, 4, 5, 6])  # the ring buffer keeps the last 4 of 6 updates
    np.testing.assert_allclose(y, np.sqrt(3) * np.arange(3, 7), rtol=1e-6)
    np.testing.assert_allclose(axes[1].get_lines()[0].get_data()[1], 0.5 * np.sqrt(3) * np.arange(3, 7), rtol=1e-6)
    everything = plot.metrics(diagnostics.metrics(state))
    assert "step" not in [ax.get_title() for ax in everything.get_axes()]
    with pytest.raises(ValueError, match="no history for"):
        plot.metrics(state, ["nope"])
