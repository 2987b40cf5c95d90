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

If 3-4 raise something that is not an infrastructure error, the safety net
(:mod:`stream.apply.safety_net`) applies the batch again piece by piece and dead-letters the
record(s) at fault as ``ProcessingError``: no record stops a partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

from schemas.settings import Settings
from segments.engine import Engine
from segments.model import NEVER, CustomerState, Event, Outcome
from segments.rules import load_checked_rules, value_policy_of
from segments.winback import Before, Lapsed, keep_open, lapsed_of, moves
from state.store import Claim, Loaded, RedisStore
from stream.apply.clock import Clock, lagging
from stream.apply.dead_letters import DeadLetters
from stream.apply.decays import Decays
from stream.apply.encode import TransitionEncoder
from stream.apply.figures import Figures
from stream.apply.messages import Batch, Msg
from stream.apply.modes import OFFSETS, Mode, Position
from stream.apply.outputs import Outputs
from stream.apply.position import PositionGuard, Seek
from stream.apply.routing import Window, partitioner, sort_batch
from stream.apply.safety_net import is_record_fault, salvage
from stream.apply.side_by_side import all_of
from stream.apply.stats import Stats
from stream.apply.sweeps import Sweeps
from stream.apply.tallies import tally
from stream.apply.validate import Validator
from stream.apply.winback import winback_counters

__all__ = ["Outputs", "Processor", "Stats", "Window"]

log = logging.getLogger(__name__)


