"""Registry entries for the normalisation family: gradtx.transforms.normalization, gradtx.transforms.noise and
gradtx.optimizers.trust_ratio (collected by tests/registry.py).

Per-leaf maths (block norms, unit norms, trust ratios, DoG) use ``per_leaf=True``: the reference sees
``{leaf path: array}``. Not cross-checked here, and why (tests/test_normalization.py compares them with
Optax instead): ``add_noise`` and ``noisy_sgd`` (a typed PRNG key in the state, which the generic cross-check
cannot turn into numbers; no NumPy reference either), ``scale_by_distance_over_gradients`` (Optax keeps
``grad_sum_of_squares`` as ``jnp.zeros(1)``, float64 under x64 whatever the parameter dtype) and
``scale_by_param_block_norm/rms`` (see below).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
from registry import OPT, SCHED, WD_MASK, Entry, Sched, Sides

from gradtx.optimizers import trust_ratio
from gradtx.optimizers.trust_ratio import lamb, lars, noisy_sgd
from gradtx.testing.contract import default_params
from gradtx.testing.reference import normalization as rn
from gradtx.transforms import noise, normalization
from gradtx.transforms.noise import add_noise
from gradtx.transforms.normalization import scale_by_distance_over_gradients

same = Sides((normalization, noise, trust_ratio), (rn,), (optax,)).same

# WD_MASK ({"w": True, "b": False, "nested": {"s": False, "none": None}, "t": (True,)}) by leaf path, and a
# second mask for the trust ratio of lars.
WD_PATHS = {"['b']": False, "['nested']['s']": False, "['t'][0]": True, "['w']": True}
TR_MASK = {"w": True, "b": True, "nested": {"s": False, "none": None}, "t": (False,)}
TR_PATHS = {"['b']": True, "['nested']['s']": False, "['t'][0]": False, "['w']": True}


def _default_by_path():
    """default_params in float64 as {leaf path: array}: the x_0 the oracle's gradtx run is initialised with."""
    p = default_params(jnp.float64)
    return {"['b']": np.asarray(p["b"]), "['nested']['s']": np.asarray(p["nested"]["s"]),
            "['t'][0]": np.asarray(p["t"][0]), "['w']": np.asarray(p["w"])}


def _dog_ref(*args, **kwargs):
    return rn.scale_by_distance_over_gradients(*args, **kwargs).init(_default_by_path())


