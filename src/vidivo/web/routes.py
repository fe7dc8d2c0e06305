"""The web app's pages: the guest page, the call view, the host dashboard, payout onboarding.

Pages are server-rendered shells; the dynamic parts are plain ES modules under `static/js`
that talk to the same JSON API as any other client."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC
from pathlib import Path

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from vidivo.auth import availability
from vidivo.calls import receipts
from vidivo.calls.deps import ReceiptAddresses
from vidivo.calls.letters import card_words
from vidivo.calls.meter import METER_RULE
from vidivo.calls.models import FINAL_STATES
from vidivo.calls.money_schemas import Receipt
from vidivo.calls.terms import first_hold_cents_for_link
from vidivo.core.client_address import client_address
from vidivo.core.deps import AppClock, AppSettings, DbSession
from vidivo.core.errors import NotFound, RateLimited
from vidivo.core.money import format_cents, parse_amount_to_cents
from vidivo.core.schemas import format_timestamp
from vidivo.links import service as links
from vidivo.links.deps import LinkLookups
from vidivo.payments.deps import Payments
from vidivo.payments.provider import HoldStatus, InvalidPaymentRequest, PaymentProvider
from vidivo.payments.simulated import SimulatedProvider
from vidivo.payouts import service as payouts
from vidivo.web.icon import ICON_SIZE, icon_png

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
STATIC_DIR = Path(__file__).parent / "static"


def _message(request: Request, status: int, heading: str, text: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "message.html",
        {"heading": heading, "text": text, "brand_link": False},
        status_code=status,
    )


def _too_many(request: Request, limited: RateLimited) -> HTMLResponse:
    page = _message(
        request,
        429,
        "Too many unknown links",
        "This address asked for many links that do not exist. Wait a minute and try again.",
    )
    page.headers.update(limited.headers)
    return page


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/app", status_code=307)


@router.get("/favicon.ico")
async def favicon() -> RedirectResponse:
    # Browsers ask for it whatever the pages link; the pages link the SVG.
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/icon.png")
async def icon() -> Response:
    # The bitmap icon for link previews and home screens (most previewers ignore SVG).
    return Response(
        icon_png(), media_type="image/png", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/app/links/{short_code}/qr.svg")
async def link_qr_code(
    request: Request,
    short_code: str,
    db: DbSession,
    clock: AppClock,
    settings: AppSettings,
    lookups: LinkLookups,
) -> Response:
    """A QR code of a link's public address. It says nothing the address does not, so anyone
    may fetch it; unknown codes are 404 and counted like every other lookup of a code."""

    async def find() -> str:
        # An expired or used-up link still has an address: its page explains what happened.
        with contextlib.suppress(links.LinkExpired, links.LinkExhausted):
            await links.get_usable_for_view(db, clock, short_code)
        return short_code.lower()

    code = await lookups.lookup(client_address(request.scope), find)
    qr = segno.make(f"{settings.public_base_url}/c/{code}", error="m")
    svg = io.BytesIO()
    qr.save(svg, kind="svg", scale=4, border=2, dark="#000", light="#fff", xmldecl=False)
    return Response(
        svg.getvalue(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def _guest_page_meta(
    settings_base: str, code: str, host: str, rate: str, bio: str | None
) -> dict[str, str]:
    """What a link preview shows: who the call is with and what it costs a minute."""
    description = (
        f"A paid video call with {host} on Vidivo: ${rate} per minute. You pay only the "
        "minutes you use; the rest of each card hold is released."
    )
    if bio:
        description = f"{bio.strip()[:140]} — ${rate} per minute, pay only the minutes you use."
    return {
        "title": f"Video call with {host} · ${rate}/min",
        "description": description,
        "url": f"{settings_base}/c/{code}",
        "image": f"{settings_base}/icon.png",
        "image_size": str(ICON_SIZE),
    }


@router.get("/app", response_class=HTMLResponse)
async def dashboard(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "dashboard.html", {})


@router.get("/reset-password", response_class=HTMLResponse)
async def reset_password_page(request: Request, token: str | None = None) -> HTMLResponse:
    # The token is only carried into the form: it is spent when the form is sent, not here.
    context = {"token": token[:200] if token else None}
    return templates.TemplateResponse(request, "reset_password.html", context)


@router.get("/confirm-email", response_class=HTMLResponse)
async def confirm_email_page(request: Request, token: str = "") -> HTMLResponse:
    context = {"token": token[:200]}
    return templates.TemplateResponse(request, "confirm_email.html", context)


@router.get("/c/{short_code}", response_class=HTMLResponse)
async def guest_page(
    request: Request,
    short_code: str,
    db: DbSession,
    clock: AppClock,
    settings: AppSettings,
    lookups: LinkLookups,
) -> HTMLResponse:
    try:
        link, host = await lookups.lookup(
            client_address(request.scope), lambda: links.get_usable_for_view(db, clock, short_code)
        )
    except RateLimited as limited:
        return _too_many(request, limited)
    except links.LinkDeactivated:
        return _message(
            request,
            404,
            "This call link has been switched off",
            "Its host switched it off, so it takes no more calls. Ask the host for a new link.",
        )
    except NotFound:
        return _message(
            request,
            404,
            "This call link does not exist",
            "Check the address with the person who sent it: it may have been mistyped.",
        )
    except links.LinkExpired:
        return _message(request, 410, "This call link has expired", "Ask the host for a new link.")
    except links.LinkExhausted:
        return _message(
            request,
            410,
            "This call link has been used up",
            "It has reached the number of calls it allows. Ask the host for a new link.",
        )
    now = clock.now()
    if link.scheduled_start is not None and now < link.scheduled_start:
        opens = format_timestamp(link.scheduled_start)
        return _message(
            request,
            409,
            "This call link opens later",
            f"It opens at {opens} (UTC). Come back then.",
        )
    if link.scheduled_end is not None and now >= link.scheduled_end:
        return _message(
            request,
            409,
            "This call link's time has passed",
            "Its scheduled time is over. Ask the host for a new link.",
        )
    first_hold = first_hold_cents_for_link(link.rate_cents, link.window_size_minutes)
    timeout = availability.presence_timeout(settings.signal_idle_timeout_seconds)
    host_now = await availability.availability(db, host, now, timeout)
    return templates.TemplateResponse(
        request,
        "guest.html",
        {
            "short_code": link.short_code,
            "host_name": host.display_name,
            "host_bio": host.bio,
            "rate": format_cents(link.rate_cents),
            "rate_cents": link.rate_cents,
            "window": link.window_size_minutes,
            "hold": format_cents(first_hold),
            "hold_cents": first_hold,
            "meter_rule": METER_RULE,
            "availability": host_now.value,
            "join_minutes": -(-settings.host_join_timeout_seconds // 60),
            "payments": settings.payments.value,
            "publishable_key": settings.stripe_publishable_key,
            "brand_link": False,
            "page_meta": _guest_page_meta(
                settings.public_base_url,
                link.short_code,
                host.display_name,
                format_cents(link.rate_cents),
                host.bio,
            ),
        },
    )


@router.get("/call/{session_id}", response_class=HTMLResponse)
async def call_view(request: Request, session_id: str, settings: AppSettings) -> HTMLResponse:
    # Who may see the call is checked by the API the page calls with its token.
    return templates.TemplateResponse(
        request,
        "call.html",
        {
            "session_id": session_id,
            "brand_link": False,
            "payments": settings.payments.value,
            "publishable_key": settings.stripe_publishable_key,
        },
    )


@router.get("/receipts/{session_id}", response_class=HTMLResponse)
async def receipt_page(
    request: Request, session_id: str, db: DbSession, links: ReceiptAddresses, sig: str = ""
) -> HTMLResponse:
    """The guest's receipt at its signed address: any tab, any device, no account."""
    try:
        receipt = await receipts.signed_receipt(db, links, session_id[:64], sig[:128])
    except NotFound:
        page = templates.TemplateResponse(request, "receipt.html", {"receipt": None}, 404)
    else:
        page = templates.TemplateResponse(request, "receipt.html", _receipt_context(receipt))
    # The address is the key to the receipt: not for search engines, caches or referrers.
    page.headers.update(
        {
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Robots-Tag": "noindex, nofollow",
        }
    )
    return page


