"""The documentation site: its guides' code runs, and the Sphinx build passes with warnings as errors.

The build (``python -m sphinx -W -n``: nitpicky, so a broken cross-reference is an error) writes the API
reference from the package's ``__all__`` lists, renders the notebooks from their committed outputs and computes
the optimizer gallery. It runs once here, into a temporary directory, in a subprocess (about a minute).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GUIDES = [*sorted((DOCS / "guides").glob("*.md")), DOCS / "index.md"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = " ".join([env.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=8"]).strip()
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env.pop("JAX_ENABLE_X64", None)
    return env


def test_every_guide_is_in_the_site():
    index = (DOCS / "index.md").read_text()
    for guide in GUIDES[:-1]:
        assert f"guides/{guide.stem}" in index, f"{guide.name} is not in the toctree of docs/index.md"
    assert len(GUIDES) >= 8


@pytest.mark.parametrize("path", GUIDES, ids=lambda p: p.stem)
def test_guide_code_runs(path):
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), re.S)
    if path.name != "lecture.md":
        assert blocks, f"{path.name} has no python example"
    for i, code in enumerate(blocks):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=600)
        assert out.returncode == 0, f"{path.name}, block {i + 1}:\n{out.stderr[-3000:]}"


@pytest.mark.filterwarnings("ignore")
def test_sphinx_build_has_no_warnings(tmp_path):
    out_dir = tmp_path / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html", str(DOCS), str(out_dir),
           "-d", str(tmp_path / "doctrees")]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=1200, cwd=ROOT)
    assert out.returncode == 0, f"sphinx-build failed:\n{out.stderr[-6000:]}"
    pages = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.html")}
    assert {"index.html", "api/blocks.html", "api/optimizers.html", "guides/from_torch.html", "gallery.html",
            "lecture/01_narrow_valley.html"} <= pages
    gallery = (out_dir / "gallery.html").read_text()
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import gradtx_gallery
    finally:
        sys.path.pop(0)
    shown = [n for n, _ in gradtx_gallery.recipes() if n.rsplit(".", 1)[1] not in gradtx_gallery.NOT_SHOWN]
    assert len(shown) >= 45
    for name in shown:
        assert f"{name.rsplit('.', 1)[1]}.png" in gallery, f"{name} is missing from the gallery"
    assert "adamw" in (out_dir / "api" / "optimizers.html").read_text()
    notebook = (out_dir / "lecture" / "01_narrow_valley.html").read_text()
    assert "<img" in notebook, "the notebook's figures were not rendered"
