"""Float64 NumPy references for the matrix optimizers of ``gradtx.contrib`` (Muon, SOAP), written from the
papers' pseudo-code; the executable spec of ``gradtx.contrib._muon`` and ``gradtx.contrib._soap``.

Interface: per leaf (the registry entries set ``per_leaf=True``): ``out = ref.step(g, params=None)`` where ``g``
and ``params`` are ``{leaf path: float64 array}`` dicts and ``out`` is one too. Each class keeps its own state
and never mutates its inputs. ``k`` is the 1-based number of the current step; a callable learning rate is
evaluated at ``k - 1``. Which leaves are matrices is given by ``dims(path, shape)``, returning
``(reduction_axes, output_axes)`` or None (the gradtx objects take trees of ``MuonDimensionNumbers``).
This module imports only numpy and math and shares no code with gradtx.
"""

import math

import numpy as np

__all__ = [
    "MUON",
    "DION",
    "default_dims",
    "last_two_axes",
    "newton_schulz",
    "orthogonalize",
    "shape_scale",
    "scale_by_muon",
    "muon",
    "scale_by_soap",
    "soap",
    "scale_by_galore",
    "galore",
]

MUON = (3.4445, -4.7750, 2.0315)
DION = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)


def _value(v, count):
    return float(v(count)) if callable(v) else float(v)  # type: ignore[arg-type]


def default_dims(path, shape):
    """Float64 reference of gradtx's default ``MuonDimensionNumbers``: rank-2 leaves are ``(fan_in, fan_out)`` matrices.

    Args:
      path: the leaf's path (unused).
      shape: the leaf's shape.

    Returns:
      ``((0,), (1,))`` (reduction axes, output axes) for a rank-2 ``shape``, else None (not a matrix).

    Examples:
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> print(rm.default_dims("w", (2, 3)), rm.default_dims("b", (3,)))
      ((0,), (1,)) None
    """
    return ((0,), (1,)) if len(shape) == 2 else None


def last_two_axes(path, shape):
    """Float64 reference of ``MuonDimensionNumbers`` on the last two axes: a batch of matrices for rank >= 2.

    Args:
      path: the leaf's path (unused).
      shape: the leaf's shape.

    Returns:
      ``((n - 2,), (n - 1,))`` for ``n = len(shape) >= 2`` (the leading axes are a batch), else None.

    Examples:
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> print(rm.last_two_axes("w", (4, 2, 3)), rm.last_two_axes("b", (3,)))
      ((1,), (2,)) None
    """
    n = len(shape)
    return ((n - 2,), (n - 1,)) if n >= 2 else None


def _split_axes(shape, dims):
    """(perm, batch size, fan_in, fan_out) of the (batch, reduction, output) layout."""
    red, out = dims
    n = len(shape)
    red = tuple(a % n for a in ((red,) if isinstance(red, int) else red))
    out = tuple(a % n for a in ((out,) if isinstance(out, int) else out))
    batch = tuple(a for a in range(n) if a not in red and a not in out)
    prod = lambda axes: int(np.prod([shape[a] for a in axes])) if axes else 1  # noqa: E731
    return batch + red + out, prod(batch), prod(red), prod(out)


