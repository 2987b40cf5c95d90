"""Fixtures that start the real parts: a Kafka-protocol broker, a redis-server and a
three-master Redis Cluster.

Each is started once per session on free ports (never the machine's 6379), the cluster
only if a test asks for it. Set ``RFM_TEST_KAFKA_BOOTSTRAP`` / ``RFM_TEST_REDIS_URL`` /
``RFM_TEST_REDIS_CLUSTER_URL`` to run against servers of your own instead. If a server
can't be started the tests using it *fail* (an error in the fixture), they never skip.

Tests marked ``redis_cluster_too`` (a module's ``pytestmark`` or one test) run twice: on the
single redis-server (``[redis]``) and on the Redis Cluster (``[redis-cluster]``). The
same test code, only ``redis_url`` differs, which is all the product looks at.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from state.connection import RedisClient, connect
from stream.demo.embedded import start_redis, start_redis_cluster, start_tansu
from tests.support.harness import Cluster, isolated_cluster

# the failure tests' own servers (dedicated redis-servers and brokers they can break)
pytest_plugins = ["tests.support.fixtures"]


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
def single_redis_url() -> Iterator[str]:
    given = os.environ.get("RFM_TEST_REDIS_URL")
    if given:
        yield given
        return
    server = start_redis()
    try:
        yield f"redis://{server.address}/0"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """Three ``redis-server --cluster-enabled yes`` joined by ``redis-cli --cluster create``."""
    given = os.environ.get("RFM_TEST_REDIS_CLUSTER_URL")
    if given:
        yield given
        return
    servers = start_redis_cluster(masters=3)
    try:
        yield servers.url
    finally:
        servers.stop()


REDIS_KINDS = {"redis": "single_redis_url", "redis-cluster": "redis_cluster_url"}


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """The Redis of this test: the single server unless parametrized (see the module doc)."""
    kind = getattr(request, "param", "redis")
    return str(request.getfixturevalue(REDIS_KINDS[kind]))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "redis_url" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "redis_cluster_too"
    ):
        metafunc.parametrize("redis_url", list(REDIS_KINDS), indirect=True)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[RedisClient]:
    client = await connect(redis_url, decode_responses=True)
    await client.ping()
    yield client
    await client.aclose()


@pytest.fixture
def cluster(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Isolated topics, group and namespace for one test, plus worker processes on demand."""
    with isolated_cluster(kafka_bootstrap, redis_url, tmp_path_factory, "workers") as c:
        yield c
