"""Settings: env prefix, durations, one-line errors naming the field."""

from __future__ import annotations

from decimal import Decimal

import pytest

from schemas import SettingsError, load_settings
from schemas.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("90d", 90 * 86_400_000),
        ("12h", 43_200_000),
        ("30s", 30_000),
        ("500ms", 500),
        ("1h30m", 5_400_000),
        ("2w", 14 * 86_400_000),
        (" 7D ", 7 * 86_400_000),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == ms
    assert parse_duration(format_duration(ms)) == ms


@pytest.mark.parametrize("bad", ["", "90", "d", "90x", "-5d", "1.5h", "0s", "5d3"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_env_prefix_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFM_RECENCY", "30d")
    monkeypatch.setenv("RFM_MONETARY_CUT", "2500.50")
    s = load_settings()
    assert s.recency == 30 * 86_400_000
    assert s.monetary_cut == Decimal("2500.50")
    assert (s.purchases_topic, s.transitions_topic, s.dlq_topic) == (
        "purchases",
        "segment-transitions",
        "purchases.dlq",
    )
    # explicit (CLI) values win over the environment; None means "not given"
    assert load_settings(recency="12h", namespace=None).recency == 43_200_000


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("recency", "ninety days", "RFM_RECENCY"),
        ("frequency_cut", "0", "RFM_FREQUENCY_CUT"),
        ("namespace", "Bad Name", "RFM_NAMESPACE"),
        ("monetary_cut", "-1", "RFM_MONETARY_CUT"),
        ("log_level", "loud", "RFM_LOG_LEVEL"),
    ],
)
def test_bad_setting_is_one_line_naming_the_variable(field: str, value: str, needle: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(**{field: value})
    msg = str(info.value)
    assert needle in msg
    assert "\n" not in msg


def test_password_is_masked_in_logs() -> None:
    s = load_settings(redis_url="redis://user:hunter2@redis:6379/0")
    assert "hunter2" not in str(s.masked())
    assert "hunter2" not in repr(s)


def test_clv_lifetime_from_years_or_churn_but_not_both() -> None:
    from segments.rules import value_policy_of

    assert value_policy_of(load_settings()).years == 5
    assert value_policy_of(load_settings(clv_years=3)).years == 3
    assert value_policy_of(load_settings(clv_yearly_churn="0.3")).years == 3  # 1/0.3 = 3.33
    policy = value_policy_of(load_settings(clv_acquisition_cost="400", clv_margin_rate="0.3"))
    assert (policy.acquisition_cost_units, policy.margin_rate) == (4_000_000, Decimal("0.3"))
    with pytest.raises(SettingsError, match=r"^bad setting RFM_CLV_YEARLY_CHURN: give the CLV"):
        load_settings(clv_years=5, clv_yearly_churn="0.2")
    with pytest.raises(SettingsError, match="RFM_CLV_MARGIN_RATE"):
        load_settings(clv_margin_rate="1.5")
