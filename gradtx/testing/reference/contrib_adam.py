"""Float64 NumPy references for the Adam-like research optimizers of ``gradtx.contrib`` (ADOPT, AdEMAMix and its
simplified form, MADGRAD, ACProp, Cautious, AdaBound/AMSBound, MARS-AdamW, Adam-mini), written from the papers'
pseudo-code. The executable spec of ``gradtx/contrib/_adam_like.py``; imports only numpy and shares no code
with gradtx.

Interface as in ``gradtx.testing.reference``: a class per block and per optimizer, named like the gradtx name,
same arguments and defaults (dtype arguments accepted and ignored); ``u = ref.step(g, params=None)`` on 1-D
float64 vectors, or on ``{leaf path: array}`` dicts for the per-leaf ones (``cautious``, ``scale_by_mars``,
``mars_adamw``, ``scale_by_adam_mini``, ``adam_mini``: their statistics are per leaf). ``k`` is the 1-based
step; a callable learning rate (or ``b3``, ``alpha``, ``final_lr``) is evaluated at ``k - 1``. ``mask`` is a
boolean vector (True where weight decay applies) or None. Optimizers are monolithic loops (learning rate and
weight decay inside), not compositions of the blocks.
"""

import math
from typing import Any

import numpy as np

__all__ = [
    "scale_by_adopt",
    "adopt",
    "ademamix_b3_schedule",
    "ademamix",
    "ademamix_authors",
    "scale_by_ademamix",
    "simplified_ademamix",
    "scale_by_simplified_ademamix",
    "madgrad",
    "scale_by_madgrad",
    "acprop",
    "scale_by_acprop",
    "cautious",
    "cautious_adamw",
    "cautious_adamw_authors",
    "adabound",
    "amsbound",
    "scale_by_adabound",
    "scale_by_mars",
    "mars_adamw",
    "adam_mini",
    "scale_by_adam_mini",
]


def _vec(x):
    return np.array(x, dtype=np.float64, copy=True)


def _value(v, count):
    return float(v(count)) if callable(v) else float(v)  # type: ignore[arg-type]


def _decay(wd, p, mask):
    d = wd * p
    return d if mask is None else np.where(np.asarray(mask, bool), d, 0.0)


def _leaf_masks(mask, g):
    """A flat weight-decay mask (the tree's ravel order) cut into the leaves of the per-leaf dict ``g``."""
    if mask is None:
        return {k: None for k in g}
    out, i = {}, 0
    for k, v in g.items():
        n = np.size(v)
        out[k] = np.asarray(mask[i:i + n], bool).reshape(np.shape(v))
        i += n
    return out


def _default_clip(count):
    return count**0.25


# ----------------------------------------------------------------------------------------------------
# ADOPT (Taniguchi et al. 2024, arXiv 2411.02853, Algorithm 2 with clipping)
# ----------------------------------------------------------------------------------------------------


class scale_by_adopt:
    """Float64 reference of :func:`gradtx.contrib.scale_by_adopt` (ADOPT's direction, no learning rate).

    Taniguchi et al. 2024, "ADOPT: Modified Adam Can Converge with Any beta2 with the Optimal Rate", NeurIPS,
    arXiv 2411.02853, Algorithm 2 with clipping. The first call sets ``v_0 = g_0^2`` and returns zeros; then, with
    ``t`` the 0-based step::

        d = clip(g / max(sqrt(v_{t-1}), eps), -c(t), c(t))     (c(t) = clip_value_fn(t); no clip if not use_clipping)
        m = b1 m + (1 - b1) d;   v = b2 v + (1 - b2) g^2
        u = m   (nesterov: b1 m + (1 - b1) d)

    ``step(g, params=None)`` on 1-D float64 vectors returns ``u`` (a new array).

    Args:
      b1: the momentum's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.9999.
      eps: the floor of ``sqrt(v)``, > 0. Default 1e-6.
      mu_dtype: accepted and ignored (the reference is float64).
      nesterov: use the Nesterov form of the output. Default False.
      use_clipping: clip the normalised gradient by ``c(t)``. Default True.
      clip_value_fn: a callable ``t -> c(t)`` of the 0-based step. Default ``t ** 0.25``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.scale_by_adopt()
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [0. 0.]
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [ 0.1 -0.1]
    """

    def __init__(self, b1=0.9, b2=0.9999, eps=1e-6, mu_dtype=None, *, nesterov=False, use_clipping=True,
                 clip_value_fn=_default_clip):
        self.b1, self.b2, self.eps = float(b1), float(b2), float(eps)
        self.nesterov, self.use_clipping, self.clip = nesterov, use_clipping, clip_value_fn
        self.m: Any = None
        self.v: Any = None
        self.t = 0

    def step(self, g, params=None):
        g = _vec(g)
        t = self.t
        self.t += 1
        if t == 0:
            self.v, self.m = g * g, np.zeros_like(g)
            return np.zeros_like(g)
        d = g / np.maximum(np.sqrt(self.v), self.eps)
        if self.use_clipping:
            c = float(self.clip(float(t)))
            d = np.clip(d, -c, c)
        self.m = self.b1 * self.m + (1.0 - self.b1) * d
        self.v = self.b2 * self.v + (1.0 - self.b2) * g * g
        return self.b1 * self.m + (1.0 - self.b1) * d if self.nesterov else self.m.copy()


