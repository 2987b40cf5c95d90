"""``GET /segments/value``: what each segment is worth, and the base's Pareto view.

Built from the running sums the commits keep (segment sizes, ``segments.worth``'s
revenue, orders, CLV and Pareto summary): two hashes per partition, no scan. The document is
shared by the API, ``rfm-stream segments --value`` and the report, so it is built here
once, as a pure function of the sums.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from schemas.money import MONEY_SCALE, from_units
from segments.scheme import Scheme
from segments.worth import ACCURACY, pareto
from state.tallies import WorthSums

__all__ = ["value_view"]

_CENT = Decimal("0.01")


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _money(units: int) -> str:
    return str(from_units(units))


def _average(units: int, orders: int) -> str | None:
    """AOV to the cent (half to even), None for a segment with no orders."""
    if not orders:
        return None
    return str((Decimal(units) / orders / MONEY_SCALE).quantize(_CENT, ROUND_HALF_EVEN))


def _cents(cents: int) -> str:
    return str((Decimal(cents) / 100).quantize(_CENT))


def _clv(cents: int, customers: int) -> tuple[str | None, str | None]:
    """(total, average) CLV as money, to the cent; both None when nobody holds one
    (value figures off: no ``value_figures`` scheme, or no fitted model yet)."""
    if not customers:
        return None, None
    average = (Decimal(cents) / customers / 100).quantize(_CENT, ROUND_HALF_EVEN)
    return _cents(cents), str(average)


def value_view(
    schemes: Sequence[Scheme],
    counts: Mapping[str, Mapping[str, int]],
    sums: WorthSums,
    currency: str,
) -> dict[str, Any]:
    """Per scheme and segment: customers, net revenue, its share, orders, AOV and the
    total and average CLV; for the base: customers, revenue, the top 1 % / 20 % revenue
    share, as a range exact up to the one bucket the cut straddles (``low == high`` when
    it falls between), and customer equity (客户资产: Σ of the last CLVs)."""
    out: dict[str, Any] = {}
    for scheme in schemes:
        got = counts.get(scheme.name, {})
        keys = list(scheme.labels)
        total = sum(sums.revenue.get((scheme.name, k), 0) for k in keys)
        rows = []
        for k in keys:
            revenue = sums.revenue.get((scheme.name, k), 0)
            orders = sums.orders.get((scheme.name, k), 0)
            clv, average_clv = _clv(
                sums.clv.get((scheme.name, k), 0), sums.valued.get((scheme.name, k), 0)
            )
            rows.append(
                {
                    "segment": k,
                    "label": scheme.labels[k],
                    "customers": got.get(k, 0),
                    "revenue": _money(revenue),
                    "revenue_share": _share(revenue, total),
                    "orders": orders,
                    "average_order_value": _average(revenue, orders),
                    "clv": clv,
                    "average_clv": average_clv,
                }
            )
        out[scheme.name] = {
            "customers": sum(got.get(k, 0) for k in keys),
            "revenue": _money(total),
            "segments": rows,
        }
    equity, average_equity = _clv(sums.clv.get(("", ""), 0), sums.valued.get(("", ""), 0))
    points = pareto(sums.counts, sums.sums)
    base_total = points[0].total if points else 0
    return {
        "currency": currency,
        "schemes": out,
        "base": {
            "customers": sum(sums.counts.values()),
            "revenue": _money(base_total),
            "pareto": [
                {
                    "top": float(p.share),
                    "customers": p.customers,
                    "revenue_low": _money(p.low),
                    "revenue_high": _money(p.high),
                    "revenue_share_low": _share(p.low, p.total),
                    "revenue_share_high": _share(p.high, p.total),
                }
                for p in points
            ],
            "bucket_accuracy": float(ACCURACY),
            "equity": equity,
            "equity_customers": sums.valued.get(("", ""), 0),
            "average_clv": average_equity,
        },
    }
