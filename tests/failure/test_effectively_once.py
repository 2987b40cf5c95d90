"""Duplicates across partitions and refunds, on a real broker and redis-server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from stream.apply.routing import partitioner
from tests.support.harness import Cluster, purchase

pytestmark = pytest.mark.integration


async def test_a_resend_on_another_partition_is_forwarded_and_applied_once(
    cluster: Cluster,
) -> None:
    settings = await cluster.ensure_topics()
    cluster.start_worker()
    now = datetime.now(UTC)
    home = partitioner("murmur2")(b"alice", settings.partitions)
    other = (home + 1) % settings.partitions
    ev = purchase("alice", 1, now, "30")
    first = await cluster.produce([ev])
    assert first[0][0] == home
    # the POS resends it through a path that lands elsewhere (unkeyed, another partition)
    await cluster.produce([ev], key=None, partition=other)
    await cluster.produce([purchase("alice", 2, now, "40")], key=None, partition=other)

    got = await cluster.transitions(lambda ts: len(ts) >= 2)
    store = cluster.store()
    try:
        for _ in range(100):
            state = await store.get_state(home, "alice")
            if state and state.frequency == 2:
                break
            await asyncio.sleep(0.1)
        assert state is not None
        assert (state.frequency, state.monetary) == (2, 70 * 10_000)
        assert await store.get_state(other, "alice") is None  # never split
    finally:
        await store.close()
    assert [(t["from_segment"], t["to_segment"], t["cause"]) for t in got] == [
        ("none", "new", "first_purchase"),
        ("new", "potential", "purchase"),
    ]


async def test_refunds_retract_and_an_early_refund_waits_for_its_purchase(
    cluster: Cluster,
) -> None:
    knobs = {"frequency_cut": "2", "monetary_cut": "100"}
    settings = await cluster.ensure_topics(**knobs)
    cluster.start_worker(**knobs)
    now = datetime.now(UTC) - timedelta(minutes=5)
    refund_early = {
        **purchase("bob", 9, now, "50"),
        "kind": "refund",
        "event_id": "bob-r1",
        "refund_of": "bob-o2",
    }
    await cluster.produce(
        [
            purchase("bob", 1, now, "80"),
            refund_early,  # before its purchase: held
            purchase("bob", 2, now + timedelta(seconds=1), "80"),  # high_value, then -50
            {**refund_early, "event_id": "bob-r2", "refund_of": "bob-o1", "amount": "80"},
            {**refund_early, "event_id": "bob-r3", "refund_of": "bob-o2", "amount": "999"},
        ]
    )
    got = await cluster.transitions(lambda ts: any(t["cause"] == "refund" for t in ts))
    letters = await cluster.read(settings.dlq_topic, lambda xs: len(xs) >= 1)
    assert [(d["error_class"]) for d in letters] == ["RefundExceedsOrder"]
    assert [(t["from_segment"], t["to_segment"], t["cause"]) for t in got] == [
        ("none", "new", "first_purchase"),
        ("new", "high_value", "purchase"),  # o2 bought, and the held -50 applied with it
        ("high_value", "new", "refund"),  # o1 fully refunded: frequency and money drop
    ]
    store = cluster.store()
    try:
        home = partitioner("murmur2")(b"bob", settings.partitions)
        state = await store.get_state(home, "bob")
    finally:
        await store.close()
    assert state is not None
    # o1 fully refunded (frequency 1), o2: 80 - 50 = 30 left
    assert (state.frequency, state.monetary, state.held) == (1, 30 * 10_000, [])
