"""Learning-rate-free and learning-rate-adapting optimizers (``gradtx.contrib``; names, signatures, defaults and
state fields as in ``optax.contrib``).

``k`` is the 1-based step, ``x_k`` the parameters passed to the ``k``-th ``update``, ``g_k`` its updates
(gradients), ``x_0`` the parameters given to ``init``; norms and inner products are over the whole tree.

    reduce_on_plateau:  u = s g, s *= factor after ``patience`` evaluations without improvement
    scale_by_dog:       u = rbar_k / sqrt(G_k + eps) g,   rbar_k = max(r_eps, max_i ||x_i - x_0||),
                        G_k = sum_i ||g_i||^2                                   (Ivgi et al. 2023, DoG)
    scale_by_dowg:      u = rbar_k^2 / (sqrt(v_k) + eps) g,  v_k = sum_i rbar_i^2 ||g_i||^2
                                                                               (Khaled et al. 2023, DoWG)
    prodigy:            Adam(W) with step d_k lr_k, d_k the Prodigy estimate    (Mishchenko & Defazio 2023)
    dadapt_adamw:       Adam(W) with step d_k lr_k, d_k the D-Adaptation estimate (Defazio & Mishchenko 2023)

Scalar statistics (distances, sums of squared norms, D estimates, the plateau scale and best value) are kept
in ``tree.widest_real_dtype(params)`` (float32 or wider), not in the lowest parameter dtype as Optax does: a
bfloat16 model keeps float32 statistics, and parameters mixing float16 and bfloat16 (which have no lowest
dtype: Optax's ``init`` raises) work, also under ``jax.eval_shape``. Per-parameter moments are stored in each
parameter's dtype and computed in float32 or wider.
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
    Updates,
    ValidationMixin,
    as_pytree_callable,
    as_transformation,
    check_tree_match,
    concrete_number,
    format_value,
    identity,
    pytree_class,
    require_params,
    safe_int32_increment,
    static_field,
    zero_count,
)
from gradtx.combine import chain
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_family import _map

__all__ = [
    "COCOBState",
    "DAdaptAdamWState",
    "DoGState",
    "DoWGState",
    "MechanicState",
    "MomoAdamState",
    "MomoState",
    "ProdigyState",
    "ReduceLROnPlateauState",
    "cocob",
    "dadapt_adamw",
    "dog",
    "dowg",
    "mechanize",
    "momo",
    "momo_adam",
    "prodigy",
    "reduce_on_plateau",
    "scale_by_cocob",
    "scale_by_dog",
    "scale_by_dowg",
]


# --------------------------------------------------------------------------------------------------
# Helpers: whole-tree reductions in a given real dtype, scalars meeting leaves without implicit promotion.
# --------------------------------------------------------------------------------------------------


def _total(parts: list[jax.Array], dt: Any) -> jax.Array:
    total = jnp.zeros([], dt)
    for p in parts:
        total = total + p.astype(dt)
    return total


def _sq_norm(t: Any, dt: Any) -> jax.Array:
    """``||t||^2`` over all leaves, accumulated per leaf in its compute dtype and summed in ``dt``."""
    return _total([jnp.sum(tree.abs_sq(tree.up(x))) for x in jax.tree.leaves(t)], dt)


def _l1(t: Any, dt: Any) -> jax.Array:
    return _total([jnp.sum(jnp.abs(tree.up(x))) for x in jax.tree.leaves(t)], dt)


def _dot(a: Any, b: Any, dt: Any) -> jax.Array:
    """Real inner product ``sum_i a_i b_i`` over the whole tree."""

    def one(x: Any, y: Any) -> jax.Array:
        x = tree.up(x)
        return jnp.sum(x * tree.up(y).astype(x.dtype))

    return _total(jax.tree.leaves(jax.tree.map(one, a, b)), dt)


def _sqrt_decay(b: Any) -> Any:
    """``sqrt(b)``: a Python float for a Python number (so that ``1 - sqrt(b)`` is formed exactly), else an array."""
    if isinstance(b, (int, float, np.integer, np.floating)) and not isinstance(b, bool):
        return math.sqrt(float(b))
    return jnp.sqrt(tree.up(jnp.asarray(b)))


def _at(s: jax.Array, x: jax.Array) -> jax.Array:
    """The scalar ``s`` in the dtype of the (compute-dtype) array ``x``."""
    return jnp.asarray(s).astype(x.dtype)


def _scaled(updates: Updates, s: jax.Array) -> Updates:
    """``s * g`` leafwise in the compute dtype, returned in each update's dtype."""
    return jax.tree.map(lambda g: (tree.up(g) * _at(s, tree.up(g))).astype(jnp.asarray(g).dtype), updates)


def _schedule_value(learning_rate: Any, count: jax.Array) -> Any:
    return learning_rate(count) if callable(learning_rate) else learning_rate


# --------------------------------------------------------------------------------------------------
# reduce_on_plateau
# --------------------------------------------------------------------------------------------------


class ReduceLROnPlateauState(NamedTuple):
    """The current ``scale``, the best averaged value so far, the evaluations without improvement
    (``plateau_count``), the remaining cooldown evaluations, and the running average ``avg_value`` of the
    ``count`` values received since the last evaluation."""

    scale: jax.Array
    best_value: jax.Array
    plateau_count: jax.Array
    cooldown_count: jax.Array
    count: jax.Array
    avg_value: jax.Array


