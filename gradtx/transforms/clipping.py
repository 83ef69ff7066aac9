"""Clipping blocks: bound each coordinate, or rescale the whole update to a maximum global norm.

    clip(d):                 u = clip(g, -d, d)
    clip_by_global_norm(n):  u = g * min(1, n / ||g||)    (Pascanu, Mikolov & Bengio 2013, arXiv 1211.5063;
                                                         n = 0 gives zeros, also for g = 0)

The global norm is ``gradtx.tree.global_norm``: a float32 gradient of 1e20 is clipped to a vector of norm
``max_norm`` (its sum of squares alone would overflow to inf and clip it to zeros), and one of 1e-25 is measured
as 1e-25. Both are stateless (state ``EmptyState()``). Their bound (``max_delta``, ``max_norm``) is a number >= 0 or a
scalar array (inside ``inject_hyperparams`` it may come from a schedule); a negative, NaN or non-numeric constant
raises ``ValueError`` at construction. ``clips(updates)`` says whether ``update`` would change ``updates`` now.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import EmptyState, Params, Scalar, StatelessTransformation, Updates
from gradtx.fields import non_negative, pytree_class

__all__ = ["clip", "clip_by_global_norm"]


@pytree_class
class clip(StatelessTransformation):
    """Clip every coordinate into ``[-max_delta, max_delta]``: ``u_i = min(max(g_i, -max_delta), max_delta)``.

    ``max_delta = 0`` gives zero updates. NaN coordinates stay NaN. Stateless (state ``EmptyState()``).
    ``clips(updates)`` says whether ``update`` would change ``updates`` now (a boolean scalar).

    Args:
      max_delta: the largest absolute value of a coordinate, a number >= 0 or a scalar array (inside
        ``inject_hyperparams`` it may come from a schedule).

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState``.

    Raises:
      ValueError: at construction, for a negative or NaN ``max_delta``, e.g. ``clip(max_delta=-1.0): max_delta
        must be >= 0``.
      TypeError: at construction, for a ``max_delta`` that is not a real number (``None``, a string, an array
        that is not 0-d).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.clip(1.0)
      >>> updates, state = tx.update(jnp.array([-3.0, 0.5, 2.0]), tx.init(None))
      >>> print(updates)
      [-1.   0.5  1. ]
    """

    max_delta: Scalar = non_negative()

    def update(
        self, updates: Updates, state: EmptyState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, EmptyState]:
        del params, extra

        def one(g: Any) -> Any:
            x = tree.Leaf(g)
            m = x.hyper(self.max_delta)
            return x.out(jnp.clip(x.cast(g), -m, m))

        return jax.tree.map(one, updates), state

    def clips(self, updates: Updates, params: Params | None = None) -> jax.Array:
        """Whether ``update`` would change ``updates`` now: some coordinate lies outside ``[-max_delta, max_delta]``
        (a boolean scalar; NaN coordinates do not count)."""
        del params
        out = jnp.zeros([], jnp.bool_)
        for g in jax.tree.leaves(updates):
            x = tree.Leaf(g)
            g_c, m = x.cast(g), x.hyper(self.max_delta)
            c = jnp.clip(g_c, -m, m)
            out = jnp.logical_or(out, jnp.any(jnp.logical_and(c != g_c, jnp.logical_not(jnp.isnan(g_c)))))
        return out


@pytree_class
class clip_by_global_norm(StatelessTransformation):
    """Rescale all updates together so that their global l2 norm is at most ``max_norm``.

    With ``||g||`` the l2 norm of all leaves of ``g`` concatenated (Pascanu, Mikolov & Bengio 2013, "On the
    difficulty of training recurrent neural networks", ICML, arXiv 1211.5063)::

        u = g                          if ||g|| <= max_norm
        u = g * max_norm / ||g||       otherwise

    The norm is ``gradtx.tree.global_norm``, accumulated in float32 or wider whatever the update dtype, without
    overflow (a float32 gradient of 1e20 is clipped to norm ``max_norm``, not to zeros). ``max_norm = 0`` gives
    zero updates (also for a zero gradient, where Optax computes ``0 / 0`` and returns NaN); a NaN norm gives
    NaN updates, as in Optax. Stateless (state ``EmptyState()``). ``clips(updates)`` says whether ``update``
    would change ``updates`` now.

    Args:
      max_norm: the largest global norm of the output, a number >= 0 or a scalar array (inside
        ``inject_hyperparams`` it may come from a schedule).

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState``.

    Raises:
      ValueError: at construction, for a negative or NaN ``max_norm``, e.g. ``clip_by_global_norm(max_norm=-1.0):
        max_norm must be >= 0``.
      TypeError: at construction, for a ``max_norm`` that is not a real number (``None``, a string).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.clip_by_global_norm(1.0)
      >>> updates, _ = tx.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, tx.init(None))
      >>> print(updates["a"], updates["b"])  # the global norm 5 becomes 1
      [0.6] [0.8]
      >>> print(tx.clips(jnp.array([0.3, 0.4])))
      False
    """

    max_norm: Scalar = non_negative()

    def update(
        self, updates: Updates, state: EmptyState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, EmptyState]:
        del params, extra
        g_norm = tree.global_norm(updates)

        def one(g: Any) -> Any:
            x = tree.Leaf(g)
            m = x.hyper(self.max_norm)
            n = g_norm.astype(m.dtype)
            keep = n <= m  # also n == m == 0: nothing to scale (Optax: 0 / 0)
            factor = jnp.where(keep, jnp.ones_like(m), m / jnp.where(keep, jnp.ones_like(n), n))
            return x.out(x.cast(factor) * x.cast(g))

        return jax.tree.map(one, updates), state

    def clips(self, updates: Updates, params: Params | None = None) -> jax.Array:
        """Whether ``update`` would change ``updates`` now: their global norm exceeds ``max_norm`` (a boolean
        scalar; False for a NaN norm)."""
        del params
        g_norm = tree.global_norm(updates)
        return g_norm > tree.hyper(self.max_norm, g_norm).astype(g_norm.dtype)
