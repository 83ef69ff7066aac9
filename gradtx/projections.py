"""Euclidean projections onto convex sets, for pytrees (Optax's ``optax.projections``).

Every function here returns the point of a convex set ``C`` closest to its input in the Euclidean norm,

    proj_C(x) = argmin_{p in C} ||x - p||_2^2,

where a pytree is treated as one flat vector (the concatenation of its leaves). The result has the structure
of the input. Projected gradient descent alternates an optimizer step with one of these (Nesterov 2004,
*Introductory Lectures on Convex Optimization*, section 2.2.3):

    >>> import jax.numpy as jnp
    >>> from gradtx import projections
    >>> params = {"w": jnp.array([2.5, -3.2]), "b": jnp.array(0.5)}
    >>> print(projections.projection_simplex(params)["w"])
    [1. 0.]

Conventions:

- Leaves keep their floating dtype (a bfloat16 leaf stays bfloat16; norms, sorts and sums run in float32 or
  wider); integer leaves are promoted to the default floating dtype, since a projection is not integer.
- Radii and bounds that are concrete numbers are checked when the function is called (``ValueError`` naming
  the function, the argument, the value and the valid range); traced values (under ``jit``/``vmap``) and
  device arrays with more than one element are not inspected.
- The functions are differentiable almost everywhere. ``projection_simplex`` (and so the l1 projections)
  has a custom JVP: on the support ``S`` of the result its Jacobian is ``diag(1_S) - 1_S 1_S^T / |S|``
  (Martins & Astudillo 2016, *From softmax to sparsemax*), with respect to ``scale`` it is ``1_S / |S|``.
- Where Optax returns NaN although the answer is defined (radius 0, an l2 radius of ``inf``, projection onto
  the span of the zero vector) gradtx returns the answer. Projection of 0 onto a sphere is not unique:
  ``projection_l2_sphere`` returns NaN there, as Optax does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax import core as jax_core

from gradtx import tree as tree_lib
from gradtx._docs import fill_doc
from gradtx.base import PyTree, Scalar
from gradtx.tree.precision import widest_real_dtype

__all__ = [
    "projection_box",
    "projection_halfspace",
    "projection_hypercube",
    "projection_hyperplane",
    "projection_l1_ball",
    "projection_l1_sphere",
    "projection_l2_ball",
    "projection_l2_sphere",
    "projection_linf_ball",
    "projection_non_negative",
    "projection_simplex",
    "projection_vector",
]


# --- argument checks --------------------------------------------------------------------------------


def _concrete(value: Any) -> np.ndarray | None:
    """``value`` as a host NumPy array when it is known without tracing or a device transfer of an array.

    Python numbers, NumPy values and concrete JAX scalars are inspected; tracers and JAX arrays with more
    than one element are not (``None``)."""
    if isinstance(value, jax_core.Tracer):
        return None
    host = isinstance(value, (bool, int, float, np.ndarray, np.generic))
    if not (host or (isinstance(value, jax.Array) and value.size == 1)):
        return None
    arr = np.asarray(value)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        return None
    return arr


def _check_radius(fn: str, name: str, value: Any, allow_inf: bool) -> None:
    """Raises ``ValueError`` unless every concrete element of ``value`` is a real number >= 0 (and finite
    unless ``allow_inf``)."""
    if isinstance(value, complex) or (hasattr(value, "dtype") and jnp.issubdtype(value.dtype, jnp.complexfloating)):
        raise ValueError(f"{fn}({name}={value!r}): {name} must be a real number >= 0")
    arr = _concrete(value)
    if arr is None:
        return
    arr = arr.astype(np.float64)
    bad = np.isnan(arr) | (arr < 0) | (np.isinf(arr) if not allow_inf else np.zeros(arr.shape, bool))
    if np.any(bad):
        rng = ">= 0 (inf allowed)" if allow_inf else "finite and >= 0"
        raise ValueError(f"{fn}({name}={value!r}): {name} must be {rng}")


def _check_real_scalar(fn: str, name: str, value: Any) -> None:
    """Raises ``ValueError`` unless a concrete ``value`` is a real, non-NaN scalar."""
    if isinstance(value, complex):
        raise ValueError(f"{fn}({name}={value!r}): {name} must be a real scalar")
    if jnp.ndim(value) != 0:
        raise ValueError(f"{fn}({name}=array of shape {jnp.shape(value)}): {name} must be a real scalar")
    arr = _concrete(value)
    if arr is not None and np.isnan(arr.astype(np.float64)):
        raise ValueError(f"{fn}({name}={value!r}): {name} must be a real scalar, not NaN")


def _check_real_tree(fn: str, name: str, tree: PyTree) -> None:
    for leaf in jax.tree.leaves(tree):
        if jnp.iscomplexobj(leaf):
            raise ValueError(f"{fn}: {name} has a complex leaf of dtype {jnp.result_type(leaf)}; it must be real")


# --- leaf helpers -----------------------------------------------------------------------------------


def _out_dtype(x: Any) -> np.dtype:
    """The dtype a projected leaf is returned in: its own if inexact, else the default floating dtype."""
    dt = jnp.result_type(x)
    if jnp.issubdtype(dt, jnp.inexact):
        return np.dtype(dt)
    return np.dtype(jnp.zeros((), float).dtype)


def _work_dtype(dt: np.dtype) -> np.dtype:
    """``dt`` promoted to at least float32 (complex kept complex)."""
    if jnp.issubdtype(dt, jnp.complexfloating):
        return np.dtype(dt) if np.dtype(dt).itemsize >= 8 else np.dtype(np.complex64)
    return np.dtype(dt) if np.dtype(dt).itemsize >= 4 else np.dtype(np.float32)


def _up(x: Any) -> jax.Array:
    return jnp.asarray(x).astype(_work_dtype(_out_dtype(x)))


def _as_out(tree: PyTree) -> PyTree:
    """Each leaf in the dtype its projection is returned in (integer leaves become floating)."""
    return jax.tree.map(lambda x: jnp.asarray(x).astype(_out_dtype(x)), tree)


# Tree arithmetic is gradtx.tree's (float32 or wider, complex kept), on the leaves in their output dtypes.


def _sq_norm(tree: PyTree) -> jax.Array:
    return tree_lib.norm(_as_out(tree), squared=True)


def _inner(a: PyTree, b: PyTree) -> jax.Array:
    """``<a, b> = sum_i conj(a_i) b_i`` over all leaves (real part for complex trees), float32 or wider."""
    return jnp.real(tree_lib.vdot(jax.tree.map(_up, a), jax.tree.map(_up, b)))


def _scale_tree(s: jax.Array, tree: PyTree) -> PyTree:
    """``s * tree`` leafwise, computed in each leaf's working dtype and returned in its output dtype."""
    return tree_lib.scale(s, _as_out(tree))


