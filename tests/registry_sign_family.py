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
from registry import OPT, WD_MASK, Entry

from gradtx import schedules
from gradtx.optimizers import sign_family as opt
from gradtx.testing import reference
from gradtx.testing import reference_sign_family as ref
from gradtx.transforms import sign_family as blocks

VALUE = {"value": jnp.float32(1.0)}  # the loss passed to the Polyak blocks


def _sched():
    return schedules.exponential_decay(0.1, 20, 0.5, 5, False, 0.005)


def _ref_sched():
    return reference.exponential_decay(0.1, 20, 0.5, 5, False, 0.005)


def _opt_sched():
    return optax.exponential_decay(0.1, 20, 0.5, 5, False, 0.005)


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
    Entry("scale_by_lion", blocks.scale_by_lion, ref.scale_by_lion, optax.scale_by_lion),
    Entry("scale_by_lion(b1, b2)", lambda: blocks.scale_by_lion(0.5, 0.9), lambda: ref.scale_by_lion(0.5, 0.9),
          lambda: optax.scale_by_lion(0.5, 0.9)),
    Entry("scale_by_lion(smooth)", lambda: blocks.scale_by_lion(0.8, 0.95, mode="smooth", smooth_beta=2.0),
          lambda: ref.scale_by_lion(0.8, 0.95, mode="smooth", smooth_beta=2.0),
          lambda: optax.scale_by_lion(0.8, 0.95, mode="smooth", smooth_beta=2.0)),
    Entry("scale_by_lion(refined)", lambda: blocks.scale_by_lion(mode="refined"),
          lambda: ref.scale_by_lion(mode="refined"), lambda: optax.scale_by_lion(mode="refined")),
    # bfloat16 momentum: contract only. No float64 reference (the rounding of m is the point) and no Optax
    # cross-check: Optax rounds b1 * m to bfloat16 before adding (1 - b1) * g, gradtx computes in float32, so
    # a near-zero interpolation can take the other sign (tests/test_sign_family.py checks gradtx's formula).
    Entry("scale_by_lion(mu_dtype=bfloat16)", lambda: blocks.scale_by_lion(mu_dtype=jnp.bfloat16)),
    Entry("scale_by_adadelta", blocks.scale_by_adadelta, ref.scale_by_adadelta, optax.scale_by_adadelta),
    Entry("scale_by_adadelta(rho, eps)", lambda: blocks.scale_by_adadelta(0.5, 1e-3),
          lambda: ref.scale_by_adadelta(0.5, 1e-3), lambda: optax.scale_by_adadelta(0.5, 1e-3)),
    Entry("scale_by_rprop", lambda: blocks.scale_by_rprop(0.1), lambda: ref.scale_by_rprop(0.1),
          lambda: _optax_rprop_current(0.1)),
    Entry("scale_by_rprop(growing)", lambda: blocks.scale_by_rprop(0.01, 0.9, 1.3, 1e-4, 0.5),
          lambda: ref.scale_by_rprop(0.01, 0.9, 1.3, 1e-4, 0.5),
          lambda: _optax_rprop_current(0.01, 0.9, 1.3, 1e-4, 0.5)),
    Entry("scale_by_optimistic_gradient", blocks.scale_by_optimistic_gradient, ref.scale_by_optimistic_gradient,
          optax.scale_by_optimistic_gradient),
    Entry("scale_by_optimistic_gradient(alpha, beta)", lambda: blocks.scale_by_optimistic_gradient(0.5, 2.0),
          lambda: ref.scale_by_optimistic_gradient(0.5, 2.0), lambda: optax.scale_by_optimistic_gradient(0.5, 2.0)),
    Entry("scale_by_novograd", blocks.scale_by_novograd, ref.scale_by_novograd, optax.scale_by_novograd,
          needs_params=True, per_leaf=True),
    Entry("scale_by_novograd(all options)", lambda: blocks.scale_by_novograd(0.5, 0.9, 1e-3, 1e-4, 0.1),
          lambda: ref.scale_by_novograd(0.5, 0.9, 1e-3, 1e-4, 0.1),
          lambda: optax.scale_by_novograd(0.5, 0.9, 1e-3, 1e-4, 0.1), needs_params=True, per_leaf=True),
    Entry("scale_by_polyak", blocks.scale_by_polyak, ref.scale_by_polyak, optax.scale_by_polyak,
          extra_args=VALUE),
    Entry("scale_by_polyak(f_min, cap, eps)", lambda: blocks.scale_by_polyak(0.5, 0.3, 1e-2),
          lambda: ref.scale_by_polyak(0.5, 0.3, 1e-2), lambda: optax.scale_by_polyak(0.5, 0.3, 1e-2),
          extra_args={"value": jnp.float32(2.5)}),
    Entry("scale_by_polyak(sps, loss below f_min)", lambda: blocks.scale_by_polyak(0.5),
          lambda: ref.scale_by_polyak(0.5), lambda: optax.scale_by_polyak(0.5), extra_args={"value": jnp.float32(0.2)}),
    Entry("scale_by_polyak(sps+, loss below f_min)", lambda: blocks.scale_by_polyak(0.5, variant="sps+"),
          lambda: ref.scale_by_polyak(0.5, variant="sps+"), lambda: optax.scale_by_polyak(0.5, variant="sps+"),
          extra_args={"value": jnp.float32(0.2)}),
    Entry("scale_by_polyak(sps+)", lambda: blocks.scale_by_polyak(0.1, 2.0, variant="sps+"),
          lambda: ref.scale_by_polyak(0.1, 2.0, variant="sps+"),
          lambda: optax.scale_by_polyak(0.1, 2.0, variant="sps+"), extra_args=VALUE),
    # --- optimizers -----------------------------------------------------------------------------------
    Entry("lion", lambda: opt.lion(1e-3), lambda: ref.lion(1e-3), lambda: optax.lion(1e-3), needs_params=True,
          kind=OPT),
    Entry("lion(schedule, mask)", lambda: opt.lion(_sched(), 0.8, 0.9, weight_decay=0.1, mask=WD_MASK),
          lambda mask=None: ref.lion(_ref_sched(), 0.8, 0.9, weight_decay=0.1, mask=mask),
          lambda: optax.lion(_opt_sched(), 0.8, 0.9, weight_decay=0.1, mask=WD_MASK),
          needs_params=True, uses_mask=True, kind=OPT),
    # Optax's adadelta(learning_rate=None) moves uphill (identity in place of the sign flip): no cross-check.
    Entry("adadelta", opt.adadelta, ref.adadelta, None, needs_params=True, kind=OPT),
    Entry("adadelta(lr, rho, eps, wd)", lambda: opt.adadelta(0.5, 0.8, 1e-4, 0.1),
          lambda: ref.adadelta(0.5, 0.8, 1e-4, 0.1), lambda: optax.adadelta(0.5, 0.8, 1e-4, 0.1),
          needs_params=True, kind=OPT),
    Entry("adadelta(schedule, mask)", lambda: opt.adadelta(_sched(), weight_decay=0.1, weight_decay_mask=WD_MASK),
          lambda mask=None: ref.adadelta(_ref_sched(), weight_decay=0.1, weight_decay_mask=mask),
          lambda: optax.adadelta(_opt_sched(), weight_decay=0.1, weight_decay_mask=WD_MASK),
          needs_params=True, uses_mask=True, kind=OPT),
    Entry("rprop", lambda: opt.rprop(0.1), lambda: ref.rprop(0.1),
          lambda: optax.chain(_optax_rprop_current(0.1), optax.scale(-1.0)), kind=OPT),
    Entry("rprop(growing)", lambda: opt.rprop(0.05, 0.9, 1.3, 1e-3, 0.5), lambda: ref.rprop(0.05, 0.9, 1.3, 1e-3, 0.5),
          lambda: optax.chain(_optax_rprop_current(0.05, 0.9, 1.3, 1e-3, 0.5), optax.scale(-1.0)), kind=OPT),
    Entry("optimistic_gradient_descent", lambda: opt.optimistic_gradient_descent(0.1),
          lambda: ref.optimistic_gradient_descent(0.1), lambda: optax.optimistic_gradient_descent(0.1), kind=OPT),
    Entry("optimistic_gradient_descent(schedule, alpha, beta)",
          lambda: opt.optimistic_gradient_descent(_sched(), 0.5, 2.0),
          lambda: ref.optimistic_gradient_descent(_ref_sched(), 0.5, 2.0),
          lambda: optax.optimistic_gradient_descent(_opt_sched(), 0.5, 2.0), kind=OPT),
    Entry("optimistic_adam", lambda: _gradtx_optimistic_adam(1e-2), lambda: ref.optimistic_adam(1e-2),
          lambda: _optax_optimistic_adam(1e-2), kind=OPT),
    Entry("optimistic_adam(optimism, no nesterov)", lambda: _gradtx_optimistic_adam(1e-2, 0.5, nesterov=False),
          lambda: ref.optimistic_adam(1e-2, 0.5, nesterov=False),
          lambda: _optax_optimistic_adam(1e-2, 0.5, nesterov=False), kind=OPT),
    Entry("optimistic_adam_v2", lambda: opt.optimistic_adam_v2(1e-2), lambda: ref.optimistic_adam_v2(1e-2),
          lambda: optax.optimistic_adam_v2(1e-2), kind=OPT),
    Entry("optimistic_adam_v2(schedule, alpha, beta)",
          lambda: opt.optimistic_adam_v2(_sched(), alpha=0.5, beta=0.3, b1=0.8, eps_root=1e-8, nesterov=False),
          lambda: ref.optimistic_adam_v2(_ref_sched(), alpha=0.5, beta=0.3, b1=0.8, eps_root=1e-8, nesterov=False),
          lambda: optax.optimistic_adam_v2(_opt_sched(), alpha=0.5, beta=0.3, b1=0.8, eps_root=1e-8, nesterov=False),
          kind=OPT),
    Entry("novograd", lambda: opt.novograd(1e-2), lambda: ref.novograd(1e-2), lambda: optax.novograd(1e-2),
          needs_params=True, per_leaf=True, kind=OPT),
    Entry("novograd(schedule, wd)", lambda: opt.novograd(_sched(), 0.8, 0.5, 1e-4, 1e-6, 0.1),
          lambda: ref.novograd(_ref_sched(), 0.8, 0.5, 1e-4, 1e-6, 0.1),
          lambda: optax.novograd(_opt_sched(), 0.8, 0.5, 1e-4, 1e-6, 0.1),
          needs_params=True, per_leaf=True, kind=OPT),
    Entry("polyak_sgd", opt.polyak_sgd, ref.polyak_sgd, optax.polyak_sgd, extra_args=VALUE, kind=OPT),
    Entry("polyak_sgd(sps+, cap, f_min, eps)", lambda: opt.polyak_sgd(0.5, 1.0, 0.1, 1e-3, "sps+"),
          lambda: ref.polyak_sgd(0.5, 1.0, 0.1, 1e-3, "sps+"), lambda: optax.polyak_sgd(0.5, 1.0, 0.1, 1e-3, "sps+"),
          extra_args=VALUE, kind=OPT),
    # scaling != 1: Optax applies the scaling before the Polyak step (not its documented formula): no cross-check.
    Entry("polyak_sgd(scaling schedule)", lambda: opt.polyak_sgd(2.0, _sched()),
          lambda: ref.polyak_sgd(2.0, _ref_sched()), None, extra_args=VALUE, kind=OPT),
    Entry("sign_sgd", lambda: opt.sign_sgd(0.1), lambda: ref.sign_sgd(0.1), lambda: optax.sign_sgd(0.1), kind=OPT),
    Entry("sign_sgd(schedule)", lambda: opt.sign_sgd(_sched()), lambda: ref.sign_sgd(_ref_sched()),
          lambda: optax.sign_sgd(_opt_sched()), kind=OPT),
    Entry("signum", lambda: opt.signum(0.1), lambda: ref.signum(0.1), lambda: optax.signum(0.1), kind=OPT),
    Entry("signum(beta, schedule)", lambda: opt.signum(_sched(), 0.5), lambda: ref.signum(_ref_sched(), 0.5),
          lambda: optax.signum(_opt_sched(), 0.5), kind=OPT),
]
