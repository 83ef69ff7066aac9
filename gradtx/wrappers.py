"""Wrappers (1 transformation -> 1): change *when*, *on what* or *with which hyperparameters* an inner
transformation runs, never its maths.

    MultiSteps(opt, k)                 accumulate k mini-batch gradients (mean or sum), then apply ``opt`` once
    apply_if_finite(inner, n)          skip updates holding inf/NaN (up to n in a row), count them
    flatten(inner)                     run ``inner`` on one vector: all leaves raveled and concatenated
    lookahead(fast, k, alpha)          k fast steps, then slow += alpha (fast - slow); fast = slow
                                       (Zhang, Lucas, Hinton & Ba 2019, arXiv 1907.08610)
    inject_hyperparams(f)(...)         ``f``'s numeric hyperparameters live in the state (changeable, schedulable)
    monitor / snapshot / measure_with_ema   record measurements of the updates in the state
    with_extra_args_support(tx)        ``tx`` as a gradtx transformation that accepts ``**extra``
    microbatch(fun, ...)               evaluate a function on a batch in sequential micro-batches
    micro_vmap(fun, ...)               jax.vmap over the batch, run in sequential micro-batches
    micro_grad(fun, ...)               per-example gradients, clipped/transformed and accumulated by micro-batch

Names, signatures, defaults, state classes and field names are Optax 0.2.8's (``optax.MultiSteps``,
``optax.apply_if_finite``, ``optax.flatten``, ``optax.lookahead``, ``optax.inject_hyperparams``,
``optax.monitor``, ``optax.snapshot``, ``optax.measure_with_ema``, ``optax.with_extra_args_support``,
``optax.microbatch``; several also under ``optax.transforms`` / ``optax.schedules`` / ``optax.microbatching``).

Every wrapper is a pytree: its inner transformation is a field (numeric hyperparameters stay leaves), so a
wrapped optimizer passes into ``jit`` as an argument and does not retrace when only a hyperparameter
changes. Extra keyword arguments (``value=...``) reach the inner transformation through every wrapper.

Differences from Optax (all deliberate, each tested in tests/test_wrappers.py):

- ``MultiSteps``: ``every_k_schedule`` must be an int >= 1 or a callable (``ValueError`` otherwise; Optax
  accepts 0 and divides by zero). With a constant ``k = 1`` nothing is accumulated, and ``acc_grads`` holds a
  0-d zero per leaf instead of a full-size buffer (Optax issue #472); Optax's buffer is all zeros after every
  step at ``k = 1`` too, so the values agree by broadcasting and the state paths are the same. Accumulation
  runs in float32 or wider whatever ``accumulator_dtype`` stores (Optax issue #1038: bfloat16 params work).
  A rejected or non-emitting step returns zeros selected with ``where`` (Optax multiplies by 0, which
  propagates NaN); a schedule's ``k`` is rounded to an integer.
- ``inject_hyperparams``: with ``hyperparam_dtype=None`` float hyperparameters are stored in the widest float
  dtype of the parameters *but at least float32*, so ``b2=0.999`` does not round to 1.0 with bfloat16
  parameters (Optax issue #1414; Optax uses the parameter dtype). Values returned by schedules are always
  cast to that dtype (Optax keeps strongly typed schedule outputs as they are). The hyperparameters are
  validated when the transformation is built (Optax: at ``init``). ``inject_stateful_hyperparams`` is the
  same object as ``inject_hyperparams`` (Optax 0.2.8 deprecates it with a warning; gradtx keeps no
  deprecation layers). ``InjectHyperparamsState`` exists for name compatibility; as in Optax the state
  actually returned is ``InjectStatefulHyperparamsState``.
- ``monitor``: ``measurements`` holds zeros shaped like each measurement from ``init`` on (Optax starts
  with an empty dict, so its state structure changes after the first update and cannot go through
  ``lax.scan``). ``measure_with_ema`` averages non-floating measurements (a bool) in float32 from ``init``
  on (Optax's accumulator changes dtype from bool to float after the first update).
- ``flatten``: leaves of different dtypes are concatenated in their widest dtype and each update is cast
  back to its leaf's dtype; the empty tree works.
- ``lookahead``: ``init`` accepts ``LookaheadParams`` or the fast parameters alone (Optax logs a warning for
  the latter); ``update`` requires ``LookaheadParams`` and passes extra keyword arguments to the fast
  optimizer (Optax's update takes none).
- ``GradientTransformationExtraArgs`` builds a ``gradtx.base.GradientTransformation``: every gradtx
  transformation accepts ``**extra``. ``with_extra_args_support`` returns gradtx transformations unchanged
  and wraps the rest (Optax transformations, a ``GradientTransformation(init, update)`` whose ``update``
  takes no ``**kwargs``) so that extra arguments are dropped for them.
- ``microbatch`` accumulates floating outputs in float32 or wider and returns them in their own dtype
  (Optax sums bfloat16 outputs in bfloat16); explicit-sharding layouts are not handled. ``micro_vmap`` maps every
  positional argument for an int ``in_axes`` (as ``jax.vmap``; Optax only one); ``micro_grad`` accepts negative
  ``batch_argnums``; a ``num_real_microbatches`` outside ``[0, n]`` and a batch size not divisible by
  ``microbatch_size`` raise ``ValueError`` (Optax reads past the batch).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax import core as jax_core

from gradtx import tree
from gradtx.base import (
    EmptyState,
    FrozenTree,
    FunctionTransformation,
    GradientTransformation,
    OptState,
    Params,
    PyTree,
    Updates,
    ValidationMixin,
    accepts_extra_args,
    as_pytree_callable,
    as_transformation,
    check_tree_match,
    concrete_number,
    foreign,
    format_value,
    hashable_tree,
    pytree_class,
    run_time_values,
    safe_int32_increment,
    static_field,
    zero_count,
)
from gradtx.transforms import ema

__all__ = [
    "AccumulationType",
    "Accumulator",
    "ApplyIfFiniteState",
    "GradientTransformationExtraArgs",
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "LookaheadParams",
    "LookaheadState",
    "MonitorState",
    "MultiSteps",
    "MultiStepsState",
    "ShouldSkipUpdateFunction",
    "SnapshotState",
    "WrappedSchedule",
    "WrappedScheduleState",
    "apply_if_finite",
    "flatten",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "injected_hyperparams",
    "lookahead",
    "measure_with_ema",
    "IndividualOutputs",
    "micro_grad",
    "micro_vmap",
    "microbatch",
    "monitor",
    "reshape_batch_axis",
    "skip_large_updates",
    "skip_not_finite",
    "snapshot",
    "with_extra_args_support",
]


# --------------------------------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------------------------------


@pytree_class
class _StaticValue:
    """A hashable Python value held as static structure (an int ``k`` that fixes the state's shapes)."""

    value: Any = static_field()

    def __repr__(self) -> str:
        return format_value(self.value)


def _wider(a: Any, b: Any) -> np.dtype:
    """The dtype both ``a`` and ``b`` compute in: each promoted to float32+, then the wider (no JAX promotion)."""
    ca, cb = tree.compute_dtype(a), tree.compute_dtype(b)
    return np.promote_types(ca, cb)  # NumPy's table on float32/64 and complex64/128 only: strict-mode safe


def _cast(x: jax.Array, dtype: Any) -> jax.Array:
    """``x`` cast to ``dtype``, taking the real part first when casting complex to real."""
    x = jnp.asarray(x)
    dtype = np.dtype(dtype)
    if jnp.iscomplexobj(x) and not jnp.issubdtype(dtype, jnp.complexfloating):
        x = jnp.real(x)
    return x.astype(dtype)


def _select(cond: Any, new: PyTree, old: PyTree) -> PyTree:
    """``where(cond, new, old)`` leaf by leaf, stored in the dtype of ``old``."""
    return jax.tree.map(lambda n, o: jnp.where(cond, n, o).astype(jnp.result_type(o)), new, old)


def _canonical_dtype(dtype: Any) -> Any:
    return None if dtype is None else np.dtype(jax.dtypes.canonicalize_dtype(dtype))


def with_extra_args_support(tx: Any) -> GradientTransformation:
    """``tx`` as a gradtx transformation whose ``update`` accepts (and, if ``tx`` cannot take them, drops)
    extra keyword arguments.

    gradtx transformations already accept ``**extra`` and are returned unchanged. An Optax transformation is
    held as a static ``foreign`` block that passes extra arguments only if its ``update`` takes ``**kwargs``;
    so is a ``GradientTransformation(init, update)`` built from an ``update`` without ``**kwargs``.
    """
    if isinstance(tx, FunctionTransformation) and not accepts_extra_args(tx.update):
        return foreign(tx)  # type: ignore[call-arg]
    return as_transformation(tx, "with_extra_args_support")


def _takes_extra_args(obj: Any) -> bool:
    """Whether ``obj`` is a transformation whose ``update`` takes extra keyword arguments: every gradtx block,
    but not a ``GradientTransformation(init, update)`` built from an ``update`` without ``**kwargs``."""
    if isinstance(obj, FunctionTransformation):
        return accepts_extra_args(obj.update)
    return isinstance(obj, GradientTransformation)


class _ExtraArgsType(type):
    """``isinstance(tx, GradientTransformationExtraArgs)`` asks whether ``tx.update`` takes extra arguments;
    calling the class builds such a transformation from two functions."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return _takes_extra_args(obj)

    def __call__(cls, init: Callable[..., Any], update: Callable[..., Any]) -> Any:  # type: ignore[override]
        return with_extra_args_support(GradientTransformation(init, update))  # type: ignore[call-arg]


class GradientTransformationExtraArgs(metaclass=_ExtraArgsType):
    """Optax's name for a transformation whose ``update`` takes ``**extra_args``.

    Every gradtx block is one; ``GradientTransformationExtraArgs(init, update)`` builds one from two functions
    (extra arguments are dropped if ``update`` takes no ``**kwargs``), and ``isinstance(tx,
    GradientTransformationExtraArgs)`` is false only for a ``GradientTransformation(init, update)`` whose
    ``update`` takes no ``**kwargs`` (until :func:`with_extra_args_support` wraps it), as in Optax.

    Args:
      init: ``init(params) -> state``.
      update: ``update(updates, state, params=None, **extra_args) -> (updates, state)``.

    Returns:
      A :class:`gradtx.base.GradientTransformation`.

    Example:
      >>> import gradtx
      >>> from gradtx import GradientTransformationExtraArgs as GTEA
      >>> tx = GTEA(lambda p: gradtx.EmptyState(), lambda u, s, p=None, **kw: (u, s))
      >>> isinstance(tx, GTEA), isinstance(gradtx.adam(1e-3), GTEA)
      (True, True)
    """


# --------------------------------------------------------------------------------------------------
# MultiSteps: gradient accumulation.
# --------------------------------------------------------------------------------------------------


class ShouldSkipUpdateFunction(Protocol):
    """``fn(updates, gradient_step, params) -> (should_skip: bool scalar array, skip_state: pytree)``."""

    def __call__(self, updates: Updates, gradient_step: Any, params: Params | None) -> tuple[Any, Any]: ...


def skip_not_finite(updates: Updates, gradient_step: Any, params: Params | None) -> tuple[jax.Array, Any]:
    """Skip a mini-step whose updates hold an inf or a NaN (a ``should_skip_update_fn`` for ``MultiSteps``).

    Returns ``(should_skip, {'should_skip': ..., 'num_not_finite': int32 count of non-finite entries})``.
    """
    del gradient_step, params
    counts = [jnp.sum(~jnp.isfinite(x)).astype(jnp.int32) for x in jax.tree.leaves(updates)]
    num_not_finite = jnp.zeros([], jnp.int32)
    for c in counts:
        num_not_finite = num_not_finite + c
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(
    updates: Updates, gradient_step: Any, params: Params | None, max_squared_norm: Any
) -> tuple[jax.Array, Any]:
    """Skip a mini-step whose squared global norm is not below ``max_squared_norm`` (NaN norms are skipped).

    Use as ``functools.partial(skip_large_updates, max_squared_norm=42.0)``. Returns ``(should_skip,
    {'should_skip': ..., 'norm_squared': ...})``; the norm accumulates in float32 or wider.
    """
    del gradient_step, params
    norm_sq = tree.norm(updates, squared=True)
    should_skip = jnp.logical_not(norm_sq < jnp.asarray(max_squared_norm, norm_sq.dtype))
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


class MultiStepsState(NamedTuple):
    """State of ``MultiSteps``.

    ``mini_step``: mini-steps accumulated since the last emitted update (0 .. k-1); ``gradient_step``: updates
    emitted so far; ``inner_opt_state``: the wrapped optimizer's state; ``acc_grads``: the running mean (or
    sum) of the mini-step gradients, in ``accumulator_dtype`` (a 0-d zero per leaf when ``k = 1``);
    ``skip_state``: what ``should_skip_update_fn`` returned last (``()`` without one).
    """

    mini_step: Any
    gradient_step: Any
    inner_opt_state: Any
    acc_grads: Any
    skip_state: Any = ()


@pytree_class
class MultiSteps(GradientTransformation):
    """Gradient accumulation: average (or sum) ``k`` consecutive gradients, then apply ``opt`` to them once.

    With ``k = every_k_schedule`` (an int, or a callable of the number of emitted updates ``gradient_step``),
    mini-step ``j = 0 .. k-1`` of each group updates the running mean ``a_j = a_{j-1} + (g_j - a_{j-1}) /
    (j + 1)`` (Welford's update; ``use_grad_mean=False``: the sum ``a_j = a_{j-1} + g_j``) and returns zeros;
    the last one returns ``opt``'s update of ``a_{k-1}`` (cast to the gradients' dtype), advances ``opt``'s
    state and resets the accumulator. The effective batch is ``k`` mini-batches. ``MultiSteps(opt, 1)``
    equals ``opt`` and keeps no accumulator buffer.

    ``should_skip_update_fn(updates, gradient_step, params) -> (bool scalar, skip_state)`` rejects a mini-step
    as if it never happened (zeros returned, state unchanged except ``skip_state``); see
    :func:`skip_not_finite` and :func:`skip_large_updates`. ``accumulator_dtype`` (default float32; ``None``:
    the parameter's dtype) is the dtype ``acc_grads`` is stored in; sums run in float32 or wider.
    """

    opt: Any
    every_k_schedule: Any
    use_grad_mean: bool = static_field(default=True)
    should_skip_update_fn: Any = static_field(default=None)
    accumulator_dtype: Any = static_field(default=jnp.float32)

    def __post_init__(self) -> None:
        object.__setattr__(self, "opt", with_extra_args_support(self.opt))
        k = self.every_k_schedule
        if isinstance(k, _StaticValue):
            pass
        elif callable(k):
            object.__setattr__(self, "every_k_schedule", as_pytree_callable(k))
        else:
            v = concrete_number(k)
            is_int = isinstance(k, (int, np.integer)) or (
                isinstance(k, (np.ndarray, jax.Array)) and jnp.issubdtype(jnp.result_type(k), jnp.integer)
            )
            if isinstance(k, bool) or v is None or not is_int:
                self._fail("every_k_schedule", k, "must be an int >= 1 or a callable gradient_step -> k")
            elif v < 1:
                self._fail("every_k_schedule", k, "must be >= 1")
            object.__setattr__(self, "every_k_schedule", _StaticValue(int(v)))  # type: ignore[call-arg,arg-type]
        fn = self.should_skip_update_fn
        if fn is not None and not callable(fn):
            self._fail("should_skip_update_fn", fn, "must be None or a callable (updates, gradient_step, params)")
        object.__setattr__(self, "accumulator_dtype", _canonical_dtype(self.accumulator_dtype))

    # Optax's accessors.

    @property
    def inner_opt(self) -> GradientTransformation:
        """The wrapped optimizer."""
        return self.opt

    def gradient_transformation(self) -> GradientTransformation:
        """This object (it is a transformation already; Optax builds a ``GradientTransformation`` here)."""
        return self

    def has_updated(self, state: MultiStepsState) -> jax.Array:
        """Whether the last ``update`` emitted a (non-zero) update of the inner optimizer."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    # The transformation.

    @property
    def _constant_k(self) -> int | None:
        k = self.every_k_schedule
        return k.value if isinstance(k, _StaticValue) else None

    def _acc_dtype(self, leaf: Any) -> np.dtype:
        d = np.dtype(jnp.result_type(leaf))
        if self.accumulator_dtype is None:
            return d
        acc = np.dtype(self.accumulator_dtype)
        if jnp.issubdtype(d, jnp.complexfloating) and not jnp.issubdtype(acc, jnp.complexfloating):
            return np.dtype(np.complex64 if acc.itemsize <= 4 else np.complex128)  # complex leaves stay complex
        return acc

    def _k_steps(self, gradient_step: jax.Array) -> Any:
        k = self._constant_k
        if k is not None:
            return k
        v = jnp.asarray(self.every_k_schedule(gradient_step))
        if jnp.issubdtype(v.dtype, jnp.floating):
            v = jnp.round(v)
        return v.astype(jnp.int32)

    def init(self, params: Params) -> MultiStepsState:
        if self._constant_k == 1:
            acc = jax.tree.map(lambda p: jnp.zeros([], self._acc_dtype(p)), params)
        else:
            acc = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=self._acc_dtype(p)), params)  # keeps p's sharding
        gradient_step = zero_count()
        skip_state: Any = ()
        if self.should_skip_update_fn is not None:
            _, skip_state = self.should_skip_update_fn(tree.zeros_like(params), gradient_step, params)
        return MultiStepsState(
            mini_step=zero_count(),
            gradient_step=gradient_step,
            inner_opt_state=self.opt.init(params),
            acc_grads=acc,
            skip_state=skip_state,
        )

    def _accumulate(self, g: Any, a: Any, n: jax.Array) -> jax.Array:
        dt = _wider(jnp.result_type(g), jnp.result_type(a))
        g, a = _cast(g, dt), _cast(a, dt)
        if self.use_grad_mean:
            return a + (g - a) / (n + 1).astype(dt)
        return g + a

    def update(self, updates: Updates, state: MultiStepsState, params: Params | None = None, **extra: Any):
        check_tree_match("MultiSteps.update", state.acc_grads, updates)
        skip = None
        skip_state = state.skip_state
        if self.should_skip_update_fn is not None:
            skip, skip_state = self.should_skip_update_fn(updates, state.gradient_step, params)
            skip = jnp.asarray(skip)
            if (skip.dtype, skip.shape) != (jnp.bool_, ()):
                raise ValueError(
                    "MultiSteps.update: should_skip_update_fn must return a boolean scalar array first, got "
                    f"dtype {skip.dtype} and shape {skip.shape}"
                )

        if self._constant_k == 1:  # nothing to accumulate: the inner optimizer sees the gradients themselves
            out, inner_state = self.opt.update(updates, state.inner_opt_state, params, **extra)
            new_state = MultiStepsState(
                mini_step=state.mini_step,
                gradient_step=safe_int32_increment(state.gradient_step),
                inner_opt_state=inner_state,
                acc_grads=state.acc_grads,
                skip_state=skip_state,
            )
        else:
            k = self._k_steps(state.gradient_step)
            acc = jax.tree.map(lambda g, a: self._accumulate(g, a, state.mini_step), updates, state.acc_grads)
            inner_in = jax.tree.map(lambda a, g: _cast(a, jnp.result_type(g)), acc, updates)
            out, inner_state = self.opt.update(inner_in, state.inner_opt_state, params, **extra)
            emit = state.mini_step == k - 1
            out = jax.tree.map(lambda u: jnp.where(emit, u, jnp.zeros_like(u)), out)
            new_state = MultiStepsState(
                mini_step=safe_int32_increment(state.mini_step) % k,
                gradient_step=jnp.where(emit, safe_int32_increment(state.gradient_step), state.gradient_step),
                inner_opt_state=_select(emit, inner_state, state.inner_opt_state),
                acc_grads=jax.tree.map(
                    lambda a, old: _cast(jnp.where(emit, jnp.zeros_like(a), a), jnp.result_type(old)),
                    acc,
                    state.acc_grads,
                ),
                skip_state=skip_state,
            )
        if skip is not None:
            out = jax.tree.map(lambda u: jnp.where(skip, jnp.zeros_like(u), u), out)
            kept = _select(skip, state[:4], new_state[:4])
            new_state = MultiStepsState(*kept, skip_state=skip_state)
        return out, new_state


