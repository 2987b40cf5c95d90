"""Test harness: real worker processes, real topics, helpers to produce and read them."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from schemas.settings import Settings, load_settings
from state.store import RedisStore
from stream.kafka.clients import ensure_topics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "tests" / "rules"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def purchase(
    customer: str, n: int, at: datetime, amount: str = "100", **extra: Any
) -> dict[str, Any]:
    return {
        "event_id": f"{customer}-e{n}",
        "customer_id": customer,
        "order_id": f"{customer}-o{n}",
        "occurred_at": at.isoformat(),
        "amount": amount,
        "currency": "CNY",
        **extra,
    }


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``rfm-stream *args`` in a subprocess with no ``RFM_*`` of this environment (only
    ``PATH``): what an operator's shell runs, the settings given as options."""
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


def _decoded(batch: dict[Any, list[Any]]) -> list[dict[str, Any]]:
    """A ``getmany`` batch's JSON records, each with its partition and key."""
    out = []
    for msgs in batch.values():
        for m in msgs:
            d = orjson.loads(m.value)
            d["_partition"], d["_key"] = m.partition, m.key
            out.append(d)
    return out


@dataclass
class WorkerProc:
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 30.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.text().count(needle) >= count:
                return
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"worker exited ({self.proc.returncode}):\n{self.text()[-3000:]}"
                )
            time.sleep(0.05)
        raise AssertionError(
            f"{needle!r} not in worker log after {timeout}s:\n{self.text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@dataclass
class Cluster:
    kafka_bootstrap: str
    redis_url: str
    suffix: str
    logdir: Path
    workers: list[WorkerProc] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        base = {
            "RFM_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "RFM_REDIS_URL": self.redis_url,
            "RFM_NAMESPACE": f"t{self.suffix}",
            "RFM_GROUP_ID": f"g-{self.suffix}",
            "RFM_PURCHASES_TOPIC": f"purchases-{self.suffix}",
            "RFM_TRANSITIONS_TOPIC": f"transitions-{self.suffix}",
            "RFM_DLQ_TOPIC": f"dlq-{self.suffix}",
            "RFM_PARTITIONS": "4",
            "RFM_KAFKA_SESSION_TIMEOUT": "3s",
            "RFM_DECAY_INTERVAL": "200ms",
            "RFM_BATCH_WITHIN": "20ms",
            "RFM_LOG_LEVEL": "info",
            "RFM_HTTP_PORT": "0",
            "RFM_RULES": str(RULES / "rfm8.toml"),
        }
        base.update({f"RFM_{k.upper()}": str(v) for k, v in overrides.items()})
        return base

    def settings(self, **overrides: str) -> Settings:
        env = self.env(**overrides)
        return load_settings(**{k.removeprefix("RFM_").lower(): v for k, v in env.items()})

    async def ensure_topics(self, **overrides: str) -> Settings:
        s = self.settings(**overrides)
        await ensure_topics(s)
        return s

    def start_worker(self, **overrides: str) -> WorkerProc:
        log = self.logdir / f"worker-{len(self.workers)}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RFM_")}
        env.update(self.env(**overrides))
        env["PYTHONPATH"] = str(ROOT)
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "worker"],
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
            )
        w = WorkerProc(proc, log)
        self.workers.append(w)
        return w

    def stop_all(self) -> None:
        for w in self.workers:
            w.stop()

    def discard(self) -> None:
        """After a test: SIGKILL its workers still running. Their graceful shutdown is
        not what the test was about (tests that need one call ``stop``), it costs ~1.4 s
        a worker, and a dead member of the test's own group bothers no other test."""
        for w in self.workers:
            w.kill()

    def store(self, **overrides: str) -> RedisStore:
        s = self.settings(**overrides)
        return RedisStore.from_url(s.redis_url.get_secret_value(), s.key_prefix, s.namespace)

    # ------------------------------------------------------------------ kafka I/O
    async def produce(
        self,
        events: Sequence[dict[str, Any] | bytes],
        key: bytes | None = None,
        partition: int | None = None,
    ) -> list[tuple[int, int]]:
        """Produce events keyed by customer (or ``key``), to ``partition`` if given;
        returns (partition, offset) of each."""
        s = self.settings()
        producer = AIOKafkaProducer(bootstrap_servers=self.kafka_bootstrap, linger_ms=5)
        await producer.start()
        try:
            futs = []
            for ev in events:
                if isinstance(ev, bytes):
                    value, k = ev, key
                else:
                    value, k = orjson.dumps(ev), ev["customer_id"].encode()
                futs.append(
                    await producer.send(s.purchases_topic, value, key=k, partition=partition)
                )
            metas = await asyncio.gather(*futs)
        finally:
            await producer.stop()
        return [(m.partition, m.offset) for m in metas]

    async def read(
        self,
        topic: str,
        until: Callable[[list[dict[str, Any]]], bool],
        wait_s: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Read ``topic`` from the beginning until ``until(messages)`` or ``wait_s``."""
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.kafka_bootstrap,
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        out: list[dict[str, Any]] = []
        try:
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and not until(out):
                out += _decoded(await consumer.getmany(timeout_ms=200))
        finally:
            await consumer.stop()
        return out

    async def read_to_end(self, topic: str, wait_s: float = 30.0) -> list[dict[str, Any]]:
        """Every record ``topic`` holds now: read from the beginning up to each
        partition's end offset as of this call.

        For a test that knows nothing more can come (the outbox drained, no timer, every
        event applied), this is the whole topic without waiting for a quiet spell, which
        could only guess when the last in-flight record had landed."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.kafka_bootstrap, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        out: list[dict[str, Any]] = []
        try:
            await consumer.topics()  # a metadata request: the topic's partitions
            known = consumer.partitions_for_topic(topic)
            assert known, f"no partitions known for {topic}"
            parts = [TopicPartition(topic, p) for p in sorted(known)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            end = await consumer.end_offsets(parts)
            deadline = time.monotonic() + wait_s
            while [tp for tp in parts if await consumer.position(tp) < end[tp]]:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{topic} not read to {end} in {wait_s}s")
                out += _decoded(await consumer.getmany(timeout_ms=200))
        finally:
            await consumer.stop()
        return out

    async def transitions(
        self, until: Callable[[list[dict[str, Any]]], bool], wait_s: float = 30.0
    ) -> list[dict[str, Any]]:
        return await self.read(self.settings().transitions_topic, until, wait_s)

    async def wait_applied(
        self,
        produced: Sequence[tuple[int, int]],
        wait_s: float = 60.0,
        namespace: str | None = None,
        check: Callable[[], None] | None = None,
    ) -> None:
        """Wait until Redis's committed offsets cover every produced (partition, offset);
        ``check`` runs on every poll (e.g. to fail at once if a worker died)."""
        last: dict[int, int] = {}
        for p, o in produced:
            last[p] = max(last.get(p, -1), o)
        store = self.store(**({"namespace": namespace} if namespace else {}))
        try:
            deadline = time.monotonic() + wait_s
            while True:
                if check is not None:
                    check()
                committed = await store.committed_offsets(last)
                if all(committed[p] >= o for p, o in last.items()):
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"not applied in {wait_s}s: {committed} < {last}")
                await asyncio.sleep(0.1)
        finally:
            await store.close()

    async def wait_group_committed(
        self, produced: Sequence[tuple[int, int]], wait_s: float = 60.0
    ) -> None:
        """Wait until the workers' consumer group has committed Kafka offsets past every
        produced (partition, offset): faust commits them on its own interval, so a test
        that needs them there waits for it rather than for a guess at the interval."""
        s = self.settings()
        last: dict[int, int] = {}
        for p, o in produced:
            last[p] = max(last.get(p, -1), o)
        # a consumer of the group that never subscribes: it only asks the coordinator
        # (aiokafka's admin client can't decode the embedded broker's OffsetFetch answer)
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.kafka_bootstrap, group_id=s.group_id, enable_auto_commit=False
        )
        await reader.start()
        try:
            deadline = time.monotonic() + wait_s
            while True:
                committed = {
                    p: await reader.committed(TopicPartition(s.purchases_topic, p)) for p in last
                }
                if all((committed[p] or 0) > o for p, o in last.items()):
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"group {s.group_id} committed {committed} in {wait_s}s, not past {last}"
                    )
                await asyncio.sleep(0.2)
        finally:
            await reader.stop()


