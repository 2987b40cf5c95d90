"""``rfm-stream demo``: a local broker + Redis, demo POS events, the transitions they cause."""

from __future__ import annotations

import argparse

from stream.cli.base import Subcommands

__all__ = ["add_demo", "cmd_demo"]


def add_demo(sub: Subcommands) -> None:
    demo = sub.add_parser(
        "demo", help="start a local broker + redis, feed demo POS events, show transitions"
    )
    demo.add_argument("--customers", type=int, default=300)
    demo.add_argument("--events", type=int, default=3000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--seconds", type=float, default=15.0, help="how long to feed events")
    demo.add_argument("--quiet", action="store_true", help="print the summary only")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo needs no settings of its own: it starts the broker and Redis it talks to."""
    from stream.demo.run import DemoOptions, run_demo

    opts = DemoOptions(
        customers=args.customers,
        events=args.events,
        seed=args.seed,
        seconds=args.seconds,
        quiet=args.quiet,
    )
    return run_demo(opts)
