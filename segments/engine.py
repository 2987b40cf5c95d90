"""Apply purchases, refunds and the passage of time to customer states.

Pure and synchronous: no clock, no I/O. The stream hands in states it loaded and
events in offset order; the engine mutates the states and returns what changed.

The timeline rule that makes the output independent of how work is split between
the event path and the timer:

1. Before an event with event time ``o`` is applied, everything due at or before
   ``asof = max(o, cursor)`` happens first, each at its own due time (recency
   decays; held refunds whose purchase never came are rejected).
2. The event is applied and every scheme re-classified at ``asof``; the cursor
   moves to ``asof``.
3. ``advance(now)`` (the timer, or the end of a replay) does every due step up to
   ``now``, one at a time, and moves the cursor to each due time.

Effectively-once per customer: an event id already applied within
``Policy.dedupe_ms`` is a duplicate and changes nothing. Refunds retract what their
order still holds (frequency too, once the order is fully refunded); a refund that
arrives before its purchase is held for ``Policy.refund_hold_ms``.

Work is vectorised per *round*: round k holds the k-th event of every customer in
the batch, so the common case (one event per customer per batch) is one round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import cast

import numpy as np

from segments import refunds, windows
from segments.axes import TIME_AXES
from segments.causes import SWEEP, stamp_of, time_cause
from segments.due import next_due
from segments.fold import FoldRules, fold
from segments.grid import GridScheme, merged_time_edges
from segments.limits import Limits, forget
from segments.model import (
    NONE,
    Columns,
    CustomerState,
    Event,
    Outcome,
    Purchase,
    TransitionDraft,
)
from segments.policy import Policy, event_digest
from segments.purchases import purchase
from segments.quantiles import layout
from segments.scheme import Scheme
from segments.value import ValueModel

__all__ = ["Engine", "Policy", "event_digest"]


class Engine:
    """Applies events and time to states under a fixed set of schemes."""

    def __init__(
        self, schemes: Sequence[Scheme], policy: Policy | None = None, limits: Limits | None = None
    ) -> None:
        if not schemes:
            raise ValueError("at least one scheme is needed")
        names = [s.name for s in schemes]
        if len(set(names)) != len(names):
            raise ValueError(f"scheme names must be unique: {names}")
        self.schemes = tuple(schemes)
        self.policy = policy or Policy()
        self.limits = limits or Limits()
        """What one customer's state may hold (:mod:`segments.limits`)."""
        edges = sorted({e for s in schemes for e in s.recency_edges_ms()})
        self._edges = np.array(edges, dtype=np.int64)
        self._recency_edges = tuple(edges)
        self._windows = tuple(sorted({w for s in schemes for w in s.window_edges_ms()}))
        self._wmax = max(self._windows, default=0)
        """Longest rolling window: purchase days older than it are forgotten."""
        text = "|".join(s.describe() for s in schemes)
        if summaries := layout(schemes):  # their bucketings: new ones, new summaries
            text += f"|{summaries}"
        self.rules_version = hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
        self.cut_version: int | None = None
        """Version of the quantile cut points the schemes were built with (if any)."""
        self.summary_since: int | None = None
        """The cut version that began these rules' era of quantile summaries (None: no
        era recorded), :class:`segments.cut_points.Era`."""
        self.model: ValueModel | None = None
        """The base's model in that version (P(alive), CLV), if one was fitted."""
        self._timed = {
            s.name: any(a.name in TIME_AXES for a in getattr(s, "axes", ())) for s in schemes
        }
        """Schemes with cadence or P(alive) axes: per-customer due times (``Scheme.due_ms``)."""
        self._time_edges = merged_time_edges(schemes)
        """The grid schemes' timed axes, merged: one due-time computation per axis."""
        self._timed_other = tuple(
            s for s in schemes if self._timed[s.name] and not isinstance(s, GridScheme)
        )
        """Timed schemes of other kinds, asked one by one (``Scheme.due_ms``)."""
        self._versioned = frozenset(s.name for s in schemes if getattr(s, "versioned", False))
        """Schemes a new cut-point version can move (quantile or P(alive) axes)."""
        self.reads_model = any(getattr(s, "reads_model", False) for s in schemes)
        """Some scheme reads the base's model (P(alive) axis, value figures): every
        cut-point version refits it."""
        can_fold = not self._timed_other and all(
            isinstance(s, GridScheme) for s in schemes if getattr(s, "hysteresis", 0)
        )
        self.can_fold = can_fold
        """Every due time is one :mod:`segments.fold_walk` knows and every margin a grid's:
        the fold gives the rounds' outcome (the only sets :attr:`foldable` may be set for)."""
        self._foldable = can_fold and (
            not self._windows or bool(self._time_edges) or any(self._hysteresis(schemes))
        )
        self.replay = False
        """An event-time replay (backfill): the latest event time of a batch is the clock,
        so after applying it, what is due by then for its customers fires as well — the
        transitions the replay's decay pass would fire later, at the same due times (a
        timer and catch-up give the same history), without loading them all again."""

    @property
    def foldable(self) -> bool:
        """Batches go through :func:`segments.fold.fold` instead of the rounds. It *can*
        whenever every due time is one :mod:`segments.fold_walk` knows (recency, windows,
        held refunds, grid schemes' cadence and P(alive) cuts) and every margin is a
        grid's; it is *chosen* where it is the faster path, measured on
        ``bench.bench_schemes``' workload (60,000 events, 30,000 customers, fold vs
        rounds interleaved in one process): without rolling windows (as before), and with
        timed axes or a margin, whose due times multiply the rounds' passes and make each
        one dear (every shipped scheme, live batches: fold 11.2 s, rounds 23.8 s). A set
        with windows but neither (the four RFM schemes with the pyramid's 365 days) pays
        the walk's per-customer Python more than the rounds' few vectorised passes (live:
        fold 6.4 s, rounds 4.5 s) and keeps the rounds. Both give the same outcome (the
        rounds are the reference: tests set this to compare)."""
        return self._foldable

    @foldable.setter
    def foldable(self, on: bool) -> None:
        """Tests set it to compare the paths; a set the fold can't carry (a scheme of
        another kind with its own due times, a margin on one) would lose those due times
        silently, so turning it on there is refused."""
        if on and not self.can_fold:
            raise ValueError("this scheme set can't take the fold path (Engine.can_fold)")
        self._foldable = on

    @staticmethod
    def _hysteresis(schemes: Sequence[Scheme]) -> list[float]:
        return [h for s in schemes if (h := getattr(s, "hysteresis", 0))]

    # ------------------------------------------------------------------ due times
    def next_due(self, states: Sequence[CustomerState]) -> np.ndarray:
        """:func:`segments.due.next_due` of ``states`` under these schemes: the earliest
        event time after each cursor at which something changes by time alone."""
        return next_due(states, self._edges, self._timed_other, self._time_edges, self._windows)

    # ------------------------------------------------------------------ events
    def apply_events(self, states: dict[str, CustomerState], events: Iterable[Event]) -> Outcome:
        """Apply ``events`` (in offset order) to ``states`` (created if missing)."""
        queues: dict[str, list[Event]] = {}
        for ev in events:
            queues.setdefault(ev.customer_id, []).append(ev)
            if ev.customer_id not in states:
                states[ev.customer_id] = CustomerState(ev.customer_id)
        latest = (
            max((e.occurred_ms for q in queues.values() for e in q), default=0)
            if self.replay
            else 0
        )
        if self.foldable:
            items = [(states[c], q) for c, q in queues.items()]
            return fold(self.fold_rules(), items, [latest] * len(items) if self.replay else None)
        out = Outcome()
        # longest queues first: round k is a prefix of this list (skewed batches have a
        # few customers with many events and many with one)
        ordered = sorted(queues.values(), key=len, reverse=True)
        depth = len(ordered[0]) if ordered else 0
        width = len(ordered)
        for k in range(depth):
            while len(ordered[width - 1]) <= k:
                width -= 1
            out.extend(self._apply_round(states, [q[k] for q in ordered[:width]]))
        if self.replay:
            out.extend(self.advance([states[c] for c in queues], latest))
        return out

    def _apply_round(self, states: dict[str, CustomerState], events: list[Event]) -> Outcome:
        sts = [states[e.customer_id] for e in events]
        n = len(sts)
        occurred = np.fromiter((e.occurred_ms for e in events), np.int64, n)
        cursor = np.fromiter((s.cursor_ms for s in sts), np.int64, n)
        asof = np.maximum(occurred, cursor)
        out = self._due_until(sts, asof)
        changed: list[int] = []
        causes: list[str] = []
        for i, (s, e, t) in enumerate(zip(sts, events, asof.tolist(), strict=True)):
            digest = event_digest(e.event_id)
            if digest in s.seen:
                out.duplicates += 1
                continue
            was_new = not s.has_purchased
            if isinstance(e, Purchase):
                out.rejected.extend(purchase(s, e, self._wmax))
                cause = "first_purchase" if was_new else "purchase"
            else:
                rejection = refunds.refund(
                    s, e, t, self.policy.refund_hold_ms, self._wmax, self.limits
                )
                if rejection is not None:
                    out.rejected.append(rejection)
                    continue
                cause = "refund"
            s.seen[digest] = t
            s.cursor_ms = t
            forget(s, t, self.policy, self.limits, self._wmax)
            changed.append(i)
            causes.append(cause)
        if changed:
            out.transitions.extend(
                self._reclassify(
                    [sts[i] for i in changed],
                    asof[changed],
                    causes,
                    [events[i].event_id for i in changed],
                )
            )
        return out

    # ------------------------------------------------------------------ time
    def advance(self, states: Sequence[CustomerState], now_ms: int) -> Outcome:
        """Do everything due at or before ``now_ms`` for ``states``."""
        sts = list(states)
        if self.foldable:
            return fold(self.fold_rules(), [(s, ()) for s in sts], [now_ms] * len(sts))
        return self._due_until(sts, np.full(len(sts), now_ms, dtype=np.int64))

    def _due_until(self, sts: list[CustomerState], limit: np.ndarray) -> Outcome:
        out = Outcome()
        idx = np.arange(len(sts))
        while idx.size:
            subset = [sts[i] for i in idx]
            due = self.next_due(subset)
            mask = due <= limit[idx]
            if not mask.any():
                break
            idx, due = idx[mask], due[mask]
            subset = [sts[i] for i in idx]
            for s, t in zip(subset, due.tolist(), strict=True):
                s.cursor_ms = t
                if s.held:
                    out.rejected.extend(refunds.expire_held(s, t, self.policy.refund_hold_ms))
                if s.days:
                    windows.prune(s, t, self._wmax)
            out.transitions.extend(
                self._reclassify(subset, due, ["recency_decay"] * len(subset), None)
            )
        return out

    # ------------------------------------------------------------------ classify
    @property
    def stamp(self) -> str:
        """What a customer evaluated under these rules and cut points is stamped with."""
        return stamp_of(self.rules_version, self.cut_version)

    def fold_rules(self) -> FoldRules:
        """What :func:`segments.fold.fold` applies a batch under, as of now (the cut-point
        version moves with each recalibration, so one is made per batch)."""
        return FoldRules(
            schemes=self.schemes,
            policy=self.policy,
            limits=self.limits,
            recency_edges=self._recency_edges,
            window_ms=self._wmax,
            rules_version=self.rules_version,
            cut_version=self.cut_version,
            versioned=self._versioned,
            windows=self._windows,
            time_edges=tuple(self._time_edges),
        )

    def _time_cause(self, s: CustomerState, scheme: Scheme, trigger: str) -> str:
        """:func:`~segments.causes.time_cause` of ``s`` moving in ``scheme``."""
        name = scheme.name
        return time_cause(
            s.stamp,
            s.segments.get(name, NONE),
            trigger,
            self.rules_version,
            str(self.cut_version or 0),
            name in self._versioned,
        )

    def _reclassify(
        self,
        sts: list[CustomerState],
        asof: np.ndarray,
        causes: list[str],
        event_ids: list[str] | None,
    ) -> list[TransitionDraft]:
        cols = Columns.of(windows.Batch(sts))  # no state changes until every scheme is done
        active = cols.frequency > 0
        all_active = bool(active.all())
        out: list[TransitionDraft] = []
        sts_by_id = {s.customer_id: s for s in sts}
        for scheme in self.schemes:
            if getattr(scheme, "hysteresis", 0):
                prev_keys = [s.segments.get(scheme.name, NONE) for s in sts]
                # hysteresis is GridScheme's: its classify also takes the current keys
                found = cast(GridScheme, scheme).classify(cols, asof, prev_keys)
            else:
                found = scheme.classify(cols, asof)
            keys = (found if all_active else np.where(active, found, NONE)).tolist()
            scores: dict[str, list[int]] | None = None
            name = scheme.name
            moved = [
                i
                for i, (s, key) in enumerate(zip(sts, keys, strict=True))
                if s.segments.get(name, NONE) != key
            ]
            for i in moved:
                s, key = sts[i], keys[i]
                prev = s.segments.get(name, NONE)
                if scores is None:
                    scores = {a: v.tolist() for a, v in scheme.scores(cols, asof).items()}
                cause = causes[i]
                if cause in ("recency_decay", SWEEP):
                    cause = self._time_cause(s, scheme, cause)
                s.segments[scheme.name] = key  # NONE too: Redis HSET can't delete fields
                out.append(
                    TransitionDraft(
                        customer_id=s.customer_id,
                        scheme=scheme.name,
                        from_segment=prev,
                        to_segment=key,
                        cause=cause,
                        effective_ms=int(asof[i]),
                        event_id=event_ids[i] if event_ids else None,
                        frequency=s.frequency,
                        monetary=s.monetary,
                        first_ms=s.first_ms,
                        last_ms=s.last_ms,
                        scores={a: v[i] for a, v in scores.items()},
                    )
                )
        stamp = self.stamp
        for s in sts:
            s.stamp = stamp
        keep = self.policy.history
        for d in out:
            h = sts_by_id[d.customer_id].history
            h.append([d.scheme, d.from_segment, d.to_segment, d.cause, d.effective_ms])
            if len(h) > keep:
                del h[: len(h) - keep]
        return out

    def reevaluate(self, states: Sequence[CustomerState], asof_ms: int) -> Outcome:
        """Re-classify ``states`` at ``asof_ms`` under these rules (a rules change or new
        cut points), after catching up what was due before. Moves show ``rules_change``
        or ``recalibration``, from what each customer was last evaluated under.

        Customers already evaluated under these rules and cut points (an event or the
        timer got there first) are left alone. As with events, a customer is never
        classified before their cursor.
        """
        stamp = self.stamp
        sts = [s for s in states if s.stamp != stamp]
        out = self.advance(sts, asof_ms)
        live = [s for s in sts if s.has_purchased and s.stamp != stamp]
        if live:
            at = np.maximum(asof_ms, np.fromiter((s.cursor_ms for s in live), np.int64, len(live)))
            drafts = self._reclassify(live, at, [SWEEP] * len(live), None)
            moved = {d.customer_id for d in drafts}
            for s, t in zip(live, at.tolist(), strict=True):
                if s.customer_id in moved:  # history now runs to t; others keep their cursor
                    s.cursor_ms = t
            out.transitions.extend(drafts)
        for s in sts:
            s.stamp = stamp
        return out
