"""Backfill vs live worker vs baselines, on one topic, in one run.

    python -m bench.bench_backfill [--events 200000] [--customers 20000] [--partitions 4]
                                   [--seed 7]

Starts its own Tansu broker and redis-server on free ports (stream.demo.embedded, never the
machine's 6379), creates the topics and produces a seeded, time-ordered workload: customers
with lognormal purchase rates and basket sizes over ~1.5 years of event time, about 1.5 %
refunds of an earlier order of the same customer (amount <= that order), JSON events keyed
by customer_id in the format of ``tests.support.harness.purchase``.

Then, all on that same topic and in the same run:

a. plain aiokafka: every partition from the beginning with a group-less AIOKafkaConsumer
   and ``orjson.loads`` of each value (the ceiling for anything that reads the topic);
   run before and after the others, the faster run is the baseline;
b. live worker: a real ``rfm-stream worker`` subprocess (faust), timed from the first
   offset it commits to Redis (group join excluded) until Redis's committed offsets cover
   every produced record;
c. backfill: ``await backfill_topic(...)`` called in this process (the headline number;
   with its default ``jobs`` it reads the partitions in child processes, one per CPU),
   the same with ``jobs=1`` (all in one process, like the baseline), and the
   ``rfm-stream backfill`` CLI as a subprocess (wall time, interpreter start included);
d. pandas: the same final RFM summary from the events in memory (list of dicts ->
   DataFrame), DataFrame construction, column parsing and the groupby timed separately,
   and checked against what the backfill (and the live worker) left in Redis for a sample
   of customers.

Finally the backfill runs once more under cProfile (not timed, one process) for the
profile in the report. Every figure in the report is a ratio against the plain aiokafka baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.backfill_report import SECTION, Results, report
from bench.baselines import check_sample, pandas_summary, plain_aiokafka
from bench.procs import broker_and_redis, fresh_settings
from bench.report import write_section
from bench.runners import (
    BackfillRun,
    backfill_cli,
    backfill_in_process,
    live_worker,
    profile_backfill,
)
from bench.workload import generate, produce
from state.store import RedisStore
from stream.kafka.clients import ensure_topics

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = 500


# ---------------------------------------------------------------------- the run
def code_version() -> tuple[str, list[str], str]:
    """(HEAD commit, files of the measured code changed or added since, digest of those
    changes): what code the numbers belong to."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    scope = [
        "--",
        "schemas",
        "segments",
        "state",
        "stream",
        "tests/support/harness.py",
        "pyproject.toml",
    ]
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("diff", "HEAD", "--name-only", *scope).split()
    new = git("ls-files", "--others", "--exclude-standard", *scope).split()
    text = git("diff", "HEAD", *scope)
    for name in new:
        path = ROOT / name
        text += name + (path.read_text(errors="replace") if path.is_file() else "")
    return head, dirty + [f"{n} (new)" for n in new], hashlib.sha1(text.encode()).hexdigest()


