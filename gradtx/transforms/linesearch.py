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

Modules: this one (the backtracking search and :func:`value_and_grad_from_state`), ``_zoom_linesearch`` (the zoom
search) and ``_linesearch_common`` (what both share); every name is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from gradtx import tree
from gradtx.base import OptState, Params, Scalar, Updates, safe_int32_increment, zero_count
from gradtx.fields import flag, hyper, integer, non_negative, positive, probability, pytree_class
from gradtx.transforms._linesearch_common import (  # noqa: F401  (re-exported: this module's names before the split)
    Linesearch,
    _extract_fns_kwargs,
    directional_derivative,
    extract_fns_kwargs,
    moved,
    positive_or_inf,
    report,
    require,
    scaled,
    value_dtype,
    value_fn_kwargs,
)
from gradtx.transforms._zoom_linesearch import (  # noqa: F401  (re-exported: this module's names before the split)
    FLAG_CURVATURE_COND_NOT_SATISFIED,
    FLAG_INTERVAL_NOT_FOUND,
    FLAG_INTERVAL_TOO_SMALL,
    FLAG_NO_STEPSIZE_FOUND,
    FLAG_NOT_A_DESCENT_DIRECTION,
    ScaleByZoomLinesearchState,
    ZoomLinesearchInfo,
    cubic_minimizer,
    quadratic_minimizer,
    scale_by_zoom_linesearch,
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
# Backtracking (Armijo) line search.
# --------------------------------------------------------------------------------------------------


class BacktrackingLinesearchInfo(NamedTuple):
    """Diagnostics of the last backtracking search (the ``info`` of ``ScaleByBacktrackingLinesearchState``).

    Attributes:
      num_linesearch_steps: the number of values computed, an int32 scalar.
      decrease_error: the final decrease error ``max(0, phi(eta) - (1 + rtol) phi(0) - c eta phi'(0))`` (0 when
        the condition holds up to ``atol``; inf if the value is not finite, and before the first update).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import gradtx
      >>> f = lambda w: jnp.sum(w ** 2)
      >>> w = jnp.array([1.0, 2.0])
      >>> value, grad = jax.value_and_grad(f)(w)
      >>> tx = gradtx.scale_by_backtracking_linesearch(max_backtracking_steps=15)
      >>> _, state = tx.update(-grad, tx.init(w), w, value=value, grad=grad, value_fn=f)
      >>> print(state.info.num_linesearch_steps, state.info.decrease_error)  # eta = 1 failed, 0.8 passed
      2 0.0
    """

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """The state of ``scale_by_backtracking_linesearch``.

    Attributes:
      learning_rate: the step size accepted last (1 before the first update), a scalar in float32 or wider.
      value: the objective at the accepted point (inf before the first update).
      grad: with ``store_grad``, the gradient at the accepted point (for :func:`value_and_grad_from_state`);
        ``None`` otherwise.
      info: the diagnostics of the last search, a ``BacktrackingLinesearchInfo``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import gradtx
      >>> f = lambda w: jnp.sum(w ** 2)
      >>> w = jnp.array([1.0, 2.0])
      >>> value, grad = jax.value_and_grad(f)(w)
      >>> tx = gradtx.scale_by_backtracking_linesearch(max_backtracking_steps=15, store_grad=True)
      >>> _, state = tx.update(-grad, tx.init(w), w, value=value, grad=grad, value_fn=f)
      >>> print(state.learning_rate, state.value, state.grad)  # at w - 0.8 grad = [-0.6, -1.2]
      0.8 1.8 [-1.2 -2.4]
    """

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
class scale_by_backtracking_linesearch(Linesearch[ScaleByBacktrackingLinesearchState]):
    """Backtracking line search: the largest ``eta = eta_0 d^j`` with sufficient decrease (Armijo condition);
    returns ``eta * u``.

    Starting from ``eta_0 = min(increase_factor * eta_prev, max_learning_rate)`` (``eta_prev`` the step size
    accepted last time, 1 initially), try ``eta_0, d eta_0, d^2 eta_0, ...`` (``d = decrease_factor``) and
    accept the first with::

        f(w + eta u) <= (1 + rtol) f(w) + c eta <grad f(w), u> + atol,     c = slope_rtol

    computing at most ``max_backtracking_steps + 1`` values. If none satisfies it the last one tried is
    used, unless its value is not finite: then the step size is 0. ``u`` must be a descent direction
    (``<grad f(w), u> < 0``), e.g. after ``sgd(1.0)``. References: Armijo 1966, "Minimization of functions
    having Lipschitz continuous first partial derivatives", Pacific J. Math. 16(1); Nocedal & Wright 2006,
    *Numerical Optimization*, Algorithm 3.1; Vaswani et al. 2019, "Painless Stochastic Gradient", arXiv
    1905.09997.

    ``update(updates, state, params, *, value, grad, value_fn, **extra)``: ``value = f(params)``,
    ``grad = grad f(params)``, ``value_fn = f``; extra keyword arguments that ``value_fn`` takes (data, ...)
    are passed to it, the others are ignored.

    Args:
      max_backtracking_steps: the largest number of step-size reductions, a whole number >= 0.
      slope_rtol: ``c``, the fraction of the linear decrease required, in [0, 1) (0: plain decrease). Default
        1e-4.
      decrease_factor: ``d``, in (0, 1). Default 0.8.
      increase_factor: the factor on the previous step size to start from, > 0 (> 1 lets the step size grow
        back; ``math.inf`` starts from ``max_learning_rate`` every time; < 1 shrinks it). Default 1.5.
      max_learning_rate: the largest step size tried, > 0. Default 1.0.
      atol: the absolute tolerance of the condition, >= 0. Default 0.0.
      rtol: the relative tolerance of the condition, >= 0. Default 0.0.
      store_grad: compute (one reverse pass, only for the accepted point) and store the gradient at the
        accepted point, for :func:`value_and_grad_from_state`. Default False.
      verbose: print, at run time, diagnostics when the search fails. Default False.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByBacktrackingLinesearchState``.

    Raises:
      ValueError: at construction, for a value out of range (``scale_by_backtracking_linesearch(
        max_backtracking_steps=-1): max_backtracking_steps must be a whole number >= 0``); in ``update``,
        without params or without ``value``, ``grad`` or ``value_fn`` (``scale_by_backtracking_linesearch.
        update: the keyword arguments value (f(params)), grad (its gradient) and value_fn (f) are required;
        missing: value``).
      TypeError: at construction, for a hyperparameter of the wrong kind (``None``, a string, a non-bool
        flag); in ``update``, for updates or a gradient whose tree differs from the params given to ``init``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import gradtx
      >>> f = lambda w: jnp.sum(w ** 2)
      >>> w = jnp.array([1.0, 2.0])
      >>> value, grad = jax.value_and_grad(f)(w)
      >>> tx = gradtx.scale_by_backtracking_linesearch(max_backtracking_steps=15)
      >>> updates, state = tx.update(-grad, tx.init(w), w, value=value, grad=grad, value_fn=f)
      >>> print(updates, state.learning_rate)  # eta = 1 does not decrease f, 0.8 does
      [-1.6 -3.2] 0.8
    """

    max_backtracking_steps: int = integer(lo=0)
    slope_rtol: Scalar = probability(default=1e-4)  # 0: plain decrease
    decrease_factor: Scalar = hyper(default=0.8, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    # > 1 lets the step size grow back; math.inf starts from max_learning_rate every time; < 1 shrinks it
    increase_factor: Scalar = positive(default=1.5)
    max_learning_rate: Scalar = positive(default=1.0)
    atol: Scalar = non_negative(default=0.0)
    rtol: Scalar = non_negative(default=0.0)
    store_grad: bool = flag(default=False)
    verbose: bool = flag(default=False)

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

    def _search_update(
        self, updates: Updates, state: ScaleByBacktrackingLinesearchState, params: Params, value: Any,
        grad: Updates, fn: Callable[[Params], Any], vdt: np.dtype,
    ) -> tuple[Updates, ScaleByBacktrackingLinesearchState]:
        previous_learning_rate = jnp.asarray(state.learning_rate).astype(vdt)

        def h(x: Any) -> jax.Array:
            return tree.hyper(x, vdt)

        value0 = jnp.asarray(value).astype(vdt)
        slope = directional_derivative(grad, updates, vdt)
        max_steps = self.max_backtracking_steps

        def decrease_error(learning_rate: jax.Array, new_value: jax.Array) -> jax.Array:
            excess = new_value - (1.0 + h(self.rtol)) * value0
            return positive_or_inf(excess - learning_rate * h(self.slope_rtol) * slope)

        def keep_going(s: _Backtrack) -> jax.Array:
            return ~(s.decrease_error <= h(self.atol)) & (s.iter_num <= max_steps)

        def body(s: _Backtrack) -> _Backtrack:
            learning_rate = jnp.where(s.iter_num > 0, h(self.decrease_factor) * s.learning_rate, s.learning_rate)
            candidate = moved(params, learning_rate, updates)
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
            report(
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
        return scaled(learning_rate, updates), new_state


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
    value_fn: Callable[..., ArrayLike],
) -> Callable[..., tuple[jax.Array, Updates]]:
    """``jax.value_and_grad(value_fn)`` that reuses the value and gradient a line search stored.

    The returned function, ``value_and_grad(params, *args, state, **kwargs)``, returns the ``value`` and
    ``grad`` fields of the line-search state inside ``state`` (the optimizer state), which the search computed
    at the point it accepted, i.e. at ``params`` after the update; if the stored value is not finite (before
    the first update) it computes ``jax.value_and_grad(value_fn)(params, *args, **kwargs)`` instead, cast to
    the stored dtypes. Use it only for deterministic objectives (the same ``args`` at every step): it saves
    one gradient evaluation per step of L-BFGS.

    Args:
      value_fn: the objective ``f(params, *args, **kwargs) -> scalar``.

    Returns:
      A function ``(params, *args, state, **kwargs) -> (value, grad)``; ``state`` is keyword only.

    Raises:
      ValueError: raised by the returned function if ``state`` holds no line-search state
        (``value_and_grad_from_state: no value and grad found in the state; ...``), or if its gradient is not
        stored (``scale_by_backtracking_linesearch(store_grad=False)``).
      KeyError: raised by the returned function if ``state`` holds several line-search states (pass the
        sub-state).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.transforms.linesearch import value_and_grad_from_state
      >>> f = lambda w: jnp.sum(w ** 2)
      >>> opt = gradtx.chain(gradtx.scale(-1.0), gradtx.scale_by_zoom_linesearch(max_linesearch_steps=15))
      >>> w = jnp.array([1.0, 2.0])
      >>> value, grad = value_and_grad_from_state(f)(w, state=opt.init(w))  # nothing stored yet: computed
      >>> print(value, grad)
      5.0 [2. 4.]
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

        finite = jnp.isfinite(value)
        result: tuple[jax.Array, Updates] = jax.lax.cond(finite, stored, compute, params, fn_args, fn_kwargs)
        return result

    return value_and_grad
