"""Numerics: safe norms and counters, gradient scaling, and the small linear algebra optimizers use.

A layer beside ``gradtx.tree`` (it imports only ``gradtx.base`` and ``gradtx.tree``)::

    safe_norm(x, min_norm)               max(||x||, min_norm) whose gradient is finite (0) where ||x|| <= min_norm
    safe_root_mean_squares(x, min_rms)   max(rms(x), min_rms), the same way
    safe_increment(count)                count + 1, saturating at the largest value of its dtype
    safe_int32_increment(count)          the int32 counter of every gradtx state (from gradtx.base)
    scale_gradient(inputs, scale)        identity forward, cotangent times ``scale`` backward
    power_iteration(matrix, ...)         the dominant eigenvalue and eigenvector (a matrix or a matvec on trees)
    matrix_inverse_pth_root(matrix, p)   A^(-1/p) of a symmetric PSD matrix, coupled Newton iteration (Higham)
    nnls(A, b, iters)                    min ||A x - b|| subject to x >= 0, fast projected gradient (Polyak 2015)

Names, signatures and defaults are Optax's (``optax.safe_norm``, ..., ``optax.nnls``). Arithmetic runs in the
input's dtype promoted to at least float32 (``gradtx.tree.compute_dtype``); explicit casts keep everything
valid under ``jax.numpy_dtype_promotion("strict")``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from gradtx import tree
from gradtx.base import PyTree, Scalar, safe_int32_increment
from gradtx.fields import concrete_number
from gradtx.tree.ops import l2_norm

__all__ = [
    "MultiNormalDiagFromLogScale",
    "canonicalize_dtype",
    "canonicalize_key",
    "matrix_inverse_pth_root",
    "multi_normal",
    "nnls",
    "power_iteration",
    "safe_increment",
    "safe_int32_increment",
    "safe_norm",
    "safe_root_mean_squares",
    "scale_gradient",
]


def _as(value: Any, like: jax.Array) -> jax.Array:
    """``value`` as an array of ``like``'s dtype (an explicit cast, safe under strict promotion)."""
    return jnp.asarray(value).astype(like.dtype)


# --------------------------------------------------------------------------------------------------
# Safe norms and counters.
# --------------------------------------------------------------------------------------------------


def _is_l2(ord: Any, axis: Any, ndim: int) -> bool:  # noqa: A002
    """Whether ``jnp.linalg.norm(x, ord, axis)`` is ``sqrt(sum |x|^2)`` over ``axis`` (vector 2-norms, Frobenius)."""
    n_axes = ndim if axis is None else (1 if isinstance(axis, (int, np.integer)) else len(axis))
    if ord is None:
        return True
    if ord == "fro":
        return n_axes == 2
    return ord == 2 and n_axes == 1


def _norm(x: jax.Array, ord: Any, axis: Any, keepdims: bool) -> jax.Array:  # noqa: A002
    """``jnp.linalg.norm``; its l2 cases without overflow or underflow (``gradtx.tree.ops.l2_norm``)."""
    if _is_l2(ord, axis, x.ndim):
        return l2_norm(x, axis=axis, keepdims=keepdims)
    return cast(jax.Array, jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims))


def safe_norm(
    x: ArrayLike,
    min_norm: Scalar,
    ord: int | float | str | None = None,  # noqa: A002 - NumPy's and Optax's name
    axis: tuple[int, ...] | int | None = None,
    keepdims: bool = False,
) -> jax.Array:
    """``max(jnp.linalg.norm(x, ord, axis), min_norm)`` with a finite gradient where the norm is small.

    The naive form has a NaN gradient at ``x = 0`` (the norm's derivative there is 0/0, and ``maximum``
    differentiates both branches). Here, where ``norm <= min_norm``, the norm is recomputed on ones (a
    point where it is smooth) and discarded, so the gradient is exactly 0 there. ``ord``, ``axis`` and
    ``keepdims`` are those of ``jnp.linalg.norm``; its l2 cases (``ord`` None, vector 2-norms, Frobenius)
    neither overflow nor underflow (a float32 ``x`` of 1e20 has norm 1e20, not inf).

    Args:
      x: an array.
      min_norm: the floor, >= 0.
      ord: the norm's order, as in ``jnp.linalg.norm``. Default None (2-norm of vectors, Frobenius of
        matrices).
      axis: the reduced axes, as in ``jnp.linalg.norm``. Default None (all).
      keepdims: keep the reduced axes with size 1. Default False.

    Returns:
      The floored norms, in the real compute dtype of ``x`` (float32 or wider).

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from gradtx.numerics import safe_norm
      >>> float(safe_norm(jnp.array([3.0, 4.0]), 1.0)), jax.grad(lambda x: safe_norm(x, 1.0))(jnp.zeros(2)).tolist()
      (5.0, [0.0, 0.0])
    """
    x = tree.up(x)
    norm = _norm(x, ord, axis, True)
    small = norm <= _as(min_norm, norm)
    masked = _norm(jnp.where(small, jnp.ones_like(x), x), ord, axis, keepdims)
    if not keepdims:
        small = jnp.squeeze(small, axis=axis)
    return jnp.where(small, _as(min_norm, masked), masked)


