"""Momentum blocks: weighted sums of past updates, and the bias correction that undoes zero initialisation.

    trace(b):            t_k = g_k + b t_{k-1};        u = t_k   (nesterov: u = g_k + b t_k)
                         (Polyak 1964 heavy ball; Sutskever et al. 2013 for the Nesterov form)
    ema(b):              e_k = (1 - b) g_k + b e_{k-1}; u = e_k / (1 - b^k) with debias, else e_k
    bias_correction(b):  u = g_k / (1 - b^k)             (Kingma & Ba 2015, Algorithm 1)

so ``chain(ema(b, debias=False), bias_correction(b))`` equals ``ema(b)``. ``k`` is the 1-based step.

Float32: ``1 - b`` is formed before rounding (``gradtx.tree.complement``: ``0.001`` for ``b = 0.999``, not
``1 - float32(0.999)``), the average applies the decay ``1 - (1 - b)`` (``gradtx.tree.ema``) and ``1 - b^k`` is
``-expm1(k log1p(-(1 - b)))`` from the same complement (``gradtx.tree.debias``), so that a constant stream is
returned unchanged. ``trace`` has no complement: it multiplies by ``float32(b)``, as Optax does.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    Params,
    Updates,
    check_tree_match,
    safe_int32_increment,
    zero_count,
)
from gradtx.fields import dtype_option, flag, probability, pytree_class


class TraceState(NamedTuple):
    """The momentum trace ``t`` (one array per parameter)."""

    trace: Updates


class EmaState(NamedTuple):
    """The step count and the (biased) exponential moving average."""

    count: jax.Array
    ema: Updates


class BiasCorrectionState(NamedTuple):
    """The step count of a bias correction block."""

    count: jax.Array


@pytree_class
class trace(GradientTransformation):
    """Momentum: ``t_k = g_k + decay * t_{k-1}``; output ``t_k`` or, with ``nesterov``, ``g_k + decay * t_k``.

    Polyak (1964) heavy-ball momentum; the Nesterov variant as in Sutskever et al. (2013). Under a
    constant gradient ``g`` the trace is the geometric series ``g (1 - decay^k) / (1 - decay)``.
    ``accumulator_dtype`` sets the dtype the trace is stored in (default: the parameter's); the trace is
    updated in the wider compute dtype of the two (``gradtx.tree.wider``).
    """

    decay: Any = probability(closed=True)
    nesterov: bool = flag(default=False)
    accumulator_dtype: Any = dtype_option(default=None)

    def init(self, params: Params) -> TraceState:
        return TraceState(trace=tree.zeros_like(params, self.accumulator_dtype))

    def update(self, updates: Updates, state: TraceState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("trace.update", state.trace, updates)

        def one(g: Any, t: Any) -> tuple[Any, Any]:
            x, t_wide = tree.Leaf(g), tree.wider(t, g)
            s = tree.Leaf(t_wide)  # the trace's compute dtype: the wider of the state's and the update's
            decay, g_wide = s.cast(s.hyper(self.decay)), s.cast(g)
            new_t = g_wide + decay * t_wide
            out = g_wide + decay * new_t if self.nesterov else new_t
            return x.out(out), s.store(new_t, t)

        out, new_trace = tree.map_split(one, 2, updates, state.trace)
        return out, TraceState(trace=new_trace)


@pytree_class
class ema(GradientTransformation):
    """Exponential moving average ``e_k = (1 - decay) g_k + decay e_{k-1}``, optionally debiased.

    With ``debias`` the output is ``e_k / (1 - decay^k)`` (Kingma & Ba 2015); the state keeps the
    biased average, as Optax does. ``1 - decay`` is exact and ``1 - decay^k`` computed from it (see the module
    docstring): in float32 the debiased average of a constant is that constant, for ``decay`` near 1 too.
    """

    decay: Any = probability(closed=True)
    debias: bool = flag(default=True)
    accumulator_dtype: Any = dtype_option(default=None)

    def init(self, params: Params) -> EmaState:
        return EmaState(count=zero_count(), ema=tree.zeros_like(params, self.accumulator_dtype))

    def update(self, updates: Updates, state: EmaState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("ema.update", state.ema, updates)
        new_ema = tree.update_moment(updates, state.ema, self.decay, 1)
        count = safe_int32_increment(state.count)
        out = tree.bias_correction(new_ema, self.decay, count) if self.debias else new_ema
        return tree.cast_like(out, updates), EmaState(count=count, ema=new_ema)


@pytree_class
class bias_correction(GradientTransformation):
    """Divide by ``1 - decay^k`` (``k`` the 1-based step): the debiasing of a zero-initialised average.

    Kingma & Ba (2015), Algorithm 1, as a block of its own: ``chain(ema(b, debias=False),
    bias_correction(b))`` is a debiased EMA.
    """

    decay: Any = probability()

    def init(self, params: Params) -> BiasCorrectionState:
        del params
        return BiasCorrectionState(count=zero_count())

    def update(self, updates: Updates, state: BiasCorrectionState, params: Params | None = None, **extra: Any):
        del params, extra
        count = safe_int32_increment(state.count)
        out = tree.bias_correction(updates, self.decay, count)
        return tree.cast_like(out, updates), BiasCorrectionState(count=count)
