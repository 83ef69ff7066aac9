"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner (Vyas et al. 2024, arXiv 2409.11321, Algorithm 1).

For a matrix parameter with gradient ``G_k`` (``k`` the 1-based call) Shampoo's Kronecker factors are

    L_k = s L_{k-1} + (1 - s) G_k G_k^T,   R_k = s R_{k-1} + (1 - s) G_k^T G_k     (s = shampoo_beta, default b2)

and ``Q_L``, ``Q_R`` are their eigenvectors (descending eigenvalues). Adam runs in the rotated coordinates
``X' = Q_L^T X Q_R``: with ``t = k - 1`` Adam steps,

    M_t = b1 M_{t-1} + (1 - b1) G_k                (first moment, kept in the original coordinates)
    V_t = b2 V_{t-1} + (1 - b2) (Q_L^T G_k Q_R)^2  (second moment, in the rotated coordinates)
    u   = sqrt(1 - b2^t) / (1 - b1^t) * Q_L [ (Q_L^T M_t Q_R) / (sqrt(V_t) + eps) ] Q_R^T

then ``L``, ``R`` take ``G_k``, and the eigenbases are recomputed every ``precondition_frequency`` Adam steps.
A tensor of any rank has one factor per axis (``G`` contracted with itself over the other axes), rotated
axis by axis; an axis longer than ``max_precond_dim`` (or of length 1), the axis of a vector unless
``precondition_1d``, and scalars are not rotated (plain Adam along them).

