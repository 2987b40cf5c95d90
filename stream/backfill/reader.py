"""The backfill's read → apply loop over a set of partitions, and their final decay pass.

One process runs it over every partition (``--jobs 1``), or each child of a parallel
backfill (:mod:`stream.backfill.jobs`) over its share: everything here is per partition
(claims and epochs, offsets, watermarks, batches), so a share behaves exactly as those
partitions do in a one-process run.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from aiokafka import (  # type: ignore[import-untyped]  # aiokafka ships no type information
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRecord,
    TopicPartition,
)

from schemas.errors import BrokerUnavailable, SettingsError
from schemas.settings import Settings
from segments.rules import build_engine, load_checked_rules
from state.forwarded import FORWARDED, ForwardedStore
from state.store import Claim, RedisStore
from stream.apply.clock import WallClock
from stream.apply.messages import Msg
from stream.apply.processor import Processor
from stream.apply.relay import OutboxRelay
from stream.apply.routing import copy_id, forwarded_copy
from stream.backfill.forward import (
    BackfillOutputs,
    apply_forwarded,
    backfill_dlq_topic,
    reading_staged,
)
from stream.kafka.security import kafka_consumer

__all__ = [
    "END_LOOKUP_S",
    "WATERMARK",
    "Reading",
    "check_claims",
    "claimed_elsewhere",
    "few_collections",
    "make_processor",
    "read_partitions",
    "true_end_offsets",
    "verify_claims",
]

log = logging.getLogger(__name__)

WATERMARK = "watermark"
"""Meta field: the largest event time a backfill applied to the partition, raised by the
same atomic commit as the offsets it goes with (:meth:`RedisStore.track_watermark`)."""


@dataclass(frozen=True)
class Reading:
    """What to read and how: the part of ``BackfillOptions`` the loop needs."""

    namespace: str
    batch: int
    since_ms: int | None = None
    until_ms: int | None = None
    emit_topic: str | None = None


def make_consumer(settings: Settings) -> AIOKafkaConsumer:
    return kafka_consumer(
        settings,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )


def make_processor(
    settings: Settings,
    reading: Reading,
    store: RedisStore,
    producer: AIOKafkaProducer,
    partition_count: int,
) -> Processor:
    """The live worker's processor in backfill mode: event time, replay catch-up, and
    transitions only counted unless a topic to emit them to is given."""
    wall = WallClock()
    engine = build_engine(settings, load_checked_rules(settings))
    engine.replay = True  # each batch also fires its customers' decays up to its latest event
    processor = Processor(
        settings,
        store,
        engine,
        # never the live topics: dead letters to <dlq>.backfill, misrouted records staged
        # for their home partition in the namespace (stream.backfill.forward)
        BackfillOutputs(producer, backfill_dlq_topic(settings), ForwardedStore(store)),
        clock=wall,
        wall=wall,
        mode="backfill",
        emit=reading.emit_topic is not None,
        partition_count=partition_count,
        window=(reading.since_ms, reading.until_ms),
    )
    return processor


@contextlib.contextmanager
def few_collections() -> Iterator[None]:
    """Run the cyclic garbage collector rarely while the backfill runs.

    A batch makes hundreds of thousands of small containers (records, events, states'
    dicts and lists, drafts) that live until it commits; at the default threshold (a
    collection every 700 allocations) the collector re-traverses them over and over —
    measured at a third of the engine's time. Reference counting still frees everything
    acyclic at once; the collector still runs, 100 times less often.
    """
    before = gc.get_threshold()
    gc.set_threshold(70_000, before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def claimed_elsewhere(namespace: str, p: int) -> SettingsError:
    """The one error a backfill stops with when its claim on ``p`` was taken over."""
    return SettingsError(
        f"namespace {namespace!r} partition {p} was claimed by another "
        "process (a second backfill, or a promote): stopping"
    )


END_LOOKUP_S = 30
"""How long a backfill waits for a partition's last batch before it gives up (fails)."""


