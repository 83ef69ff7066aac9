"""Ranking losses: the cost of the ranking induced by item scores against graded relevance labels.

A ranking loss works on the last axis (a list of items); leading axes are a batch of lists, reduced by
``reduce_fn`` (the mean by default). Names, signatures and defaults are Optax's (``optax.losses``).

>>> import jax
>>> import jax.numpy as jnp
>>> import gradtx
>>> scores = jnp.array([2.0, 1.0, 3.0])
>>> labels = jnp.array([1.0, 0.0, 0.0])
>>> print(f"{gradtx.losses.ranking_softmax_loss(scores, labels):.3f}")
1.408

A batch of lists with a mask of valid items (the masked third item of the first list is ignored):

>>> scores = jnp.array([[2.0, 1.0, 0.0], [1.0, 0.5, 1.5]])
>>> labels = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
>>> where = jnp.array([[True, True, False], [True, True, True]])
>>> print(f"{gradtx.losses.ranking_softmax_loss(scores, labels, where=where):.3f}")
0.497

Gradients come from the usual JAX transformations:

>>> grads = jax.grad(gradtx.losses.ranking_softmax_loss)(jnp.array([2.0, 1.0, 3.0]), jnp.array([1.0, 0.0, 0.0]))
>>> print([round(float(g), 3) for g in grads])
[-0.755, 0.09, 0.665]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from gradtx.losses import _common as c

__all__ = ["ranking_softmax_loss"]


def _reduce(loss: jax.Array, where: Any, reduce_fn: Callable[..., Any] | None) -> jax.Array:
    """Reduce the per-list losses; a mean over no valid list is 0 (not NaN) unless a loss itself is NaN."""
    if reduce_fn is None:
        return loss if where is None else jnp.where(where, loss, jnp.zeros_like(loss))
    out = jnp.asarray(reduce_fn(loss, where=where))
    if reduce_fn is jnp.mean:
        spurious = jnp.isnan(out) & ~jnp.any(jnp.isnan(loss))
        out = jnp.where(spurious, jnp.zeros_like(out), out)
    return out


def ranking_softmax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduce_fn: Callable[..., Any] | None = jnp.mean,
) -> jax.Array:
    r"""Listwise softmax loss ``-sum_i y_i log(exp(s_i) / sum_j exp(s_j))`` per list, then reduced.

    The softmax cross entropy between the item scores ``s`` and the (unnormalized) relevance labels ``y``
    of each list (Cao et al., *Learning to Rank: From Pairwise Approach to Listwise Approach*, ICML 2007;
    Bruch et al., ICTIR 2019). Items outside ``where`` take no part in the softmax nor in the sum; ``weights``
    multiply the labels. A list with no valid item has loss 0.

    Args:
      logits: floating array ``[..., list_size]`` of item scores.
      labels: array ``[..., list_size]`` of relevance labels (cast to ``logits``'s dtype).
      where: optional boolean array ``[..., list_size]``: the valid items.
      weights: optional array ``[..., list_size]`` of per-item weights.
      reduce_fn: reduction over the lists, called as ``reduce_fn(loss, where=valid_lists)``:
        ``jnp.mean`` (default; a mean over no valid list is 0), ``jnp.sum``, or ``None`` for the loss of
        each list (0 for lists with no valid item).

    Returns:
      The reduced loss (a scalar for ``jnp.mean``/``jnp.sum``), or the loss per list ``[...]``.

    Raises:
      TypeError: (a ``LossInputError``, also a ``ValueError``) if ``logits`` is not floating.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> loss = gradtx.losses.ranking_softmax_loss(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))
      >>> round(float(loss), 4)  # log 2
      0.6931
    """
    c.check_floating("ranking_softmax_loss", "logits", logits)
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels).astype(logits.dtype)
    if where is not None:
        where = jnp.broadcast_to(jnp.asarray(where), logits.shape)
        labels = jnp.where(where, labels, jnp.zeros_like(labels))
    if weights is not None:
        labels = labels * jnp.asarray(weights)
    log_p = c.masked_log_softmax(logits, axis=-1, where=where)
    if where is not None:
        log_p = jnp.where(where, log_p, jnp.zeros_like(log_p))
    loss = -jnp.sum(labels * log_p, axis=-1)
    valid_lists = None if where is None else jnp.any(where, axis=-1)
    return _reduce(loss, valid_lists, reduce_fn)
