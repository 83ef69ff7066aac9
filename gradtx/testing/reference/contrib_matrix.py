"""Float64 NumPy references for the matrix optimizers of ``gradtx.contrib`` (Muon, SOAP, GaLore), written from the
papers' pseudo-code; the executable spec of ``gradtx.contrib._muon``, ``_soap`` and ``_galore``.

Transcriptions of the authors' own code (read, not copied; float64 instead of torch's dtypes), which return new
parameters from ``step(params, grads)``: :class:`galore_projector` and :class:`galore_adamw` (``jiaweizzhao/GaLore``,
commit 2cc66f88cce189e505affbb91042a8e77f5bf4e9), :func:`zeropower_via_newtonschulz5`, :func:`muon_update` and
:class:`muon_with_aux_adam` (``KellerJordan/Muon``, commit 857d1adc159e098212f828d927460782d3da59e9).

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
    "GALORE_COMMIT",
    "galore_projector",
    "galore_adamw",
    "MUON_COMMIT",
    "zeropower_via_newtonschulz5",
    "muon_update",
    "muon_with_aux_adam",
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
      momentum_form: ``'optax'`` (the equations above) or ``'reference'`` (Keller Jordan's, :func:`muon_update`:
        ``m_hat = m_k``, or ``beta m_k + (1 - beta) g`` with ``nesterov``). Default ``'optax'``.

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
                 adaptive=False, preconditioning="frobenius", weight_dimension_numbers=None, momentum_form="optax"):
        self.coeffs, self.steps = _coeffs(ns_coeffs, ns_steps)
        self.form = momentum_form
        self.beta, self.eps = float(beta), float(eps)
        self.nesterov, self.adaptive, self.pre = nesterov, adaptive, preconditioning
        self.dims = weight_dimension_numbers or default_dims
        self.m, self.k = {}, 0

    def direction(self, path, g, k):
        """The Muon direction of one leaf at step k (updates the leaf's momentum)."""
        b = self.beta
        m = b * self.m.get(path, np.zeros_like(g)) + (1.0 - b) * g
        self.m[path] = m
        if self.form == "reference":
            m_hat = b * m + (1.0 - b) * g if self.nesterov else m
        elif self.nesterov:
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
      momentum_form: Muon's momentum, ``'optax'`` or ``'reference'`` (see :class:`scale_by_muon`); the reference
        form also drops Nesterov from AdamW. Default ``'optax'``.

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
                 muon_weight_dimension_numbers=None, consistent_rms=None, momentum_form="optax"):
        self.lr = learning_rate
        self.adam_lr = learning_rate if adam_learning_rate is None else adam_learning_rate
        self.muon = scale_by_muon(ns_coeffs, ns_steps, beta, eps, nesterov=nesterov, adaptive=adaptive,
                                  preconditioning=preconditioning,
                                  weight_dimension_numbers=muon_weight_dimension_numbers, momentum_form=momentum_form)
        self.wd, self.mask, self.rms = float(weight_decay), weight_decay_mask, consistent_rms
        self.adam_args = (float(adam_b1), float(adam_b2), float(eps), float(adam_eps_root), float(adam_weight_decay),
                          nesterov and momentum_form == "optax")
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


MUON_COMMIT = "857d1adc159e098212f828d927460782d3da59e9"
"""The commit of ``KellerJordan/Muon`` that :func:`muon_update` and :class:`muon_with_aux_adam` transcribe."""


