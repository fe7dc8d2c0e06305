from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, Query, status
from fastapi.responses import JSONResponse

from vidivo.auth.deps import Caller, CurrentHost, Outbox
from vidivo.auth.service import GuestPrincipal
from vidivo.calls import access, ledger, repository, service, views
from vidivo.calls.deps import Billing, Calls, LoggedCallSession, Starts
from vidivo.calls.models import CallSession, SessionState
from vidivo.calls.schemas import (
    Charges,
    GuestPaymentResponse,
    PaymentMethodUpdate,
    SessionList,
    SessionResponse,
    SessionStart,
    SessionStarted,
)
from vidivo.calls.start import PendingAuthentication, StartedSession
from vidivo.core.deps import AppClock, Cursors, DbSession, SessionFactory
from vidivo.core.errors import ApiError, Conflict, Forbidden, IdempotencyConflict, error_body
from vidivo.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from vidivo.core.schemas import Pagination, error_responses, links_to
from vidivo.idempotency import service as idempotency
from vidivo.links import service as links
from vidivo.links.deps import KnownShortCode

router = APIRouter(tags=["sessions"], dependencies=[LoggedCallSession])


async def _respond(clock: AppClock, db: DbSession, session: CallSession) -> SessionResponse:
    billing_windows = await repository.windows_of(db, session.id)
    return SessionResponse(session=views.session_out(session, billing_windows, clock.now()))


# Every call operation takes the session the start answered with.
STARTED_SESSION = {"session_id": "$response.body#/session/id"}


START_ENDPOINT = "POST /v1/links/{short_code}/sessions"


