"""gradtx.flat: the flat (multi-tensor) path gives the per-leaf result for every registry entry that is not
``leaf_structured``, and visibly differs for those that are.

Exactness: within a few ulp, not bit-exact in general. Measured with this file's settings: 111 of the 132
comparable entries are bit-exact; the others differ by at most 1.4 eps of each leaf's largest element (float32
and bfloat16 leaves), and L-BFGS's float64 accumulators by 4e-7 relative (float32 sums widened to float64).
Why: elementwise blocks compute the same IEEE operations on the same numbers, but XLA on CPU contracts
``a * b + c`` into a fused multiply-add, and for ``a * b + c * d`` which product stays unrounded depends on
how the fused loop was emitted, which differs between one 13-element loop and a 1-element plus a 12-element
loop. Global reductions (``clip_by_global_norm``, Polyak step sizes, L-BFGS inner products) add the same
squares in a different order: 1 ulp per reduction, which L-BFGS's recursion amplifies over many steps of
random gradients (1e-5 after ten steps), hence few steps here. So the check is ``|flat - per_leaf| <= rtol *
max|per_leaf|`` per leaf, with ``rtol`` 1e-5 for float32/float64 and 2e-2 (2 ulp) for bfloat16, and exact for
integers and keys.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from registry import ENTRIES

import gradtx
from gradtx._structure import StructureError
from gradtx.base import apply_updates
from gradtx.flat import FlatTree, pack, unpack
from gradtx.testing.contract import default_params, random_like

STEPS = 5
# Small programs compile faster without LLVM's optimisations; both paths run in the one compiled program, so they
# are compared under the same compiler. (Not ``xla_llvm_disable_expensive_passes`` nor
# ``xla_cpu_use_fusion_emitters=False``: faster still, but each program then leaves 4-8x more memory mappings and a
# long pytest worker reaches vm.max_map_count; see tests/conftest.py.)
FAST_COMPILE = {"xla_backend_optimization_level": 0}
RTOL = {"bfloat16": 2e-2, "float16": 2e-3}


def _tree():
    """Three leaves in two dtypes (a bfloat16 matrix; a float32 scalar and matrix sharing one buffer), a None."""
    rng = np.random.default_rng(0)
    return {
        "h": jnp.asarray(rng.normal(size=(2, 3)), jnp.bfloat16),
        "n": {"s": jnp.asarray(rng.normal(), jnp.float32), "none": None},
        "w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
    }


def _close(a, b) -> bool:
    """Whether two trees agree: same structure, dtypes and shapes; values within the module's tolerance."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype != y.dtype or x.shape != y.shape:
            return False
        if x.dtype.kind in "biu":
            if not np.array_equal(x, y):
                return False
            continue
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        if x.size == 0:
            continue
        scale = max(float(np.max(np.abs(x64))), 1e-30)
        tol = RTOL.get(x.dtype.name, 1e-5) * scale
        if not np.all(np.abs(x64 - y64) <= tol) and not np.array_equal(x64, y64, equal_nan=True):
            return False
    return True


def _runs(entry, steps):
    """Per-leaf and flat runs of ``entry`` over ``steps`` gradients, both in one compiled lax.scan."""
    tx = entry.make()
    extra = dict(entry.extra_args or {})
    params = default_params() if entry.uses_mask else _tree()
    grads = jax.tree.map(lambda *xs: jnp.stack(xs), *[random_like(params, seed=k + 1) for k in range(steps)])

    def run(params, grads):
        flat = pack(params)

        def body(carry, g):
            (p, s), (fp, fs) = carry
            u, s = tx.update(g, s, p, **extra)
            fu, fs = tx.update(pack(g), fs, fp, **extra)
            return ((apply_updates(p, u), s), (apply_updates(fp, fu), fs)), None

        init = ((params, tx.init(params)), (flat, tx.init(flat)))
        return jax.lax.scan(body, init, grads)[0]

    (p, s), (fp, fs) = jax.jit(run).lower(params, grads).compile(compiler_options=FAST_COMPILE)(params, grads)
    assert isinstance(fp, FlatTree) and len(fp.buffers) == len({x.dtype for x in jax.tree.leaves(params)})
    return (p, s), (unpack(fp), unpack(fs))


