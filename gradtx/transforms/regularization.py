"""Regularisation blocks: decoupled weight decay.

    add_decayed_weights(wd, mask):  u = g + wd * p   on the parameters the mask selects

Placed before ``scale_by_learning_rate`` this is AdamW's decoupled weight decay (Loshchilov & Hutter 2019,
arXiv 1711.05101).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import (
    EmptyState,
    FrozenTree,
    GradientTransformation,
    Params,
    Updates,
    as_pytree_callable,
    check_tree_match,
    hashable_tree,
    pytree_class,
    require_params,
    safe_int32_increment,
    static_field,
    zero_count,
)
from gradtx.transforms.scaling import ScaleByScheduleState


def apply_mask(mask: Any, updates: Updates, params: Params, fn: Any) -> Updates:
    """Apply ``fn(u, p)`` leafwise where ``mask`` is True, leave updates elsewhere.

    ``mask`` is a pytree of booleans with the structure of ``params`` (or a prefix of it), or a callable
    ``params -> such a tree``. Python booleans select statically; boolean arrays select with ``where``.
    """
    if isinstance(mask, FrozenTree):
        mask = mask.tree
    mask_tree = mask(params) if callable(mask) else mask

    def select(m: Any, u: Any, p: Any) -> Any:
        if isinstance(m, (bool, np.bool_)):
            return jax.tree.map(fn, u, p) if m else u
        return jax.tree.map(lambda a, b: jnp.where(m, fn(a, b), a), u, p)

    return jax.tree.map(select, mask_tree, updates, params, is_leaf=lambda x: x is None)


@pytree_class
class add_decayed_weights(GradientTransformation):
    """Add ``weight_decay * params`` to the updates (decoupled weight decay, Loshchilov & Hutter 2019).

    ``weight_decay`` is a number or a schedule of the 0-based step count. ``mask`` (a pytree of booleans
    shaped like the params or a prefix of them, or a callable ``params -> mask``) restricts the decay to
    the selected parameters.
    """

    weight_decay: Any = 0.0
    mask: Any = static_field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight_decay", as_pytree_callable(self.weight_decay))
        if not callable(self.weight_decay):
            self._check_finite("weight_decay")
        if self.mask is not None and not callable(self.mask):
            object.__setattr__(self, "mask", hashable_tree(self.mask))

    def init(self, params: Params) -> EmptyState | ScaleByScheduleState:
        del params
        if callable(self.weight_decay):
            return ScaleByScheduleState(count=zero_count())
        return EmptyState()

    def update(self, updates: Updates, state: Any, params: Params | None = None, **extra: Any):
        del extra
        require_params("add_decayed_weights.update", params)
        if updates is None:  # no updates at all (Optax returns None too)
            return None, state
        check_tree_match("add_decayed_weights.update", params, updates, what="updates (against params)")
        if callable(self.weight_decay):
            wd = self.weight_decay(state.count)
            state = ScaleByScheduleState(count=safe_int32_increment(state.count))
        else:
            wd = self.weight_decay

        def decay(u: Any, p: Any) -> Any:
            return (tree.up(u) + tree.like(tree.hyper(wd, u), tree.up(p)) * tree.up(p)).astype(jnp.asarray(u).dtype)

        if self.mask is None:
            return jax.tree.map(decay, updates, params), state
        return apply_mask(self.mask, updates, params, decay), state
