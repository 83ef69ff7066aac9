"""Three ``optax.contrib`` patterns on one small regression: Adam followed by
``optax.contrib.reduce_on_plateau`` (the loss passed as ``value``), SAM (``optax.contrib.sam``) with its
adversarial normalized-SGD step, and ``optax.lookahead`` over Muon (``optax.contrib.muon``)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

rng = np.random.default_rng(3)
x = jnp.asarray(rng.normal(size=(64, 4)), jnp.float32)
y = jnp.tanh(x @ jnp.asarray(rng.normal(size=(4, 2)), jnp.float32)) + 0.05 * jnp.asarray(
    rng.normal(size=(64, 2)), jnp.float32
)
init = {
    "w1": jnp.asarray(rng.normal(size=(4, 8)) / 2, jnp.float32),
    "w2": jnp.asarray(rng.normal(size=(8, 2)) / 3, jnp.float32),
    "b": jnp.zeros(2),
}


def loss_fn(params):
    return jnp.mean(optax.l2_loss(jnp.tanh(x @ params["w1"]) @ params["w2"] + params["b"], y))


losses = []

# 1. Adam whose step shrinks when the loss plateaus.
opt = optax.chain(
    optax.adam(3e-2),
    optax.contrib.reduce_on_plateau(factor=0.5, patience=3, cooldown=2, rtol=1e-3, accumulation_size=2),
)
params, state = init, opt.init(init)


@jax.jit
def plateau_step(params, state):
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = opt.update(grads, state, params, value=loss)
    return optax.apply_updates(params, updates), state, loss


for _ in range(40):
    params, state, loss = plateau_step(params, state)
    losses.append(float(loss))

# 2. Sharpness-aware minimisation: one adversarial ascent step, then the real step.
sam_opt = optax.contrib.sam(optax.sgd(0.3), optax.chain(optax.contrib.normalize(), optax.sgd(0.05)), sync_period=2)
params, state = init, sam_opt.init(init)


@jax.jit
def sam_step(params, state):
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = sam_opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss


for _ in range(30):
    params, state, loss = sam_step(params, state)
    losses.append(float(loss))

# 3. Lookahead (slow weights synced every 4 steps) around Muon.
look = optax.lookahead(optax.contrib.muon(learning_rate=0.02), sync_period=4, slow_step_size=0.5)
params = optax.LookaheadParams.init_synced(init)
state = look.init(params)


@jax.jit
def lookahead_step(params, state):
    loss, grads = jax.value_and_grad(loss_fn)(params.fast)
    updates, state = look.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss


for _ in range(30):
    params, state, loss = lookahead_step(params, state)
    losses.append(float(loss))
