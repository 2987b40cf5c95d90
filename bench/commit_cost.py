"""Cost of ``RedisStore.commit`` per customer: wall time and Redis script time.

    python -m bench.commit_cost [--customers 100000] [--label new]

Why: issue #8 moved work into the commit script (the bucketed schedule, ``state.schedule``)
and changed what it writes (the one-field hash, ``state.codec``). To compare with an
older tree, run the same module from a checkout of it, e.g. ``git archive <commit> | tar
-x -C /tmp/old`` and ``PYTHONPATH=/tmp/old python -m bench.commit_cost --label old``
with this file copied there (it uses only APIs both have).

Starts its own redis-server; the memory figure's templates (``bench.bench_memory``) are
cloned under ``customers`` ids over 4 partitions and committed twice, 10,000 per call:
the first round creates every customer and schedule entry, the second rewrites every
hash and moves every entry. Redis script time is INFO commandstats' EVALSHA + EVAL usec.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time

import numpy as np

from bench.bench_memory import templates
from bench.workload import END
from schemas.settings import load_settings
from segments.model import NEVER
from segments.rules import build_engine
from state.store import RedisStore
from stream.demo.embedded import start_redis

__all__ = ["measure"]


async def measure(customers: int, partitions: int = 4) -> tuple[float, float]:
    """(wall µs, Redis script µs) per customer commit."""
    server = start_redis()
    try:
        store = RedisStore.from_url(f"redis://{server.address}/0", "rfm", "cost")
        engine = build_engine(load_settings(partitions=partitions))
        tpl = templates(3000, 7)
        await store.client.config_resetstat()
        wall = 0.0
        for rnd in range(2):
            for p in range(partitions):
                claim = await store.claim(p)
                version = (await store.load(p, [])).version
                ids = np.arange(p, customers, partitions).tolist()
                for lo in range(0, len(ids), 10_000):
                    chunk = [
                        dataclasses.replace(tpl[(i + 7 * rnd) % len(tpl)], customer_id=f"c{i:07d}")
                        for i in ids[lo : lo + 10_000]
                    ]
                    due = engine.next_due(chunk)
                    due = np.where(due == NEVER, int(END.timestamp() * 1000), due)
                    schedule = dict(zip((s.customer_id for s in chunk), due.tolist(), strict=True))
                    t0 = time.perf_counter()
                    version = await store.commit(p, claim.epoch, version, chunk, schedule, [])
                    wall += time.perf_counter() - t0
        stats = await store.client.info("commandstats")
        usec = sum(stats.get(f"cmdstat_{c}", {}).get("usec", 0) for c in ("evalsha", "eval"))
        await store.close()
        return wall / (2 * customers) * 1e6, usec / (2 * customers)
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--label", default="this tree")
    args = ap.parse_args()
    wall, script = asyncio.run(measure(args.customers))
    print(f"{args.label}: wall {wall:.1f} µs, Redis script {script:.1f} µs per customer commit")


if __name__ == "__main__":
    main()
