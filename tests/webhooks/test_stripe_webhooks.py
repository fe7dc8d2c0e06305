"""`POST /v1/webhooks/stripe`: Stripe's signing scheme, replay protection, once-only processing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from tests.sessions.conftest import Calls
from vidivo.app import create_app
from vidivo.calls.models import BillingWindow, CallSession
from vidivo.core.db import dispose
from vidivo.mail.service import latest_email_to
from vidivo.webhooks.models import WebhookEvent

SECRET = "whsec_test_secret"


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"stripe_webhook_secret": SECRET})


def signed(payload: bytes, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    """Stripe's scheme: v1 = HMAC-SHA256(secret, "{t}.{payload}")."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return {
        "Stripe-Signature": f"t={timestamp},v1={mac.hexdigest()}",
        "Content-Type": "application/json",
    }


def signed_now() -> int:
    """Stripe stamps deliveries with the real time (the app's test clock plays no part)."""
    return int(time.time())


def event(event_id: str, event_type: str, obj: dict) -> bytes:
    return json.dumps(
        {"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}}
    ).encode()


async def stored_events(context) -> int:
    async with context.session_factory() as db:
        return await db.scalar(select(func.count()).select_from(WebhookEvent))


async def test_account_updated_refreshes_the_hosts_payout_status(client, hosts, clock, context):
    host = await hosts.create(connected=False)
    url = (await client.post("/v1/host/payouts/onboarding", headers=host.headers)).json()["url"]
    account_id = url.rsplit("/", 1)[1]
    # The host finishes at the provider; we learn of it only through the webhook.
    await context.payments.complete_onboarding(account_id)
    payload = event("evt_1", "account.updated", {"id": account_id, "object": "account"})
    now = signed_now()
    response = await client.post(
        "/v1/webhooks/stripe", content=payload, headers=signed(payload, now)
    )
    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    status = (await client.get("/v1/host/payouts", headers=host.headers)).json()
    assert status["charges_enabled"] is True


async def test_a_redelivered_event_is_acknowledged_but_processed_once(client, clock, context):
    payload = event("evt_dup", "charge.captured", {"id": "ch_1", "object": "charge"})
    headers = signed(payload, signed_now())
    first = await client.post("/v1/webhooks/stripe", content=payload, headers=headers)
    again = await client.post("/v1/webhooks/stripe", content=payload, headers=headers)
    assert first.json()["duplicate"] is False
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert await stored_events(context) == 1


@pytest.mark.parametrize(
    "make_headers",
    [
        lambda payload, now: signed(payload, now, secret="whsec_someone_else"),
        lambda payload, now: signed(payload, now - 301),  # a replay of an old delivery
        lambda payload, now: {"Content-Type": "application/json"},
        lambda payload, now: {"Stripe-Signature": "garbage", "Content-Type": "application/json"},
        lambda payload, now: signed(payload + b" ", now),  # signed another body than sent
    ],
    ids=["wrong-secret", "stale", "missing", "garbage", "altered-body"],
)
async def test_forged_stale_or_altered_events_are_refused_and_change_nothing(
    client, clock, context, make_headers
):
    payload = event("evt_forged", "account.updated", {"id": "acct_x", "object": "account"})
    headers = make_headers(payload, signed_now())
    response = await client.post("/v1/webhooks/stripe", content=payload, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert await stored_events(context) == 0


async def test_webhooks_answer_404_when_no_secret_is_configured(settings, clock):
    app = create_app(settings.model_copy(update={"stripe_webhook_secret": None}), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        payload = event("evt_2", "account.updated", {"id": "acct_x"})
        response = await http.post(
            "/v1/webhooks/stripe", content=payload, headers=signed(payload, 0)
        )
    assert response.status_code == 404
    await dispose(app.state.context.engine)


async def test_a_dispute_flags_the_call_and_tells_the_host(client, hosts, clock, context):
    calls = Calls(client, hosts, None)
    call = await calls.started()
    async with context.session_factory() as db:
        window = await db.scalar(
            select(BillingWindow).where(BillingWindow.session_id == call.session_id)
        )
        hold_id = window.provider_hold_id
    payload = event(
        "evt_dispute",
        "charge.dispute.created",
        {"id": "dp_1", "object": "dispute", "payment_intent": hold_id, "reason": "fraudulent"},
    )
    headers = signed(payload, signed_now())
    assert (await client.post("/v1/webhooks/stripe", content=payload, headers=headers)).json() == {
        "received": True,
        "duplicate": False,
    }
    async with context.session_factory() as db:
        session = await db.get(CallSession, call.session_id)
        assert session.disputed_at is not None
        mail = await latest_email_to(db, call.host.email)
    assert "fraudulent" in mail.body
    assert call.session_id in mail.body


async def test_events_about_unknown_payments_are_acknowledged_and_ignored(client, clock, context):
    payload = event(
        "evt_unknown_pi", "payment_intent.canceled", {"id": "pi_nobody", "object": "payment_intent"}
    )
    headers = signed(payload, signed_now())
    response = await client.post("/v1/webhooks/stripe", content=payload, headers=headers)
    assert response.status_code == 200
    assert await stored_events(context) == 1


async def test_a_replayed_body_under_a_header_with_a_second_fresh_timestamp_is_refused(
    client, clock, context
):
    """The signature covers `t`; a header that carries the original signed `t` (written so a
    lenient parser still reads it) plus a fresh `t` must be judged by the `t` that was signed."""
    clock.set(datetime.now(UTC))  # the app's clock and Stripe's agree, as in production
    payload = event("evt_replayed", "account.updated", {"id": "acct_x", "object": "account"})
    fresh = signed_now()
    original = fresh - 3600  # captured an hour ago
    signature = signed(payload, original)["Stripe-Signature"].split(",v1=")[1]
    forged = {
        "Stripe-Signature": f"t= {original},t={fresh},v1={signature}",
        "Content-Type": "application/json",
    }
    response = await client.post("/v1/webhooks/stripe", content=payload, headers=forged)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_signature"
    assert await stored_events(context) == 0
