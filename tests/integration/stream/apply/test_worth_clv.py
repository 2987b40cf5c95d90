"""CLV per segment and customer equity through the processor on a real Redis (issue #19).

Rules with a ``value_figures`` scheme and a fitted model of the base: a workload of
purchases and refunds (full ones included), a refit swept to the end, then the decay
timer. After each, the CLV sums the commits kept equal a recount of the last CLVs stored
in the customers' states, and ``GET /segments/value`` shows them (no scan on read).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from segments.bgnbd import BgNbdParams
from segments.cut_points import CutPoints
from segments.rules import build_engine
from segments.value import ValueModel
from segments.worth import recount
from state.tallies import WorthSums
from stream.api.lookup import Lookup
from stream.api.server import HttpServer
from tests.integration.stream.apply.test_worth import NOW, workload
from tests.support.harness import RULES
from tests.support.processor_rig import Rig, make_rig, sweep_to_end

pytestmark = pytest.mark.integration

NOW_MS = int(NOW.timestamp() * 1000)
FIT = ValueModel(BgNbdParams(r=0.2426, alpha=30.9, a=0.7929, b=2.4258), 2357, -9582.4, 0)
REFIT = ValueModel(BgNbdParams(r=0.8, alpha=12.0, a=0.3, b=4.0), 500, -1000.0, 0)


def _clv_of(sums: WorthSums) -> tuple[object, ...]:
    return sums.clv, sums.valued


async def _stored(rig: Rig) -> tuple[object, ...]:
    """The CLV sums recounted from the last CLVs stored in the states (a scan)."""
    r = recount(await rig.store.scans.scan_states())
    clv, valued = dict(r.clv), dict(r.valued)
    if r.equity.customers:
        clv[("", "")], valued[("", "")] = r.equity.clv, r.equity.customers
    return clv, valued


@pytest.fixture
async def rig(redis_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    rules = tmp_path / "valued.toml"  # fixed.toml with rfm8's transitions carrying value
    text = (RULES / "fixed.toml").read_text()
    rules.write_text(text.replace("[schemes.rfm8]\n", "[schemes.rfm8]\nvalue_figures = true\n", 1))
    r = await make_rig(redis_url, NOW_MS, decay_timer="false", rules=str(rules))
    r.processor.use(build_engine(r.settings, cuts=CutPoints(1, NOW_MS, {}, 0, FIT)))
    try:
        yield r
    finally:
        await r.close()


async def test_clv_and_equity_equal_a_recount_of_the_stored_last_clvs(rig: Rig) -> None:
    events = workload(23)
    for start in range(0, len(events), 41):
        await rig.feed([orjson.dumps(e) for e in events[start : start + 41]])
    states = await rig.store.scans.scan_states()
    assert all((s.clv is not None) == (s.frequency > 0) for s in states)
    got = await rig.store.tallies.worth([0])
    assert got.valued[("", "")] == sum(s.frequency > 0 for s in states)
    assert _clv_of(got) == await _stored(rig)

    # a refit: the sweep re-evaluates everyone under the new model (cut version 2)
    await rig.processor.swap(build_engine(rig.settings, cuts=CutPoints(2, NOW_MS, {}, 0, REFIT)))
    await sweep_to_end(rig, NOW_MS)
    refit = await rig.store.tallies.worth([0])
    assert refit.clv[("", "")] != got.clv[("", "")]
    assert _clv_of(refit) == await _stored(rig)

    later = int((NOW + timedelta(days=200)).timestamp() * 1000)
    rig.clock.set(later)
    assert await rig.processor.run_due(0, later) > 0
    decayed = await rig.store.tallies.worth([0])
    assert _clv_of(decayed) == await _stored(rig)

    lookup = Lookup(
        rig.settings, rig.store, lambda: rig.processor.engine, lambda: 1, rig.clock.now_ms
    )
    async with TestClient(TestServer(HttpServer(0, str, dict, lookup).app())) as http:
        body = await (await http.get("/segments/value")).json()
    base = body["base"]
    assert Decimal(base["equity"]) == Decimal(decayed.clv[("", "")]) / 100
    assert base["equity_customers"] == decayed.valued[("", "")]
    for row in body["schemes"]["rfm8"]["segments"]:
        key = ("rfm8", row["segment"])
        if decayed.valued.get(key):
            assert Decimal(row["clv"]) == Decimal(decayed.clv[key]) / 100
            assert row["average_clv"] is not None
        else:
            assert (row["clv"], row["average_clv"]) == (None, None)
