"""The normalisation family beyond the registry: closed forms, construction errors, per-example clipping
against NumPy, add_noise by statistics and determinism, and Optax comparisons the generic cross-check cannot
make (PRNG keys in the state, DoG's float64 accumulator, trust ratio with its default coefficient)."""

from __future__ import annotations

import inspect
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax._src.transform import ScaleByDistanceOverGradientsState as OptaxDoGState

import gradtx
from gradtx.optimizers import trust_ratio as trust_ratio_module
from gradtx.optimizers.trust_ratio import fromage, lamb, lars, noisy_sgd
from gradtx.testing.contract import default_params, random_like
from gradtx.testing.reference import normalization as rn
from gradtx.transforms import noise as noise_module
from gradtx.transforms import normalization as normalization_module
from gradtx.transforms.noise import AddNoiseState, ApplyEvery, add_noise, apply_every
from gradtx.transforms.normalization import (
    NonNegativeParamsState,
    ScaleByDistanceOverGradientsState,
    ZeroNansState,
    adaptive_grad_clip,
    centralize,
    clip_by_block_rms,
    keep_params_nonnegative,
    normalize_by_update_norm,
    per_example_global_norm_clip,
    per_example_layer_norm_clip,
    scale_by_distance_over_gradients,
    scale_by_param_block_norm,
    scale_by_param_block_rms,
    scale_by_trust_ratio,
    unitwise_clip,
    unitwise_norm,
    zero_nans,
)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _f64(x):
    return np.asarray(x, np.float64)


# --------------------------------------------------------------------------------------------------
# Names: state classes and fields as in Optax.
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (ZeroNansState, optax.ZeroNansState),
        (ApplyEvery, optax.ApplyEvery),
        (AddNoiseState, optax.AddNoiseState),
        (ScaleByDistanceOverGradientsState, OptaxDoGState),  # not exported at optax's top level
    ],
    ids=lambda c: c.__name__,
)
def test_state_classes_match_optax(ours, theirs):
    assert ours.__name__ == theirs.__name__
    assert ours._fields == theirs._fields


SIGNATURES = [
    (normalization_module, name)
    for name in ["adaptive_grad_clip", "clip_by_block_rms", "unitwise_clip", "unitwise_norm",
                 "per_example_global_norm_clip", "per_example_layer_norm_clip", "normalize_by_update_norm",
                 "centralize", "scale_by_param_block_norm", "scale_by_param_block_rms", "scale_by_trust_ratio",
                 "scale_by_distance_over_gradients", "keep_params_nonnegative", "zero_nans"]
] + [(noise_module, "add_noise"), (noise_module, "apply_every")] + [
    (trust_ratio_module, name) for name in ["lamb", "lars", "fromage", "noisy_sgd"]
]


