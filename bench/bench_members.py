"""Segment members export: customers/s of the walk and peak memory, at 100k+ customers.

    python -m bench --only members               (sizes in bench/__main__.py)
    python -m bench.bench_members --customers 100000

Starts its own redis-server and loads ``customers`` realistic states the way the memory
figure does (:func:`bench.bench_memory.templates`, cloned under new ids, written with the
real ``RedisStore.commit`` over 4 partitions). Then, for the largest and the smallest
non-empty segment of the first scheme, ``rfm-stream members ... --out FILE`` runs as a
child process (what a marketer runs): wall time, customers walked per second, and the
child's peak RSS (``ru_maxrss``). The difference between the two exports' peaks over the
difference of their members is the memory per member (the rest is the interpreter and
imports). Last, the API's snapshot of the largest segment (walk + sort + store in Redis):
its time and the snapshot's bytes in Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import csv
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.bench_memory import templates
from bench.report import section_head, write_section
from schemas.settings import load_settings
from segments.rules import build_engine
from state.layout import ensure_layout
from state.store import RedisStore
from stream.api.members import Members
from stream.demo.embedded import start_redis
from stream.report.export import ExportTarget, Spool

__all__ = ["SECTION", "main"]

SECTION = "## Segment members export"
ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 4
NAMESPACE = "members"


@dataclass
class Export:
    segment: str
    members: int
    seconds: float
    peak_rss: int  # bytes


@dataclass
class Results:
    customers: int
    scheme: str = ""
    load_s: float = 0.0
    exports: list[Export] = field(default_factory=list)
    sort_bytes: int = 0  # tracemalloc peak of Spool.order over the largest segment's rows
    snapshot_s: float = 0.0
    snapshot_bytes: int = 0
    load: list[tuple[float, float, float]] = field(default_factory=list)


async def _load(url: str, customers: int, n_templates: int, seed: int) -> dict[str, int]:
    """Write ``customers`` states; the first scheme's segment sizes."""
    settings = load_settings(partitions=PARTITIONS)
    store = RedisStore.from_url(url, settings.key_prefix, NAMESPACE)
    tpl = templates(n_templates, seed)
    scheme = build_engine(settings).schemes[0].name
    sizes: collections.Counter[str] = collections.Counter()
    try:
        await ensure_layout(store, settings.purchases_topic, PARTITIONS)
        for p in range(PARTITIONS):
            claim = await store.claim(p)
            version = 0
            ids = np.arange(p, customers, PARTITIONS)
            for lo in range(0, ids.size, 10_000):
                chunk = [
                    dataclasses.replace(tpl[i % len(tpl)], customer_id=f"c{i:07d}")
                    for i in ids[lo : lo + 10_000].tolist()
                ]
                sizes.update(s.segments.get(scheme, "none") for s in chunk)
                version = await store.commit(p, claim.epoch, version, chunk, {}, [])
    finally:
        await store.close()
    return dict(sizes)


def _export(url: str, scheme: str, segment: str, out: Path) -> Export:
    """``rfm-stream members`` as a child process: its time and its own peak RSS."""
    args = ["members", "--scheme", scheme, "--segment", segment, "--format", "csv"]
    args += ["--out", str(out), "--redis-url", url, "--namespace", NAMESPACE]
    log = out.with_suffix(".log")
    t0 = time.perf_counter()
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", *args], stdout=err, stderr=err, cwd=ROOT
        )
        _, status, usage = os.wait4(proc.pid, 0)  # this child's rusage, nobody else's
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"members export failed: {log.read_text()[-2000:]}")
    members = len(out.read_bytes().splitlines()) - 1
    return Export(segment, members, seconds, usage.ru_maxrss * 1024)


def _sort_bytes(csv_file: Path, tmp: Path) -> int:
    """Peak bytes Python allocates to order the export's rows (:meth:`Spool.order`): the
    per-member memory of the sort, which the RSS peak of a small base can't resolve."""
    with csv_file.open(newline="") as f:
        rows = [dict(r) for r in csv.DictReader(f)]
    for r in rows:
        r["clv"] = r["clv"] or None
    spool = Spool(tmp / "sort.spool", ExportTarget(NAMESPACE, 1, "bench", "bench"))
    spool.start(0, resume=False)
    spool.add(0, rows)
    del rows
    tracemalloc.start()
    try:
        spool.order("value")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        spool.remove()


