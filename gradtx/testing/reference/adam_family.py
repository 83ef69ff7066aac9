"""Float64 NumPy references for the Adam family (the executable spec of ``gradtx.transforms.adam_family``
and ``gradtx.optimizers.adam_family``), written from the papers' pseudo-code.

Interface as in ``gradtx.testing.reference``: a class per block and per optimizer, named like the gradtx
name, with the same arguments and defaults (dtype arguments accepted and ignored); ``u = ref.step(g,
params=None)`` on 1-D float64 vectors, keeping its own state and never mutating its inputs. ``k`` is the
1-based number of the current step; a callable learning rate or weight decay is evaluated at ``k - 1``.
``mask`` is a boolean vector (True where weight decay applies) or None.

The optimizers are monolithic (each runs its paper's loop with the learning rate and weight decay inside),
not compositions of the blocks below. Where Optax departs from a paper, the reference follows Optax and says
so; the paper's form is noted beside it. This module imports only numpy and math and shares no code with
gradtx.
"""

import math

import numpy as np

__all__ = [
    "radam_rho", "radam_r", "scale_by_adamax", "scale_by_amsgrad", "scale_by_belief", "scale_by_yogi",
    "scale_by_radam", "scale_by_adan", "adamaxw", "adamax", "amsgrad", "adabelief", "yogi", "radam", "adan",
]


def _vec(x):
    """A float64 copy of ``x`` (never a view of the caller's array)."""
    return np.array(x, dtype=np.float64, copy=True)


def _value(v, count):
    """A float or a callable count -> float, evaluated at the 0-based ``count``."""
    return float(v(count)) if callable(v) else float(v)  # type: ignore[arg-type]


def _mask(mask):
    return None if mask is None else np.array(mask, dtype=bool, copy=True)


def _decay(wd, p, mask):
    """wd * p where mask (or everywhere if mask is None), 0 elsewhere."""
    d = wd * p
    return d if mask is None else np.where(mask, d, 0.0)


def radam_rho(b2, k):
    """Float64 reference of :func:`gradtx.transforms.radam_rho`: RAdam's (rho_k, rho_inf), written naively.

    Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond", ICLR (arXiv 1908.03265), eq. 6 and
    Algorithm 2; rho is the length of the approximated simple moving average::

        rho_inf = 2 / (1 - b2) - 1;   rho_k = rho_inf - 2 k b2**k / (1 - b2**k)

    Args:
      b2: the decay of the second moment, in (0, 1).
      k: the 1-based step number, >= 1.

    Returns:
      The pair ``(rho_k, rho_inf)`` of Python floats.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> rho, rho_inf = ref.radam_rho(0.9, 10)
      >>> print(round(rho, 4), round(rho_inf, 4))
      8.2932 19.0
    """
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    b2k = b2**k
    return rho_inf - 2.0 * k * b2k / (1.0 - b2k), rho_inf


def radam_r(rho, rho_inf):
    """RAdam's variance rectification term r_k (used by :class:`scale_by_radam` and :class:`radam`).

    Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond", ICLR (arXiv 1908.03265),
    Algorithm 2::

        r_k = sqrt((rho - 4) (rho - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho))

    Args:
      rho: rho_k of :func:`radam_rho`, > 4 for a real root (or < 2).
      rho_inf: rho_inf of :func:`radam_rho`, > 4.

    Returns:
      r_k, a Python float (1 when rho = rho_inf).

    Raises:
      ValueError: ``math domain error`` when the product under the root is negative (2 < rho < 4).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> rho, rho_inf = ref.radam_rho(0.9, 10)
      >>> print(round(ref.radam_r(rho, rho_inf), 4))
      0.4927
    """
    return math.sqrt((rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho))


# ----------------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------------