@pytree_class
class reduce_on_plateau(GradientTransformation):
    """Reduce the learning rate when a monitored value stops improving: ``u = scale * g``.

    Every ``update`` takes ``value=`` (a loss). Every ``accumulation_size`` calls, the mean ``a`` of the values
    received is *evaluated*: it improves on the best value ``b`` iff ``a < b - rtol |b| - atol``; then
    ``b = a`` and the plateau count is reset, otherwise the count grows by one. When it reaches ``patience``
    (outside a cooldown) the scale becomes ``max(scale * factor, min_scale)``, the count restarts at 0 and
    ``cooldown`` evaluations follow during which the count stays 0 (the best value is still tracked). The
    rule is Keras's and PyTorch's ``ReduceLROnPlateau`` (mode ``min``) with a relative and an absolute margin.

    Deviation from Optax 0.2.8, a fix (Optax PR #1767): Optax tests ``a < (1 - rtol) b - atol``, whose margin
    has the wrong sign for a negative ``b``: every value then counts as an improvement (a negative
    log-likelihood or ELBO never triggers a reduction, and a worsening value replaces the best one). gradtx
    uses the margin ``rtol |b|``, i.e. ``(1 - rtol) b`` for ``b >= 0`` (Optax's numbers) and ``(1 + rtol) b``
    for ``b < 0``; the initial ``b = +inf`` stays infinite. ``scale`` is kept in float32 or wider (Optax: the
    lowest parameter dtype).
    """

    factor: Any = 0.1
    patience: Any = 10
    rtol: Any = 1e-4
    atol: Any = 0.0
    cooldown: Any = 0
    accumulation_size: Any = 1
    min_scale: Any = 0.0

    def __post_init__(self) -> None:
        self._check_range("factor", 0.0, 1.0, lo_open=True, hi_open=True)
        self._check_range("patience", 1.0)
        self._check_range("rtol", 0.0, 1.0)
        self._check_range("atol", 0.0)
        self._check_range("cooldown", 0.0)
        self._check_range("accumulation_size", 1.0)
        self._check_range("min_scale", 0.0)
        if concrete_number(self.rtol) == 0.0 and concrete_number(self.atol) == 0.0:
            self._fail("atol", self.atol, "must be > 0 when rtol is 0 (some margin must define an improvement)")

    def init(self, params: Params) -> ReduceLROnPlateauState:
        dt = tree.widest_real_dtype(params)
        return ReduceLROnPlateauState(
            scale=jnp.ones([], dt),
            best_value=jnp.full([], jnp.inf, dt),
            plateau_count=zero_count(),
            cooldown_count=zero_count(),
            count=zero_count(),
            avg_value=jnp.zeros([], dt),
        )

    def update(self, updates: Updates, state: ReduceLROnPlateauState, params: Params | None = None, **extra: Any):
        del params
        value = extra.get("value")
        if value is None:
            raise ValueError("reduce_on_plateau.update: value is required (update(updates, state, params, value=loss))")
        dt = state.avg_value.dtype
        count = safe_int32_increment(state.count)
        avg = (state.count.astype(dt) * state.avg_value + jnp.asarray(value).astype(dt)) / count.astype(dt)

        best = state.best_value
        rtol, atol = tree.hyper(self.rtol, dt), tree.hyper(self.atol, dt)
        one = jnp.ones([], dt)
        threshold = jnp.where(best >= 0, (one - rtol) * best, (one + rtol) * best) - atol
        improved = avg < threshold
        new_best = jnp.where(improved, avg, best)
        plateau = jnp.where(improved, jnp.zeros([], jnp.int32), safe_int32_increment(state.plateau_count))
        patience = jnp.asarray(self.patience).astype(jnp.int32)
        cooldown = jnp.asarray(self.cooldown).astype(jnp.int32)
        in_cooldown = state.cooldown_count > 0
        reduce = jnp.logical_and(jnp.logical_not(in_cooldown), plateau >= patience)
        reduced = jnp.where(reduce, state.scale * tree.hyper(self.factor, dt), state.scale)
        new_scale = jnp.where(in_cooldown, state.scale, jnp.maximum(reduced, tree.hyper(self.min_scale, dt)))
        new_plateau = jnp.where(jnp.logical_or(in_cooldown, reduce), jnp.zeros([], jnp.int32), plateau)
        new_cooldown = jnp.where(in_cooldown, state.cooldown_count - 1,
                                 jnp.where(reduce, cooldown, jnp.zeros([], jnp.int32)))

        evaluate = count >= jnp.asarray(self.accumulation_size).astype(jnp.int32)
        new_state = ReduceLROnPlateauState(
            scale=jnp.where(evaluate, new_scale, state.scale),
            best_value=jnp.where(evaluate, new_best, best),
            plateau_count=jnp.where(evaluate, new_plateau, state.plateau_count),
            cooldown_count=jnp.where(evaluate, new_cooldown, state.cooldown_count),
            count=jnp.where(evaluate, jnp.zeros([], jnp.int32), count),
            avg_value=jnp.where(evaluate, jnp.zeros([], dt), avg),
        )
        return _scaled(updates, new_state.scale), new_state


# --------------------------------------------------------------------------------------------------
# DoG and DoWG
# --------------------------------------------------------------------------------------------------

_INIT_STEP_KINDS = ("distance", "learning_rate", "heuristic")


@pytree_class
class InitStep(ValidationMixin):
    """DoG's ``init_step`` pair ``(kind, value)``: ``kind`` is static, ``value`` a leaf (a hyperparameter).

    Behaves like the tuple Optax takes (unpacking, indexing, equality with a tuple) and reads like one.
    """

    kind: str = static_field()
    value: Any = 1e-6

    def __post_init__(self) -> None:
        if self.kind not in _INIT_STEP_KINDS:
            self._fail("kind", self.kind, f"must be one of {', '.join(repr(k) for k in _INIT_STEP_KINDS)}")
        self._check_range("value", 0.0, lo_open=True)

    def __iter__(self):
        return iter((self.kind, self.value))

    def __getitem__(self, i: int) -> Any:
        return (self.kind, self.value)[i]

    def __len__(self) -> int:
        return 2

    def __eq__(self, other: object) -> bool:
        return tuple(self) == tuple(other) if isinstance(other, (tuple, InitStep)) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"({self.kind!r}, {format_value(self.value)})"


class DoGState(NamedTuple):
    """DoG's first-step flag, the initial parameters ``x_0``, ``rbar`` (``max_dist``) and ``G``."""

    is_init_step: jax.Array
    init_params: Params
    max_dist: jax.Array
    sum_sq_norm_grads: jax.Array


