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
