"""Sharpness-Aware Minimization (SAM) and the gradient normalisation it ascends with.

SAM (Foret, Kleiner, Mobahi & Neyshabur 2021, "Sharpness-Aware Minimization for Efficiently Improving
Generalization", arXiv 2010.01412, Algorithm 1) minimises ``max_{||e|| <= rho} L(w + e)`` with one ascent step
and one descent step per update of the weights::

    e_hat = rho g(w) / ||g(w)||          (the first-order solution of the inner maximisation)
    w    <- w - lr g(w + e_hat)          (the outer step, any optimizer)

``sam(optimizer, adv_optimizer, sync_period)`` generalises the ascent to ``sync_period - 1`` steps of any
*adversarial* optimizer whose update is negated (``adv_optimizer = chain(normalize(), sgd(rho))`` gives the
paper's ``+rho g / ||g||``), followed by one step of the outer ``optimizer`` taken from the weights ``w`` saved
at the start of the period (``cache``) with the last adversarial gradient. In the default transparent mode each
call of ``update`` is one of these steps: calls ``1 .. sync_period - 1`` return the ascent updates and the
last call returns ``cache - params + u_outer``, which lands the parameters on ``w + u_outer``. With
``opaque_mode=True`` one call runs the whole period internally, calling ``grad_fn(params, i)`` for the
adversarial gradients. Names, arguments and state fields are those of ``optax.contrib.sam``.

Deviations from Optax: the phase selections are ``where`` selections, not ``cond * a + (1 - cond) * b``, so a
non-finite value in the branch that is not taken does not leak into the result; and the outer step starts from
the weights saved on the *current* period's first step, which for ``sync_period=1`` (first and last step at
once) are the current parameters (Optax uses the previous call's parameters there, so with ``sync_period=1``
every update undoes the one before it instead of being a plain step of ``optimizer``). For
``sync_period >= 2`` the two agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import (
    EmptyState,
    GradientTransformation,
    OptState,
    Params,
    StatelessTransformation,
    TransformationLike,
    Updates,
    apply_updates,
    require_params,
    safe_int32_increment,
    zero_count,
)
from gradtx.contrib._common import safe_sqrt, sq_norm
from gradtx.fields import InvalidType, flag, integer, option, pytree_class
from gradtx.tree.precision import widest_real_dtype
from gradtx.wrappers import with_extra_args_support

__all__ = ["NormalizeState", "SAMState", "normalize", "sam"]

NormalizeState = EmptyState
"""``normalize`` keeps no state (Optax's name for its ``EmptyState``)."""


@pytree_class
class normalize(StatelessTransformation):
    """Divide the updates by their global l2 norm: ``u = g / ||g||`` (SAM's ascent direction).

    A zero gradient gives a zero update (Optax returns ``0 / 0 = NaN``; the issue asks for a finite update);
    a NaN or an infinity in ``g`` still propagates. Each leaf's sum of squares is computed in its compute dtype
    (float32 or wider) and the sums are added in the widest real dtype of the updates. Stateless
    (:data:`NormalizeState`, an ``EmptyState``); takes no options.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.normalize()
      >>> updates, state = tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)))
      >>> print(updates)
      [0.6 0.8]
    """

    def update(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, OptState]:
        del params, extra
        norm = safe_sqrt(sq_norm(updates, widest_real_dtype(updates)))
        inv = jnp.where(norm == 0, jnp.zeros_like(norm), 1 / jnp.where(norm == 0, jnp.ones_like(norm), norm))

        def one(g: Any) -> Any:
            x = tree.Leaf(g)
            return x.out(x.cast(g) * x.cast(inv))

        return jax.tree.map(one, updates), state


class SAMState(NamedTuple):
    """The state of :class:`sam` (Optax's field names).

    Attributes:
      steps_since_sync: the adversarial steps since the last outer step, an int32 scalar in
        ``[0, sync_period)``.
      opt_state: the outer optimizer's state.
      adv_state: the adversarial optimizer's state.
      cache: the weights ``w`` saved at the start of the period, like the parameters (None in opaque mode).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.sam(gradtx.sgd(0.1), gradtx.chain(gradtx.contrib.normalize(), gradtx.sgd(0.05)))
      >>> state = tx.init(jnp.array([1.0, 2.0]))
      >>> print(state.steps_since_sync, state.cache)
      0 [1. 2.]
    """

    steps_since_sync: jax.Array
    opt_state: OptState
    adv_state: OptState
    cache: Params | None


def _select(cond: Any, a: Any, b: Any) -> Any:
    """``where(cond, a, b)`` leaf by leaf, in the dtype of ``b``."""
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y).astype(jnp.result_type(y)), a, b)


def _negate(updates: Updates) -> Updates:
    return jax.tree.map(lambda u: -u, updates)


