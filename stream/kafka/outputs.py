"""The processor's outputs on Kafka: dead letters and forwarded events, published with the
worker's own producer (the live worker's; a backfill has its own, see
:mod:`stream.backfill.forward`)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]  # aiokafka ships no py.typed
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]  # aiokafka ships no py.typed

from stream.apply.dead_letter_json import letter_identity, minimal_letter, record_key
from stream.apply.routing import FORWARDED_HEADER, copy_id
from stream.kafka.clients import RECORD_REFUSED

__all__ = ["KafkaOutputs", "Letter"]

log = logging.getLogger(__name__)


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
