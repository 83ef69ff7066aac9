"""StableAdamW (Wortsman et al. 2023): AdamW with AdaFactor's update clipping, one factor per tensor."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jax.typing import DTypeLike

from gradtx import tree
from gradtx.base import MaskOrFn, Scalar, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import dtype_option, non_negative, positive, probability, pytree_class, recipe, state_dtype
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_base import AdamLike, Moment, Step, widest
from gradtx.transforms.adam_family import ScaleByAdamState

__all__ = ["scale_by_stable_adamw", "stable_adamw"]


@pytree_class
class scale_by_stable_adamw(AdamLike[ScaleByAdamState]):
    """StableAdamW's direction: Adam's, divided per tensor by ``max(1, RMS(g^2 / v_hat) / d)``.

    Wortsman, Dettmers, Zettlemoyer, Morcos, Farhadi & Schmidt 2023, "Stable and low-precision training for
    large-scale vision-language models", NeurIPS, arXiv 2304.13013, Algorithm 2 (AdamW with the update clipping of
    AdaFactor, Shazeer & Stern 2018). For each leaf (tensor), with ``k`` the 1-based step::

        m_k = b1 m_{k-1} + (1 - b1) g,     v_k = b2 v_{k-1} + (1 - b2) g^2
        m_hat = m_k / (1 - b1^k),          v_hat = v_k / (1 - b2^k)
        RMS = sqrt(mean over the leaf of g^2 / max(v_hat, eps^2))
        u   = (m_hat / (sqrt(v_hat) + eps)) / max(1, RMS / clip_threshold)

    The paper writes the bias correction into the decays (``b_hat = b (1 - b^(k-1)) / (1 - b^k)``), which makes its
    averages exactly ``m_hat`` and ``v_hat`` above. ``RMS`` is large when this gradient is large for the second
    moment that was estimated before it (``v`` lags behind a sudden change in the gradient's scale, the loss
    spikes the paper studies); dividing the step by it keeps the update no larger than Adam's at steady state.
    ``clip_threshold`` is the authors' ``clip_thresh`` (``d``; 1 in the paper). An empty leaf is not clipped.
    State: ``ScaleByAdamState(count, mu, nu)``; the output points uphill: follow it with
    ``scale_by_learning_rate`` (:func:`stable_adamw`).

    Args:
      b1: the decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.99 (the paper's).
      eps: added to ``sqrt(v_hat)`` and, squared, the floor of ``v_hat`` in the RMS, ``>= 0``. Default 1e-6 (the
        paper's).
      clip_threshold: the RMS above which the update is scaled down, ``> 0``. Default 1.0.
      mu_dtype: the dtype ``m`` is stored in, a real floating dtype or None (the parameter dtype). Default None.
      nu_dtype: the dtype ``v`` is stored in, a real floating dtype or None (the parameter dtype); keyword-only.
        Default None.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_stable_adamw(clip_threshold=0.0): clip_threshold must
        be > 0``.
      TypeError: an option of the wrong type, e.g. ``scale_by_stable_adamw(b1='a'): b1 must be a real number in
        [0, 1), not str``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_stable_adamw(eps=0.0)
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(updates)  # Adam's first step g / |g|; RMS(g^2 / v_hat) = 1 does not clip
      [ 1. -1.]
      >>> updates, state = tx.update(jnp.array([100.0, -200.0]), state)
      >>> print(updates.round(4))  # 100 times larger: Adam's step divided by RMS(g^2 / v_hat) = 1.41
      [ 0.5311 -0.5311]
    """

    leaf_structured = "its update clipping is one RMS per leaf"  # refused on a gradtx.flat.FlatTree

    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.99)
    eps: Scalar = non_negative(default=1e-6)
    clip_threshold: Scalar = positive(default=1.0)
    mu_dtype: DTypeLike | None = dtype_option(default=None, real_only=True)
    nu_dtype: DTypeLike | None = state_dtype(default=None, real_only=True)

    State = ScaleByAdamState
    moments = (Moment("mu", "mu_dtype"), Moment("nu", "nu_dtype"))

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any, nu: Any) -> tuple[Any, ...]:
        w = widest(x, g, mu, nu)
        g2 = w.abs_sq(g)
        m = w.ema(self.b1, mu, g)
        v = w.ema_real(self.b2, nu, g2)
        m_hat = m / w.cast(w.debias(self.b1, step.k))
        v_hat = v / w.debias(self.b2, step.k)
        eps = w.hyper(self.eps)
        d = m_hat / w.cast(safe_sqrt(v_hat) + eps)
        if g2.size == 0:
            return d, m, v
        rms = safe_sqrt(jnp.mean(g2 / jnp.maximum(v_hat, eps * eps)))
        factor = jnp.maximum(jnp.ones_like(rms), rms / w.hyper(self.clip_threshold))
        return d / w.cast(factor), m, v


@recipe
def stable_adamw(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.99,
    eps: Scalar = 1e-6,
    weight_decay: Scalar = 1e-4,
    mask: MaskOrFn = None,
    mu_dtype: DTypeLike | None = None,
    *,
    clip_threshold: Scalar = 1.0,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """StableAdamW (Wortsman et al. 2023): AdamW whose step is scaled down per tensor when ``v`` lags behind ``g``.

    ``scale_by_stable_adamw -> add_decayed_weights -> scale_by_learning_rate``:
    ``u = -lr (d / max(1, RMS(g^2 / max(v_hat, eps^2)) / clip_threshold) + wd theta)`` with ``d`` Adam's direction,
    the RMS taken over each tensor (see :class:`scale_by_stable_adamw`). Wortsman et al. 2023, "Stable and
    low-precision training for large-scale vision-language models", NeurIPS, arXiv 2304.13013, Algorithm 2.

    One difference from the paper, where the factor divides the learning rate and so also scales the weight decay
    (``theta -= (lr / max(1, RMS)) (wd theta + d)``): here the decay is its own block after the clipped direction
    and is not scaled by the factor (the two differ only on the steps that clip, by at most ``lr wd theta``).

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count.
      b1: the decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.99 (the paper's).
      eps: added to the root of the second moment and, squared, its floor in the RMS, ``>= 0``. Default 1e-6.
      weight_decay: the decoupled weight decay ``wd >= 0`` (multiplied by the learning rate). Default 1e-4
        (gradtx's and Optax's ``adamw``; the paper trains CLIP with 0.2).
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.
      mu_dtype: the dtype of the first moment, a real floating dtype or None (the parameter dtype). Default None.
      clip_threshold: the RMS above which the step is scaled down, ``> 0`` (keyword-only). Default 1.0.
      nu_dtype: the dtype of the second moment, a real floating dtype or None (keyword-only). Default None.

    Returns:
      A ``chain`` of the three blocks; its state is ``(ScaleByAdamState, EmptyState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``stable_adamw(b2=1.5): b2 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. ``stable_adamw(learning_rate='a'): learning_rate must be a
        finite real number or a schedule count -> value, not str``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.stable_adamw(learning_rate=0.1, eps=0.0, weight_decay=0.0)
      >>> params = jnp.zeros(2)
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), opt.init(params), params)
      >>> print(updates)
      [-0.1  0.1]
    """
    return chain(
        scale_by_stable_adamw(b1, b2, eps, clip_threshold, mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
