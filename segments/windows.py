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

from collections.abc import Iterable, Sequence
from itertools import chain
from typing import TypeVar, cast

import numpy as np

from schemas.times import DAY_MS
from segments.model import NEVER, CustomerState

__all__ = [
    "Batch",
    "add",
    "day_of",
    "expires_at",
    "next_expiries",
    "next_expiry",
    "prune",
    "windowed_between",
    "windowed_values",
]


def day_of(ms: int) -> int:
    return ms // DAY_MS


_Day = TypeVar("_Day", int, np.ndarray)


def expires_at(day: _Day, window_ms: int) -> _Day:
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
    """Drop days no window can see any more (bounded memory): those with
    ``expires_at(day, window_ms) <= asof_ms``, i.e. ``day <= (asof_ms - window_ms) // DAY_MS
    - 1`` (one integer bound instead of a call per day: this runs at every due time)."""
    if s.days:
        last_gone = (asof_ms - window_ms) // DAY_MS - 1
        for day in [d for d in s.days if d <= last_gone]:
            del s.days[day]


Days = tuple[tuple[int, ...], tuple[int, ...]] | tuple[()]
"""A customer's purchase days at one instant: (the days, their (orders, units) flat),
or () for none."""


def snapshot(s: CustomerState) -> Days:
    """``s``'s purchase days as they are now, copied (the counts are lists that later
    purchases add to): two C-level passes, no Python loop per day (the fold takes one
    per applied event)."""
    if not s.days:
        return ()
    return tuple(s.days), tuple(chain.from_iterable(s.days.values()))


class _Days:
    """The purchase days of a batch of states as flat columns, one row per (customer,
    day): the totals of every customer come from a few numpy passes instead of a Python
    loop per day (per axis, per scheme, per round, they were half the engine's time).

    Only customers with days have rows; ``owner`` (their index in the batch) is
    ascending and ``starts`` is where each owner's rows begin.
    """

    __slots__ = ("day", "ends", "owner", "starts", "values")

    def __init__(self, states: Sequence[CustomerState]) -> None:
        held = [i for i, s in enumerate(states) if s.days]
        tables = [states[i].days for i in held]
        counts = np.fromiter(map(len, tables), np.int64, len(tables))
        rows = int(counts.sum())
        self.owner = np.repeat(np.asarray(held, dtype=np.int64), counts)
        self.ends = np.cumsum(counts)
        self.starts = self.ends - counts
        self.day = np.fromiter(chain.from_iterable(tables), np.int64, rows)
        flat = chain.from_iterable(chain.from_iterable(t.values() for t in tables))
        self.values = np.fromiter(flat, np.int64, 2 * rows).reshape(rows, 2)

    @classmethod
    def of_rows(cls, rows: Sequence[Days]) -> _Days:
        """From each customer's days as (days, their (orders, units) flat), the form
        :func:`snapshot` gives."""
        days = cls.__new__(cls)
        held = [i for i, r in enumerate(rows) if r]
        picked = cast(list[tuple[tuple[int, ...], tuple[int, ...]]], [rows[i] for i in held])
        counts = np.fromiter((len(r[0]) for r in picked), np.int64, len(held))
        n = int(counts.sum())
        days.owner = np.repeat(np.asarray(held, dtype=np.int64), counts)
        days.ends = np.cumsum(counts)
        days.starts = days.ends - counts
        days.day = np.fromiter(chain.from_iterable(r[0] for r in picked), np.int64, n)
        flat = chain.from_iterable(r[1] for r in picked)
        days.values = np.fromiter(flat, np.int64, 2 * n).reshape(n, 2)
        return days

    def sums(self, n: int, column: int, keep: np.ndarray) -> np.ndarray:
        """Per customer (``n`` of them), the sum of ``column`` over the rows in ``keep``;
        exact int64 (a running sum differenced at each owner's last row)."""
        out = np.zeros(n, dtype=np.int64)
        if not self.owner.size:
            return out
        running = np.cumsum(np.where(keep, self.values[:, column], 0))
        last = running[self.ends - 1]
        before = np.concatenate(([0], last[:-1]))
        out[self.owner[self.starts]] = last - before
        return out


