"""Classification losses: cross entropies, margins, sparsemax and the focal loss (KL divergences:
``_divergences``; CTC: ``_ctc``).

Every loss returns one value per example (no reduction over the batch); reduce with ``.mean()`` or ``.sum()``.
Names, signatures, defaults and return values are Optax's (``optax.losses``). The formulas are evaluated in
stable forms: log-sum-exp with the maximum subtracted, ``log_sigmoid`` written as ``-softplus(-x)``, and
``jnp.where`` on both the value and the argument wherever a branch would otherwise put ``inf * 0 = NaN`` into
a gradient. All of them work under ``jit``, ``vmap`` and ``grad``.
"""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from gradtx._docs import fill_doc
from gradtx.losses import _common as c
from gradtx.projections import projection_simplex

__all__ = [
    "hinge_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "perceptron_loss",
    "poly_loss_cross_entropy",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "sparsemax_loss",
]


# --------------------------------------------------------------------------------------------------
# Binary (sigmoid) losses.
# --------------------------------------------------------------------------------------------------


def sigmoid_binary_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Element-wise binary cross entropy of a sigmoid: ``-y log s(z) - (1 - y) log(1 - s(z))``.

    With ``s`` the logistic sigmoid, ``log s(z) = -softplus(-z)`` and ``log(1 - s(z)) = -softplus(z)``, so
    the loss is evaluated as ``y * softplus(-z) + (1 - y) * softplus(z)``: exact for ``|z|`` up to the
    largest float (no ``log(0)``), gradient ``s(z) - y``. Each element is an independent binary problem, so
    this serves binary and multi-label classification alike (Goodfellow et al., *Deep Learning*, 2016, §3.13).

    Args:
      logits: floating array of logits ``z`` (any shape).
      labels: targets ``y`` broadcastable to ``logits``: hard labels in {0, 1} or probabilities in [0, 1];
        cast to the dtype of ``logits``.

    Returns:
      The loss per element, of the broadcast shape of ``logits`` and ``labels``.

    Raises:
      TypeError: (a ``LossInputError``, also a ``ValueError``) if ``logits`` is not floating.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> loss = gradtx.losses.sigmoid_binary_cross_entropy(jnp.array([0.0, 2.0]), jnp.array([1.0, 0.0]))
      >>> [round(float(v), 4) for v in loss]  # [log 2, softplus(2)]
      [0.6931, 2.1269]
    """
    c.check_floating("sigmoid_binary_cross_entropy", "logits", logits)
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels).astype(logits.dtype)
    return labels * jax.nn.softplus(-logits) + (1.0 - labels) * jax.nn.softplus(logits)


def hinge_loss(predictor_outputs: ArrayLike, targets: ArrayLike) -> jax.Array:
    """Binary hinge loss ``max(0, 1 - f * t)`` (the loss of the soft-margin SVM).

    Args:
      predictor_outputs: scores ``f`` of the decision function (any shape).
      targets: signed labels ``t`` in {-1, 1}, broadcastable to ``predictor_outputs``.

    Returns:
      The loss per element, of the broadcast shape.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> [float(v) for v in gradtx.losses.hinge_loss(jnp.array([2.0, 0.5, -1.0]), jnp.array([1.0, 1.0, 1.0]))]
      [0.0, 0.5, 2.0]
    """
    f, t = jnp.asarray(predictor_outputs), jnp.asarray(targets)
    return jnp.maximum(0, 1 - f * t)


def perceptron_loss(predictor_outputs: ArrayLike, targets: ArrayLike) -> jax.Array:
    """Binary perceptron loss ``max(0, -f * t)`` (Rosenblatt 1958): zero once the sign is right.

    Args:
      predictor_outputs: scores ``f`` (any shape).
      targets: signed labels ``t`` in {-1, 1}, of the same shape as ``predictor_outputs``.

    Returns:
      The loss per element.

    Raises:
      ValueError: if the two shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> [float(v) for v in gradtx.losses.perceptron_loss(jnp.array([2.0, -0.5]), jnp.array([1.0, 1.0]))]
      [0.0, 0.5]
    """
    c.check_same_shape("perceptron_loss", "predictor_outputs", predictor_outputs, "targets", targets)
    f, t = jnp.asarray(predictor_outputs), jnp.asarray(targets)
    return jnp.maximum(0, -f * t)


def _sparse_plus(x: jax.Array) -> jax.Array:
    """0 for x <= -1, (x + 1)^2 / 4 for |x| < 1, x for x >= 1 (continuously differentiable)."""
    inner = jnp.clip(x, -1.0, 1.0)
    return jnp.where(x >= 1.0, x, 0.25 * (inner + 1.0) ** 2)


def sparsemax_loss(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Binary sparsemax loss: the Fenchel-Young loss of the sparse sigmoid.

    ``sparse_plus(-z)`` for label 1 and ``sparse_plus(z)`` for label 0, where ``sparse_plus(x)`` is 0 for
    ``x <= -1``, ``(x + 1)^2 / 4`` for ``|x| < 1`` and ``x`` for ``x >= 1``. It is zero exactly when the
    sparse sigmoid of ``z`` equals the label (Blondel, Martins & Niculae, *Learning with Fenchel-Young
    Losses*, JMLR 2020, §4.4).

    Args:
      logits: scores ``z`` (any shape, floating).
      labels: labels in {0, 1} (any nonzero value counts as 1), broadcastable to ``logits``.

    Returns:
      The loss per element.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> [float(v) for v in gradtx.losses.sparsemax_loss(jnp.array([2.0, 0.0, -3.0]), jnp.array([1, 1, 1]))]
      [0.0, 0.25, 3.0]
    """
    z = jnp.asarray(logits)
    return _sparse_plus(jnp.where(jnp.asarray(labels), -z, z))


