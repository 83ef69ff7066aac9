"""ADOPT (Taniguchi et al. 2024): Adam normalising by the *previous* second moment before averaging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import dtype_option, flag, function, non_negative, probability, pytree_class, recipe, state_dtype
from gradtx.transforms import scale_by_learning_rate
from gradtx.transforms.adam_base import AdamLike, Moment, Step, widest
from gradtx.transforms.adam_family import ScaleByAdamState

__all__ = ["adopt", "quarter_power", "scale_by_adopt"]


def quarter_power(count: Any) -> jax.Array:
    """``count ** 0.25``: ADOPT's default clipping bound ``c_k`` (Taniguchi et al. 2024, §4)."""
    return jnp.asarray(count) ** 0.25


@pytree_class
class scale_by_adopt(AdamLike):
    """ADOPT (Taniguchi et al. 2024, "ADOPT: Modified Adam Can Converge with Any beta2 with the Optimal Rate",
    arXiv 2411.02853, Algorithm 2 with clipping): normalise by the *previous* second moment, then average.

    With ``t = k - 1`` the 0-based count::

        t = 0:  v_0 = g^2,  m_0 = 0,  u = 0
        t > 0:  d = g / max(sqrt(v_{t-1}), eps),  clipped to [-c(t), c(t)] if use_clipping
                m_t = b1 m_{t-1} + (1 - b1) d,      v_t = b2 v_{t-1} + (1 - b2) g^2
                u = m_t   (nesterov: b1 m_t + (1 - b1) d)

    ``c(t) = clip_value_fn(t)``, default ``t ** 0.25``; gradtx passes ``t`` as a float of the widest real dtype of
    the updates (Optax passes the int32 count; the default gives the same numbers, and float64 runs keep float64).
    The first step only initialises ``v`` (the paper's ``v_0 = g_0^2``) and returns a zero update. State:
    ``ScaleByAdamState(count, mu, nu)`` as in Optax; ``mu_dtype`` stores ``m``. Each leaf is computed in the widest
    compute dtype of the gradient and its state.
    """

    b1: Any = probability(default=0.9)
    b2: Any = probability(default=0.9999)
    eps: Any = non_negative(default=1e-6)
    mu_dtype: Any = dtype_option(default=None, real_only=True)
    nesterov: bool = flag(default=False, kw_only=True)
    use_clipping: bool = flag(default=True, kw_only=True)
    clip_value_fn: Callable[[Any], Any] = function(default=quarter_power, kw_only=True)
    nu_dtype: Any = state_dtype(default=None, real_only=True)

    State = ScaleByAdamState
    moments = (Moment("mu", "mu_dtype"), Moment("nu", "nu_dtype"))

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any, nu: Any) -> tuple[Any, ...]:
        w = widest(x, g, mu, nu)
        gw, m_old, v_old, first = w.cast(g), w.cast(mu), w.cast(nu), step.count == 0
        v = jnp.where(first, gw * gw, w.ema(self.b2, v_old, gw * gw))
        d = gw / jnp.maximum(safe_sqrt(v_old), w.hyper(self.eps))
        if self.use_clipping:
            c = w.cast(step.at(self.clip_value_fn, step.count.astype(step.dtype)))
            d = jnp.clip(d, -c, c)
        m = jnp.where(first, m_old, w.ema(self.b1, m_old, d))
        return (jnp.where(first, m, w.ema(self.b1, m, d)) if self.nesterov else m), m, v


@recipe
def adopt(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.9999,
    eps: Any = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[Any], Any] = quarter_power,
    nu_dtype: Any = None,
) -> chain:
    """ADOPT (Taniguchi et al. 2024, arXiv 2411.02853): Adam that normalises by the previous second moment
    before averaging, converging for any ``b2`` (see :class:`scale_by_adopt`)."""
    return chain(
        scale_by_adopt(b1, b2, eps, mu_dtype, nesterov=nesterov, use_clipping=use_clipping,
                       clip_value_fn=clip_value_fn, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )
