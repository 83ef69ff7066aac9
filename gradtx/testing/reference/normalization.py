"""Float64 NumPy references for the normalisation family (gradtx.transforms.normalization, .noise) and the
trust-ratio optimizers (gradtx.optimizers.trust_ratio): slow, obviously-correct, written from the papers.

Two interfaces, as in ``gradtx.testing.reference``:

- *per leaf* (norms per block, per unit, per layer): ``u = ref.step(g, params=None)`` where ``g`` and
  ``params`` are dicts ``{leaf path: float64 array}`` with the leaves' shapes and ``u`` is such a dict;
  marked ``PER_LEAF = True``. Masks are dicts ``{leaf path: bool}`` (or a single bool for every leaf).
- *flat* (elementwise or whole-tree maths): ``g`` and ``params`` are 1-D float64 vectors (the raveled tree).

Conventions: k is the 1-based number of the current update; schedules are callables of the 0-based count
(k - 1). ``||x||`` is the l2 norm of a whole leaf. Inputs are never mutated. This module imports only
NumPy and the standard library and shares no code with gradtx; the optimizers (lamb, lars, fromage) are
written monolithically, not from the blocks below.

``add_noise`` and ``noisy_sgd`` have no reference: their random numbers come from JAX's PRNG.
"""

import math

import numpy as np

__all__ = [
    "unitwise_norm", "per_example_global_norm_clip", "per_example_layer_norm_clip", "clip_by_block_rms",
    "adaptive_grad_clip", "centralize", "scale_by_param_block_norm", "scale_by_param_block_rms",
    "scale_by_trust_ratio", "scale_by_distance_over_gradients", "normalize_by_update_norm",
    "keep_params_nonnegative", "zero_nans", "apply_every", "lamb", "lars", "fromage",
]


def _vec(x):
    """A float64 copy of ``x``."""
    return np.array(x, dtype=np.float64, copy=True)


def _value(v, count):
    """A float or a callable count -> float, evaluated at the 0-based ``count``."""
    return float(v(count)) if callable(v) else float(v)  # type: ignore[arg-type]


def _norm(x):
    return math.sqrt(float(np.sum(np.asarray(x, np.float64) ** 2)))


def _rms(x):
    return math.sqrt(float(np.mean(np.asarray(x, np.float64) ** 2))) if np.size(x) else 0.0


def _need(params):
    """The params dict of a per-leaf block that reads them."""
    if params is None:
        raise ValueError("this reference needs params")
    return params


def _selected(mask, path):
    """Whether ``path`` is selected by a mask: None or a bool for all leaves, or a dict {path: bool}."""
    if mask is None:
        return True
    if isinstance(mask, (bool, np.bool_)):
        return bool(mask)
    return bool(mask[path])


# ----------------------------------------------------------------------------------------------------
# Functions
# ----------------------------------------------------------------------------------------------------


def unitwise_norm(x, axis=None):
    """Float64 reference of :func:`gradtx.unitwise_norm`: per-unit l2 norms, broadcast to the shape.

    With ``axis`` None the axes summed over follow the layout of common kernels: the whole array when
    ``x.squeeze()`` has rank <= 1; axis 0 for rank 2-3 (linear (in, out) and multi-head kernels); (0, 1, 2) for
    rank 4 (HWIO convolutions); (0, 1, 2, 3) for rank 5 (DHWIO).

    Args:
      x: an array-like (copied to float64).
      axis: None for the rule above, or an int / tuple of ints: the axes summed over. Default None.

    Returns:
      A new float64 array of ``x``'s shape holding, at each element, the l2 norm of its unit.

    Raises:
      ValueError: ``unitwise_norm: rank N needs an axis`` for ``axis=None`` and a rank above 5.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.unitwise_norm(np.array([[3.0, 0.0], [4.0, 1.0]])), 4))
      [[5. 1.]
       [5. 1.]]
    """
    x = _vec(x)
    if axis is None:
        if np.squeeze(x).ndim <= 1:
            axis = None
        elif x.ndim in (2, 3):
            axis = (0,)
        elif x.ndim == 4:
            axis = (0, 1, 2)
        elif x.ndim == 5:
            axis = (0, 1, 2, 3)
        else:
            raise ValueError(f"unitwise_norm: rank {x.ndim} needs an axis")
    return np.broadcast_to(np.sqrt(np.sum(x * x, axis=axis, keepdims=True)), x.shape).copy()