class Batch(list[CustomerState]):
    """States read together while none of them changes: one classification by every
    scheme, one due-time computation. Their purchase days become columns once, for every
    windowed axis of every scheme (four per classification with the shipped rules),
    instead of once per axis. The engine makes one per such step; whoever changes a
    state's days afterwards must make a new one."""

    __slots__ = ("_days",)

    def __init__(self, states: Iterable[CustomerState]) -> None:
        super().__init__(states)
        self._days: _Days | None = None

    @classmethod
    def of_rows(cls, states: Iterable[CustomerState], rows: Sequence[Days]) -> Batch:
        """States as they were at some earlier instants: ``rows[i]`` holds the purchase
        days of ``states[i]`` then, as :func:`snapshot` took them (the evaluation points
        of :mod:`segments.fold`, several per state; the states have moved on)."""
        batch = cls(states)
        batch._days = _Days.of_rows(rows)
        return batch


def _days_of(states: Sequence[CustomerState]) -> _Days:
    if isinstance(states, Batch):
        if states._days is None:
            states._days = _Days(states)
        return states._days
    return _Days(states)


def _asof(states: Sequence[CustomerState], asof_ms: np.ndarray | None) -> np.ndarray:
    if asof_ms is None:
        return np.fromiter((s.cursor_ms for s in states), np.int64, len(states))
    return np.asarray(asof_ms, dtype=np.int64)


def windowed_values(
    states: Sequence[CustomerState],
    axis: str,
    window_ms: int,
    asof_ms: np.ndarray | None = None,
) -> np.ndarray:
    """F (orders) or M (units) of each state within ``window_ms`` of its as-of time
    (default: its cursor): the days with ``expires_at(day, window_ms) > as-of``."""
    days = _days_of(states)
    if not days.owner.size:
        return np.zeros(len(states), dtype=np.int64)
    t = _asof(states, asof_ms)[days.owner]
    keep = expires_at(days.day, window_ms) > t
    return days.sums(len(states), 0 if axis == "f" else 1, keep)


def windowed_between(
    states: Sequence[CustomerState], near_ms: int, far_ms: int, asof_ms: np.ndarray
) -> np.ndarray:
    """Net spend of the purchase days that left the last ``near_ms`` but are still in
    the last ``far_ms`` at each as-of time (the window before the recent one)."""
    days = _days_of(states)
    if not days.owner.size:
        return np.zeros(len(states), dtype=np.int64)
    t = _asof(states, asof_ms)[days.owner]
    d = days.day
    keep = (expires_at(d, near_ms) <= t) & (t < expires_at(d, far_ms))
    return days.sums(len(states), 1, keep)


def next_expiries(states: Sequence[CustomerState], windows: Sequence[int]) -> np.ndarray:
    """Per state, the first instant after its cursor at which one of its days leaves one
    of ``windows`` (``NEVER`` if none)."""
    out = np.full(len(states), NEVER, dtype=np.int64)
    days = _days_of(states)
    if not days.owner.size or not windows:
        return out
    cursor = _asof(states, None)[days.owner]
    best = np.full(days.day.size, NEVER, dtype=np.int64)
    for w in windows:
        at = expires_at(days.day, w)
        best = np.where((at > cursor) & (at < best), at, best)
    out[days.owner[days.starts]] = np.minimum.reduceat(best, days.starts)
    return out


def next_expiry(s: CustomerState, windows: Sequence[int]) -> int | None:
    """The first instant after the cursor at which a day leaves one of ``windows``."""
    t = int(next_expiries([s], windows)[0])
    return None if t == NEVER else t