@router.post(
    "/v1/links/{short_code}/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionStarted,
    responses={
        **error_responses(402, 404, 409, 410, 429, 502),
        **links_to(
            201,
            GetSession=("get_session", STARTED_SESSION),
            Accept=("accept", STARTED_SESSION),
            Decline=("decline", STARTED_SESSION),
            End=("end", STARTED_SESSION),
            ReplacePaymentMethod=("replace_payment_method", STARTED_SESSION),
            ConfirmPayment=("confirm_payment", STARTED_SESSION),
            Charges=("charges", STARTED_SESSION),
            Receipt=("receipt", STARTED_SESSION),
            Refund=("refund", STARTED_SESSION),
            IceServers=("ice_servers", STARTED_SESSION),
        ),
    },
    summary="Start a call: hold the first window on the guest's card",
)
async def start_session(
    short_code: KnownShortCode,
    body: SessionStart,
    starts: Starts,
    clock: AppClock,
    mailer: Outbox,
    background: BackgroundTasks,
    factory: SessionFactory,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = idempotency.validate_key(idempotency_key)
    if key is None:
        answer = _started_body(await starts.start(short_code, body), clock, background, mailer)
        return JSONResponse(answer, status_code=status.HTTP_201_CREATED)
    # A guest has no account: the key belongs to the link it starts from.
    claim = idempotency.claim_for(
        f"link:{short_code}", START_ENDPOINT, key, body.model_dump(mode="json")
    )
    try:
        started = await starts.start_once(short_code, body, claim)
    except ApiError as error:
        if error.code not in _NOT_THE_CALLS_OUTCOME:  # the call ended so: so does a repeat
            answer = error_body(error.code, error.message, error.details)
            await idempotency.complete(factory, claim, error.status, answer)
        raise
    if isinstance(started, idempotency.StoredResponse):
        return _repeated_start(started, starts)
    answer = _started_body(started, clock, background, mailer)
    # Kept without the guest's token: a repeat is given its own.
    kept = {name: value for name, value in answer.items() if name != "guest_token"}
    await idempotency.complete(factory, claim, status.HTTP_201_CREATED, kept)
    return JSONResponse(answer, status_code=status.HTTP_201_CREATED)


# Refusals that say nothing of how the call went: "try again" (it goes on, and a repeat
# carries it on), and another request's body under the key.
_NOT_THE_CALLS_OUTCOME = {Conflict.code, IdempotencyConflict.code}


def _started_body(
    started: StartedSession, clock: AppClock, background: BackgroundTasks, mailer: Outbox
) -> dict[str, Any]:
    if started.host_emailed:  # the offline host's "a guest is waiting"
        background.add_task(mailer.deliver_pending)
    answer = SessionStarted(
        session=views.session_out(started.session, started.billing_windows, clock.now()),
        guest_token=started.guest_token,
        authentication=views.authentication_out(started.authentication),
    )
    return answer.model_dump(mode="json")


def _repeated_start(stored: idempotency.StoredResponse, starts: Starts) -> JSONResponse:
    """The first start's answer again, with a guest token of the call it started."""
    body = stored.body
    if stored.status_code == status.HTTP_201_CREATED:
        token = starts.guest_token(str(body["session"]["id"]))
        body = SessionStarted.model_validate({**body, "guest_token": token}).model_dump(mode="json")
    return JSONResponse(
        body, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
    )


@router.get("/v1/sessions", responses=error_responses(401, 403), summary="The host's call sessions")
async def list_sessions(
    principal: CurrentHost,
    db: DbSession,
    clock: AppClock,
    cursors: Cursors,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    state: Annotated[SessionState | None, Query()] = None,
    link_id: Annotated[str | None, Query(max_length=26)] = None,
) -> SessionList:
    rows, next_cursor, has_more = await service.list_for_host(
        db, cursors, principal, limit=limit, cursor=cursor, state=state, link_id=link_id
    )
    billing_windows = await repository.windows_by_session(db, (s.id for s in rows))
    link_names = await links.names_of(db, (s.link_id for s in rows))
    money = await ledger.charged_and_refunded(db, (s.id for s in rows))
    now = clock.now()
    return SessionList(
        sessions=[
            views.host_session_out(
                s, billing_windows[s.id], now, link=link_names[s.link_id], money=money[s.id]
            )
            for s in rows
        ],
        pagination=Pagination(cursor=next_cursor, has_more=has_more, limit=limit),
    )


@router.get(
    "/v1/sessions/{session_id}",
    responses=error_responses(401, 404),
    summary="One call session (its host or its guest)",
)
async def get_session(
    session_id: str, caller: Caller, db: DbSession, clock: AppClock
) -> SessionResponse:
    return await _respond(clock, db, await access.get_for(db, session_id, caller))


@router.post(
    "/v1/sessions/{session_id}/accept",
    responses=error_responses(401, 403, 404, 409),
    summary="The host takes the call",
)
async def accept(
    session_id: str,
    principal: CurrentHost,
    db: DbSession,
    calls: Calls,
    billing: Billing,
    clock: AppClock,
) -> SessionResponse:
    session = await calls.accept(session_id, principal)
    await billing.advance(session_id)
    return await _respond(clock, db, await access.get_for(db, session.id, principal))


@router.post(
    "/v1/sessions/{session_id}/decline",
    responses=error_responses(401, 403, 404, 409),
    summary="The host turns the call down: the hold is released, nothing is charged",
)
async def decline(
    session_id: str,
    principal: CurrentHost,
    db: DbSession,
    calls: Calls,
    billing: Billing,
    clock: AppClock,
) -> SessionResponse:
    await calls.decline(session_id, principal)
    await billing.advance(session_id)
    return await _respond(clock, db, await access.get_for(db, session_id, principal))


@router.post(
    "/v1/sessions/{session_id}/end",
    responses=error_responses(401, 404, 409),
    summary="End the call (host or guest): used minutes are captured, the rest released",
)
async def end(
    session_id: str, caller: Caller, db: DbSession, calls: Calls, billing: Billing, clock: AppClock
) -> SessionResponse:
    await calls.end(session_id, caller)
    await billing.advance(session_id)
    return await _respond(clock, db, await access.get_for(db, session_id, caller))


@router.post(
    "/v1/sessions/{session_id}/payment-method",
    responses=error_responses(401, 402, 403, 404, 409, 502),
    summary="The guest replaces a declined card; the renewal is tried again on it",
)
async def replace_payment_method(
    session_id: str,
    body: PaymentMethodUpdate,
    caller: Caller,
    db: DbSession,
    calls: Calls,
    clock: AppClock,
) -> GuestPaymentResponse:
    if not isinstance(caller, GuestPrincipal):
        raise Forbidden("Only the guest can change the card.")
    _, pending = await calls.replace_payment_method(session_id, caller, body.payment_method_id)
    return await _respond_to_guest(clock, db, session_id, caller, pending)


@router.post(
    "/v1/sessions/{session_id}/payment/confirm",
    responses=error_responses(401, 402, 403, 404, 409, 502),
    summary="The guest is back from the card's 3-D Secure challenge: the waiting hold is "
    "looked at again, and the call goes on (or 402 if the bank refused)",
)
async def confirm_payment(
    session_id: str,
    caller: Caller,
    db: DbSession,
    starts: Starts,
    clock: AppClock,
    mailer: Outbox,
    background: BackgroundTasks,
) -> GuestPaymentResponse:
    if not isinstance(caller, GuestPrincipal):
        raise Forbidden("Only the guest can answer the card's bank.")
    _, pending = await starts.confirm_payment(session_id, caller)
    background.add_task(mailer.deliver_pending)  # the offline host's "a guest is waiting"
    return await _respond_to_guest(clock, db, session_id, caller, pending)


async def _respond_to_guest(
    clock: AppClock,
    db: DbSession,
    session_id: str,
    caller: GuestPrincipal,
    pending: PendingAuthentication | None,
) -> GuestPaymentResponse:
    session = await access.get_for(db, session_id, caller)
    billing_windows = await repository.windows_of(db, session.id)
    return GuestPaymentResponse(
        session=views.session_out(session, billing_windows, clock.now()),
        authentication=views.authentication_out(pending),
    )


@router.get(
    "/v1/sessions/{session_id}/charges",
    responses=error_responses(401, 404),
    summary="Each billing window: held, captured, released",
)
async def charges(session_id: str, caller: Caller, db: DbSession) -> Charges:
    session = await access.get_for(db, session_id, caller)
    return views.charges(await repository.windows_of(db, session.id))
