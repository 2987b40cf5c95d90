"""Issue #16 item 2 on the real stream: a message near the broker's limit never stalls its
partition, its dead letter carries a prefix, length and digest, and every bad message
gets exactly one dead letter (none published again by a retried batch)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from schemas.export import JSON_DIR
from state.forwarded import ForwardedStore
from stream.apply.encode import encode_dead_letter
from stream.backfill.forward import BackfillOutputs
from stream.demo.embedded import free_port
from stream.kafka.clients import make_producer
from stream.kafka.outputs import KafkaOutputs
from tests.support.failkit import CLAIM, wait_log
from tests.support.harness import Cluster, purchase
from tests.support.publishkit import (  # noqa: F401 - refusing_broker_fixture: a fixture
    Http,
    RefusingBroker,
    can_write,
    refusing_broker_fixture,
    until,
)

pytestmark = [pytest.mark.integration]


def big(size: int, fill: bytes) -> bytes:
    """A JSON-looking value of ``size`` bytes (large, so dead-lettered unparsed)."""
    head = b'{"event_id":"huge","pad":"'
    return head + fill * (size - len(head) - 2) + b'"}'


async def test_large_messages_are_dead_lettered_once_each_and_the_partition_goes_on(
    cluster: Cluster,
) -> None:
    settings = await cluster.ensure_topics(decay_timer="false")
    cluster.start_worker(decay_timer="false")
    now = datetime.now(UTC)
    huge, near_limit = big(900_000, b"a"), big(1_048_000, b"b")
    stream: list[dict | bytes] = []
    bad: list[bytes] = []
    for i in range(6):
        stream.append(purchase("c1", i, now, "20"))
        raw = [b"{not json", huge, json.dumps(purchase("c1", 100 + i, now, "-1")).encode()][i % 3]
        if i == 4:
            raw = near_limit
        stream.append(raw)
        bad.append(raw)
    stream.append(purchase("c1", 99, now, "20"))
    produced = await cluster.produce(stream, key=b"c1")  # all on c1's own partition

    # the partition advances past all of them: on the old code the batch with the huge
    # letter was retried forever and this timed out
    await cluster.wait_applied(produced, wait_s=90)
    # a letter is acknowledged before the offset that skips it is committed: every one
    # sent, a second copy too, is on the topic now
    letters = await cluster.read_to_end(settings.dlq_topic)

    assert len(letters) == len(bad)  # one letter per bad message, none sent twice
    validator = jsonschema.Draft202012Validator(
        json.loads((JSON_DIR / "dead-letter.json").read_text()),
        format_checker=jsonschema.FormatChecker(),
    )
    by_offset = {d["offset"]: d for d in letters}
    for raw, (_, offset) in zip(bad, produced[1::2], strict=True):
        d = by_offset[offset]
        validator.validate({k: v for k, v in d.items() if not k.startswith("_")})
        carried = base64.b64decode(d["value_b64"])
        assert d["value_length"] == len(raw)
        assert d["value_sha256"] == hashlib.sha256(raw).hexdigest()
        assert raw.startswith(carried)
        assert d["value_truncated"] == (len(raw) > 100_000)
        if d["value_truncated"]:
            assert d["error_class"] == "MessageTooLarge"
            assert len(carried) > 300_000  # a useful prefix, not an empty one
    # the good events around them were applied
    store = cluster.store()
    try:
        state = await store.get_state(produced[0][0], "c1")
    finally:
        await store.close()
    assert state.frequency == 7


async def test_a_retried_batch_does_not_publish_its_dead_letters_again(cluster: Cluster) -> None:
    """The DLQ publisher remembers what the broker acknowledged: when a batch fails after
    its dead letters went out (e.g. Redis refused the commit) and is retried, the retry's
    letters (same rejections, a later ``failed_at``) are not sent again."""

    settings = await cluster.ensure_topics()
    producer = make_producer(settings)
    await producer.start()
    outputs = KafkaOutputs(producer, settings.dlq_topic, settings.purchases_topic)
    try:

        def letters(failed_ms: int) -> list[tuple[bytes | None, bytes]]:
            return [
                (
                    b"k",
                    encode_dead_letter(
                        topic=settings.purchases_topic,
                        partition=1,
                        offset=o,
                        key=b"k",
                        value=b"{x",
                        error_class="MalformedJSON",
                        error_message="not JSON",
                        failed_ms=failed_ms,
                    ),
                )
                for o in range(5)
            ]

        await outputs.dead_letter(letters(1_796_000_000_000))
        await outputs.dead_letter(letters(1_796_000_005_000))  # the retry
    finally:
        await producer.stop()
    # both calls returned once the broker acknowledged what they sent: all is there
    got = await cluster.read_to_end(settings.dlq_topic)
    assert sorted(d["offset"] for d in got) == [0, 1, 2, 3, 4]
    assert outputs.dlq_failure is None


async def test_a_dead_letter_topic_that_refuses_writes_holds_the_partition_and_says_why(
    refusing_broker: RefusingBroker, redis_url: str, cluster_on: Any
) -> None:
    """Dead letters can't go anywhere (the DLQ topic refuses every write, as with an ACL
    denial): the partition waits at the bad message, retrying with a backoff, and
    ``/health`` says why; healed, the letter is published once and the partition goes on.
    """
    cluster: Cluster = cluster_on(refusing_broker.address, redis_url)
    port = free_port()
    opts = {"decay_timer": "false", "http_port": str(port)}
    settings = await cluster.ensure_topics(**opts)
    refusing_broker.refuse(settings.dlq_topic)
    assert not await can_write(refusing_broker.address, settings.dlq_topic)
    worker = cluster.start_worker(**opts)
    await wait_log(worker, CLAIM, wait_s=60)
    http = Http(port)
    now = datetime.now(UTC)
    produced = await cluster.produce(
        [purchase("c1", 1, now), b"{not json", purchase("c1", 2, now)], key=b"c1"
    )
    p, bad_offset = produced[1]

    async def failing() -> dict[str, Any] | None:
        status, body = await http.health()
        return body if status == 503 and body["dead_letter_error"] else None

    body = await until("health names the dead-letter failure", failing)
    assert "UnknownError" in body["dead_letter_error"], body
    store = cluster.store()
    try:
        assert (await store.committed_offsets([p]))[p] < bad_offset  # waits, skips nothing
    finally:
        await store.close()

    refusing_broker.heal(settings.dlq_topic)
    await cluster.wait_applied(produced, wait_s=60)
    letters = await cluster.read_to_end(settings.dlq_topic)  # acknowledged before the commit
    letters = [d for d in letters if d.get("transition_id") != "probe"]
    assert [(d["offset"], d["error_class"]) for d in letters] == [(bad_offset, "MalformedJSON")]

    async def healthy() -> bool:
        status, body = await http.health()
        return status == 200 and body["dead_letter_error"] is None

    await until("health back", healthy)


async def test_a_backfill_never_drops_a_letter_that_shares_a_staged_records_offset(
    cluster: Cluster,
) -> None:
    """A misrouted record the backfill staged is applied under its staging sequence number,
    which its dead letter names as the offset: it can equal a real record's offset in the
    same partition. Both letters reach the backfill's DLQ (none taken for the other)."""
    settings = await cluster.ensure_topics()
    topic = f"{settings.dlq_topic}.backfill-test"
    producer = make_producer(settings)
    await producer.start()
    store = cluster.store()
    outputs = BackfillOutputs(producer, topic, ForwardedStore(store))

    def letter(value: bytes) -> tuple[bytes | None, bytes]:
        return (
            b"k",
            encode_dead_letter(
                topic=settings.purchases_topic,
                partition=1,
                offset=5,
                key=b"k",
                value=value,
                error_class="MalformedJSON",
                error_message="not JSON",
                failed_ms=1_796_000_000_000,
            ),
        )

    try:
        await outputs.dead_letter([letter(b"{real record at offset 5")])
        await outputs.dead_letter([letter(b"{staged record number 5")])
    finally:
        await producer.stop()
        await store.close()
    got = await cluster.read(topic, lambda xs: len(xs) >= 2)
    assert sorted(base64.b64decode(d["value_b64"]) for d in got) == [
        b"{real record at offset 5",
        b"{staged record number 5",
    ]
