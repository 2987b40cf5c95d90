"""The state tests' store: a fresh namespace on the session's redis-server (or cluster)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from state.store import RedisStore


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(redis_url, "rfm", f"t{uuid.uuid4().hex[:8]}")
    yield s
    await s.close()
