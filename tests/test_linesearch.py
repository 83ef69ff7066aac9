"""Line searches and L-BFGS: Optax parity, the conditions they guarantee, the dense BFGS oracle, the contract.

The registry tiers cannot drive the line searches (they need ``value``, ``grad`` and ``value_fn`` consistent
with the params at every step), so this file runs the contract checks itself with a consistent objective,
and compares with Optax and with ``gradtx.testing.reference.linesearch`` on real optimisation problems.
"""

from __future__ import annotations

import math
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from gradtx.base import apply_updates
from gradtx.combine import chain
from gradtx.optimizers.classic import sgd
from gradtx.optimizers.lbfgs import lbfgs
from gradtx.testing.contract import default_params
from gradtx.testing.problems import rosenbrock
from gradtx.testing.reference import linesearch as ref
from gradtx.transforms.lbfgs import ScaleByLBFGSState, scale_by_lbfgs
from gradtx.transforms.linesearch import (
    BacktrackingLinesearchInfo,
    ScaleByBacktrackingLinesearchState,
    ScaleByZoomLinesearchState,
    ZoomLinesearchInfo,
    scale_by_backtracking_linesearch,
    scale_by_zoom_linesearch,
    value_and_grad_from_state,
)
from gradtx.tree import compute_dtype

ROSEN = rosenbrock()


