"""Quantile summaries across a rules change that brings a new population and a new
bucketing (issue #20: the pyramid's 365-day spend, money summaries at 0.02 %).

A real Processor on a real Redis through the rig (no broker). The namespace first runs
rules without the pyramid's window, with a summary left from before (``q:m``, 1 %
buckets); then the shipped rules take over: events arrive for customers the sweep has
not reached yet, and the sweep runs to the end. Every summary of the new rules must
then be exactly the summary of the namespace's customers. Before, summaries were kept
per population whatever the rules: the new window's started empty and was never filled
by the sweep (a re-evaluation moves nobody's value), and the event of a customer never
added took them out of it (negative counts: every refresh refused the summaries).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from segments import sketch
from segments.quantiles import Populations
from segments.rules import build_engine, load_checked_rules
from tests.support.harness import purchase
from tests.support.processor_rig import make_rig, sweep_to_end

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def test_a_rules_change_rebuilds_every_summary_under_the_new_bucketing(
    redis_url: str,
) -> None:
    rig = await make_rig(redis_url, int(NOW.timestamp() * 1000), decay_timer="false")
    try:
        shipped = load_checked_rules(rig.settings.model_copy(update={"rules": None}))
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
