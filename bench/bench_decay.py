"""Decay timer pass: its cost must follow the number of *due* customers, not all customers.

Issue requirement: with 1,000,000 customers in Redis of which 10,000 are due, one
timer pass costs about the same as with 20,000 customers of which 10,000 are due.

    python -m bench.bench_decay [--big 1000000] [--small 20000] [--due 10000] [--repeats 3]

Starts its own redis-server (stream.demo.embedded.start_redis, never the machine's 6379),
loads customer states with the real RedisStore (claim + chunked commits, spread over
``--partitions`` like production), then times one full pass of the real
``Processor.run_due`` over every partition with a ManualClock at "now". Every pass is
checked: transitions == due, outbox length == due, nothing left due in the schedule.
The data is reloaded (FLUSHALL + load) before every pass, so each pass has exactly
``--due`` due customers. Big and small passes alternate to spread machine noise.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import redis
from redis.utils import HIREDIS_AVAILABLE

from bench.report import cpu_model, write_section
from schemas.rules import RulesFile, load_rules
from schemas.settings import Settings, load_settings
from schemas.times import to_ms
from segments.engine import Engine
from segments.model import NEVER, Columns, CustomerState
from segments.rules import build_engine
from state.store import RedisStore
from stream.apply.clock import ManualClock
from stream.apply.processor import Processor
from stream.demo.embedded import start_redis

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Decay timer pass: cost proportional to due customers, not to all customers"
NOW_MS = to_ms(datetime(2026, 1, 1, tzinfo=UTC))
DAY_MS = 86_400_000
PREFIX = "rfm"


class _NoOutputs:
    """The timer never dead-letters or forwards here; outputs that fail loudly if it did."""

    async def dead_letter(self, letters: Sequence[tuple[bytes | None, bytes]]) -> None:
        if letters:
            raise AssertionError(f"decay pass dead-lettered {len(letters)} messages")

    async def forward(self, msgs: Sequence[tuple[int, bytes | None, bytes | None]]) -> None:
        if msgs:
            raise AssertionError(f"decay pass forwarded {len(msgs)} messages")


@dataclass
class Run:
    """Measurements of one dataset size over all repeats."""

    customers: int
    due: int
    load_s: list[float] = field(default_factory=list)
    pass_s: list[float] = field(default_factory=list)
    used_memory: list[int] = field(default_factory=list)
    redis_s: list[float] = field(default_factory=list)  # server time of the pass's commands
    zrange_s: list[float] = field(default_factory=list)  # of which ZRANGEBYSCORE

    @property
    def pass_median(self) -> float:
        return statistics.median(self.pass_s)

    @property
    def load_median(self) -> float:
        return statistics.median(self.load_s)


# ---------------------------------------------------------------------- data
def _states(
    ids: np.ndarray, due_mask: np.ndarray, rng: np.random.Generator, engine: Engine, recency: int
) -> list[CustomerState]:
    """Customers ``ids`` with their segments set at their cursor (= last purchase).

    Due ones bought between ``recency`` and ``recency + 30d`` ago (their R edge is
    at or before now); the others bought within ``recency - 10d`` (edge >= now + 10d).
    """
    n = ids.size
    back_due = recency + rng.integers(0, 30 * DAY_MS, n)
    back_fresh = rng.integers(0, recency - 10 * DAY_MS, n)
    last = NOW_MS - np.where(due_mask, back_due, back_fresh)
    first = last - rng.integers(0, 365 * DAY_MS, n)
    freq = rng.integers(1, 6, n)
    first = np.where(freq == 1, last, first)
    monetary = rng.integers(10, 3000, n) * 10_000 * freq
    cols = Columns(last_ms=last, frequency=freq, monetary=monetary)
    segs = {s.name: s.classify(cols, last).tolist() for s in engine.schemes}
    names = list(segs)
    return [
        CustomerState(
            customer_id=f"c{cid:07d}",
            frequency=f,
            monetary=m,
            first_ms=fs,
            last_ms=ls,
            cursor_ms=ls,
            segments={name: segs[name][i] for name in names},
        )
        for i, (cid, f, m, fs, ls) in enumerate(
            zip(
                ids.tolist(),
                freq.tolist(),
                monetary.tolist(),
                first.tolist(),
                last.tolist(),
                strict=True,
            )
        )
    ]


async def load(
    store: RedisStore,
    engine: Engine,
    settings: Settings,
    customers: int,
    due: int,
    partitions: int,
    chunk: int,
    seed: int,
) -> float:
    """Write ``customers`` states (``due`` of them due at NOW_MS); returns seconds taken."""
    rng = np.random.default_rng(seed)
    due_mask_all = np.zeros(customers, dtype=bool)
    due_mask_all[rng.choice(customers, due, replace=False)] = True
    t0 = time.perf_counter()
    for p in range(partitions):
        claim = await store.claim(p)
        version = 0
        ids = np.arange(p, customers, partitions)
        for lo in range(0, ids.size, chunk):
            part = ids[lo : lo + chunk]
            states = _states(part, due_mask_all[part], rng, engine, settings.recency)
            due_at = engine.next_due(states)
            if (due_at == NEVER).any():
                raise AssertionError("every loaded customer must be scheduled")
            schedule = dict(zip((s.customer_id for s in states), due_at.tolist(), strict=True))
            version = await store.commit(p, claim.epoch, version, states, schedule, [])
    elapsed = time.perf_counter() - t0
    now_due = sum([await store.tallies.due_count(p, NOW_MS) for p in range(partitions)])
    sizes = [await store.tallies.schedule_size(p) for p in range(partitions)]
    if now_due != due or sum(sizes) != customers:
        raise AssertionError(
            f"loaded {sum(sizes)} scheduled / {now_due} due, wanted {customers} / {due}"
        )
    return elapsed


# ---------------------------------------------------------------------- pass
async def timer_pass(
    store: RedisStore, engine: Engine, settings: Settings, customers: int, due: int, partitions: int
) -> tuple[float, tuple[float, float]]:
    """One full timer pass over every partition; returns wall seconds. Verifies the result."""
    clock = ManualClock(NOW_MS)
    processor = Processor(settings, store, engine, _NoOutputs(), clock=clock, wall=clock)
    await processor.assign(range(partitions))
    gc.collect()
    await store.client.config_resetstat()
    t0 = time.perf_counter()
    handled = 0
    for p in range(partitions):
        handled += await processor.run_due(p)
    elapsed = time.perf_counter() - t0
    server = await redis_time(store)

    outbox = sum([await store.outbox_size(p) for p in range(partitions)])
    left_due = [await store.due(p, NOW_MS, 1) for p in range(partitions)]
    scheduled = sum([await store.tallies.schedule_size(p) for p in range(partitions)])
    problems = []
    if handled != due:
        problems.append(f"run_due handled {handled}")
    if processor.stats.decays != due:
        problems.append(f"stats.decays is {processor.stats.decays}")
    if outbox != due:
        problems.append(f"outbox holds {outbox}")
    if any(left_due):
        problems.append(f"schedule still has entries <= now: {left_due}")
    # the only edge is R: a decayed customer has nothing more due and leaves the schedule
    if scheduled != customers - due:
        problems.append(f"schedule holds {scheduled}, expected {customers - due}")
    if processor.stats.conflicts or processor.stats.fenced_batches:
        problems.append(f"conflicts/fenced: {processor.stats}")
    if problems:
        raise AssertionError(f"{customers} customers, {due} due: " + "; ".join(problems))
    return elapsed, server


async def redis_time(store: RedisStore) -> tuple[float, float]:
    """Server-side seconds since CONFIG RESETSTAT: (top-level commands, ZRANGEBYSCORE).

    Commands run inside a script are counted both on their own and in EVALSHA, so only
    the commands the client sent (EVALSHA/EVAL/ZRANGEBYSCORE/SCRIPT) are summed.
    """
    stats = await store.client.info("commandstats")
    usec = {k.removeprefix("cmdstat_"): v["usec"] for k, v in stats.items()}
    top = sum(usec.get(c, 0) for c in ("evalsha", "eval", "zrangebyscore", "script|load"))
    return top / 1e6, usec.get("zrangebyscore", 0) / 1e6


async def used_memory(store: RedisStore) -> int:
    info = await store.client.info("memory")
    return int(info["used_memory"])


async def bench(args: argparse.Namespace) -> tuple[list[Run], str]:
    settings = load_settings(
        recency="90d", decay_batch=args.decay_batch, partitions=args.partitions
    )
    # the rfm8 grid alone: its one 90-day edge is what the load's due times are built on
    rfm8 = RulesFile(schemes={"rfm8": load_rules(None).schemes["rfm8"]})
    engine = build_engine(settings, rfm8)
    server = start_redis()
    try:
        url = f"redis://127.0.0.1:{server.port}/0"
        probe = RedisStore.from_url(url, PREFIX, "probe")
        redis_version = (await probe.client.info("server"))["redis_version"]
        await probe.close()
        # untimed warm-up: script loading (NOSCRIPT -> SCRIPT LOAD), numpy and import costs
        warm = RedisStore.from_url(url, PREFIX, "warmup")
        await warm.client.flushall()
        await load(warm, engine, settings, args.small, args.due, args.partitions, args.chunk, 99)
        await timer_pass(warm, engine, settings, args.small, args.due, args.partitions)
        await warm.close()
        runs = {n: Run(n, args.due) for n in (args.small, args.big)}
        for r in range(args.repeats):
            order = [args.small, args.big] if r % 2 == 0 else [args.big, args.small]
            for n in order:
                run = runs[n]
                # a fresh namespace per pass, and an empty server so used_memory is this dataset's
                store = RedisStore.from_url(url, PREFIX, f"n{n}r{r}")
                await store.client.flushall()
                load_s = await load(
                    store, engine, settings, n, args.due, args.partitions, args.chunk, seed=r
                )
                mem = await used_memory(store)
                pass_s, (redis_s, zrange_s) = await timer_pass(
                    store, engine, settings, n, args.due, args.partitions
                )
                await store.close()
                run.load_s.append(load_s)
                run.pass_s.append(pass_s)
                run.redis_s.append(redis_s)
                run.zrange_s.append(zrange_s)
                run.used_memory.append(mem)
                print(
                    f"repeat {r + 1}/{args.repeats}: {n:>9,} customers loaded in {load_s:6.1f} s "
                    f"({n / load_s:,.0f}/s), used_memory {mem / 2**20:,.1f} MiB; "
                    f"pass over {args.due:,} due: {pass_s * 1000:7.1f} ms "
                    f"(Redis {redis_s * 1000:.1f} ms, ZRANGEBYSCORE {zrange_s * 1000:.2f} ms)",
                    flush=True,
                )
        return [runs[args.big], runs[args.small]], redis_version
    finally:
        server.stop()


# ---------------------------------------------------------------------- report
def report(args: argparse.Namespace, runs: list[Run], redis_version: str, command: str) -> str:
    big, small = runs
    ratio = big.pass_median / small.pass_median
    med = statistics.median
    redis_ratio = med(big.redis_s) / med(small.redis_s)
    zrange_ratio = med(big.zrange_s) / med(small.zrange_s)
    rows = [
        "| customers | due | load (median) | pass time median (min–max) | per due customer "
        "| of which Redis server time (ZRANGEBYSCORE) | Redis used_memory |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        mem = med(run.used_memory)
        rows.append(
            f"| {run.customers:,} | {run.due:,} "
            f"| {run.load_median:.1f} s ({run.customers / run.load_median:,.0f}/s) "
            f"| {run.pass_median * 1000:.1f} ms "
            f"({min(run.pass_s) * 1000:.1f}–{max(run.pass_s) * 1000:.1f}) "
            f"| {run.pass_median / run.due * 1e6:.1f} µs "
            f"| {med(run.redis_s) * 1000:.1f} ms ({med(run.zrange_s) * 1000:.2f} ms) "
            f"| {mem / 2**20:,.1f} MiB ({mem / run.customers:,.0f} B/customer) |"
        )
    table = "\n".join(rows)
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    return f"""{SECTION}