class scale_by_adamax:
    """Float64 reference of :class:`gradtx.scale_by_adamax`: Adamax's direction, without the step size.

    Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", ICLR, section 7.1, Algorithm 2; Optax puts
    eps inside the max (the paper has max(b2 u_{k-1}, abs(g)))::

        m_k = b1 m_{k-1} + (1 - b1) g;   u_k = max(b2 u_{k-1}, |g| + eps);   m_0 = u_0 = 0
        out = m_k / ((1 - b1**k) u_k)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the infinity norm, in [0, 1). Default 0.999.
      eps: added to abs(g) inside the max, >= 0. Default 1e-8.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.scale_by_adamax(), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[ 1.     -1.    ]
       [ 0.7376  0.0526]]
    """

    def __init__(self, b1=0.9, b2=0.999, eps=1e-8):
        self.b1, self.b2, self.eps = float(b1), float(b2), float(eps)
        self.m, self.u, self.k = None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        self.k += 1
        m_prev = np.zeros_like(g) if self.m is None else self.m
        u_prev = np.zeros_like(g) if self.u is None else self.u
        self.m = self.b1 * m_prev + (1.0 - self.b1) * g
        self.u = np.maximum(self.b2 * u_prev, np.abs(g) + self.eps)
        return self.m / ((1.0 - self.b1**self.k) * self.u)


class scale_by_amsgrad:
    """Float64 reference of :class:`gradtx.scale_by_amsgrad`: AMSGrad's direction, without the step size.

    Reddi, Kale & Kumar 2018, "On the Convergence of Adam and Beyond", ICLR, Algorithm 2, in Optax's variant
    (the maximum of the bias-corrected second moment)::

        m_k, v_k as in Adam;   v_eff = v_k / (1 - b2**k) if bias_correction_nu else v_k (the paper)
        vmax_k = max(vmax_{k-1}, v_eff),  vmax_0 = 0;   m_eff = m_k / (1 - b1**k) if bias_correction_mu else m_k
        out = m_eff / (sqrt(vmax_k + eps_root) + eps)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the root of vmax, >= 0. Default 1e-8.
      eps_root: added to vmax under the root, >= 0. Default 0.0.
      mu_dtype: ignored (the reference computes in float64). Default None.
      bias_correction_mu: whether to bias-correct the first moment. Default True.
      bias_correction_nu: whether to bias-correct the second moment before the max. Default True.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.scale_by_amsgrad(), [[1.0, -2.0], [0.5, 2.0], [0.1, 0.1]]), 4))
      [[ 1.     -1.    ]
       [ 0.7368  0.0526]
       [ 0.5018  0.0517]]
    """

    def __init__(
        self,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        eps_root=0.0,
        mu_dtype=None,
        bias_correction_mu=True,
        bias_correction_nu=True,
    ):
        self.b1, self.b2, self.eps, self.eps_root = float(b1), float(b2), float(eps), float(eps_root)
        self.bc_mu, self.bc_nu = bias_correction_mu, bias_correction_nu
        self.m, self.v, self.vmax, self.k = None, None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        self.k += 1
        k, b1, b2 = self.k, self.b1, self.b2
        zero = np.zeros_like(g)
        self.m = b1 * (zero if self.m is None else self.m) + (1.0 - b1) * g
        self.v = b2 * (zero if self.v is None else self.v) + (1.0 - b2) * g * g
        v_eff = self.v / (1.0 - b2**k) if self.bc_nu else self.v
        self.vmax = np.maximum(zero if self.vmax is None else self.vmax, v_eff)
        m_eff = self.m / (1.0 - b1**k) if self.bc_mu else self.m
        return m_eff / (np.sqrt(self.vmax + self.eps_root) + self.eps)


