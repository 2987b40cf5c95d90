"""What each segment is worth survives SIGKILLs (issue #19): after a stream of purchases
and refunds, full ones included, with a worker SIGKILLed mid-stream (once: ``LIVES``)
and another finishing the stream, the worth hashes (revenue and orders per segment, the
Pareto summary) equal a recount from the events, as the segment sizes do
(``failkit.assert_counts_match``): they are committed in the same atomic write as the
states, so a batch killed before its commit moves none of them and a redelivered one is
skipped with its offset. The decay timer is off: decay and sweep commits move worth
between segments through the same commit (``tests/integration/stream/apply/test_worth.py``
checks them against a recount), but no kill lands in one here.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.support.failkit import (
    CLAIM,
    NO_TIMER,
    applied,
    assert_counts_match,
    final_states,
    tail,
    wait_applied_alive,
    wait_applied_at_least,
    wait_log,
)
from tests.support.harness import Cluster, expected
from tests.support.worthkit import assert_worth_matches, history_with_refunds

pytestmark = pytest.mark.integration

LIVES = 1
"""Workers SIGKILLed mid-stream before the last one: each restart waits out the dead
member's session (3 s), most of the test's time; the dozens-of-kills test in
``test_failures.py`` covers many kills, this one the worth hashes."""


async def test_worth_equals_a_recount_from_the_events_after_sigkills(cluster: Cluster) -> None:
    """A worker SIGKILLed while it applies ~600 events in batches of 20, then another."""
    opts = {**NO_TIMER, "batch_max": "20"}
    settings = await cluster.ensure_topics(**opts)
    parts = settings.partitions
    events = history_with_refunds(customers=300, events=500, seed=19)
    n = len(events)
    produced = await cluster.produce(events)
    rng = random.Random(19)
    store = cluster.store()
    try:
        for life in range(LIVES):
            before = await applied(store, parts)
            worker = cluster.start_worker(**opts)
            await wait_log(worker, CLAIM, wait_s=40)
            target = min(n - 1, before + rng.randint(80, 200))
            await wait_applied_at_least(store, parts, target, wait_s=40)
            await asyncio.sleep(rng.uniform(0, 0.02))
            assert worker.proc.poll() is None, f"life {life} died on its own:\n{tail(worker)}"
            worker.kill()  # SIGKILL: mid-stream, no shutdown hook
        assert await applied(store, parts) < n, "stream finished before the kill"
    finally:
        await store.close()

    final = cluster.start_worker(**opts)
    await wait_applied_alive(cluster, produced, [final])
    want, _ = expected(events, settings)
    got = await final_states(cluster, produced, events)
    assert got == want
    await assert_counts_match(cluster, parts, got)
    sums = await assert_worth_matches(cluster, parts, want)
    assert sums.revenue and any(s is not None and s.frequency == 0 for s in want.values())
