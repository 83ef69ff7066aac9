"""Sign-based and step-size-adaptive blocks: the direction is a sign, or the step is set by the data.

``k`` is the 1-based step, ``g_k`` the incoming update (the gradient); every block returns a *positive*
direction, the descent sign is added by ``scale_by_learning_rate`` in the recipes
(``gradtx.optimizers.sign_family``).

    scale_by_lion:                 c_k = b1 m_{k-1} + (1 - b1) g_k;  u = sign(c_k);  m_k = b2 m_{k-1} + (1 - b2) g_k
                                   (Chen et al. 2023, arXiv 2302.06675)
    scale_by_adadelta:             E[g^2]_k = rho E[g^2]_{k-1} + (1 - rho) g_k^2
                                   u = sqrt(E[dx^2]_{k-1} + eps) / sqrt(E[g^2]_k + eps) * g_k
                                   E[dx^2]_k = rho E[dx^2]_{k-1} + (1 - rho) u^2      (Zeiler 2012, arXiv 1212.5701)
    scale_by_rprop:                per coordinate step sizes, times eta_plus while the gradient keeps its sign,
                                   times eta_minus (and no move) when it flips; u = step * sign(g)
                                   (Riedmiller & Braun 1993; the iRprop- variant of Igel & Huesken 2000)
    scale_by_optimistic_gradient:  u = (alpha + beta) g_k - beta g_{k-1},  g_0 := g_1
                                   (Daskalakis et al. 2018, arXiv 1711.00141; Mokhtari et al. 2019, 1901.08511)
    scale_by_novograd:             per layer: v_k = b2 v_{k-1} + (1 - b2) ||g_k||^2 (v_1 = ||g_1||^2),
                                   m_k = b1 m_{k-1} + g_k / (sqrt(v_k + eps_root) + eps) + wd * p;  u = m_k
                                   (Ginsburg et al. 2019, arXiv 1905.11286)
    scale_by_polyak:               u = min((f - f*) / (||g||^2 + eps), max_learning_rate) * g
                                   (Loizou et al. 2021, arXiv 2002.10542); needs ``value=f`` in ``update``

Arithmetic runs in float32 or wider (``gradtx.tree.Leaf``); state is stored in the parameter dtype (``mu_dtype``
overrides Lion's and NovoGrad's first moment), outputs in the dtype of the incoming updates. Lion, Adadelta,
Rprop and NovoGrad keep per-leaf moments: their skeleton is :class:`gradtx.transforms.adam_base.AdamLike`.

Second moments that overflow (issue 15): Adadelta's ``E[g^2]`` and NovoGrad's ``v`` become ``inf`` for a float32
gradient above ~1.8e19; the output is then NaN, not a silent 0 (``gradtx.tree.precision.scale_ratio``), and
NovoGrad with ``eps = eps_root = 0`` maps a layer whose gradients were all 0 to 0, not NaN. Polyak's step uses
the squared global norm itself, which overflows for such gradients (the step then rounds to 0).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from gradtx import tree
from gradtx.base import (
    EmptyState,
    GradientTransformation,
    Params,
    Scalar,
    StatelessTransformation,
    Updates,
    check_tree_match,
)
from gradtx.fields import (
    choice,
    concrete_number,
    dtype_option,
    hyper,
    non_negative,
    positive,
    probability,
    pytree_class,
    real,
)
from gradtx.transforms.adam_base import AdamLike, Moment, Step
from gradtx.tree.precision import safe_sqrt, scale_ratio

__all__ = [
    "ScaleByAdaDeltaState",
    "ScaleByLionState",
    "ScaleByNovogradState",
    "ScaleByOptimisticGradientState",
    "ScaleByRpropState",
    "scale_by_adadelta",
    "scale_by_lion",
    "scale_by_novograd",
    "scale_by_optimistic_gradient",
    "scale_by_polyak",
    "scale_by_rprop",
]

# A squared gradient norm (plus eps) at or below this gives a zero Polyak step instead of a division by ~0.
# It is the float64 machine epsilon, Optax's threshold (``jnp.finfo(float).eps``) whatever the dtype.
_POLYAK_TINY = float(np.finfo(np.float64).eps)


class ScaleByLionState(NamedTuple):
    """The state of ``scale_by_lion``.

    Attributes:
      count: the number of updates so far, an int32 scalar.
      mu: the momentum ``m_k``, the ``b2`` average of past gradients, one array per parameter (in ``mu_dtype``
        if set).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_lion()  # b2 = 0.99
      >>> _, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.count, state.mu)  # 0.01 g
      1 [ 0.01 -0.02]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    mu: Updates


