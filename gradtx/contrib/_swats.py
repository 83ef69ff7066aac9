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
    Scalar,
    ScalarOrSchedule,
    Updates,
    check_tree_match,
    safe_int32_increment,
    zero_count,
)
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import non_negative, probability, pytree_class, scalar_or_schedule
from gradtx.tree.precision import debias, ema, widest_real_dtype

__all__ = ["ScaleBySwatsState", "swats"]


class ScaleBySwatsState(NamedTuple):
    """The state of :class:`swats`.

    Attributes:
      count: the number of steps taken, an int32 scalar.
      mu: Adam's first moment, like the parameters (frozen once switched).
      nu: Adam's second moment, like the parameters (frozen once switched).
      momentum: SGD's momentum buffer ``v``, like the parameters (zero until the switch).
      lam: the running estimate ``lambda`` of the SGD rate, a scalar (float32 or wider).
      sgd_lr: the SGD rate in use once switched (0 before), a scalar.
      switched: whether the switch to SGD has happened, a bool scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.swats().init(jnp.zeros(2))
      >>> print(bool(state.switched), state.sgd_lr)
      False 0.0
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    mu: Updates
    nu: Updates
    momentum: Updates
    lam: jax.Array
    sgd_lr: jax.Array
    switched: jax.Array


@pytree_class
class swats(GradientTransformation):
    """SWATS: Adam, then SGD with momentum at the rate estimated from Adam's steps.

    Keskar & Socher 2017, "Improving Generalization Performance by Switching from Adam to SGD", arXiv
    1712.07628, Algorithm 1 (equations in the module docstring). With ``p_k`` Adam's step and ``g_k`` the
    gradient (dot products over the whole tree)::

        gamma_k  = (p_k . p_k) / (-p_k . g_k),     lambda_k = b2 lambda_{k-1} + (1 - b2) gamma_k
        switch when k > 1, |lambda_k / (1 - b2^k) - gamma_k| < switch_tol and lambda_k > 0
        after:   v_k = b1 v_{k-1} + g_k,   u = -(1 - b1) sgd_lr v_k,   sgd_lr = lambda_k / (1 - b2^k)

    Returns the whole update (the learning rate is inside, as the switch needs Adam's actual step). The switch
    also needs a positive rate (a deviation from Algorithm 1, see the module docstring). In float32 the paper's
    ``switch_tol = 1e-9`` rarely triggers: pass a larger one. State: :class:`ScaleBySwatsState`.

    Args:
      learning_rate: Adam's learning rate ``>= 0``, a number or a schedule of the 0-based count (Adam phase
        only). Default 1e-3.
      b1: the decay of Adam's first moment and SGD's momentum, in ``[0, 1)``. Default 0.9.
      b2: the decay of Adam's second moment and of the rate estimate, in ``[0, 1)``. Default 0.999.
      eps: added to Adam's denominator, ``>= 0``. Default 1e-9.
      switch_tol: the tolerance of the switch test, ``>= 0``. Default 1e-9.

    Raises:
      ValueError: an option out of range, e.g. ``swats(b1=1.0): b1 must be in [0, 1)`` or
        ``swats(learning_rate=-1.0): learning_rate must be >= 0``.
      TypeError: an option of the wrong type; at ``update``, updates whose tree does not match the state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.swats(learning_rate=0.1)
      >>> updates, state = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
      >>> print(updates, bool(state.switched))  # Adam's first step: -lr sign(g)
      [-0.1 -0.1] False
    """

    learning_rate: ScalarOrSchedule = scalar_or_schedule(default=1e-3, lo=0.0)
    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.999)
    eps: Scalar = non_negative(default=1e-9)
    switch_tol: Scalar = non_negative(default=1e-9)

    def init(self, params: Params) -> ScaleBySwatsState:
        dt = widest_real_dtype(params)
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

    def update(
        self, updates: Updates, state: ScaleBySwatsState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ScaleBySwatsState]:
        del params, extra
        check_tree_match("swats.update", state.mu, updates)
        dt = jnp.result_type(state.lam)
        count = safe_int32_increment(state.count)
        lr = self.learning_rate(state.count) if callable(self.learning_rate) else self.learning_rate
        # Exact decay complements and the one bias correction (gradtx.tree.ema / debias).
        debias2 = debias(self.b2, count, dt)
        step = jnp.asarray(lr, dt) * jnp.sqrt(debias2) / debias(self.b1, count, dt)

        def adam(g: Any, m: Any, a: Any) -> tuple[Any, Any, Any]:  # Adam's step p (lr included) and moments
            x = tree.Leaf(g)
            g = x.cast(g)
            m, a = x.ema(self.b1, m, g), x.ema(self.b2, a, g * g)
            return -x.cast(step) * m / (safe_sqrt(a) + x.cast(self.eps)), m, a

        p, m_adam, a_adam = tree.map_split(adam, 3, updates, state.mu, state.nu)
        leaves_p, leaves_g = jax.tree.leaves(p), jax.tree.leaves(updates)
        pg = sum((jnp.sum(pi.astype(dt) * tree.up(g).astype(dt)) for pi, g in zip(leaves_p, leaves_g)),
                 jnp.zeros((), dt))
        pp = sum((jnp.sum(jnp.square(pi.astype(dt))) for pi in leaves_p), jnp.zeros((), dt))
        moves = pg != 0
        gamma = jnp.where(moves, pp / jnp.where(moves, -pg, 1), 0)
        lam = jnp.where(moves, ema(self.b2, state.lam, gamma.astype(dt)), state.lam)
        lam_hat = lam / debias2
        settle = moves & (count > 1) & (jnp.abs(lam_hat - gamma) < jnp.asarray(self.switch_tol, dt)) & (lam > 0)
        was = state.switched

        def phase(g: Any, pa: Any, m: Any, a: Any, m0: Any, a0: Any, v0: Any) -> tuple[Any, Any, Any, Any]:
            """SGD's step and momentum once switched (Adam's moments frozen), else Adam's (momentum frozen)."""
            x = tree.Leaf(g)
            v = x.hyper(self.b1) * x.cast(v0) + x.cast(g)
            ps = -(x.complement(self.b1) * x.cast(state.sgd_lr)) * v
            return (x.out(jnp.where(was, ps, pa)), jnp.where(was, m0, x.store(m, m0)),
                    jnp.where(was, a0, x.store(a, a0)), jnp.where(was, x.store(v, v0), v0))

        out, mu, nu, momentum = tree.map_split(phase, 4, updates, p, m_adam, a_adam, state.mu, state.nu,
                                               state.momentum)
        new_state = ScaleBySwatsState(
            count=count,
            mu=mu,
            nu=nu,
            momentum=momentum,
            lam=jnp.where(was, state.lam, lam),
            sgd_lr=jnp.where(was, state.sgd_lr, jnp.where(settle, lam_hat, state.sgd_lr)),
            switched=was | settle,
        )
        return out, new_state
