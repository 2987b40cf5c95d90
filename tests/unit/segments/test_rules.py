"""The rules file: shipped schemes are complete maps; `check` finds planted mistakes."""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path

import numpy as np
import pytest

from schemas.rules import RulesError, default_rules_path, load_rules, parse_rules
from schemas.settings import load_settings
from segments.cells import PatternError, cells_of
from segments.check import build_scheme, check_rules
from segments.grid import GridScheme
from segments.model import Columns, CustomerState
from segments.rules import build_schemes, load_checked_rules

DAY = 86_400_000
UNIT = 10_000
SHIPPED = load_rules("rfm")
RFM = ["rfm8", "rfm27", "rfm125", "pyramid"]
MANAGEMENT = ["churn_warning", "alive", "lifecycle", "loyalty", "value_matrix", "purchase_pattern"]


def _doc(text: str) -> dict:
    return tomllib.loads(text)


def test_the_shipped_rfm_file_has_the_four_rfm_schemes_and_no_problems() -> None:
    assert list(SHIPPED.schemes) == RFM
    assert check_rules(SHIPPED) == []


def test_by_default_the_rfm_schemes_run_and_all_adds_management_after_them() -> None:
    assert list(load_rules(None).schemes) == RFM == list(load_rules("default").schemes)
    assert [s.name for s in build_schemes(load_settings())] == RFM
    everything = load_rules("all")
    assert list(everything.schemes) == RFM + MANAGEMENT
    assert everything == load_rules("rfm,management")
    assert load_rules("all,rfm") == everything  # a file named twice is read once
    assert check_rules(everything) == []


def test_several_rules_files_and_names_are_taken_together_in_order(tmp_path: Path) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text('[schemes.mine]\naxes.f.cuts = [2]\nsegments.a = {label="A", cells=["*"]}\n')
    rules = load_rules(f"management, {mine}")
    assert list(rules.schemes) == [*MANAGEMENT, "mine"]
    settings = load_settings(rules=f"rfm,{mine}")
    assert [s.name for s in build_schemes(settings)] == [*RFM, "mine"]


def test_a_scheme_in_two_files_is_one_line_naming_both(tmp_path: Path) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text('[schemes.alive]\naxes.f.cuts = [2]\nsegments.a = {label="A", cells=["*"]}\n')
    with pytest.raises(RulesError) as err:
        load_rules(f"all,{mine}")
    (line,) = err.value.problems
    assert line == (
        f"scheme 'alive' is defined in both {default_rules_path().parent / 'management_rules.toml'}"
        f" and {mine}"
    )
    assert "\n" not in str(err.value)
    with pytest.raises(RulesError, match="empty entry"):
        load_rules("rfm,,management")
    with pytest.raises(RulesError, match=r"nope\.toml: cannot read it"):
        load_rules("rfm,nope.toml")


@pytest.mark.parametrize(
    ("name", "bands", "segments"),
    [
        ("rfm8", (2, 2, 2), 8),
        ("rfm27", (3, 3, 3), 6),
        ("rfm125", (5, 5, 5), 11),
        ("pyramid", (4,), 4),
    ],
)
def test_every_cell_of_a_shipped_scheme_is_in_exactly_one_segment(
    name: str, bands: tuple[int, ...], segments: int
) -> None:
    spec = SHIPPED.schemes[name]
    axes = [a for a in "rfm" if getattr(spec.axes, a) is not None]
    owners: dict[tuple[int, ...], list[str]] = {}
    for key, seg in spec.segments.items():
        for pattern in seg.cells:
            for cell in cells_of(pattern, axes, bands):
                owners.setdefault(cell, []).append(key)
    every = list(itertools.product(*(range(1, n + 1) for n in bands)))
    assert len(every) == int(np.prod(bands))
    assert sorted(owners) == every, "a cell is in no segment"
    assert all(len(v) == 1 for v in owners.values()), {
        c: v for c, v in owners.items() if len(v) > 1
    }
    assert {k for v in owners.values() for k in v} == set(spec.segments), "unreachable segment"
    assert len(spec.segments) == segments
    assert all(s.label for s in spec.segments.values())


