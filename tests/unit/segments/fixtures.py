"""Schemes used only by tests."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from segments import Columns, Scheme

DAY = 86_400_000


class Bands(Scheme):
    """A test scheme with two recency edges, for chained decays."""

    name = "bands"
    labels: ClassVar[dict[str, str]] = {"active": "活跃", "cooling": "降温", "lapsed": "流失"}

    def scores(self, cols: Columns, asof_ms: np.ndarray) -> dict[str, np.ndarray]:
        elapsed = asof_ms - cols.last_ms
        return {"r": np.where(elapsed < 30 * DAY, 3, np.where(elapsed < 90 * DAY, 2, 1))}

    def classify(self, cols: Columns, asof_ms: np.ndarray) -> np.ndarray:
        r = self.scores(cols, asof_ms)["r"]
        return np.array(["", "lapsed", "cooling", "active"], dtype=object)[r]

    def recency_edges_ms(self) -> tuple[int, ...]:
        return (30 * DAY, 90 * DAY)

    def describe(self) -> str:
        return "bands:30d:90d"
