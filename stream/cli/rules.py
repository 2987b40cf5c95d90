"""``rfm-stream rules check`` / ``recalibrate`` / ``schemas``: rules files, cut points, schemas."""

from __future__ import annotations

import argparse
import sys

from stream.cli.base import Subcommands
from stream.cli.diff import add_rules_diff
from stream.cli.options import add_settings_options, settings_from

__all__ = [
    "add_recalibrate",
    "add_rules",
    "add_schemas",
    "cmd_recalibrate",
    "cmd_rules_check",
    "cmd_schemas",
]


def add_rules(sub: Subcommands) -> None:
    rules = sub.add_parser("rules", help="segment rules files")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser(
        "check", help="validate rules files: gaps, overlaps, unreachable segments, band order"
    )
    check.add_argument(
        "file",
        metavar="FILES",
        nargs="?",
        default="default",
        help="a rules file, or several and shipped names comma-separated, as RFM_RULES "
        "takes them (rfm,management,./mine.toml); default: the RFM schemes; all: every "
        "shipped scheme",
    )
    check.set_defaults(func=cmd_rules_check)
    add_rules_diff(rules_sub)  # a dry run, in stream.cli.diff


def add_recalibrate(sub: Subcommands) -> None:
    recal = sub.add_parser(
        "recalibrate", help="recompute quantile cut points now (a new cut-point version)"
    )
    recal.add_argument(
        "--wait",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="while the workers still re-evaluate customers (a rules change or their own "
        "recalibration), wait this long for them before refusing (default 300; 0: refuse)",
    )
    add_settings_options(recal)
    recal.set_defaults(func=cmd_recalibrate)


def add_schemas(sub: Subcommands) -> None:
    schemas = sub.add_parser("schemas", help="write the JSON Schema files")
    schemas.add_argument("--out", help="directory (default: the package's schemas/json)")
    schemas.set_defaults(func=cmd_schemas)


def cmd_rules_check(args: argparse.Namespace) -> int:
    """Shape and sense of the rules files, taken together as the worker would: every
    problem on its own line, exit 1 if any."""
    from schemas.rules import RulesError, load_rules
    from segments.check import build_scheme, check_rules

    where = _prefix(args.file)
    try:
        rules = load_rules(args.file)
        problems = check_rules(rules)
    except RulesError as exc:
        problems = exc.problems + (check_rules(exc.partial) if exc.partial else [])
    if problems:
        for line in problems:
            print(f"{where}{line}", file=sys.stderr)
        print(f"rfm-stream: {len(problems)} problem(s) in {args.file}", file=sys.stderr)
        return 1
    for name, spec in rules.schemes.items():
        scheme = build_scheme(name, spec)
        axes = " × ".join(f"{a.name}{a.bands}" for a in scheme.axes)
        kinds = ", ".join(
            f"{a.name} {'quantiles' if a.quantiles is not None else 'fixed'}"
            + (" (window)" if a.window_ms else "")
            for a in scheme.axes
        )
        print(
            f"{name}: {axes} = {len(scheme.cells)} cells -> {len(spec.segments)} segments; {kinds}"
        )
    print(f"{args.file}: OK, {len(rules.schemes)} schemes")
    return 0


def _prefix(value: str) -> str:
    """What a problem line starts with: the file, when there is one (with several, each
    line of a file's own problems already names its file)."""
    from schemas.rules import RulesError, rules_sources

    try:
        return f"{value}: " if len(rules_sources(value)) == 1 else ""
    except RulesError:
        return ""


def cmd_recalibrate(args: argparse.Namespace) -> int:
    """Install a new cut-point version now (e.g. after a big import), not at the schedule."""
    import asyncio

    from schemas.errors import SettingsError
    from segments.cut_points import CutPoints
    from segments.rules import build_engine
    from state.keys import Keys
    from state.store import RedisStore
    from stream.apply.calibrate import recalibrate
    from stream.apply.clock import WallClock
    from stream.apply.rules_change import SweepUnfinished
    from stream.kafka.clients import topic_partitions

    s = settings_from(args)
    if not 0 <= args.wait <= 86_400:
        raise SettingsError(f"bad --wait {args.wait}: seconds from 0 to 86400")

    async def run() -> str:
        n = await topic_partitions(s) or s.partitions
        store = RedisStore.from_settings(s)
        clock = WallClock()
        deadline = clock.now_ms() + args.wait * 1000
        try:
            await store.ping()
            store.keys = Keys(s.key_prefix, await store.serving(s.namespace))
            while True:  # a sweep in progress finishes on its own: wait for it, bounded
                # at the version in force, as a worker's engine: it names the summaries of
                # the rules' current era (segments.quantiles), which a bare engine doesn't
                doc = await store.cuts()
                engine = build_engine(s, None, CutPoints.from_json(doc) if doc else None)
                try:
                    new = await recalibrate(
                        store, engine, range(n), clock.now_ms(), sample=s.model_sample
                    )
                    break
                except SweepUnfinished:
                    if clock.now_ms() >= deadline:
                        raise
                    await asyncio.sleep(1.0)
        finally:
            await store.close()
        if new is None:
            raise SettingsError(
                "nothing to recalibrate: no scheme has quantile axes or reads the model of the "
                "base, or no customer yet"
            )
        fitted = f"; model of the base: {new.model.params}" if new.model else ""
        return f"cut points: version {new.version} over {new.population:,} customers{fitted}"

    print(asyncio.run(run()) + "; running workers re-rank their customers in the background")
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    """Regenerate the JSON Schema files for producers and consumers (one path a line)."""
    from pathlib import Path

    from schemas.export import JSON_DIR, write

    for p in write(Path(args.out) if args.out else JSON_DIR):
        print(p)
    return 0
