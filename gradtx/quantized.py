"""8-bit optimizer state: block-wise dynamic quantization of any transformation's moments.

An Adam step keeps two float32 moments, 8 bytes per parameter. Dettmers et al. 2022 ("8-bit Optimizers via
Block-wise Quantization", ICLR 2022, arXiv:2110.02861; bitsandbytes' ``Adam8bit``/``AdamW8bit``) store each
moment as one byte per element plus one float32 scale per block of ``B`` elements, ``2 + 8 / B`` bytes per
parameter (2.03 at ``B = 256``), and recover float32 Adam's results in language and vision training.

The scheme, per state leaf (:func:`quantize_blockwise`, :func:`dequantize_blockwise`)::

    x (n floats)  ->  blocks of B elements (the last one zero-padded)
    s_b = max |x_i| over block b                          (one float32 scale per block)
    code_i = argmin_k |Q[k] - x_i / s_b|                  (a byte: the nearest of the 256 values of Q)
    x_i ~ Q[code_i] * s_b                                 (dequantized)

``Q`` is the paper's *dynamic* quantization map (:func:`dynamic_map`): a value is written as a sign, a
decimal exponent and a linear fraction, so the 256 codes cover seven decades (from 1e-7 to 1 of the block's
largest magnitude) with a relative error of a few per cent in every decade, where a linear map would round
every value below ``s_b / 256`` to 0. A block whose values are all ``>= 0`` (a second moment) uses the
*unsigned* map, whose sign bit becomes one more fraction bit (twice the resolution); other blocks use the
signed map. The choice is made per block from the data and recorded in the sign of the block's scale
(negative: signed map), so no field of an optimizer needs to be declared non-negative. Block-wise scales
isolate outliers: one large value coarsens only its own block (the paper's argument against one scale per
tensor).

:class:`quantized_state` wraps any transformation: its state is stored with every floating leaf of at least
``min_size`` elements quantized (a :class:`QuantizedArray`), and ``update`` dequantizes, runs the inner
update in float32, and quantizes the new state. Counters, keys, small leaves and complex leaves are kept as
they are. The paper's "stable embedding" is a model change (a layer norm and Xavier init for embeddings) plus
32-bit optimizer state for the embedding (bitsandbytes' ``StableEmbedding``); the optimizer part is a
``partition``::

    gradtx.partition({"float32": gradtx.adamw(1e-3), "8bit": gradtx.quantized_state(gradtx.adamw(1e-3))},
                     {"embed": "float32", "w": "8bit", ...})

What is *not* here: the embedding layer itself (a model-side module) and fused 8-bit kernels (the step
dequantizes into float32 temporaries inside the compiled program; memory between steps is what shrinks).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx.base import GradientTransformation, OptState, Params, TransformationLike, Updates, as_transformation
from gradtx.fields import integer, option, pytree_class

__all__ = [
    "QuantizedArray",
    "QuantizedStateState",
    "dequantize_blockwise",
    "dynamic_map",
    "quantize_blockwise",
    "quantized_state",
]

_DECADES = 7  # the dynamic map covers magnitudes from 1e-7 to 1 (of the block's largest)


@functools.cache
def _dynamic_map_np(signed: bool) -> np.ndarray:
    # Per decade [10^(d-7), 10^(d-6)) for d = 0..6, a linear grid of fractions in (0.1, 1]: the higher the
    # decade, the more of the code space it gets (2^d values signed, 2^(d+1) unsigned: one bit is freed by the
    # sign). Values are the midpoints of the grid's cells, so each code stands for its cell's centre.
    values = [0.0, 1.0]
    for d in range(_DECADES):
        count = 2 ** d if signed else 2 ** (d + 1)
        edges = np.linspace(0.1, 1.0, count + 1)
        mids = (edges[:-1] + edges[1:]) / 2 * 10.0 ** (d - _DECADES + 1)
        values.extend(mids)
        if signed:
            values.extend(-mids)
    out = np.sort(np.asarray(values, np.float64))
    assert out.size == 256, out.size
    return out


def dynamic_map(signed: bool = True) -> jax.Array:
    """The 256 values of Dettmers et al.'s dynamic quantization map, sorted, in ``[-1, 1]`` (``[0, 1]`` unsigned).

    Each non-zero value is ``sign * 10^-e * f``: a decimal exponent ``e`` in 0..6 and a linear fraction ``f``
    in ``(0.1, 1)`` (the midpoints of a uniform grid, finer for larger magnitudes: ``2^(6-e)`` fractions per
    decade signed, twice as many unsigned). ``0`` and ``1`` (and ``-1`` signed) are exact. Relative spacing:
    about 3 % near 1, 1/2 near 1e-7 (the smallest non-zero magnitudes, ``5.5e-8`` and ``2.75e-8``).

    Dettmers et al. 2022, "8-bit Optimizers via Block-wise Quantization" (arXiv:2110.02861), section 2
    (dynamic tree quantization; the unsigned variant for the second moment).

    Args:
      signed: the signed map (for values of either sign; default True) or the unsigned one (values ``>= 0``).

    Returns:
      A float32 array of 256 increasing values.

    Examples:
      >>> import gradtx
      >>> q = gradtx.quantized.dynamic_map(signed=True)
      >>> q.shape, float(q[0]), float(q[-1]), int((q == 0).sum())
      ((256,), -1.0, 1.0, 1)
      >>> float(gradtx.quantized.dynamic_map(signed=False)[0])
      0.0
    """
    return jnp.asarray(_dynamic_map_np(bool(signed)), jnp.float32)


# The map is regular, so codes are computed, not searched. With c = 1 (signed) or 2 (unsigned), decade d = 0..6
# holds the magnitudes [lo, 10 lo), lo = 10^(d-7), in n_d = c 2^d cells of width w = 9 lo / n_d, and the
# magnitude index (among [0, the magnitudes, 1]) of cell k of decade d is 1 + c (2^d - 1) + k. A value's nearest
# map value is the centre of its own cell or of a neighbouring one (cells of adjacent decades differ in width),
# so three candidates are compared. Elementwise multiplications and selects only: no search, no gather and no
# division (all slow on CPU); the decade's constants are chosen by comparisons.


def _decade_constants(above_edges: list[jax.Array]) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``(d, lo, 1 / lo, 2^-d)`` of each element, from the comparisons ``above_edges[i-1]`` (decade >= i)."""
    shape = above_edges[0].shape
    d = jnp.zeros(shape, jnp.float32)
    lo = jnp.full(shape, 1e-7, jnp.float32)
    inv_lo = jnp.full(shape, 1e7, jnp.float32)
    inv_p2 = jnp.ones(shape, jnp.float32)
    for i, above in enumerate(above_edges, start=1):
        d = jnp.where(above, np.float32(i), d)
        lo = jnp.where(above, np.float32(10.0 ** (i - _DECADES)), lo)
        inv_lo = jnp.where(above, np.float32(10.0 ** (_DECADES - i)), inv_lo)
        inv_p2 = jnp.where(above, np.float32(2.0**-i), inv_p2)
    return d, lo, inv_lo, inv_p2


