"""Float64 NumPy references for the learning-rate-free optimizers of ``gradtx.contrib`` (reduce_on_plateau,
DoG, DoWG, Prodigy, D-Adaptation AdamW), written from the papers' pseudo-code.

Interface as in ``gradtx.testing.reference``: a class per block and per optimizer, named like the gradtx name,
with the same arguments and defaults; ``u = ref.step(g, params=None, **extra)`` on 1-D float64 vectors,
keeping its own state and never mutating its inputs. ``k`` is the 1-based number of the current step; a
callable learning rate is evaluated at ``k - 1``. ``mask`` is a boolean vector (True where weight decay
applies) or None. Optimizers that remember the initial parameters ``x_0`` take them through ``init(params)``
(returns the reference); without it, the parameters of the first ``step`` are used.

Conventions written down where the implementations (the authors' code, Optax) depart from the papers:
Optax's ``eps`` guards (DoG: inside the root; DoWG: beside the root), Prodigy's and D-Adaptation's
normalisations (below). ``reduce_on_plateau`` uses the margin ``rtol |best|`` (Optax PR #1767), not
``(1 - rtol) best``. This module imports only numpy and math and shares no code with gradtx.
"""

import math

import numpy as np

__all__ = [
    "reduce_on_plateau",
    "scale_by_dog",
    "dog",
    "scale_by_dowg",
    "dowg",
    "prodigy",
    "prodigy_authors",
    "dadapt_adamw",
    "scale_by_cocob",
    "cocob",
    "momo",
    "momo_adam",
    "mechanize",
]


def _vec(x):
    """A float64 copy of ``x``."""
    return np.array(x, dtype=np.float64, copy=True)


def _value(v, count):
    """A float or a callable count -> float, evaluated at the 0-based ``count``."""
    return float(v(count)) if callable(v) else float(v)  # type: ignore[arg-type]


def _decay(wd, p, mask):
    d = wd * p
    return d if mask is None else np.where(mask, d, 0.0)


_TINY = float(np.finfo(np.float64).eps)  # MoMo: below this squared norm the model step is 0


def _need(params):
    if params is None:
        raise ValueError("this reference needs params")
    return _vec(params)


# ----------------------------------------------------------------------------------------------------
# reduce_on_plateau
# ----------------------------------------------------------------------------------------------------


class reduce_on_plateau:
    """Float64 reference of :func:`gradtx.contrib.reduce_on_plateau`: ``u = scale * g``, the scale cut on plateaus.

    ReduceLROnPlateau (Keras / PyTorch, mode ``'min'``): the mean ``a`` of every ``accumulation_size`` values is an
    improvement iff ``a < best - rtol |best| - atol`` (the margin ``rtol |best|`` of Optax PR #1767, not
    ``(1 - rtol) best``). Otherwise the plateau count grows; at ``patience`` (outside a cooldown) the scale is
    multiplied by ``factor`` and floored at ``min_scale``, the count restarts, and ``cooldown`` evaluations follow
    with the count held at 0.

    ``u = ref.step(g, params=None, value=v)`` on 1-D float64 vectors returns ``u``; ``value`` (the loss) is
    required (``float(None)`` raises ``TypeError``).

    Args:
      factor: the multiplier of the scale at a plateau, in (0, 1]. Default 0.1.
      patience: the number of evaluations without improvement before a cut, >= 0. Default 10.
      rtol: the relative improvement margin, >= 0. Default 1e-4.
      atol: the absolute improvement margin, >= 0. Default 0.0.
      cooldown: the evaluations after a cut during which the count is held at 0, >= 0. Default 0.
      accumulation_size: the number of values averaged per evaluation, >= 1. Default 1.
      min_scale: the floor of the scale, >= 0. Default 0.0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_lrfree as ref
      >>> r = ref.reduce_on_plateau(factor=0.5, patience=1)
      >>> g = np.array([1.0, -2.0])
      >>> print([np.round(r.step(g, value=v), 4).tolist() for v in (1.0, 2.0, 3.0)])
      [[1.0, -2.0], [0.5, -1.0], [0.25, -0.5]]
    """

    def __init__(self, factor=0.1, patience=10, rtol=1e-4, atol=0.0, cooldown=0, accumulation_size=1,
                 min_scale=0.0):
        self.factor, self.rtol, self.atol, self.min_scale = float(factor), float(rtol), float(atol), float(min_scale)
        self.patience, self.cooldown, self.accumulation_size = int(patience), int(cooldown), int(accumulation_size)
        self.scale, self.best = 1.0, math.inf
        self.plateau = self.cooling = 0
        self.values = []

    def evaluate(self, a):
        improved = a < self.best - self.rtol * abs(self.best) - self.atol if math.isfinite(self.best) else a < math.inf
        if improved:
            self.best = a
        if self.cooling > 0:
            self.cooling -= 1
            self.plateau = 0
            return
        self.plateau = 0 if improved else self.plateau + 1
        if self.plateau >= self.patience:
            self.scale *= self.factor
            self.plateau = 0
            self.cooling = self.cooldown
        self.scale = max(self.scale, self.min_scale)

    def step(self, g, params=None, value=None):
        del params
        self.values.append(float(value))  # type: ignore[arg-type]
        if len(self.values) == self.accumulation_size:
            self.evaluate(sum(self.values) / len(self.values))
            self.values = []
        return self.scale * _vec(g)


# ----------------------------------------------------------------------------------------------------
# DoG and DoWG
# ----------------------------------------------------------------------------------------------------


