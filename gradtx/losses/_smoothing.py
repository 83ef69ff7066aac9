"""Label smoothing (Optax's ``optax.losses.smooth_labels``)."""

from __future__ import annotations

from typing import cast

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from gradtx.losses import _common as c

__all__ = ["smooth_labels"]


def smooth_labels(
    labels: ArrayLike,
    alpha: ArrayLike,
    *,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Label smoothing: ``(1 - alpha) * labels + alpha / K`` with ``K`` the number of classes.

    Mixes the targets with the uniform distribution over the ``K`` classes along ``axis`` (or over the
    ``K = sum(where)`` valid classes when a mask is given); a probability vector stays one. Smoothed targets
    discourage over-confident logits (Szegedy et al., CVPR 2016; Muller, Kornblith & Hinton, *When does label
    smoothing help?*, NeurIPS 2019).

    Args:
      labels: floating one-hot (or probability) array.
      alpha: smoothing factor in [0, 1] (0 leaves the labels unchanged, 1 gives the uniform distribution).
      axis: the class axis or axes (default -1), or ``None`` for all axes.
      where: optional boolean mask of the valid classes (broadcastable to ``labels``).

    Returns:
      The smoothed labels, of the shape of ``labels``.

    Raises:
      TypeError: (a ``LossInputError``, also a ``ValueError``) if ``labels`` is not floating.
      ValueError: if a concrete ``alpha`` is outside [0, 1].

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> [round(float(v), 4) for v in gradtx.losses.smooth_labels(jnp.array([0.0, 1.0, 0.0, 0.0]), 0.2)]
      [0.05, 0.85, 0.05, 0.05]
    """
    c.check_floating("smooth_labels", "labels", labels)
    c.check_scalar_range("smooth_labels", "alpha", alpha, low=0.0, high=1.0)
    labels = jnp.asarray(labels)
    count: int | jax.Array
    if where is None:
        count = jnp.size(labels, axis)
    else:
        count = jnp.sum(jnp.asarray(where), axis=axis, keepdims=True)
    return cast(jax.Array, (1.0 - alpha) * labels + alpha / count)
