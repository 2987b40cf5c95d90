"""Injected clocks: "now" is a parameter of the system, never read from a global.

Live mode uses wall-clock time; replay/backfill uses the event-time watermark (the
largest event time seen), so decays between historical events fire at their
historical times. Tests use :class:`ManualClock`.

Time-driven work in live mode (the decay timer, re-evaluation sweeps, their gauges) runs
on the wall clock less ``RFM_DECAY_GRACE`` (:func:`lagging`): a decay fires ``grace``
after its due time, still effective at it, so an event dated before the due time that
arrives within the grace is applied before it (issue #20).
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "Lagging", "ManualClock", "WallClock", "WatermarkClock", "lagging"]


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


class Lagging:
    """Another clock, ``lag_ms`` behind: the horizon time-driven work may advance to."""

    def __init__(self, clock: Clock, lag_ms: int) -> None:
        self.clock = clock
        self.lag_ms = lag_ms

    def now_ms(self) -> int:
        return self.clock.now_ms() - self.lag_ms


def lagging(clock: Clock, lag_ms: int) -> Clock:
    """``clock`` itself when ``lag_ms`` is 0 (no grace: exactly the clock), else
    :class:`Lagging` behind it."""
    return Lagging(clock, lag_ms) if lag_ms else clock
