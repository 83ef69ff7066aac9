"""``process``: per-example updates through a preprocessor, an aggregator and a postprocessor; and
``add_mean_variance_to_opt``, an optimizer that also tracks the mean and variance of per-example gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import jax

from gradtx import tree
from gradtx.base import GradientTransformation, Params, Scalar, as_transformation, identity
from gradtx.combine import chain
from gradtx.experimental.aggregating.aggregator import Aggregator, PerElementUpdates
from gradtx.experimental.aggregating.variance import (
    get_per_element_mean_and_sum_sq_diff_grads,
    track_per_element_mean_and_variance_with_ema,
)
from gradtx.fields import flag, option, pytree_class, recipe

__all__ = ["add_mean_variance_to_opt", "process"]


@pytree_class
class _process(GradientTransformation):
    """See :func:`process`."""

    preprocessor: Any = option(accepts="a transformation")
    aggregator: Any = option(accepts="a transformation or an Aggregator")
    postprocessor: Any = option(accepts="a transformation")
    aggregator_has_aux: bool = flag(default=False)

    def __check_init__(self) -> None:
        for name in ("preprocessor", "aggregator", "postprocessor"):
            object.__setattr__(self, name, as_transformation(getattr(self, name), "process"))

    def init(self, params: Params) -> tuple[Any, Any, Any]:
        return self.preprocessor.init(params), self.aggregator.init(params), self.postprocessor.init(params)

    def update(
        self, updates: PerElementUpdates, state: tuple[Any, Any, Any], params: Params | None = None, **extra: Any
    ) -> tuple[Any, tuple[Any, Any, Any]]:
        pre_state, agg_state, post_state = state
        per_elt, pre_state = self.preprocessor.update(updates, pre_state, params, **extra)
        aggregated, agg_state = self.aggregator.update(per_elt, agg_state, params, **extra)
        if self.aggregator_has_aux:
            aggregated, aux = aggregated
            extra = {**extra, **aux}
        ready = tree.get(agg_state, "ready", True)

        def post(u: Any, s: Any, p: Any, kw: dict[str, Any]) -> tuple[Any, Any]:
            return cast(tuple[Any, Any], self.postprocessor.update(u, s, p, **kw))

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


@recipe
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
        TypeError: if an argument is not a transformation (has no ``init`` and ``update``), or
            ``aggregator_has_aux`` is not ``True`` or ``False`` (that error is also a ``ValueError``).

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
    cls = _process_aggregator if isinstance(aggregator, Aggregator) else _process
    return cls(preprocessor, aggregator, postprocessor, aggregator_has_aux)


@recipe
def add_mean_variance_to_opt(
    opt: GradientTransformation,
    ema_decay: Scalar = 0.9,
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
