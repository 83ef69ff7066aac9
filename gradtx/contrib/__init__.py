"""Research optimizers (``gradtx.contrib``; names, signatures and state fields as in ``optax.contrib``).

Each lives in its own module of this package, composed from gradtx's blocks where the maths allows, with its
equations, its paper and any deviation from Optax in the docstring. Each is checked against a float64 NumPy
reference written from the paper's pseudo-code (``gradtx.testing.reference.contrib_*``), against
``optax.contrib`` where Optax has it (same gradient stream), through the contract suite, and on the problem
zoo (``tests/test_contrib_*.py`` and the registry tiers).

Recipes (full optimizers; ``scale_by_*`` is the block without the learning rate, where there is one):

==============================================  ===========================================================
Adam-like                                       acprop, adabound, amsbound, adam_atan2, adam_mini, ademamix,
                                                simplified_ademamix, adopt, cautious / cautious_adamw,
                                                laprop, madgrad, mars_adamw, stable_adamw, swats
learning-rate free or adapting                  cocob, mechanize, dadapt_adamw, prodigy, dog, dowg, momo,
                                                momo_adam, reduce_on_plateau, schedule_free (_sgd, _adamw)
matrix and second-order                         muon (orthogonalize_via_newton_schulz, scale_by_shape),
                                                galore, kron (PSGD), shampoo, soap, sophia
                                                (hutchinson_estimator_diag_hessian)
wrappers and others                             sam (normalize), split_real_and_imaginary, dpsgd
                                                (differentially_private_aggregate)
==============================================  ===========================================================

Every recipe validates its options when built (``adopt(0.1, b1=1.2)`` raises ``ValueError: adopt(b1=1.2):
b1 must be in [0, 1)``) and returns a transformation with ``init`` and ``update``; those that read the
parameters (``update(updates, state, params)``) or the loss (``value=``, ``obj_fn=``) say so.

Examples:
  >>> import jax.numpy as jnp
  >>> import gradtx
  >>> opt = gradtx.contrib.adopt(learning_rate=0.1)
  >>> state = opt.init(jnp.zeros(2))
  >>> updates, state = opt.update(jnp.array([1.0, -2.0]), state)
  >>> print(updates)  # ADOPT's first step only sets its second moment
  [0. 0.]
"""

from gradtx.contrib._adam_like import (
    MadgradState,
    ScaleByAdaBoundState,
    ScaleByAdamMiniState,
    ScaleByAdemamixState,
    ScaleByAmsBoundState,
    ScaleByMarsState,
    ScaleBySimplifiedAdEMAMixState,
    acprop,
    adabound,
    adam_atan2,
    adam_mini,
    ademamix,
    ademamix_b3_schedule,
    adopt,
    amsbound,
    cautious,
    cautious_adamw,
    laprop,
    madgrad,
    mars_adamw,
    scale_by_acprop,
    scale_by_adabound,
    scale_by_adam_atan2,
    scale_by_adam_mini,
    scale_by_ademamix,
    scale_by_adopt,
    scale_by_laprop,
    scale_by_madgrad,
    scale_by_mars,
    scale_by_simplified_ademamix,
    scale_by_stable_adamw,
    simplified_ademamix,
    stable_adamw,
)
from gradtx.contrib._coin_betting import (
    COCOBState,
    MechanicState,
    cocob,
    mechanize,
    scale_by_cocob,
)
from gradtx.contrib._complex_valued import (
    SplitRealAndImaginaryArrays,
    SplitRealAndImaginaryState,
    split_real_and_imaginary,
)
from gradtx.contrib._dadapt import (
    DAdaptAdamWState,
    ProdigyState,
    dadapt_adamw,
    prodigy,
)
from gradtx.contrib._dog import (
    DoGState,
    DoWGState,
    dog,
    dowg,
    scale_by_dog,
    scale_by_dowg,
)
from gradtx.contrib._galore import (
    GaLoreDimensionNumbers,
    GaLoreState,
    galore,
    scale_by_galore,
)
from gradtx.contrib._momo import (
    MomoAdamState,
    MomoState,
    momo,
    momo_adam,
)
from gradtx.contrib._muon import (
    DION_NS_COEFFS,
    MUON_NS_COEFFS,
    NS_COEFFS_PRESETS,
    MuonDimensionNumbers,
    MuonState,
    muon,
    orthogonalize_via_newton_schulz,
    scale_by_muon,
    scale_by_shape,
)
from gradtx.contrib._plateau import (
    ReduceLROnPlateauState,
    reduce_on_plateau,
)
from gradtx.contrib._privacy import (
    DifferentiallyPrivateAggregateState,
    differentially_private_aggregate,
    dpsgd,
)
from gradtx.contrib._psgd import (
    ScaleByKronState,
    kron,
    scale_by_kron,
)
from gradtx.contrib._sam import (
    NormalizeState,
    SAMState,
    normalize,
    sam,
)
from gradtx.contrib._schedule_free import (
    ScheduleFreeState,
    schedule_free,
    schedule_free_adamw,
    schedule_free_eval_params,
    schedule_free_sgd,
)
from gradtx.contrib._shampoo import (
    ScaleByShampooState,
    scale_by_shampoo,
    shampoo,
)
from gradtx.contrib._soap import (
    ScaleBySoapState,
    scale_by_soap,
    soap,
)
from gradtx.contrib._sophia import (
    HutchinsonState,
    SophiaState,
    hutchinson_estimator_diag_hessian,
    scale_by_sophia,
    sophia,
)
from gradtx.contrib._swats import (
    ScaleBySwatsState,
    swats,
)