def newton_schulz(x, coeffs, steps, preconditioning="frobenius", eps=1e-8):
    """Float64 reference of :func:`gradtx.contrib.orthogonalize_via_newton_schulz` on one matrix.

    The quintic Newton-Schulz iteration of Muon (Jordan et al. 2024, "Muon: An optimizer for hidden layers in
    neural networks", blog post), on the wide orientation (transposed when ``x`` has more rows than columns)::

        X_0 = X / (||X||_F + eps)      (or the spectral norm; 'aol' / 'schatten' rescale inside the first step)
        A = X X^T;   X <- a X + (b A + c A^2) X      (a, b, c: the i-th row of coeffs, or the one triple)

    ``'aol'`` scales the rows by ``1 / sqrt(max(sum_j |A_ij|, eps))``; ``'schatten'`` divides by
    ``sqrt(max(||A||_F, eps))`` (the Schatten-4 norm).

    Args:
      x: a 2-D array.
      coeffs: one ``(a, b, c)`` triple, or one triple per step (a ``[steps, 3]`` array).
      steps: the number of iterations (``coeffs`` rows must cover them).
      preconditioning: ``'frobenius'``, ``'spectral'``, ``'aol'`` or ``'schatten'``. Default ``'frobenius'``.
      eps: the damping of the normalisation, > 0. Default 1e-8.

    Returns:
      A float64 array of ``x``'s shape, close to the orthogonal factor ``U V^T`` of ``x = U S V^T``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> x = np.array([[3.0, 0.0], [0.0, 1.0]])
      >>> print(np.round(rm.newton_schulz(x, rm.MUON, 5), 4))
      [[0.753  0.    ]
       [0.     1.1337]]
      >>> print(np.round(rm.newton_schulz(x, (1.5, -0.5, 0.0), 30), 4))
      [[1. 0.]
       [0. 1.]]
    """
    x = np.array(x, dtype=np.float64)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    if preconditioning == "frobenius":
        x = x / (math.sqrt(float(np.sum(x * x))) + eps)
    elif preconditioning == "spectral":
        s = float(np.linalg.svd(x, compute_uv=False)[0]) if x.size else 0.0
        x = x / (s + eps)
    c = np.asarray(coeffs, dtype=np.float64)
    for i in range(steps):
        a_, b_, c_ = c[i] if c.ndim == 2 else c
        a = x @ x.T
        if i == 0 and preconditioning == "aol":
            d = 1.0 / np.sqrt(np.maximum(np.sum(np.abs(a), axis=1), eps))
            x = d[:, None] * x
            a = d[:, None] * a * d[None, :]
        elif i == 0 and preconditioning == "schatten":
            f = 1.0 / math.sqrt(max(math.sqrt(float(np.sum(a * a))), eps))
            x, a = x * f, a * f * f
        x = a_ * x + (b_ * a + c_ * (a @ a)) @ x
    return x.T if tall else x


def orthogonalize(x, dims, coeffs, steps, preconditioning="frobenius", eps=1e-8):
    """Float64 reference of :func:`gradtx.contrib.orthogonalize_via_newton_schulz` with ``dimension_numbers``.

    Every (reduction, output) matrix slice of ``x`` goes through :func:`newton_schulz`; the other axes are a batch.

    Args:
      x: an array of rank >= 2.
      dims: ``(reduction_axes, output_axes)``, each an int or a tuple of ints.
      coeffs: one ``(a, b, c)`` triple, or one triple per step.
      steps: the number of iterations.
      preconditioning: ``'frobenius'``, ``'spectral'``, ``'aol'`` or ``'schatten'``. Default ``'frobenius'``.
      eps: the damping of the normalisation, > 0. Default 1e-8.

    Returns:
      A float64 array of ``x``'s shape.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> x = np.array([[[3.0, 0.0], [0.0, 1.0]], [[6.0, 0.0], [0.0, 2.0]]])
      >>> print(np.round(rm.orthogonalize(x, ((1,), (2,)), rm.MUON, 5)[1], 4))
      [[0.753  0.    ]
       [0.     1.1337]]
    """
    x = np.asarray(x, dtype=np.float64)
    perm, b, fi, fo = _split_axes(x.shape, dims)
    mats = np.transpose(x, perm).reshape(b, fi, fo)
    out = np.stack([newton_schulz(m, coeffs, steps, preconditioning, eps) for m in mats]) if b else mats
    return np.transpose(out.reshape([x.shape[a] for a in perm]), np.argsort(perm))


