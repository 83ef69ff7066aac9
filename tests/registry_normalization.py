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
from registry import WD_MASK, Entry

from gradtx import schedules
from gradtx.optimizers.trust_ratio import fromage, lamb, lars, noisy_sgd
from gradtx.testing import reference as ref
from gradtx.testing import reference_normalization as rn
from gradtx.testing.contract import default_params
from gradtx.transforms.noise import add_noise, apply_every
from gradtx.transforms.normalization import (
    adaptive_grad_clip,
    centralize,
    clip_by_block_rms,
    keep_params_nonnegative,
    normalize_by_update_norm,
    scale_by_distance_over_gradients,
    scale_by_param_block_norm,
    scale_by_param_block_rms,
    scale_by_trust_ratio,
    zero_nans,
)

OPT = "optimizer"

# WD_MASK ({"w": True, "b": False, "nested": {"s": False, "none": None}, "t": (True,)}) by leaf path, and a
# second mask for the trust ratio of lars.
WD_PATHS = {"['b']": False, "['nested']['s']": False, "['t'][0]": True, "['w']": True}
TR_MASK = {"w": True, "b": True, "nested": {"s": False, "none": None}, "t": (False,)}
TR_PATHS = {"['b']": True, "['nested']['s']": False, "['t'][0]": False, "['w']": True}


def _sched():
    return schedules.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


def _ref_sched():
    return ref.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


def _opt_sched():
    return optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


def _default_by_path():
    """default_params in float64 as {leaf path: array}: the x_0 the oracle's gradtx run is initialised with."""
    p = default_params(jnp.float64)
    return {"['b']": np.asarray(p["b"]), "['nested']['s']": np.asarray(p["nested"]["s"]),
            "['t'][0]": np.asarray(p["t"][0]), "['w']": np.asarray(p["w"])}


def _dog_ref(*args, **kwargs):
    return rn.scale_by_distance_over_gradients(*args, **kwargs).init(_default_by_path())


