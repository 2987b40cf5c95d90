"""Back-pressure's parts: the pause policy, the outbox watch on a real Redis, what
``/health`` makes of it, and the fetch loop's side (records of a partition paused while a
fetch ran are kept; a worker whose partitions are all paused still polls)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from faust.types import TP

from schemas.settings import load_settings
from state.store import Claim, RedisStore
from stream.apply.relay import DrainFailure
from stream.live.backpressure import OutboxWatch, PausePolicy
from stream.live.delivery import Backlog, drain_in_batches
from stream.live.runtime import Runtime
from tests.support.consumer_stub import StubControls
from tests.unit.stream.live.test_delivery import Flag, Rec, StubConsumer


def test_pause_over_the_bound_resume_at_half() -> None:
    policy = PausePolicy(100)
    assert not policy.paused(100, paused_now=False)
    assert policy.paused(101, paused_now=False)
    assert policy.paused(51, paused_now=True)  # stays paused until down to half
    assert not policy.paused(50, paused_now=True)


class RecordingFlow:
    def __init__(self) -> None:
        self.now: set[int] = set()
        self.calls: list[tuple[str, set[int]]] = []

    def paused(self) -> set[int]:
        return set(self.now)

    def pause(self, partitions: set[int]) -> None:
        self.calls.append(("pause", partitions))
        self.now |= partitions

    def resume(self, partitions: set[int]) -> None:
        self.calls.append(("resume", partitions))
        self.now -= partitions


async def test_the_watch_pauses_and_resumes_from_real_outbox_lengths(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url, "rfm", f"bp-{uuid.uuid4().hex[:8]}")
    await store.connect()
    flow = RecordingFlow()
    watch = OutboxWatch(store, lambda: [0, 1], PausePolicy(10), flow)
    try:

        async def fill(p: int, n: int) -> list[str]:
            return [
                await store.client.xadd(store.keys.outbox(p), {"k": "c", "d": orjson.dumps(i)})
                for i in range(n)
            ]

        ids = await fill(0, 11)
        await fill(1, 3)
        await watch.step()
        assert watch.lengths == {0: 11, 1: 3}
        assert flow.calls == [("pause", {0})]
        await store.outbox_ack(0, ids[:5])  # 6 left: still over half
        await watch.step()
        assert flow.calls == [("pause", {0})]
        await store.outbox_ack(0, ids[5:6])  # 5 left: resumes
        await watch.step()
        assert flow.calls == [("pause", {0}), ("resume", {0})]
        assert watch.paused() == set()
    finally:
        await store.close()


def test_health_degrades_past_the_outbox_threshold_and_while_dead_letters_fail() -> None:
    runtime = Runtime(load_settings(health_max_outbox="100", http_port="0"))
    runtime.ready.set()
    runtime.processor.claims.update({0: Claim(0, 1, -1), 1: Claim(1, 1, -1)})
    runtime.attach(StubControls(lambda p: 0))
    runtime.outboxes.lengths = {0: 100, 1: 0}
    assert runtime.health()["ok"]
    runtime.relay.failing = {1: DrainFailure("UnknownError: no", 3, 0.0, 0.0)}
    body = runtime.health()
    assert body["ok"] and body["publish_errors"] == {"1": "UnknownError: no"}  # not alone
    runtime.outboxes.lengths = {0: 101, 1: 0}
    body = runtime.health()
    assert not body["ok"] and body["outbox"] == {"0": 101, "1": 0}
    runtime.outboxes.lengths = {0: 0, 1: 0}
    runtime.outputs.dlq_failure = "TopicAuthorizationFailedError: denied"
    assert not runtime.health()["ok"]
    metrics = runtime.metrics()
    assert 'rfm_outbox_length{partition="0"} 0.0' in metrics
    assert 'rfm_publish_failing{partition="1"} 1.0' in metrics
    assert "rfm_dead_letters_failing 1" in metrics.splitlines()


async def test_records_of_a_partition_paused_during_the_fetch_are_kept() -> None:
    """faust's loop drops them (its position is past them already: lost until a rewind)."""
    t0, t1 = TP("p", 0), TP("p", 1)
    backlog = Backlog(limit=100)
    consumer = PausedStub([{t0: [Rec("p", 0, 0)], t1: [Rec("p", 1, 0)]}], backlog, active={t0})
    await drain_in_batches(consumer, type("F", (), {"_stopped": Flag()})(), "p", backlog)
    assert sorted((m.partition, m.offset) for m in await backlog.take(10)) == [(0, 0), (1, 0)]


async def test_a_worker_with_every_partition_paused_still_polls() -> None:
    """Else aiokafka leaves the group after max_poll_interval: a rebalance."""
    backlog = Backlog(limit=100)
    consumer = PausedStub([{}, {}], backlog, active=set())
    await drain_in_batches(consumer, type("F", (), {"_stopped": Flag()})(), "p", backlog)
    assert consumer.polls == [{TP("p", -1)}, {TP("p", -1)}]  # a poll for nothing, each turn


class PausedStub(StubConsumer):
    def __init__(self, fetches: list[dict[TP, list[Rec]]], backlog: Backlog, active: set[TP]):
        super().__init__(fetches, backlog)
        self.active = active
        self.polls: list[set[TP]] = []

    async def _wait_next_records(self, timeout: float) -> tuple[dict[TP, list[Rec]], Any]:  # noqa: ASYNC109
        records, _ = await super()._wait_next_records(timeout)
        return records, (self.active if not self._stopped.on else None)

    def assignment(self) -> set[TP]:
        return {TP("p", 0), TP("p", 1)}

    async def _getmany(self, active_partitions: set[TP], timeout: float) -> dict:  # noqa: ASYNC109
        self.polls.append(set(active_partitions))
        return {}


def test_the_faust_consumer_still_has_what_pausing_uses() -> None:
    """FaustFlow and the poll while paused rely on these faust 0.15 internals."""
    import inspect

    from faust.transport.consumer import Consumer
    from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer

    for name in ("_getmany", "assignment", "pause_partitions", "resume_partitions"):
        assert callable(getattr(AIOKafkaConsumer, name, None)), name
    assert "self._paused_partitions = set()" in inspect.getsource(Consumer._reset_state)
    # a paused partition is left out of the fetch; a rebalance keeps it paused if it stays
    assert "_paused_partitions.intersection_update(assigned)" in inspect.getsource(
        Consumer.on_partitions_assigned
    )
