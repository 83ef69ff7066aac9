"""Executable spec of gradtx: slow, obviously-correct float64 NumPy references.

Interface: every transformation is a class named like its gradtx counterpart, built with the same
arguments and defaults (dtype arguments are accepted and ignored). It keeps its own state and has one
method, ``u = ref.step(g, params=None)``: ``g`` and ``params`` are 1-D float64 vectors (the whole pytree
raveled); ``u`` is a new float64 array. Inputs are never mutated. ``run(ref, grads, params)`` feeds a
[steps, n] array of gradients and stacks the updates.

Conventions: k is the 1-based number of the current update (k = 1 on the first ``step``); a schedule
(or a callable learning rate) is evaluated at the 0-based ``count`` of previous updates, i.e. at k - 1.
Schedules are plain functions returning a Python callable ``count -> float`` computed with ``math``.

One module per family, each importing only NumPy and the standard library and sharing no code with gradtx:

- ``core``: the foundation's blocks and named optimizers (sgd, adagrad, rmsprop, adam, adamw, nadam, nadamw,
  written monolithically from their papers, not by composing the blocks, so that gradtx's compositions are
  checked independently) and ``run``; ``schedules``: the schedules;
- ``adam_family``, ``sign_family``, ``normalization``, ``factored``, ``schedules_extra``, ``combine``,
  ``wrappers``, ``linesearch``: the other families;
- ``contrib_adam``, ``contrib_lrfree``, ``contrib_matrix``, ``contrib_misc``, ``contrib_psgd``, ``contrib_round2``,
  ``contrib_shampoo``, ``contrib_swats``, ``losses``, ``precision``, ``projections``: reached through their
  modules only (``reference.contrib_adam.adopt``).

The package namespace holds every public name of ``core``, ``schedules`` and the families of the second item:
``reference.adam`` is ``reference.core.adam``, ``reference.scale_by_yogi`` is
``reference.adam_family.scale_by_yogi``. A name of ``core`` or ``schedules`` wins over a family's. Each
module's ``__all__`` lists its public names; the package's ``__all__`` lists the names it re-exports.

Example, Adam's first two updates on a two-coordinate gradient stream (each reference's docstring has its
formula and an example of its own)::

    >>> import numpy as np
    >>> from gradtx.testing import reference as ref
    >>> print(np.round(ref.run(ref.adam(0.1), [[1.0, -2.0], [0.5, 2.0]]), 4))
    [[-0.1     0.1   ]
     [-0.0932 -0.0053]]
"""

from gradtx.testing.reference import (
    adam_family,
    combine,
    contrib_adam,
    contrib_lrfree,
    contrib_matrix,
    contrib_misc,
    contrib_psgd,
    contrib_round2,
    contrib_shampoo,
    contrib_swats,
    core,
    factored,
    linesearch,
    losses,
    normalization,
    precision,
    projections,
    schedules,
    schedules_extra,
    sign_family,
    wrappers,
)

FOUNDATION = (core, schedules)
FAMILIES = (adam_family, sign_family, normalization, factored, schedules_extra, combine, wrappers, linesearch)
MODULES = (
    *FOUNDATION,
    *FAMILIES,
    contrib_adam,
    contrib_lrfree,
    contrib_matrix,
    contrib_misc,
    contrib_psgd,
    contrib_round2,
    contrib_shampoo,
    contrib_swats,
    losses,
    precision,
    projections,
)


def _public(module):
    """The names ``module`` exports: its ``__all__``, else every name not starting with an underscore."""
    return getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])


for _module in (*FOUNDATION, *FAMILIES):
    for _name in _public(_module):
        globals().setdefault(_name, getattr(_module, _name))
del _module, _name

# The names re-exported above (the modules' name lists do not overlap), spelled so that type checkers follow.
__all__: list[str] = []
__all__ += core.__all__
__all__ += schedules.__all__
__all__ += adam_family.__all__
__all__ += sign_family.__all__
__all__ += normalization.__all__
__all__ += factored.__all__
__all__ += schedules_extra.__all__
__all__ += combine.__all__
__all__ += wrappers.__all__
__all__ += linesearch.__all__
