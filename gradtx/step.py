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
cross the ``jit`` boundary however many leaves the model has (see :mod:`gradtx.flat`). ``make_step(...,
flat=True)`` packs for you: ``params, state = step.init(tree)``.

ZeRO. ``make_step(opt, loss_fn, zero=2, mesh=mesh, flat=True)`` and ``params, state = step.init(tree)``: the
params are packed into buffers padded to a multiple of the data-parallel device count and replicated, the
optimizer state is split evenly over the devices (each holds ``1/N`` of it), and every step reduce-scatters
the gradients (each device differentiates the loss on its slice of the batch) and all-gathers the updated
params. ``zero=1`` keeps the gradients' all-reduce and splits only the state.

The loss value is passed to ``opt.update`` as ``value=loss`` (line searches and Polyak steps use it) when
``opt`` is a gradtx transformation or a foreign one whose ``update`` takes ``**kwargs``.

Donation needs distinct buffers: if the same array appears twice among params and state (an ``init`` that
stores the params themselves), the step copies the repeated arrays before the call, so that case works.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.core import Tracer

from gradtx.base import GradientTransformation, TransformationLike, accepts_extra_args, apply_updates
from gradtx.fields import Check, fail
from gradtx.flat import FlatTree, pack

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


class _Zero:
    """The layout constraints of ZeRO (Rajbhandari et al. 2020) inside the step; no-ops without ``zero``.

    Stage 1: the new state is split over the data axis (``zero1_shardings``), the new parameters replicated
    (XLA all-gathers the updated slices). Stage 2: the gradients are split too, so XLA reduce-scatters them
    instead of all-reducing, and each device updates its slice from its slice of the gradient.
    """

    def __init__(self, stage: int, mesh: Any, axis: Any):
        self.stage, self.mesh, self.axis = stage, mesh, axis

    def _constrain(self, tree: Any, layout: Any) -> Any:
        """``tree`` laid out as ``layout``: ``reshard`` on a mesh of Explicit axes, a constraint on Auto axes."""
        if any(t == jax.sharding.AxisType.Explicit for t in self.mesh.axis_types):
            return jax.sharding.reshard(tree, layout)  # type: ignore[no-untyped-call]  # untyped in JAX
        return jax.lax.with_sharding_constraint(tree, layout)  # type: ignore[no-untyped-call]  # untyped in JAX

    def _split(self, tree: Any) -> Any:
        from gradtx.sharding import zero1_shardings  # imports jax.sharding machinery only when used

        return self._constrain(tree, zero1_shardings(tree, self.mesh, self.axis))

    def grads(self, grads: Any) -> Any:
        return self._split(grads) if self.stage >= 2 else grads

    def devices(self) -> int:
        """The number of devices along the data axis (or axes)."""
        from gradtx.sharding import _axes

        return math.prod(int(self.mesh.shape[a]) for a in _axes(self.axis))

    def init(self, opt: Any, params: Any) -> tuple[Any, Any]:
        """``(params, state)``: the params replicated on the mesh and ``opt.init`` laid out by ZeRO."""
        from jax.sharding import NamedSharding, PartitionSpec

        from gradtx.sharding import zero1_shardings

        replicated = NamedSharding(self.mesh, PartitionSpec())  # type: ignore[no-untyped-call]  # unannotated in JAX
        params = jax.device_put(params, replicated)
        shardings = zero1_shardings(jax.eval_shape(opt.init, params), self.mesh, self.axis)
        return params, jax.jit(opt.init, out_shardings=shardings)(params)

    def scattered(self, value_and_grad: Callable[..., Any]) -> Callable[..., Any]:
        """``value_and_grad`` per device on its part of the batch, the gradients reduce-scattered.

        Under ``shard_map``: every device differentiates the loss on its slice of each batch argument (split on
        the first axis), and ``psum_scatter`` sums the gradients and leaves each device the slice of the sum
        that ``zero1_shardings`` gives it (a buffer whose length divides by the device count splits on its
        only axis; others stay whole, all-reduced). The loss is a mean over the batch, so the sums are divided
        by the device count (the loss is averaged too).
        """
        from jax.sharding import NamedSharding, PartitionSpec

        from gradtx.sharding import _axes, zero1_shardings

        names = _axes(self.axis)
        n = self.devices()
        entry = names[0] if len(names) == 1 else names

        def run(params: Any, *args: Any, **kwargs: Any) -> Any:
            specs = jax.tree.map(lambda s: s.spec, zero1_shardings(params, self.mesh, self.axis))

            def local(params: Any, args: Any, kwargs: Any) -> Any:
                # varying over the axis: each device's own gradient, not one JAX would all-reduce for us
                params = jax.tree.map(lambda p: jax.lax.pcast(p, entry, to="varying"), params)
                out, grads = value_and_grad(params, *args, **kwargs)

                def reduce(g: Any, spec: Any) -> Any:
                    dims = [d for d, e in enumerate(spec) if e is not None]
                    if not dims:
                        return jax.lax.psum(g, entry) / n  # type: ignore[no-untyped-call]
                    summed = jax.lax.psum_scatter(  # type: ignore[no-untyped-call]
                        g, entry, scatter_dimension=dims[0], tiled=True)
                    return summed / n

                loss = jax.lax.pmean(out, entry)  # type: ignore[no-untyped-call]
                return loss, jax.tree.map(reduce, grads, specs)

            batch = PartitionSpec(entry)  # type: ignore[no-untyped-call]  # unannotated in JAX
            whole = PartitionSpec()  # type: ignore[no-untyped-call]
            if any(t == jax.sharding.AxisType.Explicit for t in self.mesh.axis_types):  # inputs must match the specs
                params = self._constrain(params, jax.tree.map(lambda _: NamedSharding(self.mesh, whole), params))
                args, kwargs = self._constrain((args, kwargs), jax.tree.map(lambda _: NamedSharding(self.mesh, batch),
                                                                            (args, kwargs)))
            return jax.shard_map(local, mesh=self.mesh, in_specs=(whole, batch, batch),
                                 out_specs=(whole, specs))(params, args, kwargs)

        return run

    def out(self, params: Any, state: Any) -> tuple[Any, Any]:
        if not self.stage:
            return params, state
        from jax.sharding import NamedSharding, PartitionSpec

        replicated = NamedSharding(self.mesh, PartitionSpec())  # type: ignore[no-untyped-call]  # unannotated in JAX
        return self._constrain(params, jax.tree.map(lambda _: replicated, params)), self._split(state)


