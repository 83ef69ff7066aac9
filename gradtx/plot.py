"""Plots of what gradtx computes: schedules, monitored metrics, trajectories over a 2-D loss.

Matplotlib is an optional dependency (``pip install "gradtx[plot]"``); it is imported when a function runs, not
when gradtx is. Every function draws on a matplotlib ``Axes`` you pass (``ax=``) or on a new ``Figure`` made
without pyplot's global state (so it works in scripts, tests and notebooks alike), and returns what it drew on:

    schedule(s, steps)              the value of a schedule at steps 0 .. steps-1
    metrics(state)                  the ring-buffered histories of ``gradtx.diagnostics.monitored``, one panel each
    trajectory(loss_fn, path)       a path of 2-D parameters over the loss's log-spaced contours
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["metrics", "schedule", "trajectory"]


def _new_axes(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    fig = _figure(figsize)
    return fig.add_subplot(1, 1, 1)


def _figure(figsize: tuple[float, float]) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError('gradtx.plot needs matplotlib: pip install "gradtx[plot]"') from e
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def schedule(
    s: Callable[[Any], Any] | float,
    steps: int,
    *,
    ax: Any = None,
    label: str | None = None,
    log: bool = False,
    **line_kwargs: Any,
) -> Any:
    """Plot ``s(0), ..., s(steps - 1)`` (a gradtx or Optax schedule, any callable of the step, or a number).

    The values are computed in one vectorised call when the schedule allows it (``jax.vmap``), else step by
    step. Returns the ``Axes``.
    """
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"plot.schedule(steps={steps!r}): steps must be an int >= 1")
    t = jnp.arange(steps)
    if callable(s):
        try:
            values = np.asarray(jax.vmap(s)(t), dtype=np.float64)
        except Exception:  # a schedule written with Python control flow on the step
            values = np.asarray([float(s(i)) for i in range(steps)], dtype=np.float64)
    else:
        values = np.full(steps, float(s))
    ax = _new_axes(ax, (6.0, 3.5))
    ax.plot(np.arange(steps), values, label=label, **line_kwargs)
    ax.set_xlabel("step")
    ax.set_ylabel("value")
    if log:
        ax.set_yscale("log")
    if label is not None:
        ax.legend()
    return ax


def metrics(
    state_or_metrics: Any,
    names: Sequence[str] | None = None,
    *,
    fig: Any = None,
    ncols: int = 3,
    log: bool = True,
) -> Any:
    """One panel per metric history recorded by ``gradtx.diagnostics.monitored``.

    ``state_or_metrics``: an optimizer state holding a ``MonitoredState`` (anywhere inside) or the dict that
    ``gradtx.diagnostics.metrics`` returned. ``names``: the metrics to draw (default: every ``history/<name>``
    present). The x axis is the step at which each value was recorded (``history/step``); slots not filled yet
    are left out.
    Returns the ``Figure``.
    """
    if isinstance(state_or_metrics, Mapping) and any(str(k).startswith("history/") for k in state_or_metrics):
        values = dict(state_or_metrics)
    else:
        from gradtx.diagnostics.monitor import metrics as read_metrics

        values = read_metrics(state_or_metrics)
    available = [k[len("history/") :] for k in values if str(k).startswith("history/") and k != "history/step"]
    chosen = list(available if names is None else names)
    missing = [n for n in chosen if n not in available]
    if missing:
        raise ValueError(f"plot.metrics(names={list(chosen)!r}): no history for {missing}; recorded: {available}")
    if not chosen:
        raise ValueError("plot.metrics: the state records no metric histories")
    ncols = max(1, min(int(ncols), len(chosen)))
    nrows = math.ceil(len(chosen) / ncols)
    fig = fig if fig is not None else _figure((4.0 * ncols, 2.8 * nrows))
    for i, name in enumerate(chosen):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        h = np.asarray(values[f"history/{name}"], dtype=np.float64)
        if "history/step" in values:  # the step each slot was recorded at (NaN where not filled yet)
            t = np.asarray(values["history/step"], dtype=np.float64)
        else:
            t = np.arange(len(h), dtype=np.float64)
        keep = np.isfinite(h) & np.isfinite(t)
        ax.plot(t[keep], h[keep], lw=1.0)
        if log and np.all(h[keep] > 0) and keep.any():
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    return fig


def trajectory(
    loss_fn: Callable[[Any], Any],
    path: Any,
    *,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    ax: Any = None,
    n: int = 200,
    levels: int = 20,
    label: str | None = None,
    **line_kwargs: Any,
) -> Any:
    """Draw ``path`` (``(T, 2)`` parameters, e.g. the iterates of a run) over the contours of ``loss_fn``.

    ``loss_fn`` maps a ``(2,)`` array to a scalar (it is vmapped over an ``n x n`` grid). The limits default
    to the path's extent with a margin. Contours are log-spaced between the grid's smallest positive and its
    largest value, so both a valley's walls and its floor show. Returns the ``Axes``.
    """
    w = np.asarray(path, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != 2:
        raise ValueError(f"plot.trajectory(path of shape {w.shape}): path must have shape (T, 2)")
    finite = w[np.all(np.isfinite(w), axis=1)]
    if not len(finite):
        raise ValueError("plot.trajectory: the path has no finite point")

    def span(lo: float, hi: float) -> tuple[float, float]:
        pad = 0.1 * (hi - lo) or 1.0
        return lo - pad, hi + pad

    xlim = xlim or span(float(finite[:, 0].min()), float(finite[:, 0].max()))
    ylim = ylim or span(float(finite[:, 1].min()), float(finite[:, 1].max()))
    xs, ys = np.linspace(*xlim, n), np.linspace(*ylim, n)
    X, Y = np.meshgrid(xs, ys)
    points = jnp.asarray(np.stack([X.ravel(), Y.ravel()], axis=-1))
    Z = np.asarray(jax.vmap(loss_fn)(points), dtype=np.float64).reshape(X.shape)
    ax = _new_axes(ax, (6.0, 4.5))
    positive = Z[np.isfinite(Z) & (Z > 0)]
    if positive.size and positive.max() > positive.min():
        lv = np.geomspace(positive.min(), positive.max(), int(levels))
    else:
        lv = int(levels)
    ax.contour(X, Y, Z, levels=lv, colors="0.6", linewidths=0.5)
    line_kwargs.setdefault("lw", line_kwargs.pop("linewidth", 0.9))
    ax.plot(w[:, 0], w[:, 1], "-", label=label, **line_kwargs)
    ax.plot(w[0, 0], w[0, 1], "o", color="k", ms=4)
    ax.plot(w[-1, 0], w[-1, 1], "x", color="k", ms=6)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    if label is not None:
        ax.legend(fontsize=8)
    return ax
