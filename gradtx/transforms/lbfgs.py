"""L-BFGS: multiply the updates by a limited-memory BFGS approximation of the inverse Hessian.

    scale_by_lbfgs(memory_size, scale_init_precond):   u = P_k g_k

``P_k`` is built from the last ``m = memory_size`` pairs ``s_j = w_{j+1} - w_j`` (parameters) and
``y_j = g_{j+1} - g_j`` (incoming updates, i.e. gradients) by the BFGS update of the inverse Hessian,
applied to ``gamma_k I``, and ``P_k g_k`` is computed without forming a matrix by the two-loop recursion
(Nocedal & Wright 2006, *Numerical Optimization*, Algorithm 7.4; Liu & Nocedal 1989, Math. Prog. 45).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    Params,
    Scalar,
    Updates,
    check_tree_match,
    require_params,
    safe_int32_increment,
    zero_count,
)
from gradtx.fields import InvalidType, concrete_number, flag, integer, pytree_class
from gradtx.transforms._linesearch_common import value_dtype
from gradtx.tree.ops import leaves_norm

__all__ = ["ScaleByLBFGSState", "precondition_by_lbfgs", "scale_by_lbfgs"]


class ScaleByLBFGSState(NamedTuple):
    """The state of ``scale_by_lbfgs``: the step count, the last params and updates, and the ring buffers of
    the last ``memory_size`` pairs.

    Attributes:
      count: the number of updates so far, an int32 scalar.
      params: the params of the last update (``w_{k-1}``), in the params' dtypes.
      updates: the incoming updates (gradients) of the last update (``g_{k-1}``).
      diff_params_memory: the pairs' ``s_j = w_{j+1} - w_j``, each leaf stacked along a new leading axis of
        length ``memory_size`` (slot ``j mod memory_size``).
      diff_updates_memory: the pairs' ``y_j = g_{j+1} - g_j``, stacked the same way.
      weights_memory: ``rho_j = 1 / <y_j, s_j>`` per slot, a vector of length ``memory_size`` (0 for an empty
        slot or a pair with ``<y_j, s_j> = 0``, which then has no effect), in JAX's default float dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_lbfgs(memory_size=3)
      >>> params = jnp.array([1.0, 2.0])
      >>> _, state = tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)
      >>> print(state.count, state.updates, state.diff_params_memory.shape, state.weights_memory)
      1 [3. 4.] (3, 2) [0. 0. 0.]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    params: Params
    updates: Updates
    diff_params_memory: Any
    diff_updates_memory: Any
    weights_memory: jax.Array


def _inner(a: Any, b: Any, dtype: Any) -> jax.Array:
    """``Re <a, b> = Re sum(conj(a) b)`` over all leaves, accumulated in ``dtype``."""
    total = jnp.zeros([], dtype)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        x, y = tree.up(x), tree.up(y)
        total = total + jnp.real(jnp.sum(jnp.conj(x) * y)).astype(dtype)
    return total


def _axpy(alpha: jax.Array, x: Any, y: Any) -> Any:
    """``y + alpha x`` leafwise, in the dtype of ``y`` (``alpha`` a real scalar)."""
    return jax.tree.map(lambda a, b: b + tree.hyper(alpha, b) * tree.up(a).astype(b.dtype), x, y)


