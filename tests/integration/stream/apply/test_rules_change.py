"""A rules change that adds or changes a quantile axis (issue #20 follow-up): the new
rules' first cut points come from every customer's state before anyone is classified
under them (:mod:`stream.apply.rules_change`). A real Processor on a real Redis through
the rig (no broker), the sweep and the calibrator run through their real paths.

Each test names, in its docstring, the broken behaviour it catches.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from schemas.times import to_ms
from segments.rules import build_engine, load_checked_rules
from state.pass_lock import PassLease
from state.store import RedisStore
from state.walk import walk_states
from stream.apply.calibrate import Calibrator, recalibrate, refresh
from stream.apply.rules_change import SweepUnfinished, ensure_cut_points
from tests.support.harness import purchase
from tests.support.processor_rig import Rig, make_rig, sweep_to_end

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
T = to_ms(NOW)
CUSTOMERS = 40
HOUR = 3_600_000

SPEND = """
[schemes.spend]
axes.m.quantiles = [0.5]
segments.low = { label = "L", cells = ["1"] }
segments.high = { label = "H", cells = ["2"] }
"""
OLD = (
    SPEND
    + """
[schemes.loyalty]
axes.f.cuts = [2]
segments.casual = { label = "C", cells = ["1"] }
segments.regular = { label = "R", cells = ["2"] }
"""
)
NEW = (
    SPEND
    + """
