"""No secret from the settings reaches a log line or an error message (invariant 12)."""

from __future__ import annotations

import pytest

from schemas.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:hunter2@redis:6379/0", "redis://user:***@redis:6379/0"),
        ("redis://redis:6379/0?password=hunter2", "redis://redis:6379/0?password=***"),
        (
            "rediss://:hunter2@h1:7000,h2:7001/0?ssl_password=hunter2&socket_timeout=5",
            "rediss://:***@h1:7000,h2:7001/0?ssl_password=***&socket_timeout=5",
        ),
        ("redis+cluster://u:p%40hunter2@h1:1,h2:2/0", "redis+cluster://u:***@h1:1,h2:2/0"),
        ("redis://hunter2@redis/0", "redis://***@redis/0"),
        (
            "unix:///run/redis.sock?db=2&Password=hunter2",
            "unix:///run/redis.sock?db=2&Password=***",
        ),
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
    ],
)
def test_every_form_of_redis_password_is_masked(url: str, shown: str) -> None:
    masked = load_settings(redis_url=url).masked()
    assert masked["redis_url"] == shown
    assert "hunter2" not in str(masked)


def test_a_rejected_secret_setting_is_not_echoed_in_the_error() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(redis_url=["redis://:hunter2@h/0"])
    assert "RFM_REDIS_URL" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_eviction_is_refused_unless_allowed_explicitly() -> None:
    assert load_settings().allow_eviction is False
    assert load_settings(allow_eviction="true").allow_eviction is True
