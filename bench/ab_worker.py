"""The live worker of two checkouts on one topic, alternating: did a change make it faster?

    python -m bench.ab_worker a51df55 HEAD                 (git revisions of this repo)
    python -m bench.ab_worker --rules default /path/a /path/b   (or checkouts)

Why a tool of its own: on this shared machine a figure of ``python -m bench`` moves by
20 % between runs and between machines (session 12's peers run on an AMD EPYC machine
against session 11's on an Intel Xeon one), so "no regression" or "n % faster" is only
evidence as an A/B in one run: one Tansu broker and one redis-server, one seeded topic
(``bench.workload``, as the peers figure), and a real ``rfm-stream worker`` of each
checkout over the whole topic into a fresh namespace (:func:`bench.bench_live.run_worker`:
from its first commit to the last offset, its outbox drained), A then B, then B then A.
It prints every run and, per round, B's events/s over A's: their spread is the noise.

A revision is checked out into a temporary ``git worktree`` (removed afterwards); a
directory is used as it is. Nothing is written to BENCHMARKS.md: a hand note cites the
command and its output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from statistics import median

from bench.bench_live import Rate, run_worker
from bench.peer_quix import RULES
from bench.procs import broker_and_redis, fresh_settings
from bench.report import div
from bench.runners import ROOT
from bench.workload import generate, produce
from stream.kafka.clients import ensure_topics

__all__ = ["RULE_SETS", "ab", "main"]

RULE_SETS = {"rfm8": str(RULES), "default": None, "all": "all"}
"""``--rules``: rfm8 alone (the peers figure's), the default rules, every shipped scheme."""


@contextlib.contextmanager
def checkouts(specs: list[str], into: Path) -> Iterator[list[Path]]:
    """Each spec as a directory: itself if it is one, else a worktree of that revision."""
    made: list[Path] = []
    roots = []
    try:
        for i, spec in enumerate(specs):
            if Path(spec).is_dir():
                roots.append(Path(spec).resolve())
                continue
            path = into / f"{i}-{spec.replace('/', '_')}"
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(path), spec],
                check=True,
            )
            made.append(path)
            roots.append(path)
        yield roots
    finally:
        for path in made:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False
            )


async def ab(
    roots: list[Path],
    rules: str,
    rounds: int,
    events_n: int,
    customers: int,
    batch: int | None = None,
) -> list[list[Rate]]:
    """Per root, its runs in run order (A, B, then B, A, ...)."""
    with broker_and_redis("ab") as (logdir, broker, server):
        settings, sfx = fresh_settings(broker, server, "ab", 4)
        await ensure_topics(settings)
        last: dict[int, int] = {}
        for p, o in await produce(
            broker.address, settings.purchases_topic, generate(events_n, customers, 7)
        ):
            last[p] = max(last.get(p, -1), o)
        env = {} if RULE_SETS[rules] is None else {"RFM_RULES": str(RULE_SETS[rules])}
        if batch is not None:
            env["RFM_BATCH_MAX"] = str(batch)
        runs: list[list[Rate]] = [[] for _ in roots]
        order = list(range(len(roots)))
        for r in range(rounds):
            for i in order if r % 2 == 0 else order[::-1]:
                ns = f"ab{r}x{i}-{sfx}"
                rate = await run_worker(settings, ns, last, logdir, None, extra=env, root=roots[i])
                runs[i].append(rate)
                print(
                    f"round {r + 1}, {'AB'[i] if i < 2 else i}: {rate.per_s:,.0f} events/s, "
                    f"CPU {rate.cpu_s / rate.events * 1e6 if rate.events else 0:.1f} µs/event",
                    flush=True,
                )
        return runs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", help="git revision or checkout directory (the baseline)")
    ap.add_argument("b", help="git revision or checkout directory (the change)")
    ap.add_argument("--rules", choices=sorted(RULE_SETS), default="rfm8")
    # 6: on a shared machine that slows during a run, 3 rounds once gave 0.75× where 6
    # rounds of the same two checkouts gave 1.00× (BENCHMARKS.md, peers, session 13)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--customers", type=int, default=40_000)
    ap.add_argument(
        "--batch", type=int, help="RFM_BATCH_MAX of both workers (default: the worker's own)"
    )
    args = ap.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="rfm-ab-") as tmp,
        checkouts([args.a, args.b], Path(tmp)) as roots,
    ):
        runs = asyncio.run(
            ab(roots, args.rules, args.rounds, args.events, args.customers, args.batch)
        )
    a, b = ([r.per_s for r in rs] for rs in runs)
    for name, spec, xs in (("A", args.a, a), ("B", args.b, b)):
        print(
            f"{name} {spec}: " + ", ".join(f"{x:,.0f}" for x in xs) + " events/s, "
            f"median {median(xs):,.0f}"
        )
    print(
        f"B / A: median {div(median(b), median(a)):.3f}×; per round "
        + ", ".join(f"{div(y, x):.3f}×" for x, y in zip(a, b, strict=True))
    )


if __name__ == "__main__":
    main()
