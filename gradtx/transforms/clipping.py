"""Clipping blocks: bound each coordinate, or rescale the whole update to a maximum global norm.

    clip(d):                 u = clip(g, -d, d)
    clip_by_global_norm(n):  u = g * min(1, n / ||g||)    (Pascanu, Mikolov & Bengio 2013, arXiv 1211.5063)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import EmptyState, GradientTransformation, OptState, Params, Updates, pytree_class


@pytree_class
class clip(GradientTransformation):
    """Clip every coordinate into ``[-max_delta, max_delta]``."""

    max_delta: Any

    def __post_init__(self) -> None:
        self._check_range("max_delta", 0.0)

    def init(self, params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update(self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any):
        del params, extra

        def one(g: Any) -> Any:
            m = tree.hyper(self.max_delta, g)
            return jnp.clip(tree.up(g), -m, m).astype(jnp.asarray(g).dtype)

        return jax.tree.map(one, updates), state

    def clips(self, updates: Updates, params: Params | None = None) -> jax.Array:
        """Whether ``update`` would change ``updates`` now: some coordinate lies outside ``[-max_delta, max_delta]``
        (a boolean scalar; NaN coordinates do not count)."""
        del params
        out = jnp.zeros([], jnp.bool_)
        for g in jax.tree.leaves(updates):
            x = tree.up(g)
            m = tree.hyper(self.max_delta, g)
            c = jnp.clip(x, -m, m)
            out = jnp.logical_or(out, jnp.any(jnp.logical_and(c != x, jnp.logical_not(jnp.isnan(x)))))
        return out


@pytree_class
class clip_by_global_norm(GradientTransformation):
    """Rescale all updates together so their global l2 norm is at most ``max_norm``.

    ``u = g`` if ``||g|| < max_norm`` else ``g * max_norm / ||g||`` (Pascanu et al. 2013). The norm is
    accumulated in float32 or wider whatever the update dtype.
    """

    max_norm: Any

    def __post_init__(self) -> None:
        self._check_range("max_norm", 0.0, lo_open=True)

    def init(self, params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update(self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any):
        del params, extra
        g_norm = tree.global_norm(updates)

        def one(g: Any) -> Any:
            m = tree.hyper(self.max_norm, g)
            n = g_norm.astype(m.dtype)
            factor = jnp.where(n < m, jnp.ones_like(m), m / jnp.where(n < m, jnp.ones_like(n), n))
            return (tree.like(factor, tree.up(g)) * tree.up(g)).astype(jnp.asarray(g).dtype)

        return jax.tree.map(one, updates), state

    def clips(self, updates: Updates, params: Params | None = None) -> jax.Array:
        """Whether ``update`` would change ``updates`` now: their global norm exceeds ``max_norm`` (a boolean
        scalar; False for a NaN norm)."""
        del params
        g_norm = tree.global_norm(updates)
        return g_norm > tree.hyper(self.max_norm, g_norm).astype(g_norm.dtype)
