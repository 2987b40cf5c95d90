"""The management schemes against the course texts they implement (issue #20).

The texts' definitions are written here, as the texts state them, and the shipped
management_rules.toml is checked against them: the value matrix's classes (whose top two
labels were once swapped), lifecycle and loyalty that move a customer who stops buying
at a scheduled instant, and the texts' own examples (a weekly small-ticket buyer is a
藤壶; a big spender silent for three years is neither 黄金 nor 白金).
"""

from __future__ import annotations

import tomllib

from schemas.rules import load_rules, parse_rules
from segments import Engine, Purchase
from segments.check import build_scheme
from segments.grid import GridScheme
from segments.model import CustomerState

DAY = 86_400_000
UNIT = 10_000
RULES = load_rules("management")

# 客户价值矩阵 (current value × growth potential), as the text defines the classes:
# class -> (current value high?, growth potential high?, label, the text's strategy)
VALUE_MATRIX_TEXT = {
    "I": (False, False, "铅质客户", "不投入,关系解除"),
    "II": (False, True, "铁质客户", "适当投入,关系再造"),
    "III": (True, False, "白金客户", "重点投入,关系保持"),
    "IV": (True, True, "黄金客户", "重中之重,发展客户关系"),
}

MEDIAN_SPEND = 1000 * UNIT
"""A hand-set median of the base's last-year spend (the quantile cut point)."""
MEDIAN_TICKET = 100 * UNIT
"""A hand-set median of the base's average order value."""


CUTS = {"m": (MEDIAN_SPEND + 1,), "a": (MEDIAN_TICKET + 1,)}
"""The quantile axes' thresholds from those medians (a spend axis takes the first)."""


def scheme(name: str) -> GridScheme:
    return build_scheme(name, RULES.schemes[name], CUTS)


def value_matrix() -> GridScheme:
    return scheme("value_matrix")


def loyalty() -> GridScheme:
    return scheme("loyalty")


def orders(days: list[int], amount: int, who: str = "c") -> list[Purchase]:
    return [
        Purchase(who, f"{who}{i}", d * DAY, amount * UNIT, f"{who}o{i}") for i, d in enumerate(days)
    ]


def state_after(engine: Engine, events: list[Purchase], asof_day: int) -> CustomerState:
    states: dict[str, CustomerState] = {}
    engine.apply_events(states, events)
    (s,) = states.values()
    engine.advance([s], asof_day * DAY)
    return s


def walk(engine: Engine, s: CustomerState, until_ms: int) -> list[tuple[str, str, int]]:
    """Step through every due time the engine schedules for ``s`` up to ``until_ms``:
    nothing may move a millisecond before a scheduled instant; returns the moves as
    (scheme, to, effective_ms), each at an instant the engine scheduled."""
    moves: list[tuple[str, str, int]] = []
    while (due := int(engine.next_due([s])[0])) <= until_ms:
        assert engine.advance([s], due - 1).transitions == []
        out = engine.advance([s], due)
        assert all(d.effective_ms == due for d in out.transitions)
        moves += [(d.scheme, d.to_segment, d.effective_ms) for d in out.transitions]
    return moves


# ---------------------------------------------------------------- value matrix


def test_shipped_value_matrix_holds_the_texts_class_meanings() -> None:
    """Each (current, potential) cell carries the text's label and strategy: the high/high
    and high-now/low-growth labels can't be swapped back."""
    spec = RULES.schemes["value_matrix"]
    built = value_matrix()
    assert [a.name for a in built.axes] == ["m", "g"]  # current value, growth potential
    m, g = built.axes
    assert m.window_ms == 365 * DAY, "current value is last year's spend"
    assert g.window_ms == 180 * DAY, "potential is the half-year spend trend"
    for current_high, potential_high, label, strategy in VALUE_MATRIX_TEXT.values():
        key = built.cells[(1 + current_high, 1 + potential_high)]
        assert spec.segments[key].label == label
        assert strategy in spec.segments[key].description
    assert len(set(built.cells.values())) == len(VALUE_MATRIX_TEXT)


def test_each_value_matrix_class_on_a_customer_the_text_describes() -> None:
    """Monthly buyers over two years, judged on day 720: small and steady (I), small but
    growing (II), big and steady (III), big and growing (IV)."""
    e = Engine([value_matrix()])
    months = list(range(0, 720, 30))
    early = [d for d in months if d < 540]  # before the last 180 days
    late = [d for d in months if d >= 540]
    customers = {
        "铅质客户": orders(months, 20),
        "铁质客户": orders(early, 10) + orders(late, 40),
        "白金客户": orders(months, 500),
        "黄金客户": orders(early, 200) + orders(late, 800),
    }
    labels = built_labels(e)
    for expected, events in customers.items():
        s = state_after(e, events, 720)
        assert labels[s.segments["value_matrix"]] == expected, expected


def built_labels(e: Engine) -> dict[str, str]:
    return {k: v for scheme in e.schemes for k, v in getattr(scheme, "labels", {}).items()}


