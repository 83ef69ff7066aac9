"""Float64 NumPy references for gradtx.contrib's normalize, split_real_and_imaginary, sam, schedule_free (and its
SGD / AdamW recipes) and sophia, written from the papers' pseudo-code (swats: ``contrib_swats``).

Interface as in ``gradtx.testing.reference``: a class named like the gradtx object, built with the same arguments,
``u = ref.step(g, params=None, **extra)`` on 1-D float64 vectors (the raveled pytree). Wrappers take reference
objects for the transformations they wrap. Differences of argument that a NumPy reference needs are keyword
arguments documented on each class (the initial parameters of schedule_free, the exact Hessian diagonal of
sophia). Imports only NumPy and the standard library.
"""

import math

import numpy as np

__all__ = [
    "normalize",
    "split_real_and_imaginary",
    "sam",
    "schedule_free",
    "schedule_free_sgd",
    "schedule_free_adamw",
    "scale_by_sophia",
    "sophia",
]


def _vec(x):
    return np.array(x, dtype=np.float64, copy=True)


def _value(v, count):
    return float(v(count)) if callable(v) else float(v)  # type: ignore[arg-type]


class normalize:
    """Float64 reference of :func:`gradtx.contrib.normalize`: ``u = g / ||g||_2`` over the whole vector.

    The norm is taken over every coordinate (the whole pytree raveled); ``u = 0`` for ``g = 0``.
    ``u = ref.step(g, params=None, **extra)`` on 1-D float64 vectors returns the update ``u`` (``params`` and ``extra``
    are ignored). It takes no arguments.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_misc as ref
      >>> print(np.round(ref.normalize().step(np.array([3.0, -4.0])), 4))
      [ 0.6 -0.8]
    """

    def step(self, g, params=None, **extra):
        g = np.array(g, copy=True)
        n = math.sqrt(float(np.sum(np.abs(g) ** 2)))
        return g * 0.0 if n == 0.0 else g / n


class split_real_and_imaginary:
    """Float64 reference of :func:`gradtx.contrib.split_real_and_imaginary`: complex parameters as real pairs.

    For a complex vector ``z = x + i y``: runs ``inner`` on the real vector ``[x, y]`` (and the params likewise)
    and merges its output ``[u_x, u_y]`` into ``u_x + i u_y``. Real vectors go to ``inner`` unchanged.
    ``u = ref.step(g, params=None, **extra)`` on 1-D vectors returns ``u`` (complex for a complex ``g``).

    Args:
      inner: the reference of the wrapped transformation (an object with ``step(g, params, **extra)``).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference
      >>> from gradtx.testing.reference import contrib_misc as ref
      >>> r = ref.split_real_and_imaginary(reference.sgd(0.1))
      >>> print(np.round(r.step(np.array([1 + 2j, -1j])), 4))
      [-0.1-0.2j  0. +0.1j]
    """

    def __init__(self, inner):
        self.inner = inner

    def step(self, g, params=None, **extra):
        g = np.asarray(g)
        if not np.iscomplexobj(g):
            return self.inner.step(_vec(g), params, **extra)
        n = g.size
        p = None if params is None else np.concatenate([np.real(params), np.imag(params)]).astype(np.float64)
        u = self.inner.step(np.concatenate([np.real(g), np.imag(g)]).astype(np.float64), p, **extra)
        return u[:n] + 1j * u[n:]


