"""Bad hyperparameters raise ValueError at construction naming the call, the value and the valid range."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import pytest

import gradtx

CASES = [
    (lambda: gradtx.scale_by_adam(b1=1.2), "scale_by_adam(b1=1.2): b1 must be in [0, 1)"),
    (lambda: gradtx.scale_by_adam(b2=-0.1), "scale_by_adam(b2=-0.1): b2 must be in [0, 1)"),
    (lambda: gradtx.scale_by_adam(eps=-1e-8), "scale_by_adam(eps=-1e-08): eps must be >= 0"),
    (lambda: gradtx.adam(1e-3, b1=1.0), "adam(b1=1.0): b1 must be in [0, 1)"),
    (lambda: gradtx.adam(math.nan), "adam(learning_rate=nan): learning_rate must be finite"),
    (lambda: gradtx.sgd(math.inf), "sgd(learning_rate=inf): learning_rate must be finite"),
    (lambda: gradtx.sgd(0.1, momentum=1.5),
     "sgd(momentum=1.5): momentum was given to trace as decay: decay must be in [0, 1]"),
    (lambda: gradtx.ema(-0.5), "ema(decay=-0.5): decay must be in [0, 1]"),
    (lambda: gradtx.bias_correction(1.0), "bias_correction(decay=1.0): decay must be in [0, 1)"),
    (lambda: gradtx.scale_by_rms(decay=2.0), "scale_by_rms(decay=2.0): decay must be in [0, 1]"),
    (lambda: gradtx.scale_by_rms(eps=-1.0), "scale_by_rms(eps=-1.0): eps must be >= 0"),
    (lambda: gradtx.scale_by_rms(None, bias_correction=True),
     "scale_by_rms(bias_correction=True): bias_correction must be False with decay=None"),
    (lambda: gradtx.scale_by_rms(0.9, bias_correction=True, init_from_first=True),
     "scale_by_rms(bias_correction=True): bias_correction must be False with init_from_first=True"),
    (lambda: gradtx.scale_by_rms(None, initial_scale=1.0),
     "scale_by_rms(initial_scale=1.0): initial_scale must be 0 with decay=None"),
    (lambda: gradtx.rmsprop(0.1, decay=None, centered=True), "rmsprop(centered=True): centered is not available"),
    (lambda: gradtx.scale_by_rss(initial_accumulator_value=-1.0),
     "scale_by_rss(initial_accumulator_value=-1.0): initial_accumulator_value must be >= 0"),
    (lambda: gradtx.scale_by_stddev(decay=1.1), "scale_by_stddev(decay=1.1): decay must be in [0, 1]"),
    (lambda: gradtx.clip(-1.0), "clip(max_delta=-1.0): max_delta must be >= 0"),
    (lambda: gradtx.clip_by_global_norm(-1.0), "clip_by_global_norm(max_norm=-1.0): max_norm must be >= 0"),
    (lambda: gradtx.scale(math.nan), "scale(step_size=nan): step_size must be finite"),
    (lambda: gradtx.adamw(1e-3, weight_decay=math.inf),
     "adamw(weight_decay=inf): weight_decay must be finite"),
    (lambda: gradtx.scale_by_adam(b1="0.9"), "scale_by_adam(b1='0.9'): b1 must be a real number in [0, 1), not str"),
    (lambda: gradtx.scale_by_schedule(0.1), "scale_by_schedule(step_size_fn=0.1): step_size_fn must be a callable"),
    (lambda: gradtx.linear_schedule(1.0, 0.0, 0), "linear_schedule(transition_steps=0): transition_steps must be > 0"),
]


@pytest.mark.parametrize("make,message", CASES, ids=[m.split(":")[0] for _, m in CASES])
def test_bad_hyperparameter_raises_at_construction(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value).startswith(message), str(info.value)


def test_traced_values_are_not_checked():
    # Under jit the value is unknown at construction: no check, no error.
    out = jax.jit(lambda b1: gradtx.scale_by_adam(b1=b1).update(jnp.ones(2), gradtx.scale_by_adam().init(
        jnp.ones(2)))[0])(jnp.float32(0.5))
    assert out.shape == (2,)


def test_non_transformation_in_chain_is_a_type_error():
    with pytest.raises(TypeError, match=r"chain: expected a transformation with init and update, got 3"):
        gradtx.chain(gradtx.identity(), 3)
