"""gradtx.contrib's Adam-like optimizers: closed forms, special cases and convergence on the problem zoo.

The registry tiers (tests/registry_contrib_adam.py) compare each with its float64 reference for 200 steps, with
Optax where Optax has it, and run the contract, flat, fuzz and sharding tiers; here: what a formula says exactly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.contrib import _adam_like as c
from gradtx.testing import problems


def _steps(tx, grads, params=None):
    """Updates of ``tx`` for a list of gradients (params fixed), as float64 arrays."""
    p = grads[0] * 0 if params is None else params
    state, out = tx.init(p), []
    for g in grads:
        u, state = tx.update(g, state, p)
        out.append(jax.tree.map(lambda x: np.asarray(x, np.float64), u))
    return out, state


G = jnp.asarray([0.5, -2.0, 3.0, -0.01], jnp.float64)


def test_adopt_constant_gradient_closed_form():
    """v_0 = g^2, so d = g / |g| = sign(g) at every later step (c(t) = t^0.25 >= 1 never clips it):
    the first update is 0, then m_k = (1 - b1^(k-1)) sign(g); nesterov: b1 m_k + (1 - b1) sign(g)."""
    b1 = 0.8
    outs, state = _steps(c.scale_by_adopt(b1, 0.99), [G] * 8)
    np.testing.assert_array_equal(outs[0], 0.0)
    for k, u in enumerate(outs[1:], start=2):
        np.testing.assert_allclose(u, (1 - b1 ** (k - 1)) * np.sign(G), rtol=1e-12)
    np.testing.assert_allclose(state.nu, np.asarray(G) ** 2, rtol=1e-12)
    nest, _ = _steps(c.scale_by_adopt(b1, 0.99, nesterov=True), [G] * 4)
    for k, u in enumerate(nest[1:], start=2):
        np.testing.assert_allclose(u, (b1 * (1 - b1 ** (k - 1)) + 1 - b1) * np.sign(G), rtol=1e-12)


def test_adopt_clipping_bound_is_applied():
    """After a tiny first gradient, d = g / max(|g_0|, eps) is huge and is clipped to +-t^0.25 (t = 1, 2)."""
    g0, g = jnp.full((3,), 1e-3), jnp.asarray([5.0, -5.0, 0.0])
    outs, _ = _steps(c.scale_by_adopt(0.0, 0.5), [g0, g, g])  # b1 = 0: u = d
    np.testing.assert_allclose(outs[1], [1.0, -1.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(outs[2], [2**0.25, -(2**0.25), 0.0], rtol=1e-7)
    free, _ = _steps(c.scale_by_adopt(0.0, 0.5, use_clipping=False), [g0, g])
    np.testing.assert_allclose(free[1], np.asarray(g) / 1e-3, rtol=1e-12)


def test_ademamix_constant_gradient_and_alpha_zero_is_adam():
    """Constant g: m1_hat = g, nu_hat = g^2, m2_k = (1 - b3^k) g, so u = (1 + alpha (1 - b3^k)) g / (|g| + eps);
    alpha = 0 is Adam exactly."""
    b3, alpha, eps = 0.9, 2.0, 1e-8
    outs, _ = _steps(c.scale_by_ademamix(0.8, 0.99, b3, alpha, eps), [G] * 6)
    for k, u in enumerate(outs, start=1):
        want = (1 + alpha * (1 - b3**k)) * np.asarray(G) / (np.abs(np.asarray(G)) + eps)
        np.testing.assert_allclose(u, want, rtol=1e-12)
    rng = np.random.default_rng(0)
    grads = [jnp.asarray(rng.normal(size=4)) for _ in range(5)]
    mix, _ = _steps(c.scale_by_ademamix(0.9, 0.999, 0.999, 0.0), grads)
    adam, _ = _steps(gradtx.scale_by_adam(0.9, 0.999), grads)
    np.testing.assert_allclose(np.stack(mix), np.stack(adam), rtol=1e-12)


def test_simplified_ademamix_constant_gradient_closed_form():
    """m_k = (1 - b1^k) / (1 - b1) g (undamped), n_hat = g^2: u = ((1 - b1^k) / (1 - b1) + alpha) sign(g)."""
    b1, alpha = 0.9, 3.0
    outs, _ = _steps(c.scale_by_simplified_ademamix(b1, 0.95, alpha, eps=0.0), [G] * 5)
    for k, u in enumerate(outs, start=1):
        np.testing.assert_allclose(u, ((1 - b1**k) / (1 - b1) + alpha) * np.sign(G), rtol=1e-12)


def test_madgrad_first_steps_closed_form_and_needs_params():
    """Step 1 from x0 with momentum 0: lambda = lr + eps, x_1 = x0 - lambda g / (cbrt(lambda g^2) + eps).
    Step 2 (momentum m, gradient h): z = x0 - (l1 g + l2 h) / (cbrt(l1 g^2 + l2 h^2) + eps), u = (1 - m)(z - x_1)."""
    lr, eps, mom = 0.1, 1e-6, 0.7
    x0 = jnp.asarray([1.0, -1.0, 2.0, 0.0])
    h = jnp.asarray([0.3, 0.2, -1.0, 4.0])
    tx = c.scale_by_madgrad(lr, 0.0, eps)
    u1, state = tx.update(G, tx.init(x0), x0)
    lam = lr + eps
    g, hn, x0n = np.asarray(G), np.asarray(h), np.asarray(x0)
    np.testing.assert_allclose(u1, -lam * g / (np.cbrt(lam * g**2) + eps), rtol=1e-12)
    tx = c.scale_by_madgrad(lr, mom, eps)
    state = tx.init(x0)
    u1, state = tx.update(G, state, x0)
    x1 = x0 + u1
    u2, _ = tx.update(h, state, x1)
    l1, l2 = lam, lam * np.sqrt(2)
    z = x0n - (l1 * g + l2 * hn) / (np.cbrt(l1 * g**2 + l2 * hn**2) + eps)
    np.testing.assert_allclose(u2, (1 - mom) * (z - np.asarray(x1)), rtol=1e-10, atol=1e-14)
    with pytest.raises(ValueError, match=r"scale_by_madgrad\.update: params are required"):
        tx.update(G, state)


def test_acprop_is_asynchronous():
    """Step 1 divides by 1 + eps; step 2 by sqrt(s_1 / (1 - b2)) + eps with s_1 = (1 - b2) g^2 + eps_root (the
    prediction error against m_0 = 0), whatever the second gradient is."""
    b2, eps, eps_root = 0.99, 1e-8, 1e-10
    h = jnp.asarray([7.0, 1.0, -1.0, 2.0])
    outs, _ = _steps(c.scale_by_acprop(0.9, b2, eps, eps_root), [G, h])
    np.testing.assert_allclose(outs[0], np.asarray(G) / (1 + eps), rtol=1e-12)
    s1 = (1 - b2) * np.asarray(G) ** 2 + eps_root
    np.testing.assert_allclose(outs[1], np.asarray(h) / (np.sqrt(s1 / (1 - b2)) + eps), rtol=1e-12)


def test_cautious_masks_and_rescales_per_leaf():
    """u' = u 1[u g < 0] n / (kept + 1) per leaf: a descent update is kept (scaled by n / (n + 1)), an ascent
    update is zeroed, a mixed one keeps its descent coordinates."""
    g = {"a": jnp.asarray([1.0, -2.0, 3.0]), "b": jnp.asarray([1.0, 1.0])}
    descent = c.cautious(gradtx.scale(-0.5))
    u, _ = descent.update(g, descent.init(g))
    np.testing.assert_allclose(u["a"], -0.5 * np.asarray(g["a"]) * 3 / 4, rtol=1e-12)
    np.testing.assert_allclose(u["b"], -0.5 * np.asarray(g["b"]) * 2 / 3, rtol=1e-12)
    ascent = c.cautious(gradtx.scale(2.0))
    u, _ = ascent.update(g, ascent.init(g))
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(u))
    fixed = {"a": jnp.asarray([-1.0, -1.0, -1.0]), "b": jnp.asarray([5.0, -5.0])}
    mixed = c.cautious(gradtx.stateless(lambda updates, params: fixed))
    u, _ = mixed.update(g, mixed.init(g))
    np.testing.assert_allclose(u["a"], [-1.0 * 3 / 3, 0.0, -1.0 * 3 / 3], rtol=1e-12)
    np.testing.assert_allclose(u["b"], [0.0, -5.0 * 2 / 2], rtol=1e-12)
    plain = c.cautious(gradtx.stateless(lambda updates, params: fixed), normalize=False)
    u, _ = plain.update(g, plain.init(g))
    np.testing.assert_allclose(u["a"], [-1.0, 0.0, -1.0])


def test_cautious_passes_extra_args_and_keeps_the_inner_state():
    inner = gradtx.adam(1e-2)
    tx = c.cautious(inner)
    params = {"w": jnp.ones(3)}
    assert jax.tree.structure(tx.init(params)) == jax.tree.structure(inner.init(params))
    u, _ = tx.update({"w": jnp.ones(3)}, tx.init(params), params, value=jnp.asarray(1.0))
    assert np.all(np.asarray(u["w"]) < 0)


def test_cautious_on_a_block_with_descent_false_equals_cautious_on_the_optimizer():
    """chain(cautious(scale_by_adam(), descent=False), scale_by_learning_rate(lr)) is cautious(adam(lr)) step by
    step; with the default descent=True the block's uphill direction is masked away entirely (step 1: u = g / (|g|
    + eps) agrees with g everywhere)."""
    rng = np.random.default_rng(3)
    p = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}
    block = gradtx.chain(c.cautious(gradtx.scale_by_adam(), descent=False), gradtx.scale_by_learning_rate(0.1))
    whole = c.cautious(gradtx.adam(0.1))
    s1, s2 = block.init(p), whole.init(p)
    for _ in range(6):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape)), p)
        u1, s1 = block.update(g, s1)
        u2, s2 = whole.update(g, s2)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    uphill = c.cautious(gradtx.scale_by_adam())
    u, _ = uphill.update(g, uphill.init(p))
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(u))


def _leaves(rng, shapes):
    return {k: jnp.asarray(rng.normal(size=shape)) for k, shape in shapes.items()}


@pytest.mark.parametrize("rescale,commit", [("mean_clamp", "ccadd18"), ("numel_over_sum", "3106e07")])
def test_cautious_adamw_reproduces_the_authors_c_adamw(rescale, commit):
    """cautious_adamw(rescale=...) against the float64 transcription of the authors' c_adamw.py
    (kyleliang919/C-Optim at ``commit``): 25 float64 steps, the first included, parameters evolving, leaves of
    1, 3, 4x5 and 64 coordinates, weight decay on. With eps = 0 the two agree to rounding (1e-12); with eps =
    1e-8 they differ only by the authors' eps placement (their eps is eps / sqrt(1 - b2^k) here): relative
    differences up to eps / sqrt(v_hat (1 - b2^k)), below 1e-4 on this stream."""
    from gradtx.testing.reference import contrib_adam as ref

    shapes = {"a": (1,), "b": (3,), "w": (4, 5), "z": (64,)}
    for eps, rtol in ((0.0, 1e-12), (1e-8, 1e-4)):
        rng = np.random.default_rng(11)
        p = _leaves(rng, shapes)
        ours = c.cautious_adamw(1e-2, 0.8, 0.99, eps, weight_decay=0.1, rescale=rescale)
        theirs = ref.cautious_adamw_authors(1e-2, (0.8, 0.99), eps, weight_decay=0.1, rescale=rescale)
        state = ours.init(p)
        for k in range(25):
            g = _leaves(rng, shapes)
            u, state = ours.update(g, state, p)
            want = theirs.step({key: np.asarray(v) for key, v in g.items()},
                               {key: np.asarray(v) for key, v in p.items()})
            for key in shapes:
                np.testing.assert_allclose(np.asarray(u[key]), want[key], rtol=rtol, atol=1e-15,
                                           err_msg=f"{rescale} eps={eps} step {k + 1} leaf {key}")
            p = gradtx.apply_updates(p, u)


def test_cautious_rescalings_differ_as_documented_and_the_default_is_unchanged():
    """The default is still n / (sum(phi) + 1) (cautious and cautious_adamw, equal to the float64 reference with
    its default); "mean_clamp" is 1 / max(mean(phi), 1e-3): an all-agreeing leaf keeps its update exactly, and
    with 1 of 4000 coordinates kept the boost is capped at 1000 (numel_over_sum gives 4000 / 2 = 2000);
    normalize=False ignores rescale; a bad rescale names the call."""
    from gradtx.testing.reference import contrib_adam as ref

    g = {"a": jnp.asarray([1.0, -2.0, 3.0]), "big": jnp.ones(4000)}
    fixed = {"a": jnp.asarray([-1.0, -1.0, -1.0]), "big": jnp.zeros(4000).at[7].set(-1.0)}
    inner = gradtx.stateless(lambda updates, params: fixed)
    assert c.cautious(inner).rescale == "numel_over_sum" and "rescale='numel_over_sum'" in repr(c.cautious(inner))
    default, _ = c.cautious(inner).update(g, None)
    old, _ = c.cautious(inner, rescale="numel_over_sum").update(g, None)
    new, _ = c.cautious(inner, rescale="mean_clamp").update(g, None)
    plain, _ = c.cautious(inner, rescale="mean_clamp", normalize=False).update(g, None)
    for key in g:
        np.testing.assert_array_equal(default[key], old[key])
    np.testing.assert_allclose(old["a"], [-1.0 * 3 / 3, 0.0, -1.0 * 3 / 3], rtol=1e-12)
    np.testing.assert_allclose(new["a"], [-1.0 * 3 / 2, 0.0, -1.0 * 3 / 2], rtol=1e-12)
    assert float(old["big"][7]) == -2000.0 and float(new["big"][7]) == pytest.approx(-1000.0, rel=1e-12)
    np.testing.assert_array_equal(plain["a"], [-1.0, 0.0, -1.0])
    agree = {"a": jnp.asarray([1.0, 2.0])}
    u, _ = c.cautious(gradtx.scale(-0.5), rescale="mean_clamp").update(agree, None)
    np.testing.assert_array_equal(u["a"], [-0.5, -1.0])
    rng = np.random.default_rng(5)
    p = _leaves(rng, {"w": (3, 4), "b": (2,)})
    ours, explicit = c.cautious_adamw(1e-2, weight_decay=0.1), c.cautious_adamw(1e-2, weight_decay=0.1,
                                                                                 rescale="numel_over_sum")
    oracle = ref.cautious_adamw(1e-2, weight_decay=0.1)
    s1, s2 = ours.init(p), explicit.init(p)
    for k in range(10):
        gk = _leaves(rng, {"w": (3, 4), "b": (2,)})
        u1, s1 = ours.update(gk, s1, p)
        u2, s2 = explicit.update(gk, s2, p)
        want = oracle.step({key: np.asarray(v) for key, v in gk.items()},
                           {key: np.asarray(v) for key, v in p.items()})
        for key in p:
            np.testing.assert_array_equal(u1[key], u2[key])
            np.testing.assert_allclose(u1[key], want[key], rtol=1e-12, err_msg=f"step {k + 1}")
    with pytest.raises(ValueError, match=r"cautious\(rescale='mean'\): rescale must be one of 'numel_over_sum', "
                                         r"'mean_clamp'"):
        c.cautious(gradtx.sgd(0.1), rescale="mean")
    with pytest.raises(ValueError, match=r"cautious_adamw\(rescale='mean'\): rescale must be one of"):
        c.cautious_adamw(1e-3, rescale="mean")


def test_cautious_adamw_decays_every_coordinate_unlike_cautious_of_adamw():
    """One step from theta = (1, 1), g = (0.1, -0.1), lr = 1, wd = 10 (closed forms; Adam's first direction is
    g / (|g| + eps) ~ sign g). cautious(adamw): u = -(sign g + 10 theta) = (-11, -9); the second coordinate agrees
    with g, so it is masked: (-11 * 2 / 2, 0). C-AdamW masks the Adam step only (both kept, scale 2 / 3) and
    decays both: -(sign g * 2 / 3 + 10)."""
    theta = jnp.asarray([1.0, 1.0])
    g = jnp.asarray([0.1, -0.1])
    a = np.asarray(g) / (np.abs(np.asarray(g)) + 1e-8)
    masked_decay = c.cautious(gradtx.adamw(1.0, weight_decay=10.0))
    u, _ = masked_decay.update(g, masked_decay.init(theta), theta)
    np.testing.assert_allclose(u, [-(a[0] + 10.0), 0.0], rtol=1e-12)
    c_adamw = c.cautious_adamw(1.0, weight_decay=10.0)
    u, _ = c_adamw.update(g, c_adamw.init(theta), theta)
    np.testing.assert_allclose(u, -(a * 2 / 3 + 10.0), rtol=1e-12)


def test_adabound_turns_into_sgd_with_momentum():
    """With a large gamma both bounds are final_lr within 1 / (gamma k): u = -final_lr m_k, m_k = (1 - b1^k) g;
    with gamma small the bounds are wide and the first step is Adam's, -lr g / (|g| + eps / sqrt(1 - b2)) (the
    authors' code adds eps to sqrt(v_k) before the bias correction)."""
    b1, final = 0.9, 0.05
    outs, _ = _steps(c.scale_by_adabound(1e-3, b1, 0.999, final, gamma=1e9), [G] * 5)
    for k, u in enumerate(outs, start=1):
        np.testing.assert_allclose(u, -final * (1 - b1**k) * np.asarray(G), rtol=1e-8)
    outs, _ = _steps(c.scale_by_adabound(1e-3, b1, 0.999, final, gamma=1e-6), [G])
    want = -1e-3 * np.asarray(G) / (np.abs(np.asarray(G)) + 1e-8 / np.sqrt(1 - 0.999))
    np.testing.assert_allclose(outs[0], want, rtol=1e-7)


