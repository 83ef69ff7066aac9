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
from jax.typing import DTypeLike

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    Params,
    Scalar,
    Updates,
    check_tree_match,
    safe_int32_increment,
    zero_count,
)
from gradtx.fields import dtype_option, flag, probability, pytree_class

__all__ = ["BiasCorrectionState", "EmaState", "TraceState", "bias_correction", "ema", "trace"]

class TraceState(NamedTuple):
    """The state of ``trace``.

    Attributes:
      trace: the momentum trace ``t_k``, one array per parameter (in ``accumulator_dtype`` if set).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.trace(decay=0.9)
      >>> _, state = tx.update(jnp.array([1.0, 2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.trace)  # t_1 = g_1
      [1. 2.]
    """

    trace: Updates


class EmaState(NamedTuple):
    """The state of ``ema``.

    Attributes:
      count: the number of updates so far, an int32 scalar (for the bias correction).
      ema: the biased exponential moving average ``e_k``, one array per parameter (in ``accumulator_dtype`` if
        set).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.ema(decay=0.9)
      >>> _, state = tx.update(jnp.array([1.0, 2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.count, state.ema)  # e_1 = (1 - decay) g_1, not debiased
      1 [0.1 0.2]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    ema: Updates


class BiasCorrectionState(NamedTuple):
    """The state of ``bias_correction``.

    Attributes:
      count: the number of updates so far, an int32 scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.bias_correction(decay=0.9)
      >>> _, state = tx.update(jnp.array([1.0, 2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.count)
      1
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count


@pytree_class
class trace(GradientTransformation):
    """Momentum: ``t_k = g_k + decay * t_{k-1}``; output ``t_k`` or, with ``nesterov``, ``g_k + decay * t_k``.

    Polyak (1964, "Some methods of speeding up the convergence of iteration methods", USSR Comput. Math. and
    Math. Phys. 4(5)) heavy-ball momentum; the Nesterov variant as in Sutskever, Martens, Dahl & Hinton (2013,
    "On the importance of initialization and momentum in deep learning", ICML)::

        t_k = g_k + decay t_{k-1},   t_0 = 0
        u = t_k                      (nesterov: u = g_k + decay t_k)

    Under a constant gradient ``g`` the trace is the geometric series ``g (1 - decay^k) / (1 - decay)``. There
    is no ``(1 - decay)`` factor (unlike ``ema``) and no bias correction, as in Optax. The trace is updated in
    the wider compute dtype of the state's and the update's (``gradtx.tree.wider``).

    Args:
      decay: the momentum coefficient, in [0, 1] (0: no momentum).
      nesterov: use Nesterov's momentum. Default False.
      accumulator_dtype: the dtype the trace is stored in, a floating dtype or ``None`` (the default: the
        parameter's).

    Returns:
      A ``GradientTransformation`` whose state is ``TraceState``.

    Raises:
      ValueError: at construction, for a ``decay`` out of range (``trace(decay=1.5): decay must be in
        [0, 1]``) or an ``accumulator_dtype`` that is not floating.
      TypeError: at construction, for a hyperparameter of the wrong kind (``trace(nesterov=1): nesterov must
        be True or False, not int``); in ``update``, for updates whose tree or shapes differ from the params
        given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.trace(decay=0.9)
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, 2.0]), state)
      >>> updates, state = tx.update(jnp.array([1.0, 2.0]), state)
      >>> print(updates)  # g + 0.9 g
      [1.9 3.8]
    """

    decay: Scalar = probability(closed=True)
    nesterov: bool = flag(default=False)
    accumulator_dtype: DTypeLike | None = dtype_option(default=None)

    def init(self, params: Params) -> TraceState:
        return TraceState(trace=tree.zeros_like(params, self.accumulator_dtype))

    def update(
        self, updates: Updates, state: TraceState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, TraceState]:
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

    With ``k`` the 1-based step::

        e_k = decay e_{k-1} + (1 - decay) g_k,   e_0 = 0
        u = e_k / (1 - decay^k)                  (debias=False: u = e_k)

    The bias correction is Kingma & Ba's (2015, "Adam: A Method for Stochastic Optimization", ICLR,
    Algorithm 1); the state keeps the biased average, as Optax does. ``1 - decay`` is exact and
    ``1 - decay^k`` computed from it (see the module docstring): in float32 the debiased average of a constant
    is that constant, for ``decay`` near 1 too. ``chain(ema(b, debias=False), bias_correction(b))`` equals
    ``ema(b)``.

    Args:
      decay: the decay rate, in [0, 1].
      debias: divide by ``1 - decay^k``. Default True.
      accumulator_dtype: the dtype the average is stored in, a floating dtype or ``None`` (the default: the
        parameter's).

    Returns:
      A ``GradientTransformation`` whose state is ``EmaState``.

    Raises:
      ValueError: at construction, for a ``decay`` out of range (``ema(decay=1.5): decay must be in [0, 1]``)
        or an ``accumulator_dtype`` that is not floating.
      TypeError: at construction, for a hyperparameter of the wrong kind (``None``, a string, a non-bool
        flag); in ``update``, for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.ema(decay=0.9)
      >>> updates, state = tx.update(jnp.array([1.0, 2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates, state.ema)  # debiased: 0.1 g / (1 - 0.9); stored biased
      [1. 2.] [0.1 0.2]
    """

    decay: Scalar = probability(closed=True)
    debias: bool = flag(default=True)
    accumulator_dtype: DTypeLike | None = dtype_option(default=None)

    def init(self, params: Params) -> EmaState:
        return EmaState(count=zero_count(), ema=tree.zeros_like(params, self.accumulator_dtype))

    def update(
        self, updates: Updates, state: EmaState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, EmaState]:
        del params, extra
        check_tree_match("ema.update", state.ema, updates)
        new_ema = tree.update_moment(updates, state.ema, self.decay, 1)
        count = safe_int32_increment(state.count)
        out = tree.bias_correction(new_ema, self.decay, count) if self.debias else new_ema
        return tree.cast_like(out, updates), EmaState(count=count, ema=new_ema)


@pytree_class
class bias_correction(GradientTransformation):
    """Divide by ``1 - decay^k`` (``k`` the 1-based step): the debiasing of a zero-initialised average.

    Kingma & Ba (2015, "Adam: A Method for Stochastic Optimization", ICLR), Algorithm 1, as a block of its own:
    ``u = g_k / (1 - decay^k)``, so ``chain(ema(b, debias=False), bias_correction(b))`` is a debiased EMA.
    ``1 - decay^k`` is ``-expm1(k log1p(-(1 - decay)))`` from the exact complement (see the module docstring).

    Args:
      decay: the decay rate of the average being corrected, in [0, 1).

    Returns:
      A ``GradientTransformation`` whose state is ``BiasCorrectionState``.

    Raises:
      ValueError: at construction, for a ``decay`` out of range, e.g. ``bias_correction(decay=1.0): decay must
        be in [0, 1)``.
      TypeError: at construction, for a ``decay`` that is not a real number (``None``, a string).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.bias_correction(decay=0.9)
      >>> updates, state = tx.update(jnp.array([1.0, 2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates)  # g / (1 - 0.9)
      [10. 20.]
    """

    decay: Scalar = probability()

    def init(self, params: Params) -> BiasCorrectionState:
        del params
        return BiasCorrectionState(count=zero_count())

    def update(
        self, updates: Updates, state: BiasCorrectionState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, BiasCorrectionState]:
        del params, extra
        count = safe_int32_increment(state.count)
        out = tree.bias_correction(updates, self.decay, count)
        return tree.cast_like(out, updates), BiasCorrectionState(count=count)
