"""The same request sent several times at once (a double click, a client's retry): every
answer is one a user can act on (never a 5xx, never a bare `409 conflict` for a plain double
click), the state is what one request would have left, and money moves once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, Host
from tests.sessions.conftest import Call, Calls
from tests.sessions.test_renewals import clean_audit
from vidivo.payments.sim_models import SimPaymentIntent

AT_ONCE = 4


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"test_clock": True})


@pytest.fixture
def calls(client, hosts, app) -> Calls:
    return Calls(client, hosts, app)


async def settled(context) -> None:
    """Every call here is over: the ledger agrees with the provider, and no hold is left
    authorized on a guest's card (the audit sees only holds the ledger knows of)."""
    await clean_audit(context)
    async with context.session_factory() as db:
        open_holds = await db.scalars(
            select(SimPaymentIntent.id).where(SimPaymentIntent.status == "requires_capture")
        )
        assert list(open_holds) == []


def statuses(answers: list[httpx.Response]) -> list[int]:
    return sorted(a.status_code for a in answers)


def codes(answers: list[httpx.Response]) -> list[str]:
    return sorted(a.json()["error"]["code"] for a in answers if a.status_code >= 400)


def no_server_error(answers: list[httpx.Response]) -> None:
    assert all(a.status_code < 500 for a in answers), [a.text for a in answers]


async def at_once(make: Any, times: int = AT_ONCE) -> list[httpx.Response]:
    """`times` identical requests sent together. An exception the app did not turn into an
    answer reaches the test through the in-process transport: a server error too."""
    answers = await asyncio.gather(*(make() for _ in range(times)), return_exceptions=True)
    raised = [a for a in answers if isinstance(a, BaseException)]
    assert not raised, f"{len(raised)} of {times} requests failed in the server: {raised!r}"
    return list(answers)


async def session_action(calls: Calls, call: Call, action: str, who: str = "host"):
    headers = call.host.headers if who == "host" else call.guest_headers
    return await calls.client.post(f"/v1/sessions/{call.session_id}/{action}", headers=headers)


async def use_count(calls: Calls, call: Call) -> int:
    link = await calls.client.get(f"/v1/links/{call.short_code}", headers=call.host.headers)
    if link.status_code == 410:  # used up: the list still shows the count
        listed = await calls.client.get("/v1/links", headers=call.host.headers)
        [found] = [x for x in listed.json()["links"] if x["short_code"] == call.short_code]
        return found["use_count"]
    assert link.status_code == 200, link.text
    return link.json()["link"]["use_count"]


async def ended_call(calls: Calls, seconds: int = 450) -> Call:
    """A call live for `seconds` (450 s at 2.50/min: 8 started minutes, 20.00 captured)."""
    async with calls.live() as (call, _h, _g):
        await calls.advance(seconds)
        ended = await calls.end(call)
        assert ended.status_code == 200, ended.text
    return call


# --- the host's answer to a ringing call ---------------------------------------------------


async def test_a_double_clicked_accept_accepts_once_and_the_others_say_already_accepted(
    calls, context
):
    call = await calls.started()
    answers = await at_once(lambda: session_action(calls, call, "accept"))
    no_server_error(answers)
    assert statuses(answers) == [200] + [409] * (AT_ONCE - 1), [a.text for a in answers]
    assert codes(answers) == ["invalid_state"] * (AT_ONCE - 1)
    # The accepted call goes live once both are there, and is billed as one call.
    async with calls.join(call, "host"), calls.join(call, "guest"):
        assert (await calls.session(call))["state"] == "live"
        await calls.advance(90)
        ended = await calls.end(call)
    assert ended.json()["session"]["billed"] == "5.00"
    assert await use_count(calls, call) == 1
    await settled(context)


async def test_a_double_clicked_decline_releases_the_hold_once_and_gives_the_use_back(
    calls, context
):
    call = await calls.started()
    answers = await at_once(lambda: session_action(calls, call, "decline"))
    no_server_error(answers)
    assert statuses(answers) == [200] + [409] * (AT_ONCE - 1), [a.text for a in answers]
    assert codes(answers) == ["invalid_state"] * (AT_ONCE - 1)
    session = await calls.session(call)
    assert (session["state"], session["end_reason"]) == ("declined", "host_declined")
    totals = (await calls.charges(call))["totals"]
    assert (totals["held"], totals["captured"], totals["released"]) == ("12.50", "0.00", "12.50")
    assert await use_count(calls, call) == 0
    await settled(context)


