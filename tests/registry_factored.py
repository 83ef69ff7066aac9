"""Registry entries of the memory-efficient family: factored second moments (Adafactor) and SM3.

Every entry is per-leaf (``per_leaf=True``): its reference, ``gradtx.testing.reference_factored``, takes and
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
from registry import WD_MASK, Entry

from gradtx import schedules
from gradtx.optimizers.factored import adafactor, sm3
from gradtx.testing import reference as ref
from gradtx.testing import reference_factored as rf
from gradtx.transforms.factored import scale_by_factored_rms, scale_by_sm3

OPT = "optimizer"


def capped_decay(step, decay_rate):
    """A decay_rate_fn with an upper bound (Zhai et al. 2021, arXiv 2106.04560): min(rate, 1 - (step+1)^-0.8)."""
    rate = jnp.asarray(decay_rate)
    t = jnp.asarray(step).astype(rate.dtype) + 1
    return jnp.minimum(rate, 1 - t**-0.8)


def ref_capped_decay(step, decay_rate):
    return min(decay_rate, 1.0 - math.pow(step + 1.0, -0.8))


def _lr():
    return schedules.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


def _ref_lr():
    return ref.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


def _opt_lr():
    return optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


ENTRIES = [
    # --- blocks ---------------------------------------------------------------------------------------
    Entry("scale_by_factored_rms", scale_by_factored_rms, rf.scale_by_factored_rms, optax.scale_by_factored_rms,
          per_leaf=True),
    Entry("scale_by_factored_rms(min_dim_size_to_factor=3)", lambda: scale_by_factored_rms(min_dim_size_to_factor=3),
          lambda: rf.scale_by_factored_rms(min_dim_size_to_factor=3),
          lambda: optax.scale_by_factored_rms(min_dim_size_to_factor=3), per_leaf=True),
    Entry("scale_by_factored_rms(factored=False)", lambda: scale_by_factored_rms(False, min_dim_size_to_factor=1),
          lambda: rf.scale_by_factored_rms(False, min_dim_size_to_factor=1),
          lambda: optax.scale_by_factored_rms(False, min_dim_size_to_factor=1), per_leaf=True),
    Entry("scale_by_factored_rms(decay_rate, step_offset, epsilon)",
          lambda: scale_by_factored_rms(True, 0.5, -5, 2, 1e-3),
          lambda: rf.scale_by_factored_rms(True, 0.5, -5, 2, 1e-3),
          lambda: optax.scale_by_factored_rms(True, 0.5, -5, 2, 1e-3), per_leaf=True),
    Entry("scale_by_factored_rms(decay_rate_fn)",
          lambda: scale_by_factored_rms(decay_rate=0.9, min_dim_size_to_factor=3, decay_rate_fn=capped_decay),
          lambda: rf.scale_by_factored_rms(decay_rate=0.9, min_dim_size_to_factor=3, decay_rate_fn=ref_capped_decay),
          lambda: optax.scale_by_factored_rms(decay_rate=0.9, min_dim_size_to_factor=3, decay_rate_fn=capped_decay),
          per_leaf=True),
    Entry("scale_by_sm3", scale_by_sm3, rf.scale_by_sm3, per_leaf=True),
    Entry("scale_by_sm3(b1, b2 < 1)", lambda: scale_by_sm3(0.5, 0.99, 1e-6), lambda: rf.scale_by_sm3(0.5, 0.99, 1e-6),
          per_leaf=True),
    # --- optimizers -----------------------------------------------------------------------------------
    # Without a learning rate the step is rms(p) sized: params applied in the cross-check grow geometrically.
    Entry("adafactor", adafactor, rf.adafactor, optax.adafactor, needs_params=True, kind=OPT, per_leaf=True,
          steps=40),
    Entry("adafactor(lr, factored)", lambda: adafactor(0.05, min_dim_size_to_factor=3),
          lambda: rf.adafactor(0.05, min_dim_size_to_factor=3), lambda: optax.adafactor(0.05, min_dim_size_to_factor=3),
          needs_params=True, kind=OPT, per_leaf=True),
    Entry("adafactor(schedule, momentum, weight decay, mask)",
          lambda: adafactor(_lr(), 2, momentum=0.9, dtype_momentum=None, weight_decay_rate=0.01,
                            weight_decay_mask=WD_MASK),
          lambda mask=None: rf.adafactor(_ref_lr(), 2, momentum=0.9, weight_decay_rate=0.01, weight_decay_mask=mask),
          lambda: optax.adafactor(_opt_lr(), 2, momentum=0.9, dtype_momentum=None, weight_decay_rate=0.01,
                                  weight_decay_mask=WD_MASK),
          needs_params=True, uses_mask=True, kind=OPT, per_leaf=True),
    Entry("adafactor(no clipping, no parameter scale, not factored, decay schedule)",
          lambda: adafactor(0.01, 1, 0.7, -3, False, None, weight_decay_rate=schedules.exponential_decay(0.1, 20, 0.5),
                            eps=1e-20, factored=False),
          lambda: rf.adafactor(0.01, 1, 0.7, -3, False, None, weight_decay_rate=ref.exponential_decay(0.1, 20, 0.5),
                               eps=1e-20, factored=False),
          lambda: optax.adafactor(0.01, 1, 0.7, -3, False, None,
                                  weight_decay_rate=optax.exponential_decay(0.1, 20, 0.5), eps=1e-20, factored=False),
          needs_params=True, kind=OPT, per_leaf=True),
    Entry("sm3", lambda: sm3(0.1), lambda: rf.sm3(0.1), needs_params=False, kind=OPT, per_leaf=True),
    Entry("sm3(momentum=None, schedule)", lambda: sm3(_lr(), None), lambda: rf.sm3(_ref_lr(), None), kind=OPT,
          per_leaf=True),
]
