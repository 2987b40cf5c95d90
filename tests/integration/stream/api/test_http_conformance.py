"""The worker's HTTP API conforms to its own ``/openapi.json``: schemathesis, all its checks.

One worker on the real broker and a real redis-server, with customers in it, serves the
module. schemathesis runs in deterministic mode (same requests every run, so it can't
fail by chance) with every check it has, half the customer lookups drawn from customers
that exist (so the 200 answers are validated too, not only the 404s). The focused tests
below it pin down what schemathesis found before: each one failed on the old server.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from stream.api.server import HttpServer
from stream.cli.terminal import open_lookup
from stream.demo.embedded import free_port
from tests.support.harness import Cluster, history, isolated_cluster

pytestmark = pytest.mark.integration

EVENTS = history(customers=40, events=200, seed=11)
CUSTOMERS = sorted({e["customer_id"] for e in EVENTS})


@pytest.fixture(scope="module")
def served(
    kafka_bootstrap: str, single_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    with isolated_cluster(kafka_bootstrap, single_redis_url, tmp_path_factory, "conformance") as c:
        yield c


@pytest.fixture(scope="module")
async def base_url(served: Cluster) -> AsyncIterator[str]:
    """A worker with ``EVENTS`` applied, serving HTTP on a free port.

    Its matrix budget covers everything kept (400 days: at most 401 day-hashes), so every
    schema-valid request must be served (schemathesis's positive_data_acceptance stays
    strict); the default budget runs in the token variant below and test_api_security."""
    port = free_port()
    knobs = {"decay_timer": "false", "http_port": str(port), "http_max_days": "401"}
    await served.ensure_topics(**knobs)
    worker = served.start_worker(**knobs)
    await served.wait_applied(await served.produce(EVENTS))
    worker.wait_for_log("http on ")
    yield f"http://127.0.0.1:{port}"


async def schemathesis(
    base_url: str, tmp_path: Path, *options: str, extra_config: str = ""
) -> set[Any]:
    """Run schemathesis against ``base_url`` with every check; (method, first path
    segment, status) of every request it made."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[dictionaries.customers]\n"
        f"values = {orjson.dumps(CUSTOMERS[:10]).decode()}\n"
        "[parameters]\n"
        '"path.customer_id" = { dictionary = "customers", probability = 0.5 }\n' + extra_config
    )
    har = tmp_path / "requests.har"
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color"),
        *("run", f"{base_url}/openapi.json", "--checks", "all", "--generation-deterministic"),
        *("--continue-on-failure", "--report", "har"),
        *("--report-har-path", str(har), "--request-timeout", "30", *options),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    return {
        (
            e["request"]["method"],
            e["request"]["url"].split("?")[0].split("/")[3],
            e["response"]["status"],
        )
        for e in orjson.loads(har.read_bytes())["log"]["entries"]
    }


MEMBERS = """
"path.segment" = { dictionary = "segments", probability = 0.5 }
[dictionaries.segments]
values = ["dormant", "new", "high_value"]
[[operations]]
include-path = "/segments/{scheme}/{segment}/members"
include-method = "GET"
checks.positive_data_acceptance.expected-statuses = ["2XX", "400", "401", "403", "404", "410"]
"""
"""A members page needs a cursor the API gave out (JSON Schema can't say so): a
schema-valid string that isn't one is 400, one of an expired snapshot 410, both naming
the cursor. Half the segments asked for exist, so snapshots are taken too."""


async def test_schemathesis_finds_nothing_with_all_checks(base_url: str, tmp_path: Path) -> None:
    seen = await schemathesis(base_url, tmp_path, extra_config=MEMBERS)
    # it really exercised the API: every operation, found customers and not, every method
    for op in ("customers", "segments", "transitions", "health", "metrics"):
        assert ("GET", op, 200) in seen, (op, sorted(seen))
        assert ("POST", op, 405) in seen, (op, sorted(seen))
    assert ("GET", "customers", 404) in seen and ("GET", "transitions", 400) in seen


TOKEN = "conformance-token-0123456789"
OVER_BUDGET = """
[[operations]]
include-path = "/transitions/matrix"
checks.positive_data_acceptance.expected-statuses = [
  "2XX", "3XX", "400", "401", "403", "404", "409", "429", "5XX"
]
"""