[schemes.loyalty]
axes.f.cuts = [2]
axes.a.quantiles = [0.5]
segments.casual = { label = "C", cells = ["11"] }
segments.butterflies = { label = "B", cells = ["12"] }
segments.regular = { label = "R", cells = ["21"] }
segments.friends = { label = "F", cells = ["22"] }
"""
)


def _order_value(i: int) -> int:
    """Customer i's spend per order: all distinct, each 2 % or more from the next (no
    two share a summary bucket, so the median split is exact)."""
    return 100 + 37 * ((i * 17) % CUSTOMERS)


@pytest.fixture
async def rig(redis_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    """40 customers classified under OLD (spend by median m, loyalty by f alone), its
    cut points in force and swept: a namespace about to get NEW."""
    r = await make_rig(redis_url, T, decay_timer="false", sweep_batch="8")
    old = tmp_path / "old.toml"
    old.write_text(OLD)
    old_settings = r.settings.model_copy(update={"rules": str(old)})
    r.processor.use(build_engine(old_settings))
    events = [
        orjson.dumps(purchase(f"c{i:03d}", k, NOW - timedelta(days=5 + k), str(_order_value(i))))
        for i in range(CUSTOMERS)
        for k in range(1 + i % 3)
    ]
    await r.feed(events)
    first = await refresh(r.store, r.processor.engine, [0], T, None, force=True)
    assert first is not None and first.version == 1
    r.processor.use(build_engine(old_settings, None, first))
    await sweep_to_end(r, r.processor.clock.now_ms())
    yield r
    await r.close()


def _new_rules(rig: Rig, tmp_path: Path) -> Calibrator:
    """The processor switched to NEW, as a worker starting on the new file (before it
    consumes anything), and its calibrator."""
    path = tmp_path / "new.toml"
    path.write_text(NEW)
    settings = rig.settings.model_copy(update={"rules": str(path)})
    rules = load_checked_rules(settings)
    rig.processor.use(build_engine(settings, rules))
    return Calibrator(settings, rig.store, rig.processor, rules)


async def _segments(store: RedisStore) -> dict[str, dict[str, str]]:
    return {
        s.customer_id: dict(s.segments) async for chunk in walk_states(store, [0]) for s in chunk
    }


async def _transitions(rig: Rig) -> list[dict[str, object]]:
    return [orjson.loads(p) for _, _, p in await rig.store.outbox_read(0, 1_000_000)]


def _expected_loyalty(states: dict[str, tuple[int, int]]) -> dict[str, str]:
    """NEW's loyalty from first principles: f ≥ 2 is loyal; the a (m / f) above the
    median rank k = ⌈n / 2⌉ is the high half (no ties here)."""
    ranked = sorted(states, key=lambda c: states[c][1])
    k = math.ceil(0.5 * len(ranked))
    high = set(ranked[k:])
    names = {(1, 1): "casual", (1, 2): "butterflies", (2, 1): "regular", (2, 2): "friends"}
    return {c: names[(2 if f >= 2 else 1, 2 if c in high else 1)] for c, (f, _) in states.items()}


async def test_a_new_quantile_axis_is_ranked_from_every_customer_before_anyone_moves(
    rig: Rig, tmp_path: Path
) -> None:
    """Loyalty gains a median split on average order value. Every transition the rules
    change publishes is one customer's move from their old segment to the one the new
    rules give them with cut points from all 40 states; spend (unchanged) moves nobody.
    Catches a sweep that classifies under the version in force (made for the old axes:
    loyalty ranks nobody, everyone to none) or under cuts from part of the customers,
    and a worker that installs no version before classifying."""
    before = await _segments(rig.store)
    seen = len(await _transitions(rig))
    values = {
        s.customer_id: (s.frequency, s.monetary // s.frequency)
        async for chunk in walk_states(rig.store, [0])
        for s in chunk
    }
    calibrator = _new_rules(rig, tmp_path)

    cuts = await calibrator.prepare([0])  # what the runtime does before consuming
    assert cuts is not None and cuts.version == 2 and cuts.population == CUSTOMERS
    assert rig.processor.engine.cut_version == 2
    await sweep_to_end(rig, rig.processor.clock.now_ms())

    expected = _expected_loyalty(values)
    published = {
        (t["customer_id"], t["scheme"], t["from_segment"], t["to_segment"], t["cause"])
        for t in (await _transitions(rig))[seen:]
    }
    wanted = {
        (c, "loyalty", before[c]["loyalty"], seg, "rules_change")
        for c, seg in expected.items()
        if seg != before[c]["loyalty"]
    }
    assert len(wanted) == CUSTOMERS // 2  # the high half of a moves (some of them up)
    assert published == wanted
    assert {c: s["loyalty"] for c, s in (await _segments(rig.store)).items()} == expected


async def test_no_refresh_from_the_summaries_a_rules_change_sweep_is_still_filling(
    rig: Rig, tmp_path: Path
) -> None:
    """A scheduled refresh due while the rules-change sweep is half-way waits for it to
    finish, then runs over all customers; ``rfm-stream recalibrate`` meanwhile is refused
    in one line. Catches a refresh computing cuts from the customers re-evaluated so far
    (and re-ranking everyone by them)."""
    calibrator = _new_rules(rig, tmp_path)
    prepared = await calibrator.prepare([0])
    assert prepared is not None
    now = rig.processor.clock.now_ms()
    assert not await rig.processor.sweep(0, now)  # one chunk of 8 of 40 re-evaluated
    later = now + 2 * rig.settings.quantile_refresh  # a refresh is due
    meanwhile = await calibrator.step(later, [0])
    assert meanwhile == prepared  # none from the partial summaries
    assert rig.processor.engine.cut_version == prepared.version
    with pytest.raises(SweepUnfinished, match="still re-evaluating"):  # the operator's too
        await recalibrate(rig.store, rig.processor.engine, [0], later)
    await sweep_to_end(rig, now)
    done = await calibrator.step(later, [0])
    assert done is not None and done.version == prepared.version + 1
    assert done.population == CUSTOMERS


async def test_workers_racing_install_exactly_one_version(
    rig: Rig, tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Four workers start on the new rules at once, each with its own connection: one
    walks the customers and installs version 2, the others wait for it and use it.
    Catches several versions installed (each worker's own), a loser that never sees
    the winner's, and every worker walking the whole namespace."""
    calibrator = _new_rules(rig, tmp_path)
    engine = rig.processor.engine
    stores = [
        RedisStore.from_url(redis_url, rig.settings.key_prefix, rig.settings.namespace)
        for _ in range(4)
    ]
    caplog.set_level(logging.INFO, logger="stream.apply.rules_change")
    try:
        got = await asyncio.gather(
            *(ensure_cut_points(s, engine, [0], calibrator.processor.clock.now_ms) for s in stores)
        )
    finally:
        for s in stores:
            await s.close()
    assert {c.version for c in got if c is not None} == {2} and None not in got
    assert len({orjson.dumps(c.to_json()) for c in got if c is not None}) == 1
    installs = [r for r in caplog.records if "computed from all" in r.getMessage()]
    assert len(installs) == 1
    doc = await rig.store.cuts()
    assert doc is not None and doc["version"] == 2


