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
    """Gradient accumulation: over each group of k = every_k_schedule(emitted updates so far) mini-steps,
    S = g_1 + ... + g_k; the first k - 1 mini-steps return 0, the k-th returns opt.step(S / k) (S if not
    use_grad_mean) and starts a new group. A mini-step for which should_skip_update_fn(g, gradient_step,
    params) is true returns 0 and changes nothing. accumulator_dtype is ignored (float64 throughout)."""

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
    """u = inner.step(g) if g is finite or more than max_consecutive_errors non-finite g came in a row
    (counting this one); otherwise u = 0 and the inner reference does not step."""

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
    """u = inner.step(g): the references already see the whole tree as one raveled vector."""

    def __init__(self, inner):
        self.inner = inner

    def step(self, g, params=None, **extra):
        return _step(self.inner, _vec(g), None if params is None else _vec(params), extra)


class lookahead:
    """Lookahead (Zhang, Lucas, Hinton & Ba 2019, arXiv 1907.08610, Algorithm 1), one fast step per call:

        fast <- fast + fast_optimizer.step(g, fast)                 (the inner loop)
        every sync_period-th call:  slow <- slow + alpha (fast - slow);  fast <- slow
                                    (and, with reset_state, a fresh fast optimizer)

    ``step(g, params)`` takes ``params = (fast, slow)`` (the reference keeps its own copies from the first
    call on) and returns ``(fast_update, slow_update)``, the differences new - old.
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
