"""Normalisation blocks: clip, rescale or centre each update by a norm of its block (a leaf), its units, or
the whole tree; trust ratios; distance over gradients; non-negativity and NaN guards.

A *block* is one leaf of the pytree (a weight matrix, a bias vector). ``||x||`` is the l2 (Frobenius) norm of
a whole leaf, ``rms(x) = sqrt(mean(|x|^2))``; norms accumulate in float32 or wider whatever the dtype.

    clip_by_block_rms(c):              u = g / max(1, rms(g) / c)                            per leaf
    adaptive_grad_clip(l, eps, axis):  u = g                          where ||g||_unit <  l max(||p||_unit, eps)
                                       u = g l max(||p||_unit, eps) / ||g||_unit   elsewhere  (Brock et al. 2021)
    normalize_by_update_norm(s, e):    u = s g / (||g||_tree + e)                           the whole tree
    centralize():                      u = g - mean(g over axes 1..ndim-1)                  (Yong et al. 2020)
    scale_by_param_block_norm(m):      u = g max(||p||, m)
    scale_by_param_block_rms(m):       u = g max(rms(p), m)
    scale_by_trust_ratio(m, c, e):     u = g c max(||p||, m) / (max(||g||, m) + e)   (u = g where a norm is 0)
    scale_by_distance_over_gradients:  u = s rbar_k / sqrt(G_k + eps) g                     (layer-wise DoG)
    keep_params_nonnegative():         u = -p where p + g < 0, else g
    zero_nans():                       u = 0 where g is NaN, else g

Functions (not transformations, as in Optax): ``unitwise_norm``, ``unitwise_clip`` (the pieces of
``adaptive_grad_clip``), ``per_example_global_norm_clip`` and ``per_example_layer_norm_clip`` (differential
privacy's per-example clipping: gradients with a leading batch axis in, the summed clipped gradient out).

Every norm here (per leaf, per unit, per example, of the whole tree) is ``gradtx.tree.ops.l2_norm``'s: it
neither overflows nor underflows (a float32 gradient of 1e20 has norm 1e20, not inf, and one of 1e-25 has
norm 1e-25, not 0) and is the plain ``sqrt(sum |x|^2)`` bit for bit for ordinary magnitudes; its derivative
at 0 is 0. ``normalize_by_update_norm`` with ``eps = 0`` maps a zero update to 0 (not NaN), the trust ratio's
unused division sees 1 (finite derivatives at zero blocks), and DoG's step is 0 for ``G = 0`` with ``eps = 0``
and NaN once its sum of squares overflowed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from gradtx import tree
from gradtx.base import (
    EmptyState,
    GradientTransformation,
    Params,
    Scalar,
    StatelessTransformation,
    Updates,
    check_tree_match,
    require_params,
)
from gradtx.fields import Check, dtype_option, non_negative, option, positive, pytree_class, real
from gradtx.tree.ops import l2_norm, leaves_norm
from gradtx.tree.precision import safe_sqrt, scale_ratio

__all__ = [
    "NonNegativeParamsState",
    "ScaleByDistanceOverGradientsState",
    "ZeroNansState",
    "adaptive_grad_clip",
    "centralize",
    "clip_by_block_rms",
    "keep_params_nonnegative",
    "normalize_by_update_norm",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
    "scale_by_distance_over_gradients",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
    "scale_by_trust_ratio",
    "unitwise_clip",
    "unitwise_norm",
    "zero_nans",
]


NonNegativeParamsState = EmptyState  # Optax's name for the (empty) state of keep_params_nonnegative


class ZeroNansState(NamedTuple):
    """The state of ``zero_nans``.

    Attributes:
      found_nan: one boolean scalar per parameter leaf, True iff the last update had a NaN there.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.zero_nans()
      >>> updates = {"a": jnp.array([1.0, jnp.nan]), "b": jnp.ones(1)}
      >>> _, state = tx.update(updates, tx.init(updates))
      >>> print(state.found_nan["a"], state.found_nan["b"])
      True False
    """

    found_nan: Updates


class ScaleByDistanceOverGradientsState(NamedTuple):
    """The state of ``scale_by_distance_over_gradients`` (DoG): scalars per parameter leaf, and ``x_0``.

    Attributes:
      max_dist: per leaf, the running maximum distance ``rbar_k`` from the initial parameters (a scalar in
        the parameter's real compute dtype).
      grad_sum_of_squares: per leaf, the running sum ``G_k`` of squared gradient norms (a scalar).
      init_params: the initial parameters ``x_0``, stored in ``param_dtype``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_distance_over_gradients(reps_rel=0.1)
      >>> params = jnp.array([3.0, 4.0])
      >>> _, state = tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)
      >>> print(state.max_dist, state.grad_sum_of_squares, state.init_params)  # 0.1 (1 + ||x_0||), ||g||^2
      0.6 25.0 [3. 4.]
    """

    max_dist: Updates
    grad_sum_of_squares: Updates
    init_params: Params


# --------------------------------------------------------------------------------------------------
# Helpers: per-leaf norms in the compute dtype.
# --------------------------------------------------------------------------------------------------


def _sq_norm(x: Any) -> jax.Array:
    """``sum |x|^2`` over the whole leaf, in its real compute dtype."""
    return jnp.sum(tree.Leaf(x).abs_sq(x))


def _norm(x: Any) -> jax.Array:
    """``||x||`` over the whole leaf, without overflow or underflow (``gradtx.tree.ops.l2_norm``)."""
    return l2_norm(x)


def _rms(x: Any) -> jax.Array:
    """``sqrt(mean |x|^2)`` over the whole leaf, without overflow or underflow."""
    return l2_norm(x, mean=True)


def _floor(value: jax.Array, floor: Any) -> jax.Array:
    """``floor`` where ``value <= floor``, else ``value`` (Optax's safe_norm: NaN stays NaN)."""
    floor = jnp.asarray(floor, value.dtype)
    return jnp.where(value <= floor, floor, value)


def _unit_axes(x: jax.Array, axis: Any, where: str) -> Any:
    """The axes ``unitwise_norm`` sums over (``None``: all of them), by Optax's rank conventions."""
    if axis is not None:
        return axis
    if jnp.squeeze(x).ndim <= 1:  # scalars and vectors (size-1 axes ignored): the whole array
        return None
    if x.ndim in (2, 3):  # linear kernels (in, out) and multi-head kernels: one unit per trailing index
        return (0,)
    if x.ndim == 4:  # conv kernels HWIO
        return (0, 1, 2)
    if x.ndim == 5:  # 3-D conv kernels DHWIO
        return (0, 1, 2, 3)
    raise ValueError(
        f"{where}: expected an array of rank at most 5 without axis, got shape {tuple(x.shape)}; "
        "pass axis= to name the reduction axes"
    )


def _unitwise_norm(x: Any, axis: Any, where: str) -> jax.Array:
    """Per-unit l2 norms broadcast to ``x.shape``, in the real compute dtype of ``x``."""
    x = jnp.asarray(x)
    return jnp.broadcast_to(l2_norm(x, axis=_unit_axes(x, axis, where), keepdims=True), x.shape)


def _valid_axis(axis: Any) -> bool:
    def is_int(a: Any) -> bool:
        return isinstance(a, (int, np.integer)) and not isinstance(a, bool)

    return axis is None or is_int(axis) or (isinstance(axis, tuple) and all(is_int(a) for a in axis))


# --------------------------------------------------------------------------------------------------
# Functions: unit-wise norms and clipping, per-example clipping.
# --------------------------------------------------------------------------------------------------


def unitwise_norm(x: ArrayLike, axis: int | tuple[int, ...] | None = None) -> jax.Array:
    """The l2 norm of each *unit* of ``x``, broadcast back to ``x.shape``.

    A unit is a slice of ``x`` along ``axis``. With ``axis=None`` the axes follow layer conventions (as in
    Optax): scalars and vectors (after squeezing size-1 axes) are one unit; rank 2 and 3 (linear ``(in, out)``
    and multi-head kernels) sum over axis 0; rank 4 (``HWIO`` conv kernels) over ``(0, 1, 2)``; rank 5
    (``DHWIO``) over ``(0, 1, 2, 3)``; other ranks need ``axis``. The norm neither overflows nor underflows
    (``gradtx.tree.ops.l2_norm``). The piece of ``adaptive_grad_clip`` (Brock et al. 2021) that measures.

    Args:
      x: an array.
      axis: the axes summed over, an int or a tuple of ints, or ``None`` (the default) for the conventions.

    Returns:
      The per-unit norms, shape ``x.shape``, in the real compute dtype of ``x`` (float32 or wider).

    Raises:
      ValueError: for ``axis=None`` and an array of rank above 5 (``unitwise_norm: expected an array of rank
        at most 5 without axis, got shape (...); pass axis= to name the reduction axes``).

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.transforms.normalization import unitwise_norm
      >>> print(unitwise_norm(jnp.array([[3.0, 0.0], [4.0, 1.0]])))  # one unit per column
      [[5. 1.]
       [5. 1.]]
    """
    return _unitwise_norm(x, axis, "unitwise_norm")


def unitwise_clip(g_norm: ArrayLike, max_norm: ArrayLike, grad: ArrayLike, div_eps: Scalar = 1e-6) -> jax.Array:
    """Clip ``grad`` unit by unit: ``grad`` where ``g_norm < max_norm``, else ``grad * max_norm / max(g_norm,
    div_eps)``.

    The piece of ``adaptive_grad_clip`` (Brock et al. 2021) that clips, given the unit norms (see
    :func:`unitwise_norm`) broadcast to ``grad``'s shape.

    Args:
      g_norm: the norm of ``grad``'s unit at each position, an array shaped like ``grad``.
      max_norm: the clipping bound at each position, an array shaped like ``grad``.
      grad: the array to clip.
      div_eps: the smallest divisor, guarding the division only, >= 0. Default 1e-6.

    Returns:
      The clipped array, in the dtype of ``grad``.

    Raises:
      ValueError: if the three arrays do not have the same shape (``unitwise_clip: the shapes differ: ...``).

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.transforms.normalization import unitwise_clip
      >>> print(unitwise_clip(jnp.array([5.0, 1.0]), jnp.array([1.0, 2.0]), jnp.array([3.0, 1.0])))
      [0.6 1. ]
    """
    shapes = {"g_norm": jnp.shape(g_norm), "max_norm": jnp.shape(max_norm), "grad": jnp.shape(grad)}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"unitwise_clip: the shapes differ: {shapes}")
    grad = jnp.asarray(grad)
    x = tree.Leaf(grad)
    g, gn, mx = x.cast(grad), x.as_real(g_norm), x.as_real(max_norm)
    clipped = g * (mx / jnp.maximum(gn, x.hyper(div_eps)))
    return x.out(jnp.where(gn < mx, g, clipped))


