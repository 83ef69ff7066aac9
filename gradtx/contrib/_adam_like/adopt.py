"""ADOPT (Taniguchi et al. 2024): Adam normalising by the *previous* second moment before averaging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from gradtx import tree
from gradtx.base import Scalar, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import dtype_option, flag, function, non_negative, probability, pytree_class, recipe, state_dtype
from gradtx.transforms import scale_by_learning_rate
from gradtx.transforms.adam_base import AdamLike, Moment, Step, widest
from gradtx.transforms.adam_family import ScaleByAdamState

__all__ = ["adopt", "quarter_power", "scale_by_adopt"]


def quarter_power(count: ArrayLike) -> jax.Array:
    """``count ** 0.25``: ADOPT's default clipping bound ``c(t)`` (Taniguchi et al. 2024, Section 4).

    Args:
      count: the 0-based step count ``t`` (a number or an array).

    Returns:
      ``t ** 0.25`` as a ``jax.Array``.

    Examples:
      >>> from gradtx.contrib._adam_like import quarter_power
      >>> print(quarter_power(16.0))
      2.0
    """
    return jnp.asarray(count) ** 0.25


@pytree_class
class scale_by_adopt(AdamLike[ScaleByAdamState]):
    """ADOPT's direction: normalise by the *previous* second moment, then average.

    Taniguchi et al. 2024, "ADOPT: Modified Adam Can Converge with Any beta2 with the Optimal Rate", NeurIPS,
    arXiv 2411.02853, Algorithm 2 with clipping. With ``t = k - 1`` the 0-based count::

        t = 0:  v_0 = g^2,  m_0 = 0,  u = 0
        t > 0:  d = g / max(sqrt(v_{t-1}), eps),  clipped to [-c(t), c(t)] if use_clipping
                m_t = b1 m_{t-1} + (1 - b1) d,      v_t = b2 v_{t-1} + (1 - b2) g^2
                u = m_t   (nesterov: b1 m_t + (1 - b1) d)

    ``c(t) = clip_value_fn(t)``, default ``t ** 0.25``; gradtx passes ``t`` as a float of the widest real dtype of
    the updates (Optax passes the int32 count; the default gives the same numbers, and float64 runs keep float64).
    The first step only initialises ``v`` (the paper's ``v_0 = g_0^2``) and returns a zero update. State:
    ``ScaleByAdamState(count, mu, nu)`` as in Optax. Each leaf is computed in the widest compute dtype of the
    gradient and its state. The output points uphill: follow it with ``scale_by_learning_rate`` (:func:`adopt`).

    Args:
      b1: the decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
      b2: the decay of the second moment ``v``, in ``[0, 1)`` (any value converges, the paper's point).
        Default 0.9999.
      eps: the floor of ``sqrt(v)``, ``>= 0``. Default 1e-6.
      mu_dtype: the dtype ``m`` is stored in, a real floating dtype or None (the parameter dtype). Default None.
      nesterov: use the Nesterov form ``b1 m_t + (1 - b1) d`` (keyword-only). Default False.
      use_clipping: clip ``d`` to ``[-c(t), c(t)]`` (keyword-only). Default True.
      clip_value_fn: the bound ``c``, a callable of the 0-based count ``t`` (keyword-only). Default
        :func:`quarter_power` (``t ** 0.25``).
      nu_dtype: the dtype ``v`` is stored in, a real floating dtype or None (the parameter dtype); keyword-only.
        Default None.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_adopt(b1=1.2): b1 must be in [0, 1)`` or
        ``scale_by_adopt(mu_dtype='int32'): mu_dtype must be None or a real floating dtype (e.g. jnp.bfloat16)``.
      TypeError: an option of the wrong type, e.g. ``scale_by_adopt(clip_value_fn=3): clip_value_fn must be a
        callable, not int``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_adopt()
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(updates, state.nu)  # the first step only sets v = g^2
      [0. 0.] [1. 4.]
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(updates)  # (1 - b1) g / sqrt(v)
      [ 0.1 -0.1]
    """

    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.9999)
    eps: Scalar = non_negative(default=1e-6)
    mu_dtype: DTypeLike | None = dtype_option(default=None, real_only=True)
    nesterov: bool = flag(default=False, kw_only=True)
    use_clipping: bool = flag(default=True, kw_only=True)
    clip_value_fn: Callable[[jax.Array], ArrayLike] = function(default=quarter_power, kw_only=True)
    nu_dtype: DTypeLike | None = state_dtype(default=None, real_only=True)

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
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.9999,
    eps: Scalar = 1e-6,
    mu_dtype: DTypeLike | None = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], ArrayLike] = quarter_power,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """ADOPT (Taniguchi et al. 2024): Adam that normalises by the previous second moment before averaging.

    ``scale_by_adopt -> scale_by_learning_rate``: ``u = -lr m_t`` with ``m_t`` the average of the clipped
    ``g / max(sqrt(v_{t-1}), eps)`` (see :class:`scale_by_adopt`); it converges for any ``b2``, and the first step
    is zero. Taniguchi et al. 2024, "ADOPT: Modified Adam Can Converge with Any beta2 with the Optimal Rate",
    NeurIPS, arXiv 2411.02853. Signature and defaults of ``optax.contrib.adopt``.

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count.
      b1: the decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.9999.
      eps: the floor of the root of the second moment, ``>= 0``. Default 1e-6.
      mu_dtype: the dtype of the first moment, a real floating dtype or None (the parameter dtype). Default None.
      nesterov: the Nesterov form of the momentum (keyword-only). Default False.
      use_clipping: clip the normalised gradient to ``[-c(t), c(t)]`` (keyword-only). Default True.
      clip_value_fn: the bound ``c``, a callable of the 0-based count (keyword-only). Default ``t ** 0.25``.
      nu_dtype: the dtype of the second moment, a real floating dtype or None (keyword-only). Default None.

    Returns:
      A ``chain(scale_by_adopt, scale_by_learning_rate)``; its state is ``(ScaleByAdamState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``adopt(b1=1.2): b1 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. ``adopt(learning_rate='a'): learning_rate must be a finite real
        number or a schedule count -> value, not str``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.adopt(learning_rate=0.1)
      >>> state = opt.init(jnp.zeros(2))
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), state)
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), state)  # the first step is zero
      >>> print(updates)
      [-0.01  0.01]
    """
    return chain(
        scale_by_adopt(b1, b2, eps, mu_dtype, nesterov=nesterov, use_clipping=use_clipping,
                       clip_value_fn=clip_value_fn, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )
