"""The lecture's narrow-valley experiment: why one learning rate cannot fit every parameter.

On :func:`gradtx.testing.problems.narrow_valley` (a convex, ill-conditioned 2-D quadratic: a steep wall
across, a long flat floor along) the demo runs, each as one jitted ``lax.scan`` in float32:

    gd_large     gradient descent, lr 1e-2: jumps between the walls forever; the loss stops falling while
                 the gradient stays large (training stuck is not a small gradient)
    gd_tiny      gradient descent, lr 1e-7, 100,000 steps: no oscillation, slides down the wall, and crawls
    rms          the lecture's form of Adagrad, lr 0.1: sigma = the root *mean* square of all past gradients
                 (classic Adagrad, ``gradtx.adagrad``, divides by their root *sum* square, sqrt(t) times
                 larger). It turns the corner and walks the floor, then bursts across the valley once sigma
                 along the quiet steep axis has shrunk like 1/sqrt(t) (the lecture's "explosions"; classic
                 Adagrad's step only shrinks and does not burst). Where its bursts leave it at the end
                 depends on float32 rounding
    rms_decay    the same with learning-rate decay (constant, then 1/sqrt(t)): arrives smoothly
    rmsprop      the lecture's RMSProp (sigma_0 = |g_0|, exponential average, alpha 0.9), lr 0.1: reaches the
                 floor fast but keeps chattering across it with steps of about lr
    adam         Adam (Kingma & Ba), lr 0.1: RMSProp + momentum + bias correction
    adam_warmup_cosine  Adam with linear warm-up and cosine decay (peak 0.2)

The entry points are :func:`main` (``python -m gradtx demo``: runs, table, figures) and :func:`run_demo`
(the histories, name -> :class:`History` of iterates, losses and gradient norms). The helpers they use stay
importable from this module for the notebooks and tests: ``lecture_runs`` (the runs), ``run_optimizer`` (one
run), ``summarize`` (the table's numbers and verdicts), ``format_table`` (its text), ``count_bursts``,
``plot`` and ``diagnostics_figure`` (the figures) and ``lecture_saddle`` (``L = (1 - w1 w2)^2``).

Each row of the table carries three readings of the run's end:

- the demo's verdict: "converged" (the loss ended below ``TOLERANCE`` and its last ``PLATEAU_WINDOW`` steps
  are at a critical point), "below tolerance, still settling" (below ``TOLERANCE`` but still moving),
  "reached, bursting (N)", "reached, left again", "at the floor, chattering", "oscillating", "crawling";
- :func:`gradtx.diagnostics.diagnose_plateau` over the last ``PLATEAU_WINDOW`` steps: "still descending",
  "at a critical point (converged)", "at a critical point (stalled)", "oscillating" or "diverging";
- :func:`gradtx.diagnostics.classify_critical_point` at the final iterate (the second-order test), with the
  gradient counted as vanished below ``CRITICAL_GRAD_RTOL`` times the run's largest gradient norm, the same
  relative rule as ``diagnose_plateau``'s.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx import diagnostics, schedules
from gradtx.diagnostics.plateau import CONVERGED, OSCILLATING
from gradtx.testing.problems import NarrowValley, narrow_valley

__all__ = ["main", "run_demo"]

DEFAULT_STEPS = 6000
"""Steps of every run but the tiny-learning-rate one; the adaptive runs reach the minimum by ~4,000."""

TINY_LR_STEPS = 100_000
"""Steps of gradient descent with lr 1e-7: the lecture's "100,000 points", still nowhere near the minimum."""

TOLERANCE = 1e-3
"""The loss counted as "reached the minimum" (the start's loss is 110; 1e-3 is |u| < 1 along the floor)."""

LEARNING_RATE = 0.1
"""The adaptive runs' learning rate: each coordinate moves about this far per step, ~3,000 steps of floor."""