class adopt:
    """Float64 reference of :func:`gradtx.contrib.adopt`: ``u = -lr(k - 1) * scale_by_adopt(g)``.

    ADOPT (Taniguchi et al. 2024, arXiv 2411.02853): see :class:`scale_by_adopt` for the direction; the first
    update is zero. ``u = ref.step(g, params=None)`` on 1-D float64 vectors returns the update ``u`` (a new array).

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at the 0-based count
        ``k - 1``.
      b1: the momentum's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.9999.
      eps: the floor of ``sqrt(v)``, > 0. Default 1e-6.
      mu_dtype: accepted and ignored (the reference is float64).
      nesterov: use the Nesterov form of the momentum. Default False.
      use_clipping: clip the normalised gradient by ``c(t)``. Default True.
      clip_value_fn: a callable ``t -> c(t)`` of the 0-based step. Default ``t ** 0.25``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.adopt(0.1)
      >>> _ = r.step(np.array([1.0, -2.0]))
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [-0.01  0.01]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.9999, eps=1e-6, mu_dtype=None, *, nesterov=False,
                 use_clipping=True, clip_value_fn=_default_clip):
        self.lr, self.k = learning_rate, 0
        self.inner = scale_by_adopt(b1, b2, eps, nesterov=nesterov, use_clipping=use_clipping,
                                    clip_value_fn=clip_value_fn)

    def step(self, g, params=None):
        lr = _value(self.lr, self.k)
        self.k += 1
        return -lr * self.inner.step(g)


# ----------------------------------------------------------------------------------------------------
# AdEMAMix (Pagliardini et al. 2024, arXiv 2409.03137, Algorithm 1) and Simplified AdEMAMix (Morwani et al.
# 2025, arXiv 2502.02431)
# ----------------------------------------------------------------------------------------------------


def ademamix_b3_schedule(b3, warmup, b3_start=0.9, one_based=True):
    """Float64 reference of :func:`gradtx.contrib.ademamix_b3_schedule`: AdEMAMix's warm-up of ``b3``.

    The authors' ``linear_hl_warmup_scheduler`` (apple/ml-ademamix; Pagliardini et al. 2024, arXiv 2409.03137):
    the half-life ``h(b) = log(0.5) / log(b + 1e-8) - 1`` is interpolated linearly from ``h(b3_start)`` to
    ``h(b3)`` over ``warmup`` steps and mapped back by ``0.5 ** (1 / (h + 1))``; ``b3`` from ``warmup`` on. The
    authors' PyTorch optimizer evaluates it at the 1-based step, i.e. at ``count + 1`` (``one_based``).

    Args:
      b3: the final decay, in [0, 1).
      warmup: the number of warm-up steps, > 0.
      b3_start: the decay the warm-up starts from (at step 0). Default 0.9.
      one_based: evaluate at ``count + 1`` (True) or at ``count`` (False). Default True.

    Returns:
      A callable ``count -> float`` of the 0-based count.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> schedule = ref.ademamix_b3_schedule(0.999, 100, one_based=False)
      >>> print(np.round([schedule(0), schedule(50), schedule(100)], 4))
      [0.9   0.998 0.999]
    """

    def half_life(b):
        return math.log(0.5) / math.log(b + 1e-8) - 1

    def schedule(count):
        step = max(count, 0) + (1 if one_based else 0)
        if step >= warmup:
            return b3
        a = step / warmup
        return 0.5 ** (1 / ((1 - a) * half_life(b3_start) + a * half_life(b3) + 1))

    return schedule


class ademamix_authors:
    """The authors' PyTorch AdEMAMix, transcribed step for step in float64 (not a gradtx reference).

    ``AdEMAMix.step`` with ``linear_warmup_scheduler`` and ``linear_hl_warmup_scheduler`` of
    ``pytorch/ademamix.py`` in ``apple/ml-ademamix`` at commit c3d73c09f1287e5c33b95189bb0aa7de0a5a7667 (the
    repository's head; the file is unchanged since its first commit e732715). With ``k`` the 1-based step::

        alpha_k = alpha min(k / alpha_warmup, 1)          (alpha if alpha_warmup is None)
        b3_k    = f^-1((1 - a) f(b1) + a f(b3)),  a = k / beta3_warmup, for k < beta3_warmup; else b3
                  f(b) = log(0.5) / log(b + 1e-8) - 1,  f^-1(t) = 0.5 ** (1 / (t + 1))
        m1 = b1 m1 + (1 - b1) g  (m1 = g if b1 = 0);   m2 = b3_k m2 + (1 - b3_k) g;   v = b2 v + (1 - b2) g^2
        u  = -lr ((m1 / (1 - b1^k) + alpha_k m2) / (sqrt(v) / sqrt(1 - b2^k) + eps) + wd theta)

    Note that the warm-ups are evaluated at ``k``, not ``k - 1``; the warm-up of ``b3`` starts from ``b1``.
    ``u = ref.step(g, params)`` on 1-D float64 vectors returns ``u = theta_new - theta`` (a new array);
    ``params`` is needed when ``weight_decay`` is not 0.

    Args:
      lr: the learning rate (a float, constant). Default 1e-3.
      betas: ``(b1, b2, b3)``. Default (0.9, 0.999, 0.9999).
      alpha: the final weight of the slow EMA. Default 2.0 (the authors' PyTorch default).
      beta3_warmup: the warm-up length of ``b3`` in steps, or None (no warm-up). Default None.
      alpha_warmup: the warm-up length of ``alpha`` in steps, or None (no warm-up). Default None.
      eps: added to the bias-corrected root. Default 1e-8.
      weight_decay: the decoupled weight decay (multiplied by ``lr``). Default 0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.ademamix_authors(0.1, alpha=5.0, alpha_warmup=10)
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 6))  # alpha_1 = 0.5, b3 = 0.9999: not alpha = 0
      [-0.100005  0.100005]
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999, 0.9999), alpha=2.0, beta3_warmup=None, alpha_warmup=None,
                 eps=1e-8, weight_decay=0.0):
        self.lr, self.betas, self.alpha = float(lr), tuple(float(b) for b in betas), float(alpha)
        self.beta3_warmup, self.alpha_warmup = beta3_warmup, alpha_warmup
        self.eps, self.wd = float(eps), float(weight_decay)
        self.step_count, self.fast = 0, None
        self.slow = self.sq = None

    @staticmethod
    def linear_warmup_scheduler(step, alpha_end, alpha_start=0, warmup=1):
        """The authors' ``linear_warmup_scheduler``: linear from ``alpha_start`` to ``alpha_end`` over ``warmup``.

        Args:
          step: the 1-based step.
          alpha_end: the value from ``warmup`` on.
          alpha_start: the value at step 0. Default 0.
          warmup: the warm-up length. Default 1.

        Returns:
          The value at ``step``, a float.

        Examples:
          >>> from gradtx.testing.reference import contrib_adam as ref
          >>> ref.ademamix_authors.linear_warmup_scheduler(1, 5.0, warmup=10)
          0.5
        """
        if step < warmup:
            a = step / float(warmup)
            return (1.0 - a) * alpha_start + a * alpha_end
        return alpha_end

    @staticmethod
    def linear_hl_warmup_scheduler(step, beta_end, beta_start=0, warmup=1):
        """The authors' ``linear_hl_warmup_scheduler``: the half-life grows linearly over ``warmup`` steps.

        Args:
          step: the 1-based step.
          beta_end: the value from ``warmup`` on.
          beta_start: the value the warm-up starts from (at step 0). Default 0.
          warmup: the warm-up length. Default 1.

        Returns:
          The value at ``step``, a float.

        Examples:
          >>> from gradtx.testing.reference import contrib_adam as ref
          >>> round(ref.ademamix_authors.linear_hl_warmup_scheduler(1, 0.9999, 0.9, 100), 4)
          0.9909
        """

        def f(beta, eps=1e-8):
            return math.log(0.5) / math.log(beta + eps) - 1

        def f_inv(t):
            return math.pow(0.5, 1 / (t + 1))

        if step < warmup:
            a = step / float(warmup)
            return f_inv((1.0 - a) * f(beta_start) + a * f(beta_end))
        return beta_end

    def step(self, g, params=None):
        g = _vec(g)
        p = np.zeros_like(g) if params is None else _vec(params)
        beta1, beta2, beta3_final = self.betas
        if self.fast is None:
            self.fast = np.zeros_like(g) if beta1 != 0.0 else None
            self.slow, self.sq = np.zeros_like(g), np.zeros_like(g)
        self.step_count += 1
        bias_correction1 = 1 - beta1**self.step_count
        bias_correction2 = 1 - beta2**self.step_count
        if self.alpha_warmup is not None:
            alpha = self.linear_warmup_scheduler(self.step_count, alpha_end=self.alpha, alpha_start=0,
                                                 warmup=self.alpha_warmup)
        else:
            alpha = self.alpha
        if self.beta3_warmup is not None:
            beta3 = self.linear_hl_warmup_scheduler(self.step_count, beta_end=beta3_final, beta_start=beta1,
                                                    warmup=self.beta3_warmup)
        else:
            beta3 = beta3_final
        if beta1 != 0.0:
            self.fast = self.fast * beta1 + (1 - beta1) * g
            fast = self.fast
        else:
            fast = g
        self.slow = self.slow * beta3 + (1 - beta3) * g
        self.sq = self.sq * beta2 + (1 - beta2) * g * g
        denom = np.sqrt(self.sq) / math.sqrt(bias_correction2) + self.eps
        update = (fast / bias_correction1 + alpha * self.slow) / denom
        update = update + self.wd * p
        return -self.lr * update  # p.add_(-lr * update)


