"""Static values held by transformations: plain callables and masks (hashable, compared by value)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover - Python 3.10
    pass

import jax
import jax.numpy as jnp
import numpy as np

from gradtx.fields.checks import format_value, is_tracer, short_repr
from gradtx.fields.declare import pytree_class, static_field

__all__ = ["FrozenTree", "StaticCallable", "as_pytree_callable", "hashable_tree"]

# --------------------------------------------------------------------------------------------------
# Static values: callables and masks.
# --------------------------------------------------------------------------------------------------


@pytree_class
class StaticCallable:
    """A plain Python callable (a user's lambda used as a schedule) held as static, not as a leaf.

    A pytree without leaves whose tree definition holds ``fn`` (compared by identity): a transformation
    holding one stays a valid pytree, and a jitted step with the same function compiles once. Calling it
    calls ``fn``; its repr is the function's name. Built by :func:`as_pytree_callable`.

    Args:
      fn: the callable.

    Example:
      >>> import jax
      >>> from gradtx.fields import StaticCallable
      >>> f = StaticCallable(lambda count: 0.1 * 0.5 ** count)
      >>> f(1), jax.tree.leaves(f)
      (0.05, [])
    """

    fn: Callable[..., Any] = static_field()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return format_value(self.fn)


def as_pytree_callable(fn: Any) -> Any:
    """Keep pytree callables (gradtx schedules) and numbers as they are; wrap other callables static.

    How a field declared with ``schedule=True`` stores a schedule: a gradtx schedule is itself a pytree (its
    numbers are leaves, so it can be traced and differentiated), while a plain function or an Optax schedule
    (a closure) would be a leaf JAX cannot handle, so it is wrapped in a :class:`StaticCallable`.

    Args:
      fn: a number, a gradtx schedule, or any other callable.

    Returns:
      ``fn`` itself if it is not callable, already a :class:`StaticCallable`, or a pytree node with children;
      else ``StaticCallable(fn)``.

    Example:
      >>> import gradtx
      >>> from gradtx.fields import as_pytree_callable
      >>> as_pytree_callable(0.1), as_pytree_callable(abs)
      (0.1, abs)
      >>> type(as_pytree_callable(abs)).__name__, as_pytree_callable(gradtx.constant_schedule(0.1))
      ('StaticCallable', constant_schedule(value=0.1))
    """
    if isinstance(fn, StaticCallable) or not callable(fn):
        return fn
    if jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(fn)):
        return StaticCallable(fn)
    return fn


def _frozen_leaf(x: Any) -> Any:
    """A hashable key for one leaf of a static tree: Python scalars as they are, NumPy/JAX values by value."""
    if isinstance(x, (np.ndarray, np.generic, jax.Array)):
        if is_tracer(x):
            raise TypeError(f"a static tree (a mask) cannot hold a traced value: {short_repr(x)}")
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):  # by its impl and bits
            bits = np.asarray(jax.random.key_data(x))
            return ("key", str(jax.random.key_impl(x)), bits.shape, bits.tobytes())
        a = np.asarray(x)
        return a.item() if a.ndim == 0 else ("array", a.dtype.str, a.shape, a.tobytes())
    hash(x)  # TypeError for an unhashable leaf, named by the caller
    return x


def hashable_tree(tree: Any) -> Any:
    """Return ``tree`` if hashable, else a hashable frozen view of it (for static mask trees).

    Static fields must be hashable (they are part of a tree definition); a mask written as a dict of
    booleans is not, so it is held as a :class:`FrozenTree`.

    Args:
      tree: a pytree of hashable scalars (a mask), or any hashable value.

    Returns:
      ``tree`` if ``hash(tree)`` works, else ``FrozenTree(tree)``.

    Raises:
      TypeError: ``tree`` is unhashable and holds a leaf with no value to compare (see :class:`FrozenTree`).

    Example:
      >>> from gradtx.fields import hashable_tree
      >>> hashable_tree(True), hashable_tree({"w": True, "b": False})
      (True, {'w': True, 'b': False})
      >>> type(hashable_tree({"w": True})).__name__
      'FrozenTree'
    """
    try:
        hash(tree)
        return tree
    except TypeError:
        return FrozenTree(tree)


class FrozenTree:
    """A hashable wrapper of a pytree of scalars (a static mask) that compares and hashes by value.

    0-d NumPy or JAX values count as their Python value (``np.array(True)`` as ``True``), so two equal masks give
    equal tree definitions and a jitted step does not retrace. Larger arrays compare by dtype, shape and
    bytes. The wrapped tree is ``.tree``; the repr is the tree's.

    Args:
      tree: a pytree of scalars (or arrays) with values known before tracing.

    Raises:
      TypeError: a leaf has no value to compare, a tracer or an unhashable object: ``a static tree (a mask)
        must hold hashable values: ...``.

    Example:
      >>> import numpy as np
      >>> from gradtx.fields import FrozenTree
      >>> a, b = FrozenTree({"w": True, "b": np.array(False)}), FrozenTree({"w": True, "b": False})
      >>> a == b, hash(a) == hash(b)
      (True, True)
      >>> a.tree["w"]
      True
    """

    def __init__(self, tree: Any):
        self.tree = tree
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        try:
            self._key: Any = (treedef, tuple(_frozen_leaf(x) for x in leaves))
        except TypeError as e:
            raise TypeError(f"a static tree (a mask) must hold hashable values: {e}") from None

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FrozenTree) and self._key == other._key

    def __repr__(self) -> str:
        return repr(self.tree)
