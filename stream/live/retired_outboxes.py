"""Publish what a promote left behind: transitions committed to a retired namespace's outbox.

A promote retires the namespace that served the name (:mod:`state.namespaces`). The
worker that notices publishes its owned partitions' old outboxes before it restarts
(``Runtime._switch``), but it may die meanwhile, or have lost a partition's claim on the
way: those transitions were committed, so they must still be published, and ``drop``
refuses the namespace until they are. So every worker serving the name also drains the
retired namespaces' outboxes of the partitions it owns, until each is empty, and then
forgets the namespace as retired. At least once, like the relay: a transition published
twice keeps its ``transition_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]  # aiokafka ships no type information

from state.keys import Keys
from state.namespaces import retire_done, retired
from state.store import RedisStore
from stream.apply.relay import OutboxRelay

__all__ = ["RetiredOutboxes"]

log = logging.getLogger(__name__)


class RetiredOutboxes:
    """The outboxes of the namespaces retired from serving ``name``."""

    def __init__(
        self, store: RedisStore, producer: AIOKafkaProducer, topic: str, name: str
    ) -> None:
        self.store = store
        self.producer = producer
        self.topic = topic
        self.name = name

    async def drain(self, partitions: Iterable[int]) -> bool:
        """Publish ``partitions``' share of every retired outbox; True once no retired
        namespace holds anything any more (nothing left to do for this name)."""
        client = await self.store.connect()
        prefix = self.store.keys.prefix
        owned = sorted(partitions)
        left = False
        for old in await retired(client, prefix, self.name):
            relay = OutboxRelay(
                RedisStore(client, Keys(prefix, old)), self.producer, self.topic, lambda: owned
            )
            published = sum([await relay.drain(p) for p in owned])
            if published:
                log.warning("published %d transitions left in retired namespace %r", published, old)
            if not await retire_done(client, prefix, self.name, old):
                left = True
        return not left
