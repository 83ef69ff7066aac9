"""Registry entries of the wrappers (gradtx.wrappers): wrapped adam / sgd / adamw variants.

The float64 oracles compose ``gradtx.testing.reference.wrappers`` with the foundation's references.
``MultiSteps`` stores its accumulator in float32 by default (Optax's default), so against the float64
reference its entries with the default ``accumulator_dtype`` get a float32-level tolerance; the others store
it in the parameter dtype (``accumulator_dtype=None``). Their Optax side says ``jnp.float32`` instead, which
is what ``None`` means for the float32 parameters of the cross-check: Optax's ``None`` fails under x64 (its
``astype(None)`` gives float64 in one ``lax.cond`` branch and float32 in the other).

Not here, tested in tests/test_wrappers.py instead: ``lookahead`` (its params and updates are
``LookaheadParams``, not the gradients' tree the tiers feed), ``measure_with_ema`` alone (its output is the
measurement, not an update shaped like the gradients; it is here inside ``monitor``), ``monitor`` against
Optax (Optax's ``MonitorState.measurements`` starts as ``{}``, so the state paths after ``init`` differ).
Entries with ``extra_args`` need a reference that takes them, so they wrap ``reference.wrappers`` classes;
tests/test_wrappers.py checks that extra arguments reach the inner transformation through every wrapper.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import optax
from registry import OPT, SCHED, WD_MASK, Call, Entry, Sides

import gradtx
from gradtx import wrappers
from gradtx.combine import chain
from gradtx.testing import reference as ref
from gradtx.testing.reference import wrappers as rw
from gradtx.wrappers import (
    MultiSteps,
    inject_hyperparams,
    measure_with_ema,
    monitor,
    skip_large_updates,
    snapshot,
)

same = Sides((wrappers, gradtx), (rw, ref), (optax,)).same
VALUE = {"value": jnp.float32(1.5)}


def k_schedule(gradient_step):
    """Two mini-steps per update for the first 10 updates, then three (jit-friendly)."""
    return jnp.where(gradient_step < 10, 2, 3)


def ref_k_schedule(gradient_step):
    return 2 if gradient_step < 10 else 3


ENTRIES = [
    # --- MultiSteps ------------------------------------------------------------------------------------
    same("MultiSteps(adam, 3)", "MultiSteps", Call("adam", 1e-2), 3, kind=OPT, rtol64=1e-5, steps=240),
    same("MultiSteps(adam, 1)", "MultiSteps", Call("adam", 1e-2), 1, kind=OPT,
         leaf_structured=True),  # a per-leaf placeholder in the state (the updates themselves agree)
    Entry("MultiSteps(sgd momentum, 4, sum, param dtype)",
          lambda: MultiSteps(gradtx.sgd(0.01, 0.9), 4, use_grad_mean=False, accumulator_dtype=None),
          lambda: rw.MultiSteps(ref.sgd(0.01, 0.9), 4, use_grad_mean=False),
          lambda: optax.MultiSteps(optax.sgd(0.01, 0.9), 4, use_grad_mean=False, accumulator_dtype=jnp.float32),
          kind=OPT, steps=240),
    Entry("MultiSteps(adamw, k schedule, value)",
          lambda: MultiSteps(gradtx.adamw(1e-2, weight_decay=0.1), k_schedule, accumulator_dtype=None),
          lambda: rw.MultiSteps(ref.adamw(1e-2, weight_decay=0.1), ref_k_schedule),
          lambda: optax.MultiSteps(optax.adamw(1e-2, weight_decay=0.1), k_schedule, accumulator_dtype=jnp.float32),
          needs_params=True, kind=OPT, extra_args=VALUE, steps=240),
    Entry("MultiSteps(adam, 2, skip_large_updates)",
          lambda: MultiSteps(gradtx.adam(1e-2), 2,
                             should_skip_update_fn=functools.partial(skip_large_updates,
                                                                     max_squared_norm=1e12)),
          lambda: rw.MultiSteps(ref.adam(1e-2), 2), kind=OPT, rtol64=1e-5, nonfinite="guard"),
    # --- apply_if_finite, flatten -----------------------------------------------------------------------
    same("apply_if_finite(adam, 3)", "apply_if_finite", Call("adam", 1e-2), 3, kind=OPT, extra_args=VALUE,
         nonfinite="guard"),
    same("flatten(adam)", "flatten", Call("adam", 1e-2), kind=OPT, extra_args=VALUE),
    # The float64 references of flatten(inner) and of the next entries are the inner optimizer's.
    Entry("flatten(sgd nesterov, schedule)", lambda: gradtx.flatten(gradtx.sgd(SCHED.gradtx(), 0.9, nesterov=True)),
          lambda: ref.sgd(SCHED.ref(), 0.9, nesterov=True),
          lambda: optax.flatten(optax.sgd(SCHED.optax(), 0.9, nesterov=True)), kind=OPT),
    # --- inject_hyperparams -------------------------------------------------------------------------------
    Entry("inject_hyperparams(adam)", lambda: inject_hyperparams(gradtx.adam)(learning_rate=1e-2),
          lambda: ref.adam(1e-2), lambda: optax.inject_hyperparams(optax.adam)(learning_rate=1e-2), kind=OPT),
    Entry("inject_hyperparams(adam, schedule)", lambda: inject_hyperparams(gradtx.adam)(SCHED.gradtx(), b2=0.99),
          lambda: ref.adam(SCHED.ref(), b2=0.99),
          lambda: optax.inject_hyperparams(optax.adam)(SCHED.optax(), b2=0.99), kind=OPT),
    Entry("inject_hyperparams(sgd nesterov)", lambda: inject_hyperparams(gradtx.sgd)(0.1, 0.9, nesterov=True),
          lambda: ref.sgd(0.1, 0.9, nesterov=True),
          lambda: optax.inject_hyperparams(optax.sgd)(0.1, 0.9, nesterov=True), kind=OPT),
    Entry("inject_hyperparams(adamw, mask)",
          lambda: inject_hyperparams(gradtx.adamw)(1e-2, weight_decay=0.1, mask=WD_MASK),
          lambda mask=None: ref.adamw(1e-2, weight_decay=0.1, mask=mask),
          lambda: optax.inject_hyperparams(optax.adamw)(1e-2, weight_decay=0.1, mask=WD_MASK),
          needs_params=True, uses_mask=True, kind=OPT, leaf_structured=True),
    Entry("inject_hyperparams(scale_by_adam)", lambda: inject_hyperparams(gradtx.scale_by_adam)(b1=0.8, eps=1e-6),
          lambda: ref.scale_by_adam(b1=0.8, eps=1e-6),
          lambda: optax.inject_hyperparams(optax.scale_by_adam)(b1=0.8, eps=1e-6)),
    # --- monitoring -----------------------------------------------------------------------------------------
    Entry("chain(adam, snapshot)", lambda: chain(gradtx.adam(1e-2), snapshot("norm", gradtx.tree.norm)),
          lambda: ref.adam(1e-2), lambda: optax.chain(optax.adam(1e-2), optax.snapshot("norm", optax.tree.norm)),
          kind=OPT),
    Entry("chain(monitor, adam)",
          lambda: chain(monitor({"norm": gradtx.tree.norm, "ema": measure_with_ema(gradtx.tree.norm, 0.9),
                                 "clipped": measure_with_ema(lambda u: gradtx.tree.norm(u) > 3.0, 0.8)}),
                        gradtx.adam(1e-2)),
          lambda: ref.adam(1e-2), kind=OPT),
]