class ScaleByAdaDeltaState(NamedTuple):
    """The state of ``scale_by_adadelta``.

    Attributes:
      e_g: the running average ``E[g^2]`` of squared gradients, one array per parameter.
      e_x: the running average ``E[dx^2]`` of squared (unscaled) updates, one array per parameter.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_adadelta()  # rho = 0.9
      >>> _, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.e_g, state.e_x)  # 0.1 g^2; 0.1 u^2 with u ~ 0.0032
      [0.1 0.4] [1.e-06 1.e-06]
    """

    e_g: Updates
    e_x: Updates


class ScaleByRpropState(NamedTuple):
    """The state of ``scale_by_rprop``.

    Attributes:
      step_sizes: the per-coordinate step sizes ``d_i``, one array per parameter.
      prev_updates: the previous signed steps ``s_i`` (0 after a sign flip), one array per parameter.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_rprop(learning_rate=0.1)
      >>> _, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.step_sizes, state.prev_updates)
      [0.1 0.1] [ 0.1 -0.1]
    """

    step_sizes: Updates
    prev_updates: Updates


class ScaleByOptimisticGradientState(NamedTuple):
    """The state of ``scale_by_optimistic_gradient``.

    Attributes:
      is_initial_step: whether no update has happened yet, a boolean scalar.
      previous_gradient: the previous raw gradient ``g_{k-1}``, one array per parameter.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_optimistic_gradient()
      >>> _, state = tx.update(jnp.array([1.0, 2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.is_initial_step, state.previous_gradient)
      False [1. 2.]
    """

    is_initial_step: jax.Array
    previous_gradient: Updates


