"""Float64 NumPy references for L-BFGS and the backtracking line search (NumPy and math only).

    scale_by_lbfgs                    the L-BFGS direction from an explicit dense inverse-Hessian matrix:
                                      the BFGS update applied pair by pair to gamma I (no two-loop recursion)
    lbfgs                             -learning_rate times that direction (the recipe without a line search)
    scale_by_backtracking_linesearch  the Armijo backtracking loop, written as a plain Python loop
    armijo_holds, strong_wolfe_holds  the conditions themselves, for assertions

Same interface as ``gradtx.testing.reference``: ``u = ref.step(g, params=None, **extra)`` on 1-D float64
vectors (the whole pytree raveled), state kept inside, inputs never mutated. The line search's ``step`` takes
``value``, ``grad`` and ``value_fn`` (a function of a float64 vector returning a float) as keyword arguments.
"""

import math

import numpy as np

__all__ = ["scale_by_lbfgs", "lbfgs", "scale_by_backtracking_linesearch", "armijo_holds", "strong_wolfe_holds"]


def _vec(x):
    """A float64 copy of ``x``."""
    return np.array(x, dtype=np.float64, copy=True)


class scale_by_lbfgs:
    """Float64 reference of :class:`gradtx.scale_by_lbfgs`: the L-BFGS direction from a dense matrix.

    u = H_k g_k with the L-BFGS inverse-Hessian approximation H_k (Nocedal & Wright 2006, "Numerical
    Optimization", 2nd ed., eq. 7.19), built as an explicit dense matrix (no two-loop recursion). On step k
    (0-based) with parameters w_k, the pair s = w_k - w_{k-1}, y = g_k - g_{k-1}, rho = 1 / (y.s) (0 if
    y.s = 0) is appended from k = 1 on, and only the last ``memory_size`` pairs are kept; then::

        H = gamma I;   for each kept pair, oldest first:   H = (I - rho s y^T) H (I - rho y s^T) + rho s s^T

    with gamma = (s.y) / (y.y) of the newest pair (1 if y = 0) when ``scale_init_precond``, else 1; on the first
    step gamma = min(1, 1 / abs(g_0)) (the same heuristic as gradtx and Optax). The update is the positive direction
    (gradtx's block does not negate it).

    Call ``step(g, params, **extra)`` once per update with the gradient and the parameters (1-D float64
    vectors, the whole pytree raveled; extra keyword arguments are ignored); it returns the update as a new
    float64 array and keeps the state inside the object.

    Args:
      memory_size: the number of (s, y) pairs kept, >= 1. Default 10.
      scale_init_precond: whether H starts from gamma I rather than I. Default True.

    Raises:
      ValueError: ``reference scale_by_lbfgs: params are required``, from ``step`` when ``params`` is None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> # f(w) = (w_1^2 + 2 w_2^2) / 2 at w = [1, 1], then at w = [0.5, 0.5]
      >>> grads, params = [[1.0, 2.0], [0.5, 1.0]], [[1.0, 1.0], [0.5, 0.5]]
      >>> print(np.round(ref.run(ref.scale_by_lbfgs(), grads, params), 4))
      [[0.4472 0.8944]
       [0.5    0.5   ]]
    """

    def __init__(self, memory_size=10, scale_init_precond=True):
        self.memory_size = int(memory_size)
        self.scale_init_precond = bool(scale_init_precond)
        self.pairs = []  # (s, y, rho), oldest first
        self.prev = None  # (w, g) of the previous step
        self.H = None  # the dense matrix used by the last step

    def step(self, g, params=None, **extra):
        if params is None:
            raise ValueError("reference scale_by_lbfgs: params are required")
        g, w = _vec(g), _vec(params)
        if self.prev is None:
            norm = math.sqrt(float(g @ g))
            gamma = min(1.0, 1.0 / norm) if norm > 0 else 1.0
        else:
            s, y = w - self.prev[0], g - self.prev[1]
            ys, yy = float(y @ s), float(y @ y)
            self.pairs = [*self.pairs, (s, y, 0.0 if ys == 0.0 else 1.0 / ys)][-self.memory_size :]
            gamma = ys / yy if yy > 0 else 1.0
        if not self.scale_init_precond:
            gamma = 1.0
        eye = np.eye(g.shape[0])
        H = gamma * eye
        for s, y, rho in self.pairs:
            V = eye - rho * np.outer(y, s)
            H = V.T @ H @ V + rho * np.outer(s, s)
        self.prev, self.H = (w, g), H
        return H @ g


