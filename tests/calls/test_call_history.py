"""The host's call list (`GET /v1/sessions`) says how each call ended, through which link,
and what money it moved: the dashboard's call history reads it in one request."""

from __future__ import annotations


async def history(client, host) -> dict[str, dict]:
    response = await client.get("/v1/sessions", headers=host.headers)
    assert response.status_code == 200, response.text
    return {s["id"]: s for s in response.json()["sessions"]}


async def test_each_row_names_its_link_and_the_money_charged_and_refunded(calls, client, hosts):
    host = await hosts.create()
    link = await calls.link(host, label="Office hours")
    async with calls.live(host=host, link=link) as (call, _h, _g):
        await calls.advance(450)
        await calls.end(call, who="host")
    refund = await client.post(
        f"/v1/sessions/{call.session_id}/refunds",
        headers={**host.headers, "Idempotency-Key": "part"},
        json={"amount": "4.50"},
    )
    assert refund.status_code == 201, refund.text
    row = (await history(client, host))[call.session_id]
    assert (row["link_code"], row["link_label"]) == (link["short_code"], "Office hours")
    assert (row["state"], row["end_reason"]) == ("ended", "ended_by_host")
    assert (row["billed"], row["charged"], row["refunded"]) == ("20.00", "20.00", "4.50")
    assert row["live_seconds"] == 450
    assert row["join_deadline"] is None


async def test_calls_that_never_started_say_who_ended_them(calls, client, hosts):
    host = await hosts.create()
    link = await calls.link(host)
    declined = await calls.started(host=host, link=link)
    await client.post(f"/v1/sessions/{declined.session_id}/decline", headers=host.headers)
    cancelled = await calls.started(host=host, link=link)
    await calls.end(cancelled, who="guest")
    card = await calls.start(link["short_code"], "pm_card_chargeDeclined")
    assert card.status_code == 402, card.text
    waiting = await calls.started(host=host, link=link)
    rows = list((await history(client, host)).values())
    ends = sorted((r["state"], r["end_reason"], r["charged"]) for r in rows)
    assert ends == [
        ("declined", "card_declined", "0.00"),
        ("declined", "ended_by_guest", "0.00"),
        ("declined", "host_declined", "0.00"),
        ("waiting_for_host", None, "0.00"),
    ]
    waiting_row = next(r for r in rows if r["id"] == waiting.session_id)
    # The host has the configured time to join (10 minutes by default) from the start.
    assert waiting_row["join_deadline"] == "2026-03-15T10:10:00Z"
    assert all(r["link_code"] == link["short_code"] and r["link_label"] is None for r in rows)
