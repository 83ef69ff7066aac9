"""Sharded optimizer state (DESIGN.md section 7): abstract init for every registry entry, state that inherits
the parameters' shardings, a data- and model-parallel step, and ZeRO-1 (gradtx.sharding).

The checks that need 8 devices run in one subprocess (tests/_sharding_worker.py), because this process has
already imported JAX with one device.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from registry import ENTRIES

import gradtx
from gradtx.sharding import state_shardings
from gradtx.testing.contract import default_params

WORKER = Path(__file__).with_name("_sharding_worker.py")


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_eval_shape_init(entry):
    """``jax.eval_shape(opt.init, params)`` works without concrete values and describes the real state exactly:
    same tree structure, shapes and dtypes as ``opt.init(params)``."""
    tx = entry.make()
    params = default_params()
    abstract_params = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    shapes = jax.eval_shape(tx.init, abstract_params)
    state = tx.init(params)
    assert jax.tree.structure(shapes) == jax.tree.structure(state)
    for s, x in zip(jax.tree.leaves(shapes), jax.tree.leaves(state)):
        assert isinstance(s, jax.ShapeDtypeStruct)
        assert (tuple(s.shape), s.dtype) == (tuple(np.shape(x)), jax.numpy.asarray(x).dtype)  # also PRNG keys


def test_sharded_state_on_eight_devices():
    """In one subprocess with 8 host devices (see tests/_sharding_worker.py for each check):

    - eager ``opt.init``, ``jax.jit(opt.init)`` on an explicit 2x4 ("data", "model") mesh, and
      ``jax.jit(opt.init, out_shardings=state_shardings(opt, params))`` on an Auto mesh give every
      parameter-shaped state leaf exactly its parameter's sharding, for SGD momentum, Adam, AdamW, Adafactor
      (factored and not), Lion, clip + Adam, partition and masked;
    - 5 Adam steps with the batch split on "data" and the weights on "model" equal the single-device run;
    - ZeRO-1: replicated params, state split on "data" (8 ways): equal results, per-device state bytes
      = total / 8 (plus the replicated counter), also planned from ``eval_shape`` before allocation;
    - exact ZeRO over flat buffers padded to a multiple of 8 (``pack(multiple_of=8)``), ``make_step(zero=1)``
      and ``zero=2`` (gradients reduce-scattered): 1/8 of the state per device on a tree of 813 parameters,
      equal results;
    - model-parallel flat buffers (``pack(by_sharding=True)``, ``make_step(flat=True)``): one buffer per
      sharding group, split where the leaves are, equal results, no collective in the AdamW update.
    """
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8".strip()  # keep conftest's
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    env.pop("JAX_ENABLE_X64", None)
    proc = subprocess.run([sys.executable, "-W", "error", str(WORKER)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=WORKER.parent)
    report = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-5000:]}"
    assert proc.returncode == 0, report
    lines = proc.stdout.splitlines()
    assert "ALL DONE" in lines, report
    names = [line.split()[1] for line in lines if line.startswith("CHECK ")]
    for family in ("sgd_momentum", "adam", "adamw", "adafactor", "adafactor_factored", "lion", "clip_chain",
                   "partition", "masked"):
        for mesh in ("explicit", "auto"):
            assert f"init_shardings[{mesh},{family}]" in names, report
    for name in ("data_model_parallel[explicit]", "data_model_parallel[auto]", "zero1_layout",
                 "zero1_step[adam]", "zero1_step[clip_adamw]", "zero_flat[stage1]", "zero_flat[stage2]",
                 "flat_by_sharding[explicit]", "flat_by_sharding[auto]", "flat_by_sharding_errors",
                 "device_bytes_errors"):
        assert name in names, report


def test_state_shardings_needs_named_shardings():
    """Parameters that are not on a mesh cannot define a layout: the error says what to do."""
    with pytest.raises(ValueError, match=r"state_shardings\(params=...\): params must carry NamedSharding"):
        state_shardings(gradtx.adam(1e-3), default_params())