class scale_by_dog:
    """Float64 reference of :func:`gradtx.contrib.scale_by_dog`: DoG's step size times the gradient.

    Ivgi, Hinder & Carmon 2023, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size Schedule", ICML,
    arXiv 2302.12022, Algorithm 1 (Optax's ``eps`` inside the root)::

        rbar_k = max(r_eps, max_{i<=k} ||x_i - x_0||);   G_k = sum_{i<=k} ||g_i||^2
        eta_k = rbar_k / sqrt(G_k + eps);   u = eta_k g_k

    with ``r_eps`` from ``init_step``: ``('distance', r) -> r``; ``('heuristic', a) -> a (1 + ||x_0||)``;
    ``('learning_rate', eta) -> 0`` and ``eta_1 = eta``. ``u = ref.step(g, params)`` on 1-D float64 vectors (``params``
    required) returns ``u``; ``ref.init(params)`` sets ``x_0`` and returns the reference; without it the params of the
    first ``step`` are ``x_0``.

    Args:
      init_step: a pair ``(kind, value)`` with ``kind`` in ``'distance'``, ``'heuristic'``, ``'learning_rate'``.
      eps: added inside the root, >= 0. Default 1e-8.

    Raises:
      ValueError: ``this reference needs params`` when ``step`` is called without ``params``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_lrfree as ref
      >>> x = np.array([1.0, 1.0])
      >>> r = ref.scale_by_dog(("distance", 1.0)).init(x)
      >>> print(np.round(r.step(np.array([3.0, 4.0]), x), 4))
      [0.6 0.8]
    """

    def __init__(self, init_step, eps=1e-8):
        self.kind, self.value = init_step[0], float(init_step[1])
        self.eps = float(eps)
        self.x0 = None
        self.rbar = self.G = 0.0
        self.k = 0

    def init(self, params):
        self.x0 = _vec(params)
        if self.kind == "distance":
            self.rbar = self.value
        elif self.kind == "heuristic":
            self.rbar = self.value * (1.0 + float(np.linalg.norm(self.x0)))
        else:
            self.rbar = 0.0
        return self

    def step(self, g, params=None):
        x = _need(params)
        if self.x0 is None:
            self.init(x)
        assert self.x0 is not None
        g = _vec(g)
        self.k += 1
        self.rbar = max(self.rbar, float(np.linalg.norm(x - self.x0)))
        self.G += float(g @ g)
        eta = self.rbar / math.sqrt(self.G + self.eps)
        if self.kind == "learning_rate" and self.k == 1:
            eta = self.value
        return eta * g


class dog:
    """Float64 reference of :func:`gradtx.contrib.dog`: ``x_{k+1} = x_k - lr_k eta_k (g_k + wd mask * x_k)``.

    DoG (Ivgi, Hinder & Carmon 2023, arXiv 2302.12022) with :class:`scale_by_dog`'s ``eta_k``, the weight decay added to
    the gradient first. ``u = ref.step(g, params)`` on 1-D float64 vectors (``params`` required) returns ``u``;
    ``ref.init(params)`` sets ``x_0`` and returns the reference; without it the params of the first ``step`` are
    ``x_0``.

    Args:
      learning_rate: the step size: a float, or a callable ``count -> float`` evaluated at the 0-based count ``k - 1``.
        Default 1.0.
      init_step: a pair ``(kind, value)``, see :class:`scale_by_dog`. Default ``('heuristic', 1e-6)``.
      eps: added inside the root, >= 0. Default 1e-8.
      weight_decay: the L2 penalty added to the gradient, or None for none. Default None.
      mask: a boolean vector (True where weight decay applies, in the raveled order of the parameters) or None for every
        coordinate. Default None.

    Raises:
      ValueError: ``this reference needs params`` when ``step`` is called without ``params``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_lrfree as ref
      >>> x = np.array([1.0, 1.0])
      >>> r = ref.dog(0.5, ("distance", 1.0)).init(x)
      >>> print(np.round(r.step(np.array([3.0, 4.0]), x), 4))
      [-0.3 -0.4]
    """

    def __init__(self, learning_rate=1.0, init_step=("heuristic", 1e-6), eps=1e-8, weight_decay=None, mask=None):
        self.lr, self.wd, self.mask = learning_rate, weight_decay, mask
        self.inner = scale_by_dog(init_step, eps)
        self.k = 0

    def init(self, params):
        self.inner.init(params)
        return self

    def step(self, g, params=None):
        x = _need(params)
        g = _vec(g)
        if self.wd is not None:
            g = g + _decay(float(self.wd), x, self.mask)
        u = -_value(self.lr, self.k) * self.inner.step(g, x)
        self.k += 1
        return u


