"""Float64 NumPy references for ``gradtx.projections``: each projection written from its definition.

Every function takes and returns 1-D float64 vectors (a pytree raveled) and shares no code with gradtx.
"""

import numpy as np


def _vec(x):
    return np.array(x, dtype=np.float64, copy=True).ravel()


def simplex(x, scale=1.0):
    """Duchi, Shalev-Shwartz, Singer & Chandra (2008), Figure 1: sort, find rho, threshold."""
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
    """The same projection by bisection on theta in sum(max(x - theta, 0)) = scale (an independent route)."""
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
    v = _vec(x)
    return np.sign(v) * simplex(np.abs(v), scale)


def l1_ball(x, scale=1.0):
    v = _vec(x)
    return v if np.abs(v).sum() <= scale else l1_sphere(v, scale)


def l2_sphere(x, scale=1.0):
    v = _vec(x)
    return scale * v / np.linalg.norm(v)


def l2_ball(x, scale=1.0):
    v = _vec(x)
    n = np.linalg.norm(v)
    return v if n <= scale else scale * v / n


def box(x, lower, upper):
    return np.minimum(np.maximum(_vec(x), lower), upper)


def linf_ball(x, scale=1.0):
    return box(x, -scale, scale)


def vector(x, a):
    v, w = _vec(x), _vec(a)
    return (v @ w) / (w @ w) * w


def hyperplane(x, a, b):
    v, w = _vec(x), _vec(a)
    return v + (b - v @ w) / (w @ w) * w


def halfspace(x, a, b):
    v, w = _vec(x), _vec(a)
    return v if v @ w <= b else hyperplane(v, w, b)
