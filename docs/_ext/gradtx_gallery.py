"""Sphinx extension: the optimizer gallery, computed by the build.

Every named optimizer of ``gradtx`` and ``gradtx.contrib`` (every recipe: a function marked by
``gradtx.fields.recipe``) runs from the same start on two problems of ``gradtx.testing.problems``: the lecture's
narrow valley (condition number 1e5) and Rosenbrock's banana. Its learning rate is chosen by the build from a
grid, the one with the lowest final loss summed over both problems (relative to each start), and the figure
shows both trajectories over the loss contours. A recipe whose ``update`` needs something the gallery does not
provide fails the build rather than being left out silently, unless it is listed in ``NOT_SHOWN`` with the
reason.

The learning rate is a pytree leaf of a gradtx transformation, so each optimizer is compiled once per problem
and run for every learning rate of the grid without recompiling.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path

GRID = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
STEPS = {"narrow valley": 600, "Rosenbrock": 600}
NOT_SHOWN = {
    "noisy_sgd": "adds Gaussian noise drawn from a key: a picture of one random draw says little",
    "dpsgd": "needs per-example gradients (a batch dimension the two problems do not have)",
}


def recipes() -> list[tuple[str, object]]:
    """``(dotted name, optimizer)``: the recipes of ``gradtx`` and ``gradtx.contrib``, and their optimizer classes
    (a public class whose first argument is ``learning_rate``, other than a ``scale_by_*`` block)."""
    import gradtx
    import gradtx.contrib
    from gradtx import GradientTransformation

    out: dict[int, tuple[str, object]] = {}
    for prefix, mod in (("gradtx", gradtx), ("gradtx.contrib", gradtx.contrib)):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or name.startswith("scale_by"):
                continue
            if inspect.isclass(obj) and not issubclass(obj, GradientTransformation):
                continue
            first = next(iter(inspect.signature(obj).parameters), None)
            if getattr(obj, "__gradtx_recipe__", False) or first == "learning_rate":
                out.setdefault(id(obj), (f"{prefix}.{name}", obj))
    return sorted(out.values(), key=lambda e: e[0])


def _problems():
    from gradtx.testing import problems

    return {"narrow valley": problems.narrow_valley(), "Rosenbrock": problems.rosenbrock()}


def _runner(make, problem, steps):
    """A jitted ``lr -> (trajectory, losses)`` for the optimizer ``make(lr)`` on ``problem``."""
    import jax
    import jax.numpy as jnp

    import gradtx

    w0 = jnp.asarray(problem.start, jnp.float32)

    @jax.jit
    def run(lr):
        opt = make(lr)

        def step(carry, _):
            w, state = carry
            value, g = jax.value_and_grad(problem.loss)(w)
            updates, state = opt.update(g, state, w, value=value, grad=g, value_fn=problem.loss, obj_fn=problem.loss)
            w = gradtx.apply_updates(w, updates)
            return (w, state), (w, problem.loss(w))

        _, (ws, losses) = jax.lax.scan(step, (w0, opt.init(w0)), None, length=steps)
        return jnp.concatenate([w0[None], ws]), losses

    return run


def compute(name: str, fn) -> dict:
    """Run ``fn`` on both problems for every learning rate of the grid; keep the best learning rate."""
    import numpy as np

    problems = _problems()
    results = {}
    for pname, problem in problems.items():
        run = _runner(lambda lr: fn(lr), problem, STEPS[pname])
        start = float(problem.loss_np(np.asarray(problem.start)))
        results[pname] = [(lr, *map(np.asarray, run(np.float32(lr))), start) for lr in GRID]
    def score(i):
        total = 0.0
        for pname in problems:
            _, _, losses, start = results[pname][i]
            final = losses[-1]
            total += np.log10(max(final, 1e-12) / start) if np.isfinite(final) else 10.0
        return total
    best = min(range(len(GRID)), key=score)
    return {"lr": GRID[best], "runs": {p: results[p][best] for p in problems}, "problems": problems}


def draw(name: str, result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(7.2, 2.6), dpi=80)
    for ax, (pname, problem) in zip(axes, result["problems"].items()):
        _, ws, losses, start = result["runs"][pname]
        X, Y, Z = problem.contour_grid(n=120)
        ax.contour(X, Y, np.log10(Z + 1e-3), levels=15, cmap="Greys", linewidths=0.6)
        ws = ws[np.all(np.isfinite(ws), axis=1)]
        ax.plot(ws[:, 0], ws[:, 1], "-", color="tab:red", lw=1.0)
        ax.plot(*problem.start, "o", color="k", ms=3)
        ax.plot(*problem.minimum, "*", color="tab:blue", ms=7)
        ax.set_xlim(X.min(), X.max())
        ax.set_ylim(Y.min(), Y.max())
        final = losses[-1]
        ax.set_title(f"{pname}: loss {start:.3g} -> {final:.3g}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"{name}(learning_rate={result['lr']:g})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def build(srcdir: Path) -> int:
    out = srcdir / "gallery_images"
    out.mkdir(exist_ok=True)
    lines = [
        "# Optimizer gallery",
        "",
        "Every named optimizer of `gradtx` and `gradtx.contrib` from the same start on the lecture's narrow "
        f"valley ({STEPS['narrow valley']} steps) and on Rosenbrock's function ({STEPS['Rosenbrock']} steps), "
        "float32, default hyperparameters except the learning rate, which the build picks from "
        f"{', '.join(f'{g:g}' for g in GRID)} (the lowest final loss relative to the start, summed in log "
        "scale over both problems). Each learning rate is a pytree leaf of the optimizer, so every optimizer "
        "is compiled once per problem and run for the whole grid. Red: the trajectory; star: the minimum. "
        "These pictures are generated by the documentation build (`docs/_ext/gradtx_gallery.py`).",
        "",
    ]
    shown = 0
    t0 = time.perf_counter()
    for dotted, fn in recipes():
        short = dotted.rsplit(".", 1)[1]
        if short in NOT_SHOWN:
            continue
        result = compute(dotted, fn)
        draw(dotted, result, out / f"{short}.png")
        lines += [f"## `{dotted}`", "", f"![{dotted}](gallery_images/{short}.png)", ""]
        shown += 1
    lines += ["## Not shown", ""]
    names = {dotted.rsplit(".", 1)[1]: dotted for dotted, _ in recipes()}
    unknown = sorted(set(NOT_SHOWN) - set(names))
    if unknown:
        raise RuntimeError(f"gradtx_gallery: NOT_SHOWN names no optimizer: {unknown}")
    lines += [f"- `{names[name]}`: {why}." for name, why in sorted(NOT_SHOWN.items())]
    text = "\n".join(lines) + "\n"
    page = srcdir / "gallery.md"
    if not page.exists() or page.read_text() != text:
        page.write_text(text)
    print(f"gradtx_gallery: {shown} optimizers in {time.perf_counter() - t0:.0f} s")
    return shown


def _on_builder_inited(app) -> None:
    build(Path(app.srcdir))


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "version": "1"}
