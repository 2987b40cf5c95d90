"""``scripts/repeat`` finds a test that fails in only some runs, and says which and how often."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_a_test_failing_in_one_run_of_three_is_reported_with_its_count(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    flaky = tmp_path / "test_sometimes.py"
    flaky.write_text(
        "from pathlib import Path\n"
        f"COUNTER = Path({str(counter)!r})\n"
        "def test_steady() -> None:\n"
        "    assert True\n"
        "def test_fails_on_the_second_run() -> None:\n"
        "    n = int(COUNTER.read_text()) + 1 if COUNTER.exists() else 1\n"
        "    COUNTER.write_text(str(n))\n"
        "    assert n != 2\n"
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/repeat.py"), "-n", "3", "--out", str(tmp_path / "o"),
         str(flaky), "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "run 1/3: 2 tests" in out and "run 3/3: 2 tests" in out, out
    assert "run 2/3: 2 tests" in out and "FAILED" in out.split("run 2/3")[1].splitlines()[0], out
    assert "3 runs in" in out and ": 1 failed" in out, out
    # the class name's prefix depends on where pytest puts its rootdir: match the end
    tally = [line for line in out.splitlines() if line.startswith("  1/3  ")]
    assert len(tally) == 1, out
    assert tally[0].endswith("test_sometimes::test_fails_on_the_second_run"), out
    assert "test_steady" not in out.split("failed")[-1], out


def test_every_run_passing_exits_zero(tmp_path: Path) -> None:
    steady = tmp_path / "test_steady.py"
    steady.write_text("def test_ok() -> None:\n    assert True\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/repeat.py"), "-n", "2", "--out", str(tmp_path / "o"),
         str(steady), "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 runs in" in done.stdout and ": 0 failed" in done.stdout, done.stdout
