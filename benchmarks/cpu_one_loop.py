"""Can XLA on CPU run Adam's step as one loop? Three formulations of one step on W2's size, timed side by side.

    python benchmarks/cpu_one_loop.py [--size N]

- ``blocks``: ``make_step(gradtx.adam(1e-3), kernel="off")`` on one flat buffer (what gradtx runs): XLA emits
  three fused loops (mu, nu, then the parameters from both), ten array passes.
- ``kernel-xla``: ``make_step(..., kernel="xla")``, the fused kernel's body on whole arrays (the same program).
- ``scan``: ``lax.scan`` over chunks of ``C`` elements, each iteration one chunk of all four arrays (seven
  passes in principle).
- ``fori``: ``lax.fori_loop`` updating the carried buffers in place with ``dynamic_update_slice``.

Prints the median step time of each and its ratio to ``blocks`` (measured in the same run), and the number of
``copy`` instructions in each compiled program.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import gradtx
from gradtx.flat import pack
from gradtx.step import make_step

B1, B2, EPS, LR = 0.9, 0.999, 1e-8, 1e-3


def _chunk_math(p: Any, m: Any, v: Any, g: Any, c1: Any, c2: Any) -> tuple[Any, Any, Any]:
    m = B1 * m + (1 - B1) * g
    v = B2 * v + (1 - B2) * g * g
    return p - LR * (m / c1) / (jnp.sqrt(v / c2) + EPS), m, v


def scan_step(chunk: int) -> Any:
    def step(p: Any, m: Any, v: Any, g: Any, count: Any) -> Any:
        t = (count + 1).astype(jnp.float32)
        c1, c2 = 1 - B1 ** t, 1 - B2 ** t

        def body(_: Any, x: Any) -> Any:
            return None, _chunk_math(*x, c1, c2)

        _, (p, m, v) = lax.scan(body, None, tuple(a.reshape(-1, chunk) for a in (p, m, v, g)))
        return p.reshape(-1), m.reshape(-1), v.reshape(-1), count + 1

    return jax.jit(step, donate_argnums=(0, 1, 2))


def fori_step(chunk: int) -> Any:
    def step(p: Any, m: Any, v: Any, g: Any, count: Any) -> Any:
        t = (count + 1).astype(jnp.float32)
        c1, c2 = 1 - B1 ** t, 1 - B2 ** t

        def body(i: Any, carry: Any) -> Any:
            p, m, v = carry
            s = i * chunk
            pi, mi, vi = _chunk_math(*(lax.dynamic_slice(a, (s,), (chunk,)) for a in (p, m, v, g)), c1, c2)
            return tuple(lax.dynamic_update_slice(a, x, (s,)) for a, x in ((p, pi), (m, mi), (v, vi)))

        p, m, v = lax.fori_loop(0, p.shape[0] // chunk, body, (p, m, v))
        return p, m, v, count + 1

    return jax.jit(step, donate_argnums=(0, 1, 2))


def time_raw(fn: Any, n: int, repeats: int) -> tuple[float, int]:
    args = [jnp.ones(n), jnp.zeros(n), jnp.zeros(n), jnp.full(n, 0.01), jnp.zeros([], jnp.int32)]
    copies = fn.lower(*args).compile().as_text().count(" copy(")
    p, m, v, g, c = args
    p, m, v, c = fn(p, m, v, g, c)
    jax.block_until_ready(p)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        p, m, v, c = fn(p, m, v, g, c)
        jax.block_until_ready(p)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3, copies


def time_make_step(kernel: str, n: int, repeats: int) -> tuple[float, int]:
    opt = gradtx.adam(LR)
    step = make_step(opt, kernel=kernel)
    p, g = pack({"w": jnp.ones(n)}), pack({"w": jnp.full(n, 0.01)})
    s = opt.init(p)
    copies = step.jitted.lower(p, s, g).compile().as_text().count(" copy(")
    p, s = step(p, s, g)
    jax.block_until_ready(p)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        p, s = step(p, s, g)
        jax.block_until_ready(p)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3, copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=21_495_808, help="elements (W2: 21.6 M; a multiple of 2**18)")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    n = args.size
    print(f"jax {jax.__version__} | backend {jax.default_backend()} | {n:,} float32 elements")
    rows = [("blocks", *time_make_step("off", n, args.repeats)),
            ("kernel-xla", *time_make_step("xla", n, args.repeats))]
    for chunk in (2 ** 14, 2 ** 16, 2 ** 18):
        rows.append((f"scan C={chunk}", *time_raw(scan_step(chunk), n, max(args.repeats // 2, 1))))
    rows.append((f"fori C={2 ** 18}", *time_raw(fori_step(2 ** 18), n, 1)))
    base = rows[0][1]
    print(f"{'variant':<16}{'median ms':>12}{'/blocks':>10}{'copies':>8}")
    for name, ms, copies in rows:
        print(f"{name:<16}{ms:>12.2f}{ms / base:>10.2f}{copies:>8}")


if __name__ == "__main__":
    main()