class scale_by_dowg:
    """Float64 reference of :func:`gradtx.contrib.scale_by_dowg`: DoWG's step size times the gradient.

    Khaled, Mishchenko & Jin 2023, "DoWG Unleashed: An Efficient Universal Parameter-Free Gradient Descent Method",
    NeurIPS, arXiv 2305.16284, Algorithm 1 (Optax's ``eps`` beside the root)::

        rbar_k^2 = max(rbar_{k-1}^2, ||x_k - x_0||^2)   (rbar_0^2 = init_estim_sq_dist, or eps if None)
        v_k = v_{k-1} + rbar_k^2 ||g_k||^2;   u = rbar_k^2 / (sqrt(v_k) + eps) g_k

    ``u = ref.step(g, params)`` on 1-D float64 vectors (``params`` required) returns ``u``; ``ref.init(params)`` sets
    ``x_0`` and returns the reference; without it the params of the first ``step`` are ``x_0``.

    Args:
      init_estim_sq_dist: the initial squared distance estimate, > 0, or None for ``eps``. Default None.
      eps: added beside the root, > 0. Default 1e-4.

    Raises:
      ValueError: ``this reference needs params`` when ``step`` is called without ``params``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_lrfree as ref
      >>> x = np.array([1.0, 1.0])
      >>> r = ref.scale_by_dowg(init_estim_sq_dist=1.0).init(x)
      >>> print(np.round(r.step(np.array([3.0, 4.0]), x), 4))
      [0.6 0.8]
    """

    def __init__(self, init_estim_sq_dist=None, eps=1e-4):
        self.eps = float(eps)
        self.r2 = self.eps if init_estim_sq_dist is None else float(init_estim_sq_dist)
        self.v = 0.0
        self.x0 = None

    def init(self, params):
        self.x0 = _vec(params)
        return self

    def step(self, g, params=None):
        x = _need(params)
        if self.x0 is None:
            self.init(x)
        assert self.x0 is not None
        g = _vec(g)
        d = x - self.x0
        self.r2 = max(self.r2, float(d @ d))
        self.v += self.r2 * float(g @ g)
        return self.r2 / (math.sqrt(self.v) + self.eps) * g


class dowg(dog):
    """Float64 reference of :func:`gradtx.contrib.dowg`: ``x_{k+1} = x_k - lr_k eta_k (g_k + wd mask * x_k)``.

    DoWG (Khaled, Mishchenko & Jin 2023, arXiv 2305.16284) with :class:`scale_by_dowg`'s step size.
    ``u = ref.step(g, params)`` on 1-D float64 vectors (``params`` required) returns ``u``; ``ref.init(params)`` sets
    ``x_0`` and returns the reference; without it the params of the first ``step`` are ``x_0``.

    Args:
      learning_rate: the step size: a float, or a callable ``count -> float`` evaluated at the 0-based count ``k - 1``.
        Default 1.0.
      init_estim_sq_dist: the initial squared distance estimate, > 0, or None for ``eps``. Default None.
      eps: added beside the root, > 0. Default 1e-4.
      weight_decay: the L2 penalty added to the gradient, or None for none. Default None.
      mask: a boolean vector (True where weight decay applies, in the raveled order of the parameters) or None for every
        coordinate. Default None.

    Raises:
      ValueError: ``this reference needs params`` when ``step`` is called without ``params``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_lrfree as ref
      >>> x = np.array([1.0, 1.0])
      >>> r = ref.dowg(init_estim_sq_dist=1.0).init(x)
      >>> print(np.round(r.step(np.array([3.0, 4.0]), x), 4))
      [-0.6 -0.8]
    """

    def __init__(self, learning_rate=1.0, init_estim_sq_dist=None, eps=1e-4, weight_decay=None, mask=None):
        self.lr, self.wd, self.mask = learning_rate, weight_decay, mask
        self.inner = scale_by_dowg(init_estim_sq_dist, eps)  # type: ignore[assignment]
        self.k = 0


# ----------------------------------------------------------------------------------------------------
# Prodigy and D-Adaptation AdamW
# ----------------------------------------------------------------------------------------------------


