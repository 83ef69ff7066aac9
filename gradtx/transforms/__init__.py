"""Building blocks: one family per module, each a state NamedTuple and a pytree transformation class."""

from gradtx.transforms.adaptive import (
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByRssState,
    ScaleByRStdDevState,
    ScaleByRStdDevWithCountState,
    scale_by_adam,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
)
from gradtx.transforms.clipping import clip, clip_by_global_norm
from gradtx.transforms.momentum import BiasCorrectionState, EmaState, TraceState, bias_correction, ema, trace
from gradtx.transforms.regularization import add_decayed_weights
from gradtx.transforms.scaling import (
    ScaleByScheduleState,
    scale,
    scale_by_learning_rate,
    scale_by_schedule,
    scale_by_sign,
)

__all__ = [
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
]
