"""One registry of every transformation, driving the oracle, contract and Optax cross-check tiers.

Each entry builds the gradtx transformation, its float64 NumPy reference (``gradtx.testing.reference``) and,
where Optax has the same thing, the Optax transformation. Capabilities are fields, never skip lists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
import optax

import gradtx
from gradtx import schedules
from gradtx.testing import reference as ref

WD_MASK = {"w": True, "b": False, "nested": {"s": False, "none": None}, "t": (True,)}


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registry entry. ``ref`` builds the float64 reference (``step(g, params=None, **extra)``)."""

    name: str
    make: Callable[[], Any]
    ref: Callable[..., Any] | None = None
    optax: Callable[[], Any] | None = None
    needs_params: bool = False
    uses_mask: bool = False  # built for default_params' structure (WD_MASK); the reference needs it flat
    kind: str = "block"  # block | optimizer
    extra_args: dict[str, Any] | None = None  # keyword arguments every update receives (e.g. value=...)
    complex_ok: bool = False  # supports complex parameters (the same conjugation convention as Optax)
    rtol64: float = 1e-9  # tolerance against the reference in float64
    steps: int = 200  # steps against the reference and Optax
    per_leaf: bool = False  # the reference's step takes and returns {leaf path: float64 array}
    nonfinite: str = "propagate"  # a NaN/Inf gradient: "propagate" (reaches updates or state), "guard", "any"
    no_fuzz: bool = False  # excluded from the hypothesis fuzz test (say why where it is set)
    # The flat path (gradtx.flat.pack) does not reproduce the per-leaf run: the transformation keeps or uses
    # per-leaf statistics (trust ratios, factored moments, per-leaf norms or flags, one random key per leaf) or
    # a mask/partition written for the original tree. tests/test_flat.py asserts that such entries do differ.
    leaf_structured: bool = False

    def __repr__(self) -> str:
        return self.name


def _sched() -> Any:
    return schedules.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


def _ref_sched() -> Any:
    return ref.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


def _opt_sched() -> Any:
    return optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)


OPT = "optimizer"

