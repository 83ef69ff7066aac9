"""Scaling blocks: a constant factor, the learning rate (the one sign flip), a schedule, the sign.

    scale(s):                   u = s * g
    scale_by_learning_rate(lr): u = -lr(t) * g      (t: the 0-based count of previous updates)
    scale_by_schedule(f):       u = f(t) * g
    scale_by_sign():            u = sign(g)          (signSGD, Bernstein et al. 2018, arXiv 1802.04434)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import (
    EmptyState,
    GradientTransformation,
    OptState,
    Params,
    StatelessTransformation,
    Updates,
    safe_int32_increment,
    zero_count,
)
from gradtx.fields import InvalidType, as_pytree_callable, flag, option, pytree_class, real, scalar_or_schedule


class ScaleByScheduleState(NamedTuple):
    """The step counter of a scheduled block (0 before the first update)."""

    count: jax.Array


def _scaled(updates: Updates, factor: Any) -> Updates:
    """``factor * g`` in each leaf's compute dtype, returned in the leaf's dtype."""

    def one(g: Any) -> jax.Array:
        x = tree.Leaf(g)  # a real factor times a complex leaf: cast explicitly (strict dtype promotion)
        return x.out(x.cast(x.hyper(factor)) * x.cast(g))

    return jax.tree.map(one, updates)


def schedule_state(value: Any) -> EmptyState | ScaleByScheduleState:
    """The state of a block whose ``value`` may be a schedule: a count from 0 if it is, else ``EmptyState()``."""
    return ScaleByScheduleState(count=zero_count()) if callable(value) else EmptyState()


def scheduled(value: Any, state: Any) -> tuple[Any, Any]:
    """``value`` for this step and the next state: a schedule is evaluated at ``state.count``, which advances;
    a number is returned as it is, with ``state``."""
    if callable(value):
        return value(state.count), ScaleByScheduleState(count=safe_int32_increment(state.count))
    return value, state


@pytree_class
class scale(StatelessTransformation):
    """Multiply every update by a constant ``step_size``: ``u = step_size * g``."""

    step_size: Any = real()

    def update(self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any):
        del params, extra
        return _scaled(updates, self.step_size), state


@pytree_class
class scale_by_schedule(GradientTransformation):
    """Multiply by ``step_size_fn(count)``, the schedule evaluated at the 0-based step count."""

    step_size_fn: Any = option(accepts="a schedule count -> value")

    def __check_init__(self) -> None:
        if not callable(self.step_size_fn):
            self._fail("step_size_fn", self.step_size_fn, "must be a callable count -> value", InvalidType)
        # A gradtx schedule stays a pytree (its numbers are leaves of this block); a plain function is static.
        object.__setattr__(self, "step_size_fn", as_pytree_callable(self.step_size_fn))

    def init(self, params: Params) -> ScaleByScheduleState:
        del params
        return ScaleByScheduleState(count=zero_count())

    def update(self, updates: Updates, state: ScaleByScheduleState, params: Params | None = None, **extra: Any):
        del params, extra
        factor, state = scheduled(self.step_size_fn, state)
        return _scaled(updates, factor), state


@pytree_class
class scale_by_learning_rate(GradientTransformation):
    """Scale by the negative learning rate: ``u = -lr * g``, the only sign flip of a recipe.

    ``learning_rate`` is a number or a schedule ``count -> lr`` evaluated at the 0-based step count
    (then the state carries the count). ``flip_sign=False`` scales by ``+lr`` (for gradient ascent or
    for blocks that flip the sign themselves).
    """

    learning_rate: Any = scalar_or_schedule()
    flip_sign: bool = flag(default=True, kw_only=True)

    def init(self, params: Params) -> EmptyState | ScaleByScheduleState:
        del params
        return schedule_state(self.learning_rate)

    def update(self, updates: Updates, state: Any, params: Params | None = None, **extra: Any):
        del params, extra
        sign = -1.0 if self.flip_sign else 1.0
        lr, state = scheduled(self.learning_rate, state)
        return _scaled(updates, sign * jnp.asarray(lr)), state


@pytree_class
class scale_by_sign(StatelessTransformation):
    """Replace each update by its sign (Bernstein et al. 2018, signSGD, arXiv 1802.04434)."""

    def update(self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any):
        del params, extra
        return jax.tree.map(jnp.sign, updates), state
