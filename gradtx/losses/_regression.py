"""Regression losses: squared error, L2, Huber, log-cosh, cosine similarity and distance.

Element-wise unless stated; names, signatures and defaults are Optax's (``optax.losses``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from gradtx._docs import fill_doc
from gradtx.losses import _common as c

__all__ = ["cosine_distance", "cosine_similarity", "huber_loss", "l2_loss", "log_cosh", "squared_error"]


def _errors(fn: str, predictions: ArrayLike, targets: ArrayLike | None) -> jax.Array:
    c.check_floating(fn, "predictions", predictions)
    predictions = jnp.asarray(predictions)
    return predictions if targets is None else predictions - jnp.asarray(targets)


def squared_error(predictions: ArrayLike, targets: ArrayLike | None = None) -> jax.Array:
    """Element-wise squared error ``(predictions - targets)^2``; the mean squared error is its ``.mean()``.

    Args:
      predictions: floating array of any shape.
      targets: array of the same shape, or ``None`` for zeros (default).

    Returns:
      The squared differences, of the shape of ``predictions``.

    Raises:
      TypeError: (a ``LossInputError``, also a ``ValueError``) if ``predictions`` is not floating.
      ValueError: if ``targets`` has another shape (no silent broadcasting).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> [float(v) for v in gradtx.losses.squared_error(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0]))]
      [1.0, 4.0]
    """
    if targets is not None:
        c.check_same_shape("squared_error", "predictions", predictions, "targets", targets)
    return _errors("squared_error", predictions, targets) ** 2


def l2_loss(predictions: ArrayLike, targets: ArrayLike | None = None) -> jax.Array:
    """Element-wise L2 loss ``0.5 * (predictions - targets)^2`` (Bishop's convention, half the squared error).

    Args:
      predictions: floating array of any shape.
      targets: array of the same shape, or ``None`` for zeros (default).

    Returns:
      Half the squared differences, of the shape of ``predictions``.

    Raises:
      TypeError: (a ``LossInputError``, also a ``ValueError``) if ``predictions`` is not floating.
      ValueError: if ``targets`` has another shape.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> [float(v) for v in gradtx.losses.l2_loss(jnp.array([1.0, 3.0]))]
      [0.5, 4.5]
    """
    if targets is not None:
        c.check_same_shape("l2_loss", "predictions", predictions, "targets", targets)
    return 0.5 * _errors("l2_loss", predictions, targets) ** 2


def huber_loss(predictions: ArrayLike, targets: ArrayLike | None = None, *, delta: ArrayLike = 1.0) -> jax.Array:
    r"""Huber loss (Huber 1964): quadratic near zero, linear beyond ``delta``.

    With ``e = predictions - targets``: ``e^2 / 2`` if ``|e| <= delta``, else ``delta (|e| - delta / 2)``.
    Its gradient is ``e`` clipped to ``[-delta, delta]``: gradient descent on it is gradient clipping of
    :func:`l2_loss`.

    Args:
      predictions: floating array of any shape.
      targets: array broadcastable to ``predictions``, or ``None`` for zeros (default).
      delta: the threshold between the two branches, >= 0 (default 1.0).

    Returns:
      The loss per element, of the broadcast shape.

    Raises:
      TypeError: (a ``LossInputError``, also a ``ValueError``) if ``predictions`` is not floating.
      ValueError: if a concrete ``delta`` is negative.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> [float(v) for v in gradtx.losses.huber_loss(jnp.array([0.5, 3.0]), delta=1.0)]
      [0.125, 2.5]
    """
    c.check_scalar_range("huber_loss", "delta", delta, low=0.0)
    err = jnp.abs(_errors("huber_loss", predictions, targets))
    inner = jnp.minimum(err, delta)  # the quadratic part; the rest of |e| is linear
    return 0.5 * inner**2 + delta * (err - inner)


def log_cosh(predictions: ArrayLike, targets: ArrayLike | None = None) -> jax.Array:
    r"""Log-cosh loss ``log(cosh(predictions - targets))`` (Chen et al., ICLR 2019 submission).

    About ``e^2 / 2`` for small ``e`` and ``|e| - log 2`` for large ``e``: a twice-differentiable Huber-like
    loss. Evaluated as ``log1p(2 sinh(e / 2)^2)`` for ``|e| < 1`` (full relative accuracy near 0, where the
    textbook ``|e| + log1p(exp(-2|e|)) - log 2`` cancels) and as the latter elsewhere (no overflow).

    Args:
      predictions: floating array of any shape.
      targets: array broadcastable to ``predictions``, or ``None`` for zeros (default).

    Returns:
      The loss per element, of the broadcast shape.

    Raises:
      TypeError: (a ``LossInputError``, also a ``ValueError``) if ``predictions`` is not floating.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> [round(float(v), 4) for v in gradtx.losses.log_cosh(jnp.array([0.0, 1.0, 100.0]))]
      [0.0, 0.4338, 99.3069]
    """
    e = _errors("log_cosh", predictions, targets)
    a = jnp.abs(e)
    small = a < 1.0
    e_small = jnp.where(small, e, jnp.zeros_like(e))
    a_large = jnp.where(small, jnp.ones_like(a), a)
    near = jnp.log1p(2.0 * jnp.sinh(0.5 * e_small) ** 2)
    far = a_large + jnp.log1p(jnp.exp(-2.0 * a_large)) - jnp.log(2.0).astype(a.dtype)
    return jnp.where(small, near, far)


# The docstring passages of the two cosine losses (filled in by fill_doc).
_COSINE_ARGS = """
Args:
  predictions: floating array, vectors along ``axis``.
  targets: floating array of the same shape.
  epsilon: lower bound on each squared norm, >= 0 (default 0.0).
  axis: the vector axis or axes (default -1), or ``None``.
  where: optional boolean mask: only these elements enter the norms and the inner product.
"""
_COSINE_RAISES = """
Raises:
  TypeError: (a ``LossInputError``, also a ``ValueError``) if an input is not floating.
  ValueError: if a concrete ``epsilon`` is negative.
"""


@fill_doc(cosine_args=_COSINE_ARGS, cosine_raises=_COSINE_RAISES)
def cosine_similarity(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: ArrayLike = 0.0,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Cosine similarity ``<a, b> / (||a|| ||b||)`` over ``axis``.

    Each squared norm is first raised to at least ``epsilon`` (``||a|| = sqrt(max(sum a^2, epsilon))``), so
    ``epsilon > 0`` keeps a zero vector from dividing by zero (with ``epsilon = 0`` a zero vector gives NaN,
    as in Optax).

    {cosine_args}

    Returns:
      The similarity per vector, in [-1, 1]: the input shape without ``axis``.

    {cosine_raises}

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> round(float(gradtx.losses.cosine_similarity(jnp.array([1.0, 0.0]), jnp.array([1.0, 1.0]))), 4)
      0.7071
    """
    fn = "cosine_similarity"
    c.check_floating(fn, "predictions", predictions)
    c.check_floating(fn, "targets", targets)
    c.check_scalar_range(fn, "epsilon", epsilon, low=0.0)
    a, b = jnp.asarray(predictions), jnp.asarray(targets)
    a_norm = jnp.sqrt(jnp.maximum(jnp.sum(a * a, axis=axis, where=where, keepdims=True), epsilon))
    b_norm = jnp.sqrt(jnp.maximum(jnp.sum(b * b, axis=axis, where=where, keepdims=True), epsilon))
    return jnp.sum((a / a_norm) * (b / b_norm), axis=axis, where=where)


@fill_doc(cosine_args=_COSINE_ARGS, cosine_raises=_COSINE_RAISES)
def cosine_distance(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: ArrayLike = 0.0,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Cosine distance ``1 - cosine_similarity(predictions, targets)``, in [0, 2].

    {cosine_args}

    Returns:
      The distance per vector: the input shape without ``axis``.

    {cosine_raises}

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> float(gradtx.losses.cosine_distance(jnp.array([1.0, 0.0]), jnp.array([-2.0, 0.0])))
      2.0
    """
    return 1.0 - cosine_similarity(predictions, targets, epsilon=epsilon, axis=axis, where=where)
