"""Hyperparameters in the state: ``inject_hyperparams(f)(...)`` builds ``f(...)`` at every step from
``state.hyperparams``, so they can be changed between steps or follow schedules (Optax 0.2.8's
``optax.inject_hyperparams``, ``inject_stateful_hyperparams``, ``InjectHyperparamsState``,
``InjectStatefulHyperparamsState``, ``WrappedSchedule``, ``WrappedScheduleState``; also under
``optax.schedules``).

Differences from Optax (deliberate, tested in tests/test_wrappers.py): with ``hyperparam_dtype=None`` float
hyperparameters are stored in the widest float dtype of the parameters *but at least float32*, so ``b2=0.999``
does not round to 1.0 with bfloat16 parameters (Optax issue #1414; Optax uses the parameter dtype). Values
returned by schedules are always cast to that dtype (Optax keeps strongly typed schedule outputs as they are).
The hyperparameters are validated when the transformation is built (Optax: at ``init``).
``inject_stateful_hyperparams`` is the same object as ``inject_hyperparams`` (Optax 0.2.8 deprecates it with a
warning; gradtx keeps no deprecation layers). ``InjectHyperparamsState`` exists for name compatibility; as in
Optax the state actually returned is ``InjectStatefulHyperparamsState``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Iterable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax import core as jax_core
from jax.typing import ArrayLike, DTypeLike

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    OptState,
    Params,
    Scalar,
    StatefulSchedule,
    TransformationLike,
    Updates,
    safe_int32_increment,
    zero_count,
)
from gradtx.base import Schedule as ScheduleFn
from gradtx.fields import (
    FrozenTree,
    InvalidType,
    ValidationMixin,
    as_pytree_callable,
    dtype_option,
    format_value,
    function,
    hashable_tree,
    option,
    pytree_class,
    run_time_values,
)
from gradtx.wrappers._common import canonical_dtype
from gradtx.wrappers.extra_args import with_extra_args_support

__all__ = [
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "WrappedSchedule",
    "WrappedScheduleState",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "injected_hyperparams",
]


class InjectHyperparamsState(NamedTuple):
    """Optax's older state of ``inject_hyperparams``, kept for the name.

    ``inject_hyperparams`` returns :class:`InjectStatefulHyperparamsState` (as Optax 0.2.8 does); this class
    is only for code that builds or matches the older state by name.

    Attributes:
      count: the number of updates so far, an int32 scalar.
      hyperparams: ``{name: value}`` of the injected hyperparameters.
      inner_state: the inner transformation's state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.InjectHyperparamsState(jnp.zeros([], jnp.int32), {"learning_rate": 0.1}, ())
      >>> print(state._fields)
      ('count', 'hyperparams', 'inner_state')
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    hyperparams: dict[str, Any]
    inner_state: OptState