def test_rfm125_map_reads_on_r_and_floor_of_f_plus_m_over_two() -> None:
    """The file's documented rule, checked against its 125 explicit cells."""
    scheme = build_scheme("rfm125", SHIPPED.schemes["rfm125"], _ranked("rfm125"))
    by_r_fm: dict[tuple[int, int], set[str]] = {}
    for (r, f, m), key in scheme.cells.items():
        by_r_fm.setdefault((r, (f + m) // 2), set()).add(key)
    assert all(len(keys) == 1 for keys in by_r_fm.values())
    assert by_r_fm[(5, 5)] == {"champions"}
    assert by_r_fm[(1, 5)] == {"cant_lose_them"}
    assert by_r_fm[(5, 1)] == {"new_customers"}
    assert by_r_fm[(1, 1)] == {"lost"}


def _ranked(name: str) -> dict[str, tuple[int, ...]]:
    spec = SHIPPED.schemes[name]
    return {
        a: tuple(range(1, len(getattr(spec.axes, a).quantiles) + 1))
        for a in "rfm"
        if getattr(spec.axes, a) is not None and getattr(spec.axes, a).quantiles
    }


def _pyramid_with_exact_cuts(monetary: np.ndarray) -> GridScheme:
    """Thresholds from the exact inverted-cdf quantiles: a cut point q ranks > q above."""
    qs = SHIPPED.schemes["pyramid"].axes.m.quantiles
    cuts = [int(np.quantile(monetary, q, method="inverted_cdf")) + 1 for q in qs]
    return build_scheme("pyramid", SHIPPED.schemes["pyramid"], {"m": tuple(cuts)})


def _classify(scheme: GridScheme, monetary: np.ndarray) -> np.ndarray:
    """One purchase each, today: lifetime M and M over any window are ``monetary``."""
    states = [
        CustomerState(f"c{i}", 1, m, 0, 0, 0, days={0: [1, m]})
        for i, m in enumerate(monetary.tolist())
    ]
    return scheme.classify(Columns.of(states), np.zeros(len(states), np.int64))


def test_pyramid_boundaries_at_1_20_50_percent_on_a_known_population() -> None:
    monetary = np.arange(1, 10_001, dtype=np.int64) * UNIT  # 10,000 distinct spenders
    rng = np.random.default_rng(3)
    rng.shuffle(monetary)
    keys = _classify(_pyramid_with_exact_cuts(monetary), monetary)
    counts = {k: int((keys == k).sum()) for k in ("vip", "major", "ordinary", "small")}
    assert counts == {"vip": 100, "major": 1_900, "ordinary": 3_000, "small": 5_000}
    top = monetary[keys == "vip"]
    assert top.min() == 9_901 * UNIT  # exactly the top 1 %


def test_pyramid_never_puts_more_than_one_percent_at_the_top_with_ties() -> None:
    monetary = np.full(1_000, 500 * UNIT, dtype=np.int64)  # everyone spent the same
    monetary[:5] = 9_000 * UNIT
    keys = _classify(_pyramid_with_exact_cuts(monetary), monetary)
    assert (keys == "vip").sum() <= 10
    assert (keys == "small").sum() == 995  # the tie sits at the bottom, not spread


def test_recency_band_drops_at_exactly_the_cut() -> None:
    scheme = build_scheme("rfm27", SHIPPED.schemes["rfm27"])
    cols = Columns(
        last_ms=np.zeros(4, np.int64),
        frequency=np.full(4, 5, np.int64),
        monetary=np.full(4, 2000 * UNIT, np.int64),
    )
    asof = np.array([30 * DAY - 1, 30 * DAY, 90 * DAY - 1, 90 * DAY], np.int64)
    assert scheme.scores(cols, asof)["r"].tolist() == [3, 2, 2, 1]
    assert scheme.classify(cols, asof).tolist() == ["champions", "loyal", "loyal", "at_risk"]
    assert scheme.recency_edges_ms() == (30 * DAY, 90 * DAY)


def test_quantile_scheme_ranks_nobody_before_its_first_cut_points() -> None:
    scheme = build_scheme("pyramid", SHIPPED.schemes["pyramid"])
    assert not scheme.ranked
    assert _classify(scheme, np.array([5, 6], np.int64)).tolist() == ["none", "none"]


PLANTED = """
[schemes.good]
axes.f.cuts = [2]
segments.low = { label = "L", cells = ["1"] }
segments.high = { label = "H", cells = ["2"] }

[schemes.gappy]
axes.r.cuts = ["30d", "90d"]
axes.f.cuts = [2]
segments.a = { label = "A", cells = ["3*", "2*"] }

[schemes.overlapping]
axes.f.cuts = [2, 5]
segments.a = { label = "A", cells = ["[12]"] }
segments.b = { label = "B", cells = ["[23]"] }

[schemes.unreachable]
axes.m.cuts = ["100"]
segments.a = { label = "A", cells = ["*"] }
segments.ghost = { label = "G", cells = ["3"] }

[schemes.disordered]
axes.r.cuts = ["90d", "30d"]
axes.m.quantiles = [0.8, 0.5]
segments.a = { label = "A", cells = ["**"] }
"""


def test_check_names_each_planted_problem_and_its_place() -> None:
    problems = check_rules(parse_rules(_doc(PLANTED), "planted.toml"))
    text = "\n".join(problems)
    assert "schemes.good" not in text
    assert any(
        p.startswith("schemes.gappy.segments: 2 cells (rf scores) in no segment (gap): 11, 12")
        for p in problems
    ), text
    assert "schemes.overlapping.segments: cell 2 is in 2 segments (overlap): a, b" in problems
    assert any(
        p.startswith("schemes.unreachable.segments.ghost: no cell can reach it") for p in problems
    ), text
    assert any(p.startswith("schemes.disordered.axes.r.cuts: bands out of order") for p in problems)
    assert any(
        p.startswith(
            "schemes.disordered.axes.m.quantiles: bands out of order: 0.5 is not above 0.8"
        )
        for p in problems
    ), text
    assert len(problems) == 5, text


def test_unknown_keys_and_bad_types_are_named_and_other_schemes_still_checked() -> None:
    doc = _doc(
        PLANTED
        + """
[schemes.typo]
axes.f.cutz = [2]
segments.a = { label = "A", cells = ["1"], colour = "red" }
[schemes.wrongtype]
axes.r.cuts = ["ninety days"]
segments.a = { label = "A", cells = ["*"] }
"""
    )
    with pytest.raises(RulesError) as info:
        parse_rules(doc, "x.toml")
    problems = info.value.problems
    assert "schemes.typo.axes.f.cutz: unknown key" in problems
    assert "schemes.typo.segments.a.colour: unknown key" in problems
    assert any(p.startswith("schemes.wrongtype.axes.r.cuts.0: ") for p in problems), problems
    assert info.value.partial is not None
    assert "gappy" in info.value.partial.schemes  # the rest still gets its sense check


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("12", "has 2 scores; this scheme has 1 axes"),
        ("[3-1]", "runs backwards"),
        ("x", "cannot read"),
        ("[]", "is empty"),
        ("7", "score 7 is outside f's 3 bands"),
    ],
)
def test_bad_patterns_say_what_is_wrong(pattern: str, message: str) -> None:
    with pytest.raises(PatternError, match=message):
        cells_of(pattern, ["f"], [3])


