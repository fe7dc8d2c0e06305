"""Calls billed per started minute through pre-authorized windows (simulated provider)."""

from __future__ import annotations

from vidivo.calls.ledger import audit


async def test_a_seven_and_a_half_minute_call_captures_twenty_dollars_in_two_captures(
    calls, context
):
    async with calls.live() as (call, _host_ws, _guest_ws):
        await calls.advance(450)
        ended = await calls.end(call)
    assert ended.status_code == 200, ended.text
    session = ended.json()["session"]
    assert session["state"] == "ended"
    assert session["billed"] == "20.00"
    charges = await calls.charges(call)
    assert charges["windows"] == [
        {
            "number": 1,
            "state": "captured",
            "held": "12.50",
            "captured": "12.50",
            "released": "0.00",
        },
        {"number": 2, "state": "captured", "held": "12.50", "captured": "7.50", "released": "5.00"},
    ]
    assert charges["totals"] == {
        "held": "25.00",
        "captured": "20.00",
        "released": "5.00",
        "platform_fee": "2.00",
    }
    async with context.session_factory() as db:
        assert await audit(db) == []


async def test_a_declined_card_gets_402_and_consumes_nothing(calls, hosts, client):
    host = await hosts.create()
    link = await calls.link(host, max_uses=1)
    refused = await calls.start(link["short_code"], "pm_card_chargeDeclined")
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "payment_failed"
    opened = await client.get(f"/v1/links/{link['short_code']}", headers=host.headers)
    assert opened.json()["link"]["use_count"] == 0
    assert (await calls.start(link["short_code"])).status_code == 201


async def test_the_host_never_joining_expires_the_call_and_gives_the_use_back(
    calls, client, context
):
    call = await calls.started()
    await calls.advance(601)
    session = await calls.session(call)
    assert session["state"] == "expired"
    charges = await calls.charges(call)
    assert charges["totals"]["captured"] == "0.00"
    assert charges["windows"][0]["state"] == "released"
    link = await client.get(f"/v1/links/{call.short_code}", headers=call.host.headers)
    assert link.json()["link"]["use_count"] == 0
    async with context.session_factory() as db:
        assert await audit(db) == []
