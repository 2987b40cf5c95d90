"""A backfill never writes to the live topics, and counts every record once (issue #16 item 4).

The purchases topic holds what production leaves there: records at their customer's
partition, records an unkeyed producer put on another one (misrouted), copies of some of
those a live worker forwarded to the owning partition (marked ``rfm-forwarded`` by the
real ``KafkaOutputs.forward``), a copy whose original is gone (retention), and a record
that is not an event. The backfill, with one process and with two (a record's home
partition then belongs to the other child), must rebuild exactly the state of the set of
events, publish nothing to the live purchases or dead-letter topics, and put its dead
letter on ``<dlq>.backfill``. The dedupe window is set short, so a record applied twice
would show (the engine's event_id guard would not hide it).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from schemas.settings import Settings
from stream.apply.routing import partitioner
from stream.backfill.forward import backfill_dlq_topic
from stream.backfill.reader import make_consumer
from stream.backfill.run import BackfillOptions, backfill_topic
from stream.kafka.outputs import KafkaOutputs
from tests.integration.stream.backfill.test_backfill import comparable, states_of
from tests.support.harness import T0, Cluster, expected, purchase

pytestmark = pytest.mark.integration

KNOBS = {"dedupe_retention": "1h"}


def history() -> list[dict]:
    """12 customers, a purchase every 5 days each for 150 days, distinct amounts."""
    out = []
    for day in range(0, 150, 5):
        for c in range(12):
            n = day * 100 + c
            out.append(purchase(f"m{c:02d}", n, T0 + timedelta(days=day, hours=c), f"{n % 97 + 3}"))
    return out


async def ends(settings: Settings, topic: str) -> int:
    """Records in ``topic`` (sum of its partitions' end offsets)."""
    consumer = make_consumer(settings)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer.client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        return sum((await consumer.end_offsets(tps)).values()) if tps else 0
    finally:
        await consumer.stop()


async def lay_out_topic(settings: Settings) -> list[dict]:
    """Produce the topic described in the module docstring; returns the set of events."""
    events = history()
    home = partitioner(settings.partitioner)
    n = settings.partitions
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        live = KafkaOutputs(producer, settings.dlq_topic, settings.purchases_topic)
        for i, ev in enumerate(events):
            value, key = orjson.dumps(ev), ev["customer_id"].encode()
            h = home(key, n)
            if i % 7 == 3:  # copy only: its original was removed by retention
                await live.forward([(h, key, value)])
            elif i % 5 == 1:  # misrouted by an unkeyed producer
                await (await producer.send(settings.purchases_topic, value, partition=(h + 1) % n))
                if i % 2 == 0:  # ... and a live worker already forwarded a copy
                    await live.forward([(h, None, value)])
            else:
                await (await producer.send(settings.purchases_topic, value, key=key, partition=h))
        await (await producer.send(settings.purchases_topic, b"{not an event", partition=0))
    finally:
        await producer.stop()
    return events


@pytest.mark.parametrize("jobs", [1, 2])
async def test_misrouted_and_forwarded_records_count_once_and_nothing_goes_live(
    cluster: Cluster, jobs: int
) -> None:
    settings = await cluster.ensure_topics(**KNOBS)
    events = await lay_out_topic(settings)
    purchases_before = await ends(settings, settings.purchases_topic)
    dlq_before = await ends(settings, settings.dlq_topic)

    ns = f"mr{jobs}{cluster.suffix}"
    opts = BackfillOptions(namespace=ns, progress=False, jobs=jobs)
    report = await backfill_topic(settings, opts)

    want, _ = expected(events, settings)
    assert comparable(await states_of(cluster, ns)) == comparable(want)
    assert report.dead_letters == 1
    assert await ends(settings, settings.purchases_topic) == purchases_before
    assert await ends(settings, settings.dlq_topic) == dlq_before
    assert await ends(settings, backfill_dlq_topic(settings)) == 1

    again = await backfill_topic(settings, opts)  # a rerun applies nothing twice
    assert again.events == 0
    assert comparable(await states_of(cluster, ns)) == comparable(want)
    assert await ends(settings, settings.purchases_topic) == purchases_before


async def test_a_killed_backfill_resumes_without_doubling_staged_records(
    cluster: Cluster,
) -> None:
    """Killed after the records are read and staged but before all staged ones are
    applied: the rerun applies the rest, none twice."""
    settings = await cluster.ensure_topics(**KNOBS)
    events = await lay_out_topic(settings)
    ns = f"mk{cluster.suffix}"
    opts = BackfillOptions(namespace=ns, progress=False, jobs=1, batch=20)

    import stream.backfill.forward as bf

    real = bf.Processor.process_partition
    calls = 0

    async def dies_on_second_staged_batch(self: object, p: int, msgs: list) -> int | None:
        nonlocal calls
        if getattr(self, "position", "off") == bf.STAGED:
            calls += 1
            if calls == 2:
                raise asyncio.CancelledError  # the process dies here
        return await real(self, p, msgs)  # type: ignore[arg-type]  # passed through as received

    bf.Processor.process_partition = dies_on_second_staged_batch  # type: ignore[method-assign]  # patched for this test, restored after
    try:
        with pytest.raises(asyncio.CancelledError):
            await backfill_topic(settings, opts)
    finally:
        bf.Processor.process_partition = real  # type: ignore[method-assign]  # patched for this test, restored after
    assert calls >= 2, "never reached the staged records"
    store = cluster.store(namespace=ns)
    try:  # killed part-way: some staged records applied, not all
        applied = [await store.meta_field(p, bf.STAGED) for p in range(settings.partitions)]
    finally:
        await store.close()
    assert any(a is not None for a in applied), applied

    await backfill_topic(settings, opts)
    want, _ = expected(events, settings)
    assert comparable(await states_of(cluster, ns)) == comparable(want)