def per_example_global_norm_clip(grads, l2_norm_clip):
    """Float64 reference of :func:`gradtx.per_example_global_norm_clip`: DP-SGD clipping.

    Abadi et al. 2016, "Deep Learning with Differential Privacy", CCS (arXiv 1607.00133): each example's
    gradient (across all arrays) is clipped to norm C, then the clipped gradients are summed::

        n_i = sqrt(sum over arrays of ||g[i]||^2);   m_i = min(1, C / n_i)  (1 when n_i = 0)
        sums = [sum_i m_i g[i] for each array];   clipped = #{i: m_i < 1}

    Args:
      grads: a list of arrays, each [B, ...] with the batch of per-example gradients first.
      l2_norm_clip: C, the largest per-example norm, > 0.

    Returns:
      The pair ``(sums, clipped)``: the list of summed clipped gradients (float64 arrays without the batch
      axis) and the number of examples that were clipped (an int).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> grads = [np.array([[3.0, 4.0], [0.3, 0.4]])]
      >>> sums, clipped = ref.per_example_global_norm_clip(grads, 1.0)
      >>> print(np.round(sums[0], 4), clipped)
      [0.9 1.2] 1
    """
    grads = [_vec(g) for g in grads]
    batch = grads[0].shape[0]
    sums = [np.zeros(g.shape[1:]) for g in grads]
    clipped = 0
    for i in range(batch):
        n = math.sqrt(sum(float(np.sum(g[i] ** 2)) for g in grads))
        if n == 0.0:
            m = 1.0
        else:
            m = min(1.0, float(l2_norm_clip) / n)
        clipped += m < 1.0
        for s, g in zip(sums, grads):
            s += m * g[i]
    return sums, int(clipped)


def per_example_layer_norm_clip(grads, global_l2_norm_clip, uniform=True):
    """Float64 reference of :func:`gradtx.per_example_layer_norm_clip`: per-layer DP clipping.

    McMahan, Ramage, Talwar & Zhang 2018, "Learning Differentially Private Recurrent Language Models", ICLR
    (arXiv 1710.06963): array j of K is clipped per example (as in :func:`per_example_global_norm_clip`) to::

        C_j = C / sqrt(K)            if uniform
        C_j = C sqrt(D_j / D)        otherwise   (D_j its per-example size, D the total)

    Args:
      grads: a list of K arrays, each [B, ...] with the batch of per-example gradients first.
      global_l2_norm_clip: C, the overall per-example norm budget, > 0.
      uniform: whether every array gets the same share of C. Default True.

    Returns:
      The pair ``(sums, counts)``: the list of summed clipped gradients per array (float64, without the batch
      axis) and the list of the numbers of clipped examples per array (ints).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> grads = [np.array([[3.0, 4.0], [0.3, 0.4]]), np.array([[1.0], [0.1]])]
      >>> sums, counts = ref.per_example_layer_norm_clip(grads, 2.0)
      >>> print(np.round(sums[0], 4), np.round(sums[1], 4), counts)
      [1.1485 1.5314] [1.1] [1, 0]
    """
    grads = [_vec(g) for g in grads]
    k = len(grads)
    sizes = [int(np.prod(g.shape[1:])) for g in grads]
    total = sum(sizes)
    sums, counts = [], []
    for g, d in zip(grads, sizes):
        c = global_l2_norm_clip / math.sqrt(k) if uniform else global_l2_norm_clip * math.sqrt(d / total)
        s, n = per_example_global_norm_clip([g], c)
        sums.append(s[0])
        counts.append(n)
    return sums, counts


# ----------------------------------------------------------------------------------------------------
# Blocks, per leaf
# ----------------------------------------------------------------------------------------------------


