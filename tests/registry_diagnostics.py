"""Registry entries of the diagnostics wrappers: ``monitored`` and ``spike_guard`` around optimizers.

Both are transparent on normal steps (monitored always; spike_guard when nothing spikes: the random gradient
streams of the tiers have stable norms, far below its z-score threshold of 6), so their float64 oracle is the
wrapped optimizer's own reference. No Optax cross-check: Optax has neither, and the states differ by the
wrappers' nodes. The fuzz tier feeds NaN/Inf: ``monitored`` propagates them, ``spike_guard`` skips them.
"""

from __future__ import annotations

from registry import OPT, Entry

import gradtx
from gradtx import diagnostics
from gradtx.testing import reference as ref

ENTRIES = [
    Entry("monitored(chain(clip_by_global_norm, sgd momentum))",
          lambda: diagnostics.monitored(gradtx.chain(gradtx.clip_by_global_norm(2.0), gradtx.sgd(0.1, 0.9))),
          lambda: _Chain(ref.clip_by_global_norm(2.0), ref.sgd(0.1, 0.9)), kind=OPT,
          leaf_structured=True),  # per-leaf metrics in the state (the updates themselves agree)
    Entry("spike_guard(adam)", lambda: gradtx.spike_guard(gradtx.adam(1e-2)), lambda: ref.adam(1e-2), kind=OPT,
          nonfinite="guard"),
]


class _Chain:
    """Two float64 references in sequence."""

    def __init__(self, *refs):
        self.refs = refs

    def step(self, g, params=None, **extra):
        for r in self.refs:
            g = r.step(g, params, **extra)
        return g
