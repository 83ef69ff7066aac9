"""Prodigy and D-Adaptation AdamW: AdamW whose step size ``d_k`` estimates the distance to the solution
(``optax.contrib.prodigy`` and ``optax.contrib.dadapt_adamw``: same names, signatures, defaults, state fields).

``k`` is the 1-based step, ``x_k`` the parameters passed to the ``k``-th ``update``, ``g_k`` its updates,
``x_0`` the parameters given to ``init``; inner products and norms are over the whole tree::

    prodigy:       Adam(W) with step d_k lr_k, d_k the Prodigy estimate          (Mishchenko & Defazio 2023)
    dadapt_adamw:  Adam(W) with step d_k lr_k, d_k the D-Adaptation estimate     (Defazio & Mishchenko 2023)

The scalars (``d``, the weighted numerator ``r``) are kept in ``tree.widest_real_dtype(params)`` (float32 or
wider); the moments are stored in each parameter's dtype and computed in its compute dtype (float32 or wider).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    Params,
    Scalar,
    ScalarOrSchedule,
    Updates,
    check_tree_match,
    require_params,
    safe_int32_increment,
    zero_count,
)
from gradtx.contrib._common import difference, dot, l1_norm, safe_sqrt, schedule_value
from gradtx.fields import (
    Check,
    HyperparameterError,
    InvalidType,
    flag,
    non_negative,
    option,
    positive,
    probability,
    pytree_class,
    scalar_or_schedule,
)
from gradtx.tree.precision import complement, debias, ema, widest_real_dtype

__all__ = ["DAdaptAdamWState", "ProdigyState", "dadapt_adamw", "prodigy"]


class ProdigyState(NamedTuple):
    """The state of :class:`prodigy` (Optax's field names).

    Attributes:
      exp_avg: the first moment ``m``, like the parameters.
      exp_avg_sq: the second moment ``v``, like the parameters.
      grad_sum: the weighted gradient sum ``s``, like the parameters.
      params0: the initial parameters ``x_0``.
      estim_lr: the distance estimate ``d`` (a scalar in the statistics dtype, float32 or wider).
      numerator_weighted: the weighted numerator ``r`` (a scalar).
      count: the number of steps taken, an int32 scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.prodigy().init(jnp.ones(2))
      >>> print(state.estim_lr, state.params0)
      1e-06 [1. 1.]
    """

    exp_avg: Updates
    exp_avg_sq: Updates
    grad_sum: Updates
    params0: Updates
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count


class DAdaptAdamWState(NamedTuple):
    """The state of :class:`dadapt_adamw` (Optax's field names).

    Attributes:
      exp_avg: the first moment ``m``, like the parameters.
      exp_avg_sq: the second moment ``v``, like the parameters.
      grad_sum: the weighted gradient sum ``s``, like the parameters.
      estim_lr: the distance estimate ``d`` (a scalar in the statistics dtype, float32 or wider).
      numerator_weighted: the weighted numerator ``r`` (a scalar).
      count: the number of steps taken, an int32 scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.dadapt_adamw().init(jnp.ones(2))
      >>> print(state.estim_lr, state.count)
      1e-06 0
    """

    exp_avg: Updates
    exp_avg_sq: Updates
    grad_sum: Updates
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count


class _Step(NamedTuple):
    """The scalars a D-Adaptation step starts from, in the statistics dtype ``dt``."""

    dt: Any
    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    d: jax.Array
    dlr: jax.Array


_BETA = Check("number", lo=0.0, hi=1.0, hi_open=True)
_BETAS = "a pair (b1, b2) of real numbers in [0, 1)"


def _sqrt_decay(b: Any) -> Any:
    """``sqrt(b)``: a Python float for a Python number (so that ``1 - sqrt(b)`` is formed exactly), else an array."""
    if isinstance(b, (int, float, np.integer, np.floating)) and not isinstance(b, bool):
        return math.sqrt(float(b))
    return safe_sqrt(tree.up(jnp.asarray(b)))


class _AdaptiveAdamW(GradientTransformation):
    """Shared checks, state and step preamble of the D-Adaptation family (Prodigy, D-Adaptation AdamW)."""

    learning_rate: Any
    betas: Any
    estim_lr0: Any

    def __check_init__(self) -> None:
        betas = self.betas
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            self._fail("betas", betas, "must be a pair (b1, b2)", InvalidType)
        object.__setattr__(self, "betas", tuple(betas))
        for i, b in enumerate(betas):
            try:
                _BETA(type(self).__name__, f"betas[{i}]", b)
            except HyperparameterError as e:  # "betas must have betas[1] in [0, 1)"
                requirement = str(e).split(f"betas[{i}] must be ", 1)[1]
                self._fail("betas", self.betas, f"must have betas[{i}] {requirement}", type(e))

    def _fresh(self, params: Params) -> dict[str, Any]:
        """The state fields both start with: zero moments and gradient sum, ``d = estim_lr0``, ``r = 0``."""
        dt = widest_real_dtype(params)
        return {"exp_avg": tree.zeros_like(params), "exp_avg_sq": tree.zeros_like(params),
                "grad_sum": tree.zeros_like(params), "estim_lr": tree.hyper(self.estim_lr0, dt),
                "numerator_weighted": jnp.zeros([], dt), "count": zero_count()}

    def _start(
        self, name: str, updates: Updates, state: Any, params: Params | None, bias_correction: bool = True
    ) -> _Step:
        """Checks the call, then ``dlr_k = d_k lr_k sqrt(1 - b2^k) / (1 - b1^k)`` (``d_k lr_k`` without
        ``bias_correction``) with ``lr_k`` the schedule at the 0-based count."""
        require_params(f"{name}.update", params)
        check_tree_match(f"{name}.update", state.exp_avg, updates)
        check_tree_match(f"{name}.update", state.exp_avg, params, what="params")
        dt = state.estim_lr.dtype
        count = safe_int32_increment(state.count)
        t = count.astype(dt)
        lr = jnp.asarray(schedule_value(self.learning_rate, state.count)).astype(dt)
        d = state.estim_lr
        if not bias_correction:
            return _Step(dt, count, d, d * lr)
        b1, b2 = self.betas
        bias = jnp.sqrt(debias(b2, t, dt)) / debias(b1, t, dt)  # gradtx.tree's one correction
        return _Step(dt, count, d, d * lr * bias)


@pytree_class
class prodigy(_AdaptiveAdamW):
    """Prodigy: AdamW whose step size ``d_k`` is estimated on the fly (learning-rate free).

    Mishchenko & Defazio 2023, "Prodigy: An Expeditiously Adaptive Parameter-Free Learner", arXiv 2306.06101,
    Algorithm 4 (the Adam version). With ``lr_k = learning_rate(k - 1)``, ``c_k = sqrt(1 - b2^k) / (1 - b1^k)``
    (``c_k = 1`` with ``use_bias_correction=False``), ``dlr_k = d_k lr_k c_k``, ``d_1 = estim_lr0``, ``b3 =
    sqrt(b2)`` unless given, ``x_0`` the parameters given to ``init`` and inner products and norms over the
    whole tree::

        m_k = b1 m_{k-1} + (1 - b1) d_k g_k
        v_k = b2 v_{k-1} + (1 - b2) d_k^2 g_k^2
        r_k = b3 r_{k-1} + (d_k / d_1) dlr_k <g_k, x_0 - x_k>
        s_k = b3 s_{k-1} + (d_k / d_1) dlr_k g_k          (safeguard_warmup: d_k instead of dlr_k)
        d_{k+1} = max(d_k, estim_lr_coef r_k / ||s_k||_1)
        u_k = -dlr_k m_k / (sqrt(v_k) + d_{k+1} eps) - weight_decay dlr_k x_k

    The paper's ``(1 - b3)`` factors of ``r`` and ``s`` cancel in their ratio and are left out, and both are
    divided by ``d_1``, as in the authors' PyTorch code and Optax; the new estimate ``d_{k+1}`` scales
    ``eps`` (as there). ``learning_rate`` is a schedule multiplier, 1 at its peak. When ``||s_k||_1 = 0``
    (all gradients zero) the estimate keeps ``d_k`` (the authors' code skips the step; Optax gives NaN).
    ``update`` needs ``params``. Names, signature, defaults and state fields of ``optax.contrib.prodigy``.
    State: :class:`ProdigyState`.

    Bias correction in gradtx, Optax and the authors' code: gradtx's default (``use_bias_correction=True``) is
    Optax's behaviour (``optax.contrib.prodigy`` always corrects and has no option). The authors' PyTorch
    ``Prodigy`` (github.com/konstmish/prodigy, ``prodigyopt/prodigy.py``, checked at commit 3efb213) has
    ``use_bias_correction=False`` by default:
    ``c_k = 1``, so ``dlr_k = d_k lr_k``, which scales the step and, through ``dlr_k``, the numerator ``r_k``
    and the sum ``s_k`` (unless ``safeguard_warmup``), hence the estimate ``d_{k+1}``. To reproduce the
    authors' default run, pass ``use_bias_correction=False`` (their ``d0``, ``d_coef`` are ``estim_lr0``,
    ``estim_lr_coef``; their ``growth_rate=inf``, ``decouple=True`` are what gradtx computes). One difference
    stays: with ``b1 = 0`` their step uses ``d_{k+1} g_k`` where gradtx and Optax use ``m_k = d_k g_k``.

    Args:
      learning_rate: a multiplier of the estimated step (1 at its peak), a number or a schedule of the 0-based
        step count. Default 1.
      betas: the pair ``(b1, b2)`` of Adam's decay rates, each in ``[0, 1)``. Default ``(0.9, 0.999)``.
      beta3: the decay of ``r`` and ``s`` in ``[0, 1]``, or None (``sqrt(b2)``). Default None.
      eps: added to ``sqrt(v)`` (scaled by ``d``), ``>= 0``. Default 1e-8.
      estim_lr0: the initial estimate ``d_1``, ``> 0``. Default 1e-6.
      estim_lr_coef: the coefficient of the estimate, ``>= 0``. Default 1.
      weight_decay: the decoupled weight decay, ``>= 0`` (multiplied by ``dlr_k``). Default 0.
      safeguard_warmup: use ``d_k`` instead of ``dlr_k`` in ``s`` (for schedules with a warm-up). Default False.
      use_bias_correction: keyword-only; ``True`` or ``False``: multiply ``dlr_k`` by Adam's correction
        ``c_k`` (Optax's behaviour) or not (``c_k = 1``, the authors' default). Default True.

    Raises:
      ValueError: an option out of range, e.g. ``prodigy(betas=(0.9, 1.0)): betas must have betas[1] in [0, 1)``;
        at ``update``, no ``params``.
      TypeError: an option of the wrong type (also a ``ValueError``), e.g. ``prodigy(betas=(0.9,)): betas must be
        a pair (b1, b2)`` or ``prodigy(use_bias_correction=2): use_bias_correction must be True or False, not
        int``; at ``update``, updates or params whose tree does not match the state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.prodigy()
      >>> params = jnp.ones(2)
      >>> updates, state = opt.update(jnp.ones(2), opt.init(params), params)
      >>> print(updates.round(9))  # the first step is about d_1 = estim_lr0 per coordinate
      [-1.e-06 -1.e-06]

      The authors' default, without bias correction: the first step is ``(1 - b1) / sqrt(1 - b2)`` times
      larger (about 3.16):

      >>> authors = gradtx.contrib.prodigy(use_bias_correction=False)
      >>> updates, state = authors.update(jnp.ones(2), authors.init(params), params)
      >>> print((updates / 1e-6).round(4))
      [-3.1623 -3.1623]
    """

    learning_rate: ScalarOrSchedule = scalar_or_schedule(default=1.0)
    betas: tuple[Scalar, Scalar] = option(default=(0.9, 0.999), accepts=_BETAS)
    beta3: Scalar | None = probability(default=None, closed=True, optional=True)
    eps: Scalar = non_negative(default=1e-8)
    estim_lr0: Scalar = positive(default=1e-6)
    estim_lr_coef: Scalar = non_negative(default=1.0)
    weight_decay: Scalar = non_negative(default=0.0)
    safeguard_warmup: bool = flag(default=False)
    use_bias_correction: bool = flag(default=True, kw_only=True)

    def init(self, params: Params) -> ProdigyState:
        return ProdigyState(params0=jax.tree.map(jnp.asarray, params), **self._fresh(params))

    def update(
        self, updates: Updates, state: ProdigyState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ProdigyState]:
        del extra
        dt, count, d, dlr = self._start("prodigy", updates, state, params, self.use_bias_correction)
        b1, b2 = self.betas
        b3 = safe_sqrt(tree.hyper(b2, dt)) if self.beta3 is None else tree.hyper(self.beta3, dt)
        d0 = tree.hyper(self.estim_lr0, dt)
        numerator = dot(updates, difference(state.params0, params), dt)
        s_coef = (d if self.safeguard_warmup else dlr) * d / d0

        def moments(g: Any, m: Any, v: Any, s: Any) -> tuple[Any, Any, Any]:
            x = tree.Leaf(g)
            dg = x.cast(d) * x.cast(g)
            return x.ema(b1, m, dg), x.ema(b2, v, dg * dg), x.cast(b3) * x.cast(s) + x.cast(s_coef) * x.cast(g)

        m_new, v_new, s_new = tree.map_split(moments, 3, updates, state.exp_avg, state.exp_avg_sq, state.grad_sum)
        numerator_weighted = b3 * state.numerator_weighted + (d / d0) * dlr * numerator
        denominator = l1_norm(s_new, dt)
        safe = denominator > 0
        estimate = tree.hyper(self.estim_lr_coef, dt) * numerator_weighted / jnp.where(safe, denominator, 1)
        d_new = jnp.where(safe, jnp.maximum(d, estimate), d)
        eps_d, decay = d_new * tree.hyper(self.eps, dt), tree.hyper(self.weight_decay, dt) * dlr

        def step(g: Any, m: Any, v: Any, p: Any) -> Any:
            x = tree.Leaf(g)  # m and v are in its compute dtype
            u = -x.cast(dlr) * m / (safe_sqrt(v) + x.cast(eps_d))
            return x.out(u - x.cast(decay) * x.cast(p))

        new_state = ProdigyState(
            exp_avg=tree.cast_like(m_new, state.exp_avg),
            exp_avg_sq=tree.cast_like(v_new, state.exp_avg_sq),
            grad_sum=tree.cast_like(s_new, state.grad_sum),
            params0=state.params0,
            estim_lr=d_new,
            numerator_weighted=numerator_weighted,
            count=count,
        )
        return jax.tree.map(step, updates, m_new, v_new, params), new_state


@pytree_class
class dadapt_adamw(_AdaptiveAdamW):
    """D-Adaptation AdamW: AdamW whose step size ``d_k`` estimates the distance to the solution.

    Defazio & Mishchenko 2023, "Learning-Rate-Free Learning by D-Adaptation", ICML, arXiv 2301.07733, the Adam
    variant (Appendix). With ``lr_k = learning_rate(k - 1)``, ``c_k = sqrt(1 - b2^k) / (1 - b1^k)``, ``dlr_k =
    d_k lr_k c_k``, ``sb2 = sqrt(b2)``, ``d_1 = estim_lr0`` and inner products and norms over the whole tree::

        r_k = sb2 r_{k-1} + (1 - sb2) dlr_k <g_k, s_{k-1} / (sqrt(v_{k-1}) + eps)>
        m_k = b1 m_{k-1} + (1 - b1) dlr_k g_k
        v_k = b2 v_{k-1} + (1 - b2) g_k^2
        s_k = sb2 s_{k-1} + (1 - sb2) dlr_k g_k
        d_{k+1} = max(d_k, r_k / ((1 - sb2) ||s_k||_1))
        u_k = -m_k / (sqrt(v_k) + eps) - weight_decay dlr_k x_k

    as in the authors' PyTorch code and Optax. When ``||s_k||_1 = 0`` the estimate keeps ``d_k``, and a
    coordinate with ``s_{k-1} = 0`` adds 0 to ``r_k`` (with ``eps = 0`` Optax's first step is ``0 / 0``).
    ``update`` needs ``params``. Names, signature, defaults and state fields of ``optax.contrib.dadapt_adamw``.
    State: :class:`DAdaptAdamWState`.

    Args:
      learning_rate: a multiplier of the estimated step (1 at its peak), a number or a schedule of the 0-based
        step count. Default 1.
      betas: the pair ``(b1, b2)`` of Adam's decay rates, each in ``[0, 1)``. Default ``(0.9, 0.999)``.
      eps: added to ``sqrt(v)``, ``>= 0``. Default 1e-8.
      estim_lr0: the initial estimate ``d_1``, ``> 0``. Default 1e-6.
      weight_decay: the decoupled weight decay, ``>= 0`` (multiplied by ``dlr_k``). Default 0.

    Raises:
      ValueError: an option out of range, e.g. ``dadapt_adamw(estim_lr0=0.0): estim_lr0 must be > 0``; at
        ``update``, no ``params``.
      TypeError: an option of the wrong type, e.g. ``dadapt_adamw(betas=(0.9,)): betas must be a pair (b1, b2)``;
        at ``update``, updates or params whose tree does not match the state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.dadapt_adamw()
      >>> params = jnp.ones(2)
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), opt.init(params), params)
      >>> print(updates.round(9))  # Adam's first step -sign(g), scaled by d_1 = estim_lr0
      [-1.e-06  1.e-06]
    """

    learning_rate: ScalarOrSchedule = scalar_or_schedule(default=1.0)
    betas: tuple[Scalar, Scalar] = option(default=(0.9, 0.999), accepts=_BETAS)
    eps: Scalar = non_negative(default=1e-8)
    estim_lr0: Scalar = positive(default=1e-6)
    weight_decay: Scalar = non_negative(default=0.0)

    def init(self, params: Params) -> DAdaptAdamWState:
        return DAdaptAdamWState(**self._fresh(params))

    def update(
        self, updates: Updates, state: DAdaptAdamWState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, DAdaptAdamWState]:
        del extra
        dt, count, d, dlr = self._start("dadapt_adamw", updates, state, params)
        b1, b2 = self.betas
        sb2 = _sqrt_decay(b2)  # a Python number stays one: its complement is then exact
        eps = tree.hyper(self.eps, dt)

        def weighted(s: Any, v: Any) -> Any:  # s / (sqrt(v) + eps), 0 where s = 0
            x = tree.Leaf(s)
            s = x.cast(s)
            zero = s == 0
            return jnp.where(zero, jnp.zeros([], s.dtype), s / jnp.where(zero, 1, safe_sqrt(x.cast(v)) + x.cast(eps)))

        numerator = dot(updates, jax.tree.map(weighted, state.grad_sum, state.exp_avg_sq), dt)

        def moments(g: Any, m: Any, v: Any, s: Any) -> tuple[Any, Any, Any]:
            x = tree.Leaf(g)
            g = x.cast(g)
            dg = x.cast(dlr) * g
            return x.ema(b1, m, dg), x.ema(b2, v, g * g), x.ema(sb2, s, dg)

        m_new, v_new, s_new = tree.map_split(moments, 3, updates, state.exp_avg, state.exp_avg_sq, state.grad_sum)
        numerator_weighted = ema(sb2, state.numerator_weighted, dlr * numerator)
        denominator = complement(sb2, dt) * l1_norm(s_new, dt)
        safe = denominator > 0
        d_new = jnp.where(safe, jnp.maximum(d, numerator_weighted / jnp.where(safe, denominator, 1)), d)
        decay = tree.hyper(self.weight_decay, dt) * dlr

        def step(g: Any, m: Any, v: Any, p: Any) -> Any:
            x = tree.Leaf(g)  # m and v are in its compute dtype
            return x.out(-m / (safe_sqrt(v) + x.cast(eps)) - x.cast(decay) * x.cast(p))

        new_state = DAdaptAdamWState(
            exp_avg=tree.cast_like(m_new, state.exp_avg),
            exp_avg_sq=tree.cast_like(v_new, state.exp_avg_sq),
            grad_sum=tree.cast_like(s_new, state.grad_sum),
            estim_lr=d_new,
            numerator_weighted=numerator_weighted,
            count=count,
        )
        return jax.tree.map(step, updates, m_new, v_new, params), new_state
