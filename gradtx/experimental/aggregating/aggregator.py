"""The :class:`Aggregator` marker class (a transformation of per-example updates into one update) and the type
names of Optax's ``optax.experimental.aggregating``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from gradtx.base import GradientTransformation, OptState, Params
from gradtx.fields import format_value, function, pytree_class

__all__ = ["AggregatedUpdates", "Aggregator", "AggregatorUpdateFn", "MaybeAxis", "PerElementUpdates"]

PerElementUpdates = Any
"""Per-example updates: a pytree whose leaves have the batch axes (``per_elt_axis``) before the parameter's."""
AggregatedUpdates = Any
"""Updates shaped like the parameters, made from per-example updates."""
MaybeAxis = int | Sequence[int] | None
"""The batch axis (or axes) of per-example updates, or ``None`` for updates without one."""


class AggregatorUpdateFn(Protocol):
    """The ``update`` of an :class:`Aggregator`: ``(per_elt_updates, state, params=None, **extra) -> (updates,
    state)``; the signature of a transformation's update, but its input has batch axes its output lacks.

    A protocol for annotations: any function of that signature is one (it is not instantiated).

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.experimental.aggregating import AggregatorUpdateFn
        >>> def mean_update(per_elt_updates, state, params=None, **extra_args):
        ...     return jnp.mean(per_elt_updates, axis=0), state
        >>> fn: AggregatorUpdateFn = mean_update
        >>> print(fn(jnp.array([[1.0], [3.0]]), None)[0])
        [2.]
    """

    def __call__(
        self, per_elt_updates: PerElementUpdates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[AggregatedUpdates, OptState]:
        """Aggregate per-example updates into one update shaped like the parameters."""
        ...


class Aggregator(GradientTransformation):
    """A transformation of per-example updates into one update (``optax.experimental.aggregating.Aggregator``).

    ``Aggregator(init, update)`` builds one from two functions, like ``GradientTransformation(init, update)``;
    the built-in aggregators of :mod:`gradtx.experimental.aggregating` are instances too. ``isinstance(tx,
    Aggregator)`` tells a training loop to feed per-example gradients (``jax.vmap(jax.grad(loss), (None, 0))``)
    instead of the batch mean.

    Args:
        init: ``init(params) -> state``.
        update: an :class:`AggregatorUpdateFn`, ``update(per_elt_updates, state, params=None, **extra) ->
            (updates, state)``; ``per_elt_updates`` have the batch axes, ``updates`` are shaped like ``params``.

    Returns:
        An ``Aggregator`` (a pytree whose two functions are static).

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.base import init_empty_state
        >>> from gradtx.experimental.aggregating import Aggregator
        >>> mean = Aggregator(init_empty_state, lambda gs, state, params=None: (jnp.mean(gs, axis=0), state))
        >>> print(mean.update(jnp.array([[1.0, 2.0], [3.0, 6.0]]), mean.init(jnp.zeros(2)))[0])
        [2. 4.]
    """

    params_like_updates = False  # per-example updates carry batch axes the params lack


    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is Aggregator:
            return object.__new__(_FunctionAggregator)
        return object.__new__(cls)


@pytree_class
class _FunctionAggregator(Aggregator):
    """An :class:`Aggregator` made from two plain functions; both are static parts of the tree."""

    init: Any = function()
    update: Any = function()

    def __repr__(self) -> str:
        return f"Aggregator(init={format_value(self.init)}, update={format_value(self.update)})"
