"""The report's value views (stream.report.worth): the share chart, the table and the
Pareto bars, drawn to scale from ``GET /segments/value``'s document, escaped, and in a
real browser's DOM."""

from __future__ import annotations

import re
import shutil
import subprocess
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import load_settings
from segments.model import CustomerState
from segments.rules import build_engine
from segments.worth import recount
from state.tallies import WorthSums
from stream.api.worth import value_view
from stream.report.page import render_report
from tests.support.harness import RULES

H = 3_600_000
BASE = 1_795_000_000_000 - 1_795_000_000_000 % H
UNIT = 10_000
EVIL = "<script>alert(1)</script>"


def _values() -> dict[str, Any]:
    engine = build_engine(load_settings(rules=str(RULES / "fixed.toml")))
    states = [CustomerState("h", 4, 3000 * UNIT, segments={"rfm8": "high_value"})] + [
        CustomerState(f"n{i}", 1, 100 * UNIT, segments={"rfm8": "new"}) for i in range(9)
    ]
    r = recount(states)
    body = value_view(
        engine.schemes,
        {"rfm8": {"high_value": 1, "new": 9}},
        WorthSums(r.revenue, r.orders, r.counts, r.sums),
        "CNY",
    )
    body["schemes"]["rfm8"]["segments"][0]["label"] = EVIL  # labels come from rules files
    return body


def _render() -> str:
    values = _values()
    labels = {
        s: {row["segment"]: row["label"] for row in v["segments"]}
        for s, v in values["schemes"].items()
    }
    return render_report(
        title="worth",
        since_ms=BASE,
        until_ms=BASE + 2 * H,
        bucket_ms=H,
        flows={("rfm8", "none", "new", BASE): 9},
        sizes_now={("rfm8", "new"): 9, ("rfm8", "high_value"): 1},
        labels=labels,
        generated_at_ms=BASE,
        values=values,
    )


class _Bars(HTMLParser):
    """The rects of each value chart, by the svg's class."""

    def __init__(self) -> None:
        super().__init__()
        self.svg: str | None = None
        self.rects: dict[str, list[dict[str, str]]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "svg" and a.get("class") in ("worth", "pareto"):
            self.svg = a["class"]
        elif tag == "rect" and self.svg:
            self.rects.setdefault(self.svg, []).append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.svg = None


def test_bars_are_drawn_to_the_shares_and_labels_escaped() -> None:
    doc = _render()
    assert EVIL not in doc and "&lt;script&gt;" in doc
    p = _Bars()
    p.feed(doc)
    worth = [float(r["width"]) for r in p.rects["worth"]]
    # rows in rules order: high_value (1 of 10 customers, 3000 of 3900 revenue) first
    customers, revenue = worth[0], worth[1]
    assert revenue / customers == pytest.approx(float(Fraction(3000, 3900)) / 0.1, rel=1e-3)
    pareto = p.rects["pareto"][1:]  # after the background
    top1_low, top1_range, top20_low, top20_range = (float(r["width"]) for r in pareto)
    # top 1 % of 10: the one big spender, a bucket of their own: exact; top 20 %: them
    # and one of the nine at 100 (a bucket of nine: a range, under 1 % of that 100)
    assert top1_range == 0 < top20_range < 0.01 * top20_low
    assert top20_low / top1_low == pytest.approx(3100 / 3000, rel=1e-3)
    assert "Net revenue (CNY)" in doc and "750.00" in doc  # high_value's AOV: 3000 / 4


def test_the_value_sections_are_in_a_browsers_dom(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium not found on PATH (bash scripts/bootstrap installs it)")
    page = tmp_path / "report.html"
    page.write_text(_render(), encoding="utf-8")
    cmd = [
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--dump-dom",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert re.search(r'<section id="pareto"', dom)
    assert dom.count('<svg class="worth"') == 2  # rfm8 and rfm27
    assert "of revenue from the top 20 %" in dom


def test_clv_columns_and_equity_only_where_value_figures_are_on() -> None:
    assert "Avg CLV" not in _render() and "customer equity" not in _render()
    engine = build_engine(load_settings(rules=str(RULES / "fixed.toml")))
    states = [
        CustomerState("h", 4, 3000 * UNIT, segments={"rfm8": "high_value"}, clv=987_654),
        CustomerState("n", 1, 100 * UNIT, segments={"rfm8": "new"}, clv=12_346),
    ]
    r = recount(states)
    sums = WorthSums(
        r.revenue,
        r.orders,
        r.counts,
        r.sums,
        {**r.clv, ("", ""): r.equity.clv},
        {**r.valued, ("", ""): r.equity.customers},
    )
    values = value_view(engine.schemes, {"rfm8": {"high_value": 1, "new": 1}}, sums, "CNY")
    doc = render_report(
        title="worth",
        since_ms=BASE,
        until_ms=BASE + H,
        bucket_ms=H,
        flows={},
        sizes_now={("rfm8", "new"): 1, ("rfm8", "high_value"): 1},
        labels={"rfm8": {"high_value": "高价值客户", "new": "新客户"}},
        generated_at_ms=BASE,
        values=values,
    )
    assert "Avg CLV" in doc and "Total CLV" in doc and "9876.54" in doc
    assert re.search(r"<b>10000.00</b>customer equity, 客户资产 \(CNY; average CLV 5000.00\)", doc)
