"""L-BFGS as a recipe: the quasi-Newton direction, the minus sign, then a line search for the step size.

=======  =================================================================================================
lbfgs    scale_by_lbfgs -> scale(-1) | scale_by_learning_rate -> scale_by_zoom_linesearch   (Liu & Nocedal 1989)
=======  =================================================================================================
"""

from __future__ import annotations

from typing import Any

from gradtx.base import identity
from gradtx.combine import chain
from gradtx.fields import recipe
from gradtx.transforms.lbfgs import scale_by_lbfgs
from gradtx.transforms.linesearch import scale_by_zoom_linesearch
from gradtx.transforms.scaling import scale, scale_by_learning_rate

__all__ = ["lbfgs"]


@recipe
def lbfgs(
    learning_rate: Any = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: Any = scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one"),  # noqa: B008
) -> chain:
    """L-BFGS (Liu & Nocedal 1989; Nocedal & Wright 2006, Algorithms 7.4 and 7.5).

    ``w_{k+1} = w_k - eta_k P_k g_k`` with ``P_k`` the limited-memory inverse-Hessian approximation of
    :class:`~gradtx.transforms.lbfgs.scale_by_lbfgs` and ``eta_k`` chosen by ``linesearch`` (by default a
    zoom line search for the strong Wolfe conditions, starting from 1 at every step). ``learning_rate``
    (a number or a schedule) scales the direction before the line search; ``None`` scales by -1 only.
    ``linesearch=None`` takes the step ``-learning_rate P_k g_k`` without a search.

    The update needs the line search's extra arguments: ``update(grads, state, params, value=f(params),
    grad=grads, value_fn=f)``; :func:`~gradtx.transforms.linesearch.value_and_grad_from_state` reuses the
    value and gradient the search computed at the accepted point.
    """
    return chain(
        scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond),
        scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate),
        identity() if linesearch is None else linesearch,
    )
