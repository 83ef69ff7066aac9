"""Float64 NumPy reference of SWATS (Keskar & Socher 2017, arXiv 1712.07628, Algorithm 1), written from the paper.

Same interface as ``gradtx.testing.reference``: ``swats(...).step(g)`` on the raveled float64 vector returns the
update (the learning rate is inside); ``k`` is the 1-based step; a callable learning rate is evaluated at the
0-based count. NumPy and the standard library only.
"""

import math

import numpy as np

__all__ = ["swats"]


class swats:
    """Float64 reference of :func:`gradtx.contrib.swats`: Adam that switches to SGD with a learned step size.

    Keskar & Socher 2017, "Improving Generalization Performance by Switching from Adam to SGD", arXiv 1712.07628,
    Algorithm 1, written from the paper (``k`` the 1-based step, ``lr`` evaluated at ``k - 1``). Before the switch::

        m = b1 m + (1 - b1) g;   a = b2 a + (1 - b2) g^2
        p = -lr sqrt(1 - b2^k) / (1 - b1^k) m / (sqrt(a) + eps);   u = p
        if <p, g> != 0:  gamma = <p, p> / -<p, g>;   lam = b2 lam + (1 - b2) gamma;   lam_hat = lam / (1 - b2^k)
          switch when k > 1, |lam_hat - gamma| < switch_tol and lam_hat > 0 (sgd_lr = lam_hat)

    After the switch: ``v = b1 v + g``, ``u = -(1 - b1) sgd_lr v``. The condition ``lam_hat > 0`` keeps the SGD
    rate positive (see gradtx's docs). ``u = ref.step(g, params=None)`` on 1-D float64 vectors returns ``u``.

    Args:
      learning_rate: Adam's step size: a float, or a callable ``count -> float`` of the 0-based count. Default 1e-3.
      b1: the first moment's (and SGD momentum's) decay, in [0, 1). Default 0.9.
      b2: the second moment's (and ``lam``'s) decay, in [0, 1). Default 0.999.
      eps: added outside the root, > 0. Default 1e-9.
      switch_tol: the tolerance of the switching test, > 0. Default 1e-9.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_swats as ref
      >>> r = ref.swats(0.1)
      >>> print(np.round(r.step(np.array([1.0, -2.0])), 4), r.switched)
      [-0.1  0.1] False
    """

    def __init__(self, learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-9, switch_tol=1e-9):
        self.lr, self.b1, self.b2 = learning_rate, float(b1), float(b2)
        self.eps, self.tol = float(eps), float(switch_tol)
        self.m = self.a = self.v = None
        self.lam = 0.0
        self.sgd_lr = 0.0
        self.switched = False
        self.k = 0

    def step(self, g, params=None):
        g = np.array(g, dtype=np.float64, copy=True)
        zeros = np.zeros_like(g)
        m = zeros if self.m is None else self.m
        a = zeros if self.a is None else self.a
        v = zeros if self.v is None else self.v
        lr = float(self.lr(self.k)) if callable(self.lr) else float(self.lr)
        self.k += 1
        k = self.k
        if self.switched:
            self.v = self.b1 * v + g
            return -(1 - self.b1) * self.sgd_lr * self.v
        self.m = m = self.b1 * m + (1 - self.b1) * g
        self.a = a = self.b2 * a + (1 - self.b2) * g * g
        self.v = v
        p = -lr * math.sqrt(1 - self.b2**k) / (1 - self.b1**k) * m / (np.sqrt(a) + self.eps)
        pg = float(p @ g)
        if pg != 0:
            gamma = float(p @ p) / -pg
            self.lam = self.b2 * self.lam + (1 - self.b2) * gamma
            lam_hat = self.lam / (1 - self.b2**k)
            if k > 1 and abs(lam_hat - gamma) < self.tol and lam_hat > 0:  # a positive rate (see gradtx's docs)
                self.switched = True
                self.sgd_lr = lam_hat
        return p
