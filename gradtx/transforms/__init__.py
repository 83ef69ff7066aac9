"""Building blocks: one family per module, each a state NamedTuple and a pytree transformation class.

Every block is a ``@pytree_class`` whose fields are its hyperparameters (validated when it is built) and
whose ``init(params)`` returns its state NamedTuple and ``update(updates, state, params=None, **extra)``
returns ``(updates, new_state)``. No block but ``scale_by_learning_rate`` flips the sign: a recipe is a
``chain`` of blocks ending with it. The families:

    adam_family     scale_by_adam, scale_by_adamax, scale_by_amsgrad, scale_by_belief, scale_by_yogi,
                    scale_by_radam, scale_by_adan (their skeleton: adam_base.AdamLike)
    adaptive        scale_by_rms, scale_by_rss, scale_by_stddev
    sign_family     scale_by_lion, scale_by_adadelta, scale_by_rprop, scale_by_optimistic_gradient,
                    scale_by_novograd, scale_by_polyak
    factored        scale_by_factored_rms (Adafactor), scale_by_sm3
    momentum        trace, ema, bias_correction
    scaling         scale, scale_by_learning_rate, scale_by_schedule, scale_by_sign
    clipping        clip, clip_by_global_norm
    normalization   clip_by_block_rms, adaptive_grad_clip, centralize, scale_by_trust_ratio, ... (per block)
    regularization  add_decayed_weights
    noise           add_noise, apply_every
    lbfgs           scale_by_lbfgs
    linesearch      scale_by_backtracking_linesearch, scale_by_zoom_linesearch, value_and_grad_from_state

Example:
  >>> import jax.numpy as jnp
  >>> from gradtx import transforms
  >>> tx = transforms.scale_by_adam()
  >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
  >>> print(updates)
  [ 1. -1.]
"""

from gradtx.transforms.adam_family import (
    ScaleByAdamState,
    ScaleByAdanState,
    ScaleByAmsgradState,
    ScaleByBeliefState,
    radam_rho,
    scale_by_adam,
    scale_by_adamax,
    scale_by_adan,
    scale_by_amsgrad,
    scale_by_belief,
    scale_by_radam,
    scale_by_yogi,
)
from gradtx.transforms.adaptive import (
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByRssState,
    ScaleByRStdDevState,
    ScaleByRStdDevWithCountState,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
)
from gradtx.transforms.clipping import (
    clip,
    clip_by_global_norm,
)
from gradtx.transforms.factored import (
    FactoredState,
    ScaleBySM3State,
    scale_by_factored_rms,
    scale_by_sm3,
)
from gradtx.transforms.lbfgs import (
    ScaleByLBFGSState,
    scale_by_lbfgs,
)
from gradtx.transforms.linesearch import (
    BacktrackingLinesearchInfo,
    ScaleByBacktrackingLinesearchState,
    ScaleByZoomLinesearchState,
    ZoomLinesearchInfo,
    scale_by_backtracking_linesearch,
    scale_by_zoom_linesearch,
    value_and_grad_from_state,
)
from gradtx.transforms.momentum import (
    BiasCorrectionState,
    EmaState,
    TraceState,
    bias_correction,
    ema,
    trace,
)
from gradtx.transforms.noise import (
    AddNoiseState,
    ApplyEvery,
    add_noise,
    apply_every,
)
from gradtx.transforms.normalization import (
    NonNegativeParamsState,
    ScaleByDistanceOverGradientsState,
    ZeroNansState,
    adaptive_grad_clip,
    centralize,
    clip_by_block_rms,
    keep_params_nonnegative,
    normalize_by_update_norm,
    per_example_global_norm_clip,
    per_example_layer_norm_clip,
    scale_by_distance_over_gradients,
    scale_by_param_block_norm,
    scale_by_param_block_rms,
    scale_by_trust_ratio,
    unitwise_clip,
    unitwise_norm,
    zero_nans,
)
from gradtx.transforms.regularization import (
    add_decayed_weights,
    apply_mask,
)
from gradtx.transforms.scaling import (
    ScaleByScheduleState,
    scale,
    scale_by_learning_rate,
    scale_by_schedule,
    scale_by_sign,
)
from gradtx.transforms.sign_family import (
    ScaleByAdaDeltaState,
    ScaleByLionState,
    ScaleByNovogradState,
    ScaleByOptimisticGradientState,
    ScaleByRpropState,
    scale_by_adadelta,
    scale_by_lion,
    scale_by_novograd,
    scale_by_optimistic_gradient,
    scale_by_polyak,
    scale_by_rprop,
)

