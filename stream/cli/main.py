"""``rfm-stream`` command line: worker, demo, backfill, promote, drop, rules, inspect,
segments, report, recalibrate, schemas (the read-side ones live in ``stream.cli.read_side``).

Every setting is also a ``--kebab-case`` option, generated from :class:`Settings` so
the two can't drift; options default to the ``RFM_*`` environment. Failures end with
one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from schemas.errors import RfmStreamError, SettingsError
from schemas.settings import Settings
from stream.cli.options import add_settings_options, settings_from
from stream.cli.read_side import (
    cmd_inspect,
    cmd_recalibrate,
    cmd_report,
    cmd_rules_check,
    cmd_segments,
)

__all__ = ["main"]


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _check_layout(settings: Settings) -> None:
    """Refuse to start on a namespace built for another partition count (state.layout).

    Checked here, before faust starts, so the refusal is one line and exit code 2, not a
    crashed service. If Kafka or Redis can't answer yet (or the topic does not exist
    yet), the runtime checks again once they do.
    """
    import asyncio

    from schemas.errors import StoreUnavailable
    from state.keys import Keys
    from state.layout import ensure_layout
    from state.store import RedisStore
    from stream.kafka.clients import topic_partitions

    async def check() -> None:
        n = await topic_partitions(settings, timeout_s=5)
        if n is None:
            return
        url = settings.redis_url.get_secret_value()
        store = RedisStore.from_url(url, settings.key_prefix, settings.namespace)
        try:
            store.keys = Keys(settings.key_prefix, await store.serving(settings.namespace))
            await ensure_layout(store, settings.purchases_topic, n)
        except StoreUnavailable:
            return
        finally:
            await store.close()

    # quiet: an unreachable Kafka or Redis is the runtime's to report (and wait for)
    logging.disable(logging.CRITICAL)
    loop = asyncio.new_event_loop()  # not installed: faust makes and owns the worker's loop
    try:
        loop.run_until_complete(check())
    finally:
        loop.close()
        logging.disable(logging.NOTSET)


def cmd_worker(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    import faust

    from stream.live.faust_app import create_app
    from stream.live.runtime import Runtime

    runtime = Runtime(settings)  # a bad rules file stops here
    _check_layout(settings)  # before logging is set up: a refusal is one line on stderr
    _setup_logging(settings.log_level)
    app = create_app(settings, runtime)
    worker = faust.Worker(app, runtime, loglevel=settings.log_level, quiet=True)
    # faust's progress spinner, kept at log levels >= warning, sets the root logger to
    # DEBUG so it can spin on every record: aiokafka then builds a debug record per
    # produced message (~4 % of the worker's CPU at 1k events/s). No terminal here.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from stream.demo.run import DemoOptions, run_demo

    opts = DemoOptions(
        customers=args.customers,
        events=args.events,
        seed=args.seed,
        seconds=args.seconds,
        quiet=args.quiet,
    )
    return run_demo(opts)


def _time_ms(text: str | None, flag: str) -> int | None:
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


def _import_files(settings: Settings, opts: Any, paths: list[Path]) -> int:
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
    import asyncio

    from state.namespaces import checked_name
    from stream.backfill.run import BackfillOptions, backfill_topic

    settings = settings_from(args)
    checked_name(args.into, "--into")
    _setup_logging("warning" if settings.log_level == "info" else settings.log_level)
    opts = BackfillOptions(
        namespace=args.into,
        since_ms=_time_ms(args.since, "--since"),
        until_ms=_time_ms(args.until, "--until"),
        emit_topic=args.emit_topic,
        batch=args.batch,
        progress=not args.no_progress,
        jobs=args.jobs,
    )
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


async def _with_redis(settings: Settings, fn: Any) -> Any:
    """Run ``fn(client)`` with a client for ``RFM_REDIS_URL`` (one server or a cluster)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisClusterException

    from schemas.errors import StoreUnavailable
    from state.connection import connect

    try:
        client = await connect(settings.redis_url.get_secret_value(), decode_responses=True)
    except (OSError, RedisConnectionError, RedisClusterException) as exc:
        raise StoreUnavailable(f"redis unavailable: {exc}") from None
    try:
        return await fn(client)
    except (OSError, RedisConnectionError) as exc:
        raise StoreUnavailable(f"redis unavailable: {exc}") from None
    finally:
        await client.aclose()


