"""Fenchel-Young losses built from a regularized max function (Optax's ``make_fenchel_young_loss``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp

__all__ = ["make_fenchel_young_loss"]


def make_fenchel_young_loss(max_fun: Callable[..., Any]) -> Callable[..., jax.Array]:
    r"""The Fenchel-Young loss ``L(s; y) = max_fun(s) - <y, s>`` of a (regularized) max function.

    For a convex ``max_fun = Omega^*`` (the conjugate of a regularizer ``Omega``), ``L(s; y) + Omega(y)`` is
    the Fenchel-Young gap: non-negative, zero iff ``y = grad max_fun(s)``, and its gradient in ``s`` is
    ``grad max_fun(s) - y`` (Blondel, Martins & Niculae, *Learning with Fenchel-Young Losses*, JMLR 2020).
    ``max_fun = logsumexp`` gives the softmax cross entropy (up to the entropy of ``y``).

    Args:
      max_fun: a function of a vector ``[n] -> []`` (extra positional and keyword arguments are passed
        through); it is vectorized over leading axes.

    Returns:
      ``loss(scores, targets, *args, **kwargs)``, which maps ``[..., n]`` scores and targets to ``[...]``
      (``<y, s>`` is ``vdot``: the targets are conjugated).

    Raises:
      ValueError: if ``max_fun`` is not callable (``make_fenchel_young_loss(max_fun=1): max_fun must be
        callable``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jax.scipy.special import logsumexp
      >>> import gradtx
      >>> loss = gradtx.losses.make_fenchel_young_loss(logsumexp)
      >>> round(float(loss(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))), 4)  # log 2 - 0
      0.6931
    """
    if not callable(max_fun):
        raise ValueError(f"make_fenchel_young_loss(max_fun={max_fun!r}): max_fun must be callable")
    rowwise_max = jnp.vectorize(max_fun, signature="(n)->()")
    rowwise_vdot = jnp.vectorize(jnp.vdot, signature="(n),(n)->()")

    def fenchel_young_loss(scores: Any, targets: Any, *args: Any, **kwargs: Any) -> jax.Array:
        return cast(jax.Array, rowwise_max(scores, *args, **kwargs) - rowwise_vdot(targets, scores))

    fenchel_young_loss.__doc__ = f"The Fenchel-Young loss of {getattr(max_fun, '__name__', repr(max_fun))}."
    return fenchel_young_loss
