"""A jitted train step that donates params and state, so the update happens in place.

:func:`make_step` wraps the three lines every training loop repeats::

    updates, state = opt.update(grads, state, params, **extra)
    params = apply_updates(params, updates)

in one ``jax.jit`` with ``donate_argnums=(0, 1)``: XLA writes the new params and state into the buffers of
the old ones (which are deleted: do not use them after the call) instead of allocating new ones, and, given
a loss, computes ``jax.value_and_grad`` inside the same program so the gradient never leaves it.

Plain pytrees::

    step = make_step(opt, loss_fn)                    # loss_fn(params, x, y) -> loss
    state = opt.init(params)
    params, state, loss = step(params, state, x, y)

Flax NNX: split the model, step the ``nnx.Param`` state, merge inside the loss::

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    def loss_fn(params, rest, x, y):
        model = nnx.merge(graphdef, params, rest)
        return jnp.mean((model(x) - y) ** 2)
    step = make_step(opt, loss_fn)
    state = opt.init(params)
    params, state, loss = step(params, state, rest, x, y)
    nnx.update(model, params)                          # when the model object is needed again

Equinox: partition the arrays from the static parts, combine inside the loss::

    params, static = eqx.partition(model, eqx.is_array)
    def loss_fn(params, x, y):
        model = eqx.combine(params, static)
        return jnp.mean((jax.vmap(model)(x) - y) ** 2)
    step = make_step(opt, loss_fn)
    params, state, loss = step(params, opt.init(params), x, y)

Flat params. With ``params = gradtx.flat.pack(tree)`` (a :class:`~gradtx.flat.FlatTree`), the loss is called
on ``unpack(params)`` automatically and the gradient comes back as a FlatTree, so only a few buffers per dtype
cross the ``jit`` boundary however many leaves the model has (see :mod:`gradtx.flat`).

The loss value is passed to ``opt.update`` as ``value=loss`` (line searches and Polyak steps use it) when
``opt`` is a gradtx transformation or a foreign one whose ``update`` takes ``**kwargs``.

Donation needs distinct buffers: if the same array appears twice among params and state (an ``init`` that
stores the params themselves), the step copies the repeated arrays before the call, so that case works.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradtx.base import GradientTransformation, TransformationLike, accepts_extra_args, apply_updates
from gradtx.fields import Check, fail
from gradtx.flat import FlatTree

__all__ = ["make_step"]

_FLAG, _LOSS_FN = Check("flag"), Check("function", optional=True)


def _passes_value(opt: Any) -> bool:
    """Whether ``opt.update`` accepts ``value=...``: every gradtx transformation, foreign ones with ``**kw``."""
    if isinstance(opt, GradientTransformation):
        return True
    return accepts_extra_args(opt.update)


def _distinct_buffers(params: Any, state: Any) -> tuple[Any, Any]:
    """``(params, state)`` with every array that appears a second time replaced by a copy."""
    leaves, treedef = jax.tree.flatten((params, state))
    seen: set[int] = set()
    out, copied = [], False
    for x in leaves:
        if isinstance(x, jax.Array) and id(x) in seen:
            x, copied = jnp.array(x, copy=True), True
        seen.add(id(x))
        out.append(x)
    return jax.tree.unflatten(treedef, out) if copied else (params, state)


def _grads_step(opt: Any) -> Callable[..., Any]:
    def step(params: Any, state: Any, grads: Any, **extra: Any) -> tuple[Any, Any]:
        updates, state = opt.update(grads, state, params, **extra)
        return apply_updates(params, updates), state

    return step


def _loss_step(opt: Any, loss_fn: Callable[..., Any], has_aux: bool) -> Callable[..., Any]:
    pass_value = _passes_value(opt)

    def loss_of(params: Any, *args: Any, **kwargs: Any) -> Any:
        tree = params.unpack() if isinstance(params, FlatTree) else params
        return loss_fn(tree, *args, **kwargs)

    value_and_grad = jax.value_and_grad(loss_of, has_aux=has_aux)

    def step(params: Any, state: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        out, grads = value_and_grad(params, *args, **kwargs)
        loss = out[0] if has_aux else out
        extra = {"value": loss} if pass_value else {}
        updates, state = opt.update(grads, state, params, **extra)
        params = apply_updates(params, updates)
        return (params, state, loss, out[1]) if has_aux else (params, state, loss)

    return step


def make_step(
    opt: TransformationLike,
    loss_fn: Callable[..., Any] | None = None,
    *,
    has_aux: bool = False,
    donate: bool = True,
    jit: bool = True,
) -> Callable[..., Any]:
    """A train step for ``opt`` (anything with ``init`` and ``update``, Optax's transformations included).

    Without ``loss_fn``: ``step(params, state, grads, **extra) -> (params, state)`` computes
    ``updates, state = opt.update(grads, state, params, **extra)`` and ``params + updates``.

    With ``loss_fn(params, *args, **kwargs) -> loss`` (``(loss, aux)`` with ``has_aux=True``):
    ``step(params, state, *args, **kwargs) -> (params, state, loss)`` (``(params, state, loss, aux)``),
    taking ``jax.value_and_grad(loss_fn)`` inside the same program and passing ``value=loss`` to the
    optimizer when it accepts extra arguments. FlatTree params: the loss sees ``unpack(params)``.

    ``jit=True`` compiles the step (``opt`` and ``loss_fn`` are closed over: their hyperparameters are
    constants of the program); ``donate=True`` (with ``jit``) donates ``params`` and ``state``: their buffers
    are reused for the results and the arrays passed in are deleted. Gradients and data are not donated.

    Args:
      opt: the optimizer (anything with ``init`` and ``update``, Optax's transformations included).
      loss_fn: ``loss_fn(params, *args, **kwargs) -> loss`` (a scalar), or ``(loss, aux)`` with
        ``has_aux``; ``None`` (the default) for a step that takes gradients.
      has_aux: ``loss_fn`` returns ``(loss, aux)`` and the step returns ``aux`` too (keyword-only; needs a
        ``loss_fn``). Default False.
      donate: donate ``params`` and ``state`` to the jitted step (keyword-only; only with ``jit``). Default
        True: do not use the arrays passed in after the call.
      jit: compile the step with ``jax.jit`` (keyword-only). Default True.

    Returns:
      The step function: ``step(params, state, grads, **extra) -> (params, state)`` without ``loss_fn``;
      ``step(params, state, *args, **kwargs) -> (params, state, loss)`` (``+ (aux,)`` with ``has_aux``) with
      one. A donating jitted step also has ``step.jitted``, the ``jax.jit`` function (for ``.lower(...)``).

    Raises:
      InvalidValue: (a ``ValueError``) ``opt`` has no callable ``init`` and ``update`` (``make_step(opt=3):
        opt must have init and update (a gradtx or Optax transformation)``), or ``has_aux=True`` without a
        ``loss_fn``.
      InvalidType: (a ``TypeError``) ``loss_fn`` is not callable, or a flag is not a bool
        (``make_step(jit='yes'): jit must be True or False, not str``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.step import make_step
      >>> def loss_fn(params, x, y):
      ...     return jnp.mean((x @ params["w"] - y) ** 2)
      >>> opt = gradtx.sgd(0.1)
      >>> step = make_step(opt, loss_fn)
      >>> params = {"w": jnp.zeros(2)}
      >>> state = opt.init(params)
      >>> params, state, loss = step(params, state, jnp.eye(2), jnp.array([1.0, 2.0]))
      >>> print(params["w"], loss)
      [0.1 0.2] 2.5
    """
    call = "make_step"
    if not (hasattr(opt, "init") and hasattr(opt, "update") and callable(opt.init) and callable(opt.update)):
        fail(call, "opt", opt, "must have init and update (a gradtx or Optax transformation)")
    loss_fn = _LOSS_FN(call, "loss_fn", loss_fn)
    has_aux, donate, jit = (_FLAG(call, n, v) for n, v in (("has_aux", has_aux), ("donate", donate), ("jit", jit)))
    if has_aux and loss_fn is None:
        fail(call, "has_aux", has_aux, "needs a loss_fn (without one the step takes gradients, not a loss)")

    raw = _grads_step(opt) if loss_fn is None else _loss_step(opt, loss_fn, has_aux)
    if not jit:
        return raw
    jitted = jax.jit(raw, donate_argnums=(0, 1) if donate else ())
    if not donate:
        return jitted

    def step(params: Any, state: Any, *args: Any, **kwargs: Any) -> Any:
        # XLA refuses to donate one buffer twice: copy any array that appears again (checked before the call,
        # a Python pass over the leaves; after the first step params and state are always distinct buffers).
        return jitted(*_distinct_buffers(params, state), *args, **kwargs)

    step.jitted = jitted  # type: ignore[attr-defined]  # for .lower(...) and inspection
    return step
