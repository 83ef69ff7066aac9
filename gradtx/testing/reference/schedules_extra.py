"""Float64 references for the one-cycle and warm-restart schedules (plain Python ``math``, no JAX, no gradtx).

Each function takes the arguments of its gradtx namesake and returns a callable ``count -> float`` of the
0-based step count, written phase by phase from the papers: the one-cycle policy of Smith & Topin 2017
("Super-Convergence", arXiv 1708.07120) with Optax's knots, and SGDR (Loshchilov & Hutter 2017, arXiv
1608.03983) as cosine cycles with a linear warm-up each.
"""

import math

__all__ = ["linear_onecycle_schedule", "cosine_onecycle_schedule", "sgdr_schedule"]


def _interpolate(knots, values, count, kind):
    """Piecewise interpolation through ``(knots[j], values[j])`` (knots[0] = 0, non-decreasing):
    on [b_{j-1}, b_j) with pct = (count - b_{j-1}) / max(b_j - b_{j-1}, 1), linear: pct, cosine:
    (1 - cos(pi pct)) / 2; values[-1] from the last knot on."""
    for j in range(1, len(knots)):
        if knots[j - 1] <= count < knots[j]:
            pct = (count - knots[j - 1]) / max(knots[j] - knots[j - 1], 1)
            w = pct if kind == "linear" else (1.0 - math.cos(math.pi * pct)) / 2.0
            return values[j - 1] + (values[j] - values[j - 1]) * w
    return values[-1]


def _knots(init_value, boundary_scales):
    """Knots and values from ``[(boundary, scale), ...]``: a boundary given twice keeps its later scale (Optax
    passes a dict); the value at each knot is init_value times the scales of this and the earlier knots."""
    merged = {}
    for b, s in boundary_scales:
        merged[b] = s
    knots, values = [0], [float(init_value)]
    for b in sorted(merged):
        knots.append(b)
        values.append(values[-1] * merged[b])
    return knots, values


def linear_onecycle_schedule(
    transition_steps, peak_value, pct_start=0.3, pct_final=0.85, div_factor=25.0, final_div_factor=1e4
):
    """Float64 reference of :class:`gradtx.linear_onecycle_schedule`: the linear one-cycle policy.

    Smith & Topin 2017, "Super-Convergence: Very Fast Training of Neural Networks Using Large Learning Rates"
    (arXiv 1708.07120), with Optax's knots; three linear phases with T = transition_steps::

        [0, int(pct_start T)):               peak / div  ->  peak
        [int(pct_start T), int(pct_final T)): peak  ->  peak / div
        [int(pct_final T), T):               peak / div  ->  peak / (div final_div);   then held

    Args:
      transition_steps: T, the length of the cycle, > 0.
      peak_value: the largest value.
      pct_start: the fraction of T spent rising, in [0, 1]. Default 0.3.
      pct_final: the fraction of T at which the last phase starts, in [pct_start, 1]. Default 0.85.
      div_factor: div, peak / initial value, > 0. Default 25.0.
      final_div_factor: final_div, initial / final value, > 0. Default 1e4.

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.linear_onecycle_schedule(10, 1.0, pct_start=0.2, pct_final=0.6, div_factor=10, final_div_factor=10)
      >>> print(np.round([s(c) for c in range(11)], 4))
      [0.1    0.55   1.     0.775  0.55   0.325  0.1    0.0775 0.055  0.0325
       0.01  ]
    """
    T = transition_steps
    knots, values = _knots(
        peak_value / div_factor,
        [(int(pct_start * T), div_factor), (int(pct_final * T), 1.0 / div_factor), (T, 1.0 / final_div_factor)],
    )
    return lambda count: float(_interpolate(knots, values, count, "linear"))


def cosine_onecycle_schedule(transition_steps, peak_value, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
    """Float64 reference of :class:`gradtx.cosine_onecycle_schedule`: the cosine one-cycle policy.

    Smith & Topin 2017, "Super-Convergence: Very Fast Training of Neural Networks Using Large Learning Rates"
    (arXiv 1708.07120), with Optax's knots; two half-cosine phases with T = transition_steps (on [a, b),
    pct = (count - a) / (b - a) and the value moves by (1 - cos(pi pct)) / 2 of the way)::

        [0, int(pct_start T)):   peak / div  ->  peak
        [int(pct_start T), T):   peak  ->  peak / (div final_div);   then held

    Args:
      transition_steps: T, the length of the cycle, > 0.
      peak_value: the largest value.
      pct_start: the fraction of T spent rising, in [0, 1]. Default 0.3.
      div_factor: div, peak / initial value, > 0. Default 25.0.
      final_div_factor: final_div, initial / final value, > 0. Default 1e4.

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> s = ref.cosine_onecycle_schedule(10, 1.0, pct_start=0.2, div_factor=10, final_div_factor=10)
      >>> print(np.round([s(c) for c in range(11)], 4))
      [0.1    0.55   1.     0.9623 0.855  0.6944 0.505  0.3156 0.155  0.0477
       0.01  ]
    """
    T = transition_steps
    knots, values = _knots(
        peak_value / div_factor, [(int(pct_start * T), div_factor), (int(T), 1.0 / (div_factor * final_div_factor))]
    )
    return lambda count: float(_interpolate(knots, values, count, "cosine"))


def _warmup_cosine(init_value, peak_value, warmup_steps, decay_steps, end_value=0.0, exponent=1.0):
    """One SGDR cycle: linear warm-up init -> peak over warmup_steps, then
    end + (peak - end) (0.5 (1 + cos(pi t / (decay_steps - warmup_steps))))**exponent, t capped at the span."""

    def value(t):
        if t < warmup_steps:
            return init_value + (peak_value - init_value) * t / warmup_steps
        span = decay_steps - warmup_steps
        frac = min(t - warmup_steps, span) / span
        return end_value + (peak_value - end_value) * (0.5 * (1.0 + math.cos(math.pi * frac))) ** exponent

    return value


def sgdr_schedule(cosine_kwargs):
    """Float64 reference of :class:`gradtx.sgdr_schedule`: cosine cycles with warm restarts.

    Loshchilov & Hutter 2017, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR, each cycle a
    linear warm-up and a cosine decay (:func:`warmup_cosine_decay_schedule`'s formula). Cycle i runs on
    [B_i, B_i + decay_steps_i), B_i the sum of the earlier ``decay_steps``, evaluated at count - B_i; the last
    cycle continues after its end.

    Args:
      cosine_kwargs: a non-empty sequence of dicts, one per cycle, with the keys ``init_value``, ``peak_value``,
        ``warmup_steps``, ``decay_steps`` and optionally ``end_value`` (default 0.0) and ``exponent``
        (default 1.0).

    Returns:
      A callable ``count -> float`` of the 0-based step count (an int), computed with ``math``.

    Raises:
      AssertionError: ``unreachable``, from the schedule when ``cosine_kwargs`` is empty.
      KeyError: when a dict lacks ``decay_steps``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> cycle = dict(init_value=0.0, peak_value=1.0, warmup_steps=1, decay_steps=3)
      >>> s = ref.sgdr_schedule([cycle, cycle])
      >>> print(np.round([s(c) for c in range(7)], 4))
      [0.  1.  0.5 0.  1.  0.5 0. ]
    """
    cycles = [(_warmup_cosine(**kw), kw["decay_steps"]) for kw in cosine_kwargs]

    def schedule(count):
        start = 0
        for i, (cycle, length) in enumerate(cycles):
            if count < start + length or i == len(cycles) - 1:
                return float(cycle(count - start))
            start += length
        raise AssertionError("unreachable")

    return schedule
