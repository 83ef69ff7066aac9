"""Muon: momentum orthogonalized by Newton-Schulz (Jordan et al. 2024), with AdamW for non-matrix parameters.

For a matrix parameter ``W`` (``fan_in x fan_out``, ``x W = y``) with gradient ``G_k`` (``k`` the 1-based step):

    M_k   = beta M_{k-1} + (1 - beta) G_k                                   (M_0 = 0)
    M_hat = M_k / (1 - beta^k)                        (nesterov=False)
    M_hat = beta M_k / (1 - beta^(k+1)) + (1 - beta) G_k / (1 - beta^k)     (nesterov=True, the default)
    O     = NS(M_hat):  X_0 = M_hat / (||M_hat||_F + eps),
                        X_{i+1} = a_i X_i + (b_i A_i + c_i A_i^2) X_i,  A_i = X_i X_i^H,  i < ns_steps
    u     = s O  with  s = sqrt(max(1, fan_out / fan_in))                     (width scaling, Jordan's Muon)
              or   s = consistent_rms * sqrt(max(fan_in, fan_out))            (Liu et al. 2025, arXiv 2502.16982)

The quintic Newton-Schulz map drives every singular value of ``X_0`` towards ~1 (Jordan's coefficients
``(3.4445, -4.7750, 2.0315)`` maximise the slope at zero and leave the singular values in about [0.7, 1.2]),
so ``O ~ U V^H`` for ``M_hat = U S V^H``: steepest descent under the spectral norm (Bernstein & Newhouse
2024, arXiv 2409.20325). ``ns_coeffs`` of shape ``(n, 3)`` give one ``(a, b, c)`` per iteration (the
``'dion'`` preset, Ahn et al. 2025, arXiv 2504.05295); ``ns_steps`` is then ignored. The iteration runs on
the wide orientation (``X^T`` when ``X`` has more rows than columns; the map commutes with transposition).
``preconditioning`` replaces the Frobenius scaling of ``X_0``: ``'spectral'`` divides by ``||X||_2 + eps``;
``'aol'`` (Boissin et al. 2025, arXiv 2512.04632) starts the first iteration from ``D X`` and ``D A D`` with
``D = diag(1 / sqrt(max(sum_j |A_ij|, eps)))``; ``'schatten'`` (Grishina et al. 2025, arXiv 2506.10935)
from ``X / sqrt(max(||A||_F, eps))`` (the Schatten-4 norm). ``adaptive`` multiplies ``O`` by
``<M_hat, O>`` (the dual norm of ``M_hat``, Bernstein & Newhouse 2024).

Tensors of rank > 2 (Optax issue #1271): :class:`MuonDimensionNumbers` names the reduction (fan-in) and output
(fan-out) axes of a leaf; the remaining axes are batch axes, each slice orthogonalized on its own. A conv kernel
``(h, w, c_in, c_out)`` is one matrix with ``MuonDimensionNumbers((0, 1, 2), 3)`` or ``h * w`` matrices with
``MuonDimensionNumbers(2, 3)``. Matrices of the same shape, from one leaf or many, go through the
Newton-Schulz iteration together as one batch (one batched matmul chain per shape, not one per leaf).

``muon`` is the recipe: ``partition`` sends the matrices (rank-2 leaves, or the leaves with dimension numbers)
to ``chain(scale_by_muon, scale_by_shape, add_decayed_weights, scale_by_learning_rate)`` and every other leaf to
``adamw`` (``adam_*`` arguments, the same ``eps``, ``mu_dtype`` and ``nesterov``), as in ``optax.contrib.muon``.

The momentum form. The equations above are Optax's (``momentum_form='optax'``, the default, because gradtx's
signatures and defaults are Optax's). Keller Jordan's reference implementation (``KellerJordan/Muon``,
``muon.py``, ``muon_update`` and ``zeropower_via_newtonschulz5``, commit
857d1adc159e098212f828d927460782d3da59e9) has no bias correction and blends the Nesterov step with the raw
gradient; ``momentum_form='reference'`` follows it::

    M_k   = beta M_{k-1} + (1 - beta) G_k                  (momentum.lerp_(grad, 1 - beta))
    M_hat = M_k                                             (nesterov=False)
    M_hat = beta M_k + (1 - beta) G_k                       (nesterov=True: grad.lerp_(momentum, beta))
    X_0   = M_hat / (||M_hat||_F + eps)                     (X / (X.norm() + 1e-7))

Without Nesterov the two forms differ only through ``eps``: the Newton-Schulz map is scale-invariant except for
``eps``, which acts on ``||M_k||_F`` in the reference and on ``||M_k / (1 - beta^k)||_F`` in Optax's form. With
Nesterov (the default of both) they blend ``M_k`` and ``G_k`` differently in the first steps
(``beta / (1 - beta^(k+1))`` against ``(1 - beta) / (1 - beta^k)``, versus ``beta`` against ``1 - beta``) and
agree once ``beta^k`` is negligible. In :func:`muon`, the reference form also gives the non-matrix leaves plain
AdamW (the reference's ``adam_update``), where Optax's form passes ``nesterov`` on (NAdam). For the reference's
own numbers pass ``eps=1e-7``; its auxiliary Adam's defaults are ``adam_b2=0.95`` and an eps of 1e-10 (gradtx's
``muon`` shares ``eps`` between both sides); it iterates Newton-Schulz in bfloat16 (gradtx in float32 or wider).

Conventions and deviations from ``optax.contrib`` 0.2.8 (same names, signatures, defaults, state fields):
arithmetic in float32 or wider (Optax iterates in the parameter dtype: bfloat16 matmuls for bfloat16
parameters); with 2-D ``ns_coeffs`` Optax raises when they have more rows than ``ns_steps`` although its
docstring says ``ns_steps`` is ignored: here it is ignored; ``scale_by_muon`` accepts a preset name too; a leaf
whose dimension numbers are ``None`` (or, without dimension numbers, a leaf of rank 0 or 1) keeps the
momentum ``M_hat`` unorthogonalized instead of failing; a leaf of rank > 2 without dimension numbers is a
``ValueError`` that says to pass them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    MaskOrFn,
    OptState,
    Params,
    Scalar,
    ScalarOrSchedule,
    StatelessTransformation,
    Updates,
    check_tree_match,
    safe_int32_increment,
    zero_count,
)
from gradtx.combine import chain, partition
from gradtx.contrib._common import safe_sqrt, whole_numbers
from gradtx.fields import (
    FrozenTree,
    choice,
    dtype_option,
    flag,
    hashable_tree,
    hyper,
    integer,
    non_negative,
    option,
    probability,
    pytree_class,
    recipe,
)
from gradtx.optimizers.classic import adamw
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.tree.precision import like

__all__ = [
    "DION_NS_COEFFS",
    "MUON_NS_COEFFS",
    "NS_COEFFS_PRESETS",
    "MuonDimensionNumbers",
    "MuonState",
    "muon",
    "orthogonalize_via_newton_schulz",
    "scale_by_muon",
    "scale_by_shape",
]

MUON_NS_COEFFS = (3.4445, -4.7750, 2.0315)
"""Jordan's quintic coefficients ``(a, b, c)`` (modded-nanogpt), used at every iteration."""

