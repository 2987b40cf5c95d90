"""``rfm-stream backfill``: rebuild state from the purchases topic, in event time, at speed.

It bypasses faust: a plain aiokafka consumer (no group) reads every partition from the
backfill namespace's committed offsets, and the same :class:`Processor` as the live
worker applies each partition's records in large batches (``batch`` records per
partition: one load, one engine fold and one commit per customer however many events
it has in the batch). Time is event time: each customer's decays before an event are
caught up at their own due times (the engine's timeline rule), a batch's customers are
advanced to the batch's latest event time (``Engine.replay``), and at the end every
partition's remaining decays fire at its watermark (the largest event time applied to
it) — the transitions a live timer would have fired, with the same ids.

- Writes go to a separate namespace (never the live one) under its own epochs, so a
  backfill is invisible to the live worker until promoted. It never publishes to the
  live purchases or dead-letter topics: misrouted records are staged for their home
  partition and applied there, once with any copy a live worker forwarded; dead letters
  go to ``<dlq>.backfill`` (:mod:`stream.backfill.forward`).
- Transitions carry ``mode=backfill`` and are only published if a topic is given
  (default: counted, not published). Nothing goes to the live transitions topic.
- Resumable: offsets commit with the state, so a killed backfill continues where its
  last commit ended, without redoing or doubling work.
- The range ends at the partitions' end offsets read at start (a partition stops once
  they are applied, even while live traffic keeps arriving); later events are the live
  worker's: after ``promote`` it resumes from the offsets recorded here.
- Parallel: ``jobs`` processes (default: one per CPU, at most one per partition) each
  read and apply a disjoint share of the partitions (:mod:`stream.backfill.jobs`); the
  result is the one-process result. The loop itself is :mod:`stream.backfill.reader`.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]  # aiokafka ships no type information

from schemas.errors import SettingsError
from schemas.settings import Settings
from state.layout import ensure_days_kept, ensure_layout, window_of
from state.namespaces import BUILD, BUILDING, BUILT, checked_name, refuse_claiming_served
from state.store import RedisStore
from stream.apply.calibrate import (
    finish_namespace,
    finished,
    mark_swept,
    needs_sweep,
    rank_namespace,
)
from stream.apply.relay import OutboxRelay
from stream.backfill.forward import ensure_backfill_dlq
from stream.backfill.jobs import JobsRead, JobsResult, run_jobs
from stream.backfill.progress import Progress
from stream.backfill.reader import (
    WATERMARK,
    Reading,
    claimed_elsewhere,
    few_collections,
    make_processor,
    read_partitions,
    verify_claims,
)
from stream.kafka.clients import ensure_topics, make_producer

__all__ = [
    "WATERMARK",
    "BackfillOptions",
    "BackfillReport",
    "backfill_topic",
    "default_jobs",
    "mark_build",
]

BIG_STEP = 10_000
"""Customers per step of the final decay pass and of the sweep after recalibration."""


@dataclass(frozen=True)
class BackfillOptions:
    namespace: str
    since_ms: int | None = None
    until_ms: int | None = None
    emit_topic: str | None = None
    batch: int = 50_000
    """Records per partition per applied batch (more: fewer loads and commits per
    customer, more memory)."""
    progress: bool = True
    jobs: int | None = None
    """Processes reading partitions side by side (None: :func:`default_jobs`); never
    more than there are partitions. 1: everything in this process."""


@dataclass
class BackfillReport:
    events: int
    transitions: int
    dead_letters: int
    seconds: float
    jobs: int = 1
    """Processes that read and applied the partitions (1: this one alone)."""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def default_jobs() -> int:
    """The CPUs this process may run on (a backfill is CPU-bound in Python)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


async def mark_build(store: RedisStore, partitions: list[int], value: str) -> None:
    """Say on every partition whether the backfill into the store's namespace is running
    or finished (:data:`state.namespaces.BUILD`: ``promote`` refuses an unfinished one)."""
    for p in partitions:
        await store.set_meta_field(p, BUILD, value)


def _check(settings: Settings, opts: BackfillOptions) -> None:
    checked_name(opts.namespace, "--into")
    if opts.namespace == settings.namespace:
        raise SettingsError(
            f"backfill namespace {opts.namespace!r} is the live namespace; "
            "backfill into another one and promote it"
        )
    if opts.emit_topic == settings.transitions_topic:
        raise SettingsError(
            f"--emit-topic {opts.emit_topic!r} is the live transitions topic; "
            "backfills never publish there"
        )
    if opts.emit_topic in (settings.purchases_topic, settings.dlq_topic):
        raise SettingsError(
            f"--emit-topic {opts.emit_topic!r} is the live purchases or dead-letter topic; "
            "backfills never publish there"
        )
    if opts.jobs is not None and opts.jobs < 1:
        raise SettingsError(f"--jobs must be at least 1 (got {opts.jobs})")