class clip_by_block_rms:
    """Float64 reference of :class:`gradtx.clip_by_block_rms`: clips each leaf's RMS.

    Per leaf::

        u = g / max(1, rms(g) / threshold)

    Per leaf: ``step(g, params=None)`` takes a dict ``{leaf path: float64 array}`` (the leaves keep their
    shapes; the paths are only keys) and returns such a dict of new float64 arrays.

    Args:
      threshold: the largest root mean square of a leaf, > 0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> g = {"w": np.array([[3.0, 0.0], [4.0, 1.0]]), "b": np.array([1.0, -1.0])}
      >>> p = {"w": np.array([[1.0, 2.0], [0.0, 2.0]]), "b": np.array([0.5, 0.5])}
      >>> u = ref.clip_by_block_rms(1.0).step(g)
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [[1.1767 0.    ]
       [1.5689 0.3922]] [ 1. -1.]
    """

    PER_LEAF = True

    def __init__(self, threshold):
        self.threshold = float(threshold)

    def step(self, g, params=None):
        return {k: _vec(v) / max(1.0, _rms(v) / self.threshold) for k, v in g.items()}


class adaptive_grad_clip:
    """Float64 reference of :class:`gradtx.adaptive_grad_clip`: Adaptive Gradient Clipping (AGC).

    Brock, De, Smith & Simonyan 2021, "High-Performance Large-Scale Image Recognition Without Normalization",
    ICML (arXiv 2102.06171), eq. 3, per unit (:func:`unitwise_norm`)::

        W* = max(||W||_unit, eps)
        u = g   if ||g||_unit < clipping W*   else   g clipping W* / max(||g||_unit, 1e-6)

    Per leaf: ``step(g, params)`` takes dicts ``{leaf path: float64 array}`` of the gradients and the
    parameters (the leaves keep their shapes; the paths are only keys) and returns such a dict of new float64
    arrays; the state, if any, is kept per path.

    Args:
      clipping: lambda, the largest ratio of gradient to parameter norm, > 0.
      eps: the floor of the parameter norm, >= 0. Default 1e-3.
      axis: the axes of a unit (see :func:`unitwise_norm`), or None for its default rule. Default None.

    Raises:
      ValueError: ``this reference needs params``, from ``step`` when ``params`` is None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> g = {"w": np.array([[3.0, 0.0], [4.0, 1.0]]), "b": np.array([1.0, -1.0])}
      >>> p = {"w": np.array([[1.0, 2.0], [0.0, 2.0]]), "b": np.array([0.5, 0.5])}
      >>> u = ref.adaptive_grad_clip(0.5).step(g, p)
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [[0.3 0. ]
       [0.4 1. ]] [ 0.25 -0.25]
    """

    PER_LEAF = True

    def __init__(self, clipping, eps=1e-3, axis=None):
        self.clipping, self.eps, self.axis = float(clipping), float(eps), axis

    def step(self, g, params=None):
        params = _need(params)
        out = {}
        for k, v in g.items():
            v = _vec(v)
            gn = unitwise_norm(v, self.axis)
            limit = self.clipping * np.maximum(unitwise_norm(params[k], self.axis), self.eps)
            out[k] = np.where(gn < limit, v, v * limit / np.maximum(gn, 1e-6))
        return out


class centralize:
    """Float64 reference of :class:`gradtx.centralize`: Gradient Centralization.

    Yong, Huang, Hua & Zhang 2020, "Gradient Centralization: A New Optimization Technique for Deep Neural
    Networks", ECCV (arXiv 2004.01461), with the unit axis first: leaves of rank >= 2 lose their mean over axes
    1 .. ndim - 1; leaves of rank < 2 pass unchanged.

    Per leaf: ``step(g, params=None)`` takes a dict ``{leaf path: float64 array}`` (the leaves keep their
    shapes; the paths are only keys) and returns such a dict of new float64 arrays.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> g = {"w": np.array([[3.0, 0.0], [4.0, 1.0]]), "b": np.array([1.0, -1.0])}
      >>> p = {"w": np.array([[1.0, 2.0], [0.0, 2.0]]), "b": np.array([0.5, 0.5])}
      >>> u = ref.centralize().step(g)
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [[ 1.5 -1.5]
       [ 1.5 -1.5]] [ 1. -1.]
    """

    PER_LEAF = True

    def step(self, g, params=None):
        out = {}
        for k, v in g.items():
            v = _vec(v)
            out[k] = v - v.mean(axis=tuple(range(1, v.ndim)), keepdims=True) if v.ndim > 1 else v
        return out


