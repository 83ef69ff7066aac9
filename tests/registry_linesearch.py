"""Registry entries of the L-BFGS family (see tests/registry.py): the contract and fuzz tiers only.

``scale_by_lbfgs`` and ``lbfgs(linesearch=None)`` need nothing but gradients and params, so the contract
runs them. They have no ``ref``/``optax`` here on purpose: the oracle and Optax tiers feed random gradients
at random params, whose curvature pairs ``<y, s>`` come arbitrarily close to 0, so ``rho = 1 / <y, s>``
amplifies float32 rounding to percent-level differences (any two correct implementations disagree there).
tests/test_linesearch.py compares them with the dense float64 BFGS reference and with Optax on curvature
pairs that mean something. The line searches need ``value``, ``grad`` and ``value_fn`` consistent with the
params at every step, which the contract (random gradients, fixed extra arguments) cannot supply;
tests/test_linesearch.py runs the same contract checks on them with a consistent objective.
"""

from __future__ import annotations

from registry import OPT, Entry

from gradtx.optimizers.lbfgs import lbfgs
from gradtx.transforms.lbfgs import scale_by_lbfgs

ENTRIES = [
    Entry("scale_by_lbfgs", scale_by_lbfgs, needs_params=True),
    Entry("scale_by_lbfgs(memory_size=3, scale_init_precond=False)", lambda: scale_by_lbfgs(3, False),
          needs_params=True),
    Entry("lbfgs(linesearch=None)", lambda: lbfgs(0.1, 4, linesearch=None), needs_params=True, kind=OPT),
]
