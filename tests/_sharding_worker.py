"""Body of tests/test_sharding.py that needs 8 devices: run as a script with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (the test process already has one device).

Every check asserts; the script prints ``CHECK <name> ok`` after each one so the test can tell that all ran.
"""

from __future__ import annotations

import functools
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx
from gradtx.sharding import device_bytes, state_shardings, zero1_shardings

assert jax.device_count() == 8, jax.devices()
jax.config.update("jax_numpy_dtype_promotion", "strict")


def ok(name: str) -> None:
    print(f"CHECK {name} ok", flush=True)


def host_params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "w1": rng.normal(size=(16, 32)).astype(np.float32) / 4,
        "b1": rng.normal(size=(32,)).astype(np.float32) / 10,
        "w2": rng.normal(size=(32, 8)).astype(np.float32) / 6,
        "b2": rng.normal(size=(8,)).astype(np.float32) / 10,
    }


SPECS = {"w1": P(None, "model"), "b1": P("model"), "w2": P("model", None), "b2": P()}


def place(tree: dict[str, np.ndarray], mesh: jax.sharding.Mesh, specs: dict[str, P]) -> dict[str, jax.Array]:
    return {k: jax.device_put(v, NamedSharding(mesh, specs[k])) for k, v in tree.items()}


def param_shaped(state, params):
    """``(path, state leaf, param)`` for every state leaf that mirrors a parameter (its path ends with the
    parameter's key and it has the parameter's shape)."""
    found = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        last = path[-1] if path else None
        key = getattr(last, "key", None)
        if key in params and np.shape(leaf) == np.shape(params[key]):
            found.append((jax.tree_util.keystr(path), leaf, params[key]))
    return found


def norm_spec(spec: P) -> tuple:
    """``P(None, 'model')`` and ``P(None, 'model', None)`` name one layout: trailing ``None`` removed."""
    entries = list(spec)
    while entries and entries[-1] is None:
        entries.pop()
    return tuple(entries)


def same_layout(a: jax.sharding.Sharding, b: jax.sharding.Sharding, ndim: int) -> bool:
    """Same devices, same partitioning, same mesh axes (not merely equivalent placements)."""
    return a.is_equivalent_to(b, ndim) and norm_spec(a.spec) == norm_spec(b.spec)


def optimizers():
    labels = {"w1": "a", "b1": "b", "w2": "a", "b2": "b"}
    return {
        "sgd_momentum": gradtx.sgd(0.1, momentum=0.9),
        "adam": gradtx.adam(1e-2),
        "adamw": gradtx.adamw(1e-2, weight_decay=1e-2),
        "adafactor": gradtx.adafactor(1e-2, min_dim_size_to_factor=64),
        "adafactor_factored": gradtx.adafactor(1e-2, min_dim_size_to_factor=8),
        "lion": gradtx.lion(1e-3),
        "clip_chain": gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(1e-2)),
        "partition": gradtx.partition({"a": gradtx.adam(1e-2), "b": gradtx.sgd(0.1, momentum=0.5)}, labels),
        "masked": gradtx.masked(gradtx.adam(1e-2), {"w1": True, "b1": False, "w2": True, "b2": False}),
    }