class lbfgs:
    """Float64 reference of :func:`gradtx.lbfgs` with ``linesearch=None``: w_{k+1} = w_k - lr H_k g_k.

    The L-BFGS recipe without a line search (Nocedal & Wright 2006, "Numerical Optimization", 2nd ed., section
    7.2), H_k the dense inverse-Hessian approximation of :class:`scale_by_lbfgs`, written again here rather than
    composed::

        u = -lr_t H_k g_k

    Call ``step(g, params, **extra)`` once per update with the gradient and the parameters (1-D float64
    vectors, the whole pytree raveled; extra keyword arguments are ignored); it returns the update as a new
    float64 array and keeps the state inside the object.

    Args:
      learning_rate: lr_t, a float or a callable ``count -> float`` of the 0-based count, or None for 1.
        Default None.
      memory_size: the number of (s, y) pairs kept, >= 1. Default 10.
      scale_init_precond: whether H starts from gamma I rather than I. Default True.
      linesearch: must be None (gradtx's default zoom line search has no reference here). Default None.

    Raises:
      ValueError: ``reference lbfgs: only linesearch=None has a reference`` for another ``linesearch``, and
        ``reference lbfgs: params are required`` from ``step`` when ``params`` is None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> # f(w) = (w_1^2 + 2 w_2^2) / 2 at w = [1, 1], then at w = [0.5, 0.5]
      >>> grads, params = [[1.0, 2.0], [0.5, 1.0]], [[1.0, 1.0], [0.5, 0.5]]
      >>> print(np.round(ref.run(ref.lbfgs(1.0), grads, params), 4))
      [[-0.4472 -0.8944]
       [-0.5    -0.5   ]]
    """

    def __init__(self, learning_rate=None, memory_size=10, scale_init_precond=True, linesearch=None):
        if linesearch is not None:
            raise ValueError("reference lbfgs: only linesearch=None has a reference")
        self.lr = 1.0 if learning_rate is None else learning_rate
        self.m, self.scaled = int(memory_size), bool(scale_init_precond)
        self.pairs, self.prev, self.count = [], None, 0

    def step(self, g, params=None, **extra):
        if params is None:
            raise ValueError("reference lbfgs: params are required")
        g, w = _vec(g), _vec(params)
        n = g.shape[0]
        if self.prev is None:
            norm = math.sqrt(float(g @ g))
            gamma = (min(1.0, 1.0 / norm) if norm > 0 else 1.0) if self.scaled else 1.0
        else:
            s, y = w - self.prev[0], g - self.prev[1]
            ys, yy = float(y @ s), float(y @ y)
            self.pairs = ([*self.pairs, (s, y, 0.0 if ys == 0.0 else 1.0 / ys)])[-self.m :]
            gamma = (ys / yy if yy > 0 else 1.0) if self.scaled else 1.0
        H = gamma * np.eye(n)
        for s, y, rho in self.pairs:
            V = np.eye(n) - rho * np.outer(y, s)
            H = V.T @ H @ V + rho * np.outer(s, s)
        lr = float(self.lr(self.count)) if callable(self.lr) else float(self.lr)  # type: ignore[arg-type]
        self.prev, self.count = (w, g), self.count + 1
        return -lr * (H @ g)


