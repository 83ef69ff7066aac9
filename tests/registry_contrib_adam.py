"""Registry entries for gradtx.contrib's Adam-like optimizers (gradtx/contrib/_adam_like.py): ADOPT, AdEMAMix,
Simplified AdEMAMix, MADGRAD, ACProp, cautious, AdaBound/AMSBound, MARS-AdamW, Adam-mini.

The five that Optax has are cross-checked against ``optax.contrib`` on the same gradient stream. Cautious, MARS
and Adam-mini keep per-leaf statistics (a mask normalised per leaf, a per-leaf norm clip, per-row second
moments): their references take ``{leaf path: array}`` (``per_leaf``) and their flat runs differ
(``leaf_structured``). MADGRAD's reference is given the parameters ``init`` saw (``x0``): the tiers call ``init``
on ``default_params`` and then feed unrelated random parameters.

To fit the tiers' time budget, each optimizer has one or two entries, chosen so that every block runs through
every tier (most inside their recipe) with defaults and with non-default options.

MADGRAD's recipe entry uses a schedule that does not start at 0: with a tiny step, Optax's ``x_new - x`` loses
the update to float32 cancellation (gradtx computes ``(1 - momentum) ((x0 - x) - s / sigma)``).

AdEMAMix's ``b3`` schedule is given to Optax in float32: Optax lets a float64 schedule value promote its slow EMA
to float64 (its state dtype then changes after the first step); gradtx keeps the state dtype.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from registry import WD_MASK, Entry

from gradtx import schedules
from gradtx.contrib import _adam_like as c
from gradtx.optimizers import adam, sgd
from gradtx.testing import reference as ref_base
from gradtx.testing import reference_contrib_adam as ref
from gradtx.testing.contract import default_params

OPT = "optimizer"


def _sched():
    return schedules.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


def _ref_sched():
    return ref_base.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


def _opt_sched():
    return optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


def _x0():
    return np.asarray(ravel_pytree(default_params(jnp.float64))[0], np.float64)


def _b3(count):  # a warm-up of AdEMAMix's slow EMA rate, as the paper schedules it (closed form in NumPy and JAX)
    return 0.999 - 0.099 * 0.97 ** jnp.asarray(count).astype(jnp.float64)


def _b3_f32(count):  # Optax's state would follow a float64 schedule value to float64 (x64 is on in the tests)
    return jnp.asarray(_b3(count), jnp.float32)


ENTRIES = [
    # --- ADOPT ------------------------------------------------------------------------------------------
    Entry("scale_by_adopt", c.scale_by_adopt, ref.scale_by_adopt, optax.contrib.scale_by_adopt),
    Entry("scale_by_adopt(nesterov, no clipping)",
          lambda: c.scale_by_adopt(0.8, 0.99, nesterov=True, use_clipping=False),
          lambda: ref.scale_by_adopt(0.8, 0.99, nesterov=True, use_clipping=False),
          lambda: optax.contrib.scale_by_adopt(0.8, 0.99, nesterov=True, use_clipping=False)),
    Entry("adopt(schedule, nesterov)", lambda: c.adopt(_sched(), nesterov=True),
          lambda: ref.adopt(_ref_sched(), nesterov=True), lambda: optax.contrib.adopt(_opt_sched(), nesterov=True),
          kind=OPT),
    # --- AdEMAMix -----------------------------------------------------------------------------------------
    Entry("scale_by_ademamix", c.scale_by_ademamix, ref.scale_by_ademamix, optax.contrib.scale_by_ademamix,
          complex_ok=True),
    Entry("scale_by_ademamix(b3 schedule, eps_root)", lambda: c.scale_by_ademamix(0.8, 0.99, _b3, 3.0, 1e-6, 1e-8),
          lambda: ref.scale_by_ademamix(0.8, 0.99, _b3, 3.0, 1e-6, 1e-8),
          lambda: optax.contrib.scale_by_ademamix(0.8, 0.99, _b3_f32, 3.0, 1e-6, 1e-8)),
    Entry("ademamix(mask)", lambda: c.ademamix(1e-2, weight_decay=0.1, mask=WD_MASK),
          lambda mask=None: ref.ademamix(1e-2, weight_decay=0.1, mask=mask),
          lambda: optax.contrib.ademamix(1e-2, weight_decay=0.1, mask=WD_MASK),
          needs_params=True, uses_mask=True, kind=OPT, leaf_structured=True),
    Entry("scale_by_simplified_ademamix(alpha, eps_root)",
          lambda: c.scale_by_simplified_ademamix(0.9, 0.99, 2.0, 1e-8, 1e-10),
          lambda: ref.scale_by_simplified_ademamix(0.9, 0.99, 2.0, 1e-8, 1e-10),
          lambda: optax.contrib.scale_by_simplified_ademamix(0.9, 0.99, 2.0, 1e-8, 1e-10)),
    Entry("simplified_ademamix(alpha, weight_decay)",
          lambda: c.simplified_ademamix(1e-3, 0.9, 0.99, alpha=2.0, weight_decay=0.1),
          lambda: ref.simplified_ademamix(1e-3, 0.9, 0.99, alpha=2.0, weight_decay=0.1),
          lambda: optax.contrib.simplified_ademamix(1e-3, 0.9, 0.99, alpha=2.0, weight_decay=0.1),
          needs_params=True, kind=OPT),
    # --- MADGRAD ------------------------------------------------------------------------------------------
    Entry("scale_by_madgrad", lambda: c.scale_by_madgrad(0.05), lambda: ref.scale_by_madgrad(0.05, x0=_x0()),
          lambda: optax.contrib.scale_by_madgrad(0.05), needs_params=True),
    Entry("madgrad(schedule, weight_decay)",
          lambda: c.madgrad(schedules.cosine_decay_schedule(0.1, 200, 0.5), 0.8, weight_decay=0.01),
          lambda: ref.madgrad(ref_base.cosine_decay_schedule(0.1, 200, 0.5), 0.8, weight_decay=0.01, x0=_x0()),
          lambda: optax.contrib.madgrad(optax.cosine_decay_schedule(0.1, 200, 0.5), 0.8, weight_decay=0.01),
          needs_params=True, kind=OPT),
    # --- ACProp -------------------------------------------------------------------------------------------
    Entry("scale_by_acprop", c.scale_by_acprop, ref.scale_by_acprop, optax.contrib.scale_by_acprop),
    Entry("acprop(weight_decay)", lambda: c.acprop(1e-2, 0.8, 0.99, 1e-8, 1e-10, weight_decay=0.1),
          lambda: ref.acprop(1e-2, 0.8, 0.99, 1e-8, 1e-10, weight_decay=0.1),
          lambda: optax.contrib.acprop(1e-2, 0.8, 0.99, 1e-8, 1e-10, weight_decay=0.1), needs_params=True,
          kind=OPT),
    # --- Cautious -----------------------------------------------------------------------------------------
    Entry("cautious(adam)", lambda: c.cautious(adam(1e-2)), lambda: ref.cautious(ref_base.adam(1e-2)), kind=OPT,
          per_leaf=True, leaf_structured=True),
    Entry("cautious(sgd momentum, normalize=False)", lambda: c.cautious(sgd(0.1, 0.9), normalize=False),
          lambda: ref.cautious(ref_base.sgd(0.1, 0.9), normalize=False), kind=OPT, per_leaf=True),
    Entry("cautious_adamw(weight_decay, mask)", lambda: c.cautious_adamw(1e-2, weight_decay=0.5, mask=WD_MASK),
          lambda mask=None: ref.cautious_adamw(1e-2, weight_decay=0.5, mask=mask), needs_params=True,
          uses_mask=True, kind=OPT, per_leaf=True, leaf_structured=True),
    # --- AdaBound / AMSBound ------------------------------------------------------------------------------
    Entry("adabound(weight_decay)", lambda: c.adabound(1e-2, final_lr=0.05, gamma=0.05, weight_decay=0.01),
          lambda: ref.adabound(1e-2, final_lr=0.05, gamma=0.05, weight_decay=0.01), needs_params=True, kind=OPT),
    Entry("amsbound(schedule)", lambda: c.amsbound(_sched(), gamma=0.05),
          lambda: ref.amsbound(_ref_sched(), gamma=0.05), kind=OPT),
    # --- MARS ---------------------------------------------------------------------------------------------
    Entry("mars_adamw(weight_decay, mask)", lambda: c.mars_adamw(1e-2, gamma=0.1, weight_decay=0.1, mask=WD_MASK),
          lambda mask=None: ref.mars_adamw(1e-2, gamma=0.1, weight_decay=0.1, mask=mask), needs_params=True,
          uses_mask=True, kind=OPT, per_leaf=True, leaf_structured=True),
    # --- Adam-mini ----------------------------------------------------------------------------------------
    Entry("scale_by_adam_mini", c.scale_by_adam_mini, ref.scale_by_adam_mini, per_leaf=True, leaf_structured=True),
    Entry("adam_mini(blocks=leaf, weight_decay, mask)",
          lambda: c.adam_mini(1e-2, weight_decay=0.1, mask=WD_MASK, blocks="leaf"),
          lambda mask=None: ref.adam_mini(1e-2, weight_decay=0.1, mask=mask, blocks="leaf"), needs_params=True,
          uses_mask=True, kind=OPT, per_leaf=True, leaf_structured=True),
]
