"""Memory: the peak one Adam step needs above its live data (measured, one subprocess per variant), and the
per-device Adam state under ZeRO-1 (planned on an abstract mesh, not allocated).
"""

from __future__ import annotations

import gc
import json
import math
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx.bench.variants import available, fresh, optax_step, plain_step
from gradtx.bench.workloads import LR, BenchConfig, is_shape, optax_optimizer, optimizer, random_tree, workload
from gradtx.flat import pack
from gradtx.optimizers import adam

# The entry points; MEMORY_VARIANTS and memory_child (what each subprocess runs) stay importable.
__all__ = ["memory_usage", "zero1_memory"]


MEMORY_VARIANTS = ("gradtx-jit", "gradtx-donate", "optax-jit", "optax-donate")


def _rss_now() -> tuple[int, int]:
    """Current and peak resident set size in bytes (Linux ``/proc/self/status``)."""
    vals = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                vals[key] = int(rest.split()[0]) * 1024
    return vals["VmRSS"], vals["VmHWM"]


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def memory_child(variant: str, size: int) -> dict[str, Any]:
    """In a fresh process: the memory one W1 Adam step needs above its live data (params, grads, state)."""
    shapes = {"w": (size,)}
    abstract = {"w": jax.ShapeDtypeStruct((size,), jnp.float32)}  # type: ignore[no-untyped-call]  # unannotated in JAX
    if variant.startswith("optax"):
        opt = optax_optimizer("adam")
        fn = optax_step(opt)
    else:
        opt = adam(LR)
        fn = plain_step(opt)
    donate = variant.endswith("donate")
    compiled = jax.jit(fn, donate_argnums=(0, 1) if donate else ()).lower(
        abstract, jax.eval_shape(opt.init, abstract), abstract
    ).compile()
    params = fresh(random_tree(shapes, 0, 1.0))
    grads = fresh(random_tree(shapes, 1, 1e-2))
    # A copy through NumPy makes every state page resident now (zeros may come from untouched pages, which
    # would count against the step that first writes them).
    state = fresh(jax.tree.map(np.asarray, opt.init(params)))
    jax.block_until_ready((params, grads, state))  # type: ignore[no-untyped-call]  # unannotated in JAX
    gc.collect()
    live = sum(x.nbytes for x in jax.tree.leaves((params, grads, state)))
    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    on_host = jax.default_backend() == "cpu" or "peak_bytes_in_use" not in stats
    if on_host:
        exact = _reset_peak_rss()
        before, _ = _rss_now()
        new = compiled(params, state, grads)
        jax.block_until_ready(new)  # type: ignore[no-untyped-call]  # unannotated in JAX
        _, peak = _rss_now()
        extra, method = peak - before, "rss" + ("" if exact else " (peak not reset: upper bound)")
    else:
        before = stats["bytes_in_use"]
        new = compiled(params, state, grads)
        jax.block_until_ready(new)  # type: ignore[no-untyped-call]  # unannotated in JAX
        peak = (device.memory_stats() or {}).get("peak_bytes_in_use", before)
        extra, method = max(0, peak - before), "device peak_bytes_in_use"
    return {"variant": variant, "live_mib": live / 2**20, "extra_mib": extra / 2**20, "method": method}