class sam:
    """Float64 reference of :func:`gradtx.contrib.sam` (Sharpness-Aware Minimization).

    Foret, Kleiner, Mobahi & Neyshabur 2021, "Sharpness-Aware Minimization for Efficiently Improving
    Generalization", ICLR, arXiv 2010.01412, Algorithm 1. Transparent mode, ``s = sync_period``: steps
    ``j = 0 .. s-2`` of each period save ``w = params`` on ``j = 0`` and return the ascent step
    ``-adv.step(g, params)``; step ``j = s-1`` returns ``w - params + opt.step(g, w)`` (the outer step taken from
    ``w``), then restarts the adversarial optimizer if ``reset_state``. For ``s = 1`` every step is a plain outer
    step. Opaque mode: one call runs ``s - 1`` ascent steps ``q <- q - adv.step(g_q, q)`` from ``q = params``
    and ``g_q = g``, each followed by ``g_q = grad_fn(q, i)``, and returns ``opt.step(g_q, params)``.

    ``u = ref.step(g, params, grad_fn=None, **extra)`` on 1-D float64 vectors (``params`` required; ``grad_fn``
    in opaque mode, a function of a 1-D float64 vector and the step index) returns ``u``.

    Args:
      optimizer: the outer optimizer's reference (an object with ``step(g, params)``).
      adv_optimizer: a zero-argument function building the adversarial optimizer's reference (a restart builds a
        new one); its update is subtracted, so ``sgd(rho)`` ascends.
      sync_period: the period ``s``, >= 1. Default 2.
      reset_state: restart the adversarial optimizer after each outer step. Default True.
      opaque_mode: run the ascent steps inside one call with ``grad_fn``. Default False.
      batch_axis_name: accepted and ignored. Default None.

    Raises:
      AssertionError: ``opaque mode needs grad_fn`` when ``step`` has no ``grad_fn`` in opaque mode.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference
      >>> from gradtx.testing.reference import contrib_misc as ref
      >>> r = ref.sam(reference.sgd(0.1), lambda: reference.sgd(0.05))
      >>> x = np.array([1.0, 1.0])
      >>> u1 = r.step(np.array([1.0, -2.0]), x)
      >>> u2 = r.step(np.array([2.0, -4.0]), x + u1)
      >>> print(np.round(u1, 4), np.round(u1 + u2, 4))
      [ 0.05 -0.1 ] [-0.2  0.4]
    """

    def __init__(self, optimizer, adv_optimizer, sync_period=2, reset_state=True, opaque_mode=False,
                 batch_axis_name=None):
        self.opt, self.make_adv, self.adv = optimizer, adv_optimizer, adv_optimizer()
        self.s, self.reset, self.opaque = int(sync_period), reset_state, opaque_mode
        self.j, self.w = 0, None

    def step(self, g, params=None, grad_fn=None, **extra):
        g, p = _vec(g), _vec(params)
        if self.opaque:
            assert grad_fn is not None, "opaque mode needs grad_fn"
            q, gq = p, g
            for i in range(self.s - 1):
                q = q - self.adv.step(gq, q)
                gq = _vec(grad_fn(q, i))
            if self.reset:
                self.adv = self.make_adv()
            return self.opt.step(gq, p)
        if self.j == 0:
            self.w = p
        last = self.j == self.s - 1
        self.j = (self.j + 1) % self.s
        if not last:
            return -self.adv.step(g, p)
        w = p if self.w is None else self.w
        u = w - p + self.opt.step(g, w)
        if self.reset:
            self.adv = self.make_adv()
        return u


