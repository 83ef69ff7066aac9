"""Float64 references of the schedules: plain functions returning a Python callable ``count -> float``.

Part of :mod:`gradtx.testing.reference` (reach them as ``reference.cosine_decay_schedule`` ...). A schedule is
evaluated at the 0-based ``count`` of previous updates and computed with ``math`` only.
"""

import math

__all__ = [
    "constant_schedule", "polynomial_schedule", "linear_schedule", "exponential_decay", "cosine_decay_schedule",
    "piecewise_constant_schedule", "piecewise_interpolate_schedule", "warmup_constant_schedule",
    "warmup_cosine_decay_schedule", "warmup_exponential_decay_schedule", "join_schedules",
    "transformer_warmup_schedule", "warmup_stable_decay_schedule",
]


def constant_schedule(value):
    """Float64 reference of :class:`gradtx.constant_schedule`: ``value`` at every count.

    Args:
      value: the value (a float).

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.constant_schedule(0.5)
      >>> print(np.round([s(c) for c in range(3)], 4))
      [0.5 0.5 0.5]
    """
    return lambda count: float(value)


def polynomial_schedule(init_value, end_value, power, transition_steps, transition_begin=0):
    """Float64 reference of :class:`gradtx.polynomial_schedule`: polynomial decay from init to end.

    With T = transition_steps::

        c = clip(count - transition_begin, 0, T);   value = (init_value - end_value) (1 - c / T)**power + end_value

    Args:
      init_value: the value up to ``transition_begin``.
      end_value: the value from ``transition_begin + transition_steps`` on.
      power: the exponent of the decay, > 0 (1: linear).
      transition_steps: T, the length of the decay, > 0.
      transition_begin: the count at which the decay starts, >= 0. Default 0.

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.polynomial_schedule(1.0, 0.0, power=2, transition_steps=4)
      >>> print(np.round([s(c) for c in range(6)], 4))
      [1.     0.5625 0.25   0.0625 0.     0.    ]
    """

    def schedule(count):
        c = min(max(count - transition_begin, 0), transition_steps)
        return float((init_value - end_value) * (1.0 - c / transition_steps) ** power + end_value)

    return schedule


def linear_schedule(init_value, end_value, transition_steps, transition_begin=0):
    """Float64 reference of :class:`gradtx.linear_schedule`: :func:`polynomial_schedule` with power 1.

    ::

        c = clip(count - transition_begin, 0, T);   value = init_value + (end_value - init_value) c / T

    Args:
      init_value: the value up to ``transition_begin``.
      end_value: the value from ``transition_begin + transition_steps`` on.
      transition_steps: T, the length of the ramp, > 0.
      transition_begin: the count at which the ramp starts, >= 0. Default 0.

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.linear_schedule(1.0, 0.0, transition_steps=4, transition_begin=1)
      >>> print(np.round([s(c) for c in range(7)], 4))
      [1.   1.   0.75 0.5  0.25 0.   0.  ]
    """
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def exponential_decay(
    init_value, transition_steps, decay_rate, transition_begin=0, staircase=False, end_value=None
):
    """Float64 reference of :class:`gradtx.exponential_decay`: init_value decay_rate**(c / T).

    ::

        c = count - transition_begin;   p = c / transition_steps   (floored if staircase)
        value = init_value if c <= 0 else init_value decay_rate**p
        then clipped from below (decay_rate < 1) or above (decay_rate >= 1) by end_value when it is given

    Args:
      init_value: the value up to ``transition_begin``.
      transition_steps: the number of steps per factor of ``decay_rate``, > 0.
      decay_rate: the factor per ``transition_steps``, > 0 (> 1 grows).
      transition_begin: the count at which the decay starts, >= 0. Default 0.
      staircase: whether the exponent is floored (piecewise constant). Default False.
      end_value: None, or the bound the value does not pass. Default None.

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.exponential_decay(1.0, transition_steps=2, decay_rate=0.5, end_value=0.3)
      >>> print(np.round([s(c) for c in range(6)], 4))
      [1.     0.7071 0.5    0.3536 0.3    0.3   ]
    """

    def schedule(count):
        c = count - transition_begin
        p = c / transition_steps
        if staircase:
            p = math.floor(p)
        v = float(init_value) if c <= 0 else init_value * math.pow(decay_rate, p)
        if end_value is not None:
            v = max(v, end_value) if decay_rate < 1 else min(v, end_value)
        return float(v)

    return schedule