def precondition_by_lbfgs(
    updates: Updates,
    diff_params_memory: Updates,
    diff_updates_memory: Updates,
    weights_memory: ArrayLike,
    identity_scale: Scalar,
    memory_idx: ArrayLike,
    dtype: DTypeLike | None = None,
) -> Updates:
    """``P u``: the L-BFGS inverse-Hessian approximation times ``updates`` (two-loop recursion; Nocedal & Wright
    2006, *Numerical Optimization*, Algorithm 7.4).

    With the memory slots visited oldest first from ``memory_idx`` (slot ``(memory_idx + i) mod m``),
    ``s_j`` = ``diff_params_memory[j]``, ``y_j`` = ``diff_updates_memory[j]``, ``rho_j`` = ``weights_memory[j]``:
    newest to oldest ``alpha_j = rho_j <s_j, q>``, ``q -= alpha_j y_j`` (from ``q = u``); then
    ``r = identity_scale * q`` and oldest to newest ``beta_j = rho_j <y_j, r>``, ``r += (alpha_j - beta_j) s_j``.
    Inner products are Hermitian (``Re sum(conj(a) b)``). :class:`scale_by_lbfgs` calls it every step; Optax's
    private ``_precondition_by_lbfgs`` has the same arguments.

    Args:
      updates: the vector ``u`` (a pytree).
      diff_params_memory: past parameter differences, each leaf stacked on a leading axis of size ``m``.
      diff_updates_memory: past gradient differences, stacked the same way.
      weights_memory: the ``m`` weights ``rho_j = 1 / <y_j, s_j>`` (0 for an empty slot).
      identity_scale: ``gamma``, the scale of the initial matrix ``gamma I``.
      memory_idx: the slot of the oldest pair, in ``[0, m)``.
      dtype: the real dtype of the inner products; default: float32, or float64 if a leaf of ``updates`` is
        64-bit.

    Returns:
      ``P u``, with the structure and dtypes of ``updates``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.transforms.lbfgs import precondition_by_lbfgs
      >>> s, y = jnp.array([[1.0, 0.0]]), jnp.array([[2.0, 0.0]])  # one pair: curvature 2 along x
      >>> precondition_by_lbfgs(jnp.array([2.0, 1.0]), s, y, jnp.array([0.5]), 1.0, 0).tolist()
      [1.0, 1.0]
    """
    cdt = value_dtype(updates) if dtype is None else dtype
    rhos = jnp.asarray(weights_memory).astype(cdt)
    m = rhos.shape[0]
    order = (jnp.asarray(memory_idx) + jnp.arange(m, dtype=jnp.asarray(memory_idx).dtype)) % m

    def pair(i: jax.Array) -> tuple[Any, Any]:
        def at(memory: Any) -> Any:
            return jax.tree.map(lambda buf: buf[i], memory)

        return at(diff_params_memory), at(diff_updates_memory)

    def newest_to_oldest(q: Any, i: jax.Array) -> tuple[Any, jax.Array]:
        s_i, y_i = pair(i)
        alpha = rhos[i] * _inner(s_i, q, cdt)
        return _axpy(-alpha, y_i, q), alpha

    def oldest_to_newest(r: Any, i_alpha: tuple[jax.Array, jax.Array]) -> tuple[Any, None]:
        i, alpha = i_alpha
        s_i, y_i = pair(i)
        beta = rhos[i] * _inner(y_i, r, cdt)
        return _axpy(alpha - beta, s_i, r), None

    q, alphas = jax.lax.scan(newest_to_oldest, updates, order, reverse=True)
    r = jax.tree.map(lambda x: tree.hyper(identity_scale, x) * x, q)
    r, _ = jax.lax.scan(oldest_to_newest, r, (order, alphas))
    return tree.cast_like(r, updates)


_precondition_by_lbfgs = precondition_by_lbfgs  # Optax's private spelling, which its own tests call


