"""The foundation's float64 references: the blocks and the named optimizers of ``gradtx`` (and ``run``).

Part of :mod:`gradtx.testing.reference` (its docstring gives the interface and conventions); reach these
through the package, ``from gradtx.testing import reference as ref; ref.adam(...)``. NumPy and ``math`` only.
The named optimizers (sgd, adagrad, rmsprop, adam, adamw, nadam, nadamw) are written monolithically from their
papers, not by composing the blocks below, so that gradtx's compositions are checked independently.
"""

import math

import numpy as np


def _vec(x):
    """A float64 copy of ``x`` (never a view of the caller's array)."""
    return np.array(x, dtype=np.float64, copy=True)


def _value(v, count):
    """A float or a callable count -> float, evaluated at the 0-based ``count``."""
    return float(v(count)) if callable(v) else float(v)  # type: ignore[arg-type]


def run(ref, grads, params=None):
    """Feeds ``grads`` ([steps, n]) to ``ref.step`` and returns the stacked updates [steps, n].

    ``params`` is None, a fixed vector [n], or per-step params [steps, n].
    """
    grads = _vec(grads)
    if params is not None:
        params = _vec(params)
    out = []
    for t in range(grads.shape[0]):
        p = params if params is None or params.ndim == 1 else params[t]
        out.append(ref.step(grads[t], p))
    return np.stack(out) if out else np.zeros_like(grads)


# ----------------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------------


class identity:
    """u = g."""

    def step(self, g, params=None):
        return _vec(g)


class set_to_zero:
    """u = 0."""

    def step(self, g, params=None):
        return np.zeros_like(_vec(g))


class chain:
    """Applies the ``step`` of each reference in order: u = f_n(... f_1(g))."""

    def __init__(self, *refs):
        self.refs = refs

    def step(self, g, params=None):
        u = _vec(g)
        for r in self.refs:
            u = r.step(u, params)
        return u


class scale:
    """u = step_size * g."""

    def __init__(self, step_size):
        self.step_size = float(step_size)

    def step(self, g, params=None):
        return self.step_size * _vec(g)


class scale_by_learning_rate:
    """u = -lr_t * g (u = lr_t * g if not flip_sign); lr_t = learning_rate(count) if callable."""

    def __init__(self, learning_rate, *, flip_sign=True):
        self.lr, self.sign, self.count = learning_rate, (-1.0 if flip_sign else 1.0), 0

    def step(self, g, params=None):
        u = self.sign * _value(self.lr, self.count) * _vec(g)
        self.count += 1
        return u


class scale_by_schedule:
    """u = step_size_fn(count) * g."""

    def __init__(self, step_size_fn):
        self.fn, self.count = step_size_fn, 0

    def step(self, g, params=None):
        u = float(self.fn(self.count)) * _vec(g)
        self.count += 1
        return u


class trace:
    """Momentum: t_k = g + decay * t_{k-1}, t_0 = 0; u = t_k, or u = g + decay * t_k with nesterov."""

    def __init__(self, decay, nesterov=False, accumulator_dtype=None):
        self.decay, self.nesterov, self.t = float(decay), nesterov, None

    def step(self, g, params=None):
        g = _vec(g)
        t_prev = np.zeros_like(g) if self.t is None else self.t
        self.t = g + self.decay * t_prev
        return g + self.decay * self.t if self.nesterov else self.t.copy()


class ema:
    """e_k = (1 - decay) g + decay e_{k-1}, e_0 = 0; u = e_k / (1 - decay**k) if debias else e_k."""

    def __init__(self, decay, debias=True, accumulator_dtype=None):
        self.decay, self.debias, self.e, self.k = float(decay), debias, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        self.k += 1
        e_prev = np.zeros_like(g) if self.e is None else self.e
        self.e = (1.0 - self.decay) * g + self.decay * e_prev
        return self.e / (1.0 - self.decay**self.k) if self.debias else self.e.copy()


