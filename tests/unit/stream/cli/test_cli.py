"""The CLI fails with one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.harness import ROOT


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


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


BAD_RULES = """
[schemes.tiers]
axes.m.cuts = ["500", "100"]
segments.low = { label = "L", cells = ["1"] }
segments.high = { label = "H", cells = ["2"] }
"""


def test_rules_check_passes_the_shipped_file_and_summarises_it() -> None:
    proc = _cli("rules", "check", "schemas/default_rules.toml")
    assert proc.returncode == 0, proc.stderr
    assert "rfm125: r5 × f5 × m5 = 125 cells -> 11 segments" in proc.stdout
    assert "OK, 4 schemes" in proc.stdout


def test_rules_check_takes_several_files_as_the_worker_does(tmp_path) -> None:
    proc = _cli("rules", "check", "all")  # every shipped scheme
    assert proc.returncode == 0, proc.stderr
    assert "alive: p3 = 3 cells -> 3 segments" in proc.stdout
    assert proc.stdout.strip().endswith("all: OK, 10 schemes")
    mine = tmp_path / "mine.toml"
    mine.write_text('[schemes.pyramid]\naxes.f.cuts = [2]\nsegments.a = {label="A", cells=["*"]}\n')
    clash = _cli("rules", "check", f"management,{mine},rfm")
    assert clash.returncode == 1
    first, summary = clash.stderr.strip().splitlines()
    assert first.startswith("scheme 'pyramid' is defined in both ") and first.endswith(
        "default_rules.toml"
    )
    assert str(mine) in first and "Traceback" not in clash.stderr
    assert summary == f"rfm-stream: 1 problem(s) in management,{mine},rfm"


def test_rules_check_lists_every_problem_and_exits_1(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_RULES)
    proc = _cli("rules", "check", str(bad))
    assert proc.returncode == 1
    assert f"{bad}: schemes.tiers.axes.m.cuts: bands out of order: 100 is not above 500" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr


def test_worker_refuses_to_start_on_a_bad_rules_file_with_one_line(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_RULES)
    proc = _cli("worker", "--rules", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"rfm-stream: bad rules file {bad}: schemes.tiers.axes.m.cuts")
    missing = _cli("worker", "--rules", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "cannot read it" in missing.stderr
