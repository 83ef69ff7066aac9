"""Float64 NumPy references for the sign family (Lion, Adadelta, Rprop, optimistic gradient, NovoGrad,
Polyak, signSGD/Signum), written from the papers, step by step.

Same interface as ``gradtx.testing.reference``: a class per gradtx name with the same arguments, keeping its
own state; ``u = ref.step(g, params=None)`` on 1-D float64 vectors (the whole pytree raveled), ``u`` what is
added to the parameters. Exceptions:

- NovoGrad is per layer: ``scale_by_novograd`` and ``novograd`` take and return ``{leaf path: array}``.
- The Polyak references need the loss: ``step(g, params=None, value=f)``.

k is the 1-based number of the current update; a schedule (a callable learning rate) is evaluated at the
0-based count k - 1. Masks are flat boolean vectors. Optimizers are monolithic (not composed from the blocks
here) so that gradtx's compositions are checked independently. Imports only numpy and math.
"""

import math

import numpy as np

__all__ = [
    "scale_by_lion", "lion", "scale_by_adadelta", "adadelta", "scale_by_rprop", "rprop",
    "scale_by_optimistic_gradient", "optimistic_gradient_descent", "optimistic_adam", "optimistic_adam_v2",
    "scale_by_novograd", "novograd", "scale_by_polyak", "polyak_sgd", "sign_sgd", "signum",
]

# A squared norm (plus eps) at or below this gives a zero Polyak step (float64 machine epsilon).
_TINY = 2.220446049250313e-16


def _vec(x):
    """A float64 copy of ``x`` (never a view of the caller's array)."""
    return np.array(x, dtype=np.float64, copy=True)


def _value(v, count):
    """A float or a callable count -> float, evaluated at the 0-based ``count``."""
    return float(v(count)) if callable(v) else float(v)  # type: ignore[arg-type]


def _decay(wd, params, mask):
    """wd * p where the mask is True (everywhere without a mask)."""
    d = wd * _vec(params)
    return d if mask is None else np.where(mask, d, 0.0)


def _flat_mask(mask):
    return None if mask is None else np.array(mask, dtype=bool, copy=True)


# ----------------------------------------------------------------------------------------------------
# Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", arXiv 2302.06675, Program 1)
# ----------------------------------------------------------------------------------------------------


def _lion_sign(c, mode, smooth_beta):
    if mode == "hard":
        return np.sign(c)
    if mode == "smooth":
        return np.tanh(smooth_beta * c)
    if mode == "refined":
        return np.where(np.abs(c) < 1.0, c, np.sign(c))
    raise ValueError("mode must be 'hard', 'smooth' or 'refined'")


class scale_by_lion:
    """Float64 reference of :class:`gradtx.scale_by_lion`: Lion's direction, without the step size.

    Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", NeurIPS (arXiv 2302.06675), Program 1::

        c_k = b1 m_{k-1} + (1 - b1) g;   u = S(c_k);   m_k = b2 m_{k-1} + (1 - b2) g,  m_0 = 0
        S = sign ('hard'),  tanh(smooth_beta c) ('smooth'),  c if |c| < 1 else sign(c) ('refined')

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      b1: the interpolation weight of the update, in [0, 1]. Default 0.9.
      b2: the decay of the momentum, in [0, 1). Default 0.99.
      mu_dtype: ignored (the reference computes in float64). Default None.
      mode: 'hard', 'smooth' or 'refined' (keyword-only). Default 'hard'.
      smooth_beta: the slope of tanh in 'smooth' mode, > 0 (keyword-only). Default 1.0.

    Raises:
      ValueError: ``mode must be 'hard', 'smooth' or 'refined'``, from ``step`` for another mode.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.scale_by_lion(mode="smooth"), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[ 0.0997 -0.1974]
       [ 0.0589  0.18  ]]
    """

    def __init__(self, b1=0.9, b2=0.99, mu_dtype=None, *, mode="hard", smooth_beta=1.0):
        self.b1, self.b2, self.mode, self.smooth_beta = float(b1), float(b2), mode, float(smooth_beta)
        self.m = None

    def step(self, g, params=None):
        g = _vec(g)
        m_prev = np.zeros_like(g) if self.m is None else self.m
        c = self.b1 * m_prev + (1.0 - self.b1) * g
        self.m = self.b2 * m_prev + (1.0 - self.b2) * g
        return _lion_sign(c, self.mode, self.smooth_beta)


