"""Named optimizers: each is one ``chain`` of blocks, the lecture's summary made literal.

    update = -lr(t) * m(t) / sigma(t)

=========  =====================================================================================
sgd        [trace(momentum)] -> scale_by_learning_rate
adagrad    scale_by_rss -> scale_by_learning_rate                                (Duchi et al. 2011)
rmsprop    scale_by_rms | scale_by_stddev -> scale_by_learning_rate -> [trace]  (Tieleman & Hinton 2012)
adam       scale_by_adam -> scale_by_learning_rate                              (Kingma & Ba 2015)
adamw      scale_by_adam -> add_decayed_weights -> scale_by_learning_rate       (Loshchilov & Hutter 2019)
nadam(w)   adam(w) with the Nesterov first moment                               (Dozat 2016)
=========  =====================================================================================

``learning_rate`` is a number or a schedule (``gradtx.schedules``) of the 0-based step count. The lecture's
root-mean-square optimizer is ``rmsprop(lr, decay=None)``; its RMSProp (``sigma_0 = |g_0|``) is
``rmsprop(lr, decay, init_from_first=True)``.
"""

from __future__ import annotations

from typing import Any

from gradtx.base import identity
from gradtx.combine import chain
from gradtx.fields import Check, recipe
from gradtx.transforms import (
    add_decayed_weights,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
    trace,
)

__all__ = ["adagrad", "adam", "adamw", "nadam", "nadamw", "rmsprop", "sgd"]

# Checks of the recipe arguments that choose blocks rather than reach one.
_FLAG, _DTYPE = Check("flag"), Check("dtype", optional=True)


@recipe
def sgd(learning_rate: Any, momentum: Any = None, nesterov: bool = False, accumulator_dtype: Any = None) -> chain:
    """Stochastic gradient descent, with optional (Nesterov) momentum (Polyak 1964; Sutskever et al. 2013)."""
    if momentum is None:  # the options of the momentum block that is not built: checked all the same
        _FLAG("sgd", "nesterov", nesterov)
        _DTYPE("sgd", "accumulator_dtype", accumulator_dtype)
    return chain(
        trace(momentum, nesterov, accumulator_dtype) if momentum is not None else identity(),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def adagrad(learning_rate: Any, initial_accumulator_value: Any = 0.1, eps: Any = 1e-7) -> chain:
    """Adagrad (Duchi, Hazan & Singer 2011): divide by the root of the sum of all past squared gradients."""
    return chain(scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate))


@recipe
def rmsprop(
    learning_rate: Any,
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: Any = None,
    nesterov: bool = False,
    bias_correction: bool = False,
    *,
    init_from_first: bool = False,
) -> chain:
    """RMSProp (Tieleman & Hinton 2012), centred (Graves 2013) or not, with optional momentum.

    ``decay=None`` is the lecture's root mean square of all past gradients; ``init_from_first=True`` starts
    from ``sigma_0 = |g_0|`` as in the lecture's RMSProp. Momentum is applied after the learning rate.
    """
    _FLAG("rmsprop", "centered", centered)
    if centered:  # the options of the blocks that are not built: checked all the same
        _FLAG("rmsprop", "init_from_first", init_from_first)
    if momentum is None:
        _FLAG("rmsprop", "nesterov", nesterov)
    if centered and (decay is None or init_from_first):
        what = "decay=None" if decay is None else "init_from_first=True"
        raise ValueError(f"rmsprop(centered=True): centered is not available with {what}")
    return chain(
        scale_by_stddev(decay, eps, initial_scale, eps_in_sqrt, bias_correction)
        if centered
        else scale_by_rms(decay, eps, initial_scale, eps_in_sqrt, bias_correction, init_from_first=init_from_first),
        scale_by_learning_rate(learning_rate),
        trace(momentum, nesterov) if momentum is not None else identity(),
    )


@recipe
def adam(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> chain:
    """Adam (Kingma & Ba 2015): RMSProp + momentum + bias correction, then the learning rate.

    ``mu_dtype`` and ``nu_dtype`` store the two moments in other dtypes (see ``scale_by_adam``)."""
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def adamw(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    weight_decay: Any = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> chain:
    """AdamW (Loshchilov & Hutter 2019): Adam with weight decay decoupled from the adaptive scaling."""
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def nadam(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> chain:
    """NAdam (Dozat 2016): Adam with a Nesterov look-ahead first moment."""
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype)


@recipe
def nadamw(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    weight_decay: Any = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> chain:
    """NAdamW: NAdam with decoupled weight decay (Dozat 2016; Loshchilov & Hutter 2019)."""
    return adamw(
        learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask, nesterov=nesterov, nu_dtype=nu_dtype
    )
