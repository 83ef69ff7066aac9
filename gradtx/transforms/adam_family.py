"""The Adam family: Adam and its variants with another denominator, another first moment, or a rectifier.

With ``k`` the 1-based step, ``m_k = b1 m_{k-1} + (1 - b1) g_k``, ``v_k = b2 v_{k-1} + (1 - b2) |g_k|^2`` and ``hat``
the bias correction ``x_hat = x_k / (1 - b^k)`` (Kingma & Ba 2015, Algorithm 1), each block returns ``u`` (no
learning rate):

    scale_by_adam:     u = m_hat / (sqrt(v_hat + eps_root) + eps)       (nesterov: NAdam's m_hat, Dozat 2016)
    scale_by_adamax:   v_k = max(b2 v_{k-1}, |g_k| + eps);             u = m_hat / v_k
    scale_by_amsgrad:  vmax_k = max(vmax_{k-1}, v_hat);                 u = m_hat / (sqrt(vmax_k + eps_root) + eps)
    scale_by_belief:   s_k = b2 s_{k-1} + (1 - b2)(g_k - m_k)^2 + eps_root;  u = m_hat / (sqrt(s_hat) + eps)
    scale_by_yogi:     v_k = v_{k-1} - (1 - b2) sign(v_{k-1} - g_k^2) g_k^2; u = m_hat / (sqrt(v_hat + eps_root) + eps)
    scale_by_radam:    u = r_k * Adam's u  if rho_k >= threshold,  else m_hat   (the rectified variance)
    scale_by_adan:     moments of g, of g_k - g_{k-1} and of the Nesterov-corrected g (three decays)

Each block states its fields, its moments and its ``direction`` (one leaf's math); the shared skeleton (``init``,
the count, the leaf-by-leaf map, storing state, casting the output) is :class:`gradtx.transforms.adam_base.AdamLike`.

Decay rates: ``1 - b`` is formed before rounding (``0.001`` for ``b = 0.999``, not ``1 - float32(0.999)``), every
average applies the decay ``1 - (1 - b)`` and every bias correction ``1 - b^k`` is ``-expm1(k log1p(-(1 - b)))``
from that same complement (``gradtx.tree.complement``, ``ema``, ``debias``): the moments and their corrections are
consistent, and float32 runs track float64 4 to 100 times more closely than Optax's (``benchmarks/
float32_accuracy.py``).

Precision: every leaf is computed in its compute dtype (float32 or wider, ``gradtx.tree.Leaf``); state is stored
in its own dtype (the parameter's unless ``mu_dtype`` / ``nu_dtype`` say otherwise: every block has both, for
its first-moment and second-moment state) and the output in the update's dtype. ``scale_by_adam`` computes each
moment in the wider of its state's and the gradient's compute dtype. Each step's output uses the unrounded new
moments; they are rounded only to be stored (Optax's order for ``mu_dtype``). ``nu_dtype``, and ``mu_dtype`` where
Optax has none, are keyword-only, after Optax's parameters, and shown in the ``repr`` only when set, so the
``repr`` of an Optax-compatible call reads like that call.

bfloat16 second moments: ``nu_dtype=bfloat16`` halves the second moment's memory; its cost is that an EMA
increment ``(1 - b2) (g^2 - nu)`` below half an ulp of ``nu`` (``2^-9 nu`` to ``2^-8 nu``) is rounded away: a
bfloat16 ``nu`` ignores changes of ``g^2`` up to ``2^-9 / (1 - b2)`` to ``2^-8 / (1 - b2)`` times ``nu``, i.e.
2 to 4 times ``nu`` for ``b2 = 0.999`` (a constant ``|g| = 1`` leaves ``nu`` frozen at exactly 1/4, not 1;
tests/test_precision.py), 0.2 to 0.4 times for ``b2 = 0.99``. Keep ``nu`` in float32 for ``b2`` near 1.

Complex parameters (all blocks but ``scale_by_adan``, as in Optax): ``g`` is the *conjugated* gradient, the
update to add to the parameters (Optax's convention,
https://gist.github.com/wdphy16/118aef6fb5f82c49790d7678cf87da29). First moments average ``g`` itself;
second moments, maxima and Yogi's sign use the real ``|g|^2 = g conj(g)`` (``|g|`` for Adamax), so each
output keeps the phase of its first moment. Second-moment state is stored in the parameter dtype (complex,
with zero imaginary part), as Optax stores it.

Zero, infinite and huge values (issue 15). Every division by the denominator ``sqrt(v_hat + eps_root) + eps``
(``(1 - b1^k) v`` for Adamax) goes through ``gradtx.tree.precision.scale_ratio``, one fused elementwise
expression: a zero denominator (``eps = 0`` and a coordinate whose gradients were all 0) gives 0, not
``0 / 0 = NaN``; an infinite one (``g^2`` overflowed: a float32 ``|g|`` above ~1.8e19 makes ``v = inf`` for
good) gives NaN, not the ``m / inf = 0`` that would freeze the coordinate silently, so the loss shows the
failure (``apply_if_finite`` skips such a step instead, see ``gradtx.wrappers.finiteness``); any other
denominator gives the plain quotient, bit for bit. RAdam's unrectified steps are NaN too once ``v`` is not
finite. The square roots are ``safe_sqrt``: the same values, with a finite derivative at 0, so hypergradients
(``jax.grad`` of a loss after some steps with respect to ``b1``, ``b2``, ``eps``, the learning rate) stay finite
when a gradient coordinate is exactly 0 with ``eps_root = 0``. Adamax keeps no square and does not overflow.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from gradtx import tree
from gradtx.base import Scalar, Updates
from gradtx.fields import dtype_option, flag, hyper, non_negative, probability, pytree_class, real, state_dtype
from gradtx.transforms.adam_base import AdamLike, Moment, Step, nadam_moment, widest
from gradtx.tree.precision import safe_sqrt, scale_ratio

__all__ = [
    "ScaleByAdamState",
    "ScaleByAdanState",
    "ScaleByAmsgradState",
    "ScaleByBeliefState",
    "radam_rho",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_amsgrad",
    "scale_by_belief",
    "scale_by_radam",
    "scale_by_yogi",
]


class ScaleByAdamState(NamedTuple):
    """The state of ``scale_by_adam`` (also of ``scale_by_adamax``, ``scale_by_yogi`` and ``scale_by_radam``).

    Attributes:
      count: the number of updates so far, an int32 scalar (the last step's ``k``).
      mu: the first moment ``m_k``, one array per parameter (biased: not divided by ``1 - b1^k``), in
        ``mu_dtype``.
      nu: the second moment ``v_k`` (Adamax: the infinity norm), one array per parameter, in ``nu_dtype``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_adam()  # b1 = 0.9, b2 = 0.999
      >>> _, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.count, state.mu, state.nu)  # 1, (1 - b1) g, (1 - b2) g^2
      1 [ 0.1 -0.2] [0.001 0.004]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    mu: Updates
    nu: Updates


