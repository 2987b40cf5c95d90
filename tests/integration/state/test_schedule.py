"""The bucketed due-time schedule against a real Redis: exact reads, moves, splits, and
the states and schedule entries written before buckets (format v1, one sorted set)."""

from __future__ import annotations

import random

import pytest

from segments import NEVER, CustomerState
from state import RedisStore
from state.codec_v1 import encode_v1
from state.schedule import SPLIT

pytestmark = [pytest.mark.integration, pytest.mark.redis_cluster_too]

T0 = 1_767_225_600_000


def state(cid: str) -> CustomerState:
    return CustomerState(cid, 1, 100, 1, 2, 3, {"rfm8": "new"})


async def buckets(store: RedisStore, p: int) -> dict[str, tuple[int, str]]:
    """bucket id -> (members, encoding)."""
    c = store.client
    out = {}
    for b in await c.zrange(store.keys.schedule_index(p), 0, -1):
        key = f"{store.keys.tag(p)}:s:{b}"
        out[b] = (int(await c.zcard(key)), str(await c.object("encoding", key)))
    return out


async def commit(store: RedisStore, p: int, due: dict[str, int], with_states: bool = True) -> None:
    claim = await store.claim(p)
    meta = await store.load(p, [])
    states = [state(cid) for cid in due] if with_states else []
    await store.commit(p, claim.epoch, meta.version, states, due, [])


async def test_due_reads_exactly_the_due_customers_in_time_order(store: RedisStore) -> None:
    rng = random.Random(7)
    due = {f"c{i:04d}": T0 + i * 1000 for i in range(1000)}
    items = list(due.items())
    rng.shuffle(items)
    for lo in range(0, len(items), 150):
        await commit(store, 0, dict(items[lo : lo + 150]))
    found = await buckets(store, 0)
    assert len(found) > 1000 // SPLIT
    assert all(n <= SPLIT and enc == "listpack" for n, enc in found.values())
    assert await store.tallies.schedule_size(0) == 1000
    for now in (T0 - 1, T0, T0 + 499_500, T0 + 10**9):
        want = sorted((t, c) for c, t in due.items() if t <= now)
        assert await store.due(0, now, 2000) == [c for _, c in want]
        assert await store.due(0, now, 7) == [c for _, c in want][:7]
        assert await store.tallies.due_count(0, now) == len(want)
    # half of them move far ahead, a quarter leave the schedule
    moved = {c: T0 + 10**8 + i for i, c in enumerate(list(due)[:500])}
    gone = dict.fromkeys(list(due)[500:750], NEVER)
    await commit(store, 0, moved)
    await commit(store, 0, gone, with_states=False)
    due.update(moved)
    for c in gone:
        del due[c]
    assert await store.tallies.schedule_size(0) == len(due) == 750
    want = [c for _, c in sorted((t, c) for c, t in due.items() if t <= T0 + 10**7)]
    assert await store.due(0, T0 + 10**7, 2000) == want and len(want) == 250
    assert await store.due(0, T0 + 2 * 10**8, 2000) == [
        c for _, c in sorted((t, c) for c, t in due.items())
    ]


async def test_a_state_rewrite_keeps_its_schedule_entry(store: RedisStore) -> None:
    """A commit of a state without a new due time leaves the customer's entry alone."""
    await commit(store, 1, {"a": T0})
    claim = await store.claim(1)
    meta = await store.load(1, ["a"])
    await store.commit(1, claim.epoch, meta.version, [state("a")], {}, [])
    assert await store.due(1, T0, 10) == ["a"]
    assert await store.tallies.schedule_size(1) == 1


async def test_many_customers_due_at_one_instant(store: RedisStore) -> None:
    """More than a bucket holds, all at one due time: the bucket can't split, it grows."""
    due = {f"c{i:04d}": T0 for i in range(3 * SPLIT)} | {"late": T0 + 1}
    await commit(store, 2, due)
    assert sorted(await store.due(2, T0, 10_000)) == sorted(c for c in due if c != "late")
    assert await store.due(2, T0 + 1, 10_000) == [*sorted(c for c in due if c != "late"), "late"]
    assert await store.tallies.schedule_size(2) == len(due)


async def test_a_v1_state_and_its_legacy_schedule_entry_load_and_migrate(
    store: RedisStore,
) -> None:
    """What the previous release wrote (v1 hash fields, one sorted set as the schedule) is
    read as it is, and moves to the new format the first time the customer is committed."""
    old = CustomerState(
        "c-9", 3, 4_500_000, T0, T0 + 5, T0 + 5, {"rfm8": "new"}, {"AAAAAAAAAAAA": T0 + 5}
    )
    old.orders = {"o-1": [4_500_000, 4_500_000, T0]}
    old.stamp = "a518adda4374/0"
    old.history = [["rfm8", "none", "new", "first_purchase", T0]]
    await store.claim(3)  # connects: a cluster's client replaces the first one
    c = store.client
    await c.hset(
        store.keys.customer(3, "c-9"),
        mapping=dict(zip(*[iter(map(str, encode_v1(old)))] * 2, strict=True)),
    )
    await c.zadd(store.keys.due(3), {"c-9": T0 + 100, "no-state": T0 + 50})
    assert (await store.load(3, ["c-9"])).states == {"c-9": old}
    assert await store.due(3, T0 + 100, 10) == ["no-state", "c-9"]
    assert await store.tallies.schedule_size(3) == 2
    await commit(store, 3, {"c-9": T0 + 200})
    assert (await store.load(3, ["c-9"])).states == {"c-9": state("c-9")}
    assert set(await c.hkeys(store.keys.customer(3, "c-9"))) == {"a", "u"}
    assert await c.zrange(store.keys.due(3), 0, -1) == ["no-state"]
    assert await store.due(3, T0 + 200, 10) == ["no-state", "c-9"]
    await commit(store, 3, {"no-state": NEVER}, with_states=False)
    assert await store.due(3, T0 + 200, 10) == ["c-9"]
    assert await store.tallies.schedule_size(3) == 1


async def test_a_state_that_shrinks_leaves_no_fields_behind(store: RedisStore) -> None:
    """A long state is chunked over several fields; committed shorter, the hash holds only
    the new fields (and the schedule pointer)."""
    big = state("c-1")
    big.orders = {f"order-{i:05d}": [i, i, T0 + i] for i in range(300)}
    await commit(store, 0, {"c-1": T0})
    claim = await store.claim(0)
    meta = await store.load(0, [])
    await store.commit(0, claim.epoch, meta.version, [big], {}, [])
    key = store.keys.customer(0, "c-1")
    assert len(await store.client.hkeys(key)) > 3
    assert (await store.load(0, ["c-1"])).states == {"c-1": big}
    await commit(store, 0, {"c-1": T0 + 5})
    assert set(await store.client.hkeys(key)) == {"a", "u"}
    assert (await store.load(0, ["c-1"])).states == {"c-1": state("c-1")}
    assert await store.due(0, T0 + 5, 10) == ["c-1"]
