"""`vidivo hosts reset-password EMAIL`: how a host (the demo host above all, whose password is
printed only on the first start) gets back in."""

from __future__ import annotations

import asyncio
import re

from typer.testing import CliRunner

from tests.conftest import PASSWORD
from vidivo.cli import app as cli


async def reset_password(settings, email: str):
    env = {
        "VIDIVO_DATA_DIR": str(settings.data_dir),
        "VIDIVO_DATABASE_URL": settings.database_url,
        "VIDIVO_SIGNING_KEY_PATH": str(settings.active_signing_key_path),
    }
    return await asyncio.to_thread(
        CliRunner().invoke, cli, ["hosts", "reset-password", email], env=env
    )


async def test_reset_password_prints_a_new_one_and_logs_out_every_session(client, hosts, settings):
    host = await hosts.create(email="rivera@example.com")
    assert (await client.get("/v1/me", headers=host.headers)).status_code == 200

    result = await reset_password(settings, "Rivera@Example.com")
    assert result.exit_code == 0, result.output
    match = re.search(r"new password for rivera@example\.com: (\S+)", result.output)
    assert match, result.output
    new_password = match.group(1)

    old = await client.post("/v1/auth/token", json={"email": host.email, "password": PASSWORD})
    assert old.status_code == 401
    new = await client.post("/v1/auth/token", json={"email": host.email, "password": new_password})
    assert new.status_code == 200, new.text
    # The logins opened before the reset are over: their access and refresh tokens are dead.
    assert (await client.get("/v1/me", headers=host.headers)).status_code == 401
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": host.refresh_token})
    assert refreshed.status_code == 401


async def test_reset_password_of_an_unknown_email_fails_without_a_traceback(settings):
    result = await reset_password(settings, "nobody@example.com")
    assert result.exit_code == 1
    assert "No account with email nobody@example.com" in result.output
    assert "Traceback" not in result.output
