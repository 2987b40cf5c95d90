"""A parallel backfill: child processes each read and apply a disjoint share of the
partitions; the parent sums what they did.

Why processes: a backfill is CPU-bound in Python (validation, the engine's fold, the
codec), so one process uses one core however many partitions it reads. Everything a
backfill does is per partition — claims and epochs, committed offsets, watermarks,
batches, the final decay pass — so a child runs exactly the one-process loop
(:func:`stream.backfill.reader.read_partitions`) over its share, and the result is the
same state and transitions, with the same ids, as one process over all of them.

What only makes sense for the whole namespace — one cut-point version at the latest
watermark, from every partition's summaries — the parent does once every child has
applied its partitions and reported (``read``); it then tells each child to re-rank
its own partitions under that version (``finish_namespace``'s sweep, in parallel too)
and sums their results. At the end it checks every partition's epoch is still the one
its child claimed: a claim anyone made meanwhile (a second backfill, a promote) fails
the backfill with the one-process run's error.

A child that fails (or dies) fails the backfill with a one-line reason, and the other
children are killed; what they committed stays, and a rerun resumes from it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from schemas.errors import RfmStreamError, SettingsError
from schemas.settings import Settings
from segments.cut_points import CutPoints
from segments.rules import build_engine, load_checked_rules
from state.store import Claim, RedisStore
from stream.apply.calibrate import sweep_partitions
from stream.apply.relay import OutboxRelay
from stream.backfill.reader import Reading, few_collections, make_processor, read_partitions
from stream.kafka.clients import make_producer

__all__ = ["BackfillJobFailed", "JobsRead", "JobsResult", "run_job", "run_jobs", "shares"]

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


class BackfillJobFailed(RfmStreamError):
    """A child of a parallel backfill failed or died; the message says which and why."""


@dataclass
class JobsRead:
    """What the children applied, once all have: events and each partition's watermark."""

    events: int = 0
    watermarks: dict[int, int] = dataclasses.field(default_factory=dict)


@dataclass
class JobsResult:
    """What the children did, summed; the claims they ended with."""

    events: int = 0
    transitions: int = 0
    dead_letters: int = 0
    claims: list[Claim] = dataclasses.field(default_factory=list)


def shares(partitions: list[int], jobs: int) -> list[list[int]]:
    """``jobs`` disjoint, near-equal shares of ``partitions`` (round robin: partitions
    are about the same size when keys spread evenly)."""
    return [s for s in (partitions[i::jobs] for i in range(jobs)) if s]


def settings_doc(settings: Settings) -> dict[str, Any]:
    """``settings`` as JSON for a child, secrets included (they go through a pipe, never
    the command line or the environment)."""
    doc = settings.model_dump(mode="json")
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            doc[name] = value.get_secret_value()
    return doc


# ---------------------------------------------------------------------- the child
async def _all_staged(
    send: Callable[[dict[str, Any]], None], receive: Callable[[], Awaitable[bytes]]
) -> None:
    """Say this child's partitions are read (their misrouted records staged) and wait
    until the parent says every child's are: only then are staged records complete."""
    send({"staged": True})
    await receive()


async def run_job(
    spec: dict[str, Any],
    send: Callable[[dict[str, Any]], None],
    receive: Callable[[], Awaitable[bytes]],
) -> dict[str, Any]:
    """A child's work (:mod:`stream.backfill.child`): its share up to the end of the decay
    pass, then the sweep the parent orders."""
    settings = Settings.model_validate(spec["settings"])
    reading = Reading(**spec["reading"])
    partitions: list[int] = spec["partitions"]
    store = RedisStore.from_settings(settings)
    producer = make_producer(settings)
    await producer.start()
    try:
        processor = make_processor(settings, reading, store, producer, spec["partition_count"])
        with few_collections():
            watermarks = await read_partitions(
                settings,
                reading,
                processor,
                producer,
                partitions,
                on_todo=lambda n: send({"todo": n}),
                on_done=lambda n: send({"done": n}),
                barrier=lambda: _all_staged(send, receive),
            )
            send({"read": {"events": processor.stats.events, "watermarks": watermarks}})
            order = orjson.loads(await receive())
            if order["sweep"] is not None:
                if order["cuts"] is not None:
                    cuts = CutPoints.from_json(order["cuts"])
                    processor.use(build_engine(settings, load_checked_rules(settings), cuts))
                await sweep_partitions(processor, partitions, order["sweep"])
                if reading.emit_topic:
                    relay = OutboxRelay(store, producer, reading.emit_topic, processor.owned)
                    for p in partitions:
                        await relay.drain(p)
    finally:
        await producer.stop()
        await store.close()
    s = processor.stats
    return {
        "events": s.events,
        "transitions": s.transitions,
        "dead_letters": sum(s.dead_letters.values()),
        "claims": [[c.partition, c.epoch, c.offset] for c in processor.claims.values()],
    }


