"""Tier 3: compositions of smaller blocks that give the same numbers, and closed forms of whole runs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.testing.contract import default_params, random_like
from gradtx.testing.problems import Quadratic


def _run(tx, steps=60, seed=0, params=None):
    params = default_params(jnp.float64) if params is None else params
    state = tx.init(params)
    update = jax.jit(lambda g, s, p: tx.update(g, s, p))
    outs = []
    for k in range(steps):
        g = random_like(params, seed + k)
        u, state = update(g, state, params)
        outs.append(u)
    return outs


def _same(a, b, rtol=1e-12):
    for x, y in zip(a, b):
        assert jax.tree.structure(x) == jax.tree.structure(y)
        for u, v in zip(jax.tree.leaves(x), jax.tree.leaves(y)):
            np.testing.assert_allclose(u, v, rtol=rtol, atol=1e-14)


def test_adam_without_momentum_is_bias_corrected_rms():
    _same(_run(gradtx.scale_by_adam(b1=0.0, b2=0.99, eps=1e-6)),
          _run(gradtx.scale_by_rms(0.99, 1e-6, eps_in_sqrt=False, bias_correction=True)))


def test_debiased_ema_is_ema_then_bias_correction():
    _same(_run(gradtx.ema(0.8)), _run(gradtx.chain(gradtx.ema(0.8, debias=False), gradtx.bias_correction(0.8))))


def test_empty_chain_is_identity_and_chain_is_associative():
    _same(_run(gradtx.chain()), _run(gradtx.identity()))
    a, b, c = gradtx.clip_by_global_norm(3.0), gradtx.scale_by_adam(), gradtx.scale_by_learning_rate(0.1)
    left = _run(gradtx.chain(gradtx.chain(a, b), c))
    _same(left, _run(gradtx.chain(a, gradtx.chain(b, c))))
    _same(left, _run(gradtx.chain(a, b, c)))


def test_adamw_without_decay_is_adam_and_nadam_is_nesterov_adam():
    _same(_run(gradtx.adamw(0.01, weight_decay=0.0)), _run(gradtx.adam(0.01)))
    _same(_run(gradtx.nadam(0.01)), _run(gradtx.adam(0.01, nesterov=True)))
    _same(_run(gradtx.nadamw(0.01, weight_decay=0.0)), _run(gradtx.nadam(0.01)))


def test_sgd_momentum_is_trace_then_scale():
    _same(_run(gradtx.sgd(0.1, 0.9)), _run(gradtx.chain(gradtx.trace(0.9), gradtx.scale(-0.1))))


def test_rmsprop_is_rms_then_learning_rate():
    _same(_run(gradtx.rmsprop(0.1, decay=None)),
          _run(gradtx.chain(gradtx.scale_by_rms(None), gradtx.scale_by_learning_rate(0.1))))


def test_masked_weight_decay_all_true_equals_unmasked():
    params = default_params(jnp.float64)
    everything = jax.tree.map(lambda _: True, params)
    _same(_run(gradtx.adamw(0.01, weight_decay=0.1, mask=everything)), _run(gradtx.adamw(0.01, weight_decay=0.1)))
    _same(_run(gradtx.adamw(0.01, weight_decay=0.1, mask=lambda p: jax.tree.map(lambda _: True, p))),
          _run(gradtx.adamw(0.01, weight_decay=0.1)))


# --- closed forms ----------------------------------------------------------------------------------------


def test_gradient_descent_on_quadratic_follows_closed_form():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 4))
    q = Quadratic(m @ m.T + 0.5 * np.eye(4))
    x0, lr, steps = rng.normal(size=4), 0.05, 40
    opt = gradtx.sgd(lr)
    x = jnp.asarray(x0)
    state = opt.init(x)
    xs = [np.asarray(x)]
    for _ in range(steps):
        u, state = opt.update(jnp.asarray(q.A) @ x, state, x)
        x = gradtx.apply_updates(x, u)
        xs.append(np.asarray(x))
    np.testing.assert_allclose(np.stack(xs), q.gd_trajectory(x0, lr, steps), rtol=1e-10, atol=1e-12)


def test_momentum_trace_under_constant_gradient_is_geometric():
    g = {"w": jnp.array([1.0, -2.0], jnp.float64)}
    tx = gradtx.trace(0.9)
    state = tx.init(g)
    for k in range(1, 30):
        u, state = tx.update(g, state)
        np.testing.assert_allclose(u["w"], np.array([1.0, -2.0]) * (1 - 0.9**k) / (1 - 0.9), rtol=1e-12)


@pytest.mark.parametrize("b1,b2", [(0.9, 0.999), (0.0, 0.5), (0.5, 0.0)])
def test_adam_first_step(b1, b2):
    g = {"w": jnp.array([0.3, -2.0, 1e-4], jnp.float64)}
    opt = gradtx.adam(0.01, b1, b2, eps=1e-8)
    u, _ = opt.update(g, opt.init(g))
    gw = np.array([0.3, -2.0, 1e-4])
    np.testing.assert_allclose(u["w"], -0.01 * gw / (np.abs(gw) + 1e-8), rtol=1e-12)


def test_lecture_root_mean_square_and_rmsprop_first_steps():
    gs = [np.array([3.0, -0.1]), np.array([-1.0, 0.2]), np.array([2.0, 0.05])]
    rms = gradtx.scale_by_rms(None, eps=0.0)
    prop = gradtx.scale_by_rms(0.7, eps=0.0, init_from_first=True)
    s1, s2 = rms.init(gs[0]), prop.init(gs[0])
    sigma_prop = None
    for k, g in enumerate(gs, start=1):
        u1, s1 = rms.update(jnp.asarray(g), s1)
        u2, s2 = prop.update(jnp.asarray(g), s2)
        sigma_rms = np.sqrt(np.mean(np.stack(gs[:k]) ** 2, axis=0))  # sigma^t = sqrt(mean of all g^2)
        sigma_prop = np.abs(g) if sigma_prop is None else np.sqrt(0.7 * sigma_prop**2 + 0.3 * g**2)
        np.testing.assert_allclose(u1, g / sigma_rms, rtol=1e-12)
        np.testing.assert_allclose(u2, g / sigma_prop, rtol=1e-12)


# --- properties over random hyperparameters ----------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_unit = st.floats(0.0, 0.99)


@settings(max_examples=25, deadline=None)
@given(b1=_unit, b2=_unit, eps=st.floats(1e-8, 1.0), lr=st.floats(1e-4, 10.0),
       g=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=5))
def test_adam_first_step_property(b1, b2, eps, lr, g):
    gw = np.asarray(g, np.float64)
    opt = gradtx.adam(lr, b1, b2, eps)
    u, _ = opt.update(jnp.asarray(gw), opt.init(jnp.asarray(gw)))
    np.testing.assert_allclose(u, -lr * gw / (np.abs(gw) + eps), rtol=1e-9, atol=1e-300)


@settings(max_examples=25, deadline=None)
@given(decay=_unit, seed=st.integers(0, 2**16))
def test_ema_then_bias_correction_property(decay, seed):
    _same(_run(gradtx.ema(decay), steps=5, seed=seed),
          _run(gradtx.chain(gradtx.ema(decay, debias=False), gradtx.bias_correction(decay)), steps=5, seed=seed))