def cosine_decay_schedule(init_value, decay_steps, alpha=0.0, exponent=1.0):
    """Float64 reference of :class:`gradtx.cosine_decay_schedule`: a half cosine from init to alpha init.

    Loshchilov & Hutter 2017, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR, one cycle::

        c = min(count, D);   value = init_value ((1 - alpha) (0.5 (1 + cos(pi c / D)))**exponent + alpha)

    Args:
      init_value: the value at count 0.
      decay_steps: D, the length of the decay, > 0.
      alpha: the final value as a fraction of ``init_value``. Default 0.0.
      exponent: the power of the cosine factor, > 0. Default 1.0.

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.cosine_decay_schedule(1.0, decay_steps=4, alpha=0.1)
      >>> print(np.round([s(c) for c in range(6)], 4))
      [1.     0.8682 0.55   0.2318 0.1    0.1   ]
    """

    def schedule(count):
        c = min(count, decay_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * c / decay_steps))
        return float(init_value * ((1.0 - alpha) * cosine**exponent + alpha))

    return schedule


def piecewise_constant_schedule(init_value, boundaries_and_scales=None):
    """Float64 reference of :class:`gradtx.piecewise_constant_schedule`: scaled at boundaries.

    value = init_value times the product of the scales s of every boundary b with count >= b.

    Args:
      init_value: the value before the first boundary.
      boundaries_and_scales: None or a mapping ``boundary (int) -> scale (float)``. Default None.

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.piecewise_constant_schedule(1.0, {2: 0.5, 4: 0.1})
      >>> print(np.round([s(c) for c in range(6)], 4))
      [1.   1.   0.5  0.5  0.05 0.05]
    """
    items = sorted((boundaries_and_scales or {}).items())

    def schedule(count):
        v = float(init_value)
        for b, s in items:
            if count >= b:
                v *= s
        return v

    return schedule


def piecewise_interpolate_schedule(interpolate_type, init_value, boundaries_and_scales=None):
    """Float64 reference of :class:`gradtx.piecewise_interpolate_schedule`: interpolated knots.

    Knots b_0 = 0 < b_1 < ... < b_n (the sorted boundaries) with values v_0 = init_value, v_j = v_{j-1} s_j::

        on [b_{j-1}, b_j):  pct = (count - b_{j-1}) / max(b_j - b_{j-1}, 1)
                            value = v_{j-1} + (v_j - v_{j-1}) w
                            w = pct ('linear') or (1 - cos(pi pct)) / 2 ('cosine')
        count >= b_n:       value = v_n

    Args:
      interpolate_type: 'linear' or 'cosine'.
      init_value: the value at count 0.
      boundaries_and_scales: None or a mapping ``boundary (int) -> scale (float)``. Default None.

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Raises:
      ValueError: ``interpolate_type must be 'linear' or 'cosine'`` for another type.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.piecewise_interpolate_schedule("linear", 1.0, {2: 0.5, 4: 0.1})
      >>> print(np.round([s(c) for c in range(6)], 4))
      [1.    0.75  0.5   0.275 0.05  0.05 ]
    """
    if interpolate_type not in ("linear", "cosine"):
        raise ValueError("interpolate_type must be 'linear' or 'cosine'")
    items = sorted((boundaries_and_scales or {}).items())
    knots, values = [0], [float(init_value)]
    for b, s in items:
        knots.append(b)
        values.append(values[-1] * s)

    def schedule(count):
        for j in range(1, len(knots)):
            if count < knots[j]:
                pct = (count - knots[j - 1]) / max(knots[j] - knots[j - 1], 1)
                w = pct if interpolate_type == "linear" else (1.0 - math.cos(math.pi * pct)) / 2.0
                return float(values[j - 1] + (values[j] - values[j - 1]) * w)
        return values[-1]

    return schedule