DION_NS_COEFFS = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)
"""Five per-iteration coefficient triples from Dion (Ahn et al. 2025, arXiv 2504.05295)."""

NS_COEFFS_PRESETS = {"standard": MUON_NS_COEFFS, "dion": DION_NS_COEFFS}
"""Preset names accepted for ``ns_coeffs`` (Optax's names)."""

PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")

MOMENTUM_FORMS = ("optax", "reference")
"""The values of ``momentum_form``: Optax's bias-corrected momentum, or Keller Jordan's reference (no correction)."""


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a leaf form the matrix Muon orthogonalizes; every other axis is a batch axis.

    A leaf is transposed to ``(batch axes, reduction axes, output axes)`` and reshaped to a stack of
    ``fan_in x fan_out`` matrices, each orthogonalized on its own (Optax issue #1271 for tensors of rank > 2). A
    conv kernel ``(h, w, c_in, c_out)`` is one matrix with ``MuonDimensionNumbers((0, 1, 2), 3)`` or ``h * w``
    matrices with ``MuonDimensionNumbers(2, 3)``.

    Attributes:
      reduction_axis: the fan-in axis (an int) or axes (a sequence of ints; negative counts from the end).
        Default 0.
      output_axis: the fan-out axis or axes. Default 1.

    Examples:
      >>> import gradtx
      >>> dims = gradtx.contrib.MuonDimensionNumbers(reduction_axis=(0, 1, 2), output_axis=3)  # a conv kernel
      >>> print(dims)
      MuonDimensionNumbers(reduction_axis=(0, 1, 2), output_axis=3)
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


class MuonState(NamedTuple):
    """The state of :class:`scale_by_muon` (Optax's field names).

    Attributes:
      count: the number of steps taken, an int32 scalar.
      mu: the momentum ``M``, like the parameters (in ``mu_dtype`` if given).
      ns_coeffs: the Newton-Schulz coefficients ``update`` uses, shape ``(3,)`` or ``(n, 3)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.scale_by_muon().init(jnp.zeros((2, 3)))
      >>> print(state.ns_coeffs)  # Jordan's quintic coefficients (a, b, c)
      [ 3.4445 -4.775   2.0315]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    mu: Updates
    ns_coeffs: jax.Array


# --------------------------------------------------------------------------------------------------
# Dimension numbers: which leaves are matrices, and how they reshape to (batch, fan_in, fan_out).
# --------------------------------------------------------------------------------------------------


class _Layout(NamedTuple):
    """A leaf's matrix layout: the transposition to (batch, reduction, output) axes and the flat sizes."""

    perm: tuple[int, ...]
    batch: int
    fan_in: int
    fan_out: int


def _is_dims(x: Any) -> bool:
    """A MuonDimensionNumbers, or any NamedTuple with its two fields (``optax.contrib.MuonDimensionNumbers``)."""
    return isinstance(x, tuple) and getattr(x, "_fields", None) == ("reduction_axis", "output_axis")


def _axes(ax: Sequence[int] | int, ndim: int) -> tuple[int, ...]:
    return tuple(int(a) % ndim for a in ((ax,) if isinstance(ax, (int, np.integer)) else ax))


def _layout(shape: tuple[int, ...], dims: MuonDimensionNumbers, where: str) -> _Layout:
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(f"{where}: a leaf with dimension numbers {dims} must have rank >= 2, got shape {shape}")
    red, out = _axes(dims.reduction_axis, ndim), _axes(dims.output_axis, ndim)
    if set(red) & set(out) or len(set(red)) != len(red) or len(set(out)) != len(out) or not red or not out:
        raise ValueError(f"{where}: dimension numbers {dims} for shape {shape} must name disjoint, non-empty, "
                         "distinct reduction and output axes")
    batch = tuple(a for a in range(ndim) if a not in red and a not in out)

    def size(axes: tuple[int, ...]) -> int:
        return math.prod(shape[a] for a in axes)

    return _Layout(batch + red + out, size(batch), size(red), size(out))


class _Slot:
    """Holds one leaf's dimension numbers (or None) while a spec is broadcast over the updates."""

    __slots__ = ("dims",)

    def __init__(self, dims: Any):
        self.dims = dims


def _unfreeze(x: Any) -> Any:
    return x.tree if isinstance(x, FrozenTree) else x


def _leaf_dims(spec: Any, updates: Updates, where: str) -> list[MuonDimensionNumbers | None]:
    """The dimension numbers of every leaf of ``updates`` (in ``jax.tree.leaves`` order), ``None`` for leaves
    that are not matrices. ``spec``: None (rank-2 leaves are ``(0, 1)`` matrices), one MuonDimensionNumbers for
    every leaf, a tree of them (None for non-matrices) with the structure of the params or a prefix of it, or
    a callable returning such a tree from the updates."""
    if callable(spec) and not _is_dims(spec):
        spec = spec(updates)
    spec = _unfreeze(spec)
    paths_leaves = jax.tree_util.tree_flatten_with_path(updates)[0]
    if spec is None:
        out: list[MuonDimensionNumbers | None] = []
        for path, x in paths_leaves:
            ndim = jnp.ndim(x)
            if ndim > 2:
                raise ValueError(f"{where}: the leaf at {jax.tree_util.keystr(path)} has shape {jnp.shape(x)}; "
                                 "pass weight_dimension_numbers (MuonDimensionNumbers) for leaves of rank > 2")
            out.append(MuonDimensionNumbers() if ndim == 2 else None)
        return out
    if _is_dims(spec):
        return [spec] * len(paths_leaves)
    try:
        slots = jax.tree.map(lambda d, sub: jax.tree.map(lambda _: _Slot(d), sub), spec, updates,
                             is_leaf=lambda x: x is None or _is_dims(x))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: the dimension numbers must have the structure of the params or a prefix of "
                         f"it ({err})") from None
    found = jax.tree.leaves(slots, is_leaf=lambda x: isinstance(x, _Slot))
    if len(found) != len(paths_leaves):
        raise ValueError(f"{where}: the dimension numbers do not cover every parameter")
    for s in found:
        if s.dims is not None and not _is_dims(s.dims):
            raise ValueError(f"{where}: dimension numbers must be MuonDimensionNumbers or None, got {s.dims!r}")
    return [s.dims for s in found]


