"""aiokafka plumbing we own: the producer, the dead-letter sink, topic creation.

The producer is not idempotent and there are no Kafka transactions: the embedded
broker can't do InitProducerId (see DESIGN.md). Effectively-once lives in Redis; the
producer only has to deliver at least once, which ``acks=all`` + awaiting gives.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
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
    letter_identity,
    minimal_letter,
    record_key,
)
from stream.apply.routing import FORWARDED_HEADER, copy_id

__all__ = [
    "MAX_REQUEST_BYTES",
    "RECORD_REFUSED",
    "KafkaOutputs",
    "ensure_topics",
    "make_producer",
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


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        max_batch_size=256 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
        request_timeout_ms=30_000,
    )


Letter = tuple[bytes | None, bytes]
"""(original key, dead-letter JSON)."""


class KafkaOutputs:
    """Dead letters and forwarded events, published with the worker's own producer.

    Dead letters are published at least once, and once per rejection as far as this
    process can tell: a letter the broker acknowledged is remembered (by source topic,
    partition, offset and error class) and not sent again when a failed batch is retried.
    A letter refused for its size is sent again alone, then in its minimal form
    (:func:`stream.apply.dead_letter_json.minimal_letter`); if the broker refuses even that, it is
    logged whole at ERROR and counted (:attr:`unpublished`) instead of stalling the
    partition. Any other failure (the DLQ topic missing or not writable, the broker
    away) is raised, so the batch is retried with backoff, and kept in
    :attr:`dlq_failure` (shown by ``/health``) until a dead letter gets through.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer | None,
        dlq_topic: str,
        purchases_topic: str,
        remember: int = 65_536,
    ) -> None:
        self.producer = producer
        self.dlq_topic = dlq_topic
        self.purchases_topic = purchases_topic
        self.dlq_failure: str | None = None
        """Why dead letters can't be published right now (None: they can)."""
        self.unpublished = 0
        """Dead letters the broker refused even in their minimal form (each logged)."""
        self._remember = remember
        self._delivered: OrderedDict[tuple[str, int, int, str], None] = OrderedDict()

    async def dead_letter(self, letters: Sequence[Letter]) -> None:
        assert self.producer is not None, "publish before the runtime started"
        todo = [(letter_identity(v), k, v) for k, v in letters]
        todo = [t for t in todo if t[0] not in self._delivered]
        results = await self._send_all([(k, v) for _, k, v in todo])
        failure: BaseException | None = None
        for (identity, key, value), error in zip(todo, results, strict=True):
            if error is not None and isinstance(error, RECORD_REFUSED):
                error = await self._refused(key, value, error)
            if error is None:
                self._delivered[identity] = None
                if len(self._delivered) > self._remember:
                    self._delivered.popitem(last=False)
            elif failure is None:
                failure = error
        if failure is not None:
            self.dlq_failure = f"{type(failure).__name__}: {failure}"
            raise failure
        if todo:
            self.dlq_failure = None

    async def _send_all(self, letters: Sequence[Letter]) -> list[BaseException | None]:
        """Send every letter, wait for every acknowledgement; each one's error or None.

        Never stops at the first failure: the letters already sent must be known
        delivered (or not) before anything is retried, or a retry sends them twice.
        """
        assert self.producer is not None
        outcomes: list[BaseException | asyncio.Future[Any]] = []
        for key, value in letters:
            try:
                outcomes.append(
                    await self.producer.send(self.dlq_topic, value=value, key=record_key(key))
                )
            except KafkaError as exc:  # refused before sending (e.g. larger than a request)
                outcomes.append(exc)
        futures = [o for o in outcomes if isinstance(o, asyncio.Future)]
        acked = iter(await asyncio.gather(*futures, return_exceptions=True))
        out: list[BaseException | None] = []
        for o in outcomes:
            if isinstance(o, asyncio.Future):
                result = next(acked)
                out.append(result if isinstance(result, BaseException) else None)
            else:
                out.append(o)
        return out

    async def _refused(
        self, key: bytes | None, value: bytes, error: BaseException
    ) -> BaseException | None:
        """A letter refused for its size: alone, then minimal, then logged. None: handled."""
        for attempt in (value, minimal_letter(value)):
            (error_now,) = await self._send_all([(key, attempt)])
            if error_now is None:
                if attempt is not value:
                    log.warning(
                        "dead letter refused (%s); published without the original bytes", error
                    )
                return None
            if not isinstance(error_now, RECORD_REFUSED):
                return error_now
            error = error_now
        self.unpublished += 1
        log.error(
            "the broker refuses even the minimal dead letter (%s); not published: %s",
            error,
            minimal_letter(value).decode(),
        )
        return None

    async def forward(self, msgs: Sequence[tuple[int, bytes | None, bytes | None]]) -> None:
        """Publish a copy of each misrouted record to its owning partition, marked as a
        copy (:data:`stream.apply.routing.FORWARDED_HEADER`, with its copy id): a replay of the
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