@pytree_class
class scale_by_dog(GradientTransformation):
    """Distance over Gradients (DoG; Ivgi, Hinder & Carmon 2023, arXiv 2302.12022, Algorithm 1), the step size
    without the sign: ``u_k = eta_k g_k`` with::

        rbar_k = max(rbar_{k-1}, ||x_k - x_0||),   rbar_0 = r_eps
        G_k    = G_{k-1} + ||g_k||^2,              G_0 = 0
        eta_k  = rbar_k / sqrt(G_k + eps)

    ``init_step = (kind, value)`` chooses ``r_eps``: ``('distance', r)``: ``r_eps = r``; ``('heuristic',
    alpha)``: ``r_eps = alpha (1 + ||x_0||)`` (the paper's suggestion, alpha = 1e-6, 1e-4 with batch norm);
    ``('learning_rate', eta)``: ``r_eps = 0`` and ``eta_1 = eta``. ``eps`` inside the root is Optax's guard
    (the paper has none). Follow with ``scale_by_learning_rate`` (see :func:`dog`). The authors recommend
    averaging the iterates. ``init`` must see the real parameters (``x_0`` is stored; the heuristic reads it).
    """

    init_step: Any
    eps: Any = 1e-8

    def __post_init__(self) -> None:
        step = self.init_step
        if not isinstance(step, InitStep):
            ok = isinstance(step, (tuple, list)) and len(step) == 2 and step[0] in _INIT_STEP_KINDS
            if not ok:
                self._fail("init_step", step, "must be a pair (kind, value) with kind one of "
                           + ", ".join(repr(k) for k in _INIT_STEP_KINDS))
            try:
                step = InitStep(step[0], step[1])  # type: ignore[call-arg,index]
            except ValueError:
                self._fail("init_step", self.init_step, "must have a value > 0")
            object.__setattr__(self, "init_step", step)
        self._check_range("eps", 0.0)

    def init(self, params: Params) -> DoGState:
        dt = tree.widest_real_dtype(params)
        kind, value = self.init_step.kind, self.init_step.value
        if kind == "distance":
            r_eps = tree.hyper(value, dt)
        elif kind == "heuristic":
            r_eps = tree.hyper(value, dt) * (1 + jnp.sqrt(_sq_norm(params, dt)))
        else:
            r_eps = jnp.zeros([], dt)
        return DoGState(
            is_init_step=jnp.asarray(True),
            init_params=jax.tree.map(jnp.asarray, params),
            max_dist=r_eps.astype(dt),
            sum_sq_norm_grads=jnp.zeros([], dt),
        )

    def update(self, updates: Updates, state: DoGState, params: Params | None = None, **extra: Any):
        del extra
        require_params("scale_by_dog.update", params)
        check_tree_match("scale_by_dog.update", state.init_params, updates)
        check_tree_match("scale_by_dog.update", state.init_params, params, what="params")
        dt = state.max_dist.dtype
        dist = jnp.sqrt(_sq_norm(jax.tree.map(lambda x0, p: tree.up(x0) - tree.up(p).astype(tree.up(x0).dtype),
                                              state.init_params, params), dt))
        max_dist = jnp.maximum(state.max_dist, dist)
        sum_sq = state.sum_sq_norm_grads + _sq_norm(updates, dt)
        eta = max_dist / jnp.sqrt(sum_sq + tree.hyper(self.eps, dt))
        if self.init_step.kind == "learning_rate":
            eta = jnp.where(state.is_init_step, tree.hyper(self.init_step.value, dt), eta)
        new_state = DoGState(is_init_step=jnp.asarray(False), init_params=state.init_params, max_dist=max_dist,
                             sum_sq_norm_grads=sum_sq)
        return _scaled(updates, eta), new_state


def dog(
    learning_rate: Any = 1.0,
    init_step: Any = ("heuristic", 1e-6),
    eps: Any = 1e-8,
    weight_decay: Any = None,
    mask: Any = None,
) -> chain:
    """DoG (Ivgi, Hinder & Carmon 2023): ``[add_decayed_weights] -> scale_by_dog -> scale_by_learning_rate``.

    ``x_{k+1} = x_k - lr_k rbar_k / sqrt(G_k + eps) (g_k + weight_decay x_k)`` (see :class:`scale_by_dog`);
    ``learning_rate`` (default 1) is an optional multiplier or schedule.
    """
    return chain(
        add_decayed_weights(weight_decay, mask) if weight_decay is not None else identity(),
        scale_by_dog(init_step, eps),
        scale_by_learning_rate(learning_rate),
    )


class DoWGState(NamedTuple):
    """DoWG's initial parameters ``x_0``, the weighted sum ``v`` and the squared distance estimate ``rbar^2``."""

    init_params: Params
    weighted_sq_norm_grads: jax.Array
    estim_sq_dist: jax.Array


@pytree_class
class scale_by_dowg(GradientTransformation):
    """Distance over Weighted Gradients (DoWG; Khaled, Mishchenko & Jin 2023, arXiv 2305.16284, Algorithm 1),
    the step size without the sign: ``u_k = eta_k g_k`` with::

        rbar_k^2 = max(rbar_{k-1}^2, ||x_k - x_0||^2),   rbar_0^2 = init_estim_sq_dist (None: eps)
        v_k      = v_{k-1} + rbar_k^2 ||g_k||^2,         v_0 = 0
        eta_k    = rbar_k^2 / (sqrt(v_k) + eps)

    ``eps`` in the denominator is Optax's guard (the paper has none). Follow with ``scale_by_learning_rate``.
    """

    init_estim_sq_dist: Any = None
    eps: Any = 1e-4

    def __post_init__(self) -> None:
        if self.init_estim_sq_dist is None:
            self._check_range("eps", 0.0, lo_open=True)
        else:
            self._check_range("init_estim_sq_dist", 0.0, lo_open=True)
            self._check_range("eps", 0.0)

    def init(self, params: Params) -> DoWGState:
        dt = tree.widest_real_dtype(params)
        first = self.eps if self.init_estim_sq_dist is None else self.init_estim_sq_dist
        return DoWGState(init_params=jax.tree.map(jnp.asarray, params), weighted_sq_norm_grads=jnp.zeros([], dt),
                         estim_sq_dist=tree.hyper(first, dt))

    def update(self, updates: Updates, state: DoWGState, params: Params | None = None, **extra: Any):
        del extra
        require_params("scale_by_dowg.update", params)
        check_tree_match("scale_by_dowg.update", state.init_params, updates)
        check_tree_match("scale_by_dowg.update", state.init_params, params, what="params")
        dt = state.estim_sq_dist.dtype
        sq_dist = _sq_norm(jax.tree.map(lambda x0, p: tree.up(x0) - tree.up(p).astype(tree.up(x0).dtype),
                                        state.init_params, params), dt)
        estim = jnp.maximum(state.estim_sq_dist, sq_dist)
        weighted = state.weighted_sq_norm_grads + estim * _sq_norm(updates, dt)
        eta = estim / (jnp.sqrt(weighted) + tree.hyper(self.eps, dt))
        new_state = DoWGState(init_params=state.init_params, weighted_sq_norm_grads=weighted, estim_sq_dist=estim)
        return _scaled(updates, eta), new_state


def dowg(
    learning_rate: Any = 1.0,
    init_estim_sq_dist: Any = None,
    eps: Any = 1e-4,
    weight_decay: Any = None,
    mask: Any = None,
) -> chain:
    """DoWG (Khaled, Mishchenko & Jin 2023): ``[add_decayed_weights] -> scale_by_dowg -> scale_by_learning_rate``."""
    return chain(
        add_decayed_weights(weight_decay, mask) if weight_decay is not None else identity(),
        scale_by_dowg(init_estim_sq_dist, eps),
        scale_by_learning_rate(learning_rate),
    )


