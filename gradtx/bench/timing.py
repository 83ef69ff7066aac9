"""Timing: seconds per step of interleaved variants, the memory roofline, compile and trace times.

Variants are timed in rounds (A B C A B C ...) so that slow drifts of a shared machine hit all of them alike;
:func:`summarize` reports medians and *paired* ratios (the median over rounds of ``t_variant / t_reference``
measured in the same round). Throughput is GB/s of the minimal traffic of a fused update, and % of an in-run
roofline: a jitted triad ``a = b + s * c`` on float32 arrays (3 arrays moved), also donated.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx.bench.variants import Variant, available, fresh, optax_step, plain_step
from gradtx.bench.workloads import LR, REFERENCES, BenchConfig, is_shape, optax_optimizer, workload
from gradtx.combine import chain
from gradtx.flat import pack
from gradtx.optimizers import adam
from gradtx.transforms.clipping import clip_by_global_norm

# The entry points; summarize (the rows of run's table) stays importable.
__all__ = ["compile_times", "roofline", "time_variants", "trace_scaling"]


def _time_once(v: Variant, inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        v.step()
    v.sync()
    return (time.perf_counter() - t0) / inner


def time_variants(
    variants: Sequence[Variant], repeats: int, warmup: int = 2, min_sample_s: float = 0.01
) -> dict[str, list[float]]:
    """Seconds per step of every variant over ``repeats`` interleaved rounds (A B C A B C ...), compile excluded.

    Each variant is reset, warmed up, and its steps batched (``inner`` steps per sample, chosen so that a sample
    lasts about ``min_sample_s``). Returns ``{name: [seconds per step, one per round]}``.

    Args:
      variants: the variants to time (:func:`make_variants`).
      repeats: the timed rounds, ``>= 1``.
      warmup: untimed steps per variant before timing (at least 1 runs: it compiles). Default 2.
      min_sample_s: the target duration of one sample in seconds (1 to 1000 steps per sample). Default 0.01.

    Returns:
      ``{variant name: [seconds per step, one per round]}``.

    Example:
      >>> from gradtx.bench import BenchConfig, make_variants, time_variants, workload
      >>> config = BenchConfig.quick(torch=False, optax=False)
      >>> times = time_variants(make_variants("sgdm", workload("W3", config), config), repeats=2, warmup=1)
      >>> print(sorted(times), len(times["gradtx-jit"]))
      ['gradtx-donate', 'gradtx-flat', 'gradtx-jit'] 2
    """
    inner = {}
    for v in variants:
        v.reset()
        for _ in range(max(warmup, 1)):
            v.step()
        v.sync()
        t = _time_once(v, 1)
        inner[v.name] = max(1, min(1000, int(min_sample_s / max(t, 1e-7))))
    times: dict[str, list[float]] = {v.name: [] for v in variants}
    for _ in range(repeats):
        for v in variants:
            times[v.name].append(_time_once(v, inner[v.name]))
    return times


def _median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def summarize(times: dict[str, list[float]], nbytes: int, traffic: int, roof_gbs: float | None) -> dict[str, Any]:
    """Medians, GB/s of the minimal traffic, % of roofline and paired ratios against the references."""
    out: dict[str, Any] = {}
    for name, ts in times.items():
        med = _median(ts)
        gbs = traffic * nbytes / med / 1e9 if med > 0 else float("nan")
        row: dict[str, Any] = {"median_ms": med * 1e3, "min_ms": min(ts) * 1e3, "gb_s": gbs}
        row["samples_ms"] = [t * 1e3 for t in ts]
        row["roofline_pct"] = 100.0 * gbs / roof_gbs if roof_gbs else None
        for ref in REFERENCES:
            if ref in times and ref != name:
                row[f"ratio_vs_{ref}"] = _median([a / b for a, b in zip(ts, times[ref])])
        out[name] = row
    return out


def roofline(size: int, repeats: int, warmup: int = 2, min_sample_s: float = 0.01) -> dict[str, Any]:
    """GB/s of a jitted triad ``a = b + s * c`` on float32 arrays of ``size`` (3 arrays moved), plain and donated.

    The memory roofline the optimizer steps are compared with: timed as :func:`time_variants` times a step.

    Args:
      size: the elements of each array.
      repeats: the timed rounds, ``>= 1``.
      warmup: untimed steps before timing. Default 2.
      min_sample_s: the target duration of one sample in seconds. Default 0.01.

    Returns:
      ``{"triad": {"median_ms", "gb_s"}, "triad-donate": {...}, "best_gb_s": the larger GB/s}``.

    Example:
      >>> from gradtx.bench import roofline
      >>> roof = roofline(1024, repeats=2, warmup=1, min_sample_s=0.0)
      >>> print(sorted(roof), roof["best_gb_s"] > 0)
      ['best_gb_s', 'triad', 'triad-donate'] True
    """
    rng = np.random.default_rng(0)
    b0 = rng.standard_normal(size, dtype=np.float32)
    c = jax.device_put(rng.standard_normal(size, dtype=np.float32))
    s = jnp.float32(1e-3)

    def triad(b: jax.Array, c: jax.Array, s: jax.Array) -> jax.Array:
        return b + s * c

    class Triad(Variant):
        def __init__(self, name: str, donate: bool):
            self.name = name
            self.fn = jax.jit(triad, donate_argnums=(0,) if donate else ())
            self.b: Any = None

        def reset(self) -> None:
            self.b = fresh(b0)

        def step(self) -> None:
            self.b = self.fn(self.b, c, s)

        def sync(self) -> None:
            jax.block_until_ready(self.b)  # type: ignore[no-untyped-call]  # unannotated in JAX

    variants = [Triad("triad", False), Triad("triad-donate", True)]
    times = time_variants(variants, repeats, warmup, min_sample_s)
    out: dict[str, Any] = {}
    for name, ts in times.items():
        med = _median(ts)
        out[name] = {"median_ms": med * 1e3, "gb_s": 3 * 4 * size / med / 1e9}
    out["best_gb_s"] = max(out[n]["gb_s"] for n in times)
    return out


def _lower_compile(fn: Callable[..., Any], *args: Any, **jit_kw: Any) -> dict[str, float]:
    """Seconds of ``jax.jit(fn).lower(*args)`` (trace + lower) and of ``.compile()``, measured separately."""
    gc.collect()
    t0 = time.perf_counter()
    lowered = jax.jit(fn, **jit_kw).lower(*args)
    t1 = time.perf_counter()
    lowered.compile()
    return {"lower_s": t1 - t0, "compile_s": time.perf_counter() - t1}


def compile_times(names: Sequence[str], config: BenchConfig) -> dict[str, dict[str, dict[str, float]]]:
    """Lower and compile seconds of the Adam step per workload: gradtx per leaf, gradtx flat, Optax.

    Abstract arguments (``jax.ShapeDtypeStruct``), so nothing is allocated; Optax when ``config.optax`` and it is
    installed.

    Args:
      names: workload names (:func:`workload`), e.g. ``["W2", "leaves:2000"]``.
      config: the sizes and whether to include Optax.

    Returns:
      ``{workload: {"gradtx" | "gradtx-flat" | "optax": {"lower_s": ..., "compile_s": ...}}}``.

    Raises:
      ValueError: for an unknown workload name.

    Example:
      >>> from gradtx.bench import BenchConfig, compile_times
      >>> out = compile_times(["leaves:4"], BenchConfig.quick(optax=False))
      >>> print(sorted(out["leaves:4"]), sorted(out["leaves:4"]["gradtx"]))
      ['gradtx', 'gradtx-flat'] ['compile_s', 'lower_s']
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        shapes = workload(name, config)
        # for mypy: JAX leaves ShapeDtypeStruct.__init__ unannotated (the ignore below)
        abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, jnp.float32), shapes, is_leaf=is_shape)  # type: ignore[no-untyped-call]
        opt = adam(LR)
        row = {
            "gradtx": _lower_compile(plain_step(opt), abstract, jax.eval_shape(opt.init, abstract), abstract),
        }
        flat = jax.eval_shape(pack, abstract)
        row["gradtx-flat"] = _lower_compile(
            plain_step(opt), flat, jax.eval_shape(opt.init, flat), flat, donate_argnums=(0, 1)
        )
        if config.optax and available("optax"):
            oopt = optax_optimizer("adam")
            row["optax"] = _lower_compile(optax_step(oopt), abstract, jax.eval_shape(oopt.init, abstract), abstract)
        out[name] = row
    return out


