"""ACProp (Zhuang et al. 2021): AdaBelief's centred second moment, used asynchronously."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradtx import tree
from gradtx.base import MaskOrFn, Scalar, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import non_negative, probability, pytree_class, recipe
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_base import AdamLike, Moment, Step
from gradtx.transforms.adam_family import ScaleByBeliefState

__all__ = ["acprop", "scale_by_acprop"]


@pytree_class
class scale_by_acprop(AdamLike[ScaleByBeliefState]):
    """ACProp's direction: AdaBelief's centred second moment, used asynchronously.

    Zhuang, Ding, Tang, Dvornek, Tatikonda, Papademetris & Duncan 2021, "Momentum Centering and Asynchronous Update
    for Adaptive Gradient Methods", NeurIPS, arXiv 2110.05454, Algorithm 2. The denominator uses the statistics of
    the previous steps only (``k`` the 1-based step)::

        u = g / (sqrt(s_{k-1} / (1 - b2^(k-1))) + eps)      (k = 1: u = g / (1 + eps))
        m_k = b1 m_{k-1} + (1 - b1) g,   s_k = b2 s_{k-1} + (1 - b2) |g - m_{k-1}|^2 + eps_root

    Conventions of ``optax.contrib.acprop`` (and of the authors' code): the prediction error uses the momentum
    *before* this step (``m_{k-1}``; Optax's docstring writes ``m_k``, its code uses ``m_{k-1}``), the numerator
    is the raw gradient, and the first step divides by ``1 + eps``. The output points uphill: follow it with
    ``scale_by_learning_rate`` (:func:`acprop` does). State: ``ScaleByBeliefState(count, mu, nu)``, as in Optax.

    Args:
      b1: the decay of the momentum ``m`` that centres the second moment, in ``[0, 1)``. Default 0.9.
      b2: the decay of the centred second moment ``s``, in ``[0, 1)``. Default 0.999.
      eps: added to the root of the second moment, ``>= 0``. Default 1e-16.
      eps_root: added to ``s`` at every step, ``>= 0``. Default 1e-16.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_acprop(b1=1.2): b1 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. ``scale_by_acprop(b1='a'): b1 must be a real number in
        [0, 1), not str``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_acprop()
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(updates)  # the first step divides by 1 + eps
      [ 1. -2.]
    """

    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.999)
    eps: Scalar = non_negative(default=1e-16)
    eps_root: Scalar = non_negative(default=1e-16)

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
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-16,
    eps_root: Scalar = 1e-16,
    weight_decay: Scalar = 0.0,
    mask: MaskOrFn = None,
) -> chain:
    """ACProp (Zhuang et al. 2021) with decoupled weight decay.

    ``scale_by_acprop -> add_decayed_weights -> scale_by_learning_rate``: with ``d`` the direction of
    :class:`scale_by_acprop` (the gradient over the root of AdaBelief's centred second moment of the previous
    steps), ``u = -lr (d + weight_decay theta)``. Zhuang et al. 2021, "Momentum Centering and Asynchronous Update
    for Adaptive Gradient Methods", NeurIPS, arXiv 2110.05454. Signature and defaults of ``optax.contrib.acprop``.

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count.
      b1: the decay of the momentum, in ``[0, 1)``. Default 0.9.
      b2: the decay of the centred second moment, in ``[0, 1)``. Default 0.999.
      eps: added to the root of the second moment, ``>= 0``. Default 1e-16.
      eps_root: added to the second moment at every step, ``>= 0``. Default 1e-16.
      weight_decay: the decoupled weight decay ``wd >= 0`` (multiplied by the learning rate). Default 0.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.

    Returns:
      A ``chain`` of the three blocks; its state is a tuple with one entry per block, the first a
      ``ScaleByBeliefState``.

    Raises:
      ValueError: an option out of range, e.g. ``acprop(b1=1.2): b1 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. ``acprop(learning_rate='a'): learning_rate must be a finite
        real number or a schedule count -> value, not str``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.acprop(learning_rate=0.1)
      >>> state = opt.init(jnp.zeros(2))
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), state, jnp.zeros(2))
      >>> print(updates)
      [-0.1  0.2]
    """
    return chain(
        scale_by_acprop(b1, b2, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
