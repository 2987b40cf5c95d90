"""Where the worker bends faust to its needs: Redis decides the consumer position, the
broker may hold a fetch only so long, and a worker without tables starts without faust's
table wait. Kept apart from the app so the patches and their reasons are in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import faust
from faust.tables import TableManager
from faust.transport.consumer import Consumer

from stream.apply.retry import with_backoff

if TYPE_CHECKING:
    from stream.live.runtime import Runtime

__all__ = ["TablelessManager", "cap_fetch_wait", "position_from_redis"]


def cap_fetch_wait(ms: int) -> None:
    """Make faust's consumer ask the broker to hold a fetch at most ``ms``.

    faust builds its aiokafka consumer with a hard-coded ``fetch_max_wait_ms=1500`` and
    no setting. A broker that doesn't answer a waiting fetch when records arrive
    (Tansu; measured in bench/) then delays every event by up to that long: p99 863 ms
    at 1k events/s. aiokafka reads the attribute when its fetcher starts, so setting it
    on the freshly built consumer is enough. Applied once per process (one app each).
    """
    from faust.transport.drivers import aiokafka as driver

    original = driver.AIOKafkaConsumerThread._create_worker_consumer
    if getattr(original, "_rfm_capped", False):
        return

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms
        return consumer

    create._rfm_capped = True  # type: ignore[attr-defined]  # a marker: patched once per process
    driver.AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]  # the patch itself


def position_from_redis(app: faust.App, runtime: Runtime, topic_name: str) -> None:
    """Make every faust "seek to committed" land on Redis's committed offset + 1.

    faust seeks assigned partitions to the group's Kafka offsets from its recovery
    service, concurrently with (and sometimes after) our assignment handler. Kafka's
    group offsets can be ahead of Redis (a fenced batch that faust acked anyway, Redis
    restored from an older snapshot or losing its last second of AOF), and reading
    from there would skip events for good. So the seek itself is redirected.
    """
    # typed as the abstract ConsumerT, which lacks seek_to_committed; faust's app makes a
    # transport Consumer, which has it
    consumer = cast(Consumer, app.consumer)
    original = consumer.seek_to_committed

    async def seek_to_redis_committed() -> Mapping[Any, int]:
        positions = dict(await original())
        ours = [tp for tp in positions if tp.topic == topic_name]
        if ours:
            await runtime.ready.wait()
            committed: dict[int, int] = {}

            async def read() -> None:
                committed.update(await runtime.store.committed_offsets(tp.partition for tp in ours))

            await with_backoff("read committed offsets", read, runtime.retriable)
            for tp in ours:
                positions[tp] = committed[tp.partition] + 1
            await consumer.seek_wait({tp: positions[tp] for tp in ours})
        return positions

    consumer.seek_to_committed = seek_to_redis_committed  # type: ignore[method-assign]  # the patch itself


class TablelessManager(TableManager):
    """faust's table manager, without its start-up sleep when there is no table.

    ``TableManager.on_start`` sleeps one second so that tables declared while the app
    starts can still register before the consumer subscribes; the conductor waits for
    that before subscribing. The worker declares no table (Redis holds its state), so
    every start (a restart after a crash, a rebalance's new member, each test) waited a
    second for nothing. With a table it is faust's own ``on_start``; without, the same
    steps minus the sleep (faust 0.15.3's body: tests/unit/stream/live/
    test_faust_patches.py holds a digest of it and fails if faust changes it).
    """

    async def on_start(self) -> None:
        if len(self):
            await super().on_start()
            return
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()