# --------------------------------------------------------------------------------------------------
# apply_if_finite.
# --------------------------------------------------------------------------------------------------


class ApplyIfFiniteState(NamedTuple):
    """State of ``apply_if_finite``.

    ``notfinite_count``: consecutive updates holding an inf or NaN (reset by a finite one); ``last_finite``:
    whether the last update was finite; ``total_notfinite``: non-finite updates since ``init`` (never reset);
    ``inner_state``: the inner transformation's state.
    """

    notfinite_count: Any
    last_finite: Any
    total_notfinite: Any
    inner_state: Any


@pytree_class
class apply_if_finite(GradientTransformation):
    """Skip updates that hold an inf or a NaN, unless ``max_consecutive_errors`` were skipped in a row.

    A non-finite update returns zeros and leaves the inner state unchanged; after more than
    ``max_consecutive_errors`` consecutive non-finite updates the wrapper gives up and applies them (so a
    persistent NaN is not hidden forever). The counts live in :class:`ApplyIfFiniteState`.
    """

    inner: Any
    max_consecutive_errors: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "inner", with_extra_args_support(self.inner))
        self._check_range("max_consecutive_errors", 0)

    def init(self, params: Params) -> ApplyIfFiniteState:
        return ApplyIfFiniteState(
            notfinite_count=zero_count(),
            last_finite=jnp.array(True, jnp.bool_),
            total_notfinite=zero_count(),
            inner_state=self.inner.init(params),
        )

    def update(self, updates: Updates, state: ApplyIfFiniteState, params: Params | None = None, **extra: Any):
        leaves = jax.tree.leaves(updates)
        isfinite = jnp.array(True, jnp.bool_)
        for x in leaves:
            isfinite = jnp.logical_and(isfinite, jnp.all(jnp.isfinite(x)))
        notfinite_count = jnp.where(isfinite, zero_count(), safe_int32_increment(state.notfinite_count))
        limit = jnp.asarray(self.max_consecutive_errors).astype(jnp.int32)
        accept = jnp.logical_or(isfinite, notfinite_count > limit)
        out, inner_state = self.inner.update(updates, state.inner_state, params, **extra)
        out = jax.tree.map(lambda u: jnp.where(accept, u, jnp.zeros_like(u)), out)
        return out, ApplyIfFiniteState(
            notfinite_count=notfinite_count,
            last_finite=isfinite,
            total_notfinite=jnp.where(isfinite, state.total_notfinite, safe_int32_increment(state.total_notfinite)),
            inner_state=_select(accept, inner_state, state.inner_state),
        )


