"""GaLore: gradient low-rank projection (Zhao et al. 2024, arXiv 2403.03507, Algorithm 2).

Zhao, Zhang, Chen, Wang, Anandkumar & Tian 2024, "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank
Projection", ICML. For a matrix parameter (``m x n`` after reshaping by dimension numbers) with gradient
``G_k``, every ``update_proj_gap`` steps (from the first) the projector is refreshed from the SVD
``G_k = U S V^T``, on the side ``proj_type`` chooses::

    'left':   P = U[:, :r]  (m x r),  R_k = P^T G_k    (r x n),  u = scale * P N(R_k)
    'right':  Q = V[:, :r]  (n x r),  R_k = G_k Q      (m x r),  u = scale * N(R_k) Q^T
    'full':   both,                   R_k = P^T G_k Q  (r x r),  u = scale * P N(R_k) Q^T
    'reverse_std' (the default): 'left' if m >= n else 'right'   (projects the longer side, as Optax)
    'std':                       'right' if m >= n else 'left'   (projects the shorter side, as the paper)

with ``r = min(rank, m, n)`` and ``N`` the base optimizer (default ``scale_by_adam()``), whose state lives in
the low-rank space and is kept across refreshes (the paper's Algorithm 2). Other leaves go through the base
optimizer at full size. ``galore`` chains it with decoupled weight decay in the full space and the learning
rate, as ``optax.contrib.galore`` (same names, signatures, defaults and ``GaLoreState`` fields).

The projection side. The paper's Algorithm 2 and the authors' code (``jiaweizzhao/GaLore``,
``galore_torch/galore_projector.py``, ``GaLoreProjector``, commit 2cc66f88cce189e505affbb91042a8e77f5bf4e9)
default to ``proj_type='std'``: the low-rank gradient has the shorter side's length ``min(m, n)`` times ``r``,
and the projector spans the shorter side. ``optax.contrib.galore`` 0.2.8 projects the longer side (the left
singular vectors when ``m >= n``, else the right ones), which is the authors' ``'reverse_std'``; gradtx's default
follows Optax (its signatures do), so ``proj_type='std'`` gives the authors' default. The authors' other types,
``'left'``, ``'right'`` and ``'full'``, are offered with their spellings. For a 2-D leaf, ``'full'`` keeps both
``P`` and ``Q`` in the one projector array, stacked as ``(m + n, r)``. At a refresh its ``r x r`` gradient
``P^T G Q`` is diagonal up to roundoff, and an elementwise base such as Adam magnifies those off-diagonal
roundoff entries by up to ``1 / eps`` (as in the authors' code).

Deviations from Optax 0.2.8: the SVD runs in float32 or wider (Optax always uses float32, also for float64
parameters) and the projection matmuls too (Optax multiplies in the parameter dtype); each singular vector's
sign is fixed (its largest-magnitude entry is positive): the SVD's sign is arbitrary, and the base optimizer's
moments carried across a refresh would otherwise depend on the LAPACK build (the update right after a refresh
from zero moments does not depend on it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    MaskOrFn,
    OptState,
    Params,
    Scalar,
    ScalarOrSchedule,
    TransformationLike,
    Updates,
    as_transformation,
    safe_int32_increment,
    zero_count,
)
from gradtx.combine import chain
from gradtx.contrib._common import whole_numbers
from gradtx.fields import FrozenTree, choice, hashable_tree, integer, option, pytree_class, real, recipe
from gradtx.transforms import add_decayed_weights, scale_by_adam, scale_by_learning_rate

__all__ = ["GaLoreDimensionNumbers", "GaLoreState", "galore", "scale_by_galore"]

PROJ_TYPES = ("reverse_std", "std", "left", "right", "full")
"""The values of ``proj_type``, the authors' spellings (``GaLoreProjector`` in ``jiaweizzhao/GaLore``)."""


