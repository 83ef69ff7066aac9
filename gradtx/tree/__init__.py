"""Pytree arithmetic shared by the blocks: sums, norms, moments, bias correction, casts, leaf precision.

Two modules: :mod:`gradtx.tree.precision` (compute dtypes, :class:`Leaf`, decay rates and moments) and
:mod:`gradtx.tree.ops` (arithmetic, construction, reductions, access); every name is answered here.

Precision policy: every function that mixes a hyperparameter with an array computes in
``compute_dtype(array.dtype)``, which is the array's dtype promoted to at least float32 (complex stays
complex). Hyperparameters are therefore never rounded to bfloat16 (``0.999`` would become ``1.0``).
Functions that produce *state* (``update_moment`` and friends) cast the result back to the dtype the state
is stored in; functions that produce intermediates (``bias_correction``) return the compute dtype, and the
block casts its final output to the dtype of the updates it received.

Decay rates: :func:`complement` forms ``1 - decay`` before the cast (``0.001`` for ``decay = 0.999``, not
``1 - float32(0.999) = 0.00099998713``), :func:`ema` applies the decay ``1 - c`` from that complement, and
:func:`debias` is the one bias correction, ``1 - decay^k = -expm1(k log1p(-c))`` from the same complement: the
weights of an average sum to exactly its correction. Every block of core and contrib uses these three.

``None`` leaves are empty subtrees and are skipped everywhere.
"""

# Every public name of both modules is answered here (Optax's spellings shadow builtins: tree.sum, tree.max).
from gradtx.tree.ops import (
    NamedTupleKey,
    ParamsMarker,
    add,
    add_scale,
    allclose,
    batch_shape,
    cast,
    cast_like,
    clip,
    conj,
    div,
    dtype,
    full_like,
    get,
    get_all_with_path,
    global_norm,
    map_params,
    max,  # noqa: A004
    min,  # noqa: A004
    mul,
    norm,
    ones_like,
    random_like,
    real,
    scale,
    set,  # noqa: A004
    size,
    split_key_like,
    sub,
    sum,  # noqa: A004
    unwrap_random_key_data,
    unzip2,
    vdot,
    where,
    zeros_like,
)
from gradtx.tree.precision import (
    Leaf,
    abs_sq,
    bias_correction,
    compute_dtype,
    hyper,
    map_split,
    up,
    update_infinity_moment,
    update_moment,
    update_moment_per_elem_norm,
    wider,
)

# gradtx vocabulary, outside Optax's tree namespace (and __all__): re-exported explicitly.
from gradtx.tree.precision import complement as complement
from gradtx.tree.precision import debias as debias
from gradtx.tree.precision import decay_parts as decay_parts
from gradtx.tree.precision import ema as ema
from gradtx.tree.precision import like as like
from gradtx.tree.precision import widest_real_dtype as widest_real_dtype

__all__ = [
    "Leaf",
    "NamedTupleKey",
    "ParamsMarker",
    "abs_sq",
    "add",
    "add_scale",
    "allclose",
    "batch_shape",
    "bias_correction",
    "cast",
    "cast_like",
    "clip",
    "compute_dtype",
    "conj",
    "div",
    "dtype",
    "full_like",
    "get",
    "get_all_with_path",
    "global_norm",
    "hyper",
    "map_params",
    "map_split",
    "max",
    "min",
    "mul",
    "norm",
    "ones_like",
    "random_like",
    "real",
    "scale",
    "set",
    "size",
    "split_key_like",
    "sub",
    "sum",
    "unwrap_random_key_data",
    "unzip2",
    "up",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    "vdot",
    "where",
    "wider",
    "zeros_like",
]
