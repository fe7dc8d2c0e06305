"""Accounts: sign-up, verification, login with rotating refresh tokens, logout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.auth import onetime
from vidivo.auth.models import EmailVerification, LoginSession, RefreshToken, Role, User
from vidivo.auth.passwords import hash_password, random_password, verify_password
from vidivo.auth.tokens import InvalidToken, TokenAuthority, hash_opaque_token, new_opaque_token
from vidivo.core.clock import Clock
from vidivo.core.config import Settings
from vidivo.core.db import utc_now_seconds
from vidivo.core.errors import (
    ApiError,
    InvalidCredentials,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from vidivo.core.ratelimit import Backoff, RateLimiter, per_seconds
from vidivo.mail.service import queue_email


class EmailTaken(ApiError):
    code, status, message = (
        "email_taken",
        409,
        "An account with this email already exists.",
    )


class AccountSuspended(ApiError):
    code, status, message = (
        "account_suspended",
        403,
        "This account is suspended.",
    )


SUSPENDED = "suspended"  # the revoked reason of a suspended account's logins
PASSWORD_RESET = "password_reset"  # noqa: S105 (the revoked reason of logins ended by a reset)


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, the login session and the verified token claims."""

    user: User
    login_session_id: str
    claims: dict[str, Any]


@dataclass(frozen=True)
class GuestPrincipal:
    """A guest: no account, a token good for one call session only."""

    session_id: str
    claims: dict[str, Any]


GUEST_TOKEN_TTL_SECONDS = 4 * 3600


def issue_guest_token(tokens: TokenAuthority, session_id: str) -> str:
    return tokens.sign(
        subject=f"guest:{session_id}",
        role="guest",
        ttl_seconds=GUEST_TOKEN_TTL_SECONDS,
        extra={"session_id": session_id},
    )


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def find_user_by_email(db: AsyncSession, email: str) -> User | None:
    return await db.scalar(select(User).where(User.email == normalize_email(email)))


async def create_user(
    db: AsyncSession,
    clock: Clock,
    settings: Settings,
    *,
    email: str,
    password: str,
    display_name: str,
    role: Role = Role.HOST,
    verified: bool = False,
) -> User:
    now = utc_now_seconds(clock.now())
    user = User(
        email=normalize_email(email),
        password_hash=await hash_password(password),
        display_name=display_name,
        role=role,
        email_verified_at=now if verified else None,
        created_at=now,
    )
    db.add(user)
    try:
        await db.flush()
    except IntegrityError as exc:
        raise EmailTaken() from exc
    if not verified:
        await send_verification_email(db, clock, settings, user)
    return user


async def send_verification_email(
    db: AsyncSession, clock: Clock, settings: Settings, user: User
) -> None:
    token = onetime.issue(
        db,
        EmailVerification,
        user_id=user.id,
        now=clock.now(),
        ttl_seconds=settings.email_verification_ttl_seconds,
    )
    base = settings.public_base_url
    queue_email(
        db,
        clock,
        recipient=user.email,
        subject="Verify your Vidivo email",
        body=(
            f"Hello {user.display_name},\n\n"
            f"Confirm your email to start creating call links.\n\n"
            f"Open {base}/app?verify={token}\n\n"
            f"Verification token: {token}\n\n"
            f"Send it with: curl -X POST {base}/v1/auth/verify-email "
            f"-H 'Content-Type: application/json' -d '{{\"token\": \"{token}\"}}'\n\n"
            "The token is valid for 24 hours. If you did not sign up, ignore this email.\n"
        ),
    )


async def resend_verification(
    db: AsyncSession, clock: Clock, limiter: RateLimiter, settings: Settings, user: User
) -> None:
    if user.email_verified_at is not None:
        raise ValidationFailed("This email is already verified.")
    await limiter.hit(per_seconds(3, 3600), "verify-resend", user.id)
    await send_verification_email(db, clock, settings, user)


async def verify_email(db: AsyncSession, clock: Clock, token: str) -> User:
    """Confirm the address a token was sent to: the account's own, or the new one of a change
    of email (which takes effect only now)."""
    now = clock.now()
    invalid = ValidationFailed.field("token", "The verification token is invalid or has expired.")
    verification = await onetime.redeem(db, EmailVerification, token, now)
    if verification is None:
        raise invalid
    user = await db.get_one(User, verification.user_id)
    if verification.new_email is not None:
        # A change's link is good only while it is the change the account still asks for.
        if verification.new_email != user.pending_email:
            raise invalid
        user.email, user.pending_email = verification.new_email, None
        user.email_verified_at = utc_now_seconds(now)
        try:
            await db.flush()
        except IntegrityError as exc:  # taken by another account since the change was asked
            raise EmailTaken() from exc
    if user.email_verified_at is None:
        user.email_verified_at = utc_now_seconds(now)
    return user


