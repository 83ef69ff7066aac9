"""Float64 NumPy references for the memory-efficient family: Adafactor's factored second moment and SM3.

Per-leaf interface: these statistics depend on the shape of each parameter (rows, columns, slices), so
``u = ref.step(g, params=None)`` takes and returns a dict ``{leaf path: float64 array}`` (the arrays keep
their shapes; the paths are only keys). State is kept per path; inputs are never mutated.

Written from the papers, not from gradtx: the factored estimate with the paper's sums
(``V = R C / (1^T R)``, Shazeer & Stern 2018, Algorithm 4), SM3-II with explicit loops over the slices
of the cover (Anil et al. 2019, Algorithm SM3-II). ``adafactor`` and ``sm3`` are monolithic.
Conventions: k is the 1-based number of the current update; schedules are evaluated at k - 1.
"""

import math

import numpy as np


def _copy(x):
    """A float64 copy of ``x`` (never a view of the caller's array)."""
    return np.array(x, dtype=np.float64, copy=True)


def _value(v, count):
    """A float or a callable count -> float, evaluated at the 0-based ``count``."""
    return float(v(count)) if callable(v) else float(v)  # type: ignore[arg-type]


def _rms(x):
    """Root mean square of an array (0 for an empty one)."""
    return math.sqrt(float(np.mean(x * x))) if x.size else 0.0


def _leaf_masks(mask, g):
    """``{path: bool array}`` from a dict of per-leaf masks or a flat vector in the order of ``g``'s leaves."""
    if mask is None:
        return None
    if isinstance(mask, dict):
        return {k: np.broadcast_to(np.asarray(mask[k], bool), np.shape(v)) for k, v in g.items()}
    flat = np.asarray(mask, bool).ravel()
    out, start = {}, 0
    for k, v in g.items():
        n = int(np.size(v))
        out[k] = flat[start:start + n].reshape(np.shape(v))
        start += n
    if start != flat.size:
        raise ValueError(f"mask has {flat.size} entries for {start} parameters")
    return out


# ----------------------------------------------------------------------------------------------------
# Adafactor's factored second moment
# ----------------------------------------------------------------------------------------------------


def power_decay(step, decay_rate):
    """The paper's beta_2 schedule: 1 - t**(-decay_rate) with t = step + 1 (step 0-based)."""
    return 1.0 - (step + 1.0) ** (-decay_rate)


def factored_axes(shape, factored, min_dim_size_to_factor):
    """(second largest axis, largest axis) of ``shape`` (ties: the earlier axis counts as smaller), or None
    when the leaf keeps a full second moment (not factored, rank < 2, or the two largest axes too short)."""
    if not factored or len(shape) < 2:
        return None
    order = sorted(range(len(shape)), key=lambda a: shape[a])
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return order[-2], order[-1]


class _FactoredMoment:
    """Second-moment statistics of one leaf: row and column sums of G^2 + eps (factored) or the full EMA.

    ``scale(g, beta)`` updates the statistics with decay ``beta`` and returns g / sqrt(V_hat), where, with
    the two largest axes moved last as (n, m): R = EMA of the row sums (over m), C = EMA of the column sums
    (over n), V_hat = R C / sum(R).
    """

    def __init__(self, shape, axes, epsilon):
        self.shape, self.axes, self.eps = shape, axes, epsilon
        self.R = self.C = self.V = None

    def scale(self, g, beta):
        g2 = g * g + self.eps
        if self.axes is None:
            self.V = (1.0 - beta) * g2 if self.V is None else beta * self.V + (1.0 - beta) * g2
            return g / np.sqrt(self.V)
        d1, d0 = self.axes
        x = np.moveaxis(g2, (d1, d0), (-2, -1))  # [..., n, m]
        row_sums, col_sums = x.sum(axis=-1), x.sum(axis=-2)
        self.R = (1.0 - beta) * row_sums if self.R is None else beta * self.R + (1.0 - beta) * row_sums
        self.C = (1.0 - beta) * col_sums if self.C is None else beta * self.C + (1.0 - beta) * col_sums
        total = self.R.sum(axis=-1)
        v_hat = self.R[..., :, None] * self.C[..., None, :] / total[..., None, None]
        return g / np.sqrt(np.moveaxis(v_hat, (-2, -1), (d1, d0)))