def zeropower_via_newtonschulz5(g, steps, eps=1e-7):
    """Float64 transcription of Keller Jordan's ``zeropower_via_newtonschulz5`` (``KellerJordan/Muon``, ``muon.py``).

    Commit :data:`MUON_COMMIT`. On the wide orientation (``X^T`` when ``g`` has more rows than columns; the last
    two axes, leading axes a batch) with ``(a, b, c) = (3.4445, -4.7750, 2.0315)``::

        X = X / (||X||_F + eps);   A = X X^T;   X <- a X + (b A + c A A) X     (steps times)

    The reference iterates in bfloat16 with ``eps = 1e-7`` written in; here float64, ``eps`` an argument.

    Args:
      g: an array of rank >= 2.
      steps: the number of iterations.
      eps: added to the Frobenius norm. Default 1e-7 (the reference's).

    Returns:
      A float64 array of ``g``'s shape.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> print(np.round(rm.zeropower_via_newtonschulz5(np.array([[3.0, 0.0], [0.0, 1.0]]), 5), 4))
      [[0.753  0.    ]
       [0.     1.1337]]
    """
    a, b, c = MUON
    x = np.array(g, dtype=np.float64)
    tall = x.shape[-2] > x.shape[-1]
    if tall:
        x = np.swapaxes(x, -1, -2)
    x = x / (np.sqrt(np.sum(x * x, axis=(-2, -1), keepdims=True)) + eps)
    for _ in range(steps):
        am = x @ np.swapaxes(x, -1, -2)
        bm = b * am + c * am @ am
        x = a * x + bm @ x
    return np.swapaxes(x, -1, -2) if tall else x


def muon_update(grad, momentum, beta=0.95, ns_steps=5, nesterov=True, eps=1e-7):
    """Float64 transcription of Keller Jordan's ``muon_update`` (``KellerJordan/Muon``, ``muon.py``).

    Commit :data:`MUON_COMMIT`. No bias correction; torch's layout (a weight is ``out x in``)::

        M = beta M + (1 - beta) G                 (momentum.lerp_(grad, 1 - beta))
        U = beta M + (1 - beta) G if nesterov else M      (grad.lerp_(momentum, beta))
        O = zeropower_via_newtonschulz5(U viewed as (len(U), -1) when 4-D) * sqrt(max(1, G.size(-2) / G.size(-1)))

    Args:
      grad: the gradient, rank >= 2.
      momentum: the momentum buffer (not mutated).
      beta: the momentum's decay. Default 0.95.
      ns_steps: the Newton-Schulz iterations. Default 5.
      nesterov: the Nesterov blend. Default True.
      eps: the guard of the Newton-Schulz normalisation. Default 1e-7 (the reference's).

    Returns:
      ``(update, new momentum)``, float64 arrays (the update 2-D for a 4-D gradient, as the reference's).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> u, m = rm.muon_update(np.array([[3.0, 0.0], [0.0, 1.0]]), np.zeros((2, 2)))
      >>> print(np.round(m, 4))
      [[0.15 0.  ]
       [0.   0.05]]
      >>> print(np.round(u, 4))
      [[0.753  0.    ]
       [0.     1.1337]]
    """
    grad = np.asarray(grad, np.float64)
    m = beta * np.asarray(momentum, np.float64) + (1.0 - beta) * grad
    update = beta * m + (1.0 - beta) * grad if nesterov else m
    if update.ndim == 4:
        update = update.reshape(len(update), -1)
    update = zeropower_via_newtonschulz5(update, ns_steps, eps)
    update = update * max(1.0, grad.shape[-2] / grad.shape[-1]) ** 0.5
    return update, m


def _adam_update(grad, buf1, buf2, step, betas, eps):
    buf1 = buf1 + (1.0 - betas[0]) * (grad - buf1)
    buf2 = buf2 + (1.0 - betas[1]) * (grad * grad - buf2)
    return (buf1 / (1.0 - betas[0] ** step)) / (np.sqrt(buf2 / (1.0 - betas[1] ** step)) + eps), buf1, buf2


