"""Effectively once under failure: SIGKILLs, rebalances, a Redis restart, a broker outage.

Every test runs real worker processes against a real Tansu broker and a real
redis-server, breaks something while the stream is flowing, and then compares the
result with what the pure engine computes from the events in one uninterrupted pass:

- the final state of every customer is identical (nothing lost, nothing applied twice);
- the set of ``transition_id``\\ s on the transitions topic is identical: none lost, none
  extra. Duplicates of an id are allowed (delivery is at least once), and after
  deduplication each customer's story (from, to, cause, effective_at) is identical.

The decay timer is off, so the expectation depends only on the events.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas.settings import Settings
from segments import CustomerState
from state.store import RedisStore
from stream.embedded import Service, free_port, start_redis, start_tansu
from tests.harness import Cluster, WorkerProc, expected, history, story
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

NO_TIMER = {"decay_timer": "false"}
CLAIM = "claimed partitions"
CLAIM_RE = re.compile(r"claimed partitions \[([0-9, ]*)\]")


# ---------------------------------------------------------------------- helpers


def tail(worker: WorkerProc, chars: int = 3000) -> str:
    """The end of a worker's log, after its first errors (a crash's cause comes first)."""
    text = worker.text()
    errors = [ln for ln in text.splitlines() if re.search(r"\] \[(ERROR|CRITICAL)\]", ln)]
    head = "\n".join(errors[:8])
    return f"{head}\n...\n{text[-chars:]}" if head else text[-chars:]


async def wait_log(worker: WorkerProc, needle: str, count: int = 1, wait_s: float = 30.0) -> None:
    """Like ``WorkerProc.wait_for_log`` but without blocking the event loop."""
    deadline = time.monotonic() + wait_s
    while worker.text().count(needle) < count:
        if worker.proc.poll() is not None:
            raise AssertionError(f"worker exited ({worker.proc.returncode}):\n{tail(worker)}")
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{needle!r} x{count} not in worker log in {wait_s}s:\n{tail(worker)}"
            )
        await asyncio.sleep(0.02)


def claims(worker: WorkerProc) -> list[set[int]]:
    """Every partition set the worker claimed, in order (one per assignment)."""
    return [
        {int(p) for p in m.group(1).split(",") if p.strip()}
        for m in CLAIM_RE.finditer(worker.text())
    ]


def latest_claim(worker: WorkerProc) -> set[int] | None:
    found = claims(worker)
    return found[-1] if found else None


def is_split(owned: Sequence[set[int] | None], partitions: int) -> bool:
    """Every worker owns something, nobody owns the same partition twice, all are owned."""
    if any(not o for o in owned):
        return False
    sets = [o for o in owned if o]
    return sum(len(o) for o in sets) == partitions and set().union(*sets) == set(range(partitions))


async def wait_split(
    workers: Sequence[WorkerProc], partitions: int, wait_s: float = 40.0
) -> list[set[int]]:
    deadline = time.monotonic() + wait_s
    while True:
        owned = [latest_claim(w) for w in workers]
        if is_split(owned, partitions):
            return [o for o in owned if o is not None]
        for w in workers:
            if w.proc.poll() is not None:
                raise AssertionError(f"worker exited ({w.proc.returncode}):\n{tail(w)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"partitions never split between the workers: {owned}")
        await asyncio.sleep(0.05)


async def applied(store: RedisStore, partitions: int) -> int:
    """Events applied so far (committed offset + 1, summed over partitions)."""
    committed = await store.committed_offsets(range(partitions))
    return sum(o + 1 for o in committed.values())


async def wait_applied_at_least(
    store: RedisStore, partitions: int, n: int, wait_s: float = 60.0, poll_s: float = 0.005
) -> int:
    deadline = time.monotonic() + wait_s
    while (done := await applied(store, partitions)) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {done} of {n} events applied in {wait_s}s")
        await asyncio.sleep(poll_s)
    return done


async def produce_paced(
    cluster: Cluster, events: Sequence[dict[str, Any]], per_second: float, chunk: int = 25
) -> list[tuple[int, int]]:
    """Produce ``events`` keyed by customer at about ``per_second``, like a live POS feed."""
    topic = cluster.settings().purchases_topic
    producer = AIOKafkaProducer(bootstrap_servers=cluster.kafka_bootstrap, linger_ms=5)
    await producer.start()
    out: list[tuple[int, int]] = []
    try:
        started = time.monotonic()
        for i in range(0, len(events), chunk):
            futs = [
                await producer.send(topic, orjson.dumps(e), key=e["customer_id"].encode())
                for e in events[i : i + chunk]
            ]
            out += [(m.partition, m.offset) for m in await asyncio.gather(*futs)]
            ahead = started + (i + chunk) / per_second - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
    finally:
        await producer.stop()
    return out


async def final_states(
    cluster: Cluster, produced: Sequence[tuple[int, int]], events: Sequence[dict[str, Any]]
) -> dict[str, CustomerState | None]:
    store = cluster.store()
    try:
        part = {e["customer_id"]: p for e, (p, _) in zip(events, produced, strict=True)}
        return {c: await store.get_state(p, c) for c, p in part.items()}
    finally:
        await store.close()


async def wait_applied_alive(
    cluster: Cluster,
    produced: Sequence[tuple[int, int]],
    alive: Sequence[WorkerProc],
    wait_s: float = 60.0,
) -> None:
    """Wait until Redis's committed offsets cover ``produced``; fail at once, with the
    cause from its log, if one of the workers that should be running has died."""
    last: dict[int, int] = {}
    for p, o in produced:
        last[p] = max(last.get(p, -1), o)
    store = cluster.store()
    try:
        deadline = time.monotonic() + wait_s
        while True:
            assert_alive(*alive)
            committed = await store.committed_offsets(last)
            if all(committed[p] >= o for p, o in last.items()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not applied in {wait_s}s: {committed} < {last}")
            await asyncio.sleep(0.1)
    finally:
        await store.close()


async def wait_outbox_empty(
    cluster: Cluster, partitions: int, alive: Sequence[WorkerProc], wait_s: float = 60.0
) -> None:
    """The relay published and acknowledged every committed transition."""
    store = cluster.store()
    try:
        deadline = time.monotonic() + wait_s
        while True:
            assert_alive(*alive)
            sizes = {p: await store.outbox_size(p) for p in range(partitions)}
            if not any(sizes.values()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"outbox not drained in {wait_s}s: {sizes}")
            await asyncio.sleep(0.1)
    finally:
        await store.close()


@dataclass
class Delivered:
    messages: int  # transition messages on the topic, duplicates included
    duplicates: int  # messages whose id was already delivered


async def assert_effectively_once(
    cluster: Cluster,
    settings: Settings,
    events: Sequence[dict[str, Any]],
    produced: Sequence[tuple[int, int]],
    alive: Sequence[WorkerProc],
    wait_s: float = 90.0,
) -> Delivered:
    """Final states and transition ids equal the uninterrupted single-pass expectation.

    ``alive``: the workers that must stay up meanwhile (checked all along).
    """
    want_states, want = expected(events, settings)
    await wait_applied_alive(cluster, produced, alive, wait_s=wait_s)
    got_states = await final_states(cluster, produced, events)
    wrong = sorted(c for c in want_states if got_states.get(c) != want_states[c])
    assert not wrong, (
        f"{len(wrong)} customers differ from the expectation, e.g. {wrong[0]}: "
        f"got {got_states.get(wrong[0])}, want {want_states[wrong[0]]}"
    )
    assert got_states == want_states

    # Everything committed has been published and acknowledged; then read the whole
    # topic: until every expected id is there and nothing new came for a second.
    await wait_outbox_empty(cluster, settings.partitions, alive, wait_s=wait_s)
    want_ids = {t["transition_id"] for t in want}
    last_growth = [time.monotonic(), 0]

    def complete(ts: list[dict[str, Any]]) -> bool:
        if len(ts) != last_growth[1]:
            last_growth[:] = [time.monotonic(), len(ts)]
        ids = {t["transition_id"] for t in ts}
        return want_ids <= ids and time.monotonic() - last_growth[0] > 1.0

    got = await cluster.transitions(complete, wait_s=wait_s)
    assert_alive(*alive)
    got_ids = {t["transition_id"] for t in got}
    lost, extra = want_ids - got_ids, got_ids - want_ids
    assert not lost and not extra, (
        f"{len(lost)} transitions lost, {len(extra)} extra (of {len(want_ids)}); "
        f"lost e.g. {sorted(lost)[:3]}, extra e.g. {sorted(extra)[:3]}"
    )
    deduped = list({t["transition_id"]: t for t in got}.values())
    assert story(deduped) == story(want)
    # at least once: a redelivered id is the very same transition
    by_id: dict[str, dict[str, Any]] = {}
    for t in got:
        first = by_id.setdefault(t["transition_id"], t)
        assert _comparable(first) == _comparable(t), "same transition_id, different transition"
    return Delivered(len(got), len(got) - len(got_ids))


def _comparable(t: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in t.items() if k not in ("emitted_at", "_partition")}


def assert_alive(*workers: WorkerProc) -> None:
    for w in workers:
        assert w.proc.poll() is None, f"worker died ({w.proc.returncode}):\n{tail(w)}"


# ---------------------------------------------------------------------- 1. SIGKILL x 24
@dataclass
class Kill:
    life: int
    after_s: float  # since the process was started
    claimed: bool  # it had claimed partitions (was past group join)
    applied_before: int  # events applied when this life started
    applied_at_kill: int


async def test_dozens_of_sigkills_lose_and_double_nothing(cluster: Cluster) -> None:
    """24 SIGKILLs at random points of a 6,000-event stream, restart right away each time.

    One kill in four lands at a random moment of start-up (import, group join, claim);
    the others let the worker apply a random number (1-400) of events first and kill it
    0-30 ms later, while it is busy: between load and commit, inside the relay's
    publish/ack, before faust committed its Kafka offsets. batch_max=20 makes every life
    dozens of small commits. A SIGKILLed member stays in the group until its session
    (3 s) expires, so the next worker may wait for that rebalance.
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
        for life in range(24):
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
    assert len(kills) == 24
    assert len(mid_stream) >= 12, f"too few kills while events were being applied: {kills}"

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
@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[Service]:
    """A dedicated redis-server, AOF on and fsynced on every write: a restart loses nothing."""
    server = start_redis(appendonly=True, appendfsync="always", workdir=tmp_path / "redis-aof")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cluster_on(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    """Make :class:`Cluster` s on servers of the test's own; stops their workers after."""
    made: list[Cluster] = []

    def make(kafka_bootstrap: str, redis_url: str) -> Cluster:
        suffix = uuid.uuid4().hex[:8]
        c = Cluster(
            kafka_bootstrap=kafka_bootstrap,
            redis_url=redis_url,
            suffix=suffix,
            logdir=tmp_path_factory.mktemp(f"workers-{suffix}"),
        )
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.stop_all()


async def test_redis_restart_with_aof_midstream(
    kafka_bootstrap: str, aof_redis: Service, cluster_on: Any
) -> None:
    """redis-server is SIGKILLed while the worker applies events, and comes back 2 s later
    on the same port from its AOF: the worker retries, doesn't die, and the result is exact."""
    cluster: Cluster = cluster_on(kafka_bootstrap, f"redis://{aof_redis.address}/0")
    opts = {**NO_TIMER, "batch_max": "50"}
    settings = await cluster.ensure_topics(**opts)
    parts = settings.partitions
    worker = cluster.start_worker(**opts)
    await wait_log(worker, CLAIM, wait_s=40)

    events = history(customers=200, events=3000, seed=31)
    n = len(events)
    producing = asyncio.create_task(produce_paced(cluster, events, per_second=300))
    store = cluster.store()
    try:
        at_kill = await wait_applied_at_least(store, parts, n // 4, wait_s=60)
    finally:
        await store.close()
    aof_redis.kill()
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # the worker must ride out the outage
        assert_alive(worker)
        await asyncio.sleep(0.05)
    aof_redis.restart()
    assert at_kill < n, "stream finished before Redis was killed"

    produced = await producing
    delivered = await assert_effectively_once(cluster, settings, events, produced, [worker])
    log = worker.text()
    retried = re.findall(r"\] ([a-z][a-z ]*) failed \(redis unavailable: .*\); retrying in", log)
    assert "process batch" in retried, f"no retried batch in the log:\n{log[-3000:]}"
    print(
        f"\nredis killed at {at_kill}/{n} applied; retried: {Counter(retried)}; "
        f"{delivered.messages} transition messages, {delivered.duplicates} redelivered"
    )


# ---------------------------------------------------------------------- 4. broker outage
@dataclass
class ProxiedBroker:
    broker: Service
    proxy: TcpProxy


@pytest.fixture
async def proxied_broker(tmp_path: Path) -> AsyncIterator[ProxiedBroker]:
    """A dedicated Tansu that advertises a proxy's port: every client connection after
    bootstrap goes through the proxy too, so cutting it is a broker outage for all."""
    broker_port = free_port()
    proxy = TcpProxy(target_port=broker_port)
    broker = start_tansu(
        port=broker_port, advertised_port=proxy.port, log_path=tmp_path / "tansu.log"
    )
    try:
        proxy.start()
        yield ProxiedBroker(broker, proxy)
    finally:
        proxy.close()
        broker.stop()


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
LOST_RE = re.compile(r"redis lost (commits|state) of partition (\d+)[^\n]*")
HOLE = "are missing from the log; going on"


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[Service]:
    """A dedicated redis-server that keeps nothing on disk: a restart brings it back empty."""
    server = start_redis(workdir=tmp_path / "redis-volatile")
    try:
        yield server
    finally:
        server.stop()


async def offsets_now(cluster: Cluster, partitions: int) -> dict[int, int]:
    store = cluster.store()
    try:
        return await store.committed_offsets(range(partitions))
    finally:
        await store.close()


async def snapshot_aof(
    server: Service, store: RedisStore, partitions: int, dest: Path
) -> dict[int, int]:
    """Copy ``server``'s AOF as of one instant (writes paused for the copy, so it is an
    exact earlier state); returns the committed offsets that copy holds."""
    assert server.workdir is not None
    await store.client.client_pause(10_000, all=False)  # WRITE pause: reads still served
    try:
        offsets = await store.committed_offsets(range(partitions))
        shutil.copytree(server.workdir / "appendonlydir", dest)
    finally:
        await store.client.client_unpause()
    return offsets


async def down_for(seconds: float, worker: WorkerProc) -> None:
    """Let an outage last ``seconds``; the worker must ride it out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert_alive(worker)
        await asyncio.sleep(0.05)


def lost_reports(worker: WorkerProc) -> list[tuple[str, int, str]]:
    """The worker's ``redis lost …`` lines: (commits|state, partition, line)."""
    return [(m.group(1), int(m.group(2)), m.group(0)) for m in LOST_RE.finditer(worker.text())]


@pytest.mark.parametrize("flow", ["live", "idle"])
async def test_redis_restored_from_older_state_midstream_rewinds(
    kafka_bootstrap: str, aof_redis: Service, cluster_on: Any, tmp_path: Path, flow: str
) -> None:
    """Redis is restored from a copy of its own AOF taken earlier in the stream: the
    commits made after the copy are gone, and the worker must re-read their events.

    The copy is taken at a quarter of the stream; then ``live``: 1.5 s of commits pass,
    redis-server is SIGKILLed, the copy put back and Redis restarted on the same port
    while events keep coming (the next batch starts past Redis's next offset);
    ``idle``: every event is produced and applied first, so after the restore no new
    batch arrives and only the worker's timer check of each partition can notice.
    """
    cluster: Cluster = cluster_on(kafka_bootstrap, f"redis://{aof_redis.address}/0")
    opts = {**NO_TIMER, "batch_max": "50"}
    settings = await cluster.ensure_topics(**opts)
    parts = settings.partitions
    worker = cluster.start_worker(**opts)
    await wait_log(worker, CLAIM, wait_s=40)

    events = history(customers=200, events=3000, seed=61)
    n = len(events)
    producing = asyncio.create_task(produce_paced(cluster, events, per_second=300))
    snap_dir = tmp_path / "aof-snapshot"
    store = cluster.store()
    try:
        await wait_applied_at_least(store, parts, n // 4, wait_s=60)
        snap = await snapshot_aof(aof_redis, store, parts, snap_dir)
        if flow == "live":
            await asyncio.sleep(1.5)
        else:
            await wait_applied_alive(cluster, await producing, [worker])
        before = await store.committed_offsets(range(parts))
    finally:
        await store.close()

    aof_redis.kill()
    assert aof_redis.workdir is not None
    shutil.rmtree(aof_redis.workdir / "appendonlydir")
    shutil.copytree(snap_dir, aof_redis.workdir / "appendonlydir")
    await down_for(1.0, worker)
    aof_redis.restart()
    restarted = time.monotonic()
    after = await offsets_now(cluster, parts)

    # Redis really went back: to exactly the copy, behind what had been committed
    assert after == snap, f"restored offsets {after} are not the snapshot's {snap}"
    rolled_back = sorted(p for p in range(parts) if after[p] < before[p])
    assert rolled_back, f"nothing rolled back: before the kill {before}, after {after}"
    applied_at_kill = sum(o + 1 for o in before.values())
    if flow == "live":
        assert applied_at_kill < n, "stream finished before Redis was killed"
    else:
        assert applied_at_kill == n, f"idle: {applied_at_kill}/{n} applied before the kill"

    produced = await producing
    delivered = await assert_effectively_once(cluster, settings, events, produced, [worker])
    recovered_s = time.monotonic() - restarted
    reports = lost_reports(worker)
    assert reports, f"no 'redis lost' in the worker log:\n{tail(worker)}"
    assert HOLE not in worker.text(), f"a gap was accepted as a hole:\n{tail(worker)}"
    if flow == "idle":
        # no batch came after the restore: the timer's check found every rolled-back one
        found = {p for kind, p, _ in reports if kind == "commits"}
        assert found >= set(rolled_back), f"rolled back {rolled_back}, reported {reports}"
    print(
        f"\n[{flow}] snapshot at {snap}, committed at the kill {before}, restored {after} "
        f"(rolled back {rolled_back}); recovered {recovered_s:.1f}s after the restart; "
        f"{[line for _, _, line in reports]}; "
        f"{delivered.messages} transition messages, {delivered.duplicates} redelivered"
    )


@pytest.mark.parametrize("flow", ["live", "idle"])
async def test_redis_back_empty_midstream_rebuilds(
    kafka_bootstrap: str, volatile_redis: Service, cluster_on: Any, flow: str
) -> None:
    """redis-server (no persistence) is SIGKILLed and comes back empty on the same port:
    every partition's epoch vanished, the worker re-claims each and re-reads it from
    offset 0. ``live``: killed at a quarter of the stream while events keep coming;
    ``idle``: killed after every event was produced and applied, so nothing but the
    worker's timer check can notice."""
    cluster: Cluster = cluster_on(kafka_bootstrap, f"redis://{volatile_redis.address}/0")
    opts = {**NO_TIMER, "batch_max": "50"}
    settings = await cluster.ensure_topics(**opts)
    parts = settings.partitions
    worker = cluster.start_worker(**opts)
    await wait_log(worker, CLAIM, wait_s=40)

    events = history(customers=200, events=3000, seed=62)
    n = len(events)
    producing = asyncio.create_task(produce_paced(cluster, events, per_second=300))
    store = cluster.store()
    try:
        if flow == "live":
            await wait_applied_at_least(store, parts, n // 4, wait_s=60)
        else:
            await wait_applied_alive(cluster, await producing, [worker])
        before = await store.committed_offsets(range(parts))
    finally:
        await store.close()

    volatile_redis.kill()
    await down_for(1.0, worker)
    volatile_redis.restart()
    restarted = time.monotonic()
    after = await offsets_now(cluster, parts)

    assert after == dict.fromkeys(range(parts), -1), f"redis came back with offsets {after}"
    applied_at_kill = sum(o + 1 for o in before.values())
    assert all(o >= 0 for o in before.values()), f"a partition had nothing yet: {before}"
    if flow == "live":
        assert applied_at_kill < n, "stream finished before Redis was killed"
    else:
        assert applied_at_kill == n, f"idle: {applied_at_kill}/{n} applied before the kill"

    produced = await producing
    delivered = await assert_effectively_once(cluster, settings, events, produced, [worker])
    recovered_s = time.monotonic() - restarted
    reports = lost_reports(worker)
    found = {p for kind, p, _ in reports if kind == "state"}
    assert found == set(range(parts)), f"'redis lost state' for {found} only:\n{tail(worker)}"
    assert HOLE not in worker.text(), f"a gap was accepted as a hole:\n{tail(worker)}"
    print(
        f"\n[{flow}] committed at the kill {before} ({applied_at_kill}/{n}); "
        f"recovered {recovered_s:.1f}s after the restart; "
        f"{[line for _, _, line in reports]}; "
        f"{delivered.messages} transition messages, {delivered.duplicates} redelivered"
    )
