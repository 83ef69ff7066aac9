"""Matrix optimizers of gradtx.contrib: Muon (closed forms of the Newton-Schulz map, rank > 2 parameters through
dimension numbers (Optax #1271), one batched iteration per matrix shape, Optax's block on matrices and tensors,
presets, consistent RMS, the AdamW side, convergence on the problem zoo, Keller Jordan's reference momentum form),
SOAP and GaLore (Optax's projection side and the authors' proj_type values)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx.contrib._galore import GaLoreDimensionNumbers, galore, scale_by_galore
from gradtx.contrib._muon import (
    DION_NS_COEFFS,
    MUON_NS_COEFFS,
    MuonDimensionNumbers,
    MuonState,
    muon,
    orthogonalize_via_newton_schulz,
    scale_by_muon,
)
from gradtx.contrib._soap import scale_by_soap, soap
from gradtx.testing import problems
from gradtx.testing.reference import contrib_matrix as rm

CUBIC = (1.5, -0.5, 0.0)  # the classic Newton-Schulz map X <- 1.5 X - 0.5 X X^T X: converges to U V^T


def _by_path(tree):
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(k): np.asarray(v, np.float64) for k, v in flat}


def _polar(x):
    u, _, vt = np.linalg.svd(np.asarray(x, np.float64), full_matrices=False)
    return u @ vt


# --------------------------------------------------------------------------------------------------
# The Newton-Schulz map
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 8), (8, 5), (6, 6)])
def test_convergent_newton_schulz_gives_the_polar_factor(shape):
    """With the cubic (1.5, -0.5, 0) and enough steps, NS(X) = U V^T of X = U S V^T (wide, tall and square)."""
    x = np.random.default_rng(1).normal(size=shape)
    got = orthogonalize_via_newton_schulz(jnp.asarray(x), CUBIC, ns_steps=40)
    np.testing.assert_allclose(np.asarray(got), _polar(x), atol=1e-9)


def test_muon_coefficients_put_singular_values_near_one():
    """Jordan's quintic after 5 steps: same singular vectors as X, singular values within [0.6, 1.25]
    (the map trades exactness for slope at zero), for a spread of input singular values."""
    rng = np.random.default_rng(2)
    u, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    v, _ = np.linalg.qr(rng.normal(size=(9, 6)))
    s = np.array([10.0, 3.0, 1.0, 0.3, 0.1, 0.03])
    x = u @ np.diag(s) @ v.T
    o = np.asarray(orthogonalize_via_newton_schulz(jnp.asarray(x), MUON_NS_COEFFS, 5), np.float64)
    sv = np.linalg.svd(o, compute_uv=False)
    assert sv.min() > 0.6 and sv.max() < 1.25, sv
    # Same singular vectors: U^T O V is diagonal.
    core = u.T @ o @ v
    np.testing.assert_allclose(core - np.diag(np.diag(core)), 0.0, atol=1e-9)


@pytest.mark.parametrize("preconditioning", ["frobenius", "spectral", "aol", "schatten"])
@pytest.mark.parametrize("coeffs", ["standard", "dion"])
def test_orthogonalize_matches_float64_reference(preconditioning, coeffs):
    x = np.random.default_rng(3).normal(size=(7, 4))
    c = {"standard": MUON_NS_COEFFS, "dion": DION_NS_COEFFS}[coeffs]
    got = orthogonalize_via_newton_schulz(jnp.asarray(x), c, 5, preconditioning)
    want = rm.newton_schulz(x, c, 5, preconditioning)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-12)


def test_bfloat16_iterates_in_float32():
    """A bfloat16 leaf is orthogonalized in float32 and rounded once (not bf16 matmuls, as Optax does)."""
    x = jnp.asarray(np.random.default_rng(4).normal(size=(4, 6)), jnp.bfloat16)
    got = orthogonalize_via_newton_schulz(x, MUON_NS_COEFFS, 5)
    assert got.dtype == jnp.bfloat16
    want = rm.newton_schulz(np.asarray(x, np.float64), MUON_NS_COEFFS, 5).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(jnp.asarray(want).astype(jnp.bfloat16)))


# --------------------------------------------------------------------------------------------------
# Rank > 2 parameters (Optax #1271) and batching over leaves
# --------------------------------------------------------------------------------------------------


def test_rank4_kernel_through_dimension_numbers():
    """A conv kernel (3, 3, 4, 8): as one (36, 8) matrix, or as nine (4, 8) matrices (batch axes 0, 1)."""
    k = np.random.default_rng(5).normal(size=(3, 3, 4, 8))
    whole = orthogonalize_via_newton_schulz(jnp.asarray(k), CUBIC, 40,
                                            dimension_numbers=MuonDimensionNumbers((0, 1, 2), 3))
    np.testing.assert_allclose(np.asarray(whole).reshape(36, 8), _polar(k.reshape(36, 8)), atol=1e-9)
    sliced = orthogonalize_via_newton_schulz(jnp.asarray(k), CUBIC, 40, dimension_numbers=MuonDimensionNumbers(2, 3))
    for i in range(3):
        for j in range(3):
            np.testing.assert_allclose(np.asarray(sliced)[i, j], _polar(k[i, j]), atol=1e-9)
    # Output axis first, reduction axis last (a (fan_out, fan_in) layout): the transpose's polar factor.
    t = orthogonalize_via_newton_schulz(jnp.asarray(k[0, 0].T), CUBIC, 40, dimension_numbers=MuonDimensionNumbers(1, 0))
    np.testing.assert_allclose(np.asarray(t), _polar(k[0, 0]).T, atol=1e-9)


def _dot_generals(fn, *args):
    jaxpr = jax.make_jaxpr(fn)(*args)
    return sum(1 for e in jaxpr.jaxpr.eqns if e.primitive.name == "dot_general")


def test_same_shape_matrices_run_as_one_batch():
    """Matrices of one shape (from one leaf's batch axes or from several leaves, tall ones transposed) go
    through one Newton-Schulz chain: the number of matmuls does not grow with the number of leaves, and each
    result equals that leaf orthogonalized alone."""
    rng = np.random.default_rng(6)
    one = {"a": jnp.asarray(rng.normal(size=(4, 6)))}
    many = {"a": one["a"], "b": jnp.asarray(rng.normal(size=(6, 4))), "c": jnp.asarray(rng.normal(size=(2, 4, 6))),
            "d": jnp.asarray(rng.normal(size=(4, 6)))}
    dims = {"a": MuonDimensionNumbers(), "b": MuonDimensionNumbers(), "c": MuonDimensionNumbers(1, 2),
            "d": MuonDimensionNumbers()}
    tx1 = scale_by_muon(beta=0.0, nesterov=False)
    txn = scale_by_muon(beta=0.0, nesterov=False, weight_dimension_numbers=dims)
    n1 = _dot_generals(lambda g: tx1.update(g, tx1.init(g))[0], one)
    nn = _dot_generals(lambda g: txn.update(g, txn.init(g))[0], many)
    assert n1 == nn == 5 * 3  # 5 steps x (X X^T, A A, B X)
    out, _ = txn.update(many, txn.init(many))
    for key, leaf in many.items():
        alone = orthogonalize_via_newton_schulz(leaf, MUON_NS_COEFFS, 5, dimension_numbers=dims[key])
        np.testing.assert_allclose(np.asarray(out[key]), np.asarray(alone), rtol=1e-12, atol=1e-13)


def test_rank3_leaf_without_dimension_numbers_is_an_error():
    tx = scale_by_muon()
    g = {"k": jnp.ones((2, 3, 4))}
    with pytest.raises(ValueError, match=r"\['k'\].*weight_dimension_numbers"):
        tx.update(g, tx.init(g))
    with pytest.raises(ValueError, match="disjoint"):
        bad = scale_by_muon(weight_dimension_numbers=MuonDimensionNumbers(1, 1))
        bad.update(g, bad.init(g))


def _conv_params(dtype=jnp.float32):
    rng = np.random.default_rng(8)
    return {"conv": jnp.asarray(rng.normal(size=(3, 3, 2, 5)), dtype), "w": jnp.asarray(rng.normal(size=(6, 3)), dtype),
            "b": jnp.asarray(rng.normal(size=(5,)), dtype)}


CONV_DIMS = {"conv": MuonDimensionNumbers((0, 1, 2), 3), "w": MuonDimensionNumbers(), "b": None}


def _optax_dims(dims):
    return {k: None if v is None else optax.contrib.MuonDimensionNumbers(*v) for k, v in dims.items()}


def _ref_dims(path, shape):
    return {"['conv']": ((0, 1, 2), (3,)), "['w']": ((0,), (1,)), "['b']": None}[path]


@pytest.mark.parametrize("kwargs", [{}, {"nesterov": False, "adaptive": True, "preconditioning": "aol"}])
def test_scale_by_muon_matches_optax_and_reference_on_a_rank4_kernel(kwargs):
    """scale_by_muon on a tree of a rank-4 kernel and a tall matrix (dimension numbers given), 60 steps: equal to
    optax.contrib.scale_by_muon and to the float64 reference."""
    params = {k: v for k, v in _conv_params().items() if k != "b"}
    dims = {k: v for k, v in CONV_DIMS.items() if k != "b"}
    ours = scale_by_muon(weight_dimension_numbers=dims, **kwargs)
    theirs = optax.contrib.scale_by_muon(weight_dimension_numbers=_optax_dims(dims), **kwargs)
    oracle = rm.scale_by_muon(weight_dimension_numbers=_ref_dims, **kwargs)
    s1, s2 = ours.init(params), theirs.init(params)
    assert isinstance(s1, MuonState) and s1._fields == s2._fields
    f1, f2 = jax.jit(ours.update), jax.jit(theirs.update)
    rng = np.random.default_rng(9)
    for k in range(60):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params)
        u1, s1 = f1(g, s1)
        u2, s2 = f2(g, s2)
        want = oracle.step(_by_path(g))
        for key in params:
            a, b = np.asarray(u1[key], np.float64), np.asarray(u2[key], np.float64)
            w = want[f"['{key}']"]
            np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * np.max(np.abs(b)), err_msg=f"{key} step {k + 1}")
            np.testing.assert_allclose(a, w, rtol=0, atol=2e-4 * np.max(np.abs(w)), err_msg=f"{key} step {k + 1}")
    np.testing.assert_allclose(np.asarray(s1.ns_coeffs), np.asarray(s2.ns_coeffs))


def test_muon_recipe_with_dimension_numbers_matches_optax_and_reference():
    """muon(muon_weight_dimension_numbers=tree): the kernel and the matrix on the Muon side, the vector on AdamW."""
    params = _conv_params()
    ours = muon(3e-2, muon_weight_dimension_numbers=CONV_DIMS, weight_decay=0.05, consistent_rms=0.2)
    theirs = optax.contrib.muon(3e-2, muon_weight_dimension_numbers=_optax_dims(CONV_DIMS), weight_decay=0.05,
                                consistent_rms=0.2)
    oracle = rm.muon(3e-2, muon_weight_dimension_numbers=_ref_dims, weight_decay=0.05, consistent_rms=0.2)
    s1, s2 = ours.init(params), theirs.init(params)
    assert [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(s1)[0]] == [
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(s2)[0]]
    f1, f2 = jax.jit(ours.update), jax.jit(theirs.update)
    rng, p = np.random.default_rng(10), params
    for k in range(40):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params)
        u1, s1 = f1(g, s1, p)
        u2, s2 = f2(g, s2, p)
        want = oracle.step(_by_path(g), _by_path(p))
        for key in params:
            a, b, w = np.asarray(u1[key], np.float64), np.asarray(u2[key], np.float64), want[f"['{key}']"]
            np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * np.max(np.abs(b)), err_msg=f"{key} step {k + 1}")
            np.testing.assert_allclose(a, w, rtol=0, atol=2e-4 * np.max(np.abs(w)), err_msg=f"{key} step {k + 1}")
        p = gradtx.apply_updates(p, u1)


def test_muon_default_sends_rank3_to_adamw_and_callable_dimension_numbers():
    """Without dimension numbers only rank-2 leaves are Muon's (Optax's rule); a callable picks the others."""
    params = {"k": jnp.ones((2, 3, 4)), "w": jnp.ones((3, 4)), "b": jnp.ones((4,))}
    labels = muon(1e-2).param_labels(params)
    assert labels == {"k": "adam", "w": "muon", "b": "adam"}
    fn = lambda p: jax.tree.map(lambda x: MuonDimensionNumbers(-2, -1) if x.ndim >= 2 else None, p)  # noqa: E731
    assert muon(1e-2, muon_weight_dimension_numbers=fn).param_labels(params) == {"k": "muon", "w": "muon", "b": "adam"}
    state = muon(1e-2, muon_weight_dimension_numbers=fn).init(params)
    mu = state.inner_states["muon"].inner_state[0].mu
    assert [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(mu)[0]] == ["['k']", "['w']"]


# --------------------------------------------------------------------------------------------------
# Recipe details: presets, shape scaling, weight decay, validation
# --------------------------------------------------------------------------------------------------


def test_presets_and_coefficient_validation():
    params = {"w": jnp.ones((3, 4))}
    state = muon(1e-2, "dion").init(params).inner_states["muon"].inner_state[0]
    np.testing.assert_array_equal(np.asarray(state.ns_coeffs), np.asarray(DION_NS_COEFFS))
    np.testing.assert_array_equal(np.asarray(scale_by_muon().init(params).ns_coeffs), np.asarray(MUON_NS_COEFFS))
    with pytest.raises(ValueError, match="ns_coeffs must be one of 'standard', 'dion'"):
        muon(1e-2, "muonn")
    with pytest.raises(ValueError, match=r"shape \(3,\) or \(n, 3\)"):
        scale_by_muon((1.0, 2.0))
    with pytest.raises(ValueError, match=r"scale_by_muon\(beta=1.0\): beta must be in \[0, 1\)"):
        scale_by_muon(beta=1.0)
    with pytest.raises(ValueError, match="preconditioning must be one of"):
        scale_by_muon(preconditioning="newton")
    # 2-D coefficients fix the number of iterations; ns_steps is ignored (Optax raises when ns_steps < rows).
    x = {"w": jnp.asarray(np.random.default_rng(11).normal(size=(3, 4)))}
    a = scale_by_muon(DION_NS_COEFFS, ns_steps=2, beta=0.0, nesterov=False)
    u, _ = a.update(x, a.init(x))
    np.testing.assert_allclose(np.asarray(u["w"]), rm.newton_schulz(np.asarray(x["w"]), DION_NS_COEFFS, 5), atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 12), (12, 3), (5, 5)])
def test_consistent_rms_and_width_scaling(shape):
    """With an exact polar factor (cubic NS), consistent_rms=r gives an update of RMS exactly lr r (Liu et al.
    2025); without it the scale is sqrt(max(1, fan_out / fan_in)) times the polar factor."""
    g = {"w": jnp.asarray(np.random.default_rng(12).normal(size=shape))}
    lr = 0.1
    for rms, scale in ((0.2, None), (None, np.sqrt(max(1.0, shape[1] / shape[0])))):
        tx = muon(lr, CUBIC, ns_steps=40, beta=0.0, nesterov=False, consistent_rms=rms)
        u, _ = tx.update(g, tx.init(g), g)
        if rms is not None:
            np.testing.assert_allclose(np.sqrt(np.mean(np.asarray(u["w"]) ** 2)), lr * rms, rtol=1e-9)
        else:
            np.testing.assert_allclose(np.asarray(u["w"]), -lr * scale * _polar(np.asarray(g["w"])), atol=1e-9)


def test_zero_gradient_weight_decay_and_mask():
    """A zero gradient leaves only the decoupled decays: -lr wd p on the masked Muon leaves, -adam_lr adam_wd p on
    the AdamW leaves (NS(0) = 0 thanks to eps)."""
    params = {"w": jnp.full((3, 4), 2.0), "v": jnp.full((2, 2), 3.0), "b": jnp.full((4,), 5.0)}
    zeros = jax.tree.map(jnp.zeros_like, params)
    tx = muon(0.1, weight_decay=0.5, weight_decay_mask={"w": True, "v": False, "b": False}, adam_weight_decay=0.2,
              adam_learning_rate=0.01)
    u, _ = tx.update(zeros, tx.init(params), params)
    np.testing.assert_allclose(np.asarray(u["w"]), -0.1 * 0.5 * 2.0)
    np.testing.assert_allclose(np.asarray(u["v"]), 0.0)
    np.testing.assert_allclose(np.asarray(u["b"]), -0.01 * 0.2 * 5.0)


def test_muon_is_a_pytree_learning_rate_change_does_not_retrace():
    params = {"w": jnp.ones((3, 4)), "b": jnp.ones((4,))}

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(tx, g, s, p):
        return tx.update(g, s, p)

    a, b = muon(1e-2), muon(2e-2)
    ua, _ = step(a, params, a.init(params), params)
    ub, _ = step(b, params, b.init(params), params)
    np.testing.assert_allclose(np.asarray(ub["w"]), 2 * np.asarray(ua["w"]), rtol=1e-6)


# --------------------------------------------------------------------------------------------------
# Convergence on the problem zoo
# --------------------------------------------------------------------------------------------------


def _matrix_quadratic(seed=13):
    """A quadratic over (W: 4x6, b: 6) = 30 coordinates with condition number 100 (problems.Quadratic)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(30, 30)))
    lam = np.geomspace(0.1, 10.0, 30)
    prob = problems.Quadratic(q @ np.diag(lam) @ q.T, rng.normal(size=30), eigh=(lam, q))

    def loss(p):
        return prob.loss(jnp.concatenate([p["W"].reshape(-1), p["b"]]))

    return prob, loss, {"W": jnp.zeros((4, 6)), "b": jnp.zeros((6,))}


