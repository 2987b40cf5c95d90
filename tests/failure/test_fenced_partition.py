"""A worker fenced out of a partition the group still assigns to it says so, never stops
silently; the next assignment claims the partition again.

The fence comes from behind the worker's back, the way ``rfm-stream backfill --into`` a
namespace that serves the live name does it: another writer claims the partition (bumps
its epoch) in the worker's namespace. Real worker processes, broker and redis-server.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from stream.demo.embedded import free_port
from tests.support.failkit import CLAIM, NO_TIMER, assert_alive, tail, wait_log, wait_split
from tests.support.harness import Cluster, history

pytestmark = pytest.mark.integration


async def _scrape(port: int) -> tuple[int, dict[str, Any], list[str]]:
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
        async with http.get("/health") as r:
            status, body = r.status, await r.json()
        async with http.get("/metrics") as r:
            return status, body, (await r.text()).splitlines()


@pytest.mark.parametrize("flow", ["live", "idle"])
async def test_a_fenced_partition_is_reported_not_silently_dropped(
    cluster: Cluster, flow: str
) -> None:
    """``live``: events keep coming to the fenced partition (a batch meets the fence);
    ``idle``: nothing comes (only the worker's timer check can meet it)."""
    port = free_port()
    settings = await cluster.ensure_topics(**NO_TIMER)
    worker = cluster.start_worker(http_port=str(port), **NO_TIMER)
    await wait_log(worker, CLAIM, wait_s=40)
    events = history(customers=40, events=200, seed=81)
    await cluster.wait_applied(await cluster.produce(events))
    status, body, _ = await _scrape(port)
    assert status == 200 and not body.get("fenced"), body

    fenced = 2
    store = cluster.store()
    try:
        before = await store.committed_offsets([fenced])
        theirs = await store.claim(fenced)  # another writer takes the partition
        if flow == "live":
            more = [e for e in history(customers=400, events=400, seed=82)]
            produced = await cluster.produce(more)
            assert any(p == fenced for p, _ in produced)
        deadline = time.monotonic() + 30
        while True:
            assert_alive(worker)
            status, body, metrics = await _scrape(port)
            if str(fenced) in body.get("fenced", {}):
                break
            assert time.monotonic() < deadline, f"never reported fenced: {body}\n{tail(worker)}"
            await asyncio.sleep(0.1)
        assert status == 503 and not body["ok"], body
        assert f"epoch is {theirs.epoch}" in body["fenced"][str(fenced)], body
        assert f'rfm_partition_fenced{{partition="{fenced}"}} 1' in metrics
        assert 'rfm_partition_fenced{partition="0"} 0' in metrics
        await wait_log(worker, f"partition {fenced} fenced: ")
        assert fenced not in body["partitions"]
        # it stays said (no flapping back to 200) and nothing is written with the old claim
        await asyncio.sleep(1.0)
        status, body, _ = await _scrape(port)
        assert status == 503 and str(fenced) in body["fenced"]
        assert await store.committed_offsets([fenced]) == before

        # the way out: an assignment (here a second worker joining) claims it again
        second = cluster.start_worker(**NO_TIMER)
        await wait_split([worker, second], settings.partitions, wait_s=60)
        deadline = time.monotonic() + 30
        while (await _scrape(port))[1]["fenced"]:
            assert time.monotonic() < deadline, "the assignment did not clear the fence"
            await asyncio.sleep(0.1)
    finally:
        await store.close()