class prodigy:
    """Float64 reference of :func:`gradtx.contrib.prodigy` (Adam version), as in the authors' PyTorch code.

    Mishchenko & Defazio 2023, "Prodigy: An Expeditiously Adaptive Parameter-Free Learner", arXiv 2306.06101,
    Algorithm 4. The paper's ``(1 - b3)`` factors of ``r`` and ``s`` are dropped (they cancel in ``r / ||s||_1``) and
    both are divided by ``d_1 = estim_lr0``; the Adam bias correction ``c_k = sqrt(1 - b2^k) / (1 - b1^k)`` (1 with
    ``use_bias_correction=False``, the authors' default) multiplies the step ``dlr_k = d_k lr_k c_k``; the new
    estimate ``d_{k+1}`` multiplies ``eps``::

        m = b1 m + (1 - b1) d_k g;   v = b2 v + (1 - b2) d_k^2 g^2
        r = b3 r + (d_k / d_1) dlr_k <g, x_0 - x>;   s = b3 s + (d_k / d_1) (dlr_k, or d_k if safeguard) g
        d_{k+1} = max(d_k, coef r / ||s||_1)   (kept when ||s||_1 = 0)
        u = -dlr_k m / (sqrt(v) + d_{k+1} eps) - wd dlr_k x

    ``u = ref.step(g, params)`` on 1-D float64 vectors (``params`` required) returns ``u``; the estimate is ``ref.d``.
    ``ref.init(params)`` sets ``x_0`` and returns the reference; without it the params of the first ``step`` are
    ``x_0``.

    Args:
      learning_rate: the step size: a float, or a callable ``count -> float`` evaluated at the 0-based count ``k - 1``.
        Default 1.0.
      betas: the pair ``(b1, b2)`` of Adam's decays, each in [0, 1). Default ``(0.9, 0.999)``.
      beta3: the decay of ``r`` and ``s``, in [0, 1), or None for ``sqrt(b2)``. Default None.
      eps: added outside the root (times ``d``), >= 0. Default 1e-8.
      estim_lr0: the initial estimate ``d_1``, > 0. Default 1e-6.
      estim_lr_coef: the coefficient ``coef`` of the new estimate, > 0. Default 1.0.
      weight_decay: the decoupled weight decay (times ``dlr``), >= 0. Default 0.0.
      safeguard_warmup: use ``d_k`` instead of ``dlr_k`` in ``s``. Default False.
      use_bias_correction: keyword-only; multiply ``dlr_k`` by ``c_k`` (True, Optax's behaviour) or not (False,
        the authors' default). Default True.

    Raises:
      ValueError: ``this reference needs params`` when ``step`` is called without ``params``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_lrfree as ref
      >>> x = np.array([1.0, 1.0])
      >>> r = ref.prodigy(estim_lr0=0.1).init(x)
      >>> print(np.round(r.step(np.array([1.0, -2.0]), x), 4))
      [-0.1  0.1]
    """

    def __init__(self, learning_rate=1.0, betas=(0.9, 0.999), beta3=None, eps=1e-8, estim_lr0=1e-6,
                 estim_lr_coef=1.0, weight_decay=0.0, safeguard_warmup=False, *, use_bias_correction=True):
        self.lr = learning_rate
        self.bias_correction = bool(use_bias_correction)
        self.b1, self.b2 = float(betas[0]), float(betas[1])
        self.b3 = math.sqrt(self.b2) if beta3 is None else float(beta3)
        self.eps, self.d0, self.coef, self.wd = float(eps), float(estim_lr0), float(estim_lr_coef), float(weight_decay)
        self.safeguard = safeguard_warmup
        self.d, self.r = self.d0, 0.0
        self.m = self.v = self.s = self.x0 = None
        self.k = 0

    def init(self, params):
        self.x0 = _vec(params)
        return self

    def step(self, g, params=None):
        x = _need(params)
        if self.x0 is None:
            self.init(x)
        assert self.x0 is not None
        g = _vec(g)
        if self.m is None:
            self.m, self.v, self.s = np.zeros_like(g), np.zeros_like(g), np.zeros_like(g)
        assert self.v is not None and self.s is not None
        lr = _value(self.lr, self.k)
        self.k += 1
        k, d = self.k, self.d
        dlr = d * lr * (math.sqrt(1 - self.b2**k) / (1 - self.b1**k) if self.bias_correction else 1.0)
        self.m = self.b1 * self.m + (1 - self.b1) * d * g
        self.v = self.b2 * self.v + (1 - self.b2) * (d * g) ** 2
        self.r = self.b3 * self.r + (d / self.d0) * dlr * float(g @ (self.x0 - x))
        self.s = self.b3 * self.s + (d / self.d0) * (d if self.safeguard else dlr) * g
        denom = float(np.sum(np.abs(self.s)))
        if denom > 0:
            self.d = max(d, self.coef * self.r / denom)
        return -dlr * self.m / (np.sqrt(self.v) + self.d * self.eps) - self.wd * dlr * x


