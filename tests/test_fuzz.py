"""Property-based fuzzing over the whole registry (hypothesis).

Random pytrees (nesting, None leaves, scalars, zero-size arrays, float16/bfloat16/float32/float64 and
complex64 leaves where the entry supports complex), random hyperparameters inside their valid ranges (every
floating-point hyperparameter of the entry's transformation redrawn, the constructors deciding what is valid:
see ``tests/hyperparams.py``), random gradient streams including NaN and Inf.
Nothing may crash; updates keep the structure and dtype of the gradients; the state keeps its structure and
dtypes; finite inputs give finite outputs (for dtypes with float32's range); non-finite inputs give the
entry's documented behaviour (``nonfinite``: "propagate": a NaN shows up in the updates or the state, an
Inf may be absorbed, e.g. by a sign or a clip; "guard": the updates stay finite).
"""

from __future__ import annotations

import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hyperparams import hyperparameters, randomize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry import ENTRIES

import gradtx
from gradtx.testing.contract import default_params

SHAPES = [(), (0,), (3,), (2, 3), (1, 0, 2), (4, 1)]
REAL = ["float16", "bfloat16", "float32", "float64"]


@st.composite
def leaves(draw, dtypes):
    shape = draw(st.sampled_from(SHAPES))
    return jax.ShapeDtypeStruct(shape, jnp.dtype(draw(st.sampled_from(dtypes))))


@st.composite
def trees(draw, dtypes, depth=0):
    kind = draw(st.sampled_from(["dict", "tuple", "list"] if depth < 2 else ["dict"]))
    n = draw(st.integers(1, 3))
    children = []
    for _ in range(n):
        choice = draw(st.integers(0, 9))
        if choice == 0:
            children.append(None)
        elif choice == 1 and depth < 2:
            children.append(draw(trees(dtypes, depth + 1)))
        else:
            children.append(draw(leaves(dtypes)))
    if kind == "dict":
        return {f"k{i}": c for i, c in enumerate(children)}
    return tuple(children) if kind == "tuple" else list(children)


def _fill(spec, rng, scale=1.0):
    def one(s):
        x = rng.normal(size=s.shape) * scale
        if jnp.issubdtype(s.dtype, jnp.complexfloating):
            x = x + 1j * rng.normal(size=s.shape) * scale
        return jnp.asarray(x, s.dtype)

    return jax.tree.map(one, spec, is_leaf=lambda x: isinstance(x, jax.ShapeDtypeStruct))


def _signature(tree):
    leaves_, treedef = jax.tree.flatten(tree)
    return treedef, [(jnp.shape(x), jnp.result_type(x)) for x in leaves_]


def _numbers(tree):
    """The leaves of ``tree`` that are numbers (not typed PRNG keys, which add_noise keeps in its state)."""
    return [x for x in jax.tree.leaves(tree) if not jnp.issubdtype(jnp.result_type(x), jax.dtypes.prng_key)]


@settings(
    max_examples=int(os.environ.get("GRADTX_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_registry_fuzz(data):
    """Nothing crashes; structure and dtypes are kept; finite in, finite out; non-finite input as documented.

    Domain: an entry of the registry; a pytree of dicts, tuples and lists (depth <= 2, 1-3 children, None
    leaves) whose leaves have the shapes in ``SHAPES`` (scalars and zero-size arrays included) and dtypes
    float16, bfloat16, float32, float64 (complex64 where the entry takes complex numbers), or default_params'
    structure for entries with masks; hyperparameters from ``tests/hyperparams.py`` (never subnormal, see
    there); params and 3 gradients drawn from N(0, 1) by NumPy from a drawn seed in [0, 2**16], the second
    gradient poisoned with NaN or Inf in one entry, or not. Subnormal entries are in the domain: N(0, 1) gives
    them in float16 (|x| < 6.1e-5, about one entry in 20,000) and practically never in the wider dtypes
    (|x| < 1.2e-38); the only numeric claim, finite updates, is made when no leaf is float16 and nothing is
    poisoned, and a subnormal that XLA flushes to zero is a finite 0 there. The draws are the same every run
    (the derandomized "ci" profile of tests/conftest.py).
    """
    entry = data.draw(st.sampled_from(ENTRIES), label="entry")
    dtypes = REAL + (["complex64"] if entry.complex_ok else [])
    if entry.uses_mask:  # masks and labels are built for default_params' structure
        dtype = data.draw(st.sampled_from(REAL[1:]), label="dtype")
        spec = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, jnp.dtype(dtype)), default_params())
    else:
        spec = data.draw(trees(dtypes), label="tree")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    poison = data.draw(st.sampled_from([None, np.nan, np.inf]), label="poison")
    rng = np.random.default_rng(seed)
    params = _fill(spec, rng)
    tx = randomize(entry.make(), data.draw)
    extra = dict(entry.extra_args or {})
    update = jax.jit(lambda g, s, p: tx.update(g, s, p, **extra))
    state = tx.init(params)
    state_sig = _signature(state)
    dtypes_used = {str(jnp.result_type(x)) for x in jax.tree.leaves(params)}
    wide = dtypes_used <= {"bfloat16", "float32", "float64", "complex64"}
    for step in range(3):
        grads = _fill(spec, rng)
        poisoned = False
        if poison is not None and step == 1:
            flat, treedef = jax.tree.flatten(grads)
            sized = [i for i, x in enumerate(flat) if jnp.size(x)]
            if sized:
                i = sized[0]
                flat[i] = flat[i].reshape(-1).at[0].set(poison).reshape(flat[i].shape)
                grads = jax.tree.unflatten(treedef, flat)
                poisoned = True
        updates, state = update(grads, state, params)
        assert _signature(updates) == _signature(grads), f"{entry.name}: updates changed structure or dtype"
        assert _signature(state) == state_sig, f"{entry.name}: state changed structure or dtype"
        if poisoned:
            if entry.nonfinite == "guard":
                chex.assert_tree_all_finite(updates, custom_message=f"{entry.name}: a finite-guard let it through")
            elif entry.nonfinite == "propagate" and np.isnan(poison):  # an Inf may be absorbed (sign, clip): no claim
                with pytest.raises(AssertionError, match="non-finite"):  # else the NaN vanished silently
                    chex.assert_tree_all_finite(updates)
                    chex.assert_tree_all_finite(_numbers(state))
            break  # the stream is poisoned from here on for propagating entries
        if wide and poison is None:
            chex.assert_tree_all_finite(updates, custom_message=f"{entry.name}: finite inputs, non-finite updates")


def test_randomize_keeps_only_values_the_constructor_accepts():
    """A draw the constructor rejects (b1=5) falls back to the original value; accepted draws are kept."""
    tx = randomize(gradtx.scale_by_adam(), lambda strategy, label: 5.0)
    assert hyperparameters(tx) == {
        "scale_by_adam.b1": 0.9,
        "scale_by_adam.b2": 0.999,
        "scale_by_adam.eps": 5.0,
        "scale_by_adam.eps_root": 5.0,
    }
    opt = randomize(gradtx.adamw(1e-3), lambda strategy, label: 0.5)
    values = hyperparameters(opt)
    assert values and all(v == 0.5 for v in values.values()), values
    assert float(opt.init({"w": jnp.zeros(2)})[0].count) == 0  # still a working transformation
