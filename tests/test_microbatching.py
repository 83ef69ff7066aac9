"""gradtx.microbatching: Optax's ``optax.microbatching`` namespace (microbatch, micro_vmap, micro_grad, ...).

Every result is checked against a closed form or a float64 NumPy reference (a sum or mean over micro-batches
equals the full-batch one, per-example gradients of a least-squares loss) and against Optax itself.
"""

from __future__ import annotations

import doctest
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
import gradtx.wrappers
from gradtx import microbatching as mb

AT = mb.AccumulationType
NAMES = ["AccumulationType", "Accumulator", "micro_grad", "micro_vmap", "microbatch", "reshape_batch_axis"]


def _theirs(acc):
    """The same accumulator tree with Optax's enum members."""
    return jax.tree.map(lambda k: getattr(optax.microbatching.AccumulationType, k.name), acc)


def test_namespace_is_optaxs_and_reexports_the_one_definition():
    public = sorted(n for n in dir(optax.microbatching) if not n.startswith("_"))
    assert sorted(mb.__all__) == public == NAMES
    for name in NAMES:
        assert getattr(mb, name) is getattr(gradtx.wrappers, name)
    assert [m.name for m in AT] == [m.name for m in optax.microbatching.AccumulationType]
    assert [m.value for m in AT] == [m.value for m in optax.microbatching.AccumulationType]
    fields = [f.name for f in mb.Accumulator.__dataclass_fields__.values()]
    assert (
        fields
        == list(optax.microbatching.Accumulator.__dataclass_fields__)
        == ["init", "update", "finalize", "aggregate"]
    )


def test_docstring_examples_run():
    finder, runner = (
        doctest.DocTestFinder(recurse=False),
        doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE),
    )
    ran = 0
    for name in NAMES:
        for test in finder.find(getattr(mb, name)):
            assert test.examples, name
            ran += 1
            assert runner.run(test).failed == 0, name
    assert ran == len(NAMES)


def _data(seed=0, batch=12):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, 3)), rng.normal(size=batch), rng.normal(size=3)


def test_mean_and_sum_over_microbatches_equal_the_full_batch_and_optax():
    x, y, w = _data()
    rows = lambda w, x, y: (x @ w - y) ** 2  # noqa: E731  (per-row losses)
    sq = rows(w, x, y)
    for size in (1, 4):
        fun = lambda w, x, y: (jnp.mean(rows(w, x, y)), jnp.sum(rows(w, x, y)), rows(w, x, y))  # noqa: E731
        acc = (AT.MEAN, AT.SUM, AT.CONCAT)
        got = mb.microbatch(fun, (1, 2), size, acc)(w, x, y)
        np.testing.assert_allclose(got[0], sq.mean(), rtol=1e-13)
        np.testing.assert_allclose(got[1], sq.sum(), rtol=1e-13)
        np.testing.assert_allclose(got[2], sq, rtol=1e-13)
        theirs = optax.microbatching.microbatch(fun, (1, 2), size, _theirs(acc))(w, x, y)
        for a, b in zip(got, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-13)
    # RUNNING_MEAN with early stopping: the mean over the micro-batches that ran (rows r, r + 4, r + 8).
    got = mb.microbatch(lambda x: jnp.mean(x), 0, 3, AT.RUNNING_MEAN, num_real_microbatches=2)(y)
    np.testing.assert_allclose(got, np.mean(y.reshape(3, 4).T[:2]), rtol=1e-13)
    theirs = optax.microbatching.microbatch(
        lambda x: jnp.mean(x), 0, 3, _theirs(AT.RUNNING_MEAN), num_real_microbatches=2
    )(y)
    np.testing.assert_allclose(got, theirs, rtol=1e-13)


def test_gradient_through_microbatch_equals_the_full_batch_gradient():
    x, y, w = _data(1)
    loss = lambda w, x, y: jnp.mean((x @ w - y) ** 2)  # noqa: E731
    ours = jax.grad(lambda w: mb.microbatch(loss, (1, 2), 4, AT.MEAN)(w, x, y))(w)
    theirs = jax.grad(lambda w: optax.microbatching.microbatch(loss, (1, 2), 4, _theirs(AT.MEAN))(w, x, y))(w)
    closed = 2 * x.T @ (x @ w - y) / len(y)
    np.testing.assert_allclose(ours, closed, rtol=1e-12)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("acc", list(AT))
