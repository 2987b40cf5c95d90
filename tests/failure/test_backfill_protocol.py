"""The parent's side of a parallel backfill's report protocol, with real child processes
that misbehave the ways a killed or broken job does: the parent must fail at once with
one line, never wait forever for a report that cannot come."""

from __future__ import annotations

import asyncio
import sys

import pytest

from stream.backfill.jobs import REPORT_LIMIT, BackfillJobFailed, _all_read, _Child, _follow


async def child(script: str, share: list[int]) -> _Child:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=REPORT_LIMIT,
    )
    return _Child(proc, share, asyncio.get_running_loop().create_future())


async def test_a_report_cut_off_by_the_childs_death_fails_its_read() -> None:
    c = await child(
        "import os, sys; sys.stdout.write('{\"todo\": 1'); sys.stdout.flush(); os._exit(0)", [0, 2]
    )
    done: list[int] = []
    with pytest.raises(BackfillJobFailed, match="partitions 0, 2"):
        await asyncio.wait_for(_follow(c, done.append, done.append), 10)
    assert c.read.done()
    with pytest.raises(BackfillJobFailed):
        c.read.result()


async def test_an_unreadable_report_fails_the_job_not_the_parent_silently() -> None:
    c = await child("print('not json'); import time; time.sleep(30)", [1])
    with pytest.raises(BackfillJobFailed, match="unreadable report"):
        await asyncio.wait_for(_follow(c, print, print), 10)
    assert isinstance(c.read.exception(), BackfillJobFailed)
    c.proc.kill()
    await c.proc.wait()


async def test_a_child_dying_after_its_read_report_fails_before_the_others_finish() -> None:
    dies = await child(
        'print(\'{"read": {"events": 1, "watermarks": {"0": 5}}}\', flush=True); '
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
        [0],
    )
    slow = await child("import time; time.sleep(60)", [1])  # still reading, for minutes
    children = [dies, slow]
    tasks = [asyncio.ensure_future(_follow(c, print, print)) for c in children]
    try:
        with pytest.raises(BackfillJobFailed, match="partitions 0 was killed by signal 9"):
            await asyncio.wait_for(_all_read(children, tasks), 10)
    finally:
        slow.proc.kill()
        await slow.proc.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
