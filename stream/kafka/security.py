"""The one place Kafka security settings become client options, and the clients made with them.

Every Kafka client the project creates is made here (:func:`kafka_producer`,
:func:`kafka_consumer`, :func:`kafka_admin`) or gets :func:`broker_credentials` (the faust
app): a client that forgot TLS or SASL would talk plaintext to a secured broker and fail in
a way that names nothing (``tests/unit/stream/kafka/test_security.py`` fails if a module
constructs a client itself).

:func:`check_kafka` is the start-up probe. aiokafka's ``start()`` says only "Unable to
bootstrap" when the TLS handshake or the SASL login fails (the reason goes to a log line),
and after start it retries for ever; so ``rfm-stream worker`` and ``backfill`` dial the first
reachable bootstrap server themselves with the same options and turn a configuration failure
(untrusted certificate, hostname mismatch, refused client certificate, refused login) into
:class:`KafkaRefused`, one line naming the cause. An unreachable broker is not a
configuration error: the probe says nothing and the clients wait for it as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]  # aiokafka ships no py.typed
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]  # aiokafka ships no py.typed
from aiokafka.conn import create_conn  # type: ignore[import-untyped]  # aiokafka ships no py.typed
from aiokafka.errors import (  # type: ignore[import-untyped]  # aiokafka ships no py.typed
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from schemas.errors import SettingsError
from schemas.settings import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

__all__ = [
    "KafkaRefused",
    "broker_credentials",
    "check_kafka",
    "client_kwargs",
    "kafka_admin",
    "kafka_consumer",
    "kafka_producer",
    "ssl_context",
]


class KafkaRefused(SettingsError):
    """The broker refused this client's TLS or SASL configuration: one line, exit 2 (a
    retry can't succeed, so the process stops instead of logging errors for ever)."""


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of every Kafka client, ``None`` without TLS.

    Built here and not by faust's ``SSLCredentials(cafile=...)`` (which raises TypeError in
    faust-streaming 0.15) nor aiokafka's helper, so the hostname check is a setting.
    """
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.kafka_ssl_cafile)
        if settings.kafka_ssl_certfile is not None:
            ctx.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    except (ssl.SSLError, OSError) as exc:
        # a file that exists but holds no usable PEM (or a key that isn't the cert's)
        raise SettingsError(f"bad Kafka TLS files: {_reason(exc)}") from None
    ctx.check_hostname = settings.kafka_ssl_check_hostname
    return ctx


def client_kwargs(settings: Settings, ctx: ssl.SSLContext | None = None) -> dict[str, Any]:
    """aiokafka's security options for ``settings`` (nothing for PLAINTEXT: aiokafka's
    defaults, so the plaintext clients are exactly what they were)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    out: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        out["ssl_context"] = ctx if ctx is not None else ssl_context(settings)
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        out["sasl_mechanism"] = settings.kafka_sasl_mechanism
        out["sasl_plain_username"] = settings.kafka_sasl_username
        out["sasl_plain_password"] = password.get_secret_value() if password else None
    return out


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """faust's ``broker_credentials`` for ``settings`` (faust maps them to the same aiokafka
    options for its consumer and producer). faust is imported here, not at the top: the
    backfill and the CLI use this module without faust."""
    import faust

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    ctx = ssl_context(settings)
    if protocol == "SSL":
        assert ctx is not None, "SSL has a context"
        return faust.SSLCredentials(ctx)
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=ctx,  # None: SASL_PLAINTEXT, a context: SASL_SSL (faust decides by it)
    )


def kafka_producer(settings: Settings, **options: Any) -> AIOKafkaProducer:
    """An aiokafka producer of ``settings``' brokers with their security options."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, **options, **client_kwargs(settings)
    )


def kafka_consumer(settings: Settings, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """An aiokafka consumer of ``settings``' brokers with their security options."""
    return AIOKafkaConsumer(
        *topics, bootstrap_servers=settings.kafka_bootstrap, **options, **client_kwargs(settings)
    )


def kafka_admin(settings: Settings, **options: Any) -> AIOKafkaAdminClient:
    """An aiokafka admin client of ``settings``' brokers with their security options."""
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **options, **client_kwargs(settings)
    )


