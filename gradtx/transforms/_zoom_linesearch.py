"""The zoom line search: a step size with the strong Wolfe conditions (Nocedal & Wright 2006, Algorithms 3.5
and 3.6); see :mod:`gradtx.transforms.linesearch` for the protocol both line searches share.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import Params, Scalar, Updates, safe_int32_increment, zero_count
from gradtx.fields import (
    choice,
    concrete_number,
    flag,
    integer,
    non_negative,
    positive,
    probability,
    pytree_class,
)
from gradtx.transforms._linesearch_common import (
    Linesearch,
    directional_derivative,
    moved,
    positive_or_inf,
    report,
    scaled,
    select,
    value_dtype,
)

__all__ = [
    "FLAG_CURVATURE_COND_NOT_SATISFIED",
    "FLAG_INTERVAL_NOT_FOUND",
    "FLAG_INTERVAL_TOO_SMALL",
    "FLAG_NOT_A_DESCENT_DIRECTION",
    "FLAG_NO_STEPSIZE_FOUND",
    "ScaleByZoomLinesearchState",
    "ZoomLinesearchInfo",
    "cubic_minimizer",
    "quadratic_minimizer",
    "scale_by_zoom_linesearch",
]


# --------------------------------------------------------------------------------------------------
# Zoom line search (strong Wolfe conditions).
# --------------------------------------------------------------------------------------------------


# What ``scale_by_zoom_linesearch(verbose=True)`` prints when the search ends without meeting the strong Wolfe
# conditions (the same texts as Optax's, which tools and tests match on).
FLAG_INTERVAL_NOT_FOUND = (
    "No interval satisfying curvature condition. Consider increasing maximal possible stepsize of the linesearch."
)
FLAG_INTERVAL_TOO_SMALL = "Length of searched interval has been reduced below threshold."
FLAG_CURVATURE_COND_NOT_SATISFIED = (
    "Returning stepsize with sufficient decrease but curvature condition not satisfied."
)
FLAG_NO_STEPSIZE_FOUND = "Linesearch failed, no stepsize satisfying sufficient decrease found."
FLAG_NOT_A_DESCENT_DIRECTION = (
    "The linesearch failed because the provided direction is not a descent direction. "
)


class ZoomLinesearchInfo(NamedTuple):
    """Diagnostics of the last zoom line search (the ``info`` of ``ScaleByZoomLinesearchState``).

    A positive curvature error alone is benign (e.g. a ``max_learning_rate`` too small); a positive decrease
    error means the value may not have decreased.

    Attributes:
      num_linesearch_steps: the number of values (and gradients) computed, an int32 scalar.
      decrease_error: the final violation of the sufficient decrease condition, ``max(0, violation)`` (0 when
        it holds; inf before the first update).
      curvature_error: the final violation of the curvature condition, likewise.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import gradtx
      >>> f = lambda w: jnp.sum(w ** 2)
      >>> w = jnp.array([1.0, 2.0])
      >>> value, grad = jax.value_and_grad(f)(w)
      >>> tx = gradtx.scale_by_zoom_linesearch(max_linesearch_steps=15)
      >>> _, state = tx.update(-grad, tx.init(w), w, value=value, grad=grad, value_fn=f)
      >>> print(state.info.num_linesearch_steps, state.info.decrease_error, state.info.curvature_error)
      2 0.0 0.0
    """

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array


class ScaleByZoomLinesearchState(NamedTuple):
    """The state of ``scale_by_zoom_linesearch``.

    Attributes:
      learning_rate: the step size accepted last (1 before the first update), a scalar in float32 or wider.
      value: the objective at the accepted point (inf before the first update).
      grad: the gradient at the accepted point, in the params' dtypes (reused by
        :func:`value_and_grad_from_state`).
      info: the diagnostics of the last search, a ``ZoomLinesearchInfo``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import gradtx
      >>> f = lambda w: jnp.sum(w ** 2)
      >>> w = jnp.array([1.0, 2.0])
      >>> value, grad = jax.value_and_grad(f)(w)
      >>> tx = gradtx.scale_by_zoom_linesearch(max_linesearch_steps=15)
      >>> _, state = tx.update(-grad, tx.init(w), w, value=value, grad=grad, value_fn=f)
      >>> print(state.learning_rate, state.value, state.grad)  # the minimum along -grad, at w - 0.5 grad
      0.5 0.0 [0. 0.]
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: Updates
    info: ZoomLinesearchInfo


