"""gradtx as a drop-in for Optax: real training scripts, run unchanged but for their import lines.

Each script in ``tests/dropin_scripts/`` is written the way Optax's examples and the Flax NNX / Equinox
tutorials write training code, with ``import optax``. It runs twice in float32 (x64 off), once with Optax and
once with every ``optax`` import line rewritten to ``gradtx`` (nothing else changes), and the two loss
trajectories (the script's ``losses`` list) must agree to 1e-6 relative, or, for optimizers whose decay rates
Optax rounds in float32 (Adam's ``b2 = 0.999``), to 1e-4 and to 1e-6 once gradtx uses Optax's decay
rounding. A guarded ``__import__`` makes sure the gradtx run cannot reach Optax (and the Optax run cannot
reach gradtx). The scripts assert a few facts of their own (frozen parameters stay put, the meta-learned
learning rate grows) and the test checks that every run really trains (the final loss is well below the first).

Also here: ``flax.nnx.Optimizer`` holding a gradtx transformation whose learning rate is an array, which NNX
(0.12) rejects for any pytree holding arrays in a static attribute unless the type is declared as data
(``gradtx.base._declare_to_nnx``).
"""

from __future__ import annotations

import builtins
import contextlib
import math
import re
import sys
import types
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

SCRIPTS = Path(__file__).parent / "dropin_scripts"
SCRIPT_NAMES = sorted(p.stem for p in SCRIPTS.glob("*.py"))

# How much each script must lower its loss (last / first), so that a run that does not train fails.
_MIN_IMPROVEMENT = 1.5

_IMPORT_AS = re.compile(r"^(\s*)import\s+optax((?:\.\w+)*)(\s+as\s+\w+)?\s*(#.*)?$")
_FROM = re.compile(r"^(\s*)from\s+optax((?:\.\w+)*)\s+import\b(.*)$")


def to_gradtx(source: str) -> str:
    """Rewrite the import lines of an Optax script to gradtx; every other line is returned unchanged.

    ``import optax`` -> ``import gradtx as optax``; ``import optax.X as Y`` -> ``import gradtx.X as Y``;
    ``from optax[.X] import ...`` -> ``from gradtx[.X] import ...``. A bare ``import optax.X`` (which binds
    ``optax``) is refused: it has no one-line rewrite that keeps the name.
    """
    out = []
    for line in source.splitlines(keepends=True):
        body = line.rstrip("\n")
        newline = line[len(body) :]
        if m := _IMPORT_AS.match(body):
            indent, sub, alias, _ = m.groups()
            if sub and not alias:
                raise ValueError(f"to_gradtx: cannot rewrite {body.strip()!r}; write 'import optax' instead")
            body = f"{indent}import gradtx{sub}{alias or ' as optax'}"
        elif m := _FROM.match(body):
            indent, sub, rest = m.groups()
            body = f"{indent}from gradtx{sub} import{rest}"
        out.append(body + newline)
    return "".join(out)


def _guarded_builtins(forbidden: str) -> dict[str, Any]:
    real_import = builtins.__import__

    def guarded_import(name: str, *args: Any, **kwargs: Any) -> Any:
        level = args[3] if len(args) > 3 else kwargs.get("level", 0)
        if level == 0 and (name == forbidden or name.startswith(forbidden + ".")):
            raise ImportError(f"this drop-in run must not import {name!r}")
        return real_import(name, *args, **kwargs)

    namespace = dict(vars(builtins))
    namespace["__import__"] = guarded_import
    return namespace


def run_script(name: str, library: str) -> dict[str, Any]:
    """Run ``dropin_scripts/<name>.py`` with ``library`` ("optax" or "gradtx") in float32; return its globals."""
    source = (SCRIPTS / f"{name}.py").read_text()
    forbidden = "gradtx" if library == "optax" else "optax"
    if library == "gradtx":
        source = to_gradtx(source)
    module_name = f"_dropin_{name}_{library}"
    module = types.ModuleType(module_name)
    module.__dict__["__builtins__"] = _guarded_builtins(forbidden)
    module.__file__ = str(SCRIPTS / f"{name}.py")
    sys.modules[module_name] = module  # dataclasses (Equinox modules) look their module up
    try:
        with jax.enable_x64(False):
            exec(compile(source, module.__file__, "exec"), module.__dict__)
    finally:
        del sys.modules[module_name]
    return module.__dict__


# --------------------------------------------------------------------------------------------------
# The rewrite itself.
# --------------------------------------------------------------------------------------------------


