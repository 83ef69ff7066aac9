"""gradtx.assignment: optimal cost equal to scipy.optimize.linear_sum_assignment's, a valid matching, and the
same index arrays (values and order) as Optax's two functions; jit, vmap, integer and forbidden costs."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize

from gradtx import assignment as ga

FNS = [
    (ga.hungarian_algorithm, optax.assignment.hungarian_algorithm),
    (ga.base_hungarian_algorithm, optax.assignment.base_hungarian_algorithm),
]


def _check_matching(cost, i, j):
    n, m = cost.shape
    r = min(n, m)
    assert i.shape == (r,) and j.shape == (r,)
    assert jnp.issubdtype(i.dtype, jnp.integer) and jnp.issubdtype(j.dtype, jnp.integer)
    i, j = np.asarray(i), np.asarray(j)
    assert len(set(i.tolist())) == r and len(set(j.tolist())) == r
    assert np.all((i >= 0) & (i < n)) and np.all((j >= 0) & (j < m))


@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (4, 4), (3, 6), (6, 3), (7, 7)])
def test_optimal_and_equal_to_optax(shape):
    rng = np.random.default_rng(sum(shape))
    cost = rng.normal(size=shape)
    ri, rj = scipy.optimize.linear_sum_assignment(cost)
    best = cost[ri, rj].sum()
    for ours, theirs in FNS:
        i, j = ours(jnp.asarray(cost))
        _check_matching(cost, i, j)
        np.testing.assert_allclose(cost[np.asarray(i), np.asarray(j)].sum(), best, rtol=1e-12, atol=1e-12)
        oi, oj = theirs(jnp.asarray(cost))  # a unique optimum: the same pairs in the same order
        np.testing.assert_array_equal(i, oi)
        np.testing.assert_array_equal(j, oj)
    bi, bj = ga.base_hungarian_algorithm(jnp.asarray(cost))
    assert np.all(np.diff(np.asarray(bi)) > 0)  # rows increasing, as scipy
    np.testing.assert_array_equal(bi, ri)
    np.testing.assert_array_equal(bj, rj)


def test_integer_costs_ties_and_docstring_example():
    cost = jnp.array([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]])
    for ours, _ in FNS:
        i, j = ours(cost)
        assert int(cost[i, j].sum()) == 15
    # many ties: every permutation of a constant matrix is optimal
    i, j = ga.hungarian_algorithm(jnp.ones((5, 5)))
    _check_matching(np.ones((5, 5)), i, j)


def test_forbidden_pairs_with_inf():
    cost = np.array([[np.inf, 1.0, 5.0], [2.0, np.inf, np.inf], [3.0, 4.0, np.inf]])
    ri, rj = scipy.optimize.linear_sum_assignment(cost)
    for ours, _ in FNS:
        i, j = ours(jnp.asarray(cost))
        assert cost[np.asarray(i), np.asarray(j)].sum() == cost[ri, rj].sum() == 11.0


def test_jit_and_vmap():
    rng = np.random.default_rng(3)
    costs = rng.normal(size=(3, 4, 5))
    for ours, _ in FNS:
        i, j = jax.jit(jax.vmap(ours))(jnp.asarray(costs))
        assert i.shape == (3, 4) and j.shape == (3, 4)
        for k in range(3):
            ri, rj = scipy.optimize.linear_sum_assignment(costs[k])
            np.testing.assert_allclose(costs[k][np.asarray(i[k]), np.asarray(j[k])].sum(), costs[k][ri, rj].sum())


@pytest.mark.parametrize("fn", [ga.hungarian_algorithm, ga.base_hungarian_algorithm])
def test_bad_input_raises(fn):
    with pytest.raises(ValueError, match=rf"{fn.__name__}\(cost_matrix of shape \(3,\)\): cost_matrix must be a 2-D"):
        fn(jnp.ones(3))
    with pytest.raises(ValueError, match="must be real"):
        fn(jnp.ones((2, 2), jnp.complex64))
