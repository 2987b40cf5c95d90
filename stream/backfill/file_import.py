"""Backfill from files (CSV or JSON lines of purchase/refund events) for history not in Kafka.

Each row goes through the same validation and :class:`Processor` as a Kafka message:
it is routed to its customer's home partition (so the namespace can later be promoted
and continue from Kafka), applied in event time (per-partition watermark), and its line
number is the row's "offset". The line cursor is kept per file and partition in the
partition's meta hash, committed with the state: an interrupted import resumes where
its last commit ended. Rejected rows are written next to the input
(``<file>.rejected.jsonl``: line, error class, message, the row as read).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import orjson

from schemas.errors import SettingsError
from schemas.settings import Settings
from segments.rules import build_engine
from state.layout import ensure_days_kept, ensure_layout, window_of
from state.namespaces import BUILDING, BUILT, checked_name, refuse_claiming_served
from state.store import RedisStore
from stream.apply.calibrate import finish_namespace
from stream.apply.clock import WallClock
from stream.apply.messages import Msg
from stream.apply.modes import file_position
from stream.apply.processor import Processor
from stream.apply.routing import partitioner
from stream.backfill.progress import Progress
from stream.backfill.run import mark_build

__all__ = ["FileReport", "import_files", "read_rows"]

_CSV_OPTIONAL = ("store_id", "channel", "kind", "refund_of")


@dataclass
class FileReport:
    path: Path
    rows: int
    rejected: int
    rejected_path: Path | None


def read_rows(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, the row as event JSON bytes) for a ``.csv`` or JSON-lines file."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                clean = {k: v for k, v in row.items() if k and not (k in _CSV_OPTIONAL and v == "")}
                yield reader.line_num, orjson.dumps(clean)
    else:
        with path.open("rb") as fh:
            for n, line in enumerate(fh, start=1):
                line = line.strip()
                if line:
                    yield n, line


class _RejectedRows:
    """Outputs for a file import: dead letters become readable rows in a side file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._fh: TextIO | None = None

    async def dead_letter(self, letters: Sequence[tuple[bytes | None, bytes]]) -> None:
        import base64

        if self._fh is None:
            self._fh = self.path.open("a", encoding="utf-8")
        for _, letter in letters:
            d = orjson.loads(letter)
            raw = base64.b64decode(d["value_b64"]) if d["value_b64"] else b""
            row = {
                "line": d["offset"],
                "error_class": d["error_class"],
                "error_message": d["error_message"],
                "row": raw.decode("utf-8", errors="replace"),
            }
            self._fh.write(orjson.dumps(row).decode() + "\n")
            self.count += 1
        self._fh.flush()

    async def forward(self, msgs: Sequence[tuple[int, bytes | None, bytes | None]]) -> None:
        raise AssertionError("file rows are routed to their home partition before processing")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def _digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=8)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


async def import_files(
    settings: Settings,
    namespace: str,
    paths: Sequence[Path],
    partitions: int,
    batch: int = 10_000,
    progress: bool = True,
) -> list[FileReport]:
    """Apply every row of ``paths`` to ``namespace`` laid out for ``partitions``."""
    checked_name(namespace, "--into")
    if namespace == settings.namespace:
        raise SettingsError(f"import namespace {namespace!r} is the live namespace")
    target = settings.model_copy(update={"namespace": namespace})
    store = RedisStore.from_settings(settings, namespace)
    home = partitioner(settings.partitioner)
    reports = []
    try:
        await refuse_claiming_served(
            await store.connect(), settings.key_prefix, namespace, "backfill --into"
        )
        await ensure_layout(store, settings.purchases_topic, partitions)
        kept = window_of(build_engine(target).schemes)  # what its customers keep
        await ensure_days_kept(store, kept, populated=False)
        await mark_build(store, list(range(partitions)), BUILDING)
        for path in paths:
            if not path.is_file():
                raise SettingsError(f"--file: {path} does not exist")
            rejected = _RejectedRows(path.with_name(path.name + ".rejected.jsonl"))
            wall = WallClock()
            processor = Processor(
                target,
                store,
                build_engine(target),
                rejected,
                clock=wall,
                wall=wall,
                mode="backfill",
                emit=False,
                position=file_position(_digest(path)),
            )
            await processor.assign(range(partitions))
            bar = Progress(sum(1 for _ in read_rows(path)), label=path.name) if progress else None
            watermark = dict.fromkeys(range(partitions), 0)
            rows = 0
            try:
                for chunk in _chunks(read_rows(path), batch):
                    by_part: dict[int, list[Msg]] = {}
                    for line, raw in chunk:
                        p = _home_of(raw, home, partitions)
                        by_part.setdefault(p, []).append(Msg(p, line, None, raw))
                    for p, msgs in by_part.items():
                        latest = await processor.process_partition(p, msgs)
                        if latest is not None and latest > watermark[p]:
                            watermark[p] = latest
                            await processor.run_due(p, latest)
                    rows += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                await finish_namespace(
                    target, store, processor, list(range(partitions)), max(watermark.values())
                )
            finally:
                rejected.close()
            if bar is not None:
                bar.finish()
            reports.append(
                FileReport(path, rows, rejected.count, rejected.path if rejected.count else None)
            )
        await mark_build(store, list(range(partitions)), BUILT)
    finally:
        await store.close()
    return reports


def _home_of(raw: bytes, home: Callable[[bytes, int], int], partitions: int) -> int:
    """The row's customer's partition; unparsable rows go to 0 (they are only rejected)."""
    try:
        customer = orjson.loads(raw).get("customer_id")
    except (orjson.JSONDecodeError, AttributeError):
        return 0
    if not isinstance(customer, str) or not customer:
        return 0
    return home(customer.encode(), partitions)


def _chunks(rows: Iterator[tuple[int, bytes]], n: int) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
