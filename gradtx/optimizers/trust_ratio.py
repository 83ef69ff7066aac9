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

import jax
from jax.typing import DTypeLike

from gradtx.base import MaskOrFn, Scalar, ScalarOrSchedule
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
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-6,
    eps_root: Scalar = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    *,
    mu_dtype: DTypeLike | None = None,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """LAMB: Adam's direction plus decoupled weight decay, rescaled per layer by a trust ratio.

    You, Li, Reddi, Hseu, Kumar, Bhojanapalli, Song, Demmel, Keutzer & Hsieh 2019, "Large Batch
    Optimization for Deep Learning: Training BERT in 76 minutes", ICLR 2020, arXiv 1904.00962,
    Algorithm 2::

        r = m_hat / (sqrt(v_hat + eps_root) + eps) + weight_decay p        (Adam's m_hat, v_hat)
        u = -lr_k ||p|| / ||r|| r                                          (per leaf)

    The paper's ``phi`` is the identity; the ratio is 1 where a norm is 0. ``update`` needs ``params``.

    Chain: ``scale_by_adam(b1, b2, eps, eps_root, mu_dtype=..., nu_dtype=...)`` ->
    ``add_decayed_weights(weight_decay, mask)`` -> ``scale_by_trust_ratio()`` ->
    ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count
        (see ``gradtx.schedules``). Required.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the denominator outside the square root, >= 0. Default 1e-6.
      eps_root: added inside the square root, >= 0. Default 0.0.
      weight_decay: the decay rate, a finite number or a schedule of the step count. Default 0.0.
      mask: which parameters decay: None (all), a pytree of booleans shaped like the parameters (or a
        prefix of them), or a function ``params -> such a pytree``. Default None.
      mu_dtype: keyword only; the dtype of Adam's first moment, a floating dtype, or None for the
        parameters' dtype. Default None.
      nu_dtype: keyword only; the dtype of the second moment, a real floating dtype, or None. Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByAdamState(count, mu, nu), <weight-decay state>, EmptyState(),
      <learning-rate state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``lamb(b1=1.0): b1 must be in [0, 1)``.
      TypeError: for an argument of the wrong kind, e.g. ``lamb(eps=None): eps must be a real number >= 0,
        not None`` (also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.lamb(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # -lr * ||w|| / ||sign(g)|| * sign(g)
      [ 0.84189 -1.84189 ]
    """
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_trust_ratio(),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn = True,
    trust_coefficient: Scalar = 0.001,
    eps: Scalar = 0.0,
    trust_ratio_mask: MaskOrFn = True,
    momentum: Scalar = 0.9,
    nesterov: bool = False,
) -> chain:
    """LARS: SGD with momentum whose step is scaled per layer by a trust ratio.

    You, Gitman & Ginsburg 2017, "Large Batch Training of Convolutional Networks", arXiv 1708.03888,
    Algorithm 1. Per layer (leaf)::

        d = g + weight_decay p
        x = -lr_k trust_coefficient ||p|| / (||d|| + eps) d
        t_k = x + momentum t_{k-1};   u = t_k   (u = x + momentum t_k with nesterov)

    As in Optax the trust ratio divides by the norm of the decayed gradient ``||g + beta p||`` where the
    paper has ``||g|| + beta ||p||``, and the learning rate is applied before the momentum trace.
    ``update`` needs ``params``.

    Chain: ``add_decayed_weights(weight_decay, mask=weight_decay_mask)`` ->
    ``masked(scale_by_trust_ratio(trust_coefficient=..., eps=eps), trust_ratio_mask)`` ->
    ``scale_by_learning_rate(learning_rate)`` -> ``trace(decay=momentum, nesterov=nesterov)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count
        (see ``gradtx.schedules``). Required.
      weight_decay: the decay rate added to the gradient, a finite number or a schedule. Default 0.0.
      weight_decay_mask: which parameters decay: True (all), a pytree of booleans shaped like the parameters
        (or a prefix of them), or a function ``params -> such a pytree`` (commonly: not biases and norms).
        Default True.
      trust_coefficient: the factor ``eta`` of the trust ratio, a finite number. Default 0.001.
      eps: added to the norm of the decayed gradient, >= 0. Default 0.0.
      trust_ratio_mask: which parameters get the trust ratio: a boolean, a pytree of booleans (a prefix of
        the parameters) or a function ``params -> such a pytree``; the others take the plain step.
        Default True.
      momentum: the momentum decay, in [0, 1]. Default 0.9.
      nesterov: use Nesterov's momentum. Default False.

    Returns:
      A ``chain`` whose state is ``(<weight-decay state>, MaskedState(inner_state), <learning-rate state>,
      TraceState(trace))``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``lars(momentum=1.5): momentum was given to
        trace as decay: decay must be in [0, 1]`` or a ``trust_ratio_mask`` that is not a mask.
      TypeError: for an argument of the wrong kind, e.g. ``lars(trust_coefficient=None): trust_coefficient
        must be a finite real number, not None`` (also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.lars(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # -lr * 0.001 * ||w|| / ||g|| * g
      [ 0.9999 -1.9998]
    """
    return chain(
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps), trust_ratio_mask),
        scale_by_learning_rate(learning_rate),
        trace(decay=momentum, nesterov=nesterov),
    )


