"""Self-test of gradtx.testing.reference: closed forms, hand computations and Optax (float64) cross-checks."""

import math

import numpy as np
import pytest

from gradtx.testing import reference as ref

try:  # Optax is only an optional, independent oracle here.
    import jax
    import jax.numpy as jnp
    import optax
except ImportError:  # pragma: no cover
    optax = None

needs_optax = pytest.mark.skipif(optax is None, reason="optax not installed")

STEPS, N = 240, 7


def _grads(seed=0, steps=STEPS, n=N):
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(-3.0, 3.0, size=n))
    return rng.normal(size=(steps, n)) * scales


def _params(seed=1, steps=STEPS, n=N):
    return np.random.default_rng(seed).normal(size=(steps, n))


def close(a, b, rtol=1e-12, atol=1e-15):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# ------------------------------------------------------------------------------------------------
# Interface
# ------------------------------------------------------------------------------------------------


def _all_refs():
    mask = np.array([True, False] * 3 + [True])
    return [
        ref.identity(),
        ref.set_to_zero(),
        ref.scale(0.3),
        ref.scale_by_learning_rate(0.1),
        ref.scale_by_schedule(ref.linear_schedule(1.0, 0.0, 50)),
        ref.trace(0.9),
        ref.trace(0.9, nesterov=True),
        ref.ema(0.9),
        ref.ema(0.9, debias=False),
        ref.bias_correction(0.9),
        ref.scale_by_rms(),
        ref.scale_by_rms(decay=None),
        ref.scale_by_rms(init_from_first=True),
        ref.scale_by_rss(),
        ref.scale_by_stddev(),
        ref.scale_by_adam(),
        ref.scale_by_adam(nesterov=True),
        ref.scale_by_sign(),
        ref.clip(0.5),
        ref.clip_by_global_norm(1.0),
        ref.add_decayed_weights(0.1, mask),
        ref.sgd(0.1),
        ref.sgd(0.1, momentum=0.9, nesterov=True),
        ref.adagrad(0.1),
        ref.rmsprop(0.1, centered=True, momentum=0.9),
        ref.rmsprop(0.1, decay=None, momentum=0.5, nesterov=True),
        ref.adam(1e-3),
        ref.adamw(1e-3, mask=mask),
        ref.nadam(1e-3),
        ref.nadamw(1e-3, weight_decay=0.1),
        ref.chain(ref.trace(0.9), ref.scale(-0.1)),
    ]


@pytest.mark.parametrize("make", range(len(_all_refs())))
def test_no_mutation_no_aliasing_float64(make):
    grads, params = _grads(steps=6), _params(steps=6)
    a, b = _all_refs()[make], _all_refs()[make]
    for t in range(6):
        g, p = grads[t].copy(), params[t].copy()
        u = a.step(g, p)
        assert u.dtype == np.float64 and u.shape == (N,)
        assert u is not g and not np.shares_memory(u, g)
        np.testing.assert_array_equal(g, grads[t])
        np.testing.assert_array_equal(p, params[t])
        expected = b.step(grads[t], params[t])
        np.testing.assert_array_equal(u, expected)
        u[:] = 1e9  # scribbling on an update must not change the state


def test_run_helper_fixed_and_per_step_params():
    g, p = _grads(steps=5), _params(steps=5)
    out = ref.run(ref.add_decayed_weights(0.5), g, p)
    close(out, g + 0.5 * p)
    out = ref.run(ref.add_decayed_weights(0.5), g, p[0])
    close(out, g + 0.5 * p[0])
    out = ref.run(ref.scale(2.0), g)
    assert out.shape == g.shape
    close(out, 2.0 * g)


