"""The report's value views: what each segment is worth, and the base's Pareto view.

From ``GET /segments/value``'s document (:mod:`stream.api.worth`): per scheme a chart of
each segment's share of customers against its share of revenue (where a person sees at
a glance which segments carry the money) and the table of the figures; for the base, the
revenue share of the top 1 % and 20 % of customers (二八定律) as bars, the part the
bucketing leaves uncertain drawn lighter. Pure, inline SVG, like the rest of the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stream.report.svg import _e, _f, _n, _text_width

__all__ = ["pareto_section", "value_block"]

_W = 960
_LABEL_W = 230
_ROW_H = 30
_BAR_H = 10
_CUSTOMERS = "#c5cad3"
_INK = "#1f2430"
_MUTED = "#69707d"


def _pct(share: float) -> str:
    return f"{_f(100 * share)} %"


def _range(lo: float, hi: float, dash: str = " – ") -> str:
    """A share range; one figure when both ends show the same."""
    a, b = _pct(lo), _pct(hi)
    return a if a == b else f"{a}{dash}{b}"


def _share_chart(rows: list[dict[str, Any]], customers: int, colors: Mapping[str, str]) -> str:
    """Two bars per segment: its share of customers (grey) over its share of revenue."""
    span = _W - _LABEL_W - 70
    top = 22
    height = top + _ROW_H * len(rows) + 6
    parts = [
        f'<text x="{_LABEL_W}" y="12" font-size="11" fill="{_MUTED}">'
        f'<tspan fill="{_CUSTOMERS}">■</tspan> share of customers   '
        f'<tspan fill="{_INK}">■</tspan> share of revenue</text>'
    ]
    for i, row in enumerate(rows):
        y = top + i * _ROW_H
        c_share = row["customers"] / customers if customers else 0.0
        r_share = float(row["revenue_share"])
        label = f"{row['label']} ({row['segment']})"
        while _text_width(label, 12) > _LABEL_W - 10 and len(label) > 4:
            label = label[:-2] + "…"
        color = colors.get(row["segment"], _INK)
        parts.append(
            f"<g><title>{_e(row['label'])}: {_pct(c_share)} of customers, "
            f"{_pct(r_share)} of revenue</title>"
            f'<text x="{_LABEL_W - 8}" y="{y + 14}" font-size="12" text-anchor="end" '
            f'fill="{_INK}">{_e(label)}</text>'
            f'<rect x="{_LABEL_W}" y="{y + 1}" width="{span * c_share:.1f}" '
            f'height="{_BAR_H}" rx="2" fill="{_CUSTOMERS}"/>'
            f'<rect x="{_LABEL_W}" y="{y + 1 + _BAR_H + 2}" width="{span * r_share:.1f}" '
            f'height="{_BAR_H}" rx="2" fill="{color}"/>'
            f'<text x="{_LABEL_W + span * max(c_share, r_share) + 6:.1f}" y="{y + 20}" '
            f'font-size="11" fill="{_MUTED}">{_pct(r_share)}</text></g>'
        )
    return (
        f'<svg class="worth" viewBox="0 0 {_W} {height}" role="img" '
        f'aria-label="share of customers and of revenue per segment">{"".join(parts)}</svg>'
    )


def _table(rows: list[dict[str, Any]], colors: Mapping[str, str], currency: str) -> str:
    """The figures' table; the CLV columns only where value figures are on (some member
    holds a CLV)."""
    valued = any(row.get("clv") is not None for row in rows)
    body = []
    for row in rows:
        aov = row["average_order_value"] or "—"
        clv = (
            f'<td class="n">{_e(row["average_clv"] or "—")}</td>'
            f'<td class="n">{_e(row["clv"] or "—")}</td>'
            if valued
            else ""
        )
        body.append(
            "<tr>"
            f'<td><span class="sw" style="background:{colors.get(row["segment"], _INK)}">'
            f'</span> <span class="lab">{_e(row["label"])}</span>'
            f'<span class="k">{_e(row["segment"])}</span></td>'
            f'<td class="n">{_n(row["customers"])}</td>'
            f'<td class="n">{_e(row["revenue"])}</td>'
            f'<td class="n">{_pct(float(row["revenue_share"]))}</td>'
            f'<td class="n">{_n(row["orders"])}</td><td class="n">{_e(aov)}</td>{clv}'
            "</tr>"
        )
    head = '<th class="n">Avg CLV</th><th class="n">Total CLV</th>' if valued else ""
    return (
        '<table class="worth"><thead><tr><th>Segment</th><th class="n">Customers</th>'
        f'<th class="n">Net revenue ({_e(currency)})</th><th class="n">Share</th>'
        f'<th class="n">Orders</th><th class="n">AOV</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def value_block(scheme: Mapping[str, Any], colors: Mapping[str, str], currency: str) -> str:
    """A scheme section's value part: the share chart and the figures' table."""
    rows = list(scheme["segments"])
    return (
        f"<h3>What each segment is worth now · revenue {_e(scheme['revenue'])} {_e(currency)}</h3>"
        f"{_share_chart(rows, int(scheme['customers']), colors)}"
        f"{_table(rows, colors, currency)}"
    )


def _pareto_chart(points: list[dict[str, Any]]) -> str:
    """One bar per cut, 0-100 % of revenue: solid up to the low end of its range, light
    from there to the high end; a dashed rule at 80 % (二八定律's benchmark)."""
    span = _W - _LABEL_W - 90
    top = 8
    height = top + 40 * len(points) + 22
    x80 = _LABEL_W + 0.8 * span
    parts = [
        f'<rect x="{_LABEL_W}" y="{top}" width="{span}" height="{40 * len(points)}" '
        'fill="#f3f4f6"/>',
        f'<line x1="{x80:.1f}" x2="{x80:.1f}" y1="{top - 4}" y2="{top + 40 * len(points)}" '
        f'stroke="{_INK}" stroke-dasharray="3 3"/>',
        f'<text x="{x80:.1f}" y="{height - 4}" font-size="11" text-anchor="middle" '
        f'fill="{_MUTED}">80 % (二八定律)</text>',
    ]
    for i, p in enumerate(points):
        y = top + 40 * i + 10
        lo, hi = float(p["revenue_share_low"]), float(p["revenue_share_high"])
        text = _range(lo, hi)
        parts.append(
            f"<g><title>top {_f(100 * float(p['top']))} % ({_n(p['customers'])} customers): "
            f"{text} of revenue</title>"
            f'<text x="{_LABEL_W - 8}" y="{y + 14}" font-size="12" text-anchor="end" '
            f'fill="{_INK}">top {_f(100 * float(p["top"]))} % of customers</text>'
            f'<rect x="{_LABEL_W}" y="{y}" width="{span * lo:.1f}" height="20" rx="2" '
            'fill="#4e79a7"/>'
            f'<rect x="{_LABEL_W + span * lo:.1f}" y="{y}" width="{span * (hi - lo):.1f}" '
            'height="20" fill="#4e79a7" fill-opacity=".35"/>'
            f'<text x="{_LABEL_W + span * hi + 6:.1f}" y="{y + 14}" font-size="12" '
            f'fill="{_INK}">{text}</text></g>'
        )
    return (
        f'<svg class="pareto" viewBox="0 0 {_W} {height}" role="img" '
        f'aria-label="revenue share of the top customers">{"".join(parts)}</svg>'
    )


def pareto_section(base: Mapping[str, Any], currency: str) -> str:
    """The base's section: customers, revenue, customer equity (when value figures are
    on) and the Pareto bars."""
    points = list(base["pareto"])
    stats = (
        f"<li><b>{_n(base['customers'])}</b>customers with an order</li>"
        f"<li><b>{_e(base['revenue'])}</b>net revenue ({_e(currency)})</li>"
    )
    if base.get("equity") is not None:
        stats += (
            f"<li><b>{_e(base['equity'])}</b>customer equity, 客户资产 ({_e(currency)}; "
            f"average CLV {_e(base['average_clv'])})</li>"
        )
    for p in points:
        lo, hi = float(p["revenue_share_low"]), float(p["revenue_share_high"])
        share = _range(lo, hi, "–")
        stats += f"<li><b>{share}</b>of revenue from the top {_f(100 * float(p['top']))} %</li>"
    note = (
        f"Exact but for the one bucket (±{_f(100 * float(base['bucket_accuracy']))} % of "
        "net spend) a cut falls in: the lighter part of a bar is that range."
    )
    chart = _pareto_chart(points) if base["customers"] else '<p class="empty">No customers.</p>'
    return (
        '<section id="pareto" data-scheme="base"><h2>The base: who brings the revenue</h2>'
        f'<ul class="stats">{stats}</ul><h3>Pareto view</h3>{chart}'
        f'<p class="k">{_e(note)}</p></section>'
    )
