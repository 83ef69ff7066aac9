"""Precision policies: wrappers that let low-precision parameters take steps smaller than their rounding.

A bfloat16 parameter near 1 has an ulp (unit in the last place) of ``2^-7``; ``apply_updates`` rounds
``p + u`` to the nearest bfloat16, so every update ``|u| < ulp(p) / 2`` is lost, however many times it is
repeated. Plain SGD on ``f(x) = a (x - x*)^2 / 2`` with step size ``lr`` therefore stalls where
``lr a |p - x*| < ulp / 2``, at a distance ``ulp / (2 lr a)`` from the optimum (50 ulps for ``lr a = 0.01``).
Two wrappers, each around any transformation ``tx`` whose ``update`` receives the parameters, fix this
without float32 master weights::

    stochastic_rounding(tx, key)   p_new = SR(p + u): rounded up with probability equal to the fraction of the
                                   gap it lies above the lower neighbour, so E[p_new] = p + u exactly
                                   (Forsythe 1959; Gupta et al. 2015, arXiv 1502.02551)
    kahan_summation(tx)            y = u + c;  p_new = fl(p + y);  c = y - (p_new - p)
                                   the rounding error of each step is kept in ``c`` and added back on the next
                                   (Kahan 1965, "Further remarks on reducing truncation errors")

Both compute the target ``p + u`` in float32 (``gradtx.tree.compute_dtype``), choose the new parameter
``p_new`` in the parameter dtype, and return the update ``p_new - p`` in the dtype of ``tx``'s update, so that
``gradtx.apply_updates(params, updates)`` lands on ``p_new`` bit for bit. That subtraction is exact when
``p_new`` is within a factor of two of ``p`` (Sterbenz's lemma), i.e. for every step smaller than the
parameter itself, the only steps rounding can swallow. A larger step (``|p_new| > 2 |p|``, or a sign change)
lands on ``fl(p + fl(p_new - p))``, within one ulp of ``p_new``: the ordinary round-to-nearest of a large step.
``kahan_summation`` computes where ``apply_updates`` lands and puts the difference in ``c``, so it loses
nothing in either case.

Which leaves: ``stochastic_rounding`` rounds bfloat16 and float16 parameters; float32, float64, complex and
integer parameters pass through unchanged (their updates are those of ``tx``), and a narrower float (float8)
raises ``TypeError``. ``kahan_summation`` compensates every real or complex floating parameter (float32 too:
a float32 parameter loses updates below ``2^-24 |p|``); integer parameters pass through. ``None`` leaves are
skipped. Memory: ``stochastic_rounding`` keeps one PRNG key; ``kahan_summation`` one buffer per parameter, in
the parameter dtype by default (see :class:`kahan_summation` for why, and for ``compensation_dtype``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    OptState,
    Params,
    TransformationLike,
    Updates,
    as_transformation,
    check_tree_match,
    require_params,
)
from gradtx.fields import FrozenTree, dtype_option, hashable_tree, option, pytree_class
from gradtx.transforms.noise import as_key, is_int, is_raw_key, is_typed_key

__all__ = [
    "KahanSummationState",
    "StochasticRoundingState",
    "kahan_summation",
    "stochastic_round",
    "stochastic_rounding",
]

_ROUNDED = (np.dtype(jnp.bfloat16), np.dtype(jnp.float16))
_LOW_MASK = np.uint32(0xFFFF0000)


# --------------------------------------------------------------------------------------------------
# Stochastic rounding of an array.
# --------------------------------------------------------------------------------------------------


def _round_bfloat16(x: jax.Array, bits: jax.Array) -> jax.Array:
    """bfloat16 is float32 without its 16 low bits: add 16 uniform random bits to the float32 bit pattern and
    truncate. The pattern grows monotonically with ``|x|`` (a carry into the exponent gives the next binade's
    first value, past the largest finite value infinity), so ``x`` goes up in magnitude with probability
    (low bits) / 2^16, its exact fractional position in the gap: unbiased, for subnormals too."""
    pattern = jax.lax.bitcast_convert_type(x, jnp.uint32)
    noise = bits >> np.uint32(16)
    rounded = jax.lax.bitcast_convert_type((pattern + noise) & _LOW_MASK, jnp.float32).astype(jnp.bfloat16)
    return jnp.where(jnp.isnan(x), x.astype(jnp.bfloat16), rounded)  # a NaN's pattern could carry into the sign


def _round_to_neighbours(x: jax.Array, dtype: np.dtype, bits: jax.Array) -> jax.Array:
    """Any other format: ``r = RN(x)``, ``o`` its neighbour on ``x``'s side; take ``o`` with probability
    ``(x - r) / (o - r)``, against a uniform ``k 2^-23`` made of 23 random bits. Both differences are exact in
    float32 and their ratio is a multiple of ``2^-13`` for float16 normals, on the uniform's grid: unbiased
    (to ``2^-23`` of a gap for subnormals). Past the largest finite value it behaves like round-to-nearest
    (never rounds to infinity at random)."""
    r = x.astype(dtype)
    r32 = r.astype(jnp.float32)
    toward = jnp.where(r32 < x, jnp.asarray(jnp.inf, dtype), jnp.asarray(-jnp.inf, dtype))
    other = jnp.nextafter(r, toward)
    gap = other.astype(jnp.float32) - r32
    frac = (x - r32) / gap  # NaN where not finite: the comparison below is then False
    uniform = (bits >> np.uint32(9)).astype(jnp.float32) * np.float32(2.0**-23)
    return jnp.where((uniform < frac) & jnp.isfinite(gap), other, r)


def _round_with_bits(x: jax.Array, dtype: np.dtype, bits: jax.Array) -> jax.Array:
    if dtype == np.dtype(jnp.bfloat16):
        return _round_bfloat16(x, bits)
    return _round_to_neighbours(x, dtype, bits)


def _check_rounded_dtype(call: str, dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in _ROUNDED:
        raise TypeError(f"{call}: dtype {dtype.name} is not supported (bfloat16 and float16 are rounded)")
    return cast(np.dtype, dtype)


def stochastic_round(x: ArrayLike, dtype: DTypeLike, key: jax.Array) -> jax.Array:
    """``x`` rounded to ``dtype`` (bfloat16 or float16) at random, so that ``E[stochastic_round(x)] = x``.

    With ``lo <= x <= hi`` the two neighbours of ``x`` in ``dtype``, the result is ``hi`` with probability
    ``(x - lo) / (hi - lo)`` and ``lo`` otherwise (Forsythe 1959, "Reprint of a note on rounding-off errors",
    SIAM Review; Gupta et al. 2015, "Deep Learning with Limited Numerical Precision", ICML,
    arXiv:1502.02551). ``x`` is read as float32 (a wider ``x`` is first rounded to nearest float32). Values
    already representable, infinities and NaNs are returned unchanged; past the largest finite value it
    rounds as round-to-nearest does (never to infinity at random).

    Args:
      x: an array (or scalar) of real numbers.
      dtype: ``jnp.bfloat16`` or ``jnp.float16``.
      key: a ``jax.random`` key; the same key gives the same bits (one uint32 per element,
        ``jax.random.bits(key, x.shape)``).

    Returns:
      An array of ``x``'s shape and of dtype ``dtype``.

    Raises:
      TypeError: another ``dtype``: ``stochastic_round: dtype float32 is not supported (bfloat16 and float16
        are rounded)``.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from gradtx.precision import stochastic_round
      >>> x = jnp.full(10000, 1.0 + 2.0**-9)  # a quarter of the way from 1 to the next bfloat16, 1 + 2**-7
      >>> r = stochastic_round(x, jnp.bfloat16, jax.random.key(0)).astype(jnp.float32)
      >>> sorted(set(r.tolist())), round(float(r.mean()), 3)  # 1 + 2**-9 = 1.00195 on average
      ([1.0, 1.0078125], 1.002)
    """
    dtype = _check_rounded_dtype("stochastic_round", dtype)
    x32 = jnp.asarray(x).astype(jnp.float32)
    return _round_with_bits(x32, dtype, jax.random.bits(key, x32.shape, jnp.uint32))


# --------------------------------------------------------------------------------------------------
# Shared pieces.
# --------------------------------------------------------------------------------------------------


def _wide(*dtypes: Any) -> np.dtype:
    """The dtype that holds all of ``dtypes`` at float32 or wider (complex if any is), without asking JAX's
    promotion (which refuses bfloat16 with float32 under strict promotion). Kahan summation mixes three dtypes
    (parameter, update, compensation); ``gradtx.tree.wider`` answers the same question for a state beside an
    update, keeping the state's kind."""
    cds = [tree.compute_dtype(d) for d in dtypes]
    # for mypy: JAX leaves finfo (ml_dtypes.finfo) unannotated (the ignore below)
    width = max(np.dtype(jnp.finfo(d).dtype).itemsize for d in cds)  # type: ignore[no-untyped-call]
    if any(jnp.issubdtype(d, jnp.complexfloating) for d in cds):
        return np.dtype(np.complex128 if width >= 8 else np.complex64)
    return np.dtype(np.float64 if width >= 8 else np.float32)


