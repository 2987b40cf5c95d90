"""The CLI fails with one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.harness import ROOT


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["worker", "--recency", "ninety days"], "RFM_RECENCY"),
        (["worker", "--frequency-cut", "0"], "RFM_FREQUENCY_CUT"),
        (["worker", "--namespace", "No Spaces"], "RFM_NAMESPACE"),
    ],
)
def test_bad_settings_exit_2_with_one_line(args: list[str], needle: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rfm-stream: bad setting ") and needle in lines[0]


def test_bad_environment_variable_is_named() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "stream.cli", "worker"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "RFM_MONETARY_CUT": "lots"},
    )
    assert proc.returncode == 2
    assert "RFM_MONETARY_CUT" in proc.stderr and "Traceback" not in proc.stderr
