"""The Adam family as named optimizers: each is one ``chain`` of blocks (``gradtx.transforms.adam_family``).

=========  =========================================================================================
adamax     scale_by_adamax -> scale_by_learning_rate                          (Kingma & Ba 2015, §7.1)
adamaxw    scale_by_adamax -> add_decayed_weights -> scale_by_learning_rate   (+ Loshchilov & Hutter 2019)
amsgrad    scale_by_amsgrad -> scale_by_learning_rate                         (Reddi et al. 2018)
adabelief  scale_by_belief -> scale_by_learning_rate                          (Zhuang et al. 2020)
yogi       scale_by_yogi -> scale_by_learning_rate                            (Zaheer et al. 2018)
radam      scale_by_radam -> scale_by_learning_rate                           (Liu et al. 2020)
adan       scale_by_adan -> add_decayed_weights -> scale_by_learning_rate     (Xie et al. 2022)
=========  =========================================================================================

``learning_rate`` (and ``weight_decay``) is a number or a schedule of the 0-based step count. ``mu_dtype``
(where Optax has none) and ``nu_dtype`` are gradtx's keyword-only state dtypes, passed to the block. Weight decay is
decoupled and multiplied by the learning rate, as in Optax: ``u = -lr (direction + wd * params)``. Adan's
paper applies it proximally, ``theta / (1 + wd lr)``; Optax and gradtx add it like AdamW.
"""

from __future__ import annotations

from typing import Any

from gradtx.combine import chain
from gradtx.fields import recipe
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_family import (
    scale_by_adamax,
    scale_by_adan,
    scale_by_amsgrad,
    scale_by_belief,
    scale_by_radam,
    scale_by_yogi,
)

__all__ = ["adabelief", "adamax", "adamaxw", "adan", "amsgrad", "radam", "yogi"]


@recipe
def adamax(
    learning_rate: Any, b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8, *, mu_dtype: Any = None, nu_dtype: Any = None
) -> chain:
    """Adamax (Kingma & Ba 2015, §7.1): Adam with the infinity norm of past gradients as the scale."""
    return chain(
        scale_by_adamax(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype), scale_by_learning_rate(learning_rate)
    )


@recipe
def adamaxw(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-4,
    mask: Any = None,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> chain:
    """Adamax with decoupled weight decay (Loshchilov & Hutter 2019), scaled by the learning rate."""
    return chain(
        scale_by_adamax(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def amsgrad(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_dtype: Any = None,
) -> chain:
    """AMSGrad (Reddi, Kale & Kumar 2018): Adam dividing by the running maximum of the second moment.

    Both bias corrections off give the paper's algorithm; on (default) is Optax's variant.
    """
    return chain(
        scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype, bias_correction_mu, bias_correction_nu, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def adabelief(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    eps_root: Any = 1e-16,
    *,
    nesterov: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> chain:
    """AdaBelief (Zhuang et al. 2020): Adam whose second moment is that of ``g - m``, the prediction error.

    Optax's defaults ``eps = eps_root = 1e-16`` (the paper: ``eps=1e-8``, ``eps_root=0``).
    """
    return chain(
        scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def yogi(
    learning_rate: Any, b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-3, *, mu_dtype: Any = None, nu_dtype: Any = None
) -> chain:
    """Yogi (Zaheer et al. 2018): an additive, sign-controlled second moment (moments start at 1e-6)."""
    return chain(
        scale_by_yogi(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype), scale_by_learning_rate(learning_rate)
    )


@recipe
def radam(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    threshold: Any = 5.0,
    *,
    nesterov: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> chain:
    """Rectified Adam (Liu et al. 2020): SGD with momentum while ``rho_k < threshold``, then rectified Adam."""
    return chain(
        scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def adan(
    learning_rate: Any,
    b1: Any = 0.98,
    b2: Any = 0.92,
    b3: Any = 0.99,
    eps: Any = 1e-8,
    eps_root: Any = 1e-8,
    weight_decay: Any = 0.0,
    mask: Any = None,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> chain:
    """Adan (Xie et al. 2022), Optax's convention (see ``scale_by_adan``), with decoupled weight decay.

    Like Optax, the chain always holds ``add_decayed_weights``, so ``update`` needs ``params`` even with the
    default ``weight_decay=0``; note ``eps_root=1e-8`` here against ``0`` in ``scale_by_adan``.
    """
    return chain(
        scale_by_adan(b1, b2, b3, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
