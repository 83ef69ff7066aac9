"""Registry entries for the combinators (gradtx.combine): masked, partition, freeze, selective_transform and
the conditional wrappers, built on default_params' tree (keys w, b, nested{s, none}, t).

Entries with ``uses_mask=True`` select exactly what ``WD_MASK`` selects (w and t), so their references receive
``flat_mask(params)`` and apply the inner reference to those coordinates.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from registry import MASK, WD_MASK, Call, Entry, Sides

import gradtx
from gradtx import combine
from gradtx.combine import masked, partition
from gradtx.testing import reference as ref
from gradtx.testing.contract import default_params
from gradtx.testing.reference import combine as rc

# Labels selecting what WD_MASK selects: "adam" on w and t, "sgd" on b and nested.s.
LABELS = {"w": "adam", "b": "sgd", "nested": {"s": "sgd", "none": None}, "t": ("adam",)}
# A mask finer than WD_MASK for the inner block of a nested masked: within what WD_MASK passes, only w.
INNER_MASK = {"w": True, "b": True, "nested": {"s": True, "none": None}, "t": (False,)}


def top_keys_w_t(params: Any) -> dict[str, bool]:
    """A callable prefix mask: True for the top-level keys w and t (what WD_MASK selects)."""
    return {k: k in ("w", "t") for k in params}


def labels_fn(params: Any) -> dict[str, str]:
    """Callable prefix labels: "adam" for w and t, "sgd" for the rest."""
    return {k: "adam" if k in ("w", "t") else "sgd" for k in params}


def every_third(step: Any) -> Any:
    """The condition of the conditional entries: steps 0, 3, 6, ..."""
    return step % 3 == 0


def from_step_five(step: Any) -> Any:
    return step >= 5


def flat(mask_tree: Any) -> np.ndarray:
    """A boolean tree over default_params (full structure) raveled like ``ravel_pytree(params)``."""
    params = default_params(jnp.float64)
    expanded = jax.tree.map(lambda m, p: jnp.full(jnp.shape(p), m, bool), mask_tree, params)
    return np.asarray(ravel_pytree(expanded)[0], bool)


def _nested_ref(mask: np.ndarray) -> Any:
    inner = flat(INNER_MASK)[mask]  # the inner mask over the coordinates the outer one passes
    return rc.masked(rc.masked(ref.scale_by_adam(), inner), mask)


def _labels(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, "adam", "sgd")


same = Sides((combine, gradtx), (rc, ref), (optax,)).same

# conditionally_mask zeroes the updates of the steps it skips and keeps the inner state: a NaN gradient on such a
# step vanishes by design, so the fuzz makes no claim about non-finite gradients for it.
SKIPPED_STEPS_ZEROED = "any"

ENTRIES = [
    same("masked(scale_by_adam)", "masked", Call("scale_by_adam"), MASK, leaf_structured=True),
    Entry("masked(add_decayed_weights, callable mask)", lambda: masked(gradtx.add_decayed_weights(0.1), top_keys_w_t),
          lambda mask=None: rc.masked(ref.add_decayed_weights(0.1), mask),
          lambda: optax.masked(optax.add_decayed_weights(0.1), top_keys_w_t), needs_params=True, uses_mask=True,
          leaf_structured=True),
    same("masked(chain(clip_by_global_norm, trace))", "masked",
         Call("chain", Call("clip_by_global_norm", 1.0), Call("trace", 0.9)), MASK, leaf_structured=True),
    Entry("masked(masked(scale_by_adam))", lambda: masked(masked(gradtx.scale_by_adam(), INNER_MASK), WD_MASK),
          _nested_ref, lambda: optax.masked(optax.masked(optax.scale_by_adam(), INNER_MASK), WD_MASK),
          uses_mask=True, leaf_structured=True),
    Entry("partition(labels tree)",
          lambda: partition({"adam": gradtx.scale_by_adam(), "sgd": gradtx.trace(0.9)}, LABELS),
          lambda mask=None: rc.partition({"adam": ref.scale_by_adam(), "sgd": ref.trace(0.9)}, _labels(mask)),
          lambda: optax.partition({"adam": optax.scale_by_adam(), "sgd": optax.trace(0.9)}, LABELS), uses_mask=True,
          leaf_structured=True),
    Entry("partition(labels callable)",
          lambda: partition({"adam": gradtx.adam(1e-2), "sgd": gradtx.sgd(0.1, 0.9)}, labels_fn),
          lambda mask=None: rc.partition({"adam": ref.adam(1e-2), "sgd": ref.sgd(0.1, 0.9)}, _labels(mask)),
          lambda: optax.partition({"adam": optax.adam(1e-2), "sgd": optax.sgd(0.1, 0.9)}, labels_fn),
          uses_mask=True, leaf_structured=True),
    same("freeze", "freeze", MASK, leaf_structured=True),
    same("selective_transform(adamw)", "selective_transform", Call("adamw", 1e-2, weight_decay=0.1),
         freeze_mask=MASK, needs_params=True, leaf_structured=True),
    same("conditionally_transform(scale_by_adam, every third)", "conditionally_transform", Call("scale_by_adam"),
         every_third),
    same("conditionally_mask(trace, every third)", "conditionally_mask", Call("trace", 0.9), every_third,
         nonfinite=SKIPPED_STEPS_ZEROED),
    same("conditionally_mask(chain(clip_by_global_norm, adam), from step 5)", "conditionally_mask",
         Call("chain", Call("clip_by_global_norm", 1.0), Call("adam", 1e-2)), from_step_five,
         nonfinite=SKIPPED_STEPS_ZEROED),
]
