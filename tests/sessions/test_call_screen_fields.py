"""The session view's figures the call screen shows: how long the host has to join, and what
the next renewal will hold (shortened by the guest's spending cap)."""

from __future__ import annotations

from datetime import datetime, timedelta

from vidivo.core.schemas import parse_timestamp


async def test_a_waiting_call_says_until_when_the_host_may_join(calls, client):
    call = await calls.started()
    waiting = await calls.session(call)
    assert waiting["state"] == "waiting_for_host"
    deadline: datetime = parse_timestamp(waiting["join_deadline"])
    as_of: datetime = parse_timestamp(waiting["as_of"])
    assert deadline - as_of == timedelta(minutes=10)  # the default host-join timeout
    assert waiting["next_hold"] is None  # nothing renews before the call is live

    declined = await client.post(
        f"/v1/sessions/{call.session_id}/decline", headers=call.host.headers
    )
    assert declined.json()["session"]["join_deadline"] is None


async def test_the_next_hold_is_a_window_then_what_the_cap_leaves_then_none(calls):
    # 2.50 a minute in 5-minute windows, capped at 20.00: 8 minutes, so 5 then 3.
    async with calls.live(max_spend="20.00") as (call, _host, _guest):
        live = await calls.session(call)
        assert (live["join_deadline"], live["next_hold"]) == (None, "7.50")
        await calls.advance(4 * 60 + 5)  # past the renewal lead: window 2 (3 minutes) is held
        renewed = await calls.session(call)
        assert renewed["current_window"] == 2
        assert renewed["next_hold"] is None  # the cap is covered: no further hold

    async with calls.live() as (uncapped, _host, _guest):
        assert (await calls.session(uncapped))["next_hold"] == "12.50"
