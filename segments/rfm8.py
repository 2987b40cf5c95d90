"""The 2×2×2 RFM grid of eight segments (高价值/深耕/休眠/流失/潜力/新/维持/放任自流).

R is high while ``asof < last_purchase + recency`` (so at exactly ``last + recency``
the customer has decayed: the due time is a clean instant); F and M are high at or
above their cut points. Scores are 1 (low) and 2 (high) on each axis.

The shipped rules file declares the same grid; this class builds it from three
numbers, for the ``RFM_RECENCY`` / ``RFM_FREQUENCY_CUT`` / ``RFM_MONETARY_CUT``
overrides and for tests.
"""

from __future__ import annotations

from segments.grid import Axis, GridScheme

__all__ = ["RFM8_CELLS", "RFM8_LABELS", "Rfm8"]

# (R, F, M) scores -> key
RFM8_CELLS: dict[tuple[int, ...], str] = {
    (2, 2, 2): "high_value",
    (2, 1, 2): "develop",
    (1, 2, 2): "dormant",
    (1, 1, 2): "churning",
    (2, 2, 1): "potential",
    (2, 1, 1): "new",
    (1, 2, 1): "maintain",
    (1, 1, 1): "drifting",
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


class Rfm8(GridScheme):
    """High/low on each axis with fixed cut points."""

    def __init__(
        self, recency_ms: int, frequency_cut: int, monetary_cut_units: int, name: str = "rfm8"
    ) -> None:
        if recency_ms <= 0 or frequency_cut < 1 or monetary_cut_units <= 0:
            raise ValueError("rfm8 cut points must be positive")
        axes = [
            Axis("r", (recency_ms,)),
            Axis("f", (frequency_cut,)),
            Axis("m", (monetary_cut_units,)),
        ]
        super().__init__(name, axes, RFM8_CELLS, RFM8_LABELS)
