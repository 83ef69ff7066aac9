"""gradtx.losses: Optax's 32 losses, checked against Optax (values and gradients) and float64 references.

Three kinds of checks: (1) the public surface and every signature equal Optax's; (2) every loss on ordinary
and on extreme inputs (|logits| = 1e4) gives Optax's value and gradient; (3) each family against a closed form
or the float64 NumPy reference in ``gradtx.testing.reference.losses`` (CTC against a brute-force sum over all
alignments). Plus the NaN-safety the stable forms promise, the call-time errors, and the docstring examples.
"""

from __future__ import annotations

import doctest
import inspect
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.losses as olosses
import pytest
from jax.scipy.special import logsumexp

import gradtx.losses as glosses
from gradtx.losses import (
    _classification,
    _ctc,
    _divergences,
    _fenchel_young,
    _ranking,
    _regression,
    _segmentation,
    _self_supervised,
    _smoothing,
)
from gradtx.testing.reference import losses as ref

OPTAX_NAMES = sorted(n for n in dir(olosses) if not n.startswith("_"))
RNG = np.random.default_rng(0)


def _f32(*shape, scale=1.0):
    return jnp.asarray(RNG.normal(size=shape) * scale, dtype=jnp.float32)


def _probs(*shape):
    return jax.nn.softmax(_f32(*shape), axis=-1)


class _Jitted:
    """``JL.name(*args, **kwargs)`` runs ``gradtx.losses.name`` under one ``jit`` (keyword arguments are constants):
    one compilation per call site instead of one per primitive, which keeps this file fast."""

    def __getattr__(self, name):
        fn = getattr(glosses, name)

        def call(*args, **kwargs):
            return jax.jit(lambda *a: fn(*a, **kwargs))(*args)

        return call


JL = _Jitted()


def _close(a, b, rtol=1e-5, atol=1e-6):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol), a, b)


# ------------------------------------------------------------------------------------------------ surface


def test_exactly_optax_public_names():
    assert sorted(glosses.__all__) == OPTAX_NAMES
    assert len(OPTAX_NAMES) == 32
    for name in OPTAX_NAMES:
        assert callable(getattr(glosses, name))


@pytest.mark.parametrize("name", OPTAX_NAMES)
def test_signature_matches_optax(name):
    ours = inspect.signature(getattr(glosses, name)).parameters.values()
    theirs = inspect.signature(getattr(olosses, name)).parameters.values()
    assert [(p.name, p.kind, p.default) for p in ours] == [(p.name, p.kind, p.default) for p in theirs]
    doc = inspect.getdoc(getattr(glosses, name)) or ""
    for section in ("Args:", "Returns:", "Example:"):
        assert section in doc, f"{name}: docstring lacks {section}"


# ------------------------------------------------------------------------------------------------ vs Optax

X = _f32(4, 5)
Y_ONEHOT = jax.nn.one_hot(jnp.array([0, 3, 1, 4]), 5, dtype=jnp.float32)
Y_INT = jnp.array([0, 3, 1, 4])
Y_BIN = jnp.asarray(RNG.integers(0, 2, size=(4, 5)), dtype=jnp.float32)
Y_SOFT = jnp.asarray(RNG.uniform(size=(4, 5)), dtype=jnp.float32)
SIGNS = 2.0 * Y_BIN - 1.0
MASK = jnp.asarray(RNG.uniform(size=(4, 5)) > 0.3).at[:, 0].set(True)
EXTREME = jnp.asarray(RNG.choice([-1e4, 1e4], size=(4, 5)) * RNG.uniform(0.5, 1.0, size=(4, 5)), jnp.float32)

