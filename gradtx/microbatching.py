"""``gradtx.microbatching``: Optax 0.2.8's ``optax.microbatching`` namespace.

Evaluate a function, a vectorised map or per-example gradients over a large batch in sequential
micro-batches, so that peak memory is that of one micro-batch:

    microbatch(fun, argnums, microbatch_size, accumulator)   fun on micro-batches, outputs combined
    micro_vmap(fun, in_axes, microbatch_size=...)            jax.vmap in micro-batches (CONCAT, SUM, MEAN, ...)
    micro_grad(fun, batch_argnums=..., transform_fn=...)     per-example gradients, transformed and combined
    reshape_batch_axis(tree, microbatch_size, axis)          the (column-major) split of the batch axis
    AccumulationType, Accumulator                            how micro-batch outputs combine
    IndividualOutputs                                        micro_grad's per-example outputs

These are functions of functions, not transformations: they sit below the wrappers (this module imports only
``gradtx.base`` and ``gradtx.tree``). ``gradtx.microbatch`` and ``gradtx.wrappers.microbatch`` (Optax's
``optax.microbatch``) are the same objects as the ones defined here.

Differences from Optax (deliberate, tested in tests/test_microbatching.py and tests/test_wrappers.py):
``microbatch`` accumulates floating outputs in float32 or wider and returns them in their own dtype (Optax
sums bfloat16 outputs in bfloat16); explicit-sharding layouts are not handled. ``micro_vmap`` maps every
positional argument for an int ``in_axes`` (as ``jax.vmap``; Optax only one); ``micro_grad`` accepts negative
``batch_argnums``; a ``num_real_microbatches`` outside ``[0, n]`` and a batch size not divisible by
``microbatch_size`` raise ``ValueError`` (Optax reads past the batch).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from gradtx import tree
from gradtx.base import PyTree
from gradtx.fields import concrete_number

__all__ = [
    "AccumulationType",
    "Accumulator",
    "micro_grad",
    "micro_vmap",
    "microbatch",
    "reshape_batch_axis",
]


@dataclasses.dataclass(frozen=True)
class Accumulator:
    """How the outputs of the micro-batches combine into one result (``optax.microbatching.Accumulator``).

    For the outputs ``x_0, ..., x_{n-1}`` of ``n`` micro-batches, :func:`microbatch` computes::

        carry = init(shape_dtype_struct_of_x_0)
        for i in range(n):                  # a lax.fori_loop
            carry = update(carry, x_i, i)
        result = finalize(carry)

    and :func:`micro_vmap` first calls ``aggregate`` on the per-example outputs of one micro-batch (stacked along
    axis 0) to get that micro-batch's ``x_i``. An ``Accumulator`` placed at a node of an ``accumulator`` tree
    receives the whole output subtree at that node (the built-in :class:`AccumulationType` ones work leaf by
    leaf).

    Args:
        init: ``init(struct) -> carry``: the initial carry, from the shapes and dtypes (``jax.ShapeDtypeStruct``
            leaves) of one micro-batch's output.
        update: ``update(carry, value, index) -> carry``: folds in the output ``value`` of micro-batch ``index``
            (a traced integer inside the loop).
        finalize: ``finalize(carry) -> result``: the result returned to the caller.
        aggregate: ``aggregate(values) -> value``: reduces per-example outputs stacked along axis 0 to one
            micro-batch's contribution (used by :func:`micro_vmap` and :func:`micro_grad`).

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.microbatching import Accumulator, microbatch
        >>> maximum = Accumulator(
        ...     init=lambda s: jnp.full(s.shape, -jnp.inf, s.dtype),
        ...     update=lambda carry, value, index: jnp.maximum(carry, value),
        ...     finalize=lambda carry: carry,
        ...     aggregate=lambda values: jnp.max(values, axis=0))
        >>> print(microbatch(jnp.max, argnums=0, microbatch_size=2, accumulator=maximum)(jnp.array([3., 1., 4., 1.])))
        4.0
    """

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], Any]
    finalize: Callable[[Any], Any]
    aggregate: Callable[[Any], Any]


class AccumulationType(enum.Enum):
    """The built-in ways to combine micro-batch outputs (``optax.microbatching.AccumulationType``).

    A member stands at a node of the ``accumulator`` tree of :func:`microbatch`, :func:`micro_vmap` or
    :func:`micro_grad` and applies to every leaf below it. With ``n`` micro-batches of outputs ``x_i``:

    - ``MEAN``: ``(1/n) sum_i x_i`` over all ``n`` micro-batches (floating outputs only);
    - ``SUM``: ``sum_i x_i``;
    - ``RUNNING_MEAN``: the mean over the micro-batches actually run (``num_real_microbatches`` of them;
      floating outputs only);
    - ``CONCAT``: the outputs concatenated along axis 0, rows back in the order of the full batch.

    Floating sums and means are accumulated in float32 or wider and returned in the output's dtype.

    Members are used as they are (``AccumulationType.MEAN``); calling the class is ``enum.Enum``'s own look-up
    and functional API, whose parameters follow.

    Args:
        value: the value of a member, looked up: ``AccumulationType(AccumulationType.SUM.value)`` is ``SUM``.
        names: ``enum.Enum``'s functional API (a new enumeration's member names); not used by gradtx.
        module: ``enum.Enum``'s functional API; not used by gradtx.
        qualname: ``enum.Enum``'s functional API; not used by gradtx.
        type: ``enum.Enum``'s functional API; not used by gradtx.
        start: ``enum.Enum``'s functional API; not used by gradtx.
        boundary: ``enum.Enum``'s functional API; not used by gradtx.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.microbatching import AccumulationType, microbatch
        >>> x = jnp.arange(8.0)
        >>> print(microbatch(jnp.mean, 0, 2, AccumulationType.MEAN)(x), jnp.mean(x))
        3.5 3.5
    """

    MEAN = enum.auto()
    """The mean over all micro-batches (floating outputs only)."""
    SUM = enum.auto()
    """The sum over the micro-batches."""
    RUNNING_MEAN = enum.auto()
    """The mean over the micro-batches actually run (``num_real_microbatches``; floating outputs only)."""
    CONCAT = enum.auto()
    """The outputs concatenated along axis 0, in the order of the full batch."""


def _astype(x: Any, dtype: Any) -> jax.Array:
    """``x`` as an array of ``dtype`` (outputs and their carries are both real or both complex here)."""
    return jnp.asarray(x).astype(dtype)


def _acc_dtype(dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    return tree.compute_dtype(dtype) if jnp.issubdtype(dtype, jnp.inexact) else dtype


def _reduce(fn: Callable[..., Any], values: Any) -> jax.Array:
    """``fn(values, axis=0)`` in float32 or wider for floating values, returned in their dtype."""
    values = jnp.asarray(values)
    if not jnp.issubdtype(values.dtype, jnp.inexact):
        return cast(jax.Array, fn(values, axis=0))
    return _astype(fn(_astype(values, _acc_dtype(values.dtype)), axis=0), values.dtype)


def _leaf_accumulator(kind: AccumulationType, num_microbatches: int) -> Accumulator:
    """A built-in accumulator for one output leaf: floating sums and means run in float32 or wider and are
    returned in the leaf's dtype. ``MEAN`` and ``RUNNING_MEAN`` reject non-floating outputs in ``init``."""

    def zeros(s: Any) -> jax.Array:
        dtype = np.dtype(s.dtype)
        if kind in (AccumulationType.MEAN, AccumulationType.RUNNING_MEAN) and not jnp.issubdtype(dtype, jnp.inexact):
            raise ValueError(f"microbatch: the {kind.name} accumulator needs floating-point outputs, got {dtype}")
        return jnp.zeros(s.shape, _acc_dtype(dtype))

    def add(c: Any, v: Any, i: Any) -> jax.Array:
        return cast(jax.Array, c + _astype(v, c.dtype))

    if kind is AccumulationType.SUM:
        return Accumulator(zeros, add, lambda c: c, lambda vs: _reduce(jnp.sum, vs))
    if kind is AccumulationType.MEAN:
        n = num_microbatches
        return Accumulator(zeros, add, lambda c: c / n, lambda vs: _reduce(jnp.mean, vs))
    if kind is AccumulationType.RUNNING_MEAN:

        def running(c: Any, v: Any, i: Any) -> jax.Array:
            k = jnp.asarray(i).astype(c.dtype) + 1  # Welford: the mean of the first k outputs
            return cast(jax.Array, c + (_astype(v, c.dtype) - c) / k)

        return Accumulator(zeros, running, lambda c: c, lambda vs: _reduce(jnp.mean, vs))
    if kind is AccumulationType.CONCAT:

        def finalize(c: Any) -> jax.Array:
            # c[r, j] is row r + n * j of the full batch (see reshape_batch_axis): undo that split.
            return jnp.reshape(jnp.swapaxes(c, 0, 1), (-1, *c.shape[2:]))

        return Accumulator(
            lambda s: jnp.zeros((num_microbatches, *s.shape), s.dtype),
            lambda c, v, i: c.at[i].set(v),
            finalize,
            lambda vs: vs,
        )
    raise ValueError(f"microbatch: unknown accumulator {kind!r}; use an AccumulationType or an Accumulator")


