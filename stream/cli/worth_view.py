"""``rfm-stream segments``' table: customers and what each segment is worth, and the
base's Pareto view, from ``GET /segments/value``'s document (:mod:`stream.api.worth`)."""

from __future__ import annotations

from typing import Any

from stream.cli.terminal import pad

__all__ = ["render_values"]

_HEAD = (
    f"  {pad('segment', 20)}{pad('', 28)}{'customers':>10}  {'share':>7}"
    f"{'revenue':>16}  {'rev. share':>10}{'orders':>10}{'AOV':>12}"
)


def _pct(share: float) -> str:
    return f"{100 * share:5.1f} %"


def render_values(body: dict[str, Any]) -> str:
    """One table per scheme (with average and total CLV where value figures are on),
    then customer equity and the Pareto lines: the top 1 % / 20 % of customers'
    revenue share as a range when the cut falls inside a bucket (exact otherwise)."""
    currency = body["currency"]
    out = []
    for scheme, v in body["schemes"].items():
        total = v["customers"]
        valued = any(row.get("clv") is not None for row in v["segments"])
        out.append(f"{scheme}  ({total:,} customers)  revenue {v['revenue']} {currency}")
        out.append(_HEAD + (f"{'avg CLV':>12}{'total CLV':>16}" if valued else ""))
        for row in v["segments"]:
            share = _pct(row["customers"] / total) if total else "    - "
            aov = row["average_order_value"] or "-"
            name = pad(row["segment"], 20) + pad(row["label"], 28)
            clv = f"{row['average_clv'] or '-':>12}{row['clv'] or '-':>16}" if valued else ""
            out.append(
                f"  {name}{row['customers']:>10,}  {share}{row['revenue']:>16}  "
                f"{_pct(row['revenue_share']):>10}{row['orders']:>10,}{aov:>12}{clv}"
            )
        out.append("")
    base = body["base"]
    out.append(
        f"base  ({base['customers']:,} customers with an order)  revenue {base['revenue']} "
        f"{currency}"
    )
    if base.get("equity") is not None:
        out.append(
            f"  customer equity (客户资产) {base['equity']} {currency}: "
            f"{base['equity_customers']:,} customers, average CLV {base['average_clv']}"
        )
    for p in base["pareto"]:
        lo, hi = p["revenue_share_low"], p["revenue_share_high"]
        share = _pct(lo) if _pct(lo) == _pct(hi) else f"{_pct(lo)} – {_pct(hi)}"
        out.append(f"  top {100 * p['top']:g} % ({p['customers']:,} customers): {share} of revenue")
    out.append(
        f"  (exact but for the one bucket of ±{100 * base['bucket_accuracy']:g} % "
        "the cut falls in: hence a range)"
    )
    return "\n".join(out).rstrip()
