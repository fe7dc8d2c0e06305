"""The production verdict: what only development may do, decided in one place.

`vidivo serve`, `vidivo worker` and `vidivo check` all ask `production_problems`; a
production process with any problem does not start, and every problem is named at once so
an operator fixes the configuration in one pass instead of one restart per mistake.
"""

from __future__ import annotations

import stat
from pathlib import Path

from vidivo.core.config import Environment, PaymentsMode, Settings

# Group and others may neither read nor write the key that signs every access token.
_KEY_MODE_FORBIDDEN = stat.S_IRWXG | stat.S_IRWXO


def production_problems(settings: Settings) -> list[str]:
    """Why `settings` must not run in production; empty when they may (or in development)."""
    if settings.environment != Environment.PRODUCTION:
        return []
    problems: list[str] = []
    if settings.payments == PaymentsMode.SIMULATED:
        problems.append("VIDIVO_PAYMENTS is simulated: no guest would really pay; set it to stripe")
    if settings.test_clock:
        problems.append("VIDIVO_TEST_CLOCK is set: the clock would move only when told to")
    if settings.clock_speed != 1:
        problems.append(
            f"VIDIVO_CLOCK_SPEED is {settings.clock_speed}: calls would be billed "
            "faster than real time; leave it at 1"
        )
    if not settings.smtp_host:
        problems.append(
            "VIDIVO_SMTP_HOST is not set: mail (verification, receipts) would go to the log"
        )
    if not settings.public_base_url.startswith("https://"):
        problems.append(
            f"VIDIVO_PUBLIC_BASE_URL is {settings.public_base_url}: links and Stripe "
            "return URLs must be https://"
        )
    for variable, value in (
        ("VIDIVO_STRIPE_SECRET_KEY", settings.stripe_secret_key),
        ("VIDIVO_STRIPE_PUBLISHABLE_KEY", settings.stripe_publishable_key),
        ("VIDIVO_STRIPE_WEBHOOK_SECRET", settings.stripe_webhook_secret),
    ):
        if not value:
            problems.append(f"{variable} is not set")
    signing_key_problem = _signing_key_problem(settings.active_signing_key_path)
    if signing_key_problem:
        problems.append(signing_key_problem)
    return problems


def _signing_key_problem(path: Path) -> str | None:
    """A missing key is a problem too: the process would create its own, so instances that
    do not share it reject each other's tokens, and a key born in a container's own
    filesystem dies with it, logging everyone out. Production keys are made once, on
    purpose (`vidivo signing-key`), and shared by every API instance."""
    if not path.exists():
        return (
            f"VIDIVO_SIGNING_KEY_PATH {path} does not exist: a new key would be created "
            "by this process alone; create it once with `vidivo signing-key` and share it"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & _KEY_MODE_FORBIDDEN:
        return (
            f"VIDIVO_SIGNING_KEY_PATH {path} has mode {mode:o}: group or others may read "
            f"it; chmod 600 {path}"
        )
    return None
