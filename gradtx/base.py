"""The protocol every gradtx transformation follows.

A gradient transformation is a pair of pure functions::

    state = tx.init(params)
    updates, state = tx.update(updates, state, params=None, **extra)

``updates`` are *added* to the parameters (see :func:`apply_updates`); the minus sign of gradient descent
appears exactly once, in ``scale_by_learning_rate``. Extra keyword arguments (``value``, ``value_fn``, ...)
are accepted by every block and ignored by those that do not need them. Anything with ``init`` and
``update`` composes with gradtx blocks, Optax's transformations included.

Transformations are pytrees. Each block is a frozen dataclass registered with
:func:`jax.tree_util.register_dataclass`: numeric hyperparameters (learning rate, betas, eps, ...) are leaves,
structural options (``nesterov``, dtypes, masks, plain Python callables) are static. So an optimizer can be
passed into a jitted step as an argument without retracing when only a hyperparameter changes, and
``jax.grad`` can differentiate through the hyperparameters. Hyperparameters are validated in the constructor
when they are concrete numbers; tracers and placeholders used by pytree utilities are not checked.

State is a pytree of arrays whose structure is fixed by ``init``. Counters are ``int32`` scalars that
saturate at the largest ``int32`` instead of wrapping (:func:`safe_int32_increment`).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._structure import check_apply_updates, checked_init, checked_update
from gradtx.fields import ValidationMixin, fields_repr, format_value, function, pytree_class, static_field

# Type aliases, spelled as Optax spells them (``optax.Shape``, ``optax.PRNGKey``, ...), for annotations.
PyTree = Any
ArrayTree = Any  # an array, or nested lists, tuples, dicts and pytree nodes of arrays
Params = Any
Updates = Any
OptState = Any
Shape = Sequence[int]
PRNGKey = jax.Array
Schedule = Callable[[jax.Array], jax.Array]
ScheduleState = Any
ScalarOrSchedule = Any  # float | jax.Array | Schedule
MaskOrFn = Any  # None, a pytree of bools (or a prefix of one), or a function params -> such a pytree

NO_PARAMS_MSG = (
    "You are using a transformation that requires the current value of parameters, but you are not passing "
    "`params` when calling `update`."
)


@runtime_checkable
class StatefulSchedule(Protocol):
    """A schedule with state (Optax's ``StatefulSchedule``): ``init() -> state``,
    ``update(state, **extra) -> state`` and ``__call__(state, **extra) -> value``.

    ``inject_stateful_hyperparams`` accepts such objects as hyperparameters.
    """

    def init(self) -> ScheduleState: ...

    def update(self, state: ScheduleState, **extra_args: Any) -> ScheduleState: ...

    def __call__(self, state: ScheduleState, **extra_args: Any) -> Any: ...


class ConditionFn(Protocol):
    """The type of ``conditionally_transform``'s condition: ``fn(step, **extra_args) -> bool`` (a 0-d array)."""

    def __call__(self, step: Any, **extra_args: Any) -> Any: ...


class TransformInitFn(Protocol):
    """The type of ``init``: ``init(params) -> state``."""

    def __call__(self, params: Params) -> OptState: ...


class TransformUpdateFn(Protocol):
    """The type of ``update``: ``update(updates, state, params=None) -> (updates, state)``."""

    def __call__(self, updates: Updates, state: OptState, params: Params | None = None) -> tuple[Any, Any]: ...


class TransformUpdateExtraArgsFn(Protocol):
    """The type of ``update`` with extra keyword arguments (every gradtx ``update`` is one):
    ``update(updates, state, params=None, **extra_args) -> (updates, state)``."""

    def __call__(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]: ...


__all__ = [
    "EmptyState",
    "GradientTransformation",
    "StatelessTransformation",
    "TransformationLike",
    "apply_updates",
    "check_tree_match",
    "identity",
    "incremental_update",
    "init_empty_state",
    "periodic_update",
    "safe_int32_increment",
    "set_to_zero",
    "stateless",
    "stateless_with_tree_map",
]


@runtime_checkable
class TransformationLike(Protocol):
    """Anything with ``init`` and ``update``: a gradtx block, an Optax transformation, a user's own."""

    def init(self, params: Params) -> OptState: ...

    def update(self, updates: Updates, state: OptState, params: Params | None = None) -> Any: ...


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


def init_empty_state(params: Params) -> EmptyState:
    """An ``init`` for stateless transformations: ignores ``params`` and returns ``EmptyState()``."""
    del params
    return EmptyState()


# --------------------------------------------------------------------------------------------------
# The transformation base class.
# --------------------------------------------------------------------------------------------------


_NNX_DATA_TYPES: set[type] = set()


def _subclasses(cls: type) -> list[type]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out


def _declare_to_nnx(cls: type) -> None:
    """Tell Flax NNX, if it is loaded, that transformations are data (pytrees that may hold arrays).

    ``flax.nnx.Optimizer`` stores its ``tx`` as an attribute of an ``nnx.Pytree``, and NNX (>= 0.12) rejects
    a *static* attribute whose pytree leaves include arrays. An Optax transformation hides an array learning
    rate in a closure; a gradtx transformation exposes it as a leaf, so NNX must see the transformation as
    data (``nnx.register_data_type``, keyed by exact type). Python-number hyperparameters stay static under
    NNX, as with Optax; array hyperparameters become part of ``nnx.state(optimizer)`` and are traced, not
    baked in, by ``nnx.jit``. NNX is never imported here: classes are declared once it is loaded, on the
    first construction of a transformation afterwards (every class defined so far at once).
    """
    if cls in _NNX_DATA_TYPES:
        return
    nnx = sys.modules.get("flax.nnx")
    register = getattr(nnx, "register_data_type", None)
    if register is None:
        return
    for sub in _subclasses(GradientTransformation):
        if sub not in _NNX_DATA_TYPES:
            register(sub)
            _NNX_DATA_TYPES.add(sub)


class GradientTransformation(ValidationMixin):
    """Base class of every gradtx transformation, and a constructor for a user's own.

    ``GradientTransformation(init, update)`` builds a transformation from two functions, like Optax's
    NamedTuple of the same name. gradtx blocks subclass it as frozen pytree dataclasses and define
    ``init`` and ``update`` as methods. Iterating a transformation yields ``(init, update)``, so gradtx
    blocks can be placed inside ``optax.chain`` too.

    Every subclass's ``init`` and ``update`` are checked at their boundary (``gradtx._structure``): a state
    that ``init`` would not make for the given params or updates (another optimizer's state, other shapes),
    updates shaped unlike the params, and integer or boolean parameters of a block (unless its class sets
    ``passes_integers = True``; a wrapper leaves the question to its blocks) raise a ``StructureError`` naming
    the call and the tree path.
    """

    # Integer parameters: True passes them through (identity, set_to_zero), False refuses them at init, None
    # decides by kind (a block refuses them, a wrapper of other transformations lets its blocks decide).
    passes_integers: ClassVar[bool | None] = None
    params_like_updates: ClassVar[bool] = True  # update's params have the updates' tree (lookahead: not)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, wrap in (("init", checked_init), ("update", checked_update)):
            method = cls.__dict__.get(name)
            if inspect.isfunction(method):
                setattr(cls, name, wrap(method))

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is GradientTransformation:
            cls = FunctionTransformation
        if cls not in _NNX_DATA_TYPES:
            _declare_to_nnx(cls)
        return object.__new__(cls)

    if TYPE_CHECKING:  # defined by subclasses, as methods (or as fields for FunctionTransformation)

        def init(self, params: Params) -> OptState: ...

        def update(
            self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any
        ) -> tuple[Updates, OptState]: ...

    def __iter__(self):
        return iter((self.init, self.update))

    def __getitem__(self, index: Any) -> Any:
        """``tx[0]`` is ``init``, ``tx[1]`` is ``update``: indexing as Optax's NamedTuple allows."""
        return (self.init, self.update)[index]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({fields_repr(self)})"


@pytree_class
class FunctionTransformation(GradientTransformation):
    """A transformation made from two plain functions; both are static parts of the tree."""

    init: Callable[[Params], OptState] = static_field()
    update: Callable[..., tuple[Updates, OptState]] = static_field()

    def __repr__(self) -> str:
        return f"GradientTransformation(init={format_value(self.init)}, update={format_value(self.update)})"


def accepts_extra_args(update: Callable[..., Any]) -> bool:
    """Whether a foreign ``update`` function takes ``**extra`` keyword arguments."""
    try:
        sig = inspect.signature(update)
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


@pytree_class
class foreign(GradientTransformation):
    """A transformation that is not a gradtx pytree (an Optax transformation), held as static.

    Extra keyword arguments are passed only if its ``update`` accepts ``**kwargs``.
    """

    tx: Any = static_field()

    def init(self, params: Params) -> OptState:
        return self.tx.init(params)

    def update(self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any):
        if extra and accepts_extra_args(self.tx.update):
            return self.tx.update(updates, state, params, **extra)
        return self.tx.update(updates, state, params)

    def __repr__(self) -> str:
        init = getattr(self.tx, "init", None)
        where = getattr(init, "__qualname__", "").split(".<locals>")[0]
        module = (getattr(init, "__module__", "") or "").split(".")[0]
        if where and module:
            return f"foreign({module}.{where})"  # e.g. foreign(optax.scale_by_adam)
        return f"foreign({self.tx!r})"


def as_transformation(tx: Any, where: str = "chain") -> GradientTransformation:
    """Return ``tx`` as a gradtx transformation (foreign ones wrapped static); reject non-transformations."""
    if isinstance(tx, FunctionTransformation) and not accepts_extra_args(tx.update):
        return foreign(tx)  # type: ignore[call-arg]  # its update takes no **kwargs: extra arguments are dropped
    if isinstance(tx, GradientTransformation):
        return tx
    if hasattr(tx, "init") and hasattr(tx, "update"):
        return foreign(tx)
    raise TypeError(f"{where}: expected a transformation with init and update, got {tx!r}")


# --------------------------------------------------------------------------------------------------
# Counters and structure checks.
# --------------------------------------------------------------------------------------------------

_INT32_MAX = np.iinfo(np.int32).max


def safe_int32_increment(count: jax.Array) -> jax.Array:
    """``count + 1`` for an int32 counter, saturating at the largest int32 instead of wrapping."""
    count = jnp.asarray(count, jnp.int32)
    return jnp.where(count < _INT32_MAX, count + 1, count)


def zero_count() -> jax.Array:
    """A fresh int32 step counter."""
    return jnp.zeros([], jnp.int32)


def _paths(tree: Any) -> list[str]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: x is None)
    return [jax.tree_util.keystr(p) or "<root>" for p, _ in flat]


