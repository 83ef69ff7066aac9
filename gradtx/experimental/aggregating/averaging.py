"""Averaging: the mean of per-example updates over the batch, and the running mean over micro-batches.

    average_per_element_updates(axis)            u = mean_b g_b
    accumulate_avg_updates(k)                    u = running mean of k successive updates, emitted every k-th
                                                 call (0 in between; ``ready`` in the state says which)
    average_incrementally_updates(axis, k)       the two above chained (the first skipped for axis None)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, cast

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
    zero_count,
)
from gradtx.combine import chain
from gradtx.experimental.aggregating._common import (
    PER_ELT_AXIS,
    check_accumulation_steps,
    check_per_elt_axis,
    select_if_ready,
)
from gradtx.experimental.aggregating.aggregator import AggregatedUpdates, Aggregator, MaybeAxis, PerElementUpdates
from gradtx.fields import integer, option, pytree_class, recipe

__all__ = [
    "AccumulateAvgUpdatesState",
    "accumulate_avg_updates",
    "average_incrementally_updates",
    "average_per_element_updates",
]


def _mean(x: Any, axis: Any) -> jax.Array:
    """The mean over ``axis`` (kept, size 1) in float32 or wider, in ``x``'s dtype when ``x`` is floating."""
    x = jnp.asarray(x)
    m = jnp.mean(tree.up(x), axis=axis, keepdims=True)
    return m.astype(x.dtype) if jnp.issubdtype(x.dtype, jnp.inexact) else m


@pytree_class
class average_per_element_updates(Aggregator, StatelessTransformation):
    """The mean of per-example updates over the batch axis: ``u = (1/B) sum_b g_b``.

    Args:
        per_elt_axis: the batch axis of every leaf, an int or a sequence of ints (default 0).

    Returns:
        An :class:`Aggregator` with state ``EmptyState()``.

    Raises:
        ValueError: if ``per_elt_axis`` is not an int or a non-empty sequence of ints.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.experimental.aggregating import average_per_element_updates
        >>> agg = average_per_element_updates()
        >>> print(agg.update(jnp.array([[1.0, 2.0], [3.0, 6.0]]), agg.init(jnp.zeros(2)))[0])
        [2. 4.]
    """

    per_elt_axis: int | Sequence[int] = option(default=0, accepts=PER_ELT_AXIS, static=True)

    def __check_init__(self) -> None:
        object.__setattr__(self, "per_elt_axis", check_per_elt_axis(type(self).__name__, self.per_elt_axis))

    def update(
        self, updates: PerElementUpdates, state: OptState, params: Params | None = None, **extra: Any
    ) -> tuple[AggregatedUpdates, OptState]:
        del params, extra
        ax = self.per_elt_axis
        return jax.tree.map(lambda x: jnp.squeeze(_mean(x, ax), axis=ax), updates), state


class AccumulateAvgUpdatesState(NamedTuple):
    """State of :func:`accumulate_avg_updates`: the position in the window of ``k`` calls (0..k-1), whether
    the last call emitted the average, and the running average of the updates seen in the current window.

    Attributes:
        micro_step: the number of calls since the last emitted average, an int32 scalar in ``[0, k)``.
        ready: whether the last call emitted the average, a bool scalar.
        avg_grad: the running mean of the updates of the current window, shaped like the parameters (zeros
            after an emission).

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.experimental.aggregating import accumulate_avg_updates
        >>> acc = accumulate_avg_updates(3)
        >>> _, state = acc.update(jnp.array([2.0]), acc.init(jnp.zeros(1)))
        >>> print(state.micro_step, state.ready, state.avg_grad)
        1 False [2.]
    """

    micro_step: jax.Array  # int32
    ready: jax.Array  # bool
    avg_grad: Updates