async def test_accept_and_decline_at_once_leave_one_answer_standing(calls, context):
    """Two dashboards of one host (or a mis-click) answer the call both ways at once: one
    wins, the other is told the call is no longer waiting, and the money follows the winner."""
    call = await calls.started()
    accepted, declined = await asyncio.gather(
        session_action(calls, call, "accept"), session_action(calls, call, "decline")
    )
    no_server_error([accepted, declined])
    assert sorted([accepted.status_code, declined.status_code]) == [200, 409], (
        accepted.text,
        declined.text,
    )
    loser = accepted if accepted.status_code == 409 else declined
    assert loser.json()["error"]["code"] == "invalid_state"
    session = await calls.session(call)
    if declined.status_code == 200:
        assert session["state"] == "declined"
        assert (await calls.charges(call))["totals"]["released"] == "12.50"
    else:
        assert session["state"] == "waiting_for_host"
        assert (await calls.charges(call))["totals"]["released"] == "0.00"
        assert (await session_action(calls, call, "end", "guest")).status_code == 200
    await settled(context)


# --- the end of a call --------------------------------------------------------------------


async def test_a_double_clicked_hang_up_ends_the_call_once_and_captures_once(calls, context):
    async with calls.live() as (call, _h, _g):
        await calls.advance(130)  # 3 started minutes
        answers = await at_once(lambda: calls.end(call, "guest"))
    no_server_error(answers)
    assert statuses(answers) == [200] + [409] * (AT_ONCE - 1), [a.text for a in answers]
    assert codes(answers) == ["invalid_state"] * (AT_ONCE - 1)
    [won] = [a for a in answers if a.status_code == 200]
    assert won.json()["session"]["state"] == "ended"
    assert won.json()["session"]["billed"] == "7.50"
    totals = (await calls.charges(call))["totals"]
    assert (totals["captured"], totals["released"]) == ("7.50", "5.00")
    await settled(context)


async def test_host_and_guest_hanging_up_together_end_the_call_once(calls, context):
    async with calls.live() as (call, _h, _g):
        await calls.advance(130)
        answers = list(
            await asyncio.gather(
                calls.end(call, "host"),
                calls.end(call, "guest"),
                calls.end(call, "host"),
                calls.end(call, "guest"),
            )
        )
    no_server_error(answers)
    assert statuses(answers) == [200] + [409] * 3, [a.text for a in answers]
    assert codes(answers) == ["invalid_state"] * 3
    session = await calls.session(call)
    assert session["state"] == "ended"
    assert session["end_reason"] in ("ended_by_host", "ended_by_guest")
    assert session["billed"] == "7.50"
    totals = (await calls.charges(call))["totals"]
    assert (totals["captured"], totals["released"]) == ("7.50", "5.00")
    await settled(context)


async def test_a_guest_hanging_up_twice_while_the_call_still_rings_releases_once(calls, context):
    call = await calls.started()
    answers = await at_once(lambda: calls.end(call, "guest"))
    no_server_error(answers)
    assert statuses(answers) == [200] + [409] * (AT_ONCE - 1), [a.text for a in answers]
    totals = (await calls.charges(call))["totals"]
    assert (totals["captured"], totals["released"]) == ("0.00", "12.50")
    assert await use_count(calls, call) == 0
    await settled(context)


async def test_hanging_up_while_the_renewal_falls_due_captures_what_was_used(calls, context):
    """The guest hangs up (twice) in the same instant the worker places the next hold."""
    async with calls.live() as (call, _h, _g):
        await calls.advance(224)
        answers = list(
            await asyncio.gather(calls.advance(1), calls.end(call, "guest"), calls.end(call))
        )[1:]
    no_server_error(answers)
    assert statuses(answers) == [200, 409], [a.text for a in answers]
    session = await calls.session(call)
    assert session["state"] == "ended"
    assert session["billed"] == "10.00"  # 224 or 225 s: 4 started minutes
    assert (await calls.charges(call))["totals"]["captured"] == "10.00"
    await settled(context)


# --- the guest's new card -----------------------------------------------------------------


async def replace_card(calls: Calls, call: Call, card: str = "pm_card_visa") -> httpx.Response:
    return await calls.client.post(
        f"/v1/sessions/{call.session_id}/payment-method",
        headers=call.guest_headers,
        json={"payment_method_id": card},
    )


