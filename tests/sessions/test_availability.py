"""A host's availability before the guest pays: an open dashboard (host events socket) makes
the host available, none offline, the host's own switch away; away takes no calls."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_ws import aconnect_ws
from sqlalchemy import func, select

from tests.sessions.conftest import websocket_transport
from vidivo.calls.models import CallSession
from vidivo.payments.sim_models import SimCustomer, SimPaymentIntent


@contextlib.asynccontextmanager
async def dashboard(app: Any, host: Any) -> AsyncIterator[Any]:
    """The host's dashboard open: its host events socket, answered once (so it is set up)."""
    transport = websocket_transport(app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        aconnect_ws(f"/v1/host/events?token={host.access_token}", client) as feed,
    ):
        await feed.send_json({"type": "ping"})
        assert (await feed.receive_json(timeout=5))["type"] == "pong"
        yield feed


async def guest_sees(client: httpx.AsyncClient, short_code: str) -> str:
    response = await client.get(f"/v1/links/{short_code}")
    assert response.status_code == 200, response.text
    return str(response.json()["link"]["host"]["availability"])


async def test_an_open_dashboard_makes_the_host_available_and_closing_it_offline(calls, app):
    host = await calls.hosts.create()
    link = await calls.link(host)
    code = link["short_code"]
    assert await guest_sees(calls.client, code) == "offline"
    async with dashboard(app, host):
        # The view was cached as offline a moment ago: opening the dashboard drops it.
        assert await guest_sees(calls.client, code) == "available"
        async with dashboard(app, host):
            pass
        # One of two dashboards closed: the host is still there.
        assert await guest_sees(calls.client, code) == "available"
        owner = await calls.client.get(f"/v1/links/{code}", headers=host.headers)
        assert owner.json()["link"]["host"]["availability"] == "available"
    assert await guest_sees(calls.client, code) == "offline"


async def test_a_dashboard_whose_heartbeat_stopped_no_longer_counts(calls, app, settings):
    # An instance that died leaves its row behind: it counts for twice the idle timeout.
    host = await calls.hosts.create()
    code = (await calls.link(host))["short_code"]

    async def owner_sees() -> str:  # the owner's view is never cached
        response = await calls.client.get(f"/v1/links/{code}", headers=host.headers)
        return str(response.json()["link"]["host"]["availability"])

    async with dashboard(app, host):
        await calls.advance(2 * settings.signal_idle_timeout_seconds - 1)
        assert await owner_sees() == "available"
        await calls.advance(2)
        assert await owner_sees() == "offline"


async def test_away_is_shown_and_a_call_is_refused_before_any_card_work(calls, app, context):
    host = await calls.hosts.create()
    code = (await calls.link(host))["short_code"]
    async with dashboard(app, host):
        assert await guest_sees(calls.client, code) == "available"
        away = await calls.client.put(
            "/v1/me/availability", headers=host.headers, json={"away": True}
        )
        assert away.status_code == 200, away.text
        assert away.json() == {"availability": "away"}
        assert await guest_sees(calls.client, code) == "away"
        me = await calls.client.get("/v1/me", headers=host.headers)
        assert me.json()["user"]["away"] is True

        refused = await calls.start(code)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "host_unavailable"
        async with context.session_factory() as db:
            for table in (CallSession, SimCustomer, SimPaymentIntent):
                assert await db.scalar(select(func.count()).select_from(table)) == 0, table

        back = await calls.client.put(
            "/v1/me/availability", headers=host.headers, json={"away": False}
        )
        assert back.json() == {"availability": "available"}
        assert await guest_sees(calls.client, code) == "available"
        assert (await calls.start(code)).status_code == 201


async def test_the_availability_switch_takes_only_a_boolean_from_a_signed_in_host(calls):
    host = await calls.hosts.create()
    assert (await calls.client.put("/v1/me/availability", json={"away": True})).status_code == 401
    for body in ({"away": "yes"}, {}, {"away": True, "extra": 1}):
        response = await calls.client.put("/v1/me/availability", headers=host.headers, json=body)
        assert response.status_code == 400, (body, response.text)


async def test_an_offline_host_still_gets_the_call(calls):
    host = await calls.hosts.create()
    code = (await calls.link(host))["short_code"]
    assert await guest_sees(calls.client, code) == "offline"
    started = await calls.start(code)
    assert started.status_code == 201, started.text
    assert started.json()["session"]["state"] == "waiting_for_host"