class prodigy_authors:
    """Float64 transcription of the authors' PyTorch ``Prodigy.step`` (one parameter group, one flat tensor).

    Transcribed (read, not copied) from github.com/konstmish/prodigy, ``prodigyopt/prodigy.py`` at commit
    3efb213ee8af5a6bf76f28726398433a847b38e9 (2025-01-16), with its argument names and defaults, including
    ``use_bias_correction=False``. Kept close to the authors' structure, independently of ``prodigy``
    (which is written from the paper): the running maximum ``d_max`` and ``growth_rate``, the numerator
    decayed before the gradient's term is added, the step skipped (update 0, step counter not advanced) while
    the denominator is 0, the decoupled decay and the Adam step as two terms, the ``beta1 = 0`` branch
    without a first moment, and the coupled decay (``decouple=False``) added to the gradient. The authors' FSDP
    and ``slice_p`` paths are left out (``slice_p = 1``: every coordinate). With ``k`` the 0-based step counter::

        c = sqrt(1 - b2^(k+1)) / (1 - b1^(k+1)) if use_bias_correction else 1;   dlr = d lr c
        r = b3 r + (d / d0) dlr <g, x_0 - x>;   m = b1 m + d (1 - b1) g;   v = b2 v + d^2 (1 - b2) g^2
        s = b3 s + (d / d0) (d if safeguard_warmup else dlr) g
        d_hat = d_coef r / ||s||_1;   d = max(d, d_hat) if d == d0;   d_max = max(d_max, d_hat)
        d = min(d_max, d growth_rate);   u = -decay dlr x - dlr m / (sqrt(v) + d eps)

    (``dlr`` keeps the old ``d``; ``eps`` is scaled by the new one). With ``beta1 = 0`` there is no ``m`` and the
    step is ``-dlr d g / (sqrt(v) + d eps)`` with the *new* ``d``: gradtx and Optax use ``m = d g`` with the old
    one, so they differ there by the factor ``d_{k+1} / d_k`` (tests/test_contrib_lrfree.py writes it down).

    ``u = ref.step(g, params)`` returns ``u`` (what ``step`` adds to ``params``); ``ref.d`` is the estimate,
    ``ref.d_numerator`` the numerator ``r``, ``ref.k`` the step counter.

    Args:
      lr: the learning-rate multiplier, > 0, a float or a callable of the 0-based counter ``k``. Default 1.0.
      betas: ``(beta1, beta2)``, each in [0, 1). Default ``(0.9, 0.999)``.
      beta3: the decay of ``r`` and ``s``, or None for ``sqrt(beta2)``. Default None.
      eps: added to ``sqrt(v)`` (times ``d``), > 0. Default 1e-8.
      weight_decay: the weight decay, >= 0. Default 0.
      decouple: AdamW's decoupled decay (True) or an L2 term added to the gradient (False). Default True.
      use_bias_correction: multiply ``dlr`` by Adam's correction. Default False (the authors' default).
      safeguard_warmup: ``d`` instead of ``dlr`` in ``s``. Default False.
      d0: the initial estimate, > 0. Default 1e-6.
      d_coef: the coefficient of the estimate. Default 1.0.
      growth_rate: the largest factor by which ``d`` may grow in a step. Default ``inf``.

    Raises:
      ValueError: ``this reference needs params`` when ``step`` is called without ``params``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_lrfree as ref
      >>> x = np.array([1.0, 1.0])
      >>> r = ref.prodigy_authors(d0=0.1).init(x)
      >>> print(np.round(r.step(np.array([1.0, -2.0]), x), 4))  # (1 - b1) / sqrt(1 - b2) d0 sign(g)
      [-0.3162  0.3162]
    """

    def __init__(self, lr=1.0, betas=(0.9, 0.999), beta3=None, eps=1e-8, weight_decay=0.0, decouple=True,
                 use_bias_correction=False, safeguard_warmup=False, d0=1e-6, d_coef=1.0, growth_rate=math.inf):
        self.lr, self.beta1, self.beta2 = lr, float(betas[0]), float(betas[1])
        self.beta3 = math.sqrt(self.beta2) if beta3 is None else float(beta3)
        self.eps, self.decay, self.decouple = float(eps), float(weight_decay), bool(decouple)
        self.use_bias_correction, self.safeguard_warmup = bool(use_bias_correction), bool(safeguard_warmup)
        self.d0, self.d_coef, self.growth_rate = float(d0), float(d_coef), float(growth_rate)
        self.d = self.d_max = self.d0
        self.d_numerator, self.k = 0.0, 0
        self.exp_avg = self.exp_avg_sq = self.s = self.p0 = None

    def init(self, params):
        self.p0 = _vec(params)
        return self

    def step(self, g, params=None):
        p = _need(params)
        if self.p0 is None:
            self.init(p)
        assert self.p0 is not None
        grad = _vec(g)
        beta1, beta2, beta3, k, d = self.beta1, self.beta2, self.beta3, self.k, self.d
        lr = _value(self.lr, k)
        bias_correction = math.sqrt(1 - beta2 ** (k + 1)) / (1 - beta1 ** (k + 1)) if self.use_bias_correction else 1.0
        dlr = d * lr * bias_correction
        d_numerator = self.d_numerator * beta3
        if self.decay != 0 and not self.decouple:
            grad = grad + self.decay * p
        if self.exp_avg_sq is None:
            self.s, self.exp_avg_sq = np.zeros_like(p), np.zeros_like(p)
            self.exp_avg = np.zeros_like(p) if beta1 > 0 else None
        assert self.s is not None and self.exp_avg_sq is not None
        delta_numerator = (d / self.d0) * dlr * float(grad @ (self.p0 - p))
        if beta1 > 0:
            assert self.exp_avg is not None
            self.exp_avg = self.exp_avg * beta1 + d * (1 - beta1) * grad
        self.exp_avg_sq = self.exp_avg_sq * beta2 + d * d * (1 - beta2) * grad * grad
        self.s = self.s * beta3 + (d / self.d0) * (d if self.safeguard_warmup else dlr) * grad
        d_denom = float(np.sum(np.abs(self.s)))
        if d_denom == 0:  # the authors return before the step (the moments above are kept)
            return np.zeros_like(p)
        self.d_numerator = d_numerator + delta_numerator
        d_hat = self.d_coef * self.d_numerator / d_denom
        if d == self.d0:
            d = max(d, d_hat)
        self.d_max = max(self.d_max, d_hat)
        self.d = d = min(self.d_max, d * self.growth_rate)
        denom = np.sqrt(self.exp_avg_sq) + d * self.eps
        u = np.zeros_like(p)  # the authors add both terms to p in place; their sum is returned (no x - p rounding)
        if self.decay != 0 and self.decouple:
            u = u + p * (-self.decay * dlr)
        if beta1 > 0:
            u = u - dlr * self.exp_avg / denom
        else:
            u = u - dlr * d * grad / denom
        self.k = k + 1
        return u


