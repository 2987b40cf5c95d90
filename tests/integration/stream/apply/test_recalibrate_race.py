"""``rfm-stream recalibrate`` against a running worker's own refresh (CI found it).

The command reads the current cut-point version and installs the next by
compare-and-set; a worker's scheduled refresh can install one in between, and the
command used to fail with "run it again". Real redis-server, the shipped rules (quantile
schemes), customers applied by a real :class:`Processor`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.settings import load_settings
from schemas.times import to_ms
from segments.cut_points import CutPoints
from segments.rules import build_engine
from state.store import RedisStore
from stream.apply.calibrate import recalibrate
from stream.apply.clock import ManualClock
from stream.apply.messages import Msg
from stream.apply.processor import Processor
from tests.support.harness import purchase
from tests.support.processor_rig import CollectingOutputs

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def test_recalibrate_wins_after_losing_a_race_to_a_workers_refresh(redis_url: str) -> None:
    settings = load_settings(redis_url=redis_url, namespace=f"t{uuid.uuid4().hex[:8]}")
    store = RedisStore.from_url(redis_url, settings.key_prefix, settings.namespace)
    clock = ManualClock(to_ms(NOW))
    engine = build_engine(settings)
    processor = Processor(settings, store, engine, CollectingOutputs(), clock, clock)
    try:
        await processor.assign([0])
        events = [
            purchase(f"c{i % 40}", i, NOW - timedelta(days=200 - i), str(50 + 7 * i))
            for i in range(120)
        ]
        await processor.process([Msg(0, o, None, orjson.dumps(e)) for o, e in enumerate(events)])

        real = store.put_cuts
        raced = []

        async def a_worker_wins_first(expected: int, doc: Mapping[str, object]) -> bool:
            if not raced:  # a worker's refresh installs the same version just before us
                raced.append(expected)
                assert await real(expected, {**doc, "by": "worker"})
            return await real(expected, doc)

        store.put_cuts = a_worker_wins_first  # type: ignore[method-assign]  # the race, injected
        new = await recalibrate(store, engine, [0], to_ms(NOW), sample=1000)
        assert raced == [0], "the race was not injected"
        assert new is not None, "recalibrate gave up after losing the race once"
        doc = await store.cuts()
        assert doc is not None and CutPoints.from_json(doc).version == new.version == 2
    finally:
        await store.close()