ENTRIES: list[Entry] = [
    # --- blocks ---------------------------------------------------------------------------------------
    Entry("identity", gradtx.identity, ref.identity, optax.identity),
    Entry("set_to_zero", gradtx.set_to_zero, ref.set_to_zero, optax.set_to_zero, nonfinite="guard"),
    Entry("scale", lambda: gradtx.scale(0.5), lambda: ref.scale(0.5), lambda: optax.scale(0.5)),
    Entry("scale_by_learning_rate", lambda: gradtx.scale_by_learning_rate(0.1),
          lambda: ref.scale_by_learning_rate(0.1), lambda: optax.scale_by_learning_rate(0.1)),
    Entry("scale_by_learning_rate(schedule)", lambda: gradtx.scale_by_learning_rate(_sched()),
          lambda: ref.scale_by_learning_rate(_ref_sched()), lambda: optax.scale_by_learning_rate(_opt_sched())),
    Entry("scale_by_learning_rate(flip_sign=False)", lambda: gradtx.scale_by_learning_rate(0.1, flip_sign=False),
          lambda: ref.scale_by_learning_rate(0.1, flip_sign=False),
          lambda: optax.scale_by_learning_rate(0.1, flip_sign=False)),
    Entry("scale_by_schedule", lambda: gradtx.scale_by_schedule(schedules.exponential_decay(1.0, 10, 0.5)),
          lambda: ref.scale_by_schedule(ref.exponential_decay(1.0, 10, 0.5)),
          lambda: optax.scale_by_schedule(optax.exponential_decay(1.0, 10, 0.5))),
    Entry("trace", lambda: gradtx.trace(0.9), lambda: ref.trace(0.9), lambda: optax.trace(0.9)),
    Entry("trace(nesterov)", lambda: gradtx.trace(0.8, nesterov=True), lambda: ref.trace(0.8, nesterov=True),
          lambda: optax.trace(0.8, nesterov=True)),
    Entry("ema", lambda: gradtx.ema(0.9), lambda: ref.ema(0.9), lambda: optax.ema(0.9)),
    Entry("ema(debias=False)", lambda: gradtx.ema(0.7, debias=False), lambda: ref.ema(0.7, debias=False),
          lambda: optax.ema(0.7, debias=False)),
    Entry("bias_correction", lambda: gradtx.bias_correction(0.95), lambda: ref.bias_correction(0.95)),
    Entry("scale_by_rms", gradtx.scale_by_rms, ref.scale_by_rms, optax.scale_by_rms),
    Entry("scale_by_rms(bias_correction, eps outside)",
          lambda: gradtx.scale_by_rms(0.99, 1e-6, eps_in_sqrt=False, bias_correction=True),
          lambda: ref.scale_by_rms(0.99, 1e-6, eps_in_sqrt=False, bias_correction=True),
          lambda: optax.scale_by_rms(0.99, 1e-6, eps_in_sqrt=False, bias_correction=True)),
    Entry("scale_by_rms(initial_scale)", lambda: gradtx.scale_by_rms(0.9, 1e-8, initial_scale=1.0),
          lambda: ref.scale_by_rms(0.9, 1e-8, initial_scale=1.0),
          lambda: optax.scale_by_rms(0.9, 1e-8, initial_scale=1.0)),
    Entry("scale_by_rms(decay=None)", lambda: gradtx.scale_by_rms(None, 1e-8),
          lambda: ref.scale_by_rms(None, 1e-8)),
    Entry("scale_by_rms(init_from_first)", lambda: gradtx.scale_by_rms(0.9, 1e-8, init_from_first=True),
          lambda: ref.scale_by_rms(0.9, 1e-8, init_from_first=True)),
    Entry("scale_by_rss", gradtx.scale_by_rss, ref.scale_by_rss, optax.scale_by_rss),
    Entry("scale_by_rss(0 init)", lambda: gradtx.scale_by_rss(0.0, 1e-7), lambda: ref.scale_by_rss(0.0, 1e-7),
          lambda: optax.scale_by_rss(0.0, 1e-7)),
    Entry("scale_by_stddev", lambda: gradtx.scale_by_stddev(0.9, 1e-3), lambda: ref.scale_by_stddev(0.9, 1e-3),
          lambda: optax.scale_by_stddev(0.9, 1e-3)),
    Entry("scale_by_stddev(bias_correction)",
          lambda: gradtx.scale_by_stddev(0.9, 1.0, bias_correction=True),
          lambda: ref.scale_by_stddev(0.9, 1.0, bias_correction=True),
          lambda: optax.scale_by_stddev(0.9, 1.0, bias_correction=True)),
    Entry("scale_by_stddev(eps outside)", lambda: gradtx.scale_by_stddev(0.9, 1e-3, 0.5, eps_in_sqrt=False),
          lambda: ref.scale_by_stddev(0.9, 1e-3, 0.5, eps_in_sqrt=False),
          lambda: optax.scale_by_stddev(0.9, 1e-3, 0.5, eps_in_sqrt=False)),
    Entry("scale_by_adam", gradtx.scale_by_adam, ref.scale_by_adam, optax.scale_by_adam),
    Entry("scale_by_adam(nesterov, eps_root)", lambda: gradtx.scale_by_adam(0.8, 0.99, 1e-6, 1e-8, nesterov=True),
          lambda: ref.scale_by_adam(0.8, 0.99, 1e-6, 1e-8, nesterov=True),
          lambda: optax.scale_by_adam(0.8, 0.99, 1e-6, 1e-8, nesterov=True)),
    Entry("scale_by_sign", gradtx.scale_by_sign, ref.scale_by_sign, optax.scale_by_sign),
    Entry("clip", lambda: gradtx.clip(0.5), lambda: ref.clip(0.5), lambda: optax.clip(0.5)),
    Entry("clip_by_global_norm", lambda: gradtx.clip_by_global_norm(2.0), lambda: ref.clip_by_global_norm(2.0),
          lambda: optax.clip_by_global_norm(2.0)),
    Entry("add_decayed_weights", lambda: gradtx.add_decayed_weights(0.1), lambda: ref.add_decayed_weights(0.1),
          lambda: optax.add_decayed_weights(0.1), needs_params=True),
    Entry("add_decayed_weights(mask)", lambda: gradtx.add_decayed_weights(0.1, WD_MASK),
          lambda mask=None: ref.add_decayed_weights(0.1, mask=mask), lambda: optax.add_decayed_weights(0.1, WD_MASK),
          needs_params=True, uses_mask=True),
    # --- optimizers -----------------------------------------------------------------------------------
    Entry("sgd", lambda: gradtx.sgd(0.1), lambda: ref.sgd(0.1), lambda: optax.sgd(0.1), kind=OPT),
    Entry("sgd(momentum)", lambda: gradtx.sgd(0.1, 0.9), lambda: ref.sgd(0.1, 0.9), lambda: optax.sgd(0.1, 0.9),
          kind=OPT),
    Entry("sgd(nesterov, schedule)", lambda: gradtx.sgd(_sched(), 0.9, nesterov=True),
          lambda: ref.sgd(_ref_sched(), 0.9, nesterov=True), lambda: optax.sgd(_opt_sched(), 0.9, nesterov=True),
          kind=OPT),
    Entry("adagrad", lambda: gradtx.adagrad(0.1), lambda: ref.adagrad(0.1), lambda: optax.adagrad(0.1), kind=OPT),
    Entry("rmsprop", lambda: gradtx.rmsprop(0.01), lambda: ref.rmsprop(0.01), lambda: optax.rmsprop(0.01), kind=OPT),
    Entry("rmsprop(centered, momentum)", lambda: gradtx.rmsprop(0.01, centered=True, eps=1e-3, momentum=0.9),
          lambda: ref.rmsprop(0.01, centered=True, eps=1e-3, momentum=0.9),
          lambda: optax.rmsprop(0.01, centered=True, eps=1e-3, momentum=0.9), kind=OPT),
    Entry("rmsprop(nesterov, bias_correction)",
          lambda: gradtx.rmsprop(0.01, momentum=0.5, nesterov=True, bias_correction=True),
          lambda: ref.rmsprop(0.01, momentum=0.5, nesterov=True, bias_correction=True),
          lambda: optax.rmsprop(0.01, momentum=0.5, nesterov=True, bias_correction=True), kind=OPT),
    Entry("rmsprop(decay=None)", lambda: gradtx.rmsprop(0.01, decay=None),
          lambda: ref.rmsprop(0.01, decay=None), kind=OPT),
    Entry("rmsprop(init_from_first)", lambda: gradtx.rmsprop(0.01, 0.9, init_from_first=True),
          lambda: ref.rmsprop(0.01, 0.9, init_from_first=True), kind=OPT),
    Entry("adam", lambda: gradtx.adam(1e-2), lambda: ref.adam(1e-2), lambda: optax.adam(1e-2), kind=OPT),
    Entry("adam(schedule)", lambda: gradtx.adam(_sched()), lambda: ref.adam(_ref_sched()),
          lambda: optax.adam(_opt_sched()), kind=OPT),
    Entry("adamw", lambda: gradtx.adamw(1e-2, weight_decay=0.1), lambda: ref.adamw(1e-2, weight_decay=0.1),
          lambda: optax.adamw(1e-2, weight_decay=0.1), needs_params=True, kind=OPT),
    Entry("adamw(mask)", lambda: gradtx.adamw(1e-2, weight_decay=0.1, mask=WD_MASK),
          lambda mask=None: ref.adamw(1e-2, weight_decay=0.1, mask=mask),
          lambda: optax.adamw(1e-2, weight_decay=0.1, mask=WD_MASK),
          needs_params=True, uses_mask=True, kind=OPT),
    Entry("nadam", lambda: gradtx.nadam(1e-2), lambda: ref.nadam(1e-2), lambda: optax.nadam(1e-2), kind=OPT),
    Entry("nadamw", lambda: gradtx.nadamw(1e-2, weight_decay=0.1), lambda: ref.nadamw(1e-2, weight_decay=0.1),
          lambda: optax.nadamw(1e-2, weight_decay=0.1), needs_params=True, kind=OPT),
]