def check_init_shardings() -> None:
    """Eager init, jit(init) on an explicit mesh, and jit(init, out_shardings=state_shardings) on an Auto mesh
    all give every parameter-shaped state leaf exactly its parameter's sharding; scalars are replicated."""
    explicit = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Explicit,) * 2)
    auto = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    for mesh_name, mesh in (("explicit", explicit), ("auto", auto)):
        params = place(host_params(), mesh, SPECS)
        for name, opt in optimizers().items():
            planned = state_shardings(opt, params)
            runs = {"eager": opt.init(params)}
            if mesh_name == "explicit":
                with jax.set_mesh(mesh):
                    runs["jit"] = jax.jit(opt.init)(params)
            runs["jit_out_shardings"] = jax.jit(opt.init, out_shardings=planned)(params)
            for how, state in runs.items():
                checked = param_shaped(state, params)
                assert len(checked) >= (2 if name == "adafactor_factored" else 4), (mesh_name, name, how)
                for path, leaf, p in checked:
                    assert same_layout(leaf.sharding, p.sharding, p.ndim), (
                        mesh_name, name, how, path, leaf.sharding, p.sharding)
                for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
                    if leaf.ndim == 0 and how != "eager":  # eager scalars live on one device
                        assert leaf.sharding.is_fully_replicated, (name, how, jax.tree_util.keystr(path))
            # the plan is what jit produced, leaf by leaf
            for s, leaf in zip(jax.tree.leaves(planned), jax.tree.leaves(runs["jit_out_shardings"])):
                assert norm_spec(s.spec) == norm_spec(leaf.sharding.spec), (name, s, leaf.sharding)
            ok(f"init_shardings[{mesh_name},{name}]")


def mlp_loss(params, x, y, out_sharding=None):
    """A two-layer MLP; on an explicit mesh the second matmul contracts the "model" axis, so its output
    layout is named (``P("data", None)``: JAX all-reduces over "model")."""
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    out = jnp.matmul(h, params["w2"], out_sharding=out_sharding) + params["b2"]
    return jnp.mean((out - y) ** 2)


def make_step(opt, out_shardings=None, matmul_sharding=None):
    def step(params, state, x, y):
        grads = jax.grad(mlp_loss)(params, x, y, matmul_sharding)
        updates, state = opt.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    return jax.jit(step, out_shardings=out_shardings) if out_shardings is not None else jax.jit(step)


def batches(n: int = 5):
    rng = np.random.default_rng(1)
    return [(rng.normal(size=(16, 16)).astype(np.float32), rng.normal(size=(16, 8)).astype(np.float32))
            for _ in range(n)]


def single_device_run(opt, data):
    dev = jax.devices()[0]
    params = jax.device_put(host_params(), dev)
    state = opt.init(params)
    step = make_step(opt)
    for x, y in data:
        params, state = step(params, state, jax.device_put(x, dev), jax.device_put(y, dev))
    assert all(leaf.sharding.device_set == {dev} for leaf in jax.tree.leaves(params))
    return {k: np.asarray(v) for k, v in params.items()}


def assert_params_close(got, want, what: str) -> None:
    for k in want:
        moved = np.max(np.abs(want[k] - host_params()[k]))
        assert moved > 1e-3, (what, k, "the reference did not move")
        np.testing.assert_allclose(np.asarray(got[k]), want[k], rtol=2e-5, atol=2e-6, err_msg=f"{what}: {k}")


def check_data_model_parallel() -> None:
    """Batch split on "data", weights on "model": 5 Adam steps equal the single-device run, and the state
    keeps the parameters' shardings after every step."""
    data = batches()
    opt = gradtx.adam(1e-2)
    want = single_device_run(opt, data)
    for mesh_name, types in (("explicit", AxisType.Explicit), ("auto", AxisType.Auto)):
        mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(types,) * 2)
        params = place(host_params(), mesh, SPECS)
        state_sh = state_shardings(opt, params)
        param_sh = {k: v.sharding for k, v in params.items()}
        with jax.set_mesh(mesh):
            state = jax.jit(opt.init, out_shardings=state_sh)(params)
            named = P("data", None) if types == AxisType.Explicit else None
            step = make_step(opt, out_shardings=(param_sh, state_sh), matmul_sharding=named)
            batch_sh = NamedSharding(mesh, P("data", None))
            for x, y in data:
                params, state = step(params, state, jax.device_put(x, batch_sh), jax.device_put(y, batch_sh))
                for path, leaf, p in param_shaped(state, params):
                    assert same_layout(leaf.sharding, p.sharding, p.ndim), (mesh_name, path)
        for k, v in params.items():
            assert norm_spec(v.sharding.spec) == norm_spec(SPECS[k]), (k, v.sharding)
        assert_params_close(params, want, f"data+model parallel ({mesh_name})")
        ok(f"data_model_parallel[{mesh_name}]")