class scale_by_param_block_norm:
    """Float64 reference of :class:`gradtx.scale_by_param_block_norm`: u = g max(||p||, min_scale).

    Per leaf, ||p|| the l2 norm of the whole parameter leaf (the relative step of Adafactor and LAMB-style
    methods).

    Per leaf: ``step(g, params)`` takes dicts ``{leaf path: float64 array}`` of the gradients and the
    parameters (the leaves keep their shapes; the paths are only keys) and returns such a dict of new float64
    arrays; the state, if any, is kept per path.

    Args:
      min_scale: the floor of the parameter norm, >= 0. Default 1e-3.

    Raises:
      ValueError: ``this reference needs params``, from ``step`` when ``params`` is None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> g = {"w": np.array([[3.0, 0.0], [4.0, 1.0]]), "b": np.array([1.0, -1.0])}
      >>> p = {"w": np.array([[1.0, 2.0], [0.0, 2.0]]), "b": np.array([0.5, 0.5])}
      >>> u = ref.scale_by_param_block_norm().step(g, p)
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [[ 9.  0.]
       [12.  3.]] [ 0.7071 -0.7071]
    """

    PER_LEAF = True

    def __init__(self, min_scale=1e-3):
        self.min_scale = float(min_scale)

    def step(self, g, params=None):
        params = _need(params)
        return {k: _vec(v) * max(_norm(params[k]), self.min_scale) for k, v in g.items()}


class scale_by_param_block_rms:
    """Float64 reference of :class:`gradtx.scale_by_param_block_rms`: u = g max(rms(p), min_scale).

    Per leaf, rms(p) the root mean square of the whole parameter leaf (Adafactor's relative step, Shazeer &
    Stern 2018).

    Per leaf: ``step(g, params)`` takes dicts ``{leaf path: float64 array}`` of the gradients and the
    parameters (the leaves keep their shapes; the paths are only keys) and returns such a dict of new float64
    arrays; the state, if any, is kept per path.

    Args:
      min_scale: the floor of the parameter RMS, >= 0. Default 1e-3.

    Raises:
      ValueError: ``this reference needs params``, from ``step`` when ``params`` is None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> g = {"w": np.array([[3.0, 0.0], [4.0, 1.0]]), "b": np.array([1.0, -1.0])}
      >>> p = {"w": np.array([[1.0, 2.0], [0.0, 2.0]]), "b": np.array([0.5, 0.5])}
      >>> u = ref.scale_by_param_block_rms().step(g, p)
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [[4.5 0. ]
       [6.  1.5]] [ 0.5 -0.5]
    """

    PER_LEAF = True

    def __init__(self, min_scale=1e-3):
        self.min_scale = float(min_scale)

    def step(self, g, params=None):
        params = _need(params)
        return {k: _vec(v) * max(_rms(params[k]), self.min_scale) for k, v in g.items()}


def _trust_ratio(p_norm, u_norm, coefficient=1.0, eps=0.0):
    """coefficient p_norm / (u_norm + eps), or 1 when either norm is 0."""
    if p_norm == 0.0 or u_norm == 0.0:
        return 1.0
    return coefficient * p_norm / (u_norm + eps)


