"""Adam-mini (Zhang et al. 2024): Adam with one second-moment value per parameter block."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from gradtx import tree
from gradtx.base import MaskOrFn, Scalar, ScalarOrSchedule, Updates
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt
from gradtx.fields import non_negative, option, probability, pytree_class, recipe, state_dtype
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_base import AdamLike, Moment, Step

__all__ = ["ScaleByAdamMiniState", "adam_mini", "scale_by_adam_mini"]


class ScaleByAdamMiniState(NamedTuple):
    """The state of :class:`scale_by_adam_mini`.

    Attributes:
      count: the number of steps taken, an int32 scalar.
      mu: the first moment, like the parameters.
      nu: one second moment per block: each leaf's shape with the averaged axes kept as size 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> state = gradtx.contrib.scale_by_adam_mini().init(jnp.zeros((3, 4)))
      >>> print(state.mu.shape, state.nu.shape)  # one second moment per row
      (3, 4) (3, 1)
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
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
class scale_by_adam_mini(AdamLike[ScaleByAdamMiniState]):
    """Adam-mini's direction: Adam with one second-moment value per parameter block.

    Zhang, Chen, Li et al. 2024, "Adam-mini: Use Fewer Learning Rates To Gain More", arXiv 2406.16793,
    Algorithm 1. For a block ``B`` of a leaf (``k`` the 1-based step)::

        m_k = b1 m_{k-1} + (1 - b1) g,     v_B = b2 v_B + (1 - b2) mean_{i in B} g_i^2
        u   = (m_k / (1 - b1^k)) / (sqrt(v_B / (1 - b2^k)) + eps)

    Blocks (``blocks``, static):

    - ``"row"`` (default): a matrix (rank >= 2) has one block per index of its first axis (a row of a
      ``(out, in)`` weight, an output neuron; the paper's partition for most layers), other leaves one block;
    - ``"leaf"``: one block per leaf;
    - a callable ``leaf -> axes``: the axes averaged over (the block is everything sharing the other indices,
      e.g. ``lambda p: (0, 2)`` for one block per head of a ``(d, heads, head_dim)`` query/key weight, the
      paper's partition for attention).

    Layouts: "row" is one block per output neuron for PyTorch's ``(out, in)`` weights. Flax and Haiku kernels
    are ``(in, out)``: there ``lambda p: tuple(range(p.ndim - 1))`` (everything but the last axis) gives one block
    per output neuron, while "row" gives one per input neuron. The authors' code gives biases plain Adam; here a
    vector is one block unless ``blocks`` says otherwise. The output points uphill: follow it with
    ``scale_by_learning_rate`` (:func:`adam_mini`). State: :class:`ScaleByAdamMiniState`.

    Args:
      b1: the decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: the decay of the per-block second moment, in ``[0, 1)``. Default 0.999.
      eps: added to the root of the second moment, ``>= 0``. Default 1e-8.
      blocks: ``"row"``, ``"leaf"`` or a callable ``leaf -> axes`` (static). Default ``"row"``.
      mu_dtype: the dtype ``m`` is stored in, a real floating dtype or None (the parameter dtype); keyword-only.
        Default None.
      nu_dtype: the dtype ``v`` is stored in, a real floating dtype or None (the parameter dtype); keyword-only.
        Default None.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_adam_mini(blocks='col'): blocks must be one of 'row',
        'leaf'`` or ``scale_by_adam_mini(b1=1.2): b1 must be in [0, 1)``.
      TypeError: an option of the wrong type, e.g. a string ``b1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.contrib.scale_by_adam_mini()
      >>> state = tx.init(jnp.zeros((2, 2)))
      >>> updates, state = tx.update(jnp.array([[1.0, -1.0], [3.0, 3.0]]), state)
      >>> print(updates)  # g / sqrt(mean of g^2 over its row)
      [[ 1. -1.]
       [ 1.  1.]]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "its second moment is one value per block of each leaf"

    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.999)
    eps: Scalar = non_negative(default=1e-8)
    blocks: str | Callable[[jax.Array], Sequence[int]] = option(
        default="row", accepts="'row', 'leaf' or a callable leaf -> axes", static=True
    )
    mu_dtype: DTypeLike | None = state_dtype(default=None, real_only=True)
    nu_dtype: DTypeLike | None = state_dtype(default=None, real_only=True)

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
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-8,
    weight_decay: Scalar = 0.0,
    mask: MaskOrFn = None,
    *,
    blocks: str | Callable[[jax.Array], Sequence[int]] = "row",
    mu_dtype: DTypeLike | None = None,
    nu_dtype: DTypeLike | None = None,
) -> chain:
    """Adam-mini (Zhang et al. 2024): AdamW with one second-moment value per parameter block.

    ``scale_by_adam_mini -> add_decayed_weights -> scale_by_learning_rate``: ``u = -lr (d + weight_decay theta)``
    with ``d`` the direction of :class:`scale_by_adam_mini` (Adam's, with ``v`` averaged over each block).
    Zhang, Chen, Li et al. 2024, "Adam-mini: Use Fewer Learning Rates To Gain More", arXiv 2406.16793.

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count.
      b1: the decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: the decay of the per-block second moment, in ``[0, 1)``. Default 0.999.
      eps: added to the root of the second moment, ``>= 0``. Default 1e-8.
      weight_decay: the decoupled weight decay ``>= 0`` (multiplied by the learning rate). Default 0.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.
      blocks: ``"row"``, ``"leaf"`` or a callable ``leaf -> axes`` (see :class:`scale_by_adam_mini`);
        keyword-only. Default ``"row"``.
      mu_dtype: the dtype of the first moment, a real floating dtype or None (keyword-only). Default None.
      nu_dtype: the dtype of the second moment, a real floating dtype or None (keyword-only). Default None.

    Returns:
      A ``chain`` of the three blocks; its state is ``(ScaleByAdamMiniState, EmptyState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``adam_mini(blocks='col'): blocks must be one of 'row', 'leaf'``.
      TypeError: an option of the wrong type, e.g. ``adam_mini(learning_rate='a'): learning_rate must be a finite
        real number or a schedule count -> value, not str``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.adam_mini(learning_rate=0.1)
      >>> params = jnp.zeros((2, 2))
      >>> updates, state = opt.update(jnp.array([[1.0, -1.0], [3.0, 3.0]]), opt.init(params), params)
      >>> print(updates)
      [[-0.1  0.1]
       [-0.1 -0.1]]
    """
    return chain(
        scale_by_adam_mini(b1, b2, eps, blocks, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