class bias_correction:
    """u = g / (1 - decay**k)."""

    def __init__(self, decay):
        self.decay, self.k = float(decay), 0

    def step(self, g, params=None):
        self.k += 1
        return _vec(g) / (1.0 - self.decay**self.k)


class scale_by_rms:
    """RMS normalisation (Tieleman & Hinton 2012, Lecture 6e).

    decay a float: nu_k = decay nu_{k-1} + (1 - decay) g^2, nu_0 = initial_scale;
      init_from_first: nu_1 = g_1^2 exactly (sigma_0 = |g_0|), the EMA afterwards;
      nu_hat = nu_k / (1 - decay**k) if bias_correction else nu_k.
    decay None: nu_k = (1/k) sum_{j<=k} g_j^2 (equal weights).
    u = g / sqrt(nu_hat + eps) if eps_in_sqrt else g / (sqrt(nu_hat) + eps).
    """

    def __init__(
        self,
        decay=0.9,
        eps=1e-8,
        initial_scale=0.0,
        eps_in_sqrt=True,
        bias_correction=False,
        *,
        init_from_first=False,
    ):
        if bias_correction and (decay is None or init_from_first):
            raise ValueError("bias_correction needs a float decay and init_from_first=False")
        if decay is None and initial_scale != 0:
            raise ValueError("initial_scale must be 0 with decay=None")
        self.decay, self.eps, self.initial_scale = decay, float(eps), float(initial_scale)
        self.eps_in_sqrt, self.bias_correction = eps_in_sqrt, bias_correction
        self.init_from_first = init_from_first
        self.nu, self.sum_sq, self.k = None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        self.k += 1
        if self.decay is None:
            self.sum_sq = g * g if self.sum_sq is None else self.sum_sq + g * g
            nu_hat = self.sum_sq / self.k
        else:
            if self.k == 1 and self.init_from_first:
                self.nu = g * g
            else:
                nu_prev = np.full_like(g, self.initial_scale) if self.nu is None else self.nu
                self.nu = self.decay * nu_prev + (1.0 - self.decay) * g * g
            nu_hat = self.nu / (1.0 - self.decay**self.k) if self.bias_correction else self.nu
        if self.eps_in_sqrt:
            return g / np.sqrt(nu_hat + self.eps)
        return g / (np.sqrt(nu_hat) + self.eps)


class scale_by_rss:
    """Adagrad scaling: s_k = s_{k-1} + g^2, s_0 = initial_accumulator_value;
    u = g / sqrt(s_k + eps) where s_k > 0, else 0."""

    def __init__(self, initial_accumulator_value=0.1, eps=1e-7):
        self.s0, self.eps, self.s = float(initial_accumulator_value), float(eps), None

    def step(self, g, params=None):
        g = _vec(g)
        s_prev = np.full_like(g, self.s0) if self.s is None else self.s
        self.s = s_prev + g * g
        positive = self.s > 0
        denom = np.sqrt(np.where(positive, self.s, 1.0) + self.eps)
        return np.where(positive, g / denom, 0.0)


class scale_by_stddev:
    """Centered RMS (Graves 2013): mu_k = EMA of g (mu_0 = 0), nu_k = EMA of g^2 (nu_0 = initial_scale);
    with bias_correction both are divided by (1 - decay**k);
    u = g / sqrt(nu_hat - mu_hat^2 + eps) if eps_in_sqrt else g / (sqrt(nu_hat - mu_hat^2) + eps)."""

    def __init__(self, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True, bias_correction=False):
        self.decay, self.eps, self.initial_scale = float(decay), float(eps), float(initial_scale)
        self.eps_in_sqrt, self.bias_correction = eps_in_sqrt, bias_correction
        self.mu, self.nu, self.k = None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        self.k += 1
        d = self.decay
        mu_prev = np.zeros_like(g) if self.mu is None else self.mu
        nu_prev = np.full_like(g, self.initial_scale) if self.nu is None else self.nu
        self.mu = d * mu_prev + (1.0 - d) * g
        self.nu = d * nu_prev + (1.0 - d) * g * g
        c = (1.0 - d**self.k) if self.bias_correction else 1.0
        var = self.nu / c - (self.mu / c) ** 2
        if self.eps_in_sqrt:
            return g / np.sqrt(var + self.eps)
        return g / (np.sqrt(var) + self.eps)


