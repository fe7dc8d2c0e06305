"""A call keeps the terms it started with: a setting changed later (and the process
restarted with it) affects only calls started after the change."""

from __future__ import annotations

from decimal import Decimal

import httpx

from tests.sessions.test_signaling import next_of
from vidivo.app import create_app
from vidivo.calls.ledger import audit


async def test_a_fee_raised_after_a_restart_does_not_touch_a_running_call(
    calls, context, settings, clock
):
    async with calls.live() as (call, _host_ws, _guest_ws):
        await calls.advance(420)  # 7 minutes: window 1 captured at 10 %, window 2 held

    # The operator restarts with a 20 % fee; the call is ended and settled by the new process.
    raised = settings.model_copy(update={"platform_fee_percent": Decimal(20)})
    restarted = create_app(raised, clock=clock)
    transport = httpx.ASGITransport(app=restarted)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        ended = await client.post(f"/v1/sessions/{call.session_id}/end", headers=call.guest_headers)
        assert ended.status_code == 200, ended.text
        await restarted.state.context.worker.run_due()
        charges = (
            await client.get(f"/v1/sessions/{call.session_id}/charges", headers=call.host.headers)
        ).json()
        session = (
            await client.get(f"/v1/sessions/{call.session_id}", headers=call.guest_headers)
        ).json()["session"]
    await restarted.state.context.engine.dispose()
    assert session["state"] == "ended"
    assert charges["totals"]["captured"] == "17.50"  # 7 minutes at 2.50
    assert charges["totals"]["platform_fee"] == "1.75"  # 10 %, the fee it started under
    assert session["terms"]["platform_fee_percent"] == "10.00"
    async with context.session_factory() as db:
        assert await audit(db) == []


async def test_a_call_started_after_the_change_runs_under_the_new_terms(calls, context, settings):
    context.settings = settings.model_copy(
        update={"platform_fee_percent": Decimal("12.5"), "reconnect_grace_seconds": 90}
    )
    async with calls.live() as (call, _host_ws, _guest_ws):
        await calls.advance(60)
        assert (await calls.end(call, "guest")).status_code == 200
    session = await calls.session(call)
    assert session["terms"]["platform_fee_percent"] == "12.50"
    assert session["terms"]["reconnect_grace_seconds"] == 90
    charges = await calls.charges(call)
    assert (charges["totals"]["captured"], charges["totals"]["platform_fee"]) == ("2.50", "0.31")


async def test_a_running_call_keeps_its_reconnect_grace_after_the_setting_changes(
    calls, context, settings
):
    host = await calls.hosts.create()
    call = await calls.started(host=host)
    await calls.client.post(f"/v1/sessions/{call.session_id}/accept", headers=host.headers)
    async with calls.join(call, "host") as host_ws:
        async with calls.join(call, "guest"):
            await next_of(host_ws, "went_live")
            await calls.advance(30)
        await next_of(host_ws, "paused")
        # The setting changes under the call: its own 60 s grace still ends it.
        context.settings = settings.model_copy(update={"reconnect_grace_seconds": 600})
        await calls.advance(61)
        session = await calls.session(call)
    assert (session["state"], session["end_reason"]) == ("ended", "reconnect_timeout")