def _landed(p: jax.Array, d: jax.Array) -> jax.Array:
    """Exactly what ``gradtx.apply_updates`` computes for one leaf: ``(p + d)`` cast to ``p``'s dtype (for
    mixed dtypes the sum in the wider one, as standard promotion does, with explicit casts)."""
    if p.dtype == d.dtype:
        return (p + d).astype(p.dtype)
    wide = _wide(p.dtype, d.dtype)
    return (p.astype(wide) + d.astype(wide)).astype(p.dtype)


def _needs_params(call: str, params: Any) -> None:
    require_params(call, params, "the new parameter is rounded from params + updates")


def _is_seed(x: Any) -> bool:
    """An int seed: a Python or NumPy int (not a bool) or a 0-d integer array."""
    if is_int(x):
        return True
    return isinstance(x, (jax.Array, np.ndarray)) and np.ndim(x) == 0 and jnp.issubdtype(x.dtype, jnp.integer)


# --------------------------------------------------------------------------------------------------
# stochastic_rounding
# --------------------------------------------------------------------------------------------------


class StochasticRoundingState(NamedTuple):
    """The state of ``stochastic_rounding``: the PRNG key of the next step, and the inner state.

    Attributes:
      rng_key: the typed PRNG key the next step's rounding draws from (split at every update).
      inner_state: the inner transformation's state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.stochastic_rounding(gradtx.sgd(0.1), key=0).init(jnp.ones(2, jnp.bfloat16))
      >>> state.rng_key.shape, state.inner_state
      ((), (EmptyState(), EmptyState()))
    """

    rng_key: jax.Array
    inner_state: OptState


