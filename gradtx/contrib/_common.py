"""What several contrib optimizers share: whole-tree scalar statistics, whole-number static options and roots
with finite derivatives at 0.

The learning-rate-free optimizers (DoG, DoWG, Prodigy, D-Adaptation, MoMo, Mechanic) reduce the whole parameter
tree to scalars (squared norms, inner products, distances to the initial point) kept in the statistics dtype
``dt`` (``gradtx.tree.widest_real_dtype(params)``, float32 or wider). Each leaf is reduced in its own compute
dtype (:class:`gradtx.tree.Leaf`) and the per-leaf sums are added in ``dt``, in leaf order, so that no implicit
promotion mixes leaves of different dtypes.

Roots of second moments and sums of squares are taken with :func:`safe_sqrt` (``gradtx.tree.precision``'s) and
:func:`safe_cbrt`: the same values bit for bit, but a derivative of 0 instead of ``inf`` at 0, so that a gradient
coordinate that is exactly 0 does not turn a hypergradient (``jax.grad`` of a loss after some steps with
respect to ``b2``, ``eps``, the learning rate, ...) into NaN (``inf`` times a zero cotangent).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from gradtx import tree
from gradtx.base import ScalarOrSchedule, Updates
from gradtx.fields import concrete_number
from gradtx.tree.precision import safe_sqrt

__all__ = [
    "difference",
    "dot",
    "l1_norm",
    "require_value",
    "safe_cbrt",
    "safe_sqrt",
    "scaled",
    "schedule_value",
    "sq_norm",
    "whole_numbers",
]


def _total(parts: list[jax.Array], dt: DTypeLike) -> jax.Array:
    """``sum(parts)`` in ``dt``, each part cast to ``dt`` first, in order."""
    total = jnp.zeros([], dt)
    for p in parts:
        total = total + p.astype(dt)
    return total


def sq_norm(t: Updates, dt: DTypeLike) -> jax.Array:
    """``||t||^2`` over all leaves, accumulated per leaf in its compute dtype and summed in ``dt``."""
    return _total([jnp.sum(tree.Leaf(x).abs_sq(x)) for x in jax.tree.leaves(t)], dt)


def safe_cbrt(x: ArrayLike) -> jax.Array:
    """``cbrt(x)`` whose derivative at ``x = 0`` is 0 instead of ``inf`` (the double ``where`` of ``safe_sqrt``).

    Args:
      x: an array.

    Returns:
      ``jnp.cbrt(x)``, bit for bit, of ``x``'s dtype.

    Example:
      >>> import jax
      >>> from gradtx.contrib._common import safe_cbrt
      >>> float(safe_cbrt(8.0)), float(jax.grad(safe_cbrt)(0.0))
      (2.0, 0.0)
    """
    x = jnp.asarray(x)
    zero = x == 0
    return jnp.where(zero, jnp.zeros_like(x), jnp.cbrt(jnp.where(zero, jnp.ones_like(x), x)))


def l1_norm(t: Updates, dt: DTypeLike) -> jax.Array:
    """``||t||_1`` over all leaves, accumulated per leaf in its compute dtype and summed in ``dt``."""
    return _total([jnp.sum(jnp.abs(tree.Leaf(x).cast(x))) for x in jax.tree.leaves(t)], dt)


def dot(a: Updates, b: Updates, dt: DTypeLike) -> jax.Array:
    """The real inner product ``sum_i a_i b_i`` over the whole tree, per leaf in the compute dtype of ``a``."""

    def one(x: Any, y: Any) -> jax.Array:
        leaf = tree.Leaf(x)
        return jnp.sum(leaf.cast(x) * leaf.cast(y))

    return _total(jax.tree.leaves(jax.tree.map(one, a, b)), dt)


def difference(a: Updates, b: Updates) -> Updates:
    """``a - b`` leafwise, in the compute dtype of each leaf of ``a`` (e.g. ``x_0 - x_k``)."""

    def one(x: Any, y: Any) -> jax.Array:
        leaf = tree.Leaf(x)
        return leaf.cast(x) - leaf.cast(y)

    return jax.tree.map(one, a, b)


def scaled(updates: Updates, s: jax.Array) -> Updates:
    """``s * g`` leafwise in the compute dtype, returned in each update's dtype."""

    def one(g: Any) -> jax.Array:
        x = tree.Leaf(g)
        return x.out(x.cast(g) * x.cast(s))

    return jax.tree.map(one, updates)


def schedule_value(learning_rate: ScalarOrSchedule, count: jax.Array) -> ArrayLike:
    """A ``scalar_or_schedule`` option's value at ``count``."""
    return learning_rate(count) if callable(learning_rate) else learning_rate


def require_value(name: str, extra: dict[str, Any]) -> Any:
    """The ``value=`` extra argument of ``name.update`` (the loss); ``ValueError`` naming the call without it."""
    value = extra.get("value")
    if value is None:
        raise ValueError(f"{name}.update: value is required (update(updates, state, params, value=loss); "
                         "use jax.value_and_grad)")
    return value


def whole_numbers(obj: Any, *names: str) -> None:
    """Store the static options ``names`` of ``obj`` (declared ``integer(..., static=True)``, so whole numbers)
    as Python ints: they size arrays and count loops (``rank=8.0`` is accepted and becomes ``8``). A value
    computed at run time (a tracer: ``inject_hyperparams`` rebuilds a recipe from traced numbers) is kept."""
    for name in names:
        value = getattr(obj, name)
        number = concrete_number(value)
        if number is not None and not isinstance(value, int):
            object.__setattr__(obj, name, int(number))
