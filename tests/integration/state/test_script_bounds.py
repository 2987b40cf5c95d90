"""Invariant 10 against a real redis-server: no script fails after its first write.

Redis's Lua refuses to ``unpack`` more than ~8,000 values and does not roll back what a
failing script already wrote. These tests sit at the limits: a schedule bucket of
10,000 customers sharing one due time that a customer lands below (the split), a state
of thousands of hash fields, and commits the script must refuse whole.
"""

from __future__ import annotations

import re

import orjson
import pytest
from redis.exceptions import ResponseError

from schemas.errors import CommitRefused
from segments import CustomerState
from segments.limits import Limits, held_chars
from segments.model import HeldRefund
from state import RedisStore
from state.codec import MAX_FIELDS, encode_state

pytestmark = [pytest.mark.integration, pytest.mark.redis_cluster_too]

T0 = 1_767_225_600_000
DAY = 86_400_000
GROUP = 10_000


def state(cid: str) -> CustomerState:
    return CustomerState(cid, 1, 100, 1, 2, 3, {"rfm8": "new"})


async def commit(store: RedisStore, p: int, due: dict[str, int]) -> int:
    claim = await store.claim(p)
    meta = await store.load(p, [])
    return await store.commit(p, claim.epoch, meta.version, [state(c) for c in due], due, [])


async def snapshot(store: RedisStore, p: int) -> dict[str, tuple[bytes | None, int]]:
    """Every key of the partition: its serialized value and TTL (DUMP is exact)."""
    c = store.client
    keys = [k async for k in c.scan_iter(f"{store.keys.tag(p)}:*", count=1000)]
    return {k: (await c.dump(k), await c.pttl(k)) for k in sorted(set(keys))}


async def test_one_customer_due_a_second_before_ten_thousand_sharing_a_due_time(
    store: RedisStore,
) -> None:
    """The split path: the bucket of a 10,000-customer same-time group takes a customer
    due a second earlier (its one bucket splits). Once moved the whole group through one
    ``unpack``: 'too many results to unpack', with the customer hash already written."""
    group = {f"g{i:05d}": T0 for i in range(GROUP)}
    await commit(store, 0, group)
    version = await commit(store, 0, {"early": T0 - 1000})
    assert version == 2
    assert (await store.load(0, ["early"])).states == {"early": state("early")}
    assert await store.tallies.schedule_size(0) == GROUP + 1
    assert await store.due(0, T0 - 1000, 10) == ["early"]
    got = await store.due(0, T0, 2 * GROUP)
    assert got[0] == "early" and sorted(got[1:]) == sorted(group)
    # and later ones still split off the group as they should
    await commit(store, 0, {"late": T0 + 1000, "early": T0 + 500})
    got = await store.due(0, T0 + 1000, 2 * GROUP)
    assert got[-2:] == ["early", "late"] and len(got) == GROUP + 2


async def test_one_commit_with_the_group_and_one_due_before_it(store: RedisStore) -> None:
    """The same within one commit: the group first, then one customer a second earlier."""
    due = {f"g{i:05d}": T0 for i in range(GROUP)} | {"early": T0 - 1000}
    assert await commit(store, 1, due) == 1
    assert await store.tallies.schedule_size(1) == GROUP + 1
    assert await store.due(1, T0 - 1, 10) == ["early"]
    assert len(await store.due(1, T0, 2 * GROUP)) == GROUP + 1


async def test_a_state_of_thousands_of_fields_commits_and_loads(store: RedisStore) -> None:
    """A hash written with more values than one ``unpack`` takes (~8,000): HSET goes in
    slices. Once a single HSET: the commit failed, nothing of it usable."""
    big = state("big")
    big.orders = {f"order-{i:06d}-{'x' * 60}": [i, i, T0 + i] for i in range(50_000)}
    fields = encode_state(big)
    assert 8_000 < len(fields) <= 2 * MAX_FIELDS, len(fields)
    claim = await store.claim(2)
    await store.commit(2, claim.epoch, 0, [big], {"big": T0}, [])
    assert (await store.load(2, ["big"])).states == {"big": big}
    assert await store.due(2, T0, 10) == ["big"]
    # and shrinking it back leaves no field behind (the rewrite goes in slices too)
    await store.commit(2, claim.epoch, 1, [state("big")], {}, [])
    assert set(await store.client.hkeys(store.keys.customer(2, "big"))) == {"a", "u"}


