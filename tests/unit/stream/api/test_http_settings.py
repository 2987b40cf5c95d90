"""The HTTP API's settings: loopback by default, the token a secret that is never shown."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from schemas.settings import SettingsError, load_settings

TOKEN = "hunter2-hunter2-hunter2"


def test_the_api_binds_loopback_unless_told_otherwise() -> None:
    assert load_settings().http_host == "127.0.0.1"
    assert load_settings(http_host="0.0.0.0").http_host == "0.0.0.0"
    with pytest.raises(SettingsError, match="RFM_HTTP_HOST"):
        load_settings(http_host="")


def test_the_token_is_a_secret_never_shown() -> None:
    settings = load_settings(http_token=TOKEN)
    assert isinstance(settings.http_token, SecretStr)
    assert settings.http_token.get_secret_value() == TOKEN
    for shown in (str(settings.masked()), repr(settings), str(settings)):
        assert "hunter2" not in shown


def test_an_empty_token_is_no_token() -> None:
    """What a compose file passes for ``${RFM_HTTP_TOKEN:-}`` when .env sets none."""
    assert load_settings().http_token is None
    assert load_settings(http_token="").http_token is None


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("hunter2", "at least 16"),  # guessable
        ("hunter2 hunter2 hunter2", "no spaces"),  # can't be sent as one b64token
        ("hunter2-hunter2-hunter2\n", "no spaces"),
        ("hunter2-hunter2-hünter2", "no spaces"),
    ],
)
def test_a_token_a_client_cannot_send_or_could_guess_is_refused_without_echoing_it(
    token: str, why: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(http_token=token)
    assert "RFM_HTTP_TOKEN" in str(info.value) and why in str(info.value)
    assert "hunter2" not in str(info.value)


def test_the_matrix_budget_lets_the_30_day_view_through_by_default() -> None:
    assert load_settings().http_max_days >= 31  # a 30-day range touches up to 31 days
    with pytest.raises(SettingsError, match="RFM_HTTP_MAX_DAYS"):
        load_settings(http_max_days="0")
