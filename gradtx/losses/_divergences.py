"""Kullback-Leibler divergences: ``kl_divergence``, ``kl_divergence_with_log_targets``,
``generalized_kl_divergence`` and its deprecated alias ``convex_kl_divergence``.

Each returns one value per example (the sum over ``axis``; no reduction over the batch). Names, signatures,
defaults and return values are Optax's (``optax.losses``). ``0 log 0`` is taken as 0, with ``jnp.where`` on both
the value and the argument so that no NaN reaches a gradient.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from gradtx._docs import fill_doc
from gradtx.losses import _common as c

__all__ = [
    "convex_kl_divergence",
    "generalized_kl_divergence",
    "kl_divergence",
    "kl_divergence_with_log_targets",
]


# The docstring passages the four divergences share (filled in by fill_doc at the level of ``Args:``).
_AXIS_WHERE = """
  axis: the axis or axes to sum over (default -1), or ``None``.
  where: optional boolean mask: only these elements are summed.
"""
_AXIS_WHERE_RETURNS = _AXIS_WHERE + """
Returns:
  The divergence per example: the input shape without ``axis``.

Raises:
  TypeError: (a ``LossInputError``, also a ``ValueError``) if an input is not floating.
"""
_MEASURES = """
  log_predictions: floating array of log-masses ``log p``.
  targets: floating array of non-negative masses ``q``, same shape.
"""


@fill_doc(axis_where_returns=_AXIS_WHERE_RETURNS)
def kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Kullback-Leibler divergence ``KL(q || p) = sum_j q_j (log q_j - log p_j)`` over ``axis``.

    ``p`` is given by its logarithm (``log_predictions``), ``q`` by its probabilities (``targets``). Terms
    with ``q_j = 0`` are 0 (``0 log 0 = 0``), also when ``log p_j = -inf``, and their gradients are finite
    (Kullback & Leibler, *On Information and Sufficiency*, 1951).

    Args:
      log_predictions: floating array of log-probabilities ``log p``.
      targets: floating array of probabilities ``q`` (non-negative), same shape.
    {axis_where_returns}

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> log_p = jnp.log(jnp.array([0.5, 0.5]))
      >>> round(float(gradtx.losses.kl_divergence(log_p, jnp.array([1.0, 0.0]))), 4)  # log 2
      0.6931
    """
    c.check_floating("kl_divergence", "log_predictions", log_predictions)
    c.check_floating("kl_divergence", "targets", targets)
    log_p, q = jnp.broadcast_arrays(jnp.asarray(log_predictions), jnp.asarray(targets))
    nonzero = q != 0
    safe_log_p = jnp.where(nonzero, log_p, jnp.zeros_like(log_p))
    terms = jnp.where(nonzero, q * (c.safe_log(q) - safe_log_p), jnp.zeros_like(q * log_p))
    return jnp.sum(terms, axis=axis, where=where)


@fill_doc(axis_where_returns=_AXIS_WHERE_RETURNS)
def kl_divergence_with_log_targets(
    log_predictions: ArrayLike,
    log_targets: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Kullback-Leibler divergence ``sum_j exp(l_j) (l_j - log p_j)`` with the target in log space.

    The same divergence as :func:`kl_divergence` with ``targets = exp(log_targets)``; terms with
    ``log_targets = -inf`` (probability 0) are 0 with finite gradients.

    Args:
      log_predictions: floating array of log-probabilities ``log p``.
      log_targets: floating array of target log-probabilities ``l``, same shape.
    {axis_where_returns}

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> log_p = jnp.log(jnp.array([0.25, 0.75]))
      >>> log_q = jnp.log(jnp.array([0.5, 0.5]))
      >>> round(float(gradtx.losses.kl_divergence_with_log_targets(log_p, log_q)), 4)
      0.1438
    """
    c.check_floating("kl_divergence_with_log_targets", "log_predictions", log_predictions)
    c.check_floating("kl_divergence_with_log_targets", "log_targets", log_targets)
    log_p, log_q = jnp.broadcast_arrays(jnp.asarray(log_predictions), jnp.asarray(log_targets))
    alive = log_q > -jnp.inf
    safe_log_q = jnp.where(alive, log_q, jnp.zeros_like(log_q))
    safe_log_p = jnp.where(alive, log_p, jnp.zeros_like(log_p))
    terms = jnp.where(alive, jnp.exp(safe_log_q) * (safe_log_q - safe_log_p), jnp.zeros_like(log_q * log_p))
    return jnp.sum(terms, axis=axis, where=where)


@fill_doc(measures=_MEASURES, axis_where_returns=_AXIS_WHERE_RETURNS)
def generalized_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Generalized KL divergence ``sum_j q_j (log q_j - log p_j) + p_j - q_j`` of unnormalized measures.

    The Bregman divergence of ``f(x) = x log x - x``; equal to :func:`kl_divergence` when ``p`` and ``q`` both
    sum to 1 (Boyd & Vandenberghe, *Convex Optimization*, 2004, p. 90; Bregman 1967).

    Args:
    {measures}
    {axis_where_returns}

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> log_p = jnp.log(jnp.array([2.0]))
      >>> round(float(gradtx.losses.generalized_kl_divergence(log_p, jnp.array([1.0]))), 4)  # -log 2 + 1
      0.3069
    """
    kl = kl_divergence(log_predictions, targets, axis=axis, where=where)
    mass = jnp.sum(jnp.exp(jnp.asarray(log_predictions)) - jnp.asarray(targets), axis=axis, where=where)
    return kl + mass


@fill_doc(measures=_MEASURES, axis_where=_AXIS_WHERE)
def convex_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """Deprecated alias of :func:`generalized_kl_divergence` (as in Optax); emits a ``DeprecationWarning``.

    Args:
    {measures}
    {axis_where}

    Returns:
      ``generalized_kl_divergence(log_predictions, targets, axis, where)``.

    Example:
      >>> import warnings
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> with warnings.catch_warnings():
      ...     warnings.simplefilter("ignore", DeprecationWarning)
      ...     value = gradtx.losses.convex_kl_divergence(jnp.log(jnp.array([2.0])), jnp.array([1.0]))
      >>> round(float(value), 4)
      0.3069
    """
    warnings.warn(
        "The function convex_kl_divergence is deprecated. Please use generalized_kl_divergence instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    return generalized_kl_divergence(log_predictions, targets, axis=axis, where=where)