def require_params(call: str, params: Any, why: str = "") -> None:
    """Raise a ``ValueError`` naming ``call`` (e.g. ``"sam.update"``) when an update that reads the parameters
    was called without them; ``why`` says what they are needed for."""
    if params is None:
        reason = f": {why}" if why else ""
        raise ValueError(f"{call}: params are required (call update(updates, state, params)){reason}")


def check_tree_match(call: str, expected: Any, got: Any, what: str = "updates") -> None:
    """Raise ``TypeError`` naming the first differing path when ``got`` does not match ``expected``.

    ``expected`` is a tree made by ``init`` from the parameters (a moment, a mask); ``got`` is what
    ``update`` received. The check runs at trace time and costs nothing when the structures agree.
    """
    te = jax.tree_util.tree_structure(expected, is_leaf=lambda x: x is None)
    tg = jax.tree_util.tree_structure(got, is_leaf=lambda x: x is None)
    if te == tg:
        return
    pe, pg = _paths(expected), _paths(got)
    for a, b in zip(pe, pg):
        if a != b:
            raise TypeError(
                f"{call}: the {what} tree does not match the state made by init: first differing path: "
                f"{what} has {b}, state has {a}"
            )
    if len(pg) > len(pe):
        raise TypeError(f"{call}: the {what} tree has a path the state made by init lacks: {pg[len(pe)]}")
    if len(pe) > len(pg):
        raise TypeError(f"{call}: the {what} tree lacks a path the state made by init has: {pe[len(pg)]}")
    raise TypeError(f"{call}: the {what} tree has container types {tg} but the state made by init has {te}")