EQUAL = [e for e in ENTRIES if not e.leaf_structured]
STRUCTURED = [e for e in ENTRIES if e.leaf_structured]


@pytest.mark.parametrize("entry", EQUAL, ids=lambda e: e.name)
def test_flat_equals_per_leaf(entry):
    with jax.numpy_dtype_promotion("strict"):
        (p, s), (fp, fs) = _runs(entry, STEPS)
    assert _close(p, fp), f"{entry.name}: params differ flat vs per leaf:\n{p}\n{fp}"
    assert _close(s, fs), f"{entry.name}: state differs flat vs per leaf:\n{s}\n{fs}"


# Leaf-structured entries the library runs on a FlatTree anyway: their numbers differ, and are not wrong.
RUN_ANYWAY = {
    "add_noise": "the noise is drawn per buffer instead of per leaf: other draws, the same distribution",
    "noisy_sgd": "add_noise inside",
    "MultiSteps(adam, 1)": "a per-leaf placeholder in the state; the updates agree",
    "quantized_state(adam, block_size=4, min_size=0)": "its blocks span leaves: another quantization, as valid",
}


@pytest.mark.parametrize("entry", STRUCTURED, ids=lambda e: e.name)
def test_leaf_structured_entries_are_refused_on_a_flat_tree(entry):
    """Keeps the registry field and the library's ``leaf_structured`` declarations honest together: a
    leaf-structured entry's ``init`` refuses a FlatTree with a StructureError naming the block and the reason
    (no silent other numbers), except the few in ``RUN_ANYWAY``, whose flat run must then visibly differ."""
    params = default_params() if entry.uses_mask else _tree()
    if entry.name in RUN_ANYWAY:
        with jax.numpy_dtype_promotion("strict"):
            (p, s), (fp, fs) = _runs(entry, 2)
        assert not (_close(p, fp) and _close(s, fs)), f"{entry.name} is marked leaf_structured but the flat run agrees"
        return
    with pytest.raises(StructureError, match=r"\.init: the params are a gradtx\.flat\.FlatTree, but .+: on flat "
                                             r"buffers it would not compute its per-leaf result"):
        entry.make().init(pack(params))
    entry.make().init(params)  # the tree itself is fine


def test_leaf_structured_declarations_are_consistent():
    """``leaf_structured`` is declared on each entry (no list of names to go stale): the names are unique, so each
    declaration belongs to one test id, and every entry built for the registry's tree (``uses_mask``) declares it
    (a mask or partition written for the original tree cannot apply to a FlatTree)."""
    names = [e.name for e in ENTRIES]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})
    undeclared = [e.name for e in ENTRIES if e.uses_mask and not e.leaf_structured]
    assert not undeclared, undeclared


# --------------------------------------------------------------------------------------------------
# pack / unpack
# --------------------------------------------------------------------------------------------------


def _mixed():
    rng = np.random.default_rng(3)
    return {
        "a": jnp.asarray(rng.normal(size=(2, 3)), jnp.float32),
        "b": [jnp.asarray(rng.normal(size=(4,)), jnp.bfloat16), None, jnp.asarray(7, jnp.int32)],
        "c": {"scalar": jnp.asarray(2.5, jnp.float32), "empty": jnp.zeros((0, 5), jnp.float32)},
        "d": (jnp.asarray(rng.normal(size=(3, 1, 2)), jnp.float64), jnp.asarray(rng.normal(size=(5,)), jnp.bfloat16)),
    }


def _identical(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x, np.float64), np.asarray(y, np.float64))


