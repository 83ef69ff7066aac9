"""AdEMAMix (Pagliardini et al. 2024), its warm-up of the slow EMA rate, and Simplified AdEMAMix (Morwani et al.
2025): Adam's direction plus a slow EMA of the gradients."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from gradtx import tree
from gradtx.base import MaskOrFn, Scalar, ScalarOrSchedule, Updates
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import (
    dtype_option,
    flag,
    non_negative,
    positive,
    probability,
    pytree_class,
    real,
    recipe,
    state_dtype,
)
from gradtx.schedules import Schedule
from gradtx.schedules._base import schedule_dtype as _schedule_dtype
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_base import AdamLike, Moment, Step

__all__ = [
    "ScaleByAdemamixState",
    "ScaleBySimplifiedAdEMAMixState",
    "ademamix",
    "ademamix_b3_schedule",
    "scale_by_ademamix",
    "scale_by_simplified_ademamix",
    "simplified_ademamix",
]


class ScaleByAdemamixState(NamedTuple):
    """The state of :class:`scale_by_ademamix`.

    Attributes:
      count: the steps taken by the fast EMA and the second moment, an int32 scalar.
      count_m2: the steps taken by the slow EMA and ``alpha`` (the count their schedules read), an int32 scalar.
      m1: the fast EMA of the gradients, like the parameters.
      m2: the slow EMA of the gradients, like the parameters.
      nu: the second moment, like the parameters.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.scale_by_ademamix().init(jnp.zeros(2))
      >>> print(state._fields)
      ('count', 'count_m2', 'm1', 'm2', 'nu')
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    count_m2: jax.Array
    m1: Updates
    m2: Updates
    nu: Updates


@pytree_class
class scale_by_ademamix(AdamLike[ScaleByAdemamixState]):
    """AdEMAMix's direction: Adam's direction plus ``alpha`` times a slow EMA of the gradients.

    Pagliardini, Ablin & Grangier 2024, "The AdEMAMix Optimizer: Better, Faster, Older", arXiv 2409.03137,
    Algorithm 1. With ``k`` the 1-based step::

        m1_k = b1 m1_{k-1} + (1 - b1) g,    m2_k = b3 m2_{k-1} + (1 - b3) g,    nu_k = b2 nu_{k-1} + (1 - b2) |g|^2
        u    = (m1_k / (1 - b1^k) + alpha m2_k) / (sqrt(nu_k / (1 - b2^k) + eps_root) + eps)

    The slow EMA is not bias-corrected (it fills slowly on purpose). ``b3`` and ``alpha`` may be schedules of the
    0-based ``count_m2``, as in Optax (step ``k`` reads them at ``k - 1``). The paper's warm-ups, with ``T`` the
    warm-up length and ``k`` the 1-based step, are ``alpha_k = alpha min(k / T, 1)`` and ``b3_k`` from
    :class:`ademamix_b3_schedule`; evaluated at ``k`` (as the paper's Algorithm 1 and the authors' PyTorch
    ``AdEMAMix`` do), they are ``alpha=gradtx.schedules.linear_schedule(alpha / T, alpha, T - 1)`` (``T > 1``)
    and ``b3=ademamix_b3_schedule(b3, T, b1)`` here (see :func:`ademamix`).
    Deviation from Optax: ``nu`` is stored in the parameter dtype (Optax stores it in ``mu_dtype``, which it
    documents as the first-moment dtype); ``mu_dtype`` stores ``m1`` and ``m2``. Complex parameters follow Optax
    (``|g|^2 = g conj(g)``). The output points uphill: follow it with ``scale_by_learning_rate``
    (:func:`ademamix`). State: :class:`ScaleByAdemamixState`.

    Args:
      b1: the decay of the fast EMA ``m1``, in ``[0, 1)``. Default 0.9.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.999.
      b3: the decay of the slow EMA ``m2``, in ``[0, 1)``, a number or a schedule. Default 0.9999.
      alpha: the weight of the slow EMA (finite), a number or a schedule. Default 6.0 (Optax's block default;
        the recipe's is 5.0).
      eps: added to the root of the second moment, ``>= 0``. Default 1e-8.
      eps_root: added inside the root, ``>= 0``. Default 0.
      mu_dtype: the dtype ``m1`` and ``m2`` are stored in, a dtype or None (the parameter dtype). Default None.
      nu_dtype: the dtype ``nu`` is stored in, a real floating dtype or None (the parameter dtype); keyword-only.
        Default None.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_ademamix(b3=1.2): b3 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. a string ``alpha``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_ademamix()
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(updates)  # Adam's sign(g) plus alpha (1 - b3) sign(g)
      [ 1.0006 -1.0006]
    """

    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.999)
    b3: ScalarOrSchedule = probability(default=0.9999, schedule=True)
    alpha: ScalarOrSchedule = real(default=6.0, schedule=True)
    eps: Scalar = non_negative(default=1e-8)
    eps_root: Scalar = non_negative(default=0.0)
    mu_dtype: DTypeLike | None = dtype_option(default=None)
    nu_dtype: DTypeLike | None = state_dtype(default=None, real_only=True)

    State = ScaleByAdemamixState
    moments = (Moment("m1", "mu_dtype"), Moment("m2", "mu_dtype"), Moment("nu", "nu_dtype"))
    counts = ("count", "count_m2")  # b3 and alpha are schedules of count_m2

    def direction(self, x: tree.Leaf, step: Step, g: Any, m1: Any, m2: Any, nu: Any) -> tuple[Any, ...]:
        a1, a2 = x.ema(self.b1, m1, g), x.ema(step.at(self.b3), m2, g)
        v = x.ema_real(self.b2, nu, x.abs_sq(g))
        num = a1 / x.cast(x.debias(self.b1, step.k)) + x.cast(x.hyper(step.at(self.alpha))) * a2
        den = safe_sqrt(v / x.debias(self.b2, step.k) + x.hyper(self.eps_root)) + x.hyper(self.eps)
        return num / x.cast(den), a1, a2, v


