"""Float64 NumPy reference for Shampoo (``gradtx.contrib._shampoo``), written from the papers.

Gupta, Koren & Singer 2018, "Shampoo: Preconditioned Stochastic Tensor Optimization", arXiv 1802.09568
(Algorithm 1: ``L = L + G G^T``, ``R = R + G^T G``, ``W = W - lr L^(-1/4) G R^(-1/4)``), in the practical form of
Anil, Gupta, Koren, Regan & Singer 2020, "Scalable Second Order Optimization for Deep Learning", arXiv 2002.09018
(exponential averages, blocks of large dimensions, grafting the step's norm from a diagonal optimizer, inverse
roots computed every few steps, momentum). The inverse fourth roots are taken by an eigendecomposition
(``numpy.linalg.eigh``) instead of gradtx's Newton iteration.

Interface: per leaf (the registry entries set ``per_leaf=True``): ``out = ref.step(g, params=None)`` where ``g``
and ``params`` are ``{leaf path: float64 array}`` dicts and ``out`` is one too. Each class keeps its own state
and never mutates its inputs. ``k`` is the 1-based number of the current step; a callable learning rate is
evaluated at ``k - 1``. This module imports only numpy and shares no code with gradtx.
"""

import numpy as np

__all__ = ["inverse_fourth_root", "scale_by_shampoo", "shampoo"]


def inverse_fourth_root(a, matrix_epsilon):
    """``(A + matrix_epsilon * max(lambda_max(A), 1e-16) I)^(-1/4)`` of a symmetric PSD matrix, by ``eigh``.

    Args:
      a: a symmetric positive semi-definite ``(n, n)`` array.
      matrix_epsilon: the ridge relative to the largest eigenvalue, ``>= 0``.

    Returns:
      The ``(n, n)`` float64 inverse fourth root (eigenvalues below 0 from roundoff are taken as 0); the identity
      for ``A = 0`` (a statistic that has seen no gradient is not inverted).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_shampoo as rs
      >>> print(np.round(rs.inverse_fourth_root(np.diag([16.0, 1.0]), 0.0), 4))
      [[0.5 0. ]
       [0.  1. ]]
    """
    a = np.asarray(a, np.float64)
    if not np.any(a):
        return np.eye(len(a))
    w, v = np.linalg.eigh((a + a.T) / 2)
    ridge = matrix_epsilon * max(float(np.max(w)), 1e-16)
    return (v * (np.maximum(w, 0.0) + ridge) ** -0.25) @ v.T


class scale_by_shampoo:
    """Float64 reference of ``gradtx.contrib.scale_by_shampoo``, per leaf.

    A leaf of rank >= 2 is the matrix ``G`` of shape ``(prod(shape[:-1]), shape[-1])``, cut into blocks of at most
    ``block_size`` rows and columns. At step ``k`` with ``w = 1 - b2`` (``w = 1`` and no decay correction when
    ``b2 = 1``), ``c = 1 - b2^k`` (1 when ``b2 = 1``), the graft direction of the whole leaf::

        adam:     V = b2 V + w g^2;  D = g / (sqrt(V / c) + diagonal_epsilon)
        rmsprop:  V = b2 V + w g^2;  D = g / (sqrt(V) + diagonal_epsilon)
        sgd, none:  D = g

    per block ``G_B`` of a matrix: ``L = b2 L + w G_B G_B^T``, ``R = b2 R + w G_B^T G_B``; when ``k >= start`` and
    ``(k - start) % compute_steps == 0``: ``P_L = inverse_fourth_root(L / c)``, ``P_R`` likewise (identity until
    then); for ``k >= start``: ``S = P_L G_B P_R``, ``U_B = S ||D_B|| / ||S||`` (``S`` itself for ``"none"``;
    0 if ``S = 0``), else ``U_B = D_B``. Vectors and scalars: ``U = D``. Then ``M = b1 M + (1 - b1) U`` and
    ``out = M / (1 - b1^k)``.

    Args:
      b1: the momentum's decay, in [0, 1). Default 0.9.
      b2: the statistics' decay, in [0, 1] (1: sums). Default 0.999.
      diagonal_epsilon: added to the graft's root, >= 0. Default 1e-8.
      matrix_epsilon: the statistics' ridge relative to their largest eigenvalue, >= 0. Default 1e-6.
      block_size: the longest side of a block, >= 1. Default 128.
      graft_type: "adam", "rmsprop", "sgd" or "none". Default "adam".
      start_preconditioning_step: the first step using the preconditioner, >= 1. Default 1.
      preconditioning_compute_steps: the steps between root computations, >= 1. Default 1.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_shampoo as rs
      >>> r = rs.scale_by_shampoo(b1=0.0, graft_type="sgd")
      >>> print(np.round(r.step({"w": np.array([[3.0, 0.0], [0.0, 1.0]])})["w"], 4))
      [[2.2361 0.    ]
       [0.     2.2361]]
    """

    def __init__(self, b1=0.9, b2=0.999, diagonal_epsilon=1e-8, matrix_epsilon=1e-6, block_size=128,
                 graft_type="adam", start_preconditioning_step=1, preconditioning_compute_steps=1):
        self.b1, self.b2 = float(b1), float(b2)
        self.eps_d, self.eps_m = float(diagonal_epsilon), float(matrix_epsilon)
        self.bs, self.graft = int(block_size), graft_type
        self.start, self.every = int(start_preconditioning_step), int(preconditioning_compute_steps)
        self.leaves, self.k = {}, 0

    def _blocks(self, shape):
        if len(shape) < 2 or 0 in shape:
            return []
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        return [(slice(r, min(r + self.bs, rows)), slice(c, min(c + self.bs, cols)))
                for r in range(0, rows, self.bs) for c in range(0, cols, self.bs)]

    def leaf(self, path, g, k):
        g = np.array(g, dtype=np.float64)
        blocks = self._blocks(g.shape)
        st = self.leaves.get(path)
        if st is None:
            st = {"m": np.zeros_like(g), "v": np.zeros_like(g),
                  "L": [np.zeros((b[0].stop - b[0].start,) * 2) for b in blocks],
                  "R": [np.zeros((b[1].stop - b[1].start,) * 2) for b in blocks]}
            st["PL"] = [np.eye(len(x)) for x in st["L"]]
            st["PR"] = [np.eye(len(x)) for x in st["R"]]
            self.leaves[path] = st
        summed = self.b2 == 1.0
        w = 1.0 if summed else 1.0 - self.b2
        c = 1.0 if summed else 1.0 - self.b2**k
        if self.graft in ("adam", "rmsprop"):
            st["v"] = self.b2 * st["v"] + w * g**2
            denom = np.sqrt(st["v"] / c if self.graft == "adam" else st["v"]) + self.eps_d
            d = g / denom
        else:
            d = g
        u = d
        if blocks:
            gm, dm = g.reshape(-1, g.shape[-1]), d.reshape(-1, g.shape[-1])
            um = np.zeros_like(gm)
            refresh = k >= self.start and (k - self.start) % self.every == 0
            for i, (rs, cs) in enumerate(blocks):
                gb = gm[rs, cs]
                st["L"][i] = self.b2 * st["L"][i] + w * gb @ gb.T
                st["R"][i] = self.b2 * st["R"][i] + w * gb.T @ gb
                if refresh:
                    st["PL"][i] = inverse_fourth_root(st["L"][i] / c, self.eps_m)
                    st["PR"][i] = inverse_fourth_root(st["R"][i] / c, self.eps_m)
                if k >= self.start:
                    s = st["PL"][i] @ gb @ st["PR"][i]
                    if self.graft != "none":
                        s_norm = np.linalg.norm(s)
                        s = s * (np.linalg.norm(dm[rs, cs]) / s_norm) if s_norm > 0 else np.zeros_like(s)
                    um[rs, cs] = s
                else:
                    um[rs, cs] = dm[rs, cs]
            u = um.reshape(g.shape)
        st["m"] = self.b1 * st["m"] + (1 - self.b1) * u
        return st["m"] / (1 - self.b1**k)

    def step(self, g, params=None):
        self.k += 1
        return {p: self.leaf(p, v, self.k) for p, v in g.items()}


