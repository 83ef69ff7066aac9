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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    Params,
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
    """The PRNG key the next Rademacher vector is drawn from."""

    key: jax.Array


@pytree_class
class hutchinson_estimator_diag_hessian(GradientTransformation):
    """Hutchinson's estimate of the Hessian diagonal, ``r * (H r)`` with ``r`` Rademacher (Hutchinson 1989;
    Bekas, Kokiopoulou & Saad 2007). Ignores the updates; needs ``params`` and the extra argument
    ``obj_fn(params) -> loss``.

    Args:
      random_seed: a jax.random key (default None: ``jax.random.PRNGKey(0)``, as Optax); static.
    """

    random_seed: Any = option(default=None, accepts="a jax.random key", optional=True, static=True)

    def __check_init__(self) -> None:
        if self.random_seed is not None:
            object.__setattr__(self, "random_seed", hashable_tree(self.random_seed))

    def init(self, params: Params) -> HutchinsonState:
        del params
        seed = self.random_seed.tree if isinstance(self.random_seed, FrozenTree) else self.random_seed
        return HutchinsonState(key=jax.random.PRNGKey(0) if seed is None else jnp.asarray(seed))

    def update(self, updates: Updates, state: HutchinsonState, params: Params | None = None, **extra: Any):
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
    """Step count, first moment ``mu``, EMA ``nu`` of the Hessian-diagonal estimates, the estimator's state."""

    count: jax.Array
    mu: Updates
    nu: Updates
    hessian_fn_state: Any


@pytree_class
class scale_by_sophia(GradientTransformation):
    """Sophia's clipped, Hessian-preconditioned momentum (Liu et al. 2023, arXiv 2305.14342); see the module
    docstring for the equations and conventions. Needs ``params`` and the estimator's extra arguments
    (``obj_fn`` for the default Hutchinson estimator). ``clip_threshold=None``: no clipping. ``verbose``: print
    the fraction of unclipped coordinates (the "win rate") every ``print_win_rate_every_n_steps`` steps.

    Args:
      b1: the decay of the first moment, in ``[0, 1)``.
      b2: the decay of the Hessian-diagonal average, in ``[0, 1)``.
      eps: the floor of the preconditioner, ``>= 0``.
      gamma: the scale ``gamma`` of the Hessian estimate, ``>= 0``.
      clip_threshold: the clipping bound ``> 0``, or None (no clipping).
      update_interval: the steps between Hessian estimates, a whole number ``>= 1``.
      hessian_diagonal_fn: a transformation returning a Hessian-diagonal estimate (None: Hutchinson's).
      mu_dtype: the dtype of the first moment (None: the parameter dtype).
      verbose: print the win rate.
      print_win_rate_every_n_steps: the period of the print, a whole number (``>= 1`` when ``verbose``).
    """

    b1: Any = probability(default=0.965)
    b2: Any = probability(default=0.99)
    eps: Any = non_negative(default=1e-8)
    gamma: Any = non_negative(default=0.01)
    clip_threshold: Any = hyper(default=1.0, lo=0.0, lo_open=True, optional=True)
    update_interval: Any = integer(default=10, lo=1)
    hessian_diagonal_fn: Any = option(default=None, accepts="a transformation estimating the Hessian diagonal",
                                      optional=True)
    mu_dtype: Any = dtype_option(default=None)
    verbose: bool = flag(default=False)
    print_win_rate_every_n_steps: Any = integer(default=0, static=True)

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
            hessian_fn_state=self.hessian_diagonal_fn.init(params),
        )

    def update(self, updates: Updates, state: SophiaState, params: Params | None = None, **extra: Any):
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
            diag, hess_state = self.hessian_diagonal_fn.update(updates, hess_state, params, **extra)
            return hess_state, tree.update_moment(diag, nu, self.b2, 1)

        interval = jnp.asarray(self.update_interval).astype(jnp.int32)
        hessian_fn_state, nu = jax.lax.cond(
            state.count % interval == 0, refresh, lambda h, n: (h, n), state.hessian_fn_state, state.nu
        )
        return out, SophiaState(count=count, mu=tree.cast_like(mu, state.mu), nu=nu, hessian_fn_state=hessian_fn_state)


@recipe
def sophia(
    learning_rate: Any,
    b1: Any = 0.965,
    b2: Any = 0.99,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-4,
    weight_decay_mask: Any = None,
    gamma: Any = 0.01,
    clip_threshold: Any = 1.0,
    update_interval: Any = 10,
    hessian_diagonal_fn: Any = None,
    mu_dtype: Any = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: Any = 0,
) -> chain:
    """Sophia (Liu et al. 2023, arXiv 2305.14342): ``scale_by_sophia`` -> ``add_decayed_weights`` ->
    ``scale_by_learning_rate``. ``update`` needs ``params`` and ``obj_fn`` (for the default Hutchinson
    estimator): ``opt.update(grads, state, params, obj_fn=lambda p: loss(p, batch))``."""
    return chain(
        scale_by_sophia(b1, b2, eps, gamma, clip_threshold, update_interval, hessian_diagonal_fn, mu_dtype, verbose,
                        print_win_rate_every_n_steps),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )
