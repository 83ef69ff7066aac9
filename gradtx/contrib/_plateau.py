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
from gradtx.base import GradientTransformation, Params, Scalar, Updates, safe_int32_increment, zero_count
from gradtx.contrib._common import require_value, scaled
from gradtx.fields import concrete_number, hyper, integer, non_negative, probability, pytree_class
from gradtx.tree.precision import widest_real_dtype

__all__ = ["ReduceLROnPlateauState", "reduce_on_plateau"]


class ReduceLROnPlateauState(NamedTuple):
    """The state of :class:`reduce_on_plateau` (Optax's field names).

    Attributes:
      scale: the current scale of the updates, a scalar (float32 or wider).
      best_value: the best averaged value so far (``+inf`` before the first evaluation).
      plateau_count: the evaluations without improvement, an int32 scalar.
      cooldown_count: the cooldown evaluations left, an int32 scalar.
      count: the values received since the last evaluation, an int32 scalar.
      avg_value: the running average of those ``count`` values.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.reduce_on_plateau().init(jnp.zeros(2))
      >>> print(state.scale, state.best_value)
      1.0 inf
    """

    scale: jax.Array
    best_value: jax.Array
    plateau_count: jax.Array
    cooldown_count: jax.Array
    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
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
    Place it after the learning rate (``chain(adam(lr), reduce_on_plateau())``). State:
    :class:`ReduceLROnPlateauState`.

    Deviation from Optax 0.2.8, a fix (Optax PR #1767): Optax tests ``a < (1 - rtol) b - atol``, whose margin
    has the wrong sign for a negative ``b``: every value then counts as an improvement (a negative
    log-likelihood or ELBO never triggers a reduction, and a worsening value replaces the best one). gradtx
    uses the margin ``rtol |b|``, i.e. ``(1 - rtol) b`` for ``b >= 0`` (Optax's numbers) and ``(1 + rtol) b``
    for ``b < 0``; the initial ``b = +inf`` stays infinite. ``scale`` is kept in float32 or wider (Optax: the
    lowest parameter dtype).

    Args:
      factor: the reduction factor, in ``(0, 1)``. Default 0.1.
      patience: evaluations without improvement before a reduction, a whole number ``>= 1``. Default 10.
      rtol: the relative margin of an improvement, in ``[0, 1]``. Default 1e-4.
      atol: the absolute margin of an improvement, ``>= 0`` (``> 0`` when ``rtol`` is 0). Default 0.
      cooldown: evaluations after a reduction during which the plateau count stays 0, a whole number ``>= 0``.
        Default 0.
      accumulation_size: the number of values averaged into one evaluation, a whole number ``>= 1``. Default 1.
      min_scale: the smallest scale, ``>= 0``. Default 0.

    Raises:
      ValueError: an option out of range, e.g. ``reduce_on_plateau(factor=1.0): factor must be in (0, 1)`` or
        ``reduce_on_plateau(atol=0.0): atol must be > 0 when rtol is 0 (some margin must define an
        improvement)``; at ``update``, no ``value`` (``reduce_on_plateau.update: value is required (update(updates,
        state, params, value=loss); use jax.value_and_grad)``).
      TypeError: an option of the wrong type, e.g. a string ``factor``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.reduce_on_plateau(factor=0.5, patience=1)
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.ones(2), state, value=1.0)
      >>> updates, state = tx.update(jnp.ones(2), state, value=1.0)  # no improvement: one reduction
      >>> print(updates, state.scale)
      [0.5 0.5] 0.5
    """

    factor: Scalar = hyper(default=0.1, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    patience: int = integer(default=10, lo=1)
    rtol: Scalar = probability(default=1e-4, closed=True)
    atol: Scalar = non_negative(default=0.0)
    cooldown: int = integer(default=0, lo=0)
    accumulation_size: int = integer(default=1, lo=1)
    min_scale: Scalar = non_negative(default=0.0)

    def __check_init__(self) -> None:
        if concrete_number(self.rtol) == 0.0 and concrete_number(self.atol) == 0.0:
            self._fail("atol", self.atol, "must be > 0 when rtol is 0 (some margin must define an improvement)")

    def init(self, params: Params) -> ReduceLROnPlateauState:
        dt = widest_real_dtype(params)
        return ReduceLROnPlateauState(
            scale=jnp.ones([], dt),
            best_value=jnp.full([], jnp.inf, dt),
            plateau_count=zero_count(),
            cooldown_count=zero_count(),
            count=zero_count(),
            avg_value=jnp.zeros([], dt),
        )

    def update(
        self, updates: Updates, state: ReduceLROnPlateauState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ReduceLROnPlateauState]:
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
