"""Registry entries for gradtx.contrib's normalize, split_real_and_imaginary, sam, schedule_free and sophia.

Not here (tested in tests/test_contrib_misc.py instead): ``differentially_private_aggregate`` and ``dpsgd``, whose
updates take per-example gradients with a leading batch axis and return updates without it, which the tiers'
"updates have the shape of the gradients" contract cannot express.

Sophia's Hutchinson estimator draws random signs from JAX's PRNG, which no NumPy reference can reproduce; its
entries use the separable loss ``obj_fn = sum(x^4) / 12``, whose Hessian is diagonal, so ``r * (H r) = diag(H) =
x^2`` exactly for every sign vector ``r``: the reference uses that diagonal and the flat path (other random signs)
gives the per-leaf result.

Schedule-Free's entries have no ``optax`` field: their updates ``y_{t+1} - y_t`` are small differences of O(1)
parameters, which Optax computes with a float32 cancellation error of about 1 ulp of the parameters (1e-7 absolute,
more than the generic cross-check's ``1e-5 * max|u|``; gradtx computes the difference without the cancellation).
tests/test_contrib_misc.py cross-checks them against Optax on the same gradient stream in float64 instead.

Schedule-Free's reference is given the parameters ``init`` saw (``z0``: the tiers call ``init`` on
``default_params`` and then feed unrelated random parameters, which Schedule-Free reads as ``y``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from registry import OPT, Call, Entry, Sides

import gradtx
from gradtx import tree
from gradtx.contrib import _complex_valued, _sam, _schedule_free, _sophia
from gradtx.testing import reference as ref_base
from gradtx.testing.contract import default_params
from gradtx.testing.reference import contrib_misc as ref

same = Sides((_complex_valued, _sam, _schedule_free, _sophia, gradtx), (ref, ref_base),
             (optax.contrib, optax.contrib._sophia, optax)).same


def quartic(params):
    """sum(x^4) / 12 over every leaf (Hessian diag(x^2), exact under Hutchinson), accumulated in float32+."""
    leaves = [tree.up(x) for x in jax.tree.leaves(params)]
    total = jnp.zeros([], tree.widest_real_dtype(params))
    for x in leaves:
        total = total + jnp.sum(x**4).astype(total.dtype)
    return total / 12


def quartic_diag(p):
    return p * p


def cubic_grad(params, i):
    """A gradient field for SAM's opaque mode (g = x^3 - x / 2), on pytrees and on NumPy vectors alike."""
    del i
    return jax.tree.map(lambda x: x * x * x - 0.5 * x, params)


def _z0():
    return np.asarray(ravel_pytree(default_params(jnp.float64))[0], np.float64)


