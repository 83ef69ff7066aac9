"""Hypergradients over the whole registry (issue 15).

gradtx transformations are pytrees whose numeric hyperparameters (schedules' too) are leaves, so
``jax.grad(lambda tx: loss_after_k_steps(tx))(tx)`` differentiates a training run with respect to all of them at
once. For every registry entry this file trains float64 parameters for three steps on a separable loss in which
one coordinate (``w[0, 0]``) has gradient exactly 0 at every step, and differentiates the final loss with
respect to the entry's float leaves (``jax.tree.flatten``, the inexact leaves as arrays, ``unflatten``):

- the hypergradient is finite for every leaf (the forward loss is finite here); before issue 15 a zero gradient
  coordinate gave NaN through ``sqrt(0)`` (its derivative is infinite, times a zero cotangent);
- its directional derivative along one random direction (each leaf moved in proportion to its magnitude, so a
  zero leaf stays put) matches a central finite difference in float64.

Blocks (``kind="block"``) return a direction, not a step: their updates are applied as ``params - 0.1 * u``,
with the 0.1 a constant of the test rather than a leaf of the transformation, so the hypergradient is taken with
respect to the entry's own leaves only, the parameters move (the ``needs_params`` blocks and the state see
parameters that depend on the hyperparameters) and a gradient-like direction descends. Optimizers' updates are
applied as they are. Extra arguments are the problem's own: ``value`` is the loss at the current parameters,
``grad_fn`` its gradient, ``obj_fn`` the loss.

One program (loss and hypergradient, the steps under ``lax.scan``) is compiled per entry and evaluated three
times (the gradient, then the loss on both sides of the difference); compiling is most of the time, so CI runs a
fixed half of the registry (chosen by a hash of each name, plus every entry named in the dicts below) and
``GRADTX_SLOW=1`` runs every entry.

``NOT_DIFFERENTIABLE`` names the entries whose final loss is not differentiable along the direction (their
finite difference is not checked; finiteness still is); ``FD_STEP`` those checked with a larger step;
``CORE_PENDING`` core blocks whose hypergradient is not finite yet (``xfail(strict=True)``: the core fix turns
them into failures, to be removed from the dict). Every name in them must be a registry entry.
"""

from __future__ import annotations

import os
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from registry import ENTRIES, ENTRY_IDS, OPT

from gradtx.base import apply_updates
from gradtx.testing.contract import default_params, random_like
from gradtx.tree.precision import safe_sqrt

STEPS = 3
LR_BLOCK = 0.1  # a block's updates are applied as params - LR_BLOCK * u
REL_STEP = 1e-6  # finite-difference step, relative to each leaf's magnitude
RTOL, ATOL = 1e-4, 1e-9

# Entries whose final loss is not differentiable along the random direction: name -> reason.
_SM3 = ("b2 = 1.0 is the end of its range [0, 1] and a switch: SM3 accumulates g^2 with weight 1 if b2 == 1, "
        "else 1 - b2 (Optax's convention), so the loss jumps when b2 moves below 1")
NOT_DIFFERENTIABLE: dict[str, str] = {
    "scale_by_shampoo(b2=1: Gupta et al. sums, no graft, b1=0)": "b2 = 1 switches the statistics from averages "
    "(weight 1 - b2) to sums (weight 1): the loss jumps along b2 at 1",
    "dog": ("DoG's first step moves exactly r_eps ||g|| / sqrt(||g||^2 + eps), within 1e-9 relative of r_eps, and the "
            "next reads max(r_eps, ||x - x_0||): a finite difference of 1e-6 crosses the kink of the max"),
    "scale_by_sm3": _SM3,
    "sm3": _SM3,
    "sm3(momentum=None, schedule)": _SM3,
    "adam(mu_dtype=bfloat16, nu_dtype=bfloat16)": ("the moments are stored in bfloat16: their rounding makes the "
                                                   "loss piecewise constant at the scale of a 1e-6 step"),
    "quantized_state(adam, block_size=4, min_size=0)": ("the moments are stored in 8-bit codes: rounding to the "
                                                        "nearest code makes the loss piecewise constant"),
}