async def goes_on_into_window_2_then_ends(calls: Calls, call: Call) -> None:
    """The call, 230 s live, goes on into window 2 (430 s in all), then is hung up: 8
    started minutes at 2.50, billed and captured."""
    await calls.advance(200)
    assert (await calls.session(call))["state"] == "live"
    ended = (await calls.end(call)).json()["session"]
    assert ended["billed"] == "20.00"
    assert (await calls.charges(call))["totals"]["captured"] == "20.00"


async def test_a_double_clicked_new_card_renews_the_window_once(calls, context):
    async with calls.live(card="pm_sim_decline_after_1") as (call, _h, _g):
        await calls.advance(230)  # window 2 is declined
        assert (await calls.session(call))["hold_declined"] is True
        answers = await at_once(lambda: replace_card(calls, call))
        no_server_error(answers)
        assert statuses(answers) == [200] * AT_ONCE, [a.text for a in answers]
        assert {a.json()["session"]["hold_declined"] for a in answers} == {False}
        windows = (await calls.charges(call))["windows"]
        assert [(w["number"], w["state"]) for w in windows] == [(1, "held"), (2, "held")]
        assert (await calls.charges(call))["totals"]["held"] == "25.00"
        await goes_on_into_window_2_then_ends(calls, call)
    await settled(context)


async def test_a_second_card_given_while_the_first_is_tried_renews_the_window_once(
    calls, context, monkeypatch
):
    """Two tabs of the call page (or a quick change of mind) each give a card after the
    declined renewal: the second arrives once the provider has held on the first, before
    that hold is recorded. The second is refused until that hold is settled: the window is
    held once, on the first card, and no hold is left on a card the ledger does not know.
    Deterministic: the second card is given from inside the provider call that tries the
    first."""
    async with calls.live(card="pm_sim_decline_after_1") as (call, _h, _g):
        await calls.advance(230)  # window 2 is declined
        place_hold = context.payments.place_hold
        second: list[httpx.Response] = []

        async def hold_while_the_guest_gives_another_card(request, **kwargs: Any):
            hold = await place_hold(request, **kwargs)
            if request.payment_method_id == "pm_card_visa" and not second:
                # The provider has held on the first card; before that is recorded, the
                # guest's second card arrives.
                second.append(await replace_card(calls, call, "pm_card_mastercard"))
            return hold

        monkeypatch.setattr(context.payments, "place_hold", hold_while_the_guest_gives_another_card)
        first = await replace_card(calls, call, "pm_card_visa")
        monkeypatch.undo()
        answers = [first, *second]
        no_server_error(answers)
        assert statuses(answers) == [200, 409], [a.text for a in answers]
        assert second[0].json()["error"]["code"] == "invalid_state"
        assert "try again in a moment" in second[0].json()["error"]["message"]
        windows = (await calls.charges(call))["windows"]
        assert [(w["number"], w["state"]) for w in windows] == [(1, "held"), (2, "held")]
        assert first.json()["session"]["hold_declined"] is False
        # Asked again once the hold is settled, the card is changed for the next windows.
        again = await replace_card(calls, call, "pm_card_mastercard")
        assert again.status_code == 200, again.text
        await goes_on_into_window_2_then_ends(calls, call)
    await settled(context)


async def test_a_new_card_given_twice_while_nothing_was_declined_changes_nothing_twice(
    calls, context
):
    async with calls.live() as (call, _h, _g):
        await calls.advance(60)
        answers = await at_once(lambda: replace_card(calls, call, "pm_card_mastercard"))
        no_server_error(answers)
        assert statuses(answers) == [200] * AT_ONCE, [a.text for a in answers]
        assert [w["number"] for w in (await calls.charges(call))["windows"]] == [1]
        ended = (await calls.end(call)).json()["session"]
    assert ended["billed"] == "2.50"
    await settled(context)


# --- refunds ------------------------------------------------------------------------------


async def refund(calls: Calls, call: Call, key: str, amount: str | None = "5.00"):
    body: dict[str, str] = {"reason": "the line was bad"}
    if amount is not None:
        body["amount"] = amount
    return await calls.client.post(
        f"/v1/sessions/{call.session_id}/refunds",
        headers={**call.host.headers, "Idempotency-Key": key},
        json=body,
    )


async def refunded(calls: Calls, call: Call) -> str:
    listed = await calls.client.get("/v1/sessions", headers=call.host.headers)
    [found] = [s for s in listed.json()["sessions"] if s["id"] == call.session_id]
    return found["refunded"]


