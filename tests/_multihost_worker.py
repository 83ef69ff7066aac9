"""One process of the two-process data-parallel run of tests/test_multihost.py.

Usage: ``python _multihost_worker.py PROCESS_ID PORT OUT.npz`` with
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` (two CPU devices per process, four in all). The
processes meet through ``jax.distributed.initialize`` on 127.0.0.1 and run their collectives over Gloo (TCP).
Each one feeds its half of every global batch (``jax.make_array_from_process_local_data``), runs the same
jitted Adam steps as a single-process run (plain data parallelism, then ZeRO-1 with the optimizer state split
across the four devices of both processes), and writes the resulting (replicated) parameters to ``OUT.npz``.

``problem`` and ``train`` are imported by the test to compute the single-process answer with the same code.
"""

from __future__ import annotations

import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradtx

NUM_PROCESSES, STEPS, BATCH = 2, 4, 16


def problem() -> tuple[dict[str, np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """The initial parameters of a small MLP and ``STEPS`` global batches (float32)."""
    rng = np.random.default_rng(0)
    params = {
        "w1": (rng.normal(size=(8, 16)) / 3).astype(np.float32),
        "b1": np.zeros(16, np.float32),
        "w2": (rng.normal(size=(16, 4)) / 4).astype(np.float32),
        "b2": np.zeros(4, np.float32),
    }
    data = [(rng.normal(size=(BATCH, 8)).astype(np.float32), rng.normal(size=(BATCH, 4)).astype(np.float32))
            for _ in range(STEPS)]
    return params, data


def loss(params: dict[str, Any], x: jax.Array, y: jax.Array) -> jax.Array:
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((h @ params["w2"] + params["b2"] - y) ** 2)


def train(params: Any, batches: list[tuple[Any, Any]], state_shardings: Any = None, param_shardings: Any = None):
    """``STEPS`` Adam steps; with shardings given, init and update are laid out by them (ZeRO-1 etc.)."""
    opt = gradtx.adam(1e-2)

    def step(params, state, x, y):
        grads = jax.grad(loss)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    if state_shardings is None:
        init, step = opt.init, jax.jit(step)
    else:
        init = jax.jit(opt.init, out_shardings=state_shardings)
        step = jax.jit(step, out_shardings=(param_shardings, state_shardings))
    state = init(params)
    for x, y in batches:
        params, state = step(params, state, x, y)
    return params, state


def main(process_id: int, port: int, out: str) -> None:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=NUM_PROCESSES,
                               process_id=process_id)
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from gradtx.sharding import device_bytes, zero1_shardings

    assert jax.process_count() == NUM_PROCESSES and jax.device_count() == 2 * jax.local_device_count()
    mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    replicated, rows = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    host_params, data = problem()
    per_process = BATCH // NUM_PROCESSES
    lo = process_id * per_process

    def global_batches():
        # each process supplies only its own rows; together they form the global batch
        return [tuple(jax.make_array_from_process_local_data(rows, a[lo:lo + per_process], a.shape) for a in xy)
                for xy in data]

    def global_params():
        return jax.tree.map(lambda a: jax.make_array_from_process_local_data(replicated, a, a.shape), host_params)

    results: dict[str, np.ndarray] = {}
    params, _ = train(global_params(), global_batches())
    results.update({f"dp/{k}": np.asarray(v.addressable_data(0)) for k, v in params.items()})

    params = global_params()
    opt = gradtx.adam(1e-2)
    state_sh = zero1_shardings(jax.eval_shape(opt.init, params), mesh)
    params, state = train(params, global_batches(), state_sh, jax.tree.map(lambda _: replicated, params))
    results.update({f"zero1/{k}": np.asarray(v.addressable_data(0)) for k, v in params.items()})
    local = device_bytes(state)  # this process's devices only
    results["zero1_local_state_bytes"] = np.asarray(sorted(local.values()), np.int64)

    # ZeRO-2 over flat buffers: make_step(zero=2) reduce-scatters the gradients across both processes
    n = jax.device_count()
    flat = jax.jit(lambda t: gradtx.flat.pack(t, multiple_of=n), out_shardings=replicated)(global_params())
    flat_state = jax.jit(opt.init, out_shardings=zero1_shardings(jax.eval_shape(opt.init, flat), mesh))(flat)
    step = gradtx.make_step(opt, loss, zero=2, mesh=mesh)
    for x, y in global_batches():
        flat, flat_state, _ = step(flat, flat_state, x, y)
    tree = jax.jit(gradtx.flat.unpack, out_shardings=replicated)(flat)
    results.update({f"zero2_flat/{k}": np.asarray(v.addressable_data(0)) for k, v in tree.items()})
    results["zero2_flat_local_state_bytes"] = np.asarray(sorted(device_bytes(flat_state).values()), np.int64)
    np.savez(out, **results)
    print(f"process {process_id}: {jax.process_count()} processes, {jax.device_count()} devices, "
          f"state bytes per local device {sorted(local.values())}", flush=True)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