def _run(tx, loss, params, steps):
    def body(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(loss)(p), s, p)
        return (gradtx.apply_updates(p, u), s), None

    (p, _), _ = jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), None, length=steps))(params)
    return p


def test_muon_converges_on_a_quadratic():
    prob, loss, p0 = _matrix_quadratic()
    lr = gradtx.schedules.cosine_decay_schedule(0.1, 400)
    p = _run(muon(lr, adam_learning_rate=gradtx.schedules.cosine_decay_schedule(0.1, 400)), loss, p0, 400)
    assert float(loss(p)) < 1e-3 * float(loss(p0)), (float(loss(p)), float(loss(p0)))
    np.testing.assert_allclose(np.asarray(p["b"]), prob.minimum[24:], atol=0.05)


# --------------------------------------------------------------------------------------------------
# SOAP
# --------------------------------------------------------------------------------------------------


def _soap_adam(gs, b1, b2, eps):
    """SOAP's Adam conventions on an elementwise stream: zero on call 1, then t = k - 1 steps with eps added
    to sqrt(v) before the bias correction sqrt(1 - b2^t) / (1 - b1^t)."""
    m = v = np.zeros_like(gs[0])
    outs = [np.zeros_like(gs[0])]
    for t, g in enumerate(gs[1:], start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        outs.append(np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps))
    return outs


