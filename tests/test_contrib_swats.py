"""SWATS (gradtx.contrib.swats): closed forms of both phases and of the switch, convergence, validation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradtx.base import apply_updates
from gradtx.contrib import swats
from gradtx.testing.problems import Quadratic
from gradtx.testing.reference import contrib_swats as ref


def test_constant_gradient_switches_at_step_two_to_the_closed_form_rate():
    # Constant g: m_k = (1 - b1^k) g and a_k = (1 - b2^k) g^2, so Adam's step is p = -lr g / (|g| + eps') = -lr sign(g)
    # (eps = 0); gamma = |p|^2 / (-p.g) = n lr / sum|g| at every step, lambda_k / (1 - b2^k) = gamma exactly, and
    # SWATS switches at k = 2 with sgd_lr = n lr / sum|g|. Then v_3 = g, v_4 = (1 + b1) g, u = -(1 - b1) sgd_lr v.
    lr, b1, b2 = 0.01, 0.9, 0.999
    g = {"w": jnp.asarray([0.5, -2.0, 4.0], jnp.float64), "b": jnp.asarray(1.0, jnp.float64)}
    n, l1 = 4, 0.5 + 2.0 + 4.0 + 1.0
    tx = swats(lr, b1, b2, eps=0.0, switch_tol=1e-12)
    state = tx.init(g)
    update = jax.jit(tx.update)
    for _ in (1, 2):  # steps 1 and 2: Adam
        u, state = update(g, state)
        np.testing.assert_allclose(u["w"], -lr * np.sign([0.5, -2.0, 4.0]), rtol=1e-12)
    assert bool(state.switched) and float(state.sgd_lr) == pytest.approx(n * lr / l1, rel=1e-12)
    rate = n * lr / l1
    for v in (1.0, 1.0 + b1, 1.0 + b1 + b1**2):
        u, state = update(g, state)
        np.testing.assert_allclose(u["w"], -(1 - b1) * rate * v * np.asarray([0.5, -2.0, 4.0]), rtol=1e-12)
        np.testing.assert_allclose(u["b"], -(1 - b1) * rate * v * 1.0, rtol=1e-12)
    assert int(state.count) == 5


def test_no_switch_at_the_first_step_nor_without_movement():
    tx = swats(0.1, switch_tol=1e9)  # any k > 1 settles
    state = tx.init(jnp.zeros(2))
    _, state = tx.update(jnp.asarray([1.0, 1.0]), state)
    assert not bool(state.switched)  # k = 1 never switches
    _, state = tx.update(jnp.zeros(2), state)
    assert not bool(state.switched)  # p . g = 0: no estimate, no switch
    _, state = tx.update(jnp.asarray([1.0, -1.0]), state)
    assert bool(state.switched)


def test_a_settled_negative_rate_does_not_switch():
    """b2 = 0: lambda_k = gamma_k, so the estimate settles at every step k > 1. Step 2's gradient opposes the
    momentum (m_2 = 0.9 * 0.1 g_1 + 0.1 g_2 = 0.04 (1, 1) with g_2 = -0.5 (1, 1)): Adam's step has a positive
    component along g_2, gamma_2 = |p|^2 / (-p.g) < 0, and switching would give SGD a negative rate."""
    tx = swats(0.1, b1=0.9, b2=0.0, switch_tol=1e-6)
    state = tx.init(jnp.zeros(2))
    _, state = tx.update(jnp.asarray([1.0, 1.0]), state)
    u, state = tx.update(jnp.asarray([-0.5, -0.5]), state)
    assert float(state.lam) < 0 and not bool(state.switched)
    # still Adam: -lr m_2 / ((1 - b1^2) sqrt(a_2)), a_2 = g_2^2 (b2 = 0)
    np.testing.assert_allclose(u, [-0.1 * 0.04 / (0.19 * 0.5)] * 2, rtol=1e-6)
    _, state = tx.update(jnp.asarray([1.0, 1.0]), state)
    assert bool(state.switched) and float(state.sgd_lr) > 0


def test_matches_the_reference_across_the_switch_in_float64():
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(60, 5))
    for tol in (1e-9, 1e-3, 1.0):
        tx, r = swats(0.05, switch_tol=tol), ref.swats(0.05, switch_tol=tol)
        state = tx.init(jnp.zeros(5, jnp.float64))
        for g in grads:
            u, state = tx.update(jnp.asarray(g), state)
            np.testing.assert_allclose(u, r.step(g), rtol=1e-10, atol=1e-15)
        assert bool(state.switched) == r.switched


def test_converges_on_a_quadratic_after_switching():
    # From w = 0 the first steps have nearly the same gradient, so the estimate settles at once and SWATS runs
    # SGD with momentum at the estimated rate (about 0.011 here, stable for the largest curvature 10).
    problem = Quadratic(np.diag([1.0, 2.0, 5.0, 10.0]), x_star=np.ones(4))
    tx = swats(0.05, switch_tol=1e-3)
    w = jnp.zeros(4, jnp.float32)
    state = tx.init(w)

    @jax.jit
    def run(w, state):
        def body(carry, _):
            w, s = carry
            u, s = tx.update(jax.grad(problem.loss)(w), s)
            return (apply_updates(w, u), s), None

        return jax.lax.scan(body, (w, state), None, length=2000)[0]

    w, state = run(w, state)
    assert bool(state.switched) and 0 < float(state.sgd_lr) < 2 / 10
    assert float(problem.loss(w)) < 1e-9 * float(problem.loss(jnp.zeros(4, jnp.float32)))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"b1": 1.0}, r"swats\(b1=1.0\): b1 must be in \[0, 1\)"),
        ({"b2": -0.1}, r"swats\(b2=-0.1\): b2 must be in \[0, 1\)"),
        ({"switch_tol": -1.0}, r"swats\(switch_tol=-1.0\): switch_tol must be >= 0"),
        ({"learning_rate": -1.0}, r"swats\(learning_rate=-1.0\): learning_rate must be >= 0"),
    ],
)
def test_bad_arguments_name_the_call(kwargs, message):
    with pytest.raises(ValueError, match=message):
        swats(**kwargs)