async def test_a_double_clicked_refund_refunds_once(calls, context):
    call = await ended_call(calls)
    answers = await at_once(lambda: refund(calls, call, "bad-line"))
    no_server_error(answers)
    assert statuses(answers) == [201] * AT_ONCE, [a.text for a in answers]
    assert len({a.json()["refund"]["id"] for a in answers}) == 1
    assert {a.json()["refund"]["state"] for a in answers} == {"succeeded"}
    assert await refunded(calls, call) == "5.00"
    receipt = await calls.client.get(
        f"/v1/sessions/{call.session_id}/receipt", headers=call.guest_headers
    )
    assert receipt.json()["receipt"]["refunded"] == "5.00"
    await settled(context)


async def test_a_double_clicked_full_refund_refunds_the_capture_once(calls, context):
    call = await ended_call(calls)
    answers = await at_once(lambda: refund(calls, call, "all-of-it", amount=None))
    no_server_error(answers)
    assert statuses(answers) == [201] * AT_ONCE, [a.text for a in answers]
    assert {a.json()["refund"]["amount"] for a in answers} == {"20.00"}
    assert len({a.json()["refund"]["id"] for a in answers}) == 1
    assert await refunded(calls, call) == "20.00"
    await settled(context)


async def test_full_refunds_under_two_keys_at_once_refund_the_capture_once(calls, context):
    """Two tabs of the host's history, each with its own key: one refund goes through, the
    other is told what is left."""
    call = await ended_call(calls)
    answers = list(
        await asyncio.gather(
            refund(calls, call, "tab-1", amount=None), refund(calls, call, "tab-2", amount=None)
        )
    )
    no_server_error(answers)
    assert statuses(answers) in ([201, 400], [201, 409]), [a.text for a in answers]
    assert codes(answers)[0] in ("validation_error", "refund_exceeds_remaining")
    assert await refunded(calls, call) == "20.00"
    await settled(context)


# --- links --------------------------------------------------------------------------------


async def test_a_double_clicked_delete_deactivates_the_link_with_204_each_time(calls):
    host = await calls.hosts.create()
    link = await calls.link(host)
    answers = await at_once(
        lambda: calls.client.delete(f"/v1/links/{link['id']}", headers=host.headers)
    )
    no_server_error(answers)
    assert statuses(answers) == [204] * AT_ONCE, [a.text for a in answers]
    opened = await calls.client.get(f"/v1/links/{link['short_code']}")
    assert opened.status_code == 404
    listed = await calls.client.get("/v1/links", headers=host.headers)
    assert [x["is_active"] for x in listed.json()["links"]] == [False]


async def test_a_link_deleted_while_a_call_starts_refuses_the_call_as_deleted(
    calls, context, monkeypatch
):
    """The host deactivates the link while a guest's start is with the payment provider
    (between the link's check and the taking of its use): the hold is released and the guest
    is told the link is gone (`404`), not that it "has reached its maximum uses" (it has
    none). Deterministic: the delete is made from inside the provider call."""
    host = await calls.hosts.create()
    link = await calls.link(host)
    attach = context.payments.attach_payment_method

    async def attach_while_the_host_deletes(**kwargs: Any):
        deleted = await calls.client.delete(f"/v1/links/{link['id']}", headers=host.headers)
        assert deleted.status_code == 204, deleted.text
        return await attach(**kwargs)

    monkeypatch.setattr(context.payments, "attach_payment_method", attach_while_the_host_deletes)
    started = await calls.start(link["short_code"])
    monkeypatch.undo()
    no_server_error([started])
    listed = await calls.client.get("/v1/sessions", headers=host.headers)
    [session] = listed.json()["sessions"]
    assert session["state"] != "waiting_for_host"
    assert session["charged"] == "0.00"
    await settled(context)  # the refused start's hold was released
    assert started.status_code == 404, started.text
    assert started.json()["error"]["code"] == "not_found"