# Foundation entries that support complex parameters (Optax's convention: |g|^2 = g * conj(g)).
COMPLEX_OK = {
    "identity",
    "set_to_zero",
    "scale",
    "scale_by_learning_rate",
    "scale_by_learning_rate(schedule)",
    "trace",
    "trace(nesterov)",
    "ema",
    "ema(debias=False)",
    "scale_by_rms",
    "scale_by_rms(bias_correction, eps outside)",
    "scale_by_rms(initial_scale)",
    "scale_by_rss",
    "scale_by_rss(0 init)",
    "scale_by_stddev",
    "scale_by_adam",
    "scale_by_adam(nesterov, eps_root)",
    "clip_by_global_norm",
    "add_decayed_weights",
    "sgd",
    "sgd(momentum)",
    "sgd(nesterov, schedule)",
    "adagrad",
    "rmsprop",
    "rmsprop(centered, momentum)",
    "adam",
    "adam(schedule)",
    "adamw",
    "nadam",
    "nadamw",
    "bias_correction",
    "scale_by_rms(decay=None)",
    "scale_by_rms(init_from_first)",
    "rmsprop(decay=None)",
    "rmsprop(init_from_first)",
}
ENTRIES[:] = [dataclasses.replace(e, complex_ok=True) if e.name in COMPLEX_OK else e for e in ENTRIES]


