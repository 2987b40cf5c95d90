"""``rfm-stream winback``: does win-back work? Per cohort of customers who entered a
lapsed segment, how many came back within 30 / 60 / 90 days, how soon, what they spent;
the same figures as ``GET /winback`` (:mod:`stream.api.winback`)."""

from __future__ import annotations

import argparse
import re
from typing import Any

from schemas.errors import SettingsError
from stream.cli.base import Subcommands
from stream.cli.options import add_settings_options, settings_from

__all__ = ["add_winback", "cmd_winback", "render_winback", "since_of"]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def add_winback(sub: Subcommands) -> None:
    cmd = sub.add_parser(
        "winback",
        help="win-back: of customers entering a lapsed segment, how many came back, how soon",
    )
    cmd.add_argument("--scheme", help="a scheme marking segments lapsed (default: the first)")
    cmd.add_argument("--since", metavar="DATE", help="cohorts ending after DATE (UTC) or a time")
    cmd.add_argument("--period", default="month", help="cohorts by month (default) or week")
    cmd.add_argument("--json", action="store_true", help="the API's JSON instead of a table")
    add_settings_options(cmd)
    cmd.set_defaults(func=cmd_winback)


def since_of(text: str | None) -> str | None:
    """``--since``: a date (midnight UTC) or an RFC 3339 date-time, as the API takes it."""
    if text is not None and _DATE.fullmatch(text):
        return f"{text}T00:00:00+00:00"
    return text


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def render_winback(body: dict[str, Any]) -> str:
    """The cohorts as a table, each 90-day rate against the text's one in four."""
    expected = body["expected_rate"]
    out = [
        f"win-back, scheme {body['scheme']} (lapsed: {', '.join(body['lapsed'])}), "
        f"by {body['period']}, {body['since'][:10]} to {body['until'][:10]}",
        f"  text: one lost customer in four can be won back ({_pct(expected)}); "
        f"revenue: net spend within {body['revenue_days']} days of the return, "
        f"{body['currency']}",
        "",
        f"  {'cohort':<10}{'entered':>8}{'30d':>7}{'60d':>7}{'90d':>7}{'rate 90d':>10}"
        f"{'vs text':>9}{'median d':>10}{'revenue':>14}",
    ]
    for c in body["cohorts"]:
        r = c["returned"]
        rate = c["rate"]["90"]
        vs = "-" if rate is None else ("above" if rate >= expected else "below")
        if 90 not in c["final"]:
            vs += "*"
        median = "-" if c["median_days"] is None else str(c["median_days"])
        out.append(
            f"  {c['cohort']:<10}{c['entered']:>8}{r['30']:>7}{r['60']:>7}{r['90']:>7}"
            f"{_pct(rate):>10}{vs:>9}{median:>10}{c['revenue']:>14}"
        )
    if not body["lapsed"]:
        out.append(f"  (no segment of {body['scheme']} is marked lapsed = true)")
    elif not body["cohorts"]:
        out.append("  (no customer entered a lapsed segment in the range)")
    out.append("")
    out.append("  * the cohort's 90 days are not over yet: its rate can still grow")
    if body["unattributed_returns"]:
        out.append(
            f"  {body['unattributed_returns']} return(s) in the range had their entry beyond "
            "the kept history (RFM_HISTORY_SIZE): counted in no cohort"
        )
    return "\n".join(out)


def cmd_winback(args: argparse.Namespace) -> int:
    """Win-back figures, from the counters the worker commits (no scan)."""
    import asyncio

    import orjson

    from segments.rules import load_checked_rules
    from segments.winback import lapsed_of
    from stream.api.lookup import BadParameter
    from stream.api.winback import check_parameters, winback
    from stream.cli.terminal import open_lookup

    s = settings_from(args)
    rules = load_checked_rules(s)
    lapsed = lapsed_of(rules)
    since = since_of(args.since)
    try:  # refused before anything is opened: one line naming the option
        check_parameters(list(rules.schemes), lapsed, args.scheme, args.period, since)
    except BadParameter as exc:
        raise SettingsError(f"--{exc}") from None

    async def run() -> dict[str, Any]:
        async with open_lookup(s) as lookup:
            return await winback(lookup, args.scheme, args.period, since, lapsed)

    body = asyncio.run(run())
    print(
        orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()
        if args.json
        else render_winback(body)
    )
    return 0