def _receipt_context(receipt: Receipt) -> dict[str, object]:
    charged = parse_amount_to_cents(receipt.total_charged)
    refunded = parse_amount_to_cents(receipt.refunded)
    started = receipt.went_live_at or receipt.created_at
    return {
        "receipt": receipt,
        "card": card_words(receipt.card_brand, receipt.card_last4),
        "date_iso": format_timestamp(started) if started else "",
        "date_text": f"{started.astimezone(UTC):%-d %B %Y, %H:%M} UTC" if started else "",
        "duration": _duration(receipt.live_seconds),
        "paid": format_cents(charged - refunded),
        "refunded_any": refunded > 0,
        "final": receipt.state in FINAL_STATES,
        "went_live": receipt.went_live_at is not None,
    }


def _duration(seconds: int) -> str:
    minutes, seconds = divmod(max(0, seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {seconds:02d} s"
    return f"{minutes} min {seconds:02d} s"


def _simulated(provider: PaymentProvider) -> SimulatedProvider:
    if not isinstance(provider, SimulatedProvider):
        raise NotFound("This page exists only with simulated payments.")
    return provider


@router.get("/payouts/simulated-onboarding/{account_id}", response_class=HTMLResponse)
async def simulated_onboarding(
    request: Request, account_id: str, payments: Payments
) -> HTMLResponse:
    provider = _simulated(payments)
    try:
        status = await provider.retrieve_account(account_id)
    except InvalidPaymentRequest as exc:
        raise NotFound("No such payout account.") from exc
    return templates.TemplateResponse(
        request, "simulated_onboarding.html", {"account_id": account_id, "status": status}
    )


@router.post("/payouts/simulated-onboarding/{account_id}")
async def complete_simulated_onboarding(
    account_id: str, db: DbSession, payments: Payments, clock: AppClock
) -> RedirectResponse:
    provider = _simulated(payments)
    try:
        await provider.complete_onboarding(account_id)
    except InvalidPaymentRequest as exc:
        raise NotFound("No such payout account.") from exc
    # What Stripe's `account.updated` webhook does for a real account.
    await payouts.refresh_by_account_id(db, provider, clock, account_id)
    return RedirectResponse("/payouts/onboarding/return", status_code=303)


def _local_path(return_to: str | None) -> str:
    """Where to send the guest back: a path on this site only (never an open redirect)."""
    if return_to and return_to.startswith("/") and not return_to.startswith(("//", "/\\")):
        return return_to
    return "/"


@router.get("/simulated/3ds/{hold_id}", response_class=HTMLResponse)
async def simulated_challenge(
    request: Request, hold_id: str, payments: Payments, return_to: str | None = None
) -> HTMLResponse:
    """The card's bank asking the cardholder to authenticate (3-D Secure), played locally."""
    provider = _simulated(payments)
    try:
        hold = await provider.retrieve_hold(hold_id)
    except InvalidPaymentRequest as exc:
        raise NotFound("No such payment.") from exc
    return templates.TemplateResponse(
        request,
        "simulated_challenge.html",
        {
            "hold_id": hold_id,
            "amount": format_cents(hold.amount_cents),
            "waiting": hold.status == HoldStatus.REQUIRES_ACTION,
            "return_to": _local_path(return_to),
            "brand_link": False,
        },
    )


@router.post("/simulated/3ds/{hold_id}/{answer}")
async def answer_simulated_challenge(
    hold_id: str, answer: str, payments: Payments, return_to: str | None = None
) -> RedirectResponse:
    provider = _simulated(payments)
    if answer not in ("complete", "fail"):
        raise NotFound("No such answer.")
    try:
        await provider.complete_authentication(hold_id, succeeded=answer == "complete")
    except InvalidPaymentRequest as exc:
        raise NotFound("No payment awaits authentication here.") from exc
    return RedirectResponse(_local_path(return_to), status_code=303)


@router.get("/payouts/onboarding/return")
async def onboarding_return() -> RedirectResponse:
    # Back to the dashboard, which says setup finished and shows where the account stands.
    return RedirectResponse("/app?payouts=done", status_code=303)


@router.get("/payouts/onboarding/refresh")
async def onboarding_refresh() -> RedirectResponse:
    # Stripe's setup links work once and for minutes: the dashboard offers a new one.
    return RedirectResponse("/app?payouts=expired", status_code=303)