class scale_by_adam:
    """Adam direction (Kingma & Ba 2015, Algorithm 1, without the learning rate):
    m_k = b1 m_{k-1} + (1 - b1) g; v_k = b2 v_{k-1} + (1 - b2) g^2; m_hat = m_k / (1 - b1**k)
    (nesterov, Dozat 2016: m_hat = b1 m_k / (1 - b1**(k+1)) + (1 - b1) g / (1 - b1**k));
    v_hat = v_k / (1 - b2**k); u = m_hat / (sqrt(v_hat + eps_root) + eps)."""

    def __init__(self, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *, nesterov=False):
        self.b1, self.b2, self.eps, self.eps_root = float(b1), float(b2), float(eps), float(eps_root)
        self.nesterov, self.m, self.v, self.k = nesterov, None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        b1, b2 = self.b1, self.b2
        self.k += 1
        k = self.k
        self.m = (1.0 - b1) * g + (0.0 if self.m is None else b1 * self.m)
        self.v = (1.0 - b2) * g * g + (0.0 if self.v is None else b2 * self.v)
        if self.nesterov:
            m_hat = b1 * self.m / (1.0 - b1 ** (k + 1)) + (1.0 - b1) * g / (1.0 - b1**k)
        else:
            m_hat = self.m / (1.0 - b1**k)
        v_hat = self.v / (1.0 - b2**k)
        return m_hat / (np.sqrt(v_hat + self.eps_root) + self.eps)


class scale_by_sign:
    """u = sign(g)."""

    def step(self, g, params=None):
        return np.sign(_vec(g))


class clip:
    """u = clip(g, -max_delta, max_delta)."""

    def __init__(self, max_delta):
        self.max_delta = float(max_delta)

    def step(self, g, params=None):
        return np.clip(_vec(g), -self.max_delta, self.max_delta)


class clip_by_global_norm:
    """n = ||g||_2 over the whole vector; u = g if n < max_norm else g * max_norm / n."""

    def __init__(self, max_norm):
        self.max_norm = float(max_norm)

    def step(self, g, params=None):
        g = _vec(g)
        n = math.sqrt(float(np.sum(g * g)))
        return g if n < self.max_norm else g * (self.max_norm / n)


class add_decayed_weights:
    """u = g + weight_decay * p where mask is True (or mask is None); u = g elsewhere."""

    def __init__(self, weight_decay=0.0, mask=None):
        self.wd = float(weight_decay)
        self.mask = None if mask is None else np.array(mask, dtype=bool, copy=True)

    def step(self, g, params=None):
        g, p = _vec(g), _vec(params)
        decay = self.wd * p
        if self.mask is not None:
            decay = np.where(self.mask, decay, 0.0)
        return g + decay


# ----------------------------------------------------------------------------------------------------
# Optimizers (monolithic; u is what gets added to the params)
# ----------------------------------------------------------------------------------------------------


class sgd:
    """Stochastic gradient descent with optional heavy-ball / Nesterov momentum
    (Polyak 1964; Sutskever et al. 2013, "On the importance of initialization and momentum").

    momentum None: u = -lr_t g.
    else: b_k = g + momentum b_{k-1}, b_0 = 0; d = b_k, or d = g + momentum b_k with nesterov; u = -lr_t d.
    """

    def __init__(self, learning_rate, momentum=None, nesterov=False, accumulator_dtype=None):
        self.lr, self.momentum, self.nesterov = learning_rate, momentum, nesterov
        self.buf, self.count = None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.count)
        self.count += 1
        if self.momentum is None:
            return -lr * g
        mom = float(self.momentum)
        self.buf = g if self.buf is None else g + mom * self.buf
        d = g + mom * self.buf if self.nesterov else self.buf
        return -lr * d