Command (run from the repo root, {when}):

```
{command}
```

Machine: {os.cpu_count()} cores ({cpu_model()}), shared and noisy. Python
{platform.python_version()}, redis-py {redis.__version__} (hiredis reply parser:
{"yes" if HIREDIS_AVAILABLE else "no, pure-Python RESP parsing"}), redis-server
{redis_version} started by the benchmark on a free port.

- {args.partitions} partitions, `decay_batch={args.decay_batch}`, recency 90d; states
  loaded with the real `RedisStore.commit`, {args.chunk:,} customers per call.
- Every pass reloads the data first (FLUSHALL, fresh namespace), so each has exactly
  {args.due:,} due customers; the others are due 10 to 90 days after "now".
- A pass is one `Processor.run_due(p)` per partition with a `ManualClock` at "now",
  timed as wall time (`time.perf_counter`); {args.repeats} repeats, big and small
  alternating, after one untimed warm-up pass.
- Checked after every pass: `stats.decays` = outbox entries = {args.due:,}, and no
  schedule entry <= now is left.

{table}

**Ratio big/small (pass time medians): {ratio:.2f}** for {big.customers / small.customers:.0f}×
the customers (Redis server time alone: {redis_ratio:.2f}; ZRANGEBYSCORE alone:
{zrange_ratio:.2f}). Redis server time is the `usec` of the commands the client sent
(INFO commandstats, reset before each pass); the rest of the pass is the Python worker:
redis-py packing and parsing, the engine, and JSON encoding of the transitions.

