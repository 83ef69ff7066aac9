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
from typing import TYPE_CHECKING, Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from gradtx.base import PyTree, ScalarOrSchedule

if TYPE_CHECKING:  # matplotlib is optional: imported when a function runs
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["metrics", "schedule", "trajectory"]


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    fig = _figure(figsize)
    return cast("Axes", fig.add_subplot(1, 1, 1))


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
    s: ScalarOrSchedule,
    steps: int,
    *,
    ax: Axes | None = None,
    label: str | None = None,
    log: bool = False,
    **line_kwargs: Any,
) -> Axes:
    """Plot ``s(0), ..., s(steps - 1)`` (a gradtx or Optax schedule, any callable of the step, or a number).

    The values are computed in one vectorised call when the schedule allows it (``jax.vmap``), else step by
    step. The x axis is the step, the y axis the value.

    Args:
      s: a schedule ``count -> value`` (gradtx's, Optax's, any callable of the step), or a number (a constant).
      steps: how many steps to plot, an int >= 1.
      ax: the ``Axes`` to draw on (keyword-only). Default None: a new ``Figure`` (without pyplot) of 6 x 3.5
        inches.
      label: the line's legend label; a legend is drawn when given (keyword-only). Default None.
      log: a logarithmic y axis (keyword-only). Default False.
      **line_kwargs: passed to ``Axes.plot`` (``color``, ``lw``, ...).

    Returns:
      The matplotlib ``Axes`` drawn on.

    Raises:
      ValueError: ``steps < 1``: ``plot.schedule(steps=0): steps must be an int >= 1``.
      ImportError: matplotlib is not installed (``pip install "gradtx[plot]"``).

    Examples:
      >>> import matplotlib; matplotlib.use("Agg")
      >>> import gradtx
      >>> ax = gradtx.plot.schedule(gradtx.cosine_decay_schedule(1.0, 100), 100, label="cosine")
      >>> print(ax.get_lines()[0].get_ydata()[[0, 50, 99]].round(3))  # steps 0, 50 and 99
      [1.  0.5 0. ]
    """
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"plot.schedule(steps={steps!r}): steps must be an int >= 1")
    t = jnp.arange(steps)
    if callable(s):
        fn: Callable[[Any], Any] = s  # called with Python ints below, not only arrays
        try:
            values = np.asarray(jax.vmap(fn)(t), dtype=np.float64)
        except Exception:  # a schedule written with Python control flow on the step
            values = np.asarray([float(fn(i)) for i in range(steps)], dtype=np.float64)
    else:
        values = np.full(steps, float(cast(float, s)))
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
    state_or_metrics: PyTree | Mapping[str, ArrayLike],
    names: Sequence[str] | None = None,
    *,
    fig: Figure | None = None,
    ncols: int = 3,
    log: bool = True,
) -> Figure:
    """One panel per metric history recorded by ``gradtx.diagnostics.monitored``.

    The x axis is the step at which each value was recorded (``history/step``); slots of the ring buffers
    not filled yet (NaN) are left out. Each panel is titled with the metric's name.

    Args:
      state_or_metrics: an optimizer state holding a ``MonitoredState`` (anywhere inside) or the dict that
        ``gradtx.diagnostics.metrics`` returned.
      names: the metrics to draw, without the ``history/`` prefix (``"grad_norm"``). Default None: every
        ``history/<name>`` present.
      fig: the ``Figure`` to add the panels to (keyword-only). Default None: a new one (without pyplot).
      ncols: the number of panel columns, >= 1 (keyword-only). Default 3.
      log: a logarithmic y axis for panels whose values are all positive (keyword-only). Default True.

    Returns:
      The matplotlib ``Figure`` drawn on.

    Raises:
      ValueError: a name without a recorded history (``plot.metrics(names=['nope']): no history for ['nope'];
        recorded: [...]``), or no history at all.
      ImportError: matplotlib is not installed (``pip install "gradtx[plot]"``).

    Examples:
      >>> import matplotlib; matplotlib.use("Agg")
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.diagnostics.monitored(gradtx.sgd(0.1), history=4)
      >>> params = {"w": jnp.ones(2)}
      >>> updates, state = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init(params), params)
      >>> fig = gradtx.plot.metrics(state, ["grad_norm", "update_norm"])
      >>> [ax.get_title() for ax in fig.axes], fig.axes[0].get_lines()[0].get_xydata().tolist()
      (['grad_norm', 'update_norm'], [[1.0, 5.0]])
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
    fig = fig if fig is not None else cast("Figure", _figure((4.0 * ncols, 2.8 * nrows)))
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
    loss_fn: Callable[[jax.Array], ArrayLike],
    path: ArrayLike,
    *,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    ax: Axes | None = None,
    n: int = 200,
    levels: int = 20,
    label: str | None = None,
    **line_kwargs: Any,
) -> Axes:
    """Draw ``path`` (``(T, 2)`` parameters, e.g. the iterates of a run) over the contours of ``loss_fn``.

    ``loss_fn`` maps a ``(2,)`` array to a scalar (it is vmapped over an ``n x n`` grid). The limits default
    to the path's extent with a margin. Contours are log-spaced between the grid's smallest positive and its
    largest value, so both a valley's walls and its floor show. The start is marked ``o``, the end ``x``.

    Args:
      loss_fn: ``loss_fn(w) -> scalar`` for ``w`` of shape ``(2,)``; must work under ``jax.vmap``.
      path: the iterates, shape ``(T, 2)``; non-finite rows are drawn as gaps and ignored for the limits.
      xlim: the x range (keyword-only). Default None: the path's extent plus 10% on each side.
      ylim: the y range (keyword-only). Default None: as ``xlim``.
      ax: the ``Axes`` to draw on (keyword-only). Default None: a new ``Figure`` (without pyplot).
      n: the grid's points per axis, >= 2 (keyword-only). Default 200.
      levels: the number of contour levels (keyword-only). Default 20.
      label: the path's legend label; a legend is drawn when given (keyword-only). Default None.
      **line_kwargs: passed to ``Axes.plot`` for the path (``color``, ``lw``, ...).

    Returns:
      The matplotlib ``Axes`` drawn on.

    Raises:
      ValueError: ``path`` is not ``(T, 2)`` (``plot.trajectory(path of shape (3,)): path must have shape
        (T, 2)``) or has no finite point.
      ImportError: matplotlib is not installed (``pip install "gradtx[plot]"``).

    Examples:
      >>> import matplotlib; matplotlib.use("Agg")
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> path = jnp.array([[1.0, 1.0], [0.5, 0.25], [0.0, 0.0]])
      >>> ax = gradtx.plot.trajectory(lambda w: jnp.sum(w**2), path, n=20, label="sgd")
      >>> [round(float(x), 2) for x in ax.get_xlim()]  # the path's extent, plus a 10% margin
      [-0.1, 1.1]
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
    lv: np.ndarray | int
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
