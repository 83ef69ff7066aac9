"""Differentially private SGD (Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar & Zhang 2016, "Deep Learning with
Differential Privacy", arXiv 1607.00133, Algorithm 1).

``differentially_private_aggregate`` takes *per-example* gradients (every leaf has a leading batch axis of size
``B``, e.g. from ``jax.vmap(jax.grad(loss))``) and returns their private mean::

    n_i   = ||(g_leaf[i])_leaves||                         (global l2 norm of example i over all leaves)
    g~_i  = g_i / max(1, n_i / C)                          (clip each example to norm C = l2_norm_clip)
    u     = (sum_i g~_i + sigma C N(0, I)) / B              (sigma = noise_multiplier)

``dpsgd`` chains it with optional (Nesterov) momentum and the learning rate. It must come first in a chain
(its output has no batch axis); accumulation wrappers (``MultiSteps``, ``apply_every``) do not compose with it.

Randomness: ``key`` is an int seed (``jax.random.key(seed)``), a typed key or a legacy raw key; without one,
gradtx does what Optax 0.2.8 does (a ``UserWarning``, then key 0), as ``add_noise`` does; ``seed`` is Optax's
older name for an int key. Each update splits the state key into the next key and one key per leaf, in tree
order, and draws the noise in each leaf's compute dtype (float32 or wider), so for float32 and float64 leaves
the noise is Optax's. Names, arguments and the state field are those of ``optax.contrib``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import GradientTransformation, Params, Scalar, ScalarOrSchedule, Updates, identity
from gradtx.combine import chain
from gradtx.fields import Check, non_negative, option, positive, pytree_class, recipe
from gradtx.transforms import per_example_global_norm_clip, scale_by_learning_rate, trace
from gradtx.transforms.noise import as_key, check_key_or_seed

__all__ = ["DifferentiallyPrivateAggregateState", "differentially_private_aggregate", "dpsgd"]


class DifferentiallyPrivateAggregateState(NamedTuple):
    """The state of :class:`differentially_private_aggregate` (Optax's field name).

    Attributes:
      rng_key: the PRNG key the next noise is drawn from (a typed ``jax.random`` key).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.differentially_private_aggregate(1.0, 1.0, key=0).init(jnp.zeros(2))
      >>> print(state._fields)
      ('rng_key',)
    """

    rng_key: jax.Array


@pytree_class
class differentially_private_aggregate(GradientTransformation):
    """Clip per-example gradients, sum them, add Gaussian noise and average: DP-SGD's private mean.

    Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar & Zhang 2016, "Deep Learning with Differential Privacy",
    CCS, arXiv 1607.00133, Algorithm 1 (see the module docstring). With ``B`` examples, ``C = l2_norm_clip``,
    ``sigma = noise_multiplier`` and ``n_i`` the global norm of example ``i``'s gradient over all leaves::

        u = (sum_i g_i / max(1, n_i / C) + sigma C N(0, I)) / B

    The updates received have a leading batch axis (per-example gradients, e.g. from
    ``jax.vmap(jax.grad(loss))``); the updates returned do not. It must come first in a chain. Each update splits
    the state key into the next key and one key per leaf, in tree order. State:
    :class:`DifferentiallyPrivateAggregateState`.

    Args:
      l2_norm_clip: the norm ``C`` each example's gradient is clipped to, ``> 0``.
      noise_multiplier: the noise's standard deviation in units of ``C``, ``>= 0``.
      key: an int seed or a ``jax.random`` key (static), or None: key 0 with a ``UserWarning``, as Optax.
        Default None.
      seed: Optax's older name for an int ``key`` (keyword-only; not with ``key``). Default None.

    Raises:
      ValueError: an option out of range or not a key, e.g. ``differentially_private_aggregate(l2_norm_clip=0.0):
        l2_norm_clip must be > 0`` or ``differentially_private_aggregate(seed=1): seed must not be given with key
        (seed is the old name of an int key)``.
      TypeError: an option of the wrong type, e.g. a string ``noise_multiplier``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.differentially_private_aggregate(l2_norm_clip=1.0, noise_multiplier=0.0, key=0)
      >>> state = tx.init(jnp.zeros(2))
      >>> per_example = jnp.array([[3.0, 4.0], [0.3, 0.4]])  # two examples; the first is clipped to norm 1
      >>> updates, state = tx.update(per_example, state)
      >>> print(updates)  # ([0.6, 0.8] + [0.3, 0.4]) / 2
      [0.45 0.6 ]
    """

    params_like_updates = False  # the updates are per-example gradients: a leading batch axis the params lack

    l2_norm_clip: Scalar = positive()
    noise_multiplier: Scalar = non_negative()
    key: int | jax.Array | None = option(
        default=None, accepts="an int seed or a jax.random key", optional=True, static=True
    )
    seed: int | None = option(default=None, accepts="an int seed (the older name of key)", optional=True, static=True,
                       kw_only=True)

    def __check_init__(self) -> None:
        check_key_or_seed(self)

    def init(self, params: Params) -> DifferentiallyPrivateAggregateState:
        del params
        return DifferentiallyPrivateAggregateState(rng_key=as_key(self.key if self.key is not None else self.seed))

    def update(
        self, updates: Updates, state: DifferentiallyPrivateAggregateState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, DifferentiallyPrivateAggregateState]:
        del params, extra
        leaves, treedef = jax.tree.flatten(updates)
        if not leaves:
            return updates, state
        batch = jnp.shape(leaves[0])[0]
        clipped, _ = per_example_global_norm_clip(leaves, self.l2_norm_clip)
        new_key, *keys = jax.random.split(state.rng_key, len(leaves) + 1)

        def one(s: Any, k: Any) -> Any:  # (sum of the clipped examples + sigma C N(0, I)) / B
            x = tree.Leaf(s)
            std = x.hyper(self.l2_norm_clip) * x.hyper(self.noise_multiplier)
            noise = jax.random.normal(k, jnp.shape(s), x.compute_dtype)
            return x.out((x.cast(s) + x.cast(std) * noise) / batch)

        out = [one(s, k) for s, k in zip(clipped, keys)]
        return jax.tree.unflatten(treedef, out), DifferentiallyPrivateAggregateState(rng_key=new_key)


@recipe
def dpsgd(
    learning_rate: ScalarOrSchedule,
    l2_norm_clip: Scalar,
    noise_multiplier: Scalar,
    seed: int | jax.Array,
    momentum: Scalar | None = None,
    nesterov: bool = False,
) -> chain:
    """DP-SGD (Abadi et al. 2016): the private mean of clipped per-example gradients, optional momentum, a step.

    ``differentially_private_aggregate -> [trace(momentum, nesterov)] -> scale_by_learning_rate``::

        u = -lr (sum_i clip(g_i, C) + sigma C N(0, I)) / B          (with momentum: -lr times its trace)

    Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar & Zhang 2016, "Deep Learning with Differential Privacy",
    CCS, arXiv 1607.00133, Algorithm 1. Takes per-example gradients (a leading batch axis on every leaf). Name
    and signature of ``optax.contrib.dpsgd``.

    Args:
      learning_rate: the step size, a number or a schedule of the 0-based step count.
      l2_norm_clip: the norm ``C`` each example's gradient is clipped to, ``> 0``.
      noise_multiplier: the noise's standard deviation in units of ``l2_norm_clip``, ``>= 0``.
      seed: an int seed or a ``jax.random`` key.
      momentum: the decay of a momentum trace in ``[0, 1)``, or None (no momentum). Default None.
      nesterov: Nesterov momentum (with ``momentum``). Default False.

    Returns:
      A ``chain`` of the blocks (``identity`` in the middle without momentum); its state is
      ``(DifferentiallyPrivateAggregateState, TraceState or EmptyState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``dpsgd(l2_norm_clip=0.0): l2_norm_clip must be > 0``.
      TypeError: an option of the wrong type, e.g. ``dpsgd(nesterov=3): nesterov must be True or False, not
        int``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.dpsgd(learning_rate=0.1, l2_norm_clip=1.0, noise_multiplier=0.0, seed=0)
      >>> state = opt.init(jnp.zeros(2))
      >>> updates, state = opt.update(jnp.array([[3.0, 4.0], [0.3, 0.4]]), state)
      >>> print(updates)
      [-0.045 -0.06 ]
    """
    Check("flag")("dpsgd", "nesterov", nesterov)  # used only with momentum: checked here in any case
    return chain(
        differentially_private_aggregate(l2_norm_clip, noise_multiplier, seed),
        trace(momentum, nesterov) if momentum is not None else identity(),
        scale_by_learning_rate(learning_rate),
    )