# Entries whose forward loss carries roundoff noise well above float64's, checked with a larger relative step:
# name -> (step, reason).
FD_STEP: dict[str, tuple[float, str]] = {
    "scale_by_soap": (1e-3, "G^T G of a 3x4 gradient is singular: along its null eigenvector the rotated moments "
                            "are roundoff (~1e-16) divided by sqrt(v) + eps with eps = 1e-8, noise of ~1e-10 in the "
                            "loss"),
}

# Core blocks (gradtx.transforms, gradtx.wrappers, gradtx.optimizers) whose hypergradient is NaN/inf where the
# forward is finite: name -> cause (file, operation). xfail(strict=True) until the core fix lands.
CORE_PENDING: dict[str, str] = {}


# --------------------------------------------------------------------------------------------------
# The problem
# --------------------------------------------------------------------------------------------------


class _Problem:
    """A float64 training problem: ``params`` and a separable loss in which ``w[0, 0]`` does not appear (its
    gradient is exactly 0 at every step); ``grad`` is the loss's gradient and ``extra(entry, p)`` the entry's extra
    arguments at ``p``."""

    def __init__(self, params):
        target = random_like(params, seed=7)
        rng = np.random.default_rng(3)
        curvature = jax.tree.map(lambda x: jnp.asarray(rng.uniform(0.5, 2.0, size=jnp.shape(x))), params)
        curvature["w"] = curvature["w"].at[0, 0].set(0.0)

        def loss(p):
            def term(x, t, c):
                d = x - t
                return jnp.sum(c * (0.5 * d**2 + d**4 / 24))

            return sum(jax.tree.leaves(jax.tree.map(term, p, target, curvature)))

        self.params, self.loss, self.grad = params, loss, jax.grad(loss)

    def extra(self, entry, params):
        """The entry's extra arguments, computed from the problem at ``params``."""
        made = {"value": lambda: self.loss(params), "grad_fn": lambda: lambda p, i: self.grad(p),
                "obj_fn": lambda: self.loss}
        unknown = set(entry.extra_args or {}) - set(made)
        assert not unknown, f"{entry.name}: no problem-side value for the extra arguments {sorted(unknown)}"
        return {k: made[k]() for k in (entry.extra_args or {})}


# Compiling one program per entry is most of this file's time, and it grows with the number of leaves: entries
# whose options are written for default_params' structure (a mask: ``uses_mask``) train default_params, the
# others a matrix and a vector.
FULL = _Problem(default_params(jnp.float64))
SMALL = _Problem({"w": FULL.params["w"], "b": FULL.params["b"]})


def _split(tx):
    """``(rebuild, x0, names)``: the float leaves of ``tx`` as arrays (a Python float stays weakly typed), the
    function putting them back, and their paths (for messages)."""
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(tx)
    leaves = [v for _, v in with_paths]
    index = [i for i, v in enumerate(leaves) if isinstance(v, float) or (
        hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.inexact))]

    def rebuild(xs):
        out = list(leaves)
        for i, x in zip(index, xs):
            out[i] = x
        return jax.tree.unflatten(treedef, out)

    names = [jax.tree_util.keystr(with_paths[i][0]) for i in index]
    return rebuild, tuple(jnp.asarray(leaves[i]) for i in index), names


def _final_loss(entry, rebuild):
    """The loss after ``STEPS`` steps of the transformation rebuilt from its float leaves."""
    problem = FULL if entry.uses_mask else SMALL

    def run(xs):
        tx = rebuild(xs)

        def step(carry, _):
            p, state = carry
            u, state = tx.update(problem.grad(p), state, p, **problem.extra(entry, p))
            if entry.kind != OPT:
                u = jax.tree.map(lambda v: -LR_BLOCK * v, u)
            return (apply_updates(p, u), state), None

        (p, _), _ = jax.lax.scan(step, (problem.params, tx.init(problem.params)), length=STEPS)
        return problem.loss(p)

    return run


def _shifted(x, delta):
    """``x + delta`` with ``x``'s dtype and weak type (the compiled program takes exactly those)."""
    moved = np.asarray(x, np.float64) + delta
    return jnp.asarray(moved.item()) if x.weak_type else jnp.asarray(moved, x.dtype)


def _marks(entry):
    if entry.name in CORE_PENDING:
        return [pytest.mark.xfail(strict=True, reason=CORE_PENDING[entry.name])]
    return []


