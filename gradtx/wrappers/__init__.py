"""Wrappers (1 transformation -> 1): change *when*, *on what* or *with which hyperparameters* an inner
transformation runs, never its maths. One concern per module:

    accumulation   MultiSteps(opt, k)              accumulate k mini-batch gradients (mean or sum), then apply
                                                   ``opt`` once
    finiteness     apply_if_finite(inner, n)       skip updates holding inf/NaN (up to n in a row), count them;
                   skip_not_finite,                MultiSteps' guards against non-finite and too large
                   skip_large_updates              mini-steps
    injection      inject_hyperparams(f)(...)      ``f``'s numeric hyperparameters live in the state
                                                   (changeable, schedulable)
    lookahead      lookahead(fast, k, alpha)       k fast steps, then slow += alpha (fast - slow); fast = slow
                                                   (Zhang, Lucas, Hinton & Ba 2019, arXiv 1907.08610)
    monitoring     monitor / snapshot /            record measurements of the updates in the state
                   measure_with_ema
    flattening     flatten(inner)                  run ``inner`` on one vector: all leaves raveled and
                                                   concatenated
    extra_args     with_extra_args_support(tx)     ``tx`` as a gradtx transformation that accepts ``**extra``

Names, signatures, defaults, state classes and field names are Optax 0.2.8's (``optax.MultiSteps``,
``optax.apply_if_finite``, ``optax.flatten``, ``optax.lookahead``, ``optax.inject_hyperparams``,
``optax.monitor``, ``optax.snapshot``, ``optax.measure_with_ema``, ``optax.with_extra_args_support``; several
also under ``optax.transforms`` / ``optax.schedules``). The deliberate differences from Optax are listed in
the docstring of the module concerned, each tested in tests/test_wrappers.py.

Every wrapper is a pytree: its inner transformation is a field (numeric hyperparameters stay leaves), so a
wrapped optimizer passes into ``jit`` as an argument and does not retrace when only a hyperparameter
changes. Extra keyword arguments (``value=...``) reach the inner transformation through every wrapper.

``microbatch``, ``micro_vmap``, ``micro_grad`` (with ``AccumulationType``, ``Accumulator``,
``IndividualOutputs``, ``reshape_batch_axis``) evaluate functions in micro-batches; they are not
transformations and live in :mod:`gradtx.microbatching`, a layer below. This namespace answers them too,
as Optax's top level does (``optax.microbatch``): the same objects.
"""

from __future__ import annotations

from gradtx.microbatching import (
    AccumulationType,
    Accumulator,
    IndividualOutputs,
    micro_grad,
    micro_vmap,
    microbatch,
    reshape_batch_axis,
)
from gradtx.wrappers.accumulation import MultiSteps, MultiStepsState
from gradtx.wrappers.extra_args import GradientTransformationExtraArgs, with_extra_args_support
from gradtx.wrappers.finiteness import (
    ApplyIfFiniteState,
    ShouldSkipUpdateFunction,
    apply_if_finite,
    skip_large_updates,
    skip_not_finite,
)
from gradtx.wrappers.flattening import flatten
from gradtx.wrappers.injection import (
    InjectHyperparamsState,
    InjectStatefulHyperparamsState,
    WrappedSchedule,
    WrappedScheduleState,
    inject_hyperparams,
    inject_stateful_hyperparams,
    injected_hyperparams,
)
from gradtx.wrappers.lookahead import LookaheadParams, LookaheadState, lookahead
from gradtx.wrappers.monitoring import MonitorState, SnapshotState, measure_with_ema, monitor, snapshot

__all__ = [
    "AccumulationType",
    "Accumulator",
    "ApplyIfFiniteState",
    "GradientTransformationExtraArgs",
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "LookaheadParams",
    "LookaheadState",
    "MonitorState",
    "MultiSteps",
    "MultiStepsState",
    "ShouldSkipUpdateFunction",
    "SnapshotState",
    "WrappedSchedule",
    "WrappedScheduleState",
    "apply_if_finite",
    "flatten",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "injected_hyperparams",
    "lookahead",
    "measure_with_ema",
    "IndividualOutputs",
    "micro_grad",
    "micro_vmap",
    "microbatch",
    "monitor",
    "reshape_batch_axis",
    "skip_large_updates",
    "skip_not_finite",
    "snapshot",
    "with_extra_args_support",
]
