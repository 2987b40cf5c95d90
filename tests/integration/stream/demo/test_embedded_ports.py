"""The embedded servers (demo, fixtures, benchmarks) on a free port someone took first.

:func:`stream.demo.embedded.free_port` says a port is free when asked; before the server
binds it, another process's connection can take it. A benchmark run lost that race once
(redis-server: "Address already in use"), and the suite starts dozens of servers a run,
so a server that ends before listening on a port we picked starts again on another one.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from stream.demo import embedded

pytestmark = [pytest.mark.integration]


@pytest.fixture
def taken() -> Iterator[int]:
    """A port bound by someone else and not listening: what a racing connection's local
    port looks like to a server that wants it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield int(holder.getsockname()[1])


def _racing(monkeypatch: pytest.MonkeyPatch, first: int) -> list[int]:
    """``free_port`` hands out ``first``, then really free ports; returns what it handed."""
    real = embedded.free_port
    handed: list[int] = []

    def free_port() -> int:
        handed.append(first if not handed else real())
        return handed[-1]

    monkeypatch.setattr(embedded, "free_port", free_port)
    return handed


@pytest.mark.parametrize(
    "start", [embedded.start_redis, embedded.start_tansu], ids=["redis", "tansu"]
)
def test_a_server_whose_free_port_was_taken_starts_on_another(
    monkeypatch: pytest.MonkeyPatch, taken: int, start: Callable[[], embedded.Service]
) -> None:
    handed = _racing(monkeypatch, taken)
    service = start()
    try:
        assert handed[0] == taken
        assert service.port == handed[-1] != taken
        with socket.create_connection(("127.0.0.1", service.port), 2):
            pass
    finally:
        service.stop()


def test_a_port_the_caller_chose_is_not_swapped_and_the_error_says_why(taken: int) -> None:
    with pytest.raises(embedded.ExitedBeforeListening, match="Address already in use"):
        embedded.start_redis(port=taken)


def test_a_server_that_cannot_listen_fails_after_its_attempts(
    monkeypatch: pytest.MonkeyPatch, taken: int
) -> None:
    calls: list[int] = []

    def free_port() -> int:
        calls.append(taken)
        return taken

    monkeypatch.setattr(embedded, "free_port", free_port)
    with pytest.raises(embedded.ExitedBeforeListening, match="Address already in use"):
        embedded.start_redis()
    assert len(calls) == embedded.PORT_ATTEMPTS


def test_a_cluster_node_whose_bus_port_was_taken_starts_on_fresh_ports(
    monkeypatch: pytest.MonkeyPatch, taken: int
) -> None:
    """A cluster node needs two ports: its bus port (``--cluster-port``) can be lost to the
    same race, and a retry on the same bus port would lose again."""
    real = embedded.free_port
    handed: list[int] = []

    def free_port() -> int:  # the node's port, then its bus port: the bus port is taken
        handed.append(taken if len(handed) == 1 else real())
        return handed[-1]

    monkeypatch.setattr(embedded, "free_port", free_port)
    node = embedded.start_redis(cluster=True)
    try:
        assert handed[1] == taken and len(handed) == 4  # a second attempt, on two new ports
        bus = node.argv[node.argv.index("--cluster-port") + 1]
        assert node.port == handed[2] and int(bus) == handed[3] != taken
        with socket.create_connection(("127.0.0.1", node.port), 2):
            pass
    finally:
        node.stop()