_CLIP_NORM = Check("number", lo=0.0)  # the clip norm of the per-example functions: a real number >= 0


def _check_batch(call: str, leaves: list[Any]) -> None:
    shapes = [tuple(jnp.shape(g)) for g in leaves]
    if any(len(s) == 0 for s in shapes) or len({s[0] for s in shapes}) > 1:
        raise ValueError(
            f"{call}: every array of grads must have the same leading batch axis (per-example gradients); "
            f"got shapes {shapes}"
        )


def _out_dtype(g: jax.Array) -> np.dtype:
    """The dtype a summed gradient is returned in: the input's if inexact, float32 for integer input."""
    dt = np.dtype(g.dtype)
    return dt if jnp.issubdtype(dt, jnp.inexact) else tree.compute_dtype(dt)


def per_example_global_norm_clip(grads: Updates, l2_norm_clip: Scalar) -> tuple[Updates, jax.Array]:
    """Clip each example's gradient to global l2 norm ``l2_norm_clip`` and sum over the batch.

    ``grads`` holds per-example gradients: every leaf has the same leading batch axis ``B``. For example
    ``i``, ``n_i = ||(g_leaf[i])_leaves||`` over all leaves and ``m_i = min(1, l2_norm_clip / n_i)`` (1 when
    that is NaN, i.e. ``0 / 0``); the result is ``sum_i m_i g[i]``, DP-SGD's clipped sum (Abadi et al. 2016,
    "Deep Learning with Differential Privacy", CCS, arXiv 1607.00133). An empty tree gives ``(grads, 0)``.

    Args:
      grads: the per-example gradients, a pytree whose leaves share a leading batch axis.
      l2_norm_clip: the largest global norm of one example's gradient, a real number >= 0.

    Returns:
      ``(summed, num_clipped)``: the clipped gradients summed over the batch (the tree of ``grads`` without
      the batch axis; each leaf's dtype, float32 for integer input) and the number of examples with
      ``m_i < 1`` (an int32 scalar).

    Raises:
      ValueError: for a negative or NaN ``l2_norm_clip`` (``per_example_global_norm_clip(l2_norm_clip=-1.0):
        l2_norm_clip must be >= 0``), or leaves without a common leading batch axis.
      TypeError: for an ``l2_norm_clip`` that is not a real number.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.transforms.normalization import per_example_global_norm_clip
      >>> grads = jnp.array([[6.0, 8.0], [1.0, 2.0]])  # two examples, norms 10 and 2.24
      >>> summed, num_clipped = per_example_global_norm_clip(grads, 5.0)
      >>> print(summed, num_clipped)  # [3, 4] (clipped) + [1, 2]
      [4. 6.] 1
    """
    call = "per_example_global_norm_clip"
    _CLIP_NORM(call, "l2_norm_clip", l2_norm_clip)
    leaves, treedef = jax.tree.flatten(grads)
    if not leaves:
        return grads, jnp.zeros([], jnp.int32)
    leaves = [jnp.asarray(g) for g in leaves]
    _check_batch(call, leaves)
    acc = tree.widest_real_dtype(leaves)
    norms = leaves_norm(leaves, acc, batched=True)
    ratio = jnp.minimum(jnp.asarray(l2_norm_clip, acc) / norms, jnp.ones([], acc))
    multipliers = jnp.where(jnp.isnan(ratio), jnp.ones([], acc), ratio)
    num_clipped = jnp.sum(multipliers < 1.0, dtype=jnp.int32)

    def clipped_sum(g: jax.Array) -> jax.Array:
        x = tree.Leaf(g)
        return jnp.tensordot(x.as_real(multipliers), x.cast(g), axes=1).astype(_out_dtype(g))

    return jax.tree.unflatten(treedef, [clipped_sum(g) for g in leaves]), num_clipped


