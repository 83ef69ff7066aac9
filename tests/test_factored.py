"""Factored second moments (Adafactor) and SM3: closed forms, the per-leaf oracle on rank-3 and square leaves,
Optax on the same trees, identities between compositions, dtypes and construction errors."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import registry  # noqa: F401 - loads every family registry before this family's
from registry_factored import ENTRIES

import gradtx
from gradtx import tree as gtree
from gradtx.combine import chain
from gradtx.optimizers.factored import adafactor, sm3
from gradtx.testing.reference import factored as rf
from gradtx.transforms import scale, scale_by_learning_rate
from gradtx.transforms.factored import FactoredState, ScaleBySM3State, scale_by_factored_rms, scale_by_sm3

SHAPES = {"m": (3, 5), "sq": (4, 4), "r3": (2, 3, 4), "tie3": (4, 3, 4), "v": (5,), "s": ()}


def _params(dtype=jnp.float64, shapes=SHAPES, seed=0):
    rng = np.random.default_rng(seed)
    tree = {k: jnp.asarray(rng.normal(size=s), dtype) for k, s in shapes.items()}
    tree["none"] = None
    return tree


def _by_path(tree):
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(k): np.asarray(v, np.float64) for k, v in flat}


def _random_like(tree, rng, scale_choices=(0.01, 1.0, 30.0)):
    s = rng.choice(scale_choices)
    return jax.tree.map(lambda x: jnp.asarray(rng.normal(size=jnp.shape(x)) * s, jnp.result_type(x)), tree)


def _mask_for(params):
    """A weight-decay mask shaped like ``params`` (some leaves decayed), as a tree and as {path: bool}."""
    tree = {k: k in ("m", "r3", "v") for k in params if k != "none"}
    tree["none"] = None
    return tree


# --- the per-leaf oracle on a richer tree ---------------------------------------------------------------


def _make_pair(entry, params):
    if entry.uses_mask:
        mask = _mask_for(params)
        flat = {k: np.full(np.shape(v), mask[k.strip("[]'")]) for k, v in _by_path(params).items()}
        return _rebuild_with_mask(entry, mask), entry.ref(mask=flat)
    return entry.make(), entry.ref()


def _rebuild_with_mask(entry, mask):
    """The masked registry entry is built for the registry's tree; rebuild it with a mask for ours."""
    assert entry.name.startswith("adafactor(schedule, momentum, weight decay, mask)")
    from registry import SCHED

    return adafactor(SCHED.gradtx(), 2, momentum=0.9, dtype_momentum=None, weight_decay_rate=0.01,
                     weight_decay_mask=mask)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_reference_on_rank3_square_vector_and_scalar_leaves(entry):
    params = _params()
    tx, oracle = _make_pair(entry, params)
    update = jax.jit(lambda g, s, p: tx.update(g, s, p))
    state = tx.init(params)
    rng = np.random.default_rng(len(entry.name))
    for k in range(60):
        g = _random_like(params, rng)
        p = _random_like(params, rng, (1.0,))
        u, state = update(g, state, p)
        want = oracle.step(_by_path(g), _by_path(p))
        got = _by_path(u)
        assert list(got) == list(want)
        for path in got:
            scale_ = max(np.max(np.abs(want[path]), initial=0.0), 1e-30)
            np.testing.assert_allclose(got[path], want[path], rtol=1e-9, atol=1e-9 * scale_,
                                       err_msg=f"{entry.name} {path} step {k + 1}")


OPTAX_PAIRS = [
    ("scale_by_factored_rms", lambda: scale_by_factored_rms(min_dim_size_to_factor=3),
     lambda: optax.scale_by_factored_rms(min_dim_size_to_factor=3), SHAPES),
    ("scale_by_factored_rms(min 4)", lambda: scale_by_factored_rms(min_dim_size_to_factor=4),
     lambda: optax.scale_by_factored_rms(min_dim_size_to_factor=4), SHAPES),
    ("adafactor", lambda: adafactor(0.02, 2, momentum=0.8, weight_decay_rate=1e-3),
     lambda: optax.adafactor(0.02, 2, momentum=0.8, weight_decay_rate=1e-3), SHAPES),
    ("scale_by_sm3 (no scalar leaf)", scale_by_sm3, optax.scale_by_sm3,
     {k: v for k, v in SHAPES.items() if v != ()}),
    ("scale_by_sm3(b2 < 1) (no scalar leaf)", lambda: scale_by_sm3(0.5, 0.95), lambda: optax.scale_by_sm3(0.5, 0.95),
     {k: v for k, v in SHAPES.items() if v != ()}),
    ("sm3 (no scalar leaf)", lambda: sm3(0.05), lambda: optax.sm3(0.05), {k: v for k, v in SHAPES.items() if v != ()}),
]


