"""Event → transition latency under paced load, and decay timeliness, of the live worker.

    python -m bench.bench_latency [--rates 1000,5000] [--seconds 10] [--decay 100000]

Starts its own Tansu broker and redis-server. All clocks are this machine's wall clock
(``time.time``), read by this process for sending and receiving.

- latency: a paced producer (a tick every 5 ms, sending what the rate owes so far) sends
  first purchases of new customers, ``occurred_at`` = now, so each is sure to cause one
  ``first_purchase`` transition; a group-less aiokafka consumer on the transitions topic
  matches them by customer id. Baseline in the same run: the broker alone, the same
  pacing produced to a fresh topic and consumed by the same consumer code (by event id).
- decay timeliness: ``--decay`` customer states loaded with the real ``RedisStore.commit``
  (due times = the engine's ``next_due``, spread evenly over ``--spread`` seconds that
  start ``--lead`` seconds after loading), then a live worker with its decay timer on;
  lateness = when the ``recency_decay`` transition was read − its ``effective_at`` (the
  due time).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.procs import spawn, wait_owned
from schemas.settings import Settings, load_settings
from segments.engine import NEVER, Engine
from segments.model import Columns, CustomerState
from segments.rules import build_engine
from state.store import RedisStore
from stream.embedded import start_redis, start_tansu
from stream.kafka import ensure_topics

DAY_MS = 86_400_000
FAUST_FETCH_WAIT_MS = 1500  # what faust's aiokafka driver hard-codes for its consumer


@dataclass
class Lat:
    """Latencies (ms) of one paced run, and what was lost."""

    rate: int
    sent: int
    ms: list[float] = field(default_factory=list)
    before_emit: list[float] = field(default_factory=list)  # start -> emitted_at (worker)
    after_emit: list[float] = field(default_factory=list)  # emitted_at -> read (relay, broker)

    @staticmethod
    def p(xs: list[float], q: float) -> float:
        return float(np.percentile(np.array(xs), q)) if xs else float("nan")

    def pct(self, q: float) -> float:
        if not self.ms:
            return float("nan")
        return float(np.percentile(np.array(self.ms), q))

    @property
    def missing(self) -> int:
        return self.sent - len(self.ms)

    def line(self) -> str:
        return (
            f"{self.rate:,}/s: {len(self.ms):,}/{self.sent:,} matched, p50 {self.pct(50):.1f} ms,"
            f" p99 {self.pct(99):.1f} ms, max {max(self.ms, default=float('nan')):.1f} ms"
        )


@dataclass
class LatencyResults:
    partitions: int = 4
    seconds: float = 0.0
    broker: list[Lat] = field(default_factory=list)
    broker_faust_wait: list[Lat] = field(default_factory=list)  # fetch_max_wait_ms=1500
    worker: list[Lat] = field(default_factory=list)
    decay: Lat | None = None
    decay_customers: int = 0
    decay_lead_s: float = 0.0
    decay_spread_s: float = 0.0
    decay_margin_s: float = 0.0  # worker settled this long before the first due time
    decay_interval_ms: int = 0
    load: list[tuple[float, float, float]] = field(default_factory=list)


# ---------------------------------------------------------------------- observer
class Observer:
    """Reads a topic from its current end and stamps each record's arrival (wall ms)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        partitions: int,
        key: str,
        accept: Callable[[dict[str, Any]], bool],
        fetch_wait_ms: int = 20,
    ) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=fetch_wait_ms
        )
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.key = key
        self.accept = accept
        self.seen: dict[str, tuple[float, dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.assign(self.tps)
        await self.consumer.seek_to_end(*self.tps)
        for tp in self.tps:  # resolve the positions now, before anything is produced
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            now = time.time() * 1000
            for recs in batch.values():
                for r in recs:
                    d = orjson.loads(r.value)
                    if self.accept(d):  # (Tansu's seek_to_end may land before the end)
                        self.seen.setdefault(d[self.key], (now, d))

    async def wait_for(self, n: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.seen) < n and time.monotonic() < deadline:
            assert self._task is not None
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.consumer.stop()


async def paced(
    bootstrap: str, topic: str, rate: int, seconds: float, tag: str
) -> dict[str, float]:
    """First purchases of new customers at ``rate``/s; returns customer -> sent (wall ms)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, enable_idempotence=False)
    await producer.start()
    sent: dict[str, float] = {}
    total = int(rate * seconds)
    futs = []
    try:
        t0 = time.perf_counter()
        i = 0
        while i < total:
            owed = min(total, int((time.perf_counter() - t0) * rate) + 1)
            while i < owed:
                cid = f"{tag}-{i:07d}"
                now = time.time()
                ev = {
                    "event_id": f"{cid}-e0",
                    "customer_id": cid,
                    "order_id": f"{cid}-o0",
                    "occurred_at": datetime.fromtimestamp(now, UTC).isoformat(),
                    "amount": "1200.00",
                    "currency": "CNY",
                    "channel": "pos",
                }
                sent[cid] = now * 1000
                futs.append(await producer.send(topic, orjson.dumps(ev), key=cid.encode()))
                i += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*futs)
    finally:
        await producer.stop()
    return sent


async def measure(
    bootstrap: str,
    src: str,
    dst: str,
    key: str,
    partitions: int,
    rate: int,
    seconds: float,
    fetch_wait_ms: int = 20,
) -> Lat:
    """Produce paced to ``src``, observe ``dst`` (matching on ``key``); latencies in ms."""
    tag = f"r{rate}-{uuid.uuid4().hex[:6]}"
    obs = Observer(
        bootstrap,
        dst,
        partitions,
        key,
        lambda d: d["customer_id"].startswith(tag + "-"),
        fetch_wait_ms,
    )
    await obs.start()
    try:
        sent = await paced(bootstrap, src, rate, seconds, tag)
        await obs.wait_for(len(sent), timeout_s=30)
    finally:
        await obs.stop()
    lat = Lat(rate, len(sent))
    for cid, t in sent.items():
        got = obs.seen.get(cid if key == "customer_id" else f"{cid}-e0")
        if got is not None:
            lat.ms.append(got[0] - t)
            if "emitted_at" in got[1]:
                emitted = _ms(got[1]["emitted_at"])
                lat.before_emit.append(emitted - t)
                lat.after_emit.append(got[0] - emitted)
    return lat


def _ms(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() * 1000


# ---------------------------------------------------------------------- decay
def due_states(
    engine: Engine, ids: list[str], due_ms: np.ndarray, rng: np.random.Generator
) -> list[CustomerState]:
    """States whose next due time (recency edge) is ``due_ms``, segments set at the cursor."""
    edge = int(engine._edges.min())
    n = len(ids)
    last = due_ms - edge
    freq = rng.integers(1, 6, n)
    first = np.where(freq == 1, last, last - rng.integers(0, 365 * DAY_MS, n))
    monetary = rng.integers(10, 3000, n) * 10_000 * freq
    cols = Columns(last_ms=last, frequency=freq, monetary=monetary)
    segs = {s.name: s.classify(cols, last).tolist() for s in engine.schemes}
    return [
        CustomerState(
            customer_id=cid,
            frequency=int(freq[i]),
            monetary=int(monetary[i]),
            first_ms=int(first[i]),
            last_ms=int(last[i]),
            cursor_ms=int(last[i]),
            segments={name: v[i] for name, v in segs.items()},
        )
        for i, cid in enumerate(ids)
    ]


async def load_due(
    store: RedisStore,
    engine: Engine,
    customers: int,
    partitions: int,
    start_ms: int,
    spread_ms: int,
) -> None:
    rng = np.random.default_rng(11)
    for p in range(partitions):
        claim = await store.claim(p)
        version = 0
        idx = np.arange(p, customers, partitions)
        for lo in range(0, idx.size, 10_000):
            part = idx[lo : lo + 10_000]
            due = start_ms + (part * spread_ms) // max(customers - 1, 1)
            states = due_states(engine, [f"d{i:07d}" for i in part.tolist()], due, rng)
            at = engine.next_due(states)
            if (at == NEVER).any() or not np.array_equal(at, due):
                raise AssertionError("the engine's due times differ from the planned ones")
            schedule = dict(zip((s.customer_id for s in states), at.tolist(), strict=True))
            version = await store.commit(p, claim.epoch, version, states, schedule, [])


async def decay_run(
    settings: Settings,
    res: LatencyResults,
    customers: int,
    lead_s: float,
    spread_s: float,
    logdir: Path,
) -> None:
    ns = f"decay-{uuid.uuid4().hex[:6]}"
    engine = build_engine(settings)
    store = RedisStore.from_url(settings.redis_url.get_secret_value(), "rfm", ns)
    start_ms = int(time.time() * 1000 + lead_s * 1000)
    try:
        await load_due(
            store, engine, customers, settings.partitions, start_ms, int(spread_s * 1000)
        )
    finally:
        await store.close()
    obs = Observer(
        settings.kafka_bootstrap,
        settings.transitions_topic,
        settings.partitions,
        "transition_id",
        lambda d: d.get("cause") == "recency_decay" and d["customer_id"].startswith("d"),
    )
    await obs.start()
    proc = spawn(
        settings,
        ns,
        f"bench-{ns}",
        logdir / f"{ns}.log",
        http=True,
        extra={"RFM_DECAY_TIMER": "true"},
    )
    try:
        await wait_owned([proc], settings.partitions)
        res.decay_margin_s = start_ms / 1000 - time.time()
        res.decay_interval_ms = settings.decay_interval
        await obs.wait_for(customers, timeout_s=lead_s + spread_s + 60)
    finally:
        proc.stop()
        await obs.stop()
    lat = Lat(0, customers)
    for recv, d in obs.seen.values():
        eff, emitted = _ms(d["effective_at"]), _ms(d["emitted_at"])
        lat.ms.append(recv - eff)
        lat.before_emit.append(emitted - eff)
        lat.after_emit.append(recv - emitted)
    res.decay = lat
    res.decay_customers, res.decay_lead_s, res.decay_spread_s = customers, lead_s, spread_s


async def bench(
    rates: list[int], seconds: float, decay: int, lead_s: float, spread_s: float, partitions: int
) -> LatencyResults:
    logdir = Path(tempfile.mkdtemp(prefix="rfm-bench-latency-"))
    broker = start_tansu(log_path=logdir / "tansu.log")
    server = start_redis()
    res = LatencyResults(partitions=partitions, seconds=seconds)
    try:
        sfx = uuid.uuid4().hex[:6]
        settings = load_settings(
            kafka_bootstrap=broker.address,
            redis_url=f"redis://{server.address}/0",
            namespace=f"lat-{sfx}",
            purchases_topic=f"purchases-{sfx}",
            transitions_topic=f"transitions-{sfx}",
            dlq_topic=f"dlq-{sfx}",
            partitions=partitions,
        )
        await ensure_topics(settings)
        base = settings.model_copy(update={"purchases_topic": f"baseline-{sfx}"})
        await ensure_topics(base)
        res.load.append(os.getloadavg())
        boot = broker.address
        for rate in rates:
            lat = await measure(
                boot,
                base.purchases_topic,
                base.purchases_topic,
                "event_id",
                partitions,
                rate,
                seconds,
            )
            res.broker.append(lat)
            print(f"broker alone, {lat.line()}", flush=True)
            lat = await measure(
                boot,
                base.purchases_topic,
                base.purchases_topic,
                "event_id",
                partitions,
                rate,
                seconds,
                FAUST_FETCH_WAIT_MS,
            )
            res.broker_faust_wait.append(lat)
            print(f"broker alone, consumer fetch_max_wait_ms=1500, {lat.line()}", flush=True)
        proc = spawn(
            settings,
            settings.namespace,
            f"bench-{sfx}",
            logdir / "worker.log",
            http=True,
            extra={"RFM_DECAY_TIMER": "true"},
        )
        try:
            await wait_owned([proc], partitions)
            await measure(
                boot,
                settings.purchases_topic,
                settings.transitions_topic,
                "customer_id",
                partitions,
                50,
                1.0,
            )  # warm-up, not reported
            for rate in rates:
                lat = await measure(
                    boot,
                    settings.purchases_topic,
                    settings.transitions_topic,
                    "customer_id",
                    partitions,
                    rate,
                    seconds,
                )
                res.worker.append(lat)
                print(f"worker, {lat.line()}", flush=True)
                proc.check()
        finally:
            proc.stop()
        if decay:
            await decay_run(settings, res, decay, lead_s, spread_s, logdir)
            assert res.decay is not None
            print(
                f"decay: {res.decay.line()} (worker settled {res.decay_margin_s:.1f} s "
                "before the first due time)",
                flush=True,
            )
        res.load.append(os.getloadavg())
        shutil.rmtree(logdir, ignore_errors=True)
        return res
    except BaseException:
        print(f"latency benchmark failed; logs kept in {logdir}", flush=True)
        raise
    finally:
        server.stop()
        broker.stop()


def summary(lats: list[float]) -> str:
    return f"median {statistics.median(lats):.1f}" if lats else "none"