def per_example_layer_norm_clip(
    grads: Updates, global_l2_norm_clip: Scalar, uniform: bool = True
) -> tuple[Updates, Updates]:
    """Per-example clipping with one clip norm per layer (leaf), then the sum over the batch.

    With ``K`` leaves and ``C = global_l2_norm_clip``, leaf ``i`` is clipped (as by
    :func:`per_example_global_norm_clip`) to ``C / sqrt(K)`` if ``uniform``, else to ``C sqrt(D_i / D)``
    where ``D_i`` is the per-example size of the leaf and ``D`` their total (McMahan, Ramage, Talwar & Zhang
    2018, "Learning Differentially Private Recurrent Language Models", ICLR, arXiv 1710.06963). Either way the
    clipped per-example global norm is at most ``C``.

    Args:
      grads: the per-example gradients, a pytree whose leaves share a leading batch axis.
      global_l2_norm_clip: ``C``, the bound on each example's global norm, a real number >= 0.
      uniform: the same clip norm for every leaf; False splits ``C`` by the leaves' sizes. Default True.

    Returns:
      ``(summed, num_clipped)``: the tree of summed clipped gradients and the tree of per-leaf int32 counts of
      clipped examples.

    Raises:
      ValueError: for a negative or NaN ``global_l2_norm_clip``, or leaves without a common leading batch axis.
      TypeError: for a ``global_l2_norm_clip`` that is not a real number.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.transforms.normalization import per_example_layer_norm_clip
      >>> grads = {"a": jnp.array([[3.0], [0.3]]), "b": jnp.array([[4.0], [0.4]])}
      >>> summed, counts = per_example_layer_norm_clip(grads, 2.0 ** 0.5)  # each leaf clipped to norm 1
      >>> print(summed["a"], summed["b"], counts["a"], counts["b"])
      [1.3] [1.4] 1 1
    """
    call = "per_example_layer_norm_clip"
    _CLIP_NORM(call, "global_l2_norm_clip", global_l2_norm_clip)
    leaves, treedef = jax.tree.flatten(grads)
    leaves = [jnp.asarray(g) for g in leaves]
    if leaves:
        _check_batch(call, leaves)
    if uniform:
        clips = [global_l2_norm_clip * (1.0 / len(leaves)) ** 0.5 for _ in leaves]
    else:
        sizes = [int(np.prod(g.shape[1:])) for g in leaves]
        total = sum(sizes)
        clips = [global_l2_norm_clip * (d / total) ** 0.5 if total else global_l2_norm_clip for d in sizes]
    pairs = [per_example_global_norm_clip(g, c) for g, c in zip(leaves, clips)]
    return jax.tree.unflatten(treedef, [s for s, _ in pairs]), jax.tree.unflatten(treedef, [n for _, n in pairs])


