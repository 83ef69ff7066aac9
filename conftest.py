"""The examples in gradtx's docstrings run as doctests, with JAX's default settings.

Every module under ``gradtx/`` is collected for its docstring examples (as ``--doctest-modules`` would, but for
the package only: the helper scripts under ``tests/`` are not imported for doctests); ``testpaths`` in
pyproject.toml names ``gradtx`` beside ``tests``, and ``doctest_optionflags`` sets NUMBER, NORMALIZE_WHITESPACE
and ELLIPSIS.

A user who reads ``help(gradtx.adam)`` has float32 by default, so each doctest runs with ``jax_enable_x64``
off, even in a pytest worker where ``tests/conftest.py`` has turned it on for the tests, and it is restored
afterwards. Compiled programs are dropped every 50 doctests (see ``tests/conftest.py`` for why).
"""

from pathlib import Path

import jax
import pytest
from _pytest.doctest import DoctestModule

PACKAGE = Path(__file__).resolve().parent / "gradtx"

_doctests_run = 0


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".py" and PACKAGE in file_path.parents:
        return DoctestModule.from_parent(parent, path=file_path)
    return None


@pytest.fixture(autouse=True)
def _doctest_with_default_config(request):
    if not isinstance(request.node, pytest.DoctestItem):
        yield
        return
    global _doctests_run
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)
        _doctests_run += 1
        if _doctests_run % 50 == 0:
            jax.clear_caches()
