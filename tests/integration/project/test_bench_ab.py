"""``python -m bench.ab_worker``: the worker of two checkouts on one topic, end to end.

Not about speed (never a timed test): it checks that the A/B tool a "no regression" or
"n % faster" note cites still runs both workers to the end of the topic, from a
directory and from a git revision (a temporary worktree, removed afterwards), and prints
every run and the per-round ratios.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.integration]


def _worktrees() -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "list", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line.startswith("worktree ")]


def test_ab_worker_runs_a_directory_against_a_revision() -> None:
    before = _worktrees()
    # batches far smaller than the topic: the first commit (where timing starts) isn't the last
    cmd = [sys.executable, "-m", "bench.ab_worker", "--events", "12000", "--customers", "600"]
    cmd += ["--batch", "1000"]
    done = subprocess.run(
        [*cmd, "--rounds", "2", str(ROOT), "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    assert done.returncode == 0, (out + done.stderr)[-4000:]
    runs = re.findall(r"^round (\d), ([AB]): ([\d,]+) events/s", out, re.M)
    assert [(r, w) for r, w, _ in runs] == [("1", "A"), ("1", "B"), ("2", "B"), ("2", "A")]
    assert all(int(rate.replace(",", "")) > 0 for _, _, rate in runs), out
    assert re.search(r"^B / A: median [\d.]+×; per round [\d.]+×, [\d.]+×$", out, re.M), out
    assert _worktrees() == before, "the revision's worktree was left behind"
