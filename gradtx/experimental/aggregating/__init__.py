"""Aggregators: transformations that take *per-example* gradients (``optax.experimental.aggregating``).

A usual transformation receives the batch-mean gradient, shaped like the parameters. An :class:`Aggregator`
receives per-example gradients, shaped ``[*batch_shape, *param_shape]``
(``jax.vmap(jax.grad(loss), in_axes=(None, 0))(params, batch)``), and returns one update shaped like the
parameters. :func:`process` runs ``preprocessor`` (per example: clipping, ...) -> ``aggregator`` (mean over the
batch, accumulation over micro-batches) -> ``postprocessor`` (an optimizer on the aggregated update):

    average_per_element_updates(axis)            u = mean_b g_b
    accumulate_avg_updates(k)                    u = running mean of k successive updates, emitted every k-th
                                                 call (0 in between; ``ready`` in the state says which)
    average_incrementally_updates(axis, k)       the two above chained (the first skipped for axis None)
    get_per_element_mean_and_sum_sq_diff_grads   u = mean_b g_b, plus aux: sum_b (g_b - u)^2 and the sample
                                                 size n, pooled over k micro-batches with Chan, Golub &
                                                 LeVeque's (1979) update of the sum of squared deviations
    track_per_element_mean_and_variance_with_ema m <- d m + (1 - d) u,  v <- d v + (1 - d) sum_sq / (n - 1)
    get_unbiased_mean_and_variance_ema(state)    m / (1 - d^t), v / (1 - d^t)
    add_mean_variance_to_opt(opt, d, axis, k)    process(identity, the statistics, chain(EMA tracker, opt))

Names, signatures, defaults, state classes and field names are Optax 0.2.8's. Differences (deliberate, tested
in tests/test_aggregating.py): invalid ``accumulation_steps`` (not an integer >= 1) and ``ema_decay`` (outside
[0, 1)) raise ``ValueError`` at construction; ``micro_step`` counters are int32 (Optax: the default int, int64
under x64); means and sums are computed in float32 or wider and stored in the update's dtype; when the
aggregator state has no ``ready`` flag, :func:`process` calls the postprocessor directly instead of through
``lax.cond`` (same values); every update accepts extra keyword arguments.

Modules: ``aggregator`` (the :class:`Aggregator` marker class and the type names), ``averaging`` (means over
the batch and over micro-batches), ``variance`` (mean and variance of per-example gradients), ``processing``
(:func:`process`, :func:`add_mean_variance_to_opt`); ``_common`` holds their shared argument checks.
"""

from __future__ import annotations

import inspect as _inspect

from gradtx.experimental.aggregating.aggregator import (
    AggregatedUpdates,
    Aggregator,
    AggregatorUpdateFn,
    MaybeAxis,
    PerElementUpdates,
)
from gradtx.experimental.aggregating.averaging import (
    AccumulateAvgUpdatesState,
    accumulate_avg_updates,
    average_incrementally_updates,
    average_per_element_updates,
)
from gradtx.experimental.aggregating.processing import add_mean_variance_to_opt, process
from gradtx.experimental.aggregating.variance import (
    PerElementMeanAndSumSqDiffGradsState,
    PerElementMeanAndVarianceEMAState,
    get_batch_size_from_per_elt_updates,
    get_per_element_mean_and_sum_sq_diff_grads,
    get_unbiased_mean_and_variance_ema,
    track_per_element_mean_and_variance_with_ema,
)

__all__ = [
    "AccumulateAvgUpdatesState",
    "AggregatedUpdates",
    "Aggregator",
    "AggregatorUpdateFn",
    "MaybeAxis",
    "PerElementMeanAndSumSqDiffGradsState",
    "PerElementMeanAndVarianceEMAState",
    "PerElementUpdates",
    "accumulate_avg_updates",
    "add_mean_variance_to_opt",
    "average_incrementally_updates",
    "average_per_element_updates",
    "get_batch_size_from_per_elt_updates",
    "get_per_element_mean_and_sum_sq_diff_grads",
    "get_unbiased_mean_and_variance_ema",
    "process",
    "track_per_element_mean_and_variance_with_ema",
]

# ``doctest.testmod`` of this package also runs the examples of the classes and functions defined in its modules.
__test__ = {
    name: obj
    for name, obj in ((n, globals()[n]) for n in __all__)
    if (_inspect.isclass(obj) or _inspect.isfunction(obj)) and obj.__module__.startswith(__name__ + ".")
}
