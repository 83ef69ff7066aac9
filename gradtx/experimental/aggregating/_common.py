"""Helpers the aggregators share: argument checks and the selection of ready (emitted) values.

Nothing here is public API (``__all__`` is empty); the names carry no underscore because several aggregating
modules import them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx.fields import Check, InvalidType, concrete_number, fail

__all__: list[str] = []

PER_ELT_AXIS = "an int or a non-empty sequence of ints"
"""What ``per_elt_axis`` accepts (the ``accepts`` of its field)."""

_STEPS = Check("number", lo=1.0, integer=True)


def check_per_elt_axis(call: str, per_elt_axis: Any) -> int | tuple[int, ...]:
    """``per_elt_axis`` as an int or a tuple of ints (hashable: it is a static field)."""
    if isinstance(per_elt_axis, (int, np.integer)) and not isinstance(per_elt_axis, bool):
        return int(per_elt_axis)
    if isinstance(per_elt_axis, Sequence) and not isinstance(per_elt_axis, str):
        axes = tuple(per_elt_axis)
        if axes and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
            return tuple(int(a) for a in axes)
    fail(call, "per_elt_axis", per_elt_axis, f"must be {PER_ELT_AXIS}", InvalidType)
    raise AssertionError("unreachable: fail raises")


def check_accumulation_steps(call: str, accumulation_steps: Any) -> int:
    """``accumulation_steps`` as an int >= 1 (integral floats accepted, as Optax compares them with a counter).

    It fixes the state's structure (no state for 1), so it must be a concrete number: a traced value or a
    run-time value (see :func:`gradtx.fields.run_time_values`) is refused too."""
    _STEPS(call, "accumulation_steps", accumulation_steps)
    v = concrete_number(accumulation_steps)
    if v is None or not (v >= 1 and v.is_integer()):
        fail(call, "accumulation_steps", accumulation_steps, "must be a concrete whole number >= 1")
        raise AssertionError("unreachable: fail raises")
    return int(v)


def select_if_ready(ready: jax.Array, when_ready: Any, otherwise: Any) -> Any:
    """``where(ready, when_ready, otherwise)`` leaf by leaf."""
    return jax.tree.map(lambda a, b: jnp.where(ready, a, b), when_ready, otherwise)