class ademamix:
    """Float64 reference of :func:`gradtx.contrib.ademamix`, a monolithic loop.

    Pagliardini, Ablin & Grangier 2024, "The AdEMAMix Optimizer: Better, Faster, Older", arXiv 2409.03137,
    Algorithm 1 (``k`` the 1-based step; ``b3`` and ``alpha`` may be schedules, evaluated at ``k - 1``)::

        m1 = b1 m1 + (1 - b1) g;   m2 = b3 m2 + (1 - b3) g;   nu = b2 nu + (1 - b2) g^2
        u = -lr ((m1 / (1 - b1^k) + alpha m2) / (sqrt(nu / (1 - b2^k) + eps_root) + eps) + wd mask * theta)

    ``u = ref.step(g, params=None)`` on 1-D float64 vectors returns the update ``u`` (a new array); ``params`` is needed
    when ``weight_decay`` is not 0.

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at the 0-based count
        ``k - 1``.
      b1: the fast EMA's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      b3: the slow EMA's decay, in [0, 1), or a callable of the 0-based count. Default 0.9999.
      alpha: the slow EMA's weight, >= 0, or a callable of the 0-based count. Default 5.0.
      eps: added outside the root, >= 0. Default 1e-8.
      eps_root: added inside the root, >= 0. Default 0.0.
      mu_dtype: accepted and ignored (the reference is float64).
      weight_decay: the decoupled weight decay, >= 0. Default 0.0.
      mask: a boolean vector (True where weight decay applies, in the raveled order of the parameters) or None for every
        coordinate. Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.ademamix(0.1, weight_decay=0.5)
      >>> print(np.round(r.step(np.array([1.0, -2.0]), np.array([1.0, 1.0])), 4))
      [-0.15  0.05]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, b3=0.9999, alpha=5.0, eps=1e-8, eps_root=0.0,
                 mu_dtype=None, weight_decay=0.0, mask=None):
        self.lr, self.b1, self.b2, self.b3, self.alpha = learning_rate, float(b1), float(b2), b3, alpha
        self.eps, self.eps_root, self.wd, self.mask = float(eps), float(eps_root), float(weight_decay), mask
        self.m1 = self.m2 = self.nu = None
        self.k = 0

    def direction(self, g):
        g = _vec(g)
        t = self.k
        self.k += 1
        k = self.k
        b3, alpha = _value(self.b3, t), _value(self.alpha, t)
        z = np.zeros_like(g)
        self.m1 = self.b1 * (z if self.m1 is None else self.m1) + (1 - self.b1) * g
        self.m2 = b3 * (z if self.m2 is None else self.m2) + (1 - b3) * g
        self.nu = self.b2 * (z if self.nu is None else self.nu) + (1 - self.b2) * g * g
        num = self.m1 / (1 - self.b1**k) + alpha * self.m2
        return num / (np.sqrt(self.nu / (1 - self.b2**k) + self.eps_root) + self.eps)

    def step(self, g, params=None):
        lr = _value(self.lr, self.k)
        d = self.direction(g)
        if self.wd:
            d = d + _decay(self.wd, _vec(params), self.mask)
        return -lr * d


class scale_by_ademamix(ademamix):
    """Float64 reference of :func:`gradtx.contrib.scale_by_ademamix`: AdEMAMix's direction, no learning rate.

    ``(m1 / (1 - b1^k) + alpha m2) / (sqrt(nu / (1 - b2^k) + eps_root) + eps)`` with the moments of
    :class:`ademamix`. ``step(g, params=None)`` on 1-D float64 vectors returns it (a new array).

    Args:
      b1: the fast EMA's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      b3: the slow EMA's decay, in [0, 1), or a callable of the 0-based count. Default 0.9999.
      alpha: the slow EMA's weight, >= 0, or a callable of the 0-based count. Default 6.0.
      eps: added outside the root, >= 0. Default 1e-8.
      eps_root: added inside the root, >= 0. Default 0.0.
      mu_dtype: accepted and ignored (the reference is float64).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.scale_by_ademamix()
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [ 1.0006 -1.0006]
    """

    def __init__(self, b1=0.9, b2=0.999, b3=0.9999, alpha=6.0, eps=1e-8, eps_root=0.0, mu_dtype=None):
        super().__init__(1.0, b1, b2, b3, alpha, eps, eps_root)

    def step(self, g, params=None):
        return self.direction(g)


class simplified_ademamix:
    """Float64 reference of :func:`gradtx.contrib.simplified_ademamix`, a monolithic loop.

    Morwani, Vyas, Kakade et al. 2025, "Connections between Schedule-Free Optimizers, AdEMAMix, and Accelerated
    SGD Variants", arXiv 2502.02431 (``k`` the 1-based step; ``alpha`` may be a schedule)::

        m = b1 m + g;   n = b2 n + (1 - b2) g^2
        u = -lr ((m + alpha g) / (sqrt(n / (1 - b2^k) + eps_root) + eps) + wd mask * theta)

    ``u = ref.step(g, params=None)`` on 1-D float64 vectors returns the update ``u`` (a new array); ``params`` is needed
    when ``weight_decay`` is not 0.

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at the 0-based count
        ``k - 1``.
      b1: the momentum's decay (the momentum is not damped), in [0, 1). Default 0.99.
      b2: the second moment's decay, in [0, 1). Default 0.95.
      alpha: the weight of the current gradient, >= 0, or a callable of the 0-based count. Default 0.0.
      eps: added outside the root, >= 0. Default 1e-8.
      eps_root: added inside the root, >= 0. Default 0.0.
      weight_decay: the decoupled weight decay, >= 0. Default 0.0.
      mask: a boolean vector (True where weight decay applies, in the raveled order of the parameters) or None for every
        coordinate. Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.simplified_ademamix(0.1)
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [-0.1  0.1]
    """

    def __init__(self, learning_rate, b1=0.99, b2=0.95, alpha=0.0, eps=1e-8, eps_root=0.0, weight_decay=0.0,
                 mask=None):
        self.lr, self.b1, self.b2, self.alpha = learning_rate, float(b1), float(b2), alpha
        self.eps, self.eps_root, self.wd, self.mask = float(eps), float(eps_root), float(weight_decay), mask
        self.m = self.n = None
        self.k = 0

    def direction(self, g):
        g = _vec(g)
        alpha = _value(self.alpha, self.k)
        self.k += 1
        z = np.zeros_like(g)
        self.m = self.b1 * (z if self.m is None else self.m) + g
        self.n = self.b2 * (z if self.n is None else self.n) + (1 - self.b2) * g * g
        n_hat = self.n / (1 - self.b2**self.k)
        return (self.m + alpha * g) / (np.sqrt(n_hat + self.eps_root) + self.eps)

    def step(self, g, params=None):
        lr = _value(self.lr, self.k)
        d = self.direction(g)
        if self.wd:
            d = d + _decay(self.wd, _vec(params), self.mask)
        return -lr * d


class scale_by_simplified_ademamix(simplified_ademamix):
    """Float64 reference of :func:`gradtx.contrib.scale_by_simplified_ademamix`: the direction, no learning rate.

    ``(m + alpha g) / (sqrt(n / (1 - b2^k) + eps_root) + eps)`` with the moments of :class:`simplified_ademamix`.
    ``step(g, params=None)`` on 1-D float64 vectors returns it (a new array).

    Args:
      b1: the momentum's decay, in [0, 1). Default 0.99.
      b2: the second moment's decay, in [0, 1). Default 0.95.
      alpha: the weight of the current gradient, >= 0, or a callable of the 0-based count. Default 0.0.
      eps: added outside the root, >= 0. Default 1e-8.
      eps_root: added inside the root, >= 0. Default 0.0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.scale_by_simplified_ademamix()
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [ 1. -1.]
    """

    def __init__(self, b1=0.99, b2=0.95, alpha=0.0, eps=1e-8, eps_root=0.0):
        super().__init__(1.0, b1, b2, alpha, eps, eps_root)

    def step(self, g, params=None):
        return self.direction(g)


# ----------------------------------------------------------------------------------------------------
# MADGRAD (Defazio & Jelassi 2021, arXiv 2101.11075, Algorithm 1)
# ----------------------------------------------------------------------------------------------------


class madgrad:
    """Float64 reference of :func:`gradtx.contrib.madgrad`, a monolithic loop.

    Defazio & Jelassi 2021, "Adaptivity without Compromise: A Momentumized, Adaptive, Dual Averaged Gradient Method
    for Stochastic Optimization", arXiv 2101.11075, Algorithm 1 (``k`` the 1-based step, L2 decay ``g += wd x``)::

        lambda_k = (lr(k - 1) + eps) sqrt(k);   s += lambda_k g;   nu += lambda_k g^2
        z = x0 - s / (cbrt(nu) + eps);   x_next = (1 - c) x + c z   (c = 1 - momentum);   u = x_next - x

    ``u = ref.step(g, params)`` on 1-D float64 vectors (``params`` is ``x``, required) returns ``u``.

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at the 0-based count
        ``k - 1``.
      momentum: in [0, 1). Default 0.9.
      weight_decay: the L2 penalty added to the gradient, >= 0. Default 0.0.
      eps: the damping, > 0. Default 1e-6.
      x0: the parameter vector ``init`` saw (the dual averaging's anchor); keyword only, required.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> x = np.array([1.0, 1.0])
      >>> r = ref.madgrad(0.1, x0=x)
      >>> print(np.round(r.step(np.array([1.0, -2.0]), x), 4))
      [-0.0215  0.0271]
    """

    def __init__(self, learning_rate, momentum=0.9, weight_decay=0.0, eps=1e-6, *, x0):
        self.lr, self.c, self.wd, self.eps = learning_rate, 1.0 - float(momentum), float(weight_decay), float(eps)
        self.x0 = _vec(x0)
        self.s = np.zeros_like(self.x0)
        self.nu = np.zeros_like(self.x0)
        self.k = 0

    def step(self, g, params=None):
        x = _vec(params)
        g = _vec(g) + self.wd * x
        lam = (_value(self.lr, self.k) + self.eps) * math.sqrt(self.k + 1)
        self.k += 1
        self.s = self.s + lam * g
        self.nu = self.nu + lam * g * g
        z = self.x0 - self.s / (np.cbrt(self.nu) + self.eps)
        x_new = (1.0 - self.c) * x + self.c * z
        return x_new - x


class scale_by_madgrad(madgrad):
    """Float64 reference of :func:`gradtx.contrib.scale_by_madgrad`: MADGRAD without weight decay.

    :class:`madgrad` with ``weight_decay=0``: the update ``x_next - x`` of MADGRAD (Defazio & Jelassi 2021, arXiv
    2101.11075); the learning rate is inside, as in gradtx. ``u = ref.step(g, params)`` on 1-D float64 vectors
    (``params`` required) returns ``u``.

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at the 0-based count
        ``k - 1``.
      momentum: in [0, 1). Default 0.9.
      eps: the damping, > 0. Default 1e-6.
      x0: the parameter vector ``init`` saw; keyword only, required.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> x = np.array([1.0, 1.0])
      >>> r = ref.scale_by_madgrad(0.1, x0=x)
      >>> print(np.round(r.step(np.array([1.0, -2.0]), x), 4))
      [-0.0215  0.0271]
    """

    def __init__(self, learning_rate, momentum=0.9, eps=1e-6, *, x0):
        super().__init__(learning_rate, momentum, 0.0, eps, x0=x0)


# ----------------------------------------------------------------------------------------------------
# ACProp (Zhuang et al. 2021, arXiv 2110.05454, Algorithm 2)
# ----------------------------------------------------------------------------------------------------


class acprop:
    """Float64 reference of :func:`gradtx.contrib.acprop`, a monolithic loop.

    Zhuang et al. 2021, "Momentum Centering and Asynchronous Update for Adaptive Gradient Methods", NeurIPS,
    arXiv 2110.05454, Algorithm 2. The step uses the previous statistics only (``k`` the 1-based step)::

        u = -lr (g / (sqrt(s_{k-1} / (1 - b2^(k-1))) + eps) + wd mask * theta)     (k = 1: g / (1 + eps))
        m_k = b1 m_{k-1} + (1 - b1) g;   s_k = b2 s_{k-1} + (1 - b2) (g - m_{k-1})^2 + eps_root

    The prediction error uses the momentum before this step, as in Optax's code. ``u = ref.step(g, params=None)`` on 1-D
    float64 vectors returns the update ``u`` (a new array); ``params`` is needed when ``weight_decay`` is not 0.

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at the 0-based count
        ``k - 1``.
      b1: the momentum's decay, in [0, 1). Default 0.9.
      b2: the centred second moment's decay, in [0, 1). Default 0.999.
      eps: added to the root, >= 0. Default 1e-16.
      eps_root: added to ``s`` at every step, >= 0. Default 1e-16.
      weight_decay: the decoupled weight decay, >= 0. Default 0.0.
      mask: a boolean vector (True where weight decay applies, in the raveled order of the parameters) or None for every
        coordinate. Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.acprop(0.1)
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [-0.1  0.2]
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [-0.1  0.1]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, weight_decay=0.0, mask=None):
        self.lr, self.b1, self.b2, self.eps, self.eps_root = learning_rate, float(b1), float(b2), float(eps), float(
            eps_root)
        self.wd, self.mask = float(weight_decay), mask
        self.m: Any = None
        self.s: Any = None
        self.k = 0

    def direction(self, g):
        g = _vec(g)
        if self.m is None:
            self.m, self.s = np.zeros_like(g), np.zeros_like(g)
        if self.k == 0:
            d = g / (1.0 + self.eps)
        else:
            d = g / (np.sqrt(self.s / (1 - self.b2**self.k)) + self.eps)
        self.s = self.b2 * self.s + (1 - self.b2) * (g - self.m) ** 2 + self.eps_root
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.k += 1
        return d

    def step(self, g, params=None):
        lr = _value(self.lr, self.k)
        d = self.direction(g)
        if self.wd:
            d = d + _decay(self.wd, _vec(params), self.mask)
        return -lr * d