# --------------------------------------------------------------------------------------------------
# Prodigy and D-Adaptation AdamW
# --------------------------------------------------------------------------------------------------


class ProdigyState(NamedTuple):
    """Prodigy's moments ``exp_avg`` (m), ``exp_avg_sq`` (v), the weighted gradient sum ``grad_sum`` (s), the
    initial parameters ``params0``, the estimate ``estim_lr`` (d), ``numerator_weighted`` (r) and the count."""

    exp_avg: Updates
    exp_avg_sq: Updates
    grad_sum: Updates
    params0: Updates
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array


class DAdaptAdamWState(NamedTuple):
    """D-Adapt AdamW's moments ``exp_avg``, ``exp_avg_sq``, the weighted gradient sum ``grad_sum`` (s), the
    estimate ``estim_lr`` (d), ``numerator_weighted`` (r) and the count."""

    exp_avg: Updates
    exp_avg_sq: Updates
    grad_sum: Updates
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array


class _Step(NamedTuple):
    """The scalars a D-Adaptation step starts from, in the statistics dtype ``dt``."""

    dt: Any
    count: jax.Array
    b1: jax.Array
    b2: jax.Array
    d: jax.Array
    dlr: jax.Array


class _AdaptiveAdamW(GradientTransformation):
    """Shared validation, state and step preamble of the D-Adaptation family (Prodigy, D-Adaptation AdamW)."""

    def _fresh(self, params: Params) -> dict[str, Any]:
        """The state fields both start with: zero moments and gradient sum, ``d = estim_lr0``, ``r = 0``."""
        dt = tree.widest_real_dtype(params)
        return {"exp_avg": tree.zeros_like(params), "exp_avg_sq": tree.zeros_like(params),
                "grad_sum": tree.zeros_like(params), "estim_lr": tree.hyper(self.estim_lr0, dt),  # type: ignore[attr-defined]
                "numerator_weighted": jnp.zeros([], dt), "count": zero_count()}

    def _start(self, name: str, updates: Updates, state: Any, params: Params | None) -> _Step:
        """Checks the call, then ``dlr_k = d_k lr_k sqrt(1 - b2^k) / (1 - b1^k)`` with ``lr_k`` the schedule at
        the 0-based count."""
        require_params(f"{name}.update", params)
        check_tree_match(f"{name}.update", state.exp_avg, updates)
        check_tree_match(f"{name}.update", state.exp_avg, params, what="params")
        dt = state.estim_lr.dtype
        count = safe_int32_increment(state.count)
        t = count.astype(dt)
        b1, b2 = tree.hyper(self.betas[0], dt), tree.hyper(self.betas[1], dt)  # type: ignore[attr-defined]
        lr = jnp.asarray(_schedule_value(self.learning_rate, state.count)).astype(dt)  # type: ignore[attr-defined]
        d = state.estim_lr
        betas = self.betas  # type: ignore[attr-defined]
        bias = jnp.sqrt(tree.debias(betas[1], t, dt)) / tree.debias(betas[0], t, dt)  # gradtx.tree's one correction
        return _Step(dt, count, b1, b2, d, d * lr * bias)

    def _check_common(self) -> None:
        object.__setattr__(self, "learning_rate", as_pytree_callable(self.learning_rate))  # type: ignore[attr-defined]
        if not callable(self.learning_rate):  # type: ignore[attr-defined]
            self._check_finite("learning_rate")
        betas = self.betas  # type: ignore[attr-defined]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            self._fail("betas", betas, "must be a pair (b1, b2)")
        object.__setattr__(self, "betas", tuple(betas))
        for i, b in enumerate(betas):
            v = concrete_number(b)
            if v is not None and not 0.0 <= v < 1.0:
                self._fail("betas", self.betas, f"must have betas[{i}] in [0, 1)")  # type: ignore[attr-defined]
        self._check_range("eps", 0.0)
        self._check_range("estim_lr0", 0.0, lo_open=True)
        self._check_range("weight_decay", 0.0)


@pytree_class
class prodigy(_AdaptiveAdamW):
    """Prodigy (Mishchenko & Defazio 2023, arXiv 2306.06101, Algorithm 4, the Adam version), AdamW whose step
    size ``d_k`` is estimated on the fly. With ``lr_k = learning_rate(k - 1)``, ``c_k = sqrt(1 - b2^k) / (1 -
    b1^k)``, ``dlr_k = d_k lr_k c_k``, ``d_1 = estim_lr0``, ``b3 = sqrt(b2)`` unless given::

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
    """

    learning_rate: Any = 1.0
    betas: Any = (0.9, 0.999)
    beta3: Any = None
    eps: Any = 1e-8
    estim_lr0: Any = 1e-6
    estim_lr_coef: Any = 1.0
    weight_decay: Any = 0.0
    safeguard_warmup: bool = static_field(default=False)

    def __post_init__(self) -> None:
        self._check_common()
        if self.beta3 is not None:
            self._check_range("beta3", 0.0, 1.0)
        self._check_range("estim_lr_coef", 0.0)

    def init(self, params: Params) -> ProdigyState:
        return ProdigyState(params0=jax.tree.map(jnp.asarray, params), **self._fresh(params))

    def update(self, updates: Updates, state: ProdigyState, params: Params | None = None, **extra: Any):
        del extra
        dt, count, _, b2, d, dlr = self._start("prodigy", updates, state, params)
        b3 = jnp.sqrt(b2) if self.beta3 is None else tree.hyper(self.beta3, dt)
        d0 = tree.hyper(self.estim_lr0, dt)
        numerator = _dot(updates, jax.tree.map(lambda x0, p: tree.up(x0) - tree.up(p).astype(tree.up(x0).dtype),
                                               state.params0, params), dt)
        s_coef = (d if self.safeguard_warmup else dlr) * d / d0

        def moments(g: Any, m: Any, v: Any, s: Any) -> tuple[Any, Any, Any]:
            x = tree.up(g)
            dg = _at(d, x) * x
            m32 = tree.ema(self.betas[0], tree.up(m).astype(x.dtype), dg)  # exact complements (gradtx.tree.ema)
            v32 = tree.ema(self.betas[1], tree.up(v).astype(x.dtype), dg * dg)
            s32 = _at(b3, x) * tree.up(s).astype(x.dtype) + _at(s_coef, x) * x
            return m32, v32, s32

        m_new, v_new, s_new = _map(moments, 3, updates, state.exp_avg, state.exp_avg_sq, state.grad_sum)
        numerator_weighted = b3 * state.numerator_weighted + (d / d0) * dlr * numerator
        denominator = _l1(s_new, dt)
        safe = denominator > 0
        estimate = tree.hyper(self.estim_lr_coef, dt) * numerator_weighted / jnp.where(safe, denominator, 1)
        d_new = jnp.where(safe, jnp.maximum(d, estimate), d)

        def step(m: Any, v: Any, p: Any, g: Any) -> Any:
            q = tree.up(p).astype(m.dtype)
            u = -_at(dlr, m) * m / (jnp.sqrt(v) + _at(d_new * tree.hyper(self.eps, dt), m))
            u = u - _at(tree.hyper(self.weight_decay, dt) * dlr, m) * q
            return u.astype(jnp.asarray(g).dtype)

        new_updates = jax.tree.map(step, m_new, v_new, params, updates)
        new_state = ProdigyState(
            exp_avg=tree.cast_like(m_new, state.exp_avg),
            exp_avg_sq=tree.cast_like(v_new, state.exp_avg_sq),
            grad_sum=tree.cast_like(s_new, state.grad_sum),
            params0=state.params0,
            estim_lr=d_new,
            numerator_weighted=numerator_weighted,
            count=count,
        )
        return new_updates, new_state


