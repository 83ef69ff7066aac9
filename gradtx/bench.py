"""``python -m gradtx bench``: the optimizer step against Optax, torch.optim and the memory roofline.

One process times every implementation of one optimizer step on one workload, interleaved (A B C A B C ...)
so that slow drifts of a shared machine hit all of them alike, and reports medians and *paired* ratios (the
median over repeats of ``t_variant / t_reference`` measured in the same round). Workloads:

    W1  one float32 array of 2**24 elements (memory-bound: the roofline case)
    W2  a transformer-like tree of ~600 leaves and ~20 M parameters (per-buffer overheads)
    W3  a small MLP of 10 leaves and ~50 K parameters (launch and dispatch overheads)

Variants, for Adam (lr 1e-3) and SGD with momentum 0.9 (lr 1e-3):

    gradtx-jit       jax.jit(update + apply_updates), no donation (the plain step: the correctness reference)
    gradtx-donate    gradtx.step.make_step(opt): params and state donated, updated in place
    gradtx-flat      the same on gradtx.flat.pack(params/grads): a few buffers instead of one per leaf
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
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx.base import apply_updates
from gradtx.combine import chain
from gradtx.flat import pack, unpack
from gradtx.optimizers import adam, sgd
from gradtx.step import make_step
from gradtx.transforms.clipping import clip_by_global_norm

__all__ = [
    "OPTIMIZERS",
    "WORKLOADS",
    "BenchConfig",
    "check_variants",
    "compile_times",
    "format_report",
    "main",
    "make_variants",
    "memory_usage",
    "roofline",
    "run",
    "time_variants",
    "trace_scaling",
    "workload",
]

LR = 1e-3
MOMENTUM = 0.9
WORKLOADS = ("W1", "W2", "W3")
OPTIMIZERS = ("adam", "sgdm")
TRAFFIC = {"adam": 7, "sgdm": 5}  # arrays of the parameter size one fused step must move
REFERENCES = ("optax-donate", "torch-fused")  # paired ratios are taken against these


# --------------------------------------------------------------------------------------------------
# Configuration and workloads.
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class BenchConfig:
    """What to run and how big. :meth:`quick` gives the ``--quick`` sizes."""

    workloads: tuple[str, ...] = WORKLOADS
    optimizers: tuple[str, ...] = OPTIMIZERS
    repeats: int = 15  # timed rounds (each round times every variant once)
    warmup: int = 2  # untimed steps per variant after the correctness check
    min_sample_s: float = 0.01  # steps are batched so that one timed sample lasts about this long
    w1_size: int = 2**24
    w2_width: int = 184  # 49 blocks of 12 leaves of width 184 + embeddings: 593 leaves, 20.8 M params
    w2_blocks: int = 49
    w3_widths: tuple[int, ...] = (64, 128, 128, 128, 64, 10)  # 10 leaves, 50 250 params
    compile_leaves: int = 2000
    compile: bool = True
    memory: bool = True
    memory_size: int = 2**24
    trace_leaves: tuple[int, ...] = ()  # e.g. (250, 500, 1000, 2000, 4000) for the trace-scaling table
    torch: bool = True
    optax: bool = True
    check_steps: int = 3
    seed: int = 0

    @classmethod
    def quick(cls, **overrides: Any) -> BenchConfig:
        fields: dict[str, Any] = dict(
            repeats=5,
            warmup=1,
            min_sample_s=0.002,
            w1_size=2**20,
            w2_width=32,
            w2_blocks=4,
            compile_leaves=100,
            memory_size=2**20,
        )
        fields.update(overrides)
        return cls(**fields)


def _transformer_shapes(width: int, blocks: int) -> dict[str, Any]:
    d, vocab, ctx = width, 4096 if width >= 128 else 256, 256 if width >= 128 else 32
    block = {
        "ln1": {"scale": (d,), "bias": (d,)},
        "attn": {"qkv": {"w": (d, 3 * d), "b": (3 * d,)}, "out": {"w": (d, d), "b": (d,)}},
        "ln2": {"scale": (d,), "bias": (d,)},
        "mlp": {"fc1": {"w": (d, 4 * d), "b": (4 * d,)}, "fc2": {"w": (4 * d, d), "b": (d,)}},
    }
    return {
        "embed": (vocab, d),
        "pos": (ctx, d),
        "blocks": [block for _ in range(blocks)],
        "ln_f": {"scale": (d,), "bias": (d,)},
        "head": (d, vocab),
    }


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple) and all(isinstance(i, int) for i in x)


def workload(name: str, config: BenchConfig) -> dict[str, Any]:
    """The parameter shapes of a workload (a tree of shape tuples): W1, W2, W3, or ``leaves:N`` (N small leaves)."""
    if name == "W1":
        return {"w": (config.w1_size,)}
    if name == "W2":
        return _transformer_shapes(config.w2_width, config.w2_blocks)
    if name == "W3":
        w = config.w3_widths
        return {f"dense{i}": {"w": (w[i], w[i + 1]), "b": (w[i + 1],)} for i in range(len(w) - 1)}
    if name.startswith("leaves:"):
        n = int(name.split(":", 1)[1])
        return {f"p{i:05d}": (16, 8) if i % 2 else (32,) for i in range(n)}
    raise ValueError(f"workload(name={name!r}): name must be one of W1, W2, W3, leaves:N")


def _random_tree(shapes: Any, seed: int, scale: float) -> Any:
    rng = np.random.default_rng(seed)

    def one(shape: tuple[int, ...]) -> np.ndarray:
        return (scale * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)

    return jax.tree.map(one, shapes, is_leaf=_is_shape)


def _optimizer(name: str) -> Any:
    if name == "adam":
        return adam(LR)
    if name == "sgdm":
        return sgd(LR, momentum=MOMENTUM)
    raise ValueError(f"optimizer(name={name!r}): name must be one of {', '.join(OPTIMIZERS)}")


def _optax_optimizer(name: str) -> Any:
    import optax

    return optax.adam(LR) if name == "adam" else optax.sgd(LR, momentum=MOMENTUM)


def _fresh(tree: Any) -> Any:
    """New device arrays holding ``tree``'s values, owned by JAX (safe to donate)."""
    return jax.tree.map(lambda x: jax.device_put(np.array(x, copy=True), may_alias=False), tree)


