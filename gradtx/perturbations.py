"""Differentiable approximations of functions by random perturbations (Optax's ``optax.perturbations``).

For a function ``f`` (possibly piecewise constant, like an argmax or a ranking), a noise distribution ``mu``
with density ``exp(log_prob)`` and a scale ``sigma``, the *perturbed* function

    f_sigma(x) = E_{z ~ mu} f(x + sigma z)

is smooth when ``mu`` is (Berthet et al. 2020, *Learning with Differentiable Perturbed Optimizers*). Its
gradient needs only values of ``f``: writing ``y = x + sigma z``, the score-function identity gives

    d/dx f_sigma(x) = E[ f(y) * (-1/sigma) grad log_prob((y - x)/sigma) ]
                    = E[ (f(y) - f(x)) * (-1/sigma) grad log_prob((y - x)/sigma) ]

(the second form subtracts the baseline ``f(x)``, which has zero mean and reduces variance). The estimate
is written with the "magic box" of Foerster et al. 2018 (*DiCE*), ``box = exp(L - stop_gradient(L))`` with
``L`` the log-density of the sample, which equals 1 in value and carries the score in its derivatives, so
that ``box * f(y) + (1 - box) * f(x)`` estimates ``f_sigma`` and derivatives of every order by autodiff.

    >>> import jax, jax.numpy as jnp
    >>> from gradtx.perturbations import make_perturbed_fun
    >>> hard_max = lambda x: jax.nn.one_hot(jnp.argmax(x), x.shape[0])
    >>> soft_max = make_perturbed_fun(hard_max, num_samples=20_000, sigma=1.0)
    >>> x = jnp.array([1.0, 0.0, -1.0])
    >>> bool(jnp.allclose(soft_max(jax.random.key(0), x), jax.nn.softmax(x), atol=0.02))
    True

Under Gumbel noise the perturbed argmax is exactly the softmax of ``x / sigma`` (the Gumbel-max trick),
which the tests use as a closed form. Sampling uses the same keys as Optax (``jax.random.split(key,
num_samples)``, then one key per leaf of ``x`` in flattening order), so equal keys give equal results.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import core as jax_core

from gradtx.base import PyTree, Scalar

__all__ = ["Gumbel", "Normal", "make_perturbed_fun"]


class _Noise:
    """A standard noise for :func:`make_perturbed_fun`: ``sample`` draws with the class's ``jax.random`` sampler
    ``_draw``, ``log_prob`` evaluates its log-density ``_log_density`` (both given by each subclass)."""

    _draw: Callable[..., jax.Array]

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = (), dtype: Any = float) -> jax.Array:
        """Draws ``sample_shape`` independent values (``jax.random.normal`` or ``jax.random.gumbel``).

        Args:
          key: a PRNG key.
          sample_shape: the shape of the sample (default ``()``).
          dtype: a floating dtype (default ``float``: float32, or float64 with ``jax_enable_x64``).

        Returns:
          An array of draws of shape ``sample_shape``.
        """
        return self._draw(key, sample_shape, dtype)

    def log_prob(self, inputs: Any) -> jax.Array:
        """The log-density given in the class docstring, elementwise.

        Args:
          inputs: an array (or number).

        Returns:
          An array of the shape of ``inputs``.
        """
        return self._log_density(jnp.asarray(inputs))

    @staticmethod
    def _log_density(z: jax.Array) -> jax.Array:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Normal(_Noise):
    r"""The standard normal distribution ``N(0, 1)``, a noise for :func:`make_perturbed_fun`.

    ``sample`` draws with ``jax.random.normal``; ``log_prob(z) = -z^2 / 2`` (up to the constant
    ``-log(2 pi) / 2``, which no estimate depends on).

    Example:
      >>> import jax
      >>> from gradtx.perturbations import Normal
      >>> z = Normal().sample(jax.random.key(0), (10_000,))
      >>> print(abs(float(z.mean())) < 0.05, abs(float(z.std()) - 1) < 0.05)
      True True
      >>> print(Normal().log_prob(2.0))
      -2.0
    """

    _draw = staticmethod(jax.random.normal)

    @staticmethod
    def _log_density(z: jax.Array) -> jax.Array:
        return -0.5 * z * z


class Gumbel(_Noise):
    r"""The standard Gumbel distribution, a noise for :func:`make_perturbed_fun` (the default).

    Density ``exp(-(z + exp(-z)))``, so ``log_prob(z) = -z - exp(-z)``; ``sample`` draws with
    ``jax.random.gumbel``; mean is the Euler-Mascheroni constant 0.5772. With it, the perturbed argmax of ``x``
    is distributed as ``softmax(x / sigma)`` (Gumbel 1954; the Gumbel-max trick).

    Example:
      >>> import jax
      >>> from gradtx.perturbations import Gumbel
      >>> z = Gumbel().sample(jax.random.key(0), (20_000,))
      >>> print(abs(float(z.mean()) - 0.5772) < 0.05)
      True
      >>> print(Gumbel().log_prob(0.0))
      -1.0
    """

    _draw = staticmethod(jax.random.gumbel)

    @staticmethod
    def _log_density(z: jax.Array) -> jax.Array:
        return -z - jnp.exp(-z)


def _noise_like(noise: Any, key: jax.Array, x: PyTree) -> PyTree:
    """One noise draw per leaf of ``x`` (its shape and dtype), a key per leaf split from ``key``."""
    leaves, treedef = jax.tree.flatten(x)
    keys = jax.random.split(key, len(leaves))
    draws = [noise.sample(k, jnp.shape(leaf), jnp.result_type(leaf)) for k, leaf in zip(keys, leaves, strict=True)]
    return jax.tree.unflatten(treedef, draws)


def _check_sigma(sigma: Any) -> None:
    if isinstance(sigma, jax_core.Tracer):
        return
    if isinstance(sigma, complex) or (hasattr(sigma, "dtype") and jnp.issubdtype(sigma.dtype, jnp.complexfloating)):
        raise ValueError(f"make_perturbed_fun(sigma={sigma!r}): sigma must be real, finite and non-zero")
    if isinstance(sigma, (numbers.Real, np.ndarray, np.generic)) or (isinstance(sigma, jax.Array) and sigma.size == 1):
        arr = np.asarray(sigma, dtype=np.float64)
        if np.any(~np.isfinite(arr)) or np.any(arr == 0):
            raise ValueError(f"make_perturbed_fun(sigma={sigma!r}): sigma must be real, finite and non-zero")


def make_perturbed_fun(
    fun: Callable[[PyTree], PyTree],
    num_samples: int = 1000,
    sigma: Scalar = 0.1,
    noise: Any = Gumbel(),  # noqa: B008 - stateless, as in Optax
    use_baseline: bool = True,
) -> Callable[[jax.Array, PyTree], PyTree]:
    r"""A Monte Carlo estimate of the smoothed function ``f_sigma(x) = E_z f(x + sigma z)`` and its derivatives.

    Returns ``g(key, x)``: the mean over ``num_samples`` draws ``z_i ~ noise`` of

        box_i * f(y_i) + (1 - box_i) * f(x)      (without baseline: box_i * f(y_i))

    where ``y_i = stop_gradient(x + sigma z_i)``, ``box_i = exp(L_i - stop_gradient(L_i))`` and ``L_i`` is the
    sum over all leaves of ``noise.log_prob((y_i - x) / sigma)``. In value ``g(key, x)`` is the sample mean
    of ``f(y_i)``; its derivatives of every order (``jax.grad``, ``jax.jacobian``, ``jax.hessian``) are
    unbiased estimates of those of ``f_sigma``, computed from values of ``f`` only (``f`` need not be
    differentiable, and its derivative is never evaluated). References: Berthet et al. 2020, *Learning with
    Differentiable Perturbed Optimizers*; Foerster et al. 2018, *DiCE*; Salimans et al. 2017, *Evolution
    Strategies as a Scalable Alternative to Reinforcement Learning*.

    Args:
      fun: the function ``f``, from a pytree of arrays to a pytree of arrays.
      num_samples: the number of perturbations averaged over, an integer ``>= 1`` (default 1000). The
        standard error falls as ``1 / sqrt(num_samples)``.
      sigma: the scale of the perturbation, a real non-zero finite number or an array broadcastable to the
        leaves of ``x`` (default 0.1). A negative ``sigma`` smooths with the reflected noise ``-z``.
      noise: the distribution of ``z``, an object with ``sample(key, shape, dtype)`` and ``log_prob(z)``, such
        as :class:`Gumbel` (default) or :class:`Normal`.
      use_baseline: subtract the control variate ``f(x)`` (default True). It changes no expectation and
        lowers the variance of derivative estimates.

    Returns:
      A function ``g(key, x)`` with the output structure of ``fun``: ``key`` is a PRNG key (split into
      ``num_samples`` keys exactly as Optax does, so the same key gives the same draws).

    Raises:
      ValueError: if ``fun`` is not callable, ``num_samples`` is not an integer ``>= 1``, a concrete ``sigma``
        is zero, infinite, NaN or complex, or ``noise`` lacks ``sample``/``log_prob``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from gradtx.perturbations import make_perturbed_fun, Normal
      >>> relu_sum = lambda x: jnp.sum(jnp.maximum(x, 0.0))
      >>> g = make_perturbed_fun(relu_sum, num_samples=100_000, sigma=0.5, noise=Normal())
      >>> grad = jax.grad(g, argnums=1)(jax.random.key(0), jnp.zeros(3))
      >>> print(bool(jnp.allclose(grad, 0.5, atol=0.05)))  # d/dx E max(x + sigma z, 0) = P(z > 0) at 0
      True
    """
    if not callable(fun):
        raise ValueError(f"make_perturbed_fun(fun={fun!r}): fun must be callable")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (numbers.Integral,)) or num_samples < 1:
        raise ValueError(f"make_perturbed_fun(num_samples={num_samples!r}): num_samples must be an integer >= 1")
    num_samples = int(num_samples)
    _check_sigma(sigma)
    if not (callable(getattr(noise, "sample", None)) and callable(getattr(noise, "log_prob", None))):
        raise ValueError(f"make_perturbed_fun(noise={noise!r}): noise must have sample() and log_prob() methods")

    def magic_box(log_p: jax.Array) -> jax.Array:
        return jnp.exp(log_p - jax.lax.stop_gradient(log_p))

    def perturbed(key: jax.Array, x: PyTree) -> PyTree:
        baseline = fun(jax.lax.stop_gradient(x)) if use_baseline else None

        def one(k: jax.Array) -> PyTree:
            z = _noise_like(noise, k, x)
            y = jax.lax.stop_gradient(jax.tree.map(lambda xi, zi: xi + sigma * zi, x, z))
            z_of_x = jax.tree.map(lambda xi, yi: (yi - xi) / sigma, x, y)  # = z, with its derivative in x
            terms = [jnp.sum(noise.log_prob(zi)) for zi in jax.tree.leaves(z_of_x)]
            log_p = terms[0] if terms else jnp.zeros((), jnp.float32)
            for t in terms[1:]:
                log_p = log_p + t
            box = magic_box(log_p)
            fy = fun(y)
            if baseline is None:
                return jax.tree.map(lambda v: box * v, fy)
            return jax.tree.map(lambda v, b: box * v + (1 - box) * b, fy, baseline)

        draws = jax.vmap(one)(jax.random.split(key, num_samples))
        return jax.tree.map(lambda d: jnp.mean(d, axis=0), draws)

    return perturbed