def test_amsbound_keeps_the_running_maximum():
    big, small = jnp.full((2,), 10.0), jnp.full((2,), 0.1)
    _, state = _steps(c.scale_by_adabound(amsbound=True), [big, small, small])
    assert isinstance(state, c.ScaleByAmsBoundState)
    # v_1 = (1 - b2) 100 = 0.1 is the largest: v_2 = b2 v_1 + (1 - b2) 0.01 < v_1, v_3 < v_2.
    np.testing.assert_allclose(state.nu_max, 0.001 * 100, rtol=1e-12)
    v3 = 0.999 * (0.999 * 0.1 + 1e-5) + 1e-5
    np.testing.assert_allclose(state.nu, v3, rtol=1e-12)


def test_mars_correction_and_clip():
    """c_1 = g (1 + gamma b1 / (1 - b1)) (g_0 = 0), c_2 = h + gamma b1/(1-b1) (h - g); each leaf's c is scaled
    to norm max_norm when longer. gamma = 0, no clipping: mars_adamw is adamw."""
    b1, gamma = 0.9, 0.1
    f = gamma * b1 / (1 - b1)
    g, h = jnp.asarray([0.1, -0.2]), jnp.asarray([0.05, 0.3])
    outs, _ = _steps(c.scale_by_mars(b1, gamma, None), [g, h])
    np.testing.assert_allclose(outs[0], (1 + f) * np.asarray(g), rtol=1e-12)
    np.testing.assert_allclose(outs[1], np.asarray(h) + f * (np.asarray(h) - np.asarray(g)), rtol=1e-12)
    clipped, _ = _steps(c.scale_by_mars(b1, gamma, 0.1), [g])
    np.testing.assert_allclose(np.linalg.norm(clipped[0]), 0.1, rtol=1e-12)
    np.testing.assert_allclose(clipped[0] / np.linalg.norm(clipped[0]), np.asarray(g) / np.linalg.norm(g), rtol=1e-12)
    rng = np.random.default_rng(1)
    grads = [jnp.asarray(rng.normal(size=4)) for _ in range(5)]
    p = jnp.asarray(rng.normal(size=4))
    mars, _ = _steps(c.mars_adamw(1e-2, gamma=0.0, weight_decay=0.1, max_norm=None), grads, p)
    adamw, _ = _steps(gradtx.adamw(1e-2, 0.95, 0.99, weight_decay=0.1), grads, p)
    np.testing.assert_allclose(np.stack(mars), np.stack(adamw), rtol=1e-12)


