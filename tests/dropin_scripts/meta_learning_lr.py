"""Meta-learning the learning rate of RMSProp through ``optax.inject_hyperparams`` (the pattern of Optax's
"meta-learning" example): the outer Adam optimizer follows the gradient of the post-step loss with respect
to the inner learning rate."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

rng = np.random.default_rng(0)
xs = rng.normal(size=(100, 2)).astype(np.float32)
ys = (xs @ np.array([2.0, -1.0]) + 0.5 + 0.1 * rng.normal(size=100)).astype(np.float32)


def loss_fn(theta, x, y):
    return jnp.mean(optax.losses.squared_error(x @ theta["w"] + theta["b"], y))


optimizer = optax.inject_hyperparams(optax.rmsprop)(learning_rate=1e-2)
meta_opt = optax.adam(learning_rate=0.05)


def step(theta, state, x, y):
    grads = jax.grad(loss_fn)(theta, x, y)
    updates, state = optimizer.update(grads, state)
    return optax.apply_updates(theta, updates), state


def outer_loss(eta, theta, state, x, y):
    state.hyperparams["learning_rate"] = jax.nn.sigmoid(eta)
    theta, state = step(theta, state, x, y)
    return loss_fn(theta, x, y), (theta, state)


@jax.jit
def outer_step(eta, theta, meta_state, state, x, y):
    (loss, (theta, state)), grad = jax.value_and_grad(outer_loss, has_aux=True)(eta, theta, state, x, y)
    meta_updates, meta_state = meta_opt.update(grad, meta_state)
    eta = optax.apply_updates(eta, meta_updates)
    return eta, theta, meta_state, state, loss


theta = {"w": jnp.zeros(2), "b": jnp.zeros(())}
state = optimizer.init(theta)
eta = jnp.asarray(-4.0)
meta_state = meta_opt.init(eta)
losses, learning_rates = [], []
for i in range(100):
    batch = slice((i * 20) % 100, (i * 20) % 100 + 20)
    eta, theta, meta_state, state, loss = outer_step(eta, theta, meta_state, state, xs[batch], ys[batch])
    losses.append(float(loss))
    learning_rates.append(float(state.hyperparams["learning_rate"]))
assert learning_rates[-1] > 3 * learning_rates[0]  # the outer loop learned to step faster