def test_reference_imports_only_numpy_and_math():
    """Every module of the package imports NumPy and ``math`` only (``typing`` and ``__future__`` for
    annotations); the package's ``__init__`` imports only its own modules, and each of them is in ``MODULES``."""
    import ast
    import pathlib

    package = pathlib.Path(ref.__file__).parent
    modules = sorted(p.stem for p in package.glob("*.py") if p.stem != "__init__")
    assert sorted(m.__name__.rsplit(".", 1)[1] for m in ref.MODULES) == modules
    everything = set()
    for path in sorted(package.glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.module == "gradtx.testing.reference":  # the package's own modules
                    assert path.name == "__init__.py" and {a.name for a in node.names} <= set(modules), path.name
                    continue
                names.add((node.module or "").split(".")[0])
        assert names <= {"math", "numpy", "typing", "__future__"}, (path.name, names)
        everything |= names
    assert {"math", "numpy"} <= everything


# ------------------------------------------------------------------------------------------------
# Blocks: closed forms
# ------------------------------------------------------------------------------------------------


def test_trace_geometric_series_under_constant_gradient():
    g, d = np.array([1.0, -2.0, 0.5]), 0.9
    tr, trn = ref.trace(d), ref.trace(d, nesterov=True)
    for k in range(1, 201):
        t_k = g * (1 - d**k) / (1 - d)
        close(tr.step(g), t_k)
        close(trn.step(g), g + d * t_k)


def test_ema_debias_constant_gradient_is_g():
    g, d = np.array([3.0, -1e-3, 7.5]), 0.99
    e, e_raw = ref.ema(d), ref.ema(d, debias=False)
    for k in range(1, 251):
        close(e.step(g), g, rtol=1e-13)
        close(e_raw.step(g), g * (1 - d**k), rtol=1e-13)


def test_ema_hand_two_steps():
    e = ref.ema(0.5)
    close(e.step(np.array([2.0])), [2.0])  # 0.5*2 / 0.5
    close(e.step(np.array([4.0])), [(0.5 * 4 + 0.25 * 2) / 0.75])


def test_bias_correction_block():
    bc, g = ref.bias_correction(0.9), np.array([1.0, -2.0])
    for k in range(1, 30):
        close(bc.step(g), g / (1 - 0.9**k))


def test_scale_and_learning_rate_and_schedule_blocks():
    g = np.array([1.0, -2.0])
    close(ref.scale(-0.5).step(g), [-0.5, 1.0])
    sched = ref.linear_schedule(1.0, 0.0, 10)
    s1, s2, s3 = (
        ref.scale_by_learning_rate(sched),
        ref.scale_by_learning_rate(0.1, flip_sign=False),
        ref.scale_by_schedule(sched),
    )
    for count in range(15):
        close(s1.step(g), -sched(count) * g)
        close(s2.step(g), 0.1 * g)
        close(s3.step(g), sched(count) * g)
    lr = ref.scale_by_learning_rate(lambda c: 10.0**-c)  # any Python callable works, 0-based count
    close(lr.step(g), -g)
    close(lr.step(g), -0.1 * g)


def test_rms_decay_none_is_root_mean_square_of_all_past_gradients():
    g = _grads(3)
    out = ref.run(ref.scale_by_rms(decay=None, eps=1e-8), g)
    k = np.arange(1, len(g) + 1)[:, None]
    mean_sq = np.cumsum(g**2, axis=0) / k
    close(out, g / np.sqrt(mean_sq + 1e-8))
    out = ref.run(ref.scale_by_rms(decay=None, eps=1e-8, eps_in_sqrt=False), g)
    close(out, g / (np.sqrt(mean_sq) + 1e-8))


def test_rms_init_from_first():
    g1, g2 = np.array([3.0, -0.02, 1e3]), np.array([-1.0, 0.5, 2.0])
    r = ref.scale_by_rms(decay=0.9, eps=1e-300, init_from_first=True)
    close(r.step(g1), np.sign(g1), rtol=1e-15)
    close(r.step(g2), g2 / np.sqrt(0.9 * g1**2 + 0.1 * g2**2 + 1e-300))
    # without init_from_first the first step is g / sqrt(0.1 g^2) = sign(g) / sqrt(0.1)
    close(ref.scale_by_rms(decay=0.9, eps=1e-300).step(g1), np.sign(g1) / math.sqrt(0.1))
    # initial_scale is irrelevant with init_from_first (nu_1 = g_1^2 exactly)
    close(ref.scale_by_rms(0.9, 1e-300, initial_scale=5.0, init_from_first=True).step(g1), np.sign(g1))


def test_rms_ema_and_bias_correction_hand():
    g1, g2, eps = np.array([2.0, -1.0]), np.array([1.0, 4.0]), 1e-8
    r = ref.scale_by_rms(decay=0.8, eps=eps, initial_scale=0.5)
    close(r.step(g1), g1 / np.sqrt(0.8 * 0.5 + 0.2 * g1**2 + eps))
    close(r.step(g2), g2 / np.sqrt(0.8 * (0.8 * 0.5 + 0.2 * g1**2) + 0.2 * g2**2 + eps))
    r = ref.scale_by_rms(decay=0.8, eps=eps, eps_in_sqrt=False, bias_correction=True)
    close(r.step(g1), g1 / (np.abs(g1) + eps))
    close(r.step(g2), g2 / (np.sqrt((0.16 * g1**2 + 0.2 * g2**2) / 0.36) + eps))


def test_rms_bias_corrected_equals_adam_with_b1_zero():
    g = _grads(4)
    close(
        ref.run(ref.scale_by_rms(0.99, 1e-8, eps_in_sqrt=False, bias_correction=True), g),
        ref.run(ref.scale_by_adam(b1=0.0, b2=0.99), g),
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(decay=None, bias_correction=True),
        dict(init_from_first=True, bias_correction=True),
        dict(decay=None, initial_scale=0.1),
    ],
)
def test_rms_invalid_combinations(kwargs):
    with pytest.raises(ValueError):
        ref.scale_by_rms(**kwargs)
    with pytest.raises(ValueError):
        ref.rmsprop(0.1, **kwargs)


def test_rmsprop_centered_decay_none_invalid():
    with pytest.raises(ValueError):
        ref.rmsprop(0.1, decay=None, centered=True)


