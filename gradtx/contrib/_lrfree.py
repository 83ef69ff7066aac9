"""Learning-rate-free and learning-rate-adapting optimizers (``gradtx.contrib``; names, signatures, defaults and
state fields as in ``optax.contrib``), one family per module:

    reduce_on_plateau    u = s g, s *= factor after ``patience`` evaluations without improvement   (_plateau)
    scale_by_dog, dog    u = rbar_k / sqrt(G_k + eps) g        (Ivgi et al. 2023, DoG)                (_dog)
    scale_by_dowg, dowg  u = rbar_k^2 / (sqrt(v_k) + eps) g    (Khaled et al. 2023, DoWG)             (_dog)
    prodigy              Adam(W) with step d_k lr_k, d_k the Prodigy estimate (Mishchenko & Defazio 2023)
    dadapt_adamw         Adam(W) with step d_k lr_k, d_k the D-Adaptation estimate                 (_dadapt)
    scale_by_cocob       coordinate-wise coin betting          (Orabona & Tommasi 2017)      (_coin_betting)
    mechanize            a base optimizer's scale learned by coin betting (Cutkosky et al. 2023) (_coin_betting)
    momo, momo_adam      momentum with a Polyak-type model step (Schaipp et al. 2023)              (_momo)

Scalar statistics (distances, sums of squared norms, D estimates, the plateau scale and best value) are kept
in ``tree.widest_real_dtype(params)`` (float32 or wider), not in the lowest parameter dtype as Optax does: a
bfloat16 model keeps float32 statistics, and parameters mixing float16 and bfloat16 (which have no lowest
dtype: Optax's ``init`` raises) work, also under ``jax.eval_shape``. Per-parameter moments are stored in each
parameter's dtype and computed in float32 or wider. Whole-tree reductions: :mod:`gradtx.contrib._common`.
"""

from gradtx.contrib._coin_betting import COCOBState, MechanicState, cocob, mechanize, scale_by_cocob
from gradtx.contrib._dadapt import DAdaptAdamWState, ProdigyState, dadapt_adamw, prodigy
from gradtx.contrib._dog import DoGState, DoWGState, InitStep, dog, dowg, scale_by_dog, scale_by_dowg
from gradtx.contrib._momo import MomoAdamState, MomoState, momo, momo_adam
from gradtx.contrib._plateau import ReduceLROnPlateauState, reduce_on_plateau

__all__ = [
    "COCOBState",
    "DAdaptAdamWState",
    "DoGState",
    "DoWGState",
    "InitStep",
    "MechanicState",
    "MomoAdamState",
    "MomoState",
    "ProdigyState",
    "ReduceLROnPlateauState",
    "cocob",
    "dadapt_adamw",
    "dog",
    "dowg",
    "mechanize",
    "momo",
    "momo_adam",
    "prodigy",
    "reduce_on_plateau",
    "scale_by_cocob",
    "scale_by_dog",
    "scale_by_dowg",
]