# --------------------------------------------------------------------------------------------------
# Softmax cross entropies.
# --------------------------------------------------------------------------------------------------


@jax.custom_jvp
def _safe_softmax_ce(logits: jax.Array, labels: jax.Array) -> jax.Array:
    log_p = c.masked_log_softmax(logits, axis=-1)
    nonzero = labels != 0
    terms = jnp.where(nonzero, labels * jnp.where(nonzero, log_p, jnp.zeros_like(log_p)), jnp.zeros_like(log_p))
    return -jnp.sum(terms, axis=-1)


def _safe_softmax_ce_jvp(primals: tuple[jax.Array, jax.Array], tangents: tuple[Any, Any]) -> tuple[Any, Any]:
    # d/dz: sum(y) * softmax(z) - y (finite even where z = -inf); d/dy: -log_softmax(z) (may be +inf there,
    # which is the true derivative); a tangent known to be zero contributes nothing, so no 0 * inf appears.
    logits, labels = primals
    dz, dy = tangents
    out = _safe_softmax_ce(logits, labels)
    tangent = jnp.zeros_like(out)
    if not isinstance(dz, SymbolicZero):
        p = jnp.exp(c.masked_log_softmax(logits, axis=-1))
        tangent = tangent + jnp.sum(labels, axis=-1) * jnp.sum(p * dz, axis=-1) - jnp.sum(labels * dz, axis=-1)
    if not isinstance(dy, SymbolicZero):
        tangent = tangent - jnp.sum(dy * c.masked_log_softmax(logits, axis=-1), axis=-1)
    return out, tangent.astype(out.dtype)


_safe_softmax_ce.defjvp(_safe_softmax_ce_jvp, symbolic_zeros=True)


def safe_softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Softmax cross entropy ``-sum_j y_j log softmax(z)_j`` with the convention ``0 log 0 = 0``.

    Unlike :func:`softmax_cross_entropy`, a logit of ``-inf`` with label 0 (a class ruled out by masking the
    logits) contributes 0 to the value and a finite gradient, instead of NaN. The gradient with respect to
    the logits is ``sum(y) softmax(z) - y``; with respect to the labels ``-log softmax(z)``.

    Args:
      logits: floating array ``[..., num_classes]``; entries may be ``-inf`` where the label is 0.
      labels: probabilities (non-negative, summing to 1) broadcastable to ``logits``, e.g. one-hot rows.

    Returns:
      The cross entropy per example, shape ``[...]``.

    Raises:
      TypeError: (a ``LossInputError``, also a ``ValueError``) if ``logits`` is not floating.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> logits = jnp.array([0.0, 0.0, -jnp.inf])
      >>> round(float(gradtx.losses.safe_softmax_cross_entropy(logits, jnp.array([1.0, 0.0, 0.0]))), 4)
      0.6931
    """
    c.check_floating("safe_softmax_cross_entropy", "logits", logits)
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    logits, labels = jnp.broadcast_arrays(logits, labels.astype(jnp.result_type(logits, labels)))
    return _safe_softmax_ce(logits, labels)


def softmax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Softmax (categorical) cross entropy ``-sum_j y_j log softmax(z)_j`` over ``axis``.

    Evaluated as ``-sum_j y_j (z_j - logsumexp(z))`` with the maximum subtracted inside the log-sum-exp,
    so logits of any magnitude are safe; for one-hot ``y`` this is ``logsumexp(z) - z_y``. The gradient
    with respect to the logits is ``sum(y) softmax(z) - y``.

    Args:
      logits: floating array of unnormalized log-probabilities, classes along ``axis``.
      labels: probabilities broadcastable to ``logits`` (e.g. one-hot rows).
      axis: the class axis or axes (default -1), or ``None`` for all axes.
      where: optional boolean mask of the shape of ``logits`` (or of the batch shape, then broadcast over
        ``axis``): classes outside it take no part in the softmax nor in the sum.

    Returns:
      The cross entropy per example: ``logits``'s shape without ``axis``.

    Raises:
      TypeError: (a ``LossInputError``, also a ``ValueError``) if ``logits`` is not floating.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> labels = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
      >>> [round(float(v), 4) for v in gradtx.losses.softmax_cross_entropy(logits, labels)]
      [0.2761, 2.9518]
    """
    c.check_floating("softmax_cross_entropy", "logits", logits)
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    where = c.expand_where(where, axis, logits.ndim)
    log_p = c.masked_log_softmax(logits, axis=axis, where=where)
    return -jnp.sum(labels * log_p, axis=axis, where=where)