class scale_by_belief:
    """Float64 reference of :class:`gradtx.scale_by_belief`: AdaBelief's direction, without the step size.

    Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients", NeurIPS
    (arXiv 2010.07468), Algorithm 2; the paper's single eps is used in both places (eps_root added to s, eps in
    the denominator)::

        m_k = b1 m_{k-1} + (1 - b1) g;   s_k = b2 s_{k-1} + (1 - b2) (g - m_k)^2 + eps_root;   m_0 = s_0 = 0
        m_hat = m_k / (1 - b1**k)  (nesterov: NAdam's);   s_hat = s_k / (1 - b2**k)
        out = m_hat / (sqrt(s_hat) + eps)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the belief s, in [0, 1). Default 0.999.
      eps: added to the root of s_hat, >= 0. Default 1e-16.
      eps_root: added to s_k at every step, >= 0. Default 1e-16.
      nesterov: whether to use NAdam's m_hat, b1 m_k / (1 - b1**(k+1)) + (1 - b1) g / (1 - b1**k)
        (keyword-only). Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.scale_by_belief(), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[ 1.1111 -1.1111]
       [ 1.0752  0.0556]]
    """

    def __init__(self, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, *, nesterov=False):
        self.b1, self.b2, self.eps, self.eps_root = float(b1), float(b2), float(eps), float(eps_root)
        self.nesterov, self.m, self.s, self.k = nesterov, None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        self.k += 1
        k, b1, b2 = self.k, self.b1, self.b2
        zero = np.zeros_like(g)
        self.m = b1 * (zero if self.m is None else self.m) + (1.0 - b1) * g
        self.s = b2 * (zero if self.s is None else self.s) + (1.0 - b2) * (g - self.m) ** 2 + self.eps_root
        if self.nesterov:
            m_hat = b1 * self.m / (1.0 - b1 ** (k + 1)) + (1.0 - b1) * g / (1.0 - b1**k)
        else:
            m_hat = self.m / (1.0 - b1**k)
        s_hat = self.s / (1.0 - b2**k)
        return m_hat / (np.sqrt(s_hat) + self.eps)


class scale_by_yogi:
    """Float64 reference of :class:`gradtx.scale_by_yogi`: Yogi's direction, without the step size.

    Zaheer, Reddi, Sachan, Kale & Kumar 2018, "Adaptive Methods for Nonconvex Optimization", NeurIPS,
    Algorithm 2, with Optax's conventions: m_0 = v_0 = initial_accumulator_value (the paper: m_0 = 0, v_0 small)
    and bias correction (the paper has none)::

        m_k = b1 m_{k-1} + (1 - b1) g;   v_k = v_{k-1} - (1 - b2) sign(v_{k-1} - g^2) g^2
        out = m_hat / (sqrt(v_hat + eps_root) + eps),   hats divided by (1 - b**k)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the root of v_hat, >= 0. Default 1e-3.
      eps_root: added to v_hat under the root, >= 0. Default 0.0.
      initial_accumulator_value: m_0 and v_0. Default 1e-6.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.scale_by_yogi(), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[ 0.9985 -0.9994]
       [ 0.9303  0.0526]]
    """

    def __init__(self, b1=0.9, b2=0.999, eps=1e-3, eps_root=0.0, initial_accumulator_value=1e-6):
        self.b1, self.b2, self.eps, self.eps_root = float(b1), float(b2), float(eps), float(eps_root)
        self.init = float(initial_accumulator_value)
        self.m, self.v, self.k = None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        self.k += 1
        k, b1, b2 = self.k, self.b1, self.b2
        m_prev = np.full_like(g, self.init) if self.m is None else self.m
        v_prev = np.full_like(g, self.init) if self.v is None else self.v
        g2 = g * g
        self.m = b1 * m_prev + (1.0 - b1) * g
        self.v = v_prev - (1.0 - b2) * np.sign(v_prev - g2) * g2
        m_hat = self.m / (1.0 - b1**k)
        v_hat = self.v / (1.0 - b2**k)
        return m_hat / (np.sqrt(v_hat + self.eps_root) + self.eps)


