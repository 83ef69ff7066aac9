"""Registry entries for the Adam family (gradtx.transforms.adam_family, gradtx.optimizers.adam_family).

``complex_ok`` follows Optax 0.2.8 (its alias tests run every one of these on complex parameters except Adan).
The conjugation convention is Optax's: updates are conjugated gradients, first moments average them as they
are, second moments and maxima use ``|g|^2 = g conj(g)`` (``|g|`` for Adamax).

RAdam settings keep ``rho_k`` at least 4e-3 away from the threshold at every step, so float32 and float64
take the same branch.
"""

from __future__ import annotations

import optax
from registry import MASK, OPT, SCHED, Sides

from gradtx.optimizers import adam_family as opt
from gradtx.testing.reference import adam_family as ref
from gradtx.transforms import adam_family as tx

same = Sides((tx, opt), (ref,), (optax,)).same

ENTRIES = [
    # --- blocks ---------------------------------------------------------------------------------------
    same("scale_by_adamax", complex_ok=True),
    same("scale_by_adamax(b1, b2, eps)", "scale_by_adamax", 0.8, 0.99, 1e-6, complex_ok=True),
    same("scale_by_amsgrad", complex_ok=True),
    same("scale_by_amsgrad(eps_root)", "scale_by_amsgrad", 0.8, 0.99, 1e-6, 1e-8, complex_ok=True),
    same("scale_by_amsgrad(paper, no bias correction)", "scale_by_amsgrad", bias_correction_mu=False,
         bias_correction_nu=False, complex_ok=True),
    same("scale_by_amsgrad(bias_correction_nu=False)", "scale_by_amsgrad", 0.9, 0.99, bias_correction_nu=False,
         complex_ok=True),
    same("scale_by_belief", complex_ok=True),
    same("scale_by_belief(nesterov, eps, eps_root)", "scale_by_belief", 0.8, 0.99, 1e-8, 1e-10, nesterov=True,
         complex_ok=True),
    same("scale_by_yogi", complex_ok=True),
    same("scale_by_yogi(eps_root, initial_accumulator_value)", "scale_by_yogi", 0.8, 0.99, 1e-4, 1e-8, 1e-3,
         complex_ok=True),
    same("scale_by_radam", complex_ok=True),
    same("scale_by_radam(nesterov, eps_root)", "scale_by_radam", 0.8, 0.99, 1e-6, 1e-8, nesterov=True,
         complex_ok=True),
    same("scale_by_radam(b2=0.9, threshold=6)", "scale_by_radam", 0.9, 0.9, threshold=6.0, complex_ok=True),
    same("scale_by_adan"),
    same("scale_by_adan(b1, b2, b3, eps, eps_root)", "scale_by_adan", 0.9, 0.8, 0.95, 1e-6, 1e-8),
    # --- optimizers -----------------------------------------------------------------------------------
    same("adamax", "adamax", 1e-2, kind=OPT, complex_ok=True),
    same("adamaxw", "adamaxw", 1e-2, weight_decay=0.1, needs_params=True, kind=OPT, complex_ok=True),
    same("adamaxw(mask)", "adamaxw", 1e-2, 0.8, 0.99, weight_decay=0.1, mask=MASK, needs_params=True, kind=OPT,
         leaf_structured=True),
    same("amsgrad", "amsgrad", 1e-2, kind=OPT, complex_ok=True),
    same("amsgrad(paper, eps_root)", "amsgrad", 1e-2, eps_root=1e-8, bias_correction_mu=False,
         bias_correction_nu=False, kind=OPT, complex_ok=True),
    same("adabelief", "adabelief", 1e-2, kind=OPT, complex_ok=True),
    same("adabelief(nesterov)", "adabelief", 1e-2, 0.8, 0.99, 1e-8, 0.0, nesterov=True, kind=OPT, complex_ok=True),
    same("yogi", "yogi", 1e-2, kind=OPT, complex_ok=True),
    same("yogi(b1, b2, eps)", "yogi", 1e-2, 0.8, 0.99, 1e-5, kind=OPT, complex_ok=True),
    same("radam", "radam", 1e-2, kind=OPT, complex_ok=True),
    same("radam(nesterov, eps_root)", "radam", 1e-2, 0.8, 0.99, 1e-6, 1e-8, nesterov=True, kind=OPT,
         complex_ok=True),
    same("radam(schedule)", "radam", SCHED, kind=OPT, complex_ok=True),
    same("adan", "adan", 1e-2, needs_params=True, kind=OPT),
    same("adan(weight_decay)", "adan", 1e-2, weight_decay=0.1, needs_params=True, kind=OPT),
    same("adan(mask, eps_root=0)", "adan", 1e-2, 0.9, 0.8, 0.95, 1e-6, 0.0, 0.1, MASK, needs_params=True, kind=OPT,
         leaf_structured=True),
]
