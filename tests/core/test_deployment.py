"""compose.yaml and the Dockerfile, checked without docker: every Vidivo service runs a real
`vidivo` command with options the CLI accepts, sets only real settings, and the production
configuration it builds passes the production verdict."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
import yaml

from vidivo.cli import app as cli_app
from vidivo.core.config import Settings
from vidivo.core.production import production_problems

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
VIDIVO_SERVICES = {
    name: service
    for name, service in COMPOSE["services"].items()
    if service.get("image", "").startswith("vidivo")
}
# What an operator's `.env` provides: compose refuses to start without each (`${VAR:?…}`).
DOT_ENV = {
    "POSTGRES_PASSWORD": "secret",
    "VIDIVO_PUBLIC_BASE_URL": "https://vidivo.example.com",
    "VIDIVO_STRIPE_SECRET_KEY": "sk_live_x",
    "VIDIVO_STRIPE_PUBLISHABLE_KEY": "pk_live_x",
    "VIDIVO_STRIPE_WEBHOOK_SECRET": "whsec_x",
    "VIDIVO_SMTP_HOST": "smtp.example.com",
    "VIDIVO_SMTP_USERNAME": "vidivo",
    "VIDIVO_SMTP_PASSWORD": "secret",
    "VIDIVO_TURN_SECRET": "turn-secret",
    "TURN_HOST": "turn.example.com",
}
VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def interpolate(value: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, kind, default = match.groups()
        if name in DOT_ENV:
            return DOT_ENV[name]
        assert kind == "-", f"${{{name}}} has neither a value in .env nor a default"
        return default

    return VARIABLE.sub(substitute, value)


def environment_of(service: dict) -> dict[str, str]:
    return {key: interpolate(str(value)) for key, value in service["environment"].items()}


def test_the_topology_is_two_api_instances_one_worker_and_the_shared_services():
    commands = [tuple(s["command"][:2]) for s in VIDIVO_SERVICES.values()]
    assert commands.count(("vidivo", "serve")) == 2
    assert commands.count(("vidivo", "worker")) == 1
    assert {"postgres", "redis", "coturn"} <= COMPOSE["services"].keys()


@pytest.mark.parametrize("name", sorted(VIDIVO_SERVICES))
def test_each_service_runs_a_real_vidivo_command_with_options_the_cli_accepts(name):
    program, *args = VIDIVO_SERVICES[name]["command"]
    assert program == "vidivo"
    commands = typer.main.get_command(cli_app).commands  # type: ignore[attr-defined]
    assert args[0] in commands, f"`vidivo {args[0]}` is not a command"
    commands[args[0]].make_context(args[0], list(args[1:]))  # raises on an unknown option


@pytest.mark.parametrize("name", sorted(VIDIVO_SERVICES))
def test_each_service_sets_only_real_settings_and_passes_the_production_verdict(
    name, tmp_path, monkeypatch
):
    environment = environment_of(VIDIVO_SERVICES[name])
    for key in environment:
        assert key.startswith("VIDIVO_"), key
        assert key.removeprefix("VIDIVO_").lower() in Settings.model_fields, key
    # The signing-key job has created the shared key before anything else starts.
    key = tmp_path / "jwt-signing-key.pem"
    key.write_text("the shared key")
    key.chmod(0o600)
    environment["VIDIVO_SIGNING_KEY_PATH"] = str(key)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    settings = Settings()
    assert production_problems(settings) == []
    assert settings.redis_url and not settings.is_sqlite
    assert settings.worker is False  # API instances leave billing to the worker service


async def test_the_dockerfile_health_check_asks_a_route_the_app_answers(client):
    dockerfile = (ROOT / "Dockerfile").read_text()
    paths = re.findall(r"HEALTHCHECK[^\n]*\n?[^\n]*http://127\.0\.0\.1:8000(/\w+)", dockerfile)
    assert paths, "no HEALTHCHECK against the app"
    for path in paths:
        assert (await client.get(path)).status_code == 200
    assert re.search(r'^CMD \["vidivo", "serve"', dockerfile, re.MULTILINE)
