"""Measurements recorded in the state; updates pass unchanged (Optax 0.2.8's ``optax.monitor``,
``optax.snapshot``, ``optax.measure_with_ema``, ``MonitorState``, ``SnapshotState``; also under
``optax.transforms``).

    snapshot(name, measure)            state holds ``measure(updates)`` of the last update
    monitor({name: measure, ...})      state holds the last measurement of each measure (callables or
                                       stateful measures such as measure_with_ema)
    measure_with_ema(measure, decay)   the exponential moving average of a measure

Differences from Optax (deliberate, tested in tests/test_wrappers.py): ``monitor``'s ``measurements`` holds
zeros shaped like each measurement from ``init`` on (Optax starts with an empty dict, so its state structure
changes after the first update and cannot go through ``lax.scan``). ``measure_with_ema`` averages
non-floating measurements (a bool) in float32 from ``init`` on (Optax's accumulator changes dtype from bool
to float after the first update).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from gradtx.base import (
    EmptyState,
    GradientTransformation,
    OptState,
    Params,
    PyTree,
    Scalar,
    StatelessTransformation,
    TransformationLike,
    Updates,
)
from gradtx.fields import InvalidType, dtype_option, flag, format_value, function, option, probability, pytree_class
from gradtx.transforms import EmaState, ema
from gradtx.wrappers._common import canonical_dtype
from gradtx.wrappers.extra_args import with_extra_args_support

__all__ = ["MonitorState", "SnapshotState", "measure_with_ema", "monitor", "snapshot"]

_MEASURES = "a dict {name: callable or transformation}"


class SnapshotState(NamedTuple):
    """State of :class:`snapshot` (Optax's ``SnapshotState``).

    Attributes:
      measurement: ``{measure_name: measurement}``, the measure of the last updates (of the params after
        ``init``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.snapshot("max", jnp.max)
      >>> print(tx.init(jnp.array([1.0, 3.0])))
      SnapshotState(measurement={'max': Array(3., dtype=float32)})
    """

    measurement: dict[str, PyTree]


@pytree_class
class snapshot(GradientTransformation):
    """Store ``measure(updates)`` in the state under ``measure_name``; updates pass unchanged.

    ``init`` stores ``measure(params)``. Read it back with ``gradtx.tree.get(state, measure_name)`` (also
    from the state of a chain that holds it). Optax's ``optax.snapshot``.

    Args:
      measure_name: the key of the measurement in the state, a string. Required.
      measure: the function ``updates -> measurement`` (any pytree of arrays). Required.

    Raises:
      TypeError: at construction, for a ``measure_name`` that is not a string (``snapshot(measure_name=3):
        measure_name must be a string``) or a ``measure`` that is not callable (also a ``ValueError``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.snapshot("norm", lambda u: jnp.sqrt(jnp.sum(u ** 2)))
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([3.0, 4.0]), state)
      >>> print(updates, float(state.measurement["norm"]))  # the updates pass unchanged
      [3. 4.] 5.0
    """

    measure_name: str = option(accepts="a string (the key of the measurement in the state)", static=True)
    measure: Callable[[Updates], PyTree] = function()

    def __check_init__(self) -> None:
        if not isinstance(self.measure_name, str):
            self._fail("measure_name", self.measure_name, "must be a string", InvalidType)

    def init(self, params: Params) -> SnapshotState:
        return SnapshotState({self.measure_name: self.measure(params)})

    def update(
        self, updates: Updates, state: SnapshotState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, SnapshotState]:
        del state, params, extra
        return updates, SnapshotState({self.measure_name: self.measure(updates)})


class MonitorState(NamedTuple):
    """State of :class:`monitor` (Optax's ``MonitorState``).

    Attributes:
      measurements: ``{name: measurement}``, the last measurement of each measure (zeros shaped like it
        after ``init``).
      measure_states: the measures' own states, in the order the measures were given (``EmptyState()`` for a
        plain function).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.monitor({"max": jnp.max})
      >>> print(tx.init(jnp.zeros(2)))
      MonitorState(measurements={'max': Array(0., dtype=float32)}, measure_states=(EmptyState(),))
    """

    measurements: dict[str, PyTree]
    measure_states: tuple[OptState, ...]


@pytree_class
class _measure(StatelessTransformation):
    """A stateless measure: its "update" is ``fn(updates)``."""

    fn: Callable[[Updates], Any] = function()

    def update(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, OptState]:
        del params, extra
        return self.fn(updates), state

    def __repr__(self) -> str:
        return format_value(self.fn)


def _zeros_of(struct: Any) -> Any:
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), struct)


@pytree_class
class monitor(GradientTransformation):
    """Record measurements of the updates in the state; updates pass unchanged.

    ``measures`` maps names to callables ``updates -> measurement`` or to transformations whose output is the
    measurement (stateful measures, e.g. :class:`measure_with_ema`); they receive ``params`` and extra
    keyword arguments. ``state.measurements[name]`` is the last measurement (zeros before the first update).
    Optax's ``optax.monitor``; unlike Optax's, the state has its final structure from ``init`` on.

    Args:
      measures: ``{name: measure}``, each measure a function ``updates -> measurement`` or a transformation
        (anything with ``init`` and ``update``) whose output is the measurement. Required.

    Raises:
      TypeError: at construction, for ``measures`` that is not a dict with string keys and callable or
        transformation values (``monitor(measures={'a': 3}): measures values must be callables or
        transformations, got 3``; also a ``ValueError``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.monitor({"max": jnp.max, "ema": gradtx.measure_with_ema(jnp.max, decay=0.5)})
      >>> state = tx.init(jnp.zeros(2))
      >>> _, state = tx.update(jnp.array([1.0, 2.0]), state)
      >>> _, state = tx.update(jnp.array([3.0, 4.0]), state)
      >>> print(float(state.measurements["max"]), float(state.measurements["ema"]))  # (0.5 * 2 + 4) / 1.5
      4.0 3.3333
    """

    measures: dict[str, Callable[[Updates], PyTree] | TransformationLike] = option(accepts=_MEASURES)
    _names: tuple[str, ...] = option(
        default=(), accepts="the measures' names, in order", static=True, init=False, repr=False
    )

    def __check_init__(self) -> None:
        if not isinstance(self.measures, dict):
            self._fail("measures", self.measures, f"must be {_MEASURES}", InvalidType)
        converted = {}
        for name, m in self.measures.items():
            if not isinstance(name, str):
                self._fail("measures", self.measures, f"keys must be strings, got {name!r}", InvalidType)
            if isinstance(m, GradientTransformation) or (hasattr(m, "init") and hasattr(m, "update")):
                converted[name] = with_extra_args_support(cast(TransformationLike, m))
            elif callable(m):
                converted[name] = _measure(m)
            else:
                self._fail("measures", self.measures, f"values must be callables or transformations, got {m!r}",
                           InvalidType)
        object.__setattr__(self, "measures", converted)
        object.__setattr__(self, "_names", tuple(converted))

    def init(self, params: Params) -> MonitorState:
        states, measurements = [], {}
        for name in self._names:
            m = cast(GradientTransformation, self.measures[name])  # converted by __check_init__
            s = m.init(params)
            struct = jax.eval_shape(lambda p, s, m=m: m.update(p, s, p)[0], params, s)
            measurements[name] = _zeros_of(struct)
            states.append(s)
        return MonitorState(measurements, tuple(states))

    def update(
        self, updates: Updates, state: MonitorState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, MonitorState]:
        measurements, states = {}, []
        for name, s in zip(self._names, state.measure_states):
            m = cast(GradientTransformation, self.measures[name])  # converted by __check_init__
            measurements[name], s = m.update(updates, s, params, **extra)
            states.append(s)
        return updates, MonitorState(measurements, tuple(states))

    def __repr__(self) -> str:
        body = ", ".join(f"{n!r}: {self.measures[n]!r}" for n in self._names)
        return f"monitor(measures={{{body}}})"


def _floating(x: Any, dtype: Any) -> Any:
    """``x`` unchanged if floating or complex, else as ``dtype`` (float32 by default): a bool or int measure."""
    dt = jnp.result_type(x)
    if jnp.issubdtype(dt, jnp.inexact):
        return x
    return jnp.asarray(x).astype(dtype or np.float32)


@pytree_class
class measure_with_ema(GradientTransformation):
    """Output the exponential moving average of ``measure(updates)`` (for :class:`monitor`).

    ``e_k = decay e_{k-1} + (1 - decay) m_k`` with ``e_0 = 0``, debiased by ``1 - decay^k`` if ``debias``;
    ``accumulator_dtype`` stores ``e`` (default: the measurement's dtype, float32 for a bool or int measure).
    The state is ``(EmptyState(), EmaState(count, ema))``, Optax's ``chain(stateless(measure), ema)``: the
    output is the (debiased) average, so it is a measure for :class:`monitor`, not an update to apply.
    Optax's ``optax.measure_with_ema``.

    Args:
      measure: the function ``updates -> measurement`` (any pytree of arrays). Required.
      decay: the decay of the average, in [0, 1]. Required.
      debias: divide by ``1 - decay^k`` (Adam's bias correction). Default True.
      accumulator_dtype: the dtype the average is stored in, a floating dtype, or None for the
        measurement's dtype (float32 for a bool or int measurement). Default None.

    Raises:
      ValueError: at construction, for a ``decay`` outside [0, 1] (``measure_with_ema(decay=1.5): decay must
        be in [0, 1]``) or a non-floating ``accumulator_dtype``.
      TypeError: for a ``measure`` that is not callable or a ``debias`` that is not a bool (also a
        ``ValueError``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> m = gradtx.measure_with_ema(jnp.max, decay=0.5)
      >>> state = m.init(jnp.zeros(2))
      >>> avg, state = m.update(jnp.array([1.0, 2.0]), state)
      >>> avg, state = m.update(jnp.array([3.0, 4.0]), state)
      >>> print(float(avg))  # (0.5 * 0.5 * 2 + 0.5 * 4) / (1 - 0.5 ** 2)
      3.3333
    """

    measure: Callable[[Updates], PyTree] = function()
    decay: Scalar = probability(closed=True)
    debias: bool = flag(default=True)
    accumulator_dtype: DTypeLike | None = dtype_option(default=None)

    def __check_init__(self) -> None:
        object.__setattr__(self, "accumulator_dtype", canonical_dtype(self.accumulator_dtype))

    def _ema(self) -> GradientTransformation:
        return ema(self.decay, self.debias, self.accumulator_dtype)

    def _measured(self, updates: Updates) -> Any:
        return jax.tree.map(lambda x: _floating(x, self.accumulator_dtype), self.measure(updates))

    def init(self, params: Params) -> tuple[EmptyState, EmaState]:
        struct = jax.eval_shape(self._measured, params)
        return EmptyState(), self._ema().init(_zeros_of(struct))

    def update(
        self, updates: Updates, state: tuple[EmptyState, EmaState], params: Params | None = None, **extra: Any
    ) -> tuple[PyTree, tuple[EmptyState, EmaState]]:
        out, ema_state = self._ema().update(self._measured(updates), state[1], params, **extra)
        return out, (state[0], ema_state)
