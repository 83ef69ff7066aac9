"""The skeleton of every block that keeps a step count and per-leaf moments: the Adam family, RMSProp, Adagrad,
and contrib's Adam-like optimizers.

Such a block states three things and nothing else::

    @pytree_class
    class scale_by_amsgrad(AdamLike[ScaleByAmsgradState]):  # (the state type, for type checkers)
        b1: Scalar = probability(0.9)                       # 1. its fields (gradtx.fields)
        ...
        State = ScaleByAmsgradState                         # 2. its state: the NamedTuple and its moments
        moments = (Moment("mu", "mu_dtype"), Moment("nu", "nu_dtype"), Moment("nu_max", "nu_dtype"))

        def direction(self, x, step, g, mu, nu, nu_max):    # 3. one leaf's math, in gradtx.tree.Leaf's words
            m = x.ema(self.b1, mu, g)
            ...
            return u, m, v, v_max

and :class:`AdamLike` does the rest: ``init`` (the counts at 0, each moment as its :class:`Moment` says),
``update``'s check that the updates match the state, the count increment, the leaf-by-leaf map
(``gradtx.tree.map_split``), storing each new moment in the dtype of the state leaf it replaces and casting the
output to the update's dtype (``Leaf.store``, ``Leaf.out``). ``direction`` gets the leaf's :class:`gradtx.tree.Leaf`
``x``, the :class:`Step` (the step numbers and the schedules' values, shared by every leaf), the update leaf
``g`` and the moments' leaves as stored, and returns the output and the new moments (in any dtype, usually the
compute dtype: the output uses them unrounded).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    Params,
    Scalar,
    Updates,
    check_tree_match,
    require_params,
    safe_int32_increment,
    zero_count,
)

__all__ = ["AdamLike", "Moment", "Step", "nadam_moment", "widest"]

StateT = TypeVar("StateT")  # the state NamedTuple of an AdamLike block


@dataclasses.dataclass(frozen=True)
class Moment:
    """One per-leaf state field of an :class:`AdamLike` block and how ``init`` builds it.

    Args:
      name: the field of the state NamedTuple (``"mu"``, ``"nu"``, ...).
      dtype: the name of the block's field giving the dtype it is stored in (``"mu_dtype"``, ``"nu_dtype"``);
        ``None`` (the default): the parameter's dtype (also when that field is ``None``).
      start: the initial value: a number (default 0.0), the name of the block's field holding it
        (``"initial_scale"``), or a function ``(block, param_leaf, dtype) -> array`` (a block-shaped moment, a
        copy of the parameters).
      updated: ``False`` for a leaf ``direction`` reads but does not return (kept as ``init`` made it); such
        moments come after the updated ones. Default ``True``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.transforms.adam_base import Moment
      >>> yogi = gradtx.scale_by_yogi(initial_accumulator_value=0.5)
      >>> print(Moment("nu", "nu_dtype", start="initial_accumulator_value").init(yogi, jnp.zeros(2)))
      [0.5 0.5]
    """

    name: str
    dtype: str | None = None
    start: float | str | Callable[..., Any] = 0.0
    updated: bool = True

    def init(self, block: Any, params: Params) -> Updates:
        """This moment's tree for ``params`` (one array per leaf), for the block ``block``."""
        dtype = getattr(block, self.dtype) if self.dtype is not None else None
        if callable(self.start):
            start = self.start
            return jax.tree.map(lambda p: start(block, p, dtype), params)
        if isinstance(self.start, str):
            return tree.full_like(params, getattr(block, self.start), dtype)
        if self.start == 0:
            return tree.zeros_like(params, dtype)
        return tree.full_like(params, self.start, dtype)


