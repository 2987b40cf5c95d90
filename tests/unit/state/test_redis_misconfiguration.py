"""Which Redis failures are configuration errors (one line, exit 2) and which are outages
(waited out), and how the TLS files reach the clients (issue #17)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from schemas.errors import SettingsError, StoreMisconfigured, StoreUnavailable
from schemas.settings import load_settings
from state.connection import address_of, misconfiguration, tls_options, unavailable_as_error


def wrapped(inner: BaseException, text: str) -> RedisConnectionError:
    """What redis-py raises: its ConnectionError with the OSError as the context."""
    try:
        try:
            raise inner
        except OSError:
            raise RedisConnectionError(text) from None
    except RedisConnectionError as exc:
        exc.__context__ = inner
        return exc


def test_a_wrong_password_is_a_refused_login() -> None:
    why = misconfiguration(AuthenticationError("invalid username-password pair"))
    assert why is not None and why.startswith("refused the login (WRONGPASS")


def test_acl_refusals_are_configuration_errors() -> None:
    nope = misconfiguration(NoPermissionError("this user has no permissions to run 'xadd'"))
    assert nope is not None and "NOPERM" in nope
    in_script = ResponseError(
        "The user executing the script can't access at least one of the keys mentioned"
    )
    assert misconfiguration(in_script) is not None


def test_an_untrusted_certificate_is_a_failed_handshake() -> None:
    verify = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] verify failed")
    why = misconfiguration(wrapped(verify, "Error 1 connecting to h:1. [SSL: ...]"))
    assert why is not None and "CERTIFICATE_VERIFY_FAILED" in why


def test_a_required_client_certificate_found_only_in_the_text_is_a_failed_handshake() -> None:
    exc = RedisConnectionError(
        "Error while reading from h:1 : (1, '[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] ...')"
    )
    assert misconfiguration(exc) is not None


@pytest.mark.parametrize(
    "exc",
    [
        RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."),
        RedisTimeoutError("Timeout connecting to server"),
        wrapped(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "closed [SSL]"),
        ConnectionResetError(104, "Connection reset by peer"),
        ResponseError("OOM command not allowed when used memory > 'maxmemory'"),
        ValueError("a bug"),
    ],
)
def test_outages_and_other_errors_are_not_configuration_errors(exc: BaseException) -> None:
    assert misconfiguration(exc) is None


async def test_login_refusals_are_not_retried_as_unavailable() -> None:
    with pytest.raises(StoreMisconfigured, match="refused the login"):
        async with unavailable_as_error():
            raise AuthenticationError("invalid username-password pair")
    with pytest.raises(StoreUnavailable):
        async with unavailable_as_error():
            raise RedisConnectionError("Error 111 connecting")
    # NOPERM stays a ResponseError there: CONFIG GET / INFO refusals are tolerated upstream
    with pytest.raises(NoPermissionError):
        async with unavailable_as_error():
            raise NoPermissionError("this user has no permissions to run the 'config|get'")


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("rediss://user:pw@10.0.0.5:6380/0", "10.0.0.5:6380"),
        ("rediss+cluster://u:p@h1:7000,h2:7001/0", "h1:7000"),
        ("redis://redis/0", "redis:6379"),
    ],
)
def test_the_address_in_errors_has_no_credentials(url: str, address: str) -> None:
    assert address_of(url) == address


def test_tls_files_reach_the_client_options_for_a_tls_url_only(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / n for n in ("ca.crt", "c.crt", "c.key"))
    for f in (ca, cert, key):
        f.write_text("-")
    s = load_settings(
        redis_url="rediss+cluster://u:p@h1:7000/0",
        redis_tls_ca_file=str(ca),
        redis_tls_cert_file=str(cert),
        redis_tls_key_file=str(key),
    )
    assert tls_options(s) == {
        "ssl_ca_certs": str(ca),
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
    }
    assert tls_options(load_settings(redis_url="redis://h:1/0")) == {}


def test_tls_file_settings_are_checked_at_load(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-")
    needs_tls = "RFM_REDIS_TLS_CA_FILE: a TLS file needs a TLS Redis URL"
    with pytest.raises(SettingsError, match=needs_tls):
        load_settings(redis_url="redis://h:1/0", redis_tls_ca_file=str(ca))
    with pytest.raises(SettingsError, match="RFM_REDIS_TLS_CA_FILE: no readable file"):
        load_settings(redis_url="rediss://h:1/0", redis_tls_ca_file=str(tmp_path / "nope"))
    no_cert = "RFM_REDIS_TLS_KEY_FILE: a client key needs its certificate, RFM_REDIS_TLS_CERT_FILE"
    with pytest.raises(SettingsError, match=no_cert):
        load_settings(redis_url="rediss://h:1/0", redis_tls_key_file=str(ca))


def test_every_seed_of_a_tls_cluster_url_gets_the_user_and_the_tls_files() -> None:
    """Credentials are written once, in the first seed's userinfo; the cluster client uses
    them (and the TLS options) for every node it connects to, listed or discovered."""
    from redis.asyncio.connection import SSLConnection

    from state.connection import make_client

    client = make_client("rediss+cluster://rfm:pw@h1:7000,h2:7001/0", ssl_ca_certs="/ca.crt")
    nodes = client.nodes_manager  # type: ignore[union-attr]  # a RedisCluster for a +cluster URL
    kwargs = nodes.connection_kwargs
    assert set(nodes.startup_nodes) == {"h1:7000", "h2:7001"}
    assert (kwargs["username"], kwargs["password"]) == ("rfm", "pw")
    assert kwargs["ssl_ca_certs"] == "/ca.crt"
    assert kwargs["connection_class"] is SSLConnection


async def test_a_unix_socket_not_there_yet_is_waited_for_not_a_tls_file(tmp_path: Path) -> None:
    """A Redis on a unix socket that hasn't started yet (a sidecar) raises FileNotFoundError
    too: it is an outage, not a missing certificate (the reviewer's finding)."""
    from state.store import RedisStore

    store = RedisStore.from_url(f"unix://{tmp_path / 'redis.sock'}", "rfm", "live")
    try:
        with pytest.raises(RedisConnectionError) as raised:
            await store.client.ping()
    finally:
        await store.close()
    assert misconfiguration(raised.value) is None
