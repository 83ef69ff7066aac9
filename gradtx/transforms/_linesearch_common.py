"""What both line searches share: the dtype of step sizes and values, the slope along the updates, the
trial point, and the extra keyword arguments passed on to ``value_fn`` (see :mod:`gradtx.transforms.linesearch`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import GradientTransformation, Params, Updates, check_tree_match

StateT = TypeVar("StateT")  # the state NamedTuple of a line search

__all__ = [
    "Linesearch",
    "directional_derivative",
    "extract_fns_kwargs",
    "moved",
    "positive_or_inf",
    "report",
    "require",
    "scaled",
    "select",
    "value_dtype",
    "value_fn_kwargs",
]


def value_dtype(params: Params) -> np.dtype:
    """The real dtype step sizes, values and slopes are computed in: float64 if any leaf computes in a
    64-bit type, else float32 (also for an empty tree)."""
    wide = any(
        np.dtype(jnp.finfo(tree.compute_dtype(jnp.result_type(x))).dtype).itemsize >= 8  # type: ignore[no-untyped-call]  # jnp.finfo is unannotated
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


def moved(params: Params, stepsize: jax.Array, direction: Updates) -> Params:
    """``params + stepsize * direction`` in compute dtype, cast back to each parameter's dtype."""

    def one(p: Any, u: Any) -> Any:
        x = tree.Leaf(p)
        return x.out(x.cast(p) + x.hyper(stepsize) * x.cast(u))

    return jax.tree.map(one, params, direction)


def scaled(stepsize: jax.Array, updates: Updates) -> Updates:
    """``stepsize * u`` in compute dtype, in each update's dtype."""

    def one(u: Any) -> Any:
        x = tree.Leaf(u)
        return x.out(x.hyper(stepsize) * x.cast(u))

    return jax.tree.map(one, updates)


def select(cond: jax.Array, a: Any, b: Any) -> Any:
    """``a`` where the scalar ``cond`` holds, else ``b``, leaf by leaf (trees of the same structure)."""
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


def positive_or_inf(x: jax.Array) -> jax.Array:
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


def require(call: str, params: Any, value: Any, grad: Any, value_fn: Any) -> None:
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


def report(condition: jax.Array, message: str, **values: Any) -> None:
    """Print ``message`` (``str.format`` fields from ``values``) at run time when ``condition`` holds."""
    jax.lax.cond(condition, lambda: jax.debug.print(message, **values), lambda: None)


class Linesearch(GradientTransformation, Generic[StateT]):
    """The ``update`` both line searches share: ``update(updates, state, params, *, value, grad, value_fn,
    **extra)`` checks its arguments and trees, binds ``value_fn`` to the extra arguments it takes, and hands
    over to the subclass's ``_search_update``. A subclass names its state: ``Linesearch[ItsState]``."""

    def update(
        self,
        updates: Updates,
        state: StateT,
        params: Params | None = None,
        *,
        value: Any = None,
        grad: Updates = None,
        value_fn: Callable[..., Any] | None = None,
        **extra: Any,
    ) -> tuple[Updates, StateT]:
        call = f"{type(self).__name__}.update"
        require(call, params, value, grad, value_fn)
        assert value_fn is not None
        like = self._tree_like(state, params)
        check_tree_match(call, like, updates)
        check_tree_match(call, like, grad, "grad")
        kwargs = value_fn_kwargs(value_fn, extra)

        def fn(p: Params) -> Any:
            return value_fn(p, **kwargs)

        # value_dtype(params) is the state's dtype; a user may have set a Python float into the state.
        return self._search_update(updates, state, params, value, grad, fn, value_dtype(params))

    def _tree_like(self, state: StateT, params: Params) -> Any:
        """The tree ``updates`` and ``grad`` must match (the params; the stored gradient where there is one)."""
        del state
        return params

    def _search_update(
        self, updates: Updates, state: StateT, params: Params, value: Any, grad: Updates,
        fn: Callable[[Params], Any], vdt: np.dtype,
    ) -> tuple[Updates, StateT]:
        """The search along ``updates`` for the objective ``fn`` (``value = fn(params)``, ``grad`` its
        gradient), in the dtype ``vdt``: the scaled updates and the new state."""
        raise NotImplementedError
