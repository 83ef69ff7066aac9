"""gradtx.step.make_step: the donated train step, for plain pytrees, Flax NNX and Equinox.

Every result is compared with an independent loop written out by hand (``opt.update`` + ``apply_updates``,
``jax.value_and_grad``), jitted without donation: donation changes where results are written, never what
they are, so the comparison is bit for bit. Donated inputs must be deleted (XLA reused their buffers).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx.base import GradientTransformation
from gradtx.flat import pack, unpack
from gradtx.step import make_step


def _params():
    rng = np.random.default_rng(0)
    return {
        "w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
        "b": jnp.asarray(rng.normal(size=(4,)), jnp.float32),
        "e": jnp.asarray(rng.normal(size=(5,)), jnp.bfloat16),
    }


def _data():
    rng = np.random.default_rng(1)
    return jnp.asarray(rng.normal(size=(8, 3)), jnp.float32), jnp.asarray(rng.normal(size=(8, 4)), jnp.float32)


def _loss(params, x, y, *, scale=1.0):
    pred = x @ params["w"] + params["b"] + jnp.sum(params["e"].astype(jnp.float32))
    return scale * jnp.mean((pred - y) ** 2)


def _copy(tree):
    return jax.tree.map(lambda a: jnp.array(a, copy=True), tree)


def _assert_identical(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x, np.float64), np.asarray(y, np.float64))


def _reference_grads_loop(opt, params, grads_seq):
    """The plain loop, jitted but not donated."""

    @jax.jit
    def ref_step(p, s, g):
        u, s = opt.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    p, s = params, opt.init(params)
    for g in grads_seq:
        p, s = ref_step(p, s, g)
    return p, s


def test_grads_step_donates_and_is_bit_identical():
    opt = gradtx.adamw(1e-2, weight_decay=0.1)
    params = _params()
    grads_seq = [jax.tree.map(lambda a, k=k: (a * 0.1 + k).astype(a.dtype), params) for k in range(3)]
    ref_p, ref_s = _reference_grads_loop(opt, params, grads_seq)

    step = make_step(opt)
    p, s = _copy(params), opt.init(params)
    for g in grads_seq:
        old = jax.tree.leaves((p, s))
        p, s = step(p, s, g)
        assert all(x.is_deleted() for x in old), "params and state were not donated"
        assert not any(x.is_deleted() for x in jax.tree.leaves(g)), "gradients must not be donated"
    _assert_identical(p, ref_p)
    _assert_identical(s, ref_s)
    assert p["e"].dtype == jnp.bfloat16


def test_donate_false_and_jit_false_keep_inputs():
    opt = gradtx.sgd(0.1, 0.9)
    params = _params()
    g = jax.tree.map(jnp.ones_like, params)
    ref_p, ref_s = _reference_grads_loop(opt, params, [g])
    for kwargs in ({"donate": False}, {"jit": False}):
        p0, s0 = _copy(params), opt.init(params)
        p, s = make_step(opt, **kwargs)(p0, s0, g)
        assert not any(x.is_deleted() for x in jax.tree.leaves((p0, s0)))
        _assert_identical(p, ref_p)
        _assert_identical(s, ref_s)


def test_loss_step_with_aux_and_kwargs_matches_value_and_grad():
    opt = gradtx.adam(1e-2)
    params = _params()
    x, y = _data()

    def loss_aux(p, x, y, *, scale):
        loss = _loss(p, x, y, scale=scale)
        return loss, {"twice": 2 * loss}

    @jax.jit
    def ref_step(p, s):
        (loss, aux), g = jax.value_and_grad(loss_aux, has_aux=True)(p, x, y, scale=0.5)
        u, s = opt.update(g, s, p, value=loss)
        return gradtx.apply_updates(p, u), s, loss, aux

    step = make_step(opt, loss_aux, has_aux=True)
    p, s = _copy(params), opt.init(params)
    rp, rs = params, opt.init(params)
    losses = []
    for _ in range(3):
        old = jax.tree.leaves((p, s))
        p, s, loss, aux = step(p, s, x, y, scale=0.5)
        assert all(a.is_deleted() for a in old)
        assert not x.is_deleted() and not y.is_deleted(), "data must not be donated"
        rp, rs, rloss, raux = ref_step(rp, rs)
        np.testing.assert_array_equal(loss, rloss)
        np.testing.assert_array_equal(aux["twice"], raux["twice"])
        losses.append(float(loss))
    _assert_identical(p, rp)
    _assert_identical(s, rs)
    # The first loss is the loss at the initial params (float64 NumPy), before the update.
    n = {k: np.asarray(v, np.float64) for k, v in params.items()}
    pred = np.asarray(x, np.float64) @ n["w"] + n["b"] + n["e"].sum()
    np.testing.assert_allclose(losses[0], 0.5 * np.mean((pred - np.asarray(y, np.float64)) ** 2), rtol=1e-5)


def test_value_is_passed_to_gradtx_and_to_foreign_that_accept_it():
    """Polyak's step size needs value=loss; Optax chains take **extra_args; optax.scale_by_adam does not."""
    params = {"w": jnp.asarray([1.0, -2.0, 3.0], jnp.float32)}

    def loss(p):
        return 0.5 * jnp.sum(p["w"] ** 2)

    # Polyak SGD with f_min=0 on 0.5|w|^2: step = loss/|g|^2 * g = 0.5 w, so w halves every step (closed form).
    opt = gradtx.polyak_sgd(max_learning_rate=10.0)
    step = make_step(opt, loss)
    p, s = _copy(params), opt.init(params)
    for k in range(1, 4):
        p, s, _ = step(p, s)
        np.testing.assert_allclose(np.asarray(p["w"]), np.array([1.0, -2.0, 3.0]) * 0.5**k, rtol=1e-6)

    for tx in (optax.adam(0.1), optax.scale_by_adam()):
        step = make_step(tx, loss)
        p, s = _copy(params), tx.init(params)
        p, s, value = step(p, s)
        g = params["w"]
        u, _ = tx.update({"w": g}, tx.init(params), params)
        np.testing.assert_array_equal(p["w"], params["w"] + u["w"])
        np.testing.assert_allclose(float(value), 7.0, rtol=1e-7)


