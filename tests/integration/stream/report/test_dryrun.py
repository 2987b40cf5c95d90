"""Dry runs (:mod:`stream.report.dryrun`, issue #19): ``rules diff`` writes nothing and
shows exactly what the workers' sweep then does with the new file; ``diff`` of two
namespaces shows exactly where they differ. A real Processor on a real Redis through the
rig (no broker), the sweep run through its real path.

Each test names, in its docstring, the broken behaviour it catches.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.rules import RulesFile
from schemas.settings import Settings
from schemas.times import to_ms
from segments.cut_points import CutPoints
from segments.rules import build_engine, load_checked_rules
from state.connection import connect
from state.layout import ensure_layout
from stream.apply.calibrate import refresh
from stream.apply.routing import partitioner
from stream.apply.rules_change import ensure_cut_points
from stream.report.dryrun import namespace_diff, rules_diff
from stream.report.movement import ABSENT, Movement
from tests.support.harness import RULES, purchase, run_cli
from tests.support.processor_rig import Rig, make_rig, sweep_to_end

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
T = to_ms(NOW)
CUSTOMERS = 60

RFM8_CHANGED = (RULES / "rfm8.toml").read_text().replace('["90d"]', '["60d"]')
RFM8_CHANGED = RFM8_CHANGED.replace('["1000"]', '["500"]')

PYRAMID = """
[schemes.pyramid]
axes.m.quantiles = [{qs}]
[schemes.pyramid.segments]
vip = {{ label = "A", cells = ["4"] }}
major = {{ label = "B", cells = ["3"] }}
ordinary = {{ label = "C", cells = ["2"] }}
small = {{ label = "D", cells = ["1"] }}
"""

ORDERS = """
[schemes.orders]
axes.f.quantiles = [0.5]
segments.few = { label = "F1", cells = ["1"] }
segments.many = { label = "F2", cells = ["2"] }
"""


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    r = await make_rig(redis_url, T, decay_timer="false", sweep_batch="16")
    await ensure_layout(r.store, r.settings.purchases_topic, 1)  # as a worker records it
    yield r
    await r.close()


async def _populate(rig: Rig, customers: int = CUSTOMERS, partitions: int = 1) -> None:
    """Spread-out histories: one to three orders, 200 to 1,200 spent, last bought 10 to
    140 days ago (some past rfm8's 90 days with the timer not yet run: overdue); each
    customer's events on the partition that owns them."""
    events = []
    for i in range(customers):
        for k in range(1 + i % 3):
            at = NOW - timedelta(days=10 + (i * 7) % 131 + k)
            events.append(purchase(f"c{i:03d}", k, at, str(200 + 50 * (i % 21))))
    await _feed(rig, events, partitions)


async def _feed(rig: Rig, events: list[dict[str, Any]], partitions: int = 1) -> None:
    home = partitioner(rig.settings.partitioner)
    by_partition: dict[int, list[bytes]] = {}
    for e in events:
        p = home(e["customer_id"].encode(), partitions)
        by_partition.setdefault(p, []).append(orjson.dumps(e))
    for p, values in sorted(by_partition.items()):
        await rig.feed(values, p)


async def _dump(redis_url: str, namespace: str) -> dict[bytes, tuple[bytes | None, int]]:
    """Every key of ``namespace`` (on every master of a cluster): its DUMP and absolute
    expiry (byte-identical or not)."""
    client = await connect(redis_url, decode_responses=False)
    try:
        pattern = f"*{namespace}*"
        keys = [k async for k in client.scan_iter(match=pattern, count=1000)]
        return {k: (await client.dump(k), await client.pexpiretime(k)) for k in keys}
    finally:
        await client.aclose()


async def _outbox_ids(rig: Rig) -> set[str]:
    return {entry for entry, _, _ in await rig.store.outbox_read(0, 1_000_000)}


async def _net_moves(rig: Rig, before: set[str]) -> dict[str, dict[tuple[str, str], list[str]]]:
    """scheme -> (from, to) -> customers, over the transitions committed since ``before``:
    each customer's first from and last to (a decay then a rules change is one move)."""
    firsts: dict[tuple[str, str], tuple[str, str]] = {}
    for entry, _, payload in await rig.store.outbox_read(0, 1_000_000):
        if entry in before:
            continue
        t = orjson.loads(payload)
        key = (t["scheme"], t["customer_id"])
        source = firsts[key][0] if key in firsts else t["from_segment"]
        firsts[key] = (source, t["to_segment"])
    out: dict[str, dict[tuple[str, str], list[str]]] = {}
    for (scheme, cid), (source, target) in sorted(firsts.items()):
        if source != target:
            out.setdefault(scheme, {}).setdefault((source, target), []).append(cid)
    return out


Matrix = dict[str, dict[tuple[str, str], tuple[int, list[str]]]]
"""scheme -> (from, to) -> (customers, the smallest ids)."""


def _matrix(movement: Movement) -> Matrix:
    return {
        name: {(c.source, c.target): (c.count, list(c.sample)) for c in m.matrix()}
        for name, m in movement.schemes.items()
        if m.moved
    }


def _expected(moves: dict[str, dict[tuple[str, str], list[str]]], sample: int) -> Matrix:
    return {
        scheme: {cell: (len(ids), sorted(ids)[:sample]) for cell, ids in cells.items()}
        for scheme, cells in moves.items()
    }


def _rules_file(tmp_path: Path, text: str) -> tuple[Settings, RulesFile, str]:
    path = tmp_path / "new.toml"
    path.write_text(text)
    return Settings(rules=str(path)), load_checked_rules(Settings(rules=str(path))), str(path)


@pytest.mark.redis_cluster_too
async def test_rules_diff_writes_nothing_and_is_what_the_sweep_then_does(
    rig: Rig, redis_url: str, tmp_path: Path
) -> None:
    """Catches a dry run that writes (states, stamps, outbox, tallies), one evaluated at
    another as-of time than the sweep (the overdue decays would be missing), one that
    classifies by a rule of its own, and one that counts a customer twice or drops one."""
    await _populate(rig)
    await sweep_to_end(rig, T)
    _, rules, path = _rules_file(tmp_path, RFM8_CHANGED)
    settings = rig.settings.model_copy(update={"rules": path})

    dumped = await _dump(redis_url, rig.settings.namespace)
    assert len(dumped) > CUSTOMERS  # every customer's hash, and the rest
    diff = await rules_diff(rig.settings, rig.store, rules, path, T, sample=3)
    assert await _dump(redis_url, rig.settings.namespace) == dumped

    before = await _outbox_ids(rig)
    rig.processor.use(build_engine(settings, rules))  # what a worker on the new file runs
    await sweep_to_end(rig, T)
    done = await _net_moves(rig, before)
    assert diff.movement.customers == CUSTOMERS
    assert len(done["rfm8"]) >= 3, done  # the base makes several cells move
    assert _matrix(diff.movement) == _expected(done, 3)


async def test_rules_diff_ranks_new_quantiles_as_the_worker_then_does(
    rig: Rig, tmp_path: Path
) -> None:
    """Changed quantile axes get the cut points a worker starting on the new file
    computes before classifying anyone (same version, thresholds from every customer's
    state at the same time), including an axis no version had thresholds for (orders'
    F: ranked, not left to nobody); unchanged ones keep the current version, so the same
    file moves nobody. Catches a dry run that ranks changed axes with the old version's
    thresholds or none, or from the new rules' (empty) summaries, and one that re-ranks
    everyone under a version nobody installs when nothing changed."""
    old = tmp_path / "old.toml"
    old.write_text(PYRAMID.format(qs="0.5, 0.8, 0.99"))
    old_settings = rig.settings.model_copy(update={"rules": str(old)})
    rig.processor.use(build_engine(old_settings))  # before any event: summaries kept
    await _populate(rig)
    first = await refresh(rig.store, rig.processor.engine, [0], T, None, force=True)
    assert first is not None
    rig.processor.use(build_engine(old_settings, None, first))
    await sweep_to_end(rig, T)

    same = load_checked_rules(old_settings)
    unchanged = await rules_diff(old_settings, rig.store, same, str(old), T + 1000)
    assert unchanged.movement.moved == 0 and unchanged.cut_version == first.version
    assert unchanged.recut == []

    new_text = PYRAMID.format(qs="0.25, 0.5, 0.75") + ORDERS
    settings, rules, path = _rules_file(tmp_path, new_text)
    settings = rig.settings.model_copy(update={"rules": path})
    diff = await rules_diff(old_settings, rig.store, rules, path, T + 1000, sample=2)

    before = await _outbox_ids(rig)
    draft = build_engine(settings, rules)  # a worker starting on the new file
    cuts = await ensure_cut_points(rig.store, draft, [0], lambda: T + 1000)
    assert isinstance(cuts, CutPoints) and diff.cut_version == cuts.version == 2
    assert cuts.thresholds["orders"]["f"] and cuts.population == CUSTOMERS
    rig.processor.use(build_engine(settings, rules, cuts))
    await sweep_to_end(rig, T + 1000)
    done = await _net_moves(rig, before)
    assert diff.unranked == []  # orders' F ranked from the states, as the workers do
    assert diff.recut == ["pyramid", "orders"]
    assert done["orders"] and _matrix(diff.movement) == _expected(done, 2)


async def _rig_of(redis_url: str, partitions: int) -> Rig:
    r = await make_rig(redis_url, T, partitions, decay_timer="false")
    await ensure_layout(r.store, r.settings.purchases_topic, partitions)
    return r


@pytest.mark.redis_cluster_too
async def test_namespace_diff_shows_exactly_the_difference(redis_url: str) -> None:
    """Same events in two namespaces of different layouts (2 and 3 partitions): no
    difference, nor of one with itself. One more purchase and one more customer in the
    second: exactly those. Catches a diff that reads customers from the wrong side or
    partition, misses customers only the second holds, or reports noise; on a Redis
    Cluster too (each partition's SCAN on the master owning its slot)."""
    left, right = await _rig_of(redis_url, 2), await _rig_of(redis_url, 3)
    try:
        await _populate(left, 30, 2)
        await _populate(right, 30, 3)
        assert (await namespace_diff(left.settings, left.store, left.store, ["rfm8"])).empty
        same = await namespace_diff(left.settings, left.store, right.store, ["rfm8"])
        assert same.empty and same.left_customers == same.right_customers == 30

        at = NOW - timedelta(days=3)
        extra = [purchase("c000", 9, at, "900"), purchase("z999", 0, at, "50")]  # c000: 1100
        await _feed(right, extra, 3)
        diff = await namespace_diff(left.settings, left.store, right.store, ["rfm8"], sample=5)
    finally:
        await left.close()
        await right.close()
    moves = {(c.source, c.target): list(c.sample) for c in diff.movement.schemes["rfm8"].matrix()}
    assert moves == {("new", "high_value"): ["c000"], (ABSENT, "new"): ["z999"]}
    assert [c.customer_id for c in diff.fm_sample] == ["c000", "z999"]
    assert diff.fm_sample[0].f == (1, 2) and diff.fm_sample[1].f == (None, 1)
    assert (diff.left_customers, diff.right_customers) == (30, 31)


def _cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "--redis-url", redis_url)