@pytree_class
class sam(GradientTransformation):
    """Sharpness-Aware Minimization: adversarial ascent steps, then one step of ``optimizer`` from the saved weights.

    Foret, Kleiner, Mobahi & Neyshabur 2021, "Sharpness-Aware Minimization for Efficiently Improving
    Generalization", ICLR, arXiv 2010.01412, Algorithm 1; see the module docstring. A period of ``sync_period``
    calls: ``sync_period - 1`` adversarial steps (the *negated* updates of ``adv_optimizer``:
    ``adv_optimizer = chain(normalize(), sgd(rho))`` gives the paper's ``e_hat = +rho g / ||g||``), then one step
    of ``optimizer`` taken from the weights ``w`` saved at the start of the period, with the last adversarial
    gradient::

        e_hat = rho g(w) / ||g(w)||,      w <- w + optimizer(g(w + e_hat))

    In the default transparent mode each ``update`` is one of these steps (the last returns ``cache - params +
    u_outer``, which lands the parameters on ``w + u_outer``); updates must be applied unchanged
    (``apply_updates``). ``opaque_mode=True`` runs a whole period per call and needs ``grad_fn(params, i)`` as an
    extra argument of ``update``. ``update`` needs ``params``. State: :class:`SAMState`.

    Args:
      optimizer: the outer optimizer (a gradtx or Optax transformation).
      adv_optimizer: the adversarial optimizer, whose updates are negated (ascent).
      sync_period: the calls per period, an int ``>= 1`` (static). Default 2 (one ascent step, as the paper).
      reset_state: re-initialise the adversarial optimizer after each outer step. Default True.
      opaque_mode: run a whole period per call, with ``grad_fn``. Default False.
      batch_axis_name: in opaque mode, the name of a mapped axis the adversarial gradients are ``pmean``-ed over,
        or None. Default None.

    Raises:
      ValueError: ``sync_period`` below 1; at ``update``, no ``params``, or no ``grad_fn`` in opaque mode
        (``sam.update: grad_fn(params, i) must be given as an extra argument when opaque_mode=True``).
      TypeError: a transformation argument that is not one (``with_extra_args_support: expected a transformation
        with init and update, got 3``), or ``sam(sync_period=2.0): sync_period must be a whole number >= 1 of type
        int``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> adv = gradtx.chain(gradtx.contrib.normalize(), gradtx.sgd(0.05))  # rho = 0.05
      >>> tx = gradtx.contrib.sam(gradtx.sgd(0.1), adv)
      >>> params = jnp.zeros(2)
      >>> updates, state = tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)
      >>> print(updates)  # the ascent step +rho g / ||g||; the next call makes the outer step
      [0.03 0.04]
    """

    optimizer: TransformationLike = option(accepts="a transformation")
    adv_optimizer: TransformationLike = option(accepts="a transformation")
    sync_period: int = integer(default=2, lo=1, static=True)
    reset_state: bool = flag(default=True)
    opaque_mode: bool = flag(default=False)
    batch_axis_name: str | None = option(default=None, accepts="None or the name of a mapped axis", static=True,
                                         optional=True)

    def __check_init__(self) -> None:
        object.__setattr__(self, "optimizer", with_extra_args_support(self.optimizer))
        object.__setattr__(self, "adv_optimizer", with_extra_args_support(self.adv_optimizer))
        if not isinstance(self.sync_period, (int, np.integer)):  # a count of Python loop steps, not 2.0
            self._fail("sync_period", self.sync_period, "must be a whole number >= 1 of type int", InvalidType)

    def init(self, params: Params) -> SAMState:
        return SAMState(
            steps_since_sync=zero_count(),
            opt_state=self.optimizer.init(params),
            adv_state=self.adv_optimizer.init(params),
            cache=None if self.opaque_mode else jax.tree.map(jnp.asarray, params),
        )

    def update(
        self, updates: Updates, state: SAMState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, SAMState]:
        require_params("sam.update", params)
        grad_fn = extra.pop("grad_fn", None)
        if self.opaque_mode:
            return self._opaque(updates, state, params, grad_fn, extra)
        return self._transparent(updates, state, params, extra)

    def _transparent(
        self, updates: Updates, state: SAMState, params: Params, extra: dict[str, Any]
    ) -> tuple[Updates, SAMState]:
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == self.sync_period - 1
        adv_u, adv_state = self.adv_optimizer.update(updates, state.adv_state, params, **extra)
        adv_u = _negate(adv_u)
        cache = _select(first, params, state.cache)  # the weights w of this period (saved on its first step)
        opt_u, opt_state = self.optimizer.update(updates, state.opt_state, cache, **extra)

        def outer(c: Any, p: Any, u: Any) -> Any:  # cache - params + u: lands params on cache + u
            x = tree.Leaf(u)
            return x.out(x.cast(c) - x.cast(p) + x.cast(u))

        opt_u = jax.tree.map(outer, cache, params, opt_u)
        new_updates = _select(last, opt_u, adv_u)
        if self.reset_state:
            adv_state = _select(last, self.adv_optimizer.init(params), adv_state)
        else:
            adv_state = _select(last, state.adv_state, adv_state)
        opt_state = _select(last, opt_state, state.opt_state)
        steps = safe_int32_increment(state.steps_since_sync) % self.sync_period
        return new_updates, SAMState(steps_since_sync=steps, opt_state=opt_state, adv_state=adv_state, cache=cache)

    def _opaque(
        self,
        updates: Updates,
        state: SAMState,
        params: Params,
        grad_fn: Callable[[Params, int], Updates] | None,
        extra: dict[str, Any],
    ) -> tuple[Updates, SAMState]:
        if grad_fn is None:
            raise ValueError("sam.update: grad_fn(params, i) must be given as an extra argument when opaque_mode=True")
        adv_params, adv_grads, adv_state = params, updates, state.adv_state
        for i in range(self.sync_period - 1):
            adv_u, adv_state = self.adv_optimizer.update(adv_grads, adv_state, adv_params, **extra)
            adv_params = apply_updates(adv_params, _negate(adv_u))
            adv_grads = grad_fn(adv_params, i)
            if self.batch_axis_name is not None:
                adv_grads = jax.lax.pmean(  # type: ignore[no-untyped-call]  # jax.lax.pmean is unannotated
                    adv_grads, axis_name=self.batch_axis_name
                )
        if self.reset_state:
            adv_state = self.adv_optimizer.init(params)
        out, opt_state = self.optimizer.update(adv_grads, state.opt_state, params, **extra)
        return out, SAMState(steps_since_sync=zero_count(), opt_state=opt_state, adv_state=adv_state, cache=None)
