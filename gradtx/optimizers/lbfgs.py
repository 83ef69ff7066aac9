"""L-BFGS as a recipe: the quasi-Newton direction, the minus sign, then a line search for the step size.

=======  =================================================================================================
lbfgs    scale_by_lbfgs -> scale(-1) | scale_by_learning_rate -> scale_by_zoom_linesearch   (Liu & Nocedal 1989)
=======  =================================================================================================
"""

from __future__ import annotations

from gradtx.base import ScalarOrSchedule, TransformationLike, identity
from gradtx.combine import chain
from gradtx.fields import recipe
from gradtx.transforms.lbfgs import scale_by_lbfgs
from gradtx.transforms.linesearch import scale_by_zoom_linesearch
from gradtx.transforms.scaling import scale, scale_by_learning_rate

__all__ = ["lbfgs"]


@recipe
def lbfgs(
    learning_rate: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: TransformationLike | None = scale_by_zoom_linesearch(  # noqa: B008
        max_linesearch_steps=20, initial_guess_strategy="one"
    ),
) -> chain:
    """L-BFGS: a limited-memory quasi-Newton direction, then a line search for the step size.

    Liu & Nocedal 1989, "On the limited memory BFGS method for large scale optimization", Mathematical
    Programming 45; Nocedal & Wright 2006, "Numerical Optimization", Algorithms 7.4 and 7.5::

        w_{k+1} = w_k - eta_k P_k g_k

    with ``P_k`` the inverse-Hessian approximation built from the last ``memory_size`` pairs
    ``(s, y) = (w_k - w_{k-1}, g_k - g_{k-1})`` by the two-loop recursion of
    :class:`~gradtx.transforms.lbfgs.scale_by_lbfgs` (the first direction has length at most 1), and
    ``eta_k`` chosen by ``linesearch`` (by default a zoom line search for the strong Wolfe conditions,
    starting from 1 at every step). ``learning_rate`` scales the direction before the line search; ``None``
    scales by -1 only. ``linesearch=None`` takes the step ``-learning_rate P_k g_k`` without a search. Same
    defaults as ``optax.lbfgs``.

    The update needs the line search's extra arguments: ``update(grads, state, params, value=f(params),
    grad=grads, value_fn=f)``; :func:`~gradtx.transforms.linesearch.value_and_grad_from_state` reuses the
    value and gradient the search computed at the accepted point.

    Chain: ``scale_by_lbfgs(memory_size, scale_init_precond)`` -> ``scale(-1.0)`` (or
    ``scale_by_learning_rate(learning_rate)``) -> ``linesearch`` (``identity()`` when None).

    Args:
      learning_rate: a finite number or a schedule ``count -> lr`` of the 0-based step count scaling the
        direction, or None for a factor of 1. Default None.
      memory_size: the number of ``(s, y)`` pairs kept, a whole number >= 1. Default 10.
      scale_init_precond: start each recursion from ``gamma_k I`` with ``gamma_k = <s, y> / <y, y>``
        (Nocedal & Wright eq. 7.20) rather than from ``I``. Default True.
      linesearch: the transformation choosing the step size (anything with ``init`` and ``update``), or None
        for no line search. Default ``scale_by_zoom_linesearch(max_linesearch_steps=20,
        initial_guess_strategy="one")``.

    Returns:
      A ``chain`` whose state is ``(ScaleByLBFGSState, <scaling state>, <line-search state>)``, e.g.
      ``ScaleByZoomLinesearchState`` for the default line search.

    Raises:
      ValueError: at construction, for an invalid argument, e.g. ``lbfgs(memory_size=0): memory_size must be
        a whole number >= 1``.
      TypeError: for ``linesearch`` without ``init`` and ``update`` (``expected a transformation with init
        and update, got ...``) or an argument of the wrong kind, e.g. ``lbfgs(scale_init_precond=None):
        scale_init_precond must be True or False, not None``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> f = lambda p: jnp.sum(p["w"] ** 2)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> opt = gradtx.lbfgs()
      >>> state = opt.init(params)
      >>> value, grads = jax.value_and_grad(f)(params)
      >>> updates, state = opt.update(grads, state, params, value=value, grad=grads, value_fn=f)
      >>> params = gradtx.apply_updates(params, updates)
      >>> print(params["w"])  # a first step of length 1 along -g
      [ 0.55279 -1.10557]
    """
    return chain(
        scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond),
        scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate),
        identity() if linesearch is None else linesearch,
    )