# (id, name, args, kwargs, argnums to differentiate)
CASES = [
    ("sigmoid_bce", "sigmoid_binary_cross_entropy", (X, Y_SOFT), {}, (0, 1)),
    ("hinge", "hinge_loss", (X, SIGNS), {}, (0,)),
    ("perceptron", "perceptron_loss", (X, SIGNS), {}, (0,)),
    ("sparsemax_bin", "sparsemax_loss", (0.7 * X, Y_BIN), {}, (0,)),
    ("safe_softmax_ce", "safe_softmax_cross_entropy", (X, Y_SOFT / Y_SOFT.sum(-1, keepdims=True)), {}, (0, 1)),
    ("softmax_ce", "softmax_cross_entropy", (X, Y_ONEHOT), {}, (0, 1)),
    (
        "softmax_ce_axis0",
        "softmax_cross_entropy",
        (X, jax.nn.one_hot(jnp.array([0, 3, 1, 2, 2]), 4).T),
        {"axis": 0},
        (0,),
    ),
    ("softmax_ce_where", "softmax_cross_entropy", (X, Y_ONEHOT * MASK), {"where": MASK}, (0,)),
    ("int_ce", "softmax_cross_entropy_with_integer_labels", (X, Y_INT), {}, (0,)),
    ("int_ce_where", "softmax_cross_entropy_with_integer_labels", (X, jnp.zeros(4, int)), {"where": MASK}, (0,)),
    (
        "int_ce_axes",
        "softmax_cross_entropy_with_integer_labels",
        (X.reshape(2, 2, 5), jnp.array([3, 17])),
        {"axis": (1, 2)},
        (0,),
    ),
    ("poly", "poly_loss_cross_entropy", (X, Y_ONEHOT), {"epsilon": 1.5}, (0, 1)),
    ("poly_where", "poly_loss_cross_entropy", (X, Y_ONEHOT * MASK), {"epsilon": -1.0, "where": MASK}, (0,)),
    ("kl", "kl_divergence", (jnp.log(_probs(4, 5)), _probs(4, 5)), {}, (0, 1)),
    ("kl_log", "kl_divergence_with_log_targets", (jnp.log(_probs(4, 5)), jnp.log(_probs(4, 5))), {}, (0, 1)),
    ("gen_kl", "generalized_kl_divergence", (X, 2.0 * _probs(4, 5)), {"where": MASK}, (0, 1)),
    ("mc_hinge", "multiclass_hinge_loss", (X, Y_INT), {}, (0,)),
    ("mc_perceptron", "multiclass_perceptron_loss", (X, Y_INT), {}, (0,)),
    ("mc_sparsemax", "multiclass_sparsemax_loss", (X, Y_INT), {}, (0,)),
    ("focal", "sigmoid_focal_loss", (X, Y_SOFT), {"alpha": 0.25, "gamma": 2.0}, (0, 1)),
    ("focal_g05", "sigmoid_focal_loss", (X, Y_BIN), {"gamma": 0.5}, (0,)),
    ("squared", "squared_error", (X, X[::-1]), {}, (0, 1)),
    ("l2", "l2_loss", (X,), {}, (0,)),
    ("huber", "huber_loss", (3.0 * X, X[::-1]), {"delta": 0.7}, (0, 1)),
    ("log_cosh", "log_cosh", (5.0 * X, X[::-1]), {}, (0, 1)),
    ("cos_sim", "cosine_similarity", (X, X[::-1]), {"epsilon": 1e-3, "where": MASK}, (0, 1)),
    ("cos_dist", "cosine_distance", (X, X[::-1]), {"axis": 0}, (0, 1)),
    ("ranking", "ranking_softmax_loss", (X, Y_BIN), {"where": MASK, "weights": Y_SOFT}, (0,)),
    ("ranking_sum", "ranking_softmax_loss", (X, Y_SOFT), {"reduce_fn": jnp.sum}, (0,)),
    ("ranking_none", "ranking_softmax_loss", (X, Y_SOFT), {"reduce_fn": None, "where": MASK}, (0,)),
    (
        "dice",
        "dice_loss",
        (_f32(2, 3, 3, 4), jax.nn.one_hot(jnp.arange(18).reshape(2, 3, 3) % 4, 4)),
        {"alpha": 0.3, "beta": 0.7, "class_weights": jnp.array([1.0, 2.0, 0.5, 1.0])},
        (0,),
    ),
    (
        "dice_none_bg",
        "dice_loss",
        (_f32(2, 3, 3, 4), jax.nn.one_hot(jnp.arange(18).reshape(2, 3, 3) % 3, 4)),
        {"reduction": "none", "ignore_background": True},
        (0,),
    ),
    (
        "gen_dice",
        "multiclass_generalized_dice_loss",
        (_f32(2, 3, 3, 4), jax.nn.one_hot(jnp.arange(18).reshape(2, 3, 3) % 4, 4)),
        {},
        (0,),
    ),
    (
        "bin_dice",
        "binary_dice_loss",
        (_f32(2, 3, 3), (jnp.arange(18).reshape(2, 3, 3) % 2).astype(jnp.float32)),
        {"smooth": 0.5},
        (0,),
    ),
    ("ntxent", "ntxent", (_f32(6, 3), jnp.array([0, 0, 1, 1, 2, 2])), {"temperature": 0.5}, (0,)),
    ("triplet", "triplet_margin_loss", (_f32(4, 3), _f32(4, 3), _f32(4, 3)), {"margin": 2.0}, (0, 1, 2)),
    ("smooth", "smooth_labels", (Y_ONEHOT, 0.1), {}, (0,)),
    ("smooth_where", "smooth_labels", (Y_ONEHOT, 0.2), {"where": MASK}, (0,)),
    (
        "ctc",
        "ctc_loss",
        (
            _f32(2, 6, 4),
            jnp.array([[0.0] * 6, [0.0] * 4 + [1.0] * 2]),
            jnp.array([[1, 2, 2], [3, 1, 0]]),
            jnp.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
        ),
        {},
        (0,),
    ),
    (
        "ctc_blank2",
        "ctc_loss",
        (_f32(1, 5, 3), jnp.zeros((1, 5)), jnp.array([[1, 0]]), jnp.zeros((1, 2))),
        {"blank_id": 2},
        (0,),
    ),
]