class scale_by_radam:
    """Float64 reference of :class:`gradtx.scale_by_radam`: Rectified Adam's direction, without the step size.

    Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond", ICLR (arXiv 1908.03265),
    Algorithm 2, with Optax's test rho_k >= threshold (the paper's is rho_k > 4)::

        m_k, v_k as in Adam;   m_hat = m_k / (1 - b1**k)  (nesterov: NAdam's);   rho_k, rho_inf from radam_rho
        rho_k >= threshold:  out = r_k m_hat / (sqrt(v_k / (1 - b2**k) + eps_root) + eps)   (r_k of radam_r)
        else:                out = m_hat   (SGD with momentum)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the root of v_hat, >= 0. Default 1e-8.
      eps_root: added to v_hat under the root, >= 0. Default 0.0.
      threshold: the smallest rho_k that gets the adaptive step, > 4. Default 5.0.
      nesterov: whether to use NAdam's m_hat, b1 m_k / (1 - b1**(k+1)) + (1 - b1) g / (1 - b1**k)
        (keyword-only). Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> # the first steps have rho_k < threshold: the update is m_hat (here (0.25 g_1 + 0.5 g_2) / 0.75)
      >>> tx = ref.scale_by_radam(b1=0.5)
      >>> print(np.round(ref.run(tx, [[1.0, -2.0], [4.0, 2.0]]), 4))
      [[ 1.     -2.    ]
       [ 3.      0.6667]]
    """

    def __init__(self, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, threshold=5.0, *, nesterov=False):
        self.b1, self.b2, self.eps, self.eps_root = float(b1), float(b2), float(eps), float(eps_root)
        self.threshold, self.nesterov = float(threshold), nesterov
        self.m, self.v, self.k = None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        self.k += 1
        k, b1, b2 = self.k, self.b1, self.b2
        zero = np.zeros_like(g)
        self.m = b1 * (zero if self.m is None else self.m) + (1.0 - b1) * g
        self.v = b2 * (zero if self.v is None else self.v) + (1.0 - b2) * g * g
        if self.nesterov:
            m_hat = b1 * self.m / (1.0 - b1 ** (k + 1)) + (1.0 - b1) * g / (1.0 - b1**k)
        else:
            m_hat = self.m / (1.0 - b1**k)
        rho, rho_inf = radam_rho(b2, k)
        if rho >= self.threshold:
            v_hat = self.v / (1.0 - b2**k)
            return radam_r(rho, rho_inf) * m_hat / (np.sqrt(v_hat + self.eps_root) + self.eps)
        return m_hat


class scale_by_adan:
    """Float64 reference of :class:`gradtx.scale_by_adan`: Adan's direction (Optax's convention), no step size.

    Xie, Zhou, Li, Lin & Yan 2022, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
    Models" (arXiv 2208.06677), Algorithm 1. The paper, with beta_i = 1 - b_i: m_k = (1-beta1) m_{k-1} +
    beta1 g_k; v_k = (1-beta2) v_{k-1} + beta2 (g_k - g_{k-1}); n_k = (1-beta3) n_{k-1} + beta3 [g_k +
    (1-beta2)(g_k - g_{k-1})]^2. Optax's convention, followed here: zero initial moments with bias correction
    (not m_0 = g_0, n_0 = g_0^2), d_1 = 0, and the difference weighted by (1 - b2) = beta2, not the paper's
    (1 - beta2) = b2::

        d_k = g_k - g_{k-1} (k > 1), d_1 = 0;   m_k = b1 m + (1 - b1) g;   v_k = b2 v + (1 - b2) d
        n_k = b3 n + (1 - b3) (g + (1 - b2) d)^2;   hats divided by (1 - b**k)
        out = (m_hat + (1 - b2) v_hat) / (sqrt(n_hat + eps_root) + eps)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      b1: the decay of the gradient average, in [0, 1). Default 0.98.
      b2: the decay of the gradient-difference average, in [0, 1). Default 0.92.
      b3: the decay of the second moment, in [0, 1). Default 0.99.
      eps: added to the root of n_hat, >= 0. Default 1e-8.
      eps_root: added to n_hat under the root, >= 0. Default 0.0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.scale_by_adan(), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[ 1.     -1.    ]
       [ 0.9351  0.0862]]
    """

    def __init__(self, b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=0.0):
        self.b1, self.b2, self.b3 = float(b1), float(b2), float(b3)
        self.eps, self.eps_root = float(eps), float(eps_root)
        self.m, self.v, self.n, self.g_prev, self.k = None, None, None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        self.k += 1
        k, b1, b2, b3 = self.k, self.b1, self.b2, self.b3
        zero = np.zeros_like(g)
        d = zero if self.g_prev is None else g - self.g_prev
        self.g_prev = g
        self.m = b1 * (zero if self.m is None else self.m) + (1.0 - b1) * g
        self.v = b2 * (zero if self.v is None else self.v) + (1.0 - b2) * d
        self.n = b3 * (zero if self.n is None else self.n) + (1.0 - b3) * (g + (1.0 - b2) * d) ** 2
        m_hat, v_hat, n_hat = self.m / (1.0 - b1**k), self.v / (1.0 - b2**k), self.n / (1.0 - b3**k)
        return (m_hat + (1.0 - b2) * v_hat) / (np.sqrt(n_hat + self.eps_root) + self.eps)


