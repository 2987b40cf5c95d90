"""Rules A, then B, then A again (a rollback) and the quantile summaries (review finding
2), and a worker's start picking up the version its rules-change pass made (finding 7).

A real Processor on a real Redis through the rig (no broker); each rules change goes the
way a starting worker's does: :meth:`stream.apply.calibrate.Calibrator.prepare`, then the
rules-change sweep. Each test names, in its docstring, the broken behaviour it catches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from schemas.times import to_ms
from segments import sketch
from segments.cut_points import CutPoints
from segments.engine import Engine
from segments.quantiles import ExactSummaries, Populations
from segments.rules import build_engine, load_checked_rules
from state.store import RedisStore
from state.walk import walk_states
from stream.apply import calibrate
from stream.apply.calibrate import Calibrator, refresh
from tests.support.harness import purchase
from tests.support.processor_rig import Rig, make_rig, sweep_to_end

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
T = to_ms(NOW)
CUSTOMERS = 10

PYRAMID = """
[schemes.pyramid]
axes.m.quantiles = {q}
[schemes.pyramid.segments]
{segments}
"""
A = PYRAMID.format(
    q="[0.5, 0.8, 0.99]",
    segments='vip = { label = "A", cells = ["4"] }\nmajor = { label = "B", cells = ["3"] }\n'
    'ordinary = { label = "C", cells = ["2"] }\nsmall = { label = "D", cells = ["1"] }',
)
B = PYRAMID.format(
    q="[0.5]",
    segments='top = { label = "T", cells = ["2"] }\nrest = { label = "R", cells = ["1"] }',
)
A_MERGED = A.replace(
    'cells = ["2"] }\nsmall = { label = "D", cells = ["1"] }', 'cells = ["2", "1"] }'
)
"""A's quantile axes, its two lowest segments merged: a rules change needing no walk."""


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    r = await make_rig(redis_url, T, decay_timer="false", sweep_batch="4")
    yield r
    await r.close()


async def _start(rig: Rig, path: Path, text: str, sweep: bool = True) -> Calibrator:
    """The processor on ``text``'s rules, as a worker starting on that file: prepare
    (the rules-change pass, or an era begun), then the sweep to the end."""
    _write(path, text)
    settings = rig.settings.model_copy(update={"rules": str(path)})
    rules = load_checked_rules(settings)
    rig.processor.use(build_engine(settings, rules))
    cal = Calibrator(settings, rig.store, rig.processor, rules)
    await cal.prepare([0])
    rig.clock.advance(1000)
    if sweep:
        await sweep_to_end(rig, rig.clock.now_ms())
    return cal


def _write(path: Path, text: str) -> None:
    path.write_text(text)


async def _feed(rig: Rig) -> None:
    await rig.feed(
        [
            orjson.dumps(purchase(f"c{i}", i, NOW - timedelta(days=1), str(100 + 7 * i)))
            for i in range(CUSTOMERS)
        ]
    )


async def _summaries(rig: Rig, engine: Engine) -> dict[str, dict[int, int]]:
    names = list(Populations.of(engine).names)
    return await rig.store.tallies.summaries([0], names)


async def _exact(rig: Rig, engine: Engine) -> dict[str, dict[int, int]]:
    """What the engine's summaries must hold: every customer's value, once."""
    exact = ExactSummaries(Populations.of(engine))
    async for states in walk_states(rig.store, [0]):
        exact.add(states)
    return {k: v for k, v in exact.summaries.items() if v}


async def _exists(rig: Rig, name: str) -> bool:
    client = await rig.store.connect()
    return bool(await client.exists(rig.store.keys.summary(0, name)))