# --------------------------------------------------------------------------------------------------
# The Newton-Schulz iteration on a batch of wide matrices (B, m, n), m <= n.
# --------------------------------------------------------------------------------------------------


def _mh(x: jax.Array) -> jax.Array:
    """The conjugate transpose of the last two axes."""
    return jnp.conj(jnp.swapaxes(x, -1, -2))


def _newton_schulz(x: jax.Array, coeffs: jax.Array, steps: int, preconditioning: str, eps: Any) -> jax.Array:
    """``steps`` quintic Newton-Schulz iterations on each matrix of ``x`` (B, m, n) with m <= n, in the dtype of
    ``x``; ``coeffs`` is ``(3,)`` (every iteration) or ``(steps, 3)`` (one row per iteration)."""
    rdt = jnp.finfo(x.dtype).dtype  # type: ignore[no-untyped-call]  # ml_dtypes' finfo.__new__ is unannotated
    e = tree.hyper(eps, rdt).astype(rdt)
    if preconditioning == "frobenius":
        nrm = safe_sqrt(jnp.sum(tree.abs_sq(x), axis=(-2, -1), keepdims=True))
        x = x / like(nrm + e, x)
    elif preconditioning == "spectral":
        if x.size:
            nrm = jnp.linalg.norm(x, ord=2, axis=(-2, -1), keepdims=True)
        else:
            nrm = jnp.zeros((*x.shape[:1], 1, 1), rdt)
        x = x / like(nrm + e, x)
    c = coeffs.astype(x.dtype)
    for i in range(steps):
        a_, b_, c_ = (c[i, 0], c[i, 1], c[i, 2]) if c.ndim == 2 else (c[0], c[1], c[2])
        a = x @ _mh(x)
        if i == 0 and preconditioning == "aol":
            s = jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.abs(a), axis=-1, keepdims=True), e))  # (B, m, 1), real
            s = like(s, x)
            x, a = x * s, a * s * jnp.swapaxes(s, -1, -2)
        elif i == 0 and preconditioning == "schatten":
            f = safe_sqrt(jnp.sum(tree.abs_sq(a), axis=(-2, -1), keepdims=True))
            s = like(jax.lax.rsqrt(jnp.maximum(f, e)), x)
            x, a = x * s, a * s * s
        b = b_ * a + c_ * (a @ a)
        x = a_ * x + b @ x
    return x


def _check_coeffs(coeffs: Any, where: str) -> np.ndarray:
    arr = np.asarray(coeffs, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] != 3 or (arr.ndim == 2 and arr.shape[0] == 0):
        raise ValueError(f"{where}: ns_coeffs must have shape (3,) or (n, 3), got {arr.shape}")
    return arr