def _add_scaled(x: PyTree, s: jax.Array, a: PyTree) -> PyTree:
    """``x + s * a`` leafwise, in the working dtype of each leaf of ``x``, returned in its output dtype."""
    return tree_lib.add_scale(_as_out(x), s, a)


def _broadcast_bound(bound: Any, tree: PyTree) -> PyTree:
    """``bound`` (a scalar, an array, or a tree whose structure is a prefix of ``tree``'s) one per leaf."""
    return jax.tree.broadcast(bound, tree)


# --- orthant, box, hypercube ------------------------------------------------------------------------

# The docstring passage of projection_hypercube and projection_linf_ball (filled in by fill_doc).
_CLIP_RETURNS = """
Returns:
  A pytree with the structure of ``tree``.

Raises:
  ValueError: if a concrete ``scale`` is negative or NaN.
"""


def projection_non_negative(tree: PyTree) -> PyTree:
    r"""Projection onto the non-negative orthant: ``argmin_{p >= 0} ||x - p||^2 = max(x, 0)`` leafwise.

    Args:
      tree: the pytree ``x`` to project (real leaves of any shape; Python numbers allowed).

    Returns:
      A pytree with the structure of ``tree``: every negative entry replaced by 0 (``jax.nn.relu``, so the
      derivative at 0 is 0, as in Optax).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.projections import projection_non_negative
      >>> print(projection_non_negative(jnp.array([-1.0, 2.0, 3.0])))
      [0. 2. 3.]
    """
    return jax.tree.map(jax.nn.relu, tree)