def _magnitude_index(a: jax.Array, c: jax.Array) -> jax.Array:
    """The index among ``[0, magnitudes..., 1]`` of the map value nearest to ``a`` in ``[0, 1]`` (ties up)."""
    d, lo, inv_lo, inv_p2 = _decade_constants([a >= np.float32(10.0 ** (i - _DECADES)) for i in range(1, _DECADES)])
    n = c / inv_p2
    w = 9.0 * lo * inv_p2 / c  # c is 1 or 2: exact
    k = jnp.clip(jnp.floor((a * inv_lo - 1.0) * n * np.float32(1 / 9)), 0.0, n - 1.0)
    mid = lo + (k + 0.5) * w
    below = jnp.where(k == 0, jnp.where(d == 0, 0.0, lo - 0.1 * w), mid - w)  # the previous decade's top centre
    above = jnp.where(k == n - 1, jnp.where(d == _DECADES - 1, 1.0, 10.0 * lo + 2.5 * w), mid + w)  # the next's
    j = 1.0 + (n - c) + k
    dm, db, da = jnp.abs(a - mid), a - below, above - a
    return jnp.where(db < jnp.minimum(dm, da), j - 1.0, jnp.where(da <= dm, j + 1.0, j))


def _magnitude_value(j: jax.Array, c: jax.Array) -> jax.Array:
    """The map magnitude of index ``j`` (a float) for ``c`` = 1 (signed) or 2 (unsigned)."""
    _, lo, _, inv_p2 = _decade_constants([j >= 1.0 + c * (2.0**i - 1.0) for i in range(1, _DECADES)])
    n = c / inv_p2
    k = j - 1.0 - (n - c)
    value = lo + (k + 0.5) * (9.0 * lo * inv_p2 / c)
    top = 1.0 + c * (2.0**_DECADES - 1.0)  # 128 signed, 255 unsigned: the exact 1
    return jnp.where(j == 0, 0.0, jnp.where(j >= top, 1.0, value))


