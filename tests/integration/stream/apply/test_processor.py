"""The Processor's apply path on a real Redis, no broker (issue #18).

Batches are handed to a real :class:`~stream.apply.processor.Processor` through
:mod:`tests.support.processor_rig` with the offsets a partition would have; what it would
publish is collected. Each test names, in its docstring, the broken behaviour it catches.
Fencing by another writer's claim is extended here; ``test_processor_fence`` covers how a
fence is reported and forgotten.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError  # type: ignore[import-untyped]  # aiokafka ships no type information

from schemas.events import parse_event
from schemas.times import to_ms
from state.store import Loaded
from stream.apply.messages import engine_event
from tests.support.harness import expected, purchase
from tests.support.processor_rig import CollectingOutputs, Rig, make_rig, record_rewinds

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    r = await make_rig(redis_url, to_ms(NOW), decay_timer="false")
    yield r
    await r.close()


def _events(n: int, customers: int = 3, start_days: int = 40) -> list[dict[str, Any]]:
    """``n`` purchases of a few customers, an hour apart, all before NOW (large enough
    amounts that second purchases move customers between segments)."""
    at = NOW - timedelta(days=start_days)
    return [purchase(f"c{i % customers}", i, at + timedelta(hours=i), "600") for i in range(n)]


def _dumps(events: Sequence[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(e) for e in events]


async def _outbox(rig: Rig, partition: int = 0) -> list[dict[str, Any]]:
    rows = await rig.store.outbox_read(partition, 100_000)
    return [orjson.loads(payload) for _, _, payload in rows]


async def _states(rig: Rig, customers: Sequence[str]) -> dict[str, Any]:
    return {c: await rig.store.get_state(0, c) for c in customers}


async def _segment_sizes(rig: Rig) -> dict[str, dict[str, int]]:
    """The tallied segment sizes of partition 0 (zero entries dropped)."""
    counts = await rig.store.tallies.segment_counts([0])
    return {s: {k: n for k, n in seg.items() if n} for s, seg in counts.items()}


def _sizes_of(states: dict[str, Any]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for state in states.values():
        for scheme, segment in state.segments.items():
            seg = out.setdefault(scheme, {})
            seg[segment] = seg.get(segment, 0) + 1
    return out


# ---------------------------------------------------------------------- commit order
@pytest.mark.redis_cluster_too
async def test_one_commit_moves_states_offset_outbox_and_tallies_together(rig: Rig) -> None:
    """Catches a commit that leaves out one of its four parts (outbox, tallies, offset,
    states), or writes a transition the pure engine would not make."""
    events = _events(9)
    msgs = await rig.feed(_dumps(events))

    want_states, want_transitions = expected(events, rig.settings)
    assert await _states(rig, sorted(want_states)) == want_states
    assert await rig.committed() == msgs[-1].offset  # the consumer resumes at last + 1
    assert sorted(t["transition_id"] for t in await _outbox(rig)) == sorted(
        t["transition_id"] for t in want_transitions
    )
    assert want_transitions, "the events were meant to move someone"
    assert await _segment_sizes(rig) == _sizes_of(want_states)
    assert rig.processor.stats.events == len(events)
    assert rig.processor.stats.transitions == len(want_transitions)


class _DlqDown(CollectingOutputs):
    """A dead-letter topic that can't be reached: every publish fails."""

    async def dead_letter(self, letters: Sequence[tuple[bytes | None, bytes]]) -> None:
        raise KafkaConnectionError()


async def test_a_batch_whose_dead_letter_fails_commits_nothing(rig: Rig) -> None:
    """Dead letters are acknowledged *before* the commit that moves the offset past them.
    Catches a processor that commits first (or ignores the failed publish): the offset
    would move past a record that reached neither state nor the dead-letter topic."""
    good = _events(4)
    values = _dumps(good)
    values.insert(2, b"{not json")
    msgs = rig.messages(values)
    rig.processor.outputs = _DlqDown()
    with pytest.raises(KafkaConnectionError):
        await rig.deliver(msgs)

    assert await rig.committed() == -1
    assert await _states(rig, ["c0", "c1", "c2"]) == {"c0": None, "c1": None, "c2": None}
    assert await _outbox(rig) == []
    assert await _segment_sizes(rig) == {}

    # retried once the broker is back: everything applied once, the letter sent once
    rig.processor.outputs = rig.outputs
    await rig.deliver(msgs)
    want_states, want_transitions = expected(good, rig.settings)
    assert await _states(rig, sorted(want_states)) == want_states
    assert len(await _outbox(rig)) == len(want_transitions)
    assert [(d["offset"], d["error_class"]) for d in rig.outputs.letters] == [(2, "MalformedJSON")]
    assert await rig.committed() == msgs[-1].offset