def _sampled(entry) -> bool:
    """Half of the registry in CI, the same half on every run (by a hash of the name), and every entry the dicts
    above name; ``GRADTX_SLOW=1`` runs them all (each entry is one compile of about a second)."""
    if os.environ.get("GRADTX_SLOW") == "1":
        return True
    special = entry.name in NOT_DIFFERENTIABLE or entry.name in FD_STEP or entry.name in CORE_PENDING
    return special or zlib.crc32(entry.name.encode()) % 2 == 0


@pytest.mark.parametrize("entry", [pytest.param(e, marks=_marks(e), id=e.name) for e in ENTRIES if _sampled(e)])
def test_hypergradient(entry):
    """The final loss's gradient with respect to every float leaf is finite and matches a finite difference."""
    rebuild, x0, names = _split(entry.make())
    value_and_grad = jax.jit(jax.value_and_grad(_final_loss(entry, rebuild)))
    value, grads = value_and_grad(x0)
    assert np.isfinite(value), f"{entry.name}: the forward loss is {value}"
    bad = {n: np.asarray(g).tolist() for n, g in zip(names, grads) if not np.all(np.isfinite(g))}
    assert not bad, f"{entry.name}: hypergradient not finite: {bad}"
    if entry.name in NOT_DIFFERENTIABLE or not x0:
        return
    step = FD_STEP.get(entry.name, (REL_STEP, ""))[0]
    rng = np.random.default_rng(zlib.crc32(entry.name.encode()))
    direction = [rng.normal(size=x.shape) * np.abs(np.asarray(x, np.float64)) for x in x0]
    directional = sum(float(np.sum(np.asarray(g, np.float64) * d)) for g, d in zip(grads, direction))
    plus, minus = (
        float(value_and_grad(tuple(_shifted(x, s * step * d) for x, d in zip(x0, direction)))[0])
        for s in (1, -1)
    )
    finite_difference = (plus - minus) / (2 * step)
    assert abs(directional - finite_difference) <= RTOL * max(abs(directional), abs(finite_difference)) + ATOL, (
        f"{entry.name}: directional derivative {directional!r}, central finite difference {finite_difference!r}"
    )


def test_problem_has_an_exact_zero_gradient_coordinate():
    """``w[0, 0]``'s gradient is exactly 0 wherever the parameters are, and the other coordinates' are not."""
    for problem in (FULL, SMALL):
        for params in (problem.params, jax.tree.map(lambda x: 3.0 * x + 1.0, problem.params)):
            g = problem.grad(params)["w"]
            assert g[0, 0] == 0 and np.all(np.asarray(g).ravel()[1:] != 0)


@pytest.mark.parametrize("sqrt", [jnp.sqrt, safe_sqrt], ids=["jnp.sqrt", "safe_sqrt"])
def test_problem_exposes_the_root_at_zero(sqrt):
    """The problem reaches what issue 15 is about: Adam's ``m / (sqrt(v) + eps)`` written with ``jnp.sqrt``
    has a NaN hypergradient here (``v = 0`` at ``w[0, 0]``), with the double-``where`` root a finite one."""

    def final_loss(b2):
        p, m, v = SMALL.params, *(jax.tree.map(jnp.zeros_like, SMALL.params) for _ in range(2))
        for _ in range(STEPS):
            g = SMALL.grad(p)
            m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
            v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
            p = jax.tree.map(lambda p, m, v: p - 0.1 * m / (sqrt(v) + 1e-8), p, m, v)
        return SMALL.loss(p)

    g = jax.grad(final_loss)(jnp.asarray(0.999))
    assert np.isfinite(final_loss(0.999))
    assert np.isfinite(g) == (sqrt is safe_sqrt)


def test_declared_entries_exist():
    """The dicts of this file name registry entries only (a renamed or removed entry fails here)."""
    for name in [*NOT_DIFFERENTIABLE, *FD_STEP, *CORE_PENDING]:
        assert name in ENTRY_IDS, f"{name!r} is declared in tests/test_hypergradients.py but is no registry entry"
    assert not set(NOT_DIFFERENTIABLE) & (set(CORE_PENDING) | set(FD_STEP))