def test_rewrite_touches_only_import_lines():
    source = (
        "import optax\n"
        "import optax as ox  # alias\n"
        "import optax.contrib as oc\n"
        "from optax import adam, chain\n"
        "from optax.contrib import (\n"
        "    muon,\n"
        ")\n"
        "    from optax.losses import l2_loss\n"
        "import optaxx\n"
        "x = optax.losses.l2_loss  # import optax\n"
    )
    assert to_gradtx(source) == (
        "import gradtx as optax\n"
        "import gradtx as ox\n"
        "import gradtx.contrib as oc\n"
        "from gradtx import adam, chain\n"
        "from gradtx.contrib import (\n"
        "    muon,\n"
        ")\n"
        "    from gradtx.losses import l2_loss\n"
        "import optaxx\n"
        "x = optax.losses.l2_loss  # import optax\n"
    )
    with pytest.raises(ValueError, match=r"cannot rewrite 'import optax\.contrib'"):
        to_gradtx("import optax.contrib\n")


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_scripts_import_optax_on_their_import_lines_only(name):
    source = (SCRIPTS / f"{name}.py").read_text()
    rewritten = to_gradtx(source)
    assert re.search(r"^(import|from) optax\b", source, re.M), "a drop-in script must import optax"
    assert not re.search(r"^\s*(import|from)\s+optax\b", rewritten, re.M)
    changed = [a for a, b in zip(source.splitlines(), rewritten.splitlines()) if a != b]
    assert changed and all(re.match(r"\s*(import|from)\s", line) for line in changed)


def test_guard_blocks_the_other_library():
    guarded = _guarded_builtins("optax")
    with pytest.raises(ImportError, match=r"must not import 'optax\.contrib'"):
        exec("import optax.contrib as oc", {"__builtins__": guarded})
    exec("import numpy", {"__builtins__": guarded})


# --------------------------------------------------------------------------------------------------
# The scripts, with Optax and with gradtx.
# --------------------------------------------------------------------------------------------------


def _first_difference(name: str, got: np.ndarray, ref: np.ndarray, rtol: float) -> str | None:
    bad = np.flatnonzero(~np.isclose(got, ref, rtol=rtol, atol=0.0))
    if bad.size == 0:
        return None
    i = bad[0]
    return (f"{name}: gradtx's loss differs from optax's first at step {i}: {got[i]!r} vs {ref[i]!r} "
            f"(relative {abs(got[i] / ref[i] - 1):.2e}); {bad.size} of 100 steps differ beyond {rtol:g}")


@contextlib.contextmanager
def _optax_decay_rounding():
    """gradtx with Optax's float32 decay arithmetic: the decay multiplied as ``float32(b)`` (not ``1 - c`` for the
    exact complement ``c``) and the bias correction ``1 - float32(b)^k`` (not ``-expm1(k log1p(-c))``). These two
    are gradtx's only documented departures from Optax's numbers (README, "Coming from Optax"; gradtx's are
    closer to float64, tests/test_float32_numbers.py)."""
    import gradtx.tree as gt
    import gradtx.tree.precision as gp

    def optax_debias(decay, count, like):
        d = gp.decay_parts(decay, like)[1]
        return 1 - d ** jnp.asarray(count).astype(d.dtype)

    saved = gp._EXACT_ULPS, gp.debias, gt.debias
    gp._EXACT_ULPS, gp.debias, gt.debias = math.inf, optax_debias, optax_debias
    try:
        yield
    finally:
        gp._EXACT_ULPS, gp.debias, gt.debias = saved


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_script_gives_optax_loss_trajectory(name):
    """The loss trajectories agree to 1e-6 relative over 100 float32 steps. Where a script's optimizer decays
    with a rate whose float32 complement Optax rounds (Adam's ``b2 = 0.999``), gradtx's own numbers differ by the
    documented amount (at most 1e-4 here) and, run with Optax's decay rounding, agree to 1e-6: nothing else
    differs."""
    ref = np.asarray(run_script(name, "optax")["losses"])
    got = np.asarray(run_script(name, "gradtx")["losses"])
    assert ref.dtype == np.float64 and ref.shape == (100,), "each script records 100 losses as Python floats"
    assert ref[-1] * _MIN_IMPROVEMENT < ref[0], f"{name} does not train with optax: {ref[0]} -> {ref[-1]}"
    if _first_difference(name, got, ref, 1e-6) is None:
        return
    assert (problem := _first_difference(name, got, ref, 1e-4)) is None, problem
    with _optax_decay_rounding():
        emulated = np.asarray(run_script(name, "gradtx")["losses"])
    assert (problem := _first_difference(name, emulated, ref, 1e-6)) is None, problem


# --------------------------------------------------------------------------------------------------
# flax.nnx.Optimizer with an array learning rate.
# --------------------------------------------------------------------------------------------------


