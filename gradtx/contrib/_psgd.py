"""PSGD Kron: SGD preconditioned by a Kronecker-factored ``P = Q^T Q`` fitted on its own criterion (Li 2018).

Xi-Lin Li 2018, "Preconditioner on Matrix Lie Group for SGD", arXiv 1809.10232 (and "Preconditioned Stochastic
Gradient Descent", arXiv 1512.04202). For a leaf of rank ``d`` the preconditioner is ``P = Q^T Q`` with
``Q = Q_1 (x) ... (x) Q_d``, one factor per axis: an upper-triangular ``n x n`` matrix (a group element of the
triangular Lie group) or, for the axes listed below, a diagonal kept as a vector. ``X x_i M`` multiplies axis
``i`` of ``X`` by ``M``. With ``k`` the 1-based call::

    m_k = b1 m_{k-1} + (1 - b1) g_k,   mhat = m_k / (1 - b1^k)                  (momentum, bias-corrected)
    h   = mhat (or g_k) + sqrt(eps_f32) mean|.| V,   V ~ N(0, I)                (a damped probe pair (V, h))
    A   = h x_1 Q_1 ... x_d Q_d,         B = V x_1 Q_1^{-T} ... x_d Q_d^{-T}
    T1_i = A_(i) A_(i)^T,  T2_i = B_(i) B_(i)^T        (contractions over every axis but i; diagonals only for
                                                      a diagonal factor)
    Q_i <- Q_i - lr_P triu(T1_i - T2_i) Q_i / ||T1_i + T2_i||     (triangular; ||.|| a lower bound of the
                                                                   spectral norm)
    Q_i <- Q_i - lr_P (T1_i - T2_i) Q_i / max|T1_i + T2_i|        (diagonal)
    u   = P mhat = mhat x_1 Q_1^T Q_1 ... x_d Q_d^T Q_d,   u <- u / max(1, rms(u) / 1.1)

The fit is a relative-gradient step on the criterion ``E[h^T P h + V^T P^{-1} V]``, whose minimiser satisfies
``P E[h h^T] P = E[V V^T]``: for Hessian-vector probes ``h = H V``, ``P = |H|^{-1}``; for Kron's gradient
probes, ``P = E[h h^T]^{-1/2}`` (within the Kronecker family), which whitens the gradients.

Which axes get a diagonal factor: every axis of a leaf of rank below ``min_ndim_triangular``, axes of length 1
or above ``max_size_triangular``, and ``memory_save_mode``'s: ``'one_diag'`` the longest axis (the last of
equals), ``'all_diag'`` every axis. A scalar leaf has one scalar factor. Initially ``Q_i = s^{1/d} I``
(``s = precond_init_scale``), so ``P = s^2 I``.

Transcribed (read, not copied) from ``evanatyourservice/psgd_jax``, ``psgd_jax/kron.py`` at commit
be9552446381ce1ad9fcf9632c5c1045a9fa44c3 (a port of ``lixilinx/psgd_torch``'s Kron). Kept as there: momentum
with Optax's bias correction; the damped probe ``h`` (``sqrt`` of float32's machine epsilon times the mean
absolute value); the normalised factor steps and their spectral-norm lower bound; the *deterministic* update
schedule of that commit (a counter: the preconditioner is fitted when ``counter >= 1 / p``, then the counter
restarts, so ``p = 1`` fits every step, ``p = 0.5`` every other step, ``p = 0`` never), with ``p`` the
``preconditioner_update_probability`` (a number or a schedule; the default is kron's anneal, 1 for 500 steps then
``exp(-(k - 500) / 1000)`` down to 0.03); the fit before preconditioning, on the same call; and the final
clipping of each leaf's root-mean-square to 1.1. Deviations: the probe comes from a PRNG key in the state
(``key``; theirs is ``fold_in(PRNGKey(5318008), count)``), drawn in float32 for every parameter dtype; the
factors of a leaf are balanced (scaled to the geometric mean of their largest magnitudes, which leaves ``P``
unchanged) at every fit instead of at random with probability 0.01; the spectral-norm bound uses that
``T1 + T2`` is symmetric (one of their two equivalent branches); ``scanned_layers``, the matmul precision options
and Flax's boxed parameters are not offered; real parameters only.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

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
from gradtx.fields import (
    dtype_option,
    flag,
    hashable_tree,
    integer,
    option,
    positive,
    probability,
    pytree_class,
    recipe,
)
from gradtx.schedules import exponential_decay
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.noise import as_key, is_int, is_raw_key, is_typed_key

__all__ = ["KRON_UPDATE_PROBABILITY", "ScaleByKronState", "kron", "scale_by_kron"]

# kron's precond_update_prob_schedule() (max 1, min 0.03, decay 1e-3, flat start 500) at the 1-based step
# k = count + 1: min(max(exp(-1e-3 (k - 500)), 0.03), 1) = exponential_decay at the 0-based count, from 499.
KRON_UPDATE_PROBABILITY = exponential_decay(1.0, 1000.0, math.exp(-1.0), 499, False, 0.03)

_DAMPING = math.sqrt(float(np.finfo(np.float32).eps))  # the probe's damping, as kron: sqrt(float32 eps)
_CLIP_RMS = 1.1  # each preconditioned leaf's root-mean-square is clipped to this


class ScaleByKronState(NamedTuple):
    """The state of :class:`scale_by_kron`.

    Attributes:
      count: the number of calls, an int32 scalar.
      mu: the momentum ``m`` (not bias-corrected), like the parameters, in ``mu_dtype``.
      preconditioners: per parameter, a tuple with one factor ``Q_i`` per axis: an ``n x n`` upper-triangular
        matrix or a length-``n`` diagonal (one scalar factor for a scalar parameter), in ``precond_dtype``.
      update_counter: the calls since the preconditioner was last fitted, an int32 scalar.
      rng_key: the typed PRNG key the next probes come from (split at every call).

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.contrib._psgd import scale_by_kron
      >>> state = scale_by_kron().init({"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)})
      >>> print([q.shape for q in state.preconditioners["w"]], [q.shape for q in state.preconditioners["b"]])
      [(3, 3), (2, 2)] [(2,)]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    mu: Updates
    preconditioners: Any
    update_counter: jax.Array
    rng_key: jax.Array


def _mode(x: jax.Array, m: jax.Array, axis: int) -> jax.Array:
    """``x x_axis m``: axis ``axis`` of ``x`` multiplied by the matrix ``m`` (a diagonal vector: elementwise)."""
    if m.ndim < 2:
        return x * jnp.expand_dims(m, tuple(range(1, x.ndim - axis))) if x.ndim else x * m
    return jnp.moveaxis(jnp.tensordot(x, m, axes=([axis], [1])), -1, axis)


def _solve_t(x: jax.Array, q: jax.Array, axis: int) -> jax.Array:
    """``x x_axis Q^{-T}``: ``Q^T y = x`` solved along ``axis`` (``Q`` upper triangular, or a diagonal)."""
    if q.ndim < 2:
        return x / jnp.expand_dims(q, tuple(range(1, x.ndim - axis))) if x.ndim else x / q
    front = jnp.moveaxis(x, axis, 0)
    flat = front.reshape(front.shape[0], -1)
    y = jax.scipy.linalg.solve_triangular(q, flat, trans="T", lower=False)
    return jnp.moveaxis(y.reshape(front.shape), 0, axis)


def _gram(x: jax.Array, axis: int, diagonal: bool) -> jax.Array:
    """``X_(axis) X_(axis)^T`` (contracted over every other axis); only its diagonal when ``diagonal``."""
    if x.ndim == 0:
        return x * x
    others = [a for a in range(x.ndim) if a != axis]
    if diagonal:
        return jnp.sum(x * x, axis=tuple(others))
    return jnp.tensordot(x, x, axes=(others, others))


def _max_abs(z: jax.Array) -> jax.Array:
    """``max |z|``, differentiated through the position of the maximum (a gather) rather than through
    ``reduce_max``'s equality mask, which compiled code may evaluate on a differently rounded copy of ``z``."""
    flat = jnp.abs(jnp.ravel(z))
    return flat[jnp.argmax(jax.lax.stop_gradient(flat))]


def _norm_lower_bound(a: jax.Array) -> jax.Array:
    """A lower bound of the spectral norm of the symmetric ``a``: ``||a x|| / ||x||`` with ``x`` the column of
    largest norm of ``a`` applied once more (Li's cheap bound; ``norm(a) <= sqrt(2) * bound`` in practice)."""
    scale = _max_abs(a)
    safe = jnp.where(scale > 0, scale, 1)
    b = a / safe
    col = jnp.take(b, jnp.argmax(jnp.sum(b * b, axis=0)), axis=1)
    x = b @ col
    nx = safe_sqrt(jnp.sum(x * x))
    y = b @ (x / jnp.where(nx > 0, nx, 1))
    bound = safe * safe_sqrt(jnp.sum(y * y))
    return jnp.where(scale > 0, bound, scale)


@pytree_class
class scale_by_kron(GradientTransformation):
    """PSGD Kron's direction: momentum preconditioned by a fitted Kronecker-factored ``P = Q^T Q``.

    Li 2018, "Preconditioner on Matrix Lie Group for SGD", arXiv 1809.10232; the update as in
    ``psgd_jax``'s ``kron`` (equations, conventions and deviations in the module docstring)::

        m = b1 m + (1 - b1) g,  mhat = m / (1 - b1^k);  (fit Q on the probe V when due)
        u = mhat x_1 Q_1^T Q_1 ... x_d Q_d^T Q_d,  u <- u / max(1, rms(u) / 1.1)

    The fit runs when ``counter >= 1 / p`` (``p = preconditioner_update_probability``, evaluated at the 0-based
    count), before the gradient is preconditioned. Arithmetic is float32 or wider; ``mu`` is stored in
    ``mu_dtype``, the factors in ``precond_dtype``. Real parameters only. The output points uphill: follow it
    with ``scale_by_learning_rate`` (:func:`kron`). State: :class:`ScaleByKronState`.

    Args:
      b1: the momentum decay, in ``[0, 1)`` (0: the raw gradient). Default 0.9.
      preconditioner_update_probability: the fraction ``p`` of calls that fit the preconditioner, in
        ``[0, 1]``, or a schedule of the 0-based count (static: the fits are a step function of ``p``, so it is
        not a differentiable leaf). Default ``KRON_UPDATE_PROBABILITY`` (kron's anneal from 1 to 0.03).
      max_size_triangular: the longest axis with a triangular factor, a whole number ``>= 1`` (static).
        Default 8192.
      min_ndim_triangular: the smallest rank whose axes get triangular factors, a whole number ``>= 0``
        (static). Default 2.
      memory_save_mode: None, ``'one_diag'`` (the longest axis diagonal) or ``'all_diag'`` (static). Default
        None.
      momentum_into_precond_update: fit the preconditioner on the momentum ``mhat`` rather than the gradient.
        Default True.
      precond_lr: the normalised step ``lr_P`` of each factor, in ``[0, 1]``. Default 0.1.
      precond_init_scale: the initial scale ``s`` of ``Q`` (``Q_i = s^{1/d} I``, so ``P = s^2 I``), ``> 0``.
        Default 1.0.
      mu_dtype: the dtype ``mu`` is stored in, a floating dtype or None (the parameter's). Default None.
      precond_dtype: the dtype the factors are stored in, a real floating dtype or None (the compute dtype:
        float32, or float64 for float64 parameters). Default None.
      key: the probes' random stream: an int seed or a ``jax.random`` key (static). Default 0.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_kron(b1=1.5): b1 must be in [0, 1)``; at ``init``,
        complex parameters (``scale_by_kron.init: complex parameters are not supported``).
      TypeError: an option of the wrong type; at ``update``, updates whose tree does not match the state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.contrib._psgd import scale_by_kron
      >>> tx = scale_by_kron(b1=0.0, preconditioner_update_probability=0.0)  # never fitted: P = I
      >>> state = tx.init(jnp.zeros((2, 2)))
      >>> updates, state = tx.update(jnp.array([[0.5, 0.0], [0.0, -1.0]]), state)
      >>> print(updates)  # the gradient itself (its rms 0.56 is below 1.1)
      [[ 0.5  0. ]
       [ 0.  -1. ]]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "its preconditioner has one Kronecker factor per dimension of each leaf"

    b1: Scalar = probability(default=0.9)
    preconditioner_update_probability: ScalarOrSchedule = probability(
        default=KRON_UPDATE_PROBABILITY, closed=True, schedule=True, static=True)
    max_size_triangular: int = integer(default=8192, lo=1, static=True)
    min_ndim_triangular: int = integer(default=2, lo=0, static=True)
    memory_save_mode: str | None = option(default=None, optional=True, static=True,
                                          accepts="one of 'one_diag', 'all_diag'")
    momentum_into_precond_update: bool = flag(default=True)
    precond_lr: Scalar = probability(default=0.1, closed=True)
    precond_init_scale: Scalar = positive(default=1.0)
    mu_dtype: DTypeLike | None = dtype_option(default=None)
    precond_dtype: DTypeLike | None = dtype_option(default=None, real_only=True)
    key: ArrayLike = option(default=0, static=True, accepts="an int seed or a jax.random key")

    def __check_init__(self) -> None:
        whole_numbers(self, "max_size_triangular", "min_ndim_triangular")
        if self.memory_save_mode is not None and (not isinstance(self.memory_save_mode, str)
                                                  or self.memory_save_mode not in ("one_diag", "all_diag")):
            self._fail("memory_save_mode", self.memory_save_mode,
                       "must be None or one of 'one_diag', 'all_diag'")
        k = self.key
        if not (is_int(k) or is_typed_key(k) or (is_raw_key(k) and np.shape(k) == (2,))):
            self._fail("key", k, "must be an int seed or a jax.random key")
        object.__setattr__(self, "key", hashable_tree(k))

    def _triangular(self, shape: tuple[int, ...]) -> tuple[bool, ...]:
        """Per axis, whether its factor is triangular (False: a diagonal); ``(False,)`` for a scalar."""
        if not shape:
            return (False,)
        diag = [False] * len(shape)
        if self.memory_save_mode == "all_diag":
            diag = [True] * len(shape)
        elif self.memory_save_mode == "one_diag":
            longest = max(shape)
            diag[max(i for i, n in enumerate(shape) if n == longest)] = True
        return tuple(not d and 1 < n <= self.max_size_triangular and len(shape) >= self.min_ndim_triangular
                     for n, d in zip(shape, diag))

    def _precond_dtype(self, p: Any) -> Any:
        return tree.Leaf(p).compute_dtype if self.precond_dtype is None else self.precond_dtype

    def init(self, params: Params) -> ScaleByKronState:
        def factors(p: Any) -> tuple[Any, ...]:
            shape = tuple(jnp.shape(p))
            dt = self._precond_dtype(p)
            if not shape:
                return (jnp.full((), self.precond_init_scale, dt),)
            s = jnp.asarray(self.precond_init_scale, dt) ** (1.0 / len(shape))
            return tuple(s * (jnp.eye(n, dtype=dt) if tri else jnp.ones(n, dt))
                         for n, tri in zip(shape, self._triangular(shape)))

        for p in jax.tree.leaves(params):
            if jnp.iscomplexobj(p):
                raise ValueError("scale_by_kron.init: complex parameters are not supported")
        return ScaleByKronState(
            count=zero_count(),
            mu=tree.zeros_like(params, self.mu_dtype),
            preconditioners=jax.tree.map(factors, params),
            update_counter=zero_count(),
            rng_key=as_key(self.key),
        )

    def update(
        self, updates: Updates, state: ScaleByKronState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ScaleByKronState]:
        del params, extra
        check_tree_match("scale_by_kron.update", state.mu, updates)
        count = safe_int32_increment(state.count)
        rng_key, sample_key = jax.random.split(state.rng_key)
        keys = tree.split_key_like(sample_key, updates)
        p = self.preconditioner_update_probability
        prob = jnp.asarray(p(state.count) if callable(p) else p, jnp.float32)
        counter = safe_int32_increment(state.update_counter)
        fit = counter.astype(jnp.float32) * prob >= 1  # counter >= 1 / p, with p = 0 never
        counter = jnp.where(fit, jnp.zeros_like(counter), counter)

        def one(g: Any, m: Any, qs: tuple[Any, ...], key: Any) -> tuple[Any, ...]:
            x = tree.Leaf(g)
            shape = tuple(jnp.shape(g))
            tri = self._triangular(shape)
            g32 = x.cast(g)
            m_new = x.ema(self.b1, m, g32)
            mhat = m_new / x.debias(self.b1, count)

            dtypes = [q.dtype for q in qs]

            def fitted(stored: tuple[Any, ...]) -> tuple[Any, ...]:
                qs = tuple(q.astype(x.compute_dtype) for q in stored)
                if len(qs) > 1:  # balance: the same P, factors of equal largest magnitude
                    norms = jnp.stack([_max_abs(q) for q in qs])
                    gmean = jnp.exp(jnp.mean(jnp.log(norms)))
                    qs = tuple(q * (gmean / n) for q, n in zip(qs, norms))
                v = jax.random.normal(key, shape, jnp.float32).astype(x.compute_dtype)
                h = mhat if self.momentum_into_precond_update else g32
                h = h + _DAMPING * jnp.mean(jnp.abs(h)) * v
                a, b = h, v
                for i, q in enumerate(qs):
                    a = _mode(a, q, i) if shape else a * q
                    b = _solve_t(b, q, i) if shape else b / q
                lr = x.hyper(self.precond_lr)
                tiny = float(np.finfo(np.dtype(x.real_dtype)).tiny)
                new = []
                for i, (q, t) in enumerate(zip(qs, tri)):
                    t1, t2 = _gram(a, i, not t), _gram(b, i, not t)
                    if t:
                        step = jnp.triu(t1 - t2) * (lr / (_norm_lower_bound(t1 + t2) + tiny))
                        new.append(q - step @ q)
                    else:
                        new.append(q - lr * (t1 - t2) * q / (_max_abs(t1 + t2) + tiny))
                return tuple(n.astype(d) for n, d in zip(new, dtypes))

            qs_new = jax.lax.cond(fit, fitted, lambda qs: tuple(qs), tuple(qs))
            u = mhat
            for i, q in enumerate(qs_new):
                q = q.astype(x.compute_dtype)
                if not shape:
                    u = u * q * q
                elif q.ndim < 2:
                    u = _mode(u, q * q, i)
                else:
                    u = _mode(u, q.T @ q, i)
            if u.size:
                u = u / jnp.maximum(1, safe_sqrt(jnp.mean(u * u)) / _CLIP_RMS)
            return x.out(u), x.store(m_new, m), qs_new

        out, mu, qs = tree.map_split(one, 3, updates, state.mu, state.preconditioners, keys)
        return out, ScaleByKronState(count=count, mu=mu, preconditioners=qs, update_counter=counter,
                                     rng_key=rng_key)


@recipe
def kron(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: Scalar = 0.9,
    weight_decay: Scalar = 0.0,
    mask: MaskOrFn = None,
    *,
    preconditioner_update_probability: ScalarOrSchedule = KRON_UPDATE_PROBABILITY,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: str | None = None,
    momentum_into_precond_update: bool = True,
    precond_lr: Scalar = 0.1,
    precond_init_scale: Scalar = 1.0,
    mu_dtype: DTypeLike | None = None,
    precond_dtype: DTypeLike | None = None,
    key: ArrayLike = 0,
) -> chain:
    """PSGD Kron (Li 2018) with decoupled weight decay: ``psgd_jax``'s ``kron`` and its defaults.

    ``scale_by_kron -> add_decayed_weights -> scale_by_learning_rate``: ``u = -lr (d + weight_decay theta)``
    with ``d`` the clipped preconditioned momentum of :class:`scale_by_kron`. Xi-Lin Li 2018, "Preconditioner on
    Matrix Lie Group for SGD", arXiv 1809.10232. Since each leaf's ``d`` has a root-mean-square near 1, the
    learning rate is of Adam's order (kron's default 1e-3).

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count. Default 1e-3.
      b1: the momentum decay, in ``[0, 1)``. Default 0.9.
      weight_decay: the decoupled weight decay ``>= 0`` (multiplied by the learning rate). Default 0.0.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.
      preconditioner_update_probability: the fraction of steps that fit the preconditioner, in ``[0, 1]``, or a
        schedule (keyword-only). Default ``KRON_UPDATE_PROBABILITY`` (1 for 500 steps, then down to 0.03).
      max_size_triangular: the longest axis with a triangular factor, a whole number ``>= 1`` (keyword-only).
        Default 8192.
      min_ndim_triangular: the smallest rank with triangular factors, a whole number ``>= 0`` (keyword-only).
        Default 2.
      memory_save_mode: None, ``'one_diag'`` or ``'all_diag'`` (keyword-only). Default None.
      momentum_into_precond_update: fit on the momentum rather than the gradient (keyword-only). Default True.
      precond_lr: the factors' normalised step, in ``[0, 1]`` (keyword-only). Default 0.1.
      precond_init_scale: the initial scale ``s`` of ``Q`` (``P = s^2 I``), ``> 0`` (keyword-only). Default 1.0.
      mu_dtype: the momentum's dtype, a floating dtype or None (the parameter's) (keyword-only). Default None.
      precond_dtype: the factors' dtype, a real floating dtype or None (the compute dtype) (keyword-only).
        Default None.
      key: the probes' random stream, an int seed or a ``jax.random`` key (keyword-only). Default 0.

    Returns:
      A ``chain`` of the three blocks; its state is ``(ScaleByKronState, EmptyState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``kron(b1=1.5): b1 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.contrib._psgd import kron
      >>> opt = kron(learning_rate=0.1, b1=0.0, preconditioner_update_probability=0.0)
      >>> params = jnp.zeros(2)
      >>> updates, state = opt.update(jnp.array([1.0, -0.5]), opt.init(params), params)
      >>> print(updates)  # P = I never fitted: -lr g (rms 0.79 < 1.1, not clipped)
      [-0.1   0.05]
    """
    return chain(
        scale_by_kron(b1, preconditioner_update_probability, max_size_triangular, min_ndim_triangular,
                      memory_save_mode, momentum_into_precond_update, precond_lr, precond_init_scale, mu_dtype,
                      precond_dtype, key),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