def projection_box(tree: PyTree, lower: Scalar | PyTree, upper: Scalar | PyTree) -> PyTree:
    r"""Projection onto the box ``{p : lower <= p <= upper}``: ``clip(x, lower, upper)`` leafwise.

    Args:
      tree: the pytree ``x`` to project.
      lower: lower bound: a scalar (applied to every leaf), an array broadcastable to the leaves, or a tree
        whose structure is ``tree``'s (or a prefix of it). ``-inf`` means unbounded below.
      upper: upper bound, same forms as ``lower``; ``inf`` means unbounded above.

    Returns:
      A pytree with the structure of ``tree``.

    Raises:
      ValueError: if a concrete bound has ``lower > upper`` somewhere (the box is empty) or is NaN.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.projections import projection_box
      >>> print(projection_box(jnp.array([-1.0, 2.0, 3.0]), 0.0, 2.0))
      [0. 2. 2.]
    """
    lower_t = _broadcast_bound(lower, tree)
    upper_t = _broadcast_bound(upper, tree)
    for lo, hi in zip(jax.tree.leaves(lower_t), jax.tree.leaves(upper_t), strict=True):
        lo_c, hi_c = _concrete(lo), _concrete(hi)
        if lo_c is not None and np.any(np.isnan(lo_c.astype(np.float64))):
            raise ValueError(f"projection_box(lower={lower!r}): lower must not be NaN")
        if hi_c is not None and np.any(np.isnan(hi_c.astype(np.float64))):
            raise ValueError(f"projection_box(upper={upper!r}): upper must not be NaN")
        if lo_c is not None and hi_c is not None and np.any(lo_c > hi_c):
            raise ValueError(f"projection_box(lower={lower!r}, upper={upper!r}): lower must be <= upper")
    return jax.tree.map(jnp.clip, tree, lower_t, upper_t)


@fill_doc(clip_returns=_CLIP_RETURNS)
def projection_hypercube(tree: PyTree, scale: Scalar = 1) -> PyTree:
    r"""Projection onto the hypercube ``{p : 0 <= p <= scale}``: ``clip(x, 0, scale)`` leafwise.

    The same as ``projection_box(tree, 0, scale)``.

    Args:
      tree: the pytree ``x`` to project.
      scale: the side of the hypercube, ``>= 0`` (``inf`` allowed): a scalar, an array, or a tree like
        ``tree`` (default 1: the unit hypercube).

    {clip_returns}

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.projections import projection_hypercube
      >>> print(projection_hypercube(jnp.array([-1.0, 2.0, 0.5]), 0.8))
      [0.  0.8 0.5]
    """
    for leaf in jax.tree.leaves(scale):
        _check_radius("projection_hypercube", "scale", leaf, allow_inf=True)
    return projection_box(tree, lower=0, upper=scale)


@fill_doc(clip_returns=_CLIP_RETURNS)
def projection_linf_ball(tree: PyTree, scale: Scalar = 1) -> PyTree:
    r"""Projection onto the l-infinity ball ``{p : max_i |p_i| <= scale}``: ``clip(x, -scale, scale)``.

    Args:
      tree: the pytree ``x`` to project.
      scale: the radius, a scalar ``>= 0`` (``inf`` allowed: the identity; default 1).

    {clip_returns}

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.projections import projection_linf_ball
      >>> print(projection_linf_ball(jnp.array([-3.0, 0.5, 2.0]), 1.0))
      [-1.   0.5  1. ]
    """
    _check_radius("projection_linf_ball", "scale", scale, allow_inf=True)
    s = jnp.asarray(scale)
    return jax.tree.map(lambda x: jnp.clip(x, -s, s), tree)


