"""ACProp (Zhuang et al. 2021): AdaBelief's centred second moment, used asynchronously."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradtx import tree
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import non_negative, probability, pytree_class, recipe
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_base import AdamLike, Moment, Step
from gradtx.transforms.adam_family import ScaleByBeliefState

__all__ = ["acprop", "scale_by_acprop"]


@pytree_class
class scale_by_acprop(AdamLike):
    """ACProp (Zhuang, Ding, Tang et al. 2021, "Momentum Centering and Asynchronous Update for Adaptive Gradient
    Methods", arXiv 2110.05454, Algorithm 2): AdaBelief's centred second moment, used *asynchronously*.

    The denominator uses the statistics of the previous steps only::

        u = g / (sqrt(s_{k-1} / (1 - b2^(k-1))) + eps)      (k = 1: u = g / (1 + eps))
        m_k = b1 m_{k-1} + (1 - b1) g,   s_k = b2 s_{k-1} + (1 - b2) |g - m_{k-1}|^2 + eps_root

    Conventions of ``optax.contrib.acprop`` (and of the authors' code): the prediction error uses the momentum
    *before* this step (``m_{k-1}``; Optax's docstring writes ``m_k``, its code uses ``m_{k-1}``), the numerator
    is the raw gradient, and the first step divides by ``1 + eps``. State: ``ScaleByBeliefState(count, mu, nu)``.
    """

    b1: Any = probability(default=0.9)
    b2: Any = probability(default=0.999)
    eps: Any = non_negative(default=1e-16)
    eps_root: Any = non_negative(default=1e-16)

    State = ScaleByBeliefState
    moments = (Moment("mu"), Moment("nu"))

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any, nu: Any) -> tuple[Any, ...]:
        m, s_old = x.ema(self.b1, mu, g), x.as_real(nu)
        s = x.ema_real(self.b2, s_old, x.abs_sq(x.cast(g) - x.cast(mu))) + x.hyper(self.eps_root)
        s_hat = s_old / x.debias(self.b2, jnp.maximum(step.count, 1))  # the previous steps' statistics
        s_hat = jnp.where(step.count == 0, jnp.ones_like(s_old), s_hat)
        return x.cast(g) / x.cast(safe_sqrt(s_hat) + x.hyper(self.eps)), m, s


@recipe
def acprop(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    eps_root: Any = 1e-16,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> chain:
    """ACProp (Zhuang et al. 2021, arXiv 2110.05454; see :class:`scale_by_acprop`), decoupled weight decay."""
    return chain(
        scale_by_acprop(b1, b2, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