class scale_by_backtracking_linesearch:
    """Float64 reference of :class:`gradtx.scale_by_backtracking_linesearch`: Armijo backtracking.

    A plain Python loop (Nocedal & Wright 2006, "Numerical Optimization", Algorithm 3.1): u = eta d, eta the
    first of eta_0, c eta_0, c^2 eta_0, ... (c = decrease_factor) with::

        value_fn(w + eta d) <= (1 + rtol) value + slope_rtol eta (grad . d) + atol

    eta_0 = min(increase_factor eta_prev, max_learning_rate), eta_prev = 1 initially; at most
    max_backtracking_steps + 1 values are tried; if none is accepted the last is used, or 0 if its value is not
    finite. The accepted step size is kept as ``learning_rate``, the number of values tried as ``steps``.

    Call ``step(d, params, value=f(w), grad=grad f(w), value_fn=f)`` once per update with the direction ``d``
    and the parameters ``w`` (1-D float64 vectors; ``value_fn`` maps a float64 vector to a float); it returns
    eta d as a new float64 array.

    Args:
      max_backtracking_steps: the most step-size decreases per search, >= 0.
      slope_rtol: the sufficient-decrease constant c1, in (0, 1). Default 1e-4.
      decrease_factor: the factor c applied per backtracking step, in (0, 1). Default 0.8.
      increase_factor: the factor on the previous step size for the next search's first try, >= 1. Default 1.5.
      max_learning_rate: the largest first try, > 0. Default 1.0.
      atol: the absolute tolerance of the test, >= 0. Default 0.0.
      rtol: the relative tolerance on ``value``, >= 0. Default 0.0.
      store_grad: ignored (gradtx's option to keep the gradient at the new point). Default False.
      verbose: ignored. Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> def f(w):
      ...     return float(w @ w)
      >>> ls = ref.scale_by_backtracking_linesearch(max_backtracking_steps=10, decrease_factor=0.5)
      >>> w = np.array([1.0, -2.0])
      >>> u = ls.step(-2 * w, w, value=f(w), grad=2 * w, value_fn=f)
      >>> print(np.round(u, 4), ls.learning_rate, ls.steps)
      [-1.  2.] 0.5 2
    """

    def __init__(
        self,
        max_backtracking_steps,
        slope_rtol=1e-4,
        decrease_factor=0.8,
        increase_factor=1.5,
        max_learning_rate=1.0,
        atol=0.0,
        rtol=0.0,
        store_grad=False,
        verbose=False,
    ):
        self.max_steps = int(max_backtracking_steps)
        self.c, self.dec, self.inc = float(slope_rtol), float(decrease_factor), float(increase_factor)
        self.max_lr, self.atol, self.rtol = float(max_learning_rate), float(atol), float(rtol)
        self.learning_rate = 1.0
        self.steps = 0  # values computed by the last search

    def step(self, d, params=None, *, value, grad, value_fn, **extra):
        d, w = _vec(d), _vec(params)
        slope = float(_vec(grad) @ d)
        value = float(value)
        eta = min(self.inc * self.learning_rate, self.max_lr)
        error = math.inf
        self.steps = 0
        for j in range(self.max_steps + 1):
            if j > 0:
                eta = self.dec * eta
            new_value = float(value_fn(w + eta * d))
            error = new_value - (1.0 + self.rtol) * value - eta * self.c * slope
            error = math.inf if math.isnan(error) else max(error, 0.0)
            self.steps += 1
            if error <= self.atol:
                break
        self.learning_rate = 0.0 if math.isinf(error) else eta
        return self.learning_rate * d


def armijo_holds(f0, slope0, f_eta, eta, c1, atol=0.0, rtol=0.0):
    """Whether the Armijo (sufficient decrease) condition holds, for assertions on gradtx's line searches.

    Nocedal & Wright 2006, "Numerical Optimization", eq. 3.4, with gradtx's tolerances::

        f(w + eta d) <= (1 + rtol) f(w) + c1 eta (grad f(w) . d) + atol

    Args:
      f0: f(w), a float.
      slope0: the directional derivative grad f(w) . d, a float (< 0 for a descent direction).
      f_eta: f(w + eta d), a float.
      eta: the step size, > 0.
      c1: the sufficient-decrease constant, in (0, 1).
      atol: the absolute tolerance, >= 0. Default 0.0.
      rtol: the relative tolerance on f0, >= 0. Default 0.0.

    Returns:
      True when the condition holds, a Python bool.

    Examples:
      >>> from gradtx.testing import reference as ref
      >>> # f(w) = w^2 at w = 1, d = -2: f(1 - 2 eta)
      >>> print(ref.armijo_holds(1.0, -4.0, 0.0, 0.5, 1e-4), ref.armijo_holds(1.0, -4.0, 1.0, 1.0, 1e-4))
      True False
    """
    return float(f_eta) <= (1.0 + rtol) * float(f0) + c1 * eta * float(slope0) + atol


def strong_wolfe_holds(f0, slope0, f_eta, slope_eta, eta, c1, c2):
    """Whether the strong Wolfe conditions hold, for assertions on gradtx's zoom line search.

    Nocedal & Wright 2006, "Numerical Optimization", eq. 3.7: the Armijo condition of :func:`armijo_holds` with
    c1 (no tolerances) and the curvature condition::

        |grad f(w + eta d) . d| <= c2 |grad f(w) . d|

    Args:
      f0: f(w), a float.
      slope0: the directional derivative grad f(w) . d, a float.
      f_eta: f(w + eta d), a float.
      slope_eta: the directional derivative grad f(w + eta d) . d, a float.
      eta: the step size, > 0.
      c1: the sufficient-decrease constant, in (0, c2).
      c2: the curvature constant, in (c1, 1).

    Returns:
      True when both conditions hold, a Python bool.

    Examples:
      >>> from gradtx.testing import reference as ref
      >>> # f(w) = w^2 at w = 1, d = -2: f(1 - 2 eta) and its slope -4 (1 - 2 eta)
      >>> print(ref.strong_wolfe_holds(1.0, -4.0, 0.0, 0.0, 0.5, 1e-4, 0.9))
      True
      >>> print(ref.strong_wolfe_holds(1.0, -4.0, 0.9604, -3.92, 0.01, 1e-4, 0.9))  # too short a step
      False
    """
    return armijo_holds(f0, slope0, f_eta, eta, c1) and abs(float(slope_eta)) <= c2 * abs(float(slope0))
