"""Sign-based and step-size-adaptive optimizers, each one ``chain`` of blocks.

===========================  ================================================================================
sign_sgd                     scale_by_sign -> scale_by_learning_rate                     (Bernstein et al. 2018)
signum                       ema(beta, debias=False) -> scale_by_sign -> scale_by_learning_rate
lion                         scale_by_lion -> add_decayed_weights -> scale_by_learning_rate  (Chen et al. 2023)
adadelta                     add_decayed_weights -> scale_by_adadelta -> scale_by_learning_rate(lr or 1)
                                                                                          (Zeiler 2012)
rprop                        scale_by_rprop -> scale_by_learning_rate(1)       (Riedmiller & Braun 1993)
optimistic_gradient_descent  scale_by_optimistic_gradient -> scale_by_learning_rate  (Daskalakis et al. 2018)
optimistic_adam(_v2)         scale_by_adam(nesterov) -> scale_by_optimistic_gradient -> scale_by_learning_rate
novograd                     scale_by_novograd -> scale_by_learning_rate                (Ginsburg et al. 2019)
polyak_sgd                   scale_by_polyak -> scale_by_learning_rate(scaling)          (Loizou et al. 2021)
===========================  ================================================================================

Names, signatures and defaults are Optax 0.2.8's. Where gradtx differs from Optax it says so in the recipe's
docstring: ``adadelta(learning_rate=None)`` descends (Optax's ascends), ``rprop`` moves with the step it has
just computed (Optax's lags one step), ``polyak_sgd(scaling=s)`` multiplies the whole step by ``s`` as Optax
documents (Optax's code applies ``s`` before the Polyak step, which divides an uncapped step by ``s``).
``polyak_sgd`` needs ``update(..., value=loss)``.
"""

from __future__ import annotations

import warnings
from typing import Literal

from jax.typing import DTypeLike

from gradtx.base import MaskOrFn, Scalar, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.fields import InvalidType, fail, recipe
from gradtx.transforms import add_decayed_weights, ema, scale_by_adam, scale_by_learning_rate, scale_by_sign
from gradtx.transforms.sign_family import (
    scale_by_adadelta,
    scale_by_lion,
    scale_by_novograd,
    scale_by_optimistic_gradient,
    scale_by_polyak,
    scale_by_rprop,
)

__all__ = [
    "adadelta",
    "lion",
    "novograd",
    "optimistic_adam",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "polyak_sgd",
    "rprop",
    "sign_sgd",
    "signum",
]


@recipe
def sign_sgd(learning_rate: ScalarOrSchedule) -> chain:
    """signSGD: step by the sign of the gradient, ``u_k = -lr_k sign(g_k)``.

    Bernstein, Wang, Azizzadenesheli & Anandkumar 2018, "signSGD: Compressed Optimisation for Non-Convex
    Problems", ICML, arXiv 1802.04434. Every coordinate with a nonzero gradient moves by exactly ``lr_k``;
    a zero gradient gives a zero step.

    Chain: ``scale_by_sign()`` -> ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count
        (see ``gradtx.schedules``). Required.

    Returns:
      A ``chain`` whose state is ``(EmptyState(), <learning-rate state>)``; the learning-rate block's state
      is ``EmptyState()`` for a number, ``ScaleByScheduleState(count)`` for a schedule.

    Raises:
      ValueError: at construction, for an invalid learning rate, e.g. ``sign_sgd(learning_rate=nan):
        learning_rate must be finite``.
      TypeError: for a learning rate of the wrong kind, e.g. ``sign_sgd(learning_rate=None): learning_rate
        must be a finite real number or a schedule count -> value, not None`` (also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.sign_sgd(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # -lr * sign(g)
      [ 0.9 -1.9]
    """
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