def check_zero1_layout() -> None:
    """zero1_shardings: the largest divisible dimension (first on ties), replicated when none divides, scalars
    replicated, an existing "model" split kept."""
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    shapes = {"a": (3, 5), "b": (8, 24), "c": (24, 8), "d": (16, 16), "e": (), "f": (4,), "g": (2, 3, 40)}
    tree = {k: jax.ShapeDtypeStruct(s, jnp.float32) for k, s in shapes.items()}
    got = {k: s.spec for k, s in zero1_shardings(tree, mesh).items()}
    assert got == {"a": P(None, None), "b": P(None, "data"), "c": P("data", None), "d": P("data", None),
                   "e": P(), "f": P(None), "g": P(None, None, "data")}, got
    mesh2 = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    leaf = jax.device_put(jnp.zeros((8, 16)), NamedSharding(mesh2, P(None, "model")))
    assert zero1_shardings([leaf], mesh2)[0].spec == P("data", "model")
    assert zero1_shardings([leaf], mesh2, axis=("data", "model"))[0].spec == P(None, "model")
    try:
        zero1_shardings(tree, mesh, axis="batch")
    except ValueError as e:
        assert "axis must name axes of the mesh" in str(e)
    else:
        raise AssertionError("zero1_shardings accepted an unknown axis")
    ok("zero1_layout")


def check_zero1_step() -> None:
    """ZeRO-1 on 8 data-parallel devices: params replicated, Adam state split 8 ways; 5 steps equal the
    single-device run; per-device state bytes equal the total / 8 (plus the replicated int32 counter), and the
    plan from eval_shape says the same before allocation."""
    data = batches()
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    replicated = NamedSharding(mesh, P())
    for name, opt in (("adam", gradtx.adam(1e-2)), ("clip_adamw", gradtx.chain(
            gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-2, weight_decay=1e-2)))):
        want = single_device_run(opt, data)
        params = jax.device_put(host_params(), replicated)
        shapes = jax.eval_shape(opt.init, params)
        state_sh = zero1_shardings(shapes, mesh)
        state = jax.jit(opt.init, out_shardings=state_sh)(params)
        p_bytes = sum(v.size * v.dtype.itemsize for v in host_params().values())
        expected = 2 * p_bytes // 8 + 4  # mu and nu split 8 ways, the int32 counter replicated
        per_device = device_bytes(state)
        assert len(per_device) == 8 and set(per_device.values()) == {expected}, (per_device, expected)
        assert device_bytes(shapes, state_sh) == per_device
        # plain data parallelism: the state follows the replicated params, everything on every device
        plain = device_bytes(jax.jit(opt.init, out_shardings=state_shardings(opt, params))(params))
        assert set(plain.values()) == {2 * p_bytes + 4}, plain
        for leaf in jax.tree.leaves(state):
            if leaf.ndim:
                assert "data" in leaf.sharding.spec, leaf.sharding
        step = make_step(opt, out_shardings=(jax.tree.map(lambda _: replicated, params), state_sh))
        batch_sh = NamedSharding(mesh, P("data", None))
        for x, y in data:
            params, state = step(params, state, jax.device_put(x, batch_sh), jax.device_put(y, batch_sh))
        assert device_bytes(state) == per_device
        assert all(v.sharding.is_fully_replicated for v in params.values())
        assert_params_close(params, want, f"zero1 ({name})")
        ok(f"zero1_step[{name}] state bytes per device {expected} of {2 * p_bytes + 4}")


