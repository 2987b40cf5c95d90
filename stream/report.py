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

import html
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from segments.model import NONE

__all__ = ["SizeSeries", "render_report", "sizes_over_time"]

FlowKey = tuple[str, str, str, int]  # (scheme, from_key, to_key, bucket_start_ms)

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


# ---------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class SizeSeries:
    """Sizes of one scheme's segments at ``times_ms``: each bucket start, then ``until_ms``.

    ``sizes[key][i]`` is the number of customers in ``key`` at ``times_ms[i]``; the last
    entry equals ``sizes_now``. Values are exact reconstructions and may be negative if
    the inputs disagree (the chart clamps them at zero).
    """

    times_ms: tuple[int, ...]
    sizes: dict[str, tuple[int, ...]]


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
    if bucket_ms == 86_400_000:
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
    mag = 10 ** (len(str(int(raw))) - 1)
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

_CSS = """
:root{--ink:#1f2430;--muted:#69707d;--faint:#e8eaee;--bg:#fbfbfc;--card:#fff;--accent:#4e79a7}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;color:var(--ink);font:15px/1.55 system-ui,-apple-system,"Segoe UI",
"Noto Sans CJK SC","Noto Sans SC","PingFang SC","Hiragino Sans GB","Microsoft YaHei",
"Source Han Sans SC",sans-serif;-webkit-font-smoothing:antialiased;
font-variant-numeric:tabular-nums}
main{max-width:1080px;margin:0 auto;padding:40px 28px 64px}
header h1{font-size:28px;line-height:1.25;margin:0 0 6px;font-weight:650;letter-spacing:-.01em}
header p{margin:0;color:var(--muted)}
nav{margin:18px 0 0;display:flex;flex-wrap:wrap;gap:8px}
nav a{font-size:13px;color:var(--ink);text-decoration:none;border:1px solid var(--faint);
background:var(--card);padding:3px 12px;border-radius:999px}
nav a:hover{border-color:var(--accent)}
section{background:var(--card);border:1px solid var(--faint);border-radius:14px;
padding:26px 28px 28px;margin:28px 0 0;box-shadow:0 1px 2px rgba(20,30,50,.04)}
h2{font-size:20px;margin:0;font-weight:650}
h3{font-size:13px;margin:26px 0 10px;font-weight:600;color:var(--muted);
text-transform:uppercase;letter-spacing:.06em}
.stats{display:flex;flex-wrap:wrap;gap:10px 28px;margin:12px 0 4px;padding:0;list-style:none}
.stats li{color:var(--muted);font-size:13px}
.stats b{display:block;color:var(--ink);font-size:20px;font-weight:600}
svg{display:block;width:100%;height:auto;overflow:visible}
.sankey .link{fill-opacity:.32;transition:fill-opacity .12s}
.sankey .link:hover{fill-opacity:.72}
.sankey .nl{font-size:13px;font-weight:600;fill:var(--ink)}
.sankey .nk{font-size:11.5px;fill:var(--muted)}
.sankey .nn{fill:var(--ink);font-weight:600}
.sankey .colhead{font-size:11px;fill:var(--muted);text-transform:uppercase;letter-spacing:.08em}
.empty{color:var(--muted);margin:18px 0 0;padding:18px;border:1px dashed var(--faint);
border-radius:10px;text-align:center}
.row{display:grid;grid-template-columns:minmax(0,11fr) minmax(0,9fr);gap:32px;align-items:start}
@media (max-width:880px){.row{grid-template-columns:minmax(0,1fr)}}
.chart{position:relative}
.sizes .area{fill-opacity:.82;stroke:#fff;stroke-width:.6}
.sizes .area:hover{fill-opacity:1}
.sizes .grid{stroke:var(--faint);stroke-width:1}
.sizes .axis,.sizes .xt{stroke:#c5cad3}
.sizes .rule{stroke:var(--ink);stroke-width:1;stroke-dasharray:3 3}
.sizes .tick{font-size:11px;fill:var(--muted)}
.tip{position:absolute;top:8px;pointer-events:none;background:rgba(255,255,255,.96);
border:1px solid var(--faint);border-radius:8px;padding:8px 10px;font-size:12px;
box-shadow:0 4px 14px rgba(20,30,50,.10);min-width:150px}
.tip div{display:flex;gap:8px;align-items:center;justify-content:space-between}
.tip .tt{font-weight:600;margin-bottom:4px}
.legend{list-style:none;margin:12px 0 0;padding:0;display:grid;
grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:4px 18px;font-size:13px}
.legend li{display:flex;align-items:center;gap:6px;min-width:0}
.sw{width:10px;height:10px;border-radius:3px;flex:none;display:inline-block}
.lk{color:var(--muted);font-size:11.5px}
.lv{margin-left:auto;font-weight:600}
table{width:100%;border-collapse:collapse;font-size:13px}
th{font-weight:600;color:var(--muted);text-align:left;font-size:11.5px;
text-transform:uppercase;letter-spacing:.05em;padding:0 6px 6px;
border-bottom:1px solid var(--faint)}
td{padding:6px;border-bottom:1px solid var(--faint);vertical-align:middle}
td .lab,td .k{white-space:nowrap}
td.n,th.n{text-align:right;white-space:nowrap}
td .k{color:var(--muted);font-size:11.5px;margin-left:4px}
footer{color:var(--muted);font-size:12px;margin:28px 0 0;text-align:center}
"""

_JS = """
(function(){
  document.querySelectorAll(".chart").forEach(function(box){
    var svg=box.querySelector("svg"),tip=box.querySelector(".tip"),rule=svg.querySelector(".rule");
    var d=JSON.parse(box.querySelector("script[type='application/json']").textContent);
    var vb=svg.viewBox.baseVal;
    function hide(){tip.hidden=true;rule.setAttribute("visibility","hidden");}
    svg.addEventListener("mouseleave",hide);
    svg.addEventListener("mousemove",function(ev){
      var r=svg.getBoundingClientRect(),f=((ev.clientX-r.left)/r.width-d.l)/d.w;
      if(f<-0.02||f>1.02){hide();return;}
      var i=0;for(var j=1;j<d.x.length;j++){if(Math.abs(d.x[j]-f)<Math.abs(d.x[i]-f))i=j;}
      var x=(d.l+d.x[i]*d.w)*vb.width;
      rule.setAttribute("x1",x);rule.setAttribute("x2",x);rule.setAttribute("visibility","visible");
      tip.textContent="";
      var h=document.createElement("div");h.className="tt";h.textContent=d.t[i]+" UTC";
      tip.appendChild(h);
      d.s.forEach(function(s){
        var row=document.createElement("div"),a=document.createElement("span"),
            b=document.createElement("b"),sw=document.createElement("span");
        sw.className="sw";sw.style.background=s.color;a.appendChild(sw);
        a.appendChild(document.createTextNode(" "+s.label));
        b.textContent=s.v[i].toLocaleString("en-US");
        row.appendChild(a);row.appendChild(b);tip.appendChild(row);
      });
      tip.hidden=false;
      var px=(x/vb.width)*r.width,w=tip.offsetWidth;
      tip.style.left=(px+12+w>r.width?px-12-w:px+12)+"px";
    });
  });
})();
"""


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
) -> str:
    """The whole report as one HTML document (str). See the module docstring."""
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
    for scheme, keys in labels.items():
        seen.setdefault(scheme, set()).update(keys)
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
