"""The calibrator (:mod:`stream.apply.calibrate`): cut points refreshed when due, installed by
compare-and-set, and followed by every worker. A real Processor on a real Redis through
the rig (no broker), switched to the shipped rules, whose quantile schemes need cut
points (the rig's rfm8 has fixed ones only).

Each test names, in its docstring, the broken behaviour it catches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.rules import RulesFile
from schemas.times import to_ms
from segments.cut_points import CutPoints
from segments.rules import build_engine, load_checked_rules
from stream.apply.calibrate import Calibrator, refresh
from tests.support.harness import purchase
from tests.support.processor_rig import Rig, make_rig, sweep_to_end

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
T = to_ms(NOW)
SECOND = 1000


@dataclass
class Calibrated:
    rig: Rig
    rules: RulesFile
    calibrator: Calibrator


@pytest.fixture
async def cal(redis_url: str) -> AsyncIterator[Calibrated]:
    rig = await make_rig(redis_url, T, decay_timer="false", model_sample="100")
    rules = load_checked_rules(rig.settings.model_copy(update={"rules": None}))
    rig.processor.use(build_engine(rig.settings, rules))  # before any event: summaries kept
    yield Calibrated(rig, rules, Calibrator(rig.settings, rig.store, rig.processor, rules))
    await rig.close()


async def _customers(rig: Rig, first: int, n: int) -> None:
    """``n`` new customers from ``first``, with spread-out histories."""
    events = []
    for i in range(first, first + n):
        for k in range(1 + i % 3):
            at = NOW - timedelta(days=200 - i % 180 - k)
            events.append(purchase(f"c{i}", k, at, str(50 + 37 * (i % 29))))
    await rig.feed([orjson.dumps(e) for e in events])


async def _stored_version(rig: Rig) -> int | None:
    doc = await rig.store.cuts()
    return CutPoints.from_json(doc).version if doc else None


async def test_the_first_step_installs_cut_points_and_switches_the_engine(
    cal: Calibrated,
) -> None:
    """Catches a refresh that is stored but not put in force here (customers ranked
    under no cut points until the next poll), and one not counted."""
    await _customers(cal.rig, 0, 40)
    new = await cal.calibrator.step(T, [0])
    assert new is not None and new.version == 1
    assert new.population == 40
    assert await _stored_version(cal.rig) == 1
    assert cal.rig.processor.engine.cut_version == 1
    assert cal.calibrator.refreshes == 1


async def test_nothing_is_refreshed_before_it_is_due(cal: Calibrated) -> None:
    """Catches a refresh on every timer tick (a new version, and a sweep of every
    customer, each time)."""
    await _customers(cal.rig, 0, 40)
    await cal.calibrator.step(T, [0])
    again = await cal.calibrator.step(T + 60 * SECOND, [0])
    assert again is not None and again.version == 1
    assert await _stored_version(cal.rig) == 1
    assert cal.calibrator.refreshes == 1


async def test_a_doubled_population_refreshes_early_looked_at_every_ten_seconds(
    cal: Calibrated,
) -> None:
    """A new deployment's first cut points come from its first customers; once the
    population has doubled they are refreshed without waiting for the hour. Catches the
    doubling ignored, and a doubling check run on every tick (it reads every summary)."""
    await _customers(cal.rig, 0, 40)
    await cal.calibrator.step(T, [0])
    await cal.calibrator.step(T + 1 * SECOND, [0])  # looked: not doubled; next look at +11 s
    await _customers(cal.rig, 40, 40)

    await cal.calibrator.step(T + 5 * SECOND, [0])
    assert await _stored_version(cal.rig) == 1, "looked again before 10 s had passed"
    new = await cal.calibrator.step(T + 12 * SECOND, [0])
    assert new is not None and (new.version, new.population) == (2, 80)
    assert cal.rig.processor.engine.cut_version == 2


async def test_of_two_refreshes_from_the_same_version_only_one_is_installed(
    cal: Calibrated,
) -> None:
    """Compare-and-set: two workers refresh from version 0 at once. Catches a plain
    write (the second would replace the first's version 1 with a different one)."""
    await _customers(cal.rig, 0, 40)
    engine = cal.rig.processor.engine
    first = await refresh(cal.rig.store, engine, [0], T, None, force=True, sample=100)
    second = await refresh(cal.rig.store, engine, [0], T + SECOND, None, force=True, sample=100)
    assert first is not None and first.version == 1
    assert second is None
    doc = await cal.rig.store.cuts()
    assert doc is not None and CutPoints.from_json(doc).at_ms == T


async def test_a_step_that_loses_the_race_follows_the_winner(cal: Calibrated) -> None:
    """Another worker installs version 1 between this step's read and its
    compare-and-set. Catches a loser that puts its own (refused) version in force, or
    counts it as a refresh: two workers ranking under different cut points."""
    await _customers(cal.rig, 0, 40)
    store = cal.rig.store
    real = store.put_cuts
    raced: list[int] = []

    async def another_worker_wins_first(expected_version: int, doc: Mapping[str, object]) -> bool:
        if not raced:
            raced.append(expected_version)
            assert await real(expected_version, {**doc, "at_ms": T - 1})
        return await real(expected_version, doc)

    store.put_cuts = another_worker_wins_first  # type: ignore[method-assign]  # the race, injected
    got = await cal.calibrator.step(T, [0])
    assert raced == [0], "the race was not injected"
    assert got is not None and (got.version, got.at_ms) == (1, T - 1)
    assert cal.rig.processor.engine.cut_version == 1
    assert cal.calibrator.refreshes == 0


async def test_a_worker_follows_cut_points_another_installed_and_sweeps_under_them(
    cal: Calibrated,
) -> None:
    """Catches a worker that keeps ranking under its old cut points (``follow`` not
    switching the engine), and a sweep that does not re-rank under the new version."""
    rig = cal.rig
    await _customers(rig, 0, 40)
    await sweep_to_end(rig, T)  # swept under no cut points, as a live worker would be
    other = await refresh(rig.store, rig.processor.engine, [0], T, None, force=True, sample=100)
    assert other is not None

    followed = await cal.calibrator.follow()
    assert followed is not None and followed.version == 1
    assert rig.processor.engine.cut_version == 1
    assert cal.calibrator.refreshes == 0

    await sweep_to_end(rig, T)
    stamp = rig.processor.engine.stamp
    states = [await rig.store.get_state(0, f"c{i}") for i in range(40)]
    assert [s.stamp if s else None for s in states] == [stamp] * 40
    assert await rig.store.meta_field(0, "sweep") == f"{rig.processor.sweep_target()}|done"
    assert rig.processor.sweep_target().endswith("/1")
    rows = await rig.store.outbox_read(0, 100_000)
    causes = {orjson.loads(payload)["cause"] for _, _, payload in rows}
    assert "recalibration" in causes
