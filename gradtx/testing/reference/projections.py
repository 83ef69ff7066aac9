"""Float64 NumPy references for ``gradtx.projections``: each projection written from its definition.

Every function takes and returns 1-D float64 vectors (a pytree raveled) and shares no code with gradtx.
"""

import numpy as np

__all__ = [
    "simplex",
    "simplex_by_bisection",
    "l1_sphere",
    "l1_ball",
    "l2_sphere",
    "l2_ball",
    "box",
    "linf_ball",
    "vector",
    "hyperplane",
    "halfspace",
]


def _vec(x):
    return np.array(x, dtype=np.float64, copy=True).ravel()


def simplex(x, scale=1.0):
    """Float64 reference of :func:`gradtx.projections.projection_simplex`: ``argmin_{y >= 0, sum y = scale} ||y - x||``.

    Duchi, Shalev-Shwartz, Singer & Chandra 2008, "Efficient Projections onto the l1-Ball for Learning in High
    Dimensions", ICML, Figure 1: sort ``u = sort(x)`` decreasingly, take the largest ``rho`` with
    ``u_rho - (sum_{i<=rho} u_i - scale) / rho > 0``, ``theta = (sum_{i<=rho} u_i - scale) / rho``; the result is
    ``max(x - theta, 0)``. ``scale = 0`` gives zeros.

    Args:
      x: array (raveled to a vector).
      scale: the simplex's total, >= 0. Default 1.0.

    Returns:
      A new float64 vector.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import projections as ref
      >>> print(np.round(ref.simplex(np.array([1.0, 0.5, -1.0])), 4))
      [0.75 0.25 0.  ]
    """
    v = _vec(x)
    if scale == 0:
        return np.zeros_like(v)
    u = np.sort(v)[::-1]
    css = np.cumsum(u)
    rho = 0
    for k in range(1, v.size + 1):  # the largest k with u_k - (css_k - scale) / k > 0
        if u[k - 1] - (css[k - 1] - scale) / k > 0:
            rho = k
    theta = (css[rho - 1] - scale) / rho
    return np.maximum(v - theta, 0.0)


def simplex_by_bisection(x, scale=1.0, iters=200):
    """Float64 reference of :func:`gradtx.projections.projection_simplex` by an independent route: bisection.

    Solves ``sum_i max(x_i - theta, 0) = scale`` for ``theta`` by bisection on ``[min(x) - scale, max(x)]`` and
    returns ``max(x - theta, 0)``, which checks :func:`simplex` (and gradtx) without sharing its sort.

    Args:
      x: array (raveled to a vector).
      scale: the simplex's total, >= 0. Default 1.0.
      iters: the number of bisection steps. Default 200.

    Returns:
      A new float64 vector.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import projections as ref
      >>> print(np.round(ref.simplex_by_bisection(np.array([1.0, 0.5, -1.0])), 4))
      [0.75 0.25 0.  ]
    """
    v = _vec(x)
    lo, hi = v.min() - scale, v.max()
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if np.maximum(v - mid, 0.0).sum() > scale:
            lo = mid
        else:
            hi = mid
    return np.maximum(v - 0.5 * (lo + hi), 0.0)


def l1_sphere(x, scale=1.0):
    """Float64 reference of :func:`gradtx.projections.projection_l1_sphere`: ``sign(x) * simplex(|x|, scale)``.

    Args:
      x: array (raveled to a vector).
      scale: the sphere's radius, >= 0. Default 1.0.

    Returns:
      A new float64 vector with ``||y||_1 = scale``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import projections as ref
      >>> print(np.round(ref.l1_sphere(np.array([1.0, -0.5, 0.0])), 4))
      [ 0.75 -0.25  0.  ]
    """
    v = _vec(x)
    return np.sign(v) * simplex(np.abs(v), scale)


def l1_ball(x, scale=1.0):
    """Float64 reference of :func:`gradtx.projections.projection_l1_ball`.

    ``x`` if ``||x||_1 <= scale``, else :func:`l1_sphere` (the projection lands on the sphere).

    Args:
      x: array (raveled to a vector).
      scale: the ball's radius, >= 0. Default 1.0.

    Returns:
      A float64 vector (``x`` raveled when it is inside).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import projections as ref
      >>> print(np.round(ref.l1_ball(np.array([0.2, -0.3])), 4))
      [ 0.2 -0.3]
      >>> print(np.round(ref.l1_ball(np.array([1.0, -0.5, 0.0])), 4))
      [ 0.75 -0.25  0.  ]
    """
    v = _vec(x)
    return v if np.abs(v).sum() <= scale else l1_sphere(v, scale)