async def test_schemathesis_finds_nothing_with_a_token_set(
    served: Cluster, base_url: str, tmp_path: Path
) -> None:
    """The same API behind RFM_HTTP_TOKEN (a server in this process over the worker's
    namespace), with the default matrix budget: the document declares the bearer scheme,
    schemathesis sends the token, and its ``ignored_auth`` check finds each protected
    route refusing requests without it. A schema-valid range over the budget is refused
    with 400 (documented; JSON Schema can't say "until - since <= N days"), so only
    there a 400 is an accepted answer to valid data."""
    settings = served.settings(decay_timer="false", http_token=TOKEN)
    async with open_lookup(settings) as lookup:
        server = HttpServer(
            free_port(),
            str,
            lambda: {"ok": True},
            lookup,
            token=settings.http_token,
            max_days=settings.http_max_days,
        )
        await server.on_start()
        try:
            url = f"http://127.0.0.1:{server.port}"
            seen = await schemathesis(
                url,
                tmp_path,
                "-H",
                f"Authorization: Bearer {TOKEN}",
                extra_config=MEMBERS + OVER_BUDGET,
            )
        finally:
            await server.on_stop()
    for op in ("customers", "segments", "transitions", "health", "metrics"):
        assert ("GET", op, 200) in seen, (op, sorted(seen))
    for op in ("customers", "segments", "transitions"):
        assert ("GET", op, 401) in seen, (op, sorted(seen))


async def get(base_url: str, path: str, method: str = "GET") -> tuple[int, Any, Any]:
    async with (
        aiohttp.ClientSession(base_url) as http,
        http.request(method, path) as r,
    ):
        return r.status, r.headers, await r.json()


@pytest.mark.parametrize("path", ["/segments", "/health", "/customers/c0001", "/openapi.json"])
@pytest.mark.parametrize("method", ["POST", "TRACE", "DELETE"])
async def test_method_not_allowed_says_which_are(base_url: str, path: str, method: str) -> None:
    """RFC 9110 15.5.6: a 405 carries ``Allow``, and the body is still the JSON error."""
    status, headers, body = await get(base_url, path, method)
    assert status == 405
    assert "GET" in {m.strip() for m in headers.get("Allow", "").split(",")}, dict(headers)
    assert body == {"error": "Method Not Allowed"}


@pytest.mark.parametrize("parameter", ["since", "until", "scheme"])
async def test_an_empty_parameter_is_a_400_not_the_default(base_url: str, parameter: str) -> None:
    status, _, body = await get(base_url, f"/transitions/matrix?{parameter}=")
    assert status == 400, body
    assert body["parameter"] == parameter and "empty" in body["error"]


async def test_times_are_rfc3339_as_the_document_says(base_url: str) -> None:
    for bad in ("2026-01-01T00:00%2B08:00", "2026-01-01%2000:00:00Z", "2026-01-01"):
        status, _, body = await get(base_url, f"/transitions/matrix?until={bad}")
        assert status == 400 and body["parameter"] == "until", (bad, body)
    # lower-case t and z are RFC 3339 too; the ends of the calendar are valid questions
    for good in ("2026-01-01t00:00:00z", "0001-01-01T00:00:00%2B23:59", "9999-12-31T23:59:59Z"):
        status, _, body = await get(base_url, f"/transitions/matrix?until={good}")
        assert status == 200, (good, body)


async def test_every_valid_range_has_an_answer_that_says_what_it_counts(base_url: str) -> None:
    # older than what is kept (400 days by default): counted from the horizon on
    q = "since=2000-01-01T00:00:00Z&until=2026-01-01T00:00:00Z"
    status, _, body = await get(base_url, f"/transitions/matrix?{q}")
    assert status == 200, body
    assert body["since"] == "2024-11-27T00:00:00.000+00:00"  # 400 days before until
    assert body["until"] == "2026-01-01T00:00:00.000+00:00"
    # a start after the end: an empty range, nothing in it
    q = "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z"
    status, _, body = await get(base_url, f"/transitions/matrix?{q}")
    assert status == 200 and body["transitions"] == 0 and body["flows"] == [], body


async def test_an_id_no_event_could_carry_is_not_found(base_url: str) -> None:
    """1 to 128 characters is what the document allows; more than 128 bytes (or a space)
    can't be a customer, which is a 404, not a rejected request."""
    for customer in ("é" * 100, "two%20words", "%7Bbraces%7D"):
        status, _, body = await get(base_url, f"/customers/{customer}")
        assert status == 404, (customer, body)
    status, _, body = await get(base_url, f"/customers/{'x' * 129}")
    assert status == 400 and body["parameter"] == "customer_id"
    status, _, body = await get(base_url, f"/customers/{CUSTOMERS[0]}")
    assert status == 200 and body["customer_id"] == CUSTOMERS[0]


async def test_the_document_lists_the_schemes_a_matrix_takes(base_url: str) -> None:
    _, _, doc = await get(base_url, "/openapi.json")
    params = doc["paths"]["/transitions/matrix"]["get"]["parameters"]
    scheme = next(p for p in params if p["name"] == "scheme")["schema"]
    assert scheme["enum"] and "rfm8" in scheme["enum"]
