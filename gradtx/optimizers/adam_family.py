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

from jax.typing import DTypeLike

from gradtx.base import MaskOrFn, Scalar, ScalarOrSchedule
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
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-8,
    *,
    mu_dtype: DTypeLike | None = None,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """Adamax: Adam with the infinity norm of past gradients as the scale.

    Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", ICLR, arXiv 1412.6980, §7.1,
    Algorithm 2::

        m_k = b1 m_{k-1} + (1 - b1) g_k
        v_k = max(b2 v_{k-1}, |g_k| + eps)
        u_k = -lr_k m_k / ((1 - b1^k) v_k)

    As in Optax, ``eps`` sits inside the maximum (the paper has none); ``v`` needs no bias correction.

    Chain: ``scale_by_adamax(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)`` ->
    ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count
        (see ``gradtx.schedules``). Required.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the infinity norm, in [0, 1]. Default 0.999.
      eps: added to ``|g|`` inside the maximum, >= 0. Default 1e-8.
      mu_dtype: keyword only; the dtype of the first moment, a floating dtype, or None for the parameters'
        dtype. Default None.
      nu_dtype: keyword only; the dtype of the norm ``v``, a real floating dtype, or None. Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByAdamState(count, mu, nu), <learning-rate state>)``; the
      learning-rate block's state is ``EmptyState()`` for a number, ``ScaleByScheduleState(count)`` for a
      schedule.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``adamax(b2=1.5): b2 must be in [0, 1]``.
      TypeError: for an argument of the wrong kind, e.g. ``adamax(b1=None): b1 must be a real number in [0,
        1), not None`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.adamax(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # the first step is -lr * sign(g)
      [ 0.9 -1.9]
    """
    return chain(
        scale_by_adamax(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype), scale_by_learning_rate(learning_rate)
    )


