"""gradtx.diagnostics.curvature: Hessian-vector products, Lanczos eigenvalues, Hutchinson's trace, critical points.

Closed forms: Hessians written by hand (the lecture's ``(1 - w1 w2)^2``, cubic and quadratic forms with a known
spectrum), Rademacher probes on diagonal Hessians, and a small tanh MLP compared with its dense ``jax.hessian``
eigendecomposition (NumPy ``eigvalsh``).
"""

from __future__ import annotations

import itertools
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from gradtx.diagnostics.curvature import (
    DEGENERATE,
    LOCAL_MAXIMUM,
    LOCAL_MINIMUM,
    NOT_CRITICAL,
    SADDLE_POINT,
    VERDICTS,
    CriticalPoint,
    classify_critical_point,
    critical_point_verdict,
    default_num_iters,
    hessian_eigenvalues,
    hutchinson_trace,
    hvp,
)
from gradtx.numerics import power_iteration


def _fast(fn):
    """``jax.jit(fn)`` compiled at XLA backend optimisation level 0: these tests check numbers, not speed, and the
    Lanczos programs then compile about 3 times faster (hessian_eigenvalues' own jit is inlined into this one)."""
    return jax.jit(fn, compiler_options={"xla_backend_optimization_level": 0})


def _symmetric(eigenvalues, seed=0):
    """``Q diag(eigenvalues) Q^T`` with a random orthogonal ``Q`` (float64 NumPy)."""
    lam = np.asarray(eigenvalues, dtype=np.float64)
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(lam), len(lam))))
    return q @ np.diag(lam) @ q.T


def _quadratic(a):
    a = jnp.asarray(a)
    return lambda w: 0.5 * w @ (a @ w)


def _lecture_loss(w):
    """The lecture's ``y = w1 w2 x`` fitted to ``(x, y) = (1, 1)``: ``L = (1 - w1 w2)^2``."""
    x, y = 1.0, 1.0
    return (y - w[0] * w[1] * x) ** 2


# --- hvp -------------------------------------------------------------------------------------------------


