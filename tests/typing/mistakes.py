"""Typical mistakes: pyright must report an error on every line with an error comment, and nowhere else."""

from __future__ import annotations

import jax.numpy as jnp

import gradtx

params = {"w": jnp.zeros(3)}

gradtx.adam(learning_rate="0.001")  # error: a string learning rate
gradtx.sgd("0.1")  # error: a string learning rate, positionally
gradtx.scale_by_adam(b1="0.9")  # error: a string hyperparameter of a block
gradtx.chain(gradtx.adam, gradtx.scale(0.1))  # error: the recipe itself, not a transformation
gradtx.chain(gradtx.adam(1e-3), 3)  # error: a number in a chain
gradtx.MultiSteps("adam", every_k_schedule=2)  # error: a string where a transformation is expected

opt = gradtx.adam(1e-3)
state = opt.init(params)
opt.update(params, params, state)  # error: params passed where the optimizer state is expected


def bad_schedule(step: int) -> str:
    return "0.001"


gradtx.adam(learning_rate=bad_schedule)  # error: a schedule returning a string
gradtx.exponential_decay("0.1", 10, 0.5)  # error: a string schedule value