def _resolve_coeffs(ns_coeffs: Any, where: str) -> Any:
    """A preset name or coefficients as a hashable tuple (of floats, or of triples)."""
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in NS_COEFFS_PRESETS:
            raise ValueError(f"{where}(ns_coeffs={ns_coeffs!r}): ns_coeffs must be one of "
                             f"{', '.join(repr(k) for k in NS_COEFFS_PRESETS)} or coefficients")
        ns_coeffs = NS_COEFFS_PRESETS[ns_coeffs]
    arr = _check_coeffs(ns_coeffs, where)
    return tuple(float(v) for v in arr) if arr.ndim == 1 else tuple(tuple(float(v) for v in row) for row in arr)


def orthogonalize_via_newton_schulz(
    x: ArrayLike,
    ns_coeffs: Sequence[float] | Sequence[Sequence[float]] | ArrayLike = MUON_NS_COEFFS,
    ns_steps: int = 5,
    preconditioning: str = "frobenius",
    eps: Scalar = 1e-8,
    dimension_numbers: MuonDimensionNumbers | None = None,
) -> jax.Array:
    """``NS(x)``: the quintic Newton-Schulz iteration that maps a matrix ``U S V^H`` to about ``U V^H``.

    With ``X_0 = x / (||x||_F + eps)`` (or the ``preconditioning`` chosen) and ``A_i = X_i X_i^H``::

        X_{i+1} = a_i X_i + (b_i A_i + c_i A_i^2) X_i,     i < ns_steps

    Jordan's coefficients leave the singular values in about [0.7, 1.2] rather than exactly 1 (see the module
    docstring for the presets and the preconditionings). ``x`` is a matrix, or a tensor with
    ``dimension_numbers`` (each batch slice orthogonalized). Computed in float32 or wider on the wide orientation
    (``x^T`` when ``x`` has more rows than columns).

    Args:
      x: the array to orthogonalize: a matrix, or any rank with ``dimension_numbers``.
      ns_coeffs: the coefficients ``(a, b, c)``, shape ``(3,)`` (every iteration) or ``(n, 3)`` (one row per
        iteration, ``ns_steps`` then ignored). Default :data:`MUON_NS_COEFFS`.
      ns_steps: the number of iterations with ``(3,)`` coefficients, ``>= 1``. Default 5.
      preconditioning: how ``X_0`` is scaled: ``'frobenius'``, ``'spectral'``, ``'aol'`` or ``'schatten'``.
        Default ``'frobenius'``.
      eps: the guard of the scaling, ``>= 0``. Default 1e-8.
      dimension_numbers: the axes forming the matrix (:class:`MuonDimensionNumbers`), or None (``x`` must be a
        matrix). Default None.

    Returns:
      ``NS(x)``, a ``jax.Array`` of the shape and dtype of ``x``.

    Raises:
      ValueError: ``x`` is not a matrix and no ``dimension_numbers`` are given
        (``orthogonalize_via_newton_schulz: x must be a matrix or dimension_numbers given, got shape (3,)``),
        an unknown ``preconditioning``, ``ns_coeffs`` of another shape, or dimension numbers that do not fit
        ``x``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> o = gradtx.contrib.orthogonalize_via_newton_schulz(jnp.array([[3.0, 0.0], [0.0, 1.0]]))
      >>> print(o)  # singular values 3 and 1 both driven towards 1
      [[0.75 0.  ]
       [0.   1.13]]
    """
    x = jnp.asarray(x)
    if dimension_numbers is None:
        if x.ndim != 2:
            raise ValueError(f"orthogonalize_via_newton_schulz: x must be a matrix or dimension_numbers given, got "
                             f"shape {x.shape}")
        dimension_numbers = MuonDimensionNumbers()
    if preconditioning not in PRECONDITIONINGS:
        raise ValueError(f"orthogonalize_via_newton_schulz(preconditioning={preconditioning!r}): preconditioning "
                         f"must be one of {', '.join(map(repr, PRECONDITIONINGS))}")
    coeffs = jnp.asarray(ns_coeffs)
    if coeffs.ndim not in (1, 2) or coeffs.shape[-1] != 3:
        raise ValueError(f"orthogonalize_via_newton_schulz: ns_coeffs must have shape (3,) or (n, 3), got "
                         f"{coeffs.shape}")
    steps = coeffs.shape[0] if coeffs.ndim == 2 else int(ns_steps)
    lay = _layout(tuple(x.shape), dimension_numbers, "orthogonalize_via_newton_schulz")
    m = _to_matrices(tree.up(x), lay)
    wide = m if lay.fan_in <= lay.fan_out else jnp.swapaxes(m, -1, -2)
    o = _newton_schulz(wide, coeffs, steps, preconditioning, eps)
    o = o if lay.fan_in <= lay.fan_out else jnp.swapaxes(o, -1, -2)
    return _from_matrices(o, lay, tuple(x.shape)).astype(x.dtype)


def _to_matrices(x: jax.Array, lay: _Layout) -> jax.Array:
    return jnp.transpose(x, lay.perm).reshape(lay.batch, lay.fan_in, lay.fan_out)


def _from_matrices(o: jax.Array, lay: _Layout, shape: tuple[int, ...]) -> jax.Array:
    permuted = tuple(shape[a] for a in lay.perm)
    return jnp.transpose(o.reshape(permuted), tuple(int(a) for a in np.argsort(lay.perm)))