# ---------------------------------------------------------------------- the fence
@pytest.mark.redis_cluster_too
async def test_a_fenced_batch_writes_nothing_and_the_partition_is_not_applied_again(
    rig: Rig,
) -> None:
    """Catches a commit that does not check the partition epoch (in the batch's load or
    in the atomic write): the old owner's batch would land next to the new owner's."""
    first = _events(3)
    await rig.feed(_dumps(first))
    before = await _states(rig, ["c0", "c1", "c2"])
    outbox = await _outbox(rig)

    await rig.store.claim(0)  # the group's new owner claims it behind our back
    later = _events(6)[3:]
    await rig.feed(_dumps(later))
    assert rig.processor.stats.fenced_batches == 1
    assert await _states(rig, ["c0", "c1", "c2"]) == before
    assert await _outbox(rig) == outbox
    assert await rig.committed() == 2

    # no longer owned here: the next batch is not even tried
    await rig.feed(_dumps(_events(9)[6:]))
    assert rig.processor.stats.fenced_batches == 1
    assert await rig.committed() == 2


async def test_a_claim_between_the_load_and_the_commit_fences_the_commit(rig: Rig) -> None:
    """The new owner claims the partition while this batch is being applied: only the
    epoch check inside the atomic write can stop it. Catches a commit script that
    does not check the epoch."""
    await rig.feed(_dumps(_events(3)))
    before = await _states(rig, ["c0", "c1", "c2"])
    outbox = await _outbox(rig)
    real_load = rig.store.load

    async def load_then_claimed(
        partition: int, customer_ids: Sequence[str], position: str = "off"
    ) -> Loaded:
        loaded = await real_load(partition, customer_ids, position)
        await rig.store.claim(partition)  # the group's new owner, mid-batch
        return loaded

    rig.store.load = load_then_claimed  # type: ignore[method-assign]  # injects the race
    await rig.feed(_dumps(_events(6)[3:]))
    assert rig.processor.stats.fenced_batches == 1
    assert 0 in rig.processor.fences
    assert await _states(rig, ["c0", "c1", "c2"]) == before
    assert await _outbox(rig) == outbox
    assert await rig.committed() == 2


async def test_a_fenced_decay_step_writes_nothing(rig: Rig) -> None:
    """The timer's path is fenced like a batch. Catches a decay step committed with a
    stale epoch (a dormant transition published twice, by two owners)."""
    old = [purchase("c1", 1, NOW - timedelta(days=200), "5000")]
    await rig.feed(_dumps(old))
    outbox = await _outbox(rig)
    await rig.store.claim(0)
    assert await rig.processor.run_due(0) == 0
    assert 0 in rig.processor.fences
    assert await _outbox(rig) == outbox
    # the new owner still finds c1 due: nothing was unscheduled by the fenced step
    assert await rig.store.due(0, to_ms(NOW), 10) == ["c1"]


# ---------------------------------------------------------------------- the version check
async def test_a_commit_conflict_is_retried_on_fresh_state(rig: Rig) -> None:
    """Another commit on the partition between this batch's load and its commit (the
    timer, a sweep) bumps the version: the commit is refused and the batch is applied
    again on what Redis holds now. Catches a commit that skips the version check (it
    would overwrite the other commit's customers with stale copies) and a processor that
    drops the batch on a conflict instead of retrying it."""
    await rig.feed(_dumps(_events(3)))
    real_load = rig.store.load
    interfered: list[int] = []

    async def load_then_someone_commits(
        partition: int, customer_ids: Sequence[str], position: str = "off"
    ) -> Loaded:
        loaded = await real_load(partition, customer_ids, position)
        if not interfered:  # once: c0 gets a purchase through another commit
            interfered.append(loaded.version)
            other = await real_load(partition, ["c0"])
            state = other.states["c0"]
            bought = purchase("c0", 100, NOW - timedelta(days=2), "50")
            rig.processor.engine.apply_events(
                {"c0": state}, [engine_event(parse_event(orjson.dumps(bought)))]
            )
            claim = rig.processor.claims[partition]
            await rig.store.commit(partition, claim.epoch, other.version, [state], {}, [])
        return loaded

    rig.store.load = load_then_someone_commits  # type: ignore[method-assign]  # injects the race
    await rig.feed(_dumps(_events(6)[3:]))

    assert interfered, "the race was not injected"
    assert rig.processor.stats.conflicts == 1
    c0 = await rig.store.get_state(0, "c0")
    assert c0 is not None
    # c0: events 0 and 3 from the stream and the interloper's purchase, each once
    assert c0.frequency == 3
    assert await rig.committed() == 5


