"""``GET /winback`` and ``rfm-stream winback``: does win-back work?

Per cohort (the week or month customers entered a lapsed segment): how many entered, how
many came back within 30 / 60 / 90 days, the median days to return, and the net spend of
the returners since (definitions: :mod:`segments.winback`), against the course text's
"每4个中会有1个可能被挽回" (:data:`EXPECTED_RATE`). Read from the counters the commits keep
(:mod:`state.winback`), no scan. Bad parameters raise :class:`BadParameter` (HTTP 400).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from schemas.money import from_units
from schemas.times import DAY_MS
from segments.rules import load_checked_rules
from segments.winback import HORIZONS, REVENUE_DAYS, Lapsed, Period, lapsed_of
from segments.winback_cohorts import cohorts
from state.layout import check_figures_kept
from state.winback import WinbackReads
from stream.api.lookup import BadParameter, Lookup, parse_time
from stream.apply.encode import iso

__all__ = [
    "EXPECTED_RATE",
    "PERIODS",
    "check_parameters",
    "lapsed_segments",
    "path_item",
    "winback",
    "winback_all",
]

EXPECTED_RATE = 0.25
""""措施得当,每4个中会有1个可能被挽回": one lost customer in four can be won back."""
PERIODS: tuple[Period, ...] = ("month", "week")


def lapsed_segments(lookup: Lookup) -> Lapsed:
    """The lapsed segments the settings' rules file marks."""
    return lapsed_of(load_checked_rules(lookup.settings))