def test_hvp_on_a_pytree_equals_the_hand_written_hessian_times_v():
    # L = sum(x^3) / 6 + x^T B y  =>  H = [[diag(x), B], [B^T, 0]]
    b = jnp.asarray([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25]])

    def loss(p):
        return jnp.sum(p["x"] ** 3) / 6.0 + p["x"] @ (b @ p["y"])

    params = {"x": jnp.asarray([1.0, -2.0, 3.0]), "y": jnp.asarray([0.5, 4.0])}
    v = {"x": jnp.asarray([0.3, 1.0, -1.0]), "y": jnp.asarray([2.0, -1.0])}
    expected_x = params["x"] * v["x"] + b @ v["y"]
    expected_y = b.T @ v["x"]
    for out in (hvp(loss, params, v), jax.jit(lambda p, t: hvp(loss, p, t))(params, v)):
        assert set(out) == {"x", "y"}
        np.testing.assert_allclose(out["x"], expected_x, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(out["y"], expected_y, rtol=1e-14, atol=1e-14)
        assert out["x"].dtype == jnp.float64


def test_hvp_casts_v_to_the_parameter_dtype_and_rejects_another_structure():
    params = {"w": jnp.asarray([1.0, 2.0], jnp.float32)}
    out = hvp(lambda p: jnp.sum(p["w"] ** 2), params, {"w": np.asarray([1.0, -1.0])})
    assert out["w"].dtype == jnp.float32
    np.testing.assert_array_equal(out["w"], [2.0, -2.0])
    with pytest.raises(TypeError, match=r"hvp: v must have the tree structure of params"):
        hvp(lambda p: jnp.sum(p["w"] ** 2), params, [jnp.ones(2)])


# --- the lecture's example -----------------------------------------------------------------------------


def test_lecture_origin_is_a_saddle_point():
    dtype = jnp.float64
    w = jnp.zeros(2, dtype)
    # gradient 0, Hessian [[0, -2], [-2, 0]]
    np.testing.assert_array_equal(jax.grad(_lecture_loss)(w), [0.0, 0.0])
    np.testing.assert_array_equal(hvp(_lecture_loss, w, jnp.asarray([1.0, 0.0], dtype)), [0.0, -2.0])
    np.testing.assert_array_equal(hvp(_lecture_loss, w, jnp.asarray([0.0, 1.0], dtype)), [-2.0, 0.0])
    cp = classify_critical_point(_lecture_loss, w)
    assert isinstance(cp, CriticalPoint)
    assert cp.verdict == SADDLE_POINT
    assert cp.grad_norm == 0.0
    assert cp.min_eigenvalue == pytest.approx(-2.0, abs=1e-12)
    assert cp.max_eigenvalue == pytest.approx(2.0, abs=1e-12)


def test_repeated_calls_with_the_same_loss_compile_once():
    traces = []

    def loss(w):
        traces.append(1)  # runs only while JAX traces the loss
        return _lecture_loss(w)

    points = [jnp.zeros(2), jnp.ones(2), jnp.asarray([2.0, 0.5])]
    verdicts = [classify_critical_point(loss, w).verdict for w in points]
    assert verdicts == [SADDLE_POINT, DEGENERATE, DEGENERATE]
    after_classify = len(traces)
    assert after_classify > 0
    lows = [float(hessian_eigenvalues(loss, w, k=1).smallest[0]) for w in points]
    traces_per_program = len(traces) - after_classify
    np.testing.assert_allclose(lows, [-2.0, 0.0, -0.0], atol=1e-5)
    for w in points:
        hutchinson_trace(loss, w, num_samples=4)
    # three programs, each traced for its first point only; other points reuse it
    assert traces_per_program == after_classify
    assert len(traces) - after_classify - traces_per_program == after_classify
    # an unhashable loss still works, compiled per call
    class Unhashable:
        __hash__ = None

        def __call__(self, w):
            return _lecture_loss(w)

    assert classify_critical_point(Unhashable(), jnp.zeros(2)).verdict == SADDLE_POINT


def test_lecture_valley_point_is_degenerate_although_a_global_minimum_in_float32():
    # At (1, 1): gradient 0, H = [[2 w2^2, 4 w1 w2 - 2], [4 w1 w2 - 2, 2 w1^2]] = [[2, 2], [2, 2]]: eigenvalues
    # 0 (along (1, -1), the tangent of the hyperbola w1 w2 = 1 of minima) and 4 (along (1, 1)).
    dtype = jnp.float32
    w = jnp.ones(2, dtype)
    np.testing.assert_array_equal(hvp(_lecture_loss, w, jnp.asarray([1.0, -1.0], dtype)), [0.0, 0.0])
    np.testing.assert_array_equal(hvp(_lecture_loss, w, jnp.asarray([1.0, 1.0], dtype)), [4.0, 4.0])
    cp = classify_critical_point(_lecture_loss, w)
    assert cp.verdict == DEGENERATE
    assert cp.grad_norm == 0.0
    assert cp.min_eigenvalue == pytest.approx(0.0, abs=1e-6)  # float32 rounding of 4 is 5e-7: within tol
    assert cp.max_eigenvalue == pytest.approx(4.0, abs=1e-6)
    # ... and it is a (non-isolated) global minimum: L = 0 all along the hyperbola, L >= 0 everywhere.
    for s in (0.5, 2.0, -3.0):
        assert float(_lecture_loss(jnp.asarray([s, 1.0 / s], jnp.float64))) == pytest.approx(0.0, abs=1e-15)


def test_lecture_loss_away_from_critical_points_is_not_critical():
    cp = classify_critical_point(_lecture_loss, jnp.asarray([0.5, 0.3], jnp.float64))
    assert cp.verdict == NOT_CRITICAL
    # grad = -2 (1 - w1 w2) (w2, w1) = -1.7 (0.3, 0.5)
    assert cp.grad_norm == pytest.approx(1.7 * np.hypot(0.3, 0.5), rel=1e-14)
    # H = [[2 w2^2, 4 w1 w2 - 2], [., 2 w1^2]] = [[0.18, -1.4], [-1.4, 0.5]]
    lam = np.linalg.eigvalsh(np.array([[0.18, -1.4], [-1.4, 0.5]]))
    assert cp.min_eigenvalue == pytest.approx(lam[0], rel=1e-13)
    assert cp.max_eigenvalue == pytest.approx(lam[1], rel=1e-13)


# --- Lanczos on quadratics with a known spectrum -------------------------------------------------------


def test_quadratic_with_known_spectrum_exact_when_num_iters_reaches_n():
    lam = np.concatenate([np.arange(-6.0, 0.0), np.arange(1.0, 35.0) / 3.0])  # 40 distinct, analytic
    n = len(lam)
    loss = _quadratic(_symmetric(lam, seed=1))
    assert default_num_iters(n, 4) == n
    r = _fast(lambda p: hessian_eigenvalues(loss, p, k=4, which="both"))(jnp.zeros(n))
    np.testing.assert_allclose(r.largest, np.sort(lam)[::-1][:4], rtol=0, atol=1e-6)
    np.testing.assert_allclose(r.smallest, np.sort(lam)[:4], rtol=0, atol=1e-6)
    assert np.max(np.abs(np.asarray(r.largest) - np.sort(lam)[::-1][:4])) < 1e-11
    assert r.largest.dtype == jnp.float64
    assert np.all(np.asarray(r.largest_residuals) < 1e-9) and np.all(np.asarray(r.smallest_residuals) < 1e-9)


def test_quadratic_on_a_pytree_with_few_steps_finds_the_separated_extremes_within_their_bounds():
    # 300 parameters in two leaves; bulk in [1, 2], extremes -4, -3 and 9, 10: 60 steps resolve them.
    bulk = np.linspace(1.0, 2.0, 296)
    lam = np.concatenate([[-4.0, -3.0], bulk, [9.0, 10.0]])
    a = jnp.asarray(_symmetric(lam, seed=2))
    params = {"m": jnp.zeros((10, 10)), "v": jnp.zeros(200)}

    def loss(p):
        w = ravel_pytree(p)[0]
        return 0.5 * w @ (a @ w)

    r = _fast(lambda p: hessian_eigenvalues(loss, p, k=2, which="both", num_iters=60))(params)
    np.testing.assert_allclose(r.largest, [10.0, 9.0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(r.smallest, [-4.0, -3.0], atol=1e-6, rtol=0)
    # the Ritz residual bounds the error (H symmetric): |theta - lambda| <= ||H y - theta y||
    assert np.all(np.abs(np.asarray(r.largest) - [10.0, 9.0]) <= np.asarray(r.largest_residuals) + 1e-12)
    assert np.all(np.abs(np.asarray(r.smallest) - [-4.0, -3.0]) <= np.asarray(r.smallest_residuals) + 1e-12)


def test_which_selects_the_ends_and_largest_is_descending_smallest_ascending():
    lam = np.array([3.0, -1.0, 0.5, 7.0, -5.0])
    loss = _quadratic(np.diag(lam))
    top, bottom = _fast(
        lambda p: (
            hessian_eigenvalues(loss, p, k=5, which="largest", num_iters=50),  # num_iters clipped to n
            hessian_eigenvalues(loss, p, k=2, which="smallest"),
        )
    )(jnp.zeros(5))
    assert top.smallest is None and top.smallest_residuals is None
    assert bottom.largest is None and bottom.largest_residuals is None
    np.testing.assert_allclose(top.largest, [7.0, 3.0, 0.5, -1.0, -5.0], atol=1e-12)
    np.testing.assert_allclose(bottom.smallest, [-5.0, -1.0], atol=1e-12)


def test_breakdown_on_repeated_eigenvalues_restarts_and_stays_exact_without_nan():
    # 3 distinct eigenvalues among 12: the Krylov space of any start vector has dimension 3, so Lanczos breaks
    # down after 3 steps; it goes on in the orthogonal complement and recovers the multiplicities.
    d = np.array([1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 5.0, 5.0, 5.0, 5.0, 5.0])
    loss = lambda w: 0.5 * jnp.sum(jnp.asarray(d) * w * w)  # noqa: E731
    r = hessian_eigenvalues(loss, jnp.zeros(12), k=6, num_iters=12)  # eager (its own jit)
    np.testing.assert_allclose(r.largest, [5, 5, 5, 5, 5, 2], atol=1e-12)
    np.testing.assert_allclose(r.smallest, [1, 1, 1, 1, 2, 2], atol=1e-12)
    for field in r:
        assert np.all(np.isfinite(np.asarray(field)))


def test_rank_one_and_zero_hessians_give_no_nan():
    # rank one (float32): Lanczos breaks down after one step and restarts in the null space
    u = jnp.arange(1.0, 31.0, dtype=jnp.float32) / 10.0  # ||u||^2 = sum(i^2) / 100 = 94.55
    r = _fast(lambda p: hessian_eigenvalues(lambda w: 0.5 * jnp.dot(u, w) ** 2, p, k=2, num_iters=6))(
        jnp.zeros(30, jnp.float32)
    )
    assert r.largest.dtype == jnp.float32
    np.testing.assert_allclose(r.largest, [94.55, 0.0], rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(r.smallest, [0.0, 0.0], atol=1e-4)
    # zero (float64, a linear loss): breakdown at every step
    z = _fast(lambda p: hessian_eigenvalues(lambda w: jnp.sum(w), p, k=3, num_iters=8))(jnp.ones(30))
    for field in (*r, *z):
        assert np.all(np.isfinite(np.asarray(field)))
    np.testing.assert_array_equal(z.largest, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(z.smallest, [0.0, 0.0, 0.0])


def test_low_precision_params_compute_in_float32_and_mixed_in_float64_under_strict_promotion():
    a32 = jnp.asarray(_symmetric([-2.0, 0.5, 1.0, 4.0], seed=3), jnp.float32)

    def loss_any(p):  # receives float32 leaves whatever the parameters' dtype (bfloat16 here)
        w = jnp.concatenate([p["h"], p["f"]])
        assert w.dtype == jnp.float32
        return 0.5 * w @ (a32 @ w)

    params = {"h": jnp.zeros(2, jnp.bfloat16), "f": jnp.zeros(2, jnp.float32)}
    with jax.numpy_dtype_promotion("strict"):
        r = _fast(lambda p: hessian_eigenvalues(loss_any, p, k=1))(params)
    assert r.largest.dtype == jnp.float32
    np.testing.assert_allclose([r.smallest[0], r.largest[0]], [-2.0, 4.0], atol=1e-5)

    def loss_mixed(p):
        assert p["a"].dtype == p["b"].dtype == jnp.float64
        return jnp.sum(p["a"] ** 2) * 1.5 - jnp.sum(p["b"] ** 2) * 0.25

    params = {"a": jnp.ones(3, jnp.float32), "b": jnp.ones(2, jnp.float64)}
    with jax.numpy_dtype_promotion("strict"):
        # the Hessian is diag(3, 3, 3, -0.5, -0.5): Rademacher probes give its trace exactly
        t = _fast(lambda p: hutchinson_trace(loss_mixed, p, num_samples=2))(params)
    assert t.dtype == jnp.float64
    assert float(t) == 3 * 3.0 - 2 * 0.5


# --- a small MLP against its dense Hessian -------------------------------------------------------------


def _mlp(sizes, batch, seed=0):
    rng = np.random.default_rng(seed)
    params = [
        {"w": jnp.asarray(rng.normal(size=(a, b)) / np.sqrt(a)), "b": jnp.asarray(0.1 * rng.normal(size=b))}
        for a, b in itertools.pairwise(sizes)
    ]
    x = jnp.asarray(rng.normal(size=(batch, sizes[0])))
    y = jnp.asarray(rng.normal(size=(batch, sizes[-1])))

    def loss(p):
        h = x
        for i, layer in enumerate(p):
            h = h @ layer["w"] + layer["b"]
            if i < len(p) - 1:
                h = jnp.tanh(h)
        return 0.5 * jnp.mean(jnp.sum((h - y) ** 2, axis=-1))

    return params, loss


def test_mlp_lanczos_extremes_match_the_dense_hessian_eigendecomposition():
    # 793 float64 parameters (6-24-24-1, tanh, mean squared error on 64 random points). The dense check costs
    # O(n^3) (a 10k-parameter MLP takes minutes on two CPU cores: see the helper's report), hence this size.
    params, loss = _mlp([6, 24, 24, 1], batch=64)
    x0, unravel = ravel_pytree(params)
    assert x0.shape == (793,)
    dense = np.asarray(jax.jit(jax.hessian(lambda x: loss(unravel(x))))(x0))
    ev = np.linalg.eigvalsh(dense)
    assert ev[0] < -0.5 and ev[-1] > 4.0  # indefinite: a non-convex loss at a random point
    r = _fast(lambda p: hessian_eigenvalues(loss, p, k=3, which="both"))(params)  # 64 steps, 8% of n
    scale = np.abs(ev).max()
    np.testing.assert_allclose(r.largest, ev[::-1][:3], rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(r.smallest, ev[:3], rtol=0, atol=1e-9 * scale)
    assert np.all(np.asarray(r.largest_residuals) < 1e-8) and np.all(np.asarray(r.smallest_residuals) < 1e-8)
    assert critical_point_verdict(1.0, float(r.smallest[0]), float(r.largest[0])) == NOT_CRITICAL
    assert critical_point_verdict(0.0, float(r.smallest[0]), float(r.largest[0])) == SADDLE_POINT


@pytest.mark.skipif(
    os.environ.get("GRADTX_SLOW") != "1", reason="10k-parameter dense eigvalsh takes ~3 min on 2 cores: GRADTX_SLOW=1"
)
def test_10k_parameter_mlp_lanczos_matches_the_dense_hessian():
    # The size: 64-128-16-1 (10,401 float64 parameters). Run with GRADTX_SLOW=1 (not in CI).
    params, loss = _mlp([64, 128, 16, 1], batch=128)
    x0, unravel = ravel_pytree(params)
    assert x0.shape == (10_401,)
    dense = np.asarray(jax.jit(jax.hessian(lambda x: loss(unravel(x))))(x0))
    ev = np.linalg.eigvalsh(dense)
    r = jax.jit(lambda p: hessian_eigenvalues(loss, p, k=3, which="both", num_iters=128))(params)
    scale = np.abs(ev).max()
    np.testing.assert_allclose(r.largest, ev[::-1][:3], rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(r.smallest, ev[:3], rtol=0, atol=1e-9 * scale)


# --- Hutchinson's trace --------------------------------------------------------------------------------


def test_hutchinson_is_exact_for_a_diagonal_hessian():
    # z_i^2 = 1 for Rademacher probes, so z^T D z = tr D for every probe.
    c = {"a": jnp.asarray([3.0, -1.5, 0.25]), "b": jnp.asarray([[2.0, 7.0], [-4.0, 0.5]])}

    def loss(p):
        return 0.5 * sum(jnp.sum(c[k] * p[k] ** 2) for k in p)

    params = {"a": jnp.ones(3), "b": jnp.ones((2, 2))}
    trace = 3.0 - 1.5 + 0.25 + 2.0 + 7.0 - 4.0 + 0.5
    assert float(_fast(lambda p: hutchinson_trace(loss, p, num_samples=3))(params)) == pytest.approx(trace, abs=1e-13)


def test_hutchinson_is_unbiased_on_a_dense_hessian():
    lam = np.linspace(-1.0, 3.0, 20)
    a = _symmetric(lam, seed=4)
    var = 2.0 * (np.sum(a**2) - np.sum(np.diag(a) ** 2))  # Var[z^T A z] for Rademacher z
    s = 2000
    loss = _quadratic(a)
    est = _fast(lambda p, k: hutchinson_trace(loss, p, num_samples=s, key=k))
    values = [float(est(jnp.zeros(20), jax.random.PRNGKey(i))) for i in range(2)]
    assert values[0] != values[1]
    for v in values:
        assert abs(v - lam.sum()) < 4.0 * np.sqrt(var / s)


# --- power iteration reuse, and why Lanczos is the tool for the extremes -------------------------------


def test_power_iteration_on_hvp_gives_the_eigenvalue_of_largest_magnitude():
    # gradtx.numerics.power_iteration takes a matrix-vector product on pytrees: hvp plugs in directly. It finds
    # the eigenvalue of largest magnitude, here the most negative (hessian_eigenvalues reports it as smallest).
    loss = _quadratic(_symmetric([-5.0, 1.0, 2.0, 3.0], seed=5))
    params = {"w": jnp.ones(4)}

    def loss_tree(p):
        return loss(p["w"])

    eig, _ = power_iteration(lambda v: hvp(loss_tree, params, v), v0=params, num_iters=500, error_tolerance=1e-10)
    assert float(eig) == pytest.approx(-5.0, rel=1e-6)


# --- classification ------------------------------------------------------------------------------------


def test_classification_of_minimum_and_maximum_and_degenerate_points_under_vmap():
    # hessian_eigenvalues under jit and vmap (over the Hessian's matrix), read by critical_point_verdict
    a = _symmetric([0.5, 1.0, 2.0, 8.0], seed=6)

    def extremes(m):
        r = hessian_eigenvalues(lambda w: 0.5 * w @ (m @ w), jnp.zeros(4))
        return r.smallest[0], r.largest[0]

    lo, hi = _fast(jax.vmap(extremes))(jnp.stack([jnp.asarray(a), -jnp.asarray(a)]))
    np.testing.assert_allclose(lo, [0.5, -8.0], atol=1e-12)
    np.testing.assert_allclose(hi, [8.0, -0.5], atol=1e-12)
    assert critical_point_verdict(0.0, float(lo[0]), float(hi[0])) == LOCAL_MINIMUM
    assert critical_point_verdict(0.0, float(lo[1]), float(hi[1])) == LOCAL_MAXIMUM
    # the second-order test cannot tell a minimum (w1^2 + w2^4) from a ledge (w1^2 + w2^3): H = diag(2, 0) for both
    cp = classify_critical_point(lambda v: v[0] ** 2 + v[1] ** 3, jnp.zeros(2))
    assert cp == CriticalPoint(0.0, pytest.approx(0.0, abs=1e-15), pytest.approx(2.0, rel=1e-15), DEGENERATE)
    np.testing.assert_array_equal(jax.hessian(lambda v: v[0] ** 2 + v[1] ** 4)(jnp.zeros(2)), np.diag([2.0, 0.0]))
    assert set(VERDICTS) == {NOT_CRITICAL, LOCAL_MINIMUM, LOCAL_MAXIMUM, SADDLE_POINT, DEGENERATE}


def test_verdict_rules_and_absolute_tolerances():
    v = critical_point_verdict
    assert v(2e-6, 1.0, 2.0) == NOT_CRITICAL  # |g| > grad_tol = tol = 1e-6
    assert v(float("nan"), 1.0, 2.0) == NOT_CRITICAL
    assert v(2e-6, 1.0, 2.0, grad_tol=1e-5) == LOCAL_MINIMUM
    assert v(1e-6, 1.0, 2.0) == LOCAL_MINIMUM  # grad_tol inclusive
    assert v(0.0, -2.0, -1.0) == LOCAL_MAXIMUM
    assert v(0.0, -1.0, 1.0) == SADDLE_POINT
    assert v(0.0, 1e-4, 1.0) == LOCAL_MINIMUM
    assert v(0.0, 1e-4, 1.0, tol=1e-4) == DEGENERATE  # |lambda| <= tol counts as 0: positive semi-definite
    assert v(0.0, -1e-4, 1.0, tol=1e-4) == DEGENERATE
    assert v(0.0, -1.0, 1e-7) == DEGENERATE  # negative semi-definite with a zero eigenvalue
    assert v(0.0, 0.0, 0.0) == DEGENERATE
    assert v(0.0, -1.0, 2e-6) == SADDLE_POINT
    # classify_critical_point applies the same rules to what it computes
    loss = _quadratic(np.diag([1e-4, 1.0]))
    cp = classify_critical_point(loss, jnp.asarray([0.0, 1e-5]), tol=2e-4)  # gradient (0, 1e-5)
    assert cp.grad_norm == pytest.approx(1e-5, rel=1e-12)
    assert cp.verdict == DEGENERATE == v(cp.grad_norm, cp.min_eigenvalue, cp.max_eigenvalue, tol=2e-4)


# --- errors ----------------------------------------------------------------------------------------------


def test_argument_errors_name_the_call_and_the_value():
    loss = _quadratic(np.eye(3))
    w = jnp.zeros(3)
    cases = [
        (lambda: hessian_eigenvalues(loss, w, k=0), ValueError, "hessian_eigenvalues(k=0): k must be an integer >= 1"),
        (
            lambda: hessian_eigenvalues(loss, w, k=4),
            ValueError,
            "hessian_eigenvalues(k=4): k must be at most the number of parameters, 3",
        ),
        (
            lambda: hessian_eigenvalues(loss, w, which="top"),
            ValueError,
            "hessian_eigenvalues(which='top'): which must be one of 'largest', 'smallest', 'both'",
        ),
        (
            lambda: hessian_eigenvalues(loss, w, k=2, num_iters=1),
            ValueError,
            "hessian_eigenvalues(num_iters=1): num_iters must be >= k = 2",
        ),
        (
            lambda: hessian_eigenvalues(loss, w, num_iters=2.5),
            ValueError,
            "hessian_eigenvalues(num_iters=2.5): num_iters must be an integer >= 1",
        ),
        (
            lambda: hutchinson_trace(loss, w, num_samples=0),
            ValueError,
            "hutchinson_trace(num_samples=0): num_samples must be an integer >= 1",
        ),
        (
            lambda: classify_critical_point(loss, w, tol=-1.0),
            ValueError,
            "classify_critical_point(tol=-1.0): tol must be in [0, inf)",
        ),
        (
            lambda: classify_critical_point(loss, w, grad_tol=float("nan")),
            ValueError,
            "classify_critical_point(grad_tol=nan): grad_tol must be in [0, inf)",
        ),
        (
            lambda: hessian_eigenvalues(lambda p: 0.0, {}),
            ValueError,
            "hessian_eigenvalues: params must have at least one leaf",
        ),
        (
            lambda: hutchinson_trace(lambda p: 0.0, {"a": jnp.zeros(2), "n": jnp.zeros(2, jnp.int32)}),
            TypeError,
            "hutchinson_trace: params must be real floating-point arrays; the leaf ['n'] has dtype int32",
        ),
    ]
    for fn, err, text in cases:
        with pytest.raises(err, match=re.escape(text)):
            fn()