def test_stddev_hand_two_steps():
    g1, g2, eps = np.array([2.0, -1.0]), np.array([1.0, 4.0]), 1e-8
    s = ref.scale_by_stddev(decay=0.5, eps=eps, initial_scale=1.0)
    mu1, nu1 = 0.5 * g1, 0.5 + 0.5 * g1**2
    close(s.step(g1), g1 / np.sqrt(nu1 - mu1**2 + eps))
    mu2, nu2 = 0.5 * mu1 + 0.5 * g2, 0.5 * nu1 + 0.5 * g2**2
    close(s.step(g2), g2 / np.sqrt(nu2 - mu2**2 + eps))
    s = ref.scale_by_stddev(decay=0.5, eps=eps, eps_in_sqrt=False, bias_correction=True)
    s.step(g1)  # mu_hat = g1, nu_hat = g1^2: zero variance
    m, n = (0.25 * g1 + 0.5 * g2) / 0.75, (0.25 * g1**2 + 0.5 * g2**2) / 0.75
    close(s.step(g2), g2 / (np.sqrt(n - m**2) + eps))


def test_rss_accumulates_and_zero_accumulator_gives_zero():
    g = _grads(5)
    k = ref.run(ref.scale_by_rss(0.1, 1e-7), g)
    close(k, g / np.sqrt(0.1 + np.cumsum(g**2, axis=0) + 1e-7))
    r = ref.scale_by_rss(initial_accumulator_value=0.0)
    close(r.step(np.array([0.0, 2.0])), [0.0, 2.0 / math.sqrt(4.0 + 1e-7)])


def test_scale_by_adam_first_step_and_hand_second_step():
    g1, g2 = np.array([0.3, -4.0, 1e-5]), np.array([-1.0, 2.0, 3.0])
    a = ref.scale_by_adam()
    close(a.step(g1), g1 / (np.abs(g1) + 1e-8))
    m, v = 0.09 * g1 + 0.1 * g2, 0.000999 * g1**2 + 0.001 * g2**2
    close(a.step(g2), (m / 0.19) / (np.sqrt(v / (1 - 0.999**2)) + 1e-8))


def test_sign_clip_global_norm_decayed_weights():
    close(ref.scale_by_sign().step(np.array([-2.0, 0.0, 3.0])), [-1.0, 0.0, 1.0])
    close(ref.clip(1.5).step(np.array([-2.0, 0.5, 3.0])), [-1.5, 0.5, 1.5])
    c = ref.clip_by_global_norm(1.0)
    close(c.step(np.array([3.0, 4.0])), [0.6, 0.8])
    close(ref.clip_by_global_norm(10.0).step(np.array([3.0, 4.0])), [3.0, 4.0])
    close(ref.clip_by_global_norm(5.0).step(np.array([3.0, 4.0])), [3.0, 4.0])  # n == max: scale 1
    for g in _grads(6, steps=20):
        u = ref.clip_by_global_norm(0.5).step(g)
        if np.linalg.norm(g) >= 0.5:
            assert np.linalg.norm(u) == pytest.approx(0.5, rel=1e-14)
            close(u / np.linalg.norm(u), g / np.linalg.norm(g))
    mask = np.array([True, False, True])
    u = ref.add_decayed_weights(0.1, mask).step(np.ones(3), np.array([10.0, 20.0, 30.0]))
    close(u, [2.0, 1.0, 4.0])
    close(ref.add_decayed_weights(0.1).step(np.ones(3), np.array([10.0, 20.0, 30.0])), [2.0, 3.0, 4.0])


def test_identity_set_to_zero_chain():
    g = np.array([1.0, -2.0])
    close(ref.identity().step(g), g)
    close(ref.set_to_zero().step(g), [0.0, 0.0])
    c = ref.chain(ref.scale(2.0), ref.clip(3.0), ref.scale(-1.0))
    close(c.step(g), [-2.0, 3.0])


# ------------------------------------------------------------------------------------------------
# Optimizers: closed forms and hand computations
# ------------------------------------------------------------------------------------------------


def test_adam_first_step():
    g, lr = np.array([0.3, -4.0, 1e-5, 0.0]), 0.01
    close(ref.adam(lr).step(g), -lr * g / (np.abs(g) + 1e-8))


def test_adam_with_schedule_uses_zero_based_count():
    g = np.array([1.0, -1.0])
    a = ref.adam(lambda count: 0.1 * (count + 1), b1=0.0, b2=0.0, eps=0.0)  # u = -lr_t sign(g)
    for count in range(5):
        close(a.step(g), -0.1 * (count + 1) * np.sign(g))


def test_nadam_first_and_second_step_by_hand():
    g1, g2, lr = np.array([0.5, -2.0]), np.array([1.5, 1.0]), 1e-3
    n, a = ref.nadam(lr), ref.adam(lr)
    # step 1: m_hat = 0.9 * 0.1 g / (1 - 0.81) + 0.1 g / 0.1 = g (1 + 0.9 / 1.9); v_hat = g^2
    close(n.step(g1), -lr * g1 * (1 + 0.9 / 1.9) / (np.abs(g1) + 1e-8))
    a.step(g1)
    m2 = 0.9 * 0.1 * g1 + 0.1 * g2
    v2 = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    m_hat = 0.9 * m2 / (1 - 0.9**3) + 0.1 * g2 / (1 - 0.9**2)
    u2 = n.step(g2)
    close(u2, -lr * m_hat / (np.sqrt(v2 / (1 - 0.999**2)) + 1e-8))
    assert not np.allclose(u2, a.step(g2), rtol=1e-3)