def shape_scale(shape, dims, consistent_rms=None):
    """Float64 reference of the factor of :func:`gradtx.contrib.scale_by_shape` for one leaf.

    ``sqrt(max(1, fan_out / fan_in))`` (Muon's default), or ``consistent_rms * sqrt(max(fan_in, fan_out))``, with
    ``fan_in`` / ``fan_out`` the products of the reduction / output axes.

    Args:
      shape: the leaf's shape.
      dims: ``(reduction_axes, output_axes)``.
      consistent_rms: the target RMS of the update, or None for Muon's default. Default None.

    Returns:
      A Python float.

    Examples:
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> print(rm.shape_scale((2, 8), ((0,), (1,))))
      2.0
      >>> print(round(rm.shape_scale((2, 8), ((0,), (1,)), consistent_rms=0.2), 4))
      0.5657
    """
    _, _, fi, fo = _split_axes(shape, dims)
    if consistent_rms is None:
        return math.sqrt(max(1.0, fo / max(fi, 1)))
    return float(consistent_rms) * math.sqrt(max(fi, fo))


def _coeffs(ns_coeffs, ns_steps):
    if isinstance(ns_coeffs, str):
        ns_coeffs = {"standard": MUON, "dion": DION}[ns_coeffs]
    c = np.asarray(ns_coeffs, dtype=np.float64)
    return c, (c.shape[0] if c.ndim == 2 else int(ns_steps))


class scale_by_muon:
    """Float64 reference of :func:`gradtx.contrib.scale_by_muon`: Muon's direction, per leaf.

    Jordan et al. 2024 (Muon), with ``k`` the 1-based step::

        m_k = beta m_{k-1} + (1 - beta) g
        m_hat = m_k / (1 - beta^k)      (nesterov: beta m_k / (1 - beta^(k+1)) + (1 - beta) g / (1 - beta^k))
        out = NS(m_hat) on matrices (dims not None), m_hat elsewhere;   adaptive: <m_hat, NS(m_hat)> NS(m_hat)

    with ``NS`` :func:`orthogonalize`. No shape scale (``scale_by_shape`` is a separate block).
    ``out = ref.step(g, params=None)`` takes and returns ``{leaf path: float64 array}`` dicts.

    Args:
      ns_coeffs: one ``(a, b, c)`` triple, one per step, or a preset name ``'standard'`` / ``'dion'``. Default
        ``MUON``.
      ns_steps: the number of iterations (a per-step table sets its own). Default 5.
      beta: the momentum's decay, in [0, 1). Default 0.95.
      eps: the damping of the normalisation, > 0. Default 1e-8.
      mu_dtype: accepted and ignored (the reference is float64).
      nesterov: use the Nesterov momentum. Default True.
      adaptive: scale by ``<m_hat, NS(m_hat)>``. Default False.
      preconditioning: ``'frobenius'``, ``'spectral'``, ``'aol'`` or ``'schatten'``. Default ``'frobenius'``.
      weight_dimension_numbers: a callable ``(path, shape) -> (reduction_axes, output_axes)`` or None for a leaf that is
        not a matrix; None for :func:`default_dims` (rank-2 leaves). Default None.

    Raises:
      KeyError: a preset name other than ``'standard'`` or ``'dion'``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> r = rm.scale_by_muon()
      >>> out = r.step({"w": np.array([[3.0, 0.0], [0.0, 1.0]]), "b": np.array([1.0, -2.0])})
      >>> print(np.round(out["w"], 4))
      [[0.753  0.    ]
       [0.     1.1337]]
      >>> print(np.round(out["b"], 4))
      [ 1.4872 -2.9744]
    """

    def __init__(self, ns_coeffs=MUON, ns_steps=5, beta=0.95, eps=1e-8, mu_dtype=None, *, nesterov=True,
                 adaptive=False, preconditioning="frobenius", weight_dimension_numbers=None):
        self.coeffs, self.steps = _coeffs(ns_coeffs, ns_steps)
        self.beta, self.eps = float(beta), float(eps)
        self.nesterov, self.adaptive, self.pre = nesterov, adaptive, preconditioning
        self.dims = weight_dimension_numbers or default_dims
        self.m, self.k = {}, 0

    def direction(self, path, g, k):
        """The Muon direction of one leaf at step k (updates the leaf's momentum)."""
        b = self.beta
        m = b * self.m.get(path, np.zeros_like(g)) + (1.0 - b) * g
        self.m[path] = m
        if self.nesterov:
            m_hat = b * m / (1.0 - b ** (k + 1)) + (1.0 - b) * g / (1.0 - b**k)
        else:
            m_hat = m / (1.0 - b**k)
        d = self.dims(path, g.shape)
        if d is None:
            return m_hat, None
        o = orthogonalize(m_hat, d, self.coeffs, self.steps, self.pre, self.eps)
        if self.adaptive:
            o = float(np.sum(m_hat * o)) * o
        return o, d

    def step(self, g, params=None):
        self.k += 1
        return {p: self.direction(p, np.array(v, dtype=np.float64), self.k)[0] for p, v in g.items()}