@pytree_class
class stochastic_rounding(GradientTransformation):
    """Round each new bfloat16 / float16 parameter stochastically: ``p_new = SR(p + u)``, ``E[p_new] = p + u``.

    ``u`` is ``inner``'s update; the target ``p + u`` is computed in float32 and rounded by
    :func:`stochastic_round` (bfloat16: 16 random bits added below the mantissa, then truncation); the update
    returned is ``p_new - p`` (see the module docstring for when ``apply_updates`` lands on ``p_new`` exactly).
    An update far below half an ulp still moves the parameter by one ulp with the right probability, so
    training in bfloat16 follows float32 training on average instead of stalling (Gupta et al. 2015,
    arXiv 1502.02551; Zamirai et al. 2020, arXiv 2010.06192).

    Randomness: ``key`` is an int seed (``jax.random.key(seed)``), a typed key or a raw key; it is static
    (only ``init`` reads it) and the state carries the key the next step draws from. Each update splits it
    into the next state key and a step key, which draws one uint32 per rounded element, leaf after leaf in
    tree order (one generator call per step, not one per leaf): the same
    ``key`` and the same inputs give the same bits, under ``jit``, ``lax.scan`` or a Python loop, and a
    checkpointed state resumes the same stream. Parameters of other dtypes pass through unchanged.

    Args:
      inner: the transformation whose updates are applied (anything with ``init`` and ``update``); its
        ``update`` receives the params, which are required.
      key: an int seed (``jax.random.key(seed)``), a typed key or a raw ``uint32[2]`` key; static. Default 0.

    Returns:
      A ``GradientTransformation`` whose state is ``StochasticRoundingState(rng_key, inner_state)``.

    Raises:
      TypeError: ``inner`` has no ``init`` and ``update``; in ``update``, a float8 (or other sub-16-bit float)
        parameter (``stochastic_rounding.update (params): dtype ... is not supported``).
      InvalidValue: (a ``ValueError``) ``key`` is not a seed or key: ``stochastic_rounding(key='a'): key must
        be an int seed or a jax.random key``.
      ValueError: ``update`` called without params (``stochastic_rounding.update: params are required ...``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.stochastic_rounding(gradtx.sgd(1e-3), key=0)
      >>> params = jnp.ones(1000, jnp.bfloat16)  # its ulp at 1 is 2**-8 = 0.0039: an update of 0.001 is lost
      >>> updates, state = tx.update(jnp.ones(1000, jnp.bfloat16), tx.init(params), params)
      >>> new = gradtx.apply_updates(params, updates).astype(jnp.float32)
      >>> sorted(set(new.tolist())), round(float(new.mean()), 3)  # 1 - 0.001 on average
      ([0.99609375, 1.0], 0.999)
    """

    inner: TransformationLike = option(accepts="a transformation (anything with init and update)")
    key: int | jax.Array = option(default=0, accepts="an int seed or a jax.random key (typed or raw)", static=True)

    def __check_init__(self) -> None:
        object.__setattr__(self, "inner", as_transformation(self.inner, "stochastic_rounding"))
        key = self.key.tree if isinstance(self.key, FrozenTree) else self.key
        if not (_is_seed(key) or is_typed_key(key) or is_raw_key(key)):
            self._fail("key", self.key, "must be an int seed or a jax.random key")
        object.__setattr__(self, "key", hashable_tree(key))

    def init(self, params: Params) -> StochasticRoundingState:
        return StochasticRoundingState(rng_key=as_key(self.key), inner_state=self.inner.init(params))

    def update(
        self, updates: Updates, state: StochasticRoundingState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, StochasticRoundingState]:
        _needs_params("stochastic_rounding.update", params)
        out, inner_state = self.inner.update(updates, state.inner_state, params, **extra)
        check_tree_match("stochastic_rounding.update", out, params, what="params")
        rng_key, step_key = jax.random.split(state.rng_key)
        leaves, treedef = jax.tree.flatten(out)
        p_leaves = treedef.flatten_up_to(params)  # type: ignore[attr-defined]  # jaxlib ships no stubs (PyTreeDef)
        rounded: list[np.dtype | None] = []
        dt: np.dtype | None
        for p in p_leaves:
            dt = np.dtype(jnp.result_type(p))
            low = jnp.issubdtype(dt, jnp.floating) and dt.itemsize < 4
            rounded.append(_check_rounded_dtype("stochastic_rounding.update (params)", dt) if low else None)
        # One draw of uint32 bits for all rounded leaves (one generator to compile, not one per leaf).
        sizes = [int(np.prod(jnp.shape(p))) if dt is not None else 0 for p, dt in zip(p_leaves, rounded)]
        bits = jax.random.bits(step_key, (sum(sizes),), jnp.uint32) if sum(sizes) else None
        new_leaves, offset = [], 0
        for u, p, dt, n in zip(leaves, p_leaves, rounded, sizes):
            if dt is None or bits is None:
                new_leaves.append(u)
                continue
            u, p = jnp.asarray(u), jnp.asarray(p)
            p32 = p.astype(jnp.float32)
            target = p32 + u.astype(jnp.float32)
            leaf_bits = bits[offset:offset + n].reshape(p.shape)
            offset += n
            new = _round_with_bits(target, dt, leaf_bits)
            new_leaves.append((new.astype(jnp.float32) - p32).astype(u.dtype))
        new_state = StochasticRoundingState(rng_key=rng_key, inner_state=inner_state)
        return jax.tree.unflatten(treedef, new_leaves), new_state


