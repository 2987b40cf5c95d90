"""Win-back: who entered a lapsed segment, who came back, how soon, and what they spent.

The course text says "措施得当,每4个中会有1个可能被挽回" (one lost customer in four can be
won back); these are the figures that check it, per scheme, for the segments its rules
file marks ``lapsed = true``. Pure: from the transitions a commit writes and the states it
writes (their bounded ``history``, and one small record per open return).

- **Entered**: a transition from a segment that isn't lapsed (or from none) into a lapsed
  one, counted in the cohorts of its day (its month and its ISO week, UTC, event time).
  Lapsed → lapsed (dormant → churning) is neither an entry nor a return.
- **Returned**: a ``purchase`` transition out of every lapsed segment of the scheme. Its
  cohorts are those of the entry that began the lapse, found by walking the customer's
  history back from the return. History keeps the latest ``RFM_HISTORY_SIZE`` transitions
  of all schemes together: a return whose entry has already left it is counted as
  *unattributed* (so the shortfall shows, never silently). The walk reads the history as
  it was before the commit plus the commit's own transitions, untrimmed: the transitions
  a return itself makes in every scheme don't push its entry out.
- **Days to return**: whole days from entry to return; "within 30 days" is < 30 whole
  days. Kept per day up to :data:`DAY_CAP` (then one bucket), so the median is exact to
  the day.
- **Revenue**: the net spend (the change of lifetime net spend, purchases less refunds, as
  the engine applied it: duplicates never count) a customer commits while their latest
  return of that scheme is at most :data:`REVENUE_DAYS` days old and they haven't lapsed
  again; the returning purchase included. Attributed to the entry's cohort. A return
  opens a record in the customer's state (``CustomerState.returns``: scheme, entry day,
  return time), so later spend finds its cohort however many transitions have since
  pushed the return out of the bounded history; the record is dropped when the customer
  lapses again in that scheme, or by their first commit after the window has closed.

A customer who lapses, returns and lapses again counts in each cohort they enter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

from schemas.rules import RulesFile
from schemas.times import DAY_MS
from segments.model import CustomerState, TransitionDraft

__all__ = [
    "DAY_CAP",
    "HORIZONS",
    "REVENUE_DAYS",
    "Before",
    "Lapsed",
    "Moves",
    "Period",
    "counter_fields",
    "keep_open",
    "lapsed_of",
    "moves",
]

HORIZONS = (30, 60, 90)
"""Returned within this many days: the windows the figures show."""
REVENUE_DAYS = 90
"""How long after a return its customer's spend counts as won-back revenue."""
DAY_CAP = 365
"""Days to return are kept per day below this; this bucket holds every longer one."""
RETURN_CAUSE = "purchase"

Lapsed = Mapping[str, frozenset[str]]
"""scheme -> its lapsed segment keys (schemes with none are left out)."""
Period = Literal["week", "month"]


def lapsed_of(rules: RulesFile) -> dict[str, frozenset[str]]:
    """The lapsed segments of each scheme of ``rules`` that marks any."""
    out = {}
    for name, spec in rules.schemes.items():
        keys = frozenset(k for k, seg in spec.segments.items() if seg.lapsed)
        if keys:
            out[name] = keys
    return out


class Before(NamedTuple):
    """A customer as a commit loaded them: what win-back needs of before the events."""

    monetary: int
    """Lifetime net spend (revenue is its change)."""
    history: list[list[str | int]]
    """``CustomerState.history`` (a copy: the engine appends to and trims the original)."""


class Entered(NamedTuple):
    scheme: str
    entered_ms: int


class Returned(NamedTuple):
    scheme: str
    entered_ms: int | None
    """None: the entry is no longer in the customer's history (unattributed)."""
    returned_ms: int


class Spent(NamedTuple):
    scheme: str
    entered_ms: int
    units: int


@dataclass(slots=True)
class Moves:
    """What one commit adds to the win-back figures."""

    entered: list[Entered] = field(default_factory=list)
    returned: list[Returned] = field(default_factory=list)
    spent: list[Spent] = field(default_factory=list)
    opened: dict[str, list[list[str | int]]] = field(default_factory=dict)
    """customer -> their open returns after the commit, for those whose records changed
    (the caller stores them in the state: :func:`moves` reads, never edits, states)."""

    def __bool__(self) -> bool:
        return bool(self.entered or self.returned or self.spent)


def _is_entry(lap: frozenset[str], frm: object, to: object) -> bool:
    return frm not in lap and to in lap


def _is_return(lap: frozenset[str], frm: object, to: object, cause: object) -> bool:
    return frm in lap and to not in lap and cause == RETURN_CAUSE


def _entry_of(
    history: Sequence[Sequence[str | int]], lap: frozenset[str], scheme: str, at: int
) -> int | None:
    """Effective ms of the entry that began the lapse left at ``history[at]``, walking
    back through the scheme's lapsed → lapsed moves; None if it has left the history."""
    for h in reversed(history[:at]):
        if h[0] != scheme:
            continue
        if h[2] not in lap:  # an earlier leave: this lapse's entry is no longer kept
            return None
        if h[1] not in lap:
            return int(h[4])
    return None


def _find(history: Sequence[Sequence[str | int]], d: TransitionDraft) -> int | None:
    for i in range(len(history) - 1, -1, -1):
        h = history[i]
        if (
            h[4] == d.effective_ms
            and h[0] == d.scheme
            and h[1] == d.from_segment
            and h[2] == d.to_segment
        ):
            return i
    return None


