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

__all__ = ["masked", "partition", "freeze", "selective_transform", "conditionally_transform", "conditionally_mask"]


def _vec(x):
    """A float64 copy of ``x`` (never a view of the caller's array)."""
    return np.array(x, dtype=np.float64, copy=True)


def _select(mask, n):
    return np.ones(n, bool) if mask is None else np.asarray(mask, bool)


class masked:
    """Float64 reference of :class:`gradtx.masked`: the inner reference on the masked coordinates only.

    ::

        u[mask] = inner(g[mask]),   u[~mask] = g[~mask]

    The inner reference sees only the selected coordinates (and the matching ``params``), so its state and any
    norm it takes cover those only; it is stepped on every call, even when the mask selects none.

    Call ``step(g, params=None, **extra)`` once per update with the gradient ``g`` (a 1-D float64 vector,
    the whole pytree raveled); it returns the update as a new float64 array. Extra keyword arguments go to the
    inner references unchanged.

    Args:
      inner: the inner reference (any object with ``step(g, params=None, **extra)``).
      mask: a boolean vector as long as the raveled gradient, True where ``inner`` applies, or None for every
        coordinate. Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.masked(ref.scale(10.0), [True, False])
      >>> print(np.round(ref.run(tx, [[1.0, -2.0], [0.5, 3.0]]), 4))
      [[10. -2.]
       [ 5.  3.]]
    """

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
    """Float64 reference of :class:`gradtx.partition`: one reference per label of the coordinates.

    ::

        u[labels == label] = transforms[label](g[labels == label])   for every label

    Each inner reference sees only its own coordinates (and the matching ``params``); every one is stepped on
    every call.

    Call ``step(g, params=None, **extra)`` once per update with the gradient ``g`` (a 1-D float64 vector,
    the whole pytree raveled); it returns the update as a new float64 array. Extra keyword arguments go to the
    inner references unchanged.

    Args:
      transforms: a mapping ``label -> reference``.
      param_labels: a sequence as long as the raveled gradient giving each coordinate's label; every label
        must be a key of ``transforms``.

    Raises:
      ValueError: ``partition reference: labels without a transformation: [...]`` when a label has no
        reference.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.partition({"fast": ref.scale(10.0), "off": ref.set_to_zero()}, ["fast", "off", "fast"])
      >>> print(np.round(ref.run(tx, [[1.0, -2.0, 0.5], [2.0, 3.0, -1.0]]), 4))
      [[ 10.   0.   5.]
       [ 20.   0. -10.]]
    """

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
    """Float64 reference of :class:`gradtx.freeze`: zero update on the frozen coordinates.

    ::

        u[mask] = 0,   u[~mask] = g[~mask]

    Call ``step(g, params=None, **extra)`` once per update with the gradient ``g`` (a 1-D float64 vector,
    the whole pytree raveled); it returns the update as a new float64 array. Extra keyword arguments go to the
    inner references unchanged.

    Args:
      mask: a boolean vector as long as the raveled gradient, True where the parameter is frozen, or None to
        freeze everything. Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.freeze([True, False]), [[1.0, -2.0], [0.5, 3.0]]), 4))
      [[ 0. -2.]
       [ 0.  3.]]
    """

    def __init__(self, mask=None):
        self.mask = None if mask is None else np.array(mask, bool, copy=True)

    def step(self, g, params=None, **extra):
        g = _vec(g)
        return np.where(_select(self.mask, g.size), 0.0, g)


class selective_transform:
    """Float64 reference of :class:`gradtx.selective_transform`: an optimizer on the trainable coordinates.

    ::

        u[~freeze_mask] = optimizer(g[~freeze_mask]),   u[freeze_mask] = 0

    The optimizer sees only the trainable coordinates (and the matching ``params``).

    Call ``step(g, params=None, **extra)`` once per update with the gradient ``g`` (a 1-D float64 vector,
    the whole pytree raveled); it returns the update as a new float64 array. Extra keyword arguments go to the
    inner references unchanged.

    Args:
      optimizer: the reference applied to the trainable coordinates.
      freeze_mask: a boolean vector as long as the raveled gradient, True where the parameter is frozen, or
        None to freeze everything (keyword-only). Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.selective_transform(ref.sgd(0.1), freeze_mask=[False, True])
      >>> print(np.round(ref.run(tx, [[1.0, -2.0], [0.5, 3.0]]), 4))
      [[-0.1   0.  ]
       [-0.05  0.  ]]
    """

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
    """Float64 reference of :class:`gradtx.conditionally_transform`: the inner reference on chosen steps.

    With k the 0-based number of previous ``step`` calls::

        u = inner(g)   if should_transform_fn(k)   else   u = g   (the inner reference is not stepped)

    Call ``step(g, params=None, **extra)`` once per update with the gradient ``g`` (a 1-D float64 vector,
    the whole pytree raveled); it returns the update as a new float64 array. Extra keyword arguments go to the
    inner references unchanged.

    Args:
      inner: the inner reference (any object with ``step(g, params=None, **extra)``).
      should_transform_fn: a callable ``k -> bool`` (``k, **extra -> bool`` with ``forward_extra_args``).
      forward_extra_args: whether ``step``'s extra keyword arguments are also passed to
        ``should_transform_fn``. Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.conditionally_transform(ref.scale(10.0), lambda k: k % 2 == 0)
      >>> print(np.round(ref.run(tx, [[1.0, -2.0], [1.0, -2.0], [1.0, -2.0]]), 4))
      [[ 10. -20.]
       [  1.  -2.]
       [ 10. -20.]]
    """

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
    """Float64 reference of :class:`gradtx.conditionally_mask`: the inner reference on chosen steps, else 0.

    With k the 0-based number of previous ``step`` calls::

        u = inner(g)   if should_transform_fn(k)   else   u = 0   (the inner reference is not stepped)

    Call ``step(g, params=None, **extra)`` once per update with the gradient ``g`` (a 1-D float64 vector,
    the whole pytree raveled); it returns the update as a new float64 array. Extra keyword arguments go to the
    inner references unchanged.

    Args:
      inner: the inner reference (any object with ``step(g, params=None, **extra)``).
      should_transform_fn: a callable ``k -> bool`` (``k, **extra -> bool`` with ``forward_extra_args``).
      forward_extra_args: whether ``step``'s extra keyword arguments are also passed to
        ``should_transform_fn``. Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.conditionally_mask(ref.scale(10.0), lambda k: k % 2 == 0)
      >>> print(np.round(ref.run(tx, [[1.0, -2.0], [1.0, -2.0], [1.0, -2.0]]), 4))
      [[ 10. -20.]
       [  0.   0.]
       [ 10. -20.]]
    """

    def _skipped(self, g):
        return np.zeros_like(_vec(g))