async def test_a_state_over_the_limit_is_refused_before_anything_is_sent(
    store: RedisStore,
) -> None:
    huge = state("huge")
    huge.orders = {f"order-{i:06d}-{'x' * 60}": [i, i, T0 + i] for i in range(70_000)}
    assert len(encode_state(huge)) > 2 * MAX_FIELDS
    await commit(store, 3, {"a": T0})
    claim = await store.claim(3)
    before = await snapshot(store, 3)
    with pytest.raises(CommitRefused, match=r"huge.*the limit is 4096"):
        await store.commit(3, claim.epoch, 1, [state("b"), huge], {"b": T0, "huge": T0}, [])
    assert await snapshot(store, 3) == before


def _args(store: RedisStore, p: int, epoch: int, doc: dict, outbox: list[str]) -> dict:
    """Raw KEYS/ARGV of the commit script, as RedisStore.commit lays them out."""
    keys = [store.keys.meta(p), store.keys.due(p), store.keys.outbox(p)]
    keys += [store.keys.customer(p, c) for c in ("a", "b")]
    keys += [f"{store.keys.tag(p)}:n"] * len(doc.get("q", []))
    return {"keys": keys, "args": [epoch, 1, "off", "7", orjson.dumps(doc), *outbox]}


GOOD = {
    "c": [["a", "1 1 1 1  x"], ["a", "2 2 2 2  x"]],
    "d": [["a", str(T0 + 5)], ["b", ""]],
    "q": [["rfm8|new", "1"]],
}


@pytest.mark.parametrize(
    ("change", "outbox", "why"),
    [
        ({"q": [["rfm8|new", "1.5"]]}, [], "a delta is not an integer"),
        ({"q": [["rfm8|new", "99999999999999999999"]]}, [], "a delta is not an integer"),
        ({"d": [["a", str(T0)], ["b", "soon"]]}, [], "a schedule entry"),
        ({"c": [["a", "x"], ["a", "y", "+1"]]}, [], "pairs"),
        ({"c": [["a", "x"]]}, [], "expected 2 customers"),
        ({"c": [["a", "x"], ["a", "x"] + ["y", "z"] * MAX_FIELDS]}, [], "the limit is 4096"),
        ({"x": [[2, T0]]}, [], "an expiry"),
        ({"w": ["watermark", "later"]}, [], "raised meta field"),
        ({}, ["a"], r"\(customer, payload\)"),
    ],
)
async def test_a_commit_the_script_refuses_writes_nothing(
    store: RedisStore, change: dict, outbox: list[str], why: str
) -> None:
    """Every check runs before the first write: a refused commit leaves every key of the
    partition as it was (once, a bad delta failed after the customer hashes were written
    and the schedule moved, with ``ver`` and ``off`` not)."""
    await commit(store, 4, {"a": T0, "b": T0 + 1})
    claim = await store.claim(4)
    before = await snapshot(store, 4)
    script = store._commit
    with pytest.raises(ResponseError) as refused:
        await script(**_args(store, 4, claim.epoch, GOOD | change, outbox))
    assert await snapshot(store, 4) == before, f"written, then: {refused.value}"
    assert re.search(f"^REFUSED .*{why}", str(refused.value)), refused.value
    # the same batch, well formed, goes through
    assert await script(**_args(store, 4, claim.epoch, GOOD, [])) == 2


