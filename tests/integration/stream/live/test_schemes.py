"""Schemes from the rules file on a real broker and redis-server: several at once,
recalibration of quantile cut points, rolling-window expiry, a rules change."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.times import to_ms
from state.connection import connect
from stream.demo.embedded import Service
from tests.support.failkit import wait_outbox_empty
from tests.support.harness import ROOT, RULES, T0, Cluster, expected, purchase, story

pytestmark = [pytest.mark.integration]
# the tests where Redis Cluster changes what happens (slots, SCAN per node, restarts) also
# run on one: marked redis_cluster_too one by one

DAY = 86_400_000

PYRAMID = """
[schemes.pyramid]
axes.m.quantiles = [0.5, 0.8, 0.99]
segments.vip = { label = "A", cells = ["4"] }
segments.major = { label = "B", cells = ["3"] }
segments.ordinary = { label = "C", cells = ["2"] }
segments.small = { label = "D", cells = ["1"] }
"""


def _rules(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


async def test_two_schemes_at_once_each_emit_their_own_transitions(cluster: Cluster) -> None:
    knobs = {"rules": str(RULES / "fixed.toml"), "decay_timer": "false"}
    await cluster.ensure_topics(**knobs)
    cluster.start_worker(**knobs)
    events = [purchase("amy", i, T0 + timedelta(days=i), "600") for i in range(5)]
    events.insert(2, purchase("bob", 9, T0, "50"))
    await cluster.produce(events)
    _, want = expected(events, cluster.settings(**knobs))
    assert {t["scheme"] for t in want} == {"rfm8", "rfm27"}
    got = await cluster.transitions(lambda ts: len(ts) >= len(want))
    assert sorted(story(got).items()) == sorted(story(want).items())
    amy27 = [
        (t["to_segment"], t["cause"])
        for t in got
        if t["scheme"] == "rfm27" and t["customer_id"] == "amy"
    ]
    assert amy27 == [("recent", "first_purchase"), ("champions", "purchase")]  # 5th order
    assert all(t["cut_version"] is None for t in got)  # fixed cut points only


def _recalibrate(cluster: Cluster, **knobs: str) -> int:
    """``rfm-stream recalibrate``: a new cut-point version now; returns its number."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RFM_")}
    env.update(cluster.env(**knobs))
    proc = subprocess.run(
        [sys.executable, "-m", "stream.cli", "recalibrate"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split("version ", 1)[1].split(" ", 1)[0])


async def _pyramid(cluster: Cluster, customers: list[str]) -> dict[str, str]:
    store = cluster.store()
    n = int(cluster.env()["RFM_PARTITIONS"])
    try:
        out = {}
        for c in customers:
            for p in range(n):
                state = await store.get_state(p, c)
                if state is not None:
                    out[c] = state.segments.get("pyramid", "none")
        return out
    finally:
        await store.close()


@pytest.mark.redis_cluster_too
async def test_recalibration_moves_customers_and_carries_the_new_cut_version(
    cluster: Cluster, tmp_path: Path
) -> None:
    knobs = {"rules": _rules(tmp_path, "pyramid.toml", PYRAMID), "quantile_refresh": "1h"}
    await cluster.ensure_topics(**knobs)
    cluster.start_worker(**knobs)
    now = datetime.now(UTC)
    small = [f"s{i:02d}" for i in range(1, 11)]
    first = [purchase(c, i, now, str(100 * i)) for i, c in enumerate(small, 1)]  # 100..1000
    await cluster.wait_applied(await cluster.produce(first))
    v1 = _recalibrate(cluster, **knobs)  # over all ten, whatever the worker did on its own
    want = {c: "small" for c in small[:5]} | {c: "ordinary" for c in small[5:8]}
    want |= {"s09": "major", "s10": "major"}  # 1 % of ten customers: no VIP
    got = await cluster.transitions(
        lambda ts: {t["customer_id"]: t["to_segment"] for t in ts} == want, wait_s=40
    )
    assert {t["customer_id"]: t["to_segment"] for t in got} == want
    # ranked by the sweep after a version (unranked before any), or at the purchase by a
    # version the worker made on its own from the customers it had by then
    assert {t["cause"] for t in got} <= {"recalibration", "first_purchase"}
    assert any(t["cause"] == "recalibration" for t in got)
    assert {t["cut_version"] for t in got} <= set(range(1, v1 + 1))
    assert await _pyramid(cluster, small) == want

    # twenty bigger spenders: the next version moves s10 down to the bottom half
    more = [purchase(f"b{i:02d}", 100 + i, now, str(5000 + 1000 * i)) for i in range(20)]
    await cluster.wait_applied(await cluster.produce(more))
    v2 = _recalibrate(cluster, **knobs)
    assert v2 > v1

    def s10_small(ts: list[dict]) -> bool:
        return any(t["customer_id"] == "s10" and t["to_segment"] == "small" for t in ts)

    got = await cluster.transitions(s10_small, wait_s=40)
    later = [t for t in got if t["customer_id"] == "s10" and (t["cut_version"] or 0) > v1]
    assert later and later[-1]["to_segment"] == "small"
    assert all(t["cause"] == "recalibration" for t in later)
    assert all(v1 < t["cut_version"] <= v2 for t in later)
    assert (await _pyramid(cluster, ["s10"]))["s10"] == "small"


async def test_a_purchase_leaving_the_window_moves_the_customer_with_no_new_event(
    cluster: Cluster, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    day = to_ms(now) // DAY - 2  # purchases two days ago; window ends a few seconds from now
    expiry = to_ms(now) + 6000
    window_ms = expiry - (day + 1) * DAY
    text = f"""
[schemes.active]
axes.f.cuts = [2]
axes.f.window = "{window_ms}ms"
segments.regular = {{ label = "R", cells = ["2"] }}
segments.lapsed = {{ label = "L", cells = ["1"] }}
"""
    knobs = {"rules": _rules(tmp_path, "window.toml", text), "decay_interval": "200ms"}
    await cluster.ensure_topics(**knobs)
    worker = cluster.start_worker(**knobs)
    worker.wait_for_log("claimed partitions")
    bought = datetime.fromtimestamp(day * DAY / 1000 + 3600, UTC)
    await cluster.produce([purchase("w", 1, bought, "10"), purchase("w", 2, bought, "10")])
    got = await cluster.transitions(lambda ts: len(ts) >= 3, wait_s=40)
    assert [(t["from_segment"], t["to_segment"], t["cause"]) for t in got] == [
        ("none", "lapsed", "first_purchase"),
        ("lapsed", "regular", "purchase"),
        ("regular", "lapsed", "recency_decay"),
    ]
    assert to_ms(datetime.fromisoformat(got[-1]["effective_at"])) == expiry
    assert got[-1]["event_id"] is None and got[-1]["snapshot"]["frequency"] == 2


async def _a_rules_change_sweeps_everyone(
    cluster: Cluster, tmp_path: Path, sweep_batch: int = 7
) -> None:
    rfm8 = (RULES / "rfm8.toml").read_text(encoding="utf-8")
    await cluster.ensure_topics()
    first = cluster.start_worker()
    now = datetime.now(UTC)
    spenders = [purchase(f"c{i}", i, now, "500") for i in range(30)]
    produced = await cluster.produce(spenders)
    await cluster.wait_applied(produced)
    before = await cluster.transitions(lambda ts: len(ts) >= 30)
    assert {t["to_segment"] for t in before} == {"new"}
    first.stop()

    cheaper = rfm8.replace('axes.m.cuts = ["1000"]', 'axes.m.cuts = ["400"]')
    assert cheaper != rfm8
    cluster.start_worker(
        rules=_rules(tmp_path, "cheaper.toml", cheaper), sweep_batch=str(sweep_batch)
    )
    got = await cluster.transitions(lambda ts: len(ts) >= 60, wait_s=60)
    changed = [t for t in got if t["cause"] == "rules_change"]
    assert sorted(t["customer_id"] for t in changed) == sorted(f"c{i}" for i in range(30))
    assert {(t["from_segment"], t["to_segment"]) for t in changed} == {("new", "develop")}
    assert len({t["rules_version"] for t in changed} | {before[0]["rules_version"]}) == 2


@pytest.mark.redis_cluster_too
async def test_a_new_rules_file_re_evaluates_every_customer_in_the_background(
    cluster: Cluster, tmp_path: Path
) -> None:
    await _a_rules_change_sweeps_everyone(cluster, tmp_path)


async def test_a_sweep_next_to_a_crowded_redis_scans_in_few_round_trips(
    kafka_bootstrap: str, volatile_redis: Service, cluster_on: Any, tmp_path: Path
) -> None:
    """A Redis that also holds 300k keys of other namespaces (a backfill being built next
    to the live one, say): SCAN walks them all. With a COUNT of ``sweep_batch`` (the
    default 250) each partition's sweep took 1,200 SCAN calls (4,800 here); the COUNT
    now grows while few come back."""
    url = f"redis://{volatile_redis.address}/0"
    client = await connect(url)
    try:
        fill = "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'other:{ns}:c:' .. i, 'x') end"
        await client.eval(fill, 0, 300_000)
        await _a_rules_change_sweeps_everyone(cluster_on(kafka_bootstrap, url), tmp_path, 250)
        scans = (await client.info("commandstats"))["cmdstat_scan"]["calls"]
    finally:
        await client.aclose()
    assert scans < 1000, scans  # 4 partitions x (300k / 4,000 and each step's ramp to it)


async def test_recalibrations_can_be_kept_off_the_live_topic(
    cluster: Cluster, tmp_path: Path
) -> None:
    knobs = {
        "rules": _rules(tmp_path, "pyramid.toml", PYRAMID),
        "quantile_refresh": "1h",
        "publish_recalibrations": "false",
    }
    await cluster.ensure_topics(**knobs)
    cluster.start_worker(**knobs)
    now = datetime.now(UTC)
    who = [f"q{i}" for i in range(1, 11)]
    await cluster.wait_applied(
        await cluster.produce([purchase(c, i, now, str(100 * i)) for i, c in enumerate(who, 1)])
    )
    _recalibrate(cluster, **knobs)
    deadline = asyncio.get_running_loop().time() + 30
    while (ranked := await _pyramid(cluster, who)) and "none" in ranked.values():
        assert asyncio.get_running_loop().time() < deadline, ranked
        await asyncio.sleep(0.2)
    assert ranked["q10"] == "major"  # the state moved ...
    # a published recalibration would have gone through the outbox, committed with the
    # state: once that is drained, the topic holds everything the sweep published
    await wait_outbox_empty(cluster, cluster.settings().partitions, [], wait_s=30)
    got = await cluster.read_to_end(cluster.settings().transitions_topic)
    assert all(t["cause"] != "recalibration" for t in got)  # ... and nothing was published
    assert len(got) < len(who)  # at least the customers ranked by the sweep went unpublished