EXTREME_CASES = [
    ("sigmoid_bce", "sigmoid_binary_cross_entropy", (EXTREME, Y_BIN), {}),
    ("sparsemax_bin", "sparsemax_loss", (EXTREME, Y_BIN), {}),
    ("softmax_ce", "softmax_cross_entropy", (EXTREME, Y_ONEHOT), {}),
    ("safe_softmax_ce", "safe_softmax_cross_entropy", (EXTREME, Y_ONEHOT), {}),
    ("int_ce", "softmax_cross_entropy_with_integer_labels", (EXTREME, Y_INT), {}),
    ("poly", "poly_loss_cross_entropy", (EXTREME, Y_ONEHOT), {}),
    ("focal", "sigmoid_focal_loss", (EXTREME, Y_BIN), {"alpha": 0.25}),
    ("focal_g05", "sigmoid_focal_loss", (EXTREME, Y_BIN), {"gamma": 0.5}),
    ("mc_hinge", "multiclass_hinge_loss", (EXTREME, Y_INT), {}),
    ("mc_sparsemax", "multiclass_sparsemax_loss", (EXTREME, Y_INT), {}),
    ("ranking", "ranking_softmax_loss", (EXTREME, Y_SOFT), {"where": MASK}),
    ("ctc", "ctc_loss", (EXTREME[None, :, :3], jnp.zeros((1, 4)), jnp.array([[1, 2]]), jnp.zeros((1, 2))), {}),
]


def _scalar(fn, kwargs, argnums):
    def total(*args):
        return jnp.sum(fn(*args, **kwargs))

    return jax.grad(total, argnums=argnums)