class shampoo:
    """Float64 reference of ``gradtx.contrib.shampoo``: ``u = -lr (scale_by_shampoo(g) + weight_decay p)``.

    Shampoo (Gupta et al. 2018, arXiv 1802.09568; Anil et al. 2020, arXiv 2002.09018) with decoupled weight
    decay; see :class:`scale_by_shampoo`. ``out = ref.step(g, params=None)`` takes and returns
    ``{leaf path: float64 array}`` dicts; the decay needs ``params``.

    Args:
      learning_rate: a float, or a callable ``count -> float`` evaluated at the 0-based count ``k - 1``.
        Default 1e-3.
      b1: the momentum's decay, in [0, 1). Default 0.9.
      b2: the statistics' decay, in [0, 1]. Default 0.999.
      diagonal_epsilon: added to the graft's root, >= 0. Default 1e-8.
      matrix_epsilon: the statistics' relative ridge, >= 0. Default 1e-6.
      weight_decay: the decoupled weight decay, >= 0. Default 0.0.
      mask: accepted and ignored (the decay applies to every leaf). Default None.
      block_size: the longest side of a block, >= 1. Default 128.
      graft_type: "adam", "rmsprop", "sgd" or "none". Default "adam".
      start_preconditioning_step: the first step using the preconditioner, >= 1. Default 1.
      preconditioning_compute_steps: the steps between root computations, >= 1. Default 1.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import contrib_shampoo as rs
      >>> r = rs.shampoo(0.1, b1=0.0, graft_type="sgd")
      >>> print(r.step({"b": np.array([1.0, -2.0])})["b"])
      [-0.1  0.2]
    """

    def __init__(self, learning_rate=1e-3, b1=0.9, b2=0.999, diagonal_epsilon=1e-8, matrix_epsilon=1e-6,
                 weight_decay=0.0, mask=None, *, block_size=128, graft_type="adam", start_preconditioning_step=1,
                 preconditioning_compute_steps=1):
        self.inner = scale_by_shampoo(b1, b2, diagonal_epsilon, matrix_epsilon, block_size, graft_type,
                                      start_preconditioning_step, preconditioning_compute_steps)
        self.lr, self.wd = learning_rate, float(weight_decay)

    def step(self, g, params=None):
        u = self.inner.step(g)
        count = self.inner.k - 1
        lr = float(self.lr(count)) if callable(self.lr) else float(self.lr)
        return {p: -lr * (v + (self.wd * np.asarray(params[p], np.float64) if self.wd and params else 0.0))
                for p, v in u.items()}

