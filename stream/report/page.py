"""The segment-flow report: one self-contained HTML page, viewable offline.

``render_report`` turns transition counts (per scheme, from, to and hourly bucket) and
the current segment sizes into a page with, per scheme, a Sankey diagram of the moves
between segments over the range, the segment sizes over time (a stacked area chart,
reconstructed backwards from the sizes now) and a table of the largest flows. Pure:
no I/O and no clock — the same inputs give the same bytes. Everything is inline (CSS,
SVG and a few lines of JS for the chart read-out); nothing is fetched.

Order: schemes and segments follow the order of ``labels`` (pass the rules file order,
best segment first, so that upward flows are improvements); keys without a label come
after, sorted, and ``none`` (a first ranking on the left, a full refund on the right)
always last.

Range: a transition counts when its bucket overlaps ``[since_ms, until_ms)``, i.e. the
range is widened to whole buckets at the start; buckets at or after ``until_ms`` are
ignored (``sizes_now`` is the state at ``until_ms``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from segments.model import NONE
from stream.report.assets import CSS as _CSS
from stream.report.assets import JS as _JS
from stream.report.svg import (
    NONE_COLOR,
    NONE_LABEL,
    PALETTE,
    TOP_FLOWS,
    SizeSeries,
    _area_chart,
    _bucket_name,
    _day_hour,
    _e,
    _iso,
    _n,
    _ordered,
    _sankey,
    _Seg,
)
from stream.report.winback_view import winback_section

__all__ = ["SizeSeries", "render_report", "sizes_over_time"]

FlowKey = tuple[str, str, str, int]  # (scheme, from_key, to_key, bucket_start_ms)

# ---------------------------------------------------------------------------- sizes


def _bucket_grid(since_ms: int, until_ms: int, bucket_ms: int) -> tuple[int, ...]:
    if bucket_ms <= 0:
        raise ValueError(f"bucket_ms must be positive, got {bucket_ms}")
    if until_ms <= since_ms:
        raise ValueError(f"until_ms ({until_ms}) must be after since_ms ({since_ms})")
    first = since_ms - since_ms % bucket_ms
    return (*range(first, until_ms, bucket_ms), until_ms)


def _in_range(bucket_start_ms: int, grid: tuple[int, ...]) -> bool:
    return grid[0] <= bucket_start_ms < grid[-1]


def sizes_over_time(
    *,
    since_ms: int,
    until_ms: int,
    bucket_ms: int,
    flows: Mapping[FlowKey, int],
    sizes_now: Mapping[tuple[str, str], int],
) -> dict[str, SizeSeries]:
    """Segment sizes at every bucket start of the range, rebuilt backwards from ``sizes_now``.

    Size at the start of bucket b = size at ``until_ms`` - inflow + outflow during
    buckets b, b+1, ... . ``none`` is not a segment (its flows only move customers in
    or out). Schemes and keys are returned sorted.
    """
    grid = _bucket_grid(since_ms, until_ms, bucket_ms)
    nb = len(grid) - 1
    first = grid[0]
    net: dict[tuple[str, str], list[int]] = {}  # (scheme, key) -> net inflow per bucket
    keys: set[tuple[str, str]] = {sk for sk in sizes_now if sk[1] != NONE}
    for (scheme, frm, to, start), n in flows.items():
        if not n or not _in_range(start, grid):
            continue
        b = (start - first) // bucket_ms
        if frm != NONE:
            net.setdefault((scheme, frm), [0] * nb)[b] -= n
            keys.add((scheme, frm))
        if to != NONE:
            net.setdefault((scheme, to), [0] * nb)[b] += n
            keys.add((scheme, to))
    out: dict[str, SizeSeries] = {}
    for scheme, key in sorted(keys):
        size = sizes_now.get((scheme, key), 0)
        values = [size]
        for delta in reversed(net.get((scheme, key), [0] * nb)):
            size -= delta
            values.append(size)
        series = out.setdefault(scheme, SizeSeries(grid, {}))
        series.sizes[key] = tuple(reversed(values))
    return out


# ---------------------------------------------------------------------------- helpers


def _flow_table(pairs: dict[tuple[str, str], int], segs: dict[str, _Seg]) -> str:
    order = {k: i for i, k in enumerate(segs)}
    top = sorted(pairs.items(), key=lambda kv: (-kv[1], order[kv[0][0]], order[kv[0][1]]))
    top = top[:TOP_FLOWS]
    total = sum(pairs.values())
    rows = []
    for (frm, to), n in top:
        a, b = segs[frm], segs[to]
        rows.append(
            "<tr>"
            f'<td><span class="sw" style="background:{a.color}"></span> '
            f'<span class="lab">{_e(a.label)}</span>'
            f'<span class="k">{_e(a.side_key("from"))}</span></td>'
            f'<td><span class="sw" style="background:{b.color}"></span> '
            f'<span class="lab">{_e(b.label)}</span>'
            f'<span class="k">{_e(b.side_key("to"))}</span></td>'
            f'<td class="n">{_n(n)}</td><td class="n">{n / total:.1%}</td>'
            "</tr>"
        )
    return (
        '<table class="flows"><thead><tr><th>From</th><th>To</th><th class="n">Customers</th>'
        f'<th class="n">Share</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def render_report(
    *,
    title: str,
    since_ms: int,
    until_ms: int,
    bucket_ms: int,
    flows: Mapping[FlowKey, int],
    sizes_now: Mapping[tuple[str, str], int],
    labels: Mapping[str, Mapping[str, str]],
    generated_at_ms: int,
    winback: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The whole report as one HTML document (str). See the module docstring.
    ``winback``: the ``GET /winback`` bodies of the schemes marking segments lapsed
    (their section: :mod:`stream.report.winback_view`)."""
    grid = _bucket_grid(since_ms, until_ms, bucket_ms)
    series = sizes_over_time(
        since_ms=since_ms, until_ms=until_ms, bucket_ms=bucket_ms, flows=flows, sizes_now=sizes_now
    )
    pairs: dict[str, dict[tuple[str, str], int]] = {}
    seen: dict[str, set[str]] = {}
    for (scheme, frm, to, start), n in flows.items():
        seen.setdefault(scheme, set()).update((frm, to))
        if n > 0 and _in_range(start, grid):
            p = pairs.setdefault(scheme, {})
            p[frm, to] = p.get((frm, to), 0) + n
    for scheme, key in sizes_now:
        seen.setdefault(scheme, set()).add(key)
    for scheme, scheme_labels in labels.items():
        seen.setdefault(scheme, set()).update(scheme_labels)
    schemes = _ordered(labels, seen)

    sections = []
    nav = []
    for i, scheme in enumerate(schemes):
        sid = f"s{i}"
        names = labels.get(scheme, {})
        keys = _ordered(names, seen[scheme] | {NONE})
        segs = {
            k: _Seg(
                k,
                NONE_LABEL if k == NONE else names.get(k, k),
                NONE_COLOR if k == NONE else PALETTE[j % len(PALETTE)],
            )
            for j, k in enumerate(keys)
        }
        p = pairs.get(scheme, {})
        total = sum(p.values())
        new = sum(n for (frm, _), n in p.items() if frm == NONE)
        left = sum(n for (_, to), n in p.items() if to == NONE)
        moved = total - new - left
        now = sum(n for (s, k), n in sizes_now.items() if s == scheme and k != NONE)
        stats = (
            f"<li><b>{_n(now)}</b>customers now</li>"
            f"<li><b>{_n(total)}</b>transitions</li>"
            f"<li><b>{_n(moved)}</b>between segments</li>"
            f"<li><b>{_n(new)}</b>new</li>"
            f"<li><b>{_n(left)}</b>left</li>"
        )
        if p:
            sankey = _sankey(scheme, p, segs)
            table = _flow_table(p, segs)
        else:
            sankey = '<p class="empty">No transitions in this range.</p>'
            table = '<p class="empty">—</p>'
        sections.append(
            f'<section id="{sid}" data-scheme="{_e(scheme)}">'
            f'<h2>{_e(scheme)}</h2><ul class="stats">{stats}</ul>'
            f"<h3>Flows between segments</h3>{sankey}"
            f'<div class="row"><div><h3>Segment sizes over time</h3>'
            f"{_area_chart(scheme, sid, series.get(scheme), segs, grid)}</div>"
            f"<div><h3>Top flows</h3>{table}</div></div>"
            "</section>"
        )
        nav.append(f'<a href="#{sid}">{_e(scheme)}</a>')

    body = "".join(sections) or '<p class="empty">No schemes.</p>'
    if winback:
        body += winback_section(winback)
        nav.append('<a href="#winback">win-back</a>')
    subtitle = (
        f"{_day_hour(since_ms)} → {_day_hour(until_ms)} UTC · {_bucket_name(bucket_ms)} buckets"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="generator" content="rfm-stream report"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body><main>"
        f"<header><h1>{_e(title)}</h1><p>{_e(subtitle)}</p>"
        f"<nav>{''.join(nav) if len(nav) > 1 else ''}</nav></header>"
        f"{body}"
        f"<footer>Generated {_iso(generated_at_ms)} by rfm-stream · hover a flow or a chart "
        "for the numbers</footer>"
        f"</main><script>{_JS}</script></body></html>\n"
    )
