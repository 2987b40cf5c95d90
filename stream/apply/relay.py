"""Outbox relay: committed transitions → the transitions topic, at least once.

Entries are deleted from the outbox only after the broker acknowledged them, so a
crash in between re-publishes them with the same ``transition_id`` (consumers
dedupe), and none is ever lost. Keyed by customer id: one customer's transitions
stay in order on one partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]  # aiokafka ships no type information

from state.connection import misconfiguration
from state.store import RedisStore
from stream.apply.retry import backoff_delay
from stream.apply.routing import partitioner
from stream.apply.side_by_side import all_of

__all__ = ["DrainFailure", "OutboxRelay"]

log = logging.getLogger(__name__)

_ROUTE = partitioner("murmur2")
"""Key → partition of the transitions topic: aiokafka's default, memoised."""


@dataclass(slots=True)
class DrainFailure:
    """A partition whose publishing fails: why, since when, and when to try again."""

    error: str
    failures: int
    since: float
    retry_at: float


class OutboxRelay:
    def __init__(
        self,
        store: RedisStore,
        producer: AIOKafkaProducer | None,
        topic: str,
        partitions: Callable[[], Iterable[int]],
        batch: int = 1000,
        poll_s: float = 0.2,
    ) -> None:
        self.store = store
        self.producer = producer
        self.topic = topic
        self.partitions = partitions
        self.batch = batch
        self.poll_s = poll_s
        self.published = 0
        self.failing: dict[int, DrainFailure] = {}
        """Partitions whose last drain failed (retried after a backoff; see :meth:`run`)."""
        self._wake = asyncio.Event()
        self._dirty: set[int] = set()
        self._tasks: dict[int, asyncio.Future[None]] = {}
        self._again: set[int] = set()
        self._closing = False
        self._running = False

    def use_producer(self, producer: AIOKafkaProducer) -> None:
        """Publish with ``producer`` from now on. aiokafka objects need a running loop, so
        the live runtime makes its producer when it starts, after this relay exists."""
        self.producer = producer

    def wake(self, partition: int | None = None) -> None:
        """A commit wrote transitions to ``partition``'s outbox (None: look at all).

        While :meth:`run` runs, the partition's drain starts (or is told to go once more)
        right here, not on the run loop's next turn: on a busy event loop each turn waits
        behind every ready callback, and that wait is part of every transition's latency.
        A partition whose drain failed waits for its backoff (:meth:`run` restarts it).
        """
        if partition is not None and self._running and not self._closing:
            task = self._tasks.get(partition)
            if (task is None or not task.done()) and self._due(partition):
                self._start(partition)
                return
        self._dirty.add(-1 if partition is None else partition)
        self._wake.set()

    async def run(self) -> None:
        """Drain the outboxes commits just wrote to when woken; every ``poll_s``, all
        owned ones (what a crashed predecessor left behind, and failed drains whose
        backoff is over).

        Each partition drains in a task of its own: a partition whose outbox keeps
        filling must not hold back another's publishing (a drain runs until its outbox is
        empty, and a busy partition's rarely is). A drain that fails (Redis or Kafka
        unavailable, the topic refusing writes) fails for its partition only: it is
        logged, kept in :attr:`failing` and retried after a backoff, while the other
        partitions' drains go on. Never cancelling them matters: a drain cancelled
        between its publish and its delete publishes the same entries again.
        """
        self._running = True
        try:
            while True:
                woken = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
                    woken = True
                self._wake.clear()
                dirty, self._dirty = self._dirty, set()
                owned = set(self.partitions())
                for p in set(self.failing) - owned:  # revoked: its new owner's concern now
                    del self.failing[p]
                if self._closing:
                    continue
                for p, task in list(self._tasks.items()):
                    if task.done():
                        del self._tasks[p]
                        self._settle(p, task)
                # failing partitions are looked at on every turn: a busy relay is woken
                # far more often than every poll_s, and nothing else wakes a partition
                # that commits nothing (paused by back-pressure, or idle)
                todo = owned if not woken or -1 in dirty else (dirty | set(self.failing)) & owned
                for p in sorted(todo):
                    if self._due(p):
                        self._start(p)
                    else:
                        self._dirty.add(p)
        finally:
            self._running = False
            tasks, self._tasks = list(self._tasks.values()), {}
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _due(self, p: int) -> bool:
        """``p`` may drain now: it isn't failing, or its backoff is over."""
        failure = self.failing.get(p)
        return failure is None or time.monotonic() >= failure.retry_at

    def _settle(self, p: int, task: asyncio.Future[None]) -> None:
        """Record how ``p``'s finished drain went: clear its failure, or note one more."""
        exc = None if task.cancelled() else task.exception()
        if exc is None:
            self._recovered(p)
            return
        if misconfiguration(exc) is not None:  # an ACL refusal (NOPERM): no backoff helps
            raise exc  # the worker ends with one line (Runtime.crash)
        failure = self.failing.get(p)
        now = time.monotonic()
        n = 1 if failure is None else failure.failures + 1
        delay = backoff_delay(n)
        self.failing[p] = DrainFailure(
            f"{type(exc).__name__}: {exc}",
            n,
            now if failure is None else failure.since,
            now + delay,
        )
        if failure is None or n % 20 == 0:
            log.warning(
                "partition %d: publishing transitions failed %d time(s) (%s: %s); retrying "
                "in %.1fs, the other partitions go on",
                p,
                n,
                type(exc).__name__,
                exc,
                delay,
            )

    def _start(self, p: int) -> None:
        """Drain ``p`` now, or once more after the drain already running for it."""
        task = self._tasks.get(p)
        if task is not None and not task.done():
            self._again.add(p)
            return
        if task is not None:
            self._settle(p, task)
        self._tasks[p] = asyncio.ensure_future(self._drain_until_quiet(p))

    def _recovered(self, p: int) -> None:
        """``p``'s outbox drained without failing: it is no longer failing (said at once,
        not on the run loop's next turn: ``/health`` reads it)."""
        if self.failing.pop(p, None) is not None:
            log.warning("partition %d: publishing transitions again", p)

    async def _drain_until_quiet(self, p: int) -> None:
        def lost() -> bool:  # revoked (its new owner publishes it now) or shutting down
            return self._closing or p not in set(self.partitions())

        while True:
            await self.drain(p, stop=lost)
            self._recovered(p)
            if p not in self._again or lost():
                return
            self._again.discard(p)

    async def drain_all(self) -> int:
        """For shutdown: let the running drains finish their current step and stop, then
        drain every owned outbox once more (never two drains of one outbox at a time:
        both would publish the same entries)."""
        self._closing = True
        running = [t for t in self._tasks.values() if not t.done()]
        await asyncio.gather(*running, return_exceptions=True)
        return await self._drain_each(list(self.partitions()))

    async def _drain_each(self, partitions: list[int]) -> int:
        """Drain ``partitions`` side by side (one after the other, a commit on the last
        partition waited for every other outbox's read, produce and delete)."""
        return sum(await all_of(self.drain(p) for p in partitions))

    async def _publish(
        self, rows: list[tuple[str, str, bytes]]
    ) -> tuple[list[str], BaseException | None]:
        """Publish ``rows`` (keyed by customer id) and wait for the broker's answer to all
        of them: the entry ids it acknowledged, and its first failure (None: none).

        One record batch per topic partition, built here: aiokafka's per-record ``send``
        (a future, the partitioner and the accumulator for every record) was most of the
        relay's CPU, and the relay is what a burst of transitions queues behind. The
        partition is the one ``send`` would have picked (murmur2 of the key, as Java and
        aiokafka producers do), so a customer's transitions stay on one partition, in order.
        """
        producer = self.producer
        assert producer is not None, "drain before the runtime started"
        count = len(await producer.partitions_for(self.topic))
        by_partition: dict[int, list[tuple[str, bytes, bytes]]] = {}
        for entry_id, customer, payload in rows:
            key = customer.encode()
            by_partition.setdefault(_ROUTE(key, count), []).append((entry_id, key, payload))
        futures: list[asyncio.Future[object]] = []
        sent: list[list[str]] = []  # the entry ids in each future's batch
        for part, records in by_partition.items():
            batch = producer.create_batch()
            ids: list[str] = []
            for entry_id, key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full
                    futures.append(await producer.send_batch(batch, self.topic, partition=part))
                    sent.append(ids)
                    batch, ids = producer.create_batch(), []
                    # a fresh batch takes any one record, however large (one the broker
                    # refuses fails the drain, which is retried: as with send())
                    batch.append(key=key, value=value, timestamp=None)
                ids.append(entry_id)
            if batch.record_count():
                futures.append(await producer.send_batch(batch, self.topic, partition=part))
                sent.append(ids)
        answers = await asyncio.gather(*futures, return_exceptions=True)
        acked = [i for ids, a in zip(sent, answers, strict=True) if not _failed(a) for i in ids]
        return acked, next((a for a in answers if isinstance(a, BaseException)), None)

    async def drain(self, partition: int, stop: Callable[[], bool] | None = None) -> int:
        """Publish ``partition``'s outbox until it is empty (or ``stop()`` says so).

        Entries are deleted once the broker acknowledged them; when only some of a
        step's record batches were acknowledged, those are deleted before the failure is
        raised, so the retry publishes only the rest.
        """
        n = 0
        while stop is None or not stop():
            rows = await self.store.outbox_read(partition, self.batch)
            if not rows:
                return n
            acked, error = await self._publish(rows)
            await self._acked(partition, acked)
            if error is not None:
                raise error
            n += len(acked)
        return n

    async def _acked(self, partition: int, entry_ids: list[str]) -> None:
        await self.store.outbox_ack(partition, entry_ids)
        self.published += len(entry_ids)


def _failed(answer: object) -> bool:
    return isinstance(answer, BaseException)
