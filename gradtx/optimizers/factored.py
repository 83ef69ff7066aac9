"""Memory-efficient optimizers: second moments with sublinear memory.

=========  =======================================================================================
adafactor  scale_by_factored_rms -> [clip_by_block_rms] -> [lr] -> [scale_by_param_block_rms]
           -> [ema(momentum)] -> [add_decayed_weights] -> scale(-1)          (Shazeer & Stern 2018)
sm3        scale_by_sm3 -> scale_by_learning_rate                            (Anil et al. 2019)
=========  =======================================================================================

Blocks in brackets are present only when their argument asks for them; like Optax, the chain then holds
only the blocks present (no identity placeholders), so the state has Optax's layout.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import DTypeLike

from gradtx.base import GradientTransformation, MaskOrFn, Scalar, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.fields import Check, recipe
from gradtx.transforms import add_decayed_weights, ema, scale, scale_by_learning_rate
from gradtx.transforms.factored import scale_by_factored_rms, scale_by_sm3
from gradtx.transforms.normalization import clip_by_block_rms, scale_by_param_block_rms

__all__ = ["adafactor", "sm3"]


def _present(*transforms: GradientTransformation | None) -> tuple[GradientTransformation, ...]:
    """The transformations that are not None, in order (the optional blocks of a recipe)."""
    return tuple(t for t in transforms if t is not None)


@recipe(off_when_none=("clipping_threshold",))
def adafactor(
    learning_rate: ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: Scalar = 0.8,
    decay_offset: int = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: Scalar | None = 1.0,
    momentum: Scalar | None = None,
    dtype_momentum: DTypeLike | None = jnp.float32,
    weight_decay_rate: ScalarOrSchedule | None = None,
    eps: Scalar = 1e-30,
    factored: bool = True,
    weight_decay_mask: MaskOrFn = None,
) -> chain:
    """Adafactor: Adam's scaling with a factored second moment, in memory linear in the rows plus columns.

    Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML,
    arXiv 1804.04235, Algorithms 4 and 5::

        u = -(ema_momentum(lr * max(rms(p), 1e-3) * clip(g / sqrt(V_hat))) + weight_decay_rate * p)

    with ``V_hat`` the factored estimate of ``scale_by_factored_rms`` (for a matrix, the outer product of
    its row and column averages of ``g^2``; for smaller leaves the full average), decaying with
    ``beta_k = 1 - (k - decay_offset + 1)^(-decay_rate)`` (``k`` the 0-based step), and ``clip`` the
    block-RMS clipping at ``clipping_threshold``. Each optional part is off when its argument is None (or
    False): no clipping, no learning rate (``multiply_by_parameter_scale`` alone sets the step, the paper's
    relative step size), no momentum, no weight decay. Like Optax, the chain holds only the blocks present,
    so the state has Optax's layout.

    Chain: ``scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)`` ->
    [``clip_by_block_rms(clipping_threshold)``] -> [``scale_by_learning_rate(learning_rate,
    flip_sign=False)``] -> [``scale_by_param_block_rms()``] -> [``ema(momentum, debias=False,
    accumulator_dtype=dtype_momentum)``] -> [``add_decayed_weights(weight_decay_rate, weight_decay_mask)``]
    -> ``scale(-1.0)``; blocks in brackets only when their argument asks for them.

    Args:
      learning_rate: the step size: a finite number, a schedule ``count -> lr`` of the 0-based step count, or
        None for no learning-rate block (the relative step size of ``multiply_by_parameter_scale`` only).
        Default None.
      min_dim_size_to_factor: a leaf's second moment is factored only if its two largest axes both have at
        least this many entries; a whole number >= 0. Default 128.
      decay_rate: the exponent of the decay schedule ``1 - t^(-decay_rate)``, >= 0. Default 0.8.
      decay_offset: a whole number of steps the decay schedule is delayed by (``scale_by_factored_rms``'s
        ``step_offset``). Default 0.
      multiply_by_parameter_scale: multiply each leaf's step by ``max(rms(p), 1e-3)``, the paper's relative
        step size. Default True.
      clipping_threshold: clip each leaf's scaled update to this root mean square, > 0, or None for no
        clipping. Default 1.0.
      momentum: the decay of a (not debiased) average of the updates, in [0, 1], or None for no momentum.
        Default None.
      dtype_momentum: the dtype the momentum is stored in, a floating dtype or None for the parameters'
        dtype. Default ``jnp.float32``.
      weight_decay_rate: the decay ``weight_decay_rate * p`` added after the scaling (not multiplied by the
        learning rate), a finite number or a schedule, or None for no decay. Default None.
      eps: added to ``g^2`` before averaging, >= 0 (the paper's ``epsilon_1``). Default 1e-30.
      factored: factor the second moment of the leaves that are large enough (False: a full second
        moment, as Adam). Default True.
      weight_decay_mask: which parameters decay: None (all), a pytree of booleans shaped like the parameters
        (or a prefix of them), or a function ``params -> such a pytree``. Default None.

    Returns:
      A ``chain`` of the blocks present; its state starts with ``FactoredState(count, v_row, v_col, v)`` and
      holds one entry per block (``EmptyState()`` for the stateless ones, ``EmaState`` for the momentum).

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``adafactor(clipping_threshold=0.0):
        clipping_threshold was given to clip_by_block_rms as threshold: threshold must be > 0`` or
        ``adafactor(min_dim_size_to_factor=1.5): min_dim_size_to_factor must be a whole number >= 0``.
      TypeError: for an argument of the wrong kind, e.g. ``adafactor(decay_rate=None): decay_rate must be a
        real number in [0, inf), not None`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.adafactor(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # -lr * rms(w) * sign(g), rms(w) = sqrt(2.5)
      [ 0.84189 -1.84189]
    """
    # The arguments that choose blocks rather than reach one, checked all the same.
    Check("flag")("adafactor", "multiply_by_parameter_scale", multiply_by_parameter_scale)
    if momentum is None:
        Check("dtype", optional=True)("adafactor", "dtype_momentum", dtype_momentum)
    return chain(
        *_present(
            scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps),
            clip_by_block_rms(clipping_threshold) if clipping_threshold is not None else None,
            scale_by_learning_rate(learning_rate, flip_sign=False) if learning_rate is not None else None,
            scale_by_param_block_rms() if multiply_by_parameter_scale else None,
            ema(momentum, debias=False, accumulator_dtype=dtype_momentum) if momentum is not None else None,
            add_decayed_weights(weight_decay_rate, weight_decay_mask) if weight_decay_rate is not None else None,
            scale(-1.0),
        )
    )


@recipe(off_when_none=("momentum",))
def sm3(learning_rate: ScalarOrSchedule, momentum: Scalar | None = 0.9) -> chain:
    """SM3: Adagrad with a cover of maxima as memory, sublinear in the size of each matrix.

    Anil, Gupta, Koren & Singer 2019, "Memory-Efficient Adaptive Optimization", NeurIPS, arXiv 1901.11150
    (SM3-II). For a leaf of rank >= 2 one accumulator per row, per column, ... replaces Adagrad's one per
    entry::

        nu'(i)  = g(i)^2 + min_a mu_a(i_a)          (each entry's accumulator, from its slices)
        mu_a(j) = max_{i : i_a = j} nu'(i)           (stored)
        m_k     = momentum m_{k-1} + (1 - momentum) g / sqrt(nu')
        u_k     = -lr_k m_k

    Vectors and scalars keep one accumulator per entry (diagonal Adagrad). The momentum average is not
    debiased, so the first step is ``(1 - momentum)`` times Adagrad's. Real parameters only.

    Chain: ``scale_by_sm3(momentum)`` -> ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count.
        Required.
      momentum: the momentum decay, in [0, 1], or None (or 0) for no momentum. Default 0.9.

    Returns:
      A ``chain`` whose state is ``(ScaleBySM3State(mu, nu), <learning-rate state>)``: ``mu`` holds the list
      of accumulators of each leaf, ``nu`` the momentum.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``sm3(momentum=1.5): momentum was given to
        scale_by_sm3 as b1: b1 must be in [0, 1]``.
      TypeError: for an argument of the wrong kind, e.g. ``sm3(learning_rate=None): learning_rate must be a
        finite real number or a schedule count -> value, not None`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.sm3(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # -lr * (1 - momentum) * sign(g)
      [ 0.99 -1.99]
    """
    return chain(scale_by_sm3(0.0 if momentum is None else momentum), scale_by_learning_rate(learning_rate))