@pytest.mark.parametrize(("name", "args", "kwargs", "argnums"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_optax_values_and_gradients(name, args, kwargs, argnums):
    if name == "multiclass_sparsemax_loss":  # Optax's simplex projection fails on float32 under x64
        args = (args[0].astype(jnp.float64), *args[1:])
    ours, theirs = getattr(glosses, name), getattr(olosses, name)
    value_and_grads = [
        jax.jit(lambda *a, f=f: (f(*a, **kwargs), _scalar(f, kwargs, argnums)(*a))) for f in (ours, theirs)
    ]
    (v1, g1), (v2, g2) = (vg(*args) for vg in value_and_grads)
    _close(v1, v2, rtol=2e-5, atol=2e-5)
    _close(g1, g2, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "args", "kwargs"), [c[1:] for c in EXTREME_CASES], ids=[c[0] for c in EXTREME_CASES])
def test_extreme_logits_match_optax_and_stay_finite(name, args, kwargs):
    if name == "multiclass_sparsemax_loss":  # Optax's simplex projection fails on float32 under x64
        args = (args[0].astype(jnp.float64), *args[1:])
    ours, theirs = getattr(glosses, name), getattr(olosses, name)
    value_and_grads = [jax.jit(lambda *a, f=f: (f(*a, **kwargs), _scalar(f, kwargs, (0,))(*a))) for f in (ours, theirs)]
    (value, grad), (v2, g2) = (vg(*args) for vg in value_and_grads)
    assert np.all(np.isfinite(np.asarray(value))) and np.all(np.isfinite(np.asarray(grad[0])))
    _close(value, v2, rtol=1e-5, atol=1e-3)
    _close(grad, g2, rtol=1e-5, atol=1e-5)


def test_fenchel_young_and_ctc_forward_probs_match_optax():
    scores, targets = _f32(3, 4), _probs(3, 4)
    ours, theirs = glosses.make_fenchel_young_loss(logsumexp), olosses.make_fenchel_young_loss(logsumexp)  # pyright: ignore[reportArgumentType]
    _close(ours(scores, targets), theirs(scores, targets))
    _close(jax.grad(lambda s: ours(s, targets).sum())(scores), jax.grad(lambda s: theirs(s, targets).sum())(scores))
    # logsumexp(s) - <y, s> is the softmax cross entropy when y sums to 1.
    _close(ours(scores, targets), ref.softmax_cross_entropy(scores, targets), rtol=1e-5, atol=1e-5)
    args = CASES[[c[0] for c in CASES].index("ctc")][2]
    _close(JL.ctc_loss_with_forward_probs(*args), jax.jit(olosses.ctc_loss_with_forward_probs)(*args), atol=1e-4)


# ------------------------------------------------------------------------------------------------ references


def test_classification_closed_forms():
    z64 = RNG.normal(size=(3, 5)) * 3
    y = np.eye(5)[[1, 4, 0]]
    soft = RNG.dirichlet(np.ones(5), size=3)
    z = jnp.asarray(z64)
    _close(JL.softmax_cross_entropy(z, jnp.asarray(soft)), ref.softmax_cross_entropy(z64, soft), 1e-12, 1e-12)
    # one-hot: logsumexp(z) - z_y
    _close(
        JL.softmax_cross_entropy_with_integer_labels(z, jnp.array([1, 4, 0])),
        ref.logsumexp(z64) - z64[[0, 1, 2], [1, 4, 0]],
        1e-12,
        1e-12,
    )
    _close(
        JL.sigmoid_binary_cross_entropy(z, jnp.asarray(soft)), ref.sigmoid_binary_cross_entropy(z64, soft), 1e-12, 1e-12
    )
    _close(
        JL.sigmoid_focal_loss(z, jnp.asarray(soft), alpha=0.3, gamma=1.5),
        ref.sigmoid_focal_loss(z64, soft, alpha=0.3, gamma=1.5),
        1e-10,
        1e-12,
    )
    _close(
        JL.poly_loss_cross_entropy(z, jnp.asarray(y), epsilon=-0.5),
        ref.poly_loss_cross_entropy(z64, y, epsilon=-0.5),
        1e-12,
        1e-12,
    )
    _close(JL.multiclass_hinge_loss(z, jnp.array([1, 4, 0])), ref.multiclass_hinge_loss(z64, [1, 4, 0]))
    _close(JL.multiclass_perceptron_loss(z, jnp.array([1, 4, 0])), ref.multiclass_perceptron_loss(z64, [1, 4, 0]))
    _close(
        JL.multiclass_sparsemax_loss(z, jnp.array([1, 4, 0])),
        ref.multiclass_sparsemax_loss(z64, [1, 4, 0]),
        1e-12,
        1e-12,
    )
    # sparsemax gradient = sparsemax(z) - one_hot(y) (Danskin), against the NumPy projection
    grad = jax.grad(lambda s: JL.multiclass_sparsemax_loss(s, jnp.array([1, 4, 0])).sum())(z)
    _close(grad, np.stack([ref.projection_simplex(r) for r in z64]) - y, 1e-12, 1e-12)
    _close(JL.sparsemax_loss(z, jnp.asarray(y)), ref.sparsemax_loss(z64, y), 1e-12, 1e-12)
    _close(JL.hinge_loss(z, 2 * jnp.asarray(y) - 1), ref.hinge_loss(z64, 2 * y - 1))
    _close(JL.perceptron_loss(z, 2 * jnp.asarray(y) - 1), ref.perceptron_loss(z64, 2 * y - 1))


def test_kl_divergences_of_known_distributions():
    p, q = np.array([0.25, 0.25, 0.5]), np.array([0.5, 0.5, 0.0])
    expected = 0.5 * math.log(2.0) * 2  # sum q log(q/p) = 2 * 0.5 * log(0.5 / 0.25)
    assert abs(float(JL.kl_divergence(jnp.log(jnp.asarray(p)), jnp.asarray(q))) - expected) < 1e-12
    assert (
        abs(float(JL.kl_divergence_with_log_targets(jnp.log(jnp.asarray(p)), jnp.log(jnp.asarray(q)))) - expected)
        < 1e-12
    )
    m = np.array([2.0, 0.5, 1.0])  # unnormalized
    gk = JL.generalized_kl_divergence(jnp.log(jnp.asarray(m)), jnp.asarray(q))
    assert abs(float(gk) - float(ref.generalized_kl_divergence(np.log(m), q))) < 1e-12
    with pytest.warns(DeprecationWarning, match="use generalized_kl_divergence"):
        old = JL.convex_kl_divergence(jnp.log(jnp.asarray(m)), jnp.asarray(q))
    assert float(old) == float(gk)


def test_ctc_against_brute_force_sum_over_alignments():
    logits64 = RNG.normal(size=(2, 4, 3))
    labels = np.array([[1, 1], [2, 1]])
    for blank in (0, 2):
        lab = np.where(labels == blank, 0 if blank else 2, labels) if blank else labels
        loss = JL.ctc_loss(
            jnp.asarray(logits64), jnp.zeros((2, 4)), jnp.asarray(lab), jnp.zeros((2, 2)), blank_id=blank
        )
        expected = [ref.ctc_loss_brute_force(logits64[b], lab[b], blank_id=blank) for b in range(2)]
        _close(loss, expected, 1e-10, 1e-10)
    # padding: the second sequence has 3 real frames and 1 real label
    loss = JL.ctc_loss(
        jnp.asarray(logits64),
        jnp.array([[0.0] * 4, [0.0, 0.0, 0.0, 1.0]]),
        jnp.asarray(labels),
        jnp.array([[0.0, 0.0], [0.0, 1.0]]),
    )
    _close(
        loss,
        [ref.ctc_loss_brute_force(logits64[0], [1, 1]), ref.ctc_loss_brute_force(logits64[1, :3], [2])],
        1e-10,
        1e-10,
    )


def test_regression_closed_forms():
    e64 = np.array([-3.0, -1.0, -0.2, 0.0, 1e-4, 0.7, 1.0, 2.5, 40.0])
    e = jnp.asarray(e64)
    _close(JL.huber_loss(e, delta=1.0), ref.huber_loss(e64, 1.0), 1e-14, 0)  # both branches
    _close(jax.vmap(jax.grad(JL.huber_loss))(e), np.clip(e64, -1.0, 1.0), 1e-12, 0)
    _close(JL.log_cosh(e), ref.log_cosh(e64), 1e-14, 0)  # relative accuracy near 0 as well
    _close(jax.vmap(jax.grad(JL.log_cosh))(e), np.tanh(e64), 1e-14, 1e-300)
    small = jnp.asarray(1e-3, jnp.float32)  # float32: no cancellation near 0 either
    assert abs(float(JL.log_cosh(small)) / float(np.log(np.cosh(1e-3))) - 1) < 1e-6
    _close(JL.squared_error(e, e[::-1]), (e64 - e64[::-1]) ** 2)
    _close(JL.l2_loss(e), 0.5 * e64**2)
    a, b = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    _close(JL.cosine_similarity(jnp.asarray(a), jnp.asarray(b)), ref.cosine_similarity(a, b), 1e-12, 1e-12)
    _close(
        JL.cosine_distance(jnp.asarray(a), jnp.asarray(b), epsilon=1e-2),
        1 - ref.cosine_similarity(a, b, 1e-2),
        1e-12,
        1e-12,
    )


def test_other_families_against_references():
    s, y = RNG.normal(size=(3, 5)), RNG.uniform(size=(3, 5))
    assert abs(float(JL.ranking_softmax_loss(jnp.asarray(s), jnp.asarray(y))) - ref.ranking_softmax_loss(s, y)) < 1e-12
    _close(JL.smooth_labels(jnp.asarray(np.eye(4)), 0.2), ref.smooth_labels(np.eye(4), 0.2), 1e-14, 0)
    emb, lab = RNG.normal(size=(6, 3)), np.array([0, 1, 0, 2, 1, 2])
    assert abs(float(JL.ntxent(jnp.asarray(emb), jnp.asarray(lab), 0.3)) - ref.ntxent(emb, lab, 0.3)) < 1e-10
    a, p, n = (RNG.normal(size=(4, 3)) for _ in range(3))
    for q in (1, 2, 3):
        _close(
            JL.triplet_margin_loss(jnp.asarray(a), jnp.asarray(p), jnp.asarray(n), norm_degree=q),
            ref.triplet_margin_loss(a, p, n, norm_degree=q),
            1e-12,
            1e-12,
        )
    # dice on hand-computed masks: prediction covers 3 pixels, target 2, overlap 1 -> 1 - 2*1/(3+2) = 0.6
    pred = jnp.array([[[1.0, 1.0, 1.0, 0.0]]])[..., None]
    targ = jnp.array([[[1.0, 0.0, 0.0, 1.0]]])[..., None]
    assert abs(float(JL.binary_dice_loss(pred, targ, smooth=0.0, apply_sigmoid=False)[0]) - 0.6) < 1e-12
    probs = RNG.dirichlet(np.ones(3), size=(2, 4))
    onehot = np.eye(3)[RNG.integers(0, 3, size=(2, 4))]
    _close(
        JL.dice_loss(
            jnp.asarray(probs), jnp.asarray(onehot), apply_softmax=False, alpha=0.2, beta=0.8, reduction="none"
        ),
        ref.dice_per_class(probs, onehot, alpha=0.2, beta=0.8),
        1e-12,
        1e-12,
    )


# ------------------------------------------------------------------------------------------------ NaN safety


def test_masked_entries_put_no_nan_in_gradients():
    z = jnp.array([[1.0, -jnp.inf, 0.5]])
    y = jnp.array([[0.6, 0.0, 0.4]])
    g = jax.grad(lambda z: JL.safe_softmax_cross_entropy(z, y).sum())(z)
    p = np.exp(np.array([1.0, 0.5]) - np.log(np.exp(1.0) + np.exp(0.5)))
    _close(g, [[p[0] - 0.6, 0.0, p[1] - 0.4]], 1e-12, 1e-12)
    assert np.all(np.isfinite(np.asarray(jax.jacfwd(lambda z: JL.safe_softmax_cross_entropy(z, y))(z))))
    gy = jax.grad(lambda y: JL.safe_softmax_cross_entropy(z, y).sum())(y)  # -log p: +inf where p = 0
    _close(gy, -np.asarray(jax.nn.log_softmax(z)), 1e-12, 1e-12)
    # KL with zero targets and -inf log-predictions there: 0 log 0 = 0, finite gradients
    lp, q = jnp.log(jnp.array([0.5, 0.5, 0.0])), jnp.array([0.5, 0.5, 0.0])
    assert float(JL.kl_divergence(lp, q)) == 0.0
    for argnum in (0, 1):
        assert np.all(np.isfinite(np.asarray(jax.grad(JL.kl_divergence, argnum)(lp, q))))
    assert float(JL.kl_divergence_with_log_targets(lp, jnp.log(q))) == 0.0
    assert np.all(np.isfinite(np.asarray(jax.grad(JL.kl_divergence_with_log_targets, 1)(lp, jnp.log(q)))))
    # a fully masked row: loss 0, gradient 0
    where = jnp.array([[True, True, False], [False, False, False]])
    logits = jnp.ones((2, 3))
    for fn in (JL.softmax_cross_entropy, JL.poly_loss_cross_entropy):
        g = jax.grad(lambda x, fn=fn: fn(x, jnp.ones((2, 3)) / 3, where=where).sum())(logits)
        assert np.all(np.isfinite(np.asarray(g))) and np.all(np.asarray(g)[1] == 0)
    assert float(JL.ranking_softmax_loss(logits, jnp.ones((2, 3)), where=where * False)) == 0.0
    # focal loss: finite Hessian for gamma < 1 on extreme logits (Optax's own regression test)
    h = jax.hessian(lambda x: JL.sigmoid_focal_loss(x, Y_BIN[0], gamma=0.5).sum())(EXTREME[0])
    assert np.all(np.isfinite(np.asarray(h)))
    # gamma = 0 is the cross entropy exactly, also where 1 - p_t underflows to 0
    _close(JL.sigmoid_focal_loss(EXTREME, Y_BIN, gamma=0.0), JL.sigmoid_binary_cross_entropy(EXTREME, Y_BIN))


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: glosses.huber_loss(X, delta=-1.0), r"huber_loss\(delta=-1.0\): delta must be in \[0.0, inf\)"),
        (lambda: glosses.smooth_labels(Y_ONEHOT, 1.5), r"smooth_labels\(alpha=1.5\): alpha must be in \[0.0, 1.0\]"),
        (lambda: glosses.sigmoid_focal_loss(X, Y_BIN, gamma=-1.0), r"sigmoid_focal_loss\(gamma=-1.0\)"),
        (lambda: glosses.sigmoid_focal_loss(X, Y_BIN, alpha=2.0), r"sigmoid_focal_loss\(alpha=2.0\)"),
        (lambda: glosses.ntxent(X, Y_INT, temperature=0.0), r"ntxent\(temperature=0.0\): .* \(0.0, inf\)"),
        (lambda: glosses.ntxent(X, Y_INT[:3]), r"ntxent\(.*same leading dimension"),
        (lambda: glosses.cosine_similarity(X, X, epsilon=-1.0), r"cosine_similarity\(epsilon=-1.0\)"),
        (lambda: glosses.triplet_margin_loss(X, X, X, norm_degree=0), r"triplet_margin_loss\(norm_degree=0\)"),
        (lambda: glosses.dice_loss(X[None], Y_ONEHOT[None], reduction="avg"), r"dice_loss\(reduction='avg'\)"),
        (lambda: glosses.dice_loss(X[None], Y_ONEHOT[None], smooth=-1.0), r"dice_loss\(smooth=-1.0\)"),
        (lambda: glosses.dice_loss(Y_SOFT[None], Y_ONEHOT[None], apply_softmax=False), "valid probability"),
        (lambda: glosses.squared_error(X, X[:2]), r"squared_error\(predictions of shape \(4, 5\), targets of sh"),
        (lambda: glosses.perceptron_loss(X, X[:2]), r"perceptron_loss\(predictor_outputs of shape"),
        (lambda: glosses.softmax_cross_entropy_with_integer_labels(X, Y_INT, axis=[1]), r"axis must be an int"),  # pyright: ignore[reportArgumentType]
        (lambda: glosses.softmax_cross_entropy_with_integer_labels(X, Y_INT, axis=2), r"axis=2\): axis is out"),
        (
            lambda: glosses.ctc_loss(X[None], jnp.zeros((1, 4)), Y_INT[None], jnp.zeros((1, 4)), blank_id=5),
            r"ctc_loss_with_forward_probs\(blank_id=5\): blank_id must be an int in \[0, 5\)",
        ),
        (lambda: glosses.ctc_loss(X, jnp.zeros((4,)), Y_INT[None], jnp.zeros((1, 4))), r"logits must have rank 3"),
        (
            lambda: glosses.ctc_loss(X[None], jnp.zeros((1, 4)), Y_INT[None], jnp.zeros((1, 4)), log_epsilon=1.0),
            r"log_epsilon=1.0\): log_epsilon must be in \(-inf, 0.0\)",
        ),
        (lambda: glosses.make_fenchel_young_loss(3), r"max_fun must be callable"),  # pyright: ignore[reportArgumentType]
    ],
)
def test_bad_input_raises_value_error_naming_the_call(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_dtype_errors_are_type_and_value_errors():
    with pytest.raises(TypeError, match=r"softmax_cross_entropy\(logits of dtype int"):
        glosses.softmax_cross_entropy(jnp.arange(3), jnp.ones(3))
    with pytest.raises(ValueError, match=r"labels must have an integer dtype"):
        glosses.softmax_cross_entropy_with_integer_labels(X, Y_ONEHOT)


def test_checks_skip_tracers_under_jit():
    f = jax.jit(lambda d: glosses.huber_loss(X, delta=d))
    _close(f(0.5), optax.huber_loss(X, delta=0.5))
    g = jax.jit(lambda p: glosses.dice_loss(p, Y_ONEHOT[None], apply_softmax=False))
    assert g(_probs(1, 4, 5)).shape == (1,)


# ------------------------------------------------------------------------------------------------ docs


@pytest.mark.parametrize(
    "module",
    [_classification, _divergences, _ctc, _regression, _ranking, _segmentation, _self_supervised, _smoothing,
     _fenchel_young],
    ids=lambda m: m.__name__.rsplit(".", 1)[-1],
)
def test_docstring_examples_run(module):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
