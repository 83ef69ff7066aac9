"""Elementary and warm-up schedules: constant, polynomial, exponential, cosine, piecewise; warm-up then decay."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from gradtx.fields import (
    choice,
    concrete_number,
    flag,
    format_value,
    non_negative,
    option,
    positive,
    pytree_class,
    real,
)
from gradtx.schedules._base import (
    FINITE,
    FINITE_NON_NEGATIVE,
    Scalar,
    Schedule,
    _exponential,
    _f,
    _half_cosine,
    _linear_warmup,
    _polynomial,
    _safe_div,
    _safe_pow,
    schedule_dtype,
)

_BOUNDARIES = "a dict {boundary step: scale} or None"


# --------------------------------------------------------------------------------------------------
# Elementary schedules.
# --------------------------------------------------------------------------------------------------


@pytree_class
class constant_schedule(Schedule):
    """The same value at every count.

    ``value`` at every count, broadcast to the count's shape. A number given as a learning rate needs no
    schedule; this one is for APIs that want a schedule object (``inject_hyperparams``, ``join_schedules``).
    Optax's ``constant_schedule``.

    Args:
      value: the value, a finite number. Required.

    Raises:
      ValueError: at construction, for a non-finite value (``constant_schedule(value=nan): value must be
        finite``).
      TypeError: for a value that is not a real number (``constant_schedule(value=None): value must be a
        finite real number, not None``; also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> s = gradtx.schedules.constant_schedule(0.1)
      >>> print([float(s(t)) for t in (0, 5, 10)])
      [0.1, 0.1, 0.1]
    """

    value: Scalar = real()

    def __call__(self, count: ArrayLike) -> jax.Array:
        dt = schedule_dtype(self)
        return jnp.broadcast_to(_f(self.value, dt), jnp.shape(count))


@pytree_class
class polynomial_schedule(Schedule):
    """Polynomial decay from ``init_value`` to ``end_value``, held before and after the transition::

        c = clip(count - transition_begin, 0, transition_steps)
        value = (init_value - end_value) * (1 - c / transition_steps) ** power + end_value

    Optax's ``polynomial_schedule``; ``power=1`` is :class:`linear_schedule`, ``power`` above 1 decays fast
    at first, below 1 slowly at first.

    Args:
      init_value: the value up to ``transition_begin``, a finite number. Required.
      end_value: the value from ``transition_begin + transition_steps`` on, a finite number. Required.
      power: the exponent of the decay, a finite number. Required.
      transition_steps: the length of the transition in steps, > 0. Required.
      transition_begin: the step the transition starts at, >= 0. Default 0.

    Raises:
      ValueError: at construction, for an argument out of its range, e.g.
        ``polynomial_schedule(transition_steps=0): transition_steps must be > 0``.
      TypeError: for an argument that is not a real number (also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> s = gradtx.schedules.polynomial_schedule(init_value=1.0, end_value=0.0, power=2, transition_steps=10)
      >>> print([float(s(t)) for t in (0, 5, 10, 20)])  # (1 - t / 10) ** 2, then held
      [1.0, 0.25, 0.0, 0.0]
    """

    init_value: Scalar = real()
    end_value: Scalar = real()
    power: Scalar = real()
    transition_steps: Scalar = positive()
    transition_begin: Scalar = non_negative(default=0)

    def __call__(self, count: ArrayLike) -> jax.Array:
        dt = schedule_dtype(self)
        return _polynomial(_f(count, dt), _f(self.init_value, dt), _f(self.end_value, dt), _f(self.power, dt),
                           _f(self.transition_steps, dt), _f(self.transition_begin, dt))


@pytree_class
class linear_schedule(Schedule):
    """Linear interpolation from ``init_value`` to ``end_value`` (a polynomial schedule of power 1)::

        c = clip(count - transition_begin, 0, transition_steps)
        value = init_value + (end_value - init_value) * c / transition_steps

    This is the linear warm-up of Goyal et al. 2017 ("Accurate, Large Minibatch SGD: Training ImageNet in
    1 Hour", arXiv 1706.02677) when ``end_value > init_value``. Optax's ``linear_schedule``.

    Args:
      init_value: the value up to ``transition_begin``, a finite number. Required.
      end_value: the value from ``transition_begin + transition_steps`` on, a finite number. Required.
      transition_steps: the length of the transition in steps, > 0. Required.
      transition_begin: the step the transition starts at, >= 0. Default 0.

    Raises:
      ValueError: at construction, for an argument out of its range, e.g.
        ``linear_schedule(transition_steps=0): transition_steps must be > 0``.
      TypeError: for an argument that is not a real number (also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> s = gradtx.schedules.linear_schedule(init_value=1.0, end_value=0.0, transition_steps=10)
      >>> print([float(s(t)) for t in (0, 5, 10, 20)])
      [1.0, 0.5, 0.0, 0.0]
    """

    init_value: Scalar = real()
    end_value: Scalar = real()
    transition_steps: Scalar = positive()
    transition_begin: Scalar = non_negative(default=0)

    def __call__(self, count: ArrayLike) -> jax.Array:
        dt = schedule_dtype(self)
        return _polynomial(_f(count, dt), _f(self.init_value, dt), _f(self.end_value, dt), _f(1, dt),
                           _f(self.transition_steps, dt), _f(self.transition_begin, dt))


class _ExponentialDecay(Schedule):
    """What :class:`exponential_decay` and :class:`warmup_exponential_decay_schedule` share: the check of
    ``decay_rate`` and the decay from ``transition_steps``, ``decay_rate``, ``transition_begin``, ``staircase``
    and ``end_value`` (fields of both)."""

    if TYPE_CHECKING:  # fields of the subclasses
        transition_steps: Scalar
        decay_rate: Scalar
        transition_begin: Scalar
        staircase: bool
        end_value: Scalar | None

    def __check_init__(self) -> None:
        self._check_nonzero("decay_rate")

    def _decayed(self, c: jax.Array, start: jax.Array, dt: Any) -> jax.Array:
        """``start`` decayed over ``c`` steps (the formula of :class:`exponential_decay`) in the dtype ``dt``."""
        end = None if self.end_value is None else _f(self.end_value, dt)
        return _exponential(c, start, _f(self.transition_steps, dt), _f(self.decay_rate, dt),
                            _f(self.transition_begin, dt), self.staircase, end)


@pytree_class
class exponential_decay(_ExponentialDecay):
    """Exponential decay, optionally in steps and bounded by ``end_value``::

        c = count - transition_begin
        p = c / transition_steps            (floor(p) if staircase)
        value = init_value if c <= 0 else init_value * decay_rate ** p

    With ``end_value``: ``max(value, end_value)`` if ``decay_rate < 1`` (a floor), else
    ``min(value, end_value)`` (a ceiling). Optax's ``exponential_decay``.

    Args:
      init_value: the value up to ``transition_begin``, a finite number. Required.
      transition_steps: the number of steps over which the value is multiplied by ``decay_rate``, > 0.
        Required.
      decay_rate: the factor per ``transition_steps``, finite and nonzero (below 1 decays, above 1 grows).
        Required.
      transition_begin: the step the decay starts at, >= 0. Default 0.
      staircase: decay in whole steps of ``transition_steps`` (``floor(p)``) rather than continuously.
        Default False.
      end_value: a bound the value does not pass (a floor when decaying, a ceiling when growing), a finite
        number, or None for no bound. Default None.

    Raises:
      ValueError: at construction, for an argument out of its range, e.g.
        ``exponential_decay(decay_rate=0.0): decay_rate must be nonzero and finite`` or
        ``exponential_decay(transition_steps=0): transition_steps must be > 0``.
      TypeError: for an argument of the wrong kind, e.g. ``exponential_decay(staircase=1): staircase must be
        True or False, not int`` (also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> s = gradtx.schedules.exponential_decay(init_value=1.0, transition_steps=10, decay_rate=0.5)
      >>> print([float(s(t)) for t in (0, 10, 20, 25)])  # halved every 10 steps
      [1.0, 0.5, 0.25, 0.1768]
    """

    init_value: Scalar = real()
    transition_steps: Scalar = positive()
    decay_rate: Scalar = real()  # and nonzero (__check_init__)
    transition_begin: Scalar = non_negative(default=0)
    staircase: bool = flag(default=False)
    end_value: Scalar | None = real(default=None, optional=True)

    def __call__(self, count: ArrayLike) -> jax.Array:
        dt = schedule_dtype(self)
        return self._decayed(_f(count, dt), _f(self.init_value, dt), dt)


@pytree_class
class cosine_decay_schedule(Schedule):
    """Half-cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``, then held::

        c = min(count, decay_steps)
        value = init_value * ((1 - alpha) * (0.5 * (1 + cos(pi * c / decay_steps))) ** exponent + alpha)

    Loshchilov & Hutter 2017, "SGDR: Stochastic Gradient Descent with Warm Restarts" (arXiv 1608.03983),
    one cycle without restart (see :class:`gradtx.schedules.sgdr_schedule` for restarts). Optax's
    ``cosine_decay_schedule``.

    Args:
      init_value: the value at count 0, a finite number. Required.
      decay_steps: the length of the decay in steps, > 0. Required.
      alpha: the final value as a fraction of ``init_value``, a finite number. Default 0.0.
      exponent: the power of the half cosine, a finite number (above 1 decays faster at first). Default 1.0.

    Raises:
      ValueError: at construction, for an argument out of its range, e.g.
        ``cosine_decay_schedule(decay_steps=0): decay_steps must be > 0``.
      TypeError: for an argument that is not a real number (also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> s = gradtx.schedules.cosine_decay_schedule(init_value=1.0, decay_steps=10, alpha=0.1)
      >>> print([float(s(t)) for t in (0, 5, 10, 20)])  # from 1 to alpha * 1, then held
      [1.0, 0.55, 0.1, 0.1]
    """

    init_value: Scalar = real()
    decay_steps: Scalar = positive()
    alpha: Scalar = real(default=0.0)
    exponent: Scalar = real(default=1.0)

    def __call__(self, count: ArrayLike) -> jax.Array:
        dt = schedule_dtype(self)
        steps = _f(self.decay_steps, dt)
        alpha = _f(self.alpha, dt)
        c = jnp.minimum(_f(count, dt), steps)
        decay = (1 - alpha) * _safe_pow(_half_cosine(c / steps), _f(self.exponent, dt)) + alpha
        return _f(self.init_value, dt) * decay


@pytree_class
class piecewise_constant_schedule(Schedule):
    """``init_value`` times the scale of every boundary reached::

        value = init_value * prod(s for b, s in boundaries_and_scales.items() if count >= b)

    The boundaries (dict keys, integer steps >= 0) are static structure; the scales (finite) are leaves.
    ResNet's warm-up for its 110-layer CIFAR net (He et al. 2016, "Deep Residual Learning for Image
    Recognition", arXiv 1512.03385: 0.01 until training starts going, then 0.1) is
    ``piecewise_constant_schedule(0.01, {400: 10.0})``; step decay is ``{30_000: 0.1, 60_000: 0.1}``.
    Optax's ``piecewise_constant_schedule``.

    Args:
      init_value: the value before the first boundary, a finite number. Required.
      boundaries_and_scales: a dict ``{boundary step: scale}`` with integer boundaries >= 0 and finite
        scales, or None for a constant schedule. Default None.

    Raises:
      ValueError: at construction, for a boundary that is not a whole number >= 0 or a scale that is not
        finite, e.g. ``piecewise_constant_schedule(boundaries_and_scales={-1: 0.5}): boundaries_and_scales
        keys (boundaries) must be >= 0, got -1``.
      TypeError: for ``boundaries_and_scales`` that is not a dict or None (``... must be a dict {boundary
        step: scale} or None``; also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> s = gradtx.schedules.piecewise_constant_schedule(1.0, {10: 0.1, 20: 0.1})
      >>> print([float(s(t)) for t in (0, 10, 20, 30)])  # divided by 10 at steps 10 and 20
      [1.0, 0.1, 0.01, 0.01]
    """

    init_value: Scalar = real()
    boundaries_and_scales: dict[int, Scalar] | None = option(default=None, optional=True, accepts=_BOUNDARIES)

    def __check_init__(self) -> None:
        self._normalise_boundaries("boundaries_and_scales", FINITE)

    def __call__(self, count: ArrayLike) -> jax.Array:
        dt = schedule_dtype(self)
        c = _f(count, dt)
        v = jnp.broadcast_to(_f(self.init_value, dt), jnp.shape(c))
        for boundary, scale in (self.boundaries_and_scales or {}).items():
            v = jnp.where(c >= boundary, v * _f(scale, dt), v)
        return v


@pytree_class
class piecewise_interpolate_schedule(Schedule):
    """Linear or cosine interpolation between knots whose values accumulate the scales.

    The knots are ``b_0 = 0 <= b_1 <= ... <= b_n`` (the sorted boundaries) with values ``v_0 = init_value``
    and ``v_j = init_value * s_1 * ... * s_j``. For ``b_{j-1} <= count < b_j``::

        pct = (count - b_{j-1}) / max(b_j - b_{j-1}, 1)
        value = v_{j-1} + (v_j - v_{j-1}) * pct                       ('linear')
        value = v_{j-1} + (v_j - v_{j-1}) * (1 - cos(pi * pct)) / 2    ('cosine')

    and ``value = v_n`` for ``count >= b_n``. Boundaries are integer steps >= 0 (static), scales >= 0.
    Optax's ``piecewise_interpolate_schedule``.

    Args:
      interpolate_type: ``"linear"`` or ``"cosine"``. Required.
      init_value: the value at count 0, a finite number. Required.
      boundaries_and_scales: a dict ``{boundary step: scale}`` with integer boundaries >= 0 and finite scales
        >= 0, each scale multiplying the value of the previous knot; or None for a constant schedule.
        Default None.

    Raises:
      ValueError: at construction, for an unknown ``interpolate_type``
        (``piecewise_interpolate_schedule(interpolate_type='quad'): interpolate_type must be one of
        'linear', 'cosine'``), a boundary that is not a whole number >= 0, or a negative or non-finite scale.
      TypeError: for ``boundaries_and_scales`` that is not a dict or None (also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> s = gradtx.schedules.piecewise_interpolate_schedule("linear", 1.0, {10: 0.5, 20: 0.0})
      >>> print([float(s(t)) for t in (0, 5, 10, 15, 20)])  # knots 1.0 at 0, 0.5 at 10, 0.0 at 20
      [1.0, 0.75, 0.5, 0.25, 0.0]
    """

    interpolate_type: str = choice(choices=("linear", "cosine"))  # required: no default
    init_value: Scalar = real()
    boundaries_and_scales: dict[int, Scalar] | None = option(default=None, optional=True, accepts=_BOUNDARIES)

    def __check_init__(self) -> None:
        self._normalise_boundaries("boundaries_and_scales", FINITE_NON_NEGATIVE)

    def __call__(self, count: ArrayLike) -> jax.Array:
        dt = schedule_dtype(self)
        c = _f(count, dt)
        items = list((self.boundaries_and_scales or {}).items())
        knots = [0] + [b for b, _ in items]
        values = [_f(self.init_value, dt)]
        for _, scale in items:
            values.append(values[-1] * _f(scale, dt))
        v = jnp.broadcast_to(values[-1], jnp.shape(c))
        for j in range(len(knots) - 1, 0, -1):  # the first knot with count < b_j wins
            pct = (c - knots[j - 1]) / max(knots[j] - knots[j - 1], 1)
            if self.interpolate_type == "cosine":
                pct = (1 - jnp.cos(jnp.pi * pct)) / 2
            v = jnp.where(c < knots[j], values[j - 1] + (values[j] - values[j - 1]) * pct, v)
        return v


# --------------------------------------------------------------------------------------------------
# Warm-up schedules.
# --------------------------------------------------------------------------------------------------


@pytree_class
class warmup_constant_schedule(Schedule):
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then ``peak_value``::

        value = init_value + (peak_value - init_value) * count / warmup_steps   if count < warmup_steps
        value = peak_value                                                      otherwise

    The gradual warm-up of Goyal et al. 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour"
    (arXiv 1706.02677). Optax's ``warmup_constant_schedule``.

    Args:
      init_value: the value at count 0, a finite number. Required.
      peak_value: the value from ``warmup_steps`` on, a finite number. Required.
      warmup_steps: the length of the warm-up in steps, >= 0 (0: no warm-up). Required.

    Raises:
      ValueError: at construction, for an argument out of its range, e.g.
        ``warmup_constant_schedule(warmup_steps=-1): warmup_steps must be >= 0``.
      TypeError: for an argument that is not a real number (also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> s = gradtx.schedules.warmup_constant_schedule(init_value=0.0, peak_value=1.0, warmup_steps=10)
      >>> print([float(s(t)) for t in (0, 5, 10, 20)])
      [0.0, 0.5, 1.0, 1.0]
    """

    init_value: Scalar = real()
    peak_value: Scalar = real()
    warmup_steps: Scalar = non_negative()

    def __call__(self, count: ArrayLike) -> jax.Array:
        dt = schedule_dtype(self)
        c = _f(count, dt)
        peak = _f(self.peak_value, dt)
        return _linear_warmup(c, _f(self.init_value, dt), peak, _f(self.warmup_steps, dt),
                              jnp.broadcast_to(peak, jnp.shape(c)))


@pytree_class
class warmup_cosine_decay_schedule(Schedule):
    """Linear warm-up to ``peak_value``, then half-cosine decay to ``end_value`` at ``decay_steps``::

        count < warmup_steps:  init_value + (peak_value - init_value) * count / warmup_steps
        otherwise:             c = min(count - warmup_steps, decay_steps - warmup_steps)
                               end_value + (peak_value - end_value)
                                   * (0.5 * (1 + cos(pi * c / (decay_steps - warmup_steps)))) ** exponent

    ``decay_steps`` includes the warm-up. Warm-up: Goyal et al. 2017; cosine: Loshchilov & Hutter 2017
    (SGDR, arXiv 1608.03983). Optax's ``warmup_cosine_decay_schedule``, the usual schedule of Transformer
    pre-training.

    Args:
      init_value: the value at count 0, a finite number. Required.
      peak_value: the value at the end of the warm-up, a finite number. Required.
      warmup_steps: the length of the warm-up in steps, >= 0. Required.
      decay_steps: the step the decay ends at, warm-up included, > ``warmup_steps``. Required.
      end_value: the value from ``decay_steps`` on, a finite number. Default 0.0.
      exponent: the power of the half cosine, a finite number. Default 1.0.

    Raises:
      ValueError: at construction, for an argument out of its range, e.g.
        ``warmup_cosine_decay_schedule(decay_steps=10): decay_steps must be > warmup_steps (10)``.
      TypeError: for an argument that is not a real number (also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> s = gradtx.schedules.warmup_cosine_decay_schedule(0.0, peak_value=1.0, warmup_steps=10, decay_steps=30)
      >>> print([float(s(t)) for t in (0, 5, 10, 20, 30)])
      [0.0, 0.5, 1.0, 0.5, 0.0]
    """

    init_value: Scalar = real()
    peak_value: Scalar = real()
    warmup_steps: Scalar = non_negative()
    decay_steps: Scalar = positive()  # and > warmup_steps (__check_init__)
    end_value: Scalar = real(default=0.0)
    exponent: Scalar = real(default=1.0)

    def __check_init__(self) -> None:
        w, d = concrete_number(self.warmup_steps), concrete_number(self.decay_steps)
        if w is not None and d is not None and not d > w:
            warmup = format_value(self.warmup_steps)
            self._fail("decay_steps", self.decay_steps, f"must be > warmup_steps ({warmup})")

    def __call__(self, count: ArrayLike) -> jax.Array:
        dt = schedule_dtype(self)
        c = _f(count, dt)
        peak, end = _f(self.peak_value, dt), _f(self.end_value, dt)
        warmup = _f(self.warmup_steps, dt)
        span = _f(self.decay_steps, dt) - warmup
        t = jnp.clip(c - warmup, 0, span)
        decayed = end + (peak - end) * _safe_pow(_half_cosine(_safe_div(t, span)), _f(self.exponent, dt))
        return _linear_warmup(c, _f(self.init_value, dt), peak, warmup, decayed)


@pytree_class
class warmup_exponential_decay_schedule(_ExponentialDecay):
    """Linear warm-up to ``peak_value``, then ``exponential_decay`` started from ``peak_value``::

        count < warmup_steps:  init_value + (peak_value - init_value) * count / warmup_steps
        otherwise:             exponential_decay(peak_value, transition_steps, decay_rate,
                                                 transition_begin, staircase, end_value)(count - warmup_steps)

    Optax's ``warmup_exponential_decay_schedule``.

    Args:
      init_value: the value at count 0, a finite number. Required.
      peak_value: the value at the end of the warm-up, where the decay starts, a finite number. Required.
      warmup_steps: the length of the warm-up in steps, >= 0. Required.
      transition_steps: the number of steps over which the value is multiplied by ``decay_rate``, > 0.
        Required.
      decay_rate: the factor per ``transition_steps``, finite and nonzero. Required.
      transition_begin: the steps after the warm-up before the decay starts, >= 0. Default 0.
      staircase: decay in whole steps of ``transition_steps``. Default False.
      end_value: a bound the value does not pass (a floor when decaying, a ceiling when growing), a finite
        number, or None for no bound. Default None.

    Raises:
      ValueError: at construction, for an argument out of its range, e.g.
        ``warmup_exponential_decay_schedule(decay_rate=0.0): decay_rate must be nonzero and finite``.
      TypeError: for an argument of the wrong kind (also a ``ValueError``).

    Examples:
      >>> import gradtx
      >>> s = gradtx.schedules.warmup_exponential_decay_schedule(
      ...     init_value=0.0, peak_value=1.0, warmup_steps=10, transition_steps=10, decay_rate=0.5)
      >>> print([float(s(t)) for t in (0, 5, 10, 20, 30)])
      [0.0, 0.5, 1.0, 0.5, 0.25]
    """

    init_value: Scalar = real()
    peak_value: Scalar = real()
    warmup_steps: Scalar = non_negative()
    transition_steps: Scalar = positive()
    decay_rate: Scalar = real()  # and nonzero (__check_init__)
    transition_begin: Scalar = non_negative(default=0)
    staircase: bool = flag(default=False)
    end_value: Scalar | None = real(default=None, optional=True)

    def __call__(self, count: ArrayLike) -> jax.Array:
        dt = schedule_dtype(self)
        c = _f(count, dt)
        peak = _f(self.peak_value, dt)
        warmup = _f(self.warmup_steps, dt)
        return _linear_warmup(c, _f(self.init_value, dt), peak, warmup, self._decayed(c - warmup, peak, dt))
