"""Win-back cohorts from the summed counter fields (:func:`segments.winback.counter_fields`):
entered, returned within N days, the median days to return (exact to the day), revenue.

Pure: the read side's arithmetic, apart from the counting of :mod:`segments.winback`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from segments.winback import Period

__all__ = ["Cohort", "cohorts", "parse_field", "period_of"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_field(name: str) -> tuple[str, str, str] | None:
    """(scheme, cohort or "", kind) of a counter field; None if it isn't one."""
    parts = name.split("|")
    if len(parts) != 3 or not parts[2]:
        return None
    return parts[0], parts[1], parts[2]


@dataclass(slots=True)
class Cohort:
    """One scheme's customers who entered a lapsed segment in one period."""

    scheme: str
    period: str
    start_ms: int
    end_ms: int
    entered: int = 0
    days: dict[int, int] = field(default_factory=dict)
    """Whole days to return -> returners (the last bucket: :data:`DAY_CAP` or more)."""
    revenue_units: int = 0

    @property
    def returned(self) -> int:
        return sum(self.days.values())

    def within(self, horizon: int) -> int:
        return sum(n for d, n in self.days.items() if d < horizon)

    def median_days(self) -> int | None:
        """The lower median of days to return (exact to the day below :data:`DAY_CAP`)."""
        n = self.returned
        if not n:
            return None
        rank, seen = (n + 1) // 2, 0
        for d in sorted(self.days):
            seen += self.days[d]
            if seen >= rank:
                return d
        return None  # pragma: no cover - rank <= n


def period_of(label: str) -> tuple[Period, int, int] | None:
    """(period, start ms, end ms) of a cohort label, ``2026-04`` or ``2026-W14`` (ISO week,
    from Monday); None if it is neither."""
    try:
        if "-W" in label:
            start = datetime.strptime(label + "-1", "%G-W%V-%u").replace(tzinfo=UTC)
            return "week", _ms(start), _ms(start + timedelta(days=7))
        start = datetime.strptime(label, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        return None
    end = (start + timedelta(days=32)).replace(day=1)
    return "month", _ms(start), _ms(end)


def _ms(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def cohorts(
    fields: Mapping[str, int], scheme: str, period: Period, since_ms: int | None = None
) -> tuple[list[Cohort], int]:
    """(cohorts of ``scheme`` by ``period``, oldest first; unattributed returns) from
    summed counter fields; cohorts ending at or before ``since_ms`` are left out."""
    out: dict[str, Cohort] = {}
    unattributed = 0
    for name, n in fields.items():
        got = parse_field(name)
        if got is None or got[0] != scheme:
            continue
        _, label, kind = got
        if kind == "u":
            unattributed += n
            continue
        of = period_of(label)
        if of is None or of[0] != period:
            continue
        _, start, end = of
        if since_ms is not None and end <= since_ms:
            continue
        c = out.get(label) or out.setdefault(label, Cohort(scheme, label, start, end))
        if kind == "n":
            c.entered += n
        elif kind == "m":
            c.revenue_units += n
        elif kind.startswith("d") and kind[1:].isdigit():
            k = int(kind[1:])
            c.days[k] = c.days.get(k, 0) + n
    return sorted(out.values(), key=lambda c: c.start_ms), unattributed