class schedule_free:
    """Float64 reference of :func:`gradtx.contrib.schedule_free`, the Schedule-Free wrapper, on ``y = params``.

    Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky 2024, "The Road Less Scheduled", NeurIPS,
    arXiv 2405.15682, Algorithm 1 (``k`` the 1-based step)::

        x_t = (y_t - (1 - b1) z_t) / b1;   z_{t+1} = z_t + base.step(g, y_t)
        lr_max = max over steps of lr(k);   w = lr_max ** weight_lr_power;   W += w;   c = w / W (0 if W = 0)
        x_{t+1} = (1 - c) x_t + c z_{t+1};   u = b1 x_{t+1} + (1 - b1) z_{t+1} - y_t

    The weights evaluate ``lr`` at the 1-based step ``k``, as gradtx does (its ``step_count``).
    ``u = ref.step(g, params)`` on 1-D float64 vectors (``params`` required) returns ``u``.

    Args:
      base_optimizer: the base optimizer's reference (its update includes the learning rate).
      learning_rate: the learning rate (float or callable) used for the averaging weights.
      b1: the interpolation weight, in (0, 1]. Default 0.9.
      weight_lr_power: the exponent of the averaging weights. Default 2.0.
      state_dtype: accepted and ignored (the reference is float64).
      z0: the parameters ``init`` saw (``z_1``); keyword only, required.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference
      >>> from gradtx.testing.reference import contrib_misc as ref
      >>> x = np.array([1.0, 1.0])
      >>> r = ref.schedule_free(reference.sgd(0.1), 0.1, z0=x)
      >>> print(np.round(r.step(np.array([1.0, -2.0]), x), 4))
      [-0.1  0.2]
    """

    def __init__(self, base_optimizer, learning_rate, b1=0.9, weight_lr_power=2.0, state_dtype=None, *, z0):
        self.base, self.lr, self.b1, self.power = base_optimizer, learning_rate, float(b1), float(weight_lr_power)
        self.z, self.k, self.lr_max, self.wsum = _vec(z0), 0, 0.0, 0.0

    def step(self, g, params=None, **extra):
        y = _vec(params)
        self.k += 1
        self.lr_max = max(self.lr_max, _value(self.lr, self.k))
        w = self.lr_max**self.power
        self.wsum += w
        c = 0.0 if self.wsum == 0.0 else w / self.wsum
        x = (y - (1.0 - self.b1) * self.z) / self.b1
        self.z = self.z + self.base.step(_vec(g), y)
        x = (1.0 - c) * x + c * self.z
        return self.b1 * x + (1.0 - self.b1) * self.z - y


def _warmup_constant(peak, warmup_steps):
    return lambda count: peak * min(float(count) / warmup_steps, 1.0) if warmup_steps > 0 else peak


class schedule_free_sgd(schedule_free):
    """Float64 reference of :func:`gradtx.contrib.schedule_free_sgd`, monolithic.

    :class:`schedule_free` around the base step ``-lr(k - 1) (g + weight_decay y)``, with ``lr`` a linear warm-up
    from 0 over ``warmup_steps`` when given. ``u = ref.step(g, params)`` on 1-D float64 vectors (``params``
    required) returns ``u``.

    Args:
      learning_rate: the peak step size, a float (or a callable when ``warmup_steps`` is None). Default 1.0.
      warmup_steps: the linear warm-up's length, or None for none. Default None.
      b1: the interpolation weight, in (0, 1]. Default 0.9.
      weight_decay: the L2 penalty added to the gradient at ``y``, or None for none. Default None.
      weight_lr_power: the exponent of the averaging weights. Default 2.0.
      state_dtype: accepted and ignored (the reference is float64).
      z0: the parameters ``init`` saw; keyword only, required.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_misc as ref
      >>> x = np.array([1.0, 1.0])
      >>> r = ref.schedule_free_sgd(0.1, z0=x)
      >>> print(np.round(r.step(np.array([1.0, -2.0]), x), 4))
      [-0.1  0.2]
    """

    def __init__(self, learning_rate=1.0, warmup_steps=None, b1=0.9, weight_decay=None, weight_lr_power=2.0,
                 state_dtype=None, *, z0):
        lr = learning_rate if warmup_steps is None else _warmup_constant(float(learning_rate), warmup_steps)
        wd = 0.0 if weight_decay is None else float(weight_decay)

        class _base:
            count = 0

            def step(self, g, y):
                u = -_value(lr, self.count) * (g + wd * y)
                self.count += 1
                return u

        super().__init__(_base(), lr, b1, weight_lr_power, z0=z0)


