"""The 2×2×2 RFM grid of eight segments (高价值/深耕/休眠/流失/潜力/新/维持/放任自流).

R is high while ``asof < last_purchase + recency`` (so at exactly ``last + recency``
the customer has decayed: the due time is a clean instant); F and M are high at or
above their cut points.
"""

from __future__ import annotations

import numpy as np

from schemas.durations import format_duration
from segments.model import Columns
from segments.scheme import Scheme

__all__ = ["RFM8_LABELS", "Rfm8"]

# (R high, F high, M high) -> key
_GRID: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): "high_value",
    (True, False, True): "develop",
    (False, True, True): "dormant",
    (False, False, True): "churning",
    (True, True, False): "potential",
    (True, False, False): "new",
    (False, True, False): "maintain",
    (False, False, False): "drifting",
}
RFM8_LABELS: dict[str, str] = {
    "high_value": "高价值客户",
    "develop": "深耕客户",
    "dormant": "休眠客户",
    "churning": "流失客户",
    "potential": "潜力客户",
    "new": "新客户",
    "maintain": "维持客户",
    "drifting": "放任自流客户",
}
# lookup table indexed by r*4 + f*2 + m
_TABLE = np.array([_GRID[(bool(i & 4), bool(i & 2), bool(i & 1))] for i in range(8)], dtype=object)


class Rfm8(Scheme):
    """High/low on each axis; fixed cut points from settings."""

    labels = RFM8_LABELS

    def __init__(
        self, recency_ms: int, frequency_cut: int, monetary_cut_units: int, name: str = "rfm8"
    ) -> None:
        if recency_ms <= 0 or frequency_cut < 1 or monetary_cut_units <= 0:
            raise ValueError("rfm8 cut points must be positive")
        self.name = name
        self.recency_ms = recency_ms
        self.frequency_cut = frequency_cut
        self.monetary_cut_units = monetary_cut_units

    def scores(self, cols: Columns, asof_ms: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "r": (asof_ms < cols.last_ms + self.recency_ms).astype(np.int64),
            "f": (cols.frequency >= self.frequency_cut).astype(np.int64),
            "m": (cols.monetary >= self.monetary_cut_units).astype(np.int64),
        }

    def classify(self, cols: Columns, asof_ms: np.ndarray) -> np.ndarray:
        s = self.scores(cols, asof_ms)
        return _TABLE[s["r"] * 4 + s["f"] * 2 + s["m"]]

    def recency_edges_ms(self) -> tuple[int, ...]:
        return (self.recency_ms,)

    def describe(self) -> str:
        return (
            f"{self.name}:rfm8:r<{format_duration(self.recency_ms)}"
            f":f>={self.frequency_cut}:m>={self.monetary_cut_units}"
        )
