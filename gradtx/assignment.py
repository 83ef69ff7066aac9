"""The linear assignment problem, solved in JAX (Optax's ``optax.assignment``).

Given an ``n x m`` cost matrix ``C``, find ``k = min(n, m)`` pairs ``(i_t, j_t)`` with distinct rows and
distinct columns minimising ``sum_t C[i_t, j_t]``, i.e. the integer program

    minimise sum_ij C_ij X_ij  subject to  X_ij in {0, 1},  sum_i X_ij <= 1,  sum_j X_ij <= 1,
                                            sum_ij X_ij = min(n, m).

The solver is the shortest-augmenting-path form of the Hungarian algorithm (Kuhn 1955, Munkres 1957; in the
O(n^2 m) formulation with dual potentials of Jonker & Volgenant 1987, for rectangular matrices as surveyed by
Crouse 2016, *On implementing 2D rectangular assignment algorithms*). It adds the rows one at a time; for
each it runs a Dijkstra search over the columns with reduced costs ``C_ij - u_i - v_j >= 0`` until it reaches
a free column, updates the potentials ``u``, ``v`` so that the reduced costs stay non-negative and are zero on
the matching, and flips the augmenting path. Wide matrices are solved as they are, tall ones transposed.
Every loop is a ``lax`` loop over arrays of fixed shape, so both functions work under ``jit`` and ``vmap``.

    >>> import jax.numpy as jnp
    >>> from gradtx.assignment import hungarian_algorithm
    >>> cost = jnp.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    >>> i, j = hungarian_algorithm(cost)
    >>> print(cost[i, j].sum())
    5.0

Both functions return the same optimal assignment; they differ only in the order of the pairs, which follows
Optax's two functions (see their Returns sections). When several assignments are optimal (ties), the one
returned may differ from Optax's; its cost does not. Entries must be finite (``inf`` marks a forbidden pair
only when a finite assignment exists); NaN gives an unspecified assignment.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = ["base_hungarian_algorithm", "hungarian_algorithm"]


def _validate(fn: str, cost_matrix: Any) -> jax.Array:
    cost = jnp.asarray(cost_matrix)
    if cost.ndim != 2:
        raise ValueError(f"{fn}(cost_matrix of shape {cost.shape}): cost_matrix must be a 2-D array")
    if jnp.issubdtype(cost.dtype, jnp.complexfloating):
        raise ValueError(f"{fn}(cost_matrix of dtype {cost.dtype}): cost_matrix must be real")
    # the duals accumulate sums of costs: at least the default float (float64 with jax_enable_x64)
    dtype = jnp.promote_types(cost.dtype if jnp.issubdtype(cost.dtype, jnp.floating) else np.float32, float)
    return cost.astype(jnp.dtype(dtype) if jnp.dtype(dtype).itemsize >= 4 else jnp.float32)


def _solve_wide(cost: jax.Array) -> jax.Array:
    """For ``n <= m``, the column assigned to each row (an int array of length ``n``) of a min-cost matching.

    Columns are numbered from 1 inside; column 0 is a virtual column owned by the row being added, the root
    of the Dijkstra search. ``owner[j]`` is the row matched to column ``j`` (-1: free)."""
    n, m = cost.shape
    inf = jnp.asarray(jnp.inf, cost.dtype)
    padded = jnp.concatenate([jnp.zeros((n, 1), cost.dtype), cost], axis=1)  # column 0: the virtual one
    index = jnp.zeros((), int).dtype

    def add_row(row: jax.Array, carry: tuple[jax.Array, jax.Array, jax.Array]) -> Any:
        u, v, owner = carry
        owner = owner.at[0].set(row)

        def not_free(state: tuple[jax.Array, ...]) -> jax.Array:
            return state[-1] >= 0

        def relax(state: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
            u, v, seen, dist, prev, col, _ = state
            seen = seen.at[col].set(True)
            r = owner[col]
            reduced = padded[r] - u[r] - v
            unseen = ~seen
            shorter = unseen & (reduced < dist)
            dist = jnp.where(shorter, reduced, dist)
            prev = jnp.where(shorter, col, prev)
            frontier = jnp.where(unseen, dist, inf)
            nxt = jnp.argmin(frontier)
            step = frontier[nxt]
            blocked = jnp.isinf(step)  # no finite path: take any unseen column, keep the duals finite
            nxt = jnp.where(blocked, jnp.argmax(unseen), nxt)
            step = jnp.where(blocked, 0, step)
            # keep reduced costs >= 0 on the tree and exact on the matching
            u = u.at[jnp.where(seen, owner, n)].add(step, mode="drop")
            v = jnp.where(seen, v - step, v)
            dist = jnp.where(unseen, dist - step, dist)
            return u, v, seen, dist, prev, nxt, owner[nxt]

        start: tuple[jax.Array, ...] = (
            u,
            v,
            jnp.zeros(m + 1, bool),
            jnp.full(m + 1, inf),
            jnp.zeros(m + 1, index),
            jnp.zeros((), index),
            row,
        )
        u, v, _, _, prev, col, _ = jax.lax.while_loop(not_free, relax, start)

        def flip(state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
            owner, col = state
            back = prev[col]
            return owner.at[col].set(owner[back]), back

        owner, _ = jax.lax.while_loop(lambda s: s[1] != 0, flip, (owner, col))
        return u, v, owner

    u0 = jnp.zeros(n, cost.dtype)
    v0 = jnp.zeros(m + 1, cost.dtype)
    owner0 = jnp.full(m + 1, -1, index)
    _, _, owner = jax.lax.fori_loop(0, n, add_row, (u0, v0, owner0))
    rows = owner[1:]
    cols = jnp.arange(m, dtype=index)
    return jnp.zeros(n, index).at[jnp.where(rows >= 0, rows, n)].set(cols, mode="drop")


_solve = jax.jit(_solve_wide)


def _empty() -> tuple[jax.Array, jax.Array]:
    return jnp.zeros(0, int), jnp.zeros(0, int)


def _solve_checked(fn: str, cost_matrix: Any) -> tuple[int, int, jax.Array] | None:
    """Check ``cost_matrix`` for ``fn`` and solve it with fewer rows than columns: ``(n, m, found)`` with
    ``found`` the column of each row when ``n <= m``, else the row of each column (``cost_matrix.T`` solved);
    ``None`` when the matrix is empty."""
    cost = _validate(fn, cost_matrix)
    n, m = cost.shape
    if n == 0 or m == 0:
        return None
    return n, m, _solve(cost if n <= m else cost.T)


def hungarian_algorithm(cost_matrix: ArrayLike) -> tuple[jax.Array, jax.Array]:
    r"""A minimum-cost assignment of rows to columns of ``cost_matrix`` (the Hungarian algorithm).

    Solves ``min sum_t C[i_t, j_t]`` over ``min(n, m)`` pairs with distinct rows and distinct columns (see
    the module docstring for the integer program and the algorithm: shortest augmenting paths with dual
    potentials, Kuhn 1955, Jonker & Volgenant 1987, Crouse 2016). Works under ``jit`` and ``vmap``; the
    output shapes depend only on the input shape.

    Args:
      cost_matrix: a real ``n x m`` array (any of ``n``, ``m`` may be 0). Integer costs are converted to
        floating point; the duals are computed in at least the default float dtype.

    Returns:
      A pair ``(i, j)`` of integer arrays of length ``min(n, m)``: row ``i[t]`` is assigned to column ``j[t]``,
      and the optimal cost is ``cost_matrix[i, j].sum()``. The order of the pairs is Optax's: for a square
      matrix ``j = arange(n)`` (so ``i`` is the row of each column); for ``n < m`` the rows in decreasing
      order; for ``n > m`` the columns in decreasing order.

    Raises:
      ValueError: if ``cost_matrix`` is not 2-D or is complex.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.assignment import hungarian_algorithm
      >>> cost = jnp.array([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]])
      >>> i, j = hungarian_algorithm(cost)
      >>> print("cost:", cost[i, j].sum())
      cost: 15
      >>> print(i, j)
      [1 3 0] [2 1 0]
    """
    solved = _solve_checked("hungarian_algorithm", cost_matrix)
    if solved is None:
        return _empty()
    n, m, found = solved
    if n == m:  # found: the column of each row
        cols = jnp.arange(n, dtype=found.dtype)
        return jnp.zeros(n, found.dtype).at[found].set(cols), cols
    if n < m:
        rows = jnp.arange(n - 1, -1, -1, dtype=found.dtype)
        return rows, found[rows]
    cols = jnp.arange(m - 1, -1, -1, dtype=found.dtype)  # found: the row of each column
    return found[cols], cols


def base_hungarian_algorithm(cost_matrix: ArrayLike) -> tuple[jax.Array, jax.Array]:
    r"""A minimum-cost assignment of rows to columns, with the pairs in increasing row order.

    The same optimum as :func:`hungarian_algorithm` (one solver serves both; Optax has two implementations,
    of which this was the reference one), returned in the convention of ``scipy.optimize.
    linear_sum_assignment``: rows sorted increasingly.

    Args:
      cost_matrix: a real ``n x m`` array (any of ``n``, ``m`` may be 0).

    Returns:
      A pair ``(i, j)`` of integer arrays of length ``min(n, m)`` with ``i`` increasing: row ``i[t]`` is
      assigned to column ``j[t]``, and the optimal cost is ``cost_matrix[i, j].sum()``. For ``n <= m``,
      ``i = arange(n)``.

    Raises:
      ValueError: if ``cost_matrix`` is not 2-D or is complex.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.assignment import base_hungarian_algorithm
      >>> i, j = base_hungarian_algorithm(jnp.array([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]]))
      >>> print(i, j)  # the pairs of hungarian_algorithm's example, by increasing row
      [0 1 3] [0 2 1]
    """
    solved = _solve_checked("base_hungarian_algorithm", cost_matrix)
    if solved is None:
        return _empty()
    n, m, found = solved
    if n <= m:  # found: the column of each row
        return jnp.arange(n, dtype=found.dtype), found
    order = jnp.argsort(found)  # found: the row of each column
    return found[order], order.astype(found.dtype)
