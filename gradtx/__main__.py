"""``python -m gradtx``: the command line.

    python -m gradtx demo [--steps N] [--tiny-steps N] [--out DIR] [--no-plot]

``demo`` runs the lecture's narrow-valley experiment (see :mod:`gradtx.demo`), prints the table and writes
``narrow_valley.png``. Further subcommands (a ``bench``) register the same way: a parser in
``_build_parser`` and a function taking the parsed arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _demo(args: argparse.Namespace) -> int:
    from gradtx import demo

    return demo.main(steps=args.steps, tiny_steps=args.tiny_steps, out=args.out, make_plot=not args.no_plot)


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