# --------------------------------------------------------------------------------------------------
# Blocks.
# --------------------------------------------------------------------------------------------------


class _ByParams(StatelessTransformation):
    """A stateless block that maps :meth:`_leaf` over each update leaf and its parameter leaf: ``update``
    requires ``params`` shaped like the updates (errors name ``<block>.update``)."""

    def _leaf(self, u: Any, p: Any) -> Any:
        raise NotImplementedError

    def update(
        self, updates: Updates, state: EmptyState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, EmptyState]:
        del extra
        call = f"{type(self).__name__}.update"
        require_params(call, params)
        check_tree_match(call, params, updates, what="updates (against params)")
        return jax.tree.map(self._leaf, updates, params), state


@pytree_class
class clip_by_block_rms(StatelessTransformation):
    """Rescale each block (leaf) so its root mean square is at most ``threshold``.

    ``u = g / max(1, rms(g) / threshold)`` with ``rms(g) = sqrt(mean(|g|^2))`` over the whole leaf: blocks
    under the threshold pass unchanged, the others are scaled down to exactly ``rms(u) = threshold``.
    Stateless (state ``EmptyState()``). ``clips(updates)`` says whether ``update`` would change ``updates``.

    Args:
      threshold: the largest rms of a block, > 0.

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState``.

    Raises:
      ValueError: at construction, for a ``threshold`` that is not positive (``clip_by_block_rms(
        threshold=0.0): threshold must be > 0``).
      TypeError: at construction, for a ``threshold`` that is not a real number.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.clip_by_block_rms(1.0)
      >>> updates, state = tx.update(jnp.array([3.0, -3.0, 3.0, -3.0]), tx.init(None))
      >>> print(updates)  # rms 3 becomes 1
      [ 1. -1.  1. -1.]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "it clips each leaf by its own RMS"

    threshold: Scalar = positive()

    def update(
        self, updates: Updates, state: EmptyState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, EmptyState]:
        del params, extra

        def one(g: Any) -> Any:
            x, rms = tree.Leaf(g), _rms(g)
            denom = jnp.maximum(jnp.ones([], rms.dtype), rms / x.hyper(self.threshold))
            return x.out(x.cast(g) / denom)

        return jax.tree.map(one, updates), state

    def clips(self, updates: Updates, params: Params | None = None) -> jax.Array:
        """Whether ``update`` would change ``updates`` now: some block's rms exceeds ``threshold`` (a boolean
        scalar; NaN does not count)."""
        del params
        out = jnp.zeros([], jnp.bool_)
        for g in jax.tree.leaves(updates):
            rms = _rms(g)
            out = jnp.logical_or(out, rms > tree.Leaf(g).hyper(self.threshold).astype(rms.dtype))
        return out


@pytree_class
class adaptive_grad_clip(_ByParams):
    """Adaptive gradient clipping (AGC; Brock, De, Smith & Simonyan 2021, "High-Performance Large-Scale Image
    Recognition Without Normalization", ICML, arXiv 2102.06171, eq. 3).

    For each unit (see :func:`unitwise_norm`; ``axis`` overrides the conventions), with
    ``||W||* = max(||W||_unit, eps)``::

        u = g                                         if ||g||_unit < clipping ||W||*
        u = g clipping ||W||* / ||g||_unit            otherwise (the division guarded by max(., 1e-6))

    ``eps`` keeps zero-initialised parameters (biases) from freezing. As in Optax, with the default
    conventions a linear kernel ``(in, out)`` has one unit per output column; the paper's "unit-wise" rows of
    ``W`` in its ``(out, in)`` layout are the same units. Stateless; ``update`` needs ``params``.
    ``clips(updates, params)`` says whether ``update`` would change ``updates``.

    Args:
      clipping: the largest ratio of a unit's gradient norm to its parameter norm, >= 0.
      eps: the smallest parameter norm used, >= 0. Default 1e-3.
      axis: the axes of a unit's norm, an int or a tuple of ints, or ``None`` (the default) for the layer
        conventions of :func:`unitwise_norm`. Not in Optax.

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState``.

    Raises:
      ValueError: at construction, for a value out of range (``adaptive_grad_clip(clipping=-1.0): clipping
        must be >= 0``, ``axis must be None, an int or a tuple of ints``); in ``update``, without params, or
        for a leaf of rank above 5 without ``axis``.
      TypeError: at construction, for a ``clipping`` or ``eps`` that is not a real number; in ``update``, for
        updates whose tree differs from the params'.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.adaptive_grad_clip(0.1)
      >>> params = jnp.array([3.0, 4.0])  # one unit of norm 5: the bound is 0.5
      >>> updates, state = tx.update(jnp.array([30.0, 40.0]), tx.init(params), params)
      >>> print(updates)
      [0.3 0.4]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "it clips per unit of each leaf (norms along the leaf's dimensions)"

    clipping: Scalar = non_negative()
    eps: Scalar = non_negative(default=1e-3)
    axis: int | tuple[int, ...] | None = option(
        default=None, accepts="None, an int or a tuple of ints", static=True, optional=True
    )

    def __check_init__(self) -> None:
        if isinstance(self.axis, list):
            object.__setattr__(self, "axis", tuple(self.axis))
        if not _valid_axis(self.axis):
            self._fail("axis", self.axis, "must be None, an int or a tuple of ints")

    def _max_norm(self, g: Any, p: Any, where: str) -> tuple[jax.Array, jax.Array]:
        """``||g||_unit`` and the clipping bound ``clipping max(||p||_unit, eps)``, both broadcast to ``g``."""
        x = tree.Leaf(g)
        g_norm = _unitwise_norm(g, self.axis, where)
        p_norm = _unitwise_norm(p, self.axis, where).astype(g_norm.dtype)
        return g_norm, x.hyper(self.clipping) * jnp.maximum(p_norm, x.hyper(self.eps))

    def _leaf(self, g: Any, p: Any) -> Any:
        g_norm, max_norm = self._max_norm(g, p, "adaptive_grad_clip.update")
        return unitwise_clip(g_norm, max_norm, g)

    def clips(self, updates: Updates, params: Params | None = None) -> jax.Array:
        """Whether ``update`` would change ``updates`` now: some unit's norm exceeds ``clipping * max(||p||_unit,
        eps)`` (a boolean scalar; NaN does not count). Needs ``params``, as ``update`` does."""
        require_params("adaptive_grad_clip.update", params)
        check_tree_match("adaptive_grad_clip.clips", params, updates, what="updates (against params)")
        out = jnp.zeros([], jnp.bool_)
        for g, p in zip(jax.tree.leaves(updates), jax.tree.leaves(params)):
            g_norm, max_norm = self._max_norm(g, p, "adaptive_grad_clip.clips")
            out = jnp.logical_or(out, jnp.any(g_norm > max_norm.astype(g_norm.dtype)))
        return out


@pytree_class
class normalize_by_update_norm(StatelessTransformation):
    """Divide by the global norm of the update: ``u = scale_factor * g / (||g|| + eps)``.

    ``||g||`` is the l2 norm of all leaves together (without overflow or underflow); with ``eps = 0`` a zero
    update gives 0, not NaN. ``scale_factor=-1`` gives normalised gradient descent with step 1 (then scale by
    a learning rate with ``flip_sign=False``). Stateless (state ``EmptyState()``).

    Args:
      scale_factor: the norm of the output, a finite real number. Default 1.0.
      eps: added to the norm, >= 0. Default 1e-6.

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState``.

    Raises:
      ValueError: at construction, for a value out of range (``normalize_by_update_norm(eps=-1.0): eps must be
        >= 0``) or a non-finite ``scale_factor``.
      TypeError: at construction, for a hyperparameter that is not a real number.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.normalize_by_update_norm(eps=0.0)
      >>> updates, state = tx.update(jnp.array([3.0, 4.0]), tx.init(None))
      >>> print(updates)
      [0.6 0.8]
    """

    scale_factor: Scalar = real(default=1.0)
    eps: Scalar = non_negative(default=1e-6)

    def update(
        self, updates: Updates, state: EmptyState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, EmptyState]:
        del params, extra
        g_norm = tree.norm(updates)

        def one(g: Any) -> Any:
            x = tree.Leaf(g)
            factor = scale_ratio(x.hyper(self.scale_factor), x.hyper(g_norm) + x.hyper(self.eps))  # 0 for 0 / 0
            return x.out(x.cast(g) * factor)

        return jax.tree.map(one, updates), state


@pytree_class
class centralize(StatelessTransformation):
    """Gradient centralization (Yong, Huang, Hua & Zhang 2020, "Gradient Centralization: A New Optimization
    Technique for Deep Neural Networks", ECCV, arXiv 2004.01461, eq. 4).

    Leaves of rank >= 2 lose their mean over every axis but the first: ``u = g - mean(g, axes 1..ndim-1)``;
    vectors and scalars pass unchanged. Convention (Optax's): the first axis indexes the units (PyTorch's
    ``(out, in)`` layout, the paper's columns of ``W``). For a Flax ``(in, out)`` kernel the paper's
    centring per output neuron would be over all axes but the *last*; transpose, or write that block, then.
    Stateless (state ``EmptyState()``); it takes no arguments.

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.centralize()
      >>> updates, state = tx.update(jnp.array([[1.0, 3.0], [2.0, 6.0]]), tx.init(None))
      >>> print(updates)  # each row minus its mean
      [[-1.  1.]
       [-2.  2.]]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "it subtracts each leaf's mean over its dimensions"

    def update(
        self, updates: Updates, state: EmptyState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, EmptyState]:
        del params, extra

        def one(g: Any) -> Any:
            g = jnp.asarray(g)
            if g.ndim <= 1:
                return g
            x = tree.Leaf(g)
            g_c = x.cast(g)
            return x.out(g_c - jnp.mean(g_c, axis=tuple(range(1, g.ndim)), keepdims=True))

        return jax.tree.map(one, updates), state


@pytree_class
class _ParamBlockScale(_ByParams):
    """``u = g max(size(p), min_scale)`` for each block, ``size`` the subclass's ``_size`` of a leaf."""

    min_scale: Scalar = non_negative(default=1e-3)

    @staticmethod
    def _size(x: Any) -> jax.Array:  # each subclass names its size function (_norm, _rms)
        raise NotImplementedError

    def _leaf(self, u: Any, p: Any) -> Any:
        x = tree.Leaf(u)
        return x.out(x.cast(u) * x.hyper(_floor(self._size(p), self.min_scale)))


@pytree_class
class scale_by_param_block_norm(_ParamBlockScale):
    """Scale each block's update by the norm of its parameters: ``u = g max(||p||, min_scale)``.

    ``||p||`` is the l2 (Frobenius) norm of the whole parameter leaf; ``min_scale`` keeps zero-initialised
    blocks moving: each block then moves in proportion to its own size. Stateless; ``update`` needs
    ``params``.

    Args:
      min_scale: the smallest factor, >= 0. Default 1e-3.

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState``.

    Raises:
      ValueError: at construction, for a negative or NaN ``min_scale`` (``scale_by_param_block_norm(
        min_scale=-1.0): min_scale must be >= 0``); in ``update``, without params.
      TypeError: at construction, for a ``min_scale`` that is not a real number; in ``update``, for updates
        whose tree differs from the params'.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_param_block_norm()
      >>> params = jnp.array([3.0, 4.0])
      >>> updates, state = tx.update(jnp.array([1.0, -1.0]), tx.init(params), params)
      >>> print(updates)  # times ||p|| = 5
      [ 5. -5.]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "it scales each leaf by its parameter's norm"

    _size = staticmethod(_norm)


@pytree_class
class scale_by_param_block_rms(_ParamBlockScale):
    """Scale each block's update by the rms of its parameters: ``u = g max(rms(p), min_scale)``.

    ``rms(p) = sqrt(mean(|p|^2))`` over the whole parameter leaf: Adafactor's relative step (Shazeer & Stern
    2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", arXiv 1804.04235, with
    ``min_scale`` its ``epsilon2``). Stateless; ``update`` needs ``params``.

    Args:
      min_scale: the smallest factor, >= 0. Default 1e-3.

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState``.

    Raises:
      ValueError: at construction, for a negative or NaN ``min_scale`` (``scale_by_param_block_rms(
        min_scale=-1.0): min_scale must be >= 0``); in ``update``, without params.
      TypeError: at construction, for a ``min_scale`` that is not a real number; in ``update``, for updates
        whose tree differs from the params'.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_param_block_rms()
      >>> params = jnp.array([3.0, -3.0])
      >>> updates, state = tx.update(jnp.array([1.0, -1.0]), tx.init(params), params)
      >>> print(updates)  # times rms(p) = 3
      [ 3. -3.]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "it scales each leaf by its parameter's RMS"

    _size = staticmethod(_rms)


