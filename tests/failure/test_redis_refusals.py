"""Redis refusing writes mid-stream (OOM, READONLY after a failover, MISCONF) is waited out
like Redis being down, and an evicting Redis is refused at start.

Real worker processes, a real broker, a dedicated real redis-server per test; the result
is compared with one uninterrupted run (``tests/support/failkit.py``).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from stream.demo.embedded import Service, free_port, start_redis
from tests.support.failkit import (
    CLAIM,
    NO_TIMER,
    applied,
    assert_alive,
    assert_effectively_once,
    produce_paced,
    tail,
    wait_applied_at_least,
    wait_log,
)
from tests.support.harness import Cluster, history

pytestmark = pytest.mark.integration

Client = aioredis.Redis


@dataclass
class Refusal:
    """How to make a redis-server refuse writes, and how to make it take them again."""

    refuse: Callable[[Client, Service], Awaitable[None]]
    accept: Callable[[Client, Service], Awaitable[None]]


async def _oom(c: Client, _: Service) -> None:
    await c.config_set("maxmemory", "1")  # used memory is always more: every write refused


async def _oom_over(c: Client, _: Service) -> None:
    await c.config_set("maxmemory", "0")


async def _misconf(c: Client, server: Service) -> None:
    """A snapshot that can't be written (its directory is gone) stops writes."""
    gone = tempfile.mkdtemp(prefix="rfm-misconf-")
    await c.config_set("save", "3600 1")
    await c.config_set("dir", gone)
    shutil.rmtree(gone)
    await c.bgsave()
    deadline = time.monotonic() + 30
    while (await c.info("persistence"))["rdb_last_bgsave_status"] != "err":
        assert time.monotonic() < deadline, "the snapshot never failed"
        await asyncio.sleep(0.05)


async def _misconf_over(c: Client, server: Service) -> None:
    assert server.workdir is not None
    await c.config_set("dir", str(server.workdir))
    await c.bgsave()
    deadline = time.monotonic() + 30
    while (await c.info("persistence"))["rdb_last_bgsave_status"] != "ok":
        assert time.monotonic() < deadline, "the snapshot never succeeded again"
        await asyncio.sleep(0.05)


class Failover:
    """The worker's Redis A is demoted to a replica of B (a failover the worker's URL did
    not follow: its writes get READONLY), then promoted back. Writes are paused around
    the swap so that B holds exactly what A had (no failover data loss: not this test's
    subject)."""

    def __init__(self) -> None:
        self.other: Service | None = None

    async def refuse(self, a: Client, server: Service) -> None:
        self.other = start_redis(extra_args=["--replicaof", "127.0.0.1", str(server.port)])
        b = aioredis.Redis(port=self.other.port, decode_responses=True)
        try:
            await _wait_synced(a, b)
            await a.client_pause(20_000, all=False)  # writes wait; reads go on
            await _wait_synced(a, b)
            await b.replicaof("NO", "ONE")
            await a.replicaof("127.0.0.1", str(self.other.port))
            await _wait_link_up(a)
            await a.client_unpause()
        finally:
            await b.aclose()

    async def accept(self, a: Client, _: Service) -> None:
        await a.replicaof("NO", "ONE")

    def stop(self) -> None:
        if self.other is not None:
            self.other.stop()


async def _wait_synced(master: Client, replica: Client) -> None:
    deadline = time.monotonic() + 30
    while True:
        m = (await master.info("replication"))["master_repl_offset"]
        r = await replica.info("replication")
        if r.get("master_link_status") == "up" and r.get("slave_repl_offset") == m:
            return
        assert time.monotonic() < deadline, f"replica never caught up: {m} vs {r}"
        await asyncio.sleep(0.05)


async def _wait_link_up(replica: Client) -> None:
    deadline = time.monotonic() + 30
    while (await replica.info("replication")).get("master_link_status") != "up":
        assert time.monotonic() < deadline, "demoted master never linked to the new one"
        await asyncio.sleep(0.05)


@pytest.fixture
def refusing_redis() -> Iterator[Service]:
    """A dedicated redis-server whose protected configs (``dir``) may be changed."""
    server = start_redis(extra_args=["--enable-protected-configs", "yes"])
    try:
        yield server
    finally:
        server.stop()


async def _scrape(http: aiohttp.ClientSession, port: int) -> tuple[int, dict[str, Any], str]:
    async with http.get(f"http://127.0.0.1:{port}/health") as r:
        status, body = r.status, await r.json()
    async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
        return status, body, await r.text()


