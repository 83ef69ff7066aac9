"""Shampoo (Gupta, Koren & Singer 2018, arXiv 1802.09568) in the practical form of Anil et al. 2020 (arXiv 2002.09018).

Every leaf of rank >= 2 is a matrix: its shape ``(d_1, ..., d_r)`` is read as ``(d_1 ... d_{r-1}, d_r)`` (a
convolution kernel ``(h, w, in, out)`` becomes ``(h w in, out)``), so every preconditioned leaf has two Kronecker
factors and the exponent is ``-1/4`` (Gupta et al.'s ``-1/(2k)`` for ``k = 2``). A side longer than
``block_size`` is cut into blocks of ``block_size`` (the last one shorter), and each block ``B`` of the matrix
keeps its own statistics (Anil et al.'s blocking). With ``k`` the 1-based call and ``G`` a block's gradient::

    L = b2 L + w G G^T,   R = b2 R + w G^T G      (w = 1 - b2, or w = 1 for b2 = 1: the sums of Gupta et al.)
    c = 1 - b2^k (1 for b2 = 1),   r(A) = (A + matrix_epsilon lambda_max(A) I)^(-1/4)
    every preconditioning_compute_steps calls from start_preconditioning_step:  P_L = r(L / c),  P_R = r(R / c)
    S = P_L G P_R                                                     (the Shampoo direction of the block)

``r`` is :func:`gradtx.numerics.matrix_inverse_pth_root` (coupled Newton iteration; ``r(0) = I``: a statistic
that has seen no gradient is not inverted), differentiated (for hypergradients) through the eigendecomposition
of ``A``; the roots are kept in the state and reused between computations (the identity before the first one).
The graft direction ``D`` is computed elementwise on the whole leaf (``graft_type``)::

    "adam":     V = b2 V + w g^2,  D = g / (sqrt(V / c) + diagonal_epsilon)
    "rmsprop":  V = b2 V + w g^2,  D = g / (sqrt(V) + diagonal_epsilon)
    "sgd", "none":  D = g

and grafting (Anil et al., after Agarwal et al. 2020, arXiv 2002.11803; here per block) takes the step's
direction from Shampoo and its norm from the graft: ``U_B = S_B ||D_B|| / ||S_B||`` (0 where ``S_B = 0``; for
``"none"``, ``U_B = S_B``). Before ``start_preconditioning_step``, and for vectors and scalars always, ``U = D``.
Momentum then averages the grafted direction with Adam's bias correction::

    M = b1 M + (1 - b1) U,   out = M / (1 - b1^k)

so that with the preconditioner never used (``start_preconditioning_step`` beyond the run) and ``b1 = 0``,
``graft_type="adam"`` is Adam's direction with ``b1 = 0`` (``eps = diagonal_epsilon``).

Deviations from Google's distributed_shampoo (read, not copied): one matrix per leaf instead of one factor per
axis; grafting per block with the graft computed elementwise on the whole leaf; momentum as a bias-corrected
average (their default is the heavy-ball sum ``M = b1 M + U``); the statistics are bias-corrected before the
root (scale-free once grafted, and it keeps ``graft_type="none"`` steps of the gradient's scale); no
``nesterov``, ``exponent_override``, quantized statistics or sharded state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    MaskOrFn,
    Params,
    Scalar,
    ScalarOrSchedule,
    Updates,
    check_tree_match,
    safe_int32_increment,
    zero_count,
)
from gradtx.combine import chain
from gradtx.contrib._common import safe_sqrt, whole_numbers
from gradtx.fields import choice, integer, non_negative, probability, pytree_class, recipe
from gradtx.numerics import matrix_inverse_pth_root
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate

__all__ = ["ScaleByShampooState", "scale_by_shampoo", "shampoo"]

GRAFT_TYPES = ("adam", "rmsprop", "sgd", "none")
_HIGHEST = lax.Precision.HIGHEST


class ScaleByShampooState(NamedTuple):
    """The state of :class:`scale_by_shampoo`.

    Attributes:
      count: the number of calls, an int32 scalar.
      mu: the momentum of the grafted direction, like the parameters.
      nu: the graft's second moment (``"adam"``, ``"rmsprop"``; zeros otherwise), like the parameters.
      stats_left: per parameter, a tuple with the left statistic ``L`` (``b x b`` for a block of ``b`` rows) of
        each block, blocks in row-major order (an empty tuple for a vector or a scalar).
      stats_right: likewise the right statistics ``R``.
      roots_left: likewise the inverse fourth roots ``P_L`` last computed (the identity before the first).
      roots_right: likewise ``P_R``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.contrib._shampoo import scale_by_shampoo
      >>> state = scale_by_shampoo(block_size=2).init({"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)})
      >>> print([s.shape for s in state.stats_left["w"]], [s.shape for s in state.stats_right["w"]])
      [(2, 2), (1, 1)] [(2, 2), (2, 2)]
      >>> print(state.stats_left["b"])
      ()
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    mu: Updates
    nu: Updates
    stats_left: Any
    stats_right: Any
    roots_left: Any
    roots_right: Any


def _splits(n: int, block_size: int) -> list[tuple[int, int]]:
    """``(start, length)`` of the blocks of a side of length ``n``."""
    return [(s, min(block_size, n - s)) for s in range(0, n, block_size)]


@jax.custom_jvp
def _inverse_fourth_root(a: jax.Array, eps: jax.Array) -> jax.Array:
    """``(A + eps lambda_max(A) I)^(-1/4)`` by :func:`gradtx.numerics.matrix_inverse_pth_root`; the identity for
    ``A = 0`` (no gradient seen yet). Differentiable (the Newton iteration's loop is not): see :func:`_root_jvp`."""
    zero = jnp.all(a == 0)
    eye = jnp.eye(a.shape[0], dtype=a.dtype)
    # float32 cannot resolve Newton's error below ~1e-6; float64 keeps iterating to near its roundoff.
    tol = 1e-6 if a.dtype == jnp.float32 else 1e-12
    root = matrix_inverse_pth_root(jnp.where(zero, eye, a), 4, ridge_epsilon=eps, error_tolerance=tol,
                                   precision=_HIGHEST)[0]
    return jnp.where(zero, eye, root)


@_inverse_fourth_root.defjvp
def _root_jvp(primals: tuple[jax.Array, jax.Array], tangents: tuple[jax.Array, jax.Array]) -> tuple[Any, Any]:
    """The derivative of ``F(A) = (A + r I)^(-1/4)``, ``r = eps lambda_max(A)``, in ``A``'s eigenbasis
    ``A = V diag(w) V^T`` (Daleckii-Krein): ``dF = V (K o (V^T dA V + dr I)) V^T`` with ``K_ij`` the divided
    difference of ``x^(-1/4)`` at ``x_i = w_i + r``, ``x_j``, which is ``-a_i^4 a_j^4 / ((a_i + a_j)(a_i^2 + a_j^2))``
    with ``a = x^(-1/4)`` (no cancellation for close eigenvalues; ``-x^(-5/4) / 4`` on the diagonal), and
    ``dr = deps lambda_max + eps v^T dA v`` (``v`` the top eigenvector)."""
    a, eps = primals
    da, deps = tangents
    out = _inverse_fourth_root(a, eps)
    w, v = jnp.linalg.eigh(a)
    top = w[-1] > 1e-16
    lam = jnp.where(top, w[-1], jnp.asarray(1e-16, w.dtype))
    vmax = v[:, -1]
    dlam = jnp.where(top, vmax @ da @ vmax, 0)
    dr = deps * lam + eps * dlam
    xs = jnp.maximum(w + eps * lam, jnp.asarray(1e-30, w.dtype))
    root = xs**-0.25
    r4 = root**4
    k = -(r4[:, None] * r4[None, :]) / ((root[:, None] + root[None, :]) * (root[:, None] ** 2 + root[None, :] ** 2))
    inner = jnp.matmul(jnp.matmul(v.T, da, precision=_HIGHEST), v, precision=_HIGHEST) + dr * jnp.eye(a.shape[0],
                                                                                                      dtype=a.dtype)
    d_out = jnp.matmul(jnp.matmul(v, k * inner, precision=_HIGHEST), v.T, precision=_HIGHEST)
    return out, jnp.where(jnp.all(a == 0), jnp.zeros_like(d_out), d_out)


@pytree_class
class scale_by_shampoo(GradientTransformation):
    """Shampoo's grafted, blocked, momentum direction (Gupta et al. 2018; Anil et al. 2020).

    Gupta, Koren & Singer 2018, "Shampoo: Preconditioned Stochastic Tensor Optimization", arXiv 1802.09568, in
    the practical form of Anil, Gupta, Koren, Regan & Singer 2020, "Scalable Second Order Optimization for Deep
    Learning", arXiv 2002.09018 (blocking, grafting, delayed and infrequent roots). Per block of a matrix
    parameter (equations in the module docstring)::

        L = b2 L + (1 - b2) G G^T,   R = b2 R + (1 - b2) G^T G,   S = (L + eps_m I)^(-1/4) G (R + eps_m I)^(-1/4)
        U = S ||D|| / ||S||  (D the graft direction),   M = b1 M + (1 - b1) U,   out = M / (1 - b1^k)

    A leaf of rank >= 2 is read as a matrix ``(d_1 ... d_{r-1}, d_r)``; vectors and scalars follow the graft
    direction alone. ``b2 = 1`` sums the statistics (and the graft's second moment: Adagrad) instead. The roots are
    computed at calls ``start_preconditioning_step + j preconditioning_compute_steps`` (``j = 0, 1, ...``) and
    reused in between; before ``start_preconditioning_step`` the output is the graft's. Statistics and roots are
    float32 or wider; ``mu`` and ``nu`` are stored in the parameter dtype. Real parameters only. The output points
    uphill: follow it with ``scale_by_learning_rate`` (:func:`shampoo`). State: :class:`ScaleByShampooState`.

    Args:
      b1: the decay of the momentum of the grafted direction, in ``[0, 1)``. Default 0.9.
      b2: the decay of the statistics and of the graft's second moment, in ``[0, 1]`` (1: sums). Default 0.999.
      diagonal_epsilon: added to the graft's root of the second moment, ``>= 0``. Default 1e-8.
      matrix_epsilon: the damping of the statistics relative to their largest eigenvalue, ``>= 0``. Default 1e-6.
      block_size: the longest side of a block, a whole number ``>= 1`` (static). Default 128.
      graft_type: the norm's source, one of ``"adam"``, ``"rmsprop"``, ``"sgd"``, ``"none"`` (static).
        Default ``"adam"``.
      start_preconditioning_step: the first call (1-based) that uses the preconditioner, a whole number ``>= 1``
        (static). Default 1.
      preconditioning_compute_steps: the calls between two computations of the roots, a whole number ``>= 1``
        (static). Default 1.

    Raises:
      ValueError: an option out of range, e.g. ``scale_by_shampoo(b2=1.5): b2 must be in [0, 1]``; at ``init``,
        complex parameters (``scale_by_shampoo.init: complex parameters are not supported``).
      TypeError: an option of the wrong type; at ``update``, updates whose tree does not match the state's.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.contrib._shampoo import scale_by_shampoo
      >>> tx = scale_by_shampoo(b1=0.0, graft_type="sgd")
      >>> state = tx.init(jnp.zeros((2, 2)))
      >>> updates, state = tx.update(jnp.array([[3.0, 0.0], [0.0, 1.0]]), state)
      >>> print(updates.round(4))  # L^(-1/4) G R^(-1/4) = sign(G) here, rescaled to ||G|| = sqrt(10)
      [[2.2361 0.    ]
       [0.     2.2361]]
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "its statistics are per block of each matrix"

    b1: Scalar = probability(default=0.9)
    b2: Scalar = probability(default=0.999, closed=True)
    diagonal_epsilon: Scalar = non_negative(default=1e-8)
    matrix_epsilon: Scalar = non_negative(default=1e-6)
    block_size: int = integer(default=128, lo=1, static=True)
    graft_type: str = choice(default="adam", choices=GRAFT_TYPES)
    start_preconditioning_step: int = integer(default=1, lo=1, static=True)
    preconditioning_compute_steps: int = integer(default=1, lo=1, static=True)

    def __check_init__(self) -> None:
        whole_numbers(self, "block_size", "start_preconditioning_step", "preconditioning_compute_steps")

    def _blocks(self, shape: tuple[int, ...]) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """The ``((row start, rows), (column start, columns))`` of each block, row-major; [] if not a matrix."""
        if len(shape) < 2 or 0 in shape:
            return []
        rows = 1
        for n in shape[:-1]:
            rows *= n
        return [(r, c) for r in _splits(rows, self.block_size) for c in _splits(shape[-1], self.block_size)]

    def init(self, params: Params) -> ScaleByShampooState:
        for p in jax.tree.leaves(params):
            if jnp.iscomplexobj(p):
                raise ValueError("scale_by_shampoo.init: complex parameters are not supported")

        def per_block(side: int, make: Any) -> Any:
            def build(p: Any) -> tuple[Any, ...]:
                dt = tree.Leaf(p).compute_dtype
                return tuple(make(b[side][1], dt) for b in self._blocks(tuple(jnp.shape(p))))

            return jax.tree.map(build, params)

        def zeros(n: int, dt: Any) -> jax.Array:
            return jnp.zeros((n, n), dt)

        def eye(n: int, dt: Any) -> jax.Array:
            return jnp.eye(n, dtype=dt)

        return ScaleByShampooState(
            count=zero_count(),
            mu=tree.zeros_like(params),
            nu=tree.zeros_like(params),
            stats_left=per_block(0, zeros),
            stats_right=per_block(1, zeros),
            roots_left=per_block(0, eye),
            roots_right=per_block(1, eye),
        )

    def update(
        self, updates: Updates, state: ScaleByShampooState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ScaleByShampooState]:
        del params, extra
        check_tree_match("scale_by_shampoo.update", state.mu, updates)
        count = safe_int32_increment(state.count)
        start, every = self.start_preconditioning_step, self.preconditioning_compute_steps
        preconditioned = count >= start
        refresh = preconditioned & ((count - start) % every == 0)

        def one(g: Any, m: Any, v: Any, ls: tuple[Any, ...], rs: tuple[Any, ...], pls: tuple[Any, ...],
                prs: tuple[Any, ...]) -> tuple[Any, ...]:
            x = tree.Leaf(g)
            g32 = x.cast(g)
            b2 = x.hyper(self.b2)
            summed = b2 == 1
            w = jnp.where(summed, jnp.ones_like(b2), x.complement(self.b2))  # (1 - b2), or 1 for the sums
            c = jnp.where(summed, jnp.ones_like(b2), x.debias(self.b2, count))  # 1 - b2^k, or 1

            v_new = x.cast(v)
            if self.graft_type in ("adam", "rmsprop"):
                v_new = b2 * v_new + w * jnp.square(g32)
                scale = v_new / c if self.graft_type == "adam" else v_new
                graft = g32 / (safe_sqrt(scale) + x.hyper(self.diagonal_epsilon))
            else:
                graft = g32

            blocks = self._blocks(tuple(jnp.shape(g)))
            ls_new, rs_new, pls_new, prs_new = ls, rs, pls, prs
            direction = graft
            if blocks:
                shape2 = (-1, g.shape[-1])
                gm, dm = g32.reshape(shape2), graft.reshape(shape2)
                gbs = [gm[r0:r0 + nr, c0:c0 + nc] for (r0, nr), (c0, nc) in blocks]
                ls_new = tuple(b2 * f + w * jnp.matmul(gb, gb.T, precision=_HIGHEST) for f, gb in zip(ls, gbs))
                rs_new = tuple(b2 * f + w * jnp.matmul(gb.T, gb, precision=_HIGHEST) for f, gb in zip(rs, gbs))

                def roots() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
                    eps = x.hyper(self.matrix_epsilon)
                    return (tuple(_inverse_fourth_root(f / c, eps) for f in ls_new),
                            tuple(_inverse_fourth_root(f / c, eps) for f in rs_new))

                pls_new, prs_new = lax.cond(refresh, roots, lambda: (tuple(pls), tuple(prs)))
                rows: list[list[jax.Array]] = []
                for ((r0, nr), (c0, nc)), gb, pl, pr in zip(blocks, gbs, pls_new, prs_new):
                    s = jnp.matmul(jnp.matmul(pl, gb, precision=_HIGHEST), pr, precision=_HIGHEST)
                    if self.graft_type != "none":
                        s_norm, d_norm = jnp.linalg.norm(s), jnp.linalg.norm(dm[r0:r0 + nr, c0:c0 + nc])
                        positive = s_norm > 0
                        s = s * jnp.where(positive, d_norm / jnp.where(positive, s_norm, 1), 0)
                    if c0 == 0:
                        rows.append([])
                    rows[-1].append(s)
                shampoo_dir = jnp.concatenate([jnp.concatenate(r, axis=1) for r in rows], axis=0).reshape(g.shape)
                direction = jnp.where(preconditioned, shampoo_dir, graft)

            m_new = x.ema(self.b1, m, direction)
            out = m_new / x.debias(self.b1, count)
            return (x.out(out), x.store(m_new, m), x.store(v_new, v), ls_new, rs_new, pls_new, prs_new)

        out, mu, nu, ls, rs, pls, prs = tree.map_split(
            one, 7, updates, state.mu, state.nu, state.stats_left, state.stats_right, state.roots_left,
            state.roots_right)
        return out, ScaleByShampooState(count=count, mu=mu, nu=nu, stats_left=ls, stats_right=rs, roots_left=pls,
                                        roots_right=prs)


@recipe
def shampoo(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    diagonal_epsilon: Scalar = 1e-8,
    matrix_epsilon: Scalar = 1e-6,
    weight_decay: Scalar = 0.0,
    mask: MaskOrFn = None,
    *,
    block_size: int = 128,
    graft_type: str = "adam",
    start_preconditioning_step: int = 1,
    preconditioning_compute_steps: int = 1,
) -> chain:
    """Shampoo (Gupta et al. 2018; Anil et al. 2020) with grafting, blocking, momentum and decoupled weight decay.

    ``scale_by_shampoo -> add_decayed_weights -> scale_by_learning_rate``: ``u = -lr (d + weight_decay theta)`` with
    ``d`` the direction of :class:`scale_by_shampoo` (per block ``(L + eps I)^(-1/4) G (R + eps I)^(-1/4)`` with the
    graft's norm, then bias-corrected momentum). Gupta, Koren & Singer 2018, "Shampoo: Preconditioned Stochastic
    Tensor Optimization", arXiv 1802.09568; Anil et al. 2020, "Scalable Second Order Optimization for Deep
    Learning", arXiv 2002.09018. With Adam grafting the learning rate is on Adam's scale.

    Args:
      learning_rate: the step size ``lr``, a number or a schedule of the 0-based step count. Default 1e-3.
      b1: the decay of the momentum, in ``[0, 1)``. Default 0.9.
      b2: the decay of the statistics and of the graft's second moment, in ``[0, 1]`` (1: sums). Default 0.999.
      diagonal_epsilon: added to the graft's root of the second moment, ``>= 0``. Default 1e-8.
      matrix_epsilon: the damping of the statistics relative to their largest eigenvalue, ``>= 0``. Default 1e-6.
      weight_decay: the decoupled weight decay ``>= 0`` (multiplied by the learning rate). Default 0.0.
      mask: the parameters the weight decay applies to: None (all), a tree of bools like the parameters (or a
        prefix of it), or a function ``params -> such a tree``. Default None.
      block_size: the longest side of a block, a whole number ``>= 1`` (keyword-only). Default 128.
      graft_type: ``"adam"``, ``"rmsprop"``, ``"sgd"`` or ``"none"`` (keyword-only). Default ``"adam"``.
      start_preconditioning_step: the first call that uses the preconditioner, a whole number ``>= 1``
        (keyword-only). Default 1.
      preconditioning_compute_steps: the calls between two computations of the roots, a whole number ``>= 1``
        (keyword-only). Default 1.

    Returns:
      A ``chain`` of the three blocks; its state is ``(ScaleByShampooState, EmptyState, EmptyState)``.

    Raises:
      ValueError: an option out of range, e.g. ``shampoo(b2=1.5): b2 must be in [0, 1]``.
      TypeError: an option of the wrong type, e.g. a string learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.contrib._shampoo import shampoo
      >>> opt = shampoo(learning_rate=0.1, b1=0.0, graft_type="sgd")
      >>> params = jnp.zeros(2)
      >>> state = opt.init(params)
      >>> updates, state = opt.update(jnp.array([1.0, -2.0]), state, params)
      >>> print(updates)  # a vector follows the graft alone, here SGD: -lr g
      [-0.1  0.2]
    """
    return chain(
        scale_by_shampoo(b1, b2, diagonal_epsilon, matrix_epsilon, block_size, graft_type, start_preconditioning_step,
                         preconditioning_compute_steps),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
