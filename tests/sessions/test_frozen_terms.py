"""A call keeps the terms it started with: a setting changed later (and the processes
restarted with it) affects only calls started after the change."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx

from tests.conftest import Hosts
from tests.sessions.conftest import Calls
from tests.sessions.test_signaling import next_of
from vidivo.app import create_app
from vidivo.calls.ledger import audit
from vidivo.core.db import dispose


@contextlib.asynccontextmanager
async def restarted(settings, clock, **changes: Any) -> AsyncIterator[Calls]:
    """The same database served by a new process whose settings were changed."""
    app = create_app(settings.model_copy(update=changes), clock=clock)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Calls(client, Hosts(client, app.state.context), app)
    await dispose(app.state.context.engine)


async def test_a_fee_raised_after_a_restart_does_not_touch_a_running_call(
    calls, context, settings, clock
):
    async with calls.live() as (call, _host_ws, _guest_ws):
        await calls.advance(420)  # 7 minutes: window 1 captured at 10 %, window 2 held

    # The operator restarts with a 20 % fee; the call is ended and settled by the new process.
    async with restarted(settings, clock, platform_fee_percent=Decimal(20)) as after:
        ended = await after.client.post(
            f"/v1/sessions/{call.session_id}/end", headers=call.guest_headers
        )
        assert ended.status_code == 200, ended.text
        await after.app.state.context.worker.run_due()
        charges = await after.charges(call)
        session = await after.session(call)
    assert session["state"] == "ended"
    assert charges["totals"]["captured"] == "17.50"  # 7 minutes at 2.50
    assert charges["totals"]["platform_fee"] == "1.75"  # 10 %, the fee it started under
    assert session["terms"]["platform_fee_percent"] == "10.00"
    async with context.session_factory() as db:
        assert await audit(db) == []


async def test_a_call_started_after_the_change_runs_under_the_new_terms(app, settings, clock):
    # (`app`: the suite's own instance, whose teardown empties the shared database)
    changes = {"platform_fee_percent": Decimal("12.5"), "reconnect_grace_seconds": 90}
    async with restarted(settings, clock, **changes) as after:
        async with after.live() as (call, _host_ws, _guest_ws):
            await after.advance(60)
            assert (await after.end(call, "guest")).status_code == 200
        session = await after.session(call)
        charges = await after.charges(call)
    assert session["terms"]["platform_fee_percent"] == "12.50"
    assert session["terms"]["reconnect_grace_seconds"] == 90
    assert (charges["totals"]["captured"], charges["totals"]["platform_fee"]) == ("2.50", "0.31")


async def test_a_running_call_keeps_its_reconnect_grace_after_the_setting_changes(
    calls, settings, clock
):
    host = await calls.hosts.create()
    call = await calls.started(host=host)
    await calls.client.post(f"/v1/sessions/{call.session_id}/accept", headers=host.headers)
    async with calls.join(call, "host") as host_ws:
        async with calls.join(call, "guest"):
            await next_of(host_ws, "went_live")
            await calls.advance(30)
        await next_of(host_ws, "paused")
        # A process restarted with a 10-minute grace settles the call: its own 60 s apply.
        async with restarted(settings, clock, reconnect_grace_seconds=600) as after:
            clock.set(clock.now() + timedelta(seconds=61))
            await after.app.state.context.worker.run_due()
            session = await after.session(call)
    assert (session["state"], session["end_reason"]) == ("ended", "reconnect_timeout")