def cmd_promote(args: argparse.Namespace) -> int:
    import asyncio

    from state.namespaces import checked_name, promote

    s = settings_from(args)
    checked_name(args.target)

    async def run(client: Any) -> str:
        await _refuse_other_layout(s, client, args.target)
        return await promote(client, s.key_prefix, s.namespace, args.target)

    old = asyncio.run(_with_redis(s, run))
    print(
        f"namespace {args.target!r} now serves {s.namespace!r} (was {old!r}); running workers "
        f"switch within {s.decay_interval} ms. Once they published its outbox, drop the old "
        f"one with: rfm-stream drop {old}"
    )
    return 0


async def _refuse_other_layout(settings: Settings, client: Any, target: str) -> None:
    """Promoting a namespace built for another partition count than the topic's would make
    every worker refuse to start on it: refuse the promote instead (if Kafka answers)."""
    from schemas.errors import LayoutMismatch
    from state.keys import Keys
    from state.layout import mismatch, recorded_layout
    from state.store import RedisStore
    from stream.kafka.clients import topic_partitions

    n = await topic_partitions(settings, timeout_s=5)
    built = await recorded_layout(RedisStore(client, Keys(settings.key_prefix, target)))
    if n is not None and built is not None and built[0] != n:
        raise LayoutMismatch(mismatch(target, built, settings.purchases_topic, n))


def cmd_drop(args: argparse.Namespace) -> int:
    import asyncio

    from state.namespaces import checked_name, drop

    s = settings_from(args)
    checked_name(args.target)
    n = asyncio.run(_with_redis(s, lambda c: drop(c, s.key_prefix, s.namespace, args.target)))
    print(f"dropped namespace {args.target!r}: {n:,} keys")
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    from pathlib import Path

    from schemas.export import JSON_DIR, write

    for p in write(Path(args.out) if args.out else JSON_DIR):
        print(p)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rfm-stream", description="Real-time RFM customer segmentation on Kafka + Redis."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    worker = sub.add_parser("worker", help="run the stream worker (the service)")
    add_settings_options(worker)
    worker.set_defaults(func=cmd_worker)

    demo = sub.add_parser(
        "demo", help="start a local broker + redis, feed demo POS events, show transitions"
    )
    demo.add_argument("--customers", type=int, default=300)
    demo.add_argument("--events", type=int, default=3000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--seconds", type=float, default=15.0, help="how long to feed events")
    demo.add_argument("--quiet", action="store_true", help="print the summary only")
    demo.set_defaults(func=cmd_demo)

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

    promote = sub.add_parser(
        "promote", help="make a backfilled namespace serve the live name (RFM_NAMESPACE)"
    )
    promote.add_argument("target", metavar="NAMESPACE")
    add_settings_options(promote)
    promote.set_defaults(func=cmd_promote)

    drop = sub.add_parser("drop", help="delete a namespace that no longer serves the live name")
    drop.add_argument("target", metavar="NAMESPACE")
    add_settings_options(drop)
    drop.set_defaults(func=cmd_drop)

    rules = sub.add_parser("rules", help="segment rules files")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser(
        "check", help="validate a rules file: gaps, overlaps, unreachable segments, band order"
    )
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=cmd_rules_check)

    inspect = sub.add_parser("inspect", help="a customer's state, segments and history")
    inspect.add_argument("customer_id", metavar="CUSTOMER_ID")
    inspect.add_argument("--json", action="store_true", help="the API's JSON instead of a table")
    add_settings_options(inspect)
    inspect.set_defaults(func=cmd_inspect)

    segs = sub.add_parser("segments", help="customers per segment per scheme, now")
    segs.add_argument("--json", action="store_true", help="the API's JSON instead of tables")
    add_settings_options(segs)
    segs.set_defaults(func=cmd_segments)

    report = sub.add_parser(
        "report", help="an HTML page of segment flows (Sankey) and sizes over a time range"
    )
    report.add_argument("--since", required=True, help="start, ISO-8601 with a timezone")
    report.add_argument("--until", help="end (default: now)")
    report.add_argument("--out", required=True, metavar="FILE.html")
    add_settings_options(report)
    report.set_defaults(func=cmd_report)

    recal = sub.add_parser(
        "recalibrate", help="recompute quantile cut points now (a new cut-point version)"
    )
    add_settings_options(recal)
    recal.set_defaults(func=cmd_recalibrate)

    schemas = sub.add_parser("schemas", help="write the JSON Schema files")
    schemas.add_argument("--out", help="directory (default: the package's schemas/json)")
    schemas.set_defaults(func=cmd_schemas)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RfmStreamError as exc:
        print(f"rfm-stream: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rfm-stream: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
