"""Per-parameter learning rates: divide each coordinate by a running estimate sigma of its gradient size.

The lecture's family (``theta <- theta - eta / sigma * g``), each a block:

    scale_by_rss:     sigma_k = sqrt(s_0 + sum_{j<=k} g_j^2)                 (Adagrad; Duchi et al. 2011)
    scale_by_rms:     sigma_k^2 = a sigma_{k-1}^2 + (1 - a) g_k^2               (RMSProp; Tieleman & Hinton 2012)
                      decay=None: sigma_k^2 = (1/k) sum_{j<=k} g_j^2             (the lecture's root mean square)
                      init_from_first: sigma_1 = |g_1|                           (the lecture's RMSProp)
    scale_by_stddev:  sigma_k^2 = EMA(g^2) - EMA(g)^2                           (centred RMSProp; Graves 2013)

Adam (RMSProp + momentum + bias correction) is in ``gradtx.transforms.adam_family`` with its variants.

``k`` is the 1-based step. Each block states its fields, its moments and its ``direction`` (one leaf's math);
the skeleton is :class:`gradtx.transforms.adam_base.AdamLike`. Arithmetic runs in float32 or wider
(``gradtx.tree.Leaf``); the moments are stored in the parameter dtype and, as in Optax, the output is computed
from the *stored* moments; the output has the update's dtype. The division is Optax's arithmetic, operation for
operation (``g * rsqrt(nu + eps)``), so RMSProp's numbers are Optax's bit for bit (``g / sqrt(.)`` rounds
differently in the last bit, and chaotic runs amplify that).

Zero and infinite denominators (issue 15), through ``gradtx.tree.precision.times_inverse`` fused into the same
pass: where the denominator is 0 (``eps = 0`` and a coordinate whose gradients were all 0) the output is 0, not
``0 * inf = NaN``; where the second moment is infinite (a float32 ``|g|`` above ~1.8e19 squares to ``inf``, and
the average stays there) the output is NaN, not ``g * 0 = 0``: the failure shows in the loss instead of freezing
the coordinate silently (``apply_if_finite`` skips such a step, see ``gradtx.wrappers.finiteness``). Other
denominators give Optax's numbers bit for bit. Square roots of moments have finite derivatives at 0
(``safe_sqrt``), for hypergradients.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import Scalar, Updates
from gradtx.fields import concrete_number, flag, hyper, non_negative, probability, pytree_class
from gradtx.transforms.adam_base import AdamLike, Moment, StateT, Step
from gradtx.tree.precision import safe_sqrt, times_inverse

__all__ = [
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRssState",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_stddev",
]


class ScaleByRmsState(NamedTuple):
    """The state of ``scale_by_rms`` without a count (exponential average, no bias correction).

    Attributes:
      nu: the running mean of squared gradients, one array per parameter (in the parameter dtype).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_rms()  # decay = 0.9
      >>> _, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.nu)  # 0.1 g^2
      [0.1 0.4]
    """

    nu: Updates


class ScaleByRmsWithCountState(NamedTuple):
    """The state of ``scale_by_rms`` when it counts steps (``bias_correction``, ``decay=None`` or
    ``init_from_first``).

    Attributes:
      count: the number of updates so far, an int32 scalar.
      nu: the running mean of squared gradients, one array per parameter.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_rms(bias_correction=True)
      >>> _, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.count, state.nu)  # nu is stored biased: 0.1 g^2
      1 [0.1 0.4]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    nu: Updates


class ScaleByRssState(NamedTuple):
    """The state of ``scale_by_rss`` (Adagrad).

    Attributes:
      sum_of_squares: the running sum of squared gradients from ``initial_accumulator_value``, one array per
        parameter.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_rss()  # initial_accumulator_value = 0.1
      >>> _, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.sum_of_squares)  # 0.1 + g^2
      [1.1 4.1]
    """

    sum_of_squares: Updates


