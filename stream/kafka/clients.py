"""The Kafka clients we create: the producer, the admin client for topic creation.

The producer is not idempotent and there are no Kafka transactions: the embedded
broker can't do InitProducerId (see DESIGN.md). Effectively-once lives in Redis; the
producer only has to deliver at least once, which ``acks=all`` + awaiting gives.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]  # aiokafka ships no py.typed
from aiokafka.admin import NewTopic  # type: ignore[import-untyped]  # aiokafka ships no py.typed
from aiokafka.errors import (  # type: ignore[import-untyped]  # aiokafka ships no py.typed
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAlreadyExistsError,
)

from schemas.settings import Settings
from stream.apply.dead_letter_json import (
    LETTER_MAX_BYTES,
    RECORD_KEY_MAX_BYTES,
)
from stream.kafka.security import kafka_admin, kafka_producer

__all__ = [
    "MAX_REQUEST_BYTES",
    "RECORD_REFUSED",
    "ensure_topics",
    "make_producer",
    "partitions_known_to",
    "topic_partitions",
]

log = logging.getLogger(__name__)


MAX_REQUEST_BYTES = 1024 * 1024
"""The producer's ``max_request_size`` (aiokafka's and Kafka's default, said here so the
dead-letter size limit can be checked against it)."""

assert LETTER_MAX_BYTES + RECORD_KEY_MAX_BYTES + 64 * 1024 <= MAX_REQUEST_BYTES, "letters fit"

RECORD_REFUSED = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
"""Errors that refuse one record for what it is (its size), not the topic or the broker:
retrying the same record can never succeed."""


def make_producer(settings: Settings) -> AIOKafkaProducer:
    """The producer of transitions and dead letters (with the security settings)."""
    return kafka_producer(
        settings,
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        max_batch_size=256 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
        request_timeout_ms=30_000,
    )


async def partitions_known_to(producer: AIOKafkaProducer, topic: str) -> int:
    """``topic``'s partition count in the metadata ``producer``'s client holds; KafkaError
    (retriable) while the topic has none yet."""
    found = (await producer.client.fetch_all_metadata()).partitions_for_topic(topic)
    if not found:
        raise KafkaError(f"topic {topic} has no partitions yet")
    return len(found)


async def topic_partitions(settings: Settings, timeout_s: float = 10.0) -> int | None:
    """The purchases topic's partition count, or ``None`` if Kafka can't say."""
    admin = kafka_admin(settings)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        described = await admin.describe_topics([settings.purchases_topic])
    except (KafkaError, OSError, TimeoutError) as exc:
        log.warning("could not read %s's partitions: %s", settings.purchases_topic, exc)
        return None
    finally:
        await admin.close()
    parts = described[0].get("partitions") if described else None
    return len(parts) if parts else None


async def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> None:
    """Create the purchases, transitions and DLQ topics if they don't exist yet."""
    admin = kafka_admin(settings)
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(t, num_partitions=settings.partitions, replication_factor=1)
            for t in (settings.purchases_topic, settings.transitions_topic, settings.dlq_topic)
            if t not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
            except KafkaError as exc:
                log.warning("could not create topics %s: %s", [t.name for t in wanted], exc)
            else:
                log.info("created topics %s", [t.name for t in wanted])
    finally:
        await admin.close()
