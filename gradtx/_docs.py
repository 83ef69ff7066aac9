"""Docstring text that several public functions share, written once and filled in when they are defined.

Nothing here is public. A docstring names a shared passage by a line that holds only ``{name}``;
:func:`fill_doc` replaces that line by the passage, indented as the line was, so ``help()``, ``inspect.getdoc``
and doctests see the whole text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__: list[str] = []

_T = TypeVar("_T")


def fill_doc(**passages: str) -> Callable[[_T], _T]:
    """A decorator that fills each line ``{name}`` of a docstring with ``passages[name]``, re-indented.

    A passage is written relative to the line it replaces: each of its lines gets that line's indentation in
    front, so a passage that starts inside an ``Args:`` section and goes on with ``Returns:`` stands at the
    level of the section headers and indents its arguments by two spaces. Every passage must be used, so a
    misspelt name fails at import. Docstrings stripped by ``python -OO`` are left alone.

    Example:
      >>> @fill_doc(args="Args:\\n  x: a number.")
      ... def f(x):
      ...     '''Twice ``x``.
      ...
      ...     {args}
      ...     '''
      >>> import inspect
      >>> print(inspect.getdoc(f))
      Twice ``x``.
      <BLANKLINE>
      Args:
        x: a number.
    """

    def decorate(obj: _T) -> _T:
        doc = getattr(obj, "__doc__", None)
        if doc is None:
            return obj
        unused = set(passages)
        lines: list[str] = []
        for line in doc.split("\n"):
            text = line.strip()
            key = text[1:-1] if text[:1] == "{" and text[-1:] == "}" else None
            if key not in passages:
                lines.append(line)
                continue
            unused.discard(key)
            indent = line[: len(line) - len(line.lstrip())]
            lines.extend(indent + part if part else "" for part in passages[key].strip("\n").split("\n"))
        if unused:
            raise KeyError(f"fill_doc: {getattr(obj, '__qualname__', obj)!r} has no line {{{sorted(unused)[0]}}}")
        obj.__doc__ = "\n".join(lines)
        return obj

    return decorate
