"""The bucketed schedule against a model: after any sequence of commits, every customer is
where its due time says, and nothing else is anywhere.

The commit script keeps the schedule (:mod:`state.schedule`) with per-customer pointers,
bucket moves, splits and drops; a wrong step there loses a decay (a customer in no
bucket, or in one the timer reads too late) or fires one twice. Hypothesis drives random
commits (many customers due at one instant, moves across buckets, customers leaving the
schedule, entries for customers with no hash) and every invariant is read back from Redis.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import cast

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from segments import NEVER, CustomerState
from state import RedisStore
from state.schedule import SPLIT

pytestmark = [pytest.mark.integration, pytest.mark.redis_cluster_too]

T0 = 1_767_225_600_000
POOL = [f"c{i:03d}" for i in range(400)]


@st.composite
def _due_times(draw: st.DrawFn) -> dict[str, int]:
    """Due times for a run of the pool (up to all of it: buckets split), a few distinct
    ones (same-time groups that never split) or many, some customers leaving."""
    n = draw(st.integers(1, len(POOL)))
    start = draw(st.integers(0, len(POOL) - 1))
    spread = draw(st.sampled_from([1, 2, 5, 40, 1000]))
    step = draw(st.integers(1, 997))
    offset = draw(st.integers(0, 40))
    leave = draw(st.sampled_from([0, 0, 2, 7]))  # every k-th customer leaves (0: none)
    out = {}
    for i in range(n):
        cid = POOL[(start + i) % len(POOL)]
        gone = leave and i % leave == 0
        out[cid] = NEVER if gone else T0 + 1000 * ((offset + i * step) % spread)
    return out


# (due times, with states: else schedule entries alone, as a timer step's stale ids)
_step = st.tuples(_due_times(), st.sampled_from([True, True, True, False]))


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """A loop of the test's own: hypothesis runs examples synchronously."""
    with asyncio.Runner() as r:
        yield r


def _state(cid: str) -> CustomerState:
    return CustomerState(cid, 1, 100, 1, 2, 3, {"rfm8": "new"})


async def _commit(store: RedisStore, due: dict[str, int], with_states: bool) -> None:
    claim = await store.claim(0)
    meta = await store.load(0, [])
    states = [_state(c) for c in due] if with_states else []
    await store.commit(0, claim.epoch, meta.version, states, due, [])


async def _scored(store: RedisStore, key: str) -> list[tuple[str, float]]:
    """A sorted set's (member, score) pairs, in order (the client decodes responses)."""
    got = await store.client.zrange(key, 0, -1, withscores=True)
    return cast(list[tuple[str, float]], got)


async def _check(store: RedisStore, want: dict[str, int], hashed: set[str]) -> None:
    c = store.client
    tag = store.keys.tag(0)
    index = await _scored(store, store.keys.schedule_index(0))
    placed: dict[str, int] = {}
    total = 0
    for i, (b, lo) in enumerate(index):
        members = await _scored(store, f"{tag}:s:{b}")
        assert members, f"bucket {b} is empty but still indexed"
        hi = index[i + 1][1] if i + 1 < len(index) else float("inf")
        times = {int(t) for _, t in members}
        assert len(members) <= SPLIT or len(times) == 1, (b, len(members), len(times))
        for cid, t in members:
            assert lo <= t < hi, f"{cid} due {t} sits in bucket [{lo}, {hi})"
            assert cid not in placed, f"{cid} in two buckets"
            placed[cid] = int(t)
        total += len(members)
        if len(members) > SPLIT:
            event("a same-time bucket over SPLIT")
    event(f"buckets: {'1' if len(index) < 2 else '2-3' if len(index) < 4 else '4+'}")
    legacy = {m: int(t) for m, t in await _scored(store, store.keys.due(0))}
    assert not placed.keys() & legacy.keys()
    if legacy:
        event("entries in the old single set")
    assert placed | legacy == want
    assert await store.tallies.schedule_size(0) == len(want)
    assert int(await c.hget(store.keys.meta(0), "sz") or 0) == total
    for cid in hashed:
        u = await c.hget(store.keys.customer(0, cid), "u")
        assert u == (str(placed[cid]) if cid in placed else None), (cid, u)
    assert not legacy.keys() & hashed, "a customer with a hash keeps its entry in the old set"
    for now in sorted({T0 - 1, *want.values()}):
        due = {cid for cid, t in want.items() if t <= now}
        got = await store.due(0, now, 10_000)
        assert len(got) == len(set(got)) and set(got) == due
        assert await store.tallies.due_count(0, now) == len(due)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_step, min_size=1, max_size=6))
def test_every_customer_is_where_its_due_time_says(
    runner: asyncio.Runner, redis_url: str, steps: list[tuple[dict[str, int], bool]]
) -> None:
    store = RedisStore.from_url(redis_url, "rfm", f"t{uuid.uuid4().hex[:8]}")
    want: dict[str, int] = {}
    hashed: set[str] = set()
    try:
        for due, with_states in steps:
            runner.run(_commit(store, due, with_states))
            for cid, t in due.items():
                if with_states:
                    hashed.add(cid)
                if t == NEVER:
                    want.pop(cid, None)
                else:
                    want[cid] = t
            runner.run(_check(store, want, hashed))
    finally:
        runner.run(store.close())
