"""gradtx.experimental.aggregating: Optax's ``optax.experimental.aggregating`` (aggregators of per-example
gradients, accumulation over micro-batches, running mean and variance of the gradients).

Checked against float64 NumPy formulas step by step (means, pooled sums of squared deviations, EMAs and
their bias correction) and against Optax itself on the same per-example gradients.
"""

from __future__ import annotations

import doctest
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax.experimental import aggregating as oagg

import gradtx
import gradtx.experimental
from gradtx.base import init_empty_state
from gradtx.experimental import aggregating as agg

OPTAX_NAMES = sorted(
    n
    for n in dir(oagg)
    if not n.startswith("_")
    and n not in {"Any", "NamedTuple", "Protocol", "Sequence", "base", "jax", "jnp", "math", "tree", "utils"}
)


def test_namespace_has_optaxs_17_names_and_state_fields():
    assert len(OPTAX_NAMES) == 17
    assert sorted(agg.__all__) == OPTAX_NAMES
    assert gradtx.experimental.aggregating is agg
    for name in (
        "AccumulateAvgUpdatesState",
        "PerElementMeanAndSumSqDiffGradsState",
        "PerElementMeanAndVarianceEMAState",
    ):
        assert getattr(agg, name)._fields == getattr(oagg, name)._fields


def test_docstring_examples_run():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(agg) if t.examples and t.name.startswith(agg.__name__)]
    documented = {t.name.rsplit(".", 1)[-1] for t in tests}
    aliases = {"AggregatedUpdates", "MaybeAxis", "PerElementUpdates", "AggregatorUpdateFn"}  # typing names
    callables = {n for n in agg.__all__ if not n.endswith("State")} - aliases
    assert callables <= documented, callables - documented
    for t in tests:
        assert runner.run(t).failed == 0, t.name


def _per_example(seed, steps, batch=4, shape=(3, 2)):
    return np.random.default_rng(seed).normal(size=(steps, batch, *shape))


def _close(a, b, rtol=1e-12):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=1e-14)


def test_average_and_accumulate_match_numpy_and_optax():
    g = _per_example(0, 6)
    params = jnp.zeros(g.shape[2:])
    # Per-element mean over one or several axes.
    for axis in (0, (0, 1)):
        ours = agg.average_per_element_updates(axis)
        out, _ = ours.update(g[0], ours.init(params))
        np.testing.assert_allclose(out, g[0].mean(axis=axis), rtol=1e-13)
        _close(out, oagg.average_per_element_updates(axis).update(g[0], EmptyOptax())[0])
    # Accumulation of k = 3 micro-batch means: zeros, zeros, then the mean of the window.
    for axis in (None, 0):
        ours, theirs = agg.average_incrementally_updates(axis, 3), oagg.average_incrementally_updates(axis, 3)
        assert isinstance(ours, agg.Aggregator) == isinstance(theirs, oagg.Aggregator) == (axis is not None)
        s, t = ours.init(params), theirs.init(params)
        for i in range(6):
            x = g[i] if axis == 0 else g[i].mean(0)
            out, s = ours.update(x, s)
            out_t, t = theirs.update(x, t)
            want = g[i - 2 : i + 1].mean(axis=(0, 1)) if i % 3 == 2 else np.zeros(g.shape[2:])
            np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-15)
            _close((out, s), (out_t, t))
            acc = s[1] if axis == 0 else s
            assert bool(acc.ready) == (i % 3 == 2) and int(acc.micro_step) == (i + 1) % 3
            assert acc.micro_step.dtype == jnp.int32
    one = agg.accumulate_avg_updates(1)  # the identity, with Optax's EmptyState
    assert one.init(params) == oagg.accumulate_avg_updates(1).init(params) == ()
    np.testing.assert_array_equal(one.update(g[0, 0], ())[0], g[0, 0])


class EmptyOptax(tuple):
    """A stand-in for optax.EmptyState() (an empty tuple)."""


