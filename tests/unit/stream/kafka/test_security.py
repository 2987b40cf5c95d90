"""Kafka security settings reach every Kafka client the project creates (issue #17).

No broker here: the aiokafka classes are replaced by recorders, and a guard reads the
source so that a new client made without :mod:`stream.kafka.security` fails a test.
(Real TLS, mutual TLS and a refused SCRAM login: tests/integration/security.)
"""

from __future__ import annotations

import ast
import ssl
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import Settings, SettingsError, load_settings
from stream.kafka import security
from tests.support.tls import Pki, make_pki

ROOT = Path(__file__).resolve().parents[4]

CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "AIOKafkaClient"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def sasl_ssl(pki: Pki, **more: Any) -> Settings:
    return load_settings(
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_cafile=pki.ca_crt,
        kafka_ssl_certfile=pki.client_crt,
        kafka_ssl_keyfile=pki.client_key,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="rfm-worker",
        kafka_sasl_password="hunter2",
        **more,
    )


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("given", "line"),
    [
        (
            {"kafka_security_protocol": "SASL_SSL"},
            "bad setting RFM_KAFKA_SASL_MECHANISM: required with "
            "RFM_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        ),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN"},
            "bad setting RFM_KAFKA_SASL_USERNAME: required",
        ),
        (
            {
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_mechanism": "SCRAM-SHA-256",
                "kafka_sasl_username": "u",
            },
            "bad setting RFM_KAFKA_SASL_PASSWORD: required",
        ),
        ({"kafka_sasl_username": "u"}, "bad setting RFM_KAFKA_SASL_USERNAME: only used with"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "bad setting RFM_KAFKA_SASL_MECHANISM: Input"),
        ({"kafka_security_protocol": "TLS"}, "bad setting RFM_KAFKA_SECURITY_PROTOCOL: Input"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/no/such/ca.crt"},
            "bad setting RFM_KAFKA_SSL_CAFILE: no readable file '/no/such/ca.crt'",
        ),
        (
            {"kafka_ssl_cafile": __file__},
            "bad setting RFM_KAFKA_SSL_CAFILE: a TLS file needs RFM_KAFKA_SECURITY_PROTOCOL=SSL",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_certfile": __file__},
            "bad setting RFM_KAFKA_SSL_KEYFILE: a client certificate (RFM_KAFKA_SSL_CERTFILE) "
            "needs its key",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": __file__},
            "bad setting RFM_KAFKA_SSL_KEYFILE: a client key needs its certificate",
        ),
    ],
)
def test_a_wrong_kafka_security_setting_is_one_line_naming_it(
    given: dict[str, str], line: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(**given)
    assert str(info.value).startswith(line)
    assert "\n" not in str(info.value)


def test_the_sasl_password_is_never_shown(pki: Pki) -> None:
    s = sasl_ssl(pki)
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(s.masked())
    with pytest.raises(SettingsError) as info:
        load_settings(kafka_sasl_password="hunter2")  # refused: PLAINTEXT
    assert "RFM_KAFKA_SASL_PASSWORD" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_a_tls_file_that_is_no_pem_is_one_line(pki: Pki) -> None:
    s = load_settings(kafka_security_protocol="SSL", kafka_ssl_cafile=__file__)
    with pytest.raises(SettingsError, match=r"^bad Kafka TLS files: "):
        security.ssl_context(s)
    s = load_settings(
        kafka_security_protocol="SSL",
        kafka_ssl_certfile=pki.client_crt,
        kafka_ssl_keyfile=pki.server_key,  # not the certificate's key
    )
    with pytest.raises(SettingsError, match=r"^bad Kafka TLS files: "):
        security.ssl_context(s)


# ------------------------------------------------------------------ the mapping


def test_plaintext_adds_no_option_at_all() -> None:
    """The default path is exactly what it was: aiokafka's defaults, no faust credentials."""
    s = load_settings()
    assert security.client_kwargs(s) == {}
    assert security.broker_credentials(s) is None
    assert security.ssl_context(s) is None


def test_ssl_is_a_verifying_context_of_the_given_ca_and_client_cert(pki: Pki) -> None:
    s = load_settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=pki.ca_crt,
        kafka_ssl_certfile=pki.client_crt,
        kafka_ssl_keyfile=pki.client_key,
    )
    kw = security.client_kwargs(s)
    assert set(kw) == {"security_protocol", "ssl_context"}
    assert kw["security_protocol"] == "SSL"
    ctx = kw["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "rfm-test-ca"),),)]
    off = load_settings(
        kafka_security_protocol="SSL", kafka_ssl_cafile=pki.ca_crt, kafka_ssl_check_hostname=False
    )
    assert security.client_kwargs(off)["ssl_context"].check_hostname is False


def test_sasl_reaches_aiokafka_and_faust_alike(pki: Pki) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    s = sasl_ssl(pki)
    kw = security.client_kwargs(s)
    assert {k: v for k, v in kw.items() if k != "ssl_context"} == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "rfm-worker",
        "sasl_plain_password": "hunter2",
    }
    assert isinstance(kw["ssl_context"], ssl.SSLContext)
    faust_kw = dict(credentials_to_aiokafka_auth(security.broker_credentials(s)))
    assert isinstance(faust_kw.pop("ssl_context"), ssl.SSLContext)
    assert faust_kw == {k: v for k, v in kw.items() if k != "ssl_context"}

    plain = load_settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password="p",
    )
    faust_kw = dict(credentials_to_aiokafka_auth(security.broker_credentials(plain)))
    assert faust_kw.pop("ssl_context") is None
    assert faust_kw == security.client_kwargs(plain)
    assert faust_kw["security_protocol"] == "SASL_PLAINTEXT"


