"""A small zoo of test problems with known minima and closed forms.

Each problem exposes ``loss(w)`` (a JAX function of a 1-D parameter array, computed in the array's dtype),
``grad(w)`` (the gradient in closed form, so that ``jax.grad(loss)`` can be checked against it), ``minimum``
(the minimiser as a float64 NumPy array) and ``min_value``. The two-dimensional ones also have ``start``
(a conventional starting point) and ``contour_grid`` (a float64 NumPy grid of loss values for plots).

    Quadratic(A, x_star)   0.5 (w - x*)^T A (w - x*); analytic gradient-descent iterates
    narrow_valley()        the lecture's long, narrow, convex valley (an ill-conditioned, slightly tilted
                           2-D quadratic) on which plain gradient descent fails and adaptive methods burst
    rosenbrock(a, b)       (a - x)^2 + b (y - x^2)^2, minimum (a, a^2)

This module imports NumPy and ``jax.numpy`` only; nothing from the rest of gradtx.
"""

from __future__ import annotations

from typing import Any, cast

import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["NarrowValley", "Quadratic", "Rosenbrock", "narrow_valley", "rosenbrock"]


def _grid(
    fn: Any, xlim: tuple[float, float], ylim: tuple[float, float], n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, Y, Z)`` with ``Z = fn(points)`` on an ``n x n`` float64 grid (for ``plt.contour``)."""
    xs = np.linspace(float(xlim[0]), float(xlim[1]), int(n))
    ys = np.linspace(float(ylim[0]), float(ylim[1]), int(n))
    X, Y = np.meshgrid(xs, ys)
    Z = fn(np.stack([X, Y], axis=-1))
    return X, Y, Z


class Quadratic:
    """The convex quadratic ``L(w) = 0.5 (w - x*)^T A (w - x*)`` with ``A`` symmetric positive semi-definite.

    Closed forms (with the eigendecomposition ``A = Q diag(lam) Q^T``)::

        grad L(w)  = A (w - x*)
        minimum    = x*,  min_value = 0
        gradient descent ``w_{t+1} = w_t - lr grad L(w_t)`` has the iterates
            w_t = x* + (I - lr A)^t (w_0 - x*) = x* + Q diag((1 - lr lam)^t) Q^T (w_0 - x*)

    so along eigenvector ``i`` the error is multiplied by ``1 - lr lam_i`` every step: it shrinks
    monotonically when ``0 < lr lam_i < 1``, shrinks while flipping sign when ``1 < lr lam_i < 2``,
    oscillates with constant amplitude at ``lr lam_i = 2`` and diverges beyond.

    ``loss`` and ``grad`` work in the eigenbasis, ``0.5 sum_i lam_i ((Q^T (w - x*))_i)^2``: the same
    function, with the eigenvalues used exactly as given (the entries of an ill-conditioned ``A`` rounded
    to float32 would perturb its small eigenvalues by about ``eps |A|``).

    Args:
      A: a symmetric positive semi-definite ``(n, n)`` matrix.
      x_star: the minimiser (default: the origin).
      eigh: optional ``(eigenvalues, eigenvectors)`` of ``A`` to use instead of computing them (exact
        constants for problems built from their eigenbasis).

    Raises:
      ValueError: if ``A`` is not square (``Quadratic(A): A must be a square matrix, got shape (2, 3)``), not
        symmetric, not positive semi-definite, or ``x_star`` has not the shape ``(n,)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.testing.problems import Quadratic
      >>> q = Quadratic([[1.0, 0.0], [0.0, 4.0]], x_star=[1.0, 0.0])
      >>> print(q.loss(jnp.zeros(2)), q.grad(jnp.zeros(2)))
      0.5 [-1.  0.]
    """

    def __init__(
        self, A: ArrayLike, x_star: ArrayLike | None = None, *, eigh: tuple[ArrayLike, ArrayLike] | None = None
    ):
        A = np.asarray(A, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"Quadratic(A): A must be a square matrix, got shape {A.shape}")
        if not np.allclose(A, A.T, rtol=1e-12, atol=1e-12 * max(1.0, float(np.abs(A).max()))):
            raise ValueError("Quadratic(A): A must be symmetric")
        if eigh is None:
            lam, Q = np.linalg.eigh(A)
        else:
            lam, Q = (np.asarray(v, dtype=np.float64) for v in eigh)
        if lam.min() < -1e-12 * max(1.0, float(np.abs(lam).max())):
            raise ValueError(
                f"Quadratic(A): A must be positive semi-definite, smallest eigenvalue {lam.min()!r}"
            )
        self.A: NDArray[np.float64] = A
        self.dim: int = A.shape[0]
        self.eigenvalues: NDArray[np.float64] = lam
        self.eigenvectors: NDArray[np.float64] = Q
        x_star = np.zeros(self.dim) if x_star is None else np.asarray(x_star, dtype=np.float64)
        if x_star.shape != (self.dim,):
            raise ValueError(f"Quadratic(x_star): x_star must have shape ({self.dim},), got {x_star.shape}")
        self.x_star: NDArray[np.float64] = x_star

    # The function, in JAX (any float dtype; batched over leading axes).

    def _consts(self, w: Any) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
        dt = jnp.result_type(w) if jnp.issubdtype(jnp.result_type(w), jnp.floating) else jnp.float32
        return (
            jnp.asarray(self.x_star, dt),
            jnp.asarray(self.eigenvectors, dt),
            jnp.asarray(self.eigenvalues, dt),
        )

    def eigen_coordinates(self, w: Any) -> Any:
        """``Q^T (w - x*)``: the error in the eigenbasis (JAX; batched over leading axes)."""
        xs, Q, _ = self._consts(w)
        return (jnp.asarray(w) - xs) @ Q

    def loss(self, w: Any) -> Any:
        """``0.5 (w - x*)^T A (w - x*)``."""
        _, _, lam = self._consts(w)
        z = self.eigen_coordinates(w)
        return 0.5 * jnp.sum(lam * z * z, axis=-1)

    def grad(self, w: Any) -> Any:
        """``A (w - x*)``."""
        _, Q, lam = self._consts(w)
        return (lam * self.eigen_coordinates(w)) @ Q.T

    def loss_np(self, w: Any) -> np.ndarray:
        """The loss in float64 NumPy (batched over leading axes), for plots and references."""
        z = (np.asarray(w, dtype=np.float64) - self.x_star) @ self.eigenvectors
        return cast(np.ndarray, 0.5 * np.sum(self.eigenvalues * z * z, axis=-1))

    @property
    def minimum(self) -> np.ndarray:
        return cast(np.ndarray, self.x_star.copy())

    @property
    def min_value(self) -> float:
        return 0.0

    # Closed-form trajectories.

    def gd_factors(self, lr: float) -> np.ndarray:
        """``1 - lr lam_i``: what one gradient-descent step multiplies the error along eigenvector i by."""
        return 1.0 - float(lr) * self.eigenvalues

    def gd_trajectory(self, x0: Any, lr: float, steps: int) -> np.ndarray:
        """The gradient-descent iterates ``w_0 .. w_steps`` in closed form, float64, shape ``(steps+1, n)``.

        ``w_t = x* + Q diag((1 - lr lam)^t) Q^T (w_0 - x*)``: powers of the eigenvalue factors, not a loop
        over steps.
        """
        x0 = np.asarray(x0, dtype=np.float64)
        z0 = (x0 - self.x_star) @ self.eigenvectors
        t = np.arange(int(steps) + 1, dtype=np.float64)[:, None]
        z = np.power(self.gd_factors(lr)[None, :], t) * z0[None, :]
        return cast(np.ndarray, self.x_star + z @ self.eigenvectors.T)

    def __repr__(self) -> str:
        return f"Quadratic(dim={self.dim}, eigenvalues={np.array2string(self.eigenvalues, precision=4)})"


class NarrowValley(Quadratic):
    """The lecture's convex narrow valley: see :func:`narrow_valley` for the constants and their reasons.

    The loss in valley coordinates (``u`` along the floor, ``v`` across it, both 0 at the minimum) is
    ``0.5 (flat u^2 + steep v^2)`` with

        u =  cos(angle) (x - x*) + sin(angle) (y - y*)
        v = -sin(angle) (x - x*) + cos(angle) (y - y*)

    so the floor is the line through the minimum at slope ``tan(angle)``.

    Args:
      flat: the curvature along the floor, ``>= 0``.
      steep: the curvature across it, ``>= 0``.
      angle: the floor's angle to the x axis, in radians.
      minimum: the minimiser ``(x*, y*)``.
      start: the conventional starting point ``(x, y)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.testing.problems import NarrowValley
      >>> v = NarrowValley(flat=1.0, steep=100.0, angle=0.0, minimum=(0.0, 0.0), start=(2.0, 1.0))
      >>> print(v.loss(jnp.asarray(v.start)))  # 0.5 (1 * 2^2 + 100 * 1^2)
      52.0
    """

    def __init__(self, flat: float, steep: float, angle: float, minimum: ArrayLike, start: ArrayLike):
        c, s = float(np.cos(angle)), float(np.sin(angle))
        Q = np.array([[c, -s], [s, c]])  # columns: the along-floor and across-floor directions
        lam = np.array([float(flat), float(steep)])
        super().__init__(Q @ np.diag(lam) @ Q.T, minimum, eigh=(lam, Q))
        self.flat = float(flat)
        self.steep = float(steep)
        self.angle = float(angle)
        self.start = np.asarray(start, dtype=np.float64)
        lo = np.minimum(self.start, self.x_star)
        hi = np.maximum(self.start, self.x_star)
        span = hi - lo
        self.xlim = (float(lo[0] - 0.1 * span[0]), float(hi[0] + 0.1 * span[0]))
        self.ylim = (float(lo[1] - 0.5 * span[1]), float(hi[1] + 0.5 * span[1]))

    def valley_coordinates(self, w: Any) -> np.ndarray:
        """``(u, v)``: distance along the floor and height across it, float64 NumPy, batched."""
        return (np.asarray(w, dtype=np.float64) - self.x_star) @ self.eigenvectors

    def floor(self, x: Any) -> np.ndarray:
        """The ``y`` of the valley floor above ``x`` (where ``v = 0``)."""
        x64 = np.asarray(x, dtype=np.float64)
        return cast(np.ndarray, self.x_star[1] + np.tan(self.angle) * (x64 - self.x_star[0]))

    def contour_grid(
        self, xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None, n: int = 300
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, Y, Z)``: the loss on an ``n x n`` float64 grid, by default around the start and minimum."""
        return _grid(self.loss_np, xlim or self.xlim, ylim or self.ylim, n)

    def __repr__(self) -> str:
        return (
            f"NarrowValley(flat={self.flat:g}, steep={self.steep:g}, angle={self.angle:g}, "
            f"minimum={self.x_star.tolist()}, start={self.start.tolist()})"
        )