class schedule_free_adamw(schedule_free):
    """Float64 reference of :func:`gradtx.contrib.schedule_free_adamw`, monolithic.

    :class:`schedule_free` around the base step ``-lr(k - 1) (g / (sqrt(v_hat) + eps) + weight_decay y)`` with
    ``v_k = b2 v_{k-1} + (1 - b2) g^2``, ``v_hat = v_k / (1 - b2^k)`` (no first moment: the averaging is the
    momentum), and ``lr`` a linear warm-up from 0 over ``warmup_steps`` when given. ``u = ref.step(g, params)``
    on 1-D float64 vectors (``params`` required) returns ``u``.

    Args:
      learning_rate: the peak step size, a float (or a callable when ``warmup_steps`` is None). Default 0.0025.
      warmup_steps: the linear warm-up's length, or None for none. Default None.
      b1: the interpolation weight, in (0, 1]. Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      eps: added outside the root, > 0. Default 1e-8.
      weight_decay: the decoupled weight decay at ``y``, >= 0. Default 0.0.
      weight_lr_power: the exponent of the averaging weights. Default 2.0.
      state_dtype: accepted and ignored (the reference is float64).
      z0: the parameters ``init`` saw; keyword only, required.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_misc as ref
      >>> x = np.array([1.0, 1.0])
      >>> r = ref.schedule_free_adamw(0.1, z0=x)
      >>> print(np.round(r.step(np.array([1.0, -2.0]), x), 4))
      [-0.1  0.1]
    """

    def __init__(self, learning_rate=0.0025, warmup_steps=None, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                 weight_lr_power=2.0, state_dtype=None, *, z0):
        lr = learning_rate if warmup_steps is None else _warmup_constant(float(learning_rate), warmup_steps)
        b2, eps, wd = float(b2), float(eps), float(weight_decay)

        class _base:
            count, v = 0, None

            def step(self, g, y):
                self.v = (1.0 - b2) * g * g + (0.0 if self.v is None else b2 * self.v)
                v_hat = self.v / (1.0 - b2 ** (self.count + 1))
                u = -_value(lr, self.count) * (g / (np.sqrt(v_hat) + eps) + wd * y)
                self.count += 1
                return u

        super().__init__(_base(), lr, b1, weight_lr_power, z0=z0)


class scale_by_sophia:
    """Float64 reference of :func:`gradtx.contrib.scale_by_sophia`: Sophia's clipped direction.

    Liu, Li, Hall, Liang & Ma 2023, "Sophia: A Scalable Stochastic Second-order Optimizer for Language Model
    Pre-training", arXiv 2305.14342, Algorithm 3, in Optax's / Levanter's convention (``k`` the 1-based step)::

        m_k = b1 m_{k-1} + (1 - b1) g;   m_hat = m_k / (1 - b1^k)
        u = clip(m_hat / max(gamma h, eps), -clip_threshold, clip_threshold)   (h: the estimate before this step)
        on steps k = 1, T + 1, 2T + 1, ...:  h = b2 h + (1 - b2) diag(H)       (T = update_interval)

    The reference reads the exact Hessian diagonal ``hessian_diag(params)`` where gradtx estimates it with
    Hutchinson's estimator (exact whatever the random signs for the separable losses the tests use).
    ``u = ref.step(g, params)`` on 1-D float64 vectors (``params`` required) returns ``u``.

    Args:
      b1: the momentum's decay, in [0, 1). Default 0.965.
      b2: the Hessian estimate's decay, in [0, 1). Default 0.99.
      eps: the floor of ``gamma h``, > 0. Default 1e-8.
      gamma: the Hessian's scale, > 0. Default 0.01.
      clip_threshold: the clipping bound, or None for none. Default 1.0.
      update_interval: the steps ``T`` between Hessian updates, >= 1. Default 10.
      hessian_diagonal_fn: accepted and ignored (``hessian_diag`` replaces it).
      mu_dtype: accepted and ignored (the reference is float64).
      verbose: accepted and ignored.
      print_win_rate_every_n_steps: accepted and ignored.
      hessian_diag: a callable ``params -> diag(H)`` on 1-D float64 vectors; keyword only, required.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_misc as ref
      >>> r = ref.scale_by_sophia(hessian_diag=lambda x: 2.0 * np.ones_like(x))
      >>> print(np.round(r.step(np.array([1.0, -2.0]), np.array([1.0, 1.0])), 4))
      [ 1. -1.]
    """

    def __init__(self, b1=0.965, b2=0.99, eps=1e-8, gamma=0.01, clip_threshold=1.0, update_interval=10,
                 hessian_diagonal_fn=None, mu_dtype=None, verbose=False, print_win_rate_every_n_steps=0, *,
                 hessian_diag):
        self.b1, self.b2, self.eps, self.gamma = float(b1), float(b2), float(eps), float(gamma)
        self.clip = None if clip_threshold is None else float(clip_threshold)
        self.T, self.diag, self.k, self.m, self.h = int(update_interval), hessian_diag, 0, None, None

    def step(self, g, params=None, **extra):
        g, p = _vec(g), _vec(params)
        m_prev = np.zeros_like(g) if self.m is None else self.m
        h = np.zeros_like(g) if self.h is None else self.h
        self.k += 1
        self.m = self.b1 * m_prev + (1.0 - self.b1) * g
        m_hat = self.m / (1.0 - self.b1**self.k)
        u = m_hat / np.maximum(self.gamma * h, self.eps)
        if self.clip is not None:
            u = np.clip(u, -self.clip, self.clip)
        if (self.k - 1) % self.T == 0:
            self.h = self.b2 * h + (1.0 - self.b2) * _vec(self.diag(p))
        return u