@pytree_class
class accumulate_avg_updates(GradientTransformation):
    """Average ``k`` successive updates (micro-batches) and emit the average every ``k``-th call.

    With ``u_1..u_k`` the updates of one window, the running mean ``a_j = a_{j-1} + (u_j - a_{j-1}) / j`` is kept
    in the state; call ``k`` returns ``a_k = (1/k) sum_j u_j`` (and sets ``ready``), the other calls return
    zeros. With equal micro-batch sizes the result is the gradient of the full batch, so inside
    :func:`process` the postprocessor (an optimizer) steps once per ``k`` micro-batches.
    ``accumulation_steps=1`` is the identity (state ``EmptyState()``, as Optax).

    Args:
        accumulation_steps: ``k``, the number of micro-batches per emitted average, an integer >= 1.

    Returns:
        A transformation with state :class:`AccumulateAvgUpdatesState` (``EmptyState()`` for ``k = 1``).

    Raises:
        ValueError: if ``accumulation_steps`` is not an integer >= 1.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.experimental.aggregating import accumulate_avg_updates
        >>> acc = accumulate_avg_updates(2)
        >>> state = acc.init(jnp.zeros(2))
        >>> out, state = acc.update(jnp.array([1.0, 2.0]), state)
        >>> print(out, bool(state.ready))
        [0. 0.] False
        >>> out, state = acc.update(jnp.array([3.0, 6.0]), state)
        >>> print(out, bool(state.ready))
        [2. 4.] True
    """

    accumulation_steps: int = integer(lo=1, static=True)

    def __check_init__(self) -> None:
        steps = check_accumulation_steps(type(self).__name__, self.accumulation_steps)
        object.__setattr__(self, "accumulation_steps", steps)

    def init(self, params: Params) -> AccumulateAvgUpdatesState | EmptyState:
        if self.accumulation_steps == 1:
            return EmptyState()
        return AccumulateAvgUpdatesState(
            micro_step=zero_count(), ready=jnp.asarray(False), avg_grad=tree.zeros_like(params)
        )

    def update(
        self,
        updates: Updates,
        state: AccumulateAvgUpdatesState | EmptyState,
        params: Params | None = None,
        **extra: Any,
    ) -> tuple[Updates, AccumulateAvgUpdatesState | EmptyState]:
        del params, extra
        if self.accumulation_steps == 1:
            return updates, state
        state = cast(AccumulateAvgUpdatesState, state)
        step = state.micro_step + 1
        ready = step == self.accumulation_steps

        def running(u: Any, a: Any) -> jax.Array:
            a32 = tree.up(a)
            return (a32 + (tree.up(u).astype(a32.dtype) - a32) / step.astype(tree.hyper(0.0, a32).dtype)).astype(
                jnp.asarray(a).dtype
            )

        avg = jax.tree.map(running, updates, state.avg_grad)
        zeros = tree.zeros_like(avg)
        out = select_if_ready(ready, avg, zeros)
        new_state = AccumulateAvgUpdatesState(
            micro_step=jnp.where(ready, 0, step).astype(jnp.int32),
            ready=ready,
            avg_grad=select_if_ready(ready, zeros, avg),
        )
        return out, new_state


@pytree_class
class _average_then_accumulate(Aggregator):
    """``chain(average_per_element_updates(axis), accumulate_avg_updates(k))`` as an Aggregator."""

    per_elt_axis: int | Sequence[int] = option(accepts=PER_ELT_AXIS, static=True)
    accumulation_steps: int = integer(lo=1, static=True)

    def __check_init__(self) -> None:
        call = type(self).__name__
        object.__setattr__(self, "per_elt_axis", check_per_elt_axis(call, self.per_elt_axis))
        object.__setattr__(self, "accumulation_steps", check_accumulation_steps(call, self.accumulation_steps))

    def _chain(self) -> GradientTransformation:
        return chain(average_per_element_updates(self.per_elt_axis), accumulate_avg_updates(self.accumulation_steps))

    def init(self, params: Params) -> tuple[Any, ...]:
        return cast(tuple[Any, ...], self._chain().init(params))  # chain's state: a tuple

    def update(
        self, updates: PerElementUpdates, state: Any, params: Params | None = None, **extra: Any
    ) -> tuple[AggregatedUpdates, Any]:
        return self._chain().update(updates, state, params, **extra)

    def __repr__(self) -> str:
        return (
            f"average_incrementally_updates(per_elt_axis={self.per_elt_axis!r}, "
            f"accumulation_steps={self.accumulation_steps})"
        )


@recipe
def average_incrementally_updates(
    per_elt_axis: MaybeAxis, accumulation_steps: int
) -> Aggregator | GradientTransformation:
    """Average per-example updates over the batch axis, then over ``accumulation_steps`` micro-batches.

    ``u = (1/k) sum_j (1/B) sum_b g_{j,b}``, emitted every ``k``-th call (zeros in between): the gradient of a
    batch of ``k B`` examples seen as ``k`` micro-batches of ``B``.

    Args:
        per_elt_axis: the batch axis (an int or a sequence of ints) of the per-example updates, or ``None`` when
            the updates are already batch means (then only the accumulation runs).
        accumulation_steps: ``k``, an integer >= 1.

    Returns:
        ``accumulate_avg_updates(k)`` when ``per_elt_axis`` is ``None``; otherwise an :class:`Aggregator` whose
        state is that of ``chain(average_per_element_updates(per_elt_axis), accumulate_avg_updates(k))``.

    Raises:
        ValueError: if ``accumulation_steps`` is not an integer >= 1 or ``per_elt_axis`` is not an int, a
            sequence of ints or ``None``.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.experimental.aggregating import average_incrementally_updates
        >>> agg = average_incrementally_updates(per_elt_axis=0, accumulation_steps=2)
        >>> state = agg.init(jnp.zeros(1))
        >>> _, state = agg.update(jnp.array([[1.0], [3.0]]), state)  # micro-batch mean 2
        >>> out, state = agg.update(jnp.array([[5.0], [7.0]]), state)  # micro-batch mean 6
        >>> print(out)
        [4.]
    """
    if per_elt_axis is None:
        return accumulate_avg_updates(accumulation_steps)
    return _average_then_accumulate(per_elt_axis, accumulation_steps)
