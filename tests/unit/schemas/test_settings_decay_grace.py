"""RFM_DECAY_GRACE: off by default, a duration or zero, bounded, one-line errors."""

from __future__ import annotations

import pytest

from schemas.settings import SettingsError, load_settings


def test_off_by_default() -> None:
    assert load_settings().decay_grace == 0


@pytest.mark.parametrize(
    ("given", "ms"),
    [("0", 0), ("0s", 0), (" 0ms ", 0), (0, 0), ("90s", 90_000), ("2h", 7_200_000), (500, 500)],
)
def test_a_duration_or_zero(given: str | int, ms: int) -> None:
    assert load_settings(decay_grace=given).decay_grace == ms


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFM_DECAY_GRACE", "15m")
    assert load_settings().decay_grace == 15 * 60_000


def test_at_most_thirty_days() -> None:
    assert load_settings(decay_grace="30d").decay_grace == 30 * 86_400_000
    with pytest.raises(SettingsError) as err:
        load_settings(decay_grace="31d")
    assert str(err.value) == "bad setting RFM_DECAY_GRACE: at most 30d (got '31d')"


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("soon", "'soon' is not a duration"),
        ("-5m", "is not a duration"),
        (-1, "must be 0 or a positive duration"),
        ("", "is not a duration"),
        (True, "a duration must be like 90d"),
    ],
)
def test_bad_values_name_the_setting_in_one_line(bad: object, says: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(decay_grace=bad)
    text = str(err.value)
    assert text.startswith("bad setting RFM_DECAY_GRACE: ")
    assert says in text
    assert "\n" not in text
