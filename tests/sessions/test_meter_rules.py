"""The meter from outside: what a guest who plays with its connection, and a host who drops,
are billed. Each party's signaling socket is opened and closed for real."""

from __future__ import annotations

from tests.sessions.test_signaling import next_of
from vidivo.calls.ledger import audit


async def accepted_call(calls, **link_fields):
    host = await calls.hosts.create()
    link = await calls.link(host, **link_fields)
    call = await calls.started(link=link, host=host)
    accepted = await calls.client.post(
        f"/v1/sessions/{call.session_id}/accept", headers=call.host.headers
    )
    assert accepted.status_code == 200
    return call


async def test_a_guest_who_keeps_dropping_its_socket_pays_for_every_minute(calls, context):
    """The dodge: close the socket every few seconds and reconnect inside the grace. The
    media may have flowed all along, so each such pause is billed when the call resumes."""
    call = await accepted_call(calls, rate_per_minute="1.00", window_size_minutes=5)
    async with calls.join(call, "host") as host_ws:
        for _ in range(19):
            async with calls.join(call, "guest"):
                await next_of(host_ws, "went_live" if _ == 0 else "resumed")
                await calls.advance(10)
            await next_of(host_ws, "paused")
            await calls.advance(50)  # gone for 50 s, inside the 60 s grace
        async with calls.join(call, "guest"):
            await next_of(host_ws, "resumed")
            assert (await calls.end(call, "guest")).status_code == 200
    await calls.advance(60)
    session = await calls.session(call)
    assert session["state"] == "ended"
    assert session["live_seconds"] == 19 * 60
    assert session["billed"] == "19.00"  # not 4.00 for the 190 s both sockets were open
    # (the host's access token has expired by now: the guest reads the charges)
    charges = await calls.client.get(
        f"/v1/sessions/{call.session_id}/charges", headers=call.guest_headers
    )
    assert charges.json()["totals"]["captured"] == "19.00"
    async with context.session_factory() as db:
        assert await audit(db) == []


async def test_a_call_that_ends_in_the_guests_pause_bills_up_to_the_drop(calls, context):
    call = await accepted_call(calls)
    async with calls.join(call, "host") as host_ws:
        async with calls.join(call, "guest"):
            await next_of(host_ws, "went_live")
            await calls.advance(150)  # 2½ minutes talked
        await next_of(host_ws, "paused")
        await calls.advance(30)
        assert (await calls.end(call, "host")).status_code == 200
    await calls.advance(60)
    session = await calls.session(call)
    assert (session["state"], session["live_seconds"]) == ("ended", 150)
    assert session["billed"] == "7.50"  # 3 started minutes at 2.50
    async with context.session_factory() as db:
        assert await audit(db) == []


async def test_the_grace_running_out_bills_up_to_the_guests_drop(calls):
    call = await accepted_call(calls)
    async with calls.join(call, "host") as host_ws:
        async with calls.join(call, "guest"):
            await next_of(host_ws, "went_live")
            await calls.advance(61)
        await next_of(host_ws, "paused")
        await calls.advance(120)  # the 60 s grace runs out: the call ends
        session = await calls.session(call)
    assert (session["state"], session["end_reason"]) == ("ended", "reconnect_timeout")
    assert (session["live_seconds"], session["billed"]) == (61, "5.00")


async def test_a_pause_on_the_hosts_side_is_not_billed(calls):
    call = await accepted_call(calls)
    async with calls.join(call, "guest") as guest_ws:
        async with calls.join(call, "host"):
            await next_of(guest_ws, "went_live")
            await calls.advance(60)
        await next_of(guest_ws, "paused")
        await calls.advance(45)
        async with calls.join(call, "host"):
            await next_of(guest_ws, "resumed")
            await calls.advance(30)
            assert (await calls.end(call, "guest")).status_code == 200
    session = await calls.session(call)
    assert (session["live_seconds"], session["billed"]) == (90, "5.00")


async def test_the_session_and_receipt_state_the_meter_rule_and_the_terms(calls, client):
    async with calls.live() as (call, _host_ws, _guest_ws):
        await calls.advance(30)
        assert (await calls.end(call, "guest")).status_code == 200
    receipt = (
        await client.get(f"/v1/sessions/{call.session_id}/receipt", headers=call.guest_headers)
    ).json()["receipt"]
    assert receipt["terms"]["rate_per_minute"] == "2.50"
    assert receipt["terms"]["reconnect_grace_seconds"] == 60
    assert "connection dropped" in receipt["terms"]["metering"]
    session = (await calls.session(call))["terms"]
    assert session == receipt["terms"]
