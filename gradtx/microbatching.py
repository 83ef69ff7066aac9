"""``gradtx.microbatching``: Optax 0.2.8's ``optax.microbatching`` namespace.

Evaluate a function, a vectorised map or per-example gradients over a large batch in sequential
micro-batches, so that peak memory is that of one micro-batch:

    microbatch(fun, argnums, microbatch_size, accumulator)   fun on micro-batches, outputs combined
    micro_vmap(fun, in_axes, microbatch_size=...)            jax.vmap in micro-batches (CONCAT, SUM, MEAN, ...)
    micro_grad(fun, batch_argnums=..., transform_fn=...)     per-example gradients, transformed and combined
    reshape_batch_axis(tree, microbatch_size, axis)          the (column-major) split of the batch axis
    AccumulationType, Accumulator                            how micro-batch outputs combine

These are plain re-exports: the one definition of each lives in :mod:`gradtx.wrappers`.
"""

from __future__ import annotations

from gradtx.wrappers import (
    AccumulationType,
    Accumulator,
    micro_grad,
    micro_vmap,
    microbatch,
    reshape_batch_axis,
)

__all__ = [
    "AccumulationType",
    "Accumulator",
    "micro_grad",
    "micro_vmap",
    "microbatch",
    "reshape_batch_axis",
]
