"""Registry entries of the memory-efficient family: factored second moments (Adafactor) and SM3.

Every entry is per-leaf (``per_leaf=True``): its reference, ``gradtx.testing.reference.factored``, takes and
returns ``{leaf path: array}``. The default parameters of the registry tiers have a (3, 4) matrix, vectors
and a scalar; ``min_dim_size_to_factor`` <= 3 factors the matrix. tests/test_factored.py runs the same
entries on a tree with a rank-3 leaf and a square matrix as well.

SM3 entries have no Optax cross-check here: Optax's ``scale_by_sm3`` fails on scalar leaves (IndexError), and
the registry's parameters have one; tests/test_factored.py cross-checks SM3 with Optax on a tree without.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import optax
from registry import OPT, SCHED, WD_MASK, Entry, Sched, Sides

from gradtx.optimizers import factored as opt
from gradtx.testing.reference import factored as rf
from gradtx.transforms import factored as tx

same = Sides((tx, opt), (rf,), (optax,)).same


def capped_decay(step, decay_rate):
    """A decay_rate_fn with an upper bound (Zhai et al. 2021, arXiv 2106.04560): min(rate, 1 - (step+1)^-0.8)."""
    rate = jnp.asarray(decay_rate)
    t = jnp.asarray(step).astype(rate.dtype) + 1
    return jnp.minimum(rate, 1 - t**-0.8)


def ref_capped_decay(step, decay_rate):
    return min(decay_rate, 1.0 - math.pow(step + 1.0, -0.8))


# Every entry is per leaf (its reference takes {leaf path: array}) and leaf-structured (factored second moments,
# per-leaf update clipping and SM3's per-leaf accumulators: the flat run differs).
ENTRIES = [
    # --- blocks ---------------------------------------------------------------------------------------
    same("scale_by_factored_rms", per_leaf=True, leaf_structured=True),
    same("scale_by_factored_rms(min_dim_size_to_factor=3)", "scale_by_factored_rms", min_dim_size_to_factor=3,
         per_leaf=True, leaf_structured=True),
    same("scale_by_factored_rms(factored=False)", "scale_by_factored_rms", False, min_dim_size_to_factor=1,
         per_leaf=True, leaf_structured=True),
    same("scale_by_factored_rms(decay_rate, step_offset, epsilon)", "scale_by_factored_rms", True, 0.5, -5, 2, 1e-3,
         per_leaf=True, leaf_structured=True),
    Entry("scale_by_factored_rms(decay_rate_fn)",
          lambda: tx.scale_by_factored_rms(decay_rate=0.9, min_dim_size_to_factor=3, decay_rate_fn=capped_decay),
          lambda: rf.scale_by_factored_rms(decay_rate=0.9, min_dim_size_to_factor=3, decay_rate_fn=ref_capped_decay),
          lambda: optax.scale_by_factored_rms(decay_rate=0.9, min_dim_size_to_factor=3, decay_rate_fn=capped_decay),
          per_leaf=True, leaf_structured=True),
    same("scale_by_sm3", optax=None, per_leaf=True, leaf_structured=True),
    same("scale_by_sm3(b1, b2 < 1)", "scale_by_sm3", 0.5, 0.99, 1e-6, optax=None, per_leaf=True,
         leaf_structured=True),
    # --- optimizers -----------------------------------------------------------------------------------
    # Without a learning rate the step is rms(p) sized: params applied in the cross-check grow geometrically.
    same("adafactor", needs_params=True, kind=OPT, per_leaf=True, steps=40, leaf_structured=True),
    same("adafactor(lr, factored)", "adafactor", 0.05, min_dim_size_to_factor=3, needs_params=True, kind=OPT,
         per_leaf=True, leaf_structured=True),
    # The reference has no dtype_momentum argument.
    Entry("adafactor(schedule, momentum, weight decay, mask)",
          lambda: opt.adafactor(SCHED.gradtx(), 2, momentum=0.9, dtype_momentum=None, weight_decay_rate=0.01,
                                weight_decay_mask=WD_MASK),
          lambda mask=None: rf.adafactor(SCHED.ref(), 2, momentum=0.9, weight_decay_rate=0.01, weight_decay_mask=mask),
          lambda: optax.adafactor(SCHED.optax(), 2, momentum=0.9, dtype_momentum=None, weight_decay_rate=0.01,
                                  weight_decay_mask=WD_MASK),
          needs_params=True, uses_mask=True, kind=OPT, per_leaf=True, leaf_structured=True),
    same("adafactor(no clipping, no parameter scale, not factored, decay schedule)", "adafactor", 0.01, 1, 0.7, -3,
         False, None, weight_decay_rate=Sched("exponential_decay", 0.1, 20, 0.5), eps=1e-20, factored=False,
         needs_params=True, kind=OPT, per_leaf=True, leaf_structured=True),  # state: per-leaf factored slots
    same("sm3", "sm3", 0.1, optax=None, needs_params=False, kind=OPT, per_leaf=True, leaf_structured=True),
    same("sm3(momentum=None, schedule)", "sm3", SCHED, None, optax=None, kind=OPT, per_leaf=True,
         leaf_structured=True),
]
