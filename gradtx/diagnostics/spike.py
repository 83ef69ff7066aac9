"""Spike guard: skip (or scale down) the steps whose loss or gradient norm is an outlier.

Large runs see sudden loss spikes; PaLM's authors restarted from a checkpoint before each one and skipped the
few hundred batches around it (Chowdhery et al. 2022, "PaLM: Scaling Language Modeling with Pathways",
arXiv 2204.02311, section 5.1), and spikes go with a sudden growth of the gradient norm (Takase, Kiyono,
Kobayashi & Suzuki, "Spike No More: Stabilizing the Pre-training of Large Language Models", arXiv 2312.16903).
``spike_guard(tx)`` does the skipping inside the optimizer, inside ``jit``, with no host synchronisation: it
keeps running statistics of the loss and of the global gradient norm, and treats a step whose z-score is above
a threshold as a spike. Z-scores of an exponentially weighted mean and variance of the gradient norm are also
the detector of ZClip (Kumar, Owen, Roy Chowdhury & Güra 2025, "ZClip: Adaptive Spike Mitigation for LLM
Pre-Training", arXiv 2504.02507), which clips instead of skipping (``mode="scale"`` here).

The statistics, for each watched signal ``x_t`` (the loss ``value`` and the norm ``||g_t||_2``)::

    alpha_n = max(1 - decay, 1 / (n + 1))          n: steps already absorbed into the statistics
    delta   = x_t - m
    m      <- m + alpha_n delta
    v      <- (1 - alpha_n) (v + alpha_n delta^2)
    z_t     = (x_t - m) / (sqrt(v) + eps)          with m, v before the update

While ``1 / (n + 1) > 1 - decay`` these are exactly the mean and the population variance of the ``n + 1``
absorbed values (Welford 1962, "Note on a method for calculating corrected sums of squares and products",
Technometrics 4(3)); afterwards they are the exponentially weighted mean and variance with weight ``1 - decay``
(West 1979, "Updating mean and variance estimates: an improved method", CACM 22(9); Finch 2009, "Incremental
calculation of weighted mean and variance"). So there is no bias toward the zero initial value and no bias
correction is needed.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import core as jax_core

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    OptState,
    Params,
    Scalar,
    TransformationLike,
    Updates,
    as_transformation,
    safe_int32_increment,
    zero_count,
)
from gradtx.fields import choice, hyper, integer, option, probability, pytree_class
from gradtx.tree.precision import widest_real_dtype

__all__ = ["SpikeGuardState", "spike_guard"]


class SpikeGuardState(NamedTuple):
    """State of :class:`spike_guard`.

    The statistics and z-scores are stored in the widest floating dtype of the parameters, at least float32.

    Attributes:
      num_observed: int32, steps absorbed into the statistics so far (warm-up lasts while it is below
        ``warmup_steps``); spikes that were skipped or scaled are not absorbed.
      loss_mean: the running mean of the loss (``value``); 0 when no ``value`` is passed.
      loss_var: the running variance of the loss; 0 when no ``value`` is passed.
      grad_norm_mean: the running mean of the global l2 norm of the incoming updates.
      grad_norm_var: the running variance of that norm.
      last_loss_z: the loss's z-score at the last step: 0 during warm-up and when no ``value`` is passed,
        ``+inf`` for a non-finite loss.
      last_grad_norm_z: the gradient norm's z-score at the last step: 0 during warm-up, ``+inf`` for a
        non-finite norm.
      last_scale: the factor the last gradient was multiplied by before the inner transformation: 1 on a
        normal step (or when the guard gave up), 0 on a skipped step, in (0, 1) on a scaled step.
      total_spikes: int32, spike steps since ``init`` (never reset; includes those the guard gave up on).
      consecutive_spikes: int32, spike steps in a row (reset to 0 by a normal step).
      inner_state: the inner transformation's state (unchanged by skipped steps).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.diagnostics.spike_guard(gradtx.sgd(0.1))
      >>> state = opt.init(jnp.zeros(2))
      >>> _, state = opt.update(jnp.array([3.0, 4.0]), state)
      >>> print(int(state.num_observed), float(state.grad_norm_mean), float(state.last_scale))
      1 5.0 1.0
    """

    num_observed: jax.Array
    loss_mean: jax.Array
    loss_var: jax.Array
    grad_norm_mean: jax.Array
    grad_norm_var: jax.Array
    last_loss_z: jax.Array
    last_grad_norm_z: jax.Array
    last_scale: jax.Array
    total_spikes: jax.Array
    consecutive_spikes: jax.Array
    inner_state: OptState


_MODES = ("skip", "scale")


@pytree_class
class spike_guard(GradientTransformation):
    """Skip (``mode="skip"``) or scale down (``mode="scale"``) the steps whose loss or gradient norm spikes.

    Watched signals: the global l2 norm of the incoming updates (before ``tx``, so before any clipping in it)
    and the loss, passed as the ``value`` extra keyword argument (``tx.update(g, state, params, value=loss)``,
    a real scalar). Without ``value`` only the gradient norm is watched; pass ``value`` at every step or at
    none. The statistics are the running mean ``m`` and variance ``v`` of the module docstring, and a step
    is a **spike** when, for either signal, ``z = (x - m) / (sqrt(v) + eps) > threshold`` after the warm-up
    (one-sided: a sudden drop is not a spike), or when the signal is not finite (an inf or NaN loss or
    gradient is a spike even during the warm-up).

    - ``mode="skip"``: a spike returns zero updates and leaves the inner state unchanged, as if the step had
      not happened (``tx`` does not run: the choice is a ``lax.cond`` on device, never a host sync).
    - ``mode="scale"``: the gradient is multiplied by ``s = min(s_norm, s_loss)`` before ``tx`` sees it, and
      ``tx``'s update of the scaled gradient is applied (its state advances). ``s_norm = (m + threshold
      (sqrt(v) + eps)) / ||g||`` when the norm spiked: the scaled norm lies exactly on the threshold, so its
      z-score is ``threshold`` (the clipping of ZClip with a fixed multiple); ``s_loss = threshold / z_loss``
      when the loss spiked (the loss has no scale of its own to clip to). A signal that did not spike
      contributes 1. A non-finite signal cannot be scaled and is skipped as in ``"skip"``.

    Spikes (skipped or scaled) are never absorbed into the statistics, which describe normal steps. After
    more than ``max_consecutive_spikes`` spikes in a row the guard gives up, as ``apply_if_finite`` does: the
    update is applied unchanged and, if finite, absorbed, until a normal step resets the count; so a genuine
    change of regime (a new data mixture, a learning-rate restart) is learned within a few steps instead of
    being skipped forever. ``None`` never gives up.

    The state is :class:`SpikeGuardState`: the statistics, the last z-scores and scale, and the counts.

    Steps that are not spikes are bit for bit the steps of ``tx`` alone: under ``jit`` each case (normal,
    scaled, skipped) is its own ``lax.cond``/``lax.switch`` branch, so no select is fused into ``tx``'s kernels
    (``tx.update`` is traced once per branch plus once by ``jax.eval_shape``); eagerly, where every operation
    runs on its own, ``tx`` runs once and ``where`` selects the result. gradtx's; Optax has no counterpart
    (``optax.apply_if_finite`` catches only non-finite steps).

    Args:
      tx: the inner transformation (anything with ``init`` and ``update``); it receives every extra keyword
        argument (``value`` included). Required.
      threshold: the z-score above which a step is a spike, in (0, inf). Default 6.0: with normally
        distributed fluctuations a false alarm has a probability of about 1e-9 per signal and step (real
        gradient norms have heavier tails; ZClip clips from 2.5 on).
      mode: ``"skip"`` or ``"scale"`` (static). Default ``"skip"``.
      decay: the weight of the past in the statistics, in [0, 1); ``1 / (1 - decay)`` steps is the memory.
        Default 0.99 (about 100 steps).
      warmup_steps: the number of absorbed steps before z-scores are trusted, a whole number >= 2.
        Default 20.
      max_consecutive_spikes: the spikes in a row after which the guard gives up, a whole number >= 0, or
        None to never give up. Default 10.
      eps: added to the standard deviation so a constant signal does not divide by zero, in (0, inf).
        Default 1e-8.

    Raises:
      ValueError: at construction, for an argument out of its range, e.g. ``spike_guard(decay=1.0): decay
        must be in [0, 1)`` or ``spike_guard(mode='clip'): mode must be one of 'skip', 'scale'``; in
        ``update``, for a ``value`` that is not a real scalar.
      TypeError: for a ``tx`` without ``init`` and ``update``, or an argument of the wrong kind (also a
        ``ValueError``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.diagnostics.spike_guard(gradtx.sgd(0.1), threshold=3.0, warmup_steps=2)
      >>> params = jnp.zeros(2)
      >>> state = opt.init(params)
      >>> for g in ([1.0, 0.0], [0.0, 1.1], [0.9, 0.0], [100.0, 0.0]):  # the last norm is an outlier
      ...     updates, state = opt.update(jnp.array(g), state, params)
      >>> print(updates, int(state.total_spikes), float(state.last_scale))  # skipped
      [0. 0.] 1 0.0
    """

    tx: TransformationLike = option(accepts="a transformation (anything with init and update)")
    threshold: Scalar = hyper(default=6.0, lo=0.0, hi=math.inf, lo_open=True, hi_open=True)
    mode: Literal["skip", "scale"] = choice(default="skip", choices=_MODES)
    decay: Scalar = probability(default=0.99)
    warmup_steps: int = integer(default=20, lo=2)
    max_consecutive_spikes: int | None = integer(default=10, lo=0, optional=True)
    eps: Scalar = hyper(default=1e-8, lo=0.0, hi=math.inf, lo_open=True, hi_open=True)

    def __check_init__(self) -> None:
        # A GradientTransformation(init, update) whose update takes no **kwargs is wrapped so that it does not
        # receive the extra arguments (value=...) this wrapper passes on.
        object.__setattr__(self, "tx", as_transformation(self.tx, "spike_guard"))

    def init(self, params: Params) -> SpikeGuardState:
        dt = widest_real_dtype(params)
        zero = jnp.zeros([], dt)
        return SpikeGuardState(
            num_observed=zero_count(),
            loss_mean=zero,
            loss_var=zero,
            grad_norm_mean=zero,
            grad_norm_var=zero,
            last_loss_z=zero,
            last_grad_norm_z=zero,
            last_scale=jnp.ones([], dt),
            total_spikes=zero_count(),
            consecutive_spikes=zero_count(),
            inner_state=self.tx.init(params),
        )

    def update(
        self, updates: Updates, state: SpikeGuardState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, SpikeGuardState]:
        dt = jnp.result_type(state.grad_norm_mean)
        threshold = tree.hyper(self.threshold, dt)
        eps = tree.hyper(self.eps, dt)
        warm = state.num_observed >= jnp.asarray(self.warmup_steps).astype(jnp.int32)
        inf = jnp.asarray(np.inf, dt)

        def zscore(x: jax.Array, mean: jax.Array, var: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            finite = jnp.isfinite(x)
            scale = jnp.sqrt(var) + eps
            z = jnp.where(finite, jnp.where(warm, (x - mean) / scale, jnp.zeros_like(x)), inf)
            return z, finite, jnp.logical_not(z <= threshold)  # a NaN z-score is a spike too

        norm = tree.norm(updates).astype(dt)
        z_norm, finite_norm, spike_norm = zscore(norm, state.grad_norm_mean, state.grad_norm_var)

        value = extra.get("value")
        if value is not None:
            value = jnp.asarray(value)
            if value.shape != () or jnp.issubdtype(value.dtype, jnp.complexfloating):
                raise ValueError(
                    "spike_guard.update: value must be the loss, a real scalar; "
                    f"got shape {value.shape} and dtype {value.dtype}"
                )
            loss = value.astype(dt)
            z_loss, finite_loss, spike_loss = zscore(loss, state.loss_mean, state.loss_var)
        else:
            loss = jnp.zeros([], dt)
            z_loss, finite_loss, spike_loss = jnp.zeros([], dt), jnp.array(True), jnp.array(False)

        spike = jnp.logical_or(spike_norm, spike_loss)
        finite = jnp.logical_and(finite_norm, finite_loss)
        consecutive = jnp.where(spike, safe_int32_increment(state.consecutive_spikes), zero_count())
        if self.max_consecutive_spikes is None:
            give_up = jnp.array(False)
        else:
            give_up = consecutive > jnp.asarray(self.max_consecutive_spikes).astype(jnp.int32)
        normal = jnp.logical_or(jnp.logical_not(spike), give_up)  # applied unchanged and absorbed (if finite)

        one, zero = jnp.ones([], dt), jnp.zeros([], dt)
        if self.mode == "scale":
            scaled = jnp.logical_and(jnp.logical_not(normal), finite)
            bound = state.grad_norm_mean + threshold * (jnp.sqrt(state.grad_norm_var) + eps)
            s_norm = jnp.where(spike_norm, bound / norm, one)
            s_loss = jnp.where(spike_loss, threshold / z_loss, one)
            s = jnp.minimum(s_norm, s_loss)
        else:
            scaled, s = jnp.array(False), one
        last_scale = jnp.where(normal, one, jnp.where(scaled, s, zero))

        def run(grads: Updates) -> Any:
            return self.tx.update(grads, state.inner_state, params, **extra)

        def scale_leaf(g: Any) -> Any:
            x = tree.Leaf(g)
            return x.out(x.cast(g) * x.cast(s))

        def scale(grads: Updates) -> Updates:
            return jax.tree.map(scale_leaf, grads)

        if isinstance(normal, jax_core.Tracer):
            # Traced (jit, scan, vmap): each case is its own branch, so a normal step computes exactly what tx
            # alone computes (a select after tx would let XLA fuse it into tx's kernels and round differently)
            # and a skipped step does not run tx at all.
            out_shape = jax.eval_shape(run, updates)

            def skip() -> Any:  # zero updates, inner state untouched: the step never happened for tx
                return jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), out_shape[0]), state.inner_state

            if self.mode == "scale":
                branch = jnp.where(normal, 0, jnp.where(scaled, 1, 2)).astype(jnp.int32)
                out, inner_state = jax.lax.switch(branch, [lambda: run(updates), lambda: run(scale(updates)), skip])
            else:
                out, inner_state = jax.lax.cond(normal, lambda: run(updates), skip)
        else:
            # Eager: every operation runs on its own, so selects give the same bits (and lax.cond would compile
            # its branches again at every eager call).
            fed = jax.tree.map(lambda a, g: jnp.where(scaled, a, g), scale(updates), updates)
            out, inner_state = run(fed)
            accept = jnp.logical_or(normal, scaled)
            out = jax.tree.map(lambda u: jnp.where(accept, u, jnp.zeros_like(u)), out)
            inner_state = jax.tree.map(
                lambda n, o: jnp.where(accept, n, o).astype(jnp.result_type(o)), inner_state, state.inner_state
            )

        absorb = jnp.logical_and(normal, finite)
        alpha = jnp.maximum(
            tree.hyper(1.0, dt) - tree.hyper(self.decay, dt),
            jnp.ones([], dt) / (state.num_observed.astype(dt) + jnp.ones([], dt)),
        )

        def absorbed(x: jax.Array, mean: jax.Array, var: jax.Array) -> tuple[jax.Array, jax.Array]:
            delta = x - mean
            new_mean = mean + alpha * delta
            new_var = (jnp.ones([], dt) - alpha) * (var + alpha * delta * delta)
            return jnp.where(absorb, new_mean, mean), jnp.where(absorb, new_var, var)

        grad_norm_mean, grad_norm_var = absorbed(norm, state.grad_norm_mean, state.grad_norm_var)
        if value is not None:
            loss_mean, loss_var = absorbed(loss, state.loss_mean, state.loss_var)
        else:
            loss_mean, loss_var = state.loss_mean, state.loss_var

        return out, SpikeGuardState(
            num_observed=jnp.where(absorb, safe_int32_increment(state.num_observed), state.num_observed),
            loss_mean=loss_mean,
            loss_var=loss_var,
            grad_norm_mean=grad_norm_mean,
            grad_norm_var=grad_norm_var,
            last_loss_z=z_loss,
            last_grad_norm_z=z_norm,
            last_scale=last_scale,
            total_spikes=jnp.where(spike, safe_int32_increment(state.total_spikes), state.total_spikes),
            consecutive_spikes=consecutive,
            inner_state=inner_state,
        )