LOGIN_BACKOFF_MESSAGE = "Too many failed logins for this account from here; try again later."


class LoginThrottle:
    """Guessing is slowed where it happens, so it cannot lock the owner out from elsewhere.

    - Each client address: at most `login_attempts_per_minute` attempts, whatever the account.
    - Each (account, address): `login_failures_before_backoff` failures free, then that
      address waits `login_backoff_base_seconds`, doubling with every further failure up to
      `login_backoff_max_seconds`; a success there forgets its failures. Other addresses
      (the owner's) are not affected.
    - Each account: past `login_failures_per_email` failures in
      `login_failure_window_seconds`, from any addresses, every address gets one free failure
      only: guessing from many addresses slows down while the owner can still log in.
    """

    def __init__(self, limiter: RateLimiter, settings: Settings) -> None:
        self._limiter = limiter
        self._per_address = per_seconds(settings.login_attempts_per_minute, 60)
        self._per_account = per_seconds(
            settings.login_failures_per_email, settings.login_failure_window_seconds
        )
        self._free = settings.login_failures_before_backoff
        self._backoff = Backoff(
            limiter.storage,
            base=settings.login_backoff_base_seconds,
            longest=settings.login_backoff_max_seconds,
            memory=max(settings.login_failure_window_seconds, settings.login_backoff_max_seconds),
        )

    @staticmethod
    def _pair(email: str, client_ip: str) -> str:
        return f"login/{email}/{client_ip}"

    async def before_attempt(self, email: str, client_ip: str) -> None:
        await self._limiter.hit(self._per_address, "login-ip", client_ip)
        await self._backoff.check(self._pair(email, client_ip), LOGIN_BACKOFF_MESSAGE)

    async def failed(self, email: str, client_ip: str) -> None:
        under_attack = await self._limiter.reached(self._per_account, "login-failures", email)
        await self._limiter.record(self._per_account, "login-failures", email)
        await self._backoff.failed(
            self._pair(email, client_ip), free=1 if under_attack else self._free
        )

    async def succeeded(self, email: str, client_ip: str) -> None:
        await self._backoff.succeeded(self._pair(email, client_ip))


async def login(
    db: AsyncSession,
    clock: Clock,
    limiter: RateLimiter,
    tokens: TokenAuthority,
    settings: Settings,
    *,
    email: str,
    password: str,
    client_ip: str,
) -> IssuedTokens:
    email = normalize_email(email)
    throttle = LoginThrottle(limiter, settings)
    await throttle.before_attempt(email, client_ip)
    user = await find_user_by_email(db, email)
    if not await verify_password(user.password_hash if user else None, password) or user is None:
        await throttle.failed(email, client_ip)
        raise InvalidCredentials()
    await throttle.succeeded(email, client_ip)
    if user.suspended_at is not None:  # told only to whoever knows the password
        raise AccountSuspended()
    now = clock.now()
    session = LoginSession(user_id=user.id, created_at=now)
    db.add(session)
    await db.flush()
    return _issue(db, tokens, settings, now, user, session)


def _issue(
    db: AsyncSession,
    tokens: TokenAuthority,
    settings: Settings,
    now: datetime,
    user: User,
    session: LoginSession,
) -> IssuedTokens:
    refresh = new_opaque_token()
    db.add(
        RefreshToken(
            login_session_id=session.id,
            token_hash=hash_opaque_token(refresh),
            expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds),
            created_at=now,
        )
    )
    ttl = settings.access_token_ttl_seconds
    access = tokens.sign(
        subject=user.id, role=user.role, ttl_seconds=ttl, extra={"sid": session.id}
    )
    return IssuedTokens(access, ttl, refresh)