def narrow_valley(
    flat: float = 0.002,
    steep: float = 200.0,
    angle: float = 0.01,
    minimum: ArrayLike = (0.0, 0.0),
    start: ArrayLike = (100.0, 2.0),
) -> NarrowValley:
    """The lecture's convex narrow valley, tuned so that each optimizer shows the lecture's behaviour.

    ``L(w) = 0.5 (flat u^2 + steep v^2)`` with ``u`` the distance along the valley floor and ``v`` the
    height across it (see :class:`NarrowValley`); minimum 0 at ``minimum``. The defaults, and why:

    - ``steep = 200 = 2 / 1e-2``: gradient descent with ``lr = 1e-2`` multiplies the across-valley error by
      ``1 - lr steep = -1`` every step (float32 rounds ``lr * steep`` to exactly 2): the iterate jumps from
      one wall to the other forever, the loss stays flat at ``0.5 steep v0^2 = 100`` while the gradient norm
      stays ``steep v0 = 200``.
    - ``lr = 1e-7``: the factor is ``1 - 2e-5``, no oscillation; after 100,000 steps the wall error is
      ``exp(-2) = 13.5%`` of where it began and the floor error ``(1 - 2e-10)^1e5`` has not moved at all.
      (In exact arithmetic x drifts by +0.007, the wall's gradient having an x component; in float32 that
      step of about 2e-7 is below half an ulp of x = 100, so x stays exactly 100.)
    - ``flat = 0.002`` (condition number 1e5): along the floor the gradient ``flat u`` is tiny, so plain
      gradient descent with any stable learning rate (``lr < 2 / steep = 0.01``) needs ``~1 / (lr flat) >=
      50,000`` steps per e-fold; with ``lr = 1e-2`` the loss moves from 110 to about 108 in 6,000 steps.
    - ``start = (100, 2)``: 100 along the floor from the minimum and 1 up the wall (u0 = 100.015,
      v0 = 0.9999); the starting loss is 110, of which 100 is the wall. An adaptive method's per-coordinate
      step is about its learning rate, so with ``lr = 0.1`` it slides down the wall in ~10 steps and walks
      the 100 units of floor in 3,000 to 4,000.
    - ``angle = 0.01`` rad: the floor rises 1 unit over the 100 (the valley is almost, not exactly, axis
      aligned). This is what makes the lecture's root-mean-square optimizer (sigma = RMS of all past
      gradients) burst: with an exactly axis-aligned valley the across coordinate converges to the floor
      exactly (in float32 it even snaps onto it) and never moves again; with the tilt, walking along the
      floor keeps feeding the steep coordinate a small gradient, while its sigma -- the mean over all past
      gradients, dominated by the steep first steps -- decays like ``1 / sqrt(t)``. Once ``lr * steep /
      sigma_y > 2`` (around step 2,000 with ``lr = 0.1``) the steep coordinate is unstable: the iterate is
      thrown across the valley, the large new gradients raise sigma, the throw dies out, and the cycle
      repeats (the lecture's "explosions"). A learning rate that decays like ``1 / sqrt(t)`` cancels the
      shrinking of sigma and the walk stays smooth.
    - ``minimum = (0, 0)``: the distance to the minimum is the norm of the iterate.

    Args:
      flat: the curvature along the floor, ``>= 0``. Default 0.002.
      steep: the curvature across it, ``>= 0``. Default 200.
      angle: the floor's angle to the x axis, in radians. Default 0.01.
      minimum: the minimiser ``(x*, y*)``. Default ``(0, 0)``.
      start: the starting point. Default ``(100, 2)``.

    Returns:
      A :class:`NarrowValley` (a :class:`Quadratic` with ``start``, ``xlim``, ``ylim`` and plotting helpers).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.testing.problems import narrow_valley
      >>> valley = narrow_valley()
      >>> print(round(float(valley.loss(jnp.asarray(valley.start))), 2), valley.min_value)
      109.99 0.0
    """
    return NarrowValley(flat, steep, angle, minimum, start)