async def test_a_rollback_counts_every_customer_once_and_drops_the_old_summaries(
    rig: Rig, tmp_path: Path
) -> None:
    """Broken: A's first summaries were frozen holding everyone; after B and back to A,
    the sweep added every customer to them a second time (20 of 10), and every rules
    version's summaries stayed in Redis for ever."""
    await _start(rig, tmp_path / "a.toml", A)
    await _feed(rig)
    first_a = list(Populations.of(rig.processor.engine).names)
    assert {k: sketch.size(v) for k, v in (await _summaries(rig, rig.processor.engine)).items()}
    await _start(rig, tmp_path / "b.toml", B)
    b_names = list(Populations.of(rig.processor.engine).names)
    assert all(
        sketch.size(v) == CUSTOMERS for v in (await _summaries(rig, rig.processor.engine)).values()
    )
    await _start(rig, tmp_path / "a2.toml", A)
    engine = rig.processor.engine
    got = await _summaries(rig, engine)
    assert {k: sketch.size(v) for k, v in got.items()} == dict.fromkeys(got, CUSTOMERS)
    assert got == await _exact(rig, engine)
    assert not [n for n in first_a + b_names if await _exists(rig, n)]


async def test_a_rollback_mid_sweep_counts_every_customer_once(rig: Rig, tmp_path: Path) -> None:
    """Broken: rolled back before B's sweep reached everyone, customers still stamped
    under A's first era counted in A's old summaries, and the rest were added again."""
    await _feed(rig)  # under the rig's rules: A's pass then begins a named era
    await _start(rig, tmp_path / "a.toml", A)
    first_a = Populations.of(rig.processor.engine)
    assert first_a.since is not None
    await _start(rig, tmp_path / "b.toml", B, sweep=False)
    assert not await rig.processor.sweep(0, rig.clock.now_ms())  # 4 of 10 re-evaluated
    await _start(rig, tmp_path / "a2.toml", A)
    engine = rig.processor.engine
    got = await _summaries(rig, engine)
    assert got and got == await _exact(rig, engine)
    assert all(sketch.size(v) == CUSTOMERS for v in got.values())
    assert engine.summary_since is not None and engine.summary_since > first_a.since
    assert not [n for n in first_a.names if await _exists(rig, n)]


async def test_a_rollback_over_a_change_of_segments_only_counts_every_customer_once(
    rig: Rig, tmp_path: Path
) -> None:
    """Broken the same way when the rules in between kept A's quantile axes (no walk, the
    version in force reused): A's old summaries were counted into again."""
    await _start(rig, tmp_path / "a.toml", A)
    await _feed(rig)
    await _start(rig, tmp_path / "r.toml", A_MERGED)
    await _start(rig, tmp_path / "a2.toml", A)
    engine = rig.processor.engine
    got = await _summaries(rig, engine)
    assert got and got == await _exact(rig, engine)
    assert all(sketch.size(v) == CUSTOMERS for v in got.values())
    assert await calibrate.summaries_complete(
        rig.store, engine.rules_version, [0], engine.summary_since
    )


async def test_start_uses_the_version_its_pass_made_not_a_foreign_one_installed_after(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Broken: prepare() dropped the version the rules-change pass returned and re-read
    the store; an old-rules worker's refresh installed in between was refused as made
    for other rules, and the engine kept thresholds made for other axes (none here)."""
    await _start(rig, tmp_path / "b.toml", B)
    await _feed(rig)
    b_engine = rig.processor.engine
    real = calibrate.ensure_cut_points

    async def then_an_old_worker_refreshes(
        store: RedisStore,
        engine: Engine,
        partitions: Iterable[int],
        now: Callable[[], int],
        lease_ms: int | None = None,
    ) -> CutPoints | None:
        made = await real(store, engine, partitions, now, lease_ms)
        assert made is not None
        foreign = await refresh(rig.store, b_engine, [0], rig.clock.now_ms(), made, force=True)
        assert foreign is not None and foreign.version == made.version + 1
        return made

    monkeypatch.setattr(calibrate, "ensure_cut_points", then_an_old_worker_refreshes)
    _write(tmp_path / "a.toml", A)
    settings = rig.settings.model_copy(update={"rules": str(tmp_path / "a.toml")})
    rules = load_checked_rules(settings)
    rig.processor.use(build_engine(settings, rules))
    cal = Calibrator(settings, rig.store, rig.processor, rules)
    used = await cal.prepare([0])
    assert used is not None and used.made_for(rig.processor.engine.schemes)
    assert rig.processor.engine.cut_version == used.version
    assert rig.processor.engine.summary_since == used.version
