"""MARS (Yuan et al. 2024): a variance-reduced gradient for an Adam-type block, and its AdamW instance."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    MaskOrFn,
    Params,
    Scalar,
    ScalarOrSchedule,
    Updates,
    check_tree_match,
)
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import non_negative, positive, probability, pytree_class, recipe
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_family import scale_by_adam

__all__ = ["ScaleByMarsState", "mars_adamw", "scale_by_mars"]


class ScaleByMarsState(NamedTuple):
    """The state of :class:`scale_by_mars`.

    Attributes:
      last_grad: the previous gradient ``g_{k-1}`` (zeros before the first step), like the parameters.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_mars()
      >>> _, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.last_grad)
      [ 1. -2.]
    """

    last_grad: Updates


@pytree_class
class scale_by_mars(GradientTransformation):
    """MARS's variance-reduced gradient (the approximate form MARS-approx), clipped per leaf.

    Yuan, Liu, Wu et al. 2024, "MARS: Unleashing the Power of Variance Reduction for Training Large Models",
    arXiv 2411.10438, Algorithm 2, the approximate form that needs no second gradient evaluation::

        c_k = g_k + gamma (b1 / (1 - b1)) (g_k - g_{k-1}),       g_0 = 0 (the authors' code)
        c_k <- c_k * max_norm / ||c_k||   where ||c_k|| > max_norm   (per leaf; max_norm=None: no clipping)

    Feed it to an Adam-type block (:func:`mars_adamw`). ``b1`` is the momentum of that block. The previous
    gradient is kept in the state's dtype (the parameters'), whatever the gradient's dtype. State:
    :class:`ScaleByMarsState`.

    Args:
      b1: the momentum of the Adam-type block that follows, in ``[0, 1)``. Default 0.95.
      gamma: the weight of the gradient correction, ``>= 0``. Default 0.025.
      max_norm: the per-leaf norm ``c_k`` is clipped to, ``> 0``, or None (no clipping). Default 1.0.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_mars(gamma=-1.0): gamma must be >= 0``.
      TypeError: an option of the wrong type, e.g. a string ``gamma``; at ``update``, updates whose tree does
        not match the state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_mars(max_norm=None)
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(updates)  # (1 + gamma b1 / (1 - b1)) g = 1.475 g
      [ 1.475 -2.95 ]
    """

    b1: Scalar = probability(default=0.95)
    gamma: Scalar = non_negative(default=0.025)
    max_norm: Scalar | None = positive(default=1.0, optional=True)

    def init(self, params: Params) -> ScaleByMarsState:
        return ScaleByMarsState(last_grad=tree.zeros_like(params))

    def update(
        self, updates: Updates, state: ScaleByMarsState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ScaleByMarsState]:
        del params, extra
        check_tree_match("scale_by_mars.update", state.last_grad, updates)

        def one(g: Any, last: Any) -> tuple[jax.Array, jax.Array]:
            x = tree.Leaf(g)
            gc, ratio = x.cast(g), x.hyper(self.b1) / x.complement(self.b1)
            c = gc + x.hyper(self.gamma) * ratio * (gc - x.cast(last))
            if self.max_norm is not None:
                norm, cap = safe_sqrt(jnp.sum(x.abs_sq(c))), x.hyper(self.max_norm)  # |c|^2: the modulus if complex
                c = c * x.cast(jnp.where(norm > cap, cap / jnp.where(norm > cap, norm, 1), 1))
            return x.out(c), x.store(g, last)

        out, last = tree.map_split(one, 2, updates, state.last_grad)
        return out, ScaleByMarsState(last_grad=last)


@recipe
def mars_adamw(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.95,
    b2: Scalar = 0.99,
    eps: Scalar = 1e-8,
    gamma: Scalar = 0.025,
    weight_decay: Scalar = 0.0,
    mask: MaskOrFn = None,
    max_norm: Scalar | None = 1.0,
) -> chain:
    """MARS-AdamW (Yuan et al. 2024): AdamW on the clipped variance-reduced gradient of :class:`scale_by_mars`.

    ``scale_by_mars -> scale_by_adam -> add_decayed_weights -> scale_by_learning_rate``::

        c_k = clip(g_k + gamma (b1 / (1 - b1)) (g_k - g_{k-1}), max_norm)
        u   = -lr (Adam(c)_k + weight_decay theta)

    Yuan, Liu, Wu et al. 2024, "MARS: Unleashing the Power of Variance Reduction for Training Large Models", arXiv
    2411.10438, Algorithm 2, approximate form. Defaults are the authors' (``b1=0.95``, ``b2=0.99``,
    ``gamma=0.025``). Named ``mars_adamw`` because MARS is a family (AdamW, Lion and Shampoo instances); this is
    its AdamW instance. Unlike the authors' default (``optimize_1d=False``), every leaf gets the MARS correction.

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count.
      b1: the decay of Adam's first moment (also in the correction), in ``[0, 1)``. Default 0.95.
      b2: the decay of Adam's second moment, in ``[0, 1)``. Default 0.99.
      eps: added to the root of the second moment, ``>= 0``. Default 1e-8.
      gamma: the weight of the gradient correction, ``>= 0``. Default 0.025.
      weight_decay: the decoupled weight decay ``>= 0`` (multiplied by the learning rate). Default 0.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.
      max_norm: the per-leaf norm of the corrected gradient, ``> 0``, or None (no clipping). Default 1.0.

    Returns:
      A ``chain`` of the four blocks; its state is ``(ScaleByMarsState, ScaleByAdamState, EmptyState,
      EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``mars_adamw(max_norm=0.0): max_norm must be > 0``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.mars_adamw(learning_rate=0.1)
      >>> state = opt.init(jnp.zeros(2))
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), state, jnp.zeros(2))
      >>> print(updates)  # Adam's first step, -lr sign(c)
      [-0.1  0.1]
    """
    return chain(
        scale_by_mars(b1, gamma, max_norm),
        scale_by_adam(b1, b2, eps),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