class scale_by_acprop(acprop):
    """Float64 reference of :func:`gradtx.contrib.scale_by_acprop`: ACProp's direction, no learning rate.

    ``g / (sqrt(s_{k-1} / (1 - b2^(k-1))) + eps)`` (``g / (1 + eps)`` at k = 1) with the statistics of
    :class:`acprop`. ``step(g, params=None)`` on 1-D float64 vectors returns it (a new array).

    Args:
      b1: the momentum's decay, in [0, 1). Default 0.9.
      b2: the centred second moment's decay, in [0, 1). Default 0.999.
      eps: added to the root, >= 0. Default 1e-16.
      eps_root: added to ``s`` at every step, >= 0. Default 1e-16.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.scale_by_acprop()
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [ 1. -2.]
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [ 1. -1.]
    """

    def __init__(self, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16):
        super().__init__(1.0, b1, b2, eps, eps_root)

    def step(self, g, params=None):
        return self.direction(g)


# ----------------------------------------------------------------------------------------------------
# Cautious (Liang et al. 2024, arXiv 2411.16085, Algorithm 1) -- per leaf
# ----------------------------------------------------------------------------------------------------


def _rescaled(phi, normalize, rescale):
    """The kept coordinates ``phi`` (0 or 1) of one leaf, rescaled as :class:`cautious` says."""
    if not normalize:
        return phi
    if rescale == "mean_clamp":
        return phi / max(phi.mean(), 1e-3)
    return phi * np.size(phi) / (phi.sum() + 1.0)