def test_adamw_weight_decay_zero_is_adam_and_decay_term():
    g, p = _grads(7), _params(8)
    close(ref.run(ref.adamw(3e-3, weight_decay=0.0), g, p), ref.run(ref.adam(3e-3), g))
    close(ref.run(ref.nadamw(3e-3, weight_decay=0.0), g, p), ref.run(ref.nadam(3e-3), g))
    mask = np.arange(N) % 2 == 0
    diff = ref.run(ref.adamw(3e-3, weight_decay=0.1, mask=mask), g, p) - ref.run(ref.adam(3e-3), g)
    close(diff, np.where(mask, -3e-3 * 0.1 * p, 0.0), atol=1e-17)


def test_sgd_on_quadratic_follows_matrix_power():
    rng = np.random.default_rng(9)
    q = rng.normal(size=(3, 3))
    A = q @ q.T + np.eye(3)
    x0, lr = rng.normal(size=3), 0.05
    opt, x = ref.sgd(lr), x0.copy()
    for t in range(1, 201):
        x = x + opt.step(A @ x)
        close(x, np.linalg.matrix_power(np.eye(3) - lr * A, t) @ x0, atol=1e-14)


def test_sgd_heavy_ball_on_quadratic_follows_linear_recursion():
    rng = np.random.default_rng(10)
    q = rng.normal(size=(3, 3))
    A = q @ q.T + np.eye(3)
    x0, lr, mu = rng.normal(size=3), 0.02, 0.9
    # b_{t+1} = A x_t + mu b_t ; x_{t+1} = x_t - lr b_{t+1}
    M = np.block([[np.eye(3) - lr * A, -lr * mu * np.eye(3)], [A, mu * np.eye(3)]])
    opt, x = ref.sgd(lr, momentum=mu), x0.copy()
    z0 = np.concatenate([x0, np.zeros(3)])
    for t in range(1, 201):
        x = x + opt.step(A @ x)
        close(x, (np.linalg.matrix_power(M, t) @ z0)[:3], atol=1e-13)


def test_sgd_nesterov_hand():
    g1, g2, lr, mu = np.array([1.0, -2.0]), np.array([0.5, 3.0]), 0.1, 0.9
    s = ref.sgd(lr, momentum=mu, nesterov=True)
    close(s.step(g1), -lr * (g1 + mu * g1))
    b2 = g2 + mu * g1
    close(s.step(g2), -lr * (g2 + mu * b2))


def test_adagrad_accumulates():
    g, lr = _grads(11), 0.3
    close(ref.run(ref.adagrad(lr), g), -lr * g / np.sqrt(0.1 + np.cumsum(g**2, axis=0) + 1e-7))


def test_rmsprop_with_momentum_hand():
    g1, g2, lr, mu, eps = np.array([1.0, -2.0]), np.array([0.5, 3.0]), 0.01, 0.5, 1e-8
    for nesterov in (False, True):
        r = ref.rmsprop(lr, decay=0.9, eps=eps, momentum=mu, nesterov=nesterov)
        x1 = -lr * g1 / np.sqrt(0.1 * g1**2 + eps)
        close(r.step(g1), x1 + mu * x1 if nesterov else x1)
        x2 = -lr * g2 / np.sqrt(0.09 * g1**2 + 0.1 * g2**2 + eps)
        t2 = x2 + mu * x1
        close(r.step(g2), x2 + mu * t2 if nesterov else t2)


def test_rmsprop_lecture_variants_match_blocks():
    g = _grads(12)
    for kw in (dict(decay=None), dict(decay=0.95, init_from_first=True), dict(decay=None, eps_in_sqrt=False)):
        want = ref.run(
            ref.chain(
                ref.scale_by_rms(eps=1e-6, **kw),
                ref.scale_by_learning_rate(0.01),
                ref.trace(0.9, nesterov=True),
            ),
            g,
        )
        close(ref.run(ref.rmsprop(0.01, eps=1e-6, momentum=0.9, nesterov=True, **kw), g), want)


def test_monolithic_optimizers_equal_block_compositions():
    g, p = _grads(13), _params(14)
    mask = np.arange(N) % 3 != 0
    sched = ref.warmup_cosine_decay_schedule(0.0, 1e-2, 20, 200, 1e-4)
    pairs = [
        (ref.adam(sched), ref.chain(ref.scale_by_adam(), ref.scale_by_learning_rate(sched))),
        (
            ref.nadam(1e-3, eps_root=1e-10),
            ref.chain(ref.scale_by_adam(eps_root=1e-10, nesterov=True), ref.scale_by_learning_rate(1e-3)),
        ),
        (
            ref.nadamw(sched, weight_decay=0.05, mask=mask),
            ref.chain(
                ref.scale_by_adam(nesterov=True),
                ref.add_decayed_weights(0.05, mask),
                ref.scale_by_learning_rate(sched),
            ),
        ),
        (
            ref.sgd(0.1, momentum=0.9, nesterov=True),
            ref.chain(ref.trace(0.9, nesterov=True), ref.scale_by_learning_rate(0.1)),
        ),
        (ref.adagrad(0.1), ref.chain(ref.scale_by_rss(), ref.scale_by_learning_rate(0.1))),
        (
            ref.rmsprop(
                0.01, centered=True, momentum=0.5, bias_correction=True, eps_in_sqrt=False, initial_scale=1.0
            ),
            ref.chain(
                ref.scale_by_stddev(initial_scale=1.0, eps_in_sqrt=False, bias_correction=True),
                ref.scale_by_learning_rate(0.01),
                ref.trace(0.5),
            ),
        ),
    ]
    for mono, comp in pairs:
        close(ref.run(mono, g, p), ref.run(comp, g, p), rtol=1e-11)


