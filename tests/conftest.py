"""Fixtures that start the real parts: a Kafka-protocol broker and a redis-server.

Both are started once per session on free ports (never the machine's 6379). Set
``RFM_TEST_KAFKA_BOOTSTRAP`` / ``RFM_TEST_REDIS_URL`` to run against servers of your
own instead. If a server can't be started the tests using it *fail* (an error in the
fixture), they never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from stream.embedded import start_redis, start_tansu
from tests.harness import Cluster

pytest_plugins: list[str] = []


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("RFM_TEST_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    broker = start_tansu(log_path=tmp_path_factory.mktemp("tansu") / "tansu.log")
    try:
        yield broker.address
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    given = os.environ.get("RFM_TEST_REDIS_URL")
    if given:
        yield given
        return
    server = start_redis()
    try:
        yield f"redis://{server.address}/0"
    finally:
        server.stop()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.ping()
    yield client
    await client.aclose()


@pytest.fixture
def cluster(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Isolated topics, group and namespace for one test, plus worker processes on demand."""
    suffix = uuid.uuid4().hex[:8]
    c = Cluster(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        suffix=suffix,
        logdir=tmp_path_factory.mktemp(f"workers-{suffix}"),
    )
    try:
        yield c
    finally:
        c.stop_all()