def memory_usage(config: BenchConfig, variants: Sequence[str] = MEMORY_VARIANTS) -> dict[str, Any]:
    """:func:`memory_child` for each variant, each in its own subprocess (peaks are per process).

    Each subprocess compiles one Adam step on ``config.memory_size`` float32 elements, makes its params, grads
    and state resident, runs the step once and reports the peak above that live data: the resident set size
    on CPU (Linux), the allocator's ``peak_bytes_in_use`` on accelerators. Optax's variants are skipped without
    ``config.optax`` or Optax.

    Args:
      config: the array size and whether to include Optax.
      variants: among ``"gradtx-jit"``, ``"gradtx-donate"``, ``"optax-jit"``, ``"optax-donate"``. Default all
        four.

    Returns:
      ``{variant: {"variant", "live_mib", "extra_mib", "method"}}``, or ``{variant: {"error": the last line of
      its stderr}}`` for a subprocess that failed.

    Example:
      >>> from gradtx.bench import BenchConfig, memory_usage
      >>> out = memory_usage(BenchConfig.quick(memory_size=1024), ("gradtx-jit",))
      >>> print(sorted(out["gradtx-jit"]))
      ['extra_mib', 'live_mib', 'method', 'variant']
    """
    out: dict[str, Any] = {}
    for v in variants:
        if v.startswith("optax") and not (config.optax and available("optax")):
            continue
        code = (
            "import json, sys; from gradtx.bench.memory import memory_child; "
            f"print('RESULT', json.dumps(memory_child({v!r}, {int(config.memory_size)})))"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            out[v] = {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
        else:
            out[v] = json.loads(lines[-1][len("RESULT "):])
    return out


def zero1_memory(config: BenchConfig, data_axis_sizes: Sequence[int] = (2, 8, 64)) -> dict[str, Any]:
    """Per-device Adam-state bytes on W2: replicated (plain data parallelism) against ZeRO-1, per leaf and flat.

    Planned, not allocated: ``jax.eval_shape`` of the state, :func:`gradtx.sharding.zero1_shardings` on an
    abstract mesh of ``n`` data-parallel devices, and each leaf's shard shape (the largest shard, as the
    device holding it needs). Runs on any machine, whatever its device count. ``zero1`` splits each leaf
    along a dimension divisible by ``n`` (leaves without one stay whole on every device); ``zero1_flat``
    packs the parameters with ``gradtx.flat.pack(params, multiple_of=n)``, so every state buffer splits
    exactly: ``1/n`` of the state plus the replicated counter.

    Args:
      config: the sizes of W2.
      data_axis_sizes: the numbers of data-parallel devices ``n`` to plan for. Default ``(2, 8, 64)``.

    Returns:
      ``{"workload": "W2", "optimizer": "adam", "replicated_bytes": int, "zero1": {str(n): bytes per device},
      "zero1_flat": {str(n): bytes per device}}``.

    Example:
      >>> from gradtx.bench import BenchConfig, zero1_memory
      >>> plan = zero1_memory(BenchConfig.quick(), (2, 4))
      >>> print(plan["replicated_bytes"], plan["zero1"], plan["zero1_flat"])
      546308 {'2': 273156, '4': 136580} {'2': 273156, '4': 136580}
    """
    from jax.sharding import AbstractMesh

    from gradtx import sharding

    shapes = workload("W2", config)
    # for mypy: JAX leaves ShapeDtypeStruct.__init__ unannotated (the ignore below)
    params = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, jnp.float32), shapes, is_leaf=is_shape)  # type: ignore[no-untyped-call]
    state = jax.eval_shape(optimizer("adam").init, params)
    leaves = jax.tree.leaves(state)
    replicated = sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in leaves)
    out: dict[str, Any] = {"workload": "W2", "optimizer": "adam", "replicated_bytes": int(replicated), "zero1": {},
                           "zero1_flat": {}}

    def per_device(state: Any, mesh: Any) -> int:
        leaves = jax.tree.leaves(state)
        layout = jax.tree.leaves(sharding.zero1_shardings(state, mesh, "data"))
        return int(sum(math.prod(sh.shard_shape(x.shape)) * np.dtype(x.dtype).itemsize
                       for x, sh in zip(leaves, layout)))

    for n in data_axis_sizes:
        mesh = AbstractMesh((int(n),), ("data",))
        out["zero1"][str(int(n))] = per_device(state, mesh)
        flat = jax.eval_shape(lambda p, n=int(n): pack(p, multiple_of=n), params)
        out["zero1_flat"][str(int(n))] = per_device(jax.eval_shape(optimizer("adam").init, flat), mesh)
    return out