class muon_with_aux_adam:
    """Float64 transcription of Keller Jordan's ``SingleDeviceMuonWithAuxAdam.step`` (``KellerJordan/Muon``).

    Commit :data:`MUON_COMMIT`. The leaves that ``use_muon(path, shape)`` selects (default: rank >= 2) get
    :func:`muon_update` (momentum buffer from zeros); the others the reference's ``adam_update`` (Kingma & Ba's
    bias-corrected Adam, no Nesterov). Both apply the decay first::

        p <- p (1 - lr wd);   p <- p - lr update

    It returns the new parameters, not updates; arrays are in torch's layout (``out x in``: the shape scale is
    ``sqrt(max(1, rows / cols))``). It equals gradtx's ``muon(..., momentum_form='reference')`` with
    ``MuonDimensionNumbers(reduction_axis=1, output_axis=0)`` and ``eps = adam_eps``.

    Args:
      lr: Muon's learning rate. Default 0.02 (the reference's).
      momentum: Muon's ``beta``. Default 0.95.
      weight_decay: Muon's decoupled decay. Default 0.0.
      nesterov: passed to :func:`muon_update` (the reference's default). Default True.
      ns_steps: the Newton-Schulz iterations. Default 5.
      ns_eps: the guard of the Newton-Schulz normalisation. Default 1e-7.
      adam_lr: Adam's learning rate. Default 3e-4 (the reference's).
      adam_betas: Adam's ``(b1, b2)``. Default ``(0.9, 0.95)`` (the reference's).
      adam_eps: Adam's eps. Default 1e-10 (the reference's).
      adam_weight_decay: Adam's decoupled decay. Default 0.0.
      use_muon: a callable ``(path, shape) -> bool``, or None (rank >= 2). Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> opt = rm.muon_with_aux_adam(lr=0.1, adam_lr=0.1)
      >>> p = opt.step({"w": np.zeros((2, 2)), "b": np.zeros(2)},
      ...              {"w": np.array([[3.0, 0.0], [0.0, 1.0]]), "b": np.array([1.0, -2.0])})
      >>> print(np.round(p["w"], 4))
      [[-0.0753  0.    ]
       [ 0.     -0.1134]]
      >>> print(np.round(p["b"], 4))
      [-0.1  0.1]
    """

    def __init__(self, lr=0.02, momentum=0.95, weight_decay=0.0, nesterov=True, ns_steps=5, ns_eps=1e-7,
                 adam_lr=3e-4, adam_betas=(0.9, 0.95), adam_eps=1e-10, adam_weight_decay=0.0, use_muon=None):
        self.lr, self.momentum, self.wd, self.nesterov = lr, float(momentum), float(weight_decay), nesterov
        self.ns_steps, self.ns_eps = int(ns_steps), float(ns_eps)
        self.adam_lr, self.betas, self.adam_eps = adam_lr, tuple(map(float, adam_betas)), float(adam_eps)
        self.adam_wd = float(adam_weight_decay)
        self.use_muon = use_muon or (lambda path, shape: len(shape) >= 2)
        self.state, self.k = {}, 0

    def step(self, params, grads):
        """One step: the new ``{path: array}`` parameters."""
        self.k += 1
        out = {}
        for path, g in grads.items():
            grad, p = np.asarray(g, np.float64), np.array(params[path], dtype=np.float64)
            st = self.state.setdefault(path, {})
            if self.use_muon(path, grad.shape):
                st.setdefault("momentum_buffer", np.zeros_like(grad))
                update, st["momentum_buffer"] = muon_update(grad, st["momentum_buffer"], self.momentum, self.ns_steps,
                                                            self.nesterov, self.ns_eps)
                lr, wd = _value(self.lr, self.k - 1), self.wd
            else:
                if "exp_avg" not in st:
                    st.update(exp_avg=np.zeros_like(grad), exp_avg_sq=np.zeros_like(grad), step=0)
                st["step"] += 1
                update, st["exp_avg"], st["exp_avg_sq"] = _adam_update(grad, st["exp_avg"], st["exp_avg_sq"],
                                                                       st["step"], self.betas, self.adam_eps)
                lr, wd = _value(self.adam_lr, self.k - 1), self.adam_wd
            p = p * (1.0 - lr * wd)
            out[path] = p - lr * update.reshape(p.shape)
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


def _svd_fixed_signs(x):
    """``np.linalg.svd`` with each column of ``U`` and each row of ``V^T`` made positive at its largest entry."""
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    return _fixed_signs(u), s, _fixed_signs(vt.T).T


GALORE_COMMIT = "2cc66f88cce189e505affbb91042a8e77f5bf4e9"
"""The commit of ``jiaweizzhao/GaLore`` that :class:`galore_projector` and :class:`galore_adamw` transcribe."""