@pytree_class
class scale_by_trust_ratio(_ByParams):
    """Scale each block by its trust ratio, the layer-wise step of LARS, LAMB and Fromage.

    Per leaf::

        r = trust_coefficient * max(||p||, min_norm) / (max(||g||, min_norm) + eps)
        u = r g                  (u = g where either clipped norm is 0)

    A zero parameter block or a zero update would never move otherwise. With the defaults ``||u|| = ||p||``:
    each layer moves by a step proportional to its own size (You, Gitman & Ginsburg 2017, "Large Batch
    Training of Convolutional Networks", arXiv 1708.03888; You et al. 2020, "Large Batch Optimization for
    Deep Learning: Training BERT in 76 minutes", ICLR, arXiv 1904.00962). Stateless; ``update`` needs
    ``params``.

    Args:
      min_norm: the smallest norm used for ``p`` and ``g``, >= 0. Default 0.0.
      trust_coefficient: the factor ``r`` is multiplied by, a finite real number. Default 1.0.
      eps: added to the update's norm, >= 0. Default 0.0.

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState``.

    Raises:
      ValueError: at construction, for a value out of range (``scale_by_trust_ratio(min_norm=-1.0): min_norm
        must be >= 0``); in ``update``, without params.
      TypeError: at construction, for a hyperparameter that is not a real number (``scale_by_trust_ratio(
        trust_coefficient='a'): trust_coefficient must be a finite real number, not str``); in ``update``, for
        updates whose tree differs from the params'.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_trust_ratio()
      >>> params = jnp.array([3.0, 4.0])
      >>> updates, state = tx.update(jnp.array([0.3, 0.4]), tx.init(params), params)
      >>> print(updates)  # r = ||p|| / ||g|| = 10
      [3. 4.]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "its trust ratio is one norm ratio per leaf"

    min_norm: Scalar = non_negative(default=0.0)
    trust_coefficient: Scalar = real(default=1.0)
    eps: Scalar = non_negative(default=0.0)

    def _leaf(self, u: Any, p: Any) -> Any:
        x = tree.Leaf(u)
        p_norm = x.hyper(_floor(_norm(p), self.min_norm))
        u_norm = _floor(_norm(u), x.hyper(self.min_norm))
        trivial = (p_norm == 0) | (u_norm == 0)
        # the division sees 1 where the ratio is not used: no 0/0 in the value nor in its derivative
        den = jnp.where(trivial, jnp.ones([], u_norm.dtype), u_norm + x.hyper(self.eps))
        ratio = jnp.where(trivial, jnp.ones([], u_norm.dtype), x.hyper(self.trust_coefficient) * p_norm / den)
        return x.out(x.cast(u) * ratio)


@pytree_class
class scale_by_distance_over_gradients(GradientTransformation):
    """Distance over gradients, layer-wise (LDoG; Ivgi, Hinder & Carmon 2023, "DoG is SGD's Best Friend: A
    Parameter-Free Dynamic Step Size Schedule", ICML, arXiv 2302.12022).

    Per leaf, with ``x_0`` the parameters given to ``init`` and ``k`` the 1-based step::

        rbar_0 = reps_rel (1 + ||x_0||)
        rbar_k = max(rbar_{k-1}, ||x_k - x_0||)          (x_k: the params passed to this update)
        G_k    = G_{k-1} + ||g_k||^2,  G_0 = 0
        u      = global_scale * rbar_k / sqrt(G_k + eps) * g_k

    ``u`` is a step size times the gradient, to be followed by ``scale_by_learning_rate(1.0)`` (or use
    ``global_scale=-1``). ``rbar`` and ``G`` are scalars per leaf in the parameters' compute dtype (float32 or
    wider); the step is 0 for ``G = 0`` with ``eps = 0``, NaN once ``G`` overflowed. The authors recommend
    averaging the iterates. ``update`` needs ``params``.

    Args:
      reps_rel: the initial distance relative to ``1 + ||x_0||``, > 0. Default 1e-6.
      eps: added to ``G_k`` inside the square root, >= 0. Default 1e-8.
      param_dtype: the dtype ``x_0`` is stored in, a floating dtype or ``None`` (the parameter dtype). Default
        float32.
      global_scale: a factor on every step, a finite real number. Default 1.0.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByDistanceOverGradientsState``.

    Raises:
      ValueError: at construction, for a value out of range (``scale_by_distance_over_gradients(reps_rel=0.0):
        reps_rel must be > 0``) or a ``param_dtype`` that is not floating; in ``update``, without params.
      TypeError: at construction, for a hyperparameter that is not a real number; in ``update``, for updates
        or params whose tree differs from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_distance_over_gradients(reps_rel=0.1, eps=0.0)
      >>> params = jnp.array([3.0, 4.0])
      >>> updates, state = tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)
      >>> print(updates)  # rbar = 0.1 (1 + 5) = 0.6, sqrt(G) = 5: 0.12 g
      [0.36 0.48]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "its distances and gradient sums are per leaf"

    reps_rel: Scalar = positive(default=1e-6)
    eps: Scalar = non_negative(default=1e-8)
    param_dtype: DTypeLike | None = dtype_option(default=jnp.float32)
    global_scale: Scalar = real(default=1.0)

    def init(self, params: Params) -> ScaleByDistanceOverGradientsState:
        def first_distance(p: Any) -> Any:
            return tree.Leaf(p).hyper(self.reps_rel) * (1 + _norm(p))

        return ScaleByDistanceOverGradientsState(
            max_dist=jax.tree.map(first_distance, params),
            grad_sum_of_squares=jax.tree.map(lambda p: jnp.zeros([], tree.Leaf(p).real_dtype), params),
            init_params=tree.cast(params, self.param_dtype),
        )

    def update(
        self, updates: Updates, state: ScaleByDistanceOverGradientsState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ScaleByDistanceOverGradientsState]:
        del extra
        require_params("scale_by_distance_over_gradients.update", params)
        check_tree_match("scale_by_distance_over_gradients.update", state.max_dist, updates)
        check_tree_match("scale_by_distance_over_gradients.update", state.max_dist, params, what="params")

        def one(g: Any, d: Any, s: Any, p: Any, x0: Any) -> tuple[Any, Any, Any]:
            x, r = tree.Leaf(g), tree.Leaf(d)  # r: the dtype of the leaf's distance (the params' real compute dtype)
            dist = l2_norm(r.cast(p) - r.cast(x0))
            new_d = jnp.maximum(d, dist)
            new_s = s + r.store(_sq_norm(g), s)
            # 0 for G = 0 with eps = 0; NaN (not a silent 0) once the sum of squares G overflowed
            eta = scale_ratio(r.hyper(self.global_scale) * new_d, safe_sqrt(r.cast(new_s) + r.hyper(self.eps)))
            return x.out(x.cast(g) * x.hyper(eta)), new_d, new_s

        out, max_dist, grad_sum_of_squares = tree.map_split(
            one, 3, updates, state.max_dist, state.grad_sum_of_squares, params, state.init_params
        )
        new_state = ScaleByDistanceOverGradientsState(
            max_dist=max_dist, grad_sum_of_squares=grad_sum_of_squares, init_params=state.init_params
        )
        return out, new_state