class ScaleByAmsgradState(NamedTuple):
    """The state of ``scale_by_amsgrad``: Adam's moments and the running maximum of the second.

    Attributes:
      count: the number of updates so far, an int32 scalar.
      mu: the first moment ``m_k`` (biased), one array per parameter, in ``mu_dtype``.
      nu: the second moment ``v_k`` (biased), one array per parameter, in ``nu_dtype``.
      nu_max: the running maximum ``vmax_k`` of the (by default bias-corrected) second moment, in ``nu_dtype``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_amsgrad()
      >>> _, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.nu, state.nu_max)  # v_1 = 0.001 g^2; v_hat = g^2
      [0.001 0.004] [1. 4.]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    mu: Updates
    nu: Updates
    nu_max: Updates


class ScaleByBeliefState(NamedTuple):
    """The state of ``scale_by_belief`` (AdaBelief).

    Attributes:
      count: the number of updates so far, an int32 scalar.
      mu: the first moment ``m_k`` (biased), one array per parameter, in ``mu_dtype``.
      nu: ``s_k``, the second moment of the prediction error ``g_k - m_k`` plus ``eps_root`` (biased), one
        array per parameter, in ``nu_dtype``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_belief()
      >>> _, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.mu, state.nu)  # m = 0.1 g; s = 0.001 (g - m)^2 = 0.00081 g^2
      [ 0.1 -0.2] [0.00081 0.00324]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    mu: Updates
    nu: Updates


class ScaleByAdanState(NamedTuple):
    """The state of ``scale_by_adan`` (Optax's names and order: the count comes last).

    Attributes:
      m: the first moment of the gradient (biased), one array per parameter, in ``mu_dtype``.
      v: the first moment of the gradient difference ``g_k - g_{k-1}`` (biased), in ``mu_dtype``.
      n: the second moment of the Nesterov-corrected gradient (biased), in ``nu_dtype``.
      g: the previous gradient ``g_k``, in the parameter dtype.
      t: the number of updates so far, an int32 scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_adan()  # b1 = 0.98, b3 = 0.99; d_1 = 0
      >>> _, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.t, state.m, state.v, state.n, state.g)
      1 [ 0.02 -0.04] [0. 0.] [0.01 0.04] [ 1. -2.]
    """

    m: Updates
    v: Updates
    n: Updates
    g: Updates
    t: jax.Array


# The moments of most blocks: the first in ``mu_dtype``, the second in ``nu_dtype``.
MU, NU = Moment("mu", "mu_dtype"), Moment("nu", "nu_dtype")


