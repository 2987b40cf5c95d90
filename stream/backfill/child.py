"""One child of a parallel backfill: ``python -m stream.backfill.child``, started by
:mod:`stream.backfill.jobs`, reads and applies its share of the partitions.

The parent writes the job as one JSON line on the child's stdin and keeps the pipe open;
the child answers with JSON lines on its stdout (anything else the child prints goes to
stderr): ``{"todo": n}`` once, ``{"done": n}`` per applied batch, ``{"staged": true}``
once its partitions are read (then it waits for the parent's ``{"apply": true}``, sent
when every child's are: the misrouted records they staged for each other are complete),
``{"read": ...}`` once its staged records are applied and its decays fired. It then
waits for the parent's third line (whether to sweep, under which cut points:
``stream.backfill.jobs``), and ends with ``{"result": ...}``; or, at any point,
``{"error": "one line", "kind": "ExceptionClass"}``.

A child never outlives its parent: the kernel kills it when the parent dies (Linux
``PR_SET_PDEATHSIG``), and it exits by itself when its stdin reaches end of file (the
parent's end of the pipe closed: any platform, any way the parent went).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import signal
import sys
import threading
from typing import IO, Any

__all__ = ["main"]

ORPHANED = 3
"""Exit status of a child whose parent went away."""


def _die_with_parent() -> None:
    """Ask the kernel for SIGKILL when the parent dies (Linux; elsewhere the stdin
    watch alone does it)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the call: nobody would kill us
        os._exit(ORPHANED)


class _Parent:
    """Lines from the parent on stdin, read by a daemon thread that also exits the
    process at once when the parent's end of the pipe closes (it died, or gave up on us).

    Raw ``os.read``: a buffered reader would hold its lock while blocked, which the
    interpreter's shutdown would wait for."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lines: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        threading.Thread(target=self._watch, name="parent-watch", daemon=True).start()

    def _watch(self) -> None:
        pending = b""
        while chunk := os.read(self._fd, 65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._lines.put(line)
        os._exit(ORPHANED)

    def line(self) -> bytes:
        return self._lines.get()

    async def next_line(self) -> bytes:
        import asyncio

        return await asyncio.to_thread(self._lines.get)


def _protocol_out() -> IO[str]:
    """The real stdout for protocol lines; fd 1 then points at stderr, so a stray print
    can't corrupt the protocol."""
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    return out


def main() -> int:
    _die_with_parent()
    # Ctrl-C reaches the whole process group: the parent handles it (and kills us); a
    # child's own KeyboardInterrupt would only add a traceback to the terminal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = _protocol_out()
    parent = _Parent(0)
    spec_line = parent.line()

    import asyncio
    import logging

    import orjson

    def send(doc: dict[str, Any]) -> None:
        out.write(orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")

    try:
        spec = orjson.loads(spec_line)
        logging.basicConfig(
            level=spec["log_level"].upper(),
            format=f"%(asctime)s %(levelname)s %(name)s[job {spec['index']}]: %(message)s",
        )
        from stream.backfill.jobs import run_job

        result = asyncio.run(run_job(spec, send, parent.next_line))
    except Exception as exc:  # every failure becomes the one-line reason
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        send({"error": first or type(exc).__name__, "kind": type(exc).__name__})
        logging.getLogger(__name__).debug("backfill job failed", exc_info=True)
        return 1
    send({"result": result})
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # not sys.exit: nothing is left to clean up, and the watch thread blocks
