"""Float64 NumPy references for the wrappers: gradient accumulation, skipping non-finite updates, flatten,
lookahead.

Same interface as ``gradtx.testing.reference``: a class per wrapper, named like the gradtx name, built with
the same arguments, ``u = ref.step(g, params=None, **extra)`` on 1-D float64 vectors; the wrapped
transformation is itself a reference object (e.g. ``reference.adam(1e-2)``). Written from the definitions,
not from gradtx: accumulation keeps a plain sum and divides by the number of mini-steps; lookahead keeps its
own fast and slow weights and runs the two loops of Zhang et al. 2019, Algorithm 1.

Extra keyword arguments are passed to the wrapped reference when its ``step`` takes ``**kwargs`` (the
foundation's references take ``step(g, params=None)`` only). This module imports only NumPy.
"""

import numpy as np

__all__ = ["MultiSteps", "apply_if_finite", "flatten", "lookahead"]


def _vec(x):
    """A float64 copy of ``x`` (never a view of the caller's array)."""
    return np.array(x, dtype=np.float64, copy=True)


def _takes_extra(fn):
    """Whether ``fn`` has a ``**kwargs`` parameter (the CO_VARKEYWORDS flag of its code object)."""
    code = getattr(fn, "__code__", None)
    return bool(code is not None and code.co_flags & 0x08)


def _step(ref, g, params, extra):
    """``ref.step(g, params, **extra)``, or without ``extra`` for references whose ``step`` takes none."""
    return ref.step(g, params, **extra) if extra and _takes_extra(ref.step) else ref.step(g, params)