# --------------------------------------------------------------------------------------------------
# Elementary transformations.
# --------------------------------------------------------------------------------------------------


class StatelessTransformation(GradientTransformation):
    """Base class of the transformations that keep no state: ``init`` returns ``EmptyState()``.

    A subclass (a ``@pytree_class``) writes only ``update``.

    Example:
      >>> import gradtx
      >>> gradtx.scale(0.5).init({"w": 1.0})
      EmptyState()
    """

    def init(self, params: Params) -> EmptyState:
        del params
        return EmptyState()


@pytree_class
class identity(StatelessTransformation):
    """Leaves updates unchanged. The empty ``chain()`` equals it."""

    passes_integers = True

    def update(self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any):
        del params, extra
        return updates, state


@pytree_class
class set_to_zero(StatelessTransformation):
    """Replaces every update with zeros (freezes parameters; use with a partition or mask)."""

    passes_integers = True

    def update(self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any):
        del params, extra
        return jax.tree.map(jnp.zeros_like, updates), state


@pytree_class
class stateless(StatelessTransformation):
    """A stateless transformation from ``f(updates, params) -> updates`` (``f`` is static)."""

    passes_integers = True

    f: Callable[[Updates, Params | None], Updates] = function()

    def update(self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any):
        del extra
        return self.f(updates, params), state