def _update_and_apply(opt: Any, fused: Callable[..., Any] | None) -> Callable[..., tuple[Any, Any]]:
    """``(grads, state, params, **extra) -> (params, state)``: ``opt.update`` and ``apply_updates``, or the
    fused kernel's step (:func:`gradtx.kernels.fused_step`) when there is one."""
    if fused is not None:
        return lambda grads, state, params, **extra: fused(grads, state, params)

    def run(grads: Any, state: Any, params: Any, **extra: Any) -> tuple[Any, Any]:
        updates, state = opt.update(grads, state, params, **extra)
        return apply_updates(params, updates), state

    return run


def _grads_step(opt: Any, zero: _Zero, fused: Callable[..., Any] | None) -> Callable[..., Any]:
    update = _update_and_apply(opt, fused)

    def step(params: Any, state: Any, grads: Any, **extra: Any) -> tuple[Any, Any]:
        return zero.out(*update(zero.grads(grads), state, params, **extra))

    return step


def _loss_step(opt: Any, loss_fn: Callable[..., Any], has_aux: bool, zero: _Zero,
               fused: Callable[..., Any] | None) -> Callable[..., Any]:
    pass_value = _passes_value(opt)
    update = _update_and_apply(opt, fused)

    def loss_of(params: Any, *args: Any, **kwargs: Any) -> Any:
        tree = params.unpack() if isinstance(params, FlatTree) else params
        return loss_fn(tree, *args, **kwargs)

    value_and_grad = jax.value_and_grad(loss_of, has_aux=has_aux)
    if zero.stage >= 2:
        value_and_grad = zero.scattered(value_and_grad)

    def step(params: Any, state: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        out, grads = value_and_grad(params, *args, **kwargs)
        loss = out[0] if has_aux else out
        extra = {"value": loss} if pass_value else {}
        params, state = zero.out(*update(grads, state, params, **extra))
        return (params, state, loss, out[1]) if has_aux else (params, state, loss)

    return step


def _fused(call: str, opt: Any, kernel: Any, zero: int) -> Callable[..., Any] | None:
    """The fused kernel's step for ``make_step(kernel=...)``, or ``None`` for the blocks' step."""
    from gradtx import kernels  # Pallas itself is imported only when a kernel is built

    choices = ("off", *kernels.IMPLEMENTATIONS)
    if not isinstance(kernel, str) or kernel not in choices:
        fail(call, "kernel", kernel, "must be one of " + ", ".join(map(repr, choices)))
    if kernel == "off":
        return None
    why = kernels.why_not_fused(opt)
    if why is not None:
        fail(call, "kernel", kernel, f"needs an optimizer the fused kernel computes: {why}")
    if zero:
        fail(call, "kernel", kernel, "must be 'off' with zero (the kernel does not partition)")
    return kernels.fused_step(opt, kernel)


def make_step(
    opt: TransformationLike,
    loss_fn: Callable[..., Any] | None = None,
    *,
    has_aux: bool = False,
    donate: bool = True,
    jit: bool = True,
    zero: int = 0,
    mesh: jax.sharding.Mesh | None = None,
    axis: str | tuple[str, ...] = "data",
    flat: bool = False,
    kernel: str = "off",
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
      zero: the ZeRO stage (Rajbhandari et al. 2020, arXiv:1910.02054), keyword-only: 0 (default: no
        constraint, the state follows the parameters), 1 (the new state is split over ``axis`` of ``mesh`` by
        :func:`gradtx.sharding.zero1_shardings`, the new parameters replicated) or 2 (the gradients are
        split too: each device differentiates the loss, a mean over the batch, on its slice of every batch
        argument, split on the first axis, and keeps its slice of the summed gradient). With FlatTree params
        padded to a multiple of the ``N`` devices on ``axis`` (``flat=True``, or ``gradtx.flat.pack(tree,
        multiple_of=N)``) every state buffer splits exactly: each device holds ``1/N`` of the state. With
        ``has_aux`` under stage 2 the aux is averaged over the devices (``pmean``: floating aux only).
        ``step.init(params)`` lays the state out (or ``jax.jit(opt.init, out_shardings=zero1_shardings(
        jax.eval_shape(opt.init, params), mesh, axis))``).
      mesh: the device mesh of ``zero`` (keyword-only; required with ``zero``). Default None.
      axis: the data-parallel mesh axis (or tuple of axes) of ``zero`` (keyword-only). Default ``"data"``.
      flat: run on :class:`gradtx.flat.FlatTree` params (keyword-only): ``step.init`` packs the parameter tree
        (padded to a multiple of the device count of ``axis`` with ``zero``; without ``zero``, grouped by
        sharding too, ``pack(by_sharding=True)``, so model-parallel leaves share buffers split where they are)
        and the step packs any tree it is given; the step returns FlatTree params (``gradtx.flat.unpack``
        gives the tree). Blocks with per-leaf statistics refuse a FlatTree in ``init`` (``leaf_structured``).
        Default False.
      kernel: the fused Adam kernel (:mod:`gradtx.kernels`) for ``gradtx.adam`` and ``gradtx.adamw``
        (keyword-only): ``"off"`` (the default) runs the blocks; ``"pallas"`` (compiled, for a GPU),
        ``"interpret"`` (Pallas's interpreter, any backend), ``"auto"`` (``"pallas"`` on a GPU, ``"xla"``
        elsewhere) and ``"xla"`` (the kernel's arithmetic as XLA array operations) run the kernel and need an
        optimizer it computes (:func:`gradtx.kernels.why_not_fused`) and ``zero=0``. The state is the blocks'
        either way; the results agree to float32 rounding. Off by default until the kernel is measured on a
        GPU (it is checked in the interpreter only).

    Returns:
      The step function: ``step(params, state, grads, **extra) -> (params, state)`` without ``loss_fn``;
      ``step(params, state, *args, **kwargs) -> (params, state, loss)`` (``+ (aux,)`` with ``has_aux``) with
      one. It has ``step.init(params) -> (params, state)``, which prepares both for the step: packs the
      params with ``flat``, and with ``zero`` initialises the state split over ``axis`` (the params
      replicated). A donating jitted step also has ``step.jitted``, the ``jax.jit`` function (for
      ``.lower(...)``).

    Raises:
      InvalidValue: (a ``ValueError``) ``opt`` has no callable ``init`` and ``update`` (``make_step(opt=3):
        opt must have init and update (a gradtx or Optax transformation)``), ``has_aux=True`` without a
        ``loss_fn``, ``zero`` not 0, 1 or 2, ``zero`` without a ``mesh`` or without ``jit``, an ``axis``
        the mesh lacks (``make_step(axis='batch'): axis must name axes of the mesh ('data',)``), an unknown
        ``kernel``, or a kernel asked for an optimizer it does not compute or with ``zero``
        (``make_step(kernel='pallas'): kernel needs an optimizer the fused kernel computes: ...``).
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

      The flat path in one line: the params become one buffer per dtype.

      >>> step = make_step(opt, loss_fn, flat=True)
      >>> params, state = step.init({"w": jnp.zeros(2), "b": jnp.zeros(3)})
      >>> params
      FlatTree(2 leaves in (float32[5]))
    """
    call = "make_step"
    if not (hasattr(opt, "init") and hasattr(opt, "update") and callable(opt.init) and callable(opt.update)):
        fail(call, "opt", opt, "must have init and update (a gradtx or Optax transformation)")
    loss_fn = _LOSS_FN(call, "loss_fn", loss_fn)
    has_aux, donate, jit, flat = (_FLAG(call, n, v) for n, v in (("has_aux", has_aux), ("donate", donate),
                                                                ("jit", jit), ("flat", flat)))
    if has_aux and loss_fn is None:
        fail(call, "has_aux", has_aux, "needs a loss_fn (without one the step takes gradients, not a loss)")
    if isinstance(zero, bool) or zero not in (0, 1, 2):
        fail(call, "zero", zero, "must be 0 (off), 1 or 2 (the ZeRO stage)")
    if zero and not isinstance(mesh, jax.sharding.Mesh):
        fail(call, "mesh", mesh, "must be a jax.sharding.Mesh when zero is 1 or 2")
    if zero and not jit:
        fail(call, "jit", jit, "must be True with zero (the layout constraints act inside a compiled step)")
    if zero:
        from gradtx.sharding import _axes

        names = _axes(axis)
        if not names or any(n not in mesh.shape for n in names):  # type: ignore[union-attr]  # checked above
            fail(call, "axis", axis, f"must name axes of the mesh {tuple(mesh.axis_names)}")  # type: ignore[union-attr]

    fused = _fused(call, opt, kernel, zero)
    layout = _Zero(zero, mesh, axis)
    raw = _grads_step(opt, layout, fused) if loss_fn is None else _loss_step(opt, loss_fn, has_aux, layout, fused)
    multiple = layout.devices() if zero else 1

    def prepare(params: Any) -> Any:
        if not flat or isinstance(params, FlatTree):
            return params
        # model-parallel leaves (split over mesh axes) get buffers of their own, laid out where they are; under
        # zero the params are replicated, and traced leaves (a step called inside the user's jit) carry no layout
        by_sharding = not zero and not any(isinstance(x, Tracer) for x in jax.tree.leaves(params))
        return pack(params, multiple_of=multiple, by_sharding=by_sharding)

    def init(params: Any) -> tuple[Any, Any]:
        params = prepare(params)
        if not zero:
            return params, opt.init(params)
        return layout.init(opt, params)

    if not jit:
        run: Callable[..., Any] = raw
    else:
        run = jitted = jax.jit(raw, donate_argnums=(0, 1) if donate else ())

    def step(params: Any, state: Any, *args: Any, **kwargs: Any) -> Any:
        params = prepare(params)
        if jit and donate:
            # XLA refuses to donate one buffer twice: copy any array that appears again (checked before the
            # call, a Python pass over the leaves; after the first step params and state are distinct buffers).
            params, state = _distinct_buffers(params, state)
        return run(params, state, *args, **kwargs)

    step.init = init  # type: ignore[attr-defined]
    if jit:
        step.jitted = jitted  # type: ignore[attr-defined]  # for .lower(...) and inspection
    return step
