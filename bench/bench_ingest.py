"""Records/s of validate + route (``sort_batch`` with ``Validator.event``), this checkout
against an older commit's, interleaved in one process (issue #21).

Why a git ref: timing on a shared machine drifts by tens of percent between runs, so
old and new must alternate in one run (A, B, A, B, best of each) to give a fair ratio.
The old modules are loaded from ``git show <ref>:<path>`` under private names.

    python -m bench.bench_ingest --base fde91b3 [--events 200000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from bench.workload import generate
from schemas import load_settings
from stream.apply import routing, validate
from stream.apply.messages import Msg
from stream.apply.routing import partitioner

ROOT = Path(__file__).resolve().parent.parent


def _old(ref: str, path: str, name: str, tmp: Path) -> ModuleType:
    """Module ``path`` as it was at ``ref``, imported as ``name``."""
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    file = tmp / f"{name}.py"
    file.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _fetches(events: int, partitions: int) -> list[list[Msg]]:
    """Each partition's records as the producer sends them (JSON bytes keyed by customer)."""
    home = partitioner("murmur2")
    parts: list[list[Msg]] = [[] for _ in range(partitions)]
    for ev in generate(events, max(events // 5, 1), seed=7):
        key = ev["customer_id"].encode()
        p = home(key, partitions)
        parts[p].append(Msg(p, len(parts[p]), key, orjson.dumps(ev)))
    return parts


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git ref of the old code")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batch", type=int, default=500, help="records per sort_batch call")
    args = ap.parse_args(argv)
    settings = load_settings()
    parts = _fetches(args.events, 4)
    with tempfile.TemporaryDirectory() as tmp:
        old_validate = _old(args.base, "stream/apply/validate.py", "_old_validate", Path(tmp))
        old_routing = _old(args.base, "stream/apply/routing.py", "_old_routing", Path(tmp))
    wall = int(time.time() * 1000) + 10**10
    home = partitioner("murmur2")
    sides: dict[str, tuple[Any, Any]] = {
        "old": (old_routing.sort_batch, old_validate.Validator(settings).event),
        "new": (routing.sort_batch, validate.Validator(settings).event),
    }

    def run(side: str, keep: list[Any] | None = None) -> float:
        """Seconds to sort every fetch a batch at a time (the batches kept only if asked:
        holding them all would make the timing the garbage collector's)."""
        sort_batch, event = sides[side]
        started = time.perf_counter()
        for p, msgs in enumerate(parts):
            for i in range(0, len(msgs), args.batch):
                batch = sort_batch(p, msgs[i : i + args.batch], event, wall, home, 4, (None, None))
                if keep is not None:
                    keep.append(batch.good)
        return time.perf_counter() - started

    a: list[Any] = []
    b: list[Any] = []
    run("old", a)
    run("new", b)
    assert a == b, "old and new sort a batch differently"
    del a, b
    best = {"old": float("inf"), "new": float("inf")}
    for _ in range(args.rounds):
        for side in ("old", "new"):
            best[side] = min(best[side], run(side))
    n = sum(len(m) for m in parts)
    print(
        f"validate+route, {n} records: old {n / best['old']:,.0f}/s, "
        f"new {n / best['new']:,.0f}/s, new/old {best['old'] / best['new']:.2f}x"
    )


if __name__ == "__main__":
    main()
