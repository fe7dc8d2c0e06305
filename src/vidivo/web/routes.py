"""Server-rendered pages: payout onboarding (simulated pages, Stripe's return and refresh)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from vidivo.deps import Context, DbSession
from vidivo.errors import NotFound
from vidivo.payments.provider import InvalidPaymentRequest
from vidivo.payments.simulated import SimulatedProvider
from vidivo.payouts import service as payouts

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _simulated(context: Context) -> SimulatedProvider:
    if not isinstance(context.payments, SimulatedProvider):
        raise NotFound("Simulated onboarding exists only with simulated payments.")
    return context.payments


@router.get("/payouts/simulated-onboarding/{account_id}", response_class=HTMLResponse)
async def simulated_onboarding(request: Request, account_id: str, context: Context) -> HTMLResponse:
    provider = _simulated(context)
    try:
        status = await provider.retrieve_account(account_id)
    except InvalidPaymentRequest as exc:
        raise NotFound("No such payout account.") from exc
    return templates.TemplateResponse(
        request, "simulated_onboarding.html", {"account_id": account_id, "status": status}
    )


@router.post("/payouts/simulated-onboarding/{account_id}")
async def complete_simulated_onboarding(
    account_id: str, db: DbSession, context: Context
) -> RedirectResponse:
    provider = _simulated(context)
    try:
        await provider.complete_onboarding(account_id)
    except InvalidPaymentRequest as exc:
        raise NotFound("No such payout account.") from exc
    # What Stripe's `account.updated` webhook does for a real account.
    await payouts.refresh_by_account_id(db, provider, context.clock, account_id)
    return RedirectResponse("/payouts/onboarding/return", status_code=303)


@router.get("/payouts/onboarding/return", response_class=HTMLResponse)
async def onboarding_return(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "message.html",
        {
            "heading": "Payout setup finished",
            "text": "Thank you. Go back to Vidivo: once your account is confirmed you can "
            "create call links.",
        },
    )


@router.get("/payouts/onboarding/refresh", response_class=HTMLResponse)
async def onboarding_refresh(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "message.html",
        {
            "heading": "This setup link has expired",
            "text": "Setup links work once and for a few minutes. Go back to Vidivo and "
            "start payout setup again.",
        },
    )