def warmup_constant_schedule(init_value, peak_value, warmup_steps):
    """Float64 reference of :class:`gradtx.warmup_constant_schedule`: linear warm-up, then constant.

    ::

        count < W:   value = init_value + (peak_value - init_value) count / W
        otherwise:   value = peak_value

    Args:
      init_value: the value at count 0.
      peak_value: the value from ``warmup_steps`` on.
      warmup_steps: W, the length of the warm-up, >= 0 (0: no warm-up).

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.warmup_constant_schedule(0.0, 1.0, warmup_steps=4)
      >>> print(np.round([s(c) for c in range(6)], 4))
      [0.   0.25 0.5  0.75 1.   1.  ]
    """

    def schedule(count):
        if count < warmup_steps:
            return float(init_value + (peak_value - init_value) * count / warmup_steps)
        return float(peak_value)

    return schedule


def warmup_cosine_decay_schedule(
    init_value, peak_value, warmup_steps, decay_steps, end_value=0.0, exponent=1.0
):
    """Float64 reference of :class:`gradtx.warmup_cosine_decay_schedule`: linear warm-up, cosine decay.

    With W = warmup_steps and D = decay_steps (counted from 0, warm-up included)::

        count < W:   value = init_value + (peak_value - init_value) count / W
        otherwise:   c = min(count - W, D - W);
                     value = end_value + (peak_value - end_value) (0.5 (1 + cos(pi c / (D - W))))**exponent

    Args:
      init_value: the value at count 0.
      peak_value: the value at the end of the warm-up.
      warmup_steps: W, >= 0 (0: no warm-up).
      decay_steps: D, the count at which the decay ends, > W.
      end_value: the final value. Default 0.0.
      exponent: the power of the cosine factor, > 0. Default 1.0.

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=2, decay_steps=6, end_value=0.1)
      >>> print(np.round([s(c) for c in range(8)], 4))
      [0.     0.5    1.     0.8682 0.55   0.2318 0.1    0.1   ]
    """

    def schedule(count):
        if count < warmup_steps:
            return float(init_value + (peak_value - init_value) * count / warmup_steps)
        span = decay_steps - warmup_steps
        c = min(count - warmup_steps, span)
        cosine = 0.5 * (1.0 + math.cos(math.pi * c / span))
        return float(end_value + (peak_value - end_value) * cosine**exponent)

    return schedule


def warmup_exponential_decay_schedule(
    init_value,
    peak_value,
    warmup_steps,
    transition_steps,
    decay_rate,
    transition_begin=0,
    staircase=False,
    end_value=None,
):
    """Float64 reference of :class:`gradtx.warmup_exponential_decay_schedule`: warm-up, then exponential.

    ::

        count < W:   value = init_value + (peak_value - init_value) count / W
        otherwise:   value = exponential_decay(peak_value, transition_steps, decay_rate, transition_begin,
                                               staircase, end_value)(count - W)

    Args:
      init_value: the value at count 0.
      peak_value: the value at the end of the warm-up.
      warmup_steps: W, >= 0 (0: no warm-up).
      transition_steps: the number of steps per factor of ``decay_rate``, > 0.
      decay_rate: the factor per ``transition_steps``, > 0.
      transition_begin: the delay after the warm-up before the decay starts, >= 0. Default 0.
      staircase: whether the exponent is floored. Default False.
      end_value: None, or the bound the value does not pass. Default None.

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.warmup_exponential_decay_schedule(0.0, 1.0, warmup_steps=2, transition_steps=1, decay_rate=0.5)
      >>> print(np.round([s(c) for c in range(6)], 4))
      [0.    0.5   1.    0.5   0.25  0.125]
    """
    decay = exponential_decay(
        peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
    )

    def schedule(count):
        if count < warmup_steps:
            return float(init_value + (peak_value - init_value) * count / warmup_steps)
        return decay(count - warmup_steps)

    return schedule


