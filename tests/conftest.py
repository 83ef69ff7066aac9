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



# Every compiled program keeps its code mapped until JAX's caches drop it. With jax 0.10 a contract test leaves
# about 240 memory mappings, so a pytest worker passes the kernel's limit (vm.max_map_count, 65530) after some
# 270 of them and the next compilation segfaults (a crashed xdist worker in CI). Clearing JAX's caches every 25
# tests keeps a worker near 700 mappings; only programs shared between tests are compiled again.
_CLEAR_EVERY = 25
_tests_run = 0


def pytest_runtest_teardown(item, nextitem):
    global _tests_run
    _tests_run += 1
    if _tests_run % _CLEAR_EVERY == 0:
        jax.clear_caches()


# --- hypothesis profile (issue 15) -------------------------------------------------------------------------
# Every run draws the same examples: the "ci" profile derandomizes hypothesis (its random choices seeded from
# each test, no example database), has no deadline (the first example of a test compiles) and prints the
# reproduction blob of a failure. Loaded by default; HYPOTHESIS_PROFILE=default (or another registered
# profile) overrides it, e.g. to explore new random draws locally.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True, database=None)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
# --- end of the hypothesis profile ---------------------------------------------------------------------------
