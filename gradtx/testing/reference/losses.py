"""Float64 NumPy references for ``gradtx.losses``: the textbook formulas, written independently and plainly.

Imports NumPy only and shares no code with the losses it checks. Each function takes NumPy arrays and returns
float64 arrays; the class axis is the last one unless stated.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "logsumexp",
    "log_softmax",
    "softmax",
    "softplus",
    "sigmoid",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "poly_loss_cross_entropy",
    "kl_divergence",
    "generalized_kl_divergence",
    "hinge_loss",
    "perceptron_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "projection_simplex",
    "multiclass_sparsemax_loss",
    "sparsemax_loss",
    "ctc_loss_brute_force",
    "huber_loss",
    "log_cosh",
    "cosine_similarity",
    "ranking_softmax_loss",
    "dice_per_class",
    "ntxent",
    "triplet_margin_loss",
    "smooth_labels",
]


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def logsumexp(z, axis=-1):
    """Float64 reference of the log-sum-exp that gradtx's cross-entropy losses use: ``log sum_j exp(z_j)``.

    Computed stably as ``m + log sum_j exp(z_j - m)`` with ``m = max_j z_j``.

    Args:
      z: array of scores (any float-convertible array).
      axis: the axis summed over. Default -1.

    Returns:
      A float64 array: ``z``'s shape without ``axis``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.logsumexp(np.array([0.0, 0.0])), 4))
      0.6931
    """
    z = _f64(z)
    m = np.max(z, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(z - m), axis=axis))


def log_softmax(z, axis=-1):
    """Float64 reference of the log-softmax that gradtx's losses use: ``z_i - logsumexp(z)``.

    Args:
      z: array of scores.
      axis: the axis normalised over. Default -1.

    Returns:
      A float64 array of ``z``'s shape: the log-probabilities.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.log_softmax(np.array([0.0, 0.0])), 4))
      [-0.6931 -0.6931]
    """
    z = _f64(z)
    return z - np.expand_dims(logsumexp(z, axis), axis)


def softmax(z, axis=-1):
    """Float64 reference of the softmax that gradtx's losses use: ``exp(z_i) / sum_j exp(z_j)``.

    Args:
      z: array of scores.
      axis: the axis normalised over. Default -1.

    Returns:
      A float64 array of ``z``'s shape: probabilities summing to 1 along ``axis``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.softmax(np.array([0.0, np.log(3.0)])), 4))
      [0.25 0.75]
    """
    return np.exp(log_softmax(z, axis))


def softplus(x):
    """Float64 reference of the softplus that the binary losses use: ``log(1 + exp(x))``.

    Computed stably as ``max(x, 0) + log1p(exp(-|x|))``.

    Args:
      x: array of reals.

    Returns:
      A float64 array of ``x``'s shape.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.softplus(np.array([0.0, 1.0])), 4))
      [0.6931 1.3133]
    """
    x = _f64(x)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(x):
    """Float64 reference of the logistic sigmoid that the binary losses use: ``1 / (1 + exp(-x))``.

    Written with ``exp(-|x|)`` on both branches so that it never overflows.

    Args:
      x: array of reals.

    Returns:
      A float64 array of ``x``'s shape, in [0, 1].

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.sigmoid(np.array([0.0, 2.0])), 4))
      [0.5    0.8808]
    """
    x = _f64(x)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


# ----------------------------------------------------------------------------------------------- classification


def softmax_cross_entropy(logits, labels):
    """Float64 reference of :func:`gradtx.softmax_cross_entropy`: ``-sum_j y_j log softmax(z)_j``.

    Args:
      logits: array ``[..., K]`` of unnormalised scores.
      labels: array ``[..., K]`` of target probabilities (one-hot or soft).

    Returns:
      A float64 array ``[...]``: the loss per example.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.softmax_cross_entropy(np.array([0.0, 0.0]), np.array([1.0, 0.0])), 4))
      0.6931
    """
    return -np.sum(_f64(labels) * log_softmax(logits), axis=-1)


def softmax_cross_entropy_with_integer_labels(logits, labels):
    """Float64 reference of :func:`gradtx.softmax_cross_entropy_with_integer_labels`: ``logsumexp(z) - z_y``.

    Args:
      logits: array ``[..., K]`` of unnormalised scores.
      labels: integer array ``[...]`` of class indices in [0, K).

    Returns:
      A float64 array ``[...]``: the loss per example.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.softmax_cross_entropy_with_integer_labels(np.zeros((1, 3)), np.array([1])), 4))
      [1.0986]
    """
    logits = _f64(logits)
    picked = np.take_along_axis(logits, np.asarray(labels)[..., None], axis=-1)[..., 0]
    return logsumexp(logits) - picked


def sigmoid_binary_cross_entropy(logits, labels):
    """Float64 reference of :func:`gradtx.sigmoid_binary_cross_entropy`, elementwise.

    ``y softplus(-x) + (1 - y) softplus(x)``, i.e. ``-y log sigmoid(x) - (1 - y) log(1 - sigmoid(x))``.

    Args:
      logits: array of logits ``x``.
      labels: array of targets ``y`` in [0, 1], broadcastable with ``logits``.

    Returns:
      A float64 array: the loss per element.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.sigmoid_binary_cross_entropy(np.array([0.0, 0.0]), np.array([1.0, 0.0])), 4))
      [0.6931 0.6931]
    """
    y = _f64(labels)
    return y * softplus(-_f64(logits)) + (1 - y) * softplus(_f64(logits))


def sigmoid_focal_loss(logits, labels, alpha=None, gamma=2.0):
    """Float64 reference of :func:`gradtx.sigmoid_focal_loss`, elementwise.

    Lin, Goyal, Girshick, He & Dollar 2017, "Focal Loss for Dense Object Detection", ICCV:
    ``BCE(x, y) (1 - p_t)^gamma`` with ``1 - p_t = (1 - y) p + y (1 - p)``, ``p = sigmoid(x)``; with ``alpha``,
    multiplied by ``alpha y + (1 - alpha) (1 - y)``.

    Args:
      logits: array of logits.
      labels: array of targets in [0, 1], broadcastable with ``logits``.
      alpha: the class weight in [0, 1], or None for none. Default None.
      gamma: the focusing exponent, >= 0. Default 2.0.

    Returns:
      A float64 array: the loss per element.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.sigmoid_focal_loss(np.array([0.0]), np.array([1.0])), 4))
      [0.1733]
    """
    y = _f64(labels)
    p = sigmoid(logits)
    one_minus_pt = (1 - y) * p + y * (1 - p)
    loss = sigmoid_binary_cross_entropy(logits, labels) * one_minus_pt**gamma
    if alpha is not None:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


def poly_loss_cross_entropy(logits, labels, epsilon=2.0):
    """Float64 reference of :func:`gradtx.losses.poly_loss_cross_entropy` (Leng et al. 2022, "PolyLoss", ICLR).

    ``CE(z, y) + epsilon sum_j y_j (1 - softmax(z)_j)`` (Poly-1).

    Args:
      logits: array ``[..., K]`` of unnormalised scores.
      labels: array ``[..., K]`` of target probabilities.
      epsilon: the weight of the first polynomial term. Default 2.0.

    Returns:
      A float64 array ``[...]``: the loss per example.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.poly_loss_cross_entropy(np.array([0.0, 0.0]), np.array([1.0, 0.0])), 4))
      1.6931
    """
    y = _f64(labels)
    return softmax_cross_entropy(logits, y) + epsilon * np.sum(y * (1 - softmax(logits)), axis=-1)


def kl_divergence(log_predictions, targets):
    """Float64 reference of :func:`gradtx.kl_divergence`: ``KL(q || p) = sum_j q_j (log q_j - log p_j)``.

    Terms with ``q_j = 0`` count 0 (the convention ``0 log 0 = 0``), whatever ``log p_j`` is.

    Args:
      log_predictions: array ``[..., K]`` of ``log p``.
      targets: array ``[..., K]`` of probabilities ``q`` (>= 0).

    Returns:
      A float64 array ``[...]``: the divergence per example.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.kl_divergence(np.log(np.array([0.5, 0.5])), np.array([1.0, 0.0])), 4))
      0.6931
    """
    q, lp = _f64(targets), _f64(log_predictions)
    out = np.zeros(np.broadcast(q, lp).shape)
    np.copyto(out, q * (np.log(np.where(q > 0, q, 1.0)) - lp), where=q > 0)
    return np.sum(out, axis=-1)


def generalized_kl_divergence(log_predictions, targets):
    """Float64 reference of :func:`gradtx.generalized_kl_divergence`, for unnormalised measures.

    ``sum_j q_j (log q_j - log p_j) + sum_j (p_j - q_j)``.

    Args:
      log_predictions: array ``[..., K]`` of ``log p``.
      targets: array ``[..., K]`` of ``q`` (>= 0).

    Returns:
      A float64 array ``[...]``: the divergence per example.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.generalized_kl_divergence(np.log(np.array([0.25, 0.25])), np.array([1.0, 0.0])), 4))
      0.8863
    """
    return kl_divergence(log_predictions, targets) + np.sum(np.exp(_f64(log_predictions)) - _f64(targets), axis=-1)


def hinge_loss(f, t):
    """Float64 reference of :func:`gradtx.hinge_loss`: ``max(0, 1 - f t)``, elementwise.

    Args:
      f: array of predicted scores.
      t: array of targets in {-1, 1}, broadcastable with ``f``.

    Returns:
      A float64 array: the loss per element.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.hinge_loss(np.array([0.5, 2.0, -1.0]), np.array([1.0, 1.0, 1.0])), 4))
      [0.5 0.  2. ]
    """
    return np.maximum(0.0, 1.0 - _f64(f) * _f64(t))


def perceptron_loss(f, t):
    """Float64 reference of :func:`gradtx.losses.perceptron_loss`: ``max(0, -f t)``, elementwise.

    Args:
      f: array of predicted scores.
      t: array of targets in {-1, 1}, broadcastable with ``f``.

    Returns:
      A float64 array: the loss per element.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.perceptron_loss(np.array([0.5, -1.0]), np.array([1.0, 1.0])), 4))
      [0. 1.]
    """
    return np.maximum(0.0, -_f64(f) * _f64(t))


def multiclass_hinge_loss(scores, labels):
    """Float64 reference of :func:`gradtx.losses.multiclass_hinge_loss` (Crammer & Singer 2001), row by row.

    ``max_j (s_j + [j != y]) - s_y``.

    Args:
      scores: array ``[..., K]`` of class scores.
      labels: integer array ``[...]`` of true classes in [0, K).

    Returns:
      A float64 array ``[...]``: the loss per example.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.multiclass_hinge_loss(np.array([[1.0, 2.0, 0.0]]), np.array([0])), 4))
      [2.]
    """
    s = _f64(scores)
    out = []
    for row, y in zip(s.reshape(-1, s.shape[-1]), np.asarray(labels).reshape(-1)):
        margins = [row[j] + (0.0 if j == y else 1.0) for j in range(len(row))]
        out.append(max(margins) - row[y])
    return np.array(out).reshape(s.shape[:-1])


def multiclass_perceptron_loss(scores, labels):
    """Float64 reference of :func:`gradtx.losses.multiclass_perceptron_loss`: ``max_j s_j - s_y``.

    Args:
      scores: array ``[..., K]`` of class scores.
      labels: integer array ``[...]`` of true classes in [0, K).

    Returns:
      A float64 array ``[...]``: the loss per example.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.multiclass_perceptron_loss(np.array([[1.0, 2.0, 0.0]]), np.array([0])), 4))
      [1.]
    """
    s = _f64(scores)
    picked = np.take_along_axis(s, np.asarray(labels)[..., None], axis=-1)[..., 0]
    return np.max(s, axis=-1) - picked


def projection_simplex(v):
    """Float64 reference of sparsemax, the simplex projection inside :func:`gradtx.losses.multiclass_sparsemax_loss`.

    The Euclidean projection of one vector onto the probability simplex, as a plain loop; the sparsemax loss's
    gradient is ``sparsemax(s) - onehot(y)``, and :func:`gradtx.projections.projection_simplex` computes the same
    map. Duchi, Shalev-Shwartz, Singer & Chandra 2008, "Efficient Projections onto the l1-Ball for Learning in High
    Dimensions", ICML: with ``u`` sorted in decreasing order, ``theta = (sum_{i<=k} u_i - 1) / k`` for the largest
    ``k`` with ``u_k > theta_k``; the result is ``max(v - theta, 0)``.

    Args:
      v: 1-D array.

    Returns:
      A float64 vector of ``v``'s length, >= 0 and summing to 1.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.projection_simplex(np.array([1.0, 0.5, -1.0])), 4))
      [0.75 0.25 0.  ]
    """
    v = _f64(v)
    u = np.sort(v)[::-1]
    css = 0.0
    theta = 0.0
    for k in range(1, len(u) + 1):
        css += u[k - 1]
        t = (css - 1.0) / k
        if u[k - 1] - t > 0:
            theta = t
    return np.maximum(v - theta, 0.0)


def multiclass_sparsemax_loss(scores, labels):
    """Float64 reference of :func:`gradtx.losses.multiclass_sparsemax_loss`, row by row.

    Martins & Astudillo 2016, "From Softmax to Sparsemax", ICML: ``<p, s> + (1 - ||p||^2) / 2 - s_y`` with
    ``p = sparsemax(s)`` (:func:`projection_simplex`).

    Args:
      scores: array ``[..., K]`` of class scores.
      labels: integer array ``[...]`` of true classes in [0, K).

    Returns:
      A float64 array ``[...]``: the loss per example.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.multiclass_sparsemax_loss(np.array([[1.0, 0.5, -1.0]]), np.array([0])), 4))
      [0.0625]
    """
    s = _f64(scores)
    out = []
    for row, y in zip(s.reshape(-1, s.shape[-1]), np.asarray(labels).reshape(-1)):
        p = projection_simplex(row)
        out.append(p @ row + 0.5 * (1.0 - p @ p) - row[y])
    return np.array(out).reshape(s.shape[:-1])


def sparsemax_loss(logits, labels):
    """Float64 reference of :func:`gradtx.losses.sparsemax_loss`, the binary sparsemax loss, elementwise.

    With ``x = -z`` where the label is 1 and ``x = z`` where it is 0: ``0`` for ``x <= -1``, ``x`` for ``x >= 1``,
    ``(x + 1)^2 / 4`` in between.

    Args:
      logits: array of logits ``z``.
      labels: array of binary labels (nonzero means 1), broadcastable with ``logits``.

    Returns:
      A float64 array: the loss per element.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.sparsemax_loss(np.array([0.0, 2.0, -0.5]), np.array([1, 0, 0])), 4))
      [0.25   2.     0.0625]
    """
    x = np.where(np.asarray(labels) != 0, -_f64(logits), _f64(logits))
    return np.where(x <= -1, 0.0, np.where(x >= 1, x, (x + 1) ** 2 / 4))


def ctc_loss_brute_force(logits, labels, blank_id=0):
    """Float64 reference of :func:`gradtx.ctc_loss` for one unpadded sequence, by brute force.

    Graves et al. 2006, "Connectionist Temporal Classification", ICML: ``-log sum_pi prod_t softmax(logits_t)_{pi_t}``
    over every frame alignment ``pi`` in ``{0..K-1}^T`` that collapses (merge repeats, then drop blanks) to
    ``labels``. It enumerates all ``K^T`` paths, so keep ``T`` and ``K`` tiny.

    Args:
      logits: array ``[T, K]`` of per-frame scores.
      labels: 1-D sequence of label ids (no blanks).
      blank_id: the blank class. Default 0.

    Returns:
      A Python float: the negative log-likelihood.

    Raises:
      ValueError: ``math domain error`` when no alignment fits (``labels`` longer than the frames allow).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.ctc_loss_brute_force(np.zeros((2, 2)), [1]), 4))
      0.2877
    """
    logp = log_softmax(logits)
    num_frames, num_classes = logp.shape
    target = tuple(int(v) for v in labels)
    total = 0.0
    for code in range(num_classes**num_frames):  # every path in {0..K-1}^T, as the digits of ``code``
        path = [(code // num_classes**t) % num_classes for t in range(num_frames)]
        collapsed = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
        if tuple(k for k in collapsed if k != blank_id) == target:
            total += math.exp(sum(logp[t, k] for t, k in enumerate(path)))
    return -math.log(total)


# ----------------------------------------------------------------------------------------------- regression


def huber_loss(errors, delta=1.0):
    """Float64 reference of :func:`gradtx.huber_loss` (Huber 1964), elementwise.

    ``e^2 / 2`` where ``|e| <= delta``, else ``delta (|e| - delta / 2)``.

    Args:
      errors: array of residuals ``e``.
      delta: the threshold between the quadratic and linear parts, > 0. Default 1.0.

    Returns:
      A float64 array: the loss per element.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.huber_loss(np.array([0.5, 2.0])), 4))
      [0.125 1.5  ]
    """
    a = np.abs(_f64(errors))
    return np.where(a <= delta, 0.5 * a**2, delta * (a - 0.5 * delta))


def log_cosh(errors):
    """Float64 reference of :func:`gradtx.log_cosh`: ``log(cosh(e))``, elementwise.

    Below ``|e| < 1e-2`` its Taylor series ``e^2/2 - e^4/12 + e^6/45`` (``np.log(np.cosh(e))`` cancels there).

    Args:
      errors: array of residuals ``e``.

    Returns:
      A float64 array: the loss per element.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.log_cosh(np.array([0.0, 1.0])), 4))
      [0.     0.4338]
    """
    e = _f64(errors)
    series = e**2 / 2 - e**4 / 12 + e**6 / 45
    return np.where(np.abs(e) < 1e-2, series, np.log(np.cosh(np.where(np.abs(e) < 1e-2, 1.0, e))))


def cosine_similarity(a, b, epsilon=0.0):
    """Float64 reference of :func:`gradtx.cosine_similarity` over the last axis.

    ``<a, b> / (sqrt(max(||a||^2, epsilon)) sqrt(max(||b||^2, epsilon)))``.

    Args:
      a: array ``[..., d]``.
      b: array ``[..., d]``.
      epsilon: the floor of the squared norms, >= 0. Default 0.0.

    Returns:
      A float64 array ``[...]``, in [-1, 1].

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.cosine_similarity(np.array([1.0, 0.0]), np.array([1.0, 1.0])), 4))
      0.7071
    """
    a, b = _f64(a), _f64(b)
    na = np.sqrt(np.maximum(np.sum(a * a, axis=-1), epsilon))
    nb = np.sqrt(np.maximum(np.sum(b * b, axis=-1), epsilon))
    return np.sum(a * b, axis=-1) / (na * nb)


# ----------------------------------------------------------------------------------------------- the rest


def ranking_softmax_loss(logits, labels):
    """Float64 reference of :func:`gradtx.losses.ranking_softmax_loss` with the default mean reduction.

    The mean over the lists of ``-sum_i y_i log softmax(s)_i``.

    Args:
      logits: array ``[..., n]`` of item scores ``s``.
      labels: array ``[..., n]`` of relevance labels ``y``.

    Returns:
      A Python float: the mean loss.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.ranking_softmax_loss(np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]])), 4))
      0.6931
    """
    return float(np.mean(softmax_cross_entropy(logits, labels)))


def dice_per_class(probs, targets, smooth=1.0, alpha=0.5, beta=0.5):
    """Float64 reference of :func:`gradtx.losses.dice_loss` before any reduction: the loss per example and class.

    The soft Dice / Tversky loss, by explicit sums. Milletari et al. 2016, "V-Net", 3DV; Salehi et al. 2017, "Tversky
    loss function": with ``I = sum p t``, ``FP = sum p - I``, ``FN = sum t - I`` over the spatial positions,
    ``1 - (I + smooth) / (I + alpha FP + beta FN + smooth)`` (Dice for ``alpha = beta = 0.5``).

    Args:
      probs: array ``[B, ..., C]`` of predicted probabilities (softmax already applied).
      targets: array ``[B, ..., C]`` of one-hot targets.
      smooth: the smoothing constant, >= 0. Default 1.0.
      alpha: the false-positive weight. Default 0.5.
      beta: the false-negative weight. Default 0.5.

    Returns:
      A float64 array ``[B, C]``.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> probs = np.array([[[1.0, 0.0], [0.5, 0.5]]])
      >>> targets = np.array([[[1.0, 0.0], [0.0, 1.0]]])
      >>> print(np.round(ref.dice_per_class(probs, targets), 4))
      [[0.1111 0.1429]]
    """
    p, t = _f64(probs), _f64(targets)
    b, c = p.shape[0], p.shape[-1]
    p, t = p.reshape(b, -1, c), t.reshape(b, -1, c)
    out = np.zeros((b, c))
    for i in range(b):
        for k in range(c):
            inter = float(np.sum(p[i, :, k] * t[i, :, k]))
            fp = float(np.sum(p[i, :, k])) - inter
            fn = float(np.sum(t[i, :, k])) - inter
            out[i, k] = 1.0 - (inter + smooth) / (inter + alpha * fp + beta * fn + smooth)
    return out


def ntxent(embeddings, labels, temperature=0.07):
    """Float64 reference of :func:`gradtx.ntxent`, by explicit loops.

    Chen, Kornblith, Norouzi & Hinton 2020, "A Simple Framework for Contrastive Learning of Visual Representations"
    (SimCLR), ICML. With ``s_ij = <e_i, e_j> / (||e_i|| ||e_j|| temperature)``, the mean over the positive pairs
    ``(i, j)`` (``j != i``, same label) of ``-log(exp(s_ij) / (exp(s_ij) + sum_{k: label_k != label_i} exp(s_ik)))``.

    Args:
      embeddings: array ``[n, d]``.
      labels: integer array ``[n]``; equal labels mark positive pairs.
      temperature: > 0. Default 0.07.

    Returns:
      A Python float: the mean loss.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
      >>> print(np.round(ref.ntxent(e, np.array([0, 0, 1, 1]), temperature=1.0), 4))
      0.5514
    """
    e = _f64(embeddings)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    s = e @ e.T / temperature
    labels = np.asarray(labels)
    losses = []
    for i in range(len(e)):
        negatives = [k for k in range(len(e)) if labels[k] != labels[i]]
        for j in range(len(e)):
            if j != i and labels[j] == labels[i]:
                denom = math.exp(s[i, j]) + sum(math.exp(s[i, k]) for k in negatives)
                losses.append(-(s[i, j] - math.log(denom)))
    return float(np.mean(losses))


def triplet_margin_loss(a, p, n, norm_degree=2, margin=1.0, eps=1e-6):
    """Float64 reference of :func:`gradtx.losses.triplet_margin_loss` (Balntas et al. 2016, BMVC) over the last axis.

    ``max(d(a, p) - d(a, n) + margin, 0)`` with ``d(x, y) = (sum |x - y|^q + eps)^(1/q)``, ``q = norm_degree``.

    Args:
      a: anchors ``[..., d]``.
      p: positives ``[..., d]``.
      n: negatives ``[..., d]``.
      norm_degree: the norm's degree ``q`` > 0. Default 2.
      margin: the margin. Default 1.0.
      eps: added inside the root, >= 0. Default 1e-6.

    Returns:
      A float64 array ``[...]``: the loss per triplet.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> a, p, n = np.array([0.0, 0.0]), np.array([3.0, 0.0]), np.array([0.0, 2.0])
      >>> print(np.round(ref.triplet_margin_loss(a, p, n), 4))
      2.0
    """
    a, p, n = _f64(a), _f64(p), _f64(n)
    dp = (np.sum(np.abs(a - p) ** norm_degree, axis=-1) + eps) ** (1 / norm_degree)
    dn = (np.sum(np.abs(a - n) ** norm_degree, axis=-1) + eps) ** (1 / norm_degree)
    return np.maximum(dp - dn + margin, 0.0)


def smooth_labels(labels, alpha):
    """Float64 reference of :func:`gradtx.smooth_labels`: ``(1 - alpha) y + alpha / K``.

    Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision", CVPR; ``K`` is the size
    of the last axis.

    Args:
      labels: array ``[..., K]`` of one-hot (or soft) labels.
      alpha: the smoothing weight in [0, 1].

    Returns:
      A float64 array of ``labels``' shape.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing.reference import losses as ref
      >>> print(np.round(ref.smooth_labels(np.array([1.0, 0.0, 0.0, 0.0]), 0.2), 4))
      [0.85 0.05 0.05 0.05]
    """
    y = _f64(labels)
    return (1 - alpha) * y + alpha / y.shape[-1]
