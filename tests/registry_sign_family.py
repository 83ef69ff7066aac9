"""Registry entries of the sign family: Lion, Adadelta, Rprop, optimistic gradient, NovoGrad, Polyak, signSGD.

Where Optax 0.2.8 differs from gradtx on purpose the entry either compares in the settings where the two
agree, or leaves ``optax=None`` and says why (see also tests/test_sign_family.py):

- ``adadelta(learning_rate=None)``: Optax's ascends (identity instead of the sign flip); explicit learning
  rates are cross-checked.
- ``scale_by_rprop`` / ``rprop``: Optax's update is the previous step (its PR #1725); the cross-check runs
  against Optax's transformation with the update read from its new state (``prev_updates``, the step it has
  just computed), which checks the step sizes, the state names and the update.
- ``polyak_sgd(scaling != 1)``: Optax scales before the Polyak step; cross-checked with ``scaling=1``.
- ``scale_by_lion(mu_dtype=bfloat16)``: Optax rounds ``b1 * m`` to bfloat16, gradtx does not (contract only).
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import optax
from registry import MASK, OPT, Entry, Sched, Sides

from gradtx.optimizers import sign_family as opt
from gradtx.testing.reference import sign_family as ref
from gradtx.transforms import sign_family as blocks

same = Sides((blocks, opt), (ref,), (optax,)).same
VALUE = {"value": jnp.float32(1.0)}  # the loss passed to the Polyak blocks
DECAY = Sched("exponential_decay", 0.1, 20, 0.5, 5, False, 0.005)  # this family's schedule


def _optax_rprop_current(learning_rate, *args):
    """Optax's scale_by_rprop, emitting the step it has just computed (its new ``prev_updates``)."""
    tx = optax.scale_by_rprop(learning_rate, *args)

    def update(updates, state, params=None):
        _, new_state = tx.update(updates, state, params)
        return new_state.prev_updates, new_state

    return optax.GradientTransformation(tx.init, update)


def _optax_optimistic_adam(*args, **kwargs):
    with warnings.catch_warnings():  # Optax deprecates this interface (gradtx warns the same way)
        warnings.simplefilter("ignore", DeprecationWarning)
        return optax.optimistic_adam(*args, **kwargs)