def test_pack_unpack_round_trip_mixed_dtypes_none_scalars_empty():
    tree = _mixed()
    flat = pack(tree)
    # One buffer per dtype, in order of first appearance: f32 (a, c.empty, c.scalar), bf16 (b[0], d[1]), i32, f64.
    assert [b.dtype for b in flat.buffers] == [jnp.float32, jnp.bfloat16, jnp.int32, jnp.float64]
    assert [b.shape for b in flat.buffers] == [(7,), (9,), (1,), (6,)]
    np.testing.assert_array_equal(flat.buffers[0], np.concatenate([np.ravel(tree["a"]), [2.5]]))
    np.testing.assert_array_equal(
        np.asarray(flat.buffers[1], np.float32), np.concatenate([tree["b"][0], tree["d"][1]]).astype(np.float32)
    )
    assert flat.num_leaves == 7 and jax.tree.leaves(flat) == list(flat.buffers)
    _identical(unpack(flat), tree)
    _identical(flat.unpack(), tree)
    assert unpack(flat)["b"][1] is None
    # Inside jit: the FlatTree crosses the boundary as its buffers and comes back the same.
    _identical(jax.jit(lambda t: unpack(pack(t)))(tree), tree)
    back = jax.jit(lambda f: f)(flat)
    assert isinstance(back, FlatTree) and back.layout == flat.layout
    # Degenerate trees.
    for t in ({}, None, [], {"x": None}, jnp.asarray(3.0, jnp.float32), {"z": jnp.zeros((0,), jnp.float32)}):
        f = pack(t)
        assert jax.tree.structure(unpack(f)) == jax.tree.structure(t)
        _identical(unpack(f), t)
    assert pack({}).buffers == () and pack(flat) is flat


def test_pack_multiple_of_pads_with_zeros_and_round_trips():
    tree = _mixed()
    flat = pack(tree, multiple_of=4)
    # f32 7 -> 8, bf16 9 -> 12, i32 1 -> 4, f64 6 -> 8: each buffer a multiple of 4, at most 3 zeros added
    assert [b.shape for b in flat.buffers] == [(8,), (12,), (4,), (8,)] and flat.sizes() == (8, 12, 4, 8)
    assert flat.used() == (7, 9, 1, 6) and flat.fits()
    for buf, used in zip(flat.buffers, flat.used()):
        np.testing.assert_array_equal(np.asarray(buf, np.float64)[used:], 0.0)
    _identical(unpack(flat), tree)
    _identical(jax.jit(lambda t: unpack(pack(t, multiple_of=4)))(tree), tree)
    # padded and unpadded layouts are different pytrees; a padded FlatTree passes through pack unchanged
    assert jax.tree.structure(flat) != jax.tree.structure(pack(tree))
    assert pack(flat, multiple_of=2) is flat and pack(flat, multiple_of=4) is flat
    with pytest.raises(ValueError, match=r"pack\(multiple_of=3\): the FlatTree given has buffers of lengths"):
        pack(flat, multiple_of=3)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match=r"pack\(multiple_of=.*\): multiple_of must be an integer >= 1"):
            pack(tree, multiple_of=bad)
    # no padding needed: the same layout as without
    even = {"w": jnp.ones(8, jnp.float32)}
    assert jax.tree.structure(pack(even, multiple_of=4)) == jax.tree.structure(pack(even))


def test_padded_adam_keeps_the_padding_at_zero_and_equals_per_leaf():
    tree = {"w": jnp.asarray(np.random.default_rng(0).normal(size=(3, 3)), jnp.float32)}
    grads = [{"w": jnp.asarray(np.random.default_rng(k).normal(size=(3, 3)), jnp.float32)} for k in (1, 2, 3)]
    opt = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(0.1, weight_decay=0.1))
    p, s = tree, opt.init(tree)
    fp = pack(tree, multiple_of=8)
    fs = opt.init(fp)
    for g in grads:
        u, s = opt.update(g, s, p)
        p = apply_updates(p, u)
        fu, fs = opt.update(pack(g, multiple_of=8), fs, fp)
        fp = apply_updates(fp, fu)
    assert fp.buffers[0].shape == (16,)
    np.testing.assert_array_equal(np.asarray(fp.buffers[0])[9:], 0.0)
    np.testing.assert_allclose(np.asarray(unpack(fp)["w"]), np.asarray(p["w"]), rtol=1e-6)
    mu = fs[1][0].mu
    assert mu.buffers[0].shape == (16,) and np.all(np.asarray(mu.buffers[0])[9:] == 0)


