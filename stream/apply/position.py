"""Where each partition's reading stands, guarded against Redis and the consumer disagreeing.

Redis holds the truth (state and offset commit together). The guard keeps the consumer
and this worker's claims consistent with it:

- a step fenced by a newer epoch drops only its own claim; if the consumer group still
  assigns the partition here, that is a *fence*: kept in :attr:`PositionGuard.fences`
  (``/health`` 503, ``rfm_partition_fenced``, an error line) until the next assignment,
  never a silent stop. It is not re-claimed here: the epoch alone can't say who bumped it,
  and if it was the group's newer owner (a rebalance this worker hasn't heard of yet),
  re-claiming would fence the rightful owner out; a rebalance (or a restart, which is one)
  claims it again for whoever the group gives it to;
- an epoch that went *back* or vanished means Redis lost state (restored from an older
  snapshot, lost its last AOF second, came back empty): claim again, re-read from what
  Redis holds;
- a batch that starts past Redis's next offset rewinds the consumer instead of leaving
  a hole; a hole that persists 10 s is a real one in the log (compaction, transaction
  markers) and is accepted;
- ``verify`` checks quiet partitions on every timer tick, where no batch would notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, TypeVar

from schemas.errors import CommitConflict, Fenced, StateLost
from state.store import Claim, RedisStore
from stream.apply.modes import OFFSETS, Position

if TYPE_CHECKING:
    from stream.apply.stats import Family, Stats

__all__ = ["PositionGuard", "Seek", "fence_metrics"]

log = logging.getLogger(__name__)
T = TypeVar("T")

Seek = Callable[[int, int], Awaitable[None]]
"""Seek the consumer of partition p to an offset (the next one it reads)."""


class PositionGuard:
    """Claims, epochs, locks and rewinds of the partitions a processor owns.

    A collaborator of :class:`~stream.apply.processor.Processor`, which runs every
    load→apply→commit step through :meth:`fenced` under :meth:`lock`. ``position`` is the
    meta field holding the reading position; only :data:`~stream.apply.modes.OFFSETS`
    (a consumer's) is rewound, and only once a consumer's seek is given (:meth:`seek_with`).
    """

    def __init__(
        self,
        store: RedisStore,
        stats: Stats,
        position: Position = OFFSETS,
        rewind: Seek | None = None,
    ) -> None:
        self.store = store
        self.stats = stats
        self._position: Position = position
        self._seek = rewind
        self.claims: dict[int, Claim] = {}
        """Partition -> this worker's current claim (epoch, offset at claim time)."""
        self.fences: dict[int, str] = {}
        """Partitions still assigned here whose claim a newer epoch fenced out -> why.

        Cleared by :meth:`forget_fences` on every assignment (which claims anew)."""
        self.committed: dict[int, int | None] = {}
        """Partition -> the last offset this processor committed (Kafka offsets only; None
        after a batch whose unbroken run was empty)."""
        self._locks: dict[int, asyncio.Lock] = {}
        self._gaps: dict[int, tuple[int, float]] = {}

    @property
    def position(self) -> Position:
        """The meta field holding this reader's position (see :data:`Position`)."""
        return self._position

    @contextlib.contextmanager
    def reading(self, position: Position) -> Iterator[None]:
        """Read (load and commit) at ``position`` meanwhile, then at the one before."""
        before = self._position
        self._position = position
        try:
            yield
        finally:
            self._position = before

    def seek_with(self, rewind: Seek) -> None:
        """The consumer's seek, once the consumer exists (faust's app is made after the
        processor; a backfill's consumer for each read): from then on a gap or lost
        commits at :data:`OFFSETS` are re-read, and :attr:`rereads` holds."""
        self._seek = rewind

    @property
    def rereads(self) -> bool:
        """True if a consumer's offsets can be rewound (a seek is given, position OFFSETS)."""
        return self._seek is not None and self._position == OFFSETS

    # ------------------------------------------------------------------ ownership
    async def assign(self, partitions: Iterable[int]) -> dict[int, int]:
        """Claim ``partitions`` (bump their epochs); returns the next offset to read."""
        resume = {}
        for p in sorted(set(partitions)):
            claim = await self.store.claim(p)
            self.claims[p] = claim
            self._locks.setdefault(p, asyncio.Lock())
            resume[p] = claim.offset + 1
        log.info("claimed partitions %s (resume at %s)", sorted(resume), resume)
        return resume

    def revoke(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.claims.pop(p, None)
            self.fences.pop(p, None)  # not ours any more: nothing to report for it

    def owned(self) -> list[int]:
        return sorted(self.claims)

    def lock(self, p: int) -> asyncio.Lock:
        """The lock every step on partition ``p`` holds (one batch, decay step or sweep
        step at a time); exists once ``p`` was assigned."""
        return self._locks[p]

    def all_locks(self) -> list[asyncio.Lock]:
        """Every partition's lock, in partition order (the order to take them all in)."""
        return [self._locks[p] for p in sorted(self._locks)]

    def forget_fences(self) -> None:
        """A new assignment: every partition in it is claimed again, none stays fenced."""
        self.fences.clear()

    def _fence(self, claim: Claim, what: str, exc: Fenced) -> None:
        """Drop ``claim``; if it was still this worker's current claim (no revoke came), the
        partition is fenced while assigned here: say so loudly, keep it for /health."""
        p = claim.partition
        if self.claims.get(p) is not claim:
            log.warning("%s dropped, partition moved: %s", what, exc)
            return
        self.claims.pop(p, None)
        self.fences[p] = str(exc)
        log.error(
            "partition %d fenced: %s (another writer claimed it); not applying it until the "
            "group assigns it again (rebalance or restart)",
            p,
            exc,
        )

    async def fenced(self, p: int, what: str, step: Callable[[Claim], Awaitable[T]]) -> T | None:
        """Run one load→apply→commit ``step`` under the partition's current claim: again
        on a version conflict; again under a new claim if Redis lost the partition's
        state; ``None`` (and forget that claim) if the partition moved to another worker."""
        while (claim := self.claims.get(p)) is not None:
            try:
                return await step(claim)
            except CommitConflict:
                self.stats.conflicts += 1
            except StateLost as exc:
                await self._reclaim(claim, str(exc))
            except Fenced as exc:
                self.stats.fenced_batches += 1
                self._fence(claim, what, exc)
                return None
        return None

    def check_epoch(self, claim: Claim, epoch: int | None) -> None:
        """Raise :class:`StateLost` if Redis's epoch went back or vanished, :class:`Fenced`
        if another writer claimed the partition since ``claim``."""
        if epoch == claim.epoch:
            return
        if epoch is None or epoch < claim.epoch:
            raise StateLost(
                f"partition {claim.partition}: redis has epoch {epoch}, this worker "
                f"claimed {claim.epoch}"
            )
        raise Fenced(
            f"partition {claim.partition}: epoch is {epoch}, this worker has {claim.epoch}"
        )

    async def _reclaim(self, claim: Claim, why: str) -> None:
        """Redis went back in time: claim again and re-read from what it holds."""
        p = claim.partition
        self.stats.state_lost += 1
        new = await self.store.claim(p)
        if self.claims.get(p) is claim:
            self.claims[p] = new
        self.committed.pop(p, None)
        log.error(
            "redis lost state of partition %d (%s): re-reading from offset %d",
            p,
            why,
            new.offset + 1,
        )
        if self._seek is not None:
            await self._seek(p, new.offset + 1)

    async def verify(self, p: int) -> None:
        """Catch Redis going back in time on a quiet partition (nothing else would)."""
        claim = self.claims.get(p)
        if claim is None or self._position != OFFSETS:
            return
        async with self._locks[p]:
            epoch, offset, _moved = await self.store.meta(p)
            try:
                self.check_epoch(claim, epoch)
            except StateLost as exc:
                await self._reclaim(claim, str(exc))
                return
            except Fenced as exc:  # a quiet partition: no batch would notice
                self._fence(claim, "check", exc)
                return
            last = self.committed.get(p)
            if last is not None and offset < last and self._seek is not None:
                self.stats.state_lost += 1
                self.committed[p] = offset
                log.error(
                    "redis lost commits of partition %d (offset %d < %d): re-reading",
                    p,
                    offset,
                    last,
                )
                await self._seek(p, offset + 1)

    async def rewind(self, p: int, offset: int) -> None:
        """Seek partition ``p``'s consumer back to ``offset`` (only where :attr:`rereads`)."""
        self.stats.rewinds += 1
        assert self._seek is not None
        await self._seek(p, offset)

    def gap(self, p: int, expect: int, first: int) -> bool:
        """True if the batch starts after the next offset Redis expects (its commits were
        lost, or a seek raced): re-read from ``expect`` instead. A gap that persists for
        10 s is a real hole in the log (compaction, transaction markers) and is accepted."""
        if self._seek is None or self._position != OFFSETS or first <= expect:
            self._gaps.pop(p, None)
            return False
        since = self._gaps.setdefault(p, (expect, time.monotonic()))
        if since[0] != expect:
            self._gaps[p] = (expect, time.monotonic())
        elif time.monotonic() - since[1] > 10.0:
            log.warning(
                "partition %d: offsets %d..%d are missing from the log; going on",
                p,
                expect,
                first - 1,
            )
            self._gaps.pop(p, None)
            return False
        return True


def fence_metrics(owned: Iterable[int], fences: Mapping[int, str]) -> dict[str, Family]:
    """``rfm_partition_fenced``: 1 for a partition fenced here, 0 for the ones owned."""
    flags = dict.fromkeys(owned, 0) | dict.fromkeys(fences, 1)
    return {
        "rfm_partition_fenced": (
            "gauge",
            "1 while a partition assigned here is fenced by another writer's claim "
            "(not applied until the next assignment); 0 for the ones it owns.",
            [(f'{{partition="{p}"}}', v) for p, v in sorted(flags.items())],
        )
    }