async def true_end_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], resume: dict[int, int]
) -> dict[TopicPartition, int]:
    """End offsets at the start, read off the last record itself; leaves each partition
    positioned at ``resume``.

    Some brokers (Tansu) answer ``end_offsets`` with the last *batch's* base offset + 1,
    so the records after it in that batch would look beyond the range; fetching from
    there gives the true end: the consumer's position once that fetch is done (past the
    last record, and past a transaction marker that ends the log on Kafka, where the
    reported end is already true). Every non-empty partition is looked up, wherever it
    resumes: a run killed after applying part of the last batch resumes at or past the
    reported end, with the rest still to apply. A partition whose end can't be read
    fails the backfill rather than end short.
    """
    end: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    start = await consumer.beginning_offsets(tps)
    # every partition in the same fetch round (one by one, each waits a broker round trip)
    pending = {tp for tp in tps if end[tp] > start[tp]}
    for tp in pending:
        consumer.seek(tp, end[tp] - 1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + END_LOOKUP_S
    while pending and loop.time() < deadline:
        await consumer.getmany(*pending, timeout_ms=500)
        for tp in list(pending):
            # the position moves past what was fetched, records or not: a log that ends
            # in a transaction marker (Kafka) returns no record from end - 1 at all
            position = await consumer.position(tp)
            if position >= end[tp]:
                end[tp] = position
                pending.discard(tp)
    if pending:
        which = ", ".join(str(tp.partition) for tp in sorted(pending))
        raise BrokerUnavailable(
            f"could not read to the end of partition(s) {which} in {END_LOOKUP_S} s"
        )
    for tp in tps:
        consumer.seek(tp, resume[tp.partition])
    return end


async def _each_partition(
    apply: Callable[[TopicPartition, list[ConsumerRecord]], Awaitable[None]],
    records: dict[TopicPartition, list[ConsumerRecord]],
) -> None:
    """``apply`` to each partition's records, concurrently across partitions.

    Each partition's batch still runs start to end on its own (decode, load, apply, one
    fenced commit, decays), and the next fetch waits for all of them, so the order of
    work within a partition is what a sequential loop does; what overlaps is one
    partition's CPU with another's Redis round trips. The first failure cancels the rest
    and is raised as itself (work cut short is redone on resume, like after a kill).
    """
    if len(records) <= 1:
        for tp, recs in records.items():
            await apply(tp, recs)
        return
    tasks = [asyncio.ensure_future(apply(tp, recs)) for tp, recs in records.items()]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _watermarks(store: RedisStore, partitions: list[int]) -> dict[int, int]:
    """Each partition's event-time watermark as a previous (killed) run left it, else 0.

    A resumed backfill reads only what was not committed, so without these the decays
    due up to the events a killed run applied would never fire at their watermark. The
    value moves in the same commit as the offsets: a kill can't leave one without the
    other (written after the commit, it once lagged the offsets and a resumed run fired
    the final decays at a stale, earlier watermark).
    """
    got = {p: await store.meta_field(p, WATERMARK) for p in partitions}
    return {p: int(v) if v else 0 for p, v in got.items()}


async def read_partitions(
    settings: Settings,
    reading: Reading,
    processor: Processor,
    producer: AIOKafkaProducer,
    partitions: list[int],
    on_todo: Callable[[int], None],
    on_done: Callable[[int], None],
    barrier: Callable[[], Awaitable[None]] | None = None,
) -> dict[int, int]:
    """Claim ``partitions``, apply them up to their end offsets at the start, then the
    misrouted records staged for them (:mod:`stream.backfill.forward`), then fire each
    one's remaining decays at its watermark; returns the watermarks.

    ``barrier``, if given, is awaited between the reading and the staged records: a
    parallel backfill's children wait there until every child has read (and so staged)
    everything, since a record's home may be another child's partition.

    ``on_todo`` is told once how many records the range holds, ``on_done`` how many
    each applied batch covered (the progress bar). Raises :func:`claimed_elsewhere`'s
    error as soon as a partition turns out to be claimed by another process.
    """
    topic, store = settings.purchases_topic, processor.store
    staging = ForwardedStore(store)
    tps = [TopicPartition(topic, p) for p in partitions]
    relay = (
        OutboxRelay(store, producer, reading.emit_topic, processor.owned)
        if reading.emit_topic
        else None
    )
    consumer = make_consumer(settings)
    await consumer.start()
    try:
        consumer.assign(tps)
        buffers: dict[TopicPartition, list[ConsumerRecord]] = {tp: [] for tp in tps}

        async def rewind(p: int, offset: int) -> None:
            tp = TopicPartition(topic, p)
            buffers[tp].clear()  # fetched from the old position
            consumer.seek(tp, offset)

        processor.guard.seek_with(rewind)
        store.track_watermark(WATERMARK)
        resume = await processor.assign(partitions)
        for tp in tps:
            consumer.seek(tp, resume[tp.partition])
        end = await true_end_offsets(consumer, tps, resume)
        on_todo(sum(max(0, end[tp] - resume[tp.partition]) for tp in tps))
        watermark = await _watermarks(store, partitions)
        # a partition is done once what it held at the start is applied; later records
        # are the live worker's (after a promote it resumes from the offsets recorded here)
        done = {tp for tp in tps if end[tp] <= resume[tp.partition]}
        idle = 0

        async def apply(tp: TopicPartition, recs: list[ConsumerRecord]) -> None:
            p = tp.partition
            msgs = [Msg(p, r.offset, r.key, r.value) for r in recs]
            # copies a live worker forwarded here: remembered before they are applied, so
            # their staged originals are skipped (stream.backfill.forward)
            await staging.mark_copies(
                p,
                [copy_id(r.key, r.value) for r in recs if r.headers and forwarded_copy(r.headers)],
            )
            await processor.process_partition(p, msgs)
            watermark[p] = max(watermark[p], store.watermarks.get(p, 0))  # its commit's
            if relay is not None:
                await relay.drain(p)
            if p not in processor.claims:
                raise claimed_elsewhere(reading.namespace, p)
            on_done(len(recs))
            applied = processor.applied_offset(p)
            if applied is not None and applied >= end[tp] - 1:
                done.add(tp)

        while len(done) < len(tps):
            if done:
                consumer.pause(*done)
            records = await consumer.getmany(timeout_ms=200, max_records=reading.batch)
            for tp, recs in records.items():
                buffers[tp].extend(recs)
            # a partition's batch is applied once it holds ``batch`` records or reaches the
            # end offset (or nothing more came): few, large batches, each one load and one
            # commit per customer however many events the customer has in it
            ready = {
                tp: buf
                for tp, buf in buffers.items()
                if buf
                and (not records or len(buf) >= reading.batch or buf[-1].offset >= end[tp] - 1)
            }
            for tp in ready:
                buffers[tp] = []
            await _each_partition(apply, ready)
            if records:
                idle = 0
                continue
            idle += 1
            if idle >= 50:  # 10 s of nothing below the end offsets: the range has a hole
                log.warning("no records for 10 s below end offsets %s; stopping", end)
                break
    finally:
        await consumer.stop()

    if barrier is not None:
        await barrier()

    async def forwarded(tp: TopicPartition, _: list[ConsumerRecord]) -> None:
        p = tp.partition
        await apply_forwarded(processor, staging, p, reading.batch)
        watermark[p] = max(watermark[p], store.watermarks.get(p, 0))  # its commit's

    # staged records commit their own position (FORWARDED): the watermark rides with it
    store.track_watermark(WATERMARK, position=FORWARDED)
    with reading_staged(processor):
        await _each_partition(forwarded, {tp: [] for tp in tps if tp.partition in processor.claims})

    # decays between events were caught up by each customer's next event; the rest, up
    # to each partition's watermark, fire now (the same due times, the same transitions)
    async def decays(tp: TopicPartition, _: list[ConsumerRecord]) -> None:
        await processor.run_due(tp.partition, watermark[tp.partition])

    await _each_partition(decays, {tp: [] for tp in tps if watermark[tp.partition] > 0})
    if relay is not None:
        for p in partitions:
            await relay.drain(p)
    check_claims(processor, reading.namespace, partitions)
    return watermark


async def verify_claims(store: RedisStore, namespace: str, claims: list[Claim]) -> None:
    """Raise :func:`claimed_elsewhere`'s error unless every partition's epoch in Redis is
    still the one claimed: the last word on whether anyone claimed one meanwhile (the
    decay pass and the sweep drop a fenced claim without raising; a parallel backfill's
    parent holds no claim of its own)."""
    for claim in sorted(claims, key=lambda c: c.partition):
        epoch, _offset, _moved = await store.meta(claim.partition)
        if epoch != claim.epoch:
            raise claimed_elsewhere(namespace, claim.partition)


def check_claims(processor: Processor, namespace: str, partitions: list[int]) -> None:
    """Raise :func:`claimed_elsewhere`'s error if a step found a partition taken over
    (the decay pass and the sweep drop a fenced claim without raising)."""
    for p in partitions:
        if p not in processor.claims:
            raise claimed_elsewhere(namespace, p)
