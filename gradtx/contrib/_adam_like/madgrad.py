"""MADGRAD (Defazio & Jelassi 2021): dual averaging with a cube-root scale and momentum by averaging iterates."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import Params, Updates
from gradtx.combine import chain
from gradtx.contrib._common import safe_cbrt
from gradtx.fields import non_negative, probability, pytree_class, recipe, scalar_or_schedule
from gradtx.transforms import add_decayed_weights
from gradtx.transforms.adam_base import AdamLike, Moment, Step

__all__ = ["MadgradState", "madgrad", "scale_by_madgrad"]


class MadgradState(NamedTuple):
    """The step count, the weighted sums of squared gradients ``grad_sum_sq`` and of gradients ``s``, and the
    initial parameters ``x0``."""

    count: jax.Array
    grad_sum_sq: Updates
    s: Updates
    x0: Params


def _copy(block: Any, p: Any, dtype: Any) -> jax.Array:
    """A copy of the parameter leaf ``p`` (MADGRAD's ``x0``)."""
    del block, dtype
    return jnp.copy(p)


@pytree_class
class scale_by_madgrad(AdamLike):
    """MADGRAD (Defazio & Jelassi 2021, "Adaptivity without Compromise: A Momentumized, Adaptive, Dual Averaged
    Gradient Method for Stochastic Optimization", arXiv 2101.11075, Algorithm 1): dual averaging with a cube-root
    scale and momentum by averaging iterates. Returns the whole update (the learning rate is inside).

    With ``t = k - 1`` the 0-based count and ``lambda = (lr(t) + eps) sqrt(t + 1)`` (the ``+ eps`` of the
    authors' PyTorch code, kept by Optax)::

        s_k = s_{k-1} + lambda g,   G_k = G_{k-1} + lambda g^2,   z = x0 - s_k / (cbrt(G_k) + eps)
        x_new = momentum x + (1 - momentum) z,    u = x_new - x = (1 - momentum) ((x0 - x) - s_k / (cbrt(G_k) + eps))

    (the paper's averaging weight ``c_{k+1}`` is ``1 - momentum``). Needs ``params``; ``x0`` is a copy of the
    parameters given to ``init``.
    """

    learning_rate: Any = scalar_or_schedule()
    momentum: Any = probability(default=0.9)
    eps: Any = non_negative(default=1e-6)

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
def madgrad(learning_rate: Any, momentum: Any = 0.9, weight_decay: Any = 0.0, eps: Any = 1e-6) -> chain:
    """MADGRAD (Defazio & Jelassi 2021, arXiv 2101.11075; see :class:`scale_by_madgrad`), with L2 weight decay
    added to the gradient as in the paper's code and Optax."""
    return chain(add_decayed_weights(weight_decay), scale_by_madgrad(learning_rate, momentum, eps))