class scale_by_trust_ratio:
    """Float64 reference of :class:`gradtx.scale_by_trust_ratio`: the layer-wise trust ratio.

    You, Gitman & Ginsburg 2017, "Large Batch Training of Convolutional Networks" (LARS, arXiv 1708.03888), per
    leaf::

        pn = max(||p||, min_norm);   un = max(||g||, min_norm)
        u = g trust_coefficient pn / (un + eps),   or u = g when pn or un is 0

    Per leaf: ``step(g, params)`` takes dicts ``{leaf path: float64 array}`` of the gradients and the
    parameters (the leaves keep their shapes; the paths are only keys) and returns such a dict of new float64
    arrays; the state, if any, is kept per path.

    Args:
      min_norm: the floor of both norms, >= 0. Default 0.0.
      trust_coefficient: the factor of the ratio, > 0. Default 1.0.
      eps: added to the update norm, >= 0. Default 0.0.

    Raises:
      ValueError: ``this reference needs params``, from ``step`` when ``params`` is None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> g = {"w": np.array([[3.0, 0.0], [4.0, 1.0]]), "b": np.array([1.0, -1.0])}
      >>> p = {"w": np.array([[1.0, 2.0], [0.0, 2.0]]), "b": np.array([0.5, 0.5])}
      >>> u = ref.scale_by_trust_ratio().step(g, p)
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [[1.765  0.    ]
       [2.3534 0.5883]] [ 0.5 -0.5]
    """

    PER_LEAF = True

    def __init__(self, min_norm=0.0, trust_coefficient=1.0, eps=0.0):
        self.min_norm, self.coef, self.eps = float(min_norm), float(trust_coefficient), float(eps)

    def step(self, g, params=None):
        params = _need(params)
        out = {}
        for k, v in g.items():
            pn = max(_norm(params[k]), self.min_norm)
            un = max(_norm(v), self.min_norm)
            out[k] = _vec(v) * _trust_ratio(pn, un, self.coef, self.eps)
        return out


class scale_by_distance_over_gradients:
    """Float64 reference of :class:`gradtx.scale_by_distance_over_gradients`: layer-wise DoG.

    Ivgi, Hinder & Carmon 2023, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size Schedule", ICML
    (arXiv 2302.12022), Algorithm 1 per layer ("LDoG")::

        x_0 = the initial params (stored rounded to param_dtype unless it is None)
        rbar_0 = reps_rel (1 + ||x_0||);   rbar_k = max(rbar_{k-1}, ||x_k - x_0||);   G_k = G_{k-1} + ||g_k||^2
        u = global_scale rbar_k / sqrt(G_k + eps) g_k

    ``init(params)`` records x_0 (the params the transformation was initialised with) and returns the reference;
    without it the params of the first ``step`` are used.

    Per leaf: ``step(g, params)`` takes dicts ``{leaf path: float64 array}`` of the gradients and the
    parameters (the leaves keep their shapes; the paths are only keys) and returns such a dict of new float64
    arrays; the state, if any, is kept per path.

    Args:
      reps_rel: the relative initial distance estimate, > 0. Default 1e-6.
      eps: added under the root, >= 0. Default 1e-8.
      param_dtype: the dtype x_0 is stored in (a NumPy dtype), or None for float64. Default ``np.float32``.
      global_scale: the factor of every update. Default 1.0.

    Raises:
      ValueError: ``this reference needs params``, from ``step`` when ``params`` is None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.scale_by_distance_over_gradients(reps_rel=0.5).init({"w": np.array([3.0, 4.0])})
      >>> u = tx.step({"w": np.array([1.0, 0.0])}, {"w": np.array([3.0, 4.0])})
      >>> print(np.round(u["w"], 4))
      [3. 0.]
      >>> u = tx.step({"w": np.array([0.0, 1.0])}, {"w": np.array([0.0, 0.0])})
      >>> print(np.round(u["w"], 4))
      [0.     3.5355]
    """

    PER_LEAF = True

    def __init__(self, reps_rel=1e-6, eps=1e-8, param_dtype=np.float32, global_scale=1.0):
        self.reps_rel, self.eps, self.global_scale = float(reps_rel), float(eps), float(global_scale)
        self.param_dtype = param_dtype
        self.x0 = self.rbar = self.G = None

    def init(self, params):
        store = (lambda x: x) if self.param_dtype is None else (lambda x: x.astype(self.param_dtype))
        self.x0 = {k: store(_vec(v)).astype(np.float64) for k, v in params.items()}
        self.rbar = {k: self.reps_rel * (1.0 + _norm(v)) for k, v in params.items()}
        self.G = {k: 0.0 for k in params}
        return self

    def step(self, g, params=None):
        params = _need(params)
        if self.x0 is None:
            self.init(params)
        assert self.x0 is not None and self.rbar is not None and self.G is not None
        out = {}
        for k, v in g.items():
            self.rbar[k] = max(self.rbar[k], _norm(_vec(params[k]) - self.x0[k]))
            self.G[k] += _norm(v) ** 2
            out[k] = self.global_scale * self.rbar[k] / math.sqrt(self.G[k] + self.eps) * _vec(v)
        return out


