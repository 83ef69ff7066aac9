"""gradtx.numerics: closed forms (no SciPy), gradients at the awkward points, errors, and Optax's values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx.base
from gradtx.numerics import (
    matrix_inverse_pth_root,
    nnls,
    power_iteration,
    safe_increment,
    safe_int32_increment,
    safe_norm,
    safe_root_mean_squares,
    scale_gradient,
)


def _orthogonal(n, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q


def _symmetric(eigenvalues, seed=0):
    q = _orthogonal(len(eigenvalues), seed)
    return q @ np.diag(eigenvalues) @ q.T, q


# --- power_iteration ------------------------------------------------------------------------------------


def test_power_iteration_finds_the_top_eigenpair_of_a_known_matrix():
    a, q = _symmetric([5.0, 2.0, -1.0, 0.5])
    eig, vec = power_iteration(jnp.asarray(a), num_iters=500, error_tolerance=1e-12)
    assert float(eig) == pytest.approx(5.0, rel=1e-9)
    v = np.asarray(vec)
    assert np.linalg.norm(v) == pytest.approx(1.0)
    assert abs(float(v @ q[:, 0])) == pytest.approx(1.0, rel=1e-6)  # +-q0


def test_power_iteration_keeps_the_sign_of_a_negative_dominant_eigenvalue():
    a, _ = _symmetric([-4.0, 1.0, 0.5], seed=3)
    eig, _ = power_iteration(jnp.asarray(a), num_iters=1000, error_tolerance=1e-12)
    assert float(eig) == pytest.approx(-4.0, rel=1e-8)


def test_power_iteration_with_a_matvec_on_a_tree():
    blocks = {"a": jnp.asarray(np.diag([3.0, 1.0])), "b": jnp.asarray(np.diag([7.0, 2.0]))}

    def mvp(v):
        return {k: blocks[k] @ v[k] for k in v}

    v0 = {"a": jnp.ones(2), "b": jnp.ones(2)}
    eig, vec = power_iteration(mvp, v0=v0, num_iters=300, error_tolerance=1e-12)
    assert float(eig) == pytest.approx(7.0, rel=1e-9)
    assert abs(float(vec["b"][0])) == pytest.approx(1.0, rel=1e-6)
    assert jax.tree.structure(vec) == jax.tree.structure(v0)


def test_power_iteration_key_and_v0_choose_the_start():
    a, _ = _symmetric([3.0, 1.0, 0.2], seed=5)
    e1, _ = power_iteration(jnp.asarray(a), key=jax.random.PRNGKey(4), num_iters=400, error_tolerance=1e-12)
    e2, _ = power_iteration(jnp.asarray(a), v0=jnp.ones(3), num_iters=400, error_tolerance=1e-12)
    assert float(e1) == pytest.approx(3.0, rel=1e-9) and float(e2) == pytest.approx(3.0, rel=1e-9)


def test_power_iteration_matches_optax_and_jits():
    a, _ = _symmetric([9.0, 4.0, 1.0, 0.1, 0.01], seed=1)
    a32 = jnp.asarray(a, jnp.float32)
    ours = jax.jit(lambda m: power_iteration(m))(a32)
    theirs = optax.power_iteration(a32)
    np.testing.assert_allclose(float(ours[0]), float(theirs[0]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ours[1]), np.asarray(theirs[1]), atol=1e-5)
    assert ours[0].dtype == jnp.float32


def test_power_iteration_errors():
    with pytest.raises(ValueError, match=r"power_iteration\(v0=None\): v0 must be provided"):
        power_iteration(lambda v: v)
    with pytest.raises(ValueError, match=r"power_iteration\(matrix of shape \(2, 3\)\): matrix must be square"):
        power_iteration(jnp.ones((2, 3)))


# --- matrix_inverse_pth_root ----------------------------------------------------------------------------


@pytest.mark.parametrize("p", [1, 2, 3, 4, 8])
def test_matrix_inverse_pth_root_inverts_to_the_matrix(p):
    a, _ = _symmetric([4.0, 2.0, 1.0, 0.5], seed=p)
    h, error = matrix_inverse_pth_root(jnp.asarray(a), p, ridge_epsilon=1e-12, error_tolerance=1e-10)
    back = np.linalg.matrix_power(np.linalg.inv(np.asarray(h)), p)  # (A^(-1/p))^(-p)
    np.testing.assert_allclose(back, a, atol=1e-7 * np.max(np.abs(a)))
    assert float(error) <= 1e-9
    np.testing.assert_allclose(np.asarray(h), np.asarray(h).T, atol=1e-10)  # symmetric


def test_matrix_inverse_pth_root_of_a_diagonal_matrix():
    h, _ = matrix_inverse_pth_root(jnp.diag(jnp.asarray([16.0, 81.0])), 4, ridge_epsilon=0.0, error_tolerance=1e-12)
    np.testing.assert_allclose(np.diag(np.asarray(h)), [0.5, 1.0 / 3.0], rtol=1e-8)


def test_matrix_inverse_pth_root_one_by_one_and_ridge():
    h, error = matrix_inverse_pth_root(jnp.asarray([[9.0]]), 2, ridge_epsilon=0.0)
    assert float(h[0, 0]) == pytest.approx(1.0 / 3.0) and float(error) == 0.0
    h, _ = matrix_inverse_pth_root(jnp.asarray([[4.0]]), 1, ridge_epsilon=0.25)  # (4 + 0.25 * 4) ** -1
    assert float(h[0, 0]) == pytest.approx(1.0 / 5.0)


@pytest.mark.parametrize("p", [1, 2, 4, 8])
def test_matrix_inverse_pth_root_matches_optax(p):
    a, _ = _symmetric([3.0, 1.5, 1.0, 0.2], seed=10 + p)
    a32 = jnp.asarray(a, jnp.float32)
    ours, _ = matrix_inverse_pth_root(a32, p)
    theirs, _ = optax.matrix_inverse_pth_root(a32, p)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-4, atol=1e-5)
    assert ours.dtype == jnp.float32


@pytest.mark.parametrize("p", [0, -2, 2.5, True, "2"])
def test_matrix_inverse_pth_root_rejects_bad_p(p):
    with pytest.raises(ValueError, match=rf"matrix_inverse_pth_root\(p={p!r}\): p must be a concrete integer >= 1"):
        matrix_inverse_pth_root(jnp.eye(2), p)


def test_matrix_inverse_pth_root_rejects_a_non_square_matrix():
    with pytest.raises(ValueError, match="matrix must be square"):
        matrix_inverse_pth_root(jnp.ones((2, 3)), 2)


# --- nnls -------------------------------------------------------------------------------------------------


def test_nnls_solves_a_known_problem_with_an_active_constraint():
    # Unconstrained: x = A^-1 b = (-4, 4.5); with x >= 0 the optimum is x = (0, b.a2 / |a2|^2) = (0, 1.7).
    x = nnls(jnp.asarray([[1.0, 2.0], [3.0, 4.0]]), jnp.asarray([5.0, 6.0]), 1000)
    np.testing.assert_allclose(np.asarray(x), [0.0, 1.7], atol=1e-8)


def test_nnls_recovers_a_positive_solution_exactly():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(8, 4))
    x_true = np.array([0.5, 1.0, 2.0, 0.25])
    x = nnls(jnp.asarray(a), jnp.asarray(a @ x_true), 5000)
    np.testing.assert_allclose(np.asarray(x), x_true, atol=1e-8)


def test_nnls_satisfies_the_kkt_conditions_for_several_right_hand_sides():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(10, 5)), rng.normal(size=(10, 3))
    x = np.asarray(nnls(jnp.asarray(a), jnp.asarray(b), 20_000))
    assert x.shape == (5, 3) and np.all(x >= 0)
    grad = a.T @ (a @ x - b)  # KKT: grad >= 0, and grad = 0 where x > 0
    assert np.all(grad >= -1e-8)
    np.testing.assert_allclose(grad[x > 1e-9], 0.0, atol=1e-8)


def test_nnls_matches_optax():
    rng = np.random.default_rng(2)
    a, b = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32), jnp.asarray(rng.normal(size=(6,)), jnp.float32)
    np.testing.assert_allclose(np.asarray(nnls(a, b, 300)), np.asarray(optax.nnls(a, b, 300)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(nnls(a, b, 50, L=100.0, unroll=5)), np.asarray(optax.nnls(a, b, 50, L=100.0)),
                               atol=1e-5)


def test_nnls_errors():
    with pytest.raises(ValueError, match=r"nnls\(A of shape \(3,\)\): A must be a matrix"):
        nnls(jnp.ones(3), jnp.ones(3), 10)
    with pytest.raises(ValueError, match=r"nnls\(b of shape \(2,\)\): b must be \(3,\) or \(3, K\)"):
        nnls(jnp.ones((3, 2)), jnp.ones(2), 10)
    with pytest.raises(ValueError, match=r"nnls\(iters=-1\): iters must be a concrete integer >= 0"):
        nnls(jnp.ones((3, 2)), jnp.ones(3), -1)


# --- safe norms -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ord_,axis,keepdims", [(None, None, False), (1, 1, False), (np.inf, 0, True),
                                                ("fro", (0, 1), False), (2, None, True)])
def test_safe_norm_is_the_norm_above_the_floor(ord_, axis, keepdims):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4)))
    got = safe_norm(x, 0.0, ord_, axis, keepdims)
    want = jnp.linalg.norm(x, ord=ord_, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(got), np.asarray(optax.safe_norm(x, 0.0, ord_, axis, keepdims)), rtol=1e-12)


def test_safe_norm_floor_and_its_gradient():
    assert float(safe_norm(jnp.asarray([0.03, 0.04]), 0.1)) == pytest.approx(0.1)
    g0 = jax.grad(lambda x: safe_norm(x, 0.0))(jnp.zeros(3))
    assert np.all(np.isfinite(np.asarray(g0))) and np.all(np.asarray(g0) == 0)
    naive = jax.grad(lambda x: jnp.maximum(jnp.linalg.norm(x), 0.0))(jnp.zeros(3))
    assert not np.all(np.isfinite(np.asarray(naive)))  # what safe_norm avoids
    x = jnp.asarray([3.0, 4.0])
    np.testing.assert_allclose(np.asarray(jax.grad(lambda x: safe_norm(x, 1.0))(x)), [0.6, 0.8])
    rows = jax.jacobian(lambda x: safe_norm(x, 0.5, axis=1))(jnp.asarray([[0.0, 0.0], [3.0, 4.0]]))
    assert np.all(np.isfinite(np.asarray(rows)))


def test_safe_root_mean_squares():
    assert float(safe_root_mean_squares(jnp.asarray([3.0, 4.0]), 0.0)) == pytest.approx(np.sqrt(12.5))
    assert float(safe_root_mean_squares(jnp.asarray([1e-4, 0.0]), 1e-3)) == pytest.approx(1e-3)
    g0 = jax.grad(lambda x: safe_root_mean_squares(x, 1e-3))(jnp.zeros(4))
    assert np.all(np.asarray(g0) == 0)
    x = jnp.asarray([1.0, -2.0, 2.0])
    np.testing.assert_allclose(float(safe_root_mean_squares(x, 0.1)), float(optax.safe_root_mean_squares(x, 0.1)))


def test_safe_functions_under_strict_promotion_keep_float32():
    x = jnp.asarray([1.0, 2.0], jnp.float32)
    with jax.numpy_dtype_promotion("strict"):
        assert safe_norm(x, 0.5).dtype == jnp.float32
        assert safe_root_mean_squares(x, jnp.float64(0.5)).dtype == jnp.float32
        assert safe_norm(jnp.asarray([1.0], jnp.bfloat16), 0.5).dtype == jnp.float32  # computed in float32


# --- counters ---------------------------------------------------------------------------------------------


def test_safe_increment_saturates_for_every_dtype():
    assert int(safe_increment(jnp.asarray(5, jnp.int32))) == 6
    top = np.iinfo(np.int32).max
    assert int(safe_increment(jnp.asarray(top, jnp.int32))) == top
    assert int(safe_increment(jnp.asarray(127, jnp.int8))) == 127
    assert safe_increment(jnp.asarray(3, jnp.int8)).dtype == jnp.int8
    assert float(safe_increment(jnp.asarray(2.0, jnp.float32))) == 3.0
    big = jnp.finfo(jnp.float32).max
    assert float(safe_increment(jnp.asarray(big, jnp.float32))) == float(big)
    with pytest.raises(ValueError, match=r"safe_increment\(count of dtype bool\): count must have an integer"):
        safe_increment(jnp.asarray(True))


def test_safe_int32_increment_is_the_base_counter():
    assert safe_int32_increment is gradtx.base.safe_int32_increment
    assert int(safe_int32_increment(jnp.asarray(np.iinfo(np.int32).max, jnp.int32))) == np.iinfo(np.int32).max


# --- scale_gradient ---------------------------------------------------------------------------------------


def test_scale_gradient_scales_only_the_backward_pass():
    x = jnp.asarray([1.0, -2.0, 3.0])

    def loss(x, s):
        return jnp.sum(scale_gradient(x, s) ** 2)

    assert float(loss(x, 0.25)) == pytest.approx(14.0)  # forward unchanged
    np.testing.assert_allclose(np.asarray(jax.grad(loss)(x, 0.25)), 0.25 * 2 * np.asarray(x))
    np.testing.assert_allclose(np.asarray(jax.grad(loss)(x, -3.0)), -3.0 * 2 * np.asarray(x))
    np.testing.assert_allclose(np.asarray(jax.grad(loss)(x, 0.0)), 0.0)
    np.testing.assert_allclose(np.asarray(jax.grad(loss)(x, 1.0)), 2 * np.asarray(x))


def test_scale_gradient_on_trees_under_jit_with_a_traced_scale():
    tree = {"a": jnp.ones(2, jnp.float32), "b": (jnp.asarray(2.0, jnp.bfloat16),)}

    def loss(t, s):
        t = scale_gradient(t, s)
        return jnp.sum(t["a"] * 3.0) + t["b"][0].astype(jnp.float32) ** 2

    with jax.numpy_dtype_promotion("strict"):
        g = jax.jit(jax.grad(loss))(tree, jnp.float32(0.5))
    np.testing.assert_allclose(np.asarray(g["a"]), [1.5, 1.5])
    assert g["b"][0].dtype == jnp.bfloat16 and float(g["b"][0]) == pytest.approx(2.0)
    assert float(jax.grad(lambda s: jnp.sum(scale_gradient(jnp.ones(2) * s, 0.5)))(1.0)) == pytest.approx(1.0)


def test_scale_gradient_shortcuts_and_optax():
    x = jnp.ones(3)
    assert scale_gradient(x, 1.0) is x
    g_ours = jax.grad(lambda x: jnp.sum(scale_gradient(x, 0.3) * x))(x)
    g_optax = jax.grad(lambda x: jnp.sum(optax.scale_gradient(x, 0.3) * x))(x)
    np.testing.assert_allclose(np.asarray(g_ours), np.asarray(g_optax))
