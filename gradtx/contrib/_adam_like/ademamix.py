"""AdEMAMix (Pagliardini et al. 2024), its warm-up of the slow EMA rate, and Simplified AdEMAMix (Morwani et al.
2025): Adam's direction plus a slow EMA of the gradients."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import Updates
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import (
    dtype_option,
    non_negative,
    positive,
    probability,
    pytree_class,
    real,
    recipe,
    state_dtype,
)
from gradtx.schedules import Schedule
from gradtx.schedules import schedule_dtype as _schedule_dtype
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_base import AdamLike, Moment, Step

__all__ = [
    "ScaleByAdemamixState",
    "ScaleBySimplifiedAdEMAMixState",
    "ademamix",
    "ademamix_b3_schedule",
    "scale_by_ademamix",
    "scale_by_simplified_ademamix",
    "simplified_ademamix",
]


class ScaleByAdemamixState(NamedTuple):
    """The counts of the fast EMA and second moment (``count``) and of the slow EMA and ``alpha`` (``count_m2``),
    the fast and slow EMAs ``m1``, ``m2`` and the second moment ``nu``."""

    count: jax.Array
    count_m2: jax.Array
    m1: Updates
    m2: Updates
    nu: Updates


@pytree_class
class scale_by_ademamix(AdamLike):
    """AdEMAMix (Pagliardini, Ablin & Grangier 2024, "The AdEMAMix Optimizer: Better, Faster, Older", arXiv
    2409.03137, Algorithm 1): Adam's direction plus ``alpha`` times a slow EMA of the gradients.

    ``m1_k = b1 m1 + (1 - b1) g``, ``m2_k = b3 m2 + (1 - b3) g``, ``nu_k = b2 nu + (1 - b2) |g|^2``,
    ``u = (m1_k / (1 - b1^k) + alpha m2_k) / (sqrt(nu_k / (1 - b2^k) + eps_root) + eps)``; the slow EMA is not
    bias-corrected (it fills slowly on purpose). ``b3`` and ``alpha`` may be schedules of the 0-based
    ``count_m2`` (the paper's warm-ups of both). Deviation from Optax: ``nu`` is stored in the parameter dtype
    (Optax stores it in ``mu_dtype``, which it documents as the first-moment dtype); ``mu_dtype`` stores
    ``m1`` and ``m2``. Complex parameters follow Optax (``|g|^2 = g conj(g)``).
    """

    b1: Any = probability(default=0.9)
    b2: Any = probability(default=0.999)
    b3: Any = probability(default=0.9999, schedule=True)
    alpha: Any = real(default=6.0, schedule=True)
    eps: Any = non_negative(default=1e-8)
    eps_root: Any = non_negative(default=0.0)
    mu_dtype: Any = dtype_option(default=None)
    nu_dtype: Any = state_dtype(default=None, real_only=True)

    State = ScaleByAdemamixState
    moments = (Moment("m1", "mu_dtype"), Moment("m2", "mu_dtype"), Moment("nu", "nu_dtype"))
    counts = ("count", "count_m2")  # b3 and alpha are schedules of count_m2

    def direction(self, x: tree.Leaf, step: Step, g: Any, m1: Any, m2: Any, nu: Any) -> tuple[Any, ...]:
        a1, a2 = x.ema(self.b1, m1, g), x.ema(step.at(self.b3), m2, g)
        v = x.ema_real(self.b2, nu, x.abs_sq(g))
        num = a1 / x.cast(x.debias(self.b1, step.k)) + x.cast(x.hyper(step.at(self.alpha))) * a2
        den = safe_sqrt(v / x.debias(self.b2, step.k) + x.hyper(self.eps_root)) + x.hyper(self.eps)
        return num / x.cast(den), a1, a2, v


@pytree_class
class ademamix_b3_schedule(Schedule):
    """AdEMAMix's warm-up of the slow EMA rate ``b3`` (Pagliardini et al. 2024, arXiv 2409.03137, Section 3 and
    Appendix; ``linear_hl_warmup_scheduler`` in the authors' ``apple/ml-ademamix``): the *half-life* of the
    EMA grows linearly from that of ``b3_start`` to that of ``b3`` over ``warmup`` steps, then ``b3`` stays::

        hl(b) = log(0.5) / log(b + 1e-8) - 1,      hl^-1(t) = 0.5 ** (1 / (t + 1))
        a = count / warmup;   b3(count) = hl^-1((1 - a) hl(b3_start) + a hl(b3))   for count < warmup

    (``count`` 0-based; a linear ramp of ``b3`` itself would leave the half-life short for most of the warm-up).
    The paper warms ``b3`` up from ``b3_start = b1`` and ``alpha`` linearly from 0 over the same number of
    steps, both usually the whole run: ``alpha = gradtx.schedules.linear_schedule(0.0, alpha, warmup)``.
    """

    b3: Any = probability()
    warmup: Any = positive()
    b3_start: Any = probability(default=0.9)

    def __call__(self, count: Any) -> jax.Array:
        dt = _schedule_dtype(self)
        half = jnp.log(jnp.asarray(0.5, dt))

        def hl(b: Any) -> jax.Array:
            return half / jnp.log(jnp.asarray(b, dt) + jnp.asarray(1e-8, dt)) - 1

        a = jnp.asarray(count, dt) / jnp.asarray(self.warmup, dt)
        mixed = (1 - a) * hl(self.b3_start) + a * hl(self.b3)
        return jnp.where(a < 1, jnp.asarray(0.5, dt) ** (1 / (jnp.where(a < 1, mixed, 0) + 1)),
                         jnp.asarray(self.b3, dt))


@recipe
def ademamix(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    b3: Any = 0.9999,
    alpha: Any = 5.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    weight_decay: Any = 0.0,
    mask: Any = None,
    *,
    nu_dtype: Any = None,
) -> chain:
    """AdEMAMix (Pagliardini et al. 2024, arXiv 2409.03137): AdamW with a mixture of a fast and a slow EMA of the
    gradients (see :class:`scale_by_ademamix`); weight decay decoupled and multiplied by the learning rate."""
    return chain(
        scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """The step count ``t``, the (undamped) momentum ``m`` and the second moment ``n``."""

    t: jax.Array
    m: Updates
    n: Updates


@pytree_class
class scale_by_simplified_ademamix(AdamLike):
    """Simplified AdEMAMix (Morwani, Vyas, Kakade et al. 2025, "Connections between Schedule-Free Optimizers,
    AdEMAMix, and Accelerated SGD Variants", arXiv 2502.02431, Algorithm 2): one undamped momentum buffer.

    ``m_k = b1 m_{k-1} + g`` (no ``1 - b1``), ``n_k = b2 n_{k-1} + (1 - b2) g^2``,
    ``u = (m_k + alpha g) / (sqrt(n_k / (1 - b2^k) + eps_root) + eps)``; ``alpha`` may be a schedule of the
    0-based count. ``alpha = 0`` is Adam with ``lr / (1 - b1)`` and no first-moment bias correction.
    Real parameters only (Optax squares ``g`` without conjugating).
    """

    b1: Any = probability(default=0.99)
    b2: Any = probability(default=0.95)
    alpha: Any = real(default=0.0, schedule=True)
    eps: Any = non_negative(default=1e-8)
    eps_root: Any = non_negative(default=0.0)

    State = ScaleBySimplifiedAdEMAMixState
    moments = (Moment("m"), Moment("n"))
    counts = ("t",)

    def direction(self, x: tree.Leaf, step: Step, g: Any, m: Any, n: Any) -> tuple[Any, ...]:
        gc = x.cast(g)
        m_new = x.hyper(self.b1) * x.cast(m) + gc
        n_new = x.ema(self.b2, n, gc * gc)
        n_hat = n_new / x.debias(self.b2, step.k)
        den = safe_sqrt(n_hat + x.hyper(self.eps_root)) + x.hyper(self.eps)
        u = (m_new + x.hyper(step.at(self.alpha)) * gc) / den
        return u, m_new, n_new


@recipe
def simplified_ademamix(
    learning_rate: Any,
    b1: Any = 0.99,
    b2: Any = 0.95,
    alpha: Any = 0.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> chain:
    """Simplified AdEMAMix (Morwani et al. 2025, arXiv 2502.02431; see :class:`scale_by_simplified_ademamix`)."""
    return chain(
        scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