class cautious:
    """Float64 reference of :func:`gradtx.contrib.cautious` (descent updates), per leaf.

    Liang, Chen, Liu & Liu 2024, "Cautious Optimizers: Improving Training with One Line of Code", arXiv 2411.16085,
    Algorithm 1: runs the flat reference ``inner`` on the concatenated leaves, then per leaf of ``n`` coordinates
    keeps the coordinates where the update opposes the gradient, ``phi = 1[u g < 0]``, scaled by
    ``n / (sum(phi) + 1)`` (``rescale="numel_over_sum"``) or ``1 / max(mean(phi), 1e-3)`` (``"mean_clamp"``) when
    ``normalize``: ``u' = phi u``.

    ``out = ref.step(g, params=None)`` takes and returns ``{leaf path: float64 array}`` dicts.

    Args:
      inner: the reference of the wrapped optimizer (an object with ``step(g, params)`` on flat vectors).
      normalize: rescale the kept coordinates. Default True.
      rescale: ``"numel_over_sum"`` or ``"mean_clamp"``. Default ``"numel_over_sum"``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.cautious(reference.sgd(0.1))
      >>> print(np.round(r.step({"w": np.array([1.0, -2.0])})["w"], 4))
      [-0.0667  0.1333]
    """

    def __init__(self, inner, normalize=True, rescale="numel_over_sum"):
        self.inner, self.normalize, self.rescale = inner, normalize, rescale

    def step(self, g, params=None):
        keys = list(g)
        flat_g = np.concatenate([np.ravel(g[k]) for k in keys]) if keys else np.zeros(0)
        flat_p = None if params is None else np.concatenate([np.ravel(params[k]) for k in keys])
        u = self.inner.step(flat_g, flat_p)
        out, i = {}, 0
        for k in keys:
            n = np.size(g[k])
            uk, gk = u[i:i + n], np.ravel(g[k])
            i += n
            phi = _rescaled((uk * gk < 0).astype(np.float64), self.normalize, self.rescale)
            out[k] = (uk * phi).reshape(np.shape(g[k]))
        return out