@pytest.mark.parametrize("k", [1, 3])
def test_mean_and_sum_sq_diff_pool_exactly_over_microbatches(k):
    g = _per_example(1, 2 * k)
    params = jnp.zeros(g.shape[2:])
    ours, theirs = (
        agg.get_per_element_mean_and_sum_sq_diff_grads(0, k),
        oagg.get_per_element_mean_and_sum_sq_diff_grads(0, k),
    )
    s, t = ours.init(params), theirs.init(params)
    for i in range(2 * k):
        (mean, aux), s = ours.update(g[i], s)
        out_t, t = theirs.update(g[i], t, None)
        if i % k == k - 1:  # the pooled statistics of the k micro-batches of the window (float64 NumPy)
            window = g[i - k + 1 : i + 1].reshape(-1, *g.shape[2:])
            np.testing.assert_allclose(mean, window.mean(0), rtol=1e-12)
            np.testing.assert_allclose(aux["sum_sq_diff_grads"], ((window - window.mean(0)) ** 2).sum(0), rtol=1e-12)
            assert int(aux["sample_size"]) == k * g.shape[1]
        else:
            assert not np.any(mean) and not np.any(aux["sum_sq_diff_grads"]) and int(aux["sample_size"]) == 0
        # Optax computes the pooling factor (j - 1) B / j in float32 (int32 / int32): 1e-8 relative.
        _close(((mean, aux), s), (out_t, t), rtol=1e-7)


def test_ema_of_mean_and_variance_and_unbiased_values_step_by_step():
    g = _per_example(2, 5)
    params = jnp.zeros(g.shape[2:])
    d = 0.8
    stats = agg.get_per_element_mean_and_sum_sq_diff_grads()
    tx = agg.track_per_element_mean_and_variance_with_ema(d)
    state = tx.init(params)
    m = v = np.zeros(g.shape[2:])
    for t in range(1, 6):
        (mean, aux), _ = stats.update(g[t - 1], ())
        out, state = tx.update(mean, state, **aux)
        np.testing.assert_array_equal(out, mean)  # passes the updates through
        m = d * m + (1 - d) * g[t - 1].mean(0)
        v = d * v + (1 - d) * g[t - 1].var(0, ddof=1)
        np.testing.assert_allclose(state.mean_grads_ema, m, rtol=1e-12)
        np.testing.assert_allclose(state.variance_grads_ema, v, rtol=1e-12)
        um, uv = agg.get_unbiased_mean_and_variance_ema(({"opt": state},))
        np.testing.assert_allclose(um, m / (1 - d**t), rtol=1e-12)
        np.testing.assert_allclose(uv, v / (1 - d**t), rtol=1e-12)
    assert int(state.count) == 5 and state.count.dtype == jnp.int32
    # A constant gradient is recovered exactly in float32 (the EMA and the correction use the same decay).
    state32 = tx.init(jnp.zeros(2, jnp.float32))
    for _ in range(3):
        _, state32 = tx.update(
            jnp.full(2, 3.0, jnp.float32), state32, sum_sq_diff_grads=jnp.ones(2, jnp.float32), sample_size=2
        )
    um, uv = agg.get_unbiased_mean_and_variance_ema(state32)
    assert um.dtype == jnp.float32
    np.testing.assert_allclose(um, 3.0, rtol=2e-7)
    np.testing.assert_allclose(uv, 1.0, rtol=2e-7)
    with pytest.raises(ValueError, match="PerElementMeanAndVarianceEMAState"):
        agg.get_unbiased_mean_and_variance_ema(gradtx.sgd(0.1).init(params))
    with pytest.raises(TypeError, match=r"missing keyword argument\(s\) \['sum_sq_diff_grads', 'sample_size'\]"):
        tx.update(params, state)


def _loss(w, x, y):
    return jnp.mean(jnp.sum((x @ w - y) ** 2, -1))


@pytest.mark.parametrize("k", [1, 2])
def test_add_mean_variance_to_opt_trains_like_optax_and_like_the_full_batch(k):
    rng = np.random.default_rng(3)
    xs, ys = rng.normal(size=(8, 4, 3)), rng.normal(size=(8, 4, 2))
    w0 = rng.normal(size=(3, 2))
    ours = agg.add_mean_variance_to_opt(gradtx.sgd(0.1), 0.9, accumulation_steps=k)
    theirs = oagg.add_mean_variance_to_opt(optax.sgd(0.1), 0.9, accumulation_steps=k)
    assert isinstance(ours, agg.Aggregator)
    per_example = jax.jit(jax.vmap(jax.grad(_loss), (None, 0, 0)))
    w, wt, w_full = jnp.asarray(w0), jnp.asarray(w0), np.asarray(w0)
    s, t = ours.init(w), theirs.init(wt)
    step = jax.jit(lambda tx, g, s: tx.update(g, s))  # the transformation is a pytree argument
    for i in range(len(xs)):
        u, s = step(ours, per_example(w, xs[i : i + 1], ys[i : i + 1]), s)
        ut, t = theirs.update(per_example(wt, xs[i : i + 1], ys[i : i + 1]), t)
        w, wt = gradtx.apply_updates(w, u), optax.apply_updates(wt, ut)
        _close(
            (w, agg.get_unbiased_mean_and_variance_ema(s)), (wt, oagg.get_unbiased_mean_and_variance_ema(t)), rtol=1e-10
        )
        if i % k == k - 1:  # one SGD step on the mean gradient of the k micro-batches (float64 reference)
            x, y = xs[i - k + 1 : i + 1].reshape(-1, 3), ys[i - k + 1 : i + 1].reshape(-1, 2)
            w_full = w_full - 0.1 * 2 * x.T @ (x @ w_full - y) / len(x)
        np.testing.assert_allclose(w, w_full, rtol=1e-10)
    assert step._cache_size() == 1  # pyright: ignore[reportAttributeAccessIssue]