async def test_the_cli_compares_and_refuses_an_unknown_namespace(
    rig: Rig, redis_url: str, tmp_path: Path
) -> None:
    """Through the real commands: the JSON of a comparison and of a rules diff, a progress
    line on stderr, and an unknown namespace refused with one line and exit 2 (no
    traceback)."""
    await _populate(rig, 10)
    ns = rig.settings.namespace
    proc = await asyncio.to_thread(_cli, redis_url, "diff", ns, ns, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = orjson.loads(proc.stdout)
    assert doc["left"] == {"namespace": ns, "customers": 10} and doc["fm_differ"]["count"] == 0
    assert "20/20 customers" in proc.stderr  # both walks

    new = tmp_path / "new.toml"
    new.write_text(RFM8_CHANGED)
    args = ("rules", "diff", str(new), "--namespace", ns, "--rules", str(RULES / "rfm8.toml"))
    started = datetime.now(UTC)
    grace = ("--decay-grace", "1d")  # the sweep's as-of: the wall clock less the grace
    proc = await asyncio.to_thread(_cli, redis_url, *args, *grace, "--json", "--sample", "1")
    assert proc.returncode == 0, proc.stderr
    doc = orjson.loads(proc.stdout)
    assert doc["namespace"] == ns and doc["customers"] == 10 and doc["cut_version"] is None
    as_of = datetime.fromisoformat(doc["as_of"]) + timedelta(days=1)
    assert started - timedelta(seconds=1) <= as_of <= datetime.now(UTC), doc["as_of"]
    moves = doc["schemes"]["rfm8"]["moves"]
    assert moves and all(len(m["sample"]) == 1 for m in moves)

    proc = await asyncio.to_thread(_cli, redis_url, "diff", ns, "nosuch1")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == ["rfm-stream: unknown namespace 'nosuch1': redis holds no layout for it"]
