"""Combinators (N transformations -> 1): ``chain`` and ``named_chain``.

``chain(a, b, c)`` feeds the updates through ``a``, then ``b``, then ``c``; its state is the tuple of their
states. The empty chain is the identity and chaining is associative. Any object with ``init`` and
``update`` can be chained: an Optax transformation is held as a static ``foreign`` block (its closures are
not pytree leaves), and receives extra keyword arguments only if its ``update`` accepts them.
"""

from __future__ import annotations

from typing import Any

from gradtx.base import (
    GradientTransformation,
    OptState,
    Params,
    Updates,
    as_transformation,
    pytree_class,
    static_field,
)

__all__ = ["chain", "named_chain"]


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


@pytree_class
class chain(GradientTransformation):
    """Apply transformations in sequence: ``chain(scale_by_adam(), scale_by_learning_rate(1e-3))``."""

    transforms: tuple[GradientTransformation, ...]

    def __init__(self, *transforms: Any, **fields: Any):
        if fields:  # rebuilt by pytree utilities as chain(transforms=...)
            if transforms or set(fields) != {"transforms"}:
                raise TypeError(f"chain: unexpected arguments {sorted(fields)}; pass transformations positionally")
            transforms = tuple(fields["transforms"])
        object.__setattr__(self, "transforms", tuple(as_transformation(t, "chain") for t in transforms))

    def init(self, params: Params) -> tuple[OptState, ...]:
        return tuple(t.init(params) for t in self.transforms)

    def update(self, updates: Updates, state: tuple[OptState, ...], params: Params | None = None, **extra: Any):
        if len(state) != len(self.transforms):
            raise TypeError(f"chain.update: state has {len(state)} entries for {len(self.transforms)} transformations")
        new_state = []
        for t, s in zip(self.transforms, state):
            updates, s = t.update(updates, s, params, **extra)
            new_state.append(s)
        return updates, tuple(new_state)

    def __repr__(self) -> str:
        if not self.transforms:
            return "chain()"
        return "chain(\n" + ",\n".join(_indent(repr(t)) for t in self.transforms) + ",\n)"


@pytree_class
class named_chain(GradientTransformation):
    """``chain`` with a name per transformation; the state is a dict ``{name: state}``.

    ``named_chain(("adam", scale_by_adam()), ("lr", scale_by_learning_rate(1e-3)))``.
    """

    transforms: tuple[GradientTransformation, ...]
    names: tuple[str, ...] = static_field()

    def __init__(self, *pairs: tuple[str, Any], **fields: Any):
        if fields:
            if pairs or set(fields) != {"transforms", "names"}:
                raise TypeError(f"named_chain: unexpected arguments {sorted(fields)}; pass (name, tx) pairs")
            names, transforms = tuple(fields["names"]), tuple(fields["transforms"])
        else:
            for p in pairs:
                if not (isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)):
                    raise TypeError(f"named_chain: each argument must be a (name, transformation) pair, got {p!r}")
            names = tuple(name for name, _ in pairs)
            transforms = tuple(t for _, t in pairs)
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"named_chain(names={list(names)}): names must be unique, repeated: {dup}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "transforms", tuple(as_transformation(t, "named_chain") for t in transforms))

    def init(self, params: Params) -> dict[str, OptState]:
        return {n: t.init(params) for n, t in zip(self.names, self.transforms)}

    def update(self, updates: Updates, state: dict[str, OptState], params: Params | None = None, **extra: Any):
        new_state = {}
        for n, t in zip(self.names, self.transforms):
            updates, new_state[n] = t.update(updates, state[n], params, **extra)
        return updates, new_state

    def __repr__(self) -> str:
        body = ",\n".join(_indent(f"({n!r}, {t!r})") for n, t in zip(self.names, self.transforms))
        return "named_chain(\n" + body + ",\n)" if body else "named_chain()"