@pytest.mark.parametrize("module,name", SIGNATURES, ids=[n for _, n in SIGNATURES])
def test_signatures_match_optax(module, name):
    def params(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    theirs = getattr(optax, name, None) or getattr(optax.transforms, name)
    o, t = params(getattr(module, name)), params(theirs)
    assert o[: len(t)] == t  # Optax's parameters, in Optax's order, with Optax's defaults
    # then only gradtx's own options (lamb's nu_dtype): keyword-only, with defaults
    assert all(k is inspect.Parameter.KEYWORD_ONLY and d is not inspect.Parameter.empty for _, k, d in o[len(t) :])


def test_nonnegative_state_is_empty():
    assert NonNegativeParamsState is gradtx.EmptyState
    assert keep_params_nonnegative().init({"a": jnp.ones(2)}) == gradtx.EmptyState()


# --------------------------------------------------------------------------------------------------
# Construction errors.
# --------------------------------------------------------------------------------------------------

ERRORS = [
    (lambda: clip_by_block_rms(0.0), "clip_by_block_rms(threshold=0.0): threshold must be > 0"),
    (lambda: adaptive_grad_clip(-1.0), "adaptive_grad_clip(clipping=-1.0): clipping must be >= 0"),
    (lambda: adaptive_grad_clip(0.1, eps=-1.0), "adaptive_grad_clip(eps=-1.0): eps must be >= 0"),
    (lambda: adaptive_grad_clip(0.1, axis=1.5),
     "adaptive_grad_clip(axis=1.5): axis must be None, an int or a tuple of ints"),
    (lambda: normalize_by_update_norm(math.nan),
     "normalize_by_update_norm(scale_factor=nan): scale_factor must be finite"),
    (lambda: normalize_by_update_norm(eps=-1.0), "normalize_by_update_norm(eps=-1.0): eps must be >= 0"),
    (lambda: scale_by_param_block_norm(-1.0), "scale_by_param_block_norm(min_scale=-1.0): min_scale must be >= 0"),
    (lambda: scale_by_param_block_rms(-1.0), "scale_by_param_block_rms(min_scale=-1.0): min_scale must be >= 0"),
    (lambda: scale_by_trust_ratio(min_norm=-1.0), "scale_by_trust_ratio(min_norm=-1.0): min_norm must be >= 0"),
    (lambda: scale_by_trust_ratio(trust_coefficient=math.inf),
     "scale_by_trust_ratio(trust_coefficient=inf): trust_coefficient must be finite"),
    (lambda: scale_by_trust_ratio(eps=-1e-3), "scale_by_trust_ratio(eps=-0.001): eps must be >= 0"),
    (lambda: scale_by_distance_over_gradients(reps_rel=0.0),
     "scale_by_distance_over_gradients(reps_rel=0.0): reps_rel must be > 0"),
    (lambda: scale_by_distance_over_gradients(eps=-1.0),
     "scale_by_distance_over_gradients(eps=-1.0): eps must be >= 0"),
    (lambda: scale_by_distance_over_gradients(global_scale=math.nan),
     "scale_by_distance_over_gradients(global_scale=nan): global_scale must be finite"),
    (lambda: add_noise(-0.1, 0.55, key=0), "add_noise(eta=-0.1): eta must be >= 0"),
    (lambda: add_noise(0.01, math.inf, key=0), "add_noise(gamma=inf): gamma must be finite"),
    (lambda: add_noise(0.01, 0.55, 0, seed=1), "add_noise(seed=1): seed must not be given with key"),
    (lambda: add_noise(0.01, 0.55, seed=1.5), "add_noise(seed=1.5): seed must be an int"),
    (lambda: add_noise(0.01, 0.55, key="0"), "add_noise(key='0'): key must be an int seed or a jax.random key"),
    (lambda: add_noise(0.01, 0.55, key=True), "add_noise(key=True): key must be an int seed or a jax.random key"),
    (lambda: apply_every(0), "apply_every(k=0): k must be a whole number >= 1"),
    (lambda: apply_every(2.5), "apply_every(k=2.5): k must be a whole number >= 1"),
    (lambda: lamb(1e-3, b1=1.5), "lamb(b1=1.5): b1 must be in [0, 1)"),
    (lambda: lamb(math.nan), "lamb(learning_rate=nan): learning_rate must be finite"),
    (lambda: lars(0.1, momentum=1.5),
     "lars(momentum=1.5): momentum was given to trace as decay: decay must be in [0, 1]"),
    (lambda: lars(0.1, eps=-1.0), "lars(eps=-1.0): eps must be >= 0"),
    (lambda: fromage(0.1, min_norm=-1.0), "fromage(min_norm=-1.0): min_norm must be >= 0"),
    (lambda: noisy_sgd(0.1, eta=-1.0, key=0), "noisy_sgd(eta=-1.0): eta must be >= 0"),
]


@pytest.mark.parametrize("make,message", ERRORS, ids=[m.split(":")[0] for _, m in ERRORS])
def test_bad_hyperparameter_raises_at_construction(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value).startswith(message), str(info.value)


NEEDS_PARAMS = [
    adaptive_grad_clip(0.1),
    scale_by_param_block_norm(),
    scale_by_param_block_rms(),
    scale_by_trust_ratio(),
    scale_by_distance_over_gradients(),
    keep_params_nonnegative(),
]


@pytest.mark.parametrize("tx", NEEDS_PARAMS, ids=lambda t: type(t).__name__)
def test_blocks_that_read_params_name_themselves_without_them(tx):
    params = {"w": jnp.ones((2, 3))}
    with pytest.raises(ValueError, match=rf"^{type(tx).__name__}\.update: params are required"):
        tx.update(params, tx.init(params))


@pytest.mark.parametrize("tx", NEEDS_PARAMS, ids=lambda t: type(t).__name__)
def test_mismatched_params_tree_is_a_type_error(tx):
    params = {"w": jnp.ones((2, 3))}
    state = tx.init(params)
    with pytest.raises(TypeError, match=type(tx).__name__):
        tx.update({"v": jnp.ones((2, 3))}, state, params)


def test_traced_hyperparameters_are_not_checked():
    out = jax.jit(lambda c: clip_by_block_rms(c).update(jnp.ones(3), gradtx.EmptyState())[0])(jnp.float32(-1.0))
    assert out.shape == (3,)


# --------------------------------------------------------------------------------------------------
# Closed forms of the blocks.
# --------------------------------------------------------------------------------------------------


def test_clip_by_block_rms_rescales_each_block_to_the_threshold():
    g = {"big": jnp.asarray([3.0, -4.0, 12.0]), "small": jnp.asarray([[0.1, -0.2], [0.05, 0.0]])}
    u, _ = clip_by_block_rms(1.0).update(g, gradtx.EmptyState())
    np.testing.assert_allclose(np.sqrt(np.mean(_f64(u["big"]) ** 2)), 1.0, rtol=1e-6)
    np.testing.assert_allclose(_f64(u["big"]) / _f64(g["big"]), np.full(3, 1.0 / math.sqrt(169.0 / 3.0)),
                               rtol=1e-6)
    np.testing.assert_array_equal(u["small"], g["small"])


def test_centralize_removes_the_mean_over_all_axes_but_the_first():
    # Optax's docstring example: rows lose their mean.
    u, _ = centralize().update(jnp.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), gradtx.EmptyState())
    np.testing.assert_array_equal(u, [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
    g = {"k": jnp.asarray(_rng().normal(size=(4, 3, 2, 5))), "v": jnp.arange(3.0), "s": jnp.float32(2.0)}
    u, _ = centralize().update(g, gradtx.EmptyState())
    np.testing.assert_allclose(_f64(u["k"]).mean(axis=(1, 2, 3)), 0.0, atol=1e-12)
    assert not np.allclose(_f64(u["k"]).mean(axis=0), 0.0)  # the first axis keeps its mean
    np.testing.assert_array_equal(u["v"], g["v"])  # vectors and scalars pass unchanged
    np.testing.assert_array_equal(u["s"], g["s"])
    want, _ = optax.centralize().update(g, optax.EmptyState())
    np.testing.assert_allclose(_f64(u["k"]), _f64(want["k"]), rtol=1e-12, atol=1e-14)


def test_zero_nans_replaces_nans_and_records_them_per_leaf():
    tx = zero_nans()
    params = {"a": jnp.zeros(3), "b": jnp.zeros((2, 2)), "c": (jnp.zeros(()), None)}
    state = tx.init(params)
    assert jax.tree.leaves(state.found_nan) == [False, False, False]
    g = {"a": jnp.asarray([1.0, jnp.nan, 3.0]), "b": jnp.asarray([[jnp.inf, 1.0], [2.0, 3.0]]),
         "c": (jnp.asarray(jnp.nan), None)}
    u, state = jax.jit(tx.update)(g, state)
    np.testing.assert_array_equal(u["a"], [1.0, 0.0, 3.0])
    np.testing.assert_array_equal(u["b"], g["b"])  # infinities pass
    assert float(u["c"][0]) == 0.0 and u["c"][1] is None
    assert state.found_nan == {"a": True, "b": False, "c": (True, None)}
    u, state = tx.update(jax.tree.map(jnp.ones_like, g), state)
    assert jax.tree.leaves(state.found_nan) == [False, False, False]  # only the last update counts


def test_keep_params_nonnegative_makes_p_plus_u_nonnegative():
    rng = _rng(1)
    params = {"w": jnp.asarray(np.abs(rng.normal(size=(5, 4))), jnp.float32),
              "b": jnp.asarray(np.abs(rng.normal(size=7)), jnp.bfloat16)}
    tx = keep_params_nonnegative()
    for seed in range(5):
        g = random_like(params, seed)
        g = jax.tree.map(lambda x: 3 * x, g)
        u, _ = tx.update(g, tx.init(params), params)
        new = gradtx.apply_updates(params, u)
        assert all(bool(jnp.all(x >= 0)) for x in jax.tree.leaves(new))
        for k in params:
            ok = _f64(params[k]) + _f64(g[k]) >= 0
            np.testing.assert_array_equal(_f64(u[k])[ok], _f64(g[k])[ok])  # allowed steps are unchanged
            np.testing.assert_array_equal(_f64(u[k])[~ok], -_f64(params[k])[~ok])
        params = new
    # Negative parameters are moved to 0.
    u, _ = tx.update(jnp.asarray([0.5, -0.5]), gradtx.EmptyState(), jnp.asarray([-1.0, -1.0]))
    np.testing.assert_array_equal(u, [1.0, 1.0])


def test_apply_every_emits_the_sum_every_k_steps_and_zeros_between():
    tx = apply_every(3)
    state = tx.init({"w": jnp.zeros(2)})
    grads = [jnp.asarray([float(i), 10.0 * i]) for i in range(1, 8)]
    outs, counts = [], []
    for g in grads:
        u, state = jax.jit(tx.update)({"w": g}, state)
        outs.append(_f64(u["w"]))
        counts.append(int(state.count))
    zero = np.zeros(2)
    want = [zero, zero, np.asarray([6.0, 60.0]), zero, zero, np.asarray([15.0, 150.0]), zero]
    for k, (got, w) in enumerate(zip(outs, want)):
        np.testing.assert_array_equal(got, w, err_msg=f"step {k + 1}")
    assert counts == [1, 2, 0, 1, 2, 0, 1]
    np.testing.assert_array_equal(state.grad_acc["w"], [7.0, 70.0])
    # k = 1 is the identity.
    u, _ = apply_every(1).update(grads[0], apply_every(1).init(grads[0]))
    np.testing.assert_array_equal(u, grads[0])


def _norms(tree):
    return {k: float(np.linalg.norm(_f64(v))) for k, v in tree.items()}


def test_trust_ratio_gives_each_block_the_norm_of_its_params():
    rng = _rng(2)
    params = {"w": jnp.asarray(rng.normal(size=(4, 3))), "b": jnp.asarray(rng.normal(size=3) * 0.1)}
    g = {"w": jnp.asarray(rng.normal(size=(4, 3)) * 50), "b": jnp.asarray(rng.normal(size=3) * 1e-3)}
    u, _ = scale_by_trust_ratio().update(g, gradtx.EmptyState(), params)
    for k, n in _norms(u).items():
        np.testing.assert_allclose(n, _norms(params)[k], rtol=1e-12)
        np.testing.assert_allclose(_f64(u[k]) / _f64(g[k]), _norms(params)[k] / _norms(g)[k], rtol=1e-12)
    # With a coefficient and eps: r = c ||p|| / (||g|| + eps).
    u, _ = scale_by_trust_ratio(trust_coefficient=0.01, eps=0.5).update(g, gradtx.EmptyState(), params)
    np.testing.assert_allclose(_f64(u["w"]) / _f64(g["w"]), 0.01 * _norms(params)["w"] / (_norms(g)["w"] + 0.5),
                               rtol=1e-12)
    # A zero parameter block or a zero update: ratio 1.
    u, _ = scale_by_trust_ratio().update(g, gradtx.EmptyState(), {"w": jnp.zeros((4, 3)), "b": params["b"]})
    np.testing.assert_array_equal(u["w"], g["w"])
    # min_norm floors both norms.
    u, _ = scale_by_trust_ratio(min_norm=1e3).update(g, gradtx.EmptyState(), params)
    np.testing.assert_allclose(_f64(u["b"]), _f64(g["b"]), rtol=1e-12)


STATELESS_PARAM_BLOCKS = [
    (scale_by_trust_ratio(), optax.scale_by_trust_ratio()),
    (scale_by_param_block_norm(), optax.scale_by_param_block_norm()),
    (scale_by_param_block_norm(2.0), optax.scale_by_param_block_norm(2.0)),
    (scale_by_param_block_rms(), optax.scale_by_param_block_rms()),
    (scale_by_param_block_rms(1.0), optax.scale_by_param_block_rms(1.0)),
]


@pytest.mark.parametrize("tx,theirs", STATELESS_PARAM_BLOCKS, ids=[repr(t) for t, _ in STATELESS_PARAM_BLOCKS])
def test_param_reading_blocks_match_optax_on_fresh_params(tx, theirs):
    # The registry's cross-check applies the updates; these blocks would then grow the params without bound
    # (or, with a trust coefficient of 1, land a scalar leaf on 0): compare them on fresh params instead.
    rng = _rng(3)
    for _ in range(50):
        params = jax.tree.map(lambda x: x * rng.uniform(0.01, 10), default_params())
        g = jax.tree.map(lambda x: x * rng.choice([1e-3, 1.0, 30.0]), random_like(params, int(rng.integers(1 << 30))))
        u, _ = tx.update(g, tx.init(params), params)
        want, _ = theirs.update(g, theirs.init(params), params)
        for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(want)):
            np.testing.assert_allclose(_f64(a), _f64(b), rtol=2e-6, atol=0)


def test_param_block_scalings():
    p = {"w": jnp.asarray([[3.0, 4.0], [0.0, 0.0]]), "z": jnp.zeros(3)}
    g = {"w": jnp.ones((2, 2)), "z": jnp.ones(3)}
    u, _ = scale_by_param_block_norm().update(g, gradtx.EmptyState(), p)
    np.testing.assert_allclose(u["w"], np.full((2, 2), 5.0))
    np.testing.assert_allclose(u["z"], np.full(3, 1e-3))  # min_scale floors a zero block
    u, _ = scale_by_param_block_rms(0.1).update(g, gradtx.EmptyState(), p)
    np.testing.assert_allclose(u["w"], np.full((2, 2), 2.5))
    np.testing.assert_allclose(u["z"], np.full(3, 0.1))


def test_normalize_by_update_norm_gives_unit_global_norm():
    g = {"a": jnp.asarray([3.0, 0.0]), "b": jnp.asarray([[4.0]])}
    u, _ = normalize_by_update_norm(eps=0.0).update(g, gradtx.EmptyState())
    np.testing.assert_allclose(_f64(u["a"]), [0.6, 0.0])
    np.testing.assert_allclose(_f64(u["b"]), [[0.8]])
    u, _ = normalize_by_update_norm(-2.0, eps=5.0).update(g, gradtx.EmptyState())
    np.testing.assert_allclose(_f64(u["a"]), [-0.6, 0.0])
    # Optax's docstring trajectory on f(x) = sum(x^2).
    solver, x = normalize_by_update_norm(scale_factor=-1.0), jnp.asarray([1.0, 2.0, 3.0])
    got = []
    for _ in range(5):
        u, _ = solver.update(2 * x, gradtx.EmptyState(), x)
        x = gradtx.apply_updates(x, u)
        got.append(float(jnp.sum(x**2)))
    np.testing.assert_allclose(got, [7.52, 3.03, 0.550, 0.0667, 0.550], rtol=5e-3)


# --------------------------------------------------------------------------------------------------
# Unit-wise norms and adaptive gradient clipping.
# --------------------------------------------------------------------------------------------------

SHAPES = [(), (5,), (1, 5), (5, 1), (3, 4), (2, 3, 4), (3, 3, 2, 4), (2, 2, 2, 3, 4), (1, 1, 1, 1, 1, 1, 7)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_unitwise_norm_follows_optax_conventions(shape):
    x = jnp.asarray(_rng(4).normal(size=shape))
    got = unitwise_norm(x)
    assert got.shape == x.shape
    np.testing.assert_allclose(_f64(got), rn.unitwise_norm(_f64(x)), rtol=1e-12)
    np.testing.assert_allclose(_f64(got), _f64(optax.transforms.unitwise_norm(x)), rtol=1e-12)


def test_unitwise_norm_axis_and_errors():
    x = jnp.asarray(_rng(5).normal(size=(2, 3, 4)))
    want = optax.transforms.unitwise_norm(x, axis=(1, 2))
    np.testing.assert_allclose(_f64(unitwise_norm(x, axis=(1, 2))), _f64(want), rtol=1e-12)
    np.testing.assert_allclose(_f64(unitwise_norm(x, axis=-1)), rn.unitwise_norm(_f64(x), axis=-1), rtol=1e-12)
    with pytest.raises(ValueError, match="unitwise_norm: expected an array of rank at most 5"):
        unitwise_norm(jnp.ones((2, 2, 2, 2, 2, 2)))
    assert unitwise_norm(jnp.ones((2, 3), jnp.bfloat16)).dtype == jnp.float32  # computed in float32


def test_unitwise_clip():
    g = jnp.asarray([[3.0, 1.0], [4.0, 1.0]])
    g_norm = unitwise_norm(g)
    u = unitwise_clip(g_norm, jnp.full((2, 2), 2.5), g)
    np.testing.assert_allclose(_f64(u), [[1.5, 1.0], [2.0, 1.0]])  # the first column is clipped to norm 2.5
    with pytest.raises(ValueError, match="unitwise_clip: the shapes differ"):
        unitwise_clip(g_norm, jnp.ones(2), g)
    assert unitwise_clip(g_norm, g_norm, g.astype(jnp.bfloat16)).dtype == jnp.bfloat16


def test_adaptive_grad_clip_bounds_each_unit_relative_to_its_params():
    rng = _rng(6)
    params = {"conv": jnp.asarray(rng.normal(size=(3, 3, 2, 4))), "dense": jnp.asarray(rng.normal(size=(5, 6))),
              "bias": jnp.zeros(6)}
    g = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape) * rng.choice([0.01, 10.0], size=p.shape[-1:])),
                     params)
    clipping, eps = 0.05, 1e-3
    u, _ = adaptive_grad_clip(clipping, eps).update(g, gradtx.EmptyState(), params)
    for k in params:
        un, pn, gn = (rn.unitwise_norm(_f64(t[k])) for t in (u, params, g))
        limit = clipping * np.maximum(pn, eps)
        assert np.all(un <= limit * (1 + 1e-9) + 1e-15)
        keep = gn < limit
        np.testing.assert_array_equal(_f64(u[k])[keep], _f64(g[k])[keep])
        np.testing.assert_allclose(un[~keep], limit[~keep], rtol=1e-9)
    want, _ = optax.adaptive_grad_clip(clipping, eps).update(g, optax.EmptyState(), params)
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(want)):
        np.testing.assert_allclose(_f64(a), _f64(b), rtol=1e-12)


