"""Columnar application of a batch: each customer's timeline walked once, classified once.

The round-based path (:meth:`Engine._apply_round`) vectorises *across* customers: round
k holds the k-th event of every customer, and every round pays the full per-call cost
of due times, columns and each scheme's classifier. A backfill batch is skewed (a few
customers with hundreds of events, many with one), so most rounds hold a handful of
customers and that fixed cost dominates.

Here the work is split by what depends on what:

1. A plain-Python walk per customer does everything sequential — decays due before
   each event (at their own due times), dedupe, purchases, refunds, pruning — exactly
   as the rounds do, and records an *evaluation point* wherever the rounds would
   re-classify: each fired due time and each applied event, with the customer's
   (as-of, F, M, first, last) at that instant.
2. Every scheme classifies all the points of the batch in one numpy call; a point
   moved if its key differs from the customer's previous point (or the stored segment
   for their first point), which is one vectorised comparison.
3. Drafts, segments, stamps and history are written from the moved points, per
   customer in time order — the order the rounds produce them in.

It applies only when a classification is a function of those five numbers alone
(:attr:`Engine.foldable`): no rolling windows (their totals live in the state, which
has moved on by step 2), no per-customer timed axes and no hysteresis (which reads the
previous key). Anything else takes the rounds. The outcome is the rounds' outcome:
same states, same drafts per customer (tests/unit/segments/test_fold.py).

What it applies a batch under comes in as one plain value, :class:`FoldRules`, which
the engine makes (:meth:`Engine.fold_rules`): the engine imports this module, never
the reverse.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from segments import refunds, windows
from segments.causes import stamp_of, time_cause
from segments.limits import Limits, forget
from segments.model import NONE, Columns, CustomerState, Event, Outcome, Purchase, TransitionDraft
from segments.policy import Policy, event_digest
from segments.purchases import purchase
from segments.scheme import Scheme

__all__ = ["FoldRules", "fold"]

_DECAY = "recency_decay"
_NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True)
class FoldRules:
    """What a batch is folded under: an engine's schemes, policy and limits, and what the
    engine derived from them, as plain values (made per call: the cut-point version
    changes when the engine is recalibrated)."""

    schemes: tuple[Scheme, ...]
    policy: Policy
    limits: Limits
    recency_edges: tuple[int, ...]
    """Every scheme's recency edges, sorted: the elapsed times since the last purchase
    at which a classification may change (the due times)."""
    window_ms: int
    """The longest rolling window, 0 for none (what a purchase day is kept for)."""
    rules_version: str
    cut_version: int | None
    versioned: frozenset[str]
    """Names of the schemes a new cut-point version can move."""

    @property
    def stamp(self) -> str:
        """What the customers of the batch are stamped with (``Engine.stamp``)."""
        return stamp_of(self.rules_version, self.cut_version)

    def time_cause(self, s: CustomerState, scheme: str, trigger: str) -> str:
        """:func:`~segments.causes.time_cause` of ``s`` moving in ``scheme``."""
        return time_cause(
            s.stamp,
            s.segments.get(scheme, NONE),
            trigger,
            self.rules_version,
            str(self.cut_version or 0),
            scheme in self.versioned,
        )


Point = tuple[int, int, int, int, int, int, "int | None", "str | None", "str | None"]
"""(as-of, F, M, first or last, last, owner index, first, event id, cause or None)."""


def _walk(
    rules: FoldRules,
    items: Sequence[tuple[CustomerState, Sequence[Event]]],
    limits: Sequence[int] | None,
    out: Outcome,
) -> list[Point]:
    """Step 1: mutate the states, return the evaluation points in time order per customer.

    A point is (as-of, F, M, first purchase or else last, last purchase, index of its
    customer in ``items``, raw first purchase, event id, cause); the event id and cause
    are None for a due time.
    """
    edges = rules.recency_edges
    n_edges = len(edges)
    policy = rules.policy
    hold = policy.refund_hold_ms
    dedupe_ms, orders_ms = policy.dedupe_ms, policy.order_retention_ms
    caps = rules.limits
    max_seen, max_orders = caps.seen, caps.orders
    wmax = rules.window_ms
    refund = refunds.refund
    points: list[Point] = []
    add = points.append
    rejected = out.rejected

    def point(t: int, ci: int, s: CustomerState, event_id: str | None, cause: str | None) -> None:
        """Record an evaluation point: the customer's (F, M, first, last) as of ``t``."""
        first, last = s.first_ms, s.last_ms
        add(
            (
                t,
                s.frequency,
                s.monetary,
                last if first is None else first,
                last,
                ci,
                first,
                event_id,
                cause,
            )
        )

    def catch_up(ci: int, s: CustomerState, limit: int) -> None:
        """Fire every due time at or before ``limit`` (``Engine.next_due``, per customer)."""
        while True:
            due = _NEVER
            if s.frequency > 0:
                k = bisect_right(edges, s.cursor_ms - s.last_ms)
                if k < n_edges:
                    due = s.last_ms + edges[k]
            if s.held:
                due = min(due, max(min(h.until_ms for h in s.held), s.cursor_ms + 1))
            if due > limit:
                return
            s.cursor_ms = due
            if s.held:
                rejected.extend(refunds.expire_held(s, due, hold))
            if s.days:
                windows.prune(s, due, wmax)
            point(due, ci, s, None, None)

    for ci, (s, queue) in enumerate(items):
        seen, orders = s.seen, s.orders
        for e in queue:
            t = e.occurred_ms if e.occurred_ms > s.cursor_ms else s.cursor_ms
            if s.held:
                catch_up(ci, s, t)
            elif s.frequency > 0:  # catch_up's first step, inline: rarely anything due
                k = bisect_right(edges, s.cursor_ms - s.last_ms)
                if k < n_edges and s.last_ms + edges[k] <= t:
                    catch_up(ci, s, t)
            digest = event_digest(e.event_id)
            if digest in seen:
                out.duplicates += 1
                continue
            if isinstance(e, Purchase):
                cause = "purchase" if s.frequency > 0 else "first_purchase"
                got = purchase(s, e, wmax)
                if got:
                    rejected.extend(got)
            else:
                rejection = refund(s, e, t, hold, wmax, caps)
                if rejection is not None:
                    rejected.append(rejection)
                    continue
                cause = "refund"
            seen[digest] = t
            s.cursor_ms = t
            # limits.forget only when it has something to drop (its loops' first tests)
            if (
                seen[next(iter(seen))] < t - dedupe_ms
                or (orders and orders[next(iter(orders))][2] < t - orders_ms)
                or s.days
                or len(seen) > max_seen
                or len(orders) > max_orders
            ):
                forget(s, t, policy, caps, wmax)
            point(t, ci, s, e.event_id, cause)
        if limits is not None and (s.frequency > 0 or s.held):
            catch_up(ci, s, limits[ci])
    return points


