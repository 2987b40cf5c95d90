"""The pyramid over its period through the processor (issue #20): a purchase leaving the
365 days moves the customer at its due time, and the quantile summaries across a rules
change that brings a new population and a new bucketing (money at 0.02 %).

A real Processor on a real Redis through the rig (no broker). In the rebuild test the
namespace first runs rules without the pyramid's window, with a summary left from before
(``q:m``, 1 % buckets); then the shipped rules take over: events arrive for customers the
sweep has not reached yet, and the sweep runs to the end. Every summary of the new rules
must then be exactly the summary of the namespace's customers. Before, summaries were kept
per population whatever the rules: the new window's started empty and was never filled by
the sweep (a re-evaluation moves nobody's value), and the event of a customer never added
took them out of it (negative counts: every refresh refused the summaries).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.times import DAY_MS
from segments import sketch
from segments.cut_points import CutPoints
from segments.quantiles import Populations
from segments.rules import build_engine, load_checked_rules
from segments.windows import day_of, expires_at
from tests.support.harness import purchase
from tests.support.processor_rig import make_rig, sweep_to_end

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def test_a_rules_change_rebuilds_every_summary_under_the_new_bucketing(
    redis_url: str,
) -> None:
    rig = await make_rig(redis_url, int(NOW.timestamp() * 1000), decay_timer="false")
    try:
        shipped = load_checked_rules(rig.settings.model_copy(update={"rules": "rfm"}))
        spec = shipped.schemes["pyramid"]
        assert spec.axes.m is not None and spec.axes.m.window is not None
        lifetime = spec.model_copy(
            update={
                "axes": spec.axes.model_copy(
                    update={"m": spec.axes.m.model_copy(update={"window": None})}
                )
            }
        )
        before = shipped.model_copy(update={"schemes": {**shipped.schemes, "pyramid": lifetime}})
        rig.processor.use(build_engine(rig.settings, before))
        events = [
            purchase(f"c{i}", k, NOW - timedelta(days=400 - 9 * i - k), str(30 + 17 * i))
            for i in range(40)
            for k in range(1 + i % 3)
        ]
        await rig.feed([orjson.dumps(e) for e in events])
        c = await rig.store.connect()
        await c.hset(rig.store.keys.summary(0, "m"), mapping={"412": 7, "530": 3})  # 1 % era

        engine = build_engine(rig.settings, shipped)
        assert engine.rules_version != rig.processor.engine.rules_version
        await rig.processor.swap(engine)
        later = [purchase(f"c{i}", 9, NOW - timedelta(hours=1), "999") for i in (3, 17, 38)]
        await rig.feed([orjson.dumps(e) for e in later])  # before the sweep reaches them
        await sweep_to_end(rig, int(NOW.timestamp() * 1000))

        states = [s for s in await rig.store.scans.scan_states() if s.frequency > 0]
        assert len(states) == 40
        pops = Populations(engine.schemes, engine.rules_version)
        assert {p.quantity for p in pops.items} == {"f", "m", "m@31536000000", "r"}
        got = await rig.store.tallies.summaries([0], [p.name for p in pops.items])
        for p in pops.items:
            assert got[p.name] == sketch.summarize(p.buckets, p.values(states)), p.name
    finally:
        await rig.close()


async def test_a_vip_whose_purchase_leaves_the_period_drops_at_its_due_time(
    redis_url: str,
) -> None:
    """Through the processor: the commit schedules the purchase's exit from the 365 days,
    the decay step fires it from the schedule at that instant (not one ms before), the
    transition is effective then, and the summary moves the customer to zero with it."""
    t = int(NOW.timestamp() * 1000)
    rig = await make_rig(redis_url, t, decay_timer="false")
    try:
        shipped = load_checked_rules(rig.settings.model_copy(update={"rules": "rfm"}))
        unit = 10_000
        cuts = CutPoints(1, t, {"pyramid": {"m": (100 * unit, 1_000 * unit, 10_000 * unit)}})
        engine = build_engine(rig.settings, shipped, cuts)
        rig.processor.use(engine)
        bought = NOW - timedelta(days=100)
        await rig.feed([orjson.dumps(purchase("v", 1, bought, "20000"))])
        assert (await rig.store.get_state(0, "v")).segments["pyramid"] == "vip"
        leave = expires_at(day_of(int(bought.timestamp() * 1000)), 365 * DAY_MS)
        (year,) = (
            p for p in Populations(engine.schemes, engine.rules_version).items if p.window_ms
        )

        await rig.processor.run_due(0, leave - 1)  # the other schemes' recency decays
        assert (await rig.store.get_state(0, "v")).segments["pyramid"] == "vip"
        assert await rig.processor.run_due(0, leave) == 1
        rows = await rig.store.outbox_read(0, 100)
        moves = [orjson.loads(payload) for _, _, payload in rows]
        drops = [m for m in moves if m["scheme"] == "pyramid" and m["cause"] == "recency_decay"]
        assert [(m["from_segment"], m["to_segment"]) for m in drops] == [("vip", "small")]
        effective = datetime.fromisoformat(drops[0]["effective_at"])
        assert effective == datetime.fromtimestamp(leave / 1000, UTC)
        got = await rig.store.tallies.summaries([0], [year.name])
        assert got[year.name] == {sketch.ZERO_BUCKET: 1}
    finally:
        await rig.close()
