"""Columnar application of a batch: each customer's timeline walked once, classified once.

The round-based path (:meth:`Engine._apply_round`) vectorises *across* customers: round
k holds the k-th event of every customer, and every round pays the full per-call cost
of due times, columns and each scheme's classifier; each due time of the busiest
customer is one more such pass. A live batch of a large base has one event per
customer but many due times in between (recency edges, purchase days leaving each
rolling window, cadence and P(alive) cuts); a backfill batch is skewed (a few customers
with hundreds of events). Either way most passes hold a handful of customers and that
fixed cost dominates.

Here the work is split by what depends on what:

1. A plain-Python walk per customer (:mod:`segments.fold_walk`) does everything
   sequential, exactly as the rounds do, and records an *evaluation point* wherever
   the rounds would re-classify: each fired due time and each applied event, with the
   customer's (as-of, F, M, first, last) and purchase days at that instant.
2. Every scheme classifies all the points of the batch in one numpy call; rolling
   window totals come from the points' own purchase days
   (:meth:`segments.windows.Batch.of_rows`). A point moved if its key differs from the
   customer's previous point (or the stored segment for their first point), which is
   one vectorised comparison. Hysteresis reads the previous key, so a scheme with a
   margin is classified without it first and then settled per customer in time order
   (:meth:`GridScheme.settle`, the same margin test as ``GridScheme.classify``).
3. Drafts, segments, stamps and history are written from the moved points, per
   customer in time order — the order the rounds produce them in.

It can take every grid scheme (:attr:`Engine.can_fold`); a scheme of another kind
with its own per-customer due times (``Scheme.due_ms``) or a margin takes the rounds. The
engine chooses it where it is the faster path (:attr:`Engine.foldable`): a set with
rolling windows and neither timed axes nor a margin (the four RFM schemes with the
pyramid's 365 days) keeps the rounds.
The outcome is the rounds' outcome: same states, same drafts per customer
(tests/unit/segments/test_fold.py, test_fold_every.py).

What it applies a batch under comes in as one plain value, :class:`FoldRules`, which
the engine makes (:meth:`Engine.fold_rules`): the engine imports this module, never
the reverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np

from segments import windows
from segments.fold_rules import FoldRules
from segments.fold_walk import Point, walk
from segments.grid import GridScheme
from segments.model import NONE, Columns, CustomerState, Event, Outcome, TransitionDraft

__all__ = ["FoldRules", "fold"]

_DECAY = "recency_decay"


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
    points = walk(rules, items, limits, out)
    n = len(points)
    if n == 0:
        return out
    t_col, f_col, m_col, first_col, last_col, who_col, firsts, event_ids, causes, days = zip(
        *points, strict=True
    )
    asof = np.fromiter(t_col, np.int64, n)
    freq = np.fromiter(f_col, np.int64, n)
    owner = list(who_col)
    cols = Columns(
        last_ms=np.fromiter(last_col, np.int64, n),
        frequency=freq,
        monetary=np.fromiter(m_col, np.int64, n),
        states=windows.Batch.of_rows([items[c][0] for c in owner], days) if rules.windows else (),
        first_ms=np.fromiter(first_col, np.int64, n),
    )
    who = np.fromiter(who_col, np.int64, n)
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
        stored = [items[c][0].segments.get(scheme.name, NONE) for c in starters]
        if getattr(scheme, "hysteresis", 0):
            keys = cast(GridScheme, scheme).settle(found, active, starts, stored, cols, asof)
        prev = np.empty(n, dtype=object)
        prev[1:] = keys[:-1]
        prev[starts] = stored
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
            # over every point: the axis values are the classification's (memoised)
            got = {a: v[at] for a, v in scheme.scores(cols, asof).items()}
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
        t, f, m, _first, last = points[j][:5]
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
