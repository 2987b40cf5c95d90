"""One server or a Redis Cluster, from the URL alone; what only a cluster can get wrong.

Against the real three-master cluster of the ``redis_cluster_url`` fixture: detection,
seed lists, a partition's keys in one slot on one master, scripts after a script-cache
flush (a failed-over master has none), SCAN of one partition on its own master, and
promote/drop over keys spread across the masters. The verbs common to both kinds (and
the partition-layout record) run on both in ``test_store.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from schemas.errors import StoreUnavailable
from segments import CustomerState
from state import RedisStore
from state.connection import connect, is_cluster
from state.layout import ensure_layout
from state.namespaces import BUILD, BUILT, drop, promote
from stream.demo.embedded import free_port

pytestmark = pytest.mark.integration


def state(cid: str, f: int = 1) -> CustomerState:
    return CustomerState(cid, f, 100 * f, 1, 2, 3, {"rfm8": "new"})


@pytest.fixture
async def cstore(redis_cluster_url: str) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(redis_cluster_url, "rfm", f"t{uuid.uuid4().hex[:8]}")
    yield s
    await s.close()


async def test_the_url_alone_decides_single_or_cluster(
    single_redis_url: str, redis_cluster_url: str
) -> None:
    single = await connect(single_redis_url, decode_responses=True)
    cluster = await connect(redis_cluster_url, decode_responses=True)
    try:
        assert not is_cluster(single)
        assert is_cluster(cluster) and len(cluster.get_primaries()) == 3
    finally:
        await single.aclose()
        await cluster.aclose()


async def test_a_cluster_url_lists_seeds_and_one_may_be_down(redis_cluster_url: str) -> None:
    """``redis+cluster://dead,alive/0``: no INFO asked, the first answering seed serves."""
    alive = redis_cluster_url.removeprefix("redis://").removesuffix("/0")
    url = f"redis+cluster://127.0.0.1:{free_port()},{alive}/0"
    store = RedisStore.from_url(url, "rfm", f"t{uuid.uuid4().hex[:8]}")
    try:
        await store.ping()
        assert store.cluster
        claim = await store.claim(0)
        await store.commit(0, claim.epoch, 0, [state("a")], {}, [], offset=3)
        assert (await store.load(0, ["a"])).states == {"a": state("a")}
    finally:
        await store.close()


async def test_no_reachable_seed_is_store_unavailable_not_a_crash() -> None:
    store = RedisStore.from_url(f"redis+cluster://127.0.0.1:{free_port()}/0", "rfm", "x")
    with pytest.raises(StoreUnavailable):
        await store.ping()


async def test_partitions_spread_over_the_masters_each_in_one_slot(cstore: RedisStore) -> None:
    client = await cstore.connect()
    assert isinstance(client, RedisCluster)
    k = cstore.keys
    owners = set()
    for p in range(16):
        keys = [k.meta(p), k.due(p), k.outbox(p), k.customer(p, "c1"), k.summary(p, "m")]
        assert len({key_slot(x.encode()) for x in keys}) == 1
        owners.add(client.get_node_from_key(k.meta(p)).name)
    assert len(owners) == 3, "16 partitions should land on all three masters"


async def test_scripts_survive_an_empty_script_cache(cstore: RedisStore) -> None:
    """A master that failed over (or was added) has no scripts: EVALSHA answers NOSCRIPT,
    the store loads the script and runs it, the caller sees nothing."""
    client = await cstore.connect()
    claims = {p: await cstore.claim(p) for p in range(6)}
    await client.script_flush()  # every master
    for p, c in claims.items():
        await cstore.commit(p, c.epoch, 0, [state(f"x{p}")], {f"x{p}": 10}, [], offset=p)
    assert await cstore.committed_offsets(range(6)) == {p: p for p in range(6)}


async def test_scan_of_one_partition_runs_on_its_master_and_finds_exactly_its_customers(
    cstore: RedisStore,
) -> None:
    want: dict[int, set[str]] = {p: set() for p in range(6)}
    for p in range(6):
        claim = await cstore.claim(p)
        ids = [f"p{p}c{i}" for i in range(40)]
        want[p] = set(ids)
        await cstore.commit(p, claim.epoch, 0, [state(c) for c in ids], {}, [], offset=1)
    for p in range(6):
        found: list[str] = []
        cursor = 0
        while True:
            cursor, ids = await cstore.scans.scan_partition(p, cursor, 7)
            found += ids
            if cursor == 0:
                break
        assert set(found) == want[p]
    assert len(await cstore.scans.scan_states()) == 240


async def test_the_tallies_and_scans_follow_the_store_onto_the_cluster_client(
    cstore: RedisStore,
) -> None:
    """The store's readers ask it for the client on every call: the first one, on a store
    that has not asked the server yet, swaps in the cluster client, and their scripts
    run there (registered on that client, not on the single-server one they started
    with)."""
    assert not cstore.cluster  # a plain redis:// URL: nothing asked yet
    assert await cstore.tallies.schedule_size(0) == 0
    assert cstore.cluster
    for p in range(3):
        claim = await cstore.claim(p)
        ids = [f"p{p}c{i}" for i in range(p + 1)]
        await cstore.commit(p, claim.epoch, 0, [state(c) for c in ids], dict.fromkeys(ids, 5), [])
    assert [await cstore.tallies.schedule_size(p) for p in range(3)] == [1, 2, 3]
    assert [await cstore.tallies.due_count(p, 5) for p in range(3)] == [1, 2, 3]
    assert len((await cstore.scans.scan_customers(2, 0, 10))[1]) == 3


async def test_promote_and_drop_reach_every_master(redis_cluster_url: str) -> None:
    name, old, new = (f"{x}{uuid.uuid4().hex[:6]}" for x in "lon")
    stores = {ns: RedisStore.from_url(redis_cluster_url, "rfm", ns) for ns in (old, new)}
    try:
        for s in stores.values():
            for p in range(6):
                claim = await s.claim(p)
                await s.commit(p, claim.epoch, 0, [state(f"c{p}")], {}, [], offset=p)
        await ensure_layout(stores[new], "purchases", 6)  # a finished backfill: promotable
        for p in range(6):
            await stores[new].set_meta_field(p, BUILD, BUILT)
        client = await stores[old].connect()
        await client.set(f"rfm:active:{name}", old)
        assert await promote(client, "rfm", name, new) == old
        assert [(await stores[old].meta(p))[2] for p in range(6)] == [new] * 6
        assert await stores[new].serving(name) == new
        assert await drop(client, "rfm", name, old) == 6 * 2  # meta + customer per partition
        assert await stores[old].scans.scan_states() == []
        assert len(await stores[new].scans.scan_states()) == 6
    finally:
        for s in stores.values():
            await s.close()