# ----------------------------------------------------------------------------------------------------
# Optimizers (monolithic; u is what gets added to the params)
# ----------------------------------------------------------------------------------------------------


class adamaxw:
    """Float64 reference of :func:`gradtx.adamaxw`: Adamax with decoupled weight decay.

    Adamax (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", ICLR, Algorithm 2) with the
    decoupled weight decay of Loshchilov & Hutter 2019 ("Decoupled Weight Decay Regularization", ICLR), scaled
    by the learning rate as in Optax::

        m_k = b1 m + (1 - b1) g;   u_k = max(b2 u, |g| + eps);   m_0 = u_0 = 0
        out = -lr_t (m_k / ((1 - b1**k) u_k) + wd_t p)   (no decay term where mask is False)

    Call ``step(g, params)`` once per update with the gradient and the parameters (1-D float64 vectors, the
    whole pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the infinity norm, in [0, 1). Default 0.999.
      eps: added to abs(g) inside the max, >= 0. Default 1e-8.
      weight_decay: the decay coefficient wd_t, >= 0: a float, or a callable ``count -> float`` evaluated at
        the 0-based count k - 1. Default 1e-4.
      mask: None (decay everywhere) or a boolean vector as long as the raveled parameters, True where the
        decay applies. Default None.

    Raises:
      ValueError: ``adamaxw.step: params are required for weight decay``, from ``step`` when ``params`` is None
        and wd_t is not 0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> opt = ref.adamaxw(0.1, weight_decay=0.5)
      >>> print(np.round(ref.run(opt, [[1.0, -2.0], [0.5, 2.0]], params=[1.0, 4.0]), 4))
      [[-0.15   -0.1   ]
       [-0.1238 -0.2053]]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4, mask=None):
        self.lr, self.b1, self.b2, self.eps = learning_rate, float(b1), float(b2), float(eps)
        self.wd, self.mask = weight_decay, _mask(mask)
        self.m, self.u, self.k = None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr, wd = _value(self.lr, self.k), _value(self.wd, self.k)
        self.k += 1
        zero = np.zeros_like(g)
        self.m = self.b1 * (zero if self.m is None else self.m) + (1.0 - self.b1) * g
        self.u = np.maximum(self.b2 * (zero if self.u is None else self.u), np.abs(g) + self.eps)
        direction = self.m / ((1.0 - self.b1**self.k) * self.u)
        if params is not None:
            direction = direction + _decay(wd, _vec(params), self.mask)
        elif wd != 0.0:
            raise ValueError("adamaxw.step: params are required for weight decay")
        return -lr * direction


class adamax(adamaxw):
    """Float64 reference of :func:`gradtx.adamax`: Adamax, i.e. :class:`adamaxw` without weight decay.

    Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", ICLR, section 7.1, Algorithm 2 (eps inside
    the max, as in Optax)::

        m_k = b1 m + (1 - b1) g;   u_k = max(b2 u, |g| + eps);   out = -lr_t m_k / ((1 - b1**k) u_k)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the infinity norm, in [0, 1). Default 0.999.
      eps: added to abs(g) inside the max, >= 0. Default 1e-8.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.adamax(0.1), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[-0.1     0.1   ]
       [-0.0738 -0.0053]]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-8):
        super().__init__(learning_rate, b1, b2, eps, weight_decay=0.0)

    def step(self, g, params=None):
        return super().step(g, None)