def safe_root_mean_squares(x: ArrayLike, min_rms: Scalar) -> jax.Array:
    """``max(sqrt(mean(|x|^2)), min_rms)`` with a finite (zero) gradient where the RMS is at most ``min_rms``,
    without overflow or underflow.

    Args:
      x: an array.
      min_rms: the floor, >= 0.

    Returns:
      A real scalar of the compute dtype of ``x``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.numerics import safe_root_mean_squares
      >>> float(safe_root_mean_squares(jnp.array([3.0, 4.0, 0.0, 0.0]), 0.0))
      2.5
    """
    x = tree.up(x)
    rms = l2_norm(x, mean=True)
    small = rms <= _as(min_rms, rms)
    masked = l2_norm(jnp.where(small, jnp.ones_like(x), x), mean=True)
    return jnp.where(small, _as(min_rms, masked), masked)


def safe_increment(count: ArrayLike) -> jax.Array:
    """``count + 1`` in the dtype of ``count``, staying at the dtype's largest value instead of overflowing.

    Integer counters stop at ``iinfo(dtype).max``, floating ones at ``finfo(dtype).max``. gradtx's own states
    use :func:`safe_int32_increment` (int32 counters). Optax's ``safe_increment``.

    Args:
      count: an integer or floating scalar (or array).

    Returns:
      ``count + 1``, or ``count`` where it already is the largest value of its dtype, in ``count``'s dtype.

    Raises:
      ValueError: another dtype: ``safe_increment(count of dtype bool): count must have an integer or
        floating dtype``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.numerics import safe_increment
      >>> print(safe_increment(jnp.asarray(3, jnp.int8)), safe_increment(jnp.asarray(127, jnp.int8)))
      4 127
    """
    count = jnp.asarray(count)
    dt = count.dtype
    top: int | np.floating[Any]
    if jnp.issubdtype(dt, jnp.integer):
        top = np.iinfo(dt).max
    elif jnp.issubdtype(dt, jnp.floating):
        top = jnp.finfo(dt).max  # type: ignore[no-untyped-call]  # unannotated in JAX (ml_dtypes.finfo)
    else:
        raise ValueError(f"safe_increment(count of dtype {dt}): count must have an integer or floating dtype")
    top_arr, one = jnp.asarray(top, dt), jnp.asarray(1, dt)
    return jnp.where(count < top_arr, count + one, top_arr)


# --------------------------------------------------------------------------------------------------
# Gradient scaling.
# --------------------------------------------------------------------------------------------------


@jax.custom_vjp
def _scaled_backward(inputs: PyTree, scale: Any) -> PyTree:
    del scale  # used by the backward pass only
    return inputs


def _scaled_backward_fwd(inputs: PyTree, scale: Any) -> tuple[PyTree, Any]:
    return inputs, scale


def _scaled_backward_bwd(scale: Any, cotangent: PyTree) -> tuple[PyTree, None]:
    def one(c: Any) -> Any:
        return (tree.hyper(scale, c) * tree.up(c)).astype(jnp.asarray(c).dtype)

    return jax.tree.map(one, cotangent), None  # no gradient with respect to ``scale``, as in Optax


_scaled_backward.defvjp(_scaled_backward_fwd, _scaled_backward_bwd)


