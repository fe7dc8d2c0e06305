"""PostgreSQL restarted under a running `vidivo serve`: requests get a clear 503 while it is
down, and the same process serves again once it is back (no restart of ours)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, _recreate_postgres_database
from tests.support import free_port, start_server, stop_server

PG_URL = os.environ.get(
    "VIDIVO_TEST_FAULTS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/vidivo_faults"
)


def postgres(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action, "-m", "fast"]
        if action == "stop"
        else ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=60,
    )


def wait_for_postgres() -> None:
    for _ in range(60):
        if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"]).returncode == 0:
            return
        time.sleep(0.5)
    pytest.fail("PostgreSQL did not come back")


def test_requests_get_503_while_postgres_is_down_and_work_again_after(tmp_path: Path):
    if not Path("/etc/postgresql").is_dir():
        pytest.fail("this test restarts the machine's PostgreSQL cluster (Debian layout)")
    _recreate_postgres_database(PG_URL)
    base = f"http://127.0.0.1:{free_port()}"
    server = start_server(tmp_path / "data", base, {"VIDIVO_DATABASE_URL": PG_URL})
    try:
        email, password = "faults@example.com", PASSWORD
        signup = httpx.post(
            f"{base}/v1/auth/signup",
            json={"email": email, "password": password, "display_name": "Faults"},
        )
        assert signup.status_code == 201, signup.text
        assert httpx.get(f"{base}/v1/links/aaaaaaaaaa").status_code == 404
        token = httpx.post(f"{base}/v1/auth/token", json={"email": email, "password": password})
        host = {"Authorization": f"Bearer {token.json()['access_token']}"}
        # The host's listing (its fast path runs on asyncpg's own connection) works, and so
        # leaves connections in the pool that the restart will break.
        assert httpx.get(f"{base}/v1/links", headers=host).status_code == 200

        postgres("stop")
        try:
            for path, method in [
                ("/v1/links/bbbbbbbbbb", "GET"),  # the public fast path
                ("/v1/links", "GET"),  # the host's listing: its fast path, then its route
                ("/v1/auth/token", "POST"),  # a FastAPI route
                ("/readyz", "GET"),
            ]:
                response = httpx.request(
                    method,
                    f"{base}{path}",
                    json={"email": email, "password": password} if method == "POST" else None,
                    headers=host if path == "/v1/links" else None,
                    timeout=30,
                )
                assert response.status_code == 503, (path, response.status_code, response.text)
                assert response.json()["error"]["code"] == "service_unavailable"
            assert httpx.get(f"{base}/healthz").status_code == 200  # the process itself is fine
        finally:
            postgres("start")
            wait_for_postgres()

        # The same process recovers by itself: a broken connection fails one request at most.
        listings = [httpx.get(f"{base}/v1/links", headers=host).status_code for _ in range(3)]
        assert set(listings) <= {200, 503} and listings[1:] == [200, 200], listings
        for _ in range(40):
            if httpx.get(f"{base}/readyz").status_code == 200:
                break
            time.sleep(0.5)
        token = httpx.post(f"{base}/v1/auth/token", json={"email": email, "password": password})
        assert token.status_code == 200, token.text
        assert httpx.get(f"{base}/v1/links/cccccccccc").status_code == 404
    finally:
        output = stop_server(server)
    assert "Traceback" not in output, output[-3000:]