class InjectStatefulHyperparamsState(NamedTuple):
    """State of ``inject_hyperparams(factory)(...)`` (Optax's ``InjectStatefulHyperparamsState``).

    Attributes:
      count: the number of updates so far, an int32 scalar.
      hyperparams: ``{name: value}``: the numeric hyperparameters (replace an entry to change it for the
        next update) and the values the schedules gave for the last update (for the first, after ``init``).
      hyperparams_states: ``{name: state}`` of each schedule (``WrappedScheduleState`` for a plain one).
      inner_state: the inner transformation's state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> sched = gradtx.schedules.linear_schedule(1.0, 0.0, transition_steps=10)
      >>> opt = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=sched)
      >>> state = opt.init(jnp.zeros(2))
      >>> _, state = opt.update(jnp.ones(2), state)
      >>> _, state = opt.update(jnp.ones(2), state)
      >>> print(int(state.count), float(state.hyperparams["learning_rate"]))  # the value at count 1
      2 0.9
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    hyperparams: dict[str, Any]
    hyperparams_states: dict[str, Any]
    inner_state: OptState


class WrappedScheduleState(NamedTuple):
    """State of a :class:`WrappedSchedule` (Optax's ``WrappedScheduleState``).

    Attributes:
      count: the 0-based count of updates so far, an int32 scalar (the count the schedule is evaluated at).

    Examples:
      >>> import gradtx
      >>> ws = gradtx.WrappedSchedule(gradtx.schedules.linear_schedule(1.0, 0.0, transition_steps=10))
      >>> print(ws.init())
      WrappedScheduleState(count=Array(0, dtype=int32))
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count


@pytree_class
class WrappedSchedule:
    """A stateful schedule made from a plain one ``count -> value``.

    ``init() -> WrappedScheduleState(count=0)``, ``update(state, **extra) -> state`` (count + 1) and
    ``__call__(state, **extra) -> schedule_fn(state.count)``, extra keyword arguments ignored: the form
    :class:`inject_hyperparams` gives every plain schedule it is handed. Optax's ``optax.WrappedSchedule``.

    Args:
      schedule_fn: the schedule, a gradtx schedule or a function ``count -> value``. Required.

    Examples:
      >>> import gradtx
      >>> ws = gradtx.WrappedSchedule(gradtx.schedules.linear_schedule(1.0, 0.0, transition_steps=10))
      >>> state = ws.update(ws.update(ws.init()))
      >>> print(int(state.count), float(ws(state)))
      2 0.8
    """

    schedule_fn: ScheduleFn = option(accepts="a schedule count -> value")

    def __check_init__(self) -> None:
        object.__setattr__(self, "schedule_fn", as_pytree_callable(self.schedule_fn))

    def init(self) -> WrappedScheduleState:
        return WrappedScheduleState(count=zero_count())

    def update(self, state: WrappedScheduleState, **extra: Any) -> WrappedScheduleState:
        del extra
        return WrappedScheduleState(count=safe_int32_increment(state.count))

    def __call__(self, state: WrappedScheduleState, **extra: Any) -> ArrayLike:
        del extra
        return self.schedule_fn(state.count)

    def __repr__(self) -> str:
        return repr(self.schedule_fn)


@pytree_class
class _StaticStatefulSchedule:
    """A user's stateful schedule that is not a pytree, held as static."""

    schedule: Any = option(accepts="a stateful schedule (init, update, __call__)", static=True)

    def init(self) -> Any:
        return self.schedule.init()

    def update(self, state: Any, **extra: Any) -> Any:
        return self.schedule.update(state, **extra)

    def __call__(self, state: Any, **extra: Any) -> Any:
        return self.schedule(state, **extra)

    def __repr__(self) -> str:
        return repr(self.schedule)


def _is_stateful_schedule(x: Any) -> bool:
    return callable(x) and callable(getattr(x, "init", None)) and callable(getattr(x, "update", None))


# A PRNG key or seed is not a hyperparameter: it is passed to the factory unchanged (static), so that blocks which
# hold their key static (add_noise, noisy_sgd, dpsgd) can be injected. Optax injects an int seed as an int32 array in
# ``state.hyperparams``; the updates and inner state are the same.
_RANDOMNESS_ARGS = ("key", "seed", "rng_key")

_STATIC_ARGS = "a parameter name or an iterable of parameter names"


def _is_numeric(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    return isinstance(x, (int, float, np.number, np.ndarray, jax.Array))


def _convert_floats(x: Any, dtype: np.dtype) -> Any:
    """Float-valued ``x`` as ``dtype``; strongly typed JAX arrays and non-floats pass unchanged (Optax's rule)."""
    if isinstance(x, jax.Array) and not getattr(x, "weak_type", False):
        return x
    current = x.dtype if hasattr(x, "dtype") else type(x)
    if jnp.issubdtype(current, jnp.floating):
        return jnp.asarray(x, dtype=dtype)
    return x


def _cast_float(x: Any, dtype: np.dtype) -> Any:
    """A schedule's value: cast to ``dtype`` whenever it is floating (strong or weak)."""
    x = jnp.asarray(x)
    return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x


def _thaw(x: Any) -> Any:
    return x.tree if isinstance(x, FrozenTree) else x


@pytree_class
class inject_hyperparams(ValidationMixin):
    """Move the hyperparameters of ``inner_factory`` into the optimizer state.

    ``inject_hyperparams(adam)(learning_rate=sched, b1=0.9)`` is a transformation that builds
    ``adam(learning_rate=..., b1=..., ...)`` at every step from ``state.hyperparams``: numeric arguments can be
    changed between steps by replacing entries of ``state.hyperparams``; callable arguments are schedules of
    the 0-based step count (stateful schedules with ``init``/``update``/``__call__`` are used as they are),
    evaluated every step and recorded in ``state.hyperparams`` (overriding those entries has no effect).
    Booleans, ``None``, strings, dtypes, masks, random keys and seeds (``key``, ``seed``, ``rng_key``) and the
    arguments named in ``static_args`` are passed unchanged. Float hyperparameters are stored in
    ``hyperparam_dtype``, or (``None``) in the widest float dtype of the parameters but at least float32. The
    trajectory equals the un-injected optimizer's exactly. Optax's ``optax.inject_hyperparams`` (also spelled
    ``inject_stateful_hyperparams``, the same object); the hyperparameters are validated when
    ``inject_hyperparams(factory)(...)`` is called, values set in the state later are not.

    Args:
      inner_factory: the function building the transformation, e.g. ``gradtx.adam``. Required.
      static_args: the name, or an iterable of names, of ``inner_factory``'s parameters to pass unchanged
        rather than inject (numbers that fix shapes, such as a memory size). Default ``()``.
      hyperparam_dtype: the dtype float hyperparameters are stored in, a floating dtype, or None for the
        widest float dtype of the parameters but at least float32. Default None.

    Raises:
      ValueError: at construction, for ``static_args`` naming no parameter of ``inner_factory``
        (``inject_hyperparams(static_args=('foo',)): static_args must name parameters of the inner factory
        (...); unknown: ['foo']``); when called, for hyperparameters ``inner_factory`` refuses (e.g.
        ``adam(b1=1.5): b1 must be in [0, 1)``).
      TypeError: for an ``inner_factory`` that is not callable or ``static_args`` that are not names (also a
        ``ValueError``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1)
      >>> state = opt.init(jnp.zeros(2))
      >>> state.hyperparams["learning_rate"] = jnp.asarray(0.5)  # changed between steps
      >>> updates, state = opt.update(jnp.ones(2), state)
      >>> print(updates)
      [-0.5 -0.5]
    """

    inner_factory: Callable[..., TransformationLike] = function()
    static_args: str | Iterable[str] = option(default=(), accepts=_STATIC_ARGS, static=True)
    hyperparam_dtype: DTypeLike | None = dtype_option(default=None)

    def __check_init__(self) -> None:
        names = self.static_args
        if isinstance(names, str):
            names = (names,)
        try:
            names = tuple(names)
        except TypeError:
            self._fail("static_args", self.static_args, f"must be {_STATIC_ARGS}", InvalidType)
        if not all(isinstance(n, str) for n in names):
            self._fail("static_args", self.static_args, f"must be {_STATIC_ARGS}", InvalidType)
        object.__setattr__(self, "static_args", tuple(sorted(set(names))))
        params = inspect.signature(self.inner_factory).parameters
        unknown = [n for n in self.static_args if n not in params]
        if unknown:
            self._fail("static_args", self.static_args,
                       f"must name parameters of the inner factory ({', '.join(params)}); unknown: {unknown}")
        object.__setattr__(self, "hyperparam_dtype", canonical_dtype(self.hyperparam_dtype))

    def __call__(self, *args: Any, **kwargs: Any) -> injected_hyperparams:
        bound = inspect.signature(self.inner_factory).bind(*args, **kwargs)
        bound.apply_defaults()
        numeric: dict[str, Any] = {}
        schedules: dict[str, Any] = {}
        others: list[tuple[str, Any]] = []
        for name, value in bound.arguments.items():
            if name in self.static_args or isinstance(value, bool) or name in _RANDOMNESS_ARGS:
                others.append((name, hashable_tree(value)))
            elif _is_stateful_schedule(value):
                leaf = jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(value))
                schedules[name] = _StaticStatefulSchedule(value) if leaf else value
            elif callable(value):
                schedules[name] = WrappedSchedule(cast(ScheduleFn, value))  # a callable argument is a schedule
            elif _is_numeric(value):
                numeric[name] = value
            else:
                others.append((name, hashable_tree(value)))
        return injected_hyperparams(self, numeric, schedules, tuple(others))

    def __repr__(self) -> str:
        name = format_value(self.inner_factory)
        rest = "".join(
            f", {n}={format_value(v)}"
            for n, v in (("static_args", self.static_args), ("hyperparam_dtype", self.hyperparam_dtype))
            if v not in ((), None)
        )
        return f"inject_hyperparams({name}{rest})"


inject_stateful_hyperparams = inject_hyperparams  # Optax 0.2.8: the same function under a deprecated name


@pytree_class
class injected_hyperparams(GradientTransformation):
    """The transformation made by ``inject_hyperparams(factory)(...)`` (see :class:`inject_hyperparams`).

    ``numeric`` (leaves) and ``schedules`` (pytrees) are the hyperparameters that go into the state;
    ``others`` (static) are passed to the factory unchanged. At every ``update`` the inner transformation is
    built from ``state.hyperparams`` and the schedules' values, and applied. Built by
    :class:`inject_hyperparams`, not by hand; its state is :class:`InjectStatefulHyperparamsState`.

    Args:
      factory: the ``inject_hyperparams`` that made it (it holds the inner factory and the dtype).
      numeric: ``{name: number}`` of the constant hyperparameters.
      schedules: ``{name: stateful schedule}`` of the scheduled hyperparameters (plain schedules wrapped in
        :class:`WrappedSchedule`).
      others: ``(name, hashable value)`` pairs of the arguments passed unchanged (flags, dtypes, masks, keys,
        ``static_args``).

    Raises:
      ValueError: at construction, for hyperparameters the inner factory refuses (the factory's own message,
        e.g. ``adam(b1=1.5): b1 must be in [0, 1)``).

    Examples:
      >>> import gradtx
      >>> opt = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1)
      >>> print(type(opt).__name__, opt.numeric, opt.others[0])
      injected_hyperparams {'learning_rate': 0.1} ('momentum', None)
    """

    factory: inject_hyperparams = option(accepts="the inject_hyperparams that made it")
    numeric: dict[str, Scalar] = option(accepts="a dict {name: number} of the constant hyperparameters")
    schedules: dict[str, StatefulSchedule] = option(accepts="a dict {name: stateful schedule}")
    others: tuple[tuple[str, Hashable], ...] = option(
        accepts="a tuple of (name, hashable value) pairs", static=True
    )

    def __check_init__(self) -> None:
        # Validate the constant hyperparameters now, by building the inner transformation once. Schedule values
        # are computed at run time: like every value in the state they are not validated (under jit they cannot
        # be), so a schedule reaching 0 behaves the same eagerly and jitted.
        values = {k: jnp.asarray(f(f.init())) for k, f in self.schedules.items()}
        self._inner({**self.numeric, **values})

    def _inner(self, hparams: dict[str, Any]) -> GradientTransformation:
        """The inner transformation for ``hparams``; JAX-array values (state entries, schedule values) are run-time
        values and skip validation, as tracers do."""
        statics = {n: _thaw(v) for n, v in self.others}
        with run_time_values():
            return with_extra_args_support(self.factory.inner_factory(**statics, **hparams))

    def _dtype(self, tree_: Any) -> np.dtype:
        dt = self.factory.hyperparam_dtype
        return np.dtype(dt) if dt is not None else tree.widest_real_dtype(tree_)

    def init(self, params: Params) -> InjectStatefulHyperparamsState:
        dtype = self._dtype(params)
        hparams = {k: jnp.asarray(_convert_floats(v, dtype)) for k, v in self.numeric.items()}
        sched_states = {k: f.init() for k, f in self.schedules.items()}
        values = {k: _cast_float(f(sched_states[k]), dtype) for k, f in self.schedules.items()}
        # The constants, stored in their dtype, are validated once more (hyperparam_dtype may round b2=0.999 to 1);
        # the schedule values are run-time values, as in update.
        constants = {k: v if isinstance(v, jax_core.Tracer) else np.asarray(v) for k, v in hparams.items()}
        self._inner({**constants, **values})
        hparams.update(values)
        return InjectStatefulHyperparamsState(
            count=zero_count(),
            hyperparams=hparams,
            hyperparams_states=sched_states,
            inner_state=self._inner(hparams).init(params),
        )

    def update(
        self, updates: Updates, state: InjectStatefulHyperparamsState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, InjectStatefulHyperparamsState]:
        dtype = self._dtype(updates if params is None else params)
        hparams = {k: _convert_floats(v, dtype) for k, v in state.hyperparams.items()}
        hparams.update(
            {k: _cast_float(f(state.hyperparams_states[k], **extra), dtype) for k, f in self.schedules.items()}
        )
        sched_states = {k: f.update(state.hyperparams_states[k], **extra) for k, f in self.schedules.items()}
        out, inner_state = self._inner(hparams).update(updates, state.inner_state, params, **extra)
        return out, InjectStatefulHyperparamsState(
            count=safe_int32_increment(state.count),
            hyperparams=hparams,
            hyperparams_states=sched_states,
            inner_state=inner_state,
        )

    def __repr__(self) -> str:
        values = {**self.numeric, **self.schedules, **{n: _thaw(v) for n, v in self.others}}
        order = list(inspect.signature(self.factory.inner_factory).parameters)
        names = [n for n in order if n in values] + [n for n in values if n not in order]
        body = ", ".join(f"{n}={format_value(values[n])}" for n in names)
        return f"{self.factory!r}({body})"
