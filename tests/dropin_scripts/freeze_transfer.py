"""Transfer learning in two stages: train only the head of a "pretrained" network (``optax.multi_transform``
with ``optax.set_to_zero`` for the frozen labels), then fine-tune everything but the backbone biases
(``optax.transforms.freeze`` in a chain)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

rng = np.random.default_rng(0)
x = rng.normal(size=(128, 6)).astype(np.float32)
logits_true = x @ rng.normal(size=(6, 3))
labels = np.argmax(logits_true + 0.5 * rng.normal(size=(128, 3)), axis=-1)

pretrained = {
    "backbone": {"w": jnp.asarray(rng.normal(size=(6, 16)) / 2.5, jnp.float32), "b": jnp.zeros(16)},
    "head": {"w": jnp.zeros((16, 3)), "b": jnp.zeros(3)},
}


def loss_fn(params, x, labels):
    h = jax.nn.gelu(x @ params["backbone"]["w"] + params["backbone"]["b"])
    logits = h @ params["head"]["w"] + params["head"]["b"]
    return optax.softmax_cross_entropy(logits, jax.nn.one_hot(labels, 3)).mean()


def make_step(optimizer):
    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, labels)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


# Stage 1: the backbone is frozen, the head is trained with momentum SGD.
param_labels = {"backbone": {"w": "frozen", "b": "frozen"}, "head": {"w": "trainable", "b": "trainable"}}
stage1 = optax.multi_transform({"trainable": optax.sgd(0.5, momentum=0.9), "frozen": optax.set_to_zero()}, param_labels)
params, opt_state = pretrained, stage1.init(pretrained)
step = make_step(stage1)
losses = []
for _ in range(50):
    params, opt_state, loss = step(params, opt_state)
    losses.append(float(loss))
assert bool(jnp.all(params["backbone"]["w"] == pretrained["backbone"]["w"]))

# Stage 2: fine-tune with Adam, the backbone biases stay frozen.
frozen = {"backbone": {"w": False, "b": True}, "head": {"w": False, "b": False}}
stage2 = optax.chain(optax.transforms.freeze(frozen), optax.adam(1e-2))
opt_state = stage2.init(params)
step = make_step(stage2)
for _ in range(50):
    params, opt_state, loss = step(params, opt_state)
    losses.append(float(loss))
assert bool(jnp.all(params["backbone"]["b"] == 0.0))
