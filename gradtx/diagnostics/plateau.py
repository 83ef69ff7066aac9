"""Why did the loss stop falling? A diagnosis from the loss and gradient-norm histories.

The lecture behind gradtx: "training stuck" is not "small gradient". When the loss stops decreasing, people
assume the parameters reached a critical point (a local minimum or a saddle point, where the gradient
vanishes); often the gradient norm is still large and the parameters bounce between the walls of a narrow
valley (gradient descent with a learning rate too large for the steep direction). Only the gradient norm
tells the two apart, and :func:`diagnose_plateau` reads it. Its verdicts (:data:`PLATEAU_VERDICTS`)::

    still descending                 the loss fell by more than ``loss_rtol`` (relative) over the window
    at a critical point (converged)  the loss is flat, the gradient norm vanished (relative to its largest
                                     value) and the loss is at its floor (``loss_floor``, 0 by default):
                                     training reached a minimum
    at a critical point (stalled)    the loss is flat and the gradient norm vanished, but the loss is still
                                     above its floor: a saddle point, a plateau or a poor local minimum --
                                     :func:`gradtx.diagnostics.classify_critical_point` tells which from
                                     the Hessian
    oscillating                      the loss is flat but the gradient norm is still large: not a critical
                                     point; bouncing between the walls of a valley (or chattering around a
                                     minimum with too large a step): lower the learning rate, or use a
                                     per-parameter (adaptive) one
    diverging                        a non-finite loss or gradient norm in the window

The verdicts are the strings :data:`STILL_DESCENDING`, :data:`CONVERGED`, :data:`STUCK_AT_CRITICAL_POINT`,
:data:`OSCILLATING` and :data:`DIVERGING`; :data:`CRITICAL_POINT_VERDICTS` holds the two critical-point ones.

This runs on the host (NumPy, float64) on histories already recorded (lists, NumPy or JAX arrays, e.g. the
ring buffers of ``gradtx.diagnostics.monitored`` or the arrays returned by a ``lax.scan``); it is not for use
inside ``jit``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "CONVERGED",
    "CRITICAL_POINT_VERDICTS",
    "DIVERGING",
    "OSCILLATING",
    "PLATEAU_VERDICTS",
    "STILL_DESCENDING",
    "STUCK_AT_CRITICAL_POINT",
    "PlateauDiagnosis",
    "diagnose_plateau",
]

STILL_DESCENDING = "still descending"
CONVERGED = "at a critical point (converged)"
STUCK_AT_CRITICAL_POINT = "at a critical point (stalled)"
OSCILLATING = "oscillating"
DIVERGING = "diverging"
CRITICAL_POINT_VERDICTS = (CONVERGED, STUCK_AT_CRITICAL_POINT)
PLATEAU_VERDICTS = (STILL_DESCENDING, CONVERGED, STUCK_AT_CRITICAL_POINT, OSCILLATING, DIVERGING)

_DEFAULT_WINDOW = 100


class PlateauDiagnosis(NamedTuple):
    """What :func:`diagnose_plateau` found, as Python values: the verdict and the numbers behind it.

    Attributes:
      verdict: one of :data:`PLATEAU_VERDICTS`.
      relative_loss_decrease: ``(A - B) / max_t |L_t|`` with ``A``, ``B`` the means of the window's first and
        second halves (positive when the loss falls; NaN when the window holds a non-finite loss). The loss
        is flat when it is ``<= loss_rtol``.
      grad_norm_ratio: ``mean of the window's gradient norms / max_t ||g_t||`` (0 when every norm is 0; NaN
        when the window holds a non-finite norm). The gradient vanished when it is ``<= grad_rtol``.
      window: the number of final entries the verdict looked at.
      step_alignment: with ``params``, the mean cosine between consecutive steps ``w_{t+1} - w_t`` in the
        window (about -1: bouncing back and forth; about +1: moving steadily one way); NaN without
        ``params``.
      remaining_loss: ``(mean of the window's losses - loss_floor) / (max_t L_t - loss_floor)``, the share of
        the largest excess over the floor that is left (0 when no loss exceeds the floor; NaN when the window
        holds a non-finite loss). At a critical point, ``<= loss_rtol`` is "converged", more is "stalled".

    Examples:
      >>> from gradtx.diagnostics.plateau import PlateauDiagnosis
      >>> d = PlateauDiagnosis("oscillating", 0.0, 1.0, 4)
      >>> d.verdict, d.window, d.step_alignment
      ('oscillating', 4, nan)
    """

    verdict: str
    relative_loss_decrease: float
    grad_norm_ratio: float
    window: int
    step_alignment: float = math.nan
    remaining_loss: float = math.nan


def _history(call: str, name: str, values: Any) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{call}: {name} must be a sequence of real numbers ({err})") from None
    if arr.ndim != 1:
        raise ValueError(f"{call}({name} of shape {arr.shape}): {name} must be one-dimensional (one value a step)")
    return arr


def _finite_max_abs(x: np.ndarray) -> float:
    finite = np.abs(x[np.isfinite(x)])
    return float(finite.max()) if finite.size else 0.0


def _is_real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def diagnose_plateau(
    losses: Any,
    grad_norms: Any,
    window: int | None = None,
    *,
    loss_rtol: float = 1e-3,
    grad_rtol: float = 1e-3,
    params: Any = None,
    loss_floor: float = 0.0,
) -> PlateauDiagnosis:
    """Tell "still descending", "at a critical point (converged / stalled)" or "oscillating" from histories.

    ``losses[t]`` and ``grad_norms[t]`` are the loss and the gradient norm at step ``t`` (same length ``T``);
    only the last ``window`` entries are judged, against scales taken from the whole history. With ``W``
    the window, ``A`` and ``B`` the means of its first and second ``W // 2`` entries (the middle entry of an
    odd window is in neither; halves make the measure blind to period-2 bouncing), ``M`` the mean of its
    losses, and maxima over every finite entry of the history::

        relative_loss_decrease = (A - B) / max_t |L_t|                flat:      <= loss_rtol
        grad_norm_ratio        = mean(window's ||g||) / max_t ||g_t||  vanished:  <= grad_rtol
        remaining_loss         = (M - loss_floor) / (max_t L_t - loss_floor)   at the floor: <= loss_rtol

    and the verdict is the first that applies:

    - a non-finite loss or gradient norm in the window: "diverging";
    - not flat: "still descending";
    - flat, vanished and at the floor: "at a critical point (converged)";
    - flat and vanished, above the floor: "at a critical point (stalled)";
    - flat and not vanished: "oscillating" -- not a critical point (the lecture's point: the loss stopped
      falling while the gradient stayed large).

    A rising loss counts as not descending (flat). The loss scale is the history's largest ``|L|`` (usually
    the first loss), so a loss that converged to 0 and jitters at rounding level is flat; the gradient scale
    is its largest norm, robust to a start near a saddle where the first gradient is tiny.

    Choose ``window`` as the horizon over which you expect visible progress: "flat" means "fell by less than
    ``loss_rtol`` of the loss scale within ``window`` steps". A slow but real descent is called flat by a
    short window (on the lecture's narrow valley, gradient descent with lr 1e-2 still creeps along the
    floor, about 2% of the loss in 6,000 steps, while bouncing between the walls; over 100 steps that is
    "oscillating", as the lecture says).

    A flat loss with a large gradient is also what a far too *small* learning rate looks like over a short
    window (gradient descent with lr 1e-7 on the valley, late in its 100,000 steps, loses less than 0.1% of
    the loss scale per 100 steps). Pass the iterates as ``params`` to tell the two apart: when consecutive
    steps keep their direction (mean cosine ``step_alignment >= 0``) the run is crawling, and the verdict is
    "still descending"; bouncing between walls reverses the step every time (cosine near -1) and stays
    "oscillating".

    Args:
      losses: one-dimensional history of the loss, ``T >= 2`` entries (a list, NumPy or JAX array).
      grad_norms: one-dimensional history of the gradient norm, as long as ``losses`` (each ``>= 0`` or
        non-finite).
      window: how many final entries to judge, an integer with ``2 <= window <= T``; default
        ``min(100, T)``.
      loss_rtol: the flatness threshold for ``relative_loss_decrease`` and the floor threshold for
        ``remaining_loss``, in ``(0, inf)``; default ``1e-3``.
      grad_rtol: the vanishing threshold for ``grad_norm_ratio``, in ``(0, inf)``; default ``1e-3``.
      params: optional iterates, ``T`` entries of any shape (a ``(T, n)`` array or a sequence; a pytree per
        step should be raveled first), used only to tell oscillating from crawling (see above); default
        None.
      loss_floor: the lowest value the loss can take, a finite real number; default 0 (squared errors and
        cross-entropy on separable data). Only tells "converged" from "stalled".

    Returns:
      A :class:`PlateauDiagnosis` whose ``verdict`` is one of :data:`PLATEAU_VERDICTS`.

    Raises:
      TypeError: ``losses`` or ``grad_norms`` holds something that is not a real number.
      ValueError: a history that is not one-dimensional or has fewer than 2 entries; histories of different
        lengths; ``window`` not an integer in ``[2, T]``; ``loss_rtol`` or ``grad_rtol`` not in ``(0, inf)``;
        ``loss_floor`` not a finite real number; a negative gradient norm; ``params`` without one iterate
        per loss entry.

    Examples:
      Gradient descent bouncing between two walls: the loss is flat, the gradient stays large.

      >>> import numpy as np
      >>> from gradtx.diagnostics import diagnose_plateau
      >>> bounce = diagnose_plateau(np.full(50, 8.0), np.full(50, 4.0), window=20)
      >>> bounce.verdict, bounce.grad_norm_ratio
      ('oscillating', 1.0)

      A loss that fell to 0 and stays there, its gradient gone: converged. The same flat loss stuck at 2:
      stalled (a saddle point or a plateau).

      >>> t = np.arange(60.0)
      >>> diagnose_plateau(np.maximum(10.0 - t, 0.0), np.where(t < 10, 5.0, 0.0), window=20).verdict
      'at a critical point (converged)'
      >>> diagnose_plateau(np.maximum(10.0 - t, 2.0), np.where(t < 8, 5.0, 0.0), window=20).verdict
      'at a critical point (stalled)'
    """
    call = "diagnose_plateau"
    losses_a = _history(call, "losses", losses)
    grads_a = _history(call, "grad_norms", grad_norms)
    if losses_a.shape != grads_a.shape:
        raise ValueError(
            f"{call}(losses of length {losses_a.shape[0]}, grad_norms of length {grads_a.shape[0]}): "
            "losses and grad_norms must have the same length"
        )
    t = losses_a.shape[0]
    if t < 2:
        raise ValueError(f"{call}(losses of length {t}): the histories must have at least 2 entries")
    for name, value in (("loss_rtol", loss_rtol), ("grad_rtol", grad_rtol)):
        if not _is_real(value) or not (0.0 < float(value) < math.inf):
            raise ValueError(f"{call}({name}={value!r}): {name} must be in (0, inf)")
    if not _is_real(loss_floor) or not math.isfinite(float(loss_floor)):
        raise ValueError(f"{call}(loss_floor={loss_floor!r}): loss_floor must be a finite real number")
    if window is None:
        w = min(_DEFAULT_WINDOW, t)
    else:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
            raise ValueError(f"{call}(window={window!r}): window must be an integer >= 2")
        if window > t:
            raise ValueError(f"{call}(window={window!r}): window must be at most the histories' length, {t}")
        w = int(window)
    if np.any(grads_a < 0):
        first = int(np.nonzero(grads_a < 0)[0][0])
        raise ValueError(f"{call}(grad_norms[{first}]={float(grads_a[first])!r}): grad_norms must be >= 0")

    tail_l, tail_g = losses_a[-w:], grads_a[-w:]
    half = w // 2
    loss_scale = _finite_max_abs(losses_a)
    grad_scale = _finite_max_abs(grads_a)
    finite_l = losses_a[np.isfinite(losses_a)]
    excess_scale = float(finite_l.max()) - float(loss_floor) if finite_l.size else 0.0
    with np.errstate(all="ignore"):  # inf - inf in a diverged window is NaN, by design
        first_mean, second_mean = float(np.mean(tail_l[:half])), float(np.mean(tail_l[w - half :]))
        decrease = first_mean - second_mean
        if loss_scale > 0:
            decrease /= loss_scale
        ratio = float(np.mean(tail_g))
        if grad_scale > 0:  # else every finite norm is 0: the ratio is 0 (or NaN with non-finite norms)
            ratio /= grad_scale
        remaining = float(np.mean(tail_l)) - float(loss_floor)
        if excess_scale > 0:
            remaining /= excess_scale
        elif np.isfinite(remaining):  # no loss above the floor: nothing is left
            remaining = 0.0

    if not np.all(np.isfinite(tail_l)):
        decrease = remaining = math.nan
    if not np.all(np.isfinite(tail_g)):
        ratio = math.nan
    if not (np.all(np.isfinite(tail_l)) and np.all(np.isfinite(tail_g))):
        verdict = DIVERGING
    elif decrease > loss_rtol:
        verdict = STILL_DESCENDING
    elif ratio <= grad_rtol:
        verdict = CONVERGED if remaining <= loss_rtol else STUCK_AT_CRITICAL_POINT
    else:
        verdict = OSCILLATING
    alignment = math.nan
    if params is not None:
        try:
            iterates = np.asarray(params, dtype=np.float64).reshape(t, -1)
        except (TypeError, ValueError):
            raise ValueError(
                f"{call}(params of shape {np.shape(params)}): params must hold one iterate per loss entry ({t})"
            ) from None
        steps = np.diff(iterates[-w:], axis=0)
        norms = np.linalg.norm(steps, axis=1)
        both = (norms[1:] > 0) & (norms[:-1] > 0)
        if np.any(both):
            cos = np.sum(steps[1:] * steps[:-1], axis=1)[both] / (norms[1:] * norms[:-1])[both]
            alignment = float(np.mean(cos))
        if verdict == OSCILLATING and alignment >= 0:
            verdict = STILL_DESCENDING
    return PlateauDiagnosis(verdict, float(decrease), float(ratio), w, alignment, float(remaining))