def _reason(exc: BaseException) -> str:
    """An exception as a short phrase (an SSL error's own reason, not its errno tuple)."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    return str(exc) or type(exc).__name__


def _login_refused(where: str, settings: Settings, detail: str) -> str:
    """The one line of a refused SASL login (the user named, never the password)."""
    why = f": {detail}" if detail else ""
    return (
        f"{where}: SASL authentication failed for user {settings.kafka_sasl_username!r} "
        f"({settings.kafka_sasl_mechanism}{why})"
    )


def _split(server: str) -> tuple[str, int] | None:
    """``host:port`` (Kafka's default port without one); ``None`` for what isn't one
    (aiokafka will say so itself: the probe only names refusals)."""
    host, colon, port = server.strip().rpartition(":")
    if not colon:
        host, port = port, "9092"
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


async def check_kafka(settings: Settings, timeout_s: float = 10.0) -> None:
    """Raise :class:`KafkaRefused` if the first reachable bootstrap server refuses this
    client's TLS or SASL configuration; return quietly if it accepts it or none answers.

    One connection made like aiokafka's (``create_conn``: TLS handshake, then the SASL
    login) and one ApiVersions request over it: a broker that wants a client certificate
    refuses it only after the TLS 1.3 handshake, on the first read. A connection closed
    during the set-up with nothing naming why is tried again for :data:`CLOSED_FOR_S`: a
    broker shutting down or starting does that too, and only a lasting close is a refusal.
    """
    if settings.kafka_security_protocol == "PLAINTEXT":
        return  # nothing to refuse: the plaintext start is what it always was
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL + 1)  # the reason is ours to say, once, not aiokafka's
    try:
        await _probe(settings, timeout_s)
    finally:
        quiet.setLevel(level)


class _Closed(Exception):
    """The broker took the connection and closed it during the set-up, with no TLS alert or
    SASL answer naming why: a refusal of this client's configuration, or a broker going
    down or still starting. Only one that lasts is taken for a refusal."""


CLOSED_FOR_S = 15.0
"""How long a bootstrap server may keep closing the connection during the set-up before
that is taken for a refusal of the configuration rather than a broker restarting."""


async def _probe(settings: Settings, timeout_s: float) -> None:
    for server in settings.kafka_bootstrap.split(","):
        address = _split(server)
        if address is None:
            continue
        deadline = time.monotonic() + CLOSED_FOR_S
        while True:
            try:
                if await _probe_one(settings, *address, timeout_s):
                    return
                break  # down or not answering: the next server, or the clients' own waiting
            except _Closed as exc:
                if time.monotonic() >= deadline:
                    raise KafkaRefused(str(exc)) from None
                await asyncio.sleep(1.0)


async def _probe_one(settings: Settings, host: str, port: int, timeout_s: float) -> bool:
    """True if ``host:port`` accepts this client; False if it isn't answering (not a
    configuration error); raises :class:`KafkaRefused` for a refusal that names itself and
    :class:`_Closed` for a close that doesn't (yet)."""
    ctx = ssl_context(settings)
    where = f"kafka at {host}:{port}"
    sasl = settings.kafka_security_protocol.startswith("SASL_")
    try:
        if ctx is not None:  # the handshake alone first: its failures, named
            await _handshake(host, port, ctx, timeout_s)
        conn = await asyncio.wait_for(
            create_conn(
                host,
                port,
                request_timeout_ms=int(timeout_s * 1000),
                **client_kwargs(settings, ctx),
            ),
            timeout_s,
        )
    except ssl.SSLCertVerificationError as exc:
        what = "hostname mismatch" if "mismatch" in str(exc.verify_message) else None
        what = what or "TLS certificate not trusted"
        raise KafkaRefused(f"{where}: {what} ({_reason(exc)})") from None
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError) as exc:
        # the other side went away mid-handshake: what a broker shutting down does too
        raise _Closed(f"{where}: TLS handshake cut off ({_reason(exc)})") from None
    except ssl.SSLError as exc:
        raise KafkaRefused(f"{where}: TLS handshake failed ({_reason(exc)})") from None
    except (SaslAuthenticationFailed, AuthenticationFailedError, IllegalSaslStateError) as exc:
        raise KafkaRefused(_login_refused(where, settings, str(exc))) from None
    except (KeyError, ValueError):
        if not sasl:
            return False  # not a login: nothing this probe can name
        # aiokafka's SCRAM code reading a server-final "e=..." answer (KeyError 'v', as
        # Tansu sends it) or a server signature that doesn't match (ValueError)
        raise KafkaRefused(_login_refused(where, settings, "")) from None
    except UnsupportedSaslMechanismError:
        raise KafkaRefused(
            f"{where}: SASL mechanism {settings.kafka_sasl_mechanism} not offered by the broker"
        ) from None
    except ConnectionAbortedError as exc:
        if "handshake" not in str(exc):
            return False
        raise KafkaRefused(
            f"{where}: no answer to the TLS handshake in {timeout_s:g}s (a plaintext "
            f"port? RFM_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol})"
        ) from None
    except KafkaConnectionError as exc:
        if "closed" not in str(exc):
            return False
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ssl.SSLError) and not isinstance(
            cause, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
        ):
            raise KafkaRefused(_closed(where, settings, exc)) from None  # a TLS alert: named
        raise _Closed(_closed(where, settings, exc)) from None
    except (OSError, KafkaError, TimeoutError):
        return False  # down or not answering: not a configuration error
    conn.close()
    return True


async def _handshake(host: str, port: int, ctx: ssl.SSLContext, timeout_s: float) -> None:
    """A TLS handshake with ``host:port``: raises the ssl error of a refused one, and
    ConnectionAbortedError when the port takes the connection but never answers the
    handshake (a plaintext Kafka listener reads the ClientHello as a request and waits)."""
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=ctx, ssl_handshake_timeout=timeout_s),
        timeout_s * 2,
    )
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()


def _closed(where: str, settings: Settings, exc: BaseException) -> str:
    """The one line of a broker that accepted the connection and closed it during the
    set-up (ApiVersions, SASL): what refuses a client that way is its configuration."""
    cause = exc.__cause__ or exc.__context__
    no_cert = settings.kafka_ssl_certfile is None
    if isinstance(cause, ssl.SSLError):
        reason = _reason(cause)
        if no_cert and "certificate required" in reason:
            # the alert or a plain close (below): which one the client sees is a race
            return (
                f"{where}: TLS refused: the broker requires a client certificate and "
                f"RFM_KAFKA_SSL_CERTFILE is not set ({reason})"
            )
        return f"{where}: TLS refused ({reason})"
    if settings.kafka_security_protocol.endswith("SSL") and no_cert:
        hint = "does it require a client certificate? RFM_KAFKA_SSL_CERTFILE is not set"
    elif settings.kafka_security_protocol.startswith("SASL_"):
        hint = f"does it offer SASL {settings.kafka_sasl_mechanism}?"
    else:
        hint = "is RFM_KAFKA_SECURITY_PROTOCOL the one of this port?"
    return f"{where}: the broker closed the connection during the set-up ({hint})"
