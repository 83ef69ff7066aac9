"""Float64 NumPy references for ``gradtx.losses``: the textbook formulas, written independently and plainly.

Imports NumPy only and shares no code with the losses it checks. Each function takes NumPy arrays and returns
float64 arrays; the class axis is the last one unless stated.
"""

from __future__ import annotations

import math

import numpy as np


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def logsumexp(z, axis=-1):
    z = _f64(z)
    m = np.max(z, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(z - m), axis=axis))


def log_softmax(z, axis=-1):
    z = _f64(z)
    return z - np.expand_dims(logsumexp(z, axis), axis)


def softmax(z, axis=-1):
    return np.exp(log_softmax(z, axis))


def softplus(x):
    x = _f64(x)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(x):
    x = _f64(x)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


# ----------------------------------------------------------------------------------------------- classification


def softmax_cross_entropy(logits, labels):
    return -np.sum(_f64(labels) * log_softmax(logits), axis=-1)


def softmax_cross_entropy_with_integer_labels(logits, labels):
    logits = _f64(logits)
    picked = np.take_along_axis(logits, np.asarray(labels)[..., None], axis=-1)[..., 0]
    return logsumexp(logits) - picked


def sigmoid_binary_cross_entropy(logits, labels):
    y = _f64(labels)
    return y * softplus(-_f64(logits)) + (1 - y) * softplus(_f64(logits))


def sigmoid_focal_loss(logits, labels, alpha=None, gamma=2.0):
    y = _f64(labels)
    p = sigmoid(logits)
    one_minus_pt = (1 - y) * p + y * (1 - p)
    loss = sigmoid_binary_cross_entropy(logits, labels) * one_minus_pt**gamma
    if alpha is not None:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


def poly_loss_cross_entropy(logits, labels, epsilon=2.0):
    y = _f64(labels)
    return softmax_cross_entropy(logits, y) + epsilon * np.sum(y * (1 - softmax(logits)), axis=-1)


def kl_divergence(log_predictions, targets):
    q, lp = _f64(targets), _f64(log_predictions)
    out = np.zeros(np.broadcast(q, lp).shape)
    np.copyto(out, q * (np.log(np.where(q > 0, q, 1.0)) - lp), where=q > 0)
    return np.sum(out, axis=-1)


def generalized_kl_divergence(log_predictions, targets):
    return kl_divergence(log_predictions, targets) + np.sum(np.exp(_f64(log_predictions)) - _f64(targets), axis=-1)


def hinge_loss(f, t):
    return np.maximum(0.0, 1.0 - _f64(f) * _f64(t))


def perceptron_loss(f, t):
    return np.maximum(0.0, -_f64(f) * _f64(t))


def multiclass_hinge_loss(scores, labels):
    s = _f64(scores)
    out = []
    for row, y in zip(s.reshape(-1, s.shape[-1]), np.asarray(labels).reshape(-1)):
        margins = [row[j] + (0.0 if j == y else 1.0) for j in range(len(row))]
        out.append(max(margins) - row[y])
    return np.array(out).reshape(s.shape[:-1])


def multiclass_perceptron_loss(scores, labels):
    s = _f64(scores)
    picked = np.take_along_axis(s, np.asarray(labels)[..., None], axis=-1)[..., 0]
    return np.max(s, axis=-1) - picked


def projection_simplex(v):
    """Euclidean projection of a vector onto the probability simplex (Duchi et al. 2008), a plain loop."""
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
    s = _f64(scores)
    out = []
    for row, y in zip(s.reshape(-1, s.shape[-1]), np.asarray(labels).reshape(-1)):
        p = projection_simplex(row)
        out.append(p @ row + 0.5 * (1.0 - p @ p) - row[y])
    return np.array(out).reshape(s.shape[:-1])


def sparsemax_loss(logits, labels):
    x = np.where(np.asarray(labels) != 0, -_f64(logits), _f64(logits))
    return np.where(x <= -1, 0.0, np.where(x >= 1, x, (x + 1) ** 2 / 4))


def ctc_loss_brute_force(logits, labels, blank_id=0):
    """-log of the sum over every frame alignment of ``logits [T, K]`` that collapses to ``labels``."""
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
    a = np.abs(_f64(errors))
    return np.where(a <= delta, 0.5 * a**2, delta * (a - 0.5 * delta))


def log_cosh(errors):
    """``log(cosh(e))``; its Taylor series ``e^2/2 - e^4/12 + e^6/45`` below 1e-2 (np.log(np.cosh) cancels)."""
    e = _f64(errors)
    series = e**2 / 2 - e**4 / 12 + e**6 / 45
    return np.where(np.abs(e) < 1e-2, series, np.log(np.cosh(np.where(np.abs(e) < 1e-2, 1.0, e))))


def cosine_similarity(a, b, epsilon=0.0):
    a, b = _f64(a), _f64(b)
    na = np.sqrt(np.maximum(np.sum(a * a, axis=-1), epsilon))
    nb = np.sqrt(np.maximum(np.sum(b * b, axis=-1), epsilon))
    return np.sum(a * b, axis=-1) / (na * nb)


# ----------------------------------------------------------------------------------------------- the rest


def ranking_softmax_loss(logits, labels):
    """Mean over the lists of ``-sum_i y_i log softmax(s)_i``."""
    return float(np.mean(softmax_cross_entropy(logits, labels)))


def dice_per_class(probs, targets, smooth=1.0, alpha=0.5, beta=0.5):
    """Soft Dice/Tversky loss per example and class of ``[B, ..., C]`` probabilities, by explicit sums."""
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
    a, p, n = _f64(a), _f64(p), _f64(n)
    dp = (np.sum(np.abs(a - p) ** norm_degree, axis=-1) + eps) ** (1 / norm_degree)
    dn = (np.sum(np.abs(a - n) ** norm_degree, axis=-1) + eps) ** (1 / norm_degree)
    return np.maximum(dp - dn + margin, 0.0)


def smooth_labels(labels, alpha):
    y = _f64(labels)
    return (1 - alpha) * y + alpha / y.shape[-1]
