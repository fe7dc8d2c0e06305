"""The OpenAPI document is the real behaviour: schemathesis over every operation of a running
server finds no server error, no undocumented status and no response off its schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import pytest

from tests.support import free_port, start_server, stop_server
from vidivo.app import create_app

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        # An operation declaring a required token refuses requests without one or with a bad one.
        "ignored_auth",
    ]
)


@pytest.fixture
def server_env(tmp_path, database_url):
    env = {
        "VIDIVO_DATA_DIR": str(tmp_path / "data"),
        "VIDIVO_STRIPE_WEBHOOK_SECRET": "whsec_fuzz",
        # The fuzzer logs in and signs up far more often than a person could.
        "VIDIVO_LOGIN_ATTEMPTS_PER_MINUTE": "1000000",
        "VIDIVO_SIGNUPS_PER_HOUR": "1000000",
    }
    if database_url.startswith("postgres"):
        from tests.conftest import _recreate_postgres_database, beside

        url = beside(database_url, "fuzz")  # one per test process, as the suite's own
        _recreate_postgres_database(url)
        env["VIDIVO_DATABASE_URL"] = url
    return env


def cli(env: dict[str, str], *args: str) -> None:
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("VIDIVO_")}, **env}
    subprocess.run(
        [sys.executable, "-m", "vidivo.cli", *args],
        env=full_env,
        check=True,
        timeout=120,
        capture_output=True,
    )


def test_schemathesis_finds_no_failure_on_any_operation(server_env, tmp_path):
    base = f"http://127.0.0.1:{free_port()}"
    cli(server_env, "migrate")
    cli(
        server_env,
        "hosts",
        "create",
        "--email",
        "fuzz@example.com",
        "--password",
        "fuzzing password",
        "--display-name",
        "Fuzz",
        "--verified",
        "--connected",
    )
    server = start_server(tmp_path / "data", base, server_env)
    try:
        token = httpx.post(
            f"{base}/v1/auth/token",
            json={"email": "fuzz@example.com", "password": "fuzzing password"},
        ).json()["access_token"]
        result = schemathesis(base, token, "--checks", CHECKS, "--max-examples", "25")
        # Chains of calls along the OpenAPI links, with bodies a real client sends.
        stateful = schemathesis(
            base, token,
            "--checks", CHECKS.replace(",negative_data_rejection", ""),
            "--phases", "stateful", "--mode", "positive", "--max-examples", "100",
            hooks="tests.contract.realistic_data",
        )  # fmt: skip
    finally:
        log = stop_server(server)
    for run in (result, stateful):
        report = run.stdout + run.stderr
        assert run.returncode == 0, f"{report}\n--- server log ---\n{log[-5000:]}"
        assert "passed" in report
    covered = re.search(r"API Links:\s+(\d+) covered", stateful.stdout)
    assert covered and int(covered.group(1)) >= 1, stateful.stdout
    # The chains reached real resources: links made, calls started on them and deleted.
    assert re.search(r'"POST /v1/links HTTP/1.1" 201', log)
    assert re.search(r'"DELETE /v1/links/[0-9A-Z]{26} HTTP/1.1" 204', log)


def schemathesis(
    base: str, token: str, *options: str, hooks: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run", f"{base}/openapi.json",
            # Logging out would revoke the token every other operation runs with.
            "--exclude-path", "/v1/auth/logout",
            # So would deleting the account (its own tests are in tests/accounts).
            "--exclude-operation-id", "delete_me",
            "--header", f"Authorization: Bearer {token}",
            "--generation-deterministic", "--request-timeout", "20", "--no-color",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **({"SCHEMATHESIS_HOOKS": hooks} if hooks else {})},
    )  # fmt: skip


def test_the_document_is_openapi_3_1_with_errors_in_the_seed_shape(settings, clock):
    document = create_app(settings, clock=clock).openapi()
    assert document["openapi"].startswith("3.1")
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            for status, response in responses.items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (
                        method,
                        path,
                        status,
                    )