@pytree_class
class stateless_with_tree_map(StatelessTransformation):
    """A stateless transformation applying ``f(update_leaf, param_leaf_or_None)`` leaf by leaf."""

    passes_integers = True

    f: Callable[[jax.Array, jax.Array | None], jax.Array] = function()

    def update(self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any):
        del extra
        if params is None:
            return jax.tree.map(lambda u: self.f(u, None), updates), state
        return jax.tree.map(self.f, updates, params), state


# --------------------------------------------------------------------------------------------------
# Applying updates.
# --------------------------------------------------------------------------------------------------


def apply_updates(params: Params, updates: Updates) -> Params:
    """``params + updates`` leaf by leaf, cast back to each parameter's dtype; ``None`` leaves skipped.

    A ``None`` parameter stays ``None``; a ``None`` update leaves its parameter unchanged.
    """

    check_apply_updates(params, updates)

    def add(p: Any, u: Any) -> Any:
        if p is None or u is None:
            return p
        p = jnp.asarray(p)
        return (p + u).astype(p.dtype)

    return jax.tree.map(add, params, updates, is_leaf=lambda x: x is None)


def incremental_update(new_tensors: PyTree, old_tensors: PyTree, step_size: Any) -> PyTree:
    """Polyak averaging: ``step_size * new + (1 - step_size) * old`` leaf by leaf."""

    def mix(n: Any, o: Any) -> Any:
        if n is None:
            return None
        return (step_size * n + (1.0 - step_size) * o).astype(jnp.result_type(o))

    return jax.tree.map(mix, new_tensors, old_tensors, is_leaf=lambda x: x is None)


def periodic_update(new_tensors: PyTree, old_tensors: PyTree, steps: Any, update_period: Any) -> PyTree:
    """``new`` on steps that are multiples of ``update_period``, else ``old`` (a jit-safe select)."""
    take_new = jnp.asarray(steps) % update_period == 0
    return jax.tree.map(
        lambda n, o: None if n is None else jnp.where(take_new, n, o),
        new_tensors,
        old_tensors,
        is_leaf=lambda x: x is None,
    )
