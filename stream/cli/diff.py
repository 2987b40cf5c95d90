"""``rfm-stream rules diff NEW.toml`` / ``rfm-stream diff NS1 NS2``: dry runs, nothing written.

A rules change or a promote is live at once; these show beforehand who would move where
(:mod:`stream.report.dryrun`), with a progress bar on stderr while they walk the base.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from stream.cli.base import Subcommands
from stream.cli.options import add_settings_options, settings_from

if TYPE_CHECKING:
    from schemas.settings import Settings
    from state.store import RedisStore
    from stream.backfill.progress import Progress
    from stream.report.diff_view import NamespaceDiff, RulesDiff

__all__ = ["add_diff", "add_rules_diff", "cmd_diff", "cmd_rules_diff"]


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sample",
        default="3",
        metavar="N",
        help="customer ids shown per cell (the N smallest; default 3)",
    )
    parser.add_argument("--json", action="store_true", help="JSON instead of tables")


def add_rules_diff(rules_sub: Subcommands) -> None:
    """``rules diff``, registered under ``rfm-stream rules`` (:mod:`stream.cli.rules`)."""
    diff = rules_sub.add_parser(
        "diff", help="who would move where under a new rules file (writes nothing)"
    )
    diff.add_argument("file", metavar="NEW.toml")
    _add_output_options(diff)
    add_settings_options(diff)
    diff.set_defaults(func=cmd_rules_diff)


def add_diff(sub: Subcommands) -> None:
    diff = sub.add_parser(
        "diff", help="two namespaces side by side, e.g. live and a backfill before promote"
    )
    diff.add_argument("left", metavar="NS1")
    diff.add_argument("right", metavar="NS2")
    _add_output_options(diff)
    add_settings_options(diff)
    diff.set_defaults(func=cmd_diff)


MAX_SAMPLE = 1000
"""Ids kept per matrix cell: a sample to look at, not a member list (``rfm-stream
members`` is that); each cell keeps its smallest ids in order, so an unbounded sample
would hold every mover of a large base and insert each in O(n)."""


def _sample(text: str) -> int:
    from schemas.errors import SettingsError

    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= MAX_SAMPLE:
        raise SettingsError(f"bad --sample {text!r}: a whole number from 0 to {MAX_SAMPLE}")
    return n


def _progress(total: int, label: str) -> Progress:
    from stream.backfill.progress import Progress

    return Progress(total, label, unit=("customers", "cust"))


def _show(diff: RulesDiff | NamespaceDiff, as_json: bool) -> None:
    import orjson

    from stream.report.diff_view import render_json, render_text

    if as_json:
        sys.stdout.write(orjson.dumps(render_json(diff), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        print(render_text(diff))


async def _store_for(settings: Settings, name: str) -> RedisStore:
    """A store on the namespace serving ``name`` (a promoted name follows its pointer)."""
    from state.namespaces import checked_name
    from state.store import RedisStore

    checked_name(name)
    probe = RedisStore.from_settings(settings, name)
    try:
        physical = await probe.serving(name)
    finally:
        await probe.close()
    return RedisStore.from_settings(settings, physical)


def cmd_rules_diff(args: argparse.Namespace) -> int:
    """Evaluate NEW.toml over the serving namespace as the workers' sweep would; print
    the from → to matrix per scheme. ``RFM_RULES`` is the file the workers run now (its
    quantile axes say whether the current cut points still fit). A bad rules file is
    refused before Redis is read."""
    import asyncio

    from segments.rules import load_checked_rules
    from state.walk import namespace_partitions
    from stream.apply.clock import WallClock, lagging
    from stream.report.dryrun import customers_in, rules_diff

    sample = _sample(args.sample)
    base = settings_from(args)
    s = base.model_copy(update={"rules": args.file})
    rules = load_checked_rules(s)  # the RFM_* overrides too, as a worker would load it

    async def run() -> RulesDiff:
        store = await _store_for(s, s.namespace)
        try:
            n = await namespace_partitions(store)
            bar = _progress(await customers_in(store, n), "rules diff")
            now = lagging(WallClock(), base.decay_grace).now_ms()  # the sweep's as-of
            found = await rules_diff(base, store, rules, args.file, now, sample, bar.update)
            bar.finish()
            return found
        finally:
            await store.close()

    _show(asyncio.run(run()), args.json)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Compare two namespaces customer by customer; exit 0 whether or not they differ
    (the output says how)."""
    import asyncio

    from state.namespaces import checked_name
    from state.walk import namespace_partitions
    from stream.report.dryrun import customers_in, namespace_diff, schemes_in

    sample = _sample(args.sample)
    s = settings_from(args)
    for name in (args.left, args.right):  # both refused before any connection
        checked_name(name)

    async def compare(left: RedisStore, right: RedisStore) -> NamespaceDiff:
        total, names = 0, set()
        for store in (left, right):  # the schemes either was built with
            n = await namespace_partitions(store)
            total += await customers_in(store, n)
            names.update(await schemes_in(store, n))
        bar = _progress(total, "diff")
        found = await namespace_diff(s, left, right, sorted(names), sample, bar.update)
        bar.finish()
        found.left, found.right = args.left, args.right
        return found

    async def run() -> NamespaceDiff:
        left = await _store_for(s, args.left)
        try:
            right = await _store_for(s, args.right)
            try:
                return await compare(left, right)
            finally:
                await right.close()
        finally:
            await left.close()

    _show(asyncio.run(run()), args.json)
    return 0
