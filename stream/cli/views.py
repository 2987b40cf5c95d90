"""``rfm-stream inspect`` / ``segments`` / ``report``: what ops and marketing read off the store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from schemas.errors import SettingsError
from stream.cli.base import Subcommands
from stream.cli.options import add_settings_options, settings_from

__all__ = ["add_inspect", "add_report", "add_segments", "cmd_inspect", "cmd_report", "cmd_segments"]


def add_inspect(sub: Subcommands) -> None:
    inspect = sub.add_parser("inspect", help="a customer's state, segments and history")
    inspect.add_argument("customer_id", metavar="CUSTOMER_ID")
    inspect.add_argument("--json", action="store_true", help="the API's JSON instead of a table")
    add_settings_options(inspect)
    inspect.set_defaults(func=cmd_inspect)


def add_segments(sub: Subcommands) -> None:
    segs = sub.add_parser(
        "segments", help="customers, revenue, orders and AOV per segment per scheme, now"
    )
    segs.add_argument("--json", action="store_true", help="the API's JSON instead of tables")
    segs.add_argument(
        "--value",
        action="store_true",
        help="with --json: GET /segments/value's document instead of GET /segments'",
    )
    add_settings_options(segs)
    segs.set_defaults(func=cmd_segments)


def add_report(sub: Subcommands) -> None:
    report = sub.add_parser(
        "report", help="an HTML page of segment flows (Sankey) and sizes over a time range"
    )
    report.add_argument("--since", required=True, help="start, ISO-8601 with a timezone")
    report.add_argument("--until", help="end (default: now)")
    report.add_argument("--out", required=True, metavar="FILE.html")
    add_settings_options(report)
    report.set_defaults(func=cmd_report)


def cmd_inspect(args: argparse.Namespace) -> int:
    """Where is this customer and why: the same view as ``GET /customers/{id}``."""
    import asyncio

    import orjson

    from stream.api.lookup import BadParameter
    from stream.cli.terminal import open_lookup, render_customer

    s = settings_from(args)

    async def run() -> dict[str, Any] | None:
        async with open_lookup(s) as lookup:
            return await lookup.customer(args.customer_id)

    try:
        found = asyncio.run(run())
    except BadParameter as exc:
        raise SettingsError(str(exc)) from None
    if found is None:
        print(f"rfm-stream: no customer {args.customer_id!r} in {s.namespace!r}", file=sys.stderr)
        return 1
    text = orjson.dumps(found, option=orjson.OPT_INDENT_2).decode()
    print(text if args.json else render_customer(found))
    return 0


def cmd_segments(args: argparse.Namespace) -> int:
    """How many customers are where and what they are worth: ``GET /segments`` and
    ``GET /segments/value``."""
    import asyncio

    import orjson

    from state.layout import FiguresNotKept
    from stream.cli.terminal import open_lookup, render_segments
    from stream.cli.worth_view import render_values

    s = settings_from(args)

    async def run() -> dict[str, Any]:
        async with open_lookup(s) as lookup:
            if args.json and not args.value:
                return await lookup.segments()
            try:
                return await lookup.segment_values()
            except FiguresNotKept as exc:
                if args.value:
                    raise  # asked for them: one line, exit 2
                print(f"rfm-stream: {exc}", file=sys.stderr)  # the counts still answer
                return {"counts": await lookup.segments()}

    body = asyncio.run(run())
    if "counts" in body:
        print(render_segments(body["counts"]))
        return 0
    print(
        orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()
        if args.json
        else render_values(body)
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """A self-contained HTML page: Sankey of segment flows and segment sizes over time."""
    import asyncio

    from stream.api.lookup import BadParameter
    from stream.apply.clock import WallClock
    from stream.cli.terminal import build_report, open_lookup

    s = settings_from(args)

    async def run() -> str:
        async with open_lookup(s) as lookup:
            return await build_report(lookup, args.since, args.until, WallClock().now_ms())

    try:
        html = asyncio.run(run())
    except BadParameter as exc:
        raise SettingsError(f"--{exc}") from None
    out = Path(args.out)
    out.write_text(html, encoding="utf-8")
    print(f"wrote {out} ({len(html.encode()):,} bytes)")
    return 0