def compute_muon_reshape(x: jax.Array, dim_nums: MuonDimensionNumbers) -> tuple[Any, Any]:
    """The reshape of a leaf to Muon's stack of matrices ``(batch, fan_in, fan_out)`` and its inverse.

    Axes not named by ``dim_nums`` are batch axes (moved first, in order), then the reduction axes (fan-in),
    then the output axes (fan-out).

    Args:
      x: an array of rank >= 2.
      dim_nums: its :class:`MuonDimensionNumbers` (``reduction_axis``, ``output_axis``; negative axes allowed).

    Returns:
      ``(reshape_fn, inverse_fn)``: ``reshape_fn(x)`` has shape ``(batch, fan_in, fan_out)`` and
      ``inverse_fn(reshape_fn(x))`` equals ``x``.

    Raises:
      ValueError: if ``x`` has rank < 2 or the axes are not disjoint, non-empty and distinct.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.contrib import MuonDimensionNumbers
      >>> from gradtx.contrib._muon import compute_muon_reshape
      >>> fwd, inv = compute_muon_reshape(jnp.zeros((4, 2, 3)), MuonDimensionNumbers(reduction_axis=1, output_axis=2))
      >>> fwd(jnp.zeros((4, 2, 3))).shape
      (4, 2, 3)
    """
    shape = tuple(jnp.shape(x))
    lay = _layout(shape, dim_nums, "compute_muon_reshape")
    return (lambda y: _to_matrices(y, lay)), (lambda o: _from_matrices(o, lay, shape))


_compute_muon_reshape = compute_muon_reshape  # Optax's private spelling (its tests call it)


def _orthogonalize_all(
    leaves: list[jax.Array], dims: list[MuonDimensionNumbers | None], coeffs: jax.Array, steps: int,
    preconditioning: str, eps: Any, where: str,
) -> list[jax.Array]:
    """NS of every leaf with dimension numbers; matrices of one (wide) shape and dtype run as one batch."""
    out = list(leaves)
    groups: dict[tuple[int, int, str], list[tuple[int, _Layout, bool]]] = {}
    mats: dict[int, jax.Array] = {}
    for i, (x, d) in enumerate(zip(leaves, dims)):
        if d is None:
            continue
        lay = _layout(tuple(jnp.shape(x)), d, where)
        m = _to_matrices(x, lay)
        tall = lay.fan_in > lay.fan_out
        if tall:
            m = jnp.swapaxes(m, -1, -2)
        mats[i] = m
        groups.setdefault((m.shape[1], m.shape[2], str(m.dtype)), []).append((i, lay, tall))
    for members in groups.values():
        batch = [mats[i] for i, _, _ in members]
        stacked = batch[0] if len(batch) == 1 else jnp.concatenate(batch, axis=0)
        o = _newton_schulz(stacked, coeffs, steps, preconditioning, eps)
        start = 0
        for i, lay, tall in members:
            piece = o[start:start + lay.batch]
            start += lay.batch
            if tall:
                piece = jnp.swapaxes(piece, -1, -2)
            out[i] = _from_matrices(piece, lay, tuple(jnp.shape(leaves[i])))
    return out


# --------------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------------


_SPEC = ("None, a MuonDimensionNumbers, a tree of them (None: not a matrix) or a callable returning one from the "
         "updates")
_COEFFS = "coefficients of shape (3,) or (n, 3), or a preset name ('standard', 'dion')"


def _hashable_spec(obj: Any, name: str) -> None:
    value = getattr(obj, name)
    if value is not None and not callable(value):
        object.__setattr__(obj, name, hashable_tree(value))


