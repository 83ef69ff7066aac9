"""See inside training: metrics written into the state, curvature and critical points, plateau diagnosis, a
spike guard.

The lecture's point, made executable: a stalled loss is often not a critical point (the gradient norm can
stay large while the parameters bounce between a valley's walls), and at a true critical point the Hessian's
eigenvalues tell a saddle from a minimum.

    monitored(tx)                   records gradient/update/parameter norms, update/param ratios, the effective
                                    per-parameter step |u_i|/|g_i| and clipping, with ring-buffered histories,
                                    in its own state, inside jit; metrics(state) reads them as a dict
    step_count, current_hyperparams  the number of updates and the hyperparameters actually used (schedules
                                    evaluated) without digging through nested states
    hvp, hessian_eigenvalues,       Hessian-vector products (forward-over-reverse), Lanczos with full
    hutchinson_trace                reorthogonalisation, Hutchinson's trace estimator; no Hessian materialised
    classify_critical_point         gradient norm + extreme eigenvalues -> not critical / minimum / maximum /
                                    saddle point / degenerate
    diagnose_plateau                loss and gradient-norm histories -> still descending / at a critical point
                                    (converged or stalled) / oscillating / diverging
    spike_guard(tx)                 skips (or scales down) updates whose loss or gradient norm is a z-score
                                    outlier, counting the events, with no host synchronisation

Named state and checkpoints (``state_dict``, ``load_state_dict``, ``save_state``, ``load_state``) are not
diagnostics: they live in :mod:`gradtx.checkpoint`.

This package imports only ``gradtx.base`` and ``gradtx.tree``: it recognises transformations and states by
their fields, so it works on Optax's too where the shapes agree.
"""

from gradtx.diagnostics.curvature import (
    DEGENERATE,
    LOCAL_MAXIMUM,
    LOCAL_MINIMUM,
    NOT_CRITICAL,
    SADDLE_POINT,
    VERDICTS,
    CriticalPoint,
    HessianEigenvalues,
    classify_critical_point,
    critical_point_verdict,
    default_num_iters,
    hessian_eigenvalues,
    hutchinson_trace,
    hvp,
)
from gradtx.diagnostics.monitor import MonitoredState, current_hyperparams, metrics, monitored, step_count
from gradtx.diagnostics.plateau import (
    CONVERGED,
    CRITICAL_POINT_VERDICTS,
    DIVERGING,
    OSCILLATING,
    PLATEAU_VERDICTS,
    STILL_DESCENDING,
    STUCK_AT_CRITICAL_POINT,
    PlateauDiagnosis,
    diagnose_plateau,
)
from gradtx.diagnostics.spike import SpikeGuardState, spike_guard

__all__ = [
    "CONVERGED",
    "CRITICAL_POINT_VERDICTS",
    "DEGENERATE",
    "DIVERGING",
    "LOCAL_MAXIMUM",
    "LOCAL_MINIMUM",
    "NOT_CRITICAL",
    "OSCILLATING",
    "PLATEAU_VERDICTS",
    "SADDLE_POINT",
    "STILL_DESCENDING",
    "STUCK_AT_CRITICAL_POINT",
    "VERDICTS",
    "CriticalPoint",
    "HessianEigenvalues",
    "MonitoredState",
    "PlateauDiagnosis",
    "SpikeGuardState",
    "classify_critical_point",
    "critical_point_verdict",
    "current_hyperparams",
    "default_num_iters",
    "diagnose_plateau",
    "hessian_eigenvalues",
    "hutchinson_trace",
    "hvp",
    "metrics",
    "monitored",
    "spike_guard",
    "step_count",
]
