"""Helpers of the failure tests: kill, wait, compare with an uninterrupted run.

Every failure test runs real worker processes against a real Tansu broker and a real
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
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from schemas.errors import StoreUnavailable
from schemas.settings import Settings
from segments import CustomerState
from state.store import RedisStore
from stream.demo.embedded import Service, start_redis
from tests.support.harness import Cluster, WorkerProc, expected, story

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
    await cluster.wait_applied(produced, wait_s, check=lambda: assert_alive(*alive))


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


async def assert_counts_match(
    cluster: Cluster, partitions: int, states: dict[str, CustomerState | None]
) -> None:
    """The segment sizes the commits tallied equal a recount of the customers' states
    (and the flows tallied add up to the same sizes)."""
    recount: dict[str, dict[str, int]] = {}
    for s in states.values():
        for scheme, key in (s.segments if s else {}).items():
            if key != "none":
                recount.setdefault(scheme, {})
                recount[scheme][key] = recount[scheme].get(key, 0) + 1
    store = cluster.store()
    try:
        tallied = await store.tallies.segment_counts(range(partitions))
        days = sorted({k.split(":")[-1] for k in await _flow_keys(store)})
        flows = await store.tallies.flows(range(partitions), days)
    finally:
        await store.close()
    assert tallied == recount, f"tallied sizes {tallied} != recount {recount}"
    net: dict[str, dict[str, int]] = {}
    for (_, scheme, frm, to, _), n in flows.items():
        seg = net.setdefault(scheme, {})
        if frm != "none":
            seg[frm] = seg.get(frm, 0) - n
        if to != "none":
            seg[to] = seg.get(to, 0) + n
    assert {sc: {k: v for k, v in seg.items() if v} for sc, seg in net.items()} == recount


async def _flow_keys(store: RedisStore) -> list[str]:
    return [
        k
        async for k in store.client.scan_iter(
            f"{store.keys.prefix}:{{{store.keys.namespace}:*}}:mx:*"
        )
    ]


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
    await assert_counts_match(cluster, settings.partitions, got_states)

    # Everything committed has been published and acknowledged (the relay deletes an
    # outbox entry only once the broker acknowledged it), every event is applied and the
    # timer is off: nothing more can come, so the whole topic as of now is the answer.
    await wait_outbox_empty(cluster, settings.partitions, alive, wait_s=wait_s)
    want_ids = {t["transition_id"] for t in want}
    got = await cluster.read_to_end(settings.transitions_topic, wait_s=wait_s)
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


# ---------------------------------------------------------------------- 1. SIGKILL soak
@dataclass
class Kill:
    life: int
    after_s: float  # since the process was started
    claimed: bool  # it had claimed partitions (was past group join)
    applied_before: int  # events applied when this life started
    applied_at_kill: int


LOST_RE = re.compile(r"redis lost (commits|state) of partition (\d+)[^\n]*")
HOLE = "are missing from the log; going on"


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


async def offsets_in_copy(cluster: Cluster, copy: Path, partitions: int) -> dict[int, int]:
    """The committed offsets an AOF copy holds, read from a scratch redis-server of the
    test's own loaded from it (on another port: no worker can reach it, so what it answers
    is the copy itself, whatever a worker does on the real server meanwhile)."""
    workdir = Path(tempfile.mkdtemp(prefix="rfm-aof-copy-"))
    shutil.copytree(copy, workdir / "appendonlydir")
    server = start_redis(appendonly=True, workdir=workdir)
    try:
        store = cluster.store(redis_url=f"redis://{server.address}/0")
        try:
            deadline = time.monotonic() + 60
            while True:  # the port opens before the AOF is loaded: LOADING until then
                try:
                    return await store.committed_offsets(range(partitions))
                except StoreUnavailable:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.05)
        finally:
            await store.close()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def down_for(seconds: float, worker: WorkerProc) -> None:
    """Let an outage last ``seconds``; the worker must ride it out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert_alive(worker)
        await asyncio.sleep(0.05)


def lost_reports(worker: WorkerProc) -> list[tuple[str, int, str]]:
    """The worker's ``redis lost …`` lines: (commits|state, partition, line)."""
    return [(m.group(1), int(m.group(2)), m.group(0)) for m in LOST_RE.finditer(worker.text())]
