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
    Params,
    Scalar,
    ScalarOrSchedule,
    Schedule,
    StatelessTransformation,
    Updates,
    safe_int32_increment,
    zero_count,
)
from gradtx.fields import InvalidType, as_pytree_callable, flag, option, pytree_class, real, scalar_or_schedule

__all__ = ["ScaleByScheduleState", "scale", "scale_by_learning_rate", "scale_by_schedule", "scale_by_sign"]

class ScaleByScheduleState(NamedTuple):
    """The state of a scheduled block (``scale_by_schedule``, and ``scale_by_learning_rate`` or
    ``add_decayed_weights`` given a schedule).

    Attributes:
      count: the number of updates so far, an int32 scalar (0 before the first update): the schedule's
        argument at the next update.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_schedule(lambda count: 1.0 / (count + 1))
      >>> state = tx.init(jnp.zeros(2))
      >>> print(state.count)
      0
      >>> _, state = tx.update(jnp.array([1.0, 2.0]), state)
      >>> print(state.count)
      1
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count


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
    """Multiply every update by a constant ``step_size``: ``u = step_size * g``.

    The product is computed in each leaf's compute dtype (float32 or wider) and returned in the leaf's dtype.
    Stateless (state ``EmptyState()``). For a learning rate use ``scale_by_learning_rate``, which flips the
    sign and accepts schedules.

    Args:
      step_size: the factor, a finite real number (negative for descent).

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState``.

    Raises:
      ValueError: at construction, for a non-finite ``step_size`` (``scale(step_size=nan): step_size must be
        finite``).
      TypeError: at construction, for a ``step_size`` that is not a real number (``scale(step_size='a'):
        step_size must be a finite real number, not str``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale(0.5)
      >>> updates, state = tx.update(jnp.array([2.0, -4.0]), tx.init(jnp.zeros(2)))
      >>> print(updates)
      [ 1. -2.]
    """

    step_size: Scalar = real()

    def update(
        self, updates: Updates, state: EmptyState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, EmptyState]:
        del params, extra
        return _scaled(updates, self.step_size), state


@pytree_class
class scale_by_schedule(GradientTransformation):
    """Multiply by ``step_size_fn(count)``, the schedule evaluated at the 0-based step count: ``u = f(t) * g``.

    ``t`` is the number of previous updates (0 at the first), kept in the state. No sign flip: a schedule of
    learning rates goes in ``scale_by_learning_rate`` instead (or return negative values here). A gradtx
    schedule stays a pytree (its numbers are leaves of this block); a plain function is static.

    Args:
      step_size_fn: a schedule, a callable ``count -> value`` (an int32 scalar in, a real scalar out).

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByScheduleState``.

    Raises:
      TypeError: at construction, for a ``step_size_fn`` that is not callable (``scale_by_schedule(
        step_size_fn=1.0): step_size_fn must be a callable count -> value``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_schedule(lambda count: 1.0 / (count + 1))
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, 2.0]), state)
      >>> updates, state = tx.update(jnp.array([1.0, 2.0]), state)
      >>> print(updates)  # the second step: f(1) = 0.5
      [0.5 1. ]
    """

    step_size_fn: Schedule = option(accepts="a schedule count -> value")

    def __check_init__(self) -> None:
        if not callable(self.step_size_fn):
            self._fail("step_size_fn", self.step_size_fn, "must be a callable count -> value", InvalidType)
        # A gradtx schedule stays a pytree (its numbers are leaves of this block); a plain function is static.
        object.__setattr__(self, "step_size_fn", as_pytree_callable(self.step_size_fn))

    def init(self, params: Params) -> ScaleByScheduleState:
        del params
        return ScaleByScheduleState(count=zero_count())

    def update(
        self, updates: Updates, state: ScaleByScheduleState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ScaleByScheduleState]:
        del params, extra
        factor, state = scheduled(self.step_size_fn, state)
        return _scaled(updates, factor), state


@pytree_class
class scale_by_learning_rate(GradientTransformation):
    """Scale by the negative learning rate: ``u = -lr(t) * g``, the only sign flip of a recipe.

    ``t`` is the 0-based count of previous updates, used when ``learning_rate`` is a schedule (then the state
    carries the count; a number needs no state). Every other gradtx block returns a direction to be *added*;
    this one turns it into a descent step, so it comes last (or nearly) in a ``chain``.

    Args:
      learning_rate: a finite real number, or a schedule ``count -> lr`` evaluated at the 0-based step count.
      flip_sign: keyword only; ``True`` (the default) scales by ``-lr``, ``False`` by ``+lr`` (for gradient
        ascent, or after blocks that flip the sign themselves).

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState`` for a number, ``ScaleByScheduleState`` for a
      schedule.

    Raises:
      ValueError: at construction, for a non-finite number (``scale_by_learning_rate(learning_rate=nan):
        learning_rate must be finite``).
      TypeError: at construction, for a ``learning_rate`` that is neither a number nor a schedule
        (``scale_by_learning_rate(learning_rate=None): learning_rate must be a finite real number or a
        schedule count -> value, not None``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_learning_rate(0.1)
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates)
      [-0.1  0.2]
    """

    learning_rate: ScalarOrSchedule = scalar_or_schedule()
    flip_sign: bool = flag(default=True, kw_only=True)

    def init(self, params: Params) -> EmptyState | ScaleByScheduleState:
        del params
        return schedule_state(self.learning_rate)

    def update(
        self, updates: Updates, state: EmptyState | ScaleByScheduleState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, EmptyState | ScaleByScheduleState]:
        del params, extra
        sign = -1.0 if self.flip_sign else 1.0
        lr, state = scheduled(self.learning_rate, state)
        return _scaled(updates, sign * jnp.asarray(lr)), state


@pytree_class
class scale_by_sign(StatelessTransformation):
    """Replace each update by its sign: ``u = sign(g)`` (-1, 0 or +1; NaN stays NaN).

    signSGD (Bernstein, Wang, Azizzadenesheli & Anandkumar 2018, "signSGD: Compressed Optimisation for
    Non-Convex Problems", ICML, arXiv 1802.04434). Stateless (state ``EmptyState()``); it takes no arguments.

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_sign()
      >>> updates, state = tx.update(jnp.array([-3.0, 0.0, 2.0]), tx.init(jnp.zeros(3)))
      >>> print(updates)
      [-1.  0.  1.]
    """

    def update(
        self, updates: Updates, state: EmptyState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, EmptyState]:
        del params, extra
        return jax.tree.map(jnp.sign, updates), state