def _position_accumulator(kind: Any, num_microbatches: int, struct: Any = None) -> Accumulator:
    """The accumulator for one node of the ``accumulator`` tree (``struct``: the output subtree there, when known).

    A user's :class:`Accumulator` sees the whole output subtree at its node; an :class:`AccumulationType`
    applies leaf by leaf, and its finalize casts the float32 carry of a floating leaf back to the dtype in
    ``struct``.
    """
    if isinstance(kind, Accumulator):
        return kind
    if not isinstance(kind, AccumulationType):
        raise ValueError(f"microbatch: unknown accumulator {kind!r}; use an AccumulationType or an Accumulator")
    leaf = _leaf_accumulator(kind, num_microbatches)

    def finalize(carry: Any) -> Any:
        out = jax.tree.map(leaf.finalize, carry)
        if struct is None:
            return out
        return jax.tree.map(
            lambda o, s: _astype(o, s.dtype) if jnp.issubdtype(s.dtype, jnp.inexact) else o, out, struct
        )

    return Accumulator(
        init=lambda s: jax.tree.map(leaf.init, s),
        update=lambda c, v, i: jax.tree.map(lambda a, b: leaf.update(a, b, i), c, v),
        finalize=finalize,
        aggregate=lambda vs: jax.tree.map(leaf.aggregate, vs),
    )