@pytree_class
class dadapt_adamw(_AdaptiveAdamW):
    """D-Adaptation AdamW (Defazio & Mishchenko 2023, arXiv 2301.07733, the Adam variant, Appendix), AdamW whose
    step size ``d_k`` estimates the distance to the solution. With ``lr_k = learning_rate(k - 1)``, ``c_k =
    sqrt(1 - b2^k) / (1 - b1^k)``, ``dlr_k = d_k lr_k c_k``, ``sb2 = sqrt(b2)``, ``d_1 = estim_lr0``::

        r_k = sb2 r_{k-1} + (1 - sb2) dlr_k <g_k, s_{k-1} / (sqrt(v_{k-1}) + eps)>
        m_k = b1 m_{k-1} + (1 - b1) dlr_k g_k
        v_k = b2 v_{k-1} + (1 - b2) g_k^2
        s_k = sb2 s_{k-1} + (1 - sb2) dlr_k g_k
        d_{k+1} = max(d_k, r_k / ((1 - sb2) ||s_k||_1))
        u_k = -m_k / (sqrt(v_k) + eps) - weight_decay dlr_k x_k

    as in the authors' PyTorch code and Optax. When ``||s_k||_1 = 0`` the estimate keeps ``d_k``, and a
    coordinate with ``s_{k-1} = 0`` adds 0 to ``r_k`` (with ``eps = 0`` Optax's first step is ``0 / 0``).
    """

    learning_rate: Any = 1.0
    betas: Any = (0.9, 0.999)
    eps: Any = 1e-8
    estim_lr0: Any = 1e-6
    weight_decay: Any = 0.0

    def __post_init__(self) -> None:
        self._check_common()

    def init(self, params: Params) -> DAdaptAdamWState:
        return DAdaptAdamWState(**self._fresh(params))

    def update(self, updates: Updates, state: DAdaptAdamWState, params: Params | None = None, **extra: Any):
        del extra
        dt, count, _, _, d, dlr = self._start("dadapt_adamw", updates, state, params)
        sb2 = _sqrt_decay(self.betas[1])  # a Python number stays one: its complement is then exact
        eps = tree.hyper(self.eps, dt)

        def weighted(s: Any, v: Any) -> Any:
            s32 = tree.up(s)
            den = jnp.sqrt(tree.up(v).astype(s32.dtype)) + _at(eps, s32)
            return jnp.where(s32 == 0, jnp.zeros([], s32.dtype), s32 / jnp.where(s32 == 0, 1, den))

        numerator = _dot(updates, jax.tree.map(weighted, state.grad_sum, state.exp_avg_sq), dt)

        def moments(g: Any, m: Any, v: Any, s: Any) -> tuple[Any, Any, Any]:
            x = tree.up(g)
            dx = _at(dlr, x) * x
            m32 = tree.ema(self.betas[0], tree.up(m).astype(x.dtype), dx)  # exact complements (gradtx.tree.ema)
            v32 = tree.ema(self.betas[1], tree.up(v).astype(x.dtype), x * x)
            s32 = tree.ema(sb2, tree.up(s).astype(x.dtype), dx)
            return m32, v32, s32

        m_new, v_new, s_new = _map(moments, 3, updates, state.exp_avg, state.exp_avg_sq, state.grad_sum)
        numerator_weighted = tree.ema(sb2, state.numerator_weighted, dlr * numerator)
        denominator = tree.complement(sb2, dt) * _l1(s_new, dt)
        safe = denominator > 0
        d_new = jnp.where(safe, jnp.maximum(d, numerator_weighted / jnp.where(safe, denominator, 1)), d)

        def step(m: Any, v: Any, p: Any, g: Any) -> Any:
            q = tree.up(p).astype(m.dtype)
            u = -m / (jnp.sqrt(v) + _at(eps, m)) - _at(tree.hyper(self.weight_decay, dt) * dlr, m) * q
            return u.astype(jnp.asarray(g).dtype)

        new_updates = jax.tree.map(step, m_new, v_new, params, updates)
        new_state = DAdaptAdamWState(
            exp_avg=tree.cast_like(m_new, state.exp_avg),
            exp_avg_sq=tree.cast_like(v_new, state.exp_avg_sq),
            grad_sum=tree.cast_like(s_new, state.grad_sum),
            estim_lr=d_new,
            numerator_weighted=numerator_weighted,
            count=count,
        )
        return new_updates, new_state



# --------------------------------------------------------------------------------------------------
# COCOB
# --------------------------------------------------------------------------------------------------


class COCOBState(NamedTuple):
    """COCOB's initial parameters ``w_1`` (``init_particles``), ``theta`` (``cumulative_gradients``, minus the sum
    of the gradients), ``L`` (``scale``), ``G`` (``subgradients``, the sum of |g|) and the ``reward``."""

    init_particles: Updates
    cumulative_gradients: Updates
    scale: Updates
    subgradients: Updates
    reward: Updates