class _adamw_leaf:
    """AdamW on one leaf (Kingma & Ba 2015 Algorithm 1 + decoupled decay; Optax's nesterov form)."""

    def __init__(self, b1, b2, eps, eps_root, wd, nesterov):
        self.b1, self.b2, self.eps, self.eps_root, self.wd, self.nesterov = b1, b2, eps, eps_root, wd, nesterov
        self.m = self.v = None

    def step(self, g, p, k, lr):
        b1, b2 = self.b1, self.b2
        self.m = b1 * (np.zeros_like(g) if self.m is None else self.m) + (1.0 - b1) * g
        self.v = b2 * (np.zeros_like(g) if self.v is None else self.v) + (1.0 - b2) * g * g
        if self.nesterov:
            m_hat = b1 * self.m / (1.0 - b1 ** (k + 1)) + (1.0 - b1) * g / (1.0 - b1**k)
        else:
            m_hat = self.m / (1.0 - b1**k)
        u = m_hat / (np.sqrt(self.v / (1.0 - b2**k) + self.eps_root) + self.eps)
        if self.wd and p is not None:
            u = u + self.wd * p
        return -lr * u


class muon:
    """Float64 reference of :func:`gradtx.contrib.muon`: Muon on the matrices, AdamW on every other leaf.

    On a matrix (``muon_weight_dimension_numbers(path, shape)`` not None; default: rank 2)
    ``u = -lr (s NS(m_hat) + weight_decay p)`` with ``s`` the shape scale (:func:`shape_scale`) and ``NS(m_hat)``
    :class:`scale_by_muon`'s direction; elsewhere AdamW (Kingma & Ba 2015, Algorithm 1, decoupled decay, Optax's
    Nesterov form) with the ``adam_*`` arguments, ``eps`` and ``nesterov``. ``out = ref.step(g, params=None)`` takes and
    returns ``{leaf path: float64 array}`` dicts; the decay needs ``params``.

    Args:
      learning_rate: the step size: a float, or a callable ``count -> float`` evaluated at the 0-based count ``k - 1``.
      ns_coeffs: one ``(a, b, c)`` triple, one per step, or ``'standard'`` / ``'dion'``. Default ``MUON``.
      ns_steps: the number of iterations. Default 5.
      beta: Muon's momentum decay, in [0, 1). Default 0.95.
      eps: Muon's normalisation damping and Adam's eps, > 0. Default 1e-8.
      weight_decay: the decoupled weight decay of the matrices, >= 0. Default 0.0.
      weight_decay_mask: ``{path: bool}`` (True where the decay applies) or None for every matrix. Default None.
      mu_dtype: accepted and ignored (the reference is float64).
      nesterov: Nesterov momentum for both parts. Default True.
      adaptive: scale Muon's direction by ``<m_hat, NS(m_hat)>``. Default False.
      preconditioning: ``'frobenius'``, ``'spectral'``, ``'aol'`` or ``'schatten'``. Default ``'frobenius'``.
      adam_b1: Adam's first moment decay, in [0, 1). Default 0.9.
      adam_b2: Adam's second moment decay, in [0, 1). Default 0.999.
      adam_eps_root: added inside Adam's root, >= 0. Default 0.0.
      adam_weight_decay: the decoupled weight decay of the other leaves, >= 0. Default 0.0.
      adam_learning_rate: Adam's step size (float or callable), or None for ``learning_rate``. Default None.
      muon_weight_dimension_numbers: a callable ``(path, shape) -> (reduction_axes, output_axes)`` or None for a leaf
        that is not a matrix; None for :func:`default_dims` (rank-2 leaves). Default None.
      consistent_rms: the target RMS of the matrix updates, or None for Muon's shape scale. Default None.

    Raises:
      KeyError: a preset name other than ``'standard'`` or ``'dion'``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> r = rm.muon(0.1)
      >>> out = r.step({"w": np.array([[3.0, 0.0], [0.0, 1.0]]), "b": np.array([1.0, -2.0])})
      >>> print(np.round(out["w"], 4))
      [[-0.0753 -0.    ]
       [-0.     -0.1134]]
      >>> print(np.round(out["b"], 4))
      [-0.1474  0.1474]
    """

    def __init__(self, learning_rate, ns_coeffs=MUON, ns_steps=5, beta=0.95, eps=1e-8, weight_decay=0.0,
                 weight_decay_mask=None, mu_dtype=None, *, nesterov=True, adaptive=False, preconditioning="frobenius",
                 adam_b1=0.9, adam_b2=0.999, adam_eps_root=0.0, adam_weight_decay=0.0, adam_learning_rate=None,
                 muon_weight_dimension_numbers=None, consistent_rms=None):
        self.lr = learning_rate
        self.adam_lr = learning_rate if adam_learning_rate is None else adam_learning_rate
        self.muon = scale_by_muon(ns_coeffs, ns_steps, beta, eps, nesterov=nesterov, adaptive=adaptive,
                                  preconditioning=preconditioning,
                                  weight_dimension_numbers=muon_weight_dimension_numbers)
        self.wd, self.mask, self.rms = float(weight_decay), weight_decay_mask, consistent_rms
        self.adam_args = (float(adam_b1), float(adam_b2), float(eps), float(adam_eps_root), float(adam_weight_decay),
                          nesterov)
        self.adam, self.k = {}, 0

    def step(self, g, params=None):
        self.k += 1
        k, out = self.k, {}
        for path, v in g.items():
            gv = np.array(v, dtype=np.float64)
            p = None if params is None else np.array(params[path], dtype=np.float64)
            if self.muon.dims(path, gv.shape) is None:
                adam = self.adam.setdefault(path, _adamw_leaf(*self.adam_args))
                out[path] = adam.step(gv, p, k, _value(self.adam_lr, k - 1))
                continue
            o, d = self.muon.direction(path, gv, k)
            u = shape_scale(gv.shape, d, self.rms) * o
            if self.wd and p is not None and (self.mask is None or self.mask[path]):
                u = u + self.wd * p
            out[path] = -_value(self.lr, k - 1) * u
        return out