def test_process_skips_the_postprocessor_until_ready_and_keeps_aggregator_type():
    g = _per_example(4, 4)
    params = jnp.zeros(g.shape[2:])
    clip = gradtx.stateless(lambda gs, p: jax.vmap(lambda x: x / jnp.maximum(1.0, jnp.linalg.norm(x)))(gs))
    ours = agg.process(clip, agg.average_incrementally_updates(0, 2), gradtx.sgd(1.0, momentum=0.5))
    theirs = oagg.process(
        optax.stateless(lambda gs, p: jax.vmap(lambda x: x / jnp.maximum(1.0, jnp.linalg.norm(x)))(gs)),
        oagg.average_incrementally_updates(0, 2),
        optax.sgd(1.0, momentum=0.5),
    )
    assert isinstance(ours, agg.Aggregator) and repr(ours).startswith("process(")
    s, t = ours.init(params), theirs.init(params)
    clipped = g / np.maximum(1.0, np.linalg.norm(g, axis=(2, 3), keepdims=True))
    trace = np.zeros(g.shape[2:])
    for i in range(4):
        u, s = ours.update(g[i], s)
        ut, t = theirs.update(g[i], t)
        s, t = cast(Any, s), cast(Any, t)
        _close((u, s[1], s[2]), (ut, t[1], t[2]))
        if i % 2 == 1:
            trace = clipped[i - 1 : i + 1].mean((0, 1)) + 0.5 * trace
            np.testing.assert_allclose(u, -trace, rtol=1e-12)
        else:
            assert not np.any(u)
        np.testing.assert_allclose(s[2][0].trace, trace, rtol=1e-12)  # unchanged on the skipped calls
    plain = agg.process(gradtx.identity(), agg.accumulate_avg_updates(2), gradtx.sgd(1.0))
    assert not isinstance(plain, agg.Aggregator)


def test_aggregator_from_two_functions():
    mean = agg.Aggregator(init_empty_state, lambda gs, s, params=None: (jnp.mean(gs, 0), s))
    assert isinstance(mean, agg.Aggregator) and isinstance(mean, gradtx.GradientTransformation)
    assert repr(mean).startswith("Aggregator(init=init_empty_state")
    opt = agg.process(gradtx.identity(), mean, gradtx.sgd(0.5))
    assert isinstance(opt, agg.Aggregator)
    u, _ = opt.update(jnp.array([[2.0], [4.0]]), opt.init(jnp.zeros(1)))
    np.testing.assert_allclose(u, [-1.5])


def test_invalid_arguments_raise_value_errors_naming_the_call():
    with pytest.raises(ValueError, match=r"accumulate_avg_updates\(accumulation_steps=0\): .* whole number >= 1"):
        agg.accumulate_avg_updates(0)
    with pytest.raises(ValueError, match=r"average_incrementally_updates\(accumulation_steps=2.5\)"):
        agg.average_incrementally_updates(0, 2.5)  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match=r"get_per_element_mean_and_sum_sq_diff_grads\(accumulation_steps=0\)"):
        agg.get_per_element_mean_and_sum_sq_diff_grads(0, 0)
    with pytest.raises(ValueError, match=r"average_per_element_updates\(per_elt_axis='a'\)"):
        agg.average_per_element_updates("a")
    with pytest.raises(
        ValueError,
        match=r"track_per_element_mean_and_variance_with_ema\(ema_decay=1.0\): ema_decay must be in \[0, 1\)",
    ):
        agg.track_per_element_mean_and_variance_with_ema(1.0)
    with pytest.raises(ValueError, match="must have the same batch size"):
        agg.get_batch_size_from_per_elt_updates({"a": jnp.zeros((2, 3)), "b": jnp.zeros((3, 3))}, 0)
    assert agg.accumulate_avg_updates(2.0).accumulation_steps == 2  # pyright: ignore[reportArgumentType]  # integral floats work, as in Optax
