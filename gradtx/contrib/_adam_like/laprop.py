"""LaProp (Ziyin, Wang & Ueda 2020): momentum averages the gradient *after* the second moment has normalised it."""

from __future__ import annotations

from typing import Any

from jax.typing import DTypeLike

from gradtx import tree
from gradtx.base import MaskOrFn, Scalar, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import dtype_option, non_negative, probability, pytree_class, recipe, state_dtype
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_base import AdamLike, Moment, Step, widest
from gradtx.transforms.adam_family import ScaleByAdamState

__all__ = ["laprop", "scale_by_laprop"]


@pytree_class
class scale_by_laprop(AdamLike[ScaleByAdamState]):
    """LaProp's direction: normalise the gradient by the root of the second moment, then average it.

    Ziyin, Wang & Ueda 2020, "LaProp: Separating Momentum and Adaptivity in Adam", arXiv 2002.04839, Algorithm 1,
    with the bias corrections and ``eps`` placed as in the authors' code (github.com/Z-T-WANG/LaProp-Optimizer,
    ``laprop.py`` at commit ff5efc069795ee82dcebdc8371784c59545c5bd3). With ``k`` the 1-based step::

        v_k = b2 v_{k-1} + (1 - b2) g^2
        m_k = b1 m_{k-1} + (1 - b1) g / (sqrt(v_k / (1 - b2^k)) + eps)
        u   = m_k / (1 - b1^k)

    Adam averages ``g`` and divides the average by ``sqrt(v)``; LaProp divides each gradient by the ``sqrt(v)`` of
    its own step and averages the quotients, so the momentum and the adaptivity are decoupled (``b1 > b2`` is
    allowed and stable). With ``b1 = 0`` it is RMSProp with the bias-corrected second moment and ``eps`` outside
    the root. The authors' code keeps the learning rate inside the momentum (``m`` accumulates ``lr g / ...`` and
    its correction is an average of the past rates); with a constant learning rate that is this block followed by
    ``scale_by_learning_rate``, with a schedule gradtx multiplies the current rate outside (as Optax does for Adam).
    State: ``ScaleByAdamState(count, mu, nu)``. Each leaf is computed in the widest compute dtype of the gradient
    and its state; the output points uphill: follow it with ``scale_by_learning_rate`` (:func:`laprop`).

    Args:
      b1: the decay of the momentum of the normalised gradient, in ``[0, 1)``. Default 0.9.
      b2: the decay of the second moment ``v``, in ``[0, 1)``. Default 0.999.
      eps: added to the root of the bias-corrected second moment, ``>= 0``. Default 1e-15 (the authors').
      mu_dtype: the dtype ``m`` is stored in, a real floating dtype or None (the parameter dtype). Default None.
      nu_dtype: the dtype ``v`` is stored in, a real floating dtype or None (the parameter dtype); keyword-only.
        Default None.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_laprop(b1=1.2): b1 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. ``scale_by_laprop(b1='a'): b1 must be a real number in
        [0, 1), not str``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_laprop()
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(updates)  # g / |g| at the first step
      [ 1. -1.]
    """

    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.999)
    eps: Scalar = non_negative(default=1e-15)
    mu_dtype: DTypeLike | None = dtype_option(default=None, real_only=True)
    nu_dtype: DTypeLike | None = state_dtype(default=None, real_only=True)

    State = ScaleByAdamState
    moments = (Moment("mu", "mu_dtype"), Moment("nu", "nu_dtype"))

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any, nu: Any) -> tuple[Any, ...]:
        w = widest(x, g, mu, nu)
        v = w.ema_real(self.b2, nu, w.abs_sq(g))
        denom = safe_sqrt(v / w.debias(self.b2, step.k)) + w.hyper(self.eps)
        m = w.ema(self.b1, mu, w.cast(g) / w.cast(denom))
        return m / w.cast(w.debias(self.b1, step.k)), m, v


@recipe
def laprop(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-15,
    weight_decay: Scalar = 0.0,
    mask: MaskOrFn = None,
    mu_dtype: DTypeLike | None = None,
    *,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """LaProp (Ziyin, Wang & Ueda 2020) with decoupled weight decay.

    ``scale_by_laprop -> add_decayed_weights -> scale_by_learning_rate``: ``u = -lr (m_k / (1 - b1^k) + wd theta)``
    with ``m_k`` the momentum of the gradients normalised by ``sqrt(v_k / (1 - b2^k)) + eps`` (see
    :class:`scale_by_laprop`). Ziyin, Wang & Ueda 2020, "LaProp: Separating Momentum and Adaptivity in Adam",
    arXiv 2002.04839. The authors' code subtracts ``wd theta`` without the learning rate (their README asks to
    schedule both); here the decay is multiplied by the learning rate, as in AdamW and Optax.

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count.
      b1: the decay of the momentum, in ``[0, 1)``. Default 0.9.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.999.
      eps: added to the root of the bias-corrected second moment, ``>= 0``. Default 1e-15.
      weight_decay: the decoupled weight decay ``wd >= 0`` (multiplied by the learning rate). Default 0.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.
      mu_dtype: the dtype of the momentum, a real floating dtype or None (the parameter dtype). Default None.
      nu_dtype: the dtype of the second moment, a real floating dtype or None (keyword-only). Default None.

    Returns:
      A ``chain`` of the three blocks; its state is ``(ScaleByAdamState, EmptyState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``laprop(b2=1.0): b2 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. ``laprop(learning_rate='a'): learning_rate must be a finite
        real number or a schedule count -> value, not str``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.laprop(learning_rate=0.1)
      >>> params = jnp.zeros(2)
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), opt.init(params), params)
      >>> print(updates)
      [-0.1  0.1]
    """
    return chain(
        scale_by_laprop(b1, b2, eps, mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
