"""Segment members (issue #19): ``rfm-stream members`` (:mod:`stream.cli.members`) and the
paged HTTP listing (:mod:`stream.api.members`) list exactly who the committed states put in
a segment, on a single Redis and on a Cluster; pages stay stable while customers move; an
interrupted export resumes to the same result. A real Processor on a real Redis through
the rig (no broker). Each test names, in its docstring, the broken behaviour it catches.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from pydantic import SecretStr

from schemas.times import to_ms
from state.layout import ensure_layout
from state.snapshots import Snapshots
from state.store import RedisStore
from stream.api.members import Members
from stream.api.server import HttpServer
from stream.apply.routing import partitioner
from stream.cli.main import main
from stream.cli.members import export_members
from stream.demo.embedded import free_port
from stream.report.members import MembersQuery, sort_key
from tests.support.harness import purchase, run_cli
from tests.support.processor_rig import Rig, make_rig
from tests.support.secure_redis import WORKER_ACL

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
T = to_ms(NOW)
PARTITIONS = 3
SEGMENTS = ("high_value", "develop", "dormant", "churning", "potential", "new", "maintain")


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    """60 customers over 3 partitions, their decays fired at T: most rfm8 segments held."""
    r = await make_rig(redis_url, T, PARTITIONS, decay_timer="false")
    await ensure_layout(r.store, r.settings.purchases_topic, PARTITIONS)
    events = []
    for i in range(60):
        for k in range(1 + i % 3):
            at = NOW - timedelta(days=10 + (i * 7) % 131 + k)
            events.append(purchase(f"c{i:03d}", k, at, str(200 + 50 * (i % 21))))
    await _feed(r, events)
    for p in range(PARTITIONS):
        await r.processor.run_due(p, T)
    yield r
    await r.close()


async def _feed(rig: Rig, events: list[dict[str, Any]]) -> None:
    home = partitioner(rig.settings.partitioner)
    by_partition: dict[int, list[bytes]] = {}
    for e in events:
        by_partition.setdefault(home(e["customer_id"].encode(), PARTITIONS), []).append(
            orjson.dumps(e)
        )
    for p, values in sorted(by_partition.items()):
        await rig.feed(values, p)


async def _recount(rig: Rig, scheme: str) -> dict[str, set[str]]:
    """segment -> customers, from the transitions the processor committed (each
    customer's last ``to_segment``): independent of the walk and of the stored states."""
    last: dict[str, str] = {}
    for p in range(PARTITIONS):
        for _, _, payload in await rig.store.outbox_read(p, 1_000_000):
            t = orjson.loads(payload)
            if t["scheme"] == scheme:
                last[t["customer_id"]] = t["to_segment"]
    out: dict[str, set[str]] = {}
    for cid, seg in last.items():
        out.setdefault(seg, set()).add(cid)
    return out


async def _export(rig: Rig, tmp_path: Path, segment: str, sort: str = "value") -> list[dict]:
    out = tmp_path / f"{segment}-{sort}.jsonl"
    query = MembersQuery("rfm8", segment, sort, None, "jsonl")
    await export_members(rig.settings, query, out, T, progress=io.StringIO())
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


async def _pages(base: str, segment: str, limit: int, sort: str = "value") -> list[dict]:
    """POST a snapshot, then every page of it, concatenated."""
    path = f"/segments/rfm8/{segment}/members"
    async with aiohttp.ClientSession(base) as http:
        async with http.post(path, params={"sort": sort}) as r:
            assert r.status in (200, 201), await r.text()
            cursor: str | None = (await r.json())["first"]
        rows: list[dict] = []
        for _ in range(1000):  # bounded: a cursor that never ends fails, not hangs
            if cursor is None:
                break
            async with http.get(path, params={"cursor": cursor, "limit": str(limit)}) as r:
                assert r.status == 200, await r.text()
                page = await r.json()
            rows += page["members"]
            cursor = page["next"]
    return rows


@pytest.fixture
async def http(rig: Rig) -> AsyncIterator[str]:
    """The API's members routes over the rig's namespace, its clock at T."""
    members = Members(rig.settings, rig.store, lambda: rig.processor.engine, lambda: T)
    server = HttpServer(free_port(), str, lambda: {"ok": True}, members=members)
    await server.on_start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.on_stop()


@pytest.mark.redis_cluster_too
async def test_the_listing_is_a_recount_of_every_segment(
    rig: Rig, http: str, tmp_path: Path
) -> None:
    """Every rfm8 segment, by the CLI's export and by the HTTP pages: exactly the
    customers the committed transitions put there, sorted best first. Catches a walk that
    misses a partition (or a Cluster master), counts a customer twice, lists another
    segment's members, or an HTTP listing that differs from the export."""
    expected = await _recount(rig, "rfm8")
    assert len([s for s in SEGMENTS if expected.get(s)]) >= 4, expected  # a varied base
    for segment in SEGMENTS:
        rows = await _export(rig, tmp_path, segment)
        ids = [r["customer_id"] for r in rows]
        assert sorted(ids) == sorted(expected.get(segment, set())), segment
        assert rows == sorted(rows, key=lambda r: sort_key(r, "value"))
        assert [r["customer_id"] for r in await _pages(http, segment, 7)] == ids, segment


async def test_pages_are_stable_while_customers_move(rig: Rig, http: str, tmp_path: Path) -> None:
    """Page through a snapshot while purchases move its members out and others in. The
    concatenated pages are the snapshot taken before, in order, no repeat, no skip; a new
    export shows the moves happened. Catches pages read from live state (offsets shift
    as members leave: skips and repeats)."""
    before = await _export(rig, tmp_path, "dormant", "spend")
    assert len(before) >= 6, before
    path = "/segments/rfm8/dormant/members"
    async with aiohttp.ClientSession(http) as client:
        async with client.post(path, params={"sort": "spend"}) as r:
            assert r.status == 201
            cursor: str | None = (await r.json())["first"]
        moved = [r["customer_id"] for r in before[::2]]
        turns: asyncio.Queue[str] = asyncio.Queue()

        async def move() -> None:  # a purchase today each turn: dormant -> high_value
            for i, cid in enumerate(moved):
                await turns.get()
                await _feed(rig, [purchase(cid, 50 + i, NOW - timedelta(hours=1), "5000")])

        mover = asyncio.create_task(move())
        rows: list[dict] = []
        for _ in range(1000):  # bounded: a cursor that never ends fails, not hangs
            if cursor is None:
                break
            async with client.get(path, params={"cursor": cursor, "limit": "2"}) as r:
                page = await r.json()
            rows += page["members"]
            cursor = page["next"]
            turns.put_nowait(cursor or "")  # a customer moves before the next page
            await asyncio.sleep(0.01)
        for _ in moved:
            turns.put_nowait("")
        await mover
    assert [r["customer_id"] for r in rows] == [r["customer_id"] for r in before]
    after = {r["customer_id"] for r in await _export(rig, tmp_path, "dormant", "value")}
    assert after == {r["customer_id"] for r in before} - set(moved)


async def test_an_interrupted_export_resumes_to_the_same_result(rig: Rig, tmp_path: Path) -> None:
    """Stop an export after its first partition; --resume walks only the others and the
    file equals an uninterrupted export's. Catches a resume that re-walks or skips a
    partition, duplicates spooled rows, or moves the as-of time."""
    query = MembersQuery("rfm8", "dormant", "recency", None, "csv")
    quiet = io.StringIO()
    whole = tmp_path / "whole.csv"
    await export_members(rig.settings, query, whole, T, progress=quiet)

    class Stop(Exception):
        pass

    def stop(_: int) -> None:
        raise Stop

    out = tmp_path / "dormant.csv"
    with pytest.raises(Stop):
        await export_members(rig.settings, query, out, T, after_partition=stop, progress=quiet)
    assert not out.exists() and out.with_name("dormant.csv.spool.checkpoint").exists()
    walked: list[int] = []
    await export_members(
        rig.settings, query, out, T + 86_400_000, True, walked.append, progress=quiet
    )
    assert walked == [1, 2]
    assert out.read_bytes() == whole.read_bytes() and len(whole.read_bytes().splitlines()) > 3
    left = sorted(p.name for p in tmp_path.iterdir())  # noqa: ASYNC240
    assert left == ["dormant.csv", "whole.csv"]  # spool and checkpoint removed


async def test_http_refusals_name_the_parameter(rig: Rig, http: str) -> None:
    """Catches an unknown segment answered 200 (empty), a bad sort or limit not named, a
    forged cursor or one of another segment taken, and an expired snapshot's cursor
    answered anything but 410 naming the cursor."""
    async with aiohttp.ClientSession(http) as client:

        async def call(method: str, path: str, **params: str) -> tuple[int, dict]:
            async with client.request(method, path, params=params) as r:
                return r.status, await r.json()

        assert (await call("POST", "/segments/rfm8/nosuch/members"))[0] == 404
        assert (await call("POST", "/segments/nope/dormant/members"))[0] == 404
        status, body = await call("POST", "/segments/rfm8/dormant/members", sort="clv")
        assert (status, body["parameter"]) == (400, "sort")
        status, snap = await call("POST", "/segments/rfm8/dormant/members")
        assert status == 201
        status, again = await call("POST", "/segments/rfm8/dormant/members")
        assert status == 200 and again["snapshot"] == snap["snapshot"]  # fresh: reused
        first = snap["first"]
        for params, name in (
            ({"cursor": first, "limit": "0"}, "limit"),
            ({"cursor": "garbage"}, "cursor"),
            ({}, "cursor"),
        ):
            status, body = await call("GET", "/segments/rfm8/dormant/members", **params)
            assert (status, body["parameter"]) == (400, name), body
        status, body = await call("GET", "/segments/rfm8/new/members", cursor=first)
        assert (status, body["parameter"]) == (400, "cursor")
        await (await rig.store.connect()).delete(Snapshots(rig.store, 1, int).key(snap["snapshot"]))
        status, body = await call("GET", "/segments/rfm8/dormant/members", cursor=first)
        assert (status, body["parameter"]) == (410, "cursor"), body


def _cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "--redis-url", redis_url)


