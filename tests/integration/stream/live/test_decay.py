"""Time moves segments: decays with no new event, on a real broker and redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.times import to_ms
from tests.support.harness import T0, Cluster, purchase

pytestmark = [pytest.mark.integration]
# the tests where Redis Cluster changes what happens (slots, SCAN per node, restarts) also
# run on one: marked redis_cluster_too one by one


def ms(iso: str) -> int:
    return to_ms(datetime.fromisoformat(iso))


def quiet_after(count: int, seconds: float) -> Callable[[list[dict[str, Any]]], bool]:
    """A read's stop condition: ``seconds`` after the first time it held ``count``
    messages, whatever came since (so a late extra one is read, not cut off)."""
    since: list[float] = []

    def done(ts: list[dict[str, Any]]) -> bool:
        if len(ts) >= count and not since:
            since.append(time.monotonic())
        return bool(since) and time.monotonic() - since[0] >= seconds

    return done


async def test_left_alone_high_value_decays_to_dormant_on_time(cluster: Cluster) -> None:
    await cluster.ensure_topics(recency="3s", decay_interval="200ms")
    worker = cluster.start_worker(
        recency="3s", decay_interval="200ms", frequency_cut="2", monetary_cut="100"
    )
    # measure the timer, not the group join: a worker still joining when the due time
    # passes would apply the purchases after it, and the decay with them
    worker.wait_for_log("claimed partitions")
    now = datetime.now(UTC)
    await cluster.produce([purchase("vip", 1, now, "80"), purchase("vip", 2, now, "80")])

    got = await cluster.transitions(
        lambda ts: any(t["cause"] == "recency_decay" for t in ts), wait_s=30
    )
    assert [(t["from_segment"], t["to_segment"], t["cause"]) for t in got] == [
        ("none", "new", "first_purchase"),
        ("new", "high_value", "purchase"),
        ("high_value", "dormant", "recency_decay"),
    ]
    decay = got[-1]
    due = to_ms(now) + 3000
    assert ms(decay["effective_at"]) == due
    assert decay["from_label"] == "高价值客户" and decay["to_label"] == "休眠客户"
    assert decay["event_id"] is None
    assert decay["snapshot"]["scores"] == {"r": 1, "f": 2, "m": 2}
    # fired within one timer interval of the due time (plus scheduling slack on a busy box)
    late_ms = ms(decay["emitted_at"]) - due
    assert 0 <= late_ms <= 200 + 800, late_ms


async def test_purchase_after_the_due_time_with_no_timer_catches_up_decay_first(
    cluster: Cluster,
) -> None:
    await cluster.ensure_topics()
    cluster.start_worker(decay_timer="false", recency="90d", frequency_cut="2", monetary_cut="100")
    await cluster.produce([purchase("c", 1, T0, "80"), purchase("c", 2, T0, "80")])
    await cluster.produce([purchase("c", 3, T0 + timedelta(days=100), "10")])

    got = await cluster.transitions(lambda ts: len(ts) >= 4)
    assert [(t["from_segment"], t["to_segment"], t["cause"], t["effective_at"]) for t in got] == [
        ("none", "new", "first_purchase", "2026-01-01T00:00:00.000+00:00"),
        ("new", "high_value", "purchase", "2026-01-01T00:00:00.000+00:00"),
        ("high_value", "dormant", "recency_decay", "2026-04-01T00:00:00.000+00:00"),
        ("dormant", "high_value", "purchase", "2026-04-11T00:00:00.000+00:00"),
    ]


@pytest.mark.redis_cluster_too
async def test_restart_between_due_time_and_timer_emits_the_decay_once(cluster: Cluster) -> None:
    knobs = {"recency": "2s", "frequency_cut": "1", "monetary_cut": "1"}
    await cluster.ensure_topics(**knobs)
    first = cluster.start_worker(decay_timer="false", **knobs)
    now = datetime.now(UTC)
    produced = await cluster.produce([purchase("c", 1, now, "5")])
    await cluster.wait_applied(produced)
    first.stop()
    await asyncio.sleep(max(0.0, (to_ms(now) + 2500 - to_ms(datetime.now(UTC))) / 1000))

    cluster.start_worker(**knobs)  # the timer runs here, after the due time has passed
    # then give a double a chance to show up: 2 s more, ten timer intervals
    got = await cluster.transitions(quiet_after(2, 2.0))
    decays = [t for t in got if t["cause"] == "recency_decay"]
    assert len(decays) == 1, got
    assert ms(decays[0]["effective_at"]) == to_ms(now) + 2000
    assert (decays[0]["from_segment"], decays[0]["to_segment"]) == ("high_value", "dormant")
