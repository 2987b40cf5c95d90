"""What a worker counts (for ``/metrics`` and the demo), kept by the processor."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = ["LATENCY_BUCKETS", "Stats"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, float("inf"))


@dataclass(slots=True)
class Stats:
    """Counters the worker exposes (and the demo prints)."""

    events: int = 0
    duplicates_skipped: int = 0
    duplicate_events: int = 0
    forwarded: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    transitions: int = 0
    decays: int = 0
    fenced_batches: int = 0
    conflicts: int = 0
    rewinds: int = 0
    state_lost: int = 0
    swept: int = 0
    flows: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """Transitions committed, by (scheme, from, to)."""
    batch_seconds: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    """Histogram of a partition batch's apply time (counts per upper bound, not cumulative)."""
    batch_seconds_sum: float = 0.0

    def observe_batch(self, seconds: float) -> None:
        self.batch_seconds[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.batch_seconds_sum += seconds