ENTRIES: list[Entry] = [
    # --- blocks ---------------------------------------------------------------------------------------
    Entry("clip_by_block_rms", lambda: clip_by_block_rms(0.5), lambda: rn.clip_by_block_rms(0.5),
          lambda: optax.clip_by_block_rms(0.5), per_leaf=True),
    Entry("adaptive_grad_clip", lambda: adaptive_grad_clip(0.1), lambda: rn.adaptive_grad_clip(0.1),
          lambda: optax.adaptive_grad_clip(0.1), needs_params=True, per_leaf=True),
    Entry("adaptive_grad_clip(eps)", lambda: adaptive_grad_clip(0.5, eps=2.0),
          lambda: rn.adaptive_grad_clip(0.5, eps=2.0), lambda: optax.adaptive_grad_clip(0.5, eps=2.0),
          needs_params=True, per_leaf=True),
    Entry("normalize_by_update_norm", normalize_by_update_norm, rn.normalize_by_update_norm,
          optax.normalize_by_update_norm),
    Entry("normalize_by_update_norm(scale_factor)", lambda: normalize_by_update_norm(-0.5, 1e-3),
          lambda: rn.normalize_by_update_norm(-0.5, 1e-3), lambda: optax.normalize_by_update_norm(-0.5, 1e-3)),
    Entry("centralize", centralize, rn.centralize, optax.centralize, per_leaf=True),
    # u = g ||p|| as the whole update makes the cross-check's params grow geometrically (to inf in 200 steps):
    # these two are compared with Optax in test_normalization.py, on fresh params each step.
    Entry("scale_by_param_block_norm", scale_by_param_block_norm, rn.scale_by_param_block_norm,
          needs_params=True, per_leaf=True),
    Entry("scale_by_param_block_norm(min_scale)", lambda: scale_by_param_block_norm(2.0),
          lambda: rn.scale_by_param_block_norm(2.0),
          needs_params=True, per_leaf=True),
    Entry("scale_by_param_block_rms", scale_by_param_block_rms, rn.scale_by_param_block_rms,
          needs_params=True, per_leaf=True),
    Entry("scale_by_param_block_rms(min_scale)", lambda: scale_by_param_block_rms(1.0),
          lambda: rn.scale_by_param_block_rms(1.0),
          needs_params=True, per_leaf=True),
    # trust_coefficient=1 makes |u| = |p| on a scalar leaf, so the contract's p + u lands on 0 or on rounding
    # noise around it, where the ratio jumps to 1: 0.5 keeps the runs comparable (defaults: test_normalization).
    Entry("scale_by_trust_ratio(trust_coefficient=0.5)", lambda: scale_by_trust_ratio(trust_coefficient=0.5),
          lambda: rn.scale_by_trust_ratio(trust_coefficient=0.5),
          lambda: optax.scale_by_trust_ratio(trust_coefficient=0.5), needs_params=True, per_leaf=True),
    Entry("scale_by_trust_ratio(min_norm, coefficient, eps)", lambda: scale_by_trust_ratio(0.5, 0.01, 1e-3),
          lambda: rn.scale_by_trust_ratio(0.5, 0.01, 1e-3), lambda: optax.scale_by_trust_ratio(0.5, 0.01, 1e-3),
          needs_params=True, per_leaf=True),
    Entry("scale_by_distance_over_gradients", scale_by_distance_over_gradients, _dog_ref,
          needs_params=True, per_leaf=True),
    Entry("scale_by_distance_over_gradients(param_dtype=None, global_scale)",
          lambda: scale_by_distance_over_gradients(1e-4, 1e-6, None, -1.0),
          lambda: _dog_ref(1e-4, 1e-6, None, -1.0), needs_params=True, per_leaf=True),
    Entry("keep_params_nonnegative", keep_params_nonnegative, rn.keep_params_nonnegative,
          optax.keep_params_nonnegative, needs_params=True),
    # NaN is zeroed (recorded in the state as a boolean), Inf passes: neither "guard" nor "propagate".
    Entry("zero_nans", zero_nans, rn.zero_nans, optax.zero_nans, nonfinite="any"),
    Entry("apply_every", lambda: apply_every(3), lambda: rn.apply_every(3), lambda: optax.apply_every(3)),
    Entry("apply_every(k=1)", lambda: apply_every(1), lambda: rn.apply_every(1), lambda: optax.apply_every(1)),
    Entry("add_noise", lambda: add_noise(0.01, 0.55, key=0)),
    # --- optimizers -----------------------------------------------------------------------------------
    Entry("lamb", lambda: lamb(1e-2), lambda: rn.lamb(1e-2), lambda: optax.lamb(1e-2),
          needs_params=True, per_leaf=True, kind=OPT),
    Entry("lamb(weight_decay, mask)", lambda: lamb(1e-2, weight_decay=0.1, mask=WD_MASK),
          lambda mask=None: rn.lamb(1e-2, weight_decay=0.1, mask=WD_PATHS),
          lambda: optax.lamb(1e-2, weight_decay=0.1, mask=WD_MASK),
          needs_params=True, uses_mask=True, per_leaf=True, kind=OPT),
    Entry("lamb(schedule, eps_root)", lambda: lamb(_sched(), 0.8, 0.99, 1e-4, 1e-8, weight_decay=0.05),
          lambda: rn.lamb(_ref_sched(), 0.8, 0.99, 1e-4, 1e-8, weight_decay=0.05),
          lambda: optax.lamb(_opt_sched(), 0.8, 0.99, 1e-4, 1e-8, weight_decay=0.05),
          needs_params=True, per_leaf=True, kind=OPT),
    Entry("lars", lambda: lars(0.1), lambda: rn.lars(0.1), lambda: optax.lars(0.1),
          needs_params=True, per_leaf=True, kind=OPT),
    Entry("lars(masks, nesterov)",
          lambda: lars(0.1, 0.01, WD_MASK, 0.002, 1e-4, TR_MASK, 0.8, nesterov=True),
          lambda mask=None: rn.lars(0.1, 0.01, WD_PATHS, 0.002, 1e-4, TR_PATHS, 0.8, nesterov=True),
          lambda: optax.lars(0.1, 0.01, WD_MASK, 0.002, 1e-4, TR_MASK, 0.8, nesterov=True),
          needs_params=True, uses_mask=True, per_leaf=True, kind=OPT),
    Entry("lars(schedule, weight_decay)", lambda: lars(_sched(), 1e-3),
          lambda: rn.lars(_ref_sched(), 1e-3), lambda: optax.lars(_opt_sched(), 1e-3),
          needs_params=True, per_leaf=True, kind=OPT),
    Entry("fromage", lambda: fromage(1e-2), lambda: rn.fromage(1e-2), lambda: optax.fromage(1e-2),
          needs_params=True, per_leaf=True, kind=OPT),
    # A schedule that stays near 0.1: with lr ~ 1e-3, Optax's float32 1 / sqrt(1 + lr^2) - 1 keeps one
    # significant digit, more than the cross-check's tolerance (gradtx computes it without cancellation).
    Entry("fromage(schedule, min_norm)", lambda: fromage(schedules.cosine_decay_schedule(0.1, 200, 0.5), 0.5),
          lambda: rn.fromage(ref.cosine_decay_schedule(0.1, 200, 0.5), 0.5),
          lambda: optax.fromage(optax.cosine_decay_schedule(0.1, 200, 0.5), 0.5),
          needs_params=True, per_leaf=True, kind=OPT),
    Entry("noisy_sgd", lambda: noisy_sgd(0.1, key=0), kind=OPT),
]