def scale_gradient(inputs: PyTree, scale: Scalar) -> PyTree:
    """Return ``inputs`` unchanged; on the backward pass multiply their cotangents by ``scale``.

    The forward value is the identity; ``jax.grad`` through it sees ``scale * g`` (no gradient flows to
    ``scale``). A concrete ``scale`` of 1 returns ``inputs`` as they are and 0 stops the gradient
    (``lax.stop_gradient``). Each cotangent keeps its dtype. Optax's ``scale_gradient``.

    Args:
      inputs: a pytree of arrays.
      scale: the factor applied to the cotangents (a scalar; may be traced).

    Returns:
      ``inputs``, unchanged in value.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from gradtx.numerics import scale_gradient
      >>> f = lambda x: jnp.sum(scale_gradient(x, 0.5) ** 2)  # d/dx sum(x^2) = 2x, halved
      >>> print(f(jnp.array([1.0, 2.0])), jax.grad(f)(jnp.array([1.0, 2.0])))
      5.0 [1. 2.]
    """
    s = concrete_number(scale)
    if s == 1.0:
        return inputs
    if s == 0.0:
        return lax.stop_gradient(inputs)
    return _scaled_backward(inputs, scale)


# --------------------------------------------------------------------------------------------------
# Linear algebra.
# --------------------------------------------------------------------------------------------------


def _normalized(v: PyTree) -> PyTree:
    """``v / ||v||`` (the l2 norm of the whole tree)."""
    return tree.scale(1.0 / tree.norm(v), v)


def _power_iteration_cond_fun(error_tolerance: Any, num_iters: Any, loop_vars: tuple[Any, Any, Any, Any]) -> jax.Array:
    """Whether power iteration goes on: not converged (``||M v - lambda v|| / |lambda| >= error_tolerance``) and
    fewer than ``num_iters`` iterations done. ``loop_vars = (v, M v, lambda, iterations)`` (Optax's layout)."""
    v, z, eig, it = loop_vars
    it = jnp.asarray(it)
    residual = tree.norm(tree.sub(z, tree.scale(eig, v)))
    converged = jnp.abs(residual / jnp.asarray(eig).astype(residual.dtype)) < _as(error_tolerance, residual)
    return ~converged & (it < _as(num_iters, it))


def power_iteration(
    matrix: ArrayLike | Callable[[PyTree], PyTree],
    *,
    v0: PyTree | None = None,
    num_iters: int = 100,
    error_tolerance: Scalar = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
    key: jax.Array | None = None,
) -> tuple[jax.Array, PyTree]:
    """The dominant eigenvalue and its unit eigenvector, ``(eigenvalue, eigenvector)``, by power iteration.

    ``matrix`` is a square array or a callable ``v -> M v`` on pytrees (then ``v0``, a tree of the callable's
    input structure, is required). From ``v = v0 / ||v0||`` (default: uniform in [-1, 1] drawn with ``key``,
    ``PRNGKey(0)`` if None) it repeats ``v <- M v / ||M v||``, ``lambda = <v, M v>`` until
    ``||M v - lambda v|| / |lambda| < error_tolerance`` or ``num_iters`` iterations, and returns ``lambda``
    with ``M v / ||M v||``. The eigenvalue is the one of largest magnitude (with its sign) when it is unique.
    Optax's ``power_iteration``. Runs as one ``lax.while_loop`` (jit-safe).

    Args:
      matrix: a square ``(n, n)`` array, or a callable ``v -> M v`` on pytrees.
      v0: the starting vector (keyword-only): an ``(n,)`` array, or a tree of the callable's input structure
        (required for a callable). Default None (random, drawn with ``key``).
      num_iters: the largest number of iterations, >= 0 (keyword-only). Default 100.
      error_tolerance: the relative residual at which to stop, >= 0 (keyword-only). Default 1e-6.
      precision: the ``lax.Precision`` of the matrix products (keyword-only). Default ``HIGHEST``.
      key: the PRNG key drawing the default ``v0`` (keyword-only). Default None (``PRNGKey(0)``).

    Returns:
      ``(eigenvalue, eigenvector)``: a scalar and a unit vector (a tree like ``v0`` for a callable).

    Raises:
      ValueError: a callable ``matrix`` without ``v0`` (``power_iteration(v0=None): v0 must be provided when
        matrix is a callable``), or a matrix that is not square (``power_iteration(matrix of shape (2, 3)):
        matrix must be square``).

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.numerics import power_iteration
      >>> eigenvalue, eigenvector = power_iteration(jnp.array([[2.0, 0.0], [0.0, 1.0]]))
      >>> print(eigenvalue, eigenvector.round(3))
      2.0 [1. 0.]
      >>> eigenvalue, _ = power_iteration(lambda v: 3.0 * v, v0=jnp.ones(2))  # a matrix-vector product
      >>> print(eigenvalue)
      3.0
    """
    if callable(matrix):
        if v0 is None:
            raise ValueError("power_iteration(v0=None): v0 must be provided when matrix is a callable")
        mvp: Callable[[PyTree], PyTree] = matrix
    else:  # a square array: its matrix-vector product
        matrix = jnp.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"power_iteration(matrix of shape {matrix.shape}): matrix must be square")
        square = matrix
        mvp = lambda v: jnp.matmul(square, v, precision=precision)  # noqa: E731

        if v0 is None:
            key = jax.random.PRNGKey(0) if key is None else key
            v0 = jax.random.uniform(key, shape=matrix.shape[-1:], dtype=matrix.dtype, minval=-1.0, maxval=1.0)

    v0 = _normalized(v0)
    z0 = mvp(v0)
    eig_dtype = jnp.result_type(tree.vdot(v0, z0))

    not_done = functools.partial(_power_iteration_cond_fun, error_tolerance, num_iters)

    def body(carry: tuple[Any, Any, Any, Any]) -> tuple[Any, Any, Any, Any]:
        _, z, _, it = carry
        v = _normalized(z)
        z = mvp(v)
        return v, z, tree.vdot(v, z).astype(eig_dtype), it + 1

    init = (v0, z0, jnp.zeros([], eig_dtype), jnp.zeros([], jnp.int32))
    _, z, eig, _ = lax.while_loop(not_done, body, init)
    return eig, _normalized(z)


