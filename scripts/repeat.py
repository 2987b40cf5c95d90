"""Run chosen tests N times and report every failure: how a flaky test is caught before it ships.

A test that fails once in a few runs costs a whole CI run when it does, and hides real
failures behind "probably flaky" (one such failure was a real data-loss bug). This runs
``pytest ARGS`` N times in a row, optionally with a CPU burner on the other core (a
loaded machine is where timing assumptions break), reads each run's JUnit XML and prints
which tests failed in which runs. Exit status 1 if any run failed.

    scripts/repeat -n 10 --burn tests/failure/test_failures_redis.py
    scripts/repeat -n 3 tests/integration/stream/live/test_decay.py -k timer

Each run's output is kept under ``--out`` (default ``.repeat/``) for the post-mortem.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _burn() -> None:
    """Keep one core busy: what CI's neighbours do to a 2-core machine."""
    x = 0
    while True:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF


@contextlib.contextmanager
def burner(on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    proc = multiprocessing.Process(target=_burn, daemon=True)
    proc.start()
    try:
        yield
    finally:
        proc.terminate()
        proc.join(5)


def failures(junit: Path) -> tuple[int, list[str]]:
    """(tests run, ids of the failed or errored ones) from one run's JUnit XML."""
    if not junit.exists():
        return 0, ["<no junit report: pytest died before writing it>"]
    root = ET.parse(junit).getroot()
    ran, failed = 0, []
    for case in root.iter("testcase"):
        ran += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname')}::{case.get('name')}")
    return ran, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/repeat",
        description="Run pytest N times and report the tests that failed in any run.",
    )
    parser.add_argument("-n", "--runs", type=int, default=10, help="how many runs (10)")
    parser.add_argument(
        "--burn", action="store_true", help="keep one CPU core busy with a burner meanwhile"
    )
    parser.add_argument("--out", type=Path, default=ROOT / ".repeat", help="where logs go")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="what to pass to pytest")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    by_test: Counter[str] = Counter()
    failed_runs = 0
    started = time.monotonic()
    with burner(args.burn):
        for k in range(1, args.runs + 1):
            junit = args.out / f"{stamp}-run{k}.xml"
            log = args.out / f"{stamp}-run{k}.log"
            t0 = time.monotonic()
            with log.open("wb") as out:
                rc = subprocess.call(
                    [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                     f"--junitxml={junit}", *args.pytest_args],
                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            ran, failed = failures(junit)
            if rc != 0 and not failed:
                failed = [f"<pytest exit status {rc}>"]
            by_test.update(failed)
            failed_runs += bool(failed)
            verdict = "ok" if not failed else "FAILED " + ", ".join(failed)
            print(
                f"run {k}/{args.runs}: {ran} tests in {time.monotonic() - t0:.0f}s: {verdict}"
                f"{'' if not failed else f'  (log: {log})'}",
                flush=True,
            )
    print(
        f"\n{args.runs} runs{' with one core burning' if args.burn else ''} in "
        f"{time.monotonic() - started:.0f}s: {failed_runs} failed"
    )
    for test, n in by_test.most_common():
        print(f"  {n}/{args.runs}  {test}")
    return 1 if failed_runs else 0


if __name__ == "__main__":
    sys.exit(main())