@pytree_class
class ademamix_b3_schedule(Schedule):
    """AdEMAMix's warm-up of the slow EMA rate ``b3``: the half-life grows linearly.

    Pagliardini, Ablin & Grangier 2024, "The AdEMAMix Optimizer: Better, Faster, Older", arXiv 2409.03137,
    Section 3 and Appendix (``linear_hl_warmup_scheduler`` in the authors' ``apple/ml-ademamix``): the *half-life*
    of the EMA grows linearly from that of ``b3_start`` to that of ``b3`` over ``warmup`` steps, then ``b3``
    stays::

        hl(b) = log(0.5) / log(b + 1e-8) - 1,      hl^-1(t) = 0.5 ** (1 / (t + 1))
        k = count + 1   (one_based=True, the default)   or   k = count   (one_based=False)
        a = k / warmup;   b3(count) = hl^-1((1 - a) hl(b3_start) + a hl(b3))   for k < warmup, else b3

    (a linear ramp of ``b3`` itself would leave the half-life short for most of the warm-up). Like every
    schedule it is called with the 0-based count (``count_m2``); the authors' PyTorch ``AdEMAMix``
    (``apple/ml-ademamix`` commit c3d73c0, ``pytorch/ademamix.py``) and the paper's Algorithm 1 evaluate their
    schedulers at the 1-based step ``k = count + 1``, so with the default ``one_based=True`` the value step ``k``
    uses is theirs, from ``b3(0) = hl^-1((1 - 1 / warmup) hl(b3_start) + hl(b3) / warmup)`` to ``b3`` at step
    ``warmup``. ``one_based=False`` evaluates at the count itself (``b3(0) = b3_start``): the authors' own Optax
    port (``optax/ademamix.py`` in the same repository, whose ``beta3_scheduler`` reads ``count_m2`` and has no
    ``1e-8`` guard), and gradtx before issue 18.

    The paper warms ``b3`` up from ``b3_start = b1`` and ``alpha`` linearly from 0 over the same number of
    steps ``T``, both usually the whole run; the authors' run is ``b3=ademamix_b3_schedule(b3, T, b1)`` and
    ``alpha=gradtx.schedules.linear_schedule(alpha / T, alpha, T - 1)`` (``alpha min(k / T, 1)`` at the 1-based
    step: ``alpha / T`` at the first step, never 0; for ``T = 1`` pass ``alpha`` itself). With
    ``one_based=False`` the matching alpha is ``linear_schedule(0.0, alpha, T)`` (0 at the first step). Pass it
    as ``b3`` of :func:`ademamix` or :class:`scale_by_ademamix`; calling it returns ``b3(count)``, a float array.

    Args:
      b3: the final decay rate, in ``[0, 1)``.
      warmup: the number of warm-up steps ``T``, ``> 0``.
      b3_start: the decay rate the warm-up starts from (the value at step 0), in ``[0, 1)``. Default 0.9.
      one_based: evaluate the warm-up at the 1-based step ``count + 1`` (the authors' PyTorch code and the
        paper) rather than at the 0-based count (their Optax port); keyword-only. Default True.

    Raises:
      ValueError: an option out of range, e.g. ``ademamix_b3_schedule(warmup=0): warmup must be > 0``.
      TypeError: an option of the wrong type, e.g. a string ``b3``.

    Examples:
      >>> import gradtx
      >>> schedule = gradtx.contrib.ademamix_b3_schedule(b3=0.9999, warmup=100)
      >>> print([round(float(schedule(c)), 4) for c in (0, 49, 99)])  # the values of steps 1, 50 and 100
      [0.9909, 0.9998, 0.9999]
      >>> schedule = gradtx.contrib.ademamix_b3_schedule(b3=0.9999, warmup=100, one_based=False)
      >>> print([round(float(schedule(c)), 4) for c in (0, 50, 100)])  # the values of steps 0, 50 and 100
      [0.9, 0.9998, 0.9999]
    """

    b3: Scalar = probability()
    warmup: Scalar = positive()
    b3_start: Scalar = probability(default=0.9)
    one_based: bool = flag(default=True, kw_only=True)

    def __call__(self, count: Any) -> jax.Array:
        dt = _schedule_dtype(self)
        half = jnp.log(jnp.asarray(0.5, dt))

        def hl(b: Any) -> jax.Array:
            return half / jnp.log(jnp.asarray(b, dt) + jnp.asarray(1e-8, dt)) - 1

        step = jnp.asarray(count, dt) + jnp.asarray(1 if self.one_based else 0, dt)
        a = step / jnp.asarray(self.warmup, dt)
        mixed = (1 - a) * hl(self.b3_start) + a * hl(self.b3)
        return jnp.where(a < 1, jnp.asarray(0.5, dt) ** (1 / (jnp.where(a < 1, mixed, 0) + 1)),
                         jnp.asarray(self.b3, dt))