@pytree_class
class scale_by_cocob(GradientTransformation):
    """COCOB-Backprop (Orabona & Tommasi 2017, arXiv 1705.07795, Algorithm 2), coordinate-wise coin betting::

        L_t = max(L_{t-1}, |g_t|),  L_0 = eps
        G_t = G_{t-1} + |g_t|
        R_t = max(R_{t-1} - g_t (w_t - w_1), 0)
        theta_t = theta_{t-1} - g_t
        w_{t+1} = w_1 + theta_t / (L_t max(G_t + L_t, alpha L_t)) (L_t + R_t)

    The output is the step ``u_t = w_{t+1} - w_t`` (it already points downhill: no learning rate follows).
    """

    alpha: Any = 100.0
    eps: Any = 1e-8

    def __post_init__(self) -> None:
        self._check_range("alpha", 0.0, lo_open=True)
        self._check_range("eps", 0.0, lo_open=True)

    def init(self, params: Params) -> COCOBState:
        return COCOBState(
            init_particles=jax.tree.map(jnp.asarray, params),
            cumulative_gradients=tree.zeros_like(params),
            scale=tree.full_like(params, self.eps),
            subgradients=tree.zeros_like(params),
            reward=tree.zeros_like(params),
        )

    def update(self, updates: Updates, state: COCOBState, params: Params | None = None, **extra: Any):
        del extra
        require_params("scale_by_cocob.update", params)
        check_tree_match("scale_by_cocob.update", state.scale, updates)
        check_tree_match("scale_by_cocob.update", state.scale, params, what="params")

        def one(g: Any, w: Any, w1: Any, theta: Any, big_l: Any, big_g: Any, r: Any) -> tuple[Any, ...]:
            x = tree.up(g)
            dt = x.dtype
            w32, w132 = tree.up(w).astype(dt), tree.up(w1).astype(dt)
            ax = jnp.abs(x)
            big_l = jnp.maximum(tree.up(big_l).astype(dt), ax)
            big_g = tree.up(big_g).astype(dt) + ax
            r = jnp.maximum(tree.up(r).astype(dt) - x * (w32 - w132), 0)
            theta = tree.up(theta).astype(dt) - x
            w_next = w132 + theta / (big_l * jnp.maximum(big_g + big_l, _at(tree.hyper(self.alpha, dt), x) * big_l)) * (
                big_l + r)
            return (w_next - w32).astype(jnp.asarray(g).dtype), theta, big_l, big_g, r

        out, theta, big_l, big_g, r = _map(one, 5, updates, params, state.init_particles,
                                           state.cumulative_gradients, state.scale, state.subgradients, state.reward)
        new_state = COCOBState(
            init_particles=state.init_particles,
            cumulative_gradients=tree.cast_like(theta, state.cumulative_gradients),
            scale=tree.cast_like(big_l, state.scale),
            subgradients=tree.cast_like(big_g, state.subgradients),
            reward=tree.cast_like(r, state.reward),
        )
        return out, new_state


def cocob(
    learning_rate: Any = 1.0,
    alpha: Any = 100.0,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> chain:
    """COCOB-Backprop (Orabona & Tommasi 2017): ``add_decayed_weights -> scale_by_learning_rate(lr, flip_sign=False)
    -> scale_by_cocob``: the (decayed, scaled) gradient is the coin outcome; no step size to tune."""
    return chain(
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate, flip_sign=False),
        scale_by_cocob(alpha, eps),
    )


# --------------------------------------------------------------------------------------------------
# MoMo and MoMo-Adam
# --------------------------------------------------------------------------------------------------

_TINY = float(np.finfo(np.float64).eps)  # below this squared norm the model step is 0 (as in Optax)


class MomoState(NamedTuple):
    """MoMo's momentum ``exp_avg`` (d), the averaged loss ``barf``, the averaged ``<g, x>`` (``gamma``), the lower
    bound ``lb`` and the count."""

    exp_avg: Updates
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array
    count: jax.Array


class MomoAdamState(NamedTuple):
    """MoMo-Adam's moments ``exp_avg``, ``exp_avg_sq``, ``barf``, ``gamma``, the lower bound ``lb`` and the count."""

    exp_avg: Updates
    exp_avg_sq: Updates
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array
    count: jax.Array


def _need_value(name: str, extra: dict[str, Any]) -> Any:
    value = extra.get("value")
    if value is None:
        raise ValueError(f"{name}.update: value is required (update(updates, state, params, value=loss); "
                         "use jax.value_and_grad)")
    return value


class _MomoBase(GradientTransformation):
    def _check_momo(self) -> None:
        object.__setattr__(self, "learning_rate", as_pytree_callable(self.learning_rate))  # type: ignore[attr-defined]
        if not callable(self.learning_rate):  # type: ignore[attr-defined]
            self._check_range("learning_rate", 0.0)
        self._check_finite("lower_bound")
        self._check_range("weight_decay", 0.0)


@pytree_class
class momo(_MomoBase):
    """MoMo, momentum with a Polyak-type model step (Schaipp, Ohana, Eickenberg, Defazio & Gower 2023, arXiv
    2305.07583, Algorithm 1 with decoupled weight decay). With ``rho = 0`` at step 1, ``beta`` after::

        d_k    = rho d_{k-1} + (1 - rho) g_k                  (exp_avg)
        fbar_k = rho fbar_{k-1} + (1 - rho) f(x_k)            (barf; f = the ``value`` passed to update)
        gam_k  = rho gam_{k-1} + (1 - rho) <g_k, x_k>         (gamma)
        c      = 1 + alpha_k wd
        tau_k  = min(alpha_k, max(c (fbar_k - lb - gam_k) + <d_k, x_k>, 0) / ||d_k||^2)   (0 if ||d_k||^2 <= eps64)
        u_k    = -(alpha_k wd / c) x_k - tau_k d_k

    ``alpha_k = learning_rate(k - 1)``; ``lb`` is ``lower_bound`` (a lower bound of the loss, 0 for most
    losses). ``adapt_lower_bound`` estimates it on the fly as in Optax (the paper's Section 4 rule):
    before the step ``lb`` becomes ``max(cap / (2c), lower_bound)`` where ``cap = c (fbar - gam) + <d, x> < c lb``,
    and after it ``lb = max(fbar + <d, x> - gam - tau ||d||^2 / 2, lower_bound)``.
    """

    learning_rate: Any = 1.0
    beta: Any = 0.9
    lower_bound: Any = 0.0
    weight_decay: Any = 0.0
    adapt_lower_bound: bool = static_field(default=False)

    def __post_init__(self) -> None:
        self._check_momo()
        self._check_range("beta", 0.0, 1.0, hi_open=True)

    def init(self, params: Params) -> MomoState:
        dt = tree.widest_real_dtype(params)
        return MomoState(exp_avg=tree.zeros_like(params), barf=jnp.zeros([], dt), gamma=jnp.zeros([], dt),
                         lb=tree.hyper(self.lower_bound, dt), count=zero_count())

    def update(self, updates: Updates, state: MomoState, params: Params | None = None, **extra: Any):
        value = _need_value("momo", extra)
        require_params("momo.update", params)
        check_tree_match("momo.update", state.exp_avg, updates)
        check_tree_match("momo.update", state.exp_avg, params, what="params")
        dt = state.barf.dtype
        first = state.count == 0  # the averages start from their first values (rho = 0 at the first step)

        def average(old: Any, new: Any) -> Any:  # rho old + (1 - rho) new, the exact complement (gradtx.tree.ema)
            return jnp.where(first, new, tree.ema(self.beta, old, new))

        barf = average(state.barf, jnp.asarray(value).astype(dt))
        d = jax.tree.map(lambda g, m: average(tree.up(m).astype(tree.up(g).dtype), tree.up(g)), updates, state.exp_avg)
        gamma = average(state.gamma, _dot(updates, params, dt))
        d_sq = _sq_norm(d, dt)
        iprod = _dot(d, params, dt)
        alpha = jnp.asarray(_schedule_value(self.learning_rate, state.count)).astype(dt)
        wd, floor = tree.hyper(self.weight_decay, dt), tree.hyper(self.lower_bound, dt)
        c = 1 + alpha * wd
        lb = state.lb
        if self.adapt_lower_bound:
            cap = c * (barf - gamma) + iprod
            lb = jnp.where(cap < c * lb, jnp.maximum(cap / (2 * c), floor), lb)
        safe = d_sq > _TINY
        t1 = jnp.where(safe, jnp.maximum(c * (barf - lb - gamma) + iprod, 0) / jnp.where(safe, d_sq, 1), 0)
        tau = jnp.minimum(alpha, t1)
        shrink = alpha * wd / c
        new_updates = jax.tree.map(
            lambda m, p, g: (-_at(shrink, m) * tree.up(p).astype(m.dtype) - _at(tau, m) * m).astype(
                jnp.asarray(g).dtype), d, params, updates)
        if self.adapt_lower_bound:
            lb = jnp.maximum(barf + iprod - gamma - tau * d_sq / 2, floor)
        new_state = MomoState(exp_avg=tree.cast_like(d, state.exp_avg), barf=barf, gamma=gamma, lb=lb,
                              count=safe_int32_increment(state.count))
        return new_updates, new_state