def quantize_blockwise(x: jax.Array, block_size: int = 256) -> tuple[jax.Array, jax.Array]:
    """``x`` as one byte per element and one float32 scale per block: ``(codes, scales)``.

    ``x`` is raveled and cut into blocks of ``block_size`` (the last zero-padded). Per block ``b`` the scale
    is ``s_b = max |x|`` and each element's code is the index of the value of :func:`dynamic_map` nearest to
    ``x / s_b`` (computed arithmetically from the map's regular layout, without a search): the unsigned map
    when the block has no negative value (the scale is stored as ``+s_b``), else the signed map (stored as
    ``-s_b``). An all-zero block has scale 0 and the code of 0. Non-finite values are not supported (a NaN or
    infinity makes its block's scale non-finite), nor are magnitudes above ``2^126`` (8.5e37: XLA on CPU
    divides by the block's scale through its reciprocal, which is then subnormal and flushed to 0); subnormal
    numbers count as 0 where the backend flushes them (XLA on CPU).

    Args:
      x: a real floating array (any shape; computed in float32).
      block_size: elements per block, ``>= 1``. Default 256.

    Returns:
      ``codes``: uint8 of shape ``(n,)`` with ``n = x.size``; ``scales``: float32 of shape ``(ceil(n /
      block_size),)``, signed as above.

    Raises:
      ValueError: ``block_size`` is not a positive integer.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.quantized import dequantize_blockwise, quantize_blockwise
      >>> codes, scales = quantize_blockwise(jnp.array([0.5, -2.0, 1e-3, 4.0]), block_size=2)
      >>> codes.dtype, scales  # block 0 has a negative value (signed map), block 1 not
      (dtype('uint8'), Array([-2.,  4.], dtype=float32))
      >>> print(dequantize_blockwise(codes, scales, (4,), jnp.float32, block_size=2))  # -2: -0.993 * 2
      [ 4.9531251e-01 -1.9859376e+00  9.6249999e-04  4.0000000e+00]
    """
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"quantize_blockwise(block_size={block_size!r}): block_size must be an integer >= 1")
    flat = jnp.ravel(jnp.asarray(x)).astype(jnp.float32)
    n = flat.size
    nb = -(-n // block_size)
    blocks = jnp.pad(flat, (0, nb * block_size - n)).reshape(nb, block_size)
    absmax = jnp.max(jnp.abs(blocks), axis=1)
    signed = jnp.any(blocks < 0, axis=1)
    safe = jnp.where(absmax > 0, absmax, 1.0)[:, None]
    c = jnp.where(signed, 1.0, 2.0)[:, None]
    j = _magnitude_index(jnp.minimum(jnp.abs(blocks) / safe, 1.0), c)
    # the signed map, sorted: 127 negatives, 0 at 127, the positives, 1 at 255 (no -1: negatives stop at 127)
    code = jnp.where(signed[:, None], jnp.where(blocks < 0, 127.0 - jnp.minimum(j, 127.0), 127.0 + j), j)
    scales = jnp.where(signed, -absmax, absmax)
    return code.astype(jnp.uint8).reshape(-1)[:n], scales


def dequantize_blockwise(
    codes: jax.Array, scales: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32, block_size: int = 256
) -> jax.Array:
    """The array that :func:`quantize_blockwise` encoded: ``Q[code] * |s_b|`` per element, reshaped.

    A negative scale selects the signed map for its block, a non-negative one the unsigned map.

    Args:
      codes: uint8 codes of shape ``(n,)``.
      scales: float32 scales, one per block (signed as :func:`quantize_blockwise` stores them).
      shape: the shape of the result (``prod(shape) == n``).
      dtype: the dtype of the result. Default float32.
      block_size: the block size ``codes`` and ``scales`` were made with. Default 256.

    Returns:
      An array of ``shape`` and ``dtype``.

    Raises:
      ValueError: ``shape`` does not hold ``n`` elements, or ``scales`` has not ``ceil(n / block_size)``
        entries.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.quantized import dequantize_blockwise, quantize_blockwise
      >>> x = jnp.array([[1.0, 0.25], [0.0, 3.0]])
      >>> print(dequantize_blockwise(*quantize_blockwise(x, block_size=2), x.shape, block_size=2))
      [[1.        0.2511719]
       [0.        3.       ]]
    """
    n = int(codes.shape[0])
    if int(np.prod(shape, dtype=np.int64)) != n:
        raise ValueError(f"dequantize_blockwise(shape={shape!r}): shape must hold the {n} codes given")
    nb = -(-n // block_size)
    if tuple(scales.shape) != (nb,):
        raise ValueError(f"dequantize_blockwise(block_size={block_size}): {n} codes need {nb} scales, "
                         f"got shape {tuple(scales.shape)}")
    blocks = jnp.pad(codes, (0, nb * block_size - n)).reshape(nb, block_size).astype(jnp.float32)
    signed = (scales < 0)[:, None]
    c = jnp.where(signed, 1.0, 2.0)
    j = jnp.where(signed, jnp.abs(blocks - 127.0), blocks)
    sign = jnp.where(signed & (blocks < 127.0), -1.0, 1.0)
    vals = sign * _magnitude_value(j, c) * jnp.abs(scales)[:, None]
    return vals.reshape(-1)[:n].reshape(shape).astype(dtype)


@pytree_class
class QuantizedArray:
    """A floating array stored block-wise in 8 bits (see :func:`quantize_blockwise`); a pytree.

    Its leaves are ``codes`` (uint8, one per element) and ``scales`` (float32, one per block); the original
    ``shape`` and ``dtype`` are static. :meth:`dequantize` gives the array back (to the map's precision).

    Args:
      codes: uint8 codes, shape ``(n,)``.
      scales: float32 block scales (negative: the block uses the signed map).
      shape: the original shape (static).
      dtype: the original dtype (static).
      block_size: elements per block (static). Default 256.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.quantized import QuantizedArray
      >>> qa = QuantizedArray.quantize(jnp.linspace(-1.0, 1.0, 512), block_size=256)
      >>> qa.codes.shape, qa.scales.shape, qa.nbytes  # 512 bytes of codes + 2 float32 scales
      ((512,), (2,), 520)
      >>> float(abs(qa.dequantize() - jnp.linspace(-1.0, 1.0, 512)).max()) < 0.02
      True
    """

    codes: Any = option(accepts="uint8 codes")
    scales: Any = option(accepts="float32 block scales")
    shape: tuple[int, ...] = option(accepts="a shape (a tuple of ints)", static=True)
    dtype: Any = option(accepts="a floating dtype", static=True)
    block_size: int = integer(default=256, lo=1, static=True)

    @classmethod
    def quantize(cls, x: jax.Array, block_size: int = 256) -> QuantizedArray:
        """``x`` quantized block-wise (:func:`quantize_blockwise`), remembering its shape and dtype."""
        codes, scales = quantize_blockwise(x, block_size)
        return cls(codes, scales, tuple(int(d) for d in jnp.shape(x)), np.dtype(jnp.result_type(x)), block_size)

    def dequantize(self) -> jax.Array:
        """The array, dequantized (:func:`dequantize_blockwise`) to its original shape and dtype."""
        return dequantize_blockwise(self.codes, self.scales, self.shape, self.dtype, self.block_size)

    @property
    def nbytes(self) -> int:
        """Bytes held: one per code plus four per scale."""
        return int(np.prod(self.codes.shape)) + 4 * int(np.prod(self.scales.shape))

    def __repr__(self) -> str:
        return f"QuantizedArray({np.dtype(self.dtype).name}{list(self.shape)}, 8-bit)"


def _is_q(x: Any) -> bool:
    return isinstance(x, QuantizedArray)


class QuantizedStateState(NamedTuple):
    """The state of :class:`quantized_state`: the inner state with its large floating leaves quantized.

    Attributes:
      inner_state: the inner transformation's state, each floating leaf of ``>= min_size`` elements held as a
        :class:`QuantizedArray`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.quantized_state(gradtx.adam(1e-3), min_size=0).init({"w": jnp.zeros(300)})
      >>> state.inner_state[0].mu["w"]
      QuantizedArray(float32[300], 8-bit)
    """

    inner_state: OptState


@pytree_class
class quantized_state(GradientTransformation):
    """Keep ``inner``'s state in 8 bits: block-wise dynamic quantization (Dettmers et al. 2022).

    Every real floating leaf of ``inner``'s state with at least ``min_size`` elements (Adam's ``mu`` and
    ``nu``, a momentum trace, ...) is stored as a :class:`QuantizedArray`: one byte per element and one
    float32 scale per ``block_size`` elements (see the module :mod:`gradtx.quantized`). Each ``update``
    dequantizes the state to float32, runs ``inner.update``, and quantizes the new state::

        state_t = Quant(inner.update(g_t, Dequant(state_{t-1}), params)[1])

    so the moments carry the map's rounding (a few per cent relative, per element, in each decade of the
    block's range) from step to step, as in the paper. Smaller leaves, integer counters, keys and complex
    leaves are stored unchanged. The updates returned are ``inner``'s, computed from the dequantized state.

    Memory: Adam's state drops from 8 bytes per parameter to ``2 + 8 / block_size`` (2.03 at 256). The
    paper's recommended setting for large models is ``block_size=2048``; 256 is more accurate for small
    blocks of mixed magnitude. ``min_size`` follows bitsandbytes' ``min_8bit_size`` (4096): small tensors
    (biases, norms) stay float32, which costs little and keeps their statistics exact.

    Dettmers, Lewis, Shleifer and Zettlemoyer 2022, "8-bit Optimizers via Block-wise Quantization" (ICLR 2022,
    arXiv:2110.02861).

    Args:
      inner: the transformation whose state is quantized (anything with ``init`` and ``update``; Adam-family
        blocks and recipes, momentum, Lion, ...).
      block_size: elements per block, ``>= 1`` (static). Default 256.
      min_size: quantize leaves with at least this many elements, ``>= 0`` (static). Default 4096.

    Returns:
      A ``GradientTransformation`` whose state is ``QuantizedStateState(inner_state)``.

    Raises:
      InvalidValue: (a ``ValueError``) ``block_size < 1`` or ``min_size < 0``
        (``quantized_state(block_size=0): block_size must be an integer >= 1``).
      TypeError: ``inner`` has no ``init`` and ``update``.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.quantized_state(gradtx.adamw(1e-3), min_size=0)
      >>> params = {"w": jnp.ones(1024)}
      >>> state = opt.init(params)
      >>> updates, state = opt.update({"w": jnp.full(1024, 0.5)}, state, params)
      >>> print(updates["w"][:2])  # Adam's first step, -lr * sign(g), minus the weight decay lr * wd * p
      [-0.0010001 -0.0010001]
      >>> sum(x.nbytes for x in jax.tree.leaves(state)) / 1024  # mu, nu: 1 byte + 4 per 256; the count
      2.035...
    """

    inner: TransformationLike = option(accepts="a transformation (anything with init and update)")
    block_size: int = integer(default=256, lo=1, static=True)
    min_size: int = integer(default=4096, lo=0, static=True)

    def __check_init__(self) -> None:
        object.__setattr__(self, "inner", as_transformation(self.inner, "quantized_state"))

    def _wanted(self, x: Any) -> bool:
        dt = getattr(x, "dtype", None)
        return (
            dt is not None
            and jnp.issubdtype(dt, jnp.floating)
            and int(np.prod(jnp.shape(x), dtype=np.int64)) >= max(self.min_size, 1)
        )

    def _pack(self, state: OptState) -> OptState:
        return jax.tree.map(lambda x: QuantizedArray.quantize(x, self.block_size) if self._wanted(x) else x, state)

    def init(self, params: Params) -> QuantizedStateState:
        return QuantizedStateState(inner_state=self._pack(self.inner.init(params)))

    def update(
        self, updates: Updates, state: QuantizedStateState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, QuantizedStateState]:
        full = jax.tree.map(lambda x: x.dequantize() if _is_q(x) else x, state.inner_state, is_leaf=_is_q)
        out, inner_state = self.inner.update(updates, full, params, **extra)
        return out, QuantizedStateState(inner_state=self._pack(inner_state))
