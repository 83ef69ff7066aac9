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

from typing import Any

import jax.numpy as jnp

from gradtx.base import GradientTransformation
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
    learning_rate: Any = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: Any = 0.8,
    decay_offset: Any = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: Any = 1.0,
    momentum: Any = None,
    dtype_momentum: Any = jnp.float32,
    weight_decay_rate: Any = None,
    eps: Any = 1e-30,
    factored: bool = True,
    weight_decay_mask: Any = None,
) -> chain:
    """Adafactor (Shazeer & Stern 2018, arXiv 1804.04235): Adam's scaling with a factored second moment.

    ``u = -(ema_momentum(lr * max(rms(p), 1e-3) * clip(g / sqrt(V_hat))) + weight_decay_rate * p)`` with
    ``V_hat`` the factored estimate of ``scale_by_factored_rms`` and ``clip`` the block-RMS clipping at
    ``clipping_threshold``. Each optional part is off when its argument is None (or False): no clipping,
    no learning rate (``multiply_by_parameter_scale`` alone sets the step, the paper's relative step
    size), no momentum, no weight decay. ``learning_rate`` and ``weight_decay_rate`` may be schedules.
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
def sm3(learning_rate: Any, momentum: Any = 0.9) -> chain:
    """SM3 (Anil, Gupta, Koren & Singer 2019, arXiv 1901.11150): Adagrad with a cover of maxima as memory.

    ``u = -learning_rate * m`` with ``m`` the momentum (decay ``momentum``) of ``g / sqrt(nu)``, ``nu``
    SM3-II's accumulator (``scale_by_sm3``). ``momentum=None`` (or 0) uses no momentum.
    """
    return chain(scale_by_sm3(0.0 if momentum is None else momentum), scale_by_learning_rate(learning_rate))
