"""decode → load → apply → commit, for one partition's slice of a batch; and the decay step.

Shared by the faust agent (live), the decay timer and the backfill reader: one path,
so an event and the passage of time change state the same way.

Per partition the order is:

1. Drop messages at or below the partition's committed offset (already applied:
   redelivery after a crash or rebalance).
2. Validate; rejected messages are published to the dead-letter topic and
   *awaited* before anything is committed, so a reject is never lost.
3. Apply the valid purchases to the loaded states (pure engine).
4. Commit states + due times + outbox + offset in one fenced atomic write.
5. Wake the outbox relay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from schemas.errors import CommitConflict, Fenced, InvalidEvent
from schemas.events import PurchaseEvent, parse_event
from schemas.money import to_units
from schemas.settings import Settings
from schemas.times import to_ms
from segments.engine import NEVER, Engine
from segments.model import CustomerState, Purchase, TransitionDraft
from state.store import Claim, RedisStore
from stream.clock import Clock
from stream.encode import TransitionEncoder, encode_dead_letter

__all__ = ["DeadLetterSink", "Msg", "Processor", "Stats"]

log = logging.getLogger(__name__)


class Msg(NamedTuple):
    """A consumed Kafka record, transport-neutral."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class DeadLetterSink(Protocol):
    async def publish(self, letters: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Publish (key, dead-letter JSON) pairs and wait until the broker has them."""
        ...


@dataclass(slots=True)
class Stats:
    """Counters the worker exposes (and the demo prints)."""

    events: int = 0
    duplicates_skipped: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    transitions: int = 0
    decays: int = 0
    fenced_batches: int = 0
    conflicts: int = 0


class Processor:
    """Applies batches for the partitions this worker currently owns."""

    def __init__(
        self,
        settings: Settings,
        store: RedisStore,
        engine: Engine,
        dead_letters: DeadLetterSink,
        clock: Clock,
        wall: Clock,
        mode: str = "live",
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine
        self.dead_letters = dead_letters
        self.clock = clock
        self.wall = wall
        self.encoder = TransitionEncoder(engine, settings.currency, mode)
        self.on_commit = on_commit or (lambda: None)
        self.claims: dict[int, Claim] = {}
        self.stats = Stats()
        self._locks: dict[int, asyncio.Lock] = {}

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

    def owned(self) -> list[int]:
        return sorted(self.claims)

    # ------------------------------------------------------------------ events
    async def process(self, msgs: Sequence[Msg]) -> None:
        by_partition: dict[int, list[Msg]] = {}
        for m in msgs:
            by_partition.setdefault(m.partition, []).append(m)
        for p, part_msgs in by_partition.items():
            await self.process_partition(p, part_msgs)

    async def process_partition(self, p: int, msgs: list[Msg]) -> None:
        claim = self.claims.get(p)
        if claim is None:
            log.debug("skipping %d messages of unowned partition %d", len(msgs), p)
            return
        good: list[tuple[Msg, PurchaseEvent]] = []
        bad: list[tuple[Msg, InvalidEvent]] = []
        now = self.wall.now_ms()
        for m in msgs:
            try:
                good.append((m, self._validate(m, now)))
            except InvalidEvent as exc:
                bad.append((m, exc))
        async with self._locks[p]:
            while True:
                try:
                    await self._commit_events(claim, good, bad)
                except CommitConflict:
                    self.stats.conflicts += 1
                    continue
                except Fenced as exc:
                    self.stats.fenced_batches += 1
                    self.claims.pop(p, None)
                    log.warning("batch dropped, partition moved: %s", exc)
                return

    def _validate(self, m: Msg, wall_ms: int) -> PurchaseEvent:
        ev = parse_event(m.value)
        if not isinstance(ev, PurchaseEvent):
            raise InvalidEvent(
                "RefundNotSupported",
                "refund events are not applied by this version yet; replay them from the DLQ",
            )
        if ev.currency != self.settings.currency:
            raise InvalidEvent(
                "CurrencyMismatch",
                f"currency: {ev.currency} is not the configured {self.settings.currency}",
            )
        if to_ms(ev.occurred_at) > wall_ms + self.settings.max_future_skew:
            raise InvalidEvent(
                "FutureEvent",
                f"occurred_at: {ev.occurred_at.isoformat()} is further in the future than "
                f"the allowed skew of {self.settings.max_future_skew} ms",
            )
        return ev

    async def _commit_events(
        self,
        claim: Claim,
        good: list[tuple[Msg, PurchaseEvent]],
        bad: list[tuple[Msg, InvalidEvent]],
    ) -> None:
        p = claim.partition
        ids = list(dict.fromkeys(ev.customer_id for _, ev in good))
        loaded = await self.store.load(p, ids)
        if loaded.epoch != claim.epoch:
            raise Fenced(f"partition {p}: epoch is {loaded.epoch}, this worker has {claim.epoch}")
        fresh = [(m, ev) for m, ev in good if m.offset > loaded.offset]
        rejects = [(m, exc) for m, exc in bad if m.offset > loaded.offset]
        skipped = len(good) + len(bad) - len(fresh) - len(rejects)
        last = max((m.offset for m, _ in [*fresh, *rejects]), default=None)
        if last is None:
            self.stats.duplicates_skipped += skipped
            return
        await self._dead_letter(rejects)
        purchases = [
            Purchase(ev.customer_id, ev.event_id, to_ms(ev.occurred_at), to_units(ev.amount))
            for _, ev in fresh
        ]
        states = loaded.states
        drafts = self.engine.apply_events(states, purchases)
        touched = [states[c] for c in dict.fromkeys(p.customer_id for p in purchases)]
        await self._commit(claim, loaded.version, touched, drafts, offset=last)
        self.stats.duplicates_skipped += skipped
        self.stats.events += len(fresh)

    async def _dead_letter(self, rejects: list[tuple[Msg, InvalidEvent]]) -> None:
        if not rejects:
            return
        now = self.wall.now_ms()
        letters = [
            (
                m.key,
                encode_dead_letter(
                    topic=self.settings.purchases_topic,
                    partition=m.partition,
                    offset=m.offset,
                    key=m.key,
                    value=m.value,
                    error_class=exc.error_class,
                    error_message=exc.message,
                    failed_ms=now,
                ),
            )
            for m, exc in rejects
        ]
        await self.dead_letters.publish(letters)
        for _, exc in rejects:
            self.stats.dead_letters[exc.error_class] = (
                self.stats.dead_letters.get(exc.error_class, 0) + 1
            )
        for m, exc in rejects:
            log.warning("dead-lettered p%d@%d: %s: %s", m.partition, m.offset, exc.error_class, exc)

    async def _commit(
        self,
        claim: Claim,
        version: int,
        states: list[CustomerState],
        drafts: list[TransitionDraft],
        offset: int | None,
        unschedule: Sequence[str] = (),
    ) -> None:
        due = dict.fromkeys(unschedule, NEVER)
        due.update(
            zip((s.customer_id for s in states), self.engine.next_due(states).tolist(), strict=True)
        )
        emitted = self.wall.now_ms()
        outbox = [(d.customer_id, self.encoder.encode(d, emitted)) for d in drafts]
        await self.store.commit(
            claim.partition, claim.epoch, version, states, due, outbox, offset=offset
        )
        self.stats.transitions += len(drafts)
        if drafts:
            self.on_commit()

    # ------------------------------------------------------------------ time
    async def run_due(self, p: int) -> int:
        """Fire every decay due by the clock for partition ``p``; returns customers handled."""
        total = 0
        while (claim := self.claims.get(p)) is not None:
            now = self.clock.now_ms()
            async with self._locks[p]:
                ids = await self.store.due(p, now, self.settings.decay_batch)
                if not ids:
                    return total
                try:
                    await self._commit_due(claim, ids, now)
                except CommitConflict:
                    self.stats.conflicts += 1
                    continue
                except Fenced as exc:
                    self.stats.fenced_batches += 1
                    self.claims.pop(p, None)
                    log.warning("decay step dropped, partition moved: %s", exc)
                    return total
            total += len(ids)
            if len(ids) < self.settings.decay_batch:
                return total
        return total

    async def _commit_due(self, claim: Claim, ids: list[str], now: int) -> None:
        loaded = await self.store.load(claim.partition, ids)
        if loaded.epoch != claim.epoch:
            raise Fenced(f"partition {claim.partition}: epoch moved to {loaded.epoch}")
        states = [loaded.states.get(c) or CustomerState(c) for c in ids]
        drafts = self.engine.advance(states, now)
        known = [s for s in states if s.has_purchased]
        stale = [s.customer_id for s in states if not s.has_purchased]
        await self._commit(claim, loaded.version, known, drafts, offset=None, unschedule=stale)
        self.stats.decays += len(drafts)


async def with_backoff(
    what: str, fn: Callable[[], Awaitable[None]], retriable: tuple[type[BaseException], ...]
) -> None:
    """Run ``fn`` until it succeeds, sleeping 0.1 s → 5 s between retriable failures."""
    delay = 0.1
    while True:
        try:
            await fn()
        except retriable as exc:
            log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        else:
            return