def test_repeated_buffers_are_copied_before_donation():
    """An init that stores the params themselves would make XLA donate one buffer twice: the step copies."""
    keep = GradientTransformation(lambda p: p, lambda u, s, p=None, **kw: (u, jax.tree.map(jnp.add, s, u)))
    params = {"w": jnp.arange(3.0, dtype=jnp.float32)}
    state = keep.init(params)
    assert state["w"] is params["w"]
    p, s = make_step(keep)(params, state, {"w": jnp.ones(3, jnp.float32)})
    np.testing.assert_array_equal(p["w"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(s["w"], [1.0, 2.0, 3.0])


def test_flat_params_in_make_step_equal_per_leaf():
    opt = gradtx.adam(1e-2)
    params = _params()
    x, y = _data()
    step = make_step(opt, _loss)
    p, s = _copy(params), opt.init(params)
    fp = pack(params)
    fs = opt.init(fp)
    for _ in range(3):
        p, s, loss = step(p, s, x, y)
        fp, fs, floss = step(fp, fs, x, y)
        np.testing.assert_array_equal(loss, floss)
    assert len(jax.tree.leaves(fp)) == 2  # one float32 and one bfloat16 buffer
    _assert_identical(unpack(fp), p)
    _assert_identical(unpack(fs), s)
    # Without a loss: FlatTree grads are just a pytree.
    g = jax.grad(_loss)(p, x, y)
    p2, s2 = make_step(opt)(p, s, g)
    fp2, fs2 = make_step(opt)(fp, fs, pack(g))
    _assert_identical(unpack(fp2), p2)
    _assert_identical(unpack(fs2), s2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"opt": object()}, r"make_step\(opt=.*\): opt must have init and update"),
        ({"opt": gradtx.sgd(0.1), "loss_fn": 3}, r"make_step\(loss_fn=3\): loss_fn must be a callable"),
        ({"opt": gradtx.sgd(0.1), "has_aux": True}, r"make_step\(has_aux=True\): has_aux needs a loss_fn"),
        ({"opt": gradtx.sgd(0.1), "loss_fn": _loss, "has_aux": 1},
         r"make_step\(has_aux=1\): has_aux must be True or False"),
        ({"opt": gradtx.sgd(0.1), "donate": "yes"}, r"make_step\(donate='yes'\): donate must be True or False"),
        ({"opt": gradtx.sgd(0.1), "jit": None}, r"make_step\(jit=None\): jit must be True or False"),
        ({"opt": gradtx.sgd(0.1), "flat": 1}, r"make_step\(flat=1\): flat must be True or False"),
        ({"opt": gradtx.sgd(0.1), "zero": 3}, r"make_step\(zero=3\): zero must be 0 \(off\), 1 or 2"),
        ({"opt": gradtx.sgd(0.1), "zero": True}, r"make_step\(zero=True\): zero must be 0"),
        ({"opt": gradtx.sgd(0.1), "zero": 1}, r"make_step\(mesh=None\): mesh must be a jax.sharding.Mesh"),
        ({"opt": gradtx.sgd(0.1), "zero": 2, "mesh": "ONE_DEVICE_MESH", "jit": False},
         r"make_step\(jit=False\): jit must be True with zero"),
        ({"opt": gradtx.sgd(0.1), "zero": 1, "mesh": "ONE_DEVICE_MESH", "axis": "batch"},
         r"make_step\(axis='batch'\): axis must name axes of the mesh \('data',\)"),
    ],
)
def test_validation(kwargs, match):
    if kwargs.get("mesh") == "ONE_DEVICE_MESH":
        kwargs = {**kwargs, "mesh": jax.make_mesh((1,), ("data",))}
    with pytest.raises(ValueError, match=match):
        make_step(**kwargs)


