"""Schedules built from others or from a paper's recipe: joins, the Transformer's, WSD, one-cycle, SGDR."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

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
    stay pytrees inside the join; plain Python functions are held as static.
    """

    schedules: Sequence[Callable[[Any], Any]] = option(accepts="a non-empty sequence of callables count -> value")
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

    def __call__(self, count: Any) -> jax.Array:
        c = jnp.asarray(count)
        outputs, selectors = [jnp.asarray(self.schedules[0](count))], []
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
    ``1 / sqrt(step)``. Multiply by a constant factor to tune it. ``d_model > 0``, ``warmup_steps > 0``.
    """

    d_model: Scalar = positive()
    warmup_steps: Scalar = positive()

    def __call__(self, count: Any) -> jax.Array:
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
    off at any point without restarting. ``warmup_steps >= 0``, ``stable_steps >= 0``, ``decay_steps > 0``.
    """

    peak_value: Scalar = real()
    warmup_steps: Scalar = non_negative()
    stable_steps: Scalar = non_negative()
    decay_steps: Scalar = positive()
    init_value: Scalar = real(default=0.0)
    end_value: Scalar = real(default=0.0)
    decay_type: str = choice(default="linear", choices=_WSD_DECAY_TYPES)

    def __call__(self, count: Any) -> jax.Array:
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

    def __call__(self, count: Any) -> jax.Array:
        dt = schedule_dtype(self)
        peak, div = _f(self.peak_value, dt), _f(self.div_factor, dt)
        knots = {
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
    (finite) are leaves.
    """

    transition_steps: int = integer(lo=0.0, lo_open=True, static=True)  # it places the knots
    peak_value: Scalar = real()
    pct_start: float = hyper(default=0.3, lo=0.0, hi=1.0, static=True)
    div_factor: Scalar = hyper(default=25.0, lo=0.0, lo_open=True, hi=math.inf, hi_open=True)
    final_div_factor: Scalar = hyper(default=1e4, lo=0.0, lo_open=True, hi=math.inf, hi_open=True)

    def __call__(self, count: Any) -> jax.Array:
        dt = schedule_dtype(self)
        peak, div = _f(self.peak_value, dt), _f(self.div_factor, dt)
        knots = {
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

    def __call__(self, count: Any) -> jax.Array:
        schedules, starts, start = [], [], 0
        for kwargs in self.cosine_kwargs:
            schedules.append(warmup_cosine_decay_schedule(**kwargs))
            start = start + kwargs["decay_steps"]
            starts.append(start)
        return join_schedules(schedules, starts[:-1])(count)

    def __repr__(self) -> str:
        # Each dict in warmup_cosine_decay_schedule's argument order (a pytree round trip sorts dict keys).
        cycles = [{k: kwargs[k] for k in _WARMUP_COSINE_ARGS if k in kwargs} for kwargs in self.cosine_kwargs]
        return f"sgdr_schedule(cosine_kwargs={_format(tuple(cycles))})"
