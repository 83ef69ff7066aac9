"""Testing helpers for gradtx and for transformations written against it.

Modules (imported on use, so that ``import gradtx`` stays light):

    contract    ``check_transformation(tx)``: the contract every transformation honours (jit equals eager,
                stable state structure and dtypes, ``lax.scan`` equals a loop, pytree round trips, ...)
    problems    test problems with known minima and closed forms (``Quadratic``, ``narrow_valley``,
                ``rosenbrock``)
    digits      the digits classification task of the integration tests and notebooks (needs scikit-learn)
    reference   slow, obviously-correct float64 NumPy references of every optimizer and schedule

Example:
  >>> import jax.numpy as jnp
  >>> from gradtx.testing import problems
  >>> print(problems.rosenbrock().loss(jnp.array([1.0, 1.0])))
  0.0
"""

# The public names are the modules, imported by ``from gradtx.testing import *`` (not here: chex and the references
# would slow every ``import gradtx.testing.problems``).
__all__ = ["contract", "digits", "problems", "reference"]  # pyright: ignore[reportUnsupportedDunderAll]
