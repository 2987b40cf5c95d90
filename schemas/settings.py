"""One frozen settings object, from ``RFM_*`` environment variables or CLI options.

A bad value fails at start with one line naming the variable and the problem
(:func:`load_settings`), never a traceback.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from schemas.connection_settings import CONFIG, ENV_PREFIX, ConnectionSettings
from schemas.durations import parse_duration, parse_duration_or_zero
from schemas.errors import SettingsError
from schemas.secrets import mask_url
from schemas.times import EARLIEST_EVENT, event_time_range_problem, to_ms

__all__ = ["Duration", "Settings", "SettingsError", "load_settings"]

Duration = Annotated[int, BeforeValidator(parse_duration)]
"""Milliseconds; accepts ``90d``, ``12h``, ``30s``, ``1h30m``, ``500ms``."""
DurationOrZero = Annotated[int, BeforeValidator(parse_duration_or_zero)]
"""A :data:`Duration`, or 0 (off)."""

MAX_DECAY_GRACE = "30d"
"""Longest ``RFM_DECAY_GRACE``: uploads later than that are for a backfill."""


class Settings(ConnectionSettings):
    """Everything a worker needs. Durations are held as integer milliseconds.

    Where Kafka and Redis are and how to reach them securely come first, from
    :class:`schemas.connection_settings.ConnectionSettings`; the rest is here."""

    model_config = CONFIG

    allow_eviction: bool = Field(
        False,
        description="Start even if Redis's maxmemory-policy evicts keys (anything but "
        "noeviction). An evicting Redis silently drops customer states, offsets and outbox "
        "entries: only for a Redis that holds nothing else and never reaches maxmemory.",
    )
    accept_short_windows: bool = Field(
        False,
        description="Start on rules whose rolling windows are longer than the purchase days "
        "the namespace's customers kept: their windowed totals restart from new events only "
        "(without it the worker refuses, naming the backfill-and-promote procedure).",
    )
    namespace: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")] = Field(
        "live", description="State namespace in Redis (backfills write to another)."
    )
    key_prefix: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,16}$")] = "rfm"
    group_id: str = Field("rfm-stream", description="Kafka consumer group of the workers.")
    purchases_topic: str = "purchases"
    transitions_topic: str = "segment-transitions"
    dlq_topic: str = "purchases.dlq"
    partitions: int = Field(4, ge=1, le=1024, description="Partitions when topics are created.")

    # --- segment rules
    rules: str | None = Field(
        None,
        description="Rules files (TOML) declaring the schemes, comma-separated paths or "
        "shipped names (rfm = default, management, all = both); unset: the RFM schemes.",
    )
    recency: Duration | None = Field(None, description="Override rfm8's R cut point (90d).")
    frequency_cut: int | None = Field(None, ge=1, description="Override rfm8's F cut (2).")
    monetary_cut: Decimal | None = Field(None, gt=0, description="Override rfm8's M cut (1000).")
    quantile_refresh: Duration = Field(
        parse_duration("1h"), description="How often quantile cut points are recomputed."
    )
    sweep_batch: int = Field(
        250,
        ge=1,
        description="Customers re-evaluated per partition per timer tick after a rules or "
        "cut-point change (rate limit of the background sweep; each step holds up live "
        "batches while it runs).",
    )
    publish_recalibrations: bool = Field(
        True, description="Publish transitions caused only by moved quantile cut points."
    )
    # --- customer value (value_figures schemes, the P(alive) axis)
    model_sample: int = Field(
        20_000,
        ge=100,
        description="Customers sampled to refit the base's BG/NBD model with each "
        "cut-point version (only when a scheme reads it).",
    )
    clv_margin_rate: Decimal = Field(
        Decimal("0.25"), gt=0, le=1, description="Margin per unit of revenue, for CLV."
    )
    clv_years: int | None = Field(
        None,
        ge=0,
        le=50,
        description="CLV lifetime n in years (default 5, or from RFM_CLV_YEARLY_CHURN).",
    )
    clv_yearly_churn: Decimal | None = Field(
        None,
        ge=Decimal("0.02"),
        le=1,
        description="Or: the group lifetime n = 1 / yearly churn rate (rounded down; at "
        "most 50 years, like RFM_CLV_YEARS).",
    )

    @field_validator("clv_yearly_churn")
    @classmethod
    def _one_lifetime(cls, v: Decimal | None, info: ValidationInfo) -> Decimal | None:
        if v is not None and info.data.get("clv_years") is not None:
            raise ValueError("give the CLV lifetime once: this or RFM_CLV_YEARS, not both")
        return v

    clv_discount_rate: Decimal = Field(
        Decimal("0.09"), ge=0, lt=1, description="Yearly discount rate r of the CLV."
    )
    clv_acquisition_cost: Decimal = Field(
        Decimal(0), ge=0, description="Acquisition cost A subtracted in the CLV."
    )

    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = Field(
        "CNY", description="The one currency monetary totals are kept in."
    )

    max_amount: Decimal = Field(
        Decimal(1_000_000), gt=0, description="Larger single amounts are dead-lettered."
    )
    max_message_bytes: int = Field(
        65_536, ge=256, description="Larger messages are dead-lettered unparsed."
    )

    # --- effectively-once and refunds (event-time windows)
    dedupe_retention: Duration = Field(
        parse_duration("30d"), description="A resent event_id is ignored for at least this long."
    )
    order_retention: Duration = Field(
        parse_duration("90d"), description="Orders are kept this long for refunds against them."
    )
    refund_hold: Duration = Field(
        parse_duration("7d"), description="A refund before its purchase waits this long."
    )

    # --- what lookups and reports can see
    history_size: int = Field(
        5, ge=0, le=100, description="Latest transitions kept per customer for lookups."
    )
    matrix_retention: Duration = Field(
        parse_duration("400d"),
        description="Hourly from -> to transition counts are kept this long (event time).",
    )

    # --- stream behaviour
    batch_max: int = Field(
        16_000,
        ge=1,
        description="Max events per processed batch. Only a worker that is behind fills "
        "one (a batch is what has been fetched). A bigger one decodes and encodes a customer "
        "once for all their events in it and spreads the per-batch work (two scripts per "
        "partition) over more events; it also holds each partition's commit script, and "
        "so Redis, longer and takes more memory (BENCHMARKS.md, 'Live worker batch size').",
    )
    batch_within: Duration = Field(
        parse_duration("20ms"),
        description="Not used by the worker any more (batches are what each fetch brings, "
        "stream/live/delivery.py); accepted so that older configurations still load.",
    )
    decay_timer: bool = Field(True, description="Fire time-driven transitions on a timer.")
    decay_interval: Duration = Field(parse_duration("250ms"), description="Timer period.")
    decay_batch: int = Field(2000, ge=1, description="Due customers taken per timer step.")
    decay_grace: DurationOrZero = Field(
        0,
        description="Time-driven transitions fire this long after their due time (still "
        "effective at it), so an event dated before a due time that arrives within the "
        "grace is applied first and the wrong decay is never published; 0: at once.",
    )

    @field_validator("decay_grace")
    @classmethod
    def _grace_bound(cls, v: int) -> int:
        """Late uploads, not history: data later than this is for a backfill, and every
        decay campaign would wait as long."""
        if v > parse_duration(MAX_DECAY_GRACE):
            raise ValueError(f"at most {MAX_DECAY_GRACE}")
        return v

    max_future_skew: Duration = Field(
        parse_duration("5m"), description="Reject events dated further in the future."
    )
    earliest_event: AwareDatetime = Field(
        EARLIEST_EVENT,
        description="Reject events dated earlier (e.g. a till whose clock reset); "
        "never before 1970-01-01T00:00:00Z.",
    )

    @field_validator("earliest_event")
    @classmethod
    def _event_time(cls, v: datetime) -> datetime:
        problem = event_time_range_problem(to_ms(v))
        if problem is not None:
            raise ValueError(problem)
        return v

    partitioner: Literal["murmur2", "crc32"] = Field(
        "murmur2",
        description="How producers map customer_id keys to partitions (Java/aiokafka: murmur2;"
        " librdkafka: crc32); events found elsewhere are forwarded to that partition.",
    )
    kafka_session_timeout: Duration = Field(parse_duration("10s"))
    fetch_max_wait: Duration = Field(
        parse_duration("20ms"),
        description="Longest the broker may hold a fetch for the worker (an upper bound on "
        "the read latency with brokers that don't answer a waiting fetch early; an idle "
        "worker sends one fetch per broker per this period). A worker that is behind gets "
        "its records at once whatever this is.",
    )
    http_port: int = Field(
        8080, ge=0, le=65535, description="HTTP API, /metrics and /health; 0: off."
    )
    http_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address the HTTP API binds: loopback by default (it serves personal "
        "data); 0.0.0.0 in a container, whose port the host publishes.",
    )
    http_token: SecretStr | None = Field(
        None,
        description="Bearer token the HTTP API's data routes require (unset or empty: "
        "none); /health, /metrics and /openapi.json stay open.",
    )
    http_max_days: int = Field(
        93,
        ge=1,
        description="Most day-hashes per partition one /transitions/matrix request may "
        "read (a range of N days reads N or N+1); more is refused with 400.",
    )

    @field_validator("http_token", mode="before")
    @classmethod
    def _token_shape(cls, value: object) -> object:
        """Empty means unset (a compose file passes ``${RFM_HTTP_TOKEN:-}``). A token must
        be one RFC 6750 ``b64token`` a client can put in a header, and long enough not to
        be guessed: a short one is refused at start rather than protecting nothing."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str) or not re.fullmatch(r"[A-Za-z0-9._~+/-]+=*", raw):
            raise ValueError("must be letters, digits and -._~+/ (then = padding), no spaces")
        if len(raw) < 16:
            raise ValueError("must be at least 16 characters (e.g. openssl rand -hex 32)")
        return raw

    health_max_lag: int = Field(
        1000,
        ge=0,
        description="/health is ready only while every owned partition is "
        "at most this many records behind.",
    )
    outbox_max: int = Field(
        20_000,
        ge=1,
        description="Back-pressure: consumption of a partition pauses while its outbox "
        "holds more than this many unpublished transitions (publishing fails or lags), "
        "and resumes by itself once the outbox is down to half of it.",
    )
    health_max_outbox: int = Field(
        5_000,
        ge=0,
        description="/health is ready only while every owned partition's outbox holds at "
        "most this many unpublished transitions.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def masked(self) -> dict[str, Any]:
        """Settings for logs: secrets (the Redis password) never printed."""
        out = self.model_dump()
        out["redis_url"] = mask_url(self.redis_url.get_secret_value())
        return out


def _shown(field: str, value: object) -> str:
    """A rejected input as it may appear in an error: never a secret field's value."""
    annotation = Settings.model_fields[field].annotation if field in Settings.model_fields else None
    if annotation is not None and "SecretStr" in str(annotation):
        return "<secret, not shown>"
    return repr(value)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment plus explicit ``overrides`` (CLI options).

    ``None`` overrides are ignored so CLI options default to the environment.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        name = f"{ENV_PREFIX}{field.upper()}" if field in Settings.model_fields else field
        msg = first["msg"].removeprefix("Value error, ")
        shown = _shown(field, first.get("input"))
        raise SettingsError(f"bad setting {name}: {msg} (got {shown})") from None
