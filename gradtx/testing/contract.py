"""The contract every transformation honours, as one reusable check.

``check_transformation(tx, params)`` runs a transformation a few steps on deterministic pseudo-random
gradients and raises ``AssertionError`` (with what failed and where) unless:

- ``jit`` equals eager, step by step (float32 params, or the first dtype checked without float32);
- a jitted ``update`` taking the transformation as an argument traces once over several steps;
- the state's structure, shapes and dtypes are the same after every step as after ``init``;
- the updates have the structure, shapes and dtypes of the gradients, for bfloat16, float32 and (when x64
  is enabled) float64 parameters;
- nested trees, ``None`` leaves, scalar leaves and the empty tree work;
- running the steps under ``lax.scan`` equals a Python loop (checked once, in float32: the equivalence is about
  the carried state, not the dtype; each scan is a program of its own to compile);
- the transformation survives a pytree round trip (flatten, unflatten) unchanged in behaviour.

It imports only JAX, NumPy, chex and ``gradtx.base``; use it on your own blocks too. Numbers are compared with
``chex.assert_trees_all_close``, so a failure names the leaf's path.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from gradtx.base import Params, PyTree, TransformationLike, apply_updates

__all__ = ["check_transformation", "default_params", "random_like"]

_TOL = {"bfloat16": 2e-2, "float16": 5e-3, "float32": 1e-5, "float64": 1e-12}


def default_params(dtype: DTypeLike = jnp.float32) -> Params:
    """A nested tree with a matrix, a vector, a scalar and a ``None`` leaf: the parameters the contract uses.

    ``{"w": (3, 4), "b": (4,), "nested": {"s": (), "none": None}, "t": ((2,),)}``, standard normal draws from
    NumPy's seed 0 (the same numbers at every call).

    Args:
      dtype: the dtype of every array leaf. Default float32.

    Returns:
      The parameter tree (a dict).

    Example:
      >>> import jax
      >>> from gradtx.testing.contract import default_params
      >>> print(jax.tree.map(lambda x: x.shape, default_params()))
      {'b': (4,), 'nested': {'none': None, 's': ()}, 't': ((2,),), 'w': (3, 4)}
    """
    rng = np.random.default_rng(0)
    return {
        "w": jnp.asarray(rng.normal(size=(3, 4)), dtype),
        "b": jnp.asarray(rng.normal(size=(4,)), dtype),
        "nested": {"s": jnp.asarray(rng.normal(), dtype), "none": None},
        "t": (jnp.asarray(rng.normal(size=(2,)), dtype),),
    }


def random_like(tree: PyTree, seed: int) -> PyTree:
    """Deterministic pseudo-random arrays shaped and typed like ``tree`` (``None`` leaves kept).

    Standard normal draws from NumPy's generator seeded with ``seed``, one leaf after the other, cast to each
    leaf's dtype: the gradients the contract feeds (step ``k`` uses seed ``k``).

    Args:
      tree: a pytree of arrays giving the shapes and dtypes.
      seed: the NumPy seed (a non-negative int).

    Returns:
      A pytree of ``tree``'s structure.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradtx.testing.contract import random_like
      >>> g = random_like({"w": jnp.zeros(3, jnp.bfloat16)}, seed=1)
      >>> print(g["w"].shape, g["w"].dtype)
      (3,) bfloat16
    """
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda x: jnp.asarray(rng.normal(size=jnp.shape(x)), jnp.result_type(x)), tree)


def _signature(tree: Any) -> tuple[Any, list[tuple[tuple[int, ...], str]]]:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, [(tuple(jnp.shape(x)), str(jnp.result_type(x))) for x in leaves]


def _assert_close(a: Any, b: Any, rtol: float, what: str) -> None:
    """``a`` and ``b`` have one tree structure and, in float64, leaves within ``rtol`` (relative and absolute)."""
    a64, b64 = (jax.tree.map(lambda x: np.asarray(x, np.float64), t) for t in (a, b))
    chex.assert_trees_all_close(a64, b64, rtol=rtol, atol=rtol, custom_message=what)


def _run(tx: Any, params: Any, grads: list[Any], extra: dict[str, Any], jit: bool) -> tuple[list[Any], list[Any]]:
    def step(t: Any, g: Any, s: Any, p: Any) -> Any:
        return t.update(g, s, p, **extra)

    update = jax.jit(step) if jit else step
    state = tx.init(params)
    outs, states = [], [state]
    p = params
    for g in grads:
        u, state = update(tx, g, state, p)
        outs.append(u)
        states.append(state)
        p = apply_updates(p, u)
    return outs, states


def check_transformation(
    tx: TransformationLike,
    params: Params | None = None,
    *,
    steps: int = 3,
    extra_args: dict[str, Any] | None = None,
    dtypes: tuple[DTypeLike, ...] | None = None,
    check_empty: bool = True,
) -> None:
    """Check the contract above for ``tx`` (see the module docstring); raises ``AssertionError``.

    For every dtype: ``steps`` updates on :func:`random_like` gradients, jitted (with ``tx`` as an argument:
    one trace), eagerly and under ``lax.scan`` (both for float32 only, or the first dtype when float32 is not
    among ``dtypes``), compared with each other; the state's and the
    updates' structures, shapes and dtypes checked at every step; then ``tx`` rebuilt from its pytree leaves
    and compared; finally ``init``/``update`` on the empty tree.

    Args:
      tx: the transformation to check (a pytree with ``init`` and ``update``).
      params: a float32 tree to use; ``None`` (default) for :func:`default_params`. It is recast for every
        dtype in ``dtypes``.
      steps: the number of updates per dtype, ``>= 1``. Default 3.
      extra_args: keyword arguments passed to every ``update`` (e.g. ``{"value": loss}``); ``None`` (default)
        for none.
      dtypes: the parameter dtypes to run; ``None`` (default) for bfloat16, float32 and float64 (the last when
        x64 is enabled).
      check_empty: also check that the empty tree ``{}`` gives empty updates. Default True.

    Raises:
      AssertionError: naming the transformation, the dtype and what failed (``scale with float32 params: jit
        differs from eager at step 2 ...``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.testing.contract import check_transformation
      >>> check_transformation(gradtx.scale(-0.1), dtypes=(jnp.float32,))  # passes silently
      >>> print("ok")
      ok
    """
    extra = dict(extra_args or {})
    base = default_params() if params is None else params
    if dtypes is None:
        x64 = jax.dtypes.canonicalize_dtype(jnp.float64) == jnp.float64
        dtypes = (jnp.bfloat16, jnp.float32) + ((jnp.float64,) if x64 else ())
    name = type(tx).__name__

    # The transformation is a pytree: a round trip rebuilds an equivalent object.
    leaves, treedef = jax.tree.flatten(tx)
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert type(rebuilt) is type(tx), f"{name}: pytree round trip changed the type"
    assert repr(rebuilt) == repr(tx), f"{name}: pytree round trip changed the repr"

    names = [np.dtype(d).name for d in dtypes]
    scan_dtype = "float32" if "float32" in names else names[0]
    for dtype in dtypes:
        dname = np.dtype(dtype).name
        tol = _TOL.get(dname, 1e-5)
        params_d = jax.tree.map(lambda x, dt=dtype: jnp.asarray(x, dt), base)
        grads = [random_like(params_d, seed=k + 1) for k in range(steps)]
        where = f"{name} with {dname} params"

        # Eager execution compiles every primitive separately, so it runs for one dtype (float32) only; every
        # dtype runs the jitted update (taking the transformation as an argument).
        eager_out = _run(tx, params_d, grads, extra, jit=False)[0] if dname == scan_dtype else None
        # Counted here rather than with chex.assert_max_traces, whose counts are per definition site and
        # process-wide: a check run for many transformations would have to reset (chex.clear_trace_counter) the
        # counts of its caller's own wrapped functions.
        traces = 0

        def counted(t: Any, g: Any, s: Any, p: Any) -> Any:
            nonlocal traces
            traces += 1
            return t.update(g, s, p, **extra)

        jitted = jax.jit(counted)
        state = tx.init(params_d)
        init_sig = _signature(state)
        p = params_d
        jit_out = []
        for k, g in enumerate(grads):
            u, state = jitted(tx, g, state, p)
            jit_out.append(u)
            if eager_out is not None:
                _assert_close(u, eager_out[k], tol, f"{where}: jit differs from eager at step {k + 1}")
            assert _signature(state) == init_sig, (
                f"{where}: state structure or dtypes changed at step {k + 1}:\n{_signature(state)}\nvs\n{init_sig}"
            )
            u_sig, g_sig = _signature(u), _signature(g)
            assert u_sig == g_sig, f"{where}: updates {u_sig} do not match gradients {g_sig}"
            p = apply_updates(p, u)
        # The rebuilt transformation has the same tree structure: no retrace, same numbers.
        rebuilt_out = jitted(rebuilt, grads[0], tx.init(params_d), params_d)
        assert traces == 1, f"{where}: jitted update traced {traces} times over {steps} steps and a rebuilt tx"
        _assert_close(rebuilt_out[0], jit_out[0], tol, f"{where}: the rebuilt transformation differs")

        # lax.scan equals the Python loop (once: float32, or the first dtype without it).
        if dname != scan_dtype:
            continue

        def body(carry: Any, g: Any) -> Any:
            s, p = carry
            u, s = tx.update(g, s, p, **extra)
            return (s, apply_updates(p, u)), u

        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *grads)
        (_, _), scanned = jax.lax.scan(body, (tx.init(params_d), params_d), stacked)
        for k in range(steps):
            _assert_close(jax.tree.map(lambda x, i=k: x[i], scanned), jit_out[k], tol,
                          f"{where}: lax.scan differs from the Python loop at step {k + 1}")

    if check_empty:
        state = tx.init({})
        u, _ = tx.update({}, state, {}, **extra)
        assert u == {}, f"{name}: the empty tree gave {u!r}"