@pytest.mark.parametrize("reason", ["OOM", "READONLY", "MISCONF"])
async def test_redis_refusing_writes_midstream_is_waited_out(
    kafka_bootstrap: str, refusing_redis: Service, cluster_on: Any, reason: str
) -> None:
    """Redis starts refusing writes at a quarter of the stream: the worker stays up, stops
    applying, /health is 503 naming the refusal and /metrics counts it; once Redis takes
    writes again every event is applied exactly once and no transition is lost."""
    failover = Failover()
    refusal = {
        "OOM": Refusal(_oom, _oom_over),
        "READONLY": Refusal(failover.refuse, failover.accept),
        "MISCONF": Refusal(_misconf, _misconf_over),
    }[reason]
    cluster: Cluster = cluster_on(kafka_bootstrap, f"redis://{refusing_redis.address}/0")
    port = free_port()
    opts = {**NO_TIMER, "batch_max": "50"}
    settings = await cluster.ensure_topics(**opts)
    parts = settings.partitions
    worker = cluster.start_worker(http_port=str(port), **opts)
    await wait_log(worker, CLAIM, wait_s=40)

    events = history(customers=200, events=2000, seed=71)
    n, half = len(events), len(events) // 2
    first = await produce_paced(cluster, events[:half], per_second=300)
    store = cluster.store()
    admin = aioredis.Redis(port=refusing_redis.port, decode_responses=True)
    try:
        await wait_applied_at_least(store, parts, n // 4, wait_s=60)
        await refusal.refuse(admin, refusing_redis)
        # the rest of the stream comes while Redis refuses (so that the worker has writes)
        producing = asyncio.create_task(produce_paced(cluster, events[half:], per_second=300))
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while True:  # the worker notices at its next commit
                assert_alive(worker)
                status, health, metrics = await _scrape(http, port)
                if status == 503 and health.get("redis_refusal") == reason:
                    break
                assert time.monotonic() < deadline, f"/health never named {reason}: {health}"
                await asyncio.sleep(0.05)
            assert health["redis_up"] is False and reason in health["redis_error"]
            lines = metrics.splitlines()
            assert f'rfm_redis_refusing{{reason="{reason}"}} 1' in lines
            assert "rfm_redis_up 0" in lines
            # it rides the refusal out without applying anything (nor dying)
            stalled = await applied(store, parts)
            for _ in range(40):
                assert_alive(worker)
                await asyncio.sleep(0.05)
            assert await applied(store, parts) == stalled < n
            refused = [
                ln
                for ln in (await _scrape(http, port))[2].splitlines()
                if ln.startswith(f'rfm_redis_refusals_total{{reason="{reason}"}}')
            ]
            assert refused and float(refused[0].split()[-1]) >= 1, refused
            await refusal.accept(admin, refusing_redis)
            produced = first + await producing
            delivered = await assert_effectively_once(cluster, settings, events, produced, [worker])
            status, health, metrics = await _scrape(http, port)
        assert health["redis_up"] is True and "redis_refusal" not in health, health
        assert f'rfm_redis_refusing{{reason="{reason}"}} 0' in metrics.splitlines()
    finally:
        await store.close()
        await admin.aclose()
        failover.stop()
    log = worker.text()
    assert f"redis refuses writes ({reason}" in log, tail(worker)
    assert f"redis is back (was {reason})" in log, tail(worker)
    print(
        f"\n[{reason}] refused at {stalled}/{n} applied; "
        f"{delivered.messages} transition messages, {delivered.duplicates} redelivered"
    )


async def test_worker_refuses_to_start_on_an_evicting_redis(
    kafka_bootstrap: str, refusing_redis: Service, cluster_on: Any
) -> None:
    """allkeys-lru would silently drop customer states, offsets and the outbox: the worker
    exits 2 with one line naming the policy and the override; the override starts it."""
    admin = aioredis.Redis(port=refusing_redis.port, decode_responses=True)
    try:
        await admin.config_set("maxmemory-policy", "allkeys-lru")
    finally:
        await admin.aclose()
    cluster: Cluster = cluster_on(kafka_bootstrap, f"redis://{refusing_redis.address}/0")
    await cluster.ensure_topics(**NO_TIMER)
    refused = cluster.start_worker(**NO_TIMER)
    deadline = time.monotonic() + 60
    while refused.proc.poll() is None:
        assert time.monotonic() < deadline, f"worker did not exit:\n{tail(refused)}"
        await asyncio.sleep(0.1)
    assert refused.proc.returncode == 2, tail(refused)
    lines = [ln for ln in refused.text().splitlines() if ln.startswith("rfm-stream: ")]
    assert len(lines) == 1, tail(refused)
    assert "maxmemory-policy is allkeys-lru" in lines[0] and "RFM_ALLOW_EVICTION=true" in lines[0]
    assert CLAIM not in refused.text()

    allowed = cluster.start_worker(allow_eviction="true", **NO_TIMER)
    await wait_log(allowed, CLAIM, wait_s=60)
    assert "started anyway: RFM_ALLOW_EVICTION" in allowed.text()