class scale_by_factored_rms:
    """Adafactor's scaling (Shazeer & Stern 2018, arXiv 1804.04235, Algorithms 4 and 5): per leaf,
    beta_k = decay_rate_fn(k - 1 - step_offset, decay_rate) (default 1 - (k - step_offset)**-decay_rate);
    u = g / sqrt(V_hat) with V_hat the factored estimate R C / (1^T R) of the EMA of G^2 + epsilon, or the
    EMA itself for leaves that are not factored."""

    def __init__(
        self,
        factored=True,
        decay_rate=0.8,
        step_offset=0,
        min_dim_size_to_factor=128,
        epsilon=1e-30,
        decay_rate_fn=None,
    ):
        self.factored, self.decay_rate, self.offset = factored, float(decay_rate), int(step_offset)
        self.min_dim, self.eps = min_dim_size_to_factor, float(epsilon)
        self.fn = power_decay if decay_rate_fn is None else decay_rate_fn
        self.moments, self.count = {}, 0

    def step(self, g, params=None):
        beta = float(self.fn(self.count - self.offset, self.decay_rate))
        self.count += 1
        out = {}
        for path, leaf in g.items():
            x = _copy(leaf)
            if path not in self.moments:
                axes = factored_axes(x.shape, self.factored, self.min_dim)
                self.moments[path] = _FactoredMoment(x.shape, axes, self.eps)
            out[path] = self.moments[path].scale(x, beta)
        return out


# ----------------------------------------------------------------------------------------------------
# SM3
# ----------------------------------------------------------------------------------------------------


class _SM3Accumulator:
    """SM3-II's accumulators of one leaf. Rank >= 2: one per slice along each axis (mu[a][j] covers the
    elements whose index along axis a is j); rank < 2: one per element."""

    def __init__(self, shape):
        self.shape = shape
        if len(shape) < 2:
            self.mu = [np.zeros(shape)]
        else:
            self.mu = [np.zeros(n) for n in shape]

    def accumulate(self, g, b2):
        c = 1.0 if b2 == 1.0 else 1.0 - b2
        if len(self.shape) < 2:
            nu = c * g * g + b2 * self.mu[0]
            self.mu = [nu.copy()]
            return nu
        nu = np.zeros(self.shape)
        for idx in np.ndindex(*self.shape):
            cover_min = min(self.mu[a][idx[a]] for a in range(len(self.shape)))
            nu[idx] = c * g[idx] ** 2 + b2 * cover_min
        new_mu = [np.full(n, -np.inf) for n in self.shape]
        for idx in np.ndindex(*self.shape):
            for a in range(len(self.shape)):
                new_mu[a][idx[a]] = max(new_mu[a][idx[a]], nu[idx])
        self.mu = new_mu
        return nu


class scale_by_sm3:
    """SM3-II (Anil, Gupta, Koren & Singer 2019, arXiv 1901.11150) with momentum, per leaf:
    nu'(i) = c g(i)^2 + b2 min_{r covering i} mu(r) (c = 1 if b2 == 1 else 1 - b2);
    mu(r) = max_{i in r} nu'(i); s = g / sqrt(nu' + eps) where nu' > 0 else 0; m = b1 m + (1 - b1) s; u = m."""

    def __init__(self, b1=0.9, b2=1.0, eps=1e-8):
        self.b1, self.b2, self.eps = float(b1), float(b2), float(eps)
        self.acc, self.m = {}, {}

    def step(self, g, params=None):
        out = {}
        for path, leaf in g.items():
            x = _copy(leaf)
            acc = self.acc.setdefault(path, _SM3Accumulator(x.shape))
            nu = acc.accumulate(x, self.b2)
            s = np.where(nu > 0, x / np.sqrt(np.where(nu > 0, nu, 1.0) + self.eps), 0.0)
            m = self.m.get(path, np.zeros(x.shape))
            self.m[path] = self.b1 * m + (1.0 - self.b1) * s
            out[path] = self.m[path].copy()
        return out


# ----------------------------------------------------------------------------------------------------
# Optimizers (monolithic; u is what gets added to the params)
# ----------------------------------------------------------------------------------------------------


