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

# The entry points; the constants and helpers (LR, MOMENTUM, random_tree, optimizer, ...) stay importable.
__all__ = ["BenchConfig", "workload"]

LR = 1e-3
MOMENTUM = 0.9
WORKLOADS = ("W1", "W2", "W3")
OPTIMIZERS = ("adam", "sgdm")
TRAFFIC = {"adam": 7, "sgdm": 5}  # arrays of the parameter size one fused step must move
REFERENCES = ("optax-donate", "torch-fused")  # paired ratios are taken against these


@dataclasses.dataclass
class BenchConfig:
    """What to run and how big. :meth:`quick` gives the ``--quick`` sizes.

    Args:
      workloads: the workloads timed: ``"W1"``, ``"W2"``, ``"W3"`` or ``"leaves:N"`` (see :func:`workload`).
        Default all three.
      optimizers: the optimizers timed, ``"adam"`` and/or ``"sgdm"``. Default both.
      repeats: timed rounds, each timing every variant once, ``>= 1``. Default 15 (quick: 5).
      warmup: untimed steps per variant after the correctness check. Default 2 (quick: 1).
      min_sample_s: steps are batched so that one timed sample lasts about this long, in seconds. Default 0.01.
      w1_size: the elements of W1's one array. Default 2**24 (quick: 2**20).
      w2_width: the width of W2's transformer blocks. Default 184 (quick: 32).
      w2_blocks: the number of W2's blocks. Default 49 (quick: 4).
      w3_widths: the layer widths of W3's MLP. Default ``(64, 128, 128, 128, 64, 10)``.
      compile_leaves: the leaves of the compile-time tree. Default 2000 (quick: 100).
      compile: measure compile times. Default True.
      memory: measure the peak memory of one step. Default True.
      memory_size: the elements of the memory measurement's array. Default 2**24 (quick: 2**20).
      trace_leaves: leaf counts for the trace-scaling table, e.g. ``(250, 500, 1000, 2000, 4000)``; ``()``
        (default) skips it.
      torch: time ``torch.optim`` when torch is installed. Default True.
      optax: time Optax when it is installed. Default True.
      check_steps: steps of the correctness check before timing. Default 3.
      seed: the NumPy seed of parameters and gradients. Default 0.

    Example:
      >>> from gradtx.bench import BenchConfig
      >>> config = BenchConfig.quick(workloads=("W3",))
      >>> print(config.workloads, config.repeats, config.w1_size)
      ('W3',) 5 1048576
    """

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
        """The ``--quick`` sizes (small arrays, 5 rounds), with ``overrides`` (field values) applied."""
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
    """The parameter shapes of a workload (a tree of shape tuples): W1, W2, W3, or ``leaves:N`` (N small leaves).

    Args:
      name: ``"W1"`` (one array of ``config.w1_size``), ``"W2"`` (a transformer of ``config.w2_blocks`` blocks of
        width ``config.w2_width``), ``"W3"`` (an MLP of ``config.w3_widths``) or ``"leaves:N"`` (N leaves,
        alternately (32,) and (16, 8)).
      config: the sizes.

    Returns:
      A dict tree whose leaves are shape tuples (``random_tree`` fills it with arrays).

    Raises:
      ValueError: for another name (``workload(name='W4'): name must be one of W1, W2, W3, leaves:N``).

    Example:
      >>> from gradtx.bench import BenchConfig, workload
      >>> print(workload("W1", BenchConfig.quick()), workload("leaves:2", BenchConfig()))
      {'w': (1048576,)} {'p00000': (32,), 'p00001': (16, 8)}
    """
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
