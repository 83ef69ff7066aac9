"""Extra keyword arguments: every gradtx transformation's ``update`` accepts ``**extra`` (``value=...``,
``value_fn=...``) and passes them on; these two names make anything else do the same.

    with_extra_args_support(tx)               ``tx`` as a gradtx transformation that accepts ``**extra``
    GradientTransformationExtraArgs(i, u)     Optax's name for such a transformation; ``isinstance`` asks
                                              whether ``update`` takes extra arguments

Differences from Optax (deliberate, tested in tests/test_wrappers.py): ``GradientTransformationExtraArgs``
builds a ``gradtx.base.GradientTransformation``: every gradtx transformation accepts ``**extra``.
``with_extra_args_support`` returns gradtx transformations unchanged and wraps the rest (Optax
transformations, a ``GradientTransformation(init, update)`` whose ``update`` takes no ``**kwargs``) so that
extra arguments are dropped for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradtx.base import (
    FunctionTransformation,
    GradientTransformation,
    TransformationLike,
    accepts_extra_args,
    as_transformation,
    foreign,
)

__all__ = ["GradientTransformationExtraArgs", "with_extra_args_support"]


def with_extra_args_support(tx: TransformationLike) -> GradientTransformation:
    """``tx`` as a gradtx transformation whose ``update`` accepts extra keyword arguments.

    gradtx transformations already accept ``**extra`` and are returned unchanged. An Optax transformation is
    held as a static ``foreign`` block that passes extra arguments only if its ``update`` takes ``**kwargs``
    (and drops them otherwise); so is a ``GradientTransformation(init, update)`` built from an ``update``
    without ``**kwargs``. Optax's ``optax.with_extra_args_support``; every wrapper applies it to its inner
    transformation, so extra arguments (``value=...``) can be passed through any chain.

    Args:
      tx: a transformation: anything with ``init`` and ``update`` (a gradtx block, an Optax transformation,
        a ``GradientTransformation(init, update)``).

    Returns:
      A :class:`gradtx.base.GradientTransformation` whose ``update(updates, state, params=None, **extra)``
      accepts extra keyword arguments; ``tx`` itself when it already does.

    Raises:
      TypeError: when ``tx`` has no ``init`` and ``update`` (``with_extra_args_support: expected a
        transformation with init and update, got 3``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> plain = gradtx.GradientTransformation(lambda p: gradtx.EmptyState(), lambda u, s, p=None: (-u, s))
      >>> tx = gradtx.with_extra_args_support(plain)
      >>> updates, state = tx.update(jnp.ones(2), tx.init(jnp.ones(2)), value=1.0)  # value is dropped
      >>> print(updates)
      [-1. -1.]
      >>> adam = gradtx.adam(0.1)
      >>> gradtx.with_extra_args_support(adam) is adam
      True
    """
    if isinstance(tx, FunctionTransformation) and not accepts_extra_args(tx.update):
        return foreign(tx)
    return as_transformation(tx, "with_extra_args_support")


def _takes_extra_args(obj: Any) -> bool:
    """Whether ``obj`` is a transformation whose ``update`` takes extra keyword arguments: every gradtx block,
    but not a ``GradientTransformation(init, update)`` built from an ``update`` without ``**kwargs``."""
    if isinstance(obj, FunctionTransformation):
        return accepts_extra_args(obj.update)
    return isinstance(obj, GradientTransformation)


class _ExtraArgsType(type):
    """``isinstance(tx, GradientTransformationExtraArgs)`` asks whether ``tx.update`` takes extra arguments;
    calling the class builds such a transformation from two functions."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return _takes_extra_args(obj)

    def __call__(cls, init: Callable[..., Any], update: Callable[..., Any]) -> Any:
        return with_extra_args_support(GradientTransformation(init, update))


class GradientTransformationExtraArgs(metaclass=_ExtraArgsType):
    """Optax's name for a transformation whose ``update`` takes ``**extra_args``.

    Every gradtx block is one; ``GradientTransformationExtraArgs(init, update)`` builds one from two functions
    (extra arguments are dropped if ``update`` takes no ``**kwargs``), and ``isinstance(tx,
    GradientTransformationExtraArgs)`` is false only for a ``GradientTransformation(init, update)`` whose
    ``update`` takes no ``**kwargs`` (until :func:`with_extra_args_support` wraps it), as in Optax.

    Args:
      init: ``init(params) -> state``.
      update: ``update(updates, state, params=None, **extra_args) -> (updates, state)``.

    Returns:
      A :class:`gradtx.base.GradientTransformation`.

    Example:
      >>> import gradtx
      >>> from gradtx import GradientTransformationExtraArgs as GTEA
      >>> tx = GTEA(lambda p: gradtx.EmptyState(), lambda u, s, p=None, **kw: (u, s))
      >>> isinstance(tx, GTEA), isinstance(gradtx.adam(1e-3), GTEA)
      (True, True)
    """