def _m_hat(x: tree.Leaf, b1: Any, nesterov: bool, m: Any, g: Any, k: Any, into: tree.Leaf | None = None) -> Any:
    """The bias-corrected first moment ``m_k / (1 - b1^k)``, or with ``nesterov`` NAdam's (:func:`nadam_moment`),
    in the compute dtype of ``into`` (default ``x``)."""
    if nesterov:
        return nadam_moment(x, b1, m, g, k, into=into)
    into = x if into is None else into
    return m / into.cast(into.debias(b1, k))


# --------------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_adam(AdamLike[ScaleByAdamState]):
    """Adam's direction (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", ICLR, arXiv 1412.6980,
    Algorithm 1): RMSProp + momentum + bias correction, without the learning rate.

    With ``k`` the 1-based step::

        m_k = b1 m_{k-1} + (1 - b1) g_k               v_k = b2 v_{k-1} + (1 - b2) |g_k|^2
        m_hat = m_k / (1 - b1^k)                       v_hat = v_k / (1 - b2^k)
        u = m_hat / (sqrt(v_hat + eps_root) + eps)

    With ``nesterov`` (NAdam, Dozat 2016): ``m_hat = b1 m_k / (1 - b1^(k+1)) + (1 - b1) g_k / (1 - b1^k)``.
    At the first step ``m_hat = g`` and ``v_hat = g^2``, so ``u = g / (|g| + eps)``: +-1 per coordinate. With
    ``b1 = 0`` this equals ``scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True)``. ``u`` uses the
    unrounded ``m_k``, ``v_k``; they are rounded only to be stored (see the module docstring for bfloat16
    ``nu_dtype``). Chain ``scale_by_learning_rate`` after it for Adam (``gradtx.adam``).

    Args:
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the denominator outside the square root, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0 (Optax's guard for differentiating through the update;
        gradtx's square roots have finite derivatives at 0 without it). Default 0.0.
      mu_dtype: the dtype ``mu`` is stored in, a floating dtype or ``None`` (the default: the parameter's).
      nesterov: keyword only; use NAdam's first moment. Default False.
      nu_dtype: keyword only; the dtype ``nu`` is stored in, a real floating dtype or ``None`` (the default:
        the parameter's dtype). Not in Optax.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByAdamState``.

    Raises:
      ValueError: at construction, for a value out of range, e.g. ``scale_by_adam(b1=1.2): b1 must be in
        [0, 1)``, or a dtype that is not floating (``mu_dtype must be None or a floating dtype``).
      TypeError: at construction, for a hyperparameter of the wrong kind (``None``, a string, a complex number,
        a non-bool flag), e.g. ``scale_by_adam(b1='a'): b1 must be a real number in [0, 1), not str``; in
        ``update``, for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_adam()
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(updates)  # the first step is g / (|g| + eps)
      [ 1. -1.]
    """

    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.999)
    eps: Scalar = non_negative(default=1e-8)
    eps_root: Scalar = non_negative(default=0.0)
    mu_dtype: DTypeLike | None = dtype_option(default=None)
    nesterov: bool = flag(default=False, kw_only=True)
    nu_dtype: DTypeLike | None = state_dtype(default=None, real_only=True)

    State = ScaleByAdamState
    moments = (MU, NU)

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any, nu: Any) -> tuple[Any, ...]:
        xm, xv = widest(x, g, mu), widest(x, g, nu)  # each moment in the wider of its state's and g's compute dtype
        m = xm.ema(self.b1, mu, g)
        v = xv.ema_real(self.b2, nu, x.abs_sq(g))
        m_hat = _m_hat(x, self.b1, self.nesterov, m, g, step.k, into=xm)
        v_hat = v / xv.debias(self.b2, step.k)
        return scale_ratio(m_hat, xm.cast(safe_sqrt(v_hat + xv.hyper(self.eps_root)) + xv.hyper(self.eps))), m, v


