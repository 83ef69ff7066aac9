"""Blocks that change *when* or *how noisily* updates arrive: annealed Gaussian gradient noise, and
accumulation applied every k steps.

    add_noise(eta, gamma, key):  u_k = g_k + sigma_k n_k,  n_k ~ N(0, I),  sigma_k^2 = eta / k^gamma
                                 (k the 1-based step: eta / (1 + t)^gamma with t the 0-based count;
                                 Neelakantan et al. 2015, arXiv 1511.06807)
    apply_every(k):              a_j = sum of the gradients since the last emission;
                                 u = a_j on every k-th step, 0 on the others
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    Params,
    Scalar,
    Updates,
    check_tree_match,
    safe_int32_increment,
    zero_count,
)
from gradtx.fields import FrozenTree, hashable_tree, integer, non_negative, option, pytree_class, real

__all__ = ["AddNoiseState", "ApplyEvery", "add_noise", "apply_every"]


class AddNoiseState(NamedTuple):
    """The state of ``add_noise``.

    Attributes:
      count: the number of updates so far, an int32 scalar (for the annealing ``sigma_k^2 = eta / k^gamma``).
      rng_key: the typed PRNG key the next noise is drawn from (split at every update).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.add_noise(eta=0.01, gamma=0.55, key=0)
      >>> _, state = tx.update(jnp.zeros(2), tx.init(jnp.zeros(2)))
      >>> print(state.count, state.rng_key.shape, state.rng_key.dtype)
      1 () key<fry>
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    rng_key: jax.Array


class ApplyEvery(NamedTuple):
    """The state of ``apply_every`` (Optax's name for it).

    Attributes:
      count: the position in the current window of ``k`` steps (0..k-1), an int32 scalar.
      grad_acc: the sum of the updates received in the current window, one array per parameter (in the
        parameter dtype).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.apply_every(k=2)
      >>> _, state = tx.update(jnp.array([1.0, 2.0]), tx.init(jnp.zeros(2)))
      >>> print(state.count, state.grad_acc)
      1 [1. 2.]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    grad_acc: Updates


# Keys and seeds (shared with ``gradtx.precision``).


def is_typed_key(x: Any) -> bool:
    """Whether ``x`` is a typed PRNG key array (``jax.random.key``)."""
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def is_raw_key(x: Any) -> bool:
    """Raw key data (a legacy ``jax.random.PRNGKey`` has shape (2,)): a 1-d uint32 array."""
    return (isinstance(x, (jax.Array, np.ndarray)) and np.dtype(x.dtype) == np.uint32 and np.ndim(x) == 1
            and not is_typed_key(x))


def is_int(x: Any) -> bool:
    """Whether ``x`` is a Python or NumPy integer (not a bool): a seed."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def as_key(key: Any) -> jax.Array:
    """A typed PRNG key from an int seed (``jax.random.key(seed)``, as Optax; a 0-d integer array too), a typed
    key, or raw key data (``jax.random.PRNGKey``)."""
    if isinstance(key, FrozenTree):
        key = key.tree
    if is_typed_key(key):
        return cast(jax.Array, key)
    if is_raw_key(key):
        return cast(jax.Array, jax.random.wrap_key_data(jnp.asarray(key)))
    return jax.random.key(key)


def check_key_or_seed(obj: Any) -> None:
    """Validate ``obj.key`` / ``obj.seed`` (at most one: an int seed, or a jax.random key) and freeze the key.

    Neither given: a ``UserWarning``, then key 0, as Optax 0.2.8 does.

    Shared by every block that draws noise from a static key (``add_noise``, ``contrib.dpsgd``'s aggregate).
    """
    if obj.seed is not None:
        if obj.key is not None:
            obj._fail("seed", obj.seed, "must not be given with key (seed is the old name of an int key)")
        if not is_int(obj.seed):
            obj._fail("seed", obj.seed, "must be an int")
    elif obj.key is None:  # Optax 0.2.8's fallback: warn, then draw from key 0 (the same noise in every run)
        warnings.warn(
            f"{type(obj).__name__}: no key given, so the noise is drawn from key 0 (Optax's default) and is the same "
            "in every run; pass key=<int seed or jax.random key> to choose the stream",
            UserWarning,
            stacklevel=6,  # the user's call (<- __init__ <- __post_init__ <- validate_fields <- __check_init__)
        )
        object.__setattr__(obj, "key", 0)
    elif not (is_int(obj.key) or is_typed_key(obj.key) or (is_raw_key(obj.key) and obj.key.shape == (2,))):
        obj._fail("key", obj.key, "must be an int seed or a jax.random key")
    if obj.key is not None:
        object.__setattr__(obj, "key", hashable_tree(obj.key))


