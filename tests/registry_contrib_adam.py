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

Two entries reproduce the authors' own code (issue 18) rather than gradtx's defaults: AdEMAMix with the paper's
warm-ups as the docstrings spell them, against the transcription of the authors' PyTorch optimizer
(``apple/ml-ademamix`` c3d73c0, warm-ups at the 1-based step), and C-AdamW with ``rescale="mean_clamp"`` (the
authors' ``c_adamw.py`` since ``kyleliang919/C-Optim`` ccadd18; the reference is gradtx's own convention for
``eps``, see ``ref.cautious_adamw``).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from registry import MASK, OPT, SCHED, Call, Entry, Sched, Sides

import gradtx
from gradtx.contrib import _adam_like as c
from gradtx.testing import reference as ref_base
from gradtx.testing.contract import default_params
from gradtx.testing.reference import contrib_adam as ref

same = Sides((c, gradtx), (ref, ref_base), (optax.contrib, optax)).same


def _x0():
    return np.asarray(ravel_pytree(default_params(jnp.float64))[0], np.float64)


def _b3(count):  # a warm-up of AdEMAMix's slow EMA rate, as the paper schedules it (closed form in NumPy and JAX)
    return 0.999 - 0.099 * 0.97 ** jnp.asarray(count).astype(jnp.float64)


def _b3_f32(count):  # Optax's state would follow a float64 schedule value to float64 (x64 is on in the tests)
    return jnp.asarray(_b3(count), jnp.float32)


MADGRAD_SCHED = Sched("cosine_decay_schedule", 0.1, 200, 0.5)

T_WARM = 100  # AdEMAMix's warm-up length in the entry below: it ends inside the 200 steps of the tiers


def _paper_b3():  # the paper's b3 warm-up from b1, read at the 1-based step (ademamix_b3_schedule's default)
    return c.ademamix_b3_schedule(0.999, T_WARM, 0.9)


def _paper_alpha():  # alpha min(k / T, 1) at the 1-based step k = count + 1
    return gradtx.schedules.linear_schedule(5.0 / T_WARM, 5.0, T_WARM - 1)


def _f32(schedule):  # Optax's state would follow a float64 schedule value to float64 (see the module docstring)
    return lambda count: jnp.asarray(schedule(count), jnp.float32)

ENTRIES = [
    # --- ADOPT ------------------------------------------------------------------------------------------
    same("scale_by_adopt"),
    same("scale_by_adopt(nesterov, no clipping)", "scale_by_adopt", 0.8, 0.99, nesterov=True, use_clipping=False),
    same("adopt(schedule, nesterov)", "adopt", SCHED, nesterov=True, kind=OPT),
    # --- AdEMAMix -----------------------------------------------------------------------------------------
    same("scale_by_ademamix", complex_ok=True),
    same("scale_by_ademamix(b3 schedule, eps_root)", "scale_by_ademamix", 0.8, 0.99, _b3, 3.0, 1e-6, 1e-8,
         optax=lambda: optax.contrib.scale_by_ademamix(0.8, 0.99, _b3_f32, 3.0, 1e-6, 1e-8)),
    same("ademamix(mask)", "ademamix", 1e-2, weight_decay=0.1, mask=MASK, needs_params=True, kind=OPT,
         leaf_structured=True),
    Entry("ademamix(paper warm-ups, as the authors' PyTorch)",
          lambda: c.ademamix(1e-2, b3=_paper_b3(), alpha=_paper_alpha(), weight_decay=0.1),
          lambda: ref.ademamix_authors(1e-2, (0.9, 0.999, 0.999), 5.0, beta3_warmup=T_WARM, alpha_warmup=T_WARM,
                                       weight_decay=0.1),
          lambda: optax.contrib.ademamix(1e-2, b3=_f32(_paper_b3()), alpha=_f32(_paper_alpha()), weight_decay=0.1),
          needs_params=True, kind=OPT),
    same("scale_by_simplified_ademamix(alpha, eps_root)", "scale_by_simplified_ademamix", 0.9, 0.99, 2.0, 1e-8,
         1e-10),
    same("simplified_ademamix(alpha, weight_decay)", "simplified_ademamix", 1e-3, 0.9, 0.99, alpha=2.0,
         weight_decay=0.1, needs_params=True, kind=OPT),
    # --- MADGRAD ------------------------------------------------------------------------------------------
    Entry("scale_by_madgrad", lambda: c.scale_by_madgrad(0.05), lambda: ref.scale_by_madgrad(0.05, x0=_x0()),
          lambda: optax.contrib.scale_by_madgrad(0.05), needs_params=True),
    Entry("madgrad(schedule, weight_decay)",
          lambda: c.madgrad(MADGRAD_SCHED.gradtx(), 0.8, weight_decay=0.01),
          lambda: ref.madgrad(MADGRAD_SCHED.ref(), 0.8, weight_decay=0.01, x0=_x0()),
          lambda: optax.contrib.madgrad(MADGRAD_SCHED.optax(), 0.8, weight_decay=0.01),
          needs_params=True, kind=OPT),
    # --- ACProp -------------------------------------------------------------------------------------------
    same("scale_by_acprop"),
    same("acprop(weight_decay)", "acprop", 1e-2, 0.8, 0.99, 1e-8, 1e-10, weight_decay=0.1, needs_params=True,
         kind=OPT),
    # --- Cautious -----------------------------------------------------------------------------------------
    same("cautious(adam)", "cautious", Call("adam", 1e-2), optax=None, kind=OPT, per_leaf=True,
         leaf_structured=True),
    same("cautious(sgd momentum, normalize=False)", "cautious", Call("sgd", 0.1, 0.9), normalize=False, optax=None,
         kind=OPT, per_leaf=True),
    same("cautious_adamw(weight_decay, mask)", "cautious_adamw", 1e-2, weight_decay=0.5, mask=MASK, optax=None,
         needs_params=True, kind=OPT, per_leaf=True, leaf_structured=True),
    same("cautious_adamw(rescale=mean_clamp)", "cautious_adamw", 1e-2, 0.8, 0.99, weight_decay=0.1,
         rescale="mean_clamp", optax=None, needs_params=True, kind=OPT, per_leaf=True, leaf_structured=True),
    # --- AdaBound / AMSBound ------------------------------------------------------------------------------
    same("adabound(weight_decay)", "adabound", 1e-2, final_lr=0.05, gamma=0.05, weight_decay=0.01, optax=None,
         needs_params=True, kind=OPT),
    same("amsbound(schedule)", "amsbound", SCHED, gamma=0.05, optax=None, kind=OPT),
    # --- MARS ---------------------------------------------------------------------------------------------
    same("mars_adamw(weight_decay, mask)", "mars_adamw", 1e-2, gamma=0.1, weight_decay=0.1, mask=MASK, optax=None,
         needs_params=True, kind=OPT, per_leaf=True, leaf_structured=True),
    # --- Adam-mini ----------------------------------------------------------------------------------------
    same("scale_by_adam_mini", optax=None, per_leaf=True, leaf_structured=True),
    same("adam_mini(blocks=leaf, weight_decay, mask)", "adam_mini", 1e-2, weight_decay=0.1, mask=MASK,
         blocks="leaf", optax=None, needs_params=True, kind=OPT, per_leaf=True, leaf_structured=True),
]