# ----------------------------------------------------------------------------------------------------
# Blocks, flat
# ----------------------------------------------------------------------------------------------------


class normalize_by_update_norm:
    """Float64 reference of :class:`gradtx.normalize_by_update_norm`: u = scale_factor g / (||g|| + eps).

    ||g|| is the l2 norm of the whole (raveled) gradient.

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      scale_factor: the norm of the update (up to eps). Default 1.0.
      eps: added to the norm, >= 0. Default 1e-6.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.normalize_by_update_norm(eps=0.0)
      >>> print(np.round(ref.run(tx, [[3.0, 4.0], [0.0, -2.0]]), 4))
      [[ 0.6  0.8]
       [ 0.  -1. ]]
    """

    def __init__(self, scale_factor=1.0, eps=1e-6):
        self.scale_factor, self.eps = float(scale_factor), float(eps)

    def step(self, g, params=None):
        g = _vec(g)
        return self.scale_factor * g / (_norm(g) + self.eps)


class keep_params_nonnegative:
    """Float64 reference of :class:`gradtx.keep_params_nonnegative`: stops parameters at 0.

    u = -p where p + g < 0 (the parameter lands exactly on 0), else u = g.

    Call ``step(g, params)`` once per update with the gradient ``g`` and the parameters ``params`` (1-D
    float64 vectors, the whole pytree raveled; ``params`` is required: without it the update is NaN); it returns
    the update as a new float64 array and keeps the state inside the object.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.keep_params_nonnegative(), [[-2.0, -0.5], [1.0, -3.0]], params=[1.0, 1.0]), 4))
      [[-1.  -0.5]
       [ 1.  -1. ]]
    """

    def step(self, g, params=None):
        g, p = _vec(g), _vec(params)
        return np.where(p + g < 0.0, -p, g)


class zero_nans:
    """Float64 reference of :class:`gradtx.zero_nans`: u = 0 where g is NaN, else g.

    The attribute ``found_nan`` records whether the last gradient had a NaN.

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.zero_nans()
      >>> print(tx.step(np.array([1.0, np.nan])), tx.found_nan)
      [1. 0.] True
      >>> print(tx.step(np.array([2.0, 3.0])), tx.found_nan)
      [2. 3.] False
    """

    def __init__(self):
        self.found_nan = False

    def step(self, g, params=None):
        g = _vec(g)
        self.found_nan = bool(np.any(np.isnan(g)))
        return np.where(np.isnan(g), 0.0, g)


class apply_every:
    """Float64 reference of :class:`gradtx.apply_every`: the sum of k gradients every k steps.

    On steps k, 2k, ... (1-based) the update is the sum of the last k gradients; on the other steps it is 0.

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      k: the number of gradients summed per emitted update, >= 1. Default 1.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.apply_every(2), [[1.0, -2.0], [3.0, 4.0], [1.0, 1.0]]), 4))
      [[0. 0.]
       [4. 2.]
       [0. 0.]]
    """

    def __init__(self, k=1):
        self.k, self.n, self.acc = int(k), 0, None

    def step(self, g, params=None):
        g = _vec(g)
        self.acc = g if self.n % self.k == 0 or self.acc is None else self.acc + g
        self.n += 1
        return self.acc.copy() if self.n % self.k == 0 else np.zeros_like(g)


# ----------------------------------------------------------------------------------------------------
# Optimizers, per leaf (monolithic; u is what gets added to the params)
# ----------------------------------------------------------------------------------------------------


