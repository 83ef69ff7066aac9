"""Schedule-Free learning (Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky 2024, "The Road Less
Scheduled", arXiv 2405.15682, Algorithms 1 and 2).

Momentum is replaced by interpolation and averaging of three sequences: ``z`` (the base optimizer's iterates),
``x`` (their weighted average, where the model is evaluated) and ``y`` (where gradients are taken, and what the
caller holds as ``params``)::

    y_t     = (1 - b1) z_t + b1 x_t
    z_{t+1} = z_t + base_update(grad f(y_t))                 (e.g. -lr g for SGD)
    c_{t+1} = w_t / sum_{i<=t} w_i,   w_t = max_{i<=t} lr_i ** weight_lr_power
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}

The state stores ``z`` (and the scalars); ``x`` is recovered from the held ``y`` as ``x = (y - (1 - b1) z) / b1``
(``b1 > 0``), and the update returned is ``y_{t+1} - y_t``. Evaluate the model at
``schedule_free_eval_params(state, params) = x``. The base optimizer must not use momentum (``b1`` plays that
role). The weights ``w_t`` follow the paper's ``lr_max^2`` warm-up weighting (``weight_lr_power = 2``).

Conventions (as ``optax.contrib.schedule_free``, names, defaults and state fields too): ``learning_rate`` (a
number or a schedule) is evaluated at the 1-based ``step_count`` for the weights, while the base optimizer
evaluates its own schedule at its 0-based count; ``c = 0`` while all learning rates so far are 0 (``0 / 0``).
Deviation from Optax: the scalars ``b1``, ``weight_sum`` and ``max_lr`` are stored in float32 or wider (the
widest real dtype of the parameters), never rounded to bfloat16 (Optax stores them in the narrowest parameter
dtype, so ``b1 = 0.9`` becomes 0.8984 for bfloat16 parameters); for float32 and float64 parameters nothing
differs.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    OptState,
    Params,
    Scalar,
    ScalarOrSchedule,
    TransformationLike,
    Updates,
    check_tree_match,
    require_params,
    safe_int32_increment,
)
from gradtx.combine import chain
from gradtx.fields import Check, dtype_option, hyper, option, pytree_class, real, recipe, scalar_or_schedule
from gradtx.optimizers import sgd
from gradtx.schedules import warmup_constant_schedule
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate, scale_by_rms
from gradtx.tree.precision import widest_real_dtype
from gradtx.wrappers import with_extra_args_support

__all__ = [
    "ScheduleFreeState",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
]


class ScheduleFreeState(NamedTuple):
    """The state of :class:`schedule_free` (Optax's field names).

    Attributes:
      b1: the interpolation ``b1``, a scalar (float32 or wider).
      weight_sum: the sum of the averaging weights ``sum_i w_i``, a scalar.
      step_count: the 1-based count of the next step, an int32 scalar.
      max_lr: the largest learning rate so far, a scalar.
      base_optimizer_state: the base optimizer's state.
      z: the base optimizer's iterates ``z``, like the parameters (in ``state_dtype`` if given).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.schedule_free_sgd(0.5).init(jnp.array([1.0, 2.0]))
      >>> print(state.step_count, state.z)
      1 [1. 2.]
    """

    b1: jax.Array
    weight_sum: jax.Array
    step_count: jax.Array
    max_lr: jax.Array
    base_optimizer_state: OptState
    z: Params


def _find_state(state: Any) -> ScheduleFreeState:
    if isinstance(state, ScheduleFreeState):
        return state
    found = tree.get_all_with_path(state, "ScheduleFreeState")
    if len(found) != 1:
        raise ValueError(
            "schedule_free_eval_params: state must be (or contain exactly one) ScheduleFreeState; "
            f"found {len(found)}"
        )
    return cast(ScheduleFreeState, found[0][1])


def schedule_free_eval_params(state: OptState, params: Params) -> Params:
    """The evaluation point ``x = (y - (1 - b1) z) / b1`` of :class:`schedule_free` (``params`` is ``y``).

    Schedule-Free takes gradients at ``y`` (the parameters the caller holds) but evaluates the model at the
    average ``x`` (Defazio et al. 2024, arXiv 2405.15682).

    Args:
      state: a ``ScheduleFreeState``, or a state that contains exactly one (e.g. inside a ``chain``).
      params: the current parameters ``y``.

    Returns:
      ``x``, a tree like ``params`` (each leaf in its parameter's dtype).

    Raises:
      ValueError: ``state`` holds no ``ScheduleFreeState`` or several (``schedule_free_eval_params: state must be
        (or contain exactly one) ScheduleFreeState; found 0``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.schedule_free_sgd(learning_rate=0.5)
      >>> params = jnp.array([1.0, 2.0])
      >>> state = opt.init(params)
      >>> for _ in range(2):
      ...     updates, state = opt.update(jnp.array([1.0, -2.0]), state, params)
      ...     params = gradtx.apply_updates(params, updates)
      >>> print(params, gradtx.contrib.schedule_free_eval_params(state, params))  # y, then x
      [0.225 3.55 ] [0.25 3.5 ]
    """
    s = _find_state(state)

    def one(y: Any, z: Any) -> Any:
        x = _wider_leaf(y, z)
        b1 = x.cast(s.b1)
        return tree.Leaf(y).out((x.cast(y) - (1 - b1) * x.cast(z)) / b1)

    return jax.tree.map(one, params, s.z)


def _wider_leaf(y: Any, z: Any) -> tree.Leaf:
    """The precision of a parameter ``y`` computed with its stored ``z``: the wider of their dtypes (the
    promotion of their compute dtypes)."""
    return tree.Leaf(jnp.promote_types(jnp.result_type(y), jnp.result_type(z)))


@pytree_class
class schedule_free(GradientTransformation):
    """Make ``base_optimizer`` schedule-free: interpolation and averaging replace momentum and the decay schedule.

    Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky 2024, "The Road Less Scheduled", NeurIPS, arXiv
    2405.15682, Algorithms 1 and 2; see the module docstring::

        y_t     = (1 - b1) z_t + b1 x_t                           (the parameters held: gradients are taken here)
        z_{t+1} = z_t + base_update(grad f(y_t))
        c_{t+1} = w_t / sum_{i<=t} w_i,   w_t = max_{i<=t} lr_i ** weight_lr_power
        x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}             (evaluate here: schedule_free_eval_params)

    The update returned is ``y_{t+1} - y_t``. The base optimizer must not use momentum (``b1`` plays that role).
    ``update`` needs ``params`` (``y``). Names, signature, defaults and state fields of
    ``optax.contrib.schedule_free``. State: :class:`ScheduleFreeState`.

    Args:
      base_optimizer: the transformation whose iterates are ``z`` (without momentum; a gradtx or Optax
        transformation).
      learning_rate: its learning rate ``>= 0``, a number or a schedule of the 1-based step count (a warm-up
        without decay), used for the averaging weights.
      b1: the interpolation between ``x`` and ``z``, in ``(0, 1]``. Default 0.9.
      weight_lr_power: the power of the largest learning rate in the averaging weights (finite). Default 2.
      state_dtype: the dtype ``z`` is stored in, or None (each parameter's). Default None.

    Raises:
      ValueError: an option out of range, e.g. ``schedule_free(b1=0.0): b1 must be in (0, 1]``; at ``update``, no
        ``params``.
      TypeError: ``base_optimizer`` is not a transformation (``with_extra_args_support: expected a transformation
        with init and update, got 3``), or an option of the wrong type; at ``update``, params whose tree does not
        match the state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.schedule_free(gradtx.sgd(0.5), learning_rate=0.5)
      >>> params = jnp.array([1.0, 2.0])
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(params), params)
      >>> print(updates)  # the first step is the base step: c_1 = 1
      [-0.5  1. ]
    """

    base_optimizer: TransformationLike = option(accepts="a transformation")
    learning_rate: ScalarOrSchedule = scalar_or_schedule(lo=0.0)
    b1: Scalar = hyper(default=0.9, lo=0.0, hi=1.0, lo_open=True)
    weight_lr_power: Scalar = real(default=2.0)
    state_dtype: DTypeLike | None = dtype_option(default=None)

    def __check_init__(self) -> None:
        object.__setattr__(self, "base_optimizer", with_extra_args_support(self.base_optimizer))

    def init(self, params: Params) -> ScheduleFreeState:
        dt = widest_real_dtype(params)
        z = tree.cast(params, self.state_dtype) if self.state_dtype is not None else params
        z = jax.tree.map(lambda x: jnp.array(x, copy=True), z)
        return ScheduleFreeState(
            b1=jnp.asarray(self.b1, dt),
            weight_sum=jnp.zeros([], dt),
            step_count=jnp.ones([], jnp.int32),
            max_lr=jnp.zeros([], dt),
            base_optimizer_state=self.base_optimizer.init(params),
            z=z,
        )

    def update(
        self, updates: Updates, state: ScheduleFreeState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ScheduleFreeState]:
        require_params("schedule_free.update", params)
        check_tree_match("schedule_free.update", state.z, params, what="params")
        sdt = state.max_lr.dtype
        lr = self.learning_rate(state.step_count) if callable(self.learning_rate) else self.learning_rate
        lr = jnp.asarray(lr).astype(sdt)
        max_lr = jnp.maximum(state.max_lr, lr)
        weight = max_lr ** jnp.asarray(self.weight_lr_power).astype(sdt)
        weight_sum = state.weight_sum + weight
        bad = jnp.isnan(weight) | jnp.isnan(weight_sum)
        ratio = jnp.where(weight_sum == 0, jnp.zeros_like(weight), weight / jnp.where(weight_sum == 0, 1, weight_sum))
        ck = jnp.where(bad, jnp.full_like(weight, jnp.nan), ratio)

        base_updates, base_state = self.base_optimizer.update(updates, state.base_optimizer_state, params, **extra)
        def advance(zi: Any, ui: Any) -> Any:  # z_{t+1} = z_t + base update
            x = tree.Leaf(zi)
            return x.out(x.cast(zi) + x.cast(ui))

        z = jax.tree.map(advance, state.z, base_updates)

        def step(y: Any, z_old: Any, z_new: Any) -> Any:
            # y_{t+1} - y_t = b1 (x_{t+1} - x_t) + (1 - b1) (z_{t+1} - z_t) with x_{t+1} - x_t = c (z_{t+1} - x_t)
            # and x_t = (y_t - (1 - b1) z_t) / b1, i.e. z_{t+1} - x_t = (z_{t+1} - z_t) + (z_t - y_t) / b1:
            #     y_{t+1} - y_t = (b1 c + 1 - b1) (z_{t+1} - z_t) + c (z_t - y_t),
            # the same number as b1 x_{t+1} + (1 - b1) z_{t+1} - y_t without its cancellation (an O(1) difference
            # of parameters rounded to float32 would cost 1e-7 absolute on updates of any size), and without a
            # division by b1: a step that moves nothing (z_{t+1} = z_t = y_t) gives exactly 0.
            x = _wider_leaf(y, z_old)
            y32, zo, zn = x.cast(y), x.cast(z_old), x.cast(z_new)
            b1, one_minus_b1 = x.hyper(self.b1), x.complement(self.b1)  # 1 - b1 rounded once
            c = x.cast(ck)
            return tree.Leaf(y).out((b1 * c + one_minus_b1) * (zn - zo) + c * (zo - y32))

        out = jax.tree.map(step, params, state.z, z)
        new_state = ScheduleFreeState(
            b1=state.b1,
            weight_sum=weight_sum,
            step_count=safe_int32_increment(state.step_count),
            max_lr=max_lr,
            base_optimizer_state=base_state,
            z=z,
        )
        return out, new_state


def _warmup(learning_rate: Any, warmup_steps: Any) -> Any:
    if warmup_steps is None:
        return learning_rate
    return warmup_constant_schedule(init_value=0.0, peak_value=learning_rate, warmup_steps=warmup_steps)


@recipe
def schedule_free_sgd(
    learning_rate: ScalarOrSchedule = 1.0,
    warmup_steps: int | None = None,
    b1: Scalar = 0.9,
    weight_decay: Scalar | None = None,
    weight_lr_power: Scalar = 2.0,
    state_dtype: DTypeLike | None = None,
) -> schedule_free:
    """Schedule-Free SGD (Defazio et al. 2024, Algorithm 1): ``schedule_free(sgd(lr))``.

    With an optional linear warm-up over ``warmup_steps`` and weight decay added to the gradient (so multiplied by
    the learning rate, as in PyTorch and Optax): the base step is ``-lr_t (g + weight_decay y)`` (see
    :class:`schedule_free`). Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky 2024, "The Road Less Scheduled",
    NeurIPS, arXiv 2405.15682. Signature and defaults of ``optax.contrib.schedule_free_sgd``. Evaluate the model
    at :func:`schedule_free_eval_params`.

    Args:
      learning_rate: the peak step size ``>= 0``, a number or a schedule. Default 1.
      warmup_steps: the steps of a linear warm-up from 0, or None (none). Default None.
      b1: the interpolation between ``x`` and ``z``, in ``(0, 1]``. Default 0.9.
      weight_decay: the weight decay ``>= 0`` added to the gradient, or None (none). Default None.
      weight_lr_power: the power of the largest learning rate in the averaging weights (finite). Default 2.
      state_dtype: the dtype ``z`` is stored in, or None (each parameter's). Default None.

    Returns:
      A :class:`schedule_free` around ``sgd`` (``chain(add_decayed_weights, sgd)`` with weight decay); its state
      is a ``ScheduleFreeState``.

    Raises:
      ValueError: an option out of range, e.g. ``schedule_free_sgd(b1=1.5): b1 must be in (0, 1]``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.schedule_free_sgd(learning_rate=0.5)
      >>> params = jnp.zeros(2)
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), opt.init(params), params)
      >>> print(updates)
      [-0.5  1. ]
    """
    lr = _warmup(learning_rate, warmup_steps)
    return schedule_free(
        chain(add_decayed_weights(weight_decay), sgd(lr)) if weight_decay is not None else sgd(lr),
        learning_rate=lr, b1=b1, weight_lr_power=weight_lr_power, state_dtype=state_dtype,
    )


@recipe
def schedule_free_adamw(
    learning_rate: ScalarOrSchedule = 0.0025,
    warmup_steps: int | None = None,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-8,
    weight_decay: Scalar = 0.0,
    weight_lr_power: Scalar = 2.0,
    state_dtype: DTypeLike | None = None,
) -> schedule_free:
    """Schedule-Free AdamW (Defazio et al. 2024, Algorithm 1 with Adam's preconditioner).

    The base step is ``-lr (g / (sqrt(v_hat) + eps) + weight_decay y)`` with ``v`` Adam's bias-corrected second
    moment (Adam with ``b1 = 0``, written as ``scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True)``,
    which keeps no unused first moment), made schedule-free by :class:`schedule_free` (``b1`` is the
    interpolation). Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky 2024, "The Road Less Scheduled", NeurIPS,
    arXiv 2405.15682. Signature and defaults of ``optax.contrib.schedule_free_adamw``. Evaluate the model at
    :func:`schedule_free_eval_params`.

    Args:
      learning_rate: the peak step size ``>= 0``, a number or a schedule. Default 0.0025.
      warmup_steps: the steps of a linear warm-up from 0, or None (none). Default None.
      b1: the interpolation between ``x`` and ``z``, in ``(0, 1]``. Default 0.9.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.999.
      eps: added to the root of the second moment, ``>= 0``. Default 1e-8.
      weight_decay: the decoupled weight decay ``>= 0`` (multiplied by the learning rate). Default 0.
      weight_lr_power: the power of the largest learning rate in the averaging weights (finite). Default 2.
      state_dtype: the dtype ``z`` is stored in, or None (each parameter's). Default None.

    Returns:
      A :class:`schedule_free` around ``chain(scale_by_rms, add_decayed_weights, scale_by_learning_rate)``; its
      state is a ``ScheduleFreeState``.

    Raises:
      ValueError: an option out of range, e.g. ``schedule_free_adamw(b2=1.0): b2 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.schedule_free_adamw(learning_rate=0.1)
      >>> params = jnp.zeros(2)
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), opt.init(params), params)
      >>> print(updates)  # Adam's first step, -lr sign(g)
      [-0.1  0.1]
    """
    Check("number", lo=0.0, hi=1.0, hi_open=True)("schedule_free_adamw", "b2", b2)  # scale_by_rms allows None
    lr = _warmup(learning_rate, warmup_steps)
    return schedule_free(
        chain(scale_by_rms(b2, eps, 0.0, False, True), add_decayed_weights(weight_decay), scale_by_learning_rate(lr)),
        learning_rate=lr, b1=b1, weight_lr_power=weight_lr_power, state_dtype=state_dtype,
    )