def test_adaptive_grad_clip_with_axis_matches_optax_and_reference():
    rng = _rng(7)
    params = {"a": jnp.asarray(rng.normal(size=(4, 6))), "b": jnp.asarray(rng.normal(size=(3, 6)))}
    g = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape) * 3), params)
    tx = adaptive_grad_clip(0.3, axis=[1])
    assert tx.axis == (1,)
    u, _ = tx.update(g, tx.init(params), params)
    want, _ = optax.adaptive_grad_clip(0.3, axis=1).update(g, optax.EmptyState(), params)
    ref = rn.adaptive_grad_clip(0.3, axis=(1,)).step({k: _f64(v) for k, v in g.items()},
                                                       {k: _f64(v) for k, v in params.items()})
    for k in params:
        np.testing.assert_allclose(_f64(u[k]), _f64(want[k]), rtol=1e-12)
        np.testing.assert_allclose(_f64(u[k]), ref[k], rtol=1e-12)


# --------------------------------------------------------------------------------------------------
# Per-example clipping against NumPy (and Optax).
# --------------------------------------------------------------------------------------------------


def test_per_example_global_norm_clip_docstring_examples():
    grads = [jnp.asarray([[0, 0, 0], [0, 3, 4], [4, 0, 3], [3, 4, 0]])]
    for clip, total, n in [(jnp.inf, 7.0, 0), (0.0, 0.0, 3), (1.25, 1.75, 3)]:
        sums, count = per_example_global_norm_clip(grads, clip)
        np.testing.assert_allclose(_f64(sums[0]), [total] * 3)
        assert int(count) == n and count.dtype == jnp.int32
        assert sums[0].dtype == jnp.float32  # integer gradients are summed in float32
        sums, count = per_example_layer_norm_clip(grads, clip)
        np.testing.assert_allclose(_f64(sums[0]), [total] * 3)
        assert [int(c) for c in count] == [n]