PLATEAU_WINDOW = 100
"""``diagnose_plateau`` judges the last this-many steps: "flat" = fell by < 0.1% of the loss scale in them."""

CRITICAL_GRAD_RTOL = 1e-3
"""``classify_critical_point``'s gradient tolerance at a run's end, relative to the run's largest gradient norm
(``diagnose_plateau``'s ``grad_rtol``): both columns of the table call the same gradients "vanished"."""

DECAY_BEGIN = 1500
"""The rms_decay run keeps lr constant for this many steps (the walk down the valley), then lr sqrt(T/t)."""


class History(NamedTuple):
    """One run: the iterates ``w_0 .. w_T``, the loss and the gradient norm at each (float32 NumPy)."""

    params: np.ndarray  # (T + 1, 2)
    loss: np.ndarray  # (T + 1,)
    grad_norm: np.ndarray  # (T + 1,)

    @property
    def steps(self) -> int:
        return len(self.loss) - 1


@dataclasses.dataclass(frozen=True)
class Run:
    """One optimizer of the experiment: its key, its label in the table, the optimizer, its step count."""

    name: str
    label: str
    optimizer: Any
    steps: int


# --------------------------------------------------------------------------------------------------
# The runs.
# --------------------------------------------------------------------------------------------------


def inverse_sqrt_decay(peak: float, begin: int) -> Callable[[Any], jax.Array]:
    """``lr(t) = peak * min(1, sqrt(begin / (t + 1)))``: constant, then decaying like ``1 / sqrt(t)``.

    Why this decay: once the steep coordinate is quiet, the lecture's sigma (a mean over all ``t`` past
    squared gradients) shrinks like ``1 / sqrt(t)``; dividing lr by the same factor keeps ``lr(t) / sigma(t)``
    bounded, so the step that exploded without decay stays put.
    """
    peak32 = np.float32(peak)
    begin32 = np.float32(begin)

    def schedule(count: Any) -> jax.Array:
        t = jnp.asarray(count).astype(jnp.float32) + 1
        return cast(jax.Array, peak32 * jnp.minimum(jnp.float32(1), jnp.sqrt(begin32 / t)))

    schedule.__qualname__ = f"inverse_sqrt_decay(peak={peak:g}, begin={begin})"
    return schedule


