"""Registry entries for the learning-rate-free optimizers of gradtx.contrib (reduce_on_plateau, DoG, DoWG,
Prodigy, D-Adaptation AdamW).

The references that remember the initial parameters ``x_0`` are initialised with ``default_params`` in float64,
the tree the oracle's gradtx run is initialised with. ``reduce_on_plateau`` sees a constant positive ``value``
(the extra argument of every update), so it reaches plateaus, reduces, cools down and hits ``min_scale``; with
positive values its numbers are Optax's (the negative-value fix is tested in tests/test_contrib_lrfree.py).

Prodigy and D-Adaptation run fewer steps against Optax: their step size ``d_k`` is a running maximum of a ratio
of float32 sums, which float32 rounding moves by ~1e-5 relative after ~100 steps (both implementations round
differently); 60 steps stay within the tier's 1e-4. In float64 they agree with Optax for 200 steps
(tests/test_optax_crosscheck.py, test_same_updates_as_optax_in_float64_for_200_steps; also cocob and momo_adam).
Prodigy with ``use_bias_correction=False`` has no Optax column (Optax always corrects); its reference is
``prodigy_authors``, the transcription of the authors' code, not the paper-derived ``prodigy`` reference.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from registry import OPT, Call, Entry, Sched, Sides

import gradtx
from gradtx.contrib import _lrfree as lf
from gradtx.testing import reference as ref_base
from gradtx.testing.contract import default_params
from gradtx.testing.reference import contrib_lrfree as ref

VALUE = {"value": jnp.float32(2.5)}
# The schedule of these entries: a multiplier of the estimated step, warming up from 0.1 to 1.
LRFREE_SCHED = Sched("warmup_cosine_decay_schedule", 0.1, 1.0, 10, 200, 0.01)
same = Sides((lf, gradtx), (ref, ref_base), (optax.contrib, optax)).same


def _x0():
    """default_params in float64, raveled: the x_0 the oracle's gradtx run is initialised with."""
    return np.asarray(ravel_pytree(default_params(jnp.float64))[0], np.float64)


