"""Worker failures: SIGKILLs, rebalances, workers joining.

Each test compares with one uninterrupted run: see ``tests/support/failkit.py``.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from tests.support.failkit import (
    CLAIM,
    NO_TIMER,
    Kill,
    applied,
    assert_alive,
    assert_effectively_once,
    claims,
    is_split,
    latest_claim,
    produce_paced,
    tail,
    wait_applied_at_least,
    wait_log,
    wait_split,
)
from tests.support.harness import Cluster, history

pytestmark = pytest.mark.integration

LIVES = 14  # worker lives of the SIGKILL soak, each ended by a kill (see its docstring)


async def test_a_dozen_sigkills_lose_and_double_nothing(cluster: Cluster) -> None:
    """14 SIGKILLs at random points of a 6,000-event stream, restart right away each time.

    One kill in four lands at a random moment of start-up (import, group join, claim);
    the others let the worker apply a random number (1-400) of events first and kill it
    0-30 ms later, while it is busy: between load and commit, inside the relay's
    publish/ack, before faust committed its Kafka offsets. batch_max=20 makes every life
    dozens of small commits. A SIGKILLed member stays in the group until its session
    (3 s) expires, so the next worker may wait for that rebalance.

    Why 14 (24 before): a life costs a worker's start-up and group join (~5-7 s on the
    shared CI machine) and only the ~0.1 s it applies for is at risk, so the count buys
    random crash points, not coverage of a new path. The seeded plan gives 9 mid-stream
    kills (17 before; each after a random 1-400 events, so each lands a different number
    of commits and relay round trips in) and 5 at start-up (7 before; those mostly land in
    the import, which touches nothing). Kills while rebalancing, of one worker of several,
    and of Redis and the broker have tests of their own below and in
    ``test_failures_redis.py`` / ``test_cluster.py``.
    """
    opts = {**NO_TIMER, "batch_max": "20"}
    settings = await cluster.ensure_topics(**opts)
    parts = settings.partitions
    events = history(customers=300, events=6000, seed=24)
    n = len(events)
    produced = await cluster.produce(events)
    rng = random.Random(20240601)
    kills: list[Kill] = []
    store = cluster.store()
    try:
        for life in range(LIVES):
            before = await applied(store, parts)
            worker = cluster.start_worker(**opts)
            started = time.monotonic()
            if rng.random() < 0.25:
                await asyncio.sleep(rng.uniform(0.1, 3.0))
            else:
                await wait_log(worker, CLAIM, wait_s=40)
                target = min(n, before + rng.randint(1, 400))
                await wait_applied_at_least(store, parts, target, wait_s=40)
                await asyncio.sleep(rng.uniform(0, 0.03))
            assert worker.proc.poll() is None, f"life {life} died on its own:\n{tail(worker)}"
            at_kill = await applied(store, parts)
            worker.kill()  # SIGKILL: no shutdown hook, no LeaveGroup, no flush
            kills.append(
                Kill(life, time.monotonic() - started, CLAIM in worker.text(), before, at_kill)
            )
    finally:
        await store.close()

    # killed while applying: it had claimed, applied something, and events were left
    mid_stream = [k for k in kills if k.claimed and k.applied_before < k.applied_at_kill < n]
    assert len(kills) == LIVES
    # the seeded plan has 9 (one more if a start-up kill lands after the claim)
    assert len(mid_stream) >= 9, f"too few kills while events were being applied: {kills}"

    final = cluster.start_worker(**opts)
    delivered = await assert_effectively_once(cluster, settings, events, produced, [final])
    print(
        f"\n{len(kills)} kills ({len(mid_stream)} while applying, "
        f"{sum(not k.claimed for k in kills)} during start-up); "
        f"{kills[-1].applied_at_kill}/{n} applied before the final worker; "
        f"{delivered.messages} transition messages, {delivered.duplicates} redelivered"
    )


# ---------------------------------------------------------------------- 2. rebalances
async def test_rebalance_two_workers_one_killed_midstream(cluster: Cluster) -> None:
    """Two workers share the partitions; one is SIGKILLed while both are applying events."""
    opts = {**NO_TIMER, "batch_max": "50"}
    settings = await cluster.ensure_topics(**opts)
    parts = settings.partitions
    a, b = cluster.start_worker(**opts), cluster.start_worker(**opts)
    split = await wait_split([a, b], parts)

    events = history(customers=200, events=4000, seed=52)
    n = len(events)
    producing = asyncio.create_task(produce_paced(cluster, events, per_second=350))
    store = cluster.store()
    try:
        await wait_applied_at_least(store, parts, n // 3, wait_s=60)
        # the split still holds, and both workers have applied events of their partitions
        owned = [latest_claim(a), latest_claim(b)]
        assert is_split(owned, parts), f"partitions not split before the kill: {owned}"
        committed = await store.committed_offsets(range(parts))
        for mine in owned:
            assert mine and all(committed[p] >= 0 for p in mine), (
                f"worker owning {mine} applied nothing yet: {committed}"
            )
        survivor_claims = len(claims(a))
        at_kill = await applied(store, parts)
        b.kill()
    finally:
        await store.close()
    assert at_kill < n, "stream finished before the kill"

    # the survivor takes over every partition (after the dead member's session expires)
    deadline = time.monotonic() + 40
    while latest_claim(a) != set(range(parts)) or len(claims(a)) <= survivor_claims:
        assert_alive(a)
        assert time.monotonic() < deadline, f"survivor never claimed all partitions:\n{tail(a)}"
        await asyncio.sleep(0.05)

    produced = await producing
    delivered = await assert_effectively_once(cluster, settings, events, produced, [a])
    print(
        f"\nsplit before the kill {split}; killed at {at_kill}/{n} applied; "
        f"{delivered.messages} transition messages, {delivered.duplicates} redelivered"
    )


async def test_third_worker_joins_midstream(cluster: Cluster) -> None:
    """Two workers share the stream; a third joins while events flow and takes partitions.

    Six partitions: with four, faust's sticky assignor keeps 2 + 2 and gives the
    newcomer nothing (measured), which would prove nothing.
    """
    opts = {**NO_TIMER, "batch_max": "50", "partitions": "6"}
    settings = await cluster.ensure_topics(**opts)
    parts = settings.partitions
    a, b = cluster.start_worker(**opts), cluster.start_worker(**opts)
    await wait_split([a, b], parts)

    events = history(customers=200, events=4000, seed=53)
    n = len(events)
    producing = asyncio.create_task(produce_paced(cluster, events, per_second=300))
    store = cluster.store()
    try:
        await wait_applied_at_least(store, parts, n // 4, wait_s=60)
        c = cluster.start_worker(**opts)
        split = await wait_split([a, b, c], parts)
        at_split = await applied(store, parts)
    finally:
        await store.close()
    assert at_split < n, "stream finished before the third worker took partitions"

    produced = await producing
    delivered = await assert_effectively_once(cluster, settings, events, produced, [a, b, c])
    # the newcomer applied events of its own partitions after it joined
    assert latest_claim(c), "the third worker owns nothing"
    print(
        f"\nthree-way split {split} at {at_split}/{n} applied; "
        f"{delivered.messages} transition messages, {delivered.duplicates} redelivered"
    )


# ---------------------------------------------------------------------- 3. Redis restart
