"""Tier 1: every registry entry equals its float64 NumPy reference, step by step, for 200 steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from registry import ENTRIES, flat_mask

from gradtx.testing.contract import default_params, random_like


def _stream(params, steps, seed):
    """The same pseudo-random gradients (and params) for gradtx and the reference."""
    rng = np.random.default_rng(seed)
    flat, unravel = ravel_pytree(params)
    grads = rng.normal(size=(steps, flat.size)) * rng.choice([0.01, 1.0, 30.0], size=(steps, 1))
    ps = rng.normal(size=(steps, flat.size))
    return grads, ps, unravel


def _by_path(tree):
    """``{keystr(path): float64 array}`` for every leaf, in tree order."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(k): np.asarray(v, np.float64) for k, v in flat}


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.ref is not None], ids=lambda e: e.name)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matches_reference(entry, dtype):
    params = default_params(jnp.dtype(dtype))
    steps = entry.steps
    extra = dict(entry.extra_args or {})
    grads, ps, unravel = _stream(params, steps, seed=len(entry.name))
    tx = entry.make()
    oracle = entry.ref(mask=flat_mask(params)) if entry.uses_mask else entry.ref()
    update = jax.jit(lambda t, g, s, p: t.update(g, s, p, **extra))
    state = tx.init(params)
    rtol = entry.rtol64 if dtype == "float64" else 2e-4
    for k in range(steps):
        g = jax.tree.map(lambda x: x.astype(dtype), unravel(jnp.asarray(grads[k])))
        p = jax.tree.map(lambda x: x.astype(dtype), unravel(jnp.asarray(ps[k])))
        u, state = update(tx, g, state, p)
        if entry.per_leaf:  # per-leaf maths (norms, factored moments): the reference sees {path: array}
            got_tree = oracle.step(_by_path(g), _by_path(p), **extra)
            want = np.concatenate([np.ravel(got_tree[k]) for k in _by_path(u)]) if got_tree else np.zeros(0)
            got = np.concatenate([np.ravel(v) for v in _by_path(u).values()]) if got_tree else np.zeros(0)
        else:
            got = np.asarray(ravel_pytree(u)[0], np.float64)
            want = oracle.step(np.asarray(ravel_pytree(g)[0], np.float64),
                               np.asarray(ravel_pytree(p)[0], np.float64), **extra)
        scale = max(np.max(np.abs(want)), 1e-30)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=f"{entry.name} step {k + 1}")


def test_random_like_is_deterministic():
    a, b = random_like(default_params(), 3), random_like(default_params(), 3)
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


SCHEDULES = [
    ("constant", lambda m: m.constant_schedule(0.3)),
    ("linear", lambda m: m.linear_schedule(1.0, 0.1, 100, 20)),
    ("polynomial", lambda m: m.polynomial_schedule(1.0, 0.0, 2.0, 150, 10)),
    ("exponential", lambda m: m.exponential_decay(1.0, 30, 0.5, 5, False, 0.05)),
    ("exponential(staircase)", lambda m: m.exponential_decay(2.0, 25, 0.7, 0, True)),
    ("cosine", lambda m: m.cosine_decay_schedule(1.0, 300, 0.1, 2.0)),
    ("resnet warm-up", lambda m: m.piecewise_constant_schedule(0.01, {50: 10.0, 200: 0.1})),
    ("piecewise linear", lambda m: m.piecewise_interpolate_schedule("linear", 1.0, {40: 0.5, 120: 0.1})),
    ("piecewise cosine", lambda m: m.piecewise_interpolate_schedule("cosine", 1.0, {40: 0.5, 120: 0.1})),
    ("warmup constant", lambda m: m.warmup_constant_schedule(0.0, 1.0, 30)),
    ("warmup cosine", lambda m: m.warmup_cosine_decay_schedule(0.0, 1.0, 30, 300, 0.01)),
    ("warmup exponential", lambda m: m.warmup_exponential_decay_schedule(0.0, 1.0, 30, 40, 0.5, 10, True, 0.1)),
    ("join", lambda m: m.join_schedules([m.constant_schedule(0.5), m.linear_schedule(0.5, 0.0, 100)], [60])),
    ("transformer d=512", lambda m: m.transformer_warmup_schedule(512, 100)),
    ("transformer d=64", lambda m: m.transformer_warmup_schedule(64, 40)),
    ("wsd linear", lambda m: m.warmup_stable_decay_schedule(1.0, 30, 100, 150, 0.0, 0.01, "linear")),
    ("wsd cosine", lambda m: m.warmup_stable_decay_schedule(1.0, 30, 100, 150, 0.0, 0.01, "cosine")),
    ("wsd 1-sqrt", lambda m: m.warmup_stable_decay_schedule(1.0, 0, 100, 150, 0.0, 0.0, "1-sqrt")),
]


@pytest.mark.parametrize("name,make", SCHEDULES, ids=[n for n, _ in SCHEDULES])
def test_schedule_matches_reference(name, make):
    from gradtx import schedules
    from gradtx.testing import reference

    ours, oracle = make(schedules), make(reference)
    counts = np.arange(0, 420)
    got = np.asarray(jax.jit(jax.vmap(ours))(jnp.asarray(counts)), np.float64)
    want = np.array([oracle(int(c)) for c in counts])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=name)