class Step:
    """One update's step numbers and per-step values, shared by every leaf (what ``direction`` gets as ``step``).

    Attributes:
      count: the number of steps taken before this one (the state's count; 0 at the first step).
      k: this step's 1-based number, ``count + 1`` saturating at the largest int32 (Adam's ``t``).
      dtype: the widest real dtype of the updates (float32 or wider), for per-step values that every leaf shares.

    Args:
      count: the state's first step count, an int32 scalar (``None`` for a block that keeps no count).
      schedule_count: the count schedules are evaluated at (the state's last count; ``None`` without counts).
      dtype: the widest real dtype of the updates.

    Example:
      >>> import jax.numpy as jnp
      >>> import numpy as np
      >>> from gradtx.transforms.adam_base import Step
      >>> step = Step(jnp.int32(0), jnp.int32(0), np.dtype("float32"))
      >>> print(step.count, step.k, step.at(0.5), step.at(lambda count: count + 10))
      0 1 0.5 10
    """

    __slots__ = ("_schedule_count", "_values", "count", "dtype", "k")

    def __init__(self, count: jax.Array | None, schedule_count: jax.Array | None, dtype: np.dtype):
        self.count: Any = count  # None only for a block without counts, whose direction never reads it
        self.k: Any = None if count is None else safe_int32_increment(count)
        self.dtype = dtype
        self._schedule_count = schedule_count
        self._values: dict[int, Any] = {}

    def at(self, value: Any, *args: Any) -> Any:
        """``value`` if it is a number; a schedule's value at this step (``value(count)``, or ``value(*args)``),
        computed once per update whatever the number of leaves."""
        if not callable(value):
            return value
        key = id(value)
        if key not in self._values:
            self._values[key] = value(*args) if args else value(self._schedule_count)
        return self._values[key]


class AdamLike(GradientTransformation, Generic[StateT]):
    """Base class of the blocks whose state is step counts and per-leaf moments (see the module docstring).

    A block subclasses ``AdamLike[ItsState]`` (so that type checkers know what ``init`` and ``update``
    return), is a ``@pytree_class`` whose fields are its hyperparameters, and sets these class attributes:

    - ``State``: its state NamedTuple (a property where it depends on an option).
    - ``moments``: its per-leaf state fields, as :class:`Moment` objects, in the order ``direction`` takes them.
    - ``counts``: its int32 step counters (default ``("count",)``; ``()`` for none), all incremented at every
      update; the first numbers the steps (``Step.count``, ``Step.k``), schedules are evaluated at the last.
    - ``needs_params``: ``direction`` also gets the parameter leaf, after the moments (``update`` requires
      params).

    and writes ``direction(x, step, g, *moments) -> (u, *new_moments)``, one leaf's math.
    ``init(params)`` returns ``State`` with the counts at 0 and each moment as its :class:`Moment` says;
    ``update`` checks that the updates match the state (``TypeError`` otherwise), maps ``direction`` over the
    leaves, stores each new moment in its state leaf's dtype and casts the output to the update's dtype.

    Example:
      >>> from typing import NamedTuple
      >>> import jax, jax.numpy as jnp
      >>> from gradtx.fields import probability, pytree_class
      >>> from gradtx.transforms.adam_base import AdamLike, Moment
      >>> class MomentumState(NamedTuple):
      ...     count: jax.Array
      ...     mu: jax.Array
      >>> @pytree_class
      ... class debiased_momentum(AdamLike[MomentumState]):  # u = m_k / (1 - b^k)
      ...     b: float = probability(default=0.9)
      ...     State, moments = MomentumState, (Moment("mu"),)
      ...     def direction(self, x, step, g, mu):
      ...         m = x.ema(self.b, mu, g)
      ...         return m / x.debias(self.b, step.k), m
      >>> tx = debiased_momentum()
      >>> u, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(u, state.mu)
      [ 1. -2.] [ 0.1 -0.2]
    """

    State: ClassVar[Any]
    moments: ClassVar[tuple[Moment, ...]]
    counts: ClassVar[tuple[str, ...]] = ("count",)
    needs_params: ClassVar[bool] = False

    def direction(self, x: tree.Leaf, step: Step, g: Any, *state: Any) -> tuple[Any, ...]:
        """One leaf's output and new moments: ``(u, *new_moments)`` for the updated moments, in their order."""
        raise NotImplementedError

    def init(self, params: Params) -> StateT:
        counts = {name: zero_count() for name in self.counts}
        return cast(StateT, self.State(**counts, **{m.name: m.init(self, params) for m in self.moments}))

    def update(
        self, updates: Updates, state: StateT, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, StateT]:
        del extra
        old: Any = state  # a NamedTuple of counts and moments
        call = f"{type(self).__name__}.update"
        if self.needs_params:
            require_params(call, params)
        moments = self.moments
        check_tree_match(call, getattr(old, moments[0].name), updates)
        counts = [getattr(old, name) for name in self.counts]
        step = Step(counts[0] if counts else None, counts[-1] if counts else None, tree.widest_real_dtype(updates))
        updated = [m.name for m in moments if m.updated]
        inputs = [getattr(old, m.name) for m in moments] + ([params] if self.needs_params else [])

        shared: dict[Any, Any] = {}  # per-step scalars, computed once for all leaves (tree.Leaf.shared)

        def one(g: Any, *leaves: Any) -> tuple[Any, ...]:
            x = tree.Leaf(g, shared)
            u, *new = self.direction(x, step, g, *leaves)
            return (x.out(u), *(x.store(n, old) for n, old in zip(new, leaves)))

        out, *new = tree.map_split(one, 1 + len(updated), updates, *inputs)
        increments = {name: safe_int32_increment(c) for name, c in zip(self.counts, counts)}
        return out, old._replace(**increments, **dict(zip(updated, new)))