# ------------------------------------------------------------------------------------------------
# Schedules: hand-computed values
# ------------------------------------------------------------------------------------------------

approx = pytest.approx


def test_constant_linear_polynomial():
    assert ref.constant_schedule(0.3)(100) == 0.3
    lin = ref.linear_schedule(1.0, 0.0, 10)
    assert lin(3) == approx(0.7, abs=1e-15) and lin(0) == 1.0 and lin(10) == 0.0 and lin(50) == 0.0
    assert ref.linear_schedule(1.0, 0.0, 10, transition_begin=5)(8) == approx(0.7)
    p = ref.polynomial_schedule(1.0, 0.01, 2, 100, transition_begin=5)
    assert [round(p(c), 4) for c in (0, 5, 6, 104, 105, 110)] == [1.0, 1.0, 0.9803, 0.0101, 0.01, 0.01]


def test_exponential_decay():
    e = ref.exponential_decay(1.0, 10, 0.5)
    assert e(0) == 1.0 and e(10) == approx(0.5) and e(15) == approx(0.5**1.5)
    assert ref.exponential_decay(1.0, 10, 0.5, staircase=True)(19) == approx(0.5)
    assert ref.exponential_decay(1.0, 10, 0.5, transition_begin=5)(3) == 1.0
    assert ref.exponential_decay(1.0, 10, 0.5, transition_begin=5)(25) == approx(0.25)
    assert ref.exponential_decay(1.0, 10, 0.5, end_value=0.3)(20) == approx(0.3)
    assert ref.exponential_decay(1.0, 10, 2.0, end_value=3.0)(20) == approx(3.0)
    assert ref.exponential_decay(1.0, 10, 2.0, end_value=3.0)(10) == approx(2.0)


def test_cosine_decay():
    c = ref.cosine_decay_schedule(2.0, 10)
    assert c(0) == 2.0 and c(5) == approx(1.0) and c(10) == approx(0.0, abs=1e-15) and c(20) == c(10)
    assert ref.cosine_decay_schedule(2.0, 10, alpha=0.1)(10) == approx(0.2)
    assert ref.cosine_decay_schedule(2.0, 10, exponent=2.0)(5) == approx(0.5)


def test_piecewise_constant_resnet_warmup():
    s = ref.piecewise_constant_schedule(0.01, {5: 10.0})
    assert [s(c) for c in (0, 4)] == [0.01, 0.01]
    assert s(5) == approx(0.1) and s(1000) == approx(0.1)
    r = ref.piecewise_constant_schedule(0.01, {400: 10.0, 32000: 0.1, 48000: 0.1})
    assert r(399) == 0.01 and r(400) == approx(0.1) and r(32000) == approx(0.01) and r(48000) == approx(1e-3)
    s = ref.piecewise_constant_schedule(1.0, {200: 0.01, 100: 0.1})
    assert (s(50), s(100), s(150), s(250)) == approx((1.0, 0.1, 0.1, 0.001))
    assert ref.piecewise_constant_schedule(0.5)(10) == 0.5


def test_piecewise_interpolate():
    lin = ref.piecewise_interpolate_schedule("linear", 1.0, {4: 0.1, 8: 0.01})
    assert [lin(c) for c in (0, 2, 4, 6, 8, 10)] == approx([1.0, 0.55, 0.1, 0.0505, 0.001, 0.001])
    cos = ref.piecewise_interpolate_schedule("cosine", 1.0, {4: 0.1, 8: 0.01})
    assert cos(2) == approx(0.55) and cos(4) == approx(0.1)
    assert cos(1) == approx(1.0 - 0.9 * (1 - math.cos(math.pi / 4)) / 2)
    assert ref.piecewise_interpolate_schedule("linear", 2.0)(7) == 2.0
    with pytest.raises(ValueError):
        ref.piecewise_interpolate_schedule("quadratic", 1.0)