def test_adam_mini_blocks():
    """One nu per row of a matrix by default (shape (rows, 1)), one per leaf for vectors or blocks='leaf';
    singleton blocks (average over no axis) are Adam; a constant row gives Adam's update on it."""
    params = {"w": jnp.ones((3, 4)), "b": jnp.ones(4)}
    st = c.scale_by_adam_mini().init(params)
    assert st.nu["w"].shape == (3, 1) and st.nu["b"].shape == (1,)
    assert c.scale_by_adam_mini(blocks="leaf").init(params).nu["w"].shape == (1, 1)
    assert c.scale_by_adam_mini(blocks=lambda p: (0,)).init(params).nu["w"].shape == (1, 4)
    # The docstring's per-head partition of a (d, heads, head_dim) weight: one block per head, its mean of g^2
    # over d * head_dim entries.
    qk = jnp.asarray(np.random.default_rng(0).normal(size=(4, 2, 3)))
    heads = c.scale_by_adam_mini(b2=0.5, blocks=lambda p: (0, 2))
    _, st = heads.update(qk, heads.init(qk))
    assert st.nu.shape == (1, 2, 1)
    np.testing.assert_allclose(st.nu[0, :, 0], 0.5 * np.mean(np.asarray(qk) ** 2, axis=(0, 2)), rtol=1e-12)
    rng = np.random.default_rng(2)
    grads = [jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape)), params) for _ in range(4)]
    mini, _ = _steps(c.scale_by_adam_mini(blocks=lambda p: ()), grads, params)
    adam, _ = _steps(gradtx.scale_by_adam(), grads, params)
    for a, b in zip(mini, adam):
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-12)
    # Rows of one magnitude each: the block mean of g^2 is that magnitude squared; u = sign(g) at step 1.
    g = jnp.asarray([[1.0, -1.0], [3.0, 3.0]])
    tx = c.scale_by_adam_mini(eps=0.0)
    u, _ = tx.update(g, tx.init(g))
    np.testing.assert_allclose(u, np.sign(np.asarray(g)), rtol=1e-12)


