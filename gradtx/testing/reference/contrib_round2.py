"""Float64 NumPy references for LaProp, StableAdamW and Adam-atan2 (``gradtx.contrib``), written from the papers.

The executable spec of ``gradtx/contrib/_adam_like/laprop.py``, ``stable_adamw.py`` and ``adam_atan2.py``; imports
only numpy and the standard library and shares no code with gradtx.

Interface as in ``gradtx.testing.reference``: a class per block and per optimizer, named like the gradtx name, with
the same arguments and defaults (dtype arguments accepted and ignored); ``u = ref.step(g, params=None)`` on 1-D
float64 vectors, or on ``{leaf path: array}`` dicts for StableAdamW (its update clipping is one RMS per leaf).
``k`` is the 1-based step; a callable learning rate is evaluated at ``k - 1``. ``mask`` is a flat boolean vector
(True where weight decay applies; cut into the leaves for the per-leaf ones) or None. The optimizers are
monolithic loops (learning rate and weight decay inside), not compositions of the blocks.

Sources:

- LaProp: Ziyin, Wang & Ueda 2020, "LaProp: Separating Momentum and Adaptivity in Adam", arXiv 2002.04839,
  Algorithm 1; bias corrections and ``eps`` as in the authors' ``laprop.py`` (github.com/Z-T-WANG/LaProp-Optimizer,
  commit ff5efc069795ee82dcebdc8371784c59545c5bd3), whose ``lr`` inside the momentum equals the ``lr`` outside for
  a constant rate.
- StableAdamW: Wortsman et al. 2023, "Stable and low-precision training for large-scale vision-language models",
  arXiv 2304.13013, Algorithm 2, written with its debiased decays ``b_hat = b (1 - b^(k-1)) / (1 - b^k)``.
- Adam-atan2: Everett et al. 2024, "Scaling Exponents Across Parameterizations and Optimizers", arXiv 2407.05872.
"""

import math
from typing import Any

import numpy as np

