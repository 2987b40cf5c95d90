"""Win-back figures (segments.winback) equal a hand count of a hand-built history."""

from __future__ import annotations

from decimal import Decimal

import pytest

from schemas.money import from_units, to_units
from schemas.rules import RulesError, load_rules, parse_rules
from schemas.settings import load_settings
from segments.model import NONE, CustomerState, Purchase, TransitionDraft
from segments.rules import build_engine
from segments.winback import (
    Before,
    Moves,
    Returned,
    counter_fields,
    keep_open,
    lapsed_of,
    moves,
)
from segments.winback_cohorts import Cohort, cohorts
from tests.unit.segments.winback_story import END_DAY, HAND_COUNT, PURCHASES, ms

LAPSED = {"rfm8": frozenset({"dormant", "churning"})}


def _run_story() -> tuple[dict[str, int], list[TransitionDraft]]:
    """The story through the real engine, one commit per purchase and one per due time
    (what the processor does), the moves of each commit summed into counter fields."""
    engine = build_engine(load_settings(rules="rfm"), load_rules("rfm"))  # the RFM file
    states: dict[str, CustomerState] = {}
    fields: dict[str, int] = {}
    drafts: list[TransitionDraft] = []

    def commit(m: Moves) -> None:
        keep_open(m, states.values())  # what the processor commits with the states
        for (_, name), n in counter_fields(m).items():
            fields[name] = fields.get(name, 0) + n

    for n, (cid, day, amount) in enumerate(PURCHASES):
        due = engine.advance(list(states.values()), ms(day) - 1)
        commit(moves(due.transitions, states.values(), LAPSED))
        drafts += due.transitions
        s = states.get(cid)
        before = {cid: Before(s.monetary, list(s.history)) if s else Before(0, [])}
        ev = Purchase(cid, f"{cid}-{n}", ms(day), to_units(Decimal(amount)), f"o{n}")
        out = engine.apply_events(states, [ev])
        commit(moves(out.transitions, [states[cid]], LAPSED, before))
        drafts += out.transitions
    due = engine.advance(list(states.values()), ms(END_DAY))
    commit(moves(due.transitions, states.values(), LAPSED))
    drafts += due.transitions
    return fields, [d for d in drafts if d.scheme == "rfm8"]


def _view(c: Cohort) -> dict[str, object]:
    return {
        "entered": c.entered,
        "returned": {h: c.within(h) for h in (30, 60, 90)},
        "median_days": c.median_days(),
        "revenue": from_units(c.revenue_units),
    }


def test_story_figures_equal_the_hand_count() -> None:
    fields, _ = _run_story()
    got, unattributed = cohorts(fields, "rfm8", "month")
    assert {c.period: _view(c) for c in got} == HAND_COUNT
    assert unattributed == 0


def test_entries_and_returns_equal_a_count_of_the_transitions() -> None:
    """The same figures counted straight off the engine's rfm8 transitions."""
    fields, drafts = _run_story()
    lap = LAPSED["rfm8"]
    entries = [d for d in drafts if d.from_segment not in lap and d.to_segment in lap]
    returns = [d for d in drafts if d.from_segment in lap and d.to_segment not in lap]
    got, _ = cohorts(fields, "rfm8", "month")
    assert sum(c.entered for c in got) == len(entries) == 7
    assert sum(c.returned for c in got) == len(returns) == 4
    assert all(d.cause == "recency_decay" for d in entries)
    assert all(d.cause == "purchase" for d in returns)


def test_week_cohorts_regroup_the_same_days() -> None:
    fields, _ = _run_story()
    weeks, _ = cohorts(fields, "rfm8", "week")
    # entries 04-01 (Wed), 04-02 (Thu), 04-06 (Mon), 04-11 (Sat): weeks 14 and 15
    assert [(c.period, c.entered) for c in weeks[:2]] == [("2026-W14", 2), ("2026-W15", 2)]
    assert sum(c.entered for c in weeks) == 7


def _draft(frm: str, to: str, cause: str, t: int) -> TransitionDraft:
    return TransitionDraft("x", "rfm8", frm, to, cause, t, None, 1, 1, None, 0, {})


def test_a_return_whose_entry_left_history_is_unattributed() -> None:
    s = CustomerState("x")
    ret = _draft("churning", "new", "purchase", ms(200))
    # the entry was pushed out: history starts at a lapsed → lapsed move
    s.history = [
        ["rfm8", "dormant", "churning", "refund", ms(150)],
        ["rfm8", "churning", "new", "purchase", ms(200)],
    ]
    m = moves([ret], [s], LAPSED)
    assert m.returned == [Returned("rfm8", None, ms(200))]
    got, unattributed = cohorts({k[1]: v for k, v in counter_fields(m).items()}, "rfm8", "month")
    assert (got, unattributed) == ([], 1)


def test_the_entry_is_found_through_lapsed_to_lapsed_moves() -> None:
    s = CustomerState("x")
    s.history = [
        ["rfm8", NONE, "develop", "first_purchase", ms(0)],
        ["rfm8", "develop", "churning", "recency_decay", ms(90)],
        ["rfm8", "churning", "dormant", "refund", ms(95)],
        ["rfm8", "dormant", "high_value", "purchase", ms(100)],
    ]
    m = moves([_draft("dormant", "high_value", "purchase", ms(100))], [s], LAPSED)
    assert m.returned == [Returned("rfm8", ms(90), ms(100))]


def test_leaving_by_a_rules_change_is_no_return() -> None:
    m = moves([_draft("dormant", "develop", "rules_change", ms(100))], [], LAPSED)
    assert not m


def test_shipped_rules_mark_the_lapsed_segments() -> None:
    assert lapsed_of(load_rules(None))["rfm8"] == {"dormant", "churning"}
    assert lapsed_of(load_rules("management"))["lifecycle"] == {"decline"}


def test_lapsed_must_be_a_bool() -> None:
    doc = {
        "schemes": {
            "s": {
                "axes": {"r": {"cuts": ["90d"]}},
                "segments": {"a": {"label": "A", "cells": ["*"], "lapsed": "yes"}},
            }
        }
    }
    with pytest.raises(RulesError, match=r"schemes\.s\.segments\.a\.lapsed: .*bool"):
        parse_rules(doc, "x.toml")
