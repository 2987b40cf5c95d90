"""``rfm-stream members --scheme S --segment G``: a segment's customers, sorted, to a file.

The namespace is walked (:mod:`stream.report.export`, read-only) with a progress bar on
stderr; with ``--out`` the walk checkpoints each finished partition beside the file, and
``--resume`` finishes an interrupted export from there. Unknown scheme, segment or
namespace, a bad ``--sort`` or ``--limit``: one line naming it, exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from schemas.errors import SettingsError
from stream.cli.base import Subcommands
from stream.cli.options import add_settings_options, settings_from
from stream.report.members import FORMATS, SORTS, Format, MembersQuery

if TYPE_CHECKING:
    from schemas.settings import Settings

__all__ = ["add_members", "cmd_members", "export_members"]


def add_members(sub: Subcommands) -> None:
    members = sub.add_parser(
        "members",
        help="a segment's customers, sorted (CSV or JSON lines; walks the base, resumable)",
    )
    members.add_argument("--scheme", required=True, metavar="S")
    members.add_argument("--segment", required=True, metavar="G", help="segment key, e.g. at_risk")
    members.add_argument(
        "--sort",
        default="value",
        metavar="|".join(SORTS),
        help="value (CLV where the scheme has value figures and the model is fitted, else "
        "net spend; largest first), spend, clv, frequency (largest first), recency (most "
        "recent buyer first); ties by customer id. Default: value",
    )
    members.add_argument("--limit", metavar="N", help="only the first N members")
    members.add_argument("--format", default="csv", metavar="|".join(FORMATS))
    members.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    members.add_argument(
        "--resume",
        action="store_true",
        help="finish the interrupted export to --out from its checkpoint",
    )
    add_settings_options(members)
    members.set_defaults(func=cmd_members)


def _limit(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise SettingsError(f"bad --limit {text!r}: a whole number, 1 or more")
    return n


def _checked(args: argparse.Namespace) -> MembersQuery:
    """The query, every flag checked before Redis is read."""
    if args.sort not in SORTS:
        raise SettingsError(f"bad --sort {args.sort!r}: one of {', '.join(SORTS)}")
    if args.format not in FORMATS:
        raise SettingsError(f"bad --format {args.format!r}: one of {', '.join(FORMATS)}")
    if args.resume and args.out is None:
        raise SettingsError("--resume needs --out (the checkpoint is kept beside that file)")
    fmt: Format = "jsonl" if args.format == "jsonl" else "csv"
    return MembersQuery(args.scheme, args.segment, args.sort, _limit(args.limit), fmt)


@contextlib.contextmanager
def _spool_path(out: Path | None) -> Iterator[Path]:
    """Beside ``--out`` (where a resume finds it), else in a temporary directory."""
    if out is not None:
        yield out.with_name(out.name + ".spool")
        return
    with tempfile.TemporaryDirectory(prefix="rfm-members-") as tmp:
        yield Path(tmp) / "members.spool"


def _noop(_: int) -> None:
    pass


async def export_members(
    settings: Settings,
    query: MembersQuery,
    out: Path | None,
    now_ms: int,
    resume: bool = False,
    after_partition: Callable[[int], None] = _noop,
    progress: TextIO | None = None,
) -> int:
    """Export the members of ``query`` in the serving namespace of ``settings`` to
    ``out`` (stdout: None) as of ``now_ms`` (a resumed export: the checkpoint's); the
    number written. ``after_partition``: told each partition spooled."""
    from segments.cut_points import CutPoints
    from segments.rules import build_engine, value_policy_of
    from state.walk import namespace_partitions
    from stream.backfill.progress import Progress
    from stream.cli.diff import _store_for
    from stream.report.export import ExportTarget, Spool, walk_members
    from stream.report.members import check_sort, find_scheme

    store = await _store_for(settings, settings.namespace)
    try:
        n = await namespace_partitions(store)
        doc = await store.cuts()
        engine = build_engine(settings, cuts=CutPoints.from_json(doc) if doc else None)
        scheme = find_scheme(engine.schemes, query.scheme, query.segment)
        sort = check_sort(query.sort, scheme, engine.model)
        target = ExportTarget(store.keys.namespace, n, query.scheme, query.segment)
        with _spool_path(out) as path:
            spool = Spool(path, target)
            spool.start(now_ms, resume)
            todo = [p for p in range(n) if p not in spool.done]
            counts = await store.tallies.segment_counts(todo)
            total = max((sum(c.values()) for c in counts.values()), default=0)
            bar = Progress(
                total,
                f"members {query.scheme}/{query.segment}",
                progress,
                unit=("customers", "cust"),
            )
            await walk_members(
                store,
                scheme,
                engine.model,
                value_policy_of(settings),
                spool,
                bar.update,
                after_partition,
            )
            bar.finish()
            written = _write(spool.sorted_rows(sort, query.limit), query.format, out)
            spool.remove()
            return written
    finally:
        await store.close()


def _write(rows: Iterator[dict[str, object]], fmt: Format, out: Path | None) -> int:
    """Write ``rows``; a file appears whole (written beside it, then renamed)."""
    import os

    from stream.report.members import csv_header, csv_line, jsonl_line

    def lines() -> Iterator[bytes]:
        if fmt == "csv":
            yield csv_header().encode()
        for r in rows:
            yield csv_line(r).encode() if fmt == "csv" else jsonl_line(r)

    written = -1 if fmt == "csv" else 0
    if out is None:
        for line in lines():
            sys.stdout.buffer.write(line)
            written += 1
        sys.stdout.buffer.flush()
        return written
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("wb") as f:
        for line in lines():
            f.write(line)
            written += 1
    os.replace(tmp, out)
    return written


def cmd_members(args: argparse.Namespace) -> int:
    """List a segment's members; the count goes to stderr, the rows where ``--out`` says."""
    import asyncio

    from stream.apply.clock import WallClock

    query = _checked(args)
    s = settings_from(args)
    out = Path(args.out) if args.out is not None else None
    n = asyncio.run(export_members(s, query, out, WallClock().now_ms(), args.resume))
    where = f" to {out}" if out is not None else ""
    print(f"{n:,} members of {query.scheme}/{query.segment}{where}", file=sys.stderr)
    return 0
