"""gradtx.projections against float64 NumPy references (gradtx.testing.reference.projections), the optimality
conditions of a Euclidean projection, and Optax (values and derivatives on the same inputs)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import flatten_util

from gradtx import projections as gp
from gradtx.testing.reference import projections as ref

RNG = np.random.default_rng(0)
X_TREE = {"w": RNG.normal(size=(2, 3)) * 2, "b": RNG.normal(size=(4,)) * 2}  # float64, ||x||_1 ~ 15
A_TREE = {"w": RNG.normal(size=(2, 3)), "b": RNG.normal(size=(4,))}


def _flat(tree):
    return np.asarray(flatten_util.ravel_pytree(tree)[0], dtype=np.float64)


# name -> (gradtx call, optax call, reference on the raveled vector); radii inside and outside the set
CASES = {
    "simplex": (gp.projection_simplex, optax.projections.projection_simplex, ref.simplex),
    "l1_sphere": (gp.projection_l1_sphere, optax.projections.projection_l1_sphere, ref.l1_sphere),
    "l1_ball": (gp.projection_l1_ball, optax.projections.projection_l1_ball, ref.l1_ball),
    "l2_sphere": (gp.projection_l2_sphere, optax.projections.projection_l2_sphere, ref.l2_sphere),
    "l2_ball": (gp.projection_l2_ball, optax.projections.projection_l2_ball, ref.l2_ball),
    "linf_ball": (gp.projection_linf_ball, optax.projections.projection_linf_ball, ref.linf_ball),
}


@pytest.mark.parametrize("scale", [0.7, 40.0])
@pytest.mark.parametrize("name", sorted(CASES))
def test_radius_projections_match_reference_and_optax(name, scale):
    ours, theirs, reference = CASES[name]
    got = ours(X_TREE, scale)
    assert jax.tree.structure(got) == jax.tree.structure(X_TREE)
    np.testing.assert_allclose(_flat(got), reference(_flat(X_TREE), scale), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_flat(got), _flat(theirs(X_TREE, scale)), rtol=1e-12, atol=1e-12)
    # a projection is idempotent
    np.testing.assert_allclose(_flat(ours(got, scale)), _flat(got), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_simplex_matches_bisection_and_float32_optax(scale):
    x = RNG.normal(size=50).astype(np.float32)
    got = gp.projection_simplex(jnp.asarray(x), scale)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, ref.simplex_by_bisection(x, scale), atol=2e-6)
    np.testing.assert_allclose(got, optax.projections.projection_simplex(jnp.asarray(x), scale), atol=2e-6)


def test_optimality_conditions_simplex_and_l1_ball():
    """p = proj_C(x) iff <x - p, q - p> <= 0 for all q in C; for a polytope, the vertices suffice."""
    x = _flat(X_TREE)
    n, s = x.size, 1.5
    p = _flat(gp.projection_simplex(X_TREE, s))
    assert np.all(p >= 0) and abs(p.sum() - s) < 1e-12
    vertices = s * np.eye(n)
    assert np.max((vertices - p) @ (x - p)) <= 1e-12
    q = _flat(gp.projection_l1_ball(X_TREE, s))
    assert abs(np.abs(q).sum() - s) < 1e-12
    vertices = np.concatenate([s * np.eye(n), -s * np.eye(n)])
    assert np.max((vertices - q) @ (x - q)) <= 1e-12
    # no other feasible point is closer: random points of the simplex
    others = s * RNG.dirichlet(np.ones(n), size=200)
    assert np.all(np.linalg.norm(others - x, axis=1) >= np.linalg.norm(p - x))


def test_affine_projections_match_reference_and_optax():
    x, a = X_TREE, A_TREE
    ax = float(_flat(a) @ _flat(x))
    for b in (ax - 1.0, ax + 1.0):  # the halfspace is active for the first b only
        for ours, theirs, reference in [
            (gp.projection_hyperplane, optax.projections.projection_hyperplane, ref.hyperplane),
            (gp.projection_halfspace, optax.projections.projection_halfspace, ref.halfspace),
        ]:
            got = ours(x, a, b)
            np.testing.assert_allclose(_flat(got), reference(_flat(x), _flat(a), b), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(_flat(got), _flat(theirs(x, a, b)), rtol=1e-12, atol=1e-12)
    got = gp.projection_vector(x, a)
    np.testing.assert_allclose(_flat(got), ref.vector(_flat(x), _flat(a)), rtol=1e-12)
    np.testing.assert_allclose(_flat(got), _flat(optax.projections.projection_vector(x, a)), rtol=1e-12)
    # closed form of Optax's docstring example
    np.testing.assert_allclose(gp.projection_hyperplane((1.0, 2.0), (3.0, 4.0), 5.0), (7 / 25, 26 / 25))


def test_box_hypercube_non_negative():
    x = {"w": jnp.array([-1.0, 2.0, 0.5]), "b": jnp.array(3.0)}
    np.testing.assert_array_equal(gp.projection_non_negative(x)["w"], [0.0, 2.0, 0.5])
    np.testing.assert_array_equal(
        _flat(gp.projection_box(x, {"w": -0.5, "b": 0.0}, {"w": jnp.array([1.0, 1.0, 0.2]), "b": 2.0})),
        _flat({"w": [-0.5, 1.0, 0.2], "b": 2.0}),
    )
    np.testing.assert_array_equal(
        gp.projection_box(x["w"], 0.0, 1.0), optax.projections.projection_box(x["w"], 0.0, 1.0)
    )
    # a scalar bound applies to every leaf of a tree (Optax's projection_hypercube raises on a tree)
    np.testing.assert_array_equal(_flat(gp.projection_hypercube(x, 0.8)), _flat({"w": [0.0, 0.8, 0.5], "b": 0.8}))
    np.testing.assert_array_equal(gp.projection_hypercube(x["w"], jnp.array([0.8, 0.8, 0.1])), [0.0, 0.8, 0.1])


def test_simplex_jacobian_closed_form_and_optax():
    x = jnp.asarray(RNG.uniform(size=6))
    p = gp.projection_simplex(x)
    on = (np.asarray(p) > 0).astype(float)
    expected = np.diag(on) - np.outer(on, on) / on.sum()
    np.testing.assert_allclose(jax.jacfwd(gp.projection_simplex)(x), expected, atol=1e-12)
    np.testing.assert_allclose(jax.jacrev(gp.projection_simplex)(x), expected, atol=1e-12)
    # derivative in the radius: 1_S / |S|, checked by central differences
    d_scale = jax.jacfwd(gp.projection_simplex, argnums=1)(x, 1.3)
    fd = (gp.projection_simplex(x, 1.3 + 1e-6) - gp.projection_simplex(x, 1.3 - 1e-6)) / 2e-6
    np.testing.assert_allclose(d_scale, fd, atol=1e-6)
    np.testing.assert_allclose(d_scale, jax.jacfwd(optax.projections.projection_simplex, argnums=1)(x, 1.3), atol=1e-9)


@pytest.mark.parametrize("name", ["l1_ball", "l2_ball", "l2_sphere"])
def test_gradients_match_optax(name):
    ours, theirs, _ = CASES[name]
    x = jnp.asarray(RNG.normal(size=5))
    w = jnp.asarray(RNG.normal(size=5))
    for scale in (0.5, 10.0):
        g1 = jax.grad(lambda v, s: jnp.vdot(w, ours(v, s)), argnums=(0, 1))(x, scale)
        g2 = jax.grad(lambda v, s: jnp.vdot(w, theirs(v, s)), argnums=(0, 1))(x, scale)
        np.testing.assert_allclose(g1[0], g2[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(g1[1], g2[1], rtol=1e-10, atol=1e-12)
    for fn in (gp.projection_l1_ball, gp.projection_l2_ball):  # identity inside the ball, also at 0
        assert jax.grad(fn)(0.0) == 1.0


def test_edge_cases_where_optax_returns_nan():
    x = jnp.array([3.0, -4.0])
    np.testing.assert_array_equal(gp.projection_simplex(x, 0.0), [0.0, 0.0])
    np.testing.assert_array_equal(gp.projection_l1_ball(x, 0.0), [0.0, 0.0])
    np.testing.assert_array_equal(gp.projection_l2_ball(x, 0.0), [0.0, 0.0])
    np.testing.assert_array_equal(gp.projection_l2_ball(jnp.zeros(2), 0.0), [0.0, 0.0])
    np.testing.assert_array_equal(gp.projection_l2_ball(x, jnp.inf), x)
    np.testing.assert_array_equal(gp.projection_l1_ball(x, jnp.inf), x)
    np.testing.assert_array_equal(gp.projection_vector(x, jnp.zeros(2)), [0.0, 0.0])
    np.testing.assert_array_equal(gp.projection_halfspace(x, jnp.zeros(2), 1.0), x)
    np.testing.assert_array_equal(gp.projection_simplex(jnp.array([0.0, 0.0, -jnp.inf])), [0.5, 0.5, 0.0])


def test_dtypes_jit_and_vmap():
    tree = {"h": jnp.array([3.0, -1.0], jnp.bfloat16), "i": jnp.array([2, 5])}
    out = gp.projection_l2_ball(tree, 1.0)
    assert out["h"].dtype == jnp.bfloat16 and jnp.issubdtype(out["i"].dtype, jnp.floating)
    np.testing.assert_allclose(_flat(out), np.array([3.0, -1.0, 2.0, 5.0]) / np.sqrt(39.0), rtol=1e-2)
    xs = jnp.asarray(RNG.normal(size=(3, 7)))
    scales = jnp.array([0.5, 1.0, 2.0])
    batched = jax.jit(jax.vmap(gp.projection_simplex))(xs, scales)
    for k in range(3):
        np.testing.assert_allclose(batched[k], ref.simplex(xs[k], float(scales[k])), atol=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gp.projection_l2_ball(jnp.ones(2), -1.0), r"projection_l2_ball\(scale=-1.0\): scale must be >= 0"),
        (lambda: gp.projection_simplex(jnp.ones(2), float("inf")), r"projection_simplex\(scale=inf\).*finite"),
        (lambda: gp.projection_l1_ball(jnp.ones(2), float("nan")), r"projection_l1_ball\(scale=nan\)"),
        (lambda: gp.projection_linf_ball(jnp.ones(2), -2), r"projection_linf_ball\(scale=-2\)"),
        (lambda: gp.projection_hypercube(jnp.ones(2), -0.5), r"projection_hypercube\(scale=-0.5\)"),
        (lambda: gp.projection_box(jnp.ones(2), 1.0, 0.0), r"projection_box\(lower=1.0, upper=0.0\)"),
        (lambda: gp.projection_hyperplane(jnp.ones(2), jnp.ones(2), jnp.ones(2)), r"projection_hyperplane\(b="),
        (lambda: gp.projection_simplex(jnp.ones(2, jnp.complex64)), r"projection_simplex: tree has a complex"),
    ],
)
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()