@pytree_class
class keep_params_nonnegative(_ByParams):
    """Keep parameters non-negative: ``u = -p`` where ``p + g < 0``, else ``g`` (so ``p + u >= 0``).

    Put it last in a chain. Parameters that are already negative are moved to 0. Stateless (state
    ``EmptyState()``, Optax's ``NonNegativeParamsState``); ``update`` needs ``params``. It takes no arguments.

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState``.

    Raises:
      ValueError: in ``update``, without params (``keep_params_nonnegative.update: params are required (call
        update(updates, state, params))``).
      TypeError: in ``update``, for updates whose tree differs from the params'.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.keep_params_nonnegative()
      >>> params = jnp.array([1.0, 2.0])
      >>> updates, state = tx.update(jnp.array([-3.0, 1.0]), tx.init(params), params)
      >>> print(updates)  # 1 - 3 < 0: move to 0 instead
      [-1.  1.]
    """

    def _leaf(self, u: Any, p: Any) -> Any:
        x = tree.Leaf(u)
        u_c, p_c = x.cast(u), x.cast(p)
        return x.out(jnp.where(p_c + u_c < 0, -p_c, u_c))


@pytree_class
class zero_nans(GradientTransformation):
    """Replace NaNs in the updates by 0; the state records, per leaf, whether the last update had one.

    ``u = 0`` where ``g`` is NaN, else ``g``. ``found_nan`` is a tree of boolean scalars shaped like the
    parameters; it is not used by the block, only reported. Infinities pass through (guard them with ``clip``
    or ``apply_if_finite``). It takes no arguments.

    Returns:
      A ``GradientTransformation`` whose state is ``ZeroNansState``.

    Raises:
      TypeError: in ``update``, for updates whose tree differs from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.zero_nans()
      >>> updates, state = tx.update(jnp.array([1.0, jnp.nan]), tx.init(jnp.zeros(2)))
      >>> print(updates, state.found_nan)
      [1. 0.] True
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "its state records NaNs per leaf"

    def init(self, params: Params) -> ZeroNansState:
        return ZeroNansState(found_nan=jax.tree.map(lambda _: jnp.zeros([], jnp.bool_), params))

    def update(
        self, updates: Updates, state: ZeroNansState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ZeroNansState]:
        del params, extra
        check_tree_match("zero_nans.update", state.found_nan, updates)
        found = jax.tree.map(lambda g: jnp.any(jnp.isnan(g)), updates)
        out = jax.tree.map(lambda g: jnp.where(jnp.isnan(g), jnp.zeros_like(g), g), updates)
        return out, ZeroNansState(found_nan=found)
