"""Overhead of ``gradtx.diagnostics.monitored`` around Adam: step time of a jitted ``monitored(adam(1e-3))``
update against ``adam(1e-3)`` on a ~1M-parameter tree of 10 leaves, measured in the same process.

    python benchmarks/monitored_overhead.py [--reps 7] [--iters 20]

Each variant is compiled once, warmed up, then timed ``reps`` times over ``iters`` back-to-back updates
(blocking on the result); the figure is the median per-update time. The variants are timed interleaved,
repetition by repetition, so that a noisy machine slows all of them alike. Ratios are to plain Adam.
Variants: ``monitored`` with every metric, ``effective_lr=False`` (no min/median/max of |u|/|g|, whose
median is the costly part) and ``effective_lr=False, per_group=False``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from gradtx import adam
from gradtx.diagnostics.monitor import monitored

# 10 leaves, 985,600 parameters: five (384, 512) kernels and five 512-long biases.
SHAPES = [(384, 512)] * 5 + [(512,)] * 5


def make_tree(key: jax.Array) -> dict[str, jax.Array]:
    keys = jax.random.split(key, len(SHAPES))
    return {f"layer{i}": jax.random.normal(k, s, jnp.float32) for i, (k, s) in enumerate(zip(keys, SHAPES))}


def timer(tx, params, grads, iters: int):
    step = jax.jit(tx.update)
    state = tx.init(params)
    out = step(grads, state, params)
    jax.block_until_ready(out)  # compile and warm up
    state = out[1]

    def run() -> float:
        nonlocal state
        t0 = time.perf_counter()
        for _ in range(iters):
            updates, state = step(grads, state, params)
        jax.block_until_ready((updates, state))
        return (time.perf_counter() - t0) / iters

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--iters", type=int, default=20)
    args = parser.parse_args()

    params = make_tree(jax.random.key(0))
    grads = make_tree(jax.random.key(1))
    n = sum(x.size for x in jax.tree.leaves(params))
    variants = {
        "adam(1e-3)": adam(1e-3),
        "monitored(adam(1e-3))": monitored(adam(1e-3)),
        "monitored(adam, effective_lr=False)": monitored(adam(1e-3), effective_lr=False),
        "monitored(adam, effective_lr=False, per_group=False)": monitored(
            adam(1e-3), effective_lr=False, per_group=False
        ),
    }
    runs = {name: timer(tx, params, grads, args.iters) for name, tx in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.reps):
        for name, run in runs.items():
            times[name].append(run())
    base = statistics.median(times["adam(1e-3)"])
    print(
        f"{n:,} parameters in {len(SHAPES)} leaves; {jax.devices()[0].platform}; median of {args.reps} x "
        f"{args.iters} updates"
    )
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:55s} {med * 1e3:8.3f} ms/update   ratio {med / base:5.2f}")


if __name__ == "__main__":
    main()
