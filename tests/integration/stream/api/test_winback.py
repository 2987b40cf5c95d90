"""Win-back through the real commit path (processor rig, real Redis, no broker): the hand
-built story's figures read back by ``GET /winback`` equal the hand count, a redelivered
batch counts nothing twice, and bad parameters are 400s naming the parameter."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas.rules import load_rules
from segments.winback import lapsed_of
from stream.api.lookup import Lookup
from stream.api.server import HttpServer
from stream.api.winback import winback
from stream.cli.terminal import build_report
from tests.support.harness import ROOT, RULES, purchase
from tests.support.processor_rig import Rig, make_rig
from tests.unit.segments.winback_story import END_DAY, HAND_COUNT, PURCHASES, at, ms

pytestmark = pytest.mark.integration

RULES_FILE = RULES / "rfm8_lapsed.toml"


async def _story(rig: Rig) -> list[Any]:
    """Each purchase its own batch at its day, the decay timer run up to it first; returns
    the messages of each batch (to redeliver)."""
    batches = []
    for n, (cid, day, amount) in enumerate(PURCHASES):
        rig.clock.set(ms(day))
        await rig.processor.run_due(0, ms(day) - 1)
        payload = orjson.dumps(purchase(cid, n, at(day), amount))
        batches.append(await rig.feed([payload]))
    rig.clock.set(ms(END_DAY))
    await rig.processor.run_due(0, ms(END_DAY))
    return batches


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    r = await make_rig(redis_url, ms(0), decay_timer="false")
    # the rig's rfm8 with dormant and churning marked lapsed: the worker and the API read
    # the marks from the settings' rules file
    r.settings = r.settings.model_copy(update={"rules": str(RULES_FILE)})
    r.processor.lapsed = lapsed_of(load_rules(RULES_FILE))
    yield r
    await r.close()


@pytest.fixture
async def http(rig: Rig) -> AsyncIterator[TestClient[Any, Any]]:
    lookup = Lookup(
        rig.settings, rig.store, lambda: rig.processor.engine, lambda: 1, rig.clock.now_ms
    )
    server = HttpServer(0, lambda: "", lambda: {"ok": True}, lookup)
    async with TestClient(TestServer(server.app())) as client:
        yield client


async def _get(http: TestClient[Any, Any], query: str) -> tuple[int, Any]:
    resp = await http.get(f"/winback{query}")
    return resp.status, await resp.json()


def _figures(body: dict[str, Any]) -> dict[str, dict[str, object]]:
    return {
        c["cohort"]: {
            "entered": c["entered"],
            "returned": {int(h): n for h, n in c["returned"].items()},
            "median_days": c["median_days"],
            "revenue": Decimal(c["revenue"]),
        }
        for c in body["cohorts"]
    }


async def test_a_scheme_marking_nothing_lapsed_has_no_cohorts(
    rig: Rig, http: TestClient[Any, Any]
) -> None:
    await _story(rig)
    rig.settings = rig.settings.model_copy(update={"rules": str(RULES / "rfm8.toml")})
    lookup = Lookup(
        rig.settings, rig.store, lambda: rig.processor.engine, lambda: 1, rig.clock.now_ms
    )
    body = await winback(lookup)
    assert (body["scheme"], body["lapsed"], body["cohorts"]) == ("rfm8", [], [])


@pytest.mark.redis_cluster_too  # the cohort hashes share the partition's slot
async def test_figures_read_back_equal_the_hand_count(rig: Rig, http: TestClient[Any, Any]) -> None:
    await _story(rig)
    status, body = await _get(http, "?scheme=rfm8&period=month")
    assert status == 200, body
    assert _figures(body) == HAND_COUNT
    assert body["unattributed_returns"] == 0
    assert body["expected_rate"] == 0.25
    april = body["cohorts"][0]
    assert april["rate"]["90"] == 0.75 and april["final"] == [30, 60, 90]


async def test_a_redelivered_batch_counts_nothing_twice(
    rig: Rig, http: TestClient[Any, Any]
) -> None:
    batches = await _story(rig)
    _, before = await _get(http, "")
    # the batch of D's return on day 262 again (a crash before the consumer's commit) …
    await rig.deliver(batches[-3])
    # … and its purchase again under a new offset (a producer's retry): event-id dedupe
    cid, day, amount = PURCHASES[-3]
    assert (cid, day) == ("D", 262)
    await rig.feed([orjson.dumps(purchase(cid, len(PURCHASES) - 3, at(day), amount))])
    _, after = await _get(http, "")
    assert after == before
    assert _figures(after)["2026-09"]["revenue"] == Decimal("20")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("?period=year", "period"),
        ("?scheme=nope", "scheme"),
        ("?scheme=", "scheme"),
        ("?since=2026-01-01", "since"),
        ("?bogus=1", "bogus"),
    ],
)
async def test_bad_parameters_are_400_naming_them(
    http: TestClient[Any, Any], query: str, parameter: str
) -> None:
    status, body = await _get(http, query)
    assert status == 400
    assert body["parameter"] == parameter
    assert "\n" not in body["error"] and body["error"].startswith(parameter)


async def test_cli_table_shows_the_figures(rig: Rig, redis_url: str) -> None:
    await _story(rig)
    base = [sys.executable, "-m", "stream.cli", "winback", "--rules", str(RULES_FILE)]
    base += ["--redis-url", redis_url, "--namespace", rig.settings.namespace]
    # no broker: the partition count falls back to --partitions; the story is in 2026,
    # so keep everything whatever today is
    base += [
        "--kafka-bootstrap",
        "127.0.0.1:1",
        "--partitions",
        "1",
        "--matrix-retention",
        "36500d",
    ]
    proc = await asyncio.create_subprocess_exec(
        *base, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    table = out.decode()
    april = next(line.split() for line in table.splitlines() if "2026-04" in line)
    assert april == ["2026-04", "4", "1", "2", "3", "75%", "above", "45", "360"]


async def test_report_has_the_winback_chart_and_table(rig: Rig) -> None:
    await _story(rig)
    lookup = Lookup(
        rig.settings, rig.store, lambda: rig.processor.engine, lambda: 1, rig.clock.now_ms
    )
    html = await build_report(lookup, at(0).isoformat(), None, ms(END_DAY))
    section = html[html.index('<section id="winback"') :]
    assert '<a href="#winback">' in html
    assert "<svg" in section and "1 in 4 (text) 25%" in section
    row = section[section.index("<td>2026-04</td>") :].split("</tr>")[0]
    cells = [c.split(">", 1)[1] for c in row.split("</td>")[:-1]]
    assert cells == ["2026-04", "4", "1", "2", "3", "75%", "45", "360"]


async def test_a_week_straddling_since_month_counts_its_first_days(
    rig: Rig, http: TestClient[Any, Any]
) -> None:
    # F enters churning on Tuesday 2026-03-31, in ISO week 14 (2026-03-30 .. 04-05)
    await rig.feed([orjson.dumps(purchase("F", 0, at(-1), "1500"))])
    rig.clock.set(ms(100))
    await rig.processor.run_due(0, ms(100))
    status, body = await _get(http, "?period=week&since=2026-04-01T00:00:00Z")
    assert status == 200, body
    assert [(c["cohort"], c["entered"]) for c in body["cohorts"]] == [("2026-W14", 1)]
