"""Strict test configuration: warnings are errors (pyproject), float64 is available.

The tests check numbers, not speed, and most of their time is XLA compiling small programs. Before JAX is
imported, the CPU backend is told not to optimise the generated code (``--xla_backend_optimization_level=0``):
faster compiles. Two other flags would compile faster still but are NOT used: with
``--xla_llvm_disable_expensive_passes=true`` or ``--xla_cpu_use_fusion_emitters=false`` every compiled program
leaves 4-8 times more memory mappings (about 120-170 per contract test instead of 25), so a pytest worker that
runs some 1,800 tests reaches the kernel's limit (vm.max_map_count, 65530) and the next compilation segfaults
(seen twice in CI runs). Every comparison here is between results computed under the same flags (jit against
eager, flat against per leaf, a run against its resumed twin) or against float64 references with tolerances,
so the flag changes no verdict. Subprocesses started by the tests (notebook kernels, multi-device workers)
inherit it through ``XLA_FLAGS``; set ``GRADTX_TEST_XLA_DEFAULTS=1`` to run with XLA's defaults instead.
"""

import gc
import os

FAST_COMPILE_FLAGS = ("--xla_backend_optimization_level=0",)
if not os.environ.get("GRADTX_TEST_XLA_DEFAULTS"):
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *FAST_COMPILE_FLAGS]).strip()

import chex  # noqa: E402
import jax  # noqa: E402  (after XLA_FLAGS is set)
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True)
def _fresh_trace_counts():
    """``chex.assert_max_traces`` counts the traces of a function by where it is defined, process-wide: every
    test starts from zero, so the cases of a parametrized test (one definition site) do not add up."""
    chex.clear_trace_counter()



# Every compiled program keeps its code mapped until JAX's caches drop it and Python frees it. With jax 0.10 a
# contract test leaves about 240 memory mappings, so a process that kept them all would pass the kernel's limit
# (vm.max_map_count, 65530 by default) after some 270 such tests and the next compilation would segfault. So
# compiled programs are freed: JAX's caches are cleared every 25 tests and at the end of every module (with a
# garbage collection there, for programs held by reference cycles), and at once whenever the process holds more
# than a quarter of the limit. A process stays near 700 mappings and the whole suite runs in one process
# (``pytest -q`` without ``-n``); only programs shared between tests are compiled again.
_CLEAR_EVERY = int(os.environ.get("GRADTX_TEST_CLEAR_EVERY", "25"))
_tests_run = 0


def _map_count() -> int:
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux
        return 0


def _map_limit() -> int:
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 65530


_MAP_LIMIT = _map_limit()


def pytest_runtest_teardown(item, nextitem):
    global _tests_run
    _tests_run += 1
    module_ends = nextitem is None or nextitem.path != item.path
    if module_ends or _tests_run % _CLEAR_EVERY == 0 or _map_count() > _MAP_LIMIT // 4:
        jax.clear_caches()
        if module_ends:
            gc.collect()


# --- hypothesis profile (issue 15) -------------------------------------------------------------------------
# Every run draws the same examples: the "ci" profile derandomizes hypothesis (its random choices seeded from
# each test, no example database), has no deadline (the first example of a test compiles) and prints the
# reproduction blob of a failure. Loaded by default; HYPOTHESIS_PROFILE=default (or another registered
# profile) overrides it, e.g. to explore new random draws locally.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True, database=None)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
# --- end of the hypothesis profile ---------------------------------------------------------------------------