def test_warmup_schedules():
    w = ref.warmup_constant_schedule(0.0, 1.0, 4)
    assert [w(c) for c in (0, 1, 2, 4, 100)] == approx([0.0, 0.25, 0.5, 1.0, 1.0])
    assert ref.warmup_constant_schedule(0.0, 1.0, 0)(0) == 1.0
    wc = ref.warmup_cosine_decay_schedule(0.0, 1.0, 10, 110, end_value=0.1)
    assert [wc(c) for c in (0, 5, 10, 60, 110, 200)] == approx([0.0, 0.5, 1.0, 0.55, 0.1, 0.1])
    assert ref.warmup_cosine_decay_schedule(0.0, 1.0, 10, 110, exponent=2.0)(60) == approx(0.25)
    assert ref.warmup_cosine_decay_schedule(0.5, 1.0, 0, 100)(0) == 1.0
    we = ref.warmup_exponential_decay_schedule(0.0, 1.0, 10, 10, 0.5)
    assert [we(c) for c in (5, 10, 20, 30)] == approx([0.5, 1.0, 0.5, 0.25])
    we = ref.warmup_exponential_decay_schedule(
        0.0, 1.0, 10, 10, 0.5, transition_begin=5, staircase=True, end_value=0.3
    )
    assert [we(c) for c in (14, 25, 34, 100)] == approx([1.0, 0.5, 0.5, 0.3])


def test_join_schedules():
    j = ref.join_schedules(
        [ref.constant_schedule(1.0), ref.constant_schedule(2.0), ref.linear_schedule(2.0, 0.0, 10)], [5, 10]
    )
    assert [j(c) for c in (0, 4, 5, 9, 10, 15, 25)] == approx([1.0, 1.0, 2.0, 2.0, 2.0, 1.0, 0.0])


def test_transformer_warmup():
    d, w = 512, 4000
    t = ref.transformer_warmup_schedule(d, w)
    assert t(0) == approx(d**-0.5 * w**-1.5)  # s = 1
    assert t(w - 1) == approx(d**-0.5 * w**-0.5)  # s = w: the peak
    assert t(4 * w - 1) == approx(0.5 * d**-0.5 * w**-0.5)  # s = 4w: half the peak
    values = [t(c) for c in range(3 * w)]
    assert int(np.argmax(values)) == w - 1
    assert t(99) == approx(100 * t(0))  # linear warm-up in s


@pytest.mark.parametrize(
    "decay_type,mid", [("linear", 0.55), ("cosine", 0.55), ("1-sqrt", 0.1 + 0.9 * (1 - math.sqrt(0.5)))]
)
def test_warmup_stable_decay(decay_type, mid):
    s = ref.warmup_stable_decay_schedule(
        1.0, 10, 20, 10, init_value=0.0, end_value=0.1, decay_type=decay_type
    )
    assert [s(c) for c in (0, 5, 10, 29, 30)] == approx([0.0, 0.5, 1.0, 1.0, 1.0])
    assert s(35) == approx(mid) and s(40) == approx(0.1) and s(1000) == approx(0.1)
    assert s(31) < 1.0
    assert ref.warmup_stable_decay_schedule(2.0, 0, 0, 4)(0) == 2.0
    q = ref.warmup_stable_decay_schedule(1.0, 0, 0, 4, decay_type="1-sqrt")
    assert q(1) == approx(0.5)
    with pytest.raises(ValueError):
        ref.warmup_stable_decay_schedule(1.0, 1, 1, 1, decay_type="exp")


# ------------------------------------------------------------------------------------------------
# Cross-checks against Optax 0.2.x in float64
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def x64():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _optax_run(tx, grads, params=None, split=None):
    """Runs an optax transformation on float64 vectors; ``split`` maps a flat vector to a pytree."""
    split = split or (lambda v: v)
    steps, n = grads.shape
    params = np.zeros((steps, n)) if params is None else np.broadcast_to(params, (steps, n))
    state = tx.init(split(jnp.asarray(params[0])))
    update = jax.jit(tx.update)
    out = []
    for t in range(steps):
        u, state = update(split(jnp.asarray(grads[t])), state, split(jnp.asarray(params[t])))
        leaves = jax.tree.leaves(u)
        assert all(leaf.dtype == jnp.float64 for leaf in leaves)
        out.append(np.concatenate([np.ravel(np.asarray(leaf)) for leaf in leaves]))
    return np.stack(out)


def _as_int64(schedule):
    return lambda count: schedule(jnp.asarray(count, jnp.int64))


def _split(v):
    return (v[:3], v[3:])


MASK_TREE, MASK_FLAT = (True, False), np.array([True] * 3 + [False] * (N - 3))


