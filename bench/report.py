"""BENCHMARKS.md: each benchmark owns one ``## `` section and rewrites only that; the
heading, machine note and number formatting the sections share."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

import aiokafka
import faust
import redis

__all__ = ["cpu_model", "div", "met", "pct", "section_head", "write_section"]


def write_section(path: Path, title: str, section: str) -> None:
    """Replace the section starting with ``title`` (or append it) in ``path``."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find(title)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(title))
        rest = "" if nxt == -1 else "\n" + text[nxt + 1 :]
        text = text[:start] + section + rest
    path.write_text(text.rstrip("\n") + "\n")


def cpu_model() -> str:
    """The CPU, for the machine note of a benchmark section."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown cpu"
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return m.group(1).strip() if m else "unknown cpu"


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def section_head(title: str, command: str, load: list[tuple[float, float, float]]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    loads = " / ".join(f"{x:.2f}" for x in load[0]) if load else "?"
    after = " / ".join(f"{x:.2f}" for x in load[-1]) if len(load) > 1 else "?"
    return f"""{title}

Command (run from the repo root, {when}; `--smoke` runs every figure at tiny sizes):

```
{command}
```

Machine: {os.cpu_count()} cores ({cpu_model()}), shared and noisy: only ratios against the
baseline of the same run mean anything. Python {platform.python_version()}, faust-streaming
{faust.__version__}, aiokafka {aiokafka.__version__}, redis-py {redis.__version__}; Tansu and
redis-server started by the benchmark on free ports. Load average (1, 5, 15 min) before:
{loads}; after: {after}.
"""


def div(a: float, b: float) -> float:
    """``a / b``, 0 when a smoke run timed nothing (``b`` = 0): the smoke test only checks
    that the figure is produced, never its value."""
    return a / b if b else 0.0


def pct(part: float, whole: float) -> str:
    """``part`` as a percentage of ``whole``; a smoke run can time nothing ("–")."""
    return f"{100 * part / whole:.0f} %" if whole > 0 else "–"