def softmax_cross_entropy_with_integer_labels(
    logits: ArrayLike,
    labels: ArrayLike,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Softmax cross entropy with integer class labels: ``logsumexp(z) - z[label]``.

    The same loss as :func:`softmax_cross_entropy` with one-hot labels, without building them: only the
    labelled logit is gathered. When ``axis`` is a tuple, the class is a flat (C-order) index into the slice
    ``logits[axis]``. Examples whose mask ``where`` is all False get loss 0.

    Args:
      logits: floating array; classes along ``axis``.
      labels: integer array of the batch shape (``logits``'s shape without ``axis``), values in
        ``[0, num_classes)``.
      axis: the class axis (default -1) or a tuple of axes.
      where: optional boolean mask of the shape of ``logits`` (or of the batch shape): masked classes are
        left out of the log-sum-exp.

    Returns:
      The cross entropy per example, of the batch shape.

    Raises:
      TypeError: (a ``LossInputError``, also a ``ValueError``) if ``logits`` is not floating or ``labels``
        not integer.
      ValueError: if ``axis`` is neither an int nor a tuple of ints, or out of range.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> loss = gradtx.losses.softmax_cross_entropy_with_integer_labels(logits, jnp.array([0, 1]))
      >>> [round(float(v), 4) for v in loss]
      [0.2761, 2.9518]
    """
    fn = "softmax_cross_entropy_with_integer_labels"
    c.check_floating(fn, "logits", logits)
    c.check_integer(fn, "labels", labels)
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    where = c.expand_where(where, axis, logits.ndim)
    if isinstance(axis, bool) or not isinstance(axis, (int, tuple)):
        raise ValueError(f"{fn}(axis={axis!r}): axis must be an int or a tuple of ints, got {type(axis).__name__}")
    if isinstance(axis, int):
        class_axis = c.normalize_axis(fn, axis, logits.ndim)
    else:
        class_axes = tuple(c.normalize_axis(fn, a, logits.ndim) for a in axis)
        batch_axes = tuple(i for i in range(logits.ndim) if i not in class_axes)
        order = batch_axes + class_axes
        logits = jnp.transpose(logits, order).reshape((*(logits.shape[i] for i in batch_axes), -1))
        if where is not None:
            where = jnp.broadcast_to(where, tuple(jnp.shape(where)[i] for i in range(len(order))))
            where = jnp.transpose(where, order).reshape((*where.shape[: len(batch_axes)], -1))
        class_axis = len(batch_axes)
    picked = jnp.take_along_axis(logits, jnp.expand_dims(labels, class_axis), axis=class_axis)
    picked = jnp.squeeze(picked, axis=class_axis)
    out = c.masked_logsumexp(logits, axis=class_axis, where=where) - picked
    if where is not None:
        out = jnp.where(jnp.any(where, axis=class_axis), out, jnp.zeros_like(out))
    return out


def poly_loss_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: ArrayLike = 2.0,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Poly-1 loss: softmax cross entropy plus ``epsilon * sum_j y_j (1 - softmax(z)_j)``.

    Cross entropy expands as ``sum_k (1 - p_t)^k / k``; Poly-1 raises the first coefficient by ``epsilon``
    (Leng et al., *PolyLoss: A Polynomial Expansion Perspective of Classification Loss Functions*, ICLR 2022).
    ``epsilon = 0`` is exactly :func:`softmax_cross_entropy`.

    Args:
      logits: floating array; classes along ``axis``.
      labels: floating probabilities broadcastable to ``logits``.
      epsilon: coefficient of the first polynomial term, any real (default 2.0; the paper suggests 2.0 for
        ImageNet classification and -1.0 for detection).
      axis: the class axis or axes (default -1), or ``None``.
      where: optional boolean mask of the shape of ``logits``.

    Returns:
      The loss per example: ``logits``'s shape without ``axis``.

    Raises:
      TypeError: (a ``LossInputError``, also a ``ValueError``) if ``logits`` or ``labels`` is not floating.
      ValueError: if ``epsilon`` is NaN.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> loss = gradtx.losses.poly_loss_cross_entropy(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]), epsilon=1.0)
      >>> round(float(loss), 4)  # log 2 + 1 * (1 - 0.5)
      1.1931
    """
    fn = "poly_loss_cross_entropy"
    c.check_floating(fn, "logits", logits)
    c.check_floating(fn, "labels", labels)
    c.check_scalar_range(fn, "epsilon", epsilon)
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    p = c.masked_softmax(logits, axis=axis, where=where)
    one_minus_pt = jnp.sum(labels * (1 - p), axis=axis, where=where)
    return softmax_cross_entropy(logits, labels, axis=axis, where=where) + epsilon * one_minus_pt


# --------------------------------------------------------------------------------------------------
# Multiclass margin losses.
# --------------------------------------------------------------------------------------------------


# The docstring passages of the multiclass losses (filled in by fill_doc at the level of ``Args:``).
_LABELS_RETURNS = """
  labels: integer labels of shape ``[...]``, values in ``[0, num_classes)``.

Returns:
  The loss per example, shape ``[...]``.
"""
_MARGIN_ARGS = (
    "Args:\n  scores: array ``[..., num_classes]`` of class scores."
    + _LABELS_RETURNS
    + """
Example:
  >>> import jax.numpy as jnp
  >>> import gradtx
  >>> scores = jnp.array([[3.0, 1.0, 0.0], [1.0, 1.5, 0.0]])
"""
)


def _one_hot(scores: jax.Array, labels: Any) -> jax.Array:
    """``one_hot(labels)`` over the classes of ``scores`` (last axis), in its dtype."""
    return jax.nn.one_hot(labels, scores.shape[-1], dtype=scores.dtype)


def _label_score(scores: jax.Array, labels: Any) -> jax.Array:
    """``<scores, one_hot(labels)>`` over the last axis (0 for a label outside ``[0, num_classes)``)."""
    return jnp.sum(scores * _one_hot(scores, labels), axis=-1)


@fill_doc(margin_args=_MARGIN_ARGS)
def multiclass_hinge_loss(scores: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Multiclass hinge loss (Crammer & Singer 2001): ``max_j (s_j + [j != y]) - s_y``.

    Zero exactly when the labelled score beats every other score by a margin of at least 1.

    {margin_args}
      >>> [float(v) for v in gradtx.losses.multiclass_hinge_loss(scores, jnp.array([0, 0]))]
      [0.0, 1.5]
    """
    scores = jnp.asarray(scores)
    return jnp.max(scores + 1.0 - _one_hot(scores, labels), axis=-1) - _label_score(scores, labels)


@fill_doc(margin_args=_MARGIN_ARGS)
def multiclass_perceptron_loss(scores: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Multiclass perceptron loss ``max_j s_j - s_y`` (Collins, EMNLP 2002).

    {margin_args}
      >>> [float(v) for v in gradtx.losses.multiclass_perceptron_loss(scores, jnp.array([0, 0]))]
      [0.0, 0.5]
    """
    scores = jnp.asarray(scores)
    return jnp.max(scores, axis=-1) - _label_score(scores, labels)


def _sparsemax(scores: jax.Array) -> jax.Array:
    """Sparsemax (Martins & Astudillo 2016): each last-axis row projected onto the probability simplex."""
    return cast(jax.Array, jnp.vectorize(projection_simplex, signature="(n)->(n)")(scores))


@fill_doc(labels_returns=_LABELS_RETURNS)
def multiclass_sparsemax_loss(scores: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Multiclass sparsemax loss (Martins & Astudillo, ICML 2016): a Fenchel-Young loss of sparsemax.

    With ``p = sparsemax(s)`` (the Euclidean projection of ``s`` onto the simplex),
    ``loss = <p, s> + (1 - ||p||^2) / 2 - s_y``; it is non-negative, zero iff ``p`` is the one-hot of ``y``,
    and its gradient is ``p - one_hot(y)``.

    Args:
      scores: floating array ``[..., num_classes]`` (Optax requires one batch axis; any number works here).
    {labels_returns}

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> scores = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> [round(float(v), 4) for v in gradtx.losses.multiclass_sparsemax_loss(scores, jnp.array([0, 0]))]
      [0.0, 0.3333]
    """
    scores = jnp.asarray(scores)
    if not jnp.issubdtype(scores.dtype, jnp.floating):
        scores = scores.astype(jnp.result_type(float))
    p = _sparsemax(scores)
    # <p, s> - s_y, computed on the support only (scores outside it may be -inf).
    on_support = p > 0
    centred = scores - _label_score(scores, labels)[..., None]
    dot = jnp.sum(jnp.where(on_support, p * jnp.where(on_support, centred, 0.0), 0.0), axis=-1)
    return dot + 0.5 * (1.0 - jnp.sum(p * p, axis=-1))


# --------------------------------------------------------------------------------------------------
# Focal loss.
# --------------------------------------------------------------------------------------------------


def sigmoid_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: ArrayLike | None = None,
    gamma: ArrayLike = 2.0,
) -> jax.Array:
    r"""Sigmoid focal loss ``-alpha_t (1 - p_t)^gamma log p_t`` (Lin et al., *Focal Loss for Dense Object
    Detection*, ICCV 2017), element-wise.

    ``p = sigmoid(z)``; for a label ``y`` in [0, 1] (soft labels allowed) the cross entropy is
    :func:`sigmoid_binary_cross_entropy` and ``1 - p_t = (1 - y) p + y (1 - p)``, whose logarithm is taken
    as a log-sum-exp of ``log p = -softplus(-z)`` and ``log(1 - p) = -softplus(z)``: the modulating factor
    stays accurate for ``|z|`` in the thousands and any ``gamma >= 0``, and ``(1 - p_t)^0 = 1`` exactly.
    ``alpha_t = alpha y + (1 - alpha)(1 - y)`` when ``alpha`` is given.

    Args:
      logits: floating array of logits ``z``.
      labels: labels in [0, 1] broadcastable to ``logits``; cast to ``logits``'s dtype.
      alpha: optional weight of the positive class, in [0, 1] (default ``None``: no weighting).
      gamma: focusing exponent, >= 0 (default 2.0; 0 gives the cross entropy).

    Returns:
      The loss per element, of the shape of ``logits``.

    Raises:
      TypeError: (a ``LossInputError``, also a ``ValueError``) if ``logits`` is not floating.
      ValueError: if a concrete ``alpha`` is outside [0, 1] or ``gamma`` is negative.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> loss = gradtx.losses.sigmoid_focal_loss(jnp.array([0.0]), jnp.array([1.0]), gamma=2.0)
      >>> round(float(loss[0]), 4)  # 0.5^2 * log 2
      0.1733
    """
    fn = "sigmoid_focal_loss"
    c.check_floating(fn, "logits", logits)
    if alpha is not None:
        c.check_scalar_range(fn, "alpha", alpha, low=0.0, high=1.0)
    c.check_scalar_range(fn, "gamma", gamma, low=0.0)
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels).astype(logits.dtype)
    ce = sigmoid_binary_cross_entropy(logits, labels)
    log_p = -jax.nn.softplus(-logits)
    log_q = -jax.nn.softplus(logits)
    # log((1 - y) p + y q) as a log-sum-exp of log(1 - y) + log p and log(y) + log q, shifted by the larger
    # term so the sum lies in [1, 2] (a tiny sum would underflow its squared derivative in the Hessian).
    a = c.safe_log(1.0 - labels) + log_p
    b = c.safe_log(labels) + log_q
    a = jnp.where(labels < 1, a, -jnp.inf)
    b = jnp.where(labels > 0, b, -jnp.inf)
    top = lax.stop_gradient(jnp.maximum(a, b))
    top = jnp.where(jnp.isfinite(top), top, jnp.zeros_like(top))
    mix = jnp.exp(a - top) + jnp.exp(b - top)
    positive = mix > 0
    log_one_minus_pt = jnp.where(positive, jnp.log(jnp.where(positive, mix, 1.0)) + top, -jnp.inf)
    gamma_arr = jnp.asarray(gamma, dtype=logits.dtype)
    finite = jnp.isfinite(log_one_minus_pt)
    weight = jnp.where(
        finite,
        jnp.exp(gamma_arr * jnp.where(finite, log_one_minus_pt, 0.0)),
        jnp.where(gamma_arr == 0, 1.0, 0.0).astype(logits.dtype),
    )
    loss = ce * weight
    if alpha is None:
        return loss
    return cast(jax.Array, (alpha * labels + (1.0 - alpha) * (1.0 - labels)) * loss)
