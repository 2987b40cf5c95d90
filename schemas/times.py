"""Event time as integer epoch milliseconds, and back; and the range event times may take.

The engine compares and vectorises times as ``int64`` ms; conversion is exact
(no float rounding) so a boundary at ``last + 90d`` is the same on every worker.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = [
    "EARLIEST_EVENT",
    "EARLIEST_MS",
    "EPOCH",
    "LATEST_EVENT",
    "LATEST_MS",
    "event_time_range_problem",
    "from_ms",
    "to_ms",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

DAY_MS = 86_400_000
"""A day in epoch ms: the unit of recency, rolling windows and day buckets everywhere
(defined once: every room may import from ``schemas``)."""

EARLIEST_EVENT = EPOCH
"""No event happened before this. Every time is held as epoch ms and 0 is what a state
starts from (``last_ms``): an earlier purchase would never move its customer's recency,
and times far back (year 1) can't be written as a date once a decay is subtracted."""

LATEST_EVENT = datetime(2200, 1, 1, tzinfo=UTC)
"""No event happens at or after this, whatever the future-skew setting allows: due times
(last purchase + a recency edge of years) and every date the stream writes stay far
inside what a ``datetime`` can hold (year 9999)."""


def to_ms(dt: datetime) -> int:
    """Aware datetime -> epoch ms, truncating sub-millisecond digits toward the past."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: event times must be timezone-aware")
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> datetime:
    """Epoch ms -> aware UTC datetime."""
    return EPOCH + timedelta(milliseconds=int(ms))


EARLIEST_MS = to_ms(EARLIEST_EVENT)
LATEST_MS = to_ms(LATEST_EVENT)


def event_time_range_problem(ms: int, earliest_ms: int = EARLIEST_MS) -> str | None:
    """Why an event time (epoch ms) is outside ``[earliest, LATEST_EVENT)``; None if inside.

    The one place the range rule lives: the event model, the validator's settings floor
    (``RFM_EARLIEST_EVENT``) and its fast path all ask it (the fast path only compares
    the same bounds).
    """
    if ms < earliest_ms:
        return f"is before {from_ms(earliest_ms).isoformat()}, the earliest event time accepted"
    if ms >= LATEST_MS:
        return f"is not before {LATEST_EVENT.isoformat()}, the latest event time accepted"
    return None
