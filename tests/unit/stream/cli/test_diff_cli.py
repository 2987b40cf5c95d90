"""The dry-run commands (``rules diff``, ``diff``) refuse bad input with one line and exit 2,
never a traceback, before they read Redis (none is running here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness import ROOT

NO_REDIS = "redis://127.0.0.1:1/0"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args, "--redis-url", NO_REDIS],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def bad_rules(tmp_path: Path) -> Path:
    bad = tmp_path / "bad.toml"
    bad.write_text('[schemes.tiers]\naxes.m.cuts = ["500", "100"]\n')
    return bad


def test_rules_diff_refuses_a_bad_or_missing_rules_file(bad_rules: Path) -> None:
    """The same refusal as ``rules check`` and the worker give (schemas.rules)."""
    line = _one_line(_cli("rules", "diff", str(bad_rules)))
    assert line.startswith(f"rfm-stream: bad rules file {bad_rules}: schemes.tiers"), line
    missing = _one_line(_cli("rules", "diff", str(bad_rules.with_name("nope.toml"))))
    assert "cannot read it" in missing


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["rules", "diff", "schemas/default_rules.toml", "--sample", "-1"], "--sample"),
        (["diff", "live", "b1", "--sample", "lots"], "--sample"),
        (["diff", "live", "b1", "--sample", "100000000"], "from 0 to 1000"),
        (["diff", "live", "b*"], "not a namespace name"),
    ],
)
def test_bad_arguments_are_named_in_one_line(args: list[str], needle: str) -> None:
    assert needle in _one_line(_cli(*args))
