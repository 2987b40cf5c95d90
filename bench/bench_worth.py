"""What keeping each segment's worth costs the apply path: with vs without, one run.

    flock /work/bench.lock .venv/bin/python -m bench.bench_worth [--events N --customers N]

A real :class:`~stream.apply.processor.Processor` on a private redis-server (no broker:
the broker side is unchanged by the worth sums, and leaving it out makes the apply
path's share visible), the shipped rules, the seeded bench workload in batches of 500
records. "Without" replaces the worth deltas with nothing (the commit then writes what
it wrote before issue #19); runs alternate in order, each on an emptied Redis, best of
each is reported, then the Redis
memory of the worth hashes at that size (they grow with buckets and segments, not with
customers: no per-customer state is added).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime
from unittest import mock

import orjson

from bench.workload import generate
from schemas.settings import load_settings
from segments.rules import build_engine
from state.keys import Keys
from state.store import RedisStore
from stream.apply import processor as processor_module
from stream.apply.clock import ManualClock
from stream.apply.messages import Msg
from stream.apply.processor import Processor
from stream.demo.embedded import start_redis

__all__ = ["main"]

BATCH = 500
END = datetime(2026, 6, 1, tzinfo=UTC)


class _Drop:
    """Outputs that keep nothing (the workload has no bad or misrouted records)."""

    async def dead_letter(self, letters: object) -> None:
        return None

    async def forward(self, msgs: object) -> None:
        return None


def _no_worth(before: object, states: object) -> dict[str, dict[str, int]]:
    """The apply path as before issue #19: no worth deltas to commit."""
    return {}


async def _run(url: str, payloads: list[bytes], worth: bool) -> tuple[float, RedisStore]:
    settings = load_settings(
        redis_url=url, namespace=f"b{uuid.uuid4().hex[:8]}", rules=None, decay_timer="false"
    )
    store = RedisStore.from_url(url, settings.key_prefix, settings.namespace)
    clock = ManualClock(int(END.timestamp() * 1000))
    proc = Processor(settings, store, build_engine(settings), _Drop(), clock, clock)
    await proc.assign([0])
    msgs = [Msg(0, i, None, v) for i, v in enumerate(payloads)]
    off = mock.patch.object(processor_module, "_worth_of", _no_worth)
    with contextlib.nullcontext() if worth else off:
        started = time.perf_counter()
        for i in range(0, len(msgs), BATCH):
            await proc.process_partition(0, msgs[i : i + BATCH])
        took = time.perf_counter() - started
    return took, store


async def _memory(store: RedisStore) -> tuple[int, int, int, int]:
    """(bytes, fields) of the worth hash and of the Pareto hash of partition 0."""
    c = await store.connect()
    tag = store.keys.tag(0)
    names = (f"{tag}:{Keys.WORTH}", f"{tag}:{Keys.PARETO}")
    w, wp = [int(await c.memory_usage(n) or 0) for n in names]
    nw, nwp = [int(await c.hlen(n)) for n in names]
    return w, nw, wp, nwp


async def _main(events: int, customers: int, repeats: int) -> None:
    payloads = [orjson.dumps(e) for e in generate(events, customers, seed=19, end=END)]
    redis = start_redis()
    try:
        url = f"redis://127.0.0.1:{redis.port}/0"
        best: dict[bool, float] = {}
        memory = (0, 0, 0, 0)
        for i in range(repeats):  # alternating order; every run on an emptied Redis
            for worth in (False, True) if i % 2 == 0 else (True, False):
                took, store = await _run(url, payloads, worth)
                best[worth] = min(best.get(worth, took), took)
                if worth:
                    memory = await _memory(store)
                await (await store.connect()).flushall()
                await store.close()
    finally:
        redis.stop()
    off, on = len(payloads) / best[False], len(payloads) / best[True]
    w, nw, wp, nwp = memory
    print(f"{len(payloads):,} records, {customers:,} customers, best of {repeats}:")
    print(f"  without worth sums: {off:,.0f} records/s")
    print(f"  with worth sums:    {on:,.0f} records/s  ({on / off:.3f}x)")
    print(f"  worth hash {w:,} B ({nw} fields), Pareto hash {wp:,} B ({nwp} fields)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=60_000)
    p.add_argument("--customers", type=int, default=6_000)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    asyncio.run(_main(a.events, a.customers, a.repeats))


if __name__ == "__main__":
    main()
