"""Backfill: the state and transition ids of live processing, resumable, never on the live
topic."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from aiokafka import TopicPartition

from segments import CustomerState
from stream.backfill.reader import make_consumer, true_end_offsets
from stream.backfill.run import BackfillOptions, backfill_topic
from tests.support.harness import ROOT, T0, Cluster, expected, purchase

pytestmark = pytest.mark.integration

KNOBS = {"recency": "30d", "frequency_cut": "3", "monetary_cut": "800"}


def timeline(customers: int, events: int, seed: int) -> list[dict]:
    """Time-ordered history over ~300 days: gaps longer than the recency, so customers
    decay between their purchases."""
    rng = random.Random(seed)
    out = []
    for n in range(events):
        c = f"c{rng.randrange(customers):03d}"
        at = T0 + timedelta(days=300 * n / events, minutes=rng.randrange(60))
        out.append(purchase(c, n, at, f"{rng.lognormvariate(5, 0.7):.2f}"))
    out.sort(key=lambda e: e["occurred_at"])
    return out


async def states_of(cluster: Cluster, namespace: str) -> dict[str, CustomerState]:
    store = cluster.store(namespace=namespace)
    try:
        return {s.customer_id: s for s in await store.scans.scan_states()}
    finally:
        await store.close()


def comparable(states: dict[str, CustomerState]) -> dict:
    return {
        c: (s.frequency, s.monetary, s.first_ms, s.last_ms, s.cursor_ms, dict(s.segments))
        for c, s in states.items()
    }


async def nothing_due(cluster: Cluster, namespace: str, partitions: int) -> None:
    """Wait until the namespace's timer has fired everything due now and the relay has
    published every committed transition."""
    store = cluster.store(namespace=namespace)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = int(time.time() * 1000)
            due = [await store.due(p, now, 1) for p in range(partitions)]
            outbox = [await store.outbox_size(p) for p in range(partitions)]
            if not any(due) and not any(outbox):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"still due: {due}, outbox: {outbox}")
    finally:
        await store.close()


async def test_backfill_equals_live_and_never_touches_the_live_topic(cluster: Cluster) -> None:
    settings = await cluster.ensure_topics(**KNOBS)
    events = timeline(customers=40, events=600, seed=11)
    produced = await cluster.produce(events)

    # live: apply as events come (catch-up only), then let the timer fire what is due now
    live = cluster.start_worker(decay_timer="false", **KNOBS)
    await cluster.wait_applied(produced)
    live.stop()
    timer = cluster.start_worker(**KNOBS)
    timer.wait_for_log("claimed partitions")
    await nothing_due(cluster, settings.namespace, settings.partitions)
    cluster.stop_all()  # graceful: no writer is left, so the topic's end is final
    live_ts = await cluster.read_to_end(settings.transitions_topic)
    live_states = await states_of(cluster, settings.namespace)

    # backfill into another namespace, transitions to a side topic
    side = f"backfill-{cluster.suffix}"
    ns = f"bf{cluster.suffix}"
    report = await backfill_topic(
        settings, BackfillOptions(namespace=ns, emit_topic=side, progress=False)
    )
    assert report.events == len(events)
    # backfill_topic returned: its relay had every transition acknowledged, its producer
    # is stopped, so each topic holds all it will ever get from it
    back_ts = await cluster.read_to_end(side)
    assert {t["mode"] for t in back_ts} == {"backfill"}
    assert len(await cluster.read_to_end(settings.transitions_topic)) == len(live_ts)

    # the backfill stops at its watermark; promoted, the timer fires the rest up to now
    rest_topic = f"rest-{cluster.suffix}"
    promoted = cluster.start_worker(
        namespace=ns, transitions_topic=rest_topic, group_id=f"rest-{cluster.suffix}", **KNOBS
    )
    promoted.wait_for_log("claimed partitions")
    await nothing_due(cluster, ns, settings.partitions)
    cluster.stop_all()
    rest_ts = await cluster.read_to_end(rest_topic)

    assert comparable(await states_of(cluster, ns)) == comparable(live_states)
    live_ids = {t["transition_id"] for t in live_ts}
    assert {t["transition_id"] for t in back_ts} | {t["transition_id"] for t in rest_ts} == live_ids
    assert any(t["cause"] == "recency_decay" for t in back_ts), "no decay between events"


def backfill_cmd(ns: str, topic: str, *extra: str) -> list[str]:
    """``rfm-stream backfill`` into ``ns`` publishing to ``topic``, small batches (a kill
    lands mid-run), no progress bar; ``extra`` arguments appended."""
    return [
        *(sys.executable, "-m", "stream.cli", "backfill", "--into", ns, "--emit-topic", topic),
        *("--batch", "50", "--no-progress", *extra),
    ]


async def test_backfill_killed_halfway_resumes_to_the_same_result(cluster: Cluster) -> None:
    settings = await cluster.ensure_topics(**KNOBS)
    events = timeline(customers=80, events=4000, seed=12)
    await cluster.produce(events)
    env = {**os.environ, **cluster.env(**KNOBS), "PYTHONPATH": str(ROOT)}

    ns_a, topic_a = f"a{cluster.suffix}", f"a-{cluster.suffix}"
    proc = subprocess.Popen(  # noqa: ASYNC220 - a real process to SIGKILL
        backfill_cmd(ns_a, topic_a),
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = cluster.store(namespace=ns_a)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            offs = await store.committed_offsets(range(settings.partitions))
            if sum(o + 1 for o in offs.values()) >= 1000:
                break
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        offs = await store.committed_offsets(range(settings.partitions))
    finally:
        await store.close()
    assert sum(o + 1 for o in offs.values()) < len(events), "finished before the kill"
    done = subprocess.run(  # noqa: ASYNC221
        backfill_cmd(ns_a, topic_a),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "backfilled" in done.stdout

    ns_b, topic_b = f"b{cluster.suffix}", f"b-{cluster.suffix}"
    await backfill_topic(
        settings, BackfillOptions(namespace=ns_b, emit_topic=topic_b, progress=False)
    )
    assert comparable(await states_of(cluster, ns_a)) == comparable(await states_of(cluster, ns_b))
    # both runs have ended (the killed one's records are in or not, for good)
    ids_a = {t["transition_id"] for t in await cluster.read_to_end(topic_a)}
    ids_b = {t["transition_id"] for t in await cluster.read_to_end(topic_b)}
    assert ids_a == ids_b


async def test_backfill_refuses_the_live_namespace_and_topic(cluster: Cluster) -> None:
    settings = cluster.settings()
    proc = subprocess.run(  # noqa: ASYNC221
        [sys.executable, "-m", "stream.cli", "backfill", "--into", settings.namespace],
        env={**os.environ, **cluster.env(), "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "is the live namespace" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        env={**os.environ, **cluster.env(decay_timer="false"), "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_promote_under_live_traffic_loses_and_doubles_nothing(cluster: Cluster) -> None:
    settings = await cluster.ensure_topics(decay_timer="false")
    events = timeline(customers=60, events=3000, seed=13)
    first, during, after = events[:1000], events[1000:2000], events[2000:]
    worker = cluster.start_worker(decay_timer="false")
    produced = await cluster.produce(first)
    await cluster.wait_applied(produced)

    ns = f"p{cluster.suffix}"
    await backfill_topic(settings, BackfillOptions(namespace=ns, progress=False))
    # live keeps going in the old namespace after the backfill ended ...
    produced += await cluster.produce(during[:500])
    await cluster.wait_applied(produced)

    async def trickle() -> list[tuple[int, int]]:
        out = []
        for i in range(500, 1000, 50):
            out += await cluster.produce(during[i : i + 50])
            await asyncio.sleep(0.05)
        return out

    feeding = asyncio.create_task(trickle())
    await asyncio.sleep(0.1)
    done = await asyncio.to_thread(cli, cluster, "promote", ns)  # ... and is promoted mid-stream
    assert done.returncode == 0, done.stderr
    assert f"now serves {settings.namespace!r}" in done.stdout
    produced += await feeding
    produced += await cluster.produce(after)

    await cluster.wait_applied(produced, namespace=ns)
    worker.wait_for_log("was promoted to")
    want, _ = expected(events, settings)
    assert comparable(await states_of(cluster, ns)) == comparable(want)

    refused = await asyncio.to_thread(cli, cluster, "drop", ns)
    assert refused.returncode == 2 and "serves" in refused.stderr
    dropped = await asyncio.to_thread(cli, cluster, "drop", settings.namespace)
    assert dropped.returncode == 0, dropped.stderr
    assert await states_of(cluster, settings.namespace) == {}


async def test_since_until_filter_on_event_time(cluster: Cluster) -> None:
    settings = await cluster.ensure_topics()
    events = [purchase(f"w{i % 5}", i, T0 + timedelta(days=i), "10") for i in range(100)]
    await cluster.produce(events)
    since, until = T0 + timedelta(days=30), T0 + timedelta(days=60)
    ns = f"w{cluster.suffix}"
    report = await backfill_topic(
        settings,
        BackfillOptions(
            namespace=ns,
            since_ms=int(since.timestamp() * 1000),
            until_ms=int(until.timestamp() * 1000),
            progress=False,
        ),
    )
    assert report.events == 30
    inside = [e for e in events if since.isoformat() <= e["occurred_at"] < until.isoformat()]
    want, _ = expected(inside, settings)
    assert comparable(await states_of(cluster, ns)) == comparable(want)


async def test_backfill_ends_at_its_start_offsets_while_traffic_goes_on(cluster: Cluster) -> None:
    settings = await cluster.ensure_topics()
    before = timeline(customers=30, events=2000, seed=14)
    produced = await cluster.produce(before)
    last = {}
    for p, o in produced:
        last[p] = max(last.get(p, -1), o)
    stop = asyncio.Event()

    async def traffic() -> int:
        n = 0
        while not stop.is_set():
            await cluster.produce([purchase("late", 10_000 + n, T0 + timedelta(days=400), "1")])
            n += 1
            await asyncio.sleep(0.01)
        return n

    feeding = asyncio.create_task(traffic())
    ns = f"e{cluster.suffix}"
    try:
        report = await asyncio.wait_for(
            backfill_topic(settings, BackfillOptions(namespace=ns, batch=100, progress=False)),
            timeout=60,
        )
    finally:
        stop.set()
        await feeding
    assert report.events >= len(before)
    store = cluster.store(namespace=ns)
    try:
        committed = await store.committed_offsets(last)
    finally:
        await store.close()
    assert all(committed[p] >= o for p, o in last.items()), (committed, last)


@pytest.mark.parametrize("where", ["start", "last batch's base", "reported end", "inside", "end"])
async def test_a_resume_inside_the_last_batch_still_reads_to_the_true_end(
    cluster: Cluster, where: str
) -> None:
    """Tansu reports a partition's end as its last batch's base offset + 1: a backfill
    killed after applying part of that batch resumes at or past the reported end, and
    must still apply the rest (it once took the partition for done: CI, 2026-12)."""
    settings = await cluster.ensure_topics(**KNOBS)
    got = await cluster.produce(timeline(customers=5, events=120, seed=3), partition=0)
    true_end = max(o for _, o in got) + 1
    consumer = make_consumer(settings)
    await consumer.start()
    try:
        tp = TopicPartition(settings.purchases_topic, 0)
        consumer.assign([tp])
        reported = (await consumer.end_offsets([tp]))[tp]
        assert reported < true_end, "the broker reports the true end: nothing to test"
        resume = {
            "start": 0,
            "last batch's base": max(reported - 1, 0),
            "reported end": reported,
            "inside": (reported + true_end) // 2,
            "end": true_end,
        }[where]
        consumer.seek(tp, resume)
        end = await true_end_offsets(consumer, [tp], {0: resume})
    finally:
        await consumer.stop()
    assert end[tp] == true_end, (reported, resume)
