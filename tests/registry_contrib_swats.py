"""Registry entries for SWATS (gradtx/contrib/_swats.py). No Optax counterpart.

The default (the paper's ``switch_tol=1e-9``) stays in its Adam phase on the tiers' random gradients; the second
entry's tolerance is so wide that it switches at step 2 in float64 and float32 alike (the estimate of the SGD
rate is then the bias-corrected average of two Adam steps), so its 200 steps run the SGD phase.
"""

from __future__ import annotations

from registry import OPT, Sides

from gradtx.contrib import _swats
from gradtx.testing.reference import contrib_swats

same = Sides((_swats,), (contrib_swats,), ()).same

ENTRIES = [
    same("swats", "swats", 0.01, optax=None, kind=OPT),
    same("swats(switch at step 2)", "swats", 0.01, b1=0.8, b2=0.99, eps=1e-8, switch_tol=1.0, optax=None, kind=OPT),
]
