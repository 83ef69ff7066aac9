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
    """Liu et al. 2020 (arXiv 1908.03265), eq. 6 / Algorithm 2: rho_inf = 2/(1-b2) - 1 and
    rho_k = rho_inf - 2 k b2^k / (1 - b2^k), the length of the approximated simple moving average."""
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    b2k = b2**k
    return rho_inf - 2.0 * k * b2k / (1.0 - b2k), rho_inf


def radam_r(rho, rho_inf):
    """The variance rectification term r_k = sqrt((rho-4)(rho-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho))."""
    return math.sqrt((rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho))


# ----------------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------------


class scale_by_adamax:
    """Adamax (Kingma & Ba 2015, arXiv 1412.6980, §7.1, Algorithm 2), without the step size:
    m_k = b1 m_{k-1} + (1 - b1) g;  u_k = max(b2 u_{k-1}, |g| + eps)  (Optax puts eps inside the max; the
    paper has max(b2 u_{k-1}, |g|));  out = m_k / ((1 - b1**k) u_k).  m_0 = u_0 = 0."""

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
    """AMSGrad (Reddi, Kale & Kumar 2018, "On the Convergence of Adam and Beyond", Algorithm 2), Optax's
    variant: m_k, v_k as in Adam; v_eff = v_k / (1 - b2**k) if bias_correction_nu else v_k (the paper);
    vmax_k = max(vmax_{k-1}, v_eff), vmax_0 = 0; m_eff = m_k / (1 - b1**k) if bias_correction_mu else m_k;
    out = m_eff / (sqrt(vmax_k + eps_root) + eps)."""

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
    """AdaBelief (Zhuang et al. 2020, arXiv 2010.07468, Algorithm 2), without the step size:
    m_k = b1 m_{k-1} + (1 - b1) g;  s_k = b2 s_{k-1} + (1 - b2) (g - m_k)^2 + eps_root;
    m_hat = m_k / (1 - b1**k) (nesterov: b1 m_k / (1 - b1**(k+1)) + (1 - b1) g / (1 - b1**k));
    s_hat = s_k / (1 - b2**k);  out = m_hat / (sqrt(s_hat) + eps).  The paper's single eps is used in both
    places (eps_root added to s, eps in the denominator)."""

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
    """Yogi (Zaheer et al. 2018, NeurIPS, "Adaptive Methods for Nonconvex Optimization", Algorithm 2):
    m_k = b1 m_{k-1} + (1 - b1) g;  v_k = v_{k-1} - (1 - b2) sign(v_{k-1} - g^2) g^2;
    out = m_hat / (sqrt(v_hat + eps_root) + eps), hats = / (1 - b**k).  Optax's conventions: m_0 = v_0 =
    initial_accumulator_value (the paper: m_0 = 0, v_0 small) and bias correction (the paper has none)."""

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
    """Rectified Adam (Liu et al. 2020, arXiv 1908.03265, Algorithm 2), without the step size:
    m_k, v_k as in Adam; m_hat = m_k / (1 - b1**k) (nesterov: NAdam's); rho_k, rho_inf from radam_rho;
    if rho_k >= threshold (Optax's test; the paper's Algorithm 2 has rho_k > 4):
        out = r_k m_hat / (sqrt(v_k / (1 - b2**k) + eps_root) + eps)   (the paper: l_k = sqrt((1-b2^k)/v_k))
    else out = m_hat  (SGD with momentum)."""

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
    """Adan (Xie et al. 2022, arXiv 2208.06677, Algorithm 1) in Optax's convention, without the step size.

    The paper, with beta_i = 1 - b_i:  m_k = (1-beta1) m_{k-1} + beta1 g_k;  v_k = (1-beta2) v_{k-1} +
    beta2 (g_k - g_{k-1});  n_k = (1-beta3) n_{k-1} + beta3 [g_k + (1-beta2)(g_k - g_{k-1})]^2;
    theta_{k+1} = theta_k - eta (m_k + (1-beta2) v_k) / (sqrt(n_k) + eps).
    Optax's convention, followed here: zero initial moments with bias correction (not m_0 = g_0, n_0 = g_0^2),
    d_1 = 0, and the difference weighted by (1 - b2) = beta2, not the paper's (1 - beta2) = b2:
    d_k = g_k - g_{k-1} (k > 1);  m_k = b1 m + (1-b1) g;  v_k = b2 v + (1-b2) d;
    n_k = b3 n + (1-b3) (g + (1-b2) d)^2;  out = (m_hat + (1-b2) v_hat) / (sqrt(n_hat + eps_root) + eps)."""

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
    """AdamaxW: Adamax (Kingma & Ba 2015, Algorithm 2) with decoupled weight decay (Loshchilov & Hutter 2019),
    Optax's convention of scaling the decay by the learning rate:
    m_k = b1 m + (1 - b1) g;  u_k = max(b2 u, |g| + eps);
    out = -lr_t (m_k / ((1 - b1**k) u_k) + wd_t p)   (no decay term where mask is False)."""

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
    """Adamax (Kingma & Ba 2015, §7.1): adamaxw without weight decay; out = -lr_t m_k / ((1 - b1**k) u_k)."""

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-8):
        super().__init__(learning_rate, b1, b2, eps, weight_decay=0.0)

    def step(self, g, params=None):
        return super().step(g, None)


class amsgrad:
    """AMSGrad (Reddi, Kale & Kumar 2018, Algorithm 2), Optax's variant (see scale_by_amsgrad):
    out = -lr_t m_eff / (sqrt(vmax_k + eps_root) + eps), vmax_k = max(vmax_{k-1}, v_eff)."""

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
    """AdaBelief (Zhuang et al. 2020, arXiv 2010.07468, Algorithm 2):
    m_k = b1 m + (1 - b1) g;  s_k = b2 s + (1 - b2)(g - m_k)^2 + eps_root;
    out = -lr_t m_hat / (sqrt(s_k / (1 - b2**k)) + eps), m_hat = m_k / (1 - b1**k) (nesterov: NAdam's)."""

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
    """Yogi (Zaheer et al. 2018, Algorithm 2) with Optax's conventions (m_0 = v_0 = 1e-6, bias correction,
    no eps_root): v_k = v - (1 - b2) sign(v - g^2) g^2;  out = -lr_t m_hat / (sqrt(v_hat) + eps)."""

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
    """Rectified Adam (Liu et al. 2020, arXiv 1908.03265, Algorithm 2) with Optax's threshold convention:
    rho_k = rho_inf - 2 k b2^k / (1 - b2^k);  if rho_k >= threshold: out = -lr_t r_k m_hat / (sqrt(v_hat +
    eps_root) + eps), else out = -lr_t m_hat (SGD with momentum)."""

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
    """Adan (Xie et al. 2022, arXiv 2208.06677, Algorithm 1) in Optax's convention (see scale_by_adan),
    with decoupled weight decay scaled by the learning rate (the paper's is proximal, theta / (1 + wd eta)):
    out = -lr_t ((m_hat + (1 - b2) v_hat) / (sqrt(n_hat + eps_root) + eps) + wd_t p)."""

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
