"""Guards that reject bad updates: non-finite ones (``apply_if_finite``, ``skip_not_finite``) and too large
ones (``skip_large_updates``).

    apply_if_finite(inner, n)          skip updates holding inf/NaN (up to n in a row), count them
    skip_not_finite                    a ``should_skip_update_fn`` for ``MultiSteps``: inf/NaN mini-steps
    skip_large_updates                 the same for mini-steps whose squared global norm is too large

Names, signatures, state classes and field names are Optax 0.2.8's (``optax.apply_if_finite``,
``optax.skip_not_finite``, ``optax.skip_large_updates``; also under ``optax.transforms``). The guard on loss
and gradient-norm spikes, ``spike_guard``, lives with the diagnostics (:mod:`gradtx.diagnostics.spike`).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import GradientTransformation, Params, Updates, safe_int32_increment, zero_count
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

    inner: Any = option(accepts="a transformation")
    max_consecutive_errors: Any = non_negative()

    def __check_init__(self) -> None:
        object.__setattr__(self, "inner", with_extra_args_support(self.inner))

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
            inner_state=select_tree(accept, inner_state, state.inner_state),
        )