def _paths(tree):
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [jax.tree_util.keystr(p) for p, _ in flat]


@pytest.mark.parametrize("name,ours,theirs,shapes", OPTAX_PAIRS, ids=[p[0] for p in OPTAX_PAIRS])
def test_optax_on_rank3_and_square_leaves(name, ours, theirs, shapes):
    params = _params(jnp.float32, shapes)
    a, b = ours(), theirs()
    sa, sb = a.init(params), b.init(params)
    assert _paths(sa) == _paths(sb)
    rng = np.random.default_rng(3)
    step_a, step_b = jax.jit(a.update), jax.jit(b.update)
    p = params
    for k in range(100):
        g = _random_like(params, rng, (1.0,))
        ua, sa = step_a(g, sa, p)
        ub, sb = step_b(g, sb, p)
        for x, y in zip(jax.tree.leaves(ua), jax.tree.leaves(ub)):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6, err_msg=f"{name} {k}")
        p = gradtx.apply_updates(p, ua)
    for x, y in zip(jax.tree.leaves(sa), jax.tree.leaves(sb)):
        assert jnp.result_type(x) == jnp.result_type(y)
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-3, atol=1e-6)


# --- closed forms: the factored estimate ----------------------------------------------------------------


def test_factored_second_moment_of_a_rank_one_square_is_exact():
    # g^2 = a_i^2 b_j^2 is rank one, so R C / sum(R) reproduces it and the first update is sign(g).
    a, b = np.array([0.5, -2.0, 3.0]), np.array([1.0, 0.1, -4.0, 2.0, 0.3])
    g = {"w": jnp.asarray(np.outer(a, b))}
    tx = scale_by_factored_rms(min_dim_size_to_factor=1, epsilon=0.0)
    state = tx.init(g)
    for _ in range(5):  # a constant rank-one gradient: every later estimate is exact too
        u, state = tx.update(g, state)
        np.testing.assert_allclose(np.asarray(u["w"]), np.sign(np.outer(a, b)), rtol=1e-12)
    assert state.v_row["w"].shape == (3,) and state.v_col["w"].shape == (5,)


def test_factored_estimate_is_exact_per_slice_of_a_rank_three_leaf():
    rng = np.random.default_rng(1)
    c, a, b = rng.normal(size=2), rng.normal(size=3), rng.normal(size=4)
    g = np.einsum("k,i,j->kij", c, a, b)  # each slice g[k] is rank one
    tx = scale_by_factored_rms(min_dim_size_to_factor=3, epsilon=0.0)
    u, state = tx.update({"t": jnp.asarray(g)}, tx.init({"t": jnp.asarray(g)}))
    np.testing.assert_allclose(np.asarray(u["t"]), np.sign(g), rtol=1e-12)
    assert state.v_row["t"].shape == (2, 3) and state.v_col["t"].shape == (2, 4)  # d0 = 2, d1 = 1 reduced


def test_factored_estimate_of_a_general_matrix_is_row_times_column_over_total():
    rng = np.random.default_rng(2)
    g = rng.normal(size=(3, 4))
    tx = scale_by_factored_rms(min_dim_size_to_factor=3, epsilon=0.0)
    u, _ = tx.update({"w": jnp.asarray(g)}, tx.init({"w": jnp.asarray(g)}))
    sq = g**2
    v_hat = np.outer(sq.sum(1), sq.sum(0)) / sq.sum()
    np.testing.assert_allclose(np.asarray(u["w"]), g / np.sqrt(v_hat), rtol=1e-12)