class dadapt_adamw:
    """Float64 reference of :func:`gradtx.contrib.dadapt_adamw` (Adam variant), as in the authors' PyTorch code.

    Defazio & Mishchenko 2023, "Learning-Rate-Free Learning by D-Adaptation", ICML, arXiv 2301.07733. With
    ``sb2 = sqrt(b2)`` and ``dlr_k = d_k lr_k sqrt(1 - b2^k) / (1 - b1^k)``::

        r = sb2 r + (1 - sb2) dlr_k <g, s / (sqrt(v) + eps)>     (s, v before this step; 0 where s = 0)
        m = b1 m + (1 - b1) dlr_k g;   v = b2 v + (1 - b2) g^2;   s = sb2 s + (1 - sb2) dlr_k g
        d_{k+1} = max(d_k, r / ((1 - sb2) ||s||_1))   (kept when ||s||_1 = 0)
        u = -m / (sqrt(v) + eps) - wd dlr_k x

    ``u = ref.step(g, params)`` on 1-D float64 vectors (``params`` required) returns ``u``; the estimate is
    ``ref.d``.

    Args:
      learning_rate: the step size: a float, or a callable ``count -> float`` evaluated at the 0-based count
        ``k - 1``. Default 1.0.
      betas: the pair ``(b1, b2)`` of Adam's decays, each in [0, 1). Default ``(0.9, 0.999)``.
      eps: added outside the root, >= 0. Default 1e-8.
      estim_lr0: the initial estimate ``d_1``, > 0. Default 1e-6.
      weight_decay: the decoupled weight decay (times ``dlr``), >= 0. Default 0.0.

    Raises:
      ValueError: ``this reference needs params`` when ``step`` is called without ``params``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_lrfree as ref
      >>> r = ref.dadapt_adamw(estim_lr0=1.0)
      >>> g = np.array([1.0, -2.0])
      >>> print(np.round(r.step(g, np.array([1.0, 1.0])), 4))
      [-1.  1.]
      >>> print(np.round(r.step(g, np.array([0.0, 3.0])), 4), np.round(r.d, 4))
      [-1.1629  1.1629] 4.2677
    """

    def __init__(self, learning_rate=1.0, betas=(0.9, 0.999), eps=1e-8, estim_lr0=1e-6, weight_decay=0.0):
        self.lr = learning_rate
        self.b1, self.b2 = float(betas[0]), float(betas[1])
        self.eps, self.d, self.wd = float(eps), float(estim_lr0), float(weight_decay)
        self.r = 0.0
        self.m = self.v = self.s = None
        self.k = 0

    def step(self, g, params=None):
        x = _need(params)
        g = _vec(g)
        if self.m is None:
            self.m, self.v, self.s = np.zeros_like(g), np.zeros_like(g), np.zeros_like(g)
        assert self.v is not None and self.s is not None
        lr = _value(self.lr, self.k)
        self.k += 1
        k, d, sb2 = self.k, self.d, math.sqrt(self.b2)
        dlr = d * lr * math.sqrt(1 - self.b2**k) / (1 - self.b1**k)
        nonzero = self.s != 0
        weighted = np.zeros_like(self.s)
        weighted[nonzero] = self.s[nonzero] / (np.sqrt(self.v[nonzero]) + self.eps)
        self.r = sb2 * self.r + (1 - sb2) * dlr * float(g @ weighted)
        self.m = self.b1 * self.m + (1 - self.b1) * dlr * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        self.s = sb2 * self.s + (1 - sb2) * dlr * g
        denom = (1 - sb2) * float(np.sum(np.abs(self.s)))
        if denom > 0:
            self.d = max(d, self.r / denom)
        return -self.m / (np.sqrt(self.v) + self.eps) - self.wd * dlr * x


# ----------------------------------------------------------------------------------------------------
# COCOB, MoMo, Mechanic
# ----------------------------------------------------------------------------------------------------


class scale_by_cocob:
    """Float64 reference of :func:`gradtx.contrib.scale_by_cocob`: COCOB-Backprop's update, per coordinate.

    Orabona & Tommasi 2017, "Training Deep Networks without Learning Rates Through Coin Betting", NeurIPS,
    arXiv 1705.07795, Algorithm 2, from ``L_0 = eps`` and ``w_1 = x_0``::

        L = max(L, |g|);   G += |g|;   R = max(R - g (w - w_1), 0);   theta -= g
        w_next = w_1 + theta / (L max(G + L, alpha L)) (L + R);   u = w_next - w

    ``u = ref.step(g, params)`` on 1-D float64 vectors (``params`` is ``w``, required) returns ``u``;
    ``ref.init(params)`` sets ``x_0`` and returns the reference; without it the params of the first ``step`` are
    ``x_0``.

    Args:
      alpha: the bound on the betting fraction's growth, > 0. Default 100.0.
      eps: the initial ``L``, > 0. Default 1e-8.

    Raises:
      ValueError: ``this reference needs params`` when ``step`` is called without ``params``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_lrfree as ref
      >>> x = np.array([1.0, 1.0])
      >>> r = ref.scale_by_cocob().init(x)
      >>> print(np.round(r.step(np.array([1.0, -2.0]), x), 4))
      [-0.01  0.01]
    """

    def __init__(self, alpha=100.0, eps=1e-8):
        self.alpha, self.eps = float(alpha), float(eps)
        self.w1 = None

    def init(self, params):
        self.w1 = _vec(params)
        self.L = np.full_like(self.w1, self.eps)
        self.G, self.R, self.theta = np.zeros_like(self.w1), np.zeros_like(self.w1), np.zeros_like(self.w1)
        return self

    def step(self, g, params=None):
        w = _need(params)
        if self.w1 is None:
            self.init(w)
        assert self.w1 is not None
        g = _vec(g)
        self.L = np.maximum(self.L, np.abs(g))
        self.G = self.G + np.abs(g)
        self.R = np.maximum(self.R - g * (w - self.w1), 0.0)
        self.theta = self.theta - g
        w_next = self.w1 + self.theta / (self.L * np.maximum(self.G + self.L, self.alpha * self.L)) * (self.L + self.R)
        return w_next - w


class cocob:
    """Float64 reference of :func:`gradtx.contrib.cocob`: COCOB on ``g' = lr_k (g + wd mask * x)``.

    :class:`scale_by_cocob` on ``g'``. COCOB (Orabona & Tommasi 2017, arXiv 1705.07795) on the gradient plus weight
    decay, scaled by the learning rate. ``u = ref.step(g, params)`` on 1-D float64 vectors (``params`` required) returns
    ``u``; ``ref.init(params)`` sets ``x_0`` and returns the reference; without it the params of the first ``step`` are
    ``x_0``.

    Args:
      learning_rate: the step size: a float, or a callable ``count -> float`` evaluated at the 0-based count ``k - 1``.
        Default 1.0.
      alpha: the bound on the betting fraction's growth, > 0. Default 100.0.
      eps: the initial ``L``, > 0. Default 1e-8.
      weight_decay: the L2 penalty added to the gradient, >= 0. Default 0.0.
      mask: a boolean vector (True where weight decay applies, in the raveled order of the parameters) or None for every
        coordinate. Default None.

    Raises:
      ValueError: ``this reference needs params`` when ``step`` is called without ``params``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_lrfree as ref
      >>> x = np.array([1.0, 1.0])
      >>> r = ref.cocob().init(x)
      >>> print(np.round(r.step(np.array([1.0, -2.0]), x), 4))
      [-0.01  0.01]
    """

    def __init__(self, learning_rate=1.0, alpha=100.0, eps=1e-8, weight_decay=0.0, mask=None):
        self.lr, self.wd, self.mask = learning_rate, float(weight_decay), mask
        self.inner = scale_by_cocob(alpha, eps)
        self.k = 0

    def init(self, params):
        self.inner.init(params)
        return self

    def step(self, g, params=None):
        x = _need(params)
        g = (_vec(g) + _decay(self.wd, x, self.mask)) * _value(self.lr, self.k)
        self.k += 1
        return self.inner.step(g, x)