def _nnx_training(optax: Any, recipe: str, array_lr: bool) -> tuple[list[float], Any]:
    """20 steps of an ``nnx.Linear`` regression with ``nnx.Optimizer`` and ``nnx.jit``, as NNX's docs write it."""
    from flax import nnx

    with jax.enable_x64(False):
        import jax.numpy as jnp

        lr = jnp.array(3e-2, jnp.float32) if array_lr else 3e-2
        tx = optax.adamw(lr, weight_decay=1e-2) if recipe == "adamw" else optax.sgd(lr, momentum=0.9)
        model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
        optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
        x = jnp.arange(12.0, dtype=jnp.float32).reshape(4, 3) / 10
        y = jnp.ones((4, 2), jnp.float32)

        @nnx.jit
        def train_step(model, optimizer):
            loss, grads = nnx.value_and_grad(lambda m: ((m(x) - y) ** 2).mean())(model)
            optimizer.update(model, grads)
            return loss

        losses = [float(train_step(model, optimizer)) for _ in range(20)]
    return losses, optimizer


@pytest.mark.parametrize("recipe", ["adamw", "sgd"])
def test_nnx_optimizer_accepts_array_learning_rate(recipe):
    """``nnx.Optimizer(model, gradtx.adamw(jnp.array(lr)), wrt=nnx.Param)`` trains as Optax's does.

    Before ``_declare_to_nnx`` NNX raised "Found data on value of type 'gradtx.combine.chain' assigned to static
    attribute 'tx'". The array learning rate is a leaf of the transformation, so NNX now holds the transformation
    as data: the learning rate is traced by ``nnx.jit`` and appears in ``nnx.state(optimizer)``; a Python float
    learning rate stays in the graph definition, as with Optax. Both give the numbers of the float run exactly
    and Optax's to 1e-6 (for adamw: with Optax's float32 decay rounding, see the module notes).
    """
    import optax
    from flax import nnx

    import gradtx

    ref, _ = _nnx_training(optax, recipe, array_lr=True)
    got, optimizer = _nnx_training(gradtx, recipe, array_lr=True)
    got_float, optimizer_float = _nnx_training(gradtx, recipe, array_lr=False)
    assert ref[-1] < 0.5 * ref[0]
    np.testing.assert_allclose(got, got_float, rtol=1e-7)
    assert isinstance(optimizer.tx, gradtx.GradientTransformation)
    in_tx = lambda path, value: "tx" in path  # noqa: E731
    np.testing.assert_array_equal(
        np.asarray(jax.tree.leaves(nnx.state(optimizer, in_tx))), np.array([3e-2], np.float32)
    )
    assert jax.tree.leaves(nnx.state(optimizer_float, in_tx)) == []
    # What nnx.OptState selects (Optax's state layout) is the same whether the learning rate is an array or not.
    assert jax.tree.structure(nnx.state(optimizer, nnx.OptState)) == jax.tree.structure(
        nnx.state(optimizer_float, nnx.OptState)
    )
    # The transformation round-trips through nnx.split / nnx.merge with its learning rate.
    merged = nnx.merge(*nnx.split(optimizer))
    assert repr(merged.tx) == repr(optimizer.tx)
    assert jax.tree.structure(merged.tx) == jax.tree.structure(optimizer_float.tx)
    if recipe == "sgd":
        np.testing.assert_allclose(got, ref, rtol=1e-6)
    else:  # adamw's b2 = 0.999: Optax's float32 decay rounding is the one difference (see the scripts' test)
        np.testing.assert_allclose(got, ref, rtol=1e-4)
        with _optax_decay_rounding():
            emulated, _ = _nnx_training(gradtx, recipe, array_lr=True)
        np.testing.assert_allclose(emulated, ref, rtol=1e-6)


def test_declare_to_nnx_covers_classes_defined_later():
    """A user's own pytree transformation defined after NNX is loaded is declared on its first construction."""
    from flax import nnx

    import gradtx
    from gradtx.fields import pytree_class

    @pytree_class
    class scale_by_two(gradtx.GradientTransformation):
        factor: Any

        def init(self, params):
            return gradtx.EmptyState()

        def update(self, updates, state, params=None, **extra):
            return jax.tree.map(lambda u: self.factor * u, updates), state

    assert not nnx.is_data(object.__new__(scale_by_two))
    tx = scale_by_two(np.float32(2.0))
    assert nnx.is_data(tx)
    model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
    nnx.Optimizer(model, gradtx.chain(tx, gradtx.sgd(np.ones((), np.float32))), wrt=nnx.Param)
