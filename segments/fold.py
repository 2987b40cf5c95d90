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
from segments.fold_walk import walk
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
    found_keys = (moved_at, keys_of, prev_of)

    # step 3: drafts in (point, scheme) order, i.e. per customer in time order
    if any(m.size for m in moved_at):
        _emit(rules, items, (owner, firsts, event_ids, causes), starts, found_keys, cols, asof, out)
    stamp = rules.stamp
    for c in starters:
        items[c][0].stamp = stamp
    return out


def _emit(
    rules: FoldRules,
    items: Sequence[tuple[CustomerState, Sequence[Event]]],
    about: tuple[list[int], tuple[int | None, ...], tuple[str | None, ...], tuple[str | None, ...]],
    starts: np.ndarray,
    found: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]],
    cols: Columns,
    asof: np.ndarray,
    out: Outcome,
) -> None:
    """Step 3: a draft per moved (point, scheme), per customer in time order (a point's
    schemes in rules order); segments and history.

    Column-wise: every field of the drafts is gathered as one list (numpy fancy indexing
    of the points' columns, object arrays for the keys), and the drafts made in one
    ``map``: a backfill makes hundreds of thousands of them.
    """
    owner, firsts, event_ids, causes = about
    moved_at, keys_of, prev_of = found
    schemes = rules.schemes
    n_schemes = len(schemes)
    names = [s.name for s in schemes]
    # scheme-major: scheme i's moved points in time order; sorted by (point, scheme)
    code = np.concatenate([m * n_schemes + i for i, m in enumerate(moved_at)])
    perm = np.argsort(code, kind="stable")
    j, i = np.divmod(code[perm], n_schemes)
    key = np.concatenate([k[m] for k, m in zip(keys_of, moved_at, strict=True)])[perm].tolist()
    prev = np.concatenate([p[m] for p, m in zip(prev_of, moved_at, strict=True)])[perm].tolist()
    scores: list[np.ndarray] = []
    for scheme, at in zip(schemes, moved_at, strict=True):
        if at.size:
            scores.append(_score_dicts(scheme.scores(cols, asof), at))
    score = np.concatenate(scores)[perm].tolist()
    name = np.array(names, dtype=object)[i].tolist()
    who = np.asarray(owner)[j]
    state = [items[c][0] for c in who.tolist()]
    t = asof[j].tolist()
    # a time-driven move's cause: the customer's first point may be a rules change or a
    # recalibration (the stamp says); a later point of the batch is the timer's
    at = np.array(causes, dtype=object)[j]
    timed = np.flatnonzero(np.fromiter((c is None for c in causes), bool, len(causes))[j])
    if timed.size:
        at[timed] = _DECAY
        is_start = np.zeros(len(asof), dtype=bool)
        is_start[starts] = True
        for x in timed[is_start[j[timed]]].tolist():
            at[x] = rules.time_cause(state[x], name[x], _DECAY)
    cause = at.tolist()
    drafts = list(
        map(
            TransitionDraft,
            [s.customer_id for s in state],
            name,
            prev,
            key,
            cause,
            t,
            np.array(event_ids, dtype=object)[j].tolist(),
            cols.frequency[j].tolist(),
            cols.monetary[j].tolist(),
            np.array(firsts, dtype=object)[j].tolist(),
            cols.last_ms[j].tolist(),
            score,
        )
    )
    out.transitions.extend(drafts)
    # history in draft order; a customer's drafts are contiguous (their points are)
    entries = list(map(list, zip(name, prev, key, cause, t, strict=True)))
    keep = rules.policy.history
    bounds = np.flatnonzero(np.diff(who) != 0) + 1
    for a, b in zip([0, *bounds.tolist()], [*bounds.tolist(), len(who)], strict=True):
        s = state[a]
        s.segments.update(zip(name[a:b], key[a:b], strict=True))  # NONE too: HSET can't delete
        h = s.history
        h.extend(entries[a:b])
        if len(h) > keep:
            del h[: len(h) - keep]


def _score_dicts(got: dict[str, np.ndarray], at: np.ndarray) -> np.ndarray:
    """A scheme's axis values at the points ``at`` as one dict per point (object array).

    Scores are band numbers, so a batch holds few distinct rows: one dict is made per
    distinct row and shared by the drafts that have it (a draft is a value, never
    changed; nothing writes to its ``scores``)."""
    cols = [v[at] for v in got.values()]
    code = np.zeros(at.size, dtype=np.int64)
    span = 1
    for v in cols:
        lo, width = int(v.min()), int(v.max()) - int(v.min()) + 1
        span *= width
        if span >= 2**62:  # not band numbers after all: a dict per point
            return _dicts(tuple(got), cols, at.size)
        code = code * width + (v - lo)
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    return _dicts(tuple(got), [v[first] for v in cols], first.size)[inverse]


def _dicts(axes: tuple[str, ...], cols: list[np.ndarray], n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    rows = zip(*(v.tolist() for v in cols), strict=True) if cols else ((),) * n
    out[:] = [dict(zip(axes, r, strict=True)) for r in rows]
    return out
