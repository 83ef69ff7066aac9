"""Cautious optimizers (Liang et al. 2024): keep only the coordinates of an update that agree with the gradient."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import GradientTransformation, Params, Updates
from gradtx.combine import chain
from gradtx.fields import flag, option, pytree_class, recipe
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_family import scale_by_adam
from gradtx.wrappers import with_extra_args_support

__all__ = ["cautious", "cautious_adamw"]


@pytree_class
class cautious(GradientTransformation):
    """Cautious optimizers (Liang, Chen, Liu & Liu 2024, "Cautious Optimizers: Improving Training with One Line
    of Code", arXiv 2411.16085, Algorithm 1): keep only the coordinates of the update that move against the
    gradient, and rescale so the update keeps its size on average.

    ``u = tx(g)`` is an update to *add* to the parameters (a full optimizer such as ``adamw(...)``); per leaf::

        phi = 1[u * g < 0]           (the paper's u_t o g_t > 0 with its u_t = -our u: a descent coordinate)
        u'  = u * phi * n / (sum(phi) + 1)       (normalize=True; n = the leaf's size)

    The rescaling is that of the authors' code (``kyleliang919/C-Optim``: ``numel / (sum + 1)`` per tensor); the
    paper's Algorithm 1 writes ``1 / (mean(phi) + eps)``, the same with ``eps = 1 / n``. ``normalize=False``
    keeps the mask alone. The state is ``tx``'s state, unchanged. Real parameters only.

    ``descent=False`` wraps a block whose output a later ``scale_by_learning_rate`` negates (``scale_by_adam()``
    and the other ``scale_by_*`` directions): the mask is then ``1[u * g > 0]``. With the default
    ``descent=True`` such a block points uphill everywhere and every coordinate would be masked.

    Weight decay: everything ``tx`` outputs is masked, so ``cautious(adamw(lr, weight_decay=wd))`` masks and
    rescales the decay term too. The authors' C-AdamW decays every coordinate and masks only the Adam step:
    that is :func:`cautious_adamw`.
    """

    inner: Any = option(accepts="a transformation")
    normalize: bool = flag(default=True, kw_only=True)
    descent: bool = flag(default=True, kw_only=True)

    def __check_init__(self) -> None:
        object.__setattr__(self, "inner", with_extra_args_support(self.inner))

    def init(self, params: Params) -> Any:
        return self.inner.init(params)

    def update(self, updates: Updates, state: Any, params: Params | None = None, **extra: Any):
        out, state = self.inner.update(updates, state, params, **extra)

        def one(u: Any, g: Any) -> jax.Array:
            x = tree.Leaf(u)
            agree = x.cast(u) * x.cast(g)
            keep = x.cast((agree < 0) if self.descent else (agree > 0))
            if self.normalize:
                keep = keep * (x.cast(jnp.size(keep)) / (jnp.sum(keep) + 1))
            return x.out(x.cast(u) * keep)

        return jax.tree.map(one, out, updates), state


@recipe
def cautious_adamw(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-4,
    mask: Any = None,
    normalize: bool = True,
) -> chain:
    """C-AdamW (Liang et al. 2024, arXiv 2411.16085, Algorithm 2; ``kyleliang919/C-Optim``): AdamW whose Adam step
    is masked to the coordinates where it agrees in sign with the gradient (:class:`cautious`), while the decoupled
    weight decay ``-lr wd theta`` reaches every coordinate::

        u = -lr (cautious(m_hat / (sqrt(v_hat) + eps)) + wd theta)

    Defaults as :func:`gradtx.adamw`'s."""
    return chain(
        cautious(scale_by_adam(b1, b2, eps), normalize=normalize, descent=False),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
