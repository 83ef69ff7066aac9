"""Line searches: choose the step size along the incoming direction ``u`` by calling the objective again.

With ``f`` the objective, ``w`` the parameters, ``g = grad f(w)``, ``u`` the updates received (a descent
direction: ``<g, u> < 0``) and ``phi(eta) = f(w + eta u)``, both blocks return ``eta * u``:

    scale_by_backtracking_linesearch   eta = eta_0 d^j for the first j = 0, 1, ... with the sufficient
                                       decrease (Armijo) condition
                                           phi(eta) <= (1 + rtol) phi(0) + c eta phi'(0) + atol
                                       eta_0 = min(increase_factor * eta_prev, max_learning_rate)
                                       (Armijo 1966; Nocedal & Wright 2006, Algorithm 3.1)
    scale_by_zoom_linesearch           eta with the strong Wolfe conditions
                                           phi(eta) <= phi(0) + c1 eta phi'(0)           (sufficient decrease)
                                           |phi'(eta)| <= c2 |phi'(0)|                   (curvature)
                                       found by bracketing then zooming with safeguarded cubic or quadratic
                                       interpolation (Nocedal & Wright 2006, Algorithms 3.5 and 3.6)
    value_and_grad_from_state(fn)      ``jax.value_and_grad(fn)`` that returns the value and gradient the
                                       line search already computed at the accepted point, when it has them

Both need three extra keyword arguments to ``update``: ``value`` (``f(w)``), ``grad`` (``grad f(w)``) and
``value_fn`` (``f`` itself, a function of the params). Other extra keyword arguments are passed on to
``value_fn`` when its signature names them (or when it takes ``**kwargs``) and are otherwise ignored, so a
line search sits in a ``chain`` next to blocks that need other extra arguments. (Optax raises ``TypeError``
for extra arguments that ``value_fn`` does not take; gradtx's protocol is that blocks ignore what they do
not need.)

Conventions (Optax 0.2.8's): ``phi'(eta) = Re sum(grad f(w + eta u) * u)`` with the gradient as
``jax.grad`` returns it. The step size, values and slopes are computed and stored in float32 or wider (the
widest real compute dtype of the params; Optax stores them in the first leaf's dtype, bfloat16 for bfloat16
params); the gradients are stored in the params' dtypes and the counters are int32.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    OptState,
    Params,
    Updates,
    check_tree_match,
    concrete_number,
    pytree_class,
    safe_int32_increment,
    static_field,
    zero_count,
)

__all__ = [
    "BacktrackingLinesearchInfo",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByZoomLinesearchState",
    "ZoomLinesearchInfo",
    "scale_by_backtracking_linesearch",
    "scale_by_zoom_linesearch",
    "extract_fns_kwargs",
    "value_and_grad_from_state",
]


# --------------------------------------------------------------------------------------------------
# Shared helpers.
# --------------------------------------------------------------------------------------------------


def value_dtype(params: Params) -> np.dtype:
    """The real dtype step sizes, values and slopes are computed in: float64 if any leaf computes in a
    64-bit type, else float32 (also for an empty tree)."""
    wide = any(
        np.dtype(jnp.finfo(tree.compute_dtype(jnp.result_type(x))).dtype).itemsize >= 8
        for x in jax.tree.leaves(params)
    )
    return np.dtype(np.float64) if wide else np.dtype(np.float32)


def _common(a: Any, b: Any) -> np.dtype:
    """The dtype both leaves are computed in (float32 or wider; NumPy's promotion, explicit)."""
    return np.promote_types(tree.compute_dtype(jnp.result_type(a)), tree.compute_dtype(jnp.result_type(b)))


def directional_derivative(grad: Updates, direction: Updates, dtype: Any) -> jax.Array:
    """``Re sum(grad * direction)`` over all leaves, in ``dtype`` (the slope of ``eta -> f(w + eta u)``)."""
    total = jnp.zeros([], dtype)
    for g, u in zip(jax.tree.leaves(grad), jax.tree.leaves(direction)):
        cd = _common(g, u)
        total = total + jnp.real(jnp.sum(jnp.asarray(g).astype(cd) * jnp.asarray(u).astype(cd))).astype(dtype)
    return total


def _moved(params: Params, stepsize: jax.Array, direction: Updates) -> Params:
    """``params + stepsize * direction`` in compute dtype, cast back to each parameter's dtype."""

    def one(p: Any, u: Any) -> Any:
        p = jnp.asarray(p)
        cd = tree.compute_dtype(p.dtype)
        return (p.astype(cd) + tree.hyper(stepsize, cd) * jnp.asarray(u).astype(cd)).astype(p.dtype)

    return jax.tree.map(one, params, direction)


def _scaled(stepsize: jax.Array, updates: Updates) -> Updates:
    """``stepsize * u`` in compute dtype, in each update's dtype."""
    return jax.tree.map(lambda u: (tree.hyper(stepsize, u) * tree.up(u)).astype(jnp.asarray(u).dtype), updates)


def _select(cond: jax.Array, a: Any, b: Any) -> Any:
    """``a`` where the scalar ``cond`` holds, else ``b``, leaf by leaf (trees of the same structure)."""
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


def _positive_or_inf(x: jax.Array) -> jax.Array:
    """``max(x, 0)`` with NaN read as infinitely violated."""
    return jnp.where(jnp.isnan(x), jnp.inf, jnp.maximum(x, 0.0))


def extract_fns_kwargs(
    fns: Sequence[Callable[..., Any]], kwargs: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Split ``kwargs`` among functions by their signatures: for each function, the entries its signature names
    (all of them if it has ``**kwargs``), and the entries no function names.

    Args:
      fns: the functions.
      kwargs: the keyword arguments to distribute.

    Returns:
      ``([kwargs of fns[0], kwargs of fns[1], ...], remaining)``. A function without a signature (a builtin)
      takes none.

    Example:
      >>> from gradtx.transforms.linesearch import extract_fns_kwargs
      >>> def f(a, b): return a + b
      >>> def g(c, d): return c * d
      >>> extract_fns_kwargs((f, g), {"b": 1.0, "d": 2.0, "e": 3.0})
      ([{'b': 1.0}, {'d': 2.0}], {'e': 3.0})
    """
    taken: list[dict[str, Any]] = []
    used: set[str] = set()
    for fn in fns:
        try:
            parameters = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):  # a builtin without a signature
            taken.append({})
            continue
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            names = set(kwargs)
        else:
            kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            names = {p.name for p in parameters if p.kind in kinds}
        taken.append({k: v for k, v in kwargs.items() if k in names})
        used |= names
    return taken, {k: v for k, v in kwargs.items() if k not in used}


_extract_fns_kwargs = extract_fns_kwargs  # Optax's private spelling (its tests call it)


def value_fn_kwargs(value_fn: Callable[..., Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The extra keyword arguments ``value_fn`` takes: those its signature names after the params, or all of
    them if it has ``**kwargs``. The others are left for the blocks that need them (and ignored here)."""
    try:
        first = next(iter(inspect.signature(value_fn).parameters.values()), None)
    except (TypeError, ValueError):  # a builtin without a signature: it takes the params only
        return {}
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params_name = first.name if first is not None and first.kind in positional else None
    (taken,), _ = extract_fns_kwargs((value_fn,), {k: v for k, v in extra.items() if k != params_name})
    return taken


def _require(call: str, params: Any, value: Any, grad: Any, value_fn: Any) -> None:
    if params is None:
        raise ValueError(f"{call}: params are required (call update(updates, state, params, value=..., ...))")
    missing = [n for n, v in (("value", value), ("grad", grad), ("value_fn", value_fn)) if v is None]
    if missing:
        raise ValueError(
            f"{call}: the keyword arguments value (f(params)), grad (its gradient) and value_fn (f) are "
            f"required; missing: {', '.join(missing)}"
        )
    if not callable(value_fn):
        raise ValueError(f"{call}: value_fn must be a function of the params, got {value_fn!r}")


def _report(condition: jax.Array, message: str, **values: Any) -> None:
    """Print ``message`` (``str.format`` fields from ``values``) at run time when ``condition`` holds."""
    jax.lax.cond(condition, lambda: jax.debug.print(message, **values), lambda: None)


def check_int(tx: GradientTransformation, name: str, lo: int) -> None:
    """Check that the field ``name`` of ``tx`` is an integer ``>= lo`` (skipped for tracers and arrays)."""
    value = getattr(tx, name)
    v = concrete_number(value)
    if v is None:
        if isinstance(value, (str, type(None))):
            tx._fail(name, value, f"must be an integer >= {lo}")
        return
    if isinstance(value, bool) or not float(v).is_integer() or v < lo:
        tx._fail(name, value, f"must be an integer >= {lo}")


# --------------------------------------------------------------------------------------------------
# Backtracking (Armijo) line search.
# --------------------------------------------------------------------------------------------------


class BacktrackingLinesearchInfo(NamedTuple):
    """Diagnostics of the last search: how many values were computed, and the final decrease error
    ``max(0, phi(eta) - (1 + rtol) phi(0) - c eta phi'(0))`` (0 when the condition holds, inf if not finite)."""

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """The accepted step size, the value (and with ``store_grad`` the gradient) at the accepted point."""

    learning_rate: jax.Array
    value: jax.Array
    grad: Updates | None
    info: BacktrackingLinesearchInfo


class _Backtrack(NamedTuple):
    """The carry of the backtracking loop."""

    learning_rate: jax.Array
    new_value: jax.Array
    new_grad: Updates
    decrease_error: jax.Array
    iter_num: jax.Array


@pytree_class
class scale_by_backtracking_linesearch(GradientTransformation):
    """Backtracking line search: the largest ``eta = eta_0 d^j`` with sufficient decrease (Armijo condition).

    Starting from ``eta_0 = min(increase_factor * eta_prev, max_learning_rate)`` (``eta_prev`` the step size
    accepted last time, 1 initially), try ``eta_0, d eta_0, d^2 eta_0, ...`` (``d = decrease_factor``) and
    accept the first with

        f(w + eta u) <= (1 + rtol) f(w) + c eta <grad f(w), u> + atol,     c = slope_rtol,

    computing at most ``max_backtracking_steps + 1`` values. If none satisfies it the last one tried is
    used, unless its value is not finite: then the step size is 0. ``u`` must be a descent direction
    (``<grad f(w), u> < 0``), e.g. after ``sgd(1.0)``. References: Armijo 1966 (Pacific J. Math. 16(1));
    Nocedal & Wright 2006, *Numerical Optimization*, Algorithm 3.1; Vaswani et al. 2019, arXiv 1905.09997.

    ``update(updates, state, params, *, value, grad, value_fn, **extra)``: ``value = f(params)``,
    ``grad = grad f(params)``, ``value_fn = f``; extra keyword arguments that ``value_fn`` takes (data, ...)
    are passed to it, the others are ignored. With ``store_grad`` the gradient at the accepted point is
    computed (one reverse pass, only for the accepted point) and stored, for
    :func:`value_and_grad_from_state`. ``verbose`` prints diagnostics when the search fails.
    """

    max_backtracking_steps: Any
    slope_rtol: Any = 1e-4
    decrease_factor: Any = 0.8
    increase_factor: Any = 1.5
    max_learning_rate: Any = 1.0
    atol: Any = 0.0
    rtol: Any = 0.0
    store_grad: bool = static_field(default=False)
    verbose: bool = static_field(default=False)

    def __post_init__(self) -> None:
        check_int(self, "max_backtracking_steps", 0)
        self._check_range("slope_rtol", 0.0, 1.0, hi_open=True)  # 0: plain decrease
        self._check_range("decrease_factor", 0.0, 1.0, lo_open=True, hi_open=True)
        # > 1 lets the step size grow back; math.inf starts from max_learning_rate every time; < 1 shrinks it
        self._check_range("increase_factor", 0.0, lo_open=True)
        self._check_range("max_learning_rate", 0.0, lo_open=True)
        self._check_range("atol", 0.0)
        self._check_range("rtol", 0.0)

    def init(self, params: Params) -> ScaleByBacktrackingLinesearchState:
        vdt = value_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.ones([], vdt),
            value=jnp.full([], jnp.inf, vdt),
            grad=tree.zeros_like(params) if self.store_grad else None,
            info=BacktrackingLinesearchInfo(
                num_linesearch_steps=zero_count(), decrease_error=jnp.full([], jnp.inf, vdt)
            ),
        )

    def update(
        self,
        updates: Updates,
        state: ScaleByBacktrackingLinesearchState,
        params: Params | None = None,
        *,
        value: Any = None,
        grad: Updates = None,
        value_fn: Callable[..., Any] | None = None,
        **extra: Any,
    ):
        call = "scale_by_backtracking_linesearch.update"
        _require(call, params, value, grad, value_fn)
        assert value_fn is not None
        check_tree_match(call, params, updates)
        check_tree_match(call, params, grad, "grad")
        kwargs = value_fn_kwargs(value_fn, extra)

        def fn(p: Params) -> jax.Array:
            return value_fn(p, **kwargs)

        vdt = value_dtype(params)  # the state's dtype; a user may have set a Python float into it
        previous_learning_rate = jnp.asarray(state.learning_rate).astype(vdt)

        def h(x: Any) -> jax.Array:
            return tree.hyper(x, vdt)

        value0 = jnp.asarray(value).astype(vdt)
        slope = directional_derivative(grad, updates, vdt)
        max_steps = self.max_backtracking_steps

        def decrease_error(learning_rate: jax.Array, new_value: jax.Array) -> jax.Array:
            excess = new_value - (1.0 + h(self.rtol)) * value0
            return _positive_or_inf(excess - learning_rate * h(self.slope_rtol) * slope)

        def keep_going(s: _Backtrack) -> jax.Array:
            return ~(s.decrease_error <= h(self.atol)) & (s.iter_num <= max_steps)

        def body(s: _Backtrack) -> _Backtrack:
            learning_rate = jnp.where(s.iter_num > 0, h(self.decrease_factor) * s.learning_rate, s.learning_rate)
            candidate = _moved(params, learning_rate, updates)
            new_grad = s.new_grad
            if self.store_grad:
                out, pullback = jax.vjp(fn, candidate)
                new_value = jnp.asarray(out).astype(vdt)
                error = decrease_error(learning_rate, new_value)
                last = (error <= h(self.atol)) | (s.iter_num == max_steps)
                new_grad = jax.lax.cond(
                    last,
                    lambda: tree.cast_like(pullback(jnp.ones_like(out))[0], s.new_grad),
                    lambda: s.new_grad,
                )
            else:
                new_value = jnp.asarray(fn(candidate)).astype(vdt)
                error = decrease_error(learning_rate, new_value)
            return _Backtrack(learning_rate, new_value, new_grad, error, safe_int32_increment(s.iter_num))

        start = _Backtrack(
            learning_rate=jnp.minimum(h(self.increase_factor) * previous_learning_rate, h(self.max_learning_rate)),
            new_value=value0,
            new_grad=tree.zeros_like(params),
            decrease_error=jnp.full([], jnp.inf, vdt),
            iter_num=zero_count(),
        )
        s = jax.lax.while_loop(keep_going, body, start)
        # A step whose value is not finite is not taken at all.
        learning_rate = jnp.where(jnp.isinf(s.decrease_error), jnp.zeros([], vdt), s.learning_rate)
        if self.verbose:
            _report(
                s.decrease_error > h(self.atol),
                "scale_by_backtracking_linesearch: no step size with sufficient decrease found; value {value}, "
                "slope {slope}, step size {stepsize}, decrease error {error} (a step size of 0 is used if the "
                "error is infinite)",
                value=value0,
                slope=slope,
                stepsize=s.learning_rate,
                error=s.decrease_error,
            )
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=learning_rate,
            value=s.new_value,
            grad=tree.cast_like(s.new_grad, state.grad) if self.store_grad else None,
            info=BacktrackingLinesearchInfo(num_linesearch_steps=s.iter_num, decrease_error=s.decrease_error),
        )
        return _scaled(learning_rate, updates), new_state


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
    """Diagnostics of the last search: values computed, and the final errors of the two conditions
    (``max(0, violation)``; 0 when it holds). A positive curvature error alone is benign (e.g. a
    ``max_learning_rate`` too small); a positive decrease error means the value may not have decreased."""

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array