__all__ = [
    "adam_atan2",
    "laprop",
    "scale_by_adam_atan2",
    "scale_by_laprop",
    "scale_by_stable_adamw",
    "stable_adamw",
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


# ----------------------------------------------------------------------------------------------------
# LaProp (Ziyin, Wang & Ueda 2020, arXiv 2002.04839)
# ----------------------------------------------------------------------------------------------------


class laprop:
    """Float64 reference of :func:`gradtx.contrib.laprop`.

    With ``k`` the 1-based step::

        v = b2 v + (1 - b2) g^2
        n = g / (sqrt(v / (1 - b2^k)) + eps)          (the gradient normalised first)
        m = b1 m + (1 - b1) n                          (then averaged)
        u = -lr (m / (1 - b1^k) + wd mask * theta)

    ``u = ref.step(g, params=None)`` on 1-D float64 vectors (``params`` needed when ``weight_decay`` is not 0).

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at ``k - 1``.
      b1: the momentum's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      eps: added to the root of the corrected second moment, >= 0. Default 1e-15.
      weight_decay: the decoupled weight decay, >= 0. Default 0.0.
      mask: a flat boolean vector (True: decayed), or None. Default None.
      mu_dtype: accepted and ignored (the reference is float64).
      nu_dtype: accepted and ignored.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_round2 as ref
      >>> r = ref.laprop(0.1)
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [-0.1  0.1]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-15, weight_decay=0.0, mask=None, mu_dtype=None, *,
                 nu_dtype=None):
        self.lr, self.b1, self.b2, self.eps = learning_rate, float(b1), float(b2), float(eps)
        self.wd, self.mask = float(weight_decay), mask
        self.m: Any = 0.0
        self.v: Any = 0.0
        self.k = 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.k)
        self.k += 1
        k = self.k
        self.v = self.b2 * self.v + (1.0 - self.b2) * g * g
        n = g / (np.sqrt(self.v / (1.0 - self.b2**k)) + self.eps)
        self.m = self.b1 * self.m + (1.0 - self.b1) * n
        d = self.m / (1.0 - self.b1**k)
        if self.wd:
            d = d + _decay(self.wd, _vec(params), self.mask)
        return -lr * d


class scale_by_laprop(laprop):
    """Float64 reference of :func:`gradtx.contrib.scale_by_laprop`: LaProp's direction ``m / (1 - b1^k)``.

    The moments of :class:`laprop`, no learning rate and no decay. ``u = ref.step(g, params=None)`` on 1-D float64
    vectors.

    Args:
      b1: the momentum's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      eps: added to the root of the corrected second moment, >= 0. Default 1e-15.
      mu_dtype: accepted and ignored (the reference is float64).
      nu_dtype: accepted and ignored.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_round2 as ref
      >>> r = ref.scale_by_laprop()
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4))
      [ 1. -1.]
    """

    def __init__(self, b1=0.9, b2=0.999, eps=1e-15, mu_dtype=None, *, nu_dtype=None):
        super().__init__(-1.0, b1, b2, eps)


# ----------------------------------------------------------------------------------------------------
# StableAdamW (Wortsman et al. 2023, arXiv 2304.13013, Algorithm 2) -- per leaf
# ----------------------------------------------------------------------------------------------------


class stable_adamw:
    """Float64 reference of :func:`gradtx.contrib.stable_adamw`, per leaf.

    Algorithm 2 of Wortsman et al. 2023, with the paper's debiased decays (``k`` the 1-based step)::

        b1_hat = b1 (1 - b1^(k-1)) / (1 - b1^k),    b2_hat = b2 (1 - b2^(k-1)) / (1 - b2^k)
        m = b1_hat m + (1 - b1_hat) g,              v = b2_hat v + (1 - b2_hat) g^2
        RMS = sqrt(mean over the leaf of g^2 / max(v, eps^2))
        u = -lr ((m / (sqrt(v) + eps)) / max(1, RMS / clip_threshold) + wd mask * theta)

    (the paper also divides the decay term by the factor; gradtx's recipe, and so this reference, does not: see
    :func:`gradtx.contrib.stable_adamw`). ``out = ref.step(g, params=None)`` takes and returns
    ``{leaf path: float64 array}`` dicts.

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at ``k - 1``.
      b1: the first moment's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.99.
      eps: added to ``sqrt(v)``, squared the floor of ``v`` in the RMS, >= 0. Default 1e-6.
      weight_decay: the decoupled weight decay, >= 0. Default 1e-4.
      mask: a flat boolean vector in the tree's ravel order (cut into the leaves), or None. Default None.
      mu_dtype: accepted and ignored (the reference is float64).
      clip_threshold: the RMS above which the step is scaled down, > 0. Default 1.0.
      nu_dtype: accepted and ignored.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_round2 as ref
      >>> r = ref.stable_adamw(0.1, eps=0.0, weight_decay=0.0)
      >>> print(np.round(r.step({"w": np.array([1.0, -2.0])})["w"], 4))
      [-0.1  0.1]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.99, eps=1e-6, weight_decay=1e-4, mask=None, mu_dtype=None, *,
                 clip_threshold=1.0, nu_dtype=None):
        self.lr, self.b1, self.b2, self.eps = learning_rate, float(b1), float(b2), float(eps)
        self.wd, self.mask, self.d = float(weight_decay), mask, float(clip_threshold)
        self.m: dict[Any, Any] = {}
        self.v: dict[Any, Any] = {}
        self.k = 0

    def step(self, g, params=None):
        masks = _leaf_masks(self.mask, g)
        lr = _value(self.lr, self.k)
        self.k += 1
        k, out = self.k, {}
        b1_hat = self.b1 * (1.0 - self.b1 ** (k - 1)) / (1.0 - self.b1**k)
        b2_hat = self.b2 * (1.0 - self.b2 ** (k - 1)) / (1.0 - self.b2**k)
        for key, gk in g.items():
            gk = _vec(gk)
            m = b1_hat * self.m.get(key, 0.0) + (1.0 - b1_hat) * gk
            v = b2_hat * self.v.get(key, 0.0) + (1.0 - b2_hat) * gk * gk
            self.m[key], self.v[key] = m, v
            d = m / (np.sqrt(v) + self.eps)
            if gk.size:
                rms = math.sqrt(float(np.mean(gk * gk / np.maximum(v, self.eps**2))))
                d = d / max(1.0, rms / self.d)
            if self.wd:
                d = d + _decay(self.wd, _vec(params[key]), masks[key])  # type: ignore[index]
            out[key] = -lr * d
        return out


