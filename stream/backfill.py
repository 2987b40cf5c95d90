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
  backfill is invisible to the live worker until promoted.
- Transitions carry ``mode=backfill`` and are only published if a topic is given
  (default: counted, not published). Nothing goes to the live transitions topic.
- Resumable: offsets commit with the state, so a killed backfill continues where its
  last commit ended, without redoing or doubling work.
- The range ends at the partitions' end offsets read at start (a partition stops once
  they are applied, even while live traffic keeps arriving); later events are the live
  worker's: after ``promote`` it resumes from the offsets recorded here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.errors import SettingsError
from schemas.settings import Settings
from segments.rules import build_engine, load_checked_rules
from state.layout import ensure_layout
from state.store import RedisStore
from stream.calibrate import finish_namespace
from stream.clock import WallClock
from stream.kafka import KafkaOutputs, ensure_topics, make_producer
from stream.messages import Msg
from stream.processor import Processor
from stream.progress import Progress
from stream.relay import OutboxRelay

__all__ = ["BackfillOptions", "BackfillReport", "backfill_topic"]

log = logging.getLogger(__name__)

BIG_STEP = 10_000
"""Customers per step of the final decay pass and of the sweep after recalibration."""

WATERMARK = "watermark"
"""Meta field: the largest event time a backfill applied to the partition."""


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


@dataclass
class BackfillReport:
    events: int
    transitions: int
    dead_letters: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _check(settings: Settings, opts: BackfillOptions) -> None:
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
    store = RedisStore.from_url(
        settings.redis_url.get_secret_value(), settings.key_prefix, opts.namespace
    )
    producer = make_producer(settings.kafka_bootstrap)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await producer.start()
    await consumer.start()
    try:
        with _few_collections():
            return await _run(target, opts, store, producer, consumer)
    finally:
        await consumer.stop()
        await producer.stop()
        await store.close()


@contextlib.contextmanager
def _few_collections() -> Iterator[None]:
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


async def _true_end_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], resume: dict[int, int]
) -> dict[TopicPartition, int]:
    """End offsets at the start, read off the last record itself.

    Some brokers (Tansu) answer ``end_offsets`` with the last *batch's* base offset + 1,
    so the records after it in that batch would look beyond the range; fetching from
    there and taking the last offset returned gives the true end.
    """
    end = await consumer.end_offsets(tps)
    # every partition in the same fetch round (one by one, each waits a broker round trip)
    pending = {tp for tp in tps if end[tp] > resume[tp.partition]}
    for tp in pending:
        consumer.seek(tp, end[tp] - 1)
    deadline = asyncio.get_running_loop().time() + 5
    while pending and asyncio.get_running_loop().time() < deadline:
        got = await consumer.getmany(*pending, timeout_ms=500)
        for tp, recs in got.items():
            if recs:
                end[tp] = max(end[tp], max(r.offset for r in recs) + 1)
                pending.discard(tp)
    for tp in tps:
        consumer.seek(tp, resume[tp.partition])
    return end


