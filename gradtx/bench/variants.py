"""Variants: one implementation of the optimizer step each, holding its own params and state.

    gradtx-jit       jax.jit(update + apply_updates), no donation (the plain step: the correctness reference)
    gradtx-donate    gradtx.step.make_step(opt, kernel="off"): params and state donated, updated in place
    gradtx-flat      the same on gradtx.flat.pack(params/grads): a few buffers instead of one per leaf
    gradtx-kernel    gradtx-flat with the fused Pallas Adam kernel (gradtx.kernels; Adam on a GPU only)
    optax-jit        Optax's step in jax.jit; optax-donate with donate_argnums=(0, 1) (when Optax is installed)
    torch-foreach    torch.optim with foreach=True; torch-fused with fused=True (when torch is installed)

:func:`check_variants` runs a few steps of each from the same params and gradients: every variant must land
where the plain gradtx step does.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from gradtx.base import PyTree, apply_updates
from gradtx.bench.workloads import LR, MOMENTUM, BenchConfig, optax_optimizer, optimizer, random_tree
from gradtx.flat import pack, unpack
from gradtx.step import make_step

# The entry points; the Variant classes and the step helpers stay importable.
__all__ = ["check_variants", "make_variants"]


def fresh(tree: Any) -> Any:
    """New device arrays holding ``tree``'s values, owned by JAX (safe to donate)."""
    return jax.tree.map(lambda x: jax.device_put(np.array(x, copy=True), may_alias=False), tree)


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
        # for mypy: JAX leaves block_until_ready unannotated (the ignore below)
        self._grads = jax.block_until_ready(self._to(fresh(grads)))  # type: ignore[no-untyped-call]
        self.p: Any = None
        self.s: Any = None

    def reset(self) -> None:
        self.p = self.s = None
        # for mypy: JAX leaves block_until_ready unannotated (the ignores below)
        self.p = jax.block_until_ready(self._to(fresh(self._params0)))  # type: ignore[no-untyped-call]
        self.s = jax.block_until_ready(self._init(self.p))  # type: ignore[no-untyped-call]

    def step(self) -> None:
        self.p, self.s = self._step_fn(self.p, self.s, self._grads)

    def sync(self) -> None:
        jax.block_until_ready((self.p, self.s))  # type: ignore[no-untyped-call]  # unannotated in JAX

    def params(self) -> list[np.ndarray]:
        return [np.asarray(x) for x in jax.tree.leaves(self._from(self.p))]

    def close(self) -> None:
        self.p = self.s = self._grads = None


class TorchVariant(Variant):
    """``torch.optim.Adam`` / ``SGD`` with ``foreach`` or ``fused``, the gradients set once."""

    def __init__(self, name: str, opt_name: str, mode: str, params0: Any, grads: Any):
        if "torch" not in sys.modules:  # idle OpenMP workers sleep instead of spinning on the cores XLA uses
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import torch  # pyright: ignore[reportMissingImports]  (optional: the torch variants only)

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


def plain_step(opt: Any) -> Callable[..., Any]:
    """``(params, state, grads) -> (params, state)``: one step of the gradtx optimizer ``opt``."""
    def step(params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
        updates, state = opt.update(grads, state, params)
        return apply_updates(params, updates), state

    return step


def optax_step(opt: Any) -> Callable[..., Any]:
    """``(params, state, grads) -> (params, state)``: one step of the Optax optimizer ``opt``."""
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


def make_variants(opt_name: str, shapes: PyTree, config: BenchConfig) -> list[Variant]:
    """Every variant of the step for one optimizer and workload (the plain gradtx step first).

    Parameters are standard normal draws and gradients 0.01 times others (seeds ``config.seed`` and
    ``config.seed + 1``); every variant holds its own copies. The variants: ``gradtx-jit``, ``gradtx-donate``,
    ``gradtx-flat`` (these two with ``kernel="off"``: the blocks), ``gradtx-kernel`` (Adam on a GPU), then
    ``optax-jit`` and ``optax-donate`` (with ``config.optax`` and Optax installed) and ``torch-foreach`` and
    ``torch-fused`` (with ``config.torch`` and torch installed).

    Args:
      opt_name: ``"adam"`` (lr 1e-3) or ``"sgdm"`` (lr 1e-3, momentum 0.9).
      shapes: the workload, a tree of shape tuples (:func:`workload`).
      config: the seed and which libraries to include.

    Returns:
      A list of ``Variant`` objects (``reset()``, ``step()``, ``sync()``, ``params()``, ``close()``).

    Raises:
      ValueError: for another ``opt_name`` (``optimizer(name='lion'): name must be one of adam, sgdm``).

    Example:
      >>> from gradtx.bench import BenchConfig, make_variants, workload
      >>> config = BenchConfig.quick(torch=False, optax=False)
      >>> print([v.name for v in make_variants("sgdm", workload("W3", config), config)])
      ['gradtx-jit', 'gradtx-donate', 'gradtx-flat']
    """
    params0 = random_tree(shapes, config.seed, 1.0)
    grads = random_tree(shapes, config.seed + 1, 1e-2)
    opt = optimizer(opt_name)
    out: list[Variant] = [
        JaxVariant("gradtx-jit", jax.jit(plain_step(opt)), opt.init, params0, grads),
        JaxVariant("gradtx-donate", make_step(opt, kernel="off"), opt.init, params0, grads),
        JaxVariant("gradtx-flat", make_step(opt, kernel="off"), opt.init, params0, grads, pack, unpack),
    ]
    if opt_name == "adam" and jax.default_backend() == "gpu":  # the Pallas kernel compiles for GPUs
        out.append(JaxVariant("gradtx-kernel", make_step(opt, kernel="pallas"), opt.init, params0, grads, pack,
                              unpack))
    if config.optax and available("optax"):
        oopt = optax_optimizer(opt_name)
        out.append(JaxVariant("optax-jit", jax.jit(optax_step(oopt)), oopt.init, params0, grads))
        donated = jax.jit(optax_step(oopt), donate_argnums=(0, 1))
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

    Args:
      variants: the variants (:func:`make_variants`); the first is the reference.
      steps: the steps each runs from its initial parameters, ``>= 1``. Default 3.
      rtol: the relative tolerance of ``np.allclose``. Default 1e-5.
      atol: the absolute tolerance of ``np.allclose``. Default 1e-6.

    Returns:
      ``{variant name: the largest |difference| from the reference's parameters}`` (0.0 for the reference).

    Raises:
      AssertionError: when a variant returns another number of arrays, or parameters not close to the
        reference's (``bench: gradtx-flat differs from the plain gradtx step after 3 steps (max |diff| ...)``).

    Example:
      >>> from gradtx.bench import BenchConfig, check_variants, make_variants, workload
      >>> config = BenchConfig.quick(torch=False, optax=False)
      >>> variants = make_variants("sgdm", workload("W3", config), config)
      >>> print(check_variants(variants)["gradtx-jit"])
      0.0
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
