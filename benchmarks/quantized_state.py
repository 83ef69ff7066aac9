"""8-bit optimizer state (``gradtx.quantized_state``): memory, step time and quality against float32 Adam.

    python benchmarks/quantized_state.py [--quick] [--reps 7]

Memory: bytes per parameter of AdamW's state (``mu``, ``nu`` and the counter) on the bench's W1 (one array of
2**24) and W2 (a transformer-like tree of ~600 leaves, ~20 M parameters), float32 against 8-bit with block
sizes 256 and 2048 (the default ``min_size=4096``: small leaves stay float32).
Step time: a donated, jitted ``make_step`` for each, timed interleaved repetition by repetition (so a noisy
machine slows all alike); the figure is the median per-step time and its ratio to the float32 step.
Quality: every leaf quantized (``min_size=0``): the digits MLP's test accuracy after 100 full-batch AdamW
steps, and the steps Adam takes to bring Rosenbrock's function and the narrow valley below 1e-5.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx.bench import BenchConfig, workload
from gradtx.bench.workloads import random_tree
from gradtx.testing.problems import narrow_valley, rosenbrock

LR = 1e-3


def variants() -> dict[str, Any]:
    return {
        "float32": gradtx.adamw(LR),
        "8-bit, block 256": gradtx.quantized_state(gradtx.adamw(LR)),
        "8-bit, block 2048": gradtx.quantized_state(gradtx.adamw(LR), block_size=2048),
    }


def state_bytes(opt: Any, params: Any) -> int:
    shapes = jax.eval_shape(opt.init, params)
    return int(sum(np.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(shapes)))


def time_steps(opts: dict[str, Any], params0: Any, grads: Any, reps: int, iters: int) -> dict[str, float]:
    steps, carry = {}, {}
    for name, opt in opts.items():
        step = gradtx.make_step(opt)
        params = jax.tree.map(jnp.array, params0)
        carry[name] = step(params, opt.init(params), grads)  # compile and warm up
        jax.block_until_ready(carry[name])
        steps[name] = step
    times: dict[str, list[float]] = {n: [] for n in opts}
    for _ in range(reps):
        for name in opts:
            p, s = carry[name]
            t0 = time.perf_counter()
            for _ in range(iters):
                p, s = steps[name](p, s, grads)
            jax.block_until_ready((p, s))
            times[name].append((time.perf_counter() - t0) / iters)
            carry[name] = (p, s)
    return {n: statistics.median(t) for n, t in times.items()}


def quality() -> dict[str, Any]:
    out: dict[str, Any] = {}
    spec = importlib.util.spec_from_file_location("contrib_digits", Path(__file__).with_name("contrib_digits.py"))
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    data = bench.digits()
    for name, opt in (("float32", gradtx.adamw(1e-2)), ("8-bit", gradtx.quantized_state(gradtx.adamw(1e-2),
                                                                                          min_size=0))):
        history, acc = bench.train(opt, None, data)
        out[f"digits {name}"] = (acc, float(history[-1]))
    for pname, problem, lr, steps in (("rosenbrock", rosenbrock(), 0.02, 6000),
                                      ("narrow valley", narrow_valley(), 0.1, 6000)):
        for name, opt in (("float32", gradtx.adam(lr)), ("8-bit", gradtx.quantized_state(gradtx.adam(lr),
                                                                                           min_size=0))):
            x0 = jnp.asarray(problem.start, jnp.float32)

            def body(c: Any, _: Any, opt: Any = opt, problem: Any = problem) -> tuple[Any, jax.Array]:
                x, s = c
                u, s = opt.update(jax.grad(problem.loss)(x), s, x)
                x = gradtx.apply_updates(x, u)
                return (x, s), problem.loss(x)

            _, losses = jax.jit(lambda x, body=body, opt=opt, steps=steps: jax.lax.scan(body, (x, opt.init(x)), None,
                                                                           length=steps))(x0)
            hit = np.flatnonzero(np.asarray(losses) < 1e-5)
            out[f"{pname} {name}"] = int(hit[0]) + 1 if hit.size else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small workloads, few repetitions")
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    config = BenchConfig.quick() if args.quick else BenchConfig()
    reps, iters = (3, 3) if args.quick else (args.reps, 10)
    print(f"# {jax.default_backend()} ({jax.devices()[0].device_kind}), jax {jax.__version__}")
    print("| workload | state | bytes / parameter | step time (ms) | time / float32 |")
    print("|---|---|---|---|---|")
    for wl in ("W1", "W2"):
        shapes = workload(wl, config)
        params0 = random_tree(shapes, 0, 1.0)
        grads = jax.tree.map(jnp.asarray, random_tree(shapes, 1, 1e-2))
        n = sum(x.size for x in jax.tree.leaves(params0))
        opts = variants()
        times = time_steps(opts, params0, grads, reps, iters)
        for name, opt in opts.items():
            b = state_bytes(opt, params0) / n
            print(f"| {wl} ({n:,} params) | {name} | {b:.3f} | {times[name] * 1e3:.2f} | "
                  f"{times[name] / times['float32']:.2f} |")
    q = quality()
    print()
    print("| quality (every leaf quantized) | float32 | 8-bit |")
    print("|---|---|---|")
    print(f"| digits MLP, AdamW 1e-2, 100 steps: test accuracy (final loss) | {q['digits float32'][0]:.4f} "
          f"({q['digits float32'][1]:.4f}) | {q['digits 8-bit'][0]:.4f} ({q['digits 8-bit'][1]:.4f}) |")
    for pname in ("rosenbrock", "narrow valley"):
        print(f"| {pname}, Adam: steps to loss < 1e-5 | {q[pname + ' float32']} | {q[pname + ' 8-bit']} |")


if __name__ == "__main__":
    main()