class sophia:
    """Float64 reference of :func:`gradtx.contrib.sophia`: ``u = -lr(k - 1) (scale_by_sophia(g) + weight_decay p)``.

    Sophia (Liu et al. 2023, arXiv 2305.14342) with decoupled weight decay; see :class:`scale_by_sophia`.
    ``u = ref.step(g, params)`` on 1-D float64 vectors (``params`` required) returns ``u``.

    Args:
      learning_rate: the step size: a float, or a callable ``count -> float`` evaluated at the 0-based count ``k - 1``.
      b1: the momentum's decay, in [0, 1). Default 0.965.
      b2: the Hessian estimate's decay, in [0, 1). Default 0.99.
      eps: the floor of ``gamma h``, > 0. Default 1e-8.
      weight_decay: the decoupled weight decay, >= 0. Default 1e-4.
      weight_decay_mask: accepted and ignored (the decay applies everywhere). Default None.
      gamma: the Hessian's scale, > 0. Default 0.01.
      clip_threshold: the clipping bound, or None for none. Default 1.0.
      update_interval: the steps between Hessian updates, >= 1. Default 10.
      hessian_diagonal_fn: accepted and ignored (``hessian_diag`` replaces it).
      mu_dtype: accepted and ignored (the reference is float64).
      verbose: accepted and ignored.
      print_win_rate_every_n_steps: accepted and ignored.
      hessian_diag: a callable ``params -> diag(H)`` on 1-D float64 vectors; keyword only, required.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_misc as ref
      >>> r = ref.sophia(0.1, weight_decay=0.0, hessian_diag=lambda x: 2.0 * np.ones_like(x))
      >>> print(np.round(r.step(np.array([1.0, -2.0]), np.array([1.0, 1.0])), 4))
      [-0.1  0.1]
    """

    def __init__(self, learning_rate, b1=0.965, b2=0.99, eps=1e-8, weight_decay=1e-4, weight_decay_mask=None,
                 gamma=0.01, clip_threshold=1.0, update_interval=10, hessian_diagonal_fn=None, mu_dtype=None,
                 verbose=False, print_win_rate_every_n_steps=0, *, hessian_diag):
        self.lr, self.wd, self.count = learning_rate, float(weight_decay), 0
        self.inner = scale_by_sophia(b1, b2, eps, gamma, clip_threshold, update_interval, hessian_diag=hessian_diag)

    def step(self, g, params=None, **extra):
        d = self.inner.step(g, params) + self.wd * _vec(params)
        u = -_value(self.lr, self.count) * d
        self.count += 1
        return u
