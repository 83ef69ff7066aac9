"""Per-example gradient clipping with ``optax.microbatching.micro_grad`` (a DP-SGD-style step without noise,
computed 8 examples at a time) and a memory-bounded evaluation with ``optax.microbatch``."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

rng = np.random.default_rng(1)
features = jnp.asarray(rng.normal(size=(64, 5)), jnp.float32)
w_true = jnp.asarray([1.5, -2.0, 0.5, 0.0, 1.0], jnp.float32)
targets = features @ w_true + 0.3 * jnp.asarray(rng.normal(size=64), jnp.float32)
targets = targets.at[:4].add(20.0)  # a few outliers that per-example clipping tames

params = {"w": jnp.zeros(5), "b": jnp.zeros(())}


def loss_fn(params, features, targets):
    preds = features @ params["w"] + params["b"]
    return jnp.mean(optax.huber_loss(preds, targets, delta=5.0))


max_norm = 1.0


def clip_per_example(grads):
    norm = optax.tree.norm(grads)
    return jax.tree.map(lambda g: g * jnp.minimum(1.0, max_norm / (norm + 1e-6)), grads)


grad_fn = optax.microbatching.micro_grad(
    loss_fn,
    argnums=0,
    batch_argnums=(1, 2),
    microbatch_size=8,
    accumulator=optax.microbatching.AccumulationType.MEAN,
    transform_fn=clip_per_example,
)
eval_loss = optax.microbatch(
    loss_fn, argnums=(1, 2), microbatch_size=16, accumulator=optax.microbatching.AccumulationType.MEAN
)

optimizer = optax.sgd(learning_rate=0.3, momentum=0.5)
opt_state = optimizer.init(params)


@jax.jit
def train_step(params, opt_state):
    grads, _ = grad_fn(params, features, targets)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, eval_loss(params, features, targets)


losses = []
for _ in range(100):
    params, opt_state, loss = train_step(params, opt_state)
    losses.append(float(loss))
