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
from gradtx.base import (
    GradientTransformation,
    OptState,
    Params,
    Scalar,
    TransformationLike,
    Updates,
    safe_int32_increment,
    zero_count,
)
from gradtx.fields import flag, integer, option, pytree_class, real
from gradtx.wrappers._common import cast_leaf, select_tree, wider_dtype
from gradtx.wrappers.extra_args import with_extra_args_support

__all__ = ["LookaheadParams", "LookaheadState", "lookahead"]


class LookaheadState(NamedTuple):
    """State of :class:`lookahead` (Optax's ``LookaheadState``, the same fields).

    Attributes:
      fast_state: the fast optimizer's state.
      steps_since_sync: the fast steps since the last synchronisation (0 .. sync_period - 1), an int32
        scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.lookahead(gradtx.sgd(0.1), sync_period=2, slow_step_size=0.5)
      >>> print(opt.init(jnp.zeros(2)))
      LookaheadState(fast_state=(EmptyState(), EmptyState()), steps_since_sync=Array(0, dtype=int32))
    """

    fast_state: OptState
    steps_since_sync: jax.Array


class LookaheadParams(NamedTuple):
    """Fast and slow parameters of :class:`lookahead`: take gradients at ``fast``, evaluate with ``slow``.

    ``LookaheadParams.init_synced(params)`` starts both at ``params``. Optax's ``LookaheadParams``.

    Attributes:
      fast: the parameters the fast optimizer moves (and the gradient is taken at).
      slow: the slow parameters, moved towards ``fast`` at every synchronisation (use them to evaluate).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> params = gradtx.LookaheadParams.init_synced(jnp.array([1.0, 2.0]))
      >>> print(params.fast, params.slow)
      [1. 2.] [1. 2.]
    """

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
    synchronisation. ``init`` takes ``LookaheadParams`` or the fast parameters alone; ``update`` takes the
    gradient at ``params.fast`` and requires ``params`` as ``LookaheadParams``. Optax's ``optax.lookahead``.

    Args:
      fast_optimizer: the inner optimizer of the fast steps (anything with ``init`` and ``update``). Required.
      sync_period: ``k``, the number of fast steps between synchronisations, a whole number >= 1. Required.
      slow_step_size: ``alpha``, the fraction of the way the slow parameters move towards the fast ones, a
        finite number (the paper uses 0.5 or 0.8). Required.
      reset_state: re-initialise the fast optimizer's state at every synchronisation. Default False.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``lookahead(sync_period=0): sync_period must
        be a whole number >= 1``; in ``update``, when ``params`` is not a ``LookaheadParams``.
      TypeError: for a ``fast_optimizer`` without ``init`` and ``update``, or a ``reset_state`` that is not a
        bool.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.lookahead(gradtx.sgd(0.1), sync_period=2, slow_step_size=0.5)
      >>> params = gradtx.LookaheadParams.init_synced(jnp.array([1.0, -2.0]))
      >>> state = opt.init(params)
      >>> for _ in range(2):  # fast: 1 -> 0.8 -> 0.64, then slow = 1 + 0.5 (0.64 - 1) and fast = slow
      ...     updates, state = opt.update(2 * params.fast, state, params)  # the gradient of sum(w^2)
      ...     params = gradtx.apply_updates(params, updates)
      >>> print(params.fast, params.slow)
      [ 0.82 -1.64] [ 0.82 -1.64]
    """

    params_like_updates = False  # params are LookaheadParams(fast, slow), the updates a fast-shaped tree

    fast_optimizer: TransformationLike = option(accepts="a transformation")
    sync_period: int = integer(lo=1)
    slow_step_size: Scalar = real()
    reset_state: bool = flag(default=False)

    def __check_init__(self) -> None:
        object.__setattr__(self, "fast_optimizer", with_extra_args_support(self.fast_optimizer))

    def init(self, params: Params) -> LookaheadState:
        fast = params.fast if isinstance(params, LookaheadParams) else params
        return LookaheadState(fast_state=self.fast_optimizer.init(fast), steps_since_sync=zero_count())

    def update(
        self, updates: Updates, state: LookaheadState, params: Params | None = None, **extra: Any
    ) -> tuple[LookaheadParams, LookaheadState]:
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