# --------------------------------------------------------------------------------------------------
# flatten.
# --------------------------------------------------------------------------------------------------


def _common_dtype(leaves: Sequence[Any]) -> np.dtype:
    dtypes = [np.dtype(jnp.result_type(x)) for x in leaves]
    if not dtypes:
        return np.dtype(np.float32)
    if all(d == dtypes[0] for d in dtypes):
        return dtypes[0]
    out = dtypes[0]
    for d in dtypes[1:]:
        out = _wider(out, d)
    return out


def _ravel(tree_: Any) -> jax.Array:
    leaves = jax.tree.leaves(tree_)
    dt = _common_dtype(leaves)
    if not leaves:
        return jnp.zeros([0], dt)
    return jnp.concatenate([jnp.reshape(_cast(x, dt), [-1]) for x in leaves])


def _unravel(like: Any, flat: jax.Array) -> Any:
    leaves, treedef = jax.tree.flatten(like)
    out, start = [], 0
    for x in leaves:
        size = int(np.size(x))
        out.append(_cast(jnp.reshape(flat[start : start + size], jnp.shape(x)), jnp.result_type(x)))
        start += size
    return jax.tree.unflatten(treedef, out)


@pytree_class
class flatten(GradientTransformation):
    """Run ``inner`` on one vector: every leaf raveled and concatenated (in tree order), then split back.

    Many small leaves cost one kernel launch each; one long vector costs one. Only for transformations whose
    maths is elementwise or global (per-leaf statistics such as layer norms would see one leaf).
    """

    inner: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "inner", with_extra_args_support(self.inner))

    def init(self, params: Params) -> OptState:
        return self.inner.init(_ravel(params))

    def update(self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any):
        flat_params = None if params is None else _ravel(params)
        flat, state = self.inner.update(_ravel(updates), state, flat_params, **extra)
        return _unravel(updates, flat), state


