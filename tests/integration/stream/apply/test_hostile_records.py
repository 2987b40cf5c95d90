"""Issue #16 items 1 and 2: no record stops a partition.

A real :class:`Processor` on the test session's real redis-server (no broker: what it
would publish is collected). Item 1: event times outside the supported range are
dead-lettered at validation (the year-0001 purchase used to crash-loop every owner of
its partition). Item 2, the safety net: a record that gets past validation and still
makes applying the batch raise is dead-lettered as ``ProcessingError`` and the rest of
the batch is applied, exactly once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError

from schemas.errors import StoreUnavailable
from schemas.times import to_ms
from segments.model import Event, Purchase
from state.store import RedisStore
from stream.apply.validate import Validator
from stream.demo.embedded import Service
from tests.support.harness import expected, purchase
from tests.support.processor_rig import CollectingOutputs, Rig, make_rig

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
YEAR_0001 = orjson.dumps(
    {
        "event_id": "e1",
        "customer_id": "c1",
        "order_id": "o1",
        "kind": "purchase",
        "occurred_at": "0001-01-01T00:00:00+01:00",
        "amount": "1",
        "currency": "CNY",
    }
)


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    r = await make_rig(redis_url, to_ms(NOW), decay_timer="false")
    yield r
    await r.close()


def _good(n: int, customers: int = 5) -> list[dict[str, Any]]:
    """``n`` purchases of a few customers, an hour apart, before NOW."""
    return [
        purchase(f"c{i % customers}", i, NOW - timedelta(days=30) + timedelta(hours=i), "120")
        for i in range(n)
    ]


async def _states(rig: Rig, customers: list[str]) -> dict[str, Any]:
    return {c: await rig.store.get_state(0, c) for c in customers}


async def _outbox_ids(store: RedisStore) -> list[str]:
    rows = await store.outbox_read(0, 10_000)
    return sorted(orjson.loads(payload)["transition_id"] for _, _, payload in rows)


# ---------------------------------------------------------------------- item 1
async def test_the_year_0001_purchase_is_dead_lettered_and_the_partition_moves_on(
    rig: Rig,
) -> None:
    """The payload of the issue, between two good purchases of the same customer."""
    good = [purchase("c1", 1, NOW - timedelta(days=3)), purchase("c1", 2, NOW - timedelta(days=1))]
    msgs = await rig.feed([orjson.dumps(good[0]), YEAR_0001, orjson.dumps(good[1])])

    assert [(d["offset"], d["error_class"]) for d in rig.outputs.letters] == [
        (msgs[1].offset, "EventTimeOutOfRange")
    ]
    assert "before 1970-01-01" in rig.outputs.letters[0]["error_message"]
    assert await rig.committed() == msgs[-1].offset
    want, _ = expected(good, rig.settings)
    assert await _states(rig, ["c1"]) == want


@pytest.mark.parametrize(
    "occurred_at",
    ["1026-03-01T10:00:00+08:00", "1969-12-31T23:59:59.999Z", "1900-01-01T00:00:00Z"],
)
async def test_a_purchase_before_1970_never_reaches_state(rig: Rig, occurred_at: str) -> None:
    """It used to stick in ``first_purchase_at`` and never move ``last_ms``."""
    ok = purchase("c1", 1, NOW - timedelta(days=3))
    old = purchase("c1", 2, NOW, occurred_at=occurred_at)
    await rig.feed([orjson.dumps(ok), orjson.dumps(old)])
    assert [d["error_class"] for d in rig.outputs.letters] == ["EventTimeOutOfRange"]
    state = await rig.store.get_state(0, "c1")
    assert state is not None
    at = to_ms(datetime.fromisoformat(ok["occurred_at"]))
    assert (state.frequency, state.first_ms, state.last_ms) == (1, at, at)


async def test_the_first_millisecond_of_1970_is_applied_end_to_end(rig: Rig) -> None:
    """The floor itself is accepted, and everything downstream handles it (a decay due
    at once, a transition dated 1970)."""
    ev = purchase("c0", 1, datetime(1970, 1, 1, tzinfo=UTC))
    await rig.feed([orjson.dumps(ev)])
    assert rig.outputs.letters == []
    state = await rig.store.get_state(0, "c0")
    assert state is not None and (state.first_ms, state.frequency) == (0, 1)
    assert await rig.processor.run_due(0) == 1  # long dormant by NOW: decays, encodes
    assert len(await _outbox_ids(rig.store)) >= 2


async def test_the_earliest_event_setting_raises_the_floor(redis_url: str) -> None:
    r = await make_rig(redis_url, to_ms(NOW), earliest_event="2020-01-01T00:00:00+08:00")
    try:
        await r.feed([orjson.dumps(purchase("c1", 1, datetime(2019, 12, 31, 16, tzinfo=UTC)))])
        await r.feed([orjson.dumps(purchase("c1", 2, datetime(2019, 12, 31, 15, tzinfo=UTC)))])
        assert [d["error_class"] for d in r.outputs.letters] == ["EventTimeOutOfRange"]
        assert "RFM_EARLIEST_EVENT" in r.outputs.letters[0]["error_message"]
        assert r.outputs.letters[0]["offset"] == 1
    finally:
        await r.close()


# ---------------------------------------------------------------------- item 2
class _Gap(Validator):
    """A validator with a gap: it lets the year-0001 payload through (as the one before
    issue #16 did), and an amount too large for the engine's int64 columns."""

    def event(self, value: bytes | None, wall_ms: int) -> Event:
        d = orjson.loads(value or b"null")
        if isinstance(d, dict) and d.get("occurred_at", "").startswith("0001-"):
            at = to_ms(datetime.fromisoformat(d["occurred_at"]))
            return Purchase(d["customer_id"], d["event_id"], at, 10_000, d["order_id"])
        if isinstance(d, dict) and d.get("amount") == "2e20":
            at = to_ms(datetime.fromisoformat(d["occurred_at"]))
            return Purchase(d["customer_id"], d["event_id"], at, 2 * 10**24, d["order_id"])
        return super().event(value, wall_ms)


def _poison(customer: str, n: int, kind: str) -> bytes:
    """``encode``: crashes encoding a new customer's first transition (after the engine
    applied it, in place); ``engine``: crashes inside the engine (int64 overflow)."""
    if kind == "encode":
        ev = purchase(f"new-{customer}", n, NOW, occurred_at="0001-01-01T00:00:00+01:00")
    else:
        ev = purchase(customer, n, NOW - timedelta(days=2), amount="2e20")
    return orjson.dumps(ev)


@pytest.mark.parametrize("kind", ["encode", "engine"])
async def test_a_record_that_crashes_the_batch_is_dead_lettered_and_the_rest_applied(
    rig: Rig, kind: str
) -> None:
    """Two poison records among 40 good ones (one at the very end; of the same customers
    for ``engine``):
    each is dead-lettered as ProcessingError with the exception's text; every other event
    is applied exactly as in one clean pass (no half-applied state of the failed attempt
    leaks into the retry), and the offset moves past the whole batch."""
    rig.processor.validator = _Gap(rig.settings)
    good = _good(40)
    values = [orjson.dumps(e) for e in good]
    values.insert(13, _poison("c3", 1000, kind))
    values.append(_poison("c1", 1001, kind))
    msgs = await rig.feed(values)

    letters = rig.outputs.letters
    assert [(d["offset"], d["error_class"]) for d in letters] == [
        (13, "ProcessingError"),
        (len(values) - 1, "ProcessingError"),
    ]
    assert all("OverflowError" in d["error_message"] for d in letters), letters
    assert await rig.committed() == msgs[-1].offset
    want_states, want_transitions = expected(good, rig.settings)
    assert await _states(rig, sorted(want_states)) == want_states
    assert await _outbox_ids(rig.store) == sorted(t["transition_id"] for t in want_transitions)
    assert rig.processor.stats.events == len(good)
    assert rig.processor.stats.dead_letters == {"ProcessingError": 2}

    # redelivered (a crash before the consumer's ack): nothing applies twice, no new letters
    await rig.deliver(msgs)
    assert await _states(rig, sorted(want_states)) == want_states
    assert len(rig.outputs.letters) == 2


class _FlakyDlq(CollectingOutputs):
    """A dead-letter topic whose first publish fails (the broker is away)."""

    failed = False

    async def dead_letter(self, letters: Sequence[tuple[bytes | None, bytes]]) -> None:
        if not self.failed:
            self.failed = True
            raise KafkaConnectionError()
        await super().dead_letter(letters)


async def test_an_isolation_cut_short_by_the_broker_resumes_exactly_once(rig: Rig) -> None:
    """The first dead letter of an isolation can't be published: the batch fails with an
    infrastructure error, after the pieces before the poison were committed. Retried
    (as the worker's backoff does), it finishes from Redis's offset: every good event
    applied once, each transition once in the outbox, the poison dead-lettered once."""
    rig.processor.validator = _Gap(rig.settings)
    rig.processor.outputs = rig.outputs = _FlakyDlq()
    good = _good(30)
    values = [orjson.dumps(e) for e in good]
    values.insert(20, _poison("c2", 1000, "engine"))
    msgs = rig.messages(values)
    with pytest.raises(KafkaConnectionError):
        await rig.deliver(msgs)
    assert 0 <= await rig.committed() < 20  # some pieces before the poison committed
    await rig.deliver(msgs)

    assert [(d["offset"], d["error_class"]) for d in rig.outputs.letters] == [
        (20, "ProcessingError")
    ]
    assert await rig.committed() == len(values) - 1
    want_states, want_transitions = expected(good, rig.settings)
    assert await _states(rig, sorted(want_states)) == want_states
    rows = await rig.store.outbox_read(0, 10_000)
    ids = [orjson.loads(payload)["transition_id"] for _, _, payload in rows]
    assert sorted(ids) == sorted(t["transition_id"] for t in want_transitions)


async def test_a_batch_of_only_poison_moves_the_offset(rig: Rig) -> None:
    rig.processor.validator = _Gap(rig.settings)
    msgs = await rig.feed([_poison("c1", 1, "encode"), _poison("c2", 2, "engine")])
    assert [d["error_class"] for d in rig.outputs.letters] == ["ProcessingError"] * 2
    assert await rig.committed() == msgs[-1].offset
    assert await _states(rig, ["new-c1", "c2"]) == {"new-c1": None, "c2": None}


class _Buggy(Validator):
    """A validator that fails on one input with something other than InvalidEvent."""

    def event(self, value: bytes | None, wall_ms: int) -> Event:
        if value == b"boom":
            raise KeyError("a bug in the validator")
        return super().event(value, wall_ms)


async def test_a_validator_bug_dead_letters_that_record_only(rig: Rig) -> None:
    rig.processor.validator = _Buggy(rig.settings)
    good = _good(3)
    msgs = await rig.feed([orjson.dumps(good[0]), b"boom", b"{bad", *map(orjson.dumps, good[1:])])
    assert [(d["offset"], d["error_class"]) for d in rig.outputs.letters] == [
        (1, "ProcessingError"),
        (2, "MalformedJSON"),
    ]
    assert "KeyError" in rig.outputs.letters[0]["error_message"]
    assert await rig.committed() == msgs[-1].offset
    want, _ = expected(good, rig.settings)
    assert await _states(rig, sorted(want)) == want


async def test_a_clean_batch_still_costs_one_load_and_one_commit(rig: Rig) -> None:
    """The hot path is unchanged by the safety net: two script calls per batch."""
    await rig.feed([orjson.dumps(e) for e in _good(3)])  # scripts loaded, partition warm
    before = await _evalsha_calls(rig.store)
    await rig.feed([orjson.dumps(e) for e in _good(200, customers=50)[3:]])
    assert await _evalsha_calls(rig.store) - before == 2


async def _evalsha_calls(store: RedisStore) -> int:
    stats = await store.client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_redis_down_is_not_a_record_fault(volatile_redis: Service) -> None:
    """An unavailable Redis is raised to the retry loop as before: nothing dead-lettered."""
    url = f"redis://{volatile_redis.address}/0"
    r = await make_rig(url, to_ms(NOW))
    r.processor.validator = _Gap(r.settings)
    try:
        volatile_redis.stop()
        with pytest.raises(StoreUnavailable):
            await r.feed([orjson.dumps(e) for e in _good(3)] + [_poison("c1", 9, "encode")])
        assert r.outputs.letters == []
    finally:
        await r.close()