def _collect_family_registries() -> None:
    """Append the ENTRIES of every tests/registry_<family>.py (one file per family of blocks)."""
    import importlib
    from pathlib import Path

    for path in sorted(Path(__file__).parent.glob("registry_*.py")):
        ENTRIES.extend(importlib.import_module(path.stem).ENTRIES)


_collect_family_registries()

# Entries whose flat run (gradtx.flat.pack: one buffer per dtype) legitimately differs from the per-leaf run;
# tests/test_flat.py checks that every other entry gives the per-leaf result and that these do differ.
LEAF_STRUCTURED = {
    # masks and partitions written for the original tree: they do not match a FlatTree (init raises)
    "add_decayed_weights(mask)", "adamw(mask)", "adamaxw(mask)", "adan(mask, eps_root=0)", "lamb(weight_decay, mask)",
    "lars(masks, nesterov)", "lion(schedule, mask)", "adadelta(schedule, mask)", "inject_hyperparams(adamw, mask)",
    "adafactor(schedule, momentum, weight decay, mask)", "masked(scale_by_adam)",
    "masked(add_decayed_weights, callable mask)",
    "masked(chain(clip_by_global_norm, trace))", "masked(masked(scale_by_adam))", "partition(labels tree)",
    "partition(labels callable)", "freeze", "selective_transform(adamw)",
    # trust ratios and per-leaf norms: one ratio or norm per buffer instead of per leaf
    "lamb", "lamb(schedule, eps_root)", "lars", "lars(schedule, weight_decay)", "fromage",
    "fromage(schedule, min_norm)",
    "scale_by_trust_ratio(trust_coefficient=0.5)", "scale_by_trust_ratio(min_norm, coefficient, eps)",
    "scale_by_param_block_norm", "scale_by_param_block_norm(min_scale)", "scale_by_param_block_rms",
    "scale_by_param_block_rms(min_scale)", "clip_by_block_rms", "adaptive_grad_clip", "adaptive_grad_clip(eps)",
    "centralize", "scale_by_novograd", "scale_by_novograd(all options)", "novograd", "novograd(schedule, wd)",
    "scale_by_distance_over_gradients", "scale_by_distance_over_gradients(param_dtype=None, global_scale)",
    # factored second moments (rows and columns of each matrix) and per-leaf update clipping
    "scale_by_factored_rms", "scale_by_factored_rms(min_dim_size_to_factor=3)", "scale_by_factored_rms(factored=False)",
    "scale_by_factored_rms(decay_rate, step_offset, epsilon)", "scale_by_factored_rms(decay_rate_fn)",
    "adafactor", "adafactor(lr, factored)",
    "adafactor(no clipping, no parameter scale, not factored, decay schedule)",  # state: per-leaf factored slots
    "scale_by_sm3", "scale_by_sm3(b1, b2 < 1)", "sm3", "sm3(momentum=None, schedule)",
    # one random key per leaf: the noise of a buffer is not the noise of its leaves
    "add_noise", "noisy_sgd",
    # per-leaf flags, metrics or placeholders in the state (the updates themselves agree)
    "zero_nans", "monitored(chain(clip_by_global_norm, sgd momentum))", "MultiSteps(adam, 1)",
}
ENTRIES[:] = [dataclasses.replace(e, leaf_structured=True) if e.name in LEAF_STRUCTURED else e for e in ENTRIES]
ENTRY_IDS = [e.name for e in ENTRIES]


def flat_mask(params: Any) -> np.ndarray:
    """WD_MASK expanded to the flat layout of ``ravel_pytree(params)``."""
    from jax.flatten_util import ravel_pytree

    expanded = {
        k: (jnp.full(jnp.shape(v), WD_MASK[k], bool) if not isinstance(v, (dict, tuple)) else None)
        for k, v in params.items()
    }
    expanded["nested"] = {"s": jnp.full((), False), "none": None}
    expanded["t"] = (jnp.full(jnp.shape(params["t"][0]), True),)
    flat, _ = ravel_pytree(expanded)
    return np.asarray(flat, bool)