def test_decay_schedule_of_the_second_moment():
    g1, g2, g3 = (jnp.asarray([1.0, -2.0]), jnp.asarray([3.0, 0.5]), jnp.asarray([-1.0, 1.0]))
    tx = scale_by_factored_rms(decay_rate=0.8, epsilon=0.0)
    state = tx.init({"v": g1})
    u1, state = tx.update({"v": g1}, state)  # beta_1 = 1 - 1**-0.8 = 0: v = g1^2
    np.testing.assert_allclose(np.asarray(u1["v"]), [1.0, -1.0])
    u2, state = tx.update({"v": g2}, state)
    b2 = 1 - 2**-0.8
    v2 = b2 * np.asarray(g1) ** 2 + (1 - b2) * np.asarray(g2) ** 2
    np.testing.assert_allclose(np.asarray(u2["v"]), np.asarray(g2) / np.sqrt(v2), rtol=1e-12)
    u3, _ = tx.update({"v": g3}, state)
    b3 = 1 - 3**-0.8
    v3 = b3 * v2 + (1 - b3) * np.asarray(g3) ** 2
    np.testing.assert_allclose(np.asarray(u3["v"]), np.asarray(g3) / np.sqrt(v3), rtol=1e-12)


def test_step_offset_shifts_the_decay_schedule():
    g = {"v": jnp.asarray([1.0, 2.0])}
    shifted = scale_by_factored_rms(step_offset=-3, epsilon=0.0)
    state = shifted.init(g)
    _, state = shifted.update(g, state)  # beta = 1 - 4**-0.8 applied to v_0 = 0
    np.testing.assert_allclose(np.asarray(state.v["v"]), 4**-0.8 * np.asarray(g["v"]) ** 2, rtol=1e-12)


def test_which_leaves_are_factored():
    params = _params()
    shapes = lambda tx: jax.tree.map(jnp.shape, tx.init(params))  # noqa: E731
    s = shapes(scale_by_factored_rms(min_dim_size_to_factor=3))
    assert s.v_row["m"] == (3,) and s.v_col["m"] == (5,) and s.v["m"] == (1,)
    assert s.v_row["sq"] == (4,) and s.v_col["sq"] == (4,)
    assert s.v_row["tie3"] == (4, 3) and s.v_col["tie3"] == (3, 4)  # ties: the later axis is the largest
    assert s.v["v"] == (5,) and s.v_row["v"] == (1,) and s.v["s"] == ()
    s = shapes(scale_by_factored_rms(min_dim_size_to_factor=4))
    assert s.v["m"] == (3, 5) and s.v_row["sq"] == (4,) and s.v["r3"] == (2, 3, 4)
    s = shapes(scale_by_factored_rms(factored=False, min_dim_size_to_factor=0))
    assert all(s.v[k] == shape for k, shape in SHAPES.items())
    assert s.v_row["none"] is None


def test_factored_state_memory_is_sublinear():
    p = {"w": jnp.zeros((256, 512), jnp.float32)}
    state = scale_by_factored_rms().init(p)
    assert isinstance(state, FactoredState)
    assert sum(x.size for x in jax.tree.leaves(state)) == 256 + 512 + 1 + 1


def test_factored_keeps_dtypes_and_handles_complex():
    for dtype in (jnp.bfloat16, jnp.float32, jnp.float64):
        p = {"w": jnp.ones((3, 4), dtype), "b": jnp.ones(4, dtype)}
        tx = scale_by_factored_rms(min_dim_size_to_factor=3)
        with jax.numpy_dtype_promotion("strict"):
            u, state = tx.update(p, tx.init(p))
        assert u["w"].dtype == dtype and state.v_row["w"].dtype == dtype
    z = {"c": jnp.asarray([3 + 4j, -1j], jnp.complex64)}
    tx = scale_by_factored_rms(epsilon=0.0)
    with jax.numpy_dtype_promotion("strict"):
        u, state = tx.update(z, tx.init(z))
    assert state.v["c"].dtype == jnp.float32 and u["c"].dtype == jnp.complex64
    np.testing.assert_allclose(np.asarray(u["c"]), [0.6 + 0.8j, -1j], rtol=1e-6)  # g / |g|


def test_custom_decay_rate_fn_receives_the_shifted_step():
    seen = []

    def constant_decay(step, rate):
        seen.append(step)
        return jnp.asarray(0.5, rate.dtype) + 0 * rate

    tx = scale_by_factored_rms(step_offset=2, decay_rate_fn=constant_decay, epsilon=0.0)
    g = {"v": jnp.asarray([2.0])}
    state = tx.init(g)
    state = state._replace(count=jnp.asarray(7, jnp.int32))
    _, state = tx.update(g, state)
    assert int(seen[0]) == 5
    np.testing.assert_allclose(np.asarray(state.v["v"]), [0.5 * 4.0])


