"""One registry of every transformation, driving the oracle, contract and Optax cross-check tiers.

Each entry builds the gradtx transformation, its float64 NumPy reference (``gradtx.testing.reference``) and,
where Optax has the same thing, the Optax transformation. Capabilities are fields declared on each entry, never
skip lists.

Where the three calls read the same, an entry is written once: ``Entry.same("trace(nesterov)", "trace", 0.8,
nesterov=True, complex_ok=True)`` looks ``trace`` up by name in gradtx, in ``gradtx.testing.reference`` and in
Optax and calls each with the same arguments. A family's registry file looks names up in its own modules
(``Sides((gradtx.transforms.adam_family, ...), (gradtx.testing.reference.adam_family,), (optax,)).same``).
Arguments may hold markers resolved per side: ``SCHED`` (the shared schedule: ``gradtx.schedules``'s, the
reference's or Optax's ``warmup_cosine_decay_schedule(0.0, 0.1, 10, 200, 0.001)``; ``Sched(name, *args)`` for
another), ``MASK`` (``WD_MASK`` for gradtx and Optax, the flat mask the tiers give the reference) and
``Call(name, *args)`` (an inner transformation, looked up like the entry's). Where the calls differ the entry
gives explicit builders (``Entry(name, make, ref, optax)``, or ``ref=``/``optax=`` overriding one side of
``same``).

Leaf-structured entries (``leaf_structured``: the flat path, ``gradtx.flat.pack``, does not reproduce the
per-leaf run; tests/test_flat.py asserts that they do differ) keep or use something per leaf: a mask or
partition written for the original tree (it does not match a FlatTree: init raises); trust ratios, per-leaf norms
and per-leaf statistics (one ratio, norm or statistic per buffer instead of per leaf); factored second moments and
per-leaf update clipping; one random key per leaf; per-leaf flags, metrics or placeholders in the state.
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
OPT = "optimizer"
SIDE_NAMES = ("gradtx", "ref", "optax")


# --------------------------------------------------------------------------------------------------
# Markers: an argument that each side (gradtx, reference, Optax) resolves to its own object
# --------------------------------------------------------------------------------------------------


class Sched:
    """A schedule called by name with the same arguments on every side: ``gradtx.schedules.<name>``,
    ``gradtx.testing.reference.<name>``, ``optax.<name>``. Each side is looked up when the entry is built (so
    a test that patches ``optax.<name>`` sees its patch). ``.gradtx()``, ``.ref()``, ``.optax()`` build one
    side, for the entries written with explicit builders."""

    def __init__(self, name: str, *args: Any) -> None:
        self.name, self.args = name, args
        for module in (schedules, ref, optax):
            getattr(module, name)  # a misspelt schedule fails when the registry is imported

    def resolve(self, side: str, sides: Sides | None = None, mask: Any = None) -> Any:
        module = {"gradtx": schedules, "ref": ref, "optax": optax}[side]
        return getattr(module, self.name)(*self.args)

    def gradtx(self) -> Any:
        return self.resolve("gradtx")

    def ref(self) -> Any:
        return self.resolve("ref")

    def optax(self) -> Any:
        return self.resolve("optax")

    def __repr__(self) -> str:
        return f"Sched({self.name!r}, {', '.join(map(repr, self.args))})"


# The schedule the registry's "(schedule)" entries share.
SCHED = Sched("warmup_cosine_decay_schedule", 0.0, 0.1, 10, 200, 0.001)


class _Mask:
    """``WD_MASK`` for gradtx and Optax; for the reference, the flat mask the tiers pass (``flat_mask``)."""

    def resolve(self, side: str, sides: Sides | None = None, mask: Any = None) -> Any:
        return mask if side == "ref" else WD_MASK

    def __repr__(self) -> str:
        return "MASK"


MASK = _Mask()


@dataclasses.dataclass(frozen=True)
class Sides:
    """Where ``Entry.same`` looks a name up: the gradtx modules, the reference modules and the Optax modules,
    each searched in order."""

    gradtx: tuple[Any, ...]
    ref: tuple[Any, ...]
    optax: tuple[Any, ...]

    def lookup(self, side: str, name: str) -> Callable[..., Any]:
        for module in getattr(self, side):
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"{name!r} is in none of the {side} modules {[m.__name__ for m in getattr(self, side)]}")

    def same(self, name: str, fn: str | None = None, /, *args: Any, **kwargs: Any) -> Entry:
        """``Entry.same`` with these modules."""
        return Entry.same(name, fn, *args, sides=self, **kwargs)


class Call:
    """``fn(*args, **kwargs)`` on one side: ``fn`` looked up by name in that side's modules, markers in the
    arguments (``SCHED``, ``MASK``, nested ``Call``) resolved for that side."""

    def __init__(self, fn: str, *args: Any, **kwargs: Any) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def resolve(self, side: str, sides: Sides, mask: Any = None) -> Any:
        args = _resolve(self.args, side, sides, mask)
        kwargs = _resolve(self.kwargs, side, sides, mask)
        return sides.lookup(side, self.fn)(*args, **kwargs)

    def check(self, sides: Sides, side: str) -> None:
        """Fails (when the registry is imported) unless every name of this call exists on ``side``."""
        sides.lookup(side, self.fn)
        for marker in _markers((self.args, self.kwargs)):
            if isinstance(marker, Call):
                marker.check(sides, side)

    def __repr__(self) -> str:
        inner = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.fn}({', '.join(inner)})"


_MARKERS = (Sched, _Mask, Call)


def _resolve(x: Any, side: str, sides: Sides, mask: Any) -> Any:
    if isinstance(x, _MARKERS):
        return x.resolve(side, sides, mask)
    if type(x) in (tuple, list):
        return type(x)(_resolve(y, side, sides, mask) for y in x)
    if type(x) is dict:
        return {k: _resolve(v, side, sides, mask) for k, v in x.items()}
    return x


def _markers(x: Any) -> list[Any]:
    if isinstance(x, _MARKERS):
        return [x, *(_markers((x.args, x.kwargs)) if isinstance(x, Call) else [])]
    if type(x) in (tuple, list):
        return [m for y in x for m in _markers(y)]
    if type(x) is dict:
        return [m for v in x.values() for m in _markers(v)]
    return []


# --------------------------------------------------------------------------------------------------
# Entries
# --------------------------------------------------------------------------------------------------


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
    # The flat path (gradtx.flat.pack) does not reproduce the per-leaf run (see the module docstring for the
    # kinds). tests/test_flat.py asserts that such entries do differ.
    leaf_structured: bool = False

    @classmethod
    def same(cls, name: str, fn: str | None = None, /, *args: Any, sides: Sides | None = None,
             **kwargs: Any) -> Entry:
        """The entry whose three sides call ``fn`` (default: ``name``) with the same arguments.

        ``fn`` is looked up by name in ``sides`` (default: ``gradtx``, ``gradtx.testing.reference``, ``optax``).
        A keyword named like an Entry field (``kind``, ``complex_ok``, ...) configures the entry; the others are
        the call's. ``ref=`` or ``optax=`` replaces that side (``optax=None``: no Optax counterpart). A ``MASK``
        in the arguments makes the entry ``uses_mask``.
        """
        sides = TOP if sides is None else sides
        fields = {k: kwargs.pop(k) for k in list(kwargs) if k in _ENTRY_FIELDS}
        call = Call(fn or name, *args, **kwargs)
        for side in SIDE_NAMES:
            if side == "gradtx" or side not in fields:
                call.check(sides, side)
        fields.setdefault("ref", lambda mask=None: call.resolve("ref", sides, mask))
        fields.setdefault("optax", lambda: call.resolve("optax", sides))
        if any(m is MASK for m in _markers((args, kwargs))):
            assert fields.setdefault("uses_mask", True), f"{name}: a MASK entry uses the mask"
        return cls(name, lambda: call.resolve("gradtx", sides), **fields)

    def __repr__(self) -> str:
        return self.name


_ENTRY_FIELDS = {f.name for f in dataclasses.fields(Entry)} - {"name", "make"}
TOP = Sides((gradtx,), (ref,), (optax,))

ENTRIES: list[Entry] = [
    # --- blocks ---------------------------------------------------------------------------------------
    Entry.same("identity", complex_ok=True),
    Entry.same("set_to_zero", nonfinite="guard", complex_ok=True),
    Entry.same("scale", "scale", 0.5, complex_ok=True),
    Entry.same("scale_by_learning_rate", "scale_by_learning_rate", 0.1, complex_ok=True),
    Entry.same("scale_by_learning_rate(schedule)", "scale_by_learning_rate", SCHED, complex_ok=True),
    Entry.same("scale_by_learning_rate(flip_sign=False)", "scale_by_learning_rate", 0.1, flip_sign=False),
    Entry.same("scale_by_schedule", "scale_by_schedule", Sched("exponential_decay", 1.0, 10, 0.5)),
    Entry.same("trace", "trace", 0.9, complex_ok=True),
    Entry.same("trace(nesterov)", "trace", 0.8, nesterov=True, complex_ok=True),
    Entry.same("ema", "ema", 0.9, complex_ok=True),
    Entry.same("ema(debias=False)", "ema", 0.7, debias=False, complex_ok=True),
    Entry.same("bias_correction", "bias_correction", 0.95, optax=None, complex_ok=True),
    Entry.same("scale_by_rms", complex_ok=True),
    Entry.same("scale_by_rms(bias_correction, eps outside)", "scale_by_rms", 0.99, 1e-6, eps_in_sqrt=False,
               bias_correction=True, complex_ok=True),
    Entry.same("scale_by_rms(initial_scale)", "scale_by_rms", 0.9, 1e-8, initial_scale=1.0, complex_ok=True),
    Entry.same("scale_by_rms(decay=None)", "scale_by_rms", None, 1e-8, optax=None, complex_ok=True),
    Entry.same("scale_by_rms(init_from_first)", "scale_by_rms", 0.9, 1e-8, init_from_first=True, optax=None,
               complex_ok=True),
    Entry.same("scale_by_rss", complex_ok=True),
    Entry.same("scale_by_rss(0 init)", "scale_by_rss", 0.0, 1e-7, complex_ok=True),
    Entry.same("scale_by_stddev", "scale_by_stddev", 0.9, 1e-3, complex_ok=True),
    Entry.same("scale_by_stddev(bias_correction)", "scale_by_stddev", 0.9, 1.0, bias_correction=True),
    Entry.same("scale_by_stddev(eps outside)", "scale_by_stddev", 0.9, 1e-3, 0.5, eps_in_sqrt=False),
    Entry.same("scale_by_adam", complex_ok=True),
    Entry.same("scale_by_adam(nesterov, eps_root)", "scale_by_adam", 0.8, 0.99, 1e-6, 1e-8, nesterov=True,
               complex_ok=True),
    Entry.same("scale_by_sign"),
    Entry.same("clip", "clip", 0.5),
    Entry.same("clip_by_global_norm", "clip_by_global_norm", 2.0, complex_ok=True),
    Entry.same("add_decayed_weights", "add_decayed_weights", 0.1, needs_params=True, complex_ok=True),
    Entry.same("add_decayed_weights(mask)", "add_decayed_weights", 0.1, mask=MASK, needs_params=True,
               leaf_structured=True),
    # --- optimizers -----------------------------------------------------------------------------------
    Entry.same("sgd", "sgd", 0.1, kind=OPT, complex_ok=True),
    Entry.same("sgd(momentum)", "sgd", 0.1, 0.9, kind=OPT, complex_ok=True),
    Entry.same("sgd(nesterov, schedule)", "sgd", SCHED, 0.9, nesterov=True, kind=OPT, complex_ok=True),
    Entry.same("adagrad", "adagrad", 0.1, kind=OPT, complex_ok=True),
    Entry.same("rmsprop", "rmsprop", 0.01, kind=OPT, complex_ok=True),
    Entry.same("rmsprop(centered, momentum)", "rmsprop", 0.01, centered=True, eps=1e-3, momentum=0.9, kind=OPT,
               complex_ok=True),
    Entry.same("rmsprop(nesterov, bias_correction)", "rmsprop", 0.01, momentum=0.5, nesterov=True,
               bias_correction=True, kind=OPT),
    Entry.same("rmsprop(decay=None)", "rmsprop", 0.01, decay=None, optax=None, kind=OPT, complex_ok=True),
    Entry.same("rmsprop(init_from_first)", "rmsprop", 0.01, 0.9, init_from_first=True, optax=None, kind=OPT,
               complex_ok=True),
    Entry.same("adam", "adam", 1e-2, kind=OPT, complex_ok=True),
    Entry.same("adam(schedule)", "adam", SCHED, kind=OPT, complex_ok=True),
    Entry.same("adamw", "adamw", 1e-2, weight_decay=0.1, needs_params=True, kind=OPT, complex_ok=True),
    Entry.same("adamw(mask)", "adamw", 1e-2, weight_decay=0.1, mask=MASK, needs_params=True, kind=OPT,
               leaf_structured=True),
    Entry.same("nadam", "nadam", 1e-2, kind=OPT, complex_ok=True),
    Entry.same("nadamw", "nadamw", 1e-2, weight_decay=0.1, needs_params=True, kind=OPT, complex_ok=True),
]


def _collect_family_registries() -> None:
    """Append the ENTRIES of every tests/registry_<family>.py (one file per family of blocks)."""
    import importlib
    from pathlib import Path

    for path in sorted(Path(__file__).parent.glob("registry_*.py")):
        ENTRIES.extend(importlib.import_module(path.stem).ENTRIES)


_collect_family_registries()
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
