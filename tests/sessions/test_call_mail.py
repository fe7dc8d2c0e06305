"""Call emails reach a real SMTP server as text and HTML: the offline host is told a guest
waits (a host with a dashboard open is rung there instead)."""

from __future__ import annotations

import asyncio

from tests.accounts.test_account_mail import inbox, parts_of, settings  # noqa: F401 (fixtures)
from tests.sessions.test_availability import dashboard

BASE = "https://vidivo.test"


async def test_an_offline_host_is_emailed_a_link_to_the_waiting_call(calls, inbox):  # noqa: F811
    host = await calls.hosts.create(display_name="Dr. Rivera")
    call = await calls.started(host=host)
    assert (await calls.session(call))["state"] == "waiting_for_host"
    message = await inbox.next_to(host.email, "Alex is waiting for your Vidivo call")
    text, html = parts_of(message)
    assert "You have 10 minutes to join" in text
    assert "nothing is charged" in text
    assert f"Open the call: {BASE}/app#incoming" in text
    assert f'<a href="{BASE}/app#incoming">Open the call</a>' in html
    # The link opens the dashboard, which lists the waiting call to accept.
    waiting = await calls.client.get("/v1/sessions?state=waiting_for_host", headers=host.headers)
    assert [s["id"] for s in waiting.json()["sessions"]] == [call.session_id]
    page = await calls.client.get("/app")
    assert page.status_code == 200 and 'id="incoming"' in page.text


async def test_a_host_at_the_dashboard_is_rung_not_emailed(calls, app, inbox):  # noqa: F811
    host = await calls.hosts.create()
    link = await calls.link(host)
    async with dashboard(app, host) as feed:
        started = await calls.start(link["short_code"])
        assert started.status_code == 201, started.text
        assert (await feed.receive_json(timeout=5))["type"] == "incoming_call"
    await asyncio.sleep(0.5)  # the outbox runs after the answer: give it time to send
    assert not [m for m in inbox.messages if m["To"] == host.email and "waiting" in m["Subject"]]


async def test_the_guest_is_emailed_a_receipt_of_each_window_and_a_refund(calls, inbox):  # noqa: F811
    host = await calls.hosts.create(display_name="Dr. Rivera")
    async with calls.live(host=host) as (call, _host_ws, _guest_ws):
        await calls.advance(450)  # 7½ minutes at 2.50/min, 5-minute windows: 20.00
        await calls.end(call)
    message = await inbox.next_to("alex@example.com", "Your receipt for the call with Dr. Rivera")
    text, html = parts_of(message)
    for part in (text, html):
        assert "$2.50 per minute" in part and "windows of 5 minutes" in part
        assert "Window 1: 5 min, $12.50 charged" in part
        assert "Window 2: 3 min, $7.50 charged" in part
        assert "Total charged: $20.00" in part
        assert "2026-" in part  # the date the call ended
    assert html.startswith("<!doctype html>")

    refunded = await calls.client.post(
        f"/v1/sessions/{call.session_id}/refunds",
        headers={**host.headers, "Idempotency-Key": "refund-1"},
        json={"amount": "8.00", "reason": "late start"},
    )
    assert refunded.status_code == 201, refunded.text
    notice = await inbox.next_to(
        "alex@example.com", "A refund of $8.00 for your call with Dr. Rivera"
    )
    text, html = parts_of(notice)
    assert "$8.00" in text and call.session_id in text and "refunded to your card" in text
    assert call.session_id in html


async def test_no_receipt_for_a_call_that_never_went_live(calls, inbox):  # noqa: F811
    call = await calls.started()
    declined = await calls.client.post(
        f"/v1/sessions/{call.session_id}/decline", headers=call.host.headers
    )
    assert declined.status_code == 200, declined.text
    assert (await calls.session(call))["state"] == "declined"
    await asyncio.sleep(0.5)
    assert not [m for m in inbox.messages if m["To"] == "alex@example.com"]
