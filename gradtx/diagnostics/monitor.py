"""Metrics written into the optimizer state: see inside training from the state alone, inside ``jit``.

    monitored(tx, history=100)        tx's updates, unchanged, plus metrics of every step in the state
    metrics(state)                    {name: current value} and {"history/<name>": last `history` values}
    step_count(state)                 the number of updates the state has seen
    current_hyperparams(opt, state)   every numeric hyperparameter, schedules evaluated where last used

What :class:`monitored` records at each update, with ``g`` the incoming gradient (before any clipping inside
``tx``), ``u`` the update ``tx`` returns and ``p`` the parameters passed to ``update`` (norms are l2 norms of the
whole tree seen as one vector, accumulated in the metric dtype)::

    grad_norm                    ||g||
    update_norm                  ||u||
    param_norm                   ||p||                          (NaN when params is None)
    update_param_ratio           ||u|| / ||p||
    update_param_ratio/<group>   ||u_G|| / ||p_G||  for each top-level group G of the params (dict key,
                                 sequence position or field name, as a string)
    effective_lr_min/median/max  min, median, max over the elements with g_i != 0 of |u_i| / |g_i|
    clipped                      1.0 if a clipping block inside tx changed its input at this step, else 0.0
    clip_fraction                (steps clipped) / (steps)

The effective step size is the lecture's ``lr / sigma``: writing an update as ``u = -lr m / sigma``,
``|u_i| / |g_i| = lr |m_i| / (|g_i| sigma_i)``, which is ``lr / sigma_i`` wherever the direction ``m`` is the
gradient itself: plain SGD (``= lr``), RMSProp, Adam with ``b1 = 0`` or at its first step, where
``m_hat = g`` and ``sigma_1 = sqrt(v_hat_1) + eps = |g| + eps`` (with momentum it also carries the factor
``|m_hat_i| / |g_i|``; any clipping inside ``tx`` is part of it). Elements whose ratio is NaN are left out too;
when none is left, or when ``tx`` returns a tree of another structure than the gradient (``lookahead``), the
three values are NaN. The median is exact (the mean of the two middle values for an even count): a sort for
trees of at most 4096 elements, above that a radix selection over the bit patterns of the non-negative ratios
(three histogram passes for float32, six for float64), much cheaper than a sort on CPU but still the costly
part of this wrapper; ``effective_lr=False`` leaves the three statistics out.

Cost, measured by ``benchmarks/monitored_overhead.py`` (jitted ``monitored(adam(1e-3))`` against
``adam(1e-3)`` on 985,600 float32 parameters in 10 leaves, same process, 2 shared CPU cores): about 1.6-1.9x
the step time of Adam alone with ``effective_lr=False``, about 7-8x with it. Nothing is computed outside the
step, and an optimizer that is not wrapped pays nothing.

Metrics are stored in the widest floating dtype of the parameters but at least float32 (the *metric dtype*);
each has a ring buffer of its last ``history`` values, so a plot needs no host loop. Nothing synchronises with
the host: every metric is a ``jnp`` computation traced into the step.

Clipping is detected by duck typing: a block with a method ``clips(updates, params) -> bool scalar`` (gradtx's
``clip``, ``clip_by_global_norm``, ``clip_by_block_rms``, ``adaptive_grad_clip``) tells whether its ``update``
would change ``updates``. ``monitored`` evaluates each such block on the input it actually sees: when ``tx``
is a chain (an object with a tuple attribute ``transforms`` and a plain-tuple state of the same length) or a
named chain (also a tuple ``names`` and a dict state with those keys), ``monitored`` runs the blocks in
sequence itself, exactly as the chain's own ``update`` does (the same calls with the same arguments, so the
updates and states are bit for bit the chain's), checking each clipping block on the output of the blocks
before it; nested chains recurse. Inside any other combinator (``partition``, ``masked``, ``MultiSteps``,
``apply_if_finite``, ...) the clipping blocks are evaluated on the *combinator's* input, an approximation:
under ``masked``/``partition`` the block really sees only its subset of leaves (a global-norm clip may then
report a clip that did not happen), and under ``MultiSteps`` it really sees the accumulated gradient, on the
emitting mini-step only. Blocks built at each step (``inject_hyperparams``) and foreign (Optax)
transformations are opaque. When ``tx`` contains no clipping block, ``clipped`` and ``clip_fraction`` are
absent (known statically).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree
from gradtx.base import (
    GradientTransformation,
    OptState,
    Params,
    TransformationLike,
    Updates,
    as_transformation,
    safe_int32_increment,
    zero_count,
)
from gradtx.fields import flag, integer, option, pytree_class
from gradtx.tree.ops import leaves_norm
from gradtx.tree.precision import widest_real_dtype

__all__ = [
    "MonitoredState",
    "current_hyperparams",
    "metrics",
    "monitored",
    "step_count",
]


class MonitoredState(NamedTuple):
    """State of :class:`monitored`.

    Attributes:
      count: the number of ``update`` calls, an int32 scalar (saturating at the largest int32).
      inner_state: exactly what ``tx.init`` returned, then ``tx``'s own state (find and checkpoint it as if
        ``tx`` were not wrapped).
      last: ``{metric name: scalar}``, the values of the latest update (NaN before the first).
      history: ``{metric name: array of shape (history,)}``, a ring buffer where update ``t`` (0-based)
        writes slot ``t % history`` (NaN where nothing was written yet; read it in order with
        :func:`metrics`).
      clipped_steps: the number of updates in which some clipping block changed its input, an int32 scalar,
        or ``None`` when ``tx`` contains no clipping block.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.diagnostics.monitored(gradtx.sgd(0.1), history=3)
      >>> state = opt.init(jnp.array([3.0, 4.0]))
      >>> _, state = opt.update(jnp.array([0.6, 0.8]), state, jnp.array([3.0, 4.0]))
      >>> print(int(state.count), float(state.last["grad_norm"]), state.history["param_norm"])
      1 1.0 [ 5. nan nan]
    """

    count: jax.Array  # type: ignore[assignment]  # the step count's name shadows tuple.count
    inner_state: OptState
    last: dict[str, jax.Array]
    history: dict[str, jax.Array]
    clipped_steps: jax.Array | None


_GROUP = "update_param_ratio/"
_EFFECTIVE = ("effective_lr_min", "effective_lr_median", "effective_lr_max")
_CLIP = ("clipped", "clip_fraction")


# --------------------------------------------------------------------------------------------------
# Walking a transformation: chains run block by block, clipping blocks found anywhere.
# --------------------------------------------------------------------------------------------------


def _data_fields(obj: Any) -> Iterator[tuple[str, Any]]:
    """``(name, value)`` of the data (non-static) dataclass fields of a transformation."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return
    for f in dataclasses.fields(obj):
        if not f.metadata.get("static", False) and hasattr(obj, f.name):
            yield f.name, getattr(obj, f.name)