async def test_a_delete_racing_two_starts_leaves_no_hold_behind(calls, context):
    host = await calls.hosts.create()
    link = await calls.link(host)
    deleted, *starts = await asyncio.gather(
        calls.client.delete(f"/v1/links/{link['id']}", headers=host.headers),
        calls.start(link["short_code"]),
        calls.start(link["short_code"]),
    )
    no_server_error([deleted, *starts])
    assert deleted.status_code == 204
    for started in starts:
        if started.status_code == 201:  # it began before the delete: it runs on and is billed
            body = started.json()
            call = Call(host, link["short_code"], body["session"]["id"], body["guest_token"], body)
            assert (await calls.end(call, "guest")).status_code == 200
        else:
            assert started.status_code in (404, 410), started.text
    listed = await calls.client.get("/v1/sessions", headers=host.headers)
    for session in listed.json()["sessions"]:
        assert session["state"] in ("ended", "declined"), session
        assert session["charged"] == "0.00"
    await settled(context)


async def test_a_retried_create_with_one_key_makes_one_link(calls):
    host = await calls.hosts.create()
    body = {"rate_per_minute": "2.50", "window_size_minutes": 5, "label": "Office hours"}
    answers = await at_once(
        lambda: calls.client.post(
            "/v1/links", headers={**host.headers, "Idempotency-Key": "office-1"}, json=body
        ),
        times=5,
    )
    no_server_error(answers)
    assert statuses(answers) == [201] * 5, [a.text for a in answers]
    assert len({a.json()["link"]["id"] for a in answers}) == 1
    listed = await calls.client.get("/v1/links", headers=host.headers)
    assert len(listed.json()["links"]) == 1


# --- the account --------------------------------------------------------------------------


async def test_a_retried_start_with_one_idempotency_key_starts_one_call(calls, context):
    """The conventions promise that a POST repeated with the same `Idempotency-Key` does
    nothing twice; a guest page retrying its start must not hold the card twice."""
    host = await calls.hosts.create()
    link = await calls.link(host)
    body = {
        "guest_name": "Alex",
        "guest_email": "alex@example.com",
        "payment_method_id": "pm_card_visa",
    }
    answers = await at_once(
        lambda: calls.client.post(
            f"/v1/links/{link['short_code']}/sessions",
            headers={"Idempotency-Key": "start-1"},
            json=body,
        ),
        times=3,
    )
    no_server_error(answers)
    assert statuses(answers) == [201] * 3, [a.text for a in answers]
    assert len({a.json()["session"]["id"] for a in answers}) == 1, "one call, one hold"
    listed = await calls.client.get("/v1/sessions", headers=host.headers)
    assert len(listed.json()["sessions"]) == 1
    for answer in answers:
        call = Call(
            host,
            link["short_code"],
            answer.json()["session"]["id"],
            answer.json()["guest_token"],
            answer.json(),
        )
        await calls.end(call, "guest")
    await settled(context)


async def test_a_double_clicked_away_switch_answers_away_each_time(calls):
    host = await calls.hosts.create()
    answers = await at_once(
        lambda: calls.client.put("/v1/me/availability", headers=host.headers, json={"away": True})
    )
    no_server_error(answers)
    assert statuses(answers) == [200] * AT_ONCE, [a.text for a in answers]
    assert {a.json()["availability"] for a in answers} == {"away"}
    me = await calls.client.get("/v1/me", headers=host.headers)
    assert me.json()["user"]["away"] is True


async def test_away_and_back_at_once_leave_one_of_them(calls):
    host = await calls.hosts.create()
    away, back = await asyncio.gather(
        calls.client.put("/v1/me/availability", headers=host.headers, json={"away": True}),
        calls.client.put("/v1/me/availability", headers=host.headers, json={"away": False}),
    )
    no_server_error([away, back])
    assert (away.status_code, back.status_code) == (200, 200), (away.text, back.text)
    me = (await calls.client.get("/v1/me", headers=host.headers)).json()["user"]
    link = await calls.link(host)
    public = await calls.client.get(f"/v1/links/{link['short_code']}")
    shown = public.json()["link"]["host"]["availability"]
    assert shown == ("away" if me["away"] else "offline")


async def test_a_double_clicked_logout_ends_the_login_once(calls):
    host = await calls.hosts.create()
    answers = await at_once(lambda: calls.client.post("/v1/auth/logout", headers=host.headers))
    no_server_error(answers)
    assert set(statuses(answers)) <= {204, 401}, [a.text for a in answers]
    assert 204 in statuses(answers)
    assert (await calls.client.get("/v1/me", headers=host.headers)).status_code == 401
    refreshed = await calls.client.post(
        "/v1/auth/refresh", json={"refresh_token": host.refresh_token}
    )
    assert refreshed.status_code == 401