@pytree_class
class momo_adam(_MomoBase):
    """MoMo-Adam (Schaipp et al. 2023, arXiv 2305.07583, Algorithm 2 with decoupled weight decay): the model
    step in Adam's metric ``D_k = eps + sqrt(v_k / (1 - b2^k))``::

        m_k = b1 m_{k-1} + (1 - b1) g_k;  v_k = b2 v_{k-1} + (1 - b2) g_k^2
        fbar_k = b1 fbar_{k-1} + (1 - b1) f(x_k);  gam_k = b1 gam_{k-1} + (1 - b1) <g_k, x_k>
        c = 1 + alpha_k wd;  q_k = 1 - b1^k;  ||m||_D^2 = <m_k, m_k / D_k>
        tau_k = min(alpha_k / q_k, max(c (fbar_k - q_k lb - gam_k) + <m_k, x_k>, 0) / ||m||_D^2)
        u_k = -(alpha_k wd / c) x_k - tau_k m_k / D_k

    ``adapt_lower_bound`` as in :class:`momo`, with the bias corrections ``q_k`` (as in Optax).
    """

    learning_rate: Any = 1e-2
    b1: Any = 0.9
    b2: Any = 0.999
    eps: Any = 1e-8
    lower_bound: Any = 0.0
    weight_decay: Any = 0.0
    adapt_lower_bound: bool = static_field(default=False)

    def __post_init__(self) -> None:
        self._check_momo()
        self._check_range("b1", 0.0, 1.0, hi_open=True)
        self._check_range("b2", 0.0, 1.0, hi_open=True)
        self._check_range("eps", 0.0, lo_open=True)

    def init(self, params: Params) -> MomoAdamState:
        dt = tree.widest_real_dtype(params)
        return MomoAdamState(exp_avg=tree.zeros_like(params), exp_avg_sq=tree.zeros_like(params),
                             barf=jnp.zeros([], dt), gamma=jnp.zeros([], dt), lb=tree.hyper(self.lower_bound, dt),
                             count=zero_count())

    def update(self, updates: Updates, state: MomoAdamState, params: Params | None = None, **extra: Any):
        value = _need_value("momo_adam", extra)
        require_params("momo_adam.update", params)
        check_tree_match("momo_adam.update", state.exp_avg, updates)
        check_tree_match("momo_adam.update", state.exp_avg, params, what="params")
        dt = state.barf.dtype
        count = safe_int32_increment(state.count)
        t = count.astype(dt)
        eps = tree.hyper(self.eps, dt)
        barf = tree.ema(self.b1, state.barf, jnp.asarray(value).astype(dt))  # exact complements (gradtx.tree.ema)

        def moments(g: Any, m: Any, v: Any) -> tuple[Any, Any]:
            x = tree.up(g)
            m32 = tree.ema(self.b1, tree.up(m).astype(x.dtype), x)
            v32 = tree.ema(self.b2, tree.up(v).astype(x.dtype), x * x)
            return m32, v32

        pairs = jax.tree.map(moments, updates, state.exp_avg, state.exp_avg_sq)
        m_new = jax.tree.map(lambda _, pr: pr[0], updates, pairs)
        v_new = jax.tree.map(lambda _, pr: pr[1], updates, pairs)
        bc2 = tree.debias(self.b2, t, dt)  # gradtx.tree's one bias correction
        precond = jax.tree.map(lambda v: _at(eps, v) + jnp.sqrt(v / _at(bc2, v)), v_new)
        m_sq = _dot(m_new, jax.tree.map(lambda m, pc: m / pc, m_new, precond), dt)
        gamma = tree.ema(self.b1, state.gamma, _dot(updates, params, dt))
        iprod = _dot(m_new, params, dt)
        alpha = jnp.asarray(_schedule_value(self.learning_rate, state.count)).astype(dt)
        wd, floor = tree.hyper(self.weight_decay, dt), tree.hyper(self.lower_bound, dt)
        c = 1 + alpha * wd
        bc1 = tree.debias(self.b1, t, dt)
        lb = state.lb
        if self.adapt_lower_bound:
            cap = c * (barf - gamma) + iprod
            lb = jnp.where(cap < c * bc1 * lb, jnp.maximum(cap / (2 * bc1 * c), floor), lb)
        safe = m_sq > _TINY
        t1 = jnp.where(safe, jnp.maximum(c * (barf - bc1 * lb - gamma) + iprod, 0) / jnp.where(safe, m_sq, 1), 0)
        tau = jnp.minimum(alpha / bc1, t1)
        shrink = alpha * wd / c
        new_updates = jax.tree.map(
            lambda m, pc, p, g: (-_at(shrink, m) * tree.up(p).astype(m.dtype) - _at(tau, m) * m / pc).astype(
                jnp.asarray(g).dtype), m_new, precond, params, updates)
        if self.adapt_lower_bound:
            lb = jnp.maximum((barf + iprod - gamma - tau * m_sq / 2) / bc1, floor)
        new_state = MomoAdamState(exp_avg=tree.cast_like(m_new, state.exp_avg),
                                  exp_avg_sq=tree.cast_like(v_new, state.exp_avg_sq), barf=barf, gamma=gamma, lb=lb,
                                  count=count)
        return new_updates, new_state


