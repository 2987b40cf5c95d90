"""The faust side of the live worker: the app over the purchases topic, and how its
rebalances reach the :class:`~stream.live.runtime.Runtime`.

- on assign: the runtime claims every assigned purchases partition in Redis (bumping its
  epoch fences out the previous owner), then the consumer seeks to Redis's committed
  offset + 1: Redis, not Kafka's group offsets, is the source of truth for position,
  because state and offset commit together there.
- on revoke: the partitions are forgotten and their queued records dropped; an
  in-flight commit for them either lands before the new owner's claim or is rejected by
  the fence.

There is no agent: records reach the processor a fetch at a time (:mod:`stream.live.delivery`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence, Set
from typing import Any

import faust
from faust.types import TP

from schemas.settings import Settings
from stream.apply.messages import Msg
from stream.kafka.security import broker_credentials
from stream.live.delivery import Backlog, ack, install, reset_read_offsets
from stream.live.faust_patches import TablelessManager, cap_fetch_wait, position_from_redis
from stream.live.runtime import Runtime

__all__ = ["FaustControls", "FaustFlow", "create_app", "raw_app"]


class FaustFlow:
    """Pause and resume purchases partitions with faust's own consumer flow control.

    faust's ``pause_partitions`` leaves a partition out of the fetches it hands on (its
    prefetched records stay in aiokafka's buffer, the position where it was); unlike
    aiokafka's ``pause`` it changes nothing the group coordinator sees, so no rebalance.
    faust keeps a paused partition paused if a rebalance gives it back, forgets it if
    the partition goes elsewhere.
    """

    def __init__(self, consumer: Any, topic: str) -> None:
        self.consumer = consumer
        self.topic = topic

    def paused(self) -> set[int]:
        return {tp.partition for tp in self.consumer._paused_partitions if tp.topic == self.topic}

    def pause(self, partitions: set[int]) -> None:
        self.consumer.pause_partitions({TP(self.topic, p) for p in partitions})

    def resume(self, partitions: set[int]) -> None:
        self.consumer.resume_partitions({TP(self.topic, p) for p in partitions})


class FaustControls:
    """The runtime's :class:`~stream.live.consumer.ConsumerControls` over faust's consumer
    of the purchases topic ``topic``; ``backlog`` is where its fetches queue."""

    def __init__(self, consumer: Any, topic: str, backlog: Backlog) -> None:
        self.consumer = consumer
        self.topic = topic
        self.backlog = backlog
        self.flow = FaustFlow(consumer, topic)

    def ack(self, msgs: Sequence[Msg]) -> None:
        ack(self.consumer, self.topic, msgs)

    def highwater(self, p: int) -> int | None:
        hw: int | None = self.consumer.highwater(TP(self.topic, p))
        return hw

    async def seek(self, tp: TP, offset: int) -> None:
        """Read ``tp`` from ``offset`` on, dropping what was queued from it."""
        # seek_wait runs in the consumer's own thread; faust's seek() touches the threaded
        # aiokafka consumer from this one and races its fetcher (KeyError in fetched_records)
        self.backlog.drop([tp.partition])
        await self.consumer.seek_wait({tp: offset})
        reset_read_offsets(self.consumer, {tp: offset})
        # not dropped again here: records queued while seek_wait ran may be the re-read
        # ones, which the consumer will not fetch again (a stale one only costs a rewind)

    async def rewind(self, p: int, offset: int) -> None:
        await self.seek(TP(self.topic, p), offset)


def raw_app(settings: Settings, datadir: str) -> tuple[faust.App, faust.TopicT]:
    """A faust app of the worker's group over the purchases topic, raw bytes in, and that
    topic (also what ``bench.noop_agent`` measures: the same configuration)."""
    session_s = settings.kafka_session_timeout / 1000
    app = faust.App(
        settings.group_id,
        broker=[f"kafka://{h.strip()}" for h in settings.kafka_bootstrap.split(",")],
        broker_credentials=broker_credentials(settings),
        store="memory://",
        # faust keeps a data dir even with no tables: not in the working directory
        datadir=os.path.join(tempfile.gettempdir(), datadir),
        web_enabled=False,
        broker_session_timeout=session_s,
        broker_heartbeat_interval=max(0.5, session_s / 5),
        broker_rebalance_timeout=max(session_s * 2, 10.0),
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.partitions,
        topic_allow_declare=False,
        topic_disable_leader=True,
        worker_redirect_stdouts=False,
        TableManager=TablelessManager,  # no tables: no one-second wait for them at start
    )
    topic = app.topic(
        settings.purchases_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    return app, topic


def create_app(settings: Settings, runtime: Runtime) -> faust.App:
    """The faust app over the purchases topic, raw bytes in, a fetch at a time."""
    cap_fetch_wait(settings.fetch_max_wait)
    app, topic = raw_app(settings, f"rfm-stream-{settings.group_id}")
    # no agent: the records reach the processor a fetch at a time (stream.live.delivery)
    app.topics.add(topic)
    name = topic.get_topic_name()
    install(app.consumer, name, runtime.backlog)
    controls = FaustControls(app.consumer, name, runtime.backlog)

    # faust's stubs type a receiver as (sender, *args, signal=..., **kwargs); it calls these
    # with the one positional argument they take
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust's receiver type
    async def on_revoked(sender: Any, revoked: Set[Any], **_: Any) -> None:
        gone = {tp.partition for tp in revoked if tp.topic == name}
        runtime.processor.revoke(gone)
        runtime.backlog.drop(gone)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # faust's receiver type
    async def on_assigned(sender: Any, assigned: Set[Any], **_: Any) -> None:
        mine = {tp.partition: tp for tp in assigned if tp.topic == name}
        gone = set(runtime.processor.owned()) - set(mine)
        runtime.processor.revoke(gone)
        runtime.backlog.drop(gone)
        resume = await runtime.assign(set(mine))
        for p, offset in resume.items():
            await controls.seek(mine[p], offset)

    runtime.attach(controls)
    position_from_redis(app, runtime, name)
    return app
