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

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    OptState,
    Params,
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
from gradtx.wrappers import with_extra_args_support

__all__ = [
    "ScheduleFreeState",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
]


class ScheduleFreeState(NamedTuple):
    """``b1``, the sum of the averaging weights, the 1-based step count, the largest learning rate so far, the
    base optimizer's state and the sequence ``z``."""

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
    return found[0][1]


def schedule_free_eval_params(state: Any, params: Params) -> Params:
    """The evaluation point ``x = (y - (1 - b1) z) / b1`` of :func:`schedule_free` (``params`` is ``y``).

    ``state`` is a ``ScheduleFreeState`` or a state that contains exactly one (e.g. inside a ``chain``).
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
    """Make ``base_optimizer`` schedule-free (Defazio et al. 2024, arXiv 2405.15682); see the module docstring.

    ``learning_rate``: the base optimizer's learning rate (a number or a warm-up schedule without decay),
    used for the averaging weights ``max_lr ** weight_lr_power``. ``b1`` in (0, 1]: the interpolation
    between ``x`` and ``z``. ``state_dtype``: the dtype ``z`` is stored in (default: each parameter's).
    Needs ``params`` (``y``) in every ``update``.

    Args:
      base_optimizer: the transformation whose iterates are ``z`` (without momentum).
      learning_rate: its learning rate ``>= 0``, a number or a schedule (of the 1-based step count).
      b1: the interpolation between ``x`` and ``z``, in ``(0, 1]``.
      weight_lr_power: the power of the largest learning rate in the averaging weights (finite).
      state_dtype: the dtype ``z`` is stored in (None: each parameter's).
    """

    base_optimizer: Any = option(accepts="a transformation")
    learning_rate: Any = scalar_or_schedule(lo=0.0)
    b1: Any = hyper(default=0.9, lo=0.0, hi=1.0, lo_open=True)
    weight_lr_power: Any = real(default=2.0)
    state_dtype: Any = dtype_option(default=None)

    def __check_init__(self) -> None:
        object.__setattr__(self, "base_optimizer", with_extra_args_support(self.base_optimizer))

    def init(self, params: Params) -> ScheduleFreeState:
        dt = tree.widest_real_dtype(params)
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

    def update(self, updates: Updates, state: ScheduleFreeState, params: Params | None = None, **extra: Any):
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
    learning_rate: Any = 1.0,
    warmup_steps: Any = None,
    b1: Any = 0.9,
    weight_decay: Any = None,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
) -> schedule_free:
    """Schedule-Free SGD (Defazio et al. 2024, Algorithm 1): ``schedule_free(sgd(lr))``, with an optional linear
    warm-up over ``warmup_steps`` and weight decay added to the gradient (so multiplied by the learning rate,
    as in PyTorch and Optax)."""
    lr = _warmup(learning_rate, warmup_steps)
    return schedule_free(
        chain(add_decayed_weights(weight_decay), sgd(lr)) if weight_decay is not None else sgd(lr),
        learning_rate=lr, b1=b1, weight_lr_power=weight_lr_power, state_dtype=state_dtype,
    )


@recipe
def schedule_free_adamw(
    learning_rate: Any = 0.0025,
    warmup_steps: Any = None,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
) -> schedule_free:
    """Schedule-Free AdamW (Defazio et al. 2024, Algorithm 1): the base step is
    ``-lr (g / (sqrt(v_hat) + eps) + weight_decay y)`` with ``v`` Adam's bias-corrected second moment (Adam with
    ``b1 = 0``, written as ``scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True)``, which keeps no
    unused first moment)."""
    Check("number", lo=0.0, hi=1.0, hi_open=True)("schedule_free_adamw", "b2", b2)  # scale_by_rms allows None
    lr = _warmup(learning_rate, warmup_steps)
    return schedule_free(
        chain(scale_by_rms(b2, eps, 0.0, False, True), add_decayed_weights(weight_decay), scale_by_learning_rate(lr)),
        learning_rate=lr, b1=b1, weight_lr_power=weight_lr_power, state_dtype=state_dtype,
    )