def test_micro_vmap_equals_vmap_then_reduce_and_optax(acc):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 8, 2))  # batch axis 1
    c = rng.normal(size=2)
    fun = lambda x, c, *, s: jnp.sum(x * c) * s  # noqa: E731
    s = rng.normal(size=8)  # keyword arguments are mapped along axis 0, as with jax.vmap
    per_example = np.einsum("ibj,j->b", x, c) * s  # float64 reference
    want = {
        AT.CONCAT: per_example,
        AT.SUM: per_example.sum(),
        AT.MEAN: per_example.mean(),
        AT.RUNNING_MEAN: per_example.mean(),
    }[acc]
    for size in (None, 2, 4):
        got = mb.micro_vmap(fun, in_axes=(1, None), microbatch_size=size, accumulator=acc)(x, c, s=s)
        np.testing.assert_allclose(got, want, rtol=1e-12)
        theirs = optax.microbatching.micro_vmap(
            fun,
            in_axes=(1, None),  # pyright: ignore[reportArgumentType]  (Optax's annotation omits None)
            microbatch_size=size,
            accumulator=_theirs(acc),
        )(x, c, s=s)
        np.testing.assert_allclose(got, theirs, rtol=1e-12)


def test_micro_vmap_int_in_axes_maps_every_argument_and_early_stop():
    a, b = jnp.arange(8.0), jnp.arange(8.0) * 10
    got = mb.micro_vmap(lambda u, v: u + v, in_axes=0, microbatch_size=2)(a, b)  # Optax: one argument only
    np.testing.assert_array_equal(got, np.arange(8.0) * 11)
    ours = mb.micro_vmap(jnp.sum, microbatch_size=4, num_real_microbatches=3, accumulator=AT.SUM)(jnp.ones(16))
    theirs = optax.microbatching.micro_vmap(
        jnp.sum, microbatch_size=4, num_real_microbatches=3, accumulator=_theirs(AT.SUM)
    )(jnp.ones(16))
    assert float(ours) == float(theirs) == 12.0
    # MEAN of integer per-example outputs: the per-micro-batch means are floating, as in Optax.
    x = jnp.arange(8)
    ours = mb.micro_vmap(lambda v: v * 3, microbatch_size=2, accumulator=AT.MEAN)(x)
    theirs = optax.microbatching.micro_vmap(lambda v: v * 3, microbatch_size=2, accumulator=_theirs(AT.MEAN))(x)
    assert float(ours) == float(theirs) == 10.5
    # bfloat16 outputs are summed in float32 and returned in bfloat16 (Optax sums in bfloat16).
    ones = jnp.ones((512, 2), jnp.bfloat16)
    s = mb.micro_vmap(jnp.sum, microbatch_size=1, accumulator=AT.SUM)(ones)
    assert s.dtype == jnp.bfloat16 and float(s) == 1024.0


def _lsq(w, x, y):
    return 0.5 * jnp.mean((x @ w - y) ** 2)


@pytest.mark.parametrize("keep_batch_dim", [True, False])
def test_micro_grad_equals_the_full_batch_gradient_and_optax(keep_batch_dim):
    x, y, w = _data(3, batch=8)
    resid = x @ w - y
    per_example = resid[:, None] * x  # grad of 0.5 (x_b w - y_b)^2, float64
    clip = per_example / np.maximum(1.0, np.linalg.norm(per_example, axis=1, keepdims=True))

    def transform(g):
        return g, g / jnp.maximum(1.0, jnp.linalg.norm(g))

    cases = ((2, AT.SUM), (4, AT.MEAN), (2, (AT.MEAN, AT.SUM))) if keep_batch_dim else ((None, AT.SUM),)
    for size, acc in cases:
        kw: dict[str, Any] = dict(
            batch_argnums=(1, 2),
            keep_batch_dim=keep_batch_dim,
            microbatch_size=size,
            accumulator=acc,
            transform_fn=transform,
            metrics_fn=jnp.linalg.norm,
        )
        (g, clipped), aux = mb.micro_grad(_lsq, **kw)(w, x, y)
        full = jax.grad(_lsq)(w, x, y)  # the batch-mean gradient
        mean_first = acc in (AT.MEAN, (AT.MEAN, AT.SUM))
        np.testing.assert_allclose(g, full if mean_first else full * len(y), rtol=1e-12)
        np.testing.assert_allclose(clipped, clip.mean(0) if acc is AT.MEAN else clip.sum(0), rtol=1e-12)
        np.testing.assert_allclose(aux.values, 0.5 * resid**2, rtol=1e-12)
        np.testing.assert_allclose(aux.metrics, np.linalg.norm(per_example, axis=1), rtol=1e-12)
        assert (
            aux.aux is None
            and type(aux).__name__ == "IndividualOutputs"
            and aux._fields == ("values", "metrics", "aux")
        )
        theirs = optax.microbatching.micro_grad(_lsq, **{**kw, "accumulator": _theirs(acc)})(w, x, y)
        for a, b in zip(jax.tree.leaves((g, clipped, aux)), jax.tree.leaves(theirs)):
            np.testing.assert_allclose(a, b, rtol=1e-12)


