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
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol, TypeAlias, TypeVar, cast, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from typing_extensions import Self

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
# A number a hyperparameter accepts: a Python float or int, a NumPy scalar or 0-d array, a JAX array (a tracer
# inside jit). Strings, None and containers are not numbers; pyright reports them where these aliases are used.
Scalar: TypeAlias = ArrayLike
Schedule: TypeAlias = Callable[[jax.Array], ArrayLike]  # step count (0-based) -> value
ScheduleState = Any
ScalarOrSchedule: TypeAlias = ArrayLike | Schedule  # a number, or a schedule of the 0-based step count
_ParamsT = TypeVar("_ParamsT")
MaskOrFn = Any  # None, a pytree of bools (or a prefix of one), or a function params -> such a pytree

NO_PARAMS_MSG = (
    "You are using a transformation that requires the current value of parameters, but you are not passing "
    "`params` when calling `update`."
)


@runtime_checkable
class StatefulSchedule(Protocol):
    """A schedule with state (Optax's ``StatefulSchedule``): ``init``, ``update`` and ``__call__``.

    The protocol (a structural type: any object with these three methods is one, no subclassing needed)::

        state = schedule.init()                        # the schedule's own state (a pytree)
        value = schedule(state, **extra_args)          # the value for the current step
        state = schedule.update(state, **extra_args)   # advance one step

    ``inject_hyperparams`` (alias ``inject_stateful_hyperparams``) accepts such objects as hyperparameters:
    at each ``update`` it reads the value, then advances the schedule's state, which it keeps in its own
    state. ``extra_args`` are the extra keyword arguments of the optimizer's ``update`` (``value=loss``, ...),
    so a schedule can react to the loss. It is ``runtime_checkable``: ``isinstance(obj, StatefulSchedule)``
    tests for the three methods.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.base import StatefulSchedule
      >>> class Halving:  # 1, 0.5, 0.25, ...
      ...     def init(self):
      ...         return jnp.asarray(1.0)
      ...     def update(self, state, **extra_args):
      ...         return state / 2
      ...     def __call__(self, state, **extra_args):
      ...         return state
      >>> isinstance(Halving(), StatefulSchedule)
      True
      >>> tx = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=Halving())
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.ones(2), state)
      >>> updates, state = tx.update(jnp.ones(2), state)
      >>> print(updates)
      [-0.5 -0.5]
    """

    def init(self) -> ScheduleState: ...

    def update(self, state: ScheduleState, **extra_args: Any) -> ScheduleState: ...

    def __call__(self, state: ScheduleState, **extra_args: Any) -> ArrayLike: ...


class ConditionFn(Protocol):
    """The type of ``conditionally_transform``'s condition: ``fn(step, **extra_args) -> bool``.

    ``step`` is the int32 count of previous ``update`` calls (from 0); the result must be a scalar boolean (a
    Python bool or a 0-d array: it decides a ``lax.cond``, so it may be traced). ``extra_args`` are the
    extra keyword arguments of ``update``, passed only with ``forward_extra_args=True``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> def first_step_only(step, **extra_args):
      ...     return step < 1
      >>> tx = gradtx.conditionally_transform(gradtx.scale(10.0), first_step_only)
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.ones(2), state)
      >>> print(updates)
      [10. 10.]
      >>> updates, state = tx.update(jnp.ones(2), state)
      >>> print(updates)
      [1. 1.]
    """

    def __call__(self, step: jax.Array, **extra_args: Any) -> ArrayLike: ...


class TransformInitFn(Protocol):
    """The type of ``init``: ``init(params) -> state``.

    ``params`` is a pytree of arrays (the model's parameters, or anything with their structure, shapes and
    dtypes); the state is a pytree of arrays whose structure is fixed from then on.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.base import TransformInitFn
      >>> init: TransformInitFn = gradtx.trace(decay=0.9).init
      >>> init({"w": jnp.zeros(2)})
      TraceState(trace={'w': Array([0., 0.], dtype=float32)})
    """

    def __call__(self, params: Params) -> OptState: ...


