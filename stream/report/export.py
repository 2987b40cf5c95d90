"""Walk a namespace for one segment's members, spooling each finished partition: resumable.

A segment's members are found by walking the keyspace (:func:`state.walk.walk_states`,
partition by partition, each customer once, on a single Redis or a Cluster), not from an
index: an index would be written in every commit and cost memory per customer, which is
at its budget. The walk writes nothing to Redis.

The rows of each finished partition are appended to a spool file and a checkpoint beside
it records which partitions are done, the spool's length then and the as-of time, so an
interrupted export of millions restarts after the last finished partition, as of the same
instant (the result equals an uninterrupted one). Sorting happens at the end, over the
spool: in memory only a key, the customer id and a file offset per member.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from schemas.errors import RfmStreamError
from segments.scheme import Scheme
from segments.value import ValueModel, ValuePolicy
from state.store import RedisStore
from state.walk import walk_states
from stream.report.members import Sort, member_rows, sort_key

__all__ = ["CHUNK", "ExportTarget", "ResumeRefused", "Spool", "walk_members"]

CHUNK = 1000
"""Customers per SCAN chunk and load (one round trip each)."""


class ResumeRefused(RfmStreamError):
    """A checkpoint is in the way, or is of another export."""


@dataclass(frozen=True, slots=True)
class ExportTarget:
    """What is exported: the members of ``segment`` of ``scheme`` in ``namespace``."""

    namespace: str
    partitions: int
    scheme: str
    segment: str

    def identity(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "partitions": self.partitions,
            "scheme": self.scheme,
            "segment": self.segment,
        }


class Spool:
    """The rows of finished partitions (JSON lines in ``rows``) and the checkpoint
    (``rows`` + ``.checkpoint``) that says which partitions they are.

    Resume contract: a partition's rows are appended and flushed to disk *before* the
    checkpoint names it (written to a temporary file, then renamed over the old one), so
    the checkpoint never names a partition whose rows are not all in the spool; rows of a
    partition written after the last checkpoint are cut off on resume (``size``).
    """

    def __init__(self, rows: Path, target: ExportTarget) -> None:
        self.rows = rows
        self.target = target
        self.checkpoint = rows.with_name(rows.name + ".checkpoint")
        self.done: list[int] = []
        self.as_of_ms = 0

    def start(self, now_ms: int, resume: bool) -> None:
        """Begin at ``now_ms``, or with ``resume`` go on from the checkpoint (its as-of
        time and finished partitions). An unfinished export is never overwritten
        unasked, and a checkpoint of another export is never resumed."""
        if self.checkpoint.exists():
            if not resume:
                raise ResumeRefused(
                    f"an unfinished export's checkpoint is at {self.checkpoint}: "
                    "add --resume to finish it, or delete it to start over"
                )
            doc = orjson.loads(self.checkpoint.read_bytes())
            if doc["target"] != self.target.identity():
                raise ResumeRefused(
                    f"--resume: the checkpoint {self.checkpoint} is of another export "
                    f"({doc['target']}); delete it to start over"
                )
            with self.rows.open("ab") as f:
                f.truncate(int(doc["size"]))
            self.done, self.as_of_ms = list(doc["done"]), int(doc["as_of_ms"])
            return
        self.rows.write_bytes(b"")
        self.done, self.as_of_ms = [], now_ms
        self._save()

    def add(self, partition: int, rows: list[dict[str, Any]]) -> None:
        """Spool ``partition``'s rows, then checkpoint it as done (in that order)."""
        with self.rows.open("ab") as f:
            f.write(b"".join(orjson.dumps(r) + b"\n" for r in rows))
            f.flush()
            os.fsync(f.fileno())
        self.done.append(partition)
        self._save()

    def _save(self) -> None:
        doc = {
            "target": self.target.identity(),
            "done": self.done,
            "as_of_ms": self.as_of_ms,
            "size": self.rows.stat().st_size,
        }
        tmp = self.checkpoint.with_name(self.checkpoint.name + ".tmp")
        tmp.write_bytes(orjson.dumps(doc))
        os.replace(tmp, self.checkpoint)

    def sorted_rows(self, sort: Sort, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """The spooled rows in ``sort`` order, the first ``limit`` of them (all: None)."""
        return self.read(self.order(sort, limit))

    def order(self, sort: Sort, limit: int | None = None) -> list[int]:
        """The spool offsets of the rows in ``sort`` order (the first ``limit``): one
        pass over the spool, holding a key, an id and an offset per row. CPU-bound, no
        I/O to wait on: the API runs it in a thread, off the worker's event loop."""
        keys: list[tuple[float, str, int]] = []
        with self.rows.open("rb") as f:
            offset = 0
            for line in f:
                primary, cid = sort_key(orjson.loads(line), sort)
                keys.append((primary, cid, offset))
                offset += len(line)
        keys.sort()
        return [at for _, _, at in (keys[:limit] if limit is not None else keys)]

    def read(self, offsets: list[int]) -> Iterator[dict[str, Any]]:
        """The rows at ``offsets``, in that order."""
        with self.rows.open("rb") as f:
            for at in offsets:
                f.seek(at)
                yield orjson.loads(f.readline())

    def remove(self) -> None:
        """Forget the export (it is written): the spool and its checkpoint."""
        self.checkpoint.unlink(missing_ok=True)
        self.rows.unlink(missing_ok=True)


Tick = Callable[[int], None]
"""Told how many customers were just read (a progress bar's ``update``)."""


def _nothing(_: int) -> None:
    pass


async def walk_members(
    store: RedisStore,
    scheme: Scheme,
    model: ValueModel | None,
    policy: ValuePolicy,
    spool: Spool,
    tick: Tick = _nothing,
    after_partition: Tick = _nothing,
) -> None:
    """Spool the members of every partition the spool has not finished, in order.

    ``after_partition`` is told each partition spooled (what a test interrupts with).
    """
    target = spool.target
    for p in range(target.partitions):
        if p in spool.done:
            continue
        rows: list[dict[str, Any]] = []
        async for states in walk_states(store, [p], CHUNK):
            rows += member_rows(states, scheme, target.segment, model, policy, spool.as_of_ms)
            tick(len(states))
        spool.add(p, rows)
        after_partition(p)