def _is_acc_leaf(x: Any) -> bool:
    return isinstance(x, (AccumulationType, Accumulator))


def _accumulators(accumulator: Any, num_microbatches: int, struct: Any = None) -> Any:
    """The ``accumulator`` tree with every node made an :class:`Accumulator` (``struct``: the output tree)."""
    if struct is None:
        return jax.tree.map(lambda k: _position_accumulator(k, num_microbatches), accumulator, is_leaf=_is_acc_leaf)
    return jax.tree.map(
        lambda k, s: _position_accumulator(k, num_microbatches, s), accumulator, struct, is_leaf=_is_acc_leaf
    )


def _over(accs: Any, fn: Callable[..., Any], *trees: Any) -> Any:
    """``fn(accumulator, subtree, ...)`` at every node of the accumulator tree (a prefix of the output trees)."""
    return jax.tree.map(fn, accs, *trees, is_leaf=lambda x: isinstance(x, Accumulator))


def _check_size(call: str, microbatch_size: Any) -> int:
    if isinstance(microbatch_size, bool) or not isinstance(microbatch_size, (int, np.integer)) or microbatch_size < 1:
        raise ValueError(f"{call}(microbatch_size={microbatch_size!r}): microbatch_size must be an int >= 1")
    return int(microbatch_size)


