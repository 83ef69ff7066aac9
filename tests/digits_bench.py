"""``benchmarks/contrib_digits.py`` loaded as a module (it is a script, not part of the package): its
``digits``, ``train`` and ``RECIPES``, shared by the tests that train the digits MLP."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "contrib_digits", Path(__file__).resolve().parents[1] / "benchmarks" / "contrib_digits.py"
)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
