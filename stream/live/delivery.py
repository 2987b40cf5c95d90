"""Batched delivery from faust's consumer to the processor, without faust's per-message path.

Why: faust hands every fetched record to its agents one at a time. Its fetch loop
(``Consumer._drain_messages``) awaits ``wait_first(callback(message), suspend_flow)``
per record, which creates two tasks and an ``asyncio.wait`` for each; the conductor then
builds an ``Event``, queues it, and the stream dequeues, buffers and acks it. Measured
here (py-spy of ``bench.noop_agent``), that is ~80 µs of CPU per record: a no-op agent
tops out near 12k records/s, while the worker needs the records a batch at a time anyway.

So the worker keeps faust for what it is good at (the consumer group, rebalances,
the consumer thread, fetching, committing offsets to Kafka) and replaces only the fetch
loop of its consumer with :func:`drain_in_batches`: it takes each fetched record map as
a whole, keeps faust's bookkeeping (read offsets, gaps, flow control on rebalance),
and appends the records to a :class:`Backlog` as
:class:`~stream.apply.messages.Msg` tuples. The worker's own task takes batches from there
and acks them to faust after they are applied, so faust still commits Kafka offsets.

Batches form by themselves: the taker takes whatever has arrived (up to ``batch_max``);
while it is busy more arrives. Idle, a record is applied as soon as it is fetched;
behind, batches are full. There is no wait to fill a batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from stream.apply.messages import Msg

__all__ = ["Backlog", "drain_in_batches", "install"]

log = logging.getLogger(__name__)


class Backlog:
    """Fetched records not yet taken, in fetch order; bounded so the fetcher waits.

    One producer (the drain loop) and one taker (the worker's batch task), both on the
    app's event loop.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: deque[Msg] = deque()
        self._filled = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, msgs: Sequence[Msg]) -> None:
        if not msgs:
            return
        self._items.extend(msgs)
        self._filled.set()
        if len(self._items) >= self.limit:
            self._room.clear()

    async def room(self) -> None:
        """Return once there is room for more (the fetcher's back-pressure)."""
        await self._room.wait()

    async def take(self, most: int) -> list[Msg]:
        """Up to ``most`` records, waiting for the first one."""
        while not self._items:
            self._filled.clear()
            await self._filled.wait()
        items = self._items
        n = min(most, len(items))
        out = [items.popleft() for _ in range(n)]
        if not items:
            self._filled.clear()
        if len(items) < self.limit:
            self._room.set()
        return out

    def drop(self, partitions: Iterable[int]) -> int:
        """Forget the records of ``partitions`` (revoked, or rewound); how many."""
        gone = set(partitions)
        if not gone or not self._items:
            return 0
        kept = [m for m in self._items if m.partition not in gone]
        dropped = len(self._items) - len(kept)
        self._items = deque(kept)
        if len(kept) < self.limit:
            self._room.set()
        return dropped


def ack(consumer: Any, topic: str, msgs: Sequence[Msg]) -> None:
    """Tell faust ``msgs`` are done, so its commit loop moves the group's Kafka offsets.

    Kafka's group offsets are not our position (Redis is, :mod:`stream.live.faust_patches`); they
    are kept moving for the operators' lag tools.

    Why not ``consumer.ack`` per record: it costs ~2 µs each (a lock, a settings lookup, a
    message object built for it), 2-3 % of the worker's CPU per event. This is its
    bookkeeping (faust 0.15's ``Consumer.ack``) for a batch at once, under the same lock:
    an offset at or past the partition's committed one, not acked yet, joins ``_acked`` and
    ``_acked_index`` and counts in ``_n_acked``; then whoever waits for an ack is woken.
    tests/unit/stream/live/test_delivery_ack.py checks it against faust's own ``ack``.
    """
    by_tp: dict[int, list[int]] = {}
    for m in msgs:
        offsets = by_tp.get(m.partition)
        if offsets is None:
            by_tp[m.partition] = [m.offset]
        else:
            offsets.append(m.offset)
    tps = [TP(topic, p) for p in by_tp]
    if not tps:
        return
    with ack_lock:
        if consumer.app.topics.acks_enabled_for(topic):
            for tp, offsets in zip(tps, by_tp.values(), strict=True):
                committed = consumer._committed_offset[tp]
                index: set[int] = consumer._acked_index[tp]
                acked: list[int] = consumer._acked[tp]
                for offset in offsets:
                    if (committed is None or offset >= committed) and offset not in index:
                        index.add(offset)
                        acked.append(offset)
                        consumer._n_acked += 1
            notify(consumer._waiting_for_ack)
    # what faust's streams record per event: its stall check reads it (no agent here)
    inbound = consumer.app.monitor.stream_inbound_time
    now = time.monotonic()
    for tp in tps:
        inbound[tp] = now