class adagrad:
    """Adagrad (Duchi, Hazan & Singer 2011, diagonal version):
    G_k = G_{k-1} + g^2, G_0 = initial_accumulator_value; u = -lr_t g / sqrt(G_k + eps) (0 where G_k = 0)."""

    def __init__(self, learning_rate, initial_accumulator_value=0.1, eps=1e-7):
        self.lr, self.G0, self.eps = learning_rate, float(initial_accumulator_value), float(eps)
        self.G, self.count = None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.count)
        self.count += 1
        self.G = (np.full_like(g, self.G0) if self.G is None else self.G) + g * g
        u = np.zeros_like(g)
        pos = self.G > 0
        u[pos] = -lr * g[pos] / np.sqrt(self.G[pos] + self.eps)
        return u


class rmsprop:
    """RMSProp (Tieleman & Hinton 2012, Lecture 6e "rmsprop: divide the gradient by a running average of
    its recent magnitude"); centered variant from Graves 2013 (arXiv 1308.0850, eqs. 38-41).

    MeanSquare:  nu_k = decay nu_{k-1} + (1 - decay) g^2, nu_0 = initial_scale (init_from_first: nu_1 = g^2);
                 decay None: nu_k = (1/k) sum_{j<=k} g_j^2.
    centered:    mu_k = decay mu_{k-1} + (1 - decay) g, mu_0 = 0; var = nu_hat - mu_hat^2 (else var = nu_hat),
                 hats = divided by (1 - decay**k) if bias_correction.
    direction:   d = g / sqrt(var + eps) if eps_in_sqrt else g / (sqrt(var) + eps); x = -lr_t d.
    momentum:    t_k = x + momentum t_{k-1}, t_0 = 0; u = t_k (nesterov: u = x + momentum t_k); else u = x.
    """

    def __init__(
        self,
        learning_rate,
        decay=0.9,
        eps=1e-8,
        initial_scale=0.0,
        eps_in_sqrt=True,
        centered=False,
        momentum=None,
        nesterov=False,
        bias_correction=False,
        *,
        init_from_first=False,
    ):
        if decay is None and (centered or bias_correction or initial_scale != 0):
            raise ValueError("decay=None is incompatible with centered, bias_correction and initial_scale")
        if init_from_first and (centered or bias_correction):
            raise ValueError("init_from_first is incompatible with centered and bias_correction")
        self.lr, self.decay, self.eps, self.nu0 = learning_rate, decay, float(eps), float(initial_scale)
        self.eps_in_sqrt, self.centered, self.bias_correction = eps_in_sqrt, centered, bias_correction
        self.momentum, self.nesterov, self.init_from_first = momentum, nesterov, init_from_first
        self.nu, self.mu, self.t, self.k = None, None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.k)
        self.k += 1
        k, rho = self.k, self.decay
        if rho is None:
            self.nu = g * g if self.nu is None else self.nu + g * g  # running sum of squares
            var = self.nu / k
        else:
            if k == 1 and self.init_from_first:
                self.nu = g * g
            else:
                nu_prev = np.full_like(g, self.nu0) if self.nu is None else self.nu
                self.nu = rho * nu_prev + (1.0 - rho) * g * g
            c = (1.0 - rho**k) if self.bias_correction else 1.0
            var = self.nu / c
            if self.centered:
                self.mu = (1.0 - rho) * g + (0.0 if self.mu is None else rho * self.mu)
                var = var - (self.mu / c) ** 2
        d = g / np.sqrt(var + self.eps) if self.eps_in_sqrt else g / (np.sqrt(var) + self.eps)
        x = -lr * d
        if self.momentum is None:
            return x
        mom = float(self.momentum)
        self.t = x if self.t is None else x + mom * self.t
        return x + mom * self.t if self.nesterov else self.t.copy()


