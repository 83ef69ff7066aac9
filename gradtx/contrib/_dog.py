"""DoG and DoWG: the step size from the distance travelled over the gradients seen (``optax.contrib``'s
``dog``, ``dowg`` and their ``scale_by_*`` blocks: same names, signatures, defaults and state fields).

``k`` is the 1-based step, ``x_k`` the parameters passed to the ``k``-th ``update``, ``g_k`` its updates,
``x_0`` the parameters given to ``init``; norms are over the whole tree::

    scale_by_dog:   u = rbar_k / sqrt(G_k + eps) g,     rbar_k = max(r_eps, max_i ||x_i - x_0||),
                    G_k = sum_i ||g_i||^2                                      (Ivgi et al. 2023, DoG)
    scale_by_dowg:  u = rbar_k^2 / (sqrt(v_k) + eps) g,  v_k = sum_i rbar_i^2 ||g_i||^2
                                                                              (Khaled et al. 2023, DoWG)

The scalars (distances, sums of squared norms) are kept in ``tree.widest_real_dtype(params)`` (float32 or wider),
not in the lowest parameter dtype as Optax does (see :mod:`gradtx.contrib._common`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    MaskOrFn,
    Params,
    Scalar,
    ScalarOrSchedule,
    Updates,
    check_tree_match,
    identity,
    require_params,
)
from gradtx.combine import chain
from gradtx.contrib._common import difference, safe_sqrt, scaled, sq_norm
from gradtx.fields import (
    ValidationMixin,
    choice,
    format_value,
    hyper,
    non_negative,
    option,
    positive,
    pytree_class,
    recipe,
)
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.tree.precision import widest_real_dtype

__all__ = ["DoGState", "DoWGState", "InitStep", "dog", "dowg", "scale_by_dog", "scale_by_dowg"]

_INIT_STEP_KINDS = ("distance", "learning_rate", "heuristic")


@pytree_class
class InitStep(ValidationMixin):
    """DoG's ``init_step`` pair ``(kind, value)``: ``kind`` is static, ``value`` a leaf (a hyperparameter).

    Behaves like the tuple Optax takes (unpacking, indexing, equality with a tuple) and reads like one.
    """

    kind: str = choice(default=dataclasses.MISSING, choices=_INIT_STEP_KINDS)
    value: Scalar = positive(default=1e-6)

    def __iter__(self) -> Iterator[Any]:
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
    """The state of :class:`scale_by_dog` (Optax's field names).

    Attributes:
      is_init_step: True before the first step (a bool scalar).
      init_params: the initial parameters ``x_0``.
      max_dist: ``rbar``, the largest distance ``||x_k - x_0||`` so far (at least ``r_eps``), a scalar.
      sum_sq_norm_grads: ``G``, the sum of the squared gradient norms, a scalar.

    The scalars are kept in ``gradtx.tree.widest_real_dtype(params)`` (float32 or wider).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.scale_by_dog(("heuristic", 1e-6)).init(jnp.array([3.0, 4.0]))
      >>> print(state.max_dist)  # r_eps = 1e-6 (1 + ||x_0||)
      6e-06
    """

    is_init_step: jax.Array
    init_params: Params
    max_dist: jax.Array
    sum_sq_norm_grads: jax.Array


def _check_params(call: str, expected: Any, updates: Updates, params: Params | None) -> None:
    require_params(f"{call}.update", params)
    check_tree_match(f"{call}.update", expected, updates)
    check_tree_match(f"{call}.update", expected, params, what="params")


@pytree_class
class scale_by_dog(GradientTransformation):
    """Distance over Gradients (DoG): the step size from the distance travelled, without the sign.

    Ivgi, Hinder & Carmon 2023, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size Schedule", ICML,
    arXiv 2302.12022, Algorithm 1. ``u_k = eta_k g_k`` with (``x_k`` the parameters passed to the ``k``-th
    ``update``, ``x_0`` those given to ``init``, norms over the whole tree)::

        rbar_k = max(rbar_{k-1}, ||x_k - x_0||),   rbar_0 = r_eps
        G_k    = G_{k-1} + ||g_k||^2,              G_0 = 0
        eta_k  = rbar_k / sqrt(G_k + eps)

    ``init_step = (kind, value)`` chooses ``r_eps``: ``('distance', r)``: ``r_eps = r``; ``('heuristic',
    alpha)``: ``r_eps = alpha (1 + ||x_0||)`` (the paper's suggestion, alpha = 1e-6, 1e-4 with batch norm);
    ``('learning_rate', eta)``: ``r_eps = 0`` and ``eta_1 = eta``. ``eps`` inside the root is Optax's guard
    (the paper has none). Follow with ``scale_by_learning_rate`` (see :func:`dog`). The authors recommend
    averaging the iterates. ``init`` must see the real parameters (``x_0`` is stored; the heuristic reads it),
    and ``update`` needs ``params``. State: :class:`DoGState`.

    Args:
      init_step: the pair ``(kind, value)``, ``kind`` one of ``'distance'``, ``'learning_rate'``,
        ``'heuristic'`` and ``value > 0``. Required.
      eps: the guard inside the square root, ``>= 0``. Default 1e-8.

    Raises:
      ValueError: an invalid ``init_step``, e.g. ``scale_by_dog(init_step=('foo', 1.0)): init_step must be a pair
        (kind, value) with kind one of 'distance', 'learning_rate', 'heuristic'``, or an option out of range; at
        ``update``, no ``params``.
      TypeError: an option of the wrong type; at ``update``, updates or params whose tree does not match the
        state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_dog(("distance", 0.5))
      >>> params = jnp.zeros(2)
      >>> updates, state = tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)
      >>> print(updates)  # eta_1 = 0.5 / ||g_1|| = 0.1
      [0.3 0.4]
    """

    init_step: tuple[str, Scalar] | InitStep = option(
        accepts="a pair (kind, value) with kind one of " + ", ".join(repr(k) for k in _INIT_STEP_KINDS)
        + " and value > 0"
    )
    eps: Scalar = non_negative(default=1e-8)

    def __check_init__(self) -> None:
        step = self.init_step
        if isinstance(step, InitStep):
            return
        if not (isinstance(step, (tuple, list)) and len(step) == 2 and step[0] in _INIT_STEP_KINDS):
            self._fail("init_step", step, "must be a pair (kind, value) with kind one of "
                       + ", ".join(repr(k) for k in _INIT_STEP_KINDS))
        try:
            step = InitStep(step[0], step[1])
        except ValueError:
            self._fail("init_step", self.init_step, "must have a value > 0")
        object.__setattr__(self, "init_step", step)

    def init(self, params: Params) -> DoGState:
        dt = widest_real_dtype(params)
        step = cast(InitStep, self.init_step)  # a pair made an InitStep by __check_init__
        kind, value = step.kind, step.value
        if kind == "distance":
            r_eps = tree.hyper(value, dt)
        elif kind == "heuristic":
            r_eps = tree.hyper(value, dt) * (1 + safe_sqrt(sq_norm(params, dt)))
        else:
            r_eps = jnp.zeros([], dt)
        return DoGState(
            is_init_step=jnp.asarray(True),
            init_params=jax.tree.map(jnp.asarray, params),
            max_dist=r_eps.astype(dt),
            sum_sq_norm_grads=jnp.zeros([], dt),
        )

    def update(
        self, updates: Updates, state: DoGState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, DoGState]:
        del extra
        _check_params("scale_by_dog", state.init_params, updates, params)
        dt = state.max_dist.dtype
        max_dist = jnp.maximum(state.max_dist, safe_sqrt(sq_norm(difference(state.init_params, params), dt)))
        sum_sq = state.sum_sq_norm_grads + sq_norm(updates, dt)
        eta = max_dist / safe_sqrt(sum_sq + tree.hyper(self.eps, dt))
        step = cast(InitStep, self.init_step)  # a pair made an InitStep by __check_init__
        if step.kind == "learning_rate":
            eta = jnp.where(state.is_init_step, tree.hyper(step.value, dt), eta)
        new_state = DoGState(is_init_step=jnp.asarray(False), init_params=state.init_params, max_dist=max_dist,
                             sum_sq_norm_grads=sum_sq)
        return scaled(updates, eta), new_state


@recipe
def dog(
    learning_rate: ScalarOrSchedule = 1.0,
    init_step: tuple[str, Scalar] | InitStep = ("heuristic", 1e-6),
    eps: Scalar = 1e-8,
    weight_decay: Scalar | None = None,
    mask: MaskOrFn = None,
) -> chain:
    """DoG (Ivgi, Hinder & Carmon 2023): SGD with the parameter-free Distance-over-Gradients step size.

    ``[add_decayed_weights] -> scale_by_dog -> scale_by_learning_rate``::

        x_{k+1} = x_k - lr_k rbar_k / sqrt(G_k + eps) (g_k + weight_decay x_k)

    (see :class:`scale_by_dog`). Ivgi, Hinder & Carmon 2023, "DoG is SGD's Best Friend: A Parameter-Free Dynamic
    Step Size Schedule", ICML, arXiv 2302.12022. Signature and defaults of ``optax.contrib.dog``. ``update``
    needs ``params``.

    Args:
      learning_rate: an optional multiplier of the step, a number or a schedule of the 0-based step count.
        Default 1.
      init_step: :class:`scale_by_dog`'s ``(kind, value)`` pair. Default ``('heuristic', 1e-6)``.
      eps: the guard inside the square root, ``>= 0``. Default 1e-8.
      weight_decay: the weight decay ``>= 0`` added to the gradient, or None (none). Default None.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.

    Returns:
      A ``chain`` of the three blocks (``identity`` first without weight decay); its state is ``(EmptyState,
      DoGState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``dog(init_step=('distance', -1.0)): init_step must have a value
        > 0``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.dog(init_step=("distance", 0.5))
      >>> params = jnp.zeros(2)
      >>> updates, state = opt.update(jnp.array([3.0, 4.0]), opt.init(params), params)
      >>> print(updates)
      [-0.3 -0.4]
    """
    return chain(
        add_decayed_weights(weight_decay, mask) if weight_decay is not None else identity(),
        scale_by_dog(init_step, eps),
        scale_by_learning_rate(learning_rate),
    )


class DoWGState(NamedTuple):
    """The state of :class:`scale_by_dowg` (Optax's field names).

    Attributes:
      init_params: the initial parameters ``x_0``.
      weighted_sq_norm_grads: ``v``, the weighted sum ``sum_i rbar_i^2 ||g_i||^2``, a scalar.
      estim_sq_dist: ``rbar^2``, the squared distance estimate, a scalar.

    The scalars are kept in ``gradtx.tree.widest_real_dtype(params)`` (float32 or wider).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.scale_by_dowg(init_estim_sq_dist=0.25).init(jnp.zeros(2))
      >>> print(state.estim_sq_dist, state.weighted_sq_norm_grads)
      0.25 0.0
    """

    init_params: Params
    weighted_sq_norm_grads: jax.Array
    estim_sq_dist: jax.Array


@pytree_class
class scale_by_dowg(GradientTransformation):
    """Distance over Weighted Gradients (DoWG): the step size from the distance travelled, without the sign.

    Khaled, Mishchenko & Jin 2023, "DoWG Unleashed: An Efficient Universal Parameter-Free Gradient Descent
    Method", NeurIPS, arXiv 2305.16284, Algorithm 1. ``u_k = eta_k g_k`` with (``x_k`` the parameters passed to
    the ``k``-th ``update``, ``x_0`` those given to ``init``, norms over the whole tree)::

        rbar_k^2 = max(rbar_{k-1}^2, ||x_k - x_0||^2),   rbar_0^2 = init_estim_sq_dist (None: eps)
        v_k      = v_{k-1} + rbar_k^2 ||g_k||^2,         v_0 = 0
        eta_k    = rbar_k^2 / (sqrt(v_k) + eps)

    ``eps`` in the denominator is Optax's guard (the paper has none). Follow with ``scale_by_learning_rate``
    (see :func:`dowg`). ``update`` needs ``params``. State: :class:`DoWGState`.

    Args:
      init_estim_sq_dist: the initial squared distance estimate ``> 0``, or None (``eps``). Default None.
      eps: the guard in the denominator, ``>= 0`` (``> 0`` when ``init_estim_sq_dist`` is None). Default 1e-4.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_dowg(eps=0.0): eps must be > 0`` (without
        ``init_estim_sq_dist``); at ``update``, no ``params``.
      TypeError: an option of the wrong type; at ``update``, updates or params whose tree does not match the
        state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_dowg(init_estim_sq_dist=0.25)
      >>> params = jnp.zeros(2)
      >>> updates, state = tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)
      >>> print(updates)  # eta_1 = 0.25 / (0.5 ||g_1|| + eps), about 0.1
      [0.3 0.4]
    """

    init_estim_sq_dist: Scalar | None = hyper(default=None, lo=0.0, lo_open=True, optional=True)
    eps: Scalar = non_negative(default=1e-4)

    def __check_init__(self) -> None:
        if self.init_estim_sq_dist is None:
            self._check_range("eps", 0.0, lo_open=True)

    def init(self, params: Params) -> DoWGState:
        dt = widest_real_dtype(params)
        first = self.eps if self.init_estim_sq_dist is None else self.init_estim_sq_dist
        return DoWGState(init_params=jax.tree.map(jnp.asarray, params), weighted_sq_norm_grads=jnp.zeros([], dt),
                         estim_sq_dist=tree.hyper(first, dt))

    def update(
        self, updates: Updates, state: DoWGState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, DoWGState]:
        del extra
        _check_params("scale_by_dowg", state.init_params, updates, params)
        dt = state.estim_sq_dist.dtype
        estim = jnp.maximum(state.estim_sq_dist, sq_norm(difference(state.init_params, params), dt))
        weighted = state.weighted_sq_norm_grads + estim * sq_norm(updates, dt)
        eta = estim / (safe_sqrt(weighted) + tree.hyper(self.eps, dt))
        new_state = DoWGState(init_params=state.init_params, weighted_sq_norm_grads=weighted, estim_sq_dist=estim)
        return scaled(updates, eta), new_state


@recipe
def dowg(
    learning_rate: ScalarOrSchedule = 1.0,
    init_estim_sq_dist: Scalar | None = None,
    eps: Scalar = 1e-4,
    weight_decay: Scalar | None = None,
    mask: MaskOrFn = None,
) -> chain:
    """DoWG (Khaled, Mishchenko & Jin 2023): SGD with the parameter-free Distance-over-Weighted-Gradients step size.

    ``[add_decayed_weights] -> scale_by_dowg -> scale_by_learning_rate``::

        x_{k+1} = x_k - lr_k rbar_k^2 / (sqrt(v_k) + eps) (g_k + weight_decay x_k)

    (see :class:`scale_by_dowg`). Khaled, Mishchenko & Jin 2023, "DoWG Unleashed: An Efficient Universal
    Parameter-Free Gradient Descent Method", NeurIPS, arXiv 2305.16284. Signature and defaults of
    ``optax.contrib.dowg``. ``update`` needs ``params``.

    Args:
      learning_rate: an optional multiplier of the step, a number or a schedule of the 0-based step count.
        Default 1.
      init_estim_sq_dist: the initial squared distance estimate ``> 0``, or None (``eps``). Default None.
      eps: the guard in the denominator, ``>= 0`` (``> 0`` when ``init_estim_sq_dist`` is None). Default 1e-4.
      weight_decay: the weight decay ``>= 0`` added to the gradient, or None (none). Default None.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.

    Returns:
      A ``chain`` of the three blocks (``identity`` first without weight decay); its state is ``(EmptyState,
      DoWGState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``dowg(eps=-1.0): eps must be >= 0``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.dowg(init_estim_sq_dist=0.25)
      >>> params = jnp.zeros(2)
      >>> updates, state = opt.update(jnp.array([3.0, 4.0]), opt.init(params), params)
      >>> print(updates)
      [-0.3 -0.4]
    """
    return chain(
        add_decayed_weights(weight_decay, mask) if weight_decay is not None else identity(),
        scale_by_dowg(init_estim_sq_dist, eps),
        scale_by_learning_rate(learning_rate),
    )