# --------------------------------------------------------------------------------------------------
# lookahead.
# --------------------------------------------------------------------------------------------------


class LookaheadState(NamedTuple):
    """State of ``lookahead``: the fast optimizer's state and the fast steps since the last synchronisation."""

    fast_state: OptState
    steps_since_sync: jax.Array


class LookaheadParams(NamedTuple):
    """Fast and slow parameters of ``lookahead``: take gradients at ``fast``, evaluate with ``slow``."""

    fast: Params
    slow: Params

    @classmethod
    def init_synced(cls, params: Params) -> LookaheadParams:
        """Fast and slow parameters both equal to ``params``."""
        return cls(fast=params, slow=params)


@pytree_class
class lookahead(GradientTransformation):
    """Lookahead (Zhang, Lucas, Hinton & Ba 2019, "Lookahead Optimizer: k steps forward, 1 step back",
    arXiv 1907.08610, Algorithm 1): ``k = sync_period`` fast steps, then ``slow += alpha (fast - slow)`` and
    ``fast = slow``, with ``alpha = slow_step_size``.

    The two nested loops become one update of ``LookaheadParams``: with ``d = fast + u - slow`` (``u`` the
    fast optimizer's update at ``params.fast``) and ``s = 1`` on every ``k``-th step (else 0)::

        slow_update = s * alpha * d
        fast_update = u - s * (1 - alpha) * d

    so applying both with ``apply_updates`` lands ``fast`` on the new ``slow`` at synchronisation. Updates
    must be applied unchanged. ``reset_state`` re-initialises the fast optimizer's state at every
    synchronisation. ``sync_period >= 1``.
    """

    fast_optimizer: Any
    sync_period: Any
    slow_step_size: Any
    reset_state: bool = static_field(default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fast_optimizer", with_extra_args_support(self.fast_optimizer))
        self._check_range("sync_period", 1)
        v = concrete_number(self.sync_period)
        if v is not None and not float(v).is_integer():
            self._fail("sync_period", self.sync_period, "must be an integer number of steps")
        self._check_finite("slow_step_size")

    def init(self, params: Params) -> LookaheadState:
        fast = params.fast if isinstance(params, LookaheadParams) else params
        return LookaheadState(fast_state=self.fast_optimizer.init(fast), steps_since_sync=zero_count())

    def update(self, updates: Updates, state: LookaheadState, params: Params | None = None, **extra: Any):
        if not isinstance(params, LookaheadParams):
            raise ValueError(
                "lookahead.update: params are required, as LookaheadParams(fast=..., slow=...) "
                f"(gradients are taken at params.fast); got {type(params).__name__}"
            )
        u, fast_state = self.fast_optimizer.update(updates, state.fast_state, params.fast, **extra)
        period = jnp.asarray(self.sync_period).astype(jnp.int32)
        sync = state.steps_since_sync == period - 1

        def one(f: Any, g: Any, s: Any) -> tuple[jax.Array, jax.Array]:
            dt = _wider(jnp.result_type(g), _wider(jnp.result_type(f), jnp.result_type(s)))
            alpha = tree.hyper(self.slow_step_size, dt)
            uu = _cast(g, dt)
            d = _cast(f, dt) + uu - _cast(s, dt)
            zero = jnp.zeros_like(d)
            slow_u = jnp.where(sync, alpha * d, zero)
            fast_u = jnp.where(sync, uu - (1 - alpha) * d, uu)
            out = jnp.result_type(g)
            return _cast(fast_u, out), _cast(slow_u, out)

        pairs = jax.tree.map(one, params.fast, u, params.slow)
        fast_u, slow_u = tree.unzip2(u, pairs)
        if self.reset_state:
            fast_state = _select(sync, self.fast_optimizer.init(params.fast), fast_state)
        steps = safe_int32_increment(state.steps_since_sync) % period
        return LookaheadParams(fast=fast_u, slow=slow_u), LookaheadState(fast_state, steps)


# --------------------------------------------------------------------------------------------------
# inject_hyperparams.
# --------------------------------------------------------------------------------------------------


class InjectHyperparamsState(NamedTuple):
    """Optax's older state of ``inject_hyperparams`` (kept for the name; the wrapper returns
    :class:`InjectStatefulHyperparamsState`)."""

    count: jax.Array
    hyperparams: dict[str, Any]
    inner_state: OptState


class InjectStatefulHyperparamsState(NamedTuple):
    """State of ``inject_hyperparams``: the step count, the hyperparameters used by the last update (or by
    the first, after ``init``), the state of each schedule, and the inner transformation's state."""

    count: jax.Array
    hyperparams: dict[str, Any]
    hyperparams_states: dict[str, Any]
    inner_state: OptState


class WrappedScheduleState(NamedTuple):
    """State of a ``WrappedSchedule``: the 0-based count of evaluations so far."""

    count: Any


@pytree_class
class WrappedSchedule:
    """A stateful schedule made from a plain one ``count -> value``: ``init() -> state``,
    ``update(state, **extra) -> state`` (count + 1), ``__call__(state, **extra) -> schedule_fn(state.count)``.
    """

    schedule_fn: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule_fn", as_pytree_callable(self.schedule_fn))

    def init(self) -> WrappedScheduleState:
        return WrappedScheduleState(count=zero_count())

    def update(self, state: WrappedScheduleState, **extra: Any) -> WrappedScheduleState:
        del extra
        return WrappedScheduleState(count=safe_int32_increment(state.count))

    def __call__(self, state: WrappedScheduleState, **extra: Any) -> Any:
        del extra
        return self.schedule_fn(state.count)

    def __repr__(self) -> str:
        return repr(self.schedule_fn)


@pytree_class
class _StaticStatefulSchedule:
    """A user's stateful schedule that is not a pytree, held as static."""

    schedule: Any = static_field()

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
    trajectory equals the un-injected optimizer's exactly.
    """

    inner_factory: Callable[..., Any] = static_field()
    static_args: str | Iterable[str] = static_field(default=())
    hyperparam_dtype: Any = static_field(default=None)

    def __post_init__(self) -> None:
        if not callable(self.inner_factory):
            self._fail("inner_factory", self.inner_factory, "must be a callable returning a transformation")
        names = (self.static_args,) if isinstance(self.static_args, str) else tuple(self.static_args)
        object.__setattr__(self, "static_args", tuple(sorted(set(names))))
        params = inspect.signature(self.inner_factory).parameters
        unknown = [n for n in self.static_args if n not in params]
        if unknown:
            self._fail("static_args", self.static_args,
                       f"must name parameters of the inner factory ({', '.join(params)}); unknown: {unknown}")
        object.__setattr__(self, "hyperparam_dtype", _canonical_dtype(self.hyperparam_dtype))

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
                schedules[name] = _StaticStatefulSchedule(value) if leaf else value  # type: ignore[call-arg]
            elif callable(value):
                schedules[name] = WrappedSchedule(value)  # type: ignore[call-arg]
            elif _is_numeric(value):
                numeric[name] = value
            else:
                others.append((name, hashable_tree(value)))
        return injected_hyperparams(self, numeric, schedules, tuple(others))  # type: ignore[call-arg]

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
    ``others`` (static) are passed to the factory unchanged.
    """

    factory: inject_hyperparams
    numeric: dict[str, Any]
    schedules: dict[str, Any]
    others: tuple[tuple[str, Any], ...] = static_field()

    def __post_init__(self) -> None:
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
    ):
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