class galore_projector:
    """Float64 transcription of the authors' ``GaLoreProjector`` (one 2-D matrix).

    ``jiaweizzhao/GaLore``, ``galore_torch/galore_projector.py``, commit :data:`GALORE_COMMIT` (Zhao et al. 2024,
    arXiv 2403.03507). With ``G = U S V^T`` (``m x n``) and the SVD recomputed when ``it % update_proj_gap == 0``
    (``it`` the 0-based step) or at the first call::

        'std'          m >= n: B = V^T[:r]  R = G B^T   back R B      m < n: A = U[:, :r]  R = A^T G   back A R
        'reverse_std'  m >= n: A = U[:, :r] R = A^T G   back A R      m < n: B = V^T[:r]   R = G B^T   back R B
        'right'        B = V^T[:r],  R = G B^T,  back R B
        'left'         A = U[:, :r], R = A^T G,  back A R
        'full'         A and B,      R = A^T G B^T,  back A R B

    and ``project_back`` multiplies by ``scale``. ``project_back`` of ``'std'`` and ``'reverse_std'`` picks the
    side from the low-rank shape, as the authors do, except for a square low-rank gradient, where it uses the side
    ``project`` used: there the authors' ``'reverse_std'`` multiplies a wide matrix's ``m x m`` gradient (``rank >=
    m``) on the wrong side and fails with a shape error (their ``'std'`` test picks the right side in every case).
    The authors cast non-float32 matrices to float32 for the SVD; here everything is float64.

    Args:
      rank: the rank ``r`` (the authors slice ``[:rank]``, so it is capped by ``min(m, n)``).
      update_proj_gap: the steps between SVDs. Default 200.
      scale: the factor of ``project_back``. Default 1.0.
      proj_type: ``'std'`` (the authors' default), ``'reverse_std'``, ``'right'``, ``'left'`` or ``'full'``.
        Default ``'std'``.
      svd: the SVD, ``x -> (U, S, V^T)`` (thin), or None for ``np.linalg.svd(x, full_matrices=False)`` (the
        authors' ``torch.linalg.svd``; its signs are LAPACK's). Tests pass one with fixed signs to compare with
        gradtx across refreshes. Default None.

    Raises:
      ValueError: an unknown ``proj_type`` (at ``project``).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> g = np.array([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
      >>> pr = rm.galore_projector(rank=1, proj_type="std")
      >>> print(pr.project(g, 0).shape, pr.ortho_matrix.shape)  # m >= n: the right side, n x r space
      (3, 1) (1, 2)
      >>> print(np.abs(pr.project_back(pr.project(g, 0))))
      [[3. 0.]
       [0. 0.]
       [0. 0.]]
    """

    def __init__(self, rank, update_proj_gap=200, scale=1.0, proj_type="std", svd=None):
        self.rank, self.update_proj_gap, self.scale, self.proj_type = int(rank), int(update_proj_gap), scale, proj_type
        self.svd = svd or (lambda x: np.linalg.svd(x, full_matrices=False))
        self.ortho_matrix = None

    def _refresh(self, g, it, kind):
        if self.ortho_matrix is None or it % self.update_proj_gap == 0:
            self.ortho_matrix = self.get_orthogonal_matrix(g, self.rank, kind)

    def project(self, full_rank_grad, it):
        """The low-rank gradient of ``full_rank_grad`` at the 0-based step ``it`` (refreshing the projector)."""
        g, t = np.asarray(full_rank_grad, np.float64), self.proj_type
        if t in ("std", "reverse_std"):
            tall = g.shape[0] >= g.shape[1]
            kind = ("right" if tall else "left") if t == "std" else ("left" if tall else "right")
        elif t in ("right", "left", "full"):
            kind = t
        else:
            raise ValueError(f"galore_projector: unknown proj_type {t!r}")
        self._refresh(g, it, kind)
        self.kind = kind
        if kind == "right":
            return g @ self.ortho_matrix.T
        if kind == "left":
            return self.ortho_matrix.T @ g
        return self.ortho_matrix[0].T @ g @ self.ortho_matrix[1].T

    def project_back(self, low_rank_grad):
        """``scale`` times the full-size matrix of ``low_rank_grad``."""
        n, t, o = np.asarray(low_rank_grad, np.float64), self.proj_type, self.ortho_matrix
        if t in ("std", "reverse_std") and n.shape[0] == n.shape[1]:  # the authors' shape test is ambiguous
            full = n @ o if self.kind == "right" else o @ n
        elif t == "std":
            full = n @ o if n.shape[0] >= n.shape[1] else o @ n
        elif t == "reverse_std":
            full = o @ n if n.shape[0] <= n.shape[1] else n @ o
        elif t == "right":
            full = n @ o
        elif t == "left":
            full = o @ n
        else:
            full = o[0] @ n @ o[1]
        return full * self.scale

    def get_orthogonal_matrix(self, weights, rank, kind):
        """``V^T[:rank]`` (``'right'``), ``U[:, :rank]`` (``'left'``) or both (``'full'``) of ``weights``."""
        u, _, vt = self.svd(np.asarray(weights, np.float64))
        if kind == "right":
            return vt[:rank, :]
        if kind == "left":
            return u[:, :rank]
        return [u[:, :rank], vt[:rank, :]]


