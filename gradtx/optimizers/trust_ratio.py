"""Layer-wise optimizers: each layer's step is scaled by a trust ratio ``||p|| / ||u||``; and noisy SGD.

=========  ==========================================================================================
lamb       scale_by_adam -> add_decayed_weights -> scale_by_trust_ratio -> scale_by_learning_rate
           (You et al. 2019, arXiv 1904.00962)
lars       add_decayed_weights -> [masked] scale_by_trust_ratio -> scale_by_learning_rate -> trace
           (You, Gitman & Ginsburg 2017, arXiv 1708.03888)
fromage    scale_by_trust_ratio -> scale_by_learning_rate(lr / sqrt(1 + lr^2))
           -> add_decayed_weights(1 / sqrt(1 + lr^2) - 1)      (Bernstein et al. 2020, arXiv 2002.03432)
noisy_sgd  add_noise -> scale_by_learning_rate                 (Neelakantan et al. 2015, arXiv 1511.06807)
=========  ==========================================================================================

``learning_rate`` is a number or a schedule of the 0-based step count.
"""

from __future__ import annotations

from typing import Any

from gradtx.combine import chain, masked
from gradtx.fields import Check, format_value, pytree_class, recipe, scalar_or_schedule
from gradtx.transforms.adam_family import scale_by_adam
from gradtx.transforms.momentum import trace
from gradtx.transforms.noise import add_noise
from gradtx.transforms.normalization import scale_by_trust_ratio
from gradtx.transforms.regularization import add_decayed_weights
from gradtx.transforms.scaling import scale_by_learning_rate

__all__ = ["fromage", "lamb", "lars", "noisy_sgd"]


# --------------------------------------------------------------------------------------------------
# Private pieces: Fromage's step-size schedules.
# --------------------------------------------------------------------------------------------------


def _fromage_multiplier(lr: Any) -> Any:
    return 1 / (1 + lr**2) ** 0.5


def _fromage_shrinkage(lr: Any) -> Any:
    """``1 / sqrt(1 + lr^2) - 1`` without cancellation: ``-lr^2 / (s (1 + s))`` with ``s = sqrt(1 + lr^2)``
    (in float32 the direct form keeps one significant digit at ``lr = 1e-3``)."""
    s = (1 + lr**2) ** 0.5
    return -(lr**2) / (s * (1 + s))


@pytree_class
class _fromage_step_size:
    """The schedule ``lr(t) / sqrt(1 + lr(t)^2)``: Fromage's step for a scheduled learning rate."""

    learning_rate: Any = scalar_or_schedule()

    def __call__(self, count: Any) -> Any:
        lr = self.learning_rate(count)
        return lr * _fromage_multiplier(lr)

    def __repr__(self) -> str:
        return f"fromage_step_size({format_value(self.learning_rate)})"


@pytree_class
class _fromage_weight_decay:
    """The schedule ``1 / sqrt(1 + lr(t)^2) - 1``: Fromage's shrinkage toward 0, as a (negative) decay."""

    learning_rate: Any = scalar_or_schedule()

    def __call__(self, count: Any) -> Any:
        return _fromage_shrinkage(self.learning_rate(count))

    def __repr__(self) -> str:
        return f"fromage_weight_decay({format_value(self.learning_rate)})"


_LEARNING_RATE = Check("number", schedule=True)


def _step_size(learning_rate: Any) -> Any:
    if callable(learning_rate):
        return _fromage_step_size(learning_rate)
    return learning_rate * _fromage_multiplier(learning_rate)


def _shrinkage(learning_rate: Any) -> Any:
    if callable(learning_rate):
        return _fromage_weight_decay(learning_rate)
    return _fromage_shrinkage(learning_rate)


# --------------------------------------------------------------------------------------------------
# Recipes.
# --------------------------------------------------------------------------------------------------


@recipe
def lamb(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-6,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    mask: Any = None,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> chain:
    """LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes",
    arXiv 1904.00962, Algorithm 2): Adam's direction plus decoupled weight decay, ``r = m_hat / (sqrt(v_hat
    + eps_root) + eps) + weight_decay p``, then per layer ``u = -lr ||p|| / ||r|| r`` (the paper's phi is the
    identity; the ratio is 1 where a norm is 0). ``mask`` selects the parameters that decay. ``mu_dtype`` and
    ``nu_dtype`` (gradtx's) store Adam's moments in other dtypes.
    """
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_trust_ratio(),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def lars(
    learning_rate: Any,
    weight_decay: Any = 0.0,
    weight_decay_mask: Any = True,
    trust_coefficient: Any = 0.001,
    eps: Any = 0.0,
    trust_ratio_mask: Any = True,
    momentum: Any = 0.9,
    nesterov: bool = False,
) -> chain:
    """LARS (You, Gitman & Ginsburg 2017, "Large Batch Training of Convolutional Networks", arXiv 1708.03888,
    Algorithm 1): per layer ``d = g + weight_decay p``, ``x = -lr trust_coefficient ||p|| / (||d|| + eps) d``,
    then momentum ``t = x + momentum t`` (``u = t``, or ``x + momentum t`` with ``nesterov``).

    As in Optax the trust ratio divides by the norm of the decayed gradient ``||g + beta p||`` where the
    paper has ``||g|| + beta ||p||``, and the learning rate is applied before the momentum trace.
    ``weight_decay_mask`` and ``trust_ratio_mask`` (trees of booleans or callables) select the parameters
    that decay and those whose step is scaled by the trust ratio (commonly: not biases and norms).
    """
    return chain(
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps), trust_ratio_mask),
        scale_by_learning_rate(learning_rate),
        trace(decay=momentum, nesterov=nesterov),
    )


@recipe
def fromage(learning_rate: Any, min_norm: Any = 1e-6) -> chain:
    """Fromage (Bernstein, Vahdat, Yue & Liu 2020, "On the distance between two neural networks and the
    stability of learning", arXiv 2002.03432, Algorithm 1): per layer
    ``p <- (p - lr ||p|| / ||g|| g) / sqrt(1 + lr^2)``, the norms floored at ``min_norm``.

    Written as a chain, ``u = -lr / sqrt(1 + lr^2) ||p|| / ||g|| g + (1 / sqrt(1 + lr^2) - 1) p``: a trust
    ratio, a learning rate and a (negative) weight decay; with a scheduled ``learning_rate`` both factors are
    schedules.
    """
    learning_rate = _LEARNING_RATE("fromage", "learning_rate", learning_rate)  # used here, not only by a block
    return chain(
        scale_by_trust_ratio(min_norm),
        scale_by_learning_rate(_step_size(learning_rate)),
        add_decayed_weights(_shrinkage(learning_rate)),
    )


@recipe
def noisy_sgd(
    learning_rate: Any,
    eta: Any = 0.01,
    gamma: Any = 0.55,
    key: Any = None,
    *,
    seed: Any = None,
) -> chain:
    """SGD on noisy gradients (Neelakantan et al. 2015, arXiv 1511.06807): ``u = -lr (g + N(0, sigma_k^2))``
    with ``sigma_k^2 = eta / k^gamma`` (``k`` the 1-based step). ``key`` (an int seed or a jax.random key)
    must be given; ``seed`` is its older name (see :class:`gradtx.transforms.noise.add_noise`).
    """
    return chain(add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate))