@pytest.mark.parametrize("ranks", ["fixed", "swapping"])
def test_soap_is_adam_in_a_shared_eigenbasis(ranks):
    """Gradients G_k = U diag(d_k) V^T with fixed orthogonal U, V: every L and R has eigenvectors U and V, so
    SOAP is Adam on the diagonal d_k, rotated back: u_k = U diag(adam(d)_k) V^T; vectors and scalars get
    the same Adam without rotation. "swapping": the scales of d reverse at step 10, so the eigenvalues of L and
    R change rank between refreshes and the new basis orders its columns differently: V must follow its
    eigenvectors (without the re-ordering at refresh this is off by ~0.3 from step 14 on)."""
    rng = np.random.default_rng(20)
    u, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    v, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    scales = np.array([3.0, 1.5, 0.5, 0.2])  # distinct eigenvalues of L = U diag(d^2) U^T and R = V diag(d^2) V^T
    n = 25 if ranks == "fixed" else 40
    ds = [(scales if ranks == "fixed" or k < 10 else scales[::-1]) * (1 + 0.2 * rng.normal(size=4))
          * rng.choice([-1, 1], size=4) for k in range(n)]
    gs = [u @ np.diag(d) @ v.T for d in ds]
    vecs = [rng.normal(size=4) for _ in range(n)]
    # eps = 1e-3: rounding leaves ~1e-16 off the diagonal of U^T G V, which m' / (sqrt(v') + eps) would
    # scale up to ~1e-16 / eps; the closed form includes eps exactly.
    tx = scale_by_soap(0.9, 0.95, eps=1e-3, precondition_frequency=4)
    params = {"w": jnp.zeros((4, 4)), "b": jnp.zeros((4,))}
    state, step = tx.init(params), jax.jit(tx.update)
    want_d = _soap_adam(ds, 0.9, 0.95, 1e-3)
    want_b = _soap_adam(vecs, 0.9, 0.95, 1e-3)
    for k in range(n):
        out, state = step({"w": jnp.asarray(gs[k]), "b": jnp.asarray(vecs[k])}, state)
        np.testing.assert_allclose(np.asarray(out["w"]), u @ np.diag(want_d[k]) @ v.T, atol=1e-10,
                                   err_msg=f"step {k + 1}")
        np.testing.assert_allclose(np.asarray(out["b"]), want_b[k], rtol=1e-12, atol=1e-14)
    assert len(state.eigenbases["w"]) == 2 and state.eigenbases["b"] == ()


