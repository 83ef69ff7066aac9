"""Guards that reject bad updates: non-finite ones (``apply_if_finite``, ``skip_not_finite``) and too large
ones (``skip_large_updates``).

    apply_if_finite(inner, n)          skip updates holding inf/NaN (up to n in a row), count them
    skip_not_finite                    a ``should_skip_update_fn`` for ``MultiSteps``: inf/NaN mini-steps
    skip_large_updates                 the same for mini-steps whose squared global norm is too large

Names, signatures, state classes and field names are Optax 0.2.8's (``optax.apply_if_finite``,
``optax.skip_not_finite``, ``optax.skip_large_updates``; also under ``optax.transforms``). The guard on loss
and gradient-norm spikes, ``spike_guard``, lives with the diagnostics (:mod:`gradtx.diagnostics.spike`).

Overflowed second moments
-------------------------

A finite gradient can still break an adaptive optimizer: the square of a float32 ``g = 1e20`` is ``inf``, so
Adam's ``nu`` (Adagrad's sum, RMSProp's average, Adafactor's statistics) becomes ``inf`` and stays there. Each
later update of that coordinate would be ``m / inf = 0``, finite: the coordinate would freeze silently and a
guard that only looks at gradients would never fire. gradtx's policy has two parts:

1. *Guards look at the new state too.* ``apply_if_finite`` treats a step that makes a finite entry of the inner
   state non-finite exactly as a non-finite update: the updates are zeros, the inner state is kept, and
   ``notfinite_count`` / ``total_notfinite`` count it (and after ``max_consecutive_errors`` in a row the step is
   applied, as for a NaN gradient). Training then continues exactly as if the bad step had never happened.
   Entries that were already non-finite (a state that starts at NaN or ``-inf`` by design, or one a guard gave
   up on) do not count again. ``skip_not_finite`` runs before ``MultiSteps`` updates its inner optimizer, so
   it cannot see that state; it skips a mini-step whose updates hold an entry whose square overflows in the
   compute dtype (float32 ``|g| > 1.8e19``), the entries that would overflow any second moment.
2. *Without a guard the failure is visible.* Every block of ``gradtx.transforms`` that divides by a root of a
   second moment (the Adam family, ``scale_by_rms``, ``scale_by_rss``, ``scale_by_stddev``,
   ``scale_by_factored_rms``, ``scale_by_sm3``, Adadelta, NovoGrad, DoG) returns NaN, not 0, for a coordinate
   whose second moment is infinite, so the loss shows the failure at once
   (``gradtx.tree.precision.scale_ratio`` and ``times_inverse``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    OptState,
    Params,
    PyTree,
    Scalar,
    TransformationLike,
    Updates,
    safe_int32_increment,
    zero_count,
)
from gradtx.fields import non_negative, option, pytree_class
from gradtx.wrappers._common import select_tree
from gradtx.wrappers.extra_args import with_extra_args_support

__all__ = [
    "ApplyIfFiniteState",
    "ShouldSkipUpdateFunction",
    "apply_if_finite",
    "skip_large_updates",
    "skip_not_finite",
]


class ShouldSkipUpdateFunction(Protocol):
    """The type of ``MultiSteps``' ``should_skip_update_fn``: ``fn(updates, gradient_step, params) ->
    (should_skip, skip_state)``.

    ``updates`` are the mini-step's gradients, ``gradient_step`` the number of updates ``MultiSteps`` has
    emitted (an int32 scalar array), ``params`` the parameters (or None). ``should_skip`` must be a boolean
    scalar array (True rejects the mini-step); ``skip_state`` is any pytree, stored in
    ``MultiStepsState.skip_state`` (its structure must not change between steps). :func:`skip_not_finite`
    and :func:`skip_large_updates` (through ``functools.partial``) are such functions. Optax's
    ``optax.ShouldSkipUpdateFunction``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> def skip_negative_sum(updates, gradient_step, params):
      ...     total = jnp.sum(updates)
      ...     return total < 0, {"total": total}
      >>> opt = gradtx.MultiSteps(gradtx.sgd(1.0), 2, should_skip_update_fn=skip_negative_sum)
      >>> state = opt.init(jnp.zeros(2))
      >>> _, state = opt.update(jnp.array([-1.0, -1.0]), state)  # rejected: the state is unchanged
      >>> print(int(state.mini_step), float(state.skip_state["total"]))
      0 -2.0
    """

    def __call__(
        self, updates: Updates, gradient_step: jax.Array, params: Params | None
    ) -> tuple[ArrayLike, PyTree]: ...


def skip_not_finite(
    updates: Updates, gradient_step: jax.Array, params: Params | None
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Skip a mini-step whose updates hold an inf or a NaN (a ``should_skip_update_fn`` for ``MultiSteps``).

    An entry also counts as not finite when its square overflows in the entry's compute dtype (float32 and
    bfloat16 ``|g| > 1.8e19``): it would make any second moment infinite (see the module docstring).

    Args:
      updates: the mini-step's updates (gradients).
      gradient_step: ``MultiSteps``' step count (unused).
      params: the parameters (unused).

    Returns:
      ``(should_skip, {'should_skip': ..., 'num_not_finite': int32 count of such entries})``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> skip, info = gradtx.skip_not_finite({"w": jnp.array([1.0, 1e20, jnp.nan], jnp.float32)}, 0, None)
      >>> bool(skip), int(info["num_not_finite"])
      (True, 2)
    """
    del gradient_step, params
    counts = [jnp.sum(~jnp.isfinite(tree.abs_sq(tree.up(x)))).astype(jnp.int32) for x in jax.tree.leaves(updates)]
    num_not_finite = jnp.zeros([], jnp.int32)
    for c in counts:
        num_not_finite = num_not_finite + c
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(
    updates: Updates, gradient_step: jax.Array, params: Params | None, max_squared_norm: Scalar
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Skip a mini-step whose squared global norm is not below ``max_squared_norm`` (NaN norms are skipped).

    A ``should_skip_update_fn`` for ``MultiSteps``, used as ``functools.partial(skip_large_updates,
    max_squared_norm=42.0)``: ``should_skip = not (sum of all squared entries < max_squared_norm)``. The norm
    accumulates in float32 or wider. Optax's ``optax.skip_large_updates``.

    Args:
      updates: the mini-step's updates (gradients).
      gradient_step: ``MultiSteps``' step count (unused).
      params: the parameters (unused).
      max_squared_norm: the bound on the squared global norm, a number.

    Returns:
      ``(should_skip, {'should_skip': should_skip, 'norm_squared': the squared norm})``, ``should_skip`` a
      boolean scalar array.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> skip, info = gradtx.skip_large_updates({"w": jnp.array([3.0, 4.0])}, 0, None, max_squared_norm=20.0)
      >>> print(bool(skip), float(info["norm_squared"]))
      True 25.0
    """
    del gradient_step, params
    norm_sq = tree.norm(updates, squared=True)
    should_skip = jnp.logical_not(norm_sq < jnp.asarray(max_squared_norm, norm_sq.dtype))
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


def _became_not_finite(new: Any, old: Any) -> jax.Array:
    """Whether some inexact entry of the state ``new`` is inf or NaN where the same entry of ``old`` was finite
    (a boolean scalar; leaves whose shapes changed count when they hold any non-finite entry)."""
    out = jnp.zeros([], jnp.bool_)
    for n, o in zip(jax.tree.leaves(new), jax.tree.leaves(old)):
        n, o = jnp.asarray(n), jnp.asarray(o)
        if not jnp.issubdtype(n.dtype, jnp.inexact):
            continue
        broke = ~jnp.isfinite(n)
        if jnp.shape(n) == jnp.shape(o) and jnp.issubdtype(o.dtype, jnp.inexact):
            broke = broke & jnp.isfinite(o)
        out = out | jnp.any(broke)
    return out


class ApplyIfFiniteState(NamedTuple):
    """State of :class:`apply_if_finite` (Optax's ``ApplyIfFiniteState``, the same fields).

    Attributes:
      notfinite_count: consecutive updates holding an inf or NaN (reset by a finite one), an int32 scalar.
      last_finite: whether the last update was finite, a boolean scalar.
      total_notfinite: non-finite updates since ``init`` (never reset), an int32 scalar.
      inner_state: the inner transformation's state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.apply_if_finite(gradtx.sgd(0.1), max_consecutive_errors=2)
      >>> state = tx.init(jnp.zeros(2))
      >>> _, state = tx.update(jnp.array([jnp.nan, 1.0]), state)
      >>> print(int(state.notfinite_count), bool(state.last_finite), int(state.total_notfinite))
      1 False 1
    """

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    inner_state: OptState


@pytree_class
class apply_if_finite(GradientTransformation):
    """Skip updates that hold an inf or a NaN, unless ``max_consecutive_errors`` were skipped in a row.

    A non-finite update returns zeros and leaves the inner state unchanged; after more than
    ``max_consecutive_errors`` consecutive non-finite updates the wrapper gives up and applies them (so a
    persistent NaN is not hidden forever). The counts live in :class:`ApplyIfFiniteState`. A step whose new
    inner state turns a finite entry non-finite (an overflowed second moment) counts as a non-finite update
    too (see the module docstring). Optax's ``optax.apply_if_finite``.

    Args:
      inner: the transformation to guard (anything with ``init`` and ``update``). Required.
      max_consecutive_errors: the number of consecutive non-finite updates skipped before they are applied,
        a number >= 0. Required.

    Raises:
      ValueError: at construction, for a negative ``max_consecutive_errors``
        (``apply_if_finite(max_consecutive_errors=-1): max_consecutive_errors must be >= 0``).
      TypeError: for an ``inner`` without ``init`` and ``update``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.apply_if_finite(gradtx.adam(0.1), max_consecutive_errors=3)
      >>> params = {"w": jnp.ones(2, jnp.float32)}
      >>> state = tx.init(params)
      >>> u, state = tx.update({"w": jnp.array([1e20, 1.0], jnp.float32)}, state, params)  # nu would overflow
      >>> u["w"].tolist(), int(state.notfinite_count), int(state.inner_state[0].count)
      ([0.0, 0.0], 1, 0)
    """

    inner: TransformationLike = option(accepts="a transformation")
    max_consecutive_errors: Scalar = non_negative()

    def __check_init__(self) -> None:
        object.__setattr__(self, "inner", with_extra_args_support(self.inner))

    def init(self, params: Params) -> ApplyIfFiniteState:
        return ApplyIfFiniteState(
            notfinite_count=zero_count(),
            last_finite=jnp.array(True, jnp.bool_),
            total_notfinite=zero_count(),
            inner_state=self.inner.init(params),
        )

    def update(
        self, updates: Updates, state: ApplyIfFiniteState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ApplyIfFiniteState]:
        leaves = jax.tree.leaves(updates)
        isfinite = jnp.array(True, jnp.bool_)
        for x in leaves:
            isfinite = jnp.logical_and(isfinite, jnp.all(jnp.isfinite(x)))
        limit = jnp.asarray(self.max_consecutive_errors).astype(jnp.int32)
        out, inner_state = self.inner.update(updates, state.inner_state, params, **extra)
        # a finite gradient whose step breaks the state (an overflowed second moment) is a non-finite update too
        isfinite = jnp.logical_and(isfinite, jnp.logical_not(_became_not_finite(inner_state, state.inner_state)))
        notfinite_count = jnp.where(isfinite, zero_count(), safe_int32_increment(state.notfinite_count))
        accept = jnp.logical_or(isfinite, notfinite_count > limit)
        out = jax.tree.map(lambda u: jnp.where(accept, u, jnp.zeros_like(u)), out)
        return out, ApplyIfFiniteState(
            notfinite_count=notfinite_count,
            last_finite=isfinite,
            total_notfinite=jnp.where(isfinite, state.total_notfinite, safe_int32_increment(state.total_notfinite)),
            inner_state=select_tree(accept, inner_state, state.inner_state),
        )