class lion:
    """Float64 reference of :func:`gradtx.lion`: Lion with decoupled weight decay, written monolithically.

    Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", NeurIPS (arXiv 2302.06675), Program 1::

        c = b1 m + (1 - b1) g;   u = -lr_t (sign(c) + wd_t p)   (no decay term where mask is False)
        m <- b2 m + (1 - b2) g,  m_0 = 0

    Call ``step(g, params)`` once per update with the gradient ``g`` and the parameters ``params`` (1-D
    float64 vectors, the whole pytree raveled; ``params`` is required: without it the update is NaN); it returns
    the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      b1: the interpolation weight of the update, in [0, 1]. Default 0.9.
      b2: the decay of the momentum, in [0, 1). Default 0.99.
      mu_dtype: ignored (the reference computes in float64). Default None.
      weight_decay: the decay coefficient wd_t, >= 0: a float, or a callable ``count -> float`` evaluated at
        the 0-based count k - 1. Default 1e-3.
      mask: None (decay everywhere) or a boolean vector as long as the raveled parameters, True where the
        decay applies. Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> opt = ref.lion(0.1, weight_decay=0.5)
      >>> print(np.round(ref.run(opt, [[1.0, -2.0], [0.5, 2.0]], params=[1.0, 4.0]), 4))
      [[-0.15 -0.1 ]
       [-0.15 -0.3 ]]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.99, mu_dtype=None, weight_decay=1e-3, mask=None):
        self.lr, self.b1, self.b2, self.wd = learning_rate, float(b1), float(b2), weight_decay
        self.mask, self.m, self.count = _flat_mask(mask), None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr, wd = _value(self.lr, self.count), _value(self.wd, self.count)
        self.count += 1
        m_prev = np.zeros_like(g) if self.m is None else self.m
        c = self.b1 * m_prev + (1.0 - self.b1) * g
        self.m = self.b2 * m_prev + (1.0 - self.b2) * g
        return -lr * (np.sign(c) + _decay(wd, params, self.mask))


# ----------------------------------------------------------------------------------------------------
# Adadelta (Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method", arXiv 1212.5701, Algorithm 1)
# ----------------------------------------------------------------------------------------------------


class scale_by_adadelta:
    """Float64 reference of :class:`gradtx.scale_by_adadelta`: Adadelta's step, without the sign flip.

    Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method" (arXiv 1212.5701), Algorithm 1; the output is the
    paper's -dx (positive along g)::

        E[g^2]_k = rho E[g^2]_{k-1} + (1 - rho) g^2
        u = sqrt(E[dx^2]_{k-1} + eps) / sqrt(E[g^2]_k + eps) g
        E[dx^2]_k = rho E[dx^2]_{k-1} + (1 - rho) u^2,   E[g^2]_0 = E[dx^2]_0 = 0

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      rho: the decay of both averages, in [0, 1). Default 0.9.
      eps: added under both roots, > 0. Default 1e-6.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.scale_by_adadelta(eps=0.01), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[ 0.3015 -0.3123]
       [ 0.1954  0.3204]]
    """

    def __init__(self, rho=0.9, eps=1e-6):
        self.rho, self.eps = float(rho), float(eps)
        self.eg, self.ex = None, None

    def step(self, g, params=None):
        g = _vec(g)
        eg_prev = np.zeros_like(g) if self.eg is None else self.eg
        ex_prev = np.zeros_like(g) if self.ex is None else self.ex
        self.eg = self.rho * eg_prev + (1.0 - self.rho) * g * g
        u = np.sqrt(ex_prev + self.eps) / np.sqrt(self.eg + self.eps) * g
        self.ex = self.rho * ex_prev + (1.0 - self.rho) * u * u
        return u


class adadelta:
    """Float64 reference of :func:`gradtx.adadelta`: Adadelta with coupled weight decay and a learning rate.

    Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method" (arXiv 1212.5701), Algorithm 1 (eq. 14,
    RMS[y] = sqrt(E[y^2] + eps))::

        g <- g + wd_t p   (where the mask is True);   E[g^2]_k = rho E[g^2]_{k-1} + (1 - rho) g^2
        dx = -(RMS[dx]_{k-1} / RMS[g]_k) g;   E[dx^2]_k = rho E[dx^2]_{k-1} + (1 - rho) dx^2;   u = lr_t dx

    Call ``step(g, params)`` once per update with the gradient ``g`` and the parameters ``params`` (1-D
    float64 vectors, the whole pytree raveled; ``params`` is required: without it the update is NaN); it returns
    the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: lr_t, a float or a callable ``count -> float`` of the 0-based count, or None for 1 (the
        paper). Default None.
      rho: the decay of both averages, in [0, 1). Default 0.9.
      eps: added under both roots, > 0. Default 1e-6.
      weight_decay: the decay coefficient wd_t, >= 0: a float, or a callable ``count -> float`` evaluated at
        the 0-based count k - 1. Default 0.0.
      weight_decay_mask: None (decay everywhere) or a boolean vector as long as the raveled parameters, True
        where the decay applies. Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> opt = ref.adadelta(eps=0.01)
      >>> print(np.round(ref.run(opt, [[1.0, -2.0], [0.5, 2.0]], params=[1.0, 4.0]), 4))
      [[-0.3015  0.3123]
       [-0.1954 -0.3204]]
    """

    def __init__(self, learning_rate=None, rho=0.9, eps=1e-6, weight_decay=0.0, weight_decay_mask=None):
        self.lr = 1.0 if learning_rate is None else learning_rate
        self.rho, self.eps, self.wd = float(rho), float(eps), weight_decay
        self.mask, self.eg, self.ex, self.count = _flat_mask(weight_decay_mask), None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr, wd = _value(self.lr, self.count), _value(self.wd, self.count)
        self.count += 1
        g = g + _decay(wd, params, self.mask)
        eg_prev = np.zeros_like(g) if self.eg is None else self.eg
        ex_prev = np.zeros_like(g) if self.ex is None else self.ex
        self.eg = self.rho * eg_prev + (1.0 - self.rho) * g * g
        rms_dx = np.sqrt(ex_prev + self.eps)
        rms_g = np.sqrt(self.eg + self.eps)
        dx = -(rms_dx / rms_g) * g
        self.ex = self.rho * ex_prev + (1.0 - self.rho) * dx * dx
        return lr * dx


# ----------------------------------------------------------------------------------------------------
# Rprop (Riedmiller & Braun 1993; iRprop- of Igel & Huesken 2000)
# ----------------------------------------------------------------------------------------------------


class _IRpropMinus:
    """Per coordinate i, with the previous gradient g'_i (set to 0 after a sign change) and step size d_i:
    g'_i g_i > 0: d_i = min(d_i eta_plus, d_max), move by d_i sign(g_i), g'_i = g_i;
    g'_i g_i < 0: d_i = max(d_i eta_minus, d_min), no move, g'_i = 0;
    g'_i g_i = 0: move by d_i sign(g_i), g'_i = g_i.
    (Both bounds are applied to every new step size, i.e. a clip, as gradtx and Optax do.)"""

    def __init__(self, learning_rate, eta_minus, eta_plus, min_step_size, max_step_size):
        self.d0, self.eta_minus, self.eta_plus = float(learning_rate), float(eta_minus), float(eta_plus)
        self.d_min, self.d_max = float(min_step_size), float(max_step_size)
        self.d, self.g_prev = None, None

    def move(self, g):
        """The positive step d_i sign(g_i) (0 after a sign change)."""
        g = _vec(g)
        d = np.full_like(g, self.d0) if self.d is None else self.d.copy()
        g_prev = np.zeros_like(g) if self.g_prev is None else self.g_prev.copy()
        out = np.zeros_like(g)
        for i in range(g.size):
            agreement = g_prev[i] * g[i]
            if agreement > 0:
                d[i] = min(max(d[i] * self.eta_plus, self.d_min), self.d_max)
                out[i] = d[i] * np.sign(g[i])
                g_prev[i] = g[i]
            elif agreement < 0:
                d[i] = min(max(d[i] * self.eta_minus, self.d_min), self.d_max)
                out[i] = 0.0
                g_prev[i] = 0.0
            else:
                out[i] = d[i] * np.sign(g[i])
                g_prev[i] = g[i]
        self.d, self.g_prev = d, g_prev
        return out


class scale_by_rprop:
    """Float64 reference of :class:`gradtx.scale_by_rprop`: the iRprop- step, positive along g.

    Riedmiller & Braun 1993, "A direct adaptive method for faster backpropagation learning: the RPROP
    algorithm", ICNN; the iRprop- variant of Igel & Huesken 2000, "Improving the Rprop Learning Algorithm".
    Per coordinate i, with the previous gradient g'_i (0 after a sign change, and at the start) and the step size
    d_i (d_0 = learning_rate)::

        g'_i g_i > 0:  d_i = clip(d_i eta_plus, min_step_size, max_step_size);   step d_i sign(g_i);  g'_i = g_i
        g'_i g_i < 0:  d_i = clip(d_i eta_minus, min_step_size, max_step_size);  no step;            g'_i = 0
        g'_i g_i = 0:  step d_i sign(g_i);                                                        g'_i = g_i

    (both bounds are applied to every new step size, as gradtx and Optax do).

    The update is the positive step d_i sign(g_i) (0 after a sign change).

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the initial step size d_0 of every coordinate, > 0.
      eta_minus: the factor applied to d after a sign change, in (0, 1). Default 0.5.
      eta_plus: the factor applied to d while the sign holds, > 1. Default 1.2.
      min_step_size: the smallest step size, > 0. Default 1e-6.
      max_step_size: the largest step size, >= min_step_size. Default 50.0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.scale_by_rprop(0.1), [[1.0, -2.0], [0.5, 2.0], [1.0, 1.0]]), 4))
      [[ 0.1   -0.1  ]
       [ 0.12   0.   ]
       [ 0.144  0.05 ]]
    """

    def __init__(self, learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0):
        self.rule = _IRpropMinus(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size)

    def step(self, g, params=None):
        return self.rule.move(g)


class rprop:
    """Float64 reference of :func:`gradtx.rprop`: Rprop (iRprop-), u = -d sign(g).

    Riedmiller & Braun 1993, "A direct adaptive method for faster backpropagation learning: the RPROP
    algorithm", ICNN; the iRprop- variant of Igel & Huesken 2000, "Improving the Rprop Learning Algorithm".
    Per coordinate i, with the previous gradient g'_i (0 after a sign change, and at the start) and the step size
    d_i (d_0 = learning_rate)::

        g'_i g_i > 0:  d_i = clip(d_i eta_plus, min_step_size, max_step_size);   step d_i sign(g_i);  g'_i = g_i
        g'_i g_i < 0:  d_i = clip(d_i eta_minus, min_step_size, max_step_size);  no step;            g'_i = 0
        g'_i g_i = 0:  step d_i sign(g_i);                                                        g'_i = g_i

    (both bounds are applied to every new step size, as gradtx and Optax do).

    The update is the negative step -d_i sign(g_i) (0 after a sign change).

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the initial step size d_0 of every coordinate, > 0.
      eta_minus: the factor applied to d after a sign change, in (0, 1). Default 0.5.
      eta_plus: the factor applied to d while the sign holds, > 1. Default 1.2.
      min_step_size: the smallest step size, > 0. Default 1e-6.
      max_step_size: the largest step size, >= min_step_size. Default 50.0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.rprop(0.1), [[1.0, -2.0], [0.5, 2.0], [1.0, 1.0]]), 4))
      [[-0.1    0.1  ]
       [-0.12  -0.   ]
       [-0.144 -0.05 ]]
    """

    def __init__(self, learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0):
        self.rule = _IRpropMinus(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size)

    def step(self, g, params=None):
        return -self.rule.move(g)


# ----------------------------------------------------------------------------------------------------
# Optimistic gradient (Daskalakis et al. 2018, arXiv 1711.00141; Mokhtari et al. 2019, arXiv 1901.08511)
# ----------------------------------------------------------------------------------------------------


class scale_by_optimistic_gradient:
    """Float64 reference of :class:`gradtx.scale_by_optimistic_gradient`: the optimistic direction.

    Daskalakis, Ilyas, Syrgkanis & Zeng 2018, "Training GANs with Optimism", ICLR (arXiv 1711.00141); Mokhtari,
    Ozdaglar & Pattathil 2019 (arXiv 1901.08511)::

        u_k = (alpha + beta) g_k - beta g_{k-1},   g_0 := g_1   (so u_1 = alpha g_1)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      alpha: the weight of the current gradient, >= 0. Default 1.0.
      beta: the weight of the gradient difference (the optimism), >= 0. Default 1.0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.scale_by_optimistic_gradient(), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[ 1. -2.]
       [ 0.  6.]]
    """

    def __init__(self, alpha=1.0, beta=1.0):
        self.alpha, self.beta, self.g_prev = float(alpha), float(beta), None

    def step(self, g, params=None):
        g = _vec(g)
        g_prev = g if self.g_prev is None else self.g_prev
        self.g_prev = g
        return (self.alpha + self.beta) * g - self.beta * g_prev


class optimistic_gradient_descent:
    """Float64 reference of :func:`gradtx.optimistic_gradient_descent`: optimistic gradient descent.

    Daskalakis, Ilyas, Syrgkanis & Zeng 2018, "Training GANs with Optimism", ICLR (arXiv 1711.00141); Mokhtari,
    Ozdaglar & Pattathil 2019 (arXiv 1901.08511)::

        u = -lr_t ((alpha + beta) g_k - beta g_{k-1}),   g_0 := g_1
        (OMD, alpha = beta = 1:  x_{k+1} = x_k - 2 lr g_k + lr g_{k-1})

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      alpha: the weight of the current gradient, >= 0. Default 1.0.
      beta: the weight of the gradient difference (the optimism), >= 0. Default 1.0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.optimistic_gradient_descent(0.1), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[-0.1  0.2]
       [-0.  -0.6]]
    """

    def __init__(self, learning_rate, alpha=1.0, beta=1.0):
        self.lr, self.alpha, self.beta, self.g_prev, self.count = learning_rate, float(alpha), float(beta), None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.count)
        self.count += 1
        g_prev = g if self.g_prev is None else self.g_prev
        self.g_prev = g
        return -lr * ((self.alpha + self.beta) * g - self.beta * g_prev)


class _AdamDirection:
    """Adam's r_k = m_hat / (sqrt(v_hat + eps_root) + eps) (Kingma & Ba 2015, Algorithm 1); with nesterov
    (Dozat 2016) m_hat = b1 m_k / (1 - b1^(k+1)) + (1 - b1) g_k / (1 - b1^k)."""

    def __init__(self, b1, b2, eps, eps_root, nesterov):
        self.b1, self.b2, self.eps, self.eps_root = float(b1), float(b2), float(eps), float(eps_root)
        self.nesterov, self.m, self.v, self.k = nesterov, None, None, 0

    def direction(self, g):
        self.k += 1
        b1, b2, k = self.b1, self.b2, self.k
        self.m = (1.0 - b1) * g + (0.0 if self.m is None else b1 * self.m)
        self.v = (1.0 - b2) * g * g + (0.0 if self.v is None else b2 * self.v)
        if self.nesterov:
            m_hat = b1 * self.m / (1.0 - b1 ** (k + 1)) + (1.0 - b1) * g / (1.0 - b1**k)
        else:
            m_hat = self.m / (1.0 - b1**k)
        return m_hat / (np.sqrt(self.v / (1.0 - b2**k) + self.eps_root) + self.eps)


class optimistic_adam:
    """Float64 reference of :func:`gradtx.optimistic_adam`: optimistic Adam.

    Daskalakis, Ilyas, Syrgkanis & Zeng 2018, "Training GANs with Optimism", ICLR (arXiv 1711.00141),
    Algorithm 1, with Adam's direction r_k = m_hat / (sqrt(v_hat + eps_root) + eps) (Kingma & Ba 2015)::

        u = -(lr r_k + optimism (r_k - r_{k-1})),   r_0 := r_1

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr, a float > 0 (no schedule).
      optimism: the weight of r_k - r_{k-1}, >= 0, or None for ``learning_rate``. Default None.
      b1: the decay of Adam's first moment, in [0, 1). Default 0.9.
      b2: the decay of Adam's second moment, in [0, 1). Default 0.999.
      eps: added to the root of v_hat, >= 0. Default 1e-8.
      eps_root: added to v_hat under the root, >= 0. Default 0.0.
      mu_dtype: ignored (the reference computes in float64). Default None.
      nesterov: whether Adam's direction uses NAdam's m_hat, b1 m_k / (1 - b1**(k+1)) + (1 - b1) g / (1 - b1**k)
        (keyword-only). Default True.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.optimistic_adam(0.1, nesterov=False), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[-0.1     0.1   ]
       [-0.0864 -0.1105]]
    """

    def __init__(
        self, learning_rate, optimism=None, b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0, mu_dtype=None, *, nesterov=True
    ):
        self.lr = float(learning_rate)
        self.optimism = self.lr if optimism is None else float(optimism)
        self.adam, self.r_prev = _AdamDirection(b1, b2, eps, eps_root, nesterov), None

    def step(self, g, params=None):
        r = self.adam.direction(_vec(g))
        r_prev = r if self.r_prev is None else self.r_prev
        self.r_prev = r
        return -(self.lr * r + self.optimism * (r - r_prev))


class optimistic_adam_v2:
    """Float64 reference of :func:`gradtx.optimistic_adam_v2`: the optimistic step on Adam's direction.

    The optimistic update of Daskalakis et al. 2018 (arXiv 1711.00141) applied to Adam's direction r_k =
    m_hat / (sqrt(v_hat + eps_root) + eps)::

        u = -lr_t ((alpha + beta) r_k - beta r_{k-1}),   r_0 := r_1

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      alpha: the weight of the current direction, >= 0 (keyword-only). Default 1.0.
      beta: the weight of the direction difference, >= 0 (keyword-only). Default 1.0.
      b1: the decay of Adam's first moment, in [0, 1). Default 0.9.
      b2: the decay of Adam's second moment, in [0, 1). Default 0.999.
      eps: added to the root of v_hat, >= 0. Default 1e-8.
      eps_root: added to v_hat under the root, >= 0. Default 0.0.
      mu_dtype: ignored (the reference computes in float64). Default None.
      nesterov: whether Adam's direction uses NAdam's m_hat, b1 m_k / (1 - b1**(k+1)) + (1 - b1) g / (1 - b1**k)
        (keyword-only). Default True.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.optimistic_adam_v2(0.1, nesterov=False), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[-0.1     0.1   ]
       [-0.0864 -0.1105]]
    """

    def __init__(
        self,
        learning_rate,
        *,
        alpha=1.0,
        beta=1.0,
        b1=0.9,
        b2=0.999,
        eps=1e-08,
        eps_root=0.0,
        mu_dtype=None,
        nesterov=True,
    ):
        self.lr, self.alpha, self.beta = learning_rate, float(alpha), float(beta)
        self.adam, self.r_prev, self.count = _AdamDirection(b1, b2, eps, eps_root, nesterov), None, 0

    def step(self, g, params=None):
        lr = _value(self.lr, self.count)
        self.count += 1
        r = self.adam.direction(_vec(g))
        r_prev = r if self.r_prev is None else self.r_prev
        self.r_prev = r
        return -lr * ((self.alpha + self.beta) * r - self.beta * r_prev)


# ----------------------------------------------------------------------------------------------------
# NovoGrad (Ginsburg et al. 2019, arXiv 1905.11286, Algorithm 1): per layer, {path: array} in and out
# ----------------------------------------------------------------------------------------------------


class _NovoGradMoments:
    """Per layer l: v_1 = ||g_1||^2, v_k = b2 v_{k-1} + (1 - b2) ||g_k||^2;
    m_1 = g_1 / (sqrt(v_1 + eps_root) + eps) + wd w_1,
    m_k = b1 m_{k-1} + g_k / (sqrt(v_k + eps_root) + eps) + wd w_k   (no (1 - b1) factor, as in the paper)."""

    def __init__(self, b1, b2, eps, eps_root, weight_decay):
        self.b1, self.b2, self.eps, self.eps_root = float(b1), float(b2), float(eps), float(eps_root)
        self.wd, self.m, self.v = float(weight_decay), {}, {}

    def moments(self, grads, params):
        out = {}
        for path, g in grads.items():
            g, w = _vec(g), _vec(params[path])
            norm_sq = float(np.sum(g * g))
            if path not in self.v:
                self.v[path] = norm_sq
                self.m[path] = g / (math.sqrt(norm_sq + self.eps_root) + self.eps) + self.wd * w
            else:
                self.v[path] = self.b2 * self.v[path] + (1.0 - self.b2) * norm_sq
                scaled = g / (math.sqrt(self.v[path] + self.eps_root) + self.eps)
                self.m[path] = self.b1 * self.m[path] + scaled + self.wd * w
            out[path] = self.m[path].copy()
        return out


class scale_by_novograd:
    """Float64 reference of :class:`gradtx.scale_by_novograd`: NovoGrad's layer-wise moments.

    Ginsburg et al. 2019, "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of Deep
    Networks" (arXiv 1905.11286), Algorithm 1, per layer l (leaf), with ||g|| the l2 norm of the whole leaf::

        v_1 = ||g_1||^2,   v_k = b2 v_{k-1} + (1 - b2) ||g_k||^2
        m_1 = g_1 / (sqrt(v_1 + eps_root) + eps) + wd w_1
        m_k = b1 m_{k-1} + g_k / (sqrt(v_k + eps_root) + eps) + wd w_k   (no (1 - b1) factor, as in the paper)

    The update is u^l = m^l_k.

    Per layer: ``step(g, params)`` takes dicts ``{leaf path: float64 array}`` of the gradients and the
    parameters (``params`` is required) and returns such a dict of new float64 arrays; the state is kept per
    path.

    Args:
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the layer's squared norm, in [0, 1). Default 0.25.
      eps: added to the root of v, >= 0. Default 1e-8.
      eps_root: added to v under the root, >= 0. Default 0.0.
      weight_decay: the coefficient wd of the parameters (a float), >= 0. Default 0.0.
      mu_dtype: ignored (the reference computes in float64). Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> g = {"w": np.array([3.0, 4.0]), "b": np.array([1.0])}
      >>> p = {"w": np.array([1.0, 1.0]), "b": np.array([0.0])}
      >>> tx = ref.scale_by_novograd(eps=0.0)
      >>> u = tx.step(g, p)
      >>> u = tx.step(g, p)
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [1.14 1.52] [1.9]
    """

    def __init__(self, b1=0.9, b2=0.25, eps=1e-8, eps_root=0.0, weight_decay=0.0, mu_dtype=None):
        self.rule = _NovoGradMoments(b1, b2, eps, eps_root, weight_decay)

    def step(self, g, params=None):
        return self.rule.moments(g, params)


class novograd:
    """Float64 reference of :func:`gradtx.novograd`: NovoGrad, w^l <- w^l - lr_t m^l_k.

    Ginsburg et al. 2019, "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of Deep
    Networks" (arXiv 1905.11286), Algorithm 1, per layer l (leaf), with ||g|| the l2 norm of the whole leaf::

        v_1 = ||g_1||^2,   v_k = b2 v_{k-1} + (1 - b2) ||g_k||^2
        m_1 = g_1 / (sqrt(v_1 + eps_root) + eps) + wd w_1
        m_k = b1 m_{k-1} + g_k / (sqrt(v_k + eps_root) + eps) + wd w_k   (no (1 - b1) factor, as in the paper)

    The update is u^l = -lr_t m^l_k.

    Per layer: ``step(g, params)`` takes dicts ``{leaf path: float64 array}`` of the gradients and the
    parameters (``params`` is required) and returns such a dict of new float64 arrays; the state is kept per
    path.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the layer's squared norm, in [0, 1). Default 0.25.
      eps: added to the root of v, >= 0. Default 1e-6.
      eps_root: added to v under the root, >= 0. Default 0.0.
      weight_decay: the coefficient wd of the parameters (a float), >= 0. Default 0.0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> g = {"w": np.array([3.0, 4.0]), "b": np.array([1.0])}
      >>> p = {"w": np.array([1.0, 1.0]), "b": np.array([0.0])}
      >>> opt = ref.novograd(0.1, eps=0.0)
      >>> u = opt.step(g, p)
      >>> u = opt.step(g, p)
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [-0.114 -0.152] [-0.19]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.25, eps=1e-6, eps_root=0.0, weight_decay=0.0):
        self.lr, self.count = learning_rate, 0
        self.rule = _NovoGradMoments(b1, b2, eps, eps_root, weight_decay)

    def step(self, g, params=None):
        lr = _value(self.lr, self.count)
        self.count += 1
        return {path: -lr * m for path, m in self.rule.moments(g, params).items()}


