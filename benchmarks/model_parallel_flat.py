"""The flat path on model-parallel parameters: W2 split over a "model" mesh axis, Adam steps side by side.

    python benchmarks/model_parallel_flat.py [--devices 8] [--quick]

Runs on ``--devices`` simulated CPU devices (``--xla_force_host_platform_device_count``, set before JAX starts)
on a ("data", "model") mesh of 2 x devices/2. W2's matrices (a dimension divisible by the "model" size) are
split along that dimension, the rest replicated. Timed, on the same params and gradients:

- ``per-leaf``: ``make_step(gradtx.adam(1e-3), kernel="off")`` on the tree (593 leaves);
- ``flat``: ``make_step(..., flat=True)``: ``pack(by_sharding=True)``, one 2-D buffer split over "model" and
  one replicated buffer;
- ``optax-donate``: ``optax.adam(1e-3)`` in ``jax.jit(..., donate_argnums=(0, 1))`` on the tree.

Prints each median step time and its ratio to ``optax-donate`` (measured in the same run), the buffers, and
the bytes of the Adam state on one device for per-leaf and flat.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="a small W2 (4 blocks of width 32)")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    if "jax" in sys.modules:
        raise SystemExit("run as a script: the device count is set before JAX starts")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_force_host_platform_device_count={args.devices}").strip()

    import jax
    import numpy as np
    import optax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import gradtx
    from gradtx.bench.workloads import BenchConfig, random_tree, workload
    from gradtx.sharding import device_bytes

    config = BenchConfig.quick() if args.quick else BenchConfig()
    shapes = workload("W2", config)
    mesh = jax.make_mesh((2, args.devices // 2), ("data", "model"),
                         axis_types=(jax.sharding.AxisType.Auto,) * 2)
    model = args.devices // 2

    def spec(shape: tuple[int, ...]) -> Any:
        for d in range(len(shape) - 1, -1, -1):  # the last dimension the "model" size divides
            if len(shape) >= 2 and shape[d] % model == 0:
                return P(*[("model" if i == d else None) for i in range(len(shape))])
        return P()

    is_shape = lambda x: isinstance(x, tuple) and all(isinstance(i, int) for i in x)  # noqa: E731
    specs = jax.tree.map(spec, shapes, is_leaf=is_shape)

    def place(tree: Any) -> Any:
        return jax.tree.map(lambda x, s: jax.device_put(x, NamedSharding(mesh, s)), tree, specs)

    params0 = random_tree(shapes, config.seed, 1.0)
    grads0 = random_tree(shapes, config.seed + 1, 1e-2)
    n_leaves = len(jax.tree.leaves(params0))
    split = sum(1 for s in jax.tree.leaves(specs, is_leaf=lambda s: isinstance(s, P)) if s != P())
    opt = gradtx.adam(1e-3)

    def run(step: Any, params: Any, state: Any, grads: Any) -> tuple[float, Any, Any]:
        params, state = step(params, state, grads)
        jax.block_until_ready(params)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            params, state = step(params, state, grads)
            jax.block_until_ready(params)
            times.append(time.perf_counter() - t0)
        return float(np.median(times)) * 1e3, params, state

    rows = {}
    leaf_step = gradtx.make_step(opt, kernel="off")
    p = place(params0)
    rows["per-leaf"], p_leaf, s_leaf = run(leaf_step, p, opt.init(p), place(grads0))
    flat_step = gradtx.make_step(opt, flat=True, kernel="off")
    p, s = flat_step.init(place(params0))
    g = gradtx.flat.pack(place(grads0), by_sharding=True)
    buffers = [f"{b.dtype}{list(b.shape)} {b.sharding.spec}" for b in p.buffers]
    rows["flat"], p_flat, s_flat = run(flat_step, p, s, g)
    oopt = optax.adam(1e-3)

    def optax_step(params: Any, state: Any, grads: Any) -> Any:
        updates, state = oopt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    p = place(params0)
    rows["optax-donate"], _, _ = run(jax.jit(optax_step, donate_argnums=(0, 1)), p, oopt.init(p), place(grads0))

    print(f"jax {jax.__version__} | {args.devices} simulated CPU devices, mesh data=2 x model={model} | "
          f"W2: {n_leaves} leaves ({split} split over 'model'), "
          f"{sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params0)):,} parameters")
    print("flat buffers:", "; ".join(buffers))
    base = rows["optax-donate"]
    print(f"{'variant':<14}{'median ms':>11}{'/optax-donate':>15}")
    for name, ms in rows.items():
        print(f"{name:<14}{ms:>11.2f}{ms / base:>15.2f}")
    dev = jax.devices()[0]
    per_leaf = device_bytes(s_leaf)[dev]
    flat = device_bytes(s_flat)[dev]
    print(f"Adam state on one device: per leaf {per_leaf / 2**20:.2f} MiB, flat {flat / 2**20:.2f} MiB")
    got = gradtx.flat.unpack(p_flat)
    worst = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(p_leaf)))
    print(f"flat vs per-leaf after {args.repeats + 1} steps: max |diff| {worst:.3g}")


if __name__ == "__main__":
    main()