def fold(
    rules: FoldRules,
    items: Sequence[tuple[CustomerState, Sequence[Event]]],
    limits: Sequence[int] | None = None,
) -> Outcome:
    """Apply each customer's events (in offset order), then what is due by their limit,
    under ``rules``.

    ``items``: (state, that customer's events), each customer once. ``limits``: per
    item, a time to fire due steps up to after the events (``Engine.advance``).
    """
    out = Outcome()
    points = _walk(rules, items, limits, out)
    n = len(points)
    if n == 0:
        return out
    t_col, f_col, m_col, first_col, last_col, who_col, firsts, event_ids, causes = zip(
        *points, strict=True
    )
    asof = np.fromiter(t_col, np.int64, n)
    freq = np.fromiter(f_col, np.int64, n)
    cols = Columns(
        last_ms=np.fromiter(last_col, np.int64, n),
        frequency=freq,
        monetary=np.fromiter(m_col, np.int64, n),
        first_ms=np.fromiter(first_col, np.int64, n),
    )
    who = np.fromiter(who_col, np.int64, n)
    owner = list(who_col)
    starts = np.flatnonzero(np.concatenate(([True], who[1:] != who[:-1])))
    starters = who[starts].tolist()
    active = freq > 0
    all_active = bool(active.all())

    # step 2: every scheme over every point; moved = differs from the point before
    moved_at: list[np.ndarray] = []
    keys_of: list[np.ndarray] = []
    prev_of: list[np.ndarray] = []
    for scheme in rules.schemes:
        found = scheme.classify(cols, asof)
        keys = found if all_active else np.where(active, found, NONE)
        prev = np.empty(n, dtype=object)
        prev[1:] = keys[:-1]
        prev[starts] = [items[c][0].segments.get(scheme.name, NONE) for c in starters]
        moved_at.append(np.flatnonzero(keys != prev))
        keys_of.append(keys)
        prev_of.append(prev)

    # step 3: drafts in (point, scheme) order, i.e. per customer in time order
    n_schemes = len(rules.schemes)
    order = np.sort(np.concatenate([m * n_schemes + i for i, m in enumerate(moved_at)]))
    is_start = np.zeros(n, dtype=bool)
    is_start[starts] = True
    if order.size:
        _emit(
            rules,
            items,
            points,
            (owner, list(firsts), list(event_ids), list(causes)),
            is_start,
            order,
            (moved_at, keys_of, prev_of),
            cols,
            asof,
            out,
        )
    stamp = rules.stamp
    for c in starters:
        items[c][0].stamp = stamp
    return out