# --- closed forms: SM3 ------------------------------------------------------------------------------------


def test_sm3_on_a_vector_is_diagonal_adagrad():
    tx = scale_by_sm3(b1=0.0, eps=0.0)
    gs = [jnp.asarray([1.0, -2.0, 0.0]), jnp.asarray([2.0, 1.0, 0.0]), jnp.asarray([-2.0, 2.0, 3.0])]
    state = tx.init({"v": gs[0]})
    total = np.zeros(3)
    for g in gs:
        u, state = tx.update({"v": g}, state)
        total += np.asarray(g) ** 2
        want = np.where(total > 0, np.asarray(g) / np.sqrt(np.where(total > 0, total, 1)), 0.0)  # 0/0 = 0
        np.testing.assert_allclose(np.asarray(u["v"]), want, rtol=1e-12)


def test_sm3_on_a_matrix_by_hand():
    tx = scale_by_sm3(b1=0.0, eps=0.0)
    g1 = np.array([[1.0, 2.0], [3.0, 0.5]])
    g2 = np.array([[1.0, 1.0], [1.0, 1.0]])
    state = tx.init({"w": jnp.asarray(g1)})
    u1, state = tx.update({"w": jnp.asarray(g1)}, state)
    np.testing.assert_allclose(np.asarray(u1["w"]), np.sign(g1))  # nu' = g1^2 on the first step
    rows, cols = np.max(g1**2, axis=1), np.max(g1**2, axis=0)  # [4, 9] and [9, 4]
    np.testing.assert_allclose(np.asarray(state.mu["w"][0]), rows)
    np.testing.assert_allclose(np.asarray(state.mu["w"][1]), cols)
    u2, state = tx.update({"w": jnp.asarray(g2)}, state)
    nu = g2**2 + np.minimum(rows[:, None], cols[None, :])  # [[5, 5], [10, 5]]
    np.testing.assert_allclose(np.asarray(u2["w"]), g2 / np.sqrt(nu), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(state.mu["w"][0]), [5.0, 10.0])


def test_sm3_accumulator_bounds_the_sum_of_squares():
    # Anil et al. 2019, Claim 2: for SM3-II, nu'_t(i) >= sum_{s<=t} g_s(i)^2 (so steps are never larger than
    # Adagrad's).
    rng = np.random.default_rng(4)
    tx = scale_by_sm3(b1=0.0, eps=0.0)
    p = {"w": jnp.zeros((3, 4)), "t": jnp.zeros((2, 3, 2))}
    state = tx.init(p)
    total = jax.tree.map(lambda x: np.zeros(x.shape), p)
    for _ in range(20):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape)), p)
        u, state = tx.update(g, state)
        for k in p:
            total[k] = total[k] + np.asarray(g[k]) ** 2
            nu = (np.asarray(g[k]) / np.asarray(u[k])) ** 2
            assert np.all(nu >= total[k] * (1 - 1e-12))


def test_sm3_momentum_and_scalars():
    tx = scale_by_sm3(b1=0.5, eps=0.0)
    state = tx.init({"s": jnp.asarray(2.0)})
    assert isinstance(state, ScaleBySM3State) and state.mu["s"][0].shape == ()
    u, state = tx.update({"s": jnp.asarray(2.0)}, state)
    assert float(u["s"]) == pytest.approx(0.5)  # 0.5 * 0 + 0.5 * sign(g)
    u, state = tx.update({"s": jnp.asarray(-1.0)}, state)
    assert float(u["s"]) == pytest.approx(0.5 * 0.5 + 0.5 * (-1.0 / np.sqrt(5.0)))


def test_sm3_zero_size_leaf_beside_a_matrix():
    # a (1, 0, 2) leaf has accumulators of sizes 1, 0 and 2 and nothing to reduce over (found by the fuzz test)
    tx = scale_by_sm3(b1=0.0, eps=0.0)
    params = {"empty": jnp.zeros((1, 0, 2)), "w": jnp.zeros((2, 2))}
    state = tx.init(params)
    g = {"empty": jnp.zeros((1, 0, 2)), "w": jnp.asarray([[3.0, 0.0], [0.0, 4.0]])}
    u, state = jax.jit(tx.update)(g, state)
    assert u["empty"].shape == (1, 0, 2)
    np.testing.assert_array_equal([m.shape for m in state.mu["empty"]], [(1,), (0,), (2,)])
    np.testing.assert_array_equal(state.mu["empty"][0], [0.0])  # the max over no entries of squares >= 0
    np.testing.assert_allclose(u["w"], [[1.0, 0.0], [0.0, 1.0]])  # g / sqrt(g^2) where g != 0