async def _each_partition(
    apply: Callable[[TopicPartition, list], Awaitable[None]],
    records: dict[TopicPartition, list],
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
    due up to the events a killed run applied would never fire at their watermark.
    """
    got = {p: await store.meta_field(p, WATERMARK) for p in partitions}
    return {p: int(v) if v else 0 for p, v in got.items()}


async def _run_due(processor: Processor, p: int, at_ms: int) -> None:
    await processor.run_due(p, at_ms)


async def _run(
    settings: Settings,
    opts: BackfillOptions,
    store: RedisStore,
    producer: object,
    consumer: AIOKafkaConsumer,
) -> BackfillReport:
    topic = settings.purchases_topic
    partitions = sorted(consumer.partitions_for_topic(topic) or [])
    if not partitions:
        await consumer.client.force_metadata_update()
        partitions = sorted(consumer.partitions_for_topic(topic) or [])
    if not partitions:
        raise SettingsError(f"topic {topic!r} has no partitions")
    # a namespace built for another partition count is refused (state.layout)
    await ensure_layout(store, topic, len(partitions))
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    wall = WallClock()
    engine = build_engine(settings, load_checked_rules(settings))
    engine.replay = True  # each batch also fires its customers' decays up to its latest event
    processor = Processor(
        settings,
        store,
        engine,
        KafkaOutputs(producer, settings.dlq_topic, topic),  # type: ignore[arg-type]
        clock=wall,
        wall=wall,
        mode="backfill",
        emit=opts.emit_topic is not None,
    )
    processor.partition_count = len(partitions)
    processor.window = (opts.since_ms, opts.until_ms)
    relay = (
        OutboxRelay(store, producer, opts.emit_topic, processor.owned)  # type: ignore[arg-type]
        if opts.emit_topic
        else None
    )

    buffers: dict[TopicPartition, list] = {tp: [] for tp in tps}

    async def rewind(p: int, offset: int) -> None:
        tp = TopicPartition(topic, p)
        buffers[tp].clear()  # fetched from the old position
        consumer.seek(tp, offset)

    processor.rewind = rewind
    resume = await processor.assign(partitions)
    for tp in tps:
        consumer.seek(tp, resume[tp.partition])
    end = await _true_end_offsets(consumer, tps, resume)
    todo = {tp.partition: max(0, end[tp] - resume[tp.partition]) for tp in tps}
    progress = Progress(sum(todo.values())) if opts.progress else None
    watermark = await _watermarks(store, partitions)
    started = asyncio.get_running_loop().time()
    # a partition is done once what it held at the start is applied; later records are
    # the live worker's (after a promote it resumes from the offsets recorded here)
    done = {tp for tp in tps if end[tp] <= resume[tp.partition]}
    idle = 0

    async def apply(tp: TopicPartition, recs: list) -> None:
        p = tp.partition
        msgs = [Msg(p, r.offset, r.key, r.value) for r in recs]
        latest = await processor.process_partition(p, msgs)
        if latest is not None and latest > watermark[p]:
            watermark[p] = latest
            await store.set_meta_field(p, WATERMARK, str(latest))
        if relay is not None:
            await relay.drain(p)
        if p not in processor.claims:
            raise SettingsError(
                f"namespace {opts.namespace!r} partition {p} was claimed by another "
                "process (a second backfill, or a promote): stopping"
            )
        if progress is not None:
            progress.update(len(recs))
        applied = processor.applied_offset(p)
        if applied is not None and applied >= end[tp] - 1:
            done.add(tp)

    while len(done) < len(tps):
        if done:
            consumer.pause(*done)
        records = await consumer.getmany(timeout_ms=200, max_records=opts.batch)
        for tp, recs in records.items():
            buffers[tp].extend(recs)
        # a partition's batch is applied once it holds ``batch`` records or reaches the
        # end offset (or nothing more came): few, large batches, each one load and one
        # commit per customer however many events the customer has in it
        ready = {
            tp: buf
            for tp, buf in buffers.items()
            if buf and (not records or len(buf) >= opts.batch or buf[-1].offset >= end[tp] - 1)
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
    # decays between events were caught up by each customer's next event; the rest, up
    # to each partition's watermark, fire now (the same due times, the same transitions)
    await _each_partition(
        lambda tp, _: _run_due(processor, tp.partition, watermark[tp.partition]),
        {tp: [] for tp in tps if watermark[tp.partition] > 0},
    )
    at_ms = max(watermark.values()) if processor.stats.events else 0
    await finish_namespace(settings, store, processor, partitions, at_ms)
    if relay is not None:
        for p in partitions:
            await relay.drain(p)
    if progress is not None:
        progress.finish()
    s = processor.stats
    return BackfillReport(
        events=s.events,
        transitions=s.transitions,
        dead_letters=sum(s.dead_letters.values()),
        seconds=asyncio.get_running_loop().time() - started,
    )
