"""Float64 NumPy references for the combinators (gradtx.combine): masks, partitions, freezing, conditions.

Same interface as ``gradtx.testing.reference``: a class per combinator, named like it, with ``u =
ref.step(g, params=None, **extra)`` on 1-D float64 vectors (the whole pytree raveled). Masks and labels are
given per coordinate of that vector (a boolean or label array of the same length), and the inner references
are any references with a ``step``. Written from the definitions, not from gradtx's code:

    masked(inner, mask):              u[mask] = inner(g[mask]),  u[~mask] = g[~mask]
    partition({label: ref}, labels):  u[labels == label] = ref(g[labels == label])   for every label
    freeze(mask):                     u[mask] = 0,               u[~mask] = g[~mask]
    selective_transform(opt, freeze_mask=m):   u[~m] = opt(g[~m]),  u[m] = 0
    conditionally_transform(inner, fn):  u = inner(g) if fn(k) else g         (inner's state kept when skipped)
    conditionally_mask(inner, fn):       u = inner(g) if fn(k) else 0         (inner's state kept when skipped)

``k`` is the 0-based number of previous ``step`` calls. Each inner reference sees only its selected
coordinates, so its state (and any norm it takes) covers those coordinates only; it is stepped on every call,
even when it selects none. Extra keyword arguments go to the inner references unchanged.
"""

import numpy as np


def _vec(x):
    """A float64 copy of ``x`` (never a view of the caller's array)."""
    return np.array(x, dtype=np.float64, copy=True)


def _select(mask, n):
    return np.ones(n, bool) if mask is None else np.asarray(mask, bool)


class masked:
    """u = inner(g) on the coordinates ``mask`` selects (all when None), g elsewhere."""

    def __init__(self, inner, mask=None):
        self.inner = inner
        self.mask = None if mask is None else np.array(mask, bool, copy=True)

    def step(self, g, params=None, **extra):
        g = _vec(g)
        sel = _select(self.mask, g.size)
        u = g.copy()
        p = None if params is None else _vec(params)[sel]
        u[sel] = self.inner.step(g[sel], p, **extra)
        return u


class partition:
    """u = transforms[label](g) on the coordinates with that label; every coordinate needs a known label."""

    def __init__(self, transforms, param_labels):
        self.transforms = dict(transforms)
        self.labels = np.array(param_labels, dtype=object, copy=True)
        unknown = {label for label in self.labels.tolist() if label not in self.transforms}
        if unknown:
            raise ValueError(f"partition reference: labels without a transformation: {sorted(map(repr, unknown))}")

    def step(self, g, params=None, **extra):
        g = _vec(g)
        u = g.copy()
        for label, ref in self.transforms.items():
            sel = np.array([x == label for x in self.labels.tolist()], bool)
            p = None if params is None else _vec(params)[sel]
            u[sel] = ref.step(g[sel], p, **extra)
        return u


class freeze:
    """u = 0 where ``mask`` is True, g elsewhere."""

    def __init__(self, mask=None):
        self.mask = None if mask is None else np.array(mask, bool, copy=True)

    def step(self, g, params=None, **extra):
        g = _vec(g)
        return np.where(_select(self.mask, g.size), 0.0, g)


class selective_transform:
    """u = optimizer(g) on the coordinates ``freeze_mask`` leaves trainable, 0 on the frozen ones."""

    def __init__(self, optimizer, *, freeze_mask=None):
        self.optimizer = optimizer
        self.freeze_mask = None if freeze_mask is None else np.array(freeze_mask, bool, copy=True)

    def step(self, g, params=None, **extra):
        g = _vec(g)
        frozen = _select(self.freeze_mask, g.size)
        u = np.zeros_like(g)
        p = None if params is None else _vec(params)[~frozen]
        u[~frozen] = self.optimizer.step(g[~frozen], p, **extra)
        return u


class conditionally_transform:
    """u = inner(g) at steps k where should_transform_fn(k), else g (inner not stepped)."""

    def __init__(self, inner, should_transform_fn, forward_extra_args=False):
        self.inner = inner
        self.fn = should_transform_fn
        self.forward_extra_args = forward_extra_args
        self.k = 0

    def _apply(self, extra):
        ok = bool(self.fn(self.k, **extra) if self.forward_extra_args else self.fn(self.k))
        self.k += 1
        return ok

    def _skipped(self, g):
        return _vec(g)

    def step(self, g, params=None, **extra):
        if self._apply(extra):
            return self.inner.step(_vec(g), None if params is None else _vec(params), **extra)
        return self._skipped(g)


class conditionally_mask(conditionally_transform):
    """u = inner(g) at steps k where should_transform_fn(k), else 0 (inner not stepped)."""

    def _skipped(self, g):
        return np.zeros_like(_vec(g))
