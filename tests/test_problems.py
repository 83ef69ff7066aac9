"""The problem zoo: closed forms against iteration and against autodiff, and the valley's constants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradtx.testing.problems import NarrowValley, Quadratic, narrow_valley, rosenbrock


def _spd(rng: np.random.Generator, n: int, eigenvalues: np.ndarray) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return Q @ np.diag(eigenvalues) @ Q.T


def _iterate_gd(A: np.ndarray, x_star: np.ndarray, x0: np.ndarray, lr: float, steps: int) -> np.ndarray:
    xs = [np.asarray(x0, dtype=np.float64)]
    for _ in range(steps):
        x = xs[-1]
        xs.append(x - lr * (A @ (x - x_star)))
    return np.stack(xs)


@pytest.mark.parametrize("lr", [0.01, 0.3, 0.55])  # monotone, some axes flipping sign, largest axis at 1.65
def test_quadratic_gd_trajectory_matches_iterated_gd(lr):
    rng = np.random.default_rng(0)
    A = _spd(rng, 4, np.array([0.05, 0.4, 1.7, 3.0]))
    x_star = rng.normal(size=4)
    x0 = rng.normal(size=4) * 3
    q = Quadratic(A, x_star)
    closed = q.gd_trajectory(x0, lr, 50)
    looped = _iterate_gd(A, x_star, x0, lr, 50)
    assert closed.shape == (51, 4)
    np.testing.assert_allclose(closed, looped, rtol=1e-10, atol=1e-12)


def test_quadratic_gd_trajectory_oscillates_at_the_edge_of_stability():
    q = Quadratic(np.diag([1.0, 4.0]))
    traj = q.gd_trajectory([1.0, 1.0], 0.5, 6)  # factors 0.5 and -1
    np.testing.assert_allclose(traj[:, 1], [1, -1, 1, -1, 1, -1, 1])
    np.testing.assert_allclose(traj[:, 0], 0.5 ** np.arange(7))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_quadratic_autodiff_gradient_equals_closed_form(dtype):
    rng = np.random.default_rng(1)
    q = Quadratic(_spd(rng, 3, np.array([0.1, 1.0, 10.0])), rng.normal(size=3))
    for _ in range(5):
        w = jnp.asarray(rng.normal(size=3), dtype)
        tol = 1e-5 if dtype == jnp.float32 else 1e-12
        np.testing.assert_allclose(jax.grad(q.loss)(w), q.grad(w), rtol=tol, atol=tol)
        np.testing.assert_allclose(
            q.grad(w), q.A @ (np.asarray(w, np.float64) - q.x_star), rtol=10 * tol, atol=10 * tol
        )
        assert q.loss(w).dtype == dtype
        np.testing.assert_allclose(q.loss(w), q.loss_np(np.asarray(w, np.float64)), rtol=10 * tol)


def test_quadratic_minimum_and_validation():
    q = Quadratic(np.diag([2.0, 3.0]), [1.0, -1.0])
    np.testing.assert_array_equal(q.minimum, [1.0, -1.0])
    assert float(q.loss(jnp.asarray(q.minimum))) == 0.0
    np.testing.assert_array_equal(q.grad(jnp.asarray(q.minimum)), [0.0, 0.0])
    with pytest.raises(ValueError, match="symmetric"):
        Quadratic(np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="positive semi-definite"):
        Quadratic(np.diag([1.0, -1.0]))
    with pytest.raises(ValueError, match="square"):
        Quadratic(np.ones((2, 3)))
    with pytest.raises(ValueError, match="x_star"):
        Quadratic(np.eye(2), [0.0, 0.0, 0.0])


def test_rosenbrock_minimum_gradient_and_hessian():
    for a, b in [(1.0, 100.0), (2.0, 10.0)]:
        r = rosenbrock(a, b)
        m = jnp.asarray(r.minimum)
        np.testing.assert_array_equal(r.minimum, [a, a * a])
        assert float(r.loss(m)) == 0.0
        np.testing.assert_array_equal(r.grad(m), [0.0, 0.0])
        np.testing.assert_array_equal(jax.grad(r.loss)(m), [0.0, 0.0])
        np.testing.assert_allclose(jax.hessian(r.loss)(m), r.hessian_at_minimum(), rtol=1e-12)


def test_rosenbrock_autodiff_gradient_equals_closed_form():
    r = rosenbrock()
    rng = np.random.default_rng(2)
    for w in rng.normal(size=(5, 2)):
        w = jnp.asarray(w)
        np.testing.assert_allclose(jax.grad(r.loss)(w), r.grad(w), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.loss(jnp.asarray(r.start)), r.loss_np(r.start), rtol=1e-12)


def test_narrow_valley_constants_give_the_claimed_factors():
    v = narrow_valley()
    assert isinstance(v, NarrowValley)
    np.testing.assert_allclose(v.eigenvalues, [v.flat, v.steep])
    np.testing.assert_allclose(np.linalg.eigvalsh(v.A), [0.002, 200.0], rtol=1e-12)
    # lr = 1e-2: the steep axis's factor is -1 (oscillation with constant amplitude), the flat one ~1.
    flat_factor, steep_factor = v.gd_factors(1e-2)
    assert abs(abs(steep_factor) - 1.0) < 1e-12
    assert steep_factor < 0
    assert flat_factor == pytest.approx(1 - 2e-5)
    assert abs(1 - np.float32(1e-2) * np.float32(v.steep)) == 1.0  # float32 rounds lr * steep to exactly 2
    # lr = 1e-7: no oscillation, and 100,000 steps shrink the wall error to exp(-2) only.
    flat_factor, steep_factor = v.gd_factors(1e-7)
    assert 0 < steep_factor < 1 and 0 < flat_factor < 1
    assert steep_factor**100_000 == pytest.approx(np.exp(-2), rel=1e-4)
    assert flat_factor**100_000 > 0.9999
    # The condition number and the start on the wall, far along the floor.
    assert v.steep / v.flat == pytest.approx(1e5)
    u0, v0 = v.valley_coordinates(v.start)
    assert u0 == pytest.approx(100.015, abs=1e-3) and v0 == pytest.approx(1.0, abs=1e-3)
    assert v.loss_np(v.start) == pytest.approx(110.0, rel=1e-3)


def test_narrow_valley_minimum_floor_and_gradient():
    v = narrow_valley()
    m = jnp.asarray(v.minimum, jnp.float32)
    assert float(v.loss(m)) == 0.0
    np.testing.assert_array_equal(v.grad(m), [0.0, 0.0])
    np.testing.assert_array_equal(jax.grad(v.loss)(m), [0.0, 0.0])
    xs = np.array([-5.0, 10.0, 60.0, 100.0])
    floor = np.stack([xs, v.floor(xs)], axis=-1)
    np.testing.assert_allclose(v.valley_coordinates(floor)[:, 1], 0.0, atol=1e-12)
    rng = np.random.default_rng(3)
    for w in rng.normal(size=(5, 2)) * [50.0, 1.0]:
        w64 = jnp.asarray(w)
        np.testing.assert_allclose(jax.grad(v.loss)(w64), v.grad(w64), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(v.grad(w64), v.A @ w, rtol=1e-10, atol=1e-10)


def test_narrow_valley_float32_keeps_the_flat_direction():
    # Along the floor the loss and gradient are tiny next to the wall's; float32 still gets them right.
    v = narrow_valley()
    for distance in [0.3, 3.0, 30.0]:
        w = (v.minimum + distance * v.eigenvectors[:, 0]).astype(np.float32)
        w64 = w.astype(np.float64)  # the float32 point, exactly
        assert float(v.loss(jnp.asarray(w))) == pytest.approx(v.loss_np(w64), rel=1e-5)
        along = np.asarray(v.grad(jnp.asarray(w)), np.float64) @ v.eigenvectors[:, 0]
        assert along == pytest.approx(v.flat * distance, rel=1e-5)


def test_contour_grids():
    v = narrow_valley()
    X, Y, Z = v.contour_grid(n=50)
    assert X.shape == Y.shape == Z.shape == (50, 50)
    assert Z.min() >= 0 and np.isfinite(Z).all()
    assert v.xlim[0] < v.minimum[0] < v.start[0] < v.xlim[1]
    assert v.ylim[0] < v.minimum[1] < v.start[1] < v.ylim[1]
    X, Y, Z = rosenbrock().contour_grid((0.0, 2.0), (0.0, 2.0), n=201)
    i = np.unravel_index(np.argmin(Z), Z.shape)
    assert (X[i], Y[i]) == pytest.approx((1.0, 1.0), abs=0.02)
