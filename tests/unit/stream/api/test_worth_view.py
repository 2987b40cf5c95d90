"""``GET /segments/value``'s document and ``rfm-stream segments``' table, from known sums."""

from __future__ import annotations

from schemas.settings import load_settings
from segments.model import CustomerState
from segments.rules import build_engine
from segments.worth import recount
from state.tallies import WorthSums
from stream.api.worth import value_view
from stream.cli.worth_view import render_values
from tests.support.harness import RULES

UNIT = 10_000


def test_revenue_share_aov_and_pareto_from_the_sums() -> None:
    engine = build_engine(load_settings(rules=str(RULES / "fixed.toml")))
    # 10 customers: 2 high_value (1,000 each over 4 orders), 8 new (10.5 each, 1 order)
    states = [
        CustomerState(f"h{i}", 4, 1000 * UNIT, segments={"rfm8": "high_value"}) for i in range(2)
    ] + [CustomerState(f"n{i}", 1, 105_000, segments={"rfm8": "new"}) for i in range(8)]
    r = recount(states)
    counts = {"rfm8": {"high_value": 2, "new": 8}}
    body = value_view(
        engine.schemes, counts, WorthSums(r.revenue, r.orders, r.counts, r.sums), "CNY"
    )
    rfm8 = body["schemes"]["rfm8"]
    assert rfm8["customers"] == 10 and rfm8["revenue"] == "2084"
    rows = {row["segment"]: row for row in rfm8["segments"]}
    assert rows["high_value"] == {
        "segment": "high_value",
        "label": "高价值客户",
        "customers": 2,
        "revenue": "2000",
        "revenue_share": round(2000 / 2084, 4),
        "orders": 8,
        "average_order_value": "250.00",
        "clv": None,  # value figures off: no CLV kept
        "average_clv": None,
    }
    assert rows["new"]["average_order_value"] == "10.50"
    assert rows["dormant"]["average_order_value"] is None  # no orders: no AOV
    assert body["schemes"]["rfm27"]["revenue"] == "0"
    top1, top20 = body["base"]["pareto"]
    # the top 20 % are the two high_value customers, a bucket of their own: exact
    assert top20["customers"] == 2 and top20["revenue_low"] == top20["revenue_high"] == "2000"
    # the top 1 % is one of the two in that bucket: between its share (the floor) and
    # the pair's sum less the bucket's lower edge
    assert top1["customers"] == 1 and top1["revenue_low"] == "1000"
    assert 1000 < float(top1["revenue_high"]) < 1000 * 1.01

    text = render_values(body)
    assert "rfm8  (10 customers)  revenue 2084 CNY" in text
    assert "top 20 % (2 customers):  96.0 % of revenue" in text
    assert "top 1 % (1 customers):  48.0 % of revenue" in text  # the range rounds to one


def test_clv_per_segment_and_equity_where_value_figures_are_on() -> None:
    engine = build_engine(load_settings(rules=str(RULES / "fixed.toml")))
    states = [
        CustomerState("h0", 4, 1000 * UNIT, segments={"rfm8": "high_value"}, clv=150_001),
        CustomerState("h1", 4, 1000 * UNIT, segments={"rfm8": "high_value"}, clv=49_999),
        CustomerState("n0", 1, 105_000, segments={"rfm8": "new"}, clv=-1_234),
        CustomerState("n1", 1, 105_000, segments={"rfm8": "new"}),  # not evaluated since
    ]
    r = recount(states)
    clv = {**r.clv, ("", ""): r.equity.clv}
    valued = {**r.valued, ("", ""): r.equity.customers}
    sums = WorthSums(r.revenue, r.orders, r.counts, r.sums, clv, valued)
    body = value_view(engine.schemes, {"rfm8": {"high_value": 2, "new": 2}}, sums, "CNY")
    rows = {row["segment"]: row for row in body["schemes"]["rfm8"]["segments"]}
    assert (rows["high_value"]["clv"], rows["high_value"]["average_clv"]) == ("2000.00", "1000.00")
    assert (rows["new"]["clv"], rows["new"]["average_clv"]) == ("-12.34", "-12.34")
    assert (rows["dormant"]["clv"], rows["dormant"]["average_clv"]) == (None, None)
    base = body["base"]
    assert (base["equity"], base["equity_customers"], base["average_clv"]) == (
        "1987.66",
        3,
        "662.55",  # 1987.66 / 3 = 662.5533…
    )
    text = render_values(body)
    assert "avg CLV" in text and "total CLV" in text
    assert "customer equity (客户资产) 1987.66 CNY: 3 customers, average CLV 662.55" in text
    high = next(line for line in text.splitlines() if "high_value" in line)
    assert high.split()[-2:] == ["1000.00", "2000.00"]