@recipe
def fromage(learning_rate: ScalarOrSchedule, min_norm: Scalar = 1e-6) -> chain:
    """Fromage: a per-layer step relative to the layer's norm, then a shrinkage that keeps norms from growing.

    Bernstein, Vahdat, Yue & Liu 2020, "On the distance between two neural networks and the stability of
    learning", NeurIPS, arXiv 2002.03432, Algorithm 1. Per layer (leaf), the norms floored at
    ``min_norm``::

        p <- (p - lr ||p|| / ||g|| g) / sqrt(1 + lr^2)

    Written as a chain, ``u = -lr / sqrt(1 + lr^2) ||p|| / ||g|| g + (1 / sqrt(1 + lr^2) - 1) p``: a trust
    ratio, a learning rate and a (negative) weight decay; with a scheduled ``learning_rate`` both factors are
    schedules. ``update`` needs ``params``.

    Chain: ``scale_by_trust_ratio(min_norm)`` -> ``scale_by_learning_rate(lr / sqrt(1 + lr^2))`` ->
    ``add_decayed_weights(1 / sqrt(1 + lr^2) - 1)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count
        (see ``gradtx.schedules``). Required.
      min_norm: the floor of both norms, >= 0. Default 1e-6.

    Returns:
      A ``chain`` whose state is ``(EmptyState(), <learning-rate state>, <weight-decay state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``fromage(min_norm=-1.0): min_norm must be
        >= 0``.
      TypeError: for an argument of the wrong kind, e.g. ``fromage(learning_rate=None): learning_rate must be
        a finite real number or a schedule count -> value, not None`` (also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.fromage(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # (w - 0.1 ||w|| / ||g|| g) / sqrt(1.01)
      [ 0.89553 -1.79107 ]
    """
    learning_rate = _LEARNING_RATE("fromage", "learning_rate", learning_rate)  # used here, not only by a block
    return chain(
        scale_by_trust_ratio(min_norm),
        scale_by_learning_rate(_step_size(learning_rate)),
        add_decayed_weights(_shrinkage(learning_rate)),
    )


@recipe
def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta: Scalar = 0.01,
    gamma: Scalar = 0.55,
    key: int | jax.Array | None = None,
    *,
    seed: int | None = None,
) -> chain:
    """SGD on noisy gradients: ``u_k = -lr_k (g_k + N(0, sigma_k^2))`` with ``sigma_k^2 = eta / k^gamma``.

    Neelakantan, Vilnis, Le, Sutskever, Kaiser, Kurach & Martens 2015, "Adding Gradient Noise Improves
    Learning for Very Deep Networks", arXiv 1511.06807. ``k`` is the 1-based step, so the paper's
    ``eta / (1 + t)^gamma`` with ``t`` the 0-based count; the paper uses ``eta`` in {0.01, 0.3, 1.0} and
    ``gamma = 0.55``. The noise stream is Optax's for the same key (see
    :class:`gradtx.transforms.noise.add_noise`).

    Chain: ``add_noise(eta, gamma, key, seed=seed)`` -> ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count
        (see ``gradtx.schedules``). Required.
      eta: the noise variance at the first step, >= 0 (0 is plain SGD). Default 0.01.
      gamma: the annealing exponent of the variance, a finite number (0 keeps it constant). Default 0.55.
      key: an int seed or a ``jax.random`` key (typed or raw); None uses key 0 with a ``UserWarning``, as
        Optax does (every run then draws the same noise). Default None.
      seed: keyword only; Optax's older name for an int ``key``; give at most one of the two. Default None.

    Returns:
      A ``chain`` whose state is ``(AddNoiseState(count, rng_key), <learning-rate state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``noisy_sgd(eta=-1): eta must be >= 0``,
        ``noisy_sgd(key='a'): key must be an int seed or a jax.random key``, or both ``key`` and ``seed``.
      TypeError: for an argument of the wrong kind, e.g. ``noisy_sgd(gamma=None): gamma must be a finite real
        number, not None`` (also a ``ValueError``).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> opt = gradtx.noisy_sgd(learning_rate=0.1, eta=0.01, key=0)
      >>> grads = jnp.zeros(10_000)  # a zero gradient: the update is the noise alone
      >>> updates, state = opt.update(grads, opt.init(grads))
      >>> print(round(float(updates.std()), 3))  # lr * sqrt(eta / 1^gamma)
      0.01
    """
    return chain(add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate))
