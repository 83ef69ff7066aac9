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
from gradtx.base import GradientTransformation, Params, Updates, identity
from gradtx.combine import chain
from gradtx.fields import Check, non_negative, option, positive, pytree_class, recipe
from gradtx.transforms import per_example_global_norm_clip, scale_by_learning_rate, trace
from gradtx.transforms.noise import as_key, check_key_or_seed

__all__ = ["DifferentiallyPrivateAggregateState", "differentially_private_aggregate", "dpsgd"]


class DifferentiallyPrivateAggregateState(NamedTuple):
    """The PRNG key the next noise is drawn from."""

    rng_key: jax.Array


@pytree_class
class differentially_private_aggregate(GradientTransformation):
    """Clip per-example gradients to global norm ``l2_norm_clip``, sum them, add Gaussian noise of standard
    deviation ``l2_norm_clip * noise_multiplier`` and divide by the batch size (Abadi et al. 2016, Algorithm 1;
    see the module docstring). The updates received have a leading batch axis; the updates returned do not.

    Args:
      l2_norm_clip: the norm ``C`` each example's gradient is clipped to, ``> 0``.
      noise_multiplier: the noise's standard deviation in units of ``C``, ``>= 0``.
      key: an int seed or a jax.random key (static); None: key 0 with a ``UserWarning``, as Optax.
      seed: Optax's older name for an int ``key`` (keyword-only).
    """

    params_like_updates = False  # the updates are per-example gradients: a leading batch axis the params lack

    l2_norm_clip: Any = positive()
    noise_multiplier: Any = non_negative()
    key: Any = option(default=None, accepts="an int seed or a jax.random key", optional=True, static=True)
    seed: Any = option(default=None, accepts="an int seed (the older name of key)", optional=True, static=True,
                       kw_only=True)

    def __check_init__(self) -> None:
        check_key_or_seed(self)

    def init(self, params: Params) -> DifferentiallyPrivateAggregateState:
        del params
        return DifferentiallyPrivateAggregateState(rng_key=as_key(self.key if self.key is not None else self.seed))

    def update(
        self, updates: Updates, state: DifferentiallyPrivateAggregateState, params: Params | None = None, **extra: Any
    ):
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
    learning_rate: Any,
    l2_norm_clip: Any,
    noise_multiplier: Any,
    seed: Any,
    momentum: Any = None,
    nesterov: bool = False,
) -> chain:
    """DP-SGD (Abadi et al. 2016): ``differentially_private_aggregate`` -> [``trace(momentum)``] ->
    ``scale_by_learning_rate``. Takes per-example gradients.

    Args:
      learning_rate: a number or a schedule.
      l2_norm_clip: the norm each example's gradient is clipped to, ``> 0``.
      noise_multiplier: the noise's standard deviation in units of ``l2_norm_clip``, ``>= 0``.
      seed: an int seed or a jax.random key.
      momentum: the decay of a momentum trace, or None (no momentum).
      nesterov: Nesterov momentum (with ``momentum``).
    """
    Check("flag")("dpsgd", "nesterov", nesterov)  # used only with momentum: checked here in any case
    return chain(
        differentially_private_aggregate(l2_norm_clip, noise_multiplier, seed),
        trace(momentum, nesterov) if momentum is not None else identity(),
        scale_by_learning_rate(learning_rate),
    )