def _quadratic(n: int, seed: int, cond: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """A random SPD matrix with eigenvalues log-spaced in [1, cond] and a random start."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A = Q @ np.diag(np.logspace(0, math.log10(cond), n)) @ Q.T
    return 0.5 * (A + A.T), rng.normal(size=n)


def _quad_loss(A: np.ndarray):
    def loss(w):
        return 0.5 * jnp.vdot(w, jnp.asarray(A, w.dtype) @ w)

    return loss


def _minimise(opt, loss, x0, *, iters, gtol=None, ours=True, vg_from_state=True):
    """Run ``opt`` with the line-search protocol; returns (params history, states, values, grads) per step.

    gradtx's optimizer is passed to the jitted step as an argument (it is a pytree); Optax's is closed over.
    Stops after the step whose incoming gradient norm is below ``gtol``.
    """
    apply = apply_updates if ours else optax.apply_updates
    vgs = (value_and_grad_from_state if ours else optax.value_and_grad_from_state)(loss)

    def step(o, p, s):
        if vg_from_state:
            v, g = vgs(p, state=s)
        else:
            v, g = jax.value_and_grad(loss)(p)
        u, s = o.update(g, s, p, value=v, grad=g, value_fn=loss)
        return apply(p, u), s, v, g, u

    if ours:
        jitted = jax.jit(step)
    else:
        jitted = jax.jit(lambda o, p, s: step(opt, p, s), static_argnums=0)
    p, s = x0, opt.init(x0)
    ps, states, values, grads, ups = [p], [s], [], [], []
    for _ in range(iters):
        p, s, v, g, u = jitted(opt if ours else None, p, s)
        ps.append(p)
        states.append(s)
        values.append(v)
        grads.append(g)
        ups.append(u)
        if gtol is not None and float(jnp.linalg.norm(ravel_pytree(g)[0])) < gtol:
            break
    return ps, states, values, grads, ups


def _f64(x):
    return np.asarray(ravel_pytree(x)[0], np.float64)


# --------------------------------------------------------------------------------------------------
# L-BFGS against Optax.
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lbfgs_rosenbrock_same_point_and_iterations_as_optax(dtype):
    x0 = jnp.asarray(ROSEN.start, dtype)
    gtol = 1e-6 if dtype == "float64" else 1e-3
    ours = _minimise(lbfgs(), ROSEN.loss, x0, iters=100, gtol=gtol)
    theirs = _minimise(optax.lbfgs(), ROSEN.loss, x0, iters=100, gtol=gtol, ours=False)
    n_ours, n_theirs = len(ours[2]), len(theirs[2])
    assert n_ours < 100 and n_theirs < 100
    assert abs(n_ours - n_theirs) <= 2, (n_ours, n_theirs)
    np.testing.assert_allclose(_f64(ours[0][-1]), ROSEN.minimum, atol=1e-6 if dtype == "float64" else 2e-3)
    np.testing.assert_allclose(_f64(ours[0][-1]), _f64(theirs[0][-1]), atol=1e-8 if dtype == "float64" else 2e-3)
    # Step by step: the same iterates and accepted step sizes while the path is well conditioned. Rounding
    # differences (where XLA fuses a multiply-add) grow along Rosenbrock's curved valley: in float64 the 25
    # steps agree to 1e-9 relative under XLA's default flags, to ~3e-7 under the suite's cheap compile flags
    # (conftest.py); hence 1e-6.
    k = 25 if dtype == "float64" else 8
    for a, b in zip(ours[0][:k], theirs[0][:k]):
        np.testing.assert_allclose(_f64(a), _f64(b), rtol=1e-6 if dtype == "float64" else 1e-4, atol=1e-12)
    lr_ours = [float(s[2].learning_rate) for s in ours[1][1:k]]
    lr_theirs = [float(s[2].learning_rate) for s in theirs[1][1:k]]
    np.testing.assert_allclose(lr_ours, lr_theirs, rtol=1e-6 if dtype == "float64" else 1e-3)


@pytest.mark.parametrize("n", [4, 10])
def test_lbfgs_quadratic_converges_in_about_n_steps_like_optax(n):
    A, x0 = _quadratic(n, seed=n)
    loss = _quad_loss(A)
    g0 = np.linalg.norm(A @ x0)
    # Finite termination (L-BFGS = conjugate gradients on a quadratic) needs exact line searches: a small
    # curvature tolerance makes the zoom search land on the exact minimiser along the line.
    exact = dict(max_linesearch_steps=30, curv_rtol=1e-3, initial_guess_strategy="one")
    counts = {}
    for name, opt, ours in [
        ("ours", lbfgs(linesearch=scale_by_zoom_linesearch(**exact)), True),
        ("optax", optax.lbfgs(linesearch=optax.scale_by_zoom_linesearch(**exact)), False),
    ]:
        ps, *_ = _minimise(opt, loss, jnp.asarray(x0), iters=4 * n, ours=ours)
        residual = [np.linalg.norm(A @ _f64(p)) / g0 for p in ps]
        counts[name] = next(k for k, r in enumerate(residual) if r < 1e-8)
    assert counts["ours"] <= n + 1, counts
    assert counts["ours"] == counts["optax"], counts
    # With the default (inexact) search it still converges, in the same number of steps as Optax.
    default_counts = []
    for opt, ours in [(lbfgs(), True), (optax.lbfgs(), False)]:
        ps, *_ = _minimise(opt, loss, jnp.asarray(x0), iters=80, ours=ours)
        residual = [np.linalg.norm(A @ _f64(p)) / g0 for p in ps]
        default_counts.append(next(k for k, r in enumerate(residual) if r < 1e-8))
    assert default_counts[0] == default_counts[1], default_counts


def test_lbfgs_first_steps_closed_form():
    """Optax's docstring example: f = |x|^2 from (1, 2, 3); the first step has length 1 along -g/|g|, so
    f_1 = (sqrt(14) - 1)^2; then gamma = <s, y> / <y, y> = 1/2 is the exact inverse Hessian: f_2 = 0."""
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    ps, states, *_ = _minimise(lbfgs(), f, jnp.asarray([1.0, 2.0, 3.0], jnp.float64), iters=2)
    assert float(f(ps[1])) == pytest.approx((math.sqrt(14.0) - 1.0) ** 2, rel=1e-12)
    assert float(f(ps[2])) < 1e-20
    assert float(states[1][2].learning_rate) == 1.0


def test_lbfgs_matches_optax_states_and_names():
    x0 = {"a": jnp.asarray([0.5, -1.0]), "b": jnp.asarray(2.0)}

    def loss(p):
        return jnp.sum((p["a"] - 1.0) ** 4) + (p["b"] + p["a"][0]) ** 2

    ours = _minimise(lbfgs(memory_size=3), loss, x0, iters=8)
    theirs = _minimise(optax.lbfgs(memory_size=3), loss, x0, iters=8, ours=False)
    paths = lambda t: [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(t)[0]]  # noqa: E731
    assert paths(ours[1][0]) == paths(theirs[1][0])
    assert type(ours[1][0][0]).__name__ == type(theirs[1][0][0]).__name__ == "ScaleByLBFGSState"
    assert type(ours[1][0][2]).__name__ == type(theirs[1][0][2]).__name__ == "ScaleByZoomLinesearchState"
    assert type(ours[1][0][2].info).__name__ == "ZoomLinesearchInfo"
    for s1, s2 in zip(ours[1], theirs[1]):
        for x, y in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
            np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=1e-7, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# Backtracking: Armijo at every accepted step, the same step sizes as Optax and as the NumPy reference.
# --------------------------------------------------------------------------------------------------


def _problems():
    A, x0 = _quadratic(6, seed=3, cond=50.0)
    return {
        "quadratic": (_quad_loss(A), lambda w: 0.5 * w @ A @ w, x0),
        "rosenbrock": (ROSEN.loss, ROSEN.loss_np, ROSEN.start),
    }


@pytest.mark.parametrize("problem", ["quadratic", "rosenbrock"])
@pytest.mark.parametrize("store_grad", [False, True])
def test_backtracking_armijo_and_optax_step_sizes(problem, store_grad):
    loss, loss_np, x0 = _problems()[problem]
    steps = 60
    kw = dict(max_backtracking_steps=50, store_grad=store_grad)
    ours = _minimise(chain(sgd(1.0), scale_by_backtracking_linesearch(**kw)), loss, jnp.asarray(x0), iters=steps,
                     vg_from_state=store_grad)
    theirs = _minimise(optax.chain(optax.sgd(1.0), optax.scale_by_backtracking_linesearch(**kw)), loss,
                       jnp.asarray(x0), iters=steps, ours=False, vg_from_state=store_grad)
    oracle = ref.scale_by_backtracking_linesearch(**kw)
    ps, states, values, grads, _ = ours
    for k in range(steps):
        s = states[k + 1][1]
        w, g = _f64(ps[k]), _f64(grads[k])
        lr = float(s.learning_rate)
        # The search succeeded, and Armijo holds in float64 at the accepted step (the direction is -g).
        assert float(s.info.decrease_error) == 0.0, k
        assert ref.armijo_holds(loss_np(w), g @ -g, loss_np(_f64(ps[k + 1])), lr, 1e-4), k
        # Optax accepted the same step size.
        assert lr == pytest.approx(float(theirs[1][k + 1][1].learning_rate), rel=1e-10), k
        assert int(s.info.num_linesearch_steps) == int(theirs[1][k + 1][1].info.num_linesearch_steps), k
        # So did the NumPy reference, from the same point.
        u = oracle.step(-g, w, value=float(values[k]), grad=g, value_fn=loss_np)
        assert lr == pytest.approx(oracle.learning_rate, rel=1e-10), k
        np.testing.assert_allclose(u, _f64(ps[k + 1]) - w, rtol=1e-9, atol=1e-14)
        if store_grad:  # the stored value and gradient are those at the accepted point
            # (up to the rounding of w + lr d, computed once inside the search and once by apply_updates)
            want = _f64(jax.grad(loss)(ps[k + 1]))
            np.testing.assert_allclose(float(s.value), loss_np(_f64(ps[k + 1])), rtol=1e-10)
            np.testing.assert_allclose(_f64(s.grad), want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
    assert loss_np(_f64(ps[-1])) < loss_np(np.asarray(x0, np.float64))


def test_backtracking_start_guess_and_failure_modes():
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    x = jnp.asarray([1.0, -2.0])
    v, g = jax.value_and_grad(f)(x)
    tx = scale_by_backtracking_linesearch(10, increase_factor=math.inf, max_learning_rate=0.3)
    u, s = tx.update(-g, tx.init(x), x, value=v, grad=g, value_fn=f)
    assert float(s.learning_rate) == pytest.approx(0.3)  # min(inf * 1, 0.3), accepted at once
    assert int(s.info.num_linesearch_steps) == 1
    np.testing.assert_allclose(u, -0.3 * g, rtol=1e-6)
    # An ascent direction never satisfies the condition: after max_backtracking_steps + 1 values the last
    # step is taken anyway (its value is finite) and the error says so.
    u, s = tx.update(g, tx.init(x), x, value=v, grad=g, value_fn=f)
    assert int(s.info.num_linesearch_steps) == 11 and float(s.info.decrease_error) > 0.0
    assert float(s.learning_rate) == pytest.approx(0.3 * 0.8**10)
    # A value that is never finite: no step at all.
    nan_fn = lambda x: jnp.sum(x) * jnp.nan  # noqa: E731
    u, s = tx.update(-g, tx.init(x), x, value=v, grad=g, value_fn=nan_fn)
    assert float(s.learning_rate) == 0.0 and np.all(np.asarray(u) == 0.0)
    assert math.isinf(float(s.info.decrease_error))


# --------------------------------------------------------------------------------------------------
# Zoom: the strong Wolfe conditions at every accepted step.
# --------------------------------------------------------------------------------------------------


def _slope(loss, w, d):
    return float(jnp.vdot(jax.grad(loss)(jnp.asarray(w)), jnp.asarray(d)))


@pytest.mark.parametrize("approx_dec_rtol", [None, 1e-6])
@pytest.mark.parametrize("c1,c2", [(1e-4, 0.9), (1e-3, 0.1)])
def test_zoom_accepts_only_strong_wolfe_steps(approx_dec_rtol, c1, c2):
    ls = scale_by_zoom_linesearch(30, slope_rtol=c1, curv_rtol=c2, approx_dec_rtol=approx_dec_rtol,
                                  initial_guess_strategy="one")
    ps, states, values, grads, ups = _minimise(lbfgs(linesearch=ls), ROSEN.loss, jnp.asarray(ROSEN.start),
                                               iters=200, gtol=1e-7)
    assert np.allclose(_f64(ps[-1]), ROSEN.minimum, atol=1e-6)
    checked = 0
    for k in range(len(values) - 1):
        s = states[k + 1][2]
        w, w_new, lr = _f64(ps[k]), _f64(ps[k + 1]), float(s.learning_rate)
        f0, f1 = float(ROSEN.loss_np(w)), float(ROSEN.loss_np(w_new))
        if abs(f0) < 1e-12:  # below rounding the conditions are not meaningful
            break
        assert float(s.info.decrease_error) == 0.0 and float(s.info.curvature_error) == 0.0, k
        d = _f64(ups[k]) / lr  # the direction the line search received
        slope0, slope1 = float(_f64(grads[k]) @ d), _slope(ROSEN.loss, w_new, d)
        assert slope0 < 0.0
        assert abs(slope1) <= c2 * abs(slope0) * (1 + 1e-9), k  # curvature (strong Wolfe)
        armijo = ref.armijo_holds(f0, slope0, f1, lr, c1)
        if approx_dec_rtol is None:
            assert armijo, k
        else:  # or Hager & Zhang's approximate Wolfe condition, near the minimum
            approx = slope1 <= (2 * c1 - 1) * slope0 and f1 <= f0 + approx_dec_rtol * abs(f0)
            assert armijo or approx, k
        assert ref.strong_wolfe_holds(f0, slope0, f1, slope1, lr, c1, c2 * (1 + 1e-9)) or not armijo
        checked += 1
    assert checked >= 10


def test_zoom_with_sgd_and_keep_strategy_and_max_learning_rate():
    A, x0 = _quadratic(5, seed=11)
    loss = _quad_loss(A)
    ours = _minimise(chain(sgd(1.0), scale_by_zoom_linesearch(15, max_learning_rate=0.05)), loss,
                     jnp.asarray(x0), iters=20)
    theirs = _minimise(optax.chain(optax.sgd(1.0), optax.scale_by_zoom_linesearch(15, max_learning_rate=0.05)),
                       loss, jnp.asarray(x0), iters=20, ours=False)
    lrs = [float(s[1].learning_rate) for s in ours[1][1:]]
    assert max(lrs) <= 0.05
    np.testing.assert_allclose(lrs, [float(s[1].learning_rate) for s in theirs[1][1:]], rtol=1e-9)
    np.testing.assert_allclose(_f64(ours[0][-1]), _f64(theirs[0][-1]), rtol=1e-9, atol=1e-12)


def test_zoom_takes_no_step_when_values_are_not_finite():
    x = jnp.asarray([1.0, 2.0])
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    v, g = jax.value_and_grad(f)(x)
    tx = scale_by_zoom_linesearch(5)
    bad = lambda y: jnp.where(jnp.all(y == x), f(y), jnp.nan)  # noqa: E731
    u, s = tx.update(-g, tx.init(x), x, value=v, grad=g, value_fn=bad)
    assert float(s.learning_rate) == 0.0 and np.all(np.asarray(u) == 0.0)
    assert float(s.value) == float(v)


# --------------------------------------------------------------------------------------------------
# scale_by_lbfgs: the two-loop recursion equals the dense inverse-Hessian BFGS update (float64 NumPy).
# --------------------------------------------------------------------------------------------------


def _curvature_stream(n, steps, seed):
    """Params and gradients g = A w + b + noise (random curvature pairs with <y, s> > 0)."""
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(n, n))
    A = B @ B.T / n + np.eye(n)
    b = rng.normal(size=n)
    ws = rng.normal(size=(steps, n)) * rng.choice([0.1, 1.0, 10.0], size=(steps, 1))
    gs = ws @ A.T + b + 0.01 * rng.normal(size=(steps, n))
    return ws, gs


@pytest.mark.parametrize("memory_size,scale_init_precond", [(10, True), (4, True), (3, False), (1, True)])
def test_two_loop_equals_dense_bfgs(memory_size, scale_init_precond):
    n, steps = 7, 16
    ws, gs = _curvature_stream(n, steps, seed=memory_size)
    tree0 = {"a": jnp.zeros((2, 2)), "b": (jnp.zeros(3),)}
    _, unravel = ravel_pytree(tree0)
    tx, oracle = scale_by_lbfgs(memory_size, scale_init_precond), ref.scale_by_lbfgs(memory_size, scale_init_precond)
    optax_tx = optax.scale_by_lbfgs(memory_size, scale_init_precond)
    update, optax_update = jax.jit(lambda t, g, s, p: t.update(g, s, p)), jax.jit(optax_tx.update)
    state, optax_state = tx.init(tree0), optax_tx.init(tree0)
    for k in range(steps):
        g, w = unravel(jnp.asarray(gs[k])), unravel(jnp.asarray(ws[k]))
        u, state = update(tx, g, state, w)
        want = oracle.step(gs[k], ws[k])
        np.testing.assert_allclose(_f64(u), want, rtol=1e-10, atol=1e-12 * np.abs(want).max(), err_msg=f"step {k}")
        # The dense matrix is symmetric positive definite (every <y, s> > 0) and satisfies the newest secant
        # equation H y = s.
        H = oracle.H
        np.testing.assert_allclose(H, H.T, atol=1e-10 * np.abs(H).max())
        assert np.linalg.eigvalsh(H).min() > 0
        if k >= 1:
            s_, y_, _ = oracle.pairs[-1]
            np.testing.assert_allclose(H @ y_, s_, rtol=1e-8, atol=1e-10 * np.abs(s_).max())
        u_optax, optax_state = optax_update(g, optax_state, w)
        np.testing.assert_allclose(_f64(u), _f64(u_optax), rtol=1e-9, atol=1e-12 * np.abs(want).max())
    assert int(state.count) == steps
    assert isinstance(state, ScaleByLBFGSState)


def test_scale_by_lbfgs_float32_close_to_dense_reference():
    n, steps = 7, 12
    ws, gs = _curvature_stream(n, steps, seed=5)
    tx, oracle = scale_by_lbfgs(5), ref.scale_by_lbfgs(5)
    state, update = tx.init(jnp.zeros(n, jnp.float32)), jax.jit(tx.update)
    for k in range(steps):
        g32, w32 = jnp.asarray(gs[k], jnp.float32), jnp.asarray(ws[k], jnp.float32)
        u, state = update(g32, state, w32)
        assert u.dtype == jnp.float32
        want = oracle.step(np.asarray(g32, np.float64), np.asarray(w32, np.float64))
        np.testing.assert_allclose(np.asarray(u, np.float64), want, rtol=2e-3, atol=2e-4 * np.abs(want).max())


def test_scale_by_lbfgs_params_required():
    # (its contract runs in the registry tiers, tests/registry_linesearch.py)
    with pytest.raises(ValueError, match=r"scale_by_lbfgs.update: params are required"):
        tx = scale_by_lbfgs()
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))


# --------------------------------------------------------------------------------------------------
# Extra keyword arguments.
# --------------------------------------------------------------------------------------------------


def _data_loss(params, x, y):
    return jnp.sum((x * params - y) ** 2)


LINESEARCHES = {
    "backtracking": lambda: scale_by_backtracking_linesearch(15),
    "backtracking(store_grad)": lambda: scale_by_backtracking_linesearch(15, store_grad=True),
    "zoom": lambda: scale_by_zoom_linesearch(15),
}


@pytest.mark.parametrize("name", list(LINESEARCHES))
def test_unknown_extra_kwargs_are_ignored(name):
    tx = LINESEARCHES[name]()
    p = jnp.asarray([1.0, 2.0, 3.0])
    x, y = jnp.asarray([3.0, 2.0, 1.0]), jnp.asarray(0.5)
    v, g = jax.value_and_grad(_data_loss)(p, x, y)
    d = -g
    # x and y go to value_fn (its signature names them); the unknown ones are ignored.
    base = tx.update(d, tx.init(p), p, value=v, grad=g, value_fn=_data_loss, x=x, y=y)
    extra = tx.update(d, tx.init(p), p, value=v, grad=g, value_fn=_data_loss, x=x, y=y,
                      rng_key=jax.random.key(0), step=3, something_else="ignored")
    np.testing.assert_array_equal(base[0], extra[0])
    assert float(base[1].learning_rate) == float(extra[1].learning_rate) > 0.0
    # The data reached value_fn: the accepted value is that of the data loss at the new point.
    np.testing.assert_allclose(float(base[1].value), float(_data_loss(p + base[0], x, y)), rtol=1e-6)
    # Optax raises on the same call (the defect gradtx fixes).
    optax_tx = {"backtracking": optax.scale_by_backtracking_linesearch(15),
                "backtracking(store_grad)": optax.scale_by_backtracking_linesearch(15, store_grad=True),
                "zoom": optax.scale_by_zoom_linesearch(15)}[name]
    with pytest.raises(TypeError, match="not consumed by `value_fn`"):
        optax_tx.update(d, optax_tx.init(p), p, value=v, grad=g, value_fn=_data_loss, x=x, y=y, step=3)


def test_extra_kwargs_in_a_chain_and_var_keyword_value_fn():
    """In lbfgs every block sees the extra arguments; a value_fn with **kwargs receives all of them."""
    seen = {}

    def loss(params, **kw):
        seen.update(kw)
        return jnp.sum((params - kw["target"]) ** 2)

    p, target = jnp.asarray([0.0, 0.0]), jnp.asarray([1.0, -1.0])
    opt = lbfgs()
    v, g = jax.value_and_grad(loss)(p, target=target)
    u, _ = opt.update(g, opt.init(p), p, value=v, grad=g, value_fn=loss, target=target, unrelated=1.0)
    assert set(seen) == {"target", "unrelated"}
    # The first L-BFGS step has length 1 along -g (gamma_0 = 1 / |g|), accepted by the search.
    np.testing.assert_allclose(p + u, target / np.sqrt(2.0), rtol=1e-6)


def test_missing_line_search_arguments_raise():
    p = jnp.ones(2)
    for tx, name in [(scale_by_backtracking_linesearch(3), "scale_by_backtracking_linesearch"),
                     (scale_by_zoom_linesearch(3), "scale_by_zoom_linesearch")]:
        with pytest.raises(ValueError, match=rf"{name}.update: .*required; missing: grad, value_fn"):
            tx.update(p, tx.init(p), p, value=1.0)
        with pytest.raises(ValueError, match=rf"{name}.update: params are required"):
            tx.update(p, tx.init(p), value=1.0, grad=p, value_fn=jnp.sum)


# --------------------------------------------------------------------------------------------------
# value_and_grad_from_state.
# --------------------------------------------------------------------------------------------------


def test_value_and_grad_from_state():
    f = lambda x: jnp.sum(jnp.cos(x) + x**2)  # noqa: E731
    p = jnp.asarray([0.3, -1.2, 2.0])
    opt = lbfgs()
    vg = value_and_grad_from_state(f)
    s = opt.init(p)
    v, g = vg(p, state=s)  # nothing stored yet: computed
    np.testing.assert_allclose(g, jax.grad(f)(p), rtol=1e-6)
    u, s = opt.update(g, s, p, value=v, grad=g, value_fn=f)
    p = apply_updates(p, u)
    v2, g2 = vg(jnp.zeros(3), state=s)  # stored: the value and gradient at the accepted point, not at 0
    np.testing.assert_allclose(float(v2), float(f(p)), rtol=1e-6)
    np.testing.assert_allclose(g2, jax.grad(f)(p), rtol=1e-5)
    # Extra positional and keyword arguments go to the function when it is computed.
    h = lambda x, a, *, b: jnp.sum(a * x**2) + b  # noqa: E731
    v3, _ = value_and_grad_from_state(h)(p, 2.0, state=opt.init(p), b=1.0)
    np.testing.assert_allclose(float(v3), float(h(p, 2.0, b=1.0)), rtol=1e-6)
    with pytest.raises(ValueError, match="no value and grad found"):
        vg(p, state=sgd(0.1).init(p))
    bt = scale_by_backtracking_linesearch(5)
    with pytest.raises(ValueError, match="store_grad=True"):
        vg(p, state=bt.init(p))
    with pytest.raises(KeyError, match="2 line-search states"):
        vg(p, state=(bt.init(p), scale_by_zoom_linesearch(3).init(p)))


# --------------------------------------------------------------------------------------------------
# Construction errors, names, reprs.
# --------------------------------------------------------------------------------------------------

BAD = [
    (scale_by_lbfgs, {"memory_size": 0}, "scale_by_lbfgs(memory_size=0): memory_size must be a whole number >= 1"),
    (scale_by_lbfgs, {"memory_size": 2.5}, "memory_size must be a whole number >= 1"),
    (scale_by_lbfgs, {"scale_init_precond": "yes"}, "scale_init_precond must be True or False"),
    (lbfgs, {"memory_size": -1}, "(memory_size=-1): memory_size must be a whole number >= 1"),
    (scale_by_backtracking_linesearch, {"max_backtracking_steps": -1},
     "scale_by_backtracking_linesearch(max_backtracking_steps=-1): max_backtracking_steps must be a whole number >= 0"),
    (scale_by_backtracking_linesearch, {"max_backtracking_steps": 2.5}, "must be a whole number >= 0"),
    (scale_by_backtracking_linesearch, {"max_backtracking_steps": 5, "slope_rtol": -0.1},
     "scale_by_backtracking_linesearch(slope_rtol=-0.1): slope_rtol must be in [0, 1)"),
    (scale_by_backtracking_linesearch, {"max_backtracking_steps": 5, "slope_rtol": 1.5},
     "slope_rtol=1.5): slope_rtol must be in [0, 1)"),
    (scale_by_backtracking_linesearch, {"max_backtracking_steps": 5, "decrease_factor": 1.0},
     "scale_by_backtracking_linesearch(decrease_factor=1.0): decrease_factor must be in (0, 1)"),
    (scale_by_backtracking_linesearch, {"max_backtracking_steps": 5, "decrease_factor": 0.0},
     "decrease_factor must be in (0, 1)"),
    (scale_by_backtracking_linesearch, {"max_backtracking_steps": 5, "increase_factor": 0.0},
     "scale_by_backtracking_linesearch(increase_factor=0.0): increase_factor must be > 0"),
    (scale_by_backtracking_linesearch, {"max_backtracking_steps": 5, "max_learning_rate": 0.0},
     "max_learning_rate must be > 0"),
    (scale_by_backtracking_linesearch, {"max_backtracking_steps": 5, "atol": -1.0}, "atol must be >= 0"),
    (scale_by_backtracking_linesearch, {"max_backtracking_steps": 5, "rtol": -1e-3}, "rtol must be >= 0"),
    (scale_by_zoom_linesearch, {"max_linesearch_steps": 0},
     "scale_by_zoom_linesearch(max_linesearch_steps=0): max_linesearch_steps must be a whole number >= 1"),
    (scale_by_zoom_linesearch, {"max_linesearch_steps": 5, "slope_rtol": -1e-4},
     "scale_by_zoom_linesearch(slope_rtol=-0.0001): slope_rtol must be in [0, 1)"),
    (scale_by_zoom_linesearch, {"max_linesearch_steps": 5, "slope_rtol": 1.0}, "slope_rtol must be in [0, 1)"),
    (scale_by_zoom_linesearch, {"max_linesearch_steps": 5, "curv_rtol": 1.0},
     "scale_by_zoom_linesearch(curv_rtol=1.0): curv_rtol must be in (0, 1) or inf"),
    (scale_by_zoom_linesearch, {"max_linesearch_steps": 5, "curv_rtol": 0.0}, "curv_rtol must be > 0"),
    (scale_by_zoom_linesearch, {"max_linesearch_steps": 5, "increase_factor": 0.0},
     "scale_by_zoom_linesearch(increase_factor=0.0): increase_factor must be > 0"),
    (scale_by_zoom_linesearch, {"max_linesearch_steps": 5, "max_learning_rate": -1.0},
     "max_learning_rate must be > 0"),
    (scale_by_zoom_linesearch, {"max_linesearch_steps": 5, "tol": -1.0}, "tol must be >= 0"),
    (scale_by_zoom_linesearch, {"max_linesearch_steps": 5, "approx_dec_rtol": -1.0}, "approx_dec_rtol must be >= 0"),
    (scale_by_zoom_linesearch, {"max_linesearch_steps": 5, "stepsize_precision": -1.0},
     "stepsize_precision must be >= 0"),
    (scale_by_zoom_linesearch, {"max_linesearch_steps": 5, "initial_guess_strategy": "two"},
     "scale_by_zoom_linesearch(initial_guess_strategy='two'): initial_guess_strategy must be one of 'one', 'keep'"),
]


@pytest.mark.parametrize("factory,kwargs,message", BAD, ids=[m[:60] for _, _, m in BAD])
def test_construction_errors(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)


def test_valid_edge_arguments_construct():
    scale_by_backtracking_linesearch(0, increase_factor=math.inf)
    scale_by_backtracking_linesearch(3, increase_factor=1.0)
    scale_by_zoom_linesearch(1, curv_rtol=math.inf, approx_dec_rtol=None, max_learning_rate=None)
    scale_by_lbfgs(1, False)
    lbfgs(learning_rate=0.5, linesearch=None)


def test_signatures_and_defaults_match_optax():
    import inspect

    pairs = [
        (scale_by_backtracking_linesearch, optax.scale_by_backtracking_linesearch),
        (scale_by_zoom_linesearch, optax.scale_by_zoom_linesearch),
        (scale_by_lbfgs, optax.scale_by_lbfgs),
    ]
    for ours, theirs in pairs:
        a, b = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
        assert list(a) == list(b), ours
        for name in a:
            assert a[name].default == b[name].default, (ours, name)
    a, b = inspect.signature(lbfgs).parameters, inspect.signature(optax.lbfgs).parameters
    assert list(a) == list(b)
    assert [a[n].default for n in list(a)[:3]] == [b[n].default for n in list(b)[:3]]
    ls = a["linesearch"].default
    assert isinstance(ls, scale_by_zoom_linesearch)
    assert (ls.max_linesearch_steps, ls.initial_guess_strategy) == (20, "one")
    assert repr(ls).startswith("scale_by_zoom_linesearch(max_linesearch_steps=20, max_learning_rate=None")
    assert ScaleByBacktrackingLinesearchState._fields == optax.ScaleByBacktrackingLinesearchState._fields
    assert ScaleByZoomLinesearchState._fields == optax.ScaleByZoomLinesearchState._fields
    assert ZoomLinesearchInfo._fields == optax.ZoomLinesearchInfo._fields
    assert ScaleByLBFGSState._fields == optax.ScaleByLBFGSState._fields
    from optax._src.linesearch import BacktrackingLinesearchInfo as OptaxInfo

    assert BacktrackingLinesearchInfo._fields == OptaxInfo._fields


# --------------------------------------------------------------------------------------------------
# The contract, with a consistent objective: jit == eager, no retrace, stable dtypes, scan == loop.
# --------------------------------------------------------------------------------------------------


def _tree_loss(params):
    """A smooth non-quadratic objective of default_params()'s tree (computed in float32 or wider)."""
    total = jnp.zeros([], jnp.float32)
    for i, x in enumerate(jax.tree.leaves(params)):
        x = x.astype(compute_dtype(x.dtype))
        total = total + (jnp.sum(0.5 * (i + 1) * x**2 + jnp.log(jnp.cosh(x - 0.3)))).astype(jnp.float32)
    return total


CONTRACT = {
    "backtracking": lambda: chain(sgd(1.0), scale_by_backtracking_linesearch(20)),
    "backtracking(store_grad)": lambda: chain(sgd(1.0), scale_by_backtracking_linesearch(20, store_grad=True)),
    "zoom(keep)": lambda: chain(sgd(1.0), scale_by_zoom_linesearch(10)),
    "lbfgs": lambda: lbfgs(),
    "lbfgs(memory_size=2, backtracking)": lambda: lbfgs(None, 2, linesearch=scale_by_backtracking_linesearch(
        20, store_grad=True)),
    "lbfgs(schedule)": lambda: lbfgs(lambda count: 1.0 / (1.0 + count.astype(jnp.float32)), 3),
}
TOL = {"bfloat16": 3e-2, "float32": 1e-5, "float64": 1e-12}


def _signature(tree):
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, [(jnp.shape(x), str(jnp.result_type(x))) for x in leaves]


@pytest.mark.parametrize("dtype", ["bfloat16", "float32", "float64"])
@pytest.mark.parametrize("name", list(CONTRACT))
def test_contract_with_consistent_objective(name, dtype):
    opt = CONTRACT[name]()
    params = jax.tree.map(lambda x: x.astype(dtype), default_params())
    steps = 3

    def step(o, p, s):
        v, g = jax.value_and_grad(_tree_loss)(p)
        u, s = o.update(g, s, p, value=v, grad=g, value_fn=_tree_loss)
        return u, s, g

    with jax.numpy_dtype_promotion("strict"):
        jitted = jax.jit(chex.assert_max_traces(step, n=1))
        s0 = opt.init(params)
        sig0 = _signature(s0)
        p, s, p_eager, s_eager, outs = params, s0, params, s0, []
        for k in range(steps):
            u, s, g = jitted(opt, p, s)
            assert _signature(s) == sig0, f"{name}: state changed at step {k + 1}"
            assert _signature(u) == _signature(g), f"{name}: updates do not match the gradients"
            if dtype == "float32" and k < 2:  # eager (op by op) equals jit
                u_e, s_eager, _ = step(opt, p_eager, s_eager)
                for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(u_e)):
                    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                               rtol=TOL[dtype], atol=TOL[dtype])
                p_eager = apply_updates(p_eager, u_e)
            outs.append(u)
            p = apply_updates(p, u)
        assert float(_tree_loss(p)) < float(_tree_loss(params))

        # lax.scan over the steps equals the loop.
        def body(carry, _):
            p, s = carry
            u, s, _ = step(opt, p, s)
            return (apply_updates(p, u), s), u

        (_, _), scanned = jax.lax.scan(body, (params, opt.init(params)), None, length=steps)
        for k in range(steps):
            for a, b in zip(jax.tree.leaves(jax.tree.map(lambda x, k=k: x[k], scanned)), jax.tree.leaves(outs[k])):
                np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                           rtol=TOL[dtype], atol=TOL[dtype], err_msg=f"{name} scan step {k + 1}")
        # The pytree round trip and eval_shape.
        leaves, treedef = jax.tree.flatten(opt)
        assert repr(jax.tree.unflatten(treedef, leaves)) == repr(opt)
        assert _signature(jax.eval_shape(opt.init, params)) == sig0


