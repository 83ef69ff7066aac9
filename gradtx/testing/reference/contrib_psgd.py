"""Float64 NumPy reference of PSGD Kron (``gradtx.contrib.scale_by_kron`` and ``kron``); the executable spec of
``gradtx.contrib._psgd``.

Xi-Lin Li 2018, "Preconditioner on Matrix Lie Group for SGD", arXiv 1809.10232; the update rule as in
``evanatyourservice/psgd_jax``'s ``psgd_jax/kron.py`` at commit be9552446381ce1ad9fcf9632c5c1045a9fa44c3 (read,
then written here independently of gradtx: explicit inverses and loops instead of triangular solves and
contractions). See :class:`scale_by_kron` for the equations.

Interface: per leaf (registry entries set ``per_leaf=True``): ``out = ref.step(g, params=None)`` with ``g``,
``params`` and ``out`` ``{leaf path: float64 array}`` dicts in tree order. The random probes are an input:
``probe(k, shapes)`` returns one array per leaf (in ``g``'s order) for the 1-based step ``k``; gradtx's own
stream (``jax.random``) is reproduced by the test registry, since this module imports only NumPy.
"""

import math

import numpy as np

__all__ = ["KRON_COMMIT", "kron_update_probability", "numpy_probe", "scale_by_kron", "kron"]

KRON_COMMIT = "evanatyourservice/psgd_jax@be9552446381ce1ad9fcf9632c5c1045a9fa44c3"


def kron_update_probability(count):
    """kron's ``precond_update_prob_schedule()`` at the 1-based step ``count + 1``:
    ``min(max(exp(-0.001 (count + 1 - 500)), 0.03), 1)``.

    Args:
      count: the 0-based count of previous updates, an int >= 0.

    Returns:
      The probability, a float in [0.03, 1].

    Examples:
      >>> from gradtx.testing.reference.contrib_psgd import kron_update_probability
      >>> print(kron_update_probability(0), round(kron_update_probability(1499), 4))
      1.0 0.3679
    """
    return min(max(math.exp(-0.001 * (count + 1 - 500)), 0.03), 1.0)


def numpy_probe(seed=0):
    """Standard normal probes from ``numpy.random.default_rng(seed)`` (a stand-alone stream; not gradtx's).

    Args:
      seed: the NumPy seed. Default 0.

    Returns:
      A function ``probe(k, shapes) -> [array per shape]``.

    Examples:
      >>> from gradtx.testing.reference.contrib_psgd import numpy_probe
      >>> [v.shape for v in numpy_probe()(1, [(2, 3), ()])]
      [(2, 3), ()]
    """
    rng = np.random.default_rng(seed)
    return lambda k, shapes: [rng.standard_normal(s) for s in shapes]


def _along(x, m, axis):
    """Axis ``axis`` of ``x`` multiplied by the matrix ``m``: ``y[..., a, ...] = sum_n m[a, n] x[..., n, ...]``."""
    return np.moveaxis(np.tensordot(m, x, axes=([1], [axis])), 0, axis)


def _spectral_lower_bound(a):
    """Li's cheap lower bound of the spectral norm of a symmetric matrix (one power step from its largest column)."""
    scale = np.max(np.abs(a))
    if scale == 0:
        return 0.0
    b = a / scale
    x = b @ b[:, np.argmax(np.sum(b * b, axis=0))]
    return scale * np.linalg.norm(b @ (x / np.linalg.norm(x)))