# --------------------------------------------------------------------------------------------------
# Monitoring: snapshot, monitor, measure_with_ema.
# --------------------------------------------------------------------------------------------------


class SnapshotState(NamedTuple):
    """State of ``snapshot``: ``{measure_name: measurement}``."""

    measurement: dict[str, Any]


@pytree_class
class snapshot(GradientTransformation):
    """Store ``measure(updates)`` in the state under ``measure_name``; updates pass unchanged.

    ``init`` stores ``measure(params)``. Read it back with ``gradtx.tree.get(state, measure_name)``.
    """

    measure_name: str = static_field()
    measure: Callable[[Updates], Any] = static_field()

    def __post_init__(self) -> None:
        if not isinstance(self.measure_name, str):
            self._fail("measure_name", self.measure_name, "must be a string")
        if not callable(self.measure):
            self._fail("measure", self.measure, "must be a callable updates -> measurement")

    def init(self, params: Params) -> SnapshotState:
        return SnapshotState({self.measure_name: self.measure(params)})

    def update(self, updates: Updates, state: SnapshotState, params: Params | None = None, **extra: Any):
        del state, params, extra
        return updates, SnapshotState({self.measure_name: self.measure(updates)})


class MonitorState(NamedTuple):
    """State of ``monitor``: the last measurement of each measure, and the measures' own states (in the
    order the measures were given)."""

    measurements: dict[str, Any]
    measure_states: tuple[OptState, ...]


@pytree_class
class _measure(GradientTransformation):
    """A stateless measure: its "update" is ``fn(updates)``."""

    fn: Callable[[Updates], Any] = static_field()

    def init(self, params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update(self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any):
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
    """

    measures: dict[str, Any]
    _names: tuple[str, ...] = static_field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.measures, dict):
            self._fail("measures", self.measures, "must be a dict {name: callable or transformation}")
        converted = {}
        for name, m in self.measures.items():
            if not isinstance(name, str):
                self._fail("measures", self.measures, f"keys must be strings, got {name!r}")
            if isinstance(m, GradientTransformation) or (hasattr(m, "init") and hasattr(m, "update")):
                converted[name] = with_extra_args_support(m)
            elif callable(m):
                converted[name] = _measure(m)  # type: ignore[call-arg]
            else:
                self._fail("measures", self.measures, f"values must be callables or transformations, got {m!r}")
        object.__setattr__(self, "measures", converted)
        object.__setattr__(self, "_names", tuple(converted))

    def init(self, params: Params) -> MonitorState:
        states, measurements = [], {}
        for name in self._names:
            m = self.measures[name]
            s = m.init(params)
            struct = jax.eval_shape(lambda p, s, m=m: m.update(p, s, p)[0], params, s)
            measurements[name] = _zeros_of(struct)
            states.append(s)
        return MonitorState(measurements, tuple(states))

    def update(self, updates: Updates, state: MonitorState, params: Params | None = None, **extra: Any):
        measurements, states = {}, []
        for name, s in zip(self._names, state.measure_states):
            measurements[name], s = self.measures[name].update(updates, s, params, **extra)
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
    The state is ``(EmptyState(), EmaState(count, ema))``, Optax's ``chain(stateless(measure), ema)``.
    """

    measure: Callable[[Updates], Any] = static_field()
    decay: Any
    debias: bool = static_field(default=True)
    accumulator_dtype: Any = static_field(default=None)

    def __post_init__(self) -> None:
        if not callable(self.measure):
            self._fail("measure", self.measure, "must be a callable updates -> measurement")
        self._check_range("decay", 0.0, 1.0)
        object.__setattr__(self, "accumulator_dtype", _canonical_dtype(self.accumulator_dtype))

    def _ema(self) -> GradientTransformation:
        return ema(self.decay, self.debias, self.accumulator_dtype)  # type: ignore[call-arg]

    def _measured(self, updates: Updates) -> Any:
        return jax.tree.map(lambda x: _floating(x, self.accumulator_dtype), self.measure(updates))

    def init(self, params: Params) -> tuple[EmptyState, Any]:
        struct = jax.eval_shape(self._measured, params)
        return EmptyState(), self._ema().init(_zeros_of(struct))

    def update(self, updates: Updates, state: tuple[EmptyState, Any], params: Params | None = None, **extra: Any):
        out, ema_state = self._ema().update(self._measured(updates), state[1], params, **extra)
        return out, (state[0], ema_state)


# --------------------------------------------------------------------------------------------------
# microbatch: evaluate a function on a batch in sequential micro-batches.
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Accumulator:
    """How the outputs of the micro-batches combine into one result (``optax.microbatching.Accumulator``).

    For the outputs ``x_0, ..., x_{n-1}`` of ``n`` micro-batches, :func:`microbatch` computes::

        carry = init(shape_dtype_struct_of_x_0)
        for i in range(n):                  # a lax.fori_loop
            carry = update(carry, x_i, i)
        result = finalize(carry)

    and :func:`micro_vmap` first calls ``aggregate`` on the per-example outputs of one micro-batch (stacked along
    axis 0) to get that micro-batch's ``x_i``. An ``Accumulator`` placed at a node of an ``accumulator`` tree
    receives the whole output subtree at that node (the built-in :class:`AccumulationType` ones work leaf by
    leaf).

    Args:
        init: ``init(struct) -> carry``: the initial carry, from the shapes and dtypes (``jax.ShapeDtypeStruct``
            leaves) of one micro-batch's output.
        update: ``update(carry, value, index) -> carry``: folds in the output ``value`` of micro-batch ``index``
            (a traced integer inside the loop).
        finalize: ``finalize(carry) -> result``: the result returned to the caller.
        aggregate: ``aggregate(values) -> value``: reduces per-example outputs stacked along axis 0 to one
            micro-batch's contribution (used by :func:`micro_vmap` and :func:`micro_grad`).

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.microbatching import Accumulator, microbatch
        >>> maximum = Accumulator(
        ...     init=lambda s: jnp.full(s.shape, -jnp.inf, s.dtype),
        ...     update=lambda carry, value, index: jnp.maximum(carry, value),
        ...     finalize=lambda carry: carry,
        ...     aggregate=lambda values: jnp.max(values, axis=0))
        >>> print(microbatch(jnp.max, argnums=0, microbatch_size=2, accumulator=maximum)(jnp.array([3., 1., 4., 1.])))
        4.0
    """

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], Any]
    finalize: Callable[[Any], Any]
    aggregate: Callable[[Any], Any]


class AccumulationType(enum.Enum):
    """The built-in ways to combine micro-batch outputs (``optax.microbatching.AccumulationType``).

    A member stands at a node of the ``accumulator`` tree of :func:`microbatch`, :func:`micro_vmap` or
    :func:`micro_grad` and applies to every leaf below it. With ``n`` micro-batches of outputs ``x_i``:

    - ``MEAN``: ``(1/n) sum_i x_i`` over all ``n`` micro-batches (floating outputs only);
    - ``SUM``: ``sum_i x_i``;
    - ``RUNNING_MEAN``: the mean over the micro-batches actually run (``num_real_microbatches`` of them;
      floating outputs only);
    - ``CONCAT``: the outputs concatenated along axis 0, rows back in the order of the full batch.

    Floating sums and means are accumulated in float32 or wider and returned in the output's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.microbatching import AccumulationType, microbatch
        >>> x = jnp.arange(8.0)
        >>> print(microbatch(jnp.mean, 0, 2, AccumulationType.MEAN)(x), jnp.mean(x))
        3.5 3.5
    """

    MEAN = enum.auto()
    """The mean over all micro-batches (floating outputs only)."""
    SUM = enum.auto()
    """The sum over the micro-batches."""
    RUNNING_MEAN = enum.auto()
    """The mean over the micro-batches actually run (``num_real_microbatches``; floating outputs only)."""
    CONCAT = enum.auto()
    """The outputs concatenated along axis 0, in the order of the full batch."""


