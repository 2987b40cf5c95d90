"""What the latency figures share: latencies of one run, and a reader that stamps arrivals.

Used by the paced latency runs (bench.bench_latency) and decay timeliness
(bench.decay_timeliness): both compare wall-clock stamps taken in this process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


@dataclass
class Lat:
    """Latencies (ms) of one paced run, and what was lost."""

    rate: int
    sent: int
    ms: list[float] = field(default_factory=list)
    before_emit: list[float] = field(default_factory=list)  # start -> emitted_at (worker)
    after_emit: list[float] = field(default_factory=list)  # emitted_at -> read (relay, broker)
    cpu_s: float | None = None  # the worker process's CPU seconds (user + system) meanwhile
    broker_cpu_s: float | None = None  # the broker's (Tansu) CPU seconds meanwhile

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
    # the broker alone at 1k/s on topics already holding this many one-record batches per
    # partition (what paced runs leave behind): how the broker's own cost grows with them
    broker_batches: list[tuple[int, Lat]] = field(default_factory=list)
    worker: list[Lat] = field(default_factory=list)  # on an established base (the headline)
    cold: list[Lat] = field(default_factory=list)  # on a namespace with no customers yet
    worker_again: Lat | None = None  # the first rate again, after the runs above
    base_customers: int = 0
    base_events: int = 0
    base_settle_s: float = 0.0  # the worker's catch-up on the history before the runs
    decay: Lat | None = None
    decay_customers: int = 0
    decay_expected: int = 0  # recency_decay transitions the due times bring (the engine's)
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


def iso_ms(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() * 1000