def _emit(
    rules: FoldRules,
    items: Sequence[tuple[CustomerState, Sequence[Event]]],
    points: list[Point],
    about: tuple[list[int], list[int | None], list[str | None], list[str | None]],
    is_start: np.ndarray,
    order: np.ndarray,
    found: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]],
    cols: Columns,
    asof: np.ndarray,
    out: Outcome,
) -> None:
    """Step 3: a draft per moved (point, scheme), in ``order``; segments and history."""
    owner, firsts, event_ids, causes = about
    moved_at, keys_of, prev_of = found
    schemes = rules.schemes
    n_schemes = len(schemes)
    n = len(points)
    # per scheme, for its moved points only: keys, previous keys, scores, and where
    # each point sits in those lists
    keys: list[list[str]] = []
    prevs: list[list[str]] = []
    scores: list[list[dict[str, int]]] = []
    slots: list[list[int]] = []
    for i, scheme in enumerate(schemes):
        at = moved_at[i]
        keys.append(keys_of[i][at].tolist())
        prevs.append(prev_of[i][at].tolist())
        if at.size:
            sub = Columns(
                last_ms=cols.last_ms[at],
                frequency=cols.frequency[at],
                monetary=cols.monetary[at],
                first_ms=cols.first_ms[at],
            )
            got = scheme.scores(sub, asof[at])
            axes = list(got)
            scores.append(
                [
                    dict(zip(axes, v, strict=True))
                    for v in zip(*(got[a].tolist() for a in axes), strict=True)
                ]
            )
        else:
            scores.append([])
        where = np.full(n, -1, dtype=np.int64)
        where[at] = np.arange(at.size)
        slots.append(where.tolist())
    starts = is_start.tolist()
    names = [s.name for s in schemes]
    drafts = out.transitions
    touched: dict[int, CustomerState] = {}
    cause_of = rules.time_cause
    for code in order.tolist():
        j, i = divmod(code, n_schemes)
        k = slots[i][j]
        c = owner[j]
        s = items[c][0]
        cause = causes[j]
        if cause is None:
            cause = cause_of(s, names[i], _DECAY) if starts[j] else _DECAY
        t, f, m, _col, last = points[j][:5]
        name, key, prev = names[i], keys[i][k], prevs[i][k]
        drafts.append(
            TransitionDraft(
                s.customer_id,
                name,
                prev,
                key,
                cause,
                t,
                event_ids[j],
                f,
                m,
                firsts[j],
                last,
                scores[i][k],
            )
        )
        s.segments[name] = key  # NONE too: Redis HSET can't delete fields
        s.history.append([name, prev, key, cause, t])
        touched[c] = s
    keep = rules.policy.history
    for s in touched.values():
        h = s.history
        if len(h) > keep:
            del h[: len(h) - keep]
