from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, BackgroundTasks, Header, Query, Response

from vidivo.auth.deps import Caller, CurrentHost, Outbox
from vidivo.calls import access, receipts, refunds
from vidivo.calls.deps import LoggedCallSession, ReceiptAddresses
from vidivo.calls.earnings import (
    HostEarnings,
    Period,
    PeriodSpan,
    TooManyPeriods,
    host_earnings,
    host_earnings_by_period,
    period_spans,
)
from vidivo.calls.errors import InvalidSessionState
from vidivo.calls.models import RefundState, SessionState
from vidivo.calls.money_schemas import (
    Earnings,
    EarningsByPeriod,
    PeriodEarnings,
    ReceiptResponse,
    RefundOut,
    RefundRequest,
    RefundResponse,
)
from vidivo.core.deps import AppClock, DbSession, SessionFactory
from vidivo.core.errors import ValidationFailed
from vidivo.core.money import format_cents, parse_amount_to_cents
from vidivo.core.schemas import TIMESTAMP_RANGE, error_responses, parse_timestamp
from vidivo.idempotency.service import validate_key
from vidivo.payments.deps import Payments

router = APIRouter(tags=["billing"], dependencies=[LoggedCallSession])


@router.get(
    "/v1/sessions/{session_id}/receipt",
    responses=error_responses(401, 404),
    summary="The guest's receipt: every window, what was charged and released",
)
async def receipt(
    session_id: str, caller: Caller, db: DbSession, links: ReceiptAddresses
) -> ReceiptResponse:
    session = await access.get_for(db, session_id, caller)
    return ReceiptResponse(receipt=await receipts.receipt_of(db, session, links))


@router.post(
    "/v1/sessions/{session_id}/refunds",
    status_code=201,
    responses={
        202: {
            "model": RefundResponse,
            "description": "The refund is reserved and waits behind another refund of the "
            "call; the billing worker finishes it (`state` is `pending`).",
        },
        **error_responses(401, 403, 404, 409, 502),
    },
    summary="Refund a call in full or part (never more than was captured)",
    description="`409 refund_exceeds_remaining`: another refund, taken or under way, left "
    "less than this amount. `502 payment_provider_error`: the provider refused the refund "
    "(it failed, nothing is held for it) or could not be reached (it stays `pending` and is "
    "retried automatically with the same idempotency keys; repeat the request with the same "
    "`Idempotency-Key` to see how it ended).",
)
async def refund(
    session_id: str,
    body: RefundRequest,
    principal: CurrentHost,
    db: DbSession,
    factory: SessionFactory,
    payments: Payments,
    clock: AppClock,
    response: Response,
    mailer: Outbox,
    background: BackgroundTasks,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> RefundResponse:
    session = await access.get_for(db, session_id, principal)
    access.ensure_host_of(session, principal)
    if session.state != SessionState.ENDED:
        raise InvalidSessionState("Only an ended call can be refunded.")
    key = validate_key(idempotency_key)
    if key is None:
        raise ValidationFailed.field(
            "Idempotency-Key", "is required: a retried refund must not pay out twice"
        )
    # The refund runs in transactions of its own: give this request's connection back first,
    # so that many refunds at once cannot hold every pooled connection while waiting for one.
    await db.commit()
    stored = await refunds.refund_session(
        factory,
        payments,
        clock,
        session.id,
        amount_cents=parse_amount_to_cents(body.amount) if body.amount else None,
        reason=body.reason,
        request_key=key,
    )
    background.add_task(mailer.deliver_pending)  # the guest's refund notice
    if stored.state == RefundState.PENDING:
        response.status_code = 202
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


def _bounds(
    start_text: str | None, end_text: str | None
) -> tuple[datetime | None, datetime | None]:
    bounds: dict[str, datetime | None] = {}
    for name, text in (("from", start_text), ("to", end_text)):
        try:
            bounds[name] = parse_timestamp(text) if text is not None else None
        except ValueError as exc:
            raise ValidationFailed.field(name, str(exc)) from None
    return bounds["from"], bounds["to"]


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
    start, end = _bounds(start_text, end_text)
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


def _time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationFailed.field(
            "tz", "must be a time zone name, like Europe/Paris or America/New_York"
        ) from None


def _period_out(span: PeriodSpan, label: str, money: HostEarnings) -> PeriodEarnings:
    return PeriodEarnings(
        start=span.start,
        end=span.end,
        label=label,
        sessions=money.sessions,
        gross=format_cents(money.gross_cents),
        platform_fees=format_cents(money.platform_fees_cents),
        refunds=format_cents(money.refunds_cents),
        net=format_cents(money.net_cents),
    )


def _label(span: PeriodSpan, period: Period) -> str:
    day = span.first_day.isoformat()
    return day[:7] if period == Period.MONTH else day


@router.get(
    "/v1/earnings/periods",
    responses=error_responses(400, 401, 403),
    summary="The host's earnings day by day, week by week or month by month, for a chart",
    description="Periods follow the host's time zone `tz` (default UTC): a day runs from "
    "local midnight to local midnight, a week from Monday, a month from its 1st. They run "
    "from the one holding `from` to the one holding the last moment before `to` (default: "
    "now); without `from`, the last 14 days, 12 weeks or 12 months. At most 400 periods.",
    response_model_by_alias=True,
)
async def earnings_by_period(
    principal: CurrentHost,
    db: DbSession,
    clock: AppClock,
    period: Annotated[Period, Query()] = Period.DAY,
    start_text: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    end_text: Annotated[str | None, Query(alias="to", max_length=64)] = None,
    tz: Annotated[str, Query(max_length=64)] = "UTC",
) -> EarningsByPeriod:
    start, end = _bounds(start_text, end_text)
    end = end or clock.now()
    zone = _time_zone(tz)
    if start is not None and start >= end:
        raise ValidationFailed.field("to", "must be later than from")
    try:
        spans = period_spans(period, zone, start, end)
    except TooManyPeriods as exc:
        raise ValidationFailed.field("from", str(exc)) from None
    except (OverflowError, ValueError):  # periods that would run off the calendar
        raise ValidationFailed.field("from", TIMESTAMP_RANGE) from None
    whole = PeriodSpan(spans[0].first_day, spans[0].start, spans[-1].end)
    totals = await host_earnings(db, principal.user.id, whole.start, whole.end)
    each = await host_earnings_by_period(db, principal.user.id, spans)
    return EarningsByPeriod(
        currency="USD",
        period=period,
        time_zone=tz,
        start=whole.start,
        end=whole.end,
        totals=_period_out(whole, _label(whole, period), totals),
        periods=[
            _period_out(span, _label(span, period), money)
            for span, money in zip(spans, each, strict=True)
        ],
    )