async def test_the_cli_lists_to_stdout_and_refuses_in_one_line(
    rig: Rig, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the real command: CSV on stdout with a header, a progress line and the
    count on stderr. An unknown namespace, scheme or segment: one line naming it, exit 2.
    Catches a refusal with a traceback or one that doesn't say what is unknown."""
    ns = ("--namespace", rig.settings.namespace, "--rules", rig.settings.rules)
    args = ("members", "--scheme", "rfm8", "--segment", "dormant", "--limit", "2", *ns)
    proc = await asyncio.to_thread(_cli, redis_url, *args)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("customer_id,segment,label,") and len(lines) == 3
    assert "60/60 customers" in proc.stderr and "2 members of rfm8/dormant" in proc.stderr

    base = ["members", "--redis-url", redis_url, *ns]
    for extra, needle in (
        (["--scheme", "rfm9", "--segment", "dormant"], "unknown scheme 'rfm9'"),
        (["--scheme", "rfm8", "--segment", "sleepy"], "unknown segment 'sleepy'"),
        (["--scheme", "rfm8", "--segment", "dormant", "--namespace", "nosuch1"], "'nosuch1'"),
    ):
        capsys.readouterr()
        assert await asyncio.to_thread(main, [*base, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("rfm-stream: ") and needle in err[0], err


async def test_export_and_snapshots_need_no_more_than_the_documented_acl(
    rig: Rig, tmp_path: Path
) -> None:
    """The worker's documented ACL user (README, Security) exports and takes and pages
    snapshots. Catches a command the ACL refuses (e.g. PEXPIRE instead of PEXPIREAT):
    the API would fail in every deployment that follows the README."""
    admin = await rig.store.connect()
    user, password = f"members-{rig.settings.namespace}", "members-pw"
    await admin.execute_command(
        "ACL", "SETUSER", user, "reset", "on", f">{password}", *WORKER_ACL.split()
    )
    try:
        url = rig.settings.redis_url.get_secret_value().replace(
            "redis://", f"redis://{user}:{password}@"
        )
        settings = rig.settings.model_copy(update={"redis_url": SecretStr(url)})
        query = MembersQuery("rfm8", "dormant", "spend", None, "jsonl")
        out = tmp_path / "acl.jsonl"
        assert await export_members(settings, query, out, T, progress=io.StringIO()) > 0
        expected = [orjson.loads(line)["customer_id"] for line in out.read_bytes().splitlines()]
        store = RedisStore.from_url(url, settings.key_prefix, settings.namespace)
        try:
            members = Members(settings, store, lambda: rig.processor.engine, lambda: T)
            snap, made = await members.snapshot("rfm8", "dormant", "spend")
            page = await members.page("rfm8", "dormant", snap["first"], "1000")
        finally:
            await store.close()
        assert made and [r["customer_id"] for r in page["members"]] == expected
    finally:
        await admin.execute_command("ACL", "DELUSER", user)


async def test_a_fresh_listing_does_not_wait_behind_another_walk(rig: Rig) -> None:
    """A POST for a listing with a fresh snapshot answers at once, even while another
    listing's walk holds the walk lock (a million customers: minutes), and a snapshot
    lives at most 15 minutes in the workers' noeviction Redis (reviewer's finding: every
    POST queued behind any walk, and an hour's TTL let 12 copies of a listing pile up)."""
    members = Members(rig.settings, rig.store, lambda: rig.processor.engine, lambda: T)
    first, made = await members.snapshot("rfm8", "dormant", "spend")
    assert made
    async with members._walking:  # another listing's walk in progress
        again, made = await asyncio.wait_for(members.snapshot("rfm8", "dormant", "spend"), 5)
    assert not made and again["snapshot"] == first["snapshot"]
    meta = await members.snapshots.meta(first["snapshot"])
    assert meta is not None
    client = await rig.store.connect()
    left_ms = await client.pttl(members.snapshots.key(first["snapshot"]))
    assert 0 < left_ms <= 15 * 60_000
