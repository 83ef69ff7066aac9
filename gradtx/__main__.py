"""``python -m gradtx``: the command line.

    python -m gradtx demo [--steps N] [--tiny-steps N] [--out DIR] [--no-plot]
    python -m gradtx bench [--quick] [--json PATH] [--workloads W1,W2,W3] [--optimizers adam,sgdm]
                           [--repeats N] [--no-compile] [--no-memory] [--no-torch] [--no-optax]
                           [--trace-scaling [250,500,...]]

``demo`` runs the lecture's narrow-valley experiment (see :mod:`gradtx.demo`), prints the table and writes
``narrow_valley.png``. ``bench`` times the optimizer step against Optax, torch.optim and the memory
roofline (see :mod:`gradtx.bench`). Further subcommands register the same way: a parser in
``_build_parser`` and a function taking the parsed arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

WORKLOADS = ("W1", "W2", "W3")  # = gradtx.bench.WORKLOADS (not imported here: the parser stays light)
OPTIMIZERS = ("adam", "sgdm")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _demo(args: argparse.Namespace) -> int:
    from gradtx import demo

    return demo.main(steps=args.steps, tiny_steps=args.tiny_steps, out=args.out, make_plot=not args.no_plot)


def _choices(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(t.strip() for t in text.split(",") if t.strip())
        bad = [t for t in items if t not in allowed]
        if not items or bad:
            raise argparse.ArgumentTypeError(f"must be a comma-separated list of {', '.join(allowed)}, got {text}")
        return items

    return parse


def _leaf_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"must be a comma-separated list of positive integers, got {text}")
    return counts


def _bench(args: argparse.Namespace) -> int:
    from gradtx import bench

    return bench.main(
        quick=args.quick,
        json_path=args.json,
        workloads=args.workloads,
        optimizers=args.optimizers,
        repeats=args.repeats,
        compile=not args.no_compile,
        memory=not args.no_memory,
        trace_leaves=args.trace_scaling or (),
        torch=not args.no_torch,
        optax=not args.no_optax,
    )


def _add_bench(sub: Any) -> None:
    bench = sub.add_parser(
        "bench",
        help="time the optimizer step against Optax, torch.optim and the memory roofline",
        description=(
            "Time one Adam and one SGD-momentum step on W1 (one 2**24 float32 array), W2 (a transformer-like "
            "tree, ~600 leaves, ~20 M params) and W3 (a 10-leaf MLP, ~50 K params): gradtx jit, donated "
            "(make_step) and flat, Optax plain and donated, torch.optim foreach and fused, interleaved, against "
            "an in-run triad roofline; compile times, peak memory of one step. Prints a table, writes JSON."
        ),
    )
    bench.add_argument("--quick", action="store_true", help="small sizes and few repeats (under a minute)")
    bench.add_argument("--json", metavar="PATH", default=None, help="write every figure to this JSON file")
    bench.add_argument(
        "--workloads", type=_choices(WORKLOADS), default=None, help="comma-separated subset of W1,W2,W3 (default all)"
    )
    bench.add_argument(
        "--optimizers", type=_choices(OPTIMIZERS), default=None, help="comma-separated subset of adam,sgdm"
    )
    bench.add_argument("--repeats", type=_positive_int, default=None, help="timed rounds (default 15, quick 5)")
    bench.add_argument("--no-compile", action="store_true", help="skip the compile-time section")
    bench.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    bench.add_argument("--no-torch", action="store_true", help="leave torch.optim out even if installed")
    bench.add_argument("--no-optax", action="store_true", help="leave Optax out even if installed")
    bench.add_argument(
        "--trace-scaling",
        type=_leaf_counts,
        nargs="?",
        const=(250, 500, 1000, 2000, 4000),
        default=None,
        metavar="N,N,...",
        help="also time tracing chain(clip_by_global_norm, adam) over these leaf counts "
        "(default 250,500,1000,2000,4000)",
    )
    bench.set_defaults(func=_bench)


def _build_parser() -> argparse.ArgumentParser:
    from gradtx.demo import DEFAULT_STEPS, TINY_LR_STEPS  # light: the demo module imports no matplotlib

    parser = argparse.ArgumentParser(prog="python -m gradtx", description="gradtx command line.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="the lecture's narrow-valley experiment: table and figure",
        description=(
            "Run the lecture's narrow-valley experiment (gradient descent with a large and a tiny learning "
            "rate, the lecture's RMS optimizer with and without learning-rate decay, RMSProp, Adam, Adam "
            "with warm-up and cosine decay), print a table and write narrow_valley.png."
        ),
    )
    demo.add_argument(
        "--steps",
        type=_positive_int,
        default=DEFAULT_STEPS,
        help=f"steps of every run except GD with lr 1e-7 (default {DEFAULT_STEPS:,}; the "
        "adaptive runs need about 4,000 to reach the minimum, the RMS bursts start near 2,000)",
    )
    demo.add_argument(
        "--tiny-steps",
        type=_positive_int,
        default=TINY_LR_STEPS,
        help=f"steps of GD with lr 1e-7, independent of --steps (default {TINY_LR_STEPS:,}, the "
        "lecture's number: the point is that this many steps still get nowhere)",
    )
    demo.add_argument(
        "--out", default=".", help="folder for narrow_valley.png, created if needed (default: .)"
    )
    demo.add_argument("--no-plot", action="store_true", help="print the table only")
    demo.set_defaults(func=_demo)
    _add_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
