"""Registry entries for LaProp, StableAdamW and Adam-atan2 (gradtx/contrib/_adam_like/laprop.py, stable_adamw.py,
adam_atan2.py), checked against their float64 references in ``gradtx.testing.reference.contrib_round2``.

Optax has none of the three (optax 0.2.8): no cross-check. StableAdamW's update clipping is one RMS per leaf, so
its reference takes ``{leaf path: array}`` (``per_leaf``) and its flat run differs (``leaf_structured``); the
entries with a ``MASK`` are leaf-structured too. One entry per block with defaults and one per recipe with
non-default options (a schedule, weight decay, a mask, LaProp's ``b1 > b2``, a clip threshold below 1 so that
StableAdamW's clipping acts on random gradients, Adam-atan2's ``a`` and ``b``), so that every block runs through
every tier with both.
"""

from __future__ import annotations

import optax
from registry import MASK, OPT, SCHED, Sides

import gradtx
from gradtx.contrib import _adam_like as c
from gradtx.testing import reference as ref_base
from gradtx.testing.reference import contrib_round2 as ref

same = Sides((c, gradtx), (ref, ref_base), (optax.contrib, optax)).same

ENTRIES = [
    # --- LaProp -------------------------------------------------------------------------------------------
    same("scale_by_laprop", optax=None),
    same("laprop(schedule, b1 > b2, weight_decay)", "laprop", SCHED, 0.95, 0.9, 1e-8, weight_decay=0.1,
         optax=None, needs_params=True, kind=OPT),
    # --- StableAdamW --------------------------------------------------------------------------------------
    same("scale_by_stable_adamw", optax=None, per_leaf=True, leaf_structured=True),
    same("stable_adamw(clip_threshold, weight_decay, mask)", "stable_adamw", 1e-2, 0.9, 0.95, 1e-8,
         weight_decay=0.1, mask=MASK, clip_threshold=0.5, optax=None, needs_params=True, kind=OPT, per_leaf=True,
         leaf_structured=True),
    # --- Adam-atan2 ---------------------------------------------------------------------------------------
    same("scale_by_adam_atan2", optax=None),
    same("adam_atan2(schedule, a, b, weight_decay, mask)", "adam_atan2", SCHED, 0.8, 0.99, weight_decay=0.1,
         mask=MASK, a=1.0, b=2.0, optax=None, needs_params=True, kind=OPT, leaf_structured=True),
]