class cautious_adamw:
    """Float64 reference of :func:`gradtx.contrib.cautious_adamw` (C-AdamW), per leaf.

    Liang et al. 2024, arXiv 2411.16085, Algorithm 2 (the authors' ``c_adamw.py``). Per leaf of ``n``
    coordinates, with Adam's moments ``m``, ``v`` and ``k`` the 1-based step::

        phi = 1[m g > 0] * n / (sum(1[m g > 0]) + 1)      (rescale="numel_over_sum"; none if not normalize)
        phi = 1[m g > 0] / max(mean(1[m g > 0]), 1e-3)     (rescale="mean_clamp")
        u = -lr (phi * (m / (1 - b1^k)) / (sqrt(v / (1 - b2^k)) + eps) + wd mask * theta)

    The decay is not masked by ``phi``; ``eps`` is outside the bias-corrected root (Optax's Adam convention; the
    authors' PyTorch code scales eps by ``sqrt(1 - b2^k)``). ``out = ref.step(g, params)`` takes and returns
    ``{leaf path: float64 array}`` dicts (``params`` required).

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at the 0-based count
        ``k - 1``.
      b1: the first moment's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      eps: added outside the root, >= 0. Default 1e-8.
      weight_decay: the decoupled weight decay, >= 0. Default 1e-4.
      mask: a flat boolean vector in the tree's ravel order (cut into the leaves), or None. Default None.
      normalize: rescale the kept coordinates. Default True.
      rescale: ``"numel_over_sum"`` or ``"mean_clamp"``. Default ``"numel_over_sum"``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.cautious_adamw(0.1, weight_decay=0.0)
      >>> out = r.step({"w": np.array([1.0, -2.0])}, {"w": np.array([1.0, 1.0])})
      >>> print(np.round(out["w"], 4))
      [-0.0667  0.0667]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4, mask=None, normalize=True,
                 rescale="numel_over_sum"):
        self.lr, self.b1, self.b2, self.eps, self.wd = learning_rate, float(b1), float(b2), float(eps), float(
            weight_decay)
        self.mask, self.normalize, self.rescale = mask, normalize, rescale
        self.m, self.v, self.k = {}, {}, 0

    def step(self, g, params=None):
        masks = _leaf_masks(self.mask, g)
        lr = _value(self.lr, self.k)
        self.k += 1
        k, out = self.k, {}
        for key, gk in g.items():
            gk = _vec(gk)
            self.m[key] = self.b1 * self.m.get(key, 0.0) + (1 - self.b1) * gk
            self.v[key] = self.b2 * self.v.get(key, 0.0) + (1 - self.b2) * gk * gk
            phi = _rescaled((self.m[key] * gk > 0).astype(np.float64), self.normalize, self.rescale)
            d = phi * (self.m[key] / (1 - self.b1**k)) / (np.sqrt(self.v[key] / (1 - self.b2**k)) + self.eps)
            d = d + _decay(self.wd, _vec(params[key]), masks[key])  # type: ignore[index]
            out[key] = -lr * d
        return out


class cautious_adamw_authors:
    """The authors' C-AdamW (``c_adamw.py`` of ``kyleliang919/C-Optim``) transcribed in float64; not a gradtx reference.

    ``AdamW.step`` (the per-parameter loop) at commit ccadd1847bf1f35ccb3ab296d71a117167bc2e99 (2025-01-14,
    ``rescale="mean_clamp"``: ``mask.div_(mask.mean().clamp_(min=1e-3))``) and, for ``rescale="numel_over_sum"``,
    at its parent 3106e07 (``mask * (mask.numel() / (mask.sum() + 1))``). Per parameter tensor, ``k`` 1-based::

        theta <- theta - lr wd theta                               (before the step, if wd > 0)
        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;   denom = sqrt(v) + eps
        step_size = lr sqrt(1 - b2^k) / (1 - b1^k)                 (lr if not correct_bias)
        mask = 1[m g > 0], rescaled;   theta <- theta - step_size (m mask) / denom

    ``out = ref.step(g, params)`` takes and returns ``{leaf path: float64 array}`` dicts; ``out`` is
    ``theta_new - theta``, the sum of the two in-place increments (``params`` needed when ``weight_decay`` is not
    0).

    Args:
      lr: the learning rate (a float, constant). Default 1e-3.
      betas: ``(b1, b2)``. Default (0.9, 0.999).
      eps: added to ``sqrt(v)`` before the bias correction. Default 1e-6 (the authors' default).
      weight_decay: the decoupled weight decay (multiplied by ``lr``). Default 0.
      correct_bias: use Adam's bias corrections. Default True.
      rescale: ``"mean_clamp"`` (ccadd18 and later) or ``"numel_over_sum"`` (before). Default ``"mean_clamp"``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.cautious_adamw_authors(0.1, eps=0.0)
      >>> print(np.round(r.step({"w": np.array([1.0, -2.0])})["w"], 4))
      [-0.1  0.1]
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True,
                 rescale="mean_clamp"):
        self.lr, self.betas, self.eps, self.wd = float(lr), tuple(float(b) for b in betas), float(eps), float(
            weight_decay)
        self.correct_bias, self.rescale = correct_bias, rescale
        self.state = {}

    def step(self, g, params=None):
        out = {}
        for key, grad in g.items():
            grad = _vec(grad)
            p = np.zeros_like(grad) if params is None else _vec(params[key])
            decay = np.zeros_like(grad)
            state = self.state.setdefault(key, {"step": 0, "exp_avg": np.zeros_like(grad),
                                                "exp_avg_sq": np.zeros_like(grad)})
            beta1, beta2 = self.betas
            state["step"] += 1
            if self.wd > 0.0:
                decay = p * (-self.lr * self.wd)  # p.add_(p, alpha=-lr * wd)
            state["exp_avg"] = state["exp_avg"] * beta1 + grad * (1.0 - beta1)
            state["exp_avg_sq"] = state["exp_avg_sq"] * beta2 + grad * grad * (1.0 - beta2)
            exp_avg = state["exp_avg"]
            denom = np.sqrt(state["exp_avg_sq"]) + self.eps
            step_size = self.lr
            if self.correct_bias:
                bias_correction1 = 1.0 - beta1 ** state["step"]
                bias_correction2 = 1.0 - beta2 ** state["step"]
                step_size = step_size * math.sqrt(bias_correction2) / bias_correction1
            mask = (exp_avg * grad > 0).astype(np.float64)
            if self.rescale == "mean_clamp":
                mask = mask / max(mask.mean(), 1e-3)
            else:
                mask = mask * (mask.size / (mask.sum() + 1))
            norm_grad = (exp_avg * mask) / denom
            out[key] = decay + norm_grad * (-step_size)  # p.add_(norm_grad, alpha=-step_size)
        return out


# ----------------------------------------------------------------------------------------------------
# AdaBound / AMSBound (Luo et al. 2019, arXiv 1902.09843, Algorithms 2-3, the authors' code)
# ----------------------------------------------------------------------------------------------------


