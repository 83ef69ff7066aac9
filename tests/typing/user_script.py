"""A typed user script: pyright must accept it and infer the type written in each line's revealed comment."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from typing_extensions import reveal_type

import gradtx

params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
schedule = gradtx.warmup_cosine_decay_schedule(0.0, 1e-3, 10, 100)
opt = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(schedule, weight_decay=1e-4))
mixed = gradtx.chain(optax.clip(1.0), gradtx.adam(1e-3))  # an Optax transformation composes too
block = gradtx.scale_by_adam(b1=0.9, b2=0.999)


def custom_lr(step: jax.Array) -> jax.Array:
    return 1e-3 * jnp.minimum(1.0, step / 100)


with_fn = gradtx.sgd(learning_rate=custom_lr, momentum=0.9)

state = opt.init(params)
reveal_type(state)  # revealed: tuple[Any, ...]
block_state = block.init(params)
reveal_type(block_state)  # revealed: ScaleByAdamState
grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
updates, state = opt.update(grads, state, params)
reveal_type(opt.update(grads, state, params))  # revealed: tuple[Any, tuple[Any, ...]]
new_params = gradtx.apply_updates(params, updates)
reveal_type(new_params)  # revealed: dict[str, Array]
reveal_type(opt)  # revealed: chain
reveal_type(gradtx.adam(1e-3))  # revealed: chain
