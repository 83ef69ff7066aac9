"""Schedules built from others or from a paper's recipe: joins, the Transformer's, WSD, one-cycle, SGDR."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from gradtx.base import Schedule as ScheduleFn
from gradtx.fields import (
    HyperparameterError,
    InvalidType,
    as_pytree_callable,
    choice,
    hyper,
    integer,
    non_negative,
    option,
    positive,
    pytree_class,
    real,
)
from gradtx.schedules._base import (
    FINITE_NON_NEGATIVE,
    Scalar,
    Schedule,
    _f,
    _format,
    _half_cosine,
    _linear_warmup,
    _refusal,
    schedule_dtype,
)
from gradtx.schedules._basic import piecewise_interpolate_schedule, warmup_cosine_decay_schedule

# --------------------------------------------------------------------------------------------------
# Composition and the schedules of particular papers.
# --------------------------------------------------------------------------------------------------


@pytree_class
class join_schedules(Schedule):
    """One schedule after another; each later schedule restarts its count at its boundary::

        value = schedules[0](count)
        for b, s in zip(boundaries, schedules[1:]):
            if count >= b: value = s(count - b)

    ``len(boundaries) == len(schedules) - 1``; boundaries are step counts >= 0 (leaves). gradtx schedules
    stay pytrees inside the join; plain Python functions are held as static. Optax's ``join_schedules``.

    Args:
      schedules: a non-empty sequence of schedules (gradtx schedules or functions ``count -> value``).
        Required.
      boundaries: the steps at which each later schedule takes over, ``len(schedules) - 1`` finite numbers
        >= 0 in increasing order. Required.

    Raises:
      ValueError: at construction, for no schedule, the wrong number of boundaries
        (``join_schedules(boundaries=(5,)): boundaries must have len(schedules) - 1 = 0 entries, got 1``) or
        a negative boundary.
      TypeError: for ``schedules`` or ``boundaries`` that are not sequences, or a schedule that is not
        callable (also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> warmup = gradtx.schedules.linear_schedule(0.0, 1.0, transition_steps=5)
      >>> decay = gradtx.schedules.linear_schedule(1.0, 0.0, transition_steps=10)
      >>> s = gradtx.schedules.join_schedules([warmup, decay], boundaries=[5])
      >>> print([float(s(t)) for t in (0, 5, 10, 15)])  # decay sees count - 5
      [0.0, 1.0, 0.5, 0.0]
    """

    schedules: Sequence[ScheduleFn] = option(accepts="a non-empty sequence of callables count -> value")
    boundaries: Sequence[Scalar] = option(accepts="a sequence of len(schedules) - 1 step counts >= 0")

    def __check_init__(self) -> None:
        if isinstance(self.schedules, (str, dict)) or not isinstance(self.schedules, Sequence):
            self._fail("schedules", self.schedules, "must be a sequence of callables count -> value", InvalidType)
        if isinstance(self.boundaries, (str, dict)) or not isinstance(self.boundaries, Sequence):
            self._fail("boundaries", self.boundaries, "must be a sequence of step counts", InvalidType)
        schedules = tuple(as_pytree_callable(s) for s in self.schedules)
        boundaries = tuple(self.boundaries)
        object.__setattr__(self, "schedules", schedules)
        object.__setattr__(self, "boundaries", boundaries)
        if not schedules:
            self._fail("schedules", schedules, "must hold at least one schedule")
        for s in schedules:
            if not callable(s):
                self._fail("schedules", schedules, f"must hold callables count -> value, got {s!r}", InvalidType)
        if len(boundaries) != len(schedules) - 1:
            self._fail("boundaries", boundaries,
                       f"must have len(schedules) - 1 = {len(schedules) - 1} entries, got {len(boundaries)}")
        for b in boundaries:
            kind = _refusal(FINITE_NON_NEGATIVE, b)
            if kind is not None:
                self._fail("boundaries", boundaries, f"entries must be finite and >= 0, got {b!r}", kind)

    def __call__(self, count: ArrayLike) -> jax.Array:
        c = jnp.asarray(count)
        outputs, selectors = [jnp.asarray(cast(Callable[[Any], ArrayLike], self.schedules[0])(count))], []
        for b, s in zip(self.boundaries, self.schedules[1:]):
            bb = jnp.asarray(b)
            if jnp.issubdtype(c.dtype, jnp.integer) and jnp.issubdtype(bb.dtype, jnp.integer):
                cc, bb = c, bb.astype(c.dtype)
            else:
                fdt = schedule_dtype((c, bb))
                cc, bb = c.astype(fdt), bb.astype(fdt)
            outputs.append(jnp.asarray(s(cc - bb)))
            selectors.append(cc >= bb)
        dt = schedule_dtype(outputs)
        v = _f(outputs[0], dt)
        for take, out in zip(selectors, outputs[1:]):
            v = jnp.where(take, _f(out, dt), v)
        return v

    def __repr__(self) -> str:
        return f"join_schedules(schedules={_format(self.schedules)}, boundaries={_format(self.boundaries)})"


@pytree_class
class transformer_warmup_schedule(Schedule):
    """The inverse-square-root schedule of Vaswani et al. 2017 ("Attention Is All You Need", eq. 3)::

        s = count + 1
        value = d_model ** -0.5 * min(s ** -0.5, s * warmup_steps ** -1.5)

    Linear warm-up for ``warmup_steps`` steps (peak ``(d_model * warmup_steps) ** -0.5``), then decay as
    ``1 / sqrt(step)``. Multiply by a constant factor to tune it (``inject_hyperparams`` or a plain
    function ``lambda c: 2.0 * s(c)``). gradtx's; Optax has no counterpart.

    Args:
      d_model: the model width, > 0 (it only scales the curve). Required.
      warmup_steps: the length of the warm-up in steps, > 0. Required.

    Raises:
      ValueError: at construction, for an argument out of its range, e.g.
        ``transformer_warmup_schedule(d_model=0): d_model must be > 0``.
      TypeError: for an argument that is not a real number (also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> s = gradtx.schedules.transformer_warmup_schedule(d_model=16, warmup_steps=4)
      >>> print([float(s(t)) for t in (0, 3, 15)])  # up to (16 * 4) ** -0.5 at step 3, then 1 / (4 sqrt(16))
      [0.03125, 0.125, 0.0625]
    """

    d_model: Scalar = positive()
    warmup_steps: Scalar = positive()

    def __call__(self, count: ArrayLike) -> jax.Array:
        dt = schedule_dtype(self)
        s = _f(count, dt) + 1
        return jax.lax.rsqrt(_f(self.d_model, dt)) * jnp.minimum(
            jax.lax.rsqrt(s), s * _f(self.warmup_steps, dt) ** -1.5
        )


_WSD_DECAY_TYPES = ("linear", "cosine", "1-sqrt")


@pytree_class
class warmup_stable_decay_schedule(Schedule):
    """Warm-up, stable plateau, cool-down (WSD)::

        count < W:            init_value + (peak_value - init_value) * count / W
        W <= count < W + S:   peak_value
        otherwise:            f = min((count - W - S) / decay_steps, 1)
            'linear':  peak_value + (end_value - peak_value) * f
            'cosine':  end_value + (peak_value - end_value) * 0.5 * (1 + cos(pi * f))
            '1-sqrt':  end_value + (peak_value - end_value) * (1 - sqrt(f))

    with ``W = warmup_steps`` and ``S = stable_steps``. Hu et al. 2024, "MiniCPM" (arXiv 2404.06395);
    the '1-sqrt' cool-down from Hägele et al. 2024, "Scaling Laws and Compute-Optimal Training Beyond
    Fixed Training Durations" (arXiv 2405.18392). The plateau can be extended and a cool-down branched
    off at any point without restarting. gradtx's; Optax has no counterpart.

    Args:
      peak_value: the value of the plateau, a finite number. Required.
      warmup_steps: the length of the warm-up in steps, >= 0. Required.
      stable_steps: the length of the plateau in steps, >= 0. Required.
      decay_steps: the length of the cool-down in steps, > 0. Required.
      init_value: the value at count 0, a finite number. Default 0.0.
      end_value: the value at the end of the cool-down and after it, a finite number. Default 0.0.
      decay_type: the shape of the cool-down, ``"linear"``, ``"cosine"`` or ``"1-sqrt"``. Default
        ``"linear"``.

    Raises:
      ValueError: at construction, for an argument out of its range, e.g.
        ``warmup_stable_decay_schedule(decay_steps=0): decay_steps must be > 0`` or
        ``warmup_stable_decay_schedule(decay_type='exp'): decay_type must be one of 'linear', 'cosine',
        '1-sqrt'``.
      TypeError: for an argument that is not a real number (also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> s = gradtx.schedules.warmup_stable_decay_schedule(
      ...     peak_value=1.0, warmup_steps=10, stable_steps=10, decay_steps=10)
      >>> print([float(s(t)) for t in (0, 5, 10, 20, 25, 30)])
      [0.0, 0.5, 1.0, 1.0, 0.5, 0.0]
    """

    peak_value: Scalar = real()
    warmup_steps: Scalar = non_negative()
    stable_steps: Scalar = non_negative()
    decay_steps: Scalar = positive()
    init_value: Scalar = real(default=0.0)
    end_value: Scalar = real(default=0.0)
    decay_type: str = choice(default="linear", choices=_WSD_DECAY_TYPES)

    def __call__(self, count: ArrayLike) -> jax.Array:
        dt = schedule_dtype(self)
        c = _f(count, dt)
        peak, end = _f(self.peak_value, dt), _f(self.end_value, dt)
        warmup = _f(self.warmup_steps, dt)
        f = jnp.clip((c - warmup - _f(self.stable_steps, dt)) / _f(self.decay_steps, dt), 0, 1)
        if self.decay_type == "linear":
            after = peak + (end - peak) * f
        elif self.decay_type == "cosine":
            after = end + (peak - end) * _half_cosine(f)
        else:
            root = jnp.where(f > 0, jnp.sqrt(jnp.where(f > 0, f, 1)), 0)  # no inf gradient at f = 0
            after = end + (peak - end) * (1 - root)
        return _linear_warmup(c, _f(self.init_value, dt), peak, warmup, after)


# --------------------------------------------------------------------------------------------------
# One-cycle and warm-restart schedules.
# --------------------------------------------------------------------------------------------------


class _OneCycle(Schedule):
    """What the one-cycle schedules share: a piecewise interpolation whose knots are static Python numbers."""

    transition_steps: int
    pct_start: float

    def __check_init__(self) -> None:
        self._concrete("transition_steps", int, "a concrete whole number > 0 (a static step count)")
        self._concrete("pct_start", float, "a concrete number in [0, 1] (it places a knot)")

    def _knot(self, pct: float) -> int:
        return int(pct * self.transition_steps)  # truncation, as Optax does


@pytree_class
class linear_onecycle_schedule(_OneCycle):
    """The one-cycle policy with three linear phases (Smith & Topin 2017, "Super-Convergence", arXiv 1708.07120)::

        T = transition_steps, v0 = peak_value / div_factor
        0 -> int(pct_start T):              v0 -> peak_value                 (linear)
        int(pct_start T) -> int(pct_final T):  peak_value -> v0
        int(pct_final T) -> T:              v0 -> v0 / final_div_factor
        after T:                            v0 / final_div_factor

    It is ``piecewise_interpolate_schedule('linear', v0, {int(pct_start T): div_factor,
    int(pct_final T): 1 / div_factor, T: 1 / final_div_factor})``; as in Optax, knots that coincide keep the
    later scale. The knots are static (``transition_steps`` a positive integer, ``0 <= pct_start <=
    pct_final <= 1``); ``peak_value``, ``div_factor > 0`` and ``final_div_factor > 0`` (finite) are leaves.
    Optax's ``linear_onecycle_schedule``.

    Args:
      transition_steps: the length ``T`` of the cycle in steps, a whole number > 0 (static). Required.
      peak_value: the value at the top of the cycle, a finite number. Required.
      pct_start: the fraction of ``T`` spent rising, in [0, 1] (static). Default 0.3.
      pct_final: the fraction of ``T`` at which the descent back to ``v0`` ends, in [``pct_start``, 1]
        (static). Default 0.85.
      div_factor: ``peak_value / v0``, the ratio of the top to the start, finite and > 0. Default 25.0.
      final_div_factor: ``v0`` over the final value, finite and > 0. Default 1e4.

    Raises:
      ValueError: at construction, for an argument out of its range, e.g.
        ``linear_onecycle_schedule(transition_steps=0): transition_steps must be a whole number > 0`` or a
        ``pct_final`` below ``pct_start``.
      TypeError: for a traced ``transition_steps``, ``pct_start`` or ``pct_final`` (they place the knots, so
        they must be concrete) or an argument that is not a real number (also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> s = gradtx.schedules.linear_onecycle_schedule(
      ...     transition_steps=100, peak_value=1.0, div_factor=10.0, final_div_factor=10.0)
      >>> print([float(s(t)) for t in (0, 30, 85, 100)])  # 0.1 -> 1.0 -> 0.1 -> 0.01
      [0.1, 1.0, 0.1, 0.01]
    """

    transition_steps: int = integer(lo=0.0, lo_open=True, static=True)  # it places the knots
    peak_value: Scalar = real()
    pct_start: float = hyper(default=0.3, lo=0.0, hi=1.0, static=True)
    pct_final: float = hyper(default=0.85, lo=0.0, hi=1.0, static=True)  # and >= pct_start (__check_init__)
    div_factor: Scalar = hyper(default=25.0, lo=0.0, lo_open=True, hi=math.inf, hi_open=True)
    final_div_factor: Scalar = hyper(default=1e4, lo=0.0, lo_open=True, hi=math.inf, hi_open=True)

    def __check_init__(self) -> None:
        self._concrete("pct_final", float, "a concrete number in [0, 1] (it places a knot)")
        self._check_range("pct_final", self.pct_start, 1.0)

    def __call__(self, count: ArrayLike) -> jax.Array:
        dt = schedule_dtype(self)
        peak, div = _f(self.peak_value, dt), _f(self.div_factor, dt)
        knots: dict[int, Scalar] = {
            self._knot(self.pct_start): div,
            self._knot(self.pct_final): 1 / div,
            self.transition_steps: 1 / _f(self.final_div_factor, dt),
        }
        return piecewise_interpolate_schedule("linear", peak / div, knots)(count)


@pytree_class
class cosine_onecycle_schedule(_OneCycle):
    """The one-cycle policy with cosine phases (Smith & Topin 2017, "Super-Convergence", arXiv 1708.07120)::

        T = transition_steps, v0 = peak_value / div_factor
        0 -> int(pct_start T):  v0 -> peak_value                                  (half cosine)
        int(pct_start T) -> T:  peak_value -> v0 / final_div_factor               (half cosine)
        after T:                v0 / final_div_factor

    It is ``piecewise_interpolate_schedule('cosine', v0, {int(pct_start T): div_factor,
    T: 1 / (div_factor * final_div_factor)})``. The knots are static (``transition_steps`` a positive
    integer, ``0 <= pct_start <= 1``); ``peak_value``, ``div_factor > 0`` and ``final_div_factor > 0``
    (finite) are leaves. Optax's ``cosine_onecycle_schedule``.

    Args:
      transition_steps: the length ``T`` of the cycle in steps, a whole number > 0 (static). Required.
      peak_value: the value at the top of the cycle, a finite number. Required.
      pct_start: the fraction of ``T`` spent rising, in [0, 1] (static). Default 0.3.
      div_factor: ``peak_value / v0``, the ratio of the top to the start, finite and > 0. Default 25.0.
      final_div_factor: ``v0`` over the final value, finite and > 0. Default 1e4.

    Raises:
      ValueError: at construction, for an argument out of its range, e.g.
        ``cosine_onecycle_schedule(pct_start=1.5): pct_start must be in [0, 1]``.
      TypeError: for a traced ``transition_steps`` or ``pct_start`` (they place the knots) or an argument
        that is not a real number (also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> s = gradtx.schedules.cosine_onecycle_schedule(
      ...     transition_steps=100, peak_value=1.0, div_factor=10.0, final_div_factor=10.0)
      >>> print([float(s(t)) for t in (0, 15, 30, 100)])  # 0.1 -> 1.0 -> 0.01
      [0.1, 0.55, 1.0, 0.01]
    """

    transition_steps: int = integer(lo=0.0, lo_open=True, static=True)  # it places the knots
    peak_value: Scalar = real()
    pct_start: float = hyper(default=0.3, lo=0.0, hi=1.0, static=True)
    div_factor: Scalar = hyper(default=25.0, lo=0.0, lo_open=True, hi=math.inf, hi_open=True)
    final_div_factor: Scalar = hyper(default=1e4, lo=0.0, lo_open=True, hi=math.inf, hi_open=True)

    def __call__(self, count: ArrayLike) -> jax.Array:
        dt = schedule_dtype(self)
        peak, div = _f(self.peak_value, dt), _f(self.div_factor, dt)
        knots: dict[int, Scalar] = {
            self._knot(self.pct_start): div,
            self.transition_steps: 1 / (div * _f(self.final_div_factor, dt)),
        }
        return piecewise_interpolate_schedule("cosine", peak / div, knots)(count)


_WARMUP_COSINE_ARGS = ("init_value", "peak_value", "warmup_steps", "decay_steps", "end_value", "exponent")


@pytree_class
class sgdr_schedule(Schedule):
    """SGD with warm restarts (Loshchilov & Hutter 2017, "SGDR", arXiv 1608.03983): cosine cycles joined.

    ``cosine_kwargs`` is a sequence of dicts of ``warmup_cosine_decay_schedule`` arguments, one per cycle.
    Cycle ``i`` starts at ``B_i = sum_{j<i} decay_steps_j`` and runs its own warm-up and cosine decay on
    ``count - B_i``; the last cycle goes on after its end (at its ``end_value``)::

        value = warmup_cosine_decay_schedule(**cosine_kwargs[i])(count - B_i)   for B_i <= count < B_{i+1}

    The dict values are leaves (a jitted step taking the schedule does not recompile when they change).
    Optax's ``sgdr_schedule``.

    Args:
      cosine_kwargs: a non-empty sequence of dicts, one per cycle, of the arguments of
        :class:`warmup_cosine_decay_schedule` (``init_value``, ``peak_value``, ``warmup_steps``,
        ``decay_steps``, ``end_value``, ``exponent``); each needs at least ``decay_steps``, its length.
        Required.

    Raises:
      ValueError: at construction, for no cycle, a cycle without ``decay_steps``, an unknown key, or
        arguments :class:`warmup_cosine_decay_schedule` refuses (``sgdr_schedule(cosine_kwargs=[]):
        cosine_kwargs must hold at least one dict (one cosine cycle)``).
      TypeError: for ``cosine_kwargs`` that is not a sequence of dicts (also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> cycle = dict(init_value=1.0, peak_value=1.0, warmup_steps=0, decay_steps=10)
      >>> s = gradtx.schedules.sgdr_schedule([cycle, dict(cycle, init_value=0.5, peak_value=0.5)])
      >>> print([float(s(t)) for t in (0, 5, 10, 15, 20)])  # restarts at 0.5 at step 10
      [1.0, 0.5, 0.5, 0.25, 0.0]
    """

    cosine_kwargs: Sequence[dict[str, Scalar]] = option(
        accepts="a non-empty sequence of dicts of warmup_cosine_decay_schedule arguments"
    )

    def __check_init__(self) -> None:
        raw = self.cosine_kwargs
        if isinstance(raw, (str, bytes, dict)) or not hasattr(raw, "__iter__"):
            self._fail("cosine_kwargs", raw, "must be a sequence of dicts of warmup_cosine_decay_schedule arguments",
                       InvalidType)
        cycles = tuple(raw)
        if not cycles:
            self._fail("cosine_kwargs", raw, "must hold at least one dict (one cosine cycle)")
        for i, kwargs in enumerate(cycles):
            if not isinstance(kwargs, dict):
                self._fail("cosine_kwargs", raw, f"entries must be dicts; cosine_kwargs[{i}] is {kwargs!r}",
                           InvalidType)
            if "decay_steps" not in kwargs:
                self._fail("cosine_kwargs", raw, f"cosine_kwargs[{i}] lacks 'decay_steps' (the cycle's length)")
            unknown = sorted(set(kwargs) - set(_WARMUP_COSINE_ARGS))
            if unknown:
                self._fail("cosine_kwargs", raw, f"cosine_kwargs[{i}] has keys {unknown} that "
                           f"warmup_cosine_decay_schedule does not take (it takes {list(_WARMUP_COSINE_ARGS)})")
            try:
                warmup_cosine_decay_schedule(**kwargs)
            except HyperparameterError as e:  # a value refused by its field (before: TypeError also means this)
                self._fail("cosine_kwargs", raw, f"cosine_kwargs[{i}] is invalid: {e}", type(e))
            except TypeError as e:
                self._fail("cosine_kwargs", raw, f"cosine_kwargs[{i}] is not a full set of arguments: {e}")
        object.__setattr__(self, "cosine_kwargs", tuple(dict(kwargs) for kwargs in cycles))

    def __call__(self, count: ArrayLike) -> jax.Array:
        schedules: list[ScheduleFn] = []
        starts: list[Scalar] = []
        start: Scalar = 0
        for kwargs in self.cosine_kwargs:
            schedules.append(warmup_cosine_decay_schedule(**kwargs))
            start = start + kwargs["decay_steps"]
            starts.append(start)
        return join_schedules(schedules, starts[:-1])(count)

    def __repr__(self) -> str:
        # Each dict in warmup_cosine_decay_schedule's argument order (a pytree round trip sorts dict keys).
        cycles = [{k: kwargs[k] for k in _WARMUP_COSINE_ARGS if k in kwargs} for kwargs in self.cosine_kwargs]
        return f"sgdr_schedule(cosine_kwargs={_format(tuple(cycles))})"