def _gradtx_optimistic_adam(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return opt.optimistic_adam(*args, **kwargs)


ENTRIES = [
    # --- blocks ---------------------------------------------------------------------------------------
    same("scale_by_lion"),
    same("scale_by_lion(b1, b2)", "scale_by_lion", 0.5, 0.9),
    same("scale_by_lion(smooth)", "scale_by_lion", 0.8, 0.95, mode="smooth", smooth_beta=2.0),
    same("scale_by_lion(refined)", "scale_by_lion", mode="refined"),
    # bfloat16 momentum: contract only. No float64 reference (the rounding of m is the point) and no Optax
    # cross-check: Optax rounds b1 * m to bfloat16 before adding (1 - b1) * g, gradtx computes in float32, so
    # a near-zero interpolation can take the other sign (tests/test_sign_family.py checks gradtx's formula).
    Entry("scale_by_lion(mu_dtype=bfloat16)", lambda: blocks.scale_by_lion(mu_dtype=jnp.bfloat16)),
    same("scale_by_adadelta"),
    same("scale_by_adadelta(rho, eps)", "scale_by_adadelta", 0.5, 1e-3),
    same("scale_by_rprop", "scale_by_rprop", 0.1, optax=lambda: _optax_rprop_current(0.1)),
    same("scale_by_rprop(growing)", "scale_by_rprop", 0.01, 0.9, 1.3, 1e-4, 0.5,
         optax=lambda: _optax_rprop_current(0.01, 0.9, 1.3, 1e-4, 0.5)),
    same("scale_by_optimistic_gradient"),
    same("scale_by_optimistic_gradient(alpha, beta)", "scale_by_optimistic_gradient", 0.5, 2.0),
    same("scale_by_novograd", needs_params=True, per_leaf=True, leaf_structured=True),
    same("scale_by_novograd(all options)", "scale_by_novograd", 0.5, 0.9, 1e-3, 1e-4, 0.1, needs_params=True,
         per_leaf=True, leaf_structured=True),
    same("scale_by_polyak", extra_args=VALUE),
    same("scale_by_polyak(f_min, cap, eps)", "scale_by_polyak", 0.5, 0.3, 1e-2, extra_args={"value": jnp.float32(2.5)}),
    same("scale_by_polyak(sps, loss below f_min)", "scale_by_polyak", 0.5, extra_args={"value": jnp.float32(0.2)}),
    same("scale_by_polyak(sps+, loss below f_min)", "scale_by_polyak", 0.5, variant="sps+",
         extra_args={"value": jnp.float32(0.2)}),
    same("scale_by_polyak(sps+)", "scale_by_polyak", 0.1, 2.0, variant="sps+", extra_args=VALUE),
    # --- optimizers -----------------------------------------------------------------------------------
    same("lion", "lion", 1e-3, needs_params=True, kind=OPT),
    same("lion(schedule, mask)", "lion", DECAY, 0.8, 0.9, weight_decay=0.1, mask=MASK, needs_params=True, kind=OPT,
         leaf_structured=True),
    # Optax's adadelta(learning_rate=None) moves uphill (identity in place of the sign flip): no cross-check.
    same("adadelta", optax=None, needs_params=True, kind=OPT),
    same("adadelta(lr, rho, eps, wd)", "adadelta", 0.5, 0.8, 1e-4, 0.1, needs_params=True, kind=OPT),
    same("adadelta(schedule, mask)", "adadelta", DECAY, weight_decay=0.1, weight_decay_mask=MASK, needs_params=True,
         kind=OPT, leaf_structured=True),
    same("rprop", "rprop", 0.1, optax=lambda: optax.chain(_optax_rprop_current(0.1), optax.scale(-1.0)), kind=OPT),
    same("rprop(growing)", "rprop", 0.05, 0.9, 1.3, 1e-3, 0.5,
         optax=lambda: optax.chain(_optax_rprop_current(0.05, 0.9, 1.3, 1e-3, 0.5), optax.scale(-1.0)), kind=OPT),
    same("optimistic_gradient_descent", "optimistic_gradient_descent", 0.1, kind=OPT),
    same("optimistic_gradient_descent(schedule, alpha, beta)", "optimistic_gradient_descent", DECAY, 0.5, 2.0,
         kind=OPT),
    Entry("optimistic_adam", lambda: _gradtx_optimistic_adam(1e-2), lambda: ref.optimistic_adam(1e-2),
          lambda: _optax_optimistic_adam(1e-2), kind=OPT),
    Entry("optimistic_adam(optimism, no nesterov)", lambda: _gradtx_optimistic_adam(1e-2, 0.5, nesterov=False),
          lambda: ref.optimistic_adam(1e-2, 0.5, nesterov=False),
          lambda: _optax_optimistic_adam(1e-2, 0.5, nesterov=False), kind=OPT),
    same("optimistic_adam_v2", "optimistic_adam_v2", 1e-2, kind=OPT),
    same("optimistic_adam_v2(schedule, alpha, beta)", "optimistic_adam_v2", DECAY, alpha=0.5, beta=0.3, b1=0.8,
         eps_root=1e-8, nesterov=False, kind=OPT),
    same("novograd", "novograd", 1e-2, needs_params=True, per_leaf=True, kind=OPT, leaf_structured=True),
    same("novograd(schedule, wd)", "novograd", DECAY, 0.8, 0.5, 1e-4, 1e-6, 0.1, needs_params=True, per_leaf=True,
         kind=OPT, leaf_structured=True),
    same("polyak_sgd", extra_args=VALUE, kind=OPT),
    same("polyak_sgd(sps+, cap, f_min, eps)", "polyak_sgd", 0.5, 1.0, 0.1, 1e-3, "sps+", extra_args=VALUE, kind=OPT),
    # scaling != 1: Optax applies the scaling before the Polyak step (not its documented formula): no cross-check.
    same("polyak_sgd(scaling schedule)", "polyak_sgd", 2.0, DECAY, optax=None, extra_args=VALUE, kind=OPT),
    same("sign_sgd", "sign_sgd", 0.1, kind=OPT),
    same("sign_sgd(schedule)", "sign_sgd", DECAY, kind=OPT),
    same("signum", "signum", 0.1, kind=OPT),
    same("signum(beta, schedule)", "signum", DECAY, 0.5, kind=OPT),
]
