"""The worker's start-up sequence: everything it checks and prepares before it consumes.

Kept apart from the runtime (:mod:`stream.live.runtime`) so the order of start-up is
read in one place, apart from what the worker does once it runs: reach Redis, refuse a
Redis or namespace it must not run on (:mod:`stream.live.redis_checks`,
:mod:`stream.live.days_kept`), resolve the namespace served under our name, make the
topics and the worker's own producer, read the partition count, and make the cut points
of these rules. A Redis or broker that is down is waited for (retried with backoff); a
Redis refusing us (login, TLS, ACL, eviction, layout, days kept) is one line and exit 2.
"""

from __future__ import annotations

import logging
from typing import Protocol

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]  # aiokafka ships no type information

from schemas.settings import Settings
from state.keys import Keys
from state.layout import WindowsNotKept
from state.store import RedisStore
from stream.apply.calibrate import Calibrator
from stream.apply.processor import Processor
from stream.apply.relay import OutboxRelay
from stream.apply.retry import with_backoff
from stream.kafka.clients import ensure_topics, make_producer, partitions_known_to
from stream.kafka.outputs import KafkaOutputs
from stream.live.days_kept import check_days_kept
from stream.live.redis_checks import (
    check_eviction,
    check_layout,
    check_listpack,
    exit_with,
    fatal_if_misconfigured,
)

__all__ = ["StartupHost", "start_up"]

log = logging.getLogger(__name__)


class StartupHost(Protocol):
    """What start-up needs of the runtime: its parts, and where the producer it makes goes."""

    producer: AIOKafkaProducer | None
    """Set as soon as it exists, so the runtime's stop closes it even if start-up fails."""

    @property
    def retriable(self) -> tuple[type[BaseException], ...]:
        """What a retry with backoff waits out (Redis or Kafka unavailable)."""
        ...

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> RedisStore: ...

    @property
    def processor(self) -> Processor: ...

    @property
    def calibrator(self) -> Calibrator: ...

    @property
    def relay(self) -> OutboxRelay: ...

    @property
    def outputs(self) -> KafkaOutputs: ...


async def start_up(host: StartupHost) -> None:
    """Check and prepare everything ``host`` needs before it consumes, in order."""
    retriable = host.retriable
    # Redis down: waited for; Redis refusing us (login, TLS, ACL): one line, exit 2
    await fatal_if_misconfigured(with_backoff("connect to redis", host.store.ping, retriable))
    allowed = host.settings.allow_eviction
    await fatal_if_misconfigured(
        with_backoff(
            "check eviction policy", lambda: check_eviction(host.store, allowed), retriable
        )
    )
    await fatal_if_misconfigured(check_listpack(host.store))
    await fatal_if_misconfigured(
        with_backoff("resolve namespace", lambda: _resolve(host), retriable)
    )
    await with_backoff("create topics", lambda: ensure_topics(host.settings), retriable)
    host.producer = make_producer(host.settings)
    await with_backoff("start producer", host.producer.start, retriable)
    host.relay.use_producer(host.producer)
    host.outputs.producer = host.producer  # KafkaOutputs (stream.kafka) has no method yet
    await with_backoff("read topic metadata", lambda: _read_partition_count(host), retriable)
    topic, n = host.settings.purchases_topic, host.processor.partition_count
    assert n is not None
    await fatal_if_misconfigured(
        with_backoff(
            "check namespace layout", lambda: check_layout(host.store, topic, n), retriable
        )
    )
    await with_backoff("check purchase days kept", lambda: _check_days_kept(host), retriable)
    # nothing is consumed before the cut points in force were made for these rules
    await with_backoff(
        "cut points for these rules", lambda: _prepare_cut_points(host, n), retriable
    )


async def _check_days_kept(host: StartupHost) -> None:
    """Rules with a longer window than the customers kept: one line, exit 2 (the CLI
    checked before faust started when Redis could answer; this is the backstop)."""
    n = host.processor.partition_count or host.settings.partitions
    try:
        await check_days_kept(host.settings, host.store, host.processor.engine, n)
    except WindowsNotKept as exc:
        exit_with(str(exc))


async def _prepare_cut_points(host: StartupHost, partitions: int) -> None:
    """A rules change's first cut points, from every customer, before any event is
    applied (:mod:`stream.apply.rules_change`); the engine then uses them."""
    await host.calibrator.prepare(range(partitions))


async def _resolve(host: StartupHost) -> None:
    s = host.settings
    physical = await host.store.serving(s.namespace)
    host.store.keys = Keys(s.key_prefix, physical)
    log.info("serving namespace %r from %r", s.namespace, physical)


async def _read_partition_count(host: StartupHost) -> None:
    assert host.producer is not None
    topic = host.settings.purchases_topic
    host.processor.set_partition_count(await partitions_known_to(host.producer, topic))