def _block(tree: Any) -> None:
    jax.block_until_ready(tree)


# --------------------------------------------------------------------------------------------------
# Variants: one optimizer step each, holding its own params and state.
# --------------------------------------------------------------------------------------------------


class Variant:
    """One implementation of the step: ``reset()`` to the initial params, ``step()``, ``sync()``, ``params()``."""

    name = "variant"

    def reset(self) -> None:
        raise NotImplementedError

    def step(self) -> None:
        raise NotImplementedError

    def sync(self) -> None:
        pass

    def params(self) -> list[np.ndarray]:
        """The current params as NumPy arrays in ``jax.tree.leaves`` order of the workload's tree."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class JaxVariant(Variant):
    """A jitted ``(params, state, grads) -> (params, state)``, fed its own outputs every step."""

    def __init__(
        self,
        name: str,
        step_fn: Callable[..., Any],
        init: Callable[[Any], Any],
        params0: Any,
        grads: Any,
        to_params: Callable[[Any], Any] = lambda t: t,
        from_params: Callable[[Any], Any] = lambda t: t,
    ):
        self.name = name
        self._step_fn, self._init = step_fn, init
        self._params0, self._to, self._from = params0, to_params, from_params
        self._grads = jax.block_until_ready(self._to(_fresh(grads)))
        self.p: Any = None
        self.s: Any = None

    def reset(self) -> None:
        self.p = self.s = None
        self.p = jax.block_until_ready(self._to(_fresh(self._params0)))
        self.s = jax.block_until_ready(self._init(self.p))

    def step(self) -> None:
        self.p, self.s = self._step_fn(self.p, self.s, self._grads)

    def sync(self) -> None:
        _block((self.p, self.s))

    def params(self) -> list[np.ndarray]:
        return [np.asarray(x) for x in jax.tree.leaves(self._from(self.p))]

    def close(self) -> None:
        self.p = self.s = self._grads = None


class TorchVariant(Variant):
    """``torch.optim.Adam`` / ``SGD`` with ``foreach`` or ``fused``, the gradients set once."""

    def __init__(self, name: str, opt_name: str, mode: str, params0: Any, grads: Any):
        if "torch" not in sys.modules:  # idle OpenMP workers sleep instead of spinning on the cores XLA uses
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import torch

        self.name, self._torch = name, torch
        self._opt_name, self._mode = opt_name, mode
        self._device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
        self._params0 = [np.asarray(x) for x in jax.tree.leaves(params0)]
        self._grads = [torch.tensor(np.asarray(g), device=self._device) for g in jax.tree.leaves(grads)]
        self.opt: Any = None
        self.tensors: list[Any] = []

    def reset(self) -> None:
        torch = self._torch
        self.tensors = [torch.tensor(p, device=self._device, requires_grad=True) for p in self._params0]
        for t, g in zip(self.tensors, self._grads):
            t.grad = g.clone()
        kw = {self._mode: True}
        if self._opt_name == "adam":
            self.opt = torch.optim.Adam(self.tensors, lr=LR, **kw)
        else:
            self.opt = torch.optim.SGD(self.tensors, lr=LR, momentum=MOMENTUM, **kw)

    def step(self) -> None:
        self.opt.step()

    def sync(self) -> None:
        if self._device == "cuda":
            self._torch.cuda.synchronize()

    def params(self) -> list[np.ndarray]:
        return [t.detach().cpu().numpy() for t in self.tensors]

    def close(self) -> None:
        self.opt, self.tensors, self._grads = None, [], []


def _plain_step(opt: Any) -> Callable[..., Any]:
    def step(params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
        updates, state = opt.update(grads, state, params)
        return apply_updates(params, updates), state

    return step


def _optax_step(opt: Any) -> Callable[..., Any]:
    import optax

    def step(params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


def available(module: str) -> str | None:
    """The version of an importable module, or ``None`` when it is not installed."""
    try:
        mod = importlib.import_module(module)
    except Exception:
        return None
    return str(getattr(mod, "__version__", "unknown"))


def make_variants(opt_name: str, shapes: Any, config: BenchConfig) -> list[Variant]:
    """Every variant of the step for one optimizer and workload (the plain gradtx step first)."""
    params0 = _random_tree(shapes, config.seed, 1.0)
    grads = _random_tree(shapes, config.seed + 1, 1e-2)
    opt = _optimizer(opt_name)
    out: list[Variant] = [
        JaxVariant("gradtx-jit", jax.jit(_plain_step(opt)), opt.init, params0, grads),
        JaxVariant("gradtx-donate", make_step(opt), opt.init, params0, grads),
        JaxVariant("gradtx-flat", make_step(opt), opt.init, params0, grads, pack, unpack),
    ]
    if config.optax and available("optax"):
        oopt = _optax_optimizer(opt_name)
        out.append(JaxVariant("optax-jit", jax.jit(_optax_step(oopt)), oopt.init, params0, grads))
        donated = jax.jit(_optax_step(oopt), donate_argnums=(0, 1))
        out.append(JaxVariant("optax-donate", donated, oopt.init, params0, grads))
    if config.torch and available("torch"):
        for mode in ("foreach", "fused"):
            out.append(TorchVariant(f"torch-{mode}", opt_name, mode, params0, grads))
    return out


def check_variants(
    variants: Sequence[Variant], steps: int = 3, rtol: float = 1e-5, atol: float = 1e-6
) -> dict[str, float]:
    """Run ``steps`` steps of every variant from the initial params; each must match the first (the plain step).

    Returns the largest absolute difference per variant; raises ``AssertionError`` naming the variant that differs.
    """
    results = []
    for v in variants:
        v.reset()
        for _ in range(steps):
            v.step()
        v.sync()
        results.append(v.params())
    ref = results[0]
    diffs = {}
    for v, got in zip(variants, results):
        if len(got) != len(ref):
            raise AssertionError(f"bench: {v.name} returned {len(got)} parameter arrays, the plain step {len(ref)}")
        worst = 0.0
        for a, b in zip(got, ref):
            if a.shape != b.shape or not np.allclose(a, b, rtol=rtol, atol=atol):
                err = float(np.max(np.abs(a.astype(np.float64) - b))) if a.shape == b.shape else float("inf")
                raise AssertionError(
                    f"bench: {v.name} differs from the plain gradtx step after {steps} steps (max |diff| {err:.3g})"
                )
            if a.size:
                worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b))))
        diffs[v.name] = worst
    return diffs


# --------------------------------------------------------------------------------------------------
# Timing.
# --------------------------------------------------------------------------------------------------


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
    """GB/s of a jitted triad ``a = b + s * c`` on float32 arrays of ``size`` (3 arrays moved), plain and donated."""
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
            self.b = _fresh(b0)

        def step(self) -> None:
            self.b = self.fn(self.b, c, s)

        def sync(self) -> None:
            _block(self.b)

    variants = [Triad("triad", False), Triad("triad-donate", True)]
    times = time_variants(variants, repeats, warmup, min_sample_s)
    out = {}
    for name, ts in times.items():
        med = _median(ts)
        out[name] = {"median_ms": med * 1e3, "gb_s": 3 * 4 * size / med / 1e9}
    out["best_gb_s"] = max(out[n]["gb_s"] for n in times)
    return out


# --------------------------------------------------------------------------------------------------
# Compile time, trace scaling, memory.
# --------------------------------------------------------------------------------------------------


def _lower_compile(fn: Callable[..., Any], *args: Any, **jit_kw: Any) -> dict[str, float]:
    """Seconds of ``jax.jit(fn).lower(*args)`` (trace + lower) and of ``.compile()``, measured separately."""
    gc.collect()
    t0 = time.perf_counter()
    lowered = jax.jit(fn, **jit_kw).lower(*args)
    t1 = time.perf_counter()
    lowered.compile()
    return {"lower_s": t1 - t0, "compile_s": time.perf_counter() - t1}


def compile_times(names: Sequence[str], config: BenchConfig) -> dict[str, dict[str, dict[str, float]]]:
    """Lower and compile seconds of the Adam step per workload: gradtx per leaf, gradtx flat, Optax."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        shapes = workload(name, config)
        abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, jnp.float32), shapes, is_leaf=_is_shape)
        opt = adam(LR)
        row = {
            "gradtx": _lower_compile(_plain_step(opt), abstract, jax.eval_shape(opt.init, abstract), abstract),
        }
        flat = jax.eval_shape(pack, abstract)
        row["gradtx-flat"] = _lower_compile(
            _plain_step(opt), flat, jax.eval_shape(opt.init, flat), flat, donate_argnums=(0, 1)
        )
        if config.optax and available("optax"):
            oopt = _optax_optimizer("adam")
            row["optax"] = _lower_compile(_optax_step(oopt), abstract, jax.eval_shape(oopt.init, abstract), abstract)
        out[name] = row
    return out


