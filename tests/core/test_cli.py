"""`vidivo migrate` and `vidivo hosts …` against a fresh SQLite database."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from vidivo.cli import app


@pytest.fixture
def cli_env(tmp_path, data_dir):
    return {
        "VIDIVO_DATA_DIR": str(tmp_path),
        "VIDIVO_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        # Reuse the suite's signing key instead of generating a new one per test.
        "VIDIVO_SIGNING_KEY_PATH": str(data_dir / "jwt-signing-key.pem"),
    }


def run(env, *args):
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def test_migrate_is_idempotent(cli_env):
    assert run(cli_env, "migrate").exit_code == 0
    again = run(cli_env, "migrate")
    assert again.exit_code == 0
    assert "up to date" in again.output


def test_hosts_create_verify_and_suspend(cli_env):
    run(cli_env, "migrate")
    created = run(
        cli_env,
        "hosts",
        "create",
        "--email",
        "Pat@Example.com",
        "--password",
        "long enough pw",
        "--display-name",
        "Pat",
        "--connected",
    )
    assert created.exit_code == 0, created.output
    assert "pat@example.com" in created.output
    duplicate = run(
        cli_env,
        "hosts",
        "create",
        "--email",
        "pat@example.com",
        "--password",
        "long enough pw",
        "--display-name",
        "Pat",
    )
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.output
    assert run(cli_env, "hosts", "verify", "pat@example.com").exit_code == 0
    assert run(cli_env, "hosts", "suspend", "pat@example.com").exit_code == 0
    missing = run(cli_env, "hosts", "verify", "nobody@example.com")
    assert missing.exit_code == 1


def test_connected_is_refused_outside_simulated_payments(cli_env):
    run(cli_env, "migrate")
    stripe_env = {
        **cli_env,
        "VIDIVO_PAYMENTS": "stripe",
        "VIDIVO_STRIPE_SECRET_KEY": "sk_test_123",
        "VIDIVO_STRIPE_WEBHOOK_SECRET": "whsec_123",
    }
    result = run(
        stripe_env,
        "hosts",
        "create",
        "--email",
        "s@example.com",
        "--password",
        "long enough pw",
        "--display-name",
        "S",
        "--connected",
    )
    assert result.exit_code == 1
    assert "simulated" in result.output


def test_short_passwords_are_refused(cli_env):
    run(cli_env, "migrate")
    result = run(
        cli_env,
        "hosts",
        "create",
        "--email",
        "s@example.com",
        "--password",
        "short",
        "--display-name",
        "S",
    )
    assert result.exit_code == 1


def test_stripe_payments_without_keys_is_a_clear_configuration_error(cli_env):
    result = run({**cli_env, "VIDIVO_PAYMENTS": "stripe"}, "migrate")
    assert result.exit_code == 2
    assert "VIDIVO_STRIPE_SECRET_KEY" in result.output
