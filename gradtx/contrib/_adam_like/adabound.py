"""AdaBound and AMSBound (Luo et al. 2019): Adam with per-coordinate step sizes clipped to closing bounds."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import MaskOrFn, Scalar, ScalarOrSchedule, Updates
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import flag, non_negative, positive, probability, pytree_class, recipe, scalar_or_schedule
from gradtx.transforms import add_decayed_weights
from gradtx.transforms.adam_base import AdamLike, Moment, Step

__all__ = ["ScaleByAdaBoundState", "ScaleByAmsBoundState", "adabound", "amsbound", "scale_by_adabound"]


class ScaleByAdaBoundState(NamedTuple):
    """The state of :class:`scale_by_adabound` (AdaBound).

    Attributes:
      count: the number of steps taken, an int32 scalar.
      mu: Adam's first moment, like the parameters.
      nu: Adam's second moment, like the parameters.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.scale_by_adabound().init(jnp.zeros(2))
      >>> print(type(state).__name__, state.count, state.nu)
      ScaleByAdaBoundState 0 [0. 0.]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    mu: Updates
    nu: Updates


class ScaleByAmsBoundState(NamedTuple):
    """The state of :class:`scale_by_adabound` with ``amsbound=True`` (AMSBound).

    Attributes:
      count: the number of steps taken, an int32 scalar.
      mu: Adam's first moment, like the parameters.
      nu: Adam's second moment, like the parameters.
      nu_max: the running maximum of ``nu``, like the parameters.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.scale_by_adabound(amsbound=True).init(jnp.zeros(2))
      >>> print(type(state).__name__, state.nu_max)
      ScaleByAmsBoundState [0. 0.]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    mu: Updates
    nu: Updates
    nu_max: Updates


@pytree_class
class scale_by_adabound(AdamLike[ScaleByAdaBoundState | ScaleByAmsBoundState]):
    """AdaBound / AMSBound's whole update: Adam with per-coordinate step sizes clipped to closing bounds.

    Luo, Xiong, Liu & Sun 2019, "Adaptive Gradient Methods with Dynamic Bound of Learning Rate", ICLR, arXiv
    1902.09843, Algorithms 2 and 3. The per-coordinate step size is clipped to bounds that close in on
    ``final_lr``, so the method turns into SGD. The learning rate is inside: the output is the step to add to the
    parameters. As in the authors' code (``Luolc/AdaBound``; the paper's Algorithm 2 divides by ``sqrt(k)``
    instead of correcting bias), with ``k`` the 1-based step::

        m_k = b1 m + (1 - b1) g,   v_k = b2 v + (1 - b2) g^2    (amsbound: vmax_k = max(vmax_{k-1}, v_k))
        eta = clip(lr (sqrt(1 - b2^k) / (1 - b1^k)) / (sqrt(v_k) + eps), lower_k, upper_k)   (amsbound: vmax_k)
        lower_k = final_lr (1 - 1 / (gamma k + 1)),   upper_k = final_lr (1 + 1 / (gamma k))
        u = -eta m_k

    ``learning_rate`` and ``final_lr`` may be schedules of the 0-based count (the authors' code scales
    ``final_lr`` with the decayed learning rate: pass both as schedules for that). State:
    :class:`ScaleByAdaBoundState`, or :class:`ScaleByAmsBoundState` with ``amsbound=True``.

    Args:
      learning_rate: Adam's step size ``lr >= 0``, a number or a schedule. Default 1e-3.
      b1: the decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.999.
      final_lr: the SGD step size the bounds converge to, ``>= 0``, a number or a schedule. Default 0.1.
      gamma: the speed at which the bounds close, ``> 0``. Default 1e-3.
      eps: added to ``sqrt(v)``, ``>= 0``. Default 1e-8.
      amsbound: keep the running maximum of ``v`` (AMSBound; keyword-only). Default False.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_adabound(final_lr=-1.0): final_lr must be >= 0``.
      TypeError: an option of the wrong type, e.g. ``scale_by_adabound(amsbound=1): amsbound must be True or
        False, not int``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_adabound(learning_rate=0.1)
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(updates)  # Adam's first step, -lr sign(g), inside the bounds
      [-0.1  0.1]
    """

    learning_rate: ScalarOrSchedule = scalar_or_schedule(default=1e-3, lo=0.0)
    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.999)
    final_lr: ScalarOrSchedule = scalar_or_schedule(default=0.1, lo=0.0)
    gamma: Scalar = positive(default=1e-3)
    eps: Scalar = non_negative(default=1e-8)
    amsbound: bool = flag(default=False, kw_only=True)

    @property
    def State(self) -> type:
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
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    final_lr: ScalarOrSchedule = 0.1,
    gamma: Scalar = 1e-3,
    eps: Scalar = 1e-8,
    weight_decay: Scalar = 0.0,
    mask: MaskOrFn = None,
) -> chain:
    """AdaBound (Luo et al. 2019): Adam whose step sizes are clipped to bounds closing on ``final_lr``.

    ``add_decayed_weights -> scale_by_adabound``: L2 weight decay added to the gradient as in the authors' code,
    then :class:`scale_by_adabound` makes the whole step (``u = -clip(lr_hat / (sqrt(v) + eps), lower_k,
    upper_k) m``). Luo, Xiong, Liu & Sun 2019, "Adaptive Gradient Methods with Dynamic Bound of Learning Rate",
    ICLR, arXiv 1902.09843. Defaults are the authors' (``final_lr=0.1``, ``gamma=1e-3``).

    Args:
      learning_rate: Adam's step size ``>= 0``, a number or a schedule of the 0-based step count.
      b1: the decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.999.
      final_lr: the SGD step size the bounds converge to, ``>= 0``, a number or a schedule. Default 0.1.
      gamma: the speed at which the bounds close, ``> 0``. Default 1e-3.
      eps: added to the root of the second moment, ``>= 0``. Default 1e-8.
      weight_decay: the L2 weight decay ``>= 0`` added to the gradient. Default 0.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.

    Returns:
      A ``chain(add_decayed_weights, scale_by_adabound)``; its state is ``(EmptyState, ScaleByAdaBoundState)``.

    Raises:
      ValueError: an option out of range, e.g. ``adabound(gamma=0.0): gamma must be > 0``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.adabound(learning_rate=0.1)
      >>> state = opt.init(jnp.zeros(2))
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), state, jnp.zeros(2))
      >>> print(updates)
      [-0.1  0.1]
    """
    return chain(add_decayed_weights(weight_decay, mask),
                 scale_by_adabound(learning_rate, b1, b2, final_lr, gamma, eps))


@recipe
def amsbound(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    final_lr: ScalarOrSchedule = 0.1,
    gamma: Scalar = 1e-3,
    eps: Scalar = 1e-8,
    weight_decay: Scalar = 0.0,
    mask: MaskOrFn = None,
) -> chain:
    """AMSBound (Luo et al. 2019, Algorithm 3): AdaBound with AMSGrad's running maximum of the second moment.

    ``add_decayed_weights -> scale_by_adabound(amsbound=True)``: as :func:`adabound`, with ``v`` replaced by its
    running maximum ``vmax_k = max(vmax_{k-1}, v_k)`` in the step size. Luo, Xiong, Liu & Sun 2019, "Adaptive
    Gradient Methods with Dynamic Bound of Learning Rate", ICLR, arXiv 1902.09843.

    Args:
      learning_rate: Adam's step size ``>= 0``, a number or a schedule of the 0-based step count.
      b1: the decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.999.
      final_lr: the SGD step size the bounds converge to, ``>= 0``, a number or a schedule. Default 0.1.
      gamma: the speed at which the bounds close, ``> 0``. Default 1e-3.
      eps: added to the root of the second moment, ``>= 0``. Default 1e-8.
      weight_decay: the L2 weight decay ``>= 0`` added to the gradient. Default 0.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.

    Returns:
      A ``chain(add_decayed_weights, scale_by_adabound(amsbound=True))``; its state is ``(EmptyState,
      ScaleByAmsBoundState)``.

    Raises:
      ValueError: an option out of range, e.g. ``amsbound(b2=1.0): b2 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.amsbound(learning_rate=0.1)
      >>> state = opt.init(jnp.zeros(2))
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), state, jnp.zeros(2))
      >>> print(updates, state[1].nu_max)
      [-0.1  0.1] [0.001 0.004]
    """
    return chain(add_decayed_weights(weight_decay, mask),
                 scale_by_adabound(learning_rate, b1, b2, final_lr, gamma, eps, amsbound=True))
