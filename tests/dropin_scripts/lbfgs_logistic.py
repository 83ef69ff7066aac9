"""L-BFGS on an L2-regularised logistic regression with ``optax.lbfgs`` and
``optax.value_and_grad_from_state`` (the loop of Optax's L-BFGS documentation)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

rng = np.random.default_rng(0)
x = jnp.asarray(rng.normal(size=(200, 8)), jnp.float32)
w_true = jnp.asarray(rng.normal(size=8), jnp.float32)
labels = (x @ w_true + jnp.asarray(rng.normal(size=200), jnp.float32) > 0).astype(jnp.float32)


def fun(w):
    logits = x @ w[:-1] + w[-1]
    return optax.sigmoid_binary_cross_entropy(logits, labels).mean() + 1e-2 * optax.tree.norm(w, squared=True)


opt = optax.lbfgs()
value_and_grad = optax.value_and_grad_from_state(fun)


@jax.jit
def step(params, state):
    value, grad = value_and_grad(params, state=state)
    updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=fun)
    params = optax.apply_updates(params, updates)
    return params, state, value


params = jnp.zeros(9)
state = opt.init(params)
losses = []
for _ in range(100):
    params, state, value = step(params, state)
    losses.append(float(value))