def test_sm3_rejects_complex_parameters():
    with pytest.raises(ValueError, match=r"scale_by_sm3\.init: complex parameters are not supported"):
        scale_by_sm3().init({"c": jnp.ones(2, jnp.complex64)})


# --- identities between compositions ----------------------------------------------------------------------


def _run(tx, params, steps=15, seed=5):
    rng = np.random.default_rng(seed)
    state, out = tx.init(params), []
    for _ in range(steps):
        g = _random_like(params, rng, (1.0,))
        u, state = tx.update(g, state, params)
        out.append(u)
    return out


def _assert_same_runs(a, b, rtol=1e-12):
    for x, y in zip(a, b):
        for xa, ya in zip(jax.tree.leaves(x), jax.tree.leaves(y)):
            np.testing.assert_allclose(np.asarray(xa), np.asarray(ya), rtol=rtol, atol=1e-15)


def test_adafactor_without_extras_is_the_factored_scaling_times_minus_lr():
    params = _params()
    plain = adafactor(0.1, 3, multiply_by_parameter_scale=False, clipping_threshold=None)
    composed = chain(scale_by_factored_rms(min_dim_size_to_factor=3), scale(-0.1))
    _assert_same_runs(_run(plain, params), _run(composed, params))


def test_adafactor_weight_decay_zero_and_momentum_zero_change_nothing():
    params = _params()
    base = _run(adafactor(0.1, 3), params)
    _assert_same_runs(base, _run(adafactor(0.1, 3, weight_decay_rate=0.0), params))
    _assert_same_runs(base, _run(adafactor(0.1, 3, momentum=0.0, dtype_momentum=None), params))


def test_sm3_momentum_none_is_momentum_zero():
    params = _params()
    a, b = _run(sm3(0.1, None), params), _run(sm3(0.1, 0.0), params)
    _assert_same_runs(a, b)
    _assert_same_runs(a, _run(chain(scale_by_sm3(0.0), scale_by_learning_rate(0.1)), params))


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"learning_rate": 0.1}, {"clipping_threshold": None, "momentum": 0.9},
     {"learning_rate": optax.constant_schedule(0.1), "multiply_by_parameter_scale": False, "momentum": 0.5,
      "weight_decay_rate": 0.1}],
    ids=["default", "lr", "no clipping, momentum", "schedule, no scale, momentum, decay"],
)
def test_adafactor_state_layout_is_optaxs(kwargs):
    params = _params(jnp.float32)
    ours = adafactor(**kwargs)
    theirs = optax.adafactor(**kwargs)
    sa, sb = ours.init(params), theirs.init(params)
    assert _paths(sa) == _paths(sb)
    assert [jnp.result_type(x) for x in jax.tree.leaves(sa)] == [jnp.result_type(x) for x in jax.tree.leaves(sb)]


def test_adafactor_momentum_is_stored_in_dtype_momentum():
    # float64 params with a float32 momentum run under standard promotion: gradtx.tree.update_moment mixes the
    # accumulator's and the update's dtypes (reported to the lead; not this family's code).
    for dtype, promotion in ((jnp.bfloat16, "strict"), (jnp.float64, "standard")):
        p = {"w": jnp.ones((3, 4), dtype)}
        tx = adafactor(0.1, 3, momentum=0.9)
        with jax.numpy_dtype_promotion(promotion):
            u, state = tx.update(p, tx.init(p), p)
        assert gtree.get(state, "ema")["w"].dtype == jnp.float32
        assert u["w"].dtype == dtype


def test_eval_shape_of_init():
    params = _params(jnp.float32)
    for tx in (adafactor(0.1, 2, momentum=0.9), sm3(0.1)):
        shapes = jax.eval_shape(tx.init, params)
        real = tx.init(params)
        assert jax.tree.map(lambda x: (x.shape, x.dtype), shapes) == jax.tree.map(lambda x: (x.shape, x.dtype), real)


