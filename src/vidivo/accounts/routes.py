"""The account endpoints: password reset by email, profile, password, deletion."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request, Response, status

from vidivo.accounts import closure
from vidivo.accounts.schemas import (
    AvailabilityResponse,
    AvailabilityUpdate,
    PasswordChange,
    PasswordResetConfirm,
    PasswordResetRequest,
    ProfileUpdate,
)
from vidivo.auth import account, availability
from vidivo.auth.deps import CurrentPrincipal, Outbox, client_ip
from vidivo.auth.routes import user_out
from vidivo.auth.schemas import UserResponse
from vidivo.core.deps import AppClock, AppHub, AppSettings, DbSession, Limiter
from vidivo.core.schemas import error_responses
from vidivo.links.deps import PublicLinks

router = APIRouter(tags=["accounts"])


@router.post(
    "/v1/auth/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,  # an empty body, documented as such
    responses=error_responses(400, 429),
    summary="Email a password reset link (the same answer whether or not the account exists)",
)
async def request_password_reset(
    body: PasswordResetRequest,
    request: Request,
    db: DbSession,
    clock: AppClock,
    settings: AppSettings,
    limiter: Limiter,
    mailer: Outbox,
    background: BackgroundTasks,
) -> Response:
    await account.request_password_reset(
        db, clock, limiter, settings, email=body.email, client_ip=client_ip(request)
    )
    background.add_task(mailer.deliver_pending)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/v1/auth/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(400, 429),
    summary="Set a new password with the emailed token (single use); every login ends",
)
async def confirm_password_reset(
    body: PasswordResetConfirm,
    request: Request,
    db: DbSession,
    clock: AppClock,
    settings: AppSettings,
    limiter: Limiter,
    mailer: Outbox,
    background: BackgroundTasks,
) -> Response:
    await account.reset_password(
        db,
        clock,
        limiter,
        settings,
        token=body.token,
        new_password=body.new_password,
        client_ip=client_ip(request),
    )
    background.add_task(mailer.deliver_pending)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch(
    "/v1/me",
    responses=error_responses(400, 401, 403, 409, 429),
    summary="Change the display name, bio or email (a new email is confirmed before it counts)",
)
async def update_me(
    body: ProfileUpdate,
    principal: CurrentPrincipal,
    db: DbSession,
    clock: AppClock,
    settings: AppSettings,
    limiter: Limiter,
    mailer: Outbox,
    public_links: PublicLinks,
    hub: AppHub,
    background: BackgroundTasks,
) -> UserResponse:
    change = account.ProfileChange(
        display_name=body.display_name,
        bio=body.bio or None,
        clear_bio="bio" in body.model_fields_set and not body.bio,
        email=body.email,
    )
    user = principal.user
    public_changed = await account.update_profile(db, clock, limiter, settings, user, change)
    await db.commit()  # then drop the cached guest pages, so nobody caches the old profile again
    if public_changed:
        await public_links.changed(hub, host_id=user.id)
    background.add_task(mailer.deliver_pending)
    return UserResponse(user=user_out(user))


@router.put(
    "/v1/me/availability",
    responses=error_responses(400, 401, 403),
    summary="Be away (no calls are taken) or back; answers what guests now see",
)
async def set_availability(
    body: AvailabilityUpdate,
    principal: CurrentPrincipal,
    db: DbSession,
    clock: AppClock,
    settings: AppSettings,
    public_links: PublicLinks,
    hub: AppHub,
) -> AvailabilityResponse:
    user = principal.user
    user.away = body.away
    await db.commit()  # then drop the cached guest pages, so nobody caches the old state again
    await public_links.changed(hub, host_id=user.id)
    timeout = availability.presence_timeout(settings.signal_idle_timeout_seconds)
    now = await availability.availability(db, user, clock.now(), timeout)
    return AvailabilityResponse(availability=now)


@router.post(
    "/v1/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(400, 401, 403, 429),
    summary="Change the password (the current one is required); other logins end",
)
async def change_password(
    body: PasswordChange,
    principal: CurrentPrincipal,
    db: DbSession,
    clock: AppClock,
    settings: AppSettings,
    limiter: Limiter,
    mailer: Outbox,
    background: BackgroundTasks,
) -> Response:
    await account.change_password(
        db,
        clock,
        limiter,
        settings,
        user=principal.user,
        login_session_id=principal.login_session_id,
        current_password=body.current_password,
        new_password=body.new_password,
    )
    background.add_task(mailer.deliver_pending)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/v1/me",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 409, 429),
    summary="Delete the account: personal data erased, money records kept",
)
async def delete_me(
    principal: CurrentPrincipal,
    db: DbSession,
    clock: AppClock,
    limiter: Limiter,
    settings: AppSettings,
    public_links: PublicLinks,
    hub: AppHub,
) -> Response:
    await account.throttle_account_change(limiter, settings, principal.user.id)
    await closure.delete_account(db, clock, principal.user.id)
    await db.commit()
    await public_links.changed(hub, host_id=principal.user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
