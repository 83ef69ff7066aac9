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

from typing import cast

from jax.typing import DTypeLike

from gradtx.base import MaskOrFn, Scalar, ScalarOrSchedule, identity
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
def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: Scalar | None = None,
    nesterov: bool = False,
    accumulator_dtype: DTypeLike | None = None,
) -> chain:
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    Without momentum ``u_k = -lr_k g_k``. With ``momentum = mu`` (Polyak 1964, "Some methods of speeding up
    the convergence of iteration methods", heavy ball) the trace ``t_k = g_k + mu t_{k-1}`` (``t_0 = 0``)
    replaces the gradient: ``u_k = -lr_k t_k``; with ``nesterov`` (Sutskever, Martens, Dahl & Hinton 2013,
    "On the importance of initialization and momentum in deep learning", ICML) ``u_k = -lr_k (g_k + mu
    t_k)``. As in Optax (and PyTorch) the trace accumulates raw gradients and the learning rate multiplies
    it, so a changing learning rate acts at once rather than through the trace.

    Chain: ``trace(momentum, nesterov, accumulator_dtype)`` (``identity()`` without momentum) ->
    ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count
        (see ``gradtx.schedules``). Required.
      momentum: the momentum decay ``mu``, in [0, 1], or None for plain SGD (then ``nesterov`` and
        ``accumulator_dtype`` are checked but unused). Default None.
      nesterov: use Nesterov's momentum instead of the heavy ball. Default False.
      accumulator_dtype: the dtype the trace is stored in, a floating dtype (``jnp.bfloat16`` halves its
        memory), or None for the parameters' dtype. Default None.

    Returns:
      A ``chain`` whose state is ``(TraceState(trace), <learning-rate state>)`` (``EmptyState()`` in place of
      the trace without momentum; the learning-rate block's state is ``EmptyState()`` for a number and
      ``ScaleByScheduleState(count)`` for a schedule).

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``sgd(momentum=1.5): momentum was given to
        trace as decay: decay must be in [0, 1]`` or ``sgd(learning_rate=nan): learning_rate must be finite``.
      TypeError: for an argument of the wrong kind, e.g. ``sgd(nesterov=1.0): nesterov must be True or False,
        not float`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.sgd(learning_rate=0.1, momentum=0.9)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])
      [ 0.8 -1.6]
    """
    if momentum is None:  # the options of the momentum block that is not built: checked all the same
        _FLAG("sgd", "nesterov", nesterov)
        _DTYPE("sgd", "accumulator_dtype", accumulator_dtype)
    return chain(
        trace(momentum, nesterov, accumulator_dtype) if momentum is not None else identity(),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def adagrad(learning_rate: ScalarOrSchedule, initial_accumulator_value: Scalar = 0.1, eps: Scalar = 1e-7) -> chain:
    """Adagrad: divide by the root of the sum of all past squared gradients.

    Duchi, Hazan & Singer 2011, "Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization", JMLR 12 (the diagonal version)::

        s_k = s_{k-1} + g_k^2        (s_0 = initial_accumulator_value)
        u_k = -lr_k g_k / sqrt(s_k + eps)

    Each coordinate's step shrinks as its squared gradients accumulate. As in Optax, ``eps`` sits inside the
    square root (the paper has ``delta`` outside it); a coordinate whose sum is 0 gets a 0 update.

    Chain: ``scale_by_rss(initial_accumulator_value, eps)`` -> ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count.
        Required.
      initial_accumulator_value: the starting sum of squares ``s_0``, >= 0. Default 0.1.
      eps: added to the sum inside the square root, >= 0. Default 1e-7.

    Returns:
      A ``chain`` whose state is ``(ScaleByRssState(sum_of_squares), <learning-rate state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``adagrad(eps=-1.0): eps must be >= 0``.
      TypeError: for an argument of the wrong kind, e.g. ``adagrad(eps=None): eps must be a real number >= 0,
        not None`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.adagrad(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # each coordinate moved by about lr = 0.1
      [ 0.9012 -1.9003 ]
    """
    return chain(scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate))


@recipe
def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: Scalar | None = 0.9,
    eps: Scalar = 1e-8,
    initial_scale: Scalar = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: Scalar | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
    *,
    init_from_first: bool = False,
) -> chain:
    """RMSProp, centred or not, with optional momentum.

    Tieleman & Hinton 2012, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine Learning;
    centred: Graves 2013, "Generating Sequences With Recurrent Neural Networks", arXiv 1308.0850::

        nu_k = decay nu_{k-1} + (1 - decay) g_k^2            (nu_0 = initial_scale)
        u_k  = -lr_k g_k / sqrt(nu_k + eps)                  (eps_in_sqrt=True)
        u_k  = -lr_k g_k / (sqrt(nu_k) + eps)                (eps_in_sqrt=False)

    ``centered`` divides by the standard deviation ``sqrt(nu_k - mu_k^2 + eps)`` instead, ``mu_k`` the same
    average of ``g``; ``bias_correction`` uses ``nu_k / (1 - decay^k)``. Momentum is applied *after* the
    learning rate, as in Optax: ``t_k = u_k + momentum t_{k-1}``. gradtx's additions: ``decay=None`` is the
    lecture's root mean square of *all* past gradients (``nu_k = mean(g_1^2 .. g_k^2)``), and
    ``init_from_first=True`` starts from ``nu_1 = g_1^2`` (the lecture's ``sigma_0 = |g_0|``).

    Chain: ``scale_by_rms`` (``scale_by_stddev`` when ``centered``) -> ``scale_by_learning_rate`` ->
    ``trace(momentum, nesterov)`` (``identity()`` without momentum).

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count.
        Required.
      decay: the decay of the average of squared gradients, in [0, 1], or None for the equal-weight mean of
        all past squares (not with ``centered``). Default 0.9.
      eps: the term that keeps the denominator away from 0, >= 0. Default 1e-8.
      initial_scale: the starting average ``nu_0``, >= 0. Default 0.0.
      eps_in_sqrt: add ``eps`` inside the square root (True) or outside it (False). Default True.
      centered: divide by the running standard deviation instead of the root mean square (Graves 2013).
        Default False.
      momentum: the momentum decay, in [0, 1], or None for no momentum. Default None.
      nesterov: Nesterov's momentum (used only with ``momentum``). Default False.
      bias_correction: divide the averages by ``1 - decay^k``, as Adam does. Default False.
      init_from_first: keyword only; start the average from the first squared gradient (not with
        ``centered``). Default False.

    Returns:
      A ``chain`` whose state is a 3-tuple: ``ScaleByRmsState(nu)`` (``ScaleByRStdDevState(mu, nu)`` when
      centred), the learning-rate block's state, and ``TraceState(trace)`` (``EmptyState()`` without momentum).

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``rmsprop(decay=1.5): decay must be in [0,
        1]``, or for ``centered=True`` with ``decay=None`` or ``init_from_first=True``
        (``rmsprop(centered=True): centered is not available with decay=None``).
      TypeError: for an argument of the wrong kind, e.g. ``rmsprop(centered=None): centered must be True or
        False, not None`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.rmsprop(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # each step is lr / sqrt(1 - decay) = 0.316 on the first step
      [ 0.6838 -1.6838]
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
        scale_by_stddev(cast(Scalar, decay), eps, initial_scale, eps_in_sqrt, bias_correction)  # not None: checked
        if centered
        else scale_by_rms(decay, eps, initial_scale, eps_in_sqrt, bias_correction, init_from_first=init_from_first),
        scale_by_learning_rate(learning_rate),
        trace(momentum, nesterov) if momentum is not None else identity(),
    )


@recipe
def adam(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-8,
    eps_root: Scalar = 0.0,
    mu_dtype: DTypeLike | None = None,
    *,
    nesterov: bool = False,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """Adam: RMSProp + momentum + bias correction, then the learning rate.

    Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", ICLR, arXiv 1412.6980, Algorithm 1::

        m_k = b1 m_{k-1} + (1 - b1) g_k,        m_hat = m_k / (1 - b1^k)
        v_k = b2 v_{k-1} + (1 - b2) g_k^2,      v_hat = v_k / (1 - b2^k)
        u_k = -lr_k m_hat / (sqrt(v_hat + eps_root) + eps)

    with ``m_0 = v_0 = 0`` and ``k`` the 1-based step. With ``nesterov`` (NAdam, Dozat 2016, see
    :func:`nadam`) ``m_hat = b1 m_k / (1 - b1^(k+1)) + (1 - b1) g_k / (1 - b1^k)``. The first step moves
    every coordinate by about ``lr`` against the sign of its gradient. Same formula, defaults and state
    layout as ``optax.adam``; ``nu_dtype`` is gradtx's.

    Chain: ``scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype)`` ->
    ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count
        (see ``gradtx.schedules``). Required.
      b1: the decay of the first moment (the average of gradients), in [0, 1). Default 0.9.
      b2: the decay of the second moment (the average of squared gradients), in [0, 1). Default 0.999.
      eps: added to the denominator outside the square root, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0 (a positive value keeps gradients *through* the update
        finite, e.g. in meta-learning). Default 0.0.
      mu_dtype: the dtype the first moment is stored in, a floating dtype (``jnp.bfloat16`` halves its
        memory), or None for the parameters' dtype. Default None.
      nesterov: keyword only; use the Nesterov first moment (NAdam). Default False.
      nu_dtype: keyword only; the dtype of the second moment, a real floating dtype, or None for the
        parameters' (real) dtype. Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByAdamState(count, mu, nu), <learning-rate state>)``; the
      learning-rate block's state is ``EmptyState()`` for a number, ``ScaleByScheduleState(count)`` for a
      schedule.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``adam(b1=1.2): b1 must be in [0, 1)`` or
        ``adam(mu_dtype=<class 'jax.numpy.int32'>): mu_dtype must be None or a floating dtype (e.g.
        jnp.bfloat16)``.
      TypeError: for an argument of the wrong kind, e.g. ``adam(b1=None): b1 must be a real number in [0, 1),
        not None`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.adam(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # the first step is -lr * sign(g)
      [ 0.9 -1.9]
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def adamw(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-8,
    eps_root: Scalar = 0.0,
    mu_dtype: DTypeLike | None = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn = None,
    *,
    nesterov: bool = False,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """AdamW: Adam with weight decay decoupled from the adaptive scaling.

    Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", ICLR, arXiv 1711.05101::

        u_k = -lr_k (m_hat / (sqrt(v_hat + eps_root) + eps) + weight_decay p_k)

    with ``m_hat`` and ``v_hat`` Adam's (see :func:`adam`). The decay is added *after* Adam's scaling, so
    it is not divided by ``sqrt(v_hat)`` as an L2 term in the loss would be. As in Optax and PyTorch, it is
    multiplied by the learning rate (the paper multiplies it by the schedule multiplier only). ``update``
    needs ``params``.

    Chain: ``scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype)`` ->
    ``add_decayed_weights(weight_decay, mask)`` -> ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count.
        Required.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the denominator outside the square root, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0. Default 0.0.
      mu_dtype: the dtype of the first moment, a floating dtype, or None for the parameters' dtype.
        Default None.
      weight_decay: the decay rate, a finite number or a schedule of the step count. Default 1e-4.
      mask: which parameters decay: None (all), a pytree of booleans shaped like the parameters (or a
        prefix of them), or a function ``params -> such a pytree``. Adam's scaling applies to all.
        Default None.
      nesterov: keyword only; use the Nesterov first moment (NAdamW, :func:`nadamw`). Default False.
      nu_dtype: keyword only; the dtype of the second moment, a real floating dtype, or None. Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByAdamState(count, mu, nu), <weight-decay state>, <learning-rate
      state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``adamw(b2=1.0): b2 must be in [0, 1)`` or
        ``adamw(weight_decay=nan): weight_decay must be finite``.
      TypeError: for an argument of the wrong kind, e.g. ``adamw(nesterov=None): nesterov must be True or
        False, not None`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.adamw(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # Adam's step, plus lr * 1e-4 * w of decay
      [ 0.89999 -1.89998 ]
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def nadam(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-8,
    eps_root: Scalar = 0.0,
    mu_dtype: DTypeLike | None = None,
    *,
    nesterov: bool = True,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """NAdam: Adam with a Nesterov look-ahead first moment.

    Dozat 2016, "Incorporating Nesterov Momentum into Adam", ICLR workshop. Adam (see :func:`adam`) with
    the bias-corrected first moment replaced by its look-ahead::

        m_hat = b1 m_k / (1 - b1^(k+1)) + (1 - b1) g_k / (1 - b1^k)
        u_k   = -lr_k m_hat / (sqrt(v_hat + eps_root) + eps)

    This is Optax's form of NAdam (``optax.nadam``). ``nadam(..., nesterov=False)`` is :func:`adam`.

    Chain: ``scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=True, nu_dtype=nu_dtype)`` ->
    ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count.
        Required.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the denominator outside the square root, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0. Default 0.0.
      mu_dtype: the dtype of the first moment, a floating dtype, or None for the parameters' dtype.
        Default None.
      nesterov: keyword only; the look-ahead first moment (False gives plain Adam). Default True.
      nu_dtype: keyword only; the dtype of the second moment, a real floating dtype, or None. Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByAdamState(count, mu, nu), <learning-rate state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``nadam(b1=1.2): b1 must be in [0, 1)``.
      TypeError: for an argument of the wrong kind, e.g. ``nadam(eps=None): eps must be a real number >= 0,
        not None`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.nadam(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # a larger first step than Adam's 0.1
      [ 0.85263 -1.85263 ]
    """
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype)


@recipe
def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-8,
    eps_root: Scalar = 0.0,
    mu_dtype: DTypeLike | None = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn = None,
    *,
    nesterov: bool = True,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """NAdamW: NAdam with decoupled weight decay.

    Dozat 2016, "Incorporating Nesterov Momentum into Adam", ICLR workshop; Loshchilov & Hutter 2019,
    "Decoupled Weight Decay Regularization", ICLR. :func:`adamw` with NAdam's look-ahead first moment (see
    :func:`nadam`)::

        u_k = -lr_k (m_hat / (sqrt(v_hat + eps_root) + eps) + weight_decay p_k)

    The weight decay is multiplied by the learning rate, as in ``optax.nadamw``. ``update`` needs ``params``.

    Chain: ``scale_by_adam(..., nesterov=True)`` -> ``add_decayed_weights(weight_decay, mask)`` ->
    ``scale_by_learning_rate(learning_rate)``.

    Args:
      learning_rate: the step size: a finite number, or a schedule ``count -> lr`` of the 0-based step count.
        Required.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the denominator outside the square root, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0. Default 0.0.
      mu_dtype: the dtype of the first moment, a floating dtype, or None for the parameters' dtype.
        Default None.
      weight_decay: the decay rate, a finite number or a schedule of the step count. Default 1e-4.
      mask: which parameters decay: None (all), a pytree of booleans shaped like the parameters (or a
        prefix of them), or a function ``params -> such a pytree``. Default None.
      nesterov: keyword only; the look-ahead first moment (False gives :func:`adamw`). Default True.
      nu_dtype: keyword only; the dtype of the second moment, a real floating dtype, or None. Default None.

    Returns:
      A ``chain`` whose state is ``(ScaleByAdamState(count, mu, nu), <weight-decay state>, <learning-rate
      state>)``.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``nadamw(b2=1.0): b2 must be in [0, 1)``.
      TypeError: for an argument of the wrong kind, e.g. ``nadamw(nesterov=1): nesterov must be True or False,
        not int`` (the error is also a ``ValueError``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.nadamw(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)  # 2 w = [2, -4]
      >>> updates, state = opt.update(grads, state, params)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])
      [ 0.85262 -1.85261 ]
    """
    return adamw(
        learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask, nesterov=nesterov, nu_dtype=nu_dtype
    )
