"""The ``rfm-stream`` parser and :func:`main`: it only wires the subcommands together.

Each command registers itself, with its options, from its own module: ``worker``,
``demo``, ``backfill``, ``namespaces`` (promote, drop), ``diff`` (diff and rules diff, the
dry runs), ``rules`` (rules check, recalibrate, schemas), ``views`` (inspect, segments,
report), ``winback``, ``members`` (a segment's customers). Settings options come from
``stream.cli.options``. Failures end with one line on stderr and a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from redis.exceptions import RedisError

from schemas.errors import RfmStreamError
from stream.cli import backfill, demo, diff, members, namespaces, rules, views, winback, worker
from stream.cli.base import Subcommands

__all__ = ["build_parser", "main"]

# In the order ``rfm-stream --help`` lists them.
COMMANDS: tuple[Callable[[Subcommands], None], ...] = (
    worker.add_worker,
    demo.add_demo,
    backfill.add_backfill,
    namespaces.add_promote,
    namespaces.add_drop,
    diff.add_diff,
    rules.add_rules,
    views.add_inspect,
    views.add_segments,
    views.add_report,
    winback.add_winback,
    members.add_members,
    rules.add_recalibrate,
    rules.add_schemas,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rfm-stream", description="Real-time RFM customer segmentation on Kafka + Redis."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RfmStreamError as exc:
        print(f"rfm-stream: {exc}", file=sys.stderr)
        return 2
    except RedisError as exc:  # an ACL refusal (NOPERM) mid-command: a setting, one line
        from state.connection import misconfiguration

        reason = misconfiguration(exc)
        if reason is None:
            raise
        print(f"rfm-stream: redis {reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rfm-stream: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
