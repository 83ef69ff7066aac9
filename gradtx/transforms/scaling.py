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
    Updates,
    as_pytree_callable,
    is_placeholder,
    pytree_class,
    safe_int32_increment,
    static_field,
    zero_count,
)


class ScaleByScheduleState(NamedTuple):
    """The step counter of a scheduled block (0 before the first update)."""

    count: jax.Array


def _scaled(updates: Updates, factor: Any) -> Updates:
    """``factor * g`` in each leaf's compute dtype, returned in the leaf's dtype."""

    def one(g: Any) -> jax.Array:
        x = tree.up(g)  # a real factor times a complex leaf: cast explicitly (strict dtype promotion)
        return (tree.like(tree.hyper(factor, x), x) * x).astype(jnp.asarray(g).dtype)

    return jax.tree.map(one, updates)


@pytree_class
class scale(GradientTransformation):
    """Multiply every update by a constant ``step_size``: ``u = step_size * g``."""

    step_size: Any

    def __post_init__(self) -> None:
        self._check_finite("step_size")

    def init(self, params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update(self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any):
        del params, extra
        return _scaled(updates, self.step_size), state


@pytree_class
class scale_by_schedule(GradientTransformation):
    """Multiply by ``step_size_fn(count)``, the schedule evaluated at the 0-based step count."""

    step_size_fn: Any

    def __post_init__(self) -> None:
        if not callable(self.step_size_fn) and not is_placeholder(self.step_size_fn):
            self._fail("step_size_fn", self.step_size_fn, "must be a callable count -> value")
        object.__setattr__(self, "step_size_fn", as_pytree_callable(self.step_size_fn))

    def init(self, params: Params) -> ScaleByScheduleState:
        del params
        return ScaleByScheduleState(count=zero_count())

    def update(self, updates: Updates, state: ScaleByScheduleState, params: Params | None = None, **extra: Any):
        del params, extra
        factor = self.step_size_fn(state.count)
        return _scaled(updates, factor), ScaleByScheduleState(count=safe_int32_increment(state.count))


@pytree_class
class scale_by_learning_rate(GradientTransformation):
    """Scale by the negative learning rate: ``u = -lr * g``, the only sign flip of a recipe.

    ``learning_rate`` is a number or a schedule ``count -> lr`` evaluated at the 0-based step count
    (then the state carries the count). ``flip_sign=False`` scales by ``+lr`` (for gradient ascent or
    for blocks that flip the sign themselves).
    """

    learning_rate: Any
    flip_sign: bool = static_field(default=True, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "learning_rate", as_pytree_callable(self.learning_rate))
        if not callable(self.learning_rate):
            self._check_finite("learning_rate")

    def init(self, params: Params) -> EmptyState | ScaleByScheduleState:
        del params
        if callable(self.learning_rate):
            return ScaleByScheduleState(count=zero_count())
        return EmptyState()

    def update(self, updates: Updates, state: Any, params: Params | None = None, **extra: Any):
        del params, extra
        sign = -1.0 if self.flip_sign else 1.0
        if callable(self.learning_rate):
            lr = self.learning_rate(state.count)
            state = ScaleByScheduleState(count=safe_int32_increment(state.count))
        else:
            lr = self.learning_rate
        return _scaled(updates, sign * jnp.asarray(lr)), state


@pytree_class
class scale_by_sign(GradientTransformation):
    """Replace each update by its sign (Bernstein et al. 2018, signSGD, arXiv 1802.04434)."""

    def init(self, params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update(self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any):
        del params, extra
        return jax.tree.map(jnp.sign, updates), state