# ---------------------------------------------------------------------- the parent
def _failure(share: list[int], returncode: int, error: dict[str, str] | None) -> RfmStreamError:
    which = f"backfill job for partitions {', '.join(map(str, share))}"
    if error is not None:
        if error.get("kind") == "SettingsError":  # e.g. claimed by another process
            return SettingsError(error["error"])
        return BackfillJobFailed(f"{which} failed: {error['kind']}: {error['error']}")
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
        return BackfillJobFailed(f"{which} was killed by signal {-returncode} {name}".rstrip())
    return BackfillJobFailed(f"{which} exited with status {returncode} without a result")


REPORT_LIMIT = 16 * 1024 * 1024
"""Longest line a child may report (its ``read`` line lists every partition's watermark)."""


async def _spawn() -> asyncio.subprocess.Process:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stream.backfill.child",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        limit=REPORT_LIMIT,
    )


async def _tell(proc: asyncio.subprocess.Process, share: list[int], doc: object) -> None:
    """One line to a child; a child that is gone is a failed job, not a traceback."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(orjson.dumps(doc) + b"\n")
        await proc.stdin.drain()  # stdin stays open: its end of file tells the child to stop
    except (BrokenPipeError, ConnectionResetError) as exc:
        code = proc.returncode if proc.returncode is not None else await proc.wait()
        raise _failure(share, code, None) from exc


@dataclass
class _Child:
    proc: asyncio.subprocess.Process
    share: list[int]
    read: asyncio.Future[dict[str, Any]]
    """Set when the child reports its partitions applied (or with its failure)."""
    staged: asyncio.Future[dict[str, Any]] = dataclasses.field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    """Set when the child reports its partitions read, their misrouted records staged
    (or with its failure): the barrier before any child applies staged records."""

    def futures(self) -> tuple[asyncio.Future[dict[str, Any]], ...]:
        return (self.staged, self.read)


async def _follow(
    child: _Child, on_todo: Callable[[int], None], on_done: Callable[[int], None]
) -> dict[str, Any]:
    """Relay a child's progress and its ``read`` report; its result, or its failure
    raised (on ``read`` too, if it failed before that)."""
    try:
        return await _reports(child, on_todo, on_done)
    except BaseException as exc:
        # whatever went wrong, whoever waits for this child's ``read`` must hear of it
        failure = exc
        if not isinstance(exc, (RfmStreamError, asyncio.CancelledError)):
            which = ", ".join(map(str, child.share))
            failure = BackfillJobFailed(
                f"backfill job for partitions {which}: unreadable report ({exc})"
            )
        for waited in child.futures():
            if not waited.done():
                if isinstance(failure, asyncio.CancelledError):
                    waited.cancel()
                else:
                    waited.set_exception(failure)
        if not child.staged.cancelled():
            child.staged.exception()  # raised through ``read`` (or the task) already
        if failure is exc:
            raise
        raise failure from exc


async def _reports(
    child: _Child, on_todo: Callable[[int], None], on_done: Callable[[int], None]
) -> dict[str, Any]:
    proc = child.proc
    assert proc.stdout is not None
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    async for line in proc.stdout:
        if not line.endswith(b"\n"):  # cut off: the child died while writing it
            break
        doc = orjson.loads(line)
        if "done" in doc:
            on_done(doc["done"])
        elif "todo" in doc:
            on_todo(doc["todo"])
        elif "staged" in doc:
            if not child.staged.done():
                child.staged.set_result({})
        elif "read" in doc:
            if not child.read.done():
                child.read.set_result(doc["read"])
        elif "result" in doc:
            result = doc["result"]
        elif "error" in doc:
            error = doc
    code = await proc.wait()
    if code != 0 or result is None:
        raise _failure(child.share, code, error)
    return result


async def _all_read(
    children: list[_Child], tasks: list[asyncio.Future[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Every child's ``read`` report (:func:`_all_reported`)."""
    return await _all_reported([c.read for c in children], tasks)