class lamb:
    """Float64 reference of :func:`gradtx.lamb`: LAMB, written monolithically.

    You et al. 2020, "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes", ICLR (arXiv
    1904.00962), Algorithm 2, per layer l::

        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;   m_hat = m / (1 - b1**k);   v_hat = v / (1 - b2**k)
        r = m_hat / (sqrt(v_hat + eps_root) + eps) + wd_t p     (the decay only where mask selects)
        u = -lr_t (||p|| / ||r||) r                             (ratio 1 where ||p|| or ||r|| is 0)

    Per leaf: ``step(g, params)`` takes dicts ``{leaf path: float64 array}`` of the gradients and the
    parameters (the leaves keep their shapes; the paths are only keys) and returns such a dict of new float64
    arrays; the state, if any, is kept per path.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the root of v_hat, >= 0. Default 1e-6.
      eps_root: added to v_hat under the root, >= 0. Default 0.0.
      weight_decay: the decay coefficient wd_t, >= 0: a float, or a callable ``count -> float`` evaluated at
        the 0-based count k - 1. Default 0.0.
      mask: None (decay everywhere), a bool for every leaf, or a dict ``{path: bool}``. Default None.

    Raises:
      ValueError: ``this reference needs params``, from ``step`` when ``params`` is None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> g = {"w": np.array([[3.0, 0.0], [4.0, 1.0]]), "b": np.array([1.0, -1.0])}
      >>> p = {"w": np.array([[1.0, 2.0], [0.0, 2.0]]), "b": np.array([0.5, 0.5])}
      >>> opt = ref.lamb(0.1, weight_decay=0.1)
      >>> u = opt.step(g, p)
      >>> u = opt.step(g, p)
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [[-0.1718 -0.0312]
       [-0.1562 -0.1874]] [-0.0524  0.0474]
    """

    PER_LEAF = True

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-6, eps_root=0.0, weight_decay=0.0, mask=None):
        self.lr, self.b1, self.b2 = learning_rate, float(b1), float(b2)
        self.eps, self.eps_root, self.wd, self.mask = float(eps), float(eps_root), weight_decay, mask
        self.m, self.v, self.k = {}, {}, 0

    def step(self, g, params=None):
        params = _need(params)
        lr, wd = _value(self.lr, self.k), _value(self.wd, self.k)
        self.k += 1
        b1, b2, k = self.b1, self.b2, self.k
        out = {}
        for path, gl in g.items():
            gl, p = _vec(gl), _vec(params[path])
            self.m[path] = b1 * self.m.get(path, 0.0) + (1.0 - b1) * gl
            self.v[path] = b2 * self.v.get(path, 0.0) + (1.0 - b2) * gl * gl
            m_hat = self.m[path] / (1.0 - b1**k)
            v_hat = self.v[path] / (1.0 - b2**k)
            r = m_hat / (np.sqrt(v_hat + self.eps_root) + self.eps)
            if _selected(self.mask, path):
                r = r + wd * p
            out[path] = -lr * _trust_ratio(_norm(p), _norm(r)) * r
        return out


