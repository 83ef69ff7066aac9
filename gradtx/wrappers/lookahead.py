"""Lookahead (Zhang, Lucas, Hinton & Ba 2019, arXiv 1907.08610): ``k`` fast steps, then ``slow += alpha
(fast - slow)`` and ``fast = slow`` (Optax 0.2.8's ``optax.lookahead``, ``LookaheadState``, ``LookaheadParams``).

Differences from Optax (deliberate, tested in tests/test_wrappers.py): ``init`` accepts ``LookaheadParams`` or
the fast parameters alone (Optax logs a warning for the latter); ``update`` requires ``LookaheadParams`` and
passes extra keyword arguments to the fast optimizer (Optax's update takes none).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import GradientTransformation, OptState, Params, Updates, safe_int32_increment, zero_count
from gradtx.fields import flag, integer, option, pytree_class, real
from gradtx.wrappers._common import cast_leaf, select_tree, wider_dtype
from gradtx.wrappers.extra_args import with_extra_args_support

__all__ = ["LookaheadParams", "LookaheadState", "lookahead"]


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

    params_like_updates = False  # params are LookaheadParams(fast, slow), the updates a fast-shaped tree

    fast_optimizer: Any = option(accepts="a transformation")
    sync_period: Any = integer(lo=1)
    slow_step_size: Any = real()
    reset_state: bool = flag(default=False)

    def __check_init__(self) -> None:
        object.__setattr__(self, "fast_optimizer", with_extra_args_support(self.fast_optimizer))

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
            dt = wider_dtype(jnp.result_type(g), wider_dtype(jnp.result_type(f), jnp.result_type(s)))
            alpha = tree.hyper(self.slow_step_size, dt)
            uu = cast_leaf(g, dt)
            d = cast_leaf(f, dt) + uu - cast_leaf(s, dt)
            zero = jnp.zeros_like(d)
            slow_u = jnp.where(sync, alpha * d, zero)
            fast_u = jnp.where(sync, uu - (1 - alpha) * d, uu)
            out = jnp.result_type(g)
            return cast_leaf(fast_u, out), cast_leaf(slow_u, out)

        pairs = jax.tree.map(one, params.fast, u, params.slow)
        fast_u, slow_u = tree.unzip2(u, pairs)
        if self.reset_state:
            fast_state = select_tree(sync, self.fast_optimizer.init(params.fast), fast_state)
        steps = safe_int32_increment(state.steps_since_sync) % period
        return LookaheadParams(fast=fast_u, slow=slow_u), LookaheadState(fast_state, steps)
