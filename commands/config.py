"""Configuration: read once from the environment and `.env`, validated, passed down.

Every setting is one annotated field of `Settings`; its environment name, help text and
whether it is a secret live in the annotation, so the README table, `billing config`
style output and validation all come from one place. Every bad value is reported at
once, by name. Secrets are never printed: `masked()` is what people see.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from commands.env_values import EVENT_LOG, PARTY, URL, Spec, clip, convert, merge, reason, rust_log_level
from commands.errors import ConfigError

# Upper bounds keep every duration inside datetime arithmetic (a 30-digit value must be an
# error at start, not an OverflowError in the middle of a run).
_30_DAYS = 30 * 86400
_LEVEL = Literal["trace", "debug", "info", "warn", "warning", "error", "critical"]


def env(name: str, help: str, *, secret: bool = False, **constraints: Any) -> msgspec.Meta:
    """Annotation for one setting: its variable name, meaning and value constraints."""
    return msgspec.Meta(description=help, extra={"env": name, "secret": secret}, **constraints)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """All settings of one run. Build it with `Settings.from_env`."""

    # Canton network
    canton_chain: Annotated[str, env("CANTON_CHAIN", "Network name, sent as OTel resource canton.chain")] = "unknown"
    app_name: Annotated[str, env("APP_NAME", "Service name in logs and OTel (service.name)")] = "canton-billing"
    party_app: (
        Annotated[str, env("PARTY_APP", "The app's party: receives payments, owns the preapproval", pattern=PARTY)]
        | None
    ) = None
    app_provider_api_url: (
        Annotated[str, env("APP_PROVIDER_API_URL", "App provider participant's JSON Ledger API v2", pattern=URL)] | None
    ) = None
    scan_api_url: (
        Annotated[str, env("SCAN_API_URL", "A Scan API base URL, ending in /api/scan", pattern=URL)] | None
    ) = None
    app_transfer_preapproval_cid: (
        Annotated[
            str,
            env(
                "APP_TRANSFER_PREAPPROVAL_CID",
                "Optional: pin the app's TransferPreapproval contract id (else looked up in Scan)",
            ),
        ]
        | None
    ) = None
    # Ledger API authentication: a static token, or OAuth2 client credentials
    app_provider_jwt: (
        Annotated[str, env("APP_PROVIDER_JWT", "Static bearer token for the Ledger API", secret=True)] | None
    ) = None
    ledger_auth_token_url: (
        Annotated[str, env("LEDGER_AUTH_TOKEN_URL", "OAuth2 token endpoint (client credentials)", pattern=URL)] | None
    ) = None
    ledger_auth_client_id: Annotated[str, env("LEDGER_AUTH_CLIENT_ID", "OAuth2 client id")] | None = None
    ledger_auth_client_secret: (
        Annotated[str, env("LEDGER_AUTH_CLIENT_SECRET", "OAuth2 client secret", secret=True)] | None
    ) = None
    ledger_auth_audience: Annotated[str, env("LEDGER_AUTH_AUDIENCE", "OAuth2 audience of the Ledger API")] | None = None
    ledger_auth_scope: Annotated[str, env("LEDGER_AUTH_SCOPE", "OAuth2 scope, if your IdP needs one")] | None = None
    ledger_user_id: (
        Annotated[str, env("LEDGER_USER_ID", "Ledger API user id (only when the token does not name it)")] | None
    ) = None
    # Storage and data
    rocksdb_path: Annotated[str, env("ROCKSDB_PATH", "State directory: event log and projections")] = "./billing_db"
    billing_data_dir: Annotated[str, env("BILLING_DATA_DIR", "Folder with users.json and subscriptions.json")] = "data"
    retention_days: Annotated[
        int,
        env(
            "RETENTION_DAYS",
            "Days of window-metric rows to keep (the event log itself is never pruned)",
            ge=1,
            le=36500,
        ),
    ] = 365
    log_fsync: Annotated[bool, env("LOG_FSYNC", "fsync each event-log commit (power-loss safety)")] = True
    event_log: Annotated[
        str, env("EVENT_LOG", "Event log backend: embedded, or kafka://host:port", pattern=EVENT_LOG)
    ] = "embedded"
    kafka_topic: Annotated[
        str, env("KAFKA_TOPIC", "Kafka backend: the event topic (dead letters go to <topic>.dead-letter)")
    ] = "billing.events"
    kafka_partitions: Annotated[
        int,
        env(
            "KAFKA_PARTITIONS",
            "Kafka backend: partitions of a new event topic (the most workers that help)",
            ge=1,
            le=10000,
        ),
    ] = 12
    kafka_replication: Annotated[
        int, env("KAFKA_REPLICATION", "Kafka backend: replication factor of a new topic", ge=1, le=10)
    ] = 1
    kafka_group: Annotated[str, env("KAFKA_GROUP", "Kafka backend: consumer group of the workers")] = "canton-billing"
    kafka_session_timeout_secs: Annotated[
        float, env("KAFKA_SESSION_TIMEOUT_SECS", "Kafka backend: a silent worker loses its partitions after this", ge=1)
    ] = 10.0
    # Processing
    check_interval_secs: Annotated[
        int, env("CHECK_INTERVAL_SECS", "Scheduler tick of `start`, seconds", ge=1, le=86400)
    ] = 60
    payment_retry_interval: Annotated[
        int, env("PAYMENT_RETRY_INTERVAL", "First retry delay, seconds (doubles, capped)", ge=1, le=86400)
    ] = 30
    max_payment_retries: Annotated[
        int, env("MAX_PAYMENT_RETRIES", "Attempts per payment before a final failure", ge=1, le=100)
    ] = 5
    retry_horizon_secs: Annotated[
        int, env("RETRY_HORIZON_SECS", "No retry later than this after the request", ge=60, le=_30_DAYS)
    ] = 86400
    deduplication_secs: Annotated[
        int, env("DEDUPLICATION_SECS", "Ledger deduplication period sent with each command", ge=60, le=_30_DAYS)
    ] = 172800
    max_in_flight: Annotated[
        int, env("MAX_IN_FLIGHT", "Payments in flight at once (one per sender party)", ge=1, le=10000)
    ] = 256
    payment_rate_limit: Annotated[
        float, env("PAYMENT_RATE_LIMIT", "Max submissions per second (0 = no limit)", ge=0, le=1e6)
    ] = 0.0
    recovery_max_periods: Annotated[
        int, env("RECOVERY_MAX_PERIODS", "Missed periods charged per subscription on recovery", ge=0, le=100_000)
    ] = 100
    min_interval_sec: Annotated[
        int, env("MIN_INTERVAL_SEC", "Shortest interval_sec a plan may have", ge=1, le=86400)
    ] = 60
    failure_alert_threshold: Annotated[
        int,
        env(
            "FAILURE_ALERT_THRESHOLD",
            "Failed payments of one user within the window that log a WARN alert (0 = off)",
            ge=0,
            le=1_000_000,
        ),
    ] = 5
    failure_alert_window_secs: Annotated[
        int, env("FAILURE_ALERT_WINDOW_SECS", "Window of FAILURE_ALERT_THRESHOLD, seconds", ge=1, le=_30_DAYS)
    ] = 3600
    http_timeout_secs: Annotated[
        float, env("HTTP_TIMEOUT_SECS", "Read timeout for Canton and Scan calls", gt=0, le=3600)
    ] = 30.0
    # Local API (used by commands while the daemon runs)
    api_port: Annotated[
        int, env("BILLING_API_PORT", "Loopback port of the daemon's API and dashboard", ge=1, le=65535)
    ] = 8765
    api_token: (
        Annotated[
            str, env("BILLING_API_TOKEN", "Token for the local API (default: generated in the state dir)", secret=True)
        ]
        | None
    ) = None
    # Observability
    log_level: Annotated[_LEVEL, env("LOG_LEVEL", "trace, debug, info, warn, error (RUST_LOG is an alias)")] = "info"
    log_format: Annotated[Literal["kv", "json"], env("LOG_FORMAT", "Log line format on stderr")] = "kv"
    opentelemetry_ingesting_host: (
        Annotated[str, env("OPENTELEMETRY_INGESTING_HOST", "BetterStack ingesting host")] | None
    ) = None
    opentelemetry_source_id: Annotated[str, env("OPENTELEMETRY_SOURCE_ID", "BetterStack source id")] | None = None
    opentelemetry_source_token: (
        Annotated[str, env("OPENTELEMETRY_SOURCE_TOKEN", "BetterStack source token (bearer)", secret=True)] | None
    ) = None
    otel_export_interval_secs: Annotated[
        int, env("OTEL_EXPORT_INTERVAL_SECS", "Metric export period, seconds", ge=1, le=86400)
    ] = 60
    otel_per_user_series: Annotated[
        bool, env("OTEL_PER_USER_SERIES", "Also export per-user window gauges (scope=user)")
    ] = False
    otel_max_user_series: Annotated[
        int, env("OTEL_MAX_USER_SERIES", "Cap on users exported when OTEL_PER_USER_SERIES is on", ge=1, le=10000)
    ] = 100

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, dotenv: str | os.PathLike[str] | None = ".env"
    ) -> Settings:
        """Build settings from ``environ`` (default: the process) over ``dotenv``.

        Raises:
            ConfigError: listing every invalid value at once.
        """
        source = merge(environ if environ is not None else os.environ, dotenv)
        values: dict[str, Any] = {}
        problems: list[str] = []
        # A secret pasted into the wrong variable must not be echoed by that variable's error.
        hidden = {v.strip() for s in SPECS if s.secret and (v := source.get(s.env)) and v.strip()}
        for spec in SPECS:
            raw = source.get(spec.env)
            name, note = spec.env, ""
            if name == "LOG_LEVEL" and not raw:
                raw, name, note = rust_log_level(source.get("RUST_LOG")), "RUST_LOG", " (read as LOG_LEVEL)"
            if raw is None or raw.strip() == "":
                continue
            try:
                values[spec.field] = convert(raw.strip(), spec)
            except (msgspec.ValidationError, ValueError) as err:
                shown = "******** (a secret's value)" if raw.strip() in hidden else clip(spec.show(raw))
                problems.append(f"{name}={shown}{note}: {reason(err, spec)}")
        if problems:
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
        return cls(**values)

    def require(self, *names: str, why: str) -> None:
        """Fail, naming every missing variable at once, unless all of ``names`` are set."""
        missing = [n for n in names if getattr(self, SPEC_BY_ENV[n].field) in (None, "")]
        if missing:
            raise ConfigError(f"{why} needs {', '.join(missing)}; set them in the environment or .env")

    def secrets(self) -> list[str]:
        """The secret values in force, for log redaction."""
        return [v for s in SPECS if s.secret and (v := getattr(self, s.field))]

    def masked(self) -> Iterator[tuple[str, str]]:
        """(variable, printable value) for every setting; secrets show only whether they are set."""
        for spec in SPECS:
            yield spec.env, spec.show(getattr(self, spec.field))

    @property
    def data_dir(self) -> Path:
        return Path(self.billing_data_dir)

    @property
    def log_dir(self) -> Path:
        return Path(self.rocksdb_path) / "log"

    @property
    def kafka(self) -> bool:
        return self.event_log.startswith("kafka://")

    @property
    def projections_dir(self) -> Path:
        return Path(self.rocksdb_path) / "projections"


def _specs() -> tuple[Spec, ...]:
    hints = typing.get_type_hints(Settings, include_extras=True)
    out = []
    for f in msgspec.structs.fields(Settings):
        meta = _meta_of(hints[f.name])
        extra = meta.extra or {}
        out.append(Spec(f.name, extra["env"], meta.description or "", extra["secret"], hints[f.name], f.default))
    return tuple(out)


def _meta_of(hint: Any) -> msgspec.Meta:
    """The `env(...)` annotation of a field, also inside ``Annotated[...] | None``."""
    for candidate in (hint, *typing.get_args(hint)):
        for meta in getattr(candidate, "__metadata__", ()):
            if isinstance(meta, msgspec.Meta):
                return meta
    raise TypeError(f"setting without env(...) annotation: {hint}")


SPECS = _specs()
SPEC_BY_ENV = {s.env: s for s in SPECS}
