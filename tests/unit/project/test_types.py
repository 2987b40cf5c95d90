"""The type checker passes: strict on the pure logic and the store, the default checks on the
rest (configuration under ``[tool.mypy]`` in pyproject.toml), and every ``# type: ignore``
names its error code and says why on the same line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("schemas", "segments", "state", "stream")


def test_mypy_finds_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_every_type_ignore_names_its_code_and_its_reason() -> None:
    bare = []
    for top in (*PACKAGES, "tests", "bench"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == Path(__file__).resolve():
                continue  # this file names the comment it looks for
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if "type: ignore" not in line:
                    continue
                if not re.search(r"type: ignore\[[\w\-, ]+\]\s+#\s*\S.{8,}", line):
                    bare.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bare, "\n".join(bare)