async def drain_in_batches(consumer: Any, fetcher: Any, topic: str, backlog: Backlog) -> None:
    """faust's ``Consumer._drain_messages`` (0.15), a fetched record map at a time.

    Kept from the original: stop conditions, flow control (no delivery while a rebalance
    has stopped the flow; a seek back to the committed offsets instead), the read-offset
    filter (records below a partition's read offset are stale
    prefetches from before a seek), gap bookkeeping for acks, and commit_every.
    Records of another topic (none in this app) go through faust's own callback.
    Not kept: faust's generation check (which stops mid-map when a rebalance starts) and
    the ``CONSUMER_FETCHING`` diagnostics flag. A map is queued whole: what a revoked
    partition still has queued is dropped (:meth:`Backlog.drop`), the Redis fence stops
    any write for it, and a stale record of a re-assigned one costs a rewind (the
    processor's gap check), never a loss. Dropping records here instead would lose them:
    the consumer's position is already past them.
    """
    read_offset = consumer._read_offset
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    track_end = consumer.app.monitor.track_tp_end_offset
    commit_every = consumer._commit_every
    consumer_stopped = consumer._stopped.is_set
    fetcher_stopped = fetcher._stopped.is_set
    try:
        while not (consumer_stopped() or fetcher_stopped()):
            records, active = await consumer._wait_next_records(1.0)
            if active is not None and not active:
                await _poll_while_all_paused(consumer, topic)
            if not records or consumer.should_stop:
                continue
            if not consumer.flow_active:
                await _seek_committed(consumer)
                continue
            if commit_every is not None and consumer._n_acked >= commit_every:
                consumer._n_acked = 0
                await consumer.commit()
            batch: list[Msg] = []
            others: list[tuple[TP, Any]] = []
            for tp, recs in records.items():
                # records of a partition paused while this fetch ran are kept: the
                # consumer's position is already past them (faust's loop drops them)
                if tp.topic != topic:
                    others += [(tp, r) for r in recs]
                    continue
                track_end(tp, consumer.highwater(tp))
                floor = read_offset[tp]
                fresh = recs if floor is None else [r for r in recs if r.offset >= floor]
                if not fresh:
                    continue
                if floor is not None and acks_enabled_for(topic):
                    prev = floor
                    for r in fresh:
                        if r.offset - prev > 1:
                            await consumer._add_gap(tp, prev + 1, r.offset)
                        prev = r.offset
                p = tp.partition
                batch += [Msg(p, r.offset, r.key, r.value) for r in fresh]
                read_offset[tp] = fresh[-1].offset
            if batch:
                backlog.put(batch)
                if len(backlog) >= backlog.limit:
                    await consumer.wait_first(backlog.room(), consumer.suspend_flow.wait())
            for tp, record in others:
                message = consumer._to_message(tp, record)
                await consumer.wait_first(consumer.callback(message), consumer.suspend_flow.wait())
    except consumer.consumer_stopped_errors:
        if consumer.transport.app.should_stop:
            log.info("broker stopped the consumer, shutting down")
            return
        raise
    except asyncio.CancelledError:
        if consumer.transport.app.should_stop:
            return
        raise


async def _poll_while_all_paused(consumer: Any, topic: str) -> None:
    """Poll for nothing while every assigned partition is paused (back-pressure).

    faust then stops calling the fetcher at all, and aiokafka leaves the group once it
    has gone ``max_poll_interval`` without a poll (a rebalance: what pausing must not
    cause). Asking for the records of a partition nobody has is a poll that returns
    nothing and leaves every buffered record where it is, like a Java consumer's
    ``poll()`` with all its partitions paused.
    """
    if not consumer.assignment():
        return
    try:
        await consumer._getmany(active_partitions={TP(topic, -1)}, timeout=0)
    except consumer.consumer_stopped_errors:
        raise
    except Exception as exc:  # noqa: BLE001 - a keep-alive; the next real fetch reports
        log.debug("poll while paused failed: %s", exc)


async def _seek_committed(consumer: Any) -> None:
    try:
        await consumer.perform_seek()
    except Exception as exc:  # noqa: BLE001 - faust's getmany logs and goes on, so do we
        log.warning("seek to committed offsets while the flow is stopped failed: %s", exc)


def install(consumer: Any, topic: str, backlog: Backlog) -> None:
    """Replace ``consumer``'s fetch loop (this instance only) with :func:`drain_in_batches`."""

    async def _drain_messages(fetcher: Any) -> None:
        await drain_in_batches(consumer, fetcher, topic, backlog)

    consumer._drain_messages = _drain_messages


def reset_read_offsets(consumer: Any, offsets: Mapping[TP, int]) -> None:
    """After a seek: records from ``offsets`` on are wanted again. faust's ``seek_wait``
    sets the read offsets too, but from the consumer's thread (and removes them for
    offset 0); setting them here, on the loop the drain runs on, makes it certain."""
    for tp, offset in offsets.items():
        consumer._read_offset[tp] = offset