def _sub_transformations(tx: Any) -> Iterator[Any]:
    """The transformations held in ``tx``'s data fields: directly, or in a tuple, list or dict."""
    for _, value in _data_fields(tx):
        if isinstance(value, GradientTransformation):
            yield value
        elif isinstance(value, (tuple, list)):
            yield from (v for v in value if isinstance(v, GradientTransformation))
        elif isinstance(value, dict):
            yield from (v for v in value.values() if isinstance(v, GradientTransformation))


def _has_clips(tx: Any) -> bool:
    return callable(getattr(tx, "clips", None))


def _clip_blocks(tx: Any) -> list[Any]:
    """Every clipping block inside ``tx`` (``tx`` itself included), depth first."""
    found = [tx] if _has_clips(tx) else []
    for sub in _sub_transformations(tx):
        found.extend(_clip_blocks(sub))
    return found


def _sequence(tx: Any, state: Any) -> list[tuple[Any, Any, Any]] | None:
    """``[(key, block, block state)]`` if ``tx`` is a chain or a named chain with a matching state, else None."""
    transforms = getattr(tx, "transforms", None)
    if not isinstance(transforms, tuple):
        return None
    if type(state) is tuple and len(state) == len(transforms):
        return [(i, t, s) for i, (t, s) in enumerate(zip(transforms, state))]
    names = getattr(tx, "names", None)
    if (
        isinstance(state, dict)
        and isinstance(names, tuple)
        and len(names) == len(transforms)
        and list(state) == list(names)
    ):
        return [(n, t, state[n]) for n, t in zip(names, transforms)]
    return None