def join_schedules(schedules, boundaries):
    """Float64 reference of :class:`gradtx.join_schedules`: one schedule after another.

    value = schedules[0](count); then, for each boundary b (in order) with count >= b, value = the next
    schedule at count - b (each later schedule restarts from 0 at its boundary).

    Args:
      schedules: a sequence of callables ``count -> float``, one more than the boundaries.
      boundaries: a sequence of increasing counts (ints) where the next schedule takes over.

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.join_schedules([ref.constant_schedule(1.0), ref.linear_schedule(1.0, 0.0, 2)], [2])
      >>> print(np.round([s(c) for c in range(5)], 4))
      [1.  1.  1.  0.5 0. ]
    """

    def schedule(count):
        v = schedules[0](count)
        for b, s in zip(boundaries, schedules[1:]):
            if count >= b:
                v = s(count - b)
        return float(v)

    return schedule


def transformer_warmup_schedule(d_model, warmup_steps):
    """Float64 reference of :class:`gradtx.transformer_warmup_schedule`: the Transformer's rate.

    Vaswani et al. 2017, "Attention Is All You Need", NeurIPS, eq. 3, with the step s = count + 1::

        value = d_model**-0.5 min(s**-0.5, s warmup_steps**-1.5)

    It rises linearly up to s = warmup_steps (its peak, (d_model warmup_steps)**-0.5), then decays as s**-0.5.

    Args:
      d_model: the model width, > 0.
      warmup_steps: the step of the peak, > 0.

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.transformer_warmup_schedule(d_model=16, warmup_steps=4)
      >>> print(np.round([s(c) for c in range(6)], 4))
      [0.0312 0.0625 0.0938 0.125  0.1118 0.1021]
    """

    def schedule(count):
        s = count + 1
        return float(d_model**-0.5 * min(s**-0.5, s * warmup_steps**-1.5))

    return schedule


def warmup_stable_decay_schedule(
    peak_value, warmup_steps, stable_steps, decay_steps, init_value=0.0, end_value=0.0, decay_type="linear"
):
    """Float64 reference of :class:`gradtx.warmup_stable_decay_schedule`: warm-up, plateau, cool-down.

    Warmup-Stable-Decay (Hu et al. 2024, "MiniCPM: Unveiling the Potential of Small Language Models with
    Scalable Training Strategies", arXiv 2404.06395; the '1-sqrt' cool-down from Hägele et al. 2024, "Scaling
    Laws and Compute-Optimal Training Beyond Fixed Training Durations", arXiv 2405.18392). With W, S, D the
    warm-up, stable and decay lengths::

        count < W:       value = init_value + (peak_value - init_value) count / W
        count < W + S:   value = peak_value
        otherwise:       f = min((count - W - S) / D, 1);
                         'linear': peak + (end - peak) f;   'cosine': end + (peak - end) 0.5 (1 + cos(pi f));
                         '1-sqrt': end + (peak - end) (1 - sqrt(f))

    Args:
      peak_value: the plateau's value.
      warmup_steps: W, >= 0.
      stable_steps: S, >= 0.
      decay_steps: D, > 0.
      init_value: the value at count 0. Default 0.0.
      end_value: the final value. Default 0.0.
      decay_type: 'linear', 'cosine' or '1-sqrt'. Default 'linear'.

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Raises:
      ValueError: ``decay_type must be 'linear', 'cosine' or '1-sqrt'`` for another type.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.warmup_stable_decay_schedule(1.0, warmup_steps=2, stable_steps=2, decay_steps=4)
      >>> print(np.round([s(c) for c in range(10)], 4))
      [0.   0.5  1.   1.   1.   0.75 0.5  0.25 0.   0.  ]
    """
    if decay_type not in ("linear", "cosine", "1-sqrt"):
        raise ValueError("decay_type must be 'linear', 'cosine' or '1-sqrt'")

    def schedule(count):
        if count < warmup_steps:
            return float(init_value + (peak_value - init_value) * count / warmup_steps)
        if count < warmup_steps + stable_steps:
            return float(peak_value)
        f = min((count - warmup_steps - stable_steps) / decay_steps, 1.0)
        if decay_type == "linear":
            return float(peak_value + (end_value - peak_value) * f)
        if decay_type == "cosine":
            return float(end_value + (peak_value - end_value) * 0.5 * (1.0 + math.cos(math.pi * f)))
        return float(end_value + (peak_value - end_value) * (1.0 - math.sqrt(f)))

    return schedule
