"""gradtx.kernels: the fused Adam(W) kernel (Pallas, checked in interpret mode on CPU) and make_step's use of it.

The kernel is checked against an independent float64 NumPy recursion of Adam(W) (Kingma & Ba 2015, Algorithm 1,
with Loshchilov & Hutter's decoupled decay), against its first-step closed form, and against the blocks'
chain (``gradtx.adam``/``adamw``) step by step: same state tree, values within a few ulps of each array's dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.flat import pack, unpack
from gradtx.kernels import adam_kernel, fused_step, why_not_fused
from gradtx.step import make_step


def ref_adamw(p: np.ndarray, grads: list[np.ndarray], lr: float, b1: float, b2: float, eps: float, wd: float,
              eps_root: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adam(W) in float64, the paper's recursion written out."""
    p = p.astype(np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for k, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        u = (m / (1 - b1 ** k)) / (np.sqrt(v / (1 - b2 ** k) + eps_root) + eps) + wd * p
        p = p - lr * u
    return p, m, v


@pytest.mark.parametrize("block_size", [8, 1024])  # edge blocks; one block larger than the array (power of two)
@pytest.mark.parametrize("n", [1, 7, 37, 64])
@pytest.mark.parametrize("how", ["interpret", "xla"])
def test_kernel_matches_float64_reference(n: int, how: str, block_size: int) -> None:
    rng = np.random.default_rng(n)
    p0 = rng.normal(size=n).astype(np.float32)
    grads = [rng.normal(size=n).astype(np.float32) for _ in range(5)]
    p, m, v = jnp.asarray(p0), jnp.zeros(n), jnp.zeros(n)
    for k, g in enumerate(grads, start=1):
        p, m, v = adam_kernel(p, jnp.asarray(g), m, v, k, learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-6,
                              weight_decay=0.1, eps_root=1e-8, implementation=how, block_size=block_size)
    rp, rm, rv = ref_adamw(p0, grads, 0.01, 0.8, 0.99, 1e-6, 0.1, 1e-8)
    np.testing.assert_allclose(np.asarray(m), rm, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(v), rv, rtol=2e-6, atol=1e-9)
    np.testing.assert_allclose(np.asarray(p), rp, rtol=2e-6, atol=1e-6)


def test_first_step_is_minus_lr_sign() -> None:
    """Adam's first step is ``-lr g / (|g| + eps)``; a zero gradient moves only by the decay."""
    g = jnp.array([[0.5, -3.0], [0.0, 1e-3]])
    p = jnp.ones((2, 2))
    new, m, v = adam_kernel(p, g, jnp.zeros((2, 2)), jnp.zeros((2, 2)), 1, learning_rate=0.1, eps=0.0,
                            weight_decay=0.5, implementation="interpret", block_size=8)
    np.testing.assert_allclose(np.asarray(new), 1 - 0.1 * (np.sign(np.asarray(g)) + 0.5), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(m), 0.1 * np.asarray(g), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(v), 0.001 * np.asarray(g) ** 2, rtol=1e-6)
    assert new.shape == (2, 2)


def test_kernel_aliases_its_outputs_to_p_m_v() -> None:
    """One read of g, m, v, p and one write of p, m, v: the pallas_call's outputs alias p, m and v."""
    x = jnp.zeros(64)
    jaxpr = jax.make_jaxpr(lambda p, g, m, v: adam_kernel(p, g, m, v, 1, learning_rate=0.1,
                                                          implementation="interpret", block_size=16))(x, x, x, x)
    calls = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "pallas_call"]
    assert len(calls) == 1
    assert dict(calls[0].params["input_output_aliases"]) == {1: 0, 3: 1, 4: 2}
    assert calls[0].params["grid_mapping"].grid == (4,)


