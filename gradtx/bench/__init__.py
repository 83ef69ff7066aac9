"""``python -m gradtx bench``: the optimizer step against Optax, torch.optim and the memory roofline.

One process times every implementation of one optimizer step on one workload, interleaved (A B C A B C ...)
so that slow drifts of a shared machine hit all of them alike, and reports medians and *paired* ratios (the
median over repeats of ``t_variant / t_reference`` measured in the same round). Workloads:

    W1  one float32 array of 2**24 elements (memory-bound: the roofline case)
    W2  a transformer-like tree of ~600 leaves and ~20 M parameters (per-buffer overheads)
    W3  a small MLP of 10 leaves and ~50 K parameters (launch and dispatch overheads)

Variants, for Adam (lr 1e-3) and SGD with momentum 0.9 (lr 1e-3):

    gradtx-jit       jax.jit(update + apply_updates), no donation (the plain step: the correctness reference)
    gradtx-donate    gradtx.step.make_step(opt, kernel="off"): params and state donated, updated in place
    gradtx-flat      the same on gradtx.flat.pack(params/grads): a few buffers instead of one per leaf
    gradtx-kernel    gradtx-flat with the fused Pallas Adam kernel (gradtx.kernels; Adam on a GPU only)
    optax-jit        Optax's step in jax.jit; optax-donate with donate_argnums=(0, 1) (when Optax is installed)
    torch-foreach    torch.optim with foreach=True; torch-fused with fused=True (when torch is installed)

Before timing, every variant runs 3 steps from the same params with the same gradients and its params must
equal the plain gradtx step's (``allclose``), or the bench stops with an error. Donated variants are fed their
own outputs (donated inputs are deleted). Throughput is reported as GB/s of the minimal traffic of a fused
update (Adam reads p, g, mu, nu and writes p, mu, nu: 7 arrays; SGD with momentum: 5) and as % of an in-run
roofline: a jitted triad ``a = b + s * c`` on float32 arrays of the W1 size (3 arrays moved), also donated
(written in place).

Also measured: compile time of the Adam step (``jit(...).lower`` = tracing + lowering, and ``.compile()``
separately) on W2 and on a tree of 2000 small leaves, per leaf, flat, and Optax; the peak resident memory of
one W1 Adam step above the live data (params + grads + state), one subprocess per variant (RSS on CPU, the
allocator's peak on accelerators); optionally (``trace_scaling``) the trace time of
``chain(clip_by_global_norm, adam)`` over 250 ... 4000 leaves, which must grow linearly.

Run ``python -m gradtx bench --quick`` (small sizes, well under a minute on 2 cores) or the full bench; both
print a table whose header names the backend, device, versions and CPU count, and ``--json PATH`` writes
every figure. The bench uses only public JAX APIs and runs unchanged on CPU, GPU and TPU.

Modules, each a layer of the run: :mod:`~gradtx.bench.workloads` (configuration, parameter trees,
optimizers) <- :mod:`~gradtx.bench.variants` (the implementations of one step, checked against each other)
<- :mod:`~gradtx.bench.timing` (step, roofline, compile and trace times) and :mod:`~gradtx.bench.memory`
(peak memory, ZeRO-1 state); :mod:`~gradtx.bench.report` prints the table. This package holds the whole
run (:func:`run`) and the command line (:func:`main`), and answers the entry points of its modules (their
``__all__``: :class:`BenchConfig`, :func:`workload`, :func:`make_variants`, :func:`check_variants`,
:func:`time_variants`, :func:`roofline`, :func:`compile_times`, :func:`trace_scaling`, :func:`memory_usage`,
:func:`zero1_memory`, :func:`format_report`); their helpers stay importable here and from their modules.

Example:
  >>> from gradtx import bench
  >>> config = bench.BenchConfig.quick(workloads=("W3",), optimizers=("sgdm",), repeats=1, compile=False,
  ...                                  memory=False, torch=False, optax=False)
  >>> result = bench.run(config)
  >>> print(sorted(result["workloads"]["W3"]["optimizers"]["sgdm"]))
  ['gradtx-donate', 'gradtx-flat', 'gradtx-jit']
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

# Every name of the modules is answered here; ``__all__`` below lists the entry points (the modules' lists).
from gradtx.bench import memory, report, timing, variants, workloads
from gradtx.bench.memory import MEMORY_VARIANTS, memory_child, memory_usage, zero1_memory  # noqa: F401
from gradtx.bench.report import format_report
from gradtx.bench.timing import compile_times, roofline, summarize, time_variants, trace_scaling
from gradtx.bench.variants import (  # noqa: F401
    JaxVariant,
    TorchVariant,
    Variant,
    available,
    check_variants,
    fresh,
    make_variants,
    optax_step,
    plain_step,
)
from gradtx.bench.workloads import (  # noqa: F401
    LR,
    MOMENTUM,
    OPTIMIZERS,
    REFERENCES,
    TRAFFIC,
    WORKLOADS,
    BenchConfig,
    is_shape,
    optax_optimizer,
    optimizer,
    param_count,
    random_tree,
    workload,
)
from gradtx.optimizers import adam, sgd  # noqa: F401  (gradtx.bench.adam: the optimizer the bench times)

__all__ = ["main", "run", "environment"]  # the run and the command line, then the modules' entry points
__all__ += workloads.__all__
__all__ += variants.__all__
__all__ += timing.__all__
__all__ += memory.__all__
__all__ += report.__all__

# The names of the helpers while the bench was one module (tests/test_bench.py uses them).
_random_tree, _plain_step, _param_count = random_tree, plain_step, param_count


def environment() -> dict[str, Any]:
    """The backend, device, library versions and CPU the figures were measured with.

    Returns:
      A JSON-serialisable dict: ``backend``, ``device`` (its kind), ``device_count``, the versions of ``jax``,
      ``jaxlib``, ``optax``, ``torch`` (``None`` when not installed), ``numpy`` and ``python``, ``cpu_count``,
      ``cpu`` (the model name), ``machine`` and ``date``.

    Example:
      >>> from gradtx import bench
      >>> env = bench.environment()
      >>> print(sorted(env))
      ['backend', 'cpu', 'cpu_count', 'date', 'device', 'device_count', 'jax', 'jaxlib', 'machine', 'numpy',
       'optax', 'python', 'torch']
    """
    device = jax.devices()[0]
    return {
        "backend": jax.default_backend(),
        "device": getattr(device, "device_kind", str(device)),
        "device_count": jax.device_count(),
        "jax": jax.__version__,
        "jaxlib": available("jaxlib"),
        "optax": available("optax"),
        "torch": available("torch"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu": _cpu_name(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run(config: BenchConfig, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run the bench and return every figure (the JSON document).

    In order: the roofline (:func:`roofline`); for each workload and optimizer, the variants
    (:func:`make_variants`), checked against the plain step (:func:`check_variants`), then timed
    (:func:`time_variants`); compile times, memory and trace scaling when ``config`` asks for them; the planned
    ZeRO-1 state (:func:`zero1_memory`).

    Args:
      config: what to run and how big (:class:`BenchConfig`; ``BenchConfig.quick()`` for small sizes).
      log: called with a line of progress before each section. Default: silent.

    Returns:
      A JSON-serialisable dict with ``environment``, ``config``, ``roofline``, ``workloads`` (per workload: its
      ``leaves``, ``params`` and, per optimizer, one row per variant: ``median_ms``, ``min_ms``, ``gb_s``,
      ``roofline_pct``, paired ratios, ``max_abs_diff``), optionally ``compile``, ``memory``,
      ``trace_scaling``, then ``zero1``, ``sections_s`` and ``wall_s``. :func:`format_report` prints it.

    Raises:
      AssertionError: when a variant's parameters differ from the plain gradtx step's (:func:`check_variants`).
      ValueError: for an unknown workload or optimizer name in ``config``.

    Example:
      >>> from gradtx import bench
      >>> config = bench.BenchConfig.quick(workloads=("W3",), optimizers=("sgdm",), repeats=1, compile=False,
      ...                                  memory=False, torch=False, optax=False)
      >>> result = bench.run(config)
      >>> print(result["workloads"]["W3"]["leaves"], result["workloads"]["W3"]["params"])
      10 50250
    """
    t_start = time.perf_counter()
    result: dict[str, Any] = {"environment": environment(), "config": dataclasses.asdict(config)}
    log(f"roofline: triad on {config.w1_size} float32 elements")
    roof = roofline(config.w1_size, config.repeats, config.warmup, config.min_sample_s)
    result["roofline"] = roof
    result["workloads"] = {}
    sections: dict[str, float] = {"roofline": time.perf_counter() - t_start}
    for wname in config.workloads:
        shapes = workload(wname, config)
        n_leaves, n_params = param_count(shapes)
        entry: dict[str, Any] = {"leaves": n_leaves, "params": n_params, "optimizers": {}}
        for oname in config.optimizers:
            log(f"{wname} {oname}: {n_leaves} leaves, {n_params:,} params")
            variants = make_variants(oname, shapes, config)
            diffs = check_variants(variants, config.check_steps)
            times = time_variants(variants, config.repeats, config.warmup, config.min_sample_s)
            rows = summarize(times, 4 * n_params, TRAFFIC[oname], roof["best_gb_s"])
            for name, d in diffs.items():
                rows[name]["max_abs_diff"] = d
            entry["optimizers"][oname] = rows
            for v in variants:
                v.close()
            del variants
            gc.collect()
        result["workloads"][wname] = entry
        sections[wname] = time.perf_counter() - t_start - sum(sections.values())
    if config.compile:
        log(f"compile: Adam step on W2 and on {config.compile_leaves} leaves")
        result["compile"] = compile_times(["W2", f"leaves:{config.compile_leaves}"], config)
        sections["compile"] = time.perf_counter() - t_start - sum(sections.values())
    if config.memory:
        log(f"memory: one Adam step on {config.memory_size} float32 elements, one subprocess per variant")
        result["memory"] = memory_usage(config)
        sections["memory"] = time.perf_counter() - t_start - sum(sections.values())
    if config.trace_leaves:
        log(f"trace scaling: {list(config.trace_leaves)} leaves")
        result["trace_scaling"] = trace_scaling(config.trace_leaves, compile_up_to=0)
        sections["trace_scaling"] = time.perf_counter() - t_start - sum(sections.values())
    result["zero1"] = zero1_memory(config)
    result["sections_s"] = sections
    result["wall_s"] = time.perf_counter() - t_start
    return result


