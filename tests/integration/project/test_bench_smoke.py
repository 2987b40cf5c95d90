"""``python -m bench --smoke``: every benchmark figure runs end to end at tiny sizes.

Nothing here is about speed (never a timed test, DESIGN.md): it checks that the one
documented command still starts its broker and Redis, drives the real worker, and
produces every figure's numbers, so the benchmark can't rot between full runs. The
smoke run writes a temporary file, never BENCHMARKS.md.

The backfill figure needs pandas (the ``bench`` extra); without it that one check skips
and the smoke run leaves the figure out.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
NUM = r"[\d,]+(?:\.\d+)?"

# section title -> patterns that must match inside it (each with real numbers, no nan)
CHECKS: dict[str, list[str]] = {
    "## Decay timer pass": [rf"\*\*Ratio big/small \(pass time medians\): {NUM}\*\*"],
    "## Backfill vs live worker vs baselines": [
        rf"\| \*\*backfill\*\*, `backfill_topic` called in process, \d+ process(es)? \(headline\) "
        rf"\| {NUM} \| {NUM} \|",
        rf"\| backfill, `backfill_topic\(jobs=1\)`: one process \| {NUM} \| {NUM} \|",
        rf"\| live worker .*\| {NUM} \| {NUM} \| {NUM} \| {NUM}×",
    ],
    "## Live worker throughput vs a no-op faust agent": [
        rf"\| no-op faust agent \(baseline\) \| {NUM} \| {NUM} \| {NUM} \| {NUM} \| 1\.000× \|",
        rf"\| \*\*live worker\*\* \| {NUM} \| {NUM} \| {NUM} \| {NUM} \| {NUM}× \|",
    ],
    "## Cost per event of the live worker": [
        r"\| `evalsha` \| [\d,]+ \| [\d,.]+ \|",
        rf"Python CPU per event: live worker \*\*{NUM} µs\*\*",
        r"(Top 15 by own samples|py-spy unavailable|py-spy recorded no samples)",
    ],
    "## Scaling: two workers in one group vs one": [
        rf"\| 1 \(baseline\) \| .* \| {NUM} \| {NUM} \| 1\.000× \|",
        rf"\| 2 \| .* \| {NUM} \| {NUM} \| {NUM}× \|",
    ],
    "## Latency: event produced to transition readable": [
        rf"\| broker alone, `fetch_max_wait_ms=20` \(baseline\) \| 200/s \| {NUM}/{NUM} \| {NUM}",
        rf"\| \*\*live worker\*\* \| 200/s \| {NUM}/{NUM} \| {NUM} \| {NUM} \| {NUM} \| {NUM}× \|",
        rf"\| live worker, cold start \(empty namespace\) \| 200/s \| {NUM}/{NUM} \| {NUM} ",
        rf"\| established base \| 200/s \| {NUM} / {NUM} \| {NUM} / {NUM} \| {NUM} s",
        rf"\| broker alone, 50 one-record batches per partition before \| 1,000/s \| {NUM}/{NUM} ",
        rf"\| live worker, the first rate again after the runs above \| 200/s \| {NUM}/{NUM} ",
    ],
    "## Decay timeliness: due time to transition readable": [
        rf"\| 300 \| {NUM} \| {NUM} \| {NUM} \| {NUM} \| {NUM} \|",
    ],
    "## Engine cost per scheme set": [
        rf"\| live \({NUM} batches\) \| rfm: 4 schemes \| {NUM} \| {NUM} \|",
        rf"\| replay \({NUM} batches\) \| every: \d+ schemes \| {NUM} \| {NUM} \|",
        rf"at the RFM schemes' throughput: live {NUM}×; replay {NUM}×",
    ],
    "## Live worker batch size: throughput, commit-script time and memory": [
        rf"\| rfm \| 500 \| {NUM} \| 1\.00× \| {NUM} \| {NUM} \| {NUM} / {NUM} \|",
        rf"\| rfm8 \| 1,000 \| {NUM} \| {NUM}× \| {NUM} \| {NUM} \| {NUM} / {NUM} \|",
    ],
    "## Redis memory per customer": [
        rf"\| \*\*difference\*\* \| {NUM} \| \*\*{NUM} B\*\* \|",
        rf"\| due zset .* \| \| {NUM} B \|",
    ],
}


# The figures in two smoke runs side by side, split so each takes about as long (~70 s
# each in one run on the shared CI machine: ``live`` and ``batch``, the rest together). Most of a
# smoke run is waiting on process start-ups, group joins and paced sends, not CPU, so two
# overlap well; each run starts its own broker and Redis, so they share nothing.
# pandas: the bench extra, which CI installs
GROUPS = ("live,batch", "decay,backfill,latency,memory,schemes")


@pytest.fixture(scope="module")
def smoke_md(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("bench")
    before = (ROOT / "BENCHMARKS.md").read_text()
    runs = []
    for i, figures in enumerate(GROUPS):
        md, log = out / f"BENCHMARKS-{i}.md", out / f"smoke-{i}.log"
        with open(log, "wb") as fh:
            cmd = [sys.executable, "-m", "bench", "--smoke", "--only", figures, "--md", str(md)]
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        runs.append((figures, proc, md, log))
    try:
        for figures, proc, _, log in runs:
            code = proc.wait(timeout=300)
            assert code == 0, f"smoke run --only {figures} failed:\n{log.read_text()[-4000:]}"
    finally:
        for _, proc, _, _ in runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert (ROOT / "BENCHMARKS.md").read_text() == before, "--smoke wrote BENCHMARKS.md"
    return "\n".join(md.read_text() for _, _, md, _ in runs)


def _section(text: str, title: str) -> str:
    start = text.find(title)
    assert start != -1, f"{title!r} missing from the smoke report"
    end = text.find("\n## ", start + len(title))
    return text[start:] if end == -1 else text[start:end]


@pytest.mark.integration
@pytest.mark.parametrize("title", list(CHECKS))
def test_smoke_figure(smoke_md: str, title: str) -> None:
    section = _section(smoke_md, title)
    assert "python -m bench --smoke" in section, "the section must name its command"
    assert not re.search(r"\bnan\b", section), f"a figure without numbers:\n{section}"
    for pattern in CHECKS[title]:
        assert re.search(pattern, section), f"{pattern!r} not in:\n{section}"
