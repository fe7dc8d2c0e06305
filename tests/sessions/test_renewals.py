"""Window renewals: placed ahead of time, captured in full, declines, new cards, max spend."""

from __future__ import annotations

from sqlalchemy import update

from vidivo.calls.ledger import audit
from vidivo.payouts.models import PayoutAccount


async def clean_audit(context):
    async with context.session_factory() as db:
        assert await audit(db) == []


async def test_the_next_hold_is_placed_before_the_window_ends(calls):
    async with calls.live() as (call, _h, _g):
        # W = 5 min: lead = max(60 s, 75 s) = 75 s, so the renewal is due at 225 s.
        await calls.advance(224)
        assert [w["number"] for w in (await calls.charges(call))["windows"]] == [1]
        await calls.advance(1)
        charges = await calls.charges(call)
        assert [(w["number"], w["state"]) for w in charges["windows"]] == [(1, "held"), (2, "held")]
        await calls.advance(75)
        charges = await calls.charges(call)
        assert charges["windows"][0]["state"] == "captured"
        assert charges["windows"][0]["captured"] == "12.50"
        session = await calls.session(call)
        assert session["current_window"] == 2
        assert session["live_seconds"] == 300
        assert session["billed"] == "12.50"


async def test_a_guest_side_pause_that_resumes_is_billed_in_full(calls):
    """Once the rule was "the clock stops while a party is away": a guest could drop its
    socket and talk on for free. Now a pause on the guest's side that resumes is billed."""
    call = await calls.started()
    await calls.client.post(f"/v1/sessions/{call.session_id}/accept", headers=call.host.headers)
    async with calls.join(call, "host"):
        async with calls.join(call, "guest"):
            await calls.advance(90)
        assert (await calls.session(call))["state"] == "paused"
        await calls.advance(50)  # inside the 60 s reconnect grace
        async with calls.join(call, "guest"):
            session = await calls.session(call)
            assert session["state"] == "live"
            assert session["live_seconds"] == 140
            await calls.advance(30)
            ended = (await calls.end(call, "host")).json()["session"]
    assert ended["live_seconds"] == 170
    assert ended["billed"] == "7.50"


async def test_a_party_gone_longer_than_the_grace_ends_the_call(calls, context):
    call = await calls.started()
    await calls.client.post(f"/v1/sessions/{call.session_id}/accept", headers=call.host.headers)
    async with calls.join(call, "host"):
        async with calls.join(call, "guest"):
            await calls.advance(61)
        await calls.advance(61)
    session = await calls.session(call)
    assert session["state"] == "ended"
    assert session["end_reason"] == "reconnect_timeout"
    assert session["billed"] == "5.00"  # 61 s live = 2 started minutes
    assert (await calls.charges(call))["totals"]["captured"] == "5.00"
    await clean_audit(context)


async def test_a_declined_renewal_retries_smaller_then_ends_the_call_at_the_window_end(
    calls, context
):
    # The card authorizes one hold, then is declined: window 2 and its 3-minute fallback fail.
    async with calls.live(card="pm_sim_decline_after_1") as (call, _host_ws, _guest_ws):
        await calls.advance(230)
        charges = await calls.charges(call)
        assert charges["windows"][1]["state"] == "declined"
        session = await calls.session(call)
        assert session["hold_declined"] is True
        assert session["state"] == "live"
        await calls.advance(100)
    session = await calls.session(call)
    assert session["state"] == "ended"
    assert session["end_reason"] == "no_hold"
    assert session["live_seconds"] == 300  # stopped exactly at the end of window 1
    charges = await calls.charges(call)
    assert charges["totals"]["captured"] == "12.50"
    assert charges["totals"]["held"] == "12.50"
    await clean_audit(context)