class scale_by_stable_adamw(stable_adamw):
    """Float64 reference of :func:`gradtx.contrib.scale_by_stable_adamw`: the clipped Adam direction, per leaf.

    ``(m / (sqrt(v) + eps)) / max(1, RMS / clip_threshold)`` with the moments and RMS of :class:`stable_adamw` (no
    learning rate, no decay). ``out = ref.step(g, params=None)`` takes and returns ``{leaf path: float64 array}``.

    Args:
      b1: the first moment's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.99.
      eps: added to ``sqrt(v)``, squared the floor of ``v`` in the RMS, >= 0. Default 1e-6.
      clip_threshold: the RMS above which the step is scaled down, > 0. Default 1.0.
      mu_dtype: accepted and ignored (the reference is float64).
      nu_dtype: accepted and ignored.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_round2 as ref
      >>> r = ref.scale_by_stable_adamw(eps=0.0)
      >>> _ = r.step({"w": np.array([1.0, -2.0])})
      >>> print(np.round(r.step({"w": np.array([100.0, -200.0])})["w"], 4))
      [ 0.5311 -0.5311]
    """

    def __init__(self, b1=0.9, b2=0.99, eps=1e-6, clip_threshold=1.0, mu_dtype=None, *, nu_dtype=None):
        super().__init__(-1.0, b1, b2, eps, 0.0, clip_threshold=clip_threshold)


# ----------------------------------------------------------------------------------------------------
# Adam-atan2 (Everett et al. 2024, arXiv 2407.05872)
# ----------------------------------------------------------------------------------------------------


class adam_atan2:
    """Float64 reference of :func:`gradtx.contrib.adam_atan2`.

    With ``k`` the 1-based step::

        m = b1 m + (1 - b1) g,     v = b2 v + (1 - b2) g^2
        u = -lr (a atan2(m / (1 - b1^k), b sqrt(v / (1 - b2^k))) + wd mask * theta)

    ``u = ref.step(g, params=None)`` on 1-D float64 vectors (``params`` needed when ``weight_decay`` is not 0).

    Args:
      learning_rate: the step size, > 0: a float, or a callable ``count -> float`` evaluated at ``k - 1``.
      b1: the first moment's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      weight_decay: the decoupled weight decay, >= 0. Default 0.0.
      mask: a flat boolean vector (True: decayed), or None. Default None.
      mu_dtype: accepted and ignored (the reference is float64).
      a: the scale of the output, > 0. Default 1.27.
      b: the scale of the root of the second moment, > 0. Default 1.0.
      nu_dtype: accepted and ignored.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_round2 as ref
      >>> r = ref.adam_atan2(0.1, a=1.0)
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 6))
      [-0.07854  0.07854]
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, weight_decay=0.0, mask=None, mu_dtype=None, *, a=1.27,
                 b=1.0, nu_dtype=None):
        self.lr, self.b1, self.b2, self.a, self.b = learning_rate, float(b1), float(b2), float(a), float(b)
        self.wd, self.mask = float(weight_decay), mask
        self.m: Any = 0.0
        self.v: Any = 0.0
        self.k = 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.k)
        self.k += 1
        k = self.k
        self.m = self.b1 * self.m + (1.0 - self.b1) * g
        self.v = self.b2 * self.v + (1.0 - self.b2) * g * g
        d = self.a * np.arctan2(self.m / (1.0 - self.b1**k), self.b * np.sqrt(self.v / (1.0 - self.b2**k)))
        if self.wd:
            d = d + _decay(self.wd, _vec(params), self.mask)
        return -lr * d


class scale_by_adam_atan2(adam_atan2):
    """Float64 reference of :func:`gradtx.contrib.scale_by_adam_atan2`: ``a atan2(m_hat, b sqrt(v_hat))``.

    The moments of :class:`adam_atan2`, no learning rate and no decay. ``u = ref.step(g, params=None)`` on 1-D
    float64 vectors.

    Args:
      b1: the first moment's decay, in [0, 1). Default 0.9.
      b2: the second moment's decay, in [0, 1). Default 0.999.
      a: the scale of the output, > 0. Default 1.27.
      b: the scale of the root of the second moment, > 0. Default 1.0.
      mu_dtype: accepted and ignored (the reference is float64).
      nu_dtype: accepted and ignored.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_round2 as ref
      >>> r = ref.scale_by_adam_atan2(a=1.0)
      >>> print(np.round(r.step(np.array([3.0, 0.0])), 6))
      [0.785398 0.      ]
    """

    def __init__(self, b1=0.9, b2=0.999, a=1.27, b=1.0, mu_dtype=None, *, nu_dtype=None):
        super().__init__(-1.0, b1, b2, a=a, b=b)