class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a leaf form the rows and the columns of the matrix :class:`scale_by_galore` projects.

    The leaf is transposed to ``reduction_axis + output_axis`` and reshaped to ``(prod of the reduction axes,
    prod of the output axes)``; together the two must name every axis of the leaf (negative axes count from the
    end).

    Attributes:
      reduction_axis: the axis (an int) or axes (a sequence of ints) forming the rows ``m``. Default 0.
      output_axis: the axis or axes forming the columns ``n``. Default 1.

    Examples:
      >>> import gradtx
      >>> dims = gradtx.contrib.GaLoreDimensionNumbers(reduction_axis=(0, 1), output_axis=2)  # (h, w, c) -> (h w, c)
      >>> print(dims.reduction_axis, dims.output_axis)
      (0, 1) 2
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


class GaLoreState(NamedTuple):
    """The state of :class:`scale_by_galore` (Optax's field names).

    Attributes:
      count: the number of steps taken, an int32 scalar.
      base_optimizer_state: the base optimizer's state, made for the low-rank gradients.
      projector: per leaf, the projector of a projected leaf (``(m, r)`` for the left side, ``(n, r)`` for the
        right, ``(m + n, r)`` stacking both for ``proj_type='full'``), a ``(0, 0)`` placeholder for the others.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.scale_by_galore(rank=1).init({"w": jnp.zeros((4, 3)), "b": jnp.zeros(3)})
      >>> print(state.projector["w"].shape, state.projector["b"].shape)
      (4, 1) (0, 0)
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    base_optimizer_state: OptState
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

    def norm(ax: Any) -> tuple[int, ...]:
        return tuple(int(a) % n for a in ((ax,) if isinstance(ax, (int, np.integer)) else ax))

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
    """GaLore's projection around ``base_optimizer``: run it on low-rank projections of the matrix gradients.

    Equations in the module docstring (Zhao et al. 2024, "GaLore: Memory-Efficient LLM Training by Gradient
    Low-Rank Projection", ICML, arXiv 2403.03507, Algorithm 2). The base optimizer must not need params (it sees
    low-rank arrays): ``scale_by_adam``, ``scale_by_lion``, ... Its output is projected back and multiplied by
    ``scale``; follow with ``scale_by_learning_rate`` (see :func:`galore`). State: :class:`GaLoreState`.

    Args:
      rank: the rank ``r`` of the projection, a whole number ``>= 1`` (static). Default 128.
      update_proj_gap: the steps between projector refreshes, a whole number ``>= 1`` (static). Default 200.
      scale: the factor of the projected-back update (finite). Default 1.
      base_optimizer: the transformation run in the low-rank space, or None (``scale_by_adam()``). Default None.
      weight_dimension_numbers: which leaves are projected and how they reshape to matrices (static): None
        (rank-2 leaves are projected), one :class:`GaLoreDimensionNumbers` for every leaf of rank >= 2, a tree of
        them (None: not projected), or a callable ``params -> such a tree``. Default None.
      proj_type: which singular vectors project each matrix (static, keyword-only), the authors' names:
        ``'reverse_std'`` (the longer side: left when ``m >= n``, else right; Optax's behaviour),
        ``'std'`` (the shorter side; the paper's Algorithm 2 and the authors' default), ``'left'`` (always
        ``U``), ``'right'`` (always ``V``) or ``'full'`` (both: ``P^T G Q``, an ``r x r`` low-rank gradient).
        Default ``'reverse_std'``.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_galore(rank=0): rank must be a whole number >= 1`` or
        ``scale_by_galore(proj_type='x'): proj_type must be one of 'reverse_std', 'std', 'left', 'right',
        'full'``; at ``init`` or ``update``, dimension numbers that do not fit a leaf (``scale_by_galore:
        dimension numbers ... for shape ... must split every axis into disjoint reduction and output axes``).
      TypeError: ``base_optimizer`` is not a transformation (``scale_by_galore: expected a transformation with
        init and update, got 3``), or an option of the wrong type.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_galore(rank=1, base_optimizer=gradtx.identity())
      >>> state = tx.init(jnp.zeros((2, 2)))
      >>> updates, state = tx.update(jnp.array([[3.0, 0.0], [0.0, 1.0]]), state)
      >>> print(updates)  # the rank-1 projection P P^T G of G
      [[3. 0.]
       [0. 0.]]
      >>> tall = jnp.array([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # m = 3 > n = 2
      >>> for proj_type in ("reverse_std", "std"):  # Optax's projector (3 x 1), the authors' default (2 x 1)
      ...     print(gradtx.contrib.scale_by_galore(rank=1, proj_type=proj_type).init(tall).projector.shape)
      (3, 1)
      (2, 1)
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "it projects each matrix onto its own low-rank subspace"

    rank: int = integer(default=128, lo=1, static=True)
    update_proj_gap: int = integer(default=200, lo=1, static=True)
    scale: Scalar = real(default=1.0)
    base_optimizer: TransformationLike | None = option(
        default=None, accepts="a transformation (None: scale_by_adam())", optional=True
    )
    weight_dimension_numbers: Any = option(
        default=None,
        accepts="None, a GaLoreDimensionNumbers, a tree of them (None: not projected) or a callable returning one",
        optional=True,
        static=True,
    )
    proj_type: str = choice(default="reverse_std", choices=PROJ_TYPES, kw_only=True)

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

    def _side(self, mat: _Matrix) -> str:
        """Which singular vectors project this matrix: ``'left'``, ``'right'`` or ``'full'`` (both)."""
        if self.proj_type == "std":
            return "right" if mat.rows >= mat.cols else "left"
        if self.proj_type == "reverse_std":
            return "left" if mat.rows >= mat.cols else "right"
        return self.proj_type

    def _low_rank_shape(self, mat: _Matrix) -> tuple[tuple[int, int], tuple[int, int]]:
        r = min(self.rank, mat.rows, mat.cols)
        side = self._side(mat)
        if side == "left":
            return (mat.rows, r), (r, mat.cols)
        if side == "right":
            return (mat.cols, r), (mat.rows, r)
        return (mat.rows + mat.cols, r), (r, r)

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
            base_optimizer_state=cast(TransformationLike, self.base_optimizer).init(
                jax.tree.unflatten(treedef, proxies)
            ),
            projector=jax.tree.unflatten(treedef, projectors),
        )

    def update(
        self, updates: Updates, state: GaLoreState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, GaLoreState]:
        del params
        leaves, treedef = jax.tree.flatten(updates)
        projectors = treedef.flatten_up_to(state.projector)  # type: ignore[attr-defined]  # jaxlib: no PyTreeDef stub
        dims = self._dims(updates)
        refresh = state.count % self.update_proj_gap == 0
        low: list[Any] = []
        new_proj: list[Any] = []
        mats: list[tuple[_Matrix, str] | None] = []
        for g, p, d in zip(leaves, projectors, dims):
            if d is None:
                low.append(g)
                new_proj.append(p)
                mats.append(None)
                continue
            mat = _matrix(tuple(jnp.shape(g)), d)
            x = tree.Leaf(g)
            g2 = jnp.transpose(x.cast(g), mat.perm).reshape(mat.rows, mat.cols)
            side = self._side(mat)
            r = p.shape[1]

            def fresh(g2: jax.Array = g2, side: str = side, r: int = r, p: jax.Array = p) -> jax.Array:
                u, _, vt = jnp.linalg.svd(g2, full_matrices=False)
                if side == "left":
                    basis = _fix_signs(u[:, :r])
                elif side == "right":
                    basis = _fix_signs(vt[:r, :].T)
                else:
                    basis = jnp.concatenate([_fix_signs(u[:, :r]), _fix_signs(vt[:r, :].T)], axis=0)
                return basis.astype(p.dtype)

            p = jax.lax.cond(refresh, fresh, lambda p=p: p)
            pc = x.cast(p)
            if side == "left":
                r2 = pc.T @ g2
            elif side == "right":
                r2 = g2 @ pc
            else:
                r2 = pc[: mat.rows].T @ g2 @ pc[mat.rows:]
            low.append(x.out(r2))
            new_proj.append(p)
            mats.append((mat, side))
        low_updates, base_state = cast(TransformationLike, self.base_optimizer).update(
            jax.tree.unflatten(treedef, low), state.base_optimizer_state, None, **extra
        )
        out = []
        low_leaves = treedef.flatten_up_to(low_updates)  # type: ignore[attr-defined]  # jaxlib: no PyTreeDef stub
        for g, n, p, info in zip(leaves, low_leaves, new_proj, mats):
            if info is None:
                out.append(n)
                continue
            mat, side = info
            y = tree.Leaf(n)
            n32, pc = y.cast(n), y.cast(p)
            if side == "left":
                full = pc @ n32
            elif side == "right":
                full = n32 @ pc.T
            else:
                full = pc[: mat.rows] @ n32 @ pc[mat.rows:].T
            full = full * y.hyper(self.scale)
            shape = tuple(jnp.shape(g))
            full = jnp.transpose(full.reshape(tuple(shape[a] for a in mat.perm)),
                                 tuple(int(a) for a in np.argsort(mat.perm)))
            out.append(tree.Leaf(g).out(full))
        new_state = GaLoreState(count=safe_int32_increment(state.count), base_optimizer_state=base_state,
                                projector=jax.tree.unflatten(treedef, new_proj))
        return jax.tree.unflatten(treedef, out), new_state


@recipe
def galore(
    learning_rate: ScalarOrSchedule,
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: Scalar = 1.0,
    base_optimizer: TransformationLike | None = None,
    weight_decay: Scalar = 0.0,
    mask: MaskOrFn = None,
    weight_dimension_numbers: Any = None,
    *,
    proj_type: str = "reverse_std",
) -> chain:
    """GaLore (Zhao et al. 2024): a base optimizer on low-rank gradient projections, with decoupled weight decay.

    ``scale_by_galore -> add_decayed_weights -> scale_by_learning_rate``: ``u = -lr (scale P N(P^T G) +
    weight_decay theta)`` for a matrix leaf (see :class:`scale_by_galore` and the module docstring), the weight
    decay in the full space. Zhao, Zhang, Chen, Wang, Anandkumar & Tian 2024, "GaLore: Memory-Efficient LLM
    Training by Gradient Low-Rank Projection", ICML, arXiv 2403.03507. Signature and defaults of
    ``optax.contrib.galore``.

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count.
      rank: the rank of the projection, a whole number ``>= 1``. Default 128.
      update_proj_gap: the steps between projector refreshes, a whole number ``>= 1``. Default 200.
      scale: the factor of the projected-back update (finite). Default 1.
      base_optimizer: the transformation run in the low-rank space, or None (``scale_by_adam()``). Default None.
      weight_decay: the decoupled weight decay ``>= 0`` (multiplied by the learning rate). Default 0.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.
      weight_dimension_numbers: which leaves are projected (see :class:`scale_by_galore`). Default None (the
        rank-2 leaves).
      proj_type: the projection side (keyword-only): ``'reverse_std'`` (the longer side, Optax's behaviour),
        ``'std'`` (the shorter side: the paper's Algorithm 2 and the authors' default ``GaLoreProjector``),
        ``'left'``, ``'right'`` or ``'full'`` (see :class:`scale_by_galore`). Default ``'reverse_std'``; pass
        ``proj_type='std'`` for the authors' default.

    Returns:
      A ``chain`` of the three blocks; its state is ``(GaLoreState, EmptyState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``galore(rank=0): rank must be a whole number >= 1`` or
        ``galore(proj_type='x'): proj_type must be one of 'reverse_std', 'std', 'left', 'right', 'full'``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.galore(learning_rate=0.1, rank=1)
      >>> params = jnp.zeros((2, 2))
      >>> updates, state = opt.update(jnp.array([[3.0, 0.0], [0.0, 1.0]]), opt.init(params), params)
      >>> print(updates[0, 0], state[0].projector.shape)  # Adam's -lr sign on the rank-1 projection
      -0.1 (2, 1)
      >>> opt = gradtx.contrib.galore(learning_rate=0.1, rank=1, proj_type="std")  # the authors' default
      >>> print(opt.init(jnp.zeros((3, 2)))[0].projector.shape)  # the shorter side's (n x r) projector
      (2, 1)
    """
    return chain(
        scale_by_galore(rank, update_proj_gap, scale, base_optimizer, weight_dimension_numbers, proj_type=proj_type),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
