"""gradtx.second_order against explicit Hessians of tiny problems (closed forms in float64 NumPy) and Optax
(whose functions warn DeprecationWarning; gradtx's do not)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradtx import second_order as so

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 3))
Y = RNG.normal(size=6)
PARAMS = {"w": jnp.asarray(RNG.normal(size=3)), "b": jnp.asarray(0.3)}  # ravel order: b, then w


def least_squares(p, x, y):
    return 0.5 * jnp.sum((x @ p["w"] + p["b"] - y) ** 2)


def softplus_loss(p, x, y):
    return jnp.sum(jax.nn.softplus(x @ p["w"] + p["b"]) - y * (x @ p["w"] + p["b"]))


def _design(x):
    return np.concatenate([np.ones((x.shape[0], 1)), x], axis=1)  # columns in ravel order: b, w


def _hessians():
    """Closed forms: least squares H = D^T D; logistic-type loss H = D^T diag(s (1 - s)) D, s = sigmoid(D theta)."""
    d = _design(X)
    theta = np.concatenate([[0.3], np.asarray(PARAMS["w"])])
    s = 1 / (1 + np.exp(-(d @ theta)))
    return {least_squares: d.T @ d, softplus_loss: d.T @ (d * (s * (1 - s))[:, None])}


def _optax(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return getattr(optax.second_order, fn)(*args)


@pytest.mark.parametrize("loss", [least_squares, softplus_loss], ids=["least_squares", "softplus"])
def test_hvp_and_hessian_diag_match_closed_form_and_optax(loss):
    h = _hessians()[loss]
    v = RNG.normal(size=4)
    got = so.hvp(loss, jnp.asarray(v), PARAMS, X, Y)
    assert jax.tree.structure(got) == jax.tree.structure(PARAMS)  # a tree like params, as Optax returns
    flat = np.concatenate([np.atleast_1d(got["b"]), got["w"]])
    np.testing.assert_allclose(flat, h @ v, rtol=1e-12)
    theirs = _optax("hvp", loss, jnp.asarray(v), PARAMS, X, Y)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), got, theirs)
    diag = so.hessian_diag(loss, PARAMS, X, Y)
    np.testing.assert_allclose(diag, np.diag(h), rtol=1e-12)
    np.testing.assert_allclose(diag, _optax("hessian_diag", loss, PARAMS, X, Y), rtol=1e-12)


def test_fisher_diag_is_squared_gradient():
    d = _design(X)
    theta = np.concatenate([[0.3], np.asarray(PARAMS["w"])])
    grad = d.T @ (d @ theta - Y)  # gradient of the least-squares NLL
    got = so.fisher_diag(least_squares, PARAMS, X, Y)
    np.testing.assert_allclose(got, grad**2, rtol=1e-12)
    np.testing.assert_allclose(got, _optax("fisher_diag", least_squares, PARAMS, X, Y), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gradtx does not warn
        so.fisher_diag(least_squares, PARAMS, X, Y)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"hvp\(v of shape \(3,\)\): v must be a vector of shape \(4,\)"):
        so.hvp(least_squares, jnp.ones(3), PARAMS, X, Y)
    with pytest.raises(ValueError, match=r"hessian_diag\(loss=1\): loss must be callable"):
        so.hessian_diag(1, PARAMS, X, Y)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"fisher_diag\(negative_log_likelihood=None\)"):
        so.fisher_diag(None, PARAMS, X, Y)  # type: ignore[arg-type]