def test_big_past_spender_silent_for_three_years_is_neither_gold_nor_platinum() -> None:
    """10,000 a month for a year, then nothing: worth nothing now, whatever they spent;
    they leave the high-value classes the day their last purchase leaves the year."""
    e = Engine([value_matrix()])
    s = state_after(e, orders(list(range(0, 360, 30)), 10_000), 330)
    assert s.segments["value_matrix"] in ("gold", "platinum")
    moves = walk(e, s, (330 + 3 * 365) * DAY)
    assert s.segments["value_matrix"] == "lead"
    left_high = next(t for _, to, t in moves if to not in ("gold", "platinum"))
    assert left_high == (330 + 1) * DAY + 365 * DAY  # the last purchase day leaves the window


# ---------------------------------------------------------------- loyalty


def test_weekly_small_ticket_buyer_is_a_barnacle_and_the_other_types_read_the_text() -> None:
    e = Engine([loyalty()])
    weekly = [7 * i for i in range(48)]
    cases = {
        "barnacles": orders(weekly, 20),  # 藤壶: "单次购买花钱甚少,但频繁固定地光顾"
        "true_friends": orders(weekly, 300),  # 知己: "单次购买花钱多,且频繁,固定地光顾"
        "butterflies": orders([0], 300),  # 蝴蝶: "单次购买花钱多 … 光顾一次后就不知飞到哪里去了"
        "strangers": orders([0, 200], 20),  # 过客: "偶尔买一点"
    }
    for expected, events in cases.items():
        s = state_after(e, events, events[-1].occurred_ms // DAY)
        assert s.segments["loyalty"] == expected, expected
    assert RULES.schemes["loyalty"].segments["barnacles"].label == "藤壶"


def test_loyal_types_are_left_at_the_scheduled_instant_when_a_customer_stops() -> None:
    """48 weekly orders, then nothing: three of their own intervals (21 days) after the
    last order they are no longer regular visitors."""
    e = Engine([loyalty()])
    last = 47 * 7
    for amount, loyal, after in (
        (300, "true_friends", "butterflies"),
        (20, "barnacles", "strangers"),
    ):
        s = state_after(e, orders([7 * i for i in range(48)], amount), last)
        assert s.segments["loyalty"] == loyal
        moves = walk(e, s, (last + 400) * DAY)
        assert moves[0] == ("loyalty", after, (last + 21) * DAY)


# ---------------------------------------------------------------- lifecycle


def test_one_order_customer_leaves_exploration_for_decline_when_lapsed() -> None:
    """Tenure stops at the last order; lapsing (180 days without a purchase) still moves
    them, at exactly that instant."""
    e = Engine([scheme("lifecycle")])
    s = state_after(e, orders([10], 50), 10)
    assert s.segments["lifecycle"] == "exploration"
    moves = walk(e, s, (10 + 3 * 365) * DAY)
    assert moves == [("lifecycle", "decline", (10 + 180) * DAY)]


def test_steady_buyer_who_stops_declines_when_overdue() -> None:
    """Weekly for 40 weeks, then nothing: stability until past 220 % of their 7-day
    interval (200 % plus the 10 % hysteresis margin; 200 × 1.1 is 220.00000000000003 in
    floating point, so the first whole percentage past it is 221), then decline, on the
    schedule."""
    e = Engine([scheme("lifecycle")])
    last = 39 * 7
    s = state_after(e, orders([7 * i for i in range(40)], 30), last)
    assert s.segments["lifecycle"] == "stability"
    moves = walk(e, s, (last + 3 * 365) * DAY)
    assert moves == [("lifecycle", "decline", last * DAY + 7 * DAY * 221 // 100)]


# ---------------------------------------------------------------- rules versions

OLD_VALUE_MATRIX = """
[schemes.value_matrix]
value_figures = true
title = "客户价值矩阵"
axes.m.quantiles = [0.5]
axes.g.window = "180d"
axes.g.cuts = [100]
segments.platinum = { label = "白金客户", cells = ["22"] }
segments.gold = { label = "黄金客户", cells = ["21"] }
segments.iron = { label = "铁客户", cells = ["12"] }
segments.lead = { label = "铅客户", cells = ["11"] }
"""


def test_existing_customers_are_re_evaluated_as_a_rules_change() -> None:
    """A namespace built under the swapped matrix: the new file is a new rules version, and
    re-evaluating moves the big, silent past spender with cause rules_change."""
    old_spec = parse_rules(tomllib.loads(OLD_VALUE_MATRIX), "old").schemes["value_matrix"]
    old = Engine([build_scheme("value_matrix", old_spec, CUTS)])
    new = Engine([value_matrix()])
    assert old.rules_version != new.rules_version
    s = state_after(old, orders(list(range(0, 360, 30)), 10_000), 3 * 365)
    # the old file's 黄金客户: big past spend, no growth
    assert s.segments["value_matrix"] == "gold"
    out = new.reevaluate([s], 3 * 365 * DAY)
    assert [(d.to_segment, d.cause) for d in out.transitions] == [("lead", "rules_change")]


def test_labels_alone_are_not_a_new_rules_version() -> None:
    """What the rules file says of label-only edits: they re-evaluate nobody."""
    spec = RULES.schemes["value_matrix"]
    relabelled = spec.model_copy(
        update={
            "segments": {
                k: v.model_copy(update={"label": v.label + "!"}) for k, v in spec.segments.items()
            }
        }
    )
    same = Engine([build_scheme("value_matrix", relabelled, CUTS)])
    assert same.rules_version == Engine([value_matrix()]).rules_version
