"""Broker failures: an outage mid-stream.

Each test compares with one uninterrupted run: see ``tests/support/failkit.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.failkit import (
    CLAIM,
    NO_TIMER,
    applied,
    assert_alive,
    assert_effectively_once,
    tail,
    wait_applied_at_least,
    wait_log,
)
from tests.support.fixtures import ProxiedBroker
from tests.support.harness import Cluster, history

pytestmark = pytest.mark.integration


async def test_broker_outage_midstream(
    proxied_broker: ProxiedBroker, redis_url: str, cluster_on: Any
) -> None:
    """The broker becomes unreachable for 5 s while the worker applies events (listening
    socket closed, every live connection reset), then comes back on the same address."""
    proxy = proxied_broker.proxy
    cluster: Cluster = cluster_on(proxy.address, redis_url)
    opts = {**NO_TIMER, "batch_max": "50"}
    settings = await cluster.ensure_topics(**opts)
    parts = settings.partitions
    worker = cluster.start_worker(**opts)
    await wait_log(worker, CLAIM, wait_s=40)

    events = history(customers=200, events=5000, seed=41)
    n = len(events)
    first, rest = events[:3500], events[3500:]
    produced = await cluster.produce(first)
    store = cluster.store()
    try:
        at_cut = await wait_applied_at_least(store, parts, 500, wait_s=60)
        cut = proxy.cut()
        assert at_cut < len(first), "the first part was applied before the outage"
        await asyncio.sleep(5.0)
        assert_alive(worker)
        during = await applied(store, parts)
        held = sum([await store.outbox_size(p) for p in range(parts)])
        proxy.restore()
    finally:
        await store.close()
    assert cut > 0, "the worker had no live connection through the proxy"
    refused = f"Connect call failed ('127.0.0.1', {proxy.port})"
    assert refused in worker.text(), f"the worker never noticed the outage:\n{tail(worker)}"

    produced += await cluster.produce(rest)
    delivered = await assert_effectively_once(cluster, settings, events, produced, [worker])
    assert proxy.stats.accepted > cut, "nobody reconnected after the outage"
    print(
        f"\noutage at {at_cut}/{n} applied ({during} when it ended, {held} transitions "
        f"waiting in the outbox), {cut} connections cut, "
        f"{proxy.stats.accepted} accepted in all; "
        f"{delivered.messages} transition messages, {delivered.duplicates} redelivered"
    )


# ---------------------------------------------------------------------- 5. Redis goes back in time
