"""The outbox relay against a real Redis and a real broker: every entry published exactly
once when nothing fails, a drain that stops when told (its partition was revoked), and
shutdown's final drain never racing the relay's own drains."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2

from schemas.settings import load_settings
from state.store import RedisStore
from stream.apply.relay import OutboxRelay
from stream.kafka.clients import make_producer


async def fill(store: RedisStore, partition: int, n: int, start: int = 0) -> None:
    key = store.keys.outbox(partition)
    pipe = store.client.pipeline(transaction=False)
    for i in range(start, start + n):
        pipe.xadd(key, {"k": f"c{partition}-{i}", "d": orjson.dumps({"p": partition, "i": i})})
    await pipe.execute()


async def read_all(bootstrap: str, topic: str, expect: int, wait_s: float = 20.0) -> list[dict]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out: list[dict] = []
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and len(out) < expect:
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                out += [orjson.loads(m.value) for m in msgs]
        # anything more (a duplicate) would arrive within a few more fetches
        for _ in range(5):
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                out += [orjson.loads(m.value) for m in msgs]
    finally:
        await consumer.stop()
    return out


async def relay_on(kafka_bootstrap: str, redis_url: str, owned: set[int]) -> OutboxRelay:
    topic = f"relay-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    store = RedisStore.from_url(redis_url, "rfm", f"relay-{uuid.uuid4().hex[:8]}")
    await store.connect()
    producer = make_producer(load_settings(kafka_bootstrap=kafka_bootstrap))
    await producer.start()
    return OutboxRelay(store, producer, topic, lambda: sorted(owned), batch=100, poll_s=0.05)


async def close(relay: OutboxRelay) -> None:
    assert relay.producer is not None
    await relay.producer.stop()
    await relay.store.close()


async def test_run_then_shutdown_drain_publishes_every_entry_once(
    kafka_bootstrap: str, redis_url: str
) -> None:
    relay = await relay_on(kafka_bootstrap, redis_url, {0, 1})
    try:
        await fill(relay.store, 0, 700)
        await fill(relay.store, 1, 300)
        running = asyncio.ensure_future(relay.run())
        relay.wake(0)
        relay.wake(1)
        await asyncio.sleep(0.02)  # drains under way
        await fill(relay.store, 0, 200, 700)  # more arrives while they run
        relay.wake(0)
        await relay.drain_all()  # shutdown: must not publish what the drains publish
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        assert relay.published == 1200
        got = await read_all(kafka_bootstrap, relay.topic, 1200)
        keys = [(d["p"], d["i"]) for d in got]
        assert len(keys) == 1200
        assert len(set(keys)) == 1200
        assert [await relay.store.outbox_size(p) for p in (0, 1)] == [0, 0]
    finally:
        await close(relay)


async def test_a_drain_stops_between_steps_when_told(kafka_bootstrap: str, redis_url: str) -> None:
    relay = await relay_on(kafka_bootstrap, redis_url, {0})
    try:
        await fill(relay.store, 0, 350)
        steps = iter([False, True])
        assert await relay.drain(0, stop=lambda: next(steps)) == 100  # one step of 100
        assert await relay.store.outbox_size(0) == 250
    finally:
        await close(relay)


async def test_a_revoked_partition_is_left_to_its_new_owner(
    kafka_bootstrap: str, redis_url: str
) -> None:
    owned = {0}
    relay = await relay_on(kafka_bootstrap, redis_url, owned)
    relay.partitions = lambda: sorted(owned)
    try:
        await fill(relay.store, 0, 500)
        running = asyncio.ensure_future(relay.run())
        relay.wake(0)
        deadline = time.monotonic() + 10
        while relay.published == 0 and time.monotonic() < deadline:  # noqa: ASYNC110 - a counter, polled
            await asyncio.sleep(0)
        owned.clear()  # revoked after the drain's first step
        await asyncio.sleep(0.5)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        assert 0 < relay.published < 500
        assert await relay.store.outbox_size(0) == 500 - relay.published
    finally:
        await close(relay)


async def test_records_go_where_the_default_partitioner_sends_their_key_in_outbox_order(
    kafka_bootstrap: str, redis_url: str
) -> None:
    """The relay builds its record batches itself: each record must land on the partition
    aiokafka's own ``send`` would pick for its key, and one customer's transitions in the
    order they were committed."""
    relay = await relay_on(kafka_bootstrap, redis_url, {0})
    try:
        key = relay.store.keys.outbox(0)
        pipe = relay.store.client.pipeline(transaction=False)
        for i in range(600):
            pipe.xadd(key, {"k": f"cust-{i % 37}", "d": orjson.dumps({"c": i % 37, "i": i})})
        await pipe.execute()
        assert await relay.drain(0) == 600
        consumer = AIOKafkaConsumer(
            relay.topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        got: list[tuple[int, bytes, dict]] = []
        try:
            deadline = time.monotonic() + 20
            while len(got) < 600 and time.monotonic() < deadline:
                for msgs in (await consumer.getmany(timeout_ms=200)).values():
                    got += [(m.partition, m.key, orjson.loads(m.value)) for m in msgs]
        finally:
            await consumer.stop()
        assert len(got) == 600
        for part, k, _ in got:
            assert k is not None
            assert part == (murmur2(k) & 0x7FFFFFFF) % 2
        for c in range(37):
            mine = [d["i"] for _, k, d in got if d["c"] == c]
            assert mine == sorted(mine) and len(mine) == len(range(c, 600, 37))
    finally:
        await close(relay)