@pytree_class
class scale_by_adamax(AdamLike[ScaleByAdamState]):
    """Adamax (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", arXiv 1412.6980, section 7.1,
    Algorithm 2): Adam with the infinity norm.

    With ``k`` the 1-based step::

        m_k = b1 m_{k-1} + (1 - b1) g_k
        v_k = max(b2 v_{k-1}, |g_k| + eps)
        u = m_k / ((1 - b1^k) v_k)

    ``v`` needs no bias correction. As in Optax, ``eps`` sits inside the maximum (the paper has
    ``u_k = max(b2 u_{k-1}, |g_k|)`` and no ``eps``), so ``v_k >= eps``. The first step is ``g / (|g| + eps)``.

    Args:
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the infinity norm, in [0, 1]. Default 0.999.
      eps: added to ``|g|`` inside the maximum, >= 0. Default 1e-8.
      mu_dtype: keyword only; the dtype ``mu`` (``m``) is stored in, a floating dtype or ``None`` (the default:
        the parameter's). Not in Optax.
      nu_dtype: keyword only; the dtype ``nu`` (``v``) is stored in, a real floating dtype or ``None`` (the
        default: the parameter's). Not in Optax.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByAdamState(count, mu=m, nu=v)``.

    Raises:
      ValueError: at construction, for a value out of range, e.g. ``scale_by_adamax(b2=1.5): b2 must be in
        [0, 1]``, or a dtype that is not floating.
      TypeError: at construction, for a hyperparameter of the wrong kind (``None``, a string, a complex
        number); in ``update``, for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_adamax()
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates, state.nu)  # m_1 / ((1 - b1) |g|), v_1 = |g|
      [ 1. -1.] [1. 2.]
    """

    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.999, closed=True)
    eps: Scalar = non_negative(default=1e-8)
    mu_dtype: DTypeLike | None = state_dtype(default=None)
    nu_dtype: DTypeLike | None = state_dtype(default=None, real_only=True)

    State = ScaleByAdamState
    moments = (MU, NU)

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any, nu: Any) -> tuple[Any, ...]:
        m = x.ema(self.b1, mu, g)
        v_old = x.as_real(nu)
        decayed = x.ema_real(self.b2, v_old, jnp.zeros_like(v_old))  # b2 v, from the exact complement
        v = jnp.maximum(decayed, x.as_real(jnp.abs(x.cast(g))) + x.hyper(self.eps))
        return scale_ratio(m, x.cast(x.debias(self.b1, step.k) * v)), m, v


@pytree_class
class scale_by_amsgrad(AdamLike[ScaleByAmsgradState]):
    """AMSGrad (Reddi, Kale & Kumar 2018, "On the Convergence of Adam and Beyond", ICLR, Algorithm 2): Adam
    with a non-decreasing second moment.

    With ``m_k``, ``v_k`` as in Adam and ``vmax_0 = 0``::

        vmax_k = max(vmax_{k-1}, v_eff)
        u = m_eff / (sqrt(vmax_k + eps_root) + eps)

    Optax's variant, the default here: ``m_eff = m_hat`` and ``v_eff = v_hat`` are bias corrected *before* the
    maximum. ``bias_correction_mu=False`` and ``bias_correction_nu=False`` give the paper's
    ``m_k / (sqrt(max_j v_j) + eps)``. The first step is ``g / (|g| + eps)``.

    Args:
      b1: the decay of the first moment, in [0, 1) (in [0, 1] with ``bias_correction_mu=False``). Default 0.9.
      b2: the decay of the second moment, in [0, 1) (in [0, 1] with ``bias_correction_nu=False``). Default
        0.999.
      eps: added to the denominator outside the square root, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0. Default 0.0.
      mu_dtype: the dtype ``mu`` is stored in, a floating dtype or ``None`` (the default: the parameter's).
      bias_correction_mu: divide ``m_k`` by ``1 - b1^k``. Default True. Not in Optax.
      bias_correction_nu: divide ``v_k`` by ``1 - b2^k`` before the maximum. Default True. Not in Optax.
      nu_dtype: keyword only; the dtype ``nu`` and ``nu_max`` are stored in, a real floating dtype or ``None``
        (the default: the parameter's). Not in Optax.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByAmsgradState``.

    Raises:
      ValueError: at construction, for a value out of range, e.g. ``scale_by_amsgrad(b1=1.0): b1 must be in
        [0, 1)`` (with its bias correction), or a dtype that is not floating.
      TypeError: at construction, for a hyperparameter of the wrong kind (``None``, a string, a non-bool
        flag); in ``update``, for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_amsgrad()
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates)
      [ 1. -1.]
      >>> updates, state = tx.update(jnp.array([0.5, -1.0]), state)  # smaller g: vmax keeps g_1^2
      >>> print(updates, state.nu_max)
      [ 0.7368 -0.7368] [1. 4.]
    """

    b1: Scalar = real(default=0.9)  # in [0, 1), or [0, 1] without its bias correction: checked by __check_init__
    b2: Scalar = real(default=0.999)
    eps: Scalar = non_negative(default=1e-8)
    eps_root: Scalar = non_negative(default=0.0)
    mu_dtype: DTypeLike | None = dtype_option(default=None)
    bias_correction_mu: bool = flag(default=True)
    bias_correction_nu: bool = flag(default=True)
    nu_dtype: DTypeLike | None = state_dtype(default=None, real_only=True)

    State = ScaleByAmsgradState
    moments = (MU, NU, Moment("nu_max", "nu_dtype"))

    def __check_init__(self) -> None:
        self._check_range("b1", 0.0, 1.0, hi_open=self.bias_correction_mu)
        self._check_range("b2", 0.0, 1.0, hi_open=self.bias_correction_nu)

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any, nu: Any, nu_max: Any) -> tuple[Any, ...]:
        m = x.ema(self.b1, mu, g)
        v = x.ema_real(self.b2, nu, x.abs_sq(g))
        m_eff = m / x.cast(x.debias(self.b1, step.k)) if self.bias_correction_mu else m
        v_eff = v / x.debias(self.b2, step.k) if self.bias_correction_nu else v
        v_max = jnp.maximum(x.as_real(nu_max), v_eff)
        return scale_ratio(m_eff, x.cast(safe_sqrt(v_max + x.hyper(self.eps_root)) + x.hyper(self.eps))), m, v, v_max