class ScaleByNovogradState(NamedTuple):
    """The state of ``scale_by_novograd``.

    Attributes:
      count: the number of updates so far, an int32 scalar.
      mu: the first moment ``m_k``, one array per parameter (in ``mu_dtype`` if set).
      nu: the layer-wise second moment ``v_k``, one scalar per parameter leaf.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_novograd()
      >>> params = jnp.zeros(2)
      >>> _, state = tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)
      >>> print(state.count, state.mu, state.nu)  # v_1 = ||g||^2, m_1 = g / ||g||
      1 [0.6 0.8] 25.0
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    mu: Updates
    nu: Updates


# --------------------------------------------------------------------------------------------------
# Lion
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_lion(AdamLike[ScaleByLionState]):
    """Lion's direction (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", NeurIPS, arXiv
    2302.06675): the sign of an interpolated momentum.

    With ``m_0 = 0``::

        c_k = b1 m_{k-1} + (1 - b1) g_k
        u = sign(c_k)
        m_k = b2 m_{k-1} + (1 - b2) g_k

    The interpolation ``b1`` shapes the step, the slower ``b2`` keeps the momentum. ``mode`` picks the sign
    function: ``'hard'`` (the paper's ``sign``: every coordinate of the output is -1, 0 or +1), ``'smooth'``
    (``tanh(smooth_beta * c)``) or ``'refined'`` (``c`` where ``|c| < 1``, else ``sign(c)``, i.e.
    ``clip(c, -1, 1)``). The output is the positive direction; ``lion`` chains the learning rate and its sign.

    Args:
      b1: the interpolation weight of the momentum in the step, in [0, 1]. Default 0.9.
      b2: the decay of the momentum, in [0, 1]. Default 0.99.
      mu_dtype: the dtype ``mu`` is stored in, a floating dtype or ``None`` (the default: the parameter's).
      mode: keyword only; ``'hard'``, ``'smooth'`` or ``'refined'``. Default ``'hard'``. Not in Optax.
      smooth_beta: keyword only; the slope of ``'smooth'`` at 0, > 0. Default 1.0. Not in Optax.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByLionState``.

    Raises:
      ValueError: at construction, for a value out of range (``scale_by_lion(b1=2.0): b1 must be in [0, 1]``,
        ``mode must be one of 'hard', 'smooth', 'refined'``) or a dtype that is not floating.
      TypeError: at construction, for a hyperparameter of the wrong kind (``None``, a string); in ``update``,
        for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_lion()
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates)
      [ 1. -1.]
    """

    b1: Scalar = probability(default=0.9, closed=True)
    b2: Scalar = probability(default=0.99, closed=True)
    mu_dtype: DTypeLike | None = dtype_option(default=None)
    mode: str = choice(default="hard", choices=("hard", "smooth", "refined"), kw_only=True)
    smooth_beta: Scalar = positive(default=1.0, kw_only=True)

    State = ScaleByLionState
    moments = (Moment("mu", "mu_dtype"),)

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any) -> tuple[Any, Any]:
        c = x.ema(self.b1, mu, g)  # exact complements (gradtx.tree.ema)
        if self.mode == "hard":
            out = jnp.sign(c)
        elif self.mode == "smooth":
            out = jnp.tanh(x.hyper(self.smooth_beta) * c)
        else:  # refined: linear near 0, the sign beyond 1
            out = jnp.where(jnp.abs(c) < 1, c, jnp.sign(c))
        return out, x.ema(self.b2, mu, g)


# --------------------------------------------------------------------------------------------------
# Adadelta
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_adadelta(AdamLike[ScaleByAdaDeltaState]):
    """Adadelta's rescaling (Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method", arXiv 1212.5701).

    Algorithm 1 of the paper, with ``RMS[y]_k = sqrt(E[y^2]_k + eps)``::

        E[g^2]_k  = rho E[g^2]_{k-1} + (1 - rho) g_k^2
        u_k       = RMS[dx]_{k-1} / RMS[g]_k * g_k
        E[dx^2]_k = rho E[dx^2]_{k-1} + (1 - rho) u_k^2

    from ``E[g^2]_0 = E[dx^2]_0 = 0``. Sign convention: the paper's step is ``dx_k = -u_k`` (eq. 14); this
    block returns ``+u_k`` like every gradtx block, and the descent sign comes from
    ``scale_by_learning_rate`` after it (``adadelta(learning_rate=None)`` uses a learning rate of 1 and so
    is exactly the paper's method). The accumulator ``E[dx^2]`` sees the unscaled ``u_k``, as in Optax:
    a learning rate other than 1 scales the step, not the statistics. The first steps are about
    ``sqrt(eps) / sqrt(1 - rho)`` per coordinate; they grow as ``E[dx^2]`` does.

    Args:
      rho: the decay of both averages, in [0, 1]. Default 0.9.
      eps: added to both mean squares, > 0 (with ``eps = 0`` the first step is 0 and the method never moves).
        Default 1e-6.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByAdaDeltaState``.

    Raises:
      ValueError: at construction, for a value out of range (``scale_by_adadelta(eps=0.0): eps must be > 0``).
      TypeError: at construction, for a hyperparameter that is not a real number; in ``update``, for updates
        whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_adadelta()
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> print(updates)  # sqrt(1e-6) / sqrt(0.1 g^2) g
      [ 0.0032 -0.0032]
    """

    rho: Scalar = probability(default=0.9, closed=True)
    eps: Scalar = positive(default=1e-6)

    State = ScaleByAdaDeltaState
    moments = (Moment("e_g"), Moment("e_x"))
    counts = ()

    def direction(self, x: tree.Leaf, step: Step, g: Any, e_g: Any, e_x: Any) -> tuple[Any, Any, Any]:
        eps = x.hyper(self.eps)
        new_e_g = x.ema(self.rho, e_g, x.abs_sq(g))  # exact complement
        u = scale_ratio(jnp.sqrt(x.cast(e_x) + eps), jnp.sqrt(new_e_g + eps)) * x.cast(g)  # NaN if E[g^2] = inf
        return u, new_e_g, x.ema(self.rho, e_x, x.abs_sq(u))


# --------------------------------------------------------------------------------------------------
# Rprop
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_rprop(AdamLike[ScaleByRpropState]):
    """Resilient backpropagation (Riedmiller & Braun 1993, "A direct adaptive method for faster
    backpropagation learning: the RPROP algorithm", IEEE ICNN), in the iRprop- form Optax implements.

    Each coordinate ``i`` keeps a step size ``d_i`` (initially ``learning_rate``) and its previous step
    ``s_i`` (``sign(g_i) d_i``, or 0 after a sign flip). With ``q_i = sign(g_i) sign(s_i)``::

        q_i > 0:  d_i <- clip(d_i * eta_plus,  min_step_size, max_step_size);  u_i = d_i sign(g_i)
        q_i < 0:  d_i <- clip(d_i * eta_minus, min_step_size, max_step_size);  u_i = 0   (and s_i <- 0)
        q_i = 0:  d_i unchanged;                                               u_i = d_i sign(g_i)

    Only the sign of the gradient is used (Igel & Huesken 2000, "Improving the Rprop learning algorithm":
    iRprop- forgets the gradient after a sign change, so the next step neither grows nor shrinks). The
    output is the positive step; ``rprop`` flips the sign. The paper bounds growth by ``max_step_size`` and
    shrinkage by ``min_step_size``; clipping into both bounds is the same while ``learning_rate`` lies in
    ``[min_step_size, max_step_size]``.

    Difference from Optax 0.2.8: Optax's ``scale_by_rprop`` returns the *previous* step (the stale
    ``state.prev_updates``), so its first update is 0 and every later one lags a step (a known defect, its
    pull request #1725). This block returns the step it has just computed, as the paper and
    ``torch.optim.Rprop`` do; the state (step sizes and ``prev_updates``) is the same as Optax's.

    Args:
      learning_rate: the initial step size of every coordinate, > 0.
      eta_minus: the factor on a step size after a sign flip, in (0, 1]. Default 0.5.
      eta_plus: the factor on a step size while the sign is kept, >= 1. Default 1.2.
      min_step_size: the smallest step size, >= 0. Default 1e-6.
      max_step_size: the largest step size, > 0 and >= ``min_step_size``. Default 50.0.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByRpropState``.

    Raises:
      ValueError: at construction, for a value out of range (``scale_by_rprop(learning_rate=0.0):
        learning_rate must be > 0``, ``scale_by_rprop(max_step_size=1.0): max_step_size must be >=
        min_step_size=2.0``).
      TypeError: at construction, for a hyperparameter that is not a real number; in ``update``, for updates
        whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_rprop(learning_rate=0.1)
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> print(updates)
      [ 0.1 -0.1]
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), state)  # same signs: step sizes times 1.2
      >>> print(updates)
      [ 0.12 -0.12]
    """

    learning_rate: Scalar = positive()
    eta_minus: Scalar = hyper(default=0.5, lo=0.0, hi=1.0, lo_open=True)
    eta_plus: Scalar = hyper(default=1.2, lo=1.0)
    min_step_size: Scalar = non_negative(default=1e-6)
    max_step_size: Scalar = positive(default=50.0)

    State = ScaleByRpropState
    moments = (Moment("step_sizes", start="learning_rate"), Moment("prev_updates"))
    counts = ()

    def __check_init__(self) -> None:
        lo, hi = concrete_number(self.min_step_size), concrete_number(self.max_step_size)
        if lo is not None and hi is not None and lo > hi:
            self._fail("max_step_size", self.max_step_size, f"must be >= min_step_size={self.min_step_size!r}")

    def direction(self, x: tree.Leaf, step: Step, g: Any, d: Any, s: Any) -> tuple[Any, Any, Any]:
        g, d = x.cast(g), x.cast(d)
        sign_g = jnp.sign(g)
        q = sign_g * jnp.sign(x.cast(s))  # the sign of g * s without its underflow
        factor = jnp.where(q > 0, x.hyper(self.eta_plus), x.hyper(self.eta_minus))
        new_d = jnp.where(q == 0, d, jnp.clip(d * factor, x.hyper(self.min_step_size), x.hyper(self.max_step_size)))
        u = jnp.where(q < 0, jnp.zeros_like(g), new_d * sign_g)
        return u, new_d, u


# --------------------------------------------------------------------------------------------------
# Optimistic gradient
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_optimistic_gradient(GradientTransformation):
    """Generalised optimistic gradient: ``u_k = (alpha + beta) g_k - beta g_{k-1}``.

    Optimistic mirror descent (Daskalakis, Ilyas, Syrgkanis & Zeng 2018, "Training GANs with Optimism", ICLR,
    arXiv 1711.00141) is ``alpha = beta = 1``: ``x <- x - lr (2 g_k - g_{k-1})``, a one-call approximation of
    extra-gradient that converges in last iterate on bilinear games; ``alpha``/``beta`` as in Mokhtari,
    Ozdaglar & Pattathil (2020, "A Unified Analysis of Extra-gradient and Optimistic Gradient Methods for
    Saddle Point Problems", AISTATS, arXiv 1901.08511). There is no ``g_0``: the first step uses
    ``g_0 := g_1`` (so ``u_1 = alpha g_1``), Optax's convention (its issue #1082). The state keeps the raw
    gradient.

    Args:
      alpha: the weight of the current gradient, a finite real number. Default 1.0.
      beta: the weight of the correction ``g_k - g_{k-1}``, a finite real number. Default 1.0.

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByOptimisticGradientState``.

    Raises:
      ValueError: at construction, for a non-finite ``alpha`` or ``beta``.
      TypeError: at construction, for an ``alpha`` or ``beta`` that is not a real number
        (``scale_by_optimistic_gradient(alpha='a'): alpha must be a finite real number, not str``); in
        ``update``, for updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_optimistic_gradient()
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, 2.0]), state)  # u_1 = g_1
      >>> updates, state = tx.update(jnp.array([3.0, 0.0]), state)
      >>> print(updates)  # 2 g_2 - g_1
      [ 5. -2.]
    """

    alpha: Scalar = real(default=1.0)
    beta: Scalar = real(default=1.0)

    def init(self, params: Params) -> ScaleByOptimisticGradientState:
        return ScaleByOptimisticGradientState(
            is_initial_step=jnp.ones([], bool), previous_gradient=tree.zeros_like(params)
        )

    def update(
        self, updates: Updates, state: ScaleByOptimisticGradientState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ScaleByOptimisticGradientState]:
        del params, extra
        check_tree_match("scale_by_optimistic_gradient.update", state.previous_gradient, updates)

        def one(g: Any, prev: Any) -> Any:
            x = tree.Leaf(g)
            alpha, beta = x.hyper(self.alpha), x.hyper(self.beta)
            g = x.cast(g)
            prev = jnp.where(state.is_initial_step, g, x.cast(prev))
            return x.out((alpha + beta) * g - beta * prev)

        out = jax.tree.map(one, updates, state.previous_gradient)
        previous = tree.cast_like(updates, state.previous_gradient)
        return out, ScaleByOptimisticGradientState(is_initial_step=jnp.zeros([], bool), previous_gradient=previous)


# --------------------------------------------------------------------------------------------------
# NovoGrad
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_novograd(AdamLike[ScaleByNovogradState]):
    """NovoGrad's layer-wise direction (Ginsburg et al. 2019, "Stochastic Gradient Methods with Layer-wise
    Adaptive Moments for Training of Deep Networks", arXiv 1905.11286, Algorithm 1).

    Per leaf ``l`` (a layer), with one scalar second moment ``v^l``::

        v^l_1 = ||g^l_1||^2,            v^l_k = b2 v^l_{k-1} + (1 - b2) ||g^l_k||^2
        m^l_k = b1 m^l_{k-1} + g^l_k / (sqrt(v^l_k + eps_root) + eps) + weight_decay * p^l,   m^l_0 = 0
        u = m_k

    The first moment has no ``(1 - b1)`` factor, as in the paper. The update needs ``params`` (the weight
    decay term), like Optax's. The output is always in the dtype of the incoming updates.

    Args:
      b1: the decay of the first moment, in [0, 1]. Default 0.9.
      b2: the decay of the second moment, in [0, 1]. Default 0.25.
      eps: added to the denominator outside the square root, >= 0. Default 1e-8.
      eps_root: added inside the square root, >= 0. Default 0.0.
      weight_decay: the weight decay added to the normalised gradient, a finite real number. Default 0.0.
      mu_dtype: the dtype ``mu`` is stored in, a floating dtype or ``None`` (the default: the parameter's).

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByNovogradState``.

    Raises:
      ValueError: at construction, for a value out of range (``scale_by_novograd(b2=1.5): b2 must be in
        [0, 1]``) or a dtype that is not floating; in ``update``, without params
        (``scale_by_novograd.update: params are required (call update(updates, state, params))``).
      TypeError: at construction, for a hyperparameter of the wrong kind (``None``, a string); in ``update``,
        for updates or params whose tree differs from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_novograd()
      >>> params = jnp.zeros(2)
      >>> updates, state = tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)
      >>> print(updates)  # g / ||g||
      [0.6 0.8]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "its second moment is one gradient norm per leaf"

    b1: Scalar = probability(default=0.9, closed=True)
    b2: Scalar = probability(default=0.25, closed=True)
    eps: Scalar = non_negative(default=1e-8)
    eps_root: Scalar = non_negative(default=0.0)
    weight_decay: Scalar = real(default=0.0)
    mu_dtype: DTypeLike | None = dtype_option(default=None)

    State = ScaleByNovogradState
    moments = (Moment("mu", "mu_dtype"), Moment("nu", start=lambda block, p, dtype: jnp.zeros([], jnp.result_type(p))))
    needs_params = True

    def update(
        self, updates: Updates, state: ScaleByNovogradState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ScaleByNovogradState]:
        if params is not None:
            check_tree_match("scale_by_novograd.update", state.mu, params, what="params")
        return super().update(updates, state, params, **extra)

    def direction(self, x: tree.Leaf, step: Step, g: Any, m: Any, n: Any, p: Any) -> tuple[Any, Any, Any]:
        g = x.cast(g)
        sq = jnp.sum(tree.abs_sq(g))  # the layer's squared norm
        new_n = jnp.where(step.count == 0, sq, x.ema(self.b2, n, sq))
        denom = safe_sqrt(new_n + x.hyper(self.eps_root)) + x.hyper(self.eps)
        new_m = x.hyper(self.b1) * x.cast(m) + scale_ratio(g, denom) + x.hyper(self.weight_decay) * x.cast(p)
        return new_m, new_m, new_n


