"""Sophia (Liu, Li, Hall, Liang & Ma 2023, "Sophia: A Scalable Stochastic Second-order Optimizer for Language
Model Pre-training", arXiv 2305.14342, Algorithm 3) with Hutchinson's diagonal-Hessian estimator (Sophia-H).

With ``k`` the 1-based step, ``T = update_interval`` and ``h`` a diagonal-Hessian estimate::

    m_k     = b1 m_{k-1} + (1 - b1) g_k,        m_hat = m_k / (1 - b1^k)
    u_k     = clip(m_hat / max(gamma h_{k-1}, eps), -clip_threshold, clip_threshold)
    h_k     = b2 h_{k-1} + (1 - b2) h_hat_k    if (k - 1) % T == 0, else h_{k-1}
    theta  <- theta - lr (u_k + weight_decay theta)                        (sophia: the full recipe)

Hutchinson's estimator (``hutchinson_estimator_diag_hessian``): ``h_hat = r * (H r)`` with ``r`` a Rademacher
vector (``+-1``) and ``H r`` a Hessian-vector product of ``obj_fn`` at ``params`` (``E[r * H r] = diag H``; exact
when ``H`` is diagonal). ``obj_fn(params) -> scalar loss`` is passed to ``update`` as an extra argument.

Conventions (those of ``optax.contrib.sophia``, whose names, defaults and state fields gradtx keeps): the first
moment is bias-corrected (Levanter's implementation; the paper's Algorithm 3 is not), and the step uses the
Hessian estimate *before* this step's refresh (``h_{k-1}``), so the first step divides by ``eps``; the estimator
runs on steps 1, T + 1, 2T + 1, ... (the paper's ``k mod T = 1``). Rademacher vectors rather than the paper's
Gaussian ones (lower variance, same mean). Deviation from Optax: the Rademacher vector of each leaf is cast to
that leaf's dtype (Optax casts every leaf to the narrowest parameter dtype, which fails for mixed-dtype trees).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    MaskOrFn,
    OptState,
    Params,
    Scalar,
    ScalarOrSchedule,
    TransformationLike,
    Updates,
    check_tree_match,
    require_params,
    safe_int32_increment,
    zero_count,
)
from gradtx.combine import chain
from gradtx.contrib._common import whole_numbers
from gradtx.fields import (
    FrozenTree,
    dtype_option,
    flag,
    hashable_tree,
    hyper,
    integer,
    non_negative,
    option,
    probability,
    pytree_class,
    recipe,
)
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.wrappers import with_extra_args_support

__all__ = ["HutchinsonState", "SophiaState", "hutchinson_estimator_diag_hessian", "scale_by_sophia", "sophia"]


class HutchinsonState(NamedTuple):
    """The state of :class:`hutchinson_estimator_diag_hessian` (Optax's field name).

    Attributes:
      key: the PRNG key the next Rademacher vector is drawn from (a raw ``uint32`` key).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.hutchinson_estimator_diag_hessian().init(jnp.zeros(2))
      >>> print(state.key)  # jax.random.PRNGKey(0)
      [0 0]
    """

    key: jax.Array


@pytree_class
class hutchinson_estimator_diag_hessian(GradientTransformation):
    """Hutchinson's estimate of the Hessian diagonal, ``r * (H r)`` with ``r`` a Rademacher vector.

    Hutchinson 1989, "A Stochastic Estimator of the Trace of the Influence Matrix for Laplacian Smoothing
    Splines"; Bekas, Kokiopoulou & Saad 2007, "An estimator for the diagonal of a matrix". ``r`` has entries
    ``+-1`` and ``H r`` is a Hessian-vector product of ``obj_fn`` at ``params`` (forward over reverse mode), so
    ``E[r * H r] = diag H``, exactly when ``H`` is diagonal. Ignores the updates; ``update`` needs ``params``
    and the extra argument ``obj_fn(params) -> loss``, and returns the estimate as its updates. The default
    estimator of :class:`scale_by_sophia` (Sophia-H). State: :class:`HutchinsonState`.

    Args:
      random_seed: a ``jax.random`` key (static), or None (``jax.random.PRNGKey(0)``, as Optax). Default None.

    Raises:
      ValueError: at ``update``, no ``params`` or no ``obj_fn`` (``hutchinson_estimator_diag_hessian.update:
        obj_fn(params) -> loss must be given as an extra argument (update(updates, state, params, obj_fn=...))``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> def loss(p):  # a diagonal Hessian diag(1, 3)
      ...     return 0.5 * jnp.sum(jnp.array([1.0, 3.0]) * p**2)
      >>> est = gradtx.contrib.hutchinson_estimator_diag_hessian()
      >>> params = jnp.zeros(2)
      >>> diag, state = est.update(params, est.init(params), params, obj_fn=loss)
      >>> print(diag)
      [1. 3.]
    """

    random_seed: jax.Array | None = option(default=None, accepts="a jax.random key", optional=True, static=True)

    def __check_init__(self) -> None:
        if self.random_seed is not None:
            object.__setattr__(self, "random_seed", hashable_tree(self.random_seed))

    def init(self, params: Params) -> HutchinsonState:
        del params
        seed = self.random_seed.tree if isinstance(self.random_seed, FrozenTree) else self.random_seed
        return HutchinsonState(key=jax.random.PRNGKey(0) if seed is None else jnp.asarray(seed))

    def update(
        self, updates: Updates, state: HutchinsonState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, HutchinsonState]:
        del updates
        obj_fn: Callable[[Params], Any] | None = extra.get("obj_fn")
        require_params("hutchinson_estimator_diag_hessian.update", params)
        if obj_fn is None:
            raise ValueError("hutchinson_estimator_diag_hessian.update: obj_fn(params) -> loss must be given as an "
                             "extra argument (update(updates, state, params, obj_fn=...))")
        key, subkey = jax.random.split(state.key)
        signs = tree.random_like(subkey, params, jax.random.rademacher, dtype=jnp.float32)
        signs = jax.tree.map(lambda r, p: r.astype(jnp.result_type(p)), signs, params)
        hvp = jax.jvp(jax.grad(obj_fn), (params,), (signs,))[1]
        product = jax.tree.map(lambda h, r: (h * r.astype(jnp.result_type(h))), hvp, signs)
        return product, HutchinsonState(key=key)


class SophiaState(NamedTuple):
    """The state of :class:`scale_by_sophia` (Optax's field names).

    Attributes:
      count: the number of steps taken, an int32 scalar.
      mu: the first moment ``m``, like the parameters (in ``mu_dtype`` if given).
      nu: the EMA ``h`` of the Hessian-diagonal estimates, like the parameters.
      hessian_fn_state: the estimator's state (a :class:`HutchinsonState` by default).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.scale_by_sophia().init(jnp.zeros(2))
      >>> print(type(state.hessian_fn_state).__name__, state.nu)
      HutchinsonState [0. 0.]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    mu: Updates
    nu: Updates
    hessian_fn_state: OptState


@pytree_class
class scale_by_sophia(GradientTransformation):
    """Sophia's direction: momentum preconditioned by a diagonal-Hessian estimate, clipped per coordinate.

    Liu, Li, Hall, Liang & Ma 2023, "Sophia: A Scalable Stochastic Second-order Optimizer for Language Model
    Pre-training", ICLR 2024, arXiv 2305.14342, Algorithm 3; conventions in the module docstring. With ``k`` the
    1-based step and ``T = update_interval``::

        m_k = b1 m_{k-1} + (1 - b1) g_k,        m_hat = m_k / (1 - b1^k)
        u_k = clip(m_hat / max(gamma h_{k-1}, eps), -clip_threshold, clip_threshold)
        h_k = b2 h_{k-1} + (1 - b2) h_hat_k    if (k - 1) % T == 0, else h_{k-1}

    ``h_hat`` comes from ``hessian_diagonal_fn`` (Hutchinson's estimator by default). The step uses the estimate
    *before* this step's refresh, so the first step divides by ``eps``. ``update`` needs ``params`` and the
    estimator's extra arguments (``obj_fn`` for the default). ``verbose`` prints the fraction of unclipped
    coordinates (the "win rate") every ``print_win_rate_every_n_steps`` steps. The output points uphill: follow it
    with ``scale_by_learning_rate`` (:func:`sophia`). State: :class:`SophiaState`.

    Args:
      b1: the decay of the first moment, in ``[0, 1)``. Default 0.965.
      b2: the decay of the Hessian-diagonal average, in ``[0, 1)``. Default 0.99.
      eps: the floor of the preconditioner, ``>= 0``. Default 1e-8.
      gamma: the scale ``gamma`` of the Hessian estimate, ``>= 0``. Default 0.01.
      clip_threshold: the clipping bound ``> 0``, or None (no clipping). Default 1.
      update_interval: the steps between Hessian estimates ``T``, a whole number ``>= 1``. Default 10.
      hessian_diagonal_fn: a transformation whose ``update`` returns a Hessian-diagonal estimate, or None
        (:class:`hutchinson_estimator_diag_hessian`). Default None.
      mu_dtype: the dtype of the first moment, a dtype or None (the parameter dtype). Default None.
      verbose: print the win rate. Default False.
      print_win_rate_every_n_steps: the period of the print, a whole number (``>= 1`` when ``verbose``; static).
        Default 0.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_sophia(print_win_rate_every_n_steps=0):
        print_win_rate_every_n_steps must be an integer >= 1 when verbose=True``; at ``update``, no ``params``
        or no ``obj_fn`` for the default estimator.
      TypeError: an option of the wrong type; at ``update``, updates whose tree does not match the state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> def loss(p):
      ...     return 0.5 * jnp.sum(jnp.array([1.0, 3.0]) * p**2)
      >>> tx = gradtx.contrib.scale_by_sophia()
      >>> params = jnp.zeros(2)
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(params), params, obj_fn=loss)
      >>> print(updates, state.nu)  # the first step divides by eps: clipped to +-1; h = (1 - b2) diag H
      [ 1. -1.] [0.01 0.03]
    """

    b1: Scalar = probability(default=0.965)
    b2: Scalar = probability(default=0.99)
    eps: Scalar = non_negative(default=1e-8)
    gamma: Scalar = non_negative(default=0.01)
    clip_threshold: Scalar | None = hyper(default=1.0, lo=0.0, lo_open=True, optional=True)
    update_interval: int = integer(default=10, lo=1)
    hessian_diagonal_fn: TransformationLike | None = option(
        default=None, accepts="a transformation estimating the Hessian diagonal", optional=True
    )
    mu_dtype: DTypeLike | None = dtype_option(default=None)
    verbose: bool = flag(default=False)
    print_win_rate_every_n_steps: int = integer(default=0, static=True)

    def __check_init__(self) -> None:
        fn = self.hessian_diagonal_fn if self.hessian_diagonal_fn is not None else hutchinson_estimator_diag_hessian()
        object.__setattr__(self, "hessian_diagonal_fn", with_extra_args_support(fn))
        whole_numbers(self, "print_win_rate_every_n_steps")
        if self.verbose and self.print_win_rate_every_n_steps < 1:
            self._fail("print_win_rate_every_n_steps", self.print_win_rate_every_n_steps,
                       "must be an integer >= 1 when verbose=True")

    def init(self, params: Params) -> SophiaState:
        return SophiaState(
            count=zero_count(),
            mu=tree.zeros_like(params, dtype=self.mu_dtype),
            nu=tree.zeros_like(params),
            hessian_fn_state=cast(TransformationLike, self.hessian_diagonal_fn).init(params),
        )

    def update(
        self, updates: Updates, state: SophiaState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, SophiaState]:
        require_params("scale_by_sophia.update", params)
        check_tree_match("scale_by_sophia.update", state.nu, updates)
        count = safe_int32_increment(state.count)
        mu = tree.update_moment(updates, jax.tree.map(tree.up, state.mu), self.b1, 1)
        mu_hat = tree.bias_correction(mu, self.b1, count)

        def precondition(g: Any, m: Any, h: Any) -> Any:  # clip(m_hat / max(gamma h, eps)), in m_hat's dtype
            x = tree.Leaf(m)
            u = x.cast(m) / jnp.maximum(x.hyper(self.gamma) * x.cast(h), x.hyper(self.eps))
            if self.clip_threshold is not None:
                c = x.hyper(self.clip_threshold)
                u = jnp.clip(u, -c, c)
            return tree.Leaf(g).out(u)

        out = jax.tree.map(precondition, updates, mu_hat, state.nu)
        if self.verbose and self.clip_threshold is not None:
            unclipped = sum((jnp.sum(jnp.abs(u) < tree.hyper(self.clip_threshold, u)) for u in jax.tree.leaves(out)),
                            jnp.zeros([], jnp.int32))
            rate = unclipped / max(tree.size(out), 1)
            jax.lax.cond(count % self.print_win_rate_every_n_steps == 0,
                         lambda: jax.debug.print("Sophia optimizer win rate: {}", rate), lambda: None)

        def refresh(hess_state: Any, nu: Any) -> tuple[Any, Any]:
            estimator = cast(TransformationLike, self.hessian_diagonal_fn)  # set by __check_init__
            diag, hess_state = estimator.update(updates, hess_state, params, **extra)
            return hess_state, tree.update_moment(diag, nu, self.b2, 1)

        interval = jnp.asarray(self.update_interval).astype(jnp.int32)
        hessian_fn_state, nu = jax.lax.cond(
            state.count % interval == 0, refresh, lambda h, n: (h, n), state.hessian_fn_state, state.nu
        )
        return out, SophiaState(count=count, mu=tree.cast_like(mu, state.mu), nu=nu, hessian_fn_state=hessian_fn_state)


@recipe
def sophia(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.965,
    b2: Scalar = 0.99,
    eps: Scalar = 1e-8,
    weight_decay: Scalar = 1e-4,
    weight_decay_mask: MaskOrFn = None,
    gamma: Scalar = 0.01,
    clip_threshold: Scalar | None = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: TransformationLike | None = None,
    mu_dtype: DTypeLike | None = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> chain:
    """Sophia (Liu et al. 2023): clipped, Hessian-preconditioned momentum with decoupled weight decay.

    ``scale_by_sophia -> add_decayed_weights -> scale_by_learning_rate``::

        theta <- theta - lr (clip(m_hat / max(gamma h, eps), -clip_threshold, clip_threshold) + weight_decay theta)

    (see :class:`scale_by_sophia`). Liu, Li, Hall, Liang & Ma 2023, "Sophia: A Scalable Stochastic Second-order
    Optimizer for Language Model Pre-training", ICLR 2024, arXiv 2305.14342. Signature and defaults of
    ``optax.contrib.sophia``. ``update`` needs ``params`` and ``obj_fn`` (for the default Hutchinson estimator):
    ``opt.update(grads, state, params, obj_fn=lambda p: loss(p, batch))``.

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count.
      b1: the decay of the first moment, in ``[0, 1)``. Default 0.965.
      b2: the decay of the Hessian-diagonal average, in ``[0, 1)``. Default 0.99.
      eps: the floor of the preconditioner, ``>= 0``. Default 1e-8.
      weight_decay: the decoupled weight decay ``>= 0`` (multiplied by the learning rate). Default 1e-4.
      weight_decay_mask: the parameters the weight decay applies to: None (all), a tree of bools or a function
        ``params -> such a tree``. Default None.
      gamma: the scale of the Hessian estimate, ``>= 0``. Default 0.01.
      clip_threshold: the clipping bound ``> 0``, or None (no clipping). Default 1.
      update_interval: the steps between Hessian estimates, a whole number ``>= 1``. Default 10.
      hessian_diagonal_fn: a transformation estimating the Hessian diagonal, or None (Hutchinson's). Default None.
      mu_dtype: the dtype of the first moment, a dtype or None (the parameter dtype). Default None.
      verbose: print the win rate. Default False.
      print_win_rate_every_n_steps: the period of the print, a whole number (``>= 1`` when ``verbose``).
        Default 0.

    Returns:
      A ``chain`` of the three blocks; its state is ``(SophiaState, EmptyState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``sophia(clip_threshold=0.0): clip_threshold must be > 0``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> def loss(p):
      ...     return 0.5 * jnp.sum(jnp.array([1.0, 3.0]) * p**2)
      >>> opt = gradtx.contrib.sophia(learning_rate=0.1)
      >>> params = jnp.zeros(2)
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), opt.init(params), params, obj_fn=loss)
      >>> print(updates)
      [-0.1  0.1]
    """
    return chain(
        scale_by_sophia(b1, b2, eps, gamma, clip_threshold, update_interval, hessian_diagonal_fn, mu_dtype, verbose,
                        print_win_rate_every_n_steps),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )
