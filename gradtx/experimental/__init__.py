"""``gradtx.experimental``: Optax 0.2.8's ``optax.experimental`` namespace.

aggregating   transformations of per-example gradients: aggregation, accumulation over micro-batches,
              running mean and variance of the gradients (:mod:`gradtx.experimental.aggregating`)
"""

from __future__ import annotations

from gradtx.experimental import aggregating

__all__ = ["aggregating"]
