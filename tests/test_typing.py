"""Types that catch mistakes: pyright on a typed user script (tests/typing/), and mypy --strict on the package.

``user_script.py`` must be clean, and each ``reveal_type(...)  # revealed: T`` line must infer exactly ``T``
(the types of ``init``, ``update`` and ``apply_updates`` results are part of the public API). ``mistakes.py``
holds typical mistakes, one per line marked ``# error``: pyright must report an error on each of those lines and
on no other. pyright runs once for both files (a few seconds).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "typing"


def _pyright() -> list[str]:
    exe = Path(sys.executable).with_name("pyright")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("pyright")
    if found is None:
        pytest.fail("pyright is not installed: it is part of the test extra (pip install -e '.[test]')")
    return [found]


@pytest.fixture(scope="module")
def diagnostics() -> list[dict]:
    config = str(HERE / "pyrightconfig.json")
    cmd = [*_pyright(), "--outputjson", "-p", config, "--pythonpath", sys.executable, str(HERE)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE, timeout=600)
    try:
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright did not report JSON (exit {out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")
    return report["generalDiagnostics"]


def _marked(name: str, pattern: str) -> dict[int, str]:
    lines = (HERE / name).read_text().splitlines()
    return {i + 1: m.group(1).strip() for i, line in enumerate(lines) if (m := re.search(pattern, line))}


def _where(diags: list[dict], name: str, severity: str) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for d in diags:
        if Path(d["file"]).name == name and d["severity"] == severity:
            out.setdefault(d["range"]["start"]["line"] + 1, []).append(d["message"])
    return out


def test_correct_code_is_clean(diagnostics):
    errors = _where(diagnostics, "user_script.py", "error") | _where(diagnostics, "user_script.py", "warning")
    assert not errors, f"pyright reports errors in correct code: {errors}"


def test_revealed_types_are_pinned(diagnostics):
    expected = _marked("user_script.py", r"#\s*revealed:\s*(.+)$")
    assert len(expected) >= 5
    got = {
        line: re.search(r'is "(.*)"$', msgs[0], re.S).group(1)
        for line, msgs in _where(diagnostics, "user_script.py", "information").items()
    }
    assert got == expected


def test_typical_mistakes_are_reported(diagnostics):
    expected = _marked("mistakes.py", r"#\s*error:?\s*(.*)$")
    assert len(expected) >= 8
    got = _where(diagnostics, "mistakes.py", "error")
    missed = {line: expected[line] for line in expected if line not in got}
    unexpected = {line: msgs for line, msgs in got.items() if line not in expected}
    assert not missed, f"mistakes pyright does not report: {missed}"
    assert not unexpected, f"errors on lines with no mistake: {unexpected}"


def test_package_is_clean_under_mypy_strict():
    # pyproject.toml's [tool.mypy]: strict over gradtx/, the float64 NumPy references (plain untyped NumPy by
    # design) excluded. About 12 s.
    root = HERE.parents[1]
    out = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], capture_output=True, text=True, cwd=root,
                         timeout=900)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "Success" in out.stdout