@pytree_class
class scale_by_belief(AdamLike[ScaleByBeliefState]):
    """AdaBelief (Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
    Gradients", NeurIPS, arXiv 2010.07468, Algorithm 2): scale by the belief in the gradient.

    With ``k`` the 1-based step::

        m_k = b1 m_{k-1} + (1 - b1) g_k
        s_k = b2 s_{k-1} + (1 - b2) (g_k - m_k)^2 + eps_root
        u = m_hat / (sqrt(s_hat) + eps),     m_hat = m_k / (1 - b1^k),  s_hat = s_k / (1 - b2^k)

    The second moment is that of the prediction error ``g_k - m_k``, small when the gradient is where the
    momentum expected it. The paper's one ``eps`` is split in two (``eps_root`` added to ``s``, stored, and
    ``eps`` in the denominator); Optax's defaults are ``1e-16`` for both (the paper's: ``eps=1e-8``,
    ``eps_root=0``). With ``nesterov``, NAdam's ``m_hat = b1 m_k / (1 - b1^(k+1)) + (1 - b1) g_k / (1 - b1^k)``.
    At the first step ``s_hat = (1 - b1)^2 g^2``, so ``u = g / ((1 - b1) |g|)``: +-1.11 for ``b1 = 0.9``.

    Args:
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the denominator outside the square root, >= 0. Default 1e-16.
      eps_root: added to ``s_k`` (and stored), >= 0. Default 1e-16.
      nesterov: keyword only; use NAdam's first moment. Default False.
      mu_dtype: keyword only; the dtype ``mu`` is stored in, a floating dtype or ``None`` (the default: the
        parameter's). Not in Optax.
      nu_dtype: keyword only; the dtype ``nu`` (``s``) is stored in, a real floating dtype or ``None`` (the
        default: the parameter's). Not in Optax.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByBeliefState``.

    Raises:
      ValueError: at construction, for a value out of range, e.g. ``scale_by_belief(b1=1.2): b1 must be in
        [0, 1)``, or a dtype that is not floating.
      TypeError: at construction, for a hyperparameter of the wrong kind (``None``, a string, a non-bool
        flag); in ``update``, for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_belief()
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates)  # g / (0.9 |g|)
      [ 1.1111 -1.1111]
    """

    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.999)
    eps: Scalar = non_negative(default=1e-16)
    eps_root: Scalar = non_negative(default=1e-16)
    nesterov: bool = flag(default=False, kw_only=True)
    mu_dtype: DTypeLike | None = state_dtype(default=None)
    nu_dtype: DTypeLike | None = state_dtype(default=None, real_only=True)

    State = ScaleByBeliefState
    moments = (MU, NU)

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any, nu: Any) -> tuple[Any, ...]:
        m = x.ema(self.b1, mu, g)
        s = x.ema_real(self.b2, nu, x.abs_sq(x.cast(g) - m)) + x.hyper(self.eps_root)
        m_hat = _m_hat(x, self.b1, self.nesterov, m, g, step.k)
        s_hat = s / x.debias(self.b2, step.k)
        return scale_ratio(m_hat, x.cast(safe_sqrt(s_hat) + x.hyper(self.eps))), m, s


