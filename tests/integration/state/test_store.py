"""The Redis store against a real redis-server: atomic fenced commits, schedule, outbox."""

from __future__ import annotations

import pytest

from schemas.errors import CommitConflict, Fenced, LayoutMismatch
from segments import NEVER, CustomerState
from state import Keys, RedisStore
from state.layout import ensure_layout, recorded_layout

pytestmark = [pytest.mark.integration, pytest.mark.redis_cluster_too]


def state(cid: str, f: int = 1) -> CustomerState:
    return CustomerState(cid, f, 100 * f, 1, 2, 3, {"rfm8": "new"})


async def test_commit_writes_everything_and_load_reads_it_back(store: RedisStore) -> None:
    claim = await store.claim(0)
    assert claim.offset == -1
    ver = await store.commit(
        0,
        claim.epoch,
        0,
        [state("a"), state("b", 3)],
        {"a": 500, "b": NEVER},
        [("a", b'{"x":1}')],
        offset=41,
    )
    assert ver == 1
    loaded = await store.load(0, ["a", "b", "zz"])
    assert (loaded.version, loaded.offset, loaded.epoch) == (1, 41, claim.epoch)
    assert loaded.states == {"a": state("a"), "b": state("b", 3)}
    assert await store.due(0, 499, 10) == []
    assert await store.due(0, 500, 10) == ["a"]
    rows = await store.outbox_read(0, 10)
    assert [(c, p) for _, c, p in rows] == [("a", b'{"x":1}')]
    await store.outbox_ack(0, [rows[0][0]])
    assert await store.outbox_read(0, 10) == []
    assert (await store.committed_offsets([0, 1])) == {0: 41, 1: -1}


async def test_a_fenced_worker_cannot_write(store: RedisStore) -> None:
    old = await store.claim(2)
    new = await store.claim(2)  # the partition moved to another worker
    assert new.epoch == old.epoch + 1
    with pytest.raises(Fenced):
        await store.commit(2, old.epoch, 0, [state("z")], {"z": 1}, [("z", b"{}")], offset=9)
    # nothing of the rejected commit is visible: not the state, schedule, outbox or offset
    loaded = await store.load(2, ["z"])
    assert loaded.states == {} and loaded.offset == -1 and loaded.version == 0
    assert await store.due(2, 10, 10) == [] and await store.outbox_read(2, 10) == []
    await store.commit(2, new.epoch, 0, [state("z")], {"z": 1}, [], offset=9)


async def test_stale_version_is_a_conflict_not_a_lost_update(store: RedisStore) -> None:
    claim = await store.claim(1)
    await store.commit(1, claim.epoch, 0, [state("a", 1)], {}, [], offset=1)
    with pytest.raises(CommitConflict):
        await store.commit(1, claim.epoch, 0, [state("a", 7)], {}, [], offset=2)
    assert (await store.load(1, ["a"])).states["a"].frequency == 1


async def test_keys_of_one_partition_share_one_cluster_slot(store: RedisStore) -> None:
    from redis.crc import key_slot

    k = Keys("rfm", "live")
    slots = {
        key_slot(x.encode())
        for x in [k.meta(3), k.due(3), k.outbox(3), k.customer(3, "c1"), k.customer(3, "zz")]
    }
    assert len(slots) == 1
    assert key_slot(k.meta(3).encode()) != key_slot(k.meta(4).encode())


async def test_summary_deltas_commit_with_the_states_and_merge_across_partitions(
    store: RedisStore,
) -> None:
    claims = [await store.claim(p) for p in (0, 1)]
    await store.commit(0, claims[0].epoch, 0, [], {}, [], summaries={"m": {5: 2, 9: 1}})
    await store.commit(1, claims[1].epoch, 0, [], {}, [], summaries={"m": {5: 1}, "f": {1: 3}})
    # a customer leaves bucket 9 for 12; the emptied bucket disappears from the hash
    await store.commit(0, claims[0].epoch, 1, [], {}, [], summaries={"m": {9: -1, 12: 1}})
    assert await store.tallies.summaries([0, 1], ["m", "f", "r"]) == {
        "m": {5: 3, 12: 1},
        "f": {1: 3},
        "r": {},
    }
    assert await store.client.hgetall(store.keys.summary(0, "m")) == {"5": "2", "12": "1"}
    # a fenced commit moves no summary either (it is the same atomic write)
    with pytest.raises(Fenced):
        await store.commit(0, claims[0].epoch - 1, 2, [], {}, [], summaries={"m": {5: 100}})
    assert (await store.tallies.summaries([0], ["m"]))["m"] == {5: 2, 12: 1}


async def test_cut_points_are_replaced_by_compare_and_set(store: RedisStore) -> None:
    assert await store.cuts() is None
    assert await store.put_cuts(0, {"version": 1, "at_ms": 5, "thresholds": {}})
    assert not await store.put_cuts(0, {"version": 1, "at_ms": 6, "thresholds": {}})  # lost
    assert (await store.cuts())["at_ms"] == 5
    assert await store.put_cuts(1, {"version": 2, "at_ms": 7, "thresholds": {}})
    assert (await store.cuts())["version"] == 2


async def test_the_layout_is_written_once_and_another_count_is_refused(
    store: RedisStore,
) -> None:
    assert await recorded_layout(store) is None
    assert await ensure_layout(store, "purchases", 8) is True
    assert await ensure_layout(store, "purchases", 8) is False
    assert await recorded_layout(store) == (8, "purchases")
    with pytest.raises(LayoutMismatch) as refused:
        await ensure_layout(store, "purchases", 12)
    text = str(refused.value)
    assert "built for 8 partitions" in text and "has 12" in text
    assert "backfill" in text and "promote" in text and "\n" not in text
    assert await recorded_layout(store) == (8, "purchases")


async def test_a_typical_customer_hash_stays_a_compact_listpack(store: RedisStore) -> None:
    """With the tuning every redis-server here gets (hash-max-listpack-value 1024) a
    customer with orders and a transition history is a listpack, not a 3x hashtable."""
    from schemas.settings import load_settings
    from segments import Purchase
    from segments.rules import build_engine

    engine = build_engine(load_settings())
    states: dict = {}
    day = 86_400_000
    engine.apply_events(
        states,
        [
            Purchase("c-42", f"ev-{i:06d}", 1_767_225_600_000 + i * 9 * day, 3_500_000, f"o-{i}")
            for i in range(6)
        ],
    )
    claim = await store.claim(0)
    await store.commit(0, claim.epoch, 0, list(states.values()), {}, [])
    key = store.keys.customer(0, "c-42")
    assert await store.client.object("encoding", key) == "listpack"
    assert await store.client.memory_usage(key) < 1000
    assert await store.listpack_value() == 1024


async def test_a_commit_into_a_promoted_away_namespace_raises_moved(store: RedisStore) -> None:
    """The script's refusal must not look like Redis Cluster's own MOVED redirect
    (redis-py would parse it as one and raise something else)."""
    from schemas.errors import Moved

    claim = await store.claim(0)
    await store.set_meta_field(0, "moved", "rebuild2")
    with pytest.raises(Moved) as info:
        await store.commit(0, claim.epoch, 0, [state("a")], {}, [])
    assert info.value.target == "rebuild2"
