"""Adam-atan2 (Everett et al. 2024): Adam without epsilon, its quotient replaced by a bounded ``atan2``."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jax.typing import DTypeLike

from gradtx import tree
from gradtx.base import MaskOrFn, Scalar, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import dtype_option, positive, probability, pytree_class, recipe, state_dtype
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_base import AdamLike, Moment, Step, widest
from gradtx.transforms.adam_family import ScaleByAdamState

__all__ = ["adam_atan2", "scale_by_adam_atan2"]


@pytree_class
class scale_by_adam_atan2(AdamLike[ScaleByAdamState]):
    """Adam-atan2's direction: ``a atan2(m_hat, b sqrt(v_hat))``, Adam's ratio made bounded and epsilon-free.

    Everett, Xiao, Wortsman et al. 2024, "Scaling Exponents Across Parameterizations and Optimizers", ICML,
    arXiv 2407.05872, Section 4 (Adam-atan2). With ``k`` the 1-based step::

        m_k = b1 m_{k-1} + (1 - b1) g,     v_k = b2 v_{k-1} + (1 - b2) g^2
        u   = a atan2(m_k / (1 - b1^k), b sqrt(v_k / (1 - b2^k)))

    ``atan2(y, x)`` is ``arctan(y / x)`` for ``x > 0``, so for small ratios the update is ``(a / b)`` times Adam's
    ``m_hat / sqrt(v_hat)``; it is bounded by ``a pi / 2`` and defined where ``v = 0`` (``atan2(0, 0) = 0``): no
    ``eps``, and the update is invariant to the scale of the gradients. The defaults ``a = 1.27`` (about
    ``4 / pi``, so that a constant gradient moves each coordinate by ``a atan2(1, 1) = a pi / 4``, about 1, as in
    Adam) and ``b = 1`` are those of the widely used implementation (github.com/lucidrains/adam-atan2-pytorch).
    Real gradients only (``atan2`` has no complex form). State: ``ScaleByAdamState(count, mu, nu)``; the output
    points uphill: follow it with ``scale_by_learning_rate`` (:func:`adam_atan2`).

    Args:
      b1: the decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.999.
      a: the scale of the output, ``> 0``. Default 1.27.
      b: the scale of the root of the second moment inside ``atan2``, ``> 0``. Default 1.0.
      mu_dtype: the dtype ``m`` is stored in, a real floating dtype or None (the parameter dtype). Default None.
      nu_dtype: the dtype ``v`` is stored in, a real floating dtype or None (the parameter dtype); keyword-only.
        Default None.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_adam_atan2(a=0.0): a must be > 0``.
      TypeError: an option of the wrong type, e.g. ``scale_by_adam_atan2(b1='a'): b1 must be a real number in
        [0, 1), not str``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_adam_atan2(a=1.0)
      >>> state = tx.init(jnp.zeros(3))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0, 0.0]), state)
      >>> print(updates)  # atan2(g, |g|) = +-pi/4; atan2(0, 0) = 0
      [ 0.7853982 -0.7853982  0.       ]
    """

    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.999)
    a: Scalar = positive(default=1.27)
    b: Scalar = positive(default=1.0)
    mu_dtype: DTypeLike | None = dtype_option(default=None, real_only=True)
    nu_dtype: DTypeLike | None = state_dtype(default=None, real_only=True)

    State = ScaleByAdamState
    moments = (Moment("mu", "mu_dtype"), Moment("nu", "nu_dtype"))

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any, nu: Any) -> tuple[Any, ...]:
        w = widest(x, g, mu, nu)
        m = w.ema(self.b1, mu, g)
        v = w.ema_real(self.b2, nu, w.abs_sq(g))
        m_hat = m / w.cast(w.debias(self.b1, step.k))
        root = w.hyper(self.b) * safe_sqrt(v / w.debias(self.b2, step.k))
        return w.hyper(self.a) * jnp.arctan2(m_hat, w.cast(root)), m, v


@recipe
def adam_atan2(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    weight_decay: Scalar = 0.0,
    mask: MaskOrFn = None,
    mu_dtype: DTypeLike | None = None,
    *,
    a: Scalar = 1.27,
    b: Scalar = 1.0,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """Adam-atan2 (Everett et al. 2024): epsilon-free Adam with decoupled weight decay.

    ``scale_by_adam_atan2 -> add_decayed_weights -> scale_by_learning_rate``:
    ``u = -lr (a atan2(m_hat, b sqrt(v_hat)) + wd theta)`` (see :class:`scale_by_adam_atan2`). Everett, Xiao,
    Wortsman et al. 2024, "Scaling Exponents Across Parameterizations and Optimizers", ICML, arXiv 2407.05872.

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count.
      b1: the decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.999.
      weight_decay: the decoupled weight decay ``wd >= 0`` (multiplied by the learning rate). Default 0.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.
      mu_dtype: the dtype of the first moment, a real floating dtype or None (the parameter dtype). Default None.
      a: the scale of the direction, ``> 0`` (keyword-only). Default 1.27.
      b: the scale of the root of the second moment inside ``atan2``, ``> 0`` (keyword-only). Default 1.0.
      nu_dtype: the dtype of the second moment, a real floating dtype or None (keyword-only). Default None.

    Returns:
      A ``chain`` of the three blocks; its state is ``(ScaleByAdamState, EmptyState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``adam_atan2(b=-1.0): b must be > 0``.
      TypeError: an option of the wrong type, e.g. ``adam_atan2(learning_rate='a'): learning_rate must be a finite
        real number or a schedule count -> value, not str``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.adam_atan2(learning_rate=0.1, a=1.0)
      >>> params = jnp.zeros(2)
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), opt.init(params), params)
      >>> print(updates.round(6))  # -lr atan2(g, |g|) = -+lr pi / 4
      [-0.07854  0.07854]
    """
    return chain(
        scale_by_adam_atan2(b1, b2, a, b, mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