def _per_example_grads(rng, batch=8, dtype=jnp.float64):
    scales = rng.choice([0.1, 1.0, 10.0], size=batch)
    return {
        "w": jnp.asarray(rng.normal(size=(batch, 3, 4)) * scales[:, None, None], dtype),
        "b": jnp.asarray(rng.normal(size=(batch, 4)) * scales[:, None], dtype),
        "s": (jnp.asarray(rng.normal(size=(batch,)) * scales, dtype), None),
    }


@pytest.mark.parametrize("clip", [0.0, 0.5, 3.0, 1e6])
def test_per_example_global_norm_clip_matches_numpy_and_optax(clip):
    grads = _per_example_grads(_rng(8))
    sums, count = jax.jit(per_example_global_norm_clip)(grads, clip)
    leaves = jax.tree.leaves(grads)
    want_sums, want_count = rn.per_example_global_norm_clip([_f64(x) for x in leaves], clip)
    for got, want in zip(jax.tree.leaves(sums), want_sums):
        np.testing.assert_allclose(_f64(got), want, rtol=1e-12, atol=1e-12)
    assert int(count) == want_count
    assert jax.tree.structure(sums) == jax.tree.structure(grads)
    o_sums, o_count = optax.per_example_global_norm_clip(leaves, clip)
    for got, want in zip(jax.tree.leaves(sums), o_sums):
        np.testing.assert_allclose(_f64(got), _f64(want), rtol=1e-12, atol=1e-12)
    assert int(o_count) == int(count)