class Processor:
    """Applies batches for the partitions this worker currently owns.

    Its collaborators: a :class:`~stream.apply.position.PositionGuard` (claims, epochs,
    locks, the reading position and rewinds: :attr:`guard`, where the consumer's seek is
    given once it exists) and :class:`~stream.apply.sweeps.Sweeps` (re-evaluation after a
    rules or cut-point change, committing through :meth:`settle`).
    """

    def __init__(
        self,
        settings: Settings,
        store: RedisStore,
        engine: Engine,
        outputs: Outputs,
        clock: Clock,
        wall: Clock,
        mode: Mode = "live",
        on_commit: Callable[[int], None] | None = None,
        emit: bool = True,
        *,
        position: Position = OFFSETS,
        partition_count: int | None = None,
        window: Window = (None, None),
        rewind: Seek | None = None,
        lapsed: Lapsed | None = None,
    ) -> None:
        self.settings = settings
        self.lapsed: Lapsed = lapsed_of(load_checked_rules(settings)) if lapsed is None else lapsed
        """The segments win-back counts entries into and returns from (the rules file's
        ``lapsed = true``; not part of the rules version, so read once here)."""
        self.store = store
        self.engine = engine
        self.stats = Stats()
        self.letters = DeadLetters(outputs, settings.purchases_topic, wall, self.stats)
        self.validator = Validator(settings)
        self._home = partitioner(settings.partitioner)
        self._partition_count = partition_count
        self.clock = lagging(clock, settings.decay_grace if mode == "live" else 0)
        """The as-of clock of time-driven work (the decay timer, sweeps, the schedule
        gauges): live, ``clock`` less ``RFM_DECAY_GRACE`` (:func:`~stream.apply.clock.lagging`).
        A decay due at ``t`` fires once this reads ``t``, effective at ``t``; an event
        dated before ``t`` arriving meanwhile is applied first (issue #20). A backfill's
        decays fire at its event-time watermark, with nothing left to arrive: no grace."""
        self.wall = wall
        self.mode: Mode = mode
        self.use(engine)
        self.emit = emit
        """Write transitions to the outbox (a backfill may only count them)."""
        self.window: Window = window
        """Event-time range [since, until) to apply; events outside are skipped."""
        self.on_commit = on_commit or (lambda p: None)
        """Called with the partition after a commit that wrote transitions to its outbox."""
        self.guard = PositionGuard(store, self.stats, position, rewind)
        """Claims, epochs, locks and rewinds of the owned partitions."""
        self.sweeps = Sweeps(settings, store, self.stats, self.guard, self)
        self.decays = Decays(settings, store, self.stats, self.guard, self)
        """The decay step: what is due by now, committed through :meth:`settle`."""

    @property
    def partition_count(self) -> int | None:
        """The purchases topic's partition count, once known; enables forwarding."""
        return self._partition_count

    def set_partition_count(self, n: int) -> None:
        """The purchases topic's partition count, once read from the broker (the live
        worker reads it after the processor exists): misrouted records are forwarded
        from the next batch on."""
        self._partition_count = n

    @property
    def position(self) -> Position:
        """Meta field holding this reader's position: Kafka offsets, staged records, or a
        file's lines (:data:`~stream.apply.modes.Position`)."""
        return self.guard.position

    @property
    def claims(self) -> dict[int, Claim]:
        """Partition -> this worker's current claim."""
        return self.guard.claims

    @property
    def fences(self) -> dict[int, str]:
        """Partitions assigned here but fenced by a newer claim -> why (for /health)."""
        return self.guard.fences

    async def sweep(self, p: int, now_ms: int) -> bool:
        """One re-evaluation step of partition ``p`` (:meth:`Sweeps.sweep`); True once done."""
        return await self.sweeps.sweep(p, now_ms)

    @property
    def outputs(self) -> Outputs:
        """Where dead letters and forwarded records go (its dead-letter side is
        :attr:`letters`'; replacing it replaces both)."""
        return self.letters.outputs

    @outputs.setter
    def outputs(self, outputs: Outputs) -> None:
        self.letters.outputs = outputs

    def use(self, engine: Engine) -> None:
        """Apply ``engine``'s rules and cut points from the next batch on."""
        self.engine = engine
        self.encoder = TransitionEncoder(
            engine, self.settings.currency, self.mode, value_policy_of(self.settings)
        )
        self.figures = Figures(self.settings, engine)
        """The quantile-summary and worth deltas of every change, and each state's CLV."""

    async def swap(self, engine: Engine) -> None:
        """:meth:`use` between batches: waits for every partition's in-flight work."""
        locks = self.guard.all_locks()
        for lock in locks:
            await lock.acquire()
        try:
            self.use(engine)
        finally:
            for lock in locks:
                lock.release()

    def sweep_target(self) -> str:
        """What every customer of a partition must have been re-evaluated under."""
        return f"{self.engine.rules_version}/{self.engine.cut_version or 0}"

    async def settle(
        self,
        claim: Claim,
        version: int,
        states: list[CustomerState],
        change: Callable[[], Outcome],
        offset: int | str | None,
        unschedule: Sequence[str] = (),
        position: Position | None = None,
        before: dict[str, Before] | None = None,
    ) -> Outcome:
        """The one way a change to ``states`` reaches Redis, whoever makes it (events, the
        decay timer, a sweep): ``change`` run with the figures it moves
        (:meth:`~stream.apply.figures.Figures.summarised`), what it rejected dead-lettered,
        then the states with their due times, the outbox of its drafts (if emitting), the
        figures and ``offset`` at ``position`` (default: :attr:`position`) in one fenced
        write (:meth:`RedisStore.commit`); then they are counted and the relay woken.
        ``before``: customer -> spend and history before this change's events (win-back).
        Returns the outcome."""
        outcome, deltas = self.figures.summarised(states, change)
        await self.letters.rejected(outcome.rejected)
        drafts = outcome.transitions
        due = dict.fromkeys(unschedule, NEVER)
        due.update(
            zip((s.customer_id for s in states), self.engine.next_due(states).tolist(), strict=True)
        )
        emitted = self.wall.now_ms()
        published = drafts if self.emit else []
        if not self.settings.publish_recalibrations:
            published = [d for d in published if d.cause != "recalibration"]
        payloads = self.encoder.encode_many(published, emitted)
        outbox = [(d.customer_id, b) for d, b in zip(published, payloads, strict=True)]
        counters, expire_at = tally(drafts, self.settings.matrix_retention)
        won = moves(drafts, states, self.lapsed, before)
        keep_open(won, states)  # open win-back returns are committed with the states
        if won:
            more, more_expire = winback_counters(won, self.settings.matrix_retention)
            counters, expire_at = counters | more, expire_at | more_expire
        counters.update(deltas.worth)
        await self.store.commit(
            claim.partition,
            claim.epoch,
            version,
            states,
            due,
            outbox,
            offset,
            position or self.position,
            deltas.summaries,
            counters,
            expire_at,
        )
        self.stats.transitions += len(drafts)
        flows = self.stats.flows
        for d in drafts:
            k = (d.scheme, d.from_segment, d.to_segment)
            flows[k] = flows.get(k, 0) + 1
        if drafts:
            self.on_commit(claim.partition)
        return outcome

    # ------------------------------------------------------------------ ownership
    async def assign(self, partitions: Iterable[int]) -> dict[int, int]:
        """Claim ``partitions`` (bump their epochs); returns the next offset to read."""
        return await self.guard.assign(partitions)

    def applied_offset(self, p: int) -> int | None:
        """The last offset this processor committed for ``p`` (None: none yet)."""
        return self.guard.committed.get(p)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Forget ``partitions`` (moved to another worker): their claims and fences."""
        self.guard.revoke(partitions)

    def owned(self) -> list[int]:
        """The partitions this processor holds a claim on, in order."""
        return self.guard.owned()

    # ------------------------------------------------------------------ events
    async def process(self, msgs: Sequence[Msg]) -> None:
        """Apply a batch, its partitions side by side
        (:func:`~stream.apply.side_by_side.all_of`)."""
        by_partition: dict[int, list[Msg]] = {}
        for m in msgs:
            by_partition.setdefault(m.partition, []).append(m)
        await all_of(self.process_partition(p, part) for p, part in by_partition.items())

    async def process_partition(self, p: int, msgs: list[Msg]) -> int | None:
        """Apply one partition's messages; returns the latest event time among them."""
        claim = self.claims.get(p)
        if claim is None:
            log.debug("skipping %d messages of unowned partition %d", len(msgs), p)
            return None
        started = time.perf_counter()
        # validate and route each message: apply here, forward, skip or dead-letter
        event, n = self.validator.event, self.partition_count
        batch = sort_batch(p, msgs, event, self.wall.now_ms(), self._home, n, self.window)
        async with self.guard.lock(p):
            await self.guard.fenced(p, "batch", lambda c: self._commit_events(c, batch))
        self.stats.observe_batch(time.perf_counter() - started)
        return max((ev.occurred_ms for _, ev in batch.good), default=None)

    async def _commit_events(self, claim: Claim, batch: Batch) -> None:
        p = claim.partition
        ids = list(dict.fromkeys(ev.customer_id for _, ev in batch.good))
        loaded = await self.store.load(p, ids, self.position)
        self.guard.check_epoch(claim, loaded.epoch)
        fresh = batch.after(loaded.offset)
        if fresh.last is None:
            self.stats.duplicates_skipped += batch.size
            return
        expect = loaded.offset + 1
        if self.guard.gap(p, expect, fresh.first):
            log.warning(
                "partition %d: batch starts at %d but redis expects %d: re-reading",
                p,
                fresh.first,
                expect,
            )
            await self.guard.rewind(p, expect)
            return
        reread_from = None
        if self.guard.rereads:
            # after a rewind, records fetched from the old position can share a batch with
            # re-read ones: apply only the unbroken run of offsets, in offset order
            # from the first fresh offset: equal to `expect` unless a lasting hole was accepted
            fresh, reread_from = fresh.unbroken_from(fresh.first)
        await self.letters.send([(m, cls, msg) for m, cls, msg in fresh.bad])
        if fresh.misrouted:
            await self.outputs.forward([(home, m.key, m.value) for m, home in fresh.misrouted])
        failed = 0
        try:
            outcome = await self._apply(claim, loaded, fresh.good, fresh.last)
        except Exception as exc:
            if not is_record_fault(exc):
                raise
            outcome, failed = await salvage(
                p, fresh, exc, lambda piece, last: self._reapply(claim, piece, last), self.letters
            )
        if self.position == OFFSETS:
            self.guard.committed[p] = fresh.last
        if reread_from is not None:
            log.warning(
                "partition %d: batch had a hole after offset %d: re-reading from there",
                p,
                reread_from - 1,
            )
            await self.guard.rewind(p, reread_from)
        self.stats.duplicates_skipped += batch.size - fresh.size
        self.stats.duplicate_events += outcome.duplicates
        self.stats.forwarded += len(fresh.misrouted)
        self.stats.events += len(fresh.good) - failed

    async def _apply(
        self, claim: Claim, loaded: Loaded, good: Sequence[tuple[Msg, Event]], last: int | None
    ) -> Outcome:
        """Apply ``good`` to the ``loaded`` states (in place) and commit them with the
        partition's offset at ``last`` (None: the offset stays)."""
        states = loaded.states
        touched = [
            states.setdefault(c, CustomerState(c))
            for c in dict.fromkeys(ev.customer_id for _, ev in good)
        ]
        # win-back reads the spend and history before the events; with no lapsed segment
        # in the rules nothing does (:func:`moves` returns at once): skip the copies
        before = (
            {s.customer_id: Before(s.monetary, list(s.history)) for s in touched}
            if self.lapsed
            else None
        )
        return await self.settle(
            claim,
            loaded.version,
            touched,
            lambda: self.engine.apply_events(states, [ev for _, ev in good]),
            last,
            before=before,
        )

    async def _reapply(self, claim: Claim, good: Sequence[tuple[Msg, Event]], last: int) -> Outcome:
        """:meth:`_apply` on states loaded afresh, of ``good`` past Redis's offset, if
        that offset is before ``last`` (else it was all committed already)."""
        ids = list(dict.fromkeys(ev.customer_id for _, ev in good))
        loaded = await self.store.load(claim.partition, ids, self.position)
        self.guard.check_epoch(claim, loaded.epoch)
        if loaded.offset >= last:
            return Outcome()
        return await self._apply(
            claim, loaded, [x for x in good if x[0].offset > loaded.offset], last
        )

    # ------------------------------------------------------------------ time
    async def run_due(self, p: int, now_ms: int | None = None) -> int:
        """Fire everything due for partition ``p`` by ``now_ms``
        (:meth:`~stream.apply.decays.Decays.run_due`); returns how many customers were
        handled."""
        return await self.decays.run_due(p, now_ms)