class lars:
    """Float64 reference of :func:`gradtx.lars`: LARS in Optax's form, written monolithically.

    You, Gitman & Ginsburg 2017, "Large Batch Training of Convolutional Networks" (arXiv 1708.03888),
    Algorithm 1, per layer l; the paper's local rate divides by ||g|| + beta ||p||, Optax's (followed here) by
    ||g + beta p||::

        d = g + wd_t p                                         (where weight_decay_mask selects)
        d = trust_coefficient ||p|| / (||d|| + eps) d          (where trust_ratio_mask selects; 1 if a norm is 0)
        x = -lr_t d;   t = x + momentum t  (t_0 = 0);   u = t   (nesterov: u = x + momentum t)

    Per leaf: ``step(g, params)`` takes dicts ``{leaf path: float64 array}`` of the gradients and the
    parameters (the leaves keep their shapes; the paths are only keys) and returns such a dict of new float64
    arrays; the state, if any, is kept per path.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      weight_decay: the decay coefficient wd_t, >= 0: a float, or a callable ``count -> float`` evaluated at
        the 0-based count k - 1. Default 0.0.
      weight_decay_mask: a bool for every leaf, or a dict ``{path: bool}``. Default True.
      trust_coefficient: the factor of the trust ratio, > 0. Default 0.001.
      eps: added to the update norm, >= 0. Default 0.0.
      trust_ratio_mask: a bool for every leaf, or a dict ``{path: bool}``. Default True.
      momentum: the momentum coefficient, in [0, 1). Default 0.9.
      nesterov: whether to use Nesterov's form of the momentum. Default False.

    Raises:
      ValueError: ``this reference needs params``, from ``step`` when ``params`` is None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> g = {"w": np.array([[3.0, 0.0], [4.0, 1.0]]), "b": np.array([1.0, -1.0])}
      >>> p = {"w": np.array([[1.0, 2.0], [0.0, 2.0]]), "b": np.array([0.5, 0.5])}
      >>> opt = ref.lars(1.0, trust_coefficient=0.1, momentum=0.5)
      >>> u = opt.step(g, p)
      >>> u = opt.step(g, p)
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [[-0.2648  0.    ]
       [-0.353  -0.0883]] [-0.075  0.075]
    """

    PER_LEAF = True

    def __init__(
        self,
        learning_rate,
        weight_decay=0.0,
        weight_decay_mask=True,
        trust_coefficient=0.001,
        eps=0.0,
        trust_ratio_mask=True,
        momentum=0.9,
        nesterov=False,
    ):
        self.lr, self.wd, self.wd_mask = learning_rate, weight_decay, weight_decay_mask
        self.coef, self.eps, self.tr_mask = float(trust_coefficient), float(eps), trust_ratio_mask
        self.momentum, self.nesterov = float(momentum), nesterov
        self.t, self.k = {}, 0

    def step(self, g, params=None):
        params = _need(params)
        lr, wd = _value(self.lr, self.k), _value(self.wd, self.k)
        self.k += 1
        out = {}
        for path, gl in g.items():
            d, p = _vec(gl), _vec(params[path])
            if _selected(self.wd_mask, path):
                d = d + wd * p
            if _selected(self.tr_mask, path):
                d = _trust_ratio(_norm(p), _norm(d), self.coef, self.eps) * d
            x = -lr * d
            self.t[path] = x + self.momentum * self.t.get(path, 0.0)
            out[path] = x + self.momentum * self.t[path] if self.nesterov else self.t[path].copy()
        return out


class fromage:
    """Float64 reference of :func:`gradtx.fromage`: Fromage, written monolithically.

    Bernstein, Vahdat, Yue & Liu 2020, "On the distance between two neural networks and the stability of
    learning", NeurIPS (arXiv 2002.03432), Algorithm 1, per layer::

        p_new = (p - lr_t max(||p||, mn) / max(||g||, mn) g) / sqrt(1 + lr_t^2)   (ratio 1 if a norm is 0)
        u = p_new - p

    Per leaf: ``step(g, params)`` takes dicts ``{leaf path: float64 array}`` of the gradients and the
    parameters (the leaves keep their shapes; the paths are only keys) and returns such a dict of new float64
    arrays; the state, if any, is kept per path.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (e.g. a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      min_norm: mn, the floor of both norms, >= 0. Default 1e-6.

    Raises:
      ValueError: ``this reference needs params``, from ``step`` when ``params`` is None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> g = {"w": np.array([[3.0, 0.0], [4.0, 1.0]]), "b": np.array([1.0, -1.0])}
      >>> p = {"w": np.array([[1.0, 2.0], [0.0, 2.0]]), "b": np.array([0.5, 0.5])}
      >>> opt = ref.fromage(0.1)
      >>> u = opt.step(g, p)
      >>> print(np.round(u["w"], 4), np.round(u["b"], 4))
      [[-0.1806 -0.0099]
       [-0.2342 -0.0685]] [-0.0522  0.0473]
    """

    PER_LEAF = True

    def __init__(self, learning_rate, min_norm=1e-6):
        self.lr, self.min_norm, self.k = learning_rate, float(min_norm), 0

    def step(self, g, params=None):
        params = _need(params)
        lr = _value(self.lr, self.k)
        self.k += 1
        out = {}
        for path, gl in g.items():
            gl, p = _vec(gl), _vec(params[path])
            ratio = _trust_ratio(max(_norm(p), self.min_norm), max(_norm(gl), self.min_norm))
            out[path] = (p - lr * ratio * gl) / math.sqrt(1.0 + lr * lr) - p
        return out
