"""aiokafka plumbing we own: the producer, the dead-letter sink, topic creation.

The producer is not idempotent and there are no Kafka transactions: the embedded
broker can't do InitProducerId (see DESIGN.md). Effectively-once lives in Redis; the
producer only has to deliver at least once, which ``acks=all`` + awaiting gives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.settings import Settings
from stream.routing import FORWARDED_HEADER, copy_id

__all__ = ["KafkaOutputs", "ensure_topics", "make_producer", "topic_partitions"]

log = logging.getLogger(__name__)


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


class KafkaOutputs:
    """Dead letters and forwarded events, published with the worker's own producer."""

    def __init__(
        self, producer: AIOKafkaProducer | None, dlq_topic: str, purchases_topic: str
    ) -> None:
        self.producer = producer
        self.dlq_topic = dlq_topic
        self.purchases_topic = purchases_topic

    async def dead_letter(self, letters: Sequence[tuple[bytes | None, bytes]]) -> None:
        assert self.producer is not None, "publish before the runtime started"
        futures = [await self.producer.send(self.dlq_topic, value=v, key=k) for k, v in letters]
        await asyncio.gather(*futures)

    async def forward(self, msgs: Sequence[tuple[int, bytes | None, bytes | None]]) -> None:
        """Publish a copy of each misrouted record to its owning partition, marked as a
        copy (:data:`stream.routing.FORWARDED_HEADER`, with its copy id): a replay of the
        topic sees the original too, and applies the two once between them."""
        assert self.producer is not None, "publish before the runtime started"
        futures = [
            await self.producer.send(
                self.purchases_topic,
                value=v,
                key=k,
                partition=p,
                headers=[(FORWARDED_HEADER, copy_id(k, v).encode())],
            )
            for p, k, v in msgs
        ]
        await asyncio.gather(*futures)


async def topic_partitions(settings: Settings, timeout_s: float = 10.0) -> int | None:
    """The purchases topic's partition count, or ``None`` if Kafka can't say."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
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
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
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