# Leaf-structured here: per-leaf norms, trust ratios and block statistics (one per buffer on the flat path), one
# random key per leaf (add_noise, noisy_sgd), the per-leaf NaN flags of zero_nans' state.
ENTRIES: list[Entry] = [
    # --- blocks ---------------------------------------------------------------------------------------
    same("clip_by_block_rms", "clip_by_block_rms", 0.5, per_leaf=True, leaf_structured=True),
    same("adaptive_grad_clip", "adaptive_grad_clip", 0.1, needs_params=True, per_leaf=True, leaf_structured=True),
    same("adaptive_grad_clip(eps)", "adaptive_grad_clip", 0.5, eps=2.0, needs_params=True, per_leaf=True,
         leaf_structured=True),
    same("normalize_by_update_norm"),
    same("normalize_by_update_norm(scale_factor)", "normalize_by_update_norm", -0.5, 1e-3),
    same("centralize", per_leaf=True, leaf_structured=True),
    # u = g ||p|| as the whole update makes the cross-check's params grow geometrically (to inf in 200 steps):
    # these two are compared with Optax in test_normalization.py, on fresh params each step.
    same("scale_by_param_block_norm", optax=None, needs_params=True, per_leaf=True, leaf_structured=True),
    same("scale_by_param_block_norm(min_scale)", "scale_by_param_block_norm", 2.0, optax=None, needs_params=True,
         per_leaf=True, leaf_structured=True),
    same("scale_by_param_block_rms", optax=None, needs_params=True, per_leaf=True, leaf_structured=True),
    same("scale_by_param_block_rms(min_scale)", "scale_by_param_block_rms", 1.0, optax=None, needs_params=True,
         per_leaf=True, leaf_structured=True),
    # trust_coefficient=1 makes |u| = |p| on a scalar leaf, so the contract's p + u lands on 0 or on rounding
    # noise around it, where the ratio jumps to 1: 0.5 keeps the runs comparable (defaults: test_normalization).
    same("scale_by_trust_ratio(trust_coefficient=0.5)", "scale_by_trust_ratio", trust_coefficient=0.5,
         needs_params=True, per_leaf=True, leaf_structured=True),
    same("scale_by_trust_ratio(min_norm, coefficient, eps)", "scale_by_trust_ratio", 0.5, 0.01, 1e-3,
         needs_params=True, per_leaf=True, leaf_structured=True),
    # DoG's reference starts from x_0.
    Entry("scale_by_distance_over_gradients", scale_by_distance_over_gradients, _dog_ref,
          needs_params=True, per_leaf=True, leaf_structured=True),
    Entry("scale_by_distance_over_gradients(param_dtype=None, global_scale)",
          lambda: scale_by_distance_over_gradients(1e-4, 1e-6, None, -1.0),
          lambda: _dog_ref(1e-4, 1e-6, None, -1.0), needs_params=True, per_leaf=True, leaf_structured=True),
    same("keep_params_nonnegative", needs_params=True),
    # NaN is zeroed (recorded in the state as a boolean), Inf passes: neither "guard" nor "propagate".
    same("zero_nans", nonfinite="any", leaf_structured=True),
    same("apply_every", "apply_every", 3),
    same("apply_every(k=1)", "apply_every", 1),
    Entry("add_noise", lambda: add_noise(0.01, 0.55, key=0), leaf_structured=True),
    # --- optimizers -----------------------------------------------------------------------------------
    same("lamb", "lamb", 1e-2, needs_params=True, per_leaf=True, kind=OPT, leaf_structured=True),
    # The per-leaf references take their masks by leaf path.
    Entry("lamb(weight_decay, mask)", lambda: lamb(1e-2, weight_decay=0.1, mask=WD_MASK),
          lambda mask=None: rn.lamb(1e-2, weight_decay=0.1, mask=WD_PATHS),
          lambda: optax.lamb(1e-2, weight_decay=0.1, mask=WD_MASK),
          needs_params=True, uses_mask=True, per_leaf=True, kind=OPT, leaf_structured=True),
    same("lamb(schedule, eps_root)", "lamb", SCHED, 0.8, 0.99, 1e-4, 1e-8, weight_decay=0.05, needs_params=True,
         per_leaf=True, kind=OPT, leaf_structured=True),
    same("lars", "lars", 0.1, needs_params=True, per_leaf=True, kind=OPT, leaf_structured=True),
    Entry("lars(masks, nesterov)",
          lambda: lars(0.1, 0.01, WD_MASK, 0.002, 1e-4, TR_MASK, 0.8, nesterov=True),
          lambda mask=None: rn.lars(0.1, 0.01, WD_PATHS, 0.002, 1e-4, TR_PATHS, 0.8, nesterov=True),
          lambda: optax.lars(0.1, 0.01, WD_MASK, 0.002, 1e-4, TR_MASK, 0.8, nesterov=True),
          needs_params=True, uses_mask=True, per_leaf=True, kind=OPT, leaf_structured=True),
    same("lars(schedule, weight_decay)", "lars", SCHED, 1e-3, needs_params=True, per_leaf=True, kind=OPT,
         leaf_structured=True),
    same("fromage", "fromage", 1e-2, needs_params=True, per_leaf=True, kind=OPT, leaf_structured=True),
    # A schedule that stays near 0.1: with lr ~ 1e-3, Optax's float32 1 / sqrt(1 + lr^2) - 1 keeps one
    # significant digit, more than the cross-check's tolerance (gradtx computes it without cancellation).
    same("fromage(schedule, min_norm)", "fromage", Sched("cosine_decay_schedule", 0.1, 200, 0.5), 0.5,
         needs_params=True, per_leaf=True, kind=OPT, leaf_structured=True),
    Entry("noisy_sgd", lambda: noisy_sgd(0.1, key=0), kind=OPT, leaf_structured=True),
]