Why: the timer never scans customers. Each partition keeps its schedule as small
sorted sets of customers bucketed by due time, indexed by a sorted set of the buckets'
lower bounds (`state/schedule.py`); a timer step runs one script that takes the
buckets whose bound is <= now and `ZRANGEBYSCORE bucket -inf now LIMIT` from each,
which is O(log N + due); then one script call loads exactly those customers' hashes and
one commit writes them back (moving each to its new bucket, O(log N), and the outbox
entries). So the work is
proportional to the {args.due:,} due customers; the {big.customers:,} − {small.customers:,}
others only cost memory and a few more skip-list levels. Any remaining difference comes
from Redis' bigger keyspace and skip list being colder in the CPU caches, and from noise.
"""


def main(argv: Sequence[str] | None = None, command: str | None = None) -> int:
    """``command``: what the report shows as the command (``python -m bench`` runs this)."""
    ap = argparse.ArgumentParser(prog="python -m bench.bench_decay", description=__doc__)
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=20_000)
    ap.add_argument("--due", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--chunk", type=int, default=10_000, help="customers per load commit")
    ap.add_argument("--decay-batch", type=int, default=2000)
    ap.add_argument(
        "--md", type=Path, default=ROOT / "BENCHMARKS.md", help="file whose decay section to write"
    )
    ap.add_argument("--no-md", action="store_true", help="print only, do not write --md")
    args = ap.parse_args(argv)
    if not 0 < args.due <= args.small < args.big:
        ap.error("need 0 < --due <= --small < --big")
    command = command or shlex.join(["python", "-m", "bench.bench_decay", *(argv or sys.argv[1:])])
    runs, redis_version = asyncio.run(bench(args))
    section = report(args, runs, redis_version, command)
    print()
    print(section)
    if not args.no_md:
        write_section(args.md, SECTION, section)
        print(f"wrote the decay section of {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
