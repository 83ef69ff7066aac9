"""The layer rule: each module imports only from the layers below it (DESIGN.md §2)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "gradtx"

# module (relative path without .py) -> gradtx modules it may import
ALLOWED = {
    "fields": {"fields"},  # the machinery behind blocks: declarative fields, one validator (a package)
    "namespace": set(),  # lazy spellings: a namespace answering names of the layers above it
    "_docs": set(),  # shared docstring passages (fill_doc)
    "base": {"fields", "_structure"},
    "_structure": set(),  # the structural checks at every transformation's boundary
    "tree": {"base", "fields", "tree"},
    "schedules": {"base", "fields", "namespace", "schedules"},  # a package: its modules import each other
    "numerics": {"base", "fields", "tree"},
    "transforms": {"base", "fields", "namespace", "tree", "numerics", "transforms"},
    "combine": {"_docs", "base", "fields", "tree", "numerics", "transforms"},
    "optimizers": {"base", "fields", "tree", "numerics", "transforms", "combine", "wrappers", "schedules",
                   "optimizers"},
    # one concern per module; the package also answers the microbatching names (Optax: optax.microbatch)
    "wrappers": {"base", "fields", "tree", "numerics", "transforms", "combine", "microbatching", "wrappers"},
    "precision": {"base", "fields", "tree", "transforms"},  # shares transforms.noise's key handling
    "contrib": {"base", "fields", "tree", "numerics", "transforms", "combine", "wrappers", "schedules", "optimizers",
                "contrib", "diagnostics"},
    "flat": set(),
    "step": {"base", "fields", "flat", "kernels", "sharding"},  # sharding: ZeRO layouts; kernels: the fused step
    "kernels": {"base", "fields", "tree", "transforms", "combine"},  # fused Adam: recognises the chains it computes
    "quantized": {"base", "fields"},  # 8-bit state: a wrapper over any transformation
    # a program: measures, exports nothing (workloads <- variants <- timing, memory; report)
    "bench": {"base", "fields", "combine", "flat", "optimizers", "sharding", "step", "transforms", "bench"},
    "diagnostics": {"base", "fields", "tree", "diagnostics"},
    "checkpoint": set(),  # named state and checkpoint files: works on any pytree, imports no gradtx module
    "plot": {"base", "fields", "tree", "diagnostics", "schedules"},
    "sharding": {"base", "fields", "tree"},
    # the rest of Optax's public surface
    "tree_utils": {"base", "fields", "tree"},
    "projections": {"_docs", "base", "fields", "tree"},
    "losses": {"_docs", "base", "fields", "tree", "numerics", "projections", "losses"},
    "perturbations": {"base", "fields", "tree"},
    "assignment": {"base", "fields"},
    "second_order": {"base", "fields", "tree"},
    "microbatching": {"base", "fields", "tree"},  # functions of functions, not transformations: below the wrappers
    "experimental": {"base", "fields", "tree", "numerics", "transforms", "combine", "wrappers", "experimental"},
    "testing/contract": {"base", "fields"},
    "testing/problems": {"base", "fields"},
    "testing/digits": set(),  # a data set: NumPy, JAX and (when called) scikit-learn
    "testing/reference": {"testing"},  # it re-exports the family references, which import NumPy only
    "testing/__init__": {"testing"},
}
TOP = {"__init__", "__main__", "demo"}  # the public API and the programs may import anything


def _gradtx_imports(path: Path) -> set[str]:
    """The first component under ``gradtx`` of every gradtx import (``from gradtx import tree`` -> tree)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "gradtx":
            mods = [f"gradtx.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            mods = [node.module]
        else:
            mods = []
        for m in mods:
            parts = m.split(".")
            if parts[0] == "gradtx":
                found.add(parts[1] if len(parts) > 1 else "gradtx")
    return found


def _layer(rel: str) -> str:
    packages = ("fields", "tree", "transforms", "optimizers", "wrappers", "diagnostics", "contrib", "losses",
                "experimental", "bench", "schedules")
    for package in packages:
        if rel.startswith(package + "/"):
            return package
    if rel.startswith("testing/reference"):
        return "testing/reference"
    return rel


MODULES = sorted(str(p.relative_to(ROOT).with_suffix("")) for p in ROOT.rglob("*.py"))


@pytest.mark.parametrize("rel", MODULES)
def test_imports_respect_layers(rel):
    if rel in TOP:
        return
    layer = _layer(rel)
    assert layer in ALLOWED, f"gradtx/{rel}.py has no layer in this test: add it to ALLOWED"
    imported = _gradtx_imports(ROOT / f"{rel}.py")
    allowed = ALLOWED[layer]
    bad = imported - allowed
    assert not bad, f"gradtx/{rel}.py imports {sorted(bad)}; its layer allows only {sorted(allowed)}"


# the float64 references: flat modules testing/reference_<family>.py, or the package testing/reference/
REFERENCES = sorted((ROOT / "testing").glob("reference*.py")) + sorted((ROOT / "testing" / "reference").glob("*.py"))


@pytest.mark.parametrize("path", REFERENCES, ids=lambda p: str(p.relative_to(ROOT / "testing")))
def test_references_import_only_numpy(path):
    tree = ast.parse(path.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    roots.discard("gradtx")  # reference.py re-exports gradtx.testing.reference_<family> modules
    assert roots <= {"numpy", "math", "__future__", "collections", "typing", "dataclasses"}, roots


@pytest.mark.parametrize("namespace", ["gradtx.transforms", "gradtx.schedules"])
def test_optax_spellings_served_lazily_come_only_from_the_allowed_modules(namespace):
    """``gradtx.transforms`` and ``gradtx.schedules`` serve Optax's spellings of upper-layer objects by name
    (PEP 562) instead of importing them: the table may point only at these modules, and each name resolves to
    the one canonical object there."""
    import importlib

    module = importlib.import_module(namespace)
    allowed = {"gradtx.transforms": {"gradtx.combine", "gradtx.wrappers", "gradtx.base"},
               "gradtx.schedules": {"gradtx.wrappers", "gradtx.base"}}[namespace]
    table = module._OPTAX_SPELLINGS
    assert set(table.values()) <= allowed
    for name, source in table.items():
        assert getattr(module, name) is getattr(importlib.import_module(source), name), name