def new_cluster(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: Any, label: str = "workers"
) -> Cluster:
    """A :class:`Cluster` of its own topics, group and namespace (a random suffix), its
    workers' logs under a fresh ``label-suffix`` directory; ``discard()`` it after."""
    suffix = uuid.uuid4().hex[:8]
    return Cluster(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        suffix=suffix,
        logdir=tmp_path_factory.mktemp(f"{label}-{suffix}"),
    )


@contextmanager
def isolated_cluster(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: Any, label: str = "workers"
) -> Iterator[Cluster]:
    """:func:`new_cluster`, its workers stopped when the block ends."""
    c = new_cluster(kafka_bootstrap, redis_url, tmp_path_factory, label)
    try:
        yield c
    finally:
        c.discard()


def history(customers: int, events: int, seed: int) -> list[dict[str, Any]]:
    """A seeded stream of purchases, 7 minutes apart, lognormal amounts."""
    rng = random.Random(seed)
    out = []
    for n in range(events):
        c = f"c{rng.randrange(customers):04d}"
        amount = f"{rng.lognormvariate(5.5, 0.8):.2f}"
        out.append(purchase(c, n, T0 + minutes(n * 7 + rng.randrange(5)), amount))
    return out


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def expected(events: Sequence[dict[str, Any]], settings: Settings) -> tuple[dict, list[dict]]:
    """States and transitions computed directly from the events by the pure engine.

    Events are applied in production order, which per customer is the partition order
    the worker sees (one key, one partition).
    """
    import orjson

    from schemas.events import parse_event
    from segments.rules import build_engine
    from stream.apply.encode import TransitionEncoder
    from stream.apply.messages import engine_event

    engine = build_engine(settings)
    states: dict = {}
    drafts = engine.apply_events(
        states, [engine_event(parse_event(orjson.dumps(e))) for e in events]
    ).transitions
    enc = TransitionEncoder(engine, settings.currency, "live")
    return states, [enc.to_dict(d, 0) for d in drafts]


def story(transitions: Sequence[dict[str, Any]]) -> dict[str, list[tuple[str, str, str, str]]]:
    """Per customer: the (from, to, cause, effective_at) sequence, the part that must match."""
    out: dict[str, list[tuple[str, str, str, str]]] = {}
    for t in transitions:
        out.setdefault(t["customer_id"], []).append(
            (t["from_segment"], t["to_segment"], t["cause"], t["effective_at"])
        )
    return out
