"""A call's start sent again with the same `Idempotency-Key` (a guest page retrying after a
dropped connection): one call, one hold on the card, and the first answer again, with a
guest token that works; the same key with another body is refused and starts nothing."""

from __future__ import annotations

from typing import Any

from tests.sessions.conftest import Call
from tests.sessions.test_renewals import clean_audit

GUEST = {"guest_name": "Alex", "guest_email": "alex@example.com"}


async def start(calls, short_code: str, key: str, card: str = "pm_card_visa", **extra: Any):
    return await calls.client.post(
        f"/v1/links/{short_code}/sessions",
        headers={"Idempotency-Key": key},
        json={**GUEST, "payment_method_id": card, **extra},
    )


async def sessions_of(calls, host) -> list[dict[str, Any]]:
    listed = await calls.client.get("/v1/sessions", headers=host.headers)
    assert listed.status_code == 200, listed.text
    return listed.json()["sessions"]


async def test_a_start_sent_again_answers_as_the_first_and_holds_the_card_once(calls, context):
    host = await calls.hosts.create()
    link = await calls.link(host)
    first = await start(calls, link["short_code"], "attempt-1")
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = await start(calls, link["short_code"], "attempt-1")
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["session"] == first.json()["session"]
    assert again.json()["authentication"] is None
    assert [s["id"] for s in await sessions_of(calls, host)] == [first.json()["session"]["id"]]
    # The repeat's own token is the guest's: it sees and ends the one call.
    call = Call(host, link["short_code"], first.json()["session"]["id"],
                again.json()["guest_token"], again.json())  # fmt: skip
    assert (await calls.charges(call))["totals"]["held"] == "12.50"
    assert (await calls.end(call, "guest")).status_code == 200
    # A new attempt is a new key: another call.
    other = await start(calls, link["short_code"], "attempt-2")
    assert other.status_code == 201, other.text
    assert other.json()["session"]["id"] != first.json()["session"]["id"]
    other_call = Call(host, link["short_code"], other.json()["session"]["id"],
                      other.json()["guest_token"], other.json())  # fmt: skip
    await calls.end(other_call, "guest")
    await clean_audit(context)


async def test_the_same_key_with_another_card_is_refused_and_starts_nothing(calls, context):
    host = await calls.hosts.create()
    link = await calls.link(host)
    first = await start(calls, link["short_code"], "attempt-1")
    assert first.status_code == 201, first.text
    other_card = await start(calls, link["short_code"], "attempt-1", card="pm_card_mastercard")
    assert other_card.status_code == 409, other_card.text
    assert other_card.json()["error"]["code"] == "idempotency_conflict"
    assert len(await sessions_of(calls, host)) == 1
    # Keys belong to the link: the same key on another link starts its own call.
    elsewhere = await calls.link(host)
    second = await start(calls, elsewhere["short_code"], "attempt-1")
    assert second.status_code == 201, second.text
    assert len(await sessions_of(calls, host)) == 2
    for answer, code in ((first, link["short_code"]), (second, elsewhere["short_code"])):
        body = answer.json()
        await calls.end(Call(host, code, body["session"]["id"], body["guest_token"], body))
    await clean_audit(context)


async def test_a_refused_card_sent_again_is_refused_again_without_a_second_try(calls, context):
    host = await calls.hosts.create()
    link = await calls.link(host)
    refused = await start(calls, link["short_code"], "attempt-1", card="pm_card_chargeDeclined")
    assert refused.status_code == 402, refused.text
    again = await start(calls, link["short_code"], "attempt-1", card="pm_card_chargeDeclined")
    assert again.status_code == 402, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == refused.json()
    [session] = await sessions_of(calls, host)  # one attempt at the card, not two
    assert session["state"] == "declined"
    await clean_audit(context)


async def test_a_malformed_key_is_a_validation_error_and_starts_nothing(calls):
    host = await calls.hosts.create()
    link = await calls.link(host)
    answer = await start(calls, link["short_code"], "x" * 256)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["details"][0]["field"] == "Idempotency-Key"
    assert await sessions_of(calls, host) == []
