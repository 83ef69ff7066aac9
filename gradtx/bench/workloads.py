"""The bench's configuration and workloads: what is timed, on which parameter trees, with which optimizer.

    W1  one float32 array of 2**24 elements (memory-bound: the roofline case)
    W2  a transformer-like tree of ~600 leaves and ~20 M parameters (per-buffer overheads)
    W3  a small MLP of 10 leaves and ~50 K parameters (launch and dispatch overheads)
    leaves:N   N small leaves (compile-time measurements)

A workload is a tree of shape tuples; :func:`random_tree` fills it with float32 draws (parameters, gradients).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from gradtx.optimizers import adam, sgd

__all__ = [
    "LR",
    "MOMENTUM",
    "OPTIMIZERS",
    "REFERENCES",
    "TRAFFIC",
    "WORKLOADS",
    "BenchConfig",
    "is_shape",
    "optax_optimizer",
    "optimizer",
    "param_count",
    "random_tree",
    "workload",
]

LR = 1e-3
MOMENTUM = 0.9
WORKLOADS = ("W1", "W2", "W3")
OPTIMIZERS = ("adam", "sgdm")
TRAFFIC = {"adam": 7, "sgdm": 5}  # arrays of the parameter size one fused step must move
REFERENCES = ("optax-donate", "torch-fused")  # paired ratios are taken against these


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


def is_shape(x: Any) -> bool:
    """Whether ``x`` is a shape tuple (the leaves of a workload's tree of shapes)."""
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


def random_tree(shapes: Any, seed: int, scale: float) -> Any:
    """A tree of float32 NumPy arrays shaped by ``shapes``: ``scale`` times standard normal draws from ``seed``."""
    rng = np.random.default_rng(seed)

    def one(shape: tuple[int, ...]) -> np.ndarray:
        return (scale * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)

    return jax.tree.map(one, shapes, is_leaf=is_shape)


def optimizer(name: str) -> Any:
    """The gradtx optimizer timed under ``name``: ``"adam"`` (lr 1e-3) or ``"sgdm"`` (lr 1e-3, momentum 0.9)."""
    if name == "adam":
        return adam(LR)
    if name == "sgdm":
        return sgd(LR, momentum=MOMENTUM)
    raise ValueError(f"optimizer(name={name!r}): name must be one of {', '.join(OPTIMIZERS)}")


def optax_optimizer(name: str) -> Any:
    """Optax's optimizer for ``name`` (``"adam"`` or ``"sgdm"``), with the same hyperparameters."""
    import optax

    return optax.adam(LR) if name == "adam" else optax.sgd(LR, momentum=MOMENTUM)


def param_count(shapes: Any) -> tuple[int, int]:
    """The number of leaves and of parameters of a tree of shapes."""
    leaves = jax.tree.leaves(shapes, is_leaf=is_shape)
    return len(leaves), int(sum(int(np.prod(s)) for s in leaves))
