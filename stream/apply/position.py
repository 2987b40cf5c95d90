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
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar

from schemas.errors import CommitConflict, Fenced, StateLost
from state.store import Claim, RedisStore

if TYPE_CHECKING:
    from stream.apply.stats import Family, Stats

__all__ = ["PositionGuard", "fence_metrics"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class PositionGuard:
    """Mixin of :class:`~stream.apply.processor.Processor`: claims, epochs, rewinds."""

    claims: dict[int, Claim]
    stats: Stats
    store: RedisStore
    position: str
    rewind: Callable[[int, int], Awaitable[None]] | None
    _locks: dict[int, asyncio.Lock]
    _committed: dict[int, int]
    _gaps: dict[int, tuple[int, float]]

    @property
    def fences(self) -> dict[int, str]:
        """Partitions still assigned here whose claim a newer epoch fenced out -> why.

        Cleared by :meth:`forget_fences` on every assignment (which claims anew)."""
        try:
            return self._fences
        except AttributeError:
            self._fences: dict[int, str] = {}
            return self._fences

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

    async def _fenced(self, p: int, what: str, step: Callable[[Claim], Awaitable[T]]) -> T | None:
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

    def _check_epoch(self, claim: Claim, epoch: int | None) -> None:
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
        self._committed.pop(p, None)
        log.error(
            "redis lost state of partition %d (%s): re-reading from offset %d",
            p,
            why,
            new.offset + 1,
        )
        if self.rewind is not None:
            await self.rewind(p, new.offset + 1)

    async def verify(self, p: int) -> None:
        """Catch Redis going back in time on a quiet partition (nothing else would)."""
        claim = self.claims.get(p)
        if claim is None or self.position != "off":
            return
        async with self._locks[p]:
            epoch, offset, _moved = await self.store.meta(p)
            try:
                self._check_epoch(claim, epoch)
            except StateLost as exc:
                await self._reclaim(claim, str(exc))
                return
            except Fenced as exc:  # a quiet partition: no batch would notice
                self._fence(claim, "check", exc)
                return
            last = self._committed.get(p)
            if last is not None and offset < last and self.rewind is not None:
                self.stats.state_lost += 1
                self._committed[p] = offset
                log.error(
                    "redis lost commits of partition %d (offset %d < %d): re-reading",
                    p,
                    offset,
                    last,
                )
                await self.rewind(p, offset + 1)

    async def _rewind(self, p: int, offset: int) -> None:
        self.stats.rewinds += 1
        assert self.rewind is not None
        await self.rewind(p, offset)

    def _gap(self, p: int, expect: int, first: int) -> bool:
        """True if the batch starts after the next offset Redis expects (its commits were
        lost, or a seek raced): re-read from ``expect`` instead. A gap that persists for
        10 s is a real hole in the log (compaction, transaction markers) and is accepted."""
        if self.rewind is None or self.position != "off" or first <= expect:
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