async def test_the_guest_is_warned_of_a_declined_renewal_with_a_deadline(calls):
    async with calls.live(card="pm_sim_decline_after_1") as (_call, _host_ws, guest_ws):
        await calls.advance(230)
        events = []
        while True:
            event = await guest_ws.receive_json(timeout=2)
            events.append(event)
            if event["type"] == "hold_declined":
                break
    assert event["decline_code"] == "insufficient_funds"
    assert event["deadline"] == "2026-03-15T10:05:00Z"  # live since 10:00:00, 300 s covered


async def test_a_new_card_after_a_decline_keeps_the_call_going(calls, context):
    async with calls.live(card="pm_sim_decline_after_1") as (call, _h, _g):
        await calls.advance(230)
        replaced = await calls.client.post(
            f"/v1/sessions/{call.session_id}/payment-method",
            headers=call.guest_headers,
            json={"payment_method_id": "pm_card_visa"},
        )
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["session"]["hold_declined"] is False
        await calls.advance(200)  # 430 s live: into window 2
        assert (await calls.session(call))["state"] == "live"
        ended = (await calls.end(call)).json()["session"]
    assert ended["billed"] == "20.00"
    assert (await calls.charges(call))["totals"]["captured"] == "20.00"
    await clean_audit(context)


async def test_max_spend_ends_the_call_before_the_next_minute_would_pass_it(calls, context):
    async with calls.live(max_spend="10.00") as (call, _h, _g):  # 4 minutes at 2.50
        charges = await calls.charges(call)
        assert charges["windows"][0]["held"] == "10.00"
        await calls.advance(600)
    session = await calls.session(call)
    assert session["state"] == "ended"
    assert session["end_reason"] == "max_spend"
    assert session["live_seconds"] == 240
    assert (await calls.charges(call))["totals"]["captured"] == "10.00"
    await clean_audit(context)


async def test_a_max_spend_below_one_minute_is_refused(calls, hosts):
    host = await hosts.create()
    link = await calls.link(host)
    response = await calls.start(link["short_code"], max_spend="2.49")
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "max_spend"


async def test_ending_right_after_going_live_charges_one_minute(calls, context):
    async with calls.live() as (call, _h, _g):
        await calls.advance(5)
        ended = (await calls.end(call)).json()["session"]
    assert ended["billed"] == "2.50"
    charges = await calls.charges(call)
    assert charges["windows"] == [
        {"number": 1, "state": "captured", "held": "12.50", "captured": "2.50", "released": "10.00"}
    ]
    await clean_audit(context)


async def test_a_hold_placed_ahead_and_never_used_is_cancelled(calls, context):
    async with calls.live() as (call, _h, _g):
        await calls.advance(240)  # window 2 is held ahead, but the call ends in window 1
        ended = (await calls.end(call)).json()["session"]
    assert ended["billed"] == "10.00"
    charges = await calls.charges(call)
    assert [(w["state"], w["captured"], w["released"]) for w in charges["windows"]] == [
        ("captured", "10.00", "2.50"),
        ("released", "0.00", "12.50"),
    ]
    await clean_audit(context)


async def test_a_host_whose_payouts_were_disabled_gets_no_new_holds(calls, context):
    async with calls.live() as (call, _host_ws, guest_ws):
        # Stripe disabled the host's account (an `account.updated` webhook says so).
        async with context.session_factory() as db:
            await db.execute(
                update(PayoutAccount)
                .where(PayoutAccount.host_id == call.host.id)
                .values(charges_enabled=False)
            )
            await db.commit()
        await calls.advance(240)  # the renewal would be due now
        while (event := await guest_ws.receive_json(timeout=2))["type"] != "hold_declined":
            pass
        assert event["decline_code"] == "payment_failed"
        charges = await calls.charges(call)
        assert [w["state"] for w in charges["windows"]] == ["held", "declined"]
        assert charges["totals"]["held"] == "12.50"  # nothing more was held on the card
        await calls.advance(120)  # the paid 5 minutes run out: the call ends
    session = await calls.session(call)
    assert session["state"] == "ended" and session["end_reason"] is not None
    charges = await calls.charges(call)
    assert charges["totals"]["captured"] == session["billed"] == "12.50"
    await clean_audit(context)