def test_the_worker_faust_app_carries_the_credentials(pki: Pki) -> None:
    """faust's consumer and producer take their security from ``broker_credentials``."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from stream.live.faust_app import raw_app

    s = load_settings(kafka_security_protocol="SSL", kafka_ssl_cafile=pki.ca_crt)
    app, _topic = raw_app(s, "rfm-test-security")
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    assert auth["security_protocol"] == "SSL"
    ours = security.ssl_context(s)
    assert ours is not None
    assert auth["ssl_context"].get_ca_certs() == ours.get_ca_certs()
    plain_app, _ = raw_app(load_settings(), "rfm-test-security-plain")
    assert plain_app.conf.broker_credentials is None


# ------------------------------------------------------------------ every client


class Recorder:
    """Stands in for an aiokafka client class: records its keyword arguments; ``start``
    fails like an unreachable broker (the callers' own handling then runs)."""

    made: list[tuple[str, dict[str, Any]]]

    def __init__(self, name: str, made: list[tuple[str, dict[str, Any]]]) -> None:
        self.name, self.made = name, made

    def __call__(self, *topics: str, **kwargs: Any) -> Recorder:
        self.made.append((self.name, kwargs))
        return self

    async def start(self) -> None:
        raise OSError("no broker in a unit test")

    async def close(self) -> None:
        return None

    async def stop(self) -> None:
        return None


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for name in ("AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"):
        monkeypatch.setattr(security, name, Recorder(name, out))
    return out


async def test_every_client_factory_passes_the_security_options(
    made: list[tuple[str, dict[str, Any]]], pki: Pki
) -> None:
    """The worker's and relay's producer (make_producer), the admin clients (ensure_topics,
    topic_partitions, the backfill's dead-letter topic), the backfill's consumer."""
    from stream.backfill.forward import ensure_backfill_dlq
    from stream.backfill.reader import make_consumer
    from stream.kafka.clients import ensure_topics, make_producer, topic_partitions

    s = sasl_ssl(pki)
    make_producer(s)
    make_consumer(s)
    assert await topic_partitions(s, timeout_s=1) is None
    for creates_topics in (ensure_topics, ensure_backfill_dlq):
        with pytest.raises(OSError):
            await creates_topics(s, timeout_s=1)
    assert [name for name, _ in made] == [
        "AIOKafkaProducer",
        "AIOKafkaConsumer",
        "AIOKafkaAdminClient",
        "AIOKafkaAdminClient",
        "AIOKafkaAdminClient",
    ]
    for name, kwargs in made:
        assert kwargs["bootstrap_servers"] == s.kafka_bootstrap, name
        assert kwargs["security_protocol"] == "SASL_SSL", name
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512", name
        assert kwargs["sasl_plain_username"] == "rfm-worker", name
        assert kwargs["sasl_plain_password"] == "hunter2", name
        assert isinstance(kwargs["ssl_context"], ssl.SSLContext), name


def _constructions(path: Path) -> list[tuple[int, str, ast.Call]]:
    """Calls of a Kafka client class (or ``faust.App``) in ``path``: (line, name, call)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        if name in CLIENTS or name == "App":
            out.append((node.lineno, name, node))
    return out


def test_no_module_creates_a_kafka_client_without_the_security_options() -> None:
    """A client made anywhere but stream/kafka/security.py would talk plaintext to a secured
    broker; faust's App must be given ``broker_credentials``. Guards future clients too."""
    allowed = ROOT / "stream" / "kafka" / "security.py"
    stray, apps = [], []
    for path in sorted((ROOT / "stream").rglob("*.py")):
        for line, name, call in _constructions(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if name == "App":
                apps.append(where)
                if not any(k.arg == "broker_credentials" for k in call.keywords):
                    stray.append(f"{where} faust.App without broker_credentials")
            elif path != allowed:
                stray.append(f"{where} {name}(...): use stream.kafka.security's factories")
    assert stray == []
    assert apps == ["stream/live/faust_app.py:" + apps[0].rpartition(":")[2]], apps
    made_here = {name for _, name, _ in _constructions(allowed)}
    assert made_here == {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}


async def test_plaintext_start_probes_nothing() -> None:
    """PLAINTEXT: no probe connection at all (the start is what it always was)."""
    await security.check_kafka(load_settings(kafka_bootstrap="127.0.0.1:1"), timeout_s=0.01)


@pytest.mark.parametrize(
    ("server", "address"),
    [
        ("broker1:9093", ("broker1", 9093)),
        (" broker1 ", ("broker1", 9092)),
        ("[::1]:9093", ("::1", 9093)),
        ("broker1:abc", None),
        ("", None),
    ],
)
def test_the_probe_reads_a_bootstrap_entry_or_skips_it(
    server: str, address: tuple[str, int] | None
) -> None:
    assert security._split(server) == address