def test_jit_with_optimizer_argument_does_not_retrace_on_new_hyperparameters():
    x0 = jnp.asarray(ROSEN.start)

    def step(o, p, s):
        v, g = jax.value_and_grad(ROSEN.loss)(p)
        u, s = o.update(g, s, p, value=v, grad=g, value_fn=ROSEN.loss)
        return apply_updates(p, u), s

    jitted = jax.jit(chex.assert_max_traces(step, n=1))
    results = []
    for c1, c2 in [(1e-4, 0.9), (1e-3, 0.5), (1e-4, 0.1)]:
        opt = lbfgs(linesearch=scale_by_zoom_linesearch(20, slope_rtol=c1, curv_rtol=c2, initial_guess_strategy="one"))
        p, s = x0, opt.init(x0)
        for _ in range(5):
            p, s = jitted(opt, p, s)
        results.append((opt, _f64(p)))
    assert not np.allclose(results[0][1], results[2][1])  # the hyperparameters did change the run
    # The same as jitting with the optimizer closed over (constants folded into the program).
    opt = results[1][0]
    closed = jax.jit(lambda p, s: step(opt, p, s))
    p, s = x0, opt.init(x0)
    for _ in range(5):
        p, s = closed(p, s)
    np.testing.assert_allclose(_f64(p), results[1][1], rtol=1e-10)


