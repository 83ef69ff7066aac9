"""GaLore: gradient low-rank projection (Zhao et al. 2024, arXiv 2403.03507, Algorithm 2).

For a matrix parameter (``m x n`` after reshaping by dimension numbers) with gradient ``G_k``, every
``update_proj_gap`` steps (from the first) the projector is refreshed from the SVD ``G_k = U S V^T``:

    m >= n:  P = U[:, :r]   (m x r),  R_k = P^T G_k  (r x n),  u = scale * P  N(R_k)
    m <  n:  P = V[:, :r]   (n x r),  R_k = G_k P    (m x r),  u = scale * N(R_k) P^T

with ``r = min(rank, m, n)`` and ``N`` the base optimizer (default ``scale_by_adam()``), whose state lives in
the low-rank space and is kept across refreshes (the paper's Algorithm 2). Other leaves go through the base
optimizer at full size. ``galore`` chains it with decoupled weight decay in the full space and the learning
rate, as ``optax.contrib.galore`` (same names, signatures, defaults and ``GaLoreState`` fields).

Deviations from Optax 0.2.8: the SVD runs in float32 or wider (Optax always uses float32, also for float64
parameters) and the projection matmuls too (Optax multiplies in the parameter dtype); each singular vector's
sign is fixed (its largest-magnitude entry is positive): the SVD's sign is arbitrary, and the base optimizer's
moments carried across a refresh would otherwise depend on the LAPACK build (the update right after a refresh
from zero moments does not depend on it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import GradientTransformation, Params, Updates, as_transformation, safe_int32_increment, zero_count
from gradtx.combine import chain
from gradtx.contrib._common import whole_numbers
from gradtx.fields import FrozenTree, hashable_tree, integer, option, pytree_class, real, recipe
from gradtx.transforms import add_decayed_weights, scale_by_adam, scale_by_learning_rate

__all__ = ["GaLoreDimensionNumbers", "GaLoreState", "galore", "scale_by_galore"]


class GaLoreDimensionNumbers(NamedTuple):
    """The axes of a leaf that form the rows (``reduction_axis``) and columns (``output_axis``) of its matrix;
    together they must name every axis."""

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


class GaLoreState(NamedTuple):
    """The step count, the base optimizer's state (on the low-rank gradients) and the projector of each
    projected leaf (a ``(0, 0)`` placeholder for the others)."""

    count: jax.Array
    base_optimizer_state: Any
    projector: Updates


def _is_dims(x: Any) -> bool:
    return isinstance(x, tuple) and getattr(x, "_fields", None) == ("reduction_axis", "output_axis")


class _Matrix(NamedTuple):
    perm: tuple[int, ...]
    rows: int
    cols: int


def _matrix(shape: tuple[int, ...], dims: Any) -> _Matrix:
    n = len(shape)
    if n < 2:
        raise ValueError(f"scale_by_galore: a leaf with dimension numbers {dims} must have rank >= 2, got {shape}")
    norm = lambda ax: tuple(int(a) % n for a in ((ax,) if isinstance(ax, (int, np.integer)) else ax))  # noqa: E731
    red, out = norm(dims.reduction_axis), norm(dims.output_axis)
    if set(red) & set(out) or sorted(red + out) != list(range(n)):
        raise ValueError(f"scale_by_galore: dimension numbers {dims} for shape {shape} must split every axis into "
                         "disjoint reduction and output axes")
    return _Matrix(red + out, math.prod(shape[a] for a in red), math.prod(shape[a] for a in out))


def _fix_signs(p: jax.Array) -> jax.Array:
    """Each column with its largest-magnitude entry positive."""
    if p.size == 0:
        return p
    idx = jnp.argmax(jnp.abs(p), axis=0)
    s = jnp.sign(p[idx, jnp.arange(p.shape[1])])
    return p * jnp.where(s == 0, jnp.ones_like(s), s)


@pytree_class
class scale_by_galore(GradientTransformation):
    """GaLore's projection around ``base_optimizer`` (equations in the module docstring).

    ``weight_dimension_numbers``: None (rank-2 leaves are projected), one :class:`GaLoreDimensionNumbers` for
    every leaf of rank >= 2, a tree of them (None: not projected), or a callable returning such a tree. The
    base optimizer must not need params (it sees low-rank arrays): ``scale_by_adam``, ``scale_by_lion``, ...

    Args:
      rank: the rank ``r`` of the projection, a whole number ``>= 1`` (static).
      update_proj_gap: the steps between projector refreshes, a whole number ``>= 1`` (static).
      scale: the factor of the projected-back update (finite).
      base_optimizer: the transformation run in the low-rank space (None: ``scale_by_adam()``).
      weight_dimension_numbers: which leaves are projected, and how they reshape to matrices (static).
    """

    rank: int = integer(default=128, lo=1, static=True)
    update_proj_gap: int = integer(default=200, lo=1, static=True)
    scale: Any = real(default=1.0)
    base_optimizer: Any = option(default=None, accepts="a transformation (None: scale_by_adam())", optional=True)
    weight_dimension_numbers: Any = option(
        default=None,
        accepts="None, a GaLoreDimensionNumbers, a tree of them (None: not projected) or a callable returning one",
        optional=True,
        static=True,
    )

    def __check_init__(self) -> None:
        whole_numbers(self, "rank", "update_proj_gap")
        base = scale_by_adam() if self.base_optimizer is None else self.base_optimizer
        object.__setattr__(self, "base_optimizer", as_transformation(base, "scale_by_galore"))
        spec = self.weight_dimension_numbers
        if spec is not None and not callable(spec):
            object.__setattr__(self, "weight_dimension_numbers", hashable_tree(spec))

    def _dims(self, params: Any) -> list[Any]:
        """Dimension numbers (or None) for every leaf of ``params``, in leaf order."""
        spec = self.weight_dimension_numbers
        spec = spec.tree if isinstance(spec, FrozenTree) else spec
        leaves = jax.tree.leaves(params)
        if spec is None:
            return [GaLoreDimensionNumbers() if jnp.ndim(x) == 2 else None for x in leaves]
        if _is_dims(spec):
            return [spec if jnp.ndim(x) >= 2 else None for x in leaves]
        if callable(spec):
            spec = spec(params)
        slots = jax.tree.map(lambda d, sub: jax.tree.map(lambda _: [d], sub), spec, params,
                             is_leaf=lambda x: x is None or _is_dims(x))
        return [s[0] for s in jax.tree.leaves(slots, is_leaf=lambda x: isinstance(x, list))]

    def _low_rank_shape(self, mat: _Matrix) -> tuple[tuple[int, int], tuple[int, int]]:
        r = min(self.rank, mat.rows, mat.cols)
        if mat.rows >= mat.cols:
            return (mat.rows, r), (r, mat.cols)
        return (mat.cols, r), (mat.rows, r)

    def init(self, params: Params) -> GaLoreState:
        leaves, treedef = jax.tree.flatten(params)
        projectors, proxies = [], []
        for x, d in zip(leaves, self._dims(params)):
            dt = jnp.result_type(x)
            if d is None:
                projectors.append(jnp.zeros((0, 0), dt))
                proxies.append(jnp.zeros_like(x))
                continue
            p_shape, r_shape = self._low_rank_shape(_matrix(tuple(jnp.shape(x)), d))
            projectors.append(jnp.zeros(p_shape, dt))
            proxies.append(jnp.zeros(r_shape, dt))
        return GaLoreState(
            count=zero_count(),
            base_optimizer_state=self.base_optimizer.init(jax.tree.unflatten(treedef, proxies)),
            projector=jax.tree.unflatten(treedef, projectors),
        )

    def update(self, updates: Updates, state: GaLoreState, params: Params | None = None, **extra: Any):
        del params
        leaves, treedef = jax.tree.flatten(updates)
        projectors = treedef.flatten_up_to(state.projector)
        dims = self._dims(updates)
        refresh = state.count % self.update_proj_gap == 0
        low, new_proj, mats = [], [], []
        for g, p, d in zip(leaves, projectors, dims):
            if d is None:
                low.append(g)
                new_proj.append(p)
                mats.append(None)
                continue
            mat = _matrix(tuple(jnp.shape(g)), d)
            x = tree.Leaf(g)
            g2 = jnp.transpose(x.cast(g), mat.perm).reshape(mat.rows, mat.cols)
            left = mat.rows >= mat.cols
            r = p.shape[1]

            def fresh(g2: jax.Array = g2, left: bool = left, r: int = r, p: jax.Array = p) -> jax.Array:
                u, _, vt = jnp.linalg.svd(g2, full_matrices=False)
                basis = u[:, :r] if left else vt[:r, :].T
                return _fix_signs(basis).astype(p.dtype)

            p = jax.lax.cond(refresh, fresh, lambda p=p: p)
            pc = x.cast(p)
            low.append(x.out(pc.T @ g2 if left else g2 @ pc))
            new_proj.append(p)
            mats.append((mat, left))
        low_updates, base_state = self.base_optimizer.update(
            jax.tree.unflatten(treedef, low), state.base_optimizer_state, None, **extra
        )
        out = []
        for g, n, p, info in zip(leaves, treedef.flatten_up_to(low_updates), new_proj, mats):
            if info is None:
                out.append(n)
                continue
            mat, left = info
            y = tree.Leaf(n)
            n32, pc = y.cast(n), y.cast(p)
            full = (pc @ n32 if left else n32 @ pc.T) * y.hyper(self.scale)
            shape = tuple(jnp.shape(g))
            full = jnp.transpose(full.reshape(tuple(shape[a] for a in mat.perm)),
                                 tuple(int(a) for a in np.argsort(mat.perm)))
            out.append(tree.Leaf(g).out(full))
        new_state = GaLoreState(count=safe_int32_increment(state.count), base_optimizer_state=base_state,
                                projector=jax.tree.unflatten(treedef, new_proj))
        return jax.tree.unflatten(treedef, out), new_state


@recipe
def galore(
    learning_rate: Any,
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: Any = 1.0,
    base_optimizer: Any = None,
    weight_decay: Any = 0.0,
    mask: Any = None,
    weight_dimension_numbers: Any = None,
) -> chain:
    """GaLore (Zhao et al. 2024): ``scale_by_galore``, decoupled weight decay in the full space, learning rate."""
    return chain(
        scale_by_galore(rank, update_proj_gap, scale, base_optimizer, weight_dimension_numbers),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
