"""Every benchmark figure of issue #8 in one command, each against a same-run baseline.

    python -m bench            # all figures, full sizes (~18 min), rewrites BENCHMARKS.md
    python -m bench --smoke    # all figures at tiny sizes in seconds; writes a temp file
    python -m bench --only latency,memory

Figures: ``decay`` (timer pass cost, bench_decay), ``backfill`` (vs plain aiokafka,
pandas and the live worker, bench_backfill), ``live`` (throughput vs a no-op faust
agent, cost per event with a py-spy profile, 1 vs 2 workers), ``latency`` (paced
event → transition latency, and decay timeliness), ``memory`` (Redis bytes per
customer), ``peers`` (issue #21: a quixstreams app, the worker with rfm8 only and with
every scheme, backfill, plain aiokafka, polars and pandas on one topic, bench_peers),
``schemes`` (issue #20: the pure engine with the four RFM schemes vs every shipped
scheme, bench_schemes), ``batch`` (the worker's ``RFM_BATCH_MAX``: throughput, commit-script
time and memory per batch size, bench_batch).
``members`` (segment members export: walk rate and peak memory, bench_members).
Each starts its own broker and Redis. ``--smoke`` asserts nothing about
speed: it checks that every figure runs and produces its numbers (tests/test_bench_smoke).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import (
    bench_backfill,
    bench_batch,
    bench_decay,
    bench_latency,
    bench_live,
    bench_members,
    bench_memory,
    bench_peers,
    bench_schemes,
    peers_report,
)
from bench import figures_report as fr
from bench import latency_report as lr
from bench.report import write_section

ROOT = Path(__file__).resolve().parent.parent
FIGURES = (
    "decay",
    "backfill",
    "live",
    "latency",
    "memory",
    "peers",
    "schemes",
    "members",
    "batch",
)

# per figure, the arguments of its bench function: heterogeneous by design, checked by the
# functions' own signatures when they run (tests/integration/project/test_bench_smoke)
FULL: dict[str, dict[str, Any]] = {
    "decay": {"argv": []},
    "backfill": {"argv": []},
    "live": {"events_n": 100_000, "customers": 10_000, "repeats": 2, "scaling_events": 60_000},
    "latency": {
        "rates": [1000, 5000],
        "seconds": 10.0,
        "decay": 100_000,
        "lead_s": 20.0,
        "base_customers": 40_000,
        "base_events": 120_000,
        "batch_debts": (2_000, 6_000),
    },
    "memory": {"customers": 1_000_000, "n_templates": 5000},
    "peers": {"events_n": 200_000, "customers": 40_000, "repeats": 3},
    "schemes": {"events_n": 60_000, "customers": 30_000, "repeats": 3},
    "members": {"argv": ["--customers", "100000"]},
    "batch": {
        "events_n": 200_000,
        "customers": 40_000,
        "sizes": (8000, 16_000, 24_000),
        "repeats": 2,
    },
}
SMOKE: dict[str, dict[str, Any]] = {
    "decay": {"argv": ["--big", "3000", "--small", "1000", "--due", "500", "--repeats", "1"]},
    "backfill": {"argv": ["--events", "2000", "--customers", "200", "--repeats", "1"]},
    # enough events that the worker's first commit (where its timing starts) is not its last
    "live": {"events_n": 12_000, "customers": 600, "repeats": 1, "scaling_events": 1000},
    "latency": {
        "rates": [200],
        "seconds": 1.0,
        "decay": 300,
        "lead_s": 8.0,
        "spread_s": 1.0,
        "base_customers": 300,
        "base_events": 900,
        "batch_debts": (50,),
    },
    "memory": {"customers": 3000, "n_templates": 200},
    # enough that the worker's first commit is not its last (as for "live")
    "peers": {"events_n": 12_000, "customers": 600, "repeats": 1},
    "schemes": {"events_n": 3000, "customers": 600, "repeats": 1},
    "members": {"argv": ["--customers", "3000", "--templates", "200"]},
    # several batches a run at each size (the first commit's records are not timed)
    "batch": {"events_n": 4000, "customers": 400, "sizes": (500, 1000), "repeats": 1},
}


def run(figures: Sequence[str], smoke: bool, md: Path, command: str) -> dict[str, str]:
    """Run ``figures``; write each section to ``md``; returns section title -> text."""
    sizes = SMOKE if smoke else FULL
    out: dict[str, str] = {}

    def put(title: str, text: str) -> None:
        out[title] = text
        write_section(md, title, text)

    for fig in figures:
        t0 = time.perf_counter()
        print(f"=== {fig} ===", flush=True)
        cfg = sizes[fig]
        if fig in ("decay", "backfill", "members"):
            mod = {"decay": bench_decay, "backfill": bench_backfill}.get(fig, bench_members)
            argv = [*cfg["argv"], "--md", str(md)]
            mod.main(argv, command=command)
            title = mod.SECTION
            out[title] = _section(md, title)
        elif fig == "live":
            live = asyncio.run(
                bench_live.bench(
                    cfg["events_n"],
                    cfg["customers"],
                    4,
                    7,
                    cfg["repeats"],
                    cfg["scaling_events"],
                )
            )
            put(fr.THROUGHPUT, fr.throughput(live, command))
            put(fr.COST, fr.cost(live, command))
            put(fr.SCALING, fr.scaling(live, command))
        elif fig == "latency":
            lat = asyncio.run(
                bench_latency.bench(
                    cfg["rates"],
                    cfg["seconds"],
                    cfg["decay"],
                    cfg["lead_s"],
                    cfg.get("spread_s", 60.0),
                    4,
                    cfg["base_customers"],
                    cfg["base_events"],
                    cfg["batch_debts"],
                )
            )
            put(lr.LATENCY, lr.latency(lat, command))
            put(lr.DECAY_TIME, lr.decay_time(lat, command))
        elif fig == "memory":
            mem = asyncio.run(bench_memory.bench(cfg["customers"], cfg["n_templates"], 4, 7))
            put(fr.MEMORY, fr.memory(mem, command))
        elif fig == "peers":
            peers = asyncio.run(
                bench_peers.bench(cfg["events_n"], cfg["customers"], 4, 7, cfg["repeats"])
            )
            put(peers_report.PEERS, peers_report.peers(peers, command))
        elif fig == "schemes":
            before = [os.getloadavg()]
            sch = bench_schemes.bench(cfg["events_n"], cfg["customers"], cfg["repeats"])
            put(
                bench_schemes.SECTION,
                bench_schemes.section(sch, command, [*before, os.getloadavg()]),
            )
        elif fig == "batch":
            bat = asyncio.run(
                bench_batch.bench(cfg["events_n"], cfg["customers"], cfg["sizes"], cfg["repeats"])
            )
            put(bench_batch.SECTION, bench_batch.section(bat, command))
        print(f"=== {fig} done in {time.perf_counter() - t0:.0f} s ===", flush=True)
    return out


def _section(md: Path, title: str) -> str:
    text = md.read_text()
    start = text.find(title)
    if start == -1:
        raise RuntimeError(f"{title!r} was not written to {md}")
    end = text.find("\n## ", start + len(title))
    return text[start:] if end == -1 else text[start : end + 1]


def main(argv: Sequence[str] | None = None, report: Callable[[str], None] = print) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes; BENCHMARKS.md untouched")
    ap.add_argument("--only", default=",".join(FIGURES), help=f"comma list of {FIGURES}")
    ap.add_argument("--md", type=Path, default=None, help="file to write (default: see above)")
    args = ap.parse_args(argv)
    figures = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = set(figures) - set(FIGURES)
    if unknown:
        ap.error(f"unknown figures {sorted(unknown)}; choose from {FIGURES}")
    md = args.md
    if md is None:
        if args.smoke:
            fd, name = tempfile.mkstemp(prefix="rfm-bench-smoke-", suffix=".md")
            os.close(fd)
            md = Path(name)
        else:
            md = ROOT / "BENCHMARKS.md"
    command = "python -m bench" + (" --smoke" if args.smoke else "")
    if args.only != ",".join(FIGURES):
        command += f" --only {args.only}"
    t0 = time.perf_counter()
    run(figures, args.smoke, md, command)
    report(f"wrote {len(figures)} figure(s) to {md} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
