"""Fused kernels: Adam(W)'s whole step, moments and parameters, in one pass over memory.

An Adam step written as blocks (``scale_by_adam`` -> ``add_decayed_weights`` -> ``scale_by_learning_rate``,
then ``apply_updates``) reads the gradient, both moments and the parameters, and writes both moments and the
parameters: seven array passes at the least. XLA does not always find that minimum: on CPU it emits three loops
(the first moment, the second, then the parameters from both: ten passes), and on GPU each leaf of a pytree is
its own set of kernels. :func:`adam_kernel` is that step as one Pallas kernel (``jax.experimental.pallas``)
over 1-D blocks of ``block_size`` elements, whose outputs alias its inputs: one read of ``g, m, v, p`` and one
write of ``m, v, p`` per element, in place.

:func:`fused_step` recognises the optimizers whose step this kernel computes (``gradtx.adam`` and
``gradtx.adamw`` without a mask, ``nesterov``, ``mu_dtype`` or ``nu_dtype``: the chain of those three blocks)
and returns ``(grads, state, params) -> (params, state)`` computing the same step, the same state (the
chain's own ``ScaleByAdamState`` and schedule counts, so a checkpoint moves freely between the two) with the
kernel per leaf (per buffer of a :class:`gradtx.flat.FlatTree`). ``gradtx.step.make_step(opt, loss_fn,
kernel="pallas")`` runs it in the train step (off by default: checked in Pallas's interpreter on CPU, not yet
run on a GPU).

Implementations (``implementation=``): ``"pallas"`` compiles the kernel for the backend (Triton on GPU);
``"interpret"`` runs the same kernel in Pallas's interpreter (any backend: how the test suite checks it on
CPU); ``"xla"`` applies the kernel's body to whole arrays, which XLA fuses as it likes (no Pallas); ``"auto"``
is ``"pallas"`` on GPU and ``"xla"`` elsewhere. The arithmetic is the blocks' (the exact complement ``1 - b``
and its rounding error, :func:`gradtx.tree.debias`, ``scale_ratio``'s guards, and each block's rounding of its
output to the gradient's dtype), so results agree with the chain to float32 rounding: XLA compiles the two
programs separately and may turn a division into a multiplication by a reciprocal in one and not in the
other, a few ulps apart.

What is not here: a CPU kernel (the one-loop step on CPU needs a native custom call; the XLA formulations we
measured, a ``scan`` or ``fori_loop`` over cache-sized chunks, run on one core and copy their carries: 6x
and 90x slower than the three loops, ``benchmarks/cpu_one_loop.py``), 8-bit state inside the kernel, and the
Adam variants other than plain Adam and AdamW.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradtx.fields import fail
from gradtx.tree.precision import debias, decay_parts, safe_sqrt, scale_ratio

__all__ = ["IMPLEMENTATIONS", "adam_kernel", "fused_step", "why_not_fused"]

#: The values of ``implementation`` (and of ``make_step``'s ``kernel``, which adds ``"off"``).
IMPLEMENTATIONS = ("auto", "pallas", "interpret", "xla")

# The per-step scalars, in this order, in one small vector the kernel reads (a power of two long, as Triton
# wants): the moments' complements and decays (c, d, r: see gradtx.tree.decay_parts), the bias corrections,
# eps, eps_root, the weight decay and the negated learning rate.
_SCALARS = ("c1", "d1", "r1", "c2", "d2", "r2", "debias1", "debias2", "eps", "eps_root", "wd", "neg_lr")
_VECTOR = 16


def _body(s: Callable[[str], Any], p: Any, g: Any, m: Any, v: Any, exact1: bool, exact2: bool) -> tuple[Any, ...]:
    """One Adam(W) step on arrays (a kernel block or whole arrays): the new ``(p, m, v)``.

    ``s(name)`` reads a per-step scalar; ``exact1``/``exact2`` say the decay's rounding error ``r`` is 0 (then
    ``ema = c g + d m``, Optax's numbers), as in :func:`gradtx.tree.ema`. Computed in the widest compute dtype
    of the four arrays, the update rounded to the gradient's dtype after each block as the chain does and
    added in the parameters' dtype (``apply_updates``).
    """
    ct = _compute_dtype(p.dtype, g.dtype, m.dtype, v.dtype)
    g32, p32, m, v = g.astype(ct), p.astype(ct), m.astype(ct), v.astype(ct)
    m = s("c1") * g32 + s("d1") * m if exact1 else s("d1") * m + (s("r1") * m + s("c1") * g32)
    v = s("c2") * (g32 * g32) + s("d2") * v if exact2 else s("d2") * v + (s("r2") * v + s("c2") * (g32 * g32))
    direction = scale_ratio(m / s("debias1"), safe_sqrt(v / s("debias2") + s("eps_root")) + s("eps"))
    # Each block returns its output in the gradient's dtype (a no-op for float32): round where the chain does.
    u = direction.astype(g.dtype).astype(ct)
    u = (u + s("wd") * p32).astype(g.dtype).astype(ct)
    u = (s("neg_lr") * u).astype(g.dtype)
    return (p + u.astype(p.dtype)).astype(p.dtype), m, v


def _compute_dtype(*dtypes: Any) -> Any:
    """The widest of ``dtypes``' compute dtypes (each float32 or wider), as the blocks compute each leaf."""
    return jnp.result_type(*[d if jnp.finfo(d).bits >= 32 else jnp.float32 for d in dtypes])  # type: ignore[no-untyped-call]