def reshape_batch_axis(tree: PyTree, microbatch_size: int, axis: int = 0) -> PyTree:
    """Split the batch axis of every leaf into ``(num_microbatches, microbatch_size)`` at the same position.

    With ``B`` the batch size and ``n = B // microbatch_size``, row ``b = r + n * j`` of the batch lands at
    index ``[r, j]``: micro-batch ``r`` takes every ``n``-th row from ``r`` on. This is a column-major (Fortran
    order) reshape, as in Optax: a batch sharded along its axis stays sharded along the new ``microbatch_size``
    axis, and the new ``num_microbatches`` axis is the one a sequential loop indexes.

    Args:
        tree: a pytree of arrays, each with a batch axis of the same size ``B``.
        microbatch_size: the rows per micro-batch, an int >= 1 dividing ``B``.
        axis: the batch axis of every leaf (default 0; negative values count from the end).

    Returns:
        ``tree`` with each leaf of shape ``(..., B, ...)`` reshaped to ``(..., n, microbatch_size, ...)``.

    Raises:
        ValueError: if ``microbatch_size`` is not an int >= 1 or does not divide a leaf's batch axis.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.microbatching import reshape_batch_axis
        >>> print(reshape_batch_axis(jnp.arange(6), 3))
        [[0 2 4]
         [1 3 5]]
    """
    size = _check_size("reshape_batch_axis", microbatch_size)

    def one(x: Any) -> Any:
        x = jnp.asarray(x)
        ax = axis % x.ndim if x.ndim else axis
        b = x.shape[ax]
        if b % size:
            raise ValueError(
                f"reshape_batch_axis(microbatch_size={size}): the batch axis {axis} has size {b}, which "
                f"microbatch_size must divide"
            )
        split = jnp.reshape(x, (*x.shape[:ax], size, b // size, *x.shape[ax + 1 :]))
        return jnp.swapaxes(split, ax, ax + 1)

    return jax.tree.map(one, tree)


def microbatch(
    fun: Callable[..., Any],
    argnums: int | Sequence[int],
    microbatch_size: int | None,
    accumulator: AccumulationType | Accumulator | PyTree = AccumulationType.SUM,
    *,
    argnames: str | Sequence[str] = (),
    in_axes: int | Sequence[int] = 0,
    num_real_microbatches: ArrayLike | None = None,
) -> Callable[..., Any]:
    """``fun`` evaluated on a batch in sequential micro-batches, the results combined (``optax.microbatch``).

    The batched arguments are split into ``n = B / microbatch_size`` micro-batches (see
    :func:`reshape_batch_axis`: micro-batch ``r`` takes rows ``r, r + n, r + 2n, ...``); ``fun`` runs on one
    micro-batch at a time inside a ``lax.fori_loop``, so peak memory is that of one micro-batch, and the outputs
    are combined by ``accumulator``. For example with ``SUM``, ``microbatch(f, ...)(x) = sum_r f(x_r)``, which
    equals ``f(x)`` when ``f`` is a sum over rows; with ``MEAN`` it is ``(1/n) sum_r f(x_r)``, equal to ``f(x)``
    for a mean over rows; ``CONCAT`` reassembles per-row outputs in the order of the full batch.

    Args:
        fun: any function; the batched arguments are replaced by micro-batches of them.
        argnums: the positions of the positional arguments with a batch axis (an int or a sequence of ints).
        microbatch_size: the rows per micro-batch, an int >= 1 that divides the batch size ``B``; smaller
            values use less memory and run more sequential steps. ``None`` returns ``fun`` itself.
        accumulator: how outputs combine: an :class:`AccumulationType` (default ``SUM``), an
            :class:`Accumulator`, or a pytree of them matching a prefix of ``fun``'s output tree.
        argnames: the names of keyword arguments with a batch axis (a string or a sequence of strings).
        in_axes: the batch axis of each batched argument: one int for all, or one int per entry of
            ``argnums + argnames`` (in that order). Default 0.
        num_real_microbatches: optional number of micro-batches actually run (an int in ``[0, n]`` or a traced
            integer): the loop stops after that many, e.g. to handle a padded batch without recompiling.

    Returns:
        A function with ``fun``'s arguments that returns the combined outputs. Calling it raises
        ``ValueError`` if the batched arguments have different batch sizes, if ``microbatch_size`` does not
        divide the batch size, if a ``MEAN``/``RUNNING_MEAN`` output is not floating, or if
        ``num_real_microbatches`` is a concrete value outside ``[0, n]``.

    Raises:
        ValueError: if ``microbatch_size`` is not ``None`` or an int >= 1, or ``in_axes`` has the wrong length.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> from gradtx.microbatching import AccumulationType
        >>> fun = lambda x: (x + 1, jnp.sum(3 * x))
        >>> per_row, total = gradtx.microbatch(
        ...     fun, argnums=0, microbatch_size=2,
        ...     accumulator=(AccumulationType.CONCAT, AccumulationType.SUM))(jnp.array([1, 2, 3, 4]))
        >>> print(per_row, total)
        [2 3 4 5] 30
    """
    if microbatch_size is None:
        return fun
    size = _check_size("microbatch", microbatch_size)
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    names = (argnames,) if isinstance(argnames, str) else tuple(argnames)
    axes = (in_axes,) * (len(nums) + len(names)) if isinstance(in_axes, int) else tuple(in_axes)
    if len(axes) != len(nums) + len(names):
        raise ValueError(
            f"microbatch(in_axes={in_axes!r}): in_axes must have one axis per argnums + argnames "
            f"({len(nums) + len(names)}), got {len(axes)}"
        )

    def microbatched(*args: Any, **kwargs: Any) -> Any:
        batched = [(args[i], ax) for i, ax in zip(nums, axes)] + [
            (kwargs[n], ax) for n, ax in zip(names, axes[len(nums) :])
        ]
        sizes = sorted({int(jnp.shape(x)[ax]) for sub, ax in batched for x in jax.tree.leaves(sub)})
        if len(sizes) > 1:
            raise ValueError(f"microbatch: the batched arguments must have equal batch sizes, got {sizes}")
        if not sizes:
            raise ValueError("microbatch: no batched argument (argnums/argnames name none with array leaves)")
        batch = sizes[0]
        if batch % size:
            raise ValueError(f"microbatch: batch_size={batch} must be divisible by microbatch_size={size}")
        n = batch // size
        stop = n if num_real_microbatches is None else num_real_microbatches
        real = concrete_number(stop)
        if real is not None and not (0 <= real <= n and float(real).is_integer()):
            raise ValueError(
                f"microbatch(num_real_microbatches={num_real_microbatches!r}): num_real_microbatches must be an "
                f"integer in [0, {n}] (the number of micro-batches)"
            )
        new_args, new_kwargs = list(args), dict(kwargs)
        for i, ax in zip(nums, axes):
            new_args[i] = reshape_batch_axis(args[i], size, ax)
        for name, ax in zip(names, axes[len(nums) :]):
            new_kwargs[name] = reshape_batch_axis(kwargs[name], size, ax)

        def call(index: Any) -> Any:
            a, k = list(new_args), dict(new_kwargs)
            for i, ax in zip(nums, axes):
                a[i] = jax.tree.map(lambda x, ax=ax: jnp.take(x, index, axis=ax), new_args[i])
            for name, ax in zip(names, axes[len(nums) :]):
                k[name] = jax.tree.map(lambda x, ax=ax: jnp.take(x, index, axis=ax), new_kwargs[name])
            return fun(*a, **k)

        out_struct = jax.eval_shape(call, 0)
        accs = _accumulators(accumulator, n, out_struct)

        def body(i: Any, carry: Any) -> Any:
            return _over(accs, lambda a, c, v: a.update(c, v, i), carry, call(i))

        init = _over(accs, lambda a, s: a.init(s), out_struct)
        final = jax.lax.fori_loop(0, stop, body, init)
        return _over(accs, lambda a, c: a.finalize(c), final)

    return microbatched


def micro_vmap(
    fun: Callable[..., Any],
    in_axes: int | Sequence[int | None] = 0,
    out_axes: Any = 0,
    *,
    microbatch_size: int | None = None,
    vmap_fn: Callable[..., Any] = jax.vmap,
    accumulator: AccumulationType | Accumulator | PyTree = AccumulationType.CONCAT,
    num_real_microbatches: ArrayLike | None = None,
) -> Callable[..., Any]:
    """``jax.vmap`` that runs over the batch in sequential micro-batches (``optax.microbatching.micro_vmap``).

    Each micro-batch of ``microbatch_size`` examples is vectorised with ``vmap_fn`` and reduced with the
    accumulator's ``aggregate``; the micro-batch results are combined with :func:`microbatch`. With the default
    ``CONCAT`` the result equals ``jax.vmap(fun, in_axes)(...)``; ``SUM`` gives ``sum_b fun(x_b)`` and ``MEAN``
    ``(1/B) sum_b fun(x_b)`` without ever holding all ``B`` per-example outputs in memory.

    Args:
        fun: the function to map over the batch.
        in_axes: the batch axis of each positional argument: an int for all of them (default 0), or a sequence
            with one int or ``None`` (not mapped) per positional argument. Keyword arguments are mapped along
            axis 0, as with ``jax.vmap``.
        out_axes: must be 0 (the only value supported, as in Optax).
        microbatch_size: the examples per micro-batch, an int >= 1 dividing the batch size; ``None`` (default)
            vectorises the whole batch at once.
        vmap_fn: called as ``vmap_fn(fun, in_axes, out_axes)``, with ``jax.vmap``'s signature (default
            ``jax.vmap``); use it to pass options to the vectorisation.
        accumulator: what to do with the per-example outputs: ``CONCAT`` (default: keep them, stacked along
            axis 0), ``SUM``, ``MEAN``, ``RUNNING_MEAN``, an :class:`Accumulator`, or a pytree of them matching a
            prefix of ``fun``'s output.
        num_real_microbatches: optional number of micro-batches actually run (see :func:`microbatch`).

    Returns:
        A function with ``fun``'s arguments, each mapped argument carrying an extra batch axis.

    Raises:
        NotImplementedError: if ``out_axes`` is not 0.
        ValueError: if ``microbatch_size`` is not ``None`` or an int >= 1, or an entry of ``in_axes`` is not an
            int or ``None``; when called, if ``in_axes`` does not have one entry per positional argument.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.microbatching import AccumulationType, micro_vmap
        >>> print(micro_vmap(lambda x: x**2, microbatch_size=2)(jnp.arange(8)))
        [ 0  1  4  9 16 25 36 49]
        >>> print(micro_vmap(jnp.sum, microbatch_size=2, accumulator=AccumulationType.SUM)(jnp.ones((4, 3))))
        12.0
    """
    if not (isinstance(out_axes, int) and not isinstance(out_axes, bool) and out_axes == 0):
        raise NotImplementedError(f"micro_vmap(out_axes={out_axes!r}): only out_axes=0 is supported")
    if microbatch_size is not None:
        _check_size("micro_vmap", microbatch_size)
    given = (in_axes,) if isinstance(in_axes, int) else tuple(in_axes)
    for ax in given:
        if ax is not None and (isinstance(ax, bool) or not isinstance(ax, (int, np.integer))):
            raise ValueError(f"micro_vmap(in_axes={in_axes!r}): in_axes entries must be ints or None, got {ax!r}")

    def mapped(*args: Any, **kwargs: Any) -> Any:
        axes = (in_axes,) * len(args) if isinstance(in_axes, int) else given
        if len(axes) != len(args):
            raise ValueError(
                f"micro_vmap(in_axes={in_axes!r}): in_axes must have one entry per positional argument "
                f"({len(args)} given)"
            )

        def one_microbatch(*a: Any, kwargs: Any) -> Any:
            out = vmap_fn(fun, axes, 0)(*a, **kwargs)
            # Only ``aggregate`` is used here, which does not depend on the number of micro-batches.
            return _over(_accumulators(accumulator, 1), lambda acc, o: acc.aggregate(o), out)

        batched = tuple(i for i, ax in enumerate(axes) if ax is not None)
        run = microbatch(
            one_microbatch,
            argnums=batched,
            microbatch_size=microbatch_size,
            accumulator=accumulator,
            argnames="kwargs",
            in_axes=(*(ax for ax in axes if ax is not None), 0),
            num_real_microbatches=num_real_microbatches,
        )
        return run(*args, kwargs=kwargs)

    return mapped


class IndividualOutputs(NamedTuple):
    """The per-example outputs :func:`micro_grad` returns beside the gradient (Optax's ``Aux`` namedtuple).

    Every field has a leading batch axis (one row per example, in batch order).

    Attributes:
      values: ``fun``'s value for each example.
      metrics: ``metrics_fn`` of each example's gradient (``None`` with the default ``metrics_fn``).
      aux: ``fun``'s auxiliary output for each example (``None`` without ``has_aux``).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.microbatching import IndividualOutputs
      >>> out = IndividualOutputs(values=jnp.array([1.0, 4.0]), metrics=None, aux=None)
      >>> print(out.values, out.aux)
      [1. 4.] None
    """

    values: PyTree
    """``fun``'s value for each example."""
    metrics: PyTree
    """``metrics_fn`` of each example's gradient."""
    aux: PyTree
    """``fun``'s auxiliary output for each example (``None`` without ``has_aux``)."""


def micro_grad(
    fun: Callable[..., Any],
    has_aux: bool = False,
    argnums: int | Sequence[int] = 0,
    *,
    batch_argnums: int | Sequence[int] = 1,
    keep_batch_dim: bool = True,
    microbatch_size: int | None = None,
    accumulator: AccumulationType | Accumulator | PyTree = AccumulationType.SUM,
    transform_fn: Callable[[Any], Any] = lambda x: x,
    metrics_fn: Callable[[Any], Any] = lambda x: None,
    num_real_microbatches: ArrayLike | None = None,
) -> Callable[..., tuple[Any, IndividualOutputs]]:
    """Per-example gradients, transformed and combined over the batch (``optax.microbatching.micro_grad``).

    For examples ``x_1..x_B`` of the batched arguments, with ``g_b = grad fun(params, x_b)``, the returned function
    computes ``accumulate_b transform_fn(g_b)`` (``SUM`` by default: ``sum_b transform_fn(g_b)``, which with the
    identity ``transform_fn`` equals ``B * jax.grad`` of the batch-mean loss) and the per-example
    :class:`IndividualOutputs` ``(values=fun(x_b), metrics=metrics_fn(g_b), aux)``. Per-example gradients allow
    e.g. clipping each example's gradient (DP-SGD, Abadi et al. 2016, arXiv 1607.00133) or gradient-noise
    statistics (arXiv 2510.00236); the batch is processed in micro-batches of ``microbatch_size`` examples
    (see :func:`micro_vmap`), so peak memory stays that of one micro-batch.

    Args:
        fun: the loss, ``fun(params, batch, ...) -> value`` (or ``(value, aux)`` with ``has_aux``).
        has_aux: whether ``fun`` returns ``(value, aux)`` (default ``False``).
        argnums: the argument(s) to differentiate with respect to (default 0), as in ``jax.grad``.
        batch_argnums: the positional argument(s) with a batch axis 0 (default 1: ``fun(params, batch)``);
            negative values count from the end of the arguments.
        keep_batch_dim: if ``True`` (default) ``fun`` sees each example with a batch axis of size 1; if
            ``False``, without the batch axis.
        microbatch_size: the examples per micro-batch (an int >= 1 dividing the batch size), or ``None``
            (default) for the whole batch at once.
        accumulator: how the transformed per-example gradients combine over the batch: an
            :class:`AccumulationType` (default ``SUM``), an :class:`Accumulator`, or a pytree of them matching a
            prefix of ``transform_fn``'s output.
        transform_fn: applied to each example's gradient before combining (default the identity).
        metrics_fn: applied to each example's gradient; returned per example in ``aux.metrics`` (default
            ``None``), so it should be small (a norm).
        num_real_microbatches: optional number of micro-batches actually run (see :func:`microbatch`).

    Returns:
        A function with ``fun``'s arguments returning ``(combined, IndividualOutputs(values, metrics, aux))``.

    Raises:
        ValueError: if ``transform_fn`` or ``metrics_fn`` is not callable, ``batch_argnums`` is empty or holds a
            non-int, or ``microbatch_size`` is not ``None`` or an int >= 1.

    Example:
        >>> import jax.numpy as jnp
        >>> from gradtx.microbatching import AccumulationType, micro_grad
        >>> def loss(params, features, targets):
        ...     return 0.5 * jnp.mean((features @ params - targets) ** 2)
        >>> (grads, squares), aux = micro_grad(
        ...     loss, batch_argnums=(1, 2), accumulator=AccumulationType.MEAN,
        ...     transform_fn=lambda g: (g, g**2), metrics_fn=jnp.linalg.norm,
        ... )(jnp.zeros(1), jnp.ones((4, 1)), jnp.array([0., 2., 4., 6.]))
        >>> print(grads, squares)  # the per-example gradients are -0, -2, -4, -6
        [-3.] [14.]
        >>> print(aux.values, aux.metrics)
        [ 0.  2.  8. 18.] [0. 2. 4. 6.]
    """
    batch = (batch_argnums,) if isinstance(batch_argnums, int) else tuple(batch_argnums)
    if not batch or any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in batch):
        raise ValueError(f"micro_grad(batch_argnums={batch_argnums!r}): batch_argnums must be an int or ints")
    for name, fn in (("transform_fn", transform_fn), ("metrics_fn", metrics_fn)):
        if not callable(fn):
            raise ValueError(f"micro_grad({name}={fn!r}): {name} must be callable")
    if microbatch_size is not None:
        _check_size("micro_grad", microbatch_size)
    with_aux = fun if has_aux else (lambda *a, **k: (fun(*a, **k), None))
    value_and_grad = jax.value_and_grad(with_aux, argnums, has_aux=True)

    def per_example(*args: Any, **kwargs: Any) -> tuple[Any, IndividualOutputs]:
        (value, aux), grads = value_and_grad(*args, **kwargs)
        return transform_fn(grads), IndividualOutputs(values=value, metrics=metrics_fn(grads), aux=aux)

    def grad_fn(*args: Any, **kwargs: Any) -> tuple[Any, IndividualOutputs]:
        idx = {i % len(args) if -len(args) <= i < len(args) else i for i in batch}
        if any(not 0 <= i < len(args) for i in idx):
            raise ValueError(f"micro_grad(batch_argnums={batch_argnums!r}): only {len(args)} positional arguments")
        args = tuple(
            jax.tree.map(lambda x: jnp.expand_dims(x, 1), a) if keep_batch_dim and i in idx else a
            for i, a in enumerate(args)
        )
        axes = [0 if i in idx else None for i in range(len(args))]
        run = micro_vmap(
            per_example,
            in_axes=axes,
            accumulator=(accumulator, AccumulationType.CONCAT),
            microbatch_size=microbatch_size,
            num_real_microbatches=num_real_microbatches,
        )
        return cast("tuple[Any, IndividualOutputs]", run(*args, **kwargs))

    return grad_fn
