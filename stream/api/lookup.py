"""Answers to "where is this customer and why", "how many are where", "who moved where".

One module for the HTTP API and the CLI (``inspect``, ``segments``, ``report``), so the
two can't disagree. Everything is read from Redis as the worker committed it: the
customer's hash, the segment-size and flow tallies (no scan of customers anywhere).
Bad parameters raise :class:`BadParameter` naming the parameter (HTTP 400).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import numpy as np
from pydantic import TypeAdapter, ValidationError

from schemas.events import Identifier
from schemas.money import from_units
from schemas.settings import Settings
from schemas.times import DAY_MS
from segments.engine import Engine
from segments.model import NEVER, NONE, Columns, CustomerState
from segments.rules import value_policy_of
from segments.value import figures
from state.layout import check_figures_kept
from state.store import RedisStore
from stream.api.worth import value_view
from stream.apply.encode import iso
from stream.apply.routing import partitioner
from stream.apply.tallies import HOUR_MS, day_of

__all__ = ["BadParameter", "Lookup", "parse_time"]


_IDENTIFIER = TypeAdapter(Identifier)


def _is_identifier(text: str) -> bool:
    """Whether an event could carry ``text`` as an id (the events' own rule)."""
    try:
        _IDENTIFIER.validate_python(text)
    except ValidationError:
        return False
    return True


class BadParameter(ValueError):
    """A request parameter is wrong; ``name`` says which."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
"""RFC 3339's ``date-time`` (what the OpenAPI document promises), checked before Python's
ISO-8601 parser, which also takes forms the document does not (no seconds, a space)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_MS = -62_135_596_800_000 + 8 * DAY_MS
"""Times are clamped to what a ``datetime`` can show, a week inside its range (0001-01-09
to 9999-12-24 UTC): every date-time is a valid question, and nothing is kept out there."""
_LAST_MS = 253_402_214_400_000 - 7 * DAY_MS


def parse_time(name: str, text: str | None) -> int | None:
    """Epoch ms of an RFC 3339 date-time (``None``: the parameter was left out).

    An empty value is not "left out" (``?until=`` is a mistake, not the default): it is a
    :class:`BadParameter`, like any other value that isn't a date-time with a timezone.
    """
    if text is None:
        return None
    if text == "":
        raise BadParameter(name, "is empty; leave it out for the default")
    try:
        dt = datetime.fromisoformat(text.upper())
    except ValueError:
        dt = None
    if dt is not None and dt.tzinfo is None:
        raise BadParameter(name, f"{text!r} has no timezone (e.g. 2026-01-01T00:00:00+08:00)")
    if dt is None or not _RFC3339.fullmatch(text):
        raise BadParameter(
            name, f"{text!r} is not an RFC 3339 date-time (e.g. 2026-01-01T00:00:00+08:00)"
        )
    # timedelta arithmetic, not dt.timestamp(): exact, and fine at the ends of the calendar
    ms = (dt - _EPOCH) // timedelta(milliseconds=1)
    return min(max(ms, _FIRST_MS), _LAST_MS)


class SegmentRow(TypedDict):
    """One segment of a scheme in ``/segments``: its key, label and customers now."""

    segment: str
    label: str
    customers: int


class Lookup:
    """Read-side views over one namespace; ``engine`` and ``partitions`` are callables so
    they follow the worker (new cut points, a partition count learnt late)."""

    def __init__(
        self,
        settings: Settings,
        store: RedisStore,
        engine: Callable[[], Engine],
        partitions: Callable[[], int],
        now_ms: Callable[[], int],
    ) -> None:
        self.settings = settings
        self.store = store
        self._engine = engine
        self._partitions = partitions
        self._now = now_ms
        self._home = partitioner(settings.partitioner)
        self._value = value_policy_of(settings)

    @property
    def engine(self) -> Engine:
        """The rules and cut points in force now."""
        return self._engine()

    @property
    def partitions(self) -> int:
        """The purchases topic's partition count now (other read views: win-back)."""
        return self._partitions()

    def now_ms(self) -> int:
        """The wall clock these views answer at."""
        return self._now()

    # ------------------------------------------------------------------ one customer
    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        """The customer's RFM state, segment per scheme and latest transitions."""
        if not customer_id or len(customer_id) > 128:
            raise BadParameter("customer_id", "must be 1 to 128 characters")
        if not _is_identifier(customer_id):
            return None  # a valid question whose answer is: no event could name it
        n = self._partitions()
        p = self._home(customer_id.encode(), n)
        state = await self.store.get_state(p, customer_id)
        if state is None:
            return None
        return self._customer_view(state, p)

    def _customer_view(self, s: CustomerState, partition: int) -> dict[str, Any]:
        engine = self._engine()
        now = self._now()
        asof = max(now, s.cursor_ms)
        cols = Columns.of([s])
        at = np.array([asof], dtype=np.int64)
        due = int(engine.next_due([s])[0])
        bought = s.first_ms is not None
        schemes = {}
        for scheme in engine.schemes:
            key = s.segments.get(scheme.name, NONE)
            calibrated = getattr(scheme, "calibrated", False)
            schemes[scheme.name] = {
                "segment": key,
                "label": scheme.label(key),
                "scores": {a: int(v[0]) for a, v in scheme.scores(cols, at).items()}
                if s.frequency > 0
                else {},
                "cut_version": engine.cut_version if calibrated else None,
            }
        return {
            "customer_id": s.customer_id,
            "partition": partition,
            "frequency": s.frequency,
            "monetary": str(from_units(s.monetary)),
            "currency": self.settings.currency,
            "first_purchase_at": iso(s.first_ms) if s.first_ms is not None else None,
            "last_purchase_at": iso(s.last_ms) if bought else None,
            "recency_days": round((asof - s.last_ms) / DAY_MS, 6) if bought else None,
            "as_of": iso(asof),
            "segments": schemes,
            "next_due_at": None if due == NEVER else iso(due),
            "rules_version": engine.rules_version,
            "value": figures(engine.model, self._value, cols, at)[0]
            if engine.model is not None and s.frequency > 0
            else None,
            "history": [
                {
                    "scheme": h[0],
                    "from_segment": h[1],
                    "to_segment": h[2],
                    "cause": h[3],
                    "effective_at": iso(int(h[4])),
                }
                for h in reversed(s.history)
            ],
        }

    # ------------------------------------------------------------------ tallies
    async def segments(self) -> dict[str, Any]:
        """Customers per segment per scheme now, every segment listed (zeros too)."""
        counts = await self.store.tallies.segment_counts(range(self._partitions()))
        out = {}
        for scheme in self._engine().schemes:
            got = counts.get(scheme.name, {})
            rows: list[SegmentRow] = [
                {"segment": k, "label": label, "customers": got.get(k, 0)}
                for k, label in scheme.labels.items()
            ]
            out[scheme.name] = {"customers": sum(r["customers"] for r in rows), "segments": rows}
        return {"schemes": out}

    async def segment_values(self, scheme: str | None = None) -> dict[str, Any]:
        """What each segment is worth and the Pareto view (:mod:`stream.api.worth`); of
        one ``scheme``, or every scheme when it is left out."""
        schemes = self._engine().schemes
        if scheme is not None:
            name = self._scheme(scheme)
            schemes = tuple(s for s in schemes if s.name == name)
        await check_figures_kept(self.store, "what each segment is worth")
        parts = range(self._partitions())
        counts = await self.store.tallies.segment_counts(parts)
        sums = await self.store.tallies.worth(parts)
        return value_view(schemes, counts, sums, self.settings.currency)

    def _window(self, since: str | None, until: str | None) -> tuple[int, int]:
        """[since, until) in epoch ms: each bound as given, or its default.

        Every pair of valid times is a valid question with an exact answer, so none is
        refused: a start older than what is kept (``RFM_MATRIX_RETENTION`` before ``until``)
        is moved up to it (nothing older exists to count), and a start at or after the end
        is an empty range. Callers show the range they answer for.
        """
        until_ms = parse_time("until", until)
        until_ms = self._now() if until_ms is None else until_ms
        since_ms = parse_time("since", since)
        since_ms = until_ms - 7 * DAY_MS if since_ms is None else since_ms
        horizon = until_ms - self.settings.matrix_retention
        return max(since_ms, horizon, _FIRST_MS), until_ms

    def _scheme(self, name: str | None) -> str:
        names = [s.name for s in self._engine().schemes]
        if name is None:
            return names[0]
        if name == "":
            raise BadParameter("scheme", "is empty; leave it out for the first scheme")
        if name not in names:
            raise BadParameter("scheme", f"unknown scheme {name!r}; one of {', '.join(names)}")
        return name

    async def flows(
        self,
        since: str | None,
        until: str | None,
        schemes: list[str] | None = None,
        max_days: int | None = None,
    ) -> tuple[int, int, dict[tuple[str, str, str, int], int]]:
        """(since, until, (scheme, from, to, hour start ms) -> transitions) over the range,
        hours that start in [since, until).

        The range costs one day-hash read per day it touches per partition; over
        ``max_days`` of them (the HTTP API's ``RFM_HTTP_MAX_DAYS``) it is refused before
        anything is read, naming the limit and the cost: those reads go to the Redis the
        worker commits to. Counted after the start is moved up to what is kept, so an
        old start costs what is really read.
        """
        since_ms, until_ms = self._window(since, until)
        first = since_ms // DAY_MS * DAY_MS
        cost = max(0, -(-(until_ms - first) // DAY_MS))
        if max_days is not None and cost > max_days:
            raise BadParameter(
                "since",
                f"the range {iso(since_ms)} to {iso(until_ms)} reads {cost} day-hashes per "
                f"partition ({cost * self._partitions()} reads), over the limit "
                f"RFM_HTTP_MAX_DAYS={max_days}; ask for a shorter range",
            )
        days = [day_of(first + i * DAY_MS) for i in range(cost)]
        raw = await self.store.tallies.flows(range(self._partitions()), days)
        out: dict[tuple[str, str, str, int], int] = {}
        for (d, scheme, frm, to, hour), n in raw.items():
            start = int(datetime.strptime(d, "%Y%m%d").replace(tzinfo=UTC).timestamp() * 1000)
            start += hour * HOUR_MS
            if since_ms // HOUR_MS * HOUR_MS <= start < until_ms and (
                schemes is None or scheme in schemes
            ):
                key = (scheme, frm, to, start)
                out[key] = out.get(key, 0) + n
        return since_ms, until_ms, out

    async def matrix(
        self,
        scheme: str | None,
        since: str | None,
        until: str | None,
        max_days: int | None = None,
    ) -> dict[str, Any]:
        """From -> to counts of one scheme's transitions effective in [since, until)
        (``max_days``: see :meth:`flows`)."""
        name = self._scheme(scheme)
        since_ms, until_ms, flows = await self.flows(since, until, [name], max_days)
        cells: dict[tuple[str, str], int] = {}
        for (_, frm, to, _), n in flows.items():
            cells[(frm, to)] = cells.get((frm, to), 0) + n
        rows = [
            {"from_segment": f, "to_segment": t, "transitions": n}
            for (f, t), n in sorted(cells.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        return {
            "scheme": name,
            "since": iso(since_ms),
            "until": iso(until_ms),
            "bucket": "hour",
            "transitions": sum(cells.values()),
            "flows": rows,
        }