@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("clip", [0.3, 2.0, 1e6])
def test_per_example_layer_norm_clip_matches_numpy_and_optax(uniform, clip):
    grads = _per_example_grads(_rng(9))
    sums, counts = per_example_layer_norm_clip(grads, clip, uniform)
    leaves = jax.tree.leaves(grads)
    want_sums, want_counts = rn.per_example_layer_norm_clip([_f64(x) for x in leaves], clip, uniform)
    for got, want in zip(jax.tree.leaves(sums), want_sums):
        np.testing.assert_allclose(_f64(got), want, rtol=1e-12, atol=1e-12)
    assert [int(c) for c in jax.tree.leaves(counts)] == want_counts
    o_sums, o_counts = optax.per_example_layer_norm_clip(leaves, clip, uniform)
    for got, want in zip(jax.tree.leaves(sums), o_sums):
        np.testing.assert_allclose(_f64(got), _f64(want), rtol=1e-12, atol=1e-12)
    assert [int(c) for c in o_counts] == want_counts


def test_per_example_clipping_bounds_each_example_and_keeps_dtype():
    grads = _per_example_grads(_rng(10), batch=6, dtype=jnp.bfloat16)
    sums, _ = per_example_global_norm_clip(grads, 1.0)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(sums))
    # One example at a time: the clipped gradient has norm min(n, C).
    one = jax.tree.map(lambda x: x[:1].astype(jnp.float32), grads)
    n = float(np.sqrt(sum(np.sum(_f64(x) ** 2) for x in jax.tree.leaves(one))))
    sums, count = per_example_global_norm_clip(one, 1.0)
    got = float(np.sqrt(sum(np.sum(_f64(x) ** 2) for x in jax.tree.leaves(sums))))
    np.testing.assert_allclose(got, min(n, 1.0), rtol=1e-6)
    assert int(count) == int(n > 1.0)