# ----------------------------------------------------------------------------------------------------
# SOAP (Vyas et al. 2024, arXiv 2409.11321, Algorithm 1; the authors' implementation's conventions)
# ----------------------------------------------------------------------------------------------------


def _soap_axes(shape, max_precond_dim, precondition_1d):
    if len(shape) == 0 or (len(shape) == 1 and not precondition_1d):
        return ()
    return tuple(a for a, n in enumerate(shape) if 1 < n <= max_precond_dim)


def _mode_product(x, q, axis):
    """sum_a x[..., a, ...] q[a, j] along ``axis`` (Q^T x along that axis)."""
    return np.moveaxis(np.tensordot(x, q, axes=([axis], [0])), -1, axis)


class scale_by_soap:
    """Float64 reference of :func:`gradtx.contrib.scale_by_soap`, per leaf, with the authors' code's conventions.

    Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo using Adam", arXiv 2409.11321, Algorithm 1. The
    rotated axes of a leaf are those of size in ``(1, max_precond_dim]`` (none for scalars, nor for vectors unless
    ``precondition_1d``). Call 1: ``L_a = (1 - s) G_(a) G_(a)^T`` per rotated axis ``a``, ``Q_a`` its eigenvectors
    (descending eigenvalues), zero output. Call ``k >= 2``, ``t = k - 1``::

        M = b1 M + (1 - b1) G;   V = b2 V + (1 - b2) rotate(G)^2
        out = sqrt(1 - b2^t) / (1 - b1^t) * unrotate(rotate(M) / (sqrt(V) + eps))
        L_a = s L_a + (1 - s) G_(a) G_(a)^T

    and when ``t % precondition_frequency == 0``: ``V`` re-ordered along each axis by ``diag(Q_a^T L_a Q_a)``
    (descending), then ``Q_a = eigenvectors(L_a)``. ``rotate`` multiplies each rotated axis by ``Q_a^T``.
    ``out = ref.step(g, params=None)`` takes and returns ``{leaf path: float64 array}`` dicts.

    Args:
      b1: the first moment's decay, in [0, 1). Default 0.95.
      b2: the second moment's decay, in [0, 1). Default 0.95.
      shampoo_beta: the decay ``s`` of the factors ``L_a``, in [0, 1), or None for ``b2``. Default None.
      eps: added outside the root, > 0. Default 1e-8.
      precondition_frequency: the steps between eigenbasis updates, >= 1. Default 10.
      max_precond_dim: the largest axis that is rotated. Default 10000.
      precondition_1d: rotate vectors too. Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> r = rm.scale_by_soap()
      >>> g = {"w": np.array([[3.0, 0.0], [0.0, 1.0]])}
      >>> print(np.round(r.step(g)["w"], 4))
      [[0. 0.]
       [0. 0.]]
      >>> print(np.round(r.step(g)["w"], 4))
      [[1. 0.]
       [0. 1.]]
    """

    def __init__(self, b1=0.95, b2=0.95, shampoo_beta=None, eps=1e-8, precondition_frequency=10,
                 max_precond_dim=10000, precondition_1d=False):
        self.b1, self.b2, self.eps = float(b1), float(b2), float(eps)
        self.s = self.b2 if shampoo_beta is None else float(shampoo_beta)
        self.f, self.max_dim, self.p1d = int(precondition_frequency), int(max_precond_dim), precondition_1d
        self.leaves, self.k = {}, 0

    @staticmethod
    def _basis(factor):
        _, vecs = np.linalg.eigh(factor)
        return vecs[:, ::-1]

    def leaf(self, path, g, k):
        g = np.array(g, dtype=np.float64)
        axes = _soap_axes(g.shape, self.max_dim, self.p1d)
        st = self.leaves.setdefault(path, {"m": np.zeros_like(g), "v": np.zeros_like(g),
                                           "L": {a: np.zeros((g.shape[a],) * 2) for a in axes},
                                           "Q": {a: np.eye(g.shape[a]) for a in axes}})

        def rotate(x, back=False):
            for a in axes:
                x = _mode_product(x, st["Q"][a].T if back else st["Q"][a], a)
            return x

        t = k - 1
        if t == 0:
            out = np.zeros_like(g)
        else:
            st["m"] = self.b1 * st["m"] + (1 - self.b1) * g
            st["v"] = self.b2 * st["v"] + (1 - self.b2) * rotate(g) ** 2
            step = math.sqrt(1 - self.b2**t) / (1 - self.b1**t)
            out = step * rotate(rotate(st["m"]) / (np.sqrt(st["v"]) + self.eps), back=True)
        for a in axes:
            others = [i for i in range(g.ndim) if i != a]
            st["L"][a] = self.s * st["L"][a] + (1 - self.s) * np.tensordot(g, g, axes=(others, others))
        if t % self.f == 0:
            for a in axes:  # the authors' code: V follows its eigenvectors, ranked by diag(Q_old^T L Q_old)
                estimate = np.diag(st["Q"][a].T @ st["L"][a] @ st["Q"][a])
                st["v"] = np.take(st["v"], np.argsort(-estimate, kind="stable"), axis=a)
            st["Q"] = {a: self._basis(st["L"][a]) for a in axes}
        return out

    def step(self, g, params=None):
        self.k += 1
        return {p: self.leaf(p, v, self.k) for p, v in g.items()}