def main(
    quick: bool = False,
    json_path: str | None = None,
    workloads: Sequence[str] | None = None,
    optimizers: Sequence[str] | None = None,
    repeats: int | None = None,
    compile: bool = True,  # noqa: A002 (the CLI's --no-compile)
    memory: bool = True,
    trace_leaves: Sequence[int] = (),
    torch: bool = True,
    optax: bool = True,
) -> int:
    """Entry point of ``python -m gradtx bench``: run, print the table, write the JSON.

    Builds a :class:`BenchConfig` (``BenchConfig.quick`` with ``quick``) with the given overrides, runs it with
    progress lines on stderr (:func:`run`), prints :func:`format_report` and writes the JSON document.

    Args:
      quick: use the ``--quick`` sizes (well under a minute on 2 cores). Default False.
      json_path: a file to write the JSON document to, or ``None`` (default) for none.
      workloads: the workloads to time (``"W1"``, ``"W2"``, ``"W3"``, ``"leaves:N"``); ``None`` (default) for
        W1, W2 and W3.
      optimizers: the optimizers to time (``"adam"``, ``"sgdm"``); ``None`` (default) for both.
      repeats: the timed rounds, ``>= 1``; ``None`` (default) for the configuration's (15, quick: 5).
      compile: also measure compile times. Default True.
      memory: also measure the peak memory of one step (one subprocess per variant). Default True.
      trace_leaves: leaf counts for the trace-scaling table; ``()`` (default) skips it.
      torch: also time ``torch.optim`` when torch is installed. Default True.
      optax: also time Optax when it is installed. Default True.

    Returns:
      0 (the process exit status).

    Example:
      >>> import contextlib, io
      >>> from gradtx import bench
      >>> out = io.StringIO()
      >>> with contextlib.redirect_stdout(out):
      ...     status = bench.main(quick=True, workloads=["W3"], optimizers=["sgdm"], repeats=1, compile=False,
      ...                         memory=False, torch=False, optax=False)
      >>> print(status, out.getvalue().startswith("gradtx bench | backend"))
      0 True
    """
    overrides: dict[str, Any] = {"compile": compile, "memory": memory, "torch": torch, "optax": optax}
    if workloads:
        overrides["workloads"] = tuple(workloads)
    if optimizers:
        overrides["optimizers"] = tuple(optimizers)
    if repeats:
        overrides["repeats"] = repeats
    if trace_leaves:
        overrides["trace_leaves"] = tuple(trace_leaves)
    config = BenchConfig.quick(**overrides) if quick else BenchConfig(**overrides)
    result = run(config, log=lambda s: print(f"[bench] {s}", file=sys.stderr, flush=True))
    print(format_report(result))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {json_path}")
    return 0
