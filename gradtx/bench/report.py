"""The table ``python -m gradtx bench`` prints, from the JSON document :func:`gradtx.bench.run` returns."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradtx.bench.workloads import TRAFFIC

__all__ = ["format_report"]


def _fmt(x: Any, spec: str = ".2f") -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    return format(x, spec)


def format_report(result: dict[str, Any]) -> str:
    """The table printed by ``python -m gradtx bench``.

    A header line (backend, device, versions, CPUs, date), the roofline, one table per workload and optimizer
    (median and min ms, GB/s, % of the roofline, paired ratios against ``optax-donate`` and ``torch-fused``),
    then the compile, memory, trace-scaling and ZeRO-1 sections present in ``result``, and the total time.

    Args:
      result: the JSON document :func:`gradtx.bench.run` returns (at least ``environment``, ``roofline``,
        ``workloads`` and ``wall_s``).

    Returns:
      The table, lines joined by newlines.

    Example:
      >>> from gradtx import bench
      >>> result = {"environment": bench.environment(), "workloads": {}, "wall_s": 1.5,
      ...           "roofline": {"triad": {"gb_s": 10.0}, "triad-donate": {"gb_s": 12.0}}}
      >>> print(bench.format_report(result).splitlines()[1])
      roofline (triad a = b + s*c, 3 arrays): 10.0 GB/s, donated 12.0 GB/s
    """
    env = result["environment"]
    lines = [
        f"gradtx bench | backend {env['backend']} | device {env['device']} x{env['device_count']} | "
        f"jax {env['jax']} | optax {env['optax'] or 'not installed'} | torch {env['torch'] or 'not installed'} | "
        f"{env['cpu_count']} CPUs ({env['cpu']}) | {env['date']}",
    ]
    roof = result["roofline"]
    lines.append(
        f"roofline (triad a = b + s*c, 3 arrays): {_fmt(roof['triad']['gb_s'], '.1f')} GB/s, "
        f"donated {_fmt(roof['triad-donate']['gb_s'], '.1f')} GB/s"
    )
    for wname, entry in result["workloads"].items():
        for oname, rows in entry["optimizers"].items():
            lines.append("")
            lines.append(
                f"{wname} {oname}: {entry['leaves']} leaves, {entry['params']:,} params "
                f"(GB/s counts {TRAFFIC[oname]} arrays)"
            )
            lines.append(
                f"  {'variant':<15}{'median ms':>11}{'min ms':>10}{'GB/s':>8}{'% roof':>8}"
                f"{'/optax-donate':>14}{'/torch-fused':>13}"
            )
            for name, r in rows.items():
                lines.append(
                    f"  {name:<15}{_fmt(r['median_ms'], '.3f'):>11}{_fmt(r['min_ms'], '.3f'):>10}"
                    f"{_fmt(r['gb_s'], '.1f'):>8}{_fmt(r['roofline_pct'], '.0f'):>8}"
                    f"{_fmt(r.get('ratio_vs_optax-donate')):>14}{_fmt(r.get('ratio_vs_torch-fused')):>13}"
                )
            if env["torch"] is None:
                lines.append("  torch: not installed")
    if "compile" in result:
        lines.append("")
        lines.append("compile, Adam step (s): lower = trace + lowering, compile = XLA")
        for wname, row in result["compile"].items():
            parts = [f"{k} {_fmt(v['lower_s'])} + {_fmt(v.get('compile_s'))}" for k, v in row.items()]
            lines.append(f"  {wname:<12} " + " | ".join(parts))
    if "memory" in result:
        lines.append("")
        lines.append("memory of one W1 Adam step above the live data (params + grads + state), MiB")
        for name, r in result["memory"].items():
            if "error" in r:
                lines.append(f"  {name:<15} error: {r['error']}")
            else:
                lines.append(
                    f"  {name:<15} +{_fmt(r['extra_mib'], '.0f')} over {_fmt(r['live_mib'], '.0f')} live "
                    f"({r['method']})"
                )
    if "trace_scaling" in result:
        lines.append("")
        lines.append("trace scaling, chain(clip_by_global_norm, adam):")
        for r in result["trace_scaling"]:
            lines.append(
                f"  {r['leaves']:>6} leaves: trace {_fmt(r['trace_s'])} s, lower {_fmt(r['lower_s'])} s, "
                f"{_fmt(r['trace_us_per_leaf'], '.0f')} us/leaf"
            )
    if "zero1" in result:
        lines.append("")
        z = result["zero1"]
        mib = 2.0**20
        lines.append(f"Adam state per device on W2 (planned): replicated {z['replicated_bytes'] / mib:.1f} MiB")
        for n, b in z["zero1"].items():
            lines.append(f"  ZeRO-1 over {n:>3} data devices: {b / mib:8.2f} MiB ({b / z['replicated_bytes']:.4f} x)"
                         " per leaf")
            f = z.get("zero1_flat", {}).get(n)
            if f is not None:
                lines.append(f"  {'':>28}  {f / mib:8.2f} MiB ({f / z['replicated_bytes']:.4f} x) flat, padded "
                             f"(1/{n} = {1 / int(n):.4f})")
    lines.append("")
    sections = ", ".join(f"{k} {v:.0f}" for k, v in result.get("sections_s", {}).items())
    lines.append(f"total {result['wall_s']:.1f} s ({sections})")
    return "\n".join(lines)
