"""Optax's ``optax.tree_utils`` spellings (``tree_add``, ``tree_norm``, ``tree_l2_norm``, ...).

Each name here is the one canonical function of :mod:`gradtx.tree` under its Optax ``tree_*`` name (``tree_add
is gradtx.tree.add``), so code written against ``optax.tree_utils`` runs unchanged. The four norm spellings
Optax keeps for old code (``tree_l1_norm``, ``tree_l2_norm``, ``tree_linf_norm``) and the two old scaling names
(``tree_scalar_mul``, ``tree_add_scalar_mul``) are thin functions over :func:`gradtx.tree.norm`,
:func:`gradtx.tree.scale` and :func:`gradtx.tree.add_scale`.

Example:
  >>> import jax.numpy as jnp
  >>> from gradtx import tree_utils as otu
  >>> float(otu.tree_l2_norm({"a": jnp.array([3.0]), "b": jnp.array([4.0])}))
  5.0
"""

from __future__ import annotations

from collections.abc import Callable

import jax

from gradtx.base import PyTree, Scalar
from gradtx.tree import NamedTupleKey
from gradtx.tree import add as tree_add
from gradtx.tree import add_scale as tree_add_scale
from gradtx.tree import allclose as tree_allclose
from gradtx.tree import batch_shape as tree_batch_shape
from gradtx.tree import bias_correction as tree_bias_correction
from gradtx.tree import cast as tree_cast
from gradtx.tree import cast_like as tree_cast_like
from gradtx.tree import clip as tree_clip
from gradtx.tree import conj as tree_conj
from gradtx.tree import div as tree_div
from gradtx.tree import dtype as tree_dtype
from gradtx.tree import full_like as tree_full_like
from gradtx.tree import get as tree_get
from gradtx.tree import get_all_with_path as tree_get_all_with_path
from gradtx.tree import map_params as tree_map_params
from gradtx.tree import max as tree_max
from gradtx.tree import min as tree_min
from gradtx.tree import mul as tree_mul
from gradtx.tree import norm as tree_norm
from gradtx.tree import ones_like as tree_ones_like
from gradtx.tree import random_like as tree_random_like
from gradtx.tree import real as tree_real
from gradtx.tree import scale as tree_scale
from gradtx.tree import set as tree_set
from gradtx.tree import size as tree_size
from gradtx.tree import split_key_like as tree_split_key_like
from gradtx.tree import sub as tree_sub
from gradtx.tree import sum as tree_sum
from gradtx.tree import unwrap_random_key_data as tree_unwrap_random_key_data
from gradtx.tree import update_infinity_moment as tree_update_infinity_moment
from gradtx.tree import update_moment as tree_update_moment
from gradtx.tree import update_moment_per_elem_norm as tree_update_moment_per_elem_norm
from gradtx.tree import vdot as tree_vdot
from gradtx.tree import where as tree_where
from gradtx.tree import zeros_like as tree_zeros_like

__all__ = [
    "NamedTupleKey",
    "tree_add",
    "tree_add_scalar_mul",
    "tree_add_scale",
    "tree_allclose",
    "tree_batch_shape",
    "tree_bias_correction",
    "tree_cast",
    "tree_cast_like",
    "tree_clip",
    "tree_conj",
    "tree_div",
    "tree_dtype",
    "tree_full_like",
    "tree_get",
    "tree_get_all_with_path",
    "tree_l1_norm",
    "tree_l2_norm",
    "tree_linf_norm",
    "tree_map_params",
    "tree_max",
    "tree_min",
    "tree_mul",
    "tree_norm",
    "tree_ones_like",
    "tree_random_like",
    "tree_real",
    "tree_scalar_mul",
    "tree_scale",
    "tree_set",
    "tree_size",
    "tree_split_key_like",
    "tree_sub",
    "tree_sum",
    "tree_unwrap_random_key_data",
    "tree_update_infinity_moment",
    "tree_update_moment",
    "tree_update_moment_per_elem_norm",
    "tree_vdot",
    "tree_where",
    "tree_zeros_like",
]

def _old_norm(name: str, order: int | str, formula: str, example: str, result: str) -> Callable[..., jax.Array]:
    """Optax's older spelling ``name(tree, squared=False)`` of ``tree_norm(tree, ord=order, squared=squared)``;
    ``formula``, ``example`` (the arguments) and ``result`` (what it prints) make its docstring."""

    def norm(tree: PyTree, squared: bool = False) -> jax.Array:
        return tree_norm(tree, ord=order, squared=squared)

    norm.__name__ = norm.__qualname__ = name
    norm.__doc__ = f"""``{formula}`` over every leaf: ``tree_norm(tree, ord={order!r})`` (Optax's older spelling).

    Args:
      tree: a pytree of arrays.
      squared: return the square of the norm (no square root for the l2 norm).

    Returns:
      A scalar (float32 or wider).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.tree_utils import {name}
      >>> float({name}({example}))
      {result}
    """
    return norm


tree_l1_norm = _old_norm("tree_l1_norm", 1, "sum |x|", "[jnp.array([1.0, -2.0]), jnp.array(3.0)]", "6.0")
tree_l2_norm = _old_norm("tree_l2_norm", 2, "sqrt(sum |x|^2)", '{"w": jnp.array([3.0, 4.0])}, squared=True', "25.0")
tree_linf_norm = _old_norm("tree_linf_norm", "inf", "max |x|", "[jnp.array([1.0, -5.0])]", "5.0")


def tree_scalar_mul(scalar: Scalar, tree: PyTree) -> PyTree:
    """``scalar * tree``: :func:`gradtx.tree.scale` under Optax's older name.

    Args:
      scalar: a real scalar.
      tree: a pytree of arrays.

    Returns:
      The scaled tree (each leaf keeps its dtype).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.tree_utils import tree_scalar_mul
      >>> tree_scalar_mul(2.0, [jnp.array(1.5)])[0].item()
      3.0
    """
    return tree_scale(scalar, tree)


def tree_add_scalar_mul(tree_x: PyTree, scalar: Scalar, tree_y: PyTree) -> PyTree:
    """``tree_x + scalar * tree_y``: :func:`gradtx.tree.add_scale` under Optax's older name.

    Args:
      tree_x: a pytree of arrays.
      scalar: a real scalar.
      tree_y: a pytree with the structure of ``tree_x``.

    Returns:
      The combined tree.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.tree_utils import tree_add_scalar_mul
      >>> tree_add_scalar_mul([jnp.array(1.0)], 2.0, [jnp.array(3.0)])[0].item()
      7.0
    """
    return tree_add_scale(tree_x, scalar, tree_y)