# ----------------------------------------------------------------------------------------------------
# Polyak step size (Loizou, Vaswani, Laradji & Lacoste-Julien 2021, arXiv 2002.10542, SPS_max with c = 1;
# SPS+ of Garrigos et al. 2023, arXiv 2307.14528)
# ----------------------------------------------------------------------------------------------------


def _polyak_step(g, value, f_min, max_learning_rate, eps, variant):
    """gamma = min((f - f*) / (||g||^2 + eps), gamma_max); (f - f*)_+ for 'sps+'; 0 if ||g||^2 + eps ~ 0."""
    if value is None:
        raise ValueError("the Polyak step needs value=f")
    gap = float(value) - f_min
    if variant == "sps+":
        gap = max(gap, 0.0)
    elif variant != "sps":
        raise ValueError("variant must be 'sps' or 'sps+'")
    denom = float(np.sum(g * g)) + eps
    if denom <= _TINY:
        return 0.0
    return min(gap / denom, max_learning_rate)


class scale_by_polyak:
    """Float64 reference of :class:`gradtx.scale_by_polyak`: u = gamma g, the Polyak step size.

    Loizou, Vaswani, Laradji & Lacoste-Julien 2021, "Stochastic Polyak Step-size for SGD: An Adaptive
    Learning Rate for Fast Convergence", AISTATS (arXiv 2002.10542), SPS_max with c = 1; 'sps+' clips the gap
    at 0 (Garrigos, Gower & Schaipp 2023, arXiv 2307.14528)::

        gamma = min((f - f_min) / (||g||^2 + eps), max_learning_rate)      ((f - f_min)_+ for 'sps+')
        gamma = 0 when ||g||^2 + eps <= 2.22e-16 (float64 machine epsilon)

    Call ``step(g, params=None, value=f)`` once per update with the gradient ``g`` (a 1-D float64 vector,
    the whole pytree raveled) and the loss ``f`` at the current parameters; it returns the update as a new
    float64 array.

    Args:
      f_min: the (estimated) minimum of the loss. Default 0.0.
      max_learning_rate: the cap gamma_max of the step size, > 0. Default 1.0.
      eps: added to the squared gradient norm, >= 0. Default 0.0.
      variant: 'sps' or 'sps+'. Default 'sps'.

    Raises:
      ValueError: ``the Polyak step needs value=f`` from ``step`` without ``value``, and ``variant must be 'sps'
        or 'sps+'`` from ``step`` for another variant.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.scale_by_polyak(max_learning_rate=10.0)
      >>> # f(w) = ||w||^2 at w = [1, 2]: f = 5, g = [2, 4], gamma = 5 / 20; then at w = [0.5, 1]
      >>> print(np.round(tx.step(np.array([2.0, 4.0]), value=5.0), 4))
      [0.5 1. ]
      >>> print(np.round(tx.step(np.array([1.0, 2.0]), value=1.25), 4))
      [0.25 0.5 ]
    """

    def __init__(self, f_min=0.0, max_learning_rate=1.0, eps=0.0, variant="sps"):
        self.f_min, self.max_lr, self.eps, self.variant = float(f_min), float(max_learning_rate), float(eps), variant

    def step(self, g, params=None, value=None):
        g = _vec(g)
        return _polyak_step(g, value, self.f_min, self.max_lr, self.eps, self.variant) * g