async def test_a_double_clicked_password_change_keeps_this_login_and_the_new_password(calls):
    host = await calls.hosts.create()
    body = {"current_password": PASSWORD, "new_password": "an even better passphrase"}
    answers = await at_once(
        lambda: calls.client.post("/v1/me/password", headers=host.headers, json=body), times=2
    )
    no_server_error(answers)
    # The second, run after the first, finds the current password changed: 403 is its answer.
    assert set(statuses(answers)) <= {204, 403}, [a.text for a in answers]
    assert 204 in statuses(answers)
    assert (await calls.client.get("/v1/me", headers=host.headers)).status_code == 200
    logged_in = await calls.client.post(
        "/v1/auth/token", json={"email": host.email, "password": "an even better passphrase"}
    )
    assert logged_in.status_code == 200, logged_in.text


async def test_a_double_clicked_account_deletion_deletes_once(calls):
    host: Host = await calls.hosts.create()
    link = await calls.link(host)
    answers = await at_once(lambda: calls.client.delete("/v1/me", headers=host.headers), times=2)
    no_server_error(answers)
    assert set(statuses(answers)) <= {204, 401}, [a.text for a in answers]
    assert 204 in statuses(answers)
    assert (await calls.client.get(f"/v1/links/{link['short_code']}")).status_code == 404
    gone = await calls.client.post(
        "/v1/auth/token", json={"email": host.email, "password": PASSWORD}
    )
    assert gone.status_code == 401


async def test_a_double_clicked_email_verification_verifies_once(calls):
    host = await calls.hosts.create(verified=False, connected=False)
    token = await calls.hosts.verification_token(host.email)
    answers = await at_once(
        lambda: calls.client.post("/v1/auth/verify-email", json={"token": token}), times=2
    )
    no_server_error(answers)
    assert set(statuses(answers)) <= {200, 400}, [a.text for a in answers]
    assert 200 in statuses(answers)
    me = await calls.client.get("/v1/me", headers=host.headers)
    assert me.json()["user"]["email_verified"] is True


async def test_a_double_clicked_sign_up_makes_one_account(calls):
    body = {"email": "twice@example.com", "password": PASSWORD, "display_name": "Twice"}
    answers = await at_once(lambda: calls.client.post("/v1/auth/signup", json=body), times=3)
    no_server_error(answers)
    assert statuses(answers) == [201, 409, 409], [a.text for a in answers]
    assert codes(answers) == ["email_taken", "email_taken"]
    assert (await calls.hosts.login("twice@example.com"))[0]


async def test_a_double_clicked_payout_onboarding_makes_one_payout_account(calls, context):
    host = await calls.hosts.create(connected=False)
    answers = await at_once(
        lambda: calls.client.post("/v1/host/payouts/onboarding", headers=host.headers)
    )
    no_server_error(answers)
    assert statuses(answers) == [200] * AT_ONCE, [a.text for a in answers]
    pages = {a.json()["url"].rsplit("/", 1)[1] for a in answers}
    assert len(pages) == 1, pages  # one connected account behind every link
    page = answers[0].json()["url"].removeprefix(context.settings.public_base_url)
    completed = await at_once(lambda: calls.client.post(page), times=2)
    no_server_error(completed)
    assert statuses(completed) == [303, 303], [a.text for a in completed]
    status = await calls.client.get("/v1/host/payouts", headers=host.headers)
    assert status.json()["charges_enabled"] is True
    assert (
        await calls.client.post(
            "/v1/links",
            headers=host.headers,
            json={"rate_per_minute": "2.50", "window_size_minutes": 5},
        )
    ).status_code == 201


async def test_the_host_accepting_as_the_guest_hangs_up_leaves_a_consistent_call(calls, context):
    call = await calls.started()
    accepted, ended = await asyncio.gather(
        session_action(calls, call, "accept"), calls.end(call, "guest")
    )
    no_server_error([accepted, ended])
    assert ended.status_code == 200, ended.text
    assert accepted.status_code in (200, 409), accepted.text
    if accepted.status_code == 409:
        assert accepted.json()["error"]["code"] == "invalid_state"
    session = await calls.session(call)
    assert (session["state"], session["end_reason"]) == ("declined", "ended_by_guest")
    totals = (await calls.charges(call))["totals"]
    assert (totals["captured"], totals["released"]) == ("0.00", "12.50")
    assert await use_count(calls, call) == 0
    await settled(context)
