"""What each segment is worth, through the processor on a real Redis (issue #19).

A random workload of purchases and refunds (partial and full), then a rules change swept
to the end, then the decay timer: every commit path (events, time, sweep) moves the worth
hashes, and after all of them the sums read back (``store.tallies.worth``) equal a recount
of the stored states, and ``GET /segments/value`` answers from them (400 naming a bad
parameter). Before this, nothing kept them: the read was empty.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from segments.rules import build_engine
from segments.worth import recount
from state.tallies import WorthSums
from stream.api.lookup import Lookup
from stream.api.server import HttpServer
from stream.api.worth import value_view
from tests.support.harness import RULES, purchase
from tests.support.processor_rig import Rig, make_rig, sweep_to_end

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def workload(seed: int) -> list[dict[str, Any]]:
    """Purchases of 40 customers over a year; a third refunded in part or in full."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for n in range(240):
        c = f"c{rng.randrange(40):02d}"
        at = NOW - timedelta(days=365) + timedelta(hours=n * 36)
        amount = rng.choice(["19.90", "120", "480.50", "1500", "3999"])
        ev = purchase(c, n, at, amount)
        out.append(ev)
        if rng.random() < 0.3:
            back = amount if rng.random() < 0.5 else "10"
            refund = {**purchase(c, n, at + timedelta(hours=2), back)}
            refund.update(kind="refund", refund_of=ev["order_id"], event_id=f"r-{c}-{n}")
            out.append(refund)
    return out


def as_sums(states: list[Any]) -> WorthSums:
    r = recount(states)
    return WorthSums(r.revenue, r.orders, r.counts, r.sums)


async def stored_recount(rig: Rig) -> WorthSums:
    return as_sums(await rig.store.scans.scan_states())


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    r = await make_rig(redis_url, int(NOW.timestamp() * 1000), decay_timer="false")
    r.processor.use(build_engine(r.settings.model_copy(update={"rules": RULES / "fixed.toml"})))
    try:
        yield r
    finally:
        await r.close()


async def test_worth_sums_equal_a_recount_after_events_a_sweep_and_decays(
    rig: Rig, tmp_path: Path
) -> None:
    events = workload(19)
    for start in range(0, len(events), 37):  # batches that split customers' histories
        await rig.feed([orjson.dumps(e) for e in events[start : start + 37]])
    got = await rig.store.tallies.worth([0])
    assert got.revenue and got == await stored_recount(rig)

    lower = tmp_path / "lower.toml"  # the same rules, monetary cut at 300 instead of 1000
    lower.write_text((RULES / "fixed.toml").read_text().replace('["1000"]', '["300"]', 1))
    await rig.processor.swap(build_engine(rig.settings.model_copy(update={"rules": lower})))
    await sweep_to_end(rig, int(NOW.timestamp() * 1000))  # customers move, money doesn't
    swept = await rig.store.tallies.worth([0])
    assert swept.revenue != got.revenue and swept == await stored_recount(rig)

    later = int((NOW + timedelta(days=200)).timestamp() * 1000)
    rig.clock.set(later)
    assert await rig.processor.run_due(0, later) > 0  # time moves them again
    decayed = await rig.store.tallies.worth([0])
    assert decayed.revenue != swept.revenue and decayed == await stored_recount(rig)


async def test_segment_values_over_http_and_a_bad_parameter_named(rig: Rig) -> None:
    await rig.feed([orjson.dumps(e) for e in workload(7)])
    lookup = Lookup(
        rig.settings,
        rig.store,
        lambda: rig.processor.engine,
        lambda: 1,
        rig.clock.now_ms,
    )
    server = HttpServer(0, str, dict, lookup)
    async with TestClient(TestServer(server.app())) as http:
        r = await http.get("/segments/value")
        assert r.status == 200
        body = await r.json()
        states = await rig.store.scans.scan_states()
        counts = await rig.store.tallies.segment_counts([0])
        schemes = rig.processor.engine.schemes
        assert body == value_view(schemes, counts, as_sums(states), rig.settings.currency)
        base = body["base"]
        assert base["customers"] == sum(1 for s in states if s.frequency > 0)
        for p in base["pareto"]:
            assert p["revenue_share_low"] <= p["revenue_share_high"]
        one = await (await http.get("/segments/value", params={"scheme": "rfm27"})).json()
        assert list(one["schemes"]) == ["rfm27"]
        for query, name in (({"scheme": "nope"}, "scheme"), ({"top": "5"}, "top")):
            r = await http.get("/segments/value", params=query)
            assert r.status == 400
            assert (await r.json())["parameter"] == name
