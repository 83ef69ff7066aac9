"""The notebooks are committed executed and re-executed here: every cell runs without error (their own
``assert`` cells check the numeric claims they make), and the committed copies show their outputs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core warns (an error here) without it


def test_the_five_notebooks_are_there():
    assert [p.name[:3] for p in NOTEBOOKS] == ["01_", "02_", "03_", "04_", "05_"], [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_executed_with_figures(path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), f"{path.name}: not every cell was executed"
    assert not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", []))
    images = [o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, f"{path.name}: no figure in the committed outputs"
    assert (ROOT / "notebooks" / "figures" / f"{path.stem}.png").is_file(), f"{path.stem}: key figure missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_re_executes(path, tmp_path, monkeypatch):
    # ipykernel's "python3" kernel runs the first `python` on PATH: make it this interpreter (the venv's).
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    (tmp_path / "figures").mkdir()  # figures are written here, not over the committed ones
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError with the failing cell and its traceback
    assert (tmp_path / "figures" / f"{path.stem}.png").is_file()
