"""Step 1 of the fold: each customer's timeline walked once, in plain Python.

Everything sequential happens here, exactly as the rounds do it (:meth:`Engine.
_apply_round`, :meth:`Engine._due_until`): decays due before each event (at their own
due times), dedupe, purchases, refunds, pruning. Wherever the rounds would re-classify
(each fired due time, each applied event) the walk records an *evaluation point*: the
customer's (as-of, F, M, first, last) at that instant and, when some scheme reads a
rolling window, their purchase days as they were then.

The due times are :meth:`Engine.next_due`'s, per customer: a recency edge after the
last purchase, a purchase day leaving a window, a held refund's end of wait, a cadence
cut (arithmetic on the history) and a P(alive) cut. Between two events a customer's
history (F, first, last) is fixed, and every one of those instants is a function of
the history (or of the purchase days, which only events add) alone, so the walk keeps
them as one sorted list per history and the next due time is a bisection.

P(alive)'s crossings need the model and a bisection (:func:`segments.value.
alive_crossings`): one numpy call per customer would cost more than everything else.
So each customer's walk is a generator that *asks* for the crossings of a history it
has not seen (yielding (F, first, last, cursor)) and the driver answers every
customer's question of one round in one vectorised call.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Generator, Sequence
from contextlib import suppress
from typing import NamedTuple, cast

import numpy as np

from schemas.times import DAY_MS
from segments import model, refunds, windows
from segments.fold_rules import FoldRules
from segments.limits import forget
from segments.model import Columns, CustomerState, Event, Outcome, Purchase
from segments.policy import event_digest
from segments.purchases import purchase
from segments.value import alive_crossings

__all__ = ["NEVER", "Point", "walk"]

NEVER = int(model.NEVER)  # a Python int: the walk compares instants one by one
_DAY = DAY_MS

Point = tuple[int, int, int, int, int, int, "int | None", "str | None", "str | None", windows.Days]
"""(as-of, F, M, first or last, last, owner index, first, event id, cause or None,
purchase days then (``windows.snapshot``); empty without windows)."""

Ask = tuple[int, int, int, int]
"""A walk's question: the P(alive) crossings of history (F, first, last) after cursor."""


def walk(
    rules: FoldRules,
    items: Sequence[tuple[CustomerState, Sequence[Event]]],
    limits: Sequence[int] | None,
    out: Outcome,
) -> list[Point]:
    """Mutate the states; return the evaluation points, per customer in time order
    (customers in ``items`` order)."""
    per: list[list[Point]] = [[] for _ in items]
    asking: list[tuple[Generator[Ask, tuple[int, ...], None], Ask]] = []
    ctx = _Rules.of(rules)
    for ci, (s, queue) in enumerate(items):
        gen = _customer(ctx, ci, s, queue, None if limits is None else limits[ci], out, per[ci])
        with suppress(StopIteration):
            asking.append((gen, next(gen)))
    while asking:
        answers = _crossings(rules, [a for _, a in asking])
        still = []
        for (gen, _), got in zip(asking, answers, strict=True):
            with suppress(StopIteration):
                still.append((gen, gen.send(got)))
        asking = still
    return [p for pts in per for p in pts]


def _crossings(rules: FoldRules, asks: list[Ask]) -> list[tuple[int, ...]]:
    """Every P(alive) cut crossing after its cursor, per question, sorted."""
    n = len(asks)
    f, first, last, cursor = (np.fromiter(c, np.int64, n) for c in zip(*asks, strict=True))
    cols = Columns(last_ms=last, frequency=f, monetary=np.zeros(n, np.int64), first_ms=first)
    found: list[list[int]] = [[] for _ in range(n)]
    for t in rules.time_edges:
        if t.axis != "p" or t.model is None:
            continue
        at = alive_crossings(t.model, t.edges, cols, cursor)
        for i, row in enumerate(at.tolist()):
            found[i].extend(x for x in row if x != NEVER)
    return [tuple(sorted(x)) for x in found]


