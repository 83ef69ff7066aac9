"""Memory-efficient second moments: a factored estimate (Adafactor) and a cover of maxima (SM3).

Both replace Adam's per-coordinate ``nu`` by statistics that take sublinear memory:

    scale_by_factored_rms:  V_hat = R C / sum(R)  from row sums R and column sums of G^2 + eps,
                            u = g / sqrt(V_hat)                       (Shazeer & Stern 2018, arXiv 1804.04235)
    scale_by_sm3:           nu(i) = min over the slices r covering i of mu(r) + g(i)^2,
                            mu(r) = max over slice r of nu,  u = g / sqrt(nu)   (Anil et al. 2019, arXiv 1901.11150)

Both are per-leaf (the statistics of a matrix depend on its rows and columns), so they act on each
parameter array separately. Arithmetic runs in float32 or wider (``gradtx.tree``); the statistics are
stored in the parameter's (real) dtype, the output in the dtype of the incoming updates.

Zero and infinite statistics (issue 15): where ``V_hat`` (or SM3's accumulator) is 0 (``epsilon = 0`` / ``eps = 0``
and gradients that were all 0 there) the output is 0, not NaN; where a statistic overflowed (a float32 ``|g|``
above ~1.8e19: ``g^2 = inf``) the output is NaN, not a silent 0, for every coordinate whose estimate it enters
(for a factored leaf, the whole slice when a row statistic is infinite). Other values are unchanged, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    Params,
    Scalar,
    Updates,
    check_tree_match,
    safe_int32_increment,
    zero_count,
)
from gradtx.fields import (
    InvalidType,
    concrete_number,
    flag,
    function,
    hyper,
    integer,
    probability,
    pytree_class,
)
from gradtx.tree.precision import times_inverse

__all__ = ["FactoredState", "ScaleBySM3State", "scale_by_factored_rms", "scale_by_sm3"]


class FactoredState(NamedTuple):
    """The state of ``scale_by_factored_rms`` (Adafactor's second-moment statistics).

    Per parameter, a factored leaf holds its row and column statistics in ``v_row``, ``v_col`` and one zero
    in ``v``; a leaf that is not factored holds its full statistic in ``v`` and one zero in each of the others.

    Attributes:
      count: the number of updates so far, an int32 scalar.
      v_row: per parameter, ``R``: the average of ``g^2 + epsilon`` over the largest axis ``d0`` (that axis
        removed), or a 1-element placeholder.
      v_col: per parameter, ``C``: the average over the second largest axis ``d1``, or a placeholder.
      v: per parameter, the full average of ``g^2 + epsilon`` of a leaf that is not factored, or a placeholder.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_factored_rms(min_dim_size_to_factor=2)
      >>> g = jnp.array([[1.0, -2.0, 4.0], [2.0, -4.0, 8.0]])  # d0 = axis 1 (3), d1 = axis 0 (2)
      >>> _, state = tx.update(g, tx.init(g))
      >>> print(state.count, state.v_row, state.v_col, state.v)  # means of g^2 over each axis
      1 [ 7. 28.] [ 2.5 10.  40. ] [0.]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    v_row: Updates
    v_col: Updates
    v: Updates


class ScaleBySM3State(NamedTuple):
    """The state of ``scale_by_sm3``.

    Attributes:
      mu: per parameter, a list of accumulators: one vector per axis for a leaf of rank >= 2 (the maxima of
        ``nu'`` over the slices along that axis), one full-shape array for vectors and scalars.
      nu: per parameter, the momentum of the scaled updates (the last output).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_sm3()
      >>> g = jnp.array([[1.0, -2.0], [2.0, -4.0]])
      >>> _, state = tx.update(g, tx.init(g))
      >>> print(state.mu[0], state.mu[1], state.nu[0])  # row and column maxima of g^2; 0.1 sign(g)
      [ 4. 16.] [ 4. 16.] [ 0.1 -0.1]
    """

    mu: Updates
    nu: Updates


def _real_dtype(x: Any) -> np.dtype:
    """The real dtype of ``x`` (``float32`` for ``complex64``); statistics of squares are real."""
    dt = np.dtype(jnp.result_type(x))
    return np.dtype(jnp.finfo(dt).dtype) if jnp.issubdtype(dt, jnp.inexact) else dt  # type: ignore[no-untyped-call]  # jnp.finfo is unannotated


# --------------------------------------------------------------------------------------------------
# Adafactor's factored second moment.
# --------------------------------------------------------------------------------------------------


def _decay_rate_pow(i: ArrayLike, exponent: ArrayLike = 0.8) -> jax.Array:
    """Adafactor's second-moment decay ``1 - (i + 1) ** -exponent`` at the 0-based step ``i``.

    Computed in the dtype of ``exponent`` when it is a float array (float32 otherwise), so a float64
    exponent gives a float64 decay.
    """
    exponent = jnp.asarray(exponent)
    dt = exponent.dtype if jnp.issubdtype(exponent.dtype, jnp.floating) else np.dtype(np.float32)
    t = jnp.asarray(i).astype(dt) + 1
    return 1 - t ** (-exponent.astype(dt))


def _factored_dims(shape: tuple[int, ...], factored: bool, min_dim_size_to_factor: int) -> tuple[int, int] | None:
    """``(d1, d0)``: the second largest and the largest axis of ``shape``, or None if the leaf is not factored.

    A leaf is factored when ``factored`` is set, it has rank >= 2 and its second largest axis has at least
    ``min_dim_size_to_factor`` entries. Ties are broken by position (a stable sort), as Optax's argsort does.
    """
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(np.asarray(shape), kind="stable")
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


@pytree_class
class scale_by_factored_rms(GradientTransformation):
    """Divide by a factored estimate of the root mean square of past gradients (Adafactor's scaling).

    Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost" (ICML, arXiv
    1804.04235), Algorithms 4 and 5 (without the update clipping and relative step size, which are separate
    blocks). With ``k`` the 0-based step and ``beta_k = decay_rate_fn(k - step_offset, decay_rate)`` (default
    ``1 - (k - step_offset + 1) ** -decay_rate``, the paper's ``1 - t^-0.8``; 0 at the first step)::

        factored leaf (d0 = largest axis, d1 = second largest):
            R_k = beta_k R_{k-1} + (1 - beta_k) mean_{d0}(g^2 + epsilon)
            C_k = beta_k C_{k-1} + (1 - beta_k) mean_{d1}(g^2 + epsilon)
            V_hat = R_k C_k / mean_{d1}(R_k)                (= the paper's R C / (1^T R) with sums)
        other leaves:
            V_hat = v_k = beta_k v_{k-1} + (1 - beta_k) (g^2 + epsilon)
        u = g / sqrt(V_hat)

    A leaf is factored if ``factored`` and its two largest axes have at least ``min_dim_size_to_factor``
    entries; axes beyond the two largest are batch axes (each slice is factored on its own). For a rank-1
    ``g^2`` the factored estimate is exact (so the first step is ``sign(g)``). Conventions: Optax's means
    instead of the paper's sums (the same ``V_hat``), and ``epsilon`` added to ``g^2`` before averaging. Params
    are not needed (the shapes are the updates').

    Args:
      factored: factor the statistics of leaves of rank >= 2. Default True.
      decay_rate: the exponent of the default decay schedule, a finite number >= 0. Default 0.8.
      step_offset: an integer subtracted from the step count before the decay is computed (for fine-tuning:
        the step the new phase starts at, so that its decay starts again at 0). Default 0.
      min_dim_size_to_factor: the size both factored axes must have at least, a concrete whole number >= 0
        (it decides the state's shapes). Default 128.
      epsilon: added to ``g^2`` before averaging, a finite number >= 0. Default 1e-30.
      decay_rate_fn: the decay schedule, ``(step, decay_rate) -> beta``. Default
        ``1 - (step + 1) ** -decay_rate``.

    Returns:
      A ``GradientTransformation`` whose state is ``FactoredState``.

    Raises:
      ValueError: at construction, for a value out of range, e.g. ``scale_by_factored_rms(
        min_dim_size_to_factor=1.5): min_dim_size_to_factor must be a whole number >= 0``.
      TypeError: at construction, for a hyperparameter of the wrong kind (``scale_by_factored_rms(
        decay_rate_fn=3): decay_rate_fn must be a callable, not int``, a traced ``min_dim_size_to_factor``);
        in ``update``, for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_factored_rms(min_dim_size_to_factor=2)
      >>> g = jnp.array([[1.0, -2.0, 4.0], [2.0, -4.0, 8.0]])  # g^2 has rank 1: the estimate is exact
      >>> updates, state = tx.update(g, tx.init(g))
      >>> print(updates)
      [[ 1. -1.  1.]
       [ 1. -1.  1.]]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "it factors the second moment along each leaf's two largest dimensions (per-leaf state)"

    factored: bool = flag(default=True)
    decay_rate: Scalar = hyper(default=0.8, lo=0.0, hi=math.inf, hi_open=True)  # finite, >= 0
    step_offset: int = integer(default=0)
    min_dim_size_to_factor: int = integer(default=128, lo=0, static=True)  # it decides the state's shapes
    epsilon: Scalar = hyper(default=1e-30, lo=0.0, hi=math.inf, hi_open=True)  # finite, >= 0
    # (step, decay_rate) -> decay
    decay_rate_fn: Callable[[jax.Array, jax.Array], ArrayLike] = function(default=_decay_rate_pow)

    def __check_init__(self) -> None:
        size = concrete_number(self.min_dim_size_to_factor)
        if size is None:
            self._fail("min_dim_size_to_factor", self.min_dim_size_to_factor,
                       "must be a concrete whole number >= 0 (it decides the state's shapes)", InvalidType)
        else:
            object.__setattr__(self, "min_dim_size_to_factor", int(size))

    def _dims(self, x: Any) -> tuple[int, int] | None:
        return _factored_dims(tuple(jnp.shape(x)), bool(self.factored), int(self.min_dim_size_to_factor))

    def init(self, params: Params) -> FactoredState:
        def one(p: Any) -> tuple[Any, Any, Any]:
            shape, dt = tuple(jnp.shape(p)), _real_dtype(p)
            dims = self._dims(p)
            placeholder = jnp.zeros((1,), dt)
            if dims is None:
                return placeholder, placeholder, jnp.zeros_like(p, dtype=dt)  # keeps p's sharding
            d1, d0 = dims
            row = tuple(n for a, n in enumerate(shape) if a != d0)
            col = tuple(n for a, n in enumerate(shape) if a != d1)
            return jnp.zeros(row, dt), jnp.zeros(col, dt), placeholder

        v_row, v_col, v = tree.map_split(one, 3, params)
        return FactoredState(count=zero_count(), v_row=v_row, v_col=v_col, v=v)

    def update(
        self, updates: Updates, state: FactoredState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, FactoredState]:
        del params, extra
        check_tree_match("scale_by_factored_rms.update", state.v, updates)
        step = state.count - jnp.asarray(self.step_offset).astype(jnp.int32)

        def one(g: Any, v_row: Any, v_col: Any, v: Any) -> tuple[Any, Any, Any, Any]:
            x = tree.Leaf(g)
            g32 = x.cast(g)
            decay = x.hyper(self.decay_rate_fn(step, x.hyper(self.decay_rate)))
            g_sq = x.abs_sq(g) + x.hyper(self.epsilon)
            dims = self._dims(g)
            if dims is None:
                new_v = x.store(decay * tree.up(v) + (1 - decay) * g_sq, v)
                # 0 where v == 0 (epsilon = 0, zero gradients), NaN where v overflowed; else g * rsqrt(v)
                out = times_inverse(g32, tree.up(new_v), cast=x.cast)
                return x.out(out), v_row, v_col, new_v
            d1, d0 = dims
            new_row = x.store(decay * tree.up(v_row) + (1 - decay) * jnp.mean(g_sq, axis=d0), v_row)
            new_col = x.store(decay * tree.up(v_col) + (1 - decay) * jnp.mean(g_sq, axis=d1), v_col)
            row, col = tree.up(new_row), tree.up(new_col)
            row_axis_of_d1 = d1 - 1 if d1 > d0 else d1  # where d1 sits once d0 is reduced
            row_mean = jnp.mean(row, axis=row_axis_of_d1, keepdims=True)
            # V_hat = (R / mean R) C is 0 where a row or column statistic is 0 (epsilon = 0 and gradients that were
            # all 0 there): the output is 0 there, with finite derivatives (the roots see 1). It is not finite where
            # any statistic of the slice overflowed (the row mean is inf): the output is NaN there, not 0.
            zero_row, zero_col = row == 0, col == 0
            safe_mean = jnp.where(row_mean == 0, jnp.ones_like(row_mean), row_mean)  # 0 only if every row is 0
            row_factor = jax.lax.rsqrt(jnp.where(zero_row, jnp.ones_like(row), row) / safe_mean)
            col_factor = jax.lax.rsqrt(jnp.where(zero_col, jnp.ones_like(col), col))
            factor = jnp.expand_dims(row_factor, d0) * jnp.expand_dims(col_factor, d1)
            out = g32 * x.cast(factor)
            zero = jnp.expand_dims(zero_row, d0) | jnp.expand_dims(zero_col, d1)
            broken = jnp.expand_dims(~jnp.isfinite(row_mean), d0) | jnp.expand_dims(jnp.isinf(col), d1)
            out = jnp.where(zero, jnp.zeros_like(out), jnp.where(broken, jnp.full_like(out, jnp.nan), out))
            return x.out(out), new_row, new_col, v

        out, v_row, v_col, v = tree.map_split(one, 4, updates, state.v_row, state.v_col, state.v)
        return out, FactoredState(count=safe_int32_increment(state.count), v_row=v_row, v_col=v_col, v=v)


# --------------------------------------------------------------------------------------------------
# SM3.
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_sm3(GradientTransformation):
    """SM3-II (Anil, Gupta, Koren & Singer 2019, "Memory-Efficient Adaptive Optimization", NeurIPS, arXiv
    1901.11150): Adagrad-like scaling from one accumulator per row, column, ... instead of per coordinate.

    The cover of a leaf of rank >= 2 is the set of its slices along each axis (rows, columns, ...), one
    accumulator ``mu_a`` (a vector) per axis ``a``; vectors and scalars are covered by their single
    elements (diagonal Adagrad). With ``c = 1 if b2 == 1 else 1 - b2``::

        nu'(i) = c g(i)^2 + b2 min_a mu_a(i_a)          (the accumulator of each element, from the cover)
        mu_a(j) = max_{i : i_a = j} nu'(i)               (stored for the next step)
        s = g / sqrt(nu' + eps) where nu' > 0, else 0
        nu_k = b1 nu_{k-1} + (1 - b1) s                  (momentum), u = nu_k

    ``b2 = 1`` (the default) is the paper's SM3-II; ``b1 = 0`` disables momentum. Real parameters only.
    Conventions that differ from Optax: scalar leaves are supported (Optax's ``scale_by_sm3`` fails on them)
    and hold one scalar accumulator.

    Args:
      b1: the momentum decay, in [0, 1]. Default 0.9.
      b2: the accumulator decay, in [0, 1] (1: a sum, as in the paper). Default 1.0.
      eps: added to the accumulator inside the square root, a finite number >= 0. Default 1e-8.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleBySM3State``.

    Raises:
      ValueError: at construction, for a value out of range (``scale_by_sm3(b1=2.0): b1 must be in [0, 1]``);
        in ``init``, for complex parameters (``scale_by_sm3.init: complex parameters are not supported (SM3
        needs a real order)``).
      TypeError: at construction, for a hyperparameter of the wrong kind (``None``, a string); in ``update``,
        for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_sm3()
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates)  # (1 - b1) g / |g|
      [ 0.1 -0.1]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "its accumulators are per dimension of each leaf"

    b1: Scalar = probability(default=0.9, closed=True)
    b2: Scalar = probability(default=1.0, closed=True)
    eps: Scalar = hyper(default=1e-8, lo=0.0, hi=math.inf, hi_open=True)  # finite, >= 0

    def init(self, params: Params) -> ScaleBySM3State:
        for p in jax.tree.leaves(params):
            if jnp.iscomplexobj(p):
                raise ValueError("scale_by_sm3.init: complex parameters are not supported (SM3 needs a real order)")

        def cover(p: Any) -> list[Any]:
            shape, dt = tuple(jnp.shape(p)), jnp.result_type(p)
            if len(shape) < 2:
                return [jnp.zeros_like(p, dtype=dt)]  # keeps p's sharding
            return [jnp.zeros((n,), dt) for n in shape]

        return ScaleBySM3State(mu=jax.tree.map(cover, params), nu=tree.zeros_like(params))

    def update(
        self, updates: Updates, state: ScaleBySM3State, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ScaleBySM3State]:
        del params, extra
        check_tree_match("scale_by_sm3.update", state.nu, updates)

        def one(g: Any, mu: Any, nu: Any) -> tuple[Any, list[Any], Any]:
            # Read the accumulators as leaves, not by iterating ``mu``: a framework may hand the list back as
            # another container (Flax's ``nnx.Optimizer`` stores it as an ``nnx.State`` keyed 0, 1, ...).
            mu = jax.tree.leaves(mu)
            x = tree.Leaf(g)
            g32 = x.cast(g)
            b1, b2, eps = x.hyper(self.b1), x.hyper(self.b2), x.hyper(self.eps)
            rank = g32.ndim
            if rank < 2:
                prev = tree.up(mu[0])
            else:
                expanded = [
                    jnp.reshape(tree.up(m), [1] * a + [g32.shape[a]] + [1] * (rank - a - 1)) for a, m in enumerate(mu)
                ]
                prev = expanded[0]
                for e in expanded[1:]:
                    prev = jnp.minimum(prev, e)
            coef = jnp.where(b2 == 1, jnp.ones_like(b2), 1 - b2)
            acc = coef * tree.abs_sq(g32) + b2 * prev
            # 0 where acc == 0, NaN where it overflowed (not g * 0), g * rsqrt(acc + eps) elsewhere
            scaled = times_inverse(g32, jnp.where(acc == 0, jnp.zeros_like(acc), acc + eps))
            new_nu = b1 * tree.up(nu) + (1 - b1) * scaled
            if rank < 2:
                new_mu = [acc.astype(mu[0].dtype)]
            else:
                others = [tuple(b for b in range(rank) if b != a) for a in range(rank)]
                # acc >= 0, so initial=0 changes no value and lets a zero-size leaf reduce
                new_mu = [jnp.max(acc, axis=axes, initial=0.0).astype(m.dtype) for axes, m in zip(others, mu)]
            return x.out(new_nu), new_mu, x.store(new_nu, nu)

        # ``mu`` holds a list under each leaf: map over the leaves of ``updates`` (a prefix of ``mu``).
        out, mu, nu = tree.map_split(one, 3, updates, state.mu, state.nu)
        return out, ScaleBySM3State(mu=mu, nu=nu)


