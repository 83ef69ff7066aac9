"""Mean and variance of per-example gradients: pooled over micro-batches (Chan, Golub & LeVeque 1979), and their
exponential moving averages with the bias correction.

    get_per_element_mean_and_sum_sq_diff_grads   u = mean_b g_b, plus aux: sum_b (g_b - u)^2 and the sample
                                                 size n, pooled over k micro-batches
    track_per_element_mean_and_variance_with_ema m <- d m + (1 - d) u,  v <- d v + (1 - d) sum_sq / (n - 1)
    get_unbiased_mean_and_variance_ema(state)    m / (1 - d^t), v / (1 - d^t)
    get_batch_size_from_per_elt_updates          the number of examples along the batch axes
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import (
    EmptyState,
    GradientTransformation,
    OptState,
    Params,
    Scalar,
    Updates,
    safe_int32_increment,
    zero_count,
)
from gradtx.experimental.aggregating._common import (
    PER_ELT_AXIS,
    check_accumulation_steps,
    check_per_elt_axis,
    select_if_ready,
)
from gradtx.experimental.aggregating.aggregator import Aggregator, PerElementUpdates
from gradtx.fields import integer, option, probability, pytree_class
from gradtx.tree.precision import widest_real_dtype

__all__ = [
    "PerElementMeanAndSumSqDiffGradsState",
    "PerElementMeanAndVarianceEMAState",
    "get_batch_size_from_per_elt_updates",
    "get_per_element_mean_and_sum_sq_diff_grads",
    "get_unbiased_mean_and_variance_ema",
    "track_per_element_mean_and_variance_with_ema",
]


def _mean_and_sum_sq_diff(x: Any, axis: Any) -> tuple[jax.Array, jax.Array]:
    """``mean_b x_b`` and ``sum_b |x_b - mean|^2`` over ``axis`` (removed), computed in float32 or wider."""
    x = jnp.asarray(x)
    x32 = tree.up(x)
    m = jnp.mean(x32, axis=axis, keepdims=True)
    ssd = jnp.sum(tree.abs_sq(x32 - m), axis=axis)
    out = x.dtype if jnp.issubdtype(x.dtype, jnp.inexact) else x32.dtype
    return jnp.squeeze(m, axis=axis).astype(out), ssd.astype(out)


def get_batch_size_from_per_elt_updates(per_elt_updates: Updates, per_elt_axis: int | Sequence[int]) -> int:
    """The number of examples in per-example updates: the size of ``per_elt_axis`` (the product of the sizes for
    several axes), which must be the same for every leaf.

    Args:
        per_elt_updates: a pytree of arrays with the batch axis (axes).
        per_elt_axis: the batch axis, an int, or a sequence of ints.

    Returns:
        The batch size, a Python int.

    Raises:
        ValueError: if the leaves have different batch sizes, or the tree has no leaf.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.experimental.aggregating import get_batch_size_from_per_elt_updates
        >>> get_batch_size_from_per_elt_updates({"w": jnp.zeros((4, 3, 2)), "b": jnp.zeros((4, 3))}, (0, 1))
        12
    """
    axes = check_per_elt_axis("get_batch_size_from_per_elt_updates", per_elt_axis)
    axes = (axes,) if isinstance(axes, int) else axes
    sizes = [math.prod(int(jnp.shape(u)[a]) for a in axes) for u in jax.tree.leaves(per_elt_updates)]
    if not sizes:
        raise ValueError("get_batch_size_from_per_elt_updates: per_elt_updates has no array leaf")
    if any(s != sizes[0] for s in sizes):
        raise ValueError(
            f"get_batch_size_from_per_elt_updates(per_elt_axis={per_elt_axis!r}): per-element updates must have the "
            f"same batch size along the per-element axes in every leaf; got {sizes}"
        )
    return sizes[0]


class PerElementMeanAndSumSqDiffGradsState(NamedTuple):
    """State of :func:`get_per_element_mean_and_sum_sq_diff_grads` with ``accumulation_steps > 1``: the position
    in the window, whether the last call emitted, the running mean of the gradients and their running sum of
    squared deviations from it.

    Attributes:
        micro_step: the number of micro-batches since the last emission, an int32 scalar in ``[0, k)``.
        ready: whether the last call emitted the pooled statistics, a bool scalar.
        mean_grads: the pooled mean of the per-example gradients of the current window, shaped like the
            parameters.
        sum_sq_diff_grads: their pooled sum of squared deviations from that mean, shaped like the parameters.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.experimental.aggregating import get_per_element_mean_and_sum_sq_diff_grads
        >>> agg = get_per_element_mean_and_sum_sq_diff_grads(accumulation_steps=2)
        >>> _, state = agg.update(jnp.array([[1.0], [3.0]]), agg.init(jnp.zeros(1)))
        >>> print(state.micro_step, state.mean_grads, state.sum_sq_diff_grads)
        1 [2.] [2.]
    """

    micro_step: jax.Array  # int32
    ready: jax.Array  # bool
    mean_grads: Updates
    sum_sq_diff_grads: Updates


@pytree_class
class get_per_element_mean_and_sum_sq_diff_grads(Aggregator):
    """The mean of per-example gradients and their sum of squared deviations, over ``k`` micro-batches.

    For one micro-batch of ``B`` examples: ``mean = (1/B) sum_b g_b`` and ``M2 = sum_b (g_b - mean)^2``. Over
    ``k`` micro-batches the pooled values are updated as in Chan, Golub & LeVeque (1979), "Updating formulae and
    a pairwise algorithm for computing sample variances": with ``delta = mean_j - mean``, ``mean += delta / j``
    and ``M2 += M2_j + delta^2 (j - 1) B / j`` (exact for equal micro-batch sizes). The ``k``-th call returns
    ``(mean, {"sum_sq_diff_grads": M2, "sample_size": k B})``, the others zeros (``ready`` says which). Use it
    in :func:`process` with ``aggregator_has_aux=True``: the dict becomes extra keyword arguments of the
    postprocessor, e.g. :func:`track_per_element_mean_and_variance_with_ema` (``M2 / (n - 1)`` is the unbiased
    sample variance).

    Args:
        per_elt_axis: the batch axis, an int or a sequence of ints (default 0).
        accumulation_steps: ``k``, an integer >= 1 (default 1: state ``EmptyState()``, as Optax).

    Returns:
        An :class:`Aggregator` whose update returns ``((mean, aux_dict), state)``; its state is
        :class:`PerElementMeanAndSumSqDiffGradsState` (``EmptyState()`` for ``k = 1``).

    Raises:
        ValueError: if ``accumulation_steps`` is not an integer >= 1 or ``per_elt_axis`` is not an int or a
            sequence of ints; in ``update``, if the leaves have different batch sizes.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.experimental.aggregating import get_per_element_mean_and_sum_sq_diff_grads
        >>> agg = get_per_element_mean_and_sum_sq_diff_grads()
        >>> (mean, aux), _ = agg.update(jnp.array([[1.0], [3.0], [5.0]]), agg.init(jnp.zeros(1)))
        >>> print(mean, aux["sum_sq_diff_grads"], aux["sample_size"])
        [3.] [8.] 3
    """

    per_elt_axis: int | Sequence[int] = option(default=0, accepts=PER_ELT_AXIS, static=True)
    accumulation_steps: int = integer(default=1, lo=1, static=True)

    def __check_init__(self) -> None:
        name = type(self).__name__
        object.__setattr__(self, "per_elt_axis", check_per_elt_axis(name, self.per_elt_axis))
        object.__setattr__(self, "accumulation_steps", check_accumulation_steps(name, self.accumulation_steps))

    def init(self, params: Params) -> PerElementMeanAndSumSqDiffGradsState | EmptyState:
        if self.accumulation_steps == 1:
            return EmptyState()
        return PerElementMeanAndSumSqDiffGradsState(
            micro_step=zero_count(),
            ready=jnp.asarray(False),
            mean_grads=tree.zeros_like(params),
            sum_sq_diff_grads=tree.zeros_like(params),
        )

    def update(
        self,
        updates: PerElementUpdates,
        state: PerElementMeanAndSumSqDiffGradsState | EmptyState,
        params: Params | None = None,
        **extra: Any,
    ) -> tuple[tuple[Updates, dict[str, Any]], PerElementMeanAndSumSqDiffGradsState | EmptyState]:
        del params, extra
        ax = self.per_elt_axis
        batch = get_batch_size_from_per_elt_updates(updates, ax)
        stats = jax.tree.map(lambda x: _mean_and_sum_sq_diff(x, ax), updates)
        mean, ssd = tree.unzip2(updates, stats)
        if self.accumulation_steps == 1:
            return (mean, {"sum_sq_diff_grads": ssd, "sample_size": batch}), state
        state = cast(PerElementMeanAndSumSqDiffGradsState, state)
        step = state.micro_step + 1
        ready = step == self.accumulation_steps

        def pool(m: Any, s: Any, pm: Any, ps: Any) -> tuple[jax.Array, jax.Array]:
            m32, s32, pm32, ps32 = tree.up(m), tree.up(s), tree.up(pm), tree.up(ps)
            dt = tree.hyper(0.0, pm32).dtype
            j = step.astype(dt)
            delta = m32.astype(pm32.dtype) - pm32
            new_m = pm32 + delta / j
            new_s = ps32 + s32.astype(ps32.dtype) + tree.abs_sq(delta) * (state.micro_step.astype(dt) * batch / j)
            return new_m.astype(jnp.asarray(pm).dtype), new_s.astype(jnp.asarray(ps).dtype)

        pooled = jax.tree.map(pool, mean, ssd, state.mean_grads, state.sum_sq_diff_grads)
        new_mean, new_ssd = tree.unzip2(state.mean_grads, pooled)
        outputs = (new_mean, {"sum_sq_diff_grads": new_ssd, "sample_size": batch * step})
        zeros = tree.zeros_like(outputs)
        new_state = PerElementMeanAndSumSqDiffGradsState(
            micro_step=jnp.where(ready, 0, step).astype(jnp.int32),
            ready=ready,
            mean_grads=select_if_ready(ready, zeros[0], new_mean),
            sum_sq_diff_grads=select_if_ready(ready, zeros[1]["sum_sq_diff_grads"], new_ssd),
        )
        return select_if_ready(ready, outputs, zeros), new_state


class PerElementMeanAndVarianceEMAState(NamedTuple):
    """State of :func:`track_per_element_mean_and_variance_with_ema`: the number of updates tracked, the decay,
    and the (biased) exponential moving averages of the gradient mean and of the per-example variance.

    Attributes:
        count: the number of updates tracked ``t``, an int32 scalar.
        ema_decay: the decay ``d`` the averages use, a real scalar (the widest real dtype of the parameters).
        mean_grads_ema: the moving average of the gradient mean (not bias-corrected), shaped like the parameters.
        variance_grads_ema: the moving average of the per-example variance (not bias-corrected), shaped like the
            parameters.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.experimental.aggregating import track_per_element_mean_and_variance_with_ema
        >>> state = track_per_element_mean_and_variance_with_ema(ema_decay=0.5).init(jnp.zeros(2))
        >>> print(state.count, state.ema_decay, state.mean_grads_ema)
        0 0.5 [0. 0.]
    """

    count: jax.Array  # type: ignore[assignment]  # int32; the field name shadows tuple.count
    ema_decay: jax.Array  # float
    mean_grads_ema: Updates
    variance_grads_ema: Updates


@pytree_class
class track_per_element_mean_and_variance_with_ema(GradientTransformation):
    """Exponential moving averages of the gradient mean and of the per-example gradient variance.

    With ``u`` the (aggregated) update, ``S`` the ``sum_sq_diff_grads`` and ``n`` the ``sample_size`` extra
    arguments and ``d`` the decay, each update sets ``m <- d m + (1 - d) u`` and
    ``v <- d v + (1 - d) S / (n - 1)`` (``S / (n - 1)``: the unbiased sample variance, which needs ``n >= 2``)
    and passes ``u`` through unchanged. :func:`get_unbiased_mean_and_variance_ema` divides by ``1 - d^t``
    (Kingma & Ba 2015's bias correction). The extra arguments come from
    :func:`get_per_element_mean_and_sum_sq_diff_grads` inside :func:`process` (see
    :func:`add_mean_variance_to_opt`).

    Args:
        ema_decay: ``d``, in [0, 1) (default 0.9); a hyperparameter leaf (float, array or traced).

    Returns:
        A transformation with state :class:`PerElementMeanAndVarianceEMAState`; its update requires the
        keyword arguments ``sum_sq_diff_grads`` (shaped like the updates) and ``sample_size``.

    Raises:
        ValueError: if ``ema_decay`` is not in [0, 1).
        TypeError: in ``update``, if ``sum_sq_diff_grads`` or ``sample_size`` is missing.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.experimental.aggregating import track_per_element_mean_and_variance_with_ema
        >>> tx = track_per_element_mean_and_variance_with_ema(ema_decay=0.5)
        >>> state = tx.init(jnp.zeros(1))
        >>> _, state = tx.update(jnp.array([2.0]), state, sum_sq_diff_grads=jnp.array([8.0]), sample_size=5)
        >>> print(state.mean_grads_ema, state.variance_grads_ema)
        [1.] [1.]
    """

    ema_decay: Scalar = probability(default=0.9)

    def init(self, params: Params) -> PerElementMeanAndVarianceEMAState:
        return PerElementMeanAndVarianceEMAState(
            count=zero_count(),
            ema_decay=jnp.asarray(self.ema_decay, widest_real_dtype(params)),
            mean_grads_ema=tree.zeros_like(params),
            variance_grads_ema=tree.zeros_like(params),
        )

    def update(
        self, updates: Updates, state: PerElementMeanAndVarianceEMAState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, PerElementMeanAndVarianceEMAState]:
        del params
        missing = [k for k in ("sum_sq_diff_grads", "sample_size") if k not in extra]
        if missing:
            raise TypeError(
                f"track_per_element_mean_and_variance_with_ema.update: missing keyword argument(s) {missing}; use "
                "it after get_per_element_mean_and_sum_sq_diff_grads in process(..., aggregator_has_aux=True), "
                "e.g. through add_mean_variance_to_opt"
            )
        n = extra["sample_size"]
        variance = jax.tree.map(
            lambda s: tree.up(s) / (jnp.asarray(n) - 1).astype(tree.hyper(0.0, s).dtype), extra["sum_sq_diff_grads"]
        )
        # The averages use the decay as stored in the state, the number get_unbiased_mean_and_variance_ema
        # divides by 1 - d^t with: the weights then sum to exactly that factor (a constant input is recovered).
        decay = jnp.asarray(self.ema_decay).astype(state.ema_decay.dtype)
        new_state = PerElementMeanAndVarianceEMAState(
            count=safe_int32_increment(state.count),
            ema_decay=decay,
            mean_grads_ema=tree.update_moment(updates, state.mean_grads_ema, decay, 1),
            variance_grads_ema=tree.update_moment(variance, state.variance_grads_ema, decay, 1),
        )
        return updates, new_state


def get_unbiased_mean_and_variance_ema(state: OptState) -> tuple[Updates, Updates]:
    """The bias-corrected moving averages of :func:`track_per_element_mean_and_variance_with_ema`.

    Finds the :class:`PerElementMeanAndVarianceEMAState` anywhere in ``state`` and returns
    ``(m / (1 - d^t), v / (1 - d^t))`` with ``t`` its ``count`` (Kingma & Ba 2015's bias correction; NaN before
    the first update, ``t = 0``).

    Args:
        state: an optimizer state holding exactly one ``PerElementMeanAndVarianceEMAState``.

    Returns:
        ``(mean, variance)``, two trees shaped like the parameters.

    Raises:
        ValueError: if ``state`` holds no ``PerElementMeanAndVarianceEMAState``.
        KeyError: if it holds several.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.experimental.aggregating import (
        ...     get_unbiased_mean_and_variance_ema, track_per_element_mean_and_variance_with_ema)
        >>> tx = track_per_element_mean_and_variance_with_ema(ema_decay=0.5)
        >>> state = tx.init(jnp.zeros(1))
        >>> _, state = tx.update(jnp.array([2.0]), state, sum_sq_diff_grads=jnp.array([8.0]), sample_size=5)
        >>> mean, variance = get_unbiased_mean_and_variance_ema(state)
        >>> print(mean, variance)
        [2.] [2.]
    """
    found = tree.get(state, "PerElementMeanAndVarianceEMAState", None)
    if found is None:
        raise ValueError(
            "get_unbiased_mean_and_variance_ema: state must have PerElementMeanAndVarianceEMAState to compute "
            "unbiased mean and variance EMA (use track_per_element_mean_and_variance_with_ema or "
            "add_mean_variance_to_opt)"
        )

    def unbias(m: Any) -> Any:
        out = tree.bias_correction(m, found.ema_decay, found.count)
        return jax.tree.map(lambda o, x: o.astype(jnp.asarray(x).dtype), out, m)

    return unbias(found.mean_grads_ema), unbias(found.variance_grads_ema)
