"""Registry entries for the Adam family (gradtx.transforms.adam_family, gradtx.optimizers.adam_family).

``complex_ok`` follows Optax 0.2.8 (its alias tests run every one of these on complex parameters except Adan).
The conjugation convention is Optax's: updates are conjugated gradients, first moments average them as they
are, second moments and maxima use ``|g|^2 = g conj(g)`` (``|g|`` for Adamax).

RAdam settings keep ``rho_k`` at least 4e-3 away from the threshold at every step, so float32 and float64
take the same branch.
"""

from __future__ import annotations

import optax
from registry import WD_MASK, Entry

from gradtx import schedules
from gradtx.optimizers import adam_family as opt
from gradtx.testing import reference as ref_base
from gradtx.testing import reference_adam_family as ref
from gradtx.transforms import adam_family as tx

OPT = "optimizer"


def _sched():
    return schedules.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


def _ref_sched():
    return ref_base.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


def _opt_sched():
    return optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


ENTRIES = [
    # --- blocks ---------------------------------------------------------------------------------------
    Entry("scale_by_adamax", tx.scale_by_adamax, ref.scale_by_adamax, optax.scale_by_adamax, complex_ok=True),
    Entry("scale_by_adamax(b1, b2, eps)", lambda: tx.scale_by_adamax(0.8, 0.99, 1e-6),
          lambda: ref.scale_by_adamax(0.8, 0.99, 1e-6), lambda: optax.scale_by_adamax(0.8, 0.99, 1e-6),
          complex_ok=True),
    Entry("scale_by_amsgrad", tx.scale_by_amsgrad, ref.scale_by_amsgrad, optax.scale_by_amsgrad, complex_ok=True),
    Entry("scale_by_amsgrad(eps_root)", lambda: tx.scale_by_amsgrad(0.8, 0.99, 1e-6, 1e-8),
          lambda: ref.scale_by_amsgrad(0.8, 0.99, 1e-6, 1e-8), lambda: optax.scale_by_amsgrad(0.8, 0.99, 1e-6, 1e-8),
          complex_ok=True),
    Entry("scale_by_amsgrad(paper, no bias correction)",
          lambda: tx.scale_by_amsgrad(bias_correction_mu=False, bias_correction_nu=False),
          lambda: ref.scale_by_amsgrad(bias_correction_mu=False, bias_correction_nu=False),
          lambda: optax.scale_by_amsgrad(bias_correction_mu=False, bias_correction_nu=False), complex_ok=True),
    Entry("scale_by_amsgrad(bias_correction_nu=False)",
          lambda: tx.scale_by_amsgrad(0.9, 0.99, bias_correction_nu=False),
          lambda: ref.scale_by_amsgrad(0.9, 0.99, bias_correction_nu=False),
          lambda: optax.scale_by_amsgrad(0.9, 0.99, bias_correction_nu=False), complex_ok=True),
    Entry("scale_by_belief", tx.scale_by_belief, ref.scale_by_belief, optax.scale_by_belief, complex_ok=True),
    Entry("scale_by_belief(nesterov, eps, eps_root)", lambda: tx.scale_by_belief(0.8, 0.99, 1e-8, 1e-10, nesterov=True),
          lambda: ref.scale_by_belief(0.8, 0.99, 1e-8, 1e-10, nesterov=True),
          lambda: optax.scale_by_belief(0.8, 0.99, 1e-8, 1e-10, nesterov=True), complex_ok=True),
    Entry("scale_by_yogi", tx.scale_by_yogi, ref.scale_by_yogi, optax.scale_by_yogi, complex_ok=True),
    Entry("scale_by_yogi(eps_root, initial_accumulator_value)", lambda: tx.scale_by_yogi(0.8, 0.99, 1e-4, 1e-8, 1e-3),
          lambda: ref.scale_by_yogi(0.8, 0.99, 1e-4, 1e-8, 1e-3),
          lambda: optax.scale_by_yogi(0.8, 0.99, 1e-4, 1e-8, 1e-3), complex_ok=True),
    Entry("scale_by_radam", tx.scale_by_radam, ref.scale_by_radam, optax.scale_by_radam, complex_ok=True),
    Entry("scale_by_radam(nesterov, eps_root)", lambda: tx.scale_by_radam(0.8, 0.99, 1e-6, 1e-8, nesterov=True),
          lambda: ref.scale_by_radam(0.8, 0.99, 1e-6, 1e-8, nesterov=True),
          lambda: optax.scale_by_radam(0.8, 0.99, 1e-6, 1e-8, nesterov=True), complex_ok=True),
    Entry("scale_by_radam(b2=0.9, threshold=6)", lambda: tx.scale_by_radam(0.9, 0.9, threshold=6.0),
          lambda: ref.scale_by_radam(0.9, 0.9, threshold=6.0), lambda: optax.scale_by_radam(0.9, 0.9, threshold=6.0),
          complex_ok=True),
    Entry("scale_by_adan", tx.scale_by_adan, ref.scale_by_adan, optax.scale_by_adan),
    Entry("scale_by_adan(b1, b2, b3, eps, eps_root)", lambda: tx.scale_by_adan(0.9, 0.8, 0.95, 1e-6, 1e-8),
          lambda: ref.scale_by_adan(0.9, 0.8, 0.95, 1e-6, 1e-8),
          lambda: optax.scale_by_adan(0.9, 0.8, 0.95, 1e-6, 1e-8)),
    # --- optimizers -----------------------------------------------------------------------------------
    Entry("adamax", lambda: opt.adamax(1e-2), lambda: ref.adamax(1e-2), lambda: optax.adamax(1e-2), kind=OPT,
          complex_ok=True),
    Entry("adamaxw", lambda: opt.adamaxw(1e-2, weight_decay=0.1), lambda: ref.adamaxw(1e-2, weight_decay=0.1),
          lambda: optax.adamaxw(1e-2, weight_decay=0.1), needs_params=True, kind=OPT, complex_ok=True),
    Entry("adamaxw(mask)", lambda: opt.adamaxw(1e-2, 0.8, 0.99, weight_decay=0.1, mask=WD_MASK),
          lambda mask=None: ref.adamaxw(1e-2, 0.8, 0.99, weight_decay=0.1, mask=mask),
          lambda: optax.adamaxw(1e-2, 0.8, 0.99, weight_decay=0.1, mask=WD_MASK),
          needs_params=True, uses_mask=True, kind=OPT),
    Entry("amsgrad", lambda: opt.amsgrad(1e-2), lambda: ref.amsgrad(1e-2), lambda: optax.amsgrad(1e-2), kind=OPT,
          complex_ok=True),
    Entry("amsgrad(paper, eps_root)",
          lambda: opt.amsgrad(1e-2, eps_root=1e-8, bias_correction_mu=False, bias_correction_nu=False),
          lambda: ref.amsgrad(1e-2, eps_root=1e-8, bias_correction_mu=False, bias_correction_nu=False),
          lambda: optax.amsgrad(1e-2, eps_root=1e-8, bias_correction_mu=False, bias_correction_nu=False),
          kind=OPT, complex_ok=True),
    Entry("adabelief", lambda: opt.adabelief(1e-2), lambda: ref.adabelief(1e-2), lambda: optax.adabelief(1e-2),
          kind=OPT, complex_ok=True),
    Entry("adabelief(nesterov)", lambda: opt.adabelief(1e-2, 0.8, 0.99, 1e-8, 0.0, nesterov=True),
          lambda: ref.adabelief(1e-2, 0.8, 0.99, 1e-8, 0.0, nesterov=True),
          lambda: optax.adabelief(1e-2, 0.8, 0.99, 1e-8, 0.0, nesterov=True), kind=OPT, complex_ok=True),
    Entry("yogi", lambda: opt.yogi(1e-2), lambda: ref.yogi(1e-2), lambda: optax.yogi(1e-2), kind=OPT,
          complex_ok=True),
    Entry("yogi(b1, b2, eps)", lambda: opt.yogi(1e-2, 0.8, 0.99, 1e-5), lambda: ref.yogi(1e-2, 0.8, 0.99, 1e-5),
          lambda: optax.yogi(1e-2, 0.8, 0.99, 1e-5), kind=OPT, complex_ok=True),
    Entry("radam", lambda: opt.radam(1e-2), lambda: ref.radam(1e-2), lambda: optax.radam(1e-2), kind=OPT,
          complex_ok=True),
    Entry("radam(nesterov, eps_root)", lambda: opt.radam(1e-2, 0.8, 0.99, 1e-6, 1e-8, nesterov=True),
          lambda: ref.radam(1e-2, 0.8, 0.99, 1e-6, 1e-8, nesterov=True),
          lambda: optax.radam(1e-2, 0.8, 0.99, 1e-6, 1e-8, nesterov=True), kind=OPT, complex_ok=True),
    Entry("radam(schedule)", lambda: opt.radam(_sched()), lambda: ref.radam(_ref_sched()),
          lambda: optax.radam(_opt_sched()), kind=OPT, complex_ok=True),
    Entry("adan", lambda: opt.adan(1e-2), lambda: ref.adan(1e-2), lambda: optax.adan(1e-2), needs_params=True,
          kind=OPT),
    Entry("adan(weight_decay)", lambda: opt.adan(1e-2, weight_decay=0.1), lambda: ref.adan(1e-2, weight_decay=0.1),
          lambda: optax.adan(1e-2, weight_decay=0.1), needs_params=True, kind=OPT),
    Entry("adan(mask, eps_root=0)", lambda: opt.adan(1e-2, 0.9, 0.8, 0.95, 1e-6, 0.0, 0.1, WD_MASK),
          lambda mask=None: ref.adan(1e-2, 0.9, 0.8, 0.95, 1e-6, 0.0, 0.1, mask),
          lambda: optax.adan(1e-2, 0.9, 0.8, 0.95, 1e-6, 0.0, 0.1, WD_MASK),
          needs_params=True, uses_mask=True, kind=OPT),
]