def _positive_int(call: str, name: str, value: Any) -> int:
    v = concrete_number(value)
    if v is None or isinstance(value, bool) or not v.is_integer() or v < 1:
        raise ValueError(f"{call}({name}={value!r}): {name} must be a concrete integer >= 1")
    return int(v)


def _matrix_power(m: jax.Array, p: int, precision: lax.Precision) -> jax.Array:
    """``m ** p`` for an integer ``p >= 1`` by repeated squaring."""
    result, base = None, m
    while True:
        if p & 1:
            result = base if result is None else jnp.matmul(result, base, precision=precision)
        p >>= 1
        if not p:
            return result  # type: ignore[return-value]
        base = jnp.matmul(base, base, precision=precision)


def matrix_inverse_pth_root(
    matrix: ArrayLike,
    p: int,
    num_iters: int = 100,
    ridge_epsilon: Scalar = 1e-6,
    error_tolerance: Scalar = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
) -> tuple[jax.Array, jax.Array]:
    """``(A + r I) ** (-1/p)`` of a symmetric positive semi-definite ``A`` and the final error.

    Coupled Newton iteration (Higham 2008, "Functions of Matrices", eq. 7.18), as in Shampoo: with the
    ridge ``r = ridge_epsilon * max(lambda_max(A), 1e-16)`` (``lambda_max`` by :func:`power_iteration`),
    ``D = A + r I``, ``z = (1 + p) / (2 ||D||_F)``, ``M_0 = z D``, ``H_0 = z^(1/p) I``, and
    ``T = (1 - alpha) I + alpha M`` with ``alpha = -1/p``::

        M_{i+1} = T^p M_i,    H_{i+1} = H_i T

    until ``max|M - I| <= error_tolerance``, ``num_iters`` steps, or the error grows by more than 1.2x (then
    the previous ``H`` is returned). ``H`` converges to ``D^(-1/p)``. Returns ``(H, max|M - I|)``; for a 1x1
    matrix ``((A + r) ** (-1/p), 0)``. ``p`` is a concrete integer >= 1 (any, not only 1, 2, 4 and 8).
    Optax's ``matrix_inverse_pth_root`` (from Shampoo: Gupta et al. 2018, "Shampoo: Preconditioned Stochastic
    Tensor Optimization", ICML; Anil et al. 2020, arXiv:2002.09018).

    Args:
      matrix: a symmetric positive semi-definite ``(n, n)`` array.
      p: the root, a concrete integer >= 1.
      num_iters: the largest number of Newton iterations, >= 0. Default 100.
      ridge_epsilon: the ridge relative to the largest eigenvalue, >= 0. Default 1e-6.
      error_tolerance: the ``max|M - I|`` at which to stop, >= 0. Default 1e-6.
      precision: the ``lax.Precision`` of the matrix products. Default ``HIGHEST``.

    Returns:
      ``(H, error)``: ``H`` of ``matrix``'s shape and dtype, approximately ``(A + r I) ** (-1/p)``, and the
      final ``max|M - I|`` (a scalar).

    Raises:
      ValueError: ``p`` is not a concrete integer >= 1 (``matrix_inverse_pth_root(p=0): p must be a concrete
        integer >= 1``), or the matrix is not square.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.numerics import matrix_inverse_pth_root
      >>> h, error = matrix_inverse_pth_root(jnp.array([[4.0, 0.0], [0.0, 16.0]]), 2, ridge_epsilon=0.0)
      >>> print(h.round(4), float(error) < 1e-5)  # the inverse square root
      [[0.5  0.  ]
       [0.   0.25]] True
    """
    p_int = _positive_int("matrix_inverse_pth_root", "p", p)
    matrix = jnp.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix_inverse_pth_root(matrix of shape {matrix.shape}): matrix must be square")
    a = tree.up(matrix)
    dt, n = a.dtype, a.shape[0]
    alpha = jnp.asarray(-1.0 / p_int, dt)
    eye = jnp.eye(n, dtype=dt)
    max_ev, _ = power_iteration(a, num_iters=100, error_tolerance=1e-6, precision=precision)
    ridge = _as(ridge_epsilon, a) * jnp.maximum(max_ev.astype(dt), jnp.asarray(1e-16, dt))
    if n == 1:
        return ((a + ridge) ** alpha).astype(matrix.dtype), jnp.zeros([], dt)
    damped = a + ridge * eye
    z = jnp.asarray(1 + p_int, dt) / (2 * jnp.linalg.norm(damped))
    m0 = damped * z
    h0 = eye * z ** jnp.asarray(1.0 / p_int, dt)
    tol = jnp.asarray(error_tolerance).astype(dt)

    def not_done(state: tuple[Any, ...]) -> jax.Array:
        i, _, _, _, error, improving = state
        return cast(jax.Array, (i < _as(num_iters, i)) & (error > tol) & improving)

    def body(state: tuple[Any, ...]) -> tuple[Any, ...]:
        i, m, h, _, error, _ = state
        t = (1 - alpha) * eye + alpha * m
        new_m = jnp.matmul(_matrix_power(t, p_int, precision), m, precision=precision)
        new_h = jnp.matmul(h, t, precision=precision)
        new_error = jnp.max(jnp.abs(new_m - eye))
        # The error may rise for a step before it falls; more than 1.2x is taken as divergence.
        return i + 1, new_m, new_h, h, new_error, new_error < error * 1.2

    init = (jnp.zeros([], jnp.int32), m0, h0, h0, jnp.max(jnp.abs(m0 - eye)), jnp.asarray(True))
    _, m, h, old_h, _, improving = lax.while_loop(not_done, body, init)
    error = jnp.max(jnp.abs(m - eye))
    result = jnp.where(improving, h, old_h)
    return result.astype(matrix.dtype), error