def trace_scaling(leaves: Sequence[int], compile_up_to: int = 0) -> list[dict[str, float]]:
    """Trace (``jit(...).trace``) and lower seconds of ``chain(clip_by_global_norm(1), adam(1e-3))`` over
    trees of ``n`` leaves; compile seconds too for ``n <= compile_up_to``. Linear growth is the contract."""
    opt = chain(clip_by_global_norm(1.0), adam(LR))
    rows = []
    for n in leaves:
        params = {f"p{i:05d}": jax.ShapeDtypeStruct((4, 4), jnp.float32) for i in range(n)}
        state = jax.eval_shape(opt.init, params)
        gc.collect()
        t0 = time.perf_counter()
        traced = jax.jit(_plain_step(opt)).trace(params, state, params)
        t1 = time.perf_counter()
        lowered = traced.lower()
        t2 = time.perf_counter()
        row = {"leaves": n, "trace_s": t1 - t0, "lower_s": t2 - t1, "trace_us_per_leaf": 1e6 * (t1 - t0) / n}
        if n <= compile_up_to:
            lowered.compile()
            row["compile_s"] = time.perf_counter() - t2
        rows.append(row)
    return rows


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
    abstract = {"w": jax.ShapeDtypeStruct((size,), jnp.float32)}
    if variant.startswith("optax"):
        opt = _optax_optimizer("adam")
        fn = _optax_step(opt)
    else:
        opt = adam(LR)
        fn = _plain_step(opt)
    donate = variant.endswith("donate")
    compiled = jax.jit(fn, donate_argnums=(0, 1) if donate else ()).lower(
        abstract, jax.eval_shape(opt.init, abstract), abstract
    ).compile()
    params = _fresh(_random_tree(shapes, 0, 1.0))
    grads = _fresh(_random_tree(shapes, 1, 1e-2))
    # A copy through NumPy makes every state page resident now (zeros may come from untouched pages, which
    # would count against the step that first writes them).
    state = _fresh(jax.tree.map(np.asarray, opt.init(params)))
    _block((params, grads, state))
    gc.collect()
    live = sum(x.nbytes for x in jax.tree.leaves((params, grads, state)))
    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    on_host = jax.default_backend() == "cpu" or "peak_bytes_in_use" not in stats
    if on_host:
        exact = _reset_peak_rss()
        before, _ = _rss_now()
        new = compiled(params, state, grads)
        _block(new)
        _, peak = _rss_now()
        extra, method = peak - before, "rss" + ("" if exact else " (peak not reset: upper bound)")
    else:
        before = stats["bytes_in_use"]
        new = compiled(params, state, grads)
        _block(new)
        peak = (device.memory_stats() or {}).get("peak_bytes_in_use", before)
        extra, method = max(0, peak - before), "device peak_bytes_in_use"
    return {"variant": variant, "live_mib": live / 2**20, "extra_mib": extra / 2**20, "method": method}


