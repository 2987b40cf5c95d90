"""BENCHMARKS.md: each benchmark owns one ``## `` section and rewrites only that."""

from __future__ import annotations

import platform
import re
from pathlib import Path

__all__ = ["cpu_model", "write_section"]


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
