"""Random hyperparameters inside their valid ranges, for any gradtx transformation (used by the fuzz test).

A gradtx transformation is a tree of frozen dataclasses whose numeric hyperparameters are fields. ``randomize``
walks that tree (chains, partitions, wrappers, schedules), draws a new value for every floating-point
hyperparameter near its old one (fractions anywhere in [0, 0.999], other values within a factor of 10 to 100)
and rebuilds every object through its constructor, so the library's own validation decides what is valid: a
value the constructor rejects is replaced by the original one, field by field. The result is a transformation
that a user could have built, with hyperparameters the entry's author did not pick.

Domain of the draws, subnormals included: no draw is subnormal. Fractions come from
``st.floats(..., allow_subnormal=False)``; other values are ``v * 10**e`` with ``e`` in [-2, 2] (a subnormal
``e`` gives ``10**e == 1.0``, i.e. ``v`` itself) and ``v`` the entry's normal value. Subnormals are out on
purpose: XLA on CPU flushes float64 subnormals to zero, so a subnormal hyperparameter would run as 0, not as
the value the constructor validated (a positive eps would divide by zero), and the fuzz test claims finite
updates for the values it validated.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from hypothesis import strategies as st

FRACTION_MAX = 0.999  # a b1/b2/decay of 1 - 1e-12 is valid but rounds to 1.0 in float32; not a useful draw


def _is_node(x: Any) -> bool:
    return dataclasses.is_dataclass(x) and not isinstance(x, type) and hasattr(type(x), "__dataclass_fields__")


def _float_strategy(v: float, label: str = "") -> st.SearchStrategy[float]:
    mag = abs(v)
    sign = -1.0 if v < 0 else 1.0
    if not math.isfinite(v):
        return st.just(v)
    if mag == 0.0:
        return st.one_of(st.just(0.0), st.floats(0.0, 1.0, allow_subnormal=False))
    # A subnormal exponent e is harmless (10**e == 1.0); the product v * 10**e of a normal v stays normal.
    near = st.floats(-2.0 if mag < 1 else -1.0, 2.0 if mag < 1 else 1.0).map(lambda e: v * 10.0**e)
    if label.rsplit(".", 1)[-1].startswith("eps"):
        # A positive eps stays positive: eps = 0 is valid, but then a vanishing statistic (the variance of
        # scale_by_stddev with decay 0) divides by zero, and the fuzz test claims finite updates.
        return near
    if mag < 1.0:
        return st.one_of(near, st.floats(0.0, FRACTION_MAX, allow_subnormal=False).map(lambda u: sign * u))
    return near


def _is_hyper(v: Any) -> bool:
    return isinstance(v, float) and not isinstance(v, bool)


def randomize(obj: Any, draw: Any, label: str = "") -> Any:
    """``obj`` rebuilt with random valid hyperparameters (see the module docstring)."""
    if _is_hyper(obj):
        return draw(_float_strategy(obj, label), label=label)
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(randomize(x, draw, f"{label}[{i}]") for i, x in enumerate(obj))
    if isinstance(obj, list):
        return [randomize(x, draw, f"{label}[{i}]") for i, x in enumerate(obj)]
    if isinstance(obj, dict):
        return {k: randomize(v, draw, f"{label}[{k!r}]") for k, v in obj.items()}
    if not _is_node(obj):
        return obj
    # Static fields are structure (flags, masks, dtypes): only the data fields hold hyperparameters.
    names = [f.name for f in dataclasses.fields(obj) if f.init and not f.metadata.get("static", False)]
    changes = {n: randomize(getattr(obj, n), draw, f"{type(obj).__name__}.{n}") for n in names}
    try:
        return dataclasses.replace(obj, **changes)
    except ValueError:  # some drawn value is out of range: keep each field's new value only if it validates
        kept: dict[str, Any] = {}
        for name, value in changes.items():
            try:
                dataclasses.replace(obj, **{**kept, name: value})
                kept[name] = value
            except ValueError:
                pass
        return dataclasses.replace(obj, **kept)


def hyperparameters(obj: Any) -> dict[str, float]:
    """Every floating-point hyperparameter of ``obj`` by path (for reports and tests of ``randomize``)."""
    out: dict[str, float] = {}

    def walk(x: Any, path: str) -> None:
        if _is_hyper(x):
            out[path] = x
        elif isinstance(x, (tuple, list)) and not hasattr(x, "_fields"):
            for i, y in enumerate(x):
                walk(y, f"{path}[{i}]")
        elif isinstance(x, dict):
            for k, y in x.items():
                walk(y, f"{path}[{k!r}]")
        elif _is_node(x):
            for f in dataclasses.fields(x):
                if not f.metadata.get("static", False):
                    walk(getattr(x, f.name), f"{path}.{f.name}")

    walk(obj, type(obj).__name__)
    return out