ENTRIES = [
    same("contrib.normalize", "normalize", complex_ok=True),
    same("split_real_and_imaginary(adam)", "split_real_and_imaginary", Call("adam", 1e-2), kind=OPT, complex_ok=True),
    same("split_real_and_imaginary(chain(normalize, sgd))", "split_real_and_imaginary",
         Call("chain", Call("normalize"), Call("sgd", 0.1, 0.9)), kind=OPT, complex_ok=True),
    # SAM's reference takes a builder of the adversarial optimizer (it restarts it when ``reset_state``).
    Entry("sam(sgd, normalize+sgd)",
          lambda: _sam.sam(gradtx.sgd(0.1), gradtx.chain(_sam.normalize(), gradtx.sgd(0.05))),
          lambda: ref.sam(ref_base.sgd(0.1), lambda: ref_base.chain(ref.normalize(), ref_base.sgd(0.05))),
          lambda: optax.contrib.sam(optax.sgd(0.1), optax.chain(optax.contrib.normalize(), optax.sgd(0.05))),
          needs_params=True, kind=OPT),
    Entry("sam(adam, adam, sync_period=3, keep state)",
          lambda: _sam.sam(gradtx.adam(1e-2), gradtx.adam(1e-2, b1=0.5), sync_period=3, reset_state=False),
          lambda: ref.sam(ref_base.adam(1e-2), lambda: ref_base.adam(1e-2, b1=0.5), sync_period=3, reset_state=False),
          lambda: optax.contrib.sam(optax.adam(1e-2), optax.adam(1e-2, b1=0.5), sync_period=3, reset_state=False),
          needs_params=True, kind=OPT),
    Entry("sam(opaque, sync_period=3)",
          lambda: _sam.sam(gradtx.sgd(0.1, 0.9), gradtx.chain(_sam.normalize(), gradtx.sgd(0.05)), sync_period=3,
                           opaque_mode=True),
          lambda: ref.sam(ref_base.sgd(0.1, 0.9), lambda: ref_base.chain(ref.normalize(), ref_base.sgd(0.05)),
                          sync_period=3, opaque_mode=True),
          lambda: optax.contrib.sam(optax.sgd(0.1, 0.9), optax.chain(optax.contrib.normalize(), optax.sgd(0.05)),
                                    sync_period=3, opaque_mode=True),
          needs_params=True, kind=OPT, extra_args={"grad_fn": cubic_grad}),
    Entry("schedule_free(adam b1=0)", lambda: _schedule_free.schedule_free(gradtx.adam(1e-2, b1=0.0), 1e-2, b1=0.95),
          lambda: ref.schedule_free(ref_base.adam(1e-2, b1=0.0), 1e-2, b1=0.95, z0=_z0()),
          needs_params=True, kind=OPT),
    Entry("schedule_free_sgd(warmup, weight_decay)",
          lambda: _schedule_free.schedule_free_sgd(0.1, warmup_steps=10, weight_decay=0.01),
          lambda: ref.schedule_free_sgd(0.1, warmup_steps=10, weight_decay=0.01, z0=_z0()),
          needs_params=True, kind=OPT),
    Entry("schedule_free_sgd", lambda: _schedule_free.schedule_free_sgd(0.1, b1=0.8),
          lambda: ref.schedule_free_sgd(0.1, b1=0.8, z0=_z0()),
          needs_params=True, kind=OPT),
    Entry("schedule_free_adamw(warmup, weight_decay)",
          lambda: _schedule_free.schedule_free_adamw(1e-2, warmup_steps=5, weight_decay=0.1, weight_lr_power=1.0),
          lambda: ref.schedule_free_adamw(1e-2, warmup_steps=5, weight_decay=0.1, weight_lr_power=1.0, z0=_z0()),
          needs_params=True, kind=OPT),
    # Sophia's reference reads the Hessian's diagonal (``hessian_diag``) where gradtx and Optax estimate it.
    Entry("scale_by_sophia(update_interval=3)",
          lambda: _sophia.scale_by_sophia(0.9, 0.95, 1e-8, 0.5, 1.0, 3),
          lambda: ref.scale_by_sophia(0.9, 0.95, 1e-8, 0.5, 1.0, 3, hessian_diag=quartic_diag),
          lambda: optax.contrib._sophia.scale_by_sophia(0.9, 0.95, 1e-8, 0.5, 1.0, 3),
          needs_params=True, extra_args={"obj_fn": quartic}),
    Entry("sophia", lambda: _sophia.sophia(0.05, gamma=0.5, update_interval=4, weight_decay=0.1),
          lambda: ref.sophia(0.05, gamma=0.5, update_interval=4, weight_decay=0.1, hessian_diag=quartic_diag),
          lambda: optax.contrib.sophia(0.05, gamma=0.5, update_interval=4, weight_decay=0.1),
          needs_params=True, kind=OPT, extra_args={"obj_fn": quartic}),
    Entry("sophia(clip_threshold=None)",
          lambda: _sophia.sophia(0.01, clip_threshold=None, gamma=5.0, eps=1e-3, update_interval=1),
          lambda: ref.sophia(0.01, clip_threshold=None, gamma=5.0, eps=1e-3, update_interval=1,
                             hessian_diag=quartic_diag),
          lambda: optax.contrib.sophia(0.01, clip_threshold=None, gamma=5.0, eps=1e-3, update_interval=1),
          needs_params=True, kind=OPT, extra_args={"obj_fn": quartic}),
]
