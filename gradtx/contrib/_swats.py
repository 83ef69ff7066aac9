"""SWATS: start with Adam, switch to SGD with momentum once Adam's implied learning rate settles.

Keskar & Socher 2017, "Improving Generalization Performance by Switching from Adam to SGD", arXiv 1712.07628,
Algorithm 1. One of the two ways the lecture's course combines Adam's early speed with SGD-momentum's
generalisation (the other is AdaBound, :func:`gradtx.contrib.adabound`). With ``k`` the 1-based step::

    Adam phase:   m_k = b1 m + (1 - b1) g,   a_k = b2 a + (1 - b2) g^2
                  p_k = -lr sqrt(1 - b2^k) / (1 - b1^k) * m_k / (sqrt(a_k) + eps)      (the update)
                  if p_k . g_k != 0:
                      gamma_k = (p_k . p_k) / (-p_k . g_k)     (the SGD rate whose step along g projects to p)
                      lambda_k = b2 lambda + (1 - b2) gamma_k
                      if k > 1 and |lambda_k / (1 - b2^k) - gamma_k| < switch_tol and lambda_k > 0:
                          switch; sgd_lr = lambda_k / (1 - b2^k)
    SGD phase:    v_k = b1 v + g,   u = -(1 - b1) sgd_lr v_k

The dot products run over the whole parameter tree: one global estimate and one switch, as in the paper's
Algorithm 1 (third-party implementations such as ``Mrpatekful/swats`` estimate per parameter tensor and switch
a whole parameter group when one tensor's estimate settles; not offered here). One deviation from Algorithm 1:
the switch also needs a positive rate (``lambda_k > 0``, as those implementations require): ``gamma_k`` is
negative when Adam's step has a positive component along the gradient (momentum overshooting), and a settled
negative estimate would make the SGD phase climb. The switch happens inside the step that
triggers it (that step is still Adam's); ``momentum`` starts from zero at the switch. Statistics and the
learning rates are kept in the widest real dtype of the parameters, at least float32. The defaults are the
paper's (``eps = switch_tol = 1e-9``); in float32 a tolerance that small rarely triggers, so pass a larger
``switch_tol`` (relative scales: ``gamma`` is of the order of ``lr``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    Params,
    Updates,
    as_pytree_callable,
    check_tree_match,
    pytree_class,
    safe_int32_increment,
    zero_count,
)

__all__ = ["ScaleBySwatsState", "swats"]


class ScaleBySwatsState(NamedTuple):
    """``count`` (steps taken), Adam's ``mu`` and ``nu``, SGD's ``momentum``, the running estimate ``lam`` of the
    SGD rate, ``sgd_lr`` (the rate in use once switched, 0 before) and ``switched``."""

    count: jax.Array
    mu: Updates
    nu: Updates
    momentum: Updates
    lam: jax.Array
    sgd_lr: jax.Array
    switched: jax.Array


@pytree_class
class swats(GradientTransformation):
    """SWATS (see the module docstring): Adam, then SGD with momentum at the rate estimated from Adam's steps.

    Returns the whole update (the learning rate is inside, as the switch needs Adam's actual step).
    ``learning_rate`` may be a schedule of the 0-based count (Adam phase only).
    """

    learning_rate: Any = 1e-3
    b1: Any = 0.9
    b2: Any = 0.999
    eps: Any = 1e-9
    switch_tol: Any = 1e-9

    def __post_init__(self) -> None:
        object.__setattr__(self, "learning_rate", as_pytree_callable(self.learning_rate))
        if not callable(self.learning_rate):
            self._check_range("learning_rate", 0.0)
        self._check_range("b1", 0.0, 1.0, hi_open=True)
        self._check_range("b2", 0.0, 1.0, hi_open=True)
        self._check_range("eps", 0.0)
        self._check_range("switch_tol", 0.0)

    def init(self, params: Params) -> ScaleBySwatsState:
        dt = tree.widest_real_dtype(params)
        zero = jnp.zeros((), dt)
        return ScaleBySwatsState(
            count=zero_count(),
            mu=tree.zeros_like(params),
            nu=tree.zeros_like(params),
            momentum=tree.zeros_like(params),
            lam=zero,
            sgd_lr=zero,
            switched=jnp.zeros((), jnp.bool_),
        )

    def update(self, updates: Updates, state: ScaleBySwatsState, params: Params | None = None, **extra: Any):
        del params, extra
        check_tree_match("swats.update", state.mu, updates)
        dt = jnp.result_type(state.lam)
        count = safe_int32_increment(state.count)
        lr = self.learning_rate(state.count) if callable(self.learning_rate) else self.learning_rate
        # Exact decay complements and the one bias correction (gradtx.tree.ema / debias).
        debias2 = tree.debias(self.b2, count, dt)
        step = jnp.asarray(lr, dt) * jnp.sqrt(debias2) / tree.debias(self.b1, count, dt)

        def adam_one(g: Any, m: Any, a: Any) -> tuple[Any, Any, Any]:
            x = tree.up(g)
            c = jnp.result_type(x)
            m = tree.ema(self.b1, tree.up(m).astype(c), x)
            a = tree.ema(self.b2, tree.up(a).astype(c), x * x)
            p = -jnp.asarray(step, c) * m / (jnp.sqrt(a) + jnp.asarray(self.eps, c))
            return p, m, a

        leaves_g, treedef = jax.tree.flatten(updates)
        triples = [
            adam_one(g, m, a)
            for g, m, a in zip(leaves_g, treedef.flatten_up_to(state.mu), treedef.flatten_up_to(state.nu))
        ]
        p = [t[0] for t in triples]
        pg = sum((jnp.sum(pi.astype(dt) * tree.up(g).astype(dt)) for pi, g in zip(p, leaves_g)), jnp.zeros((), dt))
        pp = sum((jnp.sum(jnp.square(pi.astype(dt))) for pi in p), jnp.zeros((), dt))
        moves = pg != 0
        gamma = jnp.where(moves, pp / jnp.where(moves, -pg, 1), 0)
        lam = jnp.where(moves, tree.ema(self.b2, state.lam, gamma.astype(dt)), state.lam)
        lam_hat = lam / debias2
        settle = moves & (count > 1) & (jnp.abs(lam_hat - gamma) < jnp.asarray(self.switch_tol, dt)) & (lam > 0)

        was = state.switched

        def sgd_one(g: Any, v: Any) -> tuple[Any, Any]:
            x = tree.up(g)
            c = jnp.result_type(x)
            v = tree.hyper(self.b1, c) * tree.up(v).astype(c) + x
            return -(tree.complement(self.b1, c) * jnp.asarray(state.sgd_lr, c)) * v, v

        pairs = [sgd_one(g, v) for g, v in zip(leaves_g, treedef.flatten_up_to(state.momentum))]
        out, mu, nu, mom = [], [], [], []
        for g, (pa, m, a), (ps, v), m0, a0, v0 in zip(
            leaves_g,
            triples,
            pairs,
            treedef.flatten_up_to(state.mu),
            treedef.flatten_up_to(state.nu),
            treedef.flatten_up_to(state.momentum),
        ):
            out.append(jnp.where(was, ps, pa).astype(jnp.result_type(g)))
            mu.append(jnp.where(was, tree.up(m0), m).astype(jnp.result_type(m0)))
            nu.append(jnp.where(was, tree.up(a0), a).astype(jnp.result_type(a0)))
            mom.append(jnp.where(was, v, tree.up(v0)).astype(jnp.result_type(v0)))
        new_state = ScaleBySwatsState(
            count=count,
            mu=treedef.unflatten(mu),
            nu=treedef.unflatten(nu),
            momentum=treedef.unflatten(mom),
            lam=jnp.where(was, state.lam, lam),
            sgd_lr=jnp.where(was, state.sgd_lr, jnp.where(settle, lam_hat, state.sgd_lr)),
            switched=was | settle,
        )
        return treedef.unflatten(out), new_state