def _months(since_ms: int, until_ms: int) -> list[str]:
    """``YYYYMM`` of every month from ``since_ms``'s to ``until_ms``'s."""
    a = datetime.fromtimestamp(since_ms / 1000, UTC)
    b = datetime.fromtimestamp(until_ms / 1000, UTC)
    out, y, m = [], a.year, a.month
    while (y, m) <= (b.year, b.month):
        out.append(f"{y:04d}{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _scheme(schemes: Sequence[str], lapsed: Lapsed, name: str | None) -> str:
    """``name`` checked against ``schemes`` (default: the first marking a segment lapsed,
    else the first). A scheme marking none is a valid question: nobody can lapse there."""
    if name == "":
        raise BadParameter("scheme", "is empty; leave it out for the default")
    if name is None:
        return next((n for n in schemes if n in lapsed), schemes[0])
    if name not in schemes:
        raise BadParameter("scheme", f"unknown scheme {name!r}; one of {', '.join(schemes)}")
    return name


def _period(text: str | None) -> Period:
    if text is None:
        return "month"
    if text not in PERIODS:
        raise BadParameter("period", f"{text!r} is not a period; one of {', '.join(PERIODS)}")
    return text


def check_parameters(
    schemes: Sequence[str],
    lapsed: Lapsed,
    scheme: str | None,
    period: str | None,
    since: str | None,
) -> tuple[str, Period, int | None]:
    """(scheme, period, since ms) or :class:`BadParameter` naming the first wrong one."""
    return _scheme(schemes, lapsed, scheme), _period(period), parse_time("since", since)


async def winback(
    lookup: Lookup,
    scheme: str | None = None,
    period: str | None = None,
    since: str | None = None,
    lapsed: Lapsed | None = None,
) -> dict[str, Any]:
    """The win-back figures of ``scheme``'s cohorts by ``period`` that end after
    ``since`` (default: everything kept, ``RFM_MATRIX_RETENTION``); ``lapsed``: default
    the settings' rules file's marks."""
    lap = lapsed_segments(lookup) if lapsed is None else lapsed
    name = _scheme([s.name for s in lookup.engine.schemes], lap, scheme)
    per = _period(period)
    given = parse_time("since", since)
    await check_figures_kept(lookup.store, "win-back figures")
    now = lookup.now_ms()
    kept = now - lookup.settings.matrix_retention - 31 * DAY_MS
    since_ms = max(kept, given if given is not None else kept)
    fields = (  # a scheme marking nothing lapsed shows nothing, whatever was counted
        await WinbackReads(lookup.store).fields(
            # a week cohort's first days may lie in the month before ``since``'s
            range(lookup.partitions),
            _months(min(since_ms, now) - 6 * DAY_MS, now),
        )
        if name in lap
        else {}
    )
    rows, unattributed = cohorts(fields, name, per, since_ms)
    out = []
    for c in rows:
        entered = c.entered
        within = {str(h): c.within(h) for h in HORIZONS}
        out.append(
            {
                "cohort": c.period,
                "start": iso(c.start_ms),
                "end": iso(c.end_ms),
                "entered": entered,
                "returned": within,
                "rate": {h: (n / entered if entered else None) for h, n in within.items()},
                "final": [h for h in HORIZONS if c.end_ms + h * DAY_MS <= now],
                "returned_ever": c.returned,
                "median_days": c.median_days(),
                "revenue": str(from_units(c.revenue_units)),
            }
        )
    return {
        "scheme": name,
        "lapsed": sorted(lap.get(name, ())),
        "period": per,
        "since": iso(since_ms),
        "until": iso(now),
        "currency": lookup.settings.currency,
        "horizons": list(HORIZONS),
        "revenue_days": REVENUE_DAYS,
        "expected_rate": EXPECTED_RATE,
        "unattributed_returns": unattributed,
        "cohorts": out,
    }


async def winback_all(lookup: Lookup, since: str | None) -> list[dict[str, Any]]:
    """:func:`winback` by month of every scheme marking a segment lapsed, in the rules
    file's order (the report's section)."""
    lapsed = lapsed_segments(lookup)
    names = [s.name for s in lookup.engine.schemes if s.name in lapsed]
    return [await winback(lookup, n, "month", since, lapsed) for n in names]


_INT = {"type": "integer", "minimum": 0}
_BY_HORIZON = {"type": "object", "additionalProperties": _INT}
_COHORT = {
    "type": "object",
    "required": ["cohort", "entered", "returned", "rate", "median_days", "revenue"],
    "properties": {
        "cohort": {"type": "string", "description": "2026-04 (month) or 2026-W14 (ISO week)."},
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "entered": {**_INT, "description": "Entries into a lapsed segment in the period."},
        "returned": {**_BY_HORIZON, "description": "Of them, back within N days (N: 30 …)."},
        "rate": {
            "type": "object",
            "additionalProperties": {"type": ["number", "null"]},
            "description": "returned / entered per horizon (null: nobody entered).",
        },
        "final": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "Horizons whose figure can no longer grow (period end + N ≤ now).",
        },
        "returned_ever": _INT,
        "median_days": {"type": ["integer", "null"], "description": "Exact to the day."},
        "revenue": {
            "type": "string",
            "description": "Net spend of the returners within 90 days of their return.",
        },
    },
}
_WINBACK = {
    "type": "object",
    "required": ["scheme", "lapsed", "period", "cohorts", "expected_rate"],
    "properties": {
        "scheme": {"type": "string"},
        "lapsed": {"type": "array", "items": {"type": "string"}},
        "period": {"type": "string", "enum": list(PERIODS)},
        "since": {"type": "string", "format": "date-time"},
        "until": {"type": "string", "format": "date-time"},
        "currency": {"type": "string"},
        "horizons": {"type": "array", "items": {"type": "integer"}},
        "revenue_days": {"type": "integer"},
        "expected_rate": {"type": "number", "description": "每4个中会有1个可能被挽回: 0.25."},
        "unattributed_returns": {
            **_INT,
            "description": "Returns whose entry had left the customer's kept history "
            "(RFM_HISTORY_SIZE): counted in no cohort.",
        },
        "cohorts": {"type": "array", "items": _COHORT},
    },
}


def path_item(
    scheme: dict[str, Any], bad: dict[str, Any], unavailable: dict[str, Any]
) -> dict[str, Any]:
    """The OpenAPI path item of ``/winback`` (``scheme``: the scheme parameter's schema;
    ``bad``, ``unavailable``: the 400 and 503 responses)."""
    ok = {
        "description": "Cohorts, oldest first.",
        "content": {"application/json": {"schema": _WINBACK}},
    }
    return {
        "get": {
            "summary": "Win-back: of customers entering a lapsed segment, how many came back",
            "operationId": "getWinback",
            "parameters": [
                {
                    "name": "scheme",
                    "in": "query",
                    "required": False,
                    "description": "Default: the first scheme marking a segment lapsed "
                    "(lapsed = true in the rules file). A scheme marking none answers no "
                    "cohorts.",
                    "schema": scheme,
                },
                {
                    "name": "period",
                    "in": "query",
                    "required": False,
                    "description": "Cohorts by month (default) or ISO week of entry (UTC).",
                    "schema": {"type": "string", "enum": list(PERIODS)},
                },
                {
                    "name": "since",
                    "in": "query",
                    "required": False,
                    "description": "Cohorts ending after this; default: all kept "
                    "(RFM_MATRIX_RETENTION).",
                    "schema": {"type": "string", "format": "date-time"},
                },
            ],
            "responses": {
                "200": ok,
                "400": bad,
                "503": unavailable,
            },
        }
    }