def test_per_example_clipping_errors():
    with pytest.raises(ValueError, match=r"per_example_global_norm_clip\(l2_norm_clip=-1.0\): l2_norm_clip must"):
        per_example_global_norm_clip([jnp.ones((2, 3))], -1.0)
    with pytest.raises(ValueError, match="per_example_global_norm_clip: every array of grads must have the same"):
        per_example_global_norm_clip([jnp.ones((2, 3)), jnp.ones((3, 3))], 1.0)
    with pytest.raises(ValueError, match="per_example_layer_norm_clip: every array"):
        per_example_layer_norm_clip([jnp.ones((2, 3)), jnp.ones(())], 1.0)
    with pytest.raises(ValueError, match=r"per_example_layer_norm_clip\(global_l2_norm_clip=nan\)"):
        per_example_layer_norm_clip([jnp.ones((2, 3))], math.nan)
    sums, count = per_example_global_norm_clip({}, 1.0)
    assert sums == {} and int(count) == 0


# --------------------------------------------------------------------------------------------------
# Distance over gradients.
# --------------------------------------------------------------------------------------------------


def test_dog_first_step_closed_form():
    x0 = {"w": jnp.asarray([[3.0, 4.0]]), "b": jnp.asarray([0.0])}
    g = {"w": jnp.asarray([[1.0, 2.0]]), "b": jnp.asarray([2.0])}
    tx = scale_by_distance_over_gradients(reps_rel=1e-2, eps=0.0)
    state = tx.init(x0)
    np.testing.assert_allclose(_f64(state.max_dist["w"]), 1e-2 * 6.0)
    u, state = tx.update(g, state, x0)
    np.testing.assert_allclose(_f64(u["w"]), 1e-2 * 6.0 / math.sqrt(5.0) * _f64(g["w"]), rtol=1e-6)
    np.testing.assert_allclose(_f64(u["b"]), 1e-2 * 1.0 / 2.0 * _f64(g["b"]), rtol=1e-6)
    # The distance grows once the parameters move further than rbar_0.
    moved = {"w": x0["w"] + 1.0, "b": x0["b"]}
    u, state = tx.update(g, state, moved)
    np.testing.assert_allclose(_f64(state.max_dist["w"]), math.sqrt(2.0), rtol=1e-6)
    np.testing.assert_allclose(_f64(u["w"]), math.sqrt(2.0) / math.sqrt(10.0) * _f64(g["w"]), rtol=1e-6)
    assert state.grad_sum_of_squares["w"].shape == ()


