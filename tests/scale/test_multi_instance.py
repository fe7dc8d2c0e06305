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
from pathlib import Path

import httpx
import pytest
from httpx_ws import aconnect_ws

from tests.conftest import PASSWORD
from tests.fleet import Fleet, keep_alive, next_of, wait_ready
from tests.support import demo_credentials, free_port

PG_URL = os.environ.get(
    "VIDIVO_TEST_SCALE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/vidivo_scale"
)
SPEED = 20


@pytest.fixture
def fleet(tmp_path: Path):
    fleet = Fleet.on_empty_database(tmp_path, PG_URL, SPEED)
    fleet.cli("migrate")
    yield fleet
    fleet.stop_all()


async def test_a_call_across_two_instances_bills_right_while_a_worker_dies(fleet):
    fleet.create_host("scale@example.com", "Scale Host")
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


def test_instances_starting_together_on_an_empty_database_all_come_up(tmp_path: Path):
    # A fresh deployment: every instance migrates and seeds the demo host at start-up.
    fleet = Fleet.on_empty_database(tmp_path, PG_URL, SPEED)
    bases = [f"http://127.0.0.1:{free_port()}" for _ in range(3)]
    try:
        for n, base in enumerate(bases):
            fleet.start(f"api-{n}", "serve", "--port", base.rsplit(":", 1)[1])
        for base in bases:
            wait_ready(base)
        logs = "".join(fleet.log(f"api-{n}") for n in range(3))
        # One of them seeded the demo host, and every instance lets it sign in.
        assert logs.count("Demo host: ") == 1, logs
        email, password = demo_credentials(logs)
        for base in bases:
            signed_in = httpx.post(
                f"{base}/v1/auth/token", json={"email": email, "password": password}
            )
            assert signed_in.status_code == 200, signed_in.text
    finally:
        fleet.stop_all()
    assert "Traceback" not in logs
