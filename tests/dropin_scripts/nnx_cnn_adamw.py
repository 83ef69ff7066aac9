"""A Flax NNX CNN classifier on scikit-learn's digits, trained with ``nnx.Optimizer`` and ``optax.adamw``.

Written as the Flax NNX "MNIST tutorial" writes it (8x8 digits instead of MNIST so nothing is downloaded).
"""

import numpy as np
import optax
from flax import nnx
from sklearn.datasets import load_digits

images, labels = load_digits(return_X_y=True)
images = (images[:256].reshape(-1, 8, 8, 1) / 16.0).astype(np.float32)
labels = labels[:256].astype(np.int32)
batch_size = 32


class CNN(nnx.Module):
    """A small convolutional network."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.conv = nnx.Conv(1, 8, kernel_size=(3, 3), rngs=rngs)
        self.linear1 = nnx.Linear(4 * 4 * 8, 32, rngs=rngs)
        self.linear2 = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        x = nnx.avg_pool(nnx.relu(self.conv(x)), window_shape=(2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        return self.linear2(nnx.relu(self.linear1(x)))


model = CNN(rngs=nnx.Rngs(0))
optimizer = nnx.Optimizer(model, optax.adamw(learning_rate=5e-3, b1=0.9, weight_decay=1e-4), wrt=nnx.Param)


def loss_fn(model, batch):
    logits = model(batch["image"])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits=logits, labels=batch["label"]).mean()
    return loss, logits


@nnx.jit
def train_step(model, optimizer, batch):
    grad_fn = nnx.value_and_grad(loss_fn, has_aux=True)
    (loss, _logits), grads = grad_fn(model, batch)
    optimizer.update(model, grads)
    return loss


losses = []
for step in range(100):
    start = (step * batch_size) % len(labels)
    batch = {"image": images[start : start + batch_size], "label": labels[start : start + batch_size]}
    losses.append(float(train_step(model, optimizer, batch)))