class soap:
    """Float64 reference of :func:`gradtx.contrib.soap`: ``u = -lr (scale_by_soap(g) + weight_decay p)``.

    SOAP (Vyas et al. 2024, arXiv 2409.11321) with decoupled weight decay; see :class:`scale_by_soap`.
    ``out = ref.step(g, params=None)`` takes and returns ``{leaf path: float64 array}`` dicts; the decay needs
    ``params``.

    Args:
      learning_rate: the step size: a float, or a callable ``count -> float`` evaluated at the 0-based count ``k - 1``.
        Default 3e-3.
      b1: the first moment's decay, in [0, 1). Default 0.95.
      b2: the second moment's decay, in [0, 1). Default 0.95.
      shampoo_beta: the decay of the factors, in [0, 1), or None for ``b2``. Default None.
      eps: added outside the root, > 0. Default 1e-8.
      weight_decay: the decoupled weight decay, >= 0. Default 0.01.
      mask: accepted and ignored (the decay applies to every leaf). Default None.
      precondition_frequency: the steps between eigenbasis updates, >= 1. Default 10.
      max_precond_dim: the largest axis that is rotated. Default 10000.
      precondition_1d: rotate vectors too. Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> r = rm.soap(0.1, weight_decay=0.0)
      >>> g = {"w": np.array([[3.0, 0.0], [0.0, 1.0]])}
      >>> _ = r.step(g)
      >>> print(np.round(r.step(g)["w"], 4))
      [[-0.1 -0. ]
       [-0.  -0.1]]
    """

    def __init__(self, learning_rate=3e-3, b1=0.95, b2=0.95, shampoo_beta=None, eps=1e-8, weight_decay=0.01,
                 mask=None, *, precondition_frequency=10, max_precond_dim=10000, precondition_1d=False):
        self.inner = scale_by_soap(b1, b2, shampoo_beta, eps, precondition_frequency, max_precond_dim,
                                   precondition_1d)
        self.lr, self.wd = learning_rate, float(weight_decay)

    def step(self, g, params=None):
        u = self.inner.step(g)
        lr = _value(self.lr, self.inner.k - 1)
        return {p: -lr * (v + (self.wd * np.asarray(params[p], np.float64) if self.wd and params else 0.0))
                for p, v in u.items()}