async def refresh(
    db: AsyncSession,
    clock: Clock,
    tokens: TokenAuthority,
    settings: Settings,
    refresh_token: str,
) -> IssuedTokens:
    now = clock.now()
    # Locked so two concurrent refreshes with one token cannot both succeed.
    token = await db.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == hash_opaque_token(refresh_token))
        .with_for_update()
    )
    if token is None:
        raise Unauthorized("The refresh token is not valid.")
    session = await db.get_one(LoginSession, token.login_session_id)
    user = await db.get_one(User, session.user_id)
    if user.suspended_at is not None:
        raise AccountSuspended()
    if session.revoked_at is not None:
        raise Unauthorized("This login has ended; log in again.")
    if token.used_at is not None:
        # A used token coming back means it was copied: end the whole login for safety.
        session.revoked_at, session.revoked_reason = now, "refresh_token_reused"
        await db.commit()
        raise Unauthorized("This refresh token was already used; log in again.")
    if token.expires_at <= now:
        raise Unauthorized("The refresh token has expired; log in again.")
    claimed = await db.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Unauthorized("This refresh token was already used; log in again.")
    return _issue(db, tokens, settings, now, user, session)


async def logout(db: AsyncSession, clock: Clock, principal: Principal) -> None:
    session = await db.get_one(LoginSession, principal.login_session_id)
    if session.revoked_at is None:
        session.revoked_at, session.revoked_reason = clock.now(), "logout"


def _verified_claims(tokens: TokenAuthority, token: str) -> dict[str, Any]:
    try:
        return tokens.verify(token)
    except InvalidToken as exc:
        raise Unauthorized(f"The bearer token is not valid: {exc}.") from exc


async def authenticate_caller(
    db: AsyncSession, tokens: TokenAuthority, token: str
) -> Principal | GuestPrincipal:
    """A host/admin or a call's guest."""
    claims = _verified_claims(tokens, token)
    if claims.get("role") == "guest":
        session_id = claims.get("session_id")
        if not isinstance(session_id, str) or claims["sub"] != f"guest:{session_id}":
            raise Unauthorized("The bearer token is not valid: malformed guest token.")
        return GuestPrincipal(session_id=session_id, claims=claims)
    return await _authenticate_user(db, claims)


async def authenticate(db: AsyncSession, tokens: TokenAuthority, token: str) -> Principal:
    return await _authenticate_user(db, _verified_claims(tokens, token))


async def _authenticate_user(db: AsyncSession, claims: dict[str, Any]) -> Principal:
    session_id = claims.get("sid")
    if not isinstance(session_id, str):
        raise Unauthorized("The bearer token is not valid: not a user token.")
    row = (
        await db.execute(
            select(User, LoginSession)
            .join(LoginSession, LoginSession.user_id == User.id)
            .where(LoginSession.id == session_id, User.id == claims["sub"])
        )
    ).first()
    if row is None:
        raise Unauthorized("This login has ended; log in again.")
    # Read on every request (HTTP and WebSocket): a suspension stops tokens already issued.
    if row[0].suspended_at is not None:
        raise AccountSuspended()
    if row[1].revoked_at is not None:
        raise Unauthorized("This login has ended; log in again.")
    return Principal(user=row[0], login_session_id=session_id, claims=claims)


async def suspend_account(db: AsyncSession, clock: Clock, user_id: str) -> bool:
    """Mark the account suspended and end all its logins (their refresh tokens die with them).
    Whether this call suspended it: False when it already was."""
    user = await db.get_one(User, user_id, with_for_update=True, populate_existing=True)
    newly = user.suspended_at is None
    now = clock.now()
    if newly:
        user.suspended_at = utc_now_seconds(now)
    await _end_all_logins(db, user_id, now, SUSPENDED)
    return newly


async def reset_password(db: AsyncSession, clock: Clock, email: str) -> str:
    """Give the account a new random password and end all its logins (whoever held the old
    password or a token of it is out). The new password, to be shown once: only its hash is
    kept."""
    user = await get_user_by_email_or_404(db, email)
    password = random_password()
    user.password_hash = await hash_password(password)
    await _end_all_logins(db, user.id, clock.now(), PASSWORD_RESET)
    return password


async def _end_all_logins(db: AsyncSession, user_id: str, now: datetime, reason: str) -> None:
    """Revoke every open login of the account: its access and refresh tokens stop working."""
    await db.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )


async def get_user_by_email_or_404(db: AsyncSession, email: str) -> User:
    user = await find_user_by_email(db, email)
    if user is None:
        raise NotFound(f"No account with email {email}.")
    return user