class ScaleByZoomLinesearchState(NamedTuple):
    """The accepted step size, and the value and gradient at the accepted point (reused by
    :func:`value_and_grad_from_state`)."""

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

    count: jax.Array
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
    return a + (-big_b + jnp.sqrt(big_b * big_b - 3.0 * big_a * fpa)) / (3.0 * big_a)


def quadratic_minimizer(a: Any, fa: Any, fpa: Any, b: Any, fb: Any) -> jax.Array:
    """The critical point of the quadratic through ``(a, fa)`` and ``(b, fb)`` with slope ``fpa`` at ``a``."""
    db = b - a
    curvature = (fb - fa - fpa * db) / (db * db)
    return a - fpa / (2.0 * curvature)


@pytree_class
class scale_by_zoom_linesearch(GradientTransformation):
    """Line search for the strong Wolfe conditions (Nocedal & Wright 2006, Algorithms 3.5 and 3.6).

    Finds ``eta`` with, for ``phi(eta) = f(w + eta u)``, ``c1 = slope_rtol``, ``c2 = curv_rtol``,
    ``eps = tol``:

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
    ``phi(eta) <= phi(0) + approx_dec_rtol |phi(0)|`` (Hager & Zhang 2006, ACM TOMS 32(1), eq. 23, 26-27);
    ``approx_dec_rtol=None`` keeps the classical condition only. The search stops after
    ``max_linesearch_steps`` values, or when the interval is shorter than ``stepsize_precision`` and a step
    with sufficient decrease is known; it then takes the best such step, or the last one tried if there is
    none (0 if its value is not finite). ``curv_rtol=inf`` drops the curvature condition. Each tried point
    costs one ``jax.value_and_grad(value_fn)``; the value and gradient at the accepted point are stored.

    ``update(updates, state, params, *, value, grad, value_fn, **extra)`` as in
    :class:`scale_by_backtracking_linesearch`. ``verbose`` prints diagnostics when the search fails.
    """

    max_linesearch_steps: Any
    max_learning_rate: Any = None
    tol: Any = 0.0
    increase_factor: Any = 2.0
    slope_rtol: Any = 1e-4
    curv_rtol: Any = 0.9
    approx_dec_rtol: Any = 1e-6
    stepsize_precision: Any = 1e-5
    initial_guess_strategy: str = static_field(default="keep")
    verbose: bool = static_field(default=False)

    def __post_init__(self) -> None:
        check_int(self, "max_linesearch_steps", 1)
        if self.max_learning_rate is not None:
            self._check_range("max_learning_rate", 0.0, lo_open=True)
        self._check_range("tol", 0.0)
        self._check_range("increase_factor", 0.0, lo_open=True)
        self._check_range("slope_rtol", 0.0, 1.0, hi_open=True)
        c2 = concrete_number(self.curv_rtol)
        if c2 is not None and not (c2 == np.inf or 0.0 < c2 < 1.0):
            self._fail("curv_rtol", self.curv_rtol, "must be in (0, 1) or inf (Wolfe: 0 <= c1 < c2 < 1)")
        elif c2 is None and isinstance(self.curv_rtol, str):
            self._fail("curv_rtol", self.curv_rtol, "must be a number")
        if self.approx_dec_rtol is not None:
            self._check_range("approx_dec_rtol", 0.0)
        self._check_range("stepsize_precision", 0.0)
        self._check_choice("initial_guess_strategy", ("one", "keep"))

    def init(self, params: Params) -> ScaleByZoomLinesearchState:
        vdt = value_dtype(params)
        inf = jnp.full([], jnp.inf, vdt)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.ones([], vdt),
            value=inf,
            grad=tree.zeros_like(params),
            info=ZoomLinesearchInfo(num_linesearch_steps=zero_count(), decrease_error=inf, curvature_error=inf),
        )

    def update(
        self,
        updates: Updates,
        state: ScaleByZoomLinesearchState,
        params: Params | None = None,
        *,
        value: Any = None,
        grad: Updates = None,
        value_fn: Callable[..., Any] | None = None,
        **extra: Any,
    ):
        call = "scale_by_zoom_linesearch.update"
        _require(call, params, value, grad, value_fn)
        assert value_fn is not None
        check_tree_match(call, state.grad, updates)
        check_tree_match(call, state.grad, grad, "grad")
        kwargs = value_fn_kwargs(value_fn, extra)
        value_and_grad = jax.value_and_grad(lambda p: value_fn(p, **kwargs))
        vdt = value_dtype(params)  # the state's dtype; a user may have set a Python float into it
        previous = jnp.asarray(state.learning_rate).astype(vdt)
        guess = jnp.ones([], vdt) if self.initial_guess_strategy == "one" else previous
        s = self._search(params, updates, jnp.asarray(value).astype(vdt), tree.cast_like(grad, state.grad),
                         guess, value_and_grad, vdt)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=s.stepsize,
            value=s.value,
            grad=s.grad,
            info=ZoomLinesearchInfo(
                num_linesearch_steps=s.count, decrease_error=s.decrease_error, curvature_error=s.curvature_error
            ),
        )
        return _scaled(s.stepsize, updates), new_state

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
            v, g = value_and_grad(_moved(params, stepsize, updates))
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
            decrease = _positive_or_inf(decrease)
            # Curvature, Nocedal & Wright (3.7b).
            curvature = _positive_or_inf(jnp.abs(slope) - h(self.curv_rtol) * jnp.abs(slope0))
            return decrease, curvature, jnp.maximum(decrease, curvature)

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
            safe = _select(decrease <= tol, (stepsize, v, g), (s.safe_stepsize, s.safe_value, s.safe_grad))
            # Too far: insufficient decrease, or no lower than the previous point -> zoom(previous, new).
            high_is_new = (decrease > 0.0) | ((v >= s.value) & ~first)
            # Past a minimum of phi (slope >= 0) with a good value -> zoom(new, previous).
            low_is_new = (slope >= 0.0) & ~high_is_new
            new, previous = (stepsize, v, slope), (s.stepsize, s.value, s.slope)
            low = _select(low_is_new, new, previous)
            high = _select(low_is_new, previous, new)
            found = high_is_new | low_is_new | (error <= tol)
            # At max_learning_rate without an interval: larger steps are not allowed, take this one.
            done = (error <= tol) | (at_max & ~found)
            return _Zoom(
                count=safe_int32_increment(s.count),
                stepsize=stepsize, value=v, grad=g, slope=slope,
                decrease_error=decrease, curvature_error=curvature, error=error,
                interval_found=found, done=done, failed=(s.count + 1 >= max_steps) & ~done,
                low=low[0], value_low=low[1], slope_low=low[2],
                high=high[0], value_high=high[1], slope_high=high[2],
                cubic_ref=low[0], value_cubic_ref=low[1],
                safe_stepsize=safe[0], safe_value=safe[1], safe_grad=safe[2],
            )  # fmt: skip

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
            safe = _select(better, (middle, v, g), (s.safe_stepsize, s.safe_value, s.safe_grad))
            done = error <= tol
            mid, low, high = (middle, v, slope), (s.low, s.value_low, s.slope_low), (s.high, s.value_high, s.slope_high)
            high_is_middle = (decrease > 0.0) | (v >= s.value_low)
            high_is_low = (slope * (s.high - s.low) >= 0.0) & ~high_is_middle
            new_high = _select(high_is_middle, mid, _select(high_is_low, low, high))
            new_low = _select(high_is_middle, low, mid)
            # The end that was replaced becomes the third point of the next cubic.
            ref = _select(high_is_middle | high_is_low, (s.high, s.value_high), (s.low, s.value_low))
            # Give up on curvature when the interval is too small and a step with sufficient decrease is known
            # (without one, keep going: very steep functions need very small steps).
            failed = ((s.count + 1 >= max_steps) | (too_small & (safe[0] > 0.0))) & ~done
            return _Zoom(
                count=safe_int32_increment(s.count),
                stepsize=middle, value=v, grad=g, slope=slope,
                decrease_error=decrease, curvature_error=curvature, error=error,
                interval_found=s.interval_found, done=done, failed=failed,
                low=new_low[0], value_low=new_low[1], slope_low=new_low[2],
                high=new_high[0], value_high=new_high[1], slope_high=new_high[2],
                cubic_ref=ref[0], value_cubic_ref=ref[1],
                safe_stepsize=safe[0], safe_value=safe[1], safe_grad=safe[2],
            )  # fmt: skip

        def fall_back(s: _Zoom) -> _Zoom:
            """On failure take the best step with sufficient decrease (or none if the last value is not finite)."""
            use_safe = s.failed & ((s.safe_stepsize > 0.0) | jnp.isinf(s.decrease_error))
            safe, last = (s.safe_stepsize, s.safe_value, s.safe_grad), (s.stepsize, s.value, s.grad)
            stepsize, v, g = _select(use_safe, safe, last)
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
        _report(slope0 >= 0.0, FLAG_NOT_A_DESCENT_DIRECTION + " Slope along the updates: {slope}.", slope=slope0)
        _report(unmet & ~s.interval_found, FLAG_INTERVAL_NOT_FOUND)
        _report(s.failed & s.interval_found & (width <= tree.hyper(self.stepsize_precision, width)),
                FLAG_INTERVAL_TOO_SMALL + " Interval length: {width}.", width=width)
        _report(unmet & has_decrease, FLAG_CURVATURE_COND_NOT_SATISFIED)
        _report(unmet & ~has_decrease, FLAG_NO_STEPSIZE_FOUND)
        _report(
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


# --------------------------------------------------------------------------------------------------
# Reusing the value and gradient computed by the line search.
# --------------------------------------------------------------------------------------------------


def _stored_value_and_grad(state: OptState) -> tuple[Any, Any]:
    """The ``value`` and ``grad`` fields of the one NamedTuple in ``state`` that has both."""
    found: list[Any] = []

    def visit(node: Any) -> None:
        fields = getattr(node, "_fields", None)
        if isinstance(node, tuple) and fields is not None:
            if "value" in fields and "grad" in fields:
                found.append(node)
                return
            for child in node:
                visit(child)
        elif isinstance(node, dict):
            for child in node.values():
                visit(child)
        elif isinstance(node, (list, tuple)):
            for child in node:
                visit(child)

    visit(state)
    if not found:
        raise ValueError(
            "value_and_grad_from_state: no value and grad found in the state; use a line search "
            "(scale_by_zoom_linesearch, or scale_by_backtracking_linesearch with store_grad=True)"
        )
    if len(found) > 1:
        raise KeyError(f"value_and_grad_from_state: {len(found)} line-search states in the state; pass a sub-state")
    return found[0].value, found[0].grad


def value_and_grad_from_state(
    value_fn: Callable[..., Any],
) -> Callable[..., tuple[jax.Array, Updates]]:
    """``jax.value_and_grad(value_fn)`` that reuses the value and gradient a line search stored.

    Returns ``value_and_grad(params, *args, state, **kwargs)``: the ``value`` and ``grad`` fields of the
    line-search state inside ``state`` (the optimizer state), which the search computed at the point it
    accepted, i.e. at ``params`` after the update; if the stored value is not finite (before the first
    update) it computes ``jax.value_and_grad(value_fn)(params, *args, **kwargs)`` instead, cast to the
    stored dtypes. Use it only for deterministic objectives (the same ``args`` at every step). Raises
    ``ValueError`` if the state has no line-search state, or if its gradient is not stored
    (``scale_by_backtracking_linesearch(store_grad=False)``).
    """

    def value_and_grad(params: Params, *fn_args: Any, state: OptState, **fn_kwargs: Any) -> tuple[jax.Array, Updates]:
        value, grad = _stored_value_and_grad(state)
        if grad is None:
            raise ValueError(
                "value_and_grad_from_state: the line search stores no gradient; build it with store_grad=True"
            )

        def compute(p: Params, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[jax.Array, Updates]:
            v, g = jax.value_and_grad(value_fn)(p, *args, **kwargs)
            return jnp.asarray(v).astype(jnp.result_type(value)), tree.cast_like(g, grad)

        def stored(p: Params, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[jax.Array, Updates]:
            del p, args, kwargs
            return jnp.asarray(value), grad

        return jax.lax.cond(jnp.isfinite(value), stored, compute, params, fn_args, fn_kwargs)

    return value_and_grad
