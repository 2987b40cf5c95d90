"""Injected clocks: "now" is a parameter of the system, never read from a global.

Live mode uses wall-clock time; replay/backfill uses the event-time watermark (the
largest event time seen), so decays between historical events fire at their
historical times. Tests use :class:`ManualClock`.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "WallClock", "WatermarkClock"]


class Clock(Protocol):
    def now_ms(self) -> int: ...


class WallClock:
    """Real time, epoch milliseconds."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def set(self, ms: int) -> None:
        self._now = ms

    def advance(self, ms: int) -> None:
        self._now += ms


class WatermarkClock:
    """Event time: the largest event time observed so far (never moves backwards)."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def observe(self, event_ms: int) -> None:
        self._now = max(self._now, event_ms)

    def now_ms(self) -> int:
        return self._now
