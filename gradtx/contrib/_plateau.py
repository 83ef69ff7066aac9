"""Reduce the learning rate on a plateau of a monitored value (``optax.contrib.reduce_on_plateau``: same name,
signature, defaults and state fields).

The scale and the best value are kept in ``tree.widest_real_dtype(params)`` (float32 or wider), not in the
lowest parameter dtype as Optax does: a bfloat16 model keeps a float32 scale, and parameters mixing float16 and
bfloat16 (which have no lowest dtype: Optax's ``init`` raises) work, also under ``jax.eval_shape``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import GradientTransformation, Params, Updates, safe_int32_increment, zero_count
from gradtx.contrib._common import require_value, scaled
from gradtx.fields import concrete_number, hyper, integer, non_negative, probability, pytree_class

__all__ = ["ReduceLROnPlateauState", "reduce_on_plateau"]


class ReduceLROnPlateauState(NamedTuple):
    """The current ``scale``, the best averaged value so far, the evaluations without improvement
    (``plateau_count``), the remaining cooldown evaluations, and the running average ``avg_value`` of the
    ``count`` values received since the last evaluation."""

    scale: jax.Array
    best_value: jax.Array
    plateau_count: jax.Array
    cooldown_count: jax.Array
    count: jax.Array
    avg_value: jax.Array


@pytree_class
class reduce_on_plateau(GradientTransformation):
    """Reduce the learning rate when a monitored value stops improving: ``u = scale * g``.

    Every ``update`` takes ``value=`` (a loss). Every ``accumulation_size`` calls, the mean ``a`` of the values
    received is *evaluated*: it improves on the best value ``b`` iff ``a < b - rtol |b| - atol``; then
    ``b = a`` and the plateau count is reset, otherwise the count grows by one. When it reaches ``patience``
    (outside a cooldown) the scale becomes ``max(scale * factor, min_scale)``, the count restarts at 0 and
    ``cooldown`` evaluations follow during which the count stays 0 (the best value is still tracked). The
    rule is Keras's and PyTorch's ``ReduceLROnPlateau`` (mode ``min``) with a relative and an absolute margin.

    Deviation from Optax 0.2.8, a fix (Optax PR #1767): Optax tests ``a < (1 - rtol) b - atol``, whose margin
    has the wrong sign for a negative ``b``: every value then counts as an improvement (a negative
    log-likelihood or ELBO never triggers a reduction, and a worsening value replaces the best one). gradtx
    uses the margin ``rtol |b|``, i.e. ``(1 - rtol) b`` for ``b >= 0`` (Optax's numbers) and ``(1 + rtol) b``
    for ``b < 0``; the initial ``b = +inf`` stays infinite. ``scale`` is kept in float32 or wider (Optax: the
    lowest parameter dtype).

    Args:
      factor: the reduction factor, in ``(0, 1)``.
      patience: evaluations without improvement before a reduction, a whole number ``>= 1``.
      rtol: the relative margin of an improvement, in ``[0, 1]``.
      atol: the absolute margin of an improvement, ``>= 0`` (``> 0`` when ``rtol`` is 0).
      cooldown: evaluations after a reduction during which the plateau count stays 0, a whole number ``>= 0``.
      accumulation_size: the number of values averaged into one evaluation, a whole number ``>= 1``.
      min_scale: the smallest scale, ``>= 0``.

    Example:
      >>> import jax.numpy as jnp, gradtx
      >>> tx = gradtx.contrib.reduce_on_plateau(factor=0.5, patience=1)
      >>> state = tx.init(jnp.zeros(2))
      >>> for loss in (1.0, 1.0):  # the second value does not improve on the first: one reduction
      ...     u, state = tx.update(jnp.ones(2), state, value=loss)
      >>> print(state.scale)
      0.5
    """

    factor: Any = hyper(default=0.1, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    patience: Any = integer(default=10, lo=1)
    rtol: Any = probability(default=1e-4, closed=True)
    atol: Any = non_negative(default=0.0)
    cooldown: Any = integer(default=0, lo=0)
    accumulation_size: Any = integer(default=1, lo=1)
    min_scale: Any = non_negative(default=0.0)

    def __check_init__(self) -> None:
        if concrete_number(self.rtol) == 0.0 and concrete_number(self.atol) == 0.0:
            self._fail("atol", self.atol, "must be > 0 when rtol is 0 (some margin must define an improvement)")

    def init(self, params: Params) -> ReduceLROnPlateauState:
        dt = tree.widest_real_dtype(params)
        return ReduceLROnPlateauState(
            scale=jnp.ones([], dt),
            best_value=jnp.full([], jnp.inf, dt),
            plateau_count=zero_count(),
            cooldown_count=zero_count(),
            count=zero_count(),
            avg_value=jnp.zeros([], dt),
        )

    def update(self, updates: Updates, state: ReduceLROnPlateauState, params: Params | None = None, **extra: Any):
        del params
        value = require_value("reduce_on_plateau", extra)
        dt = state.avg_value.dtype
        count = safe_int32_increment(state.count)
        avg = (state.count.astype(dt) * state.avg_value + jnp.asarray(value).astype(dt)) / count.astype(dt)

        best = state.best_value
        rtol, atol = tree.hyper(self.rtol, dt), tree.hyper(self.atol, dt)
        one = jnp.ones([], dt)
        threshold = jnp.where(best >= 0, (one - rtol) * best, (one + rtol) * best) - atol
        improved = avg < threshold
        new_best = jnp.where(improved, avg, best)
        plateau = jnp.where(improved, jnp.zeros([], jnp.int32), safe_int32_increment(state.plateau_count))
        patience = jnp.asarray(self.patience).astype(jnp.int32)
        cooldown = jnp.asarray(self.cooldown).astype(jnp.int32)
        in_cooldown = state.cooldown_count > 0
        reduce = jnp.logical_and(jnp.logical_not(in_cooldown), plateau >= patience)
        reduced = jnp.where(reduce, state.scale * tree.hyper(self.factor, dt), state.scale)
        new_scale = jnp.where(in_cooldown, state.scale, jnp.maximum(reduced, tree.hyper(self.min_scale, dt)))
        new_plateau = jnp.where(jnp.logical_or(in_cooldown, reduce), jnp.zeros([], jnp.int32), plateau)
        new_cooldown = jnp.where(in_cooldown, state.cooldown_count - 1,
                                 jnp.where(reduce, cooldown, jnp.zeros([], jnp.int32)))

        evaluate = count >= jnp.asarray(self.accumulation_size).astype(jnp.int32)
        new_state = ReduceLROnPlateauState(
            scale=jnp.where(evaluate, new_scale, state.scale),
            best_value=jnp.where(evaluate, new_best, best),
            plateau_count=jnp.where(evaluate, new_plateau, state.plateau_count),
            cooldown_count=jnp.where(evaluate, new_cooldown, state.cooldown_count),
            count=jnp.where(evaluate, jnp.zeros([], jnp.int32), count),
            avg_value=jnp.where(evaluate, jnp.zeros([], dt), avg),
        )
        return scaled(updates, new_state.scale), new_state
