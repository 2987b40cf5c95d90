"""A terminal progress bar: percent of the range, events/s, ETA. Plain lines when not a TTY."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
    def __init__(
        self,
        total: int,
        label: str = "backfill",
        out: TextIO | None = None,
        unit: tuple[str, str] = ("events", "ev"),
    ) -> None:
        self.total = max(total, 0)
        self.unit = unit
        """What is counted: (plural, short for the rate), e.g. ("customers", "cust")."""
        self.done = 0
        self.label = label
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.started = time.monotonic()
        self._shown = 0.0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._shown >= (0.2 if self.tty else 2.0):
            self._shown = now
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        frac = min(self.done / self.total, 1.0) if self.total else 1.0
        eta = (self.total - self.done) / rate if rate > 0 and self.total > self.done else 0.0
        bar = "█" * int(frac * 24) + " " * (24 - int(frac * 24))
        return (
            f"{self.label} {frac * 100:5.1f}% |{bar}| {self.done:,}/{self.total:,} {self.unit[0]}"
            f"  {rate:,.0f} {self.unit[1]}/s  ETA {_clock(eta)}"
        )

    def _draw(self, now: float) -> None:
        if self.tty:
            self.out.write("\r" + self.line(now))
        else:
            self.out.write(self.line(now) + "\n")
        self.out.flush()

    def finish(self) -> None:
        self._draw(time.monotonic())
        if self.tty:
            self.out.write("\n")
        self.out.flush()