@recipe
def ademamix(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 5.0,
    eps: Scalar = 1e-8,
    eps_root: Scalar = 0.0,
    mu_dtype: DTypeLike | None = None,
    weight_decay: Scalar = 0.0,
    mask: MaskOrFn = None,
    *,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """AdEMAMix (Pagliardini et al. 2024): AdamW with a mixture of a fast and a slow EMA of the gradients.

    ``scale_by_ademamix -> add_decayed_weights -> scale_by_learning_rate``::

        u = -lr ((m1_hat + alpha m2) / (sqrt(nu_hat + eps_root) + eps) + weight_decay theta)

    with ``m1_hat``, ``nu_hat`` Adam's bias-corrected moments and ``m2`` the slow EMA (see
    :class:`scale_by_ademamix`); weight decay decoupled and multiplied by the learning rate. Pagliardini, Ablin &
    Grangier 2024, "The AdEMAMix Optimizer: Better, Faster, Older", arXiv 2409.03137. Signature and defaults of
    ``optax.contrib.ademamix`` (``b3`` and ``alpha`` schedules read the 0-based count, as ``learning_rate``
    does).

    The paper's warm-ups over ``T`` steps, as the authors' PyTorch ``AdEMAMix`` runs them
    (``apple/ml-ademamix`` commit c3d73c0: ``alpha min(k / T, 1)`` and the half-life warm-up of ``b3`` from
    ``b1``, at the 1-based step ``k``)::

        ademamix(lr, b1, b2, b3=ademamix_b3_schedule(b3, T, b1),
                 alpha=gradtx.schedules.linear_schedule(alpha / T, alpha, T - 1), weight_decay=wd)

    (``T > 1``). The shift by one lives in the schedules, not here, so that the recipe keeps Optax's signature
    and its reading of schedules (``optax.contrib.ademamix`` 0.2.8 also reads them at ``count_m2``: given these
    schedule objects it makes the same run); ``linear_schedule(0.0, alpha, T)`` would give ``alpha = 0`` at the
    first step, as the authors' Optax port does (pair it with ``ademamix_b3_schedule(..., one_based=False)``).
    The defaults are Optax's and the authors' Optax port's (``alpha = 5``, no warm-up); the authors' PyTorch class
    defaults to ``alpha = 2`` and no warm-up. With constant ``b3`` and ``alpha`` a step is the authors' PyTorch
    step exactly (``eps`` outside the bias-corrected root, decay ``lr wd theta``).

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count.
      b1: the decay of the fast EMA, in ``[0, 1)``. Default 0.9.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.999.
      b3: the decay of the slow EMA, in ``[0, 1)``, a number or a schedule. Default 0.9999.
      alpha: the weight of the slow EMA (finite), a number or a schedule. Default 5.0.
      eps: added to the root of the second moment, ``>= 0``. Default 1e-8.
      eps_root: added inside the root, ``>= 0``. Default 0.
      mu_dtype: the dtype of the two EMAs, a dtype or None (the parameter dtype). Default None.
      weight_decay: the decoupled weight decay ``>= 0`` (multiplied by the learning rate). Default 0.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.
      nu_dtype: the dtype of the second moment, a real floating dtype or None (keyword-only). Default None.

    Returns:
      A ``chain`` of the three blocks; its state is ``(ScaleByAdemamixState, EmptyState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``ademamix(b3=1.2): b3 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. ``ademamix(learning_rate='a'): learning_rate must be a finite
        real number or a schedule count -> value, not str``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.ademamix(learning_rate=0.1)
      >>> state = opt.init(jnp.zeros(2))
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), state, jnp.zeros(2))
      >>> print(updates)  # -lr (1 + alpha (1 - b3)) sign(g)
      [-0.10005  0.10005]
    """
    return chain(
        scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """The state of :class:`scale_by_simplified_ademamix`.

    Attributes:
      t: the number of steps taken, an int32 scalar.
      m: the undamped momentum ``m_k = b1 m_{k-1} + g``, like the parameters.
      n: the second moment, like the parameters.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.scale_by_simplified_ademamix().init(jnp.zeros(2))
      >>> print(state.t, state.m)
      0 [0. 0.]
    """

    t: jax.Array
    m: Updates
    n: Updates


@pytree_class
class scale_by_simplified_ademamix(AdamLike[ScaleBySimplifiedAdEMAMixState]):
    """Simplified AdEMAMix's direction: one undamped momentum buffer plus ``alpha`` times the gradient.

    Morwani, Vyas, Kakade et al. 2025, "Connections between Schedule-Free Optimizers, AdEMAMix, and Accelerated
    SGD Variants", arXiv 2502.02431, Algorithm 2. With ``k`` the 1-based step::

        m_k = b1 m_{k-1} + g                       (no 1 - b1)
        n_k = b2 n_{k-1} + (1 - b2) g^2
        u   = (m_k + alpha g) / (sqrt(n_k / (1 - b2^k) + eps_root) + eps)

    ``alpha`` may be a schedule of the 0-based count. ``alpha = 0`` is Adam with ``lr / (1 - b1)`` and no
    first-moment bias correction. Real parameters only (Optax squares ``g`` without conjugating). The output points
    uphill: follow it with ``scale_by_learning_rate`` (:func:`simplified_ademamix`). State:
    :class:`ScaleBySimplifiedAdEMAMixState`.

    Args:
      b1: the decay of the undamped momentum, in ``[0, 1)``. Default 0.99.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.95.
      alpha: the weight of the current gradient (finite), a number or a schedule. Default 0.
      eps: added to the root of the second moment, ``>= 0``. Default 1e-8.
      eps_root: added inside the root, ``>= 0``. Default 0.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_simplified_ademamix(b1=1.2): b1 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. ``scale_by_simplified_ademamix(alpha='x'): alpha must be a
        finite real number or a schedule count -> value, not str``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_simplified_ademamix(alpha=2.0)
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(updates)  # (g + alpha g) / |g|
      [ 3. -3.]
    """

    b1: Scalar = probability(default=0.99)
    b2: Scalar = probability(default=0.95)
    alpha: ScalarOrSchedule = real(default=0.0, schedule=True)
    eps: Scalar = non_negative(default=1e-8)
    eps_root: Scalar = non_negative(default=0.0)

    State = ScaleBySimplifiedAdEMAMixState
    moments = (Moment("m"), Moment("n"))
    counts = ("t",)

    def direction(self, x: tree.Leaf, step: Step, g: Any, m: Any, n: Any) -> tuple[Any, ...]:
        gc = x.cast(g)
        m_new = x.hyper(self.b1) * x.cast(m) + gc
        n_new = x.ema(self.b2, n, gc * gc)
        n_hat = n_new / x.debias(self.b2, step.k)
        den = safe_sqrt(n_hat + x.hyper(self.eps_root)) + x.hyper(self.eps)
        u = (m_new + x.hyper(step.at(self.alpha)) * gc) / den
        return u, m_new, n_new


@recipe
def simplified_ademamix(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.99,
    b2: Scalar = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: Scalar = 1e-8,
    eps_root: Scalar = 0.0,
    weight_decay: Scalar = 0.0,
    mask: MaskOrFn = None,
) -> chain:
    """Simplified AdEMAMix (Morwani et al. 2025), with decoupled weight decay.

    ``scale_by_simplified_ademamix -> add_decayed_weights -> scale_by_learning_rate``::

        u = -lr ((m_k + alpha g) / (sqrt(n_hat + eps_root) + eps) + weight_decay theta)

    (see :class:`scale_by_simplified_ademamix`). Morwani, Vyas, Kakade et al. 2025, "Connections between
    Schedule-Free Optimizers, AdEMAMix, and Accelerated SGD Variants", arXiv 2502.02431. Signature and defaults of
    ``optax.contrib.simplified_ademamix``.

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count.
      b1: the decay of the undamped momentum, in ``[0, 1)``. Default 0.99.
      b2: the decay of the second moment, in ``[0, 1)``. Default 0.95.
      alpha: the weight of the current gradient (finite), a number or a schedule. Default 0.
      eps: added to the root of the second moment, ``>= 0``. Default 1e-8.
      eps_root: added inside the root, ``>= 0``. Default 0.
      weight_decay: the decoupled weight decay ``>= 0`` (multiplied by the learning rate). Default 0.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.

    Returns:
      A ``chain`` of the three blocks; its state is ``(ScaleBySimplifiedAdEMAMixState, EmptyState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``simplified_ademamix(b2=1.0): b2 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.simplified_ademamix(learning_rate=0.1)
      >>> state = opt.init(jnp.zeros(2))
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), state, jnp.zeros(2))
      >>> print(updates)
      [-0.1  0.1]
    """
    return chain(
        scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