async def _snapshot(url: str, scheme: str, segment: str) -> tuple[float, int]:
    settings = load_settings(partitions=PARTITIONS)
    store = RedisStore.from_url(url, settings.key_prefix, NAMESPACE)
    engine = build_engine(settings)
    try:
        members = Members(settings, store, lambda: engine, lambda: int(time.time() * 1000))
        t0 = time.perf_counter()
        body, _ = await members.snapshot(scheme, segment, "value")
        seconds = time.perf_counter() - t0
        size = await store.client.memory_usage(members.snapshots.key(body["snapshot"]), samples=0)
        return seconds, int(size or 0)
    finally:
        await store.close()


def bench(customers: int, n_templates: int, seed: int) -> Results:
    res = Results(customers)
    res.load.append(os.getloadavg())
    server = start_redis()
    try:
        url = f"redis://{server.address}/0"
        t0 = time.perf_counter()
        sizes = asyncio.run(_load(url, customers, n_templates, seed))
        res.load_s = time.perf_counter() - t0
        res.scheme = build_engine(load_settings()).schemes[0].name
        ranked = sorted(((n, s) for s, n in sizes.items() if s != "none"), reverse=True)
        smallest, largest = ranked[-1][1], ranked[0][1]
        with tempfile.TemporaryDirectory(prefix="rfm-bench-members-") as tmp:
            for segment in (smallest, largest):
                out = Path(tmp) / f"{segment}.csv"
                res.exports.append(_export(url, res.scheme, segment, out))
            res.sort_bytes = _sort_bytes(Path(tmp) / f"{largest}.csv", Path(tmp))
        res.snapshot_s, res.snapshot_bytes = asyncio.run(_snapshot(url, res.scheme, largest))
        res.load.append(os.getloadavg())
        return res
    finally:
        server.stop()


def report(res: Results, command: str) -> str:
    small, big = res.exports
    per_member = (big.peak_rss - small.peak_rss) / max(big.members - small.members, 1)
    why = (
        " (the sort stayed under the walk's own peak: the interpreter, imports and a chunk of "
        "1,000 decoded states, the same whatever the segment)"
        if per_member < 1
        else ""
    )
    rows = "\n".join(
        f"| {e.segment} | {e.members:,} | {e.seconds:.1f} s | {res.customers / e.seconds:,.0f} "
        f"| {e.peak_rss / 2**20:,.0f} MiB |"
        for e in res.exports
    )
    return f"""{section_head(SECTION, command, res.load)}
`rfm-stream members --scheme {res.scheme} --segment G --out FILE` over {res.customers:,}
customers (4 partitions; states cloned from the seeded workload as in the memory figure,
loaded in {res.load_s:.0f} s). The export walks every customer (SCAN + one load per 1,000,
per partition), keeps the segment's members, spools each finished partition to disk
(the resume checkpoint), sorts the spool and writes the CSV; a child process each, so its
peak RSS is its own.

| segment | members | wall time | customers walked/s | peak RSS |
|---|---|---|---|---|
{rows}

- **Walk**: the time is dominated by reading every customer, whatever the segment's size:
  about {res.customers / big.seconds * 1e-3:,.0f}k customers/s here, so a million-customer
  base takes about {1e6 / (res.customers / big.seconds):,.0f} s.
- **Memory**: the exports peak at {small.peak_rss / 2**20:,.0f} and {big.peak_rss / 2**20:,.0f}
  MiB; the difference over their {big.members - small.members:,} more members is {per_member:,.0f}
  B each{why}. The sort's own structure (a key, the
  customer id and a spool offset per member; the rows stay in the spool on disk), measured
  with tracemalloc over the {big.members:,} rows: {res.sort_bytes / max(big.members, 1):,.0f} B
  per member, so about {res.sort_bytes / max(big.members, 1) * 1e6 / 2**20:,.0f} MiB per million
  members on top of that peak.
- **HTTP snapshot** of the largest segment (walk, sort, store in Redis, in the API's
  process): {res.snapshot_s:.1f} s; the snapshot takes {res.snapshot_bytes / 2**20:,.1f} MiB of
  Redis ({res.snapshot_bytes / max(big.members, 1):,.0f} B per member) until it expires
  (an hour). No index is kept: a customer's committed state costs nothing more.
"""


def main(argv: Sequence[str] | None = None, command: str | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_members", description=__doc__)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--templates", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--md", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--no-md", action="store_true", help="print only, do not write --md")
    args = ap.parse_args(argv)
    res = bench(args.customers, args.templates, args.seed)
    cmd = command or f"python -m bench.bench_members --customers {args.customers}"
    section = report(res, cmd)
    print(section)
    if not args.no_md:
        write_section(args.md, SECTION, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
