"""``flatten(inner)``: run ``inner`` on one vector, every leaf raveled and concatenated (Optax 0.2.8's
``optax.flatten``, also ``optax.transforms.flatten``).

Difference from Optax (deliberate, tested in tests/test_wrappers.py): leaves of different dtypes are
concatenated in their widest dtype and each update is cast back to its leaf's dtype; the empty tree works.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx.base import GradientTransformation, OptState, Params, TransformationLike, Updates
from gradtx.fields import option, pytree_class
from gradtx.wrappers._common import cast_leaf, wider_dtype
from gradtx.wrappers.extra_args import with_extra_args_support

__all__ = ["flatten"]


def _common_dtype(leaves: Sequence[Any]) -> np.dtype:
    dtypes = [np.dtype(jnp.result_type(x)) for x in leaves]
    if not dtypes:
        return np.dtype(np.float32)
    if all(d == dtypes[0] for d in dtypes):
        return dtypes[0]
    out = dtypes[0]
    for d in dtypes[1:]:
        out = wider_dtype(out, d)
    return out


def _ravel(tree_: Any) -> jax.Array:
    leaves = jax.tree.leaves(tree_)
    dt = _common_dtype(leaves)
    if not leaves:
        return jnp.zeros([0], dt)
    return jnp.concatenate([jnp.reshape(cast_leaf(x, dt), [-1]) for x in leaves])


def _unravel(like: Any, flat: jax.Array) -> Any:
    leaves, treedef = jax.tree.flatten(like)
    out, start = [], 0
    for x in leaves:
        size = int(np.size(x))
        out.append(cast_leaf(jnp.reshape(flat[start : start + size], jnp.shape(x)), jnp.result_type(x)))
        start += size
    return jax.tree.unflatten(treedef, out)


@pytree_class
class flatten(GradientTransformation):
    """Run ``inner`` on one vector: every leaf raveled and concatenated (in tree order), then split back.

    Many small leaves cost one kernel launch each; one long vector costs one. Only for transformations whose
    maths is elementwise or global (per-leaf statistics such as layer norms would see one leaf). ``init`` and
    ``update`` give ``inner`` the raveled params (and updates); leaves of different dtypes are concatenated in
    their widest dtype and each update is cast back to its leaf's dtype. Optax's ``optax.flatten``.

    Args:
      inner: the transformation to run on the flat vector (anything with ``init`` and ``update``). Required.

    Raises:
      TypeError: at construction, for an ``inner`` without ``init`` and ``update``
        (``with_extra_args_support: expected a transformation with init and update, got 3``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.flatten(gradtx.adam(learning_rate=0.1))
      >>> params = {"a": jnp.ones(2), "b": jnp.ones(3)}
      >>> state = tx.init(params)
      >>> print(state[0].mu.shape)  # one moment vector for all 5 entries
      (5,)
      >>> updates, state = tx.update({"a": jnp.ones(2), "b": -jnp.ones(3)}, state)
      >>> print(updates["a"], updates["b"])
      [-0.1 -0.1] [0.1 0.1 0.1]
    """

    passes_integers = False  # raveling would cast an integer leaf into the float buffer and back: refused

    inner: TransformationLike = option(accepts="a transformation")

    def __check_init__(self) -> None:
        object.__setattr__(self, "inner", with_extra_args_support(self.inner))

    def init(self, params: Params) -> OptState:
        return self.inner.init(_ravel(params))

    def update(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, OptState]:
        flat_params = None if params is None else _ravel(params)
        flat, state = self.inner.update(_ravel(updates), state, flat_params, **extra)
        return _unravel(updates, flat), state