def test_soap_eigenbasis_refresh_schedule():
    """Call 1 sets Q from G_1 (Q^T L Q diagonal); Q then stays fixed until Adam step t = precondition_frequency."""
    rng = np.random.default_rng(21)
    params = {"w": jnp.zeros((3, 4))}
    tx = scale_by_soap(precondition_frequency=3)
    state = tx.init(params)
    seen = []
    for _ in range(7):
        out, state = tx.update({"w": jnp.asarray(rng.normal(size=(3, 4)))}, state)
        seen.append((np.asarray(out["w"]), [np.asarray(q) for q in state.eigenbases["w"]]))
    np.testing.assert_array_equal(seen[0][0], 0.0)  # the first call makes no step
    for f, q in zip(state.preconditioners["w"], state.eigenbases["w"]):
        rotated = q.T @ np.asarray(f) @ q  # the last refresh (call 7 = Adam step 6) diagonalises the factors
        np.testing.assert_allclose(rotated - np.diag(np.diag(rotated)), 0.0, atol=1e-10 * np.abs(rotated).max())
        assert np.all(np.diff(np.diag(rotated)) <= 0)  # descending eigenvalues
    changed = [not all(np.array_equal(a, b) for a, b in zip(seen[i][1], seen[i - 1][1])) for i in range(1, 7)]
    assert changed == [False, False, True, False, False, True]  # refreshed after Adam steps 3 and 6


