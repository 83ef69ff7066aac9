"""The rules every public docstring follows, as a checker the test suite and contributors run.

``python tests/docrules.py [PREFIX ...]`` prints each problem of the public names whose defining module starts
with one of the prefixes (all of them without arguments) and exits non-zero when there is one.

A public name is every function and class listed in the ``__all__`` of a public module of gradtx (a module
whose dotted path has no segment starting with ``_``), wherever it is defined. Its docstring has:

- a one-line summary (the first line, not empty);
- ``Args:`` listing exactly the parameters of its signature, in order (``*args``/``**kwargs`` by name);
  NamedTuple classes may list their fields under ``Attributes:`` instead;
- ``Returns:`` (or ``Yields:``) for a function that returns something;
- ``Raises:`` for a callable that validates: a recipe, a transformation or schedule class with parameters,
  or a function whose own source raises;
- an ``Examples:`` (or ``Example:``) section with at least one ``>>>`` line (the doctests run in the suite).

Every public module has a docstring and an ``__all__``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from collections.abc import Iterator
from typing import Any

SECTION = re.compile(r"^(\s*)([A-Z][A-Za-z ]*):\s*$")
ENTRY = re.compile(r"^(\*{0,2}[A-Za-z_][A-Za-z0-9_]*)(\s*\(.*\))?\s*:")
KNOWN_SECTIONS = {
    "Args", "Arguments", "Attributes", "Returns", "Return", "Yields", "Raises", "Examples", "Example",
    "Note", "Notes", "References", "See Also", "Warning", "Warnings", "Todo",
}


def public_modules() -> dict[str, Any]:
    """Every public module of gradtx, imported, by dotted name."""
    import gradtx

    mods: dict[str, Any] = {"gradtx": gradtx}
    for info in pkgutil.walk_packages(gradtx.__path__, "gradtx."):
        parts = info.name.split(".")[1:]
        if any(p.startswith("_") for p in parts):
            continue
        mods[info.name] = importlib.import_module(info.name)
    return mods


def public_objects() -> dict[int, tuple[str, Any]]:
    """``id -> (dotted name where defined, object)`` for every public function and class."""
    out: dict[int, tuple[str, Any]] = {}
    for _, mod in sorted(public_modules().items()):
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            home = getattr(obj, "__module__", "") or ""
            if not home.startswith("gradtx"):
                continue
            out.setdefault(id(obj), (f"{home}.{obj.__qualname__}", obj))
    return out


def sections(doc: str) -> dict[str, list[str]]:
    """The Google-style sections of a docstring: header -> its lines (dedented by the header's indent)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    indent = 0
    for line in doc.split("\n"):
        m = SECTION.match(line)
        if m and m.group(2) in KNOWN_SECTIONS:
            indent = len(m.group(1))
            current = found.setdefault(m.group(2), [])
            continue
        if current is not None:
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                current = None
                continue
            current.append(line[indent:])
    return found


def entries(lines: list[str]) -> list[str]:
    """The names an ``Args:``-style section documents: its least-indented entry lines."""
    body = [ln for ln in lines if ln.strip()]
    if not body:
        return []
    base = min(len(ln) - len(ln.lstrip()) for ln in body)
    names = []
    for ln in body:
        if len(ln) - len(ln.lstrip()) != base:
            continue
        m = ENTRY.match(ln.strip())
        if m:
            names.append(m.group(1).lstrip("*"))
    return names


def parameters(obj: Any) -> list[str] | None:
    """The parameter names a docstring's ``Args:`` must list, or None where no signature is meaningful."""
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return None
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    names = [p.name for p in sig.parameters.values() if p.name not in ("self", "cls")]
    kinds = {p.kind for p in sig.parameters.values()}
    if inspect.isclass(obj) and kinds <= {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}:
        return None  # a protocol or an abstract base: no constructor of its own
    return names


def validates(obj: Any) -> bool:
    """Whether ``obj`` refuses bad input, so its docstring owes a ``Raises:`` section."""
    if getattr(obj, "__gradtx_recipe__", False):
        return True
    params = parameters(obj)
    if inspect.isclass(obj):
        from gradtx.base import GradientTransformation
        from gradtx.schedules import Schedule

        if issubclass(obj, (GradientTransformation, Schedule)) and params:
            return True
    try:
        src = inspect.getsource(inspect.unwrap(obj))
    except (OSError, TypeError):
        return False
    body = src.split('"""', 2)[-1] if src.count('"""') >= 2 else src
    return bool(params) and bool(re.search(r"^\s*raise\b", body, re.M))


def problems_of(name: str, obj: Any) -> list[str]:
    """The rule violations of one public object's docstring."""
    doc = inspect.getdoc(obj)
    if not doc or not doc.strip():
        return [f"{name}: no docstring"]
    out = []
    first = doc.strip().split("\n", 1)[0]
    if SECTION.match(first):
        out.append(f"{name}: no one-line summary")
    secs = sections(doc)
    params = parameters(obj)
    is_namedtuple = inspect.isclass(obj) and issubclass(obj, tuple) and hasattr(obj, "_fields")
    if params:
        listed = entries(secs.get("Args", secs.get("Arguments", [])))
        if is_namedtuple and not listed:
            listed = entries(secs.get("Attributes", []))
        if listed != params:
            out.append(f"{name}: Args lists {listed}, the signature has {params}")
    elif params == [] and entries(secs.get("Args", [])):
        out.append(f"{name}: Args lists {entries(secs['Args'])}, the signature has none")
    if inspect.isfunction(obj):
        ret = inspect.signature(obj).return_annotation
        if ret not in (None, "None") and not ({"Returns", "Return", "Yields"} & set(secs)):
            out.append(f"{name}: no Returns section")
    if validates(obj) and "Raises" not in secs:
        out.append(f"{name}: validates its input but has no Raises section")
    example = secs.get("Examples", secs.get("Example"))
    if not example or not any(ln.strip().startswith(">>>") for ln in example):
        out.append(f"{name}: no Examples section with a >>> line")
    return out


def module_problems() -> Iterator[str]:
    """Public modules without a docstring or an ``__all__``."""
    for name, mod in sorted(public_modules().items()):
        if not (mod.__doc__ or "").strip():
            yield f"{name}: module has no docstring"
        if not hasattr(mod, "__all__"):
            yield f"{name}: module has no __all__"


def all_problems(prefixes: tuple[str, ...] = ("gradtx",)) -> list[str]:
    """Every violation, for the public names defined in modules starting with one of ``prefixes``."""
    out = [p for p in module_problems() if p.startswith(prefixes)]
    for name, obj in sorted(public_objects().values(), key=lambda x: x[0]):
        if name.startswith(prefixes):
            out.extend(problems_of(name, obj))
    return out


if __name__ == "__main__":
    found = all_problems(tuple(sys.argv[1:]) or ("gradtx",))
    print("\n".join(found))
    print(f"{len(found)} problem(s)")
    sys.exit(1 if found else 0)