def test_empty_tree():
    for opt in [lbfgs(), chain(sgd(1.0), scale_by_backtracking_linesearch(3, store_grad=True))]:
        s = opt.init({})
        u, s = opt.update({}, s, {}, value=jnp.float32(0.0), grad={}, value_fn=lambda p: jnp.float32(0.0))
        assert u == {}


def test_verbose_reports_failure(capsys):
    x = jnp.asarray([1.0, 2.0])
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    v, g = jax.value_and_grad(f)(x)
    for tx in [scale_by_backtracking_linesearch(2, verbose=True), scale_by_zoom_linesearch(2, verbose=True)]:
        tx.update(g, tx.init(x), x, value=v, grad=g, value_fn=f)  # an ascent direction: the search fails
        jax.effects_barrier()
    out = capsys.readouterr().out
    assert "scale_by_backtracking_linesearch: no step size with sufficient decrease" in out
    assert "scale_by_zoom_linesearch: no step size with the strong Wolfe conditions" in out


def test_verbose_zoom_names_the_reason(capsys):
    """phi(s) = |w + s u|^2 from w = -60 u: the strong Wolfe step sizes (curv_rtol=0.5) are [30, 90]."""
    from gradtx.transforms import linesearch as ls

    f = lambda x: jnp.dot(x, x)  # noqa: E731
    u, w = jnp.asarray([1.0, 0.0]), jnp.asarray([-60.0, 0.0])
    v, g = jax.value_and_grad(f)(w)
    capped = scale_by_zoom_linesearch(10, curv_rtol=0.5, max_learning_rate=10.0, verbose=True)
    _, state = capped.update(u, capped.init(w), w, value=v, grad=g, value_fn=f)
    jax.effects_barrier()
    printed = capsys.readouterr().out
    assert float(state.learning_rate) == 10.0  # the cap: sufficient decrease, no curvature
    assert ls.FLAG_INTERVAL_NOT_FOUND in printed and ls.FLAG_CURVATURE_COND_NOT_SATISFIED in printed
    assert ls.FLAG_NOT_A_DESCENT_DIRECTION not in printed
    ascent = scale_by_zoom_linesearch(5, verbose=True)
    ascent.update(-u, ascent.init(w), w, value=v, grad=g, value_fn=f)
    jax.effects_barrier()
    printed = capsys.readouterr().out
    assert ls.FLAG_NOT_A_DESCENT_DIRECTION in printed and ls.FLAG_NO_STEPSIZE_FOUND in printed