def _close(a: object, b: object, ulps: float = 4.0) -> None:
    """Every leaf of ``a`` within ``ulps`` ulps (of its dtype, at the leaf's largest magnitude) of ``b``'s."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert x.dtype == y.dtype and x.shape == y.shape
        x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if jnp.issubdtype(x.dtype, jnp.integer):
            np.testing.assert_array_equal(x64, y64)
            continue
        tol = ulps * float(jnp.finfo(x.dtype).eps) * max(float(np.max(np.abs(y64), initial=0.0)), 1e-30)
        np.testing.assert_allclose(x64, y64, rtol=0, atol=tol)


OPTIMIZERS = {
    "adam": lambda: gradtx.adam(1e-2),
    "adamw_schedules": lambda: gradtx.adamw(gradtx.schedules.linear_schedule(0.1, 0.01, 5), b2=0.99,
                                            weight_decay=gradtx.schedules.constant_schedule(0.2), eps_root=1e-9),
    "adamw_b2_9999": lambda: gradtx.adamw(0.05, b1=0.95, b2=0.9999, weight_decay=0.1),
}


@pytest.mark.parametrize("flat", [False, True])
@pytest.mark.parametrize("how", ["interpret", "xla"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fused_step_equals_the_chain(name: str, how: str, flat: bool) -> None:
    """Four steps of the fused step and of ``update`` + ``apply_updates``: same state tree, same numbers."""
    rng = np.random.default_rng(0)
    tree = {"a": jnp.asarray(rng.normal(size=(37, 5)), jnp.float32), "b": jnp.asarray(rng.normal(size=3), jnp.float32),
            "c": jnp.asarray(rng.normal(size=()), jnp.float32), "h": jnp.asarray(rng.normal(size=70), jnp.bfloat16),
            "empty": jnp.zeros((0, 3))}
    opt = OPTIMIZERS[name]()
    params = pack(tree) if flat else tree
    step = fused_step(opt, how, block_size=16)
    assert step is not None
    fused = jax.jit(step)
    p1 = p2 = params
    s1 = s2 = opt.init(params)
    for _ in range(4):
        g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), x.dtype), params)
        u, s1 = opt.update(g, s1, p1)
        p1 = gradtx.apply_updates(p1, u)
        p2, s2 = fused(g, s2, p2)
        assert jax.tree.structure(s2) == jax.tree.structure(s1)
        _close(p2, p1)
        _close(s2, s1)
    if flat:
        assert isinstance(p2, gradtx.flat.FlatTree)
        _close(unpack(p2), unpack(p1))


def test_which_optimizers_fuse() -> None:
    assert why_not_fused(gradtx.adam(1e-3)) is None
    assert why_not_fused(gradtx.adamw(1e-3, weight_decay=0.1)) is None
    for opt in (gradtx.sgd(0.1), gradtx.adamw(1e-3, mask=lambda p: jax.tree.map(lambda _: True, p)),
                gradtx.adam(1e-3, nesterov=True), gradtx.adam(1e-3, mu_dtype=jnp.bfloat16), gradtx.nadamw(1e-3),
                gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(1e-3))):
        assert fused_step(opt) is None
        assert "gradtx.adam and gradtx.adamw" in str(why_not_fused(opt))


def _loss(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    return jnp.sum((params["w"] * x - 1.0) ** 2) + jnp.sum(params["b"] ** 2)


@pytest.mark.parametrize("flat", [False, True])
def test_make_step_runs_the_kernel(flat: bool) -> None:
    """``kernel="interpret"`` puts the pallas_call in the step and lands where the blocks' step does."""
    opt = gradtx.adamw(0.1, weight_decay=0.01)
    params = {"w": jnp.arange(1.0, 40.0), "b": jnp.ones(3)}
    x = jnp.linspace(0.0, 1.0, 39)
    results = {}
    for kernel in ("off", "interpret", "xla"):
        step = make_step(opt, _loss, kernel=kernel, flat=flat)
        p, s = step.init(jax.tree.map(jnp.copy, params))  # the step donates them
        program = str(jax.make_jaxpr(step.jitted)(p, s, x))  # the jitted step, its inner jaxpr printed
        assert ("pallas_call" in program) == (kernel == "interpret")
        for _ in range(3):
            p, s, loss = step(p, s, x)
        results[kernel] = (unpack(p) if flat else p, s, loss)
    for kernel in ("interpret", "xla"):
        _close(results[kernel], results["off"])
    grads_step = make_step(opt, kernel="interpret")
    p, s = grads_step(jax.tree.map(jnp.copy, params), opt.init(params), jax.grad(_loss)(params, x))
    u, s_ref = opt.update(jax.grad(_loss)(params, x), opt.init(params), params)
    _close((p, s), (gradtx.apply_updates(params, u), s_ref))


def test_make_step_runs_the_blocks_by_default() -> None:
    step = make_step(gradtx.adam(0.1), _loss)
    params = {"w": jnp.ones(3), "b": jnp.ones(2)}
    program = str(jax.make_jaxpr(step.jitted)(params, gradtx.adam(0.1).init(params), jnp.ones(3)))
    assert "scan" not in program and "pallas_call" not in program
    assert "pallas_call" in str(jax.make_jaxpr(make_step(gradtx.adam(0.1), _loss, kernel="interpret").jitted)(
        params, gradtx.adam(0.1).init(params), jnp.ones(3)))


def test_errors_name_the_call_and_value() -> None:
    x = jnp.zeros(4, jnp.float32)
    with pytest.raises(ValueError, match=r"adam_kernel\(implementation='cuda'\): implementation must be one of"):
        adam_kernel(x, x, x, x, 1, learning_rate=0.1, implementation="cuda")
    with pytest.raises(ValueError, match=r"adam_kernel\(block_size=100\): block_size must be a power of two >= 8"):
        adam_kernel(x, x, x, x, 1, learning_rate=0.1, block_size=100)
    with pytest.raises(ValueError, match=r"adam_kernel\(grads=<array float\d+\[3\]>\): grads must have the shape of "
                                         r"params \(4,\)"):
        adam_kernel(x, jnp.zeros(3), x, x, 1, learning_rate=0.1)
    with pytest.raises(ValueError, match=r"adam_kernel\(mu=<array int32\[4\]>\): mu must be a real floating array"):
        adam_kernel(x, x, jnp.zeros(4, jnp.int32), x, 1, learning_rate=0.1)
    with pytest.raises(ValueError, match=r"fused_step\(block_size=4\): block_size must be a power of two"):
        fused_step(gradtx.adam(0.1), block_size=4)
    with pytest.raises(ValueError, match=r"make_step\(kernel='pallas'\): kernel needs an optimizer the fused"):
        make_step(gradtx.sgd(0.1), _loss, kernel="pallas")
    with pytest.raises(ValueError, match=r"make_step\(kernel='on'\): kernel must be one of 'off', 'auto'"):
        make_step(gradtx.adam(0.1), _loss, kernel="on")
    mesh = jax.make_mesh((1,), ("data",))
    with pytest.raises(ValueError, match=r"make_step\(kernel='xla'\): kernel must be 'off' with zero"):
        make_step(gradtx.adam(0.1), _loss, kernel="xla", zero=1, mesh=mesh)