class _Zoom(NamedTuple):
    """The carry of the zoom line search (Nocedal & Wright 2006, Algorithms 3.5 and 3.6).

    ``stepsize, value, grad, slope``: the last point tried. ``low`` and ``high`` bracket a step size with
    the strong Wolfe conditions, ``phi(low) <= phi(high)`` (``low`` need not be the smaller one);
    ``cubic_ref`` is the third point of the cubic interpolation. ``safe_*``: the best point found so far
    with sufficient decrease, used if the curvature condition cannot be met.
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    stepsize: jax.Array
    value: jax.Array
    grad: Updates
    slope: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array
    error: jax.Array
    interval_found: jax.Array
    done: jax.Array
    failed: jax.Array
    low: jax.Array
    value_low: jax.Array
    slope_low: jax.Array
    high: jax.Array
    value_high: jax.Array
    slope_high: jax.Array
    cubic_ref: jax.Array
    value_cubic_ref: jax.Array
    safe_stepsize: jax.Array
    safe_value: jax.Array
    safe_grad: Updates


def cubic_minimizer(a: Any, fa: Any, fpa: Any, b: Any, fb: Any, c: Any, fc: Any) -> jax.Array:
    """The local minimiser of the cubic through ``(a, fa)``, ``(b, fb)``, ``(c, fc)`` with slope ``fpa`` at ``a``.

    ``p(x) = A (x-a)^3 + B (x-a)^2 + fpa (x-a) + fa``; NaN when it has no local minimiser (callers reject
    NaN by their interval checks). Nocedal & Wright 2006, section 3.5.
    """
    db, dc = b - a, c - a
    rb = fb - fa - fpa * db  # what the linear part misses at b and at c
    rc = fc - fa - fpa * dc
    denominator = (db * dc) ** 2 * (db - dc)
    big_a = (dc * dc * rb - db * db * rc) / denominator
    big_b = (-(dc**3) * rb + db**3 * rc) / denominator
    return cast(jax.Array, a + (-big_b + jnp.sqrt(big_b * big_b - 3.0 * big_a * fpa)) / (3.0 * big_a))


def quadratic_minimizer(a: Any, fa: Any, fpa: Any, b: Any, fb: Any) -> jax.Array:
    """The critical point of the quadratic through ``(a, fa)`` and ``(b, fb)`` with slope ``fpa`` at ``a``."""
    db = b - a
    curvature = (fb - fa - fpa * db) / (db * db)
    return cast(jax.Array, a - fpa / (2.0 * curvature))


@pytree_class
class scale_by_zoom_linesearch(Linesearch[ScaleByZoomLinesearchState]):
    """Line search for the strong Wolfe conditions (Nocedal & Wright 2006, *Numerical Optimization*, 2nd ed.,
    Springer, Algorithms 3.5 and 3.6): returns ``eta * u``.

    Finds ``eta`` with, for ``phi(eta) = f(w + eta u)``, ``c1 = slope_rtol``, ``c2 = curv_rtol``,
    ``eps = tol``::

        phi(eta) <= phi(0) + c1 eta phi'(0) + eps          sufficient decrease (Armijo)
        |phi'(eta)| <= c2 |phi'(0)| + eps                  small curvature (strong Wolfe)

    1. Bracketing (Algorithm 3.5): try ``eta_1`` (1 with ``initial_guess_strategy='one'``, the previous
       step size with ``'keep'``), then ``increase_factor`` times the last, capped at ``max_learning_rate``,
       until a point satisfies both conditions, or an interval is known to hold one: the point has
       insufficient decrease or a value not below the previous one, or a non-negative slope.
    2. Zoom (Algorithm 3.6): shrink the interval with the minimiser of the cubic through its ends and the
       previous end, else of the quadratic, else bisection (each only when it falls well inside the
       interval), until a point satisfies both conditions.

    Near a minimum, where ``phi(eta) - phi(0)`` is below rounding, sufficient decrease may be replaced by
    Hager & Zhang's approximate Wolfe condition ``phi'(eta) <= (2 c1 - 1) phi'(0)`` when also
    ``phi(eta) <= phi(0) + approx_dec_rtol |phi(0)|`` (Hager & Zhang 2006, ACM TOMS 32(1), eq. 23, 26-27).
    The search stops after ``max_linesearch_steps`` values, or when the interval is shorter than
    ``stepsize_precision`` and a step with sufficient decrease is known; it then takes the best such step, or
    the last one tried if there is none (0 if its value is not finite). Each tried point costs one
    ``jax.value_and_grad(value_fn)``; the value and gradient at the accepted point are stored (see
    :func:`value_and_grad_from_state`).

    ``update(updates, state, params, *, value, grad, value_fn, **extra)``: ``value = f(params)``,
    ``grad = grad f(params)``, ``value_fn = f``; extra keyword arguments that ``value_fn`` takes (data, ...)
    are passed to it, the others are ignored. ``u`` must be a descent direction (``<grad f(w), u> < 0``).

    Args:
      max_linesearch_steps: the largest number of values computed per search, a whole number >= 1.
      max_learning_rate: the largest step size tried, > 0, or ``None`` (the default: no cap).
      tol: the tolerance ``eps`` added to both conditions, >= 0. Default 0.0.
      increase_factor: the factor between bracketing trials, > 0. Default 2.0.
      slope_rtol: ``c1`` of the sufficient decrease condition, in [0, 1). Default 1e-4.
      curv_rtol: ``c2`` of the curvature condition, in (0, 1), or ``inf`` to drop that condition. Default 0.9.
      approx_dec_rtol: the relative tolerance of the approximate Wolfe condition, >= 0, or ``None`` for the
        classical sufficient decrease only. Default 1e-6.
      stepsize_precision: the interval length below which the search stops, >= 0. Default 1e-5.
      initial_guess_strategy: ``'one'`` (start from 1) or ``'keep'`` (from the previous step size). Default
        ``'keep'``.
      verbose: print, at run time, why a search did not meet the strong Wolfe conditions. Default False.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByZoomLinesearchState``.

    Raises:
      ValueError: at construction, for a value out of range (``scale_by_zoom_linesearch(curv_rtol=1.5):
        curv_rtol must be in (0, 1) or inf (Wolfe: 0 <= c1 < c2 < 1)``, ``initial_guess_strategy must be one
        of 'one', 'keep'``); in ``update``, without params or without ``value``, ``grad`` or ``value_fn``
        (``scale_by_zoom_linesearch.update: the keyword arguments value (f(params)), grad (its gradient) and
        value_fn (f) are required; missing: value``).
      TypeError: at construction, for a hyperparameter of the wrong kind (a string, a non-bool flag); in
        ``update``, for updates or a gradient whose tree differs from the params given to ``init``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import gradtx
      >>> f = lambda w: jnp.sum(w ** 2)
      >>> w = jnp.array([1.0, 2.0])
      >>> value, grad = jax.value_and_grad(f)(w)
      >>> tx = gradtx.scale_by_zoom_linesearch(max_linesearch_steps=15)
      >>> updates, state = tx.update(-grad, tx.init(w), w, value=value, grad=grad, value_fn=f)
      >>> print(updates, state.learning_rate)  # eta = 0.5 reaches the minimum 0
      [-1. -2.] 0.5
    """

    max_linesearch_steps: int = integer(lo=1)
    max_learning_rate: Scalar | None = positive(default=None, optional=True)  # None: no cap
    tol: Scalar = non_negative(default=0.0)
    increase_factor: Scalar = positive(default=2.0)
    slope_rtol: Scalar = probability(default=1e-4)
    curv_rtol: Scalar = positive(default=0.9)  # in (0, 1) or inf (__check_init__)
    approx_dec_rtol: Scalar | None = non_negative(default=1e-6, optional=True)  # None: the classical condition
    stepsize_precision: Scalar = non_negative(default=1e-5)
    initial_guess_strategy: str = choice(default="keep", choices=("one", "keep"))
    verbose: bool = flag(default=False)

    def __check_init__(self) -> None:
        c2 = concrete_number(self.curv_rtol)
        if c2 is not None and not (c2 == math.inf or c2 < 1.0):
            self._fail("curv_rtol", self.curv_rtol, "must be in (0, 1) or inf (Wolfe: 0 <= c1 < c2 < 1)")

    def init(self, params: Params) -> ScaleByZoomLinesearchState:
        vdt = value_dtype(params)
        inf = jnp.full([], jnp.inf, vdt)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.ones([], vdt),
            value=inf,
            grad=tree.zeros_like(params),
            info=ZoomLinesearchInfo(num_linesearch_steps=zero_count(), decrease_error=inf, curvature_error=inf),
        )

    def _tree_like(self, state: ScaleByZoomLinesearchState, params: Params) -> Updates:
        del params
        return state.grad

    def _search_update(
        self, updates: Updates, state: ScaleByZoomLinesearchState, params: Params, value: Any, grad: Updates,
        fn: Callable[[Params], Any], vdt: np.dtype,
    ) -> tuple[Updates, ScaleByZoomLinesearchState]:
        previous = jnp.asarray(state.learning_rate).astype(vdt)
        guess = jnp.ones([], vdt) if self.initial_guess_strategy == "one" else previous
        s = self._search(params, updates, jnp.asarray(value).astype(vdt), tree.cast_like(grad, state.grad),
                         guess, jax.value_and_grad(fn), vdt)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=s.stepsize,
            value=s.value,
            grad=s.grad,
            info=ZoomLinesearchInfo(
                num_linesearch_steps=s.count, decrease_error=s.decrease_error, curvature_error=s.curvature_error
            ),
        )
        return scaled(s.stepsize, updates), new_state

    def _search(
        self,
        params: Params,
        updates: Updates,
        value0: jax.Array,
        grad0: Updates,
        guess: jax.Array,
        value_and_grad: Callable[[Params], tuple[jax.Array, Updates]],
        vdt: np.dtype,
    ) -> _Zoom:
        """Run Algorithms 3.5 and 3.6 along ``updates`` from ``params``; the final carry."""

        def h(x: Any) -> jax.Array:
            return tree.hyper(x, vdt)

        tol, c1 = h(self.tol), h(self.slope_rtol)
        slope0 = directional_derivative(grad0, updates, vdt)
        max_steps = self.max_linesearch_steps

        def evaluate(stepsize: jax.Array) -> tuple[jax.Array, Updates, jax.Array]:
            v, g = value_and_grad(moved(params, stepsize, updates))
            g = tree.cast_like(g, grad0)
            return jnp.asarray(v).astype(vdt), g, directional_derivative(g, updates, vdt)

        def errors(stepsize: jax.Array, v: jax.Array, slope: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            # Sufficient decrease, Nocedal & Wright (3.7a).
            decrease = v - value0 - c1 * stepsize * slope0
            if self.approx_dec_rtol is not None:
                # Hager & Zhang's approximate Wolfe condition (their eq. 23), allowed only when the value has
                # not risen by more than approx_dec_rtol |phi(0)| (their eq. 26-27 with one iterate).
                approx = slope - (2.0 * c1 - 1.0) * slope0
                approx = jnp.maximum(approx, v - value0 - h(self.approx_dec_rtol) * jnp.abs(value0))
                decrease = jnp.minimum(approx, decrease)
            decrease = positive_or_inf(decrease)
            # Curvature, Nocedal & Wright (3.7b).
            curvature = positive_or_inf(jnp.abs(slope) - h(self.curv_rtol) * jnp.abs(slope0))
            return decrease, curvature, jnp.maximum(decrease, curvature)

        def advanced(s: _Zoom, point: tuple[Any, ...], errs: tuple[Any, ...], found: Any, done: Any, failed: Any,
                     low: tuple[Any, ...], high: tuple[Any, ...], ref: tuple[Any, ...],
                     safe: tuple[Any, ...]) -> _Zoom:
            """The carry after one iteration: the ``point`` tried (step size, value, gradient, slope), its
            ``errs`` (decrease, curvature, their maximum), the flags, the new interval ends ``low`` and ``high``
            (step size, value, slope), the cubic's third point ``ref`` and the ``safe`` point."""
            return _Zoom(
                count=safe_int32_increment(s.count),
                stepsize=point[0], value=point[1], grad=point[2], slope=point[3],
                decrease_error=errs[0], curvature_error=errs[1], error=errs[2],
                interval_found=found, done=done, failed=failed,
                low=low[0], value_low=low[1], slope_low=low[2],
                high=high[0], value_high=high[1], slope_high=high[2],
                cubic_ref=ref[0], value_cubic_ref=ref[1],
                safe_stepsize=safe[0], safe_value=safe[1], safe_grad=safe[2],
            )  # fmt: skip

        def bracket(s: _Zoom) -> _Zoom:
            """One iteration of Algorithm 3.5: a larger step, or the interval to zoom into."""
            first = s.count == 0
            stepsize = jnp.where(first, guess, h(self.increase_factor) * s.stepsize)
            if self.max_learning_rate is not None:
                at_max = stepsize >= h(self.max_learning_rate)
                stepsize = jnp.minimum(stepsize, h(self.max_learning_rate))
            else:
                at_max = jnp.asarray(False)
            v, g, slope = evaluate(stepsize)
            decrease, curvature, error = errors(stepsize, v, slope)
            safe = select(decrease <= tol, (stepsize, v, g), (s.safe_stepsize, s.safe_value, s.safe_grad))
            # Too far: insufficient decrease, or no lower than the previous point -> zoom(previous, new).
            high_is_new = (decrease > 0.0) | ((v >= s.value) & ~first)
            # Past a minimum of phi (slope >= 0) with a good value -> zoom(new, previous).
            low_is_new = (slope >= 0.0) & ~high_is_new
            new, previous = (stepsize, v, slope), (s.stepsize, s.value, s.slope)
            low = select(low_is_new, new, previous)
            high = select(low_is_new, previous, new)
            found = high_is_new | low_is_new | (error <= tol)
            # At max_learning_rate without an interval: larger steps are not allowed, take this one.
            done = (error <= tol) | (at_max & ~found)
            failed = (s.count + 1 >= max_steps) & ~done
            return advanced(s, (stepsize, v, g, slope), (decrease, curvature, error), found, done, failed, low, high,
                            low[:2], safe)

        def zoom(s: _Zoom) -> _Zoom:
            """One iteration of Algorithm 3.6: a trial point inside the interval, and the smaller interval."""
            width = jnp.abs(s.high - s.low)
            left, right = jnp.minimum(s.low, s.high), jnp.maximum(s.low, s.high)
            too_small = width <= h(self.stepsize_precision)
            cubic = cubic_minimizer(s.low, s.value_low, s.slope_low, s.high, s.value_high, s.cubic_ref,
                                    s.value_cubic_ref)
            use_cubic = (cubic > left + 0.2 * width) & (cubic < right - 0.2 * width)
            quad = quadratic_minimizer(s.low, s.value_low, s.slope_low, s.high, s.value_high)
            use_quad = ~use_cubic & (quad > left + 0.1 * width) & (quad < right - 0.1 * width)
            middle = jnp.where(use_cubic, cubic, jnp.where(use_quad, quad, (s.low + s.high) / 2.0))
            v, g, slope = evaluate(middle)
            decrease, curvature, error = errors(middle, v, slope)
            better = (decrease <= tol) & (v < s.safe_value)
            safe = select(better, (middle, v, g), (s.safe_stepsize, s.safe_value, s.safe_grad))
            done = error <= tol
            mid, low, high = (middle, v, slope), (s.low, s.value_low, s.slope_low), (s.high, s.value_high, s.slope_high)
            high_is_middle = (decrease > 0.0) | (v >= s.value_low)
            high_is_low = (slope * (s.high - s.low) >= 0.0) & ~high_is_middle
            new_high = select(high_is_middle, mid, select(high_is_low, low, high))
            new_low = select(high_is_middle, low, mid)
            # The end that was replaced becomes the third point of the next cubic.
            ref = select(high_is_middle | high_is_low, (s.high, s.value_high), (s.low, s.value_low))
            # Give up on curvature when the interval is too small and a step with sufficient decrease is known
            # (without one, keep going: very steep functions need very small steps).
            failed = ((s.count + 1 >= max_steps) | (too_small & (safe[0] > 0.0))) & ~done
            return advanced(s, (middle, v, g, slope), (decrease, curvature, error), s.interval_found, done, failed,
                            new_low, new_high, ref, safe)

        def fall_back(s: _Zoom) -> _Zoom:
            """On failure take the best step with sufficient decrease (or none if the last value is not finite)."""
            use_safe = s.failed & ((s.safe_stepsize > 0.0) | jnp.isinf(s.decrease_error))
            safe, last = (s.safe_stepsize, s.safe_value, s.safe_grad), (s.stepsize, s.value, s.grad)
            stepsize, v, g = select(use_safe, safe, last)
            return s._replace(stepsize=stepsize, value=v, grad=g)

        def step(s: _Zoom) -> _Zoom:
            return fall_back(jax.lax.cond(s.interval_found, zoom, bracket, s))

        zero, inf, false = jnp.zeros([], vdt), jnp.full([], jnp.inf, vdt), jnp.asarray(False)
        start = _Zoom(
            count=zero_count(),
            stepsize=zero, value=value0, grad=grad0, slope=slope0,
            decrease_error=inf, curvature_error=inf, error=inf,
            interval_found=false, done=false, failed=false,
            low=zero, value_low=value0, slope_low=slope0,
            high=zero, value_high=value0, slope_high=slope0,
            cubic_ref=zero, value_cubic_ref=value0,
            safe_stepsize=zero, safe_value=value0, safe_grad=grad0,
        )  # fmt: skip
        s = jax.lax.while_loop(lambda s: ~(s.done | s.failed), step, start)
        if self.verbose:
            self._diagnose(s, value0, slope0, tol)
        return s

    def _diagnose(self, s: _Zoom, value0: jax.Array, slope0: jax.Array, tol: jax.Array) -> None:
        """With ``verbose``: print why the search did not meet the strong Wolfe conditions (the FLAG_* texts)."""
        unmet = s.error > tol
        took_safe = s.failed & ((s.safe_stepsize > 0.0) | jnp.isinf(s.decrease_error))
        has_decrease = took_safe | (s.decrease_error <= tol)
        width = jnp.abs(s.high - s.low)
        report(slope0 >= 0.0, FLAG_NOT_A_DESCENT_DIRECTION + " Slope along the updates: {slope}.", slope=slope0)
        report(unmet & ~s.interval_found, FLAG_INTERVAL_NOT_FOUND)
        report(s.failed & s.interval_found & (width <= tree.hyper(self.stepsize_precision, width)),
                FLAG_INTERVAL_TOO_SMALL + " Interval length: {width}.", width=width)
        report(unmet & has_decrease, FLAG_CURVATURE_COND_NOT_SATISFIED)
        report(unmet & ~has_decrease, FLAG_NO_STEPSIZE_FOUND)
        report(
            unmet,
            "scale_by_zoom_linesearch: no step size with the strong Wolfe conditions found; value {value}, "
            "slope {slope} (must be < 0), step size taken {stepsize}, decrease error {decrease}, curvature "
            "error {curvature}",
            value=value0,
            slope=slope0,
            stepsize=s.stepsize,
            decrease=s.decrease_error,
            curvature=s.curvature_error,
        )
