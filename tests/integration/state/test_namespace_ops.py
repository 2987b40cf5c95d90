"""promote and drop refuse what would lose, double or flood (issue #16 items 5, 6, 8).

Against a real redis-server and a real three-master Redis Cluster (``redis_cluster_too``):
a namespace argument is never a pattern, a promote refused writes nothing at all, an
unfinished backfill is never promoted, nothing claims the namespace live under another
name, and ``drop`` refuses an outbox not yet published.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from schemas.errors import SettingsError
from segments import CustomerState
from state import RedisStore
from state.connection import RedisClient, connect
from state.keys import Keys
from state.layout import ensure_layout
from state.namespaces import (
    BUILD,
    BUILDING,
    BUILT,
    NamespaceRefused,
    drop,
    glob_escape,
    promote,
    refuse_claiming_served,
    retire_done,
    retired,
)

pytestmark = [pytest.mark.integration, pytest.mark.redis_cluster_too]

PARTS = 4


def state(cid: str) -> CustomerState:
    return CustomerState(cid, 1, 100, 1, 2, 3, {"rfm8": "new"})


@dataclass
class World:
    """A name served by ``old`` (its own name: no pointer yet) and a backfill ``new``."""

    client: RedisClient
    url: str
    name: str
    new: str
    other: str

    def store(self, namespace: str) -> RedisStore:
        return RedisStore.from_url(self.url, "rfm", namespace)

    async def build(self, namespace: str, done: bool = True, outbox: int = 0) -> None:
        """A namespace with one customer per partition; backfill finished or not."""
        store = self.store(namespace)
        try:
            await ensure_layout(store, "purchases", PARTS)
            for p in range(PARTS):
                claim = await store.claim(p)
                box = [(f"c{p}", b'{"t": %d}' % i) for i in range(outbox)]
                await store.commit(p, claim.epoch, 0, [state(f"c{p}")], {}, box, offset=p)
                await store.set_meta_field(p, BUILD, BUILT if done else BUILDING)
        finally:
            await store.close()

    async def metas(self, namespace: str) -> list[dict[str, str]]:
        keys = Keys("rfm", namespace)
        return [await self.client.hgetall(keys.meta(p)) for p in range(PARTS)]

    async def pointer(self) -> str | None:
        return await self.client.get(Keys("rfm", self.name).active())


@pytest.fixture
async def world(redis_url: str) -> AsyncIterator[World]:
    client = await connect(redis_url, decode_responses=True)
    tag = uuid.uuid4().hex[:6]
    w = World(client, redis_url, f"l{tag}", f"n{tag}", f"o{tag}")
    yield w
    await client.aclose()


async def test_drop_star_is_refused_and_deletes_nothing(world: World) -> None:
    await world.build(world.name)
    await world.build(world.new)
    for pattern in ("*", "n*", "?", "[a-z]*", "l\\*"):
        with pytest.raises(SettingsError, match="not a namespace name"):
            await drop(world.client, "rfm", world.name, pattern)
        with pytest.raises(SettingsError, match="not a namespace name"):
            await promote(world.client, "rfm", world.name, pattern)
    assert all(m for m in await world.metas(world.name))
    assert all(m for m in await world.metas(world.new))


async def test_glob_escape_matches_literally(world: World) -> None:
    weird = f"rfm-x{world.new}*?[ab]\\"
    await world.client.set(weird, "1")
    await world.client.set(f"rfm-x{world.new}zzab", "1")
    try:
        found = [k async for k in world.client.scan_iter(glob_escape(weird), count=1000)]
        assert found == [weird]
    finally:
        await world.client.delete(weird, f"rfm-x{world.new}zzab")


async def test_promote_refuses_an_unfinished_backfill_and_writes_nothing(world: World) -> None:
    await world.build(world.name)
    await world.build(world.new)
    store = world.store(world.new)
    try:  # the last partition still being backfilled
        await store.set_meta_field(PARTS - 1, BUILD, BUILDING)
    finally:
        await store.close()
    before = (await world.metas(world.name), await world.metas(world.new))
    with pytest.raises(NamespaceRefused, match="not a finished backfill"):
        await promote(world.client, "rfm", world.name, world.new)
    assert await world.pointer() is None
    assert (await world.metas(world.name), await world.metas(world.new)) == before


async def test_promote_refuses_a_namespace_never_marked_built(world: World) -> None:
    await world.build(world.name)
    await world.build(world.new)
    keys = Keys("rfm", world.new)
    for p in range(PARTS):
        await world.client.hdel(keys.meta(p), BUILD)
    with pytest.raises(NamespaceRefused, match="not a finished backfill"):
        await promote(world.client, "rfm", world.name, world.new)
    assert await world.pointer() is None


async def test_promote_switches_everything_and_records_the_retired(world: World) -> None:
    await world.build(world.name)
    await world.build(world.new)
    before = await world.metas(world.new)
    assert await promote(world.client, "rfm", world.name, world.new) == world.name
    assert await world.pointer() == world.new
    after = await world.metas(world.new)
    assert [int(a["epoch"]) for a in after] == [int(b["epoch"]) + 1 for b in before]
    assert [m.get("moved") for m in await world.metas(world.name)] == [world.new] * PARTS
    assert await retired(world.client, "rfm", world.name) == [world.name]
    assert await retire_done(world.client, "rfm", world.name, world.name)
    assert await retired(world.client, "rfm", world.name) == []


async def test_promote_refuses_a_retired_namespace(world: World) -> None:
    await world.build(world.name)
    await world.build(world.new)
    await promote(world.client, "rfm", world.name, world.new)
    with pytest.raises(NamespaceRefused, match="retired"):  # back to the stale original
        await promote(world.client, "rfm", world.name, world.name)
    assert await world.pointer() == world.new


async def test_nothing_claims_the_namespace_live_under_another_name(world: World) -> None:
    await world.build(world.name)
    await world.build(world.new)
    await world.build(world.other)
    await promote(world.client, "rfm", world.other, world.new)  # new now serves `other`
    epochs = [m["epoch"] for m in await world.metas(world.new)]
    with pytest.raises(NamespaceRefused, match=f"live namespace of '{world.other}'"):
        await promote(world.client, "rfm", world.name, world.new)
    with pytest.raises(NamespaceRefused, match=f"live namespace of '{world.other}'"):
        await refuse_claiming_served(world.client, "rfm", world.new, "backfill --into")
    with pytest.raises(NamespaceRefused, match=f"serves '{world.other}'"):
        await drop(world.client, "rfm", world.name, world.new)
    assert [m["epoch"] for m in await world.metas(world.new)] == epochs
    assert await world.pointer() is None


async def test_drop_refuses_an_outbox_not_yet_published(world: World) -> None:
    await world.build(world.name, outbox=3)
    await world.build(world.new)
    await promote(world.client, "rfm", world.name, world.new)
    with pytest.raises(NamespaceRefused, match="12 transitions in its outbox"):
        await drop(world.client, "rfm", world.name, world.name)
    assert all(await world.metas(world.name))
    keys = Keys("rfm", world.name)
    for p in range(PARTS):
        await world.client.delete(keys.outbox(p))  # published
    assert await drop(world.client, "rfm", world.name, world.name) > 0
    assert not any(await world.metas(world.name))
    assert await retired(world.client, "rfm", world.name) == []


async def test_drop_refuses_the_serving_namespace(world: World) -> None:
    await world.build(world.name)
    with pytest.raises(NamespaceRefused, match="serves"):
        await drop(world.client, "rfm", world.name, world.name)
    assert all(await world.metas(world.name))


async def test_drop_refuses_a_namespace_a_cut_short_promote_left_writable(world: World) -> None:
    """A cluster promote runs per-slot steps: cut short after its commit point, the old
    namespace is not marked moved yet (a live commit could still land there). drop waits
    for the promote to be run again, which completes it."""
    await world.build(world.name)
    await world.build(world.new)
    await promote(world.client, "rfm", world.name, world.new)
    await world.client.hdel(Keys("rfm", world.name).meta(1), "moved")  # as if cut short
    with pytest.raises(NamespaceRefused, match="did not complete"):
        await drop(world.client, "rfm", world.name, world.name)
    with pytest.raises(NamespaceRefused, match="already serves"):  # ... and completes it
        await promote(world.client, "rfm", world.name, world.new)
    assert [m.get("moved") for m in await world.metas(world.name)] == [world.new] * PARTS
    assert await drop(world.client, "rfm", world.name, world.name) > 0
