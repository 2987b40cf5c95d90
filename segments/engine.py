"""Apply purchases and the passage of time to customer states; emit transition drafts.

Pure and synchronous: no clock, no I/O. The stream hands in states it loaded and
events in offset order; the engine mutates the states and returns what changed.

The timeline rule that makes the output independent of how work is split between
the event path and the timer:

1. Before an event with event time ``o`` is applied, every decay due at or before
   ``asof = max(o, cursor)`` is emitted first, each at its own due time.
2. The event is applied and every scheme re-classified at ``asof``; the cursor
   moves to ``asof``.
3. ``advance(now)`` (the timer, or the end of a replay) emits every decay due at or
   before ``now``, one crossing at a time, and moves the cursor to each due time.

Work is vectorised per *round*: round k holds the k-th event of every customer in
the batch, so the common case (one event per customer per batch) is one round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

from segments.model import NONE, Columns, CustomerState, Purchase, TransitionDraft
from segments.scheme import Scheme

__all__ = ["NEVER", "Engine"]

NEVER = np.iinfo(np.int64).max
"""Due time of a customer whose segment cannot change with time alone."""


class Engine:
    """Applies events and time to states under a fixed set of schemes."""

    def __init__(self, schemes: Sequence[Scheme]) -> None:
        if not schemes:
            raise ValueError("at least one scheme is needed")
        names = [s.name for s in schemes]
        if len(set(names)) != len(names):
            raise ValueError(f"scheme names must be unique: {names}")
        self.schemes = tuple(schemes)
        edges = sorted({e for s in schemes for e in s.recency_edges_ms()})
        self._edges = np.array(edges, dtype=np.int64)
        text = "|".join(s.describe() for s in schemes)
        self.rules_version = hashlib.blake2b(text.encode(), digest_size=6).hexdigest()

    # ------------------------------------------------------------------ due times
    def next_due(self, states: Sequence[CustomerState]) -> np.ndarray:
        """Earliest event time after each cursor at which a segment may change by time alone.

        ``NEVER`` for customers without purchases or past every edge.
        """
        n = len(states)
        if n == 0 or self._edges.size == 0:
            return np.full(n, NEVER, dtype=np.int64)
        last = np.fromiter((s.last_ms for s in states), np.int64, n)
        cursor = np.fromiter((s.cursor_ms for s in states), np.int64, n)
        bought = np.fromiter((s.frequency > 0 for s in states), bool, n)
        cand = last[:, None] + self._edges[None, :]
        cand = np.where(cand > cursor[:, None], cand, NEVER)
        due = cand.min(axis=1)
        return np.where(bought, due, NEVER)

    # ------------------------------------------------------------------ events
    def apply_events(
        self, states: dict[str, CustomerState], events: Iterable[Purchase]
    ) -> list[TransitionDraft]:
        """Apply ``events`` (in offset order) to ``states`` (created if missing)."""
        queues: dict[str, list[Purchase]] = {}
        for ev in events:
            queues.setdefault(ev.customer_id, []).append(ev)
            if ev.customer_id not in states:
                states[ev.customer_id] = CustomerState(ev.customer_id)
        out: list[TransitionDraft] = []
        depth = max((len(q) for q in queues.values()), default=0)
        for k in range(depth):
            round_events = [q[k] for q in queues.values() if len(q) > k]
            out.extend(self._apply_round(states, round_events))
        return out

    def _apply_round(
        self, states: dict[str, CustomerState], events: list[Purchase]
    ) -> list[TransitionDraft]:
        sts = [states[e.customer_id] for e in events]
        n = len(sts)
        occurred = np.fromiter((e.occurred_ms for e in events), np.int64, n)
        cursor = np.fromiter((s.cursor_ms for s in sts), np.int64, n)
        asof = np.maximum(occurred, cursor)
        out = self._decay_until(sts, asof)
        was_new = [not s.has_purchased for s in sts]
        for s, e, t in zip(sts, events, asof.tolist(), strict=True):
            if s.frequency == 0:
                s.first_ms = e.occurred_ms
            else:
                s.first_ms = min(s.first_ms, e.occurred_ms)
            s.last_ms = max(s.last_ms, e.occurred_ms)
            s.frequency += 1
            s.monetary += e.amount_units
            s.cursor_ms = t
        causes = ["first_purchase" if new else "purchase" for new in was_new]
        out.extend(self._reclassify(sts, asof, causes, [e.event_id for e in events]))
        return out

    # ------------------------------------------------------------------ time
    def advance(self, states: Sequence[CustomerState], now_ms: int) -> list[TransitionDraft]:
        """Emit every decay due at or before ``now_ms`` for ``states``."""
        sts = list(states)
        return self._decay_until(sts, np.full(len(sts), now_ms, dtype=np.int64))

    def _decay_until(self, sts: list[CustomerState], limit: np.ndarray) -> list[TransitionDraft]:
        out: list[TransitionDraft] = []
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
            out.extend(self._reclassify(subset, due, ["recency_decay"] * len(subset), None))
        return out

    # ------------------------------------------------------------------ classify
    def _reclassify(
        self,
        sts: list[CustomerState],
        asof: np.ndarray,
        causes: list[str],
        event_ids: list[str] | None,
    ) -> list[TransitionDraft]:
        cols = Columns.of(sts)
        out: list[TransitionDraft] = []
        for scheme in self.schemes:
            keys = scheme.classify(cols, asof)
            scores: dict[str, np.ndarray] | None = None
            for i, (s, key) in enumerate(zip(sts, keys, strict=True)):
                prev = s.segments.get(scheme.name, NONE)
                if prev == key:
                    continue
                if scores is None:
                    scores = scheme.scores(cols, asof)
                cause = causes[i]
                if prev == NONE and cause != "first_purchase":
                    cause = "rules_change"
                s.segments[scheme.name] = key
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
                        scores={a: int(v[i]) for a, v in scores.items()},
                    )
                )
        return out

    def classify_now(self, state: CustomerState, asof_ms: int) -> dict[str, str]:
        """Each scheme's segment for one customer at ``asof_ms`` (for lookups and tests)."""
        cols = Columns.of([state])
        at = np.array([asof_ms], dtype=np.int64)
        return {s.name: str(s.classify(cols, at)[0]) for s in self.schemes}
