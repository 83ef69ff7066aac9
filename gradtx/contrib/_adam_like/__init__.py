"""Adam-like research optimizers: ADOPT, AdEMAMix (and its simplified form), MADGRAD, ACProp, Cautious, AdaBound
and AMSBound, MARS (AdamW form), Adam-mini, LaProp, StableAdamW and Adam-atan2; each a block (``scale_by_*``) and
a recipe (one ``chain``), one module per optimizer, answered here and in ``gradtx.contrib``.

``k`` is the 1-based step, ``g`` the incoming gradient, ``lr`` the learning rate (a number or a schedule of the
0-based count). The blocks with moments state only their fields, moments and direction
(:class:`gradtx.transforms.adam_base.AdamLike`). Arithmetic runs in float32 or wider (``gradtx.tree.Leaf``);
states are stored in the parameter dtype (``mu_dtype`` and the keyword-only ``nu_dtype`` override the first and
second moment's where the block has them: ADOPT, AdEMAMix, Adam-mini, LaProp, StableAdamW, Adam-atan2); each step
uses the unrounded new moments and rounds them only to store them; outputs keep the gradient's dtype.

=======================  =================================================================================
adopt                    scale_by_adopt -> scale_by_learning_rate                     (Taniguchi et al. 2024)
ademamix                 scale_by_ademamix -> add_decayed_weights -> lr              (Pagliardini et al. 2024)
simplified_ademamix      scale_by_simplified_ademamix -> add_decayed_weights -> lr      (Morwani et al. 2025)
madgrad                  add_decayed_weights -> scale_by_madgrad (lr inside)       (Defazio & Jelassi 2021)
acprop                   scale_by_acprop -> add_decayed_weights -> lr                    (Zhuang et al. 2021)
cautious(tx)             tx, then the update masked where it disagrees with g in sign    (Liang et al. 2024)
adabound / amsbound      add_decayed_weights (L2) -> scale_by_adabound (lr inside)          (Luo et al. 2019)
mars_adamw               scale_by_mars -> scale_by_adam -> add_decayed_weights -> lr      (Yuan et al. 2024)
adam_mini                scale_by_adam_mini -> add_decayed_weights -> lr                  (Zhang et al. 2024)
laprop                   scale_by_laprop -> add_decayed_weights -> lr                     (Ziyin et al. 2020)
stable_adamw             scale_by_stable_adamw -> add_decayed_weights -> lr            (Wortsman et al. 2023)
adam_atan2               scale_by_adam_atan2 -> add_decayed_weights -> lr               (Everett et al. 2024)
=======================  =================================================================================

The Optax ones (adopt, ademamix, simplified_ademamix, madgrad, acprop) keep ``optax.contrib``'s names, signatures,
defaults and state fields; their conventions (which the float64 references in
``gradtx.testing.reference.contrib_adam`` follow) and the differences from the papers are written in each
docstring.
"""

from gradtx.contrib._adam_like.acprop import acprop, scale_by_acprop
from gradtx.contrib._adam_like.adabound import (
    ScaleByAdaBoundState,
    ScaleByAmsBoundState,
    adabound,
    amsbound,
    scale_by_adabound,
)
from gradtx.contrib._adam_like.adam_atan2 import adam_atan2, scale_by_adam_atan2
from gradtx.contrib._adam_like.adam_mini import ScaleByAdamMiniState, adam_mini, scale_by_adam_mini
from gradtx.contrib._adam_like.ademamix import (
    ScaleByAdemamixState,
    ScaleBySimplifiedAdEMAMixState,
    ademamix,
    ademamix_b3_schedule,
    scale_by_ademamix,
    scale_by_simplified_ademamix,
    simplified_ademamix,
)
from gradtx.contrib._adam_like.adopt import adopt, quarter_power, scale_by_adopt
from gradtx.contrib._adam_like.cautious import cautious, cautious_adamw
from gradtx.contrib._adam_like.laprop import laprop, scale_by_laprop
from gradtx.contrib._adam_like.madgrad import MadgradState, madgrad, scale_by_madgrad
from gradtx.contrib._adam_like.mars import ScaleByMarsState, mars_adamw, scale_by_mars
from gradtx.contrib._adam_like.stable_adamw import scale_by_stable_adamw, stable_adamw

__all__ = [
    "MadgradState",
    "ScaleByAdaBoundState",
    "ScaleByAdamMiniState",
    "ScaleByAdemamixState",
    "ScaleByAmsBoundState",
    "ScaleByMarsState",
    "ScaleBySimplifiedAdEMAMixState",
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
    "laprop",
    "madgrad",
    "mars_adamw",
    "quarter_power",
    "scale_by_acprop",
    "scale_by_adabound",
    "scale_by_adam_atan2",
    "scale_by_adam_mini",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_laprop",
    "scale_by_madgrad",
    "scale_by_mars",
    "scale_by_simplified_ademamix",
    "scale_by_stable_adamw",
    "simplified_ademamix",
    "stable_adamw",
]