def _spectral_radius_bound(q: jax.Array) -> jax.Array:
    """An upper bound on the spectral radius of ``q``: min(Frobenius norm, max absolute column sum)."""
    if q.size == 0:
        return jnp.zeros([], q.dtype)
    return jnp.minimum(jnp.linalg.norm(q, "fro"), jnp.max(jnp.sum(jnp.abs(q), axis=0)))


def nnls(
    A: ArrayLike,  # Optax's (and NumPy's) name
    b: ArrayLike,
    iters: int,
    unroll: int | bool = 1,
    L: Scalar | None = None,  # Optax's name
) -> jax.Array:
    """Solve ``min ||A x - b||_2`` subject to ``x >= 0`` by the fast projected gradient method.

    Polyak 2015, "Projected gradient method for non-negative least square" (Contemporary Mathematics 636).
    With ``Q = A^T A``, ``q = A^T b``, ``L`` an upper bound on the spectral radius of ``Q`` (default
    ``min(||Q||_F, ||Q||_1)``), ``x_0 = p_0 = 0``, ``c_0 = 0``, each of the ``iters`` steps is::

        c' = (1 + sqrt(1 + 4 c^2)) / 2,   s = (c - 1) / c'
        x' = max(p - (Q p - q) / L, 0),   p' = x' + s (x' - x)

    ``A`` is ``(M, N)``, ``b`` is ``(M,)`` or ``(M, K)`` (K problems at once); returns ``x`` of shape ``(N,)``
    or ``(N, K)``, in the dtype of ``A`` and ``b`` (promoted together; the iteration itself runs in float32 or
    wider, so bfloat16 inputs get a bfloat16 answer computed in float32). ``unroll`` is passed to ``lax.scan``.
    Optax's ``nnls``.

    Args:
      A: the ``(M, N)`` matrix.
      b: the ``(M,)`` right-hand side, or ``(M, K)`` for K problems.
      iters: the number of iterations, a concrete integer >= 0.
      unroll: ``lax.scan``'s ``unroll``. Default 1.
      L: an upper bound on the spectral radius of ``A^T A`` (> 0), or None to compute
        ``min(||Q||_F, ||Q||_1)``. Default None.

    Returns:
      ``x >= 0`` of shape ``(N,)`` or ``(N, K)``.

    Raises:
      ValueError: ``A`` is not a matrix, ``b`` does not match it (``nnls(b of shape ...): b must be (M,) or
        (M, K) for A of shape ...``), or ``iters`` is not a concrete integer >= 0 (``nnls(iters=-1): iters must
        be a concrete integer >= 0``).

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.numerics import nnls
      >>> A = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
      >>> print(nnls(A, jnp.array([1.0, -1.0, 0.0]), iters=200))  # unconstrained: [1, -1]
      [0.5 0. ]
    """
    A, b = jnp.asarray(A), jnp.asarray(b)
    out_dtype = jnp.promote_types(A.dtype, b.dtype)  # integer inputs: the float compute dtype below
    if A.ndim != 2:
        raise ValueError(f"nnls(A of shape {A.shape}): A must be a matrix (M, N)")
    if b.ndim not in (1, 2) or b.shape[0] != A.shape[0]:
        raise ValueError(f"nnls(b of shape {b.shape}): b must be ({A.shape[0]},) or ({A.shape[0]}, K) for A of "
                         f"shape {A.shape}")
    steps = concrete_number(iters)
    if steps is None or isinstance(iters, bool) or not steps.is_integer() or steps < 0:
        raise ValueError(f"nnls(iters={iters!r}): iters must be a concrete integer >= 0")
    dt = jnp.result_type(tree.compute_dtype(A.dtype), tree.compute_dtype(b.dtype))
    if not jnp.issubdtype(out_dtype, jnp.inexact):
        out_dtype = dt
    A, b = A.astype(dt), b.astype(dt)
    q_mat, q_vec = A.T @ A, A.T @ b
    bound = _spectral_radius_bound(q_mat) if L is None else jnp.asarray(L).astype(dt)
    bound = jnp.where(bound == 0, jnp.ones_like(bound), bound)

    # The momentum scalars c_k grow like k/2; they are kept in JAX's widest float (float64 under x64), as Optax's
    # Python-float start makes them, and only s is cast to the iterate's dtype.
    cdt = jax.dtypes.canonicalize_dtype(jnp.float64)

    def step(carry: tuple[Any, Any, Any], _: Any) -> tuple[tuple[Any, Any, Any], None]:
        x, p, c = carry
        c_next = (1 + jnp.sqrt(1 + 4 * c**2)) / 2
        s = ((c - 1) / c_next).astype(dt)
        x_next = jnp.maximum(p - (q_mat @ p - q_vec) / bound, jnp.zeros_like(p))
        return (x_next, x_next + s * (x_next - x), c_next), None

    x0 = jnp.zeros(A.shape[-1:] + b.shape[1:], dt)
    (x, _, _), _ = lax.scan(step, (x0, x0, jnp.zeros([], cdt)), length=int(steps), unroll=unroll)
    return x.astype(out_dtype)


