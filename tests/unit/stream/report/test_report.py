"""The segment-flow report: sizes reconstruction, Sankey contents, escaping, and a real
render in headless Chromium (Debian's ``chromium``; scripts/bootstrap installs it).

The browser tests fail, never skip, when chromium is missing: the report's promise is
that it renders, and only a browser can say so.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from stream.report.page import SizeSeries, render_report, sizes_over_time

H = 3_600_000
BASE = 1_795_000_000_000 - 1_795_000_000_000 % H  # an hour boundary in Nov 2026
EVIL = "<script>alert(1)</script> & 'q\""

LABELS = {
    "rfm8": {
        "high_value": "高价值客户",
        "develop": "深耕客户",
        "dormant": "休眠客户",
        "churning": "流失客户",
    },
    "evil": {"bad": EVIL},
}
SINCE, UNTIL = BASE + 30 * 60_000, BASE + 3 * H  # since not on a bucket boundary
FLOWS = {
    # bucket 0 (overlaps the range although it starts before since)
    ("rfm8", "none", "high_value", BASE): 40,
    ("rfm8", "high_value", "dormant", BASE): 12,
    # bucket 1
    ("rfm8", "high_value", "dormant", BASE + H): 8,
    ("rfm8", "develop", "churning", BASE + H): 5,
    ("rfm8", "none", "develop", BASE + H): 30,
    # bucket 2
    ("rfm8", "dormant", "none", BASE + 2 * H): 3,
    ("rfm8", "dormant", "high_value", BASE + 2 * H): 6,
    ("rfm8", "churning", "develop", BASE + 2 * H): 0,  # zero: no link
    # outside the range: ignored
    ("rfm8", "develop", "dormant", BASE - H): 1000,
    ("rfm8", "develop", "dormant", UNTIL): 1000,
    ("evil", "none", "bad", BASE + H): 2,
}
SIZES_NOW = {
    ("rfm8", "high_value"): 100,
    ("rfm8", "develop"): 60,
    ("rfm8", "dormant"): 25,
    ("rfm8", "churning"): 9,
    ("evil", "bad"): 2,
}
# hand-aggregated over the range
EXPECTED_LINKS = {
    ("rfm8", "none", "high_value", 40),
    ("rfm8", "high_value", "dormant", 20),
    ("rfm8", "develop", "churning", 5),
    ("rfm8", "none", "develop", 30),
    ("rfm8", "dormant", "none", 3),
    ("rfm8", "dormant", "high_value", 6),
    ("evil", "none", "bad", 2),
}
EXPECTED_NODES = {
    ("rfm8", "from", "none", 70),
    ("rfm8", "from", "high_value", 20),
    ("rfm8", "from", "develop", 5),
    ("rfm8", "from", "dormant", 9),
    ("rfm8", "to", "high_value", 46),
    ("rfm8", "to", "develop", 30),
    ("rfm8", "to", "dormant", 20),
    ("rfm8", "to", "churning", 5),
    ("rfm8", "to", "none", 3),
    ("evil", "from", "none", 2),
    ("evil", "to", "bad", 2),
}
GENERATED = BASE + 3 * H + 61_000


def _render() -> str:
    return render_report(
        title="Segment flows · 客户分群流向",
        since_ms=SINCE,
        until_ms=UNTIL,
        bucket_ms=H,
        flows=FLOWS,
        sizes_now=SIZES_NOW,
        labels=LABELS,
        generated_at_ms=GENERATED,
    )


class _Elements(HTMLParser):
    """Collects the Sankey nodes and links (attributes plus the text inside them)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.nodes: list[dict[str, str]] = []
        self.links: list[dict[str, str]] = []
        self.pre: dict[str, str] = {}
        self._open: list[tuple[str, dict[str, str]]] = []  # (tag, element being collected)
        self._text: dict[int, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        cls = a.get("class", "").split()
        if tag == "g" and "node" in cls:
            self.nodes.append(a)
            self._open.append((tag, a))
        elif tag == "path" and "link" in cls:
            self.links.append(a)
            self._open.append((tag, a))
        elif tag == "pre":
            self._open.append((tag, self.pre))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for _, el in self._open:
            el["text"] = el.get("text", "") + data


def _parse(doc: str) -> _Elements:
    p = _Elements()
    p.feed(doc)
    p.close()
    return p


def _node_set(p: _Elements) -> set[tuple[str, str, str, int]]:
    return {
        (n["data-scheme"], n["data-side"], n["data-key"], int(n["data-count"])) for n in p.nodes
    }


def _link_set(p: _Elements) -> set[tuple[str, str, str, int]]:
    return {(n["data-scheme"], n["data-from"], n["data-to"], int(n["data-count"])) for n in p.links}


# ---------------------------------------------------------------------------- pure


def test_sizes_over_time_hand_computed() -> None:
    flows = {
        ("s", "a", "b", 10 * H): 3,
        ("s", "none", "a", 11 * H): 5,
        ("s", "b", "none", 12 * H): 2,
        ("s", "a", "b", 12 * H): 1,
        ("s", "a", "b", 9 * H): 100,  # before the range
        ("s", "a", "b", 13 * H): 100,  # at until: after sizes_now
        ("t", "none", "x", 11 * H): 4,
    }
    sizes_now = {("s", "a"): 10, ("s", "b"): 7, ("s", "c"): 4, ("t", "x"): 4}
    got = sizes_over_time(
        since_ms=10 * H + 1_800_000, until_ms=13 * H, bucket_ms=H, flows=flows, sizes_now=sizes_now
    )
    times = (10 * H, 11 * H, 12 * H, 13 * H)
    # by hand, backwards from 13h:  a: 10 -(-1)=11 -(+5)=6 -(-3)=9
    #                               b:  7 -(+1-2)=8 -0=8 -(+3)=5;  c: untouched;  x: 4 -0 -4=0 -0
    assert got == {
        "s": SizeSeries(times, {"a": (9, 6, 11, 10), "b": (5, 8, 8, 7), "c": (4, 4, 4, 4)}),
        "t": SizeSeries(times, {"x": (0, 0, 4, 4)}),
    }
    # customers are conserved: total change = new - left
    assert sum(v[-1] - v[0] for v in got["s"].sizes.values()) == 5 - 2


def test_sizes_over_time_unaligned_until_and_bad_ranges() -> None:
    got = sizes_over_time(
        since_ms=0,
        until_ms=H + 5,
        bucket_ms=H,
        flows={("s", "none", "a", H): 2},
        sizes_now={("s", "a"): 2},
    )
    assert got["s"] == SizeSeries((0, H, H + 5), {"a": (0, 0, 2)})
    with pytest.raises(ValueError, match="until_ms"):
        sizes_over_time(since_ms=5, until_ms=5, bucket_ms=H, flows={}, sizes_now={})
    with pytest.raises(ValueError, match="bucket_ms"):
        sizes_over_time(since_ms=0, until_ms=5, bucket_ms=0, flows={}, sizes_now={})


def test_sankey_has_exactly_the_expected_nodes_and_links() -> None:
    doc = _render()
    p = _parse(doc)
    assert _node_set(p) == EXPECTED_NODES
    assert len(p.nodes) == len(EXPECTED_NODES)
    assert _link_set(p) == EXPECTED_LINKS
    assert len(p.links) == len(EXPECTED_LINKS)

    titles = {(a["data-from"], a["data-to"]): a["text"] for a in p.links}
    assert titles["high_value", "dormant"] == "高价值客户 (high_value) → 休眠客户 (dormant): 20"
    assert titles["none", "high_value"] == "无 (new) → 高价值客户 (high_value): 40"
    assert titles["dormant", "none"] == "休眠客户 (dormant) → 无 (left): 3"
    node_text = {(n["data-scheme"], n["data-side"], n["data-key"]): n["text"] for n in p.nodes}
    assert "高价值客户" in node_text["rfm8", "to", "high_value"]
    assert "high_value · 46" in node_text["rfm8", "to", "high_value"]
    assert "(new) · 70" in node_text["rfm8", "from", "none"]
    assert "无" in node_text["rfm8", "from", "none"]
    assert "(left) · 3" in node_text["rfm8", "to", "none"]


def _band_widths(p: _Elements) -> dict[tuple[str, str], float]:
    """Width of each link band where it leaves its source (M x,y0 ... x,y1 Z)."""
    out = {}
    for a in p.links:
        nums = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", a["d"])]
        out[a["data-from"], a["data-to"]] = nums[-1] - nums[1]
    return out


def test_link_widths_are_proportional_to_counts() -> None:
    p = _parse(_render())
    w = _band_widths(p)
    per_unit = w["none", "high_value"] / 40
    for (frm, to), n in [(("high_value", "dormant"), 20), (("none", "develop"), 30)]:
        assert w[frm, to] == pytest.approx(n * per_unit, abs=0.2)


def test_labels_are_escaped() -> None:
    doc = _render()
    assert "<script>alert" not in doc
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#x27;q&quot;" in doc
    p = _parse(doc)
    bad = next(n for n in p.nodes if n["data-key"] == "bad")
    assert EVIL in bad["text"]  # round-trips to the original text
    # CJK is written as is (UTF-8), not as character references
    assert "高价值客户" in doc
    assert doc.count("<script") == doc.count("</script>") == 1 + len(LABELS)  # page JS + data


def test_output_is_deterministic_and_offline() -> None:
    doc = _render()
    assert doc == _render()
    assert "2026-11-18T14:01:01Z" in doc  # generated_at, UTC ISO
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", doc)
    assert "@import" not in doc
    assert "url(" not in doc
    assert "No transitions in this range." not in doc


def test_scheme_without_transitions_and_default_labels() -> None:
    doc = render_report(
        title="t",
        since_ms=0,
        until_ms=2 * H,
        bucket_ms=H,
        flows={("s", "none", "unlabelled", 0): 1},
        sizes_now={("quiet", "a"): 3, ("s", "unlabelled"): 1},
        labels={"quiet": {"a": "甲"}},
        generated_at_ms=0,
    )
    p = _parse(doc)
    assert _link_set(p) == {("s", "none", "unlabelled", 1)}
    assert "No transitions in this range." in doc
    # schemes in labels order first, then the rest
    assert doc.index('data-scheme="quiet"') < doc.index('data-scheme="s"')


# ---------------------------------------------------------------------------- browser

# Runs after the page's own script: records what the browser laid out.
PROBE = """<script>
(function(){
  var out={errors:window.__errors,nodes:[],links:[]};
  document.querySelectorAll("g.node").forEach(function(g){
    var b=g.querySelector("rect").getBBox();
    out.nodes.push({key:g.dataset.scheme+"/"+g.dataset.side+"/"+g.dataset.key,h:b.height,
                    w:g.getBoundingClientRect().width});
  });
  document.querySelectorAll("path.link").forEach(function(p){
    var b=p.getBBox();
    out.links.push({key:p.dataset.scheme+"/"+p.dataset.from+"/"+p.dataset.to,
                    n:+p.dataset.count,w:b.width,h:b.height});
  });
  var pre=document.createElement("pre");pre.id="probe";pre.textContent=JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""
ERRORS = (
    "<script>window.__errors=[];window.addEventListener('error',"
    "function(e){window.__errors.push(String(e.message))});</script>"
)


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "chromium not found on PATH: the report must be checked in a real browser. "
            "Install Debian's chromium (bash scripts/bootstrap does: "
            "apt-get install --no-install-recommends chromium)"
        )
    return path


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        _chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


def test_renders_in_headless_chromium(tmp_path: Path) -> None:
    doc = _render()
    page = tmp_path / "report.html"
    page.write_text(
        doc.replace("<head>", "<head>" + ERRORS, 1).replace("</body>", PROBE + "</body>", 1),
        encoding="utf-8",
    )
    started = time.monotonic()
    dom = _run_chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    took = time.monotonic() - started
    p = _parse(dom)
    assert _node_set(p) == EXPECTED_NODES, "Sankey nodes in the browser's DOM"
    assert _link_set(p) == EXPECTED_LINKS, "Sankey links in the browser's DOM"
    titles = {(a["data-from"], a["data-to"]): a["text"] for a in p.links}
    assert titles["high_value", "dormant"] == "高价值客户 (high_value) → 休眠客户 (dormant): 20"

    probe = json.loads(p.pre["text"])
    assert probe["errors"] == [], "the page's script raised"
    assert len(probe["nodes"]) == len(EXPECTED_NODES)
    assert all(n["h"] > 0 and n["w"] > 0 for n in probe["nodes"]), "every node laid out"
    links = {ln["key"]: ln for ln in probe["links"]}
    assert len(links) == len(EXPECTED_LINKS)
    assert all(ln["w"] > 100 and ln["h"] > 0 for ln in links.values()), "every link drawn"
    # the browser's node heights keep the proportions of the counts (70 vs 46, same scale)
    h = {n["key"]: n["h"] for n in probe["nodes"]}
    assert h["rfm8/from/none"] / h["rfm8/to/high_value"] == pytest.approx(70 / 46, rel=0.01)
    print(f"chromium --dump-dom took {took:.1f}s")


def _png_info(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, decompressed scanlines) of a PNG: enough to tell it has content."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8, depth
            bpp = {2: 3, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + width * bpp), "scanlines do not match IHDR"
    return width, height, raw


def test_screenshot_is_not_blank(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(_render(), encoding="utf-8")
    shot = tmp_path / "report.png"
    _run_chromium(tmp_path, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri())
    data = shot.read_bytes()
    assert len(data) > 10_000, f"screenshot is only {len(data)} bytes"
    width, height, raw = _png_info(data)
    assert (width, height) == (1200, 1600)
    # A single-colour image filters to a handful of byte values (the colour, zeros, the
    # filter types); text, anti-aliased curves and a palette give nearly all 256.
    assert len(set(raw)) > 64, "screenshot looks blank"