def test_zero_on_one_device_equals_the_plain_step():
    """``zero=1`` and ``zero=2`` on a one-device mesh (the layout is trivial; 8 devices: tests/test_sharding.py)
    give the plain step's numbers, with FlatTree params padded to a multiple of 4."""
    mesh = jax.make_mesh((1,), ("data",))
    rng = np.random.default_rng(5)
    tree = {"w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32), "b": jnp.asarray(rng.normal(size=3), jnp.float32)}
    x, y = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32), jnp.asarray(rng.normal(size=(4, 2)), jnp.float32)

    def loss(p, x, y):
        return jnp.mean((x @ p["w"] + p["b"][:2] - y) ** 2)

    opt = gradtx.adamw(0.1, weight_decay=0.1)
    ref, ref_state = tree, opt.init(tree)
    plain = make_step(opt, loss, donate=False)
    for _ in range(3):
        ref, ref_state, ref_loss = plain(ref, ref_state, x, y)
    for stage in (1, 2):
        params = pack(tree, multiple_of=4)
        state = opt.init(params)
        step = make_step(opt, loss, zero=stage, mesh=mesh)
        for _ in range(3):
            params, state, value = step(params, state, x, y)
        got = unpack(params)
        for k in tree:
            np.testing.assert_allclose(np.asarray(got[k]), np.asarray(ref[k]), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(float(value), float(ref_loss), rtol=1e-6)
        assert params.sizes() == (12,) and np.all(np.asarray(params.buffers[0])[9:] == 0)
    # step.init does the packing (padded to the one device: no padding) and the layout
    step = make_step(opt, loss, zero=2, mesh=mesh, flat=True)
    params, state = step.init(tree)
    assert isinstance(params, gradtx.FlatTree) and params.sizes() == (9,)
    for _ in range(3):
        params, state, value = step(params, state, x, y)
    for k in tree:
        np.testing.assert_allclose(np.asarray(unpack(params)[k]), np.asarray(ref[k]), rtol=1e-6, atol=1e-7)


def test_flat_option_packs_and_refuses_leaf_structured_blocks():
    rng = np.random.default_rng(6)
    tree = {"w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32), "b": jnp.asarray(rng.normal(size=2), jnp.float32)}
    x, y = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32), jnp.asarray(rng.normal(size=(4, 2)), jnp.float32)

    def loss(p, x, y):
        return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)

    opt = gradtx.adam(0.1)
    ref, ref_state = tree, opt.init(tree)
    plain = make_step(opt, loss, donate=False)
    step = make_step(opt, loss, flat=True)
    params, state = step.init(tree)
    assert isinstance(params, gradtx.FlatTree) and len(params.buffers) == 1
    for _ in range(3):
        ref, ref_state, _ = plain(ref, ref_state, x, y)
        params, state, _ = step(params, state, x, y)
    for k in tree:
        np.testing.assert_allclose(np.asarray(unpack(params)[k]), np.asarray(ref[k]), rtol=1e-6, atol=1e-7)
    # a tree given to a flat step is packed (the state must be the flat one)
    again, _, _ = make_step(opt, loss, flat=True, donate=False)(tree, opt.init(pack(tree)), x, y)
    assert isinstance(again, gradtx.FlatTree)
    with pytest.raises(ValueError, match=r"scale_by_trust_ratio\.init: the params are a gradtx\.flat\.FlatTree"):
        make_step(gradtx.lamb(0.1), loss, flat=True).init(tree)


