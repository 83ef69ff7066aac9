"""Regularisation blocks: decoupled weight decay.

    add_decayed_weights(wd, mask):  u = g + wd * p   on the parameters the mask selects

Placed before ``scale_by_learning_rate`` this is AdamW's decoupled weight decay (Loshchilov & Hutter 2019,
arXiv 1711.05101).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import (
    EmptyState,
    GradientTransformation,
    MaskOrFn,
    Params,
    ScalarOrSchedule,
    Updates,
    check_tree_match,
    require_params,
)
from gradtx.fields import FrozenTree, hashable_tree, option, pytree_class, scalar_or_schedule
from gradtx.transforms.scaling import ScaleByScheduleState, schedule_state, scheduled

__all__ = ["add_decayed_weights", "apply_mask"]

def apply_mask(mask: MaskOrFn, updates: Updates, params: Params, fn: Callable[[Any, Any], Any]) -> Updates:
    """Apply ``fn(u, p)`` leafwise where ``mask`` is True, leave updates elsewhere.

    The helper behind ``add_decayed_weights(mask=...)``: Python booleans in the mask select statically (the
    unselected leaves are returned as they are), boolean arrays select with ``jnp.where``.

    Args:
      mask: a pytree of booleans with the structure of ``params`` (or a prefix of it: one boolean for a whole
        subtree), or a callable ``params -> such a tree``.
      updates: the updates, a pytree with the structure of ``params``.
      params: the parameters.
      fn: the function ``(update_leaf, param_leaf) -> new update leaf`` applied where the mask is True.

    Returns:
      The updates with ``fn`` applied on the selected leaves, with the structure of ``updates``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.transforms.regularization import apply_mask
      >>> updates, params = {"b": jnp.ones(2), "w": jnp.ones(2)}, {"b": jnp.full(2, 3.0), "w": jnp.full(2, 3.0)}
      >>> out = apply_mask({"b": False, "w": True}, updates, params, lambda u, p: u + p)
      >>> print(out["b"], out["w"])
      [1. 1.] [4. 4.]
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
    """Add ``weight_decay * params`` to the updates (decoupled weight decay).

    ::

        u = g + wd(t) * p      on the parameters the mask selects (all of them without a mask)
        u = g                  elsewhere

    with ``t`` the 0-based count of previous updates when ``weight_decay`` is a schedule. Placed before
    ``scale_by_learning_rate`` this is AdamW's decoupled weight decay (Loshchilov & Hutter 2019, "Decoupled
    Weight Decay Regularization", ICLR, arXiv 1711.05101). Computed in the parameter's compute dtype (complex
    for complex parameters). ``update`` needs ``params``.

    Args:
      weight_decay: the decay rate ``wd``, a real number or a schedule ``count -> value`` of the 0-based step
        count (then the state carries the count). Default 0.0.
      mask: a pytree of booleans shaped like the params or a prefix of them (True: decay that parameter), or a
        callable ``params -> such a tree``; ``None`` (the default) decays every parameter.

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState``, or ``ScaleByScheduleState`` when
      ``weight_decay`` is a schedule.

    Raises:
      ValueError: at construction, for a non-finite ``weight_decay`` (``add_decayed_weights(weight_decay=nan):
        weight_decay must be finite``); in ``update``, without params (``add_decayed_weights.update: params
        are required (call update(updates, state, params))``).
      TypeError: at construction, for a ``weight_decay`` that is neither a number nor a schedule (``None``, a
        string); in ``update``, for updates whose tree differs from the params'.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.add_decayed_weights(0.1)
      >>> params = jnp.array([10.0, -20.0])
      >>> updates, state = tx.update(jnp.array([1.0, 1.0]), tx.init(params), params)
      >>> print(updates)  # g + 0.1 p
      [ 2. -1.]
    """

    weight_decay: ScalarOrSchedule = scalar_or_schedule(default=0.0)
    mask: MaskOrFn = option(
        default=None, accepts="a tree of booleans (a prefix of the params) or a callable params -> mask",
        static=True, optional=True,
    )

    def __check_init__(self) -> None:
        if self.mask is not None and not callable(self.mask):
            object.__setattr__(self, "mask", hashable_tree(self.mask))

    def _flat_refusal(self) -> str | None:
        return "its mask is written for the parameter tree" if self.mask is not None else None

    def init(self, params: Params) -> EmptyState | ScaleByScheduleState:
        del params
        return schedule_state(self.weight_decay)

    def update(
        self, updates: Updates, state: EmptyState | ScaleByScheduleState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, EmptyState | ScaleByScheduleState]:
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