def test_dog_matches_optax():
    params = default_params(jnp.float32)
    ours, theirs = scale_by_distance_over_gradients(1e-3), optax.scale_by_distance_over_gradients(1e-3)
    s1, s2 = ours.init(params), theirs.init(params)
    rng = _rng(11)
    p = params
    step1, step2 = jax.jit(ours.update), jax.jit(theirs.update)
    for k in range(200):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params)
        u1, s1 = step1(g, s1, p)
        u2, s2 = step2(g, s2, p)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
            # Optax's (1,)-shaped sum of squares turns a scalar leaf's update into shape (1,).
            np.testing.assert_allclose(_f64(a).ravel(), _f64(b).ravel(), rtol=2e-5, atol=1e-9,
                                       err_msg=f"step {k + 1}")
        p = gradtx.apply_updates(p, jax.tree.map(lambda x: -x, u1))
    for field in ScaleByDistanceOverGradientsState._fields:
        for a, b in zip(jax.tree.leaves(getattr(s1, field)), jax.tree.leaves(getattr(s2, field))):
            np.testing.assert_allclose(_f64(a).ravel(), _f64(b).ravel(), rtol=1e-4, err_msg=field)
    # The documented difference: gradtx keeps G as a float32 scalar for float32 params.
    assert jax.tree.leaves(s1.grad_sum_of_squares)[0].dtype == jnp.float32
    assert jax.tree.leaves(s1.init_params)[0].dtype == jnp.float32


def test_dog_state_dtypes():
    params = {"h": jnp.ones(3, jnp.bfloat16), "d": jnp.ones(3, jnp.float64)}
    state = scale_by_distance_over_gradients().init(params)
    assert state.max_dist["h"].dtype == jnp.float32 and state.max_dist["d"].dtype == jnp.float64
    assert state.init_params["h"].dtype == jnp.float32 and state.init_params["d"].dtype == jnp.float32
    state = scale_by_distance_over_gradients(param_dtype=None).init(params)
    assert state.init_params["h"].dtype == jnp.bfloat16
    shapes = jax.eval_shape(scale_by_distance_over_gradients().init, params)
    assert jax.tree.structure(shapes) == jax.tree.structure(state)


# --------------------------------------------------------------------------------------------------
# add_noise and noisy_sgd: seeded like Optax, tested by statistics.
# --------------------------------------------------------------------------------------------------


def _noise_run(tx, params, steps, grads=None):
    state = tx.init(params)
    update = jax.jit(tx.update)
    outs = []
    for k in range(steps):
        g = jax.tree.map(jnp.zeros_like, params) if grads is None else grads[k]
        u, state = update(g, state)
        outs.append(u)
    return outs, state


def test_add_noise_is_deterministic_given_the_key():
    params = {"a": jnp.zeros((3, 4)), "b": (jnp.zeros(5), None)}
    a, sa = _noise_run(add_noise(0.1, 0.55, key=3), params, 4)
    b, sb = _noise_run(add_noise(0.1, 0.55, key=jax.random.key(3)), params, 4)
    c, _ = _noise_run(add_noise(0.1, 0.55, key=jax.random.PRNGKey(3)), params, 4)
    d, _ = _noise_run(add_noise(0.1, 0.55, seed=3), params, 4)
    e, _ = _noise_run(add_noise(0.1, 0.55, key=4), params, 4)
    for x, y, z, w in zip(jax.tree.leaves(a), jax.tree.leaves(b), jax.tree.leaves(c), jax.tree.leaves(d)):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)
        np.testing.assert_array_equal(x, w)
    assert not np.allclose(_f64(a[0]["a"]), _f64(e[0]["a"]))
    assert not np.allclose(_f64(a[0]["a"]), _f64(a[1]["a"]))  # fresh noise every step
    assert int(sa.count) == 4 and a[0]["b"][1] is None
    np.testing.assert_array_equal(jax.random.key_data(sa.rng_key), jax.random.key_data(sb.rng_key))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_add_noise_matches_optax_noise_stream(dtype):
    params = jax.tree.map(lambda x: x.astype(dtype), default_params())
    grads = [random_like(params, k) for k in range(30)]
    ours, theirs = add_noise(0.3, 0.55, key=7), optax.add_noise(0.3, 0.55, key=7)
    s1, s2 = ours.init(params), theirs.init(params)
    for g in grads:
        u1, s1 = ours.update(g, s1)
        u2, s2 = theirs.update(g, s2)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
            np.testing.assert_allclose(_f64(a), _f64(b), rtol=1e-6, atol=1e-7)
    assert int(s1.count) == int(s2.count) == 30
    np.testing.assert_array_equal(jax.random.key_data(s1.rng_key), jax.random.key_data(s2.rng_key))


def test_add_noise_statistics_follow_the_annealed_variance():
    eta, gamma, n = 0.5, 0.55, 40_000
    steps = 30
    outs, _ = _noise_run(add_noise(eta, gamma, key=11), {"x": jnp.zeros(n)}, steps)
    for k, u in enumerate(outs, start=1):
        x = _f64(u["x"])
        var = eta / k**gamma  # eta / (1 + t)^gamma with the 0-based count t = k - 1
        # mean ~ N(0, var / n); sample variance ~ var (1 +- sqrt(2 / n)): 5 standard errors.
        assert abs(x.mean()) < 5 * math.sqrt(var / n), f"step {k}"
        assert abs(x.var() / var - 1) < 5 * math.sqrt(2 / n), f"step {k}"
    # The noise is independent across steps and leaves: correlation ~ N(0, 1/n).
    a, b = _f64(outs[0]["x"]), _f64(outs[1]["x"])
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(n)
    # Added to the gradient, not replacing it.
    g = jnp.full(n, 3.0)
    u, _ = add_noise(eta, gamma, key=11).update({"x": g}, add_noise(eta, gamma, key=11).init({"x": g}))
    np.testing.assert_allclose(_f64(u["x"]) - 3.0, _f64(outs[0]["x"]), rtol=1e-5, atol=1e-5)