class ScaleByRStdDevState(NamedTuple):
    """The state of ``scale_by_stddev`` without bias correction.

    Attributes:
      mu: the running mean of the gradient, one array per parameter.
      nu: the running mean of its square, one array per parameter.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_stddev()  # decay = 0.9
      >>> _, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.mu, state.nu)  # 0.1 g, 0.1 g^2
      [ 0.1 -0.2] [0.1 0.4]
    """

    mu: Updates
    nu: Updates


class ScaleByRStdDevWithCountState(NamedTuple):
    """The state of ``scale_by_stddev(bias_correction=True)``.

    Attributes:
      count: the number of updates so far, an int32 scalar (for the bias correction).
      mu: the running mean of the gradient (biased), one array per parameter.
      nu: the running mean of its square (biased), one array per parameter.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_stddev(bias_correction=True)
      >>> _, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.count, state.mu, state.nu)
      1 [ 0.1 -0.2] [0.1 0.4]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    mu: Updates
    nu: Updates


class _CountedWhenNeeded(AdamLike[StateT]):
    """A block that keeps a step count only when its options need one (``_counts``); ``_states`` is its state
    without and with the count."""

    _states: ClassVar[tuple[type, type]]

    @property
    def _counts(self) -> bool:
        raise NotImplementedError

    @property
    def counts(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("count",) if self._counts else ()

    @property
    def State(self) -> type:
        return self._states[self._counts]


def _inverse_root(x: tree.Leaf, g: Any, n: jax.Array, eps: Any, eps_in_sqrt: bool) -> jax.Array:
    """``g * rsqrt(n + eps)`` (or ``g * (1 / (sqrt(n) + eps))``): Optax's arithmetic, operation for operation,
    with 0 for a zero denominator and NaN for an infinite one (``gradtx.tree.precision.times_inverse``)."""
    if eps_in_sqrt:
        return times_inverse(x.cast(g), n + x.hyper(eps), cast=x.cast)
    return times_inverse(x.cast(g), safe_sqrt(n) + x.hyper(eps), inverse=lambda d: 1 / d, cast=x.cast)


@pytree_class
class scale_by_rms(_CountedWhenNeeded[ScaleByRmsState | ScaleByRmsWithCountState]):
    """Divide by the root mean square of past gradients (RMSProp's scaling): ``u = g / sqrt(nu_hat + eps)``.

    RMSProp (Tieleman & Hinton 2012, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine Learning),
    with ``k`` the 1-based step::

        nu_k = decay nu_{k-1} + (1 - decay) |g_k|^2,     nu_0 = initial_scale
        nu_hat = nu_k / (1 - decay^k) with bias_correction, else nu_k
        u = g_k / sqrt(nu_hat + eps)          (eps_in_sqrt=False: g_k / (sqrt(nu_hat) + eps))

    gradtx's additions, the lecture's own forms:

    - ``decay=None``: ``nu_k = (1/k) sum_{j<=k} g_j^2``, the root mean square of *all* past gradients with
      equal weights (the lecture's Adagrad-style sigma; its late "explosions" are what schedules tame).
    - ``init_from_first=True``: ``nu_1 = g_1^2``, i.e. ``sigma_0 = |g_0|`` in the lecture's 0-based notation,
      then the exponential average.

    The output is computed from the *stored* ``nu``, with Optax's arithmetic (``g * rsqrt(nu + eps)``), so the
    numbers are Optax's bit for bit. The state counts steps only when an option needs it.

    Args:
      decay: the decay of the average, in [0, 1], or ``None`` for the equal-weight mean (not in Optax).
        Default 0.9.
      eps: added to the mean square (or to its root with ``eps_in_sqrt=False``), >= 0. Default 1e-8.
      initial_scale: ``nu_0``, >= 0 (must be 0 with ``decay=None``). Default 0.0.
      eps_in_sqrt: add ``eps`` inside the square root. Default True.
      bias_correction: divide ``nu_k`` by ``1 - decay^k`` (not with ``decay=None`` or ``init_from_first``).
        Default False.
      init_from_first: keyword only; start the average at the first squared gradient. Default False. Not in
        Optax.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByRmsState``, or ``ScaleByRmsWithCountState`` with
      ``bias_correction``, ``decay=None`` or ``init_from_first``.

    Raises:
      ValueError: at construction, for a value out of range (``scale_by_rms(decay=1.5): decay must be in
        [0, 1]``) or options that contradict each other (``scale_by_rms(bias_correction=True): bias_correction
        must be False with decay=None (nothing to correct)``, ``initial_scale must be 0 with decay=None``).
      TypeError: at construction, for a hyperparameter of the wrong kind (a string, a non-bool flag); in
        ``update``, for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_rms()
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates)  # g / sqrt(0.1 g^2)
      [ 3.1623 -3.1623]
      >>> tx = gradtx.scale_by_rms(bias_correction=True)
      >>> print(tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))[0])
      [ 1. -1.]
    """

    decay: Scalar | None = hyper(default=0.9, lo=0.0, hi=1.0, optional=True)
    eps: Scalar = non_negative(default=1e-8)
    initial_scale: Scalar = non_negative(default=0.0)
    eps_in_sqrt: bool = flag(default=True)
    bias_correction: bool = flag(default=False)
    init_from_first: bool = flag(default=False, kw_only=True)

    moments = (Moment("nu", start="initial_scale"),)
    _states = (ScaleByRmsState, ScaleByRmsWithCountState)

    def __check_init__(self) -> None:
        if self.bias_correction and (self.decay is None or self.init_from_first):
            other = "decay=None" if self.decay is None else "init_from_first=True"
            self._fail("bias_correction", True, f"must be False with {other} (nothing to correct)")
        if self.decay is None and (v := concrete_number(self.initial_scale)) is not None and v != 0.0:
            self._fail("initial_scale", self.initial_scale, "must be 0 with decay=None (an equal-weight mean)")

    @property
    def _counts(self) -> bool:
        return self.bias_correction or self.decay is None or self.init_from_first

    def direction(self, x: tree.Leaf, step: Step, g: Any, nu: Any) -> tuple[Any, ...]:
        if self.decay is None:  # the running mean nu_k = nu_{k-1} + (g_k^2 - nu_{k-1}) / k
            n = x.as_real(nu)  # a complex parameter's nu is stored complex (as in Optax), real-valued
            v = n + (x.abs_sq(g) - n) / x.as_real(step.k)
        else:
            v = x.ema_real(self.decay, nu, x.abs_sq(g))
            if self.init_from_first:
                v = jnp.where(step.count == 0, x.abs_sq(g), v)
        v = x.store(v, nu)  # the output uses the stored moment, as Optax's
        v_hat = x.as_real(v) / x.debias(self.decay, step.k) if self.bias_correction else x.as_real(v)
        return _inverse_root(x, g, v_hat, self.eps, self.eps_in_sqrt), v


@pytree_class
class scale_by_rss(AdamLike[ScaleByRssState]):
    """Adagrad's scaling (Duchi, Hazan & Singer 2011, "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization", JMLR 12): divide by the root of the sum of past squares.

    ::

        s_k = s_{k-1} + |g_k|^2,     s_0 = initial_accumulator_value
        u = g_k / sqrt(s_k + eps)    where s_k > 0;  0 where s_k = 0

    and NaN where ``s_k`` overflowed to ``inf`` (see the module docstring). Optax's arithmetic, bit for bit.

    Args:
      initial_accumulator_value: ``s_0``, >= 0. Default 0.1.
      eps: added to the sum inside the square root, >= 0. Default 1e-7.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByRssState``.

    Raises:
      ValueError: at construction, for a negative or NaN value, e.g. ``scale_by_rss(eps=-1.0): eps must be
        >= 0``.
      TypeError: at construction, for a hyperparameter of the wrong kind (``None``, a string); in ``update``,
        for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_rss(initial_accumulator_value=0.0, eps=0.0)
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(updates)  # g / sqrt(g^2)
      [ 1. -1.]
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(updates)  # g / sqrt(2 g^2)
      [ 0.7071 -0.7071]
    """

    initial_accumulator_value: Scalar = non_negative(default=0.1)
    eps: Scalar = non_negative(default=1e-7)

    State = ScaleByRssState
    moments = (Moment("sum_of_squares", start="initial_accumulator_value"),)
    counts = ()

    def direction(self, x: tree.Leaf, step: Step, g: Any, sum_of_squares: Any) -> tuple[Any, ...]:
        s = x.as_real(x.store(x.as_real(sum_of_squares) + x.abs_sq(g), sum_of_squares))  # the stored sum
        # 0 where s == 0 (Optax's where(s > 0, rsqrt(s + eps), 0)); NaN where s overflowed (not g * 0)
        d = jnp.where(s == 0, jnp.zeros_like(s), s + x.hyper(self.eps))
        return times_inverse(x.cast(g), d, cast=x.cast), s


@pytree_class
class scale_by_stddev(_CountedWhenNeeded[ScaleByRStdDevState | ScaleByRStdDevWithCountState]):
    """Divide by the running standard deviation (centred RMSProp): ``u = g / sqrt(nu_hat - mu_hat^2 + eps)``.

    Centred RMSProp (Graves 2013, "Generating Sequences With Recurrent Neural Networks", arXiv 1308.0850,
    eq. 38-41)::

        mu_k = decay mu_{k-1} + (1 - decay) g_k,          mu_0 = 0
        nu_k = decay nu_{k-1} + (1 - decay) |g_k|^2,      nu_0 = initial_scale
        u = g_k / sqrt(max(nu_hat - |mu_hat|^2, 0) + eps)   (eps_in_sqrt=False: / (sqrt(.) + eps))

    with ``x_hat = x_k / (1 - decay^k)`` under ``bias_correction``, else ``x_k``. The variance is clamped at
    0: exact averages never go below it, rounded ones can (bfloat16 state, ``decay=0``), and Optax then
    returns NaN.

    Args:
      decay: the decay of both averages, in [0, 1]. Default 0.9.
      eps: added to the variance (or to its root with ``eps_in_sqrt=False``), >= 0. Default 1e-8.
      initial_scale: ``nu_0``, >= 0. Default 0.0.
      eps_in_sqrt: add ``eps`` inside the square root. Default True.
      bias_correction: divide both averages by ``1 - decay^k``. Default False.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByRStdDevState``, or ``ScaleByRStdDevWithCountState``
      with ``bias_correction``.

    Raises:
      ValueError: at construction, for a value out of range, e.g. ``scale_by_stddev(decay=1.5): decay must be
        in [0, 1]``.
      TypeError: at construction, for a hyperparameter of the wrong kind (``None``, a string, a non-bool
        flag); in ``update``, for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_stddev()
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates)  # g / sqrt(0.1 g^2 - 0.01 g^2) = g / (0.3 |g|)
      [ 3.3333 -3.3333]
    """

    decay: Scalar = probability(default=0.9, closed=True)
    eps: Scalar = non_negative(default=1e-8)
    initial_scale: Scalar = non_negative(default=0.0)
    eps_in_sqrt: bool = flag(default=True)
    bias_correction: bool = flag(default=False)

    moments = (Moment("mu"), Moment("nu", start="initial_scale"))
    _states = (ScaleByRStdDevState, ScaleByRStdDevWithCountState)

    @property
    def _counts(self) -> bool:
        return self.bias_correction

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any, nu: Any) -> tuple[Any, ...]:
        m = x.store(x.ema(self.decay, mu, g), mu)  # stored first: the output uses the stored moments
        v = x.store(x.ema_real(self.decay, nu, x.abs_sq(g)), nu)
        m_hat, v_hat = x.cast(m), x.as_real(v)
        if self.bias_correction:
            m_hat, v_hat = m_hat / x.cast(x.debias(self.decay, step.k)), v_hat / x.debias(self.decay, step.k)
        # E[g^2] - E[g]^2 >= 0 for the exact averages; rounding (low-precision state, decay 0) can push it below
        # 0, where the square root would give NaN: clamp at 0 (no effect on a non-negative value).
        variance = jnp.maximum(v_hat - x.abs_sq(m_hat), 0)
        return _inverse_root(x, g, variance, self.eps, self.eps_in_sqrt), m, v

