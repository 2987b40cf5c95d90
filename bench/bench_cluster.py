"""Live workers on a Redis Cluster: 1, 2 and 3 workers vs one worker on one Redis.

    python -m bench.bench_cluster [--events 150000] [--customers 15000] [--partitions 24]
                                  [--repeats 2] [--seed 7]

Starts its own Tansu broker, one redis-server and a three-master Redis Cluster
(``stream.demo.embedded``: ``redis-server --cluster-enabled yes`` x3 joined by ``redis-cli
--cluster create``), all on free ports. Produces the seeded workload of
``bench.workload`` (time-ordered purchases and ~1.5 % refunds, keyed by customer_id)
once, then runs, on that same topic and each time in a fresh consumer group and a fresh
namespace (so every run applies every record):

- baseline: 1 ``rfm-stream worker`` process on the single redis-server;
- 1, 2 and 3 worker processes on the Redis Cluster (the same URL form: the worker finds
  out it is a cluster).

Each run is timed from the moment the consumer group has settled (every worker logged
its final ``claimed partitions``) until Redis's committed offsets cover every record;
records applied while the group was forming are left out of the rate. The cost per
event counts what every Redis node executed over the whole run (``INFO commandstats``,
summed over nodes, the benchmark's own progress polls removed) against every record
applied. The CPU used by each process group in the timed window, and the machine's busy
share, say what saturates. Repeats alternate the order of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr

from bench.cluster_report import SECTION, Results, report
from bench.cluster_runs import LiveRun, run_workers
from bench.report import write_section
from bench.workload import generate, produce
from schemas.settings import load_settings
from state.connection import connect
from state.keys import Keys
from stream.demo.embedded import start_redis, start_redis_cluster, start_tansu
from stream.kafka.clients import ensure_topics

ROOT = Path(__file__).resolve().parent.parent
PLAN = [("redis", 1), ("cluster", 1), ("cluster", 2), ("cluster", 3)]


async def partitions_per_master(url: str, partitions: int) -> list[int]:
    """How many of the topic's partitions (slots) each master holds, largest first."""
    client = await connect(url, decode_responses=True)
    try:
        keys = Keys("rfm", "any")
        owners = Counter(
            client.get_node_from_key(keys.meta(p)).name  # type: ignore[union-attr]  # a cluster client here
            for p in range(partitions)
        )
        return sorted(owners.values(), reverse=True)
    finally:
        await client.aclose()


async def bench(args: argparse.Namespace) -> Results:
    logdir = Path(tempfile.mkdtemp(prefix="rfm-bench-cluster-"))
    broker = start_tansu(log_path=logdir / "tansu.log")
    single = start_redis()
    cluster = start_redis_cluster(masters=3)
    try:
        suffix = uuid.uuid4().hex[:6]
        base = load_settings(
            kafka_bootstrap=broker.address,
            redis_url=f"redis://{single.address}/0",
            namespace=f"unused-{suffix}",
            group_id=f"unused-{suffix}",
            purchases_topic=f"purchases-{suffix}",
            transitions_topic=f"transitions-{suffix}",
            dlq_topic=f"dlq-{suffix}",
            partitions=args.partitions,
        )
        urls = {"redis": base.redis_url.get_secret_value(), "cluster": cluster.url}
        servers = {"redis": [single], "cluster": cluster.nodes}
        await ensure_topics(base)
        events = generate(args.events, args.customers, args.seed)
        t0 = time.perf_counter()
        parts = await produce(broker.address, base.purchases_topic, events)
        produce_s = time.perf_counter() - t0
        last: dict[int, int] = {}
        for p, offset in parts:
            last[p] = max(last.get(p, -1), offset)
        probe = await connect(urls["redis"], decode_responses=True)
        redis_version = str((await probe.info("server"))["redis_version"])
        await probe.aclose()
        res = Results(
            redis_version=redis_version,
            events=len(events),
            customers=len({e["customer_id"] for e in events}),
            partitions=args.partitions,
            per_master=await partitions_per_master(cluster.url, args.partitions),
        )
        print(
            f"produced {len(events):,} events in {produce_s:.1f} s over {len(last)} partitions; "
            f"partitions per cluster master: {res.per_master}",
            flush=True,
        )
        del events, parts
        gc.collect()
        res.load.append(os.getloadavg())
        for r in range(args.repeats):
            for kind, n in PLAN if r % 2 == 0 else list(reversed(PLAN)):
                settings = base.model_copy(update={"redis_url": SecretStr(urls[kind])})
                ns = f"{kind[0]}{n}r{r}-{suffix}"
                run: LiveRun = await run_workers(
                    settings, kind, servers[kind], broker, n, ns, last, logdir
                )
                res.runs.append(run)
                print(
                    f"{kind:7} x{n}: {run.events:,} events in {run.seconds:.2f} s "
                    f"({run.rate:,.0f}/s) after {run.settle_s:.1f} s to settle; "
                    f"{sum(run.commands.values()) / run.total:.2f} redis commands/event, "
                    f"machine busy {run.busy:.0%}",
                    flush=True,
                )
        res.load.append(os.getloadavg())
        shutil.rmtree(logdir, ignore_errors=True)
        return res
    except BaseException:
        print(f"benchmark failed; worker and broker logs kept in {logdir}", file=sys.stderr)
        raise
    finally:
        cluster.stop()
        single.stop()
        broker.stop()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_cluster", description=__doc__)
    ap.add_argument("--events", type=int, default=150_000)
    ap.add_argument("--customers", type=int, default=15_000)
    ap.add_argument("--partitions", type=int, default=24)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=2, help="runs of each configuration")
    ap.add_argument(
        "--md", type=Path, default=ROOT / "BENCHMARKS.md", help="file whose section to write"
    )
    ap.add_argument("--no-md", action="store_true", help="print only, do not write --md")
    args = ap.parse_args(argv)
    if not 0 < args.customers <= args.events:
        ap.error("need 0 < --customers <= --events")
    if args.repeats < 1 or args.partitions < 3:
        ap.error("need --repeats >= 1 and --partitions >= 3 (three workers)")
    command = shlex.join(["python", "-m", "bench.bench_cluster", *(argv or sys.argv[1:])])
    res = asyncio.run(bench(args))
    section = report(args, res, command)
    print()
    print(section)
    if not args.no_md:
        write_section(args.md, SECTION, section)
        print(f"wrote the cluster section of {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
