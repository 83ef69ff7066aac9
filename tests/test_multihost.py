"""Multi-host data parallelism: two CPU processes joined by ``jax.distributed.initialize`` on loopback, with
Gloo collectives, run the same Adam steps as one process (tests/_multihost_worker.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from _multihost_worker import NUM_PROCESSES, problem, train

WORKER = Path(__file__).with_name("_multihost_worker.py")
TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_process_data_parallel_step_equals_single_process(tmp_path):
    """Each of 2 processes (2 CPU devices each) feeds half of every global batch; plain data parallelism and
    ZeRO-1 (Adam state split over the 4 devices of both processes) and ZeRO-2 over flat buffers
    (``make_step(zero=2)``: the gradients reduce-scattered across the processes) give the parameters of the same steps
    run here in one process on the whole batch (float32 tolerance); both processes hold the same parameters,
    and each device holds a quarter of the moments (plus the replicated int32 counter)."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2".strip()  # keep conftest's
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    env.pop("JAX_ENABLE_X64", None)
    port = _free_port()
    outs = [tmp_path / f"process{i}.npz" for i in range(NUM_PROCESSES)]
    procs = [subprocess.Popen([sys.executable, "-W", "error", str(WORKER), str(i), str(port), str(outs[i])],
                              env=env, cwd=WORKER.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(NUM_PROCESSES)]
    logs = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=TIMEOUT_S)
            logs.append(f"--- process rc={p.returncode}\nstdout:\n{stdout}\nstderr:\n{stderr[-4000:]}")
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        for p in procs:
            stdout, stderr = p.communicate()
            logs.append(f"--- process (killed after {TIMEOUT_S} s)\nstdout:\n{stdout}\nstderr:\n{stderr[-4000:]}")
        raise AssertionError("the two-process run timed out\n" + "\n".join(logs)) from None
    report = "\n".join(logs)
    assert all(p.returncode == 0 for p in procs), report

    host_params, data = problem()
    want, _ = train(jax.tree.map(jnp.asarray, host_params), [(jnp.asarray(x), jnp.asarray(y)) for x, y in data])
    want = {k: np.asarray(v) for k, v in want.items()}
    assert all(v.dtype == np.float32 for v in want.values())
    results = [dict(np.load(o)) for o in outs]
    param_bytes = sum(a.nbytes for a in host_params.values())
    for r in results:
        for mode in ("dp", "zero1", "zero2_flat"):
            for k in want:
                assert np.max(np.abs(want[k] - host_params[k])) > 1e-3, k  # the steps moved every leaf
                np.testing.assert_allclose(r[f"{mode}/{k}"], want[k], rtol=2e-5, atol=2e-6, err_msg=f"{mode}/{k}")
                np.testing.assert_array_equal(r[f"{mode}/{k}"], results[0][f"{mode}/{k}"])
        # 4 devices in all: mu and nu split 4 ways, the int32 counter replicated
        assert list(r["zero1_local_state_bytes"]) == [2 * param_bytes // 4 + 4] * 2, report
        assert list(r["zero2_flat_local_state_bytes"]) == [2 * param_bytes // 4 + 4] * 2, report