# ----------------------------------------------------------------------------------------------------
# GaLore (Zhao et al. 2024, arXiv 2403.03507, Algorithm 2) around Adam
# ----------------------------------------------------------------------------------------------------


def _fixed_signs(p):
    """Each column with its largest-magnitude entry positive."""
    if p.size == 0:
        return p
    s = np.sign(p[np.argmax(np.abs(p), axis=0), np.arange(p.shape[1])])
    return p * np.where(s == 0, 1.0, s)


class scale_by_galore:
    """Float64 reference of :func:`gradtx.contrib.scale_by_galore`: GaLore with an Adam base, per leaf.

    Zhao et al. 2024, "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection", ICML, arXiv 2403.03507,
    Algorithm 2. Adam's ``b1``, ``b2``, ``eps`` (of ``scale_by_adam``, bias-corrected; one step count for all leaves).
    On a matrix ``G`` (``m x n``, its dims not None): every ``update_proj_gap`` steps from the first, ``P`` = the
    top-``r`` left (``m >= n``) or right singular vectors of ``G`` (each column's largest-magnitude entry made
    positive); ``R = P^T G`` (or ``G P``); ``out = scale * P adam(R)`` (or ``adam(R) P^T``). Other leaves: ``adam(G)``.
    ``out = ref.step(g, params=None)`` takes and returns ``{leaf path: float64 array}`` dicts.

    Args:
      rank: the projection's rank ``r`` (capped by the matrix's sides), >= 1. Default 128.
      update_proj_gap: the steps between projection updates, >= 1. Default 200.
      scale: the factor of the projected-back update. Default 1.0.
      b1: Adam's first moment decay, in [0, 1). Default 0.9.
      b2: Adam's second moment decay, in [0, 1). Default 0.999.
      eps: Adam's eps, > 0. Default 1e-8.
      weight_dimension_numbers: a callable ``(path, shape) -> (reduction_axes, output_axes)`` or None for a leaf that is
        not a matrix; None for :func:`default_dims` (rank-2 leaves). Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> r = rm.scale_by_galore(rank=1)
      >>> out = r.step({"w": np.array([[3.0, 0.0], [0.0, 1.0]]), "b": np.array([1.0, -2.0])})
      >>> print(np.round(out["w"], 4))
      [[1. 0.]
       [0. 0.]]
      >>> print(np.round(out["b"], 4))
      [ 1. -1.]
    """

    def __init__(self, rank=128, update_proj_gap=200, scale=1.0, b1=0.9, b2=0.999, eps=1e-8,
                 weight_dimension_numbers=None):
        self.rank, self.gap, self.scale = int(rank), int(update_proj_gap), float(scale)
        self.b1, self.b2, self.eps = float(b1), float(b2), float(eps)
        self.dims = weight_dimension_numbers or default_dims
        self.state, self.k = {}, 0

    def _adam(self, path, g):
        m, v = self.state.get(path, (np.zeros_like(g), np.zeros_like(g)))
        m = self.b1 * m + (1 - self.b1) * g
        v = self.b2 * v + (1 - self.b2) * g * g
        self.state[path] = (m, v)
        return (m / (1 - self.b1**self.k)) / (np.sqrt(v / (1 - self.b2**self.k)) + self.eps)

    def step(self, g, params=None):
        self.k += 1
        out = {}
        for path, x in g.items():
            x = np.array(x, dtype=np.float64)
            d = self.dims(path, x.shape)
            if d is None:
                out[path] = self._adam(path, x)
                continue
            perm, _, rows, cols = _split_axes(x.shape, d)
            g2 = np.transpose(x, perm).reshape(rows, cols)
            r, left = min(self.rank, rows, cols), rows >= cols
            if (self.k - 1) % self.gap == 0:
                u, _, vt = np.linalg.svd(g2, full_matrices=False)
                self.state[path + "/P"] = _fixed_signs(u[:, :r] if left else vt[:r, :].T)
            p = self.state[path + "/P"]
            n = self._adam(path, p.T @ g2 if left else g2 @ p)
            full = self.scale * (p @ n if left else n @ p.T)
            out[path] = np.transpose(full.reshape([x.shape[a] for a in perm]), np.argsort(perm))
        return out


