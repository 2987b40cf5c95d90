"""The read-side and rules commands: ``rules check``, ``recalibrate``, ``inspect``,
``segments``, ``report`` (what ops and marketing run against a namespace)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from schemas.errors import SettingsError
from stream.cli.options import settings_from

__all__ = ["cmd_inspect", "cmd_recalibrate", "cmd_report", "cmd_rules_check", "cmd_segments"]


def cmd_rules_check(args: argparse.Namespace) -> int:
    """Shape and sense of a rules file: every problem on its own line, exit 1 if any."""
    from schemas.rules import RulesError, load_rules
    from segments.check import build_scheme, check_rules

    try:
        rules = load_rules(args.file)
        problems = check_rules(rules)
    except RulesError as exc:
        problems = exc.problems + (check_rules(exc.partial) if exc.partial else [])
    if problems:
        for line in problems:
            print(f"{args.file}: {line}", file=sys.stderr)
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


def cmd_recalibrate(args: argparse.Namespace) -> int:
    """Install a new cut-point version now (e.g. after a big import), not at the schedule."""
    import asyncio

    from schemas.errors import SettingsError
    from segments.rules import build_engine
    from state.keys import Keys
    from state.store import RedisStore
    from stream.apply.calibrate import recalibrate
    from stream.apply.clock import WallClock
    from stream.kafka.clients import topic_partitions

    s = settings_from(args)
    engine = build_engine(s)

    async def run() -> str:
        n = await topic_partitions(s) or s.partitions
        store = RedisStore.from_url(s.redis_url.get_secret_value(), s.key_prefix, s.namespace)
        try:
            await store.ping()
            store.keys = Keys(s.key_prefix, await store.serving(s.namespace))
            now = WallClock().now_ms()
            new = await recalibrate(store, engine, range(n), now, sample=s.model_sample)
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
    """How many customers are where: the same counts as ``GET /segments``."""
    import asyncio

    import orjson

    from stream.cli.terminal import open_lookup, render_segments

    s = settings_from(args)

    async def run() -> dict[str, Any]:
        async with open_lookup(s) as lookup:
            return await lookup.segments()

    body = asyncio.run(run())
    print(
        orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()
        if args.json
        else render_segments(body)
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