def check_zero_flat() -> None:
    """ZeRO over flat buffers padded to a multiple of 8 (gradtx.flat.pack(multiple_of=8)) with make_step(zero=1
    or 2): the tree has 813 parameters (not divisible by 8, so per-leaf ZeRO-1 leaves a leaf replicated), the
    padded buffer 816; every device holds exactly 1/8 of mu and nu (plus the replicated counter and clip
    state), 5 steps of clip + AdamW equal the single-device per-leaf run, and stage 2 reduce-scatters the
    gradients."""
    data = batches()
    tree = {**host_params(), "odd": np.linspace(-1.0, 1.0, 5).astype(np.float32)}

    def loss(params, x, y):
        return mlp_loss(params, x, y) + 0.1 * jnp.sum(params["odd"] ** 2)

    opt = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-2, weight_decay=1e-2))
    dev = jax.devices()[0]
    ref = jax.device_put(tree, dev)
    ref_state = opt.init(ref)
    ref_step = gradtx.make_step(opt, loss)
    for x, y in data:
        ref, ref_state, _ = ref_step(ref, ref_state, jax.device_put(x, dev), jax.device_put(y, dev))
    want = {k: np.asarray(v) for k, v in ref.items()}
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    replicated = NamedSharding(mesh, P())
    batch_sh = NamedSharding(mesh, P("data", None))
    per_leaf = zero1_shardings(jax.eval_shape(opt.init, tree), mesh)
    assert per_leaf[1][0].mu["odd"].spec == P(None), "a 5-element leaf cannot split 8 ways"
    for stage in (1, 2):
        if stage == 1:  # by hand
            params = jax.device_put(gradtx.flat.pack(tree, multiple_of=8), replicated)
            state_sh = zero1_shardings(jax.eval_shape(opt.init, params), mesh)
            state = jax.jit(opt.init, out_shardings=state_sh)(params)
            step = gradtx.make_step(opt, loss, zero=stage, mesh=mesh)
        else:  # step.init packs (padded to 8) and lays the state out
            step = gradtx.make_step(opt, loss, zero=stage, mesh=mesh, flat=True)
            params, state = step.init(tree)
        assert params.sizes() == (816,), params.sizes()
        expected = 2 * 816 * 4 // 8 + 4  # mu and nu split 8 ways; the int32 counter replicated (clip: no state)
        assert set(device_bytes(state).values()) == {expected}, (device_bytes(state), expected)
        x0, y0 = (jax.device_put(a, batch_sh) for a in data[0])
        hlo = step.jitted.lower(params, state, x0, y0).compile().as_text()
        if stage == 2:  # the gradients are reduce-scattered; only the scalar loss is all-reduced
            assert "reduce-scatter" in hlo, "stage 2 should reduce-scatter the gradients"
            arrays = [ln for ln in hlo.splitlines() if " all-reduce(" in ln and re.search(r"f32\[\d", ln)]
            assert not arrays, arrays
        for x, y in data:
            params, state, _ = step(params, state, jax.device_put(x, batch_sh), jax.device_put(y, batch_sh))
        assert set(device_bytes(state).values()) == {expected}
        assert all(b.sharding.is_fully_replicated for b in params.buffers)
        got = gradtx.flat.unpack(params)
        assert_params_close({k: got[k] for k in host_params()}, {k: want[k] for k in host_params()},
                            f"zero{stage} flat")
        np.testing.assert_allclose(np.asarray(got["odd"]), want["odd"], rtol=2e-5, atol=2e-6)
        np.testing.assert_array_equal(np.asarray(params.buffers[0])[813:], 0.0)  # the padding stays zero
        ok(f"zero_flat[stage{stage}] state bytes per device {expected} of {2 * 816 * 4 + 4}")