def _acc_dtype(dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    return tree.compute_dtype(dtype) if jnp.issubdtype(dtype, jnp.inexact) else dtype


def _reduce(fn: Callable[..., Any], values: Any) -> jax.Array:
    """``fn(values, axis=0)`` in float32 or wider for floating values, returned in their dtype."""
    values = jnp.asarray(values)
    if not jnp.issubdtype(values.dtype, jnp.inexact):
        return fn(values, axis=0)
    return _cast(fn(_cast(values, _acc_dtype(values.dtype)), axis=0), values.dtype)


def _leaf_accumulator(kind: AccumulationType, num_microbatches: int) -> Accumulator:
    """A built-in accumulator for one output leaf: floating sums and means run in float32 or wider and are
    returned in the leaf's dtype. ``MEAN`` and ``RUNNING_MEAN`` reject non-floating outputs in ``init``."""

    def zeros(s: Any) -> jax.Array:
        dtype = np.dtype(s.dtype)
        if kind in (AccumulationType.MEAN, AccumulationType.RUNNING_MEAN) and not jnp.issubdtype(dtype, jnp.inexact):
            raise ValueError(f"microbatch: the {kind.name} accumulator needs floating-point outputs, got {dtype}")
        return jnp.zeros(s.shape, _acc_dtype(dtype))

    def add(c: Any, v: Any, i: Any) -> jax.Array:
        return c + _cast(v, c.dtype)

    if kind is AccumulationType.SUM:
        return Accumulator(zeros, add, lambda c: c, lambda vs: _reduce(jnp.sum, vs))
    if kind is AccumulationType.MEAN:
        n = num_microbatches
        return Accumulator(zeros, add, lambda c: c / n, lambda vs: _reduce(jnp.mean, vs))
    if kind is AccumulationType.RUNNING_MEAN:

        def running(c: Any, v: Any, i: Any) -> jax.Array:
            k = jnp.asarray(i).astype(c.dtype) + 1  # Welford: the mean of the first k outputs
            return c + (_cast(v, c.dtype) - c) / k

        return Accumulator(zeros, running, lambda c: c, lambda vs: _reduce(jnp.mean, vs))
    if kind is AccumulationType.CONCAT:

        def finalize(c: Any) -> jax.Array:
            # c[r, j] is row r + n * j of the full batch (see reshape_batch_axis): undo that split.
            return jnp.reshape(jnp.swapaxes(c, 0, 1), (-1, *c.shape[2:]))

        return Accumulator(
            lambda s: jnp.zeros((num_microbatches, *s.shape), s.dtype),
            lambda c, v, i: c.at[i].set(v),
            finalize,
            lambda vs: vs,
        )
    raise ValueError(f"microbatch: unknown accumulator {kind!r}; use an AccumulationType or an Accumulator")


def _position_accumulator(kind: Any, num_microbatches: int, struct: Any = None) -> Accumulator:
    """The accumulator for one node of the ``accumulator`` tree (``struct``: the output subtree there, when known).

    A user's :class:`Accumulator` sees the whole output subtree at its node; an :class:`AccumulationType`
    applies leaf by leaf, and its finalize casts the float32 carry of a floating leaf back to the dtype in
    ``struct``.
    """
    if isinstance(kind, Accumulator):
        return kind
    if not isinstance(kind, AccumulationType):
        raise ValueError(f"microbatch: unknown accumulator {kind!r}; use an AccumulationType or an Accumulator")
    leaf = _leaf_accumulator(kind, num_microbatches)

    def finalize(carry: Any) -> Any:
        out = jax.tree.map(leaf.finalize, carry)
        if struct is None:
            return out
        return jax.tree.map(lambda o, s: _cast(o, s.dtype) if jnp.issubdtype(s.dtype, jnp.inexact) else o, out, struct)

    return Accumulator(
        init=lambda s: jax.tree.map(leaf.init, s),
        update=lambda c, v, i: jax.tree.map(lambda a, b: leaf.update(a, b, i), c, v),
        finalize=finalize,
        aggregate=lambda vs: jax.tree.map(leaf.aggregate, vs),
    )


def _is_acc_leaf(x: Any) -> bool:
    return isinstance(x, (AccumulationType, Accumulator))


def _accumulators(accumulator: Any, num_microbatches: int, struct: Any = None) -> Any:
    """The ``accumulator`` tree with every node made an :class:`Accumulator` (``struct``: the output tree)."""
    if struct is None:
        return jax.tree.map(lambda k: _position_accumulator(k, num_microbatches), accumulator, is_leaf=_is_acc_leaf)
    return jax.tree.map(
        lambda k, s: _position_accumulator(k, num_microbatches, s), accumulator, struct, is_leaf=_is_acc_leaf
    )


def _over(accs: Any, fn: Callable[..., Any], *trees: Any) -> Any:
    """``fn(accumulator, subtree, ...)`` at every node of the accumulator tree (a prefix of the output trees)."""
    return jax.tree.map(fn, accs, *trees, is_leaf=lambda x: isinstance(x, Accumulator))


def _check_size(call: str, microbatch_size: Any) -> int:
    if isinstance(microbatch_size, bool) or not isinstance(microbatch_size, (int, np.integer)) or microbatch_size < 1:
        raise ValueError(f"{call}(microbatch_size={microbatch_size!r}): microbatch_size must be an int >= 1")
    return int(microbatch_size)


def reshape_batch_axis(tree: Any, microbatch_size: int, axis: int = 0) -> Any:
    """Split the batch axis of every leaf into ``(num_microbatches, microbatch_size)`` at the same position.

    With ``B`` the batch size and ``n = B // microbatch_size``, row ``b = r + n * j`` of the batch lands at
    index ``[r, j]``: micro-batch ``r`` takes every ``n``-th row from ``r`` on. This is a column-major (Fortran
    order) reshape, as in Optax: a batch sharded along its axis stays sharded along the new ``microbatch_size``
    axis, and the new ``num_microbatches`` axis is the one a sequential loop indexes.

    Args:
        tree: a pytree of arrays, each with a batch axis of the same size ``B``.
        microbatch_size: the rows per micro-batch, an int >= 1 dividing ``B``.
        axis: the batch axis of every leaf (default 0; negative values count from the end).

    Returns:
        ``tree`` with each leaf of shape ``(..., B, ...)`` reshaped to ``(..., n, microbatch_size, ...)``.

    Raises:
        ValueError: if ``microbatch_size`` is not an int >= 1 or does not divide a leaf's batch axis.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.microbatching import reshape_batch_axis
        >>> print(reshape_batch_axis(jnp.arange(6), 3))
        [[0 2 4]
         [1 3 5]]
    """
    size = _check_size("reshape_batch_axis", microbatch_size)

    def one(x: Any) -> Any:
        x = jnp.asarray(x)
        ax = axis % x.ndim if x.ndim else axis
        b = x.shape[ax]
        if b % size:
            raise ValueError(
                f"reshape_batch_axis(microbatch_size={size}): the batch axis {axis} has size {b}, which "
                f"microbatch_size must divide"
            )
        split = jnp.reshape(x, (*x.shape[:ax], size, b // size, *x.shape[ax + 1 :]))
        return jnp.swapaxes(split, ax, ax + 1)

    return jax.tree.map(one, tree)


def microbatch(
    fun: Callable[..., Any],
    argnums: int | Sequence[int],
    microbatch_size: int | None,
    accumulator: Any = AccumulationType.SUM,
    *,
    argnames: str | Sequence[str] = (),
    in_axes: int | Sequence[int] = 0,
    num_real_microbatches: Any = None,
) -> Callable[..., Any]:
    """``fun`` evaluated on a batch in sequential micro-batches, the results combined (``optax.microbatch``).

    The batched arguments are split into ``n = B / microbatch_size`` micro-batches (see
    :func:`reshape_batch_axis`: micro-batch ``r`` takes rows ``r, r + n, r + 2n, ...``); ``fun`` runs on one
    micro-batch at a time inside a ``lax.fori_loop``, so peak memory is that of one micro-batch, and the outputs
    are combined by ``accumulator``. For example with ``SUM``, ``microbatch(f, ...)(x) = sum_r f(x_r)``, which
    equals ``f(x)`` when ``f`` is a sum over rows; with ``MEAN`` it is ``(1/n) sum_r f(x_r)``, equal to ``f(x)``
    for a mean over rows; ``CONCAT`` reassembles per-row outputs in the order of the full batch.

    Args:
        fun: any function; the batched arguments are replaced by micro-batches of them.
        argnums: the positions of the positional arguments with a batch axis (an int or a sequence of ints).
        microbatch_size: the rows per micro-batch, an int >= 1 that divides the batch size ``B``; smaller
            values use less memory and run more sequential steps. ``None`` returns ``fun`` itself.
        accumulator: how outputs combine: an :class:`AccumulationType` (default ``SUM``), an
            :class:`Accumulator`, or a pytree of them matching a prefix of ``fun``'s output tree.
        argnames: the names of keyword arguments with a batch axis (a string or a sequence of strings).
        in_axes: the batch axis of each batched argument: one int for all, or one int per entry of
            ``argnums + argnames`` (in that order). Default 0.
        num_real_microbatches: optional number of micro-batches actually run (an int in ``[0, n]`` or a traced
            integer): the loop stops after that many, e.g. to handle a padded batch without recompiling.

    Returns:
        A function with ``fun``'s arguments that returns the combined outputs. Calling it raises
        ``ValueError`` if the batched arguments have different batch sizes, if ``microbatch_size`` does not
        divide the batch size, if a ``MEAN``/``RUNNING_MEAN`` output is not floating, or if
        ``num_real_microbatches`` is a concrete value outside ``[0, n]``.

    Raises:
        ValueError: if ``microbatch_size`` is not ``None`` or an int >= 1, or ``in_axes`` has the wrong length.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> from gradtx.microbatching import AccumulationType
        >>> fun = lambda x: (x + 1, jnp.sum(3 * x))
        >>> per_row, total = gradtx.microbatch(
        ...     fun, argnums=0, microbatch_size=2,
        ...     accumulator=(AccumulationType.CONCAT, AccumulationType.SUM))(jnp.array([1, 2, 3, 4]))
        >>> print(per_row, total)
        [2 3 4 5] 30
    """
    if microbatch_size is None:
        return fun
    size = _check_size("microbatch", microbatch_size)
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    names = (argnames,) if isinstance(argnames, str) else tuple(argnames)
    axes = (in_axes,) * (len(nums) + len(names)) if isinstance(in_axes, int) else tuple(in_axes)
    if len(axes) != len(nums) + len(names):
        raise ValueError(
            f"microbatch(in_axes={in_axes!r}): in_axes must have one axis per argnums + argnames "
            f"({len(nums) + len(names)}), got {len(axes)}"
        )

    def microbatched(*args: Any, **kwargs: Any) -> Any:
        batched = [(args[i], ax) for i, ax in zip(nums, axes)] + [
            (kwargs[n], ax) for n, ax in zip(names, axes[len(nums) :])
        ]
        sizes = sorted({int(jnp.shape(x)[ax]) for sub, ax in batched for x in jax.tree.leaves(sub)})
        if len(sizes) > 1:
            raise ValueError(f"microbatch: the batched arguments must have equal batch sizes, got {sizes}")
        if not sizes:
            raise ValueError("microbatch: no batched argument (argnums/argnames name none with array leaves)")
        batch = sizes[0]
        if batch % size:
            raise ValueError(f"microbatch: batch_size={batch} must be divisible by microbatch_size={size}")
        n = batch // size
        stop = n if num_real_microbatches is None else num_real_microbatches
        real = concrete_number(stop)
        if real is not None and not (0 <= real <= n and float(real).is_integer()):
            raise ValueError(
                f"microbatch(num_real_microbatches={num_real_microbatches!r}): num_real_microbatches must be an "
                f"integer in [0, {n}] (the number of micro-batches)"
            )
        new_args, new_kwargs = list(args), dict(kwargs)
        for i, ax in zip(nums, axes):
            new_args[i] = reshape_batch_axis(args[i], size, ax)
        for name, ax in zip(names, axes[len(nums) :]):
            new_kwargs[name] = reshape_batch_axis(kwargs[name], size, ax)

        def call(index: Any) -> Any:
            a, k = list(new_args), dict(new_kwargs)
            for i, ax in zip(nums, axes):
                a[i] = jax.tree.map(lambda x, ax=ax: jnp.take(x, index, axis=ax), new_args[i])
            for name, ax in zip(names, axes[len(nums) :]):
                k[name] = jax.tree.map(lambda x, ax=ax: jnp.take(x, index, axis=ax), new_kwargs[name])
            return fun(*a, **k)

        out_struct = jax.eval_shape(call, 0)
        accs = _accumulators(accumulator, n, out_struct)

        def body(i: Any, carry: Any) -> Any:
            return _over(accs, lambda a, c, v: a.update(c, v, i), carry, call(i))

        init = _over(accs, lambda a, s: a.init(s), out_struct)
        final = jax.lax.fori_loop(0, stop, body, init)
        return _over(accs, lambda a, c: a.finalize(c), final)

    return microbatched


def micro_vmap(
    fun: Callable[..., Any],
    in_axes: int | Sequence[int | None] = 0,
    out_axes: Any = 0,
    *,
    microbatch_size: int | None = None,
    vmap_fn: Callable[..., Any] = jax.vmap,
    accumulator: Any = AccumulationType.CONCAT,
    num_real_microbatches: Any = None,
) -> Callable[..., Any]:
    """``jax.vmap`` that runs over the batch in sequential micro-batches (``optax.microbatching.micro_vmap``).

    Each micro-batch of ``microbatch_size`` examples is vectorised with ``vmap_fn`` and reduced with the
    accumulator's ``aggregate``; the micro-batch results are combined with :func:`microbatch`. With the default
    ``CONCAT`` the result equals ``jax.vmap(fun, in_axes)(...)``; ``SUM`` gives ``sum_b fun(x_b)`` and ``MEAN``
    ``(1/B) sum_b fun(x_b)`` without ever holding all ``B`` per-example outputs in memory.

    Args:
        fun: the function to map over the batch.
        in_axes: the batch axis of each positional argument: an int for all of them (default 0), or a sequence
            with one int or ``None`` (not mapped) per positional argument. Keyword arguments are mapped along
            axis 0, as with ``jax.vmap``.
        out_axes: must be 0 (the only value supported, as in Optax).
        microbatch_size: the examples per micro-batch, an int >= 1 dividing the batch size; ``None`` (default)
            vectorises the whole batch at once.
        vmap_fn: called as ``vmap_fn(fun, in_axes, out_axes)``, with ``jax.vmap``'s signature (default
            ``jax.vmap``); use it to pass options to the vectorisation.
        accumulator: what to do with the per-example outputs: ``CONCAT`` (default: keep them, stacked along
            axis 0), ``SUM``, ``MEAN``, ``RUNNING_MEAN``, an :class:`Accumulator`, or a pytree of them matching a
            prefix of ``fun``'s output.
        num_real_microbatches: optional number of micro-batches actually run (see :func:`microbatch`).

    Returns:
        A function with ``fun``'s arguments, each mapped argument carrying an extra batch axis.

    Raises:
        NotImplementedError: if ``out_axes`` is not 0.
        ValueError: if ``microbatch_size`` is not ``None`` or an int >= 1, or an entry of ``in_axes`` is not an
            int or ``None``; when called, if ``in_axes`` does not have one entry per positional argument.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.microbatching import AccumulationType, micro_vmap
        >>> print(micro_vmap(lambda x: x**2, microbatch_size=2)(jnp.arange(8)))
        [ 0  1  4  9 16 25 36 49]
        >>> print(micro_vmap(jnp.sum, microbatch_size=2, accumulator=AccumulationType.SUM)(jnp.ones((4, 3))))
        12.0
    """
    if not (isinstance(out_axes, int) and not isinstance(out_axes, bool) and out_axes == 0):
        raise NotImplementedError(f"micro_vmap(out_axes={out_axes!r}): only out_axes=0 is supported")
    if microbatch_size is not None:
        _check_size("micro_vmap", microbatch_size)
    given = (in_axes,) if isinstance(in_axes, int) else tuple(in_axes)
    for ax in given:
        if ax is not None and (isinstance(ax, bool) or not isinstance(ax, (int, np.integer))):
            raise ValueError(f"micro_vmap(in_axes={in_axes!r}): in_axes entries must be ints or None, got {ax!r}")

    def mapped(*args: Any, **kwargs: Any) -> Any:
        axes = (in_axes,) * len(args) if isinstance(in_axes, int) else given
        if len(axes) != len(args):
            raise ValueError(
                f"micro_vmap(in_axes={in_axes!r}): in_axes must have one entry per positional argument "
                f"({len(args)} given)"
            )

        def one_microbatch(*a: Any, kwargs: Any) -> Any:
            out = vmap_fn(fun, axes, 0)(*a, **kwargs)
            # Only ``aggregate`` is used here, which does not depend on the number of micro-batches.
            return _over(_accumulators(accumulator, 1), lambda acc, o: acc.aggregate(o), out)

        batched = tuple(i for i, ax in enumerate(axes) if ax is not None)
        run = microbatch(
            one_microbatch,
            argnums=batched,
            microbatch_size=microbatch_size,
            accumulator=accumulator,
            argnames="kwargs",
            in_axes=(*(ax for ax in axes if ax is not None), 0),
            num_real_microbatches=num_real_microbatches,
        )
        return run(*args, kwargs=kwargs)

    return mapped


class IndividualOutputs(NamedTuple):
    """The per-example outputs :func:`micro_grad` returns beside the gradient (Optax's ``Aux`` namedtuple).

    Every field has a leading batch axis (one row per example, in batch order).
    """

    values: Any
    """``fun``'s value for each example."""
    metrics: Any
    """``metrics_fn`` of each example's gradient."""
    aux: Any
    """``fun``'s auxiliary output for each example (``None`` without ``has_aux``)."""


def micro_grad(
    fun: Callable[..., Any],
    has_aux: bool = False,
    argnums: int | Sequence[int] = 0,
    *,
    batch_argnums: int | Sequence[int] = 1,
    keep_batch_dim: bool = True,
    microbatch_size: int | None = None,
    accumulator: Any = AccumulationType.SUM,
    transform_fn: Callable[[Any], Any] = lambda x: x,
    metrics_fn: Callable[[Any], Any] = lambda x: None,
    num_real_microbatches: Any = None,
) -> Callable[..., tuple[Any, IndividualOutputs]]:
    """Per-example gradients, transformed and combined over the batch (``optax.microbatching.micro_grad``).

    For examples ``x_1..x_B`` of the batched arguments, with ``g_b = grad fun(params, x_b)``, the returned function
    computes ``accumulate_b transform_fn(g_b)`` (``SUM`` by default: ``sum_b transform_fn(g_b)``, which with the
    identity ``transform_fn`` equals ``B * jax.grad`` of the batch-mean loss) and the per-example
    :class:`IndividualOutputs` ``(values=fun(x_b), metrics=metrics_fn(g_b), aux)``. Per-example gradients allow
    e.g. clipping each example's gradient (DP-SGD, Abadi et al. 2016, arXiv 1607.00133) or gradient-noise
    statistics (arXiv 2510.00236); the batch is processed in micro-batches of ``microbatch_size`` examples
    (see :func:`micro_vmap`), so peak memory stays that of one micro-batch.

    Args:
        fun: the loss, ``fun(params, batch, ...) -> value`` (or ``(value, aux)`` with ``has_aux``).
        has_aux: whether ``fun`` returns ``(value, aux)`` (default ``False``).
        argnums: the argument(s) to differentiate with respect to (default 0), as in ``jax.grad``.
        batch_argnums: the positional argument(s) with a batch axis 0 (default 1: ``fun(params, batch)``);
            negative values count from the end of the arguments.
        keep_batch_dim: if ``True`` (default) ``fun`` sees each example with a batch axis of size 1; if
            ``False``, without the batch axis.
        microbatch_size: the examples per micro-batch (an int >= 1 dividing the batch size), or ``None``
            (default) for the whole batch at once.
        accumulator: how the transformed per-example gradients combine over the batch: an
            :class:`AccumulationType` (default ``SUM``), an :class:`Accumulator`, or a pytree of them matching a
            prefix of ``transform_fn``'s output.
        transform_fn: applied to each example's gradient before combining (default the identity).
        metrics_fn: applied to each example's gradient; returned per example in ``aux.metrics`` (default
            ``None``), so it should be small (a norm).
        num_real_microbatches: optional number of micro-batches actually run (see :func:`microbatch`).

    Returns:
        A function with ``fun``'s arguments returning ``(combined, IndividualOutputs(values, metrics, aux))``.

    Raises:
        ValueError: if ``transform_fn`` or ``metrics_fn`` is not callable, ``batch_argnums`` is empty or holds a
            non-int, or ``microbatch_size`` is not ``None`` or an int >= 1.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.microbatching import AccumulationType, micro_grad
        >>> def loss(params, features, targets):
        ...     return 0.5 * jnp.mean((features @ params - targets) ** 2)
        >>> (grads, squares), aux = micro_grad(
        ...     loss, batch_argnums=(1, 2), accumulator=AccumulationType.MEAN,
        ...     transform_fn=lambda g: (g, g**2), metrics_fn=jnp.linalg.norm,
        ... )(jnp.zeros(1), jnp.ones((4, 1)), jnp.array([0., 2., 4., 6.]))
        >>> print(grads, squares)  # the per-example gradients are -0, -2, -4, -6
        [-3.] [14.]
        >>> print(aux.values, aux.metrics)
        [ 0.  2.  8. 18.] [0. 2. 4. 6.]
    """
    batch = (batch_argnums,) if isinstance(batch_argnums, int) else tuple(batch_argnums)
    if not batch or any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in batch):
        raise ValueError(f"micro_grad(batch_argnums={batch_argnums!r}): batch_argnums must be an int or ints")
    for name, fn in (("transform_fn", transform_fn), ("metrics_fn", metrics_fn)):
        if not callable(fn):
            raise ValueError(f"micro_grad({name}={fn!r}): {name} must be callable")
    if microbatch_size is not None:
        _check_size("micro_grad", microbatch_size)
    with_aux = fun if has_aux else (lambda *a, **k: (fun(*a, **k), None))
    value_and_grad = jax.value_and_grad(with_aux, argnums, has_aux=True)

    def per_example(*args: Any, **kwargs: Any) -> tuple[Any, IndividualOutputs]:
        (value, aux), grads = value_and_grad(*args, **kwargs)
        return transform_fn(grads), IndividualOutputs(values=value, metrics=metrics_fn(grads), aux=aux)

    def grad_fn(*args: Any, **kwargs: Any) -> tuple[Any, IndividualOutputs]:
        idx = {i % len(args) if -len(args) <= i < len(args) else i for i in batch}
        if any(not 0 <= i < len(args) for i in idx):
            raise ValueError(f"micro_grad(batch_argnums={batch_argnums!r}): only {len(args)} positional arguments")
        args = tuple(
            jax.tree.map(lambda x: jnp.expand_dims(x, 1), a) if keep_batch_dim and i in idx else a
            for i, a in enumerate(args)
        )
        axes = [0 if i in idx else None for i in range(len(args))]
        run = micro_vmap(
            per_example,
            in_axes=axes,
            accumulator=(accumulator, AccumulationType.CONCAT),
            microbatch_size=microbatch_size,
            num_real_microbatches=num_real_microbatches,
        )
        return run(*args, **kwargs)

    return grad_fn
