"""The position guard (:mod:`stream.apply.position`): what it decides when Redis's committed
position and the consumer's position disagree, on a real Redis, no broker.

Driven through the processor the rig builds (the guard has no I/O of its own): a
newer epoch fences, an epoch that went back or vanished reclaims and re-reads, a
committed offset that went back rewinds, a hole that persists is accepted. Each test
names, in its docstring, the broken behaviour it catches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas.times import to_ms
from tests.support.harness import expected, purchase
from tests.support.processor_rig import Rig, make_rig, record_rewinds

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    r = await make_rig(redis_url, to_ms(NOW), decay_timer="false")
    yield r
    await r.close()


def _events(n: int) -> list[dict[str, Any]]:
    at = NOW - timedelta(days=20)
    return [purchase(f"c{i % 3}", i, at + timedelta(hours=i), "400") for i in range(n)]


def _dumps(events: Sequence[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(e) for e in events]


async def test_an_assignment_resumes_after_the_committed_offset(rig: Rig) -> None:
    """Catches a resume position off by one (a record applied twice or skipped) and a
    claim that does not fence the previous one."""
    msgs = await rig.feed(_dumps(_events(4)))
    old = rig.processor.claims[0]
    assert await rig.processor.assign([0]) == {0: msgs[-1].offset + 1}
    assert rig.processor.claims[0].epoch == old.epoch + 1
    assert rig.processor.claims[0].offset == msgs[-1].offset


async def test_verify_fences_a_quiet_partition_another_writer_claimed(rig: Rig) -> None:
    """No batch comes for a quiet partition, so only the timer's check can notice the
    newer epoch. Catches a check that ignores it (the worker would go on reporting a
    partition it no longer owns as healthy) or that re-claims it (fencing the rightful
    new owner out)."""
    await rig.feed(_dumps(_events(2)))
    await rig.store.claim(0)
    epoch, _, _ = await rig.store.meta(0)
    await rig.processor.guard.verify(0)
    assert 0 in rig.processor.fences
    assert rig.processor.owned() == []
    assert (await rig.store.meta(0))[0] == epoch, "the guard claimed the partition back"


async def test_verify_leaves_a_healthy_partition_alone(rig: Rig) -> None:
    """Catches a check that rewinds or reclaims when Redis and the worker agree."""
    asked = record_rewinds(rig)
    await rig.feed(_dumps(_events(3)))
    claim = rig.processor.claims[0]
    await rig.processor.guard.verify(0)
    assert asked == []
    assert rig.processor.claims[0] is claim
    assert rig.processor.fences == {}
    assert rig.processor.stats.state_lost == 0


async def test_verify_reclaims_when_redis_lost_the_partition(rig: Rig) -> None:
    """Redis came back empty (no AOF): the epoch vanished. Catches a guard that calls
    that a fence (the partition would stop) instead of claiming again and re-reading
    from what Redis holds (offset 0)."""
    asked = record_rewinds(rig)
    await rig.feed(_dumps(_events(3)))
    await rig.store.client.delete(rig.store.keys.meta(0))

    await rig.processor.guard.verify(0)
    assert asked == [(0, 0)]
    assert rig.processor.stats.state_lost == 1
    assert rig.processor.owned() == [0]
    assert rig.processor.fences == {}
    assert rig.processor.applied_offset(0) is None
    epoch, _, _ = await rig.store.meta(0)
    assert epoch == rig.processor.claims[0].epoch


async def test_verify_rewinds_when_redis_lost_its_last_commits(rig: Rig) -> None:
    """Redis lost its last second of writes (a failover): same epoch, an older offset.
    Catches a guard that trusts its own memory of the offset over Redis's (the lost
    events would never be applied again)."""
    asked = record_rewinds(rig)
    await rig.feed(_dumps(_events(3)))
    await rig.feed(_dumps(_events(6)[3:]))
    assert rig.processor.applied_offset(0) == 5
    await rig.store.client.hset(rig.store.keys.meta(0), "off", "2")  # commits 3..5 lost

    await rig.processor.guard.verify(0)
    assert asked == [(0, 3)]
    assert rig.processor.applied_offset(0) == 2
    assert rig.processor.stats.state_lost == 1


async def test_a_batch_after_redis_lost_the_partition_re_reads_from_its_start(
    rig: Rig,
) -> None:
    """The batch itself meets the vanished epoch: claim again, and since Redis now
    expects offset 0, rewind there instead of applying 3.. on empty states. Catches a
    batch applied out of order after a state loss (customers would miss events 0..2)."""
    asked = record_rewinds(rig)
    events = _events(6)
    msgs = rig.messages(_dumps(events))
    await rig.deliver(msgs[:3])
    tag = rig.store.keys.tag(0)
    keys = [k async for k in rig.store.client.scan_iter(match=f"*{tag}*")]
    await rig.store.client.delete(*keys)  # the partition's whole state is gone

    await rig.deliver(msgs[3:])
    assert asked == [(0, 0), (0, 0)]  # the reclaim's re-read, then the batch's gap
    assert await rig.store.get_state(0, "c0") is None
    assert await rig.committed() == -1

    await rig.deliver(msgs)  # the consumer, re-read from 0
    want, _ = expected(events, rig.settings)
    assert {c: await rig.store.get_state(0, c) for c in want} == want


async def test_a_hole_that_persists_for_ten_seconds_is_accepted(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offsets 3 and 4 are really missing from the log (compaction, transaction markers):
    re-reading can't fill the hole. Catches a guard that rewinds forever (the partition
    would stop) and one that accepts a hole at once (events lost to a racing seek)."""
    asked = record_rewinds(rig)
    now = [1000.0]
    monkeypatch.setattr("stream.apply.position.time.monotonic", lambda: now[0])
    events = _events(8)
    msgs = rig.messages(_dumps(events))
    await rig.deliver(msgs[:3])

    await rig.deliver(msgs[5:])
    now[0] += 9.0
    await rig.deliver(msgs[5:])
    assert asked == [(0, 3), (0, 3)]
    assert await rig.committed() == 2

    now[0] += 2.0  # 11 s since the hole was first seen
    await rig.deliver(msgs[5:])
    assert await rig.committed() == 7, (
        f"the hole was accepted, yet 5..7 were not applied (rewinds asked: {asked}): "
        "the partition would re-read the hole forever"
    )
    assert asked == [(0, 3), (0, 3)]
    want, _ = expected(events[:3] + events[5:], rig.settings)
    assert {c: await rig.store.get_state(0, c) for c in want} == want


async def test_without_a_consumer_to_rewind_a_hole_is_applied_over(rig: Rig) -> None:
    """A reader that can't seek (no rewind given) applies what it gets, as before.
    Catches a guard that asks a missing consumer to rewind (an assertion error that
    would stop every batch)."""
    events = _events(8)
    msgs = rig.messages(_dumps(events))
    await rig.deliver(msgs[:3])
    await rig.deliver(msgs[5:])
    assert await rig.committed() == 7
    assert rig.processor.stats.rewinds == 0
