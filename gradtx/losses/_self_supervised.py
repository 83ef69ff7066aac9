"""Self-supervised (metric learning) losses: NT-Xent and the triplet margin loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from gradtx.losses import _common as c
from gradtx.losses._regression import cosine_similarity

__all__ = ["ntxent", "triplet_margin_loss"]


def ntxent(embeddings: ArrayLike, labels: ArrayLike, temperature: ArrayLike = 0.07) -> jax.Array:
    r"""Normalized temperature-scaled cross entropy (NT-Xent; Chen et al., *SimCLR*, ICML 2020).

    With ``S_ij = cos(e_i, e_j) / temperature``, for every positive pair ``(i, j)`` (``i != j``, same label):
    ``l_ij = -log(exp(S_ij) / (exp(S_ij) + sum_{k: label_k != label_i} exp(S_ik)))``. The result is the mean
    of ``l_ij`` over all positive pairs (NaN when there is none, as in Optax). The log-sum-exp over negatives is
    evaluated stably, so small temperatures do not overflow or underflow.

    Args:
      embeddings: floating array ``[batch, features]``.
      labels: array ``[batch]``: embeddings with equal labels are positive pairs (e.g. ``[0, 0, 1, 1]``).
      temperature: the temperature, > 0 (default 0.07).

    Returns:
      A scalar.

    Raises:
      TypeError: (a ``LossInputError``, also a ``ValueError``) if ``embeddings`` is not floating.
      ValueError: if ``labels`` and ``embeddings`` differ in their leading dimension, or a concrete
        ``temperature`` is not positive.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> e = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
      >>> round(float(gradtx.losses.ntxent(e, jnp.array([0, 0, 1, 1]), temperature=1.0)), 4)  # log(1 + 2e^-1)
      0.5514
    """
    fn = "ntxent"
    c.check_floating(fn, "embeddings", embeddings)
    c.check_scalar_range(fn, "temperature", temperature, low=0.0, low_open=True)
    embeddings, labels = jnp.asarray(embeddings), jnp.asarray(labels)
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"{fn}(embeddings of shape {embeddings.shape}, labels of shape {labels.shape}): labels and "
            "embeddings must have the same leading dimension"
        )
    eps = jnp.finfo(embeddings.dtype).eps  # type: ignore[no-untyped-call]  # ml_dtypes' finfo.__new__ is unannotated
    sim = cosine_similarity(embeddings[None, :, :], embeddings[:, None, :], epsilon=eps) / temperature
    n = embeddings.shape[0]
    same = labels[:, None] == labels[None, :]
    positive = same & ~jnp.eye(n, dtype=bool)
    negative = ~same
    # log of the sum over the negatives of each anchor (-inf when there is none), with safe gradients.
    top = lax.stop_gradient(jnp.max(jnp.where(negative, sim, -jnp.inf), axis=1, keepdims=True))
    top = jnp.where(jnp.isfinite(top), top, jnp.zeros_like(top))
    neg_sum = jnp.sum(jnp.where(negative, jnp.exp(jnp.where(negative, sim - top, 0.0)), 0.0), axis=1, keepdims=True)
    has_neg = neg_sum > 0
    log_neg = jnp.where(has_neg, jnp.log(jnp.where(has_neg, neg_sum, 1.0)) + top, -jnp.inf)
    pair_loss = jnp.logaddexp(sim, log_neg) - sim
    total = jnp.sum(jnp.where(positive, pair_loss, 0.0))
    return total / jnp.sum(positive)


def triplet_margin_loss(
    anchors: ArrayLike,
    positives: ArrayLike,
    negatives: ArrayLike,
    axis: int = -1,
    norm_degree: ArrayLike = 2,
    margin: ArrayLike = 1.0,
    eps: ArrayLike = 1e-6,
) -> jax.Array:
    r"""Triplet margin loss ``max(d(a, p) - d(a, n) + margin, 0)`` (Balntas et al., BMVC 2016).

    The distance is ``d(x, y) = (sum |x - y|^q + eps)^(1/q)`` over ``axis`` with ``q = norm_degree``; ``eps``
    keeps its gradient finite when ``x = y``.

    Args:
      anchors: floating array ``[batch, features]`` (any shape; features along ``axis``).
      positives: floating array of the same shape (should be close to the anchors).
      negatives: floating array of the same shape (should be far from them).
      axis: the feature axis (default -1).
      norm_degree: the degree ``q`` of the norm, > 0 (default 2, Euclidean).
      margin: the margin by which ``d(a, n)`` should exceed ``d(a, p)`` (default 1.0).
      eps: added inside the root, >= 0 (default 1e-6).

    Returns:
      The loss per triplet: the input shape without ``axis``.

    Raises:
      TypeError: (a ``LossInputError``, also a ``ValueError``) if an input is not floating.
      ValueError: if a concrete ``norm_degree`` is not positive or ``eps`` is negative.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> a = jnp.array([[0.0, 0.0], [1.0, 1.0]])
      >>> p = jnp.array([[0.1, 0.1], [1.1, 1.1]])
      >>> n = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> [round(float(v), 4) for v in gradtx.losses.triplet_margin_loss(a, p, n, margin=1.0)]
      [0.1414, 0.1414]
    """
    fn = "triplet_margin_loss"
    for name, value in (("anchors", anchors), ("positives", positives), ("negatives", negatives)):
        c.check_floating(fn, name, value)
    c.check_scalar_range(fn, "norm_degree", norm_degree, low=0.0, low_open=True)
    c.check_scalar_range(fn, "eps", eps, low=0.0)
    c.check_scalar_range(fn, "margin", margin)
    a, p, n = jnp.asarray(anchors), jnp.asarray(positives), jnp.asarray(negatives)

    def distance(x: jax.Array, y: jax.Array) -> jax.Array:
        return (jnp.sum(jnp.abs(x - y) ** norm_degree, axis=axis) + eps) ** (1.0 / norm_degree)

    return jnp.maximum(distance(a, p) - distance(a, n) + margin, 0.0)