ENTRIES = [
    same("reduce_on_plateau(patience, cooldown, min_scale)", "reduce_on_plateau", 0.5, 3, cooldown=2, min_scale=1e-3,
         extra_args=VALUE, complex_ok=True),
    same("reduce_on_plateau(accumulation_size, atol)", "reduce_on_plateau", 0.8, 2, rtol=0.0, atol=0.1,
         accumulation_size=4, extra_args=VALUE),
    # The references of DoG, DoWG, Prodigy and COCOB start from x_0 (``.init(_x0())``).
    Entry("scale_by_dog", lambda: lf.scale_by_dog(("heuristic", 1e-4)),
          lambda: ref.scale_by_dog(("heuristic", 1e-4)).init(_x0()),
          lambda: optax.contrib._dog.scale_by_dog(("heuristic", 1e-4)),  # not re-exported by optax.contrib
          needs_params=True),
    Entry("dog", lf.dog, lambda: ref.dog().init(_x0()), optax.contrib.dog, needs_params=True, kind=OPT),
    Entry("dog(distance, weight_decay)", lambda: lf.dog(0.5, ("distance", 0.1), 1e-6, weight_decay=0.1),
          lambda: ref.dog(0.5, ("distance", 0.1), 1e-6, weight_decay=0.1).init(_x0()),
          lambda: optax.contrib.dog(0.5, ("distance", 0.1), 1e-6, weight_decay=0.1), needs_params=True, kind=OPT),
    Entry("dog(learning_rate init, schedule)", lambda: lf.dog(LRFREE_SCHED.gradtx(), ("learning_rate", 0.01)),
          lambda: ref.dog(LRFREE_SCHED.ref(), ("learning_rate", 0.01)).init(_x0()),
          lambda: optax.contrib.dog(LRFREE_SCHED.optax(), ("learning_rate", 0.01)), needs_params=True, kind=OPT),
    Entry("scale_by_dowg", lf.scale_by_dowg, lambda: ref.scale_by_dowg().init(_x0()),
          optax.contrib._dog.scale_by_dowg, needs_params=True),  # not re-exported by optax.contrib
    Entry("dowg", lf.dowg, lambda: ref.dowg().init(_x0()), optax.contrib.dowg, needs_params=True, kind=OPT),
    Entry("dowg(init_estim_sq_dist, weight_decay, schedule)",
          lambda: lf.dowg(LRFREE_SCHED.gradtx(), 0.5, 1e-6, weight_decay=0.1),
          lambda: ref.dowg(LRFREE_SCHED.ref(), 0.5, 1e-6, weight_decay=0.1).init(_x0()),
          lambda: optax.contrib.dowg(LRFREE_SCHED.optax(), 0.5, 1e-6, weight_decay=0.1), needs_params=True, kind=OPT),
    Entry("prodigy", lf.prodigy, lambda: ref.prodigy().init(_x0()), optax.contrib.prodigy, needs_params=True,
          kind=OPT, steps=60),
    Entry("prodigy(schedule, beta3, weight_decay, safeguard_warmup, coef)",
          lambda: lf.prodigy(LRFREE_SCHED.gradtx(), (0.8, 0.99), 0.9, 1e-6, 1e-3, 2.0, 0.1, True),
          lambda: ref.prodigy(LRFREE_SCHED.ref(), (0.8, 0.99), 0.9, 1e-6, 1e-3, 2.0, 0.1, True).init(_x0()),
          lambda: optax.contrib.prodigy(LRFREE_SCHED.optax(), (0.8, 0.99), 0.9, 1e-6, 1e-3, 2.0, 0.1, True),
          needs_params=True, kind=OPT, steps=60),
    # use_bias_correction=False (the authors' default; Optax has no option): the reference is the transcription
    # of the authors' PyTorch step (konstmish/prodigy at 3efb213), with their argument names and defaults.
    Entry("prodigy(use_bias_correction=False)", lambda: lf.prodigy(use_bias_correction=False),
          lambda: ref.prodigy_authors().init(_x0()), None, needs_params=True, kind=OPT),
    Entry("prodigy(use_bias_correction=False, schedule, beta3, weight_decay, safeguard_warmup, coef)",
          lambda: lf.prodigy(LRFREE_SCHED.gradtx(), (0.8, 0.99), 0.9, 1e-6, 1e-3, 2.0, 0.1, True,
                             use_bias_correction=False),
          lambda: ref.prodigy_authors(LRFREE_SCHED.ref(), (0.8, 0.99), 0.9, 1e-6, 0.1, d0=1e-3, d_coef=2.0,
                                      safeguard_warmup=True).init(_x0()),
          None, needs_params=True, kind=OPT),
    same("dadapt_adamw", needs_params=True, kind=OPT, steps=60),
    same("dadapt_adamw(schedule, betas, weight_decay)", "dadapt_adamw", LRFREE_SCHED, (0.8, 0.99), 1e-6, 1e-3, 0.1,
         needs_params=True, kind=OPT, steps=60),
    Entry("scale_by_cocob", lf.scale_by_cocob, lambda: ref.scale_by_cocob().init(_x0()),
          optax.contrib._cocob.scale_by_cocob, needs_params=True),  # not re-exported by optax.contrib
    Entry("cocob", lf.cocob, lambda: ref.cocob().init(_x0()), optax.contrib.cocob, needs_params=True, kind=OPT),
    Entry("cocob(schedule, alpha, eps, weight_decay)", lambda: lf.cocob(LRFREE_SCHED.gradtx(), 20.0, 1e-4, 0.1),
          lambda: ref.cocob(LRFREE_SCHED.ref(), 20.0, 1e-4, 0.1).init(_x0()),
          lambda: optax.contrib.cocob(LRFREE_SCHED.optax(), 20.0, 1e-4, 0.1), needs_params=True, kind=OPT,
          steps=150),  # float32 drift from Optax reaches 1e-4 relative on a small coordinate at step 185
    same("momo", needs_params=True, extra_args=VALUE, kind=OPT),
    same("momo(schedule, beta, lower_bound, weight_decay, adapt_lower_bound)", "momo", LRFREE_SCHED, 0.8, 0.1, 0.1,
         True, needs_params=True, extra_args=VALUE, kind=OPT),
    same("momo_adam", needs_params=True, extra_args=VALUE, kind=OPT),
    same("momo_adam(all options)", "momo_adam", 0.1, 0.8, 0.99, 1e-6, 0.1, 0.1, True, needs_params=True,
         extra_args=VALUE, kind=OPT, steps=100),  # float32 drift from Optax: 1e-4 relative by step 124-176
    # Mechanic: no Optax column here. Optax forms the update as x_{t+1} - x_t, which in float32 loses it to
    # cancellation (1% at step 1); gradtx computes the same number without it. tests/test_contrib_lrfree.py
    # compares with Optax in float64 for 200 steps.
    same("mechanize(adam)", "mechanize", Call("adam", 1.0), optax=None, needs_params=True, kind=OPT),
    same("mechanize(sgd momentum, options)", "mechanize", Call("sgd", 0.5, 0.9), 0.1, 1e-6, 1e-4, 3, optax=None,
         needs_params=True, kind=OPT),
]