class TransformUpdateFn(Protocol):
    """The type of ``update``: ``update(updates, state, params=None) -> (updates, state)``.

    ``updates`` has the structure of the params (usually the gradients); ``state`` is what ``init`` (or the
    previous ``update``) returned; ``params`` are the current parameters, required only by the
    transformations that read them (weight decay, ...). Returns the transformed updates and the new state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.base import TransformUpdateFn
      >>> tx = gradtx.scale(-0.5)
      >>> update: TransformUpdateFn = tx.update
      >>> updates, state = update(jnp.array([2.0, 4.0]), tx.init(None))
      >>> print(updates)
      [-1. -2.]
    """

    def __call__(
        self, updates: Updates, state: OptState, params: Params | None = None
    ) -> tuple[Updates, OptState]: ...


class TransformUpdateExtraArgsFn(Protocol):
    """The type of ``update`` with extra keyword arguments (every gradtx ``update`` is one).

    ``update(updates, state, params=None, **extra_args) -> (updates, state)``: as :class:`TransformUpdateFn`,
    plus keyword arguments (``value=loss``, ``value_fn=...``, ``grad=...``) that the transformations needing
    them read and the others ignore.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.base import TransformUpdateExtraArgsFn
      >>> tx = gradtx.scale(2.0)
      >>> update: TransformUpdateExtraArgsFn = tx.update
      >>> updates, state = update(jnp.array([1.0]), tx.init(None), value=jnp.asarray(3.0))  # value ignored
      >>> print(updates)
      [2.]
    """

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
    """Anything with ``init`` and ``update``: a gradtx block, an Optax transformation, a user's own.

    The type of the arguments that take a transformation (``chain``, ``masked``, ``partition``, the
    wrappers). It is structural: an object qualifies by having ``init(params) -> state`` and
    ``update(updates, state, params=None) -> (updates, state)`` (see :class:`GradientTransformation` for the
    protocol); ``isinstance(obj, TransformationLike)`` tests for the two attributes. A transformation that is
    not a gradtx pytree (an Optax one) is held as a static block, and receives the extra keyword arguments of
    ``update`` only if its ``update`` accepts ``**kwargs``.

    Examples:
      >>> import optax
      >>> import gradtx
      >>> from gradtx.base import TransformationLike
      >>> isinstance(gradtx.scale(2.0), TransformationLike), isinstance(optax.scale(2.0), TransformationLike)
      (True, True)
      >>> isinstance(lambda g: g, TransformationLike)
      False
    """

    def init(self, params: Params) -> OptState: ...

    def update(self, updates: Updates, state: OptState, params: Params | None = None) -> tuple[Updates, OptState]: ...


class EmptyState(NamedTuple):
    """The state of a stateless transformation: a NamedTuple without fields (a pytree without leaves).

    Optax's ``EmptyState``: ``init`` of every stateless block returns ``EmptyState()``. Having no leaves, it
    adds nothing to a checkpoint, is skipped by every tree map, and costs nothing under ``jit``.

    Examples:
      >>> import jax
      >>> import gradtx
      >>> gradtx.clip(1.0).init({"w": 1.0})
      EmptyState()
      >>> jax.tree.leaves(gradtx.EmptyState())
      []
    """


def init_empty_state(params: Params) -> EmptyState:
    """An ``init`` for stateless transformations: ignores ``params`` and returns ``EmptyState()``.

    Optax's ``init_empty_state``, for building a stateless transformation from functions (see
    :class:`GradientTransformation`).

    Args:
      params: the parameters (ignored; any pytree, or ``None``).

    Returns:
      ``EmptyState()``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> gradtx.init_empty_state({"w": jnp.zeros(3)})
      EmptyState()
    """
    del params
    return EmptyState()


# --------------------------------------------------------------------------------------------------
# The transformation base class.
# --------------------------------------------------------------------------------------------------


_NNX_DATA_TYPES: set[type] = set()


