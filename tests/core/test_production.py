"""Production refuses what only development may do: `vidivo check`, `serve` and `worker`
name every problem at once and exit non-zero before starting anything."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import httpx
import pytest
from typer.testing import CliRunner

from tests.support import free_port, start_server, stop_server
from vidivo.cli import app


@pytest.fixture
def production_env(tmp_path):
    """A configuration production accepts: Stripe with every key, SMTP, https, a private key."""
    env = {
        "VIDIVO_ENVIRONMENT": "production",
        "VIDIVO_DATA_DIR": str(tmp_path),
        "VIDIVO_DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "VIDIVO_SIGNING_KEY_PATH": str(tmp_path / "signing-key.pem"),
        "VIDIVO_PUBLIC_BASE_URL": "https://vidivo.example.com",
        "VIDIVO_PAYMENTS": "stripe",
        "VIDIVO_STRIPE_SECRET_KEY": "sk_live_123",
        "VIDIVO_STRIPE_PUBLISHABLE_KEY": "pk_live_123",
        "VIDIVO_STRIPE_WEBHOOK_SECRET": "whsec_123",
        "VIDIVO_SMTP_HOST": "smtp.example.com",
    }
    created = run(env, "signing-key")
    assert created.exit_code == 0, created.output
    return env


def run(env, *args):
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def without(env, *names):
    return {**env, **dict.fromkeys(names)}  # None unsets the variable for the run


def test_check_says_ready_for_a_complete_production_configuration(production_env):
    result = run(production_env, "check")
    assert result.exit_code == 0, result.output
    assert "ready for production" in result.output


def test_signing_key_command_creates_an_owner_only_key_and_keeps_an_existing_one(
    production_env, tmp_path
):
    key = tmp_path / "signing-key.pem"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    before = key.read_bytes()
    again = run(production_env, "signing-key")
    assert again.exit_code == 0
    assert "kept the existing" in again.output
    assert key.read_bytes() == before


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"VIDIVO_PAYMENTS": "simulated"}, "VIDIVO_PAYMENTS is simulated"),
        ({"VIDIVO_TEST_CLOCK": "1"}, "VIDIVO_TEST_CLOCK"),
        ({"VIDIVO_CLOCK_SPEED": "20"}, "VIDIVO_CLOCK_SPEED is 20"),
        ({"VIDIVO_SMTP_HOST": None}, "mail (verification, receipts) would go to the log"),
        ({"VIDIVO_PUBLIC_BASE_URL": "http://vidivo.example.com"}, "must be https://"),
        ({"VIDIVO_STRIPE_SECRET_KEY": None}, "VIDIVO_STRIPE_SECRET_KEY is not set"),
        ({"VIDIVO_STRIPE_PUBLISHABLE_KEY": None}, "VIDIVO_STRIPE_PUBLISHABLE_KEY is not set"),
        ({"VIDIVO_STRIPE_WEBHOOK_SECRET": None}, "VIDIVO_STRIPE_WEBHOOK_SECRET is not set"),
    ],
)
def test_check_names_each_problem(production_env, change, named):
    result = run({**production_env, **change}, "check")
    assert result.exit_code == 2
    assert "Not ready for production (1 problem(s))" in result.output
    assert named in result.output


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_check_refuses_a_signing_key_group_or_others_may_read(production_env, tmp_path, mode):
    key = tmp_path / "signing-key.pem"
    key.chmod(mode)
    result = run(production_env, "check")
    assert result.exit_code == 2
    assert f"has mode {mode:o}" in result.output
    assert f"chmod 600 {key}" in result.output


def test_check_refuses_a_missing_signing_key_the_process_would_create_alone(production_env):
    missing = {
        **production_env,
        "VIDIVO_SIGNING_KEY_PATH": production_env["VIDIVO_DATA_DIR"] + "/x.pem",
    }
    result = run(missing, "check")
    assert result.exit_code == 2
    assert "x.pem does not exist" in result.output
    assert "vidivo signing-key" in result.output


def test_every_problem_is_listed_at_once(production_env, tmp_path):
    (tmp_path / "signing-key.pem").chmod(0o644)
    everything_wrong = {
        **without(
            production_env,
            "VIDIVO_SMTP_HOST",
            "VIDIVO_STRIPE_SECRET_KEY",
            "VIDIVO_STRIPE_PUBLISHABLE_KEY",
            "VIDIVO_STRIPE_WEBHOOK_SECRET",
        ),
        "VIDIVO_PAYMENTS": "simulated",
        "VIDIVO_TEST_CLOCK": "1",
        "VIDIVO_CLOCK_SPEED": "5",
        "VIDIVO_PUBLIC_BASE_URL": "http://127.0.0.1:8000",
    }
    result = run(everything_wrong, "check")
    assert result.exit_code == 2
    assert "(9 problem(s))" in result.output
    for named in (
        "VIDIVO_PAYMENTS",
        "VIDIVO_TEST_CLOCK",
        "VIDIVO_CLOCK_SPEED",
        "VIDIVO_SMTP_HOST",
        "VIDIVO_PUBLIC_BASE_URL",
        "VIDIVO_STRIPE_SECRET_KEY",
        "VIDIVO_STRIPE_PUBLISHABLE_KEY",
        "VIDIVO_STRIPE_WEBHOOK_SECRET",
        "has mode 644",
    ):
        assert named in result.output


def test_stripe_without_keys_in_production_is_listed_not_a_validation_error(production_env):
    result = run(without(production_env, "VIDIVO_STRIPE_SECRET_KEY", "VIDIVO_SMTP_HOST"), "check")
    assert result.exit_code == 2
    assert "(2 problem(s))" in result.output
    assert "Configuration error" not in result.output


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_refuse_to_start_and_create_nothing(production_env, tmp_path, command):
    result = run({**production_env, "VIDIVO_TEST_CLOCK": "1"}, command)
    assert result.exit_code == 2
    assert "VIDIVO_TEST_CLOCK" in result.output
    assert not (tmp_path / "prod.sqlite3").exists()  # refused before migrating


def test_the_real_command_refuses_with_a_message_not_a_traceback(production_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDIVO_")}
    done = subprocess.run(
        [sys.executable, "-m", "vidivo.cli", "serve"],
        env={**env, **production_env, "VIDIVO_PAYMENTS": "simulated", "VIDIVO_SMTP_HOST": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "VIDIVO_PAYMENTS is simulated" in done.stderr
    assert "VIDIVO_SMTP_HOST is not set" in done.stderr


def test_development_starts_anyway_and_check_says_what_production_would_refuse(tmp_path):
    env = {
        "VIDIVO_DATA_DIR": str(tmp_path),
        "VIDIVO_TEST_CLOCK": "1",
    }
    result = run(env, "check")
    assert result.exit_code == 0
    assert "development configuration" in result.output
    assert "VIDIVO_TEST_CLOCK" in result.output
    assert not (tmp_path / "jwt-signing-key.pem").exists()  # check creates nothing


def test_production_serves_an_empty_database_without_seeding_a_demo_host(production_env, tmp_path):
    """The demo host (a verified account whose password is printed in the log) is for a
    developer's first run; a production database starts with no account at all."""
    base = f"http://127.0.0.1:{free_port()}"
    server = start_server(tmp_path / "data", base, production_env)
    try:
        assert httpx.get(f"{base}/healthz").status_code == 200
    finally:
        output = stop_server(server)
    assert "Demo host" not in output
    with sqlite3.connect(tmp_path / "prod.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)
