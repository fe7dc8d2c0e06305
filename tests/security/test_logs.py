"""Bearer tokens travel in query strings where browsers give no choice (signaling sockets,
e-mail verification links); the server's log lines never show them."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from httpx_ws import aconnect_ws

from tests.conftest import PASSWORD
from tests.support import demo_credentials, free_port, start_server, stop_server


async def test_tokens_in_query_strings_never_reach_the_log(tmp_path):
    base = f"http://127.0.0.1:{free_port()}"
    server = start_server(tmp_path / "data", base)
    try:
        email, password = demo_credentials(server.output())
        async with httpx.AsyncClient(base_url=base) as http:
            signed_in = await http.post(
                "/v1/auth/token", json={"email": email, "password": password}
            )
            token = signed_in.json()["access_token"]
            ws_base = base.replace("http", "ws", 1)
            async with aconnect_ws(f"{ws_base}/v1/host/events?token={token}", http) as ws:
                await ws.send_json({"type": "ping"})
                assert (await ws.receive_json(timeout=5))["type"] == "pong"
            page = await http.get("/app", params={"verify": "secret-verification-token"})
            assert page.status_code == 200
    finally:
        log = stop_server(server)
    assert "/v1/host/events?token=[redacted]" in log
    assert "/app?verify=[redacted]" in log
    assert token not in log
    assert token.split(".")[2] not in log  # not even the signature
    assert "secret-verification-token" not in log


def _sent_verification_token(database: Path) -> str:
    """The token of the verification mail, read from the outbox once the server has sent it."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with sqlite3.connect(database) as db:
            row = db.execute(
                "SELECT body FROM email_outbox WHERE sent_at IS NOT NULL OR attempts > 0"
            ).fetchone()
        if row:
            return re.search(r"verify=([A-Za-z0-9_-]+)", row[0]).group(1)
        time.sleep(0.1)
    raise AssertionError("the verification mail was never handed to the transport")


async def _sign_up(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.post(
            "/v1/auth/signup",
            json={"email": "new@example.com", "password": PASSWORD, "display_name": "New"},
        )
        assert response.status_code == 201, response.text


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_the_verification_token_never_reaches_the_log_in_development(tmp_path, log_format):
    """Without SMTP the mail goes to the development mailbox folder, not the log: the link
    works for the developer and the log shows none of it."""
    base = f"http://127.0.0.1:{free_port()}"
    data = tmp_path / "data"
    server = start_server(data, base, {"VIDIVO_LOG_FORMAT": log_format})
    try:
        await _sign_up(base)
        token = _sent_verification_token(data / "vidivo.sqlite3")
    finally:
        log = stop_server(server)
    assert token not in log
    assert "Verify your Vidivo email" in log  # the mail's arrival is logged, without its body
    mailbox = sorted((data / "mail").glob("*.eml"))
    assert len(mailbox) == 1
    assert str(mailbox[0]) in log
    assert f"{base}/app?verify={token}" in mailbox[0].read_text()


def _make_signing_key(data: Path, env: dict[str, str]) -> None:
    """What an operator does once before the first production start."""
    made = subprocess.run(
        [sys.executable, "-m", "vidivo.cli", "signing-key"],
        env={**os.environ, "VIDIVO_DATA_DIR": str(data), **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr


async def test_no_verification_token_reaches_the_log_or_a_file_in_production(tmp_path):
    """A production server (everything `vidivo check` asks for) whose mail server is down:
    the mail waits in the outbox, the failure is logged, the token is nowhere in the log."""
    base = f"http://127.0.0.1:{free_port()}"
    data = tmp_path / "data"
    smtp_port = free_port()  # nothing listens there
    env = {
        "VIDIVO_ENVIRONMENT": "production",
        "VIDIVO_PUBLIC_BASE_URL": "https://vidivo.test",
        "VIDIVO_PAYMENTS": "stripe",
        "VIDIVO_STRIPE_SECRET_KEY": "sk_test_unused",
        "VIDIVO_STRIPE_PUBLISHABLE_KEY": "pk_test_unused",
        "VIDIVO_STRIPE_WEBHOOK_SECRET": "whsec_unused",
        "VIDIVO_STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}",
        "VIDIVO_SMTP_HOST": "127.0.0.1",
        "VIDIVO_SMTP_PORT": str(smtp_port),
    }
    _make_signing_key(data, env)
    server = start_server(data, base, env)
    try:
        await _sign_up(base)
        token = _sent_verification_token(data / "vidivo.sqlite3")
    finally:
        log = stop_server(server)
    assert token not in log
    assert f"on port {smtp_port}" in log  # the failed delivery is logged, and only that
    assert not (data / "mail").exists()