class scale_by_kron:
    """Float64 reference of :class:`gradtx.contrib.scale_by_kron` (PSGD Kron, Li 2018, arXiv 1809.10232).

    Per leaf of rank ``d`` (a scalar: one scalar factor), with ``k`` the 1-based step and ``X x_i M`` axis ``i``
    of ``X`` multiplied by ``M`` (``M`` diagonal for a diagonal factor)::

        m = b1 m + (1 - b1) g;  mhat = m / (1 - b1^k)
        counter += 1; fit when counter * p >= 1 (then counter = 0), p = probability(k - 1)
        fit: balance the factors to the geometric mean of their max |Q_i|; V = probe;
             h = mhat (or g) + sqrt(eps_f32) mean|h| V
             A = h x_i Q_i (all i);  B = V x_i inv(Q_i)^T (all i)
             T1 = A_(i) A_(i)^T, T2 = B_(i) B_(i)^T  (their diagonals for a diagonal factor)
             Q_i -= lr_P triu(T1 - T2) Q_i / bound(T1 + T2)   or   lr_P (T1 - T2) Q_i / max|T1 + T2|
        u = mhat x_i Q_i^T Q_i (all i);  u /= max(1, rms(u) / 1.1)

    Args:
      b1: momentum decay in [0, 1). Default 0.9.
      preconditioner_update_probability: p in [0, 1], or a callable of the 0-based count. Default
        :func:`kron_update_probability`.
      max_size_triangular: longest axis with a triangular factor. Default 8192.
      min_ndim_triangular: smallest rank with triangular factors. Default 2.
      memory_save_mode: None, 'one_diag' (the last longest axis diagonal) or 'all_diag'. Default None.
      momentum_into_precond_update: fit on ``mhat`` (else on ``g``). Default True.
      precond_lr: the factors' normalised step ``lr_P``. Default 0.1.
      precond_init_scale: ``Q_i = s^(1/d) I`` initially. Default 1.0.
      mu_dtype: accepted and ignored. Default None.
      precond_dtype: accepted and ignored. Default None.
      key: accepted and ignored (the probes come from ``probe``). Default 0.
      probe: ``probe(k, shapes) -> [array per leaf]``; default :func:`numpy_probe` ``(0)``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference.contrib_psgd import scale_by_kron
      >>> r = scale_by_kron(b1=0.0, preconditioner_update_probability=0.0)
      >>> print(r.step({"w": np.array([[0.5, 0.0], [0.0, -1.0]])})["w"])
      [[ 0.5  0. ]
       [ 0.  -1. ]]
    """

    def __init__(self, b1=0.9, preconditioner_update_probability=kron_update_probability, max_size_triangular=8192,
                 min_ndim_triangular=2, memory_save_mode=None, momentum_into_precond_update=True, precond_lr=0.1,
                 precond_init_scale=1.0, mu_dtype=None, precond_dtype=None, key=0, probe=None):
        self.b1, self.p = float(b1), preconditioner_update_probability
        self.max_tri, self.min_ndim, self.mode = int(max_size_triangular), int(min_ndim_triangular), memory_save_mode
        self.use_m, self.lr, self.scale = momentum_into_precond_update, float(precond_lr), float(precond_init_scale)
        self.probe = numpy_probe() if probe is None else probe
        self.k, self.counter, self.m, self.q = 0, 0, {}, {}

    def _triangular(self, shape):
        if not shape:
            return [False]
        diag = [self.mode == "all_diag"] * len(shape)
        if self.mode == "one_diag":
            diag[len(shape) - 1 - int(np.argmax(list(shape)[::-1]))] = True
        return [not d and 1 < n <= self.max_tri and len(shape) >= self.min_ndim for n, d in zip(shape, diag)]

    def _fit(self, qs, tri, h, v):
        if len(qs) > 1:
            norms = [np.max(np.abs(q)) for q in qs]
            gmean = math.prod(norms) ** (1.0 / len(qs))
            qs = [q * (gmean / n) for q, n in zip(qs, norms)]
        h = h + math.sqrt(float(np.finfo(np.float32).eps)) * np.mean(np.abs(h)) * v
        if h.ndim == 0:
            a, b = h * qs[0], v / qs[0]
        else:
            a, b = h, v
            for i, (q, t) in enumerate(zip(qs, tri)):
                a = _along(a, q if t else np.diag(q), i)
                b = _along(b, np.linalg.inv(q).T if t else np.diag(1.0 / q), i)
        new = []
        for i, (q, t) in enumerate(zip(qs, tri)):
            if h.ndim == 0:
                t1, t2 = a * a, b * b
            else:
                others = [j for j in range(h.ndim) if j != i]
                t1 = np.tensordot(a, a, axes=(others, others))
                t2 = np.tensordot(b, b, axes=(others, others))
            if t:
                new.append(q - self.lr * np.triu(t1 - t2) @ q / _spectral_lower_bound(t1 + t2))
            else:
                t1, t2 = (t1, t2) if h.ndim == 0 else (np.diag(t1), np.diag(t2))
                new.append(q - self.lr * (t1 - t2) * q / np.max(np.abs(t1 + t2)))
        return new

    def step(self, g, params=None):
        self.k += 1
        prob = float(self.p(self.k - 1)) if callable(self.p) else float(self.p)
        self.counter += 1
        fit = self.counter * prob >= 1
        if fit:
            self.counter = 0
            probes = self.probe(self.k, [np.shape(x) for x in g.values()])
        out = {}
        for idx, (path, x) in enumerate(g.items()):
            x = np.array(x, dtype=np.float64)
            tri = self._triangular(x.shape)
            if path not in self.q:
                s = self.scale ** (1.0 / max(x.ndim, 1))
                self.m[path] = np.zeros_like(x)
                self.q[path] = [s * (np.eye(n) if t else np.ones(n)) for n, t in zip(x.shape, tri)] if x.ndim else [
                    np.float64(self.scale)]
            self.m[path] = self.b1 * self.m[path] + (1 - self.b1) * x
            mhat = self.m[path] / (1 - self.b1**self.k)
            if fit:
                v = np.asarray(probes[idx], np.float64)
                self.q[path] = self._fit(self.q[path], tri, mhat if self.use_m else x, v)
            u = mhat
            if x.ndim == 0:
                u = u * self.q[path][0] ** 2
            for i, (q, t) in enumerate(zip(self.q[path], tri)):
                if x.ndim:
                    u = _along(u, q.T @ q if t else np.diag(q * q), i)
            if u.size:
                u = u / max(1.0, math.sqrt(float(np.mean(u * u))) / 1.1)
            out[path] = u
        return out


class kron:
    """Float64 reference of :func:`gradtx.contrib.kron`: ``u = -lr (scale_by_kron(g) + weight_decay p)``.

    PSGD Kron (Li 2018, arXiv 1809.10232) with decoupled weight decay; see :class:`scale_by_kron`.

    Args:
      learning_rate: a float, or a callable of the 0-based count ``k - 1``. Default 1e-3.
      b1: momentum decay in [0, 1). Default 0.9.
      weight_decay: the decoupled weight decay >= 0 (needs ``params``). Default 0.0.
      mask: accepted and ignored (the decay applies to every leaf). Default None.
      **kwargs: the keyword options of :class:`scale_by_kron` (``probe`` included).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference.contrib_psgd import kron
      >>> r = kron(0.1, b1=0.0, preconditioner_update_probability=0.0)
      >>> print(r.step({"w": np.array([1.0, -0.5])})["w"])
      [-0.1   0.05]
    """

    def __init__(self, learning_rate=1e-3, b1=0.9, weight_decay=0.0, mask=None, **kwargs):
        self.inner = scale_by_kron(b1, **kwargs)
        self.lr, self.wd = learning_rate, float(weight_decay)

    def step(self, g, params=None):
        u = self.inner.step(g)
        lr = float(self.lr(self.inner.k - 1)) if callable(self.lr) else float(self.lr)
        return {p: -lr * (v + (self.wd * np.asarray(params[p], np.float64) if self.wd and params else 0.0))
                for p, v in u.items()}