class _Rules(NamedTuple):
    """What every customer's walk reads, derived from :class:`FoldRules` once a batch."""

    edges: tuple[int, ...]
    cadence: tuple[int, ...]
    alive: bool
    windows: tuple[int, ...]
    rules: FoldRules

    @classmethod
    def of(cls, rules: FoldRules) -> _Rules:
        timed = rules.time_edges
        return cls(
            rules.recency_edges,
            tuple(e for t in timed if t.axis == "c" for e in t.edges),
            any(t.axis == "p" and t.model is not None for t in timed),
            rules.windows,
            rules,
        )


def _customer(
    ctx: _Rules,
    ci: int,
    s: CustomerState,
    queue: Sequence[Event],
    limit: int | None,
    out: Outcome,
    points: list[Point],
) -> Generator[Ask, tuple[int, ...], None]:
    """One customer's walk (see the module doc); yields to ask for P(alive) crossings."""
    edges, cadence, alive, wins, rules = ctx
    policy = rules.policy
    hold = policy.refund_hold_ms
    dedupe_ms, orders_ms = policy.dedupe_ms, policy.order_retention_ms
    caps = rules.limits
    max_seen, max_orders = caps.seen, caps.orders
    wmax = rules.window_ms
    refund = refunds.refund
    rejected = out.rejected
    add = points.append

    hist: tuple[int, int | None, int] = (-1, None, -1)
    times: list[int] = []
    """Due instants of the current history (recency, cadence, P(alive)), sorted."""
    expiries: list[int] | None = None
    """Instants a purchase day leaves a window, sorted; None: to be made (days change
    only with events: pruning drops days no window sees, whose instants are past)."""
    days: windows.Days | None = None
    """The purchase days (``windows.snapshot``), taken once per event (see ``expiries``:
    a day pruned since counts in no window at a later point)."""

    def point(t: int, event_id: str | None, cause: str | None) -> None:
        nonlocal days
        if days is None:
            days = windows.snapshot(s) if wins else ()
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
                days,
            )
        )

    def history_times(crossed: tuple[int, ...]) -> list[int]:
        """Recency and cadence instants of the current history, with its crossings."""
        f, last = s.frequency, s.last_ms
        if f <= 0:
            return []
        got = [last + e for e in edges]
        first = s.first_ms
        if cadence and f >= 2 and first is not None and last - first > 0:
            span, orders = last - first, 100 * (f - 1)
            got.extend(last - (-(thr * span) // orders) for thr in cadence)
        got.extend(crossed)
        got.sort()
        return got

    def catch_up(limit: int) -> None:
        nonlocal expiries
        if expiries is None:
            expiries = sorted({(d + 1) * _DAY + w for d in s.days for w in wins})
        while True:
            cursor = s.cursor_ms
            due = NEVER
            if times:
                k = bisect_right(times, cursor)
                if k < len(times):
                    due = times[k]
            if expiries:
                k = bisect_right(expiries, cursor)
                if k < len(expiries) and expiries[k] < due:
                    due = expiries[k]
            if s.held:
                due = min(due, max(min(h.until_ms for h in s.held), cursor + 1))
            if due > limit:
                return
            s.cursor_ms = due
            if s.held:
                rejected.extend(refunds.expire_held(s, due, hold))
            if s.days:
                windows.prune(s, due, wmax)
            point(due, None, None)

    seen, orders = s.seen, s.orders
    for e in queue if limit is None else [*queue, None]:
        until = limit if e is None else max(e.occurred_ms, s.cursor_ms)
        if s.frequency > 0 or s.held or s.days:
            now = (s.frequency, s.first_ms, s.last_ms)
            if now != hist:
                crossed: tuple[int, ...] = ()
                if alive and s.frequency >= 2:
                    first = s.last_ms if s.first_ms is None else s.first_ms
                    crossed = yield (s.frequency, first, s.last_ms, s.cursor_ms)
                hist, times = now, history_times(crossed)
            catch_up(cast(int, until))
        if e is None:
            break
        t = e.occurred_ms if e.occurred_ms > s.cursor_ms else s.cursor_ms
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
        expiries = days = None
        point(t, e.event_id, cause)
