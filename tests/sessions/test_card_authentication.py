"""Strong Customer Authentication: a card whose bank asks for 3-D Secure is authenticated by
the guest (on the guest page for the first hold, in the call for a renewal), never refused
for want of it; nothing is held, charged or rung until the bank has said yes."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.sessions.conftest import Call
from tests.sessions.test_renewals import clean_audit

ONCE = "pm_card_authenticationRequiredOnSetup"  # 4000 0025 0000 3155
ALWAYS = "pm_card_authenticationRequired"  # 4000 0027 6000 3184
SITE = "https://vidivo.test"  # the tests' VIDIVO_PUBLIC_BASE_URL


async def answer_the_bank(calls, call: Call, authentication: dict[str, Any], answer: str) -> None:
    """What the guest does on the simulated bank's page: one button, back to the call."""
    page = authentication["next_action_url"].removeprefix(SITE)
    shown = await calls.client.get(page)
    assert shown.status_code == 200, shown.text
    assert "Complete authentication" in shown.text
    back = f"/call/{call.session_id}"
    answered = await calls.client.post(f"{page}/{answer}", params={"return_to": back})
    assert answered.status_code == 303, answered.text
    assert answered.headers["location"] == f"{SITE}{back}"  # on the public base URL


async def confirm(calls, call: Call):
    return await calls.client.post(
        f"/v1/sessions/{call.session_id}/payment/confirm", headers=call.guest_headers
    )


async def authenticated_start(calls, card: str, answer: str = "complete") -> tuple[Call, Any]:
    call = await calls.started(card=card)
    assert call.started["session"]["state"] == "pending_payment"
    assert call.started["session"]["awaiting_authentication"] is True
    await answer_the_bank(calls, call, call.started["authentication"], answer)
    return call, await confirm(calls, call)


async def test_a_3ds_card_is_authenticated_then_the_call_proceeds_and_is_billed(calls, context):
    call = await calls.started(card=ONCE)
    authentication = call.started["authentication"]
    assert authentication["window"] == 1
    assert authentication["next_action_url"].startswith("https://vidivo.test/simulated/3ds/pi_")
    # Nothing is held and the host is not rung before the bank has answered.
    charges = await calls.charges(call)
    assert charges["windows"][0]["state"] == "authenticating"
    assert charges["totals"]["held"] == "0.00"
    listed = await calls.client.get("/v1/sessions", headers=call.host.headers)
    assert listed.json()["sessions"][0]["state"] == "pending_payment"

    await answer_the_bank(calls, call, authentication, "complete")
    confirmed = await confirm(calls, call)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["authentication"] is None
    assert confirmed.json()["session"]["state"] == "waiting_for_host"
    assert (await confirm(calls, call)).json()["session"]["state"] == "waiting_for_host"
    assert (await calls.charges(call))["totals"]["held"] == "12.50"

    accepted = await calls.client.post(
        f"/v1/sessions/{call.session_id}/accept", headers=call.host.headers
    )
    assert accepted.status_code == 200, accepted.text
    async with calls.join(call, "host"), calls.join(call, "guest"):
        await calls.advance(330)  # the card is set up: the off-session renewal passes
        assert [w["state"] for w in (await calls.charges(call))["windows"]] == [
            "captured",
            "held",
        ]
        ended = (await calls.end(call)).json()["session"]
    assert ended["billed"] == "15.00"  # 330 s: 6 started minutes at $2.50
    assert (await calls.charges(call))["totals"]["captured"] == "15.00"
    await clean_audit(context)


async def test_a_failed_challenge_charges_nothing_and_keeps_the_link_use(calls, context):
    call, confirmed = await authenticated_start(calls, ONCE, answer="fail")
    assert confirmed.status_code == 402, confirmed.text
    error = confirmed.json()["error"]
    assert error["code"] == "payment_failed"
    assert error["details"] == [{"field": "payment_method_id", "message": "authentication_failed"}]
    session = await calls.session(call)
    assert (session["state"], session["end_reason"]) == ("declined", "authentication_failed")
    totals = (await calls.charges(call))["totals"]
    assert (totals["held"], totals["captured"]) == ("0.00", "0.00")
    link = await calls.client.get(f"/v1/links/{call.short_code}", headers=call.host.headers)
    assert link.json()["link"]["use_count"] == 0
    await clean_audit(context)


async def test_an_abandoned_challenge_is_cancelled_with_nothing_charged(calls, context):
    call = await calls.started(card=ONCE)
    await calls.advance(301)  # the guest never came back from the bank's page
    session = await calls.session(call)
    assert (session["state"], session["end_reason"]) == ("declined", "authentication_abandoned")
    assert (await calls.charges(call))["windows"][0]["state"] == "released"
    hold_id = call.started["authentication"]["next_action_url"].rsplit("/", 1)[1]
    assert (await context.payments.retrieve_hold(hold_id)).status == "canceled"
    # Coming back too late answers with the call as it ended.
    late = await confirm(calls, call)
    assert late.status_code == 200, late.text
    assert late.json()["session"]["state"] == "declined"
    await clean_audit(context)


