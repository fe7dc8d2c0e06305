"""`GET /v1/host/payouts/history`: what reached (or is on its way to) the host's bank.

With simulated payments the host's net (captured less the platform fee, less refunds with
the fee handed back) is paid out at each midnight UTC and arrives two days later; the list
grows as the test clock moves, and its amounts add up to the host's earnings."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from vidivo.auth.models import User

DAY = 86400


async def history(client, host, query: str = "") -> list[tuple[str, str, str, str, str]]:
    response = await client.get(f"/v1/host/payouts/history{query}", headers=host.headers)
    assert response.status_code == 200, response.text
    return [
        (p["amount"], p["currency"], p["status"], p["arrival_date"], p["created_at"])
        for p in response.json()["payouts"]
    ]


async def test_each_days_net_is_paid_out_at_midnight_and_arrives_two_days_later(
    client, calls, hosts, two_days_of_calls
):
    host = two_days_of_calls  # Monday 16 March, 10:10 UTC
    assert await history(client, host) == [
        ("18.00", "usd", "in_transit", "2026-03-18", "2026-03-16T00:00:00Z"),
    ]

    await calls.advance(2 * DAY)  # Wednesday 18 March, 10:10
    host.access_token, host.refresh_token = await hosts.login(host.email)
    # Monday's 7.50 less its 0.75 fee, less the 5.00 refund with 0.50 of fee handed back.
    assert await history(client, host) == [
        ("2.25", "usd", "in_transit", "2026-03-19", "2026-03-17T00:00:00Z"),
        ("18.00", "usd", "paid", "2026-03-18", "2026-03-16T00:00:00Z"),
    ]
    assert await history(client, host, "?limit=1") == [
        ("2.25", "usd", "in_transit", "2026-03-19", "2026-03-17T00:00:00Z"),
    ]

    await calls.advance(DAY)
    host.access_token, host.refresh_token = await hosts.login(host.email)
    paid = await history(client, host)
    assert [(amount, status) for amount, _, status, _, _ in paid] == [
        ("2.25", "paid"),
        ("18.00", "paid"),
    ]
    earnings = await client.get("/v1/earnings", headers=host.headers)
    assert earnings.json()["net"] == "20.25"  # all of it paid out


async def test_ids_stay_the_same_from_one_look_to_the_next(client, calls, two_days_of_calls):
    first = await client.get("/v1/host/payouts/history", headers=two_days_of_calls.headers)
    again = await client.get("/v1/host/payouts/history", headers=two_days_of_calls.headers)
    assert first.json() == again.json()
    assert first.json()["payouts"][0]["id"].startswith("po_sim_")


async def test_a_host_without_calls_or_without_a_payout_account_has_none(client, hosts):
    ready = await hosts.create()
    assert await history(client, ready) == []
    not_connected = await hosts.create(connected=False)
    assert await history(client, not_connected) == []


async def test_the_history_is_the_hosts_own(client, hosts, calls, two_days_of_calls):
    other = await hosts.create()
    assert await history(client, other) == []


async def test_payout_history_needs_a_host_in_good_standing(client, hosts, context, clock):
    anonymous = await client.get("/v1/host/payouts/history")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    host = await hosts.create()
    async with context.session_factory() as db:
        await db.execute(update(User).where(User.id == host.id).values(suspended_at=clock.now()))
        await db.commit()
    refused = await client.get("/v1/host/payouts/history", headers=host.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "account_suspended"


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
async def test_a_limit_out_of_range_is_a_validation_error(client, hosts, limit):
    host = await hosts.create()
    response = await client.get(f"/v1/host/payouts/history?limit={limit}", headers=host.headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