def test_repr_reads_like_the_recipe():
    assert repr(adafactor(0.01, momentum=0.9)) == (
        "chain(\n"
        "  scale_by_factored_rms(factored=True, decay_rate=0.8, step_offset=0, min_dim_size_to_factor=128, "
        "epsilon=1e-30, decay_rate_fn=_decay_rate_pow),\n"
        "  clip_by_block_rms(threshold=1.0),\n"
        "  scale_by_learning_rate(learning_rate=0.01, flip_sign=False),\n"
        "  scale_by_param_block_rms(min_scale=0.001),\n"
        "  ema(decay=0.9, debias=False, accumulator_dtype=float32),\n"
        "  scale(step_size=-1.0),\n"
        ")"
    )
    assert repr(scale_by_sm3()) == "scale_by_sm3(b1=0.9, b2=1.0, eps=1e-08)"


def test_hyperparameters_are_leaves_and_options_static():
    tx = scale_by_factored_rms()
    assert [float(x) for x in jax.tree.leaves(tx)] == [0.8, 0.0, 1e-30]
    fn = jax.jit(chex.assert_max_traces(lambda t, g, s: t.update(g, s), n=1))
    p = {"w": jnp.ones((3, 4))}
    for rate in (0.8, 0.5):
        t = scale_by_factored_rms(decay_rate=rate, min_dim_size_to_factor=3)
        fn(t, p, t.init(p))


# --- construction errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: scale_by_factored_rms(decay_rate=-0.5),
         "scale_by_factored_rms(decay_rate=-0.5): decay_rate must be in [0, inf)"),
        (lambda: scale_by_factored_rms(decay_rate=float("inf")),
         "scale_by_factored_rms(decay_rate=inf): decay_rate must be in [0, inf)"),
        (lambda: scale_by_factored_rms(step_offset=1.5),
         "scale_by_factored_rms(step_offset=1.5): step_offset must be a whole number"),
        (lambda: scale_by_factored_rms(min_dim_size_to_factor=-1),
         "scale_by_factored_rms(min_dim_size_to_factor=-1): min_dim_size_to_factor must be a whole number >= 0"),
        (lambda: scale_by_factored_rms(min_dim_size_to_factor=2.5),
         "scale_by_factored_rms(min_dim_size_to_factor=2.5): min_dim_size_to_factor must be a whole number >= 0"),
        (lambda: scale_by_factored_rms(epsilon=-1e-3),
         "scale_by_factored_rms(epsilon=-0.001): epsilon must be in [0, inf)"),
        (lambda: scale_by_factored_rms(factored="yes"),
         "scale_by_factored_rms(factored='yes'): factored must be True or False"),
        (lambda: scale_by_factored_rms(decay_rate_fn=3),
         "scale_by_factored_rms(decay_rate_fn=3): decay_rate_fn must be a callable"),
        (lambda: scale_by_sm3(b1=1.5), "scale_by_sm3(b1=1.5): b1 must be in [0, 1]"),
        (lambda: scale_by_sm3(b2=-0.1), "scale_by_sm3(b2=-0.1): b2 must be in [0, 1]"),
        (lambda: scale_by_sm3(eps=-1.0), "scale_by_sm3(eps=-1.0): eps must be in [0, inf)"),
        (lambda: sm3(0.1, momentum=2.0),
         "sm3(momentum=2.0): momentum was given to scale_by_sm3 as b1: b1 must be in [0, 1]"),
        (lambda: adafactor(clipping_threshold=0.0),
         "adafactor(clipping_threshold=0.0): clipping_threshold was given to clip_by_block_rms as threshold: "
         "threshold must be > 0"),
        (lambda: adafactor(momentum=1.5),
         "adafactor(momentum=1.5): momentum was given to ema as decay: decay must be in [0, 1]"),
    ],
)
def test_construction_errors_name_call_value_and_range(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)


def test_reference_factored_axes_match_the_block():
    from gradtx.transforms.factored import _factored_dims

    for shape in [(3, 5), (5, 3), (4, 4), (2, 3, 4), (4, 3, 4), (4, 4, 4), (7,), (), (1, 1)]:
        for min_dim in (0, 3, 4, 5):
            assert rf.factored_axes(shape, True, min_dim) == _factored_dims(shape, True, min_dim), (shape, min_dim)