def _close(
    opened: dict[str, list[list[str | int]]],
    by_id: Mapping[str, CustomerState],
    cid: str,
    scheme: str,
) -> None:
    """Drop ``cid``'s open return of ``scheme`` (a new entry or return replaces it)."""
    if cid not in opened:
        s = by_id.get(cid)
        opened[cid] = list(s.returns) if s else []
    opened[cid] = [r for r in opened[cid] if r[0] != scheme]


def moves(
    drafts: Sequence[TransitionDraft],
    states: Iterable[CustomerState],
    lapsed: Lapsed,
    before: Mapping[str, Before] | None = None,
) -> Moves:
    """The win-back moves of one commit: ``drafts`` and the ``states`` after them;
    ``before``: customer -> :class:`Before` the commit's events (None: no events, e.g. a
    decay step: no return, no spend, and the states' own history is read)."""
    out = Moves()
    if not lapsed:
        return out
    by_id = {s.customer_id: s for s in states}
    mine: dict[str, list[TransitionDraft]] = {}
    seen: dict[str, list[list[str | int]]] = {}

    def history(cid: str) -> list[list[str | int]]:
        """Before the commit + the commit's transitions, untrimmed."""
        if cid not in seen:
            b = (before or {}).get(cid)
            s = by_id.get(cid)
            if b is None:
                seen[cid] = s.history if s else []
            else:
                if not mine:  # grouped once, the first time a history is needed
                    for d in drafts:
                        mine.setdefault(d.customer_id, []).append(d)
                seen[cid] = b.history + [
                    [d.scheme, d.from_segment, d.to_segment, d.cause, d.effective_ms]
                    for d in mine.get(cid, ())
                ]
        return seen[cid]

    opened: dict[str, list[list[str | int]]] = {}
    for d in drafts:
        lap = lapsed.get(d.scheme)
        if lap is None:
            continue
        if _is_entry(lap, d.from_segment, d.to_segment):
            out.entered.append(Entered(d.scheme, d.effective_ms))
            _close(opened, by_id, d.customer_id, d.scheme)
        elif _is_return(lap, d.from_segment, d.to_segment, d.cause):
            h = history(d.customer_id)
            at = _find(h, d)
            entry = None if at is None else _entry_of(h, lap, d.scheme, at)
            out.returned.append(Returned(d.scheme, entry, d.effective_ms))
            _close(opened, by_id, d.customer_id, d.scheme)
            if entry is not None:
                day = entry // DAY_MS * DAY_MS  # the cohort's day: what the state keeps
                opened[d.customer_id].append([d.scheme, day, d.effective_ms])
    for s in by_id.values():
        records = opened.get(s.customer_id, s.returns)
        if not records and not s.returns:
            continue  # most customers: nothing open
        live = [
            r
            for r in records
            if r[0] in lapsed and s.cursor_ms - int(r[2]) <= REVENUE_DAYS * DAY_MS
        ]
        b = (before or {}).get(s.customer_id)
        if b is not None and s.monetary != b.monetary:
            for scheme, entry_day, _ in live:
                out.spent.append(Spent(str(scheme), int(entry_day), s.monetary - b.monetary))
        if live != s.returns:
            out.opened[s.customer_id] = live
    return out


def keep_open(m: Moves, states: Iterable[CustomerState]) -> None:
    """Store the open returns :func:`moves` found in ``states`` (in place, before the
    commit writes them)."""
    for s in states:
        opened = m.opened.get(s.customer_id)
        if opened is not None:
            s.returns = opened


# ---------------------------------------------------------------------------- fields
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _date(ms: int) -> datetime:
    return _EPOCH + timedelta(days=ms // DAY_MS)


def _cohorts_of(ms: int) -> tuple[str, tuple[str, str]]:
    """(month ``YYYYMM`` holding the counters, (month cohort, ISO week cohort)) of the
    day of ``ms``: both periods are counted at write, so a read sums few fields."""
    d = _date(ms)
    y, w, _ = d.isocalendar()
    return d.strftime("%Y%m"), (d.strftime("%Y-%m"), f"{y}-W{w:02d}")


def counter_fields(m: Moves) -> dict[tuple[str, str], int]:
    """(month ``YYYYMM`` of the entry, field) -> delta for ``m``.

    Fields, for the entry's month cohort (``2026-04``) and ISO week cohort (``2026-W14``)
    alike: ``scheme|cohort|n`` entered; ``…|dK`` returned after K whole days (K =
    :data:`DAY_CAP`: that many or more); ``…|m`` revenue in money units; and
    ``scheme||u`` returns whose entry has left history (in the month of the return). A
    week straddling two months has fields in both months' hashes; a read sums them.
    """
    out: dict[tuple[str, str], int] = {}

    def add(scheme: str, ms: int, kind: str, n: int) -> None:
        month, labels = _cohorts_of(ms)
        for label in labels:
            k = (month, f"{scheme}|{label}|{kind}")
            out[k] = out.get(k, 0) + n

    for scheme, t in m.entered:
        add(scheme, t, "n", 1)
    for scheme, entered, returned in m.returned:
        if entered is None:
            k = (_date(returned).strftime("%Y%m"), f"{scheme}||u")
            out[k] = out.get(k, 0) + 1
            continue
        days = min(max(0, (returned - entered) // DAY_MS), DAY_CAP)
        add(scheme, entered, f"d{days}", 1)
    for scheme, entered, units in m.spent:
        add(scheme, entered, "m", units)
    return {k: v for k, v in out.items() if v}
