"""The live worker's runtime: the Redis store, its own producer, the outbox relay and the
decay timer around the :class:`Processor`, fed a fetch at a time by the faust app
(:mod:`stream.live.faust_app`, which also holds the rebalance contract).

The worker never raises on bad input: invalid input becomes dead letters, an
unavailable Redis is retried with backoff (the batches stop meanwhile), a fenced batch
is dropped (the new owner re-reads it from the committed offset).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Set
from typing import Any

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]  # aiokafka ships no type information
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]  # aiokafka ships no type information
from mode import Service
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from schemas.errors import Moved, StoreUnavailable
from schemas.settings import Settings
from segments.engine import Engine
from segments.rules import build_engine, load_checked_rules
from state.store import RedisStore
from stream.api.lookup import Lookup
from stream.api.metrics import render_metrics
from stream.api.server import HttpServer
from stream.apply.calibrate import Calibrator
from stream.apply.clock import Clock, WallClock
from stream.apply.messages import Msg
from stream.apply.position import fence_metrics
from stream.apply.processor import Processor
from stream.apply.relay import OutboxRelay
from stream.apply.retry import with_backoff
from stream.apply.side_by_side import all_of
from stream.apply.stats import EventRate, quiet_gc
from stream.kafka.outputs import KafkaOutputs
from stream.live.backpressure import (
    CHECK_INTERVAL_S,
    OutboxWatch,
    PausePolicy,
    dead_letter_metrics,
    publishing_gauges,
    publishing_health,
)
from stream.live.consumer import ConsumerControls, consumer_lag
from stream.live.delivery import Backlog
from stream.live.redis_checks import exit_if_misconfigured, exit_with
from stream.live.redis_status import RedisStatus
from stream.live.restart import restart_in_place
from stream.live.retired_outboxes import RetiredOutboxes
from stream.live.startup import start_up

__all__ = ["Runtime"]

log = logging.getLogger(__name__)

# redis-py's connection errors are not OSErrors; the store wraps them, this is the backstop
_RETRIABLE = (StoreUnavailable, KafkaError, OSError, RedisConnectionError, RedisTimeoutError)


class Runtime(Service):
    """Redis store, own producer, outbox relay and decay timer of one worker process."""

    retriable = _RETRIABLE
    """What a retry with backoff waits out (Redis or Kafka unavailable)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        engine: Engine | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.store = RedisStore.from_settings(settings)
        # aiokafka objects need a running loop: the producer is made in on_start and
        # handed to the relay and the dead-letter sink there.
        self.producer: AIOKafkaProducer | None = None
        self.relay = OutboxRelay(
            self.store, None, settings.transitions_topic, lambda: self.processor.owned()
        )
        self.outputs = KafkaOutputs(None, settings.dlq_topic, settings.purchases_topic)
        wall = WallClock()
        self.rules = load_checked_rules(settings)
        self.processor = Processor(
            settings,
            self.store,
            engine or build_engine(settings, self.rules),
            self.outputs,
            clock=clock or wall,
            wall=wall,
            on_commit=self.relay.wake,
        )
        self.calibrator = Calibrator(settings, self.store, self.processor, self.rules)
        self.outboxes = OutboxWatch(
            self.store, lambda: self.processor.owned(), PausePolicy(settings.outbox_max)
        )
        """Outbox lengths and the back-pressure they call for (its flow: the consumer's)."""
        self.ready = asyncio.Event()
        self.redis = RedisStatus()
        """Up, down or refusing writes (and why): what the retried steps last met."""
        self.lookup = Lookup(
            settings,
            self.store,
            lambda: self.processor.engine,
            lambda: self.processor.partition_count or settings.partitions,
            wall.now_ms,
        )
        self.http = HttpServer(
            settings.http_port,
            self.metrics,
            self.health,
            self.lookup,
            host=settings.http_host,
            token=settings.http_token,
            max_days=settings.http_max_days,
            on_bind_error=exit_with,
        )
        self.consumer: ConsumerControls | None = None
        """The consumer's acks, high watermarks, seeks and flow (given by :meth:`attach`)."""
        self.gauges: dict[str, dict[int, float]] = {}
        self._rate = EventRate()
        self.backlog = Backlog(4 * settings.batch_max)
        """Fetched records waiting for the processor (filled by :mod:`stream.live.delivery`)."""

    def attach(self, consumer: ConsumerControls) -> None:
        """Work with ``consumer`` from now on: ack its batches, read its high watermarks,
        rewind it where Redis's position is behind, pause it for back-pressure. Given once
        faust's app exists, which is made after the runtime (:mod:`stream.live.consumer`)."""
        self.consumer = consumer
        self.processor.guard.seek_with(consumer.rewind)
        self.outboxes.use_flow(consumer.flow)

    def highwater(self, p: int) -> int | None:
        """The consumer's high watermark of partition ``p`` (None: not known yet)."""
        return self.consumer.highwater(p) if self.consumer is not None else None

    def on_init_dependencies(self) -> list[Service]:
        return [self.http]

    def lag(self) -> dict[int, int | None]:
        """Per owned partition: records not yet applied (None: watermark not known yet)."""
        return consumer_lag(self.processor, self.highwater)

    def _backlogged(self) -> set[int]:
        """Owned partitions known to be more than one batch behind."""
        return {p for p, n in self.lag().items() if n is not None and n > self.settings.batch_max}

    def metrics(self) -> str:
        lag = {p: float(v) for p, v in self.lag().items() if v is not None}
        owned = self.processor.owned()
        publishing = publishing_gauges(self.outboxes, self.relay, owned)
        return render_metrics(
            self.processor,
            self.redis.up,
            self.relay.published,
            extra={"rfm_events_per_second": self._rate.per_second(self.processor.stats.events)},
            partitions={**self.gauges, "rfm_consumer_lag": lag, **publishing},
            families={
                **self.redis.metrics(),
                **fence_metrics(owned, self.processor.fences),
                **dead_letter_metrics(self.outputs.dlq_failure, self.outputs.unpublished),
            },
        )

    def health(self) -> dict[str, Any]:
        lag = self.lag()
        behind = {
            p: v for p, v in lag.items() if v is not None and v > self.settings.health_max_lag
        }
        publishing_ok, publishing = publishing_health(
            self.outboxes, self.relay, self.outputs.dlq_failure, self.settings.health_max_outbox
        )
        fenced = self.processor.fences
        ok = self.ready.is_set() and self.redis.up and not behind and publishing_ok and not fenced
        return {
            "ok": ok,
            **self.redis.health(),
            "fenced": {str(p): why for p, why in sorted(fenced.items())},
            "partitions": self.processor.owned(),
            "lag": {str(p): v for p, v in lag.items()},
            "max_lag": self.settings.health_max_lag,
            **publishing,
        }

    async def _refresh_gauges(self) -> None:
        """Per-partition gauges that need Redis, read once per timer tick (not per scrape)."""
        now = self.processor.clock.now_ms()
        self.gauges = await self.store.tallies.schedule_gauges(self.processor.owned(), now)

    async def _retrying(self, what: str, fn: Callable[[], Awaitable[None]]) -> None:
        """Retry ``fn`` with backoff; while Redis is down or refuses writes (OOM, READONLY,
        ...: :mod:`state.refusals`), say so once and stop consuming."""

        async def attempt() -> None:
            try:
                await fn()
            except Moved as exc:
                await self._switch(exc.target)
            except StoreUnavailable as exc:
                self.redis.failed(exc)
                raise
            except ResponseError as exc:  # NOPERM: an ACL missing a command, never retried
                exit_if_misconfigured(exc)
                raise
            self.redis.ok()

        await with_backoff(what, attempt, _RETRIABLE)

    async def on_start(self) -> None:
        await start_up(self)
        log.info("runtime ready: %s", self.settings.masked())
        quiet_gc()
        self.ready.set()

    async def _switch(self, target: str) -> None:
        """The namespace was promoted: publish the old outbox to the end, restart on the
        new one.

        Restarting (re-exec, same pid) re-runs the whole assignment path: claims in the
        new namespace, consumer positions from its recorded offsets. No write can land in
        the old namespace meanwhile (the commit script refuses it).
        """
        log.warning(
            "namespace %r was promoted to %r: publishing its outbox, then restarting on it",
            self.store.keys.namespace,
            target,
        )

        # every transition committed to the old outbox is published first, however long
        # the broker takes (no event is consumed meanwhile); partitions this worker no
        # longer holds are published by whoever serves the name (_drain_retired)
        async def publish_old() -> None:
            await self.relay.drain_all()

        await with_backoff("publish the old outbox", publish_old, _RETRIABLE)
        restart_in_place()

    async def _check_promoted(self) -> None:
        """Raise :class:`Moved` once another namespace serves our name (even when idle)."""
        physical = await self.store.serving(self.settings.namespace)
        if physical != self.store.keys.namespace:
            raise Moved(physical)

    async def crash(self, reason: BaseException) -> None:
        """A background task met Redis refusing us for good (an ACL without a command the
        worker needs, a login revoked): one line and exit 2, not a traceback."""
        exit_if_misconfigured(reason)
        await super().crash(reason)

    async def on_stop(self) -> None:
        with contextlib.suppress(*_RETRIABLE):
            await asyncio.wait_for(self.relay.drain_all(), 5)
        if self.producer is not None:
            await self.producer.stop()
        await self.store.close()

    # ------------------------------------------------------------------ agent side
    async def process(self, msgs: list[Msg]) -> None:
        await self.ready.wait()
        await self._retrying("process batch", lambda: self.processor.process(msgs))

    async def assign(self, partitions: Set[int]) -> dict[int, int]:
        await self.ready.wait()
        resume: dict[int, int] = {}

        async def claim() -> None:
            resume.update(await self.processor.assign(partitions))

        self.processor.guard.forget_fences()  # every assigned partition is claimed anew
        await self._retrying("claim partitions", claim)
        return resume

    # ------------------------------------------------------------------ background
    @Service.task
    async def _batches(self) -> None:
        """Apply what the consumer fetched, as much as is there (up to ``batch_max``)."""
        await self.ready.wait()
        while not self.should_stop:
            msgs = await self.backlog.take(self.settings.batch_max)
            await self.process(msgs)
            if self.consumer is not None:
                self.consumer.ack(msgs)

    @Service.task
    async def _relay(self) -> None:
        await self.ready.wait()
        while not self.should_stop:
            try:
                await self.relay.run()
            except _RETRIABLE as exc:
                log.warning("relay paused: %s", exc)
                await asyncio.sleep(1.0)

    @Service.task
    async def _watch_outboxes(self) -> None:
        """Back-pressure: read the outbox lengths, pause and resume partitions."""
        await self.ready.wait()
        while not self.should_stop:
            await self.sleep(CHECK_INTERVAL_S)
            try:
                await self.outboxes.step()
            except _RETRIABLE as exc:
                log.debug("outbox check failed: %s", exc)

    @Service.task
    async def _decay_timer(self) -> None:
        await self.ready.wait()
        interval = self.settings.decay_interval / 1000
        s = self.settings
        while not self.should_stop:
            await self.sleep(interval)
            try:
                await self._check_promoted()
                for p in self.processor.owned():
                    await self.processor.guard.verify(p)
                await self._refresh_gauges()
                if not s.decay_timer:
                    continue
                owned = self.processor.owned()
                if owned:
                    n = self.processor.partition_count or s.partitions
                    await self.calibrator.step(self.processor.clock.now_ms(), range(n))
                await all_of(self.processor.run_due(p) for p in owned)
                # one rate-limited step each (rules change, recalibration), but not for a
                # partition with a backlog: live events first, re-ranking idle customers after
                now = self.processor.clock.now_ms()
                busy = self._backlogged()
                for p in owned:  # one after the other: a sweep step is mostly CPU
                    if p not in busy:
                        await self.processor.sweep(p, now)
            except Moved as exc:
                await self._switch(exc.target)
            except _RETRIABLE as exc:
                log.warning("timer step failed: %s", exc)

    @Service.task
    async def _drain_retired(self) -> None:
        """Publish what namespaces retired from our name still hold in their outboxes
        (:mod:`stream.live.retired_outboxes`), for the partitions we own; ends once none does."""
        await self.ready.wait()
        assert self.producer is not None
        retired = RetiredOutboxes(
            self.store, self.producer, self.settings.transitions_topic, self.settings.namespace
        )
        while not self.should_stop:
            try:
                if await retired.drain(self.processor.owned()):
                    return
            except _RETRIABLE as exc:
                log.warning("publishing a retired outbox failed: %s", exc)
            await self.sleep(self.settings.decay_interval / 1000)