def l2_sphere(x, scale=1.0):
    """Float64 reference of :func:`gradtx.projections.projection_l2_sphere`: ``scale x / ||x||_2``.

    Args:
      x: array (raveled to a vector), not zero.
      scale: the sphere's radius. Default 1.0.

    Returns:
      A new float64 vector.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import projections as ref
      >>> print(np.round(ref.l2_sphere(np.array([3.0, 4.0])), 4))
      [0.6 0.8]
    """
    v = _vec(x)
    return scale * v / np.linalg.norm(v)


def l2_ball(x, scale=1.0):
    """Float64 reference of :func:`gradtx.projections.projection_l2_ball`.

    ``x`` if ``||x||_2 <= scale``, else ``scale x / ||x||_2``.

    Args:
      x: array (raveled to a vector).
      scale: the ball's radius, >= 0. Default 1.0.

    Returns:
      A float64 vector.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import projections as ref
      >>> print(np.round(ref.l2_ball(np.array([3.0, 4.0])), 4))
      [0.6 0.8]
      >>> print(np.round(ref.l2_ball(np.array([3.0, 4.0]), scale=10.0), 4))
      [3. 4.]
    """
    v = _vec(x)
    n = np.linalg.norm(v)
    return v if n <= scale else scale * v / n


def box(x, lower, upper):
    """Float64 reference of :func:`gradtx.projections.projection_box`: ``min(max(x, lower), upper)``, elementwise.

    Args:
      x: array (raveled to a vector).
      lower: the lower bound (a scalar or a vector of ``x``'s size).
      upper: the upper bound (a scalar or a vector of ``x``'s size), >= ``lower``.

    Returns:
      A new float64 vector.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import projections as ref
      >>> print(np.round(ref.box(np.array([-2.0, 0.5, 3.0]), 0.0, 1.0), 4))
      [0.  0.5 1. ]
    """
    return np.minimum(np.maximum(_vec(x), lower), upper)


def linf_ball(x, scale=1.0):
    """Float64 reference of :func:`gradtx.projections.projection_linf_ball`: clipping to ``[-scale, scale]``.

    :func:`box` with ``lower = -scale`` and ``upper = scale``.

    Args:
      x: array (raveled to a vector).
      scale: the ball's radius, >= 0. Default 1.0.

    Returns:
      A new float64 vector.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import projections as ref
      >>> print(np.round(ref.linf_ball(np.array([-2.0, 0.5, 3.0])), 4))
      [-1.   0.5  1. ]
    """
    return box(x, -scale, scale)


def vector(x, a):
    """Float64 reference of :func:`gradtx.projections.projection_vector`: ``(<x, a> / <a, a>) a``.

    The projection onto the line spanned by ``a``.

    Args:
      x: array (raveled to a vector).
      a: the direction, of ``x``'s size, not zero.

    Returns:
      A new float64 vector.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import projections as ref
      >>> print(np.round(ref.vector(np.array([1.0, 2.0]), np.array([1.0, 0.0])), 4))
      [1. 0.]
    """
    v, w = _vec(x), _vec(a)
    return (v @ w) / (w @ w) * w


def hyperplane(x, a, b):
    """Float64 reference of :func:`gradtx.projections.projection_hyperplane`.

    The projection onto ``{y : <a, y> = b}``: ``x + ((b - <x, a>) / <a, a>) a``.

    Args:
      x: array (raveled to a vector).
      a: the normal, of ``x``'s size, not zero.
      b: the offset (a scalar).

    Returns:
      A new float64 vector.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import projections as ref
      >>> print(np.round(ref.hyperplane(np.array([1.0, 2.0]), np.array([1.0, 0.0]), 3.0), 4))
      [3. 2.]
    """
    v, w = _vec(x), _vec(a)
    return v + (b - v @ w) / (w @ w) * w


def halfspace(x, a, b):
    """Float64 reference of :func:`gradtx.projections.projection_halfspace`.

    The projection onto ``{y : <a, y> <= b}``: ``x`` if ``<x, a> <= b``, else :func:`hyperplane`.

    Args:
      x: array (raveled to a vector).
      a: the normal, of ``x``'s size, not zero.
      b: the offset (a scalar).

    Returns:
      A float64 vector.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import projections as ref
      >>> print(np.round(ref.halfspace(np.array([1.0, 2.0]), np.array([1.0, 0.0]), 0.0), 4))
      [0. 2.]
    """
    v, w = _vec(x), _vec(a)
    return v if v @ w <= b else hyperplane(v, w, b)
