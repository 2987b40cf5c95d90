"""The start-up probe tells a broker that refuses this client's configuration from one that
is going down or still starting: both may take the connection and close it during the
set-up, with nothing naming why. Only a close that lasts (``CLOSED_FOR_S``) is a refusal;
a passing one is waited out (the reviewer's finding: it used to stop the worker at once)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.settings import Settings, load_settings
from stream.demo.embedded import Service, free_port
from stream.kafka import security
from stream.kafka.security import KafkaRefused, check_kafka
from tests.support.tcp_proxy import TcpProxy
from tests.support.tls import start_tansu_authenticating

pytestmark = [pytest.mark.integration]


@pytest.fixture
def refusing_broker(tmp_path: Path) -> Iterator[Service]:
    broker = start_tansu_authenticating(tmp_path)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def closing_proxy() -> Iterator[TcpProxy]:
    """Takes every connection and closes it (its target port has no listener), until a
    test points it at a broker."""
    proxy = TcpProxy(target_port=free_port())
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()


def sasl_settings(bootstrap: str) -> Settings:
    return load_settings(
        kafka_bootstrap=bootstrap,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="rfm-worker",
        kafka_sasl_password="hunter2-secret",
    )


async def test_a_broker_that_closes_for_a_while_is_waited_for(
    closing_proxy: TcpProxy, refusing_broker: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security, "CLOSED_FOR_S", 30.0)
    started = time.monotonic()
    probe = asyncio.create_task(check_kafka(sasl_settings(closing_proxy.address)))
    await asyncio.sleep(2.5)
    assert not probe.done(), "a close during the set-up was taken for a refusal at once"
    closing_proxy.target_port = refusing_broker.port  # the broker is up
    with pytest.raises(KafkaRefused) as refused:
        await asyncio.wait_for(probe, 60)
    # what stopped it is the broker's own answer to the login, not the closes before it
    assert "SASL authentication failed for user 'rfm-worker'" in str(refused.value)
    assert "hunter2" not in str(refused.value)
    assert time.monotonic() - started >= 2.5


async def test_a_broker_that_keeps_closing_is_a_refusal(
    closing_proxy: TcpProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security, "CLOSED_FOR_S", 2.0)
    started = time.monotonic()
    with pytest.raises(KafkaRefused, match="closed the connection during the set-up"):
        await asyncio.wait_for(check_kafka(sasl_settings(closing_proxy.address)), 60)
    assert time.monotonic() - started >= 2.0