def _scalars(ct: Any, count: Any, learning_rate: Any, b1: Any, b2: Any, eps: Any, eps_root: Any,
             weight_decay: Any) -> tuple[jax.Array, bool, bool]:
    """The per-step scalars as one vector of dtype ``ct``, and whether each decay's rounding error is 0."""
    c1, d1, r1 = decay_parts(b1, ct)
    c2, d2, r2 = decay_parts(b2, ct)
    zero = jnp.zeros([], ct)
    values = {
        "c1": c1, "d1": d1, "r1": zero if r1 is None else r1,
        "c2": c2, "d2": d2, "r2": zero if r2 is None else r2,
        "debias1": debias(b1, count, ct), "debias2": debias(b2, count, ct),
        "eps": eps, "eps_root": eps_root, "wd": weight_decay, "neg_lr": -jnp.asarray(learning_rate),
    }
    vec = jnp.stack([jnp.asarray(values[k]).astype(ct) for k in _SCALARS])
    return jnp.pad(vec, (0, _VECTOR - len(_SCALARS))), r1 is None, r2 is None


def _pallas(p: jax.Array, g: jax.Array, m: jax.Array, v: jax.Array, vec: jax.Array, exact1: bool, exact2: bool,
            block_size: int, interpret: bool) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The kernel on 1-D arrays: a grid of ``ceil(n / block_size)`` blocks, outputs aliasing ``p, m, v``."""
    from jax.experimental import pallas as pl  # imported when a kernel is built: Pallas is not needed otherwise

    def kernel(s_ref: Any, p_ref: Any, g_ref: Any, m_ref: Any, v_ref: Any, po_ref: Any, mo_ref: Any,
               vo_ref: Any) -> None:
        index = {k: i for i, k in enumerate(_SCALARS)}
        p_new, m_new, v_new = _body(lambda k: s_ref[index[k]], p_ref[...], g_ref[...], m_ref[...], v_ref[...],
                                    exact1, exact2)
        po_ref[...] = p_new
        mo_ref[...] = m_new.astype(mo_ref.dtype)
        vo_ref[...] = v_new.astype(vo_ref.dtype)

    n = p.shape[0]
    block = min(block_size, 1 << max(n - 1, 0).bit_length())  # a power of two (Triton's rule), edges masked
    spec = pl.BlockSpec((block,), lambda i: (i,))
    whole = pl.BlockSpec((_VECTOR,), lambda i: (0,))
    call = pl.pallas_call(
        kernel,
        grid=(pl.cdiv(n, block),),
        in_specs=[whole, spec, spec, spec, spec],
        out_specs=[spec, spec, spec],
        out_shape=[jax.ShapeDtypeStruct(x.shape, x.dtype) for x in (p, m, v)],  # type: ignore[no-untyped-call]
        input_output_aliases={1: 0, 3: 1, 4: 2},  # p, m, v are written in place
        interpret=interpret,
    )
    p, m, v = call(vec, p, g, m, v)
    return p, m, v


def _check_options(call: str, implementation: Any, block_size: Any) -> None:
    """Refuse an unknown ``implementation`` or a ``block_size`` that is not a power of two ``>= 8``."""
    if implementation not in IMPLEMENTATIONS:
        fail(call, "implementation", implementation, "must be one of " + ", ".join(map(repr, IMPLEMENTATIONS)))
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 8 or block_size & (
            block_size - 1):
        fail(call, "block_size", block_size, "must be a power of two >= 8")


def _resolve(implementation: str) -> str:
    if implementation == "auto":
        return "pallas" if jax.default_backend() == "gpu" else "xla"
    return implementation


def adam_kernel(
    params: jax.Array,
    grads: jax.Array,
    mu: jax.Array,
    nu: jax.Array,
    count: Any,
    *,
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    implementation: str = "auto",
    block_size: int = 1024,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One Adam(W) step on one array, fused: the new ``(params, mu, nu)``.

    Kingma & Ba 2015 ("Adam: A Method for Stochastic Optimization", arXiv 1412.6980) with the decoupled weight
    decay of Loshchilov & Hutter 2019 (arXiv 1711.05101), ``k = count`` the 1-based step::

        m = b1 m + (1 - b1) g                  v = b2 v + (1 - b2) g^2
        u = m / (1 - b1^k) / (sqrt(v / (1 - b2^k) + eps_root) + eps) + weight_decay p
        p = p - learning_rate u

    the step of ``gradtx.adamw(learning_rate, b1, b2, eps, eps_root, weight_decay=weight_decay)`` (``adam``
    with ``weight_decay=0``). With ``"pallas"`` or ``"interpret"`` it is one kernel over 1-D blocks of
    ``block_size`` elements reading ``g, m, v, p`` once and writing ``m, v, p`` in place (under ``jit`` with
    the arrays donated, no new buffer). Arrays of any shape are raveled and reshaped back.

    Args:
      params: the parameters ``p``, a floating array.
      grads: the gradient ``g``, the shape of ``params``.
      mu: the first moment ``m`` (biased, as in ``ScaleByAdamState``), the shape of ``params``.
      nu: the second moment ``v``, the shape of ``params``. Everything is computed in the widest of the four
        dtypes (float32 at least: bfloat16 arrays are computed in float32) and stored in each array's own.
      count: the 1-based step ``k >= 1`` (an int or an int32 scalar, may be traced).
      learning_rate: this step's learning rate (a number or a scalar array; keyword-only). Required.
      b1: the first moment's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      eps: added outside the square root, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0. Default 0.0.
      weight_decay: the decoupled decay rate (0 for Adam). Default 0.0.
      implementation: ``"auto"`` (``"pallas"`` on GPU, ``"xla"`` elsewhere), ``"pallas"`` (the compiled
        kernel), ``"interpret"`` (the kernel in Pallas's interpreter, any backend) or ``"xla"`` (the same
        arithmetic on whole arrays, no Pallas). Default ``"auto"``.
      block_size: elements per kernel block, a power of two ``>= 8`` (Triton's blocks are powers of two).
        Default 1024.

    Returns:
      ``(params, mu, nu)``: the new arrays, of the shapes and dtypes given.

    Raises:
      InvalidValue: (a ``ValueError``) an unknown ``implementation`` (``adam_kernel(implementation='cuda'):
        implementation must be one of 'auto', 'pallas', 'interpret', 'xla'``), a ``block_size`` that is not a
        power of two ``>= 8``, arrays whose shapes differ from ``params``', or arrays that are not real floating.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.kernels import adam_kernel
      >>> p, g = jnp.array([1.0, -2.0, 3.0]), jnp.array([0.5, -1.0, 0.0])
      >>> p, m, v = adam_kernel(p, g, jnp.zeros(3), jnp.zeros(3), 1, learning_rate=0.1,
      ...                       implementation="interpret", block_size=8)
      >>> print(p)  # the first step is -lr * sign(g)
      [ 0.9 -1.9  3. ]
    """
    _check_options("adam_kernel", implementation, block_size)
    call = "adam_kernel"
    shape = jnp.shape(params)
    for name, x in (("grads", grads), ("mu", mu), ("nu", nu)):
        if jnp.shape(x) != shape:
            fail(call, name, x, f"must have the shape of params {shape}")
    p, g, m, v = (jnp.asarray(x) for x in (params, grads, mu, nu))
    for name, x in zip(("params", "grads", "mu", "nu"), (p, g, m, v)):
        if not jnp.issubdtype(x.dtype, jnp.floating):
            fail(call, name, x, "must be a real floating array")
    ct = _compute_dtype(p.dtype, g.dtype, m.dtype, v.dtype)
    vec, exact1, exact2 = _scalars(ct, count, learning_rate, b1, b2, eps, eps_root, weight_decay)
    return _apply(p, g, m, v, vec, exact1, exact2, _resolve(implementation), block_size)


