"""The worker's batched delivery: the backlog, the fetch loop's bookkeeping, and the faust
internals it relies on (so a faust upgrade that moves them fails here, not in production).

The loop itself runs in every worker test against the real broker; these pin its rules.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import defaultdict
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP

from stream.apply.messages import Msg
from stream.live.delivery import Backlog, ack, drain_in_batches, reset_read_offsets


def msgs(p: int, offsets: range) -> list[Msg]:
    return [Msg(p, o, b"k", b"v") for o in offsets]


async def test_take_returns_what_is_there_up_to_most_in_order() -> None:
    b = Backlog(limit=100)
    b.put(msgs(0, range(5)) + msgs(1, range(3)))
    assert [m.offset for m in await b.take(4)] == [0, 1, 2, 3]
    rest = await b.take(100)
    assert [(m.partition, m.offset) for m in rest] == [(0, 4), (1, 0), (1, 1), (1, 2)]
    assert len(b) == 0


async def test_take_waits_for_the_first_record() -> None:
    b = Backlog(limit=10)
    taker = asyncio.ensure_future(b.take(10))
    await asyncio.sleep(0.01)
    assert not taker.done()
    b.put(msgs(2, range(2)))
    assert [m.offset for m in await asyncio.wait_for(taker, 10)] == [0, 1]


async def test_room_closes_at_the_limit_and_opens_on_take_and_drop() -> None:
    b = Backlog(limit=4)
    b.put(msgs(0, range(4)))
    waiting = asyncio.ensure_future(b.room())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await b.take(1)
    await asyncio.wait_for(waiting, 10)
    b.put(msgs(1, range(3)))
    waiting = asyncio.ensure_future(b.room())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    assert b.drop([1]) == 3
    await asyncio.wait_for(waiting, 10)
    assert [m.offset for m in await b.take(10)] == [1, 2, 3]


class Rec:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset
        self.key, self.value = b"k", b"v"


class Flag:
    def __init__(self) -> None:
        self.on = False

    def is_set(self) -> bool:
        return self.on


class StubConsumer:
    """Only the attributes :func:`drain_in_batches` reads; the fetches are scripted."""

    def __init__(self, fetches: list[dict[TP, list[Rec]]], backlog: Backlog) -> None:
        self.fetches = fetches
        self._read_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._buffered_partitions: set[TP] = set()
        self._commit_every = None
        self._n_acked = 0
        self._stopped = Flag()
        self.flow_active = True
        self.should_stop = False
        self.gaps: list[tuple[TP, int, int]] = []
        self.delivered: list[Any] = []
        self.backlog = backlog
        self.consumer_stopped_errors = ()
        app = type("App", (), {})()
        app.topics = type("T", (), {"acks_enabled_for": staticmethod(lambda t: True)})()
        app.monitor = type("M", (), {"track_tp_end_offset": staticmethod(lambda tp, o: None)})()
        self.app = app

    async def _wait_next_records(self, timeout: float) -> tuple[dict[TP, list[Rec]], None]:  # noqa: ASYNC109
        if not self.fetches:
            self._stopped.on = True
            return {}, None
        return self.fetches.pop(0), None

    def highwater(self, tp: TP) -> int:
        return 0

    async def _add_gap(self, tp: TP, start: int, end: int) -> None:
        self.gaps.append((tp, start, end))

    def _to_message(self, tp: TP, record: Rec) -> Rec:
        return record

    async def callback(self, message: Rec) -> None:
        self.delivered.append(message)

    async def wait_first(self, *coros: Any) -> None:
        _, pending = await asyncio.wait(
            [asyncio.ensure_future(c) for c in coros], return_when=asyncio.FIRST_COMPLETED
        )
        for f in pending:
            f.cancel()

    @property
    def suspend_flow(self) -> asyncio.Event:
        return asyncio.Event()


async def test_the_loop_filters_stale_records_records_gaps_and_passes_other_topics_on() -> None:
    t0, t1, other = TP("p", 0), TP("p", 1), TP("x", 0)
    backlog = Backlog(limit=1000)
    fetches = [
        {t0: [Rec("p", 0, o) for o in range(3)], other: [Rec("x", 0, 7)]},
        # a stale prefetch from before a seek (offsets below the read offset), then a hole
        {t0: [Rec("p", 0, o) for o in (1, 2, 5, 6)], t1: [Rec("p", 1, 0)]},
    ]
    consumer = StubConsumer(fetches, backlog)
    fetcher = type("F", (), {"_stopped": Flag()})()
    await drain_in_batches(consumer, fetcher, "p", backlog)
    got = [(m.partition, m.offset) for m in await backlog.take(100)]
    # faust's filter keeps offsets >= the last one read (2 is read twice, as faust does)
    assert got == [(0, 0), (0, 1), (0, 2), (0, 2), (0, 5), (0, 6), (1, 0)]
    assert consumer.gaps == [(t0, 3, 5)]
    assert [r.offset for r in consumer.delivered] == [7]
    assert consumer._read_offset[t0] == 6
    reset_read_offsets(consumer, {t0: 1})  # a rewind wants 1.. again
    assert consumer._read_offset[t0] == 1


def test_ack_moves_fausts_acked_offsets() -> None:
    # faust's acked-offset bookkeeping, written for the batch (test_delivery_ack.py checks it
    # against faust's own per-message Consumer.ack)
    class C:
        app = type(
            "App",
            (),
            {
                "monitor": type("M", (), {"stream_inbound_time": {}})(),
                "topics": type("T", (), {"acks_enabled_for": staticmethod(lambda t: True)})(),
            },
        )()

        def __init__(self) -> None:
            self._committed_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
            self._acked_index: defaultdict[TP, set[int]] = defaultdict(set)
            self._acked: defaultdict[TP, list[int]] = defaultdict(list)
            self._n_acked = 0
            self._waiting_for_ack = None

    consumer = C()
    ack(consumer, "p", msgs(3, range(2)))
    assert dict(consumer._acked) == {TP("p", 3): [0, 1]} and consumer._n_acked == 2
    assert set(consumer.app.monitor.stream_inbound_time) == {TP("p", 3)}  # faust's stall check


@pytest.mark.parametrize(
    "name",
    [
        "_drain_messages",
        "_wait_next_records",
        "_add_gap",
        "_to_message",
        "perform_seek",
        "seek_wait",
        "ack",
        "commit",
        "highwater",
    ],
)
def test_the_faust_consumer_still_has_what_the_loop_uses(name: str) -> None:
    """stream.live.delivery replaces faust 0.15's fetch loop: these must still exist."""
    assert callable(getattr(AIOKafkaConsumer, name, None)), name


def test_the_faust_consumer_still_keeps_the_state_the_loop_reads() -> None:
    init, whole = inspect.getsource(Consumer.__init__), inspect.getsource(Consumer)
    for attr in ("_read_offset", "_buffered_partitions", "_commit_every"):
        assert f"self.{attr} =" in init, attr
    for attr in ("_n_acked", "flow_active", "suspend_flow", "consumer_stopped_errors"):
        assert attr in whole, attr
    # the original loop awaits one callback per message: what the replacement removes
    assert "callback(message)" in inspect.getsource(Consumer._drain_messages)