async def test_a_crashed_winner_s_lease_expires(rig: Rig, tmp_path: Path) -> None:
    """A worker took the lease and died without releasing it: the next one waits for
    the lease to expire, then computes and installs the version itself. Catches a lease
    without expiry (every worker blocked for ever) and a waiter that never takes over."""
    calibrator = _new_rules(rig, tmp_path)
    dead = PassLease(rig.store, lease_ms=1000)
    assert await dead.take()
    client = await rig.store.connect()
    left_ms = await client.pttl(dead.key)  # Redis's clock: what the waiter must wait out
    started = time.monotonic()
    cuts = await ensure_cut_points(
        rig.store, rig.processor.engine, [0], calibrator.processor.clock.now_ms
    )
    waited_ms = (time.monotonic() - started) * 1000
    assert cuts is not None and cuts.version == 2
    assert left_ms - 50 <= waited_ms < 5000, (left_ms, waited_ms)
    assert not await dead.held_by_anyone()  # released by the one that took over


async def test_a_version_made_for_other_rules_is_not_followed(rig: Rig, tmp_path: Path) -> None:
    """A worker still on the old file (a rolling deploy) installs a version for its own
    axes: a worker on the new rules keeps its version rather than rank loyalty's a with
    no thresholds, and replaces it at its next refresh. Catches a follow that adopts any
    newer version, whatever axes it was made for."""
    calibrator = _new_rules(rig, tmp_path)
    ours = await calibrator.prepare([0])
    assert ours is not None and ours.version == 2
    old_rules = tmp_path / "old.toml"  # written by the fixture
    old_engine = build_engine(rig.settings.model_copy(update={"rules": str(old_rules)}))
    now = rig.processor.clock.now_ms()
    theirs = await refresh(rig.store, old_engine, [0], now, ours, force=True)
    assert theirs is not None and theirs.version == 3 and "loyalty" not in theirs.thresholds
    assert (await calibrator.follow()) == theirs
    assert rig.processor.engine.cut_version == 2  # not followed
    await sweep_to_end(rig, now)
    later = await calibrator.step(now + 2 * rig.settings.quantile_refresh, [0])
    assert later is not None and later.version == 4 and later.made_for(rig.processor.engine.schemes)
    assert rig.processor.engine.cut_version == 4


async def test_the_recalibrate_command_waits_for_the_sweep_it_must_not_cut_short(
    rig: Rig, tmp_path: Path, redis_url: str, kafka_bootstrap: str
) -> None:
    """``rfm-stream recalibrate`` while the workers re-evaluate customers: with
    ``--wait 0`` refused in one line (exit 2); by default it waits for the sweep and then
    installs its version. Catches an operator's recalibration refused whenever a worker
    happens to be mid-sweep (CI run 1 of this session: right after a worker's own refresh)."""
    import os
    import subprocess
    import sys

    from tests.support.harness import ROOT

    _new_rules(rig, tmp_path)
    calibrator = _new_rules(rig, tmp_path)
    prepared = await calibrator.prepare([0])
    assert prepared is not None
    now = rig.processor.clock.now_ms()
    assert not await rig.processor.sweep(0, now)  # half-way
    args = [sys.executable, "-m", "stream.cli", "recalibrate", "--redis-url", redis_url]
    args += ["--namespace", rig.settings.namespace, "--rules", str(tmp_path / "new.toml")]
    args += ["--partitions", "1", "--kafka-bootstrap", kafka_bootstrap]
    args += ["--purchases-topic", f"none-{rig.settings.namespace}"]  # no topic: 1 partition
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    refused = await asyncio.to_thread(
        subprocess.run, [*args, "--wait", "0"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert refused.returncode == 2, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("rfm-stream: cannot recalibrate yet"), refused.stderr
    waiting = await asyncio.create_subprocess_exec(
        *args, "--wait", "60", cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    await asyncio.sleep(1.5)
    await sweep_to_end(rig, now)
    out, err = await asyncio.wait_for(waiting.communicate(), 60)
    assert waiting.returncode == 0, err.decode()
    assert f"cut points: version {prepared.version + 1}" in out.decode(), out.decode()