@pytest.mark.parametrize("which", ["outbox", "counter", "customer"])
async def test_a_key_of_the_wrong_type_is_refused_before_any_write(
    store: RedisStore, which: str
) -> None:
    """A key that holds another type would fail its command mid-script: refused first."""
    await commit(store, 5, {"a": T0, "b": T0 + 1})
    claim = await store.claim(5)
    key = {
        "outbox": store.keys.outbox(5),
        "counter": f"{store.keys.tag(5)}:n",
        "customer": store.keys.customer(5, "b"),
    }[which]
    await store.client.delete(key)
    await store.client.set(key, "not what the script expects")
    before = await snapshot(store, 5)
    with pytest.raises(Exception) as refused:  # which: asserted below (old code: another)
        await store.commit(
            5,
            claim.epoch,
            1,
            [state("a"), state("b")],
            {"a": T0 + 9},
            [("a", b"{}")],
            counters={"n": {"rfm8|new": 1}},
        )
    assert await snapshot(store, 5) == before, f"written, then: {refused.value}"
    assert isinstance(refused.value, CommitRefused), refused.value
    assert "is a string, not a" in str(refused.value)


def at_every_limit(cid: str) -> CustomerState:
    """A customer with every list at its limit (segments.limits), each item as long as
    the validator lets it be: 128-byte non-ASCII order ids (which also make every chunk
    a quarter as long), odd amounts, history spelled out, held refunds of 1 KB each."""
    limits = Limits()
    s = CustomerState(cid, limits.orders, 10**12 + 1, T0 - 80 * DAY, T0, T0, {"rfm8": "new"})
    s.seen = {f"{i:012d}": T0 - 29 * DAY + i * 600_000 for i in range(limits.seen)}
    s.orders = {
        "订" * 42 + f"{i:02x}": [i * 10_001 + 1, i * 10_001 + 1, T0 - 89 * DAY + i * 7_000_000]
        for i in range(limits.orders)
    }
    per = limits.held_chars // limits.held
    s.held = [
        HeldRefund(f"r{i}", f"x{i}", 1, T0, T0 + DAY, "m" * (per - 60)) for i in range(limits.held)
    ]
    assert sum(map(held_chars, s.held)) <= limits.held_chars
    s.history = [[f"scheme {i}", "from x", "to y", "purchase", T0] for i in range(100)]
    return s


async def test_a_customer_at_every_limit_is_far_below_the_backstop(store: RedisStore) -> None:
    s = at_every_limit("full")
    fields = encode_state(s)
    text = sum(len(v.encode()) for v in fields[1::2])
    assert len(fields) // 2 < MAX_FIELDS // 4, (len(fields) // 2, text)
    claim = await store.claim(6)
    await store.commit(6, claim.epoch, 0, [s], {"full": T0}, [])
    assert (await store.load(6, ["full"])).states == {"full": s}


async def test_the_watermark_is_raised_with_the_offset_and_never_lowered(
    store: RedisStore,
) -> None:
    """The backfill's watermark (RedisStore.track_watermark) moves in the commit that
    advances the offset; a commit without an offset, or an earlier cursor, leaves it."""
    store.track_watermark("watermark")
    claim = await store.claim(7)

    async def put(version: int, cursor: int, offset: int | None) -> None:
        s = state("a")
        s.cursor_ms = cursor
        await store.commit(7, claim.epoch, version, [s], {}, [], offset)

    await put(0, T0, 5)
    await put(1, T0 - 1, 6)
    await put(2, T0 + 9, None)  # a decay step: no offset, no watermark
    assert await store.meta_field(7, "watermark") == str(T0)
    assert await store.meta_field(7, "off") == "6"
    assert store.watermarks == {7: T0}
    await store.set_meta_field(7, "watermark", "garbage")
    before = await snapshot(store, 7)
    with pytest.raises(CommitRefused, match="holds no integer"):
        await put(3, T0 + 10, 7)
    assert await snapshot(store, 7) == before
