"""``rfm-stream winback``: bad options are refused with one line naming them, before
anything is opened; the table shows each cohort against the text's one in four."""

from __future__ import annotations

import pytest

from stream.cli.main import main
from stream.cli.winback import render_winback, since_of
from tests.support.harness import RULES

LAPSED_RULES = str(RULES / "rfm8_lapsed.toml")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--period", "year"], "--period: 'year' is not a period"),
        (["--scheme", "rfm27"], "--scheme: unknown scheme 'rfm27'; one of rfm8"),
        (["--since", "last tuesday"], "--since: 'last tuesday' is not an RFC 3339"),
        (["--since", "2026-13-01"], "--since:"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # an unreachable Redis: the refusal comes before anything is opened
    code = main(["winback", "--rules", LAPSED_RULES, "--redis-url", "redis://127.0.0.1:1", *args])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("rfm-stream: ") and needle in err


def test_since_takes_a_date_as_midnight_utc() -> None:
    assert since_of("2026-04-01") == "2026-04-01T00:00:00+00:00"
    assert since_of("2026-04-01T08:00:00+08:00") == "2026-04-01T08:00:00+08:00"
    assert since_of(None) is None


def test_table_rows_compare_each_cohort_with_one_in_four() -> None:
    cohort = {
        "cohort": "2026-04",
        "entered": 4,
        "returned": {"30": 1, "60": 2, "90": 3},
        "rate": {"30": 0.25, "60": 0.5, "90": 0.75},
        "final": [30, 60, 90],
        "median_days": 45,
        "revenue": "360",
    }
    young = {**cohort, "cohort": "2026-09", "entered": 10, "returned": {"30": 1, "60": 1, "90": 1}}
    young |= {"rate": {"30": 0.1, "60": 0.1, "90": 0.1}, "final": [30]}
    body = {
        "scheme": "rfm8",
        "lapsed": ["churning", "dormant"],
        "period": "month",
        "since": "2025-01-01T00:00:00.000+00:00",
        "until": "2026-10-28T00:00:00.000+00:00",
        "currency": "CNY",
        "revenue_days": 90,
        "expected_rate": 0.25,
        "unattributed_returns": 2,
        "cohorts": [cohort, young],
    }
    text = render_winback(body)
    rows = [line.split() for line in text.splitlines() if line.startswith("  2026-")]
    assert rows == [
        ["2026-04", "4", "1", "2", "3", "75%", "above", "45", "360"],
        ["2026-09", "10", "1", "1", "1", "10%", "below*", "45", "360"],
    ]
    assert "2 return(s)" in text