@pytree_class
class scale_by_yogi(AdamLike[ScaleByAdamState]):
    """Yogi (Zaheer, Reddi, Sachan, Kale & Kumar 2018, "Adaptive Methods for Nonconvex Optimization",
    NeurIPS, Algorithm 2): an additive second moment that cannot grow the step size abruptly.

    With ``k`` the 1-based step::

        m_k = b1 m_{k-1} + (1 - b1) g_k
        v_k = v_{k-1} - (1 - b2) sign(v_{k-1} - g_k^2) g_k^2
        u = m_hat / (sqrt(v_hat + eps_root) + eps),    m_hat = m_k / (1 - b1^k),  v_hat = v_k / (1 - b2^k)

    Optax's conventions, kept here: *both* moments start at ``initial_accumulator_value`` (the paper
    initialises ``v_0`` to a small constant, ``m_0 = 0``) and both are bias corrected by ``1 - b^k`` (the
    paper has no bias correction). With ``initial_accumulator_value = 0`` and ``eps = 0`` the first step is
    ``sign(g)``; the default ``eps = 1e-3`` makes it ``g / (|g| + 0.001)``.

    Args:
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the rate of the second moment, in [0, 1). Default 0.999.
      eps: added to the denominator outside the square root, >= 0. Default 1e-3.
      eps_root: added inside the square root, >= 0. Default 0.0.
      initial_accumulator_value: the initial value of both moments, >= 0. Default 1e-6.
      mu_dtype: keyword only; the dtype ``mu`` (``m``) is stored in, a floating dtype or ``None`` (the default:
        the parameter's). Not in Optax.
      nu_dtype: keyword only; the dtype ``nu`` (``v``) is stored in, a real floating dtype or ``None`` (the
        default: the parameter's). Not in Optax.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByAdamState(count, mu=m, nu=v)``.

    Raises:
      ValueError: at construction, for a value out of range, e.g. ``scale_by_yogi(eps=-1.0): eps must be
        >= 0``, or a dtype that is not floating.
      TypeError: at construction, for a hyperparameter of the wrong kind (``None``, a string, a complex
        number); in ``update``, for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_yogi(eps=0.0, initial_accumulator_value=0.0)
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates, state.nu)  # v_1 = (1 - b2) g^2
      [ 1. -1.] [0.001 0.004]
    """

    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.999)
    eps: Scalar = non_negative(default=1e-3)
    eps_root: Scalar = non_negative(default=0.0)
    initial_accumulator_value: Scalar = non_negative(default=1e-6)
    mu_dtype: DTypeLike | None = state_dtype(default=None)
    nu_dtype: DTypeLike | None = state_dtype(default=None, real_only=True)

    State = ScaleByAdamState
    moments = (Moment("mu", "mu_dtype", start="initial_accumulator_value"),
               Moment("nu", "nu_dtype", start="initial_accumulator_value"))

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any, nu: Any) -> tuple[Any, ...]:
        m = x.ema(self.b1, mu, g)
        v_prev, g2 = x.as_real(nu), x.abs_sq(g)
        v = v_prev - x.complement(self.b2) * jnp.sign(v_prev - g2) * g2
        m_hat = m / x.cast(x.debias(self.b1, step.k))
        v_hat = v / x.debias(self.b2, step.k)
        return scale_ratio(m_hat, x.cast(safe_sqrt(v_hat + x.hyper(self.eps_root)) + x.hyper(self.eps))), m, v


# Bernoulli coefficients of phi(y) = 1/expm1(y) - 1/y + 1/2 = sum_n B_2n y^(2n-1) / (2n)!, for |y| < 2 pi.
_PHI = (1 / 12, -1 / 720, 1 / 30240, -1 / 1209600, 1 / 47900160, -691 / 1307674368000)
_Y_SERIES = 0.25  # below: the series (truncation < 1e-14 relative); above: the direct formula, no cancellation
_E_SERIES = 0.05  # 1 - b2 below this: -log1p(-e) - e by its series e^2/2 + e^3/3 + ...


def radam_rho(b2: Scalar, count: ArrayLike, dtype: DTypeLike = jnp.float32) -> tuple[jax.Array, jax.Array]:
    """RAdam's ``(rho_k, rho_inf)`` (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and
    Beyond", ICLR, arXiv 1908.03265, eq. 6 and Algorithm 2), in ``dtype``.

    ``rho_inf = 2 / (1 - b2) - 1`` and ``rho_k = rho_inf - 2 k b2^k / (1 - b2^k)``, the degrees of freedom of
    the approximated simple moving average (``rho_k`` is about ``k`` for ``k << 1 / (1 - b2)``). Written
    naively, ``rho_k`` is a difference of two numbers near ``2 / (1 - b2)`` (2000 for ``b2 = 0.999``) whose
    result is ``~k``: float32 loses ~1e-2 of it, enough to move the rectifier by 1% at the first rectified
    steps. Here, with ``L = -log b2`` and ``y = k L``, ``rho_k = (2/(1-b2) - 2/L) - 1 + k - 2 k phi(y)`` where
    ``phi(y) = 1/expm1(y) - 1/y + 1/2``, every term computed without cancellation while ``y < 1/4`` (series),
    and ``rho_inf - 2k / expm1(y)`` above (where ``rho_k >~ rho_inf / 8`` and nothing cancels badly).

    Args:
      b2: the second-moment decay, in [0, 1) (``b2 = 0`` gives ``rho_k = rho_inf = 1``).
      count: the 1-based step ``k``, an integer scalar or array.
      dtype: the dtype of the result (its real part is used). Default float32.

    Returns:
      ``(rho_k, rho_inf)``, two arrays of ``dtype``'s real dtype (``rho_k`` shaped like ``count``).

    Examples:
      >>> from gradtx.transforms.adam_family import radam_rho
      >>> rho_k, rho_inf = radam_rho(0.9, 1)  # rho_inf = 2 / 0.1 - 1 = 19; rho_1 = 1
      >>> print(rho_k, rho_inf)
      1.0 19.0
      >>> print(radam_rho(0.999, 10)[0])  # slightly below k
      9.9835
    """
    rt = tree.Leaf(dtype).real_dtype
    k = jnp.asarray(count).astype(rt)
    e = tree.complement(b2, rt)
    rho_inf = 2 / e - 1
    degenerate = e >= 1  # b2 = 0: b2^k = 0, rho_k = rho_inf = 1 (handled apart to keep gradients finite)
    e = jnp.where(degenerate, 0.5, e)
    log_b = -jnp.log1p(-e)  # L = -log b2 > 0
    y = k * log_b
    small = y < _Y_SERIES
    # Direct, for y >= 1/4. Past y = 80, 2 k b2^k / (1 - b2^k) < 1e-25 is below rounding: expm1 stays finite.
    direct = rho_inf - 2 * k / jnp.expm1(jnp.where(small, _Y_SERIES, jnp.where(y > 80, 80.0, y)))
    # Series, for y < 1/4, hence L < 1/4 and e < 1 - exp(-1/4) < 0.23. Each branch sees safe inputs.
    ys = jnp.where(small, y, 0.0)
    phi = jnp.zeros_like(ys)
    for coef in reversed(_PHI):
        phi = phi * (ys * ys) + coef
    phi = phi * ys
    es = jnp.where(small, e, _E_SERIES)
    ls = jnp.where(small, log_b, -math.log1p(-_E_SERIES))
    tail = jnp.zeros_like(es)  # (L - e) / e^2 = sum_{j >= 0} e^j / (j + 2)
    for j in reversed(range(16)):
        tail = tail * es + 1.0 / (j + 2)
    l_minus_e = jnp.where(es < _E_SERIES, tail * es * es, ls - es)
    series = 2 * l_minus_e / (es * ls) - 1 + k - 2 * k * phi
    rho = jnp.where(small, series, direct)
    return jnp.where(degenerate, rho_inf, rho), rho_inf


