"""``rfm-stream members`` refuses bad flags with one line naming the flag and exit 2, before
it reads Redis (none is running here)."""

from __future__ import annotations

import pytest

from stream.cli.main import main

NO_REDIS = "redis://127.0.0.1:1/0"
BASE = ["members", "--scheme", "rfm8", "--segment", "dormant", "--redis-url", NO_REDIS]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--sort", "size"], "bad --sort 'size': one of value, spend, recency, clv, frequency"),
        (["--limit", "0"], "bad --limit '0'"),
        (["--limit", "ten"], "bad --limit 'ten'"),
        (["--format", "xml"], "bad --format 'xml'"),
        (["--resume"], "--resume needs --out"),
    ],
)
def test_bad_flags_are_named_in_one_line(
    extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*BASE, *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"rfm-stream: {needle}"), lines
