"""Issue #16: a real worker fed a hostile corpus interleaved with good events stays up,
applies every good event exactly once, and dead-letters every bad one with its class.

The hostile corpus (``tests.support.corpus.hostile_inputs``) includes the year-0001 purchase
that used to crash-loop every owner of its partition; the good events include hostile
but valid ones (a value padded to the message limit, a 120-byte unicode id, a +14:00
zone, the smallest and the largest amount, a resend of an event id). A bad one is keyed
by its customer id where it has one (on that customer's partition, as a POS would send
it), else unkeyed (on any partition), always among good ones.

(The first millisecond of 1970 is applied end to end in ``test_hostile_records.py``;
here its hourly flow count would be past ``RFM_MATRIX_RETENTION``, which the
effectively-once helper's recount doesn't model.)
"""

from __future__ import annotations

import asyncio
import base64
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas import load_settings
from schemas.errors import InvalidEvent
from schemas.times import to_ms
from stream.apply.validate import Validator
from tests.support.corpus import hostile_inputs
from tests.support.failkit import NO_TIMER, assert_alive, assert_effectively_once
from tests.support.harness import Cluster, history, purchase

pytestmark = pytest.mark.integration


def _good_but_odd(now: datetime) -> list[dict[str, Any]]:
    """Valid events at the edges of the contract."""
    far_east = timezone(timedelta(hours=14))
    return [
        purchase("顾" * 40, 1, now - timedelta(days=2), "1000000"),  # 120-byte id, max amount
        purchase("edge-cent", 1, now - timedelta(days=399), "0.01"),  # the flow tally's edge
        purchase("edge-zone", 1, now.astimezone(far_east).replace(microsecond=1), "12.30"),
        purchase("edge-fields", 1, now - timedelta(hours=1), channel="频" * 64, store_id="店-9"),
        purchase("edge-pad", 1, now - timedelta(hours=2)),  # sent padded to the size limit
    ]


def _key_of(raw: bytes) -> bytes | None:
    """The key a POS would give: the customer id if there is one to read (then the
    message lands on its customer's partition, as the year-0001 one did), else none."""
    try:
        customer = orjson.loads(raw).get("customer_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return customer.encode() if isinstance(customer, str) and customer else None


Where = tuple[int, int]
"""(partition, offset) of a produced record."""


async def _produce(cluster: Cluster, records: list[tuple[bytes | None, bytes]]) -> list[Where]:
    """Produce (key, value) records in this order; returns each one's (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=cluster.kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        topic = cluster.settings().purchases_topic
        futs = [await producer.send(topic, v, key=k) for k, v in records]
        return [(m.partition, m.offset) for m in await asyncio.gather(*futs)]
    finally:
        await producer.stop()


async def test_a_worker_fed_a_hostile_corpus_stays_up_and_applies_every_good_event(
    cluster: Cluster,
) -> None:
    settings = await cluster.ensure_topics(**NO_TIMER)
    worker = cluster.start_worker(**NO_TIMER)
    now = datetime.now(UTC).replace(microsecond=0)
    cases = hostile_inputs(now)
    good = history(customers=40, events=300, seed=16) + _good_but_odd(now)
    good.append(dict(good[5]))  # a resend of an event id: applied once

    # (key, value, index of the good event or None) in a seeded order; bad ones without
    # a customer id unkeyed, so they land on every partition among the good ones
    records: list[tuple[bytes | None, bytes, int | None]] = []
    for i, e in enumerate(good):
        value = orjson.dumps(e)
        if e["customer_id"] == "edge-pad":
            value += b" " * (settings.max_message_bytes - len(value))
        records.append((e["customer_id"].encode(), value, i))
    rng = random.Random(16)
    for case in cases:
        records.insert(rng.randrange(len(records) + 1), (_key_of(case.raw), case.raw, None))
    produced = await _produce(cluster, [(k, v) for k, v, _ in records])
    good_at = {i: w for (_, _, i), w in zip(records, produced, strict=True) if i is not None}
    bad_at = [w for (_, _, i), w in zip(records, produced, strict=True) if i is None]

    # every good event applied exactly once, transitions complete, the worker never down
    await assert_effectively_once(
        cluster, settings, good, [good_at[i] for i in range(len(good))], [worker], wait_s=120
    )
    await cluster.wait_applied(produced, check=lambda: assert_alive(worker))

    letters = await cluster.read(settings.dlq_topic, lambda xs: len(xs) >= len(cases))
    by_place = {(d["partition"], d["offset"]): d for d in letters}
    assert len(letters) == len(by_place) == len(cases), "a bad message lost or doubled"
    bad = [v for k, v, i in records if i is None]
    want = {c.raw: c for c in cases}
    for raw, place in zip(bad, bad_at, strict=True):
        case, d = want[raw], by_place[place]
        assert (d["error_class"], case.fragment in d["error_message"]) == (
            case.error_class,
            True,
        ), (case.name, d["error_message"][:300])
        assert base64.b64decode(d["value_b64"]) == raw

    assert_alive(worker)
    log = worker.text()
    assert log.count("claimed partitions") == 1, "the worker restarted or re-joined"
    assert "ProcessingError" not in log and "Traceback" not in log, log[-3000:]


def test_the_hostile_corpus_is_refused_alike_by_both_validation_paths() -> None:
    """Each case's class and wording, from the fast path's entry point too."""
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    v = Validator(load_settings())
    for case in hostile_inputs(now):
        assert v.fast(case.raw, to_ms(now)) is None, case.name
        with pytest.raises(InvalidEvent) as info:
            v.event(case.raw, to_ms(now))
        assert info.value.error_class == case.error_class, (case.name, info.value.message)
        assert case.fragment in info.value.message, (case.name, info.value.message)
