"""Anti-flapping: a customer oscillating around a cut point doesn't spam transitions."""

from __future__ import annotations

from segments import Engine, Purchase, Refund
from segments.grid import Axis, GridScheme

DAY = 86_400_000
UNIT = 10_000


def spend(hysteresis: float) -> GridScheme:
    return GridScheme(
        "spend",
        [Axis("m", (1000 * UNIT,))],
        {(1,): "low", (2,): "high"},
        {"low": "L", "high": "H"},
        hysteresis=hysteresis,
    )


def path(hysteresis: float) -> list[tuple[str, str]]:
    """950 → 1050 → 1150 → 950 → 850 (purchases and refunds of order o)."""
    e = Engine([spend(hysteresis)])
    states: dict = {}
    steps = [
        Purchase("c", "p1", 1 * DAY, 950 * UNIT, "o"),
        Purchase("c", "p2", 2 * DAY, 100 * UNIT, "o"),
        Purchase("c", "p3", 3 * DAY, 100 * UNIT, "o"),
        Refund("c", "r1", 4 * DAY, 200 * UNIT, "o"),
        Refund("c", "r2", 5 * DAY, 100 * UNIT, "o"),
    ]
    moves = []
    for ev in steps:
        out = e.apply_events(states, [ev])
        assert out.rejected == []
        moves += [(d.from_segment, d.to_segment) for d in out.transitions]
    return moves


def test_without_a_margin_every_crossing_is_a_transition() -> None:
    assert path(0.0) == [("none", "low"), ("low", "high"), ("high", "low")]


def test_a_ten_percent_margin_needs_1100_to_move_up_and_below_900_to_move_down() -> None:
    # 1050 stays low (not ≥ 1100), 1150 moves up, 950 stays high (not < 900), 850 moves down
    assert path(0.1) == [("none", "low"), ("low", "high"), ("high", "low")]
    e = Engine([spend(0.1)])
    states: dict = {}
    e.apply_events(states, [Purchase("c", "p1", DAY, 950 * UNIT, "o")])
    e.apply_events(states, [Purchase("c", "p2", 2 * DAY, 100 * UNIT, "o")])
    assert states["c"].segments["spend"] == "low"  # 1050: inside the margin
    e.apply_events(states, [Purchase("c", "p3", 3 * DAY, 100 * UNIT, "o")])
    assert states["c"].segments["spend"] == "high"  # 1150
    e.apply_events(states, [Refund("c", "r1", 4 * DAY, 200 * UNIT, "o")])
    assert states["c"].segments["spend"] == "high"  # 950: inside the margin
    e.apply_events(states, [Refund("c", "r2", 5 * DAY, 100 * UNIT, "o")])
    assert states["c"].segments["spend"] == "low"  # 850


def test_oscillating_inside_the_margin_emits_nothing() -> None:
    e = Engine([spend(0.1)])
    states: dict = {}
    e.apply_events(states, [Purchase("c", "p0", DAY, 1200 * UNIT, "o")])
    moves = []
    for i in range(10):  # 1200 → 950 → 1200 → 950 ... around the 1000 cut
        ev = (
            Refund("c", f"r{i}", (2 + i) * DAY, 250 * UNIT, "o")
            if i % 2 == 0
            else Purchase("c", f"p{i}", (2 + i) * DAY, 250 * UNIT, "o")
        )
        moves += e.apply_events(states, [ev]).transitions
    assert moves == []
    without = Engine([spend(0.0)])
    states = {}
    without.apply_events(states, [Purchase("c", "p0", DAY, 1200 * UNIT, "o")])
    flaps = []
    for i in range(10):
        ev = (
            Refund("c", f"r{i}", (2 + i) * DAY, 250 * UNIT, "o")
            if i % 2 == 0
            else Purchase("c", f"p{i}", (2 + i) * DAY, 250 * UNIT, "o")
        )
        flaps += without.apply_events(states, [ev]).transitions
    assert len(flaps) == 10