@pytree_class
class add_noise(GradientTransformation):
    """Add annealed Gaussian noise (Neelakantan et al. 2015, "Adding Gradient Noise Improves Learning for Very
    Deep Networks", arXiv 1511.06807): ``u = g + sigma_k n`` with ``n ~ N(0, I)`` and ``sigma_k^2 = eta / k^gamma``.

    ``k`` is the 1-based step, so the paper's ``eta / (1 + t)^gamma`` with ``t`` the 0-based count; the
    paper uses ``eta`` in {0.01, 0.3, 1.0} and ``gamma = 0.55``.

    Randomness: ``key`` is an int seed (``jax.random.key(seed)``), a typed key (``jax.random.key``) or a
    legacy raw key (``jax.random.PRNGKey``). Without a key, as in Optax 0.2.8, a ``UserWarning`` is issued
    and key 0 is used (so every run draws the same noise). ``seed`` is Optax's older name for an int key,
    accepted for compatibility (Optax also warns that it is deprecated; gradtx does not). The key is static
    (only ``init`` reads it); the state carries the key the next noise comes from. Each update splits it into
    the next state key and a sample key, and the sample key into one key per leaf in tree order, as Optax
    does: the same key gives Optax's noise stream for float32 and float64 leaves. Noise for narrower leaves
    (bfloat16, float16) is drawn in float32 and rounded once with the sum.

    Args:
      eta: the variance at the first step, a number >= 0 (0 adds no noise).
      gamma: the annealing exponent, a finite number (0 keeps the variance constant).
      key: an int seed or a jax.random key; default ``None``: key 0 with a warning.
      seed: keyword only, Optax's deprecated name for an int ``key``; give at most one of the two.

    Returns:
      A ``GradientTransformation`` whose state is ``AddNoiseState(count, rng_key)``.

    Raises:
      ValueError: at construction, for a negative or NaN ``eta`` (``add_noise(eta=-1.0): eta must be >= 0``), a
        non-finite ``gamma``, a ``key`` that is neither an int nor a jax.random key, a non-int ``seed``, or
        both ``key`` and ``seed``.
      TypeError: at construction, for an ``eta`` or ``gamma`` that is not a real number (``add_noise(
        gamma='a'): gamma must be a finite real number, not str``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.add_noise(eta=0.01, gamma=0.55, key=0)
      >>> g = jnp.zeros(1000)
      >>> u, state = tx.update(g, tx.init(g))
      >>> int(state.count), bool(abs(float(u.std()) - 0.1) < 0.01)  # sigma_1 = sqrt(0.01)
      (1, True)
    """

    eta: Scalar = non_negative()
    gamma: Scalar = real()
    key: ArrayLike | None = option(  # an int seed, a typed key or raw key data
        default=None, optional=True, static=True, accepts="an int seed or a jax.random key"
    )
    seed: int | np.integer | None = option(
        default=None, optional=True, static=True, kw_only=True, accepts="an int (Optax's old name of key)"
    )

    def __check_init__(self) -> None:
        check_key_or_seed(self)

    def init(self, params: Params) -> AddNoiseState:
        del params
        return AddNoiseState(count=zero_count(), rng_key=as_key(self.key if self.key is not None else self.seed))

    def update(
        self, updates: Updates, state: AddNoiseState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, AddNoiseState]:
        del params, extra
        count = safe_int32_increment(state.count)
        rng_key, sample_key = jax.random.split(state.rng_key)
        keys = tree.split_key_like(sample_key, updates)

        def one(g: Any, k: Any) -> Any:
            x = tree.Leaf(g)
            t = count.astype(x.real_dtype)
            std = jnp.sqrt(x.hyper(self.eta) / t ** x.hyper(self.gamma))
            noise = jax.random.normal(k, jnp.shape(g), x.compute_dtype)
            return x.out(x.cast(g) + std * noise)

        return jax.tree.map(one, updates, keys), AddNoiseState(count=count, rng_key=rng_key)


@pytree_class
class apply_every(GradientTransformation):
    """Accumulate updates and emit their sum every ``k`` steps, zeros in between.

    With ``j`` the 1-based step::

        a_j = g_j + (a_{j-1} if j - 1 is not a multiple of k, else 0)
        u_j = a_j if j is a multiple of k, else 0

    On steps ``k, 2k, ...`` the output is the sum of the last ``k`` updates; on the others it is 0 and the sum
    grows in ``grad_acc`` (stored in the parameter dtype). Blocks chained before it still run, and update
    their state, on every step; for true gradient accumulation (an optimizer stepping once per ``k``
    micro-batches) use ``MultiSteps``.

    Args:
      k: the period, a whole number >= 1 (1: every update passes unchanged). Default 1.

    Returns:
      A ``GradientTransformation`` whose state is ``ApplyEvery`` (Optax's name for the state class).

    Raises:
      ValueError: at construction, for ``k`` out of range or not whole (``apply_every(k=0): k must be a whole
        number >= 1``).
      TypeError: at construction, for a ``k`` that is not a number (``None``, a string); in ``update``, for
        updates whose tree or shapes differ from the params given to ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> tx = gradtx.apply_every(k=2)
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([1.0, 2.0]), state)
      >>> print(updates)
      [0. 0.]
      >>> updates, state = tx.update(jnp.array([3.0, 4.0]), state)
      >>> print(updates)
      [4. 6.]
    """

    k: int = integer(default=1, lo=1)

    def init(self, params: Params) -> ApplyEvery:
        return ApplyEvery(count=zero_count(), grad_acc=tree.zeros_like(params))

    def update(
        self, updates: Updates, state: ApplyEvery, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ApplyEvery]:
        del params, extra
        check_tree_match("apply_every.update", state.grad_acc, updates)
        k = jnp.asarray(self.k).astype(jnp.int32)
        position = state.count % k
        keep = position != 0
        emit = position == k - 1

        def accumulate(g: Any, a: Any) -> Any:
            prev = jnp.where(keep, tree.up(a), jnp.zeros_like(tree.up(a)))
            return (prev + tree.up(g).astype(prev.dtype)).astype(jnp.asarray(a).dtype)

        grad_acc = jax.tree.map(accumulate, updates, state.grad_acc)
        out = jax.tree.map(
            lambda g, a: jnp.where(emit, a, jnp.zeros_like(a)).astype(jnp.asarray(g).dtype), updates, grad_acc
        )
        return out, ApplyEvery(count=safe_int32_increment(state.count) % k, grad_acc=grad_acc)
