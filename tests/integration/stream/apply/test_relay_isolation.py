"""Issue #16 item 9, the relay's part: one partition's failing drain neither stops nor
cancels the others', is retried on its own after a backoff, and recovers by itself.

Real Redis and a real broker; the failure is real too: partition 1's outbox key holds a
string instead of a stream, so every read of it fails (WRONGTYPE) until it is repaired.
"""

from __future__ import annotations

import asyncio
import time

from tests.integration.stream.apply.test_relay import close, fill, read_all, relay_on


async def test_one_failing_partition_does_not_stop_or_cancel_the_others(
    kafka_bootstrap: str, redis_url: str
) -> None:
    relay = await relay_on(kafka_bootstrap, redis_url, {0, 1, 2})
    try:
        broken = relay.store.keys.outbox(1)
        await relay.store.client.set(broken, "not a stream")
        await fill(relay.store, 0, 2000)
        await fill(relay.store, 2, 2000)
        running = asyncio.ensure_future(relay.run())
        for p in (0, 1, 2):
            relay.wake(p)
        deadline = time.monotonic() + 30
        while relay.published < 4000 and time.monotonic() < deadline:
            assert not running.done(), running.exception()
            await asyncio.sleep(0.05)
        assert relay.published == 4000
        assert set(relay.failing) == {1} and "WRONGTYPE" in relay.failing[1].error
        failures = relay.failing[1].failures
        await asyncio.sleep(1.0)  # retried with a backoff, not in a tight loop
        assert 1 < relay.failing[1].failures <= failures + 6

        await relay.store.client.delete(broken)  # repaired: it drains by itself
        await fill(relay.store, 1, 300)
        deadline = time.monotonic() + 30
        while relay.published < 4300 and time.monotonic() < deadline:  # noqa: ASYNC110 - a counter, polled
            await asyncio.sleep(0.05)
        assert relay.published == 4300
        assert relay.failing == {}
        assert not running.done()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

        got = await read_all(kafka_bootstrap, relay.topic, 4300)
        keys = [(d["p"], d["i"]) for d in got]
        assert len(keys) == len(set(keys)) == 4300  # every entry once: none cancelled mid-way
    finally:
        await close(relay)


async def test_a_failing_partition_is_retried_while_others_keep_the_relay_busy(
    kafka_bootstrap: str, redis_url: str
) -> None:
    """Both partitions' publishing fails (say the topic refuses writes); partition 0 keeps
    committing, so the relay is woken far more often than its poll interval; partition 1
    commits nothing more (paused by back-pressure, or idle). Once 1 is repaired, only the
    relay's own retry can publish what its outbox holds: it must not wait for a wake."""
    relay = await relay_on(kafka_bootstrap, redis_url, {0, 1})
    busy: asyncio.Future[None] | None = None
    try:
        for p in (0, 1):
            await relay.store.client.set(relay.store.keys.outbox(p), "not a stream")
        running = asyncio.ensure_future(relay.run())
        relay.wake(0)
        relay.wake(1)
        deadline = time.monotonic() + 30
        while len(relay.failing) < 2 and time.monotonic() < deadline:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.05)
        assert set(relay.failing) == {0, 1}

        async def keep_busy() -> None:  # partition 0 commits every 20 ms, still failing
            while True:
                relay.wake(0)
                await asyncio.sleep(0.02)

        busy = asyncio.ensure_future(keep_busy())
        failures = relay.failing[1].failures
        deadline = time.monotonic() + 30
        while relay.failing[1].failures < failures + 2 and time.monotonic() < deadline:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.05)  # 1 failed again while 0 kept the relay busy
        await relay.store.client.delete(relay.store.keys.outbox(1))
        await fill(relay.store, 1, 300)  # written by an earlier commit; nothing wakes 1
        deadline = time.monotonic() + 30
        while relay.published < 300 and time.monotonic() < deadline:
            assert not running.done(), running.exception()
            await asyncio.sleep(0.05)
        assert relay.published == 300, "the repaired partition was never retried"
        assert set(relay.failing) == {0}
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    finally:
        if busy is not None:
            busy.cancel()
        await close(relay)
