"""Gradient accumulation: ``MultiSteps(opt, k)`` averages (or sums) ``k`` mini-batch gradients, then applies
``opt`` to them once (Optax 0.2.8's ``optax.MultiSteps``, also ``optax.transforms.MultiSteps``).

A mini-step can be rejected with ``should_skip_update_fn`` (see :mod:`gradtx.wrappers.finiteness` for
``skip_not_finite`` and ``skip_large_updates``).

Differences from Optax (deliberate, tested in tests/test_wrappers.py): ``every_k_schedule`` must be an int >= 1
or a callable (``ValueError`` otherwise; Optax accepts 0 and divides by zero). With a constant ``k = 1`` nothing
is accumulated, and ``acc_grads`` holds a 0-d zero per leaf instead of a full-size buffer (Optax issue #472);
Optax's buffer is all zeros after every step at ``k = 1`` too, so the values agree by broadcasting and the state
paths are the same. Accumulation runs in float32 or wider whatever ``accumulator_dtype`` stores (Optax issue
#1038: bfloat16 params work). A rejected or non-emitting step returns zeros selected with ``where`` (Optax
multiplies by 0, which propagates NaN); a schedule's ``k`` is rounded to an integer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    OptState,
    Params,
    PyTree,
    TransformationLike,
    Updates,
    check_tree_match,
    safe_int32_increment,
    zero_count,
)
from gradtx.fields import (
    InvalidType,
    as_pytree_callable,
    concrete_number,
    dtype_option,
    flag,
    format_value,
    function,
    option,
    pytree_class,
)
from gradtx.wrappers._common import canonical_dtype, cast_leaf, select_tree, wider_dtype
from gradtx.wrappers.extra_args import with_extra_args_support
from gradtx.wrappers.finiteness import ShouldSkipUpdateFunction

__all__ = ["MultiSteps", "MultiStepsState"]

_K = "an int >= 1 or a callable gradient_step -> k"


@pytree_class
class _StaticValue:
    """A hashable Python value held as static structure (an int ``k`` that fixes the state's shapes)."""

    value: Any = option(accepts="a hashable Python value", static=True)

    def __repr__(self) -> str:
        return format_value(self.value)


class MultiStepsState(NamedTuple):
    """State of :class:`MultiSteps` (Optax's ``MultiStepsState``, the same fields).

    Attributes:
      mini_step: the mini-steps accumulated since the last emitted update (0 .. k-1), an int32 scalar.
      gradient_step: the updates emitted so far, an int32 scalar (the count a schedule ``k`` is evaluated at).
      inner_opt_state: the wrapped optimizer's state.
      acc_grads: the running mean (or sum) of the mini-step gradients, in ``accumulator_dtype`` (a 0-d zero
        per leaf when ``k = 1``).
      skip_state: what ``should_skip_update_fn`` returned last (``()`` without one). Default ``()``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.MultiSteps(gradtx.sgd(learning_rate=1.0), every_k_schedule=2)
      >>> state = opt.init(jnp.zeros(2))
      >>> _, state = opt.update(jnp.array([1.0, 2.0]), state)
      >>> print(int(state.mini_step), int(state.gradient_step), state.acc_grads)
      1 0 [1. 2.]
    """

    mini_step: jax.Array
    gradient_step: jax.Array
    inner_opt_state: OptState
    acc_grads: Updates
    skip_state: PyTree = ()


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
    :func:`gradtx.wrappers.skip_not_finite` and :func:`gradtx.wrappers.skip_large_updates`.
    ``accumulator_dtype`` (default float32; ``None``: the parameter's dtype) is the dtype ``acc_grads`` is
    stored in; sums run in float32 or wider. Extra keyword arguments of ``update`` reach ``opt`` at every
    mini-step. Optax's ``optax.MultiSteps`` (see the module docstring for the differences);
    ``has_updated(state)`` tells whether the last ``update`` emitted ``opt``'s update.

    Args:
      opt: the optimizer to apply every ``k`` mini-steps (anything with ``init`` and ``update``, Optax's
        transformations included). Required.
      every_k_schedule: ``k``, an int >= 1, or a callable ``gradient_step -> k`` (rounded to an integer).
        Required.
      use_grad_mean: average the ``k`` gradients (True) or sum them (False). Default True.
      should_skip_update_fn: a function ``(updates, gradient_step, params) -> (bool scalar, skip_state)``
        rejecting a mini-step (e.g. :func:`gradtx.wrappers.skip_not_finite`), or None. Default None.
      accumulator_dtype: the dtype ``acc_grads`` is stored in, a floating dtype, or None for each
        parameter's dtype. Default ``jnp.float32``.

    Raises:
      ValueError: at construction, for ``k < 1`` (``MultiSteps(every_k_schedule=0): every_k_schedule must be
        >= 1``) or a non-floating ``accumulator_dtype``; in ``update``, when ``should_skip_update_fn`` does not
        return a boolean scalar first, or the updates do not match the state's tree.
      TypeError: for an ``opt`` without ``init`` and ``update``, a ``k`` that is neither an int nor a callable
        (``MultiSteps(every_k_schedule=1.5): every_k_schedule must be an int >= 1 or a callable
        gradient_step -> k``), or a flag that is not a bool.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.MultiSteps(gradtx.sgd(learning_rate=1.0), every_k_schedule=2)
      >>> params = jnp.zeros(2)
      >>> state = opt.init(params)
      >>> u1, state = opt.update(jnp.array([1.0, 2.0]), state, params)
      >>> u2, state = opt.update(jnp.array([3.0, 4.0]), state, params)
      >>> print(u1, u2)  # nothing, then sgd's step on the mean gradient [2, 3]
      [0. 0.] [-2. -3.]
    """

    opt: TransformationLike = option(accepts="a transformation")
    every_k_schedule: int | Callable[[jax.Array], ArrayLike] = option(accepts=_K)
    use_grad_mean: bool = flag(default=True)
    should_skip_update_fn: ShouldSkipUpdateFunction | None = function(default=None, optional=True)
    accumulator_dtype: DTypeLike | None = dtype_option(default=jnp.float32)

    def __check_init__(self) -> None:
        object.__setattr__(self, "opt", with_extra_args_support(self.opt))
        k = self.every_k_schedule
        if isinstance(k, _StaticValue):  # rebuilt from an existing MultiSteps (dataclasses.replace)
            pass
        elif callable(k):
            object.__setattr__(self, "every_k_schedule", as_pytree_callable(k))
        else:
            # A constant k fixes the state's shapes (no buffer for k = 1): a concrete int, held static.
            v = concrete_number(k)
            is_int = isinstance(k, (int, np.integer)) or (
                isinstance(k, (np.ndarray, jax.Array)) and jnp.issubdtype(jnp.result_type(k), jnp.integer)
            )
            if isinstance(k, bool) or v is None or not is_int:
                self._fail("every_k_schedule", k, f"must be {_K}", InvalidType)
            elif v < 1:
                self._fail("every_k_schedule", k, "must be >= 1")
            assert v is not None  # _fail raised for None
            object.__setattr__(self, "every_k_schedule", _StaticValue(int(v)))
        object.__setattr__(self, "accumulator_dtype", canonical_dtype(self.accumulator_dtype))

    # Optax's accessors.

    @property
    def inner_opt(self) -> GradientTransformation:
        """The wrapped optimizer."""
        return cast(GradientTransformation, self.opt)  # made one by __check_init__

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
        v = jnp.asarray(cast(Callable[[jax.Array], ArrayLike], self.every_k_schedule)(gradient_step))
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

    def _accumulate(self, g: jax.Array, a: jax.Array, n: jax.Array) -> jax.Array:
        dt = wider_dtype(jnp.result_type(g), jnp.result_type(a))
        g, a = cast_leaf(g, dt), cast_leaf(a, dt)
        if self.use_grad_mean:
            return a + (g - a) / (n + 1).astype(dt)
        return g + a

    def update(
        self, updates: Updates, state: MultiStepsState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, MultiStepsState]:
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
            inner_in = jax.tree.map(lambda a, g: cast_leaf(a, jnp.result_type(g)), acc, updates)
            out, inner_state = self.opt.update(inner_in, state.inner_opt_state, params, **extra)
            emit = state.mini_step == k - 1
            out = jax.tree.map(lambda u: jnp.where(emit, u, jnp.zeros_like(u)), out)
            new_state = MultiStepsState(
                mini_step=safe_int32_increment(state.mini_step) % k,
                gradient_step=jnp.where(emit, safe_int32_increment(state.gradient_step), state.gradient_step),
                inner_opt_state=select_tree(emit, inner_state, state.inner_opt_state),
                acc_grads=jax.tree.map(
                    lambda a, old: cast_leaf(jnp.where(emit, jnp.zeros_like(a), a), jnp.result_type(old)),
                    acc,
                    state.acc_grads,
                ),
                skip_state=skip_state,
            )
        if skip is not None:
            out = jax.tree.map(lambda u: jnp.where(skip, jnp.zeros_like(u), u), out)
            mini_step, gradient_step, inner_opt_state, acc_grads = select_tree(skip, state[:4], new_state[:4])
            new_state = MultiStepsState(mini_step, gradient_step, inner_opt_state, acc_grads, skip_state=skip_state)
        return out, new_state
