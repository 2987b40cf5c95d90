"""Backfill from files: good rows applied, bad rows reported next to the input, resumable."""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.support.harness import ROOT, T0, Cluster, expected, minutes, purchase

pytestmark = pytest.mark.integration


def rows(n: int) -> list[dict]:
    return [
        purchase(f"f{i % 17:02d}", i, T0 + minutes(i * 90), f"{10 + i % 50}.5") for i in range(n)
    ]


def run(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", "backfill", "--no-progress", *args],
        env={**os.environ, **cluster.env(), "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def states(cluster: Cluster, ns: str) -> dict:
    store = cluster.store(namespace=ns)
    try:
        return {
            s.customer_id: (s.frequency, s.monetary, s.first_ms, s.last_ms, dict(s.segments))
            for s in await store.scans.scan_states()
        }
    finally:
        await store.close()


async def test_csv_and_jsonl_with_bad_rows(cluster: Cluster, tmp_path: Path) -> None:
    settings = await cluster.ensure_topics()
    good = rows(300)
    csv_path = tmp_path / "history.csv"
    fields = ["event_id", "customer_id", "order_id", "occurred_at", "amount", "currency"]
    n_bad = 0
    with csv_path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for i, ev in enumerate(good[:150]):
            w.writerow(ev)
            if i % 40 == 7:  # a sprinkling of bad rows
                w.writerow({**ev, "event_id": f"bad{i}", "amount": "-1"})
                n_bad += 1
    jsonl = tmp_path / "more.jsonl"
    with jsonl.open("wb") as fh:
        for i, ev in enumerate(good[150:]):
            fh.write(orjson.dumps(ev) + b"\n")
            if i % 50 == 3:
                fh.write(b"{not json\n")
                fh.write(orjson.dumps({**ev, "event_id": f"x{i}", "occurred_at": "soon"}) + b"\n")

    ns = f"f{cluster.suffix}"
    done = await asyncio.to_thread(
        run, cluster, "--into", ns, "--file", str(csv_path), "--file", str(jsonl)
    )
    assert done.returncode == 0, done.stderr
    assert "imported" in done.stdout and "rejected rows with reasons" in done.stdout

    want, _ = expected(good, settings)
    want_states = {
        c: (s.frequency, s.monetary, s.first_ms, s.last_ms, dict(s.segments))
        for c, s in want.items()
    }
    assert await states(cluster, ns) == want_states

    rejected_csv = [
        orjson.loads(x) for x in (tmp_path / "history.csv.rejected.jsonl").read_text().splitlines()
    ]
    assert [r["error_class"] for r in rejected_csv] == ["InvalidAmount"] * n_bad
    assert all(r["line"] > 1 and "-1" in r["row"] for r in rejected_csv)
    rejected_jsonl = [
        orjson.loads(x) for x in (tmp_path / "more.jsonl.rejected.jsonl").read_text().splitlines()
    ]
    assert sorted({r["error_class"] for r in rejected_jsonl}) == [
        "InvalidTimestamp",
        "MalformedJSON",
    ]

    # run again: every line is already applied; nothing doubles
    again = await asyncio.to_thread(
        run, cluster, "--into", ns, "--file", str(csv_path), "--file", str(jsonl)
    )
    assert again.returncode == 0, again.stderr
    assert await states(cluster, ns) == want_states


async def test_missing_file_is_one_line(cluster: Cluster, tmp_path: Path) -> None:
    await cluster.ensure_topics()
    done = await asyncio.to_thread(run, cluster, "--into", "x1", "--file", str(tmp_path / "no.csv"))
    assert done.returncode == 2
    assert done.stderr.strip().endswith("does not exist") and "Traceback" not in done.stderr