def test_soap_rank3_and_long_axes_match_reference_in_float64():
    """A rank-3 leaf (one factor per axis), an axis above max_precond_dim and a preconditioned vector: 30 steps
    against the float64 reference."""
    rng = np.random.default_rng(22)
    shapes = {"k": (2, 3, 4), "w": (3, 6), "v": (3,)}
    params = {n: jnp.zeros(s) for n, s in shapes.items()}
    tx = soap(0.05, weight_decay=0.1, max_precond_dim=5, precondition_1d=True, precondition_frequency=2)
    oracle = rm.soap(0.05, weight_decay=0.1, max_precond_dim=5, precondition_1d=True, precondition_frequency=2)
    state, step, p = tx.init(params), jax.jit(tx.update), params
    assert [f.shape for f in state[0].preconditioners["w"]] == [(3, 3)]  # axis 1 (6 > 5) is not rotated
    for k in range(30):
        g = {n: jnp.asarray(rng.normal(size=s)) for n, s in shapes.items()}
        u, state = step(g, state, p)
        want = oracle.step(_by_path(g), _by_path(p))
        for n in shapes:
            np.testing.assert_allclose(np.asarray(u[n]), want[f"['{n}']"], rtol=1e-7, atol=1e-9,
                                       err_msg=f"{n} step {k + 1}")
        p = gradtx.apply_updates(p, u)


def test_soap_validation():
    with pytest.raises(ValueError, match=r"scale_by_soap\(b2=1.0\): b2 must be in \[0, 1\)"):
        scale_by_soap(b2=1.0)
    with pytest.raises(ValueError, match=r"precondition_frequency=0\): precondition_frequency must be a whole number"):
        scale_by_soap(precondition_frequency=0)
    with pytest.raises(ValueError, match="complex parameters are not supported"):
        scale_by_soap().init({"w": jnp.ones((2, 2), jnp.complex64)})


def test_soap_converges_on_a_quadratic():
    prob, loss, p0 = _matrix_quadratic()
    p = _run(soap(0.05, weight_decay=0.0), loss, p0, 300)
    assert float(loss(p)) < 1e-3 * float(loss(p0)), (float(loss(p)), float(loss(p0)))
    np.testing.assert_allclose(np.asarray(p["b"]), prob.minimum[24:], atol=0.05)


# --------------------------------------------------------------------------------------------------
# GaLore
# --------------------------------------------------------------------------------------------------


def _galore_params(dtype=jnp.float32):
    rng = np.random.default_rng(30)
    return {"w": jnp.asarray(rng.normal(size=(3, 8)), dtype), "tall": jnp.asarray(rng.normal(size=(9, 4)), dtype),
            "attn": jnp.asarray(rng.normal(size=(6, 2, 3)), dtype), "b": jnp.asarray(rng.normal(size=(5,)), dtype)}


GALORE_DIMS = {"w": GaLoreDimensionNumbers(), "tall": GaLoreDimensionNumbers(),
               "attn": GaLoreDimensionNumbers(0, (1, 2)), "b": None}


@pytest.mark.parametrize("kwargs", [{}, {"rank": 2, "weight_decay": 0.1, "scale": 0.25}])
def test_galore_matches_optax_for_200_steps(kwargs):
    """Same gradient stream through gradtx and optax.contrib.galore (one projector refresh, at the first step):
    equal updates for 200 steps; equal states up to the sign of each singular vector (projector columns and
    the rows or columns of the low-rank moments), which gradtx fixes and Optax leaves to LAPACK."""
    params = _galore_params()
    optax_dims = {k: None if v is None else optax.contrib.GaLoreDimensionNumbers(*v) for k, v in GALORE_DIMS.items()}
    ours = galore(1e-2, weight_dimension_numbers=GALORE_DIMS, **kwargs)
    theirs = optax.contrib.galore(1e-2, weight_dimension_numbers=optax_dims, **kwargs)
    s1, s2 = ours.init(params), theirs.init(params)
    assert [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(s1)[0]] == [
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(s2)[0]]
    f1, f2 = jax.jit(ours.update), jax.jit(theirs.update)
    rng, p = np.random.default_rng(31), params
    for k in range(200):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params)
        u1, s1 = f1(g, s1, p)
        u2, s2 = f2(g, s2, p)
        for key in params:
            a, b = np.asarray(u1[key], np.float64), np.asarray(u2[key], np.float64)
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.max(np.abs(b)), err_msg=f"{key} step {k + 1}")
        p = gradtx.apply_updates(p, u1)
    for x, y in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_allclose(np.abs(np.asarray(x, np.float64)), np.abs(np.asarray(y, np.float64)), rtol=1e-3,
                                   atol=1e-5)


def test_galore_rank1_stream_closed_form():
    """G_k = c_k a b^T (rank 1, wide): P = b / |b| (sign fixed), R_k = c_k |b| a, and with rank=1 the update is
    adam(c |b| a)_k b^T / |b|; the first moment lives in the (3, 1) low-rank space."""
    rng = np.random.default_rng(32)
    a, b = rng.normal(size=3), rng.normal(size=7)
    cs = rng.normal(size=20)
    tx = scale_by_galore(rank=1, update_proj_gap=5)
    params = {"w": jnp.zeros((3, 7))}
    state, step = tx.init(params), jax.jit(tx.update)
    assert state.projector["w"].shape == (7, 1) and state.base_optimizer_state.mu["w"].shape == (3, 1)
    unit = b / np.linalg.norm(b) * np.sign(b[np.argmax(np.abs(b))])
    m = v = np.zeros(3)
    for k, c in enumerate(cs, start=1):
        out, state = step({"w": jnp.asarray(c * np.outer(a, b))}, state)
        r = c * np.linalg.norm(b) * a * np.sign(b[np.argmax(np.abs(b))])
        m, v = 0.9 * m + 0.1 * r, 0.999 * v + 0.001 * r * r
        adam = (m / (1 - 0.9**k)) / (np.sqrt(v / (1 - 0.999**k)) + 1e-8)
        np.testing.assert_allclose(np.asarray(out["w"]), np.outer(adam, unit), atol=1e-10, err_msg=f"step {k}")
    np.testing.assert_allclose(np.asarray(state.projector["w"])[:, 0], unit, atol=1e-12)


