from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from vidivo.core.deps import AppClock, AppSettings, DbSession
from vidivo.core.errors import NotFound
from vidivo.core.schemas import error_responses
from vidivo.payments.deps import Payments
from vidivo.webhooks import service

router = APIRouter(tags=["webhooks"])


class WebhookAck(BaseModel):
    received: bool
    duplicate: bool


@router.post(
    "/v1/webhooks/stripe",
    responses=error_responses(400, 404, 502),
    summary="Stripe events, verified with the Stripe-Signature header",
)
async def stripe_webhook(
    request: Request,
    db: DbSession,
    provider: Payments,
    clock: AppClock,
    settings: AppSettings,
) -> WebhookAck:
    secret = settings.stripe_webhook_secret
    if not secret:
        raise NotFound("Stripe webhooks are not configured here.")
    payload = await request.body()  # the raw bytes: the signature covers them exactly
    event = service.verify(secret, payload, request.headers.get("stripe-signature"))
    processed = await service.receive(db, provider, clock, event)
    return WebhookAck(received=True, duplicate=not processed)