def widest(x: tree.Leaf, *leaves: ArrayLike) -> tree.Leaf:
    """The :class:`gradtx.tree.Leaf` of the widest compute dtype among ``leaves`` (a gradient and its state).

    It shares ``x``'s per-update values: a block computing in it keeps state wider than the gradient
    (``mu_dtype=float64`` beside float32 gradients) unrounded. Real state beside complex gradients computes in
    the complex dtype of that width.

    Args:
      x: the update leaf's :class:`gradtx.tree.Leaf`.
      *leaves: the arrays (a gradient leaf and its state leaves) whose compute dtypes are compared.

    Returns:
      A :class:`gradtx.tree.Leaf` whose ``compute_dtype`` is the widest of the leaves' compute dtypes.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> from gradtx.transforms.adam_base import widest
      >>> g, nu = jnp.ones(2, jnp.bfloat16), jnp.ones(2, jnp.float32)
      >>> print(widest(tree.Leaf(g), g, nu).compute_dtype)  # bfloat16 computes in float32 anyway
      float32
      >>> g, nu = jnp.ones(2, jnp.complex64), jnp.ones(2, jnp.float32)
      >>> print(widest(tree.Leaf(g), g, nu).compute_dtype)  # real state beside a complex gradient
      complex64
    """
    return x.like(np.result_type(*(tree.compute_dtype(jnp.result_type(a)) for a in leaves)))


def nadam_moment(
    x: tree.Leaf, b1: Scalar, m: ArrayLike, g: ArrayLike, k: ArrayLike, into: tree.Leaf | None = None
) -> jax.Array:
    """NAdam's bias-corrected first moment (Dozat 2016, "Incorporating Nesterov Momentum into Adam", ICLR
    workshop).

    ``m_hat = b1 m / (1 - b1^(k+1)) + (1 - b1) g / (1 - b1^k)``, computed as an EMA of the two corrected terms
    (so only the exact complement of ``b1`` enters). ``g`` is corrected in ``x``'s compute dtype, ``m`` in
    ``into``'s, where the result is.

    Args:
      x: the update leaf's :class:`gradtx.tree.Leaf`.
      b1: the first-moment decay, in [0, 1).
      m: the new first moment ``m_k`` (already averaged with ``g``).
      g: the update leaf ``g_k``.
      k: the 1-based step number (an int32 scalar).
      into: the :class:`gradtx.tree.Leaf` whose compute dtype the result is in; default ``None``: ``x``.

    Returns:
      ``m_hat``, an array in ``into``'s compute dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx import tree
      >>> from gradtx.transforms.adam_base import nadam_moment
      >>> g = jnp.array([1.0, -2.0])
      >>> print(nadam_moment(tree.Leaf(g), 0.9, jnp.zeros(2), g, jnp.int32(1)))  # 0 + 0.1 g / 0.1
      [ 1. -2.]
    """
    into = x if into is None else into
    ahead = into.cast(m) / into.cast(into.debias(b1, safe_int32_increment(k)))
    return into.ema(b1, ahead, x.cast(g) / x.cast(x.debias(b1, k)))
