"""The worker's HTTP API over real HTTP, against a worker on a real broker and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from openapi_spec_validator import validate

from stream.api.openapi import ROUTES
from stream.api.server import HttpServer
from stream.demo.embedded import free_port
from tests.conftest import REDIS_KINDS
from tests.support.harness import ROOT, RULES, T0, Cluster, expected, isolated_cluster, purchase

pytestmark = pytest.mark.integration


def refund(customer: str, n: int, when, amount: str, order: str) -> dict[str, Any]:
    ev = purchase(customer, n, when, amount)
    return {**ev, "kind": "refund", "refund_of": order, "event_id": f"r-{customer}-{n}"}


EVENTS = [
    purchase("amy", 1, T0, "600"),
    purchase("amy", 2, T0 + timedelta(hours=5), "600"),
    purchase("bob", 3, T0 + timedelta(hours=1), "50"),
    purchase("cat", 4, T0 + timedelta(days=1), "2500"),
    purchase("amy", 5, T0 + timedelta(days=2), "900"),
]


@pytest.fixture(scope="module", params=list(REDIS_KINDS))
def served(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """One worker per Redis kind (single server, Redis Cluster) serves every test here:
    they only read what it applied."""
    with isolated_cluster(
        kafka_bootstrap,
        str(request.getfixturevalue(REDIS_KINDS[request.param])),
        tmp_path_factory,
        "api",
    ) as c:
        yield c


@pytest.fixture(scope="module")
async def api(served: Cluster) -> Any:
    port = free_port()
    knobs = {"rules": str(RULES / "fixed.toml"), "decay_timer": "false", "http_port": str(port)}
    settings = await served.ensure_topics(**knobs)
    worker = served.start_worker(**knobs)
    events = [*EVENTS, refund("cat", 6, T0 + timedelta(days=3), "2000", EVENTS[3]["order_id"])]
    await served.wait_applied(await served.produce(events))
    worker.wait_for_log("http on ")
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
        yield http, settings, events


async def get(http: aiohttp.ClientSession, path: str) -> tuple[int, Any]:
    async with http.get(path) as r:
        return r.status, await r.json()


async def test_customer_lookup_shows_state_segments_due_time_and_history(api) -> None:
    http, settings, events = api
    status, amy = await get(http, "/customers/amy")
    assert status == 200
    assert (amy["frequency"], amy["monetary"], amy["currency"]) == (3, "2100", "CNY")
    assert amy["first_purchase_at"] == "2026-01-01T00:00:00.000+00:00"
    assert amy["segments"]["rfm8"]["segment"] == "high_value"
    assert amy["segments"]["rfm8"]["label"] == "高价值客户"
    assert amy["segments"]["rfm27"]["segment"] == "recent"  # 3 orders: F band 2 of 3
    assert amy["segments"]["rfm8"]["cut_version"] is None
    # last purchase on Jan 3: rfm27's 30-day edge comes before rfm8's 90 days
    assert amy["next_due_at"] == "2026-02-02T00:00:00.000+00:00"
    _, want = expected(events, settings)
    mine = [t for t in want if t["customer_id"] == "amy"][-settings.history_size :]
    assert [
        (h["scheme"], h["from_segment"], h["to_segment"], h["effective_at"]) for h in amy["history"]
    ] == [
        (t["scheme"], t["from_segment"], t["to_segment"], t["effective_at"]) for t in reversed(mine)
    ]
    status, cat = await get(http, "/customers/cat")
    assert status == 200 and cat["monetary"] == "500" and cat["history"][0]["cause"] == "refund"


async def test_customer_errors_are_json(api) -> None:
    http, _, _ = api
    status, body = await get(http, "/customers/nobody")
    assert status == 404 and body == {"error": "no customer 'nobody'"}
    status, body = await get(http, "/customers/" + "x" * 129)
    assert status == 400 and body["parameter"] == "customer_id"
    status, body = await get(http, "/no/such/route")
    assert status == 404 and body["error"] == "no route /no/such/route"


async def test_segment_counts_equal_a_recount(api) -> None:
    http, settings, events = api
    states, _ = expected(events, settings)
    recount = Counter(
        (sc, k) for s in states.values() for sc, k in s.segments.items() if k != "none"
    )
    status, body = await get(http, "/segments")
    assert status == 200
    got = {
        (scheme, row["segment"]): row["customers"]
        for scheme, v in body["schemes"].items()
        for row in v["segments"]
        if row["customers"]
    }
    assert got == dict(recount)
    assert [r["segment"] for r in body["schemes"]["rfm8"]["segments"]][:2] == [
        "high_value",
        "develop",
    ]
    assert body["schemes"]["rfm8"]["customers"] == 3


async def test_transition_matrix_over_a_range(api) -> None:
    http, settings, events = api
    _, want = expected(events, settings)
    q = "scheme=rfm8&since=2026-01-01T00:00:00%2B00:00&until=2026-01-02T00:00:00%2B00:00"
    status, body = await get(http, f"/transitions/matrix?{q}")
    assert status == 200
    day_one = Counter(
        (t["from_segment"], t["to_segment"])
        for t in want
        if t["scheme"] == "rfm8" and t["effective_at"] < "2026-01-02"
    )
    assert {(r["from_segment"], r["to_segment"]): r["transitions"] for r in body["flows"]} == dict(
        day_one
    )
    assert body["transitions"] == sum(day_one.values()) and body["bucket"] == "hour"
    # the whole history, default scheme (the first of the rules file)
    q = "since=2025-12-01T00:00:00%2B00:00&until=2026-02-01T00:00:00%2B00:00"
    status, body = await get(http, f"/transitions/matrix?{q}")
    assert status == 200 and body["scheme"] == "rfm8"
    assert body["transitions"] == sum(1 for t in want if t["scheme"] == "rfm8")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("scheme=nope", "scheme"),
        ("since=yesterday", "since"),
        ("until=2026-01-01T00:00:00", "until"),
        ("colour=red", "colour"),
    ],
)
async def test_bad_matrix_parameters_are_400_naming_the_parameter(api, query, parameter) -> None:
    http, _, _ = api
    status, body = await get(http, f"/transitions/matrix?{query}")
    assert status == 400, body
    assert body["parameter"] == parameter and body["error"].startswith(f"{parameter}: ")


async def test_openapi_document_validates_and_matches_the_routes(api) -> None:
    http, _, _ = api
    status, doc = await get(http, "/openapi.json")
    assert status == 200
    validate(doc)
    routes = {r.canonical for r in HttpServer(0, str, dict).app().router.resources()}
    assert routes == set(doc["paths"]) == set(ROUTES)


async def test_metrics_and_health(api) -> None:
    http, _, _ = api
    async with http.get("/metrics") as r:
        text = await r.text()
    for needle in (
        'rfm_transitions_by_total{scheme="rfm8",from="none",to="new"}',
        'rfm_batch_seconds_bucket{le="+Inf"}',
        "rfm_events_total 6",
        "rfm_dead_letters_total",
        "rfm_events_per_second",
    ):
        assert needle in text, needle
    status, body = await get(http, "/health")
    assert status == 200 and body["ok"] and body["max_lag"] == 1000
    assert set(body["lag"]) == {str(p) for p in body["partitions"]}


def cli(cluster: Cluster, *args: str, **knobs: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RFM_")}
    env.update(cluster.env(rules=str(RULES / "fixed.toml"), **knobs))
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


async def test_cli_inspect_and_segments_show_the_same_as_the_api(api, served: Cluster) -> None:
    cluster = served
    http, _, _ = api
    proc = cli(cluster, "inspect", "amy")
    assert proc.returncode == 0, proc.stderr
    assert "customer amy" in proc.stdout and "high_value" in proc.stdout
    assert "高价值客户" in proc.stdout and "next due: 2026-02-02T00:00:00.000+00:00" in proc.stdout
    as_json = cli(cluster, "inspect", "amy", "--json")
    _, body = await get(http, "/customers/amy")
    got = orjson.loads(as_json.stdout)
    assert {k: v for k, v in got.items() if k not in ("as_of", "recency_days", "segments")} == {
        k: v for k, v in body.items() if k not in ("as_of", "recency_days", "segments")
    }
    missing = cli(cluster, "inspect", "nobody")
    assert missing.returncode == 1 and missing.stderr.startswith("rfm-stream: no customer")
    segs = cli(cluster, "segments")
    assert segs.returncode == 0, segs.stderr
    assert "rfm8  (3 customers)" in segs.stdout and "rfm27  (3 customers)" in segs.stdout
    _, counts = await get(http, "/segments")
    assert orjson.loads(cli(cluster, "segments", "--json").stdout) == counts


async def test_cli_report_writes_the_flows_of_the_range(api, served: Cluster, tmp_path) -> None:
    cluster = served
    _, settings, events = api
    out = tmp_path / "flows.html"
    proc = cli(
        cluster,
        "report",
        "--since",
        "2025-12-31T00:00:00+00:00",
        "--until",
        "2026-01-05T00:00:00+00:00",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    html = out.read_text(encoding="utf-8")
    _, want = expected(events, settings)
    links = Counter(
        (t["scheme"], t["from_segment"], t["to_segment"]) for t in want if t["scheme"] == "rfm8"
    )
    for (scheme, frm, to), n in links.items():
        assert (
            f'data-scheme="{scheme}" data-from="{frm}" data-to="{to}" data-count="{n}"' in html
        ), (frm, to, n)
    assert "http://" not in html.replace("http://www.w3.org", "")  # self-contained
    bad = cli(cluster, "report", "--since", "last week", "--out", str(out))
    assert bad.returncode == 2 and bad.stderr.startswith("rfm-stream: --since: ")