def test_mars_keeps_its_state_dtype_and_clips_complex_leaves_by_modulus():
    """float32 parameters with bfloat16 gradients: the previous gradient is stored in float32 (the state's dtype
    does not change, so lax.scan accepts the step). A complex leaf is clipped to |c| = max_norm (the modulus,
    not sum(c * c))."""
    p = {"w": jnp.zeros((2, 3), jnp.float32)}
    tx = c.mars_adamw(1e-2)
    gs = {"w": jnp.ones((3, 2, 3), jnp.bfloat16)}

    def body(state, g):
        u, state = tx.update(g, state, p)
        return state, u

    state, us = jax.lax.scan(body, tx.init(p), gs)
    assert state[0].last_grad["w"].dtype == jnp.float32 and us["w"].dtype == jnp.bfloat16
    z = jnp.asarray([3.0 + 4.0j, 0.0], jnp.complex128)  # |z| = 5, sum(z * z) = -7 + 24i
    u, _ = c.scale_by_mars(max_norm=1.0).update(z, c.scale_by_mars(max_norm=1.0).init(z))
    ratio = 1 + 0.025 * 0.95 / 0.05  # c_1 = (1 + gamma b1 / (1 - b1)) g_1 before the clip
    assert ratio * 5 > 1
    np.testing.assert_allclose(np.asarray(u), np.asarray(z) / 5, rtol=1e-12)


