"""Call-session tests: the app with a test clock, HTTP and WebSocket over ASGI."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from tests.conftest import Host, bearer


def websocket_transport(app: Any) -> ASGIWebSocketTransport:
    """httpx-ws's in-process transport, giving the app 10 s to accept a socket (not its default
    1 s: a loaded 2-core machine running two suites at once takes longer now and then)."""
    return ASGIWebSocketTransport(app=app, initial_receive_timeout=10)


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"test_clock": True})


@dataclass
class Call:
    """A started call: its link, session and the guest's token."""

    host: Host
    short_code: str
    session_id: str
    guest_token: str
    started: dict[str, Any]

    @property
    def guest_headers(self) -> dict[str, str]:
        return bearer(self.guest_token)


class Calls:
    def __init__(self, client: httpx.AsyncClient, hosts: Any, app: Any) -> None:
        self.client = client
        self.hosts = hosts
        self.app = app

    async def link(self, host: Host, **fields: Any) -> dict[str, Any]:
        body = {"rate_per_minute": "2.50", "window_size_minutes": 5, **fields}
        response = await self.client.post("/v1/links", headers=host.headers, json=body)
        assert response.status_code == 201, response.text
        return response.json()["link"]

    async def start(
        self, short_code: str, card: str = "pm_card_visa", **extra: Any
    ) -> httpx.Response:
        body = {
            "guest_name": "Alex",
            "guest_email": "alex@example.com",
            "payment_method_id": card,
            **extra,
        }
        return await self.client.post(f"/v1/links/{short_code}/sessions", json=body)

    async def started(
        self,
        card: str = "pm_card_visa",
        link: dict | None = None,
        host: Host | None = None,
        **extra: Any,
    ) -> Call:
        host = host or await self.hosts.create()
        link = link or await self.link(host)
        response = await self.start(link["short_code"], card, **extra)
        assert response.status_code == 201, response.text
        body = response.json()
        return Call(host, link["short_code"], body["session"]["id"], body["guest_token"], body)

    @contextlib.asynccontextmanager
    async def join(self, call: Call, who: str) -> AsyncIterator[Any]:
        """A party's signaling socket, open (and present in the call) inside the block."""
        token = call.host.access_token if who == "host" else call.guest_token
        url = f"/v1/sessions/{call.session_id}/signal?token={token}"
        # Its own client: the WebSocket transport's task group must live in the test's task.
        transport = websocket_transport(self.app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as ws_client,
            aconnect_ws(url, ws_client) as ws,
        ):
            welcome = await ws.receive_json(timeout=5)
            assert welcome["type"] == "welcome", welcome
            yield ws

    @contextlib.asynccontextmanager
    async def live(self, **kwargs: Any) -> AsyncIterator[tuple[Call, Any, Any]]:
        """A call both parties have joined: the billing clock runs inside the block."""
        call = await self.started(**kwargs)
        accepted = await self.client.post(
            f"/v1/sessions/{call.session_id}/accept", headers=call.host.headers
        )
        assert accepted.status_code == 200, accepted.text
        async with self.join(call, "host") as host_ws, self.join(call, "guest") as guest_ws:
            assert (await self.session(call))["state"] == "live"
            yield call, host_ws, guest_ws

    async def session(self, call: Call) -> dict[str, Any]:
        response = await self.client.get(
            f"/v1/sessions/{call.session_id}", headers=call.guest_headers
        )
        assert response.status_code == 200, response.text
        return response.json()["session"]

    async def charges(self, call: Call) -> dict[str, Any]:
        response = await self.client.get(
            f"/v1/sessions/{call.session_id}/charges", headers=call.host.headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def advance(self, seconds: int) -> None:
        response = await self.client.post("/v1/test/clock/advance", json={"seconds": seconds})
        assert response.status_code == 200, response.text

    async def end(self, call: Call, who: str = "guest") -> httpx.Response:
        headers = call.guest_headers if who == "guest" else call.host.headers
        return await self.client.post(f"/v1/sessions/{call.session_id}/end", headers=headers)


@pytest.fixture
def calls(client, hosts, app) -> Calls:
    return Calls(client, hosts, app)


@pytest.fixture
async def host_for_timelines(hosts) -> Host:
    return await hosts.create()


@pytest.fixture
async def two_days_of_calls(calls, client, hosts):
    """Two days of a host's money, for earnings and payouts by day. Sunday 15 March 2026
    10:00 UTC: a 7½-minute call at 2.50/min (20.00, fee 2.00). Monday 16 March: a 3-minute
    call (7.50, fee 0.75), and 5.00 of Sunday's call refunded (0.50 of its fee handed back)."""
    async with calls.live() as (sunday, _h, _g):
        await calls.advance(450)
        await calls.end(sunday)
    await calls.advance(86400)  # a day
    host = sunday.host
    host.access_token, host.refresh_token = await hosts.login(host.email)  # a day later
    async with calls.live(host=host) as (monday, _h, _g):
        await calls.advance(180)
        await calls.end(monday)
    refund = await client.post(
        f"/v1/sessions/{sunday.session_id}/refunds",
        headers={**sunday.host.headers, "Idempotency-Key": "five"},
        json={"amount": "5.00", "reason": "the line was bad"},
    )
    assert refund.status_code == 201, refund.text
    return sunday.host
