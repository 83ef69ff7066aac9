"""Registry entries of the precision policies (gradtx.precision) and of the Adam family's state dtypes.

The oracle tier feeds float32 and float64 parameters, which ``stochastic_rounding`` passes through (its
reference is the inner optimizer's) and ``kahan_summation`` compensates (float64 Kahan reference). Their
bfloat16 behaviour (unbiased rounding, exact landing, the stalled quadratic) is tested in
tests/test_precision.py.

State dtypes: the bfloat16 variant is contract and fuzz only (no ``ref``): at float32 parameters a float32
rounding difference of ~1e-7 flips a bfloat16 rounding now and then, and the outputs then differ by a bfloat16
ulp, beyond the tier's float32 tolerance. tests/test_precision.py compares every Adam-family block with the
bfloat16-rounding reference at float64 parameters (the tiers cost 5 to 15 s per entry: one entry stands for all).
"""

from __future__ import annotations

import jax.numpy as jnp
from registry import OPT, Call, Entry, Sides

import gradtx
from gradtx import precision
from gradtx.testing import reference as ref
from gradtx.testing.reference import precision as rp

same = Sides((precision, gradtx), (rp, ref), ()).same

ENTRIES = [
    same("stochastic_rounding(sgd momentum)", "stochastic_rounding", Call("sgd", 0.1, 0.9), 0, optax=None,
         needs_params=True, kind=OPT, complex_ok=True),
    same("kahan_summation(chain(clip_by_global_norm, sgd momentum))", "kahan_summation",
         Call("chain", Call("clip_by_global_norm", 2.0), Call("sgd", 0.1, 0.9)), optax=None, needs_params=True,
         kind=OPT, complex_ok=True),
    Entry("adam(mu_dtype=bfloat16, nu_dtype=bfloat16)",
          lambda: gradtx.adam(1e-2, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16), kind=OPT),
    # 8-bit state: contract and fuzz only, like the bfloat16 state (a float32 near-tie picks the neighbouring
    # code); tests/test_quantized.py checks it step by step against its float64 reference. On a FlatTree the
    # blocks span leaves, so the quantization (not the maths) differs from the per-leaf run.
    Entry("quantized_state(adam, block_size=4, min_size=0)",
          lambda: gradtx.quantized_state(gradtx.adam(1e-2), block_size=4, min_size=0), kind=OPT,
          leaf_structured=True),
]
