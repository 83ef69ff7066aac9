"""Gradient accumulation with ``optax.MultiSteps``: an MLP regression where every 4 micro-batches make one
Adam step (the pattern of Optax's "gradient accumulation" guide)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

rng = np.random.default_rng(0)
x = rng.uniform(-3.0, 3.0, size=(256, 1)).astype(np.float32)
y = (np.sin(x) + 0.1 * rng.normal(size=x.shape)).astype(np.float32)

params = {
    "hidden": {"w": jnp.asarray(0.5 * rng.normal(size=(1, 32)), jnp.float32), "b": jnp.zeros(32)},
    "out": {"w": jnp.asarray(0.2 * rng.normal(size=(32, 1)), jnp.float32), "b": jnp.zeros(1)},
}


def predict(params, x):
    h = jnp.tanh(x @ params["hidden"]["w"] + params["hidden"]["b"])
    return h @ params["out"]["w"] + params["out"]["b"]


def loss_fn(params, x, y):
    return optax.l2_loss(predict(params, x), y).mean()


optimizer = optax.MultiSteps(optax.adam(learning_rate=3e-2), every_k_schedule=4)
opt_state = optimizer.init(params)


@jax.jit
def train_step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, loss


losses = []
micro_batch = 32
for step in range(100):
    start = (step * micro_batch) % x.shape[0]
    params, opt_state, loss = train_step(
        params, opt_state, x[start : start + micro_batch], y[start : start + micro_batch]
    )
    losses.append(float(loss))
assert np.asarray(opt_state.gradient_step) == 25  # 100 micro-batches made 25 Adam steps
