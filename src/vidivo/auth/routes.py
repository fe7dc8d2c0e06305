from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request, Response, status

from vidivo.auth import service
from vidivo.auth.deps import CurrentPrincipal, Keys, Outbox, Tokens, client_ip
from vidivo.auth.models import User
from vidivo.auth.schemas import (
    JwksResponse,
    RefreshRequest,
    SignupRequest,
    TokenRequest,
    TokenResponse,
    UserOut,
    UserResponse,
    VerifyEmailRequest,
)
from vidivo.core.deps import AppClock, AppSettings, DbSession, Limiter
from vidivo.core.ratelimit import per_seconds
from vidivo.core.schemas import error_responses

router = APIRouter(tags=["auth"])


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        bio=user.bio,
        pending_email=user.pending_email,
        role=user.role,
        email_verified=user.email_verified_at is not None,
        suspended=user.suspended_at is not None,
        away=user.away,
        created_at=user.created_at,
    )


def _tokens_out(tokens: service.IssuedTokens) -> TokenResponse:
    return TokenResponse(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
    )


@router.post(
    "/v1/auth/signup",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(409, 429),
    summary="Create a host account and email a verification token",
)
async def signup(
    body: SignupRequest,
    request: Request,
    db: DbSession,
    clock: AppClock,
    settings: AppSettings,
    limiter: Limiter,
    mailer: Outbox,
    background: BackgroundTasks,
) -> UserResponse:
    rule = per_seconds(settings.signups_per_hour, 3600)
    await limiter.hit(rule, "signup", client_ip(request))
    user = await service.create_user(
        db,
        clock,
        settings,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
    )
    background.add_task(mailer.deliver_pending)
    return UserResponse(user=user_out(user))


@router.post(
    "/v1/auth/token",
    responses=error_responses(401, 403, 429),
    summary="Log in with email and password",
)
async def token(
    body: TokenRequest,
    request: Request,
    db: DbSession,
    clock: AppClock,
    limiter: Limiter,
    tokens: Tokens,
    settings: AppSettings,
) -> TokenResponse:
    issued = await service.login(
        db,
        clock,
        limiter,
        tokens,
        settings,
        email=body.email,
        password=body.password,
        client_ip=client_ip(request),
    )
    return _tokens_out(issued)


@router.post(
    "/v1/auth/refresh",
    responses=error_responses(401, 403),
    summary="Trade a refresh token for a new pair (the old one stops working)",
)
async def refresh(
    body: RefreshRequest, db: DbSession, clock: AppClock, tokens: Tokens, settings: AppSettings
) -> TokenResponse:
    return _tokens_out(await service.refresh(db, clock, tokens, settings, body.refresh_token))


@router.post(
    "/v1/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403),
    summary="End this login: its refresh and access tokens stop working",
)
async def logout(principal: CurrentPrincipal, db: DbSession, clock: AppClock) -> Response:
    await service.logout(db, clock, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/auth/verify-email",
    # 409: a change of email whose address another account took in the meantime
    responses=error_responses(400, 409),
    summary="Confirm an email address with the emailed token",
)
async def verify_email(body: VerifyEmailRequest, db: DbSession, clock: AppClock) -> UserResponse:
    user = await service.verify_email(db, clock, body.token)
    return UserResponse(user=user_out(user))


@router.post(
    "/v1/auth/verify-email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(400, 401, 403, 429),
    summary="Email a new verification token",
)
async def resend_verification(
    principal: CurrentPrincipal,
    db: DbSession,
    clock: AppClock,
    limiter: Limiter,
    settings: AppSettings,
    mailer: Outbox,
    background: BackgroundTasks,
) -> Response:
    await service.resend_verification(db, clock, limiter, settings, principal.user)
    background.add_task(mailer.deliver_pending)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.get("/v1/me", responses=error_responses(401, 403), summary="The calling account")
async def me(principal: CurrentPrincipal) -> UserResponse:
    return UserResponse(user=user_out(principal.user))


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(keys: Keys) -> JwksResponse:
    return JwksResponse.model_validate(keys.jwks())