class adam:
    """Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", Algorithm 1):
    m_k = b1 m_{k-1} + (1 - b1) g;  v_k = b2 v_{k-1} + (1 - b2) g^2;
    m_hat = m_k / (1 - b1**k);  v_hat = v_k / (1 - b2**k);  u = -lr_t m_hat / (sqrt(v_hat + eps_root) + eps).
    nesterov (NAdam, Dozat 2016, in the Optax form without the extra b2 factor):
    m_hat = b1 m_k / (1 - b1**(k+1)) + (1 - b1) g / (1 - b1**k).
    """

    def __init__(
        self, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *, nesterov=False
    ):
        self.lr, self.b1, self.b2 = learning_rate, float(b1), float(b2)
        self.eps, self.eps_root, self.nesterov = float(eps), float(eps_root), nesterov
        self.m, self.v, self.k = None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.k)
        self.k += 1
        k, b1, b2 = self.k, self.b1, self.b2
        m_prev = np.zeros_like(g) if self.m is None else self.m
        v_prev = np.zeros_like(g) if self.v is None else self.v
        self.m = b1 * m_prev + (1.0 - b1) * g
        self.v = b2 * v_prev + (1.0 - b2) * g**2
        if self.nesterov:
            m_hat = b1 * self.m / (1.0 - b1 ** (k + 1)) + (1.0 - b1) * g / (1.0 - b1**k)
        else:
            m_hat = self.m / (1.0 - b1**k)
        v_hat = self.v / (1.0 - b2**k)
        return -lr * m_hat / (np.sqrt(v_hat + self.eps_root) + self.eps)


class nadam(adam):
    """NAdam (Dozat 2016, "Incorporating Nesterov Momentum into Adam"): adam with nesterov=True."""

    def __init__(
        self, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *, nesterov=True
    ):
        super().__init__(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov)


class adamw:
    """AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", Algorithm 2), with the
    Optax convention that the decay is scaled by the learning rate:
    m, v, m_hat, v_hat as in Adam (nesterov: NAdam's m_hat);
    u = -lr_t (m_hat / (sqrt(v_hat + eps_root) + eps) + weight_decay * p)   (no decay term where mask False).
    """

    def __init__(
        self,
        learning_rate,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        eps_root=0.0,
        mu_dtype=None,
        weight_decay=1e-4,
        mask=None,
        *,
        nesterov=False,
    ):
        self.lr, self.b1, self.b2 = learning_rate, float(b1), float(b2)
        self.eps, self.eps_root, self.nesterov = float(eps), float(eps_root), nesterov
        self.wd = float(weight_decay)
        self.mask = None if mask is None else np.array(mask, dtype=bool, copy=True)
        self.m, self.v, self.k = None, None, 0

    def step(self, g, params=None):
        g, p = _vec(g), _vec(params)
        lr = _value(self.lr, self.k)
        self.k += 1
        k, b1, b2 = self.k, self.b1, self.b2
        m_prev = np.zeros_like(g) if self.m is None else self.m
        v_prev = np.zeros_like(g) if self.v is None else self.v
        self.m = b1 * m_prev + (1.0 - b1) * g
        self.v = b2 * v_prev + (1.0 - b2) * g**2
        if self.nesterov:
            m_hat = b1 * self.m / (1.0 - b1 ** (k + 1)) + (1.0 - b1) * g / (1.0 - b1**k)
        else:
            m_hat = self.m / (1.0 - b1**k)
        v_hat = self.v / (1.0 - b2**k)
        decay = self.wd * p if self.mask is None else np.where(self.mask, self.wd * p, 0.0)
        return -lr * (m_hat / (np.sqrt(v_hat + self.eps_root) + self.eps) + decay)


class nadamw(adamw):
    """NAdamW (Dozat 2016 + Loshchilov & Hutter 2019): adamw with nesterov=True."""

    def __init__(
        self,
        learning_rate,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        eps_root=0.0,
        mu_dtype=None,
        weight_decay=1e-4,
        mask=None,
        *,
        nesterov=True,
    ):
        super().__init__(
            learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask, nesterov=nesterov
        )
