"""The HTTP API closed by default (issue #17): bind address, bearer token, request budget.

A real :class:`HttpServer` on a real redis-server (its Lookup reads a namespace like the
worker's) answers real HTTP requests; the bind failure runs a real worker process.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import orjson
import pytest
from openapi_spec_validator import validate

from schemas.settings import load_settings
from segments.rules import build_engine
from state.store import RedisStore
from stream.api.lookup import Lookup
from stream.api.openapi import OPEN_ROUTES
from stream.api.server import HttpBindError, HttpServer
from stream.demo.embedded import free_port
from tests.support.harness import RULES, Cluster, isolated_cluster

pytestmark = pytest.mark.integration

TOKEN = "s3cret-T0ken_0123456789~+/="
DAY = "T00:00:00Z"


@contextlib.asynccontextmanager
async def serving(
    redis_url: str, *, token: str | None = None, host: str = "127.0.0.1", **knobs: str
) -> AsyncIterator[tuple[HttpServer, str]]:
    """An HttpServer on a free port over a fresh namespace of the real Redis, as the
    worker builds it (its settings' host, token and budget)."""
    settings = load_settings(
        redis_url=redis_url,
        namespace=f"sec{uuid.uuid4().hex[:8]}",
        rules=str(RULES / "fixed.toml"),
        http_token=token,
        http_host=host,
        **knobs,
    )
    store = RedisStore.from_url(redis_url, settings.key_prefix, settings.namespace)
    engine = build_engine(settings)
    lookup = Lookup(settings, store, lambda: engine, lambda: 4, lambda: int(time.time() * 1000))
    server = HttpServer(
        free_port(),
        lambda: "rfm_events_total 0\n",
        lambda: {"ok": True},
        lookup,
        host=settings.http_host,
        token=settings.http_token,
        max_days=settings.http_max_days,
    )
    await server.on_start()
    try:
        yield server, f"http://127.0.0.1:{server.port}"
    finally:
        await server.on_stop()
        await store.close()


async def call(base: str, path: str, headers: dict[str, str] | None = None) -> Any:
    """(status, headers, body): JSON parsed, other bodies (metrics) as text."""
    async with aiohttp.ClientSession(base) as http, http.get(path, headers=headers) as r:
        text = await r.text()
        body = orjson.loads(text) if r.content_type == "application/json" else text
        return r.status, r.headers, body


def data_paths() -> list[str]:
    """Every route the server registers but the open ones, as a concrete path: a data
    route added later is in this list without anyone remembering to add it."""
    routes = {r.canonical for r in HttpServer(0, str, dict).app().router.resources()}
    concrete = {"{customer_id}": "amy", "{scheme}": "rfm8", "{segment}": "dormant"}
    paths = sorted(routes - OPEN_ROUTES)
    for name, value in concrete.items():
        paths = [p.replace(name, value) for p in paths]
    assert {"/customers/amy", "/segments", "/transitions/matrix"} <= set(paths), paths
    return paths


async def test_with_a_token_data_routes_are_401_without_it_and_probes_stay_open(
    single_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(single_redis_url, token=TOKEN) as (_, base):
        for path in data_paths():
            for headers in (
                None,
                {"Authorization": "Bearer"},
                {"Authorization": f"Basic {TOKEN}"},
                {"Authorization": f"Bearer {TOKEN}x"},
                {"Authorization": f"Bearer {TOKEN[:-1]}"},
                {"Authorization": "Bearer é"},
            ):
                status, got, body = await call(base, path, headers)
                assert status == 401, (path, headers, status, body)
                assert got["WWW-Authenticate"].startswith('Bearer realm="rfm-stream"'), got
                assert set(body) == {"error"} and body["error"], body
                assert TOKEN not in str(body) + str(dict(got))
            wrong = {"Authorization": "Bearer not-the-token-0123456789"}
            _, got, _ = await call(base, path, wrong)
            assert 'error="invalid_token"' in got["WWW-Authenticate"]
            for scheme in ("Bearer", "bearer"):  # the scheme is case-insensitive (RFC 9110)
                status, _, body = await call(base, path, {"Authorization": f"{scheme} {TOKEN}"})
                # past the token: the route's own answer (nobody is in this namespace; a
                # members page needs a snapshot's cursor)
                expected = {"/customers/": 404, "/segments/rfm8/": 400}
                assert status == next(
                    (n for start, n in expected.items() if path.startswith(start)), 200
                ), body
        # an unknown path is behind the token too: nothing says which routes exist
        status, _, _ = await call(base, "/no/such/route")
        assert status == 401
        for path in sorted(OPEN_ROUTES):
            status, _, body = await call(base, path)
            assert status == 200, (path, body)
    assert TOKEN not in caplog.text


async def test_the_document_declares_the_bearer_scheme_on_the_protected_routes(
    single_redis_url: str,
) -> None:
    async with serving(single_redis_url, token=TOKEN) as (_, base):
        _, _, doc = await call(base, "/openapi.json")
    validate(doc)
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "RFM_HTTP_TOKEN, as `Authorization: Bearer <token>`.",
    }
    for path, item in doc["paths"].items():
        op = item["get"]
        if path in OPEN_ROUTES:
            assert "security" not in op and "401" not in op["responses"], path
        else:
            assert op["security"] == [{"bearer": []}] and "401" in op["responses"], path
    # without a token the document promises none (it describes this server)
    async with serving(single_redis_url) as (_, base):
        _, _, doc = await call(base, "/openapi.json")
        status, _, _ = await call(base, "/segments")
    assert status == 200 and "securitySchemes" not in doc["components"]
    assert all("security" not in item["get"] for item in doc["paths"].values())


def _other_local_addresses() -> list[str]:
    """Addresses of this machine that are not 127.0.0.1: 127.0.0.2 (all of 127/8 is this
    host on Linux) and the address the machine's default route leaves from, if any."""
    out = ["127.0.0.2"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe, contextlib.suppress(OSError):
        probe.connect(("192.0.2.1", 9))  # UDP: no packet sent, a route is picked
        own = probe.getsockname()[0]
        if not own.startswith("127."):
            out.append(own)
    return out


def _connects(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, port)) == 0


async def test_the_api_listens_on_the_configured_address_only(single_redis_url: str) -> None:
    async with serving(single_redis_url) as (server, _):
        assert server.bound == [("127.0.0.1", server.port)]
        assert _connects("127.0.0.1", server.port)
        for other in _other_local_addresses():
            assert not _connects(other, server.port), f"reachable on {other}"
    # told to listen on every interface, it does (what the container sets)
    async with serving(single_redis_url, host="0.0.0.0") as (server, _):
        assert server.bound == [("0.0.0.0", server.port)]
        for other in ["127.0.0.1", *_other_local_addresses()]:
            assert _connects(other, server.port), other


NOT_HERE = "198.51.100.7"
"""TEST-NET-2 (RFC 5737): documentation only, an address no interface here has."""


def _unbindable(host: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, 0))
        except OSError:
            return True
    return False