async def test_a_renewal_the_bank_wants_authenticated_goes_through_the_in_call_card_flow(
    calls, context
):
    call, confirmed = await authenticated_start(calls, ALWAYS)
    assert confirmed.status_code == 200, confirmed.text
    await calls.client.post(f"/v1/sessions/{call.session_id}/accept", headers=call.host.headers)
    async with calls.join(call, "host"), calls.join(call, "guest") as guest_ws:
        await calls.advance(225)  # window 2 is due: off-session, the bank refuses
        event = await guest_ws.receive_json(timeout=2)
        while event["type"] != "hold_declined":
            event = await guest_ws.receive_json(timeout=2)
        assert event["decline_code"] == "authentication_required"
        # No smaller fallback hold: only the guest can answer the bank.
        windows = (await calls.charges(call))["windows"]
        assert [(w["number"], w["state"]) for w in windows] == [(1, "held"), (2, "declined")]

        replaced = await calls.client.post(
            f"/v1/sessions/{call.session_id}/payment-method",
            headers=call.guest_headers,
            json={"payment_method_id": ALWAYS},
        )
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["session"]["awaiting_authentication"] is True
        authentication = replaced.json()["authentication"]
        assert authentication["window"] == 2
        await answer_the_bank(calls, call, authentication, "complete")
        renewed = await confirm(calls, call)
        assert renewed.status_code == 200, renewed.text
        assert renewed.json()["session"]["awaiting_authentication"] is False
        assert renewed.json()["session"]["hold_declined"] is False
        assert (await calls.charges(call))["windows"][1]["state"] == "held"

        await calls.advance(200)  # 425 s live: into window 2, the call goes on
        assert (await calls.session(call))["state"] == "live"
        ended = (await calls.end(call)).json()["session"]
    assert ended["billed"] == "20.00"  # 8 started minutes
    assert (await calls.charges(call))["totals"]["captured"] == "20.00"
    await clean_audit(context)


async def test_the_challenge_page_sends_the_guest_back_only_to_this_site(calls):
    call = await calls.started(card=ONCE)
    page = call.started["authentication"]["next_action_url"].removeprefix("https://vidivo.test")
    for elsewhere in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        shown = await calls.client.get(page, params={"return_to": elsewhere})
        assert "evil.example" not in shown.text
    answered = await calls.client.post(f"{page}/complete", params={"return_to": "//evil.example"})
    assert answered.headers["location"] == f"{SITE}/"
    # Answered once: the page says so, and a second answer changes nothing.
    assert "no longer awaits authentication" in (await calls.client.get(page)).text
    assert (await calls.client.post(f"{page}/fail")).status_code == 404
    assert (await confirm(calls, call)).json()["session"]["state"] == "waiting_for_host"


async def test_the_host_join_timeout_counts_from_the_authenticated_hold(calls, context):
    call = await calls.started(card=ONCE)
    await calls.advance(240)  # the guest takes 4 minutes with the bank
    await answer_the_bank(calls, call, call.started["authentication"], "complete")
    assert (await confirm(calls, call)).json()["session"]["state"] == "waiting_for_host"
    await calls.advance(590)  # 14 min 50 s after the start, 9 min 50 s after the bank's yes
    assert (await calls.session(call))["state"] == "waiting_for_host"
    await calls.advance(20)
    session = await calls.session(call)
    assert (session["state"], session["end_reason"]) == ("expired", "host_no_show")
    totals = (await calls.charges(call))["totals"]
    assert (totals["held"], totals["captured"], totals["released"]) == ("12.50", "0.00", "12.50")
    await clean_audit(context)


async def test_a_guest_confirming_twice_at_once_gets_one_call_and_one_use(calls, context):
    """A double click on the guest page's "done" sends the confirmations together: each is
    answered with the call waiting for its host, never an error that says nothing was
    charged, and the link's use is taken once."""
    call = await calls.started(card=ONCE)
    await answer_the_bank(calls, call, call.started["authentication"], "complete")
    answers = await asyncio.gather(*(confirm(calls, call) for _ in range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert {a.json()["session"]["state"] for a in answers} == {"waiting_for_host"}
    link = await calls.client.get(f"/v1/links/{call.short_code}", headers=call.host.headers)
    assert link.json()["link"]["use_count"] == 1
    assert (await calls.charges(call))["totals"]["held"] == "12.50"
    await clean_audit(context)


async def test_a_failed_challenge_confirmed_twice_at_once_is_refused_the_same_way_twice(
    calls, context
):
    call = await calls.started(card=ONCE)
    await answer_the_bank(calls, call, call.started["authentication"], "fail")
    answers = await asyncio.gather(*(confirm(calls, call) for _ in range(4)))
    assert [a.status_code for a in answers] == [402] * 4, [a.text for a in answers]
    assert {a.json()["error"]["details"][0]["message"] for a in answers} == {
        "authentication_failed"
    }
    session = await calls.session(call)
    assert (session["state"], session["end_reason"]) == ("declined", "authentication_failed")
    link = await calls.client.get(f"/v1/links/{call.short_code}", headers=call.host.headers)
    assert link.json()["link"]["use_count"] == 0
    await clean_audit(context)