# ---------------------------------------------------------------------- rewind after a gap
async def test_a_batch_past_the_committed_offset_rewinds_and_applies_nothing(rig: Rig) -> None:
    """Redis expects offset 3, the consumer hands 5..7 (3 and 4 lost with a Redis
    failover, or a seek raced). Catches a processor that applies past the hole (events 3
    and 4 would be lost, or applied later out of order), and one without the gap check
    that lets the batch through as an empty one."""
    asked = record_rewinds(rig)
    events = _events(8)
    msgs = rig.messages(_dumps(events))
    await rig.deliver(msgs[:3])
    before = await _states(rig, ["c0", "c1", "c2"])

    await rig.deliver(msgs[5:])
    assert asked == [(0, 3)]
    assert rig.processor.stats.rewinds == 1
    assert await rig.committed() == 2
    # and not applied as an empty batch either (that would forget the committed offset
    # the timer's check compares with Redis's)
    assert rig.processor.applied_offset(0) == 2
    assert await _states(rig, ["c0", "c1", "c2"]) == before

    await rig.deliver(msgs[3:])  # the consumer, re-read from 3
    want, _ = expected(events, rig.settings)
    assert await _states(rig, sorted(want)) == want
    assert await rig.committed() == 7


async def test_a_hole_inside_a_batch_applies_the_run_before_it_then_rewinds(rig: Rig) -> None:
    """Records fetched before and after a rewind share a batch: 3, 4, 6, 7. Catches a
    processor that applies 6 and 7 before 5 (or skips 5)."""
    asked = record_rewinds(rig)
    events = _events(8)
    msgs = rig.messages(_dumps(events))
    await rig.deliver(msgs[:3])

    await rig.deliver([msgs[3], msgs[4], msgs[6], msgs[7]])
    assert asked == [(0, 5)]
    assert await rig.committed() == 4
    want, _ = expected(events[:5], rig.settings)
    assert await _states(rig, sorted(want)) == want

    await rig.deliver(msgs[5:])
    want, _ = expected(events, rig.settings)
    assert await _states(rig, sorted(want)) == want


# ---------------------------------------------------------------------- dedupe
async def test_the_same_event_id_twice_is_counted_once(rig: Rig) -> None:
    """A producer retry sends the same event under a new offset, in the same batch and
    in a later one. Catches event-id dedupe being lost (frequency and monetary would
    count it twice), and an offset that stops at the duplicate."""
    ev = purchase("c1", 1, NOW - timedelta(days=3), "700")
    msgs = await rig.feed(_dumps([ev, ev]))
    more = await rig.feed(_dumps([ev]))

    state = await rig.store.get_state(0, "c1")
    want, transitions = expected([ev], rig.settings)
    assert state == want["c1"]
    assert rig.processor.stats.duplicate_events == 2
    assert rig.processor.stats.events == 3  # applied (as no-ops), not dead-lettered
    assert rig.outputs.letters == []
    assert len(await _outbox(rig)) == len(transitions)
    assert await rig.committed() == more[-1].offset == msgs[-1].offset + 1


async def test_a_redelivered_batch_is_skipped_by_its_offsets(rig: Rig) -> None:
    """A crash after the commit but before the consumer's ack redelivers the batch.
    Catches the offset guard being lost (events would be seen again; only event-id
    dedupe would save state, and a refund or a letter would not be)."""
    events = _events(6)
    values = _dumps(events)
    values.insert(3, b"[]")  # a dead letter among them: must not be sent twice
    msgs = await rig.feed(values)
    outbox = await _outbox(rig)
    states = await _states(rig, ["c0", "c1", "c2"])

    await rig.deliver(msgs)
    assert rig.processor.stats.duplicates_skipped == len(msgs)
    assert rig.processor.stats.duplicate_events == 0  # never reached the engine
    assert await _states(rig, ["c0", "c1", "c2"]) == states
    assert await _outbox(rig) == outbox
    assert len(rig.outputs.letters) == 1


# ---------------------------------------------------------------------- dead letters
async def test_each_rejected_record_gets_one_letter_and_the_rest_is_applied(rig: Rig) -> None:
    """Catches a rejected record that is dropped silently (no letter), lettered twice,
    stops the batch, or keeps the offset from moving past it."""
    good = _events(5)
    future = purchase("c1", 90, NOW + timedelta(hours=2))
    ancient = purchase("c1", 91, NOW, occurred_at="0001-01-01T00:00:00+01:00")
    unknown = {**purchase("c2", 92, NOW - timedelta(days=1)), "kind": "gift"}
    values = _dumps(good)
    values[1:1] = [b"\x00not json"]  # offset 1
    values[3:3] = [orjson.dumps(unknown)]  # offset 3
    values[5:5] = [orjson.dumps(future)]  # offset 5
    values.append(orjson.dumps(ancient))  # offset 8, the last
    msgs = await rig.feed(values, partition=0)

    letters = rig.outputs.letters
    assert [(d["partition"], d["offset"], d["error_class"]) for d in letters] == [
        (0, 1, "MalformedJSON"),
        (0, 3, "UnknownKind"),
        (0, 5, "FutureEvent"),
        (0, 8, "EventTimeOutOfRange"),
    ]
    assert all(d["error_message"] for d in letters)
    assert rig.processor.stats.dead_letters == {
        "MalformedJSON": 1,
        "UnknownKind": 1,
        "FutureEvent": 1,
        "EventTimeOutOfRange": 1,
    }
    want, _ = expected(good, rig.settings)
    assert await _states(rig, sorted(want)) == want
    assert await rig.committed() == msgs[-1].offset