class momo:
    """Float64 reference of :func:`gradtx.contrib.momo`: MoMo, a model-based momentum method (decoupled weight decay).

    Schaipp, Ohana, Eickenberg, Defazio & Gower 2023, "MoMo: Momentum Models for Adaptive Learning Rates",
    arXiv 2305.07583, Algorithm 1, with ``rho = 0`` at step 1 and ``beta`` after, ``alpha = lr(k - 1)``::

        d = rho d + (1 - rho) g;   fbar = rho fbar + (1 - rho) f;   gam = rho gam + (1 - rho) <g, x>
        c = 1 + alpha wd;   tau = min(alpha, max(c (fbar - lb - gam) + <d, x>, 0) / ||d||^2)   (0 if ||d||^2 <= 2^-52)
        u = -(alpha wd / c) x - tau d

    ``adapt_lower_bound``: Optax's rule, before and after the step. ``u = ref.step(g, params, value=f)`` on 1-D
    float64 vectors (``params`` and the loss ``value`` required) returns ``u``.

    Args:
      learning_rate: the step size: a float, or a callable ``count -> float`` evaluated at the 0-based count ``k - 1``.
        Default 1.0.
      beta: the momentum, in [0, 1). Default 0.9.
      lower_bound: a lower bound ``lb`` of the loss. Default 0.0.
      weight_decay: the decoupled weight decay, >= 0. Default 0.0.
      adapt_lower_bound: estimate ``lb`` online (never below ``lower_bound``). Default False.

    Raises:
      ValueError: ``this reference needs params`` when ``step`` is called without ``params``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_lrfree as ref
      >>> r = ref.momo()
      >>> print(np.round(r.step(np.array([1.0, -2.0]), np.array([1.0, 1.0]), value=1.0), 4))
      [-0.2  0.4]
    """

    def __init__(self, learning_rate=1.0, beta=0.9, lower_bound=0.0, weight_decay=0.0, adapt_lower_bound=False):
        self.lr, self.beta, self.floor, self.wd = learning_rate, float(beta), float(lower_bound), float(weight_decay)
        self.adapt = adapt_lower_bound
        self.lb, self.fbar, self.gam, self.d, self.k = self.floor, 0.0, 0.0, None, 0

    def step(self, g, params=None, value=None):
        x, g = _need(params), _vec(g)
        rho = 0.0 if self.k == 0 else self.beta
        alpha = _value(self.lr, self.k)
        self.k += 1
        self.d = (1 - rho) * g if self.d is None else rho * self.d + (1 - rho) * g
        self.fbar = rho * self.fbar + (1 - rho) * float(value)  # type: ignore[arg-type]
        self.gam = rho * self.gam + (1 - rho) * float(g @ x)
        d_sq, iprod, c = float(self.d @ self.d), float(self.d @ x), 1 + alpha * self.wd
        if self.adapt:
            cap = c * (self.fbar - self.gam) + iprod
            if cap < c * self.lb:
                self.lb = max(cap / (2 * c), self.floor)
        t1 = max(c * (self.fbar - self.lb - self.gam) + iprod, 0.0) / d_sq if d_sq > _TINY else 0.0
        tau = min(alpha, t1)
        if self.adapt:
            self.lb = max(self.fbar + iprod - self.gam - 0.5 * tau * d_sq, self.floor)
        return -(alpha * self.wd / c) * x - tau * self.d