def test_micro_grad_has_aux_argnums_and_early_stop():
    x, y, w = _data(4, batch=8)

    def loss(w, b, x, y):
        r = x @ w + b - y
        return 0.5 * jnp.mean(r**2), {"r": r}

    (gw, gb), aux = mb.micro_grad(loss, has_aux=True, argnums=(0, 1), batch_argnums=(2, 3), microbatch_size=4)(
        w, 0.5, x, y
    )
    r = x @ w + 0.5 - y
    np.testing.assert_allclose(gw, x.T @ r, rtol=1e-12)  # the sum of per-example gradients
    np.testing.assert_allclose(gb, r.sum(), rtol=1e-12)
    np.testing.assert_allclose(aux.aux["r"][:, 0], r, rtol=1e-12)  # keep_batch_dim: each example is (1,)
    ours, _ = mb.micro_grad(lambda c, v: c * v.sum(), microbatch_size=4, num_real_microbatches=3)(1.0, jnp.ones(16))
    theirs, _ = optax.microbatching.micro_grad(lambda c, v: c * v.sum(), microbatch_size=4, num_real_microbatches=3)(
        1.0, jnp.ones(16)
    )
    assert float(ours) == float(theirs) == 12.0
    # A non-batched argument after the batched one (Optax's in_axes stop at the last batched argument).
    g, _ = mb.micro_grad(lambda w, x, s: s * jnp.sum(x @ w), keep_batch_dim=False)(w, x, 2.0)
    np.testing.assert_allclose(g, 2.0 * x.sum(0), rtol=1e-12)


def test_errors_name_the_call_and_the_value():
    with pytest.raises(NotImplementedError, match=r"micro_vmap\(out_axes=1\)"):
        mb.micro_vmap(jnp.sum, out_axes=1)
    with pytest.raises(ValueError, match=r"micro_vmap\(microbatch_size=0\)"):
        mb.micro_vmap(jnp.sum, microbatch_size=0)
    with pytest.raises(ValueError, match=r"micro_vmap\(in_axes=\(0, 'a'\)\)"):
        mb.micro_vmap(jnp.add, in_axes=(0, "a"))  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="one entry per positional argument"):
        mb.micro_vmap(jnp.add, in_axes=(0,))(jnp.ones(2), jnp.ones(2))
    with pytest.raises(ValueError, match=r"micro_grad\(batch_argnums=\(\)\)"):
        mb.micro_grad(_lsq, batch_argnums=())
    with pytest.raises(ValueError, match=r"micro_grad\(transform_fn=3\)"):
        mb.micro_grad(_lsq, transform_fn=3)  # pyright: ignore[reportArgumentType]
    with pytest.raises(
        ValueError, match=r"num_real_microbatches=5\): num_real_microbatches must be an integer in \[0, 4\]"
    ):
        mb.microbatch(jnp.sum, 0, 2, num_real_microbatches=5)(jnp.ones(8))
    with pytest.raises(ValueError, match=r"reshape_batch_axis\(microbatch_size=3\): the batch axis 0 has size 8"):
        mb.reshape_batch_axis(jnp.ones(8), 3)
    with pytest.raises(ValueError, match="MEAN accumulator needs floating-point"):
        mb.microbatch(jnp.sum, 0, 2, AT.MEAN)(jnp.arange(4))


def test_reshape_batch_axis_is_optaxs_column_major_split():
    x = jnp.arange(2 * 6 * 2).reshape(2, 6, 2)
    for axis in (1, -2):
        ours = mb.reshape_batch_axis(x, 3, axis)
        np.testing.assert_array_equal(ours, optax.microbatching.reshape_batch_axis(x, 3, 1))
        np.testing.assert_array_equal(ours, np.asarray(x).reshape(2, 2, 3, 2, order="F"))