@pytree_class
class scale_by_lbfgs(GradientTransformation):
    """Precondition the updates with the L-BFGS inverse-Hessian approximation: ``u = P_k g_k``.

    Nocedal & Wright 2006, *Numerical Optimization* (2nd ed., Springer), Algorithm 7.4; Liu & Nocedal 1989,
    "On the limited memory BFGS method for large scale optimization", Math. Prog. 45. On update ``k``
    (0-based) with params ``w_k`` and incoming updates ``g_k`` (the gradient), the pair ``s = w_k - w_{k-1}``,
    ``y = g_k - g_{k-1}``, ``rho = 1 / <y, s>`` (0 if ``<y, s> = 0``) enters the memory (from ``k = 1``; the
    oldest pair leaves once ``memory_size`` are stored). With the pairs ``j = k-m .. k-1``, oldest first::

        P_{k, k-m} = gamma_k I,    P_{k, j+1} = V_j^T P_{k, j} V_j + rho_j s_j s_j^T,    V_j = I - rho_j y_j s_j^T

    and ``u = P_{k, k} g_k``, computed by the two-loop recursion (:func:`precondition_by_lbfgs`).
    ``gamma_k = <s, y> / <y, y>`` for the newest pair (1 if ``y = 0``) with ``scale_init_precond`` (Nocedal &
    Wright eq. 7.20), else 1; on the first update ``gamma_0 = min(1, 1 / ||g_0||)`` (Optax's heuristic: the
    first step has length at most 1).

    The output is the quasi-Newton direction, not yet negated: chain a negative scaling and a line search
    (see :func:`gradtx.optimizers.lbfgs.lbfgs`). ``update`` requires ``params``. Inner products are Hermitian
    (``Re sum(conj(a) b)``) so complex parameters work as in Optax. The recursion runs in float32 or wider;
    the memory is stored in the params' dtypes and ``weights_memory`` in JAX's default float dtype (float64
    under x64), as in Optax.

    Args:
      memory_size: the number ``m`` of pairs kept, a concrete whole number >= 1 (it sets the shape of the
        memory). Default 10.
      scale_init_precond: scale the initial matrix by ``gamma_k = <s, y> / <y, y>``. Default True.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByLBFGSState``.

    Raises:
      ValueError: at construction, for a ``memory_size`` out of range (``scale_by_lbfgs(memory_size=0):
        memory_size must be a whole number >= 1``); in ``update``, without params
        (``scale_by_lbfgs.update: params are required (call update(updates, state, params))``).
      TypeError: at construction, for a ``memory_size`` that is not a number (``scale_by_lbfgs(memory_size='a'):
        memory_size must be a whole number >= 1, not str``) or is traced, or a non-bool flag; in ``update``,
        for updates or params whose tree differs from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_lbfgs()
      >>> params = jnp.array([1.0, 2.0])
      >>> updates, state = tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)
      >>> print(updates)  # the first step: g / max(1, ||g||)
      [0.6 0.8]
    """

    memory_size: int = integer(default=10, lo=1, static=True)  # it sets the shape of the memory
    scale_init_precond: bool = flag(default=True)

    def __check_init__(self) -> None:
        m = concrete_number(self.memory_size)
        if m is None:
            self._fail("memory_size", self.memory_size, "must be a concrete whole number >= 1 (a shape)", InvalidType)
        else:
            object.__setattr__(self, "memory_size", int(m))

    def init(self, params: Params) -> ScaleByLBFGSState:
        m = int(self.memory_size)
        stacked = jax.tree.map(lambda p: jnp.zeros((m, *jnp.shape(p)), jnp.result_type(p)), params)
        return ScaleByLBFGSState(
            count=zero_count(),
            params=tree.zeros_like(params),
            updates=tree.zeros_like(params),
            diff_params_memory=stacked,
            diff_updates_memory=stacked,
            weights_memory=jnp.zeros([m], jax.dtypes.canonicalize_dtype(jnp.float64)),
        )

    def update(
        self, updates: Updates, state: ScaleByLBFGSState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ScaleByLBFGSState]:
        del extra
        require_params("scale_by_lbfgs.update", params)
        check_tree_match("scale_by_lbfgs.update", state.updates, updates)
        check_tree_match("scale_by_lbfgs.update", state.params, params, "params")
        m = int(self.memory_size)
        cdt = value_dtype(params)
        count = state.count
        first = count == 0

        # 1. The newest pair (zero on the first update: there is no previous point yet) enters slot k-1.
        def diff(new: Any, old: Any) -> Any:
            def one(a: Any, b: Any) -> Any:
                a, b = tree.up(a), tree.up(b)
                cd = np.promote_types(a.dtype, b.dtype)
                return jnp.where(first, jnp.zeros([], cd), a.astype(cd) - b.astype(cd))

            return jax.tree.map(one, new, old)

        s, y = diff(params, state.params), diff(updates, state.updates)
        ys = _inner(y, s, cdt)
        rho = jnp.where(ys == 0.0, 0.0, 1.0 / jnp.where(ys == 0.0, 1.0, ys))
        slot = (count - 1) % m

        def write(memory: Any, new: Any) -> Any:
            return jax.tree.map(lambda buf, x: buf.at[slot].set(x.astype(buf.dtype)), memory, new)

        s_memory, y_memory = write(state.diff_params_memory, s), write(state.diff_updates_memory, y)
        weights = state.weights_memory.at[slot].set(rho.astype(state.weights_memory.dtype))

        # 2. The initial matrix gamma I.
        if self.scale_init_precond:
            yy = _inner(y, y, cdt)
            gamma = jnp.where(yy > 0.0, ys / jnp.where(yy > 0.0, yy, 1.0), 1.0)
            # 1 / ||g|| without overflow (a float32 g of 1e20 gives 1e-20, not 1 / inf = 0)
            first_gamma = jnp.minimum(1.0, 1.0 / leaves_norm(jax.tree.leaves(updates), cdt))
            gamma = jnp.where(first, jax.lax.stop_gradient(first_gamma), gamma)
        else:
            gamma = jnp.ones([], cdt)

        # 3. The two-loop recursion over the slots, oldest (slot k mod m) to newest (slot k-1 mod m).
        r = precondition_by_lbfgs(
            jax.tree.map(tree.up, updates), s_memory, y_memory, weights.astype(cdt), gamma, count % m, cdt
        )

        new_state = ScaleByLBFGSState(
            count=safe_int32_increment(count),
            params=tree.cast_like(params, state.params),
            updates=tree.cast_like(updates, state.updates),
            diff_params_memory=s_memory,
            diff_updates_memory=y_memory,
            weights_memory=weights,
        )
        return tree.cast_like(r, updates), new_state