async def _all_reported(
    waited: list[asyncio.Future[dict[str, Any]]], tasks: list[asyncio.Future[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Every child's report of one kind (``waited``: their ``staged`` or their ``read``);
    the first failure of any child as soon as it happens (one that fails after reporting
    must not wait for the others to finish)."""
    reads = asyncio.gather(*waited)
    # the failure raised below may reach ``reads`` too, after we stopped listening
    reads.add_done_callback(lambda f: f.cancelled() or f.exception())
    try:
        while True:
            running: list[asyncio.Future[Any]] = [t for t in tasks if not t.done()]
            await asyncio.wait([reads, *running], return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:  # before its order, a child's task ends only by failing
                if t.done() and not t.cancelled() and (failure := t.exception()) is not None:
                    raise failure
            if reads.done():
                return reads.result()
    finally:
        if not reads.done():
            reads.cancel()


async def _stop(procs: list[asyncio.subprocess.Process]) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
    for proc in procs:
        await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()


async def run_jobs(
    settings: Settings,
    reading: Reading,
    partitions: list[int],
    jobs: int,
    on_todo: Callable[[int], None],
    on_done: Callable[[int], None],
    order: Callable[[JobsRead], Awaitable[dict[str, Any]]],
) -> JobsResult:
    """Read and apply ``partitions`` in ``jobs`` child processes; their sum.

    Once every child has applied its partitions, ``order`` is given what they read and
    returns what each is told to do next (``{"sweep": at_ms or None, "cuts": cut-point
    JSON or None}``). The first failure kills the other children and is raised (a
    :class:`BackfillJobFailed`, or the child's own :class:`SettingsError`, e.g. a
    partition claimed by another process).
    """
    level = logging.getLevelName(logging.getLogger("stream").getEffectiveLevel())
    common = {
        "settings": settings_doc(settings),
        "reading": dataclasses.asdict(reading),
        "partition_count": len(partitions),
        "log_level": str(level).lower(),
    }
    loop = asyncio.get_running_loop()
    children: list[_Child] = []
    tasks: list[asyncio.Future[dict[str, Any]]] = []
    try:
        for share in shares(partitions, jobs):
            children.append(_Child(await _spawn(), share, loop.create_future()))
        for i, c in enumerate(children):
            await _tell(c.proc, c.share, {**common, "index": i, "partitions": c.share})
        tasks = [asyncio.ensure_future(_follow(c, on_todo, on_done)) for c in children]
        await _all_reported([c.staged for c in children], tasks)
        for c in children:  # every child's misrouted records are staged: apply them
            await _tell(c.proc, c.share, {"apply": True})
        read = JobsRead()
        for r in await _all_read(children, tasks):
            read.events += r["events"]
            read.watermarks.update({int(p): wm for p, wm in r["watermarks"].items()})
        told = await order(read)
        for c in children:
            await _tell(c.proc, c.share, told)
        results = await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await _stop([c.proc for c in children])
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in children:  # failures raised once above are retrieved here
            for waited in c.futures():
                if waited.done() and not waited.cancelled():
                    waited.exception()
    out = JobsResult()
    for r in results:
        out.events += r["events"]
        out.transitions += r["transitions"]
        out.dead_letters += r["dead_letters"]
        out.claims += [Claim(p, epoch, offset) for p, epoch, offset in r["claims"]]
    return out
