"""Strict test configuration: warnings are errors (pyproject), float64 is available."""

import jax

jax.config.update("jax_enable_x64", True)