def trace_scaling(leaves: Sequence[int], compile_up_to: int = 0) -> list[dict[str, float]]:
    """Trace (``jit(...).trace``) and lower seconds of ``chain(clip_by_global_norm(1), adam(1e-3))`` over
    trees of ``n`` leaves; compile seconds too for ``n <= compile_up_to``. Linear growth is the contract.

    Args:
      leaves: the leaf counts ``n`` (leaves of shape (4, 4), float32, abstract).
      compile_up_to: also compile for ``n`` up to this. Default 0 (never).

    Returns:
      One dict per count: ``leaves``, ``trace_s``, ``lower_s``, ``trace_us_per_leaf`` (and ``compile_s``).

    Example:
      >>> from gradtx.bench import trace_scaling
      >>> print([row["leaves"] for row in trace_scaling([10, 20])])
      [10, 20]
    """
    opt = chain(clip_by_global_norm(1.0), adam(LR))
    rows = []
    for n in leaves:
        # for mypy: JAX leaves ShapeDtypeStruct.__init__ unannotated (the ignore below)
        params = {f"p{i:05d}": jax.ShapeDtypeStruct((4, 4), jnp.float32) for i in range(n)}  # type: ignore[no-untyped-call]
        state = jax.eval_shape(opt.init, params)
        gc.collect()
        t0 = time.perf_counter()
        traced = jax.jit(plain_step(opt)).trace(params, state, params)
        t1 = time.perf_counter()
        lowered = traced.lower()
        t2 = time.perf_counter()
        row = {"leaves": n, "trace_s": t1 - t0, "lower_s": t2 - t1, "trace_us_per_leaf": 1e6 * (t1 - t0) / n}
        if n <= compile_up_to:
            lowered.compile()
            row["compile_s"] = time.perf_counter() - t2
        rows.append(row)
    return rows