__all__ = [
    "acprop",
    "adabound",
    "adam_atan2",
    "adam_mini",
    "ademamix",
    "ademamix_b3_schedule",
    "adopt",
    "amsbound",
    "cautious",
    "cautious_adamw",
    "cocob",
    "COCOBState",
    "dadapt_adamw",
    "DAdaptAdamWState",
    "differentially_private_aggregate",
    "DifferentiallyPrivateAggregateState",
    "DION_NS_COEFFS",
    "dog",
    "DoGState",
    "dowg",
    "DoWGState",
    "dpsgd",
    "galore",
    "GaLoreDimensionNumbers",
    "GaLoreState",
    "hutchinson_estimator_diag_hessian",
    "HutchinsonState",
    "kron",
    "laprop",
    "madgrad",
    "MadgradState",
    "mars_adamw",
    "MechanicState",
    "mechanize",
    "momo",
    "momo_adam",
    "MomoAdamState",
    "MomoState",
    "muon",
    "MUON_NS_COEFFS",
    "MuonDimensionNumbers",
    "MuonState",
    "normalize",
    "NormalizeState",
    "NS_COEFFS_PRESETS",
    "orthogonalize_via_newton_schulz",
    "prodigy",
    "ProdigyState",
    "reduce_on_plateau",
    "ReduceLROnPlateauState",
    "sam",
    "SAMState",
    "scale_by_acprop",
    "scale_by_adabound",
    "scale_by_adam_atan2",
    "scale_by_adam_mini",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_cocob",
    "scale_by_dog",
    "scale_by_dowg",
    "scale_by_galore",
    "scale_by_kron",
    "scale_by_laprop",
    "scale_by_madgrad",
    "scale_by_mars",
    "scale_by_muon",
    "scale_by_shape",
    "scale_by_shampoo",
    "scale_by_simplified_ademamix",
    "scale_by_soap",
    "scale_by_stable_adamw",
    "scale_by_sophia",
    "ScaleByAdaBoundState",
    "ScaleByAdamMiniState",
    "ScaleByAdemamixState",
    "ScaleByAmsBoundState",
    "ScaleByKronState",
    "ScaleByMarsState",
    "ScaleByShampooState",
    "ScaleBySimplifiedAdEMAMixState",
    "ScaleBySoapState",
    "ScaleBySwatsState",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
    "ScheduleFreeState",
    "shampoo",
    "simplified_ademamix",
    "soap",
    "sophia",
    "SophiaState",
    "split_real_and_imaginary",
    "SplitRealAndImaginaryArrays",
    "SplitRealAndImaginaryState",
    "stable_adamw",
    "swats",
]
