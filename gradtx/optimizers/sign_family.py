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
from typing import Any

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
def sign_sgd(learning_rate: Any) -> chain:
    """signSGD (Bernstein, Wang, Azizzadenesheli & Anandkumar 2018, arXiv 1802.04434): ``u = -lr sign(g)``."""
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


@recipe
def signum(learning_rate: Any, beta: Any = 0.9, accumulator_dtype: Any = None) -> chain:
    """Signum (Bernstein et al. 2018, arXiv 1802.04434): ``m_k = beta m_{k-1} + (1 - beta) g_k``, ``u = -lr sign(m_k)``.

    The average is not debiased: a positive factor does not change a sign.
    """
    return chain(
        ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
        scale_by_sign(),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def lion(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.99,
    mu_dtype: Any = None,
    weight_decay: Any = 1e-3,
    mask: Any = None,
) -> chain:
    """Lion (Chen et al. 2023, arXiv 2302.06675): ``u = -lr (sign(b1 m + (1 - b1) g) + weight_decay * p)``.

    The momentum ``m`` is the ``b2`` average of past gradients (see ``scale_by_lion``). The weight decay is
    multiplied by the learning rate, as in the paper's Program 1 and in Optax; ``mask`` selects the
    parameters it applies to. Without weight decay every coordinate moves by exactly ``lr``.
    """
    return chain(
        scale_by_lion(b1, b2, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def adadelta(
    learning_rate: Any = None,
    rho: Any = 0.9,
    eps: Any = 1e-6,
    weight_decay: Any = 0.0,
    weight_decay_mask: Any = None,
) -> chain:
    """Adadelta (Zeiler 2012, arXiv 1212.5701): ``dx_k = -RMS[dx]_{k-1} / RMS[g]_k * g_k`` (eq. 14).

    ``learning_rate=None`` (the default) means a learning rate of 1: the paper's method, which has no
    learning rate. It *descends*: a positive gradient gives a negative update. A number or a schedule
    multiplies the step (the statistics keep the unscaled step, see ``scale_by_adadelta``). The weight
    decay ``weight_decay * p`` is added to the gradient before the Adadelta scaling (coupled, as in Optax),
    on the parameters ``weight_decay_mask`` selects.

    Difference from Optax 0.2.8: Optax's ``adadelta(learning_rate=None)`` replaces the learning-rate block by
    the identity, so it drops the minus sign and moves uphill (a gradient of +1 gives +0.0032 on the first
    step). With an explicit learning rate the two agree.
    """
    return chain(
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_adadelta(rho, eps),
        scale_by_learning_rate(1.0 if learning_rate is None else learning_rate),
    )


@recipe
def rprop(
    learning_rate: Any,
    eta_minus: Any = 0.5,
    eta_plus: Any = 1.2,
    min_step_size: Any = 1e-6,
    max_step_size: Any = 50.0,
) -> chain:
    """Rprop (Riedmiller & Braun 1993; iRprop-, Igel & Huesken 2000): per-coordinate steps set by sign agreement.

    ``learning_rate`` is the initial step size of every coordinate (a number), grown by ``eta_plus`` while
    the gradient keeps its sign and shrunk by ``eta_minus`` when it flips, within ``[min_step_size,
    max_step_size]``; ``u = -step * sign(g)`` (see ``scale_by_rprop``).

    Difference from Optax 0.2.8: Optax's update lags one step (its first update is 0; Optax pull request
    #1725); this one uses the current step, as the paper does.
    """
    return chain(
        scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size),
        scale_by_learning_rate(1.0),
    )


@recipe
def optimistic_gradient_descent(learning_rate: Any, alpha: Any = 1.0, beta: Any = 1.0) -> chain:
    """Optimistic gradient descent: ``u = -lr ((alpha + beta) g_k - beta g_{k-1})``, ``g_0 := g_1``.

    Daskalakis et al. (2018, arXiv 1711.00141) with ``alpha = beta = 1``; the general form from Mokhtari et
    al. (2019, arXiv 1901.08511). ``alpha`` and ``beta`` are numbers.
    """
    return chain(scale_by_optimistic_gradient(alpha, beta), scale_by_learning_rate(learning_rate))


@recipe
def optimistic_adam(
    learning_rate: Any,
    optimism: Any = None,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-08,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> chain:
    """Optimistic Adam (Daskalakis et al. 2018, arXiv 1711.00141): ``u = -(lr r_k + optimism (r_k - r_{k-1}))``.

    ``r_k`` is Adam's direction (NAdam's with ``nesterov``, the default), ``r_0 := r_1``; ``optimism``
    defaults to ``learning_rate``. ``learning_rate`` must be a number (it is the ``alpha`` of
    ``scale_by_optimistic_gradient``); for a schedule use ``optimistic_adam_v2``, which this equals as
    ``optimistic_adam_v2(1.0, alpha=learning_rate, beta=optimism)``.

    Warns:
      DeprecationWarning: always, as Optax 0.2.8 does (this interface is deprecated there in favour of
        ``optimistic_adam_v2``, and gradtx follows Optax's names).
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
    learning_rate: Any,
    *,
    alpha: Any = 1.0,
    beta: Any = 1.0,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-08,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> chain:
    """Optimistic Adam with a learning rate: ``u = -lr ((alpha + beta) r_k - beta r_{k-1})``, ``r_0 := r_1``.

    ``r_k`` is Adam's direction (NAdam's with ``nesterov``); ``learning_rate`` may be a schedule.
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_optimistic_gradient(alpha, beta),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def novograd(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.25,
    eps: Any = 1e-6,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
) -> chain:
    """NovoGrad (Ginsburg et al. 2019, arXiv 1905.11286): Adam-like with one second moment per layer (leaf).

    ``u = -lr m_k`` with ``m_k`` of ``scale_by_novograd`` (the weight decay is inside the moment, as in the
    paper); needs ``params``. ``weight_decay`` is a number.
    """
    return chain(scale_by_novograd(b1, b2, eps, eps_root, weight_decay), scale_by_learning_rate(learning_rate))


@recipe
def polyak_sgd(
    max_learning_rate: Any = 1.0,
    scaling: Any = 1.0,
    f_min: Any = 0.0,
    eps: Any = 0.0,
    variant: str = "sps",
) -> chain:
    """SGD with Polyak's step size (Loizou et al. 2021, arXiv 2002.10542)::

        u = -s_k * min((f - f_min) / (||g||^2 + eps), max_learning_rate) * g

    with ``s_k = scaling`` (a number or a schedule) and ``f`` the loss, passed as
    ``update(grads, state, params, value=loss)``. ``variant='sps+'`` uses ``max(f - f_min, 0)``.

    Difference from Optax 0.2.8 when ``scaling != 1``: Optax documents this formula but applies ``scaling``
    *before* the Polyak step (``chain(sgd(scaling), scale_by_polyak(...))``), which gives
    ``-min((f - f_min) / (s ||g||^2 + eps / s), s * max_learning_rate) * g``: an uncapped step is divided
    by ``s``. gradtx implements the documented formula. With ``scaling=1`` (the default) they agree.
    """
    return chain(scale_by_polyak(f_min, max_learning_rate, eps, variant), scale_by_learning_rate(scaling))
