"""Stripe webhooks: verify the signature, store each event once, process it once."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import stripe
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.calls import service as sessions
from vidivo.core.clock import Clock
from vidivo.core.errors import ApiError
from vidivo.payments.provider import PaymentProvider
from vidivo.payouts import service as payouts
from vidivo.webhooks.models import WebhookEvent

# Stripe's own default: a signed event older than this is a replay.
SIGNATURE_TOLERANCE_SECONDS = 300

EventHandler = Callable[[AsyncSession, PaymentProvider, Clock, dict[str, Any]], Awaitable[None]]


class InvalidSignature(ApiError):
    code, status = "invalid_signature", 400
    message = "The Stripe-Signature header does not match this payload."


def verify(secret: str, payload: bytes, signature_header: str | None) -> dict[str, Any]:
    """The event, if `payload` was signed with `secret` within the tolerance.

    The header is read once, by Stripe's SDK: the `t` it checks the signature against is the
    `t` it checks the age of (a second parser reading another `t` let replays through). The
    age is measured on the real time, which is what Stripe stamps, whatever the app's clock."""
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature_header, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature() from exc
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise InvalidSignature("The payload is not JSON.") from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise InvalidSignature("The payload is not a Stripe event.")
    return event


async def _account_updated(
    db: AsyncSession, provider: PaymentProvider, clock: Clock, obj: dict[str, Any]
) -> None:
    # Re-fetched rather than trusted: events can arrive in any order.
    account_id = obj.get("id")
    if isinstance(account_id, str) and await payouts.has_account(db, account_id):
        await payouts.refresh_by_account_id(db, provider, clock, account_id)


def _payment_intent_id(obj: dict[str, Any]) -> str | None:
    # Charges and disputes point at their PaymentIntent; a PaymentIntent is its own id.
    key = "id" if obj.get("object") == "payment_intent" else "payment_intent"
    value = obj.get(key)
    return value if isinstance(value, str) else None


async def _payment_changed(
    db: AsyncSession, _: PaymentProvider, clock: Clock, obj: dict[str, Any]
) -> None:
    # The engine re-reads the hold from the provider rather than trusting event order.
    hold_id = _payment_intent_id(obj)
    if hold_id is not None:
        await sessions.recheck_payment(db, clock, hold_id)


async def _dispute_created(
    db: AsyncSession, _: PaymentProvider, clock: Clock, obj: dict[str, Any]
) -> None:
    hold_id = _payment_intent_id(obj)
    if hold_id is not None:
        await sessions.flag_dispute(db, clock, hold_id, str(obj.get("reason", "unknown")))


HANDLERS: dict[str, EventHandler] = {
    "account.updated": _account_updated,
    "payment_intent.amount_capturable_updated": _payment_changed,
    "payment_intent.payment_failed": _payment_changed,
    "payment_intent.canceled": _payment_changed,
    "charge.captured": _payment_changed,
    "charge.refunded": _payment_changed,
    "charge.dispute.created": _dispute_created,
}


async def receive(
    db: AsyncSession, provider: PaymentProvider, clock: Clock, event: dict[str, Any]
) -> bool:
    """Store and process `event`; False when it had been processed before."""
    now = clock.now()
    stored = await db.get(WebhookEvent, event["id"])
    if stored is None:
        stored = WebhookEvent(
            id=event["id"],
            type=str(event.get("type", "")),
            payload=json.dumps(event),
            received_at=now,
        )
        db.add(stored)
        try:
            await db.flush()
        except IntegrityError:
            await db.rollback()
            return False  # a concurrent delivery of the same event got there first
    elif stored.processed_at is not None:
        return False
    handler = HANDLERS.get(stored.type)
    obj = (event.get("data") or {}).get("object") or {}
    if handler is not None and isinstance(obj, dict):
        await handler(db, provider, clock, obj)
    stored.processed_at = now
    return True