def check_flat_by_sharding() -> None:
    """Model-parallel flat buffers (``pack(by_sharding=True)``, ``make_step(flat=True)``) on a 2x4 ("data",
    "model") mesh, Explicit and Auto: leaves split over "model" (along dimension 0 or 1) share one (4, k)
    buffer split by rows over "model", each device holding only its own elements; the replicated leaves one 1-D
    buffer; ``unpack`` gives the leaves back with their shardings; the state's buffers are laid out like the
    params'; 3 steps of clip + AdamW equal the per-leaf run; the compiled AdamW update has no collective; a
    leaf split along two dimensions is refused with its path."""
    tree = host_params()
    for kind, types in (("explicit", (AxisType.Explicit,) * 2), ("auto", (AxisType.Auto,) * 2)):
        mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=types)
        params = place(tree, mesh, SPECS)
        flat = gradtx.flat.pack(params, by_sharding=True)
        shapes = sorted(tuple(b.shape) for b in flat.buffers)
        model_cols = (16 * 32 + 32 + 32 * 8) // 4
        assert shapes == [(4, model_cols), (8,)], shapes
        big = next(b for b in flat.buffers if b.ndim == 2)
        assert norm_spec(big.sharding.spec) == ("model",), big.sharding
        assert {tuple(sh.data.shape) for sh in big.addressable_shards} == {(1, model_cols)}
        back = gradtx.flat.unpack(flat)
        for k in tree:
            np.testing.assert_array_equal(np.asarray(back[k]), tree[k])
            assert same_layout(back[k].sharding, params[k].sharding, tree[k].ndim), (k, back[k].sharding)
        opt = gradtx.chain(gradtx.clip_by_global_norm(0.5), gradtx.adamw(1e-2, weight_decay=1e-2))
        # explicit axes: the second matmul contracts "model", so its (replicated) output layout is named
        loss_fn = functools.partial(mlp_loss, out_sharding=NamedSharding(mesh, P()) if kind == "explicit" else None)
        step = gradtx.make_step(opt, loss_fn, flat=True)
        p, s = step.init(place(tree, mesh, SPECS))
        for buf in jax.tree.leaves(s[1][0].mu):
            match = next(b for b in p.buffers if b.shape == buf.shape)
            assert same_layout(buf.sharding, match.sharding, buf.ndim), buf.sharding
        ref_step = gradtx.make_step(opt, loss_fn)
        rp = place(tree, mesh, SPECS)
        rs = opt.init(rp)
        for x, y in batches()[:3]:
            p, s, loss = step(p, s, x, y)
            rp, rs, ref_loss = ref_step(rp, rs, x, y)
            np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-6)
        got = gradtx.flat.unpack(p)
        for k in tree:
            np.testing.assert_allclose(np.asarray(got[k]), np.asarray(rp[k]), rtol=2e-6, atol=2e-7)
        adamw = gradtx.adamw(1e-2)
        grads = gradtx.flat.pack(place(tree, mesh, SPECS), by_sharding=True)
        hlo = gradtx.make_step(adamw, flat=True).jitted.lower(p, adamw.init(p), grads).compile().as_text()
        assert not re.search(r"all-gather|all-reduce|collective-permute|all-to-all", hlo), kind
        ok(f"flat_by_sharding[{kind}]")
    mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    try:
        gradtx.flat.pack({"w": jax.device_put(tree["w1"], NamedSharding(mesh, P("data", "model")))}, by_sharding=True)
    except ValueError as e:
        assert "pack(by_sharding=True): the leaf ['w'] is split along 2 dimensions" in str(e), e
    else:
        raise AssertionError("pack(by_sharding=True) accepted a leaf split along two dimensions")
    ok("flat_by_sharding_errors")


def check_device_bytes_errors() -> None:
    try:
        device_bytes({"x": jax.ShapeDtypeStruct((4,), jnp.float32)})
    except ValueError as e:
        assert "['x']" in str(e) and "no concrete sharding" in str(e), e
    else:
        raise AssertionError("device_bytes accepted a leaf without sharding")
    ok("device_bytes_errors")


CHECKS = {f.__name__: f for f in (check_init_shardings, check_data_model_parallel, check_zero1_layout,
                                  check_zero1_step, check_zero_flat, check_flat_by_sharding,
                                  check_device_bytes_errors)}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(CHECKS):
        functools.partial(CHECKS[name])()
    print("ALL DONE", flush=True)