class amsgrad:
    """Float64 reference of :func:`gradtx.amsgrad`: AMSGrad (Optax's variant), written monolithically.

    Reddi, Kale & Kumar 2018, "On the Convergence of Adam and Beyond", ICLR, Algorithm 2; see
    :class:`scale_by_amsgrad` for the bias-correction options::

        vmax_k = max(vmax_{k-1}, v_eff);   out = -lr_t m_eff / (sqrt(vmax_k + eps_root) + eps)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the root of vmax, >= 0. Default 1e-8.
      eps_root: added to vmax under the root, >= 0. Default 0.0.
      mu_dtype: ignored (the reference computes in float64). Default None.
      bias_correction_mu: whether to bias-correct the first moment. Default True.
      bias_correction_nu: whether to bias-correct the second moment before the max. Default True.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.amsgrad(0.1), [[1.0, -2.0], [0.5, 2.0], [0.1, 0.1]]), 4))
      [[-0.1     0.1   ]
       [-0.0737 -0.0053]
       [-0.0502 -0.0052]]
    """

    def __init__(
        self,
        learning_rate,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        eps_root=0.0,
        mu_dtype=None,
        bias_correction_mu=True,
        bias_correction_nu=True,
    ):
        self.lr, self.b1, self.b2 = learning_rate, float(b1), float(b2)
        self.eps, self.eps_root = float(eps), float(eps_root)
        self.bc_mu, self.bc_nu = bias_correction_mu, bias_correction_nu
        self.m, self.v, self.vmax, self.k = None, None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.k)
        self.k += 1
        k, b1, b2 = self.k, self.b1, self.b2
        zero = np.zeros_like(g)
        self.m = b1 * (zero if self.m is None else self.m) + (1.0 - b1) * g
        self.v = b2 * (zero if self.v is None else self.v) + (1.0 - b2) * g**2
        v_eff = self.v / (1.0 - b2**k) if self.bc_nu else self.v
        self.vmax = v_eff.copy() if self.vmax is None else np.maximum(self.vmax, v_eff)
        m_eff = self.m / (1.0 - b1**k) if self.bc_mu else self.m
        return -lr * m_eff / (np.sqrt(self.vmax + self.eps_root) + self.eps)