def _clone(x):
    """A deep copy of a reference object's state (arrays, containers, nested reference objects)."""
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, list):
        return [_clone(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_clone(v) for v in x)
    if isinstance(x, dict):
        return {k: _clone(v) for k, v in x.items()}
    if isinstance(x, type) or callable(x) or not hasattr(x, "__dict__"):
        return x  # numbers, strings, schedules (functions): immutable for our purpose
    copy = object.__new__(type(x))
    copy.__dict__.update({k: _clone(v) for k, v in vars(x).items()})
    return copy


class MultiSteps:
    """Float64 reference of :class:`gradtx.MultiSteps`: gradient accumulation over k mini-steps.

    Over each group of k = every_k_schedule(n) mini-steps (n the number of updates emitted so far), a plain sum
    S = g_1 + ... + g_k is kept::

        mini-steps 1 .. k-1 of a group:  u = 0
        mini-step k:                     u = opt.step(S / k)   (S if not use_grad_mean);  a new group starts

    A mini-step for which ``should_skip_update_fn(g, n, params)`` is true returns 0 and changes nothing.

    Call ``step(g, params=None, **extra)`` once per update with the gradient ``g`` (a 1-D float64 vector,
    the whole pytree raveled); it returns the update as a new float64 array. Extra keyword arguments go to the
    wrapped reference when its ``step`` takes ``**kwargs``.

    Args:
      opt: the wrapped reference, stepped once per group.
      every_k_schedule: k, an int >= 1, or a callable ``n -> k`` of the number of emitted updates.
      use_grad_mean: whether to pass the mean S / k rather than the sum S. Default True.
      should_skip_update_fn: None or a callable ``(g, n, params) -> bool``. Default None.
      accumulator_dtype: ignored (the reference sums in float64). Default None.

    Raises:
      ValueError: ``every_k_schedule must be >= 1`` for an int k below 1.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.MultiSteps(ref.sgd(1.0), every_k_schedule=2)
      >>> print(np.round(ref.run(tx, [[1.0, -2.0], [3.0, 4.0], [1.0, 1.0]]), 4))
      [[ 0.  0.]
       [-2. -1.]
       [ 0.  0.]]
    """

    def __init__(self, opt, every_k_schedule, use_grad_mean=True, should_skip_update_fn=None,
                 accumulator_dtype=None):
        if not callable(every_k_schedule) and int(every_k_schedule) < 1:
            raise ValueError("every_k_schedule must be >= 1")
        self.opt, self.k = opt, every_k_schedule
        self.mean, self.skip = use_grad_mean, should_skip_update_fn
        self.total, self.n, self.gradient_step = None, 0, 0

    def step(self, g, params=None, **extra):
        g = _vec(g)
        if self.skip is not None and self.skip(g, self.gradient_step, params):
            return np.zeros_like(g)
        k = round(float(np.asarray(self.k(self.gradient_step)))) if callable(self.k) else int(self.k)
        self.total = g if self.total is None else self.total + g
        self.n += 1
        if self.n < k:
            return np.zeros_like(g)
        acc = self.total / self.n if self.mean else self.total
        self.total, self.n = None, 0
        self.gradient_step += 1
        return _step(self.opt, acc, params, extra)


class apply_if_finite:
    """Float64 reference of :class:`gradtx.apply_if_finite`: skips updates whose gradient is not finite.

    ::

        u = inner.step(g)   if g is finite, or if more than max_consecutive_errors non-finite gradients
                            came in a row (counting this one)
        u = 0               otherwise (the inner reference does not step)

    The counters are kept as ``bad`` (the current run of non-finite gradients) and ``total``.

    Call ``step(g, params=None, **extra)`` once per update with the gradient ``g`` (a 1-D float64 vector,
    the whole pytree raveled); it returns the update as a new float64 array. Extra keyword arguments go to the
    wrapped reference when its ``step`` takes ``**kwargs``.

    Args:
      inner: the wrapped reference.
      max_consecutive_errors: how many non-finite gradients in a row are skipped, >= 0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.apply_if_finite(ref.sgd(0.1), max_consecutive_errors=1)
      >>> print(np.round(ref.run(tx, [[1.0, -2.0], [np.nan, 1.0], [3.0, 2.0]]), 4))
      [[-0.1  0.2]
       [ 0.   0. ]
       [-0.3 -0.2]]
    """

    def __init__(self, inner, max_consecutive_errors):
        self.inner, self.max, self.bad, self.total = inner, int(max_consecutive_errors), 0, 0

    def step(self, g, params=None, **extra):
        g = _vec(g)
        finite = bool(np.all(np.isfinite(g)))
        self.bad = 0 if finite else self.bad + 1
        self.total += 0 if finite else 1
        if finite or self.bad > self.max:
            return _step(self.inner, g, params, extra)
        return np.zeros_like(g)


class flatten:
    """Float64 reference of :class:`gradtx.flatten`: u = inner.step(g).

    The references already see the whole pytree as one raveled vector, so flattening changes nothing.

    Call ``step(g, params=None, **extra)`` once per update with the gradient ``g`` (a 1-D float64 vector,
    the whole pytree raveled); it returns the update as a new float64 array. Extra keyword arguments go to the
    wrapped reference when its ``step`` takes ``**kwargs``.

    Args:
      inner: the wrapped reference.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.flatten(ref.sgd(0.1)), [[1.0, -2.0], [0.5, 3.0]]), 4))
      [[-0.1   0.2 ]
       [-0.05 -0.3 ]]
    """

    def __init__(self, inner):
        self.inner = inner

    def step(self, g, params=None, **extra):
        return _step(self.inner, _vec(g), None if params is None else _vec(params), extra)


class lookahead:
    """Float64 reference of :class:`gradtx.lookahead`: fast and slow weights, one fast step per call.

    Zhang, Lucas, Hinton & Ba 2019, "Lookahead Optimizer: k steps forward, 1 step back", NeurIPS (arXiv
    1907.08610), Algorithm 1::

        fast <- fast + fast_optimizer.step(g, fast)                  (the inner loop)
        every sync_period-th call:  slow <- slow + alpha (fast - slow);  fast <- slow
                                    (and, with reset_state, a fresh copy of the initial fast optimizer)

    Call ``step(g, params, **extra)`` with ``params = (fast, slow)`` (the reference keeps its own copies from the
    first call on); it returns ``(fast_update, slow_update)``, the differences new - old, as float64 arrays.

    Args:
      fast_optimizer: the reference of the inner loop.
      sync_period: the number of fast steps between synchronisations, >= 1.
      slow_step_size: alpha, the slow weights' step towards the fast ones, in (0, 1].
      reset_state: whether the fast optimizer restarts from its initial state at each synchronisation.
        Default False.

    Raises:
      ValueError: ``sync_period must be >= 1`` for a smaller ``sync_period``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.lookahead(ref.sgd(1.0), sync_period=2, slow_step_size=0.5)
      >>> p = (np.array([1.0, 1.0]), np.array([1.0, 1.0]))
      >>> fast_u, slow_u = tx.step(np.array([1.0, -1.0]), p)
      >>> print(np.round(fast_u, 4), np.round(slow_u, 4))
      [-1.  1.] [0. 0.]
      >>> fast_u, slow_u = tx.step(np.array([1.0, -1.0]), p)  # slow += 0.5 (fast - slow); fast = slow
      >>> print(np.round(fast_u, 4), np.round(slow_u, 4))
      [0. 0.] [-1.  1.]
    """

    def __init__(self, fast_optimizer, sync_period, slow_step_size, reset_state=False):
        if int(sync_period) < 1:
            raise ValueError("sync_period must be >= 1")
        self.opt, self.initial = fast_optimizer, _clone(fast_optimizer)
        self.k, self.alpha, self.reset = int(sync_period), float(slow_step_size), reset_state
        self.fast, self.slow, self.t = None, None, 0

    def step(self, g, params, **extra):
        fast = _vec(params[0]) if self.fast is None else self.fast
        slow = _vec(params[1]) if self.slow is None else self.slow
        old_fast, old_slow = fast.copy(), slow.copy()
        self.slow = slow
        self.fast = fast + _step(self.opt, _vec(g), fast.copy(), extra)
        self.t += 1
        if self.t == self.k:
            self.slow = self.slow + self.alpha * (self.fast - self.slow)
            self.fast = self.slow.copy()
            self.t = 0
            if self.reset:
                self.opt = _clone(self.initial)
        return self.fast - old_fast, self.slow - old_slow