def _any(flags: list[jax.Array]) -> jax.Array | None:
    if not flags:
        return None
    out = flags[0]
    for f in flags[1:]:
        out = jnp.logical_or(out, f)
    return out


def _run(
    tx: Any, updates: Updates, state: OptState, params: Params | None, extra: dict[str, Any]
) -> tuple[Updates, OptState, jax.Array | None]:
    """``tx.update(updates, state, params, **extra)`` and whether a clipping block clipped (None: no block).

    Chains are run block by block (exactly the calls ``chain.update`` makes) so that each clipping block is
    checked on its own input; any other transformation runs as a whole and its clipping blocks are checked
    on its input.
    """
    steps = _sequence(tx, state)
    if steps is None:
        flags = [b.clips(updates, params) for b in _clip_blocks(tx)]
        out, new_state = tx.update(updates, state, params, **extra)
        return out, new_state, _any(flags)
    flags, new_states = [], []
    for _, t, s in steps:
        updates, s, flag = _run(t, updates, s, params, extra)
        new_states.append(s)
        if flag is not None:
            flags.append(flag)
    if type(state) is tuple:
        rebuilt: Any = tuple(new_states)
    else:
        rebuilt = {key: s for (key, _, _), s in zip(steps, new_states)}
    return updates, rebuilt, _any(flags)


# --------------------------------------------------------------------------------------------------
# The measurements.
# --------------------------------------------------------------------------------------------------


def _group_name(entry: Any) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _grouped(t: Any) -> list[tuple[str | None, Any]]:
    """``[(top-level group name or None for a bare array, leaf)]`` in tree order (``None`` leaves skipped)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(t)
    return [(_group_name(path[0]) if path else None, leaf) for path, leaf in flat]


def _groups(params: Any) -> list[str]:
    names = [g for g, _ in _grouped(params) if g is not None]
    return list(dict.fromkeys(names))


def _norms(t: Any, dt: np.dtype) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The l2 norm of the whole tree and of each top-level group, accumulated in ``dt``, without overflow or
    underflow (``gradtx.tree.ops.leaves_norm``: a float32 gradient of 1e20 has norm 1e20, not inf)."""
    grouped = _grouped(t)
    per: dict[str, list[Any]] = {}
    for g, leaf in grouped:
        if g is not None:
            per.setdefault(g, []).append(leaf)
    total = leaves_norm([leaf for _, leaf in grouped], dt)
    return total, {g: leaves_norm(leaves, dt) for g, leaves in per.items()}


def _keys(g: Any, u: Any, dt: np.dtype, int_dt: Any, invalid: jax.Array) -> jax.Array:
    """The bit patterns of ``|u| / |g|`` in ``dt`` (flattened), ``invalid`` where ``g == 0`` or the ratio is NaN.

    The ratio is non-negative, so its bit pattern read as a signed integer orders as the value does (``+inf``
    included); ``invalid`` (the largest integer, a NaN pattern) sorts after every valid key.
    """
    ag = jnp.abs(tree.Leaf(g).cast(g)).astype(dt).reshape(-1)
    au = jnp.abs(tree.Leaf(u).cast(u)).astype(dt).reshape(-1)
    nonzero = ag != 0
    r = au / jnp.where(nonzero, ag, jnp.ones([], dt))
    ok = jnp.logical_and(nonzero, jnp.logical_not(jnp.isnan(r)))
    return jnp.where(ok, jax.lax.bitcast_convert_type(r, int_dt), invalid)


_RADIX = 11  # bits per radix-select pass: 2048 buckets
_SORT_BELOW = 4096  # up to this many elements the median comes from a sort (radix select above)


