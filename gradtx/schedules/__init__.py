"""Schedules: the step count mapped to a hyperparameter value (a learning rate, a momentum, a weight decay).

A schedule is called with the 0-based step count (the first update uses ``schedule(0)``) and returns a
floating-point ``jax.Array`` (float32, or wider if its hyperparameters are). The count may be a Python
int, a NumPy integer or a traced integer array, and the schedule is elementwise in it, so
``jax.vmap(s)(jnp.arange(n))`` and ``s(jnp.arange(n))`` both give the whole curve. A count below 0 (a
delayed schedule, ``s(step - delay)``) gives the value at 0, for every schedule: the base class clamps the
count before the schedule's formula runs, so no warm-up extrapolates to a negative learning rate (Optax's
cosine, piecewise and one-cycle schedules do not clamp; the values at counts >= 0 are Optax's). Schedules are pytrees:
each is a frozen dataclass whose numeric hyperparameters (values, step counts, rates, scales) are leaves
and whose structural options (``staircase``, ``interpolate_type``, ``decay_type``, the boundaries of a
piecewise schedule) are static. A jitted step that takes the schedule as an argument therefore does not
recompile when only a value changes, ``jax.grad`` can differentiate a value with respect to a
hyperparameter, and the repr reads like the call that made the schedule. Arguments are validated in the
constructor (``ValueError`` naming the call, the value and the valid range), not silently corrected.

    constant_schedule                  value
    polynomial_schedule                polynomial from init_value to end_value over transition_steps
    linear_schedule                    polynomial_schedule with power 1
    exponential_decay                  init_value * decay_rate ** (count / transition_steps)
    cosine_decay_schedule              half-cosine decay (SGDR, Loshchilov & Hutter 2017)
    piecewise_constant_schedule        init_value times the scales of the boundaries passed
    piecewise_interpolate_schedule     linear or cosine interpolation between scaled knots
    warmup_constant_schedule           linear warm-up, then constant (Goyal et al. 2017)
    warmup_cosine_decay_schedule       linear warm-up, then cosine decay
    warmup_exponential_decay_schedule  linear warm-up, then exponential decay
    join_schedules                     one schedule after another, each restarted at its boundary
    transformer_warmup_schedule        inverse-square-root schedule of Vaswani et al. 2017
    warmup_stable_decay_schedule       warm-up, plateau, cool-down (WSD; Hu et al. 2024, Hägele et al. 2024)
    linear_onecycle_schedule           one-cycle policy, three linear phases (Smith & Topin 2017)
    cosine_onecycle_schedule           one-cycle policy, two cosine phases (Smith & Topin 2017)
    sgdr_schedule                      warm restarts: warmup_cosine_decay cycles joined (Loshchilov & Hutter 2017)

Each argument is declared once with a field of :mod:`gradtx.fields` (its kind and range); rules that involve
several arguments or the entries of a dict or sequence are in the schedule's ``__check_init__``.

Modules: ``_base`` (the :class:`Schedule` base class and the shared formulas), ``_basic`` (elementary and
warm-up schedules), ``_composite`` (joins and the schedules of particular papers); every name is re-exported here.
"""

from __future__ import annotations

from gradtx.namespace import lazy_spellings
from gradtx.schedules._base import Schedule, schedule_dtype  # noqa: F401  (schedule_dtype: contrib's schedules)
from gradtx.schedules._basic import (
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    linear_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
    polynomial_schedule,
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
)
from gradtx.schedules._composite import (
    cosine_onecycle_schedule,
    join_schedules,
    linear_onecycle_schedule,
    sgdr_schedule,
    transformer_warmup_schedule,
    warmup_stable_decay_schedule,
)

__all__ = [
    "Schedule",
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "exponential_decay",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "sgdr_schedule",
    "transformer_warmup_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "warmup_stable_decay_schedule",
]


# Optax also spells the hyperparameter injection wrappers under ``optax.schedules``. They live in gradtx.wrappers
# (a layer above this module), so they are served lazily by name (PEP 562): the one canonical object, no second
# definition. ``tests/test_layers.py`` checks that this table points only at gradtx.wrappers and gradtx.base.
_OPTAX_SPELLINGS = {
    **dict.fromkeys(
        [
            "InjectHyperparamsState",
            "InjectStatefulHyperparamsState",
            "WrappedSchedule",
            "inject_hyperparams",
            "inject_stateful_hyperparams",
        ],
        "gradtx.wrappers",
    ),
    "StatefulSchedule": "gradtx.base",
}


__getattr__, __dir__ = lazy_spellings(globals(), _OPTAX_SPELLINGS)
