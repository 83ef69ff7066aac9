"""Complex parameters as pairs of real ones: ``split_real_and_imaginary(inner)``.

Each complex leaf ``z = x + i y`` (of parameters and updates) is replaced by the pair
``SplitRealAndImaginaryArrays(real=x, imaginary=y)`` before ``inner`` sees it, and the pair of real updates
``(u_x, u_y)`` that ``inner`` returns is merged back into ``u_x + i u_y``. So an optimizer run on a complex
parameter behaves exactly as if it ran on the two real parameters ``x`` and ``y`` (e.g. Adam's second moment
is kept for ``x`` and ``y`` separately, not for ``|z|^2``). Real leaves pass through unchanged.

JAX's gradient of a real loss with respect to ``z`` is ``d/dx - i d/dy`` (the conjugate of the steepest-ascent
direction), so conjugate gradients between ``jax.grad`` and ``update`` (Optax issue #196). Names and state field
as in ``optax.contrib.split_real_and_imaginary``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx.base import GradientTransformation, OptState, Params, TransformationLike, Updates
from gradtx.fields import option, pytree_class
from gradtx.wrappers import with_extra_args_support

__all__ = ["SplitRealAndImaginaryArrays", "SplitRealAndImaginaryState", "split_real_and_imaginary"]


class SplitRealAndImaginaryArrays(NamedTuple):
    """The real and imaginary parts of a complex array, as two real arrays of its real dtype.

    The inner transformation of :class:`split_real_and_imaginary` sees each complex leaf as this pair (a pytree
    node with two real leaves), and its state holds such pairs.

    Attributes:
      real: the real part ``x`` of ``z = x + i y``.
      imaginary: the imaginary part ``y``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> pair = gradtx.contrib.SplitRealAndImaginaryArrays(jnp.array([1.0]), jnp.array([-2.0]))
      >>> print(pair.real, pair.imaginary)
      [1.] [-2.]
    """

    real: jax.Array
    imaginary: jax.Array


class SplitRealAndImaginaryState(NamedTuple):
    """The state of :class:`split_real_and_imaginary`.

    Attributes:
      inner_state: the state of the inner transformation (which sees the split parameters).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.split_real_and_imaginary(gradtx.scale_by_adam())
      >>> state = tx.init(jnp.zeros(1, jnp.complex64))
      >>> print(type(state.inner_state.mu).__name__)
      SplitRealAndImaginaryArrays
    """

    inner_state: OptState


def _split(x: Any) -> Any:
    if x is not None and jnp.iscomplexobj(x):
        x = jnp.asarray(x)
        return SplitRealAndImaginaryArrays(jnp.real(x), jnp.imag(x))
    return x


def _merge(x: Any) -> Any:
    if isinstance(x, SplitRealAndImaginaryArrays):
        re, im = jnp.asarray(x.real), jnp.asarray(x.imaginary)
        dt = jnp.promote_types(re.dtype, im.dtype)
        return jax.lax.complex(re.astype(dt), im.astype(dt))
    return x


def _split_tree(t: Any) -> Any:
    return jax.tree.map(_split, t)


@pytree_class
class split_real_and_imaginary(GradientTransformation):
    """Run ``inner`` on the real and imaginary parts of complex leaves as separate real leaves.

    Each complex leaf ``z = x + i y`` of the parameters and updates becomes the pair
    ``SplitRealAndImaginaryArrays(real=x, imaginary=y)`` before ``inner`` sees it, and the pair of real updates
    ``(u_x, u_y)`` that ``inner`` returns is merged back into ``u_x + i u_y`` (see the module docstring). Real
    leaves pass through unchanged. JAX's gradient of a real loss with respect to ``z`` is ``d/dx - i d/dy``, so
    conjugate gradients between ``jax.grad`` and ``update`` (Optax issue #196). Name and state field of
    ``optax.contrib.split_real_and_imaginary``. State: :class:`SplitRealAndImaginaryState`.

    Args:
      inner: the transformation to run on the real parts (a gradtx or Optax transformation).

    Raises:
      TypeError: ``inner`` is not a transformation (``with_extra_args_support: expected a transformation with
        init and update, got 3``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.split_real_and_imaginary(gradtx.scale_by_adam())
      >>> state = tx.init(jnp.zeros(1, jnp.complex64))
      >>> updates, state = tx.update(jnp.array([1.0 - 2.0j]), state)
      >>> print(updates.real, updates.imag)  # Adam's sign(g) on x and on y separately
      [1.] [-1.]
    """

    inner: TransformationLike = option(accepts="a transformation")

    def __check_init__(self) -> None:
        object.__setattr__(self, "inner", with_extra_args_support(self.inner))

    def init(self, params: Params) -> SplitRealAndImaginaryState:
        return SplitRealAndImaginaryState(inner_state=self.inner.init(_split_tree(params)))

    def update(
        self, updates: Updates, state: SplitRealAndImaginaryState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, SplitRealAndImaginaryState]:
        split_params = None if params is None else _split_tree(params)
        out, inner_state = self.inner.update(_split_tree(updates), state.inner_state, split_params, **extra)
        out = jax.tree.map(_merge, out, is_leaf=lambda x: isinstance(x, SplitRealAndImaginaryArrays))
        return out, SplitRealAndImaginaryState(inner_state=inner_state)