def _optimizer_cases():
    lr_ref = ref.warmup_cosine_decay_schedule(0.0, 1e-2, 30, 240, end_value=1e-4)

    # Optax keeps its count in int32, which makes its schedules compute in float32: cast to int64 first.
    def lr_opt():
        return _as_int64(optax.warmup_cosine_decay_schedule(0.0, 1e-2, 30, 240, end_value=1e-4))

    return {
        "adam": (lambda: ref.adam(1e-3), lambda: optax.adam(1e-3)),
        "adam_sched_eps_root": (
            lambda: ref.adam(lr_ref, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-9),
            lambda: optax.adam(lr_opt(), b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-9),
        ),
        "adam_nesterov": (lambda: ref.adam(1e-3, nesterov=True), lambda: optax.adam(1e-3, nesterov=True)),
        "nadam": (lambda: ref.nadam(lr_ref), lambda: optax.nadam(lr_opt())),
        "adamw": (lambda: ref.adamw(1e-3, weight_decay=0.1), lambda: optax.adamw(1e-3, weight_decay=0.1)),
        "adamw_mask": (
            lambda: ref.adamw(lr_ref, weight_decay=0.3, mask=MASK_FLAT),
            lambda: optax.adamw(lr_opt(), weight_decay=0.3, mask=MASK_TREE),
        ),
        "nadamw_mask": (
            lambda: ref.nadamw(1e-3, weight_decay=0.3, mask=MASK_FLAT),
            lambda: optax.nadamw(1e-3, weight_decay=0.3, mask=MASK_TREE),
        ),
        "rmsprop": (lambda: ref.rmsprop(1e-3), lambda: optax.rmsprop(1e-3)),
        "rmsprop_centered": (
            lambda: ref.rmsprop(1e-3, centered=True),
            lambda: optax.rmsprop(1e-3, centered=True),
        ),
        "rmsprop_momentum": (
            lambda: ref.rmsprop(1e-3, decay=0.95, momentum=0.9, initial_scale=0.1),
            lambda: optax.rmsprop(1e-3, decay=0.95, momentum=0.9, initial_scale=0.1),
        ),
        "rmsprop_centered_nesterov": (
            lambda: ref.rmsprop(lr_ref, centered=True, momentum=0.9, nesterov=True, initial_scale=1.0),
            lambda: optax.rmsprop(lr_opt(), centered=True, momentum=0.9, nesterov=True, initial_scale=1.0),
        ),
        "rmsprop_torch_bc": (
            lambda: ref.rmsprop(1e-3, eps_in_sqrt=False, bias_correction=True, momentum=0.5),
            lambda: optax.rmsprop(1e-3, eps_in_sqrt=False, bias_correction=True, momentum=0.5),
        ),
        "rmsprop_centered_bc": (
            lambda: ref.rmsprop(
                1e-3, centered=True, eps_in_sqrt=False, bias_correction=True, initial_scale=1.0
            ),
            lambda: optax.rmsprop(
                1e-3, centered=True, eps_in_sqrt=False, bias_correction=True, initial_scale=1.0
            ),
        ),
        "adagrad": (lambda: ref.adagrad(0.1), lambda: optax.adagrad(0.1)),
        "adagrad_zero_init": (
            lambda: ref.adagrad(lr_ref, 0.0, 1e-10),
            lambda: optax.adagrad(lr_opt(), 0.0, 1e-10),
        ),
        "sgd": (lambda: ref.sgd(0.1), lambda: optax.sgd(0.1)),
        "sgd_momentum": (lambda: ref.sgd(lr_ref, momentum=0.9), lambda: optax.sgd(lr_opt(), momentum=0.9)),
        "sgd_nesterov": (
            lambda: ref.sgd(0.1, momentum=0.9, nesterov=True),
            lambda: optax.sgd(0.1, momentum=0.9, nesterov=True),
        ),
    }


@needs_optax
@pytest.mark.parametrize("name", sorted(_optimizer_cases()) if optax is not None else [])
def test_optimizers_match_optax_float64(name, x64):
    make_ref, make_opt = _optimizer_cases()[name]
    g, p = _grads(20), _params(21)
    g[5, 2] = 0.0  # an exact zero gradient entry
    close(ref.run(make_ref(), g, p), _optax_run(make_opt(), g, p, _split), rtol=1e-10, atol=1e-16)


def _block_cases():
    def sched():
        return ref.cosine_decay_schedule(2.0, 100, alpha=0.1)

    def osched():
        return _as_int64(optax.cosine_decay_schedule(2.0, 100, alpha=0.1))

    return {
        "scale": (lambda: ref.scale(-0.3), lambda: optax.scale(-0.3)),
        "scale_by_learning_rate": (
            lambda: ref.scale_by_learning_rate(sched()),
            lambda: optax.scale_by_learning_rate(osched()),
        ),
        "scale_by_learning_rate_noflip": (
            lambda: ref.scale_by_learning_rate(0.2, flip_sign=False),
            lambda: optax.scale_by_learning_rate(0.2, flip_sign=False),
        ),
        "scale_by_schedule": (
            lambda: ref.scale_by_schedule(sched()),
            lambda: optax.scale_by_schedule(osched()),
        ),
        "trace": (lambda: ref.trace(0.9), lambda: optax.trace(0.9)),
        "trace_nesterov": (lambda: ref.trace(0.8, nesterov=True), lambda: optax.trace(0.8, nesterov=True)),
        "ema": (lambda: ref.ema(0.95), lambda: optax.ema(0.95)),
        "ema_raw": (lambda: ref.ema(0.95, debias=False), lambda: optax.ema(0.95, debias=False)),
        "scale_by_rms": (
            lambda: ref.scale_by_rms(0.99, 1e-6, 0.5),
            lambda: optax.scale_by_rms(0.99, 1e-6, 0.5),
        ),
        "scale_by_rms_bc": (
            lambda: ref.scale_by_rms(0.99, 1e-6, eps_in_sqrt=False, bias_correction=True),
            lambda: optax.scale_by_rms(0.99, 1e-6, eps_in_sqrt=False, bias_correction=True),
        ),
        "scale_by_rss": (lambda: ref.scale_by_rss(), lambda: optax.scale_by_rss()),
        "scale_by_stddev": (
            lambda: ref.scale_by_stddev(0.9, 1e-6, 1.0),
            lambda: optax.scale_by_stddev(0.9, 1e-6, 1.0),
        ),
        "scale_by_stddev_bc": (
            lambda: ref.scale_by_stddev(0.9, 1e-8, 2.0, False, True),
            lambda: optax.scale_by_stddev(0.9, 1e-8, 2.0, False, True),
        ),
        "scale_by_adam": (
            lambda: ref.scale_by_adam(0.8, 0.99, 1e-6, 1e-9),
            lambda: optax.scale_by_adam(0.8, 0.99, 1e-6, 1e-9),
        ),
        "scale_by_adam_nesterov": (
            lambda: ref.scale_by_adam(nesterov=True),
            lambda: optax.scale_by_adam(nesterov=True),
        ),
        "scale_by_sign": (lambda: ref.scale_by_sign(), lambda: optax.scale_by_sign()),
        "clip": (lambda: ref.clip(0.7), lambda: optax.clip(0.7)),
        "clip_by_global_norm": (lambda: ref.clip_by_global_norm(5.0), lambda: optax.clip_by_global_norm(5.0)),
        "add_decayed_weights": (
            lambda: ref.add_decayed_weights(0.3, MASK_FLAT),
            lambda: optax.add_decayed_weights(0.3, MASK_TREE),
        ),
        "identity": (lambda: ref.identity(), lambda: optax.identity()),
        "set_to_zero": (lambda: ref.set_to_zero(), lambda: optax.set_to_zero()),
    }


