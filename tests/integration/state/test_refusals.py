"""Redis refusals reach the store's callers as :class:`StoreRefused` (retriable) with the
refusal's code, from a real redis-server of the test's own; the eviction rule."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from schemas.errors import StoreUnavailable
from segments import CustomerState
from state import RedisStore
from state.connection import unavailable_as_error
from state.refusals import StoreRefused, eviction_refusal
from stream.demo.embedded import Service, start_redis

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[Service]:
    s = start_redis()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
async def store(server: Service) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(f"redis://{server.address}/0", "rfm", f"t{uuid.uuid4().hex[:8]}")
    yield s
    await s.close()


async def test_out_of_memory_refuses_the_commit_and_writes_nothing(store: RedisStore) -> None:
    claim = await store.claim(0)
    await store.client.config_set("maxmemory", "1")
    state = CustomerState("a", 1, 100, 1, 2, 3, {"rfm8": "new"})
    with pytest.raises(StoreRefused) as info:
        await store.commit(0, claim.epoch, 0, [state], {"a": 5}, [("a", b"{}")], offset=7)
    assert info.value.reason == "OOM" and isinstance(info.value, StoreUnavailable)
    assert info.value.retriable
    with pytest.raises(StoreRefused):
        await store.claim(1)
    await store.client.config_set("maxmemory", "0")
    assert await store.committed_offsets([0]) == {0: -1}  # nothing half-written
    assert await store.commit(0, claim.epoch, 0, [state], {"a": 5}, [], offset=7) == 1


async def test_a_busy_server_and_a_killed_script_are_refusals(
    server: Service, store: RedisStore
) -> None:
    await store.ping()
    await store.client.config_set("busy-reply-threshold", "50")
    looper = aioredis.Redis(port=server.port)
    try:

        async def spin() -> None:
            async with unavailable_as_error():
                await looper.eval("while true do end", 0)

        spinning = asyncio.create_task(spin())
        await asyncio.sleep(0.3)
        with pytest.raises(StoreRefused) as busy:
            await store.meta(0)
        assert busy.value.reason == "BUSY"
        killer = aioredis.Redis(port=server.port)
        try:
            await killer.script_kill()
        finally:
            await killer.aclose()
        with pytest.raises(StoreRefused) as killed:
            await spinning
        assert killed.value.reason == "KILLED"
    finally:
        await looper.aclose()


async def test_a_flushed_script_cache_is_reloaded(store: RedisStore) -> None:
    """NOSCRIPT (a restarted or failed-over Redis has no scripts): loaded again, no error."""
    claim = await store.claim(0)
    await store.client.script_flush()
    state = CustomerState("a", 1, 100, 1, 2, 3, {"rfm8": "new"})
    assert await store.commit(0, claim.epoch, 0, [state], {"a": 5}, [], offset=3) == 1


def test_only_noeviction_starts_without_the_override() -> None:
    assert eviction_refusal(["noeviction"], allowed=False) is None
    refusal = eviction_refusal(["noeviction", "volatile-lru"], allowed=False)
    assert refusal is not None and "volatile-lru" in refusal and "\n" not in refusal
    assert "RFM_ALLOW_EVICTION=true" in refusal
    assert eviction_refusal(["allkeys-lru"], allowed=True) is None
