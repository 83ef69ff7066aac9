"""An Equinox MLP trained with ``optax.chain(optax.clip_by_global_norm(1.0), optax.adam(...))`` and a warmup
cosine schedule, the loop of Equinox's "train a model with Optax" tutorial."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

rng = np.random.default_rng(42)
x = rng.normal(size=(128, 3)).astype(np.float32)
y = np.stack([np.sin(x[:, 0]) * x[:, 1], np.cos(x[:, 2])], axis=-1)

model = eqx.nn.MLP(in_size=3, out_size=2, width_size=16, depth=1, activation=jax.nn.softplus, key=jax.random.key(0))
schedule = optax.warmup_cosine_decay_schedule(
    init_value=0.0, peak_value=1e-2, warmup_steps=10, decay_steps=100, end_value=1e-3
)
optim = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(learning_rate=schedule))
opt_state = optim.init(eqx.filter(model, eqx.is_array))


@eqx.filter_value_and_grad
def compute_loss(model, x, y):
    pred = jax.vmap(model)(x)
    return jnp.mean(optax.losses.l2_loss(pred, y))


@eqx.filter_jit
def make_step(model, opt_state, x, y):
    loss, grads = compute_loss(model, x, y)
    updates, opt_state = optim.update(grads, opt_state, eqx.filter(model, eqx.is_array))
    model = eqx.apply_updates(model, updates)
    return loss, model, opt_state


losses = []
for step in range(100):
    batch = slice((step * 32) % 128, (step * 32) % 128 + 32)
    loss, model, opt_state = make_step(model, opt_state, x[batch], y[batch])
    losses.append(float(loss))
