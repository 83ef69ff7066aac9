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

__all__ = ["power_decay", "factored_axes", "scale_by_factored_rms", "scale_by_sm3", "adafactor", "sm3"]


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
    """Adafactor's beta_2 schedule: the default ``decay_rate_fn`` of :class:`gradtx.scale_by_factored_rms`.

    Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML (arXiv
    1804.04235), section 7.2::

        beta_2(t) = 1 - t**(-decay_rate),   t = step + 1   (step 0-based)

    Args:
      step: the 0-based step (an int or float; with ``step_offset`` it may be shifted).
      decay_rate: the exponent, > 0 (0.8 in the paper).

    Returns:
      beta_2 as a Python float (0 at step 0).

    Examples:
      >>> from gradtx.testing import reference as ref
      >>> print([round(ref.power_decay(s, 0.8), 4) for s in range(3)])
      [0.0, 0.4257, 0.5848]
    """
    return 1.0 - (step + 1.0) ** (-decay_rate)


def factored_axes(shape, factored, min_dim_size_to_factor):
    """Which two axes of a leaf Adafactor factors (the rule of :class:`gradtx.scale_by_factored_rms`).

    The leaf keeps a full second moment when ``factored`` is False, its rank is below 2, or its second largest
    axis is shorter than ``min_dim_size_to_factor``; otherwise its two largest axes are factored (ties: the
    earlier axis counts as the smaller).

    Args:
      shape: the leaf's shape, a tuple of ints.
      factored: whether factoring is enabled at all.
      min_dim_size_to_factor: the smallest length of the second largest axis that is factored, >= 0.

    Returns:
      ``(second largest axis, largest axis)`` as a pair of ints, or None for a full second moment.

    Examples:
      >>> from gradtx.testing import reference as ref
      >>> print(ref.factored_axes((3, 5, 4), True, 2), ref.factored_axes((3, 5), True, 4))
      (2, 1) None
    """
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
    """Float64 reference of :class:`gradtx.scale_by_factored_rms`: Adafactor's factored scaling.

    Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML (arXiv
    1804.04235), Algorithms 4 and 5, with the paper's sums. Per leaf, with its two largest axes (n, m) as given
    by :func:`factored_axes`::

        beta_k = decay_rate_fn(k - 1 - step_offset, decay_rate)   (default 1 - (k - step_offset)**-decay_rate)
        factored:  R_k = beta_k R_{k-1} + (1 - beta_k) rowsum(g^2 + epsilon)      (sums over m)
                   C_k = beta_k C_{k-1} + (1 - beta_k) colsum(g^2 + epsilon)      (sums over n)
                   V_hat = R_k C_k / sum(R_k)
        otherwise: V_hat = beta_k V_{k-1} + (1 - beta_k) (g^2 + epsilon)          (the full moment)
        u = g / sqrt(V_hat)

    Per leaf: ``step(g, params=None)`` takes dicts ``{leaf path: float64 array}`` (the leaves keep their
    shapes; the paths are only keys) and returns such a dict of new float64 arrays; the state is kept per path.

    Args:
      factored: whether leaves of rank >= 2 may be factored. Default True.
      decay_rate: the exponent of the default beta_2 schedule, > 0. Default 0.8.
      step_offset: subtracted from the step count before the schedule, >= 0. Default 0.
      min_dim_size_to_factor: leaves whose second largest axis is shorter keep a full moment. Default 128.
      epsilon: added to g^2, > 0. Default 1e-30.
      decay_rate_fn: a callable ``(step, decay_rate) -> beta`` of the 0-based (offset) step, or None for
        :func:`power_decay`. Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.scale_by_factored_rms(min_dim_size_to_factor=2)
      >>> g = {"w": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([1.0, -2.0])}
      >>> u = tx.step(g)
      >>> u = tx.step({"w": 2 * g["w"], "b": -g["b"]})
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [[0.9388 1.3277]
       [1.2595 1.1875]] [-1.  1.]
    """

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
    """Float64 reference of :class:`gradtx.scale_by_sm3`: SM3-II's scaling with momentum.

    Anil, Gupta, Koren & Singer 2019, "Memory-Efficient Adaptive Optimization", NeurIPS (arXiv 1901.11150),
    Algorithm SM3-II, with explicit loops over the cover. Per leaf of rank >= 2 the cover has one set per slice
    along each axis (rank < 2: one per element)::

        nu'(i) = c g(i)^2 + b2 min_{r covering i} mu(r)     (c = 1 if b2 == 1 else 1 - b2)
        mu(r) = max_{i in r} nu'(i);   s = g / sqrt(nu' + eps) where nu' > 0 else 0
        m_k = b1 m_{k-1} + (1 - b1) s,  m_0 = 0;   u = m_k

    Per leaf: ``step(g, params=None)`` takes dicts ``{leaf path: float64 array}`` (the leaves keep their
    shapes; the paths are only keys) and returns such a dict of new float64 arrays; the state is kept per path.

    Args:
      b1: the momentum decay, in [0, 1). Default 0.9.
      b2: the decay of the accumulators, in [0, 1] (1: plain sums, as in the paper). Default 1.0.
      eps: added under the square root, >= 0. Default 1e-8.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.scale_by_sm3(b1=0.0)
      >>> g = {"w": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([1.0, -2.0])}
      >>> u = tx.step(g)
      >>> u = tx.step(g)
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [[0.4472 0.7071]
       [0.7071 0.7071]] [ 0.7071 -0.7071]
    """

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
    """Float64 reference of :func:`gradtx.adafactor`: Adafactor with Optax's options, written monolithically.

    Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML (arXiv
    1804.04235). Per leaf, with the factored estimate V_hat of :class:`scale_by_factored_rms`::

        beta_k = 1 - (k - decay_offset)**-decay_rate;   U = g / sqrt(V_hat)
        clipping:       U <- U / max(1, rms(U) / clipping_threshold)       (section 5; skipped if None)
        step size:      U <- lr_t U                                        (skipped if learning_rate is None)
        relative step:  U <- max(rms(p), 1e-3) U                           (if multiply_by_parameter_scale)
        momentum:       M_k = momentum M_{k-1} + (1 - momentum) U, U <- M_k   (if momentum is not None)
        weight decay:   U <- U + wd_t p   where the mask is True           (if weight_decay_rate is not None)
        u = -U

    Per leaf: ``step(g, params=None)`` takes dicts ``{leaf path: float64 array}`` (the leaves keep their
    shapes; the paths are only keys) and returns such a dict of new float64 arrays; the state is kept per path.
    ``params`` (a dict with the same paths) is needed for the parameter scale and the weight decay.

    Args:
      learning_rate: lr_t, a float or a callable ``count -> float`` of the 0-based count, or None for no
        step size (the relative step alone). Default None.
      min_dim_size_to_factor: leaves whose second largest axis is shorter keep a full moment. Default 128.
      decay_rate: the exponent of beta_k, > 0. Default 0.8.
      decay_offset: subtracted from the 1-based step in beta_k, >= 0. Default 0.
      multiply_by_parameter_scale: whether to scale by max(rms(p), 1e-3). Default True.
      clipping_threshold: the update clipping threshold d, > 0, or None for no clipping. Default 1.0.
      momentum: the momentum decay in [0, 1), or None for none. Default None.
      dtype_momentum: ignored (the reference computes in float64). Default None.
      weight_decay_rate: wd_t, a float or a callable of the 0-based count, or None for no decay. Default None.
      eps: added to g^2, > 0. Default 1e-30.
      factored: whether leaves of rank >= 2 may be factored. Default True.
      weight_decay_mask: None, a dict ``{path: bools}`` or a flat boolean vector in the order of the leaves,
        True where the decay applies. Default None.

    Raises:
      ValueError: ``mask has N entries for M parameters``, from ``step``, when a flat ``weight_decay_mask``
        does not have one entry per parameter.
      KeyError: from ``step``, when ``params`` lacks a leaf needed by the parameter scale or the decay.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> opt = ref.adafactor(learning_rate=0.1, min_dim_size_to_factor=2, multiply_by_parameter_scale=False)
      >>> g = {"w": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([1.0, -2.0])}
      >>> u = opt.step(g)
      >>> u = opt.step({"w": 2 * g["w"], "b": -g["b"]})
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [[-0.0791 -0.1118]
       [-0.1061 -0.1   ]] [ 0.1 -0.1]
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
    """Float64 reference of :func:`gradtx.sm3`: SM3 with momentum, written monolithically.

    Anil, Gupta, Koren & Singer 2019, "Memory-Efficient Adaptive Optimization", NeurIPS (arXiv 1901.11150):
    SM3-II's accumulators with b2 = 1 (plain sums) and eps = 1e-8, as in :class:`scale_by_sm3`::

        s = g / sqrt(nu' + 1e-8) where nu' > 0 else 0;   m_k = momentum m_{k-1} + (1 - momentum) s;   u = -lr_t m_k

    Per leaf: ``step(g, params=None)`` takes dicts ``{leaf path: float64 array}`` (the leaves keep their
    shapes; the paths are only keys) and returns such a dict of new float64 arrays; the state is kept per path.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      momentum: the momentum decay in [0, 1), or None for none (m = s). Default 0.9.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> opt = ref.sm3(0.1, momentum=None)
      >>> g = {"w": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([1.0, -2.0])}
      >>> u = opt.step(g)
      >>> u = opt.step(g)
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [[-0.0447 -0.0707]
       [-0.0707 -0.0707]] [-0.0707  0.0707]
    """

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
