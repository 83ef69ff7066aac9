"""Registry entries for the matrix optimizers of gradtx.contrib (Muon, SOAP, GaLore), collected by tests/registry.py.

Every entry is per leaf (``per_leaf=True``: the reference, ``gradtx.testing.reference.contrib_matrix``, sees
``{leaf path: array}``) and leaf-structured (the flat path packs the matrices into vectors, which are not
orthogonalized). ``scale_by_muon`` is not cross-checked with Optax here: Optax's block accepts only trees whose
every leaf is a matrix (default_params has vectors and a scalar); tests/test_contrib_matrix.py compares it with
Optax on matrices and on a rank-4 tensor instead. The ``muon`` recipes are cross-checked.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from registry import OPT, SCHED, Entry, Sides

from gradtx.contrib import _galore, _muon, _soap
from gradtx.contrib._muon import MuonDimensionNumbers
from gradtx.testing.reference import contrib_matrix as rm

same = Sides((_muon, _soap, _galore), (rm,), (optax.contrib,)).same


def last_two_axes(tree):
    """Dimension numbers for every leaf of rank >= 2 (the last two axes form the matrix), None for the others."""
    return jax.tree.map(lambda x: MuonDimensionNumbers(-2, -1) if jnp.ndim(x) >= 2 else None, tree)


ENTRIES = [
    Entry("scale_by_muon", lambda: _muon.scale_by_muon(weight_dimension_numbers=last_two_axes),
          lambda: rm.scale_by_muon(weight_dimension_numbers=rm.last_two_axes), per_leaf=True, leaf_structured=True),
    Entry("scale_by_muon(dion, aol, adaptive, nesterov=False)",
          lambda: _muon.scale_by_muon("dion", beta=0.9, nesterov=False, adaptive=True, preconditioning="aol",
                                      weight_dimension_numbers=last_two_axes),
          lambda: rm.scale_by_muon("dion", beta=0.9, nesterov=False, adaptive=True, preconditioning="aol",
                                   weight_dimension_numbers=rm.last_two_axes), per_leaf=True, leaf_structured=True),
    same("muon", "muon", 1e-2, kind=OPT, per_leaf=True, leaf_structured=True),
    same("muon(dion, consistent_rms, weight decay, adam lr, nesterov=False)", "muon", 1e-2, "dion", weight_decay=0.1,
         nesterov=False, adam_learning_rate=1e-3, adam_weight_decay=0.1, consistent_rms=0.2, needs_params=True,
         kind=OPT, per_leaf=True, leaf_structured=True),
    same("muon(schedule, schatten, ns_steps=3)", "muon", SCHED, ns_steps=3, preconditioning="schatten", beta=0.9,
         kind=OPT, per_leaf=True, leaf_structured=True),
    # Keller Jordan's reference momentum (KellerJordan/Muon): no bias correction, plain AdamW on the other leaves;
    # not an Optax option (optax=None). tests/test_contrib_matrix.py checks it against the transcription.
    Entry("scale_by_muon(momentum_form='reference')",
          lambda: _muon.scale_by_muon(beta=0.9, momentum_form="reference", weight_dimension_numbers=last_two_axes),
          lambda: rm.scale_by_muon(beta=0.9, momentum_form="reference", weight_dimension_numbers=rm.last_two_axes),
          per_leaf=True, leaf_structured=True),
    same("muon(momentum_form='reference')", "muon", 1e-2, momentum_form="reference", optax=None, kind=OPT,
         per_leaf=True, leaf_structured=True),
    same("muon(momentum_form='reference', nesterov=False, weight decay)", "muon", 1e-2, eps=1e-7, weight_decay=0.1,
         nesterov=False, adam_weight_decay=0.05, momentum_form="reference", optax=None, needs_params=True, kind=OPT,
         per_leaf=True, leaf_structured=True),
]

ENTRIES += [
    same("scale_by_soap", optax=None, per_leaf=True, leaf_structured=True),
    same("scale_by_soap(b1, b2, shampoo_beta, precondition_frequency=3)", "scale_by_soap", 0.9, 0.99, 0.9, 1e-6,
         precondition_frequency=3, optax=None, per_leaf=True, leaf_structured=True),
    same("soap", "soap", 1e-2, optax=None, needs_params=True, kind=OPT, per_leaf=True, leaf_structured=True),
    same("soap(schedule, max_precond_dim=3, precondition_1d)", "soap", SCHED, weight_decay=0.0, max_precond_dim=3,
         precondition_1d=True, optax=None, kind=OPT, per_leaf=True, leaf_structured=True),
]

# GaLore is cross-checked with Optax in tests/test_contrib_matrix.py (up to the signs of the singular vectors,
# which gradtx fixes and Optax leaves to LAPACK: the generic cross-check compares states exactly).
ENTRIES += [
    same("scale_by_galore(rank=2, update_proj_gap=25)", "scale_by_galore", 2, 25, optax=None, per_leaf=True,
         leaf_structured=True),
    same("galore(weight_decay, scale, update_proj_gap=40)", "galore", 1e-2, update_proj_gap=40, scale=0.5,
         weight_decay=0.1, optax=None, needs_params=True, kind=OPT, per_leaf=True, leaf_structured=True),
    # The authors' projection types (jiaweizzhao/GaLore's GaLoreProjector); 'std' is their default, the shorter side.
    same("scale_by_galore(proj_type='std')", "scale_by_galore", 2, 25, proj_type="std", optax=None, per_leaf=True,
         leaf_structured=True),
    same("scale_by_galore(proj_type='left', update_proj_gap=10)", "scale_by_galore", 2, 10, proj_type="left",
         optax=None, per_leaf=True, leaf_structured=True),
    same("scale_by_galore(proj_type='right')", "scale_by_galore", 1, 25, proj_type="right", optax=None,
         per_leaf=True, leaf_structured=True),
    # 'full' at rank 1: at a refresh the r x r gradient U^T G V is diagonal up to roundoff, which Adam scales up to
    # ~1e-8 relative (eps = 1e-8) differently for each SVD implementation, above the float64 oracle's tolerance.
    same("galore(proj_type='full', weight_decay)", "galore", 1e-2, 1, update_proj_gap=30, weight_decay=0.1,
         proj_type="full", optax=None, needs_params=True, kind=OPT, per_leaf=True, leaf_structured=True),
]
