"""Connectionist temporal classification (Graves et al., ICML 2006): ``ctc_loss`` and
``ctc_loss_with_forward_probs``.

Names, signatures, defaults and return values are Optax's (``optax.losses``): one loss per sequence, from the
forward recursion over log-probabilities described in :func:`ctc_loss_with_forward_probs`.
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from gradtx.losses import _common as c

__all__ = ["ctc_loss", "ctc_loss_with_forward_probs"]


def ctc_loss_with_forward_probs(
    logits: ArrayLike,
    logit_paddings: ArrayLike,
    labels: ArrayLike,
    label_paddings: ArrayLike,
    *,
    blank_id: int = 0,
    log_epsilon: ArrayLike = -1e5,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    r"""CTC loss and its forward (alpha) log-probabilities (Graves et al., ICML 2006).

    The loss is ``-log sum_pi prod_t softmax(logits[t])[pi_t]`` over every frame-level alignment ``pi`` that
    collapses to the label sequence (merge repeats, then drop blanks). It is computed by the forward
    recursion over two lattices: ``alpha_blank(t, n)``, the log-probability of having emitted the first ``n``
    labels by frame ``t`` and being in a blank (or the start), for ``n = 0..N``; and ``alpha_label(t, n)``, of
    having just emitted label ``n`` (0-based) at frame ``t``, for ``n = 0..N-1``. Impossible transitions are
    weighted by ``log_epsilon`` (a stand-in for ``log 0``): moving from label ``n`` straight to label ``n+1``
    without a blank is blocked when the two labels are equal. Padded frames (``logit_paddings == 1``) leave
    both lattices unchanged; the last row of ``alpha_blank`` also folds in the final label state, so
    ``loss[b] = -alpha_blank[T-1, b, len_b]`` with ``len_b`` the number of unpadded labels.

    Args:
      logits: floating array ``[B, T, K]``: logits of ``K`` classes (the blank included) per frame.
      logit_paddings: ``[B, T]`` array of 0.0 (real frame) or 1.0 (padding).
      labels: integer array ``[B, N]`` of label ids (padded positions may hold anything).
      label_paddings: ``[B, N]`` array of 0.0 (label) or 1.0 (padding); right-padded (zeros, then ones).
      blank_id: the class id of the blank, in ``[0, K)`` (default 0).
      log_epsilon: the log-probability used for impossible transitions, < 0 (default -1e5).

    Returns:
      ``(loss, logalpha_blank, logalpha_label)``: the loss per sequence ``[B]``, and the forward
      log-probabilities ``[T, B, N+1]`` and ``[T, B, N]``.

    Raises:
      ValueError: on wrong ranks, mismatched shapes or batch sizes, ``blank_id`` outside ``[0, K)`` or a
        non-negative ``log_epsilon``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> logits = jnp.zeros((1, 2, 2))  # 2 frames, classes {blank, a}, uniform
      >>> loss, _, _ = gradtx.losses.ctc_loss_with_forward_probs(
      ...     logits, jnp.zeros((1, 2)), jnp.array([[1]]), jnp.zeros((1, 1)))
      >>> round(float(loss[0]), 4)  # alignments "a_", "_a", "aa": -log(3/4)
      0.2877
    """
    fn = "ctc_loss_with_forward_probs"
    c.check_rank(fn, "logits", logits, 3)
    c.check_rank(fn, "labels", labels, 2)
    c.check_same_shape(fn, "labels", labels, "label_paddings", label_paddings)
    logits = jnp.asarray(logits)
    batch, _, num_classes = logits.shape
    c.check_same_shape(fn, "logits[..., 0]", logits[..., 0], "logit_paddings", logit_paddings)
    labels = jnp.asarray(labels)
    if labels.shape[0] != batch:
        raise ValueError(f"{fn}(labels of shape {labels.shape}): expected `labels` to have batch size {batch}")
    try:
        blank = operator.index(blank_id)
    except TypeError:
        blank = None
    if blank is None or isinstance(blank_id, bool) or not 0 <= blank < num_classes:
        raise ValueError(f"{fn}(blank_id={blank_id!r}): blank_id must be an int in [0, {num_classes})")
    c.check_scalar_range(fn, "log_epsilon", log_epsilon, high=0.0, high_open=True)
    num_labels = labels.shape[1]
    label_paddings = jnp.asarray(label_paddings)
    logit_paddings = jnp.asarray(logit_paddings)

    log_probs = c.masked_log_softmax(logits, axis=-1)  # [B, T, K]
    dtype = log_probs.dtype
    eps = jnp.asarray(log_epsilon, dtype)
    # Log-probability of emitting each label at each frame; a label id outside [0, K) emits with log-prob 0.
    valid = (labels >= 0) & (labels < num_classes)
    gathered = jnp.take_along_axis(log_probs, jnp.clip(labels, 0, num_classes - 1)[:, None, :], axis=2)
    label_lp = jnp.where(valid[:, None, :], gathered, jnp.zeros_like(gathered))  # [B, T, N]
    blank_lp = log_probs[:, :, blank]  # [B, T]
    # same_next[b, n]: label n equals label n+1, so a blank must separate them (0 for the last label).
    same_next = jnp.concatenate([(labels[:, :-1] == labels[:, 1:]).astype(dtype), jnp.zeros((batch, 1), dtype)], axis=1)

    def fold_in(blank_state: jax.Array, from_label: jax.Array) -> jax.Array:
        """Add (in log space) ``from_label[:, n]`` to the blank state ``n + 1``."""
        return jnp.concatenate([blank_state[:, :1], jnp.logaddexp(blank_state[:, 1:], from_label)], axis=1)

    def step(
        carry: tuple[jax.Array, jax.Array], frame: tuple[jax.Array, ...]
    ) -> tuple[tuple[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
        blank_prev, label_prev = carry
        lp_label, lp_blank, pad = frame
        # Skip transition: after label n, label n+1 may follow directly unless it repeats label n.
        reachable = fold_in(blank_prev, label_prev + eps * same_next)
        label_next = jnp.logaddexp(reachable[:, :-1], label_prev) + lp_label
        blank_next = fold_in(reachable + lp_blank[:, None], label_prev + lp_blank[:, None] + eps * (1 - same_next))
        is_pad = (pad > 0)[:, None]
        label_next = jnp.where(is_pad, label_prev, label_next)
        blank_next = jnp.where(is_pad, blank_prev, blank_next)
        return (blank_next, label_next), (blank_next, label_next)

    blank0 = jnp.full((batch, num_labels + 1), eps, dtype).at[:, 0].set(0.0)
    label0 = jnp.full((batch, num_labels), eps, dtype)
    frames = (jnp.swapaxes(label_lp, 0, 1), jnp.swapaxes(blank_lp, 0, 1), jnp.swapaxes(logit_paddings, 0, 1))
    _, (alpha_blank, alpha_label) = lax.scan(step, (blank0, label0), frames)
    last = fold_in(alpha_blank[-1], alpha_label[-1])
    alpha_blank = alpha_blank.at[-1].set(last)
    lengths = num_labels - jnp.sum(label_paddings, axis=1).astype(jnp.int32)
    loss = -jnp.take_along_axis(last, jnp.clip(lengths, 0, num_labels)[:, None], axis=1)[:, 0]
    return loss, alpha_blank, alpha_label


def ctc_loss(
    logits: ArrayLike,
    logit_paddings: ArrayLike,
    labels: ArrayLike,
    label_paddings: ArrayLike,
    *,
    blank_id: int = 0,
    log_epsilon: ArrayLike = -1e5,
) -> jax.Array:
    r"""CTC loss per sequence: ``-log p(labels | logits)`` summed over all alignments (Graves et al. 2006).

    The first output of :func:`ctc_loss_with_forward_probs`, which documents the recursion.

    Args:
      logits: floating array ``[B, T, K]`` of per-frame logits (the blank class included).
      logit_paddings: ``[B, T]`` array of 0.0 (real frame) or 1.0 (padding).
      labels: integer array ``[B, N]`` of label ids.
      label_paddings: ``[B, N]`` array of 0.0 (label) or 1.0 (padding), right-padded.
      blank_id: the class id of the blank, in ``[0, K)`` (default 0).
      log_epsilon: the log-probability used for impossible transitions, < 0 (default -1e5).

    Returns:
      The loss per sequence, shape ``[B]``.

    Raises:
      ValueError: as :func:`ctc_loss_with_forward_probs`.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> loss = gradtx.losses.ctc_loss(jnp.zeros((1, 2, 2)), jnp.zeros((1, 2)), jnp.array([[1]]), jnp.zeros((1, 1)))
      >>> round(float(loss[0]), 4)
      0.2877
    """
    loss, _, _ = ctc_loss_with_forward_probs(
        logits, logit_paddings, labels, label_paddings, blank_id=blank_id, log_epsilon=log_epsilon
    )
    return loss
