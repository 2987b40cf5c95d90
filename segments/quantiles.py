"""Quantile cut points: which populations are summarised, and cut points from summaries.

A quantile axis ranks a customer against the current customer population, so every
population a rule needs (lifetime F, lifetime M, last purchase time for R, or F/M over
a window) is kept as a mergeable summary (:mod:`segments.sketch`) per partition,
updated by exact deltas in the same atomic commit as the customer state. A refresh
merges all partitions' summaries and turns each scheme's quantiles into thresholds: a
new **cut-point version**, recorded in the transitions it causes.

The population is the customers with at least one order still holding money
(frequency > 0), the ones the schemes rank. Each customer's value is read from their
state at their own cursor, so the value removed on the next update is exactly the one
added on the last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segments import sketch
from segments.model import CustomerState
from segments.scheme import Scheme
from segments.value import ValueModel
from segments.windows import windowed_values

__all__ = ["CutPoints", "Population", "Populations"]

_DAY = 86_400_000
MONEY_ACCURACY = 0.01
"""Relative accuracy of money and count cut points (1 %)."""


@dataclass(frozen=True, slots=True)
class CutPoints:
    """One version of the quantile axes' thresholds: scheme -> axis -> thresholds."""

    version: int
    at_ms: int
    thresholds: Mapping[str, Mapping[str, tuple[int, ...]]] = field(default_factory=dict)
    population: int = 0
    """How many customers the summaries held (a doubling triggers the next refresh)."""
    model: ValueModel | None = None
    """The base's BG/NBD fit (P(alive), CLV), when some scheme reads it."""

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "version": self.version,
            "at_ms": self.at_ms,
            "population": self.population,
            "thresholds": {
                s: {a: list(t) for a, t in ax.items()} for s, ax in self.thresholds.items()
            },
        }
        if self.model is not None:
            doc["model"] = self.model.to_json()
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> CutPoints:
        th = doc.get("thresholds") or {}
        assert isinstance(th, Mapping)
        model = doc.get("model")
        return cls(
            version=int(doc["version"]),
            at_ms=int(doc["at_ms"]),
            thresholds={s: {a: tuple(t) for a, t in ax.items()} for s, ax in th.items()},
            population=int(doc.get("population", 0)),
            model=ValueModel.from_json(model) if isinstance(model, Mapping) else None,
        )


@dataclass(frozen=True, slots=True)
class Population:
    """One summarised quantity: an axis, over a window or the whole history."""

    axis: str
    window_ms: int | None = None

    @property
    def name(self) -> str:
        return self.axis if self.window_ms is None else f"{self.axis}@{self.window_ms}"

    @property
    def buckets(self) -> sketch.Buckets:
        if self.axis in ("r", "t"):  # last purchase time / span, by day: cuts to the day
            return sketch.Buckets.linear(_DAY)
        return sketch.Buckets.log(MONEY_ACCURACY)

    def values(self, states: Sequence[CustomerState]) -> np.ndarray:
        n = len(states)
        if self.axis == "r":
            return np.fromiter((s.last_ms for s in states), np.int64, n)
        if self.axis == "t":
            return np.fromiter(
                (s.last_ms - s.first_ms if s.first_ms is not None else 0 for s in states),
                np.int64,
                n,
            )
        if self.axis == "a":
            return np.fromiter((s.monetary // max(s.frequency, 1) for s in states), np.int64, n)
        if self.window_ms is not None:
            return windowed_values(states, self.axis, self.window_ms)
        attr = "frequency" if self.axis == "f" else "monetary"
        return np.fromiter((getattr(s, attr) for s in states), np.int64, n)


class Populations:
    """The populations the schemes' quantile axes need, and their summary deltas."""

    def __init__(self, schemes: Sequence[Scheme]) -> None:
        found = {
            Population(a.name, a.window_ms)
            for s in schemes
            for a in getattr(s, "axes", ())
            if a.quantiles is not None
        }
        self.items = tuple(sorted(found, key=lambda p: p.name))

    def __bool__(self) -> bool:
        return bool(self.items)

    def snapshot(self, states: Sequence[CustomerState]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each population's (values, present) for ``states``, to diff after an update."""
        present = np.fromiter((s.frequency > 0 for s in states), bool, len(states))
        return {p.name: (p.values(states), present) for p in self.items}

    def deltas(
        self,
        before: Mapping[str, tuple[np.ndarray, np.ndarray]],
        after: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ) -> dict[str, dict[int, int]]:
        """Per population, the net bucket count changes (empty ones omitted)."""
        out = {}
        for p in self.items:
            old, old_in = before[p.name]
            new, new_in = after[p.name]
            d = sketch.deltas(p.buckets, old, old_in, new, new_in)
            if d:
                out[p.name] = d
        return out

    def cut_points(
        self,
        schemes: Sequence[Scheme],
        summaries: Mapping[str, Mapping[int, int]],
        now_ms: int,
        version: int,
        population: int = 0,
    ) -> CutPoints:
        """Thresholds of every quantile axis from the merged summaries at ``now_ms``.

        A scheme whose population is empty gets no thresholds (it ranks nobody yet).
        F and M: customers above the summary bucket holding the q-quantile rank higher
        (threshold: the bucket's upper edge + 1), so a band "above q" never holds more
        than 1 − q of the customers; ties and the bucket's width err towards the band
        below, by at most the summary's 1 % relative accuracy. R: the q-quantile of
        elapsed time is ``now`` minus the (1 − q)-quantile of the last purchase times
        (to the day); customers at most that old rank higher.
        """
        by_name = {p.name: p for p in self.items}
        thresholds: dict[str, dict[str, tuple[int, ...]]] = {}
        for s in schemes:
            axes: dict[str, tuple[int, ...]] = {}
            for a in getattr(s, "axes", ()):
                if a.quantiles is None:
                    continue
                pop = by_name[Population(a.name, a.window_ms).name]
                summary = summaries.get(pop.name) or {}
                if sketch.size(summary) == 0:
                    break
                if a.name == "r":  # elapsed since the last purchase
                    lasts = sketch.quantiles(pop.buckets, summary, [1 - q for q in a.quantiles])
                    axes["r"] = tuple(sorted(max(now_ms - t, 0) + 1 for t in lasts))
                else:  # above the whole bucket holding the quantile: never over-fills
                    found = sketch.quantile_buckets(pop.buckets, summary, list(a.quantiles))
                    axes[a.name] = tuple(pop.buckets.upper(b) + 1 for b in found)
            else:
                if axes:
                    thresholds[s.name] = axes
        return CutPoints(version, now_ms, thresholds, population)
