"""Registry entries for Shampoo (``gradtx.contrib._shampoo``), collected by tests/registry.py.

Every entry is per leaf (``per_leaf=True``: the reference, ``gradtx.testing.reference.contrib_shampoo``, sees
``{leaf path: array}``) and leaf-structured (the statistics are per block of each matrix; the flat path packs the
matrices into one vector, which follows the graft alone). The entries use explicit builders importing the modules
directly, so they do not depend on the ``gradtx.contrib`` exports. No Optax counterpart (``optax=None``): Optax's
contrib has no Shampoo.

Tolerance in float64 (``rtol64=1e-7``, not 1e-9): gradtx's roots come from a coupled Newton iteration whose ridge
``matrix_epsilon * lambda_max`` uses a power-iteration estimate of ``lambda_max`` (``gradtx.numerics``, stopped at a
1e-6 relative residual), the reference's from ``numpy.linalg.eigh``; on the oracle's gradient stream the two agree
to a few 1e-9 of the largest update over 200 steps.
"""

from __future__ import annotations

from registry import OPT, SCHED, Entry

from gradtx.contrib import _shampoo
from gradtx.testing.reference import contrib_shampoo as rs


def _pair(name, fn, *args, **kwargs):
    """The entry calling ``fn`` with the same arguments on both sides (``SCHED`` resolved for each)."""
    fields = {k: kwargs.pop(k) for k in ("kind", "needs_params") if k in kwargs}

    def side(which):
        return tuple(SCHED.resolve(which) if a is SCHED else a for a in args)

    return Entry(name, lambda: getattr(_shampoo, fn)(*side("gradtx"), **kwargs),
                 lambda mask=None: getattr(rs, fn)(*side("ref"), **kwargs), optax=None, per_leaf=True,
                 leaf_structured=True, rtol64=1e-7, **fields)


ENTRIES = [
    _pair("scale_by_shampoo", "scale_by_shampoo"),
    _pair("scale_by_shampoo(rmsprop graft, block_size=2, b2=0.9)", "scale_by_shampoo", 0.5, 0.9, block_size=2,
          graft_type="rmsprop"),
    _pair("scale_by_shampoo(sgd graft, compute every 3 from step 5)", "scale_by_shampoo", 0.9, 0.99,
          graft_type="sgd", start_preconditioning_step=5, preconditioning_compute_steps=3),
    _pair("scale_by_shampoo(no graft, b1=0, b2=0.9)", "scale_by_shampoo", 0.0, 0.9, matrix_epsilon=1e-4,
          graft_type="none"),
    # b2 = 1 switches to sums (weight 1 instead of 1 - b2): the loss is not differentiable along b2 there.
    _pair("scale_by_shampoo(b2=1: Gupta et al. sums, no graft, b1=0)", "scale_by_shampoo", 0.0, 1.0,
          matrix_epsilon=1e-4, graft_type="none"),
    _pair("shampoo", "shampoo", 1e-2, kind=OPT),
    _pair("shampoo(schedule, weight decay, block_size=3)", "shampoo", SCHED, weight_decay=0.1, block_size=3,
          needs_params=True, kind=OPT),
]
