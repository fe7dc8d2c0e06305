"""Settings read once from `VIDIVO_*` environment variables and passed down."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vidivo.core.client_address import parse_networks


class PaymentsMode(StrEnum):
    SIMULATED = "simulated"
    STRIPE = "stripe"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class MetricsMode(StrEnum):
    OFF = "off"
    # `/metrics` on the API's port, for a bearer of VIDIVO_METRICS_TOKEN (a mode, not a secret)
    TOKEN = "token"  # noqa: S105
    LISTEN = "listen"  # `/metrics` only on VIDIVO_METRICS_HOST:VIDIVO_METRICS_PORT


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"  # one JSON object a line, for log collectors


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIDIVO_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path("var")
    database_url: str = ""
    public_base_url: str = "http://127.0.0.1:8000"
    payments: PaymentsMode = PaymentsMode.SIMULATED

    signing_key_path: Path | None = None
    retired_signing_key_paths: list[Path] = Field(default_factory=list)
    jwt_issuer: str = "vidivo"
    jwt_audience: str = "vidivo-api"
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(default=30 * 86400, ge=3600)
    email_verification_ttl_seconds: int = Field(default=86400, ge=300)
    password_reset_ttl_seconds: int = Field(default=3600, ge=300, le=86400)

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    mail_from: str = "Vidivo <no-reply@vidivo.local>"

    login_attempts_per_minute: int = Field(default=10, ge=1)
    # Failed logins: per (account, address) a doubling wait; per account a ceiling that
    # leaves every address one free failure (see auth.service.LoginThrottle).
    login_failures_before_backoff: int = Field(default=5, ge=1)
    login_backoff_base_seconds: int = Field(default=30, ge=1)
    login_backoff_max_seconds: int = Field(default=3600, ge=1)
    login_failures_per_email: int = Field(default=50, ge=1)
    login_failure_window_seconds: int = Field(default=3600, ge=1)
    signups_per_hour: int = Field(default=20, ge=1)
    link_misses_per_minute: int = Field(default=30, ge=1)
    # Comma-separated IPs/CIDRs of our reverse proxies; only they may say who the client is.
    trusted_proxies: str = ""

    stripe_secret_key: str | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str = "https://api.stripe.com"
    stripe_max_retries: int = Field(default=4, ge=0, le=10)

    reconnect_grace_seconds: int = Field(default=60, ge=5, le=600)
    host_join_timeout_seconds: int = Field(default=600, ge=30, le=3600)
    worker: bool = True
    worker_id: str = ""
    test_clock: bool = False
    # Multi-process tests: every process runs `speed` times faster than real time from
    # `epoch`, so separate processes given the same pair agree on the time.
    clock_speed: int = Field(default=1, ge=1, le=1000)
    clock_epoch: datetime | None = None
    worker_concurrency: int = Field(default=16, ge=1, le=500)
    provider_max_requests_per_second: int = Field(default=90, ge=1, le=10000)
    redis_url: str | None = None
    simulated_latency_ms: int = Field(default=0, ge=0, le=10_000)
    public_link_cache_seconds: float = Field(default=5.0, ge=0, le=300)

    # WebRTC: comma-separated ICE server URLs; TURN credentials follow the TURN REST scheme.
    stun_urls: str = ""
    turn_urls: str = ""
    turn_secret: str | None = None
    turn_credential_ttl_seconds: int = Field(default=6 * 3600, ge=60, le=7 * 86400)
    ice_transport_policy: Literal["all", "relay"] = "all"
    signal_idle_timeout_seconds: int = Field(default=30, ge=5, le=600)
    signal_messages_per_second: int = Field(default=50, ge=5, le=1000)

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    platform_fee_percent: Decimal = Field(default=Decimal(10), ge=0, le=100)
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT

    metrics: MetricsMode = MetricsMode.OFF
    metrics_token: str | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9100, ge=1, le=65535)

    @field_validator("public_base_url")
    @classmethod
    def _without_trailing_slash(cls, url: str) -> str:
        # A field validator, not an assignment after validation: that would mark the field as
        # set, and `served_at` must tell a URL given by the operator from the default.
        return url.rstrip("/")

    @model_validator(mode="after")
    def _fill_paths(self) -> Self:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'vidivo.sqlite3'}"
        if self.signing_key_path is None:
            self.signing_key_path = self.data_dir / "jwt-signing-key.pem"
        # What production refuses (the test clock, missing Stripe keys…) is decided in
        # core/production.py, which names every problem at once instead of stopping at
        # the first; here only what makes settings unusable in any environment.
        if (
            self.payments == PaymentsMode.STRIPE
            and self.environment != Environment.PRODUCTION
            and not (self.stripe_secret_key and self.stripe_webhook_secret)
        ):
            raise ValueError(
                "VIDIVO_PAYMENTS=stripe needs VIDIVO_STRIPE_SECRET_KEY and "
                "VIDIVO_STRIPE_WEBHOOK_SECRET"
            )
        if self.metrics == MetricsMode.TOKEN and len(self.metrics_token or "") < 16:
            raise ValueError("VIDIVO_METRICS=token needs VIDIVO_METRICS_TOKEN (16+ characters)")
        parse_networks(self.trusted_proxies)  # a typo fails at start, not as a silent no-op
        if self.turn_urls and not self.turn_secret:
            raise ValueError("VIDIVO_TURN_URLS needs VIDIVO_TURN_SECRET")
        return self

    def served_at(self, host: str, port: int) -> Self:
        """These settings for a server listening on `host:port`: unless the operator gave
        `VIDIVO_PUBLIC_BASE_URL`, links point at the address actually served."""
        if "public_base_url" in self.model_fields_set:
            return self
        return self.model_copy(update={"public_base_url": local_url(host, port)})

    @property
    def active_signing_key_path(self) -> Path:
        assert self.signing_key_path is not None  # filled by the validator
        return self.signing_key_path

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def local_url(host: str, port: int) -> str:
    """The URL of a server listening on `host:port`, as a browser on this machine reaches it
    (a wildcard address is reached through loopback)."""
    if not host or _is_wildcard(host):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False  # a host name
