"""AdaBound and AMSBound (Luo et al. 2019): Adam with per-coordinate step sizes clipped to closing bounds."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import Updates
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import flag, non_negative, positive, probability, pytree_class, recipe, scalar_or_schedule
from gradtx.transforms import add_decayed_weights
from gradtx.transforms.adam_base import AdamLike, Moment, Step

__all__ = ["ScaleByAdaBoundState", "ScaleByAmsBoundState", "adabound", "amsbound", "scale_by_adabound"]


class ScaleByAdaBoundState(NamedTuple):
    """AdaBound's step count and Adam's moments ``mu``, ``nu``."""

    count: jax.Array
    mu: Updates
    nu: Updates


class ScaleByAmsBoundState(NamedTuple):
    """AMSBound's step count, ``mu``, ``nu`` and the running maximum ``nu_max`` of ``nu``."""

    count: jax.Array
    mu: Updates
    nu: Updates
    nu_max: Updates


@pytree_class
class scale_by_adabound(AdamLike):
    """AdaBound / AMSBound (Luo, Xiong, Liu & Sun 2019, "Adaptive Gradient Methods with Dynamic Bound of Learning
    Rate", ICLR, arXiv 1902.09843, Algorithms 2 and 3): Adam whose per-coordinate step size is clipped to bounds
    that close in on ``final_lr``, so it turns into SGD. Returns the whole update (the learning rate is inside).

    As in the authors' code (``Luolc/AdaBound``; the paper's Algorithm 2 divides by ``sqrt(k)`` instead of
    correcting bias)::

        m_k = b1 m + (1 - b1) g,   v_k = b2 v + (1 - b2) g^2    (amsbound: vmax_k = max(vmax_{k-1}, v_k))
        eta = clip(lr (sqrt(1 - b2^k) / (1 - b1^k)) / (sqrt(v_k) + eps), lower_k, upper_k)   (amsbound: vmax_k)
        lower_k = final_lr (1 - 1 / (gamma k + 1)),   upper_k = final_lr (1 + 1 / (gamma k))
        u = -eta m_k

    ``learning_rate`` and ``final_lr`` may be schedules of the 0-based count (the authors' code scales
    ``final_lr`` with the decayed learning rate: pass both as schedules for that).
    """

    learning_rate: Any = scalar_or_schedule(default=1e-3, lo=0.0)
    b1: Any = probability(default=0.9)
    b2: Any = probability(default=0.999)
    final_lr: Any = scalar_or_schedule(default=0.1, lo=0.0)
    gamma: Any = positive(default=1e-3)
    eps: Any = non_negative(default=1e-8)
    amsbound: bool = flag(default=False, kw_only=True)

    @property
    def State(self) -> type:  # type: ignore[override]
        return ScaleByAmsBoundState if self.amsbound else ScaleByAdaBoundState

    @property
    def moments(self) -> tuple[Moment, ...]:  # type: ignore[override]
        return (Moment("mu"), Moment("nu"), *((Moment("nu_max"),) if self.amsbound else ()))

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any, nu: Any, *nu_max: Any) -> tuple[Any, ...]:
        gc, k = x.cast(g), x.cast(step.k)
        m, v = x.ema(self.b1, mu, gc), x.ema(self.b2, nu, gc * gc)
        v_max = jnp.maximum(x.cast(nu_max[0]), v) if self.amsbound else v
        size = x.hyper(step.at(self.learning_rate)) * jnp.sqrt(x.debias(self.b2, k)) / x.debias(self.b1, k)
        f, gamma = x.hyper(step.at(self.final_lr)), x.hyper(self.gamma)
        lower, upper = f * (1 - 1 / (gamma * k + 1)), f * (1 + 1 / (gamma * k))
        eta = jnp.clip(size / (safe_sqrt(v_max) + x.hyper(self.eps)), lower, upper)
        return (-eta * m, m, v, v_max) if self.amsbound else (-eta * m, m, v)


@recipe
def adabound(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    final_lr: Any = 0.1,
    gamma: Any = 1e-3,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> chain:
    """AdaBound (Luo et al. 2019, arXiv 1902.09843; see :class:`scale_by_adabound`), with L2 weight decay added to
    the gradient as in the authors' code (defaults theirs: ``final_lr=0.1``, ``gamma=1e-3``)."""
    return chain(add_decayed_weights(weight_decay, mask),
                 scale_by_adabound(learning_rate, b1, b2, final_lr, gamma, eps))


@recipe
def amsbound(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    final_lr: Any = 0.1,
    gamma: Any = 1e-3,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> chain:
    """AMSBound (Luo et al. 2019, arXiv 1902.09843, Algorithm 3): AdaBound with AMSGrad's running maximum of the
    second moment (see :class:`scale_by_adabound`)."""
    return chain(add_decayed_weights(weight_decay, mask),
                 scale_by_adabound(learning_rate, b1, b2, final_lr, gamma, eps, amsbound=True))
