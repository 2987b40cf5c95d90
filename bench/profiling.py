"""A readable top of a cProfile run, for BENCHMARKS.md (not the raw file)."""

from __future__ import annotations

import cProfile
import os
import pstats
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _where(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    path = filename
    if path.startswith(str(ROOT) + os.sep):
        path = path[len(str(ROOT)) + 1 :]
        if path.startswith(".venv"):
            path = path.split("site-packages" + os.sep, 1)[-1]
    elif "site-packages" + os.sep in path:
        path = path.split("site-packages" + os.sep, 1)[1]
    else:
        path = Path(path).name
    return f"{path}:{line}({name})"


def format_profile(prof: cProfile.Profile, top: int = 15) -> str:
    stats = pstats.Stats(prof)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]  # pstats has no stub for .stats
    total = sum(v[2] for v in raw.values())

    def rows(items: list[tuple[tuple[str, int, str], tuple[int, int, float, float, Any]]]) -> str:
        lines = [f"{'own s':>7} {'own %':>6} {'cum s':>7} {'calls':>9}  function"]
        for key, (_cc, nc, tt, ct, _callers) in items[:top]:
            lines.append(f"{tt:7.2f} {100 * tt / total:5.1f}% {ct:7.2f} {nc:9,}  {_where(key)}")
        return "\n".join(lines)

    by_own = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)
    ours = [
        kv
        for kv in raw.items()
        if kv[0][0].startswith(str(ROOT) + os.sep)
        and not kv[0][0].startswith(str(ROOT / ".venv"))
        and not kv[0][0].startswith(str(ROOT / "bench"))
    ]
    by_cum = sorted(ours, key=lambda kv: kv[1][3], reverse=True)
    per_file: dict[str, float] = {}
    for (filename, _line, _name), v in raw.items():
        where = (
            "(C built-ins and extension methods)"
            if filename == "~"
            else _where((filename, 0, "")).removesuffix(":0()")
        )
        per_file[where] = per_file.get(where, 0.0) + v[2]
    files = sorted(per_file.items(), key=lambda kv: kv[1], reverse=True)[:10]
    file_rows = "\n".join(f"{t:7.2f} {100 * t / total:5.1f}%  {f}" for f, t in files)
    return (
        f"Top {top} by own time (total profiled {total:.2f} s):\n\n{rows(by_own)}\n\n"
        f"Top {top} project functions by cumulative time:\n\n{rows(by_cum)}\n\n"
        f"Own time per file, top 10:\n\n{'own s':>7} {'own %':>6}  file\n{file_rows}"
    )
