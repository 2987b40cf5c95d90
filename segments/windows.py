"""Rolling windows: F and M over the last N days, kept as per-day totals per customer.

A customer's state keeps, per purchase day, the orders and the net spend first seen
that day (``CustomerState.days``: day number -> [orders, units]), only while some
scheme's window can still see them. A day ``d`` counts at as-of time ``t`` while
``(d + 1) * DAY + window > t``: it leaves the window at a clean instant, the end of
the day plus the window, which is a *due time* like a recency decay, so customers move
when their purchases age out without any scan.

Orders are counted on the day of their first-seen line, and refunds retract from that
day; lines of one order on different days that arrive out of event-time order may
count on a different day than in order (documented limitation, like order retention).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segments.model import CustomerState

__all__ = [
    "DAY_MS",
    "add",
    "day_of",
    "expires_at",
    "next_expiry",
    "prune",
    "windowed_between",
    "windowed_values",
]

DAY_MS = 86_400_000


def day_of(ms: int) -> int:
    return ms // DAY_MS


def expires_at(day: int, window_ms: int) -> int:
    """The instant a purchase day leaves a window of ``window_ms``."""
    return (day + 1) * DAY_MS + window_ms


def add(s: CustomerState, occurred_ms: int, orders: int, units: int, window_ms: int) -> None:
    """Count ``orders`` / ``units`` on the day of ``occurred_ms`` if still in the window."""
    if not window_ms:
        return
    day = day_of(occurred_ms)
    if expires_at(day, window_ms) <= s.cursor_ms:
        return  # already aged out: a late event behind the cursor
    bucket = s.days.get(day)
    if bucket is None:
        s.days[day] = [orders, units]
    else:
        bucket[0] += orders
        bucket[1] += units


def prune(s: CustomerState, asof_ms: int, window_ms: int) -> None:
    """Drop days no window can see any more (bounded memory)."""
    if s.days:
        for day in [d for d in s.days if expires_at(d, window_ms) <= asof_ms]:
            del s.days[day]


def windowed_values(
    states: Sequence[CustomerState],
    axis: str,
    window_ms: int,
    asof_ms: np.ndarray | None = None,
) -> np.ndarray:
    """F (orders) or M (units) of each state within ``window_ms`` of its as-of time
    (default: its cursor)."""
    col = 0 if axis == "f" else 1
    out = np.zeros(len(states), dtype=np.int64)
    for i, s in enumerate(states):
        if not s.days:
            continue
        t = s.cursor_ms if asof_ms is None else int(asof_ms[i])
        out[i] = sum(v[col] for d, v in s.days.items() if expires_at(d, window_ms) > t)
    return out


def windowed_between(
    states: Sequence[CustomerState], near_ms: int, far_ms: int, asof_ms: np.ndarray
) -> np.ndarray:
    """Net spend of the purchase days that left the last ``near_ms`` but are still in
    the last ``far_ms`` at each as-of time (the window before the recent one)."""
    out = np.zeros(len(states), dtype=np.int64)
    for i, s in enumerate(states):
        if not s.days:
            continue
        t = int(asof_ms[i])
        out[i] = sum(
            v[1] for d, v in s.days.items() if expires_at(d, near_ms) <= t < expires_at(d, far_ms)
        )
    return out


def next_expiry(s: CustomerState, windows: Sequence[int]) -> int | None:
    """The first instant after the cursor at which a day leaves one of ``windows``."""
    best = None
    for w in windows:
        for d in s.days:
            t = expires_at(d, w)
            if t > s.cursor_ms and (best is None or t < best):
                best = t
    return best
