"""The report's win-back section: per scheme marking lapsed segments, a chart of each
cohort's return rates within 30 / 60 / 90 days against the course text's one in four
("每4个中会有1个可能被挽回", the dashed line), and the table of the figures behind it.

Pure: renders the bodies ``GET /winback`` answers (:func:`stream.api.winback.winback`),
no I/O. Self-contained: its own few CSS rules, no script.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stream.report.svg import _e, _n

__all__ = ["winback_section"]

_SHADES = {"90": "#c6dbef", "60": "#6baed6", "30": "#2171b5"}
"""Nested bars: within 90 days (lightest, tallest) over 60 over 30."""
_W, _H, _PAD, _LEFT = 640, 220, 24, 40
_CSS = (
    ".wb table{border-collapse:collapse;font-size:13px}.wb td,.wb th{padding:2px 8px}"
    ".wb td.n,.wb th.n{text-align:right}.wb .open{opacity:.55}"
    ".wb .key span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}"
)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _chart(body: Mapping[str, Any]) -> str:
    cohorts = body["cohorts"]
    expected = float(body["expected_rate"])
    rates = [c["rate"]["90"] or 0.0 for c in cohorts]
    top = min(1.0, max([expected * 1.6, *rates]) * 1.1)
    inner_w, inner_h = _W - _LEFT - _PAD, _H - 2 * _PAD
    slot = inner_w / max(1, len(cohorts))
    bar = max(4.0, min(40.0, slot * 0.6))

    def y(rate: float) -> float:
        return _PAD + inner_h * (1 - rate / top)

    parts = [
        f'<svg class="wbchart" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        f'aria-label="return rates per cohort, {_e(body["scheme"])}">',
        f'<line x1="{_LEFT}" y1="{y(0):.1f}" x2="{_W - _PAD}" y2="{y(0):.1f}" stroke="#999"/>',
    ]
    for tick in (0.0, top / 2, top):
        parts.append(
            f'<text x="{_LEFT - 4}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end">'
            f"{_pct(tick)}</text>"
        )
    for i, c in enumerate(cohorts):
        x = _LEFT + slot * i + (slot - bar) / 2
        cls = "" if 90 in c["final"] else ' class="open"'
        parts.append(f"<g{cls}><title>{_e(_tooltip(c))}</title>")
        for h in ("90", "60", "30"):
            r = c["rate"][h] or 0.0
            parts.append(
                f'<rect x="{x:.1f}" y="{y(r):.1f}" width="{bar:.1f}" '
                f'height="{y(0) - y(r):.1f}" fill="{_SHADES[h]}"/>'
            )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{_H - 6}" font-size="10" text-anchor="middle">'
            f"{_e(c['cohort'])}</text></g>"
        )
    parts.append(
        f'<line x1="{_LEFT}" y1="{y(expected):.1f}" x2="{_W - _PAD}" y2="{y(expected):.1f}" '
        'stroke="#e15759" stroke-dasharray="5 4"/>'
        f'<text x="{_W - _PAD}" y="{y(expected) - 4:.1f}" font-size="10" text-anchor="end" '
        f'fill="#e15759">1 in 4 (text) {_pct(expected)}</text></svg>'
    )
    return "".join(parts)


def _tooltip(c: Mapping[str, Any]) -> str:
    r = c["returned"]
    return (
        f"{c['cohort']}: {c['entered']} entered; back within 30/60/90 days "
        f"{r['30']}/{r['60']}/{r['90']} ({_pct(c['rate']['90'])} in 90 days); "
        f"median {c['median_days'] if c['median_days'] is not None else '–'} days"
    )


def _table(body: Mapping[str, Any]) -> str:
    rows = []
    for c in body["cohorts"]:
        r = c["returned"]
        median = "–" if c["median_days"] is None else str(c["median_days"])
        cls = "" if 90 in c["final"] else ' class="open"'
        rows.append(
            f"<tr{cls}><td>{_e(c['cohort'])}</td><td class='n'>{_n(c['entered'])}</td>"
            + "".join(f"<td class='n'>{_n(r[h])}</td>" for h in ("30", "60", "90"))
            + f"<td class='n'>{_pct(c['rate']['90'])}</td><td class='n'>{median}</td>"
            f"<td class='n'>{_e(c['revenue'])}</td></tr>"
        )
    return (
        "<table><thead><tr><th>Cohort</th><th class='n'>Entered</th><th class='n'>In 30d</th>"
        "<th class='n'>In 60d</th><th class='n'>In 90d</th><th class='n'>Rate 90d</th>"
        f"<th class='n'>Median days</th><th class='n'>Revenue ({_e(body['currency'])})</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def winback_section(bodies: Sequence[Mapping[str, Any]]) -> str:
    """The section's HTML (empty when no scheme marks a segment lapsed)."""
    if not bodies:
        return ""
    parts = [
        f'<section id="winback" class="wb"><style>{_CSS}</style><h2>Win-back</h2>'
        "<p>Of the customers who entered a lapsed segment in each month, how many came back "
        "(a purchase moving them out) within 30, 60 and 90 days, against the text's "
        "「每4个中会有1个可能被挽回」 (dashed). Faded: the cohort's 90 days are not over. "
        "Revenue: their net spend within 90 days of their return.</p>"
        '<p class="key">'
        + "".join(
            f'<span style="background:{c}"></span>within {h} days' for h, c in _SHADES.items()
        )
        + "</p>"
    ]
    for body in bodies:
        lapsed = ", ".join(body["lapsed"])
        parts.append(f"<h3>{_e(body['scheme'])} <small>lapsed: {_e(lapsed)}</small></h3>")
        if not body["cohorts"]:
            parts.append('<p class="empty">No customer entered a lapsed segment.</p>')
            continue
        parts.append(_chart(body) + _table(body))
        if body["unattributed_returns"]:
            parts.append(
                f"<p>{_n(body['unattributed_returns'])} return(s) had their entry beyond "
                "the kept history (RFM_HISTORY_SIZE) and count in no cohort.</p>"
            )
    parts.append("</section>")
    return "".join(parts)