class adabelief:
    """Float64 reference of :func:`gradtx.adabelief`: AdaBelief, written monolithically.

    Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients", NeurIPS
    (arXiv 2010.07468), Algorithm 2::

        m_k = b1 m + (1 - b1) g;   s_k = b2 s + (1 - b2) (g - m_k)^2 + eps_root;   m_0 = s_0 = 0
        out = -lr_t m_hat / (sqrt(s_k / (1 - b2**k)) + eps),   m_hat = m_k / (1 - b1**k)  (nesterov: NAdam's)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the belief s, in [0, 1). Default 0.999.
      eps: added to the root of s_hat, >= 0. Default 1e-16.
      eps_root: added to s_k at every step, >= 0. Default 1e-16.
      nesterov: whether to use NAdam's m_hat, b1 m_k / (1 - b1**(k+1)) + (1 - b1) g / (1 - b1**k)
        (keyword-only). Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.adabelief(0.1), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[-0.1111  0.1111]
       [-0.1075 -0.0056]]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, *, nesterov=False):
        self.lr, self.b1, self.b2 = learning_rate, float(b1), float(b2)
        self.eps, self.eps_root, self.nesterov = float(eps), float(eps_root), nesterov
        self.m, self.s, self.k = None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.k)
        self.k += 1
        k, b1, b2 = self.k, self.b1, self.b2
        zero = np.zeros_like(g)
        self.m = b1 * (zero if self.m is None else self.m) + (1.0 - b1) * g
        self.s = b2 * (zero if self.s is None else self.s) + (1.0 - b2) * (g - self.m) ** 2 + self.eps_root
        if self.nesterov:
            m_hat = b1 * self.m / (1.0 - b1 ** (k + 1)) + (1.0 - b1) * g / (1.0 - b1**k)
        else:
            m_hat = self.m / (1.0 - b1**k)
        return -lr * m_hat / (np.sqrt(self.s / (1.0 - b2**k)) + self.eps)


class yogi:
    """Float64 reference of :func:`gradtx.yogi`: Yogi with Optax's conventions, written monolithically.

    Zaheer, Reddi, Sachan, Kale & Kumar 2018, "Adaptive Methods for Nonconvex Optimization", NeurIPS,
    Algorithm 2, with m_0 = v_0 = 1e-6, bias correction and no eps_root (Optax's recipe)::

        m_k = b1 m + (1 - b1) g;   v_k = v - (1 - b2) sign(v - g^2) g^2
        out = -lr_t m_hat / (sqrt(v_hat) + eps),   hats divided by (1 - b**k)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the root of v_hat, >= 0. Default 1e-3.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.yogi(0.1), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[-0.0999  0.0999]
       [-0.093  -0.0053]]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-3):
        self.lr, self.b1, self.b2, self.eps = learning_rate, float(b1), float(b2), float(eps)
        self.m, self.v, self.k = None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.k)
        self.k += 1
        k, b1, b2 = self.k, self.b1, self.b2
        m_prev = np.full_like(g, 1e-6) if self.m is None else self.m
        v_prev = np.full_like(g, 1e-6) if self.v is None else self.v
        self.m = b1 * m_prev + (1.0 - b1) * g
        self.v = v_prev - (1.0 - b2) * np.sign(v_prev - g**2) * g**2
        return -lr * (self.m / (1.0 - b1**k)) / (np.sqrt(self.v / (1.0 - b2**k)) + self.eps)