@pytree_class
class scale_by_muon(GradientTransformation):
    """Muon's direction: (Nesterov) momentum, bias-corrected as Optax's or not as Jordan's, orthogonalized by NS.

    Jordan et al. 2024, "Muon: An optimizer for hidden layers in neural networks" (blog post and
    ``KellerJordan/Muon``); equations in the module docstring::

        M_k = beta M_{k-1} + (1 - beta) G_k,   M_hat = bias-corrected (Nesterov) momentum,   u = NS(M_hat)

    Matrices of the same shape are orthogonalized as one batch. ``weight_dimension_numbers``: None (rank-2 leaves
    are ``(fan_in, fan_out)`` matrices, rank 0 and 1 leaves keep their momentum), a :class:`MuonDimensionNumbers`
    for every leaf, a tree of them (None for leaves that are not matrices) shaped like the params or a prefix of
    them, or a callable returning one from the updates. ``ns_coeffs`` (a ``(3,)`` triple, ``(n, 3)`` rows or a
    preset name) is static: it fixes the number of iterations; the state holds it as an array
    (``MuonState.ns_coeffs``), which is what ``update`` uses. The output points uphill and is not scaled by the
    shape: :func:`muon` follows it with :class:`scale_by_shape` and the learning rate. State: :class:`MuonState`.

    Args:
      ns_coeffs: the Newton-Schulz coefficients, shape ``(3,)`` or ``(n, 3)``, or a preset name (``'standard'``,
        ``'dion'``; static). Default :data:`MUON_NS_COEFFS`.
      ns_steps: the number of iterations with ``(3,)`` coefficients, a whole number ``>= 1`` (static).
        Default 5.
      beta: the decay of the momentum, in ``[0, 1)``. Default 0.95.
      eps: the guard of the Newton-Schulz scaling, ``>= 0``. Default 1e-8.
      mu_dtype: the dtype the momentum is stored in, a dtype or None (the parameter dtype). Default None.
      nesterov: use the Nesterov form of the momentum (keyword-only). Default True.
      adaptive: multiply ``NS(M_hat)`` by ``<M_hat, NS(M_hat)>`` (keyword-only). Default False.
      preconditioning: the scaling of ``X_0``: ``'frobenius'``, ``'spectral'``, ``'aol'`` or ``'schatten'``
        (keyword-only). Default ``'frobenius'``.
      weight_dimension_numbers: which leaves are matrices and how (see above; static, keyword-only). Default None.
      momentum_form: ``'optax'`` (``M_hat`` bias-corrected, Optax's Nesterov form) or ``'reference'`` (Keller
        Jordan's ``muon_update``: ``M_hat = M_k``, or ``beta M_k + (1 - beta) G_k`` with ``nesterov``; no bias
        correction, so ``eps`` acts on ``||M_k||_F`` as in the reference's ``X.norm() + eps``); static,
        keyword-only. Default ``'optax'``.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_muon: ns_coeffs must have shape (3,) or (n, 3), got
        (2,)`` or ``scale_by_muon(beta=1.2): beta must be in [0, 1)``; at ``update``, a leaf of rank > 2 without
        dimension numbers, or dimension numbers that do not fit the updates.
      TypeError: an option of the wrong type; at ``update``, updates whose tree does not match the state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_muon()
      >>> state = tx.init(jnp.zeros((2, 2)))
      >>> updates, state = tx.update(jnp.array([[3.0, 0.0], [0.0, 1.0]]), state)
      >>> print(updates)  # NS of the (scaled) gradient
      [[0.75 0.  ]
       [0.   1.13]]
      >>> ref = gradtx.contrib.scale_by_muon(beta=0.5, nesterov=False, ns_coeffs=(1.0, 0.0, 0.0),
      ...                                    momentum_form="reference")  # NS with (1, 0, 0) only normalises
      >>> m, _ = ref.update(jnp.array([[3.0, 4.0]]), ref.init(jnp.zeros((1, 2))))
      >>> print(m)  # (1 - beta) G / ||(1 - beta) G||
      [[0.6 0.8]]
    """

    leaf_structured = "it orthogonalizes each matrix"  # refused on a gradtx.flat.FlatTree (see GradientTransformation)

    ns_coeffs: str | Sequence[float] | Sequence[Sequence[float]] | ArrayLike = option(
        default=MUON_NS_COEFFS, accepts=_COEFFS, static=True
    )
    ns_steps: int = integer(default=5, lo=1, static=True)
    beta: Scalar = probability(default=0.95)
    eps: Scalar = non_negative(default=1e-8)
    mu_dtype: DTypeLike | None = dtype_option(default=None)
    nesterov: bool = flag(default=True, kw_only=True)
    adaptive: bool = flag(default=False, kw_only=True)
    preconditioning: str = choice(default="frobenius", choices=PRECONDITIONINGS, kw_only=True)
    weight_dimension_numbers: Any = option(default=None, accepts=_SPEC, optional=True, static=True, kw_only=True)
    momentum_form: str = choice(default="optax", choices=MOMENTUM_FORMS, kw_only=True)

    def __check_init__(self) -> None:
        object.__setattr__(self, "ns_coeffs", _resolve_coeffs(self.ns_coeffs, "scale_by_muon"))
        whole_numbers(self, "ns_steps")
        _hashable_spec(self, "weight_dimension_numbers")

    @property
    def _steps(self) -> int:
        coeffs = cast("tuple[Any, ...]", self.ns_coeffs)  # a tuple of floats or of triples after __check_init__
        return len(coeffs) if isinstance(coeffs[0], tuple) else int(self.ns_steps)

    def init(self, params: Params) -> MuonState:
        return MuonState(
            count=zero_count(),
            mu=tree.zeros_like(params, self.mu_dtype),
            ns_coeffs=jnp.asarray(self.ns_coeffs, dtype=jnp.result_type(float)),
        )

    def update(
        self, updates: Updates, state: MuonState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, MuonState]:
        del params, extra
        check_tree_match("scale_by_muon.update", state.mu, updates)
        count = safe_int32_increment(state.count)
        # The decay's exact complement and the one bias correction (gradtx.tree.ema / debias): float32's 1 - beta
        # and 1 - beta^k are off by up to 2e-7 relative, which the Newton-Schulz iteration amplifies.
        next_count = safe_int32_increment(count)

        def moment(g: Any, m: Any) -> tuple[Any, Any]:
            m = tree.wider(m, g)  # computed in the wider of the momentum's and the gradient's compute dtypes
            x = tree.Leaf(m)
            g = x.cast(g)
            new = x.ema(self.beta, m, g)
            bc = x.cast(x.debias(self.beta, count))
            if self.momentum_form == "reference":  # Jordan's muon_update: no bias correction
                return new, (x.ema(self.beta, new, g) if self.nesterov else new)
            if self.nesterov:
                bc_next = x.cast(x.debias(self.beta, next_count))
                return new, x.ema(self.beta, new / bc_next, g / bc)
            return new, new / bc

        mu, mu_hat = tree.unzip2(updates, jax.tree.map(moment, updates, state.mu))
        leaves, treedef = jax.tree.flatten(mu_hat)
        dims = _leaf_dims(_unfreeze(self.weight_dimension_numbers), updates, "scale_by_muon.update")
        ortho = _orthogonalize_all(leaves, dims, state.ns_coeffs, self._steps, self.preconditioning, self.eps,
                                   "scale_by_muon.update")
        if self.adaptive:
            ortho = [o if d is None else like(jnp.real(jnp.vdot(m, o)), o) * o
                     for m, o, d in zip(leaves, ortho, dims)]
        out = jax.tree.map(lambda g, o: o.astype(jnp.asarray(g).dtype), updates, jax.tree.unflatten(treedef, ortho))
        return out, MuonState(count=count, mu=tree.cast_like(mu, state.mu), ns_coeffs=state.ns_coeffs)