# --------------------------------------------------------------------------------------------------
# Mechanic
# --------------------------------------------------------------------------------------------------


class MechanicState(NamedTuple):
    """The base optimizer's state, the count, Mechanic's per-beta ``r`` (reward), ``m`` (max |h|), ``v`` (sum of
    h^2), ``s`` (scales) and the reference point ``x0``."""

    base_optimizer_state: Any
    count: jax.Array
    r: jax.Array
    m: jax.Array
    v: jax.Array
    s: jax.Array
    x0: Updates


@pytree_class
class mechanize(GradientTransformation):
    """Mechanic (Cutkosky, Defazio & Mehta 2023, arXiv 2306.00144, Algorithm 1): learn the scale of a base
    optimizer's updates by coin betting. With ``x_t = x_0 + S_{t-1} Delta_{t-1}`` (``S = sum_i s_i``), the base
    update ``b_t`` of ``g_t``, ``beta_i = 1 - 10^-i`` (``i = 1..num_betas``)::

        g'_t   = g_t + wd S_{t-1} ||g_t|| / (||x_t|| + eps) x_t
        h_t    = <g'_t, (x_0 - x_t) / (S_{t-1} + eps)>          (-<g', Delta>)
        m_t    = max(beta m_{t-1}, |h_t| + eps);  v_t = beta^2 v_{t-1} + h_t^2
        r_t    = beta r_{t-1} + clip(h_t, -m_{t-1}, m_{t-1}) s_{t-1}
        s_t    = ((s_init / num_betas) m_t + max(r_t, 0)) / (sqrt(v_t) + eps)
        x_{t+1} = x_0 + S_t ((x_t - x_0) / (S_{t-1} + eps) + b_t)

    and the update is ``x_{t+1} - x_t``, computed as ``(x_0 - x_t)(1 - S_t / (S_{t-1} + eps)) + S_t b_t`` (Optax
    subtracts ``x_t`` from ``x_{t+1}``, which in float32 loses the small update to cancellation: 1% at step 1).
    ``x_0`` is the first ``params`` seen by update (as in Optax).
    ``base_optimizer`` is any transformation (a learning rate of 1 at its peak is the intended use).
    """

    base_optimizer: Any
    weight_decay: Any = 1e-2
    eps: Any = 1e-8
    s_init: Any = 1e-6
    num_betas: int = static_field(default=6)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_optimizer", as_transformation(self.base_optimizer, "mechanize"))
        self._check_range("weight_decay", 0.0)
        self._check_range("eps", 0.0, lo_open=True)
        self._check_range("s_init", 0.0, lo_open=True)
        if not isinstance(self.num_betas, int) or self.num_betas < 1:
            self._fail("num_betas", self.num_betas, "must be an integer >= 1")

    def init(self, params: Params) -> MechanicState:
        dt = tree.widest_real_dtype(params)
        zeros = jnp.zeros([self.num_betas], dt)
        return MechanicState(base_optimizer_state=self.base_optimizer.init(params), count=zero_count(), r=zeros,
                             m=zeros, v=zeros, s=jnp.full([self.num_betas], self.s_init, dt),
                             x0=jax.tree.map(jnp.asarray, params))

    def update(self, updates: Updates, state: MechanicState, params: Params | None = None, **extra: Any):
        require_params("mechanize.update", params)
        check_tree_match("mechanize.update", state.x0, updates)
        check_tree_match("mechanize.update", state.x0, params, what="params")
        base_updates, base_state = self.base_optimizer.update(updates, state.base_optimizer_state, params, **extra)
        dt = state.s.dtype
        first = state.count == 0
        x0 = jax.tree.map(lambda p, x: jnp.where(first, jnp.asarray(p).astype(jnp.asarray(x).dtype), x), params,
                          state.x0)
        eps, wd = tree.hyper(self.eps, dt), tree.hyper(self.weight_decay, dt)
        s_sum = jnp.sum(state.s)
        decay = wd * s_sum * jnp.sqrt(_sq_norm(updates, dt)) / (jnp.sqrt(_sq_norm(params, dt)) + eps)
        g_wd = jax.tree.map(lambda g, p: tree.up(g) + _at(decay, tree.up(g)) * tree.up(p).astype(tree.up(g).dtype),
                            updates, params)
        delta_prev = jax.tree.map(lambda p, a: (tree.up(a) - tree.up(p).astype(tree.up(a).dtype))
                                  / _at(s_sum + eps, tree.up(a)), params, x0)
        h = _dot(g_wd, delta_prev, dt)
        betas = 1 - jnp.asarray([0.1 ** (i + 1) for i in range(self.num_betas)], dt)
        clipped = jnp.clip(h, -state.m, state.m)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)
        v = betas**2 * state.v + h**2
        r = betas * state.r + clipped * state.s
        wealth = tree.hyper(self.s_init, dt) / self.num_betas * m + jnp.maximum(r, 0)
        s = wealth / (jnp.sqrt(v) + eps)
        s_new = jnp.sum(s)

        # x_{t+1} - x_t = (x_0 - x_t)(1 - S_t / (S_{t-1} + eps)) + S_t b_t, the same number as Optax's
        # (x_0 - S_t (delta - b_t)) - x_t without its cancellation: x_t and x_{t+1} agree to ~S_t |b_t|, so
        # subtracting them leaves float32 ulps of |x| (a 1% error at step 1 with S ~ 1e-6).
        keep = 1 - s_new / (s_sum + eps)

        def step(p: Any, a: Any, b: Any, g: Any) -> Any:
            x = tree.up(a)
            diff = x - tree.up(p).astype(x.dtype)
            return (diff * _at(keep, x) + _at(s_new, x) * tree.up(b).astype(x.dtype)).astype(jnp.asarray(g).dtype)

        new_updates = jax.tree.map(step, params, x0, base_updates, updates)
        new_state = MechanicState(base_optimizer_state=base_state, count=safe_int32_increment(state.count), r=r, m=m,
                                  v=v, s=s, x0=x0)
        return new_updates, new_state