# --------------------------------------------------------------------------------------------------
# Polyak step size
# --------------------------------------------------------------------------------------------------


@pytree_class
class scale_by_polyak(StatelessTransformation):
    """Scale by Polyak's step size: ``u = gamma * g`` with ``gamma = min((f - f_min) / (||g||^2 + eps), max_lr)``.

    The stochastic Polyak step SPS_max of Loizou, Vaswani, Laradji & Lacoste-Julien (2021, "Stochastic
    Polyak Step-size for SGD: An Adaptive Learning Rate for Fast Convergence", AISTATS, arXiv 2002.10542) with
    ``c = 1``: ``f`` is the loss at the current parameters, ``f_min`` a lower bound on it (0 for models that
    interpolate the data), ``max_learning_rate`` the cap ``gamma_b``. ``||g||`` is the norm of the whole
    update tree. ``variant='sps+'`` uses the positive part ``max(f - f_min, 0)`` (Garrigos et al. 2023, arXiv
    2307.14528); with ``'sps'`` a loss below ``f_min`` gives a negative step. When ``||g||^2 + eps`` is at most
    the float64 machine epsilon the step is 0 (no division by zero).

    ``update`` needs the loss as the extra keyword argument ``value``:
    ``tx.update(grads, state, params, value=loss)``; chains pass it through. The output is the positive step;
    ``polyak_sgd`` flips the sign. Stateless (state ``EmptyState()``).

    Args:
      f_min: the lower bound on the loss, a finite real number. Default 0.0.
      max_learning_rate: the largest step size, > 0. Default 1.0.
      eps: added to ``||g||^2``, >= 0. Default 0.0.
      variant: ``'sps'`` or ``'sps+'``. Default ``'sps'``.

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState``.

    Raises:
      ValueError: at construction, for a value out of range (``scale_by_polyak(max_learning_rate=0.0):
        max_learning_rate must be > 0``, ``variant must be one of 'sps', 'sps+'``).
      TypeError: at construction, for a hyperparameter that is not a real number; in ``update``, without the
        ``value`` keyword argument (``scale_by_polyak.update: the loss value is required as a keyword
        argument: ...``), as in Optax.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.scale_by_polyak()
      >>> updates, state = tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)), value=12.5)
      >>> print(updates)  # gamma = 12.5 / 25 = 0.5
      [1.5 2. ]
    """

    f_min: Scalar = real(default=0.0)
    max_learning_rate: Scalar = positive(default=1.0)
    eps: Scalar = non_negative(default=0.0)
    variant: str = choice(default="sps", choices=("sps", "sps+"))

    def update(
        self, updates: Updates, state: EmptyState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, EmptyState]:
        del params
        value = extra.get("value")
        if value is None:  # a missing argument: TypeError, as in Optax (whose update has value as a parameter)
            raise TypeError(
                "scale_by_polyak.update: the loss value is required as a keyword argument: "
                "call update(updates, state, params, value=loss) (chains such as polyak_sgd pass it on)"
            )
        sq = tree.norm(updates, squared=True)  # float32 or wider
        dt = sq.dtype
        gap = tree.hyper(value, dt) - tree.hyper(self.f_min, dt)
        if self.variant == "sps+":
            gap = jnp.maximum(gap, 0)
        denom = sq + tree.hyper(self.eps, dt)
        tiny = denom <= _POLYAK_TINY
        step = jnp.where(
            tiny, jnp.zeros_like(denom),
            jnp.minimum(gap / jnp.where(tiny, jnp.ones_like(denom), denom), tree.hyper(self.max_learning_rate, dt)),
        )

        def scaled(g: Any) -> Any:
            x = tree.Leaf(g)
            return x.out(x.cast(step) * x.cast(g))

        return jax.tree.map(scaled, updates), state
