"""Float64 references of the schedules: plain functions returning a Python callable ``count -> float``.

Part of :mod:`gradtx.testing.reference` (reach them as ``reference.cosine_decay_schedule`` ...). A schedule is
evaluated at the 0-based ``count`` of previous updates and computed with ``math`` only.
"""

import math


def constant_schedule(value):
    """value at every count."""
    return lambda count: float(value)


def polynomial_schedule(init_value, end_value, power, transition_steps, transition_begin=0):
    """c = clip(count - transition_begin, 0, T); (init - end) * (1 - c / T)**power + end."""

    def schedule(count):
        c = min(max(count - transition_begin, 0), transition_steps)
        return float((init_value - end_value) * (1.0 - c / transition_steps) ** power + end_value)

    return schedule


def linear_schedule(init_value, end_value, transition_steps, transition_begin=0):
    """polynomial_schedule with power 1."""
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def exponential_decay(
    init_value, transition_steps, decay_rate, transition_begin=0, staircase=False, end_value=None
):
    """c = count - begin; p = c / T (floored if staircase); init if c <= 0 else init * rate**p;
    clipped from below (rate < 1) or above (rate >= 1) by end_value."""

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
    """c = min(count, D); init * ((1 - alpha) * (0.5 (1 + cos(pi c / D)))**exponent + alpha)
    (Loshchilov & Hutter 2017, SGDR)."""

    def schedule(count):
        c = min(count, decay_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * c / decay_steps))
        return float(init_value * ((1.0 - alpha) * cosine**exponent + alpha))

    return schedule


def piecewise_constant_schedule(init_value, boundaries_and_scales=None):
    """init * product of the scales s of every boundary b with count >= b."""
    items = sorted((boundaries_and_scales or {}).items())

    def schedule(count):
        v = float(init_value)
        for b, s in items:
            if count >= b:
                v *= s
        return v

    return schedule


def piecewise_interpolate_schedule(interpolate_type, init_value, boundaries_and_scales=None):
    """Knots b_0 = 0 < b_1 < ... < b_n with values v_0 = init, v_j = v_{j-1} s_j, interpolated
    linearly or with a half cosine on [b_{j-1}, b_j) (pct = (count - b_{j-1}) / max(b_j - b_{j-1}, 1));
    v_n for count >= b_n."""
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
    """Linear init -> peak over warmup_steps (count < warmup_steps), then peak."""

    def schedule(count):
        if count < warmup_steps:
            return float(init_value + (peak_value - init_value) * count / warmup_steps)
        return float(peak_value)

    return schedule


def warmup_cosine_decay_schedule(
    init_value, peak_value, warmup_steps, decay_steps, end_value=0.0, exponent=1.0
):
    """count < W: init + (peak - init) count / W; else c = min(count - W, D - W):
    end + (peak - end) (0.5 (1 + cos(pi c / (D - W))))**exponent."""

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
    """count < W: linear warm-up; else exponential_decay(peak, ...)(count - W)."""
    decay = exponential_decay(
        peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
    )

    def schedule(count):
        if count < warmup_steps:
            return float(init_value + (peak_value - init_value) * count / warmup_steps)
        return decay(count - warmup_steps)

    return schedule


def join_schedules(schedules, boundaries):
    """v = schedules[0](count); then, for each boundary b (in order) with count >= b, v = next(count - b)."""

    def schedule(count):
        v = schedules[0](count)
        for b, s in zip(boundaries, schedules[1:]):
            if count >= b:
                v = s(count - b)
        return float(v)

    return schedule


def transformer_warmup_schedule(d_model, warmup_steps):
    """Vaswani et al. 2017, "Attention Is All You Need", eq. 3, with step s = count + 1:
    d_model**-0.5 * min(s**-0.5, s * warmup_steps**-1.5)."""

    def schedule(count):
        s = count + 1
        return float(d_model**-0.5 * min(s**-0.5, s * warmup_steps**-1.5))

    return schedule


def warmup_stable_decay_schedule(
    peak_value, warmup_steps, stable_steps, decay_steps, init_value=0.0, end_value=0.0, decay_type="linear"
):
    """Warmup-Stable-Decay (Hu et al. 2024, MiniCPM, arXiv 2404.06395; '1-sqrt' cooldown from Hägele et al.
    2024, arXiv 2405.18392): linear warm-up over W, peak for S steps, then with
    f = min((count - W - S) / D, 1): 'linear' peak + (end - peak) f;
    'cosine' end + (peak - end) 0.5 (1 + cos(pi f));
    '1-sqrt' end + (peak - end) (1 - sqrt(f))."""
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
