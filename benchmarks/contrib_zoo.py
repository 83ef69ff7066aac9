"""A comparison run of research optimizers on the problem zoo: the lecture's narrow valley and Rosenbrock.

    python benchmarks/contrib_zoo.py [--steps 3000]

Each optimizer runs ``--steps`` updates from the problem's start (float32, one jitted ``lax.scan`` each) and the
table gives the final loss and the first step at which the loss fell below 1e-3 of its start value. The learning
rates are one reasonable choice per method (not tuned per problem): the point is to see the methods side by side,
not to rank them. Prints a Markdown table (the one in the README comes from this script).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx import contrib
from gradtx.testing.problems import narrow_valley, rosenbrock

OPTIMIZERS = {
    "sgd(1e-3, momentum=0.9)": lambda: gradtx.sgd(1e-3, momentum=0.9),
    "adam(0.05)": lambda: gradtx.adam(0.05),
    "contrib.adopt(0.05)": lambda: contrib.adopt(0.05),
    "contrib.ademamix(0.05)": lambda: contrib.ademamix(0.05),
    "contrib.cautious(adam(0.05))": lambda: contrib.cautious(gradtx.adam(0.05)),
    "contrib.mars_adamw(0.05)": lambda: contrib.mars_adamw(0.05),
    "contrib.amsbound(0.05, final_lr=1e-3)": lambda: contrib.amsbound(0.05, final_lr=1e-3),
    "contrib.swats(0.05, switch_tol=1e-3)": lambda: contrib.swats(0.05, switch_tol=1e-3),
    "contrib.schedule_free_adamw(0.05)": lambda: contrib.schedule_free_adamw(0.05),
    "contrib.prodigy()": lambda: contrib.prodigy(),
    "contrib.dog()": lambda: contrib.dog(),
}


def run(make, problem, steps):
    tx = make()
    w0 = jnp.asarray(problem.start, jnp.float32)

    @jax.jit
    def go(w, state):
        def body(carry, _):
            w, s = carry
            value, g = jax.value_and_grad(problem.loss)(w)
            u, s = tx.update(g, s, w, value=value)
            return (gradtx.apply_updates(w, u), s), value

        return jax.lax.scan(body, (w, state), None, length=steps)

    (w, state), losses = go(w0, tx.init(w0))
    if any(n == "ScheduleFreeState" for n in (type(x).__name__ for x in jax.tree.leaves(
            state, is_leaf=lambda x: hasattr(x, "_fields")))):
        w = contrib.schedule_free_eval_params(state, w)
    losses = np.asarray(losses, np.float64)
    start = float(problem.loss(w0))
    below = np.nonzero(losses <= 1e-3 * start)[0]
    return float(problem.loss(w)), (int(below[0]) if below.size else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    problems = {"narrow valley": narrow_valley(), "Rosenbrock": rosenbrock()}
    if not hasattr(problems["Rosenbrock"], "start"):
        problems["Rosenbrock"].start = np.asarray([-1.2, 1.0])
    head = " | ".join(f"{p}: final loss | steps to 1e-3 x start" for p in problems)
    print(f"| optimizer ({args.steps} steps, float32) | {head} |")
    print("|---|" + "---|---|" * len(problems))
    for name, make in OPTIMIZERS.items():
        cells = []
        for problem in problems.values():
            final, first = run(make, problem, args.steps)
            cells += [f"{final:.3g}", "never" if first is None else str(first + 1)]
        print(f"| `{name}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