@recipe
def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn = None,
    *,
    mu_dtype: DTypeLike | None = None,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """Adamax with decoupled weight decay, scaled by the learning rate.

    Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", ICLR, §7.1; Loshchilov & Hutter 2019,
    "Decoupled Weight Decay Regularization", ICLR::

        u_k = -lr_k (m_k / ((1 - b1^k) v_k) + weight_decay p_k)

    with ``m_k`` and ``v_k`` Adamax's (see :func:`adamax`). As in ``optax.adamaxw`` the decay is multiplied
    by the learning rate. ``update`` needs ``params``.

    Chain: ``scale_by_adamax(b1, b2, eps, ...)`` -> ``add_decayed_weights(weight_decay, mask)`` ->
    ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count.
        Required.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the infinity norm, in [0, 1]. Default 0.999.
      eps: added to ``|g|`` inside the maximum, >= 0. Default 1e-8.
      weight_decay: the decay rate, a finite number or a schedule of the step count. Default 1e-4.
      mask: which parameters decay: None (all), a pytree of booleans shaped like the parameters (or a
        prefix of them), or a function ``params -> such a pytree``. Default None.
      mu_dtype: keyword only; the dtype of the first moment, a floating dtype, or None. Default None.
      nu_dtype: keyword only; the dtype of the norm ``v``, a real floating dtype, or None. Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByAdamState(count, mu, nu), <weight-decay state>, <learning-rate
      state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``adamaxw(b1=1.0): b1 must be in [0, 1)``
        or ``adamaxw(weight_decay=nan): weight_decay must be finite``.
      TypeError: for an argument of the wrong kind, e.g. ``adamaxw(eps=None): eps must be a real number >= 0,
        not None`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.adamaxw(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # Adamax's step, plus lr * 1e-4 * w of decay
      [ 0.89999 -1.89998 ]
    """
    return chain(
        scale_by_adamax(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-8,
    eps_root: Scalar = 0.0,
    mu_dtype: DTypeLike | None = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """AMSGrad: Adam dividing by the running maximum of the second moment.

    Reddi, Kale & Kumar 2018, "On the Convergence of Adam and Beyond", ICLR, Algorithm 2::

        m_k, v_k as in Adam;   vmax_k = max(vmax_{k-1}, v_hat_k)   (vmax_0 = 0)
        u_k = -lr_k m_hat_k / (sqrt(vmax_k + eps_root) + eps)

    The step size never grows because the denominator never shrinks. With both bias corrections on (the
    default, Optax's variant) ``m_hat`` and ``v_hat`` are corrected before the maximum; both off give the
    paper's ``m_k / (sqrt(max_j v_j) + eps)``.

    Chain: ``scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype, bias_correction_mu, bias_correction_nu,
    nu_dtype=nu_dtype)`` -> ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count.
        Required.
      b1: the decay of the first moment, in [0, 1) (in [0, 1] with ``bias_correction_mu=False``).
        Default 0.9.
      b2: the decay of the second moment, in [0, 1) (in [0, 1] with ``bias_correction_nu=False``).
        Default 0.999.
      eps: added to the denominator outside the square root, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0. Default 0.0.
      mu_dtype: the dtype of the first moment, a floating dtype, or None for the parameters' dtype.
        Default None.
      bias_correction_mu: divide the first moment by ``1 - b1^k``. Default True.
      bias_correction_nu: divide the second moment by ``1 - b2^k`` before the maximum. Default True.
      nu_dtype: keyword only; the dtype of the second moment and its maximum, a real floating dtype, or None.
        Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByAmsgradState(count, mu, nu, nu_max), <learning-rate state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``amsgrad(b1=1.2): b1 must be in [0, 1)``.
      TypeError: for an argument of the wrong kind, e.g. ``amsgrad(b1=None): b1 must be a finite real number,
        not None`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.amsgrad(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # the first step is Adam's, -lr * sign(g)
      [ 0.9 -1.9]
    """
    return chain(
        scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype, bias_correction_mu, bias_correction_nu, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-16,
    eps_root: Scalar = 1e-16,
    *,
    nesterov: bool = False,
    mu_dtype: DTypeLike | None = None,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """AdaBelief: Adam whose second moment is that of ``g - m``, the prediction error.

    Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris & Duncan 2020, "AdaBelief Optimizer: Adapting
    Stepsizes by the Belief in Observed Gradients", NeurIPS, arXiv 2010.07468, Algorithm 2::

        m_k = b1 m_{k-1} + (1 - b1) g_k
        s_k = b2 s_{k-1} + (1 - b2) (g_k - m_k)^2 + eps_root
        u_k = -lr_k m_hat / (sqrt(s_k / (1 - b2^k)) + eps)

    The step is large where the gradient is where the momentum expected it. Optax's defaults
    ``eps = eps_root = 1e-16`` (the paper: ``eps=1e-8``, ``eps_root=0``). ``nesterov`` uses NAdam's
    ``m_hat``.

    Chain: ``scale_by_belief(b1, b2, eps, eps_root, nesterov=..., mu_dtype=..., nu_dtype=...)`` ->
    ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count.
        Required.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment of ``g - m``, in [0, 1). Default 0.999.
      eps: added to the denominator outside the square root, >= 0. Default 1e-16.
      eps_root: added to the second moment at every step (and stored), >= 0. Default 1e-16.
      nesterov: keyword only; use the Nesterov first moment. Default False.
      mu_dtype: keyword only; the dtype of the first moment, a floating dtype, or None for the parameters'
        dtype. Default None.
      nu_dtype: keyword only; the dtype of the second moment, a real floating dtype, or None. Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByBeliefState(count, mu, nu), <learning-rate state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``adabelief(b2=1.0): b2 must be in [0, 1)``.
      TypeError: for an argument of the wrong kind, e.g. ``adabelief(eps=None): eps must be a real number >=
        0, not None`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.adabelief(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # m_hat / sqrt(s_hat) = 1 / 0.9 on the first step
      [ 0.88889 -1.88889]
    """
    return chain(
        scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def yogi(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-3,
    *,
    mu_dtype: DTypeLike | None = None,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """Yogi: an additive, sign-controlled second moment that cannot grow the step size abruptly.

    Zaheer, Reddi, Sachan, Kale & Kumar 2018, "Adaptive Methods for Nonconvex Optimization", NeurIPS,
    Algorithm 2::

        m_k = b1 m_{k-1} + (1 - b1) g_k
        v_k = v_{k-1} - (1 - b2) sign(v_{k-1} - g_k^2) g_k^2
        u_k = -lr_k m_hat / (sqrt(v_hat) + eps)

    Optax's conventions, kept: both moments start at ``1e-6`` (``scale_by_yogi``'s
    ``initial_accumulator_value``) and both are bias corrected by ``1 - b^k`` (the paper has no bias
    correction).

    Chain: ``scale_by_yogi(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)`` ->
    ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count.
        Required.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the rate of the second moment, in [0, 1). Default 0.999.
      eps: added to the denominator outside the square root, >= 0. Default 1e-3 (the paper's).
      mu_dtype: keyword only; the dtype of the first moment, a floating dtype, or None for the parameters'
        dtype. Default None.
      nu_dtype: keyword only; the dtype of the second moment, a real floating dtype, or None. Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByAdamState(count, mu, nu), <learning-rate state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``yogi(b1=1.0): b1 must be in [0, 1)``.
      TypeError: for an argument of the wrong kind, e.g. ``yogi(eps=None): eps must be a real number >= 0,
        not None`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.yogi(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # about -lr * sign(g): eps and the 1e-6 start move it a little
      [ 0.90006 -1.90003]
    """
    return chain(
        scale_by_yogi(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype), scale_by_learning_rate(learning_rate)
    )


@recipe
def radam(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-8,
    eps_root: Scalar = 0.0,
    threshold: Scalar = 5.0,
    *,
    nesterov: bool = False,
    mu_dtype: DTypeLike | None = None,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """Rectified Adam: SGD with momentum while ``rho_k < threshold``, then Adam times a variance rectifier.

    Liu, Jiang, He, Chen, Liu, Gao & Han 2020, "On the Variance of the Adaptive Learning Rate and Beyond",
    ICLR, arXiv 1908.03265, Algorithm 2. With Adam's ``m_hat``, ``v_hat`` and
    ``rho_inf = 2 / (1 - b2) - 1``, ``rho_k = rho_inf - 2 k b2^k / (1 - b2^k)``::

        u_k = -lr_k m_hat                                              if rho_k < threshold
        u_k = -lr_k r_k m_hat / (sqrt(v_hat + eps_root) + eps)          otherwise
        r_k = sqrt((rho_k - 4)(rho_k - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_k))

    Optax's conventions: the test is ``rho_k >= threshold`` with ``threshold = 5`` (the paper's
    Algorithm 2 has ``rho_k > 4``); ``eps`` outside the root. With the default ``b2`` the first 5 steps are
    SGD with momentum. ``nesterov`` uses NAdam's ``m_hat``.

    Chain: ``scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=..., mu_dtype=..., nu_dtype=...)``
    -> ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count.
        Required.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the denominator outside the square root, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0. Default 0.0.
      threshold: the ``rho_k`` from which the adaptive step is used, >= 4 (the rectifier is not real below).
        Default 5.0.
      nesterov: keyword only; use the Nesterov first moment. Default False.
      mu_dtype: keyword only; the dtype of the first moment, a floating dtype, or None for the parameters'
        dtype. Default None.
      nu_dtype: keyword only; the dtype of the second moment, a real floating dtype, or None. Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByAdamState(count, mu, nu), <learning-rate state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``radam(threshold=3): threshold must be >=
        4``.
      TypeError: for an argument of the wrong kind, e.g. ``radam(b1=None): b1 must be a real number in [0,
        1), not None`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.radam(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # rho_1 < 5: the first step is SGD's, -lr * g
      [ 0.8 -1.6 ]
    """
    return chain(
        scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def adan(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.98,
    b2: Scalar = 0.92,
    b3: Scalar = 0.99,
    eps: Scalar = 1e-8,
    eps_root: Scalar = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    *,
    mu_dtype: DTypeLike | None = None,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """Adan, adaptive Nesterov momentum, in Optax's convention, with decoupled weight decay.

    Xie, Zhou, Li, Lin & Yan 2022, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
    Models", arXiv 2208.06677, Algorithm 1. With ``d_k = g_k - g_{k-1}`` (``d_1 = 0``) and zero-initialised,
    bias-corrected moments::

        m_k = b1 m_{k-1} + (1 - b1) g_k
        v_k = b2 v_{k-1} + (1 - b2) d_k
        n_k = b3 n_{k-1} + (1 - b3) (g_k + (1 - b2) d_k)^2
        u_k = -lr_k ((m_hat + (1 - b2) v_hat) / (sqrt(n_hat + eps_root) + eps) + weight_decay p_k)

    The ``b`` are decays (the paper's ``beta = 1 - b``); see ``scale_by_adan`` for where Optax's convention
    differs from the paper. The weight decay is added like AdamW's (the paper applies it proximally,
    ``theta / (1 + wd lr)``). Like Optax, the chain always holds ``add_decayed_weights``, so ``update``
    needs ``params`` even with the default ``weight_decay=0``; note ``eps_root=1e-8`` here against ``0`` in
    ``scale_by_adan``. Real parameters only.

    Chain: ``scale_by_adan(b1, b2, b3, eps, eps_root, mu_dtype=..., nu_dtype=...)`` ->
    ``add_decayed_weights(weight_decay, mask)`` -> ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count.
        Required.
      b1: the decay of the gradient average ``m``, in [0, 1). Default 0.98.
      b2: the decay of the gradient-difference average ``v``, in [0, 1). Default 0.92.
      b3: the decay of the second moment ``n``, in [0, 1). Default 0.99.
      eps: added to the denominator outside the square root, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0. Default 1e-8.
      weight_decay: the decay rate, a finite number or a schedule of the step count. Default 0.0.
      mask: which parameters decay: None (all), a pytree of booleans shaped like the parameters (or a
        prefix of them), or a function ``params -> such a pytree``. Default None.
      mu_dtype: keyword only; the dtype of ``m`` and ``v``, a floating dtype, or None for the parameters'
        dtype. Default None.
      nu_dtype: keyword only; the dtype of ``n``, a real floating dtype, or None. Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByAdanState(m, v, n, g, t), <weight-decay state>, <learning-rate
      state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``adan(b3=1.0): b3 must be in [0, 1)``.
      TypeError: for an argument of the wrong kind, e.g. ``adan(b1=None): b1 must be a real number in [0,
        1), not None`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.adan(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # the first step is -lr * sign(g)
      [ 0.9 -1.9]
    """
    return chain(
        scale_by_adan(b1, b2, b3, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