async def backfill_topic(settings: Settings, opts: BackfillOptions) -> BackfillReport:
    """Backfill ``opts.namespace`` from the purchases topic; returns what it did."""
    _check(settings, opts)
    # nothing competes with a backfill's final decay pass and sweep (the live worker rate-
    # limits both per tick): take customers in chunks of thousands, not one thousand
    chunk = max(BIG_STEP, settings.decay_batch, settings.sweep_batch)
    target = settings.model_copy(
        update={"namespace": opts.namespace, "decay_batch": chunk, "sweep_batch": chunk}
    )
    await ensure_topics(settings)
    await ensure_backfill_dlq(settings)  # its dead letters never go to the live DLQ
    store = RedisStore.from_settings(settings, opts.namespace)
    producer = make_producer(settings)
    await producer.start()
    try:
        client = await store.connect()
        await refuse_claiming_served(client, settings.key_prefix, opts.namespace, "backfill --into")
        with few_collections():
            return await _run(target, opts, store, producer)
    finally:
        await producer.stop()
        await store.close()


async def _partitions(producer: AIOKafkaProducer, topic: str) -> list[int]:
    partitions = sorted(await producer.partitions_for(topic))
    if not partitions:
        raise SettingsError(f"topic {topic!r} has no partitions")
    return partitions


async def _run(
    settings: Settings, opts: BackfillOptions, store: RedisStore, producer: AIOKafkaProducer
) -> BackfillReport:
    partitions = await _partitions(producer, settings.purchases_topic)
    # a namespace built for another partition count is refused (state.layout)
    await ensure_layout(store, settings.purchases_topic, len(partitions))
    await mark_build(store, partitions, BUILDING)  # promote refuses it until BUILT
    reading = Reading(opts.namespace, opts.batch, opts.since_ms, opts.until_ms, opts.emit_topic)
    processor = make_processor(settings, reading, store, producer, len(partitions))
    # what its customers keep: a worker promoted onto it checks its rules against this
    await ensure_days_kept(store, window_of(processor.engine.schemes), populated=False)
    jobs = min(opts.jobs or default_jobs(), len(partitions))
    progress = Progress(0) if opts.progress else None

    def on_todo(n: int) -> None:
        if progress is not None:
            progress.total += n

    def on_done(n: int) -> None:
        if progress is not None:
            progress.update(n)

    started = asyncio.get_running_loop().time()
    if jobs == 1:
        watermark = await read_partitions(
            settings, reading, processor, producer, partitions, on_todo, on_done
        )
        s = processor.stats
        # the watermarks include what a killed run applied: a resumed run finishes the
        # namespace at the same instant, even with nothing left to apply
        at_ms = max(watermark.values(), default=0)
        if s.events or not await finished(store, processor, partitions):
            await finish_namespace(settings, store, processor, partitions, at_ms)
        if opts.emit_topic:
            relay = OutboxRelay(store, producer, opts.emit_topic, processor.owned)
            for p in partitions:
                await relay.drain(p)
        done = JobsResult(
            s.events, s.transitions, sum(s.dead_letters.values()), list(processor.claims.values())
        )
    else:

        async def order(read: JobsRead) -> dict[str, object]:
            """Finish the namespace as one process would, the sweep left to the children."""
            at_ms = max(read.watermarks.values(), default=0)
            if not read.events and await finished(store, processor, partitions):
                return {"sweep": None, "cuts": None}
            if not needs_sweep(processor, at_ms):
                await mark_swept(store, processor, partitions)
                return {"sweep": None, "cuts": None}
            new = await rank_namespace(settings, store, processor, partitions, at_ms)
            return {"sweep": at_ms, "cuts": None if new is None else new.to_json()}

        done = await run_jobs(settings, reading, partitions, jobs, on_todo, on_done, order)
    await verify_claims(store, opts.namespace, done.claims)
    if len(done.claims) != len(partitions):  # one was fenced and dropped on the way
        claimed = {c.partition for c in done.claims}
        raise claimed_elsewhere(opts.namespace, min(set(partitions) - claimed))
    await mark_build(store, partitions, BUILT)
    if progress is not None:
        progress.finish()
    return BackfillReport(
        events=done.events,
        transitions=done.transitions,
        dead_letters=done.dead_letters,
        seconds=asyncio.get_running_loop().time() - started,
        jobs=jobs,
    )
