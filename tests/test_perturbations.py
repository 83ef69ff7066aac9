"""gradtx.perturbations: equal to Optax with the same key (values and Jacobians), the Gumbel-max closed form
(perturbed argmax = softmax(x / sigma) in expectation), exact derivatives for a linear function, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradtx import perturbations as gp


def _one_hot_argmax(tree):
    return jax.tree.map(lambda v: jax.nn.one_hot(jnp.argmax(v), v.shape[0], dtype=v.dtype), tree)


@pytest.mark.parametrize("use_baseline", [True, False])
def test_equal_to_optax_with_same_key(use_baseline):
    x = {"u": jnp.array([0.1, 0.3, -0.2], jnp.float32), "v": jnp.array([1.0, -2.0])}

    def f(t):
        return {"a": _one_hot_argmax(t["u"]), "s": jnp.sum(jnp.sin(t["v"]) * t["u"][:2])}

    key = jax.random.key(7)
    for ours, theirs in [
        (gp.Gumbel(), optax.perturbations.Gumbel()),
        (gp.Normal(), optax.perturbations.Normal()),
    ]:
        g = gp.make_perturbed_fun(f, 64, 0.3, ours, use_baseline)
        o = optax.perturbations.make_perturbed_fun(f, 64, 0.3, theirs, use_baseline)
        got, want = g(key, x), o(key, x)
        assert jax.tree.map(lambda a: a.dtype, got) == jax.tree.map(lambda a: a.dtype, want)
        jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), got, want)
        jg = jax.jacobian(g, argnums=1)(key, x)
        jo = jax.jacobian(o, argnums=1)(key, x)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), jg, jo)
        np.testing.assert_array_equal(ours.log_prob(jnp.array([-1.0, 0.5])), theirs.log_prob(jnp.array([-1.0, 0.5])))


def test_gumbel_argmax_is_softmax_in_expectation():
    """Gumbel-max: P(argmax(x + sigma G) = k) = softmax(x / sigma)_k; each frequency has std <= 0.5/sqrt(N)."""
    n_samples, sigma = 40_000, 0.5
    x = jnp.array([0.3, -0.1, 0.2, -0.5])
    g = jax.jit(gp.make_perturbed_fun(_one_hot_argmax, n_samples, sigma))
    got = g(jax.random.key(0), x)
    np.testing.assert_allclose(got, jax.nn.softmax(x / sigma), atol=5 * 0.5 / np.sqrt(n_samples))
    np.testing.assert_allclose(got.sum(), 1.0, rtol=1e-12)


def test_linear_function_value_and_jacobian():
    """For f(x) = A x + b: f_sigma(x) = A x + b + sigma A E[z] and its Jacobian is A (Normal noise, E z = 0)."""
    a = jnp.array([[1.0, -2.0], [0.5, 3.0], [0.0, 1.0]])
    b = jnp.array([0.1, 0.2, 0.3])
    x = jnp.array([0.4, -0.7])
    g = gp.make_perturbed_fun(lambda v: a @ v + b, 20_000, 0.5, gp.Normal())
    key = jax.random.key(1)
    np.testing.assert_allclose(jax.jit(g)(key, x), a @ x + b, atol=0.05)
    np.testing.assert_allclose(jax.jit(jax.jacobian(g, argnums=1))(key, x), a, atol=0.1)
    # the Hessian of a quadratic is recovered from values only
    h = jax.jit(jax.hessian(gp.make_perturbed_fun(lambda v: 0.5 * jnp.sum(v**2), 20_000, 1.0, gp.Normal()), argnums=1))
    np.testing.assert_allclose(h(key, jnp.zeros(2)), np.eye(2), atol=0.1)


def test_derivative_of_fun_never_used():
    @jax.custom_jvp
    def f(v):
        return v

    @f.defjvp
    def _never(primals, tangents):
        raise AssertionError("the derivative of fun must not be evaluated")

    grad = jax.grad(gp.make_perturbed_fun(f, 8, 1.0, gp.Normal()), argnums=1)(jax.random.key(0), jnp.array(0.0))
    assert np.isfinite(grad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_samples": 0}, r"make_perturbed_fun\(num_samples=0\): num_samples must be an integer >= 1"),
        ({"num_samples": 2.5}, r"num_samples=2.5"),
        ({"sigma": 0.0}, r"make_perturbed_fun\(sigma=0.0\): sigma must be real, finite and non-zero"),
        ({"sigma": float("inf")}, r"sigma=inf"),
        ({"noise": object()}, r"noise must have sample\(\) and log_prob\(\)"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gp.make_perturbed_fun(jnp.sum, **kwargs)
    with pytest.raises(ValueError, match="fun must be callable"):
        gp.make_perturbed_fun(3)  # type: ignore[arg-type]
