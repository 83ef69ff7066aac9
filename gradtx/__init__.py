"""gradtx: composable gradient transformations for JAX.

An optimizer is a chain of pure ``(init, update)`` blocks; every optimizer here is the line
``update = -lr(t) * m(t) / sigma(t)`` with different choices of direction ``m``, scale ``sigma`` and schedule
``lr``. Public names follow Optax wherever the concept is the same. Layers (each imports only from below):

    base <- tree <- transforms <- combine <- optimizers;  schedules (base only);  testing (references: NumPy)
"""

from gradtx import schedules, tree
from gradtx.base import (
    EmptyState,
    GradientTransformation,
    OptState,
    Params,
    ScalarOrSchedule,
    Updates,
    apply_updates,
    identity,
    incremental_update,
    init_empty_state,
    periodic_update,
    safe_int32_increment,
    set_to_zero,
    stateless,
    stateless_with_tree_map,
)
from gradtx.combine import chain, named_chain
from gradtx.optimizers import adagrad, adam, adamw, nadam, nadamw, rmsprop, sgd
from gradtx.schedules import (
    Schedule,
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    join_schedules,
    linear_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
    polynomial_schedule,
    transformer_warmup_schedule,
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
    warmup_stable_decay_schedule,
)
from gradtx.transforms import (
    BiasCorrectionState,
    EmaState,
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByRssState,
    ScaleByRStdDevState,
    ScaleByRStdDevWithCountState,
    ScaleByScheduleState,
    TraceState,
    add_decayed_weights,
    bias_correction,
    clip,
    clip_by_global_norm,
    ema,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_rss,
    scale_by_schedule,
    scale_by_sign,
    scale_by_stddev,
    trace,
)
from gradtx.tree import global_norm, update_infinity_moment, update_moment, update_moment_per_elem_norm
from gradtx.tree import map_params as tree_map_params

__version__ = "0.1.0"

__all__ = [
    # base
    "EmptyState",
    "GradientTransformation",
    "apply_updates",
    "identity",
    "incremental_update",
    "init_empty_state",
    "OptState",
    "Params",
    "ScalarOrSchedule",
    "Updates",
    "periodic_update",
    "safe_int32_increment",
    "set_to_zero",
    "stateless",
    "stateless_with_tree_map",
    # tree
    "global_norm",
    "tree",
    "tree_map_params",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    # transforms
    "BiasCorrectionState",
    "EmaState",
    "ScaleByAdamState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "TraceState",
    "add_decayed_weights",
    "bias_correction",
    "clip",
    "clip_by_global_norm",
    "ema",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_schedule",
    "scale_by_sign",
    "scale_by_stddev",
    "trace",
    # combine
    "chain",
    "named_chain",
    # optimizers
    "adagrad",
    "adam",
    "adamw",
    "nadam",
    "nadamw",
    "rmsprop",
    "sgd",
    # schedules
    "Schedule",
    "constant_schedule",
    "cosine_decay_schedule",
    "exponential_decay",
    "join_schedules",
    "linear_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "schedules",
    "transformer_warmup_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "warmup_stable_decay_schedule",
]