class adabound:
    """Float64 reference of :func:`gradtx.contrib.adabound` (and, with ``amsbound=True``, of ``amsbound``).

    Luo, Xiong, Liu & Sun 2019, "Adaptive Gradient Methods with Dynamic Bound of Learning Rate", ICLR,
    arXiv 1902.09843, Algorithms 2-3, as in the authors' code (``k`` the 1-based step; L2 decay ``g += wd mask x``)::

        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2   (amsbound: v_max = max(v_max, v) in the denominator)
        step = lr sqrt(1 - b2^k) / (1 - b1^k)
        eta = clip(step / (sqrt(v) + eps), final (1 - 1 / (gamma k + 1)), final (1 + 1 / (gamma k)));   u = -eta m

    ``u = ref.step(g, params=None)`` on 1-D float64 vectors returns the update ``u`` (a new array); ``params`` is needed
    when ``weight_decay`` is not 0.

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at the 0-based count
        ``k - 1``.
      b1: the first moment's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      final_lr: the SGD step size the bounds converge to, > 0, or a callable of the 0-based count. Default 0.1.
      gamma: the bounds' convergence speed, > 0. Default 1e-3.
      eps: added outside the root, >= 0. Default 1e-8.
      weight_decay: the L2 penalty added to the gradient, >= 0. Default 0.0.
      mask: a boolean vector (True where weight decay applies, in the raveled order of the parameters) or None for every
        coordinate. Default None.
      amsbound: use the running maximum of ``v`` (AMSBound). Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.adabound(0.1)
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [-0.1  0.1]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, final_lr=0.1, gamma=1e-3, eps=1e-8, weight_decay=0.0,
                 mask=None, *, amsbound=False):
        self.lr, self.b1, self.b2, self.final = learning_rate, float(b1), float(b2), final_lr
        self.gamma, self.eps, self.wd = float(gamma), float(eps), float(weight_decay)
        self.mask, self.ams = mask, amsbound
        self.m: Any = None
        self.v: Any = None
        self.vmax: Any = None
        self.k = 0

    def step(self, g, params=None):
        g = _vec(g)
        if self.wd:
            g = g + _decay(self.wd, _vec(params), self.mask)
        lr, final = _value(self.lr, self.k), _value(self.final, self.k)
        self.k += 1
        k = self.k
        if self.m is None:
            self.m, self.v, self.vmax = np.zeros_like(g), np.zeros_like(g), np.zeros_like(g)
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        self.vmax = np.maximum(self.vmax, self.v)
        denom = np.sqrt(self.vmax if self.ams else self.v) + self.eps
        step = lr * math.sqrt(1 - self.b2**k) / (1 - self.b1**k)
        lower, upper = final * (1 - 1 / (self.gamma * k + 1)), final * (1 + 1 / (self.gamma * k))
        return -np.clip(step / denom, lower, upper) * self.m


class amsbound(adabound):
    """Float64 reference of :func:`gradtx.contrib.amsbound`: AdaBound with the running maximum of ``v``.

    :class:`adabound` with ``amsbound=True``. Luo et al. 2019, arXiv 1902.09843, Algorithm 3: the denominator uses
    ``v_max = max(v_max, v)``. ``u = ref.step(g, params=None)`` on 1-D float64 vectors returns the update ``u`` (a new
    array).

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at the 0-based count
        ``k - 1``.
      b1: the first moment's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      final_lr: the SGD step size the bounds converge to, > 0, or a callable of the 0-based count. Default 0.1.
      gamma: the bounds' convergence speed, > 0. Default 1e-3.
      eps: added outside the root, >= 0. Default 1e-8.
      weight_decay: the L2 penalty added to the gradient, >= 0. Default 0.0.
      mask: a boolean vector (True where weight decay applies, in the raveled order of the parameters) or None for every
        coordinate. Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.amsbound(0.1)
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [-0.1  0.1]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, final_lr=0.1, gamma=1e-3, eps=1e-8, weight_decay=0.0,
                 mask=None):
        super().__init__(learning_rate, b1, b2, final_lr, gamma, eps, weight_decay, mask, amsbound=True)


class scale_by_adabound(adabound):
    """Float64 reference of :func:`gradtx.contrib.scale_by_adabound`: AdaBound without weight decay.

    :class:`adabound` with ``weight_decay=0``. The learning rate is inside (the bounds need it), as in gradtx.
    ``u = ref.step(g, params=None)`` on 1-D float64 vectors returns the update ``u`` (a new array).

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at the 0-based count
        ``k - 1``. Default 1e-3.
      b1: the first moment's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      final_lr: the SGD step size the bounds converge to, > 0, or a callable of the 0-based count. Default 0.1.
      gamma: the bounds' convergence speed, > 0. Default 1e-3.
      eps: added outside the root, >= 0. Default 1e-8.
      amsbound: use the running maximum of ``v`` (AMSBound). Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.scale_by_adabound()
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [-0.001  0.001]
    """

    def __init__(self, learning_rate=1e-3, b1=0.9, b2=0.999, final_lr=0.1, gamma=1e-3, eps=1e-8, *, amsbound=False):
        super().__init__(learning_rate, b1, b2, final_lr, gamma, eps, amsbound=amsbound)


# ----------------------------------------------------------------------------------------------------
# MARS-AdamW (Yuan et al. 2024, arXiv 2411.10438, Algorithm 2, approximate form) -- per leaf
# ----------------------------------------------------------------------------------------------------


class scale_by_mars:
    """Float64 reference of :func:`gradtx.contrib.scale_by_mars`: MARS's variance-reduced gradient, per leaf.

    Yuan, Liu, Wu et al. 2024, "MARS: Unleashing the Power of Variance Reduction for Training Large Models",
    arXiv 2411.10438, Algorithm 2 (approximate form), with ``g_prev = 0`` at the first step::

        c = g + gamma b1 / (1 - b1) (g - g_prev);   c = c max_norm / ||c||  per leaf if ||c|| > max_norm

    ``out = ref.step(g, params=None)`` takes and returns ``{leaf path: float64 array}`` dicts.

    Args:
      b1: the momentum's decay in the correction, in [0, 1). Default 0.95.
      gamma: the correction's scale, >= 0. Default 0.025.
      max_norm: the per-leaf norm bound, or None for none. Default 1.0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.scale_by_mars()
      >>> print(np.round(r.step({"w": np.array([0.3, -0.4])})["w"], 4))
      [ 0.4425 -0.59  ]
    """

    def __init__(self, b1=0.95, gamma=0.025, max_norm=1.0):
        self.b1, self.gamma, self.max_norm = float(b1), float(gamma), max_norm
        self.prev: Any = None

    def step(self, g, params=None):
        g = {k: _vec(v) for k, v in g.items()}
        prev = self.prev or {k: np.zeros_like(v) for k, v in g.items()}
        out = {}
        for k, v in g.items():
            c = v + self.gamma * self.b1 / (1 - self.b1) * (v - prev[k])
            n = math.sqrt(float(np.sum(c * c)))
            if self.max_norm is not None and n > self.max_norm:
                c = c * (self.max_norm / n)
            out[k] = c
        self.prev = g
        return out


