"""Namespaces that answer names defined in modules above them, without importing those modules early."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["lazy_spellings"]


def lazy_spellings(
    namespace: dict[str, Any], table: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a module that also answers names living in modules above it (PEP 562).

    ``table`` maps a name to the module that defines it; the name is imported on first access and cached in
    ``namespace`` (the module's ``globals()``), so it is the one canonical object, never a copy, and nothing of
    the upper layer is imported when the module loads. ``gradtx.transforms`` and ``gradtx.schedules`` serve
    Optax's spellings this way (``gradtx.transforms.chain``, ``gradtx.schedules.inject_hyperparams``).

    Args:
      namespace: the module's ``globals()``.
      table: ``{name: "dotted.module.path"}``.

    Returns:
      ``(__getattr__, __dir__)``, to assign at the module's top level. ``__dir__`` lists the module's own
      names and the table's.

    Raises:
      AttributeError: from the returned ``__getattr__``, for a name neither in the module nor in ``table``
        (``module 'gradtx.transforms' has no attribute 'nope'``), as Python raises it for any module.

    Example:
      >>> import gradtx
      >>> gradtx.transforms.chain is gradtx.combine.chain
      True
      >>> import types
      >>> from gradtx.namespace import lazy_spellings
      >>> mod = types.ModuleType("mymod")
      >>> mod.__getattr__, mod.__dir__ = lazy_spellings(vars(mod), {"sqrt": "math"})
      >>> mod.sqrt(16.0), "sqrt" in dir(mod)
      (4.0, True)
    """
    module_name = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        source = table.get(name)
        if source is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(source), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *table})

    return __getattr__, __dir__