def memory_usage(config: BenchConfig, variants: Sequence[str] = MEMORY_VARIANTS) -> dict[str, Any]:
    """:func:`memory_child` for each variant, each in its own subprocess (peaks are per process)."""
    out: dict[str, Any] = {}
    for v in variants:
        if v.startswith("optax") and not (config.optax and available("optax")):
            continue
        code = (
            "import json, sys; from gradtx.bench import memory_child; "
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
    """Per-device Adam-state bytes on W2: replicated (plain data parallelism) against ZeRO-1.

    Planned, not allocated: ``jax.eval_shape`` of the state, :func:`gradtx.sharding.zero1_shardings` on an
    abstract mesh of ``n`` data-parallel devices, and each leaf's shard shape (the largest shard, as the
    device holding it needs). Runs on any machine, whatever its device count.
    """
    from jax.sharding import AbstractMesh

    from gradtx import sharding

    shapes = workload("W2", config)
    params = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, jnp.float32), shapes, is_leaf=_is_shape)
    state = jax.eval_shape(_optimizer("adam").init, params)
    leaves = jax.tree.leaves(state)
    replicated = sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in leaves)
    out: dict[str, Any] = {"workload": "W2", "optimizer": "adam", "replicated_bytes": int(replicated), "zero1": {}}
    for n in data_axis_sizes:
        mesh = AbstractMesh((int(n),), ("data",))
        layout = jax.tree.leaves(sharding.zero1_shardings(state, mesh, "data"))
        per_device = sum(
            math.prod(sh.shard_shape(x.shape)) * np.dtype(x.dtype).itemsize for x, sh in zip(leaves, layout)
        )
        out["zero1"][str(int(n))] = int(per_device)
    return out