class radam:
    """Float64 reference of :func:`gradtx.radam`: Rectified Adam, written monolithically.

    Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond", ICLR (arXiv 1908.03265),
    Algorithm 2, with Optax's threshold test (the paper's is rho_k > 4)::

        rho_inf = 2 / (1 - b2) - 1;   rho_k = rho_inf - 2 k b2**k / (1 - b2**k)
        rho_k >= threshold:  out = -lr_t r_k m_hat / (sqrt(v_hat + eps_root) + eps)   (r_k as in radam_r)
        else:                out = -lr_t m_hat   (SGD with momentum)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the root of v_hat, >= 0. Default 1e-8.
      eps_root: added to v_hat under the root, >= 0. Default 0.0.
      threshold: the smallest rho_k that gets the adaptive step, > 4. Default 5.0.
      nesterov: whether to use NAdam's m_hat, b1 m_k / (1 - b1**(k+1)) + (1 - b1) g / (1 - b1**k)
        (keyword-only). Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> # the first steps have rho_k < threshold: the update is -lr_t m_hat
      >>> opt = ref.radam(0.1, b1=0.5)
      >>> print(np.round(ref.run(opt, [[1.0, -2.0], [4.0, 2.0]]), 4))
      [[-0.1     0.2   ]
       [-0.3    -0.0667]]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, threshold=5.0, *, nesterov=False):
        self.lr, self.b1, self.b2 = learning_rate, float(b1), float(b2)
        self.eps, self.eps_root, self.threshold = float(eps), float(eps_root), float(threshold)
        self.nesterov, self.m, self.v, self.k = nesterov, None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.k)
        self.k += 1
        k, b1, b2 = self.k, self.b1, self.b2
        zero = np.zeros_like(g)
        self.m = b1 * (zero if self.m is None else self.m) + (1.0 - b1) * g
        self.v = b2 * (zero if self.v is None else self.v) + (1.0 - b2) * g**2
        if self.nesterov:
            m_hat = b1 * self.m / (1.0 - b1 ** (k + 1)) + (1.0 - b1) * g / (1.0 - b1**k)
        else:
            m_hat = self.m / (1.0 - b1**k)
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        rho = rho_inf - 2.0 * k * b2**k / (1.0 - b2**k)
        if rho < self.threshold:
            return -lr * m_hat
        r = math.sqrt((rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho))
        return -lr * r * m_hat / (np.sqrt(self.v / (1.0 - b2**k) + self.eps_root) + self.eps)


class adan:
    """Float64 reference of :func:`gradtx.adan`: Adan (Optax's convention) with decoupled weight decay.

    Xie, Zhou, Li, Lin & Yan 2022, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
    Models" (arXiv 2208.06677), Algorithm 1, with the moments of :class:`scale_by_adan` and a decay scaled by the
    learning rate (the paper's is proximal, theta / (1 + wd eta))::

        out = -lr_t ((m_hat + (1 - b2) v_hat) / (sqrt(n_hat + eps_root) + eps) + wd_t p)

    with no decay term where ``mask`` is False.

    Call ``step(g, params)`` once per update with the gradient ``g`` and the parameters ``params`` (1-D
    float64 vectors, the whole pytree raveled; ``params`` is required: without it the update is NaN); it returns
    the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      b1: the decay of the gradient average, in [0, 1). Default 0.98.
      b2: the decay of the gradient-difference average, in [0, 1). Default 0.92.
      b3: the decay of the second moment, in [0, 1). Default 0.99.
      eps: added to the root of n_hat, >= 0. Default 1e-8.
      eps_root: added to n_hat under the root, >= 0. Default 1e-8.
      weight_decay: the decay coefficient wd_t, >= 0: a float, or a callable ``count -> float`` evaluated at
        the 0-based count k - 1. Default 0.0.
      mask: None (decay everywhere) or a boolean vector as long as the raveled parameters, True where the
        decay applies. Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.adan(0.1), [[1.0, -2.0], [0.5, 2.0]], params=[1.0, 4.0]), 4))
      [[-0.1     0.1   ]
       [-0.0935 -0.0086]]
    """

    def __init__(
        self, learning_rate, b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=1e-8, weight_decay=0.0, mask=None
    ):
        self.lr, self.b1, self.b2, self.b3 = learning_rate, float(b1), float(b2), float(b3)
        self.eps, self.eps_root, self.wd, self.mask = float(eps), float(eps_root), weight_decay, _mask(mask)
        self.m, self.v, self.n, self.g_prev, self.k = None, None, None, None, 0

    def step(self, g, params=None):
        g, p = _vec(g), _vec(params)
        lr, wd = _value(self.lr, self.k), _value(self.wd, self.k)
        self.k += 1
        k, b1, b2, b3 = self.k, self.b1, self.b2, self.b3
        zero = np.zeros_like(g)
        d = zero if self.g_prev is None else g - self.g_prev
        self.g_prev = g
        self.m = b1 * (zero if self.m is None else self.m) + (1.0 - b1) * g
        self.v = b2 * (zero if self.v is None else self.v) + (1.0 - b2) * d
        self.n = b3 * (zero if self.n is None else self.n) + (1.0 - b3) * (g + (1.0 - b2) * d) ** 2
        direction = (self.m / (1.0 - b1**k) + (1.0 - b2) * self.v / (1.0 - b2**k)) / (
            np.sqrt(self.n / (1.0 - b3**k) + self.eps_root) + self.eps
        )
        return -lr * (direction + _decay(wd, p, self.mask))
