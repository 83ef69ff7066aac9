"""The flat (multi-tensor) path: a pytree held as a few contiguous buffers, one per dtype.

A model with hundreds of leaves pays per leaf twice: every array crossing the ``jit`` boundary costs a fixed
overhead (about 10 us on CPU), and every leaf's update is its own small kernel. :func:`pack` turns a tree into
a :class:`FlatTree`, whose pytree *leaves are the buffers*: every leaf of one dtype raveled and concatenated
(in tree order) into one 1-D array. Because a ``FlatTree`` is an ordinary pytree, every gradtx optimizer runs
on it unchanged, and everything it returns is made of the same few buffers::

    flat = pack(params)                                   # {"w": f32[3, 4], "b": f32[4], "e": bf16[8]}
    state = opt.init(flat)                                # mu, nu: FlatTrees of two buffers (f32, bf16)
    updates, state = opt.update(pack(grads), state, flat)
    flat = apply_updates(flat, updates)
    params = unpack(flat)                                 # the original tree, by slices and reshapes

Layout. A ``FlatTree`` has children ``buffers`` (a tuple of 1-D arrays, one per distinct leaf dtype in order of
first appearance) and static aux data ``(treedef, layout, padded)``, ``layout[i] = (buffer index, offset,
shape)`` for leaf ``i`` and ``padded`` the buffers' lengths when ``pack(tree, multiple_of=N)`` padded them.
Leaves of size 0 take no room; scalars take one element; ``None`` leaves are empty subtrees in JAX and stay in
the treedef (no room, and ``unpack`` gives ``None`` back). The empty tree packs to zero buffers. Two FlatTrees
combine in ``jax.tree.map`` when their layouts are equal (``pack`` of trees with the same structure, shapes and
dtypes); a buffer's dtype is not part of the layout, so a state stored in another dtype (``mu_dtype``) is a
FlatTree of the same layout whose buffers have that dtype.

Which optimizers give the per-leaf result on a FlatTree. Elementwise maths (sgd, momentum, the Adam family,
RMSProp, Adagrad, Lion, sign methods, schedules, weight decay without a mask) sees the same numbers in a
different arrangement, so the results are equal; global reductions (``clip_by_global_norm``) sum the same
squares in another order, so they agree to rounding. Transformations with per-leaf statistics do *not* give
the per-leaf result, because each buffer is one leaf to them: trust ratios (LAMB, LARS, Fromage), factored
second moments (Adafactor, SM3), per-leaf norms (NovoGrad, ``clip_by_block_rms``, adaptive gradient clipping,
centralisation), and masks or partitions written for the original tree (they do not match a FlatTree).

Gradients. :func:`unpack` slices each buffer with ``lax.split``, whose transpose is a concatenation: so
``jax.grad`` of ``loss(unpack(flat))`` with respect to ``flat`` is a FlatTree built by one concatenate per
buffer, not by a scatter per leaf. ``gradtx.step.make_step`` calls the loss on ``unpack(params)`` for you.

Model-parallel parameters. ``pack(tree, by_sharding=True)`` (what ``make_step(flat=True)`` does without ZeRO)
groups leaves by sharding as well as dtype: leaves split over the same mesh axes share a 2-D buffer
``(parts, columns)`` split by rows over those axes, each leaf's sharded dimension moved to the front, so every
device keeps exactly the elements it held and an elementwise update needs no communication.

Unlike ``gradtx.flatten`` (a wrapper that ravels inside every update, in one common dtype), the flat layout
here is kept across steps, so the buffers themselves cross the ``jit`` boundary and are donated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.core import Tracer

PyTree = Any  # a pytree of arrays (gradtx.base.PyTree; this module imports no other gradtx module)

__all__ = ["FlatTree", "pack", "unpack"]

Layout = tuple[tuple[int, int, tuple[int, ...]], ...]
Split = tuple[tuple[int, int] | None, ...]  # per leaf: (the sharded dimension, its number of shards), or None


class FlatTree:
    """A pytree stored as a few 1-D buffers, one per leaf dtype; its pytree leaves are the buffers.

    Build one with :func:`pack`; get the tree back with :meth:`unpack` (or :func:`unpack`). Every gradtx
    optimizer runs on it unchanged (see the module docstring for which ones give the per-leaf result). Two
    FlatTrees combine in ``jax.tree.map`` when their treedefs and layouts are equal. JAX rebuilds FlatTrees
    with any children (tracers, ``ShapeDtypeStruct``s, ``None``), so the constructor checks nothing.

    Args:
      buffers: the 1-D arrays (the pytree children), one per distinct leaf dtype, in order of first
        appearance; stored as a tuple.
      treedef: the structure of the original tree (static aux data).
      layout: per original leaf, ``(buffer index, offset, shape)`` (static aux data).
      padded: each buffer's length when :func:`pack` padded them (``multiple_of``), else ``()`` (static aux
        data). Default ``()``.
      split: per original leaf, ``(dimension, parts)`` for a leaf :func:`pack` laid in the rows of a 2-D buffer
        (``by_sharding=True``: split over mesh axes along that dimension), ``None`` for a leaf in a 1-D
        buffer; ``()`` when every buffer is 1-D (static aux data). Default ``()``.

    Raises:
      ValueError: from :meth:`unpack`, when a buffer does not fit the layout (``FlatTree.unpack: buffers of
        shapes [...] do not fit the layout (vectors of lengths (...)); a per-buffer statistic, not a flat copy
        of the tree``).

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from gradtx.flat import pack
      >>> flat = pack({"w": jnp.ones((2, 2)), "b": jnp.zeros(3), "e": jnp.ones(2, jnp.bfloat16)})
      >>> flat, flat.num_leaves, flat.sizes()
      (FlatTree(3 leaves in (float32[7], bfloat16[2])), 3, (7, 2))
      >>> print(flat.buffers[0])  # "b" then "w": dict keys in sorted order
      [0. 0. 0. 1. 1. 1. 1.]
      >>> flat.layout
      ((0, 0, (3,)), (1, 0, (2,)), (0, 3, (2, 2)))
    """

    __slots__ = ("buffers", "layout", "padded", "split", "treedef")

    def __init__(self, buffers: Sequence[jax.Array], treedef: Any, layout: Layout, padded: tuple[int, ...] = (),
                 split: Split = ()):
        self.buffers = tuple(buffers)
        self.treedef = treedef
        self.layout = layout
        self.padded = tuple(padded)  # each buffer's length when padded beyond its leaves (pack(multiple_of=)); () not
        self.split = tuple(split)  # per leaf (dim, parts) or None when pack(by_sharding=True) made 2-D buffers; () not

    def _parts(self, i: int) -> int:
        """How many rows buffer ``i`` has (its leaves' shards: one per device of the mesh axes), 0 for 1-D."""
        if not self.split:
            return 0
        return next((sp[1] for (b, _, _), sp in zip(self.layout, self.split) if b == i and sp is not None), 0)

    def _columns(self, k: int) -> int:
        """The elements leaf ``k`` takes in each row of its buffer."""
        size = _size(self.layout[k][2])
        sp = self.split[k] if self.split else None
        return size if sp is None else size // sp[1]

    @property
    def num_leaves(self) -> int:
        """How many leaves the original tree has (``None`` excluded)."""
        return len(self.layout)

    def sizes(self) -> tuple[int, ...]:
        """The length of each buffer: its leaves' elements, plus the zero padding of ``pack(multiple_of=)``."""
        if self.padded:
            return self.padded
        return self.used()

    def used(self) -> tuple[int, ...]:
        """The elements of each buffer that hold leaves (the rest, if any, is padding), from the layout."""
        out = [0] * len(self.buffers)
        for k, (b, off, _) in enumerate(self.layout):
            out[b] = max(out[b], off + self._columns(k))
        return tuple(out)

    def fits(self) -> bool:
        """Whether every buffer is a stack of vectors of the layout's length (shape ``(..., size)``), so that
        :meth:`unpack` can cut it. Per-buffer statistics (a norm per buffer, a factored row) do not fit."""
        sizes = self.sizes()
        return all(
            hasattr(buf, "ndim") and buf.ndim >= 1 + (parts > 0) and buf.shape[-1] == n
            and (not parts or buf.shape[-2] == parts)
            for buf, n, parts in ((b, n, self._parts(i)) for i, (b, n) in enumerate(zip(self.buffers, sizes)))
        )

    def unpack(self) -> PyTree:
        """The tree this FlatTree holds: slices of the buffers reshaped to the original leaves.

        A buffer of shape ``(*batch, size)`` (a stack of flat vectors, such as an L-BFGS memory) gives leaves of
        shape ``(*batch, *leaf_shape)``. Raises ``ValueError`` when a buffer does not fit the layout.
        """
        if not self.fits():
            got = [getattr(b, "shape", b) for b in self.buffers]
            raise ValueError(
                f"FlatTree.unpack: buffers of shapes {got} do not fit the layout (vectors of lengths {self.sizes()}); "
                "a per-buffer statistic, not a flat copy of the tree"
            )
        used, sizes = self.used(), self.sizes()
        pieces = [
            _split(buf, [self._columns(k) for k, (b, _, _) in enumerate(self.layout) if b == i]
                   + [sizes[i] - used[i]] * (sizes[i] > used[i])) for i, buf in enumerate(self.buffers)
        ]
        cursor = [0] * len(self.buffers)
        leaves = []
        for k, (b, _, shape) in enumerate(self.layout):
            piece = pieces[b][cursor[b]]
            sp = self.split[k] if self.split else None
            if sp is None:
                leaves.append(jnp.reshape(piece, (*piece.shape[:-1], *shape)))
            else:  # rows are the shards of dimension d, moved to the front by pack: put it back
                d, batch = sp[0], piece.shape[:-2]
                rest = shape[:d] + shape[d + 1:]
                moved = _reshape_rows(piece, (*batch, shape[d], *rest), len(batch))
                leaves.append(jnp.moveaxis(moved, len(batch), len(batch) + d))
            cursor[b] += 1
        return jax.tree.unflatten(self.treedef, leaves)

    def __repr__(self) -> str:
        bufs = ", ".join(
            f"{np.dtype(b.dtype).name}[{', '.join(map(str, b.shape))}]" if hasattr(b, "dtype") and hasattr(b, "shape")
            else repr(b) for b in self.buffers
        )
        return f"FlatTree({self.num_leaves} leaves in ({bufs}))"


def _reshape_rows(x: Any, shape: tuple[int, ...], axis: int) -> Any:
    """``x`` reshaped to ``shape``, where dimension ``axis`` of both is the one split over devices (the leading
    dimensions before it unchanged). On a mesh of Explicit axes JAX needs the result's sharding spelled out: the
    same mesh axes on ``axis``, nothing after it."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    spec = tuple(getattr(sharding, "spec", ())) + (None,) * x.ndim
    mesh = getattr(sharding, "mesh", None)
    explicit = mesh is not None and any(t == jax.sharding.AxisType.Explicit for t in getattr(mesh, "axis_types", ()))
    if mesh is None or not explicit or spec[axis] is None:
        return jnp.reshape(x, shape)
    out = jax.sharding.PartitionSpec(*spec[:axis + 1], *([None] * (len(shape) - axis - 1)))  # type: ignore[no-untyped-call]
    return lax.reshape(x, shape, out_sharding=jax.sharding.NamedSharding(mesh, out))


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _split(buf: Any, sizes: list[int]) -> list[Any]:
    """``buf`` cut into consecutive pieces of ``sizes`` (laid out in order, no gaps, by construction)."""
    if len(sizes) == 1:
        return [buf]
    return list(lax.split(buf, sizes, axis=buf.ndim - 1))


_Aux = tuple[Any, Layout, tuple[int, ...], Split]


def _flatten_with_keys(flat: FlatTree) -> tuple[list[tuple[Any, Any]], _Aux]:
    keys = [jax.tree_util.GetAttrKey(f"buffers[{i}]") for i in range(len(flat.buffers))]
    return list(zip(keys, flat.buffers)), (flat.treedef, flat.layout, flat.padded, flat.split)


def _flatten(flat: FlatTree) -> tuple[tuple[Any, ...], _Aux]:
    return flat.buffers, (flat.treedef, flat.layout, flat.padded, flat.split)


def _unflatten(aux: _Aux, children: Any) -> FlatTree:
    obj = object.__new__(FlatTree)
    obj.buffers = tuple(children)
    obj.treedef, obj.layout, obj.padded, obj.split = aux
    return obj


jax.tree_util.register_pytree_with_keys(FlatTree, _flatten_with_keys, _unflatten, _flatten)


def _shard_group(x: Any, path: str) -> tuple[Any, int, int, Any] | None:
    """``(mesh, dimension, parts, axes)`` of a leaf split over mesh axes along one dimension; ``None`` when it is
    whole on every device (replicated, one device, or not a ``NamedSharding``)."""
    if isinstance(x, Tracer):
        raise ValueError(f"pack(by_sharding=True): the leaf {path} is traced; pack reads each leaf's sharding, "
                         "so call it outside jit (make_step's step.init does)")
    sharding = getattr(x, "sharding", None)
    if not isinstance(sharding, jax.sharding.NamedSharding):
        return None
    mesh = sharding.mesh
    spec = tuple(sharding.spec) + (None,) * (x.ndim - len(sharding.spec))
    split = []
    for d, entry in enumerate(spec):
        axes = () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)
        parts = int(np.prod([mesh.shape[a] for a in axes], dtype=np.int64))
        if parts > 1:
            split.append((d, parts, entry))
    if not split:
        return None
    if len(split) > 1:
        raise ValueError(f"pack(by_sharding=True): the leaf {path} is split along {len(split)} dimensions "
                         f"({sharding.spec}); a flat buffer groups leaves split along one dimension")
    d, parts, entry = split[0]
    return mesh, d, parts, entry


def pack(tree: PyTree, *, multiple_of: int = 1, by_sharding: bool = False) -> FlatTree:
    """``tree`` as a :class:`FlatTree`: the leaves of each dtype raveled and concatenated into one buffer.

    Buffers follow the order in which their dtypes first appear among the leaves (tree order). ``None``
    leaves stay ``None`` (they are empty subtrees), scalars take one element, 0-size leaves none; the empty
    tree packs to a FlatTree without buffers. Works inside ``jit`` (one concatenate per dtype).

    ``multiple_of=N`` pads every buffer with zeros to a length divisible by ``N`` (at most ``N - 1`` elements
    each), so a buffer splits evenly over ``N`` devices: ZeRO's exact ``1/N`` of the state per device
    (:func:`gradtx.sharding.zero1_shardings`, ``make_step(zero=1 or 2)``). The padding is part of the layout
    (``FlatTree.sizes``), so the gradients and the state built from a padded FlatTree are padded alike;
    optimizers keep it at zero (a zero gradient and a zero parameter give a zero update) and global norms do
    not see it. The exception is added noise (``add_noise``, ``noisy_sgd``), which lands in the padding too;
    :func:`unpack` drops it.

    ``by_sharding=True`` groups leaves by sharding too, for model-parallel parameters: the leaves split over
    the same mesh axes (``NamedSharding``, along one dimension each, any one) share a 2-D buffer of shape
    ``(parts, columns)`` split over those axes by its rows, each leaf's dimension ``d`` moved to the front and
    its ``parts`` shards laid in the rows (``moveaxis(x, d, 0).reshape(parts, -1)``: every device keeps its own
    elements, nothing moves between devices); replicated leaves share a 1-D buffer per dtype as above. An
    elementwise optimizer on these buffers runs where the shards are, as per leaf.

    Args:
      tree: a pytree of arrays (or Python scalars), e.g. the parameters. A FlatTree is returned as it is.
      multiple_of: pad each buffer to a multiple of this length, ``>= 1`` (keyword-only). Default 1 (none).
        A 2-D buffer's rows are padded.
      by_sharding: group leaves by dtype and by sharding (keyword-only; needs concrete arrays, not tracers).
        Default False: by dtype only, whatever the shardings.

    Returns:
      The :class:`FlatTree` holding the leaves of ``tree``; ``unpack`` gives ``tree`` back.

    Raises:
      ValueError: ``multiple_of`` is not an integer ``>= 1`` (``pack(multiple_of=0): multiple_of must be an
        integer >= 1``), ``tree`` is a FlatTree padded to another multiple, or, with ``by_sharding``, a leaf
        is traced or split along two dimensions (``pack(by_sharding=True): the leaf ['w'] is split along 2
        dimensions ...``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.flat import pack, unpack
      >>> params = pack({"w": jnp.ones((2, 2)), "b": jnp.zeros(2)})
      >>> opt = gradtx.sgd(0.5)
      >>> updates, _ = opt.update(pack({"w": jnp.ones((2, 2)), "b": jnp.ones(2)}), opt.init(params), params)
      >>> print(unpack(gradtx.apply_updates(params, updates))["b"])
      [-0.5 -0.5]
      >>> pack({"w": jnp.ones(5)}, multiple_of=4)  # padded to 8 elements for 4 devices
      FlatTree(1 leaves in (float32[8]))
    """
    if isinstance(multiple_of, bool) or not isinstance(multiple_of, (int, np.integer)) or multiple_of < 1:
        raise ValueError(f"pack(multiple_of={multiple_of!r}): multiple_of must be an integer >= 1")
    if isinstance(tree, FlatTree):
        if any(n % multiple_of for n in tree.sizes()):
            raise ValueError(f"pack(multiple_of={multiple_of}): the FlatTree given has buffers of lengths "
                             f"{tree.sizes()}; pack the original tree with multiple_of={multiple_of}")
        return tree
    if not isinstance(by_sharding, bool):
        raise ValueError(f"pack(by_sharding={by_sharding!r}): by_sharding must be True or False")
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(tree)
    groups: list[Any] = []  # per buffer: (dtype, mesh, axes) or (dtype,)
    parts: list[list[Any]] = []
    offsets: list[int] = []
    layout: list[tuple[int, int, tuple[int, ...]]] = []
    split: list[tuple[int, int] | None] = []
    for path, x in with_paths:
        x = jnp.asarray(x)  # a jax.Array as it is (its sharding kept)
        group = _shard_group(x, jax.tree_util.keystr(path)) if by_sharding else None
        dt = np.dtype(x.dtype)
        key = (dt,) if group is None else (dt, group[0], group[3])
        if key not in groups:
            groups.append(key)
            parts.append([])
            offsets.append(0)
        b = groups.index(key)
        shape = tuple(int(d) for d in x.shape)
        layout.append((b, offsets[b], shape))
        if group is None:
            split.append(None)
            offsets[b] += _size(shape)
            parts[b].append(jnp.reshape(x, (-1,)))
        else:  # the sharded dimension first, its shards as rows: each device keeps its own elements
            _, d, n, _ = group
            split.append((d, n))
            offsets[b] += _size(shape) // n
            parts[b].append(_reshape_rows(jnp.moveaxis(x, d, 0), (n, _size(shape) // n), 0))
    padded: tuple[int, ...] = ()
    if multiple_of > 1 and any(n % multiple_of for n in offsets):
        padded = tuple(-(-n // multiple_of) * multiple_of for n in offsets)
        for p, n, m in zip(parts, offsets, padded):
            if m > n:
                p.append(jnp.zeros((*p[0].shape[:-1], m - n), p[0].dtype))
    buffers = [p[0] if len(p) == 1 else jnp.concatenate(p, axis=-1) for p in parts]
    for i, key in enumerate(groups):
        if len(key) == 3:  # lay the 2-D buffer out by its rows over the leaves' mesh axes
            spec = jax.sharding.PartitionSpec(key[2], None)  # type: ignore[no-untyped-call]  # unannotated in JAX
            buffers[i] = jax.device_put(buffers[i], jax.sharding.NamedSharding(key[1], spec))
    return FlatTree(tuple(buffers), treedef, tuple(layout), padded, tuple(split) if any(split) else ())


def unpack(tree: PyTree) -> PyTree:
    """The original tree of a :class:`FlatTree`, or every fitting FlatTree inside another pytree unpacked.

    For any other pytree (an optimizer state), every FlatTree inside it that fits its layout is unpacked (so
    ``unpack(opt.init(pack(params)))`` has per-leaf moments) and the others (per-buffer statistics of
    leaf-structured transformations) are left as they are. Slices and reshapes: cheap inside ``jit``, and
    differentiable (the gradient is one concatenate per buffer).

    Args:
      tree: a :class:`FlatTree`, or a pytree that may contain FlatTrees.

    Returns:
      The original tree (``FlatTree.unpack``), or ``tree`` with its fitting FlatTrees replaced by their trees.

    Raises:
      ValueError: ``tree`` is a FlatTree whose buffers do not fit its layout.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.flat import pack, unpack
      >>> params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
      >>> print(unpack(pack(params))["w"])
      [[1. 1. 1.]
       [1. 1. 1.]]
      >>> state = gradtx.adam(0.1).init(pack(params))
      >>> jax.tree.map(jnp.shape, unpack(state)[0].mu)  # per-leaf moments
      {'b': (3,), 'w': (2, 3)}
    """
    if isinstance(tree, FlatTree):
        return tree.unpack()
    return jax.tree.map(
        lambda x: x.unpack() if isinstance(x, FlatTree) and x.fits() else x,
        tree,
        is_leaf=lambda x: isinstance(x, FlatTree),
    )