# --------------------------------------------------------------------------------------------------
# kahan_summation
# --------------------------------------------------------------------------------------------------


class KahanSummationState(NamedTuple):
    """The state of ``kahan_summation``: the rounding error not yet applied, and the inner state.

    Attributes:
      compensation: ``c`` per parameter, the part of the updates rounding has not applied yet (a tree like
        the params, in ``compensation_dtype`` or each parameter's dtype).
      inner_state: the inner transformation's state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.kahan_summation(gradtx.sgd(0.1)).init({"w": jnp.ones(2, jnp.bfloat16)})
      >>> state.compensation["w"].dtype, state.inner_state
      (dtype(bfloat16), (EmptyState(), EmptyState()))
    """

    compensation: Updates
    inner_state: OptState


@pytree_class
class kahan_summation(GradientTransformation):
    """Compensated updates (Kahan 1965): keep what rounding dropped from each step and add it to the next.

    Per parameter, with ``u`` the update of ``inner`` and ``c`` the compensation (``c_0 = 0``), in float32 or
    wider::

        y = u + c;   p_new = fl(p + y);   c = y - (p_new - p);   update = p_new - p

    where ``fl`` rounds to the parameter dtype and ``p_new`` is exactly where ``apply_updates`` lands. So
    ``p_k + c_k = p_0 + sum_j u_j`` up to the rounding of ``c`` itself: small updates accumulate in ``c``
    until they reach half an ulp of ``p``, then move it. SGD on a quadratic converges to within one ulp of the
    optimum instead of stalling at ``ulp / (2 lr a)``.

    ``compensation_dtype`` (static) stores ``c``; ``None`` (the default) uses each parameter's dtype. Why: the
    error of a rounded addition is representable in the format that rounded it (it is below half an ulp of
    ``p``), so ``(p, c)`` is an unevaluated sum holding about twice the parameter's significand (16 bits for
    bfloat16) at 2 extra bytes per bfloat16 parameter: the classic Kahan algorithm, whose error does not grow
    with the number of steps. ``jnp.float32`` keeps ``c`` to 24 bits (``p + c`` then tracks a float32 master
    weight) at 4 bytes per parameter. Integer parameters pass through (their ``c`` stays 0).

    Kahan 1965, "Further remarks on reducing truncation errors" (Communications of the ACM 8(1)); for bfloat16
    training: Zamirai et al. 2020, "Revisiting BFloat16 Training", arXiv:2010.06192.

    Args:
      inner: the transformation whose updates are applied (anything with ``init`` and ``update``); its
        ``update`` receives the params, which are required.
      compensation_dtype: the dtype of ``c``: ``None`` (each parameter's dtype) or a floating dtype (made
        complex for complex parameters); static. Default None.

    Returns:
      A ``GradientTransformation`` whose state is ``KahanSummationState(compensation, inner_state)``.

    Raises:
      TypeError: ``inner`` has no ``init`` and ``update``; in ``update``, updates or params whose tree differs
        from the state's.
      InvalidValue: (a ``ValueError``) ``compensation_dtype`` is not a floating dtype
        (``kahan_summation(compensation_dtype=...): compensation_dtype must be None or a floating dtype (e.g.
        jnp.bfloat16)``).
      ValueError: ``update`` called without params (``kahan_summation.update: params are required ...``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.kahan_summation(gradtx.sgd(1e-3))
      >>> params = jnp.ones(2, jnp.bfloat16)  # ulp 2**-8 below 1: plain SGD would stay at 1 forever
      >>> state = tx.init(params)
      >>> for _ in range(8):
      ...     updates, state = tx.update(jnp.ones(2, jnp.bfloat16), state, params)
      ...     params = gradtx.apply_updates(params, updates)
      >>> print(params.astype(jnp.float32))  # 1 - 8 * 0.001, to bfloat16's precision
      [0.992 0.992]
    """

    inner: TransformationLike = option(accepts="a transformation (anything with init and update)")
    compensation_dtype: DTypeLike | None = dtype_option(default=None)

    def __check_init__(self) -> None:
        object.__setattr__(self, "inner", as_transformation(self.inner, "kahan_summation"))

    def _dtype(self, p: Any) -> np.dtype:
        """``c``'s dtype for parameter ``p``: its own, or ``compensation_dtype`` (made complex for complex ``p``)."""
        dt = np.dtype(jnp.result_type(p))
        if self.compensation_dtype is None:
            return dt
        if jnp.issubdtype(dt, jnp.complexfloating):
            return np.dtype(jnp.promote_types(self.compensation_dtype, jnp.complex64))
        return np.dtype(self.compensation_dtype)

    def init(self, params: Params) -> KahanSummationState:
        comp = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=self._dtype(p)), params)  # keeps p's sharding
        return KahanSummationState(compensation=comp, inner_state=self.inner.init(params))

    def update(
        self, updates: Updates, state: KahanSummationState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, KahanSummationState]:
        _needs_params("kahan_summation.update", params)
        out, inner_state = self.inner.update(updates, state.inner_state, params, **extra)
        check_tree_match("kahan_summation.update", state.compensation, out)
        check_tree_match("kahan_summation.update", state.compensation, params, what="params")

        def one(u: Any, c: Any, p: Any) -> tuple[Any, Any]:
            u, c, p = jnp.asarray(u), jnp.asarray(c), jnp.asarray(p)
            if not jnp.issubdtype(p.dtype, jnp.inexact):
                return u, c
            cdt = _wide(p.dtype, u.dtype, c.dtype)
            pc = p.astype(cdt)
            y = u.astype(cdt) + c.astype(cdt)
            d = ((pc + y).astype(p.dtype).astype(cdt) - pc).astype(u.dtype)
            new = _landed(p, d)
            return d, (y - (new.astype(cdt) - pc)).astype(c.dtype)

        out, comp = tree.unzip2(out, jax.tree.map(one, out, state.compensation, params))
        return out, KahanSummationState(compensation=comp, inner_state=inner_state)
