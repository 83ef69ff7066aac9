"""Second-order quantities of a loss: Hessian-vector products, the Hessian diagonal, the Fisher diagonal.

Optax's ``optax.second_order`` (deprecated there since 0.2.7 and announced for removal in 0.2.9). gradtx
keeps the three functions with Optax's signatures and return values and, following its no-deprecation-layer
rule before 1.0, does not emit Optax's ``DeprecationWarning`` (no Optax test relies on it).

Every function takes a loss ``loss(params, inputs, targets) -> scalar`` and differentiates it with respect
to ``params`` (any pytree of float arrays). Write ``theta`` for ``params`` raveled into one vector (leaves in
flattening order, as ``jax.flatten_util.ravel_pytree`` does) and ``H = d^2 loss / d theta^2``.

    >>> import jax.numpy as jnp
    >>> from gradtx.second_order import hessian_diag
    >>> loss = lambda w, x, y: jnp.sum((x @ w - y) ** 2)  # H = 2 x^T x
    >>> x = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    >>> print(hessian_diag(loss, jnp.zeros(2), x, jnp.zeros(2)))
    [20. 40.]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import flatten_util

from gradtx.base import Params, PyTree

__all__ = ["fisher_diag", "hessian_diag", "hvp"]

LossFn = Callable[[Any, Any, Any], jax.Array]


def _check_loss(fn: str, name: str, loss: Any) -> None:
    if not callable(loss):
        raise ValueError(f"{fn}({name}={loss!r}): {name} must be callable as {name}(params, inputs, targets)")


def _hvp_tree(loss: LossFn, v_tree: Any, params: Any, inputs: Any, targets: Any) -> Any:
    """``H v`` as a tree like ``params``: forward-over-reverse, the derivative of the gradient along ``v``."""
    grad = jax.grad(lambda p: loss(p, inputs, targets))
    return jax.jvp(grad, (params,), (v_tree,))[1]


def hvp(loss: LossFn, v: jax.Array, params: Params, inputs: PyTree, targets: PyTree) -> Params:
    r"""The Hessian-vector product ``H v`` of ``loss`` at ``(params, inputs, targets)`` (Pearlmutter 1994).

    Computed without forming ``H``, as the directional derivative of the gradient: ``H v = d/de grad
    loss(theta + e v) |_{e=0}`` (one forward-over-reverse pass, about the cost of two gradients).

    Args:
      loss: the loss, ``loss(params, inputs, targets) -> scalar``, twice differentiable in ``params``.
      v: a 1-D vector with as many entries as ``params`` has in total (in raveled order).
      params: the parameters (a pytree of float arrays) at which ``H`` is taken.
      inputs: the inputs passed to ``loss``.
      targets: the targets passed to ``loss``.

    Returns:
      ``H v`` as a pytree with the structure of ``params`` (as Optax returns it; ravel it with
      ``jax.flatten_util.ravel_pytree`` for a vector).

    Raises:
      ValueError: if ``loss`` is not callable or ``v`` is not a vector of the size of ``params``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.second_order import hvp
      >>> loss = lambda w, x, y: 0.5 * jnp.sum((x @ w - y) ** 2)  # H = x^T x
      >>> x = jnp.array([[1.0, 0.0], [1.0, 1.0]])
      >>> print(hvp(loss, jnp.array([1.0, 0.0]), jnp.zeros(2), x, jnp.zeros(2)))
      [2. 1.]
    """
    _check_loss("hvp", "loss", loss)
    flat, unravel = flatten_util.ravel_pytree(params)
    if jnp.ndim(v) != 1 or jnp.shape(v)[0] != flat.shape[0]:
        raise ValueError(
            f"hvp(v of shape {jnp.shape(v)}): v must be a vector of shape ({flat.shape[0]},), the number of "
            "entries of params"
        )
    return _hvp_tree(loss, unravel(jnp.asarray(v)), params, inputs, targets)


def hessian_diag(loss: LossFn, params: Params, inputs: PyTree, targets: PyTree) -> jax.Array:
    r"""The diagonal of the Hessian of ``loss`` with respect to ``params``: ``diag(H)_k = e_k^T H e_k``.

    Exact: one Hessian-vector product per coordinate (``vmap`` over the unit vectors ``e_k``), so the cost
    is ``n`` HVPs for ``n`` parameters; meant for small models and tests (Optax computes it the same way).

    Args:
      loss: the loss, ``loss(params, inputs, targets) -> scalar``, twice differentiable in ``params``.
      params: the parameters (a pytree of float arrays).
      inputs: the inputs passed to ``loss``.
      targets: the targets passed to ``loss``.

    Returns:
      A 1-D array of length ``n`` (the parameters raveled): the Hessian's diagonal.

    Raises:
      ValueError: if ``loss`` is not callable.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.second_order import hessian_diag
      >>> loss = lambda p, x, y: p["a"] ** 2 * p["b"] + jnp.sum(p["b"] ** 3)
      >>> print(hessian_diag(loss, {"a": 1.0, "b": 2.0}, None, None))  # [2b, 6b]
      [ 4. 12.]
    """
    _check_loss("hessian_diag", "loss", loss)
    flat, unravel = flatten_util.ravel_pytree(params)
    basis = jnp.eye(flat.shape[0], dtype=flat.dtype)

    def entry(e: jax.Array) -> jax.Array:
        he = flatten_util.ravel_pytree(_hvp_tree(loss, unravel(e), params, inputs, targets))[0]
        return jnp.vdot(e, he)

    return jax.vmap(entry)(basis)


def fisher_diag(negative_log_likelihood: LossFn, params: Params, inputs: PyTree, targets: PyTree) -> jax.Array:
    r"""The diagonal of the observed (empirical) Fisher information: the squared gradient of the NLL.

    ``F_kk = (d nll(theta; inputs, targets) / d theta_k)^2``, with ``nll`` the negative log-likelihood of the
    given batch; for a sum over examples this is the square of the summed score, as in Optax (not the sum of
    per-example squares).

    Args:
      negative_log_likelihood: ``nll(params, inputs, targets) -> scalar``, differentiable in ``params``.
      params: the parameters (a pytree of float arrays).
      inputs: the inputs passed to ``negative_log_likelihood``.
      targets: the targets passed to ``negative_log_likelihood``.

    Returns:
      A 1-D array of length ``n`` (the parameters raveled): the squared gradient.

    Raises:
      ValueError: if ``negative_log_likelihood`` is not callable.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.second_order import fisher_diag
      >>> nll = lambda mu, x, y: 0.5 * jnp.sum((x - mu) ** 2)  # gradient: n mu - sum(x)
      >>> print(fisher_diag(nll, jnp.array([0.0]), jnp.array([1.0, 2.0]), None))
      [9.]
    """
    _check_loss("fisher_diag", "negative_log_likelihood", negative_log_likelihood)
    grad = jax.grad(negative_log_likelihood)(params, inputs, targets)
    return jnp.square(flatten_util.ravel_pytree(grad)[0])
