"""Segmentation losses: soft Dice / Tversky, generalized Dice and binary Dice.

Inputs are ``[batch, *spatial, classes]``; the overlap is summed over the spatial axes (by default all but
the first and the last) and the per-class losses are reduced over the class axis. Names, signatures and
defaults are Optax's (``optax.losses``).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from gradtx.losses import _common as c

__all__ = ["binary_dice_loss", "dice_loss", "multiclass_generalized_dice_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    class_weights: ArrayLike | None = None,
    smooth: ArrayLike = 1.0,
    alpha: ArrayLike = 0.5,
    beta: ArrayLike = 0.5,
    apply_softmax: bool = True,
    reduction: str = "mean",
    ignore_background: bool = False,
    axis: int | Sequence[int] | None = None,
) -> jax.Array:
    r"""Soft Dice loss per class (Milletari et al., *V-Net*, 3DV 2016), with Tversky weights.

    For class ``k``, with ``p`` the predicted probabilities, ``t`` the targets and sums over ``axis``:
    ``I = sum p t``, ``P = sum p``, ``T = sum t`` and
    ``loss_k = 1 - (I + smooth) / (I + alpha (P - I) + beta (T - I) + smooth)``.
    ``alpha = beta = 1/2`` is the Dice coefficient ``2 I / (P + T)``; other values weigh false positives
    (``alpha``) against false negatives (``beta``): the Tversky index (Salehi et al. 2017). Probabilities are
    ``softmax`` over the class axis, or ``sigmoid`` when there is a single channel.

    Args:
      predictions: logits ``[batch, ..., classes]`` (or probabilities when ``apply_softmax=False``); a
        binary input may omit the class axis (``[batch, ...]``) when ``targets`` has it.
      targets: one-hot (or soft) targets of the same shape (a missing class axis is added).
      class_weights: optional weights ``[classes]`` multiplying the per-class losses.
      smooth: additive smoothing of numerator and denominator, >= 0 (default 1.0).
      alpha: weight of the false positives, >= 0 (default 0.5).
      beta: weight of the false negatives, >= 0 (default 0.5).
      apply_softmax: map logits to probabilities (default True); if False, ``predictions`` must already
        be probabilities (multi-class rows summing to 1; checked when the values are concrete).
      reduction: over the classes: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per-class losses).
      ignore_background: leave class 0 out (when there are several classes).
      axis: the axes to sum the overlap over (default: all but the first and the last).

    Returns:
      ``[batch]`` for ``"mean"``/``"sum"`` (the leading shape when ``axis`` is given), ``[batch, classes]``
      for ``"none"``.

    Raises:
      ValueError: on mismatched shapes, an unknown ``reduction``, negative ``smooth``/``alpha``/``beta``,
        ``class_weights`` not of rank 1, or (concrete inputs, ``apply_softmax=False``) rows not summing to 1.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> probs = jnp.array([[[0.9, 0.1], [0.2, 0.8]]])  # one image, two pixels, two classes
      >>> targets = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
      >>> loss = gradtx.losses.dice_loss(probs, targets, apply_softmax=False, smooth=0.0, reduction="none")
      >>> [[round(float(v), 4) for v in row] for row in loss]  # 1 - 2*0.9/2.1, 1 - 2*0.8/1.9
      [[0.1429, 0.1579]]
    """
    fn = "dice_loss"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}(reduction={reduction!r}): reduction must be one of {_REDUCTIONS}")
    for name, value in (("smooth", smooth), ("alpha", alpha), ("beta", beta)):
        c.check_scalar_range(fn, name, value, low=0.0)
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    if predictions.ndim == targets.ndim - 1:
        predictions = predictions[..., None]
    if targets.ndim == predictions.ndim - 1:
        targets = targets[..., None]
    c.check_same_shape(fn, "predictions", predictions, "targets", targets)
    single_channel = predictions.shape[-1] == 1
    if not apply_softmax and not single_channel:
        try:  # concrete inputs only; under jit the check is skipped
            sums = np.sum(np.asarray(predictions, dtype=np.float64), axis=-1)
        except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            sums = None
        if sums is not None and sums.size and not np.allclose(sums, 1.0, rtol=1e-5):
            raise ValueError(
                f"{fn}(apply_softmax=False): predictions must be valid probability distributions summing to 1 "
                f"over the class axis; the sums range over [{sums.min():.6f}, {sums.max():.6f}]"
            )
    if apply_softmax:
        probs = jax.nn.sigmoid(predictions) if single_channel else c.masked_softmax(predictions, axis=-1)
    else:
        probs = predictions
    if axis is None:
        axis = tuple(range(1, probs.ndim - 1))
    elif not isinstance(axis, (int, tuple)):
        axis = tuple(int(a) for a in axis)
    inter = jnp.sum(probs * targets, axis=axis)
    pred_mass = jnp.sum(probs, axis=axis)
    target_mass = jnp.sum(targets, axis=axis)
    denominator = inter + alpha * (pred_mass - inter) + beta * (target_mass - inter) + smooth
    loss = 1.0 - (inter + smooth) / denominator
    if class_weights is not None:
        c.check_rank(fn, "class_weights", class_weights, 1)
        loss = loss * jnp.asarray(class_weights)
    if ignore_background and probs.shape[-1] > 1:
        loss = loss[..., 1:]
    if reduction == "mean":
        return jnp.mean(loss, axis=-1)
    if reduction == "sum":
        return jnp.sum(loss, axis=-1)
    return loss


def multiclass_generalized_dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: ArrayLike = 1.0,
    apply_softmax: bool = True,
    ignore_background: bool = False,
) -> jax.Array:
    r"""Generalized Dice loss (Sudre et al., DLMIA 2017): Dice with inverse-squared-frequency class weights.

    With ``f_k`` the total target mass of class ``k`` over the whole batch, ``w_k = 1 / (f_k^2 + 1e-7)``,
    rescaled so that the weights average 1; the result is the mean over batch and classes of
    ``w_k * dice_k`` (:func:`dice_loss` per class, ``alpha = beta = 1/2``). Rare classes weigh more.

    Args:
      predictions: logits (or probabilities) ``[batch, ..., classes]``.
      targets: one-hot targets of the same shape.
      smooth: additive smoothing, >= 0 (default 1.0).
      apply_softmax: map logits to probabilities (default True).
      ignore_background: leave class 0 out of the mean (its weight still counts in the rescaling).

    Returns:
      A scalar.

    Raises:
      ValueError: if the shapes differ, or as :func:`dice_loss`.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> targets = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
      >>> loss = gradtx.losses.multiclass_generalized_dice_loss(10.0 * targets, targets)
      >>> round(float(loss), 4)
      0.0
    """
    c.check_same_shape("multiclass_generalized_dice_loss", "predictions", predictions, "targets", targets)
    targets = jnp.asarray(targets)
    freq = jnp.sum(targets, axis=tuple(range(targets.ndim - 1)))
    weights = 1.0 / (freq**2 + 1e-7)
    weights = weights * (weights.shape[0] / jnp.sum(weights))
    per_class = dice_loss(
        predictions,
        targets,
        class_weights=weights,
        smooth=smooth,
        apply_softmax=apply_softmax,
        reduction="none",
        ignore_background=ignore_background,
    )
    return jnp.mean(per_class)


def binary_dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: ArrayLike = 1.0,
    apply_sigmoid: bool = True,
) -> jax.Array:
    r"""Dice loss of a binary segmentation: :func:`dice_loss` on one sigmoid channel.

    ``1 - (2 I + smooth') / (P + T + smooth')`` in the notation of :func:`dice_loss` (there written with
    ``alpha = beta = 1/2``), per example.

    Args:
      predictions: logits (or probabilities when ``apply_sigmoid=False``) ``[batch, ...]`` or
        ``[batch, ..., 1]``.
      targets: binary targets of the same shape.
      smooth: additive smoothing, >= 0 (default 1.0).
      apply_sigmoid: map logits to probabilities with the sigmoid (default True).

    Returns:
      The loss per example, ``[batch]``.

    Raises:
      ValueError: as :func:`dice_loss`.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> probs = jnp.array([[0.5, 0.5, 0.0, 0.0]])
      >>> targets = jnp.array([[1.0, 1.0, 0.0, 0.0]])
      >>> loss = gradtx.losses.binary_dice_loss(probs, targets, smooth=0.0, apply_sigmoid=False)
      >>> [round(float(v), 4) for v in loss]  # 1 - 2 * 1 / (1 + 2)
      [0.3333]
    """
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    if predictions.ndim == targets.ndim and predictions.shape[-1] != 1:
        predictions, targets = predictions[..., None], targets[..., None]
    return dice_loss(predictions, targets, smooth=smooth, apply_softmax=apply_sigmoid, reduction="mean")