async def test_an_address_it_cannot_bind_is_one_error_naming_it() -> None:
    assert _unbindable(NOT_HERE), f"{NOT_HERE} is an address of this machine: pick another"
    told: list[str] = []
    server = HttpServer(free_port(), str, dict, host=NOT_HERE, on_bind_error=told.append)
    with pytest.raises(HttpBindError) as info:
        await server.on_start()
    assert told == [str(info.value)]
    assert str(info.value).startswith(f"http: cannot listen on {NOT_HERE}:{server.port} ")
    assert "RFM_HTTP_HOST" in str(info.value) and "\n" not in str(info.value)
    # a port another process holds: the same one line
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HttpServer(port, str, dict, on_bind_error=told.append)
        with pytest.raises(HttpBindError, match=f"cannot listen on 127.0.0.1:{port} .*in use"):
            await server.on_start()


@pytest.mark.parametrize(
    ("since", "until", "status"),
    [
        ("2026-05-01", "2026-05-31", 200),  # the 30-day view
        ("2026-03-01", "2026-06-02", 200),  # 93 days: the limit itself
        ("2026-03-01T00:00:01Z", "2026-06-02", 200),  # 93 days touched, a second less
        ("2026-02-28T23:59:59Z", "2026-06-02", 400),  # one second more touches a 94th day
        ("2025-06-01", "2026-06-01", 400),  # a year
    ],
)
async def test_a_matrix_range_over_the_budget_is_400_naming_the_limit_and_cost(
    single_redis_url: str, since: str, until: str, status: int
) -> None:
    q = "&".join(
        f"{k}={v if 'T' in v else v + DAY}" for k, v in (("since", since), ("until", until))
    )
    async with serving(single_redis_url) as (_, base):
        got, _, body = await call(base, f"/transitions/matrix?{q}")
        assert got == status, body
        if status == 400:
            assert body["parameter"] == "since"
            assert "RFM_HTTP_MAX_DAYS=93" in body["error"], body
            assert "day-hashes per partition" in body["error"]
        # the default range (a week before now) is always within the limit
        got, _, body = await call(base, "/transitions/matrix")
        assert got == 200, body