# --------------------------------------------------------------------------------------------------
# Small utilities Optax exports at its top level (``optax.multi_normal``, ``optax._src.utils``).
# --------------------------------------------------------------------------------------------------


def canonicalize_dtype(dtype: DTypeLike | None) -> np.dtype | None:
    """The dtype JAX would actually use for ``dtype`` (``float64`` -> ``float32`` unless x64 is on); ``None`` kept.

    Args:
      dtype: anything ``jnp.dtype`` accepts, or ``None``.

    Returns:
      ``jax.dtypes.canonicalize_dtype(dtype)``, or ``None`` for ``None``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.numerics import canonicalize_dtype
      >>> canonicalize_dtype(jnp.float32), canonicalize_dtype(None)
      (dtype('float32'), None)
    """
    return None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)


def canonicalize_key(key_or_seed: int | jax.Array) -> jax.Array:
    """A typed PRNG key: ``key_or_seed`` itself if it is one, else ``jax.random.key(key_or_seed)`` (an int seed).

    Args:
      key_or_seed: a typed key (``jax.random.key``) or an integer seed.

    Returns:
      A typed PRNG key array.

    Example:
      >>> from gradtx.numerics import canonicalize_key
      >>> k = canonicalize_key(0)
      >>> canonicalize_key(k) is k
      True
    """
    if isinstance(key_or_seed, jax.Array) and jnp.issubdtype(key_or_seed.dtype, jax.dtypes.prng_key):
        return key_or_seed
    return jax.random.key(key_or_seed)