# --------------------------------------------------------------------------------------------------
# Flax NNX and Equinox: the patterns of the gradtx.step docstring on a tiny MLP.
# --------------------------------------------------------------------------------------------------


def _mlp_data():
    rng = np.random.default_rng(2)
    return jnp.asarray(rng.normal(size=(16, 4)), jnp.float32), jnp.asarray(rng.normal(size=(16, 2)), jnp.float32)


def test_flax_nnx_pattern():
    nnx = pytest.importorskip("flax.nnx")

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(4, 8, rngs=rngs)
            self.out = nnx.Linear(8, 2, rngs=rngs)
            self.count = nnx.BatchStat(jnp.zeros((), jnp.float32))  # a non-Param variable: stays in `rest`

        def __call__(self, x):
            return self.out(jax.nn.tanh(self.hidden(x)))

    model = MLP(nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    x, y = _mlp_data()

    def loss_fn(params, rest, x, y):
        model = nnx.merge(graphdef, params, rest)
        return jnp.mean((model(x) - y) ** 2)

    opt = gradtx.adam(1e-2)
    ref_p, ref_s = params, opt.init(params)

    @jax.jit
    def ref_step(p, s):
        g = jax.grad(loss_fn)(p, rest, x, y)
        u, s = opt.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    step = make_step(opt, loss_fn)
    p, s = _copy(params), opt.init(params)
    losses = []
    for _ in range(5):
        old = jax.tree.leaves((p, s))
        p, s, loss = step(p, s, rest, x, y)
        assert all(a.is_deleted() for a in old)
        losses.append(float(loss))
        ref_p, ref_s = ref_step(ref_p, ref_s)
    _assert_identical(p, ref_p)
    _assert_identical(s, ref_s)
    assert losses[-1] < losses[0]
    nnx.update(model, p)
    np.testing.assert_allclose(float(jnp.mean((model(x) - y) ** 2)), float(loss_fn(p, rest, x, y)), rtol=1e-6)


def test_equinox_pattern():
    eqx = pytest.importorskip("equinox")
    model = eqx.nn.MLP(4, 2, 8, depth=1, activation=jax.nn.tanh, key=jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_array)
    x, y = _mlp_data()

    def loss_fn(params, x, y):
        model = eqx.combine(params, static)
        return jnp.mean((jax.vmap(model)(x) - y) ** 2)

    opt = gradtx.adam(1e-2)
    ref_p, ref_s = params, opt.init(params)

    @jax.jit
    def ref_step(p, s):
        g = jax.grad(loss_fn)(p, x, y)
        u, s = opt.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    step = make_step(opt, loss_fn)
    p, s = _copy(params), opt.init(params)
    losses = []
    for _ in range(5):
        old = jax.tree.leaves((p, s))
        p, s, loss = step(p, s, x, y)
        assert all(a.is_deleted() for a in old)
        losses.append(float(loss))
        ref_p, ref_s = ref_step(ref_p, ref_s)
    _assert_identical(p, ref_p)
    _assert_identical(s, ref_s)
    assert losses[-1] < losses[0]