@recipe
def signum(learning_rate: ScalarOrSchedule, beta: Scalar = 0.9, accumulator_dtype: DTypeLike | None = None) -> chain:
    """Signum: signSGD with momentum, the sign of an average of past gradients.

    Bernstein, Wang, Azizzadenesheli & Anandkumar 2018, "signSGD: Compressed Optimisation for Non-Convex
    Problems", ICML, arXiv 1802.04434, Algorithm 3::

        m_k = beta m_{k-1} + (1 - beta) g_k        (m_0 = 0)
        u_k = -lr_k sign(m_k)

    The average is not debiased: a positive factor does not change a sign.

    Chain: ``ema(beta, debias=False, accumulator_dtype=accumulator_dtype)`` -> ``scale_by_sign()`` ->
    ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count
        (see ``gradtx.schedules``). Required.
      beta: the momentum decay, in [0, 1] (0 gives :func:`sign_sgd`). Default 0.9.
      accumulator_dtype: the dtype the average is stored in, a floating dtype, or None for the parameters'
        dtype. Default None.

    Returns:
      A ``chain`` whose state is ``(EmaState(count, ema), EmptyState(), <learning-rate state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``signum(beta=1.5): beta was given to ema as
        decay: decay must be in [0, 1]``.
      TypeError: for an argument of the wrong kind, e.g. ``signum(beta=None): beta was given to ema as decay:
        decay must be a real number in [0, 1], not None`` (also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.signum(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # -lr * sign(m)
      [ 0.9 -1.9]
    """
    return chain(
        ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
        scale_by_sign(),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def lion(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.99,
    mu_dtype: DTypeLike | None = None,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: MaskOrFn = None,
) -> chain:
    """Lion: the sign of an interpolated momentum, plus decoupled weight decay.

    Chen, Liang, Huang, Real, Wang, Pham, Dong, Luong, Hsieh, Lu & Le 2023, "Symbolic Discovery of
    Optimization Algorithms", NeurIPS, arXiv 2302.06675, Program 1::

        c_k = b1 m_{k-1} + (1 - b1) g_k
        u_k = -lr_k (sign(c_k) + weight_decay p_k)
        m_k = b2 m_{k-1} + (1 - b2) g_k           (m_0 = 0)

    The interpolation ``b1`` shapes the step, the slower ``b2`` keeps the momentum. The weight decay is
    multiplied by the learning rate, as in the paper and in Optax; ``mask`` selects the parameters it
    applies to. Without weight decay every coordinate moves by exactly ``lr``. The paper suggests a
    learning rate 3-10 times smaller than AdamW's. ``update`` needs ``params``.

    Chain: ``scale_by_lion(b1, b2, mu_dtype)`` -> ``add_decayed_weights(weight_decay, mask)`` ->
    ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count
        (see ``gradtx.schedules``). Required.
      b1: the interpolation between the momentum and the gradient that is signed, in [0, 1]. Default 0.9.
      b2: the decay of the momentum, in [0, 1]. Default 0.99.
      mu_dtype: the dtype the momentum is stored in, a floating dtype, or None for the parameters' dtype.
        Default None.
      weight_decay: the decay rate, a finite number or a schedule of the step count. Default 1e-3.
      mask: which parameters decay: None (all), a pytree of booleans shaped like the parameters (or a
        prefix of them), or a function ``params -> such a pytree``. Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByLionState(count, mu), <weight-decay state>, <learning-rate
      state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``lion(b2=1.5): b2 must be in [0, 1]``.
      TypeError: for an argument of the wrong kind, e.g. ``lion(b1=None): b1 must be a real number in [0,
        1], not None`` (also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.lion(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # -lr * (sign(g) + 1e-3 * w)
      [ 0.8999 -1.8998]
    """
    return chain(
        scale_by_lion(b1, b2, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def adadelta(
    learning_rate: ScalarOrSchedule | None = None,
    rho: Scalar = 0.9,
    eps: Scalar = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn = None,
) -> chain:
    """Adadelta: a step whose units match the parameters', from two running averages.

    Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method", arXiv 1212.5701, Algorithm 1, with
    ``RMS[y]_k = sqrt(E[y^2]_k + eps)``::

        E[g^2]_k  = rho E[g^2]_{k-1} + (1 - rho) g_k^2
        dx_k      = -RMS[dx]_{k-1} / RMS[g]_k * g_k                       (eq. 14)
        E[dx^2]_k = rho E[dx^2]_{k-1} + (1 - rho) dx_k^2

    ``learning_rate=None`` (the default) means a learning rate of 1: the paper's method, which has no
    learning rate. It *descends*: a positive gradient gives a negative update. A number or a schedule
    multiplies the step (the statistics keep the unscaled step, see ``scale_by_adadelta``). The weight
    decay ``weight_decay * p`` is added to the gradient before the Adadelta scaling (coupled, as in Optax),
    on the parameters ``weight_decay_mask`` selects; ``update`` needs ``params``.

    Difference from Optax 0.2.8: Optax's ``adadelta(learning_rate=None)`` replaces the learning-rate block by
    the identity, so it drops the minus sign and moves uphill (a gradient of +1 gives +0.0032 on the first
    step). With an explicit learning rate the two agree.

    Chain: ``add_decayed_weights(weight_decay, weight_decay_mask)`` -> ``scale_by_adadelta(rho, eps)`` ->
    ``scale_by_learning_rate(learning_rate or 1)``.

    Args:
      learning_rate: a finite number or a schedule ``count -> lr`` of the 0-based step count multiplying the
        step, or None for 1 (the paper's method). Default None.
      rho: the decay of both averages, in [0, 1]. Default 0.9.
      eps: the constant inside both roots, > 0 (with 0 the first step is 0 and the method never moves).
        Default 1e-6.
      weight_decay: the coupled decay rate, a finite number or a schedule of the step count. Default 0.0.
      weight_decay_mask: which parameters decay: None (all), a pytree of booleans shaped like the parameters
        (or a prefix of them), or a function ``params -> such a pytree``. Default None.

    Returns:
      A ``chain`` whose state is ``(<weight-decay state>, ScaleByAdaDeltaState(e_g, e_x), <learning-rate
      state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``adadelta(eps=0.0): eps must be > 0`` or
        ``adadelta(rho=1.5): rho must be in [0, 1]``.
      TypeError: for an argument of the wrong kind, e.g. ``adadelta(rho=None): rho must be a real number in
        [0, 1], not None`` (also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.adadelta()
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # sqrt(eps) / sqrt(0.1 g^2 + eps) * g: small first steps
      [ 0.99684 -1.99684 ]
    """
    return chain(
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_adadelta(rho, eps),
        scale_by_learning_rate(1.0 if learning_rate is None else learning_rate),
    )


@recipe
def rprop(
    learning_rate: Scalar,
    eta_minus: Scalar = 0.5,
    eta_plus: Scalar = 1.2,
    min_step_size: Scalar = 1e-6,
    max_step_size: Scalar = 50.0,
) -> chain:
    """Rprop: per-coordinate step sizes grown while the gradient keeps its sign, shrunk when it flips.

    Riedmiller & Braun 1993, "A direct adaptive method for faster backpropagation learning: the RPROP
    algorithm", IEEE ICNN; in the iRprop- form of Igel & Huesken 2000, "Improving the Rprop learning
    algorithm". Each coordinate keeps a step size ``d`` (initially ``learning_rate``)::

        same sign as the previous step:  d <- clip(d * eta_plus, min_step_size, max_step_size);   u = -d sign(g)
        sign flip:                       d <- clip(d * eta_minus, min_step_size, max_step_size);  u = 0
        otherwise (first step, or after a flip):                                                  u = -d sign(g)

    Only the sign of the gradient is used. Full-batch gradients suit it; minibatch noise flips signs.

    Difference from Optax 0.2.8: Optax's update lags one step (its first update is 0; Optax pull request
    #1725); this one uses the current step, as the paper does.

    Chain: ``scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size)`` ->
    ``scale_by_learning_rate(1.0)``.

    Args:
      learning_rate: the initial step size of every coordinate, a number > 0 (not a schedule). Required.
      eta_minus: the factor a step size shrinks by on a sign flip, in (0, 1]. Default 0.5.
      eta_plus: the factor a step size grows by while the sign holds, >= 1. Default 1.2.
      min_step_size: the smallest step size, >= 0. Default 1e-6.
      max_step_size: the largest step size, > 0. Default 50.0.

    Returns:
      A ``chain`` whose state is ``(ScaleByRpropState(step_sizes, prev_updates), EmptyState())``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``rprop(eta_plus=0.5): eta_plus must be >=
        1`` or ``rprop(learning_rate=0.0): learning_rate must be > 0``.
      TypeError: for an argument of the wrong kind, e.g. ``rprop(eta_minus=None): eta_minus must be a real
        number in (0, 1], not None`` (also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.rprop(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # -d * sign(g), d = 0.1 at first
      [ 0.9 -1.9]
    """
    return chain(
        scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size),
        scale_by_learning_rate(1.0),
    )


@recipe
def optimistic_gradient_descent(learning_rate: ScalarOrSchedule, alpha: Scalar = 1.0, beta: Scalar = 1.0) -> chain:
    """Optimistic gradient descent: ``u_k = -lr_k ((alpha + beta) g_k - beta g_{k-1})``, ``g_0 := g_1``.

    Daskalakis, Ilyas, Syrgkanis & Zeng 2018, "Training GANs with Optimism", ICLR, arXiv 1711.00141, with
    ``alpha = beta = 1``: ``x <- x - lr (2 g_k - g_{k-1})``, a one-call approximation of extra-gradient that
    converges in last iterate on bilinear games; the general form from Mokhtari, Ozdaglar & Pattathil 2019,
    arXiv 1901.08511. The first step uses ``g_0 := g_1``, so it is ``-lr alpha g_1`` (Optax's convention).

    Chain: ``scale_by_optimistic_gradient(alpha, beta)`` -> ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count
        (see ``gradtx.schedules``). Required.
      alpha: the weight of the current gradient, a finite number (not a schedule). Default 1.0.
      beta: the weight of the gradient's change (the optimism), a finite number. Default 1.0.

    Returns:
      A ``chain`` whose state is ``(ScaleByOptimisticGradientState(is_initial_step, previous_gradient),
      <learning-rate state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``optimistic_gradient_descent(alpha=nan):
        alpha must be finite``.
      TypeError: for an argument of the wrong kind, e.g. ``optimistic_gradient_descent(beta=None): beta must
        be a finite real number, not None`` (also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.optimistic_gradient_descent(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # the first step is -lr * alpha * g
      [ 0.8 -1.6]
    """
    return chain(scale_by_optimistic_gradient(alpha, beta), scale_by_learning_rate(learning_rate))


@recipe
def optimistic_adam(
    learning_rate: Scalar,
    optimism: Scalar | None = None,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-08,
    eps_root: Scalar = 0.0,
    mu_dtype: DTypeLike | None = None,
    *,
    nesterov: bool = True,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """Optimistic Adam (deprecated interface): ``u_k = -(lr r_k + optimism (r_k - r_{k-1}))``.

    Daskalakis, Ilyas, Syrgkanis & Zeng 2018, "Training GANs with Optimism", ICLR, arXiv 1711.00141:
    ``r_k`` is Adam's direction (NAdam's with ``nesterov``, the default; see :func:`adam`), ``r_0 := r_1``.
    ``learning_rate`` must be a number (it is the ``alpha`` of ``scale_by_optimistic_gradient``); for a
    schedule use :func:`optimistic_adam_v2`, which this equals as
    ``optimistic_adam_v2(1.0, alpha=learning_rate, beta=optimism)``.

    Chain: ``scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=..., nu_dtype=...)`` ->
    ``scale_by_optimistic_gradient(learning_rate, optimism)`` -> ``scale_by_learning_rate(1.0)``.

    Args:
      learning_rate: the step size, a finite number (not a schedule). Required.
      optimism: the weight of the change of direction, a finite number, or None for ``learning_rate``.
        Default None.
      b1: the decay of Adam's first moment, in [0, 1). Default 0.9.
      b2: the decay of Adam's second moment, in [0, 1). Default 0.999.
      eps: added to Adam's denominator outside the square root, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0. Default 0.0.
      mu_dtype: the dtype of the first moment, a floating dtype, or None for the parameters' dtype.
        Default None.
      nesterov: keyword only; use NAdam's first moment. Default True.
      nu_dtype: keyword only; the dtype of the second moment, a real floating dtype, or None. Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByAdamState(count, mu, nu),
      ScaleByOptimisticGradientState(is_initial_step, previous_gradient), EmptyState())``.

    Raises:
      TypeError: for a schedule as ``learning_rate`` (``optimistic_adam(learning_rate=...): learning_rate
        must be a number (for a schedule use optimistic_adam_v2)``) or another argument of the wrong kind
        (also a ``ValueError``).
      ValueError: at construction, for an invalid argument, e.g. ``optimistic_adam(b1=1.2): b1 must be in
        [0, 1)``.

    Warns:
      DeprecationWarning: always, as Optax 0.2.8 does (this interface is deprecated there in favour of
        ``optimistic_adam_v2``, and gradtx follows Optax's names).

    Examples:
      >>> import warnings
      >>> import gradtx
      >>> with warnings.catch_warnings(record=True) as caught:
      ...     warnings.simplefilter("always")
      ...     opt = gradtx.optimistic_adam(learning_rate=0.1)
      >>> print(caught[0].category.__name__)
      DeprecationWarning
      >>> import jax, jax.numpy as jnp
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> print(gradtx.apply_updates(params, updates)["w"])  # NAdam's first step, as optimistic_adam_v2's
      [ 0.85263 -1.85263 ]
    """
    warnings.warn(
        "`optimistic_adam` is deprecated (as in Optax), please use `optimistic_adam_v2` instead: "
        "optimistic_adam(lr, optimism) == optimistic_adam_v2(1.0, alpha=lr, beta=optimism)",
        DeprecationWarning,
        stacklevel=3,  # the caller of the recipe (@recipe adds a frame)
    )
    if callable(learning_rate):
        fail("optimistic_adam", "learning_rate", learning_rate,
             "must be a number (for a schedule use optimistic_adam_v2)", InvalidType)
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_optimistic_gradient(learning_rate, learning_rate if optimism is None else optimism),
        scale_by_learning_rate(1.0),
    )


@recipe
def optimistic_adam_v2(
    learning_rate: ScalarOrSchedule,
    *,
    alpha: Scalar = 1.0,
    beta: Scalar = 1.0,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-08,
    eps_root: Scalar = 0.0,
    mu_dtype: DTypeLike | None = None,
    nesterov: bool = True,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """Optimistic Adam with a learning rate: ``u_k = -lr_k ((alpha + beta) r_k - beta r_{k-1})``.

    Daskalakis, Ilyas, Syrgkanis & Zeng 2018, "Training GANs with Optimism", ICLR, arXiv 1711.00141;
    Mokhtari, Ozdaglar & Pattathil 2019, arXiv 1901.08511 for ``alpha``/``beta``. ``r_k`` is Adam's
    direction (NAdam's with ``nesterov``, the default; see :func:`adam`) and ``r_0 := r_1``, so the first
    step is ``-lr alpha r_1``. ``learning_rate`` may be a schedule.

    Chain: ``scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=..., nu_dtype=...)`` ->
    ``scale_by_optimistic_gradient(alpha, beta)`` -> ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count
        (see ``gradtx.schedules``). Required.
      alpha: keyword only; the weight of the current direction, a finite number. Default 1.0.
      beta: keyword only; the weight of the direction's change (the optimism), a finite number. Default 1.0.
      b1: keyword only; the decay of Adam's first moment, in [0, 1). Default 0.9.
      b2: keyword only; the decay of Adam's second moment, in [0, 1). Default 0.999.
      eps: keyword only; added to Adam's denominator outside the square root, >= 0. Default 1e-8.
      eps_root: keyword only; added inside the square root, >= 0. Default 0.0.
      mu_dtype: keyword only; the dtype of the first moment, a floating dtype, or None. Default None.
      nesterov: keyword only; use NAdam's first moment. Default True.
      nu_dtype: keyword only; the dtype of the second moment, a real floating dtype, or None. Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByAdamState(count, mu, nu),
      ScaleByOptimisticGradientState(is_initial_step, previous_gradient), <learning-rate state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``optimistic_adam_v2(b2=1.0): b2 must be in
        [0, 1)``.
      TypeError: for an argument of the wrong kind, e.g. ``optimistic_adam_v2(alpha=None): alpha must be a
        finite real number, not None`` (also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.optimistic_adam_v2(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # NAdam's first step
      [ 0.85263 -1.85263 ]
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_optimistic_gradient(alpha, beta),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def novograd(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.25,
    eps: Scalar = 1e-6,
    eps_root: Scalar = 0.0,
    weight_decay: Scalar = 0.0,
) -> chain:
    """NovoGrad: Adam-like with one second moment per layer (leaf) and the weight decay inside the momentum.

    Ginsburg, Castonguay, Hrinchuk, Kuchaiev, Lavrukhin, Leary, Li, Nguyen, Zhang & Cohen 2019, "Stochastic
    Gradient Methods with Layer-wise Adaptive Moments for Training of Deep Networks", arXiv 1905.11286,
    Algorithm 1. Per leaf ``l``, with one scalar second moment ``v^l``::

        v^l_1 = ||g^l_1||^2,     v^l_k = b2 v^l_{k-1} + (1 - b2) ||g^l_k||^2
        m^l_k = b1 m^l_{k-1} + g^l_k / (sqrt(v^l_k + eps_root) + eps) + weight_decay p^l     (m^l_0 = 0)
        u_k   = -lr_k m_k

    The first moment has no ``(1 - b1)`` factor, as in the paper. ``update`` needs ``params``.

    Chain: ``scale_by_novograd(b1, b2, eps, eps_root, weight_decay)`` ->
    ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count
        (see ``gradtx.schedules``). Required.
      b1: the decay of the first moment, in [0, 1]. Default 0.9.
      b2: the decay of the per-layer second moment, in [0, 1]. Default 0.25.
      eps: added to the denominator outside the square root, >= 0. Default 1e-6.
      eps_root: added inside the square root, >= 0. Default 0.0.
      weight_decay: the decay rate inside the moment, a finite number (not a schedule). Default 0.0.

    Returns:
      A ``chain`` whose state is ``(ScaleByNovogradState(count, mu, nu), <learning-rate state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``novograd(b2=1.5): b2 must be in [0, 1]``.
      TypeError: for an argument of the wrong kind, e.g. ``novograd(weight_decay=None): weight_decay must be
        a finite real number, not None`` (also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.novograd(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # -lr * g / ||g||, ||g|| = sqrt(20)
      [ 0.95528 -1.91056 ]
    """
    return chain(scale_by_novograd(b1, b2, eps, eps_root, weight_decay), scale_by_learning_rate(learning_rate))


@recipe
def polyak_sgd(
    max_learning_rate: Scalar = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: Scalar = 0.0,
    eps: Scalar = 0.0,
    variant: Literal["sps", "sps+"] = "sps",
) -> chain:
    """SGD with Polyak's step size, the loss gap over the squared gradient norm.

    Loizou, Vaswani, Laradji & Lacoste-Julien 2021, "Stochastic Polyak Step-size for SGD: An Adaptive
    Learning Rate for Fast Convergence", AISTATS, arXiv 2002.10542 (SPS_max with ``c = 1``)::

        u = -s_k * min((f - f_min) / (||g||^2 + eps), max_learning_rate) * g

    with ``s_k = scaling`` (a number or a schedule), ``f`` the loss, passed as
    ``update(grads, state, params, value=loss)`` (``update`` raises ``ValueError`` without it), and
    ``||g||`` the norm of the whole gradient tree. ``variant='sps+'`` uses ``max(f - f_min, 0)`` (Garrigos
    et al. 2023, arXiv 2307.14528); with ``'sps'`` a loss below ``f_min`` gives a step uphill.

    Difference from Optax 0.2.8 when ``scaling != 1``: Optax documents this formula but applies ``scaling``
    *before* the Polyak step (``chain(sgd(scaling), scale_by_polyak(...))``), which gives
    ``-min((f - f_min) / (s ||g||^2 + eps / s), s * max_learning_rate) * g``: an uncapped step is divided
    by ``s``. gradtx implements the documented formula. With ``scaling=1`` (the default) they agree.

    Chain: ``scale_by_polyak(f_min, max_learning_rate, eps, variant)`` ->
    ``scale_by_learning_rate(scaling)``.

    Args:
      max_learning_rate: the cap on the Polyak step size, > 0. Default 1.0.
      scaling: the factor ``s_k`` of the whole step, a finite number or a schedule ``count -> s`` of the
        0-based step count. Default 1.0.
      f_min: a lower bound on the loss (0 for a model that can fit the data exactly), a finite number.
        Default 0.0.
      eps: added to ``||g||^2``, >= 0. Default 0.0.
      variant: ``"sps"`` or ``"sps+"`` (the positive part of the loss gap). Default ``"sps"``.

    Returns:
      A ``chain`` whose state is ``(EmptyState(), <scaling state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``polyak_sgd(max_learning_rate=0.0):
        max_learning_rate must be > 0`` or ``polyak_sgd(variant='sgd'): variant must be one of 'sps',
        'sps+'``; in ``update``, when ``value`` is not given.
      TypeError: for an argument of the wrong kind, e.g. ``polyak_sgd(f_min=None): f_min must be a finite
        real number, not None`` (also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> loss = lambda p: jnp.sum(p["w"] ** 2)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.polyak_sgd()
      >>> state = opt.init(params)
      >>> value, grads = jax.value_and_grad(loss)(params)  # 5 and [2, -4]
      >>> updates, state = opt.update(grads, state, params, value=value)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # step size (5 - 0) / 20 = 0.25
      [ 0.5 -1. ]
    """
    return chain(scale_by_polyak(f_min, max_learning_rate, eps, variant), scale_by_learning_rate(scaling))
