"""Helpers the wrappers share: the dtype two leaves compute in, casts and state selection by a condition.

Nothing here is public API (``__all__`` is empty); the names carry no underscore because several wrapper
modules import them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import PyTree

__all__: list[str] = []


def wider_dtype(a: Any, b: Any) -> np.dtype:
    """The dtype both ``a`` and ``b`` compute in: each promoted to float32+, then the wider (no JAX promotion)."""
    ca, cb = tree.compute_dtype(a), tree.compute_dtype(b)
    return np.promote_types(ca, cb)  # NumPy's table on float32/64 and complex64/128 only: strict-mode safe


def cast_leaf(x: jax.Array, dtype: Any) -> jax.Array:
    """``x`` cast to ``dtype``, taking the real part first when casting complex to real."""
    x = jnp.asarray(x)
    dtype = np.dtype(dtype)
    if jnp.iscomplexobj(x) and not jnp.issubdtype(dtype, jnp.complexfloating):
        x = jnp.real(x)
    return x.astype(dtype)


def select_tree(cond: Any, new: PyTree, old: PyTree) -> PyTree:
    """``where(cond, new, old)`` leaf by leaf, stored in the dtype of ``old``."""
    return jax.tree.map(lambda n, o: jnp.where(cond, n, o).astype(jnp.result_type(o)), new, old)


def canonical_dtype(dtype: Any) -> Any:
    """``dtype`` as a NumPy dtype JAX can hold (float64 becomes float32 without x64); ``None`` stays ``None``."""
    return None if dtype is None else np.dtype(jax.dtypes.canonicalize_dtype(dtype))