class polyak_sgd:
    """Float64 reference of :func:`gradtx.polyak_sgd`: SGD with the Polyak step size.

    Loizou, Vaswani, Laradji & Lacoste-Julien 2021, "Stochastic Polyak Step-size for SGD: An Adaptive
    Learning Rate for Fast Convergence", AISTATS (arXiv 2002.10542), SPS_max with c = 1; 'sps+' clips the gap
    at 0 (Garrigos, Gower & Schaipp 2023, arXiv 2307.14528)::

        gamma = min((f - f_min) / (||g||^2 + eps), max_learning_rate)      ((f - f_min)_+ for 'sps+')
        gamma = 0 when ||g||^2 + eps <= 2.22e-16 (float64 machine epsilon)

    The update is u = -s_t gamma g with s_t = scaling(k - 1) (a float or a schedule of the 0-based count).

    Call ``step(g, params=None, value=f)`` once per update with the gradient ``g`` (a 1-D float64 vector,
    the whole pytree raveled) and the loss ``f`` at the current parameters; it returns the update as a new
    float64 array.

    Args:
      max_learning_rate: the cap gamma_max of the step size, > 0. Default 1.0.
      scaling: s_t, a float or a callable ``count -> float``. Default 1.0.
      f_min: the (estimated) minimum of the loss. Default 0.0.
      eps: added to the squared gradient norm, >= 0. Default 0.0.
      variant: 'sps' or 'sps+'. Default 'sps'.

    Raises:
      ValueError: ``the Polyak step needs value=f`` from ``step`` without ``value``, and ``variant must be 'sps'
        or 'sps+'`` from ``step`` for another variant.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> opt = ref.polyak_sgd(max_learning_rate=10.0)
      >>> # f(w) = ||w||^2 at w = [1, 2]: f = 5, g = [2, 4], gamma = 5 / 20; then at w = [0.5, 1]
      >>> print(np.round(opt.step(np.array([2.0, 4.0]), value=5.0), 4))
      [-0.5 -1. ]
      >>> print(np.round(opt.step(np.array([1.0, 2.0]), value=1.25), 4))
      [-0.25 -0.5 ]
    """

    def __init__(self, max_learning_rate=1.0, scaling=1.0, f_min=0.0, eps=0.0, variant="sps"):
        self.max_lr, self.scaling, self.f_min = float(max_learning_rate), scaling, float(f_min)
        self.eps, self.variant, self.count = float(eps), variant, 0

    def step(self, g, params=None, value=None):
        g = _vec(g)
        s = _value(self.scaling, self.count)
        self.count += 1
        return -s * _polyak_step(g, value, self.f_min, self.max_lr, self.eps, self.variant) * g