Conventions, those of the authors' implementation (github.com/nikhilvyas/SOAP): the first call only builds
``L``, ``R`` and the eigenbases from ``G_1`` and returns a zero update ("so that we never use the current
gradient in the projection"); ``eps`` is added to ``sqrt(V_t)`` before the bias correction (their
``step_size = lr sqrt(1 - b2^t) / (1 - b1^t)``). Deviations: the eigenbasis is refreshed by an exact
symmetric eigendecomposition (their code runs one power iteration with a QR decomposition from the previous
basis); ``V`` is re-ordered at each refresh as theirs is: along each rotated axis its entries belong to the old
eigenvectors, so they are sorted by those vectors' eigenvalue estimates under the new factor,
``diag(Q_old^T L Q_old)``, descending, the order of the new basis's columns (without this, an eigenvalue that
changes rank between refreshes would pair ``V`` with another eigenvector's direction); ``merge_dims`` and
``normalize_grads`` are not offered; ``soap``'s weight decay is gradtx's decoupled ``add_decayed_weights``
before the learning rate (theirs multiplies the already updated parameters, a difference of order
``lr^2 wd``, and skips the decay on the first call).
"""

from __future__ import annotations

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
    safe_int32_increment,
    zero_count,
)
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt, whole_numbers
from gradtx.fields import flag, integer, non_negative, probability, pytree_class, recipe
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.tree.precision import ema

__all__ = ["ScaleBySoapState", "scale_by_soap", "soap"]


class ScaleBySoapState(NamedTuple):
    """The state of :class:`scale_by_soap`.

    Attributes:
      count: the number of calls, an int32 scalar.
      mu: Adam's first moment in the original coordinates, like the parameters.
      nu: Adam's second moment in the rotated coordinates, like the parameters.
      preconditioners: per parameter, a tuple with one Kronecker factor (``n x n`` for an axis of length ``n``)
        per rotated axis (an empty tuple for a leaf that is not rotated).
      eigenbases: per parameter, a tuple with the eigenbasis ``Q`` of each factor.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.scale_by_soap().init({"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)})
      >>> print([f.shape for f in state.preconditioners["w"]], state.preconditioners["b"])
      [(3, 3), (2, 2)] ()
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    mu: Updates
    nu: Updates
    preconditioners: Any
    eigenbases: Any


def _factor(g: jax.Array, axis: int) -> jax.Array:
    """``G`` contracted with itself over every axis but ``axis`` (``G G^T`` for axis 0 of a matrix)."""
    others = [a for a in range(g.ndim) if a != axis]
    return jnp.tensordot(g, g, axes=(others, others))


def _rotate(x: jax.Array, bases: tuple[jax.Array, ...], axes: tuple[int, ...], back: bool) -> jax.Array:
    """``Q^T`` (or ``Q`` when ``back``) applied along each rotated axis."""
    for q, a in zip(bases, axes):
        x = jnp.moveaxis(jnp.tensordot(x, q, axes=([a], [1 if back else 0])), -1, a)
    return x


def _eigenbasis(factor: jax.Array) -> jax.Array:
    """Eigenvectors of a symmetric factor, columns by descending eigenvalue."""
    _, vectors = jnp.linalg.eigh(factor)
    return cast(jax.Array, vectors[:, ::-1])


@pytree_class
class scale_by_soap(GradientTransformation):
    """SOAP's direction: Adam in the eigenbasis of Shampoo's preconditioner.

    Vyas, Morwani, Zhao et al. 2024, "SOAP: Improving and Stabilizing Shampoo using Adam", arXiv 2409.11321,
    Algorithm 1; equations and conventions in the module docstring::

        L_k = s L_{k-1} + (1 - s) G_k G_k^T,   R_k = s R_{k-1} + (1 - s) G_k^T G_k,   Q_L, Q_R their eigenvectors
        u   = sqrt(1 - b2^t) / (1 - b1^t) * Q_L [ (Q_L^T M_t Q_R) / (sqrt(V_t) + eps) ] Q_R^T

    ``shampoo_beta=None`` uses ``b2`` for the Kronecker factors (the authors' default). The first call only builds
    the factors and returns a zero update. ``precondition_frequency`` counts Adam steps between eigenbasis
    refreshes. Arithmetic and the factors are float32 or wider; ``mu`` and ``nu`` are stored in the parameter
    dtype. Real parameters only. The output points uphill: follow it with ``scale_by_learning_rate``
    (:func:`soap`). State: :class:`ScaleBySoapState`.

    Args:
      b1: the decay of Adam's first moment, in ``[0, 1)``. Default 0.95.
      b2: the decay of Adam's second moment, in ``[0, 1)``. Default 0.95.
      shampoo_beta: the decay of the Kronecker factors in ``[0, 1)``, or None (``b2``). Default None.
      eps: added to ``sqrt(V)``, ``>= 0``. Default 1e-8.
      precondition_frequency: the Adam steps between eigenbasis refreshes, a whole number ``>= 1`` (static).
        Default 10.
      max_precond_dim: the longest axis rotated, a whole number ``>= 1`` (static). Default 10000.
      precondition_1d: rotate vectors too. Default False.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_soap(precondition_frequency=0): precondition_frequency
        must be a whole number >= 1``; at ``init``, complex parameters (``scale_by_soap.init: complex parameters
        are not supported``).
      TypeError: an option of the wrong type; at ``update``, updates whose tree does not match the state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_soap()
      >>> state = tx.init(jnp.zeros((2, 2)))
      >>> grad = jnp.array([[1.0, 0.0], [0.0, -2.0]])
      >>> updates, state = tx.update(grad, state)  # the first call builds the eigenbases: a zero update
      >>> updates, state = tx.update(grad, state)
      >>> print(updates.round(4))  # Adam's first step in the rotated coordinates: sign(G) for this diagonal G
      [[ 1.  0.]
       [ 0. -1.]]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "its preconditioners are per dimension of each matrix"

    b1: Scalar = probability(default=0.95)
    b2: Scalar = probability(default=0.95)
    shampoo_beta: Scalar | None = probability(default=None, optional=True)
    eps: Scalar = non_negative(default=1e-8)
    precondition_frequency: int = integer(default=10, lo=1, static=True)
    max_precond_dim: int = integer(default=10000, lo=1, static=True)
    precondition_1d: bool = flag(default=False)

    def __check_init__(self) -> None:
        whole_numbers(self, "precondition_frequency", "max_precond_dim")

    def _axes(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) == 0 or (len(shape) == 1 and not self.precondition_1d):
            return ()
        return tuple(a for a, n in enumerate(shape) if 1 < n <= self.max_precond_dim)

    def init(self, params: Params) -> ScaleBySoapState:
        def factors(p: Any) -> tuple[Any, ...]:
            dt = tree.Leaf(p).compute_dtype
            return tuple(jnp.zeros((p.shape[a], p.shape[a]), dt) for a in self._axes(tuple(jnp.shape(p))))

        def bases(p: Any) -> tuple[Any, ...]:
            dt = tree.Leaf(p).compute_dtype
            return tuple(jnp.eye(p.shape[a], dtype=dt) for a in self._axes(tuple(jnp.shape(p))))

        for p in jax.tree.leaves(params):
            if jnp.iscomplexobj(p):
                raise ValueError("scale_by_soap.init: complex parameters are not supported")
        return ScaleBySoapState(
            count=zero_count(),
            mu=tree.zeros_like(params),
            nu=tree.zeros_like(params),
            preconditioners=jax.tree.map(factors, params),
            eigenbases=jax.tree.map(bases, params),
        )

    def update(
        self, updates: Updates, state: ScaleBySoapState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ScaleBySoapState]:
        del params, extra
        check_tree_match("scale_by_soap.update", state.mu, updates)
        count = safe_int32_increment(state.count)
        first = state.count == 0
        adam_step = jnp.maximum(count - 1, 1)  # the Adam step t (the first call makes none)
        refresh = first | ((count - 1) % self.precondition_frequency == 0)
        shampoo_beta = self.b2 if self.shampoo_beta is None else self.shampoo_beta

        def one(g: Any, m: Any, v: Any, ggs: tuple[Any, ...], qs: tuple[Any, ...]) -> tuple[Any, ...]:
            axes = self._axes(tuple(jnp.shape(g)))
            x = tree.Leaf(g)
            g32 = x.cast(g)
            # Exact decay complements and the one bias correction (gradtx.tree.ema / debias).
            m_new = x.ema(self.b1, m, g32)
            v_new = x.ema(self.b2, v, jnp.square(_rotate(g32, qs, axes, back=False)))
            step = jnp.sqrt(x.debias(self.b2, adam_step)) / x.debias(self.b1, adam_step)
            direction = _rotate(_rotate(m_new, qs, axes, back=False) / (safe_sqrt(v_new) + x.hyper(self.eps)), qs,
                                axes, back=True)
            out = jnp.where(first, jnp.zeros_like(g32), step * direction)
            m_new, v_new = jnp.where(first, x.cast(m), m_new), jnp.where(first, x.cast(v), v_new)
            ggs_new = tuple(ema(shampoo_beta, f, _factor(g32, a).astype(f.dtype)) for f, a in zip(ggs, axes))

            def refreshed() -> tuple[Any, ...]:
                # V's entries belong to the old eigenvectors: order them by those vectors' eigenvalue estimates
                # under the new factor, diag(Q_old^T L Q_old), descending, the order of the new basis's columns.
                vv = v_new
                for q, f, a in zip(qs, ggs_new, axes):
                    estimates = jnp.einsum("ij,ik,kj->j", q, f.astype(q.dtype), q)
                    vv = jnp.take(vv, jnp.argsort(-estimates, stable=True), axis=a)
                return tuple(_eigenbasis(f) for f in ggs_new), vv

            qs_new, v_new = jax.lax.cond(refresh, refreshed, lambda: (tuple(qs), v_new))
            return x.out(out), x.store(m_new, m), x.store(v_new, v), ggs_new, qs_new

        out, mu, nu, factors, bases = tree.map_split(one, 5, updates, state.mu, state.nu, state.preconditioners,
                                                     state.eigenbases)
        return out, ScaleBySoapState(count=count, mu=mu, nu=nu, preconditioners=factors, eigenbases=bases)


@recipe
def soap(
    learning_rate: ScalarOrSchedule = 3e-3,
    b1: Scalar = 0.95,
    b2: Scalar = 0.95,
    shampoo_beta: Scalar | None = None,
    eps: Scalar = 1e-8,
    weight_decay: Scalar = 0.01,
    mask: MaskOrFn = None,
    *,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    precondition_1d: bool = False,
) -> chain:
    """SOAP (Vyas et al. 2024): Adam in Shampoo's eigenbasis, with decoupled weight decay; the authors' defaults.

    ``scale_by_soap -> add_decayed_weights -> scale_by_learning_rate``: ``u = -lr (d + weight_decay theta)`` with
    ``d`` the direction of :class:`scale_by_soap`. Vyas, Morwani, Zhao et al. 2024, "SOAP: Improving and
    Stabilizing Shampoo using Adam", arXiv 2409.11321. The weight decay is gradtx's decoupled
    ``add_decayed_weights`` (see the module docstring for the difference from the authors').

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count. Default 3e-3.
      b1: the decay of Adam's first moment, in ``[0, 1)``. Default 0.95.
      b2: the decay of Adam's second moment, in ``[0, 1)``. Default 0.95.
      shampoo_beta: the decay of the Kronecker factors in ``[0, 1)``, or None (``b2``). Default None.
      eps: added to the root of the second moment, ``>= 0``. Default 1e-8.
      weight_decay: the decoupled weight decay ``>= 0`` (multiplied by the learning rate). Default 0.01.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.
      precondition_frequency: the Adam steps between eigenbasis refreshes, a whole number ``>= 1``
        (keyword-only). Default 10.
      max_precond_dim: the longest axis rotated, a whole number ``>= 1`` (keyword-only). Default 10000.
      precondition_1d: rotate vectors too (keyword-only). Default False.

    Returns:
      A ``chain`` of the three blocks; its state is ``(ScaleBySoapState, EmptyState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``soap(b1=1.0): b1 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.soap(learning_rate=0.1)
      >>> params = jnp.zeros(2)
      >>> state = opt.init(params)
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), state, params)  # zero: builds the factors
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), state, params)
      >>> print(updates)  # a vector is not rotated (precondition_1d=False): Adam's -lr sign(g)
      [-0.1  0.1]
    """
    return chain(
        scale_by_soap(b1, b2, shampoo_beta, eps, precondition_frequency, max_precond_dim, precondition_1d),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