def test_flat_trees_of_different_layouts_do_not_mix():
    a = pack({"x": jnp.ones((2, 2), jnp.float32)})
    b = pack({"x": jnp.ones((4,), jnp.float32)})
    with pytest.raises(ValueError):
        jax.tree.map(jnp.add, a, b)


def test_unpack_stacked_buffers_and_per_buffer_statistics():
    tree = {"w": jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3), "b": jnp.asarray([10.0], jnp.float32)}
    flat = pack(tree)
    # A stack of flat vectors (an L-BFGS memory) unpacks to stacked leaves.
    stacked = jax.tree.map(lambda buf: jnp.stack([buf, 2 * buf]), flat)
    out = unpack(stacked)
    np.testing.assert_array_equal(out["w"], np.stack([tree["w"], 2 * tree["w"]]))
    np.testing.assert_array_equal(out["b"], [[10.0], [20.0]])
    # A per-buffer statistic does not fit: unpack of the FlatTree raises, unpack of a state keeps it as is.
    norms = jax.tree.map(jnp.linalg.norm, flat)
    with pytest.raises(ValueError, match="do not fit the layout"):
        norms.unpack()
    state = unpack({"norms": norms, "mu": flat})
    assert state["norms"] is norms
    _identical(state["mu"], tree)


def test_state_is_a_few_buffers_not_one_per_leaf():
    """Adam on 60 leaves of two dtypes: count + (mu, nu) x 2 buffers = 5 arrays, against 121 per leaf."""
    rng = np.random.default_rng(0)
    tree = {f"l{i}": jnp.asarray(rng.normal(size=(i % 4 + 1, 3)), jnp.bfloat16 if i % 3 else jnp.float32)
            for i in range(60)}
    opt = gradtx.adamw(1e-3, weight_decay=0.1)
    assert len(jax.tree.leaves(jax.eval_shape(opt.init, tree))) == 1 + 2 * 60
    flat = pack(tree)
    state = opt.init(flat)
    assert len(jax.tree.leaves(state)) == 1 + 2 * 2
    assert [b.shape for b in state[0].mu.buffers] == [(sum(x.size for x in jax.tree.leaves(tree) if x.dtype == d),)
                                                       for d in (jnp.float32, jnp.bfloat16)]
    step = jax.jit(lambda g, s, p: (lambda u_s: (apply_updates(p, u_s[0]), u_s[1]))(opt.update(g, s, p)))
    assert len(jax.tree.leaves(step(pack(random_like(tree, 1)), state, flat))) == 2 + 5


def test_grads_through_unpack_are_a_flat_tree_built_by_concatenation():
    tree = _mixed()
    del tree["b"][2]  # integer leaves have no gradient

    def loss(t):
        return sum(jnp.sum(jnp.sin(x.astype(jnp.float64)) * (i + 1)) for i, x in enumerate(jax.tree.leaves(t)))

    flat = pack(tree)
    g_flat = jax.jit(jax.grad(lambda f: loss(unpack(f))))(flat)
    assert isinstance(g_flat, FlatTree) and g_flat.layout == flat.layout
    _identical(unpack(g_flat), jax.jit(jax.grad(loss))(tree))
    # d/dx sum(k sin x) = k cos x, leaf by leaf (closed form, float64).
    for k, (x, g) in enumerate(zip(jax.tree.leaves(tree), jax.tree.leaves(unpack(g_flat)))):
        np.testing.assert_allclose(np.asarray(g, np.float64), (k + 1) * np.cos(np.asarray(x, np.float64)),
                                   rtol=1e-2 if x.dtype == jnp.bfloat16 else 1e-6)
    # The transpose of the slices is one concatenate per buffer, not a pad or scatter per leaf.
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda f: loss(unpack(f))))(flat))
    assert "concatenate" in jaxpr and "pad" not in jaxpr and "scatter" not in jaxpr
    # Forward mode works too (no custom_vjp): jvp of the loss along the flat gradient.
    _, tangent = jax.jit(lambda f, t: jax.jvp(lambda f: loss(unpack(f)), (f,), (t,)))(flat, g_flat)
    expected = sum(float(jnp.vdot(a.astype(jnp.float64), a.astype(jnp.float64))) for a in g_flat.buffers)
    np.testing.assert_allclose(float(tangent), expected, rtol=1e-2)