async def bench(args: argparse.Namespace) -> Results:
    with broker_and_redis("backfill") as (logdir, broker, server):
        settings, suffix = fresh_settings(broker, server, "live", args.partitions)
        settings = settings.model_copy(update={"group_id": f"bench-{suffix}"})
        await ensure_topics(settings)
        probe = RedisStore.from_url(settings.redis_url.get_secret_value(), "rfm", "probe")
        redis_version = (await probe.client.info("server"))["redis_version"]
        await probe.close()

        t0 = time.perf_counter()
        events = generate(args.events, args.customers, args.seed)
        gen_s = time.perf_counter() - t0
        refunds = sum(1 for e in events if e.get("kind") == "refund")
        t0 = time.perf_counter()
        parts = await produce(broker.address, settings.purchases_topic, events)
        produce_s = time.perf_counter() - t0
        last: dict[int, int] = {}
        home: dict[str, int] = {}
        for ev, (p, offset) in zip(events, parts, strict=True):
            last[p] = max(last.get(p, -1), offset)
            if home.setdefault(ev["customer_id"], p) != p:
                raise AssertionError(f"customer {ev['customer_id']} on two partitions")
        print(
            f"generated {len(events):,} events ({refunds:,} refunds) for {len(home):,} customers "
            f"in {gen_s:.1f} s; produced in {produce_s:.1f} s ({len(events) / produce_s:,.0f}/s); "
            f"per partition {dict(sorted((p, o + 1) for p, o in last.items()))}",
            flush=True,
        )
        res = Results(len(events), refunds, len(home), args.partitions, produce_s)
        res.code.append(code_version())
        res.redis_version = redis_version
        total = len(events)
        # the event dicts would slow every collection in the timed runs: drop them now and
        # regenerate them (same seed) for pandas at the end
        del events, parts
        gc.collect()
        res.load.append(os.getloadavg())

        async def plain() -> None:
            took = await plain_aiokafka(broker.address, settings.purchases_topic, total, 10_000)
            res.plain_s.append(took)
            print(f"plain aiokafka: {total / took:,.0f} events/s", flush=True)

        async def backfill_with(jobs: int | None, runs: list[BackfillRun], tag: str) -> None:
            run = await backfill_in_process(settings, f"{tag}{len(runs)}-{suffix}", jobs)
            rep = run.report
            print(
                f"backfill (in process, {rep.jobs} process(es)): {rep.events:,} events in "
                f"{run.wall_s:.2f} s ({rep.events / run.wall_s:,.0f}/s), "
                f"{rep.transitions:,} transitions, {rep.dead_letters} dead letters",
                flush=True,
            )
            if rep.events != total or rep.dead_letters:
                raise AssertionError(f"backfill applied {rep.events}/{total}, {rep.dead_letters}")
            runs.append(run)

        async def backfill() -> None:  # its default jobs: the headline
            await backfill_with(None, res.backfills, "bf")

        async def backfill_one() -> None:
            await backfill_with(1, res.backfills_one, "bfone")

        async def live() -> None:
            ns = f"live{len(res.lives)}-{suffix}"
            run = await live_worker(settings, ns, last, logdir)
            print(
                f"live worker: {run.events:,} events in {run.seconds:.2f} s "
                f"({run.events / run.seconds:,.0f}/s) after {run.join_s:.1f} s to its first "
                "commit",
                flush=True,
            )
            res.lives.append(run)

        for r in range(args.repeats):  # alternate the order to spread the machine's noise
            steps = (
                [plain, backfill, backfill_one, live]
                if r % 2 == 0
                else [live, backfill_one, backfill, plain]
            )
            for step in steps:
                await step()

        res.cli = backfill_cli(settings, f"bfcli-{suffix}")
        print(f"backfill CLI: {res.cli.line} (wall {res.cli.wall_s:.2f} s)", flush=True)
        if res.cli.events != total:
            raise AssertionError(f"backfill CLI applied {res.cli.events}/{total}")
        res.load.append(os.getloadavg())

        res.profile, res.profile_s, n = await profile_backfill(settings, f"bfprof-{suffix}")
        print(f"backfill under cProfile: {n:,} events in {res.profile_s:.1f} s", flush=True)

        events = generate(args.events, args.customers, args.seed)
        for _ in range(args.repeats):
            run = pandas_summary(events)
            res.pandas_runs.append(run)
            print(
                f"pandas: construct {run.construct_s:.2f} s, parse {run.parse_s:.2f} s, "
                f"groupby {run.groupby_s:.2f} s",
                flush=True,
            )
        summary = res.pandas_runs[0].summary
        rng = np.random.default_rng(args.seed + 1)
        ids = sorted(home)
        sample = [ids[i] for i in rng.choice(len(ids), min(SAMPLE, len(ids)), replace=False)]
        namespaces = [f"bf{i}-{suffix}" for i in range(len(res.backfills))]
        namespaces += [f"bfone{i}-{suffix}" for i in range(len(res.backfills_one))]
        namespaces += [f"live{i}-{suffix}" for i in range(len(res.lives))]
        namespaces += [f"bfcli-{suffix}", f"bfprof-{suffix}"]
        for ns in namespaces:
            await check_sample(settings, ns, summary, home, sample)
        res.checked = len(sample)
        res.code.append(code_version())
        print(f"checked {len(sample)} customers in {namespaces}: equal to pandas")
        return res


def main(argv: Sequence[str] | None = None, command: str | None = None) -> int:
    """``command``: what the report shows as the command (``python -m bench`` runs this)."""
    ap = argparse.ArgumentParser(prog="python -m bench.bench_backfill", description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--repeats", type=int, default=2, help="runs of plain/backfill/live (best is reported)"
    )
    ap.add_argument(
        "--md", type=Path, default=ROOT / "BENCHMARKS.md", help="file whose section to write"
    )
    ap.add_argument("--no-md", action="store_true", help="print only, do not write --md")
    args = ap.parse_args(argv)
    if not 0 < args.customers <= args.events:
        ap.error("need 0 < --customers <= --events")
    if args.repeats < 1:
        ap.error("need --repeats >= 1")
    command = command or shlex.join(
        ["python", "-m", "bench.bench_backfill", *(argv or sys.argv[1:])]
    )
    res = asyncio.run(bench(args))
    section = report(args, res, command)
    print()
    print(section)
    if not args.no_md:
        write_section(args.md, SECTION, section)
        print(f"wrote the backfill section of {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
