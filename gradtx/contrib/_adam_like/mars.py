"""MARS (Yuan et al. 2024): a variance-reduced gradient for an Adam-type block, and its AdamW instance."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import GradientTransformation, Params, Updates, check_tree_match
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import non_negative, positive, probability, pytree_class, recipe
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_family import scale_by_adam

__all__ = ["ScaleByMarsState", "mars_adamw", "scale_by_mars"]


class ScaleByMarsState(NamedTuple):
    """The previous gradient ``last_grad`` (zeros before the first step)."""

    last_grad: Updates


@pytree_class
class scale_by_mars(GradientTransformation):
    """MARS's variance-reduced gradient (Yuan, Liu, Wu et al. 2024, "MARS: Unleashing the Power of Variance
    Reduction for Training Large Models", arXiv 2411.10438, Algorithm 2, the approximate form MARS-approx that
    needs no second gradient evaluation)::

        c_k = g_k + gamma (b1 / (1 - b1)) (g_k - g_{k-1}),       g_0 = 0 (the authors' code)
        c_k <- c_k * max_norm / ||c_k||   where ||c_k|| > max_norm   (per leaf; max_norm=None: no clipping)

    Feed it to an Adam-type block (:func:`mars_adamw`). ``b1`` is the momentum of that block. The previous
    gradient is kept in the state's dtype (the parameters'), whatever the gradient's dtype.
    """

    b1: Any = probability(default=0.95)
    gamma: Any = non_negative(default=0.025)
    max_norm: Any = positive(default=1.0, optional=True)

    def init(self, params: Params) -> ScaleByMarsState:
        return ScaleByMarsState(last_grad=tree.zeros_like(params))

    def update(self, updates: Updates, state: ScaleByMarsState, params: Params | None = None, **extra: Any):
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
    learning_rate: Any,
    b1: Any = 0.95,
    b2: Any = 0.99,
    eps: Any = 1e-8,
    gamma: Any = 0.025,
    weight_decay: Any = 0.0,
    mask: Any = None,
    max_norm: Any = 1.0,
) -> chain:
    """MARS-AdamW (Yuan et al. 2024, arXiv 2411.10438, Algorithm 2, approximate form): AdamW on the clipped
    variance-reduced gradient of :class:`scale_by_mars` (defaults: the authors', ``b1=0.95``, ``b2=0.99``,
    ``gamma=0.025``). Named ``mars_adamw`` because MARS is a family (AdamW, Lion and Shampoo instances); this is
    its AdamW instance. Unlike the authors' default (``optimize_1d=False``), every leaf gets the MARS correction."""
    return chain(
        scale_by_mars(b1, gamma, max_norm),
        scale_by_adam(b1, b2, eps),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
