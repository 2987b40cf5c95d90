"""Event time as integer epoch milliseconds, and back.

The engine compares and vectorises times as ``int64`` ms; conversion is exact
(no float rounding) so a boundary at ``last + 90d`` is the same on every worker.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["EPOCH", "from_ms", "to_ms"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(dt: datetime) -> int:
    """Aware datetime -> epoch ms, truncating sub-millisecond digits toward the past."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: event times must be timezone-aware")
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> datetime:
    """Epoch ms -> aware UTC datetime."""
    return EPOCH + timedelta(milliseconds=int(ms))