# --------------------------------------------------------------------------------------------------
# The whole run, the table, the command line.
# --------------------------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
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


def _param_count(shapes: Any) -> tuple[int, int]:
    leaves = jax.tree.leaves(shapes, is_leaf=_is_shape)
    return len(leaves), int(sum(int(np.prod(s)) for s in leaves))


def run(config: BenchConfig, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run the bench and return every figure (the JSON document)."""
    t_start = time.perf_counter()
    result: dict[str, Any] = {"environment": environment(), "config": dataclasses.asdict(config)}
    log(f"roofline: triad on {config.w1_size} float32 elements")
    roof = roofline(config.w1_size, config.repeats, config.warmup, config.min_sample_s)
    result["roofline"] = roof
    result["workloads"] = {}
    sections: dict[str, float] = {"roofline": time.perf_counter() - t_start}
    for wname in config.workloads:
        shapes = workload(wname, config)
        n_leaves, n_params = _param_count(shapes)
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


def _fmt(x: Any, spec: str = ".2f") -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    return format(x, spec)


def format_report(result: dict[str, Any]) -> str:
    """The table printed by ``python -m gradtx bench``."""
    env = result["environment"]
    lines = [
        f"gradtx bench | backend {env['backend']} | device {env['device']} x{env['device_count']} | "
        f"jax {env['jax']} | optax {env['optax'] or 'not installed'} | torch {env['torch'] or 'not installed'} | "
        f"{env['cpu_count']} CPUs ({env['cpu']}) | {env['date']}",
    ]
    roof = result["roofline"]
    lines.append(
        f"roofline (triad a = b + s*c, 3 arrays): {_fmt(roof['triad']['gb_s'], '.1f')} GB/s, "
        f"donated {_fmt(roof['triad-donate']['gb_s'], '.1f')} GB/s"
    )
    for wname, entry in result["workloads"].items():
        for oname, rows in entry["optimizers"].items():
            lines.append("")
            lines.append(
                f"{wname} {oname}: {entry['leaves']} leaves, {entry['params']:,} params "
                f"(GB/s counts {TRAFFIC[oname]} arrays)"
            )
            lines.append(
                f"  {'variant':<15}{'median ms':>11}{'min ms':>10}{'GB/s':>8}{'% roof':>8}"
                f"{'/optax-donate':>14}{'/torch-fused':>13}"
            )
            for name, r in rows.items():
                lines.append(
                    f"  {name:<15}{_fmt(r['median_ms'], '.3f'):>11}{_fmt(r['min_ms'], '.3f'):>10}"
                    f"{_fmt(r['gb_s'], '.1f'):>8}{_fmt(r['roofline_pct'], '.0f'):>8}"
                    f"{_fmt(r.get('ratio_vs_optax-donate')):>14}{_fmt(r.get('ratio_vs_torch-fused')):>13}"
                )
            if env["torch"] is None:
                lines.append("  torch: not installed")
    if "compile" in result:
        lines.append("")
        lines.append("compile, Adam step (s): lower = trace + lowering, compile = XLA")
        for wname, row in result["compile"].items():
            parts = [f"{k} {_fmt(v['lower_s'])} + {_fmt(v.get('compile_s'))}" for k, v in row.items()]
            lines.append(f"  {wname:<12} " + " | ".join(parts))
    if "memory" in result:
        lines.append("")
        lines.append("memory of one W1 Adam step above the live data (params + grads + state), MiB")
        for name, r in result["memory"].items():
            if "error" in r:
                lines.append(f"  {name:<15} error: {r['error']}")
            else:
                lines.append(
                    f"  {name:<15} +{_fmt(r['extra_mib'], '.0f')} over {_fmt(r['live_mib'], '.0f')} live "
                    f"({r['method']})"
                )
    if "trace_scaling" in result:
        lines.append("")
        lines.append("trace scaling, chain(clip_by_global_norm, adam):")
        for r in result["trace_scaling"]:
            lines.append(
                f"  {r['leaves']:>6} leaves: trace {_fmt(r['trace_s'])} s, lower {_fmt(r['lower_s'])} s, "
                f"{_fmt(r['trace_us_per_leaf'], '.0f')} us/leaf"
            )
    if "zero1" in result:
        lines.append("")
        z = result["zero1"]
        mib = 2.0**20
        lines.append(f"Adam state per device on W2 (planned): replicated {z['replicated_bytes'] / mib:.1f} MiB")
        for n, b in z["zero1"].items():
            lines.append(f"  ZeRO-1 over {n:>3} data devices: {b / mib:8.2f} MiB ({b / z['replicated_bytes']:.4f} x)")
    lines.append("")
    parts = ", ".join(f"{k} {v:.0f}" for k, v in result.get("sections_s", {}).items())
    lines.append(f"total {result['wall_s']:.1f} s ({parts})")
    return "\n".join(lines)


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
    """Entry point of ``python -m gradtx bench``: run, print the table, write the JSON."""
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

