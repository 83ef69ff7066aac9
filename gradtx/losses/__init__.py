"""Losses: Optax's 32 loss functions (``optax.losses``), same names, signatures, defaults and results.

One module per family (each imports only ``gradtx.base`` and its own helpers)::

    classification    sigmoid/softmax cross entropies (one-hot, integer, safe, Poly-1),
                      hinge/perceptron/sparsemax (binary and multiclass), sigmoid focal loss
    divergences       kl_divergence, kl_divergence_with_log_targets, generalized (convex) KL divergence
    ctc               ctc_loss, ctc_loss_with_forward_probs (connectionist temporal classification)
    regression        squared_error, l2_loss, huber_loss, log_cosh, cosine_similarity/distance
    ranking           ranking_softmax_loss
    segmentation      dice_loss, multiclass_generalized_dice_loss, binary_dice_loss
    self_supervised   ntxent, triplet_margin_loss
    smoothing         smooth_labels
    fenchel_young     make_fenchel_young_loss

Every loss is evaluated in a numerically stable form (log-sum-exp with the maximum subtracted, softplus for
log-sigmoids, ``jnp.where`` on values and arguments so a branch not taken puts no NaN into a gradient) and
returns one value per example (no reduction over the batch) unless its docstring says otherwise. Bad inputs
raise at call time with the loss, the argument and the valid range named; values are only checked when
concrete, so every loss works under ``jit``, ``vmap`` and ``grad``.
"""

from gradtx.losses._classification import (
    hinge_loss,
    multiclass_hinge_loss,
    multiclass_perceptron_loss,
    multiclass_sparsemax_loss,
    perceptron_loss,
    poly_loss_cross_entropy,
    safe_softmax_cross_entropy,
    sigmoid_binary_cross_entropy,
    sigmoid_focal_loss,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
    sparsemax_loss,
)
from gradtx.losses._ctc import ctc_loss, ctc_loss_with_forward_probs
from gradtx.losses._divergences import (
    convex_kl_divergence,
    generalized_kl_divergence,
    kl_divergence,
    kl_divergence_with_log_targets,
)
from gradtx.losses._fenchel_young import make_fenchel_young_loss
from gradtx.losses._ranking import ranking_softmax_loss
from gradtx.losses._regression import (
    cosine_distance,
    cosine_similarity,
    huber_loss,
    l2_loss,
    log_cosh,
    squared_error,
)
from gradtx.losses._segmentation import binary_dice_loss, dice_loss, multiclass_generalized_dice_loss
from gradtx.losses._self_supervised import ntxent, triplet_margin_loss
from gradtx.losses._smoothing import smooth_labels

__all__ = [
    "binary_dice_loss",
    "convex_kl_divergence",
    "cosine_distance",
    "cosine_similarity",
    "ctc_loss",
    "ctc_loss_with_forward_probs",
    "dice_loss",
    "generalized_kl_divergence",
    "hinge_loss",
    "huber_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "l2_loss",
    "log_cosh",
    "make_fenchel_young_loss",
    "multiclass_generalized_dice_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "ntxent",
    "perceptron_loss",
    "poly_loss_cross_entropy",
    "ranking_softmax_loss",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "sparsemax_loss",
    "squared_error",
    "triplet_margin_loss",
]