@needs_optax
@pytest.mark.parametrize("name", sorted(_block_cases()) if optax is not None else [])
def test_blocks_match_optax_float64(name, x64):
    make_ref, make_opt = _block_cases()[name]
    g, p = _grads(30), _params(31)
    g[7, 1] = 0.0
    close(ref.run(make_ref(), g, p), _optax_run(make_opt(), g, p, _split), rtol=1e-10, atol=1e-16)


def _schedule_cases():
    return {
        "constant": ((0.3,), "constant_schedule"),
        "linear": ((1.0, 0.1, 50, 7), "linear_schedule"),
        "polynomial": ((1.0, 0.01, 2.0, 100, 5), "polynomial_schedule"),
        "polynomial_frac_power": ((0.5, 0.0, 0.5, 40), "polynomial_schedule"),
        "exponential": ((1.0, 10, 0.7), "exponential_decay"),
        "exponential_staircase_end": ((1.0, 7, 0.5, 3, True, 0.05), "exponential_decay"),
        "exponential_growth_end": ((0.1, 10, 1.5, 0, False, 2.0), "exponential_decay"),
        "cosine": ((2.0, 80), "cosine_decay_schedule"),
        "cosine_alpha_exponent": ((2.0, 80, 0.1, 2.0), "cosine_decay_schedule"),
        "piecewise_constant": ((0.01, {10: 10.0, 100: 0.1, 150: 0.1}), "piecewise_constant_schedule"),
        "piecewise_linear": (
            ("linear", 1.0, {10: 0.1, 30: 5.0, 100: 0.01}),
            "piecewise_interpolate_schedule",
        ),
        "piecewise_cosine": (("cosine", 1.0, {0: 2.0, 10: 0.1, 31: 5.0}), "piecewise_interpolate_schedule"),
        "warmup_constant": ((0.1, 1.0, 25), "warmup_constant_schedule"),
        "warmup_cosine": ((0.0, 1.0, 20, 150, 0.05, 1.5), "warmup_cosine_decay_schedule"),
        "warmup_cosine_no_warmup": ((0.0, 1.0, 0, 150), "warmup_cosine_decay_schedule"),
        "warmup_exponential": ((0.0, 1.0, 20, 15, 0.8, 5, True, 0.2), "warmup_exponential_decay_schedule"),
    }


@needs_optax
@pytest.mark.parametrize("name", sorted(_schedule_cases()) if optax is not None else [])
def test_schedules_match_optax_float64(name, x64):
    args, fn = _schedule_cases()[name]
    counts = np.arange(300)
    # Not jitted: under jit XLA's pow(0, 0.5) is NaN at the end of a fractional-power polynomial.
    want = np.asarray(jax.vmap(getattr(optax, fn)(*args))(jnp.asarray(counts)))
    assert want.dtype == np.float64
    got = np.array([getattr(ref, fn)(*args)(int(c)) for c in counts])
    close(got, want, rtol=1e-12, atol=1e-16)


@needs_optax
def test_join_schedules_matches_optax_float64(x64):
    def parts(m):
        return [m.linear_schedule(0.0, 1.0, 10), m.constant_schedule(1.0), m.cosine_decay_schedule(1.0, 50)]

    counts = np.arange(120)
    want = np.asarray(jax.jit(jax.vmap(optax.join_schedules(parts(optax), [10, 40])))(jnp.asarray(counts)))
    got = np.array([ref.join_schedules(parts(ref), [10, 40])(int(c)) for c in counts])
    close(got, want, rtol=1e-12, atol=1e-16)
