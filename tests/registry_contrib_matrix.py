"""Registry entries for the matrix optimizers of gradtx.contrib (Muon, SOAP), collected by tests/registry.py.

Every entry is per leaf (``per_leaf=True``: the reference, ``gradtx.testing.reference_contrib_matrix``, sees
``{leaf path: array}``) and leaf-structured (the flat path packs the matrices into vectors, which are not
orthogonalized). ``scale_by_muon`` is not cross-checked with Optax here: Optax's block accepts only trees whose
every leaf is a matrix (default_params has vectors and a scalar); tests/test_contrib_matrix.py compares it with
Optax on matrices and on a rank-4 tensor instead. The ``muon`` recipes are cross-checked.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from registry import Entry

from gradtx import schedules
from gradtx.contrib._galore import galore, scale_by_galore
from gradtx.contrib._muon import MuonDimensionNumbers, muon, scale_by_muon
from gradtx.contrib._soap import scale_by_soap, soap
from gradtx.testing import reference as ref_base
from gradtx.testing import reference_contrib_matrix as rm

OPT = "optimizer"


def last_two_axes(tree):
    """Dimension numbers for every leaf of rank >= 2 (the last two axes form the matrix), None for the others."""
    return jax.tree.map(lambda x: MuonDimensionNumbers(-2, -1) if jnp.ndim(x) >= 2 else None, tree)


def _sched():
    return schedules.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


ENTRIES = [
    Entry("scale_by_muon", lambda: scale_by_muon(weight_dimension_numbers=last_two_axes),
          lambda: rm.scale_by_muon(weight_dimension_numbers=rm.last_two_axes), per_leaf=True, leaf_structured=True),
    Entry("scale_by_muon(dion, aol, adaptive, nesterov=False)",
          lambda: scale_by_muon("dion", beta=0.9, nesterov=False, adaptive=True, preconditioning="aol",
                                weight_dimension_numbers=last_two_axes),
          lambda: rm.scale_by_muon("dion", beta=0.9, nesterov=False, adaptive=True, preconditioning="aol",
                                   weight_dimension_numbers=rm.last_two_axes),
          per_leaf=True, leaf_structured=True),
    Entry("muon", lambda: muon(1e-2), lambda: rm.muon(1e-2), lambda: optax.contrib.muon(1e-2), kind=OPT,
          per_leaf=True, leaf_structured=True),
    Entry("muon(dion, consistent_rms, weight decay, adam lr, nesterov=False)",
          lambda: muon(1e-2, "dion", weight_decay=0.1, nesterov=False, adam_learning_rate=1e-3, adam_weight_decay=0.1,
                       consistent_rms=0.2),
          lambda: rm.muon(1e-2, "dion", weight_decay=0.1, nesterov=False, adam_learning_rate=1e-3,
                          adam_weight_decay=0.1, consistent_rms=0.2),
          lambda: optax.contrib.muon(1e-2, "dion", weight_decay=0.1, nesterov=False, adam_learning_rate=1e-3,
                                     adam_weight_decay=0.1, consistent_rms=0.2),
          needs_params=True, kind=OPT, per_leaf=True, leaf_structured=True),
    Entry("muon(schedule, schatten, ns_steps=3)",
          lambda: muon(_sched(), ns_steps=3, preconditioning="schatten", beta=0.9),
          lambda: rm.muon(ref_base.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001), ns_steps=3,
                          preconditioning="schatten", beta=0.9),
          lambda: optax.contrib.muon(optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001), ns_steps=3,
                                     preconditioning="schatten", beta=0.9),
          kind=OPT, per_leaf=True, leaf_structured=True),
]

ENTRIES += [
    Entry("scale_by_soap", scale_by_soap, rm.scale_by_soap, per_leaf=True, leaf_structured=True),
    Entry("scale_by_soap(b1, b2, shampoo_beta, precondition_frequency=3)",
          lambda: scale_by_soap(0.9, 0.99, 0.9, 1e-6, precondition_frequency=3),
          lambda: rm.scale_by_soap(0.9, 0.99, 0.9, 1e-6, precondition_frequency=3), per_leaf=True,
          leaf_structured=True),
    Entry("soap", lambda: soap(1e-2), lambda: rm.soap(1e-2), needs_params=True, kind=OPT, per_leaf=True,
          leaf_structured=True),
    Entry("soap(schedule, max_precond_dim=3, precondition_1d)",
          lambda: soap(_sched(), weight_decay=0.0, max_precond_dim=3, precondition_1d=True),
          lambda: rm.soap(ref_base.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001), weight_decay=0.0,
                          max_precond_dim=3, precondition_1d=True), kind=OPT, per_leaf=True, leaf_structured=True),
]

# GaLore is cross-checked with Optax in tests/test_contrib_matrix.py (up to the signs of the singular vectors,
# which gradtx fixes and Optax leaves to LAPACK: the generic cross-check compares states exactly).
ENTRIES += [
    Entry("scale_by_galore(rank=2, update_proj_gap=25)", lambda: scale_by_galore(2, 25),
          lambda: rm.scale_by_galore(2, 25), per_leaf=True, leaf_structured=True),
    Entry("galore(weight_decay, scale, update_proj_gap=40)",
          lambda: galore(1e-2, update_proj_gap=40, scale=0.5, weight_decay=0.1),
          lambda: rm.galore(1e-2, update_proj_gap=40, scale=0.5, weight_decay=0.1), needs_params=True, kind=OPT,
          per_leaf=True, leaf_structured=True),
]