@pytree_class
class scale_by_radam(AdamLike[ScaleByAdamState]):
    """Rectified Adam (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond", ICLR,
    arXiv 1908.03265, Algorithm 2): Adam times a variance rectifier, momentum SGD while it is undefined.

    With ``m_k``, ``v_k``, ``m_hat``, ``v_hat`` as in Adam and ``rho_k``, ``rho_inf`` from
    :func:`gradtx.transforms.adam_family.radam_rho`::

        u = m_hat                                             while rho_k < threshold
        u = r_k m_hat / (sqrt(v_hat + eps_root) + eps)        from then on
        r_k = sqrt((rho_k - 4)(rho_k - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_k))

    While ``rho_k < threshold`` the variance of the adaptive step is intractable and the step is SGD with
    momentum (``rho_k`` is about ``k``: the first 5 steps with the defaults). Optax's conventions: the test is
    ``rho_k >= threshold`` with ``threshold = 5`` (the paper's Algorithm 2 has ``rho_k > 4``, its code
    ``>= 5``); ``eps`` outside the root (the paper's ``l_k = sqrt((1 - b2^k)/v_k)`` has none). ``rho_k`` is
    computed without cancellation (see :func:`gradtx.transforms.adam_family.radam_rho`), so float32 gives the
    float64 rectifier.

    Args:
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the denominator outside the square root, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0. Default 0.0.
      threshold: the ``rho_k`` from which the rectified step is taken, >= 4 (the rectifier is not real for
        ``2 < rho < 4``). Default 5.0.
      nesterov: keyword only; use NAdam's first moment. Default False.
      mu_dtype: keyword only; the dtype ``mu`` is stored in, a floating dtype or ``None`` (the default: the
        parameter's). Not in Optax.
      nu_dtype: keyword only; the dtype ``nu`` is stored in, a real floating dtype or ``None`` (the default:
        the parameter's). Not in Optax.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByAdamState``.

    Raises:
      ValueError: at construction, for a value out of range, e.g. ``scale_by_radam(threshold=3.0): threshold
        must be >= 4``, or a dtype that is not floating.
      TypeError: at construction, for a hyperparameter of the wrong kind (``None``, a string, a non-bool
        flag); in ``update``, for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_radam()
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates)  # rho_1 = 1 < 5: the bias-corrected momentum, m_hat = g
      [ 1. -2.]
    """

    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.999)
    eps: Scalar = non_negative(default=1e-8)
    eps_root: Scalar = non_negative(default=0.0)
    threshold: Scalar = hyper(default=5.0, lo=4.0)
    nesterov: bool = flag(default=False, kw_only=True)
    mu_dtype: DTypeLike | None = state_dtype(default=None)
    nu_dtype: DTypeLike | None = state_dtype(default=None, real_only=True)

    State = ScaleByAdamState
    moments = (MU, NU)

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any, nu: Any) -> tuple[Any, ...]:
        m = x.ema(self.b1, mu, g)
        v = x.ema_real(self.b2, nu, x.abs_sq(g))
        m_hat = _m_hat(x, self.b1, self.nesterov, m, g, step.k)
        v_hat = v / x.debias(self.b2, step.k)
        rho, rho_inf = radam_rho(self.b2, step.k, x.real_dtype)
        rectify = rho >= x.hyper(self.threshold)
        rho, rho_inf = jnp.where(rectify, rho, 6.0), jnp.where(rectify, rho_inf, 6.0)  # r = 1 where not taken
        r = jnp.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        den = x.cast(safe_sqrt(v_hat + x.hyper(self.eps_root)) + x.hyper(self.eps))
        adam = scale_ratio(x.cast(r) * m_hat, den)
        # An overflowed second moment shows (NaN) also before the rectifier starts, not only once it does.
        return jnp.where(rectify, adam, jnp.where(jnp.isfinite(den), m_hat, jnp.full_like(m_hat, jnp.nan))), m, v


