"""A hand-built history for the win-back tests: rfm8 at its shipped cuts (R 90 days, F 2
orders, M 1000), dormant and churning lapsed. Day 0 is 2026-01-01 (UTC).

    A  d0 600, d1 600 → high_value; d91 → dormant (entry 04-02); d101 100 → back after
       10 days (revenue 100); d120 50 (revenue 50); d200 70 (99 days after its return:
       not revenue); d290 → dormant (entry 10-18), never back.
    B  d0 1500 → develop; d90 → churning (entry 04-01); d135 200 → back after 45 days
       (revenue 200); d225 → dormant (entry 08-14), never back.
    C  d5 2000 → develop; d95 → churning (entry 04-06), never back.
    D  d10 1200 → develop; d100 → churning (entry 04-11); d170 10 → back after 70 days
       (revenue 10); d260 → dormant (entry 09-18); d262 20 → back after 2 days (revenue
       20: within 90 days of the *latest* return, so the September cohort's).
    E  d0 10, d100 10: drifting and potential, never lapsed: counted nowhere.

The history ends at day 300.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY_MS = 86_400_000
T0_MS = int(T0.timestamp() * 1000)
END_DAY = 300

PURCHASES: list[tuple[str, int, str]] = [
    ("A", 0, "600"),
    ("A", 1, "600"),
    ("A", 101, "100"),
    ("A", 120, "50"),
    ("A", 200, "70"),
    ("B", 0, "1500"),
    ("B", 135, "200"),
    ("C", 5, "2000"),
    ("D", 10, "1200"),
    ("D", 170, "10"),
    ("D", 262, "20"),
    ("E", 0, "10"),
    ("E", 100, "10"),
]
"""(customer, day, amount), in time order."""

HAND_COUNT: dict[str, dict[str, object]] = {
    "2026-04": {
        "entered": 4,
        "returned": {30: 1, 60: 2, 90: 3},
        "median_days": 45,
        "revenue": Decimal("360"),
    },
    "2026-08": {
        "entered": 1,
        "returned": {30: 0, 60: 0, 90: 0},
        "median_days": None,
        "revenue": Decimal("0"),
    },
    "2026-09": {
        "entered": 1,
        "returned": {30: 1, 60: 1, 90: 1},
        "median_days": 2,
        "revenue": Decimal("20"),
    },
    "2026-10": {
        "entered": 1,
        "returned": {30: 0, 60: 0, 90: 0},
        "median_days": None,
        "revenue": Decimal("0"),
    },
}
"""Per month of entry, counted by hand from the story above."""


def at(day: int) -> datetime:
    return T0 + timedelta(days=day)


def ms(day: int) -> int:
    return T0_MS + day * DAY_MS
