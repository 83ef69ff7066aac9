"""MADGRAD (Defazio & Jelassi 2021): dual averaging with a cube-root scale and momentum by averaging iterates."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import Params, Scalar, ScalarOrSchedule, Updates
from gradtx.combine import chain
from gradtx.contrib._common import safe_cbrt
from gradtx.fields import non_negative, probability, pytree_class, recipe, scalar_or_schedule
from gradtx.transforms import add_decayed_weights
from gradtx.transforms.adam_base import AdamLike, Moment, Step

__all__ = ["MadgradState", "madgrad", "scale_by_madgrad"]


class MadgradState(NamedTuple):
    """The state of :class:`scale_by_madgrad`.

    Attributes:
      count: the number of steps taken, an int32 scalar.
      grad_sum_sq: the weighted sum ``G`` of squared gradients, like the parameters.
      s: the weighted sum ``s`` of gradients, like the parameters.
      x0: a copy of the parameters given to ``init`` (the dual-averaging anchor).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.scale_by_madgrad(0.1).init(jnp.array([1.0, 2.0]))
      >>> print(state.count, state.x0)
      0 [1. 2.]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    grad_sum_sq: Updates
    s: Updates
    x0: Params


def _copy(block: Any, p: Any, dtype: Any) -> jax.Array:
    """A copy of the parameter leaf ``p`` (MADGRAD's ``x0``)."""
    del block, dtype
    return jnp.copy(p)


@pytree_class
class scale_by_madgrad(AdamLike[MadgradState]):
    """MADGRAD's whole update: dual averaging with a cube-root scale and momentum by averaging iterates.

    Defazio & Jelassi 2021, "Adaptivity without Compromise: A Momentumized, Adaptive, Dual Averaged Gradient
    Method for Stochastic Optimization", arXiv 2101.11075, Algorithm 1. The learning rate is inside: the output is
    the step to add to the parameters. With ``t = k - 1`` the 0-based count and ``lambda = (lr(t) + eps)
    sqrt(t + 1)`` (the ``+ eps`` of the authors' PyTorch code, kept by Optax)::

        s_k = s_{k-1} + lambda g,   G_k = G_{k-1} + lambda g^2,   z = x0 - s_k / (cbrt(G_k) + eps)
        x_new = momentum x + (1 - momentum) z,    u = x_new - x = (1 - momentum) ((x0 - x) - s_k / (cbrt(G_k) + eps))

    (the paper's averaging weight ``c_{k+1}`` is ``1 - momentum``). Needs ``params``; ``x0`` is a copy of the
    parameters given to ``init``. State: :class:`MadgradState`.

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count.
      momentum: the weight of the current iterate in the average, in ``[0, 1)``. Default 0.9.
      eps: added to ``lr`` and to ``cbrt(G)``, ``>= 0``. Default 1e-6.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_madgrad(momentum=1.0): momentum must be in [0, 1)``;
        at ``update``, no ``params``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_madgrad(learning_rate=0.125)
      >>> params = jnp.zeros(2)
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.array([1.0, -8.0]), state, params)
      >>> print(updates)  # -(1 - momentum) lr^(2/3) cbrt(g)
      [-0.025  0.05]
    """

    learning_rate: ScalarOrSchedule = scalar_or_schedule()
    momentum: Scalar = probability(default=0.9)
    eps: Scalar = non_negative(default=1e-6)

    State = MadgradState
    moments = (Moment("grad_sum_sq"), Moment("s"), Moment("x0", start=_copy, updated=False))
    needs_params = True

    def direction(self, x: tree.Leaf, step: Step, g: Any, gss: Any, s: Any, x0: Any, p: Any) -> tuple[Any, ...]:
        gc, eps = x.cast(g), x.hyper(self.eps)
        lam = (x.hyper(step.at(self.learning_rate)) + eps) * jnp.sqrt(x.cast(step.count + 1))
        gss_new, s_new = x.cast(gss) + lam * gc * gc, x.cast(s) + lam * gc
        u = x.complement(self.momentum) * ((x.cast(x0) - x.cast(p)) - s_new / (safe_cbrt(gss_new) + eps))
        return u, gss_new, s_new


@recipe
def madgrad(
    learning_rate: ScalarOrSchedule, momentum: Scalar = 0.9, weight_decay: Scalar = 0.0, eps: Scalar = 1e-6
) -> chain:
    """MADGRAD (Defazio & Jelassi 2021) with L2 weight decay.

    ``add_decayed_weights -> scale_by_madgrad``: the weight decay is added to the gradient (``g + weight_decay
    theta``, as in the paper's code and Optax), then :class:`scale_by_madgrad` makes the whole step (learning rate
    inside). Defazio & Jelassi 2021, "Adaptivity without Compromise: A Momentumized, Adaptive, Dual Averaged
    Gradient Method for Stochastic Optimization", arXiv 2101.11075. Signature and defaults of
    ``optax.contrib.madgrad``. ``update`` needs ``params``.

    Args:
      learning_rate: the step size, a number or a schedule of the 0-based step count.
      momentum: the weight of the current iterate in the average, in ``[0, 1)``. Default 0.9.
      weight_decay: the L2 weight decay ``>= 0`` added to the gradient. Default 0.
      eps: added to the learning rate and to the cube root, ``>= 0``. Default 1e-6.

    Returns:
      A ``chain(add_decayed_weights, scale_by_madgrad)``; its state is ``(EmptyState, MadgradState)``.

    Raises:
      ValueError: an option out of range, e.g. ``madgrad(momentum=1.0): momentum must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.madgrad(learning_rate=0.125)
      >>> params = jnp.zeros(2)
      >>> updates, state = opt.update(jnp.array([1.0, -8.0]), opt.init(params), params)
      >>> print(updates)
      [-0.025  0.05]
    """
    return chain(add_decayed_weights(weight_decay), scale_by_madgrad(learning_rate, momentum, eps))
