"""Settings read once from `VIDIVO_*` environment variables and passed down."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class PaymentsMode(StrEnum):
    SIMULATED = "simulated"
    STRIPE = "stripe"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


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

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    mail_from: str = "Vidivo <no-reply@vidivo.local>"

    login_attempts_per_minute: int = Field(default=10, ge=1)
    login_failures_per_email: int = Field(default=5, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=1)
    signups_per_hour: int = Field(default=20, ge=1)
    link_misses_per_minute: int = Field(default=30, ge=1)

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

    @model_validator(mode="after")
    def _fill_paths(self) -> Self:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'vidivo.sqlite3'}"
        if self.signing_key_path is None:
            self.signing_key_path = self.data_dir / "jwt-signing-key.pem"
        self.public_base_url = self.public_base_url.rstrip("/")
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
        if self.turn_urls and not self.turn_secret:
            raise ValueError("VIDIVO_TURN_URLS needs VIDIVO_TURN_SECRET")
        return self

    @property
    def active_signing_key_path(self) -> Path:
        assert self.signing_key_path is not None  # filled by the validator
        return self.signing_key_path

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
