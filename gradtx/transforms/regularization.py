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
from gradtx.base import EmptyState, GradientTransformation, Params, Updates, check_tree_match, require_params
from gradtx.fields import FrozenTree, hashable_tree, option, pytree_class, scalar_or_schedule
from gradtx.transforms.scaling import ScaleByScheduleState, schedule_state, scheduled


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

    weight_decay: Any = scalar_or_schedule(default=0.0)
    mask: Any = option(
        default=None, accepts="a tree of booleans (a prefix of the params) or a callable params -> mask",
        static=True, optional=True,
    )

    def __check_init__(self) -> None:
        if self.mask is not None and not callable(self.mask):
            object.__setattr__(self, "mask", hashable_tree(self.mask))

    def init(self, params: Params) -> EmptyState | ScaleByScheduleState:
        del params
        return schedule_state(self.weight_decay)

    def update(self, updates: Updates, state: Any, params: Params | None = None, **extra: Any):
        del extra
        require_params("add_decayed_weights.update", params)
        if updates is None:  # no updates at all (Optax returns None too)
            return None, state
        check_tree_match("add_decayed_weights.update", params, updates, what="updates (against params)")
        wd, state = scheduled(self.weight_decay, state)

        def decay(u: Any, p: Any) -> Any:
            x, w = tree.Leaf(u), tree.Leaf(p)  # the parameter's compute dtype: complex for complex params
            return x.out(x.cast(u) + w.cast(x.hyper(wd)) * w.cast(p))

        if self.mask is None:
            return jax.tree.map(decay, updates, params), state
        return apply_mask(self.mask, updates, params, decay), state
