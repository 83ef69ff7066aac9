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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import (
    EmptyState,
    GradientTransformation,
    OptState,
    Params,
    Updates,
    as_transformation,
    concrete_number,
    format_value,
    identity,
    pytree_class,
    safe_int32_increment,
    static_field,
    zero_count,
)
from gradtx.combine import chain

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

PerElementUpdates = Any
"""Per-example updates: a pytree whose leaves have the batch axes (``per_elt_axis``) before the parameter's."""
AggregatedUpdates = Any
"""Updates shaped like the parameters, made from per-example updates."""
MaybeAxis = int | Sequence[int] | None
"""The batch axis (or axes) of per-example updates, or ``None`` for updates without one."""


class AggregatorUpdateFn(Protocol):
    """The ``update`` of an :class:`Aggregator`: ``(per_elt_updates, state, params=None, **extra) -> (updates,
    state)``; the signature of a transformation's update, but its input has batch axes its output lacks."""

    def __call__(
        self, per_elt_updates: PerElementUpdates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[AggregatedUpdates, OptState]:
        """Aggregate per-example updates into one update shaped like the parameters."""
        ...


# --------------------------------------------------------------------------------------------------
# Aggregator: the marker class, and an aggregator built from two functions.
# --------------------------------------------------------------------------------------------------


class Aggregator(GradientTransformation):
    """A transformation of per-example updates into one update (``optax.experimental.aggregating.Aggregator``).

    ``Aggregator(init, update)`` builds one from two functions, like ``GradientTransformation(init, update)``;
    the built-in aggregators of this module are instances too. ``isinstance(tx, Aggregator)`` tells a training
    loop to feed per-example gradients (``jax.vmap(jax.grad(loss), (None, 0))``) instead of the batch mean.

    Args:
        init: ``init(params) -> state``.
        update: an :class:`AggregatorUpdateFn`, ``update(per_elt_updates, state, params=None, **extra) ->
            (updates, state)``; ``per_elt_updates`` have the batch axes, ``updates`` are shaped like ``params``.

    Returns:
        An ``Aggregator`` (a pytree whose two functions are static).

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.base import init_empty_state
        >>> from gradtx.experimental.aggregating import Aggregator
        >>> mean = Aggregator(init_empty_state, lambda gs, state, params=None: (jnp.mean(gs, axis=0), state))
        >>> print(mean.update(jnp.array([[1.0, 2.0], [3.0, 6.0]]), mean.init(jnp.zeros(2)))[0])
        [2. 4.]
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is Aggregator:
            return object.__new__(_FunctionAggregator)
        return object.__new__(cls)


@pytree_class
class _FunctionAggregator(Aggregator):
    """An :class:`Aggregator` made from two plain functions; both are static parts of the tree."""

    init: Any = static_field()
    update: Any = static_field()

    def __repr__(self) -> str:
        return f"Aggregator(init={format_value(self.init)}, update={format_value(self.update)})"


# --------------------------------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------------------------------


def _axis_tuple(call: str, per_elt_axis: Any) -> int | tuple[int, ...]:
    """``per_elt_axis`` as an int or a tuple of ints (hashable: it is a static field)."""
    if isinstance(per_elt_axis, (int, np.integer)) and not isinstance(per_elt_axis, bool):
        return int(per_elt_axis)
    if isinstance(per_elt_axis, Sequence) and not isinstance(per_elt_axis, str):
        axes = tuple(per_elt_axis)
        if axes and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
            return tuple(int(a) for a in axes)
    raise ValueError(
        f"{call}(per_elt_axis={per_elt_axis!r}): per_elt_axis must be an int or a non-empty sequence of ints"
    )


def _steps(call: str, accumulation_steps: Any) -> int:
    """``accumulation_steps`` as an int >= 1 (integral floats accepted, as Optax compares them with a counter)."""
    v = concrete_number(accumulation_steps)
    if v is None or isinstance(accumulation_steps, bool) or not (v >= 1 and float(v).is_integer()):
        raise ValueError(
            f"{call}(accumulation_steps={accumulation_steps!r}): accumulation_steps must be an integer >= 1"
        )
    return int(v)


def _mean(x: Any, axis: Any) -> jax.Array:
    """The mean over ``axis`` (kept, size 1) in float32 or wider, in ``x``'s dtype when ``x`` is floating."""
    x = jnp.asarray(x)
    m = jnp.mean(tree.up(x), axis=axis, keepdims=True)
    return m.astype(x.dtype) if jnp.issubdtype(x.dtype, jnp.inexact) else m


def _mean_and_sum_sq_diff(x: Any, axis: Any) -> tuple[jax.Array, jax.Array]:
    """``mean_b x_b`` and ``sum_b |x_b - mean|^2`` over ``axis`` (removed), computed in float32 or wider."""
    x = jnp.asarray(x)
    x32 = tree.up(x)
    m = jnp.mean(x32, axis=axis, keepdims=True)
    ssd = jnp.sum(tree.abs_sq(x32 - m), axis=axis)
    out = x.dtype if jnp.issubdtype(x.dtype, jnp.inexact) else x32.dtype
    return jnp.squeeze(m, axis=axis).astype(out), ssd.astype(out)


def _ready_select(ready: jax.Array, when_ready: Any, otherwise: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(ready, a, b), when_ready, otherwise)


# --------------------------------------------------------------------------------------------------
# Averaging and accumulating.
# --------------------------------------------------------------------------------------------------


@pytree_class
class average_per_element_updates(Aggregator):
    """The mean of per-example updates over the batch axis: ``u = (1/B) sum_b g_b``.

    Args:
        per_elt_axis: the batch axis of every leaf, an int or a sequence of ints (default 0).

    Returns:
        An :class:`Aggregator` with state ``EmptyState()``.

    Raises:
        ValueError: if ``per_elt_axis`` is not an int or a non-empty sequence of ints.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.experimental.aggregating import average_per_element_updates
        >>> agg = average_per_element_updates()
        >>> print(agg.update(jnp.array([[1.0, 2.0], [3.0, 6.0]]), agg.init(jnp.zeros(2)))[0])
        [2. 4.]
    """

    per_elt_axis: Any = static_field(default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_elt_axis", _axis_tuple(type(self).__name__, self.per_elt_axis))

    def init(self, params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update(self, updates: PerElementUpdates, state: OptState, params: Params | None = None, **extra: Any):
        del params, extra
        ax = self.per_elt_axis
        return jax.tree.map(lambda x: jnp.squeeze(_mean(x, ax), axis=ax), updates), state


class AccumulateAvgUpdatesState(NamedTuple):
    """State of :func:`accumulate_avg_updates`: the position in the window of ``k`` calls (0..k-1), whether
    the last call emitted the average, and the running average of the updates seen in the current window."""

    micro_step: jax.Array  # int32
    ready: jax.Array  # bool
    avg_grad: Updates


@pytree_class
class accumulate_avg_updates(GradientTransformation):
    """Average ``k`` successive updates (micro-batches) and emit the average every ``k``-th call.

    With ``u_1..u_k`` the updates of one window, the running mean ``a_j = a_{j-1} + (u_j - a_{j-1}) / j`` is kept
    in the state; call ``k`` returns ``a_k = (1/k) sum_j u_j`` (and sets ``ready``), the other calls return
    zeros. With equal micro-batch sizes the result is the gradient of the full batch, so inside
    :func:`process` the postprocessor (an optimizer) steps once per ``k`` micro-batches.
    ``accumulation_steps=1`` is the identity (state ``EmptyState()``, as Optax).

    Args:
        accumulation_steps: ``k``, the number of micro-batches per emitted average, an integer >= 1.

    Returns:
        A transformation with state :class:`AccumulateAvgUpdatesState` (``EmptyState()`` for ``k = 1``).

    Raises:
        ValueError: if ``accumulation_steps`` is not an integer >= 1.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.experimental.aggregating import accumulate_avg_updates
        >>> acc = accumulate_avg_updates(2)
        >>> state = acc.init(jnp.zeros(2))
        >>> out, state = acc.update(jnp.array([1.0, 2.0]), state)
        >>> print(out, bool(state.ready))
        [0. 0.] False
        >>> out, state = acc.update(jnp.array([3.0, 6.0]), state)
        >>> print(out, bool(state.ready))
        [2. 4.] True
    """

    accumulation_steps: int = static_field()

    def __post_init__(self) -> None:
        object.__setattr__(self, "accumulation_steps", _steps(type(self).__name__, self.accumulation_steps))

    def init(self, params: Params) -> AccumulateAvgUpdatesState | EmptyState:
        if self.accumulation_steps == 1:
            return EmptyState()
        return AccumulateAvgUpdatesState(
            micro_step=zero_count(), ready=jnp.asarray(False), avg_grad=tree.zeros_like(params)
        )

    def update(self, updates: Updates, state: Any, params: Params | None = None, **extra: Any):
        del params, extra
        if self.accumulation_steps == 1:
            return updates, state
        step = state.micro_step + 1
        ready = step == self.accumulation_steps

        def running(u: Any, a: Any) -> jax.Array:
            a32 = tree.up(a)
            return (a32 + (tree.up(u).astype(a32.dtype) - a32) / step.astype(tree.hyper(0.0, a32).dtype)).astype(
                jnp.asarray(a).dtype
            )

        avg = jax.tree.map(running, updates, state.avg_grad)
        zeros = tree.zeros_like(avg)
        out = _ready_select(ready, avg, zeros)
        new_state = AccumulateAvgUpdatesState(
            micro_step=jnp.where(ready, 0, step).astype(jnp.int32),
            ready=ready,
            avg_grad=_ready_select(ready, zeros, avg),
        )
        return out, new_state


@pytree_class
class _average_then_accumulate(Aggregator):
    """``chain(average_per_element_updates(axis), accumulate_avg_updates(k))`` as an Aggregator."""

    per_elt_axis: Any = static_field()
    accumulation_steps: int = static_field()

    def _chain(self) -> GradientTransformation:
        return chain(average_per_element_updates(self.per_elt_axis), accumulate_avg_updates(self.accumulation_steps))

    def init(self, params: Params) -> tuple[Any, ...]:
        return self._chain().init(params)

    def update(self, updates: PerElementUpdates, state: Any, params: Params | None = None, **extra: Any):
        return self._chain().update(updates, state, params, **extra)

    def __repr__(self) -> str:
        return (
            f"average_incrementally_updates(per_elt_axis={self.per_elt_axis!r}, "
            f"accumulation_steps={self.accumulation_steps})"
        )


def average_incrementally_updates(
    per_elt_axis: MaybeAxis, accumulation_steps: int
) -> Aggregator | GradientTransformation:
    """Average per-example updates over the batch axis, then over ``accumulation_steps`` micro-batches.

    ``u = (1/k) sum_j (1/B) sum_b g_{j,b}``, emitted every ``k``-th call (zeros in between): the gradient of a
    batch of ``k B`` examples seen as ``k`` micro-batches of ``B``.

    Args:
        per_elt_axis: the batch axis (an int or a sequence of ints) of the per-example updates, or ``None`` when
            the updates are already batch means (then only the accumulation runs).
        accumulation_steps: ``k``, an integer >= 1.

    Returns:
        ``accumulate_avg_updates(k)`` when ``per_elt_axis`` is ``None``; otherwise an :class:`Aggregator` whose
        state is that of ``chain(average_per_element_updates(per_elt_axis), accumulate_avg_updates(k))``.

    Raises:
        ValueError: if ``accumulation_steps`` is not an integer >= 1 or ``per_elt_axis`` is not an int, a
            sequence of ints or ``None``.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.experimental.aggregating import average_incrementally_updates
        >>> agg = average_incrementally_updates(per_elt_axis=0, accumulation_steps=2)
        >>> state = agg.init(jnp.zeros(1))
        >>> _, state = agg.update(jnp.array([[1.0], [3.0]]), state)  # micro-batch mean 2
        >>> out, state = agg.update(jnp.array([[5.0], [7.0]]), state)  # micro-batch mean 6
        >>> print(out)
        [4.]
    """
    if per_elt_axis is None:
        return accumulate_avg_updates(accumulation_steps)
    call = "average_incrementally_updates"
    return _average_then_accumulate(_axis_tuple(call, per_elt_axis), _steps(call, accumulation_steps))


# --------------------------------------------------------------------------------------------------
# Mean and variance of per-example gradients.
# --------------------------------------------------------------------------------------------------


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
    axes = _axis_tuple("get_batch_size_from_per_elt_updates", per_elt_axis)
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
    squared deviations from it."""

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

    per_elt_axis: Any = static_field(default=0)
    accumulation_steps: int = static_field(default=1)

    def __post_init__(self) -> None:
        name = type(self).__name__
        object.__setattr__(self, "per_elt_axis", _axis_tuple(name, self.per_elt_axis))
        object.__setattr__(self, "accumulation_steps", _steps(name, self.accumulation_steps))

    def init(self, params: Params) -> PerElementMeanAndSumSqDiffGradsState | EmptyState:
        if self.accumulation_steps == 1:
            return EmptyState()
        return PerElementMeanAndSumSqDiffGradsState(
            micro_step=zero_count(),
            ready=jnp.asarray(False),
            mean_grads=tree.zeros_like(params),
            sum_sq_diff_grads=tree.zeros_like(params),
        )

    def update(self, updates: PerElementUpdates, state: Any, params: Params | None = None, **extra: Any):
        del params, extra
        ax = self.per_elt_axis
        batch = get_batch_size_from_per_elt_updates(updates, ax)
        stats = jax.tree.map(lambda x: _mean_and_sum_sq_diff(x, ax), updates)
        mean, ssd = tree.unzip2(updates, stats)
        if self.accumulation_steps == 1:
            return (mean, {"sum_sq_diff_grads": ssd, "sample_size": batch}), state
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
            mean_grads=_ready_select(ready, zeros[0], new_mean),
            sum_sq_diff_grads=_ready_select(ready, zeros[1]["sum_sq_diff_grads"], new_ssd),
        )
        return _ready_select(ready, outputs, zeros), new_state


class PerElementMeanAndVarianceEMAState(NamedTuple):
    """State of :func:`track_per_element_mean_and_variance_with_ema`: the number of updates tracked, the decay,
    and the (biased) exponential moving averages of the gradient mean and of the per-example variance."""

    count: jax.Array  # int32
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

    ema_decay: Any = 0.9

    def __post_init__(self) -> None:
        self._check_range("ema_decay", 0.0, 1.0, hi_open=True)

    def init(self, params: Params) -> PerElementMeanAndVarianceEMAState:
        return PerElementMeanAndVarianceEMAState(
            count=zero_count(),
            ema_decay=jnp.asarray(self.ema_decay, tree.widest_real_dtype(params)),
            mean_grads_ema=tree.zeros_like(params),
            variance_grads_ema=tree.zeros_like(params),
        )

    def update(
        self, updates: Updates, state: PerElementMeanAndVarianceEMAState, params: Params | None = None, **extra: Any
    ):
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


# --------------------------------------------------------------------------------------------------
# process: preprocessor -> aggregator -> postprocessor.
# --------------------------------------------------------------------------------------------------


@pytree_class
class _process(GradientTransformation):
    """See :func:`process`."""

    preprocessor: Any
    aggregator: Any
    postprocessor: Any
    aggregator_has_aux: bool = static_field(default=False)

    def init(self, params: Params) -> tuple[Any, Any, Any]:
        return self.preprocessor.init(params), self.aggregator.init(params), self.postprocessor.init(params)

    def update(
        self, updates: PerElementUpdates, state: tuple[Any, Any, Any], params: Params | None = None, **extra: Any
    ):
        pre_state, agg_state, post_state = state
        per_elt, pre_state = self.preprocessor.update(updates, pre_state, params, **extra)
        aggregated, agg_state = self.aggregator.update(per_elt, agg_state, params, **extra)
        if self.aggregator_has_aux:
            aggregated, aux = aggregated
            extra = {**extra, **aux}
        ready = tree.get(agg_state, "ready", True)

        def post(u: Any, s: Any, p: Any, kw: dict[str, Any]) -> tuple[Any, Any]:
            return self.postprocessor.update(u, s, p, **kw)

        def skip(u: Any, s: Any, p: Any, kw: dict[str, Any]) -> tuple[Any, Any]:
            out_struct = jax.eval_shape(post, u, s, p, kw)[0]
            return tree.zeros_like(out_struct), s

        if isinstance(ready, bool):
            out, post_state = (
                post(aggregated, post_state, params, extra) if ready else skip(aggregated, post_state, params, extra)
            )
        else:
            out, post_state = jax.lax.cond(ready, post, skip, aggregated, post_state, params, extra)
        return out, (pre_state, agg_state, post_state)

    def __repr__(self) -> str:
        parts = [
            f"preprocessor={self.preprocessor!r}",
            f"aggregator={self.aggregator!r}",
            f"postprocessor={self.postprocessor!r}",
            f"aggregator_has_aux={self.aggregator_has_aux}",
        ]
        return "process(" + ", ".join(parts) + ")"


@pytree_class
class _process_aggregator(_process, Aggregator):
    """:func:`process` of an :class:`Aggregator`: an Aggregator itself."""


def process(
    preprocessor: GradientTransformation,
    aggregator: GradientTransformation | Aggregator,
    postprocessor: GradientTransformation,
    aggregator_has_aux: bool = False,
) -> GradientTransformation | Aggregator:
    """Per-example updates through ``preprocessor``, then ``aggregator``, then ``postprocessor``.

    ``update(g)`` computes ``p = preprocessor(g)`` (per example, e.g. clipping each example's gradient),
    ``a = aggregator(p)`` (e.g. the batch mean, accumulated over micro-batches) and returns
    ``postprocessor(a)`` (e.g. an optimizer). When the aggregator's state has a ``ready`` flag (accumulation),
    the postprocessor runs (under ``lax.cond``) only on ready steps; on the others the update is zeros and the
    postprocessor's state is unchanged. With ``aggregator_has_aux`` the aggregator returns ``(a, aux_dict)``
    and ``aux_dict`` is passed to the postprocessor as extra keyword arguments.

    Args:
        preprocessor: a transformation of the per-example updates.
        aggregator: a transformation (or :class:`Aggregator`) reducing them to one update.
        postprocessor: a transformation of the aggregated update.
        aggregator_has_aux: whether the aggregator returns ``(updates, aux_dict)`` (default ``False``).

    Returns:
        A transformation with state ``(preprocessor_state, aggregator_state, postprocessor_state)``; an
        :class:`Aggregator` when ``aggregator`` is one.

    Raises:
        TypeError: if an argument is not a transformation (has no ``init`` and ``update``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import gradtx
        >>> from gradtx.experimental import aggregating
        >>> opt = aggregating.process(
        ...     gradtx.identity(), aggregating.average_per_element_updates(), gradtx.sgd(learning_rate=0.1))
        >>> loss = lambda w, x, y: jnp.sum((x @ w - y) ** 2)
        >>> xs, ys, w = jnp.eye(2), jnp.array([1.0, 3.0]), jnp.zeros(2)
        >>> per_example_grads = jax.vmap(jax.grad(loss), (None, 0, 0))(w, xs, ys)
        >>> updates, state = opt.update(per_example_grads, opt.init(w))
        >>> print(updates)  # -0.1 * the mean gradient [-1, -3]
        [0.1 0.3]
    """
    if not isinstance(aggregator_has_aux, (bool, np.bool_)):
        raise ValueError(f"process(aggregator_has_aux={aggregator_has_aux!r}): aggregator_has_aux must be a bool")
    cls = _process_aggregator if isinstance(aggregator, Aggregator) else _process
    return cls(
        as_transformation(preprocessor, "process"),
        as_transformation(aggregator, "process"),
        as_transformation(postprocessor, "process"),
        bool(aggregator_has_aux),
    )


def add_mean_variance_to_opt(
    opt: GradientTransformation,
    ema_decay: Any = 0.9,
    per_elt_axis: int | Sequence[int] = 0,
    accumulation_steps: int = 1,
) -> GradientTransformation | Aggregator:
    """``opt`` driven by per-example gradients, tracking moving averages of their mean and variance.

    ``process(identity(), get_per_element_mean_and_sum_sq_diff_grads(per_elt_axis, accumulation_steps),
    chain(track_per_element_mean_and_variance_with_ema(ema_decay), opt), aggregator_has_aux=True)``: ``opt``
    steps on the batch-mean gradient (pooled over ``accumulation_steps`` micro-batches), and
    :func:`get_unbiased_mean_and_variance_ema` reads the averages of the gradient mean and of the per-example
    variance from the state (a gradient-noise diagnostic).

    Args:
        opt: the optimizer applied to the mean gradient.
        ema_decay: the decay of the moving averages, in [0, 1) (default 0.9).
        per_elt_axis: the batch axis of the per-example gradients (default 0).
        accumulation_steps: micro-batches per optimizer step, an integer >= 1 (default 1).

    Returns:
        An :class:`Aggregator`: feed it per-example gradients.

    Raises:
        ValueError: for an invalid ``ema_decay``, ``per_elt_axis`` or ``accumulation_steps``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import gradtx
        >>> from gradtx.experimental import aggregating
        >>> opt = aggregating.add_mean_variance_to_opt(gradtx.sgd(learning_rate=0.1), ema_decay=0.9)
        >>> loss = lambda w, x, y: jnp.sum((x @ w - y) ** 2)
        >>> xs, ys, w = jnp.eye(2), jnp.array([1.0, 3.0]), jnp.zeros(2)
        >>> per_example_grads = jax.vmap(jax.grad(loss), (None, 0, 0))(w, xs, ys)  # [[-2, 0], [0, -6]]
        >>> updates, state = opt.update(per_example_grads, opt.init(w))
        >>> mean, variance = aggregating.get_unbiased_mean_and_variance_ema(state)
        >>> print(updates, mean.round(4), variance.round(4))
        [0.1 0.3] [-1. -3.] [ 2. 18.]
    """
    return process(
        identity(),
        get_per_element_mean_and_sum_sq_diff_grads(per_elt_axis, accumulation_steps),
        chain(track_per_element_mean_and_variance_with_ema(ema_decay), opt),
        aggregator_has_aux=True,
    )