class Rosenbrock:
    """Rosenbrock's banana ``L(x, y) = (a - x)^2 + b (y - x^2)^2``.

    Closed forms:

        grad L = (-2 (a - x) - 4 b x (y - x^2),  2 b (y - x^2))
        minimum (a, a^2), min_value 0; Hessian at the minimum [[2 + 8 b a^2, -4 b a], [-4 b a, 2 b]]

    The classic start is ``(-1.2, 1)``.

    Args:
      a: the minimiser's x coordinate. Default 1.
      b: the weight of the curved valley's walls, ``> 0``. Default 100.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.testing.problems import Rosenbrock
      >>> r = Rosenbrock()
      >>> print(r.loss(jnp.array([1.0, 1.0])), r.grad(jnp.array([0.0, 0.0])), r.minimum)
      0.0 [-2.  0.] [1. 1.]
    """

    def __init__(self, a: float = 1.0, b: float = 100.0):
        self.a = float(a)
        self.b = float(b)
        self.start = np.array([-1.2, 1.0])
        self.xlim = (-2.0, 2.0)
        self.ylim = (-1.0, 3.0)

    def loss(self, w: Any) -> Any:
        w = jnp.asarray(w)
        x, y = w[..., 0], w[..., 1]
        return (self.a - x) ** 2 + self.b * (y - x * x) ** 2

    def grad(self, w: Any) -> Any:
        w = jnp.asarray(w)
        x, y = w[..., 0], w[..., 1]
        r = y - x * x
        return jnp.stack([-2.0 * (self.a - x) - 4.0 * self.b * x * r, 2.0 * self.b * r], axis=-1)

    def loss_np(self, w: Any) -> np.ndarray:
        w = np.asarray(w, dtype=np.float64)
        x, y = w[..., 0], w[..., 1]
        return cast(np.ndarray, (self.a - x) ** 2 + self.b * (y - x * x) ** 2)

    def hessian_at_minimum(self) -> np.ndarray:
        a, b = self.a, self.b
        return np.array([[2.0 + 8.0 * b * a * a, -4.0 * b * a], [-4.0 * b * a, 2.0 * b]])

    @property
    def minimum(self) -> np.ndarray:
        return np.array([self.a, self.a * self.a])

    @property
    def min_value(self) -> float:
        return 0.0

    def contour_grid(
        self, xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None, n: int = 300
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, Y, Z)``: the loss on an ``n x n`` float64 grid."""
        return _grid(self.loss_np, xlim or self.xlim, ylim or self.ylim, n)

    def __repr__(self) -> str:
        return f"Rosenbrock(a={self.a:g}, b={self.b:g})"


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Rosenbrock:
    """Rosenbrock's function ``(a - x)^2 + b (y - x^2)^2``; minimum 0 at ``(a, a^2)``.

    Args:
      a: the minimiser's x coordinate. Default 1.
      b: the weight of the curved valley's walls, ``> 0``. Default 100.

    Returns:
      A :class:`Rosenbrock` problem.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.testing.problems import rosenbrock
      >>> problem = rosenbrock()
      >>> print(round(float(problem.loss(jnp.asarray(problem.start))), 2))  # at (-1.2, 1)
      24.2
    """
    return Rosenbrock(a, b)