def lecture_runs(steps: int = DEFAULT_STEPS, tiny_steps: int = TINY_LR_STEPS) -> list[Run]:
    """The runs in the table's order: ``tiny_steps`` for GD with lr 1e-7, ``steps`` for the rest."""
    lr = LEARNING_RATE
    warmup = max(1, min(200, steps // 10))
    return [
        Run("gd_large", "GD lr=1e-2", gradtx.sgd(1e-2), steps),
        Run("gd_tiny", "GD lr=1e-7", gradtx.sgd(1e-7), tiny_steps),
        Run("rms", f"RMS (lecture's Adagrad) lr={lr:g}", gradtx.rmsprop(lr, decay=None), steps),
        Run(
            "rms_decay",
            f"RMS + decay lr={lr:g}, 1/sqrt(t)",
            gradtx.rmsprop(inverse_sqrt_decay(lr, DECAY_BEGIN), decay=None),
            steps,
        ),
        Run("rmsprop", f"RMSProp a=0.9 lr={lr:g}", gradtx.rmsprop(lr, decay=0.9, init_from_first=True), steps),
        Run("adam", f"Adam lr={lr:g}", gradtx.adam(lr), steps),
        Run(
            "adam_warmup_cosine",
            "Adam warmup+cosine 0.2",
            gradtx.adam(
                schedules.warmup_cosine_decay_schedule(
                    init_value=0.0,
                    peak_value=2 * lr,
                    warmup_steps=warmup,
                    decay_steps=max(steps, warmup + 1),
                    end_value=0.0,
                )
            ),
            steps,
        ),
    ]


@functools.partial(jax.jit, static_argnames=("loss_fn", "steps"))
def _scan_run(
    optimizer: Any, w0: jax.Array, *, loss_fn: Callable[[jax.Array], jax.Array], steps: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    value_and_grad = jax.value_and_grad(loss_fn)

    def step(
        carry: tuple[jax.Array, Any], _: Any
    ) -> tuple[tuple[jax.Array, Any], tuple[jax.Array, jax.Array, jax.Array]]:
        w, state = carry
        loss, g = value_and_grad(w)
        updates, state = optimizer.update(g, state, w)
        return (gradtx.apply_updates(w, updates), state), (w, loss, jnp.sqrt(jnp.sum(g * g)))

    (w, _), (ws, losses, gnorms) = jax.lax.scan(step, (w0, optimizer.init(w0)), length=steps)
    loss, g = value_and_grad(w)
    return (
        jnp.concatenate([ws, w[None]]),
        jnp.concatenate([losses, loss[None]]),
        jnp.concatenate([gnorms, jnp.sqrt(jnp.sum(g * g))[None]]),
    )


def run_optimizer(optimizer: Any, loss_fn: Callable[[jax.Array], jax.Array], w0: Any, steps: int) -> History:
    """Run ``optimizer`` for ``steps`` steps from ``w0`` in float32: one jitted ``lax.scan``.

    The optimizer is an argument of the jitted function (gradtx optimizers are pytrees), ``loss_fn`` and
    ``steps`` are static. The gradient comes from ``jax.value_and_grad(loss_fn)``.
    """
    w0 = jnp.asarray(w0, dtype=jnp.float32)
    ws, losses, gnorms = _scan_run(optimizer, w0, loss_fn=loss_fn, steps=int(steps))
    return History(np.asarray(ws), np.asarray(losses), np.asarray(gnorms))


def run_demo(
    steps: int = DEFAULT_STEPS,
    tiny_steps: int = TINY_LR_STEPS,
    problem: NarrowValley | None = None,
    runs: Sequence[Run] | None = None,
) -> dict[str, History]:
    """Run the lecture's narrow-valley experiment and return every run's history (no table, no plotting).

    Each run is ``w_{t+1} = w_t + update_t`` with the run's gradtx optimizer on ``problem.loss`` from
    ``problem.start``, for its number of steps, as one jitted ``lax.scan`` in float32; the history holds the
    iterates ``w_0 .. w_T``, the loss and the gradient norm ``||grad L(w_t)||`` at each.

    Args:
      steps: steps of every default run but the tiny-learning-rate one, an integer >= 1; default
        ``DEFAULT_STEPS`` (6,000). Ignored when ``runs`` is given.
      tiny_steps: steps of gradient descent with lr 1e-7, an integer >= 1; default ``TINY_LR_STEPS``
        (100,000, the lecture's "100,000 points"). Ignored when ``runs`` is given.
      problem: the valley, a :class:`gradtx.testing.problems.NarrowValley`; default ``narrow_valley()``.
      runs: the runs (``Run(name, label, optimizer, steps)``) to make instead of the lecture's seven
        (``lecture_runs(steps, tiny_steps)``); default None, the lecture's.

    Returns:
      ``{name: History}`` in the order of the runs, each ``History(params, loss, grad_norm)`` of float32
      NumPy arrays of shapes ``(T + 1, 2)``, ``(T + 1,)`` and ``(T + 1,)``.

    Examples:
      Gradient descent with lr 1e-2 bounces between the walls: after 50 steps its loss is still above 100.

      >>> import gradtx
      >>> from gradtx.demo import Run, run_demo
      >>> histories = run_demo(runs=[Run("gd_large", "GD lr=1e-2", gradtx.sgd(1e-2), 50)])
      >>> h = histories["gd_large"]
      >>> h.params.shape, h.loss.dtype, bool(h.loss[-1] > 100), bool(h.grad_norm[-1] > 190)
      ((51, 2), dtype('float32'), True, True)
    """
    problem = problem or narrow_valley()
    runs = lecture_runs(steps, tiny_steps) if runs is None else runs
    return {r.name: run_optimizer(r.optimizer, problem.loss, problem.start, r.steps) for r in runs}


# --------------------------------------------------------------------------------------------------
# Reading a history: bursts, verdicts, the table.
# --------------------------------------------------------------------------------------------------


def step_lengths(params: np.ndarray) -> np.ndarray:
    """``|w_{t+1} - w_t|`` for ``t = 0 .. T-1`` (float64)."""
    return cast(np.ndarray, np.linalg.norm(np.diff(np.asarray(params, dtype=np.float64), axis=0), axis=-1))


def count_bursts(
    params: np.ndarray, window: int = 100, factor: float = 10.0, min_length: float = 1e-2
) -> tuple[int, np.ndarray]:
    """Bursts: steps ``factor`` times longer than the median of the ``window`` steps before them.

    Returns ``(episodes, flagged_step_indices)``; flagged steps closer than ``window`` steps apart count as
    one episode. Steps shorter than ``min_length`` are never flagged (a converged run's steps are at the
    rounding level, where ratios mean nothing).
    """
    s = step_lengths(params)
    if len(s) <= window:
        return 0, np.zeros(0, dtype=np.int64)
    med = np.median(np.lib.stride_tricks.sliding_window_view(s[:-1], window), axis=-1)
    later = s[window:]
    flagged = np.nonzero((later > factor * med) & (later > min_length))[0] + window
    if len(flagged) == 0:
        return 0, flagged
    return int(1 + np.sum(np.diff(flagged) > window)), flagged


@dataclasses.dataclass(frozen=True)
class Summary:
    """One row of the table."""

    name: str
    label: str
    steps: int
    final_loss: float
    distance: float
    steps_to_tolerance: int | None
    final_grad_norm: float
    bursts: int
    verdict: str
    plateau: str = ""  # gradtx.diagnostics.diagnose_plateau on the last PLATEAU_WINDOW steps
    second_order: str = ""  # gradtx.diagnostics.classify_critical_point at the final iterate


def _verdict(
    h: History,
    distance: float,
    start_distance: float,
    reached: int | None,
    bursts: int,
    tol: float,
    plateau: str,
) -> str:
    """A short reading of a run, from these rules in order:

    - reached the tolerance and ends below it: "converged" (", N bursts" if any) when ``plateau`` (the
      diagnosis of the last steps) is "at a critical point (converged)"; else, still moving inside the
      tolerance (ringing after a burst): "below tolerance, still settling" (", N bursts");
      reached it but ends above it (inside a burst): "reached, bursting (N)" or, without bursts, "reached,
      left again";
    - within 1% of the start's distance to the minimum but above the tolerance: "at the floor, chattering";
    - the loss over the last 20% of the run changed by less than 1% while the gradient norm stayed above
      1000 x the tolerance, and ``plateau`` agrees (the last steps reverse direction): "oscillating" (stuck,
      and not at a critical point);
    - otherwise: "crawling".
    """
    if reached is not None:
        burst_note = f", {bursts} bursts" if bursts else ""
        if h.loss[-1] <= tol:
            if plateau == CONVERGED:
                return "converged" + burst_note
            return "below tolerance, still settling" + burst_note
        return f"reached, bursting ({bursts})" if bursts else "reached, left again"
    if distance <= 0.01 * start_distance:
        return "at the floor, chattering"
    tail = h.loss[int(0.8 * h.steps) :].astype(np.float64)
    change = (tail.max() - tail.min()) / max(float(np.abs(tail).max()), 1e-300)
    if change < 0.01 and float(h.grad_norm[-1]) > 1000 * tol and plateau == OSCILLATING:
        return "oscillating"
    return "crawling"


def summarize(
    histories: dict[str, History],
    problem: NarrowValley | None = None,
    tol: float = TOLERANCE,
    labels: dict[str, str] | None = None,
) -> list[Summary]:
    """The table's rows: final loss, distance to the minimum, first step with loss <= tol, bursts, verdict."""
    problem = problem or narrow_valley()
    labels = labels or {}
    start_distance = float(np.linalg.norm(problem.start - problem.minimum))
    rows = []
    for name, h in histories.items():
        distance = float(np.linalg.norm(h.params[-1].astype(np.float64) - problem.minimum))
        hits = np.nonzero(h.loss <= tol)[0]
        reached = int(hits[0]) if len(hits) else None
        bursts, _ = count_bursts(h.params)
        window = min(PLATEAU_WINDOW, len(h.loss))
        plateau = diagnostics.diagnose_plateau(h.loss, h.grad_norm, window, params=h.params).verdict
        finite = h.grad_norm[np.isfinite(h.grad_norm)]
        grad_tol = CRITICAL_GRAD_RTOL * float(finite.max()) if finite.size else 0.0
        second = diagnostics.classify_critical_point(
            problem.loss, jnp.asarray(h.params[-1]), tol=1e-6, grad_tol=grad_tol
        ).verdict
        rows.append(
            Summary(
                name,
                labels.get(name, name),
                h.steps,
                float(h.loss[-1]),
                distance,
                reached,
                float(h.grad_norm[-1]),
                bursts,
                _verdict(h, distance, start_distance, reached, bursts, tol, plateau),
                plateau,
                second,
            )
        )
    return rows


def format_table(rows: Sequence[Summary], tol: float = TOLERANCE) -> str:
    """The rows as a fixed-width text table."""
    head = (
        "run",
        "steps",
        "final loss",
        "dist to min",
        f"steps to loss<={tol:g}",
        "final |grad|",
        "verdict",
        f"last {PLATEAU_WINDOW} steps",
        "2nd-order test at the end",
    )
    body = [
        (
            r.label,
            f"{r.steps:,}",
            f"{r.final_loss:.3e}",
            f"{r.distance:.3e}",
            "never" if r.steps_to_tolerance is None else f"{r.steps_to_tolerance:,}",
            f"{r.final_grad_norm:.3e}",
            r.verdict,
            r.plateau,
            r.second_order,
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    right = {1, 2, 3, 4, 5}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), rule, *(line(b) for b in body)])


# --------------------------------------------------------------------------------------------------
# The figure.
# --------------------------------------------------------------------------------------------------

_COLORS = ["#d62728", "#7f7f7f", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _subsample(n: int, most: int = 20_000) -> np.ndarray:
    return np.unique(np.concatenate([np.arange(0, n, max(1, n // most)), [n - 1]]))


def _valley_panel(
    ax: Any, problem: NarrowValley, grid: tuple[Any, Any, Any], xlim: Any = None, ylim: Any = None
) -> None:
    X, Y, Z = grid
    levels = np.logspace(-4, 4, 17)
    ax.contourf(
        X,
        Y,
        np.log10(np.maximum(Z, 1e-12)),
        levels=np.log10(levels),
        cmap="Greys_r",
        alpha=0.35,
        extend="both",
    )
    ax.contour(X, Y, Z, levels=levels, colors="0.55", linewidths=0.4)
    ax.plot(*problem.minimum, marker="x", color="k", ms=9, mew=2, zorder=5)
    ax.plot(*problem.start, marker="o", color="k", ms=5, zorder=5)
    ax.set_xlim(*(xlim or problem.xlim))
    ax.set_ylim(*(ylim or problem.ylim))
    ax.tick_params(labelsize=7)


def plot(
    histories: dict[str, History],
    rows: Sequence[Summary],
    path: str,
    problem: NarrowValley | None = None,
    tol: float = TOLERANCE,
) -> str:
    """Write the figure to ``path`` (PNG, matplotlib's Agg canvas; no pyplot state): one panel per run with
    its trajectory over the valley's contours, a zoom on the valley's end, loss and gradient-norm curves."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    problem = problem or narrow_valley()
    fig = Figure(figsize=(18, 12), dpi=90)
    FigureCanvasAgg(fig)
    grid_spec = fig.add_gridspec(3, 4, height_ratios=[1, 1, 1.15], hspace=0.42, wspace=0.2)
    grid = problem.contour_grid(n=300)
    names = list(histories)
    by_name = {r.name: r for r in rows}
    colors = {n: _COLORS[i % len(_COLORS)] for i, n in enumerate(names)}
    for i, name in enumerate(names[:7]):
        ax = fig.add_subplot(grid_spec[i // 4, i % 4])
        _valley_panel(ax, problem, grid)
        w = histories[name].params
        idx = _subsample(len(w))
        ax.plot(w[idx, 0], w[idx, 1], "-", color=colors[name], lw=0.6, alpha=0.8)
        ax.plot(w[idx, 0], w[idx, 1], ".", color=colors[name], ms=1.5)
        r = by_name.get(name)
        title = name if r is None else f"{r.label}\n{r.steps:,} steps: {r.verdict}"
        ax.set_title(title, fontsize=9)
    # The zoom: the end of the valley, where the undecayed RMS run bursts and the decayed one does not.
    ax = fig.add_subplot(grid_spec[1, 3])
    zoom_x = (problem.minimum[0] - 3.0, problem.minimum[0] + 25.0)
    zoom_y = (problem.minimum[1] - 0.6, problem.minimum[1] + 0.9)
    _valley_panel(ax, problem, problem.contour_grid(zoom_x, zoom_y, n=200), zoom_x, zoom_y)
    for name in ("rms", "rms_decay"):
        if name in histories:
            w = histories[name].params
            ax.plot(
                w[:, 0],
                w[:, 1],
                "-",
                color=colors[name],
                lw=0.7,
                label=by_name[name].label if name in by_name else name,
            )
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("zoom on the valley's end: bursts across the valley", fontsize=9)

    ax_loss = fig.add_subplot(grid_spec[2, 0:2])
    ax_grad = fig.add_subplot(grid_spec[2, 2:4])
    for name in names:
        h = histories[name]
        t = np.arange(1, len(h.loss) + 1)
        idx = _subsample(len(t), 50_000)
        label = by_name[name].label if name in by_name else name
        ax_loss.plot(t[idx], np.maximum(h.loss[idx], 1e-30), color=colors[name], lw=0.9, label=label)
        ax_grad.plot(t[idx], np.maximum(h.grad_norm[idx], 1e-30), color=colors[name], lw=0.9, label=label)
    ax_loss.axhline(tol, color="k", ls=":", lw=0.8)
    ax_loss.text(1.2, tol * 1.5, f"tolerance {tol:g}", fontsize=7)
    for ax, what in ((ax_loss, "loss"), (ax_grad, "gradient norm")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("step + 1 (log scale)", fontsize=8)
        ax.set_title(what, fontsize=10)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="major", lw=0.3)
    ax_loss.set_ylim(bottom=1e-12)
    ax_grad.set_ylim(bottom=1e-7)
    ax_loss.legend(fontsize=7, loc="lower left", ncol=2)
    fig.suptitle(f"The lecture's narrow valley ({problem!r}): update = -lr(t) g / sigma(t)", fontsize=11)
    fig.subplots_adjust(left=0.04, right=0.99, top=0.92, bottom=0.06)
    fig.savefig(path)
    return path


def lecture_saddle(w: Any) -> jax.Array:
    """The lecture's saddle: ``y = w1 w2 x`` fitted to ``(x, y) = (1, 1)``, ``L = (1 - w1 w2)^2``.

    At the origin the gradient vanishes and the Hessian ``[[0, -2], [-2, 0]]`` has eigenvalues -2 and 2.
    """
    return cast(jax.Array, (1.0 - w[0] * w[1]) ** 2)


@functools.partial(jax.jit, static_argnames=("loss_fn", "steps"))
def _monitored_run(
    optimizer: Any, w0: jax.Array, *, loss_fn: Callable[[jax.Array], jax.Array], steps: int
) -> Any:
    """``steps`` updates of ``optimizer`` (a ``monitored`` one) in one scan; returns the final state."""
    grad = jax.grad(loss_fn)

    def step(carry: Any, _: Any) -> tuple[Any, None]:
        w, state = carry
        updates, state = optimizer.update(grad(w), state, w)
        return (gradtx.apply_updates(w, updates), state), None

    (_, state), _ = jax.lax.scan(step, (w0, optimizer.init(w0)), length=steps)
    return state


def diagnostics_figure(path: str, steps: int = DEFAULT_STEPS, problem: NarrowValley | None = None) -> str:
    """Write ``path`` (PNG), drawn with :mod:`gradtx.plot`: the two schedules of the runs, the metrics that
    ``gradtx.diagnostics.monitored`` recorded inside Adam's jitted scan on the valley (gradient norm, update
    norm and the effective per-parameter step ``|u_i| / |g_i|``, Adam's ``lr / sigma``), and gradient descent
    leaving the lecture's saddle point (classified by ``classify_critical_point``) for the valley
    ``w1 w2 = 1``."""
    from gradtx import plot as gplot

    problem = problem or narrow_valley()
    fig = gplot._figure((16, 8.5))
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.35])
    ax_sched, ax_saddle = left.subplots(2, 1)
    warmup = max(1, min(200, steps // 10))
    wc = schedules.warmup_cosine_decay_schedule(0.0, 2 * LEARNING_RATE, warmup, max(steps, warmup + 1), 0.0)
    gplot.schedule(wc, steps, ax=ax_sched, label="Adam: linear warm-up + cosine decay")
    gplot.schedule(inverse_sqrt_decay(LEARNING_RATE, DECAY_BEGIN), steps, ax=ax_sched, label="RMS: 1/sqrt(t) decay")
    ax_sched.set_title("learning-rate schedules (gradtx.plot.schedule)", fontsize=10)

    w0 = jnp.asarray(problem.start, jnp.float32)
    opt = diagnostics.monitored(gradtx.adam(LEARNING_RATE), history=steps)
    state = _monitored_run(opt, w0, loss_fn=problem.loss, steps=int(steps))
    gplot.metrics(state, ["grad_norm", "update_norm", "effective_lr_median", "update_param_ratio"], fig=right, ncols=2)
    right.suptitle("Adam on the valley: gradtx.diagnostics.monitored, read by gradtx.plot.metrics", fontsize=10)

    origin = jnp.zeros(2, jnp.float32)
    verdict = diagnostics.classify_critical_point(lecture_saddle, origin)
    w = jnp.asarray([0.02, 0.005], jnp.float32)  # near the saddle: GD leaves along the eigenvector of -2
    path_ = [np.asarray(w)]
    for _ in range(60):
        w = w - 0.1 * jax.grad(lecture_saddle)(w)
        path_.append(np.asarray(w))
    gplot.trajectory(
        lecture_saddle,
        np.stack(path_),
        xlim=(-1.5, 1.5),
        ylim=(-1.5, 1.5),
        ax=ax_saddle,
        label="GD lr 0.1 from (0.02, 0.005)",
    )
    ax_saddle.set_title(
        f"L = (1 - w1 w2)^2 at the origin: |g| = {verdict.grad_norm:.0f}, eigenvalues "
        f"{verdict.min_eigenvalue:.3g} and {verdict.max_eigenvalue:.3g}: {verdict.verdict}",
        fontsize=9,
    )
    fig.savefig(path, dpi=80)
    return path


# --------------------------------------------------------------------------------------------------
# The command.
# --------------------------------------------------------------------------------------------------


def main(
    steps: int = DEFAULT_STEPS,
    tiny_steps: int = TINY_LR_STEPS,
    out: str = ".",
    make_plot: bool = True,
    tol: float = TOLERANCE,
) -> int:
    """``python -m gradtx demo``: run the lecture's experiment, print the table, write the figures.

    Runs the seven optimizers of the narrow valley (:func:`run_demo`), prints one row per run (final loss,
    distance to the minimum, the first step with loss <= ``tol``, final gradient norm, and three verdicts:
    the demo's, :func:`gradtx.diagnostics.diagnose_plateau`'s over the last 100 steps, and the second-order
    test :func:`gradtx.diagnostics.classify_critical_point` at the end), then the second-order test at the
    lecture's saddle ``L = (1 - w1 w2)^2``, whose Hessian at the origin has eigenvalues -2 and 2. A flat loss
    with a large gradient reads "oscillating" (not a critical point); a vanished gradient reads "at a critical
    point", "(converged)" when the loss is at its floor 0 and "(stalled)" when it is not.

    Args:
      steps: steps of every run but the tiny-learning-rate one, an integer >= 1; default ``DEFAULT_STEPS``
        (6,000).
      tiny_steps: steps of gradient descent with lr 1e-7, an integer >= 1; default ``TINY_LR_STEPS``
        (100,000).
      out: the folder the figures are written to (created if missing); default ``"."``.
      make_plot: write ``out/narrow_valley.png`` and ``out/diagnostics.png`` (needs matplotlib); default
        True.
      tol: the loss counted as "reached the minimum", > 0; default ``TOLERANCE`` (1e-3).

    Returns:
      The exit status, 0.

    Examples:
      A short run without figures (the full demo runs 6,000 and 100,000 steps):

      >>> from gradtx.demo import main
      >>> main(steps=300, tiny_steps=300, make_plot=False)
      The lecture's narrow valley: NarrowValley(flat=0.002, steep=200, angle=0.01, minimum=[0.0, 0.0], ...)
      ...
      GD lr=1e-2 ... oscillating  oscillating  not critical
      GD lr=1e-7 ... crawling  still descending  not critical
      ...
      The lecture's L = (1 - w1 w2)^2 at the origin: gradient norm 0, Hessian eigenvalues -2 and 2: saddle point
      0
    """
    t0 = time.perf_counter()
    problem = narrow_valley()
    runs = lecture_runs(steps, tiny_steps)
    histories = run_demo(steps, tiny_steps, problem, runs)
    t_runs = time.perf_counter() - t0
    rows = summarize(histories, problem, tol, labels={r.name: r.label for r in runs})
    print(f"The lecture's narrow valley: {problem!r}")
    print(
        f"loss at the start {problem.loss_np(problem.start):.4g}, minimum 0 at {problem.minimum.tolist()}; "
        f"each run is one jitted lax.scan in float32 ({t_runs:.1f} s for all, compile included)"
    )
    print()
    print(format_table(rows, tol))
    saddle = diagnostics.classify_critical_point(lecture_saddle, jnp.zeros(2, jnp.float32))
    print()
    print(
        f"The lecture's L = (1 - w1 w2)^2 at the origin: gradient norm {saddle.grad_norm:g}, Hessian eigenvalues "
        f"{saddle.min_eigenvalue:g} and {saddle.max_eigenvalue:g}: {saddle.verdict}"
    )
    if make_plot:
        os.makedirs(out, exist_ok=True)
        path = plot(histories, rows, os.path.join(out, "narrow_valley.png"), problem, tol)
        path2 = diagnostics_figure(os.path.join(out, "diagnostics.png"), steps, problem)
        print()
        print(f"figures: {path}, {path2}")
    return 0