@pytree_class
class scale_by_adan(AdamLike[ScaleByAdanState]):
    """Adan, adaptive Nesterov momentum (Xie, Zhou, Li, Lin & Yan 2022, "Adan: Adaptive Nesterov Momentum
    Algorithm for Faster Optimizing Deep Models", arXiv 2208.06677, Algorithm 1), in Optax's convention.

    With ``d_k = g_k - g_{k-1}`` (``d_1 = 0``), zero-initialised moments and ``x_hat = x_k / (1 - b^k)``::

        m_k = b1 m_{k-1} + (1 - b1) g_k
        v_k = b2 v_{k-1} + (1 - b2) d_k
        n_k = b3 n_{k-1} + (1 - b3) (g_k + (1 - b2) d_k)^2
        u = (m_hat + (1 - b2) v_hat) / (sqrt(n_hat + eps_root) + eps)

    Conventions (Optax's, kept): ``b`` are decays, the paper's ``beta = 1 - b`` (defaults 0.02, 0.08, 0.01);
    moments start at zero with bias correction instead of ``m_0 = g_0``, ``n_0 = g_0^2``. Note that Optax
    weights the gradient difference by ``1 - b2`` (0.08) in ``n`` and in ``u``, where the paper writes
    ``(1 - beta_2) = b2`` (0.92), as does the authors' code. Real parameters only, as in Optax. The first
    step is ``g / (|g| + eps)``.

    Args:
      b1: the decay of the gradient's moment, in [0, 1). Default 0.98.
      b2: the decay of the gradient difference's moment, in [0, 1). Default 0.92.
      b3: the decay of the second moment, in [0, 1). Default 0.99.
      eps: added to the denominator outside the square root, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0. Default 0.0.
      mu_dtype: keyword only; the dtype the two first-order moments ``m`` and ``v`` are stored in, a floating
        dtype or ``None`` (the default: the parameter's; the previous gradient ``g`` keeps it always).
      nu_dtype: keyword only; the dtype ``n`` is stored in, a real floating dtype or ``None`` (the default:
        the parameter's). Not in Optax.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByAdanState``.

    Raises:
      ValueError: at construction, for a value out of range, e.g. ``scale_by_adan(b3=1.0): b3 must be in
        [0, 1)``, or a dtype that is not floating.
      TypeError: at construction, for a hyperparameter of the wrong kind (``None``, a string, a complex
        number); in ``update``, for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_adan()
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates)
      [ 1. -1.]
    """

    b1: Scalar = probability(default=0.98)
    b2: Scalar = probability(default=0.92)
    b3: Scalar = probability(default=0.99)
    eps: Scalar = non_negative(default=1e-8)
    eps_root: Scalar = non_negative(default=0.0)
    mu_dtype: DTypeLike | None = state_dtype(default=None)
    nu_dtype: DTypeLike | None = state_dtype(default=None, real_only=True)

    State = ScaleByAdanState
    moments = (Moment("m", "mu_dtype"), Moment("v", "mu_dtype"), Moment("n", "nu_dtype"), Moment("g"))
    counts = ("t",)

    def direction(self, x: tree.Leaf, step: Step, g: Any, m0: Any, v0: Any, n0: Any, g0: Any) -> tuple[Any, ...]:
        d = jnp.where(step.count == 0, jnp.zeros((), x.compute_dtype), x.cast(g) - x.cast(g0))
        w = x.cast(x.complement(self.b2))
        m, v = x.ema(self.b1, m0, g), x.ema(self.b2, v0, d)
        n = x.ema_real(self.b3, n0, x.abs_sq(x.cast(g) + w * d))
        direction = m / x.cast(x.debias(self.b1, step.k)) + w * v / x.cast(x.debias(self.b2, step.k))
        n_hat = n / x.debias(self.b3, step.k)
        den = x.cast(safe_sqrt(n_hat + x.hyper(self.eps_root)) + x.hyper(self.eps))
        return scale_ratio(direction, den), m, v, n, g
