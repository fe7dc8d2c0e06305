"""The billing and call metrics move with what happens: holds, captures, releases, declines,
refunds, renewals placed late, sockets, open calls, audit findings. Each test reads the
figures before and after (metrics are per process, shared by every app a test run builds)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from httpx_ws import aconnect_ws
from sqlalchemy import update

from tests.scrape import METRICS_TOKEN, Scrape, scrape
from tests.sessions.conftest import websocket_transport
from vidivo.calls.ledger import audit
from vidivo.calls.models import LedgerEntry, LedgerKind
from vidivo.core.config import MetricsMode

CALLS = "vidivo_billing_provider_calls_total"
HELD = "vidivo_billing_held_cents_total"
CAPTURED = "vidivo_billing_captured_cents_total"
RELEASED = "vidivo_billing_released_cents_total"
REFUNDED = "vidivo_billing_refunded_cents_total"
DECLINES = "vidivo_billing_declines_total"
LATENESS = "vidivo_billing_hold_lateness_seconds"
OPEN_CALLS = "vidivo_calls_open"
SOCKETS = "vidivo_websockets_open"


@pytest.fixture
def settings(settings):
    return settings.model_copy(
        update={"metrics": MetricsMode.TOKEN, "metrics_token": METRICS_TOKEN}
    )


def moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


async def test_a_call_moves_the_provider_call_and_money_counters(calls, client, clock, context):
    start = await scrape(client)
    call = await calls.started()  # window 1: 5 min at 2.50 = 12.50 held
    waiting = await scrape(client)
    assert moved(start, waiting, CALLS, action="hold", outcome="succeeded") == 1
    assert moved(start, waiting, HELD) == 1250
    assert waiting.value(OPEN_CALLS, state="waiting_for_host") == 1
    await client.post(f"/v1/sessions/{call.session_id}/accept", headers=call.host.headers)
    async with calls.join(call, "host"), calls.join(call, "guest"):
        live = await scrape(client)
        assert live.value(OPEN_CALLS, state="live") == 1
        assert live.value(OPEN_CALLS, state="waiting_for_host") == 0
        # The renewal falls due at 225 s (75 s lead); the worker's pass comes 10 s late.
        clock.set(clock.now() + timedelta(seconds=235))
        assert await context.worker.run_due() == 1
        renewed = await scrape(client)
        assert renewed.value("vidivo_worker_sessions_due") == 1
        assert moved(live, renewed, CALLS, action="hold", outcome="succeeded") == 1
        assert moved(live, renewed, HELD) == 1250
        assert moved(live, renewed, f"{LATENESS}_count") == 1
        assert moved(live, renewed, f"{LATENESS}_sum") == pytest.approx(10)
        ended = await calls.end(call)
        assert ended.status_code == 200, ended.text
    done = await scrape(client)
    # 235 s live = 4 started minutes = 10.00 captured from window 1; 2.50 of it released,
    # and window 2's 12.50 released whole.
    totals = (await calls.charges(call))["totals"]
    assert totals["captured"] == "10.00"
    assert moved(renewed, done, CALLS, action="capture", outcome="succeeded") == 1
    assert moved(renewed, done, CALLS, action="cancel", outcome="succeeded") == 1
    assert moved(renewed, done, CAPTURED) == 1000
    assert moved(renewed, done, RELEASED) == 250 + 1250
    assert done.value(OPEN_CALLS, state="live") == 0

    refund = await client.post(
        f"/v1/sessions/{call.session_id}/refunds",
        headers={**call.host.headers, "Idempotency-Key": "metrics-refund"},
        json={"amount": "3.00"},
    )
    assert refund.status_code == 201, refund.text
    refunded = await scrape(client)
    assert moved(done, refunded, CALLS, action="refund", outcome="succeeded") == 1
    assert moved(done, refunded, REFUNDED) == 300


async def test_a_declined_renewal_counts_its_declines(calls, client):
    before = await scrape(client)
    # The card authorizes one hold; the renewal and its smaller fallback are declined.
    async with calls.live(card="pm_sim_decline_after_1") as (call, _host_ws, _guest_ws):
        await calls.advance(230)
        assert (await calls.charges(call))["windows"][1]["state"] == "declined"
        after = await scrape(client)
    assert moved(before, after, DECLINES, action="hold") == 1
    assert moved(before, after, DECLINES, action="hold_fallback") == 1
    assert moved(before, after, CALLS, action="hold", outcome="declined") == 1
    assert moved(before, after, CALLS, action="hold", outcome="succeeded") == 1


async def test_sockets_opening_and_closing_move_the_gauge(calls, client, app):
    call = await calls.started()
    before = await scrape(client)
    async with calls.join(call, "guest"):
        during = await scrape(client)
        assert moved(before, during, SOCKETS, kind="call") == 1
        transport = websocket_transport(app)
        url = f"/v1/host/events?token={call.host.access_token}"
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://t") as ws_client,
            aconnect_ws(url, ws_client) as feed,
        ):
            await feed.send_json({"type": "ping"})
            assert (await feed.receive_json(timeout=5))["type"] == "pong"
            both = await scrape(client)
            assert moved(before, both, SOCKETS, kind="host_events") == 1
            assert moved(before, both, SOCKETS, kind="call") == 1
    closed = await _settled(client, lambda s: moved(before, s, SOCKETS) == 0)
    assert moved(before, closed, SOCKETS, kind="call") == 0
    assert moved(before, closed, SOCKETS, kind="host_events") == 0


async def test_audit_findings_are_counted(calls, client, context):
    async with calls.live() as (call, _h, _g):
        await calls.advance(60)
        await calls.end(call)
    async with context.session_factory() as db:
        await db.execute(
            update(LedgerEntry)
            .where(LedgerEntry.session_id == call.session_id)
            .where(LedgerEntry.kind == LedgerKind.CAPTURE)
            .values(amount_cents=1)
        )
        await db.commit()
    before = await scrape(client)
    async with context.session_factory() as db:
        findings = await audit(db)
    after = await scrape(client)
    assert len(findings) == 2  # captured != billed, released != held - captured
    assert moved(before, after, "vidivo_billing_audit_mismatches_total") == 2


async def _settled(client, condition, within: float = 5) -> Scrape:
    """The server finishes a socket's cleanup just after the client has gone."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        scraped = await scrape(client)
        if condition(scraped) or asyncio.get_running_loop().time() > deadline:
            return scraped
        await asyncio.sleep(0.05)