def test_galore_dimension_numbers_match_reference_in_float64():
    params = _galore_params(jnp.float64)
    ref_dims = {"['w']": ((0,), (1,)), "['tall']": ((0,), (1,)), "['attn']": ((0,), (1, 2)), "['b']": None}
    tx = galore(0.05, rank=2, update_proj_gap=7, weight_decay=0.1, weight_dimension_numbers=GALORE_DIMS)
    oracle = rm.galore(0.05, rank=2, update_proj_gap=7, weight_decay=0.1,
                       weight_dimension_numbers=lambda path, shape: ref_dims[path])
    state, step, p = tx.init(params), jax.jit(tx.update), params
    assert state[0].projector["attn"].shape == (6, 2) and state[0].base_optimizer_state.mu["attn"].shape == (2, 6)
    rng = np.random.default_rng(33)
    for k in range(30):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape)), params)
        u, state = step(g, state, p)
        want = oracle.step(_by_path(g), _by_path(p))
        for key in params:
            np.testing.assert_allclose(np.asarray(u[key]), want[f"['{key}']"], rtol=1e-7, atol=1e-10,
                                       err_msg=f"{key} step {k + 1}")
        p = gradtx.apply_updates(p, u)


def test_galore_validation():
    with pytest.raises(ValueError, match=r"scale_by_galore\(rank=0\): rank must be a whole number >= 1"):
        scale_by_galore(rank=0)
    tx = scale_by_galore(weight_dimension_numbers={"k": GaLoreDimensionNumbers(0, 1)})
    with pytest.raises(ValueError, match="every axis"):
        tx.init({"k": jnp.ones((2, 3, 4))})


def test_galore_converges_on_a_quadratic():
    _, loss, p0 = _matrix_quadratic()
    p = _run(galore(0.05, rank=2, update_proj_gap=20), loss, p0, 400)
    assert float(loss(p)) < 1e-2 * float(loss(p0)), (float(loss(p)), float(loss(p0)))


# The authors' own projection types (issue 18): jiaweizzhao/GaLore at rm.GALORE_COMMIT.

GALORE_PROJ_TYPES = ("reverse_std", "std", "left", "right", "full")


def _authors_params():
    rng = np.random.default_rng(34)
    return {"tall": jnp.asarray(rng.normal(size=(7, 4))), "wide": jnp.asarray(rng.normal(size=(3, 6))),
            "b": jnp.asarray(rng.normal(size=(5,)))}


@pytest.mark.parametrize("proj_type", GALORE_PROJ_TYPES)
def test_galore_proj_type_reproduces_the_authors_adamw_step_by_step(proj_type):
    """galore(proj_type=t) with an Adam base is the authors' GaLore AdamW (galore_torch/adamw.py +
    GaLoreProjector, transcribed in rm.galore_adamw) for eps = 0 and no weight decay: the same parameters after
    each of 15 steps in float64 (three projector refreshes, update_proj_gap=6; the transcription's SVD fixes the
    singular vectors' signs as gradtx does, since the moments carried across a refresh depend on them). 'full' runs
    at rank 1: at a refresh its r x r gradient U^T G V is diagonal up to roundoff, which Adam with eps = 0 turns into
    +-1 entries, so at rank >= 2 the comparison would test the two SVDs' roundoff, not the rule."""
    params = _authors_params()
    rank = 1 if proj_type == "full" else 2
    tx = galore(0.05, rank=rank, update_proj_gap=6, scale=0.5, base_optimizer=gradtx.scale_by_adam(eps=0.0),
                proj_type=proj_type)
    authors = rm.galore_adamw(lr=0.05, eps=0.0, rank=rank, update_proj_gap=6, scale=0.5, proj_type=proj_type,
                              svd=rm._svd_fixed_signs)
    state, step, p = tx.init(params), jax.jit(tx.update), params
    want = _by_path(params)
    rng = np.random.default_rng(35)
    for k in range(15):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape)), params)
        u, state = step(g, state, p)
        p = gradtx.apply_updates(p, u)
        want = authors.step(want, _by_path(g))
        for key in params:
            np.testing.assert_allclose(np.asarray(p[key]), want[f"['{key}']"], rtol=1e-11, atol=1e-12,
                                       err_msg=f"{proj_type} {key} step {k + 1}")


@pytest.mark.parametrize("proj_type", ["reverse_std", "std", "left", "right"])
def test_galore_rank_at_least_the_short_side_matches_the_authors(proj_type):
    """rank=8 >= min(m, n): the low-rank gradient of 'reverse_std' on the wide matrix is square (3 x 3), where the
    authors' project_back chooses its side by shape and fails; the transcription then uses the side project used,
    and gradtx equals it for 6 steps (the projection is then the full row or column space)."""
    params = _authors_params()
    tx = galore(0.05, rank=8, update_proj_gap=4, base_optimizer=gradtx.scale_by_adam(eps=0.0), proj_type=proj_type)
    authors = rm.galore_adamw(lr=0.05, eps=0.0, rank=8, update_proj_gap=4, proj_type=proj_type,
                              svd=rm._svd_fixed_signs)
    state, p, want = tx.init(params), params, _by_path(params)
    rng = np.random.default_rng(41)
    for k in range(6):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape)), params)
        u, state = tx.update(g, state, p)
        p, want = gradtx.apply_updates(p, u), authors.step(want, _by_path(g))
        for key in params:
            np.testing.assert_allclose(np.asarray(p[key]), want[f"['{key}']"], rtol=1e-11, atol=1e-12,
                                       err_msg=f"{proj_type} {key} step {k + 1}")


