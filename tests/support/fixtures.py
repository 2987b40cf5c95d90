"""Fixtures of the failure tests: dedicated redis-servers and brokers they can break."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stream.demo.embedded import Service, free_port, start_redis, start_tansu
from tests.support.harness import Cluster, new_cluster
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[Service]:
    """A dedicated redis-server, AOF on and fsynced on every write: a restart loses nothing."""
    server = start_redis(appendonly=True, appendfsync="always", workdir=tmp_path / "redis-aof")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cluster_on(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    """Make :class:`Cluster` s on servers of the test's own; stops their workers after."""
    made: list[Cluster] = []

    def make(kafka_bootstrap: str, redis_url: str) -> Cluster:
        c = new_cluster(kafka_bootstrap, redis_url, tmp_path_factory)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.discard()


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[Service]:
    """A dedicated redis-server that keeps nothing on disk: a restart brings it back empty."""
    server = start_redis(workdir=tmp_path / "redis-volatile")
    try:
        yield server
    finally:
        server.stop()


@dataclass
class ProxiedBroker:
    broker: Service
    proxy: TcpProxy


@pytest.fixture
async def proxied_broker(tmp_path: Path) -> AsyncIterator[ProxiedBroker]:
    """A dedicated Tansu that advertises a proxy's port: every client connection after
    bootstrap goes through the proxy too, so cutting it is a broker outage for all."""
    broker_port = free_port()
    proxy = TcpProxy(target_port=broker_port)
    broker = start_tansu(
        port=broker_port, advertised_port=proxy.port, log_path=tmp_path / "tansu.log"
    )
    try:
        proxy.start()
        yield ProxiedBroker(broker, proxy)
    finally:
        proxy.close()
        broker.stop()