# --- simplex and l1 ---------------------------------------------------------------------------------


def _simplex_threshold(z: jax.Array, s: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The threshold ``theta`` with ``sum(max(z - theta, 0)) = s`` for a 1-D ``z`` (Duchi et al. 2008).

    With ``u`` the entries of ``z`` sorted in decreasing order and ``c_k = u_1 + ... + u_k``, the support has
    ``rho = max{k : u_k > (c_k - s) / k}`` elements and ``theta = (c_rho - s) / rho``. Returns theta and rho.
    """
    u = -jnp.sort(-z)
    c = jnp.cumsum(u)
    k = jnp.arange(1, z.shape[0] + 1, dtype=z.dtype)
    candidates = (c - s) / k
    rho = jnp.maximum(jnp.sum(u > candidates), 1)  # s = 0: an empty support; theta = max(z) gives zeros
    theta = candidates[rho - 1]
    return theta, rho


@jax.custom_jvp
def _simplex(z: jax.Array, s: jax.Array) -> jax.Array:
    """The projection of a 1-D ``z`` onto ``{p >= 0, sum(p) = s}`` for ``s >= 0``."""
    theta, _ = _simplex_threshold(z, s)
    return jnp.maximum(z - theta, 0)


@_simplex.defjvp
def _simplex_jvp(primals: tuple[jax.Array, jax.Array], tangents: tuple[jax.Array, jax.Array]) -> Any:
    z, s = primals
    dz, ds = tangents
    p = _simplex(z, s)
    on = (p > 0).astype(p.dtype)
    size = jnp.maximum(jnp.sum(on), 1)
    dp = on * dz - on * ((jnp.sum(on * dz) - ds) / size)
    return p, dp


def _flatten(tree: PyTree, dtype: np.dtype | None = None) -> tuple[jax.Array, Any]:
    """All leaves concatenated into one 1-D array of a common working dtype, and the inverse map (which
    returns every leaf in its output dtype, see ``_out_dtype``)."""
    leaves, treedef = jax.tree.flatten(tree)
    shapes = [jnp.shape(x) for x in leaves]
    outs = [_out_dtype(x) for x in leaves]
    if dtype is None:
        dtype = _work_dtype(np.dtype(jnp.result_type(*outs))) if outs else np.dtype(np.float32)
    flat = (
        jnp.concatenate([jnp.ravel(jnp.asarray(x)).astype(dtype) for x in leaves]) if leaves else jnp.zeros((0,), dtype)
    )
    sizes = [math.prod(sh) for sh in shapes]

    def unflatten(v: jax.Array) -> PyTree:
        parts, start = [], 0
        for sh, n, dt in zip(shapes, sizes, outs, strict=True):
            parts.append(v[start : start + n].reshape(sh).astype(dt))
            start += n
        return jax.tree.unflatten(treedef, parts)

    return flat, unflatten


def projection_simplex(tree: PyTree, scale: Scalar = 1) -> PyTree:
    r"""Projection onto the simplex ``{p : p >= 0, sum(p) = scale}``.

    Solves ``argmin_p ||x - p||^2`` subject to ``p >= 0`` and ``1^T p = scale`` by the sort-based algorithm of
    Duchi, Shalev-Shwartz, Singer & Chandra (2008), *Efficient projections onto the l1-ball for learning in
    high dimensions*: ``p = max(x - theta, 0)`` with the threshold ``theta`` chosen so that the entries sum to
    ``scale``. All leaves of the tree are projected together (the tree is one vector). The Jacobian on the
    support ``S`` of ``p`` is ``diag(1_S) - 1_S 1_S^T / |S|`` (a custom JVP, exact, no sort differentiated).

    Args:
      tree: the pytree ``x`` to project (real leaves; ``-inf`` entries are allowed and map to 0).
      scale: the sum of the result, a real scalar ``>= 0`` (default 1: the probability simplex). ``scale=0``
        returns zeros (Optax: NaN).

    Returns:
      A pytree with the structure of ``tree`` whose entries are non-negative and sum to ``scale``.

    Raises:
      ValueError: if a concrete ``scale`` is negative, infinite or NaN (the set is empty or unbounded), or a
        leaf is complex.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.projections import projection_simplex
      >>> print(projection_simplex(jnp.array([0.5, 2.0, -1.0])))
      [0. 1. 0.]
      >>> print(projection_simplex(jnp.array([0.25, 0.75, -0.5]), scale=1.0))
      [0.25 0.75 0.  ]
    """
    return _project_flat("projection_simplex", tree, scale, False, _simplex)


def _project_flat(
    fn: str, tree: PyTree, scale: Any, allow_inf: bool, project: Callable[[jax.Array, jax.Array], jax.Array]
) -> PyTree:
    """Check ``scale`` and the leaves (real) for ``fn``, then ``project(x, scale)`` the tree as one flat vector
    (in the working dtype; an empty tree is returned as it is)."""
    _check_radius(fn, "scale", scale, allow_inf=allow_inf)
    _check_real_tree(fn, "tree", tree)
    flat, unflatten = _flatten(tree)
    if flat.shape[0] == 0:
        return tree
    return unflatten(project(flat, jnp.asarray(scale, flat.dtype)))


def _l1_sphere(v: jax.Array, s: jax.Array) -> jax.Array:
    """``sign(v) * projection_simplex(|v|, s)`` for a flat ``v``."""
    return jnp.sign(v) * _simplex(jnp.abs(v), s)


def _l1_ball(v: jax.Array, s: jax.Array) -> jax.Array:
    """``v`` inside the l1 ball of radius ``s``, else its projection onto the sphere (a ``lax.cond``)."""
    inside = jnp.sum(jnp.abs(v)) <= s
    safe_s = jnp.where(jnp.isinf(s), 0, s)  # the sphere branch is not taken when s = inf
    return cast(jax.Array, jax.lax.cond(inside, lambda u: u, lambda u: _l1_sphere(u, safe_s), v))


def projection_l1_sphere(tree: PyTree, scale: Scalar = 1) -> PyTree:
    r"""Projection onto the l1 sphere ``{p : ||p||_1 = scale}``.

    ``p = sign(x) * projection_simplex(|x|, scale)`` (the sphere's orthant pieces are simplices). For a
    point strictly inside the sphere this is the closest point on the sphere among those sharing the signs
    of ``x`` (as in Optax); for a point outside it is the exact projection.

    Args:
      tree: the pytree ``x`` to project (real leaves).
      scale: the radius, a real scalar ``>= 0`` (default 1).

    Returns:
      A pytree with the structure of ``tree`` whose l1 norm is ``scale`` (unless ``x`` has fewer non-zero
      entries than needed, e.g. ``x = 0`` gives 0).

    Raises:
      ValueError: if a concrete ``scale`` is negative, infinite or NaN, or a leaf is complex.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.projections import projection_l1_sphere
      >>> print(projection_l1_sphere(jnp.array([3.0, -1.0]), 1.0))
      [ 1. -0.]
    """
    return _project_flat("projection_l1_sphere", tree, scale, False, _l1_sphere)


def projection_l1_ball(tree: PyTree, scale: Scalar = 1) -> PyTree:
    r"""Projection onto the l1 ball ``{p : ||p||_1 <= scale}`` (Duchi et al. 2008).

    ``x`` itself when ``||x||_1 <= scale``, else ``sign(x) * projection_simplex(|x|, scale)``. The branch
    is chosen with ``lax.cond``, so the derivative inside the ball is the identity (also at 0).

    Args:
      tree: the pytree ``x`` to project (real leaves).
      scale: the radius, a real scalar ``>= 0`` (default 1; ``inf`` gives the identity).

    Returns:
      A pytree with the structure of ``tree`` whose l1 norm is ``min(||x||_1, scale)``.

    Raises:
      ValueError: if a concrete ``scale`` is negative or NaN, or a leaf is complex.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.projections import projection_l1_ball
      >>> print(projection_l1_ball(jnp.array([2.0, -1.0]), 2.0))
      [ 1.5 -0.5]
      >>> print(projection_l1_ball(jnp.array([0.5, -1.0]), 2.0))  # inside the ball: unchanged
      [ 0.5 -1. ]
    """
    return _project_flat("projection_l1_ball", tree, scale, True, _l1_ball)


# --- l2 ---------------------------------------------------------------------------------------------


def projection_l2_sphere(tree: PyTree, scale: Scalar = 1) -> PyTree:
    r"""Projection onto the l2 sphere ``{p : ||p||_2 = scale}``: ``p = scale * x / ||x||_2``.

    Args:
      tree: the pytree ``x`` to project (real or complex leaves).
      scale: the radius, a real scalar ``>= 0`` (default 1).

    Returns:
      A pytree with the structure of ``tree`` and l2 norm ``scale``. At ``x = 0`` every point of the sphere is
      a projection; the result is then NaN (as in Optax), except for ``scale = 0``, which gives 0.

    Raises:
      ValueError: if a concrete ``scale`` is negative, infinite or NaN.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.projections import projection_l2_sphere
      >>> print(projection_l2_sphere(jnp.array([3.0, 4.0]), 10.0))
      [6. 8.]
    """
    _check_radius("projection_l2_sphere", "scale", scale, allow_inf=False)
    s = jnp.asarray(scale, widest_real_dtype(_as_out(tree)))
    factor = jnp.where(s == 0, 0, s / jnp.sqrt(_sq_norm(tree)))
    return _scale_tree(factor, tree)


def projection_l2_ball(tree: PyTree, scale: Scalar = 1) -> PyTree:
    r"""Projection onto the l2 ball ``{p : ||p||_2 <= scale}``: ``p = x * min(1, scale / ||x||_2)``.

    Computed as ``x / sqrt(max(1, ||x||^2 / scale^2))``, which is defined (and has derivative 1) at ``x = 0``
    and handles ``scale = 0`` (gives 0) and ``scale = inf`` (the identity), where Optax returns NaN.

    Args:
      tree: the pytree ``x`` to project (real or complex leaves).
      scale: the radius, a real scalar ``>= 0`` (default 1; ``inf`` allowed).

    Returns:
      A pytree with the structure of ``tree`` and l2 norm ``min(||x||_2, scale)``.

    Raises:
      ValueError: if a concrete ``scale`` is negative or NaN.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.projections import projection_l2_ball
      >>> print(projection_l2_ball(jnp.array([3.0, 4.0]), 1.0))
      [0.6 0.8]
      >>> print(projection_l2_ball(jnp.array([0.3, 0.4]), 1.0))
      [0.3 0.4]
    """
    _check_radius("projection_l2_ball", "scale", scale, allow_inf=True)
    sq = _sq_norm(tree)
    s = jnp.asarray(scale, sq.dtype)
    positive = s > 0
    ratio = jnp.where(positive, sq / jnp.where(positive, s * s, 1), jnp.where(sq > 0, jnp.inf, 0))
    factor = jax.lax.rsqrt(jnp.maximum(ratio, 1))
    return _scale_tree(factor, tree)


# --- affine sets ------------------------------------------------------------------------------------

# The docstring passage of projection_hyperplane and projection_halfspace, from the level of ``Args:``.
_OFFSET_RETURNS = """
  b: the offset, a real scalar.

Returns:
  A pytree with the structure of ``x``.

Raises:
  ValueError: if a concrete ``b`` is not a real scalar (an array, complex, or NaN).
"""


def projection_vector(x: PyTree, a: PyTree) -> PyTree:
    r"""Projection onto the line spanned by ``a``: ``<x, a> / <a, a> * a``.

    Args:
      x: the pytree to project.
      a: the direction, a pytree with the structure of ``x``. ``a = 0`` spans only 0, which is returned (Optax:
        NaN).

    Returns:
      A pytree with the structure of ``a`` (leaves in the dtype of ``a``).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.projections import projection_vector
      >>> print(projection_vector(jnp.array([2.0, 1.0]), jnp.array([1.0, 1.0])))
      [1.5 1.5]
    """
    aa = _inner(a, a)
    nonzero = aa > 0
    coef = jnp.where(nonzero, _inner(a, x) / jnp.where(nonzero, aa, 1), 0)
    return _scale_tree(coef, a)


def _affine_step(fn: str, x: PyTree, a: PyTree, b: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(b - <a, x>) / <a, a>``, the multiple of ``a`` that moves ``x`` onto ``{y : <a, y> = b}``, then
    ``<a, a>`` and ``b - <a, x>``.

    For ``a = 0`` the set is everything (``b = 0``: the step is 0) or empty (NaN)."""
    _check_real_scalar(fn, "b", b)
    aa = _inner(a, a)
    gap = jnp.asarray(b, aa.dtype) - _inner(a, x)
    nonzero = aa > 0
    return jnp.where(nonzero, gap / jnp.where(nonzero, aa, 1), jnp.where(gap == 0, 0, jnp.nan)), aa, gap


@fill_doc(offset_returns=_OFFSET_RETURNS)
def projection_hyperplane(x: PyTree, a: PyTree, b: Scalar) -> PyTree:
    r"""Projection onto the hyperplane ``{y : <a, y> = b}``: ``x + (b - <a, x>) / <a, a> * a``.

    Args:
      x: the pytree to project.
      a: the normal of the hyperplane, a pytree with the structure of ``x`` (``a = 0`` with ``b = 0`` is the
        whole space: ``x`` is returned; with ``b != 0`` the set is empty: NaN).
    {offset_returns}

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.projections import projection_hyperplane
      >>> print(projection_hyperplane(jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]), 5.0).round(4))
      [0.28 1.04]
    """
    step, _, _ = _affine_step("projection_hyperplane", x, a, b)
    return _add_scaled(x, step, a)


@fill_doc(offset_returns=_OFFSET_RETURNS)
def projection_halfspace(x: PyTree, a: PyTree, b: Scalar) -> PyTree:
    r"""Projection onto the halfspace ``{y : <a, y> <= b}``: ``x + min(0, (b - <a, x>) / <a, a>) * a``.

    Points already in the halfspace are returned unchanged; the others move onto its boundary hyperplane.

    Args:
      x: the pytree to project.
      a: the outward normal, a pytree with the structure of ``x`` (``a = 0``: the set is everything when
        ``b >= 0``, so ``x`` is returned; empty when ``b < 0``: NaN).
    {offset_returns}

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.projections import projection_halfspace
      >>> a = jnp.array([3.0, 4.0])
      >>> print(projection_halfspace(jnp.array([1.0, 2.0]), a, 5.0).round(4))
      [0.28 1.04]
      >>> print(projection_halfspace(jnp.array([1.0, -2.0]), a, 5.0))
      [ 1. -2.]
    """
    step, aa, gap = _affine_step("projection_halfspace", x, a, b)
    step = jnp.where((aa == 0) & (gap >= 0), 0, jnp.minimum(step, 0))
    return _add_scaled(x, step, a)