class galore:
    """Float64 reference of :func:`gradtx.contrib.galore`: ``u = -lr (scale_by_galore(g) + weight_decay p)``.

    GaLore (Zhao et al. 2024, arXiv 2403.03507) around Adam with decoupled weight decay; see :class:`scale_by_galore`.
    ``out = ref.step(g, params=None)`` takes and returns ``{leaf path: float64 array}`` dicts; the decay needs
    ``params``.

    Args:
      learning_rate: the step size: a float, or a callable ``count -> float`` evaluated at the 0-based count ``k - 1``.
      rank: the projection's rank, >= 1. Default 128.
      update_proj_gap: the steps between projection updates, >= 1. Default 200.
      scale: the factor of the projected-back update. Default 1.0.
      weight_decay: the decoupled weight decay, >= 0. Default 0.0.
      weight_dimension_numbers: a callable ``(path, shape) -> (reduction_axes, output_axes)`` or None for a leaf that is
        not a matrix; None for :func:`default_dims` (rank-2 leaves). Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> r = rm.galore(0.1, rank=1)
      >>> print(np.round(r.step({"w": np.array([[3.0, 0.0], [0.0, 1.0]])})["w"], 4))
      [[-0.1 -0. ]
       [-0.  -0. ]]
    """

    def __init__(self, learning_rate, rank=128, update_proj_gap=200, scale=1.0, weight_decay=0.0,
                 weight_dimension_numbers=None):
        self.inner = scale_by_galore(rank, update_proj_gap, scale, weight_dimension_numbers=weight_dimension_numbers)
        self.lr, self.wd = learning_rate, float(weight_decay)

    def step(self, g, params=None):
        u = self.inner.step(g)
        lr = _value(self.lr, self.inner.k - 1)
        return {p: -lr * (v + (self.wd * np.asarray(params[p], np.float64) if self.wd and params else 0.0))
                for p, v in u.items()}
