"""The base's model and the value figures on a real broker and redis-server: a
recalibration refits BG/NBD on the customers in Redis, versions it with the cut points,
ranks every customer by P(alive), puts the value figures in the snapshots, and the
early warning then fires by the timer at the instant the closed form gives."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pytest

from segments.cut_points import CutPoints
from segments.model import Columns
from segments.value import MIN_REPEAT_BUYERS, alive_due, alive_permille
from tests.support.harness import ROOT, Cluster, purchase

pytestmark = [pytest.mark.integration]

DAY = 86_400_000
RULES = """
[schemes.rfm8]
axes.r.cuts = ["90d"]
axes.f.cuts = [2]
axes.m.cuts = [1000]
segments.high_value = { label = "高价值客户", cells = ["222"] }
segments.develop = { label = "深耕客户", cells = ["221"] }
segments.dormant = { label = "休眠客户", cells = ["122"] }
segments.lost = { label = "流失客户", cells = ["121"] }
segments.potential = { label = "潜力客户", cells = ["212"] }
segments.new = { label = "新客户", cells = ["211"] }
segments.maintain = { label = "维持客户", cells = ["112"] }
segments.drifting = { label = "放任自流客户", cells = ["111"] }

[schemes.alive]
value_figures = true
axes.p.cuts = [300, 700]
segments.lost = { label = "已流失", cells = ["1"] }
segments.at_risk = { label = "流失风险", cells = ["2"] }
segments.active = { label = "活跃", cells = ["3"] }
"""


def _base(now: datetime) -> list[dict]:
    """120 customers over the last year: weekly to bimonthly buyers, a third of whom
    stopped months ago (the dropout the model has to see)."""
    rng = np.random.default_rng(9)
    events = []
    for i in range(120):
        every = int(rng.choice([7, 14, 30, 60]))
        orders = int(rng.integers(1, 9))
        stopped = int(rng.integers(120, 250)) if i % 3 == 0 else int(rng.integers(0, every))
        last = now - timedelta(days=stopped)
        for k in range(orders):
            at = last - timedelta(days=every * (orders - 1 - k), hours=int(rng.integers(0, 12)))
            events.append(purchase(f"b{i:03d}", k, at, str(int(rng.integers(50, 900)))))
    return events


def _cli(cluster: Cluster, *args: str, **knobs: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RFM_")}
    env.update(cluster.env(**knobs))
    proc = subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.redis_cluster_too  # the sample is SCANned per partition: per node on a cluster
async def test_refit_ranks_by_p_alive_and_the_early_warning_fires_on_time(
    cluster: Cluster, tmp_path: Path
) -> None:
    rules = tmp_path / "alive.toml"
    rules.write_text(RULES, encoding="utf-8")
    knobs = {"rules": str(rules), "clv_margin_rate": "0.3", "clv_years": "3"}
    await cluster.ensure_topics(**knobs)
    cluster.start_worker(**knobs)
    now = datetime.now(UTC)
    base = _base(now)
    await cluster.wait_applied(await cluster.produce(base))

    out = _cli(cluster, "recalibrate", **knobs)
    assert "model of the base" in out, out
    store = cluster.store(**knobs)
    try:
        doc = await store.cuts()
    finally:
        await store.close()
    assert doc is not None
    cuts = CutPoints.from_json(doc)
    assert cuts.model is not None and doc["model"]["unit"] == "day"  # type: ignore[index]  # a JSON object here
    # fitted on all 120 here, or kept from a version the worker made on its own from the
    # first customers if ours found no better (interior) maximum
    assert MIN_REPEAT_BUYERS <= cuts.model.customers <= 120

    # every customer is ranked by the sweep under the new version, with value figures
    def ranked(ts: list[dict]) -> bool:
        return len({t["customer_id"] for t in ts if t["scheme"] == "alive"}) == 120

    got = await cluster.transitions(ranked, wait_s=60)
    alive = [t for t in got if t["scheme"] == "alive"]
    first: dict[str, dict] = {}
    for t in alive:
        first.setdefault(t["customer_id"], t)
    # ranked when a version with a model arrives, or at their purchase if the worker had
    # made one on its own from the customers before them; then moved on by time alone
    assert {t["cause"] for t in first.values()} <= {"recalibration", "first_purchase", "purchase"}
    assert {t["from_segment"] for t in first.values()} == {"none"}
    assert {t["cause"] for t in alive} <= {
        "recalibration",
        "recency_decay",
        "first_purchase",
        "purchase",
    }
    assert all(1 <= t["cut_version"] <= cuts.version for t in alive)
    schema = orjson.loads((ROOT / "schemas" / "json" / "segment-transition.json").read_bytes())
    check = jsonschema.Draft202012Validator(schema)
    for t in alive:
        check.validate({k: v for k, v in t.items() if not k.startswith("_")})
        assert set(t["snapshot"]["value"]) == {"p_alive", "expected_orders_1y", "clv"}
    by_segment = {t["to_segment"] for t in alive}
    assert {"active", "lost"} <= by_segment  # stopped weekly buyers are lost
    assert all("value" not in t["snapshot"] for t in got if t["scheme"] == "rfm8")

    # a weekly buyer whose P(alive) falls below 70 % a few seconds from now
    model = cuts.model
    orders, every = 8, 7 * DAY
    x = np.array([orders - 1.0])
    tx = x * every / DAY
    p = model.params
    k = p.a / (p.b + x - 1)
    big_t = (p.alpha + tx) * ((1 / 0.7 - 1) / k) ** (1 / (p.r + x)) - p.alpha
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    first = now_ms + 4000 - int(big_t[0] * DAY)
    assert first + (orders - 1) * every < now_ms - DAY  # all orders in the past
    late = [
        purchase("late", i, datetime.fromtimestamp((first + i * every) / 1000, UTC), "200")
        for i in range(orders)
    ]
    await cluster.wait_applied(await cluster.produce(late))
    cols = Columns(
        last_ms=np.array([first + (orders - 1) * every]),
        frequency=np.array([orders]),
        monetary=np.array([orders * 200 * 10_000]),
        first_ms=np.array([first]),
    )
    due = int(alive_due(model, (300, 700), cols, cols.last_ms)[0])
    assert alive_permille(model, cols, np.array([due - 1]))[0] >= 700
    assert abs(due - (now_ms + 4000)) < 1000

    def warned(ts: list[dict]) -> bool:
        return any(t["customer_id"] == "late" and t["to_segment"] == "at_risk" for t in ts)

    got = await cluster.transitions(warned, wait_s=30)
    mine = [(t["to_segment"], t["cause"]) for t in got if t["customer_id"] == "late"]
    assert ("active", "first_purchase") in mine or ("active", "purchase") in mine
    warning = next(t for t in got if t["customer_id"] == "late" and t["to_segment"] == "at_risk")
    assert warning["cause"] == "recency_decay"
    effective = datetime.fromisoformat(warning["effective_at"]).timestamp() * 1000
    assert int(effective) == due
    assert warning["snapshot"]["value"]["p_alive"] <= 0.7  # rounded to 4 places

    seen = orjson.loads(_cli(cluster, "inspect", "late", "--json", **knobs))
    assert seen["segments"]["alive"]["segment"] == "at_risk"
    assert seen["segments"]["alive"]["cut_version"] == cuts.version
    assert seen["value"]["p_alive"] <= 0.7
    assert set(seen["value"]) == {"p_alive", "expected_orders_1y", "clv"}


async def test_a_base_no_scheme_ranks_before_the_model_still_gets_one(
    cluster: Cluster, tmp_path: Path
) -> None:
    """With only model-read schemes nobody is in a segment (no tallies) until the first
    fit: the customers are counted another way, or the model would never come."""
    rules = tmp_path / "alive-only.toml"
    rules.write_text(RULES[RULES.index("[schemes.alive]") :], encoding="utf-8")
    knobs = {"rules": str(rules), "decay_timer": "false"}
    await cluster.ensure_topics(**knobs)
    cluster.start_worker(**knobs)
    await cluster.wait_applied(await cluster.produce(_base(datetime.now(UTC))))
    out = _cli(cluster, "recalibrate", **knobs)
    assert "model of the base" in out, out