def _apply(p: jax.Array, g: jax.Array, m: jax.Array, v: jax.Array, vec: jax.Array, exact1: bool, exact2: bool,
           how: str, block_size: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The step on arrays of one shape by ``how`` (``"pallas"``, ``"interpret"``, ``"xla"``)."""
    if how == "xla" or p.size == 0:
        index = {k: i for i, k in enumerate(_SCALARS)}
        p_new, m_new, v_new = _body(lambda k: vec[index[k]], p, g, m, v, exact1, exact2)
        return p_new, m_new.astype(m.dtype), v_new.astype(v.dtype)
    shape = p.shape
    p_new, m_new, v_new = _pallas(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), vec, exact1, exact2,
                                  block_size, how == "interpret")
    return p_new.reshape(shape), m_new.reshape(shape), v_new.reshape(shape)


def _adam_chain(opt: Any) -> tuple[Any, Any, Any] | None:
    """``(scale_by_adam, add_decayed_weights or None, scale_by_learning_rate)`` when ``opt`` is the chain of
    ``gradtx.adam``/``adamw`` in a form the kernel computes, else ``None``."""
    from gradtx.combine import chain
    from gradtx.transforms.adam_family import scale_by_adam
    from gradtx.transforms.regularization import add_decayed_weights
    from gradtx.transforms.scaling import scale_by_learning_rate

    if not isinstance(opt, chain):
        return None
    blocks = list(opt.transforms)
    if len(blocks) not in (2, 3):
        return None
    adam, lr = blocks[0], blocks[-1]
    decay = blocks[1] if len(blocks) == 3 else None
    if not (isinstance(adam, scale_by_adam) and isinstance(lr, scale_by_learning_rate)):
        return None
    if adam.nesterov or adam.mu_dtype is not None or adam.nu_dtype is not None or not lr.flip_sign:
        return None
    if decay is not None and not (isinstance(decay, add_decayed_weights) and decay.mask is None):
        return None
    return adam, decay, lr


def why_not_fused(opt: Any) -> str | None:
    """Why :func:`fused_step` does not apply to ``opt`` (a sentence), or ``None`` when it does.

    Args:
      opt: any optimizer.

    Returns:
      ``None`` when :func:`fused_step` computes ``opt`` (``gradtx.adam``, ``gradtx.adamw`` without a mask,
      ``nesterov``, ``mu_dtype`` or ``nu_dtype``), else a sentence saying what the kernel computes.

    Examples:
      >>> import gradtx
      >>> from gradtx.kernels import why_not_fused
      >>> print(why_not_fused(gradtx.adamw(1e-3)))
      None
      >>> print(why_not_fused(gradtx.lion(1e-4))[:55])
      the fused kernel computes gradtx.adam and gradtx.adamw
    """
    if _adam_chain(opt) is None:
        return ("the fused kernel computes gradtx.adam and gradtx.adamw (a chain of scale_by_adam, "
                "add_decayed_weights without a mask and scale_by_learning_rate; no nesterov, mu_dtype or "
                "nu_dtype)")
    return None


def fused_step(opt: Any, implementation: str = "auto", block_size: int = 1024) -> Callable[..., Any] | None:
    """The step of ``opt`` with :func:`adam_kernel` per leaf, when ``opt`` is Adam or AdamW; else ``None``.

    Recognised: the chains ``gradtx.adam(...)`` and ``gradtx.adamw(...)`` build (``scale_by_adam`` ->
    [``add_decayed_weights``] -> ``scale_by_learning_rate``), learning rates and weight decays given as
    numbers or schedules, without a weight-decay ``mask``, ``nesterov``, ``mu_dtype`` or ``nu_dtype``. The
    returned function takes the chain's own state and returns the state ``opt.update`` would (the count and
    moments of ``ScaleByAdamState``, the schedules' counts), with the parameters already updated::

        step = fused_step(opt)
        params, state = step(grads, state, params)   # == apply_updates(params, opt.update(...)[0]), state

    Each leaf (each buffer of a :class:`gradtx.flat.FlatTree`) is one kernel call. ``gradtx.step.make_step``
    uses this with ``kernel="pallas"`` (or ``"interpret"``, ``"auto"``, ``"xla"``).

    Args:
      opt: the optimizer to fuse.
      implementation: as in :func:`adam_kernel`: ``"auto"``, ``"pallas"``, ``"interpret"`` or ``"xla"``.
        Default ``"auto"``.
      block_size: elements per kernel block, a power of two ``>= 8``. Default 1024.

    Returns:
      ``step(grads, state, params) -> (params, state)``, or ``None`` when ``opt`` is not a chain the kernel
      computes (``why_not_fused(opt)`` says why).

    Raises:
      InvalidValue: (a ``ValueError``) an unknown ``implementation`` or a bad ``block_size``, as in
        :func:`adam_kernel`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.kernels import fused_step
      >>> opt = gradtx.adamw(0.1, weight_decay=0.0)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> step = fused_step(opt, implementation="interpret", block_size=8)
      >>> params, state = step({"w": jnp.array([0.5, -1.0])}, opt.init(params), params)
      >>> print(params["w"], state[0].count)
      [ 0.9 -1.9] 1
      >>> fused_step(gradtx.sgd(0.1)) is None
      True
    """
    _check_options("fused_step", implementation, block_size)
    blocks = _adam_chain(opt)
    if blocks is None:
        return None
    adam, decay, lr_block = blocks

    def step(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        from gradtx.base import safe_int32_increment
        from gradtx.transforms.adam_family import ScaleByAdamState
        from gradtx.transforms.scaling import scheduled

        adam_state = state[0]
        count = safe_int32_increment(adam_state.count)
        lr, lr_state = scheduled(lr_block.learning_rate, state[-1])
        wd, wd_state = (0.0, None) if decay is None else scheduled(decay.weight_decay, state[1])
        how = _resolve(implementation)
        memo: dict[Any, tuple[jax.Array, bool, bool]] = {}

        def leaf(p: Any, g: Any, m: Any, v: Any) -> tuple[Any, Any, Any]:
            p, g, m, v = (jnp.asarray(x) for x in (p, g, m, v))
            ct = _compute_dtype(p.dtype, g.dtype, m.dtype, v.dtype)
            if ct not in memo:  # one scalar vector per compute dtype, shared by the leaves
                memo[ct] = _scalars(ct, count, lr, adam.b1, adam.b2, adam.eps, adam.eps_root, wd)
            return _apply(p, g, m, v, *memo[ct], how, block_size)

        out = jax.tree.map(leaf, params, grads, adam_state.mu, adam_state.nu)
        new_params, mu, nu = jax.tree.transpose(jax.tree.structure(params), jax.tree.structure((0, 0, 0)), out)
        new_state: list[Any] = [ScaleByAdamState(count=count, mu=mu, nu=nu)]
        if decay is not None:
            new_state.append(wd_state)
        return new_params, (*new_state, lr_state)

    return step

