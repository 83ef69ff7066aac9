"""Registry entries for PSGD Kron (gradtx.contrib._psgd), collected by tests/registry.py.

Every entry is per leaf (``per_leaf=True``: the reference, ``gradtx.testing.reference.contrib_psgd``, sees
``{leaf path: array}``) and leaf-structured (one Kronecker factor per axis of each leaf; the flat path would fit
one diagonal factor to the whole buffer). The probes are random: the reference takes them as an input, and
:class:`JaxProbes` draws gradtx's stream (the state's key split once per call into the next key and a sample
key, the sample key split into one key per leaf in tree order, each probe a float32 standard normal). No Optax
counterpart (Optax has no Kron).
"""

from __future__ import annotations

import jax
import numpy as np
from registry import OPT, SCHED, Entry

from gradtx.contrib import _psgd
from gradtx.testing.reference import contrib_psgd as rp


class JaxProbes:
    """gradtx's probe stream for ``key``: ``probe(k, shapes)`` is the list of probes of the 1-based call ``k``."""

    def __init__(self, key: int = 0) -> None:
        self.key, self.k = jax.random.key(key), 0
        self.sample = self.key

    def __call__(self, k: int, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
        assert k > self.k, "probes are drawn in increasing steps"
        while self.k < k:
            self.key, self.sample = jax.random.split(self.key)
            self.k += 1
        keys = jax.random.split(self.sample, len(shapes))
        return [np.asarray(jax.random.normal(kk, s, np.float32), np.float64) for kk, s in zip(keys, shapes)]


def _entry(name: str, gx, ref, **fields):
    return Entry(name, gx, ref, None, per_leaf=True, leaf_structured=True, **fields)


def _ref(cls, *args, key: int = 0, **kwargs):
    return lambda mask=None: cls(*args, probe=JaxProbes(key), **kwargs)


ENTRIES = [
    _entry("scale_by_kron", lambda: _psgd.scale_by_kron(), _ref(rp.scale_by_kron)),
    _entry("scale_by_kron(p=0.5, one_diag, b1=0.5, fit on g)",
           lambda: _psgd.scale_by_kron(0.5, 0.5, memory_save_mode="one_diag", momentum_into_precond_update=False,
                                       precond_lr=0.3, key=3),
           _ref(rp.scale_by_kron, 0.5, 0.5, memory_save_mode="one_diag", momentum_into_precond_update=False,
                precond_lr=0.3, key=3)),
    _entry("scale_by_kron(all_diag, init scale 2, max_size_triangular=2)",
           lambda: _psgd.scale_by_kron(memory_save_mode="all_diag", precond_init_scale=2.0, max_size_triangular=2,
                                       min_ndim_triangular=1),
           _ref(rp.scale_by_kron, memory_save_mode="all_diag", precond_init_scale=2.0, max_size_triangular=2,
                min_ndim_triangular=1)),
    _entry("kron", lambda: _psgd.kron(1e-2), _ref(rp.kron, 1e-2), kind=OPT),
    _entry("kron(schedule, weight decay, p=0.3, min_ndim_triangular=1)",
           lambda: _psgd.kron(SCHED.gradtx(), weight_decay=0.1, preconditioner_update_probability=0.3,
                              min_ndim_triangular=1, key=7),
           _ref(rp.kron, SCHED.ref(), weight_decay=0.1, preconditioner_update_probability=0.3,
                min_ndim_triangular=1, key=7), needs_params=True, kind=OPT),
]