@pytest.mark.parametrize(
    "name,opt",
    [
        ("adopt", lambda: c.adopt(0.02)),
        ("ademamix", lambda: c.ademamix(0.02, b3=0.999)),
        ("simplified_ademamix", lambda: c.simplified_ademamix(0.002, 0.9, 0.99, alpha=1.0)),
        ("madgrad", lambda: c.madgrad(0.05)),
        ("acprop", lambda: c.acprop(0.02)),
        ("cautious(adam)", lambda: c.cautious(gradtx.adam(0.05))),
        ("adabound", lambda: c.adabound(0.02, final_lr=0.005)),
        ("amsbound", lambda: c.amsbound(0.02, final_lr=0.005)),
        ("mars_adamw", lambda: c.mars_adamw(0.02)),
        ("adam_mini", lambda: c.adam_mini(0.02)),
    ],
)
def test_converges_on_the_narrow_valley(name, opt):
    """1,500 steps from (3, 1) reduce the narrow valley's loss (condition number 1e5) a thousandfold."""
    valley = problems.narrow_valley()
    tx = opt()
    w0 = jnp.asarray([3.0, 1.0], jnp.float64)

    def body(carry, _):
        w, s = carry
        u, s = tx.update(jax.grad(valley.loss)(w), s, w)
        return (gradtx.apply_updates(w, u), s), None

    (w, _), _ = jax.jit(lambda w: jax.lax.scan(body, (w, tx.init(w)), None, length=1500))(w0)
    assert float(valley.loss(w)) < 1e-3 * float(valley.loss(w0)), name


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: c.scale_by_adopt(b2=1.0), r"scale_by_adopt\(b2=1.0\): b2 must be in \[0, 1\)"),
        (lambda: c.scale_by_ademamix(b3=1.5), r"scale_by_ademamix\(b3=1.5\): b3 must be in \[0, 1\)"),
        (lambda: c.scale_by_madgrad(0.1, momentum=-0.1), r"scale_by_madgrad\(momentum=-0.1\): momentum must be"),
        (lambda: c.scale_by_adabound(gamma=0.0), r"scale_by_adabound\(gamma=0.0\): gamma must be > 0"),
        (lambda: c.scale_by_mars(max_norm=0.0), r"scale_by_mars\(max_norm=0.0\): max_norm must be > 0"),
        (lambda: c.scale_by_adam_mini(blocks="col"), r"scale_by_adam_mini\(blocks='col'\): blocks must be one of"),
    ],
)
def test_validation_messages(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_ademamix_b3_schedule_interpolates_the_half_life():
    """The paper's b3 warm-up read at the count (one_based=False): b3(0) = b3_start (+1e-8, the authors' guard
    inside the log), b3(count >= warmup) = b3, and in between the half-life log(0.5) / log(b3) - 1 is linear in the
    count; equal to the float64 transcription of the authors' scheduler at every count, also under jit. The
    default (one_based=True) is the same curve one count ahead: b3(count) = b3_false(count + 1) bit for bit,
    b3 from count warmup - 1 on."""
    from gradtx.testing.reference import contrib_adam as ref

    sched = c.ademamix_b3_schedule(0.9999, 100, b3_start=0.9, one_based=False)
    want = ref.ademamix_b3_schedule(0.9999, 100, 0.9, one_based=False)
    ahead = c.ademamix_b3_schedule(0.9999, 100, b3_start=0.9)
    assert ahead.one_based and "one_based=True" in repr(ahead)
    counts = np.arange(0, 130)
    got_ahead = np.asarray(jax.jit(jax.vmap(ahead))(jnp.asarray(counts)), np.float64)
    np.testing.assert_array_equal(got_ahead, np.asarray(jax.vmap(sched)(jnp.asarray(counts + 1)), np.float64))
    np.testing.assert_allclose(got_ahead, [ref.ademamix_b3_schedule(0.9999, 100, 0.9)(int(k)) for k in counts],
                               rtol=1e-12)
    assert np.all(got_ahead[99:] == 0.9999) and got_ahead[98] < 0.9999
    got = np.asarray(jax.jit(jax.vmap(sched))(jnp.asarray(counts)), np.float64)
    np.testing.assert_allclose(got, [want(int(k)) for k in counts], rtol=1e-12)
    np.testing.assert_allclose(got[0], 0.9 + 1e-8, rtol=1e-14)
    assert np.all(got[100:] == 0.9999) and np.all(np.diff(got[:101]) > 0)
    half_life = np.log(0.5) / np.log(got[:100]) - 1  # the inverse map has no guard
    np.testing.assert_allclose(np.diff(half_life), (half_life[-1] - half_life[0]) / 99, rtol=1e-7)
    with pytest.raises(ValueError, match=r"ademamix_b3_schedule\(b3=1.0\): b3 must be in \[0, 1\)"):
        c.ademamix_b3_schedule(1.0, 10)
    with pytest.raises(TypeError, match=r"ademamix_b3_schedule\(one_based=1\): one_based must be True or False"):
        c.ademamix_b3_schedule(0.999, 10, one_based=1)


def test_ademamix_with_the_count_read_warm_ups_matches_optax_and_the_reference():
    """ademamix with b3 = ademamix_b3_schedule(one_based=False) and alpha = linear_schedule(0, alpha, T) (the
    warm-ups read at the 0-based count, as the authors' Optax port does): 150 float64 steps equal the reference
    run with the NumPy schedules, and optax.contrib.ademamix given the same schedules."""
    import optax

    from gradtx.testing.reference import contrib_adam as ref

    b3 = c.ademamix_b3_schedule(0.999, 100, 0.9, one_based=False)
    alpha = gradtx.schedules.linear_schedule(0.0, 5.0, 100)
    ours = c.ademamix(1e-2, b3=b3, alpha=alpha, weight_decay=0.1)
    theirs = optax.contrib.ademamix(1e-2, b3=b3, alpha=alpha, weight_decay=0.1)
    oracle = ref.ademamix(1e-2, b3=ref.ademamix_b3_schedule(0.999, 100, 0.9, one_based=False),
                          alpha=lambda k: 5.0 * min(k, 100) / 100, weight_decay=0.1)
    rng = np.random.default_rng(4)
    p = jnp.asarray(rng.normal(size=5))
    s1, s2 = ours.init(p), theirs.init(p)
    for k in range(150):
        g = jnp.asarray(rng.normal(size=5))
        u1, s1 = ours.update(g, s1, p)
        u2, s2 = theirs.update(g, s2, p)
        want = oracle.step(np.asarray(g), np.asarray(p))
        np.testing.assert_allclose(u1, want, rtol=1e-10, err_msg=f"step {k + 1}")
        np.testing.assert_allclose(u1, u2, rtol=1e-10, err_msg=f"step {k + 1}")
        p = gradtx.apply_updates(p, u1)


@pytest.mark.parametrize("t_alpha,t_b3", [(100, 100), (30, 60), (1, 1)])
def test_ademamix_documented_recipe_reproduces_the_authors_pytorch_run(t_alpha, t_b3):
    """The recipe of the docstrings, ademamix(lr, b1, b2, b3=ademamix_b3_schedule(b3, T_b3, b1),
    alpha=linear_schedule(alpha / T_a, alpha, T_a - 1)) (alpha itself for T_a = 1), against the float64
    transcription of the authors' PyTorch AdEMAMix (apple/ml-ademamix c3d73c0, pytorch/ademamix.py, warm-ups at
    the 1-based step): 150 float64 steps, parameters evolving, weight decay on, equal to 1e-12 at every step;
    the first step uses alpha / T_a, not 0. Without warm-ups (constant b3 and alpha, gradtx's defaults otherwise)
    the two runs agree too."""
    from gradtx.testing.reference import contrib_adam as ref

    lr, b1, b2, b3, alpha, wd = 1e-2, 0.9, 0.999, 0.999, 5.0, 0.1
    alpha_s = alpha if t_alpha == 1 else gradtx.schedules.linear_schedule(alpha / t_alpha, alpha, t_alpha - 1)
    runs = [
        (c.ademamix(lr, b1, b2, b3=c.ademamix_b3_schedule(b3, t_b3, b1), alpha=alpha_s, weight_decay=wd),
         ref.ademamix_authors(lr, (b1, b2, b3), alpha, beta3_warmup=t_b3, alpha_warmup=t_alpha, weight_decay=wd)),
        (c.ademamix(lr, b1, b2, b3, alpha, weight_decay=wd),
         ref.ademamix_authors(lr, (b1, b2, b3), alpha, weight_decay=wd)),
    ]
    for ours, theirs in runs:
        rng = np.random.default_rng(7)
        p = jnp.asarray(rng.normal(size=6))
        state = ours.init(p)
        for k in range(150):
            g = jnp.asarray(rng.normal(size=6))
            u, state = ours.update(g, state, p)
            want = theirs.step(np.asarray(g), np.asarray(p))
            np.testing.assert_allclose(np.asarray(u), want, rtol=1e-12, atol=1e-16, err_msg=f"step {k + 1}")
            p = gradtx.apply_updates(p, u)
    if t_alpha > 1:  # the first step: alpha_1 = alpha / T_a (the old 0-based recipe gave alpha = 0)
        assert float(alpha_s(0)) == pytest.approx(alpha / t_alpha, rel=1e-15)
        assert ref.ademamix_authors.linear_warmup_scheduler(1, alpha, 0, t_alpha) == pytest.approx(alpha / t_alpha)


def test_ademamix_defaults_are_unchanged():
    """ademamix and scale_by_ademamix keep Optax's defaults (alpha 5.0 and 6.0, b3 0.9999, constants) and read
    schedules at the 0-based count: a schedule c -> c + 1 passed as alpha gives step 1 alpha = 1."""
    ours = c.scale_by_ademamix()
    assert (ours.b1, ours.b2, ours.b3, ours.alpha, ours.eps, ours.eps_root) == (0.9, 0.999, 0.9999, 6.0, 1e-8, 0.0)
    chain = c.ademamix(1e-3)
    assert "alpha=5.0" in repr(chain) and "b3=0.9999" in repr(chain)
    g = jnp.asarray([1.0, -2.0], jnp.float64)
    probe = c.scale_by_ademamix(0.9, 0.999, 0.5, lambda count: jnp.asarray(count, jnp.float64) + 1.0, 0.0)
    u, _ = probe.update(g, probe.init(g))
    np.testing.assert_allclose(u, (1 + 1.0 * 0.5) * np.sign(np.asarray(g)), rtol=1e-12)


def test_schedules_are_leaves_and_repr_reads_like_the_call():
    """b3/alpha schedules and hyperparameters are pytree leaves: changing lr does not change the structure."""
    a, b = c.ademamix(1e-3), c.ademamix(2e-3)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    assert "scale_by_adopt(b1=0.9, b2=0.9999, eps=1e-06" in repr(c.adopt(1e-3))
    assert "clip_value_fn=quarter_power" in repr(c.adopt(1e-3))


@pytest.mark.parametrize(
    "block,dtypes,exact_first",
    [
        (c.scale_by_adopt, {"nu_dtype": jnp.bfloat16}, False),
        (c.scale_by_ademamix, {"mu_dtype": jnp.bfloat16, "nu_dtype": jnp.bfloat16}, True),
        (c.scale_by_adam_mini, {"mu_dtype": jnp.bfloat16, "nu_dtype": jnp.bfloat16}, True),
    ],
    ids=["adopt", "ademamix", "adam_mini"],
)
def test_state_dtypes(block, dtypes, exact_first):
    """mu_dtype / nu_dtype store the moments in bfloat16; a step uses the unrounded new moments (the first update
    equals the float32 run's where it reads no stored moment) and later ones stay within bfloat16 rounding."""
    params = {"w": jnp.ones((2, 3), jnp.float32), "b": jnp.ones(3, jnp.float32)}
    rng = np.random.default_rng(3)
    grads = [jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params) for _ in range(3)]
    low, full = block(**dtypes), block()
    assert "nu_dtype=bfloat16" in repr(low)
    s_low, s_full = low.init(params), full.init(params)
    assert {str(x.dtype) for x in jax.tree.leaves(s_low.nu)} == {"bfloat16"}
    for k, g in enumerate(grads):
        u_low, s_low = low.update(g, s_low, params)
        u_full, s_full = full.update(g, s_full, params)
        rtol = 1e-6 if (k == 0 and exact_first) else 2e-2
        for a, b in zip(jax.tree.leaves(u_low), jax.tree.leaves(u_full)):
            assert a.dtype == jnp.float32
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=rtol * 1e-2)
    assert {str(x.dtype) for x in jax.tree.leaves(s_low.nu)} == {"bfloat16"}
