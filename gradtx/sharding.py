"""Sharded optimizer state: layouts that follow the parameters, ZeRO-1, and per-device memory.

Three facts make sharding work without special code in the blocks:

1. Every parameter-shaped state leaf is built *from* its parameter (``tree.zeros_like`` and friends call
   ``jnp.zeros_like(p)``), so it has the parameter's sharding: eagerly (``opt.init(sharded_params)``), and
   under ``jax.jit(opt.init)`` on a mesh with explicit axes (``jax.make_mesh``'s default in JAX 0.10; call
   the jitted init inside ``with jax.set_mesh(mesh):``). Counters and other scalars are replicated.
2. ``jax.eval_shape(opt.init, params)`` works for every optimizer, so a layout can be computed before any
   state is allocated. :func:`state_shardings` does it for meshes of either axis type: with ``Auto`` axes
   (``jax.sharding.Mesh(devices, names)``) ``jit`` cannot see a parameter's sharding inside ``init``, so pass
   ``out_shardings=state_shardings(opt, params)``.
3. :func:`zero1_shardings` gives the ZeRO stage-1 layout (Rajbhandari et al. 2020, "ZeRO: Memory
   Optimizations Toward Training Trillion Parameter Models", arXiv:1910.02054): the optimizer state is
   partitioned across the data-parallel devices while the parameters (and gradients) stay replicated.

ZeRO-1 memory. With ``N`` devices on the data axis, ``P`` parameters and ``K`` state floats per parameter
(Adam: ``K = 2``), plain data parallelism keeps ``K P`` state floats on *every* device; ZeRO-1 keeps
``K P / N`` (each state leaf is split along one dimension divisible by ``N``; leaves without such a dimension
and scalars stay replicated, which is why :func:`device_bytes` reports the exact figure). The update is
unchanged: each device updates its slice of the state from the (replicated) gradient and the new parameters
are all-gathered, which XLA inserts because the parameters' output sharding is replicated::

    mesh = jax.make_mesh((8,), ("data",))
    replicated = NamedSharding(mesh, P())
    opt = gradtx.adam(1e-3)
    params = jax.device_put(params, replicated)
    state_sh = gradtx.sharding.zero1_shardings(jax.eval_shape(opt.init, params), mesh, "data")
    state = jax.jit(opt.init, out_shardings=state_sh)(params)      # each device holds 1/8 of mu and nu

    @functools.partial(jax.jit, out_shardings=(replicated, state_sh), donate_argnums=(0, 1))
    def train_step(params, state, batch):                           # batch sharded on "data"
        grads = jax.grad(loss)(params, batch)                       # all-reduced: replicated
        updates, state = opt.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    gradtx.sharding.device_bytes(state)                             # {device: bytes it holds}

Inside a larger step, ``jax.lax.with_sharding_constraint(state, state_sh)`` pins the layout the same way.
The layout composes with model parallelism: a leaf already split on ``"model"`` keeps that and is also split
on the data axis along another dimension.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from gradtx.base import Params, PyTree, TransformationLike

__all__ = ["device_bytes", "state_shardings", "zero1_shardings"]


def _axes(axis: str | Sequence[str]) -> tuple[str, ...]:
    return (axis,) if isinstance(axis, str) else tuple(axis)


def _uses(entry: Any, names: tuple[str, ...]) -> bool:
    if entry is None:
        return False
    used = (entry,) if isinstance(entry, str) else tuple(entry)
    return any(n in used for n in names)


def zero1_shardings(
    state: PyTree, mesh: jax.sharding.Mesh | jax.sharding.AbstractMesh, axis: str | Sequence[str] = "data"
) -> PyTree:
    """The ZeRO-1 layout of an optimizer state: a ``NamedSharding`` per leaf (see the module docstring).

    ``state`` is the state or its abstract twin ``jax.eval_shape(opt.init, params)``. Each leaf of rank >= 1
    is split along ``axis`` (a mesh axis name or a tuple of them) on its largest dimension that is divisible
    by the axis size and not yet partitioned (the first such dimension on ties); a leaf that already has a
    ``NamedSharding`` on a mesh with the same axes keeps its partitioning on the other axes. Scalars and
    leaves without a divisible dimension keep their partitioning (replicated if they had none). Use the
    result as ``out_shardings`` of the jitted ``init`` and ``update`` while the parameters stay replicated.

    ZeRO stage 1: Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter
    Models" (SC20, arXiv:1910.02054). With ``N`` devices on the axis, each device holds about ``1/N`` of the
    state.

    Args:
      state: an optimizer state, or its abstract twin ``jax.eval_shape(opt.init, params)``.
      mesh: the device mesh (a ``jax.sharding.Mesh``, or an ``AbstractMesh`` to plan without devices).
      axis: the data-parallel mesh axis name, or a tuple of names. Default ``"data"``.

    Returns:
      A tree with the structure of ``state`` holding a ``NamedSharding`` on ``mesh`` per leaf.

    Raises:
      ValueError: ``axis`` names an axis the mesh lacks: ``zero1_shardings(axis='model'): axis must name
        axes of the mesh ('data',)``.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> mesh = jax.sharding.AbstractMesh((4,), ("data",))  # 4 devices, planned without them
      >>> opt = gradtx.adam(0.1)
      >>> abstract = jax.eval_shape(opt.init, {"w": jnp.zeros((3, 8)), "b": jnp.zeros(3)})
      >>> sh = gradtx.sharding.zero1_shardings(abstract, mesh, "data")
      >>> tuple(sh[0].mu["w"].spec), tuple(sh[0].mu["b"].spec), tuple(sh[0].count.spec)  # 8 splits over 4
      ((None, 'data'), (None,), ())
    """
    names = _axes(axis)
    missing = [n for n in names if n not in mesh.shape]
    if missing:
        raise ValueError(f"zero1_shardings(axis={axis!r}): axis must name axes of the mesh {tuple(mesh.axis_names)}")
    n = math.prod(mesh.shape[a] for a in names)
    entry = names[0] if len(names) == 1 else names

    def one(leaf: Any) -> NamedSharding:
        shape = tuple(np.shape(leaf)) if not hasattr(leaf, "shape") else tuple(leaf.shape)
        spec: list[Any] = [None] * len(shape)
        old = getattr(leaf, "sharding", None)
        if isinstance(old, NamedSharding) and tuple(old.mesh.axis_names) == tuple(mesh.axis_names):
            spec = (list(old.spec) + [None] * len(shape))[: len(shape)]
        if not any(_uses(e, names) for e in spec):
            free = [d for d in range(len(shape)) if spec[d] is None and shape[d] >= n and shape[d] % n == 0]
            if free:
                spec[max(free, key=lambda d: (shape[d], -d))] = entry
        return NamedSharding(mesh, PartitionSpec(*spec))  # type: ignore[no-untyped-call]  # unannotated in JAX

    return jax.tree.map(one, state)


def _named(leaf: Any) -> NamedSharding | None:
    s = getattr(leaf, "sharding", None)
    return s if isinstance(s, NamedSharding) else None


def state_shardings(opt: TransformationLike, params: Params) -> PyTree:
    """The sharding of every leaf of ``opt.init(params)`` when the state follows the parameters' shardings.

    ``params`` are arrays or ``jax.ShapeDtypeStruct`` leaves carrying ``NamedSharding`` on one mesh (of
    ``Auto`` or ``Explicit`` axes). The layout is computed abstractly (``jax.eval_shape`` under the explicit
    twin of the mesh, so JAX's own sharding rules decide each leaf): parameter-shaped leaves get their
    parameter's sharding, factored statistics and scalars whatever the rules give (replicated for scalars).
    Nothing is allocated. Typical use on an ``Auto`` mesh::

        state = jax.jit(opt.init, out_shardings=gradtx.sharding.state_shardings(opt, params))(params)

    Args:
      opt: the optimizer (anything with ``init``; ``jax.eval_shape`` must be able to trace it).
      params: the parameters: arrays or ``jax.ShapeDtypeStruct`` leaves carrying ``NamedSharding`` on one
        mesh.

    Returns:
      A tree with the structure of ``opt.init(params)`` holding a ``NamedSharding`` on the parameters' mesh
      per leaf.

    Raises:
      ValueError: no parameter carries a ``NamedSharding`` (``state_shardings(params=...): params must carry
        NamedSharding (device_put them on a mesh)``), or the parameters lie on several meshes.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from jax.sharding import NamedSharding, PartitionSpec
      >>> import gradtx
      >>> mesh = jax.make_mesh((1,), ("data",))
      >>> params = jax.device_put({"w": jnp.zeros((3, 8))}, NamedSharding(mesh, PartitionSpec("data")))
      >>> sh = gradtx.sharding.state_shardings(gradtx.adam(0.1), params)
      >>> tuple(sh[0].mu["w"].spec), tuple(sh[0].count.spec)  # mu follows w; the counter is replicated
      (('data', None), ())
    """
    shardings = [s for s in (_named(x) for x in jax.tree.leaves(params)) if s is not None]
    if not shardings:
        raise ValueError("state_shardings(params=...): params must carry NamedSharding (device_put them on a mesh)")
    mesh = shardings[0].mesh
    if any(s.mesh != mesh for s in shardings[1:]):
        raise ValueError("state_shardings(params=...): all parameters must be sharded on one mesh")
    explicit = mesh.abstract_mesh.update_axis_types({a: AxisType.Explicit for a in mesh.axis_names})

    def abstract(x: Any) -> jax.ShapeDtypeStruct:
        s = _named(x)
        spec = s.spec if s is not None else PartitionSpec()  # type: ignore[no-untyped-call]  # unannotated in JAX
        # for mypy: JAX leaves ShapeDtypeStruct.__init__ unannotated (the ignore below)
        return jax.ShapeDtypeStruct(np.shape(x) if not hasattr(x, "shape") else x.shape, x.dtype,  # type: ignore[no-untyped-call]
                                    sharding=NamedSharding(explicit, spec))

    with jax.sharding.use_abstract_mesh(explicit):
        shapes = jax.eval_shape(opt.init, jax.tree.map(abstract, params))

    def concrete(s: Any) -> NamedSharding:
        spec = getattr(getattr(s, "sharding", None), "spec", None)
        # for mypy: JAX leaves PartitionSpec.__init__ unannotated (the ignore below)
        return NamedSharding(mesh, spec if spec is not None else PartitionSpec())  # type: ignore[no-untyped-call]

    return jax.tree.map(concrete, shapes)


def device_bytes(tree: PyTree, shardings: PyTree | None = None) -> dict[Any, int]:
    """The bytes of ``tree`` that each addressable device holds: ``{device: bytes}``.

    A replicated leaf counts fully on every device, a sharded one by its shard. ``tree`` holds arrays, or
    abstract leaves (``jax.eval_shape``) with ``shardings`` (a matching tree of concrete shardings, e.g. from
    :func:`zero1_shardings`) to plan memory before allocating anything. ``None`` leaves are skipped.

    Args:
      tree: a pytree of arrays, or of abstract leaves (with ``shardings``).
      shardings: ``None`` (use each leaf's ``.sharding``) or a tree of concrete ``jax.sharding.Sharding``,
        one per leaf of ``tree``.

    Returns:
      ``{device: bytes}`` for every addressable device holding part of ``tree``.

    Raises:
      ValueError: ``shardings`` has another number of leaves than ``tree``, or a leaf has no concrete
        sharding (``device_bytes: the leaf at [0].count has no concrete sharding (None); pass shardings=``).

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.adam(0.1).init({"w": jnp.zeros((3, 8))})  # count (int32) + mu and nu (24 floats each)
      >>> sum(gradtx.sharding.device_bytes(state).values())
      196
    """
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    if shardings is None:
        given = [getattr(x, "sharding", None) for _, x in leaves]
    else:
        given = jax.tree.leaves(shardings, is_leaf=lambda s: isinstance(s, jax.sharding.Sharding))
        if len(given) != len(leaves):
            raise ValueError(f"device_bytes(shardings=...): {len(given)} shardings for {len(leaves)} leaves")
    out: dict[Any, int] = {}
    for (path, x), s in zip(leaves, given):
        if not isinstance(s, jax.sharding.Sharding) or isinstance(getattr(s, "mesh", None), jax.sharding.AbstractMesh):
            raise ValueError(f"device_bytes: the leaf at {jax.tree_util.keystr(path)} has no concrete sharding "
                             f"({s!r}); pass shardings=")
        shape = tuple(np.shape(x)) if not hasattr(x, "shape") else tuple(x.shape)
        nbytes = math.prod(s.shard_shape(shape)) * np.dtype(x.dtype).itemsize
        for d in s.addressable_devices:
            out[d] = out.get(d, 0) + nbytes
    return out