# ----------------------------------------------------------------------------------------------------
# signSGD and Signum (Bernstein, Wang, Azizzadenesheli & Anandkumar 2018, arXiv 1802.04434, Algorithms 1-2)
# ----------------------------------------------------------------------------------------------------


class sign_sgd:
    """Float64 reference of :func:`gradtx.sign_sgd`: signSGD, u = -lr_t sign(g).

    Bernstein, Wang, Azizzadenesheli & Anandkumar 2018, "signSGD: Compressed Optimisation for Non-Convex
    Problems", ICML (arXiv 1802.04434), Algorithm 1.

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.sign_sgd(0.1), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[-0.1  0.1]
       [-0.1 -0.1]]
    """

    def __init__(self, learning_rate):
        self.lr, self.count = learning_rate, 0

    def step(self, g, params=None):
        lr = _value(self.lr, self.count)
        self.count += 1
        return -lr * np.sign(_vec(g))


class signum:
    """Float64 reference of :func:`gradtx.signum`: Signum, the sign of the momentum.

    Bernstein, Wang, Azizzadenesheli & Anandkumar 2018, "signSGD: Compressed Optimisation for Non-Convex
    Problems", ICML (arXiv 1802.04434), Algorithm 2::

        m_k = beta m_{k-1} + (1 - beta) g,  m_0 = 0;   u = -lr_t sign(m_k)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      beta: the momentum decay, in [0, 1). Default 0.9.
      accumulator_dtype: ignored (the reference computes in float64). Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.signum(0.1), [[1.0, -2.0], [0.5, 2.0], [1.0, 1.0]]), 4))
      [[-0.1  0.1]
       [-0.1 -0.1]
       [-0.1 -0.1]]
    """

    def __init__(self, learning_rate, beta=0.9, accumulator_dtype=None):
        self.lr, self.beta, self.m, self.count = learning_rate, float(beta), None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.count)
        self.count += 1
        self.m = (1.0 - self.beta) * g + (0.0 if self.m is None else self.beta * self.m)
        return -lr * np.sign(self.m)
