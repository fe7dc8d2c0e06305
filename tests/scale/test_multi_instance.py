"""Scale-out for real: two API instances and two billing workers as separate processes on
loopback, sharing only PostgreSQL and Redis. The host talks to one instance, the guest to
the other; a worker is killed mid-call and restarted; the money still adds up.

Time runs 20 times faster in every process (`VIDIVO_CLOCK_SPEED`, one shared epoch), so
two-minute billing windows pass in seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from httpx_ws import aconnect_ws

from tests.conftest import PASSWORD, _recreate_postgres_database
from tests.support import free_port

PG_URL = os.environ.get(
    "VIDIVO_TEST_SCALE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/vidivo_scale"
)
REDIS_URL = os.environ.get("VIDIVO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SPEED = 20


class Fleet:
    """The processes of one deployment, their logs in a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VIDIVO_")},
            "VIDIVO_DATABASE_URL": PG_URL,
            "VIDIVO_REDIS_URL": REDIS_URL,
            "VIDIVO_DATA_DIR": str(folder / "data"),
            "VIDIVO_WORKER": "false",
            "VIDIVO_CLOCK_SPEED": str(SPEED),
            "VIDIVO_CLOCK_EPOCH": datetime.now(UTC).isoformat(),
            "VIDIVO_RECONNECT_GRACE_SECONDS": "60",
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vidivo.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, name: str, *args: str) -> None:
        with (self.folder / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "vidivo.cli", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_ready(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{base} did not become ready")


@pytest.fixture
def fleet(tmp_path: Path):
    _recreate_postgres_database(PG_URL)
    fleet = Fleet(tmp_path)
    (tmp_path / "data").mkdir()
    migrated = fleet.run("migrate")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    yield fleet
    fleet.stop_all()


async def next_of(ws, kind: str, within: float = 20) -> dict:
    deadline = time.monotonic() + within
    while True:
        event = await ws.receive_json(timeout=max(0.1, deadline - time.monotonic()))
        if event["type"] == kind:
            return event


async def keep_alive(*sockets) -> None:
    while True:
        await asyncio.sleep(5)
        for ws in sockets:
            await ws.send_json({"type": "ping"})


async def test_a_call_across_two_instances_bills_right_while_a_worker_dies(fleet):
    created = fleet.run(
        "hosts", "create", "--email", "scale@example.com", "--password", PASSWORD,
        "--display-name", "Scale Host", "--verified", "--connected",
    )  # fmt: skip
    assert created.returncode == 0, created.stdout + created.stderr
    ports = [free_port(), free_port()]
    a, b = (f"http://127.0.0.1:{port}" for port in ports)
    fleet.start("api-a", "serve", "--port", str(ports[0]))
    fleet.start("api-b", "serve", "--port", str(ports[1]))
    fleet.start("worker-1", "worker", "--interval", "0.1")
    fleet.start("worker-2", "worker", "--interval", "0.1")
    wait_ready(a)
    wait_ready(b)

    async with httpx.AsyncClient(timeout=20) as http:
        token = await http.post(
            f"{a}/v1/auth/token", json={"email": "scale@example.com", "password": PASSWORD}
        )
        host_headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        link = await http.post(
            f"{a}/v1/links",
            headers=host_headers,
            json={"rate_per_minute": "1.00", "window_size_minutes": 2},
        )
        assert link.status_code == 201, link.text
        code = link.json()["link"]["short_code"]
        started = await http.post(
            f"{b}/v1/links/{code}/sessions",
            json={
                "guest_name": "Robin",
                "guest_email": "robin@example.com",
                "payment_method_id": "pm_card_visa",
            },
        )
        assert started.status_code == 201, started.text
        session_id = started.json()["session"]["id"]
        guest_token = started.json()["guest_token"]
        accepted = await http.post(f"{a}/v1/sessions/{session_id}/accept", headers=host_headers)
        assert accepted.status_code == 200, accepted.text

        host_url = f"{a.replace('http', 'ws')}/v1/sessions/{session_id}/signal?token="
        guest_url = f"{b.replace('http', 'ws')}/v1/sessions/{session_id}/signal?token="
        async with (
            aconnect_ws(host_url + token.json()["access_token"], http) as host_ws,
            aconnect_ws(guest_url + guest_token, http) as guest_ws,
        ):
            pinger = asyncio.create_task(keep_alive(host_ws, guest_ws))
            assert (await next_of(host_ws, "welcome"))["role"] == "host"
            assert (await next_of(guest_ws, "welcome"))["peer_present"] is True
            await next_of(guest_ws, "went_live")

            # WebRTC negotiation crosses instances through Redis.
            await guest_ws.send_json({"type": "offer", "sdp": "v=0 from-b"})
            assert (await next_of(host_ws, "offer"))["sdp"] == "v=0 from-b"
            await host_ws.send_json({"type": "answer", "sdp": "v=0 from-a"})
            assert (await next_of(guest_ws, "answer"))["sdp"] == "v=0 from-a"

            # A renewal placed by one of the workers reaches both instances' sockets.
            renewed = await next_of(guest_ws, "window_renewed", within=30)
            assert renewed["window"] == 2
            await next_of(host_ws, "window_renewed", within=5)

            # One worker dies without a word; a replacement starts a little later.
            fleet.processes["worker-1"].send_signal(signal.SIGKILL)
            fleet.processes["worker-1"].wait()
            renewed = await next_of(guest_ws, "window_renewed", within=30)
            assert renewed["window"] == 3
            fleet.start("worker-1", "worker", "--interval", "0.1")
            renewed = await next_of(guest_ws, "window_renewed", within=30)
            assert renewed["window"] == 4

            ended = await http.post(
                f"{b}/v1/sessions/{session_id}/end",
                headers={"Authorization": f"Bearer {guest_token}"},
            )
            assert ended.status_code == 200, ended.text
            final = await next_of(host_ws, "ended", within=30)
            pinger.cancel()

        charges = (
            await http.get(f"{a}/v1/sessions/{session_id}/charges", headers=host_headers)
        ).json()
        session = (await http.get(f"{b}/v1/sessions/{session_id}", headers=host_headers)).json()[
            "session"
        ]

    assert session["state"] == "ended"
    assert final["total"] == session["billed"] == charges["totals"]["captured"]
    held = sum(int(w["held"].replace(".", "")) for w in charges["windows"])
    captured = sum(int(w["captured"].replace(".", "")) for w in charges["windows"])
    released = sum(int(w["released"].replace(".", "")) for w in charges["windows"])
    assert held == captured + released
    assert [w["number"] for w in charges["windows"]] == list(range(1, len(charges["windows"]) + 1))
    audit = fleet.run("billing", "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    # No instance failed a request along the way.
    assert "Traceback" not in fleet.log("api-a") + fleet.log("api-b")
