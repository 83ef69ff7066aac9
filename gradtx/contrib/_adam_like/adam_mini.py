"""Adam-mini (Zhang et al. 2024): Adam with one second-moment value per parameter block."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import Updates
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import non_negative, option, probability, pytree_class, recipe, state_dtype
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_base import AdamLike, Moment, Step

__all__ = ["ScaleByAdamMiniState", "adam_mini", "scale_by_adam_mini"]


class ScaleByAdamMiniState(NamedTuple):
    """The step count, the first moment ``mu`` (like the parameters) and one second moment per block ``nu``
    (each leaf's shape with the averaged axes kept as size 1)."""

    count: jax.Array
    mu: Updates
    nu: Updates


def _block_axes(blocks: Any, p: Any) -> tuple[int, ...]:
    """The axes of the leaf ``p`` that one block spans (averaged over)."""
    ndim = len(jnp.shape(p))
    if callable(blocks):
        chosen: Any = blocks(p)
        return tuple(int(a) % max(ndim, 1) for a in chosen)
    if blocks == "leaf" or ndim < 2:
        return tuple(range(ndim))
    return tuple(range(1, ndim))  # "row": one value per index of the first axis


def _block_zeros(block: Any, p: Any, dtype: Any) -> jax.Array:
    """Zeros of the leaf ``p``'s shape with its block axes of size 1 (one second moment per block)."""
    shape = list(jnp.shape(p))
    for a in _block_axes(block.blocks, p):
        shape[a] = 1
    return jnp.zeros(tuple(shape), dtype or jnp.result_type(p))


@pytree_class
class scale_by_adam_mini(AdamLike):
    """Adam-mini (Zhang, Chen, Li et al. 2024, "Adam-mini: Use Fewer Learning Rates To Gain More", arXiv
    2406.16793, Algorithm 1): Adam with one second-moment value per parameter block.

    For a block ``B`` of a leaf: ``v_B = b2 v_B + (1 - b2) mean_{i in B} g_i^2``; ``m`` is Adam's; ``u = (m_k /
    (1 - b1^k)) / (sqrt(v_B / (1 - b2^k)) + eps)``. Blocks (``blocks``, static):

    - ``"row"`` (default): a matrix (rank >= 2) has one block per index of its first axis (a row of a
      ``(out, in)`` weight, an output neuron; the paper's partition for most layers), other leaves one block;
    - ``"leaf"``: one block per leaf;
    - a callable ``leaf -> axes``: the axes averaged over (the block is everything sharing the other indices,
      e.g. ``lambda p: (0, 2)`` for one block per head of a ``(d, heads, head_dim)`` query/key weight, the
      paper's partition for attention).

    Layouts: "row" is one block per output neuron for PyTorch's ``(out, in)`` weights. Flax and Haiku kernels
    are ``(in, out)``: there ``lambda p: tuple(range(p.ndim - 1))`` (everything but the last axis) gives one block
    per output neuron, while "row" gives one per input neuron. The authors' code gives biases plain Adam; here a
    vector is one block unless ``blocks`` says otherwise.
    """

    b1: Any = probability(default=0.9)
    b2: Any = probability(default=0.999)
    eps: Any = non_negative(default=1e-8)
    blocks: Any = option(default="row", accepts="'row', 'leaf' or a callable leaf -> axes", static=True)
    mu_dtype: Any = state_dtype(default=None, real_only=True)
    nu_dtype: Any = state_dtype(default=None, real_only=True)

    State = ScaleByAdamMiniState
    moments = (Moment("mu", "mu_dtype"), Moment("nu", "nu_dtype", start=_block_zeros))

    def __check_init__(self) -> None:
        if not callable(self.blocks):
            self._check_choice("blocks", ("row", "leaf"))

    def direction(self, x: tree.Leaf, step: Step, g: Any, mu: Any, nu: Any) -> tuple[Any, ...]:
        gc = x.cast(g)
        m = x.ema(self.b1, mu, gc)
        axes = _block_axes(self.blocks, g)
        mean_sq = jnp.mean(gc * gc, axis=axes, keepdims=True) if gc.size else jnp.zeros(nu.shape, x.compute_dtype)
        v = x.ema(self.b2, nu, mean_sq)
        return (m / x.debias(self.b1, step.k)) / (safe_sqrt(v / x.debias(self.b2, step.k)) + x.hyper(self.eps)), m, v


@recipe
def adam_mini(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    mask: Any = None,
    *,
    blocks: Any = "row",
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> chain:
    """Adam-mini (Zhang et al. 2024, arXiv 2406.16793; see :class:`scale_by_adam_mini`), decoupled weight decay
    as AdamW."""
    return chain(
        scale_by_adam_mini(b1, b2, eps, blocks, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