@pytree_class
class scale_by_shape(StatelessTransformation):
    """Scale each matrix update by a factor of its shape (Muon's width scaling).

    With ``fan_in`` the product of the reduction axes and ``fan_out`` of the output axes::

        u = sqrt(max(1, fan_out / fan_in)) g                          (consistent_rms None: Jordan's Muon)
        u = consistent_rms sqrt(max(fan_in, fan_out)) g               (Liu et al. 2025)

    The second is Liu et al. 2025, "Muon is Scalable for LLM Training", arXiv 2502.16982: an orthogonal update then
    has the RMS ``consistent_rms``, like AdamW's (0.2 is their value). Leaves that are not matrices pass
    unchanged. Stateless.

    Args:
      weight_dimension_numbers: which leaves are matrices and how, as in :class:`scale_by_muon` (static). Default
        None (the rank-2 leaves).
      consistent_rms: the target RMS ``>= 0``, or None (Jordan's width scaling). Default None.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_shape(consistent_rms=-1.0): consistent_rms must be
        >= 0``; at ``update``, a leaf of rank > 2 without dimension numbers.
      TypeError: an option of the wrong type.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_shape()
      >>> grads = {"w": jnp.ones((2, 8)), "b": jnp.ones(8)}
      >>> updates, state = tx.update(grads, tx.init(grads))
      >>> print(updates["w"][0, 0], updates["b"][0])  # sqrt(8 / 2) for the matrix; the vector unchanged
      2.0 1.0
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "it scales each matrix by its shape"

    weight_dimension_numbers: Any = option(default=None, accepts=_SPEC, optional=True, static=True)
    consistent_rms: Scalar | None = hyper(default=None, lo=0.0, optional=True)

    def __check_init__(self) -> None:
        _hashable_spec(self, "weight_dimension_numbers")

    def update(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, OptState]:
        del params, extra
        leaves, treedef = jax.tree.flatten(updates)
        dims = _leaf_dims(_unfreeze(self.weight_dimension_numbers), updates, "scale_by_shape.update")
        out = []
        for x, d in zip(leaves, dims):
            if d is None:
                out.append(x)
                continue
            lay = _layout(tuple(jnp.shape(x)), d, "scale_by_shape.update")
            leaf = tree.Leaf(x)
            if self.consistent_rms is None:
                s = leaf.hyper(math.sqrt(max(1.0, lay.fan_out / max(lay.fan_in, 1))))
            else:
                s = leaf.hyper(self.consistent_rms) * leaf.hyper(math.sqrt(max(lay.fan_in, lay.fan_out)))
            out.append(leaf.out(leaf.cast(s) * leaf.cast(x)))
        return jax.tree.unflatten(treedef, out), state


# --------------------------------------------------------------------------------------------------
# The recipe
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class muon_labels:
    """``params -> tree of 'muon' | 'adam'``: 'muon' for rank-2 leaves (``spec`` None) or for leaves whose
    dimension numbers are not None."""

    spec: Any = None

    def _spec(self, params: Any) -> Any:
        spec = _unfreeze(self.spec)
        return spec(params) if callable(spec) and not _is_dims(spec) else spec

    def __call__(self, params: Any) -> Any:
        spec = self._spec(params)
        if spec is None:
            return jax.tree.map(lambda x: "muon" if jnp.ndim(x) == 2 else "adam", params)
        if _is_dims(spec):
            return jax.tree.map(lambda _: "muon", params)
        return jax.tree.map(lambda d, sub: jax.tree.map(lambda _: "adam" if d is None else "muon", sub), spec, params,
                            is_leaf=lambda x: x is None or _is_dims(x))


@dataclasses.dataclass(frozen=True)
class muon_dimension_numbers(muon_labels):
    """``updates -> tree of MuonDimensionNumbers | None``: the dimension numbers of the 'muon' leaves."""

    def __call__(self, params: Any) -> Any:
        spec = self._spec(params)
        if spec is None:
            return jax.tree.map(lambda x: MuonDimensionNumbers() if jnp.ndim(x) == 2 else None, params)
        return spec


@recipe
def muon(
    learning_rate: ScalarOrSchedule,
    ns_coeffs: str | Sequence[float] | Sequence[Sequence[float]] | ArrayLike = MUON_NS_COEFFS,
    ns_steps: int = 5,
    beta: Scalar = 0.95,
    eps: Scalar = 1e-8,
    weight_decay: Scalar = 0.0,
    weight_decay_mask: MaskOrFn = None,
    mu_dtype: DTypeLike | None = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    adam_b1: Scalar = 0.9,
    adam_b2: Scalar = 0.999,
    adam_eps_root: Scalar = 0.0,
    adam_weight_decay: Scalar = 0.0,
    adam_learning_rate: ScalarOrSchedule | None = None,
    muon_weight_dimension_numbers: Any = None,
    consistent_rms: Scalar | None = None,
    momentum_form: str = "optax",
) -> partition:
    """Muon (Jordan et al. 2024) on the matrices, AdamW on every other leaf (``optax.contrib.muon``'s recipe).

    Matrices: ``chain(scale_by_muon, scale_by_shape(consistent_rms), add_decayed_weights(weight_decay,
    weight_decay_mask), scale_by_learning_rate(learning_rate))``, i.e. ``u = -lr (s NS(M_hat) + wd W)``; other
    leaves: ``adamw(adam_learning_rate or learning_rate, adam_b1, adam_b2, eps, adam_eps_root, mu_dtype,
    adam_weight_decay, nesterov=nesterov)``. Jordan et al. 2024, "Muon: An optimizer for hidden layers in neural
    networks" (blog post); equations, presets and deviations from Optax in the module docstring.

    Args:
      learning_rate: the step size of the matrices (and of the other leaves unless ``adam_learning_rate``), a
        number or a schedule of the 0-based step count.
      ns_coeffs: the Newton-Schulz coefficients, a ``(3,)`` triple, ``(n, 3)`` rows or a preset (``'standard'``,
        ``'dion'``). Default :data:`MUON_NS_COEFFS`.
      ns_steps: the number of iterations with ``(3,)`` coefficients, a whole number ``>= 1``. Default 5.
      beta: the decay of Muon's momentum, in ``[0, 1)``. Default 0.95.
      eps: the guard of the Newton-Schulz scaling and AdamW's ``eps``, ``>= 0``. Default 1e-8.
      weight_decay: the decoupled weight decay of the matrices, ``>= 0``. Default 0.
      weight_decay_mask: the matrices the weight decay applies to: None (all), a tree of bools or a function
        ``params -> such a tree``. Default None.
      mu_dtype: the dtype of both momenta, a dtype or None (the parameter dtype). Default None.
      nesterov: the Nesterov form, for Muon and AdamW (keyword-only). Default True.
      adaptive: scale ``NS(M_hat)`` by ``<M_hat, NS(M_hat)>`` (keyword-only). Default False.
      preconditioning: the scaling of ``X_0``: ``'frobenius'``, ``'spectral'``, ``'aol'`` or ``'schatten'``
        (keyword-only). Default ``'frobenius'``.
      adam_b1: AdamW's first-moment decay, in ``[0, 1)`` (keyword-only). Default 0.9.
      adam_b2: AdamW's second-moment decay, in ``[0, 1)`` (keyword-only). Default 0.999.
      adam_eps_root: AdamW's ``eps_root``, ``>= 0`` (keyword-only). Default 0.
      adam_weight_decay: AdamW's decoupled weight decay, ``>= 0`` (keyword-only). Default 0.
      adam_learning_rate: AdamW's learning rate, a number, a schedule or None (``learning_rate``; keyword-only).
        Default None.
      muon_weight_dimension_numbers: None (rank-2 leaves are matrices), a tree of :class:`MuonDimensionNumbers`
        (None: an AdamW leaf), or a callable ``params -> such a tree``; rank > 2 parameters take the Muon side
        through it (keyword-only). Default None.
      consistent_rms: :class:`scale_by_shape`'s target RMS ``>= 0``, or None (width scaling; keyword-only).
        Default None.
      momentum_form: ``'optax'`` (Optax's bias-corrected momentum; AdamW gets ``nesterov``) or ``'reference'``
        (Keller Jordan's ``KellerJordan/Muon``: no bias correction, Nesterov as ``beta M_k + (1 - beta) G_k``,
        plain AdamW without Nesterov on the other leaves); see :class:`scale_by_muon` and the module docstring
        (keyword-only). Default ``'optax'``.

    Returns:
      A ``partition`` sending the ``'muon'`` leaves to the Muon chain and the ``'adam'`` leaves to ``adamw``; its
      state is a ``PartitionState`` with one inner state per label.

    Raises:
      ValueError: an option out of range, e.g. ``muon(ns_coeffs='foo'): ns_coeffs must be one of 'standard',
        'dion' or coefficients`` or ``muon(preconditioning='x'): preconditioning must be one of 'frobenius',
        'spectral', 'aol', 'schatten'`` or ``muon(momentum_form='x'): momentum_form must be one of 'optax',
        'reference'``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.muon(learning_rate=0.1)
      >>> params = {"w": jnp.zeros((2, 2)), "b": jnp.zeros(2)}
      >>> grads = {"w": jnp.array([[3.0, 0.0], [0.0, 1.0]]), "b": jnp.array([1.0, -2.0])}
      >>> updates, state = opt.update(grads, opt.init(params), params)
      >>> print(updates["w"])  # -lr NS(M_hat)
      [[-0.075 -0.   ]
       [-0.    -0.113]]
      >>> print(updates["b"])  # AdamW's first Nesterov step
      [-0.1474  0.1474]
    """
    spec = muon_weight_dimension_numbers
    frozen = hashable_tree(spec) if spec is not None and not callable(spec) else spec
    dims = muon_dimension_numbers(frozen)
    return partition(
        {
            "muon": chain(
                scale_by_muon(_resolve_coeffs(ns_coeffs, "muon"), ns_steps, beta, eps, mu_dtype, nesterov=nesterov,
                              adaptive=adaptive, preconditioning=preconditioning, weight_dimension_numbers=dims,
                              momentum_form=momentum_form),
                scale_by_shape(dims, consistent_rms),
                add_decayed_weights(weight_decay, weight_decay_mask),
                scale_by_learning_rate(learning_rate),
            ),
            "adam": adamw(learning_rate if adam_learning_rate is None else adam_learning_rate, adam_b1, adam_b2, eps,
                          adam_eps_root, mu_dtype, adam_weight_decay,
                          nesterov=nesterov and momentum_form == "optax"),
        },
        muon_labels(frozen),
    )
