from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from vidivo.auth.deps import Caller, CurrentHost
from vidivo.auth.service import GuestPrincipal
from vidivo.calls import service
from vidivo.calls.models import COVERING, BillingWindow, CallSession, SessionState, WindowState
from vidivo.calls.schemas import (
    Charges,
    ChargeTotals,
    PaymentMethodUpdate,
    SessionList,
    SessionOut,
    SessionResponse,
    SessionStart,
    SessionStarted,
    WindowCharge,
)
from vidivo.calls.timeline import live_ms
from vidivo.core.errors import Forbidden
from vidivo.core.money import format_cents
from vidivo.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from vidivo.core.schemas import Pagination, error_responses, links_to
from vidivo.deps import Context, DbSession

router = APIRouter(tags=["sessions"])


def session_out(
    context: Context, session: CallSession, billing_windows: list[BillingWindow]
) -> SessionOut:
    now = context.clock.now()
    current = next((w.number for w in reversed(billing_windows) if w.state in COVERING), None)
    next_renewal_at = None
    if session.state == SessionState.LIVE and session.next_action_at is not None:
        next_renewal_at = session.next_action_at
    return SessionOut(
        id=session.id,
        link_id=session.link_id,
        state=session.state,
        end_reason=session.end_reason,
        guest_name=session.guest_name,
        rate_per_minute=format_cents(session.rate_cents),
        window_size_minutes=session.window_minutes,
        max_spend=format_cents(session.max_minutes * session.rate_cents)
        if session.max_minutes
        else None,
        live_seconds=live_ms(session, now) // 1000,
        billed=format_cents(service.billed_cents(session, now)),
        current_window=current,
        next_renewal_at=next_renewal_at,
        hold_declined=bool(billing_windows) and billing_windows[-1].state == WindowState.DECLINED,
        created_at=session.created_at,
        went_live_at=session.went_live_at,
        ended_at=session.ended_at,
        as_of=now,
    )


async def _respond(context: Context, db: DbSession, session: CallSession) -> SessionResponse:
    return SessionResponse(
        session=session_out(context, session, await service.windows_of(db, session.id))
    )


# Every call operation takes the session the start answered with.
STARTED_SESSION = {"session_id": "$response.body#/session/id"}


@router.post(
    "/v1/links/{short_code}/sessions",
    status_code=status.HTTP_201_CREATED,
    responses={
        **error_responses(402, 404, 409, 410, 502),
        **links_to(
            201,
            GetSession=("get_session", STARTED_SESSION),
            Accept=("accept", STARTED_SESSION),
            Decline=("decline", STARTED_SESSION),
            End=("end", STARTED_SESSION),
            ReplacePaymentMethod=("replace_payment_method", STARTED_SESSION),
            Charges=("charges", STARTED_SESSION),
            Receipt=("receipt", STARTED_SESSION),
            Refund=("refund", STARTED_SESSION),
            IceServers=("ice_servers", STARTED_SESSION),
        ),
    },
    summary="Start a call: hold the first window on the guest's card",
)
async def start_session(
    short_code: str, body: SessionStart, context: Context, db: DbSession
) -> SessionStarted:
    started = await service.start(context, context.billing, short_code, body)
    windows = await service.windows_of(db, started.session.id)
    return SessionStarted(
        session=session_out(context, started.session, windows), guest_token=started.guest_token
    )


@router.get("/v1/sessions", responses=error_responses(401, 403), summary="The host's call sessions")
async def list_sessions(
    principal: CurrentHost,
    db: DbSession,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    state: Annotated[SessionState | None, Query()] = None,
    link_id: Annotated[str | None, Query(max_length=26)] = None,
) -> SessionList:
    rows, next_cursor, has_more = await service.list_for_host(
        db, context, principal, limit=limit, cursor=cursor, state=state, link_id=link_id
    )
    return SessionList(
        sessions=[session_out(context, s, await service.windows_of(db, s.id)) for s in rows],
        pagination=Pagination(cursor=next_cursor, has_more=has_more, limit=limit),
    )


@router.get(
    "/v1/sessions/{session_id}",
    responses=error_responses(401, 404),
    summary="One call session (its host or its guest)",
)
async def get_session(
    session_id: str, caller: Caller, db: DbSession, context: Context
) -> SessionResponse:
    return await _respond(context, db, await service.get_for(db, session_id, caller))


@router.post(
    "/v1/sessions/{session_id}/accept",
    responses=error_responses(401, 403, 404, 409),
    summary="The host takes the call",
)
async def accept(
    session_id: str, principal: CurrentHost, db: DbSession, context: Context
) -> SessionResponse:
    session = await service.accept(context, session_id, principal)
    await context.billing.advance(session_id)
    return await _respond(context, db, await service.get_for(db, session.id, principal))


@router.post(
    "/v1/sessions/{session_id}/decline",
    responses=error_responses(401, 403, 404, 409),
    summary="The host turns the call down: the hold is released, nothing is charged",
)
async def decline(
    session_id: str, principal: CurrentHost, db: DbSession, context: Context
) -> SessionResponse:
    await service.decline(context, session_id, principal)
    await context.billing.advance(session_id)
    return await _respond(context, db, await service.get_for(db, session_id, principal))


@router.post(
    "/v1/sessions/{session_id}/end",
    responses=error_responses(401, 404, 409),
    summary="End the call (host or guest): used minutes are captured, the rest released",
)
async def end(session_id: str, caller: Caller, db: DbSession, context: Context) -> SessionResponse:
    await service.end(context, session_id, caller)
    await context.billing.advance(session_id)
    return await _respond(context, db, await service.get_for(db, session_id, caller))


@router.post(
    "/v1/sessions/{session_id}/payment-method",
    responses=error_responses(401, 402, 403, 404, 409, 502),
    summary="The guest replaces a declined card; the renewal is tried again on it",
)
async def replace_payment_method(
    session_id: str, body: PaymentMethodUpdate, caller: Caller, db: DbSession, context: Context
) -> SessionResponse:
    if not isinstance(caller, GuestPrincipal):
        raise Forbidden("Only the guest can change the card.")
    await service.replace_payment_method(
        context, context.billing, session_id, caller, body.payment_method_id
    )
    return await _respond(context, db, await service.get_for(db, session_id, caller))


@router.get(
    "/v1/sessions/{session_id}/charges",
    responses=error_responses(401, 404),
    summary="Each billing window: held, captured, released",
)
async def charges(session_id: str, caller: Caller, db: DbSession) -> Charges:
    session = await service.get_for(db, session_id, caller)
    billing_windows = await service.windows_of(db, session.id)
    rows = [
        WindowCharge(
            number=w.number,
            state=w.state,
            held=format_cents(w.held_cents),
            captured=format_cents(w.captured_cents),
            released=format_cents(
                w.held_cents - w.captured_cents
                if w.state in (WindowState.CAPTURED, WindowState.RELEASED)
                else 0
            ),
        )
        for w in billing_windows
    ]
    settled = [
        w for w in billing_windows if w.state in (WindowState.CAPTURED, WindowState.RELEASED)
    ]
    return Charges(
        windows=rows,
        totals=ChargeTotals(
            held=format_cents(sum(w.held_cents for w in billing_windows)),
            captured=format_cents(sum(w.captured_cents for w in billing_windows)),
            released=format_cents(sum(w.held_cents - w.captured_cents for w in settled)),
            platform_fee=format_cents(sum(w.fee_cents for w in billing_windows)),
        ),
    )