class adafactor:
    """Adafactor (Shazeer & Stern 2018, arXiv 1804.04235), with Optax's options, per leaf:

    beta_k = 1 - (k - decay_offset)**-decay_rate;  U = g / sqrt(V_hat)   (factored estimate of EMA(g^2 + eps))
    clipping:       U <- U / max(1, rms(U) / clipping_threshold)          (section 5; skipped if None)
    step size:      U <- lr_t U                                           (skipped if learning_rate is None)
    relative step:  U <- max(rms(p), 1e-3) U                              (if multiply_by_parameter_scale)
    momentum:       M_k = momentum M_{k-1} + (1 - momentum) U, U <- M_k  (if momentum is not None)
    weight decay:   U <- U + wd_t p   where the mask is True              (if weight_decay_rate is not None)
    u = -U
    """

    def __init__(
        self,
        learning_rate=None,
        min_dim_size_to_factor=128,
        decay_rate=0.8,
        decay_offset=0,
        multiply_by_parameter_scale=True,
        clipping_threshold=1.0,
        momentum=None,
        dtype_momentum=None,
        weight_decay_rate=None,
        eps=1e-30,
        factored=True,
        weight_decay_mask=None,
    ):
        self.lr, self.min_dim, self.decay_rate = learning_rate, min_dim_size_to_factor, float(decay_rate)
        self.offset, self.param_scale = int(decay_offset), multiply_by_parameter_scale
        self.clip, self.momentum, self.wd = clipping_threshold, momentum, weight_decay_rate
        self.eps, self.factored = float(eps), factored
        self.mask = weight_decay_mask  # a dict {path: bools} or a flat vector in the order of the leaves
        self.moments, self.M, self.count = {}, {}, 0

    def step(self, g, params=None):
        k = self.count + 1
        beta = 1.0 - (k - self.offset) ** (-self.decay_rate)
        lr = None if self.lr is None else _value(self.lr, self.count)
        wd = None if self.wd is None else _value(self.wd, self.count)
        masks = _leaf_masks(self.mask, g) if wd is not None else None
        ps = {} if params is None else params  # needed for the parameter scale and the weight decay
        self.count = k
        out = {}
        for path, leaf in g.items():
            x = _copy(leaf)
            if path not in self.moments:
                axes = factored_axes(x.shape, self.factored, self.min_dim)
                self.moments[path] = _FactoredMoment(x.shape, axes, self.eps)
            u = self.moments[path].scale(x, beta)
            if self.clip is not None:
                u = u / max(1.0, _rms(u) / float(self.clip))
            if lr is not None:
                u = lr * u
            if self.param_scale:
                r = _rms(_copy(ps[path]))
                u = u * (1e-3 if r <= 1e-3 else r)
            if self.momentum is not None:
                mom = float(self.momentum)
                prev = self.M.get(path, np.zeros(x.shape))
                self.M[path] = mom * prev + (1.0 - mom) * u
                u = self.M[path].copy()
            if wd is not None:
                decay = wd * _copy(ps[path])
                if masks is not None:
                    decay = np.where(masks[path], decay, 0.0)
                u = u + decay
            out[path] = -u
        return out


class sm3:
    """SM3 (Anil et al. 2019): u = -lr_t m with m the momentum of SM3-II's g / sqrt(nu') (see scale_by_sm3);
    momentum None means none (m = s)."""

    def __init__(self, learning_rate, momentum=0.9):
        self.lr, self.b1 = learning_rate, 0.0 if momentum is None else float(momentum)
        self.acc, self.m, self.count = {}, {}, 0

    def step(self, g, params=None):
        lr = _value(self.lr, self.count)
        self.count += 1
        out = {}
        for path, leaf in g.items():
            x = _copy(leaf)
            acc = self.acc.setdefault(path, _SM3Accumulator(x.shape))
            nu = acc.accumulate(x, 1.0)
            s = np.where(nu > 0, x / np.sqrt(np.where(nu > 0, nu, 1.0) + 1e-8), 0.0)
            m = self.m.get(path, np.zeros(x.shape))
            self.m[path] = self.b1 * m + (1.0 - self.b1) * s
            out[path] = -lr * self.m[path]
        return out