def _subclasses(cls: type) -> list[type]:
    out = [cls]
    sub: type
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

    The protocol. A transformation is a pair of pure functions (Optax's protocol, unchanged)::

        state = tx.init(params)
        updates, state = tx.update(updates, state, params=None, **extra_args)

    - ``init(params) -> state``: the initial state for parameters ``params`` (a pytree of arrays). Only the
      structure, shapes and dtypes of ``params`` matter (``jax.eval_shape(tx.init, params)`` works). The state
      is a pytree of arrays (usually a NamedTuple such as ``ScaleByAdamState``) whose structure never changes
      afterwards.
    - ``update(updates, state, params=None, **extra_args) -> (updates, state)``: transform ``updates`` (the
      gradients, for the first block of a chain) given the state of the previous call, and return the new
      updates with the next state. ``params`` are the current parameters (needed by weight decay and a few
      others, which raise a ``ValueError`` without them). ``extra_args`` (``value=loss``, ``value_fn=...``)
      are read by the blocks that need them and ignored by the others.

    The updates are *added* to the parameters (``params = apply_updates(params, updates)``), so a descent
    method returns the negative step: ``scale_by_learning_rate`` carries the minus sign. Both functions are
    pure and jit-safe: no side effects, and the state is the only memory between steps.

    Building one. ``GradientTransformation(init, update)`` builds a transformation from two functions, like
    Optax's NamedTuple of the same name (both functions are static parts of its pytree). gradtx blocks
    subclass it as frozen pytree dataclasses (``@pytree_class``) whose hyperparameters are fields and define
    ``init`` and ``update`` as methods. Iterating a transformation yields ``(init, update)`` and ``tx[0]``,
    ``tx[1]`` index them, so gradtx blocks can be placed inside ``optax.chain`` too.

    Checks. Every subclass's ``init`` and ``update`` are checked at their boundary (``gradtx._structure``): a
    state that ``init`` would not make for the given params or updates (another optimizer's state, other
    shapes), updates shaped unlike the params, and integer or boolean parameters of a block (unless its class
    sets ``passes_integers = True``; a wrapper leaves the question to its blocks) raise a ``StructureError``
    naming the call and the tree path. So does a :class:`gradtx.flat.FlatTree` given to a block whose class
    sets ``leaf_structured`` to a reason (a trust ratio per leaf, a factored moment, a mask written for the
    tree): on flat buffers such a block would compute something other than its per-leaf result.

    Args:
      init: ``init(params) -> state`` (:class:`TransformInitFn`).
      update: ``update(updates, state, params=None, **extra_args) -> (updates, state)``
        (:class:`TransformUpdateExtraArgsFn`; an ``update`` without ``**extra_args`` is given none of them
        when chained).

    Examples:
      A transformation from two functions, dividing the ``k``-th update by ``k``:

      >>> from typing import NamedTuple
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> class CountState(NamedTuple):
      ...     count: jax.Array
      >>> def init(params):
      ...     return CountState(count=jnp.zeros([], jnp.int32))
      >>> def update(updates, state, params=None, **extra_args):
      ...     k = (state.count + 1).astype(jnp.float32)
      ...     return jax.tree.map(lambda g: g / k, updates), CountState(count=state.count + 1)
      >>> tx = gradtx.GradientTransformation(init, update)
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> updates, state = tx.update({"w": jnp.array([1.0, -2.0])}, state)
      >>> updates, state = tx.update({"w": jnp.array([1.0, -2.0])}, state)
      >>> print(updates["w"], int(state.count))
      [ 0.5 -1. ] 2

      It composes with gradtx blocks like any other:

      >>> opt = gradtx.chain(tx, gradtx.scale_by_learning_rate(0.1))
      >>> params = {"w": jnp.array([1.0, 1.0])}
      >>> updates, _ = opt.update({"w": jnp.array([1.0, -2.0])}, opt.init(params), params)
      >>> print(gradtx.apply_updates(params, updates)["w"])
      [0.9 1.2]
    """

    # Integer parameters: True passes them through (identity, set_to_zero), False refuses them at init, None
    # decides by kind (a block refuses them, a wrapper of other transformations lets its blocks decide).
    passes_integers: ClassVar[bool | None] = None
    params_like_updates: ClassVar[bool] = True  # update's params have the updates' tree (lookahead: not)
    # Why the block's numbers depend on how the parameters are cut into leaves (a per-leaf norm, a factored
    # moment, a mask written for the tree), or None: elementwise or global maths, which gives the per-leaf
    # result on a gradtx.flat.FlatTree. A block with a reason refuses a FlatTree in init (StructureError).
    leaf_structured: ClassVar[str | None] = None

    def _flat_refusal(self) -> str | None:
        """Why this object cannot run on a FlatTree (``leaf_structured``, or an option such as a mask)."""
        return self.leaf_structured

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, wrap in (("init", checked_init), ("update", checked_update)):
            method = cls.__dict__.get(name)
            if inspect.isfunction(method):
                setattr(cls, name, wrap(method))

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        if cls is GradientTransformation:
            cls = cast("type[Self]", FunctionTransformation)  # a subclass: GradientTransformation(init, update)
        if cls not in _NNX_DATA_TYPES:
            _declare_to_nnx(cls)
        return object.__new__(cls)  # pyright: ignore[reportReturnType]  (a FunctionTransformation)

    if TYPE_CHECKING:  # defined by subclasses, as methods (or as fields for FunctionTransformation)

        def init(self, params: Params) -> OptState: ...

        def update(
            self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any
        ) -> tuple[Updates, OptState]: ...

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return iter((self.init, self.update))

    def __getitem__(self, index: Any) -> Any:
        """``tx[0]`` is ``init``, ``tx[1]`` is ``update``: indexing as Optax's NamedTuple allows."""
        return (self.init, self.update)[index]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({fields_repr(self)})"


@pytree_class
class FunctionTransformation(GradientTransformation):
    """A transformation made from two plain functions; both are static parts of the tree."""

    init: Callable[[Params], OptState] = static_field()  # type: ignore[assignment]  # a field stands for the method
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

    def update(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, OptState]:
        if extra and accepts_extra_args(self.tx.update):
            return cast("tuple[Updates, OptState]", self.tx.update(updates, state, params, **extra))
        return cast("tuple[Updates, OptState]", self.tx.update(updates, state, params))

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
        return foreign(tx)  # its update takes no **kwargs: extra arguments are dropped
    if isinstance(tx, GradientTransformation):
        return tx
    if hasattr(tx, "init") and hasattr(tx, "update"):
        return foreign(tx)
    raise TypeError(f"{where}: expected a transformation with init and update, got {tx!r}")


# --------------------------------------------------------------------------------------------------
# Counters and structure checks.
# --------------------------------------------------------------------------------------------------

_INT32_MAX = np.iinfo(np.int32).max


def safe_int32_increment(count: ArrayLike) -> jax.Array:
    """``count + 1`` for an int32 counter, saturating at the largest int32 instead of wrapping.

    Every step counter of a gradtx state goes through it, so a run longer than ``2**31 - 1`` steps keeps its
    counter at ``2**31 - 1`` (and its bias corrections and schedules at their limit) instead of wrapping to a
    negative count. Optax's ``safe_int32_increment``.

    Args:
      count: an integer scalar (or array) counter; converted to int32.

    Returns:
      ``count + 1`` as an int32 array, or ``count`` where it already is ``2**31 - 1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> print(gradtx.safe_int32_increment(jnp.asarray(41, jnp.int32)))
      42
      >>> print(gradtx.safe_int32_increment(jnp.iinfo(jnp.int32).max))
      2147483647
    """
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


def check_tree_match(call: str, expected: PyTree, got: PyTree, what: str = "updates") -> None:
    """Raise ``TypeError`` naming the first differing path when ``got`` does not match ``expected``.

    ``expected`` is a tree made by ``init`` from the parameters (a moment, a mask); ``got`` is what
    ``update`` received. Only the tree structures are compared (containers, keys, ``None`` positions), not
    shapes. The check runs at trace time and costs nothing when the structures agree.

    Args:
      call: the name of the calling function, first in the message (``"my_block.update"``).
      expected: the tree with the expected structure (made by ``init``).
      got: the tree received.
      what: what ``got`` is, in the message. Default ``"updates"``.

    Raises:
      TypeError: when the structures differ, e.g. ``my.update: the updates tree lacks a path the state made
        by init has: ['b']``, or ``...: first differing path: updates has ['c'], state has ['b']``.

    Examples:
      >>> import gradtx
      >>> gradtx.check_tree_match("my.update", {"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0})  # same: no error
      >>> try:
      ...     gradtx.check_tree_match("my.update", {"a": 1.0, "b": 2.0}, {"a": 3.0})
      ... except TypeError as e:
      ...     print(e)
      my.update: the updates tree lacks a path the state made by init has: ['b']
    """
    te = jax.tree_util.tree_structure(expected, is_leaf=lambda x: x is None)
    tg = jax.tree_util.tree_structure(got, is_leaf=lambda x: x is None)
    if te == tg:  # type: ignore[operator]  # jaxlib ships no stubs: PyTreeDef is unresolved
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

    A subclass (a ``@pytree_class``) writes only ``update``; its fields are its hyperparameters.

    Example:
      >>> import gradtx
      >>> gradtx.scale(0.5).init({"w": 1.0})
      EmptyState()
      >>> from typing import Any
      >>> from gradtx.base import StatelessTransformation
      >>> from gradtx.fields import pytree_class, real
      >>> @pytree_class
      ... class add_constant(StatelessTransformation):
      ...     c: Any = real(default=1.0)
      ...     def update(self, updates, state, params=None, **extra):
      ...         return updates + self.c, state
      >>> tx = add_constant(2.0)
      >>> print(tx.update(1.0, tx.init(1.0))[0])
      3.0
    """

    def init(self, params: Params) -> EmptyState:
        del params
        return EmptyState()


@pytree_class
class identity(StatelessTransformation):
    """Leaves updates unchanged: ``u = g``. The empty ``chain()`` equals it.

    Stateless (``EmptyState()``); integer parameters pass through. Optax's ``identity``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.identity()
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates, state)
      [ 1. -2.] EmptyState()
    """

    passes_integers = True

    def update(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, OptState]:
        del params, extra
        return updates, state


@pytree_class
class set_to_zero(StatelessTransformation):
    """Replaces every update with zeros: ``u = 0`` (the parameters stay where they are).

    Freezes parameters when used inside ``partition`` or ``masked`` (``freeze(mask)`` is
    ``masked(set_to_zero(), mask)``). Stateless (``EmptyState()``); the zeros keep each update's dtype and
    shape; integer parameters pass through. Optax's ``set_to_zero``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.set_to_zero()
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates)
      [0. 0.]
    """

    passes_integers = True

    def update(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, OptState]:
        del params, extra
        return jax.tree.map(jnp.zeros_like, updates), state


@pytree_class
class stateless(StatelessTransformation):
    """A stateless transformation from a function of the whole trees: ``u = f(g, params)``.

    ``f`` receives the updates tree and the params tree (``None`` when ``update`` is called without params)
    and returns the new updates tree. ``f`` is static (part of the tree definition, compared by identity), so
    a jitted step with the same ``f`` compiles once. Integer parameters pass through. Optax's ``stateless``.

    Args:
      f: ``f(updates, params) -> updates``; ``params`` may be ``None``. Must be callable.

    Raises:
      InvalidType: (a ``TypeError``) ``f`` is not callable: ``stateless(f=3): f must be a callable, not int``.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.stateless(lambda g, p: jax.tree.map(lambda x: -x, g))
      >>> updates, state = tx.update({"w": jnp.array([1.0, -2.0])}, tx.init(None))
      >>> print(updates["w"])
      [-1.  2.]
    """

    passes_integers = True

    f: Callable[[Updates, Params | None], Updates] = function()

    def update(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, OptState]:
        del extra
        return self.f(updates, params), state


@pytree_class
class stateless_with_tree_map(StatelessTransformation):
    """A stateless transformation applied leaf by leaf: ``u_leaf = f(g_leaf, param_leaf)``.

    ``f`` receives one update array and the matching parameter array, or ``None`` when ``update`` is called
    without params. ``f`` is static (compared by identity). Integer parameters pass through. Optax's
    ``stateless_with_tree_map``.

    Args:
      f: ``f(update_leaf, param_leaf_or_None) -> new_update_leaf``. Must be callable.

    Raises:
      InvalidType: (a ``TypeError``) ``f`` is not callable: ``stateless_with_tree_map(f=3): f must be a
        callable, not int``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.stateless_with_tree_map(lambda g, p: g * p)  # u = g * p, leaf by leaf
      >>> params = {"a": jnp.array([2.0]), "b": jnp.array([-1.0, 3.0])}
      >>> updates, _ = tx.update({"a": jnp.ones(1), "b": jnp.ones(2)}, tx.init(params), params)
      >>> print(updates["a"], updates["b"])
      [2.] [-1.  3.]
    """

    passes_integers = True

    f: Callable[[jax.Array, jax.Array | None], jax.Array] = function()

    def update(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, OptState]:
        del extra
        if params is None:
            return jax.tree.map(lambda u: self.f(u, None), updates), state
        return jax.tree.map(self.f, updates, params), state


# --------------------------------------------------------------------------------------------------
# Applying updates.
# --------------------------------------------------------------------------------------------------


def apply_updates(params: _ParamsT, updates: Updates) -> _ParamsT:
    """``params + updates`` leaf by leaf, cast back to each parameter's dtype; ``None`` leaves skipped.

    ``p_new = (p + u).astype(p.dtype)``: the updates are *added* (gradtx's transformations already carry the
    minus sign of descent), the sum is computed with JAX's promotion and cast back, so a bfloat16 parameter
    stays bfloat16 (see ``gradtx.precision`` for steps smaller than its rounding). A ``None`` parameter stays
    ``None``; a ``None`` update leaves its parameter unchanged. Optax's ``apply_updates``.

    Args:
      params: the parameters, a pytree of arrays (or Python scalars).
      updates: a pytree with the structure and shapes of ``params`` (what ``update`` returned).

    Returns:
      The new parameters, with the structure and dtypes of ``params``.

    Raises:
      StructureError: the trees differ in structure, or an update's shape differs from its parameter's
        (``apply_updates: updates['w'] has shape (2, 3), but params['w'] has shape (3,)``): nothing is
        broadcast.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> params = {"w": jnp.array([1.0, 2.0]), "b": jnp.array(0.5, jnp.bfloat16)}
      >>> new = gradtx.apply_updates(params, {"w": jnp.array([0.5, -1.0]), "b": jnp.array(0.25)})
      >>> print(new["w"], new["b"], new["b"].dtype)
      [1.5 1. ] 0.75 bfloat16
    """

    check_apply_updates(params, updates)

    def add(p: Any, u: Any) -> Any:
        if p is None or u is None:
            return p
        p = jnp.asarray(p)
        return (p + u).astype(p.dtype)

    return cast(_ParamsT, jax.tree.map(add, params, updates, is_leaf=lambda x: x is None))


def incremental_update(new_tensors: PyTree, old_tensors: PyTree, step_size: Scalar) -> PyTree:
    """Polyak averaging: ``step_size * new + (1 - step_size) * old`` leaf by leaf.

    The exponential moving average of target networks and weight averaging (Polyak and Juditsky 1992,
    "Acceleration of stochastic approximation by averaging", SIAM J. Control Optim.): with ``step_size = tau``
    the result moves a fraction ``tau`` of the way from ``old`` towards ``new``. Each leaf keeps the dtype of
    its ``old`` leaf; ``None`` leaves of ``new`` stay ``None``. Optax's ``incremental_update``.

    Args:
      new_tensors: the new values, a pytree.
      old_tensors: the running average, a pytree with the structure of ``new_tensors``.
      step_size: the weight of the new values, in [0, 1] (a scalar; may be traced).

    Returns:
      The pytree ``step_size * new + (1 - step_size) * old``, in the dtypes of ``old_tensors``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> avg = gradtx.incremental_update(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]), step_size=0.25)
      >>> print(avg)
      [0.25 0.5 ]
    """

    def mix(n: Any, o: Any) -> Any:
        if n is None:
            return None
        return (step_size * n + (1.0 - step_size) * o).astype(jnp.result_type(o))

    return jax.tree.map(mix, new_tensors, old_tensors, is_leaf=lambda x: x is None)


def periodic_update(new_tensors: PyTree, old_tensors: PyTree, steps: ArrayLike, update_period: Scalar) -> PyTree:
    """``new`` on steps that are multiples of ``update_period``, else ``old`` (a jit-safe select).

    Periodic copies of a target network: ``new if steps % update_period == 0 else old``, computed with
    ``jnp.where`` so that ``steps`` may be traced. ``None`` leaves of ``new`` stay ``None``. Optax's
    ``periodic_update``.

    Args:
      new_tensors: the new values, a pytree.
      old_tensors: the current values, a pytree with the structure of ``new_tensors``.
      steps: the current step, an integer scalar (may be traced).
      update_period: the period, an integer >= 1.

    Returns:
      ``new_tensors`` on steps that are multiples of ``update_period``, else ``old_tensors``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> new, old = jnp.array([1.0]), jnp.array([0.0])
      >>> print(gradtx.periodic_update(new, old, steps=4, update_period=2),
      ...       gradtx.periodic_update(new, old, steps=5, update_period=2))
      [1.] [0.]
    """
    take_new = jnp.asarray(steps) % update_period == 0
    return jax.tree.map(
        lambda n, o: None if n is None else jnp.where(take_new, n, o),
        new_tensors,
        old_tensors,
        is_leaf=lambda x: x is None,
    )
