"""``rfm-stream backfill``: rebuild state into another namespace, from the topic or from files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.errors import SettingsError
from schemas.settings import Settings
from stream.cli.base import Subcommands, setup_logging
from stream.cli.options import add_settings_options, settings_from

if TYPE_CHECKING:
    from stream.backfill.run import BackfillOptions

__all__ = ["add_backfill", "cmd_backfill"]


def add_backfill(sub: Subcommands) -> None:
    backfill = sub.add_parser(
        "backfill", help="rebuild state from the purchases topic into another namespace"
    )
    backfill.add_argument(
        "--into", required=True, metavar="NAMESPACE", help="namespace to build (never the live one)"
    )
    backfill.add_argument("--since", help="only events at or after this time (ISO-8601)")
    backfill.add_argument("--until", help="only events before this time (ISO-8601)")
    backfill.add_argument(
        "--emit-topic",
        help="publish mode=backfill transitions here (default: count them, publish nothing)",
    )
    backfill.add_argument(
        "--batch", type=int, default=50_000, help="records per partition per batch"
    )
    backfill.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="processes reading partitions side by side (default: one per CPU, at most one "
        "per partition; 1: all in this process); not used with --file",
    )
    backfill.add_argument(
        "--file",
        action="append",
        metavar="PATH",
        help="import a .csv or JSON-lines file of events instead of the topic (repeatable)",
    )
    backfill.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_settings_options(backfill)
    backfill.set_defaults(func=cmd_backfill)


def _time_ms(text: str | None, flag: str) -> int | None:
    """``--since`` / ``--until`` as epoch ms; a time without a timezone is refused, not guessed."""
    if text is None:
        return None
    from datetime import datetime

    from schemas.times import to_ms

    try:
        dt = datetime.fromisoformat(text)
        return to_ms(dt)
    except ValueError:
        raise SettingsError(
            f"{flag}: {text!r} is not an ISO-8601 time with a timezone "
            "(e.g. 2026-01-01T00:00:00+08:00)"
        ) from None


def _import_files(settings: Settings, opts: BackfillOptions, paths: list[Path]) -> int:
    """``--file``: lay the files out for the topic's partition count, or RFM_PARTITIONS
    when Kafka can't say (the import itself needs no broker)."""
    import asyncio

    from stream.backfill.file_import import import_files
    from stream.kafka.clients import topic_partitions

    n = asyncio.run(topic_partitions(settings))
    if n is None:
        n = settings.partitions
        print(
            f"rfm-stream: Kafka not reachable; laying out for RFM_PARTITIONS={n}", file=sys.stderr
        )
    reports = asyncio.run(
        import_files(settings, opts.namespace, paths, n, opts.batch, opts.progress)
    )
    for r in reports:
        where = f", rejected rows with reasons in {r.rejected_path}" if r.rejected_path else ""
        print(f"imported {r.path}: {r.rows:,} rows, {r.rejected:,} rejected{where}")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """Never into the live namespace (checked_name); a summary line at the end, not logs."""
    import asyncio

    from state.namespaces import checked_name
    from stream.backfill.run import BackfillOptions, backfill_topic

    settings = settings_from(args)
    checked_name(args.into, "--into")
    setup_logging("warning" if settings.log_level == "info" else settings.log_level)
    opts = BackfillOptions(
        namespace=args.into,
        since_ms=_time_ms(args.since, "--since"),
        until_ms=_time_ms(args.until, "--until"),
        emit_topic=args.emit_topic,
        batch=args.batch,
        progress=not args.no_progress,
        jobs=args.jobs,
    )
    from stream.kafka.security import check_kafka

    asyncio.run(check_kafka(settings))  # a refused TLS/SASL configuration: one line, exit 2
    if args.file:
        return _import_files(settings, opts, [Path(f) for f in args.file])
    report = asyncio.run(backfill_topic(settings, opts))
    print(
        f"backfilled {report.events:,} events into namespace {opts.namespace!r} in "
        f"{report.seconds:.1f}s ({report.rate:,.0f} ev/s): {report.transitions:,} transitions"
        f"{' published to ' + opts.emit_topic if opts.emit_topic else ' (not published)'}, "
        f"{report.dead_letters:,} dead letters"
        f"{f', {report.jobs} processes' if report.jobs > 1 else ''}"
    )
    return 0