async def test_the_budget_counts_the_days_really_read(single_redis_url: str) -> None:
    """A start older than what is kept is moved up to it before the cost is counted: with
    10 days kept, a range from 2000 reads 10 day-hashes and is served; its own limit
    (http_max_days) is what the setting says."""
    q = f"since=2000-01-01{DAY}&until=2026-01-01{DAY}"
    async with serving(single_redis_url, matrix_retention="10d") as (_, base):
        status, _, body = await call(base, f"/transitions/matrix?{q}")
    assert status == 200, body
    assert body["since"] == "2025-12-22T00:00:00.000+00:00"
    async with serving(single_redis_url, http_max_days="9", matrix_retention="10d") as (_, base):
        status, _, body = await call(base, f"/transitions/matrix?{q}")
    assert status == 400 and "reads 10 day-hashes" in body["error"], body
    assert "RFM_HTTP_MAX_DAYS=9;" in body["error"] and "(40 reads)" in body["error"], body


# --------------------------------------------------------------------------- a real worker


@pytest.fixture(scope="module")
def cluster(
    kafka_bootstrap: str, single_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    with isolated_cluster(kafka_bootstrap, single_redis_url, tmp_path_factory, "apisec") as c:
        yield c


async def test_a_worker_that_cannot_bind_its_address_stops_with_one_line(
    cluster: Cluster,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        knobs = {"http_port": str(port), "http_token": TOKEN}
        await cluster.ensure_topics(**knobs)
        worker = cluster.start_worker(**knobs)
        assert worker.proc.wait(60) == 2, worker.text()[-3000:]
    text = worker.text()
    lines = [line for line in text.splitlines() if line.startswith("rfm-stream: ")]
    assert lines and lines[-1].startswith(f"rfm-stream: http: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in text, text[-3000:]
    assert TOKEN not in text


async def test_a_worker_with_a_token_serves_data_only_with_it(cluster: Cluster) -> None:
    port = free_port()
    knobs = {"http_port": str(port), "http_token": TOKEN}
    await cluster.ensure_topics(**knobs)
    worker = cluster.start_worker(**knobs)
    try:
        worker.wait_for_log("http on 127.0.0.1:", timeout=60)
        base = f"http://127.0.0.1:{port}"
        status, got, _ = await call(base, "/segments")
        assert status == 401 and got["WWW-Authenticate"].startswith("Bearer")
        status, _, body = await call(base, "/segments", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and "schemes" in body, body
        status, _, _ = await call(base, "/metrics")
        assert status == 200
        assert not _connects("127.0.0.2", port), "the worker's default is loopback only"
    finally:
        worker.stop()
    assert TOKEN not in worker.text()
