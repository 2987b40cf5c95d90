"""Invariant 10 through the real processor and a real redis-server: the due-firing path
at a 10,000-customer due time, and what one customer's state can hold.

The processor runs in-process (no broker: the items are about Redis scripts and the
engine's bounds); what it would publish is collected by a small :class:`Outputs`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
import pytest

from schemas.money import MONEY_SCALE
from schemas.settings import Settings
from segments import CustomerState
from segments.engine import Engine
from segments.limits import Limits
from segments.model import Purchase
from state import RedisStore
from stream.apply.clock import ManualClock
from stream.apply.messages import Msg
from stream.apply.processor import Processor
from tests.support.harness import T0, purchase
from tests.unit.segments.fixtures import Bands

pytestmark = pytest.mark.integration

DAY = 86_400_000
L = int(T0.timestamp() * 1000)
GROUP = 10_000


@dataclass
class Collected:
    """The processor's outputs, kept: dead letters as their decoded JSON."""

    letters: list[dict] = field(default_factory=list)

    async def dead_letter(self, letters: Sequence[tuple[bytes | None, bytes]]) -> None:
        self.letters.extend(orjson.loads(v) for _, v in letters)

    async def forward(self, msgs: Sequence[tuple[int, bytes | None, bytes | None]]) -> None:
        raise AssertionError(f"nothing here is misrouted: {msgs}")


@dataclass
class Rig:
    store: RedisStore
    processor: Processor
    out: Collected


@pytest.fixture
async def rig(single_redis_url: str) -> AsyncIterator[Rig]:
    ns = f"t{uuid.uuid4().hex[:8]}"
    settings = Settings(redis_url=single_redis_url, namespace=ns)
    store = RedisStore.from_url(single_redis_url, settings.key_prefix, ns)
    out = Collected()
    wall = ManualClock(L + 400 * DAY)  # every event is in the past
    processor = Processor(settings, store, Engine([Bands()]), out, clock=wall, wall=wall)
    await processor.assign([0])
    yield Rig(store, processor, out)
    await store.close()


def msgs(events: Sequence[dict], first_offset: int = 0) -> list[Msg]:
    return [Msg(0, first_offset + i, None, orjson.dumps(e)) for i, e in enumerate(events)]


async def test_the_timer_moves_one_customer_a_second_before_ten_thousand_sharing_a_due_time(
    rig: Rig,
) -> None:
    """10,000 customers bought at one instant: one schedule bucket, all due at ``T``.
    A customer whose entry predates the buckets (the legacy set) decays and is due next
    a second before ``T``: its entry lands in that bucket, which splits. Once that moved
    the whole group through one ``unpack`` and failed after the decayed state was
    written, without the transition: lost on the retry."""
    store, processor = rig.store, rig.processor
    await processor.process_partition(0, msgs([purchase(f"g{i:05d}", i, T0) for i in range(GROUP)]))
    due_at = L + 30 * DAY
    assert await store.due(0, due_at - 1, 10) == []
    # x bought 60 days and a second earlier: due at +30 days, then at T - 1 s (+90 days)
    bought = L - 60 * DAY - 1000
    x = {"x": CustomerState("x")}
    Engine([Bands()]).apply_events(x, [Purchase("x", "x-e0", bought, 100)])
    loaded = await store.load(0, [])
    claim = processor.claims[0]
    await store.commit(0, claim.epoch, loaded.version, [x["x"]], {}, [])
    await store.client.zadd(store.keys.due(0), {"x": bought + 30 * DAY})

    assert await processor.run_due(0, bought + 30 * DAY) == 1
    state = (await store.load(0, ["x"])).states["x"]
    assert state.segments == {"bands": "cooling"} and state.cursor_ms == bought + 30 * DAY
    outbox = await store.outbox_read(0, GROUP * 3)
    decays = [orjson.loads(d) for _, c, d in outbox if c == "x"]
    assert [(t["from_segment"], t["to_segment"]) for t in decays] == [("active", "cooling")]
    assert await store.due(0, due_at - 1, 10) == ["x"]

    assert await processor.run_due(0, due_at) == GROUP + 1
    outbox = await store.outbox_read(0, GROUP * 3)
    fired = [orjson.loads(d) for _, _, d in outbox]
    assert sum(t["cause"] == "recency_decay" for t in fired) == GROUP + 2
    assert await store.due(0, due_at, 10) == []
    assert await store.tallies.schedule_size(0) == GROUP  # the group's next edge; x has none left


def refund(n: int, pad: int = 0) -> dict:
    """A refund of an order not bought yet (held); ``pad`` spaces of JSON whitespace."""
    ev = {
        "event_id": f"r{n}",
        "customer_id": "c1",
        "order_id": f"r{n}",
        "kind": "refund",
        "refund_of": f"later-{n}",
        "occurred_at": (T0 + timedelta(minutes=n)).isoformat(),
        "amount": "1",
        "currency": "CNY",
    }
    return {**ev, "__pad__": pad} if pad else ev


def encode(ev: dict) -> bytes:
    """JSON of ``ev``; a ``__pad__`` entry becomes that much whitespace (still valid)."""
    pad = ev.pop("__pad__", 0)
    raw = orjson.dumps(ev)
    return raw[:-1] + b" " * pad + b"}"


def refund_msgs(events: Sequence[dict], first_offset: int = 0) -> list[Msg]:
    return [Msg(0, first_offset + i, None, encode(dict(e))) for i, e in enumerate(events)]


async def test_a_customer_at_the_held_refund_limit_dead_letters_the_next_one(rig: Rig) -> None:
    limit = Limits().held
    await rig.processor.process_partition(0, refund_msgs([refund(n) for n in range(limit + 8)]))
    state = (await rig.store.load(0, ["c1"])).states["c1"]
    assert [h.event_id for h in state.held] == [f"r{n}" for n in range(limit)]
    assert [(d["error_class"], d["offset"]) for d in rig.out.letters] == [
        ("RefundHoldLimit", n) for n in range(limit, limit + 8)
    ]
    assert "already holds 32 refunds" in rig.out.letters[0]["error_message"]
    assert await rig.store.committed_offsets([0]) == {0: limit + 7}
    # the purchases arrive: each held refund retracts from its order
    buys = [
        purchase("c1", n, T0 + timedelta(minutes=n), "5") | {"order_id": f"later-{n}"}
        for n in range(limit)
    ]
    await rig.processor.process_partition(0, msgs(buys, limit + 8))
    state = (await rig.store.load(0, ["c1"])).states["c1"]
    assert state.held == [] and state.monetary == limit * 4 * MONEY_SCALE


async def test_refunds_that_store_their_whole_message_are_bounded_in_size(rig: Rig) -> None:
    """150 held refunds of 40 KB messages once made a 8 MB state whose commit failed
    ('too many results to unpack') after writing; held refunds take at most 32 KiB."""
    big = [refund(n, pad=40_000) for n in range(150)]
    small = [refund(1000 + n, pad=2_000) for n in range(20)]
    await rig.processor.process_partition(0, refund_msgs(big + small))
    state = (await rig.store.load(0, ["c1"])).states["c1"]
    held = {h.event_id for h in state.held}
    assert held and held <= {e["event_id"] for e in small}
    assert sum(len(h.ref) for h in state.held) <= Limits().held_chars
    refused = [d for d in rig.out.letters if d["error_class"] == "RefundHoldLimit"]
    assert len(refused) == 170 - len(held)
    assert await rig.store.committed_offsets([0]) == {0: 169}
