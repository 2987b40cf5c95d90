"""The report's SVG pieces: the Sankey diagram and the sizes-over-time chart, laid out
in Python (no JS), with the constants and text helpers they share. ``stream.report.page``
assembles the page."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.times import DAY_MS
from segments.model import NONE


@dataclass(frozen=True)
class SizeSeries:
    """Sizes of one scheme's segments at ``times_ms``: each bucket start, then ``until_ms``.

    ``sizes[key][i]`` is the number of customers in ``key`` at ``times_ms[i]``; the last
    entry equals ``sizes_now``. Values are exact reconstructions and may be negative if
    the inputs disagree (the chart clamps them at zero).
    """

    times_ms: tuple[int, ...]
    sizes: dict[str, tuple[int, ...]]


NONE_LABEL = "无"
NONE_FROM = "(new)"
NONE_TO = "(left)"
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#86bcb6",
    "#d37295",
    "#a0cbe8",
)
NONE_COLOR = "#a7adb5"
TOP_FLOWS = 10


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _n(value: int) -> str:
    return f"{value:,}"


def _f(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")[:-6] + "Z"


def _day_hour(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _text_width(text: str, size: float) -> float:
    """Rough rendered width: wide (CJK) characters 1em, others 0.6em."""
    return sum(size if ord(c) > 0x2E7F else 0.6 * size for c in text)


def _bucket_name(bucket_ms: int) -> str:
    if bucket_ms == 3_600_000:
        return "hourly"
    if bucket_ms == DAY_MS:
        return "daily"
    return f"{bucket_ms / 60_000:g}-minute"


def _ordered(first: Iterable[str], present: Iterable[str]) -> list[str]:
    """Keys of ``first`` that are present, in order, then the rest sorted; none last."""
    present = set(present)
    head = [k for k in first if k in present and k != NONE]
    tail = sorted(present - set(head) - {NONE})
    return head + tail + ([NONE] if NONE in present else [])


@dataclass(frozen=True)
class _Seg:
    key: str
    label: str
    color: str

    def side_key(self, side: str) -> str:
        if self.key == NONE:
            return NONE_FROM if side == "from" else NONE_TO
        return self.key

    def name(self, side: str) -> str:
        key = self.side_key(side)
        return f"{self.label} {key}" if self.key == NONE else f"{self.label} ({key})"


# ---------------------------------------------------------------------------- sankey

_SK_W = 960
_SK_NODE_W = 14
_SK_PAD = 36  # >= the two label lines, so neighbouring labels never overlap
_SK_TOP = 14


def _sankey(scheme: str, pairs: dict[tuple[str, str], int], segs: dict[str, _Seg]) -> str:
    order = {k: i for i, k in enumerate(segs)}
    left: dict[str, int] = {}
    right: dict[str, int] = {}
    for (frm, to), n in pairs.items():
        left[frm] = left.get(frm, 0) + n
        right[to] = right.get(to, 0) + n
    lkeys = sorted(left, key=order.__getitem__)
    rkeys = sorted(right, key=order.__getitem__)
    total = sum(pairs.values())

    def label_room(keys: list[str], side: str) -> float:
        widths = [
            max(
                _text_width(segs[k].label, 13),
                _text_width(f"{segs[k].side_key(side)} · {_n(v)}", 11.5),
            )
            for k, v in ((k, (left if side == "from" else right)[k]) for k in keys)
        ]
        return max(120.0, max(widths) + 18)

    x_left = label_room(lkeys, "from")
    x_right = _SK_W - label_room(rkeys, "to") - _SK_NODE_W
    nmax = max(len(lkeys), len(rkeys))
    inner = max(300.0, 60.0 * nmax)
    scale = min((inner - _SK_PAD * (len(ks) - 1)) / total for ks in (lkeys, rkeys))
    height = inner + 2 * _SK_TOP

    def place(keys: list[str], values: dict[str, int]) -> dict[str, float]:
        col = sum(values[k] for k in keys) * scale + _SK_PAD * (len(keys) - 1)
        y = _SK_TOP + (inner - col) / 2
        ys = {}
        for k in keys:
            ys[k] = y
            y += values[k] * scale + _SK_PAD
        return ys

    ly = place(lkeys, left)
    ry = place(rkeys, right)

    # link slots: at the source ordered by target, at the target ordered by source
    out_y = dict(ly)
    in_y = dict(ry)
    src_slot: dict[tuple[str, str], float] = {}
    dst_slot: dict[tuple[str, str], float] = {}
    for frm, to in sorted(pairs, key=lambda p: (order[p[0]], order[p[1]])):
        src_slot[frm, to] = out_y[frm]
        out_y[frm] += pairs[frm, to] * scale
    for frm, to in sorted(pairs, key=lambda p: (order[p[1]], order[p[0]])):
        dst_slot[frm, to] = in_y[to]
        in_y[to] += pairs[frm, to] * scale

    x0 = x_left + _SK_NODE_W
    x1 = x_right
    xm = (x0 + x1) / 2
    parts = [
        f'<svg class="sankey" viewBox="0 0 {_SK_W} {_f(height)}" role="img" '
        f'aria-label="{_e(f"Transitions between {scheme} segments")}">'
    ]
    parts.append('<g class="links">')
    for frm, to in sorted(pairs, key=lambda p: (order[p[0]], order[p[1]])):
        n = pairs[frm, to]
        w = n * scale
        grow = max(0.0, 1.0 - w) / 2  # keep hair-thin links visible
        s0, s1 = src_slot[frm, to] - grow, src_slot[frm, to] + w + grow
        t0, t1 = dst_slot[frm, to] - grow, dst_slot[frm, to] + w + grow
        d = (
            f"M{_f(x0)},{_f(s0)}C{_f(xm)},{_f(s0)} {_f(xm)},{_f(t0)} {_f(x1)},{_f(t0)}"
            f"L{_f(x1)},{_f(t1)}C{_f(xm)},{_f(t1)} {_f(xm)},{_f(s1)} {_f(x0)},{_f(s1)}Z"
        )
        a, b = segs[frm], segs[to]
        parts.append(
            f'<path class="link" data-scheme="{_e(scheme)}" data-from="{_e(frm)}" '
            f'data-to="{_e(to)}" data-count="{n}" fill="{a.color}" d="{d}">'
            f"<title>{_e(a.name('from'))} → {_e(b.name('to'))}: {_n(n)}</title></path>"
        )
    parts.append("</g>")
    for side, keys, ys, values in (("from", lkeys, ly, left), ("to", rkeys, ry, right)):
        x = x_left if side == "from" else x_right
        for k in keys:
            seg = segs[k]
            v = values[k]
            h = max(v * scale, 2.0)
            y = ys[k] + (v * scale - h) / 2
            mid = ys[k] + v * scale / 2
            if side == "from":
                tx, anchor = x - 8, "end"
            else:
                tx, anchor = x + _SK_NODE_W + 8, "start"
            verb = "moved out" if side == "from" else "moved in"
            parts.append(
                f'<g class="node" data-scheme="{_e(scheme)}" data-side="{side}" '
                f'data-key="{_e(k)}" data-count="{v}">'
                f"<title>{_e(seg.name(side))}: {_n(v)} {verb}</title>"
                f'<rect x="{_f(x)}" y="{_f(y)}" width="{_SK_NODE_W}" height="{_f(h)}" '
                f'rx="2" fill="{seg.color}"/>'
                f'<text x="{_f(tx)}" y="{_f(mid - 3)}" text-anchor="{anchor}" class="nl">'
                f"{_e(seg.label)}</text>"
                f'<text x="{_f(tx)}" y="{_f(mid + 12)}" text-anchor="{anchor}" class="nk">'
                f'{_e(seg.side_key(side))} · <tspan class="nn">{_n(v)}</tspan></text>'
                "</g>"
            )
    parts.append(
        f'<text class="colhead" x="{_f(x_left + _SK_NODE_W)}" y="10" text-anchor="end">'
        f"from</text>"
        f'<text class="colhead" x="{_f(x_right)}" y="10">to</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------- area chart

_CH_W, _CH_H = 600, 280
_CH_L, _CH_R, _CH_T, _CH_B = 52, 12, 12, 30
_HOUR = 3_600_000
_TICK_STEPS = (
    _HOUR,
    2 * _HOUR,
    3 * _HOUR,
    6 * _HOUR,
    12 * _HOUR,
    24 * _HOUR,
    48 * _HOUR,
    7 * 24 * _HOUR,
    14 * 24 * _HOUR,
    28 * 24 * _HOUR,
)


def _nice_step(top: float, ticks: int = 5) -> int:
    raw = max(top / ticks, 1.0)
    mag: int = 10 ** (len(str(int(raw))) - 1)  # int ** int is Any to mypy; exponent >= 0
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag  # pragma: no cover


def _area_chart(
    scheme: str, sid: str, series: SizeSeries | None, segs: dict[str, _Seg], grid: tuple[int, ...]
) -> str:
    keys = [k for k in segs if k != NONE]
    times = grid if series is None else series.times_ms
    values = {
        k: [max(0, v) for v in (series.sizes.get(k) if series else None) or [0] * len(times)]
        for k in keys
    }
    totals = [sum(values[k][i] for k in keys) for i in range(len(times))]
    step = _nice_step(max(totals, default=0) or 1)
    ymax = max(step, -(-max(totals, default=0) // step) * step)
    t0, t1 = times[0], times[-1]
    pw, ph = _CH_W - _CH_L - _CH_R, _CH_H - _CH_T - _CH_B

    def sx(t: int) -> float:
        return _CH_L + (t - t0) / (t1 - t0) * pw

    def sy(v: float) -> float:
        return _CH_T + ph - v / ymax * ph

    parts = [
        f'<svg class="sizes" id="{sid}-sizes" data-scheme="{_e(scheme)}" '
        f'viewBox="0 0 {_CH_W} {_CH_H}" role="img" '
        f'aria-label="{_e(f"Segment sizes over time, {scheme}")}">'
    ]
    # y grid
    for v in range(0, ymax + 1, step):
        y = sy(v)
        parts.append(
            f'<line class="grid" x1="{_CH_L}" x2="{_CH_W - _CH_R}" y1="{_f(y)}" y2="{_f(y)}"/>'
            f'<text class="tick" x="{_CH_L - 6}" y="{_f(y + 4)}" text-anchor="end">{_n(v)}</text>'
        )
    # x ticks: the smallest calendar-aligned step giving at most 7 ticks
    tstep = next((s for s in _TICK_STEPS if (t1 - t0) / s <= 7), _TICK_STEPS[-1])
    fmt = "%m-%d" if tstep >= 24 * _HOUR else "%m-%d %H:%M"
    t = t0 - t0 % tstep + (tstep if t0 % tstep else 0)
    while t <= t1:
        x = sx(t)
        label = datetime.fromtimestamp(t / 1000, tz=UTC).strftime(fmt)
        parts.append(
            f'<line class="xt" x1="{_f(x)}" x2="{_f(x)}" y1="{_CH_T + ph}" y2="{_CH_T + ph + 4}"/>'
            f'<text class="tick" x="{_f(x)}" y="{_CH_T + ph + 17}" text-anchor="middle">'
            f"{label}</text>"
        )
        t += tstep
    # stacked areas: the first segment on top, as in the legend
    base = [0] * len(times)
    for k in reversed(keys):
        top = [b + v for b, v in zip(base, values[k], strict=True)]
        if any(values[k]):
            fwd = " ".join(f"{_f(sx(tm))},{_f(sy(v))}" for tm, v in zip(times, top, strict=True))
            back = " ".join(
                f"{_f(sx(tm))},{_f(sy(v))}"
                for tm, v in zip(reversed(times), reversed(base), strict=True)
            )
            seg = segs[k]
            parts.append(
                f'<path class="area" data-key="{_e(k)}" fill="{seg.color}" d="M{fwd} L{back}Z">'
                f"<title>{_e(seg.name('to'))}: {_n(values[k][-1])} now</title></path>"
            )
        base = top
    parts.append(
        f'<line class="axis" x1="{_CH_L}" x2="{_CH_W - _CH_R}" y1="{_CH_T + ph}" '
        f'y2="{_CH_T + ph}"/>'
        f'<line class="rule" x1="0" x2="0" y1="{_CH_T}" y2="{_CH_T + ph}" visibility="hidden"/>'
        f'<rect class="hit" x="{_CH_L}" y="{_CH_T}" width="{pw}" height="{ph}" fill="transparent"/>'
        "</svg>"
    )
    data = {
        "t": [_day_hour(tm) for tm in times],
        "x": [round((sx(tm) - _CH_L) / pw, 5) for tm in times],
        "l": _CH_L / _CH_W,
        "w": pw / _CH_W,
        "s": [
            {"label": segs[k].label, "key": k, "color": segs[k].color, "v": values[k]} for k in keys
        ],
    }
    js = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    js = js.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    legend = "".join(
        f'<li><span class="sw" style="background:{segs[k].color}"></span>'
        f'<span class="ll">{_e(segs[k].label)}</span> <span class="lk">{_e(k)}</span>'
        f'<span class="lv">{_n(values[k][-1])}</span></li>'
        for k in keys
    )
    return (
        f'<div class="chart" data-chart="{sid}">{"".join(parts)}'
        f'<div class="tip" hidden></div>'
        f'<script type="application/json" id="{sid}-data">{js}</script></div>'
        f'<ul class="legend">{legend}</ul>'
    )


# ---------------------------------------------------------------------------- page