class MultiNormalDiagFromLogScale:
    """A multivariate normal with diagonal covariance, parameterised by its mean and the log of its scale.

    ``x ~ N(loc, diag(exp(log_scale))^2)``; ``loc`` and ``log_scale`` broadcast to the parameter shape. Used for
    Gaussian perturbations and variational parameters (the two parameters are exposed as ``params``).

    Args:
      loc: the mean.
      log_scale: the log of the standard deviation (broadcast against ``loc``).

    Raises:
      ValueError: if the shapes of ``loc`` and ``log_scale`` do not broadcast.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from gradtx.numerics import multi_normal
      >>> d = multi_normal(jnp.zeros(3), jnp.zeros(3))
      >>> d.sample((5,), jax.random.key(0)).shape
      (5, 3)
      >>> round(float(d.log_prob(jnp.zeros(3))), 4)  # 3 * log(1 / sqrt(2 pi))
      -2.7568
    """

    def __init__(self, loc: ArrayLike, log_scale: ArrayLike) -> None:
        self._mean = jnp.asarray(loc)
        self._log_scale = jnp.asarray(log_scale)
        self._scale = jnp.exp(self._log_scale)
        self._param_shape = jax.lax.broadcast_shapes(self._mean.shape, self._scale.shape)

    def sample(self, shape: Sequence[int], key: jax.Array) -> jax.Array:
        """``shape + param_shape`` draws: ``loc + exp(log_scale) * z`` with ``z`` standard normal under ``key``."""
        z = jax.random.normal(key, shape=(*tuple(shape), *self._param_shape))
        return z * self._scale + self._mean

    def log_prob(self, x: ArrayLike) -> jax.Array:
        """``log N(x; loc, diag(scale^2))``, summed over the parameter axes (one value per leading sample)."""
        log_prob = jax.scipy.stats.norm.logpdf(x, loc=self._mean, scale=self._scale)
        return jnp.sum(log_prob, axis=tuple(-(i + 1) for i in range(len(self._param_shape))))

    @property
    def log_scale(self) -> jax.Array:
        """The log of the standard deviation."""
        return self._log_scale

    @property
    def params(self) -> list[jax.Array]:
        """``[loc, log_scale]``."""
        return [self._mean, self._log_scale]


def multi_normal(loc: ArrayLike, log_scale: ArrayLike) -> MultiNormalDiagFromLogScale:
    """A :class:`MultiNormalDiagFromLogScale` with mean ``loc`` and log standard deviation ``log_scale``.

    Args:
      loc: the mean.
      log_scale: the log of the standard deviation.

    Returns:
      The distribution (``sample(shape, key)``, ``log_prob(x)``, ``params``).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.numerics import multi_normal
      >>> multi_normal(jnp.ones(2), jnp.zeros(2)).params[0].tolist()
      [1.0, 1.0]
    """
    return MultiNormalDiagFromLogScale(loc=loc, log_scale=log_scale)