def test_pattern_sets_and_ranges() -> None:
    assert cells_of("5[45]*", "rfm", [5, 5, 2]) == {(5, 4, 1), (5, 4, 2), (5, 5, 1), (5, 5, 2)}
    assert cells_of("[1-2 5]", "f", [5]) == {(1,), (2,), (5,)}


def test_settings_override_rfm8_cut_points(tmp_path: Path) -> None:
    settings = load_settings(recency="30d", monetary_cut="250")
    rfm8 = next(s for s in build_schemes(settings) if s.name == "rfm8")
    assert rfm8.recency_edges_ms() == (30 * DAY,)
    assert [a.thresholds for a in rfm8.axes] == [(30 * DAY,), (2,), (250 * UNIT,)]
    other = tmp_path / "no_rfm8.toml"
    other.write_text('[schemes.p]\naxes.f.cuts = [2]\nsegments.a = {label="A", cells=["*"]}\n')
    with pytest.raises(Exception, match="RFM_RECENCY: it overrides the rfm8 scheme"):
        load_checked_rules(load_settings(recency="30d", rules=str(other)))


def test_the_shipped_file_is_packaged_and_found() -> None:
    assert default_rules_path().name == "default_rules.toml"
    assert default_rules_path().is_file()


def test_rules_version_changes_with_the_cell_map_not_with_labels(tmp_path: Path) -> None:
    text = Path(default_rules_path()).read_text(encoding="utf-8")
    base = [s.describe() for s in build_schemes(load_settings(), parse_rules(_doc(text), "a"))]
    relabelled = text.replace('label = "高价值客户"', 'label = "VIP"')
    remapped = text.replace('cells = ["33[23]"]', 'cells = ["333"]').replace(
        'cells = ["331", "23*"]', 'cells = ["33[12]", "23*"]'
    )
    assert [
        s.describe() for s in build_schemes(load_settings(), parse_rules(_doc(relabelled), "b"))
    ] == base
    assert [
        s.describe() for s in build_schemes(load_settings(), parse_rules(_doc(remapped), "c"))
    ] != base