class mars_adamw:
    """Float64 reference of :func:`gradtx.contrib.mars_adamw`: AdamW on MARS's clipped corrected gradient.

    The ``c`` of :class:`scale_by_mars`. Yuan et al. 2024, arXiv 2411.10438. Per leaf, with ``k`` the 1-based step::

        m = b1 m + (1 - b1) c;   v = b2 v + (1 - b2) c^2
        u = -lr ((m / (1 - b1^k)) / (sqrt(v / (1 - b2^k)) + eps) + wd mask * theta)

    ``out = ref.step(g, params=None)`` takes and returns ``{leaf path: float64 array}`` dicts (``params`` is
    needed when ``weight_decay`` is not 0).

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at the 0-based count
        ``k - 1``.
      b1: the first moment's (and the correction's) decay, in [0, 1). Default 0.95.
      b2: the second moment's decay, in [0, 1). Default 0.99.
      eps: added outside the root, >= 0. Default 1e-8.
      gamma: the correction's scale, >= 0. Default 0.025.
      weight_decay: the decoupled weight decay, >= 0. Default 0.0.
      mask: a flat boolean vector in the tree's ravel order (cut into the leaves), or None. Default None.
      max_norm: the per-leaf norm bound of ``c``, or None for none. Default 1.0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.mars_adamw(0.1)
      >>> print(np.round(r.step({"w": np.array([1.0, -2.0])})["w"], 4))
      [-0.1  0.1]
    """

    def __init__(self, learning_rate, b1=0.95, b2=0.99, eps=1e-8, gamma=0.025, weight_decay=0.0, mask=None,
                 max_norm=1.0):
        self.lr, self.b1, self.b2, self.eps = learning_rate, float(b1), float(b2), float(eps)
        self.wd, self.mask = float(weight_decay), mask
        self.c = scale_by_mars(b1, gamma, max_norm)
        self.m, self.v, self.k = {}, {}, 0

    def step(self, g, params=None):
        c = self.c.step(g)
        masks = _leaf_masks(self.mask, g)
        lr = _value(self.lr, self.k)
        self.k += 1
        k, out = self.k, {}
        for key, ck in c.items():
            self.m[key] = self.b1 * self.m.get(key, 0.0) + (1 - self.b1) * ck
            self.v[key] = self.b2 * self.v.get(key, 0.0) + (1 - self.b2) * ck * ck
            d = (self.m[key] / (1 - self.b1**k)) / (np.sqrt(self.v[key] / (1 - self.b2**k)) + self.eps)
            if self.wd:
                d = d + _decay(self.wd, _vec(params[key]), masks[key])  # type: ignore[index]
            out[key] = -lr * d
        return out


# ----------------------------------------------------------------------------------------------------
# Adam-mini (Zhang et al. 2024, arXiv 2406.16793, Algorithm 1) -- per leaf
# ----------------------------------------------------------------------------------------------------


def _mini_axes(blocks, shape):
    if callable(blocks):
        chosen: Any = blocks(np.zeros(shape))
        return tuple(int(a) % max(len(shape), 1) for a in chosen)
    if blocks == "leaf" or len(shape) < 2:
        return tuple(range(len(shape)))
    return tuple(range(1, len(shape)))


class adam_mini:
    """Float64 reference of :func:`gradtx.contrib.adam_mini`, per leaf.

    Zhang et al. 2024, "Adam-mini: Use Fewer Learning Rates To Gain More", arXiv 2406.16793, Algorithm 1: one
    second moment per block ``B`` of each leaf (``k`` the 1-based step)::

        m = b1 m + (1 - b1) g;   v_B = b2 v_B + (1 - b2) mean_B(g^2)
        u = -lr ((m / (1 - b1^k)) / (sqrt(v_B / (1 - b2^k)) + eps) + wd mask * theta)

    ``out = ref.step(g, params=None)`` takes and returns ``{leaf path: float64 array}`` dicts (``params`` is
    needed when ``weight_decay`` is not 0).

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at the 0-based count
        ``k - 1``.
      b1: the first moment's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      eps: added outside the root, >= 0. Default 1e-8.
      weight_decay: the decoupled weight decay, >= 0. Default 0.0.
      mask: a flat boolean vector in the tree's ravel order (cut into the leaves), or None. Default None.
      blocks: ``'row'`` (one block per row: the mean over every axis but the first; vectors are one block),
        ``'leaf'`` (one block per leaf) or a callable ``leaf -> axes averaged over``. Default ``'row'``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.adam_mini(0.1)
      >>> print(np.round(r.step({"w": np.array([[1.0, -1.0], [2.0, 0.0]])})["w"], 4))
      [[-0.1     0.1   ]
       [-0.1414 -0.    ]]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, mask=None, *, blocks="row"):
        self.lr, self.b1, self.b2, self.eps, self.wd, self.blocks = learning_rate, float(b1), float(b2), float(
            eps), float(weight_decay), blocks
        self.mask = mask  # flat, in the tree's ravel order (None: decay every coordinate)
        self.m, self.v, self.k = {}, {}, 0

    def step(self, g, params=None):
        masks = _leaf_masks(self.mask, g)
        lr = _value(self.lr, self.k)
        self.k += 1
        k, out = self.k, {}
        for key, gk in g.items():
            gk = _vec(gk)
            axes = _mini_axes(self.blocks, gk.shape)
            self.m[key] = self.b1 * self.m.get(key, 0.0) + (1 - self.b1) * gk
            self.v[key] = self.b2 * self.v.get(key, 0.0) + (1 - self.b2) * np.mean(gk * gk, axis=axes, keepdims=True)
            d = (self.m[key] / (1 - self.b1**k)) / (np.sqrt(self.v[key] / (1 - self.b2**k)) + self.eps)
            if self.wd:
                d = d + _decay(self.wd, _vec(params[key]), masks[key])  # type: ignore[index]
            out[key] = -lr * d
        return out


class scale_by_adam_mini(adam_mini):
    """Float64 reference of :func:`gradtx.contrib.scale_by_adam_mini`: Adam-mini's direction, per leaf.

    ``(m / (1 - b1^k)) / (sqrt(v_B / (1 - b2^k)) + eps)`` with the moments of :class:`adam_mini` (no learning rate,
    no decay). ``out = ref.step(g, params=None)`` takes and returns ``{leaf path: float64 array}`` dicts.

    Args:
      b1: the first moment's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      eps: added outside the root, >= 0. Default 1e-8.
      blocks: ``'row'``, ``'leaf'`` or a callable ``leaf -> axes averaged over`` (see :class:`adam_mini`).
        Default ``'row'``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_adam as ref
      >>> r = ref.scale_by_adam_mini()
      >>> print(np.round(r.step({"w": np.array([[1.0, -1.0], [2.0, 0.0]])})["w"], 4))
      [[ 1.     -1.    ]
       [ 1.4142  0.    ]]
    """

    def __init__(self, b1=0.9, b2=0.999, eps=1e-8, blocks="row"):
        super().__init__(-1.0, b1, b2, eps, blocks=blocks)