def _kth_smallest(keys: jax.Array, k: jax.Array, bits: int) -> jax.Array:
    """The ``k``-th smallest (0-based) of the non-negative integer ``keys`` (a radix select, no sort).

    ``bits`` is the number of value bits (31 or 63). Pass ``i`` histograms the next 11 bits of the keys that
    share the prefix chosen so far and descends into the bucket holding the ``k``-th key: ``ceil(bits / 11)``
    passes over the keys (3 for float32, 6 for float64), in a ``fori_loop``.
    """
    int_dt = keys.dtype
    passes = -(-bits // _RADIX)
    size = 1 << _RADIX

    def one_pass(i: jax.Array, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        prefix, rank = carry
        shift = ((passes - 1 - i) * _RADIX).astype(int_dt)
        upper = shift + _RADIX
        same = jnp.logical_or(upper >= bits, (keys >> upper) == (prefix >> upper))
        digit = ((keys >> shift) & (size - 1)).astype(jnp.int32)
        hist = jnp.zeros([size], jnp.int32).at[digit].add(same.astype(jnp.int32))
        cum = jnp.cumsum(hist)
        d = jnp.sum((cum <= rank).astype(jnp.int32))  # the bucket holding the rank-th key
        rank = rank - jnp.where(d > 0, cum[jnp.maximum(d - 1, 0)], 0)
        return prefix | (d.astype(int_dt) << shift), rank

    prefix, _ = jax.lax.fori_loop(0, passes, one_pass, (jnp.zeros([], int_dt), k.astype(jnp.int32)))
    return cast(jax.Array, prefix)


def _effective_lr(grads: Any, out: Any, dt: np.dtype) -> tuple[jax.Array, jax.Array, jax.Array]:
    """min, median and max of ``|u_i| / |g_i|`` over the elements with ``g_i != 0`` (NaN when there are none)."""
    int_dt, bits = (jnp.int64, 63) if dt.itemsize == 8 else (jnp.int32, 31)
    invalid = jnp.asarray(np.iinfo(int_dt).max, int_dt)
    parts = [_keys(g, u, dt, int_dt, invalid) for g, u in zip(jax.tree.leaves(grads), jax.tree.leaves(out))]
    parts = [k for k in parts if k.size]
    nan = jnp.full([], jnp.nan, dt)
    if not parts:
        return nan, nan, nan
    keys = jnp.concatenate(parts) if len(parts) > 1 else parts[0]
    ok = keys != invalid
    n = jnp.sum(ok.astype(jnp.int32))
    k1 = jnp.maximum((n - 1) // 2, 0)
    even = n % 2 == 0
    if keys.size <= _SORT_BELOW:  # small trees: a sort is as fast and compiles in a fraction of the time
        s = jnp.sort(keys)  # the invalid keys (the largest integer) last
        lo, hi = s[0], s[jnp.maximum(n - 1, 0)]
        key1, key2 = s[k1], s[jnp.where(even, jnp.minimum(k1 + 1, keys.size - 1), k1)]
    else:
        # Materialise the keys once: without the barrier XLA may fuse tx's whole update into every pass.
        keys = jax.lax.optimization_barrier(keys)  # type: ignore[no-untyped-call]  # unannotated in JAX
        ok = keys != invalid
        lo, hi = jnp.min(keys), jnp.max(jnp.where(ok, keys, -1))
        key1 = _kth_smallest(keys, k1, bits)
        # The next order statistic (for an even count): key1 again if it repeats, else the smallest key above it.
        at_most = jnp.sum((keys <= key1).astype(jnp.int32))
        above = jnp.min(jnp.where(keys > key1, keys, invalid))
        key2 = jnp.where(jnp.logical_or(~even, at_most >= k1 + 2), key1, above)

    def value(key: jax.Array) -> jax.Array:
        return jnp.where(n == 0, nan, jax.lax.bitcast_convert_type(key, dt))

    half = jnp.asarray(0.5, dt)
    return value(lo), value(key1) * half + value(key2) * half, value(hi)


def _ratio(num: jax.Array, den: jax.Array) -> jax.Array:
    """``num / den`` as IEEE division: ``inf`` for a zero parameter norm, NaN for ``0 / 0`` or NaN params."""
    return num / den


# --------------------------------------------------------------------------------------------------
# The wrapper.
# --------------------------------------------------------------------------------------------------


@pytree_class
class monitored(GradientTransformation):
    """``tx`` with metrics of every step recorded in its state (see the module docstring for the list).

    ``history`` (an int >= 1): the length of each metric's ring buffer; ``effective_lr``: record the min,
    median and max of ``|u_i| / |g_i|`` (the median costs a few passes over the parameters);
    ``per_group``: record the update/param ratio of each top-level parameter group. Updates and ``tx``'s
    state are bit for bit those of ``tx`` alone; extra keyword arguments reach ``tx``. Read the metrics
    with :func:`metrics`, which finds the :class:`MonitoredState` anywhere in a larger state. gradtx's;
    Optax has no counterpart (``optax.monitor`` records user-given measures, as :func:`gradtx.monitor`).

    Args:
      tx: the transformation to monitor (anything with ``init`` and ``update``). Required.
      history: the length of each metric's ring buffer, an int >= 1 (static: it is a shape). Default 100.
      effective_lr: record the min, median and max of ``|u_i| / |g_i|`` (the costly part). Default True.
      per_group: record ``update_param_ratio/<group>`` for each top-level parameter group. Default True.

    Raises:
      ValueError: at construction, for a ``history`` that is not a whole number >= 1
        (``monitored(history=0): history must be a whole number >= 1``).
      TypeError: for a ``tx`` without ``init`` and ``update`` (``monitored: expected a transformation with
        init and update, got 3``) or a flag that is not a bool.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.diagnostics.monitored(gradtx.sgd(learning_rate=0.1))
      >>> params = {"w": jnp.array([3.0, 4.0])}
      >>> state = opt.init(params)
      >>> updates, state = opt.update({"w": jnp.array([0.6, 0.8])}, state, params)
      >>> m = gradtx.diagnostics.metrics(state)
      >>> print(float(m["grad_norm"]), float(m["update_param_ratio"]), float(m["effective_lr_median"]))
      1.0 0.02 0.1
    """

    # refused on a gradtx.flat.FlatTree (see GradientTransformation)
    leaf_structured = "its metrics are per leaf and per parameter group"

    tx: TransformationLike = option(accepts="a transformation (anything with init and update)")
    history: int = integer(default=100, lo=1, static=True)
    effective_lr: bool = flag(default=True)
    per_group: bool = flag(default=True)

    def __check_init__(self) -> None:
        object.__setattr__(self, "tx", as_transformation(self.tx, "monitored"))
        object.__setattr__(self, "history", int(self.history))  # a shape: 100.0 or np.int64(100) as the int 100

    @property
    def inner(self) -> GradientTransformation:
        """The wrapped transformation (``tx``), under the name other wrappers use."""
        return cast(GradientTransformation, self.tx)  # made one by __check_init__

    def _clips(self) -> bool:
        return bool(_clip_blocks(self.tx))

    def _names(self, params: Any) -> list[str]:
        names = ["grad_norm", "update_norm", "param_norm", "update_param_ratio"]
        if self.per_group:
            names += [_GROUP + g for g in _groups(params)]
        if self.effective_lr:
            names += list(_EFFECTIVE)
        if self._clips():
            names += list(_CLIP)
        return names

    def init(self, params: Params) -> MonitoredState:
        inner_state = self.tx.init(params)
        if isinstance(params, tree.ParamsMarker):  # tree.map_params asks which parts mirror the params: none
            clipped: Any = zero_count() if self._clips() else None
            return MonitoredState(zero_count(), inner_state, 0, 0, clipped)  # type: ignore[arg-type]
        dt = widest_real_dtype(params)
        names = self._names(params)
        return MonitoredState(
            count=zero_count(),
            inner_state=inner_state,
            last={n: jnp.full([], jnp.nan, dt) for n in names},
            history={n: jnp.full([self.history], jnp.nan, dt) for n in names},
            clipped_steps=zero_count() if self._clips() else None,
        )

    def update(
        self, updates: Updates, state: MonitoredState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, MonitoredState]:
        out, inner_state, clipped = _run(self.tx, updates, state.inner_state, params, extra)
        some = next(iter(state.last.values()))
        dt = np.dtype(some.dtype)
        nan = jnp.full([], jnp.nan, dt)
        count = safe_int32_increment(state.count)

        g_norm, _ = _norms(updates, dt)
        u_norm, u_groups = _norms(out, dt)
        values: dict[str, jax.Array] = {"grad_norm": g_norm, "update_norm": u_norm}
        if params is None:
            values["param_norm"] = nan
            p_groups: dict[str, jax.Array] = {}
        else:
            values["param_norm"], p_groups = _norms(params, dt)
        values["update_param_ratio"] = _ratio(values["update_norm"], values["param_norm"])
        for name in state.last:
            if name.startswith(_GROUP):
                g = name[len(_GROUP) :]
                if g in u_groups and g in p_groups:
                    values[name] = _ratio(u_groups[g], p_groups[g])
                else:
                    values[name] = nan
        # for mypy: jaxlib ships no stubs, so PyTreeDef is unresolved (the ignore below)
        if self.effective_lr and jax.tree.structure(updates) == jax.tree.structure(out):  # type: ignore[operator]
            values.update(zip(_EFFECTIVE, _effective_lr(updates, out, dt)))  # else NaN: no element-wise pairing
        clipped_steps = state.clipped_steps
        if clipped is not None and clipped_steps is not None:
            clipped_steps = jnp.where(clipped, safe_int32_increment(clipped_steps), clipped_steps)
            values["clipped"] = clipped.astype(dt)
            values["clip_fraction"] = clipped_steps.astype(dt) / count.astype(dt)

        last = {n: values.get(n, nan).astype(dt) for n in state.last}
        slot = state.count % self.history
        history = {n: state.history[n].at[slot].set(last[n]) for n in state.history}
        return out, MonitoredState(count, inner_state, last, history, clipped_steps)

    def __repr__(self) -> str:
        return (
            f"monitored({self.tx!r}, history={self.history}, effective_lr={self.effective_lr}, "
            f"per_group={self.per_group})"
        )


# --------------------------------------------------------------------------------------------------
# Reading states.
# --------------------------------------------------------------------------------------------------


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, (tuple, list)):
        return list(node)
    return [v for _, v in _data_fields(node)]


def _find_monitored(state: Any) -> MonitoredState | None:
    """The outermost (shallowest, then first) :class:`MonitoredState` in ``state``, breadth first."""
    level = [state]
    while level:
        for node in level:
            if isinstance(node, MonitoredState):
                return node
        level = [c for node in level for c in _children(node)]
    return None


def metrics(state: OptState) -> dict[str, jax.Array]:
    """The metrics of the outermost :class:`MonitoredState` in ``state`` (any optimizer state containing one).

    Returns the current values by name (``grad_norm``, ``update_norm``, ``param_norm``, ``update_param_ratio``,
    ``update_param_ratio/<group>``, ``effective_lr_min``/``_median``/``_max``, ``clipped``, ``clip_fraction``,
    as recorded; NaN before the first update) plus ``step`` (int32, the number of updates) and, for each
    metric, ``history/<name>``: its last ``history`` values, oldest first and the latest last, NaN where not
    filled yet (the first ``history - step`` entries), so position ``j`` always holds update
    ``step - history + 1 + j``; and ``history/step``: that 1-based update number (NaN where not filled).
    Pure ``jnp``: works inside ``jit``.

    Args:
      state: an optimizer state holding a :class:`MonitoredState` (at any depth: a chain's, a wrapper's).

    Returns:
      ``{name: array}``: the current metrics, ``step``, and the ``history/<name>`` buffers in order.

    Raises:
      ValueError: when ``state`` holds no ``MonitoredState`` (``metrics: the state holds no MonitoredState;
        wrap the optimizer in monitored(...)``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.diagnostics.monitored(gradtx.sgd(0.1), history=3)
      >>> params = jnp.array([3.0, 4.0])
      >>> state = opt.init(params)
      >>> _, state = opt.update(jnp.array([0.6, 0.8]), state, params)
      >>> m = gradtx.diagnostics.metrics(state)
      >>> print(int(m["step"]), float(m["update_norm"]), m["history/grad_norm"], m["history/step"])
      1 0.1 [nan nan  1.] [nan nan  1.]
    """
    m = _find_monitored(state)
    if m is None:
        raise ValueError("metrics: the state holds no MonitoredState; wrap the optimizer in monitored(...)")
    out: dict[str, jax.Array] = {"step": m.count}
    out.update(m.last)
    if not m.history:
        return out
    some = next(iter(m.history.values()))
    size, dt = some.shape[0], some.dtype
    count = jnp.asarray(m.count).astype(jnp.int32)
    j = jnp.arange(size, dtype=jnp.int32)
    order = (j + count) % size  # position j holds update count - size + 1 + j (slot (that - 1) % size)
    for name, buf in m.history.items():
        out["history/" + name] = buf[order]
    steps = count - size + 1 + j
    out["history/step"] = jnp.where(steps >= 1, steps.astype(dt), jnp.full([], jnp.nan, dt))
    return out


def _key_name(entry: Any) -> str | None:
    name = getattr(entry, "name", None)
    return name if isinstance(entry, jax.tree_util.GetAttrKey) else None


def step_count(state: OptState) -> jax.Array:
    """The number of optimizer updates ``state`` has seen, found without indexing by hand.

    The rule: the ``count`` of the outermost :class:`MonitoredState` if there is one (the number of
    ``update`` calls of the monitored transformation); otherwise the largest of the integer scalar leaves
    whose path ends in a field (NamedTuple or dataclass attribute) named ``count`` or ``gradient_step``
    (Adam's count, a schedule's count, ``MultiSteps``'s number of emitted updates, ...; the largest because
    a wrapper that skips or accumulates steps holds its inner states back).

    Args:
      state: an optimizer state (any pytree of states).

    Returns:
      The number of updates, an integer scalar array (int32 unless a count is wider).

    Raises:
      ValueError: when ``state`` holds neither a ``MonitoredState`` nor an integer scalar field named
        ``count`` or ``gradient_step`` (a stateless optimizer such as ``sgd(0.1)``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.adam(learning_rate=0.1)
      >>> state = opt.init(jnp.zeros(2))
      >>> _, state = opt.update(jnp.ones(2), state)
      >>> print(int(gradtx.diagnostics.step_count(state)))
      1
    """
    m = _find_monitored(state)
    if m is not None:
        return jnp.asarray(m.count)
    found = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        if not path or _key_name(path[-1]) not in ("count", "gradient_step"):
            continue
        if jnp.ndim(leaf) == 0 and jnp.issubdtype(jnp.result_type(leaf), jnp.integer):
            found.append(jnp.asarray(leaf))
    if not found:
        raise ValueError("step_count: no MonitoredState and no integer scalar field named 'count' or 'gradient_step'")
    dt = np.dtype(np.int32)
    for x in found:
        dt = np.promote_types(dt, np.dtype(x.dtype))
    out = found[0].astype(dt)
    for x in found[1:]:
        out = jnp.maximum(out, x.astype(dt))
    return out


# --------------------------------------------------------------------------------------------------
# Hyperparameters.
# --------------------------------------------------------------------------------------------------


def _field(state: Any, name: str) -> Any:
    """``state.<name>`` if ``state`` is a NamedTuple or dataclass with that field (not a tuple's method), else None."""
    if isinstance(state, tuple):
        return getattr(state, name) if name in getattr(type(state), "_fields", ()) else None
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return getattr(state, name, None) if name in {f.name for f in dataclasses.fields(state)} else None
    return None


def _int_field(state: Any, names: tuple[str, ...]) -> jax.Array | None:
    for name in names:
        v = _field(state, name)
        scalar = v is not None and not isinstance(v, (dict, tuple, list)) and jnp.ndim(v) == 0
        if scalar and jnp.issubdtype(jnp.result_type(v), jnp.integer):
            return jnp.asarray(v)
    return None


_INNER_STATE_FIELDS = ("inner_state", "inner_opt_state", "fast_state")

# What the walk below reports each hyperparameter to: ``emit(path, field, value)``.
_Emit = Callable[[tuple[str, ...], str, Any], None]


def _is_number(x: Any) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return False
    if isinstance(x, (int, float, np.number)):
        return True
    return isinstance(x, (np.ndarray, jax.Array)) and jnp.issubdtype(jnp.result_type(x), jnp.number)


def _collect(opt: Any, state: Any, path: tuple[str, ...], count: jax.Array | None, emit: _Emit) -> None:
    """Walk ``opt`` and its ``state`` together, emitting ``(path, field, value)`` for each hyperparameter."""
    if isinstance(_field(state, "hyperparams"), dict):
        for name, value in state.hyperparams.items():  # inject_hyperparams: the values of the last update
            if _is_number(value):
                emit(path, name, jnp.asarray(value))
        return
    own = _int_field(state, ("count", "gradient_step"))
    count = own if own is not None else count
    steps = _sequence(opt, state) if state is not None else None
    if steps is None and getattr(opt, "transforms", None) is not None and isinstance(opt.transforms, tuple):
        steps = [(i, t, None) for i, t in enumerate(opt.transforms)]  # a chain whose state is not at hand
    if steps is not None:
        for key, t, s in steps:
            _collect(t, s, (*path, str(key)), count, emit)
        for name, value in _data_fields(opt):
            if name != "transforms":
                _leaf(name, value, path, count, emit)
        return
    inner_states = _field(state, "inner_states")
    for name, value in _data_fields(opt):
        if isinstance(value, dict) and value and all(isinstance(v, GradientTransformation) for v in value.values()):
            for label, t in value.items():  # partition: {label: MaskedState(inner_state)}
                s = inner_states.get(label) if name == "transforms" and isinstance(inner_states, dict) else None
                s = _field(s, "inner_state")
                _collect(t, s, (*path, str(label)), count, emit)
        elif isinstance(value, GradientTransformation):
            s = next((_field(state, f) for f in _INNER_STATE_FIELDS if _field(state, f) is not None), None)
            _collect(value, s, path, count, emit)
        else:
            _leaf(name, value, path, count, emit)


def _leaf(name: str, value: Any, path: tuple[str, ...], count: jax.Array | None, emit: _Emit) -> None:
    """Emit a numeric field, or a schedule evaluated at the count it was last used with."""
    if isinstance(value, GradientTransformation):
        return
    if callable(value):
        c = jnp.zeros([], jnp.int32) if count is None else count
        used = jnp.maximum(c - 1, jnp.zeros([], c.dtype))  # the count of the latest update (0 before any)
        v = value(used)
        if _is_number(v):
            emit(path, name, jnp.asarray(v))
    elif _is_number(value):
        emit(path, name, jnp.asarray(value))


def current_hyperparams(opt: TransformationLike, state: OptState) -> dict[str, jax.Array]:
    """Every numeric hyperparameter of ``opt``, schedules evaluated at the count they were last used with.

    ``opt`` is a gradtx transformation (a tree of dataclasses whose data fields are hyperparameters) and
    ``state`` its state (``opt.init`` or later). A schedule field is evaluated at ``max(count - 1, 0)``, with
    ``count`` the step count in the block's own state (its ``count`` or ``gradient_step`` field, else the
    nearest enclosing one): the value the latest update used, and before the first update the value the first
    will use (blocks call ``schedule(count)`` and then increment ``count``). Under ``inject_hyperparams`` (a
    state with a ``hyperparams`` dict, Optax's included) the recorded values are returned.

    Keys: the path of chain positions, ``named_chain`` names and ``partition`` labels, then the field, joined
    by dots (``"1.learning_rate"``, ``"adam.b1"``, ``"sgd.0.learning_rate"``); wrappers (``masked``,
    ``MultiSteps``, ``apply_if_finite``, ``monitored``, ...) add no component. A field name that occurs once in
    the whole tree is also a key on its own (``"learning_rate"``). Opt and state are walked together by duck
    typing: a chain's tuple state, a named chain's dict, ``inner_states`` (partition), ``inner_state``,
    ``inner_opt_state`` (``MultiSteps``) and ``fast_state`` (lookahead). Foreign (Optax) transformations
    held inside gradtx ones are opaque. Pure ``jnp``: works inside ``jit``.

    Args:
      opt: the transformation, as built (a gradtx transformation; Optax's are opaque).
      state: its state, from ``opt.init`` or a later ``opt.update``.

    Returns:
      ``{key: scalar array}`` of every numeric hyperparameter, keyed by path and, where unique, by field name.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> opt = gradtx.adam(learning_rate=gradtx.schedules.linear_schedule(0.1, 0.0, transition_steps=10))
      >>> state = opt.init(jnp.zeros(2))
      >>> for _ in range(2):
      ...     _, state = opt.update(jnp.ones(2), state)
      >>> hp = gradtx.diagnostics.current_hyperparams(opt, state)
      >>> print(float(hp["learning_rate"]), float(hp["0.b1"]))  # the rate the second update used
      0.09 0.9
    """
    found: list[tuple[tuple[str, ...], str, jax.Array]] = []
    _collect(opt, state, (), None, lambda p, n, v: found.append((p, n, v)))
    out: dict[str, jax.Array] = {}
    for p, n, v in found:
        out[".".join((*p, n))] = v
    names = [n for _, n, _ in found]
    for _, n, v in found:
        if names.count(n) == 1 and n not in out:
            out[n] = v
    return out