def test_flatten_wrapper_still_behaves():
    """gradtx.flatten (one raveled vector inside every update) equals the per-leaf adam, also on a FlatTree."""
    params = _tree()
    grads = [random_like(params, seed=k + 1) for k in range(3)]
    inner, wrapped = gradtx.adam(1e-2), gradtx.flatten(gradtx.adam(1e-2))
    state = wrapped.init(params)
    assert state[0].mu.shape == (19,)  # one vector: 6 + 1 + 12 elements
    s_in, s_wr, s_fl = inner.init(params), state, wrapped.init(pack(params))
    inner_update, wrapped_update = jax.jit(inner.update), jax.jit(wrapped.update)
    for g in grads:
        u_in, s_in = inner_update(g, s_in, params)
        u_wr, s_wr = wrapped_update(g, s_wr, params)
        u_fl, s_fl = wrapped_update(pack(g), s_fl, pack(params))
        assert _close(u_in, u_wr) and _close(u_in, unpack(u_fl))
    # The same tree order (bfloat16 leaf first, then the float32 buffer) gives the same raveled state.
    assert _close(s_wr, s_fl)


def test_pack_by_sharding_on_one_device_is_pack():
    """Without leaves split over mesh axes, ``by_sharding`` changes nothing; bad values name the call."""
    tree = {"w": jnp.ones((3, 4)), "b": jnp.arange(4.0), "h": jnp.ones(2, jnp.bfloat16)}
    a, b = gradtx.flat.pack(tree), gradtx.flat.pack(tree, by_sharding=True)
    assert jax.tree.structure(a) == jax.tree.structure(b) and b.split == ()
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match=r"pack\(by_sharding=1\): by_sharding must be True or False"):
        gradtx.flat.pack(tree, by_sharding=1)
    with pytest.raises(ValueError, match=r"pack\(by_sharding=True\): the leaf \['b'\] is traced"):
        jax.jit(lambda t: gradtx.flat.pack(t, by_sharding=True).buffers)(tree)


def test_split_leaves_unpack_from_rows():
    """A FlatTree whose 2-D buffer holds leaves by rows (as ``pack(by_sharding=True)`` lays out leaves split
    over 2 devices, here built by hand on one device) unpacks each leaf from its rows, moved back."""
    w = jnp.arange(24.0, dtype=jnp.float32).reshape(4, 6)   # split along dimension 1 into 2 parts
    e = jnp.arange(8.0, dtype=jnp.float32).reshape(2, 4)    # split along dimension 0
    rows = jnp.concatenate([e.reshape(2, 4), jnp.moveaxis(w, 1, 0).reshape(2, 12)], axis=1)  # in tree order
    treedef = jax.tree.structure({"e": 0, "w": 0})
    flat = gradtx.flat.FlatTree((rows,), treedef, ((0, 0, (2, 4)), (0, 4, (4, 6))), (), ((0, 2), (1, 2)))
    assert flat.sizes() == (16,) and flat.fits()
    back = flat.unpack()
    np.testing.assert_array_equal(back["w"], w)
    np.testing.assert_array_equal(back["e"], e)
    assert repr(flat) == "FlatTree(2 leaves in (float32[2, 16]))"
