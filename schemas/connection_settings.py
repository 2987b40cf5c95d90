"""Where Kafka and Redis are, and how to reach them on secured infrastructure.

The first group of :class:`schemas.settings.Settings`, kept apart because it is the part an
operator deploying onto TLS / SASL / ACL'd services reads, and its cross-field checks (a
client certificate needs its key; TLS files only with a TLS protocol or URL; SASL fields
exactly with a SASL protocol) belong together. ``Settings`` extends this class, so these
fields come first in every listing (``--help``, the README's table, ``masked()``), as they
always did, and ``RFM_*`` reads them like every other setting.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.tls_files import check_tls_file

__all__ = ["CONFIG", "ENV_PREFIX", "ConnectionSettings"]

ENV_PREFIX = "RFM_"

CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX, frozen=True, extra="forbid", case_sensitive=False
)
"""The configuration of every settings class: ``RFM_*`` variables, frozen, no unknown keys."""


class ConnectionSettings(BaseSettings):
    """Kafka's and Redis's addresses and their TLS / SASL material (see the module)."""

    model_config = CONFIG

    # --- where things are
    kafka_bootstrap: str = Field("localhost:9092", description="Kafka bootstrap servers.")
    # --- Kafka security (stream/kafka/security.py turns these into every client's options)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How Kafka clients talk to the brokers (TLS: SSL, SASL_SSL)."
    )
    kafka_ssl_cafile: str | None = Field(
        None,
        validate_default=True,
        description="CA certificate(s) (PEM) the brokers' certificates must chain to "
        "(default: the system's trust store).",
    )
    kafka_ssl_certfile: str | None = Field(
        None,
        validate_default=True,
        description="Client certificate (PEM) for brokers that require one (mutual TLS).",
    )
    kafka_ssl_keyfile: str | None = Field(
        None,
        validate_default=True,
        description="Private key (PEM, unencrypted) of RFM_KAFKA_SSL_CERTFILE.",
    )
    kafka_ssl_check_hostname: bool = Field(
        True, description="The broker's certificate must name the host dialled (keep it on)."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, validate_default=True, description="SASL mechanism (SASL_* protocols)."
    )
    kafka_sasl_username: str | None = Field(
        None, validate_default=True, description="SASL user name (SASL_* protocols)."
    )
    kafka_sasl_password: SecretStr | None = Field(
        None,
        validate_default=True,
        description="SASL password (SASL_* protocols; never logged).",
    )

    @field_validator("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
    @classmethod
    def _kafka_tls_file(cls, v: str | None, info: ValidationInfo) -> str | None:
        protocol = str(info.data.get("kafka_security_protocol", ""))
        return check_tls_file(
            v,
            str(info.field_name),
            info.data,
            tls_used=protocol.endswith("SSL"),
            tls_needed="RFM_KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL",
            cert=("kafka_ssl_certfile", "RFM_KAFKA_SSL_CERTFILE"),
            key_field="kafka_ssl_keyfile",
        )

    @field_validator("kafka_ssl_keyfile")
    @classmethod
    def _kafka_key_of_cert(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None and info.data.get("kafka_ssl_certfile") is not None:
            raise ValueError("a client certificate (RFM_KAFKA_SSL_CERTFILE) needs its key here")
        return v

    @field_validator("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
    @classmethod
    def _kafka_sasl(cls, v: object, info: ValidationInfo) -> object:
        if v == "":
            v = None
        protocol = str(info.data.get("kafka_security_protocol", ""))
        if protocol.startswith("SASL_") and v is None:
            raise ValueError(f"required with RFM_KAFKA_SECURITY_PROTOCOL={protocol}")
        if v is not None and protocol and not protocol.startswith("SASL_"):
            raise ValueError(
                "only used with RFM_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT or SASL_SSL"
            )
        return v

    redis_url: SecretStr = Field(
        SecretStr("redis://localhost:6379/0"), description="Redis URL (password is masked)."
    )
    # TLS material as files (a mounted secret), not in the URL's query: used only with a
    # rediss:// or rediss+cluster:// URL, for every Redis client the project makes
    redis_tls_ca_file: str | None = Field(
        None,
        description="CA certificate(s) (PEM) that signed the Redis server's certificate "
        "(rediss:// only; unset: the system's trust store).",
    )
    redis_tls_cert_file: str | None = Field(
        None, description="Client certificate (PEM) for Redis's tls-auth-clients (rediss://)."
    )
    redis_tls_key_file: str | None = Field(
        None, description="Private key (PEM) of RFM_REDIS_TLS_CERT_FILE (rediss://)."
    )

    @field_validator("redis_tls_ca_file", "redis_tls_cert_file", "redis_tls_key_file")
    @classmethod
    def _redis_tls_file(cls, v: str | None, info: ValidationInfo) -> str | None:
        url = info.data.get("redis_url")
        scheme = urlsplit(url.get_secret_value()).scheme if isinstance(url, SecretStr) else ""
        return check_tls_file(
            v,
            str(info.field_name),
            info.data,
            tls_used=url is None or scheme in ("rediss", "rediss+cluster"),
            tls_needed="a TLS Redis URL (RFM_REDIS_URL=rediss://…)",
            cert=("redis_tls_cert_file", "RFM_REDIS_TLS_CERT_FILE"),
            key_field="redis_tls_key_file",
        )