class momo_adam:
    """Float64 reference of :func:`gradtx.contrib.momo_adam`: MoMo-Adam (decoupled weight decay).

    Schaipp et al. 2023, arXiv 2305.07583, Algorithm 2: ``m``, ``v`` Adam's moments, ``fbar`` and ``gam`` averaged
    with ``b1`` (no first-step special case), ``alpha = lr(k - 1)``::

        D = eps + sqrt(v / (1 - b2^k));   q = 1 - b1^k;   c = 1 + alpha wd
        tau = min(alpha / q, max(c (fbar - q lb - gam) + <m, x>, 0) / <m, m / D>);   u = -(alpha wd / c) x - tau m / D

    ``u = ref.step(g, params, value=f)`` on 1-D float64 vectors (``params`` and the loss ``value`` required)
    returns ``u``.

    Args:
      learning_rate: the step size: a float, or a callable ``count -> float`` evaluated at the 0-based count ``k - 1``.
        Default 1e-2.
      b1: the first moment's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      eps: added to the root, > 0. Default 1e-8.
      lower_bound: a lower bound ``lb`` of the loss. Default 0.0.
      weight_decay: the decoupled weight decay, >= 0. Default 0.0.
      adapt_lower_bound: estimate ``lb`` online (never below ``lower_bound``). Default False.

    Raises:
      ValueError: ``this reference needs params`` when ``step`` is called without ``params``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_lrfree as ref
      >>> r = ref.momo_adam()
      >>> print(np.round(r.step(np.array([1.0, -2.0]), np.array([1.0, 1.0]), value=1.0), 4))
      [-0.01  0.01]
    """

    def __init__(self, learning_rate=1e-2, b1=0.9, b2=0.999, eps=1e-8, lower_bound=0.0, weight_decay=0.0,
                 adapt_lower_bound=False):
        self.lr, self.b1, self.b2, self.eps = learning_rate, float(b1), float(b2), float(eps)
        self.floor, self.wd, self.adapt = float(lower_bound), float(weight_decay), adapt_lower_bound
        self.lb, self.fbar, self.gam, self.m, self.v, self.k = self.floor, 0.0, 0.0, None, None, 0

    def step(self, g, params=None, value=None):
        x, g = _need(params), _vec(g)
        if self.m is None:
            self.m, self.v = np.zeros_like(g), np.zeros_like(g)
        assert self.v is not None
        alpha = _value(self.lr, self.k)
        self.k += 1
        b1, b2, k = self.b1, self.b2, self.k
        self.fbar = b1 * self.fbar + (1 - b1) * float(value)  # type: ignore[arg-type]
        self.m = b1 * self.m + (1 - b1) * g
        self.v = b2 * self.v + (1 - b2) * g * g
        D = self.eps + np.sqrt(self.v / (1 - b2**k))
        m_sq = float(self.m @ (self.m / D))
        self.gam = b1 * self.gam + (1 - b1) * float(g @ x)
        iprod, c, q = float(self.m @ x), 1 + alpha * self.wd, 1 - b1**k
        if self.adapt:
            cap = c * (self.fbar - self.gam) + iprod
            if cap < c * q * self.lb:
                self.lb = max(cap / (2 * q * c), self.floor)
        t1 = max(c * (self.fbar - q * self.lb - self.gam) + iprod, 0.0) / m_sq if m_sq > _TINY else 0.0
        tau = min(alpha / q, t1)
        if self.adapt:
            self.lb = max((self.fbar + iprod - self.gam - 0.5 * tau * m_sq) / q, self.floor)
        return -(alpha * self.wd / c) * x - tau * self.m / D


class mechanize:
    """Float64 reference of :func:`gradtx.contrib.mechanize`: Mechanic's learned scale around a base optimizer.

    Cutkosky, Defazio & Mehta 2023, "Mechanic: A Learning Rate Tuner", NeurIPS, arXiv 2306.00144, Algorithm 1.
    With ``S = sum(s)``, ``beta_i = 1 - 10^-i`` (``i = 1 .. num_betas``) and ``b`` the base reference's update::

        g' = g + wd S ||g|| / (||x|| + eps) x;   delta = (x0 - x) / (S + eps);   h = <g', delta>
        m = max(beta m, |h| + eps);   v = beta^2 v + h^2;   r = beta r + clip(h, -m_old, m_old) s
        s = ((s_init / n) m + max(r, 0)) / (sqrt(v) + eps);   x_next = x0 - sum(s) (delta - b);   u = x_next - x

    ``x0`` is the params of the first step, so the first update is ``s_init * b``. ``u = ref.step(g, params)``
    on 1-D float64 vectors (``params`` required) returns ``u``.

    Args:
      base: the base reference (an object with ``step(g, params)``).
      weight_decay: Mechanic's own weight decay, >= 0. Default 1e-2.
      eps: the damping, > 0. Default 1e-8.
      s_init: the initial total scale, > 0. Default 1e-6.
      num_betas: the number ``n`` of decays run in parallel, >= 1. Default 6.

    Raises:
      ValueError: ``this reference needs params`` when ``step`` is called without ``params``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference
      >>> from gradtx.testing.reference import contrib_lrfree as ref
      >>> r = ref.mechanize(reference.sgd(0.1), s_init=1.0)
      >>> print(np.round(r.step(np.array([1.0, -2.0]), np.array([1.0, 1.0])), 4))
      [-0.1  0.2]
    """

    def __init__(self, base, weight_decay=1e-2, eps=1e-8, s_init=1e-6, num_betas=6):
        self.base, self.wd, self.eps, self.s_init = base, float(weight_decay), float(eps), float(s_init)
        self.n = num_betas
        self.betas = np.array([1.0 - 0.1 ** (i + 1) for i in range(num_betas)])
        self.r, self.m, self.v = np.zeros(num_betas), np.zeros(num_betas), np.zeros(num_betas)
        self.s = np.full(num_betas, self.s_init)
        self.x0 = None

    def step(self, g, params=None):
        x, g = _need(params), _vec(g)
        b = self.base.step(g, x)
        if self.x0 is None:
            self.x0 = x.copy()
        S = float(np.sum(self.s))
        g_wd = g + self.wd * S * float(np.linalg.norm(g)) / (float(np.linalg.norm(x)) + self.eps) * x
        delta = (self.x0 - x) / (S + self.eps)
        h = float(g_wd @ delta)
        clipped = np.clip(h, -self.m, self.m)
        self.m = np.maximum(self.betas * self.m, abs(h) + self.eps)
        self.v = self.betas**2 * self.v + h * h
        self.r = self.betas * self.r + clipped * self.s
        self.s = (self.s_init / self.n * self.m + np.maximum(self.r, 0.0)) / (np.sqrt(self.v) + self.eps)
        return self.x0 - float(np.sum(self.s)) * (delta - b) - x
