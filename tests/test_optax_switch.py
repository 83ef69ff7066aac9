"""`import gradtx as optax` runs a typical Optax training loop unchanged."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _typical_optax_training_loop(optax):
    """Written as an Optax user writes it; only the module object differs between the two runs."""
    key = jax.random.key(0)
    k1, k2 = jax.random.split(key)
    x = jax.random.normal(k1, (64, 3))
    y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.3 + 0.01 * jax.random.normal(k2, (64,))
    params = {"dense": {"kernel": jnp.zeros((3,)), "bias": jnp.zeros(())}}

    def loss_fn(params, x, y):
        pred = x @ params["dense"]["kernel"] + params["dense"]["bias"]
        return jnp.mean((pred - y) ** 2)

    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=0.05, warmup_steps=20, decay_steps=300, end_value=1e-3
    )
    decay_mask = jax.tree.map(lambda p: p.ndim > 0, params)
    optimizer = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.inject_hyperparams(optax.adamw)(learning_rate=schedule, weight_decay=1e-4, mask=decay_mask),
    )
    optimizer = optax.MultiSteps(optimizer, every_k_schedule=2)
    opt_state = optimizer.init(params)

    @jax.jit
    def train_step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, loss

    losses = []
    for _ in range(600):
        params, opt_state, loss = train_step(params, opt_state, x, y)
        losses.append(float(loss))
    lr = opt_state.inner_opt_state[1].hyperparams["learning_rate"]
    return params, np.array(losses), float(lr), optax.tree.norm(params)


def test_import_gradtx_as_optax_runs_a_typical_loop_unchanged():
    import optax as real_optax

    import gradtx as optax

    params, losses, lr, norm = _typical_optax_training_loop(optax)
    ref_params, ref_losses, ref_lr, ref_norm = _typical_optax_training_loop(real_optax)
    assert losses[-1] < 1e-3 < losses[0]
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(lr, ref_lr, rtol=1e-6)
    np.testing.assert_allclose(norm, ref_norm, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
