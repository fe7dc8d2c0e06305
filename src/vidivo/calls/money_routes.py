from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query

from vidivo.auth.deps import Caller, CurrentHost
from vidivo.auth.models import User
from vidivo.calls import ledger, refunds, windows
from vidivo.calls import service as sessions
from vidivo.calls.earnings import host_earnings
from vidivo.calls.models import LedgerKind, SessionState, WindowState
from vidivo.calls.money_schemas import (
    Earnings,
    Receipt,
    ReceiptResponse,
    ReceiptWindow,
    RefundOut,
    RefundRequest,
    RefundResponse,
)
from vidivo.core.errors import ValidationFailed
from vidivo.core.money import format_cents, parse_amount_to_cents
from vidivo.core.schemas import error_responses, parse_timestamp
from vidivo.deps import Context, DbSession
from vidivo.idempotency.service import validate_key

router = APIRouter(tags=["billing"])


@router.get(
    "/v1/sessions/{session_id}/receipt",
    responses=error_responses(401, 404),
    summary="The guest's receipt: every window, what was charged and released",
)
async def receipt(session_id: str, caller: Caller, db: DbSession) -> ReceiptResponse:
    session = await sessions.get_for(db, session_id, caller)
    host = await db.get_one(User, session.host_id)
    billing_windows = await sessions.windows_of(db, session.id)
    totals = await ledger.totals(db, session.id)
    settled = (WindowState.CAPTURED, WindowState.RELEASED)
    return ReceiptResponse(
        receipt=Receipt(
            session_id=session.id,
            host_display_name=host.display_name,
            guest_name=session.guest_name,
            currency="USD",
            rate_per_minute=format_cents(session.rate_cents),
            state=session.state,
            went_live_at=session.went_live_at,
            ended_at=session.ended_at,
            live_seconds=session.banked_live_ms // 1000,
            billed_minutes=windows.billed_minutes_from_ms(
                session.banked_live_ms, went_live=session.went_live_at is not None
            ),
            windows=[
                ReceiptWindow(
                    number=w.number,
                    minutes_covered=w.minutes,
                    held=format_cents(w.held_cents),
                    captured=format_cents(w.captured_cents),
                    released=format_cents(
                        w.held_cents - w.captured_cents if w.state in settled else 0
                    ),
                )
                for w in billing_windows
                if w.held_cents
            ],
            total_charged=format_cents(totals[LedgerKind.CAPTURE]),
            refunded=format_cents(totals[LedgerKind.REFUND]),
        )
    )


@router.post(
    "/v1/sessions/{session_id}/refunds",
    status_code=201,
    responses=error_responses(401, 403, 404, 409, 502),
    summary="Refund a call in full or part (never more than was captured)",
)
async def refund(
    session_id: str,
    body: RefundRequest,
    principal: CurrentHost,
    db: DbSession,
    context: Context,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> RefundResponse:
    session = await sessions.get_for(db, session_id, principal)
    sessions.ensure_host_of(session, principal)
    if session.state != SessionState.ENDED:
        raise sessions.InvalidSessionState("Only an ended call can be refunded.")
    key = validate_key(idempotency_key)
    if key is None:
        raise ValidationFailed.field(
            "Idempotency-Key", "is required: a retried refund must not pay out twice"
        )
    stored = await refunds.refund_session(
        context,
        session,
        amount_cents=parse_amount_to_cents(body.amount) if body.amount else None,
        reason=body.reason,
        request_key=key,
    )
    return RefundResponse(
        refund=RefundOut(
            id=stored.id,
            session_id=stored.session_id,
            amount=format_cents(stored.amount_cents),
            reason=stored.reason,
            state=stored.state,
            created_at=stored.created_at,
        )
    )


@router.get(
    "/v1/earnings",
    responses=error_responses(401, 403),
    summary="The host's earnings over a period: gross, platform fees, refunds, net",
    response_model_by_alias=True,
)
async def earnings(
    principal: CurrentHost,
    db: DbSession,
    start_text: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    end_text: Annotated[str | None, Query(alias="to", max_length=64)] = None,
) -> Earnings:
    bounds: dict[str, datetime | None] = {}
    for name, text in (("from", start_text), ("to", end_text)):
        try:
            bounds[name] = parse_timestamp(text) if text is not None else None
        except ValueError as exc:
            raise ValidationFailed.field(name, str(exc)) from None
    start, end = bounds["from"], bounds["to"]
    totals = await host_earnings(db, principal.user.id, start, end)
    return Earnings(
        currency="USD",
        start=start,
        end=end,
        sessions=totals.sessions,
        gross=format_cents(totals.gross_cents),
        platform_fees=format_cents(totals.platform_fees_cents),
        refunds=format_cents(totals.refunds_cents),
        net=format_cents(totals.net_cents),
    )
