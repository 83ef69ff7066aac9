"""Strict test configuration: warnings are errors (pyproject), float64 is available.

The tests check numbers, not speed, and most of their time is XLA compiling small programs. Before JAX is
imported, the CPU backend is told to compile cheaply (no LLVM optimisation, no expensive passes): about 1.5x
faster over the suite. (``--xla_cpu_use_fusion_emitters=false`` would save as much again, but one CI run with
it had a segmentation fault while XLA compiled a while loop, and the classic emitter is the less-tested path.)
Every comparison here is between results computed under the same flags (jit against eager, flat against per
leaf, a run against its resumed twin) or against float64 references with tolerances, so the flags change no
verdict. Subprocesses started by the tests (notebook kernels, multi-device workers) inherit them through
``XLA_FLAGS``; set ``GRADTX_TEST_XLA_DEFAULTS=1`` to run the suite with XLA's default optimisation instead.
"""

import os

FAST_COMPILE_FLAGS = (
    "--xla_backend_optimization_level=0",
    "--xla_llvm_disable_expensive_passes=true",
)
if not os.environ.get("GRADTX_TEST_XLA_DEFAULTS"):
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *FAST_COMPILE_FLAGS]).strip()

import jax  # noqa: E402  (after XLA_FLAGS is set)

jax.config.update("jax_enable_x64", True)
