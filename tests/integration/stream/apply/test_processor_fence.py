"""A fence is reported while the partition is assigned here, and forgotten once it is not.

A real :class:`Processor` on the session's redis-server: another writer's claim bumps
partition 0's epoch behind its back, the next batch meets the fence and reports it; when
the group then revokes the partition, there is nothing left to report for it (the new
owner applies it), so ``/health`` must not stay 503 for a partition that left.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.times import to_ms
from tests.support.harness import purchase
from tests.support.processor_rig import make_rig

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def test_a_fence_is_reported_then_forgotten_when_the_partition_is_revoked(
    redis_url: str,
) -> None:
    rig = await make_rig(redis_url, to_ms(NOW), decay_timer="false")
    try:
        first = [orjson.dumps(purchase("c1", 0, NOW - timedelta(days=1)))]
        await rig.feed(first)
        await rig.store.claim(0)  # another writer (a newer owner, a backfill) takes it
        await rig.deliver(rig.messages([orjson.dumps(purchase("c1", 1, NOW))]))
        assert 0 in rig.processor.fences, "the fenced batch was dropped silently"
        assert 0 not in rig.processor.owned()
        rig.processor.revoke([0])
        assert rig.processor.fences == {}, "a revoked partition is still reported fenced"
    finally:
        await rig.close()