def test_galore_proj_type_shapes_and_the_default_is_optax_reverse_std():
    """Projector and low-rank moment shapes per type, as the authors' (7 x 4 tall, 3 x 6 wide, rank 2): the default
    is 'reverse_std' (the longer side) with Optax's state shapes; 'std' (the authors' default) the shorter side."""
    params = {"tall": jnp.zeros((7, 4)), "wide": jnp.zeros((3, 6))}
    want = {"reverse_std": {"tall": ((7, 2), (2, 4)), "wide": ((6, 2), (3, 2))},
            "std": {"tall": ((4, 2), (7, 2)), "wide": ((3, 2), (2, 6))},
            "left": {"tall": ((7, 2), (2, 4)), "wide": ((3, 2), (2, 6))},
            "right": {"tall": ((4, 2), (7, 2)), "wide": ((6, 2), (3, 2))},
            "full": {"tall": ((11, 2), (2, 2)), "wide": ((9, 2), (2, 2))}}
    for proj_type, shapes in want.items():
        state = scale_by_galore(rank=2, proj_type=proj_type).init(params)
        for key, (proj, low) in shapes.items():
            assert state.projector[key].shape == proj, (proj_type, key)
            assert state.base_optimizer_state.mu[key].shape == low, (proj_type, key)
    theirs = optax.contrib.scale_by_galore(rank=2).init(params)
    ours = scale_by_galore(rank=2).init(params)
    assert jax.tree.map(jnp.shape, ours.projector) == jax.tree.map(jnp.shape, theirs.projector)
    assert repr(scale_by_galore(rank=2)) == repr(scale_by_galore(rank=2, proj_type="reverse_std"))
    assert galore(0.1).transforms[0].proj_type == "reverse_std"


def test_galore_default_is_unchanged_and_std_differs():
    """The default equals proj_type='reverse_std' and the float64 reference of Optax's rule (numbers unchanged by
    the new option); 'std' gives other updates on a tall matrix (the sides differ)."""
    params = _authors_params()
    rng = np.random.default_rng(36)
    grads = [jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape)), params) for _ in range(8)]
    runs = {}
    for name, tx in {"default": galore(0.05, rank=2, update_proj_gap=3),
                     "reverse_std": galore(0.05, rank=2, update_proj_gap=3, proj_type="reverse_std"),
                     "std": galore(0.05, rank=2, update_proj_gap=3, proj_type="std")}.items():
        state, out = tx.init(params), []
        for g in grads:
            u, state = tx.update(g, state, params)
            out.append(u)
        runs[name] = out
    oracle = rm.galore(0.05, rank=2, update_proj_gap=3)
    for k, (a, b, g) in enumerate(zip(runs["default"], runs["reverse_std"], grads)):
        want = oracle.step(_by_path(g), _by_path(params))
        for key in params:
            np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))
            np.testing.assert_allclose(np.asarray(a[key]), want[f"['{key}']"], rtol=1e-10, atol=1e-12,
                                       err_msg=f"{key} step {k + 1}")
    assert not np.allclose(np.asarray(runs["default"][0]["tall"]), np.asarray(runs["std"][0]["tall"]))


def test_galore_proj_type_validation():
    with pytest.raises(ValueError, match=r"scale_by_galore\(proj_type='center'\): proj_type must be one of "
                                         r"'reverse_std', 'std', 'left', 'right', 'full'"):
        scale_by_galore(proj_type="center")
    with pytest.raises(ValueError, match=r"galore\(proj_type=None\): proj_type must be one of"):
        galore(0.1, proj_type=None)
    with pytest.raises(TypeError):
        scale_by_galore(2, 10, 1.0, None, None, "std")  # keyword-only


# --------------------------------------------------------------------------------------------------
# Muon's reference momentum form (issue 18): KellerJordan/Muon at rm.MUON_COMMIT
# --------------------------------------------------------------------------------------------------

TORCH_LAYOUT = MuonDimensionNumbers(reduction_axis=1, output_axis=0)  # torch's (out, in) weights


def _muon_params(scale=1.0):
    rng = np.random.default_rng(37)
    return {"w": jnp.asarray(scale * rng.normal(size=(6, 4))), "v": jnp.asarray(scale * rng.normal(size=(3, 5))),
            "b": jnp.asarray(scale * rng.normal(size=(5,)))}


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("grad_scale", [1.0, 1e-8])
def test_muon_reference_form_reproduces_keller_jordans_muon_step_by_step(nesterov, grad_scale):
    """muon(momentum_form='reference') is KellerJordan/Muon's SingleDeviceMuonWithAuxAdam (muon_update,
    zeropower_via_newtonschulz5 and adam_update, transcribed in rm.muon_with_aux_adam): the same parameters after
    each of 20 steps in float64, with weight decay on both sides. Gradients of size 1e-8 make the Newton-Schulz eps
    (1e-7) matter: it acts on ||M_k|| (not bias-corrected) as in the reference's X.norm() + 1e-7."""
    params = _muon_params()
    dims = {"w": TORCH_LAYOUT, "v": TORCH_LAYOUT, "b": None}
    tx = muon(0.02, beta=0.9, eps=1e-7, weight_decay=0.1, nesterov=nesterov, adam_b1=0.8, adam_b2=0.95,
              adam_weight_decay=0.05, adam_learning_rate=3e-3, muon_weight_dimension_numbers=dims,
              momentum_form="reference")
    ref = rm.muon_with_aux_adam(lr=0.02, momentum=0.9, weight_decay=0.1, nesterov=nesterov, ns_eps=1e-7,
                                adam_lr=3e-3, adam_betas=(0.8, 0.95), adam_eps=1e-7, adam_weight_decay=0.05)
    state, step, p = tx.init(params), jax.jit(tx.update), params
    want = _by_path(params)
    rng = np.random.default_rng(38)
    for k in range(20):
        g = jax.tree.map(lambda x: jnp.asarray(grad_scale * rng.normal(size=x.shape)), params)
        u, state = step(g, state, p)
        p = gradtx.apply_updates(p, u)
        want = ref.step(want, _by_path(g))
        for key in params:
            np.testing.assert_allclose(np.asarray(p[key]), want[f"['{key}']"], rtol=1e-11, atol=1e-13,
                                       err_msg=f"{key} step {k + 1}")