def test_add_noise_keeps_narrow_dtypes_and_works_under_eval_shape():
    params = {"h": jnp.zeros(1000, jnp.bfloat16), "f": jnp.zeros(3, jnp.float16)}
    tx = add_noise(1.0, 0.0, key=0)
    u, state = tx.update(params, tx.init(params))
    assert u["h"].dtype == jnp.bfloat16 and u["f"].dtype == jnp.float16
    assert 0.8 < float(jnp.std(u["h"].astype(jnp.float32))) < 1.2
    assert jax.tree.structure(jax.eval_shape(tx.init, params)) == jax.tree.structure(state)
    assert jax.random.key_data(state.rng_key).dtype == jnp.uint32


def test_noisy_sgd_matches_optax():
    params = default_params(jnp.float32)
    ours, theirs = noisy_sgd(0.1, key=5), optax.noisy_sgd(0.1, key=5)
    s1, s2 = ours.init(params), theirs.init(params)
    for k in range(20):
        g = random_like(params, k)
        u1, s1 = ours.update(g, s1, params)
        u2, s2 = theirs.update(g, s2, params)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
            np.testing.assert_allclose(_f64(a), _f64(b), rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------------------------------
# The recipes.
# --------------------------------------------------------------------------------------------------


def test_lamb_first_step_is_the_param_norm_along_the_adam_direction():
    rng = _rng(12)
    params = {"w": jnp.asarray(rng.normal(size=(4, 3))), "b": jnp.asarray(rng.normal(size=3))}
    g = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape)), params)
    tx = lamb(0.1, eps=0.0)
    u, _ = tx.update(g, tx.init(params), params)
    for k in params:
        r = np.sign(_f64(g[k]))  # m_hat / sqrt(v_hat) = g / |g| on the first step
        want = -0.1 * np.linalg.norm(_f64(params[k])) / np.linalg.norm(r) * r
        np.testing.assert_allclose(_f64(u[k]), want, rtol=1e-12)


def test_lars_masks_select_decay_and_trust_ratio():
    rng = _rng(13)
    params = {"w": jnp.asarray(rng.normal(size=(4, 3))), "b": jnp.asarray(rng.normal(size=3))}
    g = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape)), params)
    wd, lr, coef = 0.1, 0.5, 0.01
    tx = lars(lr, wd, weight_decay_mask={"w": True, "b": False}, trust_coefficient=coef,
              trust_ratio_mask=lambda u: {"w": True, "b": False})
    u, state = tx.update(g, tx.init(params), params)
    d = _f64(g["w"]) + wd * _f64(params["w"])
    ratio = coef * np.linalg.norm(_f64(params["w"])) / np.linalg.norm(d)
    np.testing.assert_allclose(_f64(u["w"]), -lr * ratio * d, rtol=1e-12)
    np.testing.assert_allclose(_f64(u["b"]), -lr * _f64(g["b"]), rtol=1e-12)  # plain SGD for "b"
    u2, _ = tx.update(g, state, params)  # momentum 0.9: t_2 = x + 0.9 t_1 = 1.9 x
    np.testing.assert_allclose(_f64(u2["b"]), -1.9 * lr * _f64(g["b"]), rtol=1e-12)
    assert isinstance(tx.transforms[1], gradtx.masked) and "inner=scale_by_trust_ratio(" in repr(tx)


def test_lars_all_masks_false_is_sgd_with_momentum():
    params = default_params(jnp.float64)
    tx = lars(0.1, 0.5, weight_decay_mask=False, trust_ratio_mask=False, momentum=0.9)
    sgd = gradtx.sgd(0.1, 0.9)
    s1, s2 = tx.init(params), sgd.init(params)
    for k in range(5):
        g = random_like(params, k)
        u1, s1 = tx.update(g, s1, params)
        u2, s2 = sgd.update(g, s2, params)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
            np.testing.assert_allclose(_f64(a), _f64(b), rtol=1e-12)


@pytest.mark.parametrize("lr", [0.01, 0.3])
def test_fromage_step_closed_form(lr):
    rng = _rng(14)
    p = {"w": jnp.asarray(rng.normal(size=(3, 3)))}
    g = {"w": jnp.asarray(rng.normal(size=(3, 3)) * 7)}
    for learning_rate in (lr, gradtx.schedules.constant_schedule(lr)):
        tx = fromage(learning_rate)
        u, _ = tx.update(g, tx.init(p), p)
        pw, gw = _f64(p["w"]), _f64(g["w"])
        want = (pw - lr * np.linalg.norm(pw) / np.linalg.norm(gw) * gw) / math.sqrt(1 + lr * lr) - pw
        np.testing.assert_allclose(_f64(u["w"]), want, rtol=1e-12, atol=1e-15)


def test_recipes_rebuild_as_pytrees_and_take_new_learning_rates_without_retracing():
    params = default_params(jnp.float32)

    @jax.jit
    @chex.assert_max_traces(n=3)  # three recipes (three tree structures), each traced for its first rate only
    def step(tx, g, s, p):
        return tx.update(g, s, p)

    for make in (lambda lr: lamb(lr), lambda lr: lars(lr), lambda lr: fromage(lr)):
        for lr in (0.1, 0.2):
            tx = make(lr)
            step(tx, random_like(params, 1), tx.init(params), params)