class galore_adamw:
    """Float64 transcription of the authors' GaLore ``AdamW.step`` (``jiaweizzhao/GaLore``, ``galore_torch/adamw.py``).

    Commit :data:`GALORE_COMMIT`. Per leaf, with ``k`` the 1-based step and ``proj`` a :class:`galore_projector` on the
    leaves that ``dims`` marks as matrices (the authors' parameter group with ``rank``; here 2-D only)::

        R = proj.project(G, k - 1)    (G itself elsewhere)
        m = b1 m + (1 - b1) R;   v = b2 v + (1 - b2) R^2;   N = m / (sqrt(v) + eps)
        step = lr sqrt(1 - b2^k) / (1 - b1^k)              (lr when correct_bias is False)
        p <- p - step proj.project_back(N);   then p <- p - lr weight_decay p   (the decay after the step)

    It returns the new parameters, not updates. It equals gradtx's ``galore(lr, rank, gap, scale,
    scale_by_adam(b1, b2, eps=0), proj_type=...)`` for ``eps = 0`` and ``weight_decay = 0`` (its eps sits outside
    the bias correction, ``eps / sqrt(1 - b2^k)`` in gradtx's terms, and its decay multiplies the stepped
    parameters).

    Args:
      lr: the learning rate. Default 1e-3 (the authors').
      betas: ``(b1, b2)``. Default ``(0.9, 0.999)``.
      eps: added to ``sqrt(v)``. Default 1e-6 (the authors').
      weight_decay: the decay applied after the step. Default 0.0.
      correct_bias: scale the step by the bias corrections. Default True.
      rank: the projection's rank. Default 128.
      update_proj_gap: the steps between SVDs. Default 200.
      scale: the factor of ``project_back``. Default 1.0.
      proj_type: the :class:`galore_projector` type. Default ``'std'`` (the authors').
      svd: the SVD passed to each projector, or None (:class:`galore_projector`'s default). Default None.
      dims: a callable ``(path, shape) -> (reduction_axes, output_axes)`` or None: the leaves projected (2-D, rows
        and columns as stored); None for :func:`default_dims`. Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> opt = rm.galore_adamw(lr=0.1, rank=1)
      >>> p = opt.step({"w": np.zeros((2, 2))}, {"w": np.array([[3.0, 0.0], [0.0, 1.0]])})
      >>> print(np.round(p["w"], 4))
      [[-0.1  0. ]
       [ 0.   0. ]]
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True, rank=128,
                 update_proj_gap=200, scale=1.0, proj_type="std", svd=None, dims=None):
        self.lr, (self.b1, self.b2), self.eps, self.wd = float(lr), map(float, betas), float(eps), float(weight_decay)
        self.correct_bias = correct_bias
        self.proj_args = (rank, update_proj_gap, scale, proj_type, svd)
        self.dims = dims or default_dims
        self.state = {}

    def step(self, params, grads):
        """One step: the new ``{path: array}`` parameters."""
        out = {}
        for path, g in grads.items():
            grad, p = np.asarray(g, np.float64), np.array(params[path], dtype=np.float64)
            st = self.state.setdefault(path, {"step": 0})
            if self.dims(path, grad.shape) is not None:
                st.setdefault("projector", galore_projector(*self.proj_args[:4], svd=self.proj_args[4]))
                grad = st["projector"].project(grad, st["step"])
            st.setdefault("exp_avg", np.zeros_like(grad))
            st.setdefault("exp_avg_sq", np.zeros_like(grad))
            st["step"] += 1
            st["exp_avg"] = self.b1 * st["exp_avg"] + (1.0 - self.b1) * grad
            st["exp_avg_sq"] = self.b2 * st["exp_avg_sq"] + (1.0 - self.b2) * grad * grad
            denom = np.sqrt(st["exp_avg_sq"]) + self.eps
            step_size = self.lr
            if self.correct_bias:
                step_size = step_size * math.sqrt(1.0 - self.b2 ** st["step"]) / (1.0 - self.b1 ** st["step"])
            norm_grad = st["exp_avg"] / denom
            if "projector" in st:
                norm_grad = st["projector"].project_back(norm_grad)
            p = p - step_size * norm_grad
            if self.wd > 0.0:
                p = p - self.lr * self.wd * p
            out[path] = p
        return out


class scale_by_galore:
    """Float64 reference of :func:`gradtx.contrib.scale_by_galore`: GaLore with an Adam base, per leaf.

    Zhao et al. 2024, "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection", ICML, arXiv 2403.03507,
    Algorithm 2. Adam's ``b1``, ``b2``, ``eps`` (of ``scale_by_adam``, bias-corrected; one step count for all leaves).
    On a matrix ``G`` (``m x n``, its dims not None): every ``update_proj_gap`` steps from the first, the projector
    of :class:`galore_projector` (the authors' transcription) with ``proj_type``, from the singular vectors with each
    column of ``U`` and row of ``V^T`` made positive at its largest-magnitude entry; ``out =
    project_back(adam(project(G)))``. The default ``'reverse_std'`` is Optax's: ``P`` = the top-``r`` left
    (``m >= n``) or right singular vectors, ``R = P^T G`` (or ``G P``), ``out = scale * P adam(R)`` (or ``adam(R)
    P^T``). Other leaves: ``adam(G)``.
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
      proj_type: ``'reverse_std'`` (Optax's), ``'std'`` (the authors' default), ``'left'``, ``'right'`` or
        ``'full'`` (keyword-only). Default ``'reverse_std'``.

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
                 weight_dimension_numbers=None, *, proj_type="reverse_std"):
        self.rank, self.gap, self.scale, self.proj_type = int(rank), int(update_proj_gap), float(scale), proj_type
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
            proj = self.state.setdefault(path + "/P", galore_projector(self.rank, self.gap, self.scale, self.proj_type,
                                                                      svd=_svd_fixed_signs))
            full = proj.project_back(self._adam(path, proj.project(g2, self.k - 1)))
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
      proj_type: the projection side (see :class:`scale_by_galore`; keyword-only). Default ``'reverse_std'``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_matrix as rm
      >>> r = rm.galore(0.1, rank=1)
      >>> print(np.round(r.step({"w": np.array([[3.0, 0.0], [0.0, 1.0]])})["w"], 4))
      [[-0.1 -0. ]
       [-0.  -0. ]]
    """

    def __init__(self, learning_rate, rank=128, update_proj_gap=200, scale=1.0, weight_decay=0.0,
                 weight_dimension_numbers=None, *, proj_type="reverse_std"):
        self.inner = scale_by_galore(rank, update_proj_gap, scale, weight_dimension_numbers=weight_dimension_numbers,
                                     proj_type=proj_type)
        self.lr, self.wd = learning_rate, float(weight_decay)

    def step(self, g, params=None):
        u = self.inner.step(g)
        lr = _value(self.lr, self.inner.k - 1)
        return {p: -lr * (v + (self.wd * np.asarray(params[p], np.float64) if self.wd and params else 0.0))
                for p, v in u.items()}