def test_muon_reference_form_matches_the_spec_and_differs_from_optax_form():
    """scale_by_muon(momentum_form='reference') equals the float64 spec and rm.muon_update (one matrix, 10 steps);
    with Nesterov the Optax form's first updates differ (bias-corrected blend), and the two forms agree once
    beta^k is negligible for a constant gradient."""
    rng = np.random.default_rng(39)
    g0 = rng.normal(size=(4, 6))
    tx = scale_by_muon(beta=0.5, momentum_form="reference")
    spec = rm.scale_by_muon(beta=0.5, momentum_form="reference")
    state, m = tx.init(jnp.zeros((4, 6))), np.zeros((4, 6))
    for k in range(10):
        g = g0 + 0.3 * rng.normal(size=g0.shape)
        u, state = tx.update(jnp.asarray(g), state)
        want, m = rm.muon_update(g.T, m.T, beta=0.5, eps=1e-8)  # torch layout: the transpose, no shape scale here
        want, m = want.T / max(1.0, 6 / 4) ** 0.5, m.T  # undo the reference's sqrt(max(1, out / in))
        np.testing.assert_allclose(np.asarray(u), want, rtol=1e-11, atol=1e-13, err_msg=f"step {k + 1}")
        np.testing.assert_allclose(np.asarray(u), spec.step({"w": g})["w"], rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(np.asarray(state.mu), m, rtol=1e-12, atol=1e-14)
    stream = [jnp.asarray(rng.normal(size=(4, 6))) for _ in range(2)] + [jnp.asarray(g0)] * 60
    ref, opt = scale_by_muon(beta=0.5, momentum_form="reference"), scale_by_muon(beta=0.5)
    sr, so = ref.init(stream[0]), opt.init(stream[0])
    for k, g in enumerate(stream):
        ur, sr = ref.update(g, sr)
        uo, so = opt.update(g, so)
        if k == 1:  # the two blends of M_2 and G_2 point in different directions
            assert not np.allclose(np.asarray(ur), np.asarray(uo), atol=1e-3)
    np.testing.assert_allclose(np.asarray(ur), np.asarray(uo), rtol=1e-9, atol=1e-9)


def test_muon_default_momentum_form_is_unchanged_optax():
    """The default is momentum_form='optax': the same recipe as the explicit option, equal to optax.contrib.muon on
    matrices (and its AdamW side Nesterov, as Optax's) for 30 steps; the reference form's AdamW has no Nesterov."""
    assert repr(muon(1e-2)) == repr(muon(1e-2, momentum_form="optax"))
    assert repr(scale_by_muon()) == repr(scale_by_muon(momentum_form="optax"))
    assert muon(1e-2).transforms["adam"].transforms[0].nesterov
    assert not muon(1e-2, momentum_form="reference").transforms["adam"].transforms[0].nesterov
    params = {"w": jnp.zeros((6, 4), jnp.float32), "v": jnp.zeros((3, 5), jnp.float32)}
    ours, theirs = muon(1e-2, weight_decay=0.1), optax.contrib.muon(1e-2, weight_decay=0.1)
    s1, s2 = ours.init(params), theirs.init(params)
    rng, p = np.random.default_rng(40), params
    for k in range(30):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params)
        u1, s1 = ours.update(g, s1, p)
        u2, s2 = theirs.update(g, s2, p)
        for key in params:
            np.testing.assert_allclose(np.asarray(u1[key]), np.asarray(u2[key]), rtol=2e-4, atol=2e-6,
                                       err_msg=f"{key} step {k + 1}")
        p = gradtx.apply_updates(p, u1)


def test_muon_momentum_form_validation():
    with pytest.raises(ValueError, match=r"scale_by_muon\(momentum_form='jordan'\): momentum_form must be one of "
                                         r"'optax', 'reference'"):
        scale_by_muon(momentum_form="jordan")
    with pytest.raises(ValueError, match=r"muon\(momentum_form=True\): momentum_form must be one of"):
        muon(1e-2, momentum_form=True)


def test_compute_muon_reshape_puts_batch_then_fan_in_then_fan_out_and_inverts():
    from gradtx.contrib import MuonDimensionNumbers
    from gradtx.contrib._muon import compute_muon_reshape

    x = jnp.arange(2 * 3 * 4 * 5, dtype=jnp.float32).reshape(2, 3, 4, 5)
    fwd, inv = compute_muon_reshape(x, MuonDimensionNumbers(reduction_axis=(-1, 1), output_axis=2))
    y = fwd(x)
    want = np.transpose(np.asarray(x), (0, 3, 1, 2)).reshape(2, 15, 4)  # batch (0), fan-in (3, 1), fan-out (2)
    np.testing.assert_array_equal(np.asarray(y), want)
    np.testing.assert_array_equal(np.asarray(inv(y)), np.asarray(x))
    with pytest.raises(ValueError, match="disjoint"):
        compute_muon_reshape(x, MuonDimensionNumbers(reduction_axis=1, output_axis=1))
