"""Cautious optimizers (Liang et al. 2024): keep only the coordinates of an update that agree with the gradient."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

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
)
from gradtx.combine import chain
from gradtx.fields import choice, flag, option, pytree_class, recipe
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.transforms.adam_family import scale_by_adam
from gradtx.wrappers import with_extra_args_support

__all__ = ["cautious", "cautious_adamw"]

# The per-leaf rescalings of the kept coordinates (``rescale=``), in the order the authors used them.
_RESCALINGS = ("numel_over_sum", "mean_clamp")

# The floor of ``mean(phi)`` in the authors' current rescaling (``mask.mean().clamp_(min=1e-3)``).
_MEAN_FLOOR = 1e-3


@pytree_class
class cautious(GradientTransformation):
    """Cautious optimizers: keep only the coordinates of an update that agree with the gradient.

    Liang, Chen, Liu & Liu 2024, "Cautious Optimizers: Improving Training with One Line of Code", arXiv
    2411.16085, Algorithm 1: keep only the coordinates of the update that move against the gradient, and rescale
    so the update keeps its size on average. ``u = inner(g)`` is an update to *add* to the parameters (a full
    optimizer such as ``adamw(...)``); per leaf::

        phi = 1[u * g < 0]           (the paper's u_t o g_t > 0 with its u_t = -our u: a descent coordinate)
        u'  = u * phi * n / (sum(phi) + 1)            (rescale="numel_over_sum", the default; n = the leaf's size)
        u'  = u * phi / max(mean(phi), 1e-3)          (rescale="mean_clamp")
        u'  = u * phi                                 (normalize=False, whatever ``rescale`` says)

    The two rescalings are the authors' two versions of ``c_adamw.py`` (``kyleliang919/C-Optim``):
    ``"numel_over_sum"`` is ``mask * (mask.numel() / (mask.sum() + 1))``, their original code (up to commit 3106e07,
    November 2024; the paper's Algorithm 1 writes ``1 / (mean(phi) + eps)``, the same with ``eps = 1 / n``);
    ``"mean_clamp"`` is ``mask / mask.mean().clamp_(min=1e-3)``, which replaced it in commit ccadd18 (January
    2025, after timm's ``caution`` optimizers) and is what their code does since (their foreach and FSDP versions
    included). They differ by the factor ``(sum(phi) + 1) / sum(phi)`` when at least ``n / 1000`` coordinates
    are kept: ``"mean_clamp"`` keeps an all-agreeing leaf's update exactly, ``"numel_over_sum"`` shrinks it by
    ``n / (n + 1)`` (a visible change only for small leaves: biases, norms). With few coordinates kept,
    ``"mean_clamp"`` caps the boost at 1000 while ``"numel_over_sum"`` caps it at ``n / 2``. gradtx keeps
    ``"numel_over_sum"`` as its default (the behaviour it shipped with); pass ``rescale="mean_clamp"`` for the
    authors' current code. Optax 0.2.8 has no cautious optimizer to compare with. ``normalize=False`` keeps the
    mask alone. The state is ``inner``'s state, unchanged. Real parameters only.

    ``descent=False`` wraps a block whose output a later ``scale_by_learning_rate`` negates (``scale_by_adam()``
    and the other ``scale_by_*`` directions): the mask is then ``1[u * g > 0]``. With the default
    ``descent=True`` such a block points uphill everywhere and every coordinate would be masked.

    Weight decay: everything ``inner`` outputs is masked, so ``cautious(adamw(lr, weight_decay=wd))`` masks and
    rescales the decay term too. The authors' C-AdamW decays every coordinate and masks only the Adam step:
    that is :func:`cautious_adamw`.

    Args:
      inner: the transformation whose updates are masked (a gradtx or Optax transformation).
      normalize: rescale each leaf's kept coordinates as ``rescale`` says (keyword-only). Default True.
      descent: ``inner`` returns a descent step (True), or an uphill direction that a later block negates
        (False); keyword-only. Default True.
      rescale: the rescaling when ``normalize``, one of ``"numel_over_sum"`` (``n / (sum(phi) + 1)``, the
        authors' original code) and ``"mean_clamp"`` (``1 / max(mean(phi), 1e-3)``, the authors' code since
        commit ccadd18); keyword-only. Default ``"numel_over_sum"``.

    Raises:
      TypeError: ``inner`` is not a transformation (``with_extra_args_support: expected a transformation with
        init and update, got 3``), or a flag is not a bool.
      ValueError: an unknown rescaling, e.g. ``cautious(rescale='mean'): rescale must be one of
        'numel_over_sum', 'mean_clamp'``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> inner = gradtx.chain(gradtx.add_decayed_weights(1.0), gradtx.sgd(1.0))  # u = -(g + theta)
      >>> tx = gradtx.contrib.cautious(inner)
      >>> params = jnp.array([0.0, -3.0])
      >>> updates, state = tx.update(jnp.array([1.0, 1.0]), tx.init(params), params)
      >>> print(updates)  # u = [-1, 2]; the second coordinate climbs the gradient: masked; n / (1 + 1) = 1
      [-1.  0.]
      >>> tx = gradtx.contrib.cautious(inner, rescale="mean_clamp")
      >>> updates, state = tx.update(jnp.array([1.0, 1.0]), tx.init(params), params)
      >>> print(updates)  # 1 / mean(phi) = 2
      [-2.  0.]
    """

    # refused on a gradtx.flat.FlatTree when normalizing (see GradientTransformation)
    leaf_structured = "it rescales each leaf by the fraction of its coordinates kept (normalize=True)"

    def _flat_refusal(self) -> str | None:
        return self.leaf_structured if self.normalize else None

    inner: TransformationLike = option(accepts="a transformation")
    normalize: bool = flag(default=True, kw_only=True)
    descent: bool = flag(default=True, kw_only=True)
    rescale: str = choice(default="numel_over_sum", choices=_RESCALINGS, kw_only=True)

    def __check_init__(self) -> None:
        object.__setattr__(self, "inner", with_extra_args_support(self.inner))

    def init(self, params: Params) -> OptState:
        return self.inner.init(params)

    def update(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, OptState]:
        out, state = self.inner.update(updates, state, params, **extra)

        def one(u: Any, g: Any) -> jax.Array:
            x = tree.Leaf(u)
            agree = x.cast(u) * x.cast(g)
            keep = x.cast((agree < 0) if self.descent else (agree > 0))
            if self.normalize and self.rescale == "mean_clamp":
                keep = keep / jnp.maximum(jnp.mean(keep), x.cast(_MEAN_FLOOR))
            elif self.normalize:
                keep = keep * (x.cast(jnp.size(keep)) / (jnp.sum(keep) + 1))
            return x.out(x.cast(u) * keep)

        return jax.tree.map(one, out, updates), state


@recipe
def cautious_adamw(
    learning_rate: ScalarOrSchedule,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-8,
    weight_decay: Scalar = 1e-4,
    mask: MaskOrFn = None,
    normalize: bool = True,
    *,
    rescale: str = "numel_over_sum",
) -> chain:
    """C-AdamW (Liang et al. 2024): AdamW whose Adam step is masked to the coordinates that agree with the gradient.

    Liang, Chen, Liu & Liu 2024, "Cautious Optimizers: Improving Training with One Line of Code", arXiv
    2411.16085, Algorithm 2 (``kyleliang919/C-Optim``): the Adam step is masked (:class:`cautious` with
    ``descent=False``) while the decoupled weight decay ``-lr wd theta`` reaches every coordinate::

        u = -lr (cautious(m_hat / (sqrt(v_hat) + eps)) + wd theta)

    Defaults as :func:`gradtx.adamw`'s. The rescaling of the kept coordinates: ``rescale="numel_over_sum"``
    (gradtx's default, ``n / (sum(phi) + 1)``: the authors' code until January 2025) or ``"mean_clamp"``
    (``1 / max(mean(phi), 1e-3)``: the authors' ``c_adamw.py`` since ``kyleliang919/C-Optim`` commit ccadd18);
    see :class:`cautious`. Two more departures from the authors' ``c_adamw.py`` remain, both tiny: their mask is
    ``1[m g > 0]`` on the raw first moment (the same signs as the Adam step's), and their ``eps`` is added to
    ``sqrt(v)`` before the bias correction, i.e. ``eps / sqrt(1 - b2^k)`` here (Optax's ``adamw`` convention is
    gradtx's). Optax 0.2.8 has no C-AdamW.

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count.
      b1: the decay of Adam's first moment, in ``[0, 1)``. Default 0.9.
      b2: the decay of Adam's second moment, in ``[0, 1)``. Default 0.999.
      eps: added to the root of the second moment, ``>= 0``. Default 1e-8.
      weight_decay: the decoupled weight decay ``wd >= 0`` (multiplied by the learning rate). Default 1e-4.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.
      normalize: rescale each leaf's kept coordinates as ``rescale`` says. Default True.
      rescale: ``"numel_over_sum"`` or ``"mean_clamp"`` (see above); keyword-only. Default ``"numel_over_sum"``.

    Returns:
      A ``chain(cautious(scale_by_adam), add_decayed_weights, scale_by_learning_rate)``; its state is
      ``(ScaleByAdamState, EmptyState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``cautious_adamw(b1=1.2): b1 must be in [0, 1)``.
      ValueError: an unknown rescaling, e.g. ``cautious_adamw(rescale='mean'): rescale must be one of
        'numel_over_sum', 'mean_clamp'``.
      TypeError: an option of the wrong type, e.g. ``cautious_adamw(normalize=2): normalize must be True or
        False, not int``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.contrib.cautious_adamw(learning_rate=0.1)
      >>> state = opt.init(jnp.zeros(2))
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), state, jnp.zeros(2))
      >>> print(updates)  # Adam's -lr sign(g), rescaled by n / (sum + 1) = 2 / 3
      [-0.0667  0.0667]
      >>> opt = gradtx.contrib.cautious_adamw(learning_rate=0.1, rescale="mean_clamp")
      >>> updates, _ = opt.update(jnp.array([1.0, -2.0]), opt.init(jnp.zeros(2)), jnp.zeros(2))
      >>> print(updates)  # rescaled by 1 / mean = 1
      [-0.1  0.1]
    """
    return chain(
        cautious(scale_by_adam(b1, b2, eps), normalize=normalize, descent=False, rescale=rescale),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