__all__ = [
    "adaptive_grad_clip",
    "add_decayed_weights",
    "add_noise",
    "AddNoiseState",
    "apply_every",
    "apply_mask",
    "ApplyEvery",
    "BacktrackingLinesearchInfo",
    "bias_correction",
    "BiasCorrectionState",
    "centralize",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "ema",
    "EmaState",
    "FactoredState",
    "keep_params_nonnegative",
    "NonNegativeParamsState",
    "normalize_by_update_norm",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
    "radam_rho",
    "scale",
    "scale_by_adadelta",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_amsgrad",
    "scale_by_backtracking_linesearch",
    "scale_by_belief",
    "scale_by_distance_over_gradients",
    "scale_by_factored_rms",
    "scale_by_lbfgs",
    "scale_by_learning_rate",
    "scale_by_lion",
    "scale_by_novograd",
    "scale_by_optimistic_gradient",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
    "scale_by_polyak",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_rss",
    "scale_by_schedule",
    "scale_by_sign",
    "scale_by_sm3",
    "scale_by_stddev",
    "scale_by_trust_ratio",
    "scale_by_yogi",
    "scale_by_zoom_linesearch",
    "ScaleByAdaDeltaState",
    "ScaleByAdamState",
    "ScaleByAdanState",
    "ScaleByAmsgradState",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByBeliefState",
    "ScaleByDistanceOverGradientsState",
    "ScaleByLBFGSState",
    "ScaleByLionState",
    "ScaleByNovogradState",
    "ScaleByOptimisticGradientState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRpropState",
    "ScaleByRssState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByScheduleState",
    "ScaleBySM3State",
    "ScaleByZoomLinesearchState",
    "trace",
    "TraceState",
    "unitwise_clip",
    "unitwise_norm",
    "value_and_grad_from_state",
    "zero_nans",
    "ZeroNansState",
    "ZoomLinesearchInfo",
]


# Optax also spells the combinators and wrappers under ``optax.transforms`` (``optax.transforms.chain``,
# ``optax.transforms.MultiSteps``, ...). They live in layers above this package (gradtx.combine, gradtx.wrappers),
# which import from it, so they are served lazily by name (PEP 562): the one canonical object, no second
# definition. ``tests/test_layers.py`` checks that this table points only at those two modules.
_OPTAX_SPELLINGS = {
    **dict.fromkeys(
        [
            "ConditionallyMaskState",
            "ConditionallyTransformState",
            "MaskedNode",
            "MaskedState",
            "PartitionState",
            "chain",
            "conditionally_mask",
            "conditionally_transform",
            "freeze",
            "masked",
            "named_chain",
            "partition",
            "selective_transform",
            "MultiTransformState",
            "multi_transform",
        ],
        "gradtx.combine",
    ),
    **dict.fromkeys(
        [
            "ApplyIfFiniteState",
            "MonitorState",
            "MultiSteps",
            "MultiStepsState",
            "ShouldSkipUpdateFunction",
            "SnapshotState",
            "apply_if_finite",
            "flatten",
            "measure_with_ema",
            "monitor",
            "skip_large_updates",
            "skip_not_finite",
            "snapshot",
        ],
        "gradtx.wrappers",
    ),
    "ConditionFn": "gradtx.base",
}


from gradtx.namespace import lazy_spellings  # noqa: E402

__getattr__, __dir__ = lazy_spellings(globals(), _OPTAX_SPELLINGS)
